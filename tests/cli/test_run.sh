#!/usr/bin/env bash
# Integration test of `ipwarm run` against real servers on loopback, started and stopped here:
# dnsmasq answers the MX lookups, tests/servers/smtpd.py plays four providers. One throttles past
# a rate (Microsoft's "451 4.7.500 Server busy"), one defers with Yahoo's [TSS04], two accept.
# The test asserts what only real servers show: the SMTP dialogue the server saw (EHLO, MAIL FROM
# with SIZE, one RCPT per message, the body's dot line), the bound source address, connection
# reuse, replies read off the wire into the store, the store's counts equal to the server's, the
# run lock (exit 75), that kill -9 loses no record, and that a dry run makes no connection.
# Pacing, backoff, rules, retries, null MX and cron ticks are decisions of the engine and are
# replayed on a manual clock in tests/unit/test_engine.c.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-run-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3

net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" gmail outlook:3 yahoo:4 other:5)
sport=$(free_port)
smtpd_start providers "[
  {\"name\": \"gmail\", \"host\": \"$net.2\", \"port\": $sport, \"size\": 10485760,
   \"mode_file\": \"$work/gmail.mode\", \"modes\": {\"slow\": {\"delay_ms\": {\"data\": 10000}}}},
  {\"name\": \"microsoft\", \"host\": \"$net.3\", \"port\": $sport, \"rate_per_min\": 3,
   \"throttle\": \"451 4.7.500 Server busy. Please try again later from [$net.1]. (S77714)\"},
  {\"name\": \"yahoo\", \"host\": \"$net.4\", \"port\": $sport, \"rate_per_min\": 2,
   \"throttle\": \"421 4.7.0 [TSS04] Messages from $net.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes\"},
  {\"name\": \"other\", \"host\": \"$net.5\", \"port\": $sport,
   \"recipients\": {\"^nobody@\": \"550 5.1.1 <nobody@other.test>: Recipient address rejected: User unknown\"}}
]"
dialogue=$SMTPD_LOG
mail=$SERVERS_DIR/providers.mail

{
  echo "email,first_name"
  for i in $(seq 1 12); do echo "g$i@gmail.test,G$i"; done
  for i in $(seq 1 8); do echo "m$i@outlook.test,M$i"; done
  for i in $(seq 1 6); do echo "y$i@yahoo.test,Y$i"; done
  echo "o1@other.test,O1"
  echo "nobody@other.test,Nobody"
} >"$work/seeds.csv"
printf 'Hello {{first_name}},\n\nthis is message {{seq}} of {{campaign}}.\n.a line that starts with a dot\n' >"$work/message.txt"
{ plans_head --zone Asia/Tokyo --timeouts 5s/10s --per-provider 1 run-test "$net" "$sport"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Hello {{first_name}}", text_file: message.txt}
recipients: {file: seeds.csv, mode: once}
ramp: {start: 120/min, growth: 1.5, max: 600/min}
EOF
db=$work/ipwarm.db

# 1. A run of 4 s at 120/min: Microsoft takes 3 and is throttled, Yahoo takes 2 and defers.
start=$(date +%s)
"$IPWARM" -p "$work/plan.yaml" run --for 4s >"$work/run1.out" 2>"$work/run1.err"
rc=$?
check "run --for 4s exits 0 (got $rc: $(tail -2 "$work/run1.err"))" test "$rc" -eq 0
elapsed=$(($(date +%s) - start))
# The upper bound leaves room for a loaded machine; --for must not be cut short nor ignored.
check "run --for 4s took about 4 s (took $elapsed s)" test "$elapsed" -ge 3 -a "$elapsed" -le 30

$py - "$dialogue" "$db" "$net.1" >"$work/check1.out" 2>&1 <<'EOF'
import json, sqlite3, sys
log, db, source = sys.argv[1], sys.argv[2], sys.argv[3]
peers = set()
mail = {}
seen = {}
accepted = {}
for line in open(log):
    d = json.loads(line)
    name = d["listener"]
    if d["ev"] == "connect":
        peers.add(d["peer"].rsplit(":", 1)[0])
    if d["ev"] == "cmd":
        seen.setdefault(name, []).append(d["line"])
        if d["line"].startswith("MAIL FROM"):
            mail.setdefault(name, []).append(d["t"])
    if d["ev"] == "message" and d["accepted"]:
        accepted[name] = accepted.get(name, 0) + 1
fails = []
def expect(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails.append(what)
g = mail.get("gmail", [])
expect(len(g) >= 2, "gmail got at least 2 messages in 4 s (got %d)" % len(g))
cmds = seen.get("gmail", [])
expect("EHLO mx1.example.com" in cmds, "the EHLO name is source.helo")
expect(peers == {source}, "every connection comes from the bound source IP %s: %s" % (source, peers))
conns = sum(1 for l in open(log) if '"ev": "connect"' in l and '"gmail"' in l)
expect(conns == 1, "gmail's messages share one connection (%d connections)" % conns)
expect(any(c.startswith("MAIL FROM:<bounces@example.com> SIZE=") for c in cmds), "MAIL FROM is the return path, with SIZE")
expect("RCPT TO:<g1@gmail.test>" in cmds, "one RCPT per message, g1 first")
expect(sum(1 for c in cmds if c.startswith("RCPT")) == len(g), "one recipient per message")
con = sqlite3.connect(db)
q = lambda sql, *a: con.execute(sql, a).fetchall()
for prov, name in (("gmail", "gmail"), ("microsoft365", "microsoft"), ("yahoo", "yahoo"), ("other", "other")):
    # Attempts that reached MAIL are what the server saw as MAIL commands.
    n = q("SELECT count(*) FROM attempts WHERE provider = ? AND phase IN ('mail','rcpt','data')", prov)[0][0]
    expect(n == len(mail.get(name, [])), "%s: attempts recorded (%d) equal MAIL commands the server saw (%d)" % (prov, n, len(mail.get(name, []))))
    d = q("SELECT count(*) FROM attempts WHERE provider = ? AND outcome = 'delivered'", prov)[0][0]
    expect(d == accepted.get(name, 0), "%s: delivered in the store (%d) equals messages the server accepted (%d)" % (prov, d, accepted.get(name, 0)))
# Replies read off the wire: a 550 5.1.1 on RCPT, and a 421 on MAIL with its whole text.
r = q("SELECT state, reason FROM recipients WHERE address = 'nobody@other.test'")[0]
expect(r[0] == "suppressed" and "5.1.1" in r[1], "a 550 5.1.1 on RCPT suppresses the recipient for good")
t = q("SELECT phase, code, enhanced, text, mx, source_ip FROM attempts WHERE provider = 'yahoo' AND outcome = 'deferred'")[0]
expect(t[0] == "mail" and t[1] == 421 and t[2] == "4.7.0" and "[TSS04]" in t[3] and t[4] == "mta5.am0.yahoodns.net",
       "the deferral is recorded with phase, code, enhanced code, full text and MX: %s" % (t,))
sys.exit(1 if fails else 0)
EOF
rc=$?
tally "$work/check1.out"
[ "$rc" -eq 0 ] || [ "$(grep -c '^FAIL:' "$work/check1.out")" -gt 0 ] || bad "the store check script failed: $(tail -3 "$work/check1.out")"

# Statistics of this warm-up: the throttled provider's deferral under its masked reason, and the
# trace of the deferred recipient in the plan's zone (Asia/Tokyo, +09:00).
"$IPWARM" -p "$work/plan.yaml" stats --json >"$work/stats.json" 2>"$work/stats.err"
check "stats --json exits 0" test $? -eq 0
deferred_rcpt=$(sqlite3 "$db" "SELECT recipient FROM attempts WHERE provider = 'microsoft365' AND outcome = 'deferred'")
"$IPWARM" -p "$work/plan.yaml" trace --json "$deferred_rcpt" >"$work/trace.json" 2>"$work/trace.err"
check "trace --json exits 0" test $? -eq 0
$py - "$work/stats.json" "$work/trace.json" "$net.1" >"$work/check3.out" 2>&1 <<'EOF'
import json, sys
stats = json.load(open(sys.argv[1]))
trace = json.load(open(sys.argv[2]))
ip = sys.argv[3]
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
ms = [r for r in stats["rows"] if r["provider"] == "microsoft365"]
expect(len(ms) == 1 and ms[0]["deferred"] == 1 and ms[0]["attempts"] == 4 and ms[0]["delivered"] == 3,
       "stats: microsoft365 4 attempts, 3 delivered, 1 deferred: %s" % [(r["attempts"], r["delivered"], r["deferred"]) for r in ms])
reasons = ms[0]["top_reasons"] if ms else []
expect(len(reasons) == 1 and reasons[0]["code"] == 451 and reasons[0]["enhanced"] == "4.7.500" and reasons[0]["count"] == 1,
       "stats: one reason 451 4.7.500 counted once: %s" % reasons)
expect(bool(reasons) and ip not in reasons[0]["text"] and "Server busy" in reasons[0]["text"],
       "stats: the reason's IP address is masked: %s" % (reasons[0]["text"] if reasons else None))
expect(len(trace) >= 1 and trace[0]["outcome"] == "deferred" and trace[0]["time"].endswith("+09:00"),
       "trace: the deferral with its local time in +09:00: %s" % (trace[0]["time"] if trace else None))
expect(bool(trace) and trace[0]["code"] == 451 and trace[0]["phase"] == "mail" and trace[0]["mx"] == "outlook-test.mail.protection.outlook.com" and trace[0]["source_ip"] == ip,
       "trace: code, phase, MX and source IP of the attempt")
EOF
tally "$work/check3.out"

# 2. The message arrived intact: the dot line survived, the subject was expanded.
msg=$(ls "$mail"/gmail-*.eml 2>/dev/null | head -1)
check "a message was saved by the server" test -n "$msg"
check "a body line that starts with a dot arrives unchanged" grep -q '^\.a line that starts with a dot' "$msg"
check "the subject is expanded from the recipient list" grep -q '^Subject: Hello G1' "$(grep -l '^To: g1@gmail.test' "$mail"/*.eml | head -1)"

# 3. Two runs at once: the second exits 75 at once, while the first still holds the lock (it
#    does not wait for it). New recipients appended to the list are picked up where the last run
#    stopped reading. The first run is given a minute and ended by SIGTERM once the second has
#    been refused, so a slow machine cannot let it end before the second starts.
for i in $(seq 13 22); do echo "g$i@gmail.test,G$i" >>"$work/seeds.csv"; done
"$IPWARM" -p "$work/plan.yaml" run --for 60s >/dev/null 2>&1 &
first=$!
for ((i = 0; i < 600; i++)); do
  [ "$(sqlite3 "$db" "SELECT pid FROM run_lock" 2>/dev/null)" = "$first" ] && break
  sleep 0.05
done
t0=$(date +%s%N)
"$IPWARM" -p "$work/plan.yaml" run --once >"$work/second.out" 2>"$work/second.err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "a second run exits 75 (got $rc)" test "$rc" -eq 75
check "a second run is refused while the first still runs" kill -0 "$first"
check "a second run is refused without waiting for the lock (took $ms ms)" test "$ms" -lt 20000
check "the refusal names the holder: $(cat "$work/second.err")" grep -q "pid $first" "$work/second.err"
kill -TERM "$first"
wait "$first"

# 4. kill -9 in the middle of a run: the next run marks what was in flight unknown, holds its
#    recipient, and the records still equal what the server saw.
# The gmail server now takes 10 s to answer a message's final dot; the kill lands once the
# server has seen a new DATA, so with that message in flight.
echo slow >"$work/gmail.mode"
gdata='"line": "DATA".*"listener": "gmail"'
gdata_before=$(log_count "$dialogue" "$gdata")
"$IPWARM" -p "$work/plan.yaml" run --for 60s >/dev/null 2>&1 &
victim=$!
log_wait "$dialogue" $((gdata_before + 1)) "$gdata" 60 || bad "the gmail server saw no DATA after the restart"
sleep 0.5 # the body (a few hundred bytes) follows the 354 at once
kill -9 "$victim"
wait "$victim" 2>/dev/null
rm -f "$work/gmail.mode"
"$IPWARM" -v -p "$work/plan.yaml" run --once >"$work/after.out" 2>"$work/after.err"
rc=$?
check "the run after kill -9 exits 0 (got $rc)" test "$rc" -eq 0
$py - "$dialogue" "$db" >"$work/check2.out" 2>&1 <<'EOF'
import json, sqlite3, sys
log, db = sys.argv[1], sys.argv[2]
mail = 0
accepted = 0
for line in open(log):
    d = json.loads(line)
    if d["ev"] == "cmd" and d["line"].startswith("MAIL FROM"):
        mail += 1
    if d["ev"] == "message" and d["accepted"]:
        accepted += 1
con = sqlite3.connect(db)
n = con.execute("SELECT count(*) FROM attempts WHERE phase IN ('mail','rcpt','data') OR outcome = 'unknown'").fetchone()[0]
inflight = con.execute("SELECT count(*) FROM attempts WHERE outcome = 'in-flight'").fetchone()[0]
delivered = con.execute("SELECT count(*) FROM attempts WHERE outcome = 'delivered'").fetchone()[0]
unknown = con.execute("SELECT count(*) FROM attempts WHERE outcome = 'unknown'").fetchone()[0]
held = con.execute("SELECT count(*) FROM recipients WHERE state = 'held'").fetchone()[0]
ok = True
def expect(c, w):
    global ok
    print(("ok: " if c else "FAIL: ") + w)
    ok = ok and c
expect(inflight == 0, "no attempt is left in flight after the restart")
expect(abs(n - mail) <= 1, "attempts recorded (%d) equal the server's MAIL commands (%d), give or take the one in flight" % (n, mail))
expect(delivered <= accepted <= delivered + unknown, "delivered in the store (%d) + unknown (%d) cover what the server accepted (%d)" % (delivered, unknown, accepted))
expect(unknown >= 1, "the attempt in flight at the kill is recorded as unknown (%d)" % unknown)
expect(held == unknown, "each unknown attempt holds its recipient (%d held, %d unknown)" % (held, unknown))
h = con.execute("SELECT count(*) FROM attempts a JOIN recipients r ON r.address = a.recipient WHERE r.state = 'held' AND a.outcome NOT IN ('unknown')").fetchone()[0]
expect(h == 0, "a held recipient was not sent again after the restart")
sys.exit(0 if ok else 1)
EOF
tally "$work/check2.out"

# 5. --dry-run decides and records without sending, and leaves the queue alone.
before=$(grep -c '"ev": "connect"' "$dialogue")
pending_before=$(sqlite3 "$db" "SELECT count(*) FROM recipients WHERE state = 'pending'")
"$IPWARM" -p "$work/plan.yaml" run --dry-run --for 2s >/dev/null 2>"$work/dry.err"
rc=$?
after=$(grep -c '"ev": "connect"' "$dialogue")
pending_after=$(sqlite3 "$db" "SELECT count(*) FROM recipients WHERE state = 'pending'")
check "run --dry-run exits 0 (got $rc)" test "$rc" -eq 0
check "run --dry-run opens no connection" test "$before" -eq "$after"
check "run --dry-run leaves the queue as it was" test "$pending_before" -eq "$pending_after"
# A dry run on a new state file decides from the list: attempts recorded as dry runs, no
# connection, every recipient still pending for the real run.
"$IPWARM" -p "$work/plan.yaml" --db "$work/dry.db" run --dry-run --for 2s >/dev/null 2>"$work/dry2.err"
rc=$?
check "run --dry-run on a new state file exits 0 (got $rc)" test "$rc" -eq 0
check "run --dry-run on a new state file records dry-run attempts" test "$(sqlite3 "$work/dry.db" "SELECT count(*) FROM attempts WHERE dry_run = 1")" -ge 3
check "run --dry-run on a new state file opens no connection" test "$after" -eq "$(grep -c '"ev": "connect"' "$dialogue")"
check "run --dry-run leaves every recipient pending" test "$(sqlite3 "$work/dry.db" "SELECT count(*) FROM recipients WHERE state NOT IN ('pending', 'skipped')")" -eq 0

finish
