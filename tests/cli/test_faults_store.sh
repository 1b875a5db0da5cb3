#!/usr/bin/env bash
# Fault injection, state file side (issue 7): the state file's disk fills up during a run
# (RLIMIT_FSIZE via `ulimit -f` stands in for a full disk: writes past the limit fail with
# EFBIG, and SIGXFSZ is ignored), and the state file is locked by another program (an SQLite
# BEGIN EXCLUSIVE held from python longer than the busy timeout) when a run starts. Both must
# end with a clear error naming the state file and the right exit code (74, 75), no crash
# (ASan+UBSan build), no lost record and nothing sent without a record.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-faults-store-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3

net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" store:2) || exit 1
sport=$(free_port)
smtpd_start mx "[{\"name\": \"mx\", \"host\": \"$net.2\", \"port\": $sport, \"delay_ms\": {\"data\": 100}}]" || exit 1
log=$SMTPD_LOG
printf 'Hello,\n\na state file fault test.\n' >"$work/message.txt"
{
  echo email
  for i in $(seq 1 200); do echo "r$i@store.test"; done
} >"$work/seeds.csv"
{ plans_head --per-provider 1 faults-store "$net" "$sport"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Hello", text_file: message.txt}
recipients: {file: seeds.csv, mode: once}
ramp: {start: 600/min, max: 600/min}
EOF
db=$work/ipwarm.db

# The store against the server's log: every RCPT the server saw has an attempt, every delivered
# attempt was accepted, and at most MAX accepted messages lack a delivered record, each of
# them an attempt left in flight or unknown.
compare() { # compare MAX
  $py - "$log" "$db" "$1" <<'EOF'
import json, re, sqlite3, sys
log, db, most = sys.argv[1], sys.argv[2], int(sys.argv[3])
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
seen, acc = {}, {}
for d in map(json.loads, open(log)):
    if d["ev"] == "cmd" and d["line"].startswith("RCPT TO:"):
        a = re.search(r"<([^>]*)>", d["line"]).group(1)
        seen[a] = seen.get(a, 0) + 1
    if d["ev"] == "message" and d["accepted"]:
        for a in d["rcpts"]:
            acc[a] = acc.get(a, 0) + 1
con = sqlite3.connect(db)
att = {}
for r, o in con.execute("SELECT recipient, outcome FROM attempts"):
    att.setdefault(r, []).append(o)
missing = [a for a, n in seen.items() if len(att.get(a, [])) < n]
expect(not missing, "every recipient the server saw has an attempt (missing: %s)" % missing)
over = [a for a, o in att.items() if o.count("delivered") > acc.get(a, 0)]
expect(not over, "every delivered attempt was accepted by the server (not: %s)" % over)
extra = {a: att.get(a) for a, n in acc.items() if n > att.get(a, []).count("delivered")}
expect(len(extra) <= most and all(o and o[-1] in ("in-flight", "unknown") for o in extra.values()),
       "accepted without a delivered record: at most %d, left in flight or unknown: %s" % (most, extra))
expect(all(n == 1 for n in acc.values()), "no recipient received two messages")
EOF
}

# 1. A first run fills the store a little.
"$IPWARM" -p "$work/plan.yaml" run --for 2s >/dev/null 2>"$work/run1.err"
rc=$?
check "a first run exits 0 (got $rc: $(tail -2 "$work/run1.err"))" test "$rc" -eq 0
before=$(sqlite3 "$db" "SELECT count(*) FROM attempts")
check "the first run recorded attempts ($before)" test "$before" -gt 0

# 2. Disk full: files may grow 1 MiB past the state file's size, so the write-ahead log fills
#    up after a few messages.

size=$(stat -c %s "$db")
limit=$(((size + 1048576) / 1024))
(
  trap '' XFSZ
  ulimit -f "$limit"
  exec "$IPWARM" -p "$work/plan.yaml" run --for 20s
) >"$work/full.out" 2>"$work/full.err"
rc=$?
check "a run whose state file cannot grow exits 74 (got $rc)" test "$rc" -eq 74
check "no crash or sanitizer report when the disk is full" clean "$work/full.err"
check "the error names the state file: $(head -c 300 "$work/full.err")" grep -qF "state file $db" "$work/full.err"
check "the error says what failed" grep -qiE "disk|full|too large|I/O" "$work/full.err"
after=$(sqlite3 "$db" "SELECT count(*) FROM attempts")
check "no attempt recorded before is lost ($before before, $after after)" test "$after" -ge "$before"
compare 1 >"$work/check1.out" 2>&1
tally "$work/check1.out"

# 3. Room again: the next run recovers what was in flight and goes on.
"$IPWARM" -p "$work/plan.yaml" run --for 2s >/dev/null 2>"$work/run3.err"
rc=$?
check "the run after the disk is freed exits 0 (got $rc: $(tail -2 "$work/run3.err"))" test "$rc" -eq 0
check "no attempt is left in flight" test "$(sqlite3 "$db" "SELECT count(*) FROM attempts WHERE outcome = 'in-flight'")" -eq 0
compare 1 >"$work/check2.out" 2>&1
tally "$work/check2.out"

# 4. Another program holds an exclusive lock on the state file longer than the busy timeout
#    (5 s): the run refuses with exit 75 and a sentence naming the file, and sends nothing.
$py - "$db" "$work/locked" <<'EOF' &
import os, sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(300)  # ended with the other servers
con.execute("ROLLBACK")
EOF
SERVERS_PIDS+=("$!")
for ((i = 0; i < 600; i++)); do [ -e "$work/locked" ] && break; sleep 0.05; done
conns=$(grep -c '"ev": "connect"' "$log")
t0=$(date +%s%N)
"$IPWARM" -p "$work/plan.yaml" run --once >"$work/lock.out" 2>"$work/lock.err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "a run on a state file locked by another program exits 75 (got $rc)" test "$rc" -eq 75
check "no crash or sanitizer report when locked" clean "$work/lock.err"
check "the error names the state file and says locked: $(head -c 300 "$work/lock.err")" \
  grep -qF "state file $db" "$work/lock.err"
check "the error says locked" grep -q "locked" "$work/lock.err"
check "it gave up after the busy timeout, not at once and not never (took $ms ms)" test "$ms" -ge 4000 -a "$ms" -lt 60000
check "nothing was sent while the state file was locked" test "$(grep -c '"ev": "connect"' "$log")" -eq "$conns"

finish
