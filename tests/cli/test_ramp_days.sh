#!/usr/bin/env bash
# Sending days across real runs: with --now set to three consecutive days (Asia/Tokyo), the
# engine grows gmail's rate after each clean sending day exactly as `simulate` projects it,
# a day of deferrals at twice the threshold steps it back, and a day without sending is not
# a sending day. Real servers on loopback: dnsmasq and tests/servers/smtpd.py.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-days-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" gmail)
port=$(free_port)
smtpd_start days "[{\"name\": \"gmail\", \"host\": \"$net.2\", \"port\": $port,
  \"mode_file\": \"$work/mode\", \"modes\": {\"busy\": {\"mail\": \"421 4.7.0 Try again later, closing connection.\"}}}]"
printf 'a@gmail.test\nb@gmail.test\nc@gmail.test\n' >"$work/seeds.txt"
plans_message "$work"
{ plans_head --zone Asia/Tokyo days-test "$net" "$port"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Day test", text_file: message.txt}
recipients: {file: seeds.txt, mode: cycle}
ramp: {start: 60/min, growth: 2, max: 600/min, advance_if: {deferral_rate_below: 5%, bounce_rate_below: 2%}}
backoff: {retry: {first: 1s, max: 1s, give_up_after: 1d}}
EOF
db=$work/ipwarm.db
day() { # day DATE: a short run on that local date (6 s: room for a slow start on a loaded machine)
  "$IPWARM" -p "$work/plan.yaml" --now "${1}T10:00:00+09:00" run --for 6s >/dev/null 2>"$work/day-$1.err"
}
row() { sqlite3 "$db" "SELECT stage || ' ' || sending_day || ' ' || sending_day_date FROM providers WHERE name = 'gmail'"; }

"$IPWARM" -p "$work/plan.yaml" --now 2026-12-01T09:00:00+09:00 simulate --days 4 --json >"$work/sim.json"
check "simulate --json exits 0" test $? -eq 0
sim() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$work/sim.json')); print([p['rate_per_min'] for p in d['days'][$1]['providers'] if p['name']=='gmail'][0])"; }
rate() { sqlite3 "$db" "SELECT pace_rate FROM providers WHERE name = 'gmail'"; }
same() { /usr/bin/python3 -c "import sys; sys.exit(0 if abs(float('$1') - float('$2')) < 1e-9 else 1)"; }

day 2026-12-01
check "day 1: stage 0, sending day 1 ($(row))" test "$(row)" = "0 1 2026-12-01"
check "day 1: the engine paces at simulate's day-1 rate ($(rate) vs $(sim 0))" same "$(rate)" "$(sim 0)"
day 2026-12-02
check "day 2 after a clean day: stage 1 ($(row))" test "$(row)" = "1 2 2026-12-02"
check "day 2: the engine paces at simulate's day-2 rate ($(rate) vs $(sim 1))" same "$(rate)" "$(sim 1)"
# 2026-12-03 sends nothing: it is not a sending day.
day 2026-12-04
check "the next day with mail is sending day 3, stage 2 ($(row))" test "$(row)" = "2 3 2026-12-04"
check "day 3: the engine paces at simulate's day-3 rate ($(rate) vs $(sim 2))" same "$(rate)" "$(sim 2)"
# A day on which every message is deferred (far over twice the 5% threshold) ...
echo busy >"$work/mode"
day 2026-12-05
rm -f "$work/mode"
check "day 4 grew after clean day 3, then its messages were deferred ($(row))" test "$(row)" = "3 4 2026-12-05"
# ... makes the next sending day step back one stage.
day 2026-12-06
check "after a day at twice the threshold the stage steps back to 2 ($(row))" test "$(row)" = "2 5 2026-12-06"

finish
