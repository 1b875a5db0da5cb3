#!/usr/bin/python3
"""Runs tests of the OpenSPF RFC 7208 suite (release 2014.04, as Debian's python3-spf installs
it) through the `ipwarm spf` command, over real DNS: a small authoritative server on 127.0.0.1
(UDP and TCP, a free port) serves each scenario's zone data, and the binary asks it with --dns.

Usage: suite_cli.py IPWARM SUITE [--all]
  Without --all: the tests whose HELO is not a domain name (an address literal "[1.2.3.5]", a
  phrase with a space, "%%%..."): what a client may send and the command must take. There must
  be exactly four of them in this release, so that a change of the selection cannot go unseen.
  With --all: every test of the suite (by hand: the tests that expect the suite driver's own
  default explanation "DEFAULT" fail, the command has no option to set it).
Prints one "ok: ..." or "FAIL: ..." line per test and per check (tests/lib/assert.sh tally).

The zone is served as the suite's driver (testspf.py) loads it, like tests/unit/test_spf_suite.c:
an SPF record stands for both an SPF (type 99) and a TXT record unless the name has TXT records
of its own; TXT strings given as a list are the character-strings of one record; "TIMEOUT"
makes every query for the name go unanswered except for the types listed before it.
"""
import gzip
import json
import re
import socket
import socketserver
import struct
import subprocess
import sys
import threading

import yaml

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SPF": 99}
TIMEOUT = object()


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("utf-8")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def txt_rdata(value):
    parts = value if isinstance(value, list) else [value]
    out = b""
    for part in parts or [""]:
        raw = str(part).encode("utf-8")
        chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        for c in chunks:
            out += bytes([len(c)]) + c
    return out


class Zone:
    """name (lower case, no final dot) -> list of (type, rdata), and the names that time out."""

    def __init__(self, zonedata):
        self.records, self.timeout = {}, {}
        for name, rrs in (zonedata or {}).items():
            key = str(name).rstrip(".").lower()
            recs, seen, has_txt = [], set(), any(isinstance(r, dict) and "TXT" in r for r in rrs)
            for rr in rrs:
                if rr == "TIMEOUT":
                    self.timeout[key] = set(seen)
                    continue
                (kind, value), = rr.items()
                if value == "NONE":  # no record, but the name exists (and the type may time out)
                    continue
                seen.add(TYPES[kind])
                recs.append((TYPES[kind], self.rdata(kind, value)))
            if not has_txt:
                recs += [(TYPES["TXT"], rd) for t, rd in list(recs) if t == TYPES["SPF"]]
            self.records[key] = recs

    @staticmethod
    def rdata(kind, value):
        if kind == "A":
            return socket.inet_pton(socket.AF_INET, value)
        if kind == "AAAA":
            return socket.inet_pton(socket.AF_INET6, value)
        if kind in ("TXT", "SPF"):
            return txt_rdata(value)
        if kind == "MX":
            return struct.pack(">H", int(value[0])) + wire_name(value[1] or ".")
        return wire_name(value)  # PTR, CNAME, NS

    def answer(self, query):
        """The reply to one query (bytes), or None to stay silent (TIMEOUT)."""
        qid, flags, qd = struct.unpack(">HHH", query[:6])
        off, labels = 12, []
        while query[off]:
            n = query[off]
            labels.append(query[off + 1:off + 1 + n].decode("utf-8", "replace"))
            off += 1 + n
        qtype, qclass = struct.unpack(">HH", query[off + 1:off + 5])
        question = query[12:off + 5]
        name = ".".join(labels).lower()
        answers, rcode = [], 0
        if name in self.timeout and qtype not in self.timeout[name]:
            return None
        target = name
        for _ in range(8):  # follow CNAMEs inside the zone
            if target not in self.records:
                rcode = 0 if answers else 3
                break
            recs = self.records[target]
            cname = [rd for t, rd in recs if t == TYPES["CNAME"]]
            if cname and qtype != TYPES["CNAME"]:
                answers.append((target, TYPES["CNAME"], cname[0]))
                target = self.decode_name(cname[0])
                if target in self.timeout and qtype not in self.timeout[target]:
                    return None
                continue
            answers += [(target, t, rd) for t, rd in recs if t == qtype]
            break
        flags = 0x8400 | (flags & 0x0100) | rcode  # QR, AA, RD copied
        out = struct.pack(">HHHHHH", qid, flags, 1, len(answers), 0, 0) + question
        for owner, t, rd in answers:
            out += wire_name(owner) + struct.pack(">HHIH", t, 1, 300, len(rd)) + rd
        return out

    @staticmethod
    def decode_name(wire):
        labels, off = [], 0
        while wire[off]:
            labels.append(wire[off + 1:off + 1 + wire[off]].decode("utf-8", "replace"))
            off += 1 + wire[off]
        return ".".join(labels).lower()


class Server:
    """UDP and TCP on one free port of 127.0.0.1, answering from self.zone."""

    def __init__(self):
        self.zone = Zone({})
        outer = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                reply = outer.zone.answer(data)
                if reply is None:
                    return
                if len(reply) > 512:  # truncated: the client asks again over TCP
                    reply = bytearray(reply[:12] + data[12:])
                    reply[2] |= 0x02
                    reply[6:12] = b"\0" * 6
                    reply = bytes(reply)
                sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                while True:
                    head = self.request.recv(2)
                    if len(head) < 2:
                        return
                    (n,) = struct.unpack(">H", head)
                    data = b""
                    while len(data) < n:
                        more = self.request.recv(n - len(data))
                        if not more:
                            return
                        data += more
                    reply = outer.zone.answer(data)
                    if reply is None:
                        return
                    self.request.sendall(struct.pack(">H", len(reply)) + reply)

        for _ in range(20):
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
            port = udp.server_address[1]
            try:
                tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), Tcp)
            except OSError:
                udp.server_close()
                continue
            break
        else:
            raise SystemExit("suite_cli.py: no free port for both UDP and TCP")
        self.port = port
        for srv in (udp, tcp):
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()


DOMAIN = re.compile(r"^[A-Za-z0-9_.-]+$")


def main():
    ipwarm, suite = sys.argv[1], sys.argv[2]
    run_all = "--all" in sys.argv[3:]
    with gzip.open(suite, "rt", encoding="utf-8") as f:
        scenarios = list(yaml.safe_load_all(f))
    server = Server()
    ran = failed = 0
    for sc in scenarios:
        if not sc:
            continue
        tests = [(tid, t) for tid, t in sc["tests"].items()
                 if run_all or not DOMAIN.match(str(t.get("helo", "")))]
        if not tests:
            continue
        server.zone = Zone(sc.get("zonedata"))
        for tid, t in tests:
            ran += 1
            want = t["result"] if isinstance(t["result"], list) else [t["result"]]
            helo, host, sender = str(t["helo"]), str(t["host"]), str(t.get("mailfrom", ""))
            cmd = [ipwarm, "--dns", "127.0.0.1:%d" % server.port, "--dns-timeout", "300",
                   "spf", "--ip", host, "--sender", sender, "--helo", helo, "--json"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            what = "%s (helo %r, mailfrom %r, host %s)" % (tid, helo, sender, host)
            try:
                got = json.loads(proc.stdout) if proc.returncode == 0 else None
            except ValueError:
                got = None
            if got is None:
                failed += 1
                print("FAIL: %s: exit %d, stdout %r, stderr %r"
                      % (what, proc.returncode, proc.stdout[:200], proc.stderr.strip()[:300]))
                continue
            problems = []
            if got.get("result") not in want:
                problems.append("result %s, expected %s" % (got.get("result"), "/".join(want)))
            if "explanation" in t and got.get("explanation") != t["explanation"]:
                problems.append("explanation %r, expected %r" % (got.get("explanation"),
                                                                 t["explanation"]))
            if got.get("helo") != helo:
                problems.append("JSON helo %r, not the HELO given" % got.get("helo"))
            if problems:
                failed += 1
                print("FAIL: %s: %s" % (what, "; ".join(problems)))
            else:
                print("ok: %s: %s" % (what, got["result"]))
    if not run_all and ran != 4:
        print("FAIL: %d tests with a HELO that is not a domain name, expected the suite's 4" % ran)
    print("# %d of %d suite tests passed through the command" % (ran - failed, ran))


if __name__ == "__main__":
    main()
