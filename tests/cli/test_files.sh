#!/usr/bin/env bash
# The files ipwarm writes, through the binary: `report -o` and `metrics -o` do not follow a
# symlink planted at the temporary name the old code used (FILE.tmp), write the file whole, and
# leave the old file in place when writing fails (a file size limit stands in for a full disk);
# `init` and `dkim keygen` never overwrite and leave no temporary file; the state file, its
# -wal and -shm files and the run lock are created 0600 even under umask 0, as is the DKIM key.
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

finish
