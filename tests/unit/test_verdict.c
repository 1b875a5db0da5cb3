/*
 * Unit tests of verdict_decide (verdict.c): what a finished transaction does to its recipient
 * and provider, for each kind of ending and each fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ipwarm/verdict.h"

#define NOW  1796115600000LL
#define MIN  60000LL
#define HOUR 3600000LL

static const struct plan_backoff backoff = {
    .factor = 0.5,
    .pause_ms = 15 * MIN,
    .pause_max_ms = 4 * HOUR,
    .recover_after_ms = 30 * MIN,
    .recover_step_pct = 25,
    .retry_first_ms = 5 * MIN,
    .retry_max_ms = 4 * HOUR,
    .retry_give_up_ms = 72 * HOUR,
    .blocked_pause_ms = HOUR,
    .blocked_pause_max_ms = 24 * HOUR,
};

/* A transaction refused with reply (code, enhanced, text) in phase. */
static struct verdict_input refused(enum reply_phase phase, int code, const char *enhanced,
                                    const char *text)
{
    struct verdict_input in = {
        .phase = phase,
        .code = code,
        .enhanced = enhanced,
        .text = text,
        .full = text,
        .backoff = &backoff,
        .now_ms = NOW,
    };
    return in;
}

static void test_verdict_delivered(void **state)
{
    (void)state;
    struct verdict_input in = refused(REPLY_PHASE_DATA, 250, "2.0.0", "OK queued");
    in.delivered = true;
    struct verdict v;
    verdict_decide(&in, &v);
    assert_string_equal(v.outcome, "delivered");
    assert_int_equal(v.step.step, STORE_RCPT_DONE);
    in.mode = PLAN_RCPT_CYCLE;
    verdict_decide(&in, &v);
    assert_int_equal(v.step.step, STORE_RCPT_NEXT_CYCLE);
    assert_int_equal(v.step.next_at_ms, NOW);
    assert_false(v.throttle);
}

static void test_verdict_unknown_is_held(void **state)
{
    (void)state;
    struct verdict_input in = refused(REPLY_PHASE_DATA, 0, NULL, "no reply within the timeout");
    in.unknown = true;
    struct verdict v;
    verdict_decide(&in, &v);
    assert_string_equal(v.outcome, "unknown");
    assert_int_equal(v.step.step, STORE_RCPT_HOLD);
    assert_non_null(strstr(v.step.reason, "may have been delivered"));
    assert_true(v.throttle);
    /* Our own stop is nobody's fault: held, but the provider is not slowed. */
    in.aborted = true;
    verdict_decide(&in, &v);
    assert_int_equal(v.step.step, STORE_RCPT_HOLD);
    assert_false(v.throttle);
}

static void test_verdict_aborted_before_dot_requeues(void **state)
{
    (void)state;
    struct verdict_input in = refused(REPLY_PHASE_RCPT, 0, NULL, "the run was stopped");
    in.aborted = true;
    in.retries = 2;
    struct verdict v;
    verdict_decide(&in, &v);
    assert_string_equal(v.outcome, "failed");
    assert_int_equal(v.step.step, STORE_RCPT_REQUEUE);
    assert_int_equal(v.step.next_at_ms, NOW);
    assert_false(v.throttle);
    assert_false(v.stop);
}

static void test_verdict_block_list_suspends_and_keeps(void **state)
{
    (void)state;
    struct verdict_input in =
        refused(REPLY_PHASE_MAIL, 550, "5.7.1",
                "5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact "
                "your Internet service provider since part of their network is on our block "
                "list (S3150).");
    struct verdict v;
    verdict_decide(&in, &v);
    assert_string_equal(v.outcome, "blocked");
    assert_int_equal(v.cls.fault, REPLY_FAULT_SENDER);
    assert_int_equal(v.suspend_ms, HOUR);
    assert_int_equal(v.step.step, STORE_RCPT_REQUEUE);
    assert_int_equal(v.step.next_at_ms, NOW + HOUR);
    assert_false(v.throttle);
    /* Refused again and again: the suspension doubles, up to a day. */
    in.refusals = 2;
    verdict_decide(&in, &v);
    assert_int_equal(v.suspend_ms, 4 * HOUR);
    in.refusals = 9;
    verdict_decide(&in, &v);
    assert_int_equal(v.suspend_ms, 24 * HOUR);
    /* The catch-all provider is unrelated domains: one domain's refusal suspends nobody. */
    in.refusals = 0;
    in.default_provider = true;
    verdict_decide(&in, &v);
    assert_string_equal(v.outcome, "blocked");
    assert_int_equal(v.suspend_ms, 0);
    assert_int_equal(v.step.step, STORE_RCPT_REQUEUE);
    assert_int_equal(v.step.next_at_ms, NOW + HOUR);
}

static void test_verdict_greeting_refusal_is_the_senders(void **state)
{
    (void)state;
    struct verdict_input in = refused(REPLY_PHASE_CONNECT, 554, "5.7.1",
                                      "5.7.1 Service unavailable; Client host [192.0.2.10] "
                                      "blocked using zen.spamhaus.org");
    struct verdict v;
    verdict_decide(&in, &v);
    assert_string_equal(v.outcome, "blocked");
    assert_int_equal(v.step.step, STORE_RCPT_REQUEUE);
    assert_true(v.suspend_ms > 0);
}

static void test_verdict_relay_login_refused_stops(void **state)
{
    (void)state;
    struct verdict_input in =
        refused(REPLY_PHASE_AUTH, 535, "5.7.8", "5.7.8 Authentication credentials invalid");
    in.relay = true;
    struct verdict v;
    verdict_decide(&in, &v);
    assert_true(v.stop);
    assert_string_equal(v.outcome, "failed");
    assert_int_equal(v.step.step, STORE_RCPT_REQUEUE);
    assert_int_equal(v.step.next_at_ms, NOW);
    assert_false(v.throttle);
}

static void test_verdict_no_starttls(void **state)
{
    (void)state;
    struct verdict_input in = refused(REPLY_PHASE_STARTTLS, 0, NULL, "no STARTTLS offered");
    in.tls_unavailable = true;
    in.relay = true;
    struct verdict v;
    verdict_decide(&in, &v);
    assert_true(v.stop);
    assert_int_equal(v.step.step, STORE_RCPT_REQUEUE);
    /* An MX without STARTTLS while the plan requires TLS: that MX's limit, not our set-up. */
    in.relay = false;
    verdict_decide(&in, &v);
    assert_false(v.stop);
    assert_string_equal(v.outcome, "failed");
    assert_int_equal(v.step.step, STORE_RCPT_RETRY);
}

static void test_verdict_connection_failure(void **state)
{
    (void)state;
    struct verdict_input in = refused(REPLY_PHASE_CONNECT, 0, NULL, "Connection refused");
    in.more_mx = true;
    struct verdict v;
    verdict_decide(&in, &v);
    assert_true(v.next_mx);
    assert_true(v.throttle);
    assert_int_equal(v.step.step, STORE_RCPT_KEEP);
    in.more_mx = false;
    verdict_decide(&in, &v);
    assert_false(v.next_mx);
    assert_string_equal(v.outcome, "failed");
    assert_int_equal(v.step.step, STORE_RCPT_RETRY);
    assert_int_equal(v.step.next_at_ms, NOW + 5 * MIN);
    assert_true(v.throttle);
    /* One broken domain among the catch-all provider's slows no one else. */
    in.default_provider = true;
    verdict_decide(&in, &v);
    assert_false(v.throttle);
    assert_int_equal(v.step.step, STORE_RCPT_RETRY);
}

static void test_verdict_throttle_and_recipient_faults(void **state)
{
    (void)state;
    struct verdict v;
    struct verdict_input busy =
        refused(REPLY_PHASE_MAIL, 451, "4.7.500",
                "4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714)");
    verdict_decide(&busy, &v);
    assert_string_equal(v.outcome, "deferred");
    assert_true(v.throttle);
    assert_int_equal(v.step.step, STORE_RCPT_RETRY);

    struct verdict_input unknown =
        refused(REPLY_PHASE_RCPT, 550, "5.1.1", "5.1.1 The email account does not exist");
    verdict_decide(&unknown, &v);
    assert_string_equal(v.outcome, "bounced");
    assert_int_equal(v.step.step, STORE_RCPT_SUPPRESS);
    assert_false(v.throttle);

    struct verdict_input full =
        refused(REPLY_PHASE_RCPT, 452, "4.2.2", "4.2.2 The email account is over quota");
    verdict_decide(&full, &v);
    assert_string_equal(v.outcome, "deferred");
    assert_false(v.throttle);
    assert_int_equal(v.step.step, STORE_RCPT_RETRY);

    /* A rule that makes a reply a bounce: no retry. */
    busy.rule_bounce = true;
    verdict_decide(&busy, &v);
    assert_string_equal(v.outcome, "bounced");
    assert_int_equal(v.step.step, STORE_RCPT_DONE);
}

static void test_verdict_retries_give_up(void **state)
{
    (void)state;
    struct verdict_input in =
        refused(REPLY_PHASE_MAIL, 451, "4.7.500", "4.7.500 Server busy. Please try again later");
    in.retries = 20;
    in.first_attempt_ms = NOW - 73 * HOUR;
    struct verdict v;
    verdict_decide(&in, &v);
    assert_string_equal(v.outcome, "expired");
    assert_int_equal(v.step.step, STORE_RCPT_EXPIRE);
    assert_non_null(strstr(v.step.reason, "retries gave up"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_delivered),
        cmocka_unit_test(test_verdict_unknown_is_held),
        cmocka_unit_test(test_verdict_aborted_before_dot_requeues),
        cmocka_unit_test(test_verdict_block_list_suspends_and_keeps),
        cmocka_unit_test(test_verdict_greeting_refusal_is_the_senders),
        cmocka_unit_test(test_verdict_relay_login_refused_stops),
        cmocka_unit_test(test_verdict_no_starttls),
        cmocka_unit_test(test_verdict_connection_failure),
        cmocka_unit_test(test_verdict_throttle_and_recipient_faults),
        cmocka_unit_test(test_verdict_retries_give_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
