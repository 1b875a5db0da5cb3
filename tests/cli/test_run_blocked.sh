#!/usr/bin/env bash
# A block-listed IP must never burn the list: a provider that refuses the sender at MAIL
# (550 5.7.1 ... block list (S3150)) gets one message, is suspended with the reason, and every
# one of its recipients stays pending; the other providers go on. Once the block is lifted, the
# campaign resumes and every recipient gets exactly one message. Real servers on loopback.
set -u
: "${IPWARM:?}" "${SRCDIR:?}"
. "$SRCDIR/tests/lib/servers.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d /tmp/ipwarm-blocked-XXXXXX)
servers_init "$work"
. "$SRCDIR/tests/lib/assert.sh"
py=/usr/bin/python3
net=$(plans_net)
dnsmasq_start <<EOF
mx-host=outlook.test,x.olc.protection.outlook.com,10
host-record=x.olc.protection.outlook.com,$net.3
mx-host=gmail.test,gmail-smtp-in.l.google.com,5
host-record=gmail-smtp-in.l.google.com,$net.2
EOF
port=$(free_port)
echo blocklist >"$work/ms.mode"
smtpd_start blocked "[
  {\"name\": \"ms\", \"host\": \"$net.3\", \"port\": $port, \"mode_file\": \"$work/ms.mode\",
   \"modes\": {\"blocklist\": {\"mail\": \"550 5.7.1 Unfortunately, messages from [$net.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).\"}}},
  {\"name\": \"gmail\", \"host\": \"$net.2\", \"port\": $port}
]"
log=$SMTPD_LOG
{
  for i in $(seq 1 10); do echo "m$i@outlook.test"; done
  for i in 1 2 3; do echo "g$i@gmail.test"; done
} >"$work/list.txt"
printf 'Hello {{recipient}}\n' >"$work/m.txt"
{ plans_head --timeouts 3s/10s --per-provider 1 blocked-test "$net" "$port"; cat <<EOF; } >"$work/plan.yaml"
sender: {from: "news@example.com", return_path: bounces@example.com}
message: {subject: hello, text_file: m.txt}
recipients: {file: list.txt, mode: once}
ramp: {start: 60/min}
EOF
db=$work/ipwarm.db
t0=2026-12-01T09:00:00Z
"$IPWARM" -p "$work/plan.yaml" --now "$t0" run --for 8s >"$work/run1.out" 2>"$work/run1.err"
rc=$?
check "blocked run exits 0 (got $rc)" test "$rc" -eq 0
check "no sanitizer report" clean "$work/run1.err"
ms_mail() { grep '"listener": "ms"' "$log" | grep -c '"line": "MAIL FROM'; }
check "the blocking provider got one message, then nothing (got $(ms_mail))" test "$(ms_mail)" -eq 1
check "its attempt is recorded as blocked" \
  test "$(sqlite3 "$db" "SELECT outcome FROM attempts WHERE provider = 'microsoft'")" = blocked
check "all ten of its recipients are pending, none suppressed" \
  test "$(sqlite3 "$db" "SELECT count(*) FROM recipients WHERE provider = 'microsoft' AND state = 'pending'")" -eq 10
check "nothing was counted as a bounce" \
  test "$(sqlite3 "$db" "SELECT count(*) FROM attempts WHERE outcome = 'bounced'")" -eq 0
check "the provider is suspended with the reply as the reason" \
  test "$(sqlite3 "$db" "SELECT count(*) FROM rule_actions WHERE provider = 'microsoft' AND action = 'suspend' AND reason LIKE '%S3150%'")" -ge 1
check "the other provider went on: three delivered" \
  test "$(sqlite3 "$db" "SELECT count(*) FROM attempts WHERE provider = 'gmail' AND outcome = 'delivered'")" -eq 3
check "the run says why" grep -q "refused because of the sender" "$work/run1.err"

"$IPWARM" -p "$work/plan.yaml" --now "2026-12-01T09:05:00Z" status --json >"$work/status.json"
$py - "$work/status.json" >"$work/status.out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ms = [p for p in d["providers"] if p["name"] == "microsoft"][0]
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
expect(ms["paused_until"] is not None, "status: microsoft is paused until a time: %s" % ms["paused_until"])
expect("S3150" in (ms["pause_reason"] or ""), "status: the pause reason quotes the refusal: %s" % ms["pause_reason"])
EOF
tally "$work/status.out"

# The block is lifted (delisted). After the suspension, the campaign resumes: each recipient
# gets exactly one message, nothing lost.
echo normal >"$work/ms.mode"
"$IPWARM" -p "$work/plan.yaml" --now "2026-12-02T10:00:00Z" run >"$work/run2.out" 2>"$work/run2.err"
rc=$?
check "the resumed run ends by itself with exit 0 (got $rc)" test "$rc" -eq 0
check "every recipient is done" \
  test "$(sqlite3 "$db" "SELECT count(*) FROM recipients WHERE state = 'done'")" -eq 13
$py - "$log" >"$work/once.out" <<'EOF'
import json, sys, collections
ev = [json.loads(l) for l in open(sys.argv[1])]
got = collections.Counter(r for e in ev if e["ev"] == "message" and e.get("accepted") for r in e["rcpts"])
def expect(c, w):
    print(("ok: " if c else "FAIL: ") + w)
want = ["m%d@outlook.test" % i for i in range(1, 11)] + ["g%d@gmail.test" % i for i in (1, 2, 3)]
expect(sorted(got) == sorted(want), "every recipient received a message: %s" % sorted(got))
expect(all(n == 1 for n in got.values()), "nobody received two: %s" % dict(got))
EOF
tally "$work/once.out"
finish
