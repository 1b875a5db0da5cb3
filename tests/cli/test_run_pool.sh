#!/usr/bin/env bash
# Integration test of an IP pool (source.ips) against real servers on loopback, started and
# stopped here: dnsmasq answers the MX lookups, tests/servers/smtpd.py plays two providers and
# tells the three source IPs apart (per_source). Microsoft defers one IP of the pool; the other
# two go on sending at their own pace, counted at the receiver by the source address of each
# connection. Yahoo answers [TSS04] to every IP: each IP is suspended by the shipped rule, and
# the third time within the hour acts on Yahoo for the whole pool. Then status shows a row per
# IP, in the table and in JSON. Last, an IP named in source.start for tomorrow sends nothing
# today and starts on its date (--now) at the first stage.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-pool-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3

net=$(plans_net)
a=$net.11 b=$net.12 c=$net.13
dnsmasq_start < <(plans_mx "$net" outlook:3 yahoo:4)
sport=$(free_port)
smtpd_start pool "[
  {\"name\": \"microsoft\", \"host\": \"$net.3\", \"port\": $sport,
   \"per_source\": {\"$b\": {\"replies\": {\"mail\": \"451 4.7.500 Server busy. Please try again later from [$b]. (S77714)\"}}}},
  {\"name\": \"yahoo\", \"host\": \"$net.4\", \"port\": $sport,
   \"replies\": {\"mail\": \"421 4.7.0 [TSS04] Messages from the pool temporarily deferred due to unexpected volume or user complaints\"}}
]"
dialogue=$SMTPD_LOG

{
  for i in $(seq 1 40); do echo "m$i@outlook.test"; done
  for i in $(seq 1 6); do echo "y$i@yahoo.test"; done
} >"$work/seeds.txt"
printf 'Hello,\n\nmessage {{seq}} of {{campaign}}.\n' >"$work/message.txt"
{ plans_head --ips "$a, $b, $c" --timeouts 5s/10s --per-provider 1 pool-test "$net" "$sport"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Hello", text_file: message.txt}
recipients: {file: seeds.txt, mode: once}
ramp: {start: 30/min, growth: 1.5, max: 600/min}
EOF
db=$work/ipwarm.db

# A run of 12 s: at 30/min each IP sends a message every 2 s. The counts below need far fewer
# than that, so a loaded machine does not fail them; what they tell apart is 0 against several.
"$IPWARM" -p "$work/plan.yaml" run --for 12s >"$work/run.out" 2>"$work/run.err"
rc=$?
check "run --for 12s exits 0 (got $rc: $(tail -2 "$work/run.err"))" test "$rc" -eq 0
check "run's output is clean" clean "$work/run.err"

$py - "$dialogue" "$db" "$a" "$b" "$c" >"$work/check.out" 2>&1 <<'EOF'
import json, sqlite3, sys
log, db, a, b, c = sys.argv[1:6]
mail = {}      # (listener, source) -> MAIL commands
accepted = {}  # (listener, source) -> messages accepted
conns = {}     # (listener, source) -> connections
for line in open(log):
    d = json.loads(line)
    k = (d["listener"], d["peer"].rsplit(":", 1)[0])
    if d["ev"] == "connect":
        conns[k] = conns.get(k, 0) + 1
    if d["ev"] == "cmd" and d["line"].startswith("MAIL FROM"):
        mail[k] = mail.get(k, 0) + 1
    if d["ev"] == "message" and d.get("accepted"):
        accepted[k] = accepted.get(k, 0) + 1
fails = []
def expect(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails.append(what)
sources = {k[1] for k in conns}
expect(sources == {a, b, c}, "connections come from the three pool IPs, bound: %s" % sorted(sources))
ms = lambda ip: accepted.get(("microsoft", ip), 0)
expect(ms(a) >= 3 and ms(c) >= 3, "microsoft took messages from %s (%d) and %s (%d) all along" % (a, ms(a), c, ms(c)))
expect(ms(b) == 0 and mail.get(("microsoft", b), 0) == 1,
       "microsoft deferred %s once, and %s sent it nothing more (%d MAIL)" % (b, b, mail.get(("microsoft", b), 0)))
expect(conns.get(("microsoft", a)) == 1 and conns.get(("microsoft", c)) == 1,
       "each IP reuses its own connection: %s" % {k[1]: v for k, v in conns.items() if k[0] == "microsoft"})
expect(abs(ms(a) - ms(c)) <= 2, "the two healthy IPs keep the same pace (%d, %d)" % (ms(a), ms(c)))
ys = {ip: mail.get(("yahoo", ip), 0) for ip in (a, b, c)}
expect(ys == {a: 1, b: 1, c: 1}, "yahoo's [TSS04] reached each IP once, then nothing: %s" % ys)
con = sqlite3.connect(db)
q = lambda sql, *x: con.execute(sql, x).fetchall()
rows = dict(q("SELECT ip, paused_until_ms IS NOT NULL FROM providers WHERE name = 'microsoft365'"))
expect(rows == {a: 0, b: 1, c: 0}, "microsoft365 has a lane per IP, only %s paused: %s" % (b, rows))
r = q("SELECT pause_reason FROM providers WHERE name = 'microsoft365' AND ip = ?", b)[0][0]
expect("4.7.500" in r and b in r, "the paused IP says why: %s" % r)
expect(q("SELECT count(*) FROM rule_actions WHERE provider = 'microsoft365'")[0][0] == 0,
       "one IP's deferral is not the provider's trouble: no action on microsoft365")
ips = sorted(x[0] for x in q("SELECT ip FROM rule_actions WHERE provider = 'yahoo' AND rule = 'yahoo-tss04' AND ip <> ''"))
expect(ips == sorted([a, b, c]), "the shipped rule suspended each IP at yahoo: %s" % ips)
w = q("SELECT action, reason FROM rule_actions WHERE provider = 'yahoo' AND ip = ''")
expect(len(w) == 1 and w[0][0] == "suspend" and w[0][1].startswith("every IP of the pool (3) was throttled within the hour (rule:yahoo-tss04)"),
       "the same rule on every IP acts on yahoo for the whole pool: %s" % w)
for ip in (a, b, c):
    n = q("SELECT count(*) FROM attempts WHERE provider = 'microsoft365' AND source_ip = ? AND outcome = 'delivered'", ip)[0][0]
    expect(n == ms(ip), "%s: delivered in the store (%d) equals accepted at the server (%d)" % (ip, n, ms(ip)))
sys.exit(1 if fails else 0)
EOF
rc=$?
tally "$work/check.out"
[ "$rc" -eq 0 ] || [ "$(grep -c '^FAIL:' "$work/check.out")" -gt 0 ] || bad "the check script failed: $(tail -3 "$work/check.out")"

# status: a row per IP under each provider, and "ips" in JSON.
"$IPWARM" -p "$work/plan.yaml" status >"$work/status.out" 2>"$work/status.err"
check "status exits 0" test $? -eq 0
for ip in "$a" "$b" "$c"; do
  check "status has a row for $ip" grep -qE "^  $ip +[0-9]+ +[0-9]+ " "$work/status.out"
done
check "status says why $b does not send" grep -q "microsoft365 from $b: backoff: 451 4.7.500" "$work/status.out"
"$IPWARM" -p "$work/plan.yaml" status --json >"$work/status.json" 2>"$work/status.err"
check "status --json exits 0" test $? -eq 0
$py - "$work/status.json" "$a" "$b" "$c" >"$work/check2.out" 2>&1 <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
a, b, c = sys.argv[2:5]
def expect(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
p = {x["name"]: x for x in s["providers"]}
m = p["microsoft365"]
keys = {"ip", "stage", "sending_day", "rate_per_min", "sent_today", "cap_today", "paused_until", "pause_reason"}
expect([x["ip"] for x in m["ips"]] == [a, b, c], "microsoft365 lists its IPs in the pool's order")
expect(all(keys <= set(x) for x in m["ips"]), "each IP has the contract's keys")
ipb = m["ips"][1]
expect(ipb["paused_until"] is not None and "4.7.500" in ipb["pause_reason"], "%s is paused with its reason: %s" % (b, ipb["pause_reason"]))
expect(m["ips"][0]["paused_until"] is None and m["ips"][2]["paused_until"] is None, "the other two are not paused")
expect(m["paused_until"] is None and m["state"] == "sending", "the provider sends while any IP does")
expect(abs(m["rate_per_min"] - sum(x["rate_per_min"] for x in m["ips"])) < 1e-9, "the provider's rate is the sum of its IPs' (%s)" % m["rate_per_min"])
expect(m["sent_today"] == sum(x["sent_today"] for x in m["ips"]), "the provider's count is the sum of its IPs'")
y = p["yahoo"]
expect(y["paused_until"] is not None and "every IP of the pool" in y["pause_reason"], "yahoo is suspended for the whole pool: %s" % y["pause_reason"])
expect(any(x["ip"] is None and x["rule"] == "yahoo-tss04" for x in y["actions"]), "the pool's action has no ip")
EOF
tally "$work/check2.out"

# metrics: the per-lane gauges carry ip (and provider, nothing else) in a pool.
"$IPWARM" -p "$work/plan.yaml" metrics -o "$work/ipwarm.prom" 2>"$work/metrics.err"
check "metrics exits 0" test $? -eq 0
check "metrics: $b paused at microsoft365" grep -qx "ipwarm_provider_paused{provider=\"microsoft365\",ip=\"$b\"} 1" "$work/ipwarm.prom"
check "metrics: $a not paused at microsoft365" grep -qx "ipwarm_provider_paused{provider=\"microsoft365\",ip=\"$a\"} 0" "$work/ipwarm.prom"
check "metrics: each IP's state" grep -qx "ipwarm_provider_state{provider=\"microsoft365\",ip=\"$c\",state=\"sending\"} 1" "$work/ipwarm.prom"
check "metrics: no provider gauge without its ip in a pool" test "$(grep -c '^ipwarm_provider_[a-z_]*{provider="[^"]*"}' "$work/ipwarm.prom")" -eq 0
if command -v promtool >/dev/null; then
  check "promtool accepts the exposition" promtool check metrics <"$work/ipwarm.prom"
fi

# report: a row per IP under each provider.
"$IPWARM" -p "$work/plan.yaml" report -o "$work/report.html" 2>"$work/report.err"
check "report exits 0" test $? -eq 0
check "report: $b's row says paused" grep -q "data-provider=\"microsoft365\" data-ip=\"$b\" data-state=\"paused\"" "$work/report.html"
for prov in microsoft365 yahoo; do
  check "report: a row for each IP under $prov" test "$(grep -c "class=\"pr ip\" data-provider=\"$prov\"" "$work/report.html")" -eq 3
done


# source.start: an IP that joins the pool tomorrow sends nothing today, and starts on its date
# (the scheduler's clock moved there with --now) at the first stage while the others go on.
tomorrow=$(date -u -d tomorrow +%F)
for i in $(seq 1 30); do echo "late$i@outlook.test"; done >"$work/late.txt"
sed -e "s/^  ips: .*/  ips: [$a, $b, $c]\n  start: {$c: $tomorrow}/" -e "s/^campaign: .*/campaign: pool-late/" \
  -e "s/seeds.txt/late.txt/" -e "s/^state: .*//" "$work/plan.yaml" >"$work/late.yaml"
echo "state: late.db" >>"$work/late.yaml"
count_from() { # MAIL commands from source $1 at microsoft in the dialogue after line $2
  tail -n +"$(($2 + 1))" "$dialogue" | $py -c '
import json, sys
print(sum(1 for l in sys.stdin for d in [json.loads(l)] if d["listener"] == "microsoft"
          and d["ev"] == "cmd" and d["line"].startswith("MAIL FROM")
          and d["peer"].rsplit(":", 1)[0] == sys.argv[1]))' "$1"
}
mark=$(wc -l <"$dialogue")
"$IPWARM" -p "$work/late.yaml" run --for 6s >"$work/late1.out" 2>"$work/late1.err"
check "late-start run exits 0 ($(tail -1 "$work/late1.err"))" test $? -eq 0
check "before its date, $c sent nothing (got $(count_from "$c" "$mark"))" test "$(count_from "$c" "$mark")" -eq 0
check "meanwhile $a sent (got $(count_from "$a" "$mark"))" test "$(count_from "$a" "$mark")" -ge 1
"$IPWARM" -p "$work/late.yaml" status --json >"$work/late-status.json" 2>/dev/null
check "status: $c does not send yet, and says when it joins" $py -c '
import json, sys
s = json.load(open(sys.argv[1]))
m = [p for p in s["providers"] if p["name"] == "microsoft365"][0]
x = [i for i in m["ips"] if i["ip"] == sys.argv[2]][0]
sys.exit(0 if x["sent_today"] == 0 and sys.argv[3] in json.dumps(m) else 1)' "$work/late-status.json" "$c" "$tomorrow"
mark=$(wc -l <"$dialogue")
"$IPWARM" -p "$work/late.yaml" --now "${tomorrow}T09:00:00Z" run --for 6s >"$work/late2.out" 2>"$work/late2.err"
check "the run on its date exits 0 ($(tail -1 "$work/late2.err"))" test $? -eq 0
check "on its date, $c sends (got $(count_from "$c" "$mark"))" test "$(count_from "$c" "$mark")" -ge 1
check "$c starts at the first stage" test "$(sqlite3 "$work/late.db" "SELECT stage FROM providers WHERE name = 'microsoft365' AND ip = '$c'")" = 0

finish
