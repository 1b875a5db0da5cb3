#!/usr/bin/env bash
# Fault injection, DNS side (issue 7): `ipwarm run` and `ipwarm mx` against tests/faults/fakedns.py,
# a DNS server on loopback that answers SERVFAIL, nothing (timeout), truncated answers (TC bit:
# one zone whose TCP fallback works, one whose TCP connection closes), garbage, a header cut
# short, a compression-pointer loop, an RDLENGTH past the end, and SERVFAIL for an MX host's
# address. Every one of them must read as a temporary failure: the recipient is not sent now,
# not suppressed (a temperror is never "no MX"), and is sent once DNS answers again. And nothing
# crashes (the test build has ASan+UBSan).
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/need.sh" && need python3 sqlite3
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-faults-dns-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3

net=$(plans_net)
"$py" "$SRCDIR/tests/faults/fakedns.py" "$work/dns.port" "$net.2" "$work/heal" 2>"$work/dns.log" &
SERVERS_PIDS+=("$!")
file_wait "$work/dns.port"
dns=127.0.0.1:$(cat "$work/dns.port")
sport=$(free_port)
smtpd_start mx "[{\"name\": \"mx\", \"host\": \"$net.2\", \"port\": $sport}]" || exit 1
log=$SMTPD_LOG

faulty="servfail timeout tc garbage short loop overrun aservfail"
{
  echo email
  for z in ok tcok $faulty; do echo "a@$z.test"; done
} >"$work/seeds.csv"
printf 'Hello,\n\na DNS fault test.\n' >"$work/message.txt"
{ plans_head --dns "$dns" --dns-timeout 1s faults-dns "$net" "$sport"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
message: {subject: "Hello", text_file: message.txt}
recipients: {file: seeds.csv, mode: once}
ramp: {start: 600/min, max: 600/min}
EOF
db=$work/ipwarm.db

# 1. `mx` over every faulty zone: each reads as temperror, none as "no MX" or "no address".
# shellcheck disable=SC2086
"$IPWARM" --dns "$dns" --dns-timeout 1000 --json mx ok.test tcok.test $(for z in $faulty; do echo "$z.test"; done) \
  >"$work/mx.json" 2>"$work/mx.err"
rc=$?
check "mx over the faulty zones does not crash (exit $rc)" test "$rc" -eq 0 -o "$rc" -eq 75
check "mx: no sanitizer report" clean "$work/mx.err"
$py - "$work/mx.json" "$faulty" >"$work/check0.out" 2>&1 <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
st = {d["domain"]: d["status"] for d in doc}
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
expect(st.get("ok.test") == "ok", "mx: ok.test resolves: %s" % st.get("ok.test"))
expect(st.get("tcok.test") == "ok", "mx: a truncated UDP answer is asked again over TCP: %s" % st.get("tcok.test"))
for z in sys.argv[2].split():
    expect(st.get(z + ".test") == "temperror", "mx: %s.test is a temperror: %s" % (z, st.get(z + ".test")))
EOF
tally "$work/check0.out"
# A server that closes the TCP connection of the retry (alone: c-ares shares one TCP connection
# per server, so the close also fails the other queries on it, which then retry).
"$IPWARM" --dns "$dns" --dns-timeout 1000 --json mx tcclose.test >"$work/mx2.json" 2>"$work/mx2.err"
rc=$?
check "mx with the TCP retry closed does not crash (exit $rc)" test "$rc" -eq 0 -o "$rc" -eq 75
check "mx: a closed TCP retry is a temperror" grep -q '"status": "temperror"' "$work/mx2.json"

# 2. run: the two good zones are delivered, the others wait.
t0=$(date +%s%N)
"$IPWARM" -v -p "$work/plan.yaml" run --for 4s >"$work/run1.out" 2>"$work/run1.err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "run over the DNS faults exits 0 (got $rc: $(grep -v '^ipwarm: ' "$work/run1.err" | tail -3))" test "$rc" -eq 0
check "run: no crash or sanitizer report" clean "$work/run1.err"
# Wide for a loaded machine; a run held up by the faults would not end at all by itself.
check "run: DNS faults do not hold the run up (took $ms ms)" test "$ms" -lt 30000
$py - "$log" "$db" "$faulty" >"$work/check1.out" 2>&1 <<'EOF'
import json, sqlite3, sys
log, db, faulty = sys.argv[1], sys.argv[2], sys.argv[3].split()
con = sqlite3.connect(db)
q = lambda sql, *a: con.execute(sql, a).fetchall()
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
rcpts = [d["rcpts"][0] for d in map(json.loads, open(log)) if d["ev"] == "message" and d["accepted"]]
expect(sorted(rcpts) == ["<a@ok.test>", "<a@tcok.test>"] or sorted(rcpts) == ["a@ok.test", "a@tcok.test"],
       "only the two zones that answer were sent to: %s" % rcpts)
for z in ("ok", "tcok"):
    expect(q("SELECT state FROM recipients WHERE address = ?", "a@%s.test" % z) == [("done",)], "a@%s.test is done" % z)
for z in faulty:
    a = "a@%s.test" % z
    r = q("SELECT state, retries, next_at_ms, reason FROM recipients WHERE address = ?", a)
    expect(r and r[0][0] == "pending", "%s: not suppressed, still pending: %s" % (a, r))
    t = q("SELECT outcome, phase, code, text FROM attempts WHERE recipient = ?", a)
    expect(len(t) <= 1 and all(x[0] == "failed" and x[2] is None and "temporarily" in (x[3] or "") for x in t),
           "%s: at most one attempt, failed as a temporary DNS failure: %s" % (a, t))
    if t:
        expect(r[0][1] == 1 and r[0][2] > 0, "%s: retried later (retries %s)" % (a, r[0][1]))
p = q("SELECT paused_until_ms FROM providers")
expect(all(x[0] is None or x[0] == 0 for x in p), "a DNS failure does not pause the provider: %s" % p)
EOF
tally "$work/check1.out"

# 3. DNS answers again; ten minutes later (past backoff.retry.first) every recipient is sent.
touch "$work/heal"
later=$(date -u -d '+10 min' +%Y-%m-%dT%H:%M:%SZ)
"$IPWARM" -v --now "$later" -p "$work/plan.yaml" run --for 4s >"$work/run2.out" 2>"$work/run2.err"
rc=$?
check "run after DNS heals exits 0 (got $rc: $(grep -v '^ipwarm: ' "$work/run2.err" | tail -3))" test "$rc" -eq 0
check "run after DNS heals: no sanitizer report" clean "$work/run2.err"
n=$(sqlite3 "$db" "SELECT count(*) FROM recipients WHERE state = 'done'")
check "every recipient is done once DNS answers ($n of 10)" test "$n" -eq 10
n=$($py -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["ev"] == "message"))' "$log")
check "the server received each recipient exactly once ($n messages)" test "$n" -eq 10

finish
