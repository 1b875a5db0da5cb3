#!/usr/bin/env bash
# stats, trace, simulate and metrics through the binary, on a state file filled by
# `test_stats --fill` (tests/unit/test_stats.c: the scenario and its counts) with an
# Asia/Tokyo plan: the table, CSV (RFC 4180) and JSON (cli.md keys) outputs, the Microsoft
# throttling replies under one masked reason, trace's +09:00 and UTC times, an unknown address
# (exit 0, empty), simulate against the ramp's arithmetic, and the Prometheus exposition
# written atomically. Environment: IPWARM, SRCDIR, BUILDDIR.
set -u
: "${IPWARM:?set IPWARM}" "${SRCDIR:?set SRCDIR}" "${BUILDDIR:?set BUILDDIR}"
. "$SRCDIR/tests/lib/need.sh" && need python3 unit:test_stats
PY=$NEED_PY
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset IPWARM_PLAN

. "$SRCDIR/tests/lib/assert.sh"
. "$SRCDIR/tests/lib/plans.sh"
# py DESCRIPTION CODE: runs python with the last stdout as sys.stdin; CODE asserts.
py() {
  if "$PY" -c "import sys, json, csv, io
$2" <"$work/out" 2>"$work/pyerr"; then ok "$1"; else bad "$1"; sed 's/^/    /' "$work/pyerr" | tail -3; fi
}

check "fill the scenario" plans_stats stats-test
P=(-p plan.yaml)

# --- stats ---------------------------------------------------------------------------------
t "stats table" 0 "${P[@]}" stats
out_has "table header" "PERIOD     PROVIDER  TRIED DELIV DEFER BOUNCE FAIL DEFER%  BNCE%"
out_has "microsoft on the 1st (Tokyo)" "2026-12-01 microsoft    17    10     6      1    0  35.3%   5.9%"
out_has "microsoft on the 2nd (Tokyo)" "2026-12-02 microsoft     6     5     1      0    0  16.7%   0.0%"
out_has "one masked Server busy row" "6 x 451 4.7.500 Server busy. Please try again later from [<ip>]."
out_has "rules section" "microsoft  throttle    2 x outlook-server-busy, last 2026-12-02T00:40+09:00"
out_has "pause with expiry" "microsoft suspend from 2026-12-01T14:00+09:00 to 2026-12-01T14:30+09:00"
if awk '{ if (length($0) > 80) exit 1 }' "$work/out"; then ok "table fits 80 columns"; else bad "table fits 80 columns"; fi

t "stats csv" 0 "${P[@]}" stats --format csv
py "csv: RFC 4180 with header, CRLF, quoted fields" '
raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
text = raw.decode()
assert text.count("\r\n") == 4 and text.count("\n") == 4, repr(text[:200])
rows = list(csv.DictReader(io.StringIO(text, newline="")))
assert len(rows) == 3
m = [r for r in rows if r["provider"] == "microsoft" and r["period"] == "2026-12-01"][0]
assert (m["attempts"], m["delivered"], m["deferred"], m["bounced"], m["failed"]) == ("17", "10", "6", "1", "0")
assert m["deferral_rate"] == "0.3529" and m["bounce_rate"] == "0.0588"
assert m["top_reason_code"] == "451" and m["top_reason_count"] == "6"
assert m["top_reason_text"] == "Server busy. Please try again later from [<ip>]. (S77714) [<host>]"
g = [r for r in rows if r["provider"] == "gmail"][0]
assert "spam, mail sent" in g["top_reason_text"]  # a comma survived quoting
'

t "stats --json" 0 "${P[@]}" --json stats
py "json: cli.md keys and the scenario's numbers" '
d = json.load(sys.stdin)
rows = d["rows"]
assert [(r["period"], r["provider"]) for r in rows] == [("2026-12-01", "gmail"), ("2026-12-01", "microsoft"), ("2026-12-02", "microsoft")]
for r in rows:
    for k in ("period", "provider", "attempts", "delivered", "deferred", "bounced", "failed", "deferral_rate", "bounce_rate", "top_reasons"):
        assert k in r, k
    for t in r["top_reasons"]:
        assert set(("code", "enhanced", "text", "count")) <= set(t)
m = rows[1]
assert (m["attempts"], m["deferred"], m["bounced"]) == (17, 6, 1)
assert abs(m["deferral_rate"] - 6 / 17) < 1e-4 and abs(m["bounce_rate"] - 1 / 17) < 1e-4
busy = [t for t in m["top_reasons"] if t["enhanced"] == "4.7.500"]
assert len(busy) == 1 and busy[0]["count"] == 6 and busy[0]["code"] == 451
g = rows[0]
assert [t["code"] for t in g["top_reasons"]] == [421, None]
assert d["rules"][1]["count"] == 2 and d["pauses"][1]["expires"] is None
assert d["pauses"][0]["expires"] == "2026-12-01T14:30:00+09:00"
'
t "stats --format json = --json" 0 "${P[@]}" stats --format json
py "same document" 'assert len(json.load(sys.stdin)["rows"]) == 3'

t "stats --by hour --provider microsoft --since" 0 "${P[@]}" --json stats --by hour --provider microsoft --since 2026-12-02T00:00:00+09:00
py "hour rows in Tokyo time" '
d = json.load(sys.stdin)
assert [(r["period"], r["attempts"]) for r in d["rows"]] == [("2026-12-02T00:00:00+09:00", 6)], d["rows"]
'
t "stats --until before --since" 64 "${P[@]}" stats --since 2026-12-02T00:00:00Z --until 2026-12-01T00:00:00Z
t "stats --by week refused" 64 "${P[@]}" stats --by week
t "stats on a missing state file" 0 "${P[@]}" --db "$work/none.db" --json stats
py "missing state: no rows" 'assert json.load(sys.stdin)["rows"] == []'
if [ ! -e "$work/none.db" ]; then ok "a read command does not create the state file"; else bad "a read command does not create the state file"; fi

# --- trace ---------------------------------------------------------------------------------
t "trace" 0 "${P[@]}" trace trace@outlook.example
out_has "trace: local time with offset and UTC" "2026-12-01T09:00:00+09:00 (2026-12-01T00:00:00Z)  deferred"
out_has "trace: full reply" "451 4.7.500 Server busy. Please try again later from [1.2.3.4]. (S77714) [BN8NAM11FT034.eop-nam11.prod.protection.outlook.com]"
out_has "trace: MX and source" "mx mx.test.example  source 192.0.2.10"
t "trace --json" 0 "${P[@]}" --json trace trace@outlook.example
py "trace json: oldest first, cli.md keys, +09:00" '
a = json.load(sys.stdin)
assert [x["outcome"] for x in a] == ["deferred", "deferred", "delivered"]
assert [x["time"] for x in a] == ["2026-12-01T09:00:00+09:00", "2026-12-01T09:20:00+09:00", "2026-12-01T11:00:00+09:00"]
assert a[0]["time_utc"] == "2026-12-01T00:00:00Z"
for x in a:
    for k in ("time", "recipient", "provider", "mx", "source_ip", "phase", "code", "enhanced", "text", "outcome"):
        assert k in x, k
assert a[1]["text"].endswith("[AM6EUR05FT011.eop-eur05.prod.protection.outlook.com]")
assert (a[2]["code"], a[2]["enhanced"], a[2]["phase"]) == (250, "2.6.0", "data")
'
t "trace unknown address" 0 "${P[@]}" trace nobody@example.org
out_has "trace unknown: says so" "no attempts recorded for nobody@example.org"
t "trace unknown --json" 0 "${P[@]}" --json trace nobody@example.org
py "trace unknown: []" 'assert json.load(sys.stdin) == []'

# --- simulate ------------------------------------------------------------------------------
cat >ramp.yaml <<'YAML'
campaign: sim-test
timezone: Asia/Tokyo
source: {ip: 192.0.2.10, helo: mx.example.com}
sender: {from: "News <news@example.com>"}
message: {subject: Hi, text_file: message.txt}
recipients: {file: seeds.csv}
state: sim.db
schedule: {days: [mon, tue, wed, thu, fri], hours: "09:00-17:00"}
ramp: {start: 2/min, growth: 2, max: 16/min, daily_cap: [500, 1000, 3000]}
providers:
  - {name: acme, mx: [.acme.example], ramp: {start: 1/min, growth: 3, max: 9/min}}
YAML
# 2026-12-04 is a Friday: day 1 that day, then Monday the 7th (the weekend is skipped).
t "simulate --json" 0 -p ramp.yaml --now 2026-12-04T08:00:00+09:00 --json simulate --days 5
py "simulate follows the ramp: stages, caps, windows, weekends" '
d = json.load(sys.stdin)
days = d["days"]
assert [x["date"] for x in days] == ["2026-12-04", "2026-12-07", "2026-12-08", "2026-12-09", "2026-12-10"]
acme = [[p for p in x["providers"] if p["name"] == "acme"][0] for x in days]
# acme: 1, 3, 9 (max), 9, 9 a minute; 8 open hours = 480 minutes; caps 500, 1000, 3000 then 3000.
assert [p["rate_per_min"] for p in acme] == [1, 3, 9, 9, 9]
assert [p["cap"] for p in acme] == [500, 1000, 3000, 3000, 3000]
assert [p["planned"] for p in acme] == [480, 1000, 3000, 3000, 3000]
gm = [[p for p in x["providers"] if p["name"] == "gmail"][0] for x in days]
# the plan ramp: 2, 4, 8, 16 (max), 16.
assert [p["rate_per_min"] for p in gm] == [2, 4, 8, 16, 16]
assert [p["planned"] for p in gm] == [500, 1000, 3000, 3000, 3000]
for x in days:
    assert x["total"] == sum(p["planned"] for p in x["providers"])
s = {p["name"]: p for p in d["providers"]}
assert s["acme"]["max_date"] == "2026-12-08" and s["gmail"]["max_date"] == "2026-12-09"
'
t "simulate table" 0 -p ramp.yaml --now 2026-12-04T08:00:00+09:00 simulate --days 5
out_has "simulate: reaches max" "day 3 (2026-12-08)"
out_has "simulate: marks the max day" "9.0     3000       3000 *max"
out_has "simulate: totals" "total"

# --- metrics -------------------------------------------------------------------------------
t "metrics" 0 "${P[@]}" --now 2026-12-02T09:00:00+09:00 metrics
out_has "metrics: attempts counter" 'ipwarm_attempts_total{provider="microsoft",outcome="deferred"} 7'
out_has "metrics: TYPE" "# TYPE ipwarm_attempts_total counter"
out_has "metrics: paused gauge" 'ipwarm_provider_paused{provider="gmail"} 1'
out_has "metrics: sent today (Tokyo date)" 'ipwarm_provider_sent_today{provider="microsoft"} 6'
out_has "metrics: stale sent today is 0" 'ipwarm_provider_sent_today{provider="gmail"} 0'
out_has "metrics: recipients" 'ipwarm_recipients{state="suppressed"} 1'
py "metrics: every sample line is NAME{labels} VALUE with HELP/TYPE before" '
import re
seen = set()
for line in sys.stdin.read().splitlines():
    if line.startswith("# TYPE "):
        seen.add(line.split()[2]); continue
    if line.startswith("#"): continue
    m = re.fullmatch(r"([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+)", line)
    assert m, line
    assert m.group(1) in seen, line
'
t "metrics -o" 0 "${P[@]}" metrics -o "$work/ipwarm.prom"
if grep -q '^ipwarm_recipients{state="done"} 35$' "$work/ipwarm.prom"; then ok "metrics file written"; else bad "metrics file written"; fi
if [ ! -e "$work/ipwarm.prom.tmp" ]; then ok "no temporary file left"; else bad "no temporary file left"; fi
t "metrics -o into a missing directory" 73 "${P[@]}" metrics -o "$work/no/such/dir.prom"

finish
