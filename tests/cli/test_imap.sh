#!/usr/bin/env bash
# The IMAP client (src/imap.c) against a real Dovecot on loopback (tests/lib/servers.sh), driven
# by tests/imap/imap_client: UIDVALIDITY and UIDNEXT as Dovecot stores them, the new UIDs after
# a checkpoint, fetched bodies equal to what was delivered, flags unchanged by reading (checked
# in the Maildir itself, with a control that a read-write reader does set \Seen), a header
# search by X-Ipwarm-Id in INBOX and in the Junk folder, LIST with \Junk, IMAPS with a private
# CA, and the refusals: a wrong password (exit 69, the password in no output), a certificate not
# trusted, imap:// without STARTTLS while TLS is required (the password never sent), and
# servers that stall or send an endless line (ended within the deadline).
# Environment (set by ctest): BUILDDIR (imap_client), SRCDIR.
set -u
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILDDIR=${BUILDDIR:-$SRCDIR/build-test}
client=$BUILDDIR/imap_client
. "$SRCDIR/tests/lib/assert.sh"
. "$SRCDIR/tests/lib/servers.sh"
work=$(mktemp -d)
servers_init "$work"
PY=$SERVERS_PY

pw_bounces='b0unce-Secret-7781'
pw_seed='seed-Secret-5512'
dovecot_start --tls "bounces:$pw_bounces" "seed:$pw_seed" || { bad "dovecot started"; finish; exit 1; }
ok "dovecot started on 127.0.0.1:$DOVECOT_IMAP_PORT (IMAPS $DOVECOT_IMAPS_PORT)"
imap="imap://127.0.0.1:$DOVECOT_IMAP_PORT"
imaps="imaps://localhost:$DOVECOT_IMAPS_PORT"

msg() { # ID: a message as ipwarm sends it
  printf 'From: News <news@example.test>\nTo: someone@example.test\nSubject: test %s\nMessage-ID: <%s@mx1.example.test>\nX-Ipwarm-Id: %s\nDate: Tue, 01 Dec 2026 09:00:00 +0000\n\nBody of %s.\n' "$1" "$1" "$1" "$1"
}
for id in ipw-1 ipw-2; do msg "$id" >"$work/$id.eml"; dovecot_deliver bounces INBOX "$work/$id.eml"; done
msg seed-a >"$work/seed-a.eml"; dovecot_deliver seed INBOX "$work/seed-a.eml"
msg seed-b >"$work/seed-b.eml"; dovecot_deliver seed Junk "$work/seed-b.eml"
check "four messages delivered" [ "$(find "$DOVECOT_DIR/mail" -path '*/new/*' -type f | wc -l)" -eq 4 ]

run() { # label, then imap_client arguments; output in $work/out, stderr in $work/err
  IMAP_TEST_PASSWORD=${PW:-$pw_bounces} timeout 60 "$client" "$@" >"$work/out" 2>"$work/err"
}

# 1. EXAMINE, UIDs after a checkpoint (STARTTLS on imap://, the private CA).
run --ca "$DOVECOT_CA" "$imap" bounces examine INBOX after 0 after 1 after 2
check "examine, after: exit 0" [ $? -eq 0 ]
uidlist=$(head -n 1 "$DOVECOT_DIR/mail/bounces/Maildir/dovecot-uidlist")
validity=$(sed -n 's/.* V\([0-9]*\).*/\1/p' <<<"$uidlist")
check "UIDVALIDITY is the one Dovecot stored ($validity)" grep -qx "examine uidvalidity=$validity uidnext=3 exists=2" "$work/out"
check "UIDs after 0: 1 2" [ "$(sed -n 2p "$work/out")" = "uids 1 2" ]
check "UIDs after 1: 2" [ "$(sed -n 3p "$work/out")" = "uids 2" ]
check "UIDs after 2: none (not the last message that N:* names)" [ "$(sed -n 4p "$work/out")" = "uids" ]

# 2. Fetch a body; flags unchanged (asked over IMAP and seen in the Maildir).
run --ca "$DOVECOT_CA" "$imap" bounces examine INBOX flags 1 fetch 1 "$work/got1.eml" flags 1
check "fetch: exit 0" [ $? -eq 0 ]
check "flags before reading: none" [ "$(sed -n 2p "$work/out")" = "flags 1 -" ]
check "fetch names the message" grep -q '^fetch 1 bytes=[0-9]* size=[0-9]* flags=-$' "$work/out"
check "flags after reading: none" [ "$(sed -n 4p "$work/out")" = "flags 1 -" ]
tr -d '\r' <"$work/got1.eml" >"$work/got1.lf"
check "the fetched message ends with what was delivered" \
  "$PY" -c 'import sys; a=open(sys.argv[1],"rb").read(); b=open(sys.argv[2],"rb").read(); sys.exit(0 if a.endswith(b) else 1)' "$work/got1.lf" "$work/ipw-1.eml"
check "no message marked seen in the Maildir" [ -z "$(find "$DOVECOT_DIR/mail" -type f -name '*:2,*S*')" ]
# the control: a read-write reader (SELECT, BODY[]) does set \Seen, and the same checks see it
"$PY" - "$DOVECOT_IMAP_PORT" "$pw_bounces" <<'PYEOF'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("bounces", sys.argv[2])
m.select("INBOX")
m.uid("FETCH", "2", "(BODY[])")
m.logout()
PYEOF
run --ca "$DOVECOT_CA" "$imap" bounces examine INBOX flags 2
check "control: a SELECT+BODY[] reader sets \\Seen, and flags shows it" [ "$(sed -n 2p "$work/out")" = "flags 2 seen" ]

# 3. Header search in INBOX and Junk; LIST with \Junk.
run --ca "$DOVECOT_CA" "$imap" bounces examine INBOX search X-Ipwarm-Id ipw-2 search X-Ipwarm-Id nothing-like-it
check "search INBOX by X-Ipwarm-Id" [ "$(sed -n 2p "$work/out")" = "uids 2" ]
check "search for an absent id finds nothing" [ "$(sed -n 3p "$work/out")" = "uids" ]
PW=$pw_seed run --ca "$DOVECOT_CA" "$imap" seed list examine INBOX search X-Ipwarm-Id seed-a \
  search X-Ipwarm-Id seed-b examine Junk search X-Ipwarm-Id seed-b search X-Ipwarm-Id seed-a
check "seed: exit 0" [ $? -eq 0 ]
check "LIST shows Junk with \\Junk" grep -qx 'folder Junk attrs=junk' "$work/out"
check "the junk folder is found by its special use" grep -qx 'junk Junk' "$work/out"
check "seed INBOX: seed-a found, seed-b not" [ "$(grep '^uids' "$work/out" | sed -n '1p;2p' | tr '\n' '|')" = "uids 1|uids|" ]
check "seed Junk: seed-b found, seed-a not" [ "$(grep '^uids' "$work/out" | sed -n '3p;4p' | tr '\n' '|')" = "uids 1|uids|" ]
check "the seed mailbox is unchanged" [ -z "$(find "$DOVECOT_DIR/mail/seed" -type f -name '*:2,*S*')" ]

# 4. IMAPS with the private CA; without it the certificate is refused.
run --ca "$DOVECOT_CA" "$imaps" bounces examine INBOX
check "imaps:// with the CA: exit 0" [ $? -eq 0 ]
run "$imaps" bounces examine INBOX
check "imaps:// without the CA: exit 69" [ $? -eq 69 ]
check "the refusal says TLS failed" grep -q "IMAP mailbox imaps://localhost:$DOVECOT_IMAPS_PORT (user bounces): TLS failed" "$work/err"

# 5. A wrong password: exit 69, a clear sentence, the password nowhere.
PW='Wr0ng-Password-9' run --ca "$DOVECOT_CA" "$imap" bounces examine INBOX
check "wrong password: exit 69" [ $? -eq 69 ]
check "wrong password: the sentence" grep -qx "error: IMAP mailbox $imap (user bounces): the server refused the login (check the password in \$IMAP_TEST_PASSWORD)" "$work/err"
check "wrong password: not in the output" bash -c "! grep -q 'Wr0ng-Password-9' '$work/out' '$work/err'"

# 6. Misbehaving servers (tests/servers/imap_stall.py).
stall_start() { # MODE -> STALL_PORT
  rm -f "$work/stall.port"
  "$PY" "$SRCDIR/tests/servers/imap_stall.py" "$1" "$work/stall.port" "$work/stall-$1.log" &
  SERVERS_PIDS+=("$!")
  file_wait "$work/stall.port"
  STALL_PORT=$(cat "$work/stall.port")
}
stall_start nostarttls
run "imap://127.0.0.1:$STALL_PORT" bounces examine INBOX
check "no STARTTLS while TLS is required: exit 69" [ $? -eq 69 ]
check "no STARTTLS: the sentence" grep -q 'the server does not offer STARTTLS, and tls: required' "$work/err"
check "no STARTTLS: the password was never sent" bash -c "! grep -qiE 'LOGIN|AUTHENTICATE' '$work/stall-nostarttls.log'"
for mode in silent stall endless; do
  stall_start $mode
  start=$(date +%s)
  run --tls none --connect-ms 2000 --command-ms 3000 "imap://127.0.0.1:$STALL_PORT" bounces examine INBOX
  rc=$?
  took=$(($(date +%s) - start))
  check "$mode server: exit 69" [ $rc -eq 69 ]
  check "$mode server: ended within its deadline ($took s)" [ "$took" -le 40 ]
  check "$mode server: says so" grep -qE 'no answer within|longer than' "$work/err"
done
finish
