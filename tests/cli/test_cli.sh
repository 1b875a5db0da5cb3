#!/usr/bin/env bash
# The command line against its contract (docs/cli.md): exit codes, key messages,
# every command's --help, global options before and after the command, init and validate end
# to end, --json, and that ipwarm(1) names every command and long option that --help prints.
# Environment: IPWARM (the binary), SRCDIR (the source tree).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
. "$SRCDIR/tests/lib/need.sh" && need python3
PY=$NEED_PY
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset IPWARM_PLAN

. "$SRCDIR/tests/lib/assert.sh"

# check DESCRIPTION COMMAND...: COMMAND succeeds (its output is not wanted here).
check() {
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}

# --- usage errors -------------------------------------------------------------------------
t "no command" 64
err_has "no command: usage on stderr" "usage: ipwarm"
t "unknown command" 64 valdate
err_has "unknown command: suggestion" "did you mean 'validate'"
t "unknown option" 64 --foo
err_has "unknown option: one-line hint" "ipwarm: unknown option '--foo' (see ipwarm --help)"
t "unknown option after a command" 64 validate --foo=1
err_has "unknown option after a command: hint" "unknown option '--foo'"
t "flag with a value" 64 --json=yes validate
t "global option without its value" 64 validate -p
t "bad --now" 64 --now 2026-12-01 status
err_has "bad --now: names RFC 3339" "RFC 3339"
t "bad --dns" 64 --dns 1.2.3.4:99999 status
t "bad --dns-timeout" 64 --dns-timeout 0 status

# --- help and version ---------------------------------------------------------------------
t "--version" 0 --version
if head -1 "$work/out" | grep -q '^ipwarm 0\.1\.0'; then ok "--version starts with ipwarm 0.1.0"; else bad "--version starts with ipwarm 0.1.0"; fi
out_has "--version names SQLite" "SQLite"
t "--help" 0 --help
out_has "--help lists commands" "Commands:"
"$IPWARM" --help >"$work/help.txt" 2>/dev/null
# The command names from the "Commands:" block: one or two lower-case words per line.
commands=$(sed -n '/^Commands:/,/^$/p' "$work/help.txt" |
  sed -nE 's/^  ([a-z]+( [a-z]+)?)( |$).*/\1/p' | sed -E 's/ +$//')
for c in init validate check spf dnsbl mx run status stats trace report simulate pause resume metrics "dkim keygen"; do
  if printf '%s\n' "$commands" | grep -qx "$c"; then ok "--help lists '$c'"; else bad "--help lists '$c'"; fi
done
: >"$work/allhelp.txt"
cat "$work/help.txt" >>"$work/allhelp.txt"
while IFS= read -r c; do
  [ -n "$c" ] || continue
  # shellcheck disable=SC2086 # "dkim keygen" is two words on purpose
  t "$c --help" 0 $c --help
  out_has "$c --help: usage line" "usage: ipwarm [GLOBAL OPTIONS] $c"
  cat "$work/out" >>"$work/allhelp.txt"
done <<<"$commands"
t "--help before the command" 0 --help stats
out_has "--help before the command: the command's help" "stats [--by hour|day|ip]"
t "--help wins over bad values" 0 stats --by week --help
t "group help" 0 dkim --help
out_has "group help: subcommand usage" "dkim keygen"

# --- the manual is in step with --help ----------------------------------------------------
man1="$SRCDIR/docs/man/ipwarm.1"
if [ -s "$man1" ]; then
  ok "ipwarm.1 exists"
  # roff writes "--plan" as "\-\-plan" and may set it in fonts: drop both for the search.
  sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(aq/'"'"'/g' "$man1" >"$work/man.txt"
  for opt in $(grep -oE -- '--[a-z][a-z-]*' "$work/allhelp.txt" | sort -u); do
    if grep -qF -- "$opt" "$work/man.txt"; then ok "ipwarm.1 documents $opt"; else bad "ipwarm.1 documents $opt"; fi
  done
  while IFS= read -r c; do
    [ -n "$c" ] || continue
    # An entry of COMMANDS: ".B validate", ".BR init ...", ".BI \"spf --ip \" ...".
    if grep -qE -- "^\.B[RI]? \"?$c( |\"|\$)" "$work/man.txt"; then
      ok "ipwarm.1 documents command '$c'"
    else bad "ipwarm.1 documents command '$c'"; fi
  done <<<"$commands"
  if command -v groff >/dev/null 2>&1; then
    warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$man1" 2>&1)
    if [ -z "$warnings" ]; then ok "ipwarm.1 renders without warnings"; else bad "ipwarm.1 renders without warnings: $warnings"; fi
  elif command -v man >/dev/null 2>&1; then
    warnings=$(man --warnings -l "$man1" 2>&1 >/dev/null)
    if [ -z "$warnings" ]; then ok "ipwarm.1 renders without warnings"; else bad "ipwarm.1 renders without warnings: $warnings"; fi
  else
    echo "skip: neither groff nor man to render ipwarm.1"
  fi
else
  bad "ipwarm.1 exists"
fi

# --- docs/cli.md, the reference in the repository, is in step with --help too ------------------
clidoc="$SRCDIR/docs/cli.md"
if [ -s "$clidoc" ]; then
  for opt in $(grep -oE -- '--[a-z][a-z-]*' "$work/allhelp.txt" | sort -u); do
    if grep -qF -- "$opt" "$clidoc"; then ok "cli.md documents $opt"; else bad "cli.md documents $opt"; fi
  done
  while IFS= read -r c; do
    [ -n "$c" ] || continue
    # A row of the commands table: "| `validate` |", "| `spf --ip IP ...` |".
    if grep -qE -- "^\| \`$c( |\`)" "$clidoc"; then
      ok "cli.md documents command '$c'"
    else bad "cli.md documents command '$c'"; fi
  done <<<"$commands"
else
  bad "docs/cli.md exists"
fi

# --- init ---------------------------------------------------------------------------------
t "init x.yaml" 0 init x.yaml
check "init wrote x.yaml" test -s x.yaml
check "init wrote message.txt" test -s message.txt
check "init wrote seeds.csv" test -s seeds.csv
check "x.yaml is the shipped example" cmp -s x.yaml "$SRCDIR/config/example.yaml"
err_has "init says what it wrote" "wrote x.yaml"
echo "# an edit" >>x.yaml
sum_before=$(sha256sum x.yaml)
t "init on an existing plan" 73 init x.yaml
err_has "init refuses to overwrite" "ipwarm: init: x.yaml exists; not overwriting it"
sum_after=$(sha256sum x.yaml)
if [ "$sum_before" = "$sum_after" ]; then ok "existing plan unchanged"; else bad "existing plan unchanged"; fi
mkdir sub
echo "my own message" >sub/message.txt
t "init beside an existing message.txt" 0 -p sub/plan.yaml init
check "init used the -p path" test -s sub/plan.yaml
if [ "$(cat sub/message.txt)" = "my own message" ]; then ok "existing message.txt kept"; else bad "existing message.txt kept"; fi
check "seeds.csv written beside it" test -s sub/seeds.csv
t "init --quiet" 0 -q init quiet.yaml
if [ ! -s "$work/err" ]; then ok "init --quiet: nothing on stderr"; else bad "init --quiet: nothing on stderr"; fi
t "init into a missing directory" 73 init nodir/x.yaml
t "init with two files" 64 init a.yaml b.yaml

# --- validate -----------------------------------------------------------------------------
t "validate init's plan" 0 -p x.yaml validate
out_has "validate: plan line" "campaign mx1-new-ip"
if grep -E '^ +microsoft365 ' "$work/out" | grep -F '.mail.protection.outlook.com' | grep -qF '1500 3000 6000'; then
  ok "validate: microsoft365 line with MX suffix and caps"
else bad "validate: microsoft365 line with MX suffix and caps"; fi
if grep -qE '^ +other \(default\) ' "$work/out"; then ok "validate: other (default)"; else bad "validate: other (default)"; fi
out_has "validate: gmail MX" ".google.com"
out_has "validate: backoff line" "backoff: throttle x0.5, pause 15m"
out_has "validate: shipped rule" "yahoo-tss04 (shipped)"
out_has "validate: preflight" "preflight: require spf ptr helo mx dnsbl"
t "validate -p after the command" 0 validate -p x.yaml
t "validate --plan=FILE" 0 validate --plan=x.yaml
IPWARM_PLAN=x.yaml "$IPWARM" validate >/dev/null 2>&1
rc=$?
if [ $rc -eq 0 ]; then ok "validate with IPWARM_PLAN"; else bad "validate with IPWARM_PLAN: exit $rc"; fi
cp x.yaml ipwarm.yaml
t "validate ./ipwarm.yaml by default" 0 validate
rm ipwarm.yaml
t "validate --db and --dns override the plan" 0 -p x.yaml validate --db other.db --dns 127.0.0.1:5353 --dns-timeout=1500
out_has "validate --db shown" "state other.db"
out_has "validate --dns shown" "servers 127.0.0.1:5353"
out_has "validate --dns-timeout shown" "timeout 1s500ms"
t "validate an extra argument" 64 -p x.yaml validate extra

t "validate --json" 0 -p x.yaml validate --json
if "$PY" -c '
import json, sys
d = json.load(sys.stdin)
assert d["campaign"] == "mx1-new-ip", d["campaign"]
assert d["timezone"] == "UTC"
assert d["ramp"]["start_per_min"] == 5, d["ramp"]
assert d["ramp"]["growth"] == 1.5
assert d["ramp"]["daily_cap"] == [500, 1000, 2000, 5000]
p = {x["name"]: x for x in d["providers"]}
assert ".google.com" in p["gmail"]["mx"], p["gmail"]
assert p["microsoft365"]["ramp"]["daily_cap"] == [1500, 3000, 6000]
assert p["other"]["default"] is True
assert d["source"]["ips"] == ["192.0.2.10"] and d["source"]["helo"] == "mx1.example.com"
assert d["transport"]["mode"] == "direct" and d["transport"]["port"] == 25
assert d["schedule"]["days"] == ["mon", "tue", "wed", "thu", "fri"]
assert d["schedule"]["hours"] == ["09:00-18:00"]
assert d["backoff"]["deferral"]["factor"] == 0.5
assert any(r["origin"] == "plan" and r["name"] == "too-many-connections" and r["action"] == "throttle" and r["rate_per_min"] == 2 and r["trigger"] == "2/1h" for r in d["rules"])
assert any(r["name"] == "yahoo-tss04" and r["origin"] == "shipped" for r in d["rules"])
assert d["preflight"]["require"] == ["spf", "ptr", "helo", "mx", "dnsbl"]
assert "zen.spamhaus.org" in d["preflight"]["dnsbl"]
assert d["dns"]["servers"] == [] and d["dns"]["timeout_ms"] == 5000
for k in ("campaign", "timezone", "state", "source", "transport", "schedule", "ramp", "providers", "backoff", "rules", "preflight", "dns"):
    assert k in d, k
' <"$work/out" 2>"$work/py.err"; then ok "validate --json: values"; else bad "validate --json: values: $(tail -1 "$work/py.err")"; fi

for plan in "$SRCDIR"/config/*.yaml; do
  [ "$(basename "$plan")" = providers.yaml ] && continue
  t "validate $(basename "$plan")" 0 -p "$plan" validate
done

t "missing plan" 66 -p "$work/none.yaml" validate
err_has "missing plan: names the path" "$work/none.yaml"
t "missing plan, quiet" 66 -q -p "$work/none.yaml" validate
err_has "errors are printed under --quiet" "none.yaml"

sed 's/^  growth: 1.5 /  growth: fast /' x.yaml >bad.yaml
t "invalid plan" 78 -p bad.yaml validate
err_has "invalid plan: FILE:LINE:COLUMN" "bad.yaml:"
err_has "invalid plan: the key" "growth"
err_has "invalid plan: nothing was done" "ipwarm: the plan is invalid; nothing was done"

if [ -w /dev/full ]; then
  "$IPWARM" -p x.yaml validate >/dev/full 2>"$work/err"
  rc=$?
  if [ $rc -eq 74 ]; then ok "validate to a full disk: exit 74"; else bad "validate to a full disk: exit $rc, expected 74"; fi
fi

# --- every command parses its options before it needs anything; offline forms only ------
# (Each command's behaviour has its own test file; here: the parser and the exit codes.)
t "run --once without a plan" 66 -p nowhere.yaml run --once
err_has "run --once without a plan: names the file" "nowhere.yaml"
t "run --once with --for" 64 -p x.yaml run --once --for 2h
t "check without a plan" 66 -p nowhere.yaml check
# spf needs no plan: run it where there is none.
mkdir -p "$work/noplan" && cd "$work/noplan" || exit 1
t "spf: null sender without HELO or plan" 64 spf --ip 192.0.2.10 --sender ""
t "spf --opt=value with a DNS server that does not answer" 0 --dns 127.0.0.1:9 --dns-timeout 300 spf --ip=2001:db8::1 --sender=a@example.com --helo=mx1.example.com
out_has "spf: temperror when DNS does not answer" "temperror"
cd "$work" || exit 1
t "dnsbl with a DNS server that does not answer" 0 -p nowhere.yaml --dns 127.0.0.1:9 --dns-timeout 300 dnsbl --ip 192.0.2.10 --zone zen.spamhaus.org --zone bl.spamcop.net
t "mx with a DNS server that does not answer" 0 -p nowhere.yaml --dns 127.0.0.1:9 --dns-timeout 300 mx gmail.com example.com
out_has "mx: temperror when DNS does not answer" "temperror"
t "run --for --dry-run --force without a plan" 66 -p nowhere.yaml run --for 2h --dry-run --force
t "status with --now and --json" 0 -p x.yaml --now 2026-12-01T09:00:00+09:00 status --json
t "stats --by=hour ... --format csv" 0 -p x.yaml stats --by=hour --provider gmail --since 2026-12-01T00:00:00Z --until 2026-12-02T00:00:00Z --format csv
t "trace" 0 -p x.yaml trace seed1@example.com
t "trace after --" 0 -p x.yaml trace -- -odd@example.com
t "report -o" 0 -p x.yaml report -o r.html
t "report --output=" 0 -p x.yaml report --output=r2.html
t "simulate" 0 -p x.yaml simulate --days 20
t "pause" 0 -p x.yaml pause gmail --for 2h
t "resume" 0 -p x.yaml resume gmail
t "metrics" 0 -p x.yaml metrics
t "metrics -oFILE" 0 -p x.yaml metrics -om.prom
check "metrics -oFILE wrote the file" test -s m.prom
t "dkim keygen" 0 dkim keygen --selector s2026 --domain example.com --type ed25519 -o k.pem
check "dkim keygen: the key is mode 0600" test "$(stat -c %a k.pem)" = 600
t "dkim keygen never overwrites" 73 dkim keygen --selector s2026 --domain example.com -o k.pem

# --- bad command options ------------------------------------------------------------------
t "stats --by week" 64 stats --by week
err_has "stats --by week: names the choices" "expected hour, day or ip"
t "stats --format xml" 64 stats --format xml
t "stats --since bad" 64 stats --since yesterday
t "spf without --ip" 64 spf --sender a@example.com
err_has "spf without --ip: says it is required" "--ip IP is required"
t "spf without --sender" 64 spf --ip 192.0.2.10
t "spf --ip not an IP" 64 spf --ip 192.0.2.x --sender ""
t "dnsbl without --ip" 64 dnsbl
t "mx without a domain" 64 mx
t "trace without an address" 64 trace
t "trace with two addresses" 64 trace a@example.com b@example.com
t "run --once --for" 64 run --once --for 1h
t "run --for nonsense" 64 run --for soon
t "report without -o" 64 report
t "simulate --days 0" 64 simulate --days 0
t "simulate --days x" 64 simulate --days x
t "pause without a provider" 64 pause
t "pause --for 0s" 64 pause gmail --for 0s
t "resume two providers" 64 resume gmail yahoo
t "metrics -o without a file" 64 metrics -o
t "dkim without a subcommand" 64 dkim
t "dkim unknown subcommand" 64 dkim sign
t "dkim keygen without --selector" 64 dkim keygen --domain example.com
t "dkim keygen --type dsa" 64 dkim keygen --selector s --domain example.com --type dsa
t "a command option before the command" 64 --once run

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
