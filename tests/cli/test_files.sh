#!/usr/bin/env bash
# The files ipwarm writes, through the binary: `report -o` and `metrics -o` do not follow a
# symlink planted at the temporary name the old code used (FILE.tmp), write the file whole, and
# leave the old file in place when writing fails (a file size limit stands in for a full disk);
# `init` and `dkim keygen` never overwrite and leave no temporary file; the state file, its
# -wal and -shm files and the run lock are created 0600 even under umask 0, as is the DKIM key.
# A FIFO or a device named by the plan (or given as the plan) is refused at once with the key
# and the file, never waited on; a password file other users may read is warned about.
# Environment: IPWARM (the binary), SRCDIR (the source tree).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
unset IPWARM_PLAN
work=$(mktemp -d)
. "$SRCDIR/tests/lib/servers.sh"
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
cd "$work" || exit 1

# run WANT WHAT ARGS...: runs ipwarm, counts the exit code, keeps stdout/stderr in out/err.
run() {
  local want=$1 what=$2
  shift 2
  "$IPWARM" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$what: exit $rc"; else
    bad "$what: exit $rc, expected $want"
    sed 's/^/    stderr: /' "$work/err" | head -5
  fi
}
mode_is() { check "$1 is mode $2 (is $(stat -c %a "$1" 2>/dev/null))" test "$(stat -c %a "$1" 2>/dev/null)" = "$2"; }
# No temporary file left beside the outputs (".NAME.XXXXXX" or NAME.tmp other than the links).
no_temp() { check "$1: no temporary file left ($(ls -A | grep -E '^\.[^.]' | tr '\n' ' '))" \
  test -z "$(ls -A | grep -E '^\.[^.]')"; }

# --- init: everything 0644 under umask 0, never overwritten -------------------------------
(umask 0 && "$IPWARM" init plan.yaml) >"$work/out" 2>"$work/err"
check "init exits 0" test $? -eq 0
mode_is plan.yaml 644
mode_is message.txt 644
no_temp "init"
cp plan.yaml plan.orig
run 73 "init over an existing plan" init plan.yaml
check "init: the existing plan is unchanged" cmp -s plan.yaml plan.orig
check "init: says so" grep -qF "plan.yaml exists; not overwriting it" "$work/err"
no_temp "init refused"
# The plan's state goes into this directory.
sed -i 's|^state:.*|state: state.db|' plan.yaml
grep -q '^state: state.db' plan.yaml || echo 'state: state.db' >>plan.yaml

# --- report -o and metrics -o: a symlink at FILE.tmp is not followed ------------------------
echo "precious" >victim
ln -s victim report.html.tmp
ln -s victim metrics.prom.tmp
run 0 "report -o with a symlink at report.html.tmp" -p plan.yaml report -o report.html
check "report: the file the symlink points at is untouched" test "$(cat victim)" = precious
check "report: the report is complete" grep -q '</html>' report.html
check "report: the link is still a link" test -L report.html.tmp
run 0 "metrics -o with a symlink at metrics.prom.tmp" -p plan.yaml metrics -o metrics.prom
check "metrics: the file the symlink points at is untouched" test "$(cat victim)" = precious
check "metrics: the exposition is complete" grep -q '^# TYPE ipwarm_' metrics.prom
mode_is report.html 644
no_temp "report and metrics"

# --- a write that fails leaves the old file --------------------------------------------------
# The report of this (empty) state is a few KiB; a 1 KiB file size limit makes its write fail.
echo "old report" >report.html
(ulimit -f 1 && trap '' XFSZ && exec "$IPWARM" -p plan.yaml report -o report.html) \
  >"$work/out" 2>"$work/err"
rc=$?
check "report under a 1 KiB file size limit fails with exit 74 (got $rc)" test "$rc" -eq 74
check "report: the old file is unchanged" test "$(cat report.html)" = "old report"
check "report: the error names the file ($(head -1 "$work/err"))" grep -qF "report.html" "$work/err"
no_temp "failed report"

# --- state file, -wal, -shm and lock: 0600 even under umask 0 ------------------------------
rm -f state.db*
(umask 0 && exec "$IPWARM" -p plan.yaml pause gmail --for 1h) >"$work/out" 2>"$work/err"
check "pause creates the state file" test -s state.db
mode_is state.db 600
mode_is state.db-wal 600
mode_is state.db-shm 600
# The run lock: a dry run with no recipients to send creates and takes it.
dnsmasq_start <<EOF || bad "dnsmasq"
mx-host=example.com,mx.example.com,10
host-record=mx.example.com,127.0.0.1
EOF
(umask 0 && exec "$IPWARM" -p plan.yaml --dns "$DNS_SERVER" run --dry-run --once) \
  >"$work/out" 2>"$work/err"
rc=$?
check "a dry run exits 0 (got $rc: $(tail -1 "$work/err"))" test "$rc" -eq 0
mode_is state.db.lock 600

# --- dkim keygen: 0600 under umask 0, never overwritten ------------------------------------
(umask 0 && exec "$IPWARM" dkim keygen --selector s1 --domain example.com -o k.pem) \
  >"$work/out" 2>"$work/err"
check "dkim keygen exits 0" test $? -eq 0
mode_is k.pem 600
cp k.pem k.orig
run 73 "dkim keygen over an existing key" dkim keygen --selector s1 --domain example.com -o k.pem
check "dkim keygen: the existing key is unchanged" cmp -s k.pem k.orig
check "dkim keygen: says so" grep -qF "k.pem exists; not overwriting a key" "$work/err"
no_temp "dkim keygen"

# --- a FIFO or a device where the plan names a file: refused, never waited on ---------------
# quick WANT WHAT ARGS...: like run, under `timeout 30` (a blocking open would hang: exit 124).
quick() {
  local want=$1 what=$2
  shift 2
  timeout 30 "$IPWARM" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$what: exit $rc"; else
    bad "$what: exit $rc, expected $want (124: it hung)"
    sed 's/^/    stderr: /' "$work/err" | head -5
  fi
}
mkfifo "$work/fifo"
# mini NAME TEXT_FILE [SENDER_EXTRA [TRANSPORT]]: a small plan written here.
mini() {
  cat >"$1.yaml" <<EOF
campaign: $1
state: state.db
source: {ip: 192.0.2.10, helo: mx.example.com}
sender: {from: "News <news@example.com>"${3:+, $3}}
${4:-}
message: {subject: Hi, text_file: $2}
recipients: {file: seeds.csv}
EOF
}
mini fifotext fifo
quick 78 "message.text_file is a FIFO: validate" -p fifotext.yaml validate
err_has "FIFO template: key, name and kind" \
  "message.text_file: expected a regular file, found \"fifo\" ($work/fifo is a FIFO (named pipe))"
quick 66 "the plan is a FIFO: validate" -p "$work/fifo" validate
err_has "FIFO plan: named" "cannot read the plan $work/fifo: it is a FIFO (named pipe), not a regular file"
mini zerokey message.txt "dkim: {domain: example.com, selector: s1, key_file: /dev/zero}"
quick 78 "sender.dkim.key_file is /dev/zero: validate" -p zerokey.yaml validate
err_has "/dev/zero key: key, name and kind" \
  "sender.dkim.key_file: expected a regular file, found \"/dev/zero\" (/dev/zero is a character device)"

# --- the relay password file: a FIFO is refused; other users' read access is warned about ---
relay() { printf 'transport:\n  mode: relay\n  relay: {url: "smtp://127.0.0.1:2525", username: warmup, password_file: %s}' "$1"; }
mini fifopw message.txt "" "$(relay fifo)"
quick 78 "password_file is a FIFO: validate" -p fifopw.yaml validate
err_has "FIFO password file: key and kind" \
  "transport.relay.password_file: expected a regular file, found \"fifo\" ($work/fifo is a FIFO (named pipe))"
printf 's3cret-pw\n' >pw
chmod 0644 pw
mini worldpw message.txt "" "$(relay pw)"
quick 0 "a world-readable password file: validate still passes" -p worldpw.yaml validate
err_has "world-readable password file: warned with file and mode" \
  "ipwarm: warning: transport.relay.password_file: $work/pw is readable by every user (mode 0644): chmod 0600 it"
quick 0 "with -q the warning still shows" -q -p worldpw.yaml validate
err_has "-q: warned" "is readable by every user (mode 0644)"
chmod 0640 pw
quick 0 "a password file of mode 0640: validate" -p worldpw.yaml validate
if grep -q "warning" "$work/err"; then bad "mode 0640: warned"; else ok "mode 0640: no warning"; fi
if grep -q 's3cret-pw' "$work/out" "$work/err"; then bad "the password was printed"; else ok "the password is never printed"; fi

finish
