#!/usr/bin/python3
"""What the store wrote, read from an strace of one ipwarm run (bench/throughput.sh).

Usage: store_writes.py STRACE-OUTPUT
The trace must come from `strace -f -y -xx -s 24 -e trace=pwrite64,fdatasync,fsync`: -y names
each descriptor's file, -xx writes every string in hex escapes and -s 24 shows the first 24
bytes of each buffer, which is a whole WAL frame header.

SQLite (3.40, in WAL mode) appends a transaction to the -wal file frame by frame, each frame a
24-byte header and one database page, and writes them as two pwrite64 calls: the header alone,
then the page (walWriteOneFrame). The header's second field (bytes 4-7, big-endian) is the
database size in pages on the frame that commits a transaction and 0 on every other frame. So,
counting only pwrite64 calls on a file whose name ends in "-wal":
  frames   calls of exactly 24 bytes (frame headers; the 32-byte WAL header at offset 0 is not
           one): the pages written to the WAL, one per frame;
  commits  those of them whose database-size field is not 0: write transactions committed
           (a read-only transaction writes nothing and is not counted).
Also counted: fdatasync and fsync calls on any file (syncs), and pwrite64 lines that could not
be read (unread; e.g. a call strace split into "unfinished" and "resumed" halves because two
threads were in system calls at once; they should be 0).
Prints one line: "frames commits syncs unread".
"""
import re
import sys

CALL = re.compile(r'^(?:\d+ +)?(pwrite64|fdatasync|fsync)\((\d+)<((?:[^>\\]|\\.)*)>'
                  r'(?:, "((?:[^"\\]|\\.)*)"(?:\.\.\.)?, (\d+), (\d+))?\) += (-?\d+)')
ESCAPES = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, '"': 34, "\\": 92}


def cstring(s):
    """The bytes of a string as strace prints it (C escapes: \\xNN, \\n, octal)."""
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] != "\\":
            out += s[i].encode()
            i += 1
        elif s[i + 1] == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        elif s[i + 1] in ESCAPES:
            out.append(ESCAPES[s[i + 1]])
            i += 2
        else:
            j = i + 1
            while j < len(s) and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8))
            i = j
    return bytes(out)


def main():
    frames = commits = syncs = unread = 0
    for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
        m = CALL.match(line)
        if not m:
            if "pwrite64(" in line or "pwrite64 resumed" in line:
                unread += 1
            continue
        fn, _, path, data, size, _, ret = m.groups()
        if fn != "pwrite64":
            syncs += 1
            continue
        if cstring(path).endswith(b"-wal") and int(size) == 24 and int(ret) == 24:
            frames += 1
            if cstring(data)[4:8] != b"\0\0\0\0":
                commits += 1
    print(frames, commits, syncs, unread)


if __name__ == "__main__":
    main()
