/*
 * sched: which lane sends next, and when (see sched.h).
 */
#include "ipwarm/sched.h"

#include <stdlib.h>

struct sched_pick sched_next(const struct sched_lane *lanes, size_t n, const struct plan_backoff *b,
                             const struct pace_frame *fr, struct lane_now *nows)
{
    struct sched_pick pick = {.lane = -1, .at_ms = INT64_MAX, .rate_per_min = 0};
    struct pace_slot stack[32] = {0}; /* zeroed: gcc -O3 cannot tell that n == 0 reads none */
    struct pace_slot *slots = n <= 32 ? stack : calloc(n, sizeof *slots);
    if (!slots)
        return pick;
    for (size_t i = 0; i < n; i++) {
        const struct sched_lane *l = &lanes[i];
        struct lane_now now;
        lane_now(l->state, l->today, l->ramp, b, l->actions, l->n_actions, fr, &now);
        if (nows)
            nows[i] = now;
        struct pace_slot *s = &slots[i];
        s->rate_per_min = now.rate_per_min;
        s->seq = l->state->seq;
        /* Held, suspended or paused: not due before its end (a hold without one: never). The
         * cap and the windows are pace_pick's own to weigh. */
        bool stopped = now.activity == LANE_HELD || now.activity == LANE_SUSPENDED ||
                       now.activity == LANE_PAUSED;
        s->paused_until_ms = !stopped ? 0 : now.until_ms ? now.until_ms : INT64_MAX;
        s->sent_today = now.sent_today;
        s->cap = now.cap_today;
        s->idle = !l->has_work || l->busy;
    }
    struct pace_pick pk = pace_pick(slots, n, fr);
    pick.lane = pk.slot;
    pick.at_ms = pk.at_ms;
    if (pk.slot >= 0)
        pick.rate_per_min = slots[pk.slot].rate_per_min;
    if (slots != stack)
        free(slots);
    return pick;
}
