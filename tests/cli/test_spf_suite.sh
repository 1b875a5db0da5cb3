#!/usr/bin/env bash
# The OpenSPF RFC 7208 suite's HELO tests through the command: `ipwarm spf --helo` takes what a
# client may send (an address literal "[1.2.3.5]", "JUMPIN' JUPITER", "%%%..."), and each of
# the suite's four tests whose HELO is not a domain name gives the suite's result when asked
# over real DNS (tests/spf/suite_cli.py serves the scenario's zone on loopback). The whole
# suite runs through the library in tests/unit/test_spf_suite.c. Also: --helo refuses control
# characters (exit 64). Skipped (77) without python3-yaml or python3-spf (the suite's file).
# Environment: IPWARM, SRCDIR.
set -u
: "${IPWARM:?set IPWARM}" "${SRCDIR:?set SRCDIR}"
. "$SRCDIR/tests/lib/need.sh"
suite=/usr/share/doc/python3-spf/rfc7208-tests.yml.gz
need python3 py:yaml "file:$suite"
. "$SRCDIR/tests/lib/assert.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset IPWARM_PLAN

"$NEED_PY" "$SRCDIR/tests/spf/suite_cli.py" "$IPWARM" "$suite" >suite.out 2>&1
tally suite.out

# The suite's first HELO case by hand: no DNS needed, "none" for a literal, exit 0.
"$IPWARM" --dns 127.0.0.1:9 --dns-timeout 200 spf --ip 1.2.3.5 --sender "" --helo "[1.2.3.5]" \
  >out 2>err
rc=$?
check "spf --helo [1.2.3.5]: exit 0" test "$rc" -eq 0
check "spf --helo [1.2.3.5]: none, the literal named" \
  grep -qxF "none: '[1.2.3.5]' is not a multi-label domain name (0 DNS lookups)" out
"$IPWARM" --dns 127.0.0.1:9 spf --ip 1.2.3.5 --sender "" --helo "$(printf 'a\rb')" >out 2>err
rc=$?
check "spf --helo with a control character: exit 64" test "$rc" -eq 64
check "... and the message says so" grep -qF "control character" err
finish
