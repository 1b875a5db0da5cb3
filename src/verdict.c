/*
 * verdict: what one finished transaction means for its recipient and provider (see verdict.h).
 */
#include "ipwarm/verdict.h"

#include <stdio.h>
#include <string.h>

#include "ipwarm/backoff.h"

int64_t verdict_suspension_ms(const struct plan_backoff *b, int n)
{
    int64_t ms = b->blocked_pause_ms > 0 ? b->blocked_pause_ms : 3600000;
    int64_t max = b->blocked_pause_max_ms > 0 ? b->blocked_pause_max_ms : 24 * 3600000LL;
    for (int i = 0; i < n && ms < max; i++)
        ms *= 2;
    return ms < max ? ms : max;
}

/* The recipient is done with this message: done in `once` mode, next cycle in `cycle`. */
static void verdict_done(const struct verdict_input *in, struct verdict *v)
{
    if (in->mode == PLAN_RCPT_CYCLE) {
        v->step.step = STORE_RCPT_NEXT_CYCLE;
        v->step.next_at_ms = in->now_ms;
    } else {
        v->step.step = STORE_RCPT_DONE;
    }
}

static void verdict_requeue(struct verdict *v, int64_t at_ms)
{
    v->step.step = STORE_RCPT_REQUEUE;
    v->step.next_at_ms = at_ms;
}

void verdict_decide(const struct verdict_input *in, struct verdict *v)
{
    memset(v, 0, sizeof *v);
    v->step.step = STORE_RCPT_KEEP;
    const char *full = in->full ? in->full : "";

    if (in->delivered) {
        v->cls.outcome = REPLY_DELIVERED;
        v->outcome = "delivered";
        verdict_done(in, v);
        return;
    }
    if (in->unknown) {
        /* The server may have taken it: as after kill -9, it is never sent again blindly.
         * Silence past the command timeout is the provider's trouble like any timeout; our
         * own stop is nobody's. */
        v->cls.outcome = REPLY_FAILED;
        v->cls.fault = REPLY_FAULT_NETWORK;
        v->cls.scope = REPLY_SCOPE_PROVIDER;
        v->outcome = "unknown";
        v->throttle = !in->aborted && !in->default_provider;
        snprintf(v->reason, sizeof v->reason,
                 "the whole message went out but no reply came (%.400s): it may have been "
                 "delivered; held until released with `ipwarm release`",
                 full);
        v->step.step = STORE_RCPT_HOLD;
        v->step.reason = v->reason;
        return;
    }
    if (in->aborted) {
        /* Ended by our stop before its final dot: not delivered, and not its fault. */
        v->cls.outcome = REPLY_FAILED;
        v->cls.fault = REPLY_FAULT_NETWORK;
        v->outcome = "failed";
        verdict_requeue(v, in->now_ms);
        return;
    }

    if (in->tls_unavailable && in->relay) {
        /* Our relay cannot protect the login: a set-up to fix, not a provider's hiccup. */
        v->cls.outcome = REPLY_FAILED;
        v->cls.fault = REPLY_FAULT_SETUP;
        v->cls.stop = true;
        v->outcome = "failed";
        v->stop = true;
        verdict_requeue(v, in->now_ms);
        return;
    }

    struct reply_input ri = {
        .phase = in->phase,
        .code = in->code,
        .enhanced = in->enhanced,
        .text = in->text,
        .relay = in->relay,
    };
    v->cls = reply_judge(&ri);
    if (v->cls.outcome == REPLY_PENDING || v->cls.outcome == REPLY_DELIVERED) {
        /* A positive last reply without delivery: the connection broke afterwards. */
        memset(&v->cls, 0, sizeof v->cls);
        v->cls.outcome = REPLY_FAILED;
        v->cls.fault = REPLY_FAULT_NETWORK;
        v->cls.scope = REPLY_SCOPE_PROVIDER;
        v->cls.throttle = true;
        v->cls.retry = true;
    }
    if (in->rule_bounce)
        backoff_bounce(&v->cls);
    v->outcome = reply_outcome_name(v->cls.outcome);
    v->throttle = v->cls.throttle;
    /* The catch-all provider groups unrelated domains: one domain's broken or busy server says
     * nothing about the others, so it slows and suspends no one; its recipient waits alone. */
    if (in->default_provider)
        v->throttle = false;

    /* A connection that failed tries the next MX address at once. */
    if (!in->relay && v->cls.fault == REPLY_FAULT_NETWORK && in->phase == REPLY_PHASE_CONNECT &&
        in->code == 0 && in->more_mx) {
        v->next_mx = true;
        return;
    }
    if (v->cls.stop) {
        v->stop = true;
        verdict_requeue(v, in->now_ms);
        return;
    }
    if (v->cls.suspend) {
        int64_t ms = verdict_suspension_ms(in->backoff, in->refusals);
        if (!in->default_provider)
            v->suspend_ms = ms;
        verdict_requeue(v, in->now_ms + ms);
        return;
    }
    if (v->cls.suppress) {
        snprintf(v->reason, sizeof v->reason, "%.590s", full);
        v->step.step = STORE_RCPT_SUPPRESS;
        v->step.reason = v->reason;
        return;
    }
    if (v->cls.outcome == REPLY_BOUNCED) {
        snprintf(v->reason, sizeof v->reason, "%.590s", full);
        verdict_done(in, v);
        v->step.reason = v->reason;
        return;
    }
    int64_t first = in->first_attempt_ms ? in->first_attempt_ms : in->now_ms;
    int64_t next = 0;
    if (backoff_retry_next(in->backoff, in->retries, first, in->now_ms, &next) == BACKOFF_EXPIRE) {
        snprintf(v->reason, sizeof v->reason, "retries gave up: %.570s", full);
        v->step.step = STORE_RCPT_EXPIRE;
        v->step.reason = v->reason;
        v->outcome = "expired";
        return;
    }
    v->step.step = STORE_RCPT_RETRY;
    v->step.next_at_ms = next;
}
