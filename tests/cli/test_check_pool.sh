#!/usr/bin/env bash
# `ipwarm check` for a pool of three source IPs against a real dnsmasq on loopback
# (tests/lib/servers.sh): 127.0.0.31 is set up right; 127.0.0.32 has no PTR record; 127.0.0.33
# is listed in the test block list bl.pool.test with a TXT reason. The check runs PTR/FCrDNS,
# HELO, SPF and DNSBL for each IP, one line each, names exactly the two IPs in trouble (and
# what is wrong with each) in the table's per-IP lines and in the JSON (`ip` on each check,
# `ips` per IP), and exits 1 (a required check failed, docs/cli.md).
# Environment: IPWARM (the binary), SRCDIR (the source tree).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq
unset IPWARM_PLAN
work=$(mktemp -d)
. "$SRCDIR/tests/lib/servers.sh"
servers_init "$work"
cd "$work" || exit 1
. "$SRCDIR/tests/lib/assert.sh"

# The HELO name has an A record for each IP of the pool (address= makes no PTR); the PTRs
# are written one by one: none for 127.0.0.32, which the reverse zone, local here, answers
# with NXDOMAIN (the answer of a range whose owner set no PTR).
dnsmasq_start <<'EOF' || { bad "dnsmasq"; exit 1; }
local=/127.in-addr.arpa/
ptr-record=31.0.0.127.in-addr.arpa,mx.pool.test
ptr-record=33.0.0.127.in-addr.arpa,mx.pool.test
address=/mx.pool.test/127.0.0.31
address=/mx.pool.test/127.0.0.32
address=/mx.pool.test/127.0.0.33
txt-record=pool.test,"v=spf1 ip4:127.0.0.31 ip4:127.0.0.32 ip4:127.0.0.33 -all"
address=/33.0.0.127.bl.pool.test/127.0.0.2
txt-record=33.0.0.127.bl.pool.test,"Listed for spam from 127.0.0.33: see https://bl.pool.test/q"
mx-host=example.test,mx.example.test,10
host-record=mx.example.test,127.0.0.1
EOF
ok "dnsmasq answers on $DNS_SERVER"

printf 'Hello,\nthis is a warm-up message.\n' >message.txt
printf 'email\na@example.test\n' >rcpt.csv
# Nothing listens on this port: the SMTP probe (not required here) is refused at once.
port=$(free_port)
cat >pool.yaml <<EOF
campaign: pool-check
state: pool.db
source: {ips: [127.0.0.31, 127.0.0.32, 127.0.0.33], helo: mx.pool.test}
sender: {from: "Pool <news@pool.test>"}
transport: {mode: direct, port: $port, timeouts: {connect: 3s, command: 5s}}
message: {subject: Hi, text_file: message.txt}
recipients: {file: rcpt.csv}
preflight:
  require: [spf, ptr, helo, dnsbl]
  dnsbl: [bl.pool.test]
dns:
  servers: ["$DNS_SERVER"]
  timeout: 2s
EOF

t "check a pool with two IPs in trouble" 1 -p pool.yaml check
# One line per check and IP: four checks per IP.
for ip in 127.0.0.31 127.0.0.32 127.0.0.33; do
  for c in spf ptr helo dnsbl; do
    n=$(grep -cE "^(pass|warn|FAIL) +$c +required .*$ip([^0-9]|$)" out)
    if [ "$n" = 1 ]; then ok "$ip: one $c line"; else bad "$ip: $n $c lines"; fi
  done
done
out_has "no PTR named" "FAIL  ptr    required  127.0.0.32 has no PTR record (nxdomain)"
out_has "listing with zone and TXT reason" \
  "FAIL  dnsbl  required  127.0.0.33 is listed by bl.pool.test (127.0.0.2: Listed for spam from 127.0.0.33: see https://bl.pool.test/q)"
if grep -qE '^pass +ptr +required +127\.0\.0\.31 has PTR mx\.pool\.test' out; then
  ok "127.0.0.31 FCrDNS passes"; else bad "127.0.0.31 FCrDNS"; fi
out_has "per-IP: 127.0.0.31 ok" "  127.0.0.31       ok"
out_has "per-IP: 127.0.0.32 ptr" "  127.0.0.32       NOT OK  fail: ptr"
out_has "per-IP: 127.0.0.33 dnsbl" "  127.0.0.33       NOT OK  fail: dnsbl"
n=$(grep -c 'NOT OK  fail:' out)
if [ "$n" = 2 ]; then ok "exactly two IPs named"; else bad "$n IPs named"; fi
err_has "exit message names the failed checks" "2 required checks failed (ptr, dnsbl)"

t "check --json" 1 -p pool.yaml --json check
json_true "ok false" 'd["ok"] is False'
json_true "every per-IP check carries its ip" \
  'all(c["ip"] in ("127.0.0.31","127.0.0.32","127.0.0.33") for c in d["checks"] if c["name"] in ("spf","ptr","helo","dnsbl"))'
json_true "checks not about an IP have ip null" \
  'all(c["ip"] is None for c in d["checks"] if c["name"] in ("mx","dkim","dmarc"))'
json_true "failed checks are exactly ptr of .32 and dnsbl of .33" \
  'sorted((c["ip"], c["name"]) for c in d["checks"] if c["status"]=="fail" and c["required"]) == [("127.0.0.32","ptr"),("127.0.0.33","dnsbl")]'
json_true "ips: one entry per IP, in the pool's order" \
  '[i["ip"] for i in d["ips"]] == ["127.0.0.31","127.0.0.32","127.0.0.33"]'
json_true "ips: ok, failed per IP" \
  '[(i["ok"], i["failed"]) for i in d["ips"]] == [(True, []), (False, ["ptr"]), (False, ["dnsbl"])]'
json_true "the keys of cli.md are kept" \
  'all(set(["name","status","required","detail","subject"]) <= set(c) for c in d["checks"])'

# The same pool with the listing gone from the zones and 127.0.0.32 left out: all pass.
sed -e 's/127.0.0.31, 127.0.0.32, 127.0.0.33/127.0.0.31, 127.0.0.33/' -e 's/bl.pool.test]/bl.other.test]/' \
  pool.yaml >fine.yaml
t "a pool without the two" 0 -p fine.yaml --json check
json_true "both IPs ok" '[(i["ip"], i["ok"]) for i in d["ips"]] == [("127.0.0.31", True), ("127.0.0.33", True)]'
finish
