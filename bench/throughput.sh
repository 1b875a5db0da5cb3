#!/usr/bin/env bash
# Throughput once warm (issue 8, part 2): N messages of about 1 KB over C connections to
# Postfix's smtp-sink on loopback, sent three ways in the same run, interleaved round by round
# so that the machine's noise hits all three alike:
#   ipwarm     `ipwarm run` (recipients.mode once: it ends when the list is done) with one
#              provider whose ramp starts at 1,000,000/min, connections_per_provider C, MX from
#              dnsmasq; every attempt recorded before and after, as always;
#   curl       bench/curl_sender.c, a bare libcurl multi sender (the ceiling for a
#              libcurl-based sender: no scheduling, no recording);
#   floor      the same program with --threads --record: a thread per connection (what libcurl
#              7.88's blocking end of data asks of a sender that one slow server must not stall)
#              and every attempt committed before its transfer and its outcome after, with one
#              table, no index and group commit: the two rules in their cheapest form, and
#              nothing else; the rows it recorded are counted;
#   smtp-source Postfix's own client, `smtp-source -d -s C` (not libcurl: for scale).
# Rates are messages per second of wall time of the whole process (start-up included), the
# best of ROUNDS rounds for each sender. Also prints CPU time per message of ipwarm and curl.
# Then the store's write cost per message, from one more ipwarm run of WRITE_N messages (the
# first of the same list, the same plan) under strace, untimed so that strace's slowdown touches
# none of the rates: write transactions committed and WAL frames (pages) written, per message
# delivered, as bench/store_writes.py counts them from the trace; the list import is included.
# Environment: N (20000), C (10), ROUNDS (2), SINK_ADDR (127.0.0.51), WRITE_N (2000, at most N);
# see bench/lib.sh.
set -u
. "$(dirname "$0")/lib.sh"
N=${N:-20000} C=${C:-10} ROUNDS=${ROUNDS:-2} SINK_ADDR=${SINK_ADDR:-127.0.0.51}
WRITE_N=${WRITE_N:-2000}
bench_init throughput

port=$(free_port)
sink_start "$SINK_ADDR" "$port" || exit 1
dnsmasq_start <<EOF || exit 1
mx-host=sink.test,mx.sink.test,10
host-record=mx.sink.test,$SINK_ADDR
EOF
seq 1 "$N" | sed 's/.*/r&@sink.test/' >"$WORK/rcpts.txt"
# About 1 KB on the wire with ipwarm's headers (Date, Message-ID, MIME, ...): ~780 bytes of text.
{ printf 'Hello,\n\n'; head -c 760 /dev/zero | tr '\0' 'x' | fold -w 76; echo; } >"$WORK/message.txt"
cat >"$WORK/plan.yaml" <<EOF
campaign: bench
timezone: UTC
source: {ip: 127.0.0.1, helo: bench.example.com}
sender: {from: "Bench <bench@example.com>", return_path: bounces@example.com}
transport:
  mode: direct
  port: $port
  timeouts: {connect: 5s, command: 10s}
  connections_per_provider: $C
message: {subject: "bench {{seq}}", text_file: message.txt}
recipients: {file: rcpts.txt, mode: once}
ramp: {start: 1000000/min, growth: 1, max: 1000000/min}
providers:
  - {name: sink, mx: [.sink.test]}
  - {name: other, default: true}
preflight: {require: []}
dns: {servers: ["$DNS_SERVER"], timeout: 2s}
EOF

# Prints "wall user sys" seconds of one command (its output goes to $WORK/last.out).
timed() {
  /usr/bin/time -f '%e %U %S' -o "$WORK/time.out" "$@" >"$WORK/last.out" 2>&1
  local rc=$?
  cat "$WORK/time.out"
  return $rc
}

# One timed round of a sender that records its attempts in the store DB (ipwarm, the floor):
# recorded_round LABEL DB COMMAND... starts from an empty DB, prints the round's line and sets
# rec_n (attempts delivered and finished in DB), rec_rate (messages a second) and rec_cpu (CPU
# microseconds per message).
recorded_round() {
  local label=$1 db=$2 w u s
  shift 2
  rm -f "$db"*
  read -r w u s < <(timed "$@")
  rec_n=$(sqlite3 "$db" "SELECT count(*) FROM attempts WHERE outcome = 'delivered' AND finished_ms IS NOT NULL")
  rec_rate=$(awk -v n="$N" -v w="$w" 'BEGIN { printf "%.0f", n / w }')
  rec_cpu=$(awk -v u="$u" -v s="$s" -v n="$N" 'BEGIN { printf "%.0f", (u + s) * 1e6 / n }')
  echo "round $round: $label $rec_n recorded and delivered of $N in $w s ($rec_rate/s, cpu ${u}+${s} s)"
}

best_ipw=0 best_curl=0 best_src=0 ipw_cpu='' curl_cpu='' recorded=0 worst_curl=0
best_floor=0 floor_cpu='' floor_recorded=0
for ((round = 1; round <= ROUNDS; round++)); do
  read -r w u s < <(timed "$BENCH_BIN/curl_sender" "$SINK_ADDR" "$port" "$N" "$C" 1024)
  r=$(awk -v n="$N" -v w="$w" 'BEGIN { printf "%.0f", n / w }')
  echo "round $round: curl_sender $N in $w s ($r/s, cpu ${u}+${s} s)"
  { [ "$worst_curl" -eq 0 ] || [ "$r" -lt "$worst_curl" ]; } && worst_curl=$r
  [ "$r" -gt "$best_curl" ] && best_curl=$r curl_cpu=$(awk -v u="$u" -v s="$s" -v n="$N" 'BEGIN { printf "%.0f", (u + s) * 1e6 / n }')

  recorded_round floor "$WORK/floor.db" "$BENCH_BIN/curl_sender" --threads --record \
    "$WORK/floor.db" "$SINK_ADDR" "$port" "$N" "$C" 1024
  if [ "$rec_rate" -gt "$best_floor" ]; then
    best_floor=$rec_rate floor_recorded=$rec_n floor_cpu=$rec_cpu
  fi

  read -r w u s < <(timed /usr/sbin/smtp-source -d -s "$C" -m "$N" -l 1024 \
    -f bench@example.com -t rcpt@example.com "$SINK_ADDR:$port")
  r=$(awk -v n="$N" -v w="$w" 'BEGIN { printf "%.0f", n / w }')
  echo "round $round: smtp-source $N in $w s ($r/s)"
  [ "$r" -gt "$best_src" ] && best_src=$r

  recorded_round ipwarm "$WORK/ipwarm.db" "$IPWARM" -q -p "$WORK/plan.yaml" --db "$WORK/ipwarm.db" run
  if [ "$rec_rate" -gt "$best_ipw" ]; then
    best_ipw=$rec_rate recorded=$rec_n ipw_cpu=$rec_cpu
  fi
done

figure throughput.ipwarm "${best_ipw}/s" "-" info "ipwarm run: $N messages, $C connections, every attempt recorded ($recorded of $N delivered and finished in the store)"
figure throughput.curl "${best_curl}/s" "-" info "bare libcurl multi sender (bench/curl_sender.c), same sink, same run"
figure throughput.smtp-source "${best_src}/s" "-" info "Postfix smtp-source -d -s $C -l 1024, same sink, same run"
rat=$(ratio "$best_ipw" "$best_curl")
# The ratio is only as good as its reference: when the bare sender's rounds disagree by more
# than 30 %, something else had the machine (a run on 2026-12-03 saw 2,172/s and 3,300/s where
# 10,000/s is usual, and its ratio "passed"), so the figure is not trusted either way.
rat_verdict=$(verdict "$rat" ">=" 0.9) rat_note=''
if [ "$(awk -v a="$best_curl" -v b="$worst_curl" 'BEGIN { print (b > 0 && a / b > 1.3) }')" = 1 ]; then
  rat_verdict=MISS
  rat_note="; the bare sender's rounds disagree ($worst_curl/s to $best_curl/s): the machine was disturbed, run again"
elif [ "$ROUNDS" -lt 2 ]; then
  # One round cannot show a disturbed machine: a run with ROUNDS=1 on 2026-12-03 "passed" at
  # 1.39x because the bare sender ran at a third of its usual rate.
  rat_verdict=MISS
  rat_note="; one round cannot tell a disturbed machine from a fair one: run with ROUNDS=2 or more"
fi
figure throughput.ratio "${rat}x" ">= 0.9x" "$rat_verdict" "ipwarm / bare libcurl; CPU per message: ipwarm ${ipw_cpu} us, libcurl ${curl_cpu} us$rat_note"
# The floor: what the two rules cost a libcurl sender, and how far ipwarm is above it.
figure throughput.floor "${best_floor}/s" "-" info "bench/curl_sender.c --threads --record: a thread per connection, every attempt committed before and after (one table, no index, group commit; $floor_recorded of $N recorded delivered); CPU per message ${floor_cpu} us"
figure throughput.floor-ratio "$(ratio "$best_floor" "$best_curl")x" "-" info "the floor / bare libcurl: a libcurl 7.88 sender that does nothing but keep both rules, here; CPU per message $(ratio "${floor_cpu:-0}" "${curl_cpu:-0}")x the bare sender's"
figure throughput.vs-floor "$(ratio "$best_ipw" "$best_floor")x" "-" info "ipwarm / the floor: what ipwarm's scheduling, composition, queue and history cost on top of the rules"
figure throughput.vs-smtp-source "$(ratio "$best_ipw" "$best_src")x" "-" info "ipwarm / smtp-source (a non-libcurl client written for speed)"
figure throughput.recorded "$recorded/$N" "$N/$N" "$(verdict "$recorded" ">=" "$N")" "attempts recorded delivered with their outcome"

# The store's write cost per message: a separate, untimed run under strace (see the header).
head -n "$WRITE_N" "$WORK/rcpts.txt" >"$WORK/rcpts-write.txt"
sed 's/^recipients: .*/recipients: {file: rcpts-write.txt, mode: once}/' "$WORK/plan.yaml" \
  >"$WORK/plan-write.yaml"
rm -f "$WORK"/write.db*
strace -f -y -xx -s 24 -e trace=pwrite64,fdatasync,fsync -o "$WORK/write.strace" \
  "$IPWARM" -q -p "$WORK/plan-write.yaml" --db "$WORK/write.db" run >"$WORK/write.out" 2>&1 ||
  echo "bench: the ipwarm run under strace failed: $(tail -n 1 "$WORK/write.out")" >&2
wn=$(sqlite3 "$WORK/write.db" "SELECT count(*) FROM attempts WHERE outcome = 'delivered'" 2>/dev/null)
read -r frames commits syncs unread < <("$PY" "$BENCH_SRC/bench/store_writes.py" "$WORK/write.strace")
echo "store writes: $wn delivered, $commits commits, $frames WAL frames, $syncs syncs, $unread unread pwrite64 lines"
per() { awk -v a="$1" -v n="${wn:-0}" -v d="$2" 'BEGIN { if (n == 0) print "?"; else printf "%.*f", d, a / n }'; }
figure throughput.commits "$(per "$commits" 2)" "-" info "write transactions committed per message: WAL frames that end a transaction, in strace of a separate untimed run ($wn messages delivered, list import included)"
figure throughput.wal-pages "$(per "$frames" 1)" "-" info "WAL frames (a 24-byte header and one page) written per message, same run; $syncs fdatasync/fsync in it$([ "${unread:-0}" -eq 0 ] || echo ", $unread pwrite64 lines unread")"

# Instructions per message, counted by callgrind over the same WRITE_N messages: user-space
# instructions of every thread, start-up included, for ipwarm and for the bare sender. Unlike
# CPU seconds, which swing by a fifth from one run to the next on a shared host (other guests
# steal cycles, caches are cold or warm), the count moves by about 2 % between runs, so a
# change of a few per cent in what ipwarm does per message shows here. It leaves out the
# kernel's share (sendto, poll, the WAL's pwrite64), which CPU per message above includes.
# Under callgrind the threads take turns, so the groups committed together are not those of a
# real run: the figure is the work per message, not its timing.
if command -v valgrind >/dev/null; then
  # Sums the totals of callgrind's per-thread files PREFIX.*; prints "all first-thread".
  cg_sum() {
    awk '/^totals:/ { t += $2; if (FILENAME ~ /-01$/) m = $2 } END { printf "%d %d\n", t, m }' "$1".*
  }
  rm -f "$WORK"/cg.ipw.* "$WORK"/cg.curl.* "$WORK"/cg.floor.* "$WORK"/write.db* "$WORK"/floor.db*
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/cg.ipw.%p" \
    "$IPWARM" -q -p "$WORK/plan-write.yaml" --db "$WORK/write.db" run >"$WORK/cg.out" 2>&1 ||
    echo "bench: the ipwarm run under callgrind failed: $(tail -n 1 "$WORK/cg.out")" >&2
  cn=$(sqlite3 "$WORK/write.db" "SELECT count(*) FROM attempts WHERE outcome = 'delivered'" 2>/dev/null)
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/cg.curl.%p" \
    "$BENCH_BIN/curl_sender" "$SINK_ADDR" "$port" "$WRITE_N" "$C" 1024 >>"$WORK/cg.out" 2>&1 ||
    echo "bench: curl_sender under callgrind failed: $(tail -n 1 "$WORK/cg.out")" >&2
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$WORK/cg.floor.%p" \
    "$BENCH_BIN/curl_sender" --threads --record "$WORK/floor.db" "$SINK_ADDR" "$port" "$WRITE_N" "$C" 1024 \
    >>"$WORK/cg.out" 2>&1 || echo "bench: the floor under callgrind failed: $(tail -n 1 "$WORK/cg.out")" >&2
  read -r ipw_all ipw_loop < <(cg_sum "$WORK/cg.ipw")
  read -r curl_all _ < <(cg_sum "$WORK/cg.curl")
  read -r floor_all _ < <(cg_sum "$WORK/cg.floor")
  k() { awk -v a="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.0f", a / n / 1000; else print "?" }'; }
  echo "instructions: ipwarm $ipw_all ($cn delivered; run loop $ipw_loop), curl_sender $curl_all, floor $floor_all"
  figure throughput.instructions "$(k "$ipw_all" "${cn:-0}")k" "-" info "user-space instructions per message (callgrind, $cn messages, start-up included): ipwarm's run loop $(k "$ipw_loop" "${cn:-0}")k, its connection threads $(k $((ipw_all - ipw_loop)) "${cn:-0}")k; the bare sender $(k "$curl_all" "$WRITE_N")k in all ($(ratio "$(k "$ipw_all" "${cn:-0}")" "$(k "$curl_all" "$WRITE_N")")x); the floor $(k "$floor_all" "$WRITE_N")k"
else
  echo "bench: valgrind is not installed (scripts/deps bench): no instruction counts" >&2
fi
