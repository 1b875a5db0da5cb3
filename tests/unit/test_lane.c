/*
 * Unit tests of lane_now (lane.c): what a lane is doing now and why, for each state status,
 * report and metrics show and the engine acts on; and of sched_next (sched.c), which picks
 * the lane that sends next from them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ipwarm/lane.h"
#include "ipwarm/sched.h"

#define NOW  1796115600000LL /* 2026-12-01T09:00:00Z */
#define MIN  60000LL
#define HOUR 3600000LL

static int64_t caps[] = {500, 1000};
static const struct plan_ramp ramp = {.start_per_min = 5,
                                      .growth = 1.5,
                                      .max_per_min = 600,
                                      .daily_cap = caps,
                                      .n_daily_cap = 2,
                                      .deferral_below_pct = 5,
                                      .bounce_below_pct = 2};
static const struct plan_backoff backoff = {.factor = 0.5,
                                            .pause_ms = 15 * MIN,
                                            .pause_max_ms = 4 * HOUR,
                                            .recover_after_ms = 30 * MIN,
                                            .recover_step_pct = 25,
                                            .retry_first_ms = 5 * MIN,
                                            .retry_max_ms = 4 * HOUR,
                                            .retry_give_up_ms = 72 * HOUR};

/* The schedule open all day (09:00 UTC on 2026-12-01). */
static struct pace_frame open_frame(void)
{
    struct pace_frame fr = {.now_ms = NOW,
                            .midnight_ms = NOW + 15 * HOUR,
                            .open = true,
                            .open_ms = NOW - 9 * HOUR,
                            .close_ms = NOW + 15 * HOUR,
                            .valid_until_ms = NOW + 15 * HOUR};
    snprintf(fr.today, sizeof fr.today, "2026-12-01");
    return fr;
}

/* A lane that sent 10 messages today, its first sending day. */
static struct lane_state sending_lane(void)
{
    struct lane_state s;
    lane_state_init(&s, &ramp);
    s.ramp.sending_day = 1;
    snprintf(s.ramp.day_date, sizeof s.ramp.day_date, "2026-12-01");
    s.sent_today = 10;
    snprintf(s.sent_date, sizeof s.sent_date, "2026-12-01");
    return s;
}

static struct lane_action action(const char *rule, enum plan_rule_action act, bool manual,
                                 int64_t expires, const char *reason)
{
    struct lane_action a = {.b = {.name = rule,
                                  .action = act,
                                  .started_ms = NOW - MIN,
                                  .expires_ms = expires ? expires : INT64_MAX},
                            .manual = manual,
                            .reason = reason};
    return a;
}

static void test_lane_sending(void **state)
{
    (void)state;
    struct lane_state s = sending_lane();
    struct pace_frame fr = open_frame();
    struct lane_now n;
    lane_now(&s, NULL, &ramp, &backoff, NULL, 0, &fr, &n);
    assert_int_equal(n.activity, LANE_SENDING);
    assert_string_equal(lane_activity_name(n.activity), "sending");
    assert_string_equal(n.reason, "");
    assert_int_equal(n.sending_day, 1);
    assert_int_equal(n.sent_today, 10);
    assert_int_equal(n.cap_today, 500);
    assert_true(n.rate_per_min == 5.0);
    assert_true(n.planned_per_min == 5.0);
}

static void test_lane_next_day_before_its_first_message(void **state)
{
    (void)state;
    struct lane_state s = sending_lane();
    struct pace_frame fr = open_frame();
    fr.now_ms += 24 * HOUR;
    snprintf(fr.today, sizeof fr.today, "2026-12-02");
    struct lane_now n;
    lane_now(&s, NULL, &ramp, &backoff, NULL, 0, &fr, &n);
    /* Yesterday's count is not today's; today's cap is the second day's. */
    assert_int_equal(n.sent_today, 0);
    assert_int_equal(n.sending_day, 2);
    assert_int_equal(n.cap_today, 1000);
    /* With the caller's answer for today (growth earned), its stage and rate. */
    struct ramp_state today = {.stage = 1, .sending_day = 2, .rate_per_min = 7.5};
    snprintf(today.day_date, sizeof today.day_date, "2026-12-02");
    lane_now(&s, &today, &ramp, &backoff, NULL, 0, &fr, &n);
    assert_int_equal(n.stage, 1);
    assert_true(n.planned_per_min == 7.5);
    assert_true(n.rate_per_min == 7.5);
}

static void test_lane_backoff_pause(void **state)
{
    (void)state;
    struct lane_state s = sending_lane();
    s.bo.paused_until_ms = NOW + 10 * MIN;
    s.bo.rate_per_min = 2.5;
    snprintf(s.bo.pause_reason, sizeof s.bo.pause_reason, "451 4.7.500 Server busy");
    struct pace_frame fr = open_frame();
    struct lane_now n;
    lane_now(&s, NULL, &ramp, &backoff, NULL, 0, &fr, &n);
    assert_int_equal(n.activity, LANE_PAUSED);
    assert_int_equal(n.until_ms, NOW + 10 * MIN);
    assert_string_equal(n.reason, "backoff: 451 4.7.500 Server busy");
    assert_true(n.rate_per_min == 2.5);
}

static void test_lane_rule_suspension_beats_backoff(void **state)
{
    (void)state;
    struct lane_state s = sending_lane();
    s.bo.paused_until_ms = NOW + 15 * MIN;
    struct lane_action a[] = {
        action("yahoo-tss04", PLAN_ACTION_SUSPEND, false, NOW + 2 * HOUR,
               "421 4.7.0 [TSS04] Messages temporarily deferred"),
        /* Expired: ignored. */
        action("old", PLAN_ACTION_SUSPEND, false, NOW - 1, "earlier"),
    };
    struct pace_frame fr = open_frame();
    struct lane_now n;
    lane_now(&s, NULL, &ramp, &backoff, a, 2, &fr, &n);
    assert_int_equal(n.activity, LANE_SUSPENDED);
    assert_int_equal(n.until_ms, NOW + 2 * HOUR);
    assert_string_equal(
        n.reason, "suspend by rule yahoo-tss04: 421 4.7.0 [TSS04] Messages temporarily deferred");
}

static void test_lane_manual_hold(void **state)
{
    (void)state;
    struct lane_state s = sending_lane();
    struct lane_action a[] = {
        action("yahoo-tss04", PLAN_ACTION_SUSPEND, false, NOW + 2 * HOUR, "[TSS04]"),
        action("manual", PLAN_ACTION_SUSPEND, true, 0, "paused by hand by root"),
    };
    struct pace_frame fr = open_frame();
    struct lane_now n;
    lane_now(&s, NULL, &ramp, &backoff, a, 2, &fr, &n);
    /* Held until resumed: no end, whatever else is in force. */
    assert_int_equal(n.activity, LANE_HELD);
    assert_int_equal(n.until_ms, 0);
    assert_string_equal(n.reason, "paused by hand by root");
    /* A timed hold. */
    a[1].b.expires_ms = NOW + 30 * MIN;
    lane_now(&s, NULL, &ramp, &backoff, a, 2, &fr, &n);
    assert_int_equal(n.activity, LANE_HELD);
    assert_int_equal(n.until_ms, NOW + 30 * MIN);
}

static void test_lane_throttle(void **state)
{
    (void)state;
    struct lane_state s = sending_lane();
    struct lane_action a[] = {action("gmail-unusual-rate", PLAN_ACTION_THROTTLE, false,
                                     NOW + 30 * MIN, "421 4.7.28 unusual rate")};
    a[0].b.rate_per_min = 1;
    struct pace_frame fr = open_frame();
    struct lane_now n;
    lane_now(&s, NULL, &ramp, &backoff, a, 1, &fr, &n);
    assert_int_equal(n.activity, LANE_SENDING);
    assert_true(n.throttled);
    assert_true(n.rate_per_min == 1.0);
}

static void test_lane_capped_and_closed(void **state)
{
    (void)state;
    struct lane_state s = sending_lane();
    s.sent_today = 500;
    struct pace_frame fr = open_frame();
    struct lane_now n;
    lane_now(&s, NULL, &ramp, &backoff, NULL, 0, &fr, &n);
    assert_int_equal(n.activity, LANE_CAPPED);
    assert_int_equal(n.until_ms, fr.midnight_ms);
    assert_string_equal(n.reason, "today's cap of 500 messages is reached");
    s.sent_today = 10;
    fr.open = false;
    fr.open_ms = NOW + 3 * HOUR;
    lane_now(&s, NULL, &ramp, &backoff, NULL, 0, &fr, &n);
    assert_int_equal(n.activity, LANE_CLOSED);
    assert_int_equal(n.until_ms, NOW + 3 * HOUR);
}

/* The row a lane saves is the lane it loads. */
static void test_lane_row_round_trip(void **state)
{
    (void)state;
    struct lane_state s = sending_lane();
    s.bo.paused_until_ms = NOW + MIN;
    s.bo.rate_per_min = 2.5;
    s.bo.pause_level = 1;
    s.bo.last_deferral_ms = NOW - MIN;
    s.seq.anchor_ms = NOW - HOUR;
    s.seq.n = 7;
    s.seq.rate_per_min = 5;
    snprintf(s.last_reply, sizeof s.last_reply, "250 2.0.0 OK");
    struct store_provider row;
    lane_state_to_row(&s, "gmail", NOW, &row);
    struct lane_state t;
    lane_state_from_row(&t, &ramp, &row);
    assert_true(t.stored);
    assert_int_equal(t.ramp.sending_day, 1);
    assert_string_equal(t.ramp.day_date, "2026-12-01");
    assert_int_equal(t.bo.paused_until_ms, NOW + MIN);
    assert_true(t.bo.rate_per_min == 2.5);
    assert_int_equal(t.bo.pause_level, 1);
    assert_int_equal(t.seq.n, 7);
    assert_int_equal(t.sent_today, 10);
    assert_string_equal(t.last_reply, "250 2.0.0 OK");
}

static void test_sched_next_skips_stopped_lanes(void **state)
{
    (void)state;
    struct lane_state held = sending_lane(), paused = sending_lane(), ok = sending_lane();
    paused.bo.paused_until_ms = NOW + 10 * MIN;
    struct lane_action hold = action("manual", PLAN_ACTION_SUSPEND, true, 0, "by hand");
    struct sched_lane lanes[] = {
        {.state = &held, .ramp = &ramp, .actions = &hold, .n_actions = 1, .has_work = true},
        {.state = &paused, .ramp = &ramp, .has_work = true},
        {.state = &ok, .ramp = &ramp, .has_work = true},
    };
    struct pace_frame fr = open_frame();
    struct lane_now nows[3];
    struct sched_pick pk = sched_next(lanes, 3, &backoff, &fr, nows);
    assert_int_equal(pk.lane, 2);
    assert_int_equal(pk.at_ms, NOW);
    assert_true(pk.rate_per_min == 5.0);
    assert_int_equal(nows[0].activity, LANE_HELD);
    assert_int_equal(nows[1].activity, LANE_PAUSED);
    /* Without work, the last lane is not picked; the paused one is next, at its end. */
    lanes[2].has_work = false;
    pk = sched_next(lanes, 3, &backoff, &fr, NULL);
    assert_int_equal(pk.lane, 1);
    assert_int_equal(pk.at_ms, NOW + 10 * MIN);
}

/* Two suspensions ending together (an IP's own rule hit, then the whole pool's for the same
 * trouble): the newer one says why. */
static void test_lane_tie_goes_to_the_newer(void **state)
{
    (void)state;
    struct lane_state s = sending_lane();
    struct lane_action a[] = {
        action("yahoo-tss04", PLAN_ACTION_SUSPEND, false, NOW + 2 * HOUR, "this IP"),
        action("yahoo-tss04", PLAN_ACTION_SUSPEND, false, NOW + 2 * HOUR, "every IP of the pool"),
    };
    struct pace_frame fr = open_frame();
    struct lane_now n;
    lane_now(&s, NULL, &ramp, &backoff, a, 2, &fr, &n);
    assert_int_equal(n.activity, LANE_SUSPENDED);
    assert_string_equal(n.reason, "suspend by rule yahoo-tss04: every IP of the pool");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lane_sending),
        cmocka_unit_test(test_lane_next_day_before_its_first_message),
        cmocka_unit_test(test_lane_backoff_pause),
        cmocka_unit_test(test_lane_rule_suspension_beats_backoff),
        cmocka_unit_test(test_lane_manual_hold),
        cmocka_unit_test(test_lane_throttle),
        cmocka_unit_test(test_lane_capped_and_closed),
        cmocka_unit_test(test_lane_row_round_trip),
        cmocka_unit_test(test_sched_next_skips_stopped_lanes),
        cmocka_unit_test(test_lane_tie_goes_to_the_newer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
