#!/usr/bin/env python3
"""A tiny OAuth 2.0 token introspection endpoint (RFC 7662) for tests on loopback.

Dovecot's oauth2 passdb (introspection_mode = post) POSTs token=TOKEN here for every XOAUTH2 or
OAUTHBEARER login and reads the JSON answer: {"active": true, "username": USER} for a token it
knows, {"active": false} for any other. The tokens it knows are read from TOKENS_FILE at each
request, one "TOKEN USER" per line, so a test can rotate a token while the server runs.

    oauth2_introspect.py PORT_FILE TOKENS_FILE LOG_FILE

It binds a free port of 127.0.0.1, writes that port into PORT_FILE once it listens, and logs one
line per request to LOG_FILE: "accepted USER" or "refused". A token is never logged: the tests
grep every output for it.
"""
import http.server
import json
import os
import sys
import urllib.parse

port_file, tokens_file, log_file = sys.argv[1], sys.argv[2], sys.argv[3]

def known_tokens():
    tokens = {}
    with open(tokens_file, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                tokens[parts[0]] = parts[1]
    return tokens

def log(line):
    with open(log_file, "a", encoding="utf-8") as f:
        f.write(line + "\n")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        if not token:  # a bearer token in the Authorization header instead
            auth = self.headers.get("Authorization") or ""
            if auth.lower().startswith("bearer "):
                token = auth[7:].strip()
        user = known_tokens().get(token)
        if user:
            log("accepted " + user)
            body = {"active": True, "username": user}
        else:
            log("refused")
            body = {"active": False}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST

    def log_message(self, fmt, *args):  # the default would print request lines to stderr
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w", encoding="utf-8") as f:
    f.write(str(server.server_address[1]) + "\n")

os.rename(port_file + ".tmp", port_file)
server.serve_forever()
