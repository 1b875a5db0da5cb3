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
  delay_ms            {"greeting": N, "mail": N, "rcpt": N, "data": N}: tarpit before replying
  mode_file           a file whose content (a key of "modes") switches behaviour at run time
  modes               {"blocklist": {"mail": "550 5.7.1 ... (S3150)"}}: per-mode overrides of
                      the reply to "mail", "rcpt" or "data", and of "delay_ms"
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


class Listener:
    def __init__(self, spec):
        self.spec = spec
        self.name = spec.get("name", "smtp")
        self.accepted = []  # times of accepted messages, for the rolling rate limit
        self.ssl_ctx = None
        st = spec.get("starttls")
        if st:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            if st.get("min") in ("1.0", "1.1") or st.get("max") in ("1.0", "1.1"):
                # Old protocol versions need the lowest OpenSSL security level to be offered.
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = tls_version(st.get("min", "1.2"))
            ctx.maximum_version = tls_version(st.get("max", "1.3"))
            ctx.load_cert_chain(st["cert"], st["key"])
            self.ssl_ctx = ctx

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
        self.accepted = [t for t in self.accepted if now - t < 60]
        return len(self.accepted) >= limit


class Session:
    def __init__(self, listener, reader, writer):
        self.l = listener
        self.r = reader
        self.w = writer
        peer = writer.get_extra_info("peername")
        self.peer = "%s:%s" % (peer[0], peer[1]) if peer else "?"
        self.conn = "%s-%d" % (self.peer, int(time.time() * 1e6))
        self.tls = False
        self.authed = False
        self.mail_from = None
        self.rcpts = []
        self.transactions = 0

    def ev(self, kind, **kw):
        kw.update({"listener": self.l.name, "conn": self.conn, "peer": self.peer, "ev": kind})
        log(kw)

    async def delay(self, what):
        ms = self.l.mode().get("delay_ms", self.l.spec.get("delay_ms", {})).get(what, 0)
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
        spec = self.l.spec
        self.ev("connect")
        try:
            await self.delay("greeting")
            handled = await self.fault_reply("greeting")
            if handled is not None:
                if not handled:
                    return
                greeting = "220"
            else:
                greeting = spec.get("greeting", "220 %s ESMTP ipwarm-test" % spec.get("hostname", "mx.test"))
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
                    # Never log credentials, not even a test server's.
                    shown = " ".join(line.split(" ")[:2]) + " ***"
                self.ev("cmd", line=shown)
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
        spec = self.l.spec
        ext = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
        if spec.get("size"):
            ext.append("SIZE %d" % spec["size"])
        if self.l.ssl_ctx and not self.tls:
            ext.append("STARTTLS")
        if spec.get("auth"):
            ext.append("AUTH PLAIN LOGIN")
        lines = ["250-%s greets %s" % (spec.get("hostname", "mx.test"), helo)]
        lines += ["250-" + e for e in ext[:-1]] + ["250 " + ext[-1]]
        return "\n".join(lines)

    async def command(self, line):
        spec = self.l.spec
        verb = line.split(" ", 1)[0].upper()
        mode = self.l.mode()
        if verb in ("EHLO", "HELO"):
            handled = await self.fault_reply("ehlo")
            if handled is not None:
                return handled
            helo = line[5:].strip()
            await self.reply(self.ehlo_lines(helo) if verb == "EHLO" else "250 %s" % spec.get("hostname", "mx.test"))
        elif verb == "STARTTLS":
            if not self.l.ssl_ctx or self.tls:
                await self.reply("454 4.7.0 TLS not available")
                return True
            await self.reply("220 2.0.0 Ready to start TLS")
            if spec.get("tls_break"):
                return await self.break_tls(spec["tls_break"])
            try:
                await self.w.start_tls(self.l.ssl_ctx)
            except (ssl.SSLError, ConnectionError, OSError) as exc:
                self.ev("tls-failed", error=str(exc))
                return False
            self.tls = True
            obj = self.w.get_extra_info("ssl_object")
            self.ev("tls", version=obj.version() if obj else None)
        elif verb == "AUTH":
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
            handled = await self.fault_reply("mail")
            if handled is not None:
                return handled
            if "mail" in mode:
                await self.reply(mode["mail"])
                return True
            if self.l.over_rate(time.time()):
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
            m = re.search(r"<([^>]*)>", line)
            addr = m.group(1) if m else ""
            handled = await self.fault_reply("rcpt")
            if handled is not None:
                return handled
            if "rcpt" in mode:
                await self.reply(mode["rcpt"])
                return True
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
            handled = await self.fault_reply("data")
            if handled is not None:
                self.ev("message", mail_from=self.mail_from, rcpts=self.rcpts, size=len(body),
                        accepted=False)
                self.mail_from = None
                self.rcpts = []
                return handled
            reply = mode.get("data", spec.get("data_reply", "250 2.0.0 OK queued"))
            if reply.startswith("2"):
                self.l.accepted.append(time.time())
                self.save(body)
            self.ev("message", mail_from=self.mail_from, rcpts=self.rcpts, size=len(body),
                    accepted=reply.startswith("2"))
            await self.reply(reply)
            self.transactions += 1
            self.mail_from = None
            self.rcpts = []
        elif verb == "RSET":
            self.mail_from = None
            self.rcpts = []
            await self.reply("250 2.0.0 OK")
        elif verb == "NOOP":
            await self.reply("250 2.0.0 OK")
        elif verb == "QUIT":
            await self.reply("221 2.0.0 Bye")
            return False
        else:
            await self.reply("502 5.5.2 Command not recognised")
        return True

    # ---- fault keys: replies no well-behaved server sends ----

    async def fault_reply(self, what):
        """Sends the raw_reply or long_reply configured for `what`, if any. Returns None when
        none is configured, else whether the session goes on."""
        spec = self.l.spec
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
        creds = self.l.spec.get("auth")
        parts = line.split(" ")
        if not creds or len(parts) < 2:
            await self.reply("503 5.5.1 AUTH not available")
            return
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
