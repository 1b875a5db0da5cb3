/*
 * store_lanes: the providers table (one row per lane: a provider, or a provider and one source
 * IP of a pool, with its ramp, backoff and pacing state) and rule_actions (throttles,
 * suspensions and pauses that classification rules or the operator put on a provider or IP).
 */
#include "store_db.h"

/* ---- provider state ---- */

/* Mirrored by the CHECK constraint of rule_actions.action (store_schema.c). */
static const char *const ACTIONS[] = {"throttle", "suspend", "bounce", "pause"};

/* A local date as the plan's days are written: "YYYY-MM-DD" (NULL is fine: none yet). */
static int store_lanes_date_ok(const char *s)
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

/* The strings a struct store_provider owns once copied out of a row. */
static const size_t PROV_STRS[] = {
    offsetof(struct store_provider, name),
    offsetof(struct store_provider, ip),
    offsetof(struct store_provider, sending_day_date),
    offsetof(struct store_provider, sent_today_date),
    offsetof(struct store_provider, pause_reason),
    offsetof(struct store_provider, last_reply),
};

static void store_lanes_from_row(sqlite3_stmt *s, struct store_provider *p)
{
    p->name = store_col_text(s, 0);
    p->stage = sqlite3_column_int(s, 1);
    p->sending_day = sqlite3_column_int(s, 2);
    p->sending_day_date = store_col_text(s, 3);
    p->rate_per_min = sqlite3_column_double(s, 4);
    p->sent_today = sqlite3_column_int64(s, 5);
    p->sent_today_date = store_col_text(s, 6);
    p->paused_until_ms = sqlite3_column_int64(s, 7);
    p->pause_reason = store_col_text(s, 8);
    p->pause_level = sqlite3_column_int(s, 9);
    p->pause_manual = sqlite3_column_int(s, 10);
    p->last_deferral_ms = sqlite3_column_int64(s, 11);
    p->rate_changed_ms = sqlite3_column_int64(s, 12);
    p->last_reply = store_col_text(s, 13);
    p->last_reply_ms = sqlite3_column_int64(s, 14);
    p->next_send_ms = sqlite3_column_int64(s, 15);
    p->updated_ms = sqlite3_column_int64(s, 16);
    p->pace_anchor_ms = sqlite3_column_int64(s, 17);
    p->pace_n = sqlite3_column_int64(s, 18);
    p->pace_rate = sqlite3_column_double(s, 19);
    p->ip = store_col_text(s, 20);
}

ipw_status store_provider_save(struct store *st, const struct store_provider *p, struct err *e)
{
    if (!p->name || !*p->name)
        return err_set(e, IPW_EUSAGE, "a provider needs a name");
    if (!store_lanes_date_ok(p->sending_day_date) || !store_lanes_date_ok(p->sent_today_date))
        return err_set(e, IPW_EUSAGE, "provider %s: dates must be written YYYY-MM-DD", p->name);
    const char *doing = "save a provider's state";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_PROV_SAVE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, p->name);
    sqlite3_bind_int(s, 2, p->stage);
    sqlite3_bind_int(s, 3, p->sending_day);
    store_bind_text(s, 4, p->sending_day_date);
    sqlite3_bind_double(s, 5, p->rate_per_min);
    sqlite3_bind_int64(s, 6, p->sent_today);
    store_bind_text(s, 7, p->sent_today_date);
    store_bind_opt(s, 8, p->paused_until_ms);
    store_bind_text(s, 9, p->pause_reason);
    sqlite3_bind_int(s, 10, p->pause_level);
    sqlite3_bind_int(s, 11, p->pause_manual ? 1 : 0);
    store_bind_opt(s, 12, p->last_deferral_ms);
    store_bind_opt(s, 13, p->rate_changed_ms);
    store_bind_text(s, 14, p->last_reply);
    store_bind_opt(s, 15, p->last_reply_ms);
    store_bind_opt(s, 16, p->next_send_ms);
    sqlite3_bind_int64(s, 17, p->updated_ms);
    store_bind_opt(s, 18, p->pace_anchor_ms);
    sqlite3_bind_int64(s, 19, p->pace_n);
    sqlite3_bind_double(s, 20, p->pace_rate);
    store_bind_text(s, 21, p->ip ? p->ip : "");
    return store_run(st, s, doing, e);
}

void store_provider_clear(struct store_provider *p)
{
    STORE_STRS_FREE(p, PROV_STRS);
    memset(p, 0, sizeof *p);
}

ipw_status store_lane_load(struct store *st, const char *name, const char *ip,
                           struct store_provider *out, struct err *e)
{
    const char *doing = "read a provider's state";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_PROV_LOAD, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, name);
    store_bind_text(s, 2, ip ? ip : "");
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        store_lanes_from_row(s, out);
        if (STORE_STRS_DUP(out, PROV_STRS)) {
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
        r = store_db_fail(st, rc, doing, e);
    }
    store_stmt_done(s);
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
    ipw_status sr = store_stmt_get(st, Q_PROV_EACH, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_provider v;
        store_lanes_from_row(s, &v);
        if (cb(&v, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    return store_rows_end(st, s, rc, doing, e);
}

struct store_lanes_names_ctx {
    store_name_cb cb;
    void *ctx;
    char last[256]; /* the name given last: a pool's lanes of one provider come in a row */
    bool any;
};

static int store_lanes_names_each(const struct store_provider *p, void *ctx)
{
    struct store_lanes_names_ctx *n = ctx;
    if (n->any && strcmp(n->last, p->name) == 0)
        return 0;
    n->any = true;
    snprintf(n->last, sizeof n->last, "%s", p->name);
    return n->cb(p->name, n->ctx);
}

ipw_status store_provider_names(struct store *st, store_name_cb cb, void *ctx, struct err *e)
{
    struct store_lanes_names_ctx n = {.cb = cb, .ctx = ctx};
    return store_providers_each(st, store_lanes_names_each, &n, e);
}

ipw_status store_attempt_counts(struct store *st, const char *provider, const char *source_ip,
                                int64_t since_ms, int64_t until_ms,
                                struct store_attempt_counts *out, struct err *e)
{
    const char *doing = "count a source IP's attempts";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_ATTEMPT_COUNTS, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, provider);
    store_bind_text(s, 2, source_ip);
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
        r = store_db_fail(st, rc, doing, e);
    }
    store_stmt_done(s);
    return r;
}

ipw_status store_lanes_resume(struct store *st, const char *name, int64_t now_ms, int64_t *count,
                              struct err *e)
{
    const char *doing = "resume a provider's IPs";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_LANES_RESUME, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, name);
    sqlite3_bind_int64(s, 2, now_ms);
    ipw_status r = store_run(st, s, doing, e);
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
    ipw_status sr = store_stmt_get(st, Q_RULE_ADD, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, a->provider);
    store_bind_text(s, 2, a->rule);
    store_bind_text(s, 3, a->action);
    if (a->rate_per_min > 0)
        sqlite3_bind_double(s, 4, a->rate_per_min);
    else
        sqlite3_bind_null(s, 4);
    store_bind_text(s, 5, a->reason);
    sqlite3_bind_int64(s, 6, a->started_ms);
    store_bind_opt(s, 7, a->expires_ms);
    sqlite3_bind_int(s, 8, a->manual ? 1 : 0);
    store_bind_text(s, 9, a->ip ? a->ip : "");
    ipw_status r = store_run(st, s, doing, e);
    if (r == IPW_OK && id)
        *id = sqlite3_last_insert_rowid(st->db);
    return r;
}

static void store_lanes_rule_from_row(sqlite3_stmt *s, struct store_rule_action *a)
{
    a->id = sqlite3_column_int64(s, 0);
    a->provider = store_col_text(s, 1);
    a->rule = store_col_text(s, 2);
    a->action = store_col_text(s, 3);
    a->rate_per_min = sqlite3_column_double(s, 4);
    a->reason = store_col_text(s, 5);
    a->started_ms = sqlite3_column_int64(s, 6);
    a->expires_ms = sqlite3_column_int64(s, 7);
    a->manual = sqlite3_column_int(s, 8);
    a->ip = store_col_text(s, 9);
}

/* Steps s, bound by the caller, to its end: each row becomes a rule action for cb, which
 * stops the walk by returning nonzero. */
static ipw_status store_lanes_rules_run(struct store *st, sqlite3_stmt *s, store_rule_cb cb,
                                        void *ctx, const char *doing, struct err *e)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_rule_action a;
        store_lanes_rule_from_row(s, &a);
        if (cb(&a, ctx)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    return store_rows_end(st, s, rc, doing, e);
}

ipw_status store_rules_active(struct store *st, int64_t now_ms, const char *provider,
                              store_rule_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the active rule actions";
    enum q q = provider ? Q_RULES_ACTIVE_PROVIDER : Q_RULES_ACTIVE;
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, q, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, now_ms);
    if (provider)
        store_bind_text(s, 2, provider);
    return store_lanes_rules_run(st, s, cb, ctx, doing, e);
}

ipw_status store_rules_each(struct store *st, const char *provider, int64_t since_ms,
                            int64_t until_ms, store_rule_cb cb, void *ctx, struct err *e)
{
    const char *doing = "read the rule actions";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_RULES_EACH, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_range(s, provider, since_ms, until_ms);
    return store_lanes_rules_run(st, s, cb, ctx, doing, e);
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
    ipw_status sr = store_stmt_get(st, Q_RULES_END, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, provider);
    sqlite3_bind_int64(s, 2, now_ms);
    sqlite3_bind_int(s, 3, manual_only ? 1 : 0);
    ipw_status r = store_run(st, s, doing, e);
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
    ipw_status sr = store_stmt_get(st, Q_RULES_PURGE, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, before_ms);
    ipw_status r = store_run(st, s, doing, e);
    if (r == IPW_OK && count)
        *count = sqlite3_changes(st->db);
    return r;
}
