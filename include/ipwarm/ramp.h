/*
 * ramp: how fast each provider may be sent to, sending day by sending day.
 *
 * A provider's ramp is a ladder of stages: stage k plans min(start * growth^k, max) messages a
 * minute. The provider climbs one stage at the start of a sending day only if its previous
 * sending day was clean (deferral and bounce rates under the plan's advance_if thresholds, and
 * with complaint_rate_below its complaints over its delivered messages under that too, and
 * with inbox_rate_above its seed copies that day all placed and found in the inbox above that
 * rate; a provider that sent no seed copy that day is not judged on placement),
 * holds when it was not, and steps back one stage when either rate reached twice its threshold.
 * A sending day is a local date (in the plan's zone) on which the provider was sent mail, so a
 * weekend, a holiday or an outage does not move the ladder. daily_cap bounds the messages of
 * each sending day.
 *
 * Everything here is a pure function of the plan, the stored state and the caller's counts;
 * the engine asks the store for the counts and the clock for today's date. The rate here is the
 * ramp's plan; backoff (a later module) may send slower than it for a while.
 */
#ifndef IPWARM_RAMP_H
#define IPWARM_RAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/plan.h"
#include "ipwarm/tz.h"

/* What the store keeps per provider. A zeroed struct is a provider that has not sent yet. */
struct ramp_state {
    int stage;                  /* 0 = the first sending day's stage */
    int sending_day;            /* 1-based count of days on which mail went out; 0 = none yet */
    char day_date[TZ_DATE_MAX]; /* local date of the current sending day, or "" */
    double rate_per_min;        /* ramp_rate_for_stage(stage): the ramp's planned rate */
};

/* The previous sending day's outcomes for one provider, counted by the caller from the store. */
struct ramp_day_counts {
    int64_t attempts;   /* messages tried (each RCPT attempt that got an answer or failed) */
    int64_t deferred;   /* of them, deferred (4xx) or failed to connect */
    int64_t bounced;    /* of them, bounced (5xx, and late bounces read from the mailbox) */
    int64_t delivered;  /* of them, delivered (and not bounced later) */
    int64_t complaints; /* complaint reports read that day (feedback), against delivered */
    /* Seed copies (placement.h) sent that day, and of them those placed (inbox, junk or
     * missing) and those found in the inbox. */
    int64_t seed_sent, seed_placed, seed_inbox;
};

enum ramp_change {
    RAMP_SAME_DAY = 0, /* today is already the current sending day: nothing changes */
    RAMP_FIRST_DAY,    /* the first sending day: stage 0 */
    RAMP_GROW,         /* the previous day was clean: one stage up */
    RAMP_HOLD,         /* same stage: not clean, no evidence, or already at max (or at 0) */
    RAMP_STEP_BACK,    /* a rate reached twice its threshold: one stage down */
    RAMP_CLOCK_BACK,   /* today is before the stored sending day (state written with a clock
                          ahead): stage and sending day kept, the day moved to today */
};

/* A short lower-case name of the change ("grow"), for logs and status. */
const char *ramp_change_name(enum ramp_change c);

/* The planned rate of stage (stages below 0 count as 0): min(start * growth^stage, max). */
double ramp_rate_for_stage(const struct plan_ramp *r, int stage);

/* The lowest stage whose rate is max; 0 when growth is 1 or start is already max (the ramp
 * cannot climb, so stage 0 is as far as it goes). */
int ramp_max_stage(const struct plan_ramp *r);

/* The sending day (1-based) on which the rate first reaches max if every day is clean:
 * ramp_max_stage() + 1. */
int ramp_max_day(const struct plan_ramp *r);

/*
 * The daily cap of sending day sending_day (1-based; 0 counts as 1, the day about to begin when
 * none has): daily_cap[sending_day - 1], the last entry repeating. Returns -1 when the ramp has
 * no daily_cap or that entry is 0 (no cap). The caller compares it with the messages sent on
 * today's local date, so the count resets at local midnight.
 */
int64_t ramp_cap_today(const struct plan_ramp *r, int sending_day);

/*
 * The state for the first send on local date today, given the stored state prev and the counts
 * of prev's sending day (prev_day; may be NULL when prev has no day yet). Call it before each
 * send; it is cheap. When today is prev->day_date nothing changes (RAMP_SAME_DAY). Otherwise a
 * new sending day begins: sending_day + 1, day_date = today, and the stage moves as the file
 * comment says. *why (may be NULL) says what happened to the stage: RAMP_GROW and
 * RAMP_STEP_BACK only when it moved, RAMP_HOLD when it did not (a clean day at max, a bad day
 * at stage 0). A previous day without attempts (or prev_day NULL) gives no evidence of being
 * clean, and growth must be earned: it holds. The engine stores next only once the first
 * message of the day has gone out, so a day without mail is never a sending day.
 * When today is before prev->day_date (the state was written with a clock ahead, such as a
 * mistaken --now in the future) the ladder does not move: stage and sending_day stay, day_date
 * becomes today, and *why is RAMP_CLOCK_BACK; the caller should say so. next may be prev.
 * Returns IPW_OK, or IPW_EUSAGE when today is not a date; next is then unchanged.
 */
ipw_status ramp_begin_day(const struct plan_ramp *r, const struct ramp_state *prev,
                          const struct ramp_day_counts *prev_day, const char *today,
                          struct ramp_state *next, enum ramp_change *why, struct err *e);

/* One sending day of a projection. */
struct ramp_sim_day {
    int day;                /* sending day, 1-based */
    char date[TZ_DATE_MAX]; /* its local date */
    int stage;
    double rate_per_min; /* the ramp's rate that day */
    int64_t cap;         /* the daily cap, -1 = none */
    int64_t window_ms;   /* how long the schedule's windows are open that day (real time) */
    int64_t planned;     /* messages the engine sends that day if every day is clean */
    bool at_max;         /* rate_per_min is the ramp's max */
};

/*
 * Projects the ramp of provider provider_index of p over its first days sending days, from the
 * local date start_date (the first sending day is the first date on or after it whose schedule
 * has an open window), assuming every day is clean and recipients never run out. out has room for
 * days entries; for each day out[i] gives the stage, rate, cap and the messages planned: what the
 * pacer sends in that day's windows at that rate, stopped at the cap. That is min(cap, sum over the
 * day's windows of ceil(rate * window minutes)) when windows are separate, and follows the pacer's
 * sequence exactly across midnight when a window runs through it. Uses p->timezone, p->schedule and
 * the provider's effective ramp. Returns IPW_OK; IPW_EUSAGE for a bad index, date or days < 0;
 * IPW_ENOTFOUND when the schedule has no open minute in a whole week (nothing would ever be
 * sent); IPW_ECONFIG for an unknown zone.
 */
ipw_status ramp_simulate(const struct plan *p, size_t provider_index, const char *start_date,
                         int days, struct ramp_sim_day *out, struct err *e);

#endif
