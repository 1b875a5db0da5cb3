/*
 * verdict: what one finished SMTP transaction means for its recipient and its provider.
 *
 * The engine hands over what the transport reported (delivered, the decisive reply and its
 * phase, or no reply and why) with what it knows around it (relay or direct, another MX left
 * to try, the recipient's retries, rules that fired); the verdict says what to record and what
 * to do: the attempt's outcome, the recipient's next step, whether to slow the provider down,
 * suspend it, try the next MX, or stop the run. Whose fault a refusal is comes from
 * reply_judge(): a refusal about the sender never touches the recipient, a set-up failure
 * stops the run instead of bouncing the list, a message whose final dot went out unanswered is
 * held like one a crash interrupted. Pure: no clock, no I/O (plan.md, "Backoff", "Recipients",
 * "Records").
 */
#ifndef IPWARM_VERDICT_H
#define IPWARM_VERDICT_H

#include <stdbool.h>
#include <stdint.h>

#include "ipwarm/plan.h"
#include "ipwarm/reply.h"
#include "ipwarm/store.h"

/* Room for the reason kept with a suppressed, expired or held recipient. */
#define VERDICT_REASON_MAX 600

struct verdict_input {
    /* What the transport reported. */
    bool delivered;       /* a 2xx after DATA */
    bool unknown;         /* the whole message went out, no final reply came */
    bool aborted;         /* ended by the run's own stop */
    bool tls_unavailable; /* TLS was required (or a login was to be sent) and the server
                             offers no STARTTLS */
    enum reply_phase phase;
    int code;             /* the decisive reply's code, 0 for none */
    const char *enhanced; /* its RFC 3463 code, or NULL */
    const char *text;     /* its text (reply_parse), or why there was none */
    const char *full;     /* "CODE TEXT" as rules and people read it, or "no reply: why" */
    /* Around it. */
    bool relay;            /* through the smarthost */
    bool more_mx;          /* direct mode: another MX address is left for this message */
    bool default_provider; /* the plan's catch-all provider: unrelated domains, no shared limit */
    bool rule_bounce;      /* a fired rule made this reply a bounce */
    enum plan_recipients_mode mode;
    int retries;              /* of the recipient, in this cycle */
    int64_t first_attempt_ms; /* of the recipient in this cycle, 0: this is the first */
    int refusals;             /* sender refusals of the provider in a row before this one */
    const struct plan_backoff *backoff;
    int64_t now_ms;
};

struct verdict {
    struct reply_class cls; /* reply_judge's answer (for a delivered, unknown or aborted
                               transaction: the class that stands for it) */
    const char *outcome;    /* delivered, deferred, bounced, failed, expired, blocked, unknown */
    struct store_recipient_update step; /* reason points into the verdict */
    char reason[VERDICT_REASON_MAX];
    bool throttle;      /* slow the provider down: backoff_on_deferral() */
    bool next_mx;       /* try the message's next MX address now, as its own attempt */
    int64_t suspend_ms; /* > 0: suspend the provider this long (the receiver refuses us) */
    bool stop;          /* our set-up is wrong: stop the run after recording this */
};

/* Decides in's verdict into *out. */
void verdict_decide(const struct verdict_input *in, struct verdict *out);

/* How long the n-th sender refusal in a row (n from 0) suspends a provider: backoff.blocked's
 * pause, doubling, at most its max_pause. */
int64_t verdict_suspension_ms(const struct plan_backoff *b, int n);

#endif
