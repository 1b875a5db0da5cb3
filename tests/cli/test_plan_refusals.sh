#!/usr/bin/env bash
# Every plan in tests/plans/bad must be refused by `ipwarm validate` with exit 78 (EX_CONFIG)
# and a message that points at the offending key. Each file's first line says where:
#     # expect: LINE:COL KEY.PATH
# (KEY.PATH is left out for problems that have no key, such as a YAML syntax error), and stderr
# must contain "FILE:LINE:COL: KEY.PATH" with FILE exactly as passed to -p.
# The good plans in tests/plans/good must validate (exit 0).
# Environment (set by ctest): IPWARM = the binary, SRCDIR = the source tree.
set -u

: "${IPWARM:?set IPWARM to the ipwarm binary}"
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
passed=0
failed=0

pass() {
    passed=$((passed + 1))
    printf 'ok    %s\n' "$1"
}

fail() {
    failed=$((failed + 1))
    printf 'FAIL  %s: %s\n' "$1" "$2"
}

err=$(mktemp)
trap 'rm -f "$err"' EXIT

for plan in "$SRCDIR"/tests/plans/bad/*.yaml; do
    name=${plan#"$SRCDIR"/}
    header=$(head -n 1 "$plan")
    if [[ ! $header =~ ^\#\ expect:\ ([0-9]+:[0-9]+)(\ (.+))?$ ]]; then
        fail "$name" "first line is not '# expect: LINE:COL [KEY.PATH]'"
        continue
    fi
    where=${BASH_REMATCH[1]}
    key=${BASH_REMATCH[3]}
    want="$plan:$where:"
    [ -n "$key" ] && want="$want $key"

    # a hostile plan (billion laughs, deep nesting) must fail fast, not hang the suite (30 s:
    # a bound a hang misses and a loaded machine does not)
    timeout 30 "$IPWARM" -p "$plan" validate >/dev/null 2>"$err"
    rc=$?
    if [ "$rc" -ne 78 ]; then
        fail "$name" "exit $rc, expected 78; stderr: $(head -c 400 "$err")"
    elif ! grep -qF -- "$want" "$err"; then
        fail "$name" "stderr lacks '$want'; stderr: $(head -c 400 "$err")"
    else
        pass "$name -> $where${key:+ $key}"
    fi
done

for plan in "$SRCDIR"/tests/plans/good/*.yaml "$SRCDIR"/config/example.yaml; do
    name=${plan#"$SRCDIR"/}
    timeout 30 "$IPWARM" -p "$plan" validate >/dev/null 2>"$err"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "$name validates"
    else
        fail "$name" "exit $rc, expected 0; stderr: $(head -c 400 "$err")"
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
