#!/usr/bin/python3
"""A scriptable SMTP server for ipwarm's integration tests and sandbox (RFC 5321, RFC 3207).

It behaves like a mailbox provider as far as a warm-up sender can tell: it can greet with a
refusal, throttle past a per-minute rate with a (multi-line) reply, answer per-recipient
bounces and deferrals, offer STARTTLS with a given certificate and TLS versions, ask for AUTH,
advertise SIZE, stall (tarpit) and switch behaviour while running (a "mode" file). Every line it
receives and every reply it sends is written as a JSON line to the log, so tests can assert the
exact dialogue; accepted messages are saved whole. The event that ends a transaction after its
final dot ("message") names its recipients, whether it was accepted and its Message-ID; it is
written before the reply goes out, so it is there even when the client has gone.

Usage: smtpd.py CONFIG.json
CONFIG: {"log": "dialogue.jsonl", "maildir": "dir", "ready_file": "path",
         "listeners": [{"name": "gmail", "host": "127.0.0.2", "port": 2525, ...behaviour...}]}
Behaviour keys (per listener):
  greeting            "220 mx.test ESMTP" (a 4xx/5xx greeting refuses the session)
  hostname            name in the greeting and EHLO reply
  size                SIZE advertised (0 = none)
  starttls            {"cert": PEM, "key": PEM, "min": "1.2", "max": "1.3"} or absent
  require_tls         true: MAIL before STARTTLS gets 530 5.7.0
  auth                {"user": "...", "password": "..."}: AUTH PLAIN/LOGIN offered and required
  rate_per_min        accept at most this many messages in any 60 s; past it MAIL gets `throttle`
  throttle            reply text (may contain \\n for multi-line, each line a full reply line)
  recipients          {"regex": "reply"}: RCPT reply for matching addresses (first match wins)
  data_reply          reply after the message (default "250 2.0.0 OK queued")
  delay_ms            {"greeting"|"ehlo"|"starttls"|"auth"|"mail"|"rcpt"|"data"|"quit": N}:
                      tarpit N ms before replying; "data" waits after the final dot, before
                      the reply that decides the message (the 354 goes out at once)
  data_delay_by_rcpt  {"regex": N}: the "data" delay, in ms, of a transaction with a recipient
                      matching regex (first match wins), instead of delay_ms's: some messages
                      held after their dot while others are answered at once. A mode may set
                      its own.
  mode_file           a file whose content (a key of "modes") switches behaviour at run time
  modes               {"blocklist": {"mail": "550 5.7.1 ... (S3150)"}}: per-mode overrides of
                      the reply to "mail", "rcpt" or "data", and of "delay_ms"
  replies             {"greeting"|"ehlo"|"starttls"|"auth"|"mail"|"rcpt"|"data"|"quit":
                      "reply"}: the reply to that step, whole lines ("\n" between the lines of
                      a multi-line reply), instead of the server's own; a mode's reply wins
                      over it. A 2xx or 3xx reply is taken as acceptance (MAIL and RCPT go on,
                      a message after DATA is saved, a 2xx to AUTH authenticates, a 220 to
                      STARTTLS starts the handshake); a 4xx or 5xx refuses and the session
                      goes on, except after a refused greeting or any 421, and after QUIT,
                      which close the connection. "auth" answers the AUTH command itself, with
                      no 334 challenge. The AUTH and TLS requirements (auth, require_tls) are
                      checked before a "mail" reply.
  per_source          {"127.0.0.11": {behaviour keys}}: for connections from that source
                      (peer) address, those keys replace the listener's own (a provider that
                      treats one IP of a pool differently). A per_source rate_per_min counts
                      that source's messages on their own, apart from the listener's.
Fault keys (per listener; for ipwarm's fault-injection tests, tests/cli/test_faults_*.sh):
  raw_reply           {"greeting"|"ehlo"|"mail"|"rcpt"|"data": "bytes"}: sent instead of the
                      reply, byte for byte (each character U+0000..U+00FF is one byte, so
                      "\u00ff" sends 0xFF; no line end is added: write "\r\n" yourself).
                      The session goes on if the last line starts with "2" or "3".
  long_reply          {"greeting"|"ehlo"|"mail"|"rcpt"|"data": {"lines": N, "width": W,
                      "final": "451 4.7.1 end"}}: N - 1 continuation lines of W characters
                      ("CODE-" and filler), then the final line. The session goes on as above.
  close_in_data       N: after the 354, read N lines of the message and close the connection
                      without a reply (0: close right after the 354).
  tls_break           "close" | "garbage": answer STARTTLS with 220, then close the connection
                      or send plain-text garbage instead of a TLS handshake.
  close_on_reuse      true: a MAIL after the connection's first transaction closes the
                      connection without a reply (a server that dropped an idle connection
                      just as the client reused it).
  close_after_dot     true: read the whole message, final dot included, then (after the
                      "data" delay, if any) close the connection without any reply.
  endless             {"greeting"|"ehlo"|"starttls"|"auth"|"mail"|"rcpt"|"data"|"quit":
                      {"interval_ms": N}}: instead of that reply, continuation lines ("220-"
                      for the greeting, "250-" otherwise) forever, one every N ms (0: as fast
                      as the socket takes them), never a final line; ends when the client
                      goes away ("endless" event with the lines sent).
  echo_auth           true: answer AUTH (after the 334 challenges of PLAIN without an initial
                      response, or of LOGIN) with a 535 that quotes every line the client sent
                      in the exchange, base64 credentials included, as a broken server might.
                      The reply is logged like any other, so the log holds the credentials:
                      tests use it to check that ipwarm masks them in what it stores and prints.
AUTH is offered whenever "auth" is set, also without "starttls" (a server that would take a
password in clear); every "cmd" event says whether the session was under TLS ("tls"), so a
test can prove ipwarm never sends AUTH in clear.
After-the-250 keys (per listener; what a provider does with a message it accepted, delivered to
a mailbox server over LMTP, RFC 2033; tests/cli/test_smtpd_mail.sh checks each against Dovecot):
  deliver             {"lmtp": "127.0.0.1:PORT"}: where bounces, complaint reports and seed
                      copies go. Also a top-level key of CONFIG, for every listener; a
                      listener's own wins. One LMTP session per delivery, 30 s at most; a
                      failure (refused, no server, timeout) is logged, never fatal.
  late_bounce         {"regex": RCPT-REGEX, "every": N, "delay_ms": N, "format": F,
                      "status": "5.1.1", "diagnostic": "550 5.1.1 ..."}: accept (250), then
                      delay_ms later send a bounce for the matching recipients (every Nth
                      matching recipient, counted per listener; default every one) to the
                      envelope MAIL FROM (a VERP address stays as it is), from the null sender
                      <>. No bounce for a message whose MAIL FROM was <>. F:
                        "dsn"            RFC 3464 / RFC 6522 multipart/report: a text part,
                                         message/delivery-status (Reporting-MTA,
                                         Received-From-MTA, Arrival-Date, then per recipient
                                         Final-Recipient, Action failed (delayed for a 4.x.x
                                         status), Status, Diagnostic-Code, Last-Attempt-Date),
                                         and text/rfc822-headers: the original's headers with
                                         the Return-Path and Received lines this server added;
                        "microsoft"      Exchange Online's NDR: multipart/report holding a
                                         multipart/alternative ("Your message to ... couldn't
                                         be delivered", "Diagnostic information for
                                         administrators", "Remote Server returned '...'"), a
                                         message/delivery-status part and the whole original
                                         as message/rfc822; subject "Undeliverable: ...";
                        "microsoft-text" Outlook.com's text-only NDR ("Delivery has failed to
                                         these recipients or groups", "Remote Server returned
                                         '...'", "Original message headers:" and the headers);
                        "yahoo"          Yahoo's text "Failure Notice" ("Sorry, we were unable
                                         to deliver your message to the following address.",
                                         "<rcpt>:" and the reply, "--- Below this line is a
                                         copy of the message." and the whole original).
                      status (default 5.1.1; 5.1.10 for microsoft*) and diagnostic (the remote
                      reply, default one per format that carries the status; {rcpt} is
                      replaced) say why. Logged as {"ev": "late-bounce", "rcpts", "to",
                      "format", "status", "message_id", "ipwarm_id", "report_id", "delivered",
                      "error"} once the delivery was tried.
  complain            {"regex": RCPT-REGEX, "every": N, "delay_ms": N, "to": ADDRESS,
                      "feedback_type": "abuse", "user_agent": "...", "from": ADDRESS}: accept,
                      then delay_ms later send an RFC 5965 complaint report (multipart/report;
                      report-type=feedback-report: a text part; message/feedback-report with
                      Feedback-Type, User-Agent, Version 1, Original-Mail-From,
                      Original-Rcpt-To, Arrival-Date, Reporting-MTA, Source-IP (the SMTP
                      client's address), Reported-Domain; the whole original as
                      message/rfc822 with this server's Return-Path and Received lines), one
                      per matching recipient, to `to` (default: the envelope MAIL FROM), from
                      `from` (default feedback@arf.RECIPIENT-DOMAIN), as Yahoo's Complaint
                      Feedback Loop sends them. Logged as {"ev": "complaint", "rcpt", "to",
                      "message_id", "ipwarm_id", "report_id", "delivered", "error"}.
  seeds               {"regex": RCPT-REGEX, "junk_every": N, "junk_regex": REGEX,
                      "junk_folder": "Junk"}: a matching recipient is a seed mailbox on the
                      mailbox server: its accepted copy (with this server's Received line;
                      the LMTP server adds Return-Path) is delivered into INBOX, or into
                      junk_folder for every Nth copy (counted per listener; 0 or absent:
                      never) and for any copy whose header section matches junk_regex
                      (case-insensitive, multi-line: "^Subject:.*free"). A folder other than
                      INBOX is reached as USER+FOLDER@domain (quoted when needed), which
                      Dovecot's lmtp_save_to_detail_mailbox files into that folder. Logged as
                      {"ev": "placed", "rcpt", "folder", "copy" (its number), "message_id",
                      "ipwarm_id", "delivered", "error"}. "delay_ms" as above (default 0).
  A config error in these keys (an unknown format, a regex that does not compile) stops the
  server at start with a sentence on stderr.
"""
import asyncio
import base64
import datetime
import email.parser
import email.policy
import email.utils
import json
import os
import re
import secrets
import signal
import ssl
import sys
import time

LOG = None
CONFIG = {}


def log(event):
    event["t"] = round(time.time(), 6)
    LOG.write(json.dumps(event) + "\n")
    LOG.flush()


def tls_version(name):
    return {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
            "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[name]


PHASES = ("greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "quit")


def header_message_id(body):
    """The Message-ID of a message as received (its header section only), or None: the
    "message" event carries it, so a test can tell which recorded attempt a message was."""
    head = body.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    m = re.search(rb"(?im)^message-id:[ \t]*(\S[^\r\n]*?)[ \t]*\r?$", head)
    return m.group(1).decode("utf-8", "replace") if m else None


def check_phases(spec, where):
    """A misspelt step in replies, endless or delay_ms would silently do nothing: refuse it."""
    for key in ("replies", "endless", "delay_ms"):
        unknown = set(spec.get(key) or {}) - set(PHASES)
        if unknown:
            raise ValueError("%s: %s: unknown step %s (one of %s)"
                             % (where, key, ", ".join(sorted(unknown)), ", ".join(PHASES)))


def tls_context(st):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if st.get("min") in ("1.0", "1.1") or st.get("max") in ("1.0", "1.1"):
        # Old protocol versions need the lowest OpenSSL security level to be offered.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = tls_version(st.get("min", "1.2"))
    ctx.maximum_version = tls_version(st.get("max", "1.3"))
    ctx.load_cert_chain(st["cert"], st["key"])
    return ctx


class Listener:
    def __init__(self, spec):
        self.spec = spec
        self.name = spec.get("name", "smtp")
        # Times of accepted messages, for the rolling rate limit: None for the listener, a
        # source address for a per_source override with its own rate_per_min.
        self.accepted = {}
        # per after-the-250 key, the matching recipients seen so far (for "every" and
        # "junk_every"), and the deliveries waiting for their delay
        self.counts = {"late_bounce": 0, "complain": 0, "seeds": 0}
        self.tasks = set()
        check_phases(spec, self.name)
        check_after_keys(self.name, spec)
        self.ssl_ctx = tls_context(spec["starttls"]) if spec.get("starttls") else None
        self.per_source = {}  # source address -> (merged spec, TLS context)
        for ip, over in (spec.get("per_source") or {}).items():
            merged = dict(spec)
            merged.pop("per_source", None)
            merged.update(over)
            check_phases(merged, "%s: per_source %s" % (self.name, ip))
            ctx = self.ssl_ctx
            if "starttls" in over:
                ctx = tls_context(over["starttls"]) if over["starttls"] else None
            self.per_source[ip] = (merged, ctx)

    def for_source(self, ip):
        """The behaviour and TLS context for a connection from ip."""
        if ip in self.per_source:
            return self.per_source[ip]
        return self.spec, self.ssl_ctx


class Session:
    def __init__(self, listener, reader, writer):
        self.l = listener
        self.r = reader
        self.w = writer
        peer = writer.get_extra_info("peername")
        self.peer = "%s:%s" % (peer[0], peer[1]) if peer else "?"
        self.source = peer[0] if peer else "?"
        self.spec, self.ssl_ctx = listener.for_source(self.source)
        self.rate_key = self.source if "rate_per_min" in (
            (listener.spec.get("per_source") or {}).get(self.source) or {}) else None
        self.conn = "%s-%d" % (self.peer, int(time.time() * 1e6))
        self.tls = False
        self.authed = False
        self.helo = ""
        self.mail_from = None
        self.rcpts = []
        self.transactions = 0

    def ev(self, kind, **kw):
        kw.update({"listener": self.l.name, "conn": self.conn, "peer": self.peer, "ev": kind})
        log(kw)

    def mode(self):
        path = self.spec.get("mode_file")
        if not path:
            return {}
        try:
            with open(path) as f:
                name = f.read().strip()
        except OSError:
            return {}
        return self.spec.get("modes", {}).get(name, {})

    def over_rate(self, now):
        limit = self.spec.get("rate_per_min")
        if not limit:
            return False
        times = [t for t in self.l.accepted.get(self.rate_key, []) if now - t < 60]
        self.l.accepted[self.rate_key] = times
        return len(times) >= limit

    def accept(self):
        self.l.accepted.setdefault(self.rate_key, []).append(time.time())

    def configured(self, what):
        """The reply set for this step by the mode or by "replies", or None."""
        if what in ("mail", "rcpt", "data") and what in self.mode():
            return self.mode()[what]
        return (self.spec.get("replies") or {}).get(what)

    async def delay(self, what):
        ms = self.mode().get("delay_ms", self.spec.get("delay_ms", {})).get(what, 0)
        if what == "data":
            by_rcpt = self.mode().get("data_delay_by_rcpt", self.spec.get("data_delay_by_rcpt"))
            for pattern, n in (by_rcpt or {}).items():
                if any(re.search(pattern, r, re.I) for r in self.rcpts):
                    ms = n
                    break
        if ms:
            await asyncio.sleep(ms / 1000)

    async def reply(self, text):
        lines = text.split("\n")
        for line in lines:
            self.w.write(line.encode() + b"\r\n")
        await self.w.drain()
        self.ev("reply", text=text)

    async def readline(self, limit=4096):
        line = await self.r.readline()
        if not line:
            return None
        return line[:limit].rstrip(b"\r\n").decode("utf-8", "replace")

    async def run(self):
        spec = self.spec
        self.ev("connect")
        try:
            await self.delay("greeting")
            if await self.endless("greeting"):
                return
            handled = await self.fault_reply("greeting")
            if handled is not None:
                if not handled:
                    return
                greeting = "220"
            else:
                greeting = self.configured("greeting") or spec.get(
                    "greeting", "220 %s ESMTP ipwarm-test" % spec.get("hostname", "mx.test"))
            if handled is None:
                await self.reply(greeting)
            if not greeting.startswith("2"):
                return
            while True:
                line = await self.readline()
                if line is None:
                    self.ev("eof")
                    return
                shown = line
                if line.upper().startswith("AUTH "):
                    # Never log credentials, not even a test server's (echo_auth aside).
                    shown = " ".join(line.split(" ")[:2]) + " ***"
                self.ev("cmd", line=shown, tls=self.tls)
                if not await self.command(line):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            self.ev("error", error=str(exc))
        finally:
            try:
                self.w.close()
            except Exception:
                pass

    def ehlo_lines(self, helo):
        spec = self.spec
        ext = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
        if spec.get("size"):
            ext.append("SIZE %d" % spec["size"])
        if self.ssl_ctx and not self.tls:
            ext.append("STARTTLS")
        if spec.get("auth"):
            ext.append("AUTH PLAIN LOGIN")
        lines = ["250-%s greets %s" % (spec.get("hostname", "mx.test"), helo)]
        lines += ["250-" + e for e in ext[:-1]] + ["250 " + ext[-1]]
        return "\n".join(lines)

    async def configured_reply(self, what):
        """Sends the reply configured for `what` (mode or "replies"), if any. Returns None
        when none is, else (whether the session goes on, whether the reply accepted)."""
        text = self.configured(what)
        if text is None:
            return None
        await self.reply(text)
        code = text[:3]
        goes_on = not code.startswith("421") and what not in ("greeting", "quit")
        return goes_on, code[:1] in ("2", "3")

    async def command(self, line):
        spec = self.spec
        verb = line.split(" ", 1)[0].upper()
        if verb in ("EHLO", "HELO"):
            await self.delay("ehlo")
            if await self.endless("ehlo"):
                return False
            handled = await self.fault_reply("ehlo")
            if handled is not None:
                return handled
            done = await self.configured_reply("ehlo")
            if done is not None:
                return done[0]
            helo = line[5:].strip()
            self.helo = helo
            await self.reply(self.ehlo_lines(helo) if verb == "EHLO" else "250 %s" % spec.get("hostname", "mx.test"))
        elif verb == "STARTTLS":
            await self.delay("starttls")
            if await self.endless("starttls"):
                return False
            done = await self.configured_reply("starttls")
            if done is not None and (not done[0] or not done[1] or not self.ssl_ctx or self.tls):
                return done[0]
            if done is None:
                if not self.ssl_ctx or self.tls:
                    await self.reply("454 4.7.0 TLS not available")
                    return True
                await self.reply("220 2.0.0 Ready to start TLS")
            if spec.get("tls_break"):
                return await self.break_tls(spec["tls_break"])
            try:
                await self.w.start_tls(self.ssl_ctx)
            except (ssl.SSLError, ConnectionError, OSError) as exc:
                self.ev("tls-failed", error=str(exc))
                return False
            self.tls = True
            obj = self.w.get_extra_info("ssl_object")
            self.ev("tls", version=obj.version() if obj else None)
        elif verb == "AUTH":
            await self.delay("auth")
            if await self.endless("auth"):
                return False
            done = await self.configured_reply("auth")
            if done is not None:
                if done[1]:
                    self.authed = True
                return done[0]
            await self.auth(line)
        elif verb == "MAIL":
            if spec.get("close_on_reuse") and self.transactions > 0:
                # As a server that dropped an idle connection just as the client reused it.
                self.ev("close-on-reuse")
                return False
            if spec.get("require_tls") and not self.tls:
                await self.reply("530 5.7.0 Must issue a STARTTLS command first")
                return True
            if spec.get("auth") and not self.authed:
                await self.reply("530 5.7.0 Authentication required")
                return True
            await self.delay("mail")
            if await self.endless("mail"):
                return False
            handled = await self.fault_reply("mail")
            if handled is not None:
                return handled
            done = await self.configured_reply("mail")
            if done is not None:
                if done[1]:
                    self.mail_from = line[10:].strip() if len(line) > 10 else ""
                    self.rcpts = []
                return done[0]
            if self.over_rate(time.time()):
                await self.reply(spec.get("throttle", "421 4.7.0 Try again later"))
                return not spec.get("throttle", "421").startswith("421")
            self.mail_from = line[10:].strip() if len(line) > 10 else ""
            self.rcpts = []
            await self.reply("250 2.1.0 OK")
        elif verb == "RCPT":
            if self.mail_from is None:
                await self.reply("503 5.5.1 MAIL first")
                return True
            await self.delay("rcpt")
            if await self.endless("rcpt"):
                return False
            m = re.search(r"<([^>]*)>", line)
            addr = m.group(1) if m else ""
            handled = await self.fault_reply("rcpt")
            if handled is not None:
                return handled
            done = await self.configured_reply("rcpt")
            if done is not None:
                if done[1]:
                    self.rcpts.append(addr)
                return done[0]
            for pattern, reply in spec.get("recipients", {}).items():
                if re.search(pattern, addr, re.I):
                    await self.reply(reply)
                    return not reply.startswith("421")
            self.rcpts.append(addr)
            await self.reply("250 2.1.5 OK")
        elif verb == "DATA":
            if not self.rcpts:
                await self.reply("503 5.5.1 RCPT first")
                return True
            await self.reply("354 Go ahead")
            if "close_in_data" in spec:
                return await self.close_in_data(spec["close_in_data"])
            data = []
            while True:
                raw = await self.r.readline()
                if not raw:
                    self.ev("eof-in-data")
                    return False
                if raw in (b".\r\n", b".\n"):
                    break
                data.append(raw[1:] if raw.startswith(b"..") else raw)
            body = b"".join(data)
            await self.delay("data")
            if spec.get("close_after_dot"):
                self.ev("close-after-dot", mail_from=self.mail_from, rcpts=self.rcpts,
                        size=len(body))
                self.w.transport.abort()
                return False
            if await self.endless("data"):
                return False
            handled = await self.fault_reply("data")
            if handled is not None:
                self.ev("message", mail_from=self.mail_from, rcpts=self.rcpts, size=len(body),
                        accepted=False, message_id=header_message_id(body))
                self.mail_from = None
                self.rcpts = []
                return handled
            reply = self.configured("data")
            if reply is None:
                reply = spec.get("data_reply", "250 2.0.0 OK queued")
            if reply.startswith("2"):
                self.accept()
                self.save(body)
            self.ev("message", mail_from=self.mail_from, rcpts=self.rcpts, size=len(body),
                    accepted=reply.startswith("2"), message_id=header_message_id(body))
            await self.reply(reply)
            if reply.startswith("2"):
                after_accept(self, body)
            self.transactions += 1
            self.mail_from = None
            self.rcpts = []
            if reply.startswith("421"):
                return False
        elif verb == "RSET":
            self.mail_from = None
            self.rcpts = []
            await self.reply("250 2.0.0 OK")
        elif verb == "NOOP":
            await self.reply("250 2.0.0 OK")
        elif verb == "QUIT":
            await self.delay("quit")
            if await self.endless("quit"):
                return False
            await self.reply(self.configured("quit") or "221 2.0.0 Bye")
            return False
        else:
            await self.reply("502 5.5.2 Command not recognised")
        return True

    # ---- fault keys: replies no well-behaved server sends ----

    async def fault_reply(self, what):
        """Sends the raw_reply or long_reply configured for `what`, if any. Returns None when
        none is configured, else whether the session goes on."""
        spec = self.spec
        raw = spec.get("raw_reply", {}).get(what)
        if raw is not None:
            data = raw.encode("latin-1")
        else:
            lr = spec.get("long_reply", {}).get(what)
            if lr is None:
                return None
            final = lr.get("final", "451 4.7.1 end of a long reply")
            code = final[:3]
            width = int(lr.get("width", 80))
            filler = ("x" * width)[: max(0, width - 4)]
            body = b"".join(("%s-%s\r\n" % (code, filler)).encode()
                            for _ in range(max(0, int(lr.get("lines", 1)) - 1)))
            data = body + final.encode() + b"\r\n"
        self.w.write(data)
        await self.w.drain()
        self.ev("reply", text=data[:2000].decode("latin-1"), raw_len=len(data))
        last = data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
        return last[:1] in (b"2", b"3")

    async def endless(self, what):
        """Continuation lines forever instead of the reply to `what`, if configured. Returns
        True when it ran (the client has gone), False when not configured."""
        cfg = (self.spec.get("endless") or {}).get(what)
        if cfg is None:
            return False
        interval = max(0, int(cfg.get("interval_ms", 0))) / 1000
        line = b"220-" if what == "greeting" else b"250-"
        line += b"endless continuation, no final line ever\r\n"
        sent = 0
        try:
            while not self.w.transport.is_closing():
                # In bursts when there is no interval: drain() only waits once the socket
                # buffer is full, so sleep(0) lets the other sessions and the stop signal run.
                for _ in range(1 if interval else 64):
                    self.w.write(line)
                    sent += 1
                await self.w.drain()
                await asyncio.sleep(interval)
        except (ConnectionError, OSError):
            pass
        self.ev("endless", what=what, lines=sent)
        return True

    async def close_in_data(self, n):
        """Reads n lines of the message, then drops the connection without a reply."""
        for _ in range(int(n)):
            if not await self.r.readline():
                break
        self.ev("close-in-data", lines=int(n))
        self.w.transport.abort()
        return False

    async def break_tls(self, how):
        """After "220 Ready to start TLS": no handshake, just a close or plain text."""
        if how == "garbage":
            self.w.write(b"this is not a TLS handshake\r\n" * 4)
            await self.w.drain()
        self.ev("tls-broken", how=how)
        return False

    async def auth(self, line):
        creds = self.spec.get("auth")
        parts = line.split(" ")
        if not creds or len(parts) < 2:
            await self.reply("503 5.5.1 AUTH not available")
            return
        if self.spec.get("echo_auth"):
            return await self.echo_auth(line, parts)
        user = password = None
        if parts[1].upper() == "PLAIN":
            blob = parts[2] if len(parts) > 2 else None
            if blob is None:
                await self.reply("334 ")
                blob = await self.readline()
            try:
                _, user, password = base64.b64decode(blob).decode().split("\0")
            except Exception:
                pass
        elif parts[1].upper() == "LOGIN":
            await self.reply("334 VXNlcm5hbWU6")
            user = base64.b64decode(await self.readline() or "").decode("utf-8", "replace")
            await self.reply("334 UGFzc3dvcmQ6")
            password = base64.b64decode(await self.readline() or "").decode("utf-8", "replace")
        if user == creds["user"] and password == creds["password"]:
            self.authed = True
            await self.reply("235 2.7.0 Authentication successful")
        else:
            await self.reply("535 5.7.8 Authentication credentials invalid")

    async def echo_auth(self, line, parts):
        """A broken server: 535 quoting the whole AUTH exchange, credentials and all."""
        said = [line]
        mech = parts[1].upper()
        if mech == "PLAIN" and len(parts) < 3:
            await self.reply("334 ")
            said.append(await self.readline() or "")
        elif mech == "LOGIN":
            if len(parts) < 3:
                await self.reply("334 VXNlcm5hbWU6")
                said.append(await self.readline() or "")
            await self.reply("334 UGFzc3dvcmQ6")
            said.append(await self.readline() or "")
        await self.reply("535 5.7.8 Authentication failed for: %s" % " ".join(said))
        self.ev("echo-auth", lines=len(said))

    def save(self, body):
        d = CONFIG.get("maildir")
        if not d:
            return
        os.makedirs(d, exist_ok=True)
        name = "%s-%d.eml" % (self.l.name, time.time_ns())
        with open(os.path.join(d, name), "wb") as f:
            f.write(body)


# ---- after the 250: late bounces, complaint reports and seed copies, over LMTP ----
#
# A provider's answer at the end of DATA is not the end of the story: Microsoft and Yahoo accept
# and bounce later by mail, users' complaints come back as reports (RFC 5965), and an accepted
# message lands in the inbox or in the junk folder. The functions below play that: they decide
# (pure: a counter and the config), compose the message a provider would send (the formats
# ipwarm's feedback reader knows, see the docstring), and deliver it to a mailbox server over
# LMTP (RFC 2033) after the configured delay, in a task of its own so that the SMTP session is
# never held up. Reports use CRLF line ends throughout, as mail on the wire does.

CRLF = b"\r\n"
# RFC 5321 4.1.2 Dot-string: a local part that needs no quoting.
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
DEFAULT_STATUS = {"dsn": "5.1.1", "microsoft": "5.1.10", "microsoft-text": "5.1.10",
                  "yahoo": "5.1.1"}
DEFAULT_DIAGNOSTIC = {
    "dsn": "{code} {status} <{rcpt}>: Recipient address rejected: User unknown",
    "microsoft": "{code} {status} RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP "
                 "address lookup",
    "microsoft-text": "{code} {status} RESOLVER.ADR.RecipientNotFound; Recipient not found by "
                      "SMTP address lookup",
    "yahoo": "{code} {status} delivery error: dd This user doesn't have a {domain} account "
             "({rcpt}) [0] - {hostname}",
}
# The reply code in a default diagnostic, by the status's class: Yahoo answers 554 where most
# answer 550.
REPLY_CODE = {"yahoo": {"5": "554", "4": "451"}}
BOUNCE_FORMATS = tuple(DEFAULT_STATUS)


def angle_addr(text):
    """The address inside <...> of a MAIL FROM or RCPT TO argument ("" for <>)."""
    m = re.search(r"<([^>]*)>", text or "")
    return m.group(1) if m else (text or "").split(" ")[0]


def lmtp_address(local, domain):
    """local@domain as an SMTP path wants it: the local part quoted when it is not a
    dot-string (RFC 5321 4.1.2), as "seed+[Gmail]/Spam"@gmail.test is."""
    if DOT_ATOM.fullmatch(local):
        return "%s@%s" % (local, domain)
    return '"%s"@%s' % (local.replace("\\", "\\\\").replace('"', '\\"'), domain)


def folder_address(rcpt, folder):
    """The LMTP recipient that files a copy for rcpt into folder: USER+FOLDER@domain, USER
    being rcpt's local part without any +detail (Dovecot: lmtp_save_to_detail_mailbox)."""
    local, _, domain = rcpt.rpartition("@")
    user = local.split("+", 1)[0]
    if folder.upper() == "INBOX":
        return lmtp_address(user, domain)
    return lmtp_address(user + "+" + folder, domain)


def check_after_keys(name, spec):
    """Refuses at start what would only fail at the first message: an unknown format, a
    regex that does not compile, a status that is not RFC 3463's class.subject.detail."""
    for key in ("late_bounce", "complain", "seeds"):
        cfg = spec.get(key)
        if cfg is None:
            continue
        where = "listener %s: %s" % (name, key)
        if not isinstance(cfg, dict) or "regex" not in cfg:
            raise SystemExit("smtpd.py: %s: expected a mapping with a regex" % where)
        for rx in ("regex", "junk_regex"):
            try:
                if cfg.get(rx) is not None:
                    re.compile(cfg[rx])
            except re.error as exc:
                raise SystemExit("smtpd.py: %s.%s: %s" % (where, rx, exc))
    lb = spec.get("late_bounce") or {}
    if lb and lb.get("format", "dsn") not in BOUNCE_FORMATS:
        raise SystemExit("smtpd.py: listener %s: late_bounce.format: %r is not one of %s"
                         % (name, lb["format"], ", ".join(BOUNCE_FORMATS)))
    if lb and "status" in lb and not re.fullmatch(r"[45]\.\d{1,3}\.\d{1,3}", lb["status"]):
        raise SystemExit("smtpd.py: listener %s: late_bounce.status: %r is not 4.x.x or 5.x.x"
                         % (name, lb["status"]))


def should_act(count, every):
    """Whether the count-th matching recipient (1, 2, ...) is acted on when every Nth is."""
    every = int(every or 0)
    return every > 0 and count % every == 0


def seed_folder(count, policy, headers):
    """The folder of the count-th seed copy: junk for every junk_every-th copy and for a copy
    whose header section matches junk_regex, else INBOX."""
    junk = policy.get("junk_folder", "Junk")
    rx = policy.get("junk_regex")
    if rx and re.search(rx, headers, re.I | re.M):
        return junk
    if should_act(count, policy.get("junk_every", 0)):
        return junk
    return "INBOX"


def crlf(data):
    """data with every line ending in CRLF, ending with one."""
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data if data.endswith(CRLF) else data + CRLF


def rfc5322_date(t):
    return email.utils.format_datetime(datetime.datetime.fromtimestamp(t, datetime.timezone.utc))


def new_id(host):
    return "<%d.%s@%s>" % (time.time_ns(), secrets.token_hex(4), host)


class Original:
    """What a report says about the message it answers, taken from the message as received."""

    def __init__(self, session, body):
        spec = session.spec
        self.host = spec.get("hostname", "mx.test")
        self.mail_from = angle_addr(session.mail_from)
        self.peer_ip = session.peer.rsplit(":", 1)[0]
        self.helo = session.helo or self.peer_ip
        self.tls = session.tls
        self.arrival = time.time()
        self.queue_id = secrets.token_hex(6).upper()
        body = crlf(body)
        head, sep, _ = body.partition(b"\r\n\r\n")
        self.head = head + CRLF if sep else body
        self.body = body
        hdrs = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(self.head)
        self.message_id = (hdrs.get("Message-ID") or "").strip() or None
        self.ipwarm_id = (hdrs.get("X-Ipwarm-Id") or "").strip() or None
        subject = hdrs.get("Subject") or ""
        self.subject = " ".join(str(subject).split())
        # the domain of the From address: the Reported-Domain of a complaint
        self.from_domain = email.utils.parseaddr(hdrs.get("From") or "")[1].rpartition("@")[2]
        self.head_text = self.head.decode("utf-8", "replace")

    def trace(self, rcpt=None):
        """The Return-Path and Received lines this server would have added (RFC 5321 4.4)."""
        lines = ["Return-Path: <%s>" % self.mail_from,
                 "Received: from %s (%s [%s])" % (self.helo, self.helo, self.peer_ip),
                 "\tby %s with %s id %s" % (self.host, "ESMTPS" if self.tls else "ESMTP",
                                           self.queue_id)]
        if rcpt:
            lines.append("\tfor <%s>; %s" % (rcpt, rfc5322_date(self.arrival)))
        else:
            lines[-1] += "; " + rfc5322_date(self.arrival)
        return ("\r\n".join(lines) + "\r\n").encode()

    def received(self, rcpt=None):
        """The Received line alone (a copy delivered over LMTP gets its Return-Path there)."""
        return self.trace(rcpt).split(CRLF, 1)[1]


def bounce_lines(fmt, rcpts, status, diagnostic, orig):
    """Per recipient: (address, status, diagnostic with its placeholders filled)."""
    out = []
    for r in rcpts:
        _, _, domain = r.rpartition("@")
        code = REPLY_CODE.get(fmt, {}).get(status[0], "%s50" % status[0])
        diag = diagnostic.format(rcpt=r, status=status, code=code, domain=domain,
                                 hostname=orig.host)
        out.append((r, status, diag))
    return out


def compose_bounce(fmt, rcpts, status, diagnostic, orig):
    """A bounce for rcpts of the original, in format fmt; returns (bytes, Message-ID)."""
    now = rfc5322_date(time.time())
    rows = bounce_lines(fmt, rcpts, status, diagnostic, orig)
    action = "delayed" if status.startswith("4") else "failed"
    rdomain = rcpts[0].rpartition("@")[2]
    msgid = new_id(orig.host)
    b = "=_%s" % secrets.token_hex(12)
    if fmt == "dsn":
        text = ["This is the mail system at host %s." % orig.host, ""]
        if action == "failed":
            text += ["Your message could not be delivered to one or more recipients.",
                     "The delivery report and the headers of your message are attached.", ""]
        else:
            text += ["Your message has not been delivered yet to one or more recipients;",
                     "delivery will be tried again. The delivery report and the headers of",
                     "your message are attached.", ""]
        text += ["<%s>: %s" % (r, d) for r, _, d in rows]
        status_part = ["Reporting-MTA: dns; %s" % orig.host,
                       "Received-From-MTA: dns; %s" % orig.helo,
                       "Arrival-Date: %s" % rfc5322_date(orig.arrival)]
        for r, st, d in rows:
            status_part += ["", "Final-Recipient: rfc822; %s" % r, "Action: %s" % action,
                            "Status: %s" % st, "Diagnostic-Code: smtp; %s" % d,
                            "Last-Attempt-Date: %s" % now]
        head = ["Date: %s" % now,
                "From: Mail Delivery System <MAILER-DAEMON@%s>" % orig.host,
                "To: <%s>" % orig.mail_from,
                "Subject: %s" % ("Undelivered Mail Returned to Sender" if action == "failed"
                                 else "Delayed Mail (still being retried)"),
                "Message-ID: %s" % msgid,
                "Auto-Submitted: auto-replied",
                "MIME-Version: 1.0",
                "Content-Type: multipart/report; report-type=delivery-status;",
                '\tboundary="%s"' % b]
        body = ("\r\n".join(head) + "\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n"
                "--%s\r\nContent-Description: Notification\r\n"
                "Content-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n\r\n"
                "--%s\r\nContent-Description: Delivery report\r\n"
                "Content-Type: message/delivery-status\r\n\r\n%s\r\n\r\n"
                "--%s\r\nContent-Description: Undelivered Message Headers\r\n"
                "Content-Type: text/rfc822-headers\r\n\r\n"
                % (b, "\r\n".join(text), b, "\r\n".join(status_part), b)).encode()
        body += orig.trace() + orig.head + ("\r\n--%s--\r\n" % b).encode()
        return body, msgid
    if fmt == "microsoft":
        b2 = "=_%s" % secrets.token_hex(12)
        plain, html, status_part = [], [], ["Reporting-MTA: dns;%s" % orig.host,
                                            "Received-From-MTA: dns;%s" % orig.helo,
                                            "Arrival-Date: %s" % rfc5322_date(orig.arrival)]
        for r, st, d in rows:
            local, _, dom = r.rpartition("@")
            plain += ["Your message to %s couldn't be delivered." % r,
                      "%s wasn't found at %s." % (local, dom), ""]
            html += ["<p>Your message to %s couldn't be delivered.</p>" % r]
        plain += ["Action Required                 Recipient", "Unknown To address", "",
                  "How to Fix It",
                  "The address may be misspelled or may not exist. Try one or more of the "
                  "following:",
                  "- Retype the recipient's address, then resend the message.", "",
                  "Diagnostic information for administrators:", "",
                  "Generating server: %s" % orig.host]
        for r, st, d in rows:
            plain += [r, "Remote Server returned '%s'" % d]
            html += ["<p>%s<br>Remote Server returned '%s'</p>" % (r, d.replace("<", "&lt;")
                                                                     .replace(">", "&gt;"))]
            status_part += ["", "Final-Recipient: rfc822;%s" % r, "Action: %s" % action,
                            "Status: %s" % st, "Diagnostic-Code: smtp;%s" % d]
        head = ["Date: %s" % now,
                "From: Microsoft Outlook <postmaster@%s>" % rdomain,
                "To: <%s>" % orig.mail_from,
                "Subject: Undeliverable: %s" % orig.subject,
                "Message-ID: %s" % msgid,
                "Content-Language: en-US",
                "X-MS-Exchange-Message-Is-Ndr:",
                "Auto-Submitted: auto-replied",
                "MIME-Version: 1.0",
                "Content-Type: multipart/report; report-type=delivery-status;",
                '\tboundary="%s"' % b]
        body = ("\r\n".join(head) + "\r\n\r\n"
                "--%s\r\nContent-Type: multipart/alternative; differences=Content-Type;\r\n"
                '\tboundary="%s"\r\n\r\n'
                "--%s\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\r\n%s\r\n\r\n"
                "--%s\r\nContent-Type: text/html; charset=\"us-ascii\"\r\n\r\n"
                "<html><body>%s</body></html>\r\n\r\n--%s--\r\n\r\n"
                "--%s\r\nContent-Type: message/delivery-status\r\n\r\n%s\r\n\r\n"
                "--%s\r\nContent-Type: message/rfc822\r\n\r\n"
                % (b, b2, b2, "\r\n".join(plain), b2, "\r\n".join(html), b2, b,
                   "\r\n".join(status_part), b)).encode()
        body += orig.trace() + orig.body + ("\r\n--%s--\r\n" % b).encode()
        return body, msgid
    if fmt == "microsoft-text":
        text = ["Delivery has failed to these recipients or groups:", ""]
        for r, _, _ in rows:
            text += ["%s (%s)" % (r, r),
                     "The email address you entered couldn't be found. Please check the "
                     "recipient's email address and try to resend the message. If the problem "
                     "continues, please contact your helpdesk.", ""]
        text += ["Diagnostic information for administrators:", "",
                 "Generating server: %s" % orig.host, ""]
        for r, _, d in rows:
            text += [r, "Remote Server returned '%s'" % d, ""]
        text += ["Original message headers:", ""]
        head = ["Date: %s" % now,
                "From: postmaster@%s" % rdomain,
                "To: %s" % orig.mail_from,
                "Subject: Undeliverable: %s" % orig.subject,
                "Message-ID: %s" % msgid,
                "Auto-Submitted: auto-replied",
                "MIME-Version: 1.0",
                'Content-Type: text/plain; charset="us-ascii"',
                "Content-Transfer-Encoding: 7bit"]
        body = ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(text) + "\r\n").encode()
        return body + orig.received() + orig.head, msgid
    if fmt == "yahoo":
        text = ["Sorry, we were unable to deliver your message to the following address.", ""]
        for r, _, d in rows:
            text += ["<%s>:" % r, d, ""]
        text += ["--- Below this line is a copy of the message.", ""]
        head = ["Date: %s" % now,
                "From: MAILER-DAEMON@%s" % orig.host,
                "To: %s" % orig.mail_from,
                "Subject: Failure Notice",
                "Message-ID: %s" % msgid]
        body = ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(text) + "\r\n").encode()
        return body + orig.trace() + orig.body, msgid
    raise ValueError("late_bounce.format: %r is not one of %s" % (fmt, ", ".join(BOUNCE_FORMATS)))


def compose_complaint(rcpt, cfg, orig, sender):
    """An RFC 5965 complaint report about the copy for rcpt; returns (bytes, Message-ID)."""
    now = rfc5322_date(time.time())
    rdomain = rcpt.rpartition("@")[2]
    msgid = new_id("arf." + rdomain)
    b = "=_%s" % secrets.token_hex(12)
    reported = orig.from_domain or orig.mail_from.rpartition("@")[2]
    fields = ["Feedback-Type: %s" % cfg.get("feedback_type", "abuse"),
              "User-Agent: %s" % cfg.get("user_agent", "ipwarm-sandbox-feedback/1.0"),
              "Version: 1",
              "Original-Mail-From: <%s>" % orig.mail_from,
              "Original-Rcpt-To: <%s>" % rcpt,
              "Arrival-Date: %s" % rfc5322_date(orig.arrival),
              "Reporting-MTA: dns; %s" % orig.host,
              "Source-IP: %s" % orig.peer_ip]
    if reported:
        fields.append("Reported-Domain: %s" % reported)
    text = ["This is an email abuse report for an email message received from IP %s on %s."
            % (orig.peer_ip, rfc5322_date(orig.arrival)),
            "A user of %s marked it as spam. For more information about this format please "
            "see RFC 5965." % rdomain]
    head = ["Date: %s" % now,
            "From: %s" % sender,
            "To: <%s>" % cfg["_to"],
            "Subject: FW: %s" % orig.subject,
            "Message-ID: %s" % msgid,
            "MIME-Version: 1.0",
            "Content-Type: multipart/report; report-type=feedback-report;",
            '\tboundary="%s"' % b]
    body = ("\r\n".join(head) + "\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n"
            "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n%s\r\n\r\n"
            "--%s\r\nContent-Type: message/feedback-report\r\n\r\n%s\r\n\r\n"
            "--%s\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
            % (b, "\r\n".join(text), b, "\r\n".join(fields), b)).encode()
    body += orig.trace(rcpt) + orig.body + ("\r\n--%s--\r\n" % b).encode()
    return body, msgid


class DeliverError(Exception):
    pass


async def lmtp_send(target, mail_from, rcpt, data, helo="smtpd.test", timeout=30):
    """Delivers data to rcpt over LMTP at target ("host:port"); returns the final reply, or
    raises DeliverError with the server's refusal or the connection's failure."""
    host, _, port = target.rpartition(":")

    async def exchange():
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            async def read_reply():
                lines = []
                while True:
                    raw = await reader.readline()
                    if not raw:
                        raise DeliverError("the LMTP server closed the connection")
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    lines.append(line)
                    if line[3:4] != "-":
                        return "\n".join(lines)

            async def command(line, want):
                writer.write(line.encode() + CRLF)
                await writer.drain()
                reply = await read_reply()
                if not reply.startswith(want):
                    raise DeliverError("%s: %s" % (line.split(":")[0], reply))
                return reply

            greeting = await read_reply()
            if not greeting.startswith("220"):
                raise DeliverError("greeting: %s" % greeting)
            await command("LHLO %s" % helo, "250")
            await command("MAIL FROM:<%s>" % mail_from, "250")
            await command("RCPT TO:<%s>" % rcpt, "250")
            await command("DATA", "354")
            stuffed = re.sub(rb"(?m)^\.", b"..", crlf(data))
            writer.write(stuffed + b".\r\n")
            await writer.drain()
            final = await read_reply()  # LMTP: one reply per accepted recipient (RFC 2033 4.2)
            if not final.startswith("2"):
                raise DeliverError("after DATA: %s" % final)
            writer.write(b"QUIT\r\n")
            await writer.drain()
            return final
        finally:
            writer.close()

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except asyncio.TimeoutError:
        raise DeliverError("no answer from the LMTP server %s within %d s" % (target, timeout))
    except OSError as exc:
        raise DeliverError("LMTP server %s: %s" % (target, exc))


async def deliver_later(session, delay_ms, mail_from, rcpt, data, event):
    """Waits delay_ms, delivers, and logs event with "delivered" (and "error")."""
    try:
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        target = (session.spec.get("deliver") or CONFIG.get("deliver") or {}).get("lmtp")
        if not target:
            raise DeliverError("no deliver.lmtp in the config")
        reply = await lmtp_send(target, mail_from, rcpt, data, session.spec.get("hostname",
                                                                                  "mx.test"))
        event.update(delivered=True, reply=reply)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a failed delivery is logged; the server goes on
        event.update(delivered=False, error=str(exc) or exc.__class__.__name__)
    session.ev(event.pop("ev"), **event)


def schedule(session, coro):
    task = asyncio.get_running_loop().create_task(coro)
    session.l.tasks.add(task)
    task.add_done_callback(session.l.tasks.discard)


def after_accept(session, body):
    """Plans the late bounce, complaint reports and seed copies of an accepted message."""
    spec = session.spec
    try:
        orig = Original(session, body)
    except Exception as exc:
        session.ev("after-accept-failed", error=str(exc))
        return
    rcpts = list(session.rcpts)
    lb = spec.get("late_bounce")
    if lb:
        chosen = []
        for r in rcpts:
            if re.search(lb["regex"], r, re.I):
                session.l.counts["late_bounce"] += 1
                if should_act(session.l.counts["late_bounce"], lb.get("every", 1)):
                    chosen.append(r)
        if chosen:
            fmt = lb.get("format", "dsn")
            status = lb.get("status", DEFAULT_STATUS.get(fmt, "5.1.1"))
            event = {"ev": "late-bounce", "rcpts": chosen, "to": orig.mail_from, "format": fmt,
                     "status": status, "message_id": orig.message_id,
                     "ipwarm_id": orig.ipwarm_id}
            try:
                if not orig.mail_from:
                    raise DeliverError("the message came from the null sender <>: no bounce")
                data, event["report_id"] = compose_bounce(
                    fmt, chosen, status, lb.get("diagnostic", DEFAULT_DIAGNOSTIC.get(fmt, "")),
                    orig)
            except Exception as exc:
                event.update(delivered=False, error=str(exc))
                session.ev(event.pop("ev"), **event)
            else:
                schedule(session, deliver_later(session, int(lb.get("delay_ms", 0)), "",
                                                orig.mail_from, data, event))
    cp = spec.get("complain")
    if cp:
        for r in rcpts:
            if not re.search(cp["regex"], r, re.I):
                continue
            session.l.counts["complain"] += 1
            if not should_act(session.l.counts["complain"], cp.get("every", 1)):
                continue
            to = cp.get("to") or orig.mail_from
            sender = cp.get("from") or "feedback@arf.%s" % r.rpartition("@")[2]
            event = {"ev": "complaint", "rcpt": r, "to": to, "message_id": orig.message_id,
                     "ipwarm_id": orig.ipwarm_id}
            if not to:
                event.update(delivered=False, error="no address for the report: <> and no to")
                session.ev(event.pop("ev"), **event)
                continue
            data, event["report_id"] = compose_complaint(r, dict(cp, _to=to), orig, sender)
            schedule(session, deliver_later(session, int(cp.get("delay_ms", 0)), sender, to,
                                            data, event))
    sd = spec.get("seeds")
    if sd:
        for r in rcpts:
            if not re.search(sd["regex"], r, re.I):
                continue
            session.l.counts["seeds"] += 1
            n = session.l.counts["seeds"]
            folder = seed_folder(n, sd, orig.head_text)
            event = {"ev": "placed", "rcpt": r, "folder": folder, "copy": n,
                     "message_id": orig.message_id, "ipwarm_id": orig.ipwarm_id}
            schedule(session, deliver_later(session, int(sd.get("delay_ms", 0)), orig.mail_from,
                                            folder_address(r, folder),
                                            orig.received(r) + orig.body, event))


async def main(path):
    global LOG, CONFIG
    with open(path) as f:
        CONFIG = json.load(f)
    LOG = open(CONFIG.get("log", "/dev/null"), "a")
    servers = []
    for spec in CONFIG["listeners"]:
        listener = Listener(spec)

        async def handle(reader, writer, listener=listener):
            await Session(listener, reader, writer).run()

        servers.append(await asyncio.start_server(handle, spec.get("host", "127.0.0.1"),
                                                  spec["port"], limit=1 << 20))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if CONFIG.get("ready_file"):
        with open(CONFIG["ready_file"], "w") as f:
            f.write(str(os.getpid()))
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
