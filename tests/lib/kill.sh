# shellcheck shell=bash
# kill -9 rounds of `ipwarm run` and the runs that settle the store afterwards, for the tests
# that kill ipwarm while it sends (tests/cli/test_kill_*.sh). Source it after servers.sh and
# assert.sh, with IPWARM and work set. Times are milliseconds since the epoch, the clock the
# servers' logs (seconds) and the store's started_ms use.
#
#   kill_on_event LOG N REGEX ERRFILE PLAN [RUN-ARGS...]
#       Starts `ipwarm -p PLAN run RUN-ARGS` in the background (stderr to ERRFILE), and sends it
#       SIGKILL as soon as LOG holds N lines matching the Python regular expression REGEX (at
#       most 60 s: an event, never a fixed sleep, chooses the moment). The log is read every
#       millisecond, so the kill lands within a few milliseconds of the event: while the run
#       reads the replies that made it, or records them. Sets KILL_FIRED (1 when the event
#       came), KILL_SENT (1 when SIGKILL ended the run), KILL_START_MS (just before the start)
#       and KILL_DEAD_MS (once the process was reaped: a reply a server logged later than that
#       reached no one). Returns 0.
#   settle_runs PLAN DB RELEASED [TRIES]
#       Runs `ipwarm run` to its end, then `ipwarm release --all` while recipients of DB are
#       held, at most TRIES times (default 5), each run under a 120 s timeout; checks (with
#       check) each exit code and that stderr is clean, and appends each released address to
#       RELEASED, one a line.
#   data_ends_wait LOG
#       Waits (at most 30 s) until every DATA command in LOG (smtpd.py's) has its end logged: the
#       message after its dot ("message"), or the client gone in the middle ("eof-in-data",
#       "error"); returns 1 if that did not happen. A server holding its reply after the dot
#       logs the message only when its delay is over, long after the run it answers was
#       killed: only then is the log complete, and only then do its counts belong to the next
#       run alone.

kill_on_event() {
  local log=$1 n=$2 re=$3 errfile=$4 plan=$5 victim rc
  shift 5
  KILL_FIRED=0 KILL_SENT=0
  KILL_START_MS=$(date +%s%3N)
  "$IPWARM" -p "$plan" run "$@" >/dev/null 2>"$errfile" &
  victim=$!
  kill_when_logged "$log" "$n" "$re" "$victim" && KILL_FIRED=1
  kill -KILL "$victim" 2>/dev/null
  wait "$victim" 2>/dev/null
  rc=$?
  KILL_DEAD_MS=$(date +%s%3N)
  [ "$rc" -eq 137 ] && KILL_SENT=1
  return 0
}

# kill_when_logged LOG N REGEX PID: SIGKILL to PID once LOG holds N lines matching REGEX;
# returns 1 after 60 s without them, or when PID ended (a zombie) first.
kill_when_logged() {
  "$SERVERS_PY" - "$@" <<'EOF'
import os, re, signal, sys, time
log, n, rx, pid = sys.argv[1], int(sys.argv[2]), re.compile(sys.argv[3]), int(sys.argv[4])
end, pos, rest, seen, polls = time.time() + 60, 0, b"", 0, 0
while time.time() < end:
    try:
        with open(log, "rb") as f:
            f.seek(pos)
            chunk = f.read()
    except OSError:
        chunk = b""
    if chunk:
        pos += len(chunk)
        *lines, rest = (rest + chunk).split(b"\n")
        seen += sum(1 for l in lines if rx.search(l.decode("utf-8", "replace")))
        if seen >= n:
            os.kill(pid, signal.SIGKILL)
            sys.exit(0)
        continue
    polls += 1
    if polls % 100 == 0:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    sys.exit(1)
        except OSError:
            sys.exit(1)
    time.sleep(0.001)
sys.exit(1)
EOF
}

settle_runs() {
  local plan=$1 db=$2 released=$3 tries=${4:-5} fin rc
  for ((fin = 1; fin <= tries; fin++)); do
    timeout 120 "$IPWARM" -p "$plan" run >"$work/settle$fin.out" 2>"$work/settle$fin.err"
    rc=$?
    check "settling run $fin exits 0 (got $rc: $(tail -1 "$work/settle$fin.err"))" test "$rc" -eq 0
    check "settling run $fin: no sanitizer report" clean "$work/settle$fin.err"
    [ "$rc" -eq 0 ] || return 1
    [ "$(sqlite3 "$db" "SELECT count(*) FROM recipients WHERE state = 'held'")" -eq 0 ] && return 0
    "$IPWARM" -p "$plan" release --all >"$work/release$fin.out" 2>&1
    rc=$?
    check "release --all $fin exits 0 (got $rc)" test "$rc" -eq 0
    sed -n 's/^released \([^ ]*\)$/\1/p' "$work/release$fin.out" >>"$released"
  done
  return 0
}

data_ends_wait() {
  local log=$1 end_re='"ev": "(message|eof-in-data|error)"'
  log_wait "$log" "$(log_count "$log" '"line": "DATA", .*"ev": "cmd"')" "$end_re" 30
}
