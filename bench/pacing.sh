#!/usr/bin/env bash
# Pacing accuracy at the receiver (issue 8, part 1): three providers at once, planned at 5, 60
# and 600 messages a minute, each its own listener address of tests/servers/smtpd.py (MX from
# dnsmasq), for one `ipwarm run --for DURATION`. The server stamps every command it receives;
# bench/pacing.py turns the MAIL FROM stamps into the count against the plan, the coefficient
# of variation of the gaps, and the smallest gap against the planned one.
# The pool case (issue 14): at the same time, a second `ipwarm run` warms a pool of three source
# IPs (NET7..NET9) at one provider (listener NET4), 60 a minute per IP; each IP is paced on its
# own, so its MAIL FROMs, told apart at the receiver by their peer address, are measured
# against the same targets as a provider alone.
# Targets: count within 2 % of plan, CV < 0.1, no gap under half the planned gap.
# Environment: DURATION (90, seconds), NET (127.0.0.6, the listeners are NET1..NET4).
set -u
. "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-90} NET=${NET:-127.0.0.6}
bench_init pacing

dnsmasq_start <<EOF || exit 1
mx-host=p5.test,mx.p5.test,10
mx-host=p60.test,mx.p60.test,10
mx-host=p600.test,mx.p600.test,10
host-record=mx.p5.test,${NET}1
host-record=mx.p60.test,${NET}2
host-record=mx.p600.test,${NET}3
mx-host=pool.test,mx.pool.test,10
host-record=mx.pool.test,${NET}4
EOF
port=$(free_port)
smtpd_start pacing "[
  {\"name\": \"p5\", \"host\": \"${NET}1\", \"port\": $port},
  {\"name\": \"p60\", \"host\": \"${NET}2\", \"port\": $port},
  {\"name\": \"p600\", \"host\": \"${NET}3\", \"port\": $port},
  {\"name\": \"pool\", \"host\": \"${NET}4\", \"port\": $port}
]" || exit 1

# More recipients than each rate can take in the run, interleaved as a real list would be.
$PY - "$DURATION" >"$WORK/rcpts.txt" <<'EOF'
import sys
d = float(sys.argv[1])
want = {"p5": int(d * 5 / 60) + 5, "p60": int(d * 60 / 60) + 10, "p600": int(d * 600 / 60) + 50}
total = sum(want.values())
n = {k: 0 for k in want}
for i in range(total):
    for k in want:  # spread each provider evenly through the list
        if n[k] < want[k] and n[k] * total <= i * want[k]:
            print("r%d@%s.test" % (n[k], k))
            n[k] += 1
EOF
printf 'Hello,\n\npacing message {{seq}}.\n' >"$WORK/message.txt"
cat >"$WORK/plan.yaml" <<EOF
campaign: pacing
timezone: UTC
source: {ip: 127.0.0.1, helo: bench.example.com}
sender: {from: "Bench <bench@example.com>", return_path: bounces@example.com}
transport:
  mode: direct
  port: $port
  timeouts: {connect: 5s, command: 10s}
  connections_per_provider: 2
message: {subject: "pacing {{seq}}", text_file: message.txt}
recipients: {file: rcpts.txt, mode: once}
ramp: {start: 5/min, growth: 1, max: 600/min}
providers:
  - {name: p5, mx: [.p5.test], ramp: {start: 5/min, max: 5/min}}
  - {name: p60, mx: [.p60.test], ramp: {start: 60/min, max: 60/min}}
  - {name: p600, mx: [.p600.test], ramp: {start: 600/min, max: 600/min}}
  - {name: other, default: true}
preflight: {require: []}
dns: {servers: ["$DNS_SERVER"], timeout: 2s}
EOF
# The pool: its own campaign, state and list, run beside the first (each IP at 60/min, so the
# provider receives 180/min from the three).
pool_ips=("${NET}7" "${NET}8" "${NET}9")
$PY -c 'import sys; n = int(float(sys.argv[1]) * 3 * 60 / 60) + 30
print("\n".join("q%d@pool.test" % i for i in range(n)))' "$DURATION" >"$WORK/pool-rcpts.txt"
cat >"$WORK/pool.yaml" <<EOF
campaign: pacing-pool
timezone: UTC
source: {ips: [${pool_ips[0]}, ${pool_ips[1]}, ${pool_ips[2]}], helo: bench.example.com}
sender: {from: "Bench <bench@example.com>", return_path: bounces@example.com}
transport:
  mode: direct
  port: $port
  timeouts: {connect: 5s, command: 10s}
  connections_per_provider: 2
message: {subject: "pacing {{seq}}", text_file: message.txt}
recipients: {file: pool-rcpts.txt, mode: once}
ramp: {start: 60/min, growth: 1, max: 60/min}
providers:
  - {name: pool, mx: [.pool.test], ramp: {start: 60/min, max: 60/min}}
  - {name: other, default: true}
preflight: {require: []}
dns: {servers: ["$DNS_SERVER"], timeout: 2s}
EOF
"$IPWARM" -q -p "$WORK/pool.yaml" --db "$WORK/pool.db" run --for "${DURATION}s" >"$WORK/pool-run.out" 2>&1 &
pool_pid=$!
"$IPWARM" -q -p "$WORK/plan.yaml" --db "$WORK/ipwarm.db" run --for "${DURATION}s" >"$WORK/run.out" 2>&1 ||
  { echo "pacing: ipwarm run failed:"; cat "$WORK/run.out"; }
wait "$pool_pid" || { echo "pacing: the pool's ipwarm run failed:"; cat "$WORK/pool-run.out"; }

$PY "$SRCDIR/bench/pacing.py" "$SMTPD_LOG" "$DURATION" p5=5 p60=60 p600=600 \
  "pool@${pool_ips[0]}=60" "pool@${pool_ips[1]}=60" "pool@${pool_ips[2]}=60" >"$WORK/pacing.txt"
while read -r name rate planned count err gap mean cv minr; do
  abs_err=${err#-}
  what="$rate/min"
  # A pool's IP (pool@IP): figures named pacing.pool.IP, each IP against its own plan.
  case $name in pool@*) what="$rate/min from ${name#pool@} (one of 3 IPs)"; name=pool.${name#pool@} ;; esac
  figure "pacing.$name.count" "$count/$planned" "within 2%" "$(verdict "$abs_err" "<=" 2)" \
    "$what for ${DURATION} s: $count messages at the receiver, plan $planned (${err}%)"
  figure "pacing.$name.cv" "$cv" "< 0.1" "$(verdict "$cv" "<" 0.1)" \
    "gaps between messages at the receiver: mean ${mean} s, planned ${gap} s"
  figure "pacing.$name.min-gap" "${minr}x" ">= 0.5x" "$(verdict "$minr" ">=" 0.5)" \
    "smallest gap / planned gap"
done <"$WORK/pacing.txt"
