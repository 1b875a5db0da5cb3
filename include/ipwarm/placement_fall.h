/*
 * placement_fall: acting on a sharp fall in inbox placement (placement.h decides whether a day
 * is one; this applies it to the store). Apart from placement.c because it asks lane_store for
 * each provider's rate now, and lane_store asks placement for the day's counts.
 */
#ifndef IPWARM_PLACEMENT_FALL_H
#define IPWARM_PLACEMENT_FALL_H

#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"

/*
 * Applies the sharp-fall throttle at now_ms: for each provider of p with inbox_rate_above, the
 * latest local day (within PLACEMENT_FALL_WINDOW_MS) with at least placement.fall.min_placed
 * seed copies placed is judged by placement_fall(); a fall not acted on yet for that day gets a
 * throttle rule action (PLACEMENT_RULE_FALL, rate placement_fall_rate() of the provider's rate
 * now as lane_store_load() works it out, for placement.fall.for) with the reason above; `run`
 * picks it up like any other. acted (size bytes, may be NULL) gets the providers acted on,
 * comma-separated. A later day that is not a fall lifts nothing: the throttle runs its course.
 * Returns IPW_OK or a store status.
 */
ipw_status placement_fall_act(const struct plan *p, struct store *st, int64_t now_ms, char *acted,
                              size_t size, struct err *e);

#endif
