/*
 * report: the HTML report of a campaign (see report.h).
 *
 * The page is HTML5 with one <style> and inline SVG 1.1 charts, written in one pass to a FILE.
 * Nothing refers to another resource (no scripts, fonts, images or style sheets), so the file
 * works offline and leaks nothing when opened. The data comes from stats_collect() by hour
 * (the store's hourly summary rows) and is grouped here into local days of the plan's zone, or
 * kept per hour when the history spans two days or less; empty days and hours between the
 * first and the last are drawn as empty, so the x axis is time. The planned rate of a day is
 * what the ramp gives the provider's k-th sending day if every earlier day was clean (stage k);
 * the state file keeps no history of stages, so this is the plan, not a record, and the legend
 * says so. The achieved rate is the busiest hour's attempts divided by 60: the pace the engine
 * really kept while it was sending, unaffected by the hours its schedule was closed.
 * With seeds, a section charts per provider and local day where the seed copies landed (inbox,
 * junk, missing, not placed yet) from placement_collect(), the figures `placement` prints.
 */
#include "ipwarm/report.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/clock.h"
#include "ipwarm/lane.h"
#include "ipwarm/lane_store.h"
#include "ipwarm/placement.h"
#include "ipwarm/stats.h"
#include "ipwarm/store.h"
#include "ipwarm/tz.h"

#include "report_chart.h"

#define HOUR_MS INT64_C(3600000)
/* Beyond this many days the x axis leaves empty days out instead of drawing them. */
#define REPORT_MAX_PERIODS 800
/* Reasons listed per provider. */
#define REPORT_TOP_REASONS 8

void report_html_escape(FILE *f, const char *s)
{
    report_chart_escape(f, s);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static ipw_status add_name(struct rep *r, const char *name, struct err *e)
{
    for (size_t i = 0; i < r->n_prov; i++)
        if (strcmp(r->prov[i], name) == 0)
            return IPW_OK;
    char **np = realloc(r->prov, (r->n_prov + 1) * sizeof *np);
    if (!np)
        return err_set(e, IPW_ENOMEM, "out of memory");
    r->prov = np;
    np[r->n_prov] = strdup(name);
    if (!np[r->n_prov])
        return err_set(e, IPW_ENOMEM, "out of memory");
    r->n_prov++;
    return IPW_OK;
}

static int prov_index(const struct rep *r, const char *name)
{
    for (size_t i = 0; i < r->n_prov; i++)
        if (strcmp(r->prov[i], name) == 0)
            return (int)i;
    return -1;
}

struct name_ctx {
    struct rep *r;
    ipw_status status;
    struct err *e;
};

static int stored_name(const char *name, void *arg)
{
    struct name_ctx *c = arg;
    c->status = add_name(c->r, name, c->e);
    return c->status != IPW_OK;
}

/* The period containing ms (the last starting at or before it). */
static size_t period_at(const struct rep *r, int64_t ms)
{
    size_t lo = 0, hi = r->n_per;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->per[mid].start_ms <= ms)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static ipw_status add_period(struct rep *r, const char *label, const char *day, int64_t start,
                             size_t *cap, struct err *e)
{
    if (r->n_per == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        struct period *np = realloc(r->per, nc * sizeof *np);
        if (!np)
            return err_set(e, IPW_ENOMEM, "out of memory");
        r->per = np;
        *cap = nc;
    }
    struct period *x = &r->per[r->n_per++];
    snprintf(x->label, sizeof x->label, "%s", label);
    snprintf(x->day, sizeof x->day, "%s", day);
    x->start_ms = start;
    return IPW_OK;
}

/* Builds the periods, the provider list and the cells from the hourly rows. */
static ipw_status build(struct rep *r, struct store *st, const struct stats_result *hr,
                        struct err *e)
{
    ipw_status s = IPW_OK;
    for (size_t i = 0; s == IPW_OK && i < hr->n_rows; i++)
        s = add_name(r, hr->rows[i].provider, e);
    struct name_ctx nc = {r, IPW_OK, e};
    if (s == IPW_OK)
        s = store_provider_names(st, stored_name, &nc, e);
    if (s == IPW_OK)
        s = nc.status;
    if (s != IPW_OK)
        return s;
    if (r->n_prov > 1)
        qsort(r->prov, r->n_prov, sizeof *r->prov, name_cmp);
    if (hr->n_rows == 0)
        return IPW_OK;

    /* The local days the history touches, and whether it spans more than two. */
    struct stats_day_cache dc;
    memset(&dc, 0, sizeof dc);
    char label[40], first_day[40], last_day[40];
    int64_t ds, de;
    s = stats_period_of(hr->rows[0].start_ms, STATS_BY_DAY, r->zone, &dc, label, &ds, &de, e);
    if (s != IPW_OK)
        return s;
    snprintf(first_day, sizeof first_day, "%s", label);
    int64_t first_day_start = ds;
    s = stats_period_of(hr->rows[hr->n_rows - 1].start_ms, STATS_BY_DAY, r->zone, &dc, label, &ds,
                        &de, e);
    if (s != IPW_OK)
        return s;
    snprintf(last_day, sizeof last_day, "%s", label);
    char second[TZ_DATE_MAX];
    s = tz_next_day(first_day, second, e);
    if (s != IPW_OK)
        return s;
    r->by_hour = strcmp(last_day, second) <= 0;

    size_t cap = 0;
    if (r->by_hour) {
        int64_t h0 = hr->rows[0].start_ms, h1 = hr->rows[hr->n_rows - 1].start_ms;
        for (int64_t h = h0; s == IPW_OK && h <= h1; h += HOUR_MS) {
            int64_t a, b;
            char day[40];
            s = stats_period_of(h, STATS_BY_HOUR, r->zone, &dc, label, &a, &b, e);
            if (s == IPW_OK)
                s = stats_period_of(h, STATS_BY_DAY, r->zone, &dc, day, &a, &b, e);
            if (s == IPW_OK)
                s = add_period(r, label, day, h, &cap, e);
        }
    } else {
        char d[40];
        snprintf(d, sizeof d, "%s", first_day);
        int64_t start = first_day_start;
        while (s == IPW_OK && strcmp(d, last_day) <= 0 && r->n_per < REPORT_MAX_PERIODS) {
            s = add_period(r, d, d, start, &cap, e);
            if (s == IPW_OK)
                s = tz_next_day(d, d, e);
            if (s == IPW_OK)
                s = tz_local_midnight_utc(r->zone, d, &start, e);
        }
        if (s == IPW_OK && strcmp(d, last_day) <= 0) {
            /* Too long to draw every day: only the days with attempts. */
            r->n_per = 0;
            for (size_t i = 0; s == IPW_OK && i < hr->n_rows; i++) {
                s = stats_period_of(hr->rows[i].start_ms, STATS_BY_DAY, r->zone, &dc, label, &ds,
                                    &de, e);
                if (s == IPW_OK && (r->n_per == 0 || r->per[r->n_per - 1].start_ms != ds))
                    s = add_period(r, label, label, ds, &cap, e);
            }
        }
    }
    if (s != IPW_OK)
        return s;
    r->cells = calloc(r->n_per * (r->n_prov ? r->n_prov : 1), sizeof *r->cells);
    if (!r->cells)
        return err_set(e, IPW_ENOMEM, "out of memory");
    for (size_t i = 0; i < hr->n_rows; i++) {
        const struct stats_row *w = &hr->rows[i];
        int pi = prov_index(r, w->provider);
        if (pi < 0)
            continue;
        struct cell *c = &r->cells[period_at(r, w->start_ms) * r->n_prov + (size_t)pi];
        c->c[C_DELIVERED] += w->delivered;
        c->c[C_DEFERRED] += w->deferred;
        c->c[C_BOUNCED] += w->bounced;
        c->c[C_FAILED] += w->failed;
        c->c[C_BLOCKED] += w->blocked;
        c->c[C_OTHER] += w->expired + w->unknown;
        c->unknown += w->unknown;
        c->late += w->late_bounces;
        c->complaints += w->complaints;
        if (w->attempts > c->peak_hour)
            c->peak_hour = w->attempts;
    }
    return IPW_OK;
}

struct reason_ctx {
    struct rep *r;
    int oom;
};

static int reason_row(const struct store_reason_row *s, void *arg)
{
    struct reason_ctx *c = arg;
    int pi = prov_index(c->r, s->provider);
    if (pi < 0)
        return 0;
    if (!stats_reason_add(&c->r->reasons[pi], &c->r->n_reasons[pi], s->outcome, s->code,
                          s->enhanced, s->text, s->count)) {
        c->oom = 1;
        return 1;
    }
    return 0;
}

/* Defined below, with the other table cells. */
static void text_cell(FILE *f, const char *cls, const char *s);

/* The section: a chart per provider with seed copies, then the figures as `placement` prints
 * them. Nothing without seeds. */
static void placement_section(FILE *f, const struct plan *p, const struct placement_result *pl)
{
    if (p->n_seeds == 0)
        return;
    fputs("<section>\n<h2>Inbox placement (seed mailboxes)</h2>\n", f);
    if (pl->n == 0) {
        fputs("<p>No copy sent to a seed yet.</p>\n</section>\n", f);
        return;
    }
    /* The days with seed copies, in order (rows go by day, then provider). */
    struct period *days = calloc(pl->n, sizeof *days);
    if (!days) {
        fputs("<p>Out of memory.</p>\n</section>\n", f);
        return;
    }
    size_t n_days = 0;
    for (size_t i = 0; i < pl->n; i++)
        if (n_days == 0 || strcmp(days[n_days - 1].label, pl->rows[i].period) != 0) {
            snprintf(days[n_days].label, sizeof days[n_days].label, "%s", pl->rows[i].period);
            snprintf(days[n_days].day, sizeof days[n_days].day, "%s", pl->rows[i].period);
            n_days++;
        }
    fputs("<div class=\"charts\">\n", f);
    for (size_t i = 0; i < pl->n; i++) {
        bool first = true; /* each provider once, at its first row */
        for (size_t k = 0; k < i && first; k++)
            first = strcmp(pl->rows[k].provider, pl->rows[i].provider) != 0;
        if (!first)
            continue;
        fputs("<div class=\"chart\">\n<h3>", f);
        report_html_escape(f, pl->rows[i].provider);
        fputs("</h3>\n", f);
        report_chart_placement(f, pl, days, n_days, pl->rows[i].provider);
        fputs("<p class=\"legend\">", f);
        for (int k = 0; k < N_PL; k++)
            fprintf(f, "<span class=\"sw\" style=\"background:%s\"></span>%s",
                    report_chart_placement_colors[k], report_chart_placement_names[k]);
        fputs("</p>\n</div>\n", f);
    }
    fputs("</div>\n<div class=\"wrap\"><table>\n<tr><th>day</th><th>provider</th><th "
          "class=\"n\">sent</th><th class=\"n\">inbox</th><th class=\"n\">junk</th><th "
          "class=\"n\">missing</th><th class=\"n\">pending</th><th class=\"n\">inbox rate</th>"
          "</tr>\n",
          f);
    for (size_t i = 0; i < pl->n; i++) {
        const struct placement_row *row = &pl->rows[i];
        fputs("<tr>", f);
        text_cell(f, "", row->period);
        text_cell(f, "", row->provider);
        fprintf(f,
                "<td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
                "<td class=\"n\">%lld</td><td class=\"n\">%lld</td>",
                (long long)row->sent, (long long)row->inbox, (long long)row->junk,
                (long long)row->missing,
                (long long)(row->sent - row->inbox - row->junk - row->missing));
        double rate = placement_inbox_rate(row);
        if (rate >= 0)
            fprintf(f, "<td class=\"n\">%.1f%%</td></tr>\n", rate);
        else
            fputs("<td class=\"n\">-</td></tr>\n", f);
    }
    fputs("</table></div>\n<p class=\"meta\">Inbox rate: inbox over the copies placed (inbox, "
          "junk, missing); a copy in neither folder 24 h after it was sent is missing.</p>\n"
          "</section>\n",
          f);
    free(days);
}

/* ---- page ---- */

static const char CSS[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',"
    "Arial,sans-serif;color:#1b1b1b;background:#fff;line-height:1.4}"
    "main{max-width:1120px;margin:0 auto;padding:1rem}"
    "h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:1.6rem 0 .5rem;"
    "border-bottom:2px solid #1565c0;padding-bottom:.2rem}h3{font-size:1.05rem;margin:.8rem 0 "
    ".3rem}"
    ".meta{color:#555;font-size:.9rem}"
    ".wrap{overflow-x:auto}"
    "table{border-collapse:collapse;width:100%;font-size:.88rem}"
    "th,td{padding:.3rem .45rem;border-bottom:1px solid #e0e0e0;text-align:left;"
    "vertical-align:top}th{background:#f3f6fa}"
    ".n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".txt{word-break:break-word}"
    ".charts{display:grid;grid-template-columns:1fr 1fr;gap:1rem}"
    ".chart{border:1px solid #e0e0e0;border-radius:6px;padding:.5rem;break-inside:avoid}"
    "svg{width:100%;height:auto;display:block}"
    ".legend{font-size:.8rem;color:#444;margin:.3rem 0 0}"
    ".sw{display:inline-block;width:.8em;height:.8em;margin:0 .25em 0 .6em;"
    "vertical-align:-.05em;border-radius:2px}"
    ".ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}"
    ".warn{color:#8d6e00;font-weight:600}"
    "pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:.5rem;"
    "font-size:.8rem}"
    /* A provider's last reply: a row of its own under the provider's, the table's full width,
     * so that a long reply wraps in a readable measure instead of a narrow column. */
    "tr.pr td{border-bottom:0}"
    "td.ipn{padding-left:1.5em}"
    "td.rp{padding-top:0}"
    ".reply{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;"
    "font-size:.8rem;color:#333;background:#f7f7f7;border-left:3px solid #90a4ae;"
    "padding:.25rem .5rem;margin:0 0 .1rem;overflow-wrap:anywhere;white-space:normal}"
    ".reply .rl{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
    "color:#555;font-size:.78rem;margin-right:.4rem}"
    ".reply summary{cursor:pointer}"
    "details.reply[open] .pv{display:none}"
    "@media (max-width:760px){.charts{grid-template-columns:1fr}main{padding:.5rem}"
    "table{font-size:.78rem}h1{font-size:1.25rem}"
    ".reply{position:sticky;left:0;max-width:calc(100vw - 2.5rem)}}"
    "@media print{main{max-width:none;padding:0}th{background:none}"
    ".chart,table,tr{break-inside:avoid}h2{break-after:avoid}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}";

static void time_cell(FILE *f, int64_t ms, const char *zone)
{
    char buf[CLOCK_RFC3339_MAX];
    if (!ms) {
        fputs("<td>-</td>", f);
        return;
    }
    fputs("<td>", f);
    report_html_escape(f, clock_format_rfc3339_local(ms, zone, buf, sizeof buf));
    fputs("</td>", f);
}

/* Replies longer than this many bytes are folded: <details> shows their start. */
#define REPORT_REPLY_FOLD    480
#define REPORT_REPLY_PREVIEW 240

/* The last reply's row: the time and the whole text, folded when long (REPORT_REPLY_FOLD). */
static void reply_row(FILE *f, const char *reply, int64_t ms, const char *zone, int cols)
{
    char at[CLOCK_RFC3339_MAX] = "";
    if (ms)
        clock_format_rfc3339_local(ms, zone, at, sizeof at);
    size_t len = reply ? strlen(reply) : 0;
    fprintf(f, "<tr><td class=\"rp\" colspan=\"%d\">", cols);
    if (len <= REPORT_REPLY_FOLD) {
        fputs("<div class=\"reply\"><span class=\"rl\">last reply", f);
    } else {
        fputs("<details class=\"reply\"><summary><span class=\"rl\">last reply", f);
    }
    if (at[0]) {
        fputs(" at ", f);
        report_html_escape(f, at);
    }
    fputs("</span>", f);
    if (len <= REPORT_REPLY_FOLD) {
        report_html_escape(f, len ? reply : "-");
        fputs("</div></td></tr>\n", f);
        return;
    }
    /* The preview ends at a space near REPORT_REPLY_PREVIEW, never inside a UTF-8 sequence. */
    size_t cut = REPORT_REPLY_PREVIEW;
    for (size_t i = cut; i > REPORT_REPLY_PREVIEW - 60; i--)
        if (reply[i] == ' ') {
            cut = i;
            break;
        }
    while (cut > 0 && ((unsigned char)reply[cut] & 0xC0) == 0x80)
        cut--;
    char preview[REPORT_REPLY_PREVIEW + 1];
    memcpy(preview, reply, cut);
    preview[cut] = '\0';
    fputs("<span class=\"pv\">", f);
    report_html_escape(f, preview);
    size_t chars = 0; /* UTF-8 characters: every byte but the continuation bytes */
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)reply[i] & 0xC0) != 0x80;
    fprintf(f, " &hellip; (%zu characters: show all)</span></summary>", chars);
    report_html_escape(f, reply);
    fputs("</details></td></tr>\n", f);
}

static void text_cell(FILE *f, const char *cls, const char *s)
{
    fprintf(f, "<td class=\"%s\">", cls);
    report_html_escape(f, s && *s ? s : "-");
    fputs("</td>", f);
}

/* One provider's row of "Providers now": what lane_store_load() says it is doing (the same
 * as status and metrics), and its last reply under it. data-state and data-until carry the
 * state for scripts. With a pool, a row per IP follows (class "ip", data-ip), with the IP's
 * own last reply. */
static void state_row(FILE *f, const struct lane_view *v, const char *zone)
{
    const struct lane_now *n = &v->now;
    const char *word = lane_activity_name(n->activity);
    char until[CLOCK_RFC3339_MAX] = "";
    if (n->until_ms > 0)
        clock_format_rfc3339_local(n->until_ms, zone, until, sizeof until);
    fprintf(f, "<tr class=\"pr%s\" data-provider=\"", v->ip ? " ip" : "");
    report_html_escape(f, v->pp->name);
    if (v->ip) {
        fputs("\" data-ip=\"", f);
        report_html_escape(f, v->ip);
    }
    fprintf(f, "\" data-state=\"%s\" data-until=\"", word);
    report_html_escape(f, until);
    fputs("\">", f);
    if (v->ip) {
        fputs("<td class=\"ipn\">from ", f);
        report_html_escape(f, v->ip);
        fputs("</td>", f);
    } else {
        text_cell(f, "", v->pp->name);
    }
    fprintf(f, "<td class=\"n\">%d</td><td class=\"n\">%d</td><td class=\"n\">%.1f/min</td>",
            v->state.ramp.stage, v->state.ramp.sending_day, n->rate_per_min);
    fprintf(f, "<td class=\"n\">%lld</td>", (long long)n->sent_today);
    if (n->cap_today >= 0)
        fprintf(f, "<td class=\"n\">%lld</td>", (long long)n->cap_today);
    else
        fputs("<td class=\"n\">none</td>", f);
    if (n->activity == LANE_SENDING) {
        fputs("<td><span class=\"ok\">sending</span>", f);
        if (n->throttled)
            fputs(" (throttled)", f);
        fputs("</td>", f);
    } else {
        fprintf(f, "<td><span class=\"bad\">%s</span>", word);
        if (until[0]) {
            fputs(" until ", f);
            report_html_escape(f, until);
        } else if (n->activity == LANE_HELD || n->activity == LANE_SUSPENDED) {
            fputs(" until resumed", f);
        }
        if (n->reason[0]) {
            fputs(": <span class=\"why\">", f);
            report_html_escape(f, n->reason);
            fputs("</span>", f);
        }
        fputs("</td>", f);
    }
    fputs("</tr>\n", f);
    /* A pool: the provider's last reply is its latest IP's, shown under that IP. */
    if (!v->ips)
        reply_row(f, v->last_reply, v->state.last_reply_ms, zone, 7);
    for (size_t k = 0; k < v->n_ips; k++)
        state_row(f, &v->ips[k], zone);
}

static void write_page(FILE *f, struct rep *r, struct store *st, const struct stats_result *hr,
                       const struct lane_views *lanes, const struct placement_result *pl,
                       int64_t now_ms, ipw_status *status, struct err *e)
{
    const struct plan *p = r->p;
    char now_s[CLOCK_RFC3339_MAX];
    clock_format_rfc3339_local(now_ms, r->zone, now_s, sizeof now_s);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    fputs("Warm-up report: ", f);
    report_html_escape(f, p->campaign);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n<h1>Warm-up report: ", CSS);
    report_html_escape(f, p->campaign);
    fputs("</h1>\n<p class=\"meta\">Generated ", f);
    report_html_escape(f, now_s);
    fputs(" &middot; time zone ", f);
    report_html_escape(f, r->zone);
    if (r->n_per > 0) {
        fputs(" &middot; history ", f);
        report_html_escape(f, r->per[0].day);
        fputs(" to ", f);
        report_html_escape(f, r->per[r->n_per - 1].day);
    }
    fputs("</p>\n", f);

    /* Totals. */
    fputs("<section>\n<h2>Totals</h2>\n<div class=\"wrap\"><table>\n<tr><th>provider</th>"
          "<th class=\"n\">attempts</th><th class=\"n\">delivered</th><th class=\"n\">deferred"
          "</th><th class=\"n\">bounced</th><th class=\"n\">failed</th><th class=\"n\">blocked"
          "</th><th class=\"n\">unknown</th><th class=\"n\">deferral rate</th><th "
          "class=\"n\">bounce rate</th><th class=\"n\">late bounces</th><th "
          "class=\"n\">complaints</th><th class=\"n\">complaint rate</th></tr>\n",
          f);
    for (size_t pi = 0; pi < r->n_prov; pi++) {
        int64_t t[N_C] = {0}, unknown = 0, late = 0, cmpl = 0;
        for (size_t i = 0; i < r->n_per; i++) {
            const struct cell *c = &r->cells[i * r->n_prov + pi];
            for (int k = 0; k < N_C; k++)
                t[k] += c->c[k];
            unknown += c->unknown;
            late += c->late;
            cmpl += c->complaints;
        }
        int64_t all = 0;
        for (int k = 0; k < N_C; k++)
            all += t[k];
        fputs("<tr>", f);
        text_cell(f, "", r->prov[pi]);
        fprintf(f,
                "<td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
                "<td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
                "<td class=\"n\">%lld</td><td class=\"n\">%.1f%%</td>"
                "<td class=\"n\">%.1f%%</td>",
                (long long)all, (long long)t[C_DELIVERED], (long long)t[C_DEFERRED],
                (long long)t[C_BOUNCED], (long long)t[C_FAILED], (long long)t[C_BLOCKED],
                (long long)unknown, all ? 100.0 * (double)t[C_DEFERRED] / (double)all : 0.0,
                all ? 100.0 * (double)t[C_BOUNCED] / (double)all : 0.0);
        /* The complaint rate as stats gives it: complaints over delivered (stats.h). */
        fprintf(f,
                "<td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%.2f%%</td>"
                "</tr>\n",
                (long long)late, (long long)cmpl,
                t[C_DELIVERED] ? 100.0 * (double)cmpl / (double)t[C_DELIVERED] : 0.0);
    }
    if (r->n_prov == 0)
        fputs("<tr><td colspan=\"13\">Nothing recorded yet.</td></tr>\n", f);
    fputs("</table></div>\n</section>\n", f);

    /* State now. */
    fputs("<section>\n<h2>Providers now</h2>\n<div class=\"wrap\"><table>\n<tr><th>provider</th>"
          "<th class=\"n\">stage</th><th class=\"n\">sending day</th><th class=\"n\">rate</th>"
          "<th class=\"n\">sent today</th><th class=\"n\">cap today</th><th>state</th>"
          "</tr>\n",
          f);
    for (size_t i = 0; i < lanes->n; i++)
        state_row(f, &lanes->v[i], r->zone);
    if (lanes->n == 0)
        fputs("<tr><td colspan=\"7\">The plan has no provider.</td></tr>\n", f);
    fputs("</table></div>\n</section>\n", f);

    /* Charts. */
    fprintf(f, "<section>\n<h2>Attempts and rates per %s</h2>\n", r->by_hour ? "hour" : "day");
    if (r->n_per == 0)
        fputs("<p>No attempts recorded yet: nothing to chart.</p>\n", f);
    for (size_t pi = 0; r->n_per > 0 && pi < r->n_prov; pi++) {
        fputs("<h3>", f);
        report_html_escape(f, r->prov[pi]);
        fputs("</h3>\n<div class=\"charts\">\n<div class=\"chart\">\n", f);
        report_chart_attempts(f, r, pi);
        fputs("<p class=\"legend\">", f);
        for (int k = 0; k < N_C; k++)
            fprintf(f, "<span class=\"sw\" style=\"background:%s\"></span>%s",
                    report_chart_outcome_colors[k], report_chart_outcome_names[k]);
        fputs("</p>\n</div>\n<div class=\"chart\">\n", f);
        report_chart_rates(f, r, pi);
        fputs("<p class=\"legend\"><span class=\"sw\" style=\"background:#1565c0\"></span>planned: "
              "the ramp's rate for that sending day had every earlier day been clean (stage "
              "history is not stored)<span class=\"sw\" style=\"background:#6a1b9a\"></span>"
              "achieved: attempts in the busiest hour &divide; 60</p>\n</div>\n<div "
              "class=\"chart\">\n",
              f);
        report_chart_feedback(f, r, pi);
        fputs("<p class=\"legend\">", f);
        for (int k = 0; k < 2; k++)
            fprintf(f, "<span class=\"sw\" style=\"background:%s\"></span>%s",
                    report_chart_feedback_colors[k], report_chart_feedback_names[k]);
        fputs(": read from the feedback mailbox, on the day the message went out (a late bounce "
              "is also in bounced)</p>\n</div>\n</div>\n",
              f);
    }
    fputs("</section>\n", f);

    placement_section(f, p, pl);

    /* Reasons. */
    fputs("<section>\n<h2>Top deferral and bounce reasons</h2>\n<p class=\"meta\">Replies "
          "grouped by code, enhanced code and text with IP addresses, host names, IDs and "
          "numbers masked.</p>\n",
          f);
    bool any = false;
    for (size_t pi = 0; pi < r->n_prov; pi++) {
        if (r->n_reasons[pi] == 0)
            continue;
        any = true;
        fputs("<h3>", f);
        report_html_escape(f, r->prov[pi]);
        fputs("</h3>\n<div class=\"wrap\"><table>\n<tr><th class=\"n\">count</th><th>outcome</th>"
              "<th>code</th><th>reply</th></tr>\n",
              f);
        for (size_t k = 0; k < r->n_reasons[pi] && k < REPORT_TOP_REASONS; k++) {
            const struct stats_reason *x = &r->reasons[pi][k];
            fprintf(f, "<tr><td class=\"n\">%lld</td>", (long long)x->count);
            text_cell(f, "", x->outcome);
            char code[32];
            if (x->code)
                snprintf(code, sizeof code, "%d %s", x->code, x->enhanced ? x->enhanced : "");
            else
                snprintf(code, sizeof code, "no reply");
            text_cell(f, "", code);
            text_cell(f, "txt", x->text);
            fputs("</tr>\n", f);
        }
        fputs("</table></div>\n", f);
    }
    if (!any)
        fputs("<p>No deferrals, bounces or failures recorded.</p>\n", f);
    fputs("</section>\n", f);

    /* Rules and pauses. */
    fputs("<section>\n<h2>Rules and pauses</h2>\n", f);
    if (hr->n_rules == 0) {
        fputs("<p>No rule has acted.</p>\n", f);
    } else {
        fputs("<div class=\"wrap\"><table>\n<tr><th>provider</th><th>rule</th><th>action</th>"
              "<th class=\"n\">times</th><th>last</th></tr>\n",
              f);
        for (size_t i = 0; i < hr->n_rules; i++) {
            const struct stats_rule *w = &hr->rules[i];
            fputs("<tr>", f);
            text_cell(f, "", w->provider);
            text_cell(f, "", w->rule);
            text_cell(f, "", w->action);
            fprintf(f, "<td class=\"n\">%lld</td>", (long long)w->count);
            time_cell(f, w->last_ms, r->zone);
            fputs("</tr>\n", f);
        }
        fputs("</table></div>\n", f);
    }
    if (hr->n_pauses > 0) {
        fputs("<h3>Pauses and suspensions</h3>\n<div class=\"wrap\"><table>\n<tr><th>provider"
              "</th><th>action</th><th>from</th><th>until</th><th>reason</th></tr>\n",
              f);
        for (size_t i = 0; i < hr->n_pauses; i++) {
            const struct stats_pause *w = &hr->pauses[i];
            fputs("<tr>", f);
            text_cell(f, "", w->provider);
            char act[64];
            snprintf(act, sizeof act, "%s%s", w->action, w->manual ? " (manual)" : "");
            text_cell(f, "", act);
            time_cell(f, w->started_ms, r->zone);
            if (w->expires_ms)
                time_cell(f, w->expires_ms, r->zone);
            else
                fputs("<td>until resumed</td>", f);
            text_cell(f, "txt", w->reason);
            fputs("</tr>\n", f);
        }
        fputs("</table></div>\n", f);
    }
    fputs("</section>\n", f);

    /* Pre-flight. */
    fputs("<section>\n<h2>Pre-flight</h2>\n", f);
    struct store_preflight pf;
    struct err ignored;
    ipw_status s = store_preflight_latest(st, &pf, &ignored);
    if (s == IPW_OK) {
        char when[CLOCK_RFC3339_MAX];
        clock_format_rfc3339_local(pf.run_ms, r->zone, when, sizeof when);
        fprintf(f, "<p>Latest run ");
        report_html_escape(f, when);
        fprintf(f,
                ": <span class=\"%s\">%s</span></p>\n<details><summary>The check --json "
                "document</summary><pre>",
                pf.ok ? "ok" : "bad",
                pf.ok ? "every required check passed" : "a required check failed");
        report_html_escape(f, pf.json);
        fputs("</pre></details>\n", f);
        store_preflight_clear(&pf);
    } else if (s == IPW_ENOTFOUND) {
        fputs("<p>No pre-flight result recorded (run <code>ipwarm check</code>).</p>\n", f);
    } else if (*status == IPW_OK) {
        *status = s;
        *e = ignored;
    }
    fputs("</section>\n</main>\n</body>\n</html>\n", f);
}

ipw_status report_write(struct store *st, const struct plan *p, int64_t now_ms, FILE *f,
                        struct err *e)
{
    struct rep r;
    memset(&r, 0, sizeof r);
    r.p = p;
    r.zone = p->timezone ? p->timezone : "UTC";
    struct stats_query q = {.by = STATS_BY_HOUR, .zone = r.zone};
    struct stats_result hr;
    ipw_status s = stats_collect(st, &q, &hr, e);
    if (s != IPW_OK)
        return s;
    s = build(&r, st, &hr, e);
    if (s == IPW_OK) {
        r.reasons = calloc(r.n_prov ? r.n_prov : 1, sizeof *r.reasons);
        r.n_reasons = calloc(r.n_prov ? r.n_prov : 1, sizeof *r.n_reasons);
        if (!r.reasons || !r.n_reasons)
            s = err_set(e, IPW_ENOMEM, "out of memory");
    }
    if (s == IPW_OK) {
        struct reason_ctx rc = {&r, 0};
        s = store_reasons_each(st, NULL, 0, 0, reason_row, &rc, e);
        if (s == IPW_OK && rc.oom)
            s = err_set(e, IPW_ENOMEM, "out of memory");
        for (size_t i = 0; s == IPW_OK && i < r.n_prov; i++)
            stats_reasons_sort(r.reasons[i], r.n_reasons[i]);
    }
    struct lane_views lanes;
    memset(&lanes, 0, sizeof lanes);
    if (s == IPW_OK)
        s = lane_store_load(st, p, now_ms, &lanes, e);
    struct placement_result pl;
    memset(&pl, 0, sizeof pl);
    if (s == IPW_OK && p->n_seeds > 0)
        s = placement_collect(p, st, PLACEMENT_BY_DAY, 0, &pl, e);
    if (s == IPW_OK) {
        write_page(f, &r, st, &hr, &lanes, &pl, now_ms, &s, e);
        if ((fflush(f) != 0 || ferror(f)) && s == IPW_OK)
            s = err_set(e, IPW_EIO, "cannot write the report: %s", strerror(errno ? errno : EIO));
    }
    for (size_t i = 0; i < r.n_prov; i++) {
        if (r.reasons)
            stats_reasons_free(r.reasons[i], r.n_reasons[i]);
        free(r.prov[i]);
    }
    lane_views_free(&lanes);
    placement_result_free(&pl);
    free(r.reasons);
    free(r.n_reasons);
    free(r.prov);
    free(r.per);
    free(r.cells);
    stats_result_free(&hr);
    return s;
}
