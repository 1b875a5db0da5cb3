#!/usr/bin/env bash
# `ipwarm dkim keygen` end to end: the key file (mode 0600, PEM that openssl reads, never
# overwritten: exit 73), the printed zone-file line (name, strings of at most 255 octets that
# join to the record) and --json, with the p= value computed independently by the openssl
# command line from the written key (RSA: SubjectPublicKeyInfo DER; Ed25519: the raw 32 bytes,
# RFC 8463).
# Environment: IPWARM (the binary), SRCDIR (the source tree).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
. "$SRCDIR/tests/lib/need.sh" && need python3 openssl
PY=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset IPWARM_PLAN

. "$SRCDIR/tests/lib/assert.sh"
is() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', expected '$3'"; fi
}

# --- RSA, default file name -----------------------------------------------------------------
t "keygen rsa" 0 dkim keygen --selector s2026 --domain example.com
is "rsa: key file S.D.pem with mode 0600" "$(stat -c %a s2026.example.com.pem 2>/dev/null)" "600"
if openssl pkey -in s2026.example.com.pem -noout -text 2>/dev/null | grep -q 'Private-Key: (2048 bit'; then
  ok "rsa: a 2048-bit RSA key openssl reads"
else
  bad "rsa: not a 2048-bit RSA key"
fi
p=$(openssl pkey -in s2026.example.com.pem -pubout -outform DER 2>/dev/null | base64 -w0)
# The zone line: name, then quoted strings; join them and compare with the record.
"$PY" - "$work/out" "$p" >"$work/check" <<'PYEOF'
import re, sys
line = open(sys.argv[1]).read()
m = re.fullmatch(r'(\S+) IN TXT \( ((?:"[^"]*" )+)\)\n', line)
if not m:
    print("bad-format"); sys.exit()
strings = re.findall(r'"([^"]*)"', m.group(2))
print(m.group(1))
print("".join(strings) == "v=DKIM1; k=rsa; p=" + sys.argv[2])
print(max(len(s.encode()) for s in strings) <= 255)
print(strings[0])
PYEOF
mapfile -t c <"$work/check"
is "rsa: record name" "${c[0]:-}" "s2026._domainkey.example.com."
is "rsa: the strings join to v=DKIM1; k=rsa; p=<the key's public key>" "${c[1]:-}" "True"
is "rsa: every string within 255 octets" "${c[2]:-}" "True"
is "rsa: the tags come first, on their own" "${c[3]:-}" "v=DKIM1; k=rsa; "
if grep -qF "s2026.example.com.pem" "$work/err"; then ok "rsa: stderr names the key file"; else bad "rsa: stderr names the key file"; fi

# --- never overwritten ------------------------------------------------------------------------
sum=$(sha256sum s2026.example.com.pem)
t "keygen over an existing file" 73 dkim keygen --selector s2026 --domain example.com
is "the existing key is unchanged" "$(sha256sum s2026.example.com.pem)" "$sum"
if grep -qF "exists" "$work/err"; then ok "the refusal says the file exists"; else bad "the refusal says the file exists"; fi
t "keygen into a missing directory" 73 dkim keygen --selector s --domain example.com -o nodir/k.pem

# --- Ed25519, -o, --json ----------------------------------------------------------------------
t "keygen ed25519 --json" 0 --json dkim keygen --selector ed1 --domain example.org --type ed25519 -o ed.pem
is "ed25519: mode 0600" "$(stat -c %a ed.pem 2>/dev/null)" "600"
raw=$(openssl pkey -in ed.pem -pubout -outform DER 2>/dev/null | tail -c 32 | base64 -w0)
"$PY" - "$work/out" "$raw" >"$work/check" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
rec = "v=DKIM1; k=ed25519; p=" + sys.argv[2]
print(d["selector"], d["domain"], d["type"], d["key_file"], d["name"])
print(d["record"] == rec)
print("".join(d["strings"]) == rec and all(len(s) <= 255 for s in d["strings"]))
PYEOF
mapfile -t c <"$work/check"
is "ed25519: json keys" "${c[0]:-}" "ed1 example.org ed25519 ed.pem ed1._domainkey.example.org"
is "ed25519: record is v=DKIM1; k=ed25519; p=<raw public key>" "${c[1]:-}" "True"
is "ed25519: strings join to the record" "${c[2]:-}" "True"

# --- usage ------------------------------------------------------------------------------------
t "keygen without --domain" 64 dkim keygen --selector s
t "keygen --type dsa" 64 dkim keygen --selector s --domain example.com --type dsa

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
