#!/usr/bin/env bash
# The recipient list as an operator edits it, against real servers on loopback (dnsmasq and
# tests/servers/smtpd.py), asserting the recipients table, the attempts and what the server saw:
#  1. edits at the top, in the middle and at the end, a changed value, a removed line (an
#     unsubscribe), a line fixed, truncation, lines coming back, replacement by another file:
#     progress kept, new addresses queued wherever they are, removed ones not sent, template
#     columns read from the right line, and never a suppression or bounce for a local reason
#     (a list value that cannot make a message is skipped, and comes back when fixed);
#  2. a last line still being written is not read until complete, or until the file settled;
#  3. an MX lookup that fails temporarily requeues the recipient without counting anything;
#  4. a dry run, then a real run sends to everyone;
#  5. addresses differing only in case are one recipient, and trace finds it in any case;
#  6. a provider removed from the plan: its queued recipients go out and a `once` run ends;
#  7. a second plan (another campaign) pointing at the same state file is refused;
#  8. a list that is /dev/zero or a named pipe is refused at once, and a read through one
#     enormous line ends with --for and with SIGTERM;
#  9. `ipwarm release` of a recipient held after kill -9, while another run holds the lock.
# Every run is under `timeout`, so that a regression cannot hang CI.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-lists-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3

net=$(plans_net)
# slow.test is asked of a server that never answers: its MX lookups fail temporarily.
silent_udp_start
dnsmasq_start <<EOF
mx-host=list.test,mx.list.test,10
mx-host=good.list.test,mx.list.test,10
mx-host=special.test,mx.special.test,10
host-record=mx.list.test,$net.2
host-record=mx.special.test,$net.2
server=/slow.test/127.0.0.1#$SILENT_PORT
EOF
port=$(free_port)
smtpd_start lists "[{\"name\": \"mx\", \"host\": \"$net.2\", \"port\": $port,
  \"mode_file\": \"$work/mode\", \"modes\": {\"slow\": {\"delay_ms\": {\"data\": 8000}}}}]"
log=$SMTPD_LOG
maildir=$SERVERS_DIR/lists.mail
printf 'Hello {{name}},\nmessage {{seq}}.\n' >"$work/message-name.txt"
printf 'Hello,\nmessage {{seq}}.\n' >"$work/message-recipient.txt"

# plan NAME CAMPAIGN LIST STATE [MORE RAMP KEYS] [MORE PLAN LINES]: writes $work/NAME.yaml. A
# CSV list's messages say Hello {{name}}, a plain list's Hello {{recipient}}.
plan() {
  local field=recipient
  case $3 in *.csv) field=name ;; esac
  { plans_head --state "$4" --timeouts 3s/20s --per-provider 1 --dns-timeout 1s "$2" "$net" "$port"; cat <<EOF; } >"$work/$1.yaml"
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Hello {{$field}}", text_file: message-$field.txt}
recipients: {file: $3, mode: once}
ramp: {start: 600/min, max: 600/min${5:+, $5}}
backoff: {retry: {first: 5m, max: 1h, give_up_after: 1d}}
${6:-}
EOF
}
# ipw PLAN ARGS...: ipwarm with a plan, under a timeout; stdout/stderr in $work/out, $work/err.
ipw() {
  local p=$1
  shift
  timeout 120 "$IPWARM" -p "$work/$p.yaml" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  cat "$work/err" >>"$work/all.err"
  return $rc
}
q() { sqlite3 "$1" "$2"; }
rcpt() { q "$1" "SELECT state FROM recipients WHERE address = '$2'"; }
# check_store DB TEXT: a python check of the store that prints ok:/FAIL: lines.
store_check() {
  local db=$1
  shift
  $py - "$db" "$work/seeds.csv" "$@" >"$work/check.out" 2>&1
  tally "$work/check.out"
}

# ---- 1. a list that changes ---------------------------------------------------------------
db=$work/ipwarm.db
plan main lists-test seeds.csv ipwarm.db "daily_cap: [3]"
{
  echo "email,name"
  echo "u1@list.test,U1"
  printf 'bad@list.test,"Bad\nName"\n'
  for i in 2 3 4 5 6 7 8 9 10; do echo "u$i@list.test,U$i"; done
} >"$work/seeds.csv"
ipw main --now 2026-12-01T10:00:00Z run --once
rc=$?
check "run 1 exits 0 ($(tail -1 "$work/err"))" test "$rc" -eq 0
check "run 1: three messages, the day's cap (u1, u2, u3)" \
  test "$(q "$db" "SELECT group_concat(address) FROM (SELECT address FROM recipients WHERE state = 'done' ORDER BY id)")" = "u1@list.test,u2@list.test,u3@list.test"
check "run 1: the line whose value cannot make a message is skipped, with its line" \
  test "$(q "$db" "SELECT state FROM recipients WHERE address = 'bad@list.test' AND reason LIKE '%seeds.csv:3%'")" = skipped
check "run 1: the skipped recipient has no attempt and cost no cap" \
  test "$(q "$db" "SELECT count(*) FROM attempts WHERE recipient = 'bad@list.test'")" -eq 0
"$IPWARM" -p "$work/main.yaml" trace bad@list.test >"$work/trace.out" 2>&1
check "trace shows the skipped recipient's state and reason" \
  grep -q "bad@list.test now: skipped: .*seeds.csv:3" "$work/trace.out"
ipw main pause other
rc=$?
check "pause other exits 0" test "$rc" -eq 0

# Edited in place: a line on top, one in the middle, one at the end, u7's name changed, u6
# taken out (an unsubscribe), bad's value fixed.
{
  echo "email,name"
  echo "new0@list.test,New0"
  echo "u1@list.test,U1"
  echo "bad@list.test,Bad"
  for i in 2 3 4 5; do echo "u$i@list.test,U$i"; done
  echo "newm@list.test,NewM"
  echo "u7@list.test,U7-edited"
  for i in 8 9 10; do echo "u$i@list.test,U$i"; done
  echo "newe@list.test,NewE"
} >"$work/seeds.tmp"
cat "$work/seeds.tmp" >"$work/seeds.csv"
ipw main --now 2026-12-01T11:00:00Z run --once
rc=$?
check "run 2 (edited list) exits 0 ($(tail -1 "$work/err"))" test "$rc" -eq 0
store_check "$db" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
lines = open(sys.argv[2]).read().splitlines()
def expect(c, w): print(("ok: " if c else "FAIL: ") + w)
st = dict(con.execute("SELECT address, state FROM recipients"))
expect(all(st[a] == "done" for a in ("u1@list.test", "u2@list.test", "u3@list.test")), "edits: the sent ones stay done")
pending = {a for a, s in st.items() if s == "pending"}
want = {"u4@list.test", "u5@list.test", "u7@list.test", "u8@list.test", "u9@list.test", "u10@list.test",
        "new0@list.test", "newm@list.test", "newe@list.test", "bad@list.test"}
expect(pending == want, "edits: new lines at the top, middle and end queued, the fixed line back: %s" % sorted(pending ^ want))
r = con.execute("SELECT state, reason FROM recipients WHERE address = 'u6@list.test'").fetchone()
expect(r[0] == "removed" and r[1] == "no longer in the recipient list " + sys.argv[2], "edits: the line taken out is removed, with why: %s" % (r,))
for a in ("u4@list.test", "newe@list.test"):
    line = [i + 1 for i, l in enumerate(lines) if l.startswith(a + ",")][0]
    got = con.execute("SELECT list_line FROM recipients WHERE address = ?", (a,)).fetchone()[0]
    expect(got == line, "edits: %s's place in the list is its new line %d (got %s)" % (a, line, got))
expect(con.execute("SELECT count(*) FROM recipients WHERE state IN ('suppressed', 'expired')").fetchone()[0] == 0, "edits: nothing suppressed or expired")
expect(con.execute("SELECT count(*) FROM attempts WHERE outcome <> 'delivered'").fetchone()[0] == 0, "edits: no attempt but the three deliveries")
expect(con.execute("SELECT coalesce(sum(bounced), 0) FROM summary_hourly").fetchone()[0] == 0, "edits: no bounce counted")
EOF

# The next day (cap 3 again): the next three go, with the values of their current lines.
ipw main resume other
ipw main --now 2026-12-02T10:00:00Z run --once
rc=$?
check "run 3 exits 0 ($(tail -1 "$work/err"))" test "$rc" -eq 0
sent3=$(q "$db" "SELECT group_concat(recipient) FROM (SELECT recipient FROM attempts ORDER BY id LIMIT -1 OFFSET 3)")
check "run 3 sends u4, u5 and u7, never the removed u6 ($sent3)" test "$sent3" = "u4@list.test,u5@list.test,u7@list.test"
msg7=$(grep -l '^To: u7@list.test' "$maildir"/*.eml 2>/dev/null | head -1)
check "u7's message has the value of its edited line" grep -q '^Subject: Hello U7-edited' "$msg7"
msg4=$(grep -l '^To: u4@list.test' "$maildir"/*.eml 2>/dev/null | head -1)
check "u4's message has u4's value, though its line moved down" grep -q '^Subject: Hello U4' "$msg4"
check "the server never saw u6" test "$(grep -c 'RCPT TO:<u6@list.test>' "$log")" -eq 0
ipw main pause other

# Truncated (shorter, in place): everything pending after u3 is removed, done stays done.
head -5 "$work/seeds.tmp" >"$work/seeds.csv"
ipw main --now 2026-12-02T11:00:00Z run --once
rc=$?
check "run 4 (truncated list) exits 0" test "$rc" -eq 0
# Pending before: bad, new0, u8, u9, u10, newm, newe (u6 removed already); the four lines
# left are new0, u1, bad, u2.
check "truncation: the pending recipients past the end are removed" \
  test "$(q "$db" "SELECT group_concat(address) FROM (SELECT address FROM recipients WHERE state = 'removed' ORDER BY address)")" = "newe@list.test,newm@list.test,u10@list.test,u6@list.test,u8@list.test,u9@list.test"
check "truncation: u4 (sent) stays done" test "$(rcpt "$db" u4@list.test)" = done
# Back again, with u6: each gets its state back.
{ cat "$work/seeds.tmp"; echo "u6@list.test,U6"; } >"$work/seeds.csv"
ipw main --now 2026-12-02T12:00:00Z run --once
rc=$?
check "run 5 (lines back) exits 0" test "$rc" -eq 0
check "lines back: nothing removed any more" test "$(q "$db" "SELECT count(*) FROM recipients WHERE state = 'removed'")" -eq 0
check "lines back: u6 pending again" test "$(rcpt "$db" u6@list.test)" = pending
# Replaced by another file (a new inode, other addresses).
printf 'email,name\nr1@list.test,R1\nr2@list.test,R2\n' >"$work/seeds.new"
mv "$work/seeds.new" "$work/seeds.csv"
ipw main --now 2026-12-02T13:00:00Z run --once
rc=$?
check "run 6 (replaced list) exits 0" test "$rc" -eq 0
check "replacement: the new addresses are queued" \
  test "$(q "$db" "SELECT count(*) FROM recipients WHERE address IN ('r1@list.test', 'r2@list.test') AND state = 'pending'")" -eq 2
check "replacement: every other pending recipient is removed" \
  test "$(q "$db" "SELECT count(*) FROM recipients WHERE state = 'pending'")" -eq 2
check "replacement: the delivered ones stay done (6)" test "$(q "$db" "SELECT count(*) FROM recipients WHERE state = 'done'")" -eq 6
check "the whole story: no suppression, no bounce" \
  test "$(q "$db" "SELECT count(*) FROM recipients WHERE state = 'suppressed'") $(q "$db" "SELECT count(*) FROM attempts WHERE outcome = 'bounced'")" = "0 0"

# An edit while a long run goes on: noticed within a second, read again once, and the messages
# after it carry the values of the recipients' new lines.
plan live lists-live live.csv live.db "daily_cap: [100]"
sed -i 's#600/min, max: 600/min#60/min, max: 60/min#' "$work/live.yaml"
{ echo "email,name"; for i in 1 2 3 4 5 6 7 8 9 10; do echo "l$i@list.test,L$i"; done; } >"$work/live.csv"
mail_before=$(grep -c '"line": "MAIL FROM' "$log")
# The run is ended by SIGTERM once the server has seen two messages after the edit was
# noticed, so that neither a slow start nor a slow machine can end it before the edit.
timeout 120 "$IPWARM" -v -p "$work/live.yaml" run --for 100s >/dev/null 2>"$work/live.err" &
live=$!
log_wait "$log" $((mail_before + 2)) '"line": "MAIL FROM' 60 || bad "the live run sent nothing"
{ echo "email,name"; echo "top@list.test,Top"; for i in 1 2 3 4 5 6 7 8 9 10; do echo "l$i@list.test,L$i-new"; done; } >"$work/live.tmp"
cat "$work/live.tmp" >"$work/live.csv"
log_wait "$work/live.err" 1 'changed: reading it again' 60 || bad "the edit was not noticed within 60 s"
mail_edit=$(log_count "$log" '"line": "MAIL FROM')
log_wait "$log" $((mail_edit + 2)) '"line": "MAIL FROM' 60 || bad "nothing was sent after the edit"
kill -TERM "$live" 2>/dev/null
wait "$live"
rc=$?
cat "$work/live.err" >>"$work/all.err"
check "a run whose list is edited meanwhile exits 0 ($rc)" test "$rc" -eq 0
check "the edit is read again once ($(grep -c 'changed: reading it again' "$work/live.err") times)" \
  test "$(grep -c 'changed: reading it again' "$work/live.err")" -eq 1
check "no recipient had to wait for its line" test "$(grep -c ' waits: ' "$work/live.err")" -eq 0
$py - "$work/live.db" "$maildir" >"$work/check.out" 2>&1 <<'EOF'
import email, glob, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
def expect(c, w): print(("ok: " if c else "FAIL: ") + w)
sent = [r[0] for r in con.execute("SELECT recipient FROM attempts ORDER BY id")]
subjects = {}
for f in glob.glob(sys.argv[2] + "/*.eml"):
    m = email.message_from_binary_file(open(f, "rb"))
    to = m["To"] or ""
    if to.startswith("l") and to.endswith("@list.test") and to.split("@")[0][1:].isdigit():
        subjects[to] = m["Subject"]
mine = lambda a: ("Hello " + a.split("@")[0].upper(), "Hello " + a.split("@")[0].upper() + "-new")
bad = [(a, subjects.get(a)) for a in sent if subjects.get(a) not in mine(a)]
expect(len(sent) >= 3 and not bad, "every message carries its own recipient's value: %s" % bad)
expect(any(v.endswith("-new") for v in subjects.values()), "messages after the edit carry the new values: %s" % sorted(subjects.values()))
top = con.execute("SELECT state FROM recipients WHERE address = 'top@list.test'").fetchone()
expect(top is not None and top[0] in ("pending", "done"), "the line added on top during the run is queued: %s" % (top,))
EOF
tally "$work/check.out"

# ---- 2. a last line still being written ---------------------------------------------------
plan tail lists-tail tail.txt tail.db
db2=$work/tail.db
printf 'a@list.test\np2@good.list.te' >"$work/tail.txt"
ipw tail run --for 3s
rc=$?
check "a run with a half-written last line exits 0 ($(tail -1 "$work/err"))" test "$rc" -eq 0
check "the complete line is sent" test "$(rcpt "$db2" a@list.test)" = done
check "the half-written line is not read" test "$(q "$db2" "SELECT count(*) FROM recipients WHERE address LIKE 'p2@%'")" -eq 0
printf 'st\n' >>"$work/tail.txt"
ipw tail run
rc=$?
check "once the line is complete, the run sends it and ends ($(tail -1 "$work/err"))" test "$rc" -eq 0
check "the completed address is the one sent" test "$(rcpt "$db2" p2@good.list.test)" = done
check "the server never saw the half address" test "$(grep -c 'RCPT TO:<p2@good.list.te>' "$log")" -eq 0
# A last line without its line end in a file that has not changed for a while is taken.
printf 'q@list.test' >>"$work/tail.txt"
touch -d '2 minutes ago' "$work/tail.txt"
ipw tail run
check "a settled last line without its line end is read and sent ($(tail -1 "$work/err"))" test "$(rcpt "$db2" q@list.test)" = done

# ---- 3. an MX lookup that fails temporarily ------------------------------------------------
plan temp lists-temp temp.txt temp.db
echo 't@slow.test' >"$work/temp.txt"
ipw temp run --for 4s
rc=$?
check "a run whose MX lookups time out exits 0 ($(tail -1 "$work/err"))" test "$rc" -eq 0
store_check "$work/temp.db" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
def expect(c, w): print(("ok: " if c else "FAIL: ") + w)
r = con.execute("SELECT state, retries, first_attempt_ms, reason, next_at_ms - added_ms FROM recipients").fetchone()
expect(r[0] == "pending" and r[1] == 0 and r[2] is None, "MX temperror: still pending, no retry counted, no give-up clock: %s" % (r,))
expect("failed temporarily" in (r[3] or "") and 5 * 60000 <= r[4] <= 5 * 60000 + 30000, "MX temperror: waits retry.first (5 min) with the reason: %s" % (r,))
expect(con.execute("SELECT count(*) FROM attempts").fetchone()[0] == 0, "MX temperror: no attempt recorded")
expect(con.execute("SELECT coalesce(sum(sent_today), 0) FROM providers").fetchone()[0] == 0, "MX temperror: the day's count given back")
EOF

# ---- 4. a dry run, then the real run -------------------------------------------------------
plan dry lists-dry dry.txt dry.db
for i in 1 2 3 4 5; do echo "d$i@list.test"; done >"$work/dry.txt"
ipw dry run --dry-run --for 2s
rc=$?
check "the dry run exits 0 ($(tail -1 "$work/err"))" test "$rc" -eq 0
check "the dry run decided about everyone" test "$(q "$work/dry.db" "SELECT count(DISTINCT recipient) FROM attempts WHERE dry_run = 1")" -eq 5
check "the dry run leaves everyone pending, unstamped" \
  test "$(q "$work/dry.db" "SELECT count(*) FROM recipients WHERE state = 'pending' AND last_outcome IS NULL AND last_attempt_ms IS NULL")" -eq 5
ipw dry run
rc=$?
check "the real run after the dry run exits 0 and ends ($(tail -1 "$work/err"))" test "$rc" -eq 0
check "the real run sent to everyone (5 done, none held)" \
  test "$(q "$work/dry.db" "SELECT count(*) FROM recipients WHERE state = 'done'") $(q "$work/dry.db" "SELECT count(*) FROM recipients WHERE state = 'held'")" = "5 0"
for i in 1 2 3 4 5; do
  check "the server got d$i" grep -q "RCPT TO:<d$i@list.test>" "$log"
done

# ---- 5. addresses differing only in case ---------------------------------------------------
plan case lists-case case.txt case.db
printf 'Case@List.test\ncase@list.test\nCASE@list.test\n' >"$work/case.txt"
ipw case run
rc=$?
check "the run of a list with one address in three cases exits 0" test "$rc" -eq 0
# The local part as first seen; domains are always lower case.
check "one recipient, spelled as first seen" test "$(q "$work/case.db" "SELECT group_concat(address) FROM recipients")" = "Case@list.test"
check "one message" test "$(grep -ci 'RCPT TO:<case@list.test>' "$log")" -eq 1
ipw case trace --json cASe@LIST.test
check "trace finds it in any case" test "$($py -c "import json; print(len(json.load(open('$work/out'))))")" -eq 1

# ---- 6. a provider removed from the plan ---------------------------------------------------
plan provA lists-prov prov.txt prov.db "" "providers: [{name: special, mx: [.special.test]}]"
plan provB lists-prov prov.txt prov.db
printf 's1@special.test\ns2@special.test\no1@list.test\n' >"$work/prov.txt"
ipw provA pause special
ipw provA run --once
check "with the provider paused, only the other recipient goes" \
  test "$(q "$work/prov.db" "SELECT group_concat(address || ':' || provider || ':' || state) FROM recipients WHERE state = 'done'")" = "o1@list.test:other:done"
check "the paused provider's recipients wait" test "$(q "$work/prov.db" "SELECT count(*) FROM recipients WHERE provider = 'special' AND state = 'pending'")" -eq 2
ipw provB run
rc=$?
check "without the provider in the plan, the once run ends (exit $rc)" test "$rc" -eq 0
check "its recipients went out through the plan's provider" \
  test "$(q "$work/prov.db" "SELECT count(*) FROM recipients WHERE provider = 'other' AND state = 'done'")" -eq 3
check "the server got s1 and s2" test "$(grep -cE 'RCPT TO:<s[12]@special.test>' "$log")" -eq 2

# ---- 7. two plans, one state file ----------------------------------------------------------
plan intruder another-campaign seeds.csv ipwarm.db
rows=$(q "$db" "SELECT count(*) FROM recipients")
for c in "run --once" status "trace u1@list.test" "release --all" stats; do
  # shellcheck disable=SC2086 # the command and its arguments
  ipw intruder $c
  rc=$?
  check "another campaign's $c is refused with exit 78 (got $rc)" test "$rc" -eq 78
  check "... naming both campaigns and the state file" \
    grep -q "campaign: state file $db belongs to campaign \"lists-test\" (recorded when it was first used), not to campaign \"another-campaign\"" "$work/err"
done
check "nothing was queued from the other plan" test "$(q "$db" "SELECT count(*) FROM recipients")" -eq "$rows"

# ---- 8. lists that are not files -----------------------------------------------------------
plan zero lists-zero /dev/zero zero.db
t0=$(date +%s)
ipw zero run --for 10s
rc=$?
check "a /dev/zero list is refused with exit 66 (got $rc)" test "$rc" -eq 66
check "... at once ($(($(date +%s) - t0)) s)" test $(($(date +%s) - t0)) -le 5
check "... saying what it is" grep -q "/dev/zero is a character device, not a regular file" "$work/err"
mkfifo "$work/fifo"
plan fifo lists-fifo fifo fifo.db
t0=$(date +%s)
ipw fifo run --for 10s
rc=$?
check "a named-pipe list is refused with exit 66 (got $rc), without waiting for a writer" test "$rc" -eq 66
check "... at once ($(($(date +%s) - t0)) s)" test $(($(date +%s) - t0)) -le 5
check "... saying what it is" grep -q "fifo is a FIFO (named pipe), not a regular file" "$work/err"

# A regular file that is one enormous line (sparse: 20 GB of NUL bytes on no disk): the read
# ends with --for, and with SIGTERM.
truncate -s 20G "$work/huge.txt"
plan huge lists-huge huge.txt huge.db
t0=$(date +%s%N)
ipw huge run --for 2s
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "a 20 GB line is read no longer than --for 2s allows (exit $rc, $ms ms)" test "$rc" -eq 0 -a "$ms" -lt 20000
"$IPWARM" -p "$work/huge.yaml" run >/dev/null 2>"$work/huge.err" &
pid=$!
sleep 1
t0=$(date +%s%N)
kill -TERM "$pid"
for ((i = 0; i < 100; i++)); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid"
  bad "SIGTERM ends a run reading a 20 GB line (still running after 10 s)"
else
  ok "SIGTERM ends a run reading a 20 GB line ($ms ms)"
fi
wait "$pid"
rc=$?
check "... with exit 0 (got $rc)" test "$rc" -eq 0
cat "$work/huge.err" >>"$work/all.err"
rm -f "$work/huge.txt"

# ---- 9. release ----------------------------------------------------------------------------
plan rel lists-rel rel.txt rel.db
db9=$work/rel.db
printf 'h1@list.test\nh2@list.test\nh3@list.test\n' >"$work/rel.txt"
# The server takes 8 s to answer DATA; one connection per provider, so h1 goes first and
# alone. Killed once its DATA is in, h1's message may or may not have been delivered.
echo slow >"$work/mode"
data_before=$(grep -c '"line": "DATA"' "$log")
"$IPWARM" -p "$work/rel.yaml" run >/dev/null 2>&1 &
victim=$! # not under timeout: the kill must reach ipwarm itself
for ((i = 0; i < 300; i++)); do
  [ "$(grep -c '"line": "DATA"' "$log")" -gt "$data_before" ] && break
  sleep 0.1
done
kill -9 "$victim"
wait "$victim" 2>/dev/null
rm -f "$work/mode"
ipw rel run
rc=$?
check "the run after kill -9 exits 0 and ends ($(tail -1 "$work/err"))" test "$rc" -eq 0
check "h1 (in flight at the kill) is held, the others are done" \
  test "$(rcpt "$db9" h1@list.test) $(rcpt "$db9" h2@list.test) $(rcpt "$db9" h3@list.test)" = "held done done"
ipw rel release
rc=$?
check "release without addresses or --all: exit 64 ($rc)" test "$rc" -eq 64
ipw rel release h1@list.test --all
rc=$?
check "release with both addresses and --all: exit 64 ($rc)" test "$rc" -eq 64
ipw rel release --provider other
rc=$?
check "release --provider without --all: exit 64 ($rc)" test "$rc" -eq 64
ipw rel release h2@list.test nobody@list.test
rc=$?
check "release of recipients not held: exit 64 ($rc)" test "$rc" -eq 64
check "... naming the state of one" grep -q "h2@list.test is not held (it is done)" "$work/err"
check "... and that the other is not in the queue" grep -q "nobody@list.test is not in the queue" "$work/err"
# Released while another run holds the lock: that run sends it. (w@slow.test keeps the run
# going: its MX lookup fails, so it waits for a retry, and a `once` run waits with it.)
echo 'w@slow.test' >>"$work/rel.txt"
before=$(grep -c 'RCPT TO:<h1@list.test>' "$log")
"$IPWARM" -p "$work/rel.yaml" run --for 60s >/dev/null 2>"$work/bg.err" &
bg=$! # ends by itself after 60 s at the latest; ended by SIGTERM below
for ((i = 0; i < 300; i++)); do
  [ -n "$(q "$db9" "SELECT pid FROM run_lock" 2>/dev/null)" ] && break
  sleep 0.1
done
ipw rel release H1@LIST.TEST
rc=$?
check "release while a run holds the lock exits 0 ($rc: $(cat "$work/err"))" test "$rc" -eq 0
check "... and says what it released" grep -qx "released h1@list.test (was held)" "$work/out"
check "... while that run was still going" kill -0 "$bg"
for ((i = 0; i < 450; i++)); do
  [ "$(rcpt "$db9" h1@list.test)" = done ] && break
  sleep 0.1
done
check "the running run sent the released recipient" test "$(rcpt "$db9" h1@list.test)" = done
check "the server got h1 once more" test "$(grep -c 'RCPT TO:<h1@list.test>' "$log")" -eq $((before + 1))
kill -TERM "$bg" 2>/dev/null
wait "$bg"
cat "$work/bg.err" >>"$work/all.err"
ipw rel release --all
rc=$?
check "release --all with nothing held exits 0 ($rc)" test "$rc" -eq 0
check "... and says so" grep -q "no recipient is held" "$work/out"
check "no sanitizer report in any run" clean "$work/all.err"

finish
