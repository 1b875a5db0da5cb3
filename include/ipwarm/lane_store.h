/*
 * lane_store: every plan provider's lane as the store has it, worked out at one instant.
 *
 * status, report and metrics show what each provider is doing now; they all call
 * lane_store_load() and print what it returns, so that they cannot disagree. It reads what the
 * engine reads (the provider's row, its active rule actions, the previous sending day's counts
 * for the ramp's earned growth) and hands it to the pure lane_now() (lane.h) with the schedule's
 * frame at now (pace_frame_at). The ramp state for today comes from ramp_begin_day() over
 * lane_store_day_counts(), as the engine computes it when a new local date begins.
 *
 * pause and resume change one thing in a lane, the hold on the provider's row: they read the
 * row with lane_store_row_load() and write the hold with lane_store_row_pause(); resume lists
 * the actions it ends with lane_store_actions_load(), the copy a lane holds.
 */
#ifndef IPWARM_LANE_STORE_H
#define IPWARM_LANE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/lane.h"
#include "ipwarm/pace.h"
#include "ipwarm/plan.h"
#include "ipwarm/ramp.h"
#include "ipwarm/store.h"

/*
 * One provider's lane: what is stored, the actions in force, and what it is doing now. With an
 * IP pool (source.ips in direct mode) each IP is a lane of its own, in ips[0..n_ips) (the
 * pool's order), and the provider's view sums them up: it sends while any IP sends, its rate
 * and today's count and cap are the sums of the IPs' (cap -1 when an IP has none), its stage
 * and sending day the most advanced IP's, its last reply the latest; when no IP sends, its
 * activity, end and reason are those of the IP that sends again first. actions then holds
 * every action in force at the provider, the whole pool's and each IP's (store_rule_action.ip).
 */
struct lane_view {
    const struct plan_provider *pp;
    const char *ip;        /* an IP's lane of a pool: its address (into the plan); else NULL */
    struct lane_view *ips; /* a pool: one lane per IP; else NULL */
    size_t n_ips;
    struct lane_state state;           /* as stored (state.stored: the store has a row) */
    char *last_reply;                  /* whole (state.last_reply is cut); NULL = none */
    struct store_rule_action *actions; /* active at now, oldest first; strings owned here */
    size_t n_actions;
    struct lane_action *lane_actions; /* the same, as lane_now() weighs them */
    struct ramp_state today;          /* the ramp state for the frame's local date */
    struct lane_now now;
};

struct lane_views {
    struct lane_view *v; /* one per plan provider, in the plan's order */
    size_t n;
    struct pace_frame frame; /* the schedule at now */
};

/*
 * Fills out with every provider of p at now_ms from st (NULL: no state file yet, every lane is
 * fresh). Returns IPW_OK; IPW_ENOMEM; IPW_ECONFIG for an unknown zone; or a store status. out
 * needs lane_views_free() either way.
 */
ipw_status lane_store_load(struct store *st, const struct plan *p, int64_t now_ms,
                           struct lane_views *out, struct err *e);
void lane_views_free(struct lane_views *v);

/* Whether the plan's source IPs are a pool warmed IP by IP (several IPs in direct mode). */
bool lane_store_is_pool(const struct plan *p);

/* The lane of the provider called name, or NULL. */
const struct lane_view *lane_views_find(const struct lane_views *v, const char *name);

/*
 * The counts of provider on the local date (zone) for the ramp's earned growth: attempts, and
 * as not clean the deferred, failed and blocked ones, and the bounced ones. A date of "" (no
 * sending day yet) counts nothing. Returns IPW_OK, IPW_ECONFIG, IPW_EUSAGE or a store status.
 */
ipw_status lane_store_day_counts(struct store *st, const char *zone, const char *provider,
                                 const char *date, struct ramp_day_counts *out, struct err *e);

/*
 * The same counts for one source IP of a pool at provider (ip NULL or "": the whole provider,
 * lane_store_day_counts). Attempts, deferrals and bounces are the IP's own; complaints are read
 * per provider, so the IP gets the provider's share in proportion to its deliveries.
 */
ipw_status lane_store_ip_day_counts(struct store *st, const char *zone, const char *provider,
                                    const char *ip, const char *date, struct ramp_day_counts *out,
                                    struct err *e);

/*
 * Copies the rule actions active at now_ms at provider (the whole provider's and each IP's) into
 * *out, oldest first, *n of them, as a lane_view holds them (strings owned, provider NULL).
 * Returns IPW_OK, IPW_ENOMEM or a store status (then *out is NULL). Free with
 * lane_store_actions_free().
 */
ipw_status lane_store_actions_load(struct store *st, int64_t now_ms, const char *provider,
                                   struct store_rule_action **out, size_t *n, struct err *e);
void lane_store_actions_free(struct store_rule_action *a, size_t n);

/*
 * Loads provider pp's row (its only lane) into *row and sets *stored. A provider never sent to
 * has no row: *row is then the state a first sending day starts from (the rate of the ramp's
 * first stage; row->name points into pp) and *stored is false. Returns IPW_OK or a store
 * status. row needs store_provider_clear() when *stored.
 */
ipw_status lane_store_row_load(struct store *st, const struct plan_provider *pp,
                               struct store_provider *row, bool *stored, struct err *e);
/*
 * Saves row with its hold set: paused until until_ms (0: none, or until resumed when manual),
 * by hand or not, for reason (NULL: none; the caller's string, row keeps its own), updated at
 * now_ms. Returns IPW_OK or a store status.
 */
ipw_status lane_store_row_pause(struct store *st, struct store_provider *row, int64_t until_ms,
                                bool manual, const char *reason, int64_t now_ms, struct err *e);

#endif
