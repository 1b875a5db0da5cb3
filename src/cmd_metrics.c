/*
 * cmd_metrics: `ipwarm metrics [-o FILE]` writes the current counters and provider state in the
 * Prometheus text exposition format (version 0.0.4: "# HELP" and "# TYPE" lines, then one
 * sample a line, label values escaped as \\, \" and \n).
 *
 * It is meant to run from cron next to `run --once`, writing into node_exporter's textfile
 * collector directory. The collector reads whatever is in the file when it is scraped, so the
 * file is replaced atomically (afile.h): the text goes to a new temporary file beside it (named
 * .FILE.XXXXXX, which the collector ignores, as it reads only *.prom), is flushed to disk, and
 * is renamed over FILE. Counters come from the
 * store's hourly summary rows (their sum over all time), so the cost does not grow with the
 * attempts. Samples carry no time stamps: the collector's scrape time is the right one.
 *
 * The provider gauges (one sample per plan provider) come from lane_store_load(), as status and
 * report take them: what each provider is doing now (ipwarm_provider_state), why is in status.
 *
 * With seeds (placement.h): the seed copies placed per provider and folder since the start
 * (ipwarm_placement_total), those not placed yet, and the inbox rate of each provider's latest
 * day with copies placed, as status shows it (ipwarm_inbox_rate, a ratio).
 *
 * With an IP pool each IP is a lane of its own: the gauges have one sample per provider and IP,
 * labelled provider and ip (sum by provider for the provider's figures).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/afile.h"
#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/lane.h"
#include "ipwarm/lane_store.h"
#include "ipwarm/placement.h"
#include "ipwarm/plan.h"
#include "ipwarm/stats.h"
#include "ipwarm/store.h"

static const char *const OUTCOMES[] = {"delivered", "deferred", "bounced", "failed",
                                       "expired",   "unknown",  "blocked"};
#define N_OUTCOMES 7
static const char *const RCPT_STATES[] = {"pending", "done",    "suppressed", "expired",
                                          "held",    "removed", "skipped"};

/* The counters of what the feedback mailbox said, by provider (struct totals.feedback). */
static const struct {
    const char *name, *help;
} FEEDBACK_COUNTERS[2] = {
    {"ipwarm_late_bounces_total",
     "Bounces read from the feedback mailbox for attempts that had a 250 (counted in "
     "ipwarm_attempts_total as bounced), by provider."},
    {"ipwarm_complaints_total", "Complaint reports (ARF) read from the feedback mailbox, by the "
                                "provider of the attempt they answer."},
};

struct totals {
    char *provider;
    int64_t n[N_OUTCOMES];
    /* read from the feedback mailbox: late bounces (after a 250) and complaints, in the order
     * of FEEDBACK_COUNTERS */
    int64_t feedback[2];
};

struct metrics_ctx {
    struct totals *t;
    size_t n;
    int oom;
};

static int add_summary(const struct store_summary_row *r, void *arg)
{
    struct metrics_ctx *m = arg;
    struct totals *t = NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->t[i].provider, r->provider) == 0)
            t = &m->t[i];
    if (!t) {
        struct totals *nt = realloc(m->t, (m->n + 1) * sizeof *nt);
        if (!nt) {
            m->oom = 1;
            return 1;
        }
        m->t = nt;
        t = &nt[m->n];
        memset(t, 0, sizeof *t);
        t->provider = strdup(r->provider);
        if (!t->provider) {
            m->oom = 1;
            return 1;
        }
        m->n++;
    }
    int64_t v[N_OUTCOMES] = {r->delivered, r->deferred, r->bounced, r->failed,
                             r->expired,   r->unknown,  r->blocked};
    for (int i = 0; i < N_OUTCOMES; i++)
        t->n[i] += v[i];
    t->feedback[0] += r->late_bounces;
    t->feedback[1] += r->complaints;
    return 0;
}

/* A label value: backslash, double quote and line feed escaped. */
static void label(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample of a counter labelled by provider alone. */
static void metrics_provider_sample(FILE *f, const char *name, const char *provider, int64_t v)
{
    fprintf(f, "%s{provider=\"", name);
    label(f, provider);
    fprintf(f, "\"} %lld\n", (long long)v);
}

/* Held, suspended or paused: what ipwarm_provider_paused has always meant. */
static bool lane_waits(const struct lane_now *n)
{
    return n->activity == LANE_HELD || n->activity == LANE_SUSPENDED || n->activity == LANE_PAUSED;
}

/* A pool's lane: its ip label, after the provider's (the closing quote is the caller's). */
static void prov_ip(FILE *f, const struct lane_view *v)
{
    if (!v->ip)
        return;
    fputs("\",ip=\"", f);
    label(f, v->ip);
}

/* The lanes a gauge has samples for: the provider, or with a pool each of its IPs. */
static const struct lane_view *prov_lanes(const struct lane_view *v, size_t *n)
{
    *n = v->ips ? v->n_ips : 1;
    return v->ips ? v->ips : v;
}

/* One sample of gauge which for lane v; false when the lane has none (no cap, no reply). */
static bool prov_sample(FILE *f, int which, const struct lane_view *v)
{
    const struct lane_now *n = &v->now;
    if (which == 5 && n->cap_today < 0)
        return false;
    if (which == 7 && !v->state.last_reply_ms)
        return false;
    static const char *const names[] = {
        "ipwarm_provider_stage",
        "ipwarm_provider_sending_day",
        "ipwarm_provider_rate_per_min",
        "ipwarm_provider_sent_today",
        "ipwarm_provider_paused",
        "ipwarm_provider_cap_today",
        "ipwarm_provider_paused_until_seconds",
        "ipwarm_provider_last_reply_timestamp_seconds",
        "ipwarm_provider_state_until_seconds",
    };
    fprintf(f, "%s{provider=\"", names[which]);
    label(f, v->pp->name);
    prov_ip(f, v);
    fputs("\"} ", f);
    bool waits = lane_waits(n);
    switch (which) {
    case 0:
        fprintf(f, "%d\n", v->state.ramp.stage);
        break;
    case 1:
        fprintf(f, "%d\n", v->state.ramp.sending_day);
        break;
    case 2:
        fprintf(f, "%.6g\n", n->rate_per_min);
        break;
    case 3:
        fprintf(f, "%lld\n", (long long)n->sent_today);
        break;
    case 4:
        fprintf(f, "%d\n", waits ? 1 : 0);
        break;
    case 5:
        fprintf(f, "%lld\n", (long long)n->cap_today);
        break;
    case 6:
        fprintf(f, "%.3f\n", waits ? (double)n->until_ms / 1000.0 : 0.0);
        break;
    case 7:
        fprintf(f, "%.3f\n", (double)v->state.last_reply_ms / 1000.0);
        break;
    default:
        fprintf(f, "%.3f\n", (double)n->until_ms / 1000.0);
        break;
    }
    return true;
}

/* Sample which of every lane: each provider's, or each IP's of a pool. */
static void metrics_lanes_sample(FILE *f, const struct lane_views *lanes, int which)
{
    for (size_t i = 0; i < lanes->n; i++) {
        size_t nl;
        const struct lane_view *l = prov_lanes(&lanes->v[i], &nl);
        for (size_t x = 0; x < nl; x++)
            prov_sample(f, which, &l[x]);
    }
}

/* One mailbox's last poll (store_checkpoint_each). */
static int poll_sample(const char *mailbox, int64_t uidvalidity, int64_t last_uid,
                       int64_t polled_ms, void *arg)
{
    (void)uidvalidity;
    (void)last_uid;
    FILE *f = arg;
    fputs("ipwarm_feedback_poll_timestamp_seconds{mailbox=\"", f);
    label(f, mailbox);
    fprintf(f, "\"} %.3f\n", (double)polled_ms / 1000.0);
    return 0;
}

/* The seed placement series; nothing without seeds. */
static ipw_status write_placement(FILE *f, struct store *st, const struct plan *p, struct err *e)
{
    if (p->n_seeds == 0)
        return IPW_OK;
    struct placement_result all, days;
    ipw_status r = placement_collect(p, st, PLACEMENT_BY_PROVIDER, 0, &all, e);
    if (r != IPW_OK)
        return r;
    r = placement_collect(p, st, PLACEMENT_BY_DAY, 0, &days, e);
    if (r != IPW_OK) {
        placement_result_free(&all);
        return r;
    }
    static const char *const folders[] = {"inbox", "junk", "missing"};
    head(f, "ipwarm_placement_total", "counter",
         "Seed copies placed, by provider and where they landed (inbox, junk, or missing: in "
         "neither folder 24 h after they were sent).");
    for (size_t i = 0; i < all.n; i++) {
        const struct placement_row *row = &all.rows[i];
        int64_t v[3] = {row->inbox, row->junk, row->missing};
        for (int k = 0; k < 3; k++) {
            fputs("ipwarm_placement_total{provider=\"", f);
            label(f, row->provider);
            fprintf(f, "\",folder=\"%s\"} %lld\n", folders[k], (long long)v[k]);
        }
    }
    head(f, "ipwarm_placement_pending", "gauge",
         "Seed copies delivered and not placed yet (not found in the seed's folders so far), by "
         "provider.");
    for (size_t i = 0; i < all.n; i++) {
        const struct placement_row *row = &all.rows[i];
        fputs("ipwarm_placement_pending{provider=\"", f);
        label(f, row->provider);
        fprintf(f, "\"} %lld\n", (long long)(row->sent - row->inbox - row->junk - row->missing));
    }
    head(f, "ipwarm_inbox_rate", "gauge",
         "Inbox over placed seed copies (0 to 1) on the provider's latest local day with copies "
         "placed, as status shows it.");
    for (size_t i = 0; i < all.n; i++) {
        double rate = -1;
        for (size_t k = 0; k < days.n; k++) /* by date: the last one wins */
            if (!strcmp(days.rows[k].provider, all.rows[i].provider) &&
                placement_inbox_rate(&days.rows[k]) >= 0)
                rate = placement_inbox_rate(&days.rows[k]);
        if (rate < 0)
            continue;
        fputs("ipwarm_inbox_rate{provider=\"", f);
        label(f, all.rows[i].provider);
        fprintf(f, "\"} %.6g\n", rate / 100.0);
    }
    placement_result_free(&all);
    placement_result_free(&days);
    return IPW_OK;
}

/* Writes the whole exposition to f. */
static ipw_status write_metrics(FILE *f, struct store *st, const struct plan *p, int64_t now_ms,
                                struct err *e)
{
    struct metrics_ctx m = {0};
    ipw_status r = store_summary_each(st, NULL, 0, 0, add_summary, &m, e);
    if (r == IPW_OK && m.oom)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    if (r == IPW_OK) {
        head(f, "ipwarm_info", "gauge", "The campaign and its time zone (always 1).");
        fputs("ipwarm_info{campaign=\"", f);
        label(f, p->campaign);
        fputs("\",timezone=\"", f);
        label(f, p->timezone ? p->timezone : "UTC");
        fputs("\"} 1\n", f);
        head(f, "ipwarm_attempts_total", "counter",
             "SMTP attempts with a recorded outcome, by provider and outcome (dry runs excluded).");
        for (size_t i = 0; i < m.n; i++)
            for (int k = 0; k < N_OUTCOMES; k++) {
                fputs("ipwarm_attempts_total{provider=\"", f);
                label(f, m.t[i].provider);
                fprintf(f, "\",outcome=\"%s\"} %lld\n", OUTCOMES[k], (long long)m.t[i].n[k]);
            }
        for (int k = 0; k < 2; k++) {
            head(f, FEEDBACK_COUNTERS[k].name, "counter", FEEDBACK_COUNTERS[k].help);
            for (size_t i = 0; i < m.n; i++)
                metrics_provider_sample(f, FEEDBACK_COUNTERS[k].name, m.t[i].provider,
                                        m.t[i].feedback[k]);
        }
    }
    static const struct {
        const char *name, *help;
    } GAUGES[] = {
        {"ipwarm_provider_stage", "The provider's ramp stage (0 = the first day's)."},
        {"ipwarm_provider_sending_day", "Sending days so far (days on which mail went out)."},
        {"ipwarm_provider_rate_per_min", "The provider's rate now, messages a minute."},
        {"ipwarm_provider_sent_today", "Messages sent on today's local date."},
        {"ipwarm_provider_paused",
         "1 while the provider is held, suspended or paused (ipwarm_provider_state says which)."},
        {"ipwarm_provider_cap_today", "Today's daily cap (absent when there is none)."},
        {"ipwarm_provider_paused_until_seconds",
         "End of the hold, suspension or pause as a Unix time (0 when none, or no end)."},
        {"ipwarm_provider_last_reply_timestamp_seconds",
         "When the provider last replied, as a Unix time."},
    };
    struct lane_views lanes;
    if (r == IPW_OK)
        r = lane_store_load(st, p, now_ms, &lanes, e);
    else
        memset(&lanes, 0, sizeof lanes);
    for (int k = 0; r == IPW_OK && k < 8; k++) {
        head(f, GAUGES[k].name, "gauge", GAUGES[k].help);
        metrics_lanes_sample(f, &lanes, k);
    }
    /* What each provider is doing now (lane.h): 1 for its state, 0 for the others, so that a
     * query can select one state without knowing the others. */
    if (r == IPW_OK) {
        head(f, "ipwarm_provider_state", "gauge",
             "1 for what the provider is doing now (sending, held, suspended, paused, capped, "
             "closed), 0 for the rest.");
        for (size_t i = 0; i < lanes.n; i++) {
            size_t nl;
            const struct lane_view *l = prov_lanes(&lanes.v[i], &nl);
            for (size_t x = 0; x < nl; x++)
                for (int a = LANE_SENDING; a <= LANE_CLOSED; a++) {
                    fputs("ipwarm_provider_state{provider=\"", f);
                    label(f, l[x].pp->name);
                    prov_ip(f, &l[x]);
                    fprintf(f, "\",state=\"%s\"} %d\n", lane_activity_name((enum lane_activity)a),
                            l[x].now.activity == (enum lane_activity)a ? 1 : 0);
                }
        }
        head(f, "ipwarm_provider_state_until_seconds", "gauge",
             "When the provider's state ends as a Unix time (0 while sending, or when it has "
             "no known end, such as a hold until resumed).");
        metrics_lanes_sample(f, &lanes, 8);
    }
    lane_views_free(&lanes);
    if (r == IPW_OK)
        head(f, "ipwarm_recipients", "gauge", "Recipients in the queue, by state.");
    for (size_t k = 0; r == IPW_OK && k < sizeof RCPT_STATES / sizeof RCPT_STATES[0]; k++) {
        int64_t n = 0;
        r = store_recipients_count(st, RCPT_STATES[k], &n, e);
        if (r == IPW_OK)
            fprintf(f, "ipwarm_recipients{state=\"%s\"} %lld\n", RCPT_STATES[k], (long long)n);
    }
    if (r == IPW_OK) {
        head(f, "ipwarm_feedback_poll_timestamp_seconds", "gauge",
             "When each mailbox (the feedback mailbox, seeds) was last polled, as a Unix time.");
        r = store_checkpoint_each(st, poll_sample, f, e);
    }
    if (r == IPW_OK)
        r = write_placement(f, st, p, e);
    for (size_t i = 0; i < m.n; i++)
        free(m.t[i].provider);
    free(m.t);
    return r;
}

ipw_status cmd_metrics(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct plan *p = NULL;
    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r != IPW_OK)
        return r;
    struct store *st = NULL;
    r = stats_store_open(cli_state_path(ctx, p), &st, NULL, e);
    if (r == IPW_OK)
        r = cli_store_campaign(p, st, e);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = NULL;
    if (r == IPW_OK) {
        mem = open_memstream(&buf, &len);
        if (!mem)
            r = err_set(e, IPW_ENOMEM, "out of memory");
    }
    if (r == IPW_OK)
        r = write_metrics(mem, st, p, clock_now_ms(), e);
    if (mem && fclose(mem) != 0 && r == IPW_OK)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    const char *out = cli_args_get(args, "output");
    if (r == IPW_OK) {
        if (out) {
            struct afile af;
            r = afile_open(&af, out, 0644, 0, e);
            if (r == IPW_OK) {
                fwrite(buf, 1, len, af.f);
                r = afile_commit(&af, e);
            }
        } else {
            fwrite(buf, 1, len, ctx->out);
            if (fflush(ctx->out) != 0 || ferror(ctx->out))
                r = err_set(e, IPW_EIO, "metrics: cannot write the output");
        }
    }
    free(buf);
    store_close(st);
    plan_free(p);
    return r;
}
