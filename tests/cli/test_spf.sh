#!/usr/bin/env bash
# `ipwarm spf` over a real DNS server: dnsmasq (the binary of dnsmasq-base, never the system
# service) on 127.0.0.1 at a free high port, authoritative for .test with the SPF records
# below, asked through the c-ares resolver with --dns. Checks each result (pass by ip4, a, mx,
# include chain, redirect, macros, multi-string TXT, IPv6; fail with -all and an exp=
# explanation; softfail; none; a void-lookup permerror; temperror when no server answers),
# the --json keys of cli.md, the human line, the lookup counts and the exit codes. dnsmasq is
# stopped by the EXIT trap, whatever happens.
# Environment: IPWARM (the binary), SRCDIR (the source tree).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq
. "$SRCDIR/tests/lib/servers.sh"
PY=$SERVERS_PY
work=$(mktemp -d)
servers_init "$work"
cd "$work" || exit 1
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/assert.sh"

must "dnsmasq started" dnsmasq_start <<'EOF'
txt-record=pass.test,"v=spf1 ip4:192.0.2.0/24 -all"
txt-record=soft.test,"v=spf1 a:mail.soft.test ~all"
host-record=mail.soft.test,192.0.2.20
txt-record=inc.test,"v=spf1 include:_spf.inc.test -all"
txt-record=_spf.inc.test,"v=spf1 include:_net.inc.test ?all"
txt-record=_net.inc.test,"v=spf1 ip4:203.0.113.0/24"
txt-record=red.test,"v=spf1 redirect=pass.test"
txt-record=void.test,"v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test -all"
txt-record=exp.test,"v=spf1 mx -all exp=why.exp.test"
mx-host=exp.test,mx.exp.test,10
host-record=mx.exp.test,192.0.2.40,2001:db8:40::25
txt-record=why.exp.test,"%{i} may not send for %{d} (%{l} at %{o})"
txt-record=split.test,"v=spf1 ","ip4:198.51.100.0/24 -all"
txt-record=helo.test,"v=spf1 a -all"
host-record=helo.test,192.0.2.30
txt-record=mac.test,"v=spf1 exists:%{ir}.%{l1r-}.rbl.test -all"
host-record=10.2.0.192.news.rbl.test,127.0.0.2
txt-record=v6.test,"v=spf1 ip6:2001:db8:6::/48 -all"
host-record=nospf.test,192.0.2.50
EOF
DNS=(--dns "$DNS_SERVER")

# run CODE ARGS...: ipwarm with our DNS server, stdout in out, stderr in err; checks the code.
run() {
  local want=$1
  shift
  "$IPWARM" "${DNS[@]}" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    bad "ipwarm $*: exit $rc, expected $want"
    sed 's/^/    stderr: /' "$work/err" | head -5
    return 1
  fi
  return 0
}

# json KEY: the value of KEY in the JSON document of the last run (strings bare).
json() {
  "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = d[sys.argv[2]]
print(v if isinstance(v, str) else json.dumps(v))' "$work/out" "$1"
}

# spf_json DESC RESULT LOOKUPS ARGS...: `spf ARGS --json` exits 0 with that result and count,
# and every key of the cli.md contract present.
spf_json() {
  local what=$1 want=$2 lookups=$3
  shift 3
  run 0 spf "$@" --json || return
  local got n
  got=$(json result) n=$(json lookups)
  if [ "$got" = "$want" ] && [ "$n" = "$lookups" ]; then
    ok "$what: $got, $n lookups"
  else
    bad "$what: got result '$got' with '$n' lookups, expected $want with $lookups"
    sed 's/^/    out: /' "$work/out" | head -12
  fi
  if ! json explanation >/dev/null 2>&1; then bad "$what: no explanation key"; fi
}

# explanation_is DESC TEXT: the last JSON document's explanation is TEXT.
explanation_is() {
  local got
  got=$(json explanation)
  if [ "$got" = "$2" ]; then ok "$1"; else bad "$1: explanation '$got', expected '$2'"; fi
}

# out_is DESC LINE: the last run printed exactly LINE.
out_is() {
  local got
  got=$(cat "$work/out")
  if [ "$got" = "$2" ]; then ok "$1"; else bad "$1: printed '$got', expected '$2'"; fi
}

spf_json "ip4 pass" pass 0 --ip 192.0.2.10 --sender news@pass.test --helo h.test
explanation_is "pass explanation names the term and domain" \
  "192.0.2.10 is permitted by ip4:192.0.2.0/24 in pass.test"
run 0 spf --ip 192.0.2.10 --sender news@pass.test --helo h.test &&
  out_is "human pass line" \
    "pass: 192.0.2.10 is permitted by ip4:192.0.2.0/24 in pass.test (0 DNS lookups)"

spf_json "-all fail" fail 0 --ip 198.51.100.1 --sender news@pass.test --helo h.test
explanation_is "default fail explanation" "198.51.100.1 is not permitted by -all in pass.test"

spf_json "a pass" pass 1 --ip 192.0.2.20 --sender x@soft.test --helo h.test
spf_json "~all softfail" softfail 1 --ip 192.0.2.21 --sender x@soft.test --helo h.test
run 0 spf --ip 192.0.2.21 --sender x@soft.test --helo h.test &&
  out_is "human softfail line" \
    "softfail: 192.0.2.21 is probably not permitted by ~all in soft.test (1 DNS lookup)"

spf_json "include chain pass" pass 2 --ip 203.0.113.9 --sender x@inc.test --helo h.test
spf_json "include chain, outside: fail" fail 2 --ip 192.0.2.9 --sender x@inc.test --helo h.test
spf_json "redirect pass" pass 1 --ip 192.0.2.10 --sender x@red.test --helo h.test
spf_json "redirect fail" fail 1 --ip 198.51.100.99 --sender x@red.test --helo mail.example

spf_json "three void lookups: permerror" permerror 3 --ip 192.0.2.1 --sender x@void.test \
  --helo h.test
if [ "$(json void_lookups)" = 3 ]; then ok "void lookups counted"; else bad "void_lookups $(json void_lookups)"; fi

spf_json "mx pass" pass 1 --ip 192.0.2.40 --sender bob@exp.test --helo h.test
spf_json "mx pass over IPv6" pass 1 --ip 2001:db8:40::25 --sender bob@exp.test --helo h.test
spf_json "exp= fail" fail 1 --ip 198.51.100.7 --sender bob@exp.test --helo h.test
explanation_is "exp= explanation, macro-expanded" \
  "198.51.100.7 may not send for exp.test (bob at exp.test)"
run 0 spf --ip 198.51.100.7 --sender bob@exp.test --helo h.test &&
  out_is "human fail line" \
    "fail: 198.51.100.7 may not send for exp.test (bob at exp.test) [-all in exp.test] (1 DNS lookup)"

spf_json "multi-string TXT joined" pass 0 --ip 198.51.100.8 --sender x@split.test --helo h.test
spf_json "null sender checks postmaster@HELO" pass 1 --ip 192.0.2.30 --sender "" --helo helo.test
spf_json "exists with macros" pass 1 --ip 192.0.2.10 --sender news@mac.test --helo h.test
spf_json "exists with macros, no match" fail 1 --ip 192.0.2.11 --sender news@mac.test --helo h.test
spf_json "ip6 pass" pass 0 --ip 2001:db8:6::1 --sender x@v6.test --helo h.test
spf_json "ip6 fail" fail 0 --ip 2001:db8:7::1 --sender x@v6.test --helo h.test
spf_json "no SPF record: none" none 0 --ip 192.0.2.1 --sender x@nospf.test --helo h.test
spf_json "no such domain: none" none 0 --ip 192.0.2.1 --sender x@nowhere.test --helo h.test

# Without --helo and without a plan, the HELO is the sender's domain.
spf_json "no --helo, no plan" pass 1 --ip 192.0.2.30 --sender x@helo.test

# No server answers: the result is temperror, and the lookup still completed (exit 0).
silent_udp_start || exit 1
closed=$SILENT_PORT
"$IPWARM" --dns "127.0.0.1:$closed" --dns-timeout 300 spf --ip 192.0.2.1 \
  --sender x@pass.test --helo h.test --json >"$work/out" 2>"$work/err"
rc=$?
if [ "$rc" -eq 0 ] && [ "$(json result)" = temperror ]; then
  ok "no DNS server: temperror, exit 0"
else
  bad "no DNS server: exit $rc, $(cat "$work/out")"
fi

# Usage errors: 64.
run 64 spf --ip 192.0.2.300 --sender x@pass.test --helo h.test && ok "bad IP: exit 64"
run 64 spf --ip 192.0.2.1 --sender "" && ok "null sender without HELO or plan: exit 64"
if grep -qF -- "--helo" "$work/err"; then ok "null sender message names --helo"; else bad "null sender message: $(cat "$work/err")"; fi
run 64 spf --ip 192.0.2.1 --sender x@ --helo h.test && ok "sender without a domain: exit 64"

finish
