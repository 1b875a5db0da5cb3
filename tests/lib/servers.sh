# shellcheck shell=bash
# Real servers on loopback for ipwarm's CLI and integration tests: dnsmasq (DNS) with a config
# of the test's own on a free port, tests/servers/smtpd.py (SMTP) with a JSON config, and a UDP
# socket that never answers (DNS timeouts). Everything started here is stopped by
# servers_stop_all, which servers_init installs as the EXIT trap, so nothing is left running
# even when a test fails or is interrupted. Source it from a test:
#
#     . "$SRCDIR/tests/lib/servers.sh"
#     servers_init "$work"               # $work: the test's temp dir (removed on exit too)
#     dnsmasq_start <<'EOF'              # config lines on stdin; base lines are added
#     mx-host=example.test,mx.example.test,10
#     host-record=mx.example.test,127.0.0.1
#     EOF
#     "$IPWARM" --dns "$DNS_SERVER" mx example.test
#
# Functions (each returns non-zero and says why on stderr when it cannot do its job):
#   servers_init DIR        Sets SERVERS_DIR=DIR (created if missing) and the EXIT/INT/TERM trap
#                           that stops every server and removes DIR. Call it once, first.
#                           To run more at exit, define servers_on_exit() before calling it.
#   free_port               Prints a port free for both TCP and UDP on 127.0.0.1.
#   dnsmasq_start [NAME]    Starts dnsmasq (dnsmasq-base: the binary only, never the system
#                           service) with the config lines read from stdin plus:
#                             port, listen-address=127.0.0.1, bind-interfaces, no-resolv,
#                             no-hosts, local=/test/ (names under .test not configured answer
#                             NXDOMAIN), local-ttl=60, no pid file, foreground.
#                           Waits until it answers, then sets DNS_PORT and DNS_SERVER
#                           ("127.0.0.1:PORT"). NAME (default "dns") names its files in DIR.
#   silent_udp_start        Binds a UDP socket on 127.0.0.1 that reads nothing and answers
#                           nothing; sets SILENT_PORT. Point a zone at it for timeouts:
#                             server=/slow.test/127.0.0.1#$SILENT_PORT
#   closed_tcp_start        Binds a TCP port on 127.0.0.1 that never listens (a connection is
#                           refused), held until the servers stop; sets CLOSED_PORT.
#   smtpd_start NAME LISTENERS_JSON [TOP_JSON]
#                           Starts tests/servers/smtpd.py with {"listeners": LISTENERS_JSON}
#                           (a JSON array; see the docstring of smtpd.py for the keys), logs
#                           to DIR/NAME.jsonl (SMTPD_LOG) and mail to DIR/NAME.mail; waits for
#                           its ready file. TOP_JSON: more top-level members of the config,
#                           e.g. '"deliver": {"lmtp": "127.0.0.1:'$DOVECOT_LMTP_PORT'"}'.
#   smtpd_wait_placed N [SECONDS]
#                           Waits until smtpd.py (SMTPD_LOG) has logged N "placed" events, the
#                           seed copies it delivers after its 250 (at most SECONDS, default 60);
#                           true when it logged exactly N and delivered every one.
#   make_cert DIR [CN]      Writes DIR/cert.pem and DIR/key.pem: a self-signed certificate for
#                           CN (default localhost) with subjectAltName DNS:CN, IP:127.0.0.1;
#                           usable as its own CA (transport.relay.ca_file).
#   dovecot_start [--tls] USER:PASSWORD...
#                           Starts Dovecot (dovecot-imapd, dovecot-lmtpd; never the system
#                           service) with a config of its own in DIR/dovecot: passwd-file users,
#                           Maildir under DIR/dovecot/mail, a Junk folder marked \Junk (RFC 6154),
#                           IMAP on a free port of 127.0.0.1 (DOVECOT_IMAP_PORT), LMTP on another
#                           (DOVECOT_LMTP_PORT) and, with --tls, IMAPS with a make_cert
#                           certificate (DOVECOT_IMAPS_PORT; CA: DOVECOT_CA). As root the mail
#                           belongs to nobody (Dovecot refuses uid 0). Waits until it answers.
#                           With DOVECOT_OAUTH2_URL set (oauth2_introspect_start sets it),
#                           XOAUTH2 and OAUTHBEARER logins are offered too, checked by Dovecot's
#                           oauth2 passdb against that introspection endpoint (RFC 7662).
#   oauth2_introspect_start TOKENS_FILE
#                           Starts tests/servers/oauth2_introspect.py, which accepts the tokens
#                           listed in TOKENS_FILE ("TOKEN USER" per line, read at each request)
#                           and refuses any other; sets DOVECOT_OAUTH2_URL and OAUTH2_LOG (one
#                           line per request: "accepted USER" or "refused"). Start it before
#                           dovecot_start.
#   dovecot_deliver USER FOLDER FILE
#                           Delivers FILE into USER's FOLDER over LMTP (RCPT TO:<USER+FOLDER>).
#   port_wait PORT          Waits until 127.0.0.1:PORT accepts a connection (at most 20 s).
#   log_wait FILE N REGEX [SECONDS]
#                           Waits until FILE (a server's log, such as SMTPD_LOG) holds at least
#                           N lines matching the extended REGEX (at most SECONDS, default 30):
#                           for waiting on an event instead of sleeping. Returns 1 on timeout.
#                           log_count FILE REGEX prints how many lines match now.
#   file_wait FILE [SECONDS] Waits until FILE exists and is not empty (at most SECONDS, default
#                           30): for a helper that writes its port or "ready" file when it is.
#                           Returns 1 on timeout.
#   dns_query NAME [TYPE]   Asks DNS_SERVER once (A by default); prints the rcode, exits 0 when
#                           an answer came. For readiness checks; tests use ipwarm itself.
#   sandbox_config NET [SED_ARG...]
#                           The shipped sandbox (scripts/sandbox) on addresses and ports of the
#                           test's own, so that a demo or another test running at the same time
#                           does not meet it: writes DIR/sandbox.yaml, config/sandbox/sandbox.yaml
#                           moved from 127.0.25 to NET and to free ports, with SED_ARGs (more
#                           sed -e EXPR) applied too. Sets SANDBOX_DIR (DIR/sb, where it runs),
#                           SANDBOX_NET, SANDBOX_SMTP_PORT, SANDBOX_DNS_PORT, SANDBOX_IMAP_PORT
#                           and SANDBOX_LMTP_PORT, and lets nobody reach DIR (as root, its Dovecot
#                           keeps the mail as nobody). servers_stop_all stops the sandbox.
#   sandbox_plan NAME STATE [SED_ARG...]
#                           Writes DIR/NAME.yaml, the shipped demo plan config/sandbox/NAME.yaml
#                           moved the same way, its DKIM key, mailbox password and CA those of
#                           SANDBOX_DIR and its state file STATE; copies the demo's message and
#                           recipients beside it.
#   sandbox_start NAME      Starts the sandbox of DIR/sandbox.yaml in SANDBOX_DIR, its output in
#                           DIR/NAME.out and DIR/NAME.err; on failure the end of its stderr goes
#                           to stderr and its exit status is returned.
#   servers_stop_all        Stops every server started (TERM, then KILL after 2 s), and the
#                           sandbox of sandbox_config.
#
# Python: /usr/bin/python3 (Debian's; the python3 on PATH may be a build without Debian
# modules).

SERVERS_PY=/usr/bin/python3
[ -x "$SERVERS_PY" ] || SERVERS_PY=python3
SERVERS_PIDS=()
SERVERS_DIR=
SERVERS_SRC=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SANDBOX_DIR=

servers_stop_all() {
  local pid i
  [ -z "$SANDBOX_DIR" ] || "$SERVERS_SRC/scripts/sandbox" stop --dir "$SANDBOX_DIR" >/dev/null 2>&1
  for pid in "${SERVERS_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${SERVERS_PIDS[@]}"; do
    for ((i = 0; i < 40; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  SERVERS_PIDS=()
}

servers_init() {
  SERVERS_DIR=$1
  mkdir -p "$SERVERS_DIR" || return 1
  # shellcheck disable=SC2064 # expand the directory now
  trap "declare -F servers_on_exit >/dev/null && servers_on_exit; servers_stop_all; rm -rf '$SERVERS_DIR'" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

free_port() {
  "$SERVERS_PY" - <<'EOF'
import socket
for _ in range(50):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        u.close()
        continue
    t.close()
    u.close()
    print(port)
    break
EOF
}

dns_query() {
  "$SERVERS_PY" - "${DNS_SERVER%:*}" "${DNS_SERVER##*:}" "$1" "${2:-A}" <<'EOF'
import socket, struct, sys
host, port, name, qtype = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
types = {"A": 1, "MX": 15, "TXT": 16, "PTR": 12, "AAAA": 28}
q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
for label in name.rstrip(".").split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", types.get(qtype, 1), 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
try:
    s.sendto(q, (host, port))
    data, _ = s.recvfrom(4096)
except OSError:
    sys.exit(1)
print({0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}.get(data[3] & 15, data[3] & 15))
EOF
}

dnsmasq_start() {
  local name=${1:-dns} bin attempt i pid
  for bin in /usr/sbin/dnsmasq /sbin/dnsmasq /usr/bin/dnsmasq ""; do
    [ -n "$bin" ] && [ -x "$bin" ] && break
  done
  if [ -z "$bin" ]; then
    echo "servers.sh: dnsmasq is not installed (Debian: dnsmasq-base; scripts/deps test)" >&2
    return 1
  fi
  cat >"$SERVERS_DIR/$name.extra.conf"
  # A port free a moment ago may be taken by the time dnsmasq binds it: try again.
  for attempt in 1 2 3 4 5; do
    DNS_PORT=$(free_port)
    {
      printf 'port=%s\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n' "$DNS_PORT"
      printf 'local=/test/\nlocal-ttl=60\n'
      cat "$SERVERS_DIR/$name.extra.conf"
    } >"$SERVERS_DIR/$name.conf"
    "$bin" --conf-file="$SERVERS_DIR/$name.conf" --pid-file= --keep-in-foreground \
      --log-facility="$SERVERS_DIR/$name.log" 2>>"$SERVERS_DIR/$name.log" &
    pid=$!
    SERVERS_PIDS+=("$pid")
    DNS_SERVER=127.0.0.1:$DNS_PORT
    for ((i = 0; i < 60; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      if dns_query ready.probe.test >/dev/null 2>&1; then
        return 0
      fi
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  echo "servers.sh: dnsmasq did not start; its log:" >&2
  sed 's/^/    /' "$SERVERS_DIR/$name.log" >&2
  return 1
}

# Binds a socket of KIND (udp or tcp) on 127.0.0.1 in a process of its own, held until the
# servers stop, and sets HELD_PORT to its port.
port_hold() {
  local f=$SERVERS_DIR/held.port.$RANDOM
  "$SERVERS_PY" -c '
import os, socket, sys, time
kind = socket.SOCK_DGRAM if sys.argv[2] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)
' "$f" "$1" &
  SERVERS_PIDS+=("$!")
  local i
  for ((i = 0; i < 100; i++)); do
    if [ -s "$f" ]; then
      HELD_PORT=$(cat "$f")
      return 0
    fi
    sleep 0.05
  done
  echo "servers.sh: the held $1 socket did not start" >&2
  return 1
}

silent_udp_start() {
  port_hold udp || return 1
  SILENT_PORT=$HELD_PORT
}

# A TCP port that refuses connections (bound, never listening) and that no other process can
# take while the servers run: free_port's port may be taken by a test beside this one.
closed_tcp_start() {
  port_hold tcp || return 1
  CLOSED_PORT=$HELD_PORT
}

smtpd_start() {
  local name=$1 listeners=$2 top=${3:+, $3} i pid
  SMTPD_LOG=$SERVERS_DIR/$name.jsonl
  rm -f "$SERVERS_DIR/$name.ready"
  printf '{"log": "%s", "maildir": "%s", "ready_file": "%s", "listeners": %s%s}\n' \
    "$SMTPD_LOG" "$SERVERS_DIR/$name.mail" "$SERVERS_DIR/$name.ready" "$listeners" "$top" \
    >"$SERVERS_DIR/$name.json"
  "$SERVERS_PY" "$SERVERS_SRC/tests/servers/smtpd.py" "$SERVERS_DIR/$name.json" \
    2>>"$SERVERS_DIR/$name.err" &
  pid=$!
  SERVERS_PIDS+=("$pid")
  for ((i = 0; i < 100; i++)); do
    [ -e "$SERVERS_DIR/$name.ready" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "servers.sh: smtpd.py ($name) did not start:" >&2
  sed 's/^/    /' "$SERVERS_DIR/$name.err" >&2
  return 1
}

smtpd_wait_placed() {
  "$SERVERS_PY" - "$SMTPD_LOG" "$1" "${2:-60}" <<'PYEOF'
import json, sys, time
end = time.time() + int(sys.argv[3])
while True:
    got = [e for e in map(json.loads, open(sys.argv[1])) if e["ev"] == "placed"]
    if len(got) >= int(sys.argv[2]) or time.time() > end:
        break
    time.sleep(0.1)
sys.exit(0 if len(got) == int(sys.argv[2]) and all(e["delivered"] for e in got) else 1)
PYEOF
}

make_cert() {
  local dir=$1 cn=${2:-localhost}
  mkdir -p "$dir" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$cn" \
      -addext "subjectAltName=DNS:$cn,IP:127.0.0.1" -addext "basicConstraints=critical,CA:TRUE" \
      -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
}

# Waits until 127.0.0.1:$1 accepts a TCP connection (at most 20 s).
port_wait() {
  "$SERVERS_PY" - "$1" <<'EOF'
import socket, sys, time
end = time.time() + 20
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

log_count() {
  local n
  n=$(grep -cE -- "$2" "$1" 2>/dev/null) || true
  echo "${n:-0}"
}

log_wait() {
  local file=$1 n=$2 re=$3 secs=${4:-30} i
  for ((i = 0; i < secs * 20; i++)); do
    [ "$(log_count "$file" "$re")" -ge "$n" ] && return 0
    sleep 0.05
  done
  return 1
}

file_wait() {
  local file=$1 secs=${2:-30} i
  for ((i = 0; i < secs * 20; i++)); do
    [ -s "$file" ] && return 0
    sleep 0.05
  done
  return 1
}

dovecot_start() {
  local tls=0 d=$SERVERS_DIR/dovecot user group pid u
  [ "${1:-}" = --tls ] && { tls=1; shift; }
  if ! command -v dovecot >/dev/null; then
    echo "servers.sh: dovecot is not installed (Debian: dovecot-imapd dovecot-lmtpd; scripts/deps test)" >&2
    return 1
  fi
  mkdir -p "$d/mail" || return 1
  if [ "$(id -u)" -eq 0 ]; then
    user=nobody
    group=$(id -gn nobody)
    chown "$user:$group" "$d/mail"
    chmod 711 "$SERVERS_DIR" "$d"
  else
    user=$(id -un)
    group=$(id -gn)
  fi
  : >"$d/passwd"
  for u in "$@"; do
    printf '%s:{PLAIN}%s::::::\n' "${u%%:*}" "${u#*:}" >>"$d/passwd"
  done
  DOVECOT_IMAP_PORT=$(free_port)
  DOVECOT_LMTP_PORT=$(free_port)
  DOVECOT_IMAPS_PORT=0
  if [ $tls -eq 1 ]; then
    make_cert "$d/tls" localhost || return 1
    chmod 644 "$d/tls/key.pem"
    DOVECOT_CA=$d/tls/cert.pem
    DOVECOT_IMAPS_PORT=$(free_port)
  fi
  cat >"$d/dovecot.conf" <<EOF
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
default_internal_user = $user
default_internal_group = $group
default_login_user = $user
disable_plaintext_auth = no
auth_mechanisms = plain login${DOVECOT_OAUTH2_URL:+ xoauth2 oauthbearer}
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $d/passwd
}
EOF
  if [ -n "${DOVECOT_OAUTH2_URL:-}" ]; then
    cat >>"$d/dovecot.conf" <<EOF
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $d/dovecot-oauth2.conf.ext
}
EOF
    cat >"$d/dovecot-oauth2.conf.ext" <<EOF
introspection_mode = post
introspection_url = $DOVECOT_OAUTH2_URL
username_attribute = username
active_attribute = active
active_value = true
EOF
  fi
  cat >>"$d/dovecot.conf" <<EOF
userdb {
  driver = static
  args = uid=$user gid=$group home=$d/mail/%n
}
mail_location = maildir:$d/mail/%n/Maildir
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DOVECOT_IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DOVECOT_IMAPS_PORT
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DOVECOT_LMTP_PORT
  }
}
EOF
  if [ $tls -eq 1 ]; then
    printf 'ssl = yes\nssl_cert = <%s\nssl_key = <%s\n' "$d/tls/cert.pem" "$d/tls/key.pem" >>"$d/dovecot.conf"
  else
    printf 'ssl = no\n' >>"$d/dovecot.conf"
  fi
  dovecot -F -c "$d/dovecot.conf" >>"$d/dovecot.out" 2>&1 &
  pid=$!
  SERVERS_PIDS+=("$pid")
  DOVECOT_DIR=$d
  if port_wait "$DOVECOT_IMAP_PORT" && port_wait "$DOVECOT_LMTP_PORT" &&
    { [ $tls -eq 0 ] || port_wait "$DOVECOT_IMAPS_PORT"; }; then
    return 0
  fi
  echo "servers.sh: dovecot did not start; its log:" >&2
  sed 's/^/    /' "$d/dovecot.out" "$d/dovecot.log" >&2 2>/dev/null
  return 1
}

oauth2_introspect_start() {
  local d=$SERVERS_DIR/oauth2
  mkdir -p "$d" || return 1
  OAUTH2_LOG=$d/introspect.log
  : >"$OAUTH2_LOG"
  "$SERVERS_PY" "$SERVERS_SRC/tests/servers/oauth2_introspect.py" "$d/port" "$1" "$OAUTH2_LOG" \
    >>"$d/out" 2>&1 &
  SERVERS_PIDS+=("$!")
  if ! file_wait "$d/port" 20; then
    echo "servers.sh: oauth2_introspect.py did not start; its output:" >&2
    sed 's/^/    /' "$d/out" >&2
    return 1
  fi
  DOVECOT_OAUTH2_URL=http://127.0.0.1:$(cat "$d/port")/introspect
}

dovecot_deliver() {
  local rcpt=$1
  [ "$2" = INBOX ] || rcpt="$1+$2"
  "$SERVERS_PY" - "$DOVECOT_LMTP_PORT" "$rcpt" "$3" <<'EOF'
import smtplib, sys
port, rcpt, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(path, "rb") as f:
    msg = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # SMTP line endings
with smtplib.LMTP("127.0.0.1", port, timeout=20) as l:
    refused = l.sendmail("sender@example.test", [rcpt], msg)
sys.exit(1 if refused else 0)
EOF
}

sandbox_config() {
  SANDBOX_NET=$1
  shift
  SANDBOX_DIR=$SERVERS_DIR/sb
  chmod 711 "$SERVERS_DIR" || return 1
  SANDBOX_SMTP_PORT=$(free_port)
  SANDBOX_DNS_PORT=$(free_port)
  SANDBOX_IMAP_PORT=$(free_port)
  SANDBOX_LMTP_PORT=$(free_port)
  local net=$SANDBOX_NET
  sed -e "s/127\.0\.25\./$net./g" -e "s/smtp_port: 2525/smtp_port: $SANDBOX_SMTP_PORT/" \
    -e "s/\(dns: $net\.53\):5300/\1:$SANDBOX_DNS_PORT/" \
    -e "s/\(imap: $net\.7\):1143/\1:$SANDBOX_IMAP_PORT/" -e "s/\(lmtp: $net\.7\):2424/\1:$SANDBOX_LMTP_PORT/" \
    "$@" "$SERVERS_SRC/config/sandbox/sandbox.yaml" >"$SERVERS_DIR/sandbox.yaml"
}

sandbox_plan() {
  local name=$1 state=$2 d=$SERVERS_SRC/config/sandbox
  shift 2
  sed -e "s/127\.0\.25\./$SANDBOX_NET./g" -e "s/port: 2525/port: $SANDBOX_SMTP_PORT/" \
    -e "s/:5300/:$SANDBOX_DNS_PORT/" \
    -e "s|key_file: .*|key_file: $SANDBOX_DIR/dkim.pem|" -e "s|^state: .*|state: $state|" \
    -e "s|\.\./\.\./build/sandbox/|$SANDBOX_DIR/|g" -e "s|:1143|:$SANDBOX_IMAP_PORT|g" \
    "$@" "$d/$name.yaml" >"$SERVERS_DIR/$name.yaml" &&
    cp "$d/message.txt" "$d/recipients.csv" "$SERVERS_DIR/"
}

sandbox_start() {
  local out=$SERVERS_DIR/$1
  "$SERVERS_SRC/scripts/sandbox" start --config "$SERVERS_DIR/sandbox.yaml" --dir "$SANDBOX_DIR" \
    >"$out.out" 2>"$out.err"
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "servers.sh: the sandbox did not start (exit $rc):" >&2
    tail -3 "$out.err" | sed 's/^/    /' >&2
  fi
  return $rc
}
