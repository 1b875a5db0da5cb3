#!/usr/bin/env bash
# status, pause and resume against the contract (docs/cli.md): the JSON keys, the
# providers in plan order with their starting values on a fresh state, values computed from a
# state seeded with the sqlite3 CLI (rate from the ramp or after backoff, throttles, today's
# count and cap in the plan's zone, backoff pauses, rule suspensions, last replies), manual
# holds with and without --for, resume of manual and automatic actions, and that all three work
# while another process holds the run lock or a write transaction (they never take the lock).
# Expected values are computed here, by Python's datetime and by hand from the plan below.
# Environment: IPWARM (the binary), SRCDIR (the source tree).
set -u
: "${IPWARM:?set IPWARM to the ipwarm binary}" "${SRCDIR:?set SRCDIR to the source tree}"
. "$SRCDIR/tests/lib/need.sh" && need python3 sqlite3
PY=$NEED_PY
work=$(mktemp -d)
bg_pids=()
cleanup() {
  local p
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
unset IPWARM_PLAN

. "$SRCDIR/tests/lib/assert.sh"

# t DESCRIPTION CODE ARGS...: runs ipwarm with the plan and --now at $sec seconds after
# 2026-12-01T09:00:00+09:00, then moves the clock on by one second (time only moves forward, as
# it does for an operator; every command's clock is fixed); stdout in out, stderr in err;
# checks the exit code.
sec=0
t() {
  local what=$1 want=$2
  shift 2
  "$IPWARM" -p "$work/plan.yaml" --now "$(at "$sec")" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  sec=$((sec + 1))
  if [ "$rc" -eq "$want" ]; then
    ok "$what: exit $rc"
  else
    bad "$what: exit $rc, expected $want"
    sed 's/^/    stderr: /' "$work/err" | head -5
  fi
}
# js DESCRIPTION PYTHON-EXPRESSION: the expression over d (the JSON document in out) and p
# (name -> provider object) is true.
js() {
  local what=$1 expr=$2
  if "$PY" - "$work/out" "$expr" <<'EOF' 2>"$work/js.err"; then ok "$what"; else bad "$what"; sed 's/^/    /' "$work/js.err" | tail -3; fi
import json, sys
d = json.load(open(sys.argv[1]))
p = {x["name"]: x for x in d.get("providers", [])} if isinstance(d, dict) else {}
ok = eval(sys.argv[2])
if not ok:
    print("expression false:", sys.argv[2], file=sys.stderr)
    print(json.dumps(p.get(sys.argv[2].split('"')[1], d) if '"' in sys.argv[2] else d)[:600], file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
}
# Local RFC 3339 time (Asia/Tokyo, +09:00) of NOW plus SECONDS, and UTC ms of NOW plus SECONDS.
at() { "$PY" -c 'import datetime,sys; t=datetime.datetime(2026,12,1,9,0,0,tzinfo=datetime.timezone(datetime.timedelta(hours=9)))+datetime.timedelta(seconds=int(sys.argv[1])); print(t.isoformat())' "$1"; }
ms() { "$PY" -c 'import datetime,sys; t=datetime.datetime(2026,12,1,0,0,0,tzinfo=datetime.timezone.utc)+datetime.timedelta(seconds=int(sys.argv[1])); print(int(t.timestamp())*1000)' "$1"; }

cat >plan.yaml <<'EOF'
campaign: ops-status
timezone: Asia/Tokyo
source: {ip: 192.0.2.10, helo: mx1.example.com}
sender: {from: "News <news@example.com>"}
message: {subject: Hi, text_file: message.txt}
recipients: {file: seeds.csv}
ramp:
  start: 5/min
  growth: 1.5
  max: 600/min
  daily_cap: [500, 1000, 2000]
providers:
  - name: gmail
    mx: [.google.com]
    ramp: {daily_cap: [300, 600]}
  - name: corp
    mx: [.mx.corp.example]
EOF
printf 'Hello\n' >message.txt
printf 'email\na@example.com\n' >seeds.csv
db=$work/ipwarm.db

# The providers in the plan's order, as validate normalises them (plan ones, then shipped).
"$IPWARM" -p plan.yaml --json validate >validate.json 2>/dev/null
order=$("$PY" -c 'import json; print(" ".join(x["name"] for x in json.load(open("validate.json"))["providers"]))')
if [ "${order%% *}" = gmail ]; then ok "validate lists the providers (gmail first)"; else bad "validate order: $order"; fi

# --- a fresh state: nothing sent, no state file ---------------------------------------------
t "status on a fresh state" 0 status
out_has "status says there is no state yet" "no state yet (nothing sent)"
out_has "status shows the campaign and now" "campaign ops-status at $(at 0)"
if [ ! -e "$db" ]; then ok "status did not create the state file"; else bad "status created $db"; fi
now_sec=$sec
t "status --json on a fresh state" 0 status --json
js "JSON: contract keys at the top" 'all(k in d for k in ("campaign","now","providers"))'
js "JSON: campaign" 'd["campaign"] == "ops-status"'
js "JSON: now in +09:00" "d['now'] == '$(at "$now_sec")'"
js "JSON: every provider has the contract keys" 'all(all(k in x for k in ("name","stage","sending_day","rate_per_min","sent_today","cap_today","paused_until","pause_reason","last_reply")) for x in d["providers"])'
js "JSON: providers in plan order" "[x['name'] for x in d['providers']] == '$order'.split()"
js "JSON: stage 0, day 0, rate 5, nothing sent" 'all(x["stage"] == 0 and x["sending_day"] == 0 and x["rate_per_min"] == 5 and x["sent_today"] == 0 for x in d["providers"])'
js "JSON: gmail cap from its own daily_cap" 'p["gmail"]["cap_today"] == 300'
js "JSON: other caps from the plan's daily_cap" 'all(x["cap_today"] == 500 for x in d["providers"] if x["name"] != "gmail")'
js "JSON: nothing paused, no reply" 'all(x["paused_until"] is None and x["pause_reason"] is None and x["last_reply"] is None and not x["paused"] for x in d["providers"])'
js "JSON: no lock, no state" 'd["lock"] is None and d["state_exists"] is False'

# --- pause and resume -----------------------------------------------------------------------
t "pause an unknown provider" 64 pause nope
err_has "pause unknown: names the known ones" "unknown provider 'nope' (known: gmail, corp,"
t "resume an unknown provider" 64 resume nope
t "resume before any state" 0 resume gmail
out_has "resume before any state: nothing to end" "gmail was not paused"
if [ ! -e "$db" ]; then ok "resume did not create the state file"; else bad "resume created $db"; fi

p0=$sec
t "pause gmail --for 2h" 0 pause gmail --for 2h
out_has "pause prints the end in +09:00" "paused gmail until $(at $((p0 + 7200)))"
t "status after pause" 0 status --json
js "paused_until = now + 2h in +09:00" "p['gmail']['paused_until'] == '$(at $((p0 + 7200)))'"
js "pause_reason names the operator" 'p["gmail"]["pause_reason"].startswith("paused by hand by ")'
js "paused, not held" 'p["gmail"]["paused"] and not p["gmail"]["held"]'
js "the manual action is listed" 'any(a["action"] == "pause" and a["manual"] and a["rule"] == "manual" for a in p["gmail"]["actions"])'
js "corp not paused" 'p["corp"]["paused_until"] is None and not p["corp"]["paused"]'
js "state exists now" 'd["state_exists"] is True'
t "status (human) after pause" 0 status
out_has "human: the pause column shows the end" "until $(at $((p0 + 7200)))"
out_has "human: the reason under the table" "gmail: paused by hand by"
rowcheck=$(sqlite3 "$db" "SELECT pause_manual, paused_until_ms FROM providers WHERE name = 'gmail'")
if [ "$rowcheck" = "1|$(ms $((p0 + 7200)))" ]; then ok "the provider row says pause_manual and the end"; else bad "provider row: $rowcheck"; fi

t "resume gmail" 0 resume gmail
out_has "resume says what it ended" "ended manual pause until $(at $((p0 + 7200)))"
t "status after resume" 0 status --json
js "not paused after resume" 'p["gmail"]["paused_until"] is None and p["gmail"]["pause_reason"] is None and not p["gmail"]["paused"] and p["gmail"]["actions"] == []'
rowcheck=$(sqlite3 "$db" "SELECT pause_manual, ifnull(paused_until_ms, 'null') FROM providers WHERE name = 'gmail'")
if [ "$rowcheck" = "0|null" ]; then ok "the provider row is cleared"; else bad "provider row after resume: $rowcheck"; fi
hist=$(sqlite3 "$db" "SELECT count(*) FROM rule_actions WHERE provider = 'gmail' AND manual = 1")
if [ "$hist" = 1 ]; then ok "the ended action stays in the history"; else bad "history rows: $hist"; fi

t "pause gmail without --for" 0 pause gmail
out_has "pause without --for: until resumed" "paused gmail until resumed"
t "status: held" 0 status --json
js "held: paused_until null, held true" 'p["gmail"]["paused_until"] is None and p["gmail"]["held"] and p["gmail"]["paused"]'
js "held: the reason is shown" 'p["gmail"]["pause_reason"].startswith("paused by hand")'
t "status (human): held" 0 status
out_has "human: held until resumed" "held until resumed"
p0=$sec
t "pause gmail --for 30m replaces the hold" 0 pause gmail --for 30m
t "status after the new hold" 0 status --json
js "the new hold: 30 minutes, not held" "p['gmail']['paused_until'] == '$(at $((p0 + 1800)))' and not p['gmail']['held']"
js "one manual action active" 'len([a for a in p["gmail"]["actions"] if a["manual"]]) == 1'
p0=$sec
t "pause --json" 0 pause corp --for 1h --json
js "pause --json: provider and end" "d['provider'] == 'corp' and d['paused_until'] == '$(at $((p0 + 3600)))' and d['held'] is False"
t "resume gmail" 0 resume gmail
t "resume corp --json" 0 resume corp --json
js "resume --json: what it ended" 'd["provider"] == "corp" and d["resumed"] and d["ended"][0]["action"] == "pause"'
t "resume again" 0 resume corp
out_has "resume again: nothing to end" "corp was not paused: nothing to end"

# --- a seeded state: values computed from the plan -----------------------------------------
T=$(ms 0)
long_reply="451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714) [AM0PR01MB1234.eurprd01.prod.exchangelabs.com 2026-12-01T00:00:00.000Z 08DB0000000000]"
sqlite3 "$db" <<EOF
DELETE FROM providers;
INSERT INTO providers (name, stage, sending_day, sending_day_date, rate_per_min, sent_today,
  sent_today_date, last_reply, last_reply_ms, updated_ms)
  VALUES ('gmail', 2, 3, '2026-12-01', 0, 120, '2026-12-01', '250 2.0.0 OK queued', $T - 60000, $T);
INSERT INTO providers (name, stage, sending_day, sending_day_date, rate_per_min, sent_today,
  sent_today_date, updated_ms)
  VALUES ('corp', 1, 1, '2026-11-30', 7.5, 400, '2026-11-30', $T);
INSERT INTO providers (name, stage, sending_day, sending_day_date, rate_per_min, sent_today,
  sent_today_date, paused_until_ms, pause_reason, updated_ms)
  VALUES ('yahoo', 3, 4, '2026-12-01', 8.4375, 10, '2026-12-01', $T + 900000,
  '421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred', $T);
INSERT INTO providers (name, stage, sending_day, sending_day_date, rate_per_min, sent_today,
  sent_today_date, last_reply, last_reply_ms, updated_ms)
  VALUES ('microsoft', 1, 2, '2026-12-01', 7.5, 3, '2026-12-01', '$long_reply' || char(13, 10) || '451 second line', $T - 5000, $T);
INSERT INTO rule_actions (provider, rule, action, rate_per_min, reason, started_ms, expires_ms, manual)
  VALUES ('microsoft', 'microsoft-server-busy', 'throttle', 1, '451 4.7.500 Server busy', $T - 60000, $T + 1800000, 0);
INSERT INTO rule_actions (provider, rule, action, rate_per_min, reason, started_ms, expires_ms, manual)
  VALUES ('apple', 'apple-test', 'suspend', NULL, '550 5.7.1 go away', $T - 60000, $T + 7200000, 0);
INSERT INTO rule_actions (provider, rule, action, rate_per_min, reason, started_ms, expires_ms, manual)
  VALUES ('comcast', 'old', 'throttle', 1, 'long ago', $T - 7200000, $T - 60000, 0);
INSERT INTO recipients (address, domain, state, next_at_ms, added_ms) VALUES
  ('a@gmail.com', 'gmail.com', 'pending', $T, $T), ('b@gmail.com', 'gmail.com', 'pending', $T, $T),
  ('c@yahoo.com', 'yahoo.com', 'done', $T, $T), ('d@corp.example', 'corp.example', 'suppressed', $T, $T);
EOF
t "status on a seeded state" 0 status --json
# 5/min x 1.5 per stage: stage 2 = 5 * 1.5 * 1.5.
js "gmail: no stored rate: the ramp's rate for stage 2 (11.25)" 'p["gmail"]["rate_per_min"] == 11.25 and p["gmail"]["stage"] == 2 and p["gmail"]["sending_day"] == 3'
js "gmail: sent today 120, cap of day 3 (its caps 300, 600: the last repeats)" 'p["gmail"]["sent_today"] == 120 and p["gmail"]["cap_today"] == 600'
js "gmail: last reply" 'p["gmail"]["last_reply"] == "250 2.0.0 OK queued"'
js "gmail: last reply time in +09:00" "p['gmail']['last_reply_at'] == '$(at -60)'"
js "corp: counted yesterday: 0 today" 'p["corp"]["sent_today"] == 0'
js "corp: today begins sending day 2: cap 1000" 'p["corp"]["cap_today"] == 1000'
js "corp: the stored rate after backoff" 'p["corp"]["rate_per_min"] == 7.5'
js "yahoo: backoff pause until now + 15m" "p['yahoo']['paused_until'] == '$(at 900)' and p['yahoo']['paused'] and not p['yahoo']['held']"
js "yahoo: the reason is the reply, marked backoff" 'p["yahoo"]["pause_reason"].startswith("backoff: ") and "[TSS04]" in p["yahoo"]["pause_reason"]'
js "yahoo: sending day 4: cap 2000 (the last repeats)" 'p["yahoo"]["cap_today"] == 2000 and p["yahoo"]["rate_per_min"] == 8.4375'
js "microsoft: an active throttle lowers the rate to 1" 'p["microsoft"]["rate_per_min"] == 1 and not p["microsoft"]["paused"]'
js "microsoft: the throttle is listed with its end" "p['microsoft']['actions'][0]['action'] == 'throttle' and p['microsoft']['actions'][0]['expires'] == '$(at 1800)'"
js "apple: a suspend rule pauses it until its end" "p['apple']['paused_until'] == '$(at 7200)' and 'suspend by rule apple-test' in p['apple']['pause_reason']"
js "apple: never sent: starting values" 'p["apple"]["stage"] == 0 and p["apple"]["rate_per_min"] == 5 and p["apple"]["cap_today"] == 500'
js "comcast: an expired throttle is ignored" 'p["comcast"]["rate_per_min"] == 5 and p["comcast"]["actions"] == []'
js "recipient counts" 'd["recipients"]["pending"] == 2 and d["recipients"]["done"] == 1 and d["recipients"]["suppressed"] == 1 and d["recipients"]["total"] == 4'
js "multi-line reply kept whole in JSON" 'p["microsoft"]["last_reply"].endswith("\r\n451 second line")'
t "status (human) on a seeded state" 0 status
wide=$(awk 'length($0) > 80' "$work/out" | wc -l)
if [ "$wide" -eq 0 ]; then ok "human output fits 80 columns"; else bad "human output has $wide lines over 80 columns"; awk 'length($0) > 80' "$work/out"; fi
out_has "human: gmail row" "gmail            2    3    11.25     120/600  -"
out_has "human: yahoo paused until" "until $(at 900)"
out_has "human: the throttle note" "  microsoft: throttled to 1/min until $(at 1800)"
out_has "human: the throttle's rule and reply" "    rule microsoft-server-busy: 451 4.7.500 Server busy"
out_has "human: a long reply goes under its label" "  microsoft: last reply $(at -5):"
out_has "human: a long reply is cut" "    451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S7771..."
out_has "human: the backoff pause and its reason" "  yahoo: backoff: 421 4.7.0 [TSS04] Messages from 192.0.2.10"
out_has "human: the suspension and its rule" "  apple: suspend by rule apple-test: 550 5.7.1 go away"
out_has "human: recipient counts" "recipients: 4 in all: 2 pending, 1 done, 1 suppressed"

t "resume yahoo (an automatic backoff pause)" 0 resume yahoo
out_has "resume: says it cleared the backoff pause" "cleared the backoff pause until $(at 900)"
t "resume microsoft (an automatic throttle)" 0 resume microsoft
out_has "resume: says it ended the throttle" "ended throttle to 1/min by rule microsoft-server-busy"
t "resume apple (a suspend, no provider row)" 0 resume apple
out_has "resume: says it ended the suspend" "ended suspend by rule apple-test until $(at 7200)"
t "status after resuming them" 0 status --json
js "yahoo no longer paused" 'not p["yahoo"]["paused"] and p["yahoo"]["paused_until"] is None'
js "microsoft back at its stored rate" 'p["microsoft"]["rate_per_min"] == 7.5'
js "apple no longer paused" 'not p["apple"]["paused"]'

# --- while a run holds the lock, or a write transaction ------------------------------------
# The store's run lock is flock(2) on "<db>.lock": hold it from another process.
# The holder gives up by itself after 30 s or when the work directory is gone, so that it never
# outlives the test, even if this script is killed.
# shellcheck disable=SC2016 # the inner script expands its own $0
flock -n "$db.lock" sh -c 'touch "$0.held"; i=0; while [ ! -e "$0.release" ] && [ -d "${0%/*}" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done' "$work/lk" &
bg_pids+=($!)
for _ in $(seq 300); do [ -e "$work/lk.held" ] && break; sleep 0.1; done
t "status while another process holds the run lock" 0 status --json
js "the lock is shown held (holder not recorded)" 'd["lock"] is not None and d["lock"]["pid"] is None'
sqlite3 "$db" "INSERT INTO run_lock (id, pid, hostname, acquired_ms) VALUES (1, 4242, 'mx1.test', $T - 300000)"
t "status with the holder recorded" 0 status --json
js "the holder: pid, host, since" "d['lock'] == {'pid': 4242, 'host': 'mx1.test', 'since': '$(at -300)'}"
t "status (human) with the holder" 0 status
out_has "human: who holds the lock" "run lock:   held by pid 4242 on mx1.test since $(at -300)"
t "pause while the run lock is held" 0 pause corp --for 1h
t "resume while the run lock is held" 0 resume corp
touch "$work/lk.release"
wait "${bg_pids[-1]}" 2>/dev/null
t "status after the lock was released" 0 status --json
js "a row left by a gone runner is not a holder" 'd["lock"] is None'

# A run writing: another connection holds a write transaction until told to let go (or 60 s);
# status reads at once, while the writer still holds it. Then the writer is told to commit
# 1 s later, and pause (busy timeout 5 s) waits for it.
"$PY" - "$db" "$work/tx" <<'EOF' &
import os, sqlite3, sys, time, pathlib
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
c.execute("UPDATE providers SET updated_ms = updated_ms + 1")
pathlib.Path(sys.argv[2] + ".held").touch()
end = time.time() + 60
while not os.path.exists(sys.argv[2] + ".release") and time.time() < end:
    time.sleep(0.05)
time.sleep(1)
c.execute("COMMIT")
pathlib.Path(sys.argv[2] + ".committed").touch()
EOF
bg_pids+=($!)
for _ in $(seq 300); do [ -e "$work/tx.held" ] && break; sleep 0.1; done
start=$(date +%s%N)
t "status during a write transaction" 0 status --json
took=$((($(date +%s%N) - start) / 1000000))
if [ ! -e "$work/tx.committed" ]; then ok "status did not wait for the writer (${took} ms)"; else bad "status waited ${took} ms for the writer"; fi
touch "$work/tx.release"
t "pause waits for the writer, then succeeds" 0 pause gmail --for 1h
wait "${bg_pids[-1]}" 2>/dev/null

# --- errors ---------------------------------------------------------------------------------
printf 'not a database, just text that is long enough to look like a header ............\n' >bad.db
t "status with a state file that is not SQLite" 74 --db "$work/bad.db" status
"$IPWARM" -p "$work/none.yaml" status >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 66 ]; then ok "status without a plan: exit 66"; else bad "status without a plan: exit $rc, expected 66"; fi

# --- the shipped systemd units --------------------------------------------------------------
# systemd-analyze verify checks the syntax, the binary and the man pages the units name: point
# ExecStart at the binary under test and the man path at the source tree's pages.
units=${SRCDIR:-}/config/systemd
if [ -n "${SRCDIR:-}" ] && [ -f "$units/ipwarm.service" ]; then
  unit_has() { # unit_has DESCRIPTION FILE LINE: FILE has exactly LINE
    if grep -qxF -- "$3" "$2"; then ok "$1"; else bad "$1: $2 lacks '$3'"; fi
  }
  unit_has "ipwarm.service runs one tick quietly" "$units/ipwarm.service" \
    'ExecStart=/usr/local/bin/ipwarm -q -p /etc/ipwarm/ipwarm.yaml run --once'
  unit_has "ipwarm.service: exit 75 is success" "$units/ipwarm.service" 'SuccessExitStatus=75'
  unit_has "ipwarm.service: oneshot" "$units/ipwarm.service" 'Type=oneshot'
  unit_has "ipwarm.service: writes only its state" "$units/ipwarm.service" 'ReadWritePaths=/var/lib/ipwarm'
  unit_has "ipwarm.timer: every minute" "$units/ipwarm.timer" 'OnCalendar=*-*-* *:*:00'
  if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$work/units" "$work/man/man1" "$work/man/man5"
    cp "$SRCDIR/docs/man/ipwarm.1" "$work/man/man1/"
    cp "$SRCDIR/docs/man/ipwarm-plan.5" "$work/man/man5/"
    for u in ipwarm ipwarm-metrics; do
      sed "s|^ExecStart=/usr/local/bin/ipwarm |ExecStart=$IPWARM |" "$units/$u.service" >"$work/units/$u.service"
      cp "$units/$u.timer" "$work/units/"
    done
    if (cd "$work/units" && MANPATH="$work/man" systemd-analyze verify ./ipwarm.timer ./ipwarm.service \
      ./ipwarm-metrics.timer ./ipwarm-metrics.service) >"$work/verify.log" 2>&1; then
      ok "systemd-analyze verify accepts the units"
    else
      bad "systemd-analyze verify"; sed 's/^/    /' "$work/verify.log" | head -10
    fi
  else
    echo "skip: systemd-analyze not installed"
  fi
fi

finish
