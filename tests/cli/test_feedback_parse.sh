#!/usr/bin/env bash
# `ipwarm feedback parse`: every sample in tests/feedback/samples/ (RFC 3464 and RFC 5965
# examples, and the bounce and complaint formats of Postfix, Exim, qmail, Yahoo, Microsoft,
# Gmail and sendmail; SOURCES.md says where each format comes from) must give the kind, format,
# recipients with action and status, feedback type, original Message-ID, X-Ipwarm-Id and VERP
# token that tests/feedback/expected.tsv says, a table written from reading the samples. Also:
# exit codes (0 when every file was read, 66 when one cannot be opened, the others still
# reported), standard input, and the human output.
# Environment (set by ctest): IPWARM = the binary, SRCDIR = the source tree.
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}"
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRCDIR/tests/lib/assert.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
samples=$SRCDIR/tests/feedback/samples

# 1. Every sample against the table (one ok/FAIL line per check, from the checker).
files=()
while IFS=$'\t' read -r file _; do
  case "$file" in '#'* | '') continue ;; esac
  files+=("$samples/$file")
done <"$SRCDIR/tests/feedback/expected.tsv"
"$IPWARM" --json feedback parse "${files[@]}" >"$work/out.json" 2>"$work/err"
rc=$?
check "parse of every sample exits 0" [ "$rc" -eq 0 ]
check "no sanitizer report" clean "$work/err"
"$PY" - "$SRCDIR/tests/feedback/expected.tsv" "$work/out.json" >"$work/checks" <<'PYEOF'
import json, os, sys
table, out = sys.argv[1], sys.argv[2]
doc = json.load(open(out))
got = {os.path.basename(m["file"]): m for m in doc["messages"]}
want_keys = {"file", "kind", "recipients", "feedback_type", "original_message_id", "ipwarm_id"}
for line in open(table):
    if line.startswith("#") or not line.strip():
        continue
    f = line.rstrip("\n").split("\t")
    name, kind, fmt, rcpts, ftype, mid, iid, verp = f
    m = got.get(name)
    if m is None:
        print(f"FAIL: {name}: not in the output")
        continue
    def same(what, a, b):
        print(("ok: " if a == b else "FAIL: ") + f"{name}: {what} {a!r}" + ("" if a == b else f", expected {b!r}"))
    missing = want_keys - set(m)
    same("contract keys present", sorted(missing), [])
    same("kind", m["kind"], kind)
    same("format", m.get("format"), fmt)
    want = []
    for r in filter(None, rcpts.split(";")):
        addr, action, status = r.split(" ")
        want.append((addr, None if action == "-" else action, None if status == "-" else status))
    have = [(r["address"], r["action"], r["status"]) for r in m["recipients"]]
    same("recipients", have, want)
    for r in m["recipients"]:
        if r["action"] in ("failed", "delayed") and not r["diagnostic"] and name.startswith("rfc3464") is False:
            print(f"FAIL: {name}: {r['address']} has no diagnostic")
    dash = lambda v: None if v == "-" else v
    same("feedback_type", m["feedback_type"], dash(ftype))
    same("original_message_id", m["original_message_id"], dash(mid))
    same("ipwarm_id", m["ipwarm_id"], dash(iid))
    same("verp_token", m.get("verp_token"), dash(verp))
PYEOF
tally "$work/checks"

# 2. A missing file: exit 66, named on stderr, the other files still reported.
"$IPWARM" --json feedback parse "$samples/qmail.eml" "$work/no-such.eml" "$samples/yahoo.eml" \
  >"$work/out2.json" 2>"$work/err2"
rc=$?
check "a missing file exits 66" [ "$rc" -eq 66 ]
check "the missing file is named" grep -q "cannot open $work/no-such.eml: No such file or directory" "$work/err2"
check "the other files are still reported" \
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if [m["kind"] for m in d["messages"]]==["dsn","dsn"] else 1)' "$work/out2.json"

# 3. Standard input, and the human form.
"$IPWARM" feedback parse - <"$samples/exim.eml" >"$work/out3" 2>"$work/err3"
check "standard input: exit 0" [ $? -eq 0 ]
check "human output names the kind" grep -qx -- '-: dsn (exim)' "$work/out3"
check "human output names the recipient" grep -q '^  recipient carol@example.org: failed 5.1.1 (SMTP error' "$work/out3"
check "human output names the original" grep -qx '  original Message-ID: <20261201090000.1003@mx1.example.com>' "$work/out3"

# 4. An empty file is read (kind other), and a directory cannot be.
: >"$work/empty.eml"
"$IPWARM" feedback parse "$work/empty.eml" >"$work/out4" 2>&1
check "an empty file is other, exit 0" grep -qx "$work/empty.eml: other (none)" "$work/out4"
"$IPWARM" feedback parse "$work" >"$work/out5" 2>&1
check "a directory cannot be read: exit 66" [ $? -eq 66 ]

# 5. No arguments is a usage error.
"$IPWARM" feedback parse >/dev/null 2>&1
check "no file: exit 64" [ $? -eq 64 ]
finish
