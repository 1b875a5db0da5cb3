/*
 * backoff: how a provider's sending slows down when it pushes back, and how it recovers; which
 * reply rules fire; when a deferred recipient is tried again.
 *
 * Every function here is a pure decision over (plan, stored state, now): no clock, no sockets,
 * no SQL. The engine loads the state from the store, calls these with the injected clock's
 * now, and saves what they changed, so a 30-day warm-up replays in a unit test in milliseconds.
 * The contract is docs/plan.md, "backoff" and "What the plan asks of the scheduler"; the
 * defaults and the shipped rules follow the providers' published sender guidelines and what
 * large senders do: KumoMTA's rule actions with expiry, stepwise recovery rather than snapping
 * back, Postfix's doubling retry schedule.
 *
 * Use by the engine, per provider:
 *   before sending: backoff_tick() (save if it returns true), then backoff_decide() with the
 *     provider's active rule actions: may it send, until when not, at what rate;
 *   after a reply: reply_classify(); backoff_rules_match() on the reply as reply_format() writes
 *     it (store each fired action; a fired bounce: backoff_bounce()); if the class says
 *     throttle, backoff_on_deferral(); if it says retry, backoff_retry_next().
 * A connection that fails (no reply) is classified as a throttling deferral. When the engine
 * then tries the provider's next MX for the same message, it should call
 * backoff_on_deferral() once per message, not once per MX host; a second call during the pause
 * the first one started is harmless anyway (it neither cuts the rate again nor doubles the
 * pause, see below), so the double count can at worst refresh last_deferral_ms.
 */
#ifndef IPWARM_BACKOFF_H
#define IPWARM_BACKOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/plan.h"
#include "ipwarm/reply.h"

/* "Deferrals repeat within the hour" (plan.md): the window that doubles the pause. */
#define BACKOFF_REPEAT_WINDOW_MS 3600000
/* A cut never takes a rate below this (messages per minute), nor raises one already below. */
#define BACKOFF_MIN_RATE_PER_MIN 1.0
/* deferral.max_pause when the plan leaves it 0. */
#define BACKOFF_PAUSE_MAX_DEFAULT_MS (4 * 3600000LL)
/* The most matches a rule trigger counts ("N/period" with N above this counts as this N). */
#define BACKOFF_TRIGGER_MAX 64
#define BACKOFF_REASON_MAX  256

/*
 * A provider's backoff state, as the store keeps it (struct store_provider: rate_per_min,
 * paused_until_ms, pause_reason, pause_level, last_deferral_ms; rate_changed_ms holds
 * max(last_deferral_ms, last_recover_ms)). Times are ms since the epoch, 0 = never.
 *
 * rate_per_min:    the rate backoff allows, at most planned_per_min; 0 = not set (= planned).
 * planned_per_min: the ramp's rate for the provider's current stage (set by the caller).
 * paused_until_ms: no sends before this; kept after it passes, since the quiet hour and the
 *                  recovery are counted from the end of the pause.
 * pause_level:     how many times the pause doubled (0 after a first deferral).
 * last_deferral_ms, last_recover_ms: the last throttling deferral and the last recovery step.
 * pause_reason:    the reply that caused the pause and what was done, for `status`.
 */
struct backoff_state {
    double rate_per_min;
    double planned_per_min;
    int64_t paused_until_ms;
    int pause_level;
    int64_t last_deferral_ms;
    int64_t last_recover_ms;
    char pause_reason[BACKOFF_REASON_MAX];
};

/* A fresh state running at the planned rate. */
void backoff_state_init(struct backoff_state *s, double planned_per_min);

/*
 * The ramp moved the provider to a new planned rate (a new stage, a step back). A rate that
 * was not cut follows it; a cut rate stays where it is (at most the new planned rate) and
 * recovers toward the new one.
 */
void backoff_set_planned(struct backoff_state *s, double planned_per_min);

/*
 * Brings s up to now: applies the recovery steps that fell due and resets pause_level after a
 * quiet hour. Recovery: once recover_after has passed since the later of the last deferral,
 * the end of its pause and the last step, the rate grows by recover_step percent of the
 * planned rate, and again after every further recover_after, never above planned. Steps are
 * anchored to that schedule, so ticking often or seldom gives the same rates. The quiet hour:
 * more than BACKOFF_REPEAT_WINDOW_MS since the later of the last deferral and the end of its
 * pause (counting from the pause's end, since nothing can be deferred while nothing is sent).
 * Returns true when s changed (the caller saves it).
 */
bool backoff_tick(struct backoff_state *s, const struct plan_backoff *b, int64_t now_ms);

/* The rate s allows at now (recovery steps due by now included), ignoring the pause. */
double backoff_effective_rate(const struct backoff_state *s, const struct plan_backoff *b,
                              int64_t now_ms);

/* True while s is paused at now. */
bool backoff_paused(const struct backoff_state *s, int64_t now_ms);

/*
 * A throttling deferral (or a failed connection) of the provider at now; reply is the whole
 * reply ("451 4.7.500 Server busy ...", reply_format()) or why there was none, may be NULL.
 * After a tick to now: the rate is cut to max(rate * factor, 1/min) (a rate already below
 * 1/min is not raised); the provider pauses for pause * 2^level, at most max_pause, where the
 * level grows by one when this deferral repeats the last one within the hour (quiet hour as in
 * backoff_tick) and is 0 otherwise; pause_reason reads
 *     "451 4.7.500 Server busy ... (throttle x0.5 to 2.5/min, pause 15m)".
 * A deferral that arrives while the provider is already paused came from a message sent
 * before the pause (another connection, another MX of the same message): it only updates
 * last_deferral_ms, and the function returns false. Returns true when it cut and paused.
 * A factor outside (0, 1) is read as 0.5 and a max_pause of 0 as 4h.
 */
bool backoff_on_deferral(struct backoff_state *s, const struct plan_backoff *b, int64_t now_ms,
                         const char *reply);

/*
 * The recent matches of one rule for one provider: a ring of the last N match times, N the
 * rule's trigger count. Zero-initialise; the engine keeps one per rule and provider (an array
 * of n_rules per provider, indexed like plan->rules). Not stored: after a restart the counts
 * start again, which can only delay a rule, never fire it wrongly.
 */
struct backoff_rule_hits {
    int64_t at[BACKOFF_TRIGGER_MAX];
    int n;    /* times held, up to cap */
    int next; /* where the next time goes; when n == cap, the oldest */
    int cap;  /* the trigger count the ring was set up for */
};

/* An action fired by a rule. rule is the index in the plan's rules, name its name or pattern. */
struct backoff_action {
    size_t rule;
    const char *name; /* points into the plan */
    enum plan_rule_action action;
    double rate_per_min; /* throttle: the rate to hold */
    int64_t started_ms;
    int64_t expires_ms; /* started + the rule's `for`; inactive from then on */
};

/*
 * Matches reply (the whole reply, reply_format(); NULL reads as "") against each rule of
 * rules[0..n_rules) that applies to provider (a rule without providers applies to all), and
 * records each match in hits[i]. A rule fires when this match is its trigger_count-th within
 * trigger_period, that is when the trigger_count-th latest match (this one included) is at
 * most trigger_period old; "immediately" (count 1) fires on every match. Matches keep counting
 * after a rule fired, so continued matches fire it again and extend its action. A rule that
 * fires writes an action to out (room for n_rules), in rule order. A rule whose regex is not
 * compiled (re_compiled false) never matches. Returns how many fired.
 */
size_t backoff_rules_match(const struct plan_rule *rules, size_t n_rules, const char *provider,
                           const char *reply, int64_t now_ms, struct backoff_rule_hits *hits,
                           struct backoff_action *out);

/* True if a has started and not expired at now. */
bool backoff_action_active(const struct backoff_action *a, int64_t now_ms);

/* What the provider may do now. */
struct backoff_decision {
    bool may_send;       /* not paused and not suspended */
    bool paused;         /* by a deferral (backoff_state) */
    bool suspended;      /* by an active suspend action */
    bool throttled;      /* an active throttle action lowers the rate */
    int64_t until_ms;    /* when !may_send: the earliest time it may send again; else 0 */
    double rate_per_min; /* the pace when sending: the effective rate, capped by throttles */
};

/*
 * Combines s and the provider's actions a[0..n) at now. Expired actions no longer apply. A
 * suspension beats a throttle; of several throttles the lowest rate wins; a throttle only ever
 * lowers the rate (a rule holding 10/min does not speed up a provider the ramp has at 5/min).
 * Bounce actions do not act on the provider.
 */
void backoff_decide(const struct backoff_state *s, const struct plan_backoff *b,
                    const struct backoff_action *a, size_t n, int64_t now_ms,
                    struct backoff_decision *out);

/*
 * A fired bounce action makes this reply permanent for its recipient: the outcome becomes
 * bounced with no retry; the recipient is suppressed only when the reply is about its own
 * mailbox (recipient scope). The provider side (throttle) is left as classified.
 */
void backoff_bounce(struct reply_class *c);

enum backoff_retry { BACKOFF_RETRY = 0, BACKOFF_EXPIRE };

/*
 * When to try a deferred or failed recipient again. retry_no counts the retries already made
 * (0 after the first attempt failed). The delay is retry.first * 2^retry_no, at most
 * retry.max (at least 1 s, so a zero plan value cannot spin); the next attempt is never
 * scheduled after first_attempt + give_up_after, so the last one happens at that moment.
 * Returns BACKOFF_EXPIRE (the outcome is expired) once now - first_attempt_ms >=
 * give_up_after, else BACKOFF_RETRY with *next_ms set.
 */
enum backoff_retry backoff_retry_next(const struct plan_backoff *b, int retry_no,
                                      int64_t first_attempt_ms, int64_t now_ms, int64_t *next_ms);

#endif
