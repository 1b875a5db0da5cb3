#!/usr/bin/env bash
# `ipwarm trace` shows each reply the way it was received: "451 4.7.1 Greylisted ...", the
# reply code and the enhanced code once each (the stored text keeps the enhanced code, so
# printing it in front as well showed it twice). A real run against loopback servers (dnsmasq
# for the MX, tests/servers/smtpd.py answering a multi-line deferral for one recipient) fills
# the state; the expected lines are the server's replies as configured here. A connection the
# server closes instead of replying is recorded as a sentence, not as libcurl's stale errno.
# Environment: IPWARM, SRCDIR.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-trace-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
net=$(plans_net)

dnsmasq_start < <(plans_mx "$net" other:5 close:6) || bad "dnsmasq"
sport=$(free_port)
smtpd_start mx "[{\"name\": \"other\", \"host\": \"$net.5\", \"port\": $sport,
  \"recipients\": {\"^grey@\": \"451-4.7.1 Greylisted, see https://grey.test/\\n451 4.7.1 try again later\"},
  \"data_reply\": \"250 2.0.0 OK queued as 42\"},
  {\"name\": \"closer\", \"host\": \"$net.6\", \"port\": $sport, \"raw_reply\": {\"mail\": \"\"}}]" ||
  bad "smtpd.py"
printf 'email\ngrey@other.test\nfine@other.test\ngone@close.test\n' >"$work/seeds.csv"
printf 'Hello\n' >"$work/message.txt"
{ plans_head --state state.db --timeouts 5s/10s trace "$net" "$sport"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "Example <news@example.com>"}
message: {subject: Hello, text_file: message.txt}
recipients: {file: seeds.csv, mode: once}
ramp: {start: 120/min}
EOF
timeout 60 "$IPWARM" -p "$work/plan.yaml" run --for 3s >"$work/run.out" 2>"$work/run.err"
rc=$?
check "the run exits 0 (got $rc: $(tail -1 "$work/run.err"))" test "$rc" -eq 0

"$IPWARM" -p "$work/plan.yaml" trace grey@other.test >"$work/out" 2>"$work/err"
check "trace exits 0" test $? -eq 0
# reply.h: lines joined by a space, the repeated enhanced code of the second line dropped.
check "the deferral reads as received, each code once ($(grep reply "$work/out"))" \
  grep -qxF "  reply 451 4.7.1 Greylisted, see https://grey.test/ try again later" "$work/out"
if grep -q '4\.7\.1 4\.7\.1' "$work/out"; then bad "the enhanced code is shown twice"; else
  ok "the enhanced code is shown once"; fi
"$IPWARM" -p "$work/plan.yaml" trace fine@other.test >"$work/out" 2>"$work/err"
check "the delivery reads as received ($(grep reply "$work/out"))" \
  grep -qxF "  reply 250 2.0.0 OK queued as 42" "$work/out"

# A server that closes the connection instead of answering MAIL: libcurl says "response
# reading failed (errno: 115)", a stale errno; the record says what failed, and where.
"$IPWARM" -p "$work/plan.yaml" trace gone@close.test >"$work/out" 2>"$work/err"
check "a closed connection is a sentence ($(grep reply "$work/out"))" grep -qxF \
  "  reply - no reply: the server closed the connection (or it broke) while waiting for the reply to MAIL" \
  "$work/out"
if grep -q 'errno' "$work/out"; then bad "a bare errno in the record"; else ok "no bare errno in the record"; fi

finish
