#!/usr/bin/env bash
# `ipwarm check` (and a `run` that checks first) always ends, whatever the SMTP server does,
# and never hands the relay password to a server or to the record. Servers on loopback, each
# a real TCP server: a small Python one written here (tests/servers/smtpd.py cannot send an
# endless reply) that trickles an endless "220-" greeting or "250-" EHLO continuation, floods
# one without a line end in sight, or never greets (tarpit), and echoes the AUTH line back in
# its 535 over TLS; smtpd.py as a relay that offers AUTH but no STARTTLS. Every command runs
# under `timeout` so that a regression fails here instead of hanging CI. Environment: IPWARM,
# SRCDIR.
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
unset IPWARM_PLAN
work=$(mktemp -d)
. "$SRCDIR/tests/lib/servers.sh"
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
cd "$work" || exit 1
py=$SERVERS_PY

# The misbehaving server: badsmtp.py MODE PORTFILE LOG [CERT KEY].
cat >badsmtp.py <<'EOF'
import os, socket, ssl, sys, threading, time
mode, port_file, log = sys.argv[1], sys.argv[2], sys.argv[3]
cert = sys.argv[4:6]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
logf = open(log, "a")
lock = threading.Lock()
def note(s):
    with lock:
        logf.write(s + "\n")
        logf.flush()
def serve(conn):
    try:
        conn.settimeout(600)
        rf = conn.makefile("rb")
        send = conn.sendall
        note("connect")
        if mode == "tarpit":
            time.sleep(600)
        if mode == "greeting-drip":
            while True:
                send(b"220-still greeting you\r\n")
                time.sleep(0.02)
        if mode == "greeting-flood":
            while True:
                send(b"220-" + b"x" * 1000 + b"\r\n")
        send(b"220 bad.test ESMTP\r\n")
        note("cmd " + rf.readline().decode().strip())
        if mode == "ehlo-drip":
            while True:
                send(b"250-still helping you\r\n")
                time.sleep(0.02)
        if mode == "ehlo-flood":
            while True:
                send(b"250-" + b"y" * 1000 + b"\r\n")
        if mode == "echo-auth":
            send(b"250-bad.test\r\n250 STARTTLS\r\n")
            note("cmd " + rf.readline().decode().strip())
            send(b"220 go ahead\r\n")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert[0], cert[1])
            tls = ctx.wrap_socket(conn, server_side=True)
            rf = tls.makefile("rb")
            note("cmd " + rf.readline().decode().strip())
            tls.sendall(b"250-bad.test\r\n250 AUTH PLAIN LOGIN\r\n")
            line = rf.readline().strip()
            note("cmd " + " ".join(line.decode().split(" ")[:2]) + " ***")
            tls.sendall(b"535 5.7.8 " + line + b" rejected\r\n")
            note("cmd " + rf.readline().decode().strip())
            tls.sendall(b"221 bye\r\n")
    except (OSError, ssl.SSLError) as exc:
        note("closed " + type(exc).__name__)
    finally:
        conn.close()
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

# bad_start MODE: starts badsmtp.py in MODE; sets BAD_PORT and BAD_LOG.
bad_start() {
  local mode=$1 i
  BAD_LOG=$work/$mode.log
  : >"$BAD_LOG"
  "$py" badsmtp.py "$mode" "$work/$mode.port" "$BAD_LOG" "$work/tls/cert.pem" "$work/tls/key.pem" \
    2>>"$work/$mode.err" &
  SERVERS_PIDS+=("$!")
  for ((i = 0; i < 200; i++)); do
    [ -s "$work/$mode.port" ] && break
    sleep 0.05
  done
  BAD_PORT=$(cat "$work/$mode.port")
}

make_cert "$work/tls" localhost || bad "openssl made no certificate"
# A resolver of our own, so the DNS checks of `check` answer at once (NXDOMAIN for .test).
dnsmasq_start <<EOF || bad "dnsmasq"
mx-host=example.test,mx.example.test,10
host-record=mx.example.test,127.0.0.1
EOF
printf 'Hello\n' >message.txt
printf 'email\na@example.test\n' >seeds.csv

# plan NAME PORT [RELAY-BLOCK]: a relay plan with 2 s timeouts, requiring smtp and tls (and auth
# with a relay block that has a username).
plan() {
  local name=$1 port=$2 block=${3:-"  relay: {url: \"smtp://127.0.0.1:$2\"}"}
  cat >"$name.yaml" <<EOF
campaign: $name
state: $name.db
source: {ip: 127.0.0.1, helo: mx1.good.test}
sender: {from: "Sandbox <news@good.test>"}
transport:
  mode: relay
$block
  timeouts: {connect: 2s, command: 2s}
message: {subject: Hi, text_file: message.txt}
recipients: {file: seeds.csv}
preflight: {require: [smtp, tls, auth]}
dns: {servers: ["$DNS_SERVER"], timeout: 2s}
EOF
}

# bounded WHAT LIMIT ARGS...: runs ipwarm under `timeout 90`; ok when it ended by itself
# within LIMIT seconds (wide: each step has 2 s). Output in out/err, exit code in $rc.
bounded() {
  local what=$1 limit=$2 start
  shift 2
  start=$(date +%s)
  timeout 90 "$IPWARM" "$@" >"$work/out" 2>"$work/err"
  rc=$?
  local took=$(($(date +%s) - start))
  if [ "$rc" -ne 124 ] && [ "$took" -le "$limit" ]; then
    ok "$what: ended by itself in $took s (exit $rc)"
  else
    bad "$what: exit $rc after $took s (124: killed by timeout)"
  fi
}
# smtp_detail: the detail of the smtp check in the last --json output.
smtp_detail() {
  "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print([c["detail"] for c in d["checks"] if c["name"]==sys.argv[2]][0])' \
    "$work/out" "${1:-smtp}" 2>/dev/null
}
detail_has() {
  local what=$1 name=$2 want=$3 got
  got=$(smtp_detail "$name")
  if [[ $got == *"$want"* ]]; then ok "$what"; else bad "$what: $name detail '$got' lacks '$want'"; fi
}

# --- an endless greeting, an endless EHLO reply, a greeting that never comes ---------------
bad_start greeting-drip
plan drip "$BAD_PORT"
bounded "endless 220- greeting, a line every 20 ms" 30 -p drip.yaml --json check
check "endless greeting: check fails (exit 1, got $rc)" test "$rc" -eq 1
detail_has "endless greeting: the smtp check says so" smtp "no complete greeting within 2000 ms"

bad_start greeting-flood
plan flood "$BAD_PORT"
bounded "endless 220- greeting, as fast as it goes" 30 -p flood.yaml --json check
check "flooded greeting: check fails (exit 1, got $rc)" test "$rc" -eq 1
detail_has "flooded greeting: the bound is named" smtp "the greeting did not end within 256 lines or 65536 bytes"

bad_start ehlo-drip
plan ehlo "$BAD_PORT"
bounded "endless 250- EHLO reply, a line every 20 ms" 30 -p ehlo.yaml --json check
check "endless EHLO: check fails (exit 1, got $rc)" test "$rc" -eq 1
detail_has "endless EHLO: the smtp check says so" smtp "EHLO failed: no complete reply to EHLO within 2000 ms"
check "endless EHLO: the server saw the EHLO" grep -q '^cmd EHLO mx1.good.test' "$BAD_LOG"

bad_start ehlo-flood
plan ehloflood "$BAD_PORT"
bounded "endless 250- EHLO reply, as fast as it goes" 30 -p ehloflood.yaml --json check
detail_has "flooded EHLO: the bound is named" smtp "the reply to EHLO did not end within 256 lines"

bad_start tarpit
plan tarpit "$BAD_PORT"
bounded "a greeting that never comes" 30 -p tarpit.yaml --json check
check "tarpit: check fails (exit 1, got $rc)" test "$rc" -eq 1
detail_has "tarpit: the smtp check says so" smtp "no complete greeting within 2000 ms"

# `run` checks first when no recent check is recorded, holding the run lock: it must end too,
# refuse to send (exit 1), and leave the lock free.
plan runehlo "$(cat "$work/ehlo-drip.port")"
bounded "run that checks first against the endless EHLO" 30 -p runehlo.yaml run --once
check "run: refused by the pre-flight gate (exit 1, got $rc)" test "$rc" -eq 1
check "run: says the smtp check failed" grep -q "a required pre-flight check failed" "$work/err"
bounded "run again: the lock was released (not exit 75)" 30 -p runehlo.yaml run --once
check "run again: exit 1, not 75 (got $rc)" test "$rc" -eq 1

# --- a port where nothing listens: the sentence says where, what, and the fix ---------------
closed_tcp_start || exit 1
closed=$CLOSED_PORT
plan closed "$closed"
bounded "a closed port" 30 -p closed.yaml --json check
detail_has "closed port: where and what" smtp "cannot connect to 127.0.0.1:$closed: Connection refused"
check "closed port: the fix names the port" grep -q "check that the server listens on port $closed" "$work/out"

# --- AUTH: never without TLS, and an echo of it is masked -------------------------------------
port_plain=$(free_port)
smtpd_start relay "[{\"name\": \"plainrelay\", \"host\": \"127.0.0.1\", \"port\": $port_plain,
  \"auth\": {\"user\": \"warmup\", \"password\": \"s3cret-pw\"}}]" || bad "smtpd.py"
plan noTLS "$port_plain" "  relay:
    url: smtp://127.0.0.1:$port_plain
    username: warmup
    password_env: LIMITS_PW"
LIMITS_PW=s3cret-pw bounded "relay without STARTTLS" 30 -p noTLS.yaml --json check
check "relay without STARTTLS: check fails (exit 1, got $rc)" test "$rc" -eq 1
detail_has "relay without STARTTLS: auth says why" auth "the server offers no TLS, and the password never goes in clear"
if grep -q '"AUTH' "$SMTPD_LOG"; then bad "relay without STARTTLS: AUTH was sent"; else
  ok "relay without STARTTLS: the server never saw AUTH"; fi
check "relay without STARTTLS: the server saw EHLO and QUIT" \
  grep -q '"line": "QUIT"' "$SMTPD_LOG"

bad_start echo-auth
plan echo "$BAD_PORT" "  relay:
    url: smtp://localhost:$BAD_PORT
    username: warmup
    password_env: LIMITS_PW
    ca_file: $work/tls/cert.pem"
LIMITS_PW=s3cret-pw bounded "relay that echoes AUTH in its 535" 30 -p echo.yaml --json check
check "echo: check fails (exit 1, got $rc)" test "$rc" -eq 1
check "echo: the server got AUTH PLAIN over TLS" grep -q '^cmd AUTH PLAIN \*\*\*' "$BAD_LOG"
detail_has "echo: the refusal is quoted, masked" auth "535 5.7.8 AUTH PLAIN *** rejected"
blob=$(printf '\0warmup\0s3cret-pw' | base64 -w0)
stored=$(sqlite3 echo.db "SELECT group_concat(json, ' ') FROM preflight_runs" 2>/dev/null)
check "echo: the check was recorded" test -n "$stored"
for f in "$work/out" "$work/err"; do
  if grep -qF -e "$blob" -e "s3cret-pw" "$f"; then bad "echo: credentials in $(basename "$f")"; else
    ok "echo: no credentials in $(basename "$f")"; fi
done
if [[ $stored == *"$blob"* || $stored == *s3cret-pw* ]]; then bad "echo: credentials in the state"; else
  ok "echo: no credentials in the state"; fi

finish
