#!/usr/bin/env bash
# DNS (issue 8, part 4): MX and provider resolution of DOMAINS distinct domains (10,000) with
# `ipwarm mx DOMAIN...` (it resolves all its arguments in parallel), against a DNS server on
# loopback that holds one MX record per domain (MX hosts spread over four providers by name
# suffix) and an A record per MX host. The rate counts the whole process (start, plan, every
# lookup: MX, then A and AAAA of the MX host; the JSON out), best of ROUNDS; every domain must
# come back "ok" with the provider its MX host names. Target: >= 5,000 domains/s.
# The server is unbound (local-data: hashed, fast). The same run against dnsmasq, whose
# mx-host records are a list searched on every query, is printed for comparison with the
# server's own CPU time: there dnsmasq, not ipwarm, sets the pace.
# Environment: DOMAINS (10000), ROUNDS (3), DNSMASQ (1: also the dnsmasq run; 0: skip).
set -u
. "$(dirname "$0")/lib.sh"
DOMAINS=${DOMAINS:-10000} ROUNDS=${ROUNDS:-3} DNSMASQ=${DNSMASQ:-1}
bench_init dns

awk -v n="$DOMAINS" 'BEGIN { for (i = 0; i < n; i++) printf "d%d.test\n", i }' >"$WORK/domains.txt"
mkplan() {
  cat >"$WORK/plan.yaml" <<EOF
campaign: dns
timezone: UTC
source: {ip: 127.0.0.1, helo: bench.example.com}
sender: {from: "Bench <bench@example.com>", return_path: bounces@example.com}
transport: {mode: direct}
message: {subject: "x", text_file: message.txt}
recipients: {file: rcpts.txt, mode: once}
providers:
  - {name: p0, mx: [.p0.test]}
  - {name: p1, mx: [.p1.test]}
  - {name: p2, mx: [.p2.test]}
  - {name: p3, mx: [.p3.test]}
  - {name: other, default: true}
preflight: {require: []}
dns: {servers: ["$DNS_SERVER"], timeout: 5s}
EOF
}
echo x >"$WORK/message.txt"
echo a@d0.test >"$WORK/rcpts.txt"
cat >"$WORK/count.py" <<'PYEOF'
import json, sys
want = lambda d: "p%d" % (int(d[1:].split(".")[0]) % 4)
try:
    rows = json.load(open(sys.argv[1]))
except ValueError:
    rows = []
print(sum(1 for r in rows if r["status"] == "ok" and r["provider"] == want(r["domain"])))
PYEOF

# measure ROUNDS LABEL: sets BEST (domains/s) and OKN (domains ok with the right provider).
measure() {
  local rounds=$1 label=$2 round t0 ms rate n rc
  BEST=0 OKN=0
  for ((round = 1; round <= rounds; round++)); do
    t0=$(now_ms)
    xargs -a "$WORK/domains.txt" -s 1000000 -x "$IPWARM" -q -p "$WORK/plan.yaml" --json mx \
      >"$WORK/mx.json" 2>"$WORK/mx.err"
    rc=$?
    ms=$(($(now_ms) - t0))
    rate=$(awk -v n="$DOMAINS" -v ms="$ms" 'BEGIN { printf "%.0f", n * 1000 / ms }')
    n=$($PY "$WORK/count.py" "$WORK/mx.json")
    echo "$label round $round: $DOMAINS domains in $ms ms ($rate/s), $n ok with the right provider (exit $rc)"
    if [ "$n" -ge "$OKN" ] && [ "$rate" -gt "$BEST" ]; then BEST=$rate OKN=$n; fi
  done
}

awk -v n="$DOMAINS" 'BEGIN {
  for (i = 0; i < n; i++) {
    printf "d%d.test. 60 IN MX 10 mx%d.p%d.test.\n", i, i, i % 4
    printf "mx%d.p%d.test. 60 IN A 127.1.%d.%d\n", i, i % 4, int(i / 250), i % 250 + 1
  }
}' >"$WORK/zone.txt"
unbound_start <"$WORK/zone.txt" || exit 1
mkplan
measure "$ROUNDS" unbound
v=$(verdict "$BEST" ">=" 5000)
[ "$OKN" -lt "$DOMAINS" ] && v=MISS
figure dns.rate "${BEST}/s" ">= 5000/s" "$v" "ipwarm mx: $DOMAINS distinct domains against unbound on loopback, whole process, best of $ROUNDS"
figure dns.resolved "$OKN/$DOMAINS" "$DOMAINS/$DOMAINS" "$(verdict "$OKN" ">=" "$DOMAINS")" "answers ok, with the provider their MX host names"

if [ "$DNSMASQ" = 1 ]; then
  awk '{ sub(/\.$/, "", $1); sub(/\.$/, "", $6)
         if ($4 == "MX") printf "mx-host=%s,%s,%s\n", $1, $6, $5
         else printf "host-record=%s,%s\n", $1, $5 }' "$WORK/zone.txt" >"$WORK/dnsmasq-zone.conf"
  dnsmasq_start <"$WORK/dnsmasq-zone.conf" || exit 1
  mkplan
  dpid=${SERVERS_PIDS[${#SERVERS_PIDS[@]}-1]}
  c0=$(awk '{ print $14 + $15 }' "/proc/$dpid/stat")
  measure 1 dnsmasq
  c1=$(awk '{ print $14 + $15 }' "/proc/$dpid/stat")
  cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz }')
  figure dns.rate-dnsmasq "${BEST}/s" "-" info "the same against dnsmasq ($OKN ok): dnsmasq itself used $cpu s of CPU (its mx-host records are a list searched per query)"
fi
