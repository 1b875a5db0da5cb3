/*
 * store_queue: the recipients table, the queue of addresses to send to. Rows are added from the
 * recipient list (store_recipient_queue), each list scan confirms the ones it saw
 * (store_recipient_seen) and sweeps out the ones it did not, and the runner takes the due ones
 * (store_recipients_due). Attempts move a row on through store_attempts.c.
 */
#include "store_db.h"

/* ---- recipient queue ---- */

/* Value sets, mirrored by the CHECK constraints of store_schema.c. */
static const char *const ALL_OUTCOMES[] = {"in-flight", "delivered", "deferred", "bounced",
                                           "failed",    "expired",   "unknown",  "blocked"};
static const char *const RCPT_STATES[] = {"pending", "done",    "suppressed", "expired",
                                          "held",    "removed", "skipped"};

/* The strings a struct store_recipient owns once copied out of a row. */
static const size_t RCPT_STRS[] = {
    offsetof(struct store_recipient, address),  offsetof(struct store_recipient, domain),
    offsetof(struct store_recipient, provider), offsetof(struct store_recipient, state),
    offsetof(struct store_recipient, reason),   offsetof(struct store_recipient, last_outcome),
};

static void store_queue_from_row(sqlite3_stmt *s, struct store_recipient *r)
{
    r->id = sqlite3_column_int64(s, 0);
    r->address = store_col_text(s, 1);
    r->domain = store_col_text(s, 2);
    r->provider = store_col_text(s, 3);
    r->state = store_col_text(s, 4);
    r->next_at_ms = sqlite3_column_int64(s, 5);
    r->retries = sqlite3_column_int(s, 6);
    r->reason = store_col_text(s, 7);
    r->first_attempt_ms = sqlite3_column_int64(s, 8);
    r->last_attempt_ms = sqlite3_column_int64(s, 9);
    r->last_outcome = store_col_text(s, 10);
    r->cycle = sqlite3_column_int(s, 11);
    r->added_ms = sqlite3_column_int64(s, 12);
    r->list_offset = sqlite3_column_type(s, 13) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 13);
    r->list_line = sqlite3_column_int64(s, 14);
    r->list_scan = sqlite3_column_int64(s, 15);
    r->list_digest = sqlite3_column_int64(s, 16);
}

/* The domain of an address: the given one, else the part after the last '@'; NULL if none. */
static const char *store_queue_domain_of(const char *address, const char *domain)
{
    if (domain)
        return domain;
    const char *at = strrchr(address, '@');
    return at && at[1] ? at + 1 : NULL;
}

/* What a recipient row needs before it is written: an address, a domain (its own, else the
 * address's) and a known state (none: pending). */
static ipw_status store_queue_check(const struct store_recipient *rc_, const char **domain,
                                    const char **state, struct err *e)
{
    if (!rc_->address || !*rc_->address)
        return err_set(e, IPW_EUSAGE, "a recipient needs an address");
    *domain = store_queue_domain_of(rc_->address, rc_->domain);
    if (!*domain)
        return err_set(e, IPW_EUSAGE, "recipient \"%s\" has no domain", rc_->address);
    *state = rc_->state ? rc_->state : "pending";
    if (!IN_SET(*state, RCPT_STATES))
        return err_set(e, IPW_EUSAGE, "unknown recipient state \"%s\"", *state);
    return IPW_OK;
}

/* ?1..?5 of Q_RCPT_SAVE and Q_RCPT_QUEUE: address, domain, provider, state, next_at_ms. */
static void store_queue_bind_head(sqlite3_stmt *s, const struct store_recipient *rc_,
                                  const char *domain, const char *state)
{
    store_bind_text(s, 1, rc_->address);
    store_bind_text(s, 2, domain);
    store_bind_text(s, 3, rc_->provider);
    store_bind_text(s, 4, state);
    sqlite3_bind_int64(s, 5, rc_->next_at_ms);
}

ipw_status store_recipient_add(struct store *st, const char *address, const char *domain,
                               const char *provider, int64_t next_at_ms, int64_t now_ms, int *added,
                               struct err *e)
{
    if (added)
        *added = 0;
    if (!address || !*address)
        return err_set(e, IPW_EUSAGE, "a recipient needs an address");
    domain = store_queue_domain_of(address, domain);
    if (!domain)
        return err_set(e, IPW_EUSAGE, "recipient \"%s\" has no domain", address);
    const char *doing = "queue a recipient";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_RCPT_ADD, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, address);
    store_bind_text(s, 2, domain);
    store_bind_text(s, 3, provider);
    sqlite3_bind_int64(s, 4, next_at_ms);
    sqlite3_bind_int64(s, 5, now_ms);
    /* One statement in autocommit mode is its own transaction. */
    ipw_status r = store_run(st, s, doing, e);
    if (r == IPW_OK && added)
        *added = sqlite3_changes(st->db) > 0;
    return r;
}

ipw_status store_recipient_save(struct store *st, const struct store_recipient *rc_, struct err *e)
{
    const char *domain = NULL, *state = NULL;
    ipw_status cr = store_queue_check(rc_, &domain, &state, e);
    if (cr != IPW_OK)
        return cr;
    if (rc_->last_outcome && !IN_SET(rc_->last_outcome, ALL_OUTCOMES))
        return err_set(e, IPW_EUSAGE, "unknown attempt outcome \"%s\"", rc_->last_outcome);
    const char *doing = "save a recipient";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_RCPT_SAVE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_queue_bind_head(s, rc_, domain, state);
    sqlite3_bind_int(s, 6, rc_->retries > 0 ? rc_->retries : 0);
    store_bind_text(s, 7, rc_->reason);
    store_bind_opt(s, 8, rc_->first_attempt_ms);
    store_bind_opt(s, 9, rc_->last_attempt_ms);
    store_bind_text(s, 10, rc_->last_outcome);
    sqlite3_bind_int(s, 11, rc_->cycle > 0 ? rc_->cycle : 0);
    sqlite3_bind_int64(s, 12, rc_->added_ms);
    if (rc_->list_offset >= 0)
        sqlite3_bind_int64(s, 13, rc_->list_offset);
    else
        sqlite3_bind_null(s, 13);
    sqlite3_bind_int64(s, 14, rc_->list_line);
    store_bind_opt(s, 15, rc_->list_scan);
    store_bind_opt(s, 16, rc_->list_digest);
    return store_run(st, s, doing, e);
}

void store_recipient_clear(struct store_recipient *r)
{
    STORE_STRS_FREE(r, RCPT_STRS);
    memset(r, 0, sizeof *r);
}

ipw_status store_recipient_get(struct store *st, const char *address, struct store_recipient *out,
                               struct err *e)
{
    const char *doing = "read a recipient";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_RCPT_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, address);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        store_queue_from_row(s, out);
        if (STORE_STRS_DUP(out, RCPT_STRS)) {
            store_recipient_clear(out);
            r = err_set(e, IPW_ENOMEM, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "recipient %s is not in the queue of %s", address, st->path);
    } else {
        r = store_db_fail(st, rc, doing, e);
    }
    store_stmt_done(s);
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
    ipw_status r = store_tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    r = store_attempts_rcpt_apply(st, address, attempt_ms, outcome, u, doing, e);
    return store_tx_end(st, r, doing, e);
}

ipw_status store_recipients_due(struct store *st, int64_t now_ms, const char *provider, int limit,
                                store_recipient_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the due recipients";
    enum q q = provider ? Q_RCPT_DUE_PROVIDER : Q_RCPT_DUE;
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, q, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : -1); /* LIMIT -1: no limit */
    if (provider)
        store_bind_text(s, 3, provider);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_recipient v;
        store_queue_from_row(s, &v);
        if (cb(&v, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    return store_rows_end(st, s, rc, doing, e);
}

ipw_status store_recipients_count(struct store *st, const char *state, int64_t *n, struct err *e)
{
    *n = 0;
    return store_count_query(st, state ? Q_RCPT_COUNT : Q_RCPT_COUNT_ALL, state, n,
                             "count recipients", e);
}

ipw_status store_recipient_queue(struct store *st, const struct store_recipient *rc_, int *added,
                                 struct err *e)
{
    if (added)
        *added = 0;
    const char *domain = NULL, *state = NULL;
    ipw_status cr = store_queue_check(rc_, &domain, &state, e);
    if (cr != IPW_OK)
        return cr;
    const char *doing = "queue a recipient";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_RCPT_QUEUE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_queue_bind_head(s, rc_, domain, state);
    store_bind_text(s, 6, rc_->reason);
    sqlite3_bind_int64(s, 7, rc_->added_ms);
    if (rc_->list_offset >= 0)
        sqlite3_bind_int64(s, 8, rc_->list_offset);
    else
        sqlite3_bind_null(s, 8);
    sqlite3_bind_int64(s, 9, rc_->list_line);
    sqlite3_bind_int(s, 10, rc_->cycle > 0 ? rc_->cycle : 0);
    store_bind_opt(s, 11, rc_->list_scan);
    store_bind_opt(s, 12, rc_->list_digest);
    ipw_status r = store_run(st, s, doing, e);
    if (r == IPW_OK && added)
        *added = sqlite3_changes(st->db) > 0;
    return r;
}

ipw_status store_recipient_requeue(struct store *st, const char *address, int64_t before_ms,
                                   int64_t now_ms, int *requeued, struct err *e)
{
    const char *doing = "queue a seed again for today";
    if (requeued)
        *requeued = 0;
    sqlite3_stmt *s;
    ipw_status r =
        store_tx_prep(st,
                      "UPDATE recipients SET state = 'pending', next_at_ms = ?3, retries = 0, "
                      "reason = NULL WHERE address = ?1 COLLATE NOCASE AND state = 'done' "
                      "AND last_attempt_ms IS NOT NULL AND last_attempt_ms < ?2",
                      doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, address);
    sqlite3_bind_int64(s, 2, before_ms);
    sqlite3_bind_int64(s, 3, now_ms);
    r = store_run_once(st, s, doing, e);
    if (r == IPW_OK && requeued)
        *requeued = sqlite3_changes(st->db) > 0;
    return store_tx_end(st, r, doing, e);
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
    ipw_status sr = store_stmt_get(st, Q_RCPT_SEEN, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, r->address);
    if (r->list_offset >= 0)
        sqlite3_bind_int64(s, 2, r->list_offset);
    else
        sqlite3_bind_null(s, 2);
    sqlite3_bind_int64(s, 3, r->list_line);
    sqlite3_bind_int64(s, 4, r->list_scan);
    store_bind_opt(s, 5, r->list_digest);
    sqlite3_bind_int64(s, 6, now_ms);
    ipw_status res = store_run(st, s, doing, e);
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
    sqlite3_stmt *s;
    ipw_status r = store_tx_stmt(st, Q_RCPT_SWEEP, doing, &s, e);
    if (r != IPW_OK)
        return r;
    sqlite3_bind_int64(s, 1, scan);
    store_bind_text(s, 2, reason);
    r = store_run(st, s, doing, e);
    if (r == IPW_OK && removed)
        *removed = sqlite3_changes(st->db);
    return store_tx_end(st, r, doing, e);
}

ipw_status store_recipient_release(struct store *st, const char *address, int64_t now_ms,
                                   struct store_recipient *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    const char *doing = "release a recipient";
    ipw_status r = store_tx_begin(st, doing, e);
    if (r != IPW_OK)
        return r;
    r = store_recipient_get(st, address, out, e);
    if (r == IPW_OK && (strcmp(out->state, "held") == 0 || strcmp(out->state, "skipped") == 0)) {
        sqlite3_stmt *s;
        r = store_stmt_get(st, Q_RCPT_RELEASE, doing, &s, e);
        if (r == IPW_OK) {
            store_bind_text(s, 1, address);
            sqlite3_bind_int64(s, 2, now_ms);
            r = store_run(st, s, doing, e);
        }
    }
    r = store_tx_end(st, r, doing, e);
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
    sqlite3_stmt *s;
    ipw_status r = store_tx_stmt(st, Q_RCPT_RELEASE_HELD, doing, &s, e);
    if (r != IPW_OK)
        return r;
    sqlite3_bind_int64(s, 1, now_ms);
    store_bind_text(s, 2, provider);
    int rc;
    int64_t n = 0;
    /* RETURNING gives each row as it is changed; the callback only reads its strings. */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        n++;
        if (cb)
            cb(store_col_text(s, 0), store_col_text(s, 1), ctx);
    }
    if (rc != SQLITE_DONE)
        r = store_db_fail(st, rc, doing, e);
    store_stmt_done(s);
    r = store_tx_end(st, r, doing, e);
    if (count && r == IPW_OK)
        *count = n;
    return r;
}

/* Runs a query of one text column (Q_RCPT_DOMAINS takes a as its parameter) and calls cb with
 * each row's value. */
static ipw_status store_queue_names(struct store *st, enum q q, const char *a, store_name_cb cb,
                                    void *ctx, const char *doing, struct err *e)
{
    sqlite3_stmt *s;
    ipw_status r = store_stmt_get(st, q, doing, &s, e);
    if (r != IPW_OK)
        return r;
    if (q == Q_RCPT_DOMAINS)
        store_bind_text(s, 1, a);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cb(store_col_text(s, 0), ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    return store_rows_end(st, s, rc, doing, e);
}

ipw_status store_recipient_providers(struct store *st, store_name_cb cb, void *ctx, struct err *e)
{
    return store_queue_names(st, Q_RCPT_PROVIDERS, NULL, cb, ctx, "read the recipients' providers",
                             e);
}

ipw_status store_recipient_domains(struct store *st, const char *provider, store_name_cb cb,
                                   void *ctx, struct err *e)
{
    return store_queue_names(st, Q_RCPT_DOMAINS, provider, cb, ctx, "read the recipients' domains",
                             e);
}

ipw_status store_recipients_set_provider(struct store *st, const char *from, const char *domain,
                                         const char *to, int64_t *count, struct err *e)
{
    if (count)
        *count = 0;
    const char *doing = "move recipients to another provider";
    sqlite3_stmt *s;
    ipw_status r = store_stmt_get(st, Q_RCPT_SET_PROVIDER, doing, &s, e);
    if (r != IPW_OK)
        return r;
    store_bind_text(s, 1, from);
    store_bind_text(s, 2, domain);
    store_bind_text(s, 3, to);
    r = store_run(st, s, doing, e);
    if (r == IPW_OK && count)
        *count = sqlite3_changes(st->db);
    return r;
}

ipw_status store_recipients_unconfirmed(struct store *st, int64_t scan, int *any, struct err *e)
{
    *any = 0;
    const char *doing = "look for recipients the list scan has not found yet";
    sqlite3_stmt *s;
    ipw_status r = store_stmt_get(st, Q_RCPT_UNCONFIRMED, doing, &s, e);
    if (r != IPW_OK)
        return r;
    sqlite3_bind_int64(s, 1, scan);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *any = sqlite3_column_int(s, 0);
    else
        r = store_db_fail(st, rc, doing, e);
    store_stmt_done(s);
    return r;
}
