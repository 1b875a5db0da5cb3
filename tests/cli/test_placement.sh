#!/usr/bin/env bash
# Inbox placement end to end, against real servers on loopback: a run sends to a list that holds
# seed addresses through tests/servers/smtpd.py (dnsmasq gives the MX hosts), whose `seeds`
# policy delivers the accepted copies over LMTP into a real Dovecot, into INBOX or into the \Junk
# folder (Gmail: every second copy; Yahoo: none). `feedback poll` must then count per seed and
# provider exactly what the server put where (its log), leave every seed's flags as they were,
# report a seed whose login fails while the others count, and, with --now a day later, record
# the copy that was never delivered as missing. `placement` shows the figures as table, CSV and
# JSON.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3 dovecot doveadm
. "$SRCDIR/tests/lib/servers.sh"
work=$(mktemp -d /tmp/ipwarm-place-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
PY=$SERVERS_PY

pw='Seed-pw-7731'
dovecot_start "gs1:$pw" "gs2:$pw" "ys1:$pw" "ys2:$pw" "gbad:$pw" || { bad "dovecot started"; finish; exit 1; }
ok "dovecot started (IMAP $DOVECOT_IMAP_PORT, LMTP $DOVECOT_LMTP_PORT)"

net=127.0.$((20 + RANDOM % 200))
dnsmasq_start <<EOF
mx-host=gmail.test,gmail-smtp-in.l.google.com,10
host-record=gmail-smtp-in.l.google.com,$net.2
mx-host=yahoo.test,mta5.am0.yahoodns.net,10
host-record=mta5.am0.yahoodns.net,$net.3
EOF
port=$(free_port)
# ys2 is a seed whose copy is accepted and never delivered (not in the Yahoo policy's regex).
smtpd_start place "[
 {\"name\": \"gmail\", \"host\": \"$net.2\", \"port\": $port, \"hostname\": \"gmail-smtp-in.l.google.com\",
  \"seeds\": {\"regex\": \"^g\", \"junk_every\": 2}},
 {\"name\": \"yahoo\", \"host\": \"$net.3\", \"port\": $port, \"hostname\": \"mta5.am0.yahoodns.net\",
  \"seeds\": {\"regex\": \"^ys1@\"}}
]" "\"deliver\": {\"lmtp\": \"127.0.0.1:$DOVECOT_LMTP_PORT\"}" || { bad "smtpd.py started"; finish; exit 1; }

printf '%s\n' gs1@gmail.test gs2@gmail.test gbad@gmail.test other@gmail.test ys1@yahoo.test \
  ys2@yahoo.test >"$work/list.txt"
printf 'Hello {{recipient}}\n' >"$work/message.txt"
seed() { # ADDRESS USER [ENV]
  printf '  - {address: %s, url: "imap://127.0.0.1:%s", username: %s, password_env: %s, tls: none}\n' \
    "$1" "$DOVECOT_IMAP_PORT" "$2" "${3:-SEED_PW}"
}
{
  cat <<EOF
campaign: place-test
timezone: UTC
source: {ip: $net.1, helo: mx1.example.com}
sender: {from: "Example <news@example.com>"}
transport: {mode: direct, port: $port, timeouts: {connect: 3s, command: 5s}}
message: {subject: "Placement test", text_file: message.txt}
recipients: {file: list.txt}
ramp: {start: 600/min, growth: 2, max: 600/min}
preflight: {require: []}
dns: {servers: ["$DNS_SERVER"], timeout: 2s}
providers:
  - {name: gmail, mx: [.google.com]}
  - {name: yahoo, mx: [.yahoodns.net]}
  - {name: other, default: true}
seeds:
EOF
  seed gs1@gmail.test gs1
  seed gs2@gmail.test gs2
  seed gbad@gmail.test gbad SEED_BAD_PW
  seed ys1@yahoo.test ys1
  seed ys2@yahoo.test ys2
} >"$work/plan.yaml"
db=$work/ipwarm.db
q() { sqlite3 "$db" "$1"; }
export SEED_PW=$pw SEED_BAD_PW='wrong-Seed-pw'
ipw() { "$IPWARM" -p "$work/plan.yaml" "$@"; }

ipw validate >"$work/validate.out" 2>&1
check "validate accepts the seeds and lists them" grep -q '^seeds: 5' "$work/validate.out"

ipw --now 2026-12-01T10:00:00Z run --for 20s >"$work/run.out" 2>"$work/run.err"
check "run exits 0 ($(tail -n 2 "$work/run.err"))" test $? -eq 0
check "six messages delivered" test "$(q "SELECT count(*) FROM attempts WHERE outcome = 'delivered'")" = 6

# smtpd.py delivers its copies after the 250: wait for its four "placed" events.
check "smtpd.py delivered four seed copies" "$PY" - "$SMTPD_LOG" <<'PYEOF'
import json, sys, time
end = time.time() + 60
while True:
    got = [e for e in map(json.loads, open(sys.argv[1])) if e["ev"] == "placed"]
    if len(got) >= 4 or time.time() > end:
        break
    time.sleep(0.1)
sys.exit(0 if len(got) == 4 and all(e["delivered"] for e in got) else 1)
PYEOF

flags() { # USER: every message's mailbox, uid and flags
  doveadm -c "$DOVECOT_DIR/dovecot.conf" fetch -u "$1" 'mailbox uid flags' all 2>&1 | tr '\n' ' '
}
before=""
for u in gs1 gs2 gbad ys1; do before+="$u: $(flags $u); "; done

ipw --now 2026-12-01T12:00:00Z --json feedback poll >"$work/poll1.json" 2>"$work/poll1.err"
rc=$?
check "a poll with a seed whose login fails exits 69 (got $rc)" test $rc -eq 69
check "the failed seed is named on stderr" grep -q 'gbad' "$work/poll1.err"
check "the bad password is in no output" bash -c "! grep -q 'wrong-Seed-pw' '$work/poll1.json' '$work/poll1.err'"
check "the poll's JSON reports the failed seed with its error and the others without" \
  "$PY" - "$work/poll1.json" <<'PYEOF'
import json, sys
d = {m["name"]: m for m in json.load(open(sys.argv[1]))["mailboxes"]}
ok = (d["gbad@gmail.test"]["error"] and all(d[a]["error"] is None for a in
      ("gs1@gmail.test", "gs2@gmail.test", "ys1@yahoo.test", "ys2@yahoo.test"))
      and d["ys2@yahoo.test"]["pending"] == 1 and d["ys2@yahoo.test"]["missing"] == 0)
sys.exit(0 if ok else 1)
PYEOF

# What the server put where, by Message-ID, against what the store recorded.
check "every copy found is recorded in the folder smtpd.py delivered it to" "$PY" - "$SMTPD_LOG" "$db" <<'PYEOF'
import json, sqlite3, sys
placed = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["ev"] == "placed" and e["delivered"]:
        placed[e["message_id"]] = ("inbox" if e["folder"] == "INBOX" else "junk", e["rcpt"])
db = sqlite3.connect(sys.argv[2])
rows = db.execute("SELECT a.message_id, p.result, p.seed FROM placements p JOIN attempts a "
                  "ON a.id = p.attempt_id").fetchall()
got = {m: (r, s) for m, r, s in rows}
want = {m: v for m, v in placed.items() if not v[1].startswith("gbad@")}
if got != want:
    print("got %s want %s" % (got, want), file=sys.stderr)
    sys.exit(1)
sys.exit(0 if len(got) == 3 else 1)
PYEOF
after=""
for u in gs1 gs2 gbad ys1; do after+="$u: $(flags $u); "; done
check "no seed's flags changed ($after)" test "$before" = "$after"
check "the seeds had mail to look at" bash -c "echo '$before' | grep -q 'INBOX'"

# The day after: ys2's copy was never delivered, gbad's login still fails (unknown, not missing).
ipw --now 2026-12-02T10:30:00Z --json feedback poll >"$work/poll2.json" 2>"$work/poll2.err"
check "the second poll exits 69 again (gbad)" test $? -eq 69
check "ys2's copy is missing after 24 h" test "$(q "SELECT result FROM placements WHERE seed = 'ys2@yahoo.test'")" = missing
check "gbad's copy stays unknown (a failed login proves nothing)" test "$(q "SELECT count(*) FROM placements WHERE seed = 'gbad@gmail.test'")" = 0
check "nothing counted twice" test "$(q "SELECT count(*) FROM placements")" = 4

# placement: figures computed here from the server's log.
"$PY" - "$SMTPD_LOG" >"$work/want.txt" <<'PYEOF'
import json, sys
c = {"gmail": [0, 0], "yahoo": [0, 0]}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["ev"] == "placed" and e["delivered"] and not e["rcpt"].startswith("gbad@"):
        prov = "gmail" if e["rcpt"].endswith("@gmail.test") else "yahoo"
        c[prov][0 if e["folder"] == "INBOX" else 1] += 1
print(json.dumps(c))
PYEOF
ipw --json placement >"$work/place.json"
check "placement --json exits 0" test $? -eq 0
check "placement by day counts what the server put where (gbad: sent, not placed; ys2: missing)" \
  "$PY" - "$work/place.json" "$work/want.txt" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
want = json.load(open(sys.argv[2]))
r = {x["provider"]: x for x in rows}
g, y = r["gmail"], r["yahoo"]
ok = (len(rows) == 2 and all(x["period"] == "2026-12-01" and x["ip"] is None for x in rows)
      and g["sent"] == 3 and [g["inbox"], g["junk"]] == want["gmail"] and g["missing"] == 0
      and y["sent"] == 2 and [y["inbox"], y["junk"]] == want["yahoo"] and y["missing"] == 1
      and abs(g["inbox_rate"] - 100.0 * g["inbox"] / (g["inbox"] + g["junk"])) < 0.01
      and abs(y["inbox_rate"] - 100.0 * y["inbox"] / 2) < 0.01)
if not ok:
    print(rows, want, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
ipw placement --by ip --format csv >"$work/place.csv"
check "placement --by ip --format csv has a header and one row per provider and IP" \
  test "$(head -n 1 "$work/place.csv" | tr -d '\r')" = "period,provider,ip,sent,inbox,junk,missing,pending,inbox_rate"
check "the CSV rows name the source IP" test "$(grep -c ",$net.1," "$work/place.csv")" = 2
ipw placement >"$work/place.txt"
check "the table has a row per provider" test "$(grep -cE '^2026-12-01 +(gmail|yahoo) ' "$work/place.txt")" = 2

finish
