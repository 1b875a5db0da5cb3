#!/usr/bin/python3
"""A tiny DNS server on loopback that answers badly on purpose, for ipwarm's DNS fault tests
(tests/cli/test_faults_dns.sh). RFC 1035 wire format, UDP and TCP on the same port.

Usage: fakedns.py PORT_FILE ADDRESS [HEAL_FILE]
Binds 127.0.0.1 on a free port (UDP and TCP), writes the port to PORT_FILE, and answers by the
first label of the zone under .test that the question names (mx.NAME.test belongs to NAME):

  ok          MX 10 mx.ok.test; A of mx.ok.test is ADDRESS
  servfail    SERVFAIL
  timeout     no answer at all
  tc          an empty answer with TC set, over UDP and over TCP alike
  tcclose     UDP: an empty answer with TC set; TCP: the connection is closed at once
  tcok        UDP: an empty answer with TC set; TCP: the full answer (as ok)
  garbage     a reply with the query's ID followed by random bytes
  short       a reply of 7 bytes (a header cut short)
  loop        an MX answer whose target name is a compression pointer to itself
  overrun     an answer whose RDLENGTH runs past the end of the message
  aservfail   MX 10 mx.aservfail.test, but SERVFAIL for the host's A and AAAA
  (other)     NXDOMAIN

When HEAL_FILE exists, every name answers as ok does (MX mx.NAME.test, its A is ADDRESS), so
that a test can check that recipients whose lookups failed are sent later. AAAA questions get
an empty NOERROR answer. Each question is logged to stderr as "proto qname qtype behaviour".
"""
import os
import random
import socket
import struct
import sys
import threading

PORT_FILE, ADDRESS = sys.argv[1], sys.argv[2]
HEAL = sys.argv[3] if len(sys.argv) > 3 else None


def parse_question(msg):
    qid, flags, qd = struct.unpack(">HHH", msg[:6])
    off, labels = 12, []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace").lower())
        off += 1 + n
    off += 1
    qtype, qclass = struct.unpack(">HH", msg[off:off + 4])
    return qid, flags, labels, qtype, msg[12:off + 4]


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(qid, flags_in, rcode, an, tc=False):
    flags = 0x8000 | (flags_in & 0x0100) | 0x0400 | (0x0200 if tc else 0) | 0x0080 | rcode
    return struct.pack(">HHHHHH", qid, flags, 1, an, 0, 0)


def rr(rtype, rdata, ttl=60):
    # The owner is the question's name (pointer to offset 12).
    return b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def behaviour(labels):
    if len(labels) < 2 or labels[-1] != "test":
        return "nx"
    zone = labels[-2]
    if HEAL and os.path.exists(HEAL):
        return "ok"
    return zone if zone in ("ok", "servfail", "timeout", "tc", "tcclose", "tcok", "garbage", "short",
                            "loop", "overrun", "aservfail") else "nx"


def good(qid, flags, labels, qtype, question):
    name = ".".join(labels)
    zone = labels[-2]
    if qtype == 15 and labels[0] != "mx":
        target = encode_name("mx.%s.test" % zone)
        return header(qid, flags, 0, 1) + question + rr(15, struct.pack(">H", 10) + target)
    if qtype == 1 and labels[0] == "mx":
        return header(qid, flags, 0, 1) + question + rr(1, socket.inet_aton(ADDRESS))
    return header(qid, flags, 0, 0) + question  # NODATA


def answer(msg, proto):
    qid, flags, labels, qtype, question = parse_question(msg)
    b = behaviour(labels)
    sys.stderr.write("%s %s %d %s\n" % (proto, ".".join(labels), qtype, b))
    sys.stderr.flush()
    if b == "timeout":
        return None
    if b == "servfail":
        return header(qid, flags, 2, 0) + question
    if b == "nx":
        return header(qid, flags, 3, 0) + question
    if b == "tc" or (b in ("tcclose", "tcok") and proto == "udp"):
        return header(qid, flags, 0, 0, tc=True) + question
    if b == "tcclose":
        return b"close"
    if b == "garbage":
        return struct.pack(">H", qid) + bytes(random.getrandbits(8) for _ in range(60))
    if b == "short":
        return struct.pack(">HHH", qid, 0x8180, 1) + b"\0"
    if b == "loop" and qtype == 15:
        # The target name at offset p is a pointer to p itself.
        head = header(qid, flags, 0, 1) + question
        p = len(head) + 2 + 10 + 2
        rdata = struct.pack(">H", 10) + struct.pack(">H", 0xC000 | p)
        return head + rr(15, rdata)
    if b == "overrun" and qtype == 15:
        head = header(qid, flags, 0, 1) + question
        return head + b"\xc0\x0c" + struct.pack(">HHIH", 15, 1, 60, 200) + b"\0\x0a\x02mx"
    if b == "aservfail" and labels[0] == "mx":
        return header(qid, flags, 2, 0) + question
    return good(qid, flags, labels, qtype, question)


def udp_loop(s):
    while True:
        msg, peer = s.recvfrom(4096)
        try:
            out = answer(msg, "udp")
        except Exception as exc:  # a question we cannot parse: no answer
            sys.stderr.write("udp error %s\n" % exc)
            continue
        if out:
            s.sendto(out, peer)


def tcp_conn(c):
    try:
        while True:
            n = c.recv(2)
            if len(n) < 2:
                return
            want = struct.unpack(">H", n)[0]
            msg = b""
            while len(msg) < want:
                chunk = c.recv(want - len(msg))
                if not chunk:
                    return
                msg += chunk
            out = answer(msg, "tcp")
            if out is None:
                continue
            if out == b"close":
                return
            c.sendall(struct.pack(">H", len(out)) + out)
    except OSError:
        pass
    finally:
        c.close()


def tcp_loop(t):
    while True:
        c, _ = t.accept()
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()


def main():
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            t.bind(("127.0.0.1", port))
        except OSError:
            u.close()
            t.close()
            continue
        t.listen(16)
        break
    threading.Thread(target=tcp_loop, args=(t,), daemon=True).start()
    with open(PORT_FILE + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(PORT_FILE + ".tmp", PORT_FILE)
    udp_loop(u)


if __name__ == "__main__":
    main()
