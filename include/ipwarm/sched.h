/*
 * sched: which lane sends next, and when: the decision the engine's loop takes at every turn.
 *
 * Each lane (a provider, or an IP at a provider) says through lane_now() whether it may send
 * and at what rate; pace_pick() spaces each one's messages evenly and interleaves them under
 * the schedule's windows. sched_next() ties the two together, so that the loop itself only
 * gathers inputs (queues, today's stage) and applies the answer, and a test can replay the
 * decision without the loop. Pure: no clock, no I/O.
 */
#ifndef IPWARM_SCHED_H
#define IPWARM_SCHED_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/lane.h"
#include "ipwarm/pace.h"
#include "ipwarm/plan.h"

/* One lane as the scheduler sees it. */
struct sched_lane {
    const struct lane_state *state;
    const struct ramp_state *today; /* its ramp for the frame's date, or NULL (lane_now) */
    const struct plan_ramp *ramp;
    const struct lane_action *actions;
    size_t n_actions;
    bool has_work; /* a recipient is due for it */
    bool busy;     /* all its connections are in use */
};

struct sched_pick {
    int lane;            /* the lane to send to, or -1: none in this frame */
    int64_t at_ms;       /* lane >= 0: the planned time of its message (send when it has come);
                            -1: when to look again */
    double rate_per_min; /* the rate its sequence is committed at (pace_seq_commit) */
};

/*
 * Picks the lane whose next message is due first among lanes[0..n) under frame fr (ties go to
 * the lower index: the plan's order). nows (may be NULL) receives each lane's lane_now().
 */
struct sched_pick sched_next(const struct sched_lane *lanes, size_t n, const struct plan_backoff *b,
                             const struct pace_frame *fr, struct lane_now *nows);

#endif
