#!/usr/bin/env bash
# `ipwarm mx` and `ipwarm dnsbl` against a real dnsmasq on loopback (tests/lib/servers.sh):
# every MX status (ok, implicit-mx, null-mx, nxdomain, no-address, temperror on a timeout and
# on a server failure), the provider roll-up with and without a plan, the --json documents of
# cli.md; block lists: listed with the TXT reason, not listed, refused by the list
# (127.255.255.x), timeout, IPv6 nibbles, the plan's zones; exit 0 whatever the answers, even
# when no DNS server can be reached (temperror / could not check).
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

silent_udp_start || exit 1
# A fake upstream that answers SERVFAIL to everything, for the zone servfail.test.
sf_port_file=$work/sf.port
"$SERVERS_PY" -c '
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    q, a = s.recvfrom(512)
    if len(q) >= 12:
        s.sendto(q[:2] + bytes([q[2] | 0x80, 0x82]) + q[4:], a)
' "$sf_port_file" &
SERVERS_PIDS+=("$!")
file_wait "$sf_port_file"
sf_port=$(cat "$sf_port_file")

# 2001:db8::1 reversed in nibbles (RFC 5782 2.4), written out by hand.
v6name=1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2
dnsmasq_start <<EOF || { bad "dnsmasq"; exit 1; }
mx-host=two.test,mx1.two.test,20
mx-host=two.test,mx2.two.test,10
host-record=mx1.two.test,192.0.2.1
host-record=mx2.two.test,192.0.2.2,2001:db8::2
host-record=implicit.test,192.0.2.10
dns-rr=null.test,15,000000
mx-host=noaddr.test,ghost.noaddr.test,10
server=/slow.test/127.0.0.1#$SILENT_PORT
server=/servfail.test/127.0.0.1#$sf_port
mx-host=gm.test,gmail-smtp-in.l.google.com,5
host-record=gmail-smtp-in.l.google.com,192.0.2.30
mx-host=hosted.test,mx.hosting.test,10
host-record=mx.hosting.test,192.0.2.31
address=/2.2.0.192.bl.test/127.0.0.2
txt-record=2.2.0.192.bl.test,"Listed: see https://bl.test/q?ip=192.0.2.2"
address=/2.2.0.192.zen.test/127.255.255.254
address=/$v6name.bl.test/127.0.0.4
address=/2.2.0.192.hijack.test/198.51.100.1
EOF
ok "dnsmasq answers on $DNS_SERVER"
D=(--dns "$DNS_SERVER" --dns-timeout 1000)

# --- mx --------------------------------------------------------------------------------------
t "mx: every status" 0 "${D[@]}" mx two.test implicit.test null.test nx.test noaddr.test \
  x.slow.test x.servfail.test gm.test
out_has "mx: ok with preference order" "two.test  ok  provider other"
if grep -A2 '^two.test' "$work/out" | sed -n 2p | grep -q '10 mx2.two.test  192.0.2.2, 2001:db8::2'; then
  ok "mx: preference 10 first, with both addresses"
else
  bad "mx: preference 10 first, with both addresses"
fi
out_has "mx: implicit" "implicit.test  implicit-mx"
out_has "mx: null" "null.test  null-mx"
out_has "mx: nxdomain" "nx.test  nxdomain"
out_has "mx: no address" "noaddr.test  no-address"
out_has "mx: no address names the host" "ghost.noaddr.test  (no address: A nxdomain, AAAA nxdomain)"
out_has "mx: a timeout is temperror" "x.slow.test  temperror"
out_has "mx: a timeout says so" "timeout"
out_has "mx: servfail is temperror" "x.servfail.test  temperror"
out_has "mx: gmail roll-up from the shipped table" "gm.test  ok  provider gmail"

t "mx --json" 0 "${D[@]}" --json mx two.test implicit.test null.test nx.test noaddr.test x.slow.test gm.test
json_true "mx --json: one entry per domain, in order" \
  '[x["domain"] for x in d] == ["two.test","implicit.test","null.test","nx.test","noaddr.test","x.slow.test","gm.test"]'
json_true "mx --json: statuses" \
  '[x["status"] for x in d] == ["ok","implicit-mx","null-mx","nxdomain","no-address","temperror","ok"]'
json_true "mx --json: keys of cli.md" \
  'all(set(["domain","status","provider","hosts"]) <= set(x) for x in d)'
json_true "mx --json: hosts" \
  'd[0]["hosts"] == [{"preference":10,"host":"mx2.two.test","addresses":["192.0.2.2","2001:db8::2"]},{"preference":20,"host":"mx1.two.test","addresses":["192.0.2.1"]}]'
json_true "mx --json: null MX has no hosts" 'd[2]["hosts"] == []'
json_true "mx --json: provider" 'd[6]["provider"] == "gmail" and d[0]["provider"] == "other"'

# A plan's own provider, matched by MX suffix.
cat >plan.yaml <<EOF
campaign: lookups
source: {ip: 192.0.2.2, helo: mx.sender.test}
sender: {from: news@sender.test}
message: {subject: Hi, text: hello}
recipients: {file: plan.yaml}
providers:
  - name: hosting
    mx: [.hosting.test]
preflight:
  dnsbl: [bl.test, zen.test]
dns:
  servers: ["$DNS_SERVER"]
EOF
t "mx with a plan" 0 -p plan.yaml --json mx hosted.test gm.test
json_true "mx: the plan's provider" '[x["provider"] for x in d] == ["hosting","gmail"]'

t "mx: no DNS server reachable" 0 --dns 127.0.0.1:1 mx two.test
out_has "mx: unreachable is temperror, never no MX" "two.test  temperror"
out_has "mx: unreachable said" "unreachable"
t "mx: bad domain argument" 64 "${D[@]}" mx 'bad domain'

# --- dnsbl -----------------------------------------------------------------------------------
t "dnsbl: listed, refused, clean, timeout" 0 "${D[@]}" dnsbl --ip 192.0.2.2 --zone bl.test \
  --zone zen.test --zone clean.test --zone slow.test --zone hijack.test
out_has "dnsbl: listed with reason" "bl.test  listed  127.0.0.2  Listed: see https://bl.test/q?ip=192.0.2.2"
out_has "dnsbl: refused by the list" "zen.test  could not check (refused-by-list)  127.255.255.254"
out_has "dnsbl: not listed" "clean.test  not listed"
out_has "dnsbl: timeout" "slow.test  could not check (timeout)"
out_has "dnsbl: a non-127 answer is no listing" "hijack.test  could not check (unexpected-answer)"
out_has "dnsbl: summary" "192.0.2.2: listed"

t "dnsbl --json" 0 "${D[@]}" --json dnsbl --ip 192.0.2.2 --zone bl.test --zone zen.test \
  --zone clean.test --zone slow.test
json_true "dnsbl --json: keys of cli.md" \
  'set(["ip","listed","zones"]) <= set(d) and all(set(["zone","listed","answers","txt","error"]) <= set(z) for z in d["zones"])'
json_true "dnsbl --json: listed" 'd["ip"] == "192.0.2.2" and d["listed"] is True'
json_true "dnsbl --json: listed zone" \
  'd["zones"][0] == {"zone":"bl.test","listed":True,"answers":["127.0.0.2"],"txt":"Listed: see https://bl.test/q?ip=192.0.2.2","error":None}'
json_true "dnsbl --json: refused is neither listed nor clean" \
  'd["zones"][1]["listed"] is False and d["zones"][1]["error"] == "refused-by-list"'
json_true "dnsbl --json: clean" \
  'd["zones"][2] == {"zone":"clean.test","listed":False,"answers":[],"txt":None,"error":None}'
json_true "dnsbl --json: timeout" 'd["zones"][3]["error"] == "timeout" and d["zones"][3]["listed"] is False'

t "dnsbl: only refused" 0 "${D[@]}" --json dnsbl --ip 192.0.2.2 --zone zen.test
json_true "dnsbl: a refusal never lists" 'd["listed"] is False'

t "dnsbl: IPv6 nibbles" 0 "${D[@]}" --json dnsbl --ip 2001:db8::1 --zone bl.test
json_true "dnsbl: IPv6 listed" 'd["listed"] is True and d["zones"][0]["answers"] == ["127.0.0.4"]'

t "dnsbl: the plan's zones" 0 -p plan.yaml --json dnsbl --ip 192.0.2.2
json_true "dnsbl: zones from preflight.dnsbl" '[z["zone"] for z in d["zones"]] == ["bl.test","zen.test"]'

t "dnsbl: no DNS server reachable" 0 --dns 127.0.0.1:1 dnsbl --ip 192.0.2.2 --zone bl.test
out_has "dnsbl: unreachable is could not check" "bl.test  could not check (unreachable)"
t "mx and dnsbl without the named plan" 0 -p nowhere.yaml "${D[@]}" mx gm.test
out_has "missing plan: shipped providers" "gm.test  ok  provider gmail"
t "dnsbl: --ip required" 64 "${D[@]}" dnsbl --zone bl.test
t "dnsbl: bad --ip" 64 "${D[@]}" dnsbl --ip 192.0.2 --zone bl.test

finish
