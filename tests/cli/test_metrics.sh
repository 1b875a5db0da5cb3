#!/usr/bin/env bash
# `ipwarm metrics` is Prometheus text that Prometheus accepts: `promtool check metrics` (Debian
# package prometheus) passes on the test_stats scenario (tests/unit/test_stats.c --fill), on a
# state with no attempts, and on a plan whose campaign name needs escaping and whose daily caps
# give the cap gauge samples; promtool itself fails on a broken copy, so the check can fail.
# The file written with -o for node_exporter's textfile collector is the same text, ends with
# a line break, and is readable by others (the collector runs as another user).
# Environment: IPWARM, SRCDIR, BUILDDIR.
set -u
: "${IPWARM:?set IPWARM}" "${SRCDIR:?set SRCDIR}" "${BUILDDIR:?set BUILDDIR}"
. "$SRCDIR/tests/lib/need.sh" && need promtool sqlite3 unit:test_stats
. "$SRCDIR/tests/lib/assert.sh"
. "$SRCDIR/tests/lib/plans.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
unset IPWARM_PLAN

# promtool_ok DESCRIPTION FILE: promtool check metrics accepts FILE, with no lint problem.
promtool_ok() {
  if promtool check metrics <"$2" >"$2.lint" 2>&1; then
    ok "$1"
  else
    bad "$1"
    sed 's/^/    promtool: /' "$2.lint" | head -10
  fi
}

check "fill the scenario" plans_stats metrics-test
# Feedback read after the 250, as a poll records it: microsoft's first hour with bounces gets a
# late bounce and two complaints, and the feedback mailbox has been polled.
check "store feedback counters and a poll" sqlite3 state.db \
  "UPDATE summary_hourly SET late_bounces = 1, complaints = 2 WHERE provider = 'microsoft' AND hour_ms = (SELECT min(hour_ms) FROM summary_hourly WHERE provider = 'microsoft' AND bounced > 0);
   INSERT INTO feedback_mailboxes (name, uidvalidity, last_uid, polled_ms) VALUES ('imaps://imap.example.com/INBOX', 7, 42, 1796139600123);"
"$IPWARM" -p plan.yaml --now 2026-12-02T09:00:00+09:00 metrics >filled.prom 2>err
check "metrics of the scenario: exit 0" test $? -eq 0
check "... has the deferral counter" grep -qxF \
  'ipwarm_attempts_total{provider="microsoft",outcome="deferred"} 7' filled.prom
for prov in gmail microsoft; do
  for m in late_bounces complaints; do
    want=$(sqlite3 state.db "SELECT 'ipwarm_${m}_total{provider=\"$prov\"} ' || sum($m) FROM summary_hourly WHERE provider = '$prov'")
    check "... $want, as stored" grep -qxF "$want" filled.prom
  done
done
want=$(sqlite3 state.db "SELECT printf('ipwarm_feedback_poll_timestamp_seconds{mailbox=\"%s\"} %.3f', name, polled_ms / 1000.0) FROM feedback_mailboxes")
check "... $want, the mailbox's last poll as stored" grep -qxF "$want" filled.prom
promtool_ok "promtool accepts the metrics of the scenario" filled.prom

# Seeds (placement.h): three of the scenario's delivered microsoft recipients are seeds; one
# copy found in the inbox, one in junk, one not placed yet.
cp state.db seeds.db
{ sed 's/^state: .*/state: seeds.db/' plan.yaml
  echo 'seeds:'
  for a in r1 r2 r3; do
    echo "  - {address: $a@microsoft.example, url: \"imap://127.0.0.1:1\", username: $a, password_env: SEED_PW, tls: none}"
  done
} >seeds.yaml
check "record two placements" sqlite3 seeds.db \
  "INSERT INTO placements (attempt_id, seed, result, folder, found_ms) SELECT id, recipient, 'inbox', 'INBOX', started_ms + 60000 FROM attempts WHERE recipient = 'r1@microsoft.example' AND outcome = 'delivered';
   INSERT INTO placements (attempt_id, seed, result, folder, found_ms) SELECT id, recipient, 'junk', 'Junk Email', started_ms + 60000 FROM attempts WHERE recipient = 'r2@microsoft.example' AND outcome = 'delivered';"
"$IPWARM" -p seeds.yaml --now 2026-12-02T09:00:00+09:00 metrics >seeds.prom 2>err
check "metrics with seeds: exit 0 ($(tail -1 err))" test $? -eq 0
for folder in inbox junk missing; do
  want=$(sqlite3 seeds.db "SELECT 'ipwarm_placement_total{provider=\"microsoft\",folder=\"$folder\"} ' || count(*) FROM placements WHERE result = '$folder'")
  check "... $want, as stored" grep -qxF "$want" seeds.prom
done
want=$(sqlite3 seeds.db "SELECT 'ipwarm_placement_pending{provider=\"microsoft\"} ' || count(*) FROM attempts WHERE recipient IN ('r1@microsoft.example', 'r2@microsoft.example', 'r3@microsoft.example') AND outcome = 'delivered' AND id NOT IN (SELECT attempt_id FROM placements)")
check "... $want: the copies not placed yet" grep -qxF "$want" seeds.prom
check "... the inbox rate of the latest day, as a ratio (1 inbox of 2 placed)" \
  grep -qxF 'ipwarm_inbox_rate{provider="microsoft"} 0.5' seeds.prom
check "... no placement series for a provider without seed copies" bash -c "! grep -q 'ipwarm_placement_total{provider=\"gmail\"' seeds.prom"
promtool_ok "promtool accepts the metrics with seeds" seeds.prom
check "metrics without seeds have no placement series" bash -c "! grep -q '^ipwarm_placement\|^ipwarm_inbox_rate' filled.prom"

"$IPWARM" -p plan.yaml --db "$work/empty.db" metrics >empty.prom 2>err
check "metrics of an empty state: exit 0" test $? -eq 0
promtool_ok "promtool accepts the metrics of an empty state" empty.prom

# A campaign name with a quote, a backslash and UTF-8, and daily caps.
cat >odd.yaml <<'YAML'
campaign: "new \"ip\" \\ é"
timezone: Europe/Berlin
source: {ip: 192.0.2.10, helo: mx.example.com}
sender: {from: "News <news@example.com>"}
message: {subject: Hi, text_file: message.txt}
recipients: {file: seeds.csv}
state: odd.db
ramp: {daily_cap: [500, 1000]}
YAML
# A state file of its own: a state file belongs to one campaign.
check "fill a scenario for it" "$BUILDDIR/test_stats" --fill odd.db
"$IPWARM" -p odd.yaml --now 2026-12-02T09:00:00+09:00 metrics >odd.prom 2>err
check "metrics with an odd campaign name: exit 0" test $? -eq 0
check "... the name escaped as the text format wants" grep -qF \
  'ipwarm_info{campaign="new \"ip\" \\ é",timezone="Europe/Berlin"} 1' odd.prom
check "... cap gauge samples" grep -qE '^ipwarm_provider_cap_today\{provider="gmail"\} [0-9]+$' odd.prom
promtool_ok "promtool accepts them" odd.prom

# The check is live: promtool refuses a sample whose value is not a number.
{ cat filled.prom; echo 'ipwarm_info{campaign="x"} not-a-number'; } >broken.prom
if promtool check metrics <broken.prom >/dev/null 2>&1; then
  bad "promtool refuses a broken exposition"
else
  ok "promtool refuses a broken exposition"
fi

# -o FILE, as for node_exporter's textfile collector: same text, mode 0644 under umask 022.
(umask 022 && "$IPWARM" -p plan.yaml --now 2026-12-02T09:00:00+09:00 metrics -o "$work/ipwarm.prom")
check "metrics -o: exit 0" test $? -eq 0
check "metrics -o writes what stdout shows" cmp -s filled.prom ipwarm.prom
check "... ending with a line break" test "$(tail -c 1 ipwarm.prom | od -An -c | tr -d ' ')" = '\n'
check "... readable by the collector's user (0644)" test "$(stat -c %a ipwarm.prom)" = 644
promtool_ok "promtool accepts the -o file" ipwarm.prom
finish
