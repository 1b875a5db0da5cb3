#!/usr/bin/env bash
# Inbox placement over three sending days (with --now), against real servers on loopback:
# tests/servers/smtpd.py plays Gmail (every seed copy to the inbox), Microsoft (every second
# copy to junk) and Yahoo (every copy to junk) and delivers the copies over LMTP into a real
# Dovecot; `feedback poll` reads them back. With advance_if.inbox_rate_above 60% and
# placement.fall {min_placed: 2, for: 36h}: Gmail grows each day, Microsoft (50%) holds, and
# Yahoo (0%: under half of 60%) is throttled to half its rate, as a throttling deferral would
# cut it, once per day it falls, with the reason recorded (day 1 by `feedback poll`, day 2 by
# `run`'s own poll, which warns); status, stats, metrics (promtool) and the report show it, and
# validate shows placement.fall (a min_placed of 0 is refused). `simulate` explains each gated provider's next day: Gmail grows,
# Microsoft holds, with the inbox rate that decides it. Every expected figure comes from the
# server's log of where it put each copy.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3 dovecot doveadm
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-pdays-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
PY=$SERVERS_PY

pw='Seed-pw-5120'
must "dovecot started" dovecot_start "gs1:$pw" "gs2:$pw" "ys1:$pw" "ys2:$pw" "ms1:$pw" "ms2:$pw"
net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" gmail yahoo outlook)
port=$(free_port)
must "smtpd.py started" smtpd_start pdays "[
 $(plans_listener gmail "$net" "$port" '"seeds": {"regex": "^g"}'),
 $(plans_listener yahoo "$net" "$port" '"seeds": {"regex": "^y", "junk_every": 1}'),
 $(plans_listener outlook "$net" "$port" '"seeds": {"regex": "^m", "junk_every": 2}')
]" "\"deliver\": {\"lmtp\": \"127.0.0.1:$DOVECOT_LMTP_PORT\"}"

printf '%s\n' gs1@gmail.test gs2@gmail.test ys1@yahoo.test ys2@yahoo.test \
  ms1@outlook.test ms2@outlook.test >"$work/list.txt"
plans_message "$work"
{
  plans_head place-days "$net" "$port"
  cat <<EOF
sender: {from: "Example <news@example.com>"}
message: {subject: "Placement days", text_file: message.txt}
recipients: {file: list.txt}
ramp: {start: 100/min, growth: 2, max: 800/min, advance_if: {inbox_rate_above: 60%}}
placement: {fall: {min_placed: 2, for: 36h}}
EOF
  plans_providers gmail yahoo microsoft
  echo "seeds:"
  for u in gs1@gmail.test ys1@yahoo.test ys2@yahoo.test gs2@gmail.test ms1@outlook.test ms2@outlook.test; do
    plans_seed "$u"
  done
} >"$work/plan.yaml"
db=$work/ipwarm.db
q() { sqlite3 "$db" "$1"; }
export SEED_PW=$pw
ipw() { "$IPWARM" -p "$work/plan.yaml" "$@"; }

# want DATE: per provider "inbox junk" of the copies smtpd.py placed for messages sent on DATE
# (the store's attempt start date), as JSON.
want() {
  "$PY" - "$SMTPD_LOG" "$db" "$1" <<'PYEOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[2])
day = dict(db.execute("SELECT message_id, strftime('%Y-%m-%d', started_ms / 1000, 'unixepoch') "
                      "FROM attempts WHERE outcome = 'delivered'").fetchall())
prov = {"gmail.test": "gmail", "yahoo.test": "yahoo", "outlook.test": "microsoft"}
c = {p: [0, 0] for p in prov.values()}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["ev"] == "placed" and e["delivered"] and day.get(e["message_id"]) == sys.argv[3]:
        c[prov[e["rcpt"].split("@")[1]]][0 if e["folder"] == "INBOX" else 1] += 1
print(json.dumps(c))
PYEOF
}

ipw --json validate >"$work/validate.json" 2>/dev/null
check "validate --json shows placement.fall as written" "$PY" -c '
import json, sys
f = json.load(open(sys.argv[1]))["placement"]["fall"]
sys.exit(0 if f == {"min_placed": 2, "for": "1d12h", "for_ms": 129600000} else 1)' "$work/validate.json"
ipw validate >"$work/validate.txt" 2>/dev/null
check "validate says what the fall does" grep -qxF "placement: a day under half of advance_if.inbox_rate_above, with at least 2 copies placed, throttles the provider for 1d12h" "$work/validate.txt"
sed 's/^placement: .*/placement: {fall: {min_placed: 0}}/' "$work/plan.yaml" >"$work/bad.yaml"
"$IPWARM" -p "$work/bad.yaml" validate >/dev/null 2>"$work/bad.err"
check "a plan with placement.fall.min_placed 0 is refused (exit 78)" test $? -eq 78
check "... naming the key" grep -q "placement.fall.min_placed" "$work/bad.err"

# --- day 1 --------------------------------------------------------------------------------------
ipw --now 2026-12-01T10:00:00Z run --for 15s >"$work/run1.out" 2>"$work/run1.err"
check "day 1: run exits 0 ($(tail -n 2 "$work/run1.err"))" test $? -eq 0
check "day 1: smtpd.py placed the six seed copies" smtpd_wait_placed 6
want 2026-12-01 >"$work/want1.json"
check "day 1: the server put gmail 2/0, microsoft 1/1, yahoo 0/2 (inbox/junk) ($(cat "$work/want1.json"))" \
  test "$(cat "$work/want1.json")" = '{"gmail": [2, 0], "yahoo": [0, 2], "microsoft": [1, 1]}'

ipw --now 2026-12-01T12:00:00Z --json feedback poll >"$work/poll1.json" 2>"$work/poll1.err"
check "day 1: the poll exits 0 ($(tail -n 1 "$work/poll1.err"))" test $? -eq 0
check "day 1: the poll placed all six copies" test "$(q "SELECT count(*) FROM placements")" = 6
check "day 1: the poll's JSON names yahoo among the placement actions" "$PY" -c '
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["placement_actions"] == ["yahoo"] else 1)' "$work/poll1.json"
# Yahoo sent at 100/min, nothing cut it: the fall halves it (backoff.deferral.factor 0.5).
reason1='inbox rate 0% on 2026-12-01 (0 of 2 seed copies), below half of inbox_rate_above 60%'
check "day 1: yahoo (0% < 30%) throttled to 50/min for 36 h by rule inbox-rate, with its reason" \
  test "$(q "SELECT provider || '|' || action || '|' || rate_per_min || '|' || (expires_ms - started_ms) || '|' || reason FROM rule_actions WHERE rule = 'inbox-rate'")" \
  = "yahoo|throttle|50.0|129600000|$reason1"
ipw --now 2026-12-01T12:05:00Z --json feedback poll >"$work/poll1b.json" 2>/dev/null
check "day 1: a second poll records no second throttle for the same day" \
  test "$(q "SELECT count(*) FROM rule_actions WHERE rule = 'inbox-rate'")" = 1

ipw --now 2026-12-01T12:10:00Z --json status >"$work/status1.json"
check "status: yahoo is throttled to 50/min by inbox-rate, with the reason; gmail and microsoft are not" \
  "$PY" - "$work/status1.json" "$reason1" <<'PYEOF'
import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["providers"]}
y = p["yahoo"]
ok = (y["throttled"] and y["rate_per_min"] == 50
      and [(a["rule"], a["action"], a["rate_per_min"], a["reason"]) for a in y["actions"]]
          == [("inbox-rate", "throttle", 50, sys.argv[2])]
      and not p["gmail"]["actions"] and not p["microsoft"]["actions"])
if not ok:
    print(y, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
ipw --now 2026-12-01T12:10:00Z status >"$work/status1.txt"
check "status prints yahoo's throttle" grep -q "throttled to 50" "$work/status1.txt"
# The line is cut to the terminal's width; --json has it whole (above).
check "status prints the rule and the start of its reason" grep -qF "    rule inbox-rate: inbox rate 0% on 2026-12-01 (0 of 2" "$work/status1.txt"
ipw --now 2026-12-01T12:10:00Z --json stats >"$work/stats1.json"
check "stats lists the inbox-rate throttle of yahoo" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))["rules"]
sys.exit(0 if [(x["provider"], x["rule"], x["action"], x["count"]) for x in r if x["rule"] == "inbox-rate"] == [("yahoo", "inbox-rate", "throttle", 1)] else 1)' "$work/stats1.json"

# metrics: the placement counters per provider and folder, and the latest day's inbox rate.
ipw --now 2026-12-01T12:10:00Z metrics >"$work/m1.prom"
check "metrics exits 0" test $? -eq 0
"$PY" - "$work/want1.json" >"$work/m1.want" <<'PYEOF'
import json, sys
w = json.load(open(sys.argv[1]))
for p in sorted(w):
    i, j = w[p]
    print('ipwarm_placement_total{provider="%s",folder="inbox"} %d' % (p, i))
    print('ipwarm_placement_total{provider="%s",folder="junk"} %d' % (p, j))
    print('ipwarm_placement_total{provider="%s",folder="missing"} 0' % p)
    print('ipwarm_placement_pending{provider="%s"} 0' % p)
    print('ipwarm_inbox_rate{provider="%s"} %g' % (p, i / (i + j)))
PYEOF
missing_lines=$(grep -vxFf "$work/m1.prom" "$work/m1.want" | tr '\n' ';')
check "metrics has every placement series as the server placed them (missing: $missing_lines)" test -z "$missing_lines"
check "metrics shows yahoo's throttled rate" grep -qxF 'ipwarm_provider_rate_per_min{provider="yahoo"} 50' "$work/m1.prom"
if command -v promtool >/dev/null 2>&1; then
  check "promtool accepts the metrics with placement" bash -c "promtool check metrics <'$work/m1.prom'"
else
  skip "promtool is not installed (Debian package prometheus)"
fi

ipw --now 2026-12-01T12:10:00Z report -o "$work/r1.html" 2>"$work/r1.err"
check "report exits 0" test $? -eq 0
check "the report has the placement section" grep -q '<h2>Inbox placement (seed mailboxes)</h2>' "$work/r1.html"
check "the report charts yahoo's two junk copies on day 1" grep -qF '<title>2026-12-01 junk: 2 of 2</title>' "$work/r1.html"
check "the report charts gmail's two inbox copies on day 1" grep -qF '<title>2026-12-01 inbox: 2 of 2</title>' "$work/r1.html"
check "the report refers to no other resource" bash -c "! grep -qiE '<script|<link|src=\"http' '$work/r1.html'"

# --- simulate explains day 2 ---------------------------------------------------------------------
ipw --now 2026-12-02T09:00:00Z --json simulate --days 3 >"$work/sim2.json"
check "simulate --json exits 0" test $? -eq 0
check "simulate: gmail grows (placement passes), microsoft holds on its inbox rate, yahoo holds" \
  "$PY" - "$work/sim2.json" "$work/want1.json" <<'PYEOF'
import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["providers"]}
w = json.load(open(sys.argv[2]))
mi, mj = w["microsoft"]
want = {
  "gmail": {"holds": False, "reason": "grows to stage 1: inbox rate 100% on 2026-12-01 (2 of 2 seed copies) above inbox_rate_above 60%"},
  "microsoft": {"holds": True, "reason": "holds at stage 0: inbox rate %g%% on 2026-12-01 (%d of %d seed copies) not above inbox_rate_above 60%%" % (100.0 * mi / (mi + mj), mi, mi + mj)},
  "yahoo": {"holds": True, "reason": "holds at stage 0: inbox rate 0% on 2026-12-01 (0 of 2 seed copies) not above inbox_rate_above 60%"},
}
got = {n: p[n]["placement"] for n in want}
if got != want or p["other"]["placement"] is not None:
    print(got, file=sys.stderr)
sys.exit(0 if got == want and p["other"]["placement"] is None else 1)
PYEOF
ipw --now 2026-12-02T09:00:00Z simulate --days 3 >"$work/sim2.txt"
check "simulate says why microsoft holds" grep -qxF "placement: microsoft holds at stage 0: inbox rate 50% on 2026-12-01 (1 of 2 seed copies) not above inbox_rate_above 60%" "$work/sim2.txt"
check "simulate says why gmail grows" grep -qxF "placement: gmail grows to stage 1: inbox rate 100% on 2026-12-01 (2 of 2 seed copies) above inbox_rate_above 60%" "$work/sim2.txt"

# --- day 2 ----------------------------------------------------------------------------------------
ipw --now 2026-12-02T10:00:00Z run --for 15s >"$work/run2.out" 2>"$work/run2.err"
check "day 2: run exits 0 ($(tail -n 2 "$work/run2.err"))" test $? -eq 0
check "day 2: gmail runs at stage 1, microsoft and yahoo at stage 0 (stored)" \
  test "$(q "SELECT group_concat(name || '=' || stage, ' ') FROM (SELECT * FROM providers WHERE name IN ('gmail','yahoo','microsoft') ORDER BY name)")" = "gmail=1 microsoft=0 yahoo=0"
check "day 2: smtpd.py placed six more copies" smtpd_wait_placed 12
want 2026-12-02 >"$work/want2.json"
# This time `run` reads the seeds (it polls when it starts) and acts on the fall itself.
ipw --now 2026-12-02T12:00:00Z run --for 5s >"$work/run2b.out" 2>"$work/run2b.err"
check "day 2: a run at noon exits 0 ($(tail -n 1 "$work/run2b.err"))" test $? -eq 0
check "day 2: that run placed the day's six copies" \
  test "$(q "SELECT count(*) FROM placements")" = 12
check "day 2: the run warns that yahoo was throttled" \
  grep -qF "warning: inbox rate under half of advance_if.inbox_rate_above: yahoo throttled" "$work/run2b.err"
# Still throttled at 50/min from day 1: the second fall halves that again, as repeated
# deferrals would.
check "day 2: yahoo falls again: a second throttle, to 25/min, naming 2026-12-02" \
  test "$(q "SELECT rate_per_min || '|' || reason FROM rule_actions WHERE rule = 'inbox-rate' ORDER BY id DESC LIMIT 1")" \
  = "25.0|inbox rate 0% on 2026-12-02 (0 of 2 seed copies), below half of inbox_rate_above 60%"
check "day 2: two inbox-rate throttles in all, both yahoo's" \
  test "$(q "SELECT group_concat(provider, ' ') FROM rule_actions WHERE rule = 'inbox-rate'")" = "yahoo yahoo"

ipw --now 2026-12-03T09:00:00Z --json simulate --days 2 >"$work/sim3.json"
check "day 3: simulate: gmail grows to stage 2, microsoft still holds at 0, on day 2's figures" \
  "$PY" - "$work/sim3.json" "$work/want2.json" <<'PYEOF'
import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["providers"]}
w = json.load(open(sys.argv[2]))
gi, gj = w["gmail"]
mi, mj = w["microsoft"]
g = "grows to stage 2: inbox rate %g%% on 2026-12-02 (%d of %d seed copies) above inbox_rate_above 60%%" % (100.0 * gi / (gi + gj), gi, gi + gj)
m = "holds at stage 0: inbox rate %g%% on 2026-12-02 (%d of %d seed copies) not above inbox_rate_above 60%%" % (100.0 * mi / (mi + mj), mi, mi + mj)
ok = p["gmail"]["placement"]["reason"] == g and p["microsoft"]["placement"]["reason"] == m
if not ok:
    print(p["gmail"]["placement"], p["microsoft"]["placement"], file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
ipw --now 2026-12-03T09:00:00Z --json status >"$work/status3.json"
check "day 3: status: gmail's stage today is 2, microsoft's 0" "$PY" -c '
import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["providers"]}
sys.exit(0 if (p["gmail"]["stage_today"], p["microsoft"]["stage_today"]) == (2, 0) else 1)' "$work/status3.json"

finish
