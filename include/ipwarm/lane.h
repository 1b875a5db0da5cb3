/*
 * lane: what a lane is doing now, and why.
 *
 * A lane is what ipwarm paces on its own: a provider (and, with an IP pool, one source IP at a
 * provider). Whether it may send now, at what rate, and if not why and until when, follows from
 * its stored state (ramp stage, backoff, today's count), the rule actions in force (a shipped
 * rule's suspension, a refusal of the sender, a manual hold, a throttle), the day's cap and the
 * schedule's windows. lane_now() is the one place that works it out: the engine decides from it
 * which lane sends next (sched.c), and status, report and metrics show it, so that they can
 * never disagree. Pure: no clock, no I/O (lane_store.c loads a lane for the commands).
 */
#ifndef IPWARM_LANE_H
#define IPWARM_LANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/backoff.h"
#include "ipwarm/pace.h"
#include "ipwarm/plan.h"
#include "ipwarm/ramp.h"
#include "ipwarm/store.h"
#include "ipwarm/tz.h"

/* Room for the reason shown when a lane does not send. */
#define LANE_REASON_MAX 640
/* Room for the last reply kept with a lane. */
#define LANE_REPLY_MAX 512

/* What a lane is doing, the first that applies in this order. */
enum lane_activity {
    LANE_SENDING = 0, /* may send now, at its rate (when it has a recipient due) */
    LANE_HELD,        /* held by hand (`ipwarm pause`) until resumed, or until until_ms */
    LANE_SUSPENDED,   /* a rule, or a receiver that refuses the sender, until until_ms */
    LANE_PAUSED,      /* backing off after deferrals, until until_ms */
    LANE_CAPPED,      /* today's cap is reached, until local midnight */
    LANE_CLOSED,      /* outside the schedule's windows, until the next one opens */
};

/* "sending", "held", "suspended", "paused", "capped", "closed". */
const char *lane_activity_name(enum lane_activity a);

/* An action in force on the lane, as the store records it (struct store_rule_action). */
struct lane_action {
    struct backoff_action b; /* what backoff_decide() weighs (name is the rule's) */
    bool manual;             /* `ipwarm pause` */
    const char *reason;      /* the reply that fired it, or the operator's note; may be NULL */
};

/* What the store keeps for a lane between runs (struct store_provider), decoded. */
struct lane_state {
    struct ramp_state ramp;  /* the sending day in progress (or the last one) */
    struct backoff_state bo; /* planned_per_min is the ramp's rate for ramp.stage */
    struct pace_seq seq;     /* the even sequence */
    int64_t sent_today;      /* messages counted on sent_date */
    char sent_date[TZ_DATE_MAX];
    bool manual; /* the stored pause is a manual hold */
    char last_reply[LANE_REPLY_MAX];
    int64_t last_reply_ms;
    bool stored; /* it came from a stored row (else: a fresh lane) */
};

/* A fresh lane: stage 0 of ramp, nothing sent. */
void lane_state_init(struct lane_state *s, const struct plan_ramp *ramp);
/* The lane as row stores it (row may be NULL: a fresh lane). */
void lane_state_from_row(struct lane_state *s, const struct plan_ramp *ramp,
                         const struct store_provider *row);
/* The row to store for s (its strings point into s). next_send_ms is when the even sequence
 * sends next at now. */
void lane_state_to_row(const struct lane_state *s, const char *name, int64_t now_ms,
                       struct store_provider *row);
/* The action a records (its strings point into a). A manual pause holds like a suspension. */
void lane_action_from_store(const struct store_rule_action *a, struct lane_action *out);

/* A lane now. */
struct lane_now {
    enum lane_activity activity;
    int64_t until_ms;             /* when the activity ends; 0: no end known (held until resumed),
                                     or sending */
    char reason[LANE_REASON_MAX]; /* why it does not send, "" while sending */
    int stage, sending_day;       /* the sending day in progress, or the one today's first message
                                     begins */
    double planned_per_min;       /* the ramp's rate for that stage */
    double rate_per_min;          /* what it sends at: backoff and throttles applied */
    bool throttled;               /* a throttle action holds it lower than backoff alone */
    int64_t sent_today;           /* on the frame's local date */
    int64_t cap_today;            /* -1: no cap */
};

/*
 * Works out what lane s is doing at fr->now_ms under the actions a[0..n) (expired ones are
 * ignored) and the frame fr (the schedule at now: pace_frame_at). today is the lane's ramp
 * state for fr->today when the caller has it (ramp_begin_day from the previous sending day's
 * counts: lane_store_load and the engine do so), or NULL: the stored stage, on the stored
 * sending day when its date is today, else on the next one.
 */
void lane_now(const struct lane_state *s, const struct ramp_state *today,
              const struct plan_ramp *ramp, const struct plan_backoff *b,
              const struct lane_action *a, size_t n, const struct pace_frame *fr,
              struct lane_now *out);

#endif
