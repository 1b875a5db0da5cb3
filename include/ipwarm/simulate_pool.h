/*
 * simulate_pool: `simulate` for a pool of source IPs (plan.md "Pools"). Each (IP, provider)
 * pair climbs its own ramp, as if the IP were warmed alone, so each IP is projected on its own
 * with ramp_simulate(); an IP named in source.start sends nothing before its date and starts
 * there at the first stage, while the others go on. The provider's day is then the pool's sum:
 * what the provider receives from all the IPs that send that day.
 *
 * Pure arithmetic on the plan, like ramp_simulate(): no clock, no store.
 */
#ifndef IPWARM_SIMULATE_POOL_H
#define IPWARM_SIMULATE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ipwarm/err.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/ramp.h"

/* One IP at one provider on one projected day. */
struct simulate_pool_ip {
    bool joined;         /* the day is on or after the IP's start (always, without one) */
    int stage;           /* its own stage that day (0 before it joins) */
    double rate_per_min; /* its own rate (0 before it joins) */
    int64_t cap;         /* its daily cap, -1 = none (0 before it joins) */
    int64_t planned;     /* what it sends that day if every day is clean */
    bool at_max;
};

/* Whether p is projected per IP: a pool (several source IPs) or an IP with a start date. */
bool simulate_pool_active(const struct plan *p);

/*
 * Projects every IP of p at provider `provider` over the `days` projected days of
 * provider_days (its single-ramp projection from start_date by ramp_simulate(), which gives
 * the dates), into out[ip * days + d]; an IP whose start date is after start_date is projected
 * from that date. Then makes provider_days[d] the pool's: rate and planned summed over the IPs
 * that send that day, cap summed (-1 when one of them has none), stage the highest, at_max when
 * every IP of the pool has joined and is at its max; a day on which no IP sends yet plans 0 at
 * rate 0.
 * Returns IPW_OK, IPW_ENOMEM, or what ramp_simulate() returns.
 */
ipw_status simulate_pool_project(const struct plan *p, size_t provider, const char *start_date,
                                 int days, struct ramp_sim_day *provider_days,
                                 struct simulate_pool_ip *out, struct err *e);

/* The "ips" array of provider `provider` on day d (cli.md: simulate): [{"ip", "rate_per_min",
 * "cap", "planned", "joined", "stage", "start"}]. ips is out of simulate_pool_project(). */
void simulate_pool_json(struct json *j, const struct plan *p, const struct simulate_pool_ip *ips,
                        int d, int days);

/* The table's lines under a provider's row on day d: one per IP, indented, or "joins DATE". */
void simulate_pool_human(FILE *f, const struct plan *p, const struct simulate_pool_ip *ips, int d,
                         int days);

/* One sentence before the table: the pool, and the IPs that join later. */
void simulate_pool_human_intro(FILE *f, const struct plan *p);

#endif
