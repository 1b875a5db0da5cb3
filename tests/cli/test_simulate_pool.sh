#!/usr/bin/env bash
# `simulate` with a pool of three source IPs, one of which joins on a later date
# (source.start): through the binary, --now fixed, --json and the table. Each IP is projected
# on its own at each provider: the newcomer plans nothing before its date and starts there at
# the first stage while the others go on; the provider's day is the pool's sum; the keys of
# cli.md (days[].providers[] name, rate_per_min, cap, planned) are kept and "ips" added. The
# expected numbers are worked out here from the ramp's definition, not read from the output.
# With a state file whose pool is under way, each IP is read from its own lane (the store's
# (provider, IP) rows, the first IP adopting the provider's row without an IP): one IP ahead of
# another is shown at its own sending day and stage, the provider at its most advanced IP's.
# Environment: IPWARM, SRCDIR.
set -u
: "${IPWARM:?set IPWARM}" "${SRCDIR:?set SRCDIR}"
. "$SRCDIR/tests/lib/need.sh" && need python3 sqlite3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/assert.sh"

cp "$SRCDIR/tests/plans/message.txt" "$SRCDIR/tests/plans/seeds.csv" .
# Weekdays 09:00-10:00 UTC; 1/min, x2, at most 4/min; caps 50 then 100 a day.
cat >plan.yaml <<'YAML'
campaign: sim-pool
timezone: UTC
source:
  ips: [192.0.2.10, 192.0.2.11, 192.0.2.12]
  helo: mx.example.com
  start: {192.0.2.12: 2026-06-09}
sender: {from: "News <news@example.com>"}
message: {subject: Hi, text_file: message.txt}
recipients: {file: seeds.csv}
state: state.db
schedule: {days: [mon, tue, wed, thu, fri], hours: "09:00-10:00"}
ramp: {start: 1/min, growth: 2, max: 4/min, daily_cap: [50, 100]}
YAML
# 2026-06-05 is a Friday: sending days 06-05, 06-08, 06-09 (the newcomer's first), ...
t "simulate --json" 0 -p plan.yaml --now 2026-06-05T00:00:00Z --json simulate --days 6
cat >cmp.py <<'PY'
import json, math, sys
d = json.load(open(sys.argv[1]))
dates = ["2026-06-05", "2026-06-08", "2026-06-09", "2026-06-10", "2026-06-11", "2026-06-12"]
def own(n):  # one IP on its own sending day n: (stage, rate, cap, planned)
    rate = min(2 ** (n - 1), 4)
    cap = 50 if n == 1 else 100
    return n - 1 if n < 3 else 2, rate, cap, min(cap, math.ceil(60 * rate))
assert [x["date"] for x in d["days"]] == dates
for i, day in enumerate(d["days"]):
    for p in day["providers"]:
        assert {"name", "rate_per_min", "cap", "planned", "ips"} <= set(p), p
        ips = p["ips"]
        assert [x["ip"] for x in ips] == ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        total = rate = 0
        for k, x in enumerate(ips):
            n = i + 1 if k < 2 else i - 1
            if n < 1:
                assert x["joined"] is False and x["planned"] == 0, (i, x)
                continue
            st, r, c, pl = own(n)
            assert x["joined"] is True and (x["stage"], x["rate_per_min"], x["cap"], x["planned"]) == (st, r, c, pl), (i, x, (st, r, c, pl))
            total += pl
            rate += r
        assert p["planned"] == total and abs(p["rate_per_min"] - rate) < 1e-9, (i, p)
    assert day["total"] == sum(p["planned"] for p in day["providers"])
g = d["days"][2]["providers"][0]
assert g["ips"][2]["start"] == "2026-06-09" and g["ips"][2]["stage"] == 0
print("ok")
PY
if "$ASSERT_PY" cmp.py out >cmp.out 2>&1; then ok "every IP projected on its own; the newcomer from its date"; else
  bad "simulate per IP"; sed 's/^/    /' cmp.out | tail -3; fi

t "simulate (table)" 0 -p plan.yaml --now 2026-06-05T00:00:00Z simulate --days 3
out_has "the pool and the newcomer named" "192.0.2.12 joins on 2026-06-09 at the first stage"
if grep -qE '^ +192\.0\.2\.12 +joins 2026-06-09$' out; then ok "newcomer's line before its date"; else bad "newcomer's line"; fi
# Day 3 at gmail: 100 + 100 from the first two (capped), 50 from the newcomer (its first cap).
if grep -A3 -E '^ +3 +2026-06-09 +gmail' out | grep -qE '^ +192\.0\.2\.12 +1\.0 +50 +50$'; then
  ok "newcomer's first day: 1/min, cap 50"; else bad "newcomer's first day"; sed 's/^/    /' out | head -30; fi
if grep -qE '^ +3 +2026-06-09 +gmail +9\.0 +250 +250$' out; then ok "gmail's day 3 is the pool's sum"; else bad "gmail day 3 sum"; fi

# --- a pool under way: each IP's own lane -----------------------------------------------------
# A state file made by ipwarm (a manual pause of comcast creates it at the current schema), then lanes as a pool's run leaves them: at gmail .11 on
# sending day 3, stage 2, .10 on the provider's row kept without an IP (a campaign that had one
# IP before its pool: the first IP adopts it) on day 2, stage 1, the newcomer .12 not started;
# at yahoo only .12 on day 1.
t "a pause creates the state" 0 -p plan.yaml --now 2026-06-05T09:00:00Z pause comcast
lanes="INSERT INTO providers (name, ip, stage, sending_day, sending_day_date, rate_per_min,
  updated_ms) VALUES"
sqlite3 state.db "$lanes ('gmail', '', 1, 2, '2026-06-04', 2, 0);
  $lanes ('gmail', '192.0.2.11', 2, 3, '2026-06-04', 4, 0);
  $lanes ('yahoo', '192.0.2.12', 0, 1, '2026-06-04', 1, 0);" 2>sql.err
check "lanes written ($(cat sql.err))" test ! -s sql.err
# What the store holds, per (provider, IP) as the engine keys it, to compare simulate with.
sqlite3 -separator ' ' state.db "SELECT name, ip, sending_day, stage FROM providers
  ORDER BY name, ip" >lanes.txt
t "simulate --json with the pool under way" 0 -p plan.yaml --now 2026-06-05T12:00:00Z --json simulate --days 2
cat >cur.py <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = {}
for line in open(sys.argv[2]):
    name, *rest = line.split()
    ip, day, stage = rest if len(rest) == 3 else ("", *rest)
    rows[(name, ip)] = (int(day), int(stage))
ips = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
for p in d["providers"]:
    want = []
    for k, ip in enumerate(ips):
        lane = rows.get((p["name"], ip))
        if lane is None and k == 0:
            lane = rows.get((p["name"], ""))
        want.append((ip,) + (lane or (0, 0)))
    got = [(x["ip"], x["current_sending_day"], x["current_stage"]) for x in p["current_ips"]]
    assert got == want, (p["name"], got, want)
    top = max(w[1:] for w in want)
    assert (p["current_sending_day"], p["current_stage"]) == top, (p["name"], p, top)
g = next(p for p in d["providers"] if p["name"] == "gmail")
assert [x["current_sending_day"] for x in g["current_ips"]] == [2, 3, 0], g
print("ok")
PY
if "$ASSERT_PY" cur.py out lanes.txt >cur.out 2>&1; then ok "each IP at its own lane's day and stage"; else
  bad "simulate's current per IP"; sed 's/^/    /' cur.out | tail -3; fi
t "simulate (table) with the pool under way" 0 -p plan.yaml --now 2026-06-05T12:00:00Z simulate --days 1
if grep -qE '^gmail .*; now on day 3, stage 2$' out; then ok "gmail at its most advanced IP"; else
  bad "gmail's line"; sed 's/^/    /' out | head -12; fi
if grep -A3 -E '^gmail ' out | grep -qE '^  192\.0\.2\.10 +now on day 2, stage 1$' &&
  grep -A3 -E '^gmail ' out | grep -qE '^  192\.0\.2\.11 +now on day 3, stage 2$' &&
  grep -A3 -E '^gmail ' out | grep -qE '^  192\.0\.2\.12 +not started$'; then
  ok "a line per IP under gmail"; else bad "gmail's IPs"; sed 's/^/    /' out | head -12; fi
if grep -A3 -E '^yahoo ' out | grep -qE '^  192\.0\.2\.12 +now on day 1, stage 0$'; then
  ok "yahoo: only the newcomer under way"; else bad "yahoo's IPs"; sed 's/^/    /' out | head -20; fi
if grep -A1 -E '^microsoft ' out | grep -q 'now on\|not started'; then bad "microsoft has no lane yet"; else
  ok "a provider not under way has no IP lines"; fi

# A single IP keeps the document it had: no "ips".
sed -e 's/ips: \[192.0.2.10, 192.0.2.11, 192.0.2.12\]/ip: 192.0.2.10/' -e '/start:/d' plan.yaml >one.yaml
t "simulate, one IP" 0 -p one.yaml --now 2026-06-05T00:00:00Z --json simulate --days 2
json_true "no ips for a single IP" 'all("ips" not in p for day in d["days"] for p in day["providers"])'
finish
