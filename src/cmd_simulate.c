/*
 * cmd_simulate: `ipwarm simulate [--days N]` projects the ramp day by day per provider.
 *
 * The projection is ramp_simulate() (ramp.c), the same stage, rate, cap and pacing arithmetic
 * the engine applies, on the assumption that every sending day is clean and recipients never
 * run out. It starts at sending day 1 on today's local date in the plan's zone (the --now
 * clock), or the first date after it whose schedule opens a window; so it answers "what does
 * this plan do from a fresh start". When the state file has a provider already under way, its
 * current sending day and stage are shown beside the projection rather than folded into it:
 * the past days were not necessarily clean. The schedule is plan-wide, so day N has the same
 * date for every provider, and the day's total is the sum of the providers' planned messages.
 * With a pool of source IPs (simulate_pool.h) each IP is projected on its own at each provider,
 * an IP named in source.start from its date, and the provider's day is the pool's sum; what
 * each IP has reached is read from its own lane in the state file (the store keys a pool's
 * state by provider and IP), so an IP already under way is shown at its own sending day and
 * stage, and the provider at its most advanced IP's.
 *
 * A provider gated on inbox placement (advance_if.inbox_rate_above) whose last sending day
 * sent seed copies gets a sentence on what that evidence does to its next sending day (grows,
 * holds, and why: placement_gate_why), as the engine will decide it (ramp_begin_day over the
 * same counts): the projection assumes clean days, the sentence says whether the last one was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/json.h"
#include "ipwarm/lane_store.h"
#include "ipwarm/placement.h"
#include "ipwarm/plan.h"
#include "ipwarm/ramp.h"
#include "ipwarm/simulate_pool.h"
#include "ipwarm/stats.h"
#include "ipwarm/store.h"
#include "ipwarm/tz.h"

#define SIMULATE_DEFAULT_DAYS 30

/* What one IP of a pool has reached at a provider (sending_day 0: not started). */
struct sim_ip_current {
    int sending_day;
    int stage;
};

/* What a provider has reached so far, from the state file (sending_day 0: not started). */
struct sim_current {
    int sending_day;
    int stage;
    char placement[512]; /* placement_gate_why() of its next sending day, or "" */
    bool placement_holds;
    /* A pool: each IP's own lane (n_source_ips entries, the pool's order), else NULL; the
     * provider's sending_day and stage above are then the most advanced IP's. */
    struct sim_ip_current *ips;
};

/* Reads each IP's own lane of provider i into cur->ips, as the engine keys it: by (provider,
 * IP), the pool's first IP adopting the provider's row kept without an IP (a campaign that had
 * one source IP before its pool). An IP already under way is so shown at its own stage, not at
 * the provider's. */
static ipw_status simulate_pool_current(const struct plan *p, struct store *st, size_t i,
                                        struct sim_current *cur, struct err *e)
{
    const char *name = p->providers[i].name;
    for (size_t k = 0; k < p->n_source_ips; k++) {
        struct store_provider sp;
        ipw_status r = store_lane_load(st, name, p->source_ips[k], &sp, e);
        if (r == IPW_ENOTFOUND && k == 0)
            r = store_lane_load(st, name, "", &sp, e);
        if (r == IPW_ENOTFOUND) {
            err_clear(e);
            continue;
        }
        if (r != IPW_OK)
            return r;
        cur->ips[k].sending_day = sp.sending_day;
        cur->ips[k].stage = sp.stage;
        store_provider_clear(&sp);
        if (cur->ips[k].sending_day > cur->sending_day ||
            (cur->ips[k].sending_day == cur->sending_day && cur->ips[k].stage > cur->stage)) {
            cur->sending_day = cur->ips[k].sending_day;
            cur->stage = cur->ips[k].stage;
        }
    }
    return IPW_OK;
}

/* What the provider's seed placement does to its next sending day (today when its last
 * sending day was before today, else the day after it): cur->placement, "" when placement
 * does not judge it. */
static ipw_status simulate_placement(const struct plan *p, struct store *st, size_t i,
                                     const struct store_provider *sp, const char *today,
                                     struct sim_current *cur, struct err *e)
{
    const struct plan_provider *pp = &p->providers[i];
    if (!pp->ramp.inbox_gate || !sp->sending_day_date || !sp->sending_day_date[0])
        return IPW_OK;
    struct ramp_state prev;
    memset(&prev, 0, sizeof prev);
    prev.stage = sp->stage;
    prev.sending_day = sp->sending_day;
    snprintf(prev.day_date, sizeof prev.day_date, "%s", sp->sending_day_date);
    prev.rate_per_min = ramp_rate_for_stage(&pp->ramp, sp->stage);
    struct ramp_day_counts c;
    memset(&c, 0, sizeof c);
    ipw_status r = lane_store_day_counts(st, p->timezone, pp->name, prev.day_date, &c, e);
    if (r == IPW_OK)
        r = placement_day_counts(p, st, pp->name, prev.day_date, &c, e);
    char next[TZ_DATE_MAX];
    snprintf(next, sizeof next, "%s", today);
    if (r == IPW_OK && strcmp(prev.day_date, today) >= 0)
        r = tz_next_day(prev.day_date, next, e);
    struct ramp_state ns;
    enum ramp_change why = RAMP_HOLD;
    if (r == IPW_OK)
        r = ramp_begin_day(&pp->ramp, &prev, &c, next, &ns, &why, e);
    if (r == IPW_OK)
        cur->placement_holds = placement_gate_why(&pp->ramp, &c, prev.day_date, (int)why, ns.stage,
                                                  cur->placement, sizeof cur->placement);
    return r;
}

/* The first projected day (1-based) at the ramp's max, or 0 if none within the days. */
static int first_max_day(const struct ramp_sim_day *d, int days)
{
    for (int i = 0; i < days; i++)
        if (d[i].at_max)
            return i + 1;
    return 0;
}

/* The pool's projection of provider i (days * IPs entries), or NULL without a pool. */
static const struct simulate_pool_ip *pool_of(const struct simulate_pool_ip *pool,
                                              const struct plan *p, size_t i, int days)
{
    return pool ? pool + i * p->n_source_ips * (size_t)days : NULL;
}

static void write_json(FILE *f, const struct plan *p, const char *start, int days,
                       const struct ramp_sim_day *sim, const struct sim_current *cur,
                       const struct simulate_pool_ip *pool)
{
    struct json j;
    json_init(&j, f, true);
    json_object_begin(&j);
    json_kv_string(&j, "start", start);
    json_kv_string(&j, "timezone", p->timezone ? p->timezone : "UTC");
    json_key(&j, "days");
    json_array_begin(&j);
    for (int d = 0; d < days; d++) {
        json_object_begin(&j);
        json_kv_int(&j, "day", d + 1);
        json_kv_string(&j, "date", sim[d].date);
        json_key(&j, "providers");
        json_array_begin(&j);
        int64_t total = 0;
        for (size_t i = 0; i < p->n_providers; i++) {
            const struct ramp_sim_day *s = &sim[i * (size_t)days + (size_t)d];
            json_object_begin(&j);
            json_kv_string(&j, "name", p->providers[i].name);
            json_kv_double(&j, "rate_per_min", s->rate_per_min);
            json_kv_int_or_null(&j, "cap", s->cap, s->cap >= 0);
            json_kv_int(&j, "planned", s->planned);
            json_kv_int(&j, "stage", s->stage);
            json_kv_bool(&j, "at_max", s->at_max);
            if (pool)
                simulate_pool_json(&j, p, pool_of(pool, p, i, days), d, days);
            json_object_end(&j);
            total += s->planned;
        }
        json_array_end(&j);
        json_kv_int(&j, "total", total);
        json_object_end(&j);
    }
    json_array_end(&j);
    json_key(&j, "providers");
    json_array_begin(&j);
    for (size_t i = 0; i < p->n_providers; i++) {
        const struct plan_ramp *r = &p->providers[i].ramp;
        const struct ramp_sim_day *s = &sim[i * (size_t)days];
        int md = first_max_day(s, days);
        json_object_begin(&j);
        json_kv_string(&j, "name", p->providers[i].name);
        json_kv_double(&j, "start_per_min", r->start_per_min);
        json_kv_double(&j, "max_per_min", r->max_per_min);
        json_kv_int(&j, "max_day", ramp_max_day(r));
        json_kv_string(&j, "max_date", md ? s[md - 1].date : NULL);
        json_kv_int(&j, "current_sending_day", cur[i].sending_day);
        json_kv_int(&j, "current_stage", cur[i].stage);
        if (cur[i].ips) {
            /* Each IP of a pool where it is now: its own sending day and stage. */
            json_key(&j, "current_ips");
            json_array_begin(&j);
            for (size_t k = 0; k < p->n_source_ips; k++) {
                json_object_begin(&j);
                json_kv_string(&j, "ip", p->source_ips[k]);
                json_kv_int(&j, "current_sending_day", cur[i].ips[k].sending_day);
                json_kv_int(&j, "current_stage", cur[i].ips[k].stage);
                json_object_end(&j);
            }
            json_array_end(&j);
        }
        /* Why seed placement lets the next sending day grow or holds it (null: not judged). */
        if (cur[i].placement[0]) {
            json_key(&j, "placement");
            json_object_begin(&j);
            json_kv_bool(&j, "holds", cur[i].placement_holds);
            json_kv_string(&j, "reason", cur[i].placement);
            json_object_end(&j);
        } else {
            json_kv_null(&j, "placement");
        }
        json_object_end(&j);
    }
    json_array_end(&j);
    json_object_end(&j);
    struct err ignored;
    (void)json_finish(&j, &ignored);
}

static void write_human(FILE *f, const struct plan *p, const char *start, int days,
                        const struct ramp_sim_day *sim, const struct sim_current *cur,
                        const struct simulate_pool_ip *pool)
{
    fprintf(f, "Projected ramp from %s (%s), %d sending day%s, every day clean.\n\n", start,
            p->timezone ? p->timezone : "UTC", days, days == 1 ? "" : "s");
    if (pool)
        simulate_pool_human_intro(f, p);
    fprintf(f, "%-14s %9s %9s  %s\n", "PROVIDER", "START/MIN", "MAX/MIN", "REACHES MAX");
    for (size_t i = 0; i < p->n_providers; i++) {
        const struct plan_ramp *r = &p->providers[i].ramp;
        const struct ramp_sim_day *s = &sim[i * (size_t)days];
        int md = first_max_day(s, days);
        char when[64];
        if (md)
            snprintf(when, sizeof when, "day %d (%s)", md, s[md - 1].date);
        else
            snprintf(when, sizeof when, "day %d, after this projection", ramp_max_day(r));
        fprintf(f, "%-14s %9.1f %9.1f  %s", p->providers[i].name, r->start_per_min, r->max_per_min,
                when);
        if (cur[i].sending_day > 0)
            fprintf(f, "; now on day %d, stage %d", cur[i].sending_day, cur[i].stage);
        fputc('\n', f);
        /* A pool already under way: where each IP is, under its provider. */
        for (size_t k = 0; cur[i].ips && cur[i].sending_day > 0 && k < p->n_source_ips; k++) {
            fprintf(f, "  %-12s ", p->source_ips[k]);
            if (cur[i].ips[k].sending_day > 0)
                fprintf(f, "now on day %d, stage %d\n", cur[i].ips[k].sending_day,
                        cur[i].ips[k].stage);
            else
                fputs("not started\n", f);
        }
    }
    for (size_t i = 0; i < p->n_providers; i++)
        if (cur[i].placement[0])
            fprintf(f, "placement: %s %s\n", p->providers[i].name, cur[i].placement);
    fprintf(f, "\n%4s  %-10s  %-14s %8s %8s %10s\n", "DAY", "DATE", "PROVIDER", "RATE/MIN", "CAP",
            "PLANNED");
    for (int d = 0; d < days; d++) {
        int64_t total = 0;
        for (size_t i = 0; i < p->n_providers; i++) {
            const struct ramp_sim_day *s = &sim[i * (size_t)days + (size_t)d];
            char cap[24] = "-";
            if (s->cap >= 0)
                snprintf(cap, sizeof cap, "%lld", (long long)s->cap);
            /* "*" marks the day a provider first reaches its max. */
            bool first = s->at_max && (d == 0 || !sim[i * (size_t)days + (size_t)d - 1].at_max);
            if (i == 0)
                fprintf(f, "%4d  %-10s  ", d + 1, s->date);
            else
                fprintf(f, "%4s  %-10s  ", "", "");
            fprintf(f, "%-14s %8.1f %8s %10lld%s\n", p->providers[i].name, s->rate_per_min, cap,
                    (long long)s->planned, first ? " *max" : "");
            if (pool)
                simulate_pool_human(f, p, pool_of(pool, p, i, days), d, days);
            total += s->planned;
        }
        fprintf(f, "%4s  %-10s  %-14s %8s %8s %10lld\n", "", "", "total", "", "", (long long)total);
    }
}

ipw_status cmd_simulate(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    int days = (int)cli_args_int(args, "days", SIMULATE_DEFAULT_DAYS);
    struct plan *p = NULL;
    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r != IPW_OK)
        return r;
    const char *zone = p->timezone ? p->timezone : "UTC";
    struct tz_local now;
    r = tz_local(clock_now_ms(), zone, &now, e);
    struct ramp_sim_day *sim = NULL;
    struct sim_current *cur = NULL;
    struct simulate_pool_ip *pool = NULL;
    struct store *st = NULL;
    if (r == IPW_OK) {
        sim = calloc(p->n_providers * (size_t)days, sizeof *sim);
        cur = calloc(p->n_providers, sizeof *cur);
        if (!sim || !cur)
            r = err_set(e, IPW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; r == IPW_OK && i < p->n_providers; i++)
        r = ramp_simulate(p, i, now.date, days, &sim[i * (size_t)days], e);
    if (r == IPW_OK && simulate_pool_active(p) && days > 0) {
        pool = calloc(p->n_providers * p->n_source_ips * (size_t)days, sizeof *pool);
        if (!pool)
            r = err_set(e, IPW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; r == IPW_OK && pool && i < p->n_providers; i++)
        r = simulate_pool_project(p, i, now.date, days, &sim[i * (size_t)days],
                                  pool + i * p->n_source_ips * (size_t)days, e);
    if (r == IPW_OK)
        r = cli_store_read(ctx, p, &st, e);
    bool per_ip = lane_store_is_pool(p);
    for (size_t i = 0; r == IPW_OK && i < p->n_providers; i++) {
        struct store_provider sp;
        ipw_status lr = store_provider_load(st, p->providers[i].name, &sp, e);
        if (lr == IPW_OK) {
            cur[i].sending_day = sp.sending_day;
            cur[i].stage = sp.stage;
            r = simulate_placement(p, st, i, &sp, now.date, &cur[i], e);
            store_provider_clear(&sp);
        } else if (lr != IPW_ENOTFOUND) {
            r = lr;
        } else {
            err_clear(e);
        }
        if (r == IPW_OK && per_ip) {
            /* A pool's lanes are its IPs': the provider's row (if any) is the first IP's. */
            cur[i].sending_day = 0;
            cur[i].stage = 0;
            cur[i].ips = calloc(p->n_source_ips, sizeof *cur[i].ips);
            r = cur[i].ips ? simulate_pool_current(p, st, i, &cur[i], e)
                           : err_set(e, IPW_ENOMEM, "out of memory");
        }
    }
    if (r == IPW_OK) {
        if (ctx->json)
            write_json(ctx->out, p, now.date, days, sim, cur, pool);
        else
            write_human(ctx->out, p, now.date, days, sim, cur, pool);
        if (fflush(ctx->out) != 0 || ferror(ctx->out))
            r = err_set(e, IPW_EIO, "simulate: cannot write the output");
    }
    store_close(st);
    for (size_t i = 0; cur && i < p->n_providers; i++)
        free(cur[i].ips);
    free(sim);
    free(cur);
    free(pool);
    plan_free(p);
    return r;
}
