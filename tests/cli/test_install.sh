#!/usr/bin/env bash
# `cmake --install` puts the binary, the man pages, the example plans and the docs in place,
# and the installed binary validates the installed examples.
set -u
: "${BUILDDIR:?}" "${SRCDIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then pass=$((pass + 1)); echo "ok: $what"
  else fail=$((fail + 1)); echo "FAIL: $what"; fi
}

cmake --install "$BUILDDIR" --prefix "$work/prefix" >"$work/install.log" 2>&1
rc=$?
check "cmake --install exits 0" test "$rc" -eq 0
check "binary installed" test -x "$work/prefix/bin/ipwarm"
check "ipwarm(1) installed" test -s "$work/prefix/share/man/man1/ipwarm.1"
check "ipwarm-plan(5) installed" test -s "$work/prefix/share/man/man5/ipwarm-plan.5"
check "providers.yaml installed" test -s "$work/prefix/share/ipwarm/config/providers.yaml"
check "direct.yaml installed" test -s "$work/prefix/share/ipwarm/config/direct.yaml"
check "relay.yaml installed" test -s "$work/prefix/share/ipwarm/config/relay.yaml"
check "plan reference installed" test -s "$work/prefix/share/doc/ipwarm/plan.md"
check "schema reference installed" test -s "$work/prefix/share/doc/ipwarm/schema.md"
for plan in direct relay; do
  check "installed $plan.yaml validates" "$work/prefix/bin/ipwarm" -p "$work/prefix/share/ipwarm/config/$plan.yaml" validate
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
