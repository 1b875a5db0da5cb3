#!/usr/bin/env bash
# Complaints steer the ramp, across days set with --now (as test_ramp_days.sh does), against
# real servers on loopback: dnsmasq, tests/servers/smtpd.py (gmail answers every message to
# c1@ with an ARF complaint, delivered over LMTP into a real Dovecot; yahoo never complains) and
# `run` itself reading the mailbox at its start (feedback.poll_every). Day 1 sends 4 messages
# per provider (daily_cap); day 2's run reads the complaint, which counts against day 1, so
# gmail holds at stage 0 (advance_if.complaint_rate_below) while yahoo grows; the complaint's
# recipient is suppressed and not sent again. Day 2 brings gmail to min_delivered, so day 3's
# run suspends it (feedback.complaints, a rule action with its reason): no gmail mail on day 3,
# yahoo goes on. Day 4's mailbox refuses the login: a warning, and sending goes on.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3 dovecot
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-fbdays-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
PY=$SERVERS_PY

pw='Days-Secret-3310'
must "dovecot started" dovecot_start "bounces:$pw"
net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" gmail yahoo)
port=$(free_port)
must "smtpd.py started" smtpd_start days "[
 {\"name\": \"gmail\", \"host\": \"$net.2\", \"port\": $port, \"complain\": {\"regex\": \"^c1@\"}},
 {\"name\": \"yahoo\", \"host\": \"$net.3\", \"port\": $port}
]" "\"deliver\": {\"lmtp\": \"127.0.0.1:$DOVECOT_LMTP_PORT\"}"

for d in gmail yahoo; do
  for u in c1 a1 a2 a3 a4 a5 a6 a7 a8 a9; do echo "$u@$d.test"; done
done >"$work/list.txt"
plans_message "$work"
{ plans_head days-fb "$net" "$port"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Day test", text_file: message.txt}
recipients: {file: list.txt, mode: cycle}
ramp: {start: 600/min, growth: 2, max: 4800/min, daily_cap: [4],
       advance_if: {deferral_rate_below: 5%, bounce_rate_below: 2%, complaint_rate_below: 0.1%}}
feedback:
  mailbox: {url: "imap://127.0.0.1:$DOVECOT_IMAP_PORT", username: bounces,
            password_env: DAYS_PW, tls: none}
  poll_every: 1m
  complaints: {rate_above: 0.3%, min_delivered: 6, action: suspend, for: 24h}
EOF
export DAYS_PW=$pw
db=$work/ipwarm.db
q() { sqlite3 "$db" "$1"; }
day() { # day DATE: a short run on that date
  "$IPWARM" -p "$work/plan.yaml" --now "${1}T10:00:00Z" run --for 3s >"$work/day-$1.out" 2>"$work/day-$1.err"
}
row() { q "SELECT stage || ' ' || sending_day || ' ' || sending_day_date FROM providers WHERE name = '$1'"; }
sent() { q "SELECT count(*) FROM attempts WHERE provider = '$1' AND outcome = 'delivered' AND date(started_ms / 1000, 'unixepoch') = '$2'"; }

day 2026-12-01
check "day 1: run exits 0 ($(tail -n 1 "$work/day-2026-12-01.err"))" test $? -eq 0
check "day 1: 4 messages per provider (daily_cap)" test "$(sent gmail 2026-12-01) $(sent yahoo 2026-12-01)" = "4 4"
check "day 1: both at stage 0, sending day 1" test "$(row gmail)|$(row yahoo)" = "0 1 2026-12-01|0 1 2026-12-01"
check "day 1: c1@gmail.test was among them" test "$(q "SELECT count(*) FROM attempts WHERE recipient = 'c1@gmail.test'")" = 1
"$PY" - "$SMTPD_LOG" >"$work/wait.out" <<'PYEOF'
import json, sys, time
end = time.time() + 60
while time.time() < end:
    got = [json.loads(l) for l in open(sys.argv[1])]
    got = [e for e in got if e["ev"] == "complaint"]
    if got:
        break
    time.sleep(0.1)
ok = len(got) == 1 and got[0]["delivered"] and got[0]["rcpt"] == "c1@gmail.test"
print(("ok: " if ok else "FAIL: ") + "gmail sent its complaint about c1@gmail.test into the mailbox: %s" % got)
PYEOF
tally "$work/wait.out"
check "day 1's own poll (at its start) found nothing yet" test "$(q "SELECT count(*) FROM feedback_reports")" = 0

day 2026-12-02
check "day 2: run exits 0 ($(tail -n 1 "$work/day-2026-12-02.err"))" test $? -eq 0
check "day 2's run read the complaint, matched by the original Message-ID" \
  test "$(q "SELECT kind || ' ' || recipient || ' ' || matched_by || ' ' || provider FROM feedback_reports")" = "complaint c1@gmail.test message-id gmail"
check "the complaint counts against day 1 (the day its message went out)" \
  test "$(q "SELECT sum(complaints) FROM summary_hourly WHERE provider = 'gmail' AND date(hour_ms / 1000, 'unixepoch') = '2026-12-01'")" = 1
check "c1@gmail.test is suppressed" test "$(q "SELECT state FROM recipients WHERE address = 'c1@gmail.test'")" = suppressed
check "day 2: gmail, whose day 1 drew a complaint, holds at stage 0" test "$(row gmail)" = "0 2 2026-12-02"
check "day 2: yahoo, clean, grows to stage 1" test "$(row yahoo)" = "1 2 2026-12-02"
check "day 2: c1@gmail.test is not sent again" test "$(q "SELECT count(*) FROM attempts WHERE recipient = 'c1@gmail.test'")" = 1
check "day 2: 4 more messages per provider" test "$(sent gmail 2026-12-02) $(sent yahoo 2026-12-02)" = "4 4"
check "day 2: no suspension yet (gmail had 4 delivered, under min_delivered 6)" \
  test "$(q "SELECT count(*) FROM rule_actions WHERE rule = 'complaint-rate'")" = 0

day 2026-12-03
check "day 3: run exits 0" test $? -eq 0
delivered=$(q "SELECT count(*) FROM attempts WHERE provider = 'gmail' AND outcome = 'delivered'")
check "day 3: gmail is suspended for its complaint rate, with the reason (1 over $delivered delivered)" \
  test "$(q "SELECT provider || '|' || action || '|' || (expires_ms - started_ms) || '|' || reason FROM rule_actions WHERE rule = 'complaint-rate'")" \
  = "gmail|suspend|86400000|complaint rate 12.50% (1 complaints over $delivered delivered in 7 days) is above feedback.complaints.rate_above 0.3%"
check "day 3: the suspension starts at day 3's poll" \
  test "$(q "SELECT started_ms >= $(date -u -d 2026-12-03T10:00:00Z +%s)000 FROM rule_actions WHERE rule = 'complaint-rate'")" = 1
check "day 3: no gmail mail" test "$(q "SELECT count(*) FROM attempts WHERE provider = 'gmail' AND date(started_ms / 1000, 'unixepoch') = '2026-12-03'")" = 0
check "day 3: yahoo goes on (4 messages)" test "$(sent yahoo 2026-12-03)" = 4
check "day 3 was no sending day for gmail" test "$(row gmail)" = "0 2 2026-12-02"
"$IPWARM" -p "$work/plan.yaml" --now 2026-12-03T12:00:00Z --json status >"$work/status.json" 2>&1
check "status shows gmail paused, with the complaint rate as the reason" "$PY" - "$work/status.json" <<'PYEOF'
import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["providers"]}
g, y = p["gmail"], p["yahoo"]
sys.exit(0 if g["paused_until"] and "complaint rate 12.50%" in (g["pause_reason"] or "") and not y["paused_until"] else 1)
PYEOF
check "no warning about the mailbox in any run" bash -c "! grep -q 'feedback poll failed' '$work'/day-*.err"

# A mailbox that refuses the login does not stop sending: a warning, and yahoo's day goes on.
wrong='Wr0ng-Days-Pw-5'
DAYS_PW=$wrong "$IPWARM" -p "$work/plan.yaml" --now 2026-12-04T10:00:00Z run --for 3s >"$work/day4.out" 2>"$work/day4.err"
check "day 4 with a wrong mailbox password: run exits 0" test $? -eq 0
check "day 4: the failed poll is a warning that says sending goes on" \
  grep -q "ipwarm: warning: feedback poll failed, sending goes on: IMAP mailbox imap://127.0.0.1:$DOVECOT_IMAP_PORT (user bounces): the server refused the login" "$work/day4.err"
check "day 4: yahoo sent its 4 messages" test "$(sent yahoo 2026-12-04)" = 4
check "day 4: the password is in no output" bash -c "! grep -q -e '$wrong' -e '$pw' '$work/day4.out' '$work/day4.err'"

finish
