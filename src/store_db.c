/*
 * store_db: the bottom of the store, which every other store file uses: the SQL of the
 * statements each handle prepares once and keeps (the engine runs the same few for every
 * message), the helpers that prepare, bind, step and end them, SQLite's errors turned into
 * sentences, transactions and batches. Every write is one short BEGIN IMMEDIATE transaction:
 * taking the write lock up front means a transaction never has to upgrade from reader to writer
 * halfway, which in SQLite fails without waiting. Values are always bound, never formatted into
 * SQL. Inside a batch (store_batch_begin, at the end of this file) the writes of several calls
 * are one transaction: store_tx_begin and store_tx_end then leave the commit to the batch's end,
 * which also writes the hourly counters the batch's outcomes added to (store_sum_hold) once.
 */
#include "store_db.h"

#include "ipwarm/buf.h"

/* Why a recipient is held (an SQL string literal): what `trace` and `status` show. */
#define STORE_HELD_REASON                                                                          \
    "'the run stopped while a message to this recipient was in flight; it may have been "          \
    "delivered, so it is not sent again until released (ipwarm release)'"

/* ---- prepared statements ---- */

#define ATTEMPT_COLS                                                                               \
    "id, started_ms, finished_ms, recipient, domain, provider, mx, source_ip, message_id, phase, " \
    "code, enhanced, text, outcome, retry_no, dry_run, mail_from"
#define RCPT_COLS                                                                                  \
    "id, address, domain, provider, state, next_at_ms, retries, reason, first_attempt_ms, "        \
    "last_attempt_ms, last_outcome, cycle, added_ms, list_offset, list_line, list_scan, "          \
    "list_digest"
/* A recipient's row by its id (?6) when the caller knows it, else by its address (?1), which
 * must match either way: a look-up of the address (case-insensitive, in an index of every
 * recipient) cost as much as the rest of the update, and the run knows each id. */
#define RCPT_BY_ID                                                                                 \
    "id = coalesce(?6, (SELECT id FROM recipients WHERE address = ?1)) AND address = ?1"
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
    /* A batch joined after a hold (store_batch_join): once per round of the run loop. */
    [Q_SAVEPOINT_JOINED] = "SAVEPOINT joined",
    [Q_USER_VERSION] = "PRAGMA user_version",
    [Q_ATTEMPT_INSERT] =
        "INSERT INTO attempts (started_ms, recipient, domain, provider, mx, source_ip, "
        "message_id, phase, retry_no, dry_run, mail_from, outcome) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'in-flight')",
    /* first_attempt_ms is set by the outcome (Q_RCPT_RETRY, Q_RCPT_FINAL), not here: an
     * attempt that ends blocked or requeued does not start the recipient's give-up clock. */
    [Q_ATTEMPT_STAMP_RCPT] = "UPDATE recipients SET last_attempt_ms = ?2, "
                             "last_outcome = 'in-flight' WHERE " RCPT_BY_ID,
    [Q_ATTEMPT_FINISH] = "UPDATE attempts SET finished_ms = ?2, phase = coalesce(?3, phase), "
                         "code = ?4, enhanced = ?5, text = ?6, outcome = ?7 "
                         "WHERE id = ?1 AND outcome = 'in-flight'",
    /* Not a RETURNING clause on the UPDATE above: SQLite gathers RETURNING rows in a temporary
     * table first, and that cost more than this second look-up by row id (bench/). */
    [Q_ATTEMPT_FACTS] =
        "SELECT provider, started_ms, dry_run, recipient FROM attempts WHERE id = ?1",
    [Q_SUMMARY_ADD] =
        "INSERT INTO summary_hourly (provider, hour_ms, attempts, delivered, deferred, bounced, "
        "failed, expired, unknown, blocked) VALUES (?1, ?2, ?10, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT (provider, hour_ms) DO UPDATE SET attempts = attempts + excluded.attempts, "
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
                     "WHERE " RCPT_BY_ID,
    [Q_RCPT_FINAL] = "UPDATE recipients SET state = CASE WHEN state = 'suppressed' THEN "
                     "state ELSE ?2 END, reason = CASE WHEN state = 'suppressed' THEN reason "
                     "ELSE ?5 END, last_attempt_ms = ?3, "
                     "first_attempt_ms = coalesce(first_attempt_ms, ?3), last_outcome = ?4 "
                     "WHERE " RCPT_BY_ID,
    /* Not the recipient's fault (the sender was refused, the run could not set up): its retry
     * count and give-up clock stay as they were. */
    [Q_RCPT_REQUEUE] = "UPDATE recipients SET state = CASE WHEN state IN ('removed', "
                       "'suppressed') THEN state ELSE 'pending' END, next_at_ms = ?2, "
                       "last_attempt_ms = coalesce(?3, last_attempt_ms), "
                       "last_outcome = coalesce(?4, last_outcome), reason = ?5 "
                       "WHERE " RCPT_BY_ID,
    [Q_RCPT_NEXT_CYCLE] = "UPDATE recipients SET state = CASE WHEN state IN ('removed', "
                          "'suppressed') THEN state ELSE 'pending' END, next_at_ms = ?2, "
                          "retries = 0, cycle = cycle + 1, first_attempt_ms = NULL, "
                          "reason = NULL, last_attempt_ms = ?3, last_outcome = ?4 "
                          "WHERE " RCPT_BY_ID,
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
                    "'pending' END, reason = ?5 WHERE " RCPT_BY_ID,
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

/* ---- small helpers ---- */

/*
 * Turns an SQLite result code into a status and a sentence naming the file and what the store
 * was trying to do. Must run before the failing statement is reset, which may clear errmsg.
 */
ipw_status store_db_fail(struct store *st, int rc, const char *doing, struct err *e)
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
ipw_status store_stmt_get(struct store *st, enum q q, const char *doing, sqlite3_stmt **out,
                          struct err *e)
{
    if (!st->stmt[q]) {
        int rc =
            sqlite3_prepare_v3(st->db, QSQL[q], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[q], NULL);
        if (rc != SQLITE_OK) {
            ipw_status r = store_db_fail(st, rc, doing, e);
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
void store_stmt_done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* Optional times and counts: 0 means "none" and is stored as NULL. */
void store_bind_opt(sqlite3_stmt *s, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

/* ?1 a provider (NULL: all), ?2 and ?3 a time range [since, until) where 0 leaves that end
 * open: the parameters of the queries that read a history (counters, rule actions). */
void store_bind_range(sqlite3_stmt *s, const char *provider, int64_t since_ms, int64_t until_ms)
{
    store_bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, since_ms ? since_ms : INT64_MIN);
    sqlite3_bind_int64(s, 3, until_ms ? until_ms : INT64_MAX);
}

const char *store_col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* Ends a cached statement after its last step, rc: SQLITE_DONE, or a failure to report. */
ipw_status store_rows_end(struct store *st, sqlite3_stmt *s, int rc, const char *doing,
                          struct err *e)
{
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : store_db_fail(st, rc, doing, e);
    store_stmt_done(s);
    return r;
}

/* The same for a one-use statement (store_prep), which it finalizes. */
ipw_status store_rows_end_once(struct store *st, sqlite3_stmt *s, int rc, const char *doing,
                               struct err *e)
{
    ipw_status r = rc == SQLITE_DONE ? IPW_OK : store_db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

/* Runs a statement that returns no rows (or whose rows do not matter). */
ipw_status store_run(struct store *st, sqlite3_stmt *s, const char *doing, struct err *e)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    return store_rows_end(st, s, rc, doing, e);
}

ipw_status store_run_plain(struct store *st, enum q q, const char *doing, struct err *e)
{
    sqlite3_stmt *s;
    ipw_status r = store_stmt_get(st, q, doing, &s, e);
    return r == IPW_OK ? store_run(st, s, doing, e) : r;
}

ipw_status store_tx_begin(struct store *st, const char *doing, struct err *e)
{
    /* A held batch is joined only by store_batch_join: anything else commits it first, so
     * that a write that fails halfway is rolled back alone, never committed with it. */
    if (st->held) {
        ipw_status r = store_batch_release(st, e);
        if (r != IPW_OK)
            return r;
    }
    if (st->batch)
        return IPW_OK;
    return store_run_plain(st, Q_BEGIN, doing, e);
}

void store_tx_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        store_run_plain(st, Q_ROLLBACK, "roll back", NULL);
}

ipw_status store_tx_commit(struct store *st, const char *doing, struct err *e)
{
    ipw_status r = store_run_plain(st, Q_COMMIT, doing, e);
    if (r != IPW_OK)
        store_tx_rollback(st);
    return r;
}

/* Ends a transaction: commits when r is IPW_OK, else rolls back. Returns the final status. */
ipw_status store_tx_end(struct store *st, ipw_status r, const char *doing, struct err *e)
{
    /* Inside a batch the batch's end commits or rolls back everything at once. */
    if (st->batch)
        return r;
    if (r == IPW_OK)
        return store_tx_commit(st, doing, e);
    store_tx_rollback(st);
    return r;
}

/* A copy of a nullable string for an owning struct; sets *oom when out of memory. */
const char *store_dup_str(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

void store_free_str(const char *s)
{
    free((void *)(uintptr_t)s);
}

/* The field at offset off of obj, a const char * (offs below come from offsetof). */
static const char **store_str_at(void *obj, size_t off)
{
    return (const char **)(void *)((char *)obj + off);
}

int store_strs_dup(void *obj, const size_t *offs, size_t n)
{
    int oom = 0;
    for (size_t i = 0; i < n; i++) {
        const char **f = store_str_at(obj, offs[i]);
        *f = store_dup_str(*f, &oom);
    }
    return oom;
}

void store_strs_free(void *obj, const size_t *offs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_free_str(*store_str_at(obj, offs[i]));
}

ipw_status store_count_query(struct store *st, enum q q, const char *arg, int64_t *n,
                             const char *doing, struct err *e)
{
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, q, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    if (arg)
        store_bind_text(s, 1, arg);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    else
        r = store_db_fail(st, rc, doing, e);
    store_stmt_done(s);
    return r;
}

/* A statement of the feedback functions, prepared for one use (a poll reads a few messages; the
 * per-message statements above stay cached). */
ipw_status store_prep(struct store *st, const char *sql, const char *doing, sqlite3_stmt **out,
                      struct err *e)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);
    if (rc != SQLITE_OK) {
        ipw_status r = store_db_fail(st, rc, doing, e);
        sqlite3_finalize(*out);
        *out = NULL;
        return r;
    }
    return IPW_OK;
}

/* Begins a write transaction and gets a statement in it: the cached one q, or sql prepared for
 * one use when sql is given. On failure the transaction is already ended (rolled back), so the
 * caller only returns. */
static ipw_status store_tx_get(struct store *st, enum q q, const char *sql, const char *doing,
                               sqlite3_stmt **out, struct err *e)
{
    *out = NULL;
    ipw_status r = store_tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    r = sql ? store_prep(st, sql, doing, out, e) : store_stmt_get(st, q, doing, out, e);
    return r == IPW_OK ? r : store_tx_end(st, r, doing, e);
}

ipw_status store_tx_stmt(struct store *st, enum q q, const char *doing, sqlite3_stmt **out,
                         struct err *e)
{
    return store_tx_get(st, q, NULL, doing, out, e);
}

ipw_status store_tx_prep(struct store *st, const char *sql, const char *doing, sqlite3_stmt **out,
                         struct err *e)
{
    return store_tx_get(st, Q_BEGIN, sql, doing, out, e); /* q is not used with sql */
}

/* Runs a one-use statement to its end and finalizes it. */
ipw_status store_run_once(struct store *st, sqlite3_stmt *s, const char *doing, struct err *e)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    return store_rows_end_once(st, s, rc, doing, e);
}

/* ---- checking a value against a set (the sets are in the files that use them) ---- */

int store_in_set(const char *s, const char *const *set, size_t n)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return 1;
    return 0;
}

/* ---- opening and migrations ---- */

/* Runs a one-value PRAGMA query (or any statement whose first column is an integer). */
ipw_status store_query_int(struct store *st, const char *sql, int64_t *v, const char *doing,
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
    ipw_status r = rc == SQLITE_OK ? IPW_OK : store_db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

ipw_status store_exec_sql(struct store *st, const char *sql, const char *doing, struct err *e)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? IPW_OK : store_db_fail(st, rc, doing, e);
}

struct sqlite3 *store_db(struct store *st)
{
    return st->db;
}

/* ---- the hourly counters ---- */

/* Adds a's counts to their summary_hourly row, in the caller's transaction. */
ipw_status store_sum_put(struct store *st, const struct store_sum *a, struct err *e)
{
    const char *doing = "count an attempt's outcome";
    sqlite3_stmt *s;
    ipw_status r = store_stmt_get(st, Q_SUMMARY_ADD, doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, a->provider);
    sqlite3_bind_int64(s, 2, a->hour_ms);
    for (size_t i = 0; i < sizeof a->n / sizeof a->n[0]; i++)
        sqlite3_bind_int64(s, 3 + (int)i, a->n[i]);
    sqlite3_bind_int64(s, 10, a->attempts);
    return store_run(st, s, doing, e);
}

/* Inside a batch: adds a's counts to the row the batch holds for its provider and hour. A
 * batch of outcomes (engine_group_end) mostly shares one row, so it writes it once. */
ipw_status store_sum_hold(struct store *st, const struct store_sum *a, struct err *e)
{
    struct store_sum *h = NULL;
    for (size_t i = 0; i < st->n_sums && !h; i++)
        if (st->sums[i].hour_ms == a->hour_ms && strcmp(st->sums[i].provider, a->provider) == 0)
            h = &st->sums[i];
    if (!h) {
        struct store_sum *n = buf_grow(st->sums, &st->cap_sums, st->n_sums + 1, sizeof *n, 8);
        if (!n)
            return err_set(e, IPW_ENOMEM, "out of memory");
        st->sums = n;
        h = &st->sums[st->n_sums];
        *h = (struct store_sum){.provider = strdup(a->provider), .hour_ms = a->hour_ms};
        if (!h->provider)
            return err_set(e, IPW_ENOMEM, "out of memory");
        st->n_sums++;
    }
    h->attempts += a->attempts;
    for (size_t i = 0; i < sizeof a->n / sizeof a->n[0]; i++)
        h->n[i] += a->n[i];
    return IPW_OK;
}

ipw_status store_sums_write(struct store *st, struct err *e)
{
    ipw_status r = IPW_OK;
    for (size_t i = 0; i < st->n_sums && r == IPW_OK; i++)
        r = store_sum_put(st, &st->sums[i], e);
    return r;
}

void store_sums_drop(struct store *st)
{
    for (size_t i = 0; i < st->n_sums; i++)
        free(st->sums[i].provider);
    st->n_sums = 0;
}

/* ---- batches: one transaction for many writes (store.h) ---- */

ipw_status store_batch_begin(struct store *st, struct err *e)
{
    ipw_status r = store_batch_release(st, e);
    if (r != IPW_OK)
        return r;
    if (st->batch)
        return err_set(e, IPW_ESOFTWARE, "state file %s: a batch is already open", st->path);
    r = store_run_plain(st, Q_BEGIN, "begin a batch", e);
    if (r == IPW_OK)
        st->batch = 1;
    return r;
}

ipw_status store_batch_end(struct store *st, ipw_status r, struct err *e)
{
    if (!st->batch)
        return r;
    st->held = 0;
    ipw_status kept = IPW_OK;
    if (r != IPW_OK && st->marked) {
        /* The joiner failed: undo its writes only, and commit what the held batch wrote. */
        kept = r;
        r = store_exec_sql(st, "ROLLBACK TO joined; RELEASE joined", "roll back a batch", e);
    }
    st->marked = 0;
    /* The hourly counters the batch's outcomes added to, one row write each. */
    if (r == IPW_OK)
        r = store_sums_write(st, e);
    store_sums_drop(st);
    st->batch = 0;
    r = store_tx_end(st, r, "commit a batch", e);
    return kept != IPW_OK ? kept : r;
}

void store_batch_hold(struct store *st)
{
    if (st->batch)
        st->held = 1;
}

ipw_status store_batch_join(struct store *st, struct err *e)
{
    if (!st->held)
        return store_batch_begin(st, e);
    st->held = 0;
    ipw_status r = store_run_plain(st, Q_SAVEPOINT_JOINED, "begin a batch", e);
    if (r != IPW_OK) {
        /* What the held batch wrote is still committed; the joiner does not start. */
        store_batch_end(st, IPW_OK, NULL);
        return r;
    }
    st->marked = 1;
    return IPW_OK;
}

ipw_status store_batch_release(struct store *st, struct err *e)
{
    if (!st->held)
        return IPW_OK;
    return store_batch_end(st, IPW_OK, e);
}
