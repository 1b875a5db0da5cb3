#!/usr/bin/env bash
# bench/curl_sender.c, the reference senders of bench/throughput.sh, against a real SMTP server
# on loopback (tests/servers/smtpd.py). docs/benchmarks.md draws conclusions from its floor
# (--threads --record: a thread per connection, every attempt committed before its transaction
# and its outcome after), so the floor is held to what it claims:
#   - it builds with the bench's own flags, warnings as errors;
#   - every message reaches the server (the server's MAIL FROM and accepted messages), and the
#     store holds one row per message: delivered, code 250, a distinct recipient, finished after
#     it started;
#   - each attempt is in the store before its MAIL FROM reaches the server: sorted, the k-th
#     start comes no later than the k-th MAIL FROM the server stamped (both wall-clock times);
#   - the single-thread --record variant and the bare sender do the same, and a bad command
#     line exits 64.
# Not a timing test: rates are bench/'s business.
set -u
: "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 sqlite3 cc
. "$SRCDIR/tests/lib/servers.sh"
work=$(mktemp -d /tmp/ipwarm-bench-floor-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=$NEED_PY

# eq TEXT WANT GOT; matches TEXT REGEX STRING (extended regex)
eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi; }
matches() { if [[ $3 =~ $2 ]]; then ok "$1"; else bad "$1: '$3' does not match '$2'"; fi; }

# The flags of bench/run.
cflags=(-O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wshadow -Wformat=2
  -Wstrict-prototypes -Wmissing-prototypes -Werror)
must "bench/curl_sender.c builds with bench/run's flags" \
  cc "${cflags[@]}" "$SRCDIR/bench/curl_sender.c" -o "$work/curl_sender" -lcurl -lsqlite3 -pthread

port=$(free_port)
must "smtpd.py started" smtpd_start sink "[{\"name\": \"sink\", \"host\": \"127.0.0.1\", \"port\": $port}]"

# The server's MAIL FROM stamps (seconds) and its accepted messages, from its log.
server_counts() {
  "$py" - "$SMTPD_LOG" <<'EOF'
import json, sys
mail = acc = 0
for e in map(json.loads, open(sys.argv[1])):
    if e["ev"] == "cmd" and e["line"].startswith("MAIL FROM"):
        mail += 1
    if e["ev"] == "message" and e.get("accepted"):
        acc += 1
print(mail, acc)
EOF
}

# run_case NAME N C ARGS...: runs curl_sender ARGS... 127.0.0.1 PORT N C 1024 on a fresh server
# log and checks what the server received.
run_case() {
  local name=$1 n=$2 c=$3 out rc mail acc
  shift 3
  : >"$SMTPD_LOG"
  out=$("$work/curl_sender" "$@" 127.0.0.1 "$port" "$n" "$c" 1024 2>"$work/$name.err")
  rc=$?
  eq "$name: exit status" 0 "$rc"
  matches "$name: its report" "^sent $n ok $n seconds " "$out"
  read -r mail acc < <(server_counts)
  eq "$name: MAIL FROM at the server" "$n" "$mail"
  eq "$name: messages the server accepted" "$n" "$acc"
}

# The store of a --record run: rows, outcomes, recipients, and starts before the server's
# MAIL FROMs.
check_store() {
  local name=$1 db=$2 n=$3
  eq "$name: rows, one per message" "$n" "$(sqlite3 "$db" 'SELECT count(*) FROM attempts')"
  eq "$name: delivered with code 250, finished after started" "$n" \
    "$(sqlite3 "$db" "SELECT count(*) FROM attempts WHERE outcome = 'delivered' AND code = 250
                      AND finished_ms >= started_ms")"
  eq "$name: distinct recipients r1..r$n" "$n" \
    "$(sqlite3 "$db" "SELECT count(DISTINCT recipient) FROM attempts
                      WHERE recipient GLOB 'r[0-9]*@sink.test'
                        AND CAST(substr(recipient, 2, instr(recipient, '@') - 2) AS INTEGER)
                            BETWEEN 1 AND $n")"
  sqlite3 "$db" 'SELECT started_ms FROM attempts ORDER BY started_ms' >"$work/$name.starts"
  local verdict
  verdict=$("$py" - "$SMTPD_LOG" "$work/$name.starts" <<'EOF'
import json, sys
mails = sorted(e["t"] for e in map(json.loads, open(sys.argv[1]))
               if e["ev"] == "cmd" and e["line"].startswith("MAIL FROM"))
starts = [int(x) for x in open(sys.argv[2]).read().split()]
if len(mails) != len(starts):
    print("counts differ: %d MAIL FROM, %d starts" % (len(mails), len(starts)))
else:
    late = [k for k, (s, m) in enumerate(zip(starts, mails)) if s > m * 1000]
    print("ok" if not late else "start %d came after its MAIL FROM" % late[0])
EOF
  )
  eq "$name: every attempt recorded before its MAIL FROM" ok "$verdict"
}

run_case floor 60 4 --threads --record "$work/floor.db"
check_store floor "$work/floor.db" 60

run_case record 30 3 --record "$work/record.db"
check_store record "$work/record.db" 30

run_case threads 20 4 --threads
check "threads: no store written" test ! -e "$work/threads.db"

run_case bare 20 4

"$work/curl_sender" --record 127.0.0.1 "$port" 5 1 1024 >/dev/null 2>"$work/usage.err"
eq "a bad command line exits 64" 64 "$?"
matches "and says how to call it" "^usage: curl_sender" "$(cat "$work/usage.err")"

finish
