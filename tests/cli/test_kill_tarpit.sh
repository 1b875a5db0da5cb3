#!/usr/bin/env bash
# kill -9 and a tarpit together lose no recipient and send none twice blindly (issue 16).
#
# Thirty recipients at two providers, each its own SMTP server on loopback: "healthy" answers at
# once, "tarpit" holds its reply 2.5 s after the final dot in the rounds where its mode file says
# so (the window where a message may or may not have been taken). `ipwarm run` is started eight
# times and killed with SIGKILL at varied moments, each chosen by waiting for an event in the
# server's log, never by a fixed sleep: odd rounds just after the tarpit receives a DATA (the kill
# lands in the tarpit), even rounds after one, two or three more messages were accepted. Then runs
# go on to the end, with `ipwarm release --all` for the recipients held because their message's
# fate was unknown. From the server's log (the messages it accepted, by recipient) and the store:
# every recipient is delivered exactly once in the store and accepted at least once by its server;
# a recipient accepted more than once was released after an unknown attempt, at most once more
# than it was released; the unknowns are bounded by the messages that can be in flight at a kill.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-kill-tarpit-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
. "$SRCDIR/tests/lib/kill.sh"
py=$NEED_PY

net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" tarpit:2 healthy:3) || exit 1
sport=$(free_port)
echo tarpit >"$work/tarpit.mode"
smtpd_start mx "[
  {\"name\": \"tarpit\", \"host\": \"$net.2\", \"port\": $sport, \"mode_file\": \"$work/tarpit.mode\",
   \"modes\": {\"tarpit\": {\"delay_ms\": {\"data\": 2500}}, \"fast\": {\"delay_ms\": {}}}},
  {\"name\": \"healthy\", \"host\": \"$net.3\", \"port\": $sport}
]" || exit 1
log=$SMTPD_LOG

{
  echo email
  for i in $(seq 1 15); do echo "t$i@tarpit.test"; done
  for i in $(seq 1 15); do echo "h$i@healthy.test"; done
} >"$work/list.csv"
printf 'Hello,\n\nkill -9 and a tarpit, message {{seq}}.\n' >"$work/message.txt"
# A command timeout far above the tarpit: an unknown outcome here comes from a kill, not from
# a slow machine. Two connections per provider: up to four messages in flight at a kill.
{
  plans_head --state state.db --timeouts 10s/60s --per-provider 2 --dns-timeout 5s kill-tarpit "$net" "$sport"
  cat <<EOF
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Hello", text_file: message.txt}
recipients: {file: list.csv, mode: once}
ramp: {start: 120/min, max: 600/min}
providers:
  - {name: tarpit, mx: [.tarpit.test]}
  - {name: healthy, mx: [.healthy.test]}
EOF
} >"$work/plan.yaml"
db=$work/state.db
q() { sqlite3 "$db" "$1" 2>/dev/null; }
max_inflight=4

msg_re='"ev": "message"'
tarpit_data_re='"line": "DATA", .*"listener": "tarpit", .*"ev": "cmd"'

# --- eight runs, each killed with SIGKILL at a moment an event chose ----------------------------
rounds=8
kills=0
fired=0
for k in $(seq 1 $rounds); do
  if [ $((k % 2)) -eq 1 ]; then echo tarpit >"$work/tarpit.mode"; else echo fast >"$work/tarpit.mode"; fi
  msgs=$(log_count "$log" "$msg_re")
  datas=$(log_count "$log" "$tarpit_data_re")
  if [ $((k % 2)) -eq 1 ]; then
    kill_on_event "$log" $((datas + 1)) "$tarpit_data_re" "$work/kill$k.err" "$work/plan.yaml" --for 120s
  else
    kill_on_event "$log" $((msgs + 1 + (k / 2) % 3)) "$msg_re" "$work/kill$k.err" "$work/plan.yaml" --for 120s
  fi
  fired=$((fired + KILL_FIRED))
  kills=$((kills + KILL_SENT))
  check "round $k: no sanitizer report before the kill" clean "$work/kill$k.err"
done
check "each round's event came ($fired of $rounds)" test "$fired" -eq "$rounds"
check "every round was ended by SIGKILL ($kills of $rounds)" test "$kills" -eq "$rounds"
held_after_kills=$(q "SELECT count(*) FROM recipients WHERE state = 'held'")

# --- runs to the end, releasing what is held after each -----------------------------------------
echo fast >"$work/tarpit.mode"
: >"$work/released.txt"
settle_runs "$work/plan.yaml" "$db" "$work/released.txt"

check "the server logged an end for each DATA command" data_ends_wait "$log"

"$py" - "$log" "$db" "$work/released.txt" "$kills" "$max_inflight" "$held_after_kills" \
  >"$work/check.out" 2>&1 <<'EOF'
import collections, json, sqlite3, sys
log, db, released_file, kills, max_inflight, held_after_kills = sys.argv[1:7]
kills, max_inflight, held_after_kills = int(kills), int(max_inflight), int(held_after_kills)
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)

accepted = collections.Counter()
for d in map(json.loads, open(log)):
    if d["ev"] == "message" and d["accepted"]:
        for a in d["rcpts"]:
            accepted[a.lower()] += 1
released = collections.Counter(l.strip().lower() for l in open(released_file) if l.strip())

con = sqlite3.connect(db)
listed = [r for r, in con.execute("SELECT address FROM recipients")]
states = collections.Counter(s for s, in con.execute("SELECT state FROM recipients"))
att = collections.defaultdict(list)
for r, o in con.execute("SELECT recipient, outcome FROM attempts WHERE dry_run = 0 ORDER BY id"):
    att[r.lower()].append(o)
expect(len(listed) == 30, "the store holds the 30 recipients (%d)" % len(listed))
expect(states == {"done": 30}, "every recipient is done: none pending, held or lost (%s)" % dict(states))
once = [a for a in listed if att[a.lower()].count("delivered") != 1]
expect(not once, "every recipient has exactly one delivered attempt (not: %s)" %
       {a: att[a.lower()] for a in once})
lost = [a for a in listed if accepted[a.lower()] < 1]
expect(not lost, "every recipient's message was accepted by its server (not: %s)" % lost)
inflight = sum(o.count("in-flight") for o in att.values())
expect(inflight == 0, "no attempt is left in flight (%d)" % inflight)

dups = {a: n for a, n in accepted.items() if n > 1}
blind = {a: n for a, n in dups.items() if released[a] == 0}
expect(not blind, "no recipient accepted twice that was not released after an unknown outcome: %s" % blind)
over = {a: (n, released[a]) for a, n in accepted.items() if n > 1 + released[a]}
expect(not over, "no recipient accepted more than once plus once per release: %s" % over)
unexplained = [a for a in released if "unknown" not in att[a]]
expect(not unexplained, "every released recipient had an unknown attempt: %s" % unexplained)
unknown = sum(o.count("unknown") for o in att.values())
expect(unknown >= 1, "the kills left messages whose fate was unknown (%d unknown attempts)" % unknown)
expect(unknown <= kills * max_inflight,
       "at most %d unknown attempts for %d kills (%d)" % (kills * max_inflight, kills, unknown))
expect(sum(released.values()) == unknown,
       "one release per unknown attempt (%d released, %d unknown)" % (sum(released.values()), unknown))
expect(held_after_kills >= 1, "the kills left recipients held (%d)" % held_after_kills)
print("info: %d kills, %d unknown attempts, %d released, %d recipients accepted twice: %s" %
      (kills, unknown, sum(released.values()), len(dups), sorted(dups)))
EOF
tally "$work/check.out"

finish
