#!/usr/bin/env bash
# What tests/servers/smtpd.py does after its 250, against a real Dovecot on loopback
# (tests/lib/servers.sh: dovecot_start): the late bounces of every format (late_bounce: dsn,
# microsoft, microsoft-text, yahoo; "every", "status", "diagnostic", "delay_ms"), complaint
# reports (complain: to the envelope sender, or to an address of its own), seed copies filed in
# INBOX or in a junk folder named as Gmail names it (seeds: junk_every, junk_regex), and the
# failures that must not stop the server: a mailbox server that is not there, a message from
# the null sender, a config error at start. Messages are sent with Python's smtplib as ipwarm
# sends them (a VERP return path, Message-ID, X-Ipwarm-Id); what arrived is read from the
# Maildir and classified by ipwarm itself (`ipwarm --json feedback parse`), and compared with
# the table below, written from the config, not from the output.
# Environment (set by ctest): IPWARM = the binary, SRCDIR = the source tree.
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}"
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRCDIR/tests/lib/assert.sh"
. "$SRCDIR/tests/lib/servers.sh"
work=$(mktemp -d)
servers_init "$work"
PY=$SERVERS_PY

dovecot_start "bounces:pw-b0unces" "fbl:pw-fbl" "seed:pw-seed" || { bad "dovecot started"; finish; exit 1; }
ok "dovecot started (LMTP on 127.0.0.1:$DOVECOT_LMTP_PORT)"
# Gmail's junk folder, as Gmail names it; the LMTP recipient "seed+[Gmail]/Spam" must be quoted.
doveadm -c "$DOVECOT_DIR/dovecot.conf" mailbox create -u seed '[Gmail]/Spam' 2>"$work/doveadm.err"
check "the [Gmail]/Spam folder was created ($(head -c 200 "$work/doveadm.err"))" test $? -eq 0
mail=$DOVECOT_DIR/mail

# One listener per behaviour; "broken" delivers to a port where nothing listens.
p_gmail=$(free_port) p_dsn=$(free_port) p_ms=$(free_port) p_outlook=$(free_port)
p_yahoo=$(free_port) p_broken=$(free_port)
closed_tcp_start || exit 1
dead=$CLOSED_PORT
cat >"$work/listeners.json" <<EOF
[
 {"name": "gmail", "host": "127.0.0.1", "port": $p_gmail, "hostname": "gmail-smtp-in.l.google.com",
  "seeds": {"regex": "^seed@", "junk_every": 3, "junk_regex": "^Subject:.*\\\\bFREE\\\\b",
            "junk_folder": "[Gmail]/Spam"},
  "complain": {"regex": "^complain"}},
 {"name": "dsn", "host": "127.0.0.1", "port": $p_dsn, "hostname": "mx.example.test",
  "late_bounce": {"regex": "^late", "every": 2, "delay_ms": 500, "format": "dsn"}},
 {"name": "microsoft", "host": "127.0.0.1", "port": $p_ms,
  "hostname": "sandbox-test.olc.protection.outlook.com",
  "late_bounce": {"regex": "^late", "format": "microsoft"}},
 {"name": "outlook", "host": "127.0.0.1", "port": $p_outlook, "hostname": "outlook.example.test",
  "late_bounce": {"regex": "^late", "format": "microsoft-text", "status": "5.7.1",
                  "diagnostic": "550 5.7.1 {rcpt} is not allowed to receive mail from you"}},
 {"name": "yahoo", "host": "127.0.0.1", "port": $p_yahoo, "hostname": "mta5.am0.yahoodns.net",
  "late_bounce": {"regex": "^late", "format": "yahoo", "status": "5.2.1"},
  "complain": {"regex": "^complain", "to": "fbl@fbl.test", "user_agent": "Yahoo!-Mail-Feedback/2.0"}},
 {"name": "broken", "host": "127.0.0.1", "port": $p_broken, "hostname": "mx.broken.test",
  "deliver": {"lmtp": "127.0.0.1:$dead"},
  "late_bounce": {"regex": "^late"}, "seeds": {"regex": "^seed@"}}
]
EOF
smtpd_start mail "$(cat "$work/listeners.json")" "\"deliver\": {\"lmtp\": \"127.0.0.1:$DOVECOT_LMTP_PORT\"}" ||
  { bad "smtpd.py started"; finish; exit 1; }
ok "smtpd.py started with six listeners"

# --- send, as ipwarm does -------------------------------------------------------------------
# sends.tsv: n, listener, MAIL FROM, recipients (","), subject; message n has Message-ID
# <n.ipwarm@mx1.sandbox.test> and X-Ipwarm-Id ipw-n.
token=aaaaaaaaafzrasmwoppeyma6
verp=bounces+$token@sandbox.test
cat >"$work/sends.tsv" <<EOF
1	gmail	$verp	seed@gmail.test	FREE offer inside
2	gmail	$verp	seed@gmail.test	Hello
3	gmail	$verp	seed@gmail.test	Hello
4	gmail	$verp	seed@gmail.test	Hello
5	gmail	$verp	complain1@gmail.test	Hello
6	gmail	$verp	g1@gmail.test	Hello
7	dsn	$verp	late1@example.test	Hello
8	dsn	$verp	late2@example.test	Hello
9	dsn	$verp	late3@example.test,late4@example.test	Hello
10	dsn	$verp	other@example.test	Hello
11	microsoft	$verp	late5@outlook.test,late6@outlook.test	Hello Microsoft
12	microsoft		late9@outlook.test	A bounce of a bounce
13	outlook	$verp	late7@outlook.test	Hello Outlook
14	yahoo	$verp	late8@yahoo.test	Hello Yahoo
15	yahoo	$verp	complain2@yahoo.test	Hello Yahoo
16	broken	$verp	late10@example.test	Hello
17	broken	$verp	seed@broken.test	Hello
18	broken	$verp	x@broken.test	Still answering
EOF
"$PY" - "$work/sends.tsv" "$p_gmail" "$p_dsn" "$p_ms" "$p_outlook" "$p_yahoo" "$p_broken" \
  >"$work/send.out" 2>&1 <<'PYEOF'
import smtplib, sys
names = ["gmail", "dsn", "microsoft", "outlook", "yahoo", "broken"]
ports = dict(zip(names, map(int, sys.argv[2:])))
for line in open(sys.argv[1]):
    n, listener, mail_from, rcpts, subject = line.rstrip("\n").split("\t")
    rcpts = rcpts.split(",")
    msg = ("Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
           "From: Sandbox Demo <news@sandbox.test>\r\n"
           "To: %s\r\n"
           "Subject: %s\r\n"
           "Message-ID: <%s.ipwarm@mx1.sandbox.test>\r\n"
           "X-Ipwarm-Id: ipw-%s\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "\r\n"
           "Message %s.\r\n"
           ".A line that starts with a dot.\r\n" % (", ".join(rcpts), subject, n, n, n)).encode()
    with smtplib.SMTP("127.0.0.1", ports[listener], "mx1.sandbox.test", timeout=30) as s:
        refused = s.sendmail(mail_from, rcpts, msg)
    print("ok: message %s to %s accepted by %s%s" % (n, ",".join(rcpts), listener,
                                                     " (refused: %s)" % refused if refused else ""))
PYEOF
tally "$work/send.out"

# --- wait for every delivery to be tried (the log says so), 60 s at most ---------------------
# late-bounce: dsn 2 (every 2nd of late1..late4), microsoft 2 (one the null sender's), outlook,
# yahoo, broken: 7. complaint: gmail, yahoo: 2. placed: gmail 4, broken 1: 5.
"$PY" - "$SMTPD_LOG" <<'PYEOF' >"$work/wait.out"
import json, sys, time
want = {"late-bounce": 7, "complaint": 2, "placed": 5}
end = time.time() + 60
while True:
    got = {k: 0 for k in want}
    for line in open(sys.argv[1]):
        e = json.loads(line)
        if e["ev"] in got:
            got[e["ev"]] += 1
    if got == want or time.time() > end:
        break
    time.sleep(0.1)
print(("ok: " if got == want else "FAIL: ") + "every delivery was tried: %s (expected %s)" % (got, want))
PYEOF
tally "$work/wait.out"

# --- what arrived, classified by ipwarm ---------------------------------------------------------
for box in bounces fbl; do
  files=("$mail/$box/Maildir/new/"*)
  if [ -e "${files[0]}" ]; then
    "$IPWARM" --json feedback parse "${files[@]}" >"$work/$box.json" 2>"$work/$box.err"
    check "ipwarm feedback parse of $box's ${#files[@]} messages exits 0" test $? -eq 0
    check "no sanitizer report parsing $box's mail" clean "$work/$box.err"
  else
    echo '{"messages": []}' >"$work/$box.json"
  fi
done

"$PY" - "$SMTPD_LOG" "$work/bounces.json" "$work/fbl.json" "$mail" "$token" "$dead" \
  >"$work/checks.out" 2>&1 <<'PYEOF'
import glob, json, os, re, sys
log, bounces_json, fbl_json, mail, token, dead = sys.argv[1:]
events = [json.loads(l) for l in open(log)]
fails = []
def expect(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails.append(what)

def header(path, name):
    with open(path, "rb") as f:
        head = f.read().split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
    m = re.search(r"(?im)^%s:[ \t]*(.*)$" % re.escape(name), head)
    return m.group(1).strip() if m else None

reports = {}
for doc in (bounces_json, fbl_json):
    for m in json.load(open(doc))["messages"]:
        reports[header(m["file"], "Message-ID")] = m

# The late bounces: (listener, recipients, kind, format, status) written from the config above.
expected = [
    ("dsn", ["late2@example.test"], "rfc3464", "5.1.1", 8),
    ("dsn", ["late4@example.test"], "rfc3464", "5.1.1", 9),
    ("microsoft", ["late5@outlook.test", "late6@outlook.test"], "rfc3464", "5.1.10", 11),
    ("outlook", ["late7@outlook.test"], "microsoft", "5.7.1", 13),
    ("yahoo", ["late8@yahoo.test"], "yahoo", "5.2.1", 14),
]
lb = [e for e in events if e["ev"] == "late-bounce"]
for listener, rcpts, fmt, status, n in expected:
    ev = [e for e in lb if e["listener"] == listener and e["rcpts"] == rcpts]
    expect(len(ev) == 1 and ev[0]["delivered"], "%s: one late bounce for %s, delivered (%s)"
           % (listener, rcpts, [e.get("error") for e in ev]))
    if len(ev) != 1 or not ev[0]["delivered"]:
        continue
    e = ev[0]
    expect(e["to"] == "bounces+%s@sandbox.test" % token, "%s: the bounce went to the VERP return path %s" % (listener, e["to"]))
    r = reports.get(e["report_id"])
    expect(r is not None, "%s: the bounce %s is in the bounces mailbox" % (listener, e["report_id"]))
    if r is None:
        continue
    got = [(x["address"], x["action"], x["status"]) for x in r["recipients"]]
    expect(r["kind"] == "dsn" and r["format"] == fmt, "%s: ipwarm reads a dsn, format %s: %s/%s" % (listener, fmt, r["kind"], r["format"]))
    expect(got == [(a, "failed", status) for a in rcpts], "%s: recipients, action failed, status %s: %s" % (listener, status, got))
    expect(r["original_message_id"] == "<%d.ipwarm@mx1.sandbox.test>" % n and r["ipwarm_id"] == "ipw-%d" % n,
           "%s: the original's Message-ID and X-Ipwarm-Id come back: %s %s" % (listener, r["original_message_id"], r["ipwarm_id"]))
    expect(r["verp_token"] == token, "%s: the VERP token is found: %s" % (listener, r["verp_token"]))
    expect(header(r["file"], "Return-Path") == "<>", "%s: the bounce came from the null sender" % listener)
    diag = [x["diagnostic"] for x in r["recipients"]]
    if listener == "outlook":
        expect(diag == ["550 5.7.1 late7@outlook.test is not allowed to receive mail from you"], "outlook: the configured diagnostic, {rcpt} filled: %s" % diag)
    if listener == "yahoo":
        expect(diag and diag[0].startswith("554 5.2.1 delivery error") and "late8@yahoo.test" in diag[0], "yahoo: Yahoo's 554 text with the status: %s" % diag)
# every 2: late1 and late3 (the 1st and 3rd matching recipients of "dsn") got no bounce
expect(not [e for e in lb if e["listener"] == "dsn" and set(e["rcpts"]) & {"late1@example.test", "late3@example.test"}],
       "dsn: every 2nd matching recipient only (late1, late3 spared)")
# accept first: the SMTP dialogue of late2 ended with 250
conn = [e["conn"] for e in events if e["ev"] == "message" and e["rcpts"] == ["late2@example.test"]]
replies = [e["text"] for e in events if e["ev"] == "reply" and conn and e["conn"] == conn[0]]
expect(conn and "250 2.1.5 OK" in replies and "250 2.0.0 OK queued" in replies, "late2 was accepted with 250 at RCPT and DATA: %s" % replies)
# delay_ms 500: the bounce was tried no sooner than 0.5 s after the message
t_msg = [e["t"] for e in events if e["ev"] == "message" and e["rcpts"] == ["late2@example.test"]]
t_bounce = [e["t"] for e in lb if e["rcpts"] == ["late2@example.test"]]
expect(t_msg and t_bounce and t_bounce[0] - t_msg[0] >= 0.5, "dsn: delay_ms 500 held (%.3f s)" % (t_bounce[0] - t_msg[0] if t_msg and t_bounce else -1))
# no bounce of a bounce
nb = [e for e in lb if e["rcpts"] == ["late9@outlook.test"]]
expect(len(nb) == 1 and not nb[0]["delivered"] and "null sender" in nb[0]["error"], "no bounce for a message from <>: %s" % nb)

# Complaints
cp = {e["rcpt"]: e for e in events if e["ev"] == "complaint"}
for rcpt, to, n, ua in (("complain1@gmail.test", "bounces+%s@sandbox.test" % token, 5, "ipwarm-sandbox-feedback/1.0"),
                        ("complain2@yahoo.test", "fbl@fbl.test", 15, "Yahoo!-Mail-Feedback/2.0")):
    e = cp.get(rcpt)
    expect(e is not None and e["delivered"] and e["to"] == to, "complaint for %s delivered to %s: %s" % (rcpt, to, e))
    r = reports.get(e["report_id"]) if e else None
    expect(r is not None, "the complaint for %s is in %s's mailbox" % (rcpt, to))
    if not r:
        continue
    box = "fbl" if to.startswith("fbl") else "bounces"
    expect("/%s/Maildir/new/" % box in r["file"], "complaint for %s filed in %s's INBOX" % (rcpt, box))
    expect(r["kind"] == "arf" and r["format"] == "arf" and r["feedback_type"] == "abuse", "ipwarm reads an arf, abuse: %s %s %s" % (r["kind"], r["format"], r["feedback_type"]))
    expect([x["address"] for x in r["recipients"]] == [rcpt], "the complaint names %s: %s" % (rcpt, r["recipients"]))
    expect(r["original_message_id"] == "<%d.ipwarm@mx1.sandbox.test>" % n and r["ipwarm_id"] == "ipw-%d" % n,
           "the complaint returns the original's ids: %s %s" % (r["original_message_id"], r["ipwarm_id"]))
    expect(r["source_ip"] == "127.0.0.1" and r["original_mail_from"] == "bounces+%s@sandbox.test" % token,
           "Source-IP is the client's address, Original-Mail-From the envelope sender: %s %s" % (r["source_ip"], r["original_mail_from"]))
    expect(r["reporting_mta"] == ua, "User-Agent %s: %s" % (ua, r["reporting_mta"]))
    expect(r["verp_token"] == token, "the VERP token of the complaint is found: %s" % r["verp_token"])

# Nothing else arrived: 5 bounces and 1 complaint for bounces@, 1 complaint for fbl@.
count = lambda box: len(glob.glob(os.path.join(mail, box, "Maildir", "new", "*")))
expect(count("bounces") == 6 and count("fbl") == 1, "bounces@ holds 6 messages, fbl@ 1: %d, %d" % (count("bounces"), count("fbl")))

# Seeds: copy 1 (Subject FREE: junk_regex), 3 (every 3rd) in [Gmail]/Spam; 2 and 4 in INBOX.
def ids(folder):
    out = set()
    for f in glob.glob(os.path.join(glob.escape(os.path.join(mail, "seed", "Maildir", folder)), "new", "*")):
        out.add(header(f, "X-Ipwarm-Id"))
    return out
inbox, spam = ids(""), ids(".[Gmail].Spam")
expect(inbox == {"ipw-2", "ipw-4"}, "seed INBOX holds copies 2 and 4: %s" % sorted(inbox))
expect(spam == {"ipw-1", "ipw-3"}, "seed [Gmail]/Spam holds copies 1 (FREE) and 3 (every 3rd): %s" % sorted(spam))
placed = {e["ipwarm_id"]: e for e in events if e["ev"] == "placed" and e["listener"] == "gmail"}
expect({k: (v["folder"], v["copy"], v["delivered"]) for k, v in placed.items()} ==
       {"ipw-1": ("[Gmail]/Spam", 1, True), "ipw-2": ("INBOX", 2, True), "ipw-3": ("[Gmail]/Spam", 3, True), "ipw-4": ("INBOX", 4, True)},
       "the placed events say where each copy went: %s" % {k: v["folder"] for k, v in placed.items()})
copy = glob.glob(os.path.join(mail, "seed", "Maildir", "new", "*"))
if copy:
    text = open(copy[0], "rb").read().decode()
    expect(header(copy[0], "Return-Path") == "<bounces+%s@sandbox.test>" % token, "a seed copy keeps the envelope sender as Return-Path")
    expect("by gmail-smtp-in.l.google.com with ESMTP" in text and "for <seed@gmail.test>" in text, "a seed copy has the provider's Received line")
    expect(".A line that starts with a dot." in text and "\n..A line" not in text, "the body arrives as sent (dot-stuffing undone)")

# A mailbox server that is not there: logged, and the server goes on.
br = [e for e in events if e["listener"] == "broken" and e["ev"] in ("late-bounce", "placed")]
expect(len(br) == 2 and all(not e["delivered"] and dead in e["error"] for e in br),
       "broken: both deliveries failed, naming the LMTP port %s: %s" % (dead, [e.get("error") for e in br]))
last = [e for e in events if e["ev"] == "message" and e["rcpts"] == ["x@broken.test"]]
expect(last and last[0]["accepted"], "broken: the server still accepts mail after a failed delivery")
sys.exit(1 if fails else 0)
PYEOF
tally "$work/checks.out"

# --- a config error stops the server at start, with a sentence ----------------------------------
port=$(free_port)
printf '{"log": "%s", "listeners": [{"name": "x", "host": "127.0.0.1", "port": %s, "late_bounce": {"regex": "^a", "format": "nonsense"}}]}\n' \
  "$work/bad.jsonl" "$port" >"$work/bad.json"
timeout 20 "$PY" "$SRCDIR/tests/servers/smtpd.py" "$work/bad.json" >/dev/null 2>"$work/bad.err"
rc=$?
check "an unknown late_bounce.format: smtpd.py exits non-zero at start (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "the refusal names the listener, the key and the formats" \
  grep -q "listener x: late_bounce.format: 'nonsense' is not one of dsn, microsoft, microsoft-text, yahoo" "$work/bad.err"
printf '{"log": "%s", "listeners": [{"name": "y", "host": "127.0.0.1", "port": %s, "seeds": {"regex": "("}}]}\n' \
  "$work/bad.jsonl" "$port" >"$work/bad2.json"
timeout 20 "$PY" "$SRCDIR/tests/servers/smtpd.py" "$work/bad2.json" >/dev/null 2>"$work/bad2.err"
rc=$?
check "a seeds.regex that does not compile is refused at start (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "the refusal names seeds.regex" grep -q "listener y: seeds.regex:" "$work/bad2.err"

finish
