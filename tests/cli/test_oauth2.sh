#!/usr/bin/env bash
# OAuth 2.0 (XOAUTH2) logins for the feedback mailbox and the seeds, against a real Dovecot on
# loopback whose oauth2 passdb checks each token at tests/servers/oauth2_introspect.py (RFC 7662
# introspection). A run sends copies to three seeds through tests/servers/smtpd.py, which
# delivers them into Dovecot (gs1: inbox, ms1: junk; mbad's token is refused); two messages are
# delivered into the feedback mailbox by hand. `feedback poll` must log every mailbox in with
# AUTHENTICATE XOAUTH2 (Dovecot's log), count what was delivered, report mbad's refused token by
# name with exit 69 while the others count, and put no token in any output or the state file. A
# token file rewritten between two polls (the old token revoked) must be read again. `validate`
# shows each login method without the secret, the plan refuses a password beside a token, and a
# server that offers no XOAUTH2 gets no login at all and a sentence that says so.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3 dovecot doveadm
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-oauth2-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
PY=$SERVERS_PY

# The tokens the introspection endpoint accepts, and for whom. The users' passwords differ from
# every token, so a login can only succeed through the oauth2 passdb.
tok_fb='fbTok.A1b2C3-FEEDBACK_0001'
tok_gs1='gsTok.Z9y8X7-SEED_GS1_0002'
tok_ms1='msTok.Q5w4E3-SEED_MS1_0003'
tok_bad='badTok.R2t1Y0-REVOKED_0004'
tok_fb2='fbTok.N3w-ROTATED_0005'
printf '%s bounces\n%s gs1\n%s ms1\n' "$tok_fb" "$tok_gs1" "$tok_ms1" >"$work/tokens"
must "oauth2_introspect.py started" oauth2_introspect_start "$work/tokens"
pw='Unused-pw-5512'
must "dovecot started with the oauth2 passdb" dovecot_start "bounces:$pw" "gs1:$pw" "ms1:$pw" "mbad:$pw"

net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" gmail outlook)
port=$(free_port)
must "smtpd.py started" smtpd_start oauth "[
 $(plans_listener gmail "$net" "$port" '"seeds": {"regex": "^gs1@"}'),
 $(plans_listener outlook "$net" "$port" '"seeds": {"regex": "^m", "junk_every": 1}')
]" "\"deliver\": {\"lmtp\": \"127.0.0.1:$DOVECOT_LMTP_PORT\"}"

printf '%s\n' gs1@gmail.test ms1@outlook.test mbad@outlook.test >"$work/list.txt"
plans_message "$work"
printf '%s\n' "$tok_fb" >"$work/fb.token"   # with its line end, as an editor writes it
printf '%s\r\n' "$tok_gs1" >"$work/gs1.token" # and CRLF
chmod 600 "$work/fb.token" "$work/gs1.token"
imap="imap://127.0.0.1:$DOVECOT_IMAP_PORT"
{
  plans_head oauth-test "$net" "$port"
  cat <<EOF
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "OAuth test", text_file: message.txt}
recipients: {file: list.txt}
ramp: {start: 100/min, growth: 2, max: 800/min}
EOF
  plans_providers gmail microsoft
  cat <<EOF
feedback:
  mailbox: {url: "$imap/INBOX", username: bounces, oauth2_token_file: fb.token, tls: none}
seeds:
  - {address: gs1@gmail.test, url: "$imap", username: gs1, oauth2_token_file: gs1.token, tls: none}
  - {address: ms1@outlook.test, url: "$imap", username: ms1, oauth2_token_env: SEED_MS1_TOKEN, tls: none}
  - {address: mbad@outlook.test, url: "$imap", username: mbad, oauth2_token_env: SEED_BAD_TOKEN, tls: none}
EOF
} >"$work/plan.yaml"
db=$work/ipwarm.db
q() { sqlite3 "$db" "$1"; }
export SEED_MS1_TOKEN=$tok_ms1 SEED_BAD_TOKEN=$tok_bad
ipw() { "$IPWARM" -p "$work/plan.yaml" "$@"; }
# no token anywhere in FILE...: the secrets are never printed or stored
no_token() {
  local f
  for f in "$@"; do
    [ -e "$f" ] || continue
    if grep -aqF -e "$tok_fb" -e "$tok_gs1" -e "$tok_ms1" -e "$tok_bad" -e "$tok_fb2" "$f"; then
      echo "a token in $f" >&2
      return 1
    fi
  done
}

# --- validate: the login method of each mailbox, never the token ------------------------------
ipw validate >"$work/validate.out" 2>&1
check "validate exits 0 ($(tail -n 1 "$work/validate.out"))" test $? -eq 0
check "validate: the feedback mailbox logs in with the token from fb.token" \
  grep -qF "user bounces, OAuth 2.0 token (XOAUTH2) from $work/fb.token" "$work/validate.out"
check "validate: a seed's token from \$SEED_MS1_TOKEN" \
  grep -qF 'user ms1, OAuth 2.0 token (XOAUTH2) from $SEED_MS1_TOKEN' "$work/validate.out"
ipw --json validate >"$work/validate.json" 2>"$work/validate.err"
check "validate --json: login xoauth2 and where the token comes from, for the mailbox and each seed" \
  "$PY" - "$work/validate.json" "$work" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
def find(o, out):
    if isinstance(o, dict):
        if "login" in o:
            out.append(o)
        for v in o.values():
            find(v, out)
    elif isinstance(o, list):
        for v in o:
            find(v, out)
    return out
boxes = find(d, [])
want = [("bounces", None, sys.argv[2] + "/fb.token"), ("gs1", None, sys.argv[2] + "/gs1.token"),
        ("ms1", "SEED_MS1_TOKEN", None), ("mbad", "SEED_BAD_TOKEN", None)]
got = [(b["username"], b["oauth2_token_env"], b["oauth2_token_file"]) for b in boxes]
ok = got == want and all(b["login"] == "xoauth2" and b["password_env"] is None for b in boxes)
if not ok:
    print(got, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
# a token file other users may read is worth a warning, like a relay password file
chmod 644 "$work/fb.token"
ipw validate >"$work/validate644.out" 2>&1
check "validate warns about a token file every user may read" \
  grep -qF "ipwarm: warning: feedback.mailbox.oauth2_token_file: $work/fb.token is readable by every user (mode 0644)" "$work/validate644.out"
check "validate does not warn about the 0600 token file" bash -c "! grep -q 'gs1.token is readable' '$work/validate644.out'"
chmod 600 "$work/fb.token"
check "validate: no token in its output" no_token "$work/validate644.out"  "$work/validate.out" "$work/validate.json" "$work/validate.err"

# --- a run sends each seed a copy; two messages arrive in the feedback mailbox by hand ---------
ipw --now 2026-12-01T10:00:00Z run --for 20s >"$work/run.out" 2>"$work/run.err"
check "run exits 0 ($(tail -n 2 "$work/run.err"))" test $? -eq 0
check "three messages delivered" test "$(q "SELECT count(*) FROM attempts WHERE outcome = 'delivered'")" = 3
check "smtpd.py delivered the three seed copies" smtpd_wait_placed 3
for i in 1 2; do
  printf 'From: someone@example.org\nTo: bounces@example.com\nSubject: Out of office %s\nMessage-ID: <ooo%s@example.org>\n\nAway.\n' "$i" "$i" >"$work/ooo$i.eml"
  dovecot_deliver bounces INBOX "$work/ooo$i.eml" || bad "delivered ooo$i to the feedback mailbox"
done

# --- poll 1: every login is XOAUTH2; mbad's token is refused; the others count ----------------
seen=$(wc -l <"$OAUTH2_LOG") # the run polled the feedback mailbox already
ipw --now 2026-12-01T12:00:00Z --json feedback poll >"$work/poll1.json" 2>"$work/poll1.err"
rc=$?
check "a poll with a refused token exits 69 (got $rc)" test $rc -eq 69
check "stderr names the seed whose token was refused and says XOAUTH2" \
  grep -qF "IMAP mailbox $imap (user mbad): the server refused the XOAUTH2 login (check the OAuth 2.0 access token in \$SEED_BAD_TOKEN" "$work/poll1.err"
check "the others still count: 2 new in the feedback mailbox, gs1 inbox, ms1 junk" \
  "$PY" - "$work/poll1.json" <<'PYEOF'
import json, sys
d = {m["name"]: m for m in json.load(open(sys.argv[1]))["mailboxes"]}
fb = [m for m in d.values() if not m.get("seed")]
ok = (len(fb) == 1 and fb[0]["error"] is None and fb[0]["new"] == 2
      and d["gs1@gmail.test"]["error"] is None and d["gs1@gmail.test"]["inbox"] == 1
      and d["ms1@outlook.test"]["error"] is None and d["ms1@outlook.test"]["junk"] == 1
      and "mbad" in (d["mbad@outlook.test"]["error"] or ""))
if not ok:
    print(d, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
check "the store holds gs1 inbox and ms1 junk, nothing for mbad" \
  test "$(q "SELECT seed || ':' || result FROM placements ORDER BY seed" | tr '\n' ' ')" = "gs1@gmail.test:inbox ms1@outlook.test:junk "
check "Dovecot logged in bounces, gs1 and ms1 with XOAUTH2" bash -c "
  for u in bounces gs1 ms1; do grep -q \"Login: user=<\$u>, method=XOAUTH2\" '$DOVECOT_DIR/dovecot.log' || exit 1; done"
check "no login used a password mechanism" bash -c "! grep -qE 'method=(PLAIN|LOGIN)' '$DOVECOT_DIR/dovecot.log'"
check "the introspection endpoint accepted three tokens and refused one" \
  test "$(tail -n +$((seen + 1)) "$OAUTH2_LOG" | sort | tr '\n' ' ')" = "accepted bounces accepted gs1 accepted ms1 refused "
check "no token in stdout, stderr or the state file" \
  no_token "$work/poll1.json" "$work/poll1.err" "$db" "$db-wal" "$db-journal" "$work/run.out" "$work/run.err"

# --- the token file rewritten between two polls (the old token revoked) is read again --------
printf '%s bounces\n%s gs1\n%s ms1\n' "$tok_fb2" "$tok_gs1" "$tok_ms1" >"$work/tokens"
printf '%s\n' "$tok_fb2" >"$work/fb.token.new" && mv "$work/fb.token.new" "$work/fb.token"
printf 'From: someone@example.org\nSubject: Out of office 3\nMessage-ID: <ooo3@example.org>\n\nAway.\n' >"$work/ooo3.eml"
dovecot_deliver bounces INBOX "$work/ooo3.eml" || bad "delivered ooo3"
unset SEED_BAD_TOKEN
seen=$(wc -l <"$OAUTH2_LOG")
ipw --now 2026-12-01T13:00:00Z --json feedback poll >"$work/poll2.json" 2>"$work/poll2.err"
rc=$?
check "poll 2 exits 69 for mbad's unset variable, after reading the others (got $rc)" test $rc -eq 69
check "poll 2: the unset variable is named with the seed's mailbox" \
  grep -qF "seeds[2].oauth2_token_env (mailbox $imap, user mbad): the environment variable SEED_BAD_TOKEN is not set" "$work/poll2.err"
check "poll 2: the rewritten token file logs in and reads the one new message" \
  "$PY" - "$work/poll2.json" <<'PYEOF'
import json, sys
fb = [m for m in json.load(open(sys.argv[1]))["mailboxes"] if not m.get("seed")]
ok = len(fb) == 1 and fb[0]["error"] is None and fb[0]["new"] == 1
if not ok:
    print(fb, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
# (gs1 and ms1 have no copy left to look for: they are not logged in again)
check "poll 2: the introspection endpoint accepted the new token for bounces" \
  test "$(tail -n +$((seen + 1)) "$OAUTH2_LOG" | tr '\n' ' ')" = "accepted bounces "
check "poll 2: no token anywhere" no_token "$work/poll2.json" "$work/poll2.err" "$db" "$db-wal"

# An empty token file: a clear error naming the mailbox.
: >"$work/fb.token"
export SEED_BAD_TOKEN=$tok_bad
ipw --now 2026-12-01T14:00:00Z feedback poll >"$work/poll3.out" 2>"$work/poll3.err"
rc=$?
check "an empty token file: exit 78 (got $rc)" test $rc -eq 78
check "an empty token file: named with the mailbox" \
  grep -qF "feedback.mailbox.oauth2_token_file (mailbox $imap/INBOX, user bounces): $work/fb.token is empty: expected the OAuth 2.0 access token on its first line" "$work/poll3.err"

# --- the plan: a password beside a token is refused where it is written -----------------------
sed 's/oauth2_token_file: fb.token,/oauth2_token_file: fb.token, password_env: FB_PW,/' "$work/plan.yaml" >"$work/both.yaml"
"$IPWARM" -p "$work/both.yaml" validate >"$work/both.out" 2>&1
rc=$?
check "a password beside a token: exit 78 (got $rc)" test $rc -eq 78
line=$(grep -n 'password_env: FB_PW' "$work/both.yaml" | cut -d: -f1)
check "a password beside a token: FILE:LINE:COLUMN and the sentence" \
  grep -qE "both.yaml:$line:[0-9]+: feedback.mailbox.oauth2_token_file: a mailbox logs in with a password or with an OAuth 2.0 token" "$work/both.out"

# --- a server that offers no XOAUTH2: no login is attempted, and the sentence says so --------
mkdir "$work/noxo"
"$PY" "$SRCDIR/tests/servers/imap_stall.py" stall "$work/noxo/port" "$work/noxo/imap.log" &
SERVERS_PIDS+=("$!")
file_wait "$work/noxo/port" || bad "imap_stall.py started"
cat >"$work/noxo/plan.yaml" <<EOF
campaign: oauth-noxo
source: {ip: $net.1, helo: mx1.example.com}
sender: {from: news@example.com}
message: {subject: Hi, text_file: ../message.txt}
recipients: {file: ../list.txt}
feedback:
  mailbox: {url: "imap://127.0.0.1:$(cat "$work/noxo/port")", username: bounces, oauth2_token_env: NOXO_TOKEN, tls: none}
EOF
NOXO_TOKEN=$tok_fb "$IPWARM" -p "$work/noxo/plan.yaml" feedback poll >"$work/noxo/out" 2>"$work/noxo/err"
rc=$?
check "no XOAUTH2 offered: exit 69 (got $rc)" test $rc -eq 69
check "no XOAUTH2 offered: the sentence" \
  grep -qF "(user bounces): the server does not offer XOAUTH2 logins (its capabilities list no AUTH=XOAUTH2)" "$work/noxo/err"
check "no XOAUTH2 offered: no LOGIN or AUTHENTICATE was sent (no fallback)" \
  bash -c "grep -q CAPABILITY '$work/noxo/imap.log' && ! grep -qiE ' (LOGIN|AUTHENTICATE)' '$work/noxo/imap.log'"
check "no XOAUTH2 offered: no token in the output" no_token "$work/noxo/out" "$work/noxo/err"
check "no sanitizer report" clean "$work/poll1.err"
finish
