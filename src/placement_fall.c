/*
 * placement_fall: the sharp-fall throttle applied after a poll of the seeds (see
 * placement_fall.h). Which day is a fall is placement_fall()'s pure decision; this file finds
 * each gated provider's latest judged day in the store, and records a throttle rule action for
 * a fall not acted on yet, at the provider's rate now as lane_store works it out.
 */
#include "ipwarm/placement_fall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/lane_store.h"
#include "ipwarm/placement.h"
#include "ipwarm/tz.h"

/* Whether a throttle for this provider's fall on date was already recorded: its reason names
 * the date ("... on DATE (..."), so a day is acted on once, even after the throttle ends. */
struct placement_seen {
    char needle[64];
    bool found;
};

static int placement_seen_cb(const struct store_rule_action *a, void *ctx)
{
    struct placement_seen *s = ctx;
    if (a->rule && !strcmp(a->rule, PLACEMENT_RULE_FALL) && a->reason &&
        strstr(a->reason, s->needle))
        s->found = true;
    return s->found;
}

ipw_status placement_fall_act(const struct plan *p, struct store *st, int64_t now_ms, char *acted,
                              size_t size, struct err *e)
{
    if (p->n_seeds == 0)
        return IPW_OK;
    struct placement_result res;
    ipw_status s =
        placement_collect(p, st, PLACEMENT_BY_DAY, now_ms - PLACEMENT_FALL_WINDOW_MS, &res, e);
    if (s != IPW_OK)
        return s;
    struct lane_views lanes;
    bool loaded = false;
    memset(&lanes, 0, sizeof lanes);
    for (size_t i = 0; s == IPW_OK && i < p->n_providers; i++) {
        const struct plan_provider *pp = &p->providers[i];
        if (!pp->ramp.inbox_gate)
            continue;
        /* The latest day with enough evidence: a good day after a bad one clears it. */
        const struct placement_row *day = NULL;
        for (size_t k = 0; k < res.n; k++) {
            const struct placement_row *row = &res.rows[k];
            if (strcmp(row->provider, pp->name) != 0)
                continue;
            int64_t placed = row->inbox + row->junk + row->missing;
            if (placed > 0 && placed >= p->placement.fall_min_placed)
                day = row; /* rows are by date, oldest first */
        }
        if (!day)
            continue;
        int64_t placed = day->inbox + day->junk + day->missing;
        if (!placement_fall(&pp->ramp, &p->placement, day->inbox, placed, NULL))
            continue;
        struct placement_seen seen = {.found = false};
        snprintf(seen.needle, sizeof seen.needle, " on %.16s (", day->period);
        int64_t midnight = 0;
        s = tz_local_midnight_utc(p->timezone, day->period, &midnight, e);
        if (s == IPW_OK)
            s = store_rules_each(st, pp->name, midnight, 0, placement_seen_cb, &seen, e);
        if (s != IPW_OK || seen.found)
            continue;
        if (!loaded) {
            s = lane_store_load(st, p, now_ms, &lanes, e);
            loaded = true;
            if (s != IPW_OK)
                continue;
        }
        const struct lane_view *v = lane_views_find(&lanes, pp->name);
        double rate_now = v ? v->now.rate_per_min : pp->ramp.start_per_min;
        char reason[512];
        placement_fall_reason(reason, sizeof reason, day->period, day->inbox, placed,
                              pp->ramp.inbox_above_pct);
        struct store_rule_action a = {
            .provider = pp->name,
            .rule = PLACEMENT_RULE_FALL,
            .action = "throttle",
            .rate_per_min = placement_fall_rate(rate_now, &p->backoff),
            .reason = reason,
            .started_ms = now_ms,
            .expires_ms = now_ms + p->placement.fall_for_ms,
        };
        s = store_rule_add(st, &a, NULL, e);
        if (s == IPW_OK && acted) {
            size_t len = strlen(acted);
            if (len + strlen(pp->name) + 2 < size)
                snprintf(acted + len, size - len, "%s%s", len ? "," : "", pp->name);
        }
    }
    if (loaded)
        lane_views_free(&lanes);
    placement_result_free(&res);
    return s;
}
