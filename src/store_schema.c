/*
 * store_schema: the state file's schema, as the ordered list of forward migrations (see
 * docs/schema.md), and the step that applies one of them.
 *
 * To change the schema, append a script (version N+1 is entry N) and describe it in
 * docs/schema.md; never edit a script that has shipped, since files written by it exist.
 * store_open (store.c) reads PRAGMA user_version and calls store_schema_migrate for each
 * missing version, each in its own transaction.
 */
#include "store_db.h"

/* ---- schema ---- */

/*
 * Version 1: the whole first schema. To change the schema, append a script (version N+1 is
 * entry N) and describe it in docs/schema.md; never edit a script that has shipped, since files
 * written by it exist. The CHECK lists repeat the sets validated in C (store_attempts.c,
 * store_queue.c, store_lanes.c) on purpose: the C checks give a clear sentence, the CHECKs keep
 * the file consistent whoever writes it.
 */
static const char SCHEMA_V1[] =
    "CREATE TABLE attempts (\n"
    "  id          INTEGER PRIMARY KEY,\n"
    "  started_ms  INTEGER NOT NULL,\n"
    "  finished_ms INTEGER,\n"
    "  recipient   TEXT NOT NULL,\n"
    "  domain      TEXT NOT NULL,\n"
    "  provider    TEXT NOT NULL,\n"
    "  mx          TEXT,\n"
    "  source_ip   TEXT,\n"
    "  message_id  TEXT,\n"
    "  phase       TEXT CHECK (phase IN ('connect','ehlo','starttls','auth','mail','rcpt',"
    "'data','quit')),\n"
    "  code        INTEGER CHECK (code BETWEEN 100 AND 599),\n"
    "  enhanced    TEXT,\n"
    "  text        TEXT,\n"
    "  outcome     TEXT NOT NULL DEFAULT 'in-flight' CHECK (outcome IN ('in-flight','delivered',"
    "'deferred','bounced','failed','expired','unknown')),\n"
    "  retry_no    INTEGER NOT NULL DEFAULT 0 CHECK (retry_no >= 0),\n"
    "  dry_run     INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1))\n"
    ");\n"
    "CREATE INDEX attempts_recipient ON attempts(recipient, started_ms);\n"
    "CREATE INDEX attempts_started ON attempts(started_ms);\n"
    "CREATE INDEX attempts_in_flight ON attempts(outcome) WHERE outcome = 'in-flight';\n"
    /* Only refused replies: store_attempts_since() reads nothing else, so a tick reads the
     * last hour's refusals, not the last hour's attempts (bench/scale.sh: 1,537 pages read by
     * an idle tick, 77 with it), and a delivered message writes one index less. */
    "CREATE INDEX attempts_provider ON attempts(provider, started_ms) WHERE code >= 400;\n"
    "\n"
    "CREATE TABLE summary_hourly (\n"
    "  provider  TEXT NOT NULL,\n"
    "  hour_ms   INTEGER NOT NULL,\n"
    "  attempts  INTEGER NOT NULL DEFAULT 0,\n"
    "  delivered INTEGER NOT NULL DEFAULT 0,\n"
    "  deferred  INTEGER NOT NULL DEFAULT 0,\n"
    "  bounced   INTEGER NOT NULL DEFAULT 0,\n"
    "  failed    INTEGER NOT NULL DEFAULT 0,\n"
    "  expired   INTEGER NOT NULL DEFAULT 0,\n"
    "  unknown   INTEGER NOT NULL DEFAULT 0,\n"
    "  PRIMARY KEY (provider, hour_ms)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX summary_hourly_hour ON summary_hourly(hour_ms);\n"
    "\n"
    "CREATE TABLE summary_reasons (\n"
    "  provider  TEXT NOT NULL,\n"
    "  hour_ms   INTEGER NOT NULL,\n"
    "  outcome   TEXT NOT NULL CHECK (outcome IN ('deferred','bounced','failed')),\n"
    "  code      INTEGER NOT NULL DEFAULT 0,\n"
    "  enhanced  TEXT NOT NULL DEFAULT '',\n"
    "  text      TEXT NOT NULL DEFAULT '',\n"
    "  count     INTEGER NOT NULL DEFAULT 0,\n"
    "  PRIMARY KEY (provider, hour_ms, outcome, code, enhanced, text)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX summary_reasons_hour ON summary_reasons(hour_ms);\n"
    "\n"
    "CREATE TABLE recipients (\n"
    "  id               INTEGER PRIMARY KEY,\n"
    "  address          TEXT NOT NULL UNIQUE,\n"
    "  domain           TEXT NOT NULL,\n"
    "  provider         TEXT,\n"
    "  state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','done',"
    "'suppressed','expired','held')),\n"
    "  next_at_ms       INTEGER NOT NULL,\n"
    "  retries          INTEGER NOT NULL DEFAULT 0 CHECK (retries >= 0),\n"
    "  reason           TEXT,\n"
    "  first_attempt_ms INTEGER,\n"
    "  last_attempt_ms  INTEGER,\n"
    "  last_outcome     TEXT CHECK (last_outcome IN ('in-flight','delivered','deferred',"
    "'bounced','failed','expired','unknown')),\n"
    "  cycle            INTEGER NOT NULL DEFAULT 0 CHECK (cycle >= 0),\n"
    "  added_ms         INTEGER NOT NULL,\n"
    "  list_offset      INTEGER,\n"
    "  list_line        INTEGER\n"
    ");\n"
    "CREATE INDEX recipients_due ON recipients(next_at_ms) WHERE state = 'pending';\n"
    "CREATE INDEX recipients_due_provider ON recipients(provider, next_at_ms)"
    " WHERE state = 'pending';\n"
    "\n"
    "CREATE TABLE providers (\n"
    "  name             TEXT PRIMARY KEY,\n"
    "  stage            INTEGER NOT NULL DEFAULT 0,\n"
    "  sending_day      INTEGER NOT NULL DEFAULT 0,\n"
    "  sending_day_date TEXT CHECK (sending_day_date GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),\n"
    "  rate_per_min     REAL NOT NULL DEFAULT 0,\n"
    "  sent_today       INTEGER NOT NULL DEFAULT 0,\n"
    "  sent_today_date  TEXT CHECK (sent_today_date GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),\n"
    "  paused_until_ms  INTEGER,\n"
    "  pause_reason     TEXT,\n"
    "  pause_level      INTEGER NOT NULL DEFAULT 0,\n"
    "  pause_manual     INTEGER NOT NULL DEFAULT 0 CHECK (pause_manual IN (0, 1)),\n"
    "  last_deferral_ms INTEGER,\n"
    "  rate_changed_ms  INTEGER,\n"
    "  last_reply       TEXT,\n"
    "  last_reply_ms    INTEGER,\n"
    "  next_send_ms     INTEGER,\n"
    "  updated_ms       INTEGER NOT NULL,\n"
    "  pace_anchor_ms   INTEGER,\n"
    "  pace_n           INTEGER NOT NULL DEFAULT 0,\n"
    "  pace_rate        REAL NOT NULL DEFAULT 0\n"
    ");\n"
    "\n"
    "CREATE TABLE rule_actions (\n"
    "  id           INTEGER PRIMARY KEY,\n"
    "  provider     TEXT NOT NULL,\n"
    "  rule         TEXT NOT NULL,\n"
    "  action       TEXT NOT NULL CHECK (action IN ('throttle','suspend','bounce','pause')),\n"
    "  rate_per_min REAL,\n"
    "  reason       TEXT,\n"
    "  started_ms   INTEGER NOT NULL,\n"
    "  expires_ms   INTEGER,\n"
    "  manual       INTEGER NOT NULL DEFAULT 0 CHECK (manual IN (0, 1))\n"
    ");\n"
    "CREATE INDEX rule_actions_provider ON rule_actions(provider, expires_ms);\n"
    "\n"
    "CREATE TABLE mx_cache (\n"
    "  domain     TEXT PRIMARY KEY COLLATE NOCASE,\n"
    "  status     TEXT NOT NULL,\n"
    "  provider   TEXT,\n"
    "  hosts_json TEXT NOT NULL DEFAULT '[]',\n"
    "  fetched_ms INTEGER NOT NULL,\n"
    "  expires_ms INTEGER NOT NULL\n"
    ");\n"
    "\n"
    "CREATE TABLE preflight_runs (\n"
    "  id     INTEGER PRIMARY KEY,\n"
    "  run_ms INTEGER NOT NULL,\n"
    "  ok     INTEGER NOT NULL CHECK (ok IN (0, 1)),\n"
    "  json   TEXT NOT NULL\n"
    ");\n"
    "CREATE INDEX preflight_runs_time ON preflight_runs(run_ms);\n"
    "\n"
    "CREATE TABLE meta (\n"
    "  key   TEXT PRIMARY KEY,\n"
    "  value TEXT\n"
    ");\n"
    "\n"
    "CREATE TABLE run_lock (\n"
    "  id          INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  pid         INTEGER NOT NULL,\n"
    "  hostname    TEXT NOT NULL,\n"
    "  acquired_ms INTEGER NOT NULL\n"
    ");\n";

/*
 * Version 2. SQLite cannot change a CHECK constraint or a column's collation in place, so the
 * tables whose CHECK lists outcomes or states are rebuilt the documented way (create the new
 * table, copy the rows, drop the old one, rename the new one, create its indexes again), all in
 * the migration's transaction. The schema has no foreign keys, triggers or views that a rename
 * would have to follow.
 *  - attempts: outcome 'blocked' (refused because of the sender: our IP or domain); recipient
 *    compared without regard to case, so `trace` finds an address however it is written.
 *  - summary_hourly: a blocked counter; summary_reasons: outcome 'blocked'.
 *  - recipients: one row per address compared without regard to case (case duplicates merged:
 *    the row with the most progress is kept); states 'removed' (no longer in the recipient list)
 *    and 'skipped' (set aside for a local reason); last_outcome 'blocked'; list_scan,
 *    list_digest and removed_state for reading a list that changed. Rows that version 1 left
 *    wrong are repaired: a recipient held (or marked in flight) only because of a dry-run
 *    attempt gets its last real outcome back and is pending again, and one suppressed for a
 *    local reason (no SMTP reply: a bad list value or a domain that cannot receive mail) is
 *    skipped instead, so that it comes back when its list line changes.
 */
static const char SCHEMA_V2[] =
    "CREATE TABLE attempts_v2 (\n"
    "  id          INTEGER PRIMARY KEY,\n"
    "  started_ms  INTEGER NOT NULL,\n"
    "  finished_ms INTEGER,\n"
    "  recipient   TEXT NOT NULL COLLATE NOCASE,\n"
    "  domain      TEXT NOT NULL,\n"
    "  provider    TEXT NOT NULL,\n"
    "  mx          TEXT,\n"
    "  source_ip   TEXT,\n"
    "  message_id  TEXT,\n"
    "  phase       TEXT CHECK (phase IN ('connect','ehlo','starttls','auth','mail','rcpt',"
    "'data','quit')),\n"
    "  code        INTEGER CHECK (code BETWEEN 100 AND 599),\n"
    "  enhanced    TEXT,\n"
    "  text        TEXT,\n"
    "  outcome     TEXT NOT NULL DEFAULT 'in-flight' CHECK (outcome IN ('in-flight','delivered',"
    "'deferred','bounced','failed','expired','unknown','blocked')),\n"
    "  retry_no    INTEGER NOT NULL DEFAULT 0 CHECK (retry_no >= 0),\n"
    "  dry_run     INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1))\n"
    ");\n"
    "INSERT INTO attempts_v2 (id, started_ms, finished_ms, recipient, domain, provider, mx, "
    "source_ip, message_id, phase, code, enhanced, text, outcome, retry_no, dry_run) "
    "SELECT id, started_ms, finished_ms, recipient, domain, provider, mx, source_ip, message_id, "
    "phase, code, enhanced, text, outcome, retry_no, dry_run FROM attempts;\n"
    "DROP TABLE attempts;\n"
    "ALTER TABLE attempts_v2 RENAME TO attempts;\n"
    "CREATE INDEX attempts_recipient ON attempts(recipient, started_ms);\n"
    "CREATE INDEX attempts_started ON attempts(started_ms);\n"
    "CREATE INDEX attempts_in_flight ON attempts(outcome) WHERE outcome = 'in-flight';\n"
    "CREATE INDEX attempts_provider ON attempts(provider, started_ms) WHERE code >= 400;\n"
    "\n"
    "ALTER TABLE summary_hourly ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;\n"
    "\n"
    "CREATE TABLE summary_reasons_v2 (\n"
    "  provider  TEXT NOT NULL,\n"
    "  hour_ms   INTEGER NOT NULL,\n"
    "  outcome   TEXT NOT NULL CHECK (outcome IN ('deferred','bounced','failed','blocked')),\n"
    "  code      INTEGER NOT NULL DEFAULT 0,\n"
    "  enhanced  TEXT NOT NULL DEFAULT '',\n"
    "  text      TEXT NOT NULL DEFAULT '',\n"
    "  count     INTEGER NOT NULL DEFAULT 0,\n"
    "  PRIMARY KEY (provider, hour_ms, outcome, code, enhanced, text)\n"
    ") WITHOUT ROWID;\n"
    "INSERT INTO summary_reasons_v2 (provider, hour_ms, outcome, code, enhanced, text, count) "
    "SELECT provider, hour_ms, outcome, code, enhanced, text, count FROM summary_reasons;\n"
    "DROP TABLE summary_reasons;\n"
    "ALTER TABLE summary_reasons_v2 RENAME TO summary_reasons;\n"
    "CREATE INDEX summary_reasons_hour ON summary_reasons(hour_ms);\n"
    "\n"
    "CREATE TABLE recipients_v2 (\n"
    "  id               INTEGER PRIMARY KEY,\n"
    "  address          TEXT NOT NULL COLLATE NOCASE UNIQUE,\n"
    "  domain           TEXT NOT NULL,\n"
    "  provider         TEXT,\n"
    "  state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','done',"
    "'suppressed','expired','held','removed','skipped')),\n"
    "  next_at_ms       INTEGER NOT NULL,\n"
    "  retries          INTEGER NOT NULL DEFAULT 0 CHECK (retries >= 0),\n"
    "  reason           TEXT,\n"
    "  first_attempt_ms INTEGER,\n"
    "  last_attempt_ms  INTEGER,\n"
    "  last_outcome     TEXT CHECK (last_outcome IN ('in-flight','delivered','deferred',"
    "'bounced','failed','expired','unknown','blocked')),\n"
    "  cycle            INTEGER NOT NULL DEFAULT 0 CHECK (cycle >= 0),\n"
    "  added_ms         INTEGER NOT NULL,\n"
    "  list_offset      INTEGER,\n"
    "  list_line        INTEGER,\n"
    "  list_scan        INTEGER,\n"
    "  list_digest      INTEGER,\n"
    "  removed_state    TEXT CHECK (removed_state IN ('pending','held'))\n"
    ");\n"
    /* Of addresses that differ only in case, the row with the most progress stays: a final
     * state (done, suppressed, expired) before held before one that was tried before one
     * never tried; then the first queued. Its spelling is the one its attempts used. */
    "INSERT INTO recipients_v2 (id, address, domain, provider, state, next_at_ms, retries, "
    "reason, first_attempt_ms, last_attempt_ms, last_outcome, cycle, added_ms, list_offset, "
    "list_line) "
    "SELECT id, address, domain, provider, state, next_at_ms, retries, reason, "
    "first_attempt_ms, last_attempt_ms, last_outcome, cycle, added_ms, list_offset, list_line "
    "FROM (SELECT *, row_number() OVER (PARTITION BY lower(address) ORDER BY "
    "CASE state WHEN 'done' THEN 5 WHEN 'suppressed' THEN 4 WHEN 'expired' THEN 3 "
    "WHEN 'held' THEN 2 ELSE 1 END DESC, last_attempt_ms IS NOT NULL DESC, retries DESC, id) "
    "AS k FROM recipients) WHERE k = 1;\n"
    "DROP TABLE recipients;\n"
    "ALTER TABLE recipients_v2 RENAME TO recipients;\n"
    "CREATE INDEX recipients_due ON recipients(next_at_ms) WHERE state = 'pending';\n"
    "CREATE INDEX recipients_due_provider ON recipients(provider, next_at_ms)"
    " WHERE state = 'pending';\n"
    /* Version 1 stamped dry-run attempts on the queue, so a later real run held recipients
     * that nothing was ever sent to. Where a recipient's latest attempt is a dry run, its
     * last attempt and outcome become those of its latest real attempt (none: cleared), and
     * a hold goes. */
    "UPDATE recipients SET "
    "state = CASE WHEN state = 'held' THEN 'pending' ELSE state END, "
    "reason = CASE WHEN state = 'held' THEN NULL ELSE reason END, "
    "last_outcome = (SELECT a.outcome FROM attempts a WHERE a.recipient = recipients.address "
    "AND a.dry_run = 0 ORDER BY a.started_ms DESC, a.id DESC LIMIT 1), "
    "last_attempt_ms = (SELECT a.started_ms FROM attempts a WHERE a.recipient = "
    "recipients.address AND a.dry_run = 0 ORDER BY a.started_ms DESC, a.id DESC LIMIT 1), "
    "first_attempt_ms = CASE WHEN EXISTS (SELECT 1 FROM attempts a WHERE a.recipient = "
    "recipients.address AND a.dry_run = 0) THEN first_attempt_ms END "
    "WHERE state IN ('pending','held') AND (SELECT a.dry_run FROM attempts a WHERE "
    "a.recipient = recipients.address ORDER BY a.started_ms DESC, a.id DESC LIMIT 1) = 1;\n"
    /* Suppressed without any SMTP reply (at import, or by a local attempt: no MX host, no
     * code): a local reason, which a fixed list line or DNS cures. */
    "UPDATE recipients SET state = 'skipped' WHERE state = 'suppressed' AND coalesce(("
    "SELECT a.mx IS NULL AND a.code IS NULL AND a.outcome = 'bounced' FROM attempts a "
    "WHERE a.recipient = recipients.address AND a.dry_run = 0 "
    "ORDER BY a.started_ms DESC, a.id DESC LIMIT 1), 1);\n";

/*
 * Version 3: what comes back after the 250 (late bounces and complaint reports read over IMAP).
 *  - attempts.mail_from: the envelope sender the attempt used (a VERP address names the
 *    attempt), and an index on message_id, by which a report is matched to its attempts;
 *  - summary_hourly: late_bounces (which also moves one from delivered to bounced) and
 *    complaints, both counted in the hour of the attempt they answer;
 *  - feedback_mailboxes: where each mailbox's last poll stopped (UIDVALIDITY, last UID);
 *  - feedback_reports: every message read, once (digest: the report's own Message-ID, else a
 *    SHA-256 of its bytes), with what it was, what it matched and its text when unmatched.
 */
static const char SCHEMA_V3[] =
    "ALTER TABLE attempts ADD COLUMN mail_from TEXT;\n"
    "CREATE INDEX attempts_message_id ON attempts(message_id) WHERE message_id IS NOT NULL;\n"
    "ALTER TABLE summary_hourly ADD COLUMN late_bounces INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE summary_hourly ADD COLUMN complaints INTEGER NOT NULL DEFAULT 0;\n"
    "CREATE TABLE feedback_mailboxes (\n"
    "  name        TEXT PRIMARY KEY,\n"
    "  uidvalidity INTEGER NOT NULL,\n"
    "  last_uid    INTEGER NOT NULL,\n"
    "  polled_ms   INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE feedback_reports (\n"
    "  id            INTEGER PRIMARY KEY,\n"
    "  read_ms       INTEGER NOT NULL,\n"
    "  mailbox       TEXT NOT NULL,\n"
    "  uidvalidity   INTEGER,\n"
    "  uid           INTEGER,\n"
    "  digest        TEXT NOT NULL UNIQUE,\n"
    "  kind          TEXT NOT NULL CHECK (kind IN ('bounce','delay','complaint','other')),\n"
    "  format        TEXT,\n"
    "  matched_by    TEXT CHECK (matched_by IN ('verp','message-id','header')),\n"
    "  attempt_id    INTEGER,\n"
    "  recipient     TEXT COLLATE NOCASE,\n"
    "  provider      TEXT,\n"
    "  status        TEXT,\n"
    "  feedback_type TEXT,\n"
    "  text          TEXT\n"
    ");\n"
    "CREATE INDEX feedback_reports_attempt ON feedback_reports(attempt_id) "
    "WHERE attempt_id IS NOT NULL;\n"
    "CREATE INDEX feedback_reports_read ON feedback_reports(read_ms);\n";

/*
 * Version 4: inbox placement. placements holds where each copy sent to a seed mailbox was found
 * (inbox or junk, with the folder and the time), or that it was not found within 24 h
 * (missing). A delivered attempt to a seed without a row is still unknown.
 */
static const char SCHEMA_V4[] =
    "CREATE TABLE placements (\n"
    "  attempt_id INTEGER PRIMARY KEY,\n"
    "  seed       TEXT NOT NULL COLLATE NOCASE,\n"
    "  result     TEXT NOT NULL CHECK (result IN ('inbox','junk','missing')),\n"
    "  folder     TEXT,\n"
    "  found_ms   INTEGER NOT NULL\n"
    ");\n";

/*
 * Version 5: IP pools. Each (provider, source IP) pair is a lane with its own ramp, backoff and
 * pacing, so providers is keyed by (name, ip); its rows are copied into the new table with ip
 * '' (the provider's only lane: a campaign with one source IP keeps using it, and a pool's
 * first IP adopts it, see store_lane_load). rule_actions gains ip: '' acts on the provider as a
 * whole (every IP of the pool, as every existing action did), an address acts on that IP only.
 */
static const char SCHEMA_V5[] =
    "CREATE TABLE providers_v5 (\n"
    "  name             TEXT NOT NULL,\n"
    "  ip               TEXT NOT NULL DEFAULT '',\n"
    "  stage            INTEGER NOT NULL DEFAULT 0,\n"
    "  sending_day      INTEGER NOT NULL DEFAULT 0,\n"
    "  sending_day_date TEXT CHECK (sending_day_date GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),\n"
    "  rate_per_min     REAL NOT NULL DEFAULT 0,\n"
    "  sent_today       INTEGER NOT NULL DEFAULT 0,\n"
    "  sent_today_date  TEXT CHECK (sent_today_date GLOB "
    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),\n"
    "  paused_until_ms  INTEGER,\n"
    "  pause_reason     TEXT,\n"
    "  pause_level      INTEGER NOT NULL DEFAULT 0,\n"
    "  pause_manual     INTEGER NOT NULL DEFAULT 0 CHECK (pause_manual IN (0, 1)),\n"
    "  last_deferral_ms INTEGER,\n"
    "  rate_changed_ms  INTEGER,\n"
    "  last_reply       TEXT,\n"
    "  last_reply_ms    INTEGER,\n"
    "  next_send_ms     INTEGER,\n"
    "  updated_ms       INTEGER NOT NULL,\n"
    "  pace_anchor_ms   INTEGER,\n"
    "  pace_n           INTEGER NOT NULL DEFAULT 0,\n"
    "  pace_rate        REAL NOT NULL DEFAULT 0,\n"
    "  PRIMARY KEY (name, ip)\n"
    ");\n"
    "INSERT INTO providers_v5 (name, ip, stage, sending_day, sending_day_date, rate_per_min, "
    "sent_today, sent_today_date, paused_until_ms, pause_reason, pause_level, pause_manual, "
    "last_deferral_ms, rate_changed_ms, last_reply, last_reply_ms, next_send_ms, updated_ms, "
    "pace_anchor_ms, pace_n, pace_rate) "
    "SELECT name, '', stage, sending_day, sending_day_date, rate_per_min, sent_today, "
    "sent_today_date, paused_until_ms, pause_reason, pause_level, pause_manual, "
    "last_deferral_ms, rate_changed_ms, last_reply, last_reply_ms, next_send_ms, updated_ms, "
    "pace_anchor_ms, pace_n, pace_rate FROM providers;\n"
    "DROP TABLE providers;\n"
    "ALTER TABLE providers_v5 RENAME TO providers;\n"
    "ALTER TABLE rule_actions ADD COLUMN ip TEXT NOT NULL DEFAULT '';\n";

/*
 * Version 6. Each CHECK that names a set of three or more values (`phase IN ('connect', ...)`)
 * becomes the same test written as comparisons (`(phase = 'connect' OR ...)`). SQLite evaluates
 * a constant IN list of more than two values by building a temporary B-tree of the list, on
 * every execution of every statement that writes the column (eight such trees per message
 * sent): a quarter of SQLite's time in bench/'s throughput run. The comparisons accept
 * and refuse exactly the same values, rows included, so nothing on disk changes and the
 * tables are edited in place, as SQLite documents for CHECK changes ("Making Other Kinds Of
 * Table Schema Changes"): the text in sqlite_schema is rewritten, RESET makes this connection
 * parse it again, and store_schema_migrate moves the schema version on so that every other
 * connection does too. A text that does not match (a file edited by hand) is left as it was:
 * only slower.
 */
static const char SCHEMA_V6[] =
    "PRAGMA writable_schema = ON;\n"
    "UPDATE sqlite_schema SET sql = replace(sql, 'phase IN (''connect'',''ehlo'',"
    "''starttls'',''auth'',''mail'',''rcpt'',''data'',''quit'')', '(phase = ''connect'' OR "
    "phase = ''ehlo'' OR phase = ''starttls'' OR phase = ''auth'' OR phase = ''mail'' OR "
    "phase = ''rcpt'' OR phase = ''data'' OR phase = ''quit'')') WHERE type = 'table' AND "
    "name = 'attempts';\n"
    "UPDATE sqlite_schema SET sql = replace(sql, 'outcome IN (''in-flight'',''delivered'',"
    "''deferred'',''bounced'',''failed'',''expired'',''unknown'',''blocked'')', '(outcome = "
    "''in-flight'' OR outcome = ''delivered'' OR outcome = ''deferred'' OR outcome = "
    "''bounced'' OR outcome = ''failed'' OR outcome = ''expired'' OR outcome = ''unknown'' "
    "OR outcome = ''blocked'')') WHERE type = 'table' AND name = 'attempts';\n"
    "UPDATE sqlite_schema SET sql = replace(sql, 'kind IN (''bounce'',''delay'',"
    "''complaint'',''other'')', '(kind = ''bounce'' OR kind = ''delay'' OR kind = "
    "''complaint'' OR kind = ''other'')') WHERE type = 'table' AND name = "
    "'feedback_reports';\n"
    "UPDATE sqlite_schema SET sql = replace(sql, 'matched_by IN (''verp'',''message-id'',"
    "''header'')', '(matched_by = ''verp'' OR matched_by = ''message-id'' OR matched_by = "
    "''header'')') WHERE type = 'table' AND name = 'feedback_reports';\n"
    "UPDATE sqlite_schema SET sql = replace(sql, 'result IN (''inbox'',''junk'',"
    "''missing'')', '(result = ''inbox'' OR result = ''junk'' OR result = ''missing'')') "
    "WHERE type = 'table' AND name = 'placements';\n"
    "UPDATE sqlite_schema SET sql = replace(sql, 'state IN (''pending'',''done'',"
    "''suppressed'',''expired'',''held'',''removed'',''skipped'')', '(state = ''pending'' OR "
    "state = ''done'' OR state = ''suppressed'' OR state = ''expired'' OR state = ''held'' "
    "OR state = ''removed'' OR state = ''skipped'')') WHERE type = 'table' AND name = "
    "'recipients';\n"
    "UPDATE sqlite_schema SET sql = replace(sql, 'last_outcome IN (''in-flight'',"
    "''delivered'',''deferred'',''bounced'',''failed'',''expired'',''unknown'',''blocked'')',"
    " '(last_outcome = ''in-flight'' OR last_outcome = ''delivered'' OR last_outcome = "
    "''deferred'' OR last_outcome = ''bounced'' OR last_outcome = ''failed'' OR last_outcome "
    "= ''expired'' OR last_outcome = ''unknown'' OR last_outcome = ''blocked'')') WHERE type "
    "= 'table' AND name = 'recipients';\n"
    "UPDATE sqlite_schema SET sql = replace(sql, 'action IN (''throttle'',''suspend'',"
    "''bounce'',''pause'')', '(action = ''throttle'' OR action = ''suspend'' OR action = "
    "''bounce'' OR action = ''pause'')') WHERE type = 'table' AND name = 'rule_actions';\n"
    "UPDATE sqlite_schema SET sql = replace(sql, 'outcome IN (''deferred'',''bounced'',"
    "''failed'',''blocked'')', '(outcome = ''deferred'' OR outcome = ''bounced'' OR outcome "
    "= ''failed'' OR outcome = ''blocked'')') WHERE type = 'table' AND name = "
    "'summary_reasons';\n"
    "PRAGMA writable_schema = RESET;\n";

/* Entry i migrates version i to version i + 1. */
static const char *const MIGRATIONS[] = {
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6,
};

#define N_MIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

int store_schema_version(void)
{
    return N_MIGRATIONS;
}

/* Applies migration number v (1-based) in its own transaction, unless another process did. */
ipw_status store_schema_migrate(struct store *st, int v, struct err *e)
{
    char doing[64];
    snprintf(doing, sizeof doing, "migrate to schema version %d", v);
    ipw_status r = store_tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    /* Read again under the write lock: a concurrent opener may have migrated meanwhile. */
    int64_t cur = 0;
    r = store_query_int(st, "PRAGMA user_version", &cur, doing, e);
    if (r != IPW_OK || cur >= v)
        return store_tx_end(st, r, doing, e);
    r = store_exec_sql(st, MIGRATIONS[v - 1], doing, e);
    /* A migration may edit sqlite_schema itself (version 6): moving the schema version on makes
     * every other connection parse the schema again before its next statement. After DDL the
     * extra step is harmless. */
    int64_t cookie = 0;
    if (r == IPW_OK)
        r = store_query_int(st, "PRAGMA schema_version", &cookie, doing, e);
    if (r == IPW_OK) {
        /* PRAGMAs take no parameters; both numbers are our own constants, not input. */
        char sql[160];
        snprintf(sql, sizeof sql,
                 "PRAGMA application_id = %d; PRAGMA user_version = %d; "
                 "PRAGMA schema_version = %lld",
                 STORE_APP_ID, v, (long long)cookie + 1);
        r = store_exec_sql(st, sql, doing, e);
    }
    return store_tx_end(st, r, doing, e);
}
