/*
 * lane_store: every plan provider's lane as the store has it (see lane_store.h).
 *
 * Reads the provider rows, the active rule actions and the hourly summary rows of the
 * previous sending day; writes only the hold on a provider's row, for pause and resume. The
 * decisions are lane_now()'s and ramp_begin_day()'s; this file only gathers their inputs, so that
 * the commands that show a lane and the engine that drives it weigh the same facts.
 */
#include "ipwarm/lane_store.h"

#include <stdio.h>
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
    struct store_rule_action *v;
    size_t n;
    const char *ip; /* an IP's lane: only the actions on it and on the whole provider */
    bool nomem;
};

/* store_rules_active() callback: keeps a copy of each action (its strings die on return). */
static int lane_store_collect_action(const struct store_rule_action *a, void *arg)
{
    struct lane_store_collect *c = arg;
    if (c->ip && a->ip && a->ip[0] && strcmp(a->ip, c->ip) != 0)
        return 0;
    struct store_rule_action *grown = realloc(c->v, (c->n + 1) * sizeof *grown);
    if (!grown) {
        c->nomem = true;
        return 1;
    }
    c->v = grown;
    struct store_rule_action *x = &c->v[c->n++];
    *x = *a;
    x->provider = NULL; /* the lane's own name; not kept */
    x->rule = lane_store_strdup(a->rule, &c->nomem);
    x->action = lane_store_strdup(a->action, &c->nomem);
    x->reason = lane_store_strdup(a->reason, &c->nomem);
    x->ip = a->ip && a->ip[0] ? lane_store_strdup(a->ip, &c->nomem) : NULL;
    return c->nomem ? 1 : 0;
}

/* The actions active at now_ms at provider: those of IP ip and of the whole provider, or all of
 * them when ip is NULL. *out holds what was copied even on failure. */
static ipw_status lane_store_collect(struct store *st, int64_t now_ms, const char *provider,
                                     const char *ip, struct store_rule_action **out, size_t *n,
                                     struct err *e)
{
    struct lane_store_collect c = {.ip = ip};
    ipw_status r = store_rules_active(st, now_ms, provider, lane_store_collect_action, &c, e);
    if (r == IPW_OK && c.nomem)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    *out = c.v;
    *n = c.n;
    return r;
}

/* Copies into v->actions the actions active at now_ms at v's provider: those of IP ip and of
 * the whole provider, or all of them when ip is NULL. */
static ipw_status lane_store_actions(struct store *st, int64_t now_ms, struct lane_view *v,
                                     const char *ip, struct err *e)
{
    return lane_store_collect(st, now_ms, v->pp->name, ip, &v->actions, &v->n_actions, e);
}

ipw_status lane_store_actions_load(struct store *st, int64_t now_ms, const char *provider,
                                   struct store_rule_action **out, size_t *n, struct err *e)
{
    ipw_status r = lane_store_collect(st, now_ms, provider, NULL, out, n, e);
    if (r != IPW_OK) {
        lane_store_actions_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return r;
}

void lane_store_actions_free(struct store_rule_action *a, size_t n)
{
    for (size_t k = 0; a && k < n; k++) {
        free((char *)a[k].rule);
        free((char *)a[k].action);
        free((char *)a[k].reason);
        free((char *)a[k].ip);
    }
    free(a);
}

bool lane_store_is_pool(const struct plan *p)
{
    return p->mode == PLAN_DIRECT && p->n_source_ips > 1;
}

/* Loads lane v at fr from st (may be NULL). key is its row's ip in the store ("" for the
 * provider's only lane); a pool's first IP falls back to the row without an IP, as the engine
 * adopts it. */
static ipw_status lane_store_load_one(struct store *st, const struct plan *p,
                                      const struct pace_frame *fr, struct lane_view *v,
                                      const char *key, struct err *e)
{
    const struct plan_ramp *ramp = &v->pp->ramp;
    lane_state_from_row(&v->state, ramp, NULL);
    if (st) {
        ipw_status r = lane_store_actions(st, fr->now_ms, v, v->ip, e);
        if (r != IPW_OK)
            return r;
        struct store_provider row;
        r = store_lane_load(st, v->pp->name, key, &row, e);
        if (r == IPW_ENOTFOUND && key[0] && strcmp(key, p->source_ips[0]) == 0)
            r = store_lane_load(st, v->pp->name, "", &row, e);
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
        ipw_status r = lane_store_ip_day_counts(st, p->timezone, v->pp->name, key,
                                                v->state.ramp.day_date, &prev, e);
        if (r == IPW_OK)
            r = placement_day_counts(p, st, v->pp->name, v->state.ramp.day_date, &prev, e);
        if (r == IPW_OK)
            r = ramp_begin_day(ramp, &v->state.ramp, &prev, fr->today, &v->today, &why, e);
        if (r != IPW_OK)
            return r;
    }
    lane_now(&v->state, &v->today, ramp, &p->backoff, v->lane_actions, v->n_actions, fr, &v->now);
    const char *start = v->ip ? plan_source_start(p, v->ip) : NULL;
    if (start && strcmp(fr->today, start) < 0) {
        /* Not in the pool yet (source.start): it sends nothing before that local date. */
        int64_t at = 0;
        ipw_status r = tz_local_midnight_utc(p->timezone, start, &at, e);
        if (r != IPW_OK)
            return r;
        v->now.activity = LANE_CLOSED;
        v->now.until_ms = at;
        v->now.rate_per_min = 0;
        snprintf(v->now.reason, sizeof v->now.reason, "joins the pool on %s (source.start)", start);
    }
    return IPW_OK;
}

/* When a lane that does not send sends again: its end, or never (0: no end known). */
static int64_t lane_store_until(const struct lane_now *n)
{
    return n->until_ms > 0 ? n->until_ms : INT64_MAX;
}

/* The provider's view of a pool, summed up from its IPs' (see struct lane_view). */
static ipw_status lane_store_load_pool(struct store *st, const struct plan *p,
                                       const struct pace_frame *fr, struct lane_view *v,
                                       struct err *e)
{
    v->n_ips = p->n_source_ips;
    v->ips = calloc(v->n_ips, sizeof *v->ips);
    if (!v->ips)
        return err_set(e, IPW_ENOMEM, "out of memory");
    for (size_t k = 0; k < v->n_ips; k++) {
        struct lane_view *x = &v->ips[k];
        x->pp = v->pp;
        x->ip = p->source_ips[k];
        ipw_status r = lane_store_load_one(st, p, fr, x, x->ip, e);
        if (r != IPW_OK)
            return r;
    }
    /* Every action at the provider, for the list status shows. */
    if (st) {
        ipw_status r = lane_store_actions(st, fr->now_ms, v, NULL, e);
        if (r != IPW_OK)
            return r;
    }
    lane_state_from_row(&v->state, &v->pp->ramp, NULL);
    struct lane_now *n = &v->now;
    memset(n, 0, sizeof *n);
    const struct lane_view *first = NULL; /* the IP that sends again first, when none sends */
    bool sending = false;
    n->cap_today = 0;
    for (size_t k = 0; k < v->n_ips; k++) {
        const struct lane_view *x = &v->ips[k];
        if (x->state.stored)
            v->state.stored = true;
        if (x->state.ramp.stage > v->state.ramp.stage ||
            (x->state.ramp.stage == v->state.ramp.stage &&
             x->state.ramp.sending_day > v->state.ramp.sending_day))
            v->state.ramp = x->state.ramp;
        if (x->today.stage > v->today.stage ||
            (x->today.stage == v->today.stage && x->today.sending_day > v->today.sending_day))
            v->today = x->today;
        if (x->now.stage > n->stage ||
            (x->now.stage == n->stage && x->now.sending_day > n->sending_day)) {
            n->stage = x->now.stage;
            n->sending_day = x->now.sending_day;
            n->planned_per_min = x->now.planned_per_min;
        }
        if (x->last_reply && x->state.last_reply_ms >= v->state.last_reply_ms) {
            free(v->last_reply);
            v->last_reply = strdup(x->last_reply);
            if (!v->last_reply)
                return err_set(e, IPW_ENOMEM, "out of memory");
            v->state.last_reply_ms = x->state.last_reply_ms;
            snprintf(v->state.last_reply, sizeof v->state.last_reply, "%s", x->state.last_reply);
        }
        n->rate_per_min += x->now.rate_per_min;
        n->sent_today += x->now.sent_today;
        if (n->cap_today >= 0)
            n->cap_today = x->now.cap_today < 0 ? -1 : n->cap_today + x->now.cap_today;
        n->throttled = n->throttled || x->now.throttled;
        if (x->now.activity == LANE_SENDING)
            sending = true;
        else if (!first || lane_store_until(&x->now) < lane_store_until(&first->now))
            first = x;
    }
    if (!sending && first) {
        n->activity = first->now.activity;
        n->until_ms = first->now.until_ms;
        snprintf(n->reason, sizeof n->reason, "%s", first->now.reason);
    }
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
        r = lane_store_is_pool(p) ? lane_store_load_pool(st, p, &out->frame, &out->v[i], e)
                                  : lane_store_load_one(st, p, &out->frame, &out->v[i], "", e);
    return r;
}

static void lane_view_free(struct lane_view *x)
{
    lane_store_actions_free(x->actions, x->n_actions);
    free(x->lane_actions);
    free(x->last_reply);
    for (size_t k = 0; x->ips && k < x->n_ips; k++)
        lane_view_free(&x->ips[k]);
    free(x->ips);
}

void lane_views_free(struct lane_views *v)
{
    for (size_t i = 0; v->v && i < v->n; i++)
        lane_view_free(&v->v[i]);
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

ipw_status lane_store_row_load(struct store *st, const struct plan_provider *pp,
                               struct store_provider *row, bool *stored, struct err *e)
{
    memset(row, 0, sizeof *row);
    *stored = false;
    ipw_status r = store_provider_load(st, pp->name, row, e);
    if (r == IPW_OK) {
        *stored = true;
    } else if (r == IPW_ENOTFOUND) {
        /* A provider never sent to: the state a first sending day starts from. */
        err_clear(e);
        memset(row, 0, sizeof *row);
        row->name = pp->name;
        row->rate_per_min = ramp_rate_for_stage(&pp->ramp, 0);
        r = IPW_OK;
    }
    return r;
}

ipw_status lane_store_row_pause(struct store *st, struct store_provider *row, int64_t until_ms,
                                bool manual, const char *reason, int64_t now_ms, struct err *e)
{
    const char *old_reason = row->pause_reason;
    row->paused_until_ms = until_ms;
    row->pause_manual = manual ? 1 : 0;
    row->pause_reason = reason;
    row->updated_ms = now_ms;
    ipw_status r = store_provider_save(st, row, e);
    row->pause_reason = old_reason; /* the row's own string, freed with it */
    return r;
}
