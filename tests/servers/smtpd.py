#!/usr/bin/python3
"""A scriptable SMTP server for ipwarm's integration tests and sandbox (RFC 5321, RFC 3207).

It behaves like a mailbox provider as far as a warm-up sender can tell: it can greet with a
refusal, throttle past a per-minute rate with a (multi-line) reply, answer per-recipient
bounces and deferrals, offer STARTTLS with a given certificate and TLS versions, ask for AUTH,
advertise SIZE, stall (tarpit) and switch behaviour while running (a "mode" file). Every line it
receives and every reply it sends is written as a JSON line to the log, so tests can assert the
exact dialogue; accepted messages are saved whole.

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
"""
import asyncio
import base64
import json
import os
import re
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
        check_phases(spec, self.name)
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
                        accepted=False)
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
                    accepted=reply.startswith("2"))
            await self.reply(reply)
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
