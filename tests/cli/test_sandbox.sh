#!/usr/bin/env bash
# The sandbox (scripts/sandbox, config/sandbox/) end to end: starts it from a copy of the shipped
# config on addresses and ports of this test's own, runs `ipwarm check` and a 20 s warm-up of
# the shipped demo plan against it, and asserts what the demo promises: even pacing, Microsoft's
# "451 4.7.500 Server busy" cutting the rate and pausing it, Yahoo's [TSS04] suspending it for
# 2 h, Gmail's multi-line 421-4.7.28, per-recipient 550 5.1.1 and 452 4.2.2, STARTTLS, the
# tarpit, the switch of Microsoft to the block-list reply. After the 250: its Dovecot (IMAP
# with STARTTLS and the sandbox's CA, read with ipwarm's own IMAP client) receives Microsoft's
# late bounce of late1@outlook.test and Yahoo's complaint about complain1@yahoo.test, both
# classified by `ipwarm feedback parse`; `ipwarm feedback poll` with the demo plan's feedback
# section (VERP) then matches both to their attempts, turns late1's into bounced (keeping its
# 250), suppresses both recipients, counts them per provider and suspends Yahoo for its
# complaint rate (rows in the store), and a second poll adds nothing. Then it stops the sandbox and asserts that no process
# of it (Dovecot's included) is left and its ports are free again; starts it once more (empty
# mailboxes) to check where seed copies land (Gmail: every third in [Gmail]/Spam), and stops.
# The demo plan's seeds (one at each provider, the first of its recipients) get their copies in
# the warm-up; `feedback poll` must then count per provider exactly what the sandbox filed where
# (`placement`), and `trace` shows Gmail's third seed copy in [Gmail]/Spam.
# Environment: IPWARM (the binary), SRCDIR (the source tree), BUILDDIR (imap_client).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq openssl sqlite3 py:yaml
BUILDDIR=${BUILDDIR:-$SRCDIR/build-test}
imap_client=$BUILDDIR/imap_client
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
py=$SERVERS_PY
work=$(mktemp -d /tmp/ipwarm-sandbox-XXXXXX)
# Whatever happens, nothing of the sandbox outlives the test (servers_stop_all stops it).
servers_init "$work"

. "$SRCDIR/tests/lib/assert.sh"
# json_true WHAT FILE EXPR: EXPR (python, d = the document) holds for the JSON in FILE.
json_true() {
  if "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($3) else 1)" "$2" \
    2>"$work/pyerr"; then
    ok "$1"
  else
    bad "$1: ($3) is false $(tail -1 "$work/pyerr")"
  fi
}

# The shipped config and demo plan, moved to addresses and ports of our own. Gmail throttles
# past 5 a minute here (30 in the shipped file) so that its 421-4.7.28 shows within 20 s.
sandbox_config "$(plans_net)" -e '/^  gmail:/,/^  microsoft:/s/rate_per_min: 30/rate_per_min: 5/'
sandbox_plan demo "$work/ipwarm.db"
net=$SANDBOX_NET sb=$SANDBOX_DIR sport=$SANDBOX_SMTP_PORT dport=$SANDBOX_DNS_PORT
iport=$SANDBOX_IMAP_PORT lport=$SANDBOX_LMTP_PORT
sandbox=$SRCDIR/scripts/sandbox
check "the test's config moved the DNS server" grep -q "dns: $net.53:$dport" "$work/sandbox.yaml"
check "the test's config moved IMAP and LMTP" grep -q "lmtp: $net.7:$lport" "$work/sandbox.yaml"
check "the test's plan moved the port" grep -q "port: $sport" "$work/demo.yaml"
check "the test's plan points at the test's DKIM key" grep -q "key_file: $sb/dkim.pem" "$work/demo.yaml"
check "the test's plan reads the test's Dovecot" grep -q "url: imap://$net.7:$iport/INBOX" "$work/demo.yaml"

# --- start -----------------------------------------------------------------------------------
must "sandbox start exits 0" sandbox_start start
check "start names the DNS server to use" grep -qF -- "--dns $net.53:$dport" "$work/start.out"
check "start names the SMTP port" grep -qF "transport.port: $sport" "$work/start.out"
check "start lists the Microsoft-like MX" grep -qE "microsoft +$net\.3:$sport +MX sandbox-test\.olc\.protection\.outlook\.com" "$work/start.out"
check "start names the IMAP server and its CA" grep -qF "IMAP  $net.7:$iport (Dovecot, pid" "$work/start.out"
check "start lists Gmail's seed mailboxes and their junk folder" \
  test "$(grep -cE "seed[123]@gmail\.test +INBOX \(0\), \[Gmail\]/Spam \(0\)" "$work/start.out")" -eq 3
pids=$(cat "$sb/dnsmasq.pid" "$sb/smtpd.pid" "$sb/dovecot.pid" 2>/dev/null | tr '\n' ' ')
check "three pids recorded ($pids)" test "$(wc -w <<<"$pids")" -eq 3
alive=0
for p in $pids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
check "the three servers are running" test "$alive" -eq 3
check "Dovecot runs with the sandbox's own config" \
  grep -qF -- "-c $sb/dovecot/dovecot.conf" <(tr '\0' ' ' <"/proc/$(cat "$sb/dovecot.pid")/cmdline")
# Dovecot's processes are the master's session: the master and its children.
dovecot_procs=$(pgrep -s "$(cat "$sb/dovecot.pid")" | tr '\n' ' ')
check "Dovecot's master has children of its own ($dovecot_procs)" test "$(wc -w <<<"$dovecot_procs")" -ge 2
check "the mailbox password file is mode 0600" test "$(stat -c %a "$sb/imap.password")" = 600
check "the password is in no generated config" \
  test -z "$(grep -rlF -- "$(cat "$sb/imap.password")" "$sb"/*.conf "$sb"/*.json "$sb"/dovecot/ "$sb"/*.env "$work/start.out" 2>/dev/null)"
# ipwarm's own IMAP client (src/imap.c): STARTTLS, the sandbox's certificate as the CA.
imap() { # USER OP...
  IMAP_TEST_PASSWORD=$(cat "$sb/imap.password") timeout 60 "$imap_client" --ca "$sb/tls/cert.pem" \
    "imap://$net.7:$iport" "$@"
}
for seed in "seed1@gmail.test [Gmail]/Spam" "seed3@gmail.test [Gmail]/Spam" \
  "seed@outlook.test Junk Email" "seed@yahoo.test Bulk" "seed@example.test Junk"; do
  user=${seed%% *} junk=${seed#* }
  imap "$user" list >"$work/list.out" 2>&1
  check "IMAP login of $user over STARTTLS (exit $?; $(tail -1 "$work/list.out"))" grep -qx "folder INBOX attrs=-" "$work/list.out"
  check "$user's junk folder is $junk, marked \\Junk" grep -qxF "junk $junk" "$work/list.out"
done
# The demo plan's feedback section and its seeds section are a valid plan, and each mailbox they
# name logs in with what they say.
"$IPWARM" -p "$work/demo.yaml" --json validate >"$work/validate.json" 2>"$work/validate.err"
check "demo.yaml with its feedback and seeds sections validates ($(tail -1 "$work/validate.err"))" test $? -eq 0
"$py" - "$work/demo.yaml" >"$work/logins.tsv" <<'EOF'
import sys, yaml
from urllib.parse import urlsplit
d = yaml.safe_load(open(sys.argv[1]))
for m in [d["feedback"]["mailbox"]] + d["seeds"]:
    u = urlsplit(m["url"])
    folders = m.get("folders", {})
    print("\t".join(["%s://%s" % (u.scheme, u.netloc), m["username"], m["password_file"], m["ca_file"],
                     folders.get("inbox", "INBOX"), folders.get("junk", "-")]))
EOF
check "the sections name the return path and six seeds" test "$(wc -l <"$work/logins.tsv")" -eq 7
while IFS=$'\t' read -r url user pwfile ca inbox junk; do
  args=(examine "$inbox") what=$inbox
  [ "$junk" = - ] || { args+=(examine "$junk"); what+=" and $junk"; }
  IMAP_TEST_PASSWORD=$(cat "$pwfile") timeout 60 "$imap_client" --ca "$ca" "$url" "$user" "${args[@]}" \
    >"$work/login.out" 2>&1
  check "the plan's login for $user works and opens $what" \
    test "$(grep -c '^examine uidvalidity=' "$work/login.out")" -eq "$(( ${#args[@]} / 2 ))"
done <"$work/logins.tsv"
"$sandbox" status --dir "$sb" >"$work/status.out" 2>&1
check "sandbox status exits 0 while running" test $? -eq 0
check "status shows Dovecot running" grep -q "^dovecot: running, pid $(cat "$sb/dovecot.pid")" "$work/status.out"
check "status lists the return-path mailbox" grep -qE "bounces@sandbox\.test +INBOX \(0\), Junk \(0\)" "$work/status.out"
check "status shows the modes" grep -qE "microsoft .*mode normal .*blocklist" "$work/status.out"
"$sandbox" start --config "$work/sandbox.yaml" --dir "$sb" >/dev/null 2>"$work/again.err"
rc=$?
check "a second start in the same directory is refused (exit $rc)" test "$rc" -eq 1
check "the refusal says it is running" grep -q "already running" "$work/again.err"
"$sandbox" mode microsoft nonsense --dir "$sb" >/dev/null 2>"$work/mode.err"
check "an unknown mode is refused" test $? -eq 1
check "the refusal lists the modes" grep -q "modes: normal,blocklist,tarpit" "$work/mode.err"

# --- ipwarm check passes against the sandbox's DNS and MX hosts -------------------------------
"$IPWARM" -p "$work/demo.yaml" --json check >"$work/check.json" 2>"$work/check.err"
rc=$?
check "ipwarm check exits 0 (got $rc: $(tail -2 "$work/check.err"))" test "$rc" -eq 0
json_true "check: ok" "$work/check.json" 'd["ok"] is True'
json_true "check: spf, ptr, helo, mx, dnsbl, dkim, dmarc, smtp, tls all pass" "$work/check.json" \
  'all(any(c["name"] == n and c["status"] == "pass" for c in d["checks"]) for n in ["spf","ptr","helo","mx","dnsbl","dkim","dmarc","smtp","tls"])'
json_true "check: mx sees the four providers" "$work/check.json" \
  'any("gmail 1, microsoft 1, yahoo 1, other 1" in c["detail"] for c in d["checks"] if c["name"] == "mx")'

# --- the tarpit answers, slowly ----------------------------------------------------------------
"$py" - "$net.6" "$sport" <<'EOF'
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
s.settimeout(1.0)
t = time.time()
try:
    data = s.recv(100)
    print("FAIL: the tarpit greeted after %.2f s: %r" % (time.time() - t, data))
    sys.exit(1)
except socket.timeout:
    print("ok: the tarpit accepts the connection and says nothing for 1 s")
EOF
if [ $? -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi

# --- a 20 s warm-up -------------------------------------------------------------------------------
start=$(date +%s)
"$IPWARM" -p "$work/demo.yaml" run --for 20s >"$work/run.out" 2>"$work/run.err"
rc=$?
elapsed=$(($(date +%s) - start))
check "run --for 20s exits 0 (got $rc: $(tail -2 "$work/run.err"))" test "$rc" -eq 0
check "run --for 20s took about 20 s (took $elapsed s)" test "$elapsed" -ge 19 -a "$elapsed" -le 50
"$IPWARM" -p "$work/demo.yaml" --json status >"$work/status.json" 2>"$work/status.err"
check "ipwarm status --json exits 0" test $? -eq 0
# The plan: 20/min for everyone, deferral factor 0.5. The sandbox: Microsoft busy past 4 a
# minute, Yahoo [TSS04] past 2, Gmail 421-4.7.28 past 5 (here).
P='[p for p in d["providers"] if p["name"] == "%s"][0]'
json_true "microsoft: rate cut from 20/min to 10/min" "$work/status.json" "${P/\%s/microsoft}[\"rate_per_min\"] == 10"
json_true "microsoft: paused" "$work/status.json" "${P/\%s/microsoft}[\"paused_until\"] is not None"
json_true "microsoft: the pause says Server busy" "$work/status.json" \
  "'451 4.7.500 Server busy' in ${P/\%s/microsoft}[\"pause_reason\"]"
json_true "microsoft: 4 accepted before the refusal" "$work/status.json" "${P/\%s/microsoft}[\"sent_today\"] == 5"
json_true "yahoo: suspended for 2 h by the shipped [TSS04] rule" "$work/status.json" \
  "any(a['action'] == 'suspend' and a['rule'] == 'yahoo-tss04' for a in ${P/\%s/yahoo}['actions'])"
json_true "yahoo: paused until 2 h after the [TSS04] reply" "$work/status.json" \
  "${P/\%s/yahoo}['paused_until'] == [a['expires'] for a in ${P/\%s/yahoo}['actions'] if a['rule'] == 'yahoo-tss04'][0]"
json_true "yahoo: the suspension says why" "$work/status.json" "'[TSS04]' in ${P/\%s/yahoo}['pause_reason']"
json_true "gmail: the 421-4.7.28 throttle cut its rate" "$work/status.json" "${P/\%s/gmail}[\"rate_per_min\"] == 10"
json_true "other: never pushed back, still 20/min" "$work/status.json" \
  "${P/\%s/other}['rate_per_min'] == 20 and ${P/\%s/other}['paused_until'] is None"

# The server's own log and the store agree, and show what the sandbox promises.
"$py" - "$sb/smtpd.jsonl" "$work/ipwarm.db" "$net.1" >"$work/log.out" 2>&1 <<'EOF'
import json, sqlite3, sys
log, db, source = sys.argv[1], sys.argv[2], sys.argv[3]
events = [json.loads(line) for line in open(log)]
fails = []
def expect(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails.append(what)
mail = {}
for e in events:
    if e["ev"] == "cmd" and e["line"].startswith("MAIL FROM"):
        mail.setdefault(e["listener"], []).append(e["t"])
accepted = sum(1 for e in events if e["ev"] == "message" and e["accepted"])
peers = {e["peer"].rsplit(":", 1)[0] for e in events if e["ev"] == "connect" and e["listener"] != "tarpit"}
expect(peers == {source}, "every connection came from the sandbox sender %s: %s" % (source, peers))
tls = [e for e in events if e["ev"] == "tls"]
sessions = {e["conn"] for e in events if e["ev"] == "cmd" and e["line"].startswith("MAIL")}
tls_conns = {e["conn"] for e in tls}
expect(sessions and sessions <= tls_conns, "every session that sent MAIL did STARTTLS first (%d of %d)" % (len(sessions & tls_conns), len(sessions)))
# The first MAIL of a connection comes after TCP, EHLO and STARTTLS (slow under a sanitizer on
# a busy machine), the others on the same connection right at their planned time: the server
# sees the pace from the second message on.
g = mail.get("gmail", [])
gaps = [b - a for a, b in zip(g[1:], g[2:6])]
expect(len(gaps) == 4 and all(2.8 <= x <= 3.2 for x in gaps), "gmail's messages are 3 s apart (20/min): %s" % [round(x, 2) for x in gaps])
o = mail.get("other", [])
gaps = [b - a for a, b in zip(o[1:], o[2:])]
expect(len(o) >= 6 and all(2.8 <= x <= 3.2 for x in gaps), "the accept-all MX gets one message every 3 s: %s" % [round(x, 2) for x in gaps])
replies = [e["text"] for e in events if e["ev"] == "reply" and e["listener"] == "gmail"]
multi = [r for r in replies if r.startswith("421-4.7.28")]
expect(len(multi) == 1 and len(multi[0].split("\n")) == 4, "gmail answered the 6th message with the 4-line 421-4.7.28 reply")
con = sqlite3.connect(db)
q = lambda sql, *a: con.execute(sql, a).fetchall()
# The store's start times, first message included, are the plan's: 3000 ms apart.
st = [r[0] for r in q("SELECT started_ms FROM attempts WHERE provider = 'other' ORDER BY id")]
gaps = [b - a for a, b in zip(st, st[1:])]
expect(len(st) >= 6 and all(2900 <= x <= 3100 for x in gaps), "the store's attempts to other start 3000 ms apart: %s" % gaps)
delivered = q("SELECT count(*) FROM attempts WHERE outcome = 'delivered'")[0][0]
expect(delivered == accepted, "delivered in the store (%d) equals messages the servers accepted (%d)" % (delivered, accepted))
t = q("SELECT code, enhanced, text FROM attempts WHERE provider = 'gmail' AND outcome = 'deferred'")
expect(len(t) == 1 and t[0][0] == 421 and t[0][1] == "4.7.28" and "unusual rate" in t[0][2] and "rate limited" in t[0][2],
       "gmail's deferral is stored with its lines joined: %s" % (t,))
r = q("SELECT state, reason FROM recipients WHERE address = 'unknown@example.test'")
expect(r and r[0][0] == "suppressed" and "5.1.1" in r[0][1], "550 5.1.1 suppresses unknown@: %s" % (r,))
r = q("SELECT r.state, a.code, a.enhanced FROM recipients r JOIN attempts a ON a.recipient = r.address WHERE r.address = 'full@example.test'")
expect(r and r[0][0] == "pending" and r[0][1] == 452 and r[0][2] == "4.2.2", "452 4.2.2 defers full@ for a retry: %s" % (r,))
y = q("SELECT count(*) FROM attempts WHERE provider = 'yahoo'")[0][0]
expect(y == 3, "yahoo got 2 messages and the [TSS04] refusal, then nothing (%d attempts)" % y)
sys.exit(1 if fails else 0)
EOF
tally "$work/log.out"
grep -q '^ok:\|^FAIL:' "$work/log.out" || bad "the log check did not run: $(tail -3 "$work/log.out")"

# --- after the 250: Microsoft's late bounce and Yahoo's complaint reach the return path ----------
# late1@outlook.test is among the 4 messages Microsoft accepts, complain1@yahoo.test among
# Yahoo's 2 (recipients.csv); the sandbox mails back 2 s and 3 s later (sandbox.yaml).
"$py" - "$sb/smtpd.jsonl" <<'EOF' >"$work/after.out"
import json, sys, time
end = time.time() + 60
while time.time() < end:
    ev = [json.loads(l) for l in open(sys.argv[1])]
    done = [e for e in ev if e["ev"] in ("late-bounce", "complaint")]
    if len(done) >= 2:
        break
    time.sleep(0.2)
ok = sorted((e["ev"], e.get("rcpt") or e["rcpts"][0], e["delivered"]) for e in done) == [
    ("complaint", "complain1@yahoo.test", True), ("late-bounce", "late1@outlook.test", True)]
print(("ok: " if ok else "FAIL: ") + "the sandbox mailed a late bounce for late1 and a complaint for complain1: %s"
      % [(e["ev"], e.get("error")) for e in done])
EOF
tally "$work/after.out"
imap bounces@sandbox.test examine INBOX after 0 fetch 1 "$work/fb1.eml" fetch 2 "$work/fb2.eml" >"$work/fb.out" 2>&1
check "the return path's INBOX holds the two messages, read over IMAP ($(head -c 300 "$work/fb.out" | tr '\n' ' '))" \
  grep -qx "uids 1 2" "$work/fb.out"
"$IPWARM" --json feedback parse "$work/fb1.eml" "$work/fb2.eml" >"$work/fb.json" 2>"$work/fb.err"
check "ipwarm feedback parse reads them (exit $?)" test -s "$work/fb.json"
json_true "Microsoft's late bounce: a dsn for late1@outlook.test, failed, 5.1.10" "$work/fb.json" \
  '[(r["address"], r["action"], r["status"]) for m in d["messages"] if m["kind"] == "dsn" for r in m["recipients"]] == [("late1@outlook.test", "failed", "5.1.10")]'
json_true "the bounce is Exchange Online's NDR with a report part (rfc3464, Undeliverable:)" "$work/fb.json" \
  'any(m["format"] == "rfc3464" and m["subject"].startswith("Undeliverable: ") for m in d["messages"])'
json_true "Yahoo's complaint: an arf, abuse, about complain1@yahoo.test from the sender's IP $net.1" "$work/fb.json" \
  "[(m['feedback_type'], [r['address'] for r in m['recipients']], m['source_ip'], m['reporting_mta']) for m in d['messages'] if m['kind'] == 'arf'] == [('abuse', ['complain1@yahoo.test'], '$net.1', 'Yahoo!-Mail-Feedback/2.0')]"
"$py" - "$work/ipwarm.db" "$work/fb.json" <<'EOF' >"$work/match.out"
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
d = json.load(open(sys.argv[2]))
for m in d["messages"]:
    rcpt = m["recipients"][0]["address"] if m["recipients"] else None
    row = con.execute("SELECT outcome, code FROM attempts WHERE recipient = ?", (rcpt,)).fetchall()
    ok = row == [("delivered", 250)]
    print(("ok: " if ok else "FAIL: ") + "%s was accepted with 250 before the %s came: %s" % (rcpt, m["kind"], row))
EOF
tally "$work/match.out"

# The seed copies: one to each seed (the first recipients of each provider in recipients.csv),
# filed by the sandbox's policy; wait until it has delivered every one it accepted.
n_seeds=$(sqlite3 "$work/ipwarm.db" "SELECT count(*) FROM attempts WHERE outcome = 'delivered' AND recipient LIKE 'seed%'")
check "the run delivered a copy to each of the six seeds" test "$n_seeds" = 6
"$py" - "$sb/smtpd.jsonl" "$n_seeds" <<'EOF' >"$work/placed-run.out"
import json, sys, time
end = time.time() + 60
while time.time() < end:
    placed = [e for e in map(json.loads, open(sys.argv[1])) if e["ev"] == "placed"]
    if len(placed) >= int(sys.argv[2]):
        break
    time.sleep(0.2)
ok = len(placed) == int(sys.argv[2]) and all(e["delivered"] for e in placed)
print(("ok: " if ok else "FAIL: ") + "the sandbox filed every seed copy it accepted: %s" % [(e["rcpt"], e["folder"]) for e in placed])
EOF
tally "$work/placed-run.out"

# --- ipwarm reads them back (the demo plan's feedback: VERP, the sandbox's Dovecot) and acts ------
q() { sqlite3 "$work/ipwarm.db" "$1"; }
check "every attempt went out from a VERP return path bounces+TOKEN@sandbox.test" \
  test "$(q "SELECT count(*) FROM attempts WHERE mail_from NOT LIKE 'bounces+%@sandbox.test'")" = 0
"$IPWARM" -p "$work/demo.yaml" --json feedback poll >"$work/poll.json" 2>"$work/poll.err"
check "ipwarm feedback poll exits 0 ($(tail -1 "$work/poll.err"))" test $? -eq 0
check "the poll's output does not hold the mailbox password" \
  test -z "$(grep -lF -- "$(cat "$sb/imap.password")" "$work/poll.json" "$work/poll.err")"
check "the poll read the late bounce and the complaint, each matched by its VERP address" \
  test "$(q "SELECT group_concat(kind || ':' || recipient || ':' || provider || ':' || matched_by || ':' || coalesce(status, feedback_type), ' ') FROM (SELECT * FROM feedback_reports ORDER BY kind)")" \
  = "bounce:late1@outlook.test:microsoft:verp:5.1.10 complaint:complain1@yahoo.test:yahoo:verp:abuse"
check "each report points at the attempt to its recipient" \
  test "$(q "SELECT count(*) FROM feedback_reports f JOIN attempts a ON a.id = f.attempt_id AND a.recipient = f.recipient")" = 2
check "late1's attempt is now bounced, keeping the 250 it had" \
  test "$(q "SELECT outcome || ' ' || code FROM attempts WHERE recipient = 'late1@outlook.test'")" = "bounced 250"
check "complain1's attempt stays delivered" \
  test "$(q "SELECT outcome FROM attempts WHERE recipient = 'complain1@yahoo.test'")" = delivered
check "both recipients are suppressed" \
  test "$(q "SELECT group_concat(state, ' ') FROM recipients WHERE address IN ('late1@outlook.test', 'complain1@yahoo.test')")" = "suppressed suppressed"
check "the hourly counters: one late bounce at microsoft, one complaint at yahoo, nothing else" \
  test "$(q "SELECT group_concat(provider || ':' || l || ':' || c, ' ') FROM (SELECT provider, sum(late_bounces) l, sum(complaints) c FROM summary_hourly GROUP BY provider HAVING l + c > 0 ORDER BY provider)")" \
  = "microsoft:1:0 yahoo:0:1"
check "yahoo's complaint rate (1 over 2 delivered, min_delivered 2) suspended it for 24 h: rule complaint-rate" \
  test "$(q "SELECT count(*) FROM rule_actions WHERE provider = 'yahoo' AND rule = 'complaint-rate' AND action = 'suspend' AND expires_ms - started_ms = 86400000")" = 1
"$IPWARM" -p "$work/demo.yaml" --json stats >"$work/stats.json" 2>/dev/null
json_true "stats --json: microsoft's late bounce and yahoo's complaint" "$work/stats.json" \
  "sum(r['late_bounces'] for r in d['rows'] if r['provider'] == 'microsoft') == 1 and sum(r['complaints'] for r in d['rows'] if r['provider'] == 'yahoo') == 1"
# Placement: what `feedback poll` found in the seeds equals what the sandbox put where.
"$IPWARM" -p "$work/demo.yaml" --json placement --by provider >"$work/placement.json" 2>"$work/placement.err"
check "ipwarm placement --json exits 0 ($(tail -1 "$work/placement.err"))" test $? -eq 0
"$py" - "$sb/smtpd.jsonl" "$work/placement.json" <<'EOF' >"$work/placement.out"
import json, sys
prov = {"gmail.test": "gmail", "outlook.test": "microsoft", "yahoo.test": "yahoo", "example.test": "other"}
want = {}
for e in map(json.loads, open(sys.argv[1])):
    if e["ev"] == "placed" and e["delivered"]:
        w = want.setdefault(prov[e["rcpt"].split("@")[1]], [0, 0, 0])
        w[0] += 1
        w[1 if e["folder"] == "INBOX" else 2] += 1
got = {r["provider"]: [r["sent"], r["inbox"], r["junk"]] for r in json.load(open(sys.argv[2]))["rows"]}
print(("ok: " if got == want else "FAIL: ") + "placement per provider [sent, inbox, junk] %s equals what the sandbox filed %s" % (got, want))
ok = want.get("gmail") == [3, 2, 1]
print(("ok: " if ok else "FAIL: ") + "gmail filed every third of its three seed copies as spam: %s" % want.get("gmail"))
EOF
tally "$work/placement.out"
check "every seed copy is placed in inbox or junk after the poll" \
  test "$(q "SELECT count(*) FROM placements WHERE result IN ('inbox', 'junk')")" = "$n_seeds"
"$IPWARM" -p "$work/demo.yaml" trace seed3@gmail.test >"$work/trace-seed.out" 2>&1
check "trace of gmail's third seed shows its copy in [Gmail]/Spam" grep -qE '^  placement: junk, folder \[Gmail\]/Spam, found ' "$work/trace-seed.out"
"$IPWARM" -p "$work/demo.yaml" trace late1@outlook.test >"$work/trace.out" 2>&1
check "trace late1 shows the bounce read under its attempt" grep -qE '^  bounce read .*matched by verp.*5\.1\.10' "$work/trace.out"
"$IPWARM" -p "$work/demo.yaml" --json feedback poll >"$work/poll2.json" 2>"$work/poll2.err"
check "a second poll exits 0" test $? -eq 0
check "a second poll adds no report" test "$(q "SELECT count(*) FROM feedback_reports")" = 2

# --- Microsoft switched to the block-list reply ----------------------------------------------------
"$sandbox" mode microsoft blocklist --dir "$sb" >"$work/mode.out" 2>&1
check "sandbox mode microsoft blocklist exits 0" test $? -eq 0
check "the mode file says blocklist" test "$(cat "$sb/microsoft.mode" 2>/dev/null)" = blocklist
"$IPWARM" -p "$work/demo.yaml" resume microsoft >/dev/null 2>"$work/resume.err"
check "ipwarm resume microsoft exits 0 ($(tail -1 "$work/resume.err"))" test $? -eq 0
"$IPWARM" -p "$work/demo.yaml" run --for 4s >/dev/null 2>"$work/run2.err"
check "a second run exits 0 ($(tail -1 "$work/run2.err"))" test $? -eq 0
"$IPWARM" -p "$work/demo.yaml" --json status >"$work/status2.json" 2>/dev/null
json_true "microsoft: suspended for 24 h by the block-list rule after the S3150 reply" "$work/status2.json" \
  "any(a['action'] == 'suspend' and a['rule'] == 'microsoft-block-list' and '(S3150)' in a['reason'] for a in ${P/\%s/microsoft}['actions'])"
"$sandbox" mode microsoft normal --dir "$sb" >/dev/null 2>&1
check "mode normal removes the mode file" test ! -e "$sb/microsoft.mode"

# --- stop: nothing left -------------------------------------------------------------------------------
"$sandbox" stop --dir "$sb" >"$work/stop.out" 2>&1
check "sandbox stop exits 0 ($(tail -1 "$work/stop.out"))" test $? -eq 0
# A process that has exited but is not yet reaped by init (a zombie, state Z) runs nothing.
running_pid() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}
left=""
for p in $pids $dovecot_procs; do running_pid "$p" && left+="$p "; done
check "no pid of the sandbox (Dovecot's children included) is alive after stop (left: $left)" test -z "$left"
# Dovecot's children name no config on their command line: look for any process still running
# from the sandbox directory (its working directory or root).
inside=""
for p in /proc/[0-9]*; do
  for l in cwd root; do
    case "$(readlink "$p/$l" 2>/dev/null)/" in "$sb/"*) inside+="${p#/proc/} " ;; esac
  done
done
check "no process runs inside the sandbox directory after stop (found: $inside)" test -z "$inside"
# Anything at all whose command line names the sandbox directory (pgrep -f, by the directory).
others=$(pgrep -f -- "$sb/" | tr '\n' ' ')
check "no process names the sandbox directory after stop (found: $others)" test -z "$others"
"$py" - "$net" "$sport" "$dport" "$iport" "$lport" <<'EOF'
import socket, sys
net, sport, dport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bad = []
for port in map(int, sys.argv[4:6]):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((net + ".7", port))
    except OSError as exc:
        bad.append("%s.7:%d %s" % (net, port, exc))
    s.close()
for host in ("%s.%d" % (net, i) for i in range(2, 7)):
    s = socket.socket()
    # Connections just closed linger in TIME_WAIT; only a listener still there is a failure.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, sport))
    except OSError as exc:
        bad.append("%s:%d %s" % (host, sport, exc))
    s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.bind((net + ".53", dport))
except OSError as exc:
    bad.append("%s.53:%d %s" % (net, dport, exc))
print(("ok: every sandbox port is free again" if not bad else "FAIL: still bound: %s" % bad))
sys.exit(1 if bad else 0)
EOF
if [ $? -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
"$sandbox" status --dir "$sb" >"$work/status3.out" 2>&1
check "sandbox status exits non-zero when stopped" test $? -ne 0
check "status says stopped" grep -q "smtpd: stopped" "$work/status3.out"
check "status says Dovecot stopped" grep -q "dovecot: stopped" "$work/status3.out"

# --- started again: empty mailboxes, then seed copies where each provider files them ------------
check "a second start exits 0" sandbox_start start2
imap bounces@sandbox.test examine INBOX >"$work/empty.out" 2>&1
check "a new start begins with empty mailboxes ($(head -c 200 "$work/empty.out"))" grep -q "exists=0" "$work/empty.out"
# Through each provider's MX, with STARTTLS, as ipwarm would: one copy to each of Gmail's 3
# seeds (the 3rd copy is spam there), one to each other seed (their inbox).
"$py" - "$net" "$sport" <<'EOF' >"$work/seeds.out" 2>&1
import smtplib, ssl, sys
net, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
sends = [("2", "seed1@gmail.test", 1), ("2", "seed2@gmail.test", 2), ("2", "seed3@gmail.test", 3),
         ("3", "seed@outlook.test", 4), ("4", "seed@yahoo.test", 5), ("5", "seed@example.test", 6)]
for host, rcpt, n in sends:
    msg = ("From: Sandbox Demo <news@sandbox.test>\r\nTo: %s\r\nSubject: Seed copy %d\r\n"
           "Message-ID: <seed-%d@mx1.sandbox.test>\r\nX-Ipwarm-Id: seed-%d\r\n\r\nCopy %d.\r\n"
           % (rcpt, n, n, n, n)).encode()
    with smtplib.SMTP("%s.%s" % (net, host), port, "mx1.sandbox.test", timeout=30) as s:
        s.starttls(context=ctx)
        s.ehlo("mx1.sandbox.test")
        s.sendmail("bounces@sandbox.test", [rcpt], msg)
    print("ok: seed copy %d accepted for %s" % (n, rcpt))
EOF
tally "$work/seeds.out"
"$py" - "$sb/smtpd.jsonl" <<'EOF' >"$work/placed.out"
import json, sys, time
end = time.time() + 60
while time.time() < end:
    placed = [json.loads(l) for l in open(sys.argv[1])]
    # the warm-up's copies (ids of ipwarm's own) are in the same log, before the restart
    placed = [e for e in placed if e["ev"] == "placed" and e["ipwarm_id"].startswith("seed-")]
    if len(placed) >= 6:
        break
    time.sleep(0.2)
got = sorted((e["ipwarm_id"], e["folder"], e["delivered"]) for e in placed)
want = [("seed-1", "INBOX", True), ("seed-2", "INBOX", True), ("seed-3", "[Gmail]/Spam", True),
        ("seed-4", "INBOX", True), ("seed-5", "INBOX", True), ("seed-6", "INBOX", True)]
print(("ok: " if got == want else "FAIL: ") + "the sandbox placed each copy: %s" % got)
EOF
tally "$work/placed.out"
# Each seed, read over IMAP: its copy in INBOX or in the junk folder, and not in the other.
for s in "seed1@gmail.test|[Gmail]/Spam|1|INBOX" "seed2@gmail.test|[Gmail]/Spam|2|INBOX" \
  "seed3@gmail.test|[Gmail]/Spam|3|[Gmail]/Spam" "seed@outlook.test|Junk Email|4|INBOX" \
  "seed@yahoo.test|Bulk|5|INBOX" "seed@example.test|Junk|6|INBOX"; do
  IFS='|' read -r user junk n where <<<"$s"
  imap "$user" examine INBOX search X-Ipwarm-Id "seed-$n" examine "$junk" \
    search X-Ipwarm-Id "seed-$n" >"$work/seed.out" 2>&1
  want="uids 1|uids|"
  [ "$where" = INBOX ] || want="uids|uids 1|"
  check "$user: copy $n in $where only ($(tr '\n' ' ' <"$work/seed.out"))" \
    test "$(sed -n '2p;4p' "$work/seed.out" | tr '\n' '|')" = "$want"
done
"$sandbox" stop --dir "$sb" >"$work/stop2.out" 2>&1
check "the second stop exits 0 ($(tail -1 "$work/stop2.out"))" test $? -eq 0
others=$(pgrep -f -- "$sb/" | tr '\n' ' ')
check "nothing names the sandbox directory after the second stop (found: $others)" test -z "$others"

finish
