#!/usr/bin/env bash
# `ipwarm check` end to end against real servers on loopback (tests/lib/servers.sh): dnsmasq
# serves a sandbox sender's DNS (PTR, A, SPF, DKIM, DMARC, MX, a block list) and smtpd.py plays
# the receiving MX and a relay. A correctly set-up sender passes (exit 0) and the result is
# recorded in the state file; a broken one (FCrDNS, HELO, SPF, DKIM key, DMARC, block list, MX
# statuses, no STARTTLS, SIZE) names every problem at once (exit 1); TLS 1.1 when 1.2 is
# required fails; relay AUTH accepted and refused; an IP not on this machine is named.
# Environment: IPWARM (the binary), SRCDIR (the source tree).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq openssl
unset IPWARM_PLAN
work=$(mktemp -d)
. "$SRCDIR/tests/lib/servers.sh"
servers_init "$work"
cd "$work" || exit 1

. "$SRCDIR/tests/lib/assert.sh"
# status NAME [SUBJECT-SUBSTRING]: the statuses of the checks called NAME in the last JSON.
statuses() {
  "$SERVERS_PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(c["status"] for c in d["checks"] if c["name"] == sys.argv[2]
               and (len(sys.argv) < 4 or sys.argv[3] in (c["subject"] or ""))))' "$work/out" "$@"
}
is_status() {
  local what=$1 want=$2
  shift 2
  local got
  got=$(statuses "$@")
  if [ "$got" = "$want" ]; then ok "$what: $want"; else bad "$what: '$got', expected '$want'"; fi
}

# --- keys, certificates, the sandbox's DNS ------------------------------------------------
# DKIM: the published key (good.pem) and another one (other.pem) for the mismatch.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out good.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.pem 2>/dev/null
# p= is the base64 SubjectPublicKeyInfo (RFC 6376 3.6.1), computed here by openssl itself.
pub=$(openssl pkey -in good.pem -pubout -outform DER 2>/dev/null | base64 -w0)
[ -n "$pub" ] || { bad "openssl made no DKIM key"; exit 1; }
# TXT strings hold at most 255 octets: publish the record as several strings.
dkim_txt="\"v=DKIM1; k=rsa; p=\""
rest=$pub
while [ -n "$rest" ]; do
  dkim_txt+=",\"${rest:0:200}\""
  rest=${rest:200}
done
if [ "${pub:0:1}" = "M" ]; then ok "DKIM public key generated"; else bad "DKIM public key: $pub"; fi
make_cert "$work/tls" localhost || { bad "openssl made no certificate"; exit 1; }
silent_udp_start || exit 1

dnsmasq_start <<EOF || { bad "dnsmasq"; exit 1; }
# good.test: the correctly set-up sender, source IP 127.0.0.1
ptr-record=1.0.0.127.in-addr.arpa,mx1.good.test
host-record=mx1.good.test,127.0.0.1
txt-record=good.test,"v=spf1 ip4:127.0.0.1 -all"
txt-record=s1._domainkey.good.test,$dkim_txt
txt-record=_dmarc.good.test,"v=DMARC1; p=none; rua=mailto:dmarc@good.test"
# bad.test: the broken sender, source IP 127.0.0.2 (on lo like all of 127/8)
ptr-record=2.0.0.127.in-addr.arpa,mx2.bad.test
host-record=mx2.bad.test,127.0.0.9
txt-record=bad.test,"v=spf1 ip4:192.0.2.1 -all"
txt-record=s1._domainkey.bad.test,$dkim_txt
address=/2.0.0.127.bl.test/127.0.0.2
txt-record=2.0.0.127.bl.test,"127.0.0.2 is listed: see https://bl.test/lookup"
# recipient domains
mx-host=example.test,mx.example.test,10
host-record=mx.example.test,127.0.0.1
# a relay known only to this DNS server (not /etc/hosts): check must ask it, as run does
host-record=relay.check.test,127.0.0.1
dns-rr=null.test,15,000000
mx-host=noaddr.test,ghost.noaddr.test,10
server=/slow.test/127.0.0.1#$SILENT_PORT
EOF
ok "dnsmasq answers on $DNS_SERVER"

# The MX (direct mode) and a relay: STARTTLS, SIZE, AUTH as each case needs.
port_good=$(free_port)
port_plain=$(free_port)
port_old=$(free_port)
port_relay=$(free_port)
cert="\"cert\": \"$work/tls/cert.pem\", \"key\": \"$work/tls/key.pem\""
smtpd_start mx "[
 {\"name\": \"good\", \"host\": \"127.0.0.1\", \"port\": $port_good, \"size\": 10485760,
  \"starttls\": {$cert, \"min\": \"1.2\", \"max\": \"1.3\"}},
 {\"name\": \"plain\", \"host\": \"127.0.0.1\", \"port\": $port_plain, \"size\": 1000},
 {\"name\": \"old\", \"host\": \"127.0.0.1\", \"port\": $port_old,
  \"starttls\": {$cert, \"min\": \"1.1\", \"max\": \"1.1\"}},
 {\"name\": \"relay\", \"host\": \"127.0.0.1\", \"port\": $port_relay, \"size\": 5000000,
  \"starttls\": {$cert, \"min\": \"1.2\", \"max\": \"1.3\"},
  \"auth\": {\"user\": \"warmup\", \"password\": \"s3cret-pw\"}}]" || { bad "smtpd.py"; exit 1; }
ok "smtpd.py listens"

printf 'Hello,\nthis is a warm-up message.\n' >message.txt
printf 'email,first_name\na@example.test,Ann\nb@example.test,Bob\n' >good.csv
printf 'a@example.test\nc@null.test\nd@nothing.test\ne@noaddr.test\n' >bad.csv

# plan NAME KEY=VALUE...: writes NAME.yaml from the good sender, with overrides.
plan() {
  local name=$1 ip=127.0.0.1 helo=mx1.good.test from=news@good.test key=good.pem
  local rcpt=good.csv port=$port_good tls_min=1.2 mode=direct relay="" zones="[bl.test]"
  local require="[spf, ptr, helo, mx, dnsbl, dkim, dmarc, smtp, tls, size]"
  shift
  local kv
  for kv in "$@"; do
    case $kv in
      ip=*) ip=${kv#ip=} ;;
      helo=*) helo=${kv#helo=} ;;
      from=*) from=${kv#from=} ;;
      key=*) key=${kv#key=} ;;
      rcpt=*) rcpt=${kv#rcpt=} ;;
      port=*) port=${kv#port=} ;;
      tls_min=*) tls_min=${kv#tls_min=} ;;
      mode=*) mode=${kv#mode=} ;;
      relay=*) relay=${kv#relay=} ;;
      zones=*) zones=${kv#zones=} ;;
      require=*) require=${kv#require=} ;;
    esac
  done
  local domain=${from#*@}
  cat >"$name.yaml" <<EOF
campaign: $name
state: $name.db
source: {ip: $ip, helo: $helo}
sender:
  from: "Sandbox <$from>"
  dkim: {domain: $domain, selector: s1, key_file: $key}
transport:
  mode: $mode
  port: $port
  tls_min: "$tls_min"
  timeouts: {connect: 3s, command: 10s}
$relay
message: {subject: Hi, text_file: message.txt}
recipients: {file: $rcpt}
preflight:
  require: $require
  dnsbl: $zones
dns:
  servers: ["$DNS_SERVER"]
  timeout: 2s
EOF
}

# --- a correctly set-up sender passes ------------------------------------------------------
plan good
t "good sender: check" 0 -p good.yaml check
for c in spf ptr helo mx dnsbl dkim dmarc smtp tls size; do
  if grep -qE "^pass +$c +required" "$work/out"; then ok "good sender: $c passes"; else bad "good sender: $c passes"; grep -E " $c " "$work/out" | sed 's/^/    /'; fi
done
out_has "good sender: FCrDNS named" "has PTR mx1.good.test, which resolves back to it"
out_has "good sender: TLS version" "negotiated TLSv1."
out_has "good sender: summary" "ok: "
out_lacks "good sender: no FAIL line" "FAIL"
t "good sender: --json" 0 -p good.yaml --json check
json_true "good sender: ok true" 'd["ok"] is True'
json_true "good sender: every check has the keys of cli.md" \
  'all(set(["name","status","required","detail"]) <= set(c) for c in d["checks"])'
json_true "good sender: names from the contract" \
  'set(c["name"] for c in d["checks"]) <= {"spf","ptr","helo","mx","dnsbl","dkim","dmarc","smtp","tls","auth","size"}'
json_true "good sender: auth skipped in direct mode" \
  '[c["status"] for c in d["checks"] if c["name"]=="auth"] == ["skip"]'
json_true "good sender: mx names the provider" \
  'any("providers: other 1" in c["detail"] for c in d["checks"] if c["name"]=="mx")'
# The result is recorded for `report`: the latest preflight row holds the document.
if command -v sqlite3 >/dev/null; then
  rows=$(sqlite3 good.db "SELECT count(*) FROM preflight_runs" 2>/dev/null)
  if [ "${rows:-0}" -ge 2 ]; then ok "check recorded in the state file ($rows runs)"; else bad "check recorded in the state file: '$rows'"; fi
fi
# The dialogue the server logged (one JSON object per line; key order is the server's business).
smtpd_events() { # smtpd_events EV [LINE-PREFIX]: how many events EV (whose line starts so)
  "$SERVERS_PY" -c '
import json, sys
n = 0
for raw in open(sys.argv[1]):
    ev = json.loads(raw)
    if ev.get("ev") == sys.argv[2] and ev.get("line", "").upper().startswith(sys.argv[3]):
        n += 1
print(n)' "$SMTPD_LOG" "$1" "${2:-}"
}
n=$(smtpd_events cmd EHLO)
if [ "$n" -ge 1 ]; then ok "the probe said EHLO ($n)"; else bad "the probe said no EHLO: '$n'"; fi
n=$(smtpd_events cmd MAIL)
if [ "$n" = 0 ]; then ok "the probe sends no MAIL"; else bad "the probe sent MAIL: '$n'"; fi
n=$(smtpd_events cmd RCPT)
if [ "$n" = 0 ]; then ok "the probe sends no RCPT"; else bad "the probe sent RCPT: '$n'"; fi
if [ "$(smtpd_events tls)" -ge 1 ]; then ok "the probe did STARTTLS"; else bad "the probe did STARTTLS"; fi

# --- a broken sender: every problem at once ------------------------------------------------
plan broken ip=127.0.0.2 helo=mx2.bad.test from=news@bad.test key=other.pem rcpt=bad.csv \
  port=$port_plain
t "broken sender: check" 1 -p broken.yaml --json check
is_status "broken: spf" "fail" spf
is_status "broken: ptr (no FCrDNS)" "fail" ptr
is_status "broken: helo resolves elsewhere" "fail" helo
is_status "broken: mx" "fail" mx
is_status "broken: dnsbl listed" "fail" dnsbl
is_status "broken: dkim key mismatch" "fail" dkim
is_status "broken: dmarc absent" "fail" dmarc
is_status "broken: smtp still answers" "pass" smtp
is_status "broken: no STARTTLS" "fail" tls
is_status "broken: size over SIZE 1000" "fail" size
json_true "broken: ok false" 'd["ok"] is False'
json_true "broken: mx names each domain that cannot receive" \
  'all(x in [c for c in d["checks"] if c["name"]=="mx"][0]["detail"] for x in ("null.test (null-mx)", "nothing.test (nxdomain)", "noaddr.test (no-address)"))'
json_true "broken: every failure has a fix" \
  'all(c["fix"] for c in d["checks"] if c["status"]=="fail")'
json_true "broken: dnsbl reason shown" \
  '"see https://bl.test/lookup" in [c for c in d["checks"] if c["name"]=="dnsbl"][0]["detail"]'
json_true "broken: dnsbl look-up" \
  '[c for c in d["checks"] if c["name"]=="dnsbl"][0]["lookup"] == "dig +short A 2.0.0.127.bl.test"'
json_true "broken: dmarc look-up" \
  '[c for c in d["checks"] if c["name"]=="dmarc"][0]["lookup"] == "dig +short TXT _dmarc.bad.test"'
err_has "broken: the error names the failed checks" "required checks failed (spf, ptr, helo, mx, dnsbl, dkim, dmarc, tls, size)"
t "broken sender: human" 1 -p broken.yaml check
out_has "broken human: fix line" "fix: "
out_has "broken human: look-up line" "see: dig +short -x 127.0.0.2"
out_has "broken human: FCrDNS" "which does not resolve back to 127.0.0.2"
out_has "broken human: no STARTTLS" "does not offer STARTTLS"

# Not required: the same failures do not fail the check.
plan lenient ip=127.0.0.2 helo=mx2.bad.test from=news@bad.test key=other.pem rcpt=bad.csv \
  port=$port_plain "require=[]"
t "nothing required: check passes" 0 -p lenient.yaml check
out_has "nothing required: failures still shown" "FAIL  ptr    optional"

# --- TLS 1.1 only while 1.2 is required -----------------------------------------------------
plan old port=$port_old
t "TLS 1.1 server, tls_min 1.2" 1 -p old.yaml --json check
is_status "TLS 1.1: tls fails" "fail" tls
json_true "TLS 1.1: names the version" \
  '"TLSv1.1, below tls_min 1.2" in [c for c in d["checks"] if c["name"]=="tls"][0]["detail"]'
plan old11 port=$port_old tls_min=1.1
t "TLS 1.1 server, tls_min 1.1" 0 -p old11.yaml --json check
is_status "TLS 1.1 allowed: tls passes" "pass" tls

# --- relay: AUTH accepted and refused, certificate verified --------------------------------
relay_block="  relay:
    url: smtp://127.0.0.1:$port_relay
    username: warmup
    password_env: PF_TEST_PW
    ca_file: $work/tls/cert.pem"
plan relay mode=relay "relay=$relay_block" "require=[smtp, tls, auth, size]"
PF_TEST_PW=s3cret-pw t "relay: good credentials" 0 -p relay.yaml --json check
is_status "relay: auth accepted" "pass" auth
is_status "relay: tls verified" "pass" tls
json_true "relay: certificate verified" \
  '"certificate verified" in [c for c in d["checks"] if c["name"]=="tls"][0]["detail"]'
if grep -q 's3cret-pw' "$work/out" "$work/err"; then bad "relay: password printed"; else ok "relay: password never printed"; fi
PF_TEST_PW=wrong t "relay: wrong password" 1 -p relay.yaml --json check
is_status "relay: auth refused" "fail" auth
json_true "relay: the refusal quoted" \
  '"535" in [c for c in d["checks"] if c["name"]=="auth"][0]["detail"]'
env -u PF_TEST_PW "$IPWARM" -p relay.yaml --json check >"$work/out" 2>"$work/err"
is_status "relay: password variable unset" "fail" auth
relay_noca="  relay:
    url: smtp://127.0.0.1:$port_relay
    username: warmup
    password_env: PF_TEST_PW"
plan relaynoca mode=relay "relay=$relay_noca" "require=[tls]"
PF_TEST_PW=s3cret-pw t "relay: untrusted certificate" 1 -p relaynoca.yaml --json check
json_true "relay: certificate not trusted" \
  '"certificate not trusted" in [c for c in d["checks"] if c["name"]=="tls"][0]["detail"]'

# The relay's name goes through the plan's resolver (c-ares), not the system's.
relay_named="  relay:
    url: smtp://relay.check.test:$port_relay"
plan relaynamed mode=relay "relay=$relay_named" "require=[smtp]"
t "relay by a name only the plan's DNS knows" 0 -p relaynamed.yaml --json check
is_status "relay by name: reached" "pass" smtp
json_true "relay by name: the address it resolved to" \
  '"127.0.0.1" in [c for c in d["checks"] if c["name"]=="smtp"][0]["detail"]'
relay_ghost="  relay:
    url: smtp://ghost.check.test:$port_relay"
plan relayghost mode=relay "relay=$relay_ghost" "require=[smtp]"
t "relay name that does not resolve" 1 -p relayghost.yaml --json check
is_status "relay ghost: smtp fails" "fail" smtp
json_true "relay ghost: says it does not resolve" \
  '"ghost.check.test does not resolve" in [c for c in d["checks"] if c["name"]=="smtp"][0]["detail"]'

# --- an address not on this machine; a port where nothing answers --------------------------
plan notlocal ip=192.0.2.10 "require=[smtp]"
t "source IP not local" 1 -p notlocal.yaml --json check
json_true "source IP not local: named with the fix" \
  'any("add the IP 192.0.2.10 to an interface" in (c["fix"] or "") for c in d["checks"] if c["name"]=="smtp")'
closed_tcp_start || exit 1
closed=$CLOSED_PORT
plan closed port=$closed "require=[smtp]"
t "closed port" 1 -p closed.yaml --json check
json_true "closed port: named" \
  'any(":%s" % '"$closed"' in c["detail"] for c in d["checks"] if c["name"]=="smtp" and c["status"]=="fail")'

# --- DNS trouble is a warn, never a pass or a fail ------------------------------------------
plan slowbl zones="[slow.test]" "require=[dnsbl]"
t "block list times out: check still passes" 0 -p slowbl.yaml --json --dns-timeout 800 check
is_status "block list timeout: warn" "warn" dnsbl
printf 'a@x.slow.test\n' >slow.csv
plan slowmx rcpt=slow.csv "require=[mx]"
t "MX timeout: check still passes" 0 -p slowmx.yaml --json --dns-timeout 800 check
is_status "MX timeout: warn" "warn" mx

# --- an unreadable recipient list is one more problem, not a stop --------------------------
printf 'name,mail\nAnn,a@example.test\n' >nocolumn.csv
plan norcpt rcpt=nocolumn.csv
t "recipient list without an email column" 1 -p norcpt.yaml --json check
is_status "bad list: mx fails" "fail" mx
json_true "bad list: the reason" \
  '"has no column" in [c for c in d["checks"] if c["name"]=="mx"][0]["detail"]'
is_status "bad list: spf still checked" "pass" spf

finish
