#!/usr/bin/env bash
# Fault injection, process side (issue 7): kill -9 at random points of `ipwarm run`, five times,
# then a normal run; afterwards what the SMTP server received must equal what the store
# recorded, give or take the attempt in flight at each kill (recorded as unknown, its recipient
# held and never sent again). And two `run --once` started together: exactly one sends, the
# other exits 75.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-faults-kill-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3

net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" kill:2 twice:3) || exit 1
sport=$(free_port)
# The server takes 300 ms before each reply to the message, so that kills often land while a
# message is in flight (after DATA, before the reply: the hardest case to record).
smtpd_start mx "[
  {\"name\": \"kill\", \"host\": \"$net.2\", \"port\": $sport, \"delay_ms\": {\"data\": 300}},
  {\"name\": \"twice\", \"host\": \"$net.3\", \"port\": $sport}
]" || exit 1
log=$SMTPD_LOG
printf 'Hello,\n\na kill -9 test.\n' >"$work/message.txt"
plan() { # plan NAME DOMAIN COUNT RATE
  {
    echo email
    for i in $(seq 1 "$3"); do echo "r$i@$2"; done
  } >"$work/$1.csv"
  { plans_head --state "$1.db" --per-provider 1 "faults-$1" "$net" "$sport"; cat <<EOF; } >"$work/$1.yaml"
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Hello", text_file: message.txt}
recipients: {file: $1.csv, mode: once}
ramp: {start: $4, max: 600/min}
EOF
}

# 1. Five runs killed with -9 at a random moment 0 to 2 s after the server saw their first
#    RCPT (waited for, so that a slow start on a loaded machine still leaves each run sending),
#    then one that ends normally.
plan kill kill.test 60 180/min
kills=5
rcpt_re='"line": "RCPT TO:.*"listener": "kill"'
for k in $(seq 1 $kills); do
  rcpts=$(log_count "$log" "$rcpt_re")
  "$IPWARM" -p "$work/kill.yaml" run --for 60s >/dev/null 2>"$work/kill$k.err" &
  victim=$!
  log_wait "$log" $((rcpts + 1)) "$rcpt_re" 60 || bad "kill $k: the run sent nothing within 60 s"
  sleep "$($py -c 'import random; print(round(random.uniform(0, 2.0), 2))')"
  kill -9 "$victim"
  wait "$victim" 2>/dev/null
  check "kill $k: the run had not crashed before the kill" clean "$work/kill$k.err"
done
"$IPWARM" -p "$work/kill.yaml" run --for 3s >"$work/final.out" 2>"$work/final.err"
rc=$?
check "the run after $kills kills exits 0 (got $rc: $(tail -2 "$work/final.err"))" test "$rc" -eq 0
check "the run after the kills: no sanitizer report" clean "$work/final.err"
$py - "$log" "$work/kill.db" "$kills" >"$work/check1.out" 2>&1 <<'EOF'
import json, re, sqlite3, sys
log, db, kills = sys.argv[1], sys.argv[2], int(sys.argv[3])
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
rcpt_seen, accepted = {}, {}
for d in map(json.loads, open(log)):
    if d["listener"] != "kill":
        continue
    if d["ev"] == "cmd" and d["line"].startswith("RCPT TO:"):
        a = re.search(r"<([^>]*)>", d["line"]).group(1)
        rcpt_seen[a] = rcpt_seen.get(a, 0) + 1
    if d["ev"] == "message" and d["accepted"]:
        for a in d["rcpts"]:
            accepted[a] = accepted.get(a, 0) + 1
con = sqlite3.connect(db)
att = {}
for rcpt, outcome in con.execute("SELECT recipient, outcome FROM attempts WHERE dry_run = 0"):
    att.setdefault(rcpt, []).append(outcome)
total_mail = sum(rcpt_seen.values())
expect(total_mail >= 5, "the killed runs did send (%d RCPT seen)" % total_mail)
missing = [a for a, n in rcpt_seen.items() if len(att.get(a, [])) < n]
expect(not missing, "every recipient the server saw has an attempt record for each time (missing: %s)" % missing)
over = [a for a, outs in att.items() if outs.count("delivered") > accepted.get(a, 0)]
expect(not over, "every delivered attempt was accepted by the server (not: %s)" % over)
extra = {a: n for a, n in accepted.items() if n > att.get(a, []).count("delivered")}
expect(len(extra) <= kills, "accepted but not recorded delivered: at most one per kill (%d: %s)" % (len(extra), extra))
expect(all("unknown" in att.get(a, []) for a in extra),
       "each message accepted but not recorded delivered is an unknown attempt: %s" % {a: att.get(a) for a in extra})
dup = {a: n for a, n in accepted.items() if n > 1}
expect(not dup, "no recipient received two messages: %s" % dup)
inflight = con.execute("SELECT count(*) FROM attempts WHERE outcome = 'in-flight'").fetchone()[0]
expect(inflight == 0, "no attempt is left in flight after the last run (%d)" % inflight)
unknown = {r for r, in con.execute("SELECT recipient FROM attempts WHERE outcome = 'unknown'")}
held = {r for r, in con.execute("SELECT address FROM recipients WHERE state = 'held'")}
expect(unknown == held, "the recipients of unknown attempts are exactly the held ones (%d unknown, %d held)" % (len(unknown), len(held)))
expect(len(unknown) <= kills, "at most one unknown attempt per kill (%d)" % len(unknown))
resent = [a for a in held if att[a][-1] != "unknown"]
expect(not resent, "a held recipient is not sent again: %s" % resent)
EOF
tally "$work/check1.out"

# 2. Two `run --once` started together: exactly one sends, the other exits 75 at once.
# 20/min: the first run is still sending (6 s) when the second starts, even on a loaded machine.
plan twice twice.test 3 20/min
"$IPWARM" -p "$work/twice.yaml" run --once >/dev/null 2>"$work/once1.err" &
p1=$!
"$IPWARM" -p "$work/twice.yaml" run --once >/dev/null 2>"$work/once2.err" &
p2=$!
wait "$p1"
rc1=$?
wait "$p2"
rc2=$?
check "two run --once at once: one exits 0, the other 75 (got $rc1 and $rc2)" \
  test "$(printf '%s\n' "$rc1" "$rc2" | sort -n | tr '\n' ' ')" = "0 75 "
check "the refused one says another run holds the state file" \
  grep -q "in use by another ipwarm run" "$work/once1.err" "$work/once2.err"
check "two run --once: no sanitizer report" clean "$work/once1.err"
check "two run --once: no sanitizer report (2)" clean "$work/once2.err"
$py - "$log" "$work/twice.db" >"$work/check2.out" 2>&1 <<'EOF'
import json, sqlite3, sys
log, db = sys.argv[1], sys.argv[2]
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
ev = [d for d in map(json.loads, open(log)) if d["listener"] == "twice"]
conns = {d["conn"] for d in ev if d["ev"] == "connect"}
msgs = [d for d in ev if d["ev"] == "message" and d["accepted"]]
expect(len(msgs) == 3, "the three recipients were sent once each (%d messages)" % len(msgs))
expect(len(conns) == 1, "all over one connection: one process sent (%d connections)" % len(conns))
con = sqlite3.connect(db)
n = con.execute("SELECT count(*) FROM attempts WHERE outcome = 'delivered'").fetchone()[0]
expect(n == 3, "the store records three deliveries (%d)" % n)
EOF
tally "$work/check2.out"

# 3. Two runs that create the same new state file at the same moment (two cron ticks of a new
#    campaign): each pair gives one run and one clear refusal, never "another program's
#    database" or a locked journal switch. Regression test for a race in store_open.
: >"$work/empty.csv"
{ echo email; } >"$work/empty.csv"
sed "s|recipients: {file: twice.csv|recipients: {file: empty.csv|" "$work/twice.yaml" >"$work/empty.yaml"
odd=0
for i in $(seq 1 15); do
  rm -f "$work/race.db" "$work/race.db-wal" "$work/race.db-shm"
  "$IPWARM" -p "$work/empty.yaml" --db "$work/race.db" run --once >/dev/null 2>"$work/race1.err" &
  q1=$!
  "$IPWARM" -p "$work/empty.yaml" --db "$work/race.db" run --once >/dev/null 2>"$work/race2.err" &
  q2=$!
  wait "$q1"; r1=$?
  wait "$q2"; r2=$?
  for f in "$work/race1.err" "$work/race2.err"; do
    if [ -s "$f" ] && ! grep -q "in use by another ipwarm run" "$f"; then
      odd=$((odd + 1)); sed 's/^/    /' "$f"
    fi
  done
  case "$r1 $r2" in "0 0" | "0 75" | "75 0") ;; *) odd=$((odd + 1)); echo "    exit codes $r1 $r2" ;; esac
done
check "15 pairs of runs creating one new state file: no error but the lock's refusal ($odd odd)" test "$odd" -eq 0

finish
