/*
 * plan_placement: the plan's `placement` section, how a sharp fall in inbox placement acts.
 *
 *     placement:
 *       fall: {min_placed: 5, for: 24h}
 *
 * A day whose seed copies reached the inbox at under half of the provider's
 * ramp.advance_if.inbox_rate_above, once at least min_placed of them are placed (inbox, junk or
 * missing), throttles the provider for `for` (placement.h decides, placement_fall_act acts).
 * Without inbox_rate_above there is no threshold and nothing to fall below: the section is then
 * accepted and has no effect. Defaults are set with the plan's others (plan.c).
 */
#include "plan_placement.h"

void plan_placement_walk(struct plan_ctx *c, const plan_node *v)
{
    static const char *const keys[] = {"fall", NULL};
    static const char *const fkeys[] = {"min_placed", "for", NULL};
    struct plan_placement *pl = &c->p->placement;
    if (!plan_mapping(c, v, "placement", "a mapping with fall", keys))
        return;
    const plan_node *f = plan_get(v, "fall"), *x;
    if (!f || !plan_mapping(c, f, "placement.fall", "a mapping with min_placed and for", fkeys))
        return;
    if ((x = plan_get(f, "min_placed")))
        plan_int(c, x, "placement.fall.min_placed", "a whole number from 1 to 1000000", 1, 1000000,
                 &pl->fall_min_placed);
    if ((x = plan_get(f, "for")))
        plan_duration(c, x, "placement.fall.for", true, &pl->fall_for_ms);
}
