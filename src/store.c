/*
 * store: the SQLite state file (see store.h and docs/schema.md).
 *
 * Everything a run must not forget lives here, so that cron ticks continue where the previous
 * one stopped and a crash never loses a record. The file is opened in WAL mode (readers such as
 * `status` never block the runner), with synchronous=NORMAL (a commit is durable against a
 * process crash, and against power loss up to the last checkpoint), foreign keys on and a busy
 * timeout. The schema version is PRAGMA user_version; MIGRATIONS below is the ordered list of
 * forward scripts, and store_open applies each missing one in its own transaction. Every write
 * is one short BEGIN IMMEDIATE transaction: taking the write lock up front means a transaction
 * never has to upgrade from reader to writer halfway, which in SQLite fails without waiting.
 * Statements are prepared once per handle and kept, since the engine runs the same few for
 * every message. Values are always bound, never formatted into SQL.
 */
#include "ipwarm/store.h"
#include "ipwarm/stats_mask.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* PRAGMA application_id of an ipwarm state file: "IPWA". Lets open refuse other programs' files. */
#define STORE_APP_ID 0x49505741

#define HOUR_MS INT64_C(3600000)

/* Why a recipient is held (an SQL string literal): what `trace` and `status` show. */
#define STORE_HELD_REASON                                                                          \
    "'the run stopped while a message to this recipient was in flight; it may have been "          \
    "delivered, so it is not sent again until released (ipwarm release)'"

/* ---- schema ---- */

/*
 * Version 1: the whole first schema. To change the schema, append a script (version N+1 is
 * entry N) and describe it in docs/schema.md; never edit a script that has shipped, since files
 * written by it exist. The CHECK lists repeat the sets validated in C below on purpose: the C
 * checks give a clear sentence, the CHECKs keep the file consistent whoever writes it.
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

/* Entry i migrates version i to version i + 1. */
static const char *const MIGRATIONS[] = {
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5,
};

#define N_MIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

int store_schema_version(void)
{
    return N_MIGRATIONS;
}

/* ---- value sets (mirrored by the CHECK constraints above) ---- */

static const char *const PHASES[] = {"connect", "ehlo", "starttls", "auth",
                                     "mail",    "rcpt", "data",     "quit"};
/* What an attempt can end with; in-flight is only ever written by store_attempt_begin. */
/* In the order of summary_hourly's counter columns (Q_SUMMARY_ADD binds one per entry). */
static const char *const FINAL_OUTCOMES[] = {"delivered", "deferred", "bounced", "failed",
                                             "expired",   "unknown",  "blocked"};
static const char *const ALL_OUTCOMES[] = {"in-flight", "delivered", "deferred", "bounced",
                                           "failed",    "expired",   "unknown",  "blocked"};
/* The outcomes whose replies summary_reasons counts (the reasons `stats` ranks). */
static const char *const REASON_OUTCOMES[] = {"deferred", "bounced", "failed", "blocked"};
static const char *const RCPT_STATES[] = {"pending", "done",    "suppressed", "expired",
                                          "held",    "removed", "skipped"};
static const char *const ACTIONS[] = {"throttle", "suspend", "bounce", "pause"};

#define IN_SET(s, set) in_set((s), (set), sizeof(set) / sizeof((set)[0]))

static int in_set(const char *s, const char *const *set, size_t n)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return 1;
    return 0;
}

/* A local date as the plan's days are written: "YYYY-MM-DD" (NULL is fine: none yet). */
static int date_ok(const char *s)
{
    if (!s)
        return 1;
    for (int i = 0; i < 10; i++) {
        int want_dash = (i == 4 || i == 7);
        if (want_dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    return s[10] == '\0';
}

/* ---- prepared statements ---- */

enum q {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_USER_VERSION,
    Q_ATTEMPT_INSERT,
    Q_ATTEMPT_STAMP_RCPT,
    Q_ATTEMPT_FINISH,
    Q_SUMMARY_ADD,
    Q_RECOVER_SUMMARY,
    Q_RECOVER_MARK,
    Q_ATTEMPTS_OF_RCPT,
    Q_ATTEMPT_GET,
    Q_ATTEMPTS_COUNT_ALL,
    Q_ATTEMPTS_COUNT,
    Q_SUMMARY_EACH,
    Q_RCPT_ADD,
    Q_RCPT_SAVE,
    Q_RCPT_GET,
    Q_RCPT_RETRY,
    Q_RCPT_FINAL,
    Q_RCPT_NEXT_CYCLE,
    Q_RCPT_REQUEUE,
    Q_RCPT_DUE,
    Q_RCPT_DUE_PROVIDER,
    Q_RCPT_COUNT_ALL,
    Q_RCPT_COUNT,
    Q_PROV_SAVE,
    Q_PROV_LOAD,
    Q_PROV_EACH,
    Q_RULE_ADD,
    Q_RULES_ACTIVE,
    Q_RULES_ACTIVE_PROVIDER,
    Q_RULES_END,
    Q_RULES_PURGE,
    Q_MX_PUT,
    Q_MX_GET,
    Q_PREFLIGHT_ADD,
    Q_PREFLIGHT_LATEST,
    Q_LOCK_PUT,
    Q_LOCK_GET,
    Q_LOCK_CLEAR,
    Q_RCPT_QUEUE,
    Q_RECOVER_HOLD,
    Q_RCPT_SEEN,
    Q_RCPT_SWEEP,
    Q_RCPT_SKIP,
    Q_RCPT_RELEASE,
    Q_RCPT_RELEASE_HELD,
    Q_RCPT_PROVIDERS,
    Q_RCPT_DOMAINS,
    Q_RCPT_SET_PROVIDER,
    Q_RCPT_UNCONFIRMED,
    Q_ATTEMPTS_SINCE,
    Q_META_GET,
    Q_META_SET,
    Q_REASON_ADD,
    Q_REASONS_EACH,
    Q_RULES_EACH,
    Q_ATTEMPT_COUNTS,
    Q_LANES_RESUME,
    Q_COUNT
};

#define ATTEMPT_COLS                                                                               \
    "id, started_ms, finished_ms, recipient, domain, provider, mx, source_ip, message_id, phase, " \
    "code, enhanced, text, outcome, retry_no, dry_run, mail_from"
#define RCPT_COLS                                                                                  \
    "id, address, domain, provider, state, next_at_ms, retries, reason, first_attempt_ms, "        \
    "last_attempt_ms, last_outcome, cycle, added_ms, list_offset, list_line, list_scan, "          \
    "list_digest"
#define PROV_COLS                                                                                  \
    "name, stage, sending_day, sending_day_date, rate_per_min, sent_today, sent_today_date, "      \
    "paused_until_ms, pause_reason, pause_level, pause_manual, last_deferral_ms, "                 \
    "rate_changed_ms, last_reply, last_reply_ms, next_send_ms, updated_ms, pace_anchor_ms, "       \
    "pace_n, pace_rate, ip"
#define RULE_COLS                                                                                  \
    "id, provider, rule, action, rate_per_min, reason, started_ms, expires_ms, manual, ip"

static const char *const QSQL[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_USER_VERSION] = "PRAGMA user_version",
    [Q_ATTEMPT_INSERT] =
        "INSERT INTO attempts (started_ms, recipient, domain, provider, mx, source_ip, "
        "message_id, phase, retry_no, dry_run, mail_from, outcome) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'in-flight')",
    /* first_attempt_ms is set by the outcome (Q_RCPT_RETRY, Q_RCPT_FINAL), not here: an
     * attempt that ends blocked or requeued does not start the recipient's give-up clock. */
    [Q_ATTEMPT_STAMP_RCPT] = "UPDATE recipients SET last_attempt_ms = ?2, "
                             "last_outcome = 'in-flight' WHERE address = ?1",
    [Q_ATTEMPT_FINISH] = "UPDATE attempts SET finished_ms = ?2, phase = coalesce(?3, phase), "
                         "code = ?4, enhanced = ?5, text = ?6, outcome = ?7 "
                         "WHERE id = ?1 AND outcome = 'in-flight' "
                         "RETURNING provider, started_ms, dry_run, recipient",
    [Q_SUMMARY_ADD] =
        "INSERT INTO summary_hourly (provider, hour_ms, attempts, delivered, deferred, bounced, "
        "failed, expired, unknown, blocked) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT (provider, hour_ms) DO UPDATE SET attempts = attempts + 1, "
        "delivered = delivered + excluded.delivered, deferred = deferred + excluded.deferred, "
        "bounced = bounced + excluded.bounced, failed = failed + excluded.failed, "
        "expired = expired + excluded.expired, unknown = unknown + excluded.unknown, "
        "blocked = blocked + excluded.blocked",
    [Q_RECOVER_SUMMARY] =
        "INSERT INTO summary_hourly (provider, hour_ms, attempts, unknown) "
        "SELECT provider, (started_ms / 3600000) * 3600000, count(*), count(*) FROM attempts "
        "WHERE outcome = 'in-flight' AND dry_run = 0 GROUP BY 1, 2 "
        "ON CONFLICT (provider, hour_ms) DO UPDATE SET attempts = attempts + excluded.attempts, "
        "unknown = unknown + excluded.unknown",
    [Q_RECOVER_MARK] =
        "UPDATE attempts SET outcome = 'unknown', finished_ms = ?1, text = coalesce(text, "
        "'no outcome recorded: the run stopped while this attempt was in flight') "
        "WHERE outcome = 'in-flight'",
    [Q_ATTEMPTS_OF_RCPT] = "SELECT " ATTEMPT_COLS " FROM attempts WHERE recipient = ?1 "
                           "ORDER BY started_ms, id",
    [Q_ATTEMPT_GET] = "SELECT " ATTEMPT_COLS " FROM attempts WHERE id = ?1",
    [Q_ATTEMPTS_COUNT_ALL] = "SELECT count(*) FROM attempts",
    [Q_ATTEMPTS_COUNT] = "SELECT count(*) FROM attempts WHERE outcome = ?1",
    [Q_SUMMARY_EACH] =
        "SELECT provider, hour_ms, attempts, delivered, deferred, bounced, failed, expired, "
        "unknown, blocked, late_bounces, complaints FROM summary_hourly "
        "WHERE (?1 IS NULL OR provider = ?1) "
        "AND hour_ms >= ?2 AND hour_ms < ?3 ORDER BY hour_ms, provider",
    [Q_RCPT_ADD] = "INSERT INTO recipients (address, domain, provider, state, next_at_ms, "
                   "added_ms) VALUES (?1, ?2, ?3, 'pending', ?4, ?5) "
                   "ON CONFLICT (address) DO NOTHING",
    [Q_RCPT_SAVE] =
        "INSERT INTO recipients (address, domain, provider, state, next_at_ms, retries, reason, "
        "first_attempt_ms, last_attempt_ms, last_outcome, cycle, added_ms, list_offset, "
        "list_line, list_scan, list_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
        "?11, ?12, ?13, ?14, ?15, ?16) "
        "ON CONFLICT (address) DO UPDATE SET domain = excluded.domain, "
        "provider = excluded.provider, state = excluded.state, "
        "next_at_ms = excluded.next_at_ms, retries = excluded.retries, "
        "reason = excluded.reason, first_attempt_ms = excluded.first_attempt_ms, "
        "last_attempt_ms = excluded.last_attempt_ms, last_outcome = excluded.last_outcome, "
        "cycle = excluded.cycle, added_ms = excluded.added_ms, "
        "list_offset = excluded.list_offset, list_line = excluded.list_line, "
        "list_scan = excluded.list_scan, list_digest = excluded.list_digest",
    [Q_RCPT_GET] = "SELECT " RCPT_COLS " FROM recipients WHERE address = ?1",
    /* A recipient removed from the list while its attempt was in flight stays removed; one
     * suppressed meanwhile (a late bounce or a complaint read from the mailbox) stays
     * suppressed, here and in the steps below. */
    [Q_RCPT_RETRY] = "UPDATE recipients SET state = CASE WHEN state IN ('removed', "
                     "'suppressed') THEN state ELSE 'pending' END, next_at_ms = ?2, "
                     "retries = retries + 1, last_attempt_ms = ?3, "
                     "first_attempt_ms = coalesce(first_attempt_ms, ?3), last_outcome = ?4 "
                     "WHERE address = ?1",
    [Q_RCPT_FINAL] = "UPDATE recipients SET state = CASE WHEN state = 'suppressed' THEN "
                     "state ELSE ?2 END, reason = CASE WHEN state = 'suppressed' THEN reason "
                     "ELSE ?5 END, last_attempt_ms = ?3, "
                     "first_attempt_ms = coalesce(first_attempt_ms, ?3), last_outcome = ?4 "
                     "WHERE address = ?1",
    /* Not the recipient's fault (the sender was refused, the run could not set up): its retry
     * count and give-up clock stay as they were. */
    [Q_RCPT_REQUEUE] = "UPDATE recipients SET state = CASE WHEN state IN ('removed', "
                       "'suppressed') THEN state ELSE 'pending' END, next_at_ms = ?2, "
                       "last_attempt_ms = coalesce(?3, last_attempt_ms), "
                       "last_outcome = coalesce(?4, last_outcome), reason = ?5 "
                       "WHERE address = ?1",
    [Q_RCPT_NEXT_CYCLE] = "UPDATE recipients SET state = CASE WHEN state IN ('removed', "
                          "'suppressed') THEN state ELSE 'pending' END, next_at_ms = ?2, "
                          "retries = 0, cycle = cycle + 1, first_attempt_ms = NULL, "
                          "reason = NULL, last_attempt_ms = ?3, last_outcome = ?4 "
                          "WHERE address = ?1",
    /* state = 'pending' literally, so that the planner can use the partial indexes. */
    [Q_RCPT_DUE] = "SELECT " RCPT_COLS " FROM recipients WHERE state = 'pending' "
                   "AND next_at_ms <= ?1 ORDER BY next_at_ms, id LIMIT ?2",
    [Q_RCPT_DUE_PROVIDER] = "SELECT " RCPT_COLS " FROM recipients WHERE state = 'pending' "
                            "AND provider = ?3 AND next_at_ms <= ?1 "
                            "ORDER BY next_at_ms, id LIMIT ?2",
    [Q_RCPT_COUNT_ALL] = "SELECT count(*) FROM recipients",
    [Q_RCPT_COUNT] = "SELECT count(*) FROM recipients WHERE state = ?1",
    [Q_PROV_SAVE] =
        "INSERT INTO providers (" PROV_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
        "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) ON CONFLICT (name, ip) DO UPDATE "
        "SET "
        "stage = excluded.stage, sending_day = excluded.sending_day, "
        "sending_day_date = excluded.sending_day_date, rate_per_min = excluded.rate_per_min, "
        "sent_today = excluded.sent_today, sent_today_date = excluded.sent_today_date, "
        "paused_until_ms = excluded.paused_until_ms, pause_reason = excluded.pause_reason, "
        "pause_level = excluded.pause_level, pause_manual = excluded.pause_manual, "
        "last_deferral_ms = excluded.last_deferral_ms, "
        "rate_changed_ms = excluded.rate_changed_ms, last_reply = excluded.last_reply, "
        "last_reply_ms = excluded.last_reply_ms, next_send_ms = excluded.next_send_ms, "
        "updated_ms = excluded.updated_ms, pace_anchor_ms = excluded.pace_anchor_ms, "
        "pace_n = excluded.pace_n, pace_rate = excluded.pace_rate",
    [Q_PROV_LOAD] = "SELECT " PROV_COLS " FROM providers WHERE name = ?1 AND ip = ?2",
    [Q_PROV_EACH] = "SELECT " PROV_COLS " FROM providers ORDER BY name, ip",
    [Q_RULE_ADD] =
        "INSERT INTO rule_actions (provider, rule, action, rate_per_min, reason, "
        "started_ms, expires_ms, manual, ip) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_RULES_ACTIVE] = "SELECT " RULE_COLS " FROM rule_actions WHERE started_ms <= ?1 "
                       "AND (expires_ms IS NULL OR expires_ms > ?1) ORDER BY started_ms, id",
    [Q_RULES_ACTIVE_PROVIDER] = "SELECT " RULE_COLS " FROM rule_actions WHERE provider = ?2 "
                                "AND started_ms <= ?1 AND (expires_ms IS NULL OR expires_ms > ?1) "
                                "ORDER BY started_ms, id",
    [Q_RULES_END] = "UPDATE rule_actions SET expires_ms = ?2 WHERE provider = ?1 "
                    "AND started_ms <= ?2 AND (expires_ms IS NULL OR expires_ms > ?2) "
                    "AND (?3 = 0 OR manual = 1)",
    [Q_RULES_PURGE] = "DELETE FROM rule_actions WHERE expires_ms IS NOT NULL "
                      "AND expires_ms <= ?1",
    [Q_MX_PUT] = "INSERT INTO mx_cache (domain, status, provider, hosts_json, fetched_ms, "
                 "expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (domain) DO UPDATE "
                 "SET status = excluded.status, provider = excluded.provider, "
                 "hosts_json = excluded.hosts_json, fetched_ms = excluded.fetched_ms, "
                 "expires_ms = excluded.expires_ms",
    [Q_MX_GET] = "SELECT domain, status, provider, hosts_json, fetched_ms, expires_ms "
                 "FROM mx_cache WHERE domain = ?1 AND expires_ms > ?2",
    [Q_PREFLIGHT_ADD] = "INSERT INTO preflight_runs (run_ms, ok, json) VALUES (?1, ?2, ?3)",
    [Q_PREFLIGHT_LATEST] = "SELECT id, run_ms, ok, json FROM preflight_runs "
                           "ORDER BY run_ms DESC, id DESC LIMIT 1",
    [Q_LOCK_PUT] = "INSERT OR REPLACE INTO run_lock (id, pid, hostname, acquired_ms) "
                   "VALUES (1, ?1, ?2, ?3)",
    [Q_LOCK_GET] = "SELECT pid, hostname, acquired_ms FROM run_lock WHERE id = 1",
    [Q_LOCK_CLEAR] = "DELETE FROM run_lock WHERE pid = ?1 AND hostname = ?2",
    [Q_RCPT_QUEUE] = "INSERT INTO recipients (address, domain, provider, state, next_at_ms, "
                     "reason, added_ms, list_offset, list_line, cycle, list_scan, list_digest) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
                     "ON CONFLICT (address) DO NOTHING",
    /* Recipients with an attempt in flight when the run stopped: the message may have been
     * delivered, so they are held rather than sent again blindly (one removed from the list
     * meanwhile stays removed, and is held if it comes back). A dry-run attempt sent nothing:
     * it never holds anyone. */
    [Q_RECOVER_HOLD] = "UPDATE recipients SET last_outcome = 'unknown', "
                       "state = CASE WHEN state = 'removed' THEN 'removed' ELSE 'held' END, "
                       "removed_state = CASE WHEN state = 'removed' THEN 'held' END, "
                       "reason = CASE WHEN state = 'removed' THEN reason ELSE " STORE_HELD_REASON
                       " END WHERE state IN ('pending', 'removed') AND address IN (SELECT "
                       "recipient FROM attempts WHERE outcome = 'in-flight' AND dry_run = 0)",
    /* Seen by list scan ?4: its place, scan and digest refreshed; a removed recipient gets
     * its earlier state back; a skipped one whose line changed is due again. The first
     * occurrence in a scan wins (list_scan IS NOT ?4): the list may name an address twice. */
    [Q_RCPT_SEEN] =
        "UPDATE recipients SET list_offset = ?2, list_line = ?3, list_scan = ?4, "
        "list_digest = ?5, removed_state = NULL, "
        "state = CASE WHEN state = 'removed' THEN coalesce(removed_state, 'pending') "
        "WHEN state = 'skipped' AND list_digest IS NOT ?5 THEN 'pending' ELSE state END, "
        "reason = CASE WHEN state = 'removed' AND removed_state = 'held' THEN " STORE_HELD_REASON
        " WHEN state = 'removed' OR (state = 'skipped' AND list_digest IS NOT ?5) THEN NULL "
        "ELSE reason END, "
        "next_at_ms = CASE WHEN state = 'skipped' AND list_digest IS NOT ?5 THEN ?6 "
        "ELSE next_at_ms END "
        "WHERE address = ?1 AND list_scan IS NOT ?4",
    /* Not seen by scan ?1, which read the whole list: no longer in it. */
    [Q_RCPT_SWEEP] = "UPDATE recipients SET removed_state = state, state = 'removed', "
                     "reason = ?2 WHERE state IN ('pending', 'held') "
                     "AND (list_scan IS NULL OR list_scan < ?1)",
    [Q_RCPT_SKIP] = "UPDATE recipients SET state = CASE WHEN state = 'removed' THEN 'removed' "
                    "ELSE 'skipped' END, removed_state = CASE WHEN state = 'removed' THEN "
                    "'pending' END, reason = ?5 WHERE address = ?1",
    [Q_RCPT_RELEASE] = "UPDATE recipients SET state = 'pending', next_at_ms = ?2, reason = NULL "
                       "WHERE address = ?1 AND state IN ('held', 'skipped')",
    [Q_RCPT_RELEASE_HELD] = "UPDATE recipients SET state = 'pending', next_at_ms = ?1, "
                            "reason = NULL WHERE state = 'held' AND (?2 IS NULL OR provider = ?2) "
                            "RETURNING address, provider",
    [Q_RCPT_PROVIDERS] = "SELECT DISTINCT provider FROM recipients "
                         "WHERE state IN ('pending', 'held', 'removed', 'skipped')",
    [Q_RCPT_DOMAINS] = "SELECT DISTINCT domain FROM recipients WHERE provider IS ?1 "
                       "AND state IN ('pending', 'held', 'removed', 'skipped')",
    [Q_RCPT_UNCONFIRMED] = "SELECT EXISTS (SELECT 1 FROM recipients WHERE state IN "
                           "('pending', 'held') AND (list_scan IS NULL OR list_scan < ?1))",
    [Q_RCPT_SET_PROVIDER] = "UPDATE recipients SET provider = ?3 WHERE provider IS ?1 "
                            "AND domain = ?2 AND state IN ('pending', 'held', 'removed', "
                            "'skipped')",
    [Q_ATTEMPTS_SINCE] = "SELECT " ATTEMPT_COLS " FROM attempts WHERE provider = ?1 "
                         "AND started_ms >= ?2 AND code >= 400 ORDER BY started_ms, id",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [Q_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [Q_REASON_ADD] =
        "INSERT INTO summary_reasons (provider, hour_ms, outcome, code, enhanced, text, count) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1) ON CONFLICT (provider, hour_ms, outcome, code, "
        "enhanced, text) DO UPDATE SET count = count + 1",
    [Q_REASONS_EACH] =
        "SELECT provider, hour_ms, outcome, code, enhanced, text, count FROM summary_reasons "
        "WHERE (?1 IS NULL OR provider = ?1) AND hour_ms >= ?2 AND hour_ms < ?3 "
        "ORDER BY hour_ms, provider",
    /* One source IP's outcomes at a provider over a time range (a pool's lane's sending day):
     * the attempts_started index bounds the scan to the range. */
    [Q_ATTEMPT_COUNTS] =
        "SELECT count(*), coalesce(sum(outcome = 'delivered'), 0), "
        "coalesce(sum(outcome IN ('deferred', 'failed', 'blocked')), 0), "
        "coalesce(sum(outcome = 'bounced'), 0) FROM attempts WHERE started_ms >= ?3 "
        "AND started_ms < ?4 AND provider = ?1 AND source_ip = ?2 AND dry_run = 0 "
        "AND outcome <> 'in-flight'",
    [Q_LANES_RESUME] = "UPDATE providers SET paused_until_ms = NULL, pause_manual = 0, "
                       "pause_reason = NULL, updated_ms = ?2 WHERE name = ?1 AND ip <> '' "
                       "AND (paused_until_ms IS NOT NULL OR pause_manual = 1)",
    [Q_RULES_EACH] = "SELECT " RULE_COLS " FROM rule_actions WHERE (?1 IS NULL OR provider = ?1) "
                     "AND started_ms >= ?2 AND started_ms < ?3 ORDER BY started_ms, id",
};

struct store {
    sqlite3 *db;
    char *path;
    char *lock_path;
    int busy_ms;
    int lock_fd; /* -1 unless this handle holds the run lock */
    long lock_pid;
    char lock_host[256];
    sqlite3_stmt *stmt[Q_COUNT];
    int batch;     /* inside store_batch_begin(): writes join its transaction */
    int wal_pages; /* pages in the WAL after this handle's last commit (wal_hook) */
};

/* ---- small helpers ---- */

/* "2026-12-01T00:00:00Z": how the store names times in its sentences. */
static const char *fmt_utc(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "%lld ms", (long long)ms);
    return buf;
}

static int64_t hour_of(int64_t ms)
{
    /* Truncating division, the same as the SQL in Q_RECOVER_SUMMARY; times are >= 0. */
    return (ms / HOUR_MS) * HOUR_MS;
}

/*
 * Turns an SQLite result code into a status and a sentence naming the file and what the store
 * was trying to do. Must run before the failing statement is reset, which may clear errmsg.
 */
static ipw_status db_fail(struct store *st, int rc, const char *doing, struct err *e)
{
    const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        if (st->busy_ms % 1000 == 0)
            return err_set(e, IPW_ETEMP,
                           "state file %s: cannot %s: database is locked by another program "
                           "(tried for %d s)",
                           st->path, doing, st->busy_ms / 1000);
        return err_set(e, IPW_ETEMP,
                       "state file %s: cannot %s: database is locked by another program "
                       "(tried for %d ms)",
                       st->path, doing, st->busy_ms);
    case SQLITE_NOTADB:
        return err_set(e, IPW_EIO, "state file %s is not an SQLite database (%s)", st->path, msg);
    case SQLITE_CORRUPT:
        return err_set(e, IPW_EIO, "state file %s is damaged: cannot %s: %s", st->path, doing, msg);
    case SQLITE_FULL:
        return err_set(e, IPW_EIO, "state file %s: cannot %s: the disk is full (%s)", st->path,
                       doing, msg);
    case SQLITE_CANTOPEN:
        return err_set(e, IPW_ECANTCREAT, "state file %s: cannot %s: %s", st->path, doing, msg);
    case SQLITE_NOMEM:
        return err_set(e, IPW_ENOMEM, "state file %s: cannot %s: out of memory", st->path, doing);
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
    case SQLITE_AUTH:
        return err_set(e, IPW_EIO, "state file %s: cannot %s: %s", st->path, doing, msg);
    default:
        return err_set(e, IPW_ESOFTWARE, "state file %s: cannot %s: %s", st->path, doing, msg);
    }
}

/* Sets *out to the cached statement q, prepared on first use. */
static ipw_status stmt_get(struct store *st, enum q q, const char *doing, sqlite3_stmt **out,
                           struct err *e)
{
    if (!st->stmt[q]) {
        int rc =
            sqlite3_prepare_v3(st->db, QSQL[q], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[q], NULL);
        if (rc != SQLITE_OK) {
            ipw_status r = db_fail(st, rc, doing, e);
            sqlite3_finalize(st->stmt[q]);
            st->stmt[q] = NULL;
            *out = NULL;
            return r;
        }
    }
    *out = st->stmt[q];
    return IPW_OK;
}

/* Makes a cached statement ready for its next use. */
static void stmt_done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* Optional times and counts: 0 means "none" and is stored as NULL. */
static void bind_opt(sqlite3_stmt *s, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* Runs a statement that returns no rows (or whose rows do not matter). */
static ipw_status run(struct store *st, sqlite3_stmt *s, const char *doing, struct err *e)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

static ipw_status run_plain(struct store *st, enum q q, const char *doing, struct err *e)
{
    sqlite3_stmt *s;
    ipw_status r = stmt_get(st, q, doing, &s, e);
    return r == IPW_OK ? run(st, s, doing, e) : r;
}

static ipw_status tx_begin(struct store *st, const char *doing, struct err *e)
{
    if (st->batch)
        return IPW_OK;
    return run_plain(st, Q_BEGIN, doing, e);
}

static void tx_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        run_plain(st, Q_ROLLBACK, "roll back", NULL);
}

static ipw_status tx_commit(struct store *st, const char *doing, struct err *e)
{
    ipw_status r = run_plain(st, Q_COMMIT, doing, e);
    if (r != IPW_OK)
        tx_rollback(st);
    return r;
}

/* Ends a transaction: commits when r is IPW_OK, else rolls back. Returns the final status. */
static ipw_status tx_end(struct store *st, ipw_status r, const char *doing, struct err *e)
{
    /* Inside a batch the batch's end commits or rolls back everything at once. */
    if (st->batch)
        return r;
    if (r == IPW_OK)
        return tx_commit(st, doing, e);
    tx_rollback(st);
    return r;
}

/* A copy of a nullable string for an owning struct; sets *oom when out of memory. */
static const char *dup_str(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

static void free_str(const char *s)
{
    free((void *)(uintptr_t)s);
}

static ipw_status count_query(struct store *st, enum q q, const char *arg, int64_t *n,
                              const char *doing, struct err *e)
{
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, q, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    if (arg)
        bind_text(s, 1, arg);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    else
        r = db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

/* ---- opening and migrations ---- */

/* Runs a one-value PRAGMA query (or any statement whose first column is an integer). */
static ipw_status query_int(struct store *st, const char *sql, int64_t *v, const char *doing,
                            struct err *e)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *v = sqlite3_column_int64(s, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            *v = 0;
            rc = SQLITE_OK;
        }
    }
    ipw_status r = rc == SQLITE_OK ? IPW_OK : db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

static ipw_status exec_sql(struct store *st, const char *sql, const char *doing, struct err *e)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? IPW_OK : db_fail(st, rc, doing, e);
}

/* Applies migration number v (1-based) in its own transaction, unless another process did. */
static ipw_status migrate_one(struct store *st, int v, struct err *e)
{
    char doing[64];
    snprintf(doing, sizeof doing, "migrate to schema version %d", v);
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    /* Read again under the write lock: a concurrent opener may have migrated meanwhile. */
    int64_t cur = 0;
    r = query_int(st, "PRAGMA user_version", &cur, doing, e);
    if (r != IPW_OK || cur >= v)
        return tx_end(st, r, doing, e);
    r = exec_sql(st, MIGRATIONS[v - 1], doing, e);
    if (r == IPW_OK) {
        /* PRAGMAs take no parameters; both numbers are our own constants, not input. */
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
                 STORE_APP_ID, v);
        r = exec_sql(st, sql, doing, e);
    }
    return tx_end(st, r, doing, e);
}

/*
 * Checkpoints (copying the WAL into the database file) cost two fsyncs each, and bench/ showed
 * them on both hot paths:
 *  - the runner writes about 15 pages per message; at SQLite's default of a checkpoint every
 *    1,000 pages it spent a quarter of its time in them (bench/throughput.sh). A commit now
 *    checkpoints at STORE_WAL_CHECKPOINT_PAGES (a WAL of up to 32 MB);
 *  - by default the last connection to close checkpoints and deletes the WAL, and the next
 *    process creates it again: four fsyncs, half of an idle cron tick (bench/scale.sh). Now a
 *    small WAL stays as it is at close. A large one is still emptied then, because the first
 *    process to open the file rebuilds the WAL index by reading the whole WAL (18 ms for 24 MB).
 * Durability is the same either way: every commit is in the WAL (synchronous=NORMAL), and a
 * plain copy of the .db alone was never a backup (docs/operations.md: use .backup).
 */
#define STORE_WAL_CHECKPOINT_PAGES 8192
#define STORE_WAL_CLOSE_PAGES      1024

/* After every commit: remembers the WAL's size and checkpoints a large one, as SQLite's own
 * autocheckpoint (itself a WAL hook, which this one replaces) does at 1,000 pages. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct store *st = arg;
    st->wal_pages = pages;
    if (pages >= STORE_WAL_CHECKPOINT_PAGES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static ipw_status open_impl(const char *path, const struct store_options *opt, int target,
                            struct store **out, struct err *e)
{
    *out = NULL;
    if (!path || !*path)
        return err_set(e, IPW_EUSAGE, "no state file name given");
    struct store *st = calloc(1, sizeof *st);
    size_t plen = strlen(path);
    if (st) {
        st->lock_fd = -1;
        st->busy_ms =
            opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : STORE_BUSY_TIMEOUT_MS;
        st->path = strdup(path);
        st->lock_path = malloc(plen + sizeof ".lock");
    }
    if (!st || !st->path || !st->lock_path) {
        store_close(st);
        return err_set(e, IPW_ENOMEM, "state file %s: out of memory", path);
    }
    memcpy(st->lock_path, path, plen);
    memcpy(st->lock_path + plen, ".lock", sizeof ".lock");

    int must_exist = opt && opt->must_exist;
    int flags = SQLITE_OPEN_READWRITE | (must_exist ? 0 : SQLITE_OPEN_CREATE);
    /* The state holds recipient addresses: a new file is made 0600 whatever the umask (SQLite
     * would make it 0644), and SQLite gives its -wal and -shm files the database's mode. */
    if (!must_exist && strcmp(path, ":memory:") != 0) {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) { /* else it exists, or SQLite's open below says what is wrong */
            (void)fchmod(fd, 0600);
            close(fd);
        }
    }
    int rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    if (rc != SQLITE_OK) {
        int sys = st->db ? sqlite3_system_errno(st->db) : 0;
        ipw_status r;
        if (must_exist && access(path, F_OK) != 0 && errno == ENOENT)
            r = err_set(e, IPW_ENOINPUT, "state file %s does not exist (nothing recorded yet)",
                        path);
        else if ((rc & 0xff) == SQLITE_CANTOPEN)
            r = err_set(e, IPW_ECANTCREAT, "state file %s: cannot open or create it: %s", path,
                        sys ? strerror(sys) : sqlite3_errstr(rc));
        else
            r = db_fail(st, rc, "open it", e);
        store_close(st);
        return r;
    }
    sqlite3_busy_timeout(st->db, st->busy_ms);

    /*
     * Identify the file before changing anything: switching someone else's database to WAL
     * would already modify it. A new file has no tables and application_id 0.
     */
    int64_t app_id = 0, version = 0, tables = 0;
    /* One read transaction, so the three values come from one moment: two processes that open
     * a new file at once (two cron ticks) must not see the other's migration half done. */
    ipw_status r = exec_sql(st, "BEGIN", "read it", e);
    if (r == IPW_OK)
        r = query_int(st, "PRAGMA application_id", &app_id, "read it", e);
    if (r == IPW_OK)
        r = query_int(st, "PRAGMA user_version", &version, "read it", e);
    if (r == IPW_OK)
        r = query_int(st, "SELECT count(*) FROM sqlite_master", &tables, "read it", e);
    if (!sqlite3_get_autocommit(st->db))
        exec_sql(st, "COMMIT", "read it", NULL);
    if (r != IPW_OK) {
        /* r and e already say why */
    } else if (app_id != STORE_APP_ID && !(app_id == 0 && version == 0 && tables == 0)) {
        r = err_set(e, IPW_EIO,
                    "state file %s is an SQLite database of another program, not an ipwarm "
                    "state file (application_id %lld, user_version %lld)",
                    path, (long long)app_id, (long long)version);
    } else if (version > N_MIGRATIONS) {
        r = err_set(e, IPW_EIO,
                    "state file %s has schema version %lld, but this ipwarm knows versions up "
                    "to %d: it was written by a newer ipwarm; use that version",
                    path, (long long)version, N_MIGRATIONS);
    } else if (version > target) {
        r = err_set(e, IPW_EIO,
                    "state file %s is at schema version %lld, newer than the requested %d", path,
                    (long long)version, target);
    }
    if (r != IPW_OK) {
        store_close(st);
        return r;
    }

    sqlite3_stmt *s = NULL;
    /* Switching a new file to WAL needs it to itself, and SQLite does not wait for that with
     * the busy handler: when another process opens the same new file at the same moment, try
     * again until the busy timeout. */
    for (int waited = 0;; waited += 20) {
        rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(s);
        if (((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) || waited >= st->busy_ms)
            break;
        sqlite3_finalize(s);
        s = NULL;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc == SQLITE_ROW) {
        const char *mode = col_text(s, 0);
        /* "memory" is what an in-memory database (":memory:") reports; fine for tools. */
        if (!mode || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0))
            r = err_set(e, IPW_EIO,
                        "state file %s: cannot use the WAL journal (the file system gave "
                        "journal mode %s)",
                        path, mode ? mode : "none");
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        r = db_fail(st, rc, "switch it to the WAL journal", e);
    sqlite3_finalize(s);
    if (r == IPW_OK)
        r = exec_sql(st, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "set its options",
                     e);
    /* Checkpoints: see wal_hook() and store_close(). The WAL is kept between processes (not
     * deleted and created again), and closing checkpoints only a large one. */
    if (r == IPW_OK) {
        int on = 1;
        sqlite3_file_control(st->db, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        sqlite3_wal_hook(st->db, wal_hook, st);
    }
    for (int v = (int)version + 1; r == IPW_OK && v <= target; v++)
        r = migrate_one(st, v, e);
    if (r != IPW_OK) {
        store_close(st);
        return r;
    }
    *out = st;
    return IPW_OK;
}

ipw_status store_open_opts(const char *path, const struct store_options *opt, struct store **out,
                           struct err *e)
{
    return open_impl(path, opt, N_MIGRATIONS, out, e);
}

ipw_status store_open(const char *path, struct store **out, struct err *e)
{
    return open_impl(path, NULL, N_MIGRATIONS, out, e);
}

ipw_status store_open_at_version(const char *path, int version, struct store **out, struct err *e)
{
    if (version < 0 || version > N_MIGRATIONS) {
        *out = NULL;
        return err_set(e, IPW_EUSAGE, "schema version %d does not exist (this build knows 0 to %d)",
                       version, N_MIGRATIONS);
    }
    return open_impl(path, NULL, version, out, e);
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->db)
        store_lock_release(st);
    if (st->db && st->wal_pages >= STORE_WAL_CLOSE_PAGES) {
        /* Emptied, not just copied: the next process would otherwise read all of it again.
         * Readers are not waited for long; the next close or commit tries again. */
        sqlite3_busy_timeout(st->db, 200);
        sqlite3_wal_checkpoint_v2(st->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    /* Every statement is finalized, so close cannot fail for statements left open. */
    sqlite3_close(st->db);
    free(st->path);
    free(st->lock_path);
    free(st);
}

int store_version(struct store *st)
{
    int64_t v = 0;
    if (count_query(st, Q_USER_VERSION, NULL, &v, "read the schema version", NULL) != IPW_OK)
        return -1;
    return (int)v;
}

void store_set_busy_timeout(struct store *st, int ms)
{
    st->busy_ms = ms > 0 ? ms : STORE_BUSY_TIMEOUT_MS;
    sqlite3_busy_timeout(st->db, st->busy_ms);
}

const char *store_path(const struct store *st)
{
    return st->path;
}

struct sqlite3 *store_db(struct store *st)
{
    return st->db;
}

/* ---- run lock ---- */

/* Reads the run_lock row; IPW_ENOTFOUND when there is none. */
static ipw_status lock_row(struct store *st, struct store_lock_holder *h, struct err *e)
{
    const char *doing = "read the run lock";
    memset(h, 0, sizeof *h);
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_LOCK_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        h->pid = (long)sqlite3_column_int64(s, 0);
        const char *host = col_text(s, 1);
        snprintf(h->host, sizeof h->host, "%s", host ? host : "");
        h->acquired_ms = sqlite3_column_int64(s, 2);
    } else if (rc == SQLITE_DONE) {
        r = IPW_ENOTFOUND;
    } else {
        r = db_fail(st, rc, doing, e);
    }
    stmt_done(s);
    return r;
}

ipw_status store_lock_acquire(struct store *st, int64_t now_ms, struct err *e)
{
    if (st->lock_fd >= 0)
        return IPW_OK;
    int fd = open(st->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(e, IPW_ECANTCREAT, "cannot create the lock file %s: %s", st->lock_path,
                       strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        close(fd);
        if (err != EWOULDBLOCK)
            return err_set(e, IPW_EIO, "cannot lock %s: %s", st->lock_path, strerror(err));
        struct store_lock_holder h;
        struct err ignored;
        if (lock_row(st, &h, &ignored) != IPW_OK || h.pid == 0)
            return err_set(e, IPW_ELOCKED,
                           "state file %s is in use by another ipwarm run (which has not "
                           "recorded its pid yet)",
                           st->path);
        char when[64];
        return err_set(e, IPW_ELOCKED,
                       "state file %s is in use by another ipwarm run: pid %ld on host %s, "
                       "since %s",
                       st->path, h.pid, h.host, fmt_utc(h.acquired_ms, when, sizeof when));
    }

    long pid = (long)getpid();
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';

    const char *doing = "record the run lock";
    ipw_status r = tx_begin(st, doing, e);
    if (r == IPW_OK) {
        sqlite3_stmt *s;
        r = stmt_get(st, Q_LOCK_PUT, doing, &s, e);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, pid);
            bind_text(s, 2, host);
            sqlite3_bind_int64(s, 3, now_ms);
            r = run(st, s, doing, e);
        }
        r = tx_end(st, r, doing, e);
    }
    if (r != IPW_OK) {
        close(fd);
        return r;
    }
    st->lock_fd = fd;
    st->lock_pid = pid;
    snprintf(st->lock_host, sizeof st->lock_host, "%s", host);
    return IPW_OK;
}

void store_lock_release(struct store *st)
{
    if (!st || st->lock_fd < 0)
        return;
    /* Clear the row while still holding the lock, so it can only be ours. */
    const char *doing = "clear the run lock";
    if (tx_begin(st, doing, NULL) == IPW_OK) {
        sqlite3_stmt *s;
        ipw_status r = stmt_get(st, Q_LOCK_CLEAR, doing, &s, NULL);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, st->lock_pid);
            bind_text(s, 2, st->lock_host);
            r = run(st, s, doing, NULL);
        }
        tx_end(st, r, doing, NULL);
    }
    /* A row left behind (disk full) is harmless: store_lock_holder checks the flock. */
    close(st->lock_fd);
    st->lock_fd = -1;
}

int store_lock_held(const struct store *st)
{
    return st->lock_fd >= 0;
}

ipw_status store_lock_holder(struct store *st, struct store_lock_holder *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (st->lock_fd < 0) {
        int fd = open(st->lock_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                return IPW_ENOTFOUND;
            return err_set(e, IPW_EIO, "cannot open the lock file %s: %s", st->lock_path,
                           strerror(errno));
        }
        int free_now = flock(fd, LOCK_SH | LOCK_NB) == 0;
        int err = errno;
        close(fd); /* also drops the shared lock if we got it */
        if (free_now)
            return IPW_ENOTFOUND;
        if (err != EWOULDBLOCK)
            return err_set(e, IPW_EIO, "cannot test the lock %s: %s", st->lock_path, strerror(err));
    }
    ipw_status r = lock_row(st, out, e);
    if (r == IPW_ENOTFOUND) {
        /* Held, but the holder has not written its row yet: pid 0 says "not known". */
        memset(out, 0, sizeof *out);
        return IPW_OK;
    }
    return r;
}

/* ---- attempts ---- */

static void attempt_from_row(sqlite3_stmt *s, struct store_attempt *a)
{
    a->id = sqlite3_column_int64(s, 0);
    a->started_ms = sqlite3_column_int64(s, 1);
    a->finished_ms = sqlite3_column_int64(s, 2);
    a->recipient = col_text(s, 3);
    a->domain = col_text(s, 4);
    a->provider = col_text(s, 5);
    a->mx = col_text(s, 6);
    a->source_ip = col_text(s, 7);
    a->message_id = col_text(s, 8);
    a->phase = col_text(s, 9);
    a->code = sqlite3_column_int(s, 10);
    a->enhanced = col_text(s, 11);
    a->text = col_text(s, 12);
    a->outcome = col_text(s, 13);
    a->retry_no = sqlite3_column_int(s, 14);
    a->dry_run = sqlite3_column_int(s, 15);
    a->mail_from = col_text(s, 16);
}

ipw_status store_attempt_begin(struct store *st, const struct store_attempt *a, int64_t *id,
                               struct err *e)
{
    if (!a->recipient || !*a->recipient || !a->provider || !*a->provider)
        return err_set(e, IPW_EUSAGE, "an attempt needs a recipient and a provider");
    if (a->phase && !IN_SET(a->phase, PHASES))
        return err_set(e, IPW_EUSAGE, "unknown SMTP phase \"%s\"", a->phase);
    const char *domain = a->domain;
    if (!domain) {
        const char *at = strrchr(a->recipient, '@');
        if (!at || !at[1])
            return err_set(e, IPW_EUSAGE, "recipient \"%s\" has no domain", a->recipient);
        domain = at + 1;
    }
    const char *doing = "record an attempt";
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    sqlite3_stmt *s;
    r = stmt_get(st, Q_ATTEMPT_INSERT, doing, &s, e);
    if (r != IPW_OK)
        return tx_end(st, r, doing, e);
    sqlite3_bind_int64(s, 1, a->started_ms);
    bind_text(s, 2, a->recipient);
    bind_text(s, 3, domain);
    bind_text(s, 4, a->provider);
    bind_text(s, 5, a->mx);
    bind_text(s, 6, a->source_ip);
    bind_text(s, 7, a->message_id);
    bind_text(s, 8, a->phase);
    sqlite3_bind_int(s, 9, a->retry_no > 0 ? a->retry_no : 0);
    sqlite3_bind_int(s, 10, a->dry_run ? 1 : 0);
    bind_text(s, 11, a->mail_from);
    r = run(st, s, doing, e);
    int64_t new_id = sqlite3_last_insert_rowid(st->db);
    /* A dry run sends nothing, so the queue must look as if it had not happened: a stamp
     * would make the next real run hold the recipient. */
    if (r == IPW_OK && !a->dry_run) {
        r = stmt_get(st, Q_ATTEMPT_STAMP_RCPT, doing, &s, e);
        if (r == IPW_OK) {
            bind_text(s, 1, a->recipient);
            sqlite3_bind_int64(s, 2, a->started_ms);
            r = run(st, s, doing, e);
        }
    }
    r = tx_end(st, r, doing, e);
    if (r == IPW_OK && id)
        *id = new_id;
    return r;
}

/* Applies a queue step to one recipient; part of the caller's transaction. */
static ipw_status rcpt_apply(struct store *st, const char *address, int64_t attempt_ms,
                             const char *outcome, const struct store_recipient_update *u,
                             const char *doing, struct err *e)
{
    enum q q;
    const char *state = NULL;
    switch (u->step) {
    case STORE_RCPT_KEEP:
        return IPW_OK;
    case STORE_RCPT_RETRY:
        q = Q_RCPT_RETRY;
        break;
    case STORE_RCPT_NEXT_CYCLE:
        q = Q_RCPT_NEXT_CYCLE;
        break;
    case STORE_RCPT_REQUEUE:
        q = Q_RCPT_REQUEUE;
        break;
    case STORE_RCPT_SKIP:
        q = Q_RCPT_SKIP;
        break;
    case STORE_RCPT_DONE:
        q = Q_RCPT_FINAL;
        state = "done";
        break;
    case STORE_RCPT_SUPPRESS:
        q = Q_RCPT_FINAL;
        state = "suppressed";
        break;
    case STORE_RCPT_EXPIRE:
        q = Q_RCPT_FINAL;
        state = "expired";
        break;
    case STORE_RCPT_HOLD:
        q = Q_RCPT_FINAL;
        state = "held";
        break;
    default:
        return err_set(e, IPW_EUSAGE, "unknown recipient step %d", (int)u->step);
    }
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, q, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, address);
    if (state) {
        bind_text(s, 2, state);
        bind_text(s, 5, u->reason);
    } else {
        sqlite3_bind_int64(s, 2, u->next_at_ms);
    }
    if (q == Q_RCPT_REQUEUE) {
        /* Without an attempt (a local failure) the last attempt stays as it was. */
        bind_opt(s, 3, attempt_ms);
        bind_text(s, 5, u->reason);
    } else if (q == Q_RCPT_SKIP) {
        bind_text(s, 5, u->reason);
    } else {
        sqlite3_bind_int64(s, 3, attempt_ms);
    }
    if (q != Q_RCPT_SKIP)
        bind_text(s, 4, outcome);
    ipw_status r = run(st, s, doing, e);
    if (r == IPW_OK && sqlite3_changes(st->db) == 0)
        r = err_set(e, IPW_ENOTFOUND, "recipient %s is not in the queue of %s", address, st->path);
    return r;
}

/*
 * Adds one to the summary_reasons row of the reply, its text masked (stats_mask_reason) so
 * that replies differing only in IP addresses, queue IDs, host names and numbers share a row.
 * Part of the caller's transaction.
 */
static ipw_status reason_add(struct store *st, const char *provider, int64_t hour_ms,
                             const struct store_outcome *o, const char *doing, struct err *e)
{
    char masked[STATS_REASON_MAX];
    stats_mask_reason(o->text, masked, sizeof masked);
    sqlite3_stmt *s;
    ipw_status r = stmt_get(st, Q_REASON_ADD, doing, &s, e);
    if (r != IPW_OK)
        return r;
    bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, hour_ms);
    bind_text(s, 3, o->outcome);
    sqlite3_bind_int(s, 4, o->code);
    bind_text(s, 5, o->enhanced ? o->enhanced : "");
    bind_text(s, 6, masked);
    return run(st, s, doing, e);
}

ipw_status store_attempt_finish_ex(struct store *st, int64_t id, const struct store_outcome *o,
                                   const struct store_recipient_update *u, struct err *e)
{
    if (!IN_SET(o->outcome, FINAL_OUTCOMES))
        return err_set(e, IPW_EUSAGE, "unknown attempt outcome \"%s\"",
                       o->outcome ? o->outcome : "(none)");
    if (o->phase && !IN_SET(o->phase, PHASES))
        return err_set(e, IPW_EUSAGE, "unknown SMTP phase \"%s\"", o->phase);
    if (o->code != 0 && (o->code < 100 || o->code > 599))
        return err_set(e, IPW_EUSAGE, "SMTP reply code %d is outside 100..599", o->code);

    const char *doing = "record an attempt's outcome";
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    sqlite3_stmt *s;
    r = stmt_get(st, Q_ATTEMPT_FINISH, doing, &s, e);
    if (r != IPW_OK)
        return tx_end(st, r, doing, e);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, o->finished_ms);
    bind_text(s, 3, o->phase);
    bind_opt(s, 4, o->code);
    bind_text(s, 5, o->enhanced);
    bind_text(s, 6, o->text);
    bind_text(s, 7, o->outcome);
    int rc = sqlite3_step(s);
    char *provider = NULL, *recipient = NULL;
    int64_t started = 0;
    int dry_run = 0;
    if (rc == SQLITE_ROW) {
        provider = strdup(col_text(s, 0));
        started = sqlite3_column_int64(s, 1);
        dry_run = sqlite3_column_int(s, 2);
        recipient = strdup(col_text(s, 3));
        if (!provider || !recipient)
            r = err_set(e, IPW_ENOMEM, "out of memory");
        else
            rc = sqlite3_step(s); /* RETURNING has done its work; finish the statement */
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND,
                    "attempt %lld is not in flight in %s (unknown id, or its outcome is "
                    "already recorded)",
                    (long long)id, st->path);
    }
    if (r == IPW_OK && rc != SQLITE_DONE)
        r = db_fail(st, rc, doing, e);
    stmt_done(s);

    if (r == IPW_OK && !dry_run) {
        r = stmt_get(st, Q_SUMMARY_ADD, doing, &s, e);
        if (r == IPW_OK) {
            bind_text(s, 1, provider);
            sqlite3_bind_int64(s, 2, hour_of(started));
            for (size_t i = 0; i < sizeof FINAL_OUTCOMES / sizeof FINAL_OUTCOMES[0]; i++)
                sqlite3_bind_int(s, 3 + (int)i, strcmp(o->outcome, FINAL_OUTCOMES[i]) == 0);
            r = run(st, s, doing, e);
        }
    }
    if (r == IPW_OK && !dry_run && IN_SET(o->outcome, REASON_OUTCOMES))
        r = reason_add(st, provider, hour_of(started), o, doing, e);
    if (r == IPW_OK && u && u->step != STORE_RCPT_KEEP)
        r = rcpt_apply(st, recipient, started, o->outcome, u, doing, e);
    free(provider);
    free(recipient);
    return tx_end(st, r, doing, e);
}

ipw_status store_attempt_finish(struct store *st, int64_t id, int64_t finished_ms,
                                const char *phase, int code, const char *enhanced, const char *text,
                                const char *outcome, struct err *e)
{
    struct store_outcome o = {.finished_ms = finished_ms,
                              .phase = phase,
                              .code = code,
                              .enhanced = enhanced,
                              .text = text,
                              .outcome = outcome};
    return store_attempt_finish_ex(st, id, &o, NULL, e);
}

ipw_status store_attempts_recover(struct store *st, int64_t now_ms, int64_t *count, struct err *e)
{
    const char *doing = "mark interrupted attempts as unknown";
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    /* Counters first: they select the rows that the update then changes. */
    r = run_plain(st, Q_RECOVER_SUMMARY, doing, e);
    if (r == IPW_OK)
        r = run_plain(st, Q_RECOVER_HOLD, doing, e);
    int64_t n = 0;
    if (r == IPW_OK) {
        sqlite3_stmt *s;
        r = stmt_get(st, Q_RECOVER_MARK, doing, &s, e);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, now_ms);
            r = run(st, s, doing, e);
            n = sqlite3_changes(st->db);
        }
    }
    r = tx_end(st, r, doing, e);
    if (count)
        *count = r == IPW_OK ? n : 0;
    return r;
}

ipw_status store_attempts_for_recipient(struct store *st, const char *recipient,
                                        store_attempt_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the attempts of a recipient";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_ATTEMPTS_OF_RCPT, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, recipient);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_attempt a;
        attempt_from_row(s, &a);
        if (cb(&a, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

void store_attempt_clear(struct store_attempt *a)
{
    free_str(a->recipient);
    free_str(a->domain);
    free_str(a->provider);
    free_str(a->mx);
    free_str(a->source_ip);
    free_str(a->message_id);
    free_str(a->phase);
    free_str(a->enhanced);
    free_str(a->text);
    free_str(a->outcome);
    free_str(a->mail_from);
    memset(a, 0, sizeof *a);
}

ipw_status store_attempt_get(struct store *st, int64_t id, struct store_attempt *out, struct err *e)
{
    const char *doing = "read an attempt";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_ATTEMPT_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        struct store_attempt a;
        int oom = 0;
        attempt_from_row(s, &a);
        *out = a;
        out->recipient = dup_str(a.recipient, &oom);
        out->domain = dup_str(a.domain, &oom);
        out->provider = dup_str(a.provider, &oom);
        out->mx = dup_str(a.mx, &oom);
        out->source_ip = dup_str(a.source_ip, &oom);
        out->message_id = dup_str(a.message_id, &oom);
        out->phase = dup_str(a.phase, &oom);
        out->enhanced = dup_str(a.enhanced, &oom);
        out->text = dup_str(a.text, &oom);
        out->outcome = dup_str(a.outcome, &oom);
        out->mail_from = dup_str(a.mail_from, &oom);
        if (oom) {
            store_attempt_clear(out);
            r = err_set(e, IPW_ENOMEM, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "no attempt %lld in %s", (long long)id, st->path);
    } else {
        r = db_fail(st, rc, doing, e);
    }
    stmt_done(s);
    return r;
}

ipw_status store_attempts_count(struct store *st, const char *outcome, int64_t *n, struct err *e)
{
    *n = 0;
    return count_query(st, outcome ? Q_ATTEMPTS_COUNT : Q_ATTEMPTS_COUNT_ALL, outcome, n,
                       "count attempts", e);
}

/* ---- summary counters ---- */

ipw_status store_summary_each(struct store *st, const char *provider, int64_t since_ms,
                              int64_t until_ms, store_summary_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the hourly counters";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_SUMMARY_EACH, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, since_ms ? since_ms : INT64_MIN);
    sqlite3_bind_int64(s, 3, until_ms ? until_ms : INT64_MAX);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_summary_row row = {
            .provider = col_text(s, 0),
            .hour_ms = sqlite3_column_int64(s, 1),
            .attempts = sqlite3_column_int64(s, 2),
            .delivered = sqlite3_column_int64(s, 3),
            .deferred = sqlite3_column_int64(s, 4),
            .bounced = sqlite3_column_int64(s, 5),
            .failed = sqlite3_column_int64(s, 6),
            .expired = sqlite3_column_int64(s, 7),
            .unknown = sqlite3_column_int64(s, 8),
            .blocked = sqlite3_column_int64(s, 9),
            .late_bounces = sqlite3_column_int64(s, 10),
            .complaints = sqlite3_column_int64(s, 11),
        };
        if (cb(&row, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

ipw_status store_reasons_each(struct store *st, const char *provider, int64_t since_ms,
                              int64_t until_ms, store_reason_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the reply counters";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_REASONS_EACH, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, since_ms ? since_ms : INT64_MIN);
    sqlite3_bind_int64(s, 3, until_ms ? until_ms : INT64_MAX);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *enh = col_text(s, 4);
        struct store_reason_row row = {
            .provider = col_text(s, 0),
            .hour_ms = sqlite3_column_int64(s, 1),
            .outcome = col_text(s, 2),
            .code = sqlite3_column_int(s, 3),
            .enhanced = enh && *enh ? enh : NULL,
            .text = col_text(s, 5),
            .count = sqlite3_column_int64(s, 6),
        };
        if (cb(&row, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

/* ---- recipient queue ---- */

static void rcpt_from_row(sqlite3_stmt *s, struct store_recipient *r)
{
    r->id = sqlite3_column_int64(s, 0);
    r->address = col_text(s, 1);
    r->domain = col_text(s, 2);
    r->provider = col_text(s, 3);
    r->state = col_text(s, 4);
    r->next_at_ms = sqlite3_column_int64(s, 5);
    r->retries = sqlite3_column_int(s, 6);
    r->reason = col_text(s, 7);
    r->first_attempt_ms = sqlite3_column_int64(s, 8);
    r->last_attempt_ms = sqlite3_column_int64(s, 9);
    r->last_outcome = col_text(s, 10);
    r->cycle = sqlite3_column_int(s, 11);
    r->added_ms = sqlite3_column_int64(s, 12);
    r->list_offset = sqlite3_column_type(s, 13) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 13);
    r->list_line = sqlite3_column_int64(s, 14);
    r->list_scan = sqlite3_column_int64(s, 15);
    r->list_digest = sqlite3_column_int64(s, 16);
}

/* The domain of an address: the given one, else the part after the last '@'; NULL if none. */
static const char *domain_of(const char *address, const char *domain)
{
    if (domain)
        return domain;
    const char *at = strrchr(address, '@');
    return at && at[1] ? at + 1 : NULL;
}

ipw_status store_recipient_add(struct store *st, const char *address, const char *domain,
                               const char *provider, int64_t next_at_ms, int64_t now_ms, int *added,
                               struct err *e)
{
    if (added)
        *added = 0;
    if (!address || !*address)
        return err_set(e, IPW_EUSAGE, "a recipient needs an address");
    domain = domain_of(address, domain);
    if (!domain)
        return err_set(e, IPW_EUSAGE, "recipient \"%s\" has no domain", address);
    const char *doing = "queue a recipient";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_RCPT_ADD, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, address);
    bind_text(s, 2, domain);
    bind_text(s, 3, provider);
    sqlite3_bind_int64(s, 4, next_at_ms);
    sqlite3_bind_int64(s, 5, now_ms);
    /* One statement in autocommit mode is its own transaction. */
    ipw_status r = run(st, s, doing, e);
    if (r == IPW_OK && added)
        *added = sqlite3_changes(st->db) > 0;
    return r;
}

ipw_status store_recipient_save(struct store *st, const struct store_recipient *rc_, struct err *e)
{
    if (!rc_->address || !*rc_->address)
        return err_set(e, IPW_EUSAGE, "a recipient needs an address");
    const char *domain = domain_of(rc_->address, rc_->domain);
    if (!domain)
        return err_set(e, IPW_EUSAGE, "recipient \"%s\" has no domain", rc_->address);
    const char *state = rc_->state ? rc_->state : "pending";
    if (!IN_SET(state, RCPT_STATES))
        return err_set(e, IPW_EUSAGE, "unknown recipient state \"%s\"", state);
    if (rc_->last_outcome && !IN_SET(rc_->last_outcome, ALL_OUTCOMES))
        return err_set(e, IPW_EUSAGE, "unknown attempt outcome \"%s\"", rc_->last_outcome);
    const char *doing = "save a recipient";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_RCPT_SAVE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, rc_->address);
    bind_text(s, 2, domain);
    bind_text(s, 3, rc_->provider);
    bind_text(s, 4, state);
    sqlite3_bind_int64(s, 5, rc_->next_at_ms);
    sqlite3_bind_int(s, 6, rc_->retries > 0 ? rc_->retries : 0);
    bind_text(s, 7, rc_->reason);
    bind_opt(s, 8, rc_->first_attempt_ms);
    bind_opt(s, 9, rc_->last_attempt_ms);
    bind_text(s, 10, rc_->last_outcome);
    sqlite3_bind_int(s, 11, rc_->cycle > 0 ? rc_->cycle : 0);
    sqlite3_bind_int64(s, 12, rc_->added_ms);
    if (rc_->list_offset >= 0)
        sqlite3_bind_int64(s, 13, rc_->list_offset);
    else
        sqlite3_bind_null(s, 13);
    sqlite3_bind_int64(s, 14, rc_->list_line);
    bind_opt(s, 15, rc_->list_scan);
    bind_opt(s, 16, rc_->list_digest);
    return run(st, s, doing, e);
}

void store_recipient_clear(struct store_recipient *r)
{
    free_str(r->address);
    free_str(r->domain);
    free_str(r->provider);
    free_str(r->state);
    free_str(r->reason);
    free_str(r->last_outcome);
    memset(r, 0, sizeof *r);
}

ipw_status store_recipient_get(struct store *st, const char *address, struct store_recipient *out,
                               struct err *e)
{
    const char *doing = "read a recipient";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_RCPT_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, address);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        struct store_recipient v;
        int oom = 0;
        rcpt_from_row(s, &v);
        *out = v;
        out->address = dup_str(v.address, &oom);
        out->domain = dup_str(v.domain, &oom);
        out->provider = dup_str(v.provider, &oom);
        out->state = dup_str(v.state, &oom);
        out->reason = dup_str(v.reason, &oom);
        out->last_outcome = dup_str(v.last_outcome, &oom);
        if (oom) {
            store_recipient_clear(out);
            r = err_set(e, IPW_ENOMEM, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "recipient %s is not in the queue of %s", address, st->path);
    } else {
        r = db_fail(st, rc, doing, e);
    }
    stmt_done(s);
    return r;
}

ipw_status store_recipient_update(struct store *st, const char *address, int64_t attempt_ms,
                                  const char *outcome, const struct store_recipient_update *u,
                                  struct err *e)
{
    if (outcome && !IN_SET(outcome, ALL_OUTCOMES))
        return err_set(e, IPW_EUSAGE, "unknown attempt outcome \"%s\"", outcome);
    if (u->step == STORE_RCPT_KEEP)
        return IPW_OK;
    const char *doing = "update a recipient";
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    r = rcpt_apply(st, address, attempt_ms, outcome, u, doing, e);
    return tx_end(st, r, doing, e);
}

ipw_status store_recipients_due(struct store *st, int64_t now_ms, const char *provider, int limit,
                                store_recipient_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the due recipients";
    enum q q = provider ? Q_RCPT_DUE_PROVIDER : Q_RCPT_DUE;
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, q, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : -1); /* LIMIT -1: no limit */
    if (provider)
        bind_text(s, 3, provider);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_recipient v;
        rcpt_from_row(s, &v);
        if (cb(&v, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

ipw_status store_recipients_count(struct store *st, const char *state, int64_t *n, struct err *e)
{
    *n = 0;
    return count_query(st, state ? Q_RCPT_COUNT : Q_RCPT_COUNT_ALL, state, n, "count recipients",
                       e);
}

/* ---- provider state ---- */

static void prov_from_row(sqlite3_stmt *s, struct store_provider *p)
{
    p->name = col_text(s, 0);
    p->stage = sqlite3_column_int(s, 1);
    p->sending_day = sqlite3_column_int(s, 2);
    p->sending_day_date = col_text(s, 3);
    p->rate_per_min = sqlite3_column_double(s, 4);
    p->sent_today = sqlite3_column_int64(s, 5);
    p->sent_today_date = col_text(s, 6);
    p->paused_until_ms = sqlite3_column_int64(s, 7);
    p->pause_reason = col_text(s, 8);
    p->pause_level = sqlite3_column_int(s, 9);
    p->pause_manual = sqlite3_column_int(s, 10);
    p->last_deferral_ms = sqlite3_column_int64(s, 11);
    p->rate_changed_ms = sqlite3_column_int64(s, 12);
    p->last_reply = col_text(s, 13);
    p->last_reply_ms = sqlite3_column_int64(s, 14);
    p->next_send_ms = sqlite3_column_int64(s, 15);
    p->updated_ms = sqlite3_column_int64(s, 16);
    p->pace_anchor_ms = sqlite3_column_int64(s, 17);
    p->pace_n = sqlite3_column_int64(s, 18);
    p->pace_rate = sqlite3_column_double(s, 19);
    p->ip = col_text(s, 20);
}

ipw_status store_provider_save(struct store *st, const struct store_provider *p, struct err *e)
{
    if (!p->name || !*p->name)
        return err_set(e, IPW_EUSAGE, "a provider needs a name");
    if (!date_ok(p->sending_day_date) || !date_ok(p->sent_today_date))
        return err_set(e, IPW_EUSAGE, "provider %s: dates must be written YYYY-MM-DD", p->name);
    const char *doing = "save a provider's state";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_PROV_SAVE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, p->name);
    sqlite3_bind_int(s, 2, p->stage);
    sqlite3_bind_int(s, 3, p->sending_day);
    bind_text(s, 4, p->sending_day_date);
    sqlite3_bind_double(s, 5, p->rate_per_min);
    sqlite3_bind_int64(s, 6, p->sent_today);
    bind_text(s, 7, p->sent_today_date);
    bind_opt(s, 8, p->paused_until_ms);
    bind_text(s, 9, p->pause_reason);
    sqlite3_bind_int(s, 10, p->pause_level);
    sqlite3_bind_int(s, 11, p->pause_manual ? 1 : 0);
    bind_opt(s, 12, p->last_deferral_ms);
    bind_opt(s, 13, p->rate_changed_ms);
    bind_text(s, 14, p->last_reply);
    bind_opt(s, 15, p->last_reply_ms);
    bind_opt(s, 16, p->next_send_ms);
    sqlite3_bind_int64(s, 17, p->updated_ms);
    bind_opt(s, 18, p->pace_anchor_ms);
    sqlite3_bind_int64(s, 19, p->pace_n);
    sqlite3_bind_double(s, 20, p->pace_rate);
    bind_text(s, 21, p->ip ? p->ip : "");
    return run(st, s, doing, e);
}

void store_provider_clear(struct store_provider *p)
{
    free_str(p->name);
    free_str(p->ip);
    free_str(p->sending_day_date);
    free_str(p->sent_today_date);
    free_str(p->pause_reason);
    free_str(p->last_reply);
    memset(p, 0, sizeof *p);
}

ipw_status store_lane_load(struct store *st, const char *name, const char *ip,
                           struct store_provider *out, struct err *e)
{
    const char *doing = "read a provider's state";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_PROV_LOAD, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, name);
    bind_text(s, 2, ip ? ip : "");
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        struct store_provider v;
        int oom = 0;
        prov_from_row(s, &v);
        *out = v;
        out->name = dup_str(v.name, &oom);
        out->ip = dup_str(v.ip, &oom);
        out->sending_day_date = dup_str(v.sending_day_date, &oom);
        out->sent_today_date = dup_str(v.sent_today_date, &oom);
        out->pause_reason = dup_str(v.pause_reason, &oom);
        out->last_reply = dup_str(v.last_reply, &oom);
        if (oom) {
            store_provider_clear(out);
            r = err_set(e, IPW_ENOMEM, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        if (ip && *ip)
            r = err_set(e, IPW_ENOTFOUND, "no state recorded for provider %s from %s in %s", name,
                        ip, st->path);
        else
            r = err_set(e, IPW_ENOTFOUND, "no state recorded for provider %s in %s", name,
                        st->path);
    } else {
        r = db_fail(st, rc, doing, e);
    }
    stmt_done(s);
    return r;
}

ipw_status store_provider_load(struct store *st, const char *name, struct store_provider *out,
                               struct err *e)
{
    return store_lane_load(st, name, "", out, e);
}

ipw_status store_providers_each(struct store *st, store_provider_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the providers' state";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_PROV_EACH, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_provider v;
        prov_from_row(s, &v);
        if (cb(&v, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

struct names_ctx {
    store_name_cb cb;
    void *ctx;
    char last[256]; /* the name given last: a pool's lanes of one provider come in a row */
    bool any;
};

static int names_each(const struct store_provider *p, void *ctx)
{
    struct names_ctx *n = ctx;
    if (n->any && strcmp(n->last, p->name) == 0)
        return 0;
    n->any = true;
    snprintf(n->last, sizeof n->last, "%s", p->name);
    return n->cb(p->name, n->ctx);
}

ipw_status store_provider_names(struct store *st, store_name_cb cb, void *ctx, struct err *e)
{
    struct names_ctx n = {.cb = cb, .ctx = ctx};
    return store_providers_each(st, names_each, &n, e);
}

ipw_status store_attempt_counts(struct store *st, const char *provider, const char *source_ip,
                                int64_t since_ms, int64_t until_ms,
                                struct store_attempt_counts *out, struct err *e)
{
    const char *doing = "count a source IP's attempts";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_ATTEMPT_COUNTS, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, provider);
    bind_text(s, 2, source_ip);
    sqlite3_bind_int64(s, 3, since_ms);
    sqlite3_bind_int64(s, 4, until_ms);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        out->attempts = sqlite3_column_int64(s, 0);
        out->delivered = sqlite3_column_int64(s, 1);
        out->deferred = sqlite3_column_int64(s, 2);
        out->bounced = sqlite3_column_int64(s, 3);
    } else {
        r = db_fail(st, rc, doing, e);
    }
    stmt_done(s);
    return r;
}

ipw_status store_lanes_resume(struct store *st, const char *name, int64_t now_ms, int64_t *count,
                              struct err *e)
{
    const char *doing = "resume a provider's IPs";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_LANES_RESUME, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, name);
    sqlite3_bind_int64(s, 2, now_ms);
    ipw_status r = run(st, s, doing, e);
    if (r == IPW_OK && count)
        *count = sqlite3_changes(st->db);
    return r;
}

/* ---- rule actions ---- */

ipw_status store_rule_add(struct store *st, const struct store_rule_action *a, int64_t *id,
                          struct err *e)
{
    if (!a->provider || !*a->provider || !a->rule || !*a->rule)
        return err_set(e, IPW_EUSAGE, "a rule action needs a provider and a rule");
    if (!IN_SET(a->action, ACTIONS))
        return err_set(e, IPW_EUSAGE, "unknown rule action \"%s\"",
                       a->action ? a->action : "(none)");
    const char *doing = "record a rule action";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_RULE_ADD, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, a->provider);
    bind_text(s, 2, a->rule);
    bind_text(s, 3, a->action);
    if (a->rate_per_min > 0)
        sqlite3_bind_double(s, 4, a->rate_per_min);
    else
        sqlite3_bind_null(s, 4);
    bind_text(s, 5, a->reason);
    sqlite3_bind_int64(s, 6, a->started_ms);
    bind_opt(s, 7, a->expires_ms);
    sqlite3_bind_int(s, 8, a->manual ? 1 : 0);
    bind_text(s, 9, a->ip ? a->ip : "");
    ipw_status r = run(st, s, doing, e);
    if (r == IPW_OK && id)
        *id = sqlite3_last_insert_rowid(st->db);
    return r;
}

static void rule_from_row(sqlite3_stmt *s, struct store_rule_action *a)
{
    a->id = sqlite3_column_int64(s, 0);
    a->provider = col_text(s, 1);
    a->rule = col_text(s, 2);
    a->action = col_text(s, 3);
    a->rate_per_min = sqlite3_column_double(s, 4);
    a->reason = col_text(s, 5);
    a->started_ms = sqlite3_column_int64(s, 6);
    a->expires_ms = sqlite3_column_int64(s, 7);
    a->manual = sqlite3_column_int(s, 8);
    a->ip = col_text(s, 9);
}

ipw_status store_rules_active(struct store *st, int64_t now_ms, const char *provider,
                              store_rule_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the active rule actions";
    enum q q = provider ? Q_RULES_ACTIVE_PROVIDER : Q_RULES_ACTIVE;
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, q, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, now_ms);
    if (provider)
        bind_text(s, 2, provider);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_rule_action a;
        rule_from_row(s, &a);
        if (cb(&a, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

ipw_status store_rules_each(struct store *st, const char *provider, int64_t since_ms,
                            int64_t until_ms, store_rule_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the rule actions";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_RULES_EACH, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, since_ms ? since_ms : INT64_MIN);
    sqlite3_bind_int64(s, 3, until_ms ? until_ms : INT64_MAX);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_rule_action a;
        rule_from_row(s, &a);
        if (cb(&a, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

ipw_status store_rules_end(struct store *st, const char *provider, int64_t now_ms, int manual_only,
                           int64_t *count, struct err *e)
{
    if (count)
        *count = 0;
    if (!provider)
        return err_set(e, IPW_EUSAGE, "ending rule actions needs a provider");
    const char *doing = "end rule actions";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_RULES_END, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, now_ms);
    sqlite3_bind_int(s, 3, manual_only ? 1 : 0);
    ipw_status r = run(st, s, doing, e);
    if (r == IPW_OK && count)
        *count = sqlite3_changes(st->db);
    return r;
}

ipw_status store_rules_purge(struct store *st, int64_t before_ms, int64_t *count, struct err *e)
{
    if (count)
        *count = 0;
    const char *doing = "delete expired rule actions";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_RULES_PURGE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, before_ms);
    ipw_status r = run(st, s, doing, e);
    if (r == IPW_OK && count)
        *count = sqlite3_changes(st->db);
    return r;
}

/* ---- MX cache ---- */

ipw_status store_mx_put(struct store *st, const struct store_mx *m, struct err *e)
{
    if (!m->domain || !*m->domain || !m->status || !*m->status)
        return err_set(e, IPW_EUSAGE, "an MX cache entry needs a domain and a status");
    const char *doing = "cache an MX lookup";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_MX_PUT, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, m->domain);
    bind_text(s, 2, m->status);
    bind_text(s, 3, m->provider);
    bind_text(s, 4, m->hosts_json ? m->hosts_json : "[]");
    sqlite3_bind_int64(s, 5, m->fetched_ms);
    sqlite3_bind_int64(s, 6, m->expires_ms);
    return run(st, s, doing, e);
}

void store_mx_clear(struct store_mx *m)
{
    free_str(m->domain);
    free_str(m->status);
    free_str(m->provider);
    free_str(m->hosts_json);
    memset(m, 0, sizeof *m);
}

ipw_status store_mx_get(struct store *st, const char *domain, int64_t now_ms, struct store_mx *out,
                        struct err *e)
{
    const char *doing = "read the MX cache";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_MX_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, domain);
    sqlite3_bind_int64(s, 2, now_ms);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        int oom = 0;
        out->domain = dup_str(col_text(s, 0), &oom);
        out->status = dup_str(col_text(s, 1), &oom);
        out->provider = dup_str(col_text(s, 2), &oom);
        out->hosts_json = dup_str(col_text(s, 3), &oom);
        out->fetched_ms = sqlite3_column_int64(s, 4);
        out->expires_ms = sqlite3_column_int64(s, 5);
        if (oom) {
            store_mx_clear(out);
            r = err_set(e, IPW_ENOMEM, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        r = IPW_ENOTFOUND; /* a cache miss is routine: no sentence */
    } else {
        r = db_fail(st, rc, doing, e);
    }
    stmt_done(s);
    return r;
}

/* ---- pre-flight results ---- */

ipw_status store_preflight_add(struct store *st, int64_t run_ms, int ok, const char *json,
                               int64_t *id, struct err *e)
{
    const char *doing = "record a pre-flight run";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_PREFLIGHT_ADD, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, run_ms);
    sqlite3_bind_int(s, 2, ok ? 1 : 0);
    bind_text(s, 3, json ? json : "{}");
    ipw_status r = run(st, s, doing, e);
    if (r == IPW_OK && id)
        *id = sqlite3_last_insert_rowid(st->db);
    return r;
}

void store_preflight_clear(struct store_preflight *p)
{
    free_str(p->json);
    memset(p, 0, sizeof *p);
}

ipw_status store_preflight_latest(struct store *st, struct store_preflight *out, struct err *e)
{
    const char *doing = "read the latest pre-flight run";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_PREFLIGHT_LATEST, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        int oom = 0;
        out->id = sqlite3_column_int64(s, 0);
        out->run_ms = sqlite3_column_int64(s, 1);
        out->ok = sqlite3_column_int(s, 2);
        out->json = dup_str(col_text(s, 3), &oom);
        if (oom) {
            store_preflight_clear(out);
            r = err_set(e, IPW_ENOMEM, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "no pre-flight run recorded in %s", st->path);
    } else {
        r = db_fail(st, rc, doing, e);
    }
    stmt_done(s);
    return r;
}

/* ---- batches, recipients queued from the list, recent replies, meta ---- */

ipw_status store_batch_begin(struct store *st, struct err *e)
{
    if (st->batch)
        return err_set(e, IPW_ESOFTWARE, "state file %s: a batch is already open", st->path);
    ipw_status r = run_plain(st, Q_BEGIN, "begin a batch", e);
    if (r == IPW_OK)
        st->batch = 1;
    return r;
}

ipw_status store_batch_end(struct store *st, ipw_status r, struct err *e)
{
    if (!st->batch)
        return r;
    st->batch = 0;
    return tx_end(st, r, "commit a batch", e);
}

ipw_status store_recipient_queue(struct store *st, const struct store_recipient *rc_, int *added,
                                 struct err *e)
{
    if (added)
        *added = 0;
    if (!rc_->address || !*rc_->address)
        return err_set(e, IPW_EUSAGE, "a recipient needs an address");
    const char *domain = domain_of(rc_->address, rc_->domain);
    if (!domain)
        return err_set(e, IPW_EUSAGE, "recipient \"%s\" has no domain", rc_->address);
    const char *state = rc_->state ? rc_->state : "pending";
    if (!IN_SET(state, RCPT_STATES))
        return err_set(e, IPW_EUSAGE, "unknown recipient state \"%s\"", state);
    const char *doing = "queue a recipient";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_RCPT_QUEUE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, rc_->address);
    bind_text(s, 2, domain);
    bind_text(s, 3, rc_->provider);
    bind_text(s, 4, state);
    sqlite3_bind_int64(s, 5, rc_->next_at_ms);
    bind_text(s, 6, rc_->reason);
    sqlite3_bind_int64(s, 7, rc_->added_ms);
    if (rc_->list_offset >= 0)
        sqlite3_bind_int64(s, 8, rc_->list_offset);
    else
        sqlite3_bind_null(s, 8);
    sqlite3_bind_int64(s, 9, rc_->list_line);
    sqlite3_bind_int(s, 10, rc_->cycle > 0 ? rc_->cycle : 0);
    bind_opt(s, 11, rc_->list_scan);
    bind_opt(s, 12, rc_->list_digest);
    ipw_status r = run(st, s, doing, e);
    if (r == IPW_OK && added)
        *added = sqlite3_changes(st->db) > 0;
    return r;
}

ipw_status store_attempts_since(struct store *st, const char *provider, int64_t since_ms,
                                store_attempt_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read recent replies";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_ATTEMPTS_SINCE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, since_ms);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_attempt a;
        attempt_from_row(s, &a);
        if (cb(&a, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

ipw_status store_meta_get(struct store *st, const char *key, char **value, struct err *e)
{
    *value = NULL;
    const char *doing = "read a setting";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_META_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, key);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        const char *v = col_text(s, 0);
        *value = strdup(v ? v : "");
        if (!*value)
            r = err_set(e, IPW_ENOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "no setting %s in %s", key, st->path);
    } else {
        r = db_fail(st, rc, doing, e);
    }
    stmt_done(s);
    return r;
}

ipw_status store_meta_set(struct store *st, const char *key, const char *value, struct err *e)
{
    const char *doing = "save a setting";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_META_SET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, key);
    bind_text(s, 2, value);
    return run(st, s, doing, e);
}

/* ---- the recipient list: scans, removals, releases, providers ---- */

ipw_status store_recipient_seen(struct store *st, const struct store_recipient *r, int64_t now_ms,
                                int *known, struct err *e)
{
    *known = 0;
    if (!r->address || !*r->address)
        return err_set(e, IPW_EUSAGE, "a recipient needs an address");
    const char *doing = "note a recipient of the list";
    sqlite3_stmt *s;
    ipw_status sr = stmt_get(st, Q_RCPT_SEEN, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    bind_text(s, 1, r->address);
    if (r->list_offset >= 0)
        sqlite3_bind_int64(s, 2, r->list_offset);
    else
        sqlite3_bind_null(s, 2);
    sqlite3_bind_int64(s, 3, r->list_line);
    sqlite3_bind_int64(s, 4, r->list_scan);
    bind_opt(s, 5, r->list_digest);
    sqlite3_bind_int64(s, 6, now_ms);
    ipw_status res = run(st, s, doing, e);
    if (res == IPW_OK)
        *known = sqlite3_changes(st->db) > 0;
    return res;
}

ipw_status store_recipients_sweep(struct store *st, int64_t scan, const char *reason,
                                  int64_t *removed, struct err *e)
{
    if (removed)
        *removed = 0;
    const char *doing = "mark the recipients no longer in the list";
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    sqlite3_stmt *s;
    r = stmt_get(st, Q_RCPT_SWEEP, doing, &s, e);
    if (r == IPW_OK) {
        sqlite3_bind_int64(s, 1, scan);
        bind_text(s, 2, reason);
        r = run(st, s, doing, e);
        if (r == IPW_OK && removed)
            *removed = sqlite3_changes(st->db);
    }
    return tx_end(st, r, doing, e);
}

ipw_status store_recipient_release(struct store *st, const char *address, int64_t now_ms,
                                   struct store_recipient *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    const char *doing = "release a recipient";
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    r = store_recipient_get(st, address, out, e);
    if (r == IPW_OK && (strcmp(out->state, "held") == 0 || strcmp(out->state, "skipped") == 0)) {
        sqlite3_stmt *s;
        r = stmt_get(st, Q_RCPT_RELEASE, doing, &s, e);
        if (r == IPW_OK) {
            bind_text(s, 1, address);
            sqlite3_bind_int64(s, 2, now_ms);
            r = run(st, s, doing, e);
        }
    }
    r = tx_end(st, r, doing, e);
    if (r != IPW_OK)
        store_recipient_clear(out);
    return r;
}

ipw_status store_recipients_release_held(struct store *st, const char *provider, int64_t now_ms,
                                         store_release_cb cb, void *ctx, int64_t *count,
                                         struct err *e)
{
    if (count)
        *count = 0;
    const char *doing = "release held recipients";
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    sqlite3_stmt *s;
    r = stmt_get(st, Q_RCPT_RELEASE_HELD, doing, &s, e);
    if (r != IPW_OK)
        return tx_end(st, r, doing, e);
    sqlite3_bind_int64(s, 1, now_ms);
    bind_text(s, 2, provider);
    int rc;
    int64_t n = 0;
    /* RETURNING gives each row as it is changed; the callback only reads its strings. */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        n++;
        if (cb)
            cb(col_text(s, 0), col_text(s, 1), ctx);
    }
    if (rc != SQLITE_DONE)
        r = db_fail(st, rc, doing, e);
    stmt_done(s);
    r = tx_end(st, r, doing, e);
    if (count && r == IPW_OK)
        *count = n;
    return r;
}

/* Runs a query of one text column (Q_RCPT_DOMAINS takes a as its parameter) and calls cb with
 * each row's value. */
static ipw_status names_query(struct store *st, enum q q, const char *a, store_name_cb cb,
                              void *ctx, const char *doing, struct err *e)
{
    sqlite3_stmt *s;
    ipw_status r = stmt_get(st, q, doing, &s, e);
    if (r != IPW_OK)
        return r;
    if (q == Q_RCPT_DOMAINS)
        bind_text(s, 1, a);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cb(col_text(s, 0), ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

ipw_status store_recipient_providers(struct store *st, store_name_cb cb, void *ctx, struct err *e)
{
    return names_query(st, Q_RCPT_PROVIDERS, NULL, cb, ctx, "read the recipients' providers", e);
}

ipw_status store_recipient_domains(struct store *st, const char *provider, store_name_cb cb,
                                   void *ctx, struct err *e)
{
    return names_query(st, Q_RCPT_DOMAINS, provider, cb, ctx, "read the recipients' domains", e);
}

ipw_status store_recipients_set_provider(struct store *st, const char *from, const char *domain,
                                         const char *to, int64_t *count, struct err *e)
{
    if (count)
        *count = 0;
    const char *doing = "move recipients to another provider";
    sqlite3_stmt *s;
    ipw_status r = stmt_get(st, Q_RCPT_SET_PROVIDER, doing, &s, e);
    if (r != IPW_OK)
        return r;
    bind_text(s, 1, from);
    bind_text(s, 2, domain);
    bind_text(s, 3, to);
    r = run(st, s, doing, e);
    if (r == IPW_OK && count)
        *count = sqlite3_changes(st->db);
    return r;
}

ipw_status store_campaign_check(struct store *st, const char *campaign, struct err *e)
{
    if (!campaign || !*campaign)
        return IPW_OK;
    char *have = NULL;
    ipw_status r = store_meta_get(st, "campaign", &have, e);
    if (r == IPW_ENOTFOUND) {
        /* First use (or a file from before campaigns were recorded): it is this campaign's. */
        err_clear(e);
        const char *doing = "record the campaign";
        r = tx_begin(st, doing, e);
        if (r == IPW_OK) {
            /* Read again under the write lock: another command may have claimed it. */
            free(have);
            have = NULL;
            r = store_meta_get(st, "campaign", &have, e);
            if (r == IPW_ENOTFOUND) {
                err_clear(e);
                r = store_meta_set(st, "campaign", campaign, e);
            }
            r = tx_end(st, r, doing, e);
        }
        if (r != IPW_OK && r != IPW_ENOMEM) {
            /* A reader that cannot write (a read-only file, a busy one) leaves the recording to
             * the next command that can: it only looks. */
            err_clear(e);
            r = IPW_OK;
        }
    }
    if (r == IPW_OK && have && strcmp(have, campaign) != 0)
        r = err_set(e, IPW_ECONFIG,
                    "state file %s belongs to campaign \"%s\" (recorded when it was first used), "
                    "not to campaign \"%s\"",
                    st->path, have, campaign);
    free(have);
    return r;
}

ipw_status store_recipients_unconfirmed(struct store *st, int64_t scan, int *any, struct err *e)
{
    *any = 0;
    const char *doing = "look for recipients the list scan has not found yet";
    sqlite3_stmt *s;
    ipw_status r = stmt_get(st, Q_RCPT_UNCONFIRMED, doing, &s, e);
    if (r != IPW_OK)
        return r;
    sqlite3_bind_int64(s, 1, scan);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *any = sqlite3_column_int(s, 0);
    else
        r = db_fail(st, rc, doing, e);
    stmt_done(s);
    return r;
}

/* ---- feedback read from mailboxes ---- */

/* A statement of the feedback functions, prepared for one use (a poll reads a few messages; the
 * per-message statements above stay cached). */
static ipw_status prep(struct store *st, const char *sql, const char *doing, sqlite3_stmt **out,
                       struct err *e)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);
    if (rc != SQLITE_OK) {
        ipw_status r = db_fail(st, rc, doing, e);
        sqlite3_finalize(*out);
        *out = NULL;
        return r;
    }
    return IPW_OK;
}

/* Runs a one-use statement to its end and finalizes it. */
static ipw_status run_once(struct store *st, sqlite3_stmt *s, const char *doing, struct err *e)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

ipw_status store_attempt_set_mail_from(struct store *st, int64_t id, const char *mail_from,
                                       struct err *e)
{
    const char *doing = "record an attempt's envelope sender";
    sqlite3_stmt *s;
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    r = prep(st, "UPDATE attempts SET mail_from = ?2 WHERE id = ?1", doing, &s, e);
    if (r == IPW_OK) {
        sqlite3_bind_int64(s, 1, id);
        bind_text(s, 2, mail_from);
        r = run_once(st, s, doing, e);
    }
    return tx_end(st, r, doing, e);
}

ipw_status store_attempt_by_message_id(struct store *st, const char *message_id, int64_t *id,
                                       struct err *e)
{
    const char *doing = "find an attempt by its Message-ID";
    sqlite3_stmt *s;
    /* The same message may have gone to a second MX host after the first failed: the one that
     * got the 250 is the one a report answers. */
    ipw_status r = prep(st,
                        "SELECT id FROM attempts WHERE message_id = ?1 AND dry_run = 0 "
                        "ORDER BY outcome = 'delivered' DESC, started_ms DESC, id DESC LIMIT 1",
                        doing, &s, e);
    if (r != IPW_OK)
        return r;
    bind_text(s, 1, message_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        r = err_set(e, IPW_ENOTFOUND, "no attempt sent Message-ID %s", message_id);
    else
        r = db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

ipw_status store_checkpoint_get(struct store *st, const char *mailbox, int64_t *uidvalidity,
                                int64_t *last_uid, int64_t *polled_ms, struct err *e)
{
    const char *doing = "read where the last poll of a mailbox stopped";
    sqlite3_stmt *s;
    ipw_status r =
        prep(st, "SELECT uidvalidity, last_uid, polled_ms FROM feedback_mailboxes WHERE name = ?1",
             doing, &s, e);
    if (r != IPW_OK)
        return r;
    bind_text(s, 1, mailbox);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *uidvalidity = sqlite3_column_int64(s, 0);
        *last_uid = sqlite3_column_int64(s, 1);
        if (polled_ms)
            *polled_ms = sqlite3_column_int64(s, 2);
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "mailbox %s was never polled", mailbox);
    } else {
        r = db_fail(st, rc, doing, e);
    }
    sqlite3_finalize(s);
    return r;
}

ipw_status store_checkpoint_each(struct store *st, store_checkpoint_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read when each mailbox was last polled";
    sqlite3_stmt *s;
    ipw_status r = prep(st,
                        "SELECT name, uidvalidity, last_uid, polled_ms FROM feedback_mailboxes "
                        "ORDER BY name",
                        doing, &s, e);
    if (r != IPW_OK)
        return r;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cb(col_text(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
               sqlite3_column_int64(s, 3), ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        r = db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

ipw_status store_checkpoint_set(struct store *st, const char *mailbox, int64_t uidvalidity,
                                int64_t last_uid, int64_t now_ms, struct err *e)
{
    const char *doing = "record where the poll of a mailbox stopped";
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    sqlite3_stmt *s;
    r = prep(st,
             "INSERT INTO feedback_mailboxes (name, uidvalidity, last_uid, polled_ms) "
             "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET "
             "uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, "
             "polled_ms = excluded.polled_ms",
             doing, &s, e);
    if (r == IPW_OK) {
        bind_text(s, 1, mailbox);
        sqlite3_bind_int64(s, 2, uidvalidity);
        sqlite3_bind_int64(s, 3, last_uid);
        sqlite3_bind_int64(s, 4, now_ms);
        r = run_once(st, s, doing, e);
    }
    return tx_end(st, r, doing, e);
}

static const char *const REPORT_KINDS[] = {"bounce", "delay", "complaint", "other"};
static const char *const REPORT_MATCHES[] = {"verp", "message-id", "header"};

/* Suppresses the recipient of a late bounce or a complaint; part of the caller's transaction. A
 * recipient no longer in the queue (another state file's list) has nothing to change. */
static ipw_status report_suppress(struct store *st, const char *address, const char *outcome,
                                  const char *reason, const char *doing, struct err *e)
{
    sqlite3_stmt *s;
    ipw_status r = prep(st,
                        "UPDATE recipients SET state = 'suppressed', reason = ?2, "
                        "last_outcome = coalesce(?3, last_outcome) WHERE address = ?1",
                        doing, &s, e);
    if (r != IPW_OK)
        return r;
    bind_text(s, 1, address);
    bind_text(s, 2, reason);
    bind_text(s, 3, outcome);
    return run_once(st, s, doing, e);
}

ipw_status store_report_add(struct store *st, struct store_report *rep, int *added, struct err *e)
{
    if (!rep->digest || !*rep->digest || !rep->mailbox || !rep->kind ||
        !IN_SET(rep->kind, REPORT_KINDS))
        return err_set(e, IPW_EUSAGE, "a report needs a mailbox, a digest and a known kind");
    if (rep->matched_by && !IN_SET(rep->matched_by, REPORT_MATCHES))
        return err_set(e, IPW_EUSAGE, "unknown report match \"%s\"", rep->matched_by);
    *added = 0;
    rep->late = 0;
    rep->provider = NULL;
    const char *doing = "record a report read from the mailbox";
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    sqlite3_stmt *s = NULL;
    char *recipient = NULL, *provider = NULL, *outcome = NULL;
    int64_t started_ms = 0;
    /* The attempt it answers, if any: its recipient and provider are the report's. */
    if (rep->attempt_id > 0) {
        r = prep(st,
                 "SELECT recipient, provider, outcome, started_ms FROM attempts "
                 "WHERE id = ?1 AND dry_run = 0",
                 doing, &s, e);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, rep->attempt_id);
            int rc = sqlite3_step(s);
            if (rc == SQLITE_ROW) {
                recipient = strdup(col_text(s, 0));
                provider = strdup(col_text(s, 1));
                outcome = strdup(col_text(s, 2));
                started_ms = sqlite3_column_int64(s, 3);
                if (!recipient || !provider || !outcome)
                    r = err_set(e, IPW_ENOMEM, "out of memory");
            } else if (rc == SQLITE_DONE) {
                rep->attempt_id = 0; /* a token or id of another state file */
                rep->matched_by = NULL;
            } else {
                r = db_fail(st, rc, doing, e);
            }
            sqlite3_finalize(s);
        }
    } else {
        rep->matched_by = NULL;
    }
    if (r == IPW_OK)
        r = prep(st,
                 "INSERT INTO feedback_reports (read_ms, mailbox, uidvalidity, uid, digest, kind, "
                 "format, matched_by, attempt_id, recipient, provider, status, feedback_type, "
                 "text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, coalesce(?10, ?15), ?11, "
                 "?12, ?13, ?14) ON CONFLICT (digest) DO NOTHING",
                 doing, &s, e);
    if (r == IPW_OK) {
        sqlite3_bind_int64(s, 1, rep->read_ms);
        bind_text(s, 2, rep->mailbox);
        bind_opt(s, 3, rep->uidvalidity);
        bind_opt(s, 4, rep->uid);
        bind_text(s, 5, rep->digest);
        bind_text(s, 6, rep->kind);
        bind_text(s, 7, rep->format);
        bind_text(s, 8, rep->matched_by);
        bind_opt(s, 9, rep->attempt_id);
        bind_text(s, 10, recipient);
        bind_text(s, 11, provider);
        bind_text(s, 12, rep->status);
        bind_text(s, 13, rep->feedback_type);
        bind_text(s, 14, rep->text);
        bind_text(s, 15, rep->recipient);
        r = run_once(st, s, doing, e);
        if (r == IPW_OK)
            *added = sqlite3_changes(st->db) > 0;
    }
    bool bounce = !strcmp(rep->kind, "bounce"), complaint = !strcmp(rep->kind, "complaint");
    if (r == IPW_OK && *added && recipient && bounce && !strcmp(outcome, "delivered")) {
        /* A late bounce: the 250 stays in the row, the outcome becomes bounced, and the hour's
         * counters move one message from delivered to bounced. */
        r = prep(st, "UPDATE attempts SET outcome = 'bounced' WHERE id = ?1", doing, &s, e);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, rep->attempt_id);
            r = run_once(st, s, doing, e);
        }
        if (r == IPW_OK)
            r = prep(st,
                     "UPDATE summary_hourly SET delivered = max(delivered - 1, 0), "
                     "bounced = bounced + 1, late_bounces = late_bounces + 1 "
                     "WHERE provider = ?1 AND hour_ms = ?2",
                     doing, &s, e);
        if (r == IPW_OK) {
            bind_text(s, 1, provider);
            sqlite3_bind_int64(s, 2, (started_ms / 3600000) * 3600000);
            r = run_once(st, s, doing, e);
        }
        rep->late = 1;
    }
    if (r == IPW_OK && *added && recipient && complaint) {
        /* Counted against the hour (so the local day) the message was sent: a day's complaint
         * rate is its complaints over its delivered mail, and the next sending day's stage
         * (ramp.h) is judged on it, however late the reports come in. */
        r = prep(st,
                 "INSERT INTO summary_hourly (provider, hour_ms, complaints) VALUES (?1, ?2, 1) "
                 "ON CONFLICT (provider, hour_ms) DO UPDATE SET complaints = complaints + 1",
                 doing, &s, e);
        if (r == IPW_OK) {
            bind_text(s, 1, provider);
            sqlite3_bind_int64(s, 2, (started_ms / 3600000) * 3600000);
            r = run_once(st, s, doing, e);
        }
    }
    if (r == IPW_OK && *added && recipient && (bounce || complaint)) {
        char reason[600];
        snprintf(reason, sizeof reason, "%s read from the mailbox%s%s",
                 bounce ? "late bounce" : "complaint report", rep->status ? ": " : "",
                 rep->status ? rep->status : "");
        r = report_suppress(st, recipient, bounce ? "bounced" : NULL, reason, doing, e);
    }
    r = tx_end(st, r, doing, e);
    free(recipient);
    free(outcome);
    if (r == IPW_OK)
        rep->provider = provider; /* the caller frees it (store_report_add's contract) */
    else
        free(provider);
    return r;
}

ipw_status store_reports_for_recipient(struct store *st, const char *recipient, store_report_cb cb,
                                       void *ctx, struct err *e)
{
    const char *doing = "read the reports of a recipient";
    sqlite3_stmt *s;
    ipw_status r = prep(st,
                        "SELECT read_ms, mailbox, uidvalidity, uid, digest, kind, format, "
                        "matched_by, attempt_id, recipient, provider, status, feedback_type, "
                        "text FROM feedback_reports WHERE recipient = ?1 ORDER BY read_ms, id",
                        doing, &s, e);
    if (r != IPW_OK)
        return r;
    bind_text(s, 1, recipient);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_report rep = {
            .read_ms = sqlite3_column_int64(s, 0),
            .mailbox = col_text(s, 1),
            .uidvalidity = sqlite3_column_int64(s, 2),
            .uid = sqlite3_column_int64(s, 3),
            .digest = col_text(s, 4),
            .kind = col_text(s, 5),
            .format = col_text(s, 6),
            .matched_by = col_text(s, 7),
            .attempt_id = sqlite3_column_int64(s, 8),
            .recipient = col_text(s, 9),
            .provider = col_text(s, 10),
            .status = col_text(s, 11),
            .feedback_type = col_text(s, 12),
            .text = col_text(s, 13),
        };
        if (cb(&rep, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    r = rc == SQLITE_DONE ? IPW_OK : db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

/* ---- inbox placement ---- */

static const char *const PLACEMENT_RESULTS[] = {"inbox", "junk", "missing"};

ipw_status store_placement_copies(struct store *st, const char *seed, int pending_only,
                                  int64_t since_ms, store_placement_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the copies sent to seed mailboxes";
    sqlite3_stmt *s;
    /* seed NULL: every seed's copies; the caller names the seeds with the plan (a seed is
     * matched by its address, whatever list sent to it). */
    ipw_status r = prep(st,
                        "SELECT a.id, a.recipient, a.message_id, a.started_ms, a.provider, "
                        "a.source_ip, p.result, p.folder, p.found_ms FROM attempts a "
                        "LEFT JOIN placements p ON p.attempt_id = a.id "
                        "WHERE a.outcome = 'delivered' AND a.dry_run = 0 AND a.started_ms >= ?3 "
                        "AND (?1 IS NULL OR a.recipient = ?1 COLLATE NOCASE) "
                        "AND (?2 = 0 OR p.attempt_id IS NULL) ORDER BY a.started_ms, a.id",
                        doing, &s, e);
    if (r != IPW_OK)
        return r;
    bind_text(s, 1, seed);
    sqlite3_bind_int(s, 2, pending_only);
    sqlite3_bind_int64(s, 3, since_ms);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_placement c = {
            .attempt_id = sqlite3_column_int64(s, 0),
            .seed = (const char *)sqlite3_column_text(s, 1),
            .message_id = (const char *)sqlite3_column_text(s, 2),
            .sent_ms = sqlite3_column_int64(s, 3),
            .provider = (const char *)sqlite3_column_text(s, 4),
            .ip = (const char *)sqlite3_column_text(s, 5),
            .result = (const char *)sqlite3_column_text(s, 6),
            .folder = (const char *)sqlite3_column_text(s, 7),
            .found_ms = sqlite3_column_int64(s, 8),
        };
        if (cb(&c, ctx))
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

ipw_status store_placement_set(struct store *st, int64_t attempt_id, const char *seed,
                               const char *result, const char *folder, int64_t found_ms,
                               struct err *e)
{
    const char *doing = "record where a seed copy landed";
    int known = 0;
    for (size_t i = 0; i < sizeof PLACEMENT_RESULTS / sizeof PLACEMENT_RESULTS[0]; i++)
        if (result && strcmp(result, PLACEMENT_RESULTS[i]) == 0)
            known = 1;
    if (!known)
        return err_set(e, IPW_EUSAGE, "%s: result %s is not inbox, junk or missing", doing,
                       result ? result : "(none)");
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    sqlite3_stmt *s;
    /* First finding wins: a copy moved by someone after it was found keeps its first folder. */
    r = prep(st,
             "INSERT OR IGNORE INTO placements (attempt_id, seed, result, folder, found_ms) "
             "VALUES (?1, ?2, ?3, ?4, ?5)",
             doing, &s, e);
    if (r == IPW_OK) {
        sqlite3_bind_int64(s, 1, attempt_id);
        bind_text(s, 2, seed);
        bind_text(s, 3, result);
        bind_text(s, 4, folder);
        sqlite3_bind_int64(s, 5, found_ms);
        r = run_once(st, s, doing, e);
    }
    return tx_end(st, r, doing, e);
}

ipw_status store_recipient_requeue(struct store *st, const char *address, int64_t before_ms,
                                   int64_t now_ms, int *requeued, struct err *e)
{
    const char *doing = "queue a seed again for today";
    if (requeued)
        *requeued = 0;
    ipw_status r = tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    sqlite3_stmt *s;
    r = prep(st,
             "UPDATE recipients SET state = 'pending', next_at_ms = ?3, retries = 0, "
             "reason = NULL WHERE address = ?1 COLLATE NOCASE AND state = 'done' "
             "AND last_attempt_ms IS NOT NULL AND last_attempt_ms < ?2",
             doing, &s, e);
    if (r == IPW_OK) {
        bind_text(s, 1, address);
        sqlite3_bind_int64(s, 2, before_ms);
        sqlite3_bind_int64(s, 3, now_ms);
        r = run_once(st, s, doing, e);
        if (r == IPW_OK && requeued)
            *requeued = sqlite3_changes(st->db) > 0;
    }
    return tx_end(st, r, doing, e);
}
