#!/usr/bin/env bash
# `cmake --install` puts the binary, the compressed man pages, the example plans, the docs and
# the systemd units (naming the installed binary) in place, and the installed binary validates
# the installed examples.
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
check "ipwarm(1) installed, compressed" gzip -t "$work/prefix/share/man/man1/ipwarm.1.gz"
check "ipwarm-plan(5) installed, compressed" gzip -t "$work/prefix/share/man/man5/ipwarm-plan.5.gz"
check "ipwarm(1) is the page of the source" \
  cmp -s <(gzip -dc "$work/prefix/share/man/man1/ipwarm.1.gz") "$SRCDIR/docs/man/ipwarm.1"
check "providers.yaml installed" test -s "$work/prefix/share/ipwarm/config/providers.yaml"
check "direct.yaml installed" test -s "$work/prefix/share/ipwarm/config/direct.yaml"
check "relay.yaml installed" test -s "$work/prefix/share/ipwarm/config/relay.yaml"
check "plan reference installed" test -s "$work/prefix/share/doc/ipwarm/plan.md"
check "schema reference installed" test -s "$work/prefix/share/doc/ipwarm/schema.md"
check "the sandbox's config is not installed (scripts/sandbox is not)" \
  test ! -e "$work/prefix/share/ipwarm/config/sandbox"
# The units, where systemd finds them under /usr and /usr/local, start the binary where the
# build's prefix puts it.
units=$work/prefix/lib/systemd/system
check "ipwarm.service installed, naming the installed binary" grep -qxF \
  "ExecStart=$(grep -oP '^CMAKE_INSTALL_PREFIX:PATH=\K.*' "$BUILDDIR/CMakeCache.txt")/bin/ipwarm -q -p /etc/ipwarm/ipwarm.yaml run --once" \
  "$units/ipwarm.service"
for unit in ipwarm.timer ipwarm-metrics.service ipwarm-metrics.timer; do
  check "$unit installed" test -s "$units/$unit"
done
for plan in direct relay; do
  check "installed $plan.yaml validates" "$work/prefix/bin/ipwarm" -p "$work/prefix/share/ipwarm/config/$plan.yaml" validate
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
