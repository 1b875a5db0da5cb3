# shellcheck shell=bash
# Shared helpers of the benchmark scripts (bench/*.sh). Source it after setting BENCH_DIR, the
# benchmark's scratch directory (removed at exit with every server started through it).
#
#   bench_init NAME         servers_init on $BENCH_TMP/NAME (tests/lib/servers.sh: dnsmasq and
#                           smtpd.py on loopback, all stopped at exit); sets WORK
#   sink_start ADDR PORT    Postfix's smtp-sink on ADDR:PORT (-u nobody when root), stopped at
#                           exit like the other servers
#   unbound_start           unbound (a validating, caching resolver that also serves local
#                           data from hashed zones) on 127.0.0.1 and a free port, with the
#                           local-data lines read from stdin; sets DNS_SERVER like dnsmasq_start.
#                           dnsmasq keeps mx-host records in a list searched per query, so with
#                           10,000 of them it, not the client, sets the pace
#   figure KEY VALUE TARGET VERDICT TEXT
#                           prints one result line and appends it (tab-separated) to
#                           $BENCH_RESULTS, which bench/run turns into its table; VERDICT is
#                           "pass", "MISS" or "info"
#   now_ms                  milliseconds since the epoch
#   ratio A B               A / B with two decimals
#
# Environment: IPWARM (the binary under test, default /tmp/bench-build/ipwarm), BENCH_BIN (the
# compiled helpers: curl_sender, gen_store; default /tmp/bench-bin), BENCH_TMP (default
# /tmp/bench-work), BENCH_RESULTS (default $BENCH_TMP/results.tsv).

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export SRCDIR=${SRCDIR:-$BENCH_SRC}
IPWARM=${IPWARM:-/tmp/bench-build/ipwarm}
BENCH_BIN=${BENCH_BIN:-/tmp/bench-bin}
BENCH_TMP=${BENCH_TMP:-/tmp/bench-work}
BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_TMP/results.tsv}
export PY=/usr/bin/python3
# shellcheck source=../tests/lib/servers.sh
. "$BENCH_SRC/tests/lib/servers.sh"

bench_init() {
  mkdir -p "$BENCH_TMP"
  WORK=$BENCH_TMP/$1
  rm -rf "$WORK"
  servers_init "$WORK"
}

sink_start() {
  local addr=$1 port=$2 user=() i
  [ "$(id -u)" -eq 0 ] && user=(-u nobody)
  if [ ! -x /usr/sbin/smtp-sink ]; then
    echo "bench: /usr/sbin/smtp-sink is missing (Debian: postfix; scripts/deps bench)" >&2
    return 1
  fi
  /usr/sbin/smtp-sink "${user[@]}" "$addr:$port" 1024 >"$WORK/sink-$addr.log" 2>&1 &
  SERVERS_PIDS+=("$!")
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: smtp-sink did not start on $addr:$port" >&2
  return 1
}

unbound_start() {
  local port i
  if [ ! -x /usr/sbin/unbound ]; then
    echo "bench: /usr/sbin/unbound is missing (Debian: unbound; scripts/deps bench)" >&2
    return 1
  fi
  port=$(free_port)
  {
    printf 'server:\n  interface: 127.0.0.1\n  port: %s\n  do-daemonize: no\n' "$port"
    printf '  username: ""\n  chroot: ""\n  directory: "%s"\n  pidfile: ""\n' "$WORK"
    printf '  use-syslog: no\n  logfile: ""\n  num-threads: 1\n  do-ip6: no\n'
    printf '  access-control: 127.0.0.0/8 allow\n  so-rcvbuf: 4m\n  local-zone: "test." static\n'
    sed 's/.*/  local-data: "&"/'
  } >"$WORK/unbound.conf"
  /usr/sbin/unbound -d -c "$WORK/unbound.conf" >"$WORK/unbound.log" 2>&1 &
  SERVERS_PIDS+=("$!")
  DNS_SERVER=127.0.0.1:$port
  for ((i = 0; i < 200; i++)); do
    dns_query ready.probe.test >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "bench: unbound did not start:" >&2
  cat "$WORK/unbound.log" >&2
  return 1
}

figure() {
  local key=$1 value=$2 target=$3 verdict=$4 text=$5
  printf '%-5s %-28s %-14s target %-16s %s\n' "$verdict" "$key" "$value" "$target" "$text"
  printf '%s\t%s\t%s\t%s\t%s\n' "$key" "$value" "$target" "$verdict" "$text" >>"$BENCH_RESULTS"
}

now_ms() {
  date +%s%3N
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.2f", a / b }'
}

# Passes when "A OP B" holds for numbers (OP: < <= > >=); prints pass or MISS.
verdict() {
  awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
    ok = (op == "<" && a < b) || (op == "<=" && a <= b) || (op == ">" && a > b) || (op == ">=" && a >= b)
    print ok ? "pass" : "MISS" }'
}
