#!/usr/bin/env python3
"""A misbehaving IMAP server for tests/cli/test_imap.sh (never a real mailbox).

Usage: imap_stall.py MODE PORTFILE LOGFILE
Listens on 127.0.0.1 (a free port, written to PORTFILE) and, per connection:
  silent        accepts and never sends a byte (no greeting)
  stall         greets, answers the login, then never answers another command
  endless       greets, answers the login, then answers the next command with an endless line
  nostarttls    greets with capabilities that have no STARTTLS and answers CAPABILITY; logs
                any LOGIN or AUTHENTICATE it receives (it must receive none)
Every line received is appended to LOGFILE. Stops after 120 s.
"""
import os
import socket
import sys
import threading
import time

mode, portfile, logfile = sys.argv[1], sys.argv[2], sys.argv[3]
CAPS = b"IMAP4rev1 AUTH=PLAIN SASL-IR"


def log(line):
    with open(logfile, "ab") as f:
        f.write(line + b"\n")


def serve(conn):
    conn.settimeout(60)
    try:
        if mode == "silent":
            time.sleep(60)
            return
        conn.sendall(b"* OK [CAPABILITY " + CAPS + b"] ready\r\n")
        f = conn.makefile("rb")
        logged_in = False
        while True:
            line = f.readline()
            if not line:
                return
            log(line.rstrip(b"\r\n"))
            parts = line.split(b" ")
            tag, cmd = parts[0], parts[1].strip().upper() if len(parts) > 1 else b""
            if not logged_in:
                if cmd == b"CAPABILITY":
                    conn.sendall(b"* CAPABILITY " + CAPS + b"\r\n" + tag + b" OK done\r\n")
                elif cmd in (b"AUTHENTICATE", b"LOGIN") and mode != "nostarttls":
                    logged_in = True
                    conn.sendall(tag + b" OK logged in\r\n")
                else:
                    conn.sendall(tag + b" NO not now\r\n")
                continue
            if mode == "stall":
                time.sleep(60)
                return
            if mode == "endless":
                conn.sendall(b"* ")
                end = time.time() + 60
                while time.time() < end:
                    conn.sendall(b"x" * 65536)
                return
    except OSError:
        return
    finally:
        conn.close()


s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
with open(portfile + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
s.settimeout(120)
try:
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
except OSError:
    pass
