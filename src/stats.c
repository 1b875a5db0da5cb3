/*
 * stats: deferral statistics from the store's summary counters (see stats.h).
 *
 * Nothing here reads the attempts table: the store adds every outcome to a provider/UTC-hour
 * row of summary_hourly and every deferred, bounced or failed reply, masked, to a row of
 * summary_reasons, in the outcome's own transaction. Aggregating is then a walk over those rows
 * in hour order, which groups them into local days (or hours) of the plan's time zone while
 * asking the time zone database once per local day. Reply codes follow RFC 5321 section 4.2,
 * enhanced codes RFC 3463; CSV follows RFC 4180, JSON RFC 8259.
 */
#include "ipwarm/stats.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipwarm/clock.h"
#include "ipwarm/csv.h"
#include "ipwarm/json.h"
#include "ipwarm/store.h"
#include "ipwarm/tz.h"

#define HOUR_MS INT64_C(3600000)

/* ---- periods ---- */

/* Writes ms shifted by off seconds as "YYYY-MM-DDTHH:MM:SS+hh:mm". */
static void format_local(int64_t ms, int off, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000 + off);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, n, "%lld", (long long)ms);
        return;
    }
    /* Offsets are within +-24 h (tz data); the modulo keeps the compiler sure of the width. */
    int a = (off < 0 ? -off : off) % 86400;
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

static ipw_status day_fill(struct stats_day_cache *c, const char *zone, int64_t ms, struct err *e)
{
    struct tz_local l;
    ipw_status r = tz_local(ms, zone, &l, e);
    if (r != IPW_OK)
        return r;
    char next[TZ_DATE_MAX];
    int64_t start = 0, end = 0;
    r = tz_local_midnight_utc(zone, l.date, &start, e);
    if (r == IPW_OK)
        r = tz_next_day(l.date, next, e);
    if (r == IPW_OK)
        r = tz_local_midnight_utc(zone, next, &end, e);
    if (r != IPW_OK)
        return r;
    snprintf(c->zone, sizeof c->zone, "%s", zone);
    snprintf(c->date, sizeof c->date, "%s", l.date);
    c->start_ms = start;
    c->end_ms = end;
    c->offset_start = clock_utc_offset(start, zone);
    c->offset_end = clock_utc_offset(end - 1, zone);
    c->valid = true;
    return IPW_OK;
}

ipw_status stats_period_of(int64_t hour_ms, enum stats_by by, const char *zone,
                           struct stats_day_cache *cache, char label[40], int64_t *start_ms,
                           int64_t *end_ms, struct err *e)
{
    if (!zone)
        zone = "UTC";
    if (!cache->valid || strcmp(cache->zone, zone) != 0 || hour_ms < cache->start_ms ||
        hour_ms >= cache->end_ms) {
        ipw_status r = day_fill(cache, zone, hour_ms, e);
        if (r != IPW_OK)
            return r;
    }
    if (by == STATS_BY_DAY) {
        snprintf(label, 40, "%s", cache->date);
        *start_ms = cache->start_ms;
        *end_ms = cache->end_ms;
        return IPW_OK;
    }
    /* The day's offset holds all day unless the day has a DST change: then ask per hour. */
    int off = cache->offset_start == cache->offset_end ? cache->offset_start
                                                       : clock_utc_offset(hour_ms, zone);
    format_local(hour_ms, off / 60 * 60, label, 40);
    *start_ms = hour_ms;
    *end_ms = hour_ms + HOUR_MS;
    return IPW_OK;
}

/* ---- collecting ---- */

struct collect {
    const struct stats_query *q;
    struct stats_result *res;
    size_t cap;
    size_t period_first; /* index of the first row of the current period */
    struct stats_day_cache cache;
    ipw_status status;
    struct err *e;
};

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The row of (period starting start_ms, provider) among rows[from..n), or NULL. */
static struct stats_row *find_row(struct stats_result *res, size_t from, int64_t start_ms,
                                  const char *provider)
{
    for (size_t i = from; i < res->n_rows && res->rows[i].start_ms == start_ms; i++)
        if (strcmp(res->rows[i].provider, provider) == 0)
            return &res->rows[i];
    return NULL;
}

static int collect_summary(const struct store_summary_row *s, void *ctx)
{
    struct collect *c = ctx;
    char label[40];
    int64_t start = 0, end = 0;
    c->status =
        stats_period_of(s->hour_ms, c->q->by, c->q->zone, &c->cache, label, &start, &end, c->e);
    if (c->status != IPW_OK)
        return 1;
    struct stats_result *res = c->res;
    if (res->n_rows == 0 || res->rows[res->n_rows - 1].start_ms != start)
        c->period_first = res->n_rows;
    struct stats_row *row = find_row(res, c->period_first, start, s->provider);
    if (!row) {
        if (res->n_rows == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 64;
            struct stats_row *nr = realloc(res->rows, ncap * sizeof *nr);
            if (!nr) {
                c->status = err_set(c->e, IPW_ENOMEM, "out of memory");
                return 1;
            }
            res->rows = nr;
            c->cap = ncap;
        }
        row = &res->rows[res->n_rows];
        memset(row, 0, sizeof *row);
        row->provider = strdup(s->provider);
        if (!row->provider) {
            c->status = err_set(c->e, IPW_ENOMEM, "out of memory");
            return 1;
        }
        snprintf(row->period, sizeof row->period, "%s", label);
        row->start_ms = start;
        row->end_ms = end;
        res->n_rows++;
    }
    row->attempts += s->attempts;
    row->delivered += s->delivered;
    row->deferred += s->deferred;
    row->bounced += s->bounced;
    row->failed += s->failed;
    row->expired += s->expired;
    row->unknown += s->unknown;
    row->blocked += s->blocked;
    row->late_bounces += s->late_bounces;
    row->complaints += s->complaints;
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    const struct stats_row *x = a, *y = b;
    if (x->start_ms != y->start_ms)
        return x->start_ms < y->start_ms ? -1 : 1;
    return strcmp(x->provider, y->provider);
}

/* The first row of the period starting at start_ms (rows are sorted), or res->n_rows. */
static size_t first_of_period(const struct stats_result *res, int64_t start_ms)
{
    size_t lo = 0, hi = res->n_rows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (res->rows[mid].start_ms < start_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static void reason_free(struct stats_reason *r)
{
    free(r->outcome);
    free(r->enhanced);
    free(r->text);
}

void stats_reasons_free(struct stats_reason *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        reason_free(&list[i]);
    free(list);
}

bool stats_reason_add(struct stats_reason **list, size_t *n, const char *outcome, int code,
                      const char *enhanced, const char *text, int64_t count)
{
    if (!text)
        text = "";
    for (size_t i = 0; i < *n; i++) {
        struct stats_reason *r = &(*list)[i];
        if (r->code == code && str_eq(r->outcome, outcome) && str_eq(r->enhanced, enhanced) &&
            str_eq(r->text, text)) {
            r->count += count;
            return true;
        }
    }
    struct stats_reason *nl = realloc(*list, (*n + 1) * sizeof *nl);
    if (!nl)
        return false;
    *list = nl;
    struct stats_reason *r = &nl[*n];
    memset(r, 0, sizeof *r);
    r->outcome = xstrdup(outcome);
    r->enhanced = xstrdup(enhanced);
    r->text = xstrdup(text);
    r->code = code;
    r->count = count;
    (*n)++;
    if ((outcome && !r->outcome) || (enhanced && !r->enhanced) || !r->text)
        return false;
    return true;
}

/* NULL sorts before any string. */
static int reason_strcmp(const char *a, const char *b)
{
    if (!a || !b)
        return a ? 1 : b ? -1 : 0;
    return strcmp(a, b);
}

/* The order stats_reasons_sort() documents (stats.h). */
static int reason_cmp(const void *a, const void *b)
{
    const struct stats_reason *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (x->code != y->code)
        return x->code < y->code ? -1 : 1;
    int c = reason_strcmp(x->enhanced, y->enhanced);
    if (c == 0)
        c = reason_strcmp(x->outcome, y->outcome);
    return c ? c : reason_strcmp(x->text, y->text);
}

void stats_reasons_sort(struct stats_reason *list, size_t n)
{
    if (n > 1)
        qsort(list, n, sizeof *list, reason_cmp);
}

static int collect_reason(const struct store_reason_row *s, void *ctx)
{
    struct collect *c = ctx;
    char label[40];
    int64_t start = 0, end = 0;
    c->status =
        stats_period_of(s->hour_ms, c->q->by, c->q->zone, &c->cache, label, &start, &end, c->e);
    if (c->status != IPW_OK)
        return 1;
    struct stats_row *row = find_row(c->res, first_of_period(c->res, start), start, s->provider);
    if (!row)
        return 0; /* counters without a summary row cannot happen; nothing to attach to */
    if (!stats_reason_add(&row->reasons, &row->n_reasons, s->outcome, s->code, s->enhanced, s->text,
                          s->count)) {
        c->status = err_set(c->e, IPW_ENOMEM, "out of memory");
        return 1;
    }
    return 0;
}

static int collect_rule(const struct store_rule_action *a, void *ctx)
{
    struct collect *c = ctx;
    struct stats_result *res = c->res;
    struct stats_rule *found = NULL;
    for (size_t i = 0; i < res->n_rules; i++) {
        struct stats_rule *r = &res->rules[i];
        if (strcmp(r->provider, a->provider) == 0 && strcmp(r->rule, a->rule) == 0 &&
            strcmp(r->action, a->action) == 0)
            found = r;
    }
    if (!found) {
        struct stats_rule *nr = realloc(res->rules, (res->n_rules + 1) * sizeof *nr);
        if (!nr)
            goto oom;
        res->rules = nr;
        found = &nr[res->n_rules++];
        memset(found, 0, sizeof *found);
        found->provider = strdup(a->provider);
        found->rule = strdup(a->rule);
        found->action = strdup(a->action);
        if (!found->provider || !found->rule || !found->action)
            goto oom;
    }
    found->count++;
    if (a->started_ms > found->last_ms)
        found->last_ms = a->started_ms;
    if (strcmp(a->action, "pause") == 0 || strcmp(a->action, "suspend") == 0) {
        struct stats_pause *np = realloc(res->pauses, (res->n_pauses + 1) * sizeof *np);
        if (!np)
            goto oom;
        res->pauses = np;
        struct stats_pause *p = &np[res->n_pauses++];
        memset(p, 0, sizeof *p);
        p->provider = strdup(a->provider);
        p->rule = strdup(a->rule);
        p->action = strdup(a->action);
        p->reason = xstrdup(a->reason);
        p->started_ms = a->started_ms;
        p->expires_ms = a->expires_ms;
        p->manual = a->manual != 0;
        if (!p->provider || !p->rule || !p->action || (a->reason && !p->reason))
            goto oom;
    }
    return 0;
oom:
    c->status = err_set(c->e, IPW_ENOMEM, "out of memory");
    return 1;
}

static int rule_cmp(const void *a, const void *b)
{
    const struct stats_rule *x = a, *y = b;
    int k = strcmp(x->provider, y->provider);
    if (k)
        return k;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->rule, y->rule);
}

ipw_status stats_collect(struct store *st, const struct stats_query *q, struct stats_result *out,
                         struct err *e)
{
    memset(out, 0, sizeof *out);
    if (q->by == STATS_BY_IP)
        return err_set(e, IPW_EUSAGE, "stats by IP come from stats_ip_collect()");
    const char *zone = q->zone ? q->zone : "UTC";
    ipw_status r = tz_zone_check(zone, e);
    if (r != IPW_OK)
        return r;
    /* Counters are hourly: every hour that overlaps [since, until) is in. */
    int64_t since = q->since_ms ? (q->since_ms / HOUR_MS) * HOUR_MS : 0;
    if (q->since_ms && since == 0)
        since = 1; /* 0 means unbounded to the store */
    struct collect c = {.q = q, .res = out, .e = e, .status = IPW_OK};
    r = store_summary_each(st, q->provider, since, q->until_ms, collect_summary, &c, e);
    if (r == IPW_OK)
        r = c.status;
    if (r == IPW_OK) {
        if (out->n_rows > 1)
            qsort(out->rows, out->n_rows, sizeof *out->rows, row_cmp);
        r = store_reasons_each(st, q->provider, since, q->until_ms, collect_reason, &c, e);
        if (r == IPW_OK)
            r = c.status;
    }
    if (r == IPW_OK)
        return stats_finish(st, q, out, e);
    stats_result_free(out);
    return r;
}

ipw_status stats_finish(struct store *st, const struct stats_query *q, struct stats_result *out,
                        struct err *e)
{
    ipw_status r = IPW_OK;
    struct collect c = {.q = q, .res = out, .e = e, .status = IPW_OK};
    for (size_t i = 0; i < out->n_rows; i++) {
        struct stats_row *row = &out->rows[i];
        stats_reasons_sort(row->reasons, row->n_reasons);
        while (row->n_reasons > STATS_TOP_REASONS)
            reason_free(&row->reasons[--row->n_reasons]);
    }
    r = store_rules_each(st, q->provider, q->since_ms, q->until_ms, collect_rule, &c, e);
    if (r == IPW_OK)
        r = c.status;
    if (r == IPW_OK && out->n_rules > 1)
        qsort(out->rules, out->n_rules, sizeof *out->rules, rule_cmp);
    if (r != IPW_OK)
        stats_result_free(out);
    return r;
}

void stats_result_free(struct stats_result *r)
{
    for (size_t i = 0; i < r->n_rows; i++) {
        free(r->rows[i].provider);
        free(r->rows[i].ip);
        for (size_t k = 0; k < r->rows[i].n_reasons; k++)
            reason_free(&r->rows[i].reasons[k]);
        free(r->rows[i].reasons);
    }
    free(r->rows);
    for (size_t i = 0; i < r->n_rules; i++) {
        free(r->rules[i].provider);
        free(r->rules[i].rule);
        free(r->rules[i].action);
    }
    free(r->rules);
    for (size_t i = 0; i < r->n_pauses; i++) {
        free(r->pauses[i].provider);
        free(r->pauses[i].rule);
        free(r->pauses[i].action);
        free(r->pauses[i].reason);
    }
    free(r->pauses);
    memset(r, 0, sizeof *r);
}

double stats_deferral_rate(const struct stats_row *r)
{
    return r->attempts > 0 ? (double)r->deferred / (double)r->attempts : 0.0;
}

double stats_bounce_rate(const struct stats_row *r)
{
    return r->attempts > 0 ? (double)r->bounced / (double)r->attempts : 0.0;
}

double stats_complaint_rate(const struct stats_row *r)
{
    return r->delivered > 0 ? (double)r->complaints / (double)r->delivered : 0.0;
}

/* ---- output ---- */

/* A row's source IP as the table shows it: "-" when the attempts recorded none. */
static const char *stats_row_ip(const struct stats_row *w)
{
    return w->ip && *w->ip ? w->ip : "-";
}

static ipw_status write_done(FILE *f, struct err *e)
{
    if (fflush(f) != 0 || ferror(f))
        return err_set(e, IPW_EIO, "cannot write the statistics: output error");
    return IPW_OK;
}

/* Rates rounded to 4 decimals (0.1234 = 12.34%): enough for people and scripts alike. */
static double round4(double v)
{
    return (double)(int64_t)(v * 10000.0 + 0.5) / 10000.0;
}

static int digits_of(int64_t v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

/* The number of characters (UTF-8 code points) of s. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Writes s cut to width characters (the last one "~" when cut). */
static void put_cut(FILE *f, const char *s, size_t width)
{
    if (text_width(s) <= width) {
        fputs(s, f);
        return;
    }
    size_t w = 0;
    const char *p = s;
    while (*p && w + 1 < width) {
        p++;
        while (*p && ((unsigned char)*p & 0xC0) == 0x80)
            p++;
        w++;
    }
    fwrite(s, 1, (size_t)(p - s), f);
    fputc('~', f);
}

static void reason_label(const struct stats_reason *r, char *buf, size_t n)
{
    char code[8] = "-";
    if (r->code)
        snprintf(code, sizeof code, "%d", r->code);
    snprintf(buf, n, "%s %s %s", code, r->enhanced ? r->enhanced : "-",
             r->text && *r->text ? r->text : "(no reply text)");
}

/* Local time with its offset, seconds left out when they are 0: "2026-12-01T14:00+09:00". */
static char *short_time(int64_t ms, const char *zone, char *buf, size_t n)
{
    clock_format_rfc3339_local(ms, zone ? zone : "UTC", buf, n);
    /* "YYYY-MM-DDTHH:MM:SS" then the offset: drop ":00" at 16..18 when nothing finer follows. */
    if (strlen(buf) >= 19 && strncmp(buf + 16, ":00", 3) == 0 && buf[19] != '.')
        memmove(buf + 16, buf + 19, strlen(buf + 19) + 1);
    return buf;
}

ipw_status stats_write_table(const struct stats_result *r, const char *zone, FILE *f, struct err *e)
{
    if (r->n_rows == 0) {
        fputs("No attempts recorded in this range.\n", f);
    } else {
        int wp = 6, wn = 8, wa = 5, wd = 5, wf = 5, wb = 6, wx = 4, wk = 0, wu = 0;
        /* Blocked and unknown get a column only when there are some: the usual table stays
         * within 80 columns. The feedback columns appear once feedback was read (a late bounce
         * or a complaint). */
        bool fb = false;
        for (size_t i = 0; i < r->n_rows; i++) {
            if (r->rows[i].blocked > 0)
                wk = max_int(max_int(wk, 5), digits_of(r->rows[i].blocked));
            if (r->rows[i].unknown > 0)
                wu = max_int(max_int(wu, 4), digits_of(r->rows[i].unknown));
            if (r->rows[i].complaints || r->rows[i].late_bounces)
                fb = true;
        }
        /* By IP the first column is the source IP: the period is the whole range. */
        const char *first_head = r->by_ip ? "IP" : "PERIOD";
        if (r->by_ip)
            wp = 2;
        for (size_t i = 0; i < r->n_rows; i++) {
            const struct stats_row *w = &r->rows[i];
            wp = max_int(wp, (int)strlen(r->by_ip ? stats_row_ip(w) : w->period));
            wn = max_int(wn, (int)text_width(w->provider));
            wa = max_int(wa, digits_of(w->attempts));
            wd = max_int(wd, digits_of(w->delivered));
            wf = max_int(wf, digits_of(w->deferred));
            wb = max_int(wb, digits_of(w->bounced));
            wx = max_int(wx, digits_of(w->failed));
        }
        fprintf(f, "%-*s %-*s %*s %*s %*s %*s %*s", wp, first_head, wn, "PROVIDER", wa, "TRIED", wd,
                "DELIV", wf, "DEFER", wb, "BOUNCE", wx, "FAIL");
        if (wk)
            fprintf(f, " %*s", wk, "BLOCK");
        if (wu)
            fprintf(f, " %*s", wu, "UNKN");
        fprintf(f, " %6s %6s%s\n", "DEFER%", "BNCE%", fb ? "  LATE CMPL  CMPL%" : "");
        for (size_t i = 0; i < r->n_rows; i++) {
            const struct stats_row *w = &r->rows[i];
            fprintf(f, "%-*s %-*s %*lld %*lld %*lld %*lld %*lld", wp,
                    r->by_ip ? stats_row_ip(w) : w->period, wn, w->provider, wa,
                    (long long)w->attempts, wd, (long long)w->delivered, wf, (long long)w->deferred,
                    wb, (long long)w->bounced, wx, (long long)w->failed);
            if (wk)
                fprintf(f, " %*lld", wk, (long long)w->blocked);
            if (wu)
                fprintf(f, " %*lld", wu, (long long)w->unknown);
            fprintf(f, " %5.1f%% %5.1f%%", 100.0 * stats_deferral_rate(w),
                    100.0 * stats_bounce_rate(w));
            /* Complaint rates that matter are tenths of a percent: two decimals. */
            if (fb)
                fprintf(f, " %5lld %4lld %5.2f%%", (long long)w->late_bounces,
                        (long long)w->complaints, 100.0 * stats_complaint_rate(w));
            fputc('\n', f);
            /* The three most frequent replies under their row, cut to 80 columns. */
            for (size_t k = 0; k < w->n_reasons && k < 3; k++) {
                char label[STATS_REASON_MAX + 32];
                reason_label(&w->reasons[k], label, sizeof label);
                char head[32];
                int hn = snprintf(head, sizeof head, "  %6lld x ", (long long)w->reasons[k].count);
                fputs(head, f);
                put_cut(f, label, hn < 80 ? (size_t)(80 - hn) : 10);
                fputc('\n', f);
            }
        }
    }
    if (r->n_rules > 0) {
        fputs("\nRules that acted:\n", f);
        for (size_t i = 0; i < r->n_rules; i++) {
            const struct stats_rule *w = &r->rules[i];
            char when[CLOCK_RFC3339_MAX];
            short_time(w->last_ms, zone, when, sizeof when);
            char line[600];
            snprintf(line, sizeof line, "  %-10s %-8s %4lld x %s, last %s", w->provider, w->action,
                     (long long)w->count, w->rule, when);
            put_cut(f, line, 80);
            fputc('\n', f);
        }
    }
    if (r->n_pauses > 0) {
        fputs("\nPauses and suspensions:\n", f);
        for (size_t i = 0; i < r->n_pauses; i++) {
            const struct stats_pause *p = &r->pauses[i];
            char from[CLOCK_RFC3339_MAX], to[CLOCK_RFC3339_MAX + 8];
            short_time(p->started_ms, zone, from, sizeof from);
            if (p->expires_ms) {
                char t[CLOCK_RFC3339_MAX];
                snprintf(to, sizeof to, "to %s", short_time(p->expires_ms, zone, t, sizeof t));
            } else {
                snprintf(to, sizeof to, "until resumed");
            }
            fprintf(f, "  %s %s%s from %s %s\n", p->provider, p->action,
                    p->manual ? " (manual)" : "", from, to);
            char line[STATS_REASON_MAX + 600];
            snprintf(line, sizeof line, "    rule %s: %s", p->rule,
                     p->reason ? p->reason : "(no reason recorded)");
            put_cut(f, line, 80);
            fputc('\n', f);
        }
    }
    return write_done(f, e);
}

ipw_status stats_write_csv(const struct stats_result *r, FILE *f, struct err *e)
{
    fputs("period,provider,attempts,delivered,deferred,bounced,failed,expired,unknown,"
          "deferral_rate,bounce_rate,top_reason_code,top_reason_enhanced,top_reason_text,"
          "top_reason_count,blocked,complaints,complaint_rate,late_bounces",
          f);
    fputs(r->by_ip ? ",ip\r\n" : "\r\n", f);
    for (size_t i = 0; i < r->n_rows; i++) {
        const struct stats_row *w = &r->rows[i];
        csv_write_field(f, w->period);
        fputc(',', f);
        csv_write_field(f, w->provider);
        fprintf(f, ",%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.4f,%.4f,", (long long)w->attempts,
                (long long)w->delivered, (long long)w->deferred, (long long)w->bounced,
                (long long)w->failed, (long long)w->expired, (long long)w->unknown,
                round4(stats_deferral_rate(w)), round4(stats_bounce_rate(w)));
        if (w->n_reasons > 0) {
            const struct stats_reason *t = &w->reasons[0];
            if (t->code)
                fprintf(f, "%d", t->code);
            fputc(',', f);
            csv_write_field(f, t->enhanced);
            fputc(',', f);
            csv_write_field(f, t->text);
            fprintf(f, ",%lld", (long long)t->count);
        } else {
            fputs(",,,", f);
        }
        /* Columns added later go at the end: readers that go by position keep working. */
        fprintf(f, ",%lld,%lld,%.4f,%lld", (long long)w->blocked, (long long)w->complaints,
                round4(stats_complaint_rate(w)), (long long)w->late_bounces);
        if (r->by_ip) {
            fputc(',', f);
            csv_write_field(f, w->ip);
        }
        fputs("\r\n", f);
    }
    return write_done(f, e);
}

static void json_time(struct json *j, const char *key, int64_t ms, const char *zone)
{
    char buf[CLOCK_RFC3339_MAX];
    json_kv_string(j, key, clock_format_rfc3339_local(ms, zone, buf, sizeof buf));
}

ipw_status stats_write_json(const struct stats_result *r, const struct stats_query *q, FILE *f,
                            bool pretty, struct err *e)
{
    const char *zone = q->zone ? q->zone : "UTC";
    struct json j;
    json_init(&j, f, pretty);
    json_object_begin(&j);
    json_kv_string(&j, "by", q->by == STATS_BY_HOUR ? "hour" : q->by == STATS_BY_IP ? "ip" : "day");
    json_kv_string(&j, "timezone", zone);
    if (q->since_ms)
        json_time(&j, "since", q->since_ms, zone);
    else
        json_kv_null(&j, "since");
    if (q->until_ms)
        json_time(&j, "until", q->until_ms, zone);
    else
        json_kv_null(&j, "until");
    json_key(&j, "rows");
    json_array_begin(&j);
    for (size_t i = 0; i < r->n_rows; i++) {
        const struct stats_row *w = &r->rows[i];
        json_object_begin(&j);
        json_kv_string(&j, "period", w->period);
        json_time(&j, "start", w->start_ms, zone);
        json_time(&j, "end", w->end_ms, zone);
        json_kv_string(&j, "provider", w->provider);
        if (r->by_ip) {
            json_kv_string(&j, "ip", w->ip && *w->ip ? w->ip : NULL);
        }
        json_kv_int(&j, "attempts", w->attempts);
        json_kv_int(&j, "delivered", w->delivered);
        json_kv_int(&j, "deferred", w->deferred);
        json_kv_int(&j, "bounced", w->bounced);
        json_kv_int(&j, "failed", w->failed);
        json_kv_int(&j, "expired", w->expired);
        json_kv_int(&j, "unknown", w->unknown);
        json_kv_int(&j, "blocked", w->blocked);
        json_kv_double(&j, "deferral_rate", round4(stats_deferral_rate(w)));
        json_kv_double(&j, "bounce_rate", round4(stats_bounce_rate(w)));
        json_kv_int(&j, "complaints", w->complaints);
        json_kv_double(&j, "complaint_rate", round4(stats_complaint_rate(w)));
        json_kv_int(&j, "late_bounces", w->late_bounces);
        json_key(&j, "top_reasons");
        json_array_begin(&j);
        for (size_t k = 0; k < w->n_reasons; k++) {
            const struct stats_reason *t = &w->reasons[k];
            json_object_begin(&j);
            json_kv_int_or_null(&j, "code", t->code, t->code != 0);
            json_kv_string(&j, "enhanced", t->enhanced);
            json_kv_string(&j, "text", t->text);
            json_kv_int(&j, "count", t->count);
            json_kv_string(&j, "outcome", t->outcome);
            json_object_end(&j);
        }
        json_array_end(&j);
        json_object_end(&j);
    }
    json_array_end(&j);
    json_key(&j, "rules");
    json_array_begin(&j);
    for (size_t i = 0; i < r->n_rules; i++) {
        const struct stats_rule *w = &r->rules[i];
        json_object_begin(&j);
        json_kv_string(&j, "provider", w->provider);
        json_kv_string(&j, "rule", w->rule);
        json_kv_string(&j, "action", w->action);
        json_kv_int(&j, "count", w->count);
        json_time(&j, "last", w->last_ms, zone);
        json_object_end(&j);
    }
    json_array_end(&j);
    json_key(&j, "pauses");
    json_array_begin(&j);
    for (size_t i = 0; i < r->n_pauses; i++) {
        const struct stats_pause *p = &r->pauses[i];
        json_object_begin(&j);
        json_kv_string(&j, "provider", p->provider);
        json_kv_string(&j, "action", p->action);
        json_kv_string(&j, "rule", p->rule);
        json_kv_string(&j, "reason", p->reason);
        json_time(&j, "started", p->started_ms, zone);
        if (p->expires_ms)
            json_time(&j, "expires", p->expires_ms, zone);
        else
            json_kv_null(&j, "expires");
        json_kv_bool(&j, "manual", p->manual);
        json_object_end(&j);
    }
    json_array_end(&j);
    json_object_end(&j);
    return json_finish(&j, e);
}

ipw_status stats_store_open(const char *path, struct store **out, bool *missing, struct err *e)
{
    if (missing)
        *missing = false;
    struct store_options opt = {.must_exist = 1};
    ipw_status r = store_open_opts(path, &opt, out, e);
    if (r != IPW_ENOINPUT)
        return r;
    if (missing)
        *missing = true;
    return store_open(":memory:", out, e);
}
