#!/usr/bin/env bash
# `ipwarm run` recovers instead of dying or dead-ending. (1) A run with a mistaken --now next
# month, then plain runs: the later run sends (it used to exit 64 for good), says the state was
# written with a clock ahead, keeps the provider's stage and sending day, and moves its day to
# today; the run after says nothing more. (2) SIGHUP (a closed terminal, a session ending) ends
# a run like SIGTERM: the message in flight finishes, exit 0, no attempt left in flight.
# Real servers on loopback: dnsmasq answers the MX lookups, tests/servers/smtpd.py the SMTP.
# Environment: IPWARM, SRCDIR.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-recovery-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
net=$(plans_net)

dnsmasq_start < <(plans_mx "$net" other:5) || bad "dnsmasq"
sport=$(free_port)
smtpd_start mx "[{\"name\": \"other\", \"host\": \"$net.5\", \"port\": $sport,
  \"mode_file\": \"$work/mx.mode\", \"modes\": {\"slow\": {\"delay_ms\": {\"data\": 4000}}}}]" ||
  bad "smtpd.py"
log=$SMTPD_LOG
{
  echo email
  for i in $(seq 1 40); do echo "o$i@other.test"; done
} >"$work/seeds.csv"
printf 'Hello,\n\nwarm-up message {{seq}}.\n' >"$work/message.txt"
{ plans_head --state state.db --timeouts 5s/10s recovery "$net" "$sport"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "Example <news@example.com>"}
message: {subject: Hello, text_file: message.txt}
recipients: {file: seeds.csv, mode: once}
ramp: {start: 60/min, growth: 1.5, max: 600/min}
EOF
db=$work/state.db
q() { sqlite3 "$db" "$1" 2>/dev/null; }
delivered() { q "SELECT count(*) FROM attempts WHERE outcome = 'delivered'"; }

# --- (1) a run with --now next month, then runs with the real clock -------------------------
# Each run is given 6 s: each must deliver at least one message, even after a slow start.
future=$(date -u -d '+35 days' +%Y-%m-%dT%H:%M:%SZ)
future_day=${future%%T*}
timeout 60 "$IPWARM" -p "$work/plan.yaml" --now "$future" run --for 6s >"$work/r1.out" 2>"$work/r1.err"
rc=$?
check "the run with --now next month exits 0 (got $rc: $(tail -1 "$work/r1.err"))" test "$rc" -eq 0
n1=$(delivered)
check "it delivered (got ${n1:-none})" test "${n1:-0}" -ge 1
check "its sending day is dated next month ($(q "SELECT sending_day_date FROM providers WHERE name = 'other'"))" \
  test "$(q "SELECT sending_day_date FROM providers WHERE name = 'other'")" = "$future_day"
day1=$(q "SELECT sending_day FROM providers WHERE name = 'other'")
stage1=$(q "SELECT stage FROM providers WHERE name = 'other'")

timeout 60 "$IPWARM" -p "$work/plan.yaml" run --for 6s >"$work/r2.out" 2>"$work/r2.err"
rc=$?
today=$(date -u +%Y-%m-%d)
check "the next run with the real clock exits 0, not 64 (got $rc: $(tail -1 "$work/r2.err"))" test "$rc" -eq 0
n2=$(delivered)
check "it sends again ($n1 then ${n2:-none} delivered)" test "${n2:-0}" -gt "${n1:-0}"
check "it warns that the state was written with a clock ahead" \
  grep -qF "ipwarm: warning: the state file $db was written with a clock ahead of this one (other" "$work/r2.err"
check "the warning names the stored day and today" \
  grep -qF "sending day dated $future_day): going on from now, $today," "$work/r2.err"
check "the stage is kept ($stage1)" test "$(q "SELECT stage FROM providers WHERE name = 'other'")" = "$stage1"
check "the sending day is kept ($day1)" test "$(q "SELECT sending_day FROM providers WHERE name = 'other'")" = "$day1"
check "the sending day is now dated today ($(q "SELECT sending_day_date FROM providers WHERE name = 'other'"))" \
  test "$(q "SELECT sending_day_date FROM providers WHERE name = 'other'")" = "$today"

timeout 60 "$IPWARM" -p "$work/plan.yaml" run --for 6s >"$work/r3.out" 2>"$work/r3.err"
rc=$?
check "the run after exits 0 (got $rc)" test "$rc" -eq 0
if grep -q "warning" "$work/r3.err"; then bad "the run after warns again: $(cat "$work/r3.err")"; else
  ok "the run after has nothing to warn about"; fi
check "the run after sends too" test "$(delivered)" -gt "${n2:-0}"

# --- (2) SIGHUP while a message is in flight --------------------------------------------------
# A state file of its own, so that this part does not depend on the first.
echo slow >"$work/mx.mode" # the server now waits 4 s before it answers the message
db=$work/hup.db
before=0
"$IPWARM" -p "$work/plan.yaml" --db "$db" run >"$work/hup.out" 2>"$work/hup.err" &
runner=$!
inflight=0
for _ in $(seq 400); do
  [ "$(q "SELECT count(*) FROM attempts WHERE outcome = 'in-flight'")" = 1 ] && inflight=1 && break
  sleep 0.05
done
check "a message is in flight before the signal" test "$inflight" -eq 1
hup_rcpt=$(q "SELECT recipient FROM attempts WHERE outcome = 'in-flight'")
kill -HUP "$runner"
rc=124
for _ in $(seq 600); do
  if ! kill -0 "$runner" 2>/dev/null; then
    wait "$runner"
    rc=$?
    break
  fi
  sleep 0.05
done
[ "$rc" -eq 124 ] && kill -KILL "$runner" 2>/dev/null
check "SIGHUP: the run ends with exit 0 (got $rc; 129 is death by the signal)" test "$rc" -eq 0
check "SIGHUP: no attempt left in flight" test "$(q "SELECT count(*) FROM attempts WHERE outcome = 'in-flight'")" -eq 0
# The server takes 4 s to answer, longer than the run's grace after a signal (1.5 s): the
# message, whose final dot had gone, is unknown and its recipient held, never sent twice.
hup=$(q "SELECT a.outcome || '/' || r.state FROM attempts a JOIN recipients r ON r.address = a.recipient WHERE a.recipient = '$hup_rcpt' ORDER BY a.id DESC LIMIT 1")
check "SIGHUP: the message in flight is delivered, or unknown and held ($hup_rcpt: $hup)" \
  sh -c "[ '$hup' = delivered/done ] || [ '$hup' = unknown/held ]"
check "SIGHUP: nothing new was started after it" \
  test "$(q "SELECT count(*) FROM attempts")" -eq $((before + 1))

finish
