#!/usr/bin/env bash
# The test SMTP server's hostile behaviours (tests/servers/smtpd.py, its docstring is the
# reference of every key), checked on their own so that the integration tests can rely on
# them: per-step `replies` (with `modes` still winning), `close_after_dot`, `delay_ms` for
# ehlo, quit and data (after the final dot), `endless` continuation lines, `echo_auth`,
# `per_source` overrides by source address, and AUTH offered in clear without `starttls`.
# A Python client (Debian's /usr/bin/python3: smtplib and raw sockets) drives each listener;
# the assertions read what the client got and what the server logged.
set -u
: "${SRCDIR:?}"
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-smtpd-faults-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3

net=$(plans_net)
port=$(free_port)
make_cert "$work/tls"
smtpd_start faults "[
  {\"name\": \"replies\", \"host\": \"$net.2\", \"port\": $port,
   \"replies\": {\"greeting\": \"220-mx.replies.test first line\\n220 mx.replies.test second line\",
                 \"ehlo\": \"250-mx.replies.test hello\\n250 8BITMIME\",
                 \"mail\": \"550 5.7.1 Service unavailable; Client host [$net.1] blocked using zen.spamhaus.org\",
                 \"quit\": \"221 2.0.0 custom goodbye\"}},
  {\"name\": \"steps\", \"host\": \"$net.3\", \"port\": $port,
   \"auth\": {\"user\": \"u\", \"password\": \"p\"},
   \"starttls\": {\"cert\": \"$work/tls/cert.pem\", \"key\": \"$work/tls/key.pem\"},
   \"replies\": {\"starttls\": \"454 4.7.0 TLS not available right now\",
                 \"auth\": \"235 2.7.0 Accepted without a challenge\",
                 \"rcpt\": \"250 2.1.5 Recipient ok\",
                 \"data\": \"552 5.3.4 Message size exceeds fixed limit\"}},
  {\"name\": \"close421\", \"host\": \"$net.4\", \"port\": $port,
   \"replies\": {\"rcpt\": \"421 4.7.0 Closing: too many connections\"}},
  {\"name\": \"refused\", \"host\": \"$net.5\", \"port\": $port,
   \"replies\": {\"greeting\": \"554 5.7.1 No SMTP service here\"}},
  {\"name\": \"moded\", \"host\": \"$net.6\", \"port\": $port, \"mode_file\": \"$work/moded.mode\",
   \"modes\": {\"blocklist\": {\"mail\": \"550 5.7.1 Unfortunately, messages from [$net.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).\"}},
   \"replies\": {\"mail\": \"451 4.7.500 Server busy. Please try again later from [$net.1]. (S77714)\"}},
  {\"name\": \"dotclose\", \"host\": \"$net.7\", \"port\": $port, \"close_after_dot\": true},
  {\"name\": \"slow\", \"host\": \"$net.8\", \"port\": $port,
   \"delay_ms\": {\"ehlo\": 1000, \"data\": 1500, \"quit\": 1000}},
  {\"name\": \"endless\", \"host\": \"$net.9\", \"port\": $port,
   \"endless\": {\"ehlo\": {\"interval_ms\": 0}}},
  {\"name\": \"endgreet\", \"host\": \"$net.10\", \"port\": $port,
   \"endless\": {\"greeting\": {\"interval_ms\": 20}}},
  {\"name\": \"echo\", \"host\": \"$net.11\", \"port\": $port, \"echo_auth\": true,
   \"auth\": {\"user\": \"relay-user\", \"password\": \"s3cret-Pa55\"}},
  {\"name\": \"pool\", \"host\": \"$net.12\", \"port\": $port, \"rate_per_min\": 100,
   \"per_source\": {\"$net.31\": {\"replies\": {\"mail\": \"451 4.7.1 Deferred: this IP is warming up\"}},
                    \"$net.32\": {\"rate_per_min\": 1, \"throttle\": \"421 4.7.0 Too fast from $net.32\"}}},
  {\"name\": \"clear\", \"host\": \"$net.13\", \"port\": $port,
   \"auth\": {\"user\": \"relay-user\", \"password\": \"s3cret-Pa55\"}}
]" || exit 1
log=$SMTPD_LOG

"$py" - "$net" "$port" "$log" "$work" >"$work/check.out" 2>&1 <<'EOF'
import base64, json, os, smtplib, socket, sys, time

net, port, log, work = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
WAIT = 30  # seconds: generous, the events come at once on an idle machine


def expect(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)


def events():
    with open(log) as f:
        return [json.loads(l) for l in f if l.strip()]


def wait_for(pred, what):
    """Waits (polling the log) until an event matches pred; returns it or None."""
    end = time.time() + WAIT
    while time.time() < end:
        for e in events():
            if pred(e):
                return e
        time.sleep(0.05)
    print("note: no event for %s after %ds" % (what, WAIT))
    return None


class Raw:
    """A line-oriented client on a plain socket, for what smtplib hides."""

    def __init__(self, host, source=None):
        self.s = socket.create_connection((host, port), timeout=WAIT,
                                          source_address=(source, 0) if source else None)
        self.f = self.s.makefile("rb")

    def line(self):
        return self.f.readline().decode("latin-1").rstrip("\r\n")

    def reply(self):
        """One whole reply: its lines, up to the final one."""
        lines = [self.line()]
        while len(lines[-1]) >= 4 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def close(self):
        self.f.close()  # the socket closes only when its file is closed too
        self.s.close()


def listener_events(name, kind):
    return [e for e in events() if e["listener"] == name and e["ev"] == kind]


# ---- replies: greeting, EHLO, MAIL and QUIT as configured ----
c = Raw(net + ".2")
g = c.reply()
expect(g == ["220-mx.replies.test first line", "220 mx.replies.test second line"],
       "replies.greeting: the two-line greeting as given: %r" % g)
c.send("EHLO client.example")
expect(c.reply() == ["250-mx.replies.test hello", "250 8BITMIME"], "replies.ehlo: as given")
c.send("MAIL FROM:<a@example.com>")
m = c.reply()
expect(m == ["550 5.7.1 Service unavailable; Client host [%s.1] blocked using zen.spamhaus.org" % net],
       "replies.mail: the 5xx as given: %r" % m)
c.send("RCPT TO:<b@example.org>")
expect(c.reply()[0].startswith("503"), "a refused MAIL leaves no transaction: RCPT gets 503")
c.send("QUIT")
expect(c.reply() == ["221 2.0.0 custom goodbye"], "replies.quit: as given")
expect(c.f.read() == b"", "the connection is closed after QUIT")
c.close()
wait_for(lambda e: e["listener"] == "replies" and e["ev"] == "reply" and e["text"].startswith("221"),
         "the QUIT reply")
texts = [e["text"] for e in listener_events("replies", "reply")]
expect(texts[:2] == ["220-mx.replies.test first line\n220 mx.replies.test second line",
                     "250-mx.replies.test hello\n250 8BITMIME"],
       "the log has the configured replies as sent: %r" % texts[:2])

# ---- replies: STARTTLS refused, AUTH without challenge, RCPT accepted, DATA refused ----
c = Raw(net + ".3")
c.reply()
c.send("EHLO client.example")
ehlo = c.reply()
expect("250-STARTTLS" in ehlo and any("AUTH PLAIN LOGIN" in l for l in ehlo),
       "without replies.ehlo the server's own EHLO reply: %r" % ehlo)
c.send("STARTTLS")
expect(c.reply() == ["454 4.7.0 TLS not available right now"], "replies.starttls: a 454")
c.send("AUTH PLAIN")
expect(c.reply() == ["235 2.7.0 Accepted without a challenge"],
       "replies.auth: answered at once, no 334")
c.send("MAIL FROM:<a@example.com>")
expect(c.reply() == ["250 2.1.0 OK"], "a 2xx to AUTH authenticated: MAIL accepted")
c.send("RCPT TO:<b@example.org>")
expect(c.reply() == ["250 2.1.5 Recipient ok"], "replies.rcpt: a 2xx accepts the recipient")
c.send("DATA")
expect(c.reply()[0].startswith("354"), "DATA goes on after a recipient accepted by replies.rcpt")
c.send("Subject: x\r\n\r\nbody\r\n.")
expect(c.reply() == ["552 5.3.4 Message size exceeds fixed limit"], "replies.data: after the dot")
c.send("NOOP")
expect(c.reply()[0].startswith("250"), "the session goes on after a refused message")
c.send("QUIT")
c.reply()
c.close()
msg = listener_events("steps", "message")
expect(len(msg) == 1 and msg[0]["accepted"] is False and msg[0]["rcpts"] == ["b@example.org"],
       "the refused message is logged, not accepted: %r" % msg)
saved = os.path.join(work, "faults.mail")
expect(not os.path.isdir(saved) or not any(n.startswith("steps-") for n in os.listdir(saved)),
       "the refused message is not saved")

# ---- replies: a 421 closes, a refused greeting closes ----
c = Raw(net + ".4")
c.reply()
c.send("EHLO client.example")
c.reply()
c.send("MAIL FROM:<a@example.com>")
c.reply()
c.send("RCPT TO:<b@example.org>")
expect(c.reply() == ["421 4.7.0 Closing: too many connections"], "replies.rcpt: a 421")
expect(c.f.read() == b"", "the connection is closed after the 421")
c.close()
c = Raw(net + ".5")
expect(c.reply() == ["554 5.7.1 No SMTP service here"], "replies.greeting: a 554")
expect(c.f.read() == b"", "the connection is closed after a refused greeting")
c.close()

# ---- modes still work, and win over replies ----
def mail_reply(host):
    c = Raw(host)
    c.reply()
    c.send("EHLO client.example")
    c.reply()
    c.send("MAIL FROM:<a@example.com>")
    r = c.reply()
    c.send("QUIT")
    c.reply()
    c.close()
    return r

r = mail_reply(net + ".6")
expect(r[0].startswith("451 4.7.500"), "no mode: replies.mail: %r" % r)
with open(os.path.join(work, "moded.mode"), "w") as f:
    f.write("blocklist\n")
r = mail_reply(net + ".6")
expect(r[0].startswith("550 5.7.1") and "(S3150)" in r[0], "mode blocklist wins: %r" % r)
os.remove(os.path.join(work, "moded.mode"))
r = mail_reply(net + ".6")
expect(r[0].startswith("451 4.7.500"), "mode file removed: replies.mail again: %r" % r)

# ---- close_after_dot: the whole message read, then no reply at all ----
s = smtplib.SMTP(net + ".7", port, timeout=WAIT)
body = "Subject: dot\r\n\r\n" + "line of the message\r\n" * 200
try:
    s.sendmail("a@example.com", ["b@example.org"], body)
    expect(False, "close_after_dot: the client got a reply")
except smtplib.SMTPServerDisconnected:
    expect(True, "close_after_dot: the connection closed without a reply")
e = wait_for(lambda e: e["listener"] == "dotclose" and e["ev"] == "close-after-dot",
             "close-after-dot")
expect(e is not None and e["size"] >= 200 * len("line of the message\r\n"),
       "close_after_dot: the whole message was read first: %r" % (e and e["size"]))
replies = [x["text"] for x in listener_events("dotclose", "reply")]
expect(replies and replies[-1].startswith("354"), "close_after_dot: nothing after the 354: %r" % replies[-1:])
expect(not listener_events("dotclose", "message"), "close_after_dot: no message logged as taken")

# ---- delay_ms: EHLO, QUIT, and DATA after the final dot (lower bounds only) ----
c = Raw(net + ".8")
c.reply()
t = time.monotonic()
c.send("EHLO client.example")
c.reply()
expect(time.monotonic() - t >= 1.0, "delay_ms.ehlo: the EHLO reply waited 1 s")
c.send("MAIL FROM:<a@example.com>")
c.reply()
c.send("RCPT TO:<b@example.org>")
c.reply()
c.send("DATA")
expect(c.reply()[0].startswith("354"), "delay_ms.data: the 354 comes")
c.send("Subject: slow\r\n\r\nbody")
t = time.monotonic()
c.send(".")
r = c.reply()
expect(r[0].startswith("250") and time.monotonic() - t >= 1.5,
       "delay_ms.data: 1.5 s between the final dot and the reply (%.2f s)" % (time.monotonic() - t))
t = time.monotonic()
c.send("QUIT")
c.reply()
expect(time.monotonic() - t >= 1.0, "delay_ms.quit: the 221 waited 1 s")
c.close()

# ---- endless: continuation lines, never a final line ----
c = Raw(net + ".9")
c.reply()
c.send("EHLO client.example")
got = b""
while len(got) < 256 * 1024:
    chunk = c.s.recv(65536)
    if not chunk:
        break
    got += chunk
lines = got.split(b"\r\n")[:-1]
expect(len(got) >= 256 * 1024 and lines and all(l.startswith(b"250-") for l in lines),
       "endless.ehlo: %d bytes of 250- lines, no final line" % len(got))
c.close()
e = wait_for(lambda e: e["listener"] == "endless" and e["ev"] == "endless", "endless ehlo")
expect(e is not None and e["what"] == "ehlo" and e["lines"] >= len(lines),
       "endless.ehlo: ends when the client goes, logged: %r" % e)
c = Raw(net + ".10")
first = [c.line() for _ in range(5)]
expect(all(l.startswith("220-") for l in first), "endless.greeting: 220- lines: %r" % first[:2])
c.close()
e = wait_for(lambda e: e["listener"] == "endgreet" and e["ev"] == "endless", "endless greeting")
expect(e is not None and e["what"] == "greeting", "endless.greeting: logged when the client went")

# ---- echo_auth: the 535 quotes the credentials; the log keeps them for the test ----
plain = base64.b64encode(b"\0relay-user\0s3cret-Pa55").decode()
u, p = base64.b64encode(b"relay-user").decode(), base64.b64encode(b"s3cret-Pa55").decode()


def echo_session(steps):
    """Sends each (line, expected reply prefix) in turn; returns the last reply."""
    c = Raw(net + ".11")
    c.reply()
    c.send("EHLO client.example")
    c.reply()
    r = None
    for line, want in steps:
        c.send(line)
        r = c.reply()
        expect(r[0].startswith(want), "echo_auth: %r gets %s: %r" % (line, want, r[0]))
    c.close()
    return r[0]

r = echo_session([("AUTH PLAIN " + plain, "535")])
expect(r == "535 5.7.8 Authentication failed for: AUTH PLAIN " + plain,
       "echo_auth PLAIN with an initial response: the line echoed: %r" % r)
r = echo_session([("AUTH PLAIN", "334"), (plain, "535")])
expect(plain in r, "echo_auth PLAIN after a 334: the credentials echoed: %r" % r)
r = echo_session([("AUTH LOGIN", "334 VXNlcm5hbWU6"), (u, "334 UGFzc3dvcmQ6"), (p, "535")])
expect(u in r and p in r, "echo_auth LOGIN: user and password echoed: %r" % r)
# The server logs a reply right after sending it: wait for the last exchange's event.
wait_for(lambda e: len(listener_events("echo", "echo-auth")) >= 3, "three echo-auth events")
logged = [e["text"] for e in listener_events("echo", "reply") if e["text"].startswith("535")]
expect(len(logged) == 3 and plain in logged[0] and plain in logged[1] and p in logged[2],
       "echo_auth: the log holds the echoed credentials (%d replies)" % len(logged))
cmds = [e["line"] for e in listener_events("echo", "cmd") if e["line"].upper().startswith("AUTH")]
expect(len(cmds) == 3 and all(l.endswith("***") and plain not in l for l in cmds),
       "echo_auth: the AUTH command itself is still logged masked: %r" % cmds)
expect(len(listener_events("echo", "echo-auth")) == 3, "echo_auth: each exchange logged")

# ---- per_source: one IP of the pool deferred, one rate-limited alone ----
def send_from(source, n):
    """Sends n messages in one session from source; returns the MAIL replies."""
    c = Raw(net + ".12", source)
    c.reply()
    c.send("EHLO client.example")
    c.reply()
    out = []
    for i in range(n):
        c.send("MAIL FROM:<a@example.com>")
        r = c.reply()
        out.append(r[0])
        if not r[0].startswith("250"):
            break
        c.send("RCPT TO:<b%d@example.org>" % i)
        c.reply()
        c.send("DATA")
        c.reply()
        c.send("Subject: pool\r\n\r\nbody\r\n.")
        c.reply()
    c.close()
    return out

r = send_from(net + ".30", 3)
expect(r == ["250 2.1.0 OK"] * 3, "per_source: another source gets the listener's own: %r" % r)
r = send_from(net + ".31", 1)
expect(r == ["451 4.7.1 Deferred: this IP is warming up"], "per_source: .31 deferred: %r" % r)
r = send_from(net + ".32", 2)
expect(r == ["250 2.1.0 OK", "421 4.7.0 Too fast from %s.32" % net],
       "per_source: .32 throttled after its own 1 a minute: %r" % r)
r = send_from(net + ".30", 1)
expect(r == ["250 2.1.0 OK"], "per_source: .32's rate does not count against others: %r" % r)
peers = {e["peer"].rsplit(":", 1)[0] for e in listener_events("pool", "connect")}
expect({net + ".30", net + ".31", net + ".32"} <= peers, "per_source: the log names each source")

# ---- AUTH in clear, without starttls ----
c = Raw(net + ".13")
c.reply()
c.send("EHLO client.example")
ehlo = c.reply()
expect(any("AUTH PLAIN LOGIN" in l for l in ehlo) and not any("STARTTLS" in l for l in ehlo),
       "no starttls: AUTH is offered in clear: %r" % ehlo)
c.send("AUTH PLAIN " + plain)
expect(c.reply()[0].startswith("235"), "no starttls: the password is taken in clear")
c.close()
auth = [e for e in listener_events("clear", "cmd") if e["line"].upper().startswith("AUTH")]
expect(len(auth) == 1 and auth[0]["tls"] is False and plain not in auth[0]["line"],
       "the log says the AUTH came without TLS, masked: %r" % auth)
EOF
tally "$work/check.out"
grep -q '^ok:' "$work/check.out" || bad "the client script did not run: $(tail -3 "$work/check.out")"
check "the server is still running" kill -0 "${SERVERS_PIDS[0]}"
check "the server logged no traceback" bash -c "! grep -q Traceback '$work/faults.err'"
finish
