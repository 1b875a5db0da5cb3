#!/usr/bin/env bash
# Inbox placement end to end, against real servers on loopback: a run sends to a list that holds
# seed addresses through tests/servers/smtpd.py (dnsmasq gives the MX hosts), whose `seeds`
# policy delivers the accepted copies over LMTP into a real Dovecot, into INBOX or into the \Junk
# folder (Gmail: none; Microsoft: every second copy; Yahoo: every copy). `feedback poll` must
# then count per seed and provider exactly what the server put where (its log), leave every
# seed's flags as they were, report a seed whose login fails while the others count, and, with
# --now a day later, record the copy that was never delivered as missing. `placement` shows the
# figures as table, CSV and JSON. The next day (advance_if.inbox_rate_above) Gmail (all inbox)
# grows, Yahoo (junk and missing) holds, and Microsoft (a copy still unknown) holds, as status
# shows it and a day-2 run stores it; that run sends every seed a copy again and the other
# recipient (mode once) none.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3 dovecot doveadm
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-place-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
PY=$SERVERS_PY

pw='Seed-pw-7731'
must "dovecot started" dovecot_start "gs1:$pw" "gs2:$pw" "ys1:$pw" "ys2:$pw" "ms1:$pw" "ms2:$pw" "mbad:$pw"
net=$(plans_net)
dnsmasq_start < <(plans_mx "$net" gmail yahoo outlook)
port=$(free_port)
# ys2 is a seed whose copy is accepted and never delivered (not in the Yahoo policy's regex).
must "smtpd.py started" smtpd_start place "[
 $(plans_listener gmail "$net" "$port" '"seeds": {"regex": "^g"}'),
 $(plans_listener yahoo "$net" "$port" '"seeds": {"regex": "^ys1@", "junk_every": 1}'),
 $(plans_listener outlook "$net" "$port" '"seeds": {"regex": "^m", "junk_every": 2}')
]" "\"deliver\": {\"lmtp\": \"127.0.0.1:$DOVECOT_LMTP_PORT\"}"

printf '%s\n' gs1@gmail.test gs2@gmail.test other@gmail.test ys1@yahoo.test ys2@yahoo.test \
  ms1@outlook.test ms2@outlook.test mbad@outlook.test >"$work/list.txt"
plans_message "$work"
{
  plans_head place-test "$net" "$port"
  cat <<EOF
sender: {from: "Example <news@example.com>"}
message: {subject: "Placement test", text_file: message.txt}
recipients: {file: list.txt}
ramp: {start: 100/min, growth: 2, max: 800/min, advance_if: {inbox_rate_above: 60%}}
EOF
  plans_providers gmail yahoo microsoft
  echo "seeds:"
  for u in gs1@gmail.test gs2@gmail.test ys1@yahoo.test ys2@yahoo.test ms1@outlook.test ms2@outlook.test; do
    plans_seed "$u"
  done
  plans_seed mbad@outlook.test SEED_BAD_PW
} >"$work/plan.yaml"
db=$work/ipwarm.db
q() { sqlite3 "$db" "$1"; }
export SEED_PW=$pw SEED_BAD_PW='wrong-Seed-pw'
ipw() { "$IPWARM" -p "$work/plan.yaml" "$@"; }

ipw validate >"$work/validate.out" 2>&1
check "validate accepts the seeds and lists them" grep -q '^seeds: 7' "$work/validate.out"

ipw --now 2026-12-01T10:00:00Z run --for 20s >"$work/run.out" 2>"$work/run.err"
check "run exits 0 ($(tail -n 2 "$work/run.err"))" test $? -eq 0
check "eight messages delivered" test "$(q "SELECT count(*) FROM attempts WHERE outcome = 'delivered'")" = 8

# smtpd.py delivers its copies after the 250: wait for its six "placed" events.
check "smtpd.py delivered six seed copies" smtpd_wait_placed 6

flags() { # USER: every message's mailbox, uid and flags
  doveadm -c "$DOVECOT_DIR/dovecot.conf" fetch -u "$1" 'mailbox uid flags' all 2>&1 | tr '\n' ' '
}
before=""
for u in gs1 gs2 ys1 ms1 ms2 mbad; do before+="$u: $(flags $u); "; done

ipw --now 2026-12-01T12:00:00Z --json feedback poll >"$work/poll1.json" 2>"$work/poll1.err"
rc=$?
check "a poll with a seed whose login fails exits 69 (got $rc)" test $rc -eq 69
check "the failed seed is named on stderr" grep -q 'mbad' "$work/poll1.err"
check "the bad password is in no output" bash -c "! grep -q 'wrong-Seed-pw' '$work/poll1.json' '$work/poll1.err'"
check "the poll's JSON reports the failed seed with its error and the others without" \
  "$PY" - "$work/poll1.json" <<'PYEOF'
import json, sys
d = {m["name"]: m for m in json.load(open(sys.argv[1]))["mailboxes"]}
ok = (d["mbad@outlook.test"]["error"] and all(d[a]["error"] is None for a in
      ("gs1@gmail.test", "gs2@gmail.test", "ys1@yahoo.test", "ys2@yahoo.test",
       "ms1@outlook.test", "ms2@outlook.test"))
      and d["ys2@yahoo.test"]["pending"] == 1 and d["ys2@yahoo.test"]["missing"] == 0)
if not ok:
    print(d, file=sys.stderr)
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
want = {m: v for m, v in placed.items() if not v[1].startswith("mbad@")}
if got != want:
    print("got %s want %s" % (got, want), file=sys.stderr)
    sys.exit(1)
sys.exit(0 if len(got) == 5 and {r for r, _ in got.values()} == {"inbox", "junk"} else 1)
PYEOF
after=""
for u in gs1 gs2 ys1 ms1 ms2 mbad; do after+="$u: $(flags $u); "; done
check "no seed's flags changed ($after)" test "$before" = "$after"
check "the seeds had mail to look at" bash -c "echo '$before' | grep -q 'INBOX'"

# The day after: ys2's copy was never delivered, mbad's login still fails (unknown, not missing).
ipw --now 2026-12-02T10:30:00Z --json feedback poll >"$work/poll2.json" 2>"$work/poll2.err"
check "the second poll exits 69 again (mbad)" test $? -eq 69
check "ys2's copy is missing after 24 h" test "$(q "SELECT result FROM placements WHERE seed = 'ys2@yahoo.test'")" = missing
check "mbad's copy stays unknown (a failed login proves nothing)" test "$(q "SELECT count(*) FROM placements WHERE seed = 'mbad@outlook.test'")" = 0
check "nothing counted twice" test "$(q "SELECT count(*) FROM placements")" = 6

# trace of a seed: under each copy, where it landed, the folder and when, as the store has them.
ipw --json trace ys1@yahoo.test >"$work/trace-ys1.json"
check "trace --json of a seed exits 0" test $? -eq 0
check "trace --json: ys1's copy with its placement as stored (result, folder, found)" \
  "$PY" - "$work/trace-ys1.json" "$db" <<'PYEOF'
import json, sqlite3, sys, datetime
t = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
want = db.execute("SELECT p.result, p.folder, p.found_ms FROM placements p JOIN attempts a ON "
                  "a.id = p.attempt_id WHERE a.recipient = 'ys1@yahoo.test'").fetchall()
got = [x["placement"] for x in t]
ok = (len(got) == 1 and len(want) == 1 and got[0]["result"] == want[0][0]
      and got[0]["folder"] == want[0][1]
      and datetime.datetime.fromisoformat(got[0]["found"]).timestamp() * 1000 == want[0][2])
if not ok:
    print(got, want, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
ipw trace ys1@yahoo.test >"$work/trace-ys1.txt"
junk_folder=$(q "SELECT folder FROM placements WHERE seed = 'ys1@yahoo.test'")
check "trace shows ys1's copy in junk, folder $junk_folder, found at the first poll" \
  grep -qxE "  placement: junk, folder $junk_folder, found 2026-12-01T12:00:0[0-9.]*\+00:00" "$work/trace-ys1.txt"
ipw trace ys2@yahoo.test >"$work/trace-ys2.txt"
check "trace shows ys2's copy missing, given up at the second poll" \
  grep -qxE "  placement: missing \(in neither folder 24 h after it was sent; given up 2026-12-02T10:30:0[0-9.]*\+00:00\)" "$work/trace-ys2.txt"
ipw --json trace mbad@outlook.test >"$work/trace-mbad.json"
check "trace --json: mbad's copy is pending (its seed could not be read)" "$PY" -c '
import json, sys
t = json.load(open(sys.argv[1]))
sys.exit(0 if [x["placement"] for x in t] == [{"result": "pending", "folder": None, "found": None}] else 1)' "$work/trace-mbad.json"
ipw --json trace other@gmail.test >"$work/trace-other.json"
check "trace --json: a recipient that is no seed has placement null" "$PY" -c '
import json, sys
t = json.load(open(sys.argv[1]))
sys.exit(0 if len(t) == 1 and t[0]["placement"] is None else 1)' "$work/trace-other.json"

# placement: figures computed here from the server's log.
"$PY" - "$SMTPD_LOG" >"$work/want.txt" <<'PYEOF'
import json, sys
c = {"gmail": [0, 0], "yahoo": [0, 0], "microsoft": [0, 0]}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["ev"] == "placed" and e["delivered"] and not e["rcpt"].startswith("mbad@"):
        prov = {"gmail.test": "gmail", "yahoo.test": "yahoo",
                "outlook.test": "microsoft"}[e["rcpt"].split("@")[1]]
        c[prov][0 if e["folder"] == "INBOX" else 1] += 1
print(json.dumps(c))
PYEOF
ipw --json placement >"$work/place.json"
check "placement --json exits 0" test $? -eq 0
check "placement by day counts what the server put where (mbad: sent, not placed; ys2: missing)" \
  "$PY" - "$work/place.json" "$work/want.txt" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
want = json.load(open(sys.argv[2]))
r = {x["provider"]: x for x in rows}
g, y, m = r["gmail"], r["yahoo"], r["microsoft"]
ok = (len(rows) == 3 and all(x["period"] == "2026-12-01" and x["ip"] is None for x in rows)
      and g["sent"] == 2 and [g["inbox"], g["junk"]] == want["gmail"] and g["missing"] == 0
      and m["sent"] == 3 and [m["inbox"], m["junk"]] == want["microsoft"] and m["missing"] == 0
      and m["pending"] == 1
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
check "the CSV rows name the source IP" test "$(grep -c ",$net.1," "$work/place.csv")" = 3
ipw placement >"$work/place.txt"
check "the table has a row per provider" test "$(grep -cE '^2026-12-01 +(gmail|yahoo|microsoft) ' "$work/place.txt")" = 3

# --- the gate: the next sending day's stage per provider ----------------------------------------
ipw --now 2026-12-02T10:31:00Z --json status >"$work/status2.json"
check "status --json exits 0" test $? -eq 0
check "day 2: gmail (all inbox) grows to stage 1; yahoo (none in the inbox) and microsoft (a copy unknown) hold at 0" \
  "$PY" - "$work/status2.json" <<'PYEOF'
import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["providers"]}
got = (p["gmail"]["stage_today"], p["yahoo"]["stage_today"], p["microsoft"]["stage_today"])
if got != (1, 0, 0):
    print(got, file=sys.stderr)
sys.exit(0 if got == (1, 0, 0) else 1)
PYEOF
check "status shows the latest inbox rate per provider, as placement counts it" "$PY" - "$work/status2.json" "$work/place.json" <<'PYEOF'
import json, sys
p = {x["name"]: x for x in json.load(open(sys.argv[1]))["providers"]}
w = {x["provider"]: x["inbox_rate"] for x in json.load(open(sys.argv[2]))["rows"]}
sys.exit(0 if p["gmail"]["inbox_rate"] == 100 and p["yahoo"]["inbox_rate"] == 0 and
         abs(p["microsoft"]["inbox_rate"] - w["microsoft"]) < 0.01 and
         p["other"]["inbox_rate"] is None else 1)
PYEOF
ipw --now 2026-12-02T10:31:00Z status >"$work/status2.txt"
check "status prints the inbox rate per provider with its day" grep -qE '^inbox rate \(seeds\):.* gmail 100\.0% \(2026-12-01\)' "$work/status2.txt"

# --- day 2: every seed gets a copy again, the other recipient (mode once) does not ------------
ipw --now 2026-12-02T10:32:00Z run --for 20s >"$work/run2.out" 2>"$work/run2.err"
check "the day-2 run exits 0 ($(tail -n 2 "$work/run2.err"))" test $? -eq 0
check "each of the seven seeds got a second copy on day 2, other@gmail.test none" "$PY" - "$db" <<'PYEOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = dict(db.execute("SELECT recipient, count(*) FROM attempts WHERE outcome = 'delivered' "
                       "AND started_ms >= 1796169600000 GROUP BY recipient").fetchall())
want = {a: 1 for a in ("gs1@gmail.test", "gs2@gmail.test", "ys1@yahoo.test", "ys2@yahoo.test",
                       "ms1@outlook.test", "ms2@outlook.test", "mbad@outlook.test")}
if rows != want:
    print(rows, file=sys.stderr)
sys.exit(0 if rows == want else 1)
PYEOF
check "day 2 ran gmail at stage 1, yahoo and microsoft at stage 0 (stored)" \
  test "$(q "SELECT name || '=' || stage FROM providers WHERE name IN ('gmail','yahoo','microsoft') ORDER BY name" | tr '\n' ' ')" = "gmail=1 microsoft=0 yahoo=0 "

finish
