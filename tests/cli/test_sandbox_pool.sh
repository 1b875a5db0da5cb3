#!/usr/bin/env bash
# The sandbox answers per source IP (config/sandbox/sandbox.yaml: sender.pool, Microsoft's
# defer_ips): started from a copy of the shipped config on addresses and ports of this test's
# own, its Microsoft-like MX is reached at the wire from each IP of the pool (Python's smtplib
# bound to the source address): MAIL from the distrusted IP gets the 451 4.7.500 naming that
# IP, from the other two 250, and the MX logged each session from its own peer address. Each IP
# is rate-limited on its own: past Microsoft's 4 a minute from one IP that IP is throttled while
# another still gets 250. The shipped pool demo plan (config/sandbox/pool.yaml) validates, and
# `ipwarm check` passes for every IP of the pool against the sandbox's DNS, one line per IP.
# Then, on a sandbox started afresh (its per-IP rate counts empty), the pool demo plan runs for
# 25 s: from the store and from the MX's log, the distrusted IP got the 451 at Microsoft, was
# paused there with its rate halved and sent it nothing more, while the other two delivered to
# Microsoft, and no action fell on Microsoft for the whole pool.
# Environment: IPWARM (the binary), SRCDIR (the source tree).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq openssl sqlite3 py:yaml
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
py=$SERVERS_PY
work=$(mktemp -d /tmp/ipwarm-sandbox-pool-XXXXXX)
servers_init "$work" # servers_stop_all stops the sandbox
. "$SRCDIR/tests/lib/assert.sh"

sandbox_config "$(plans_net)"
sandbox_plan pool "$work/pool.db"
net=$SANDBOX_NET sb=$SANDBOX_DIR sport=$SANDBOX_SMTP_PORT
sandbox=$SRCDIR/scripts/sandbox
check "the shipped config has a pool" grep -q "pool: \[$net.11, $net.12, $net.13\]" "$work/sandbox.yaml"
check "the shipped config defers one IP at Microsoft" grep -q "defer_ips: \[$net.12\]" "$work/sandbox.yaml"

must "sandbox start exits 0" sandbox_start start
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

# --- the pool demo plan against a fresh sandbox ----------------------------------------------
# The wire tests above used up the per-IP minute at Microsoft: a fresh start forgets it (the
# same directory, so pool.yaml's DKIM key is the one the sandbox generates anew). Its log goes
# on in the same file: the lines logged so far are left out below.
seen=$(wc -l <"$sb/smtpd.jsonl")
must "sandbox starts again" sandbox_start start2
# 4/min per IP and provider: the first round leaves within seconds, the second 15 s later.
t "the pool plan runs 25 s" 0 -p "$work/pool.yaml" run --for 25s
q() { sqlite3 -separator ' ' "$work/pool.db" "$1" 2>&1; }
# The store: at Microsoft .12's one attempt is deferred with the 451 naming it; .11's and .13's
# are all delivered; at gmail and other each IP delivered.
check "$net.12 deferred once at microsoft, nothing else there" test "$(q "SELECT count(*) FILTER (WHERE outcome = 'deferred' AND code = 451 AND text LIKE '%from [$net.12]%'), count(*) FROM attempts WHERE provider = 'microsoft' AND source_ip = '$net.12'")" = "1 1"
for ip in "$net.11" "$net.13"; do
  n=$(q "SELECT count(*) FROM attempts WHERE provider = 'microsoft' AND source_ip = '$ip' AND outcome = 'delivered'")
  nd=$(q "SELECT count(*) FROM attempts WHERE provider = 'microsoft' AND source_ip = '$ip' AND outcome <> 'delivered'")
  check "$ip delivered at microsoft ($n delivered, $nd not)" test "$n" -ge 1 -a "$nd" = 0
done
for p in gmail other; do
  n=$(q "SELECT count(DISTINCT source_ip) FROM attempts WHERE provider = '$p' AND outcome = 'delivered'")
  check "all three IPs delivered at $p (got $n)" test "$n" = 3
done
# .12's lane at Microsoft is paused past the run with its rate halved; the other two are not.
now_ms=$(($(date +%s) * 1000))
check "microsoft from $net.12 paused, rate halved" test "$(q "SELECT paused_until_ms > $now_ms, rate_per_min FROM providers WHERE name = 'microsoft' AND ip = '$net.12'")" = "1 2.0"
check "microsoft from $net.11 and $net.13 not paused" test "$(q "SELECT count(*) FROM providers WHERE name = 'microsoft' AND ip IN ('$net.11', '$net.13') AND coalesce(paused_until_ms, 0) <= $now_ms")" = 2
check "no action on microsoft for the whole pool" test "$(q "SELECT count(*) FROM rule_actions WHERE provider = 'microsoft' AND ip = ''")" = 0
# The MX's log: .12 sent Microsoft one MAIL (answered 451) and none after; every MAIL from .11
# and .13 got 250, and each of those transactions ended queued.
"$py" - "$sb/smtpd.jsonl" "$net" "$seen" >"$work/log2.out" 2>&1 <<'EOF'
import json, sys
net, seen = sys.argv[2], int(sys.argv[3])
mail = {}     # source IP -> the reply code to each of its MAILs, in order
queued = {}   # source IP -> its transactions answered 250 2.0.0 (queued)
pending = set()
for n, line in enumerate(open(sys.argv[1])):
    if n < seen:
        continue
    ev = json.loads(line)
    if ev.get("listener") != "microsoft":
        continue
    ip = ev["peer"].rsplit(":", 1)[0]
    if ev.get("ev") == "cmd" and ev.get("line", "").upper().startswith("MAIL FROM"):
        pending.add(ev["conn"])
    elif ev.get("ev") == "reply" and ev["conn"] in pending:
        pending.discard(ev["conn"])
        mail.setdefault(ip, []).append(ev["text"][:3])
    elif ev.get("ev") == "reply" and ev.get("text", "").startswith("250 2.0.0"):
        queued[ip] = queued.get(ip, 0) + 1
assert mail.get(net + ".12") == ["451"], mail
for ip in (net + ".11", net + ".13"):
    assert mail.get(ip) and set(mail[ip]) == {"250"}, mail
    assert queued.get(ip, 0) == len(mail[ip]), (queued, mail)
print("ok")
EOF
if grep -qx ok "$work/log2.out"; then ok "the MX's log: one MAIL from $net.12 (451), none after; $net.11 and $net.13 delivered"; else
  bad "the MX's log of the pool run: $(tail -3 "$work/log2.out")"; fi
"$sandbox" stop --dir "$sb" >"$work/stop2.out" 2>&1
check "sandbox stop exits 0 after the pool run" test $? -eq 0
finish
