#!/usr/bin/env bash
# report -o FILE.html on the test_stats scenario (tests/unit/test_stats.c --fill), Asia/Tokyo:
# the file is self-contained (no http:// or https:// resource: no src=, stylesheet href=,
# @import or url() pointing out), holds an inline SVG chart per provider, the masked reasons,
# the provider state and the pre-flight; and headless Chromium (Debian's chromium) renders it
# to a screenshot that is not blank (many distinct colours, the chart colours among them).
# At 1366x768 and 1440x900 the providers' long last replies are laid out at least 600 px wide
# (measured in Chromium), the one over 480 characters folded in <details>, whole.
# Without chromium the rest runs and the test reports "skipped" (77): scripts/deps test adds it.
# Environment: IPWARM, SRCDIR, BUILDDIR.
set -u
: "${IPWARM:?set IPWARM}" "${SRCDIR:?set SRCDIR}" "${BUILDDIR:?set BUILDDIR}"
. "$SRCDIR/tests/lib/need.sh" && need python3 sqlite3 unit:test_stats
PY=$NEED_PY
work=$(mktemp -d)
chrome_pid=
cleanup() {
  [ -n "$chrome_pid" ] && kill "$chrome_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
unset IPWARM_PLAN

. "$SRCDIR/tests/lib/assert.sh"
. "$SRCDIR/tests/lib/plans.sh"
has() { if grep -qF -- "$2" "$3"; then ok "$1"; else bad "$1: $3 lacks '$2'"; fi; }

check "fill the scenario" plans_stats report-test
# Long last replies, as multi-line replies are stored (the lines joined by spaces): Gmail's
# 421-4.7.28 (about 440 characters, shown whole) and a Microsoft reply of three lines repeated
# (over 480: folded, its start shown).
gmail_reply='4.7.28 [192.0.2.10 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. For more information, go to https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines. d2e1a72fcca58-7293ed0d6d8si1234567b3a.123 - gsmtp'
ms_line='4.7.500 Server busy. Please try again later from [192.0.2.44]. (S77714) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]'
ms_reply="$ms_line $ms_line $ms_line $ms_line Recipient address rejected: Access denied. AS(201806281) end-of-reply"
if "$PY" - state.db "$gmail_reply" "$ms_reply" <<'PYEOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for name, reply in (("gmail", sys.argv[2]), ("microsoft", sys.argv[3])):
    # 2026-12-01T15:40:00Z, shown as 2026-12-02T00:40:00+09:00
    n = con.execute("UPDATE providers SET last_reply = ?, last_reply_ms = 1796139600000 "
                    "WHERE name = ?", (reply, name)).rowcount
    assert n == 1, name
con.commit()
PYEOF
then ok "long last replies stored"; else bad "long last replies stored"; fi
# Feedback read after the 250 (late bounces, complaints), as a poll records it in the hourly
# counters: microsoft's first hour with bounces gets one late bounce of them and two complaints.
if "$PY" - state.db <<'PYEOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
n = con.execute("UPDATE summary_hourly SET late_bounces = 1, complaints = 2 WHERE provider = "
                "'microsoft' AND hour_ms = (SELECT min(hour_ms) FROM summary_hourly WHERE "
                "provider = 'microsoft' AND bounced > 0)").rowcount
assert n == 1, n
con.commit()
PYEOF
then ok "feedback counters stored"; else bad "feedback counters stored"; fi

if "$IPWARM" -p plan.yaml --now 2026-12-02T09:00:00+09:00 report -o report.html 2>err; then ok "report: exit 0"; else bad "report: exit $?"; cat err; fi
[ -s report.html ] && ok "report written" || bad "report written"
[ ! -e report.html.tmp ] && ok "no temporary file left" || bad "no temporary file left"
has "title" "<title>Warm-up report: report-test</title>" report.html
has "inline style" "<style>" report.html
has "an SVG chart" "<svg viewBox=" report.html
n_svg=$(grep -o '<svg ' report.html | wc -l)
[ "$n_svg" -eq 6 ] && ok "three charts per provider (6)" || bad "three charts per provider: $n_svg"
has "a chart of late bounces and complaints" 'aria-label="late bounces and complaints of microsoft per' report.html
# The totals and the chart agree with the store: late bounces, complaints, and the complaint rate
# over delivered, per provider.
for prov in gmail microsoft; do
  want=$(sqlite3 state.db "SELECT printf('<td class=\"n\">%d</td><td class=\"n\">%d</td><td class=\"n\">%.2f%%</td></tr>', sum(late_bounces), sum(complaints), 100.0 * sum(complaints) / max(sum(delivered), 1)) FROM summary_hourly WHERE provider = '$prov'")
  if grep -F "<td class=\"\">$prov</td>" report.html | head -1 | grep -qF -- "$want"; then
    ok "totals of $prov: late bounces, complaints, complaint rate as stored ($want)"
  else
    bad "totals of $prov: the row lacks '$want'"
  fi
done
# Two days of history are charted per hour, labelled in the plan's zone (+09:00).
hour=$(sqlite3 state.db "SELECT strftime('%Y-%m-%dT%H:00:00+09:00', hour_ms / 1000 + 9 * 3600, 'unixepoch') FROM summary_hourly WHERE complaints > 0")
has "the complaints drawn in their hour ($hour)" "<title>$hour complaints: 2</title>" report.html
has "the late bounce drawn in its hour" "<title>$hour late bounces: 1</title>" report.html
has "masked reason, HTML-escaped" "Server busy. Please try again later from [&lt;ip&gt;]. (S77714) [&lt;host&gt;]" report.html
has "provider state: the manual hold has no end" "held</span> until resumed: <span class=\"why\">checking the DNS</span>" report.html
has "pre-flight" "every required check passed" report.html
has "planned vs achieved legend" "achieved: attempts in the busiest hour" report.html
has "narrow screens" "@media (max-width:760px)" report.html
has "print" "@media print" report.html
# html TEXT: TEXT as the report escapes it.
html() { printf '%s' "$1" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g'"; s/'/\\&#39;/g"; }
has "Gmail's long reply whole, not folded" "<span class=\"rl\">last reply at 2026-12-02T00:40:00+09:00</span>$(html "$gmail_reply")</div>" report.html
has "Microsoft's longer reply folded in <details>" '<details class="reply"><summary>' report.html
has "... with the whole text inside" "$(html "$ms_reply")</details>" report.html
n_details=$(grep -o '<details class="reply"' report.html | wc -l)
[ "$n_details" -eq 1 ] && ok "only the reply over 480 characters is folded" || bad "folded replies: $n_details, expected 1"
if "$PY" - report.html <<'PYEOF'
import re, sys
html = open(sys.argv[1], encoding="utf-8").read()
bad = []
for m in re.finditer(r'(?i)\b(src|href)\s*=\s*["\']?\s*([a-z][a-z0-9+.-]*:)?//', html):
    bad.append(m.group(0))
for m in re.finditer(r'(?i)(@import|url\s*\()', html):
    bad.append(m.group(0))
for m in re.finditer(r'(?i)<(script|link|img|iframe|object|embed)\b', html):
    bad.append(m.group(0))
# Every http(s) URL inside a tag must be the SVG namespace name, which loads nothing (URLs in
# the text, such as one in a provider's reply, load nothing either).
for tag in re.finditer(r'<[^>]*>', html):
    for m in re.finditer(r'https?://[^\s"\'<>]+', tag.group(0)):
        if m.group(0) != "http://www.w3.org/2000/svg":
            bad.append(m.group(0))
sys.exit(1 if bad else 0)
PYEOF
then ok "no network resources"; else bad "no network resources"; fi

# An empty state: still a valid page.
if "$IPWARM" -p plan.yaml --db "$work/none.db" report -o empty.html 2>/dev/null; then ok "report of nothing: exit 0"; else bad "report of nothing"; fi
has "report of nothing says so" "No attempts recorded yet" empty.html
"$IPWARM" -p plan.yaml report -o "$work/no/such/dir/r.html" 2>/dev/null
rc=$?
[ "$rc" -eq 73 ] && ok "unwritable report: exit 73" || bad "unwritable report: exit $rc"

# --- rendering in headless Chromium --------------------------------------------------------
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
  echo "skip: chromium is not installed (Debian: chromium; scripts/deps test installs it)"
else
  # At laptop widths the last replies read in a wide measure: the innermost element that holds
  # each reply's text is at least 600 px wide (a column of a few words is 150 to 250 px). A
  # copy of the report gets a script that measures the layout and writes it into the page,
  # which --dump-dom then prints.
  for size in 1366,768 1440,900; do
    "$PY" - report.html "measure-$size.html" "$gmail_reply" "$ms_reply" <<'PYEOF'
import json, sys
html = open(sys.argv[1], encoding="utf-8").read()
markers = {"gmail": sys.argv[3][40:90], "microsoft (folded)": sys.argv[4][-60:]}
script = """<script>
(function () {
  var markers = %s, out = {};
  Object.keys(markers).forEach(function (k) {
    var best = null;
    document.querySelectorAll("body *").forEach(function (e) {
      if (e.tagName !== "SCRIPT" && e.textContent.indexOf(markers[k]) >= 0) best = e;
    });
    out[k] = best ? Math.round(best.getBoundingClientRect().width) : -1;
  });
  out.viewport = window.innerWidth;
  var p = document.createElement("pre");
  p.id = "measured";
  p.textContent = JSON.stringify(out);
  document.body.appendChild(p);
})();
</script>
</body>""" % json.dumps(markers)
open(sys.argv[2], "w", encoding="utf-8").write(html.replace("</body>", script))
PYEOF
    profile=$(mktemp -d "$work/profile.XXXXXX")
    timeout 90 "$chrome" --headless --no-sandbox --disable-gpu --disable-background-networking \
      --no-first-run --disable-component-update --disable-sync --user-data-dir="$profile" \
      --window-size="$size" --dump-dom "file://$work/measure-$size.html" >"dom-$size.html" 2>"chrome-$size.log" &
    chrome_pid=$!
    wait "$chrome_pid"
    chrome_pid=
    measured=$(sed -n 's/.*<pre id="measured">\([^<]*\)<\/pre>.*/\1/p' "dom-$size.html")
    echo "    layout at $size: $measured"
    if "$PY" -c '
import json, sys
m = json.loads(sys.argv[1])
want = int(sys.argv[2].split(",")[0])
assert m["viewport"] == want, m
for k, v in m.items():
    if k != "viewport":
        assert v >= 600, (k, v)
' "$measured" "$size" 2>/dev/null; then
      ok "at $size the last replies are at least 600 px wide"
    else
      bad "at $size the last replies are at least 600 px wide: ${measured:-no measurement}"
      tail -3 "chrome-$size.log"
    fi
  done

  profile=$(mktemp -d "$work/profile.XXXXXX")
  timeout 90 "$chrome" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" \
    --screenshot="$work/shot.png" --window-size=1200,2000 "file://$work/report.html" \
    >"$work/chrome.log" 2>&1 &
  chrome_pid=$!
  wait "$chrome_pid"
  chrome_pid=
  [ -s shot.png ] && ok "screenshot taken" || { bad "screenshot taken"; tail -5 chrome.log; }
  if "$PY" - shot.png <<'PYEOF'
# A tiny PNG decoder (zlib from the standard library): 8-bit RGB or RGBA, non-interlaced.
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", body)
        assert depth == 8 and ctype in (2, 6) and inter == 0, (depth, ctype, inter)
        bpp = 3 if ctype == 2 else 4
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
colours, nonwhite = set(), 0
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if y % 2 == 0:
        for x in range(0, w, 2):
            px = bytes(line[x * bpp:x * bpp + 3])
            colours.add(px)
            if px != b"\xff\xff\xff":
                nonwhite += 1
    prev = line
# The delivered green (#2e7d32) and deferred amber (#f9a825) of the bars must be on screen.
need = {bytes.fromhex("2e7d32"), bytes.fromhex("f9a825")}
print("colours", len(colours), "non-white samples", nonwhite, "chart colours", need <= colours)
sys.exit(0 if len(colours) > 50 and nonwhite > 10000 and need <= colours else 1)
PYEOF
  then ok "screenshot is not blank and shows the chart colours"; else bad "screenshot is not blank"; fi
fi

finish || exit 1
# Without chromium the rendering was not checked: skipped, not passed.
[ -n "$chrome" ] || exit 77
