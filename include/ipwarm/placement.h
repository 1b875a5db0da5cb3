/*
 * placement: where the copies sent to seed mailboxes landed (inbox, junk, or missing).
 *
 * A seed is a mailbox the operator owns at a provider (plan `seeds`). A copy sent to it is a
 * delivered attempt to its address; every message ipwarm sends carries X-Ipwarm-Id with its
 * Message-ID's contents (engine_attempt.c), so placement_poll() finds each copy not placed yet by
 * that header with UID SEARCH HEADER (RFC 3501 6.4.4) in the seed's inbox folder, then in its junk
 * folder, both opened with EXAMINE: the mailbox is never changed (no flag set, nothing moved).
 * A copy found is recorded with its folder and the time; one in neither folder 24 h after it
 * was sent is missing. Provider tabs (Gmail Promotions) are labels on the inbox, so they count
 * as inbox.
 *
 * The junk folder: the seed's folders.junk, else the provider's usual name (Gmail
 * "[Gmail]/Spam", Outlook "Junk Email", Yahoo "Bulk"), else the folder marked \Junk (RFC 6154).
 */
#ifndef IPWARM_PLACEMENT_H
#define IPWARM_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"

/* After this long unfound in either folder, a copy is missing. */
#define PLACEMENT_MISSING_AFTER_MS (24 * 3600 * 1000LL)

/* What one poll of one seed found. */
struct placement_seed_result {
    char name[512];               /* the seed's address */
    int64_t inbox, junk, missing; /* copies placed by this poll */
    int64_t pending;              /* copies still unknown after it */
    char error[1024];             /* why the seed could not be read, "" when it was */
};

/* The usual junk folder of a provider by its plan name (gmail, microsoft/outlook/hotmail,
 * yahoo/aol), or NULL. Pure. */
const char *placement_junk_default(const char *provider);

/*
 * Polls every seed of p at now_ms (results: p->n_seeds entries, filled in plan order). A seed
 * that cannot be read (password, login, connection) has its error set and the others are still
 * read. Returns IPW_OK when every seed was read; IPW_EUNAVAIL when one could not be (e names
 * the first); a store status (then it stops).
 */
ipw_status placement_poll(const struct plan *p, struct store *st, int64_t now_ms,
                          int64_t session_timeout_ms, struct placement_seed_result *results,
                          struct err *e);

/* Whether address is one of p's seeds (case-insensitive). */
int placement_is_seed(const struct plan *p, const char *address);

/* ---- the figures ---- */

enum placement_by { PLACEMENT_BY_DAY = 0, PLACEMENT_BY_PROVIDER, PLACEMENT_BY_IP };

/* One row of `placement`: the copies sent to seeds in a period (a local date with --by day,
 * "all" otherwise) for a provider (and source IP with --by ip). inbox + junk + missing <=
 * sent: the rest is not known yet. */
struct placement_row {
    char period[16];
    char provider[64];
    char ip[64]; /* "" unless by ip */
    int64_t sent, inbox, junk, missing;
};

struct placement_result {
    struct placement_row *rows; /* by period, then provider, then IP */
    size_t n;
};

/* Inbox rate of a row in percent: inbox over the copies placed (inbox, junk, missing); -1
 * when none is placed yet. Pure. */
double placement_inbox_rate(const struct placement_row *r);

/*
 * Counts the copies sent to p's seeds at or after since_ms (0: all), in p's time zone. Returns
 * IPW_OK (free out with placement_result_free); a store status; IPW_ENOMEM.
 */
ipw_status placement_collect(const struct plan *p, struct store *st, enum placement_by by,
                             int64_t since_ms, struct placement_result *out, struct err *e);
void placement_result_free(struct placement_result *r);

/*
 * Adds to out (seed_sent, seed_placed, seed_inbox) the copies sent to p's seeds through
 * provider on the local date (p's zone), for the inbox_rate_above gate (ramp.h).
 */
struct ramp_day_counts;
ipw_status placement_day_counts(const struct plan *p, struct store *st, const char *provider,
                                const char *date, struct ramp_day_counts *out, struct err *e);

/* A percentage as people write it: "20", "66.7" (one decimal, none when whole). Pure. */
void placement_pct(double v, char *out, size_t size);

/*
 * What placement did to a provider's next sending day, in words, for `simulate`: counts are
 * the provider's last sending day (date) with its seed figures (ramp_day_counts seed_*), and
 * change and stage what ramp_begin_day() made of them. Writes e.g. "holds at stage 2: inbox
 * rate 40% on 2026-12-04 (4 of 10 seed copies) not above inbox_rate_above 70%", "grows to
 * stage 1: inbox rate 100% on 2026-12-01 (2 of 2 seed copies) above inbox_rate_above 60%" or
 * "holds at stage 0: placement on 2026-12-01 not all known yet (1 of 3 seed copies placed)".
 * Returns true when placement is what holds the stage (not known yet, or the rate is not
 * above), false when it passes; out is "" (and false) when placement does not judge the day
 * (no inbox_rate_above, no seed copy that day). Pure.
 */
struct ramp_day_counts;
bool placement_gate_why(const struct plan_ramp *r, const struct ramp_day_counts *counts,
                        const char *date, int change, int stage, char *out, size_t size);

/* ---- the sharp fall ---- */

/* The rule name of the throttle a sharp fall records (store rule_actions). */
#define PLACEMENT_RULE_FALL "inbox-rate"
/* How far back placement_fall_act() looks: a day's copies are all placed at most 24 h after
 * the last was sent, so three days cover the latest day with its full figures. */
#define PLACEMENT_FALL_WINDOW_MS (3 * 24 * 3600 * 1000LL)

/*
 * Whether a day whose seed copies through one provider were placed `placed` times (inbox, junk
 * or missing), `inbox` of them in the inbox, is a sharp fall under ramp r and placement pl: r
 * has the inbox_rate_above gate, at least pl->fall_min_placed copies are placed (so that one
 * copy does not decide), and the inbox rate is under half of inbox_rate_above. *rate_pct (may
 * be NULL) gets the rate (0 when nothing is placed). Pure.
 */
bool placement_fall(const struct plan_ramp *r, const struct plan_placement *pl, int64_t inbox,
                    int64_t placed, double *rate_pct);

/* The rate a sharp fall throttles a provider sending at rate_now to: rate_now * factor (as a
 * throttling deferral cuts it), at least 1/min. Pure. */
double placement_fall_rate(double rate_now, const struct plan_backoff *b);

/* The reason recorded with the throttle: "inbox rate 20% on 2026-12-04 (4 of 20 seed copies),
 * below half of inbox_rate_above 70%". Pure. */
void placement_fall_reason(char *out, size_t size, const char *date, int64_t inbox, int64_t placed,
                           double threshold_pct);

#endif
