#!/usr/bin/env bash
# No burst after a pause: a provider that comes back from a backoff pause sends one message
# and then keeps its (cut) pace, instead of catching up on the times it missed. Regression test
# for a stale clock in the pacing frame (found by the sandbox demo). Real servers on loopback.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq
. "$SRCDIR/tests/lib/servers.sh"
work=$(mktemp -d /tmp/ipwarm-pause-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
net=127.0.$((20 + RANDOM % 200))
dnsmasq_start <<EOF2
mx-host=outlook.test,x.mail.protection.outlook.com,10
host-record=x.mail.protection.outlook.com,$net.3
EOF2
port=$(free_port)
# The server accepts 3 a minute, then answers "Server busy" until the minute has passed.
smtpd_start pause "[{\"name\": \"ms\", \"host\": \"$net.3\", \"port\": $port, \"rate_per_min\": 3,
  \"throttle\": \"451 4.7.500 Server busy. Please try again later from [$net.1]. (S77714)\"}]"
for i in $(seq 1 20); do echo "m$i@outlook.test"; done >"$work/seeds.txt"
printf 'hello\n' >"$work/m.txt"
cat >"$work/plan.yaml" <<EOF2
campaign: pause-test
timezone: UTC
source: {ip: $net.1, helo: mx1.example.com}
sender: {from: "news@example.com"}
transport: {mode: direct, port: $port, timeouts: {connect: 3s, command: 5s}}
message: {subject: hello, text_file: m.txt}
recipients: {file: seeds.txt}
ramp: {start: 20/min, max: 600/min}
backoff: {deferral: {pause: 8s, recover_after: 30m}}
preflight: {require: []}
dns: {servers: ["$DNS_SERVER"], timeout: 2s}
EOF2
"$IPWARM" -p "$work/plan.yaml" run --for 25s >/dev/null 2>"$work/run.err"
check "run exits 0" test $? -eq 0
/usr/bin/python3 - "$SMTPD_LOG" >"$work/gaps.out" <<'EOF2'
import json, sys
t = [json.loads(l)["t"] for l in open(sys.argv[1]) if '"MAIL FROM' in l]
gaps = [round(b - a, 3) for a, b in zip(t, t[1:])]
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
expect(len(t) >= 5, "the pause ended within the run and sending went on (%d messages)" % len(t))
expect(all(2.5 <= g <= 4.5 for g in gaps[:3]), "3 s apart at 20/min before the deferral: %s" % gaps)
expect(len(gaps) > 3 and 7.5 <= gaps[3] <= 12, "the 8 s pause after the deferral: %s" % gaps)
expect(all(g >= 1.5 for g in gaps), "no two messages closer than half the planned gap (no burst after the pause): %s" % gaps)
EOF2
tally "$work/gaps.out"
finish
