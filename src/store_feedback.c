/*
 * store_feedback: what comes back after the 250. feedback_mailboxes holds where each mailbox's
 * poll stopped, feedback_reports every bounce or complaint report read (once), which may
 * suppress its recipient and count in the hour of the attempt it answers; placements holds
 * where each copy sent to a seed mailbox was found (inbox, junk or missing).
 */
#include "store_db.h"

/* ---- feedback read from mailboxes ---- */

ipw_status store_checkpoint_get(struct store *st, const char *mailbox, int64_t *uidvalidity,
                                int64_t *last_uid, int64_t *polled_ms, struct err *e)
{
    const char *doing = "read where the last poll of a mailbox stopped";
    sqlite3_stmt *s;
    ipw_status r = store_prep(
        st, "SELECT uidvalidity, last_uid, polled_ms FROM feedback_mailboxes WHERE name = ?1",
        doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, mailbox);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *uidvalidity = sqlite3_column_int64(s, 0);
        *last_uid = sqlite3_column_int64(s, 1);
        if (polled_ms)
            *polled_ms = sqlite3_column_int64(s, 2);
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "mailbox %s was never polled", mailbox);
    } else {
        r = store_db_fail(st, rc, doing, e);
    }
    sqlite3_finalize(s);
    return r;
}

ipw_status store_checkpoint_each(struct store *st, store_checkpoint_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read when each mailbox was last polled";
    sqlite3_stmt *s;
    ipw_status r =
        store_prep(st,
                   "SELECT name, uidvalidity, last_uid, polled_ms FROM feedback_mailboxes "
                   "ORDER BY name",
                   doing, &s, e);
    if (r != IPW_OK)
        return r;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cb(store_col_text(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
               sqlite3_column_int64(s, 3), ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        r = store_db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

ipw_status store_checkpoint_set(struct store *st, const char *mailbox, int64_t uidvalidity,
                                int64_t last_uid, int64_t now_ms, struct err *e)
{
    const char *doing = "record where the poll of a mailbox stopped";
    sqlite3_stmt *s;
    ipw_status r =
        store_tx_prep(st,
                      "INSERT INTO feedback_mailboxes (name, uidvalidity, last_uid, polled_ms) "
                      "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET "
                      "uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, "
                      "polled_ms = excluded.polled_ms",
                      doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, mailbox);
    sqlite3_bind_int64(s, 2, uidvalidity);
    sqlite3_bind_int64(s, 3, last_uid);
    sqlite3_bind_int64(s, 4, now_ms);
    r = store_run_once(st, s, doing, e);
    return store_tx_end(st, r, doing, e);
}

static const char *const REPORT_KINDS[] = {"bounce", "delay", "complaint", "other"};
static const char *const REPORT_MATCHES[] = {"verp", "message-id", "header"};

/* Suppresses the recipient of a late bounce or a complaint; part of the caller's transaction. A
 * recipient no longer in the queue (another state file's list) has nothing to change. */
static ipw_status store_feedback_suppress(struct store *st, const char *address,
                                          const char *outcome, const char *reason,
                                          const char *doing, struct err *e)
{
    sqlite3_stmt *s;
    ipw_status r = store_prep(st,
                              "UPDATE recipients SET state = 'suppressed', reason = ?2, "
                              "last_outcome = coalesce(?3, last_outcome) WHERE address = ?1",
                              doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, address);
    store_bind_text(s, 2, reason);
    store_bind_text(s, 3, outcome);
    return store_run_once(st, s, doing, e);
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
    ipw_status r = store_tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    sqlite3_stmt *s = NULL;
    char *recipient = NULL, *provider = NULL, *outcome = NULL;
    int64_t started_ms = 0;
    /* The attempt it answers, if any: its recipient and provider are the report's. */
    if (rep->attempt_id > 0) {
        r = store_prep(st,
                       "SELECT recipient, provider, outcome, started_ms FROM attempts "
                       "WHERE id = ?1 AND dry_run = 0",
                       doing, &s, e);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, rep->attempt_id);
            int rc = sqlite3_step(s);
            if (rc == SQLITE_ROW) {
                recipient = strdup(store_col_text(s, 0));
                provider = strdup(store_col_text(s, 1));
                outcome = strdup(store_col_text(s, 2));
                started_ms = sqlite3_column_int64(s, 3);
                if (!recipient || !provider || !outcome)
                    r = err_set(e, IPW_ENOMEM, "out of memory");
            } else if (rc == SQLITE_DONE) {
                rep->attempt_id = 0; /* a token or id of another state file */
                rep->matched_by = NULL;
            } else {
                r = store_db_fail(st, rc, doing, e);
            }
            sqlite3_finalize(s);
        }
    } else {
        rep->matched_by = NULL;
    }
    if (r == IPW_OK)
        r = store_prep(
            st,
            "INSERT INTO feedback_reports (read_ms, mailbox, uidvalidity, uid, digest, kind, "
            "format, matched_by, attempt_id, recipient, provider, status, feedback_type, "
            "text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, coalesce(?10, ?15), ?11, "
            "?12, ?13, ?14) ON CONFLICT (digest) DO NOTHING",
            doing, &s, e);
    if (r == IPW_OK) {
        sqlite3_bind_int64(s, 1, rep->read_ms);
        store_bind_text(s, 2, rep->mailbox);
        store_bind_opt(s, 3, rep->uidvalidity);
        store_bind_opt(s, 4, rep->uid);
        store_bind_text(s, 5, rep->digest);
        store_bind_text(s, 6, rep->kind);
        store_bind_text(s, 7, rep->format);
        store_bind_text(s, 8, rep->matched_by);
        store_bind_opt(s, 9, rep->attempt_id);
        store_bind_text(s, 10, recipient);
        store_bind_text(s, 11, provider);
        store_bind_text(s, 12, rep->status);
        store_bind_text(s, 13, rep->feedback_type);
        store_bind_text(s, 14, rep->text);
        store_bind_text(s, 15, rep->recipient);
        r = store_run_once(st, s, doing, e);
        if (r == IPW_OK)
            *added = sqlite3_changes(st->db) > 0;
    }
    bool bounce = !strcmp(rep->kind, "bounce"), complaint = !strcmp(rep->kind, "complaint");
    if (r == IPW_OK && *added && recipient && bounce && !strcmp(outcome, "delivered")) {
        /* A late bounce: the 250 stays in the row, the outcome becomes bounced, and the hour's
         * counters move one message from delivered to bounced. */
        r = store_prep(st, "UPDATE attempts SET outcome = 'bounced' WHERE id = ?1", doing, &s, e);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, rep->attempt_id);
            r = store_run_once(st, s, doing, e);
        }
        if (r == IPW_OK)
            r = store_prep(st,
                           "UPDATE summary_hourly SET delivered = max(delivered - 1, 0), "
                           "bounced = bounced + 1, late_bounces = late_bounces + 1 "
                           "WHERE provider = ?1 AND hour_ms = ?2",
                           doing, &s, e);
        if (r == IPW_OK) {
            store_bind_text(s, 1, provider);
            sqlite3_bind_int64(s, 2, (started_ms / 3600000) * 3600000);
            r = store_run_once(st, s, doing, e);
        }
        rep->late = 1;
    }
    if (r == IPW_OK && *added && recipient && complaint) {
        /* Counted against the hour (so the local day) the message was sent: a day's complaint
         * rate is its complaints over its delivered mail, and the next sending day's stage
         * (ramp.h) is judged on it, however late the reports come in. */
        r = store_prep(
            st,
            "INSERT INTO summary_hourly (provider, hour_ms, complaints) VALUES (?1, ?2, 1) "
            "ON CONFLICT (provider, hour_ms) DO UPDATE SET complaints = complaints + 1",
            doing, &s, e);
        if (r == IPW_OK) {
            store_bind_text(s, 1, provider);
            sqlite3_bind_int64(s, 2, (started_ms / 3600000) * 3600000);
            r = store_run_once(st, s, doing, e);
        }
    }
    if (r == IPW_OK && *added && recipient && (bounce || complaint)) {
        char reason[600];
        snprintf(reason, sizeof reason, "%s read from the mailbox%s%s",
                 bounce ? "late bounce" : "complaint report", rep->status ? ": " : "",
                 rep->status ? rep->status : "");
        r = store_feedback_suppress(st, recipient, bounce ? "bounced" : NULL, reason, doing, e);
    }
    r = store_tx_end(st, r, doing, e);
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
    ipw_status r =
        store_prep(st,
                   "SELECT read_ms, mailbox, uidvalidity, uid, digest, kind, format, "
                   "matched_by, attempt_id, recipient, provider, status, feedback_type, "
                   "text FROM feedback_reports WHERE recipient = ?1 ORDER BY read_ms, id",
                   doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, recipient);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_report rep = {
            .read_ms = sqlite3_column_int64(s, 0),
            .mailbox = store_col_text(s, 1),
            .uidvalidity = sqlite3_column_int64(s, 2),
            .uid = sqlite3_column_int64(s, 3),
            .digest = store_col_text(s, 4),
            .kind = store_col_text(s, 5),
            .format = store_col_text(s, 6),
            .matched_by = store_col_text(s, 7),
            .attempt_id = sqlite3_column_int64(s, 8),
            .recipient = store_col_text(s, 9),
            .provider = store_col_text(s, 10),
            .status = store_col_text(s, 11),
            .feedback_type = store_col_text(s, 12),
            .text = store_col_text(s, 13),
        };
        if (cb(&rep, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    return store_rows_end_once(st, s, rc, doing, e);
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
    ipw_status r =
        store_prep(st,
                   "SELECT a.id, a.recipient, a.message_id, a.started_ms, a.provider, "
                   "a.source_ip, p.result, p.folder, p.found_ms FROM attempts a "
                   "LEFT JOIN placements p ON p.attempt_id = a.id "
                   "WHERE a.outcome = 'delivered' AND a.dry_run = 0 AND a.started_ms >= ?3 "
                   "AND (?1 IS NULL OR a.recipient = ?1 COLLATE NOCASE) "
                   "AND (?2 = 0 OR p.attempt_id IS NULL) ORDER BY a.started_ms, a.id",
                   doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, seed);
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
        r = store_db_fail(st, rc, doing, e);
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
    sqlite3_stmt *s;
    /* First finding wins: a copy moved by someone after it was found keeps its first folder. */
    ipw_status r = store_tx_prep(
        st,
        "INSERT OR IGNORE INTO placements (attempt_id, seed, result, folder, found_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5)",
        doing, &s, e);
    if (r != IPW_OK)
        return r;
    sqlite3_bind_int64(s, 1, attempt_id);
    store_bind_text(s, 2, seed);
    store_bind_text(s, 3, result);
    store_bind_text(s, 4, folder);
    sqlite3_bind_int64(s, 5, found_ms);
    r = store_run_once(st, s, doing, e);
    return store_tx_end(st, r, doing, e);
}

ipw_status store_report_last_id(struct store *st, int64_t *id, struct err *e)
{
    return store_query_int(st, "SELECT coalesce(max(id), 0) FROM feedback_reports", id,
                           "read the latest feedback report", e);
}
