#!/usr/bin/env bash
# One truth for a provider's state: status --json, metrics and the HTML report say the same
# state, reason and end for every provider, in each state a provider can be in. A real run
# against SMTP servers on loopback puts the providers there:
#   yahoo      a 421 [TSS04] at MAIL: the shipped yahoo-tss04 rule suspends it for 2 h (and
#              backoff pauses it for less: after that pause ends it is still suspended)
#   microsoft  a block-list refusal at MAIL (S3150): suspended, one attempt counted as blocked
#   comcast    a 451 at RCPT: backoff pauses it
#   gmail      delivered, then `ipwarm pause gmail` without --for: held until resumed
#   corp       a daily cap of 2, two delivered: capped until local midnight
#   other      delivered: sending, and closed once the schedule's window has closed
# The expected values come from the store (sqlite3: the rule actions and provider rows the run
# wrote), from the plan and from Python's clock, never from the outputs compared.
# Environment: IPWARM, SRCDIR.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need sqlite3
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-views-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3
net=$(plans_net)
dnsmasq_start <<EOF
mx-host=yahoo.test,mta5.am0.yahoodns.net,10
host-record=mta5.am0.yahoodns.net,$net.4
mx-host=outlook.test,x.olc.protection.outlook.com,10
host-record=x.olc.protection.outlook.com,$net.3
mx-host=comcast.test,mx1.comcast.net,10
host-record=mx1.comcast.net,$net.5
mx-host=gmail.test,gmail-smtp-in.l.google.com,5
host-record=gmail-smtp-in.l.google.com,$net.2
mx-host=corp.test,in.mx.corp.test,10
host-record=in.mx.corp.test,$net.6
mx-host=calm.test,mx.calm.test,10
host-record=mx.calm.test,$net.7
EOF
port=$(free_port)
tss04="421 4.7.0 [TSS04] Messages from $net.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
s3150="550 5.7.1 Unfortunately, messages from [$net.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150)."
smtpd_start views "[
  {\"name\": \"yahoo\", \"host\": \"$net.4\", \"port\": $port, \"replies\": {\"mail\": \"$tss04\"}},
  {\"name\": \"ms\", \"host\": \"$net.3\", \"port\": $port, \"replies\": {\"mail\": \"$s3150\"}},
  {\"name\": \"comcast\", \"host\": \"$net.5\", \"port\": $port,
   \"replies\": {\"rcpt\": \"451 4.3.0 Mailbox temporarily unavailable, try again later\"}},
  {\"name\": \"gmail\", \"host\": \"$net.2\", \"port\": $port},
  {\"name\": \"corp\", \"host\": \"$net.6\", \"port\": $port},
  {\"name\": \"calm\", \"host\": \"$net.7\", \"port\": $port}
]"
{
  for i in 1 2; do echo "y$i@yahoo.test"; done
  for i in 1 2; do echo "m$i@outlook.test"; done
  for i in 1 2; do echo "c$i@comcast.test"; done
  for i in 1 2; do echo "g$i@gmail.test"; done
  for i in 1 2 3; do echo "k$i@corp.test"; done
  echo "o1@calm.test"
} >"$work/list.txt"
printf 'Hello {{recipient}}\n' >"$work/m.txt"
{ plans_head --zone Asia/Tokyo --timeouts 3s/10s --per-provider 1 views-test "$net" "$port"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "news@example.com", return_path: bounces@example.com}
message: {subject: hello, text_file: m.txt}
recipients: {file: list.txt, mode: once}
schedule: {days: [mon, tue, wed, thu, fri, sat, sun], hours: "08:00-20:00"}
ramp: {start: 60/min}
providers:
  - name: corp
    mx: [.mx.corp.test]
    ramp: {daily_cap: [2]}
EOF
db=$work/ipwarm.db
ipw() { "$IPWARM" -p "$work/plan.yaml" "$@"; }

# The run, from 10:00 in Tokyo (the clock runs on from --now).
ipw --now 2026-12-01T10:00:00+09:00 run --for 12s >"$work/run.out" 2>"$work/run.err"
rc=$?
check "the run exits 0 (got $rc)" test "$rc" -eq 0
check "no sanitizer report" clean "$work/run.err"
check "the run recorded yahoo's TSS04 suspension" \
  test "$(sqlite3 "$db" "SELECT count(*) FROM rule_actions WHERE provider = 'yahoo' AND rule = 'yahoo-tss04'")" -eq 1
check "and microsoft's refusal as blocked" \
  test "$(sqlite3 "$db" "SELECT count(*) FROM attempts WHERE provider = 'microsoft' AND outcome = 'blocked'")" -eq 1
check "comcast is backing off" \
  test "$(sqlite3 "$db" "SELECT count(*) FROM providers WHERE name = 'comcast' AND paused_until_ms > 0 AND pause_manual = 0")" -eq 1
check "corp sent its cap of two" \
  test "$(sqlite3 "$db" "SELECT sent_today FROM providers WHERE name = 'corp'")" -eq 2
ipw --now 2026-12-01T10:05:00+09:00 pause gmail >"$work/pause.out" 2>&1
check "pause gmail without --for" grep -q "paused gmail until resumed" "$work/pause.out"

# views AT: status --json, metrics and the report at AT, in $work/AT.{json,prom,html}.
views() {
  ipw --now "$1" --json status >"$work/$1.json" 2>"$work/$1.status.err" || bad "status at $1"
  ipw --now "$1" metrics >"$work/$1.prom" 2>"$work/$1.metrics.err" || bad "metrics at $1"
  ipw --now "$1" report -o "$work/$1.html" 2>"$work/$1.report.err" || bad "report at $1"
}

# compare AT EXPECTED: EXPECTED is "provider=state" words; the checker works out each
# provider's reason and end from the store and the plan, and compares all three outputs.
compare() {
  local at=$1
  shift
  views "$at"
  $py - "$db" "$work/$at" "$at" "$@" >"$work/$at.check" <<'EOF'
import datetime, html, json, re, sqlite3, sys, zoneinfo
db, base, at = sys.argv[1:4]
want = dict(w.split("=") for w in sys.argv[4:])
tz = zoneinfo.ZoneInfo("Asia/Tokyo")
now = datetime.datetime.fromisoformat(at)
now_ms = int(now.timestamp() * 1000)
con = sqlite3.connect(db)

def expect(c, w):
    print(("ok: " if c else "FAIL: ") + at + ": " + w)

def local(ms):
    # RFC 3339 in the plan's zone, with milliseconds when there are any (as ipwarm writes it).
    if not ms:
        return None
    t = datetime.datetime.fromtimestamp(ms / 1000, tz)
    return t.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")

def action(provider, manual):
    # The active suspension or hold that ends last (0: no end), from the store.
    rows = con.execute(
        "SELECT rule, reason, coalesce(expires_ms, 0) FROM rule_actions WHERE provider = ? "
        "AND action IN ('suspend', 'pause') AND manual = ? AND started_ms <= ? "
        "AND (expires_ms IS NULL OR expires_ms = 0 OR expires_ms > ?) ORDER BY id",
        (provider, manual, now_ms, now_ms)).fetchall()
    assert rows, "no active action for %s" % provider
    return max(rows, key=lambda r: float("inf") if r[2] == 0 else r[2])

def expected(provider, state):
    """(reason, until as local RFC 3339 or None) the store and the plan give."""
    if state == "suspended":
        rule, reason, until = action(provider, 0)
        return "suspend by rule %s: %s" % (rule, reason), local(until)
    if state == "held":
        rule, reason, until = action(provider, 1)
        return reason, local(until)
    if state == "paused":
        until, reason = con.execute("SELECT paused_until_ms, pause_reason FROM providers "
                                    "WHERE name = ?", (provider,)).fetchone()
        return "backoff: " + reason, local(until)
    if state == "capped":
        midnight = (now.astimezone(tz) + datetime.timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0)
        return "today's cap of 2 messages is reached", midnight.isoformat()
    if state == "closed":
        # The plan's window is 08:00-20:00 every day: the next 08:00.
        t = now.astimezone(tz)
        opens = t.replace(hour=8, minute=0, second=0, microsecond=0)
        if t >= opens:
            opens += datetime.timedelta(days=1)
        return "outside the schedule's sending windows", opens.isoformat()
    return None, None

status = {p["name"]: p for p in json.load(open(base + ".json"))["providers"]}
prom = {}
for line in open(base + ".prom"):
    m = re.fullmatch(r'([a-z_]+)\{([^}]*)\} (\S+)\n', line)
    if m:
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2))))
        prom[(m.group(1), labels)] = float(m.group(3))
page = open(base + ".html", encoding="utf-8").read()
rows = {}
for m in re.finditer(r'<tr class="pr" data-provider="([^"]*)" data-state="([^"]*)" '
                     r'data-until="([^"]*)">(.*?)</tr>', page):
    why = re.search(r'<span class="why">(.*?)</span>', m.group(4))
    rows[html.unescape(m.group(1))] = (m.group(2), html.unescape(m.group(3)) or None,
                                       html.unescape(why.group(1)) if why else None)

def gauge(name, provider, **kw):
    labels = tuple(sorted([("provider", provider)] + list(kw.items())))
    return prom.get((name, labels))

for provider, state in want.items():
    reason, until = expected(provider, state)
    s = status[provider]
    until_s = None if until is None else round(datetime.datetime.fromisoformat(until).timestamp(), 3)
    waits = state in ("held", "suspended", "paused")
    expect(s["state"] == state, "%s: status says %s (want %s)" % (provider, s["state"], state))
    expect(s["state_reason"] == reason,
           "%s: status' reason %r (want %r)" % (provider, s["state_reason"], reason))
    expect(s["state_until"] == until,
           "%s: status' end %s (want %s)" % (provider, s["state_until"], until))
    expect(s["paused"] == waits and s["paused_until"] == (until if waits else None)
           and s["pause_reason"] == (reason if waits else None),
           "%s: status' contract keys paused_until, pause_reason agree" % provider)
    expect(s["held"] == (waits and until is None), "%s: status' held key" % provider)
    states = {st: gauge("ipwarm_provider_state", provider, state=st)
              for st in ("sending", "held", "suspended", "paused", "capped", "closed")}
    expect(states[state] == 1 and sum(states.values()) == 1,
           "%s: metrics' state gauge is 1 for %s only: %s" % (provider, state, states))
    expect(gauge("ipwarm_provider_state_until_seconds", provider) == (until_s or 0),
           "%s: metrics' state end %s (want %s)" % (provider,
               gauge("ipwarm_provider_state_until_seconds", provider), until_s or 0))
    expect(gauge("ipwarm_provider_paused", provider) == (1 if waits else 0),
           "%s: metrics' paused gauge is %d" % (provider, 1 if waits else 0))
    expect(gauge("ipwarm_provider_paused_until_seconds", provider) ==
           ((until_s or 0) if waits else 0), "%s: metrics' paused_until gauge" % provider)
    r = rows.get(provider)
    expect(r == (state, until, reason),
           "%s: the report says %s (want %s)" % (provider, r, (state, until, reason)))
EOF
  tally "$work/$at.check"
}

compare 2026-12-01T10:05:10+09:00 yahoo=suspended microsoft=suspended comcast=paused gmail=held \
  corp=capped other=sending
# yahoo's backoff pause is over, its 2 h suspension is not: still suspended everywhere.
check "yahoo's backoff pause ends before 10:40" \
  test "$(sqlite3 "$db" "SELECT paused_until_ms < 1796089200000 FROM providers WHERE name = 'yahoo'")" -eq 1
compare 2026-12-01T10:40:00+09:00 yahoo=suspended comcast=sending gmail=held corp=capped other=sending
# After the window closed at 20:00: closed, except what is held or capped.
compare 2026-12-01T21:00:00+09:00 yahoo=closed comcast=closed gmail=held corp=capped other=closed
# The next morning: the cap and the window are a new day's.
compare 2026-12-02T08:30:00+09:00 corp=sending other=sending gmail=held

# The blocked refusal is counted by stats, metrics and the report alike.
want_blocked=$(sqlite3 "$db" "SELECT count(*) FROM attempts WHERE provider = 'microsoft' AND outcome = 'blocked'")
ipw --now 2026-12-01T10:05:10+09:00 stats --format json >"$work/stats.json" 2>/dev/null
ipw --now 2026-12-01T10:05:10+09:00 stats --format csv >"$work/stats.csv" 2>/dev/null
$py - "$work/stats.json" "$work/stats.csv" "$work/2026-12-01T10:05:10+09:00" "$want_blocked" >"$work/blocked.check" <<'EOF'
import csv, json, re, sys
want = int(sys.argv[4])
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
rows = [r for r in json.load(open(sys.argv[1]))["rows"] if r["provider"] == "microsoft"]
expect(sum(r["blocked"] for r in rows) == want, "stats --format json: microsoft blocked %d" % want)
c = [r for r in csv.DictReader(open(sys.argv[2], newline="")) if r["provider"] == "microsoft"]
expect(sum(int(r["blocked"]) for r in c) == want, "stats --format csv: microsoft blocked %d" % want)
prom = open(sys.argv[3] + ".prom").read()
expect('ipwarm_attempts_total{provider="microsoft",outcome="blocked"} %d\n' % want in prom,
       "metrics: microsoft's blocked counter is %d" % want)
page = open(sys.argv[3] + ".html", encoding="utf-8").read()
m = re.search(r'<tr><td class="">microsoft</td>((?:<td class="n">[^<]*</td>)+)</tr>', page)
cells = re.findall(r'<td class="n">([^<]*)</td>', m.group(1)) if m else []
# attempts, delivered, deferred, bounced, failed, blocked, unknown, rates
expect(len(cells) >= 6 and cells[5] == str(want), "report totals: microsoft blocked %d" % want)
EOF
tally "$work/blocked.check"
finish
