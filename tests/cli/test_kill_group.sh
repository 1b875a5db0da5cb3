#!/usr/bin/env bash
# kill -9 while a group of transactions is in flight and a group of outcomes is being recorded
# loses no recipient and sends none twice blindly.
#
# 56 recipients at one provider with eight connections and a ramp that starts whatever is due at
# once, so one loop of the run starts several messages and several complete together. The SMTP
# server on loopback holds its reply 1.5 s after the final dot for the "slow" recipients (three
# in four) and answers the others at once: the eight connections fill with slow messages, which
# then end together, while fast ones pass between them. `ipwarm run` is started four times and
# killed with SIGKILL at moments chosen by the server's log, never by a sleep: after six DATA
# commands (a group waiting after its dot), just after the first slow message of a group was
# accepted (its group's outcomes arriving together), after three accepted messages, after four
# slow ones accepted. Then runs go on to the end, releasing what is held (`ipwarm release
# --all`) after each.
#
# Each message the server received is matched to its attempt in the store by its Message-ID,
# and each transaction to the run that sent it by its connection's time. What the server saw
# decides what the store must say:
# - every recipient is done with exactly one delivered attempt, every attempt has an outcome;
# - every message the server accepted has its attempt (the record came first), delivered or
#   unknown; every delivered attempt is a message the server accepted;
# - an attempt is unknown only in a killed run, and exactly when the server saw its transaction
#   end without the run recording it: after the dot (answered too late for a run already dead,
#   or answered but not recorded), before the dot (the client vanished), or not at all (recorded
#   in the store, not yet on the wire); the server's reply logged after the run was reaped,
#   and a transaction the vanished client cut, each make one unknown attempt;
# - a recipient is accepted twice exactly when the server accepted its unknown attempt's
#   message, and it was released: no other recipient is accepted more than once.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
unset IPWARM_PLAN
. "$SRCDIR/tests/lib/need.sh" && need python3 dnsmasq sqlite3
. "$SRCDIR/tests/lib/servers.sh"
work=$(mktemp -d /tmp/ipwarm-kill-group-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
. "$SRCDIR/tests/lib/kill.sh"
py=$NEED_PY

conns=8
count=56
net=127.0.$((26 + RANDOM % 200))
dnsmasq_start <<EOF || exit 1
mx-host=group.test,mx.group.test,10
host-record=mx.group.test,$net.2
EOF
sport=$(free_port)
smtpd_start mx "[
  {\"name\": \"group\", \"host\": \"$net.2\", \"port\": $sport,
   \"data_delay_by_rcpt\": {\"^slow\": 1500}}
]" || exit 1
log=$SMTPD_LOG

{
  echo email
  for i in $(seq 1 $count); do
    if [ $((i % 4)) -eq 0 ]; then echo "fast$i@group.test"; else echo "slow$i@group.test"; fi
  done
} >"$work/list.csv"
printf 'Hello,\n\nkill -9 amid a group, message {{seq}}.\n' >"$work/message.txt"
# A command timeout far above the server's hold: an unknown outcome here comes from a kill, not
# from a slow machine.
cat >"$work/plan.yaml" <<EOF
campaign: kill-group
timezone: UTC
state: state.db
source: {ip: $net.1, helo: mx1.example.com}
sender: {from: "Example <news@example.com>", return_path: bounces@example.com}
transport:
  mode: direct
  port: $sport
  timeouts: {connect: 10s, command: 60s}
  connections_per_provider: $conns
message: {subject: "Hello", text_file: message.txt}
recipients: {file: list.csv, mode: once}
ramp: {start: 1000000/min, growth: 1, max: 1000000/min}
providers:
  - {name: group, mx: [.group.test]}
preflight: {require: []}
dns: {servers: ["$DNS_SERVER"], timeout: 5s}
EOF
db=$work/state.db

data_re='"line": "DATA", .*"ev": "cmd"'
acc_re='"accepted": true'
slow_acc_re='"rcpts": \["slow.*"accepted": true'

# --- four runs, each killed with SIGKILL at a moment an event chose ------------------------------
: >"$work/rounds.txt"
fired=0 kills=0 rounds=4
for k in $(seq 1 $rounds); do
  case $k in
    1) re=$data_re n=6 ;;
    2) re=$slow_acc_re n=1 ;;
    3) re=$acc_re n=3 ;;
    4) re=$slow_acc_re n=4 ;;
  esac
  check "round $k: the server ended every transaction of the runs before" data_ends_wait "$log"
  kill_on_event "$log" $(($(log_count "$log" "$re") + n)) "$re" "$work/kill$k.err" \
    "$work/plan.yaml" --for 120s
  fired=$((fired + KILL_FIRED))
  kills=$((kills + KILL_SENT))
  echo "$k $KILL_START_MS $KILL_DEAD_MS" >>"$work/rounds.txt"
  check "round $k: no sanitizer report before the kill" clean "$work/kill$k.err"
done
check "each round's event came ($fired of $rounds)" test "$fired" -eq "$rounds"
check "every round was ended by SIGKILL ($kills of $rounds)" test "$kills" -eq "$rounds"

# --- runs to the end, releasing what is held after each -----------------------------------------
: >"$work/released.txt"
settle_runs "$work/plan.yaml" "$db" "$work/released.txt"
check "the server logged an end for each DATA command" data_ends_wait "$log"

"$py" - "$log" "$db" "$work/rounds.txt" "$work/released.txt" "$count" "$conns" \
  >"$work/check.out" 2>&1 <<'EOF'
import collections, json, re, sqlite3, sys
log, db, rounds_file, released_file = sys.argv[1:5]
count, conns = int(sys.argv[5]), int(sys.argv[6])
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)

# The killed runs: round -> (start, reaped), in ms.
rounds = {}
for line in open(rounds_file):
    k, start, dead = map(int, line.split())
    rounds[k] = (start, dead)
def round_of(ms):
    for k, (start, dead) in rounds.items():
        if start <= ms <= dead:
            return k
    return None  # a settling run

# The server's log, by connection: its transactions (recipients; the message event after the
# dot, if any) and how it ended (QUIT, or the client gone).
conn_t, txs, cur, quit = {}, [], {}, set()
for d in map(json.loads, open(log)):
    c = d["conn"]
    if d["ev"] == "connect":
        conn_t[c] = d["t"]
    elif d["ev"] == "cmd":
        verb = d["line"][:4].upper()
        if verb == "MAIL":
            cur[c] = {"conn": c, "rcpts": [], "msg": None}
        elif verb == "RCPT" and c in cur:
            m = re.search(r"<([^>]*)>", d["line"])
            cur[c]["rcpts"].append(m.group(1).lower() if m else "")
        elif verb == "QUIT":
            quit.add(c)
    elif d["ev"] == "message":
        tx = cur.pop(c)
        tx["msg"] = d
        txs.append(tx)
    elif d["ev"] in ("eof", "eof-in-data", "error") and c in cur:
        txs.append(dict(cur.pop(c), cut=d["ev"]))
for tx in txs:
    tx["round"] = round_of(int(conn_t[tx["conn"]] * 1000))
after_dot = {tx["msg"]["message_id"]: tx for tx in txs if tx["msg"]}
cut = [tx for tx in txs if not tx["msg"] and tx["rcpts"]]
accepted = collections.Counter()
for tx in txs:
    if tx["msg"] and tx["msg"]["accepted"]:
        for r in tx["rcpts"]:
            accepted[r] += 1

con = sqlite3.connect(db)
listed = [r.lower() for r, in con.execute("SELECT address FROM recipients")]
states = collections.Counter(s for s, in con.execute("SELECT state FROM recipients"))
att = [dict(id=i, rcpt=r.lower(), mid=m, outcome=o, round=round_of(s)) for i, r, m, o, s in
       con.execute("SELECT id, recipient, message_id, outcome, started_ms FROM attempts "
                   "WHERE dry_run = 0 ORDER BY id")]
by_mid = {a["mid"]: a for a in att}
released = collections.Counter(l.strip().lower() for l in open(released_file) if l.strip())

# --- the end state ---
expect(len(listed) == count, "the store holds the %d recipients (%d)" % (count, len(listed)))
expect(states == {"done": count}, "every recipient is done: none pending, held or lost (%s)"
       % dict(states))
delivered = collections.Counter(a["rcpt"] for a in att if a["outcome"] == "delivered")
bad = {r: delivered[r] for r in listed if delivered[r] != 1}
expect(not bad, "every recipient has exactly one delivered attempt (not: %s)" % bad)
lost = [r for r in listed if accepted[r] < 1]
expect(not lost, "every recipient's message was accepted by the server (not: %s)" % lost)
open_att = [a["id"] for a in att if a["outcome"] == "in-flight"]
expect(not open_att, "every attempt has an outcome after the last run (in flight: %s)" % open_att)

# --- every message the server received against its record ---
unrecorded = [mid for mid in after_dot if mid not in by_mid]
expect(not unrecorded, "every message the server received has its attempt in the store, "
       "recorded before it was sent (not: %s)" % unrecorded)
wrong = {mid: by_mid[mid]["outcome"] for mid, tx in after_dot.items()
         if mid in by_mid and tx["msg"]["accepted"]
         and by_mid[mid]["outcome"] not in ("delivered", "unknown")}
expect(not wrong, "every message the server accepted is recorded delivered or unknown (not: %s)"
       % wrong)
ghost = [a["id"] for a in att if a["outcome"] == "delivered" and
         not (a["mid"] in after_dot and after_dot[a["mid"]]["msg"]["accepted"])]
expect(not ghost, "every delivered attempt is a message the server accepted (not: %s)" % ghost)
mismatch = [mid for mid, tx in after_dot.items()
            if mid in by_mid and tx["rcpts"] != [by_mid[mid]["rcpt"]]]
expect(not mismatch, "each message went to its attempt's recipient (not: %s)" % mismatch)
late = [a["id"] for a in att if a["outcome"] not in ("delivered", "unknown")]
expect(not late, "no attempt failed, deferred or bounced (%s)" % late)

# --- the unknown attempts: exactly the transactions the kills left unrecorded ---
unknown = [a for a in att if a["outcome"] == "unknown"]
settled = [a["id"] for a in unknown if a["round"] is None]
expect(not settled, "only the killed runs left unknown attempts (not: %s)" % settled)
per_round = collections.Counter(a["round"] for a in unknown)
expect(all(n <= conns for n in per_round.values()),
       "no killed run left more unknown attempts than its %d connections (%s)"
       % (conns, dict(per_round)))
# What the server saw of each killed run's transactions that the run did not record.
dot_unrec = [tx for mid, tx in after_dot.items()
             if tx["round"] is not None and by_mid.get(mid, {}).get("outcome") != "delivered"]
too_late = [tx for tx in dot_unrec
            if tx["msg"]["t"] * 1000 > rounds[tx["round"]][1]]
cut_killed = [tx for tx in cut if tx["round"] is not None]
cut_other = [tx for tx in cut if tx["round"] is None]
expect(not cut_other, "no settling run left a transaction unfinished (%s)" % cut_other)
expect(all(tx["conn"] not in quit for tx in cut_killed),
       "every transaction cut before its dot ended with its client gone, not a QUIT")
seen = {(r, tx["round"]) for tx in txs for r in tx["rcpts"]}
unseen = [a for a in unknown if a["mid"] not in after_dot and (a["rcpt"], a["round"]) not in seen]
# Each transaction cut before its dot is an unknown attempt of that recipient in that run.
unk_by = collections.Counter((a["rcpt"], a["round"]) for a in unknown if a["mid"] not in after_dot)
cut_by = collections.Counter((tx["rcpts"][0], tx["round"]) for tx in cut_killed)
missing_cut = {k: n for k, n in cut_by.items() if unk_by[k] < n}
expect(not missing_cut, "every transaction a kill cut before its dot is an unknown attempt "
       "(not: %s)" % missing_cut)
not_unk = [tx["msg"]["message_id"] for tx in too_late
           if by_mid.get(tx["msg"]["message_id"], {}).get("outcome") != "unknown"]
expect(not not_unk, "every message the server answered after its run was reaped is unknown "
       "(not: %s)" % not_unk)
expect(len(unknown) == len(dot_unrec) + sum(cut_by.values()) + len(unseen),
       "the %d unknown attempts are the %d messages the server received after their dot "
       "unrecorded (%d of them answered after the run was reaped), the %d transactions cut "
       "before their dot and the %d the server never saw"
       % (len(unknown), len(dot_unrec), len(too_late), sum(cut_by.values()), len(unseen)))
expect(len(unknown) >= 1 and any(n >= 2 for n in
       collections.Counter(tx["round"] for tx in dot_unrec).values()),
       "a kill landed while several messages were past their dot (%s)"
       % dict(collections.Counter(tx["round"] for tx in dot_unrec)))

# --- accepted twice: only an unknown attempt the server had accepted, then released ---
twice_expected = collections.Counter(
    by_mid[mid]["rcpt"] for mid, tx in after_dot.items()
    if tx["msg"]["accepted"] and by_mid.get(mid, {}).get("outcome") == "unknown")
dups = {r: n for r, n in accepted.items() if n > 1}
expect(dups == {r: 1 + n for r, n in twice_expected.items()},
       "the recipients accepted more than once are exactly those whose unknown attempt the "
       "server had accepted, once more per such attempt (%s; expected %s)"
       % (dups, dict(twice_expected)))
unreleased = [r for r in dups if released[r] < dups[r] - 1]
expect(not unreleased, "each was released before it was sent again (not: %s)" % unreleased)
unk_rcpt = collections.Counter(a["rcpt"] for a in unknown)
expect(released == unk_rcpt, "one release per unknown attempt (%d released, %d unknown)"
       % (sum(released.values()), len(unknown)))
print("info: per killed run, attempts %s, unknown %s; %d accepted twice: %s"
      % (dict(sorted(collections.Counter(a["round"] for a in att if a["round"]).items())),
         dict(sorted(per_round.items())), len(dups), sorted(dups)))
EOF
tally "$work/check.out"

finish
