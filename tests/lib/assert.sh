# shellcheck shell=bash
# Assertions for ipwarm's shell tests: one line per assertion ("ok: ..." / "FAIL: ..."), and a
# closing "N passed, M failed" line that ctest's log and CI read. Source it, then:
#   ok TEXT / bad TEXT        count a result
#   check TEXT COMMAND...     ok when COMMAND succeeds, else bad
#   tally FILE                print FILE (lines from a checker script), count its ok:/FAIL:,
#                             and count a crash of the checker itself (a Traceback) as a failure
#   clean FILE                true when FILE (a run's stderr) holds no sanitizer report or crash
#   finish                    print the closing line; returns non-zero on any failure
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
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
