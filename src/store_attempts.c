/*
 * store_attempts: the attempts table (one row per SMTP transaction, begun in flight and finished
 * with its outcome), the recipient's queue row that an outcome moves on, and the hourly and
 * per-reason counters (summary_hourly, summary_reasons) that every finished attempt adds to in
 * the same transaction, so that `stats` never has to scan attempts.
 */
#include "store_db.h"
#include "ipwarm/stats_mask.h"

/* ---- attempts ---- */

#define HOUR_MS INT64_C(3600000)

/* ---- value sets (mirrored by the CHECK constraints of store_schema.c) ---- */

static const char *const PHASES[] = {"connect", "ehlo", "starttls", "auth",
                                     "mail",    "rcpt", "data",     "quit"};
/* What an attempt can end with; in-flight is only ever written by store_attempt_begin. */
/* In the order of summary_hourly's counter columns (Q_SUMMARY_ADD binds one per entry). */
static const char *const FINAL_OUTCOMES[] = {"delivered", "deferred", "bounced", "failed",
                                             "expired",   "unknown",  "blocked"};

#define N_FINAL (sizeof FINAL_OUTCOMES / sizeof FINAL_OUTCOMES[0])
_Static_assert(N_FINAL == sizeof((struct store_sum *)0)->n / sizeof(int64_t),
               "struct store_sum holds one count per final outcome");

/* The outcomes whose replies summary_reasons counts (the reasons `stats` ranks). */
static const char *const REASON_OUTCOMES[] = {"deferred", "bounced", "failed", "blocked"};

static int64_t store_attempts_hour_of(int64_t ms)
{
    /* Truncating division, the same as the SQL in Q_RECOVER_SUMMARY; times are >= 0. */
    return (ms / HOUR_MS) * HOUR_MS;
}

/* The strings a struct store_attempt owns once copied out of a row. */
static const size_t ATTEMPT_STRS[] = {
    offsetof(struct store_attempt, recipient), offsetof(struct store_attempt, domain),
    offsetof(struct store_attempt, provider),  offsetof(struct store_attempt, mx),
    offsetof(struct store_attempt, source_ip), offsetof(struct store_attempt, message_id),
    offsetof(struct store_attempt, phase),     offsetof(struct store_attempt, enhanced),
    offsetof(struct store_attempt, text),      offsetof(struct store_attempt, outcome),
    offsetof(struct store_attempt, mail_from),
};

static void store_attempts_from_row(sqlite3_stmt *s, struct store_attempt *a)
{
    a->id = sqlite3_column_int64(s, 0);
    a->started_ms = sqlite3_column_int64(s, 1);
    a->finished_ms = sqlite3_column_int64(s, 2);
    a->recipient = store_col_text(s, 3);
    a->domain = store_col_text(s, 4);
    a->provider = store_col_text(s, 5);
    a->mx = store_col_text(s, 6);
    a->source_ip = store_col_text(s, 7);
    a->message_id = store_col_text(s, 8);
    a->phase = store_col_text(s, 9);
    a->code = sqlite3_column_int(s, 10);
    a->enhanced = store_col_text(s, 11);
    a->text = store_col_text(s, 12);
    a->outcome = store_col_text(s, 13);
    a->retry_no = sqlite3_column_int(s, 14);
    a->dry_run = sqlite3_column_int(s, 15);
    a->mail_from = store_col_text(s, 16);
}

/* Steps s, bound by the caller, to its end: each row becomes an attempt for cb, which
 * stops the walk by returning nonzero. */
static ipw_status store_attempts_run(struct store *st, sqlite3_stmt *s, store_attempt_cb cb,
                                     void *ctx, const char *doing, struct err *e)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_attempt a;
        store_attempts_from_row(s, &a);
        if (cb(&a, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    return store_rows_end(st, s, rc, doing, e);
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
    sqlite3_stmt *s;
    ipw_status r = store_tx_stmt(st, Q_ATTEMPT_INSERT, doing, &s, e);
    if (r != IPW_OK)
        return r;
    sqlite3_bind_int64(s, 1, a->started_ms);
    store_bind_text(s, 2, a->recipient);
    store_bind_text(s, 3, domain);
    store_bind_text(s, 4, a->provider);
    store_bind_text(s, 5, a->mx);
    store_bind_text(s, 6, a->source_ip);
    store_bind_text(s, 7, a->message_id);
    store_bind_text(s, 8, a->phase);
    sqlite3_bind_int(s, 9, a->retry_no > 0 ? a->retry_no : 0);
    sqlite3_bind_int(s, 10, a->dry_run ? 1 : 0);
    store_bind_text(s, 11, a->mail_from);
    r = store_run(st, s, doing, e);
    int64_t new_id = sqlite3_last_insert_rowid(st->db);
    /* A dry run sends nothing, so the queue must look as if it had not happened: a stamp
     * would make the next real run hold the recipient. */
    if (r == IPW_OK && !a->dry_run) {
        r = store_stmt_get(st, Q_ATTEMPT_STAMP_RCPT, doing, &s, e);
        if (r == IPW_OK) {
            store_bind_text(s, 1, a->recipient);
            sqlite3_bind_int64(s, 2, a->started_ms);
            store_bind_opt(s, 6, a->rcpt_id);
            r = store_run(st, s, doing, e);
        }
    }
    r = store_tx_end(st, r, doing, e);
    if (r == IPW_OK && id)
        *id = new_id;
    return r;
}

/* Applies a queue step to one recipient; part of the caller's transaction. */
ipw_status store_attempts_rcpt_apply(struct store *st, const char *address, int64_t attempt_ms,
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
    ipw_status sr = store_stmt_get(st, q, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, address);
    if (state) {
        store_bind_text(s, 2, state);
        store_bind_text(s, 5, u->reason);
    } else {
        sqlite3_bind_int64(s, 2, u->next_at_ms);
    }
    if (q == Q_RCPT_REQUEUE) {
        /* Without an attempt (a local failure) the last attempt stays as it was. */
        store_bind_opt(s, 3, attempt_ms);
        store_bind_text(s, 5, u->reason);
    } else if (q == Q_RCPT_SKIP) {
        store_bind_text(s, 5, u->reason);
    } else {
        sqlite3_bind_int64(s, 3, attempt_ms);
    }
    if (q != Q_RCPT_SKIP)
        store_bind_text(s, 4, outcome);
    store_bind_opt(s, 6, u->rcpt_id);
    ipw_status r = store_run(st, s, doing, e);
    if (r == IPW_OK && sqlite3_changes(st->db) == 0)
        r = err_set(e, IPW_ENOTFOUND, "recipient %s is not in the queue of %s", address, st->path);
    return r;
}

/*
 * Adds one to the summary_reasons row of the reply, its text masked (stats_mask_reason) so
 * that replies differing only in IP addresses, queue IDs, host names and numbers share a row.
 * Part of the caller's transaction.
 */
static ipw_status store_attempts_reason_add(struct store *st, const char *provider, int64_t hour_ms,
                                            const struct store_outcome *o, const char *doing,
                                            struct err *e)
{
    char masked[STATS_REASON_MAX];
    stats_mask_reason(o->text, masked, sizeof masked);
    sqlite3_stmt *s;
    ipw_status r = store_stmt_get(st, Q_REASON_ADD, doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, hour_ms);
    store_bind_text(s, 3, o->outcome);
    sqlite3_bind_int(s, 4, o->code);
    store_bind_text(s, 5, o->enhanced ? o->enhanced : "");
    store_bind_text(s, 6, masked);
    return store_run(st, s, doing, e);
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
    sqlite3_stmt *s;
    ipw_status r = store_tx_stmt(st, Q_ATTEMPT_FINISH, doing, &s, e);
    if (r != IPW_OK)
        return r;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, o->finished_ms);
    store_bind_text(s, 3, o->phase);
    store_bind_opt(s, 4, o->code);
    store_bind_text(s, 5, o->enhanced);
    store_bind_text(s, 6, o->text);
    store_bind_text(s, 7, o->outcome);
    int rc = sqlite3_step(s);
    int changed = rc == SQLITE_DONE ? sqlite3_changes(st->db) : 0;
    if (rc != SQLITE_DONE)
        r = store_db_fail(st, rc, doing, e);
    else if (changed == 0)
        r = err_set(e, IPW_ENOTFOUND,
                    "attempt %lld is not in flight in %s (unknown id, or its outcome is "
                    "already recorded)",
                    (long long)id, st->path);
    store_stmt_done(s);

    char *provider = NULL, *recipient = NULL;
    int64_t started = 0;
    int dry_run = 0;
    if (r == IPW_OK)
        r = store_stmt_get(st, Q_ATTEMPT_FACTS, doing, &s, e);
    if (r == IPW_OK) {
        sqlite3_bind_int64(s, 1, id);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            provider = strdup(store_col_text(s, 0));
            started = sqlite3_column_int64(s, 1);
            dry_run = sqlite3_column_int(s, 2);
            recipient = strdup(store_col_text(s, 3));
            if (!provider || !recipient)
                r = err_set(e, IPW_ENOMEM, "out of memory");
        } else if (rc == SQLITE_DONE) { /* cannot be: the UPDATE above just found it */
            r = err_set(e, IPW_ESOFTWARE, "attempt %lld vanished from %s while being recorded",
                        (long long)id, st->path);
        } else {
            r = store_db_fail(st, rc, doing, e);
        }
        store_stmt_done(s);
    }

    if (r == IPW_OK && !dry_run) {
        struct store_sum one = {
            .provider = provider, .hour_ms = store_attempts_hour_of(started), .attempts = 1};
        for (size_t i = 0; i < N_FINAL; i++)
            one.n[i] = strcmp(o->outcome, FINAL_OUTCOMES[i]) == 0;
        r = st->batch ? store_sum_hold(st, &one, e) : store_sum_put(st, &one, e);
    }
    if (r == IPW_OK && !dry_run && IN_SET(o->outcome, REASON_OUTCOMES))
        r = store_attempts_reason_add(st, provider, store_attempts_hour_of(started), o, doing, e);
    if (r == IPW_OK && u && u->step != STORE_RCPT_KEEP)
        r = store_attempts_rcpt_apply(st, recipient, started, o->outcome, u, doing, e);
    free(provider);
    free(recipient);
    return store_tx_end(st, r, doing, e);
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
    ipw_status r = store_tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    /* Counters first: they select the rows that the update then changes. */
    r = store_run_plain(st, Q_RECOVER_SUMMARY, doing, e);
    if (r == IPW_OK)
        r = store_run_plain(st, Q_RECOVER_HOLD, doing, e);
    int64_t n = 0;
    if (r == IPW_OK) {
        sqlite3_stmt *s;
        r = store_stmt_get(st, Q_RECOVER_MARK, doing, &s, e);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, now_ms);
            r = store_run(st, s, doing, e);
            n = sqlite3_changes(st->db);
        }
    }
    r = store_tx_end(st, r, doing, e);
    if (count)
        *count = r == IPW_OK ? n : 0;
    return r;
}

ipw_status store_attempts_for_recipient(struct store *st, const char *recipient,
                                        store_attempt_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the attempts of a recipient";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_ATTEMPTS_OF_RCPT, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, recipient);
    return store_attempts_run(st, s, cb, ctx, doing, e);
}

void store_attempt_clear(struct store_attempt *a)
{
    STORE_STRS_FREE(a, ATTEMPT_STRS);
    memset(a, 0, sizeof *a);
}

ipw_status store_attempt_get(struct store *st, int64_t id, struct store_attempt *out, struct err *e)
{
    const char *doing = "read an attempt";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_ATTEMPT_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        store_attempts_from_row(s, out);
        if (STORE_STRS_DUP(out, ATTEMPT_STRS)) {
            store_attempt_clear(out);
            r = err_set(e, IPW_ENOMEM, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "no attempt %lld in %s", (long long)id, st->path);
    } else {
        r = store_db_fail(st, rc, doing, e);
    }
    store_stmt_done(s);
    return r;
}

ipw_status store_attempts_count(struct store *st, const char *outcome, int64_t *n, struct err *e)
{
    *n = 0;
    return store_count_query(st, outcome ? Q_ATTEMPTS_COUNT : Q_ATTEMPTS_COUNT_ALL, outcome, n,
                             "count attempts", e);
}

ipw_status store_attempts_since(struct store *st, const char *provider, int64_t since_ms,
                                store_attempt_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read recent replies";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_ATTEMPTS_SINCE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, since_ms);
    return store_attempts_run(st, s, cb, ctx, doing, e);
}

ipw_status store_attempt_set_mail_from(struct store *st, int64_t id, const char *mail_from,
                                       struct err *e)
{
    const char *doing = "record an attempt's envelope sender";
    sqlite3_stmt *s;
    ipw_status r =
        store_tx_prep(st, "UPDATE attempts SET mail_from = ?2 WHERE id = ?1", doing, &s, e);
    if (r != IPW_OK)
        return r;
    sqlite3_bind_int64(s, 1, id);
    store_bind_text(s, 2, mail_from);
    r = store_run_once(st, s, doing, e);
    return store_tx_end(st, r, doing, e);
}

ipw_status store_attempt_by_message_id(struct store *st, const char *message_id, int64_t *id,
                                       struct err *e)
{
    const char *doing = "find an attempt by its Message-ID";
    sqlite3_stmt *s;
    /* The same message may have gone to a second MX host after the first failed: the one that
     * got the 250 is the one a report answers. */
    ipw_status r =
        store_prep(st,
                   "SELECT id FROM attempts WHERE message_id = ?1 AND dry_run = 0 "
                   "ORDER BY outcome = 'delivered' DESC, started_ms DESC, id DESC LIMIT 1",
                   doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, message_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        r = err_set(e, IPW_ENOTFOUND, "no attempt sent Message-ID %s", message_id);
    else
        r = store_db_fail(st, rc, doing, e);
    sqlite3_finalize(s);
    return r;
}

/* ---- summary counters ---- */

ipw_status store_summary_each(struct store *st, const char *provider, int64_t since_ms,
                              int64_t until_ms, store_summary_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the hourly counters";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_SUMMARY_EACH, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_range(s, provider, since_ms, until_ms);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_summary_row row = {
            .provider = store_col_text(s, 0),
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
    return store_rows_end(st, s, rc, doing, e);
}

ipw_status store_reasons_each(struct store *st, const char *provider, int64_t since_ms,
                              int64_t until_ms, store_reason_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the reply counters";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_REASONS_EACH, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_range(s, provider, since_ms, until_ms);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *enh = store_col_text(s, 4);
        struct store_reason_row row = {
            .provider = store_col_text(s, 0),
            .hour_ms = sqlite3_column_int64(s, 1),
            .outcome = store_col_text(s, 2),
            .code = sqlite3_column_int(s, 3),
            .enhanced = enh && *enh ? enh : NULL,
            .text = store_col_text(s, 5),
            .count = sqlite3_column_int64(s, 6),
        };
        if (cb(&row, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    return store_rows_end(st, s, rc, doing, e);
}
