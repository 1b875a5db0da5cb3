#!/usr/bin/env bash
# The sandbox answers per source IP (config/sandbox/sandbox.yaml: sender.pool, Microsoft's
# defer_ips): started from a copy of the shipped config on addresses and ports of this test's
# own, its Microsoft-like MX is reached at the wire from each IP of the pool (Python's smtplib
# bound to the source address): MAIL from the distrusted IP gets the 451 4.7.500 naming that
# IP, from the other two 250, and the MX logged each session from its own peer address. Each IP
# is rate-limited on its own: past Microsoft's 4 a minute from one IP that IP is throttled while
# another still gets 250. The shipped pool demo plan (config/sandbox/pool.yaml) validates, and
# `ipwarm check` passes for every IP of the pool against the sandbox's DNS, one line per IP.
# Environment: IPWARM (the binary), SRCDIR (the source tree).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq openssl py:yaml
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/servers.sh" # free_port and SERVERS_PY only: the sandbox starts its own
py=$SERVERS_PY
work=$(mktemp -d /tmp/ipwarm-sandbox-pool-XXXXXX)
chmod 711 "$work" # Dovecot keeps the mail as nobody, who must reach the sandbox
sb=$work/sb
sandbox=$SRCDIR/scripts/sandbox
trap '"$sandbox" stop --dir "$sb" >/dev/null 2>&1; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
. "$SRCDIR/tests/lib/assert.sh"

net=127.0.$((20 + RANDOM % 200))
sport=$(free_port)
dport=$(free_port)
iport=$(free_port)
lport=$(free_port)
sed -e "s/127\.0\.25\./$net./g" -e "s/smtp_port: 2525/smtp_port: $sport/" \
  -e "s/\(dns: $net\.53\):5300/\1:$dport/" \
  -e "s/\(imap: $net\.7\):1143/\1:$iport/" -e "s/\(lmtp: $net\.7\):2424/\1:$lport/" \
  "$SRCDIR/config/sandbox/sandbox.yaml" >"$work/sandbox.yaml"
sed -e "s/127\.0\.25\./$net./g" -e "s/port: 2525/port: $sport/" -e "s/:5300/:$dport/" \
  -e "s|key_file: .*|key_file: $sb/dkim.pem|" -e "s|^state: .*|state: $work/pool.db|" \
  "$SRCDIR/config/sandbox/pool.yaml" >"$work/pool.yaml"
cp "$SRCDIR/config/sandbox/message.txt" "$SRCDIR/config/sandbox/recipients.csv" "$work/"
check "the shipped config has a pool" grep -q "pool: \[$net.11, $net.12, $net.13\]" "$work/sandbox.yaml"
check "the shipped config defers one IP at Microsoft" grep -q "defer_ips: \[$net.12\]" "$work/sandbox.yaml"

"$sandbox" start --config "$work/sandbox.yaml" --dir "$sb" >"$work/start.out" 2>"$work/start.err"
rc=$?
check "sandbox start exits 0 (got $rc: $(tail -3 "$work/start.err"))" test "$rc" -eq 0
[ "$rc" -eq 0 ] || { echo "$pass passed, $((fail + 1)) failed"; exit 1; }
check "start names the pool" grep -qF "sender pool $net.11, $net.12, $net.13" "$work/start.out"

# --- at the wire: MAIL from each IP of the pool ---------------------------------------------
# mail_from SOURCE [N]: N transactions (default 1) from SOURCE to Microsoft's MX on one
# connection; prints the reply code and text of each MAIL, one line each.
mail_from() {
  "$py" - "$net.3" "$sport" "$1" "${2:-1}" <<'EOF'
import smtplib, sys
host, port, source, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = smtplib.SMTP(host, port, "mx1.sandbox.test", timeout=30, source_address=(source, 0))
s.ehlo("mx1.sandbox.test")
for i in range(n):
    code, text = s.mail("news@sandbox.test")
    print(code, text.decode().replace("\n", " "))
    if code == 250:
        c2, _ = s.rcpt("o%d@outlook.test" % i)
        if c2 == 250:
            s.data(b"Subject: pool test\r\n\r\nhello\r\n")
        else:
            s.rset()
    elif code == 421:
        break
    else:
        s.rset()
try:
    s.quit()
except smtplib.SMTPServerDisconnected:
    pass
EOF
}
mail_from "$net.12" >"$work/r12" 2>&1
if grep -qx "451 4.7.500 Server busy. Please try again later from \[$net.12\]. (S77714) \[SANDBOX.outlook.test\]" "$work/r12"; then
  ok "MAIL from $net.12: 451 4.7.500 naming $net.12"; else bad "MAIL from $net.12: $(cat "$work/r12")"; fi
for ip in "$net.11" "$net.13" "$net.1"; do
  mail_from "$ip" >"$work/r" 2>&1
  if grep -q "^250 " "$work/r"; then ok "MAIL from $ip: 250"; else bad "MAIL from $ip: $(cat "$work/r")"; fi
done
# The MX saw each session from its own source address, and answered the 451 to .12 only.
"$py" - "$sb/smtpd.jsonl" "$net" >"$work/log.out" 2>&1 <<'EOF'
import json, sys
net = sys.argv[2]
replies = {}
for line in open(sys.argv[1]):
    ev = json.loads(line)
    if ev.get("listener") != "microsoft" or ev.get("ev") != "reply":
        continue
    ip = ev["peer"].rsplit(":", 1)[0]
    replies.setdefault(ip, []).append(ev.get("line", ev.get("text", "")))
busy = {ip for ip, r in replies.items() if any("451 4.7.500" in x for x in r)}
assert busy == {net + ".12"}, replies
assert {net + ".11", net + ".13", net + ".12"} <= set(replies), sorted(replies)
print("ok")
EOF
if grep -qx ok "$work/log.out"; then ok "the MX's log: the 451 went to $net.12 only"; else
  bad "the MX's log: $(tail -3 "$work/log.out")"; fi

# Each IP is counted on its own: four messages from .11 are accepted (Microsoft's 4 a
# minute), the fifth throttled naming .11; .13 is still accepted after that.
mail_from "$net.11" 5 >"$work/r11" 2>&1
n250=$(grep -c '^250 ' "$work/r11")
# The earlier single message from .11 counts too: 3 more accepted, then the throttle.
if [ "$n250" = 3 ] && grep -q "^451 4.7.500 Server busy. Please try again later from \[$net.11\]" "$work/r11"; then
  ok "$net.11 throttled past its own 4 a minute"; else bad "$net.11 past the rate: $(cat "$work/r11")"; fi
mail_from "$net.13" >"$work/r13" 2>&1
if grep -q "^250 " "$work/r13"; then ok "$net.13 still accepted while $net.11 is throttled"; else
  bad "$net.13 after .11's throttle: $(cat "$work/r13")"; fi

# --- the pool demo plan ----------------------------------------------------------------------
t "pool.yaml validates" 0 -p "$work/pool.yaml" validate
t "check of the pool against the sandbox" 0 -p "$work/pool.yaml" --json check
json_true "every IP of the pool ok" \
  "[(i['ip'], i['ok']) for i in d['ips']] == [('$net.11', True), ('$net.12', True), ('$net.13', True)]"
json_true "PTR, HELO, SPF and DNSBL pass for each IP" \
  "sorted((c['ip'], c['name']) for c in d['checks'] if c['status'] == 'pass' and c['name'] in ('ptr','helo','spf','dnsbl')) == sorted((ip, n) for ip in ('$net.11','$net.12','$net.13') for n in ('ptr','helo','spf','dnsbl'))"

"$sandbox" stop --dir "$sb" >"$work/stop.out" 2>&1
check "sandbox stop exits 0" test $? -eq 0
finish
