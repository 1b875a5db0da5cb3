# shellcheck shell=bash
# Assertions for ipwarm's shell tests: one line per assertion ("ok: ..." / "FAIL: ..."), and a
# closing "N passed, M failed" line that ctest's log and CI read. Source it, then:
#   ok TEXT / bad TEXT        count a result
#   check TEXT COMMAND...     ok when COMMAND succeeds, else bad
#   must TEXT COMMAND...      the same for a step the rest of the test cannot do without (a
#                             server's start): on failure the test ends there, with finish
#   tally FILE                print FILE (lines from a checker script), count its ok:/FAIL:,
#                             and count a crash of the checker itself (a Traceback) as a failure
#   clean FILE                true when FILE (a run's stderr) holds no sanitizer report or crash
#   finish                    print the closing line; returns non-zero on any failure
# Runs of ipwarm ($IPWARM) with their output in $work/out and $work/err ($work: the test's own
# directory), and checks of that output:
#   t TEXT WANT ARGS...       runs ipwarm ARGS; ok when it exits WANT, else bad and the first
#                             lines of its stdout and stderr
#   out_has / out_lacks TEXT STRING, err_has TEXT STRING
#                             the last stdout has (lacks) STRING, the last stderr has STRING
#   json_true TEXT EXPR       the Python expression EXPR is true, with d the last stdout read
#                             as JSON (Debian's python)
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
must() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else
    bad "$what"
    finish
    exit 1
  fi
}
tally() {
  cat "$1"
  pass=$((pass + $(grep -c '^ok:' "$1")))
  fail=$((fail + $(grep -c '^FAIL:' "$1")))
  if grep -q '^Traceback' "$1"; then bad "the check script $1 crashed"; fi
  return 0
}
clean() { ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|Segmentation|Aborted' "$1"; }
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}

ASSERT_PY=/usr/bin/python3
[ -x "$ASSERT_PY" ] || ASSERT_PY=python3
t() {
  local what=$1 want=$2
  shift 2
  "$IPWARM" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then
    ok "$what: exit $rc"
  else
    bad "$what: exit $rc, expected $want"
    sed 's/^/    stdout: /' "$work/out" | head -40
    sed 's/^/    stderr: /' "$work/err" | head -5
  fi
}
out_has() {
  if grep -qF -- "$2" "$work/out"; then ok "$1"; else
    bad "$1: stdout lacks '$2'"
    sed 's/^/    stdout: /' "$work/out" | head -20
  fi
}
out_lacks() {
  if grep -qF -- "$2" "$work/out"; then bad "$1: stdout has '$2'"; else ok "$1"; fi
}
err_has() {
  if grep -qF -- "$2" "$work/err"; then ok "$1"; else
    bad "$1: stderr lacks '$2'"
    sed 's/^/    stderr: /' "$work/err" | head -5
  fi
}
json_true() {
  local what=$1 expr=$2
  if "$ASSERT_PY" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($expr) else 1)" \
    "$work/out" 2>"$work/pyerr"; then
    ok "$what"
  else
    bad "$what: ($expr) is false"
    sed 's/^/    /' "$work/pyerr" | tail -2
  fi
}
