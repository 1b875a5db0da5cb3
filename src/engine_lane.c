/*
 * engine_lane: the run's lanes (engine_state.h): a provider, or with an IP pool one source IP
 * at a provider, each paced on its own. Loading and saving a lane's state row, the rule actions
 * in force on it (from the store, fired by a reply, or a hand's hold), a suspension when the
 * receiver refuses the sender, the pool-wide action when every IP of a pool is throttled alike
 * (pool.h), and the ramp stage a lane's sending day begins with. The decisions are lane.c's,
 * pool.c's and ramp.c's; this file reads their inputs from the store and writes their answers.
 */
#include "ipwarm/engine.h"

#include <stdlib.h>
#include <string.h>

#include "ipwarm/backoff.h"
#include "ipwarm/lane_store.h"
#include "ipwarm/placement.h"
#include "ipwarm/pool.h"
#include "ipwarm/ramp.h"
#include "ipwarm/tz.h"

#include "engine_state.h"

/* ---- providers: loading and saving their state ---- */

/* The stored row of lane v (IPW_ENOTFOUND: none). A pool's first IP adopts the provider's row
 * kept without an IP (a campaign that had one source IP before its pool, or a state file of
 * schema version 4), and a campaign back to one IP the row of its first IP, so that a warm-up
 * goes on where it was. */
ipw_status engine_lane_row(struct engine *g, const struct engine_lane *v,
                           struct store_provider *row, struct err *e)
{
    ipw_status r = store_lane_load(g->st, v->pp->name, v->key, row, e);
    if (r != IPW_ENOTFOUND || strcmp(v->ip, g->p->source_ips[0]) != 0)
        return r;
    return store_lane_load(g->st, v->pp->name, v->key[0] ? "" : v->ip, row, e);
}

ipw_status engine_lane_save(struct engine *g, struct engine_lane *v, int64_t now, struct err *e)
{
    if (g->o->dry_run)
        return IPW_OK;
    struct store_provider row;
    lane_state_to_row(&v->ls, v->pp->name, now, &row);
    row.ip = v->key;
    ipw_status r = store_provider_save(g->st, &row, e);
    if (r == IPW_OK) {
        v->ls.stored = true;
        v->dirty = false;
        v->paused_seen_ms = v->ls.bo.paused_until_ms;
    }
    return r;
}

/* Whether an action stored or fired with ip (NULL or "": the provider's, every IP) acts on v. */
bool engine_lane_concerned(const struct engine_lane *v, const char *ip)
{
    return !ip || !ip[0] || strcmp(ip, v->ip) == 0;
}

/* Puts action b (manual: a hand's hold) in force on v at once. */
ipw_status engine_lane_push(struct engine_lane *v, const struct backoff_action *b, bool manual,
                            struct err *e)
{
    struct lane_action *n = realloc(v->actions, (v->n_actions + 1) * sizeof *n);
    if (!n)
        return err_set(e, IPW_ENOMEM, "out of memory");
    v->actions = n;
    struct lane_action *a = &v->actions[v->n_actions++];
    memset(a, 0, sizeof *a);
    a->b = *b;
    a->manual = manual;
    return IPW_OK;
}

/* Puts b in force on every lane it concerns: lane v's, or with ip "" all its provider's. */
static ipw_status engine_push(struct engine *g, const struct engine_lane *v, const char *ip,
                              const struct backoff_action *b, struct err *e)
{
    for (size_t i = 0; i < g->n_lanes; i++) {
        struct engine_lane *w = &g->lanes[i];
        if (w->index != v->index || !(w == v || !ip || !ip[0]))
            continue;
        ipw_status r = engine_lane_push(w, b, false, e);
        if (r != IPW_OK)
            return r;
    }
    return IPW_OK;
}

struct engine_rule_ctx {
    struct engine_lane *v;
    ipw_status r;
    struct err *e;
};

static int engine_rule_cb(const struct store_rule_action *a, void *arg)
{
    struct engine_rule_ctx *c = arg;
    if (!engine_lane_concerned(c->v, a->ip))
        return 0;
    struct lane_action la;
    lane_action_from_store(a, &la);
    la.b.name = "stored"; /* the store's strings die on return */
    c->r = engine_lane_push(c->v, &la.b, la.manual, c->e);
    return c->r != IPW_OK;
}

/* Reloads the lane's active actions and notices holds set or lifted by `pause`/`resume`. */
ipw_status engine_lane_refresh(struct engine *g, struct engine_lane *v, int64_t now, struct err *e)
{
    v->n_actions = 0;
    struct engine_rule_ctx c = {.v = v, .r = IPW_OK, .e = e};
    ipw_status r = store_rules_active(g->st, now, v->pp->name, engine_rule_cb, &c, e);
    if (r != IPW_OK)
        return r;
    if (c.r != IPW_OK)
        return c.r;
    struct store_provider row;
    r = store_lane_load(g->st, v->pp->name, v->key, &row, e);
    if (r == IPW_ENOTFOUND)
        return IPW_OK;
    if (r != IPW_OK)
        return r;
    if (row.paused_until_ms != v->paused_seen_ms || (row.pause_manual != 0) != v->ls.manual) {
        /* Another process (pause, resume) changed the hold: its word wins. */
        v->ls.bo.paused_until_ms = row.paused_until_ms;
        v->paused_seen_ms = row.paused_until_ms;
        v->ls.manual = row.pause_manual != 0;
        snprintf(v->ls.bo.pause_reason, sizeof v->ls.bo.pause_reason, "%s",
                 row.pause_reason ? row.pause_reason : "");
    }
    store_provider_clear(&row);
    return IPW_OK;
}

/* ---- the previous sending day's counts, for earned growth ---- */

/* Counted as status, report and metrics count them (lane_store.h). */
static ipw_status engine_day_counts(struct engine *g, struct engine_lane *v, const char *date,
                                    struct ramp_day_counts *out, struct err *e)
{
    ipw_status r =
        lane_store_ip_day_counts(g->st, g->p->timezone, v->pp->name, v->key, date, out, e);
    if (r == IPW_OK)
        r = placement_day_counts(g->p, g->st, v->pp->name, date, out, e);
    return r;
}

/* ---- suspensions, and actions on a whole pool ---- */

/* Records the suspension of a lane whose receiver refuses the sender, in force at once: the
 * lane's IP in a pool, else the provider. */
ipw_status engine_suspend(struct engine *g, struct engine_lane *v, int64_t now, int64_t ms,
                          const char *reply, struct err *e)
{
    char reason[700];
    snprintf(reason, sizeof reason, "the receiver refuses the sender: %.600s", reply);
    struct store_rule_action sa = {
        .provider = v->pp->name,
        .ip = v->key,
        .rule = ENGINE_RULE_REFUSED,
        .action = "suspend",
        .reason = reason,
        .started_ms = now,
        .expires_ms = now + ms,
    };
    if (!g->o->dry_run) {
        ipw_status r = store_rule_add(g->st, &sa, NULL, e);
        if (r != IPW_OK)
            return r;
    }
    struct backoff_action b = {.name = ENGINE_RULE_REFUSED,
                               .action = PLAN_ACTION_SUSPEND,
                               .started_ms = now,
                               .expires_ms = now + ms};
    ipw_status r = engine_lane_push(v, &b, false, e);
    if (r != IPW_OK)
        return r;
    v->refusals++;
    if (g->o->log) {
        if (v->key[0])
            fprintf(g->o->log, "ipwarm: %s from %s: suspended for %lld min: %s\n", v->pp->name,
                    v->ip, (long long)(ms / 60000), reason);
        else
            fprintf(g->o->log, "ipwarm: %s: suspended for %lld min: %s\n", v->pp->name,
                    (long long)(ms / 60000), reason);
    }
    return IPW_OK;
}

/* Whether lane w of a pool takes part on the local date today: its source.start has come. */
bool engine_lane_started(const struct engine_lane *w, const char *today)
{
    return !w->start || strcmp(today, w->start) >= 0;
}

struct engine_pool_find {
    const char *rule;
    bool found;
};

static int engine_pool_find_cb(const struct store_rule_action *a, void *arg)
{
    struct engine_pool_find *c = arg;
    if ((!a->ip || !a->ip[0]) && a->rule && strcmp(a->rule, c->rule) == 0)
        c->found = true;
    return c->found;
}

/*
 * Lane v of a pool just received a throttling reply or a rule hit of kind key (pool.h). When
 * every started IP of the pool got the same within the hour, the trouble is the provider's,
 * not an IP's (the sending domain, the content): the provider is acted on for the whole pool,
 * with a rule action without an IP that says so. b is what acts (a rule's action, or for
 * backoff a suspension until the pause v just began ends); rule names it (it outlives the run's
 * use: the plan's, or a literal).
 */
ipw_status engine_pool_check(struct engine *g, struct engine_lane *v, const char *key,
                             const char *rule, const struct backoff_action *b, const char *reply,
                             int64_t now, struct err *e)
{
    if (!v->key[0] || g->n_ips < 2)
        return IPW_OK;
    pool_hit_add(v->recent, &v->n_recent, key, now);
    struct tz_local loc;
    ipw_status r = tz_local(now, g->p->timezone, &loc, e);
    if (r != IPW_OK)
        return r;
    struct pool_lane pl[64];
    size_t n = 0;
    struct engine_lane *first = &g->lanes[v->index * g->n_ips];
    for (size_t k = 0; k < g->n_ips && n < 64; k++, n++) {
        struct engine_lane *w = first + k;
        pl[n] = (struct pool_lane){
            .hits = w->recent, .n_hits = w->n_recent, .sending = engine_lane_started(w, loc.date)};
    }
    if (!pool_every_ip(pl, n, key, now))
        return IPW_OK;
    /* Once: an action of the whole pool already in force for this trouble stands. */
    struct engine_pool_find pf = {.rule = rule};
    if (!g->o->dry_run) {
        r = store_rules_active(g->st, now, v->pp->name, engine_pool_find_cb, &pf, e);
        if (r != IPW_OK)
            return r;
    }
    if (pf.found)
        return IPW_OK;
    char reason[900];
    snprintf(reason, sizeof reason,
             "every IP of the pool (%zu) was throttled within the hour (%s): the sending domain "
             "or the content, not an IP: %.600s",
             n, key, reply);
    struct store_rule_action sa = {
        .provider = v->pp->name,
        .ip = "",
        .rule = rule,
        .action = b->action == PLAN_ACTION_THROTTLE ? "throttle" : "suspend",
        .rate_per_min = b->action == PLAN_ACTION_THROTTLE ? b->rate_per_min : 0,
        .reason = reason,
        .started_ms = now,
        .expires_ms = b->expires_ms == INT64_MAX ? 0 : b->expires_ms,
    };
    if (!g->o->dry_run) {
        r = store_rule_add(g->st, &sa, NULL, e);
        if (r != IPW_OK)
            return r;
    }
    struct backoff_action pb = *b;
    pb.name = rule;
    pb.started_ms = now;
    r = engine_push(g, v, "", &pb, e);
    if (r == IPW_OK && g->o->log)
        fprintf(g->o->log, "ipwarm: %s: %s for the whole pool: %s\n", v->pp->name, sa.action,
                reason);
    return r;
}

/* ---- the stage of the day ---- */

/* The provider's ramp state for today: its stored one, or the one its first send of today
 * will begin (growth earned by yesterday's counts). */
ipw_status engine_ramp_today(struct engine *g, struct engine_lane *v, const char *today,
                             struct ramp_state *out, enum ramp_change *why, struct err *e)
{
    *why = RAMP_SAME_DAY;
    if (strcmp(v->ls.ramp.day_date, today) == 0) {
        *out = v->ls.ramp;
        return IPW_OK;
    }
    struct ramp_day_counts prev;
    ipw_status r = engine_day_counts(g, v, v->ls.ramp.day_date, &prev, e);
    if (r != IPW_OK)
        return r;
    return ramp_begin_day(&v->pp->ramp, &v->ls.ramp, &prev, today, out, why, e);
}
