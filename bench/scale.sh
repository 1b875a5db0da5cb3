#!/usr/bin/env bash
# Scale (issue 8, part 3): a state file holding ATTEMPTS attempts (10 million) and a recipient
# list of RECIPIENTS lines (1 million), all sent, as a campaign of months leaves them. Measures:
#   - `run --once` with nothing due (a cron tick on an idle minute): median wall time of 30
#     (hyperfine when installed, else a loop), and the same tick on a store with almost no
#     history in the same hyperfine run, for the ratio; the process start alone, for scale;
#   - `run --once` with DUE recipients due (a quarter per provider, four providers at
#     6000/min each, sent to smtp-sink), three times on each store: wall and CPU time against
#     the same tick on the small store (O(due), not O(history)), wall time against what the
#     pacing of DUE messages needs (its time goes on sending), and strace -c -w's split of the
#     syscall time (database files against network and waiting);
#   - `stats --by day` over the whole history;
#   - peak RSS (/usr/bin/time -v) of the ticks, and of a run streaming the 1-million-line list
#     into a fresh store for STREAM_S seconds.
# The big store takes minutes to generate (bench/gen_store.c); it is kept in BENCH_DATA and
# reused while the schema (and the sizes) stay the same.
# Environment: ATTEMPTS (10000000), RECIPIENTS (1000000), DUE (400), STREAM_S (10),
# BENCH_DATA (/tmp/bench-data), SINK_ADDR (127.0.0.52); see bench/lib.sh.
set -u
. "$(dirname "$0")/lib.sh"
ATTEMPTS=${ATTEMPTS:-10000000} RECIPIENTS=${RECIPIENTS:-1000000} DUE=${DUE:-400}
STREAM_S=${STREAM_S:-10} BENCH_DATA=${BENCH_DATA:-/tmp/bench-data}
SINK_ADDR=${SINK_ADDR:-127.0.0.52}
bench_init scale
mkdir -p "$BENCH_DATA"
list=$BENCH_DATA/scale-list.txt
big=$BENCH_DATA/scale.db
small=$WORK/small.db

port=$(free_port)
sink_start "$SINK_ADDR" "$port" || exit 1
dnsmasq_start <<EOF || exit 1
mx-host=s0.test,mx.s0.test,10
mx-host=s1.test,mx.s1.test,10
mx-host=s2.test,mx.s2.test,10
mx-host=s3.test,mx.s3.test,10
host-record=mx.s0.test,$SINK_ADDR
host-record=mx.s1.test,$SINK_ADDR
host-record=mx.s2.test,$SINK_ADDR
host-record=mx.s3.test,$SINK_ADDR
EOF
printf 'Hello,\n\nbench message {{seq}}.\n' >"$WORK/message.txt"
plan() { # plan FILE LIST
  cat >"$1" <<EOF
campaign: scale
timezone: UTC
source: {ip: 127.0.0.1, helo: bench.example.com}
sender: {from: "Bench <bench@example.com>", return_path: bounces@example.com}
transport:
  mode: direct
  port: $port
  timeouts: {connect: 5s, command: 10s}
  connections_per_provider: 4
message: {subject: "bench {{seq}}", text_file: $WORK/message.txt}
recipients: {file: $2, mode: once}
ramp: {start: 6000/min, growth: 1, max: 6000/min}
providers:
  - {name: p0, mx: [.s0.test]}
  - {name: p1, mx: [.s1.test]}
  - {name: p2, mx: [.s2.test]}
  - {name: p3, mx: [.s3.test]}
  - {name: other, default: true}
preflight: {require: []}
dns: {servers: ["$DNS_SERVER"], timeout: 2s}
EOF
}
plan "$WORK/plan.yaml" "$list"

# An empty state file with ipwarm's own schema (pause/resume create it and touch nothing else).
new_store() {
  "$IPWARM" -q -p "$WORK/plan.yaml" --db "$1" pause other >/dev/null &&
    "$IPWARM" -q -p "$WORK/plan.yaml" --db "$1" resume other >/dev/null
}
[ -s "$list" ] && [ "$(wc -l <"$list")" -eq "$RECIPIENTS" ] ||
  awk -v n="$RECIPIENTS" 'BEGIN { for (i = 0; i < n; i++) printf "u%d@s%d.test\n", i, i % 4 }' >"$list"
list_bytes=$(stat -c %s "$list")
# What ipwarm records of a list it has read to its end (docs/schema.md, meta list.*).
list_sha=$(sha256sum "$list" | cut -c1-64)
list_stat=$(stat -c '%d:%i:%s:%.9Y:%.9Z' "$list" | tr -d .)
new_store "$WORK/schema.db" || exit 1
key="$(sqlite3 "$WORK/schema.db" .schema | sha256sum | cut -c1-16) $ATTEMPTS $RECIPIENTS $list"
if [ -s "$big" ] && [ "$(cat "$BENCH_DATA/scale.key" 2>/dev/null)" = "$key" ]; then
  echo "scale: reusing $big ($(du -h "$big" | cut -f1), generated $(date -r "$BENCH_DATA/scale.key" '+%F %T'))"
  gen_s=$(cat "$BENCH_DATA/scale.gen_s" 2>/dev/null || echo "?")
else
  echo "scale: generating $big: $ATTEMPTS attempts, $RECIPIENTS recipients (takes minutes)"
  rm -f "$big" "$big-wal" "$big-shm" "$BENCH_DATA/scale.key"
  cp "$WORK/schema.db" "$big"
  t0=$(now_ms)
  "$BENCH_BIN/gen_store" "$big" "$list" "$list_bytes" $((RECIPIENTS + 1)) "$ATTEMPTS" \
    "$RECIPIENTS" 4 100 "$(now_ms)" "$list_sha" "$list_stat" || exit 1
  gen_s=$(awk -v d=$(($(now_ms) - t0)) 'BEGIN { printf "%.0f", d / 1000 }')
  echo "$gen_s" >"$BENCH_DATA/scale.gen_s"
  echo "$key" >"$BENCH_DATA/scale.key"
fi
cp "$WORK/schema.db" "$small"
"$BENCH_BIN/gen_store" "$small" "$list" "$list_bytes" $((RECIPIENTS + 1)) 1000 "$DUE" 4 1 \
  "$(now_ms)" "$list_sha" "$list_stat" || exit 1
n_att=$(sqlite3 "$big" "SELECT max(id) FROM attempts")
n_rcpt=$(sqlite3 "$big" "SELECT count(*) FROM recipients")
echo "scale: big store $(du -h "$big" | cut -f1): $n_att attempts, $n_rcpt recipients (generated in ${gen_s} s)"

# Every recipient done, and DUE of them due now when asked.
settle() { sqlite3 "$1" "UPDATE recipients SET state = 'done', next_at_ms = 0 WHERE state <> 'done'"; }
make_due() { sqlite3 "$1" "UPDATE recipients SET state = 'pending', next_at_ms = 0, retries = 0 WHERE id <= $DUE"; }

# Wall time of `run --once` on the big and the small store, RUNS times each, in one hyperfine
# run (else a loop, alternating): prints "median mean max" in ms for big, then for small. The
# median is the figure: other jobs on a shared machine add spikes that the mean carries.
idle_ticks() {
  local runs=${1:-30} i t0 d
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs "$runs" --export-json "$WORK/hf.json" \
      "$IPWARM -q -p $WORK/plan.yaml --db $big run --once" \
      "$IPWARM -q -p $WORK/plan.yaml --db $small run --once" >/dev/null 2>&1 &&
      $PY -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("%.1f %.1f %.1f" % (r["median"]*1000, r["mean"]*1000, r["max"]*1000))' "$WORK/hf.json" && return
  fi
  : >"$WORK/ticks.txt"
  for ((i = 0; i < runs; i++)); do
    for db in "$big" "$small"; do
      t0=$(date +%s%N)
      "$IPWARM" -q -p "$WORK/plan.yaml" --db "$db" run --once >/dev/null 2>&1
      d=$(($(date +%s%N) - t0))
      echo "$db $d" >>"$WORK/ticks.txt"
    done
  done
  for db in "$big" "$small"; do
    awk -v db="$db" '$1 == db { print $2 / 1e6 }' "$WORK/ticks.txt" | sort -n |
      awk '{ v[NR] = $1; s += $1 } END { printf "%.1f %.1f %.1f\n", v[int((NR + 1) / 2)], s / NR, v[NR] }'
  done
}

settle "$big"
settle "$small"
{ read -r idle_big idle_big_mean idle_big_max; read -r idle_small idle_small_mean _; } < <(idle_ticks 30)
echo "scale: idle tick: big store median ${idle_big} ms (mean ${idle_big_mean}, max ${idle_big_max}), small store median ${idle_small} ms (mean ${idle_small_mean})"
figure scale.idle-tick "${idle_big} ms" "< 20 ms" "$(verdict "$idle_big" "<" 20)" "run --once, nothing due, $n_att attempts in the store (median of 30; mean ${idle_big_mean} ms, max ${idle_big_max} ms)"
figure scale.idle-tick-ratio "$(ratio "$idle_big" "$idle_small")x" "~1x" info "the same tick on a store with 1,000 attempts, same hyperfine run: median ${idle_small} ms (mean ${idle_small_mean} ms)"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 2 --runs 20 --export-json "$WORK/hf0.json" "$IPWARM --version" >/dev/null 2>&1
  start_ms=$($PY -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["mean"]*1000))' "$WORK/hf0.json")
  figure scale.process-start "${start_ms} ms" "-" info "ipwarm --version: loading the binary and its libraries (libcurl, OpenSSL, c-ares, SQLite, libyaml), part of every tick"
fi

# A tick with work due.
work_tick() { # work_tick DB -> prints "wall_s maxrss_kb sent cpu_s"
  local db=$1 before after
  before=$(sqlite3 "$db" "SELECT max(id) FROM attempts")
  /usr/bin/time -v -o "$WORK/tv.out" "$IPWARM" -q -p "$WORK/plan.yaml" --db "$db" run --once \
    >/dev/null 2>"$WORK/tick.err"
  after=$(sqlite3 "$db" "SELECT max(id) FROM attempts")
  awk -F': ' -v sent=$((after - before)) '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = p[n] + (n > 1 ? p[n-1] * 60 : 0) }
    /Maximum resident set size/ { m = $2 }
    /User time \(seconds\)|System time \(seconds\)/ { c += $2 }
    END { printf "%.3f %d %d %.3f\n", w, m, sent, c }' "$WORK/tv.out"
}
# Three ticks on each store, alternating; the means (one tick's CPU time is too coarse).
declare -A W=([big]=0 [small]=0) C=([big]=0 [small]=0) R=([big]=0 [small]=0) S=()
declare -A DB=([big]=$big [small]=$small)
for _ in 1 2 3; do
  for which in big small; do
    make_due "${DB[$which]}"
    read -r w m n c < <(work_tick "${DB[$which]}")
    W[$which]=$(awk -v a="${W[$which]}" -v b="$w" 'BEGIN { printf "%.4f", a + b / 3 }')
    C[$which]=$(awk -v a="${C[$which]}" -v b="$c" 'BEGIN { printf "%.4f", a + b / 3 }')
    S[$which]=$n
    [ "$m" -gt "${R[$which]}" ] && R[$which]=$m
  done
done
work_big=$(printf '%.3f' "${W[big]}") work_small=$(printf '%.3f' "${W[small]}")
cpu_big=$(printf '%.3f' "${C[big]}") cpu_small=$(printf '%.3f' "${C[small]}")
rss_big=${R[big]} sent_big=${S[big]} sent_small=${S[small]}
echo "scale: work tick (mean of 3): big store $sent_big sent in $work_big s (peak RSS $rss_big KB), small store $sent_small sent in $work_small s"
# Where the big tick's time goes (strace's own overhead inflates the syscalls' share).
make_due "$big"
strace -f -c -w -o "$WORK/strace.txt" "$IPWARM" -q -p "$WORK/plan.yaml" --db "$big" run --once >/dev/null 2>&1
split=$(awk '$NF ~ /^(pread64|pwrite64|fdatasync|fsync|fcntl|lseek|ftruncate)$/ { db += $2 }
             $NF ~ /^(poll|ppoll|sendto|recvfrom|connect|clock_nanosleep|nanosleep|read|write)$/ { net += $2 }
             $NF == "total" { tot = $2 }
             END { printf "%.0f %.0f", 100 * db / tot, 100 * net / tot }' "$WORK/strace.txt")
read -r db_pct net_pct <<<"$split"
settle "$big"
rt=$(ratio "$work_big" "$work_small")
figure scale.work-tick "${work_big} s" "O(due)" "$(verdict "$rt" "<=" 1.25)" "run --once with $DUE due ($sent_big sent, 4 providers at 6000/min; mean of 3): ${rt}x the same tick on the small store (${work_small} s)"
# The plan's own pacing: each provider's DUE/4 messages one every 10 ms (6000/min).
pace_s=$(awk -v d="$DUE" 'BEGIN { printf "%.3f", (d / 4 - 1) * 0.01 }')
figure scale.work-tick-pacing "$(ratio "$work_big" "$pace_s")x" "sending" "$(verdict "$(ratio "$work_big" "$pace_s")" "<=" 1.2)" "the tick's wall time / the time its pacing needs for $DUE messages ($pace_s s): the rest is start-up and the store"
figure scale.work-tick-cpu "${cpu_big} s" "O(due)" "$(verdict "$(ratio "$cpu_big" "$cpu_small")" "<=" 1.25)" "CPU (user+sys) of the tick, mean of 3: $(ratio "$cpu_big" "$cpu_small")x the small store's (${cpu_small} s)"
figure scale.work-tick-syscalls "db ${db_pct}% net ${net_pct}%" "-" info "share of the tick's syscall wall time under strace -c -w (database files against network and waiting; strace inflates the many short database calls)"

# stats --by day over everything.
t0=$(now_ms)
for i in 1 2 3; do
  "$IPWARM" -q -p "$WORK/plan.yaml" --db "$big" stats --by day --since 2000-01-01T00:00:00Z --format json >"$WORK/stats.json" 2>"$WORK/stats.err" || { cat "$WORK/stats.err"; break; }
done
stats_ms=$((($(now_ms) - t0) / 3))
rows=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["rows"]), sum(r["attempts"] for r in d["rows"]))' "$WORK/stats.json" 2>/dev/null)
stats_s=$(awk -v m="$stats_ms" 'BEGIN { printf "%.3f", m / 1000 }')
figure scale.stats-by-day "${stats_s} s" "< 1 s" "$(verdict "$stats_s" "<" 1)" "stats --by day --format json over the whole history (rows, attempts: $rows)"

# Peak memory while streaming the whole list into a fresh store at full speed.
fresh=$WORK/fresh.db
plan "$WORK/stream.yaml" "$list"
sed -i 's|start: 6000/min, growth: 1, max: 6000/min|start: 1000000/min, growth: 1, max: 1000000/min|' "$WORK/stream.yaml"
/usr/bin/time -v -o "$WORK/tv2.out" "$IPWARM" -q -p "$WORK/stream.yaml" --db "$fresh" run --for "${STREAM_S}s" >/dev/null 2>&1
rss_stream=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/tv2.out")
queued=$(sqlite3 "$fresh" "SELECT count(*) FROM recipients")
sent_stream=$(sqlite3 "$fresh" "SELECT count(*) FROM attempts")
peak=$rss_big
[ "$rss_stream" -gt "$peak" ] && peak=$rss_stream
peak_mb=$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')
figure scale.peak-rss "${peak_mb} MB" "< 64 MB" "$(verdict "$peak_mb" "<" 64)" "max of: the work tick on the big store ($((rss_big / 1024)) MB), ${STREAM_S} s streaming the 1M list into a fresh store ($((rss_stream / 1024)) MB; $queued queued, $sent_stream sent)"
rm -f "$fresh"*
