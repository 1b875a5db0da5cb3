#!/usr/bin/env bash
# `ipwarm feedback poll` end to end, against real servers on loopback: a run sends through
# tests/servers/smtpd.py (dnsmasq gives the MX hosts), which accepts every message and then
# mails back a DSN late bounce and an ARF complaint over LMTP into a real Dovecot
# (tests/lib/servers.sh); more reports are delivered by hand: a bounce that names its message
# only by the VERP address it came to, a DSN matched only by the original's Message-ID, one
# matched only by the X-Ipwarm-Id of its returned headers (a relay replaced the Message-ID), a
# delay notice, a bounce of a message ipwarm never sent, and an auto-reply. The poll must match each
# to its attempt (sqlite3 rows), turn the late bounces into bounced attempts that keep their
# 250, suppress the right recipients, count the complaint, leave the mailbox unchanged (and
# `metrics` and the report give the counts and the poll time the store holds); a
# second poll must change nothing, a UIDVALIDITY change must not count anything twice, and a
# wrong password must exit 69 with the password in no output and nowhere in the state file.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3 dovecot doveadm
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-fbpoll-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
PY=$SERVERS_PY

pw='Fb-p0ll-Secret-4417'
must "dovecot started" dovecot_start "bounces:$pw"
net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" gmail yahoo)
port=$(free_port)
must "smtpd.py started" smtpd_start fb "[
 $(plans_listener gmail "$net" "$port" '"complain": {"regex": "^complain1@"}'),
 $(plans_listener yahoo "$net" "$port" '"late_bounce": {"regex": "^late1@", "format": "dsn", "status": "5.1.1"}')
]" "\"deliver\": {\"lmtp\": \"127.0.0.1:$DOVECOT_LMTP_PORT\"}, \"maildir\": \"$work/sent\""

printf '%s\n' complain1@gmail.test g1@gmail.test g2@gmail.test late1@yahoo.test late2@yahoo.test \
  late3@yahoo.test late4@yahoo.test y1@yahoo.test y2@yahoo.test >"$work/list.txt"
plans_message "$work"
{ plans_head fb-test "$net" "$port"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Feedback test", text_file: message.txt}
recipients: {file: list.txt}
ramp: {start: 600/min, growth: 2, max: 600/min}
feedback:
  mailbox: {url: "imap://127.0.0.1:$DOVECOT_IMAP_PORT/INBOX", username: bounces,
            password_env: FB_TEST_PASSWORD, tls: none}
  verp: true
  feedback_id: "{{campaign}}:{{ip}}:{{provider}}:fbtest"
EOF
db=$work/ipwarm.db
q() { sqlite3 "$db" "$1"; }
export FB_TEST_PASSWORD=$pw

"$IPWARM" -p "$work/plan.yaml" --now 2026-12-01T10:00:00Z run --for 20s >"$work/run.out" 2>"$work/run.err"
check "run exits 0 ($(tail -n 2 "$work/run.err"))" test $? -eq 0
check "nine messages delivered" test "$(q "SELECT count(*) FROM attempts WHERE outcome = 'delivered'")" = 9

# --- what was sent: VERP return paths recorded, X-Ipwarm-Id and Message-ID in the message ------
check "every attempt records a VERP envelope sender bounces+TOKEN@example.com" \
  test "$(q "SELECT count(*) FROM attempts WHERE mail_from GLOB 'bounces+[a-z2-7]*@example.com' AND length(mail_from) = 44")" = 9
check "the MAIL FROM the server saw is the one recorded, for every attempt" "$PY" - "$SMTPD_LOG" "$db" <<'PYEOF'
import json, re, sqlite3, sys
seen = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["ev"] == "message":
        for r in e["rcpts"]:
            seen[r] = re.match(r"<([^>]*)>", e["mail_from"]).group(1)
rows = sqlite3.connect(sys.argv[2]).execute("SELECT recipient, mail_from FROM attempts").fetchall()
sys.exit(0 if rows and all(seen.get(r) == m for r, m in rows) else 1)
PYEOF
check "every message carries X-Ipwarm-Id with its Message-ID's contents" "$PY" - "$work/sent" <<'PYEOF'
import glob, re, sys
files = glob.glob(sys.argv[1] + "/*.eml")
for path in files:
    head = open(path, "rb").read().decode().split("\r\n\r\n", 1)[0]
    mid = re.search(r"(?im)^Message-ID: <([^>]+)>", head)
    xid = re.search(r"(?im)^X-Ipwarm-Id: (\S+)", head)
    if not mid or not xid or mid.group(1) != xid.group(1) or not mid.group(1).startswith("fb-test."):
        sys.exit(1)
sys.exit(0 if len(files) == 9 else 1)
PYEOF
check "every message carries one Feedback-ID: campaign:source IP:provider:fbtest" "$PY" - "$work/sent" "$net.1" <<'PYEOF'
import glob, re, sys
files = glob.glob(sys.argv[1] + "/*.eml")
want = {"gmail": 0, "yahoo": 0}
for path in files:
    data = open(path, "rb").read().decode()
    head = data.split("\r\n\r\n", 1)[0]
    to = re.search(r"(?im)^To: .*@(\w+)\.test", head).group(1)
    fid = re.findall(r"(?im)^Feedback-ID: ([^\r\n]*)", head)
    if fid != ["fb-test:%s:%s:fbtest" % (sys.argv[2], to)]:
        print("%s: Feedback-ID %s" % (path, fid), file=sys.stderr)
        sys.exit(1)
    want[to] += 1
sys.exit(0 if want == {"gmail": 3, "yahoo": 6} else 1)
PYEOF

# --- wait until smtpd.py tried its late bounce and its complaint ---------------------------------
"$PY" - "$SMTPD_LOG" >"$work/wait.out" <<'PYEOF'
import json, sys, time
end = time.time() + 60
while True:
    ev = [json.loads(l) for l in open(sys.argv[1])]
    got = [e for e in ev if e["ev"] in ("late-bounce", "complaint")]
    if len(got) == 2 or time.time() > end:
        break
    time.sleep(0.1)
ok = len(got) == 2 and all(e["delivered"] for e in got)
print(("ok: " if ok else "FAIL: ") + "smtpd.py delivered its late bounce and its complaint: %s" % got)
PYEOF
tally "$work/wait.out"

# --- reports delivered by hand ------------------------------------------------------------------
verp2=$(q "SELECT mail_from FROM attempts WHERE recipient = 'late2@yahoo.test'")
mid3=$(q "SELECT message_id FROM attempts WHERE recipient = 'late3@yahoo.test'")
midy1=$(q "SELECT message_id FROM attempts WHERE recipient = 'y1@yahoo.test'")
mid4=$(q "SELECT message_id FROM attempts WHERE recipient = 'late4@yahoo.test'")
xid4=${mid4#<}
xid4=${xid4%>}
lmtp() { # RCPT FILE: delivers FILE over LMTP to RCPT (as a bounce to the return path arrives)
  "$PY" - "$DOVECOT_LMTP_PORT" "$1" "$2" <<'PYEOF'
import smtplib, sys
msg = open(sys.argv[3], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
with smtplib.LMTP("127.0.0.1", int(sys.argv[1]), timeout=20) as l:
    sys.exit(1 if l.sendmail("", [sys.argv[2]], msg) else 0)
PYEOF
}
# A qmail bounce that quotes nothing of the original: only the VERP address it came to names it.
cat >"$work/verp-only.eml" <<EOF
Return-Path: <>
From: MAILER-DAEMON@mx.yahoo.test
To: $verp2
Subject: failure notice
Message-ID: <qmail-verp-only.1@mx.yahoo.test>
Date: Tue, 01 Dec 2026 10:30:00 +0000

Hi. This is the qmail-send program at mx.yahoo.test.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<late2@yahoo.test>:
550 5.1.1 late2@yahoo.test: mailbox unavailable

--- Below this line is the original message.

EOF
lmtp "$verp2" "$work/verp-only.eml"
check "the VERP-only bounce was delivered" test $? -eq 0
dsn() { # MESSAGE-ID RCPT ACTION STATUS REPORT-ID: an RFC 3464 DSN sent to the plain return path
  cat <<EOF
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@relay.example.net>
To: bounces@example.com
Subject: Delivery Status Notification
Message-ID: <$5@relay.example.net>
Date: Tue, 01 Dec 2026 10:31:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered to $2.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.net

Final-Recipient: rfc822; $2
Action: $3
Status: $4
Diagnostic-Code: smtp; 550 $4 $2 no such user

--b1
Content-Type: text/rfc822-headers

From: Example <news@example.com>
To: $2
Subject: Feedback test
Message-ID: $1

--b1--
EOF
}
dsn "$mid3" late3@yahoo.test failed 5.1.1 dsn-mid3 >"$work/mid.eml"
dsn "$midy1" y1@yahoo.test delayed 4.4.7 dsn-delay >"$work/delay.eml"
dsn "<never.sent.1@example.com>" nobody@yahoo.test failed 5.1.1 dsn-unmatched >"$work/unmatched.eml"
# A relay replaced the Message-ID: only the X-Ipwarm-Id of the returned headers names it.
dsn "<rewritten.77@relay.example.net>" late4@yahoo.test failed 5.2.2 dsn-xid |
  sed "s/^Message-ID: <rewritten.77@relay.example.net>\$/&\nX-Ipwarm-Id: $xid4/" >"$work/xid.eml"
cat >"$work/ooo.eml" <<EOF
From: Somebody <g2@gmail.test>
To: bounces@example.com
Subject: Out of office: Feedback test
Auto-Submitted: auto-replied
Message-ID: <ooo.1@gmail.test>
Date: Tue, 01 Dec 2026 10:32:00 +0000

I am away until Monday.
EOF
for f in mid delay unmatched ooo xid; do
  dovecot_deliver bounces INBOX "$work/$f.eml"
  check "the $f message was delivered" test $? -eq 0
done
maildir=$DOVECOT_DIR/mail/bounces/Maildir
check "the X-Ipwarm-Id-only bounce quotes the header" grep -qx "X-Ipwarm-Id: $xid4" "$work/xid.eml"
check "eight messages in the mailbox" test "$(find "$maildir" -path '*/new/*' -type f | wc -l)" -eq 8

# --- the first poll -------------------------------------------------------------------------------
"$IPWARM" -p "$work/plan.yaml" --now 2026-12-01T11:00:00Z --json feedback poll >"$work/poll1.json" 2>"$work/poll1.err"
check "feedback poll exits 0 ($(head -c 300 "$work/poll1.err"))" test $? -eq 0
check "no sanitizer report" clean "$work/poll1.err"
counts() { "$PY" -c 'import json,sys; m=json.load(open(sys.argv[1]))["mailboxes"][0]; print(" ".join(str(m[k]) for k in ("new","bounces","delays","complaints","placements","unmatched","other")), m["error"])' "$1"; }
check "poll 1: 8 new: 4 bounces, 1 delay, 1 complaint, 0 placements, 1 unmatched, 1 other ($(counts "$work/poll1.json"))" \
  test "$(counts "$work/poll1.json")" = "8 4 1 1 0 1 1 None"
check "poll 1 names the mailbox" grep -q "\"name\": \"imap://127.0.0.1:$DOVECOT_IMAP_PORT/INBOX\"" "$work/poll1.json"
state() { q "SELECT state FROM recipients WHERE address = '$1'"; }
for r in late1@yahoo.test late2@yahoo.test late3@yahoo.test late4@yahoo.test complain1@gmail.test; do
  check "$r is suppressed" test "$(state $r)" = suppressed
done
for r in g1@gmail.test g2@gmail.test y1@yahoo.test y2@yahoo.test; do
  check "$r is not suppressed (done)" test "$(state $r)" = done
done
check "the four late bounces turned their attempts into bounced, keeping the 250" \
  test "$(q "SELECT group_concat(recipient || ':' || outcome || ':' || code, ' ') FROM (SELECT * FROM attempts WHERE outcome = 'bounced' ORDER BY recipient)")" \
  = "late1@yahoo.test:bounced:250 late2@yahoo.test:bounced:250 late3@yahoo.test:bounced:250 late4@yahoo.test:bounced:250"
check "each report matched as expected" \
  test "$(q "SELECT group_concat(kind || ':' || coalesce(recipient, '-') || ':' || coalesce(matched_by, 'unmatched'), ' ') FROM (SELECT * FROM feedback_reports ORDER BY kind, recipient)")" \
  = "bounce:late1@yahoo.test:verp bounce:late2@yahoo.test:verp bounce:late3@yahoo.test:message-id bounce:late4@yahoo.test:header bounce:nobody@yahoo.test:unmatched complaint:complain1@gmail.test:verp delay:y1@yahoo.test:message-id other:-:unmatched"
check "the unmatched bounce is kept with its text" \
  test "$(q "SELECT count(*) FROM feedback_reports WHERE matched_by IS NULL AND kind = 'bounce' AND text LIKE '%never.sent.1@example.com%'")" = 1
check "the hourly counters: yahoo: 4 of its 6 delivered moved to bounced as late bounces; gmail: 1 complaint" \
  test "$(q "SELECT group_concat(provider || ':' || delivered || ':' || bounced || ':' || late_bounces || ':' || complaints, ' ') FROM (SELECT provider, sum(delivered) delivered, sum(bounced) bounced, sum(late_bounces) late_bounces, sum(complaints) complaints FROM summary_hourly GROUP BY provider ORDER BY provider)")" \
  = "gmail:3:0:0:1 yahoo:2:4:4:0"
check "the complaint is counted in the hour its message was sent" \
  test "$(q "SELECT hour_ms FROM summary_hourly WHERE complaints > 0")" = "$(( $(date -u -d 2026-12-01T10:00:00Z +%s) * 1000 ))"
check "nothing in the mailbox was marked or removed" \
  test "$(find "$maildir" -path '*/new/*' -type f | wc -l):$(find "$maildir" -type f -name '*:2,*S*' | wc -l)" = "8:0"

# --- trace and stats show it ---------------------------------------------------------------------
"$IPWARM" -p "$work/plan.yaml" trace late2@yahoo.test >"$work/trace.out" 2>&1
check "trace exits 0" test $? -eq 0
check "trace shows the late bounce under its attempt, with when it was read and its text" \
  grep -qE '^  bounce read 2026-12-01T11:00:00[.0-9]*\+00:00 \(qmail, matched by verp\): 5\.1\.1 550 5\.1\.1 late2@yahoo\.test: mailbox unavailable$' "$work/trace.out"
check "trace: the attempt itself still shows its 250" grep -q '^  reply 250' "$work/trace.out"
"$IPWARM" -p "$work/plan.yaml" --json trace complain1@gmail.test >"$work/trace.json" 2>&1
check "trace --json: the complaint under the attempt, and the attempt's envelope sender" "$PY" - "$work/trace.json" "$db" <<'PYEOF'
import json, sqlite3, sys
a = json.load(open(sys.argv[1]))
mf = sqlite3.connect(sys.argv[2]).execute("SELECT mail_from FROM attempts WHERE recipient = 'complain1@gmail.test'").fetchone()[0]
sys.exit(0 if len(a) == 1 and a[0]["mail_from"] == mf and [(r["kind"], r["matched_by"], r["format"]) for r in a[0]["reports"]] == [("complaint", "verp", "arf")] else 1)
PYEOF
"$IPWARM" -p "$work/plan.yaml" --json stats >"$work/stats.json" 2>&1
check "stats --json: yahoo 4 late bounces among 4 bounced; gmail 1 complaint over its 3 delivered" "$PY" - "$work/stats.json" <<'PYEOF'
import json, sys
rows = {r["provider"]: r for r in json.load(open(sys.argv[1]))["rows"]}
y, g = rows["yahoo"], rows["gmail"]
ok = (y["late_bounces"], y["bounced"], y["delivered"], y["complaints"]) == (4, 4, 2, 0) and \
     (g["complaints"], g["delivered"], g["late_bounces"]) == (1, 3, 0) and abs(g["complaint_rate"] - 1 / 3) < 1e-4
sys.exit(0 if ok else 1)
PYEOF
"$IPWARM" -p "$work/plan.yaml" stats >"$work/stats.out" 2>&1
check "stats table: the feedback columns" grep -q 'BNCE%  LATE CMPL  CMPL%$' "$work/stats.out"
check "stats table: gmail's complaint rate" grep -qE '^2026-12-01 +gmail .* 0 +1 33\.33%$' "$work/stats.out"
"$IPWARM" -p "$work/plan.yaml" stats --format csv >"$work/stats.csv" 2>&1
check "stats csv: complaints, complaint_rate, late_bounces" "$PY" - "$work/stats.csv" <<'PYEOF'
import csv, sys
rows = {r["provider"]: r for r in csv.DictReader(open(sys.argv[1], newline=""))}
sys.exit(0 if (rows["gmail"]["complaints"], rows["gmail"]["complaint_rate"], rows["yahoo"]["late_bounces"]) == ("1", "0.3333", "4") else 1)
PYEOF

# --- metrics and the report show the same ----------------------------------------------------------
"$IPWARM" -p "$work/plan.yaml" --now 2026-12-01T11:05:00Z metrics >"$work/metrics.prom" 2>"$work/metrics.err"
check "metrics exits 0 ($(tail -1 "$work/metrics.err"))" test $? -eq 0
for prov in gmail yahoo; do
  for m in late_bounces complaints; do
    want=$(q "SELECT 'ipwarm_${m}_total{provider=\"$prov\"} ' || sum($m) FROM summary_hourly WHERE provider = '$prov'")
    check "metrics: $want, as stored" grep -qxF "$want" "$work/metrics.prom"
  done
done
want=$(q "SELECT printf('ipwarm_feedback_poll_timestamp_seconds{mailbox=\"%s\"} %.3f', name, polled_ms / 1000.0) FROM feedback_mailboxes")
check "metrics: the mailbox's last poll, as stored ($want)" grep -qxF "$want" "$work/metrics.prom"
# --now starts the clock; it moves on as the poll runs.
t0=$(( $(date -u -d 2026-12-01T11:00:00Z +%s) * 1000 ))
check "... taken at the poll's --now" test "$(q "SELECT polled_ms >= $t0 AND polled_ms < $t0 + 60000 FROM feedback_mailboxes")" = 1
if command -v promtool >/dev/null; then
  check "promtool accepts the metrics" promtool check metrics <"$work/metrics.prom"
fi
"$IPWARM" -p "$work/plan.yaml" --now 2026-12-01T11:05:00Z report -o "$work/report.html" 2>"$work/report.err"
check "report exits 0 ($(tail -1 "$work/report.err"))" test $? -eq 0
want=$(q "SELECT printf('<td class=\"n\">%d</td><td class=\"n\">%d</td><td class=\"n\">%.2f%%</td></tr>', sum(late_bounces), sum(complaints), 100.0 * sum(complaints) / max(sum(delivered), 1)) FROM summary_hourly WHERE provider = 'yahoo'")
check "report totals: yahoo's late bounces, complaints and complaint rate as stored ($want)" \
  grep -qF -- "<td class=\"\">yahoo</td>" <(grep -F -- "$want" "$work/report.html")
hour=$(q "SELECT strftime('%Y-%m-%dT%H:00:00+00:00', hour_ms / 1000, 'unixepoch') || ' complaints: ' || complaints FROM summary_hourly WHERE complaints > 0")
check "report chart: gmail's complaint in the hour its message went out ($hour)" grep -qF "<title>$hour</title>" "$work/report.html"

# --- a second poll changes nothing -----------------------------------------------------------------
snap() { q "SELECT * FROM feedback_reports ORDER BY id; SELECT * FROM attempts ORDER BY id; SELECT * FROM summary_hourly ORDER BY provider, hour_ms; SELECT address, state FROM recipients ORDER BY address"; }
snap >"$work/snap1"
"$IPWARM" -p "$work/plan.yaml" --now 2026-12-01T11:10:00Z --json feedback poll >"$work/poll2.json" 2>"$work/poll2.err"
check "poll 2 exits 0" test $? -eq 0
check "poll 2 reads nothing new ($(counts "$work/poll2.json"))" test "$(counts "$work/poll2.json")" = "0 0 0 0 0 0 0 None"
snap >"$work/snap2"
check "poll 2 changed no row" cmp -s "$work/snap1" "$work/snap2"

# --- the folder's UIDVALIDITY changes: everything is read again, nothing counted twice ------------
old_validity=$(q "SELECT uidvalidity FROM feedback_mailboxes")
new_validity=$((old_validity + 1000))
doveadm -c "$DOVECOT_DIR/dovecot.conf" mailbox update -u bounces --uid-validity "$new_validity" INBOX 2>"$work/doveadm.err"
check "doveadm set a new UIDVALIDITY ($(head -c 200 "$work/doveadm.err"))" test $? -eq 0
dovecot_deliver bounces INBOX "$work/ooo.eml" # the same auto-reply again: same Message-ID
"$IPWARM" -p "$work/plan.yaml" --now 2026-12-01T11:20:00Z --json feedback poll >"$work/poll3.json" 2>"$work/poll3.err"
check "poll 3 exits 0" test $? -eq 0
check "poll 3 after the UIDVALIDITY change counts nothing twice ($(counts "$work/poll3.json"))" \
  test "$(counts "$work/poll3.json")" = "0 0 0 0 0 0 0 None"
check "the checkpoint moved to the new UIDVALIDITY and the last of 9 messages" \
  test "$(q "SELECT uidvalidity || ' ' || last_uid FROM feedback_mailboxes")" = "$new_validity 9"
snap >"$work/snap3"
check "poll 3 changed no report, attempt, counter or recipient" cmp -s "$work/snap1" "$work/snap3"

# --- a table for people ------------------------------------------------------------------------------
"$IPWARM" -p "$work/plan.yaml" --now 2026-12-01T11:30:00Z feedback poll >"$work/poll4.out" 2>&1
check "the table names its columns" grep -q '^MAILBOX .*NEW .*BOUNCES .*DELAYS .*COMPLAINTS .*PLACEMENTS .*UNMATCHED .*OTHER$' "$work/poll4.out"

# --- a wrong password --------------------------------------------------------------------------------
wrong='Wr0ng-Fb-Password-77'
FB_TEST_PASSWORD=$wrong "$IPWARM" -p "$work/plan.yaml" --json feedback poll >"$work/wrong.out" 2>"$work/wrong.err"
check "wrong password: exit 69" test $? -eq 69
check "wrong password: a clear sentence naming the mailbox, the user and where the password came from" \
  grep -q "IMAP mailbox imap://127.0.0.1:$DOVECOT_IMAP_PORT (user bounces): the server refused the login (check the password in \$FB_TEST_PASSWORD)" "$work/wrong.err"
check "wrong password: the JSON document carries the error" grep -q '"error": "IMAP mailbox' "$work/wrong.out"
check "wrong password: in no output" bash -c "! grep -q -e '$wrong' -e '$pw' '$work/wrong.out' '$work/wrong.err' '$work'/poll*.json '$work'/poll*.err '$work/poll4.out'"
check "no password in the state file" bash -c "! grep -a -q -e '$wrong' -e '$pw' '$db' '$db-wal' 2>/dev/null"
# --- run polls too, even when every recipient is done ------------------------------------------
midy2=$(q "SELECT message_id FROM attempts WHERE recipient = 'y2@yahoo.test'")
dsn "$midy2" y2@yahoo.test delayed 4.2.2 dsn-delay-y2 >"$work/delay2.eml"
dovecot_deliver bounces INBOX "$work/delay2.eml"
"$IPWARM" -p "$work/plan.yaml" --now 2026-12-01T12:00:00Z run --for 10s >"$work/run2.out" 2>"$work/run2.err"
check "a run with nothing left to send exits 0 ($(tail -n 1 "$work/run2.err"))" test $? -eq 0
check "that run read the new delay notice and matched it" \
  test "$(q "SELECT kind || ' ' || matched_by FROM feedback_reports WHERE recipient = 'y2@yahoo.test'")" = "delay message-id"
check "that run sent nothing" test "$(q "SELECT count(*) FROM attempts")" = 9

unset FB_TEST_PASSWORD
"$IPWARM" -p "$work/plan.yaml" feedback poll >"$work/nopw.out" 2>"$work/nopw.err"
check "no password set: exit 78 naming the variable" bash -c "[ $? -eq 78 ] && grep -q FB_TEST_PASSWORD '$work/nopw.err'"

finish
