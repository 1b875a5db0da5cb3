/*
 * lane_store: every plan provider's lane as the store has it (see lane_store.h).
 *
 * Reads only: the provider rows, the active rule actions and the hourly summary rows of the
 * previous sending day. The decisions are lane_now()'s and ramp_begin_day()'s; this file only
 * gathers their inputs, so that the commands that show a lane and the engine that drives it
 * weigh the same facts.
 */
#include "ipwarm/lane_store.h"

#include <stdlib.h>
#include <string.h>

#include "ipwarm/placement.h"
#include "ipwarm/tz.h"

struct lane_store_day_ctx {
    struct ramp_day_counts c;
};

static int lane_store_day_cb(const struct store_summary_row *row, void *arg)
{
    struct lane_store_day_ctx *c = arg;
    c->c.attempts += row->attempts;
    /* A day the receivers refused the sender was not a clean day either. */
    c->c.deferred += row->deferred + row->failed + row->blocked;
    c->c.bounced += row->bounced;
    c->c.delivered += row->delivered;
    c->c.complaints += row->complaints;
    return 0;
}

ipw_status lane_store_day_counts(struct store *st, const char *zone, const char *provider,
                                 const char *date, struct ramp_day_counts *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (!st || !date || !date[0])
        return IPW_OK;
    int64_t from, to;
    char next[TZ_DATE_MAX];
    ipw_status r = tz_local_midnight_utc(zone, date, &from, e);
    if (r == IPW_OK)
        r = tz_next_day(date, next, e);
    if (r == IPW_OK)
        r = tz_local_midnight_utc(zone, next, &to, e);
    if (r != IPW_OK)
        return r;
    struct lane_store_day_ctx c;
    memset(&c, 0, sizeof c);
    r = store_summary_each(st, provider, from, to, lane_store_day_cb, &c, e);
    *out = c.c;
    return r;
}

ipw_status lane_store_ip_day_counts(struct store *st, const char *zone, const char *provider,
                                    const char *ip, const char *date, struct ramp_day_counts *out,
                                    struct err *e)
{
    ipw_status r = lane_store_day_counts(st, zone, provider, date, out, e);
    if (r != IPW_OK || !ip || !ip[0] || !st || !date || !date[0])
        return r;
    int64_t from, to;
    char next[TZ_DATE_MAX];
    r = tz_local_midnight_utc(zone, date, &from, e);
    if (r == IPW_OK)
        r = tz_next_day(date, next, e);
    if (r == IPW_OK)
        r = tz_local_midnight_utc(zone, next, &to, e);
    struct store_attempt_counts c;
    if (r == IPW_OK)
        r = store_attempt_counts(st, provider, ip, from, to, &c, e);
    if (r != IPW_OK)
        return r;
    int64_t complaints = out->delivered > 0 ? out->complaints * c.delivered / out->delivered : 0;
    out->attempts = c.attempts;
    out->delivered = c.delivered;
    out->deferred = c.deferred;
    out->bounced = c.bounced;
    out->complaints = complaints;
    return IPW_OK;
}

static char *lane_store_strdup(const char *s, bool *nomem)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *nomem = true;
    return d;
}

struct lane_store_collect {
    struct lane_view *v;
    bool nomem;
};

/* store_rules_active() callback: keeps a copy of each action (its strings die on return). */
static int lane_store_collect_action(const struct store_rule_action *a, void *arg)
{
    struct lane_store_collect *c = arg;
    struct lane_view *v = c->v;
    struct store_rule_action *grown = realloc(v->actions, (v->n_actions + 1) * sizeof *grown);
    if (!grown) {
        c->nomem = true;
        return 1;
    }
    v->actions = grown;
    struct store_rule_action *x = &v->actions[v->n_actions++];
    *x = *a;
    x->provider = NULL; /* the lane's own name; not kept */
    x->rule = lane_store_strdup(a->rule, &c->nomem);
    x->action = lane_store_strdup(a->action, &c->nomem);
    x->reason = lane_store_strdup(a->reason, &c->nomem);
    return c->nomem ? 1 : 0;
}

/* Loads lane v at fr from st (may be NULL). */
static ipw_status lane_store_load_one(struct store *st, const struct plan *p,
                                      const struct pace_frame *fr, struct lane_view *v,
                                      struct err *e)
{
    const struct plan_ramp *ramp = &v->pp->ramp;
    lane_state_from_row(&v->state, ramp, NULL);
    if (st) {
        struct lane_store_collect c = {.v = v};
        ipw_status r =
            store_rules_active(st, fr->now_ms, v->pp->name, lane_store_collect_action, &c, e);
        if (r == IPW_OK && c.nomem)
            r = err_set(e, IPW_ENOMEM, "out of memory");
        if (r != IPW_OK)
            return r;
        struct store_provider row;
        r = store_provider_load(st, v->pp->name, &row, e);
        if (r == IPW_OK) {
            lane_state_from_row(&v->state, ramp, &row);
            bool nomem = false;
            v->last_reply = lane_store_strdup(row.last_reply, &nomem);
            store_provider_clear(&row);
            if (nomem)
                return err_set(e, IPW_ENOMEM, "out of memory");
        } else if (r == IPW_ENOTFOUND) {
            err_clear(e);
        } else {
            return r;
        }
    }
    if (v->n_actions > 0) {
        v->lane_actions = calloc(v->n_actions, sizeof *v->lane_actions);
        if (!v->lane_actions)
            return err_set(e, IPW_ENOMEM, "out of memory");
        for (size_t i = 0; i < v->n_actions; i++)
            lane_action_from_store(&v->actions[i], &v->lane_actions[i]);
    }

    /* Today's stage: the stored day's when it is today, else the one today's first message
     * begins, grown (or not) by the previous sending day's counts, as the engine does. */
    if (strcmp(v->state.ramp.day_date, fr->today) == 0) {
        v->today = v->state.ramp;
    } else {
        struct ramp_day_counts prev;
        enum ramp_change why;
        ipw_status r =
            lane_store_day_counts(st, p->timezone, v->pp->name, v->state.ramp.day_date, &prev, e);
        if (r == IPW_OK)
            r = placement_day_counts(p, st, v->pp->name, v->state.ramp.day_date, &prev, e);
        if (r == IPW_OK)
            r = ramp_begin_day(ramp, &v->state.ramp, &prev, fr->today, &v->today, &why, e);
        if (r != IPW_OK)
            return r;
    }
    lane_now(&v->state, &v->today, ramp, &p->backoff, v->lane_actions, v->n_actions, fr, &v->now);
    return IPW_OK;
}

ipw_status lane_store_load(struct store *st, const struct plan *p, int64_t now_ms,
                           struct lane_views *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    ipw_status r = pace_frame_at(&p->schedule, p->timezone, now_ms, &out->frame, e);
    if (r != IPW_OK)
        return r;
    out->v = calloc(p->n_providers ? p->n_providers : 1, sizeof *out->v);
    if (!out->v)
        return err_set(e, IPW_ENOMEM, "out of memory");
    out->n = p->n_providers;
    for (size_t i = 0; i < out->n; i++)
        out->v[i].pp = &p->providers[i];
    for (size_t i = 0; i < out->n && r == IPW_OK; i++)
        r = lane_store_load_one(st, p, &out->frame, &out->v[i], e);
    return r;
}

void lane_views_free(struct lane_views *v)
{
    for (size_t i = 0; v->v && i < v->n; i++) {
        struct lane_view *x = &v->v[i];
        for (size_t k = 0; k < x->n_actions; k++) {
            free((char *)x->actions[k].rule);
            free((char *)x->actions[k].action);
            free((char *)x->actions[k].reason);
        }
        free(x->actions);
        free(x->lane_actions);
        free(x->last_reply);
    }
    free(v->v);
    memset(v, 0, sizeof *v);
}

const struct lane_view *lane_views_find(const struct lane_views *v, const char *name)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->v[i].pp->name, name) == 0)
            return &v->v[i];
    return NULL;
}
