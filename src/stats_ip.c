/*
 * stats_ip: the rows of `stats --by ip`, one per source IP and provider, counted from the
 * attempts table (see stats.h).
 *
 * The summary counters that the other groupings read are kept per provider and hour, not per
 * source IP, so this grouping reads the attempts themselves, which record the IP each one was
 * sent from (source_ip). Its cost follows the number of attempts in the range, which is what an
 * operator comparing the IPs of a pool asks for once in a while, not on every tick. It counts
 * exactly what the summary counters count: attempts with a recorded outcome, dry runs left
 * out; a late bounce (an attempt whose outcome became bounced after a 250) is a bounce and a
 * late bounce; a complaint counts against the attempt it was matched to; replies are masked
 * (stats_mask_reason) and merged like the summary's reply counters. The period of every row is
 * "all": the range given by --since and --until, else the first and last attempt.
 */
#include <arpa/inet.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/stats.h"
#include "ipwarm/store.h"
#include "ipwarm/tz.h"

/* Filters shared by the three queries: ?1 provider (NULL = all), ?2 since, ?3 until (ms). */
#define STATS_IP_WHERE                                                                             \
    "a.dry_run = 0 AND (?1 IS NULL OR a.provider = ?1) AND a.started_ms >= ?2 AND "                \
    "a.started_ms < ?3"

static const char stats_ip_counts_sql[] =
    "SELECT coalesce(a.source_ip, ''), a.provider, count(*), "
    "sum(a.outcome = 'delivered'), sum(a.outcome = 'deferred'), sum(a.outcome = 'bounced'), "
    "sum(a.outcome = 'failed'), sum(a.outcome = 'expired'), sum(a.outcome = 'unknown'), "
    "sum(a.outcome = 'blocked'), "
    "sum(a.outcome = 'bounced' AND a.code BETWEEN 200 AND 299), "
    "min(a.started_ms), max(a.started_ms) "
    "FROM attempts a WHERE a.outcome <> 'in-flight' AND " STATS_IP_WHERE " GROUP BY 1, 2";

/* A late bounce keeps its 250 in the row: that reply is no reason, as in the summary's. */
static const char stats_ip_reasons_sql[] =
    "SELECT coalesce(a.source_ip, ''), a.provider, a.outcome, coalesce(a.code, 0), "
    "a.enhanced, a.text, count(*) FROM attempts a "
    "WHERE a.outcome IN ('deferred', 'bounced', 'failed', 'blocked') "
    "AND coalesce(a.code, 0) NOT BETWEEN 200 AND 299 AND " STATS_IP_WHERE
    " GROUP BY 1, 2, 3, 4, 5, 6";

static const char stats_ip_complaints_sql[] =
    "SELECT coalesce(a.source_ip, ''), a.provider, count(*) FROM feedback_reports f "
    "JOIN attempts a ON a.id = f.attempt_id WHERE f.kind = 'complaint' AND " STATS_IP_WHERE
    " GROUP BY 1, 2";

static const char *stats_ip_text(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    return t ? (const char *)t : "";
}

static ipw_status stats_ip_prepare(sqlite3 *db, const char *sql, const struct stats_query *q,
                                   sqlite3_stmt **out, struct err *e)
{
    if (sqlite3_prepare_v2(db, sql, -1, out, NULL) != SQLITE_OK) {
        ipw_status r =
            err_set(e, IPW_EIO, "stats --by ip: cannot read the attempts: %s", sqlite3_errmsg(db));
        sqlite3_finalize(*out);
        *out = NULL;
        return r;
    }
    if (q->provider)
        sqlite3_bind_text(*out, 1, q->provider, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(*out, 1);
    sqlite3_bind_int64(*out, 2, q->since_ms ? q->since_ms : INT64_MIN);
    sqlite3_bind_int64(*out, 3, q->until_ms ? q->until_ms : INT64_MAX);
    return IPW_OK;
}

static ipw_status stats_ip_step_done(sqlite3 *db, sqlite3_stmt *s, int rc, struct err *e)
{
    ipw_status r = IPW_OK;
    if (rc != SQLITE_DONE)
        r = err_set(e, IPW_EIO, "stats --by ip: cannot read the attempts: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return r;
}

/* The row of (ip, provider), or NULL. */
static struct stats_row *stats_ip_find(struct stats_result *res, const char *ip,
                                       const char *provider)
{
    for (size_t i = 0; i < res->n_rows; i++)
        if (strcmp(res->rows[i].ip, ip) == 0 && strcmp(res->rows[i].provider, provider) == 0)
            return &res->rows[i];
    return NULL;
}

/* IPv4 before IPv6, each in numeric order; an address that does not parse ("" for an attempt
 * with no source IP recorded) after them, by its text. */
static int stats_ip_addr_cmp(const char *a, const char *b)
{
    unsigned char x[16], y[16];
    int fa = inet_pton(AF_INET, a, x) == 1 ? 0 : inet_pton(AF_INET6, a, x) == 1 ? 1 : 2;
    int fb = inet_pton(AF_INET, b, y) == 1 ? 0 : inet_pton(AF_INET6, b, y) == 1 ? 1 : 2;
    if (fa != fb)
        return fa < fb ? -1 : 1;
    if (fa == 2)
        return strcmp(a, b);
    return memcmp(x, y, fa == 0 ? 4 : 16);
}

static int stats_ip_row_cmp(const void *a, const void *b)
{
    const struct stats_row *x = a, *y = b;
    int c = stats_ip_addr_cmp(x->ip, y->ip);
    return c ? c : strcmp(x->provider, y->provider);
}

static ipw_status stats_ip_counts(sqlite3 *db, const struct stats_query *q,
                                  struct stats_result *out, int64_t *first, int64_t *last,
                                  struct err *e)
{
    sqlite3_stmt *s = NULL;
    ipw_status r = stats_ip_prepare(db, stats_ip_counts_sql, q, &s, e);
    if (r != IPW_OK)
        return r;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (out->n_rows == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct stats_row *nr = realloc(out->rows, ncap * sizeof *nr);
            if (!nr) {
                sqlite3_finalize(s);
                return err_set(e, IPW_ENOMEM, "out of memory");
            }
            out->rows = nr;
            cap = ncap;
        }
        struct stats_row *w = &out->rows[out->n_rows];
        memset(w, 0, sizeof *w);
        w->ip = strdup(stats_ip_text(s, 0));
        w->provider = strdup(stats_ip_text(s, 1));
        out->n_rows++;
        if (!w->ip || !w->provider) {
            sqlite3_finalize(s);
            return err_set(e, IPW_ENOMEM, "out of memory");
        }
        snprintf(w->period, sizeof w->period, "all");
        w->attempts = sqlite3_column_int64(s, 2);
        w->delivered = sqlite3_column_int64(s, 3);
        w->deferred = sqlite3_column_int64(s, 4);
        w->bounced = sqlite3_column_int64(s, 5);
        w->failed = sqlite3_column_int64(s, 6);
        w->expired = sqlite3_column_int64(s, 7);
        w->unknown = sqlite3_column_int64(s, 8);
        w->blocked = sqlite3_column_int64(s, 9);
        w->late_bounces = sqlite3_column_int64(s, 10);
        int64_t lo = sqlite3_column_int64(s, 11), hi = sqlite3_column_int64(s, 12);
        if (*first == 0 || lo < *first)
            *first = lo;
        if (hi + 1 > *last)
            *last = hi + 1;
    }
    return stats_ip_step_done(db, s, rc, e);
}

static ipw_status stats_ip_reasons(sqlite3 *db, const struct stats_query *q,
                                   struct stats_result *out, struct err *e)
{
    sqlite3_stmt *s = NULL;
    ipw_status r = stats_ip_prepare(db, stats_ip_reasons_sql, q, &s, e);
    if (r != IPW_OK)
        return r;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct stats_row *w = stats_ip_find(out, stats_ip_text(s, 0), stats_ip_text(s, 1));
        if (!w)
            continue; /* an outcome recorded between the two reads */
        const char *enh = stats_ip_text(s, 4);
        char masked[STATS_REASON_MAX];
        stats_mask_reason(stats_ip_text(s, 5), masked, sizeof masked);
        if (!stats_reason_add(&w->reasons, &w->n_reasons, stats_ip_text(s, 2),
                              sqlite3_column_int(s, 3), *enh ? enh : NULL, masked,
                              sqlite3_column_int64(s, 6))) {
            sqlite3_finalize(s);
            return err_set(e, IPW_ENOMEM, "out of memory");
        }
    }
    return stats_ip_step_done(db, s, rc, e);
}

static ipw_status stats_ip_complaints(sqlite3 *db, const struct stats_query *q,
                                      struct stats_result *out, struct err *e)
{
    sqlite3_stmt *s = NULL;
    ipw_status r = stats_ip_prepare(db, stats_ip_complaints_sql, q, &s, e);
    if (r != IPW_OK)
        return r;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct stats_row *w = stats_ip_find(out, stats_ip_text(s, 0), stats_ip_text(s, 1));
        if (w)
            w->complaints += sqlite3_column_int64(s, 2);
    }
    return stats_ip_step_done(db, s, rc, e);
}

ipw_status stats_ip_rows(struct store *st, const struct stats_query *q, struct stats_result *out,
                         struct err *e)
{
    sqlite3 *db = store_db(st);
    int64_t first = 0, last = 0;
    /* One read transaction: the three queries see the same attempts. */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return err_set(e, IPW_EIO, "stats --by ip: cannot read the attempts: %s",
                       sqlite3_errmsg(db));
    ipw_status r = stats_ip_counts(db, q, out, &first, &last, e);
    if (r == IPW_OK)
        r = stats_ip_reasons(db, q, out, e);
    if (r == IPW_OK)
        r = stats_ip_complaints(db, q, out, e);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (r != IPW_OK)
        return r;
    for (size_t i = 0; i < out->n_rows; i++) {
        out->rows[i].start_ms = q->since_ms ? q->since_ms : first;
        out->rows[i].end_ms = q->until_ms ? q->until_ms : last;
    }
    if (out->n_rows > 1)
        qsort(out->rows, out->n_rows, sizeof *out->rows, stats_ip_row_cmp);
    return IPW_OK;
}

ipw_status stats_ip_collect(struct store *st, const struct stats_query *q, struct stats_result *out,
                            struct err *e)
{
    memset(out, 0, sizeof *out);
    ipw_status r = tz_zone_check(q->zone ? q->zone : "UTC", e);
    if (r != IPW_OK)
        return r;
    out->by_ip = true;
    r = stats_ip_rows(st, q, out, e);
    if (r != IPW_OK) {
        stats_result_free(out);
        return r;
    }
    return stats_finish(st, q, out, e);
}
