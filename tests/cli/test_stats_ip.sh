#!/usr/bin/env bash
# `stats --by ip` for a pool of three source IPs: ipwarm creates the state file, a Python
# script writes attempts into it with sqlite3 (several IPs and providers, every outcome, a late
# bounce that keeps its 250, a complaint matched to an attempt, in-flight and dry-run attempts
# that must not count, one attempt before --since) and computes from its own list what each
# (IP, provider) row must say; the JSON, CSV and table outputs are compared with that.
# Environment: IPWARM, SRCDIR.
set -u
: "${IPWARM:?set IPWARM}" "${SRCDIR:?set SRCDIR}"
. "$SRCDIR/tests/lib/need.sh" && need python3
PY=$NEED_PY
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/assert.sh"

cp "$SRCDIR/tests/plans/message.txt" "$SRCDIR/tests/plans/seeds.csv" .
cat >plan.yaml <<'YAML'
campaign: stats-ip
timezone: Asia/Tokyo
source: {ips: [127.0.0.11, 127.0.0.12, 127.0.0.2], helo: mx.example.com}
sender: {from: "News <news@example.com>"}
message: {subject: Hi, text_file: message.txt}
recipients: {file: seeds.csv}
state: state.db
YAML
P=(-p plan.yaml)

t "no state yet: by ip is an empty answer" 0 "${P[@]}" stats --by ip --json
if "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["rows"] == [] and d["by"] == "ip"' out; then
  ok "empty rows, by ip"; else bad "empty rows, by ip"; fi
# Any command that writes the state creates it with the current schema.
t "create the state file" 0 "${P[@]}" pause gmail
t "and resume" 0 "${P[@]}" resume gmail

# The attempts: (ip, provider, outcome, code, enhanced, text, dry_run, minutes after base).
cat >fill.py <<'PY'
import json, sqlite3, sys
base = 1796083200000  # 2026-12-01T00:00:00Z
busy = "Server busy. Please try again later from [%s]. (S77714) [AM%dEUR03.prod.outlook.com]"
A = []
def add(ip, prov, outcome, code=None, enh=None, text=None, dry=0, minute=10):
    A.append(dict(ip=ip, prov=prov, outcome=outcome, code=code, enh=enh, text=text, dry=dry,
                  minute=minute))
for i in range(3):
    add("127.0.0.11", "microsoft", "delivered", 250, "2.0.0", "OK queued as %d" % i)
add("127.0.0.11", "microsoft", "bounced", 250, "2.0.0", "OK late")       # a late bounce
for i in range(4):
    add("127.0.0.12", "microsoft", "deferred", 451, "4.7.500", busy % ("127.0.0.12", i))
add("127.0.0.12", "microsoft", "delivered", 250, "2.0.0", "OK")
add("127.0.0.2", "gmail", "delivered", 250, "2.0.0", "OK")
add("127.0.0.2", "gmail", "delivered", 250, "2.0.0", "OK")
add("127.0.0.2", "gmail", "failed")                                       # no reply
add("127.0.0.2", "gmail", "in-flight")                                    # not counted
add("127.0.0.2", "gmail", "delivered", 250, "2.0.0", "OK", dry=1)         # not counted
add("127.0.0.11", "gmail", "blocked", 550, "5.7.1", "Blocked by policy")
add("127.0.0.11", "gmail", "bounced", 550, "5.1.1", "No such user")
add("127.0.0.12", "gmail", "delivered", 250, "2.0.0", "OK", minute=-120)  # before --since
db = sqlite3.connect(sys.argv[1])
ids = []
for n, a in enumerate(A):
    cur = db.execute(
        "INSERT INTO attempts (started_ms, finished_ms, recipient, domain, provider, mx, "
        "source_ip, phase, code, enhanced, text, outcome, dry_run) VALUES "
        "(?, ?, ?, ?, ?, 'mx.test', ?, 'data', ?, ?, ?, ?, ?)",
        (base + a["minute"] * 60000 + n, base + a["minute"] * 60000 + n + 500,
         "r%d@%s.test" % (n, a["prov"]), "%s.test" % a["prov"], a["prov"], a["ip"], a["code"],
         a["enh"], a["text"], a["outcome"], a["dry"]))
    ids.append(cur.lastrowid)
# A complaint about the first delivered message of 127.0.0.11 at Microsoft.
db.execute("INSERT INTO feedback_reports (read_ms, mailbox, digest, kind, attempt_id) "
           "VALUES (?, 'INBOX', 'c1', 'complaint', ?)", (base + 3600000, ids[0]))
db.commit()
# What each (ip, provider) row must be, from the list above (since = base).
exp = {}
for a in A:
    if a["outcome"] == "in-flight" or a["dry"] or a["minute"] < 0:
        continue
    r = exp.setdefault("%s %s" % (a["ip"], a["prov"]), dict(attempts=0, delivered=0, deferred=0,
                       bounced=0, failed=0, blocked=0, late_bounces=0, complaints=0))
    r["attempts"] += 1
    r[a["outcome"]] += 1
    if a["outcome"] == "bounced" and a["code"] == 250:
        r["late_bounces"] += 1
exp["127.0.0.11 microsoft"]["complaints"] = 1
json.dump({"since": base, "rows": exp}, open("expected.json", "w"))
PY
if "$PY" fill.py state.db; then ok "attempts written with sqlite3"; else bad "fill.py"; fi

t "stats --by ip --json" 0 "${P[@]}" stats --by ip --since 2026-12-01T09:00:00+09:00 --json
cat >cmp.py <<'PY'
import json, sys
exp = json.load(open("expected.json"))["rows"]
got = json.load(open(sys.argv[1]))
assert got["by"] == "ip", got["by"]
rows = got["rows"]
keys = ["%s %s" % (r["ip"], r["provider"]) for r in rows]
# Ordered by IP numerically (127.0.0.2 before 127.0.0.11), then provider.
assert keys == ["127.0.0.2 gmail", "127.0.0.11 gmail", "127.0.0.11 microsoft",
                "127.0.0.12 microsoft"], keys
for r in rows:
    e = exp["%s %s" % (r["ip"], r["provider"])]
    for k, v in e.items():
        assert r[k] == v, (r["ip"], r["provider"], k, r[k], v)
    assert r["period"] == "all"
    assert abs(r["deferral_rate"] - round(e["deferred"] / e["attempts"], 4)) < 1e-9
m12 = [r for r in rows if r["ip"] == "127.0.0.12"][0]
# The four Server busy replies, each with another host, are one masked reason.
assert len(m12["top_reasons"]) == 1 and m12["top_reasons"][0]["count"] == 4, m12["top_reasons"]
assert m12["top_reasons"][0]["code"] == 451 and m12["top_reasons"][0]["enhanced"] == "4.7.500"
m11 = [r for r in rows if r["ip"] == "127.0.0.11" and r["provider"] == "microsoft"][0]
assert m11["top_reasons"] == [], m11["top_reasons"]  # a late bounce's 250 is no reason
g11 = [r for r in rows if r["ip"] == "127.0.0.11" and r["provider"] == "gmail"][0]
assert sorted(t["code"] for t in g11["top_reasons"]) == [550, 550]
print("ok")
PY
if "$PY" cmp.py out >cmp.out 2>&1; then ok "JSON rows match the attempts written"; else
  bad "JSON rows"; sed 's/^/    /' cmp.out | tail -3; fi

t "stats --by ip --provider microsoft" 0 "${P[@]}" stats --by ip --provider microsoft --json
if "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [r["ip"] for r in d["rows"]] == ["127.0.0.11", "127.0.0.12"], d["rows"]' out; then
  ok "--provider keeps microsoft's two IPs"; else bad "--provider microsoft"; fi

t "without --since the earlier attempt counts" 0 "${P[@]}" stats --by ip --json
if "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=[r for r in d["rows"] if r["ip"]=="127.0.0.12" and r["provider"]=="gmail"]; assert len(r)==1 and r[0]["delivered"]==1, r' out; then
  ok "127.0.0.12 gmail row from before --since"; else bad "127.0.0.12 gmail row"; fi

t "stats --by ip --format csv" 0 "${P[@]}" stats --by ip --since 2026-12-01T09:00:00+09:00 --format csv
if "$PY" -c '
import csv, io, json, sys
exp = json.load(open("expected.json"))["rows"]
text = open(sys.argv[1], newline="").read()
rows = list(csv.DictReader(io.StringIO(text, newline="")))
assert text.splitlines()[0].endswith(",ip"), text.splitlines()[0]
assert len(rows) == 4
for r in rows:
    e = exp["%s %s" % (r["ip"], r["provider"])]
    assert int(r["attempts"]) == e["attempts"] and int(r["deferred"]) == e["deferred"], r
' out; then ok "CSV: ip column, counts match"; else bad "CSV by ip"; fi

t "stats --by ip (table)" 0 "${P[@]}" stats --by ip --since 2026-12-01T09:00:00+09:00
# 127.0.0.12 at Microsoft: 5 tried, 1 delivered, 4 deferred: 80.0 % (BLOCK shows: gmail has one).
if grep -qE '^127\.0\.0\.12 +microsoft +5 +1 +4 +0 +0( +0)? +80\.0% +0\.0%' out; then
  ok "table row of the deferred IP"; else bad "table row of 127.0.0.12"; sed 's/^/    /' out; fi
if head -1 out | grep -q '^IP '; then ok "table's first column is IP"; else bad "table header"; fi
if grep -q 'ipwarm\|--by ip' err; then bad "stderr: $(cat err)"; else ok "nothing on stderr"; fi

t "an unknown --by" 64 "${P[@]}" stats --by week
finish
