/* Unit tests of ramp.c: stage rates, earned growth, hold and step back, sending days, daily
 * caps, and the simulate projection. Plans are built by hand, not loaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "ipwarm/ramp.h"

#define HOUR_MS (3600 * 1000LL)

static int64_t caps4[] = {500, 1000, 2000, 5000};

/* The plan.md example ramp: 5/min, x1.5, 600/min, caps 500, 1000, 2000, 5000, 5% and 2%. */
static struct plan_ramp example_ramp(void)
{
    struct plan_ramp r;
    memset(&r, 0, sizeof r);
    r.start_per_min = 5;
    r.growth = 1.5;
    r.max_per_min = 600;
    r.daily_cap = caps4;
    r.n_daily_cap = 4;
    r.deferral_below_pct = 5;
    r.bounce_below_pct = 2;
    return r;
}

static void test_ramp_rate_for_stage(void **state)
{
    (void)state;
    struct plan_ramp r = example_ramp();
    assert_float_equal(ramp_rate_for_stage(&r, 0), 5, 1e-12);
    assert_float_equal(ramp_rate_for_stage(&r, 1), 7.5, 1e-12);
    assert_float_equal(ramp_rate_for_stage(&r, 2), 11.25, 1e-12);
    assert_float_equal(ramp_rate_for_stage(&r, -3), 5, 1e-12);
    /* 5 * 1.5^11 = 432.5 < 600 <= 5 * 1.5^12 */
    assert_float_equal(ramp_rate_for_stage(&r, 11), 5 * pow(1.5, 11), 1e-9);
    assert_float_equal(ramp_rate_for_stage(&r, 12), 600, 0);
    assert_float_equal(ramp_rate_for_stage(&r, 500), 600, 0);
    assert_int_equal(ramp_max_stage(&r), 12);
    assert_int_equal(ramp_max_day(&r), 13);

    /* Exactly reaching max: 5 * 2^7 = 640. */
    r.growth = 2;
    r.max_per_min = 640;
    assert_int_equal(ramp_max_stage(&r), 7);
    assert_float_equal(ramp_rate_for_stage(&r, 6), 320, 1e-12);
    assert_float_equal(ramp_rate_for_stage(&r, 7), 640, 0);

    /* A ramp that cannot climb never reaches a higher max; one that starts at max is there. */
    r.growth = 1;
    assert_int_equal(ramp_max_stage(&r), -1);
    assert_int_equal(ramp_max_day(&r), -1);
    assert_float_equal(ramp_rate_for_stage(&r, 9), 5, 0);
    r.start_per_min = 640;
    assert_int_equal(ramp_max_stage(&r), 0);
    assert_int_equal(ramp_max_day(&r), 1);
}

static void test_ramp_cap_today(void **state)
{
    (void)state;
    struct plan_ramp r = example_ramp();
    assert_int_equal(ramp_cap_today(&r, 0), 500);
    assert_int_equal(ramp_cap_today(&r, 1), 500);
    assert_int_equal(ramp_cap_today(&r, 2), 1000);
    assert_int_equal(ramp_cap_today(&r, 4), 5000);
    assert_int_equal(ramp_cap_today(&r, 5), 5000); /* the last repeats */
    assert_int_equal(ramp_cap_today(&r, 400), 5000);
    int64_t with_zero[] = {100, 0};
    r.daily_cap = with_zero;
    r.n_daily_cap = 2;
    assert_int_equal(ramp_cap_today(&r, 1), 100);
    assert_int_equal(ramp_cap_today(&r, 2), -1);
    assert_int_equal(ramp_cap_today(&r, 9), -1);
    r.daily_cap = NULL;
    r.n_daily_cap = 0;
    assert_int_equal(ramp_cap_today(&r, 1), -1);
}

/* Runs ramp_begin_day from a state at stage with counts; returns the change. */
static enum ramp_change begin(const struct plan_ramp *r, int stage, int64_t attempts,
                              int64_t deferred, int64_t bounced, struct ramp_state *next)
{
    struct ramp_state prev;
    memset(&prev, 0, sizeof prev);
    prev.stage = stage;
    prev.sending_day = 3;
    memcpy(prev.day_date, "2026-06-05", TZ_DATE_MAX);
    prev.rate_per_min = ramp_rate_for_stage(r, stage);
    struct ramp_day_counts c = {.attempts = attempts, .deferred = deferred, .bounced = bounced};
    enum ramp_change why = RAMP_SAME_DAY;
    struct err e;
    assert_int_equal(ramp_begin_day(r, &prev, &c, "2026-06-08", next, &why, &e), IPW_OK);
    assert_int_equal(next->sending_day, 4);
    assert_string_equal(next->day_date, "2026-06-08");
    assert_float_equal(next->rate_per_min, ramp_rate_for_stage(r, next->stage), 0);
    return why;
}

static void test_ramp_begin_day_earned_growth(void **state)
{
    (void)state;
    struct plan_ramp r = example_ramp();
    struct ramp_state n;
    /* Clean: 4.9% deferred, 1.9% bounced. */
    assert_int_equal(begin(&r, 2, 1000, 49, 19, &n), RAMP_GROW);
    assert_int_equal(n.stage, 3);
    assert_float_equal(n.rate_per_min, 16.875, 1e-12);
    /* At the threshold is not under it: hold. */
    assert_int_equal(begin(&r, 2, 1000, 50, 0, &n), RAMP_HOLD);
    assert_int_equal(n.stage, 2);
    assert_int_equal(begin(&r, 2, 1000, 0, 20, &n), RAMP_HOLD);
    assert_int_equal(n.stage, 2);
    /* Just under twice the threshold: still hold. */
    assert_int_equal(begin(&r, 2, 1000, 99, 39, &n), RAMP_HOLD);
    assert_int_equal(n.stage, 2);
    /* Twice the threshold, by deferrals or by bounces: one stage back. */
    assert_int_equal(begin(&r, 2, 1000, 100, 0, &n), RAMP_STEP_BACK);
    assert_int_equal(n.stage, 1);
    assert_float_equal(n.rate_per_min, 7.5, 1e-12);
    assert_int_equal(begin(&r, 2, 1000, 0, 40, &n), RAMP_STEP_BACK);
    assert_int_equal(n.stage, 1);
    assert_int_equal(begin(&r, 2, 10, 9, 9, &n), RAMP_STEP_BACK);
    assert_int_equal(n.stage, 1);
    /* Not below stage 0; not above the first stage at max. */
    assert_int_equal(begin(&r, 0, 1000, 500, 0, &n), RAMP_HOLD);
    assert_int_equal(n.stage, 0);
    assert_int_equal(begin(&r, 12, 1000, 0, 0, &n), RAMP_HOLD);
    assert_int_equal(n.stage, 12);
    assert_float_equal(n.rate_per_min, 600, 0);
    assert_int_equal(begin(&r, 11, 1000, 0, 0, &n), RAMP_GROW);
    assert_int_equal(n.stage, 12);
    assert_float_equal(n.rate_per_min, 600, 0);
    /* A stored stage beyond max (the plan's max was lowered) is brought back to it. */
    assert_int_equal(begin(&r, 30, 1000, 0, 0, &n), RAMP_HOLD);
    assert_int_equal(n.stage, 12);
    /* No attempts: no evidence, growth is not earned. */
    assert_int_equal(begin(&r, 2, 0, 0, 0, &n), RAMP_HOLD);
    assert_int_equal(n.stage, 2);
    /* A 0% threshold never grows, and does not punish a perfect day either. */
    r.deferral_below_pct = 0;
    assert_int_equal(begin(&r, 2, 1000, 0, 0, &n), RAMP_HOLD);
    assert_int_equal(n.stage, 2);
    assert_int_equal(begin(&r, 2, 1000, 1, 0, &n), RAMP_STEP_BACK);
}

/* The complaint gate (advance_if.complaint_rate_below, 0.1%): complaints over delivered. */
static enum ramp_change begin_complaints(const struct plan_ramp *r, int64_t delivered,
                                         int64_t complaints, struct ramp_state *next)
{
    struct ramp_state prev;
    memset(&prev, 0, sizeof prev);
    prev.stage = 2;
    prev.sending_day = 3;
    memcpy(prev.day_date, "2026-06-05", TZ_DATE_MAX);
    prev.rate_per_min = ramp_rate_for_stage(r, 2);
    struct ramp_day_counts c = {
        .attempts = delivered, .delivered = delivered, .complaints = complaints};
    enum ramp_change why = RAMP_SAME_DAY;
    struct err e;
    assert_int_equal(ramp_begin_day(r, &prev, &c, "2026-06-08", next, &why, &e), IPW_OK);
    return why;
}

static void test_ramp_begin_day_complaints(void **state)
{
    (void)state;
    struct plan_ramp r = example_ramp();
    struct ramp_state n;
    /* Without the gate complaints do not matter. */
    assert_int_equal(begin_complaints(&r, 1000, 5, &n), RAMP_GROW);
    r.complaint_below_pct = 0.1;
    r.complaint_gate = true;
    /* 0.09%: grows; 0.1% is not under it: holds; twice it: steps back. */
    assert_int_equal(begin_complaints(&r, 10000, 9, &n), RAMP_GROW);
    assert_int_equal(n.stage, 3);
    assert_int_equal(begin_complaints(&r, 10000, 10, &n), RAMP_HOLD);
    assert_int_equal(n.stage, 2);
    assert_int_equal(begin_complaints(&r, 10000, 19, &n), RAMP_HOLD);
    assert_int_equal(begin_complaints(&r, 10000, 20, &n), RAMP_STEP_BACK);
    assert_int_equal(n.stage, 1);
    /* A day without complaints grows. */
    assert_int_equal(begin_complaints(&r, 10, 0, &n), RAMP_GROW);
    /* One complaint on a small day is far over the line. */
    assert_int_equal(begin_complaints(&r, 8, 1, &n), RAMP_STEP_BACK);
}

/* The placement gate (advance_if.inbox_rate_above, 80%): seed copies found in the inbox over
 * those placed, once every copy of the day is placed. */
static enum ramp_change begin_seeds(const struct plan_ramp *r, int64_t sent, int64_t placed,
                                    int64_t inbox)
{
    struct ramp_state prev, next;
    memset(&prev, 0, sizeof prev);
    prev.stage = 2;
    prev.sending_day = 3;
    memcpy(prev.day_date, "2026-06-05", TZ_DATE_MAX);
    prev.rate_per_min = ramp_rate_for_stage(r, 2);
    struct ramp_day_counts c = {.attempts = 1000,
                                .delivered = 1000,
                                .seed_sent = sent,
                                .seed_placed = placed,
                                .seed_inbox = inbox};
    enum ramp_change why = RAMP_SAME_DAY;
    struct err e;
    assert_int_equal(ramp_begin_day(r, &prev, &c, "2026-06-08", &next, &why, &e), IPW_OK);
    return why;
}

static void test_ramp_begin_day_placement(void **state)
{
    (void)state;
    struct plan_ramp r = example_ramp();
    /* Without the gate placement does not matter. */
    assert_int_equal(begin_seeds(&r, 10, 10, 0), RAMP_GROW);
    r.inbox_above_pct = 80;
    r.inbox_gate = true;
    /* 9 of 10 in the inbox: grows; 8 of 10 is not above 80%: holds; none: holds, no step
     * back (a fall is not a deferral). */
    assert_int_equal(begin_seeds(&r, 10, 10, 9), RAMP_GROW);
    assert_int_equal(begin_seeds(&r, 10, 10, 8), RAMP_HOLD);
    assert_int_equal(begin_seeds(&r, 10, 10, 0), RAMP_HOLD);
    /* A copy not placed yet: the evidence is not in, hold even with the others all inbox. */
    assert_int_equal(begin_seeds(&r, 10, 9, 9), RAMP_HOLD);
    /* Missing copies count against the rate (placed, not in the inbox). */
    assert_int_equal(begin_seeds(&r, 4, 4, 3), RAMP_HOLD);
    /* No seed copy that day (a provider without seeds): not judged on placement. */
    assert_int_equal(begin_seeds(&r, 0, 0, 0), RAMP_GROW);
}

static void test_ramp_begin_day_sending_days(void **state)
{
    (void)state;
    struct plan_ramp r = example_ramp();
    struct ramp_state s;
    memset(&s, 0, sizeof s);
    enum ramp_change why;
    struct err e;
    struct ramp_day_counts clean = {.attempts = 500};

    assert_int_equal(ramp_begin_day(&r, &s, NULL, "2026-06-05", &s, &why, &e), IPW_OK);
    assert_int_equal(why, RAMP_FIRST_DAY);
    assert_int_equal(s.stage, 0);
    assert_int_equal(s.sending_day, 1);
    assert_string_equal(s.day_date, "2026-06-05");
    assert_float_equal(s.rate_per_min, 5, 0);
    assert_int_equal(ramp_cap_today(&r, s.sending_day), 500);

    /* Every later send the same day changes nothing (the counts are not even read). */
    assert_int_equal(ramp_begin_day(&r, &s, NULL, "2026-06-05", &s, &why, &e), IPW_OK);
    assert_int_equal(why, RAMP_SAME_DAY);
    assert_int_equal(s.sending_day, 1);

    /* Friday, then Monday: the weekend is not a sending day and skips no stage. */
    assert_int_equal(ramp_begin_day(&r, &s, &clean, "2026-06-08", &s, &why, &e), IPW_OK);
    assert_int_equal(why, RAMP_GROW);
    assert_int_equal(s.sending_day, 2);
    assert_int_equal(s.stage, 1);
    /* A two-week outage: one more sending day, one more stage. */
    assert_int_equal(ramp_begin_day(&r, &s, &clean, "2026-06-22", &s, &why, &e), IPW_OK);
    assert_int_equal(s.sending_day, 3);
    assert_int_equal(s.stage, 2);
    assert_int_equal(ramp_cap_today(&r, s.sending_day), 2000);

    /* A date before the stored day (the state written with a clock ahead, e.g. a mistaken
     * --now next month) is no dead end: the stage and the sending day stay as they are, the
     * day moves to today, and the day after begins sending day 4 as usual. */
    struct ramp_state before = s;
    assert_int_equal(ramp_begin_day(&r, &before, &clean, "2026-06-21", &s, &why, &e), IPW_OK);
    assert_int_equal(why, RAMP_CLOCK_BACK);
    assert_int_equal(s.stage, before.stage);
    assert_int_equal(s.sending_day, before.sending_day);
    assert_string_equal(s.day_date, "2026-06-21");
    assert_true(s.rate_per_min == before.rate_per_min);
    assert_int_equal(ramp_begin_day(&r, &s, &clean, "2026-06-21", &s, &why, &e), IPW_OK);
    assert_int_equal(why, RAMP_SAME_DAY);
    assert_int_equal(ramp_begin_day(&r, &s, &clean, "2026-06-22", &s, &why, &e), IPW_OK);
    assert_int_equal(why, RAMP_GROW);
    assert_int_equal(s.sending_day, before.sending_day + 1);
    assert_int_equal(s.stage, before.stage + 1);
    /* Not a date: refused, nothing changes. */
    before = s;
    assert_int_equal(ramp_begin_day(&r, &before, &clean, "2026-6-23", &s, &why, &e), IPW_EUSAGE);
    assert_memory_equal(&s, &before, sizeof s);
    assert_string_equal(ramp_change_name(RAMP_STEP_BACK), "step back");
    assert_string_equal(ramp_change_name(RAMP_CLOCK_BACK), "clock back");
}

/* A one-provider plan in zone with one window [start_min, end_min) on days. */
struct test_plan {
    struct plan p;
    struct plan_provider prov;
    struct plan_window win;
};

static void test_plan_init(struct test_plan *t, const char *zone, unsigned days, int start_min,
                           int end_min, const struct plan_ramp *r)
{
    memset(t, 0, sizeof *t);
    t->p.timezone = (char *)zone;
    t->win.start_min = start_min;
    t->win.end_min = end_min;
    t->p.schedule.days = days;
    t->p.schedule.windows = &t->win;
    t->p.schedule.n_windows = 1;
    t->p.ramp = *r;
    t->prov.name = (char *)"gmail";
    t->prov.ramp = *r;
    t->p.providers = &t->prov;
    t->p.n_providers = 1;
}

#define MON_FRI  0x1fu
#define ALL_DAYS 0x7fu

static void test_ramp_simulate_tokyo_weekdays(void **state)
{
    (void)state;
    struct plan_ramp r = example_ramp();
    r.daily_cap = NULL; /* uncapped: the windows decide */
    r.n_daily_cap = 0;
    struct test_plan t;
    test_plan_init(&t, "Asia/Tokyo", MON_FRI, 9 * 60, 18 * 60, &r);
    struct ramp_sim_day d[20];
    struct err e;
    /* 2026-06-05 is a Friday. */
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-06-05", 20, d, &e), IPW_OK);
    const char *dates[] = {"2026-06-05", "2026-06-08", "2026-06-09", "2026-06-10",
                           "2026-06-11", "2026-06-12", "2026-06-15"};
    for (int i = 0; i < 20; i++) {
        assert_int_equal(d[i].day, i + 1);
        if (i < 7)
            assert_string_equal(d[i].date, dates[i]);
        assert_int_equal(d[i].stage, i < 12 ? i : 12);
        double rate = ramp_rate_for_stage(&r, i);
        assert_float_equal(d[i].rate_per_min, rate, 0);
        assert_int_equal(d[i].cap, -1);
        assert_int_equal(d[i].window_ms, 9 * HOUR_MS);
        /* One message every 60/rate s from 09:00, the last before 18:00. */
        assert_int_equal(d[i].planned, (int64_t)ceil(rate * 540 - 1e-9));
        assert_int_equal(d[i].at_max, i + 1 >= ramp_max_day(&r));
    }
    assert_int_equal(d[0].planned, 2700);
    assert_int_equal(d[3].planned, 9113); /* 16.875/min * 540 min = 9112.5 */
    assert_int_equal(d[19].planned, 600 * 540);

    /* With the caps: min(cap, rate * minutes). */
    r = example_ramp();
    test_plan_init(&t, "Asia/Tokyo", MON_FRI, 9 * 60, 18 * 60, &r);
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-06-05", 6, d, &e), IPW_OK);
    const int64_t want[] = {500, 1000, 2000, 5000, 5000, 5000};
    for (int i = 0; i < 6; i++)
        assert_int_equal(d[i].planned, want[i]);
}

static void test_ramp_simulate_all_day_dst(void **state)
{
    (void)state;
    struct plan_ramp r = example_ramp();
    r.daily_cap = NULL;
    r.n_daily_cap = 0;
    struct test_plan t;
    test_plan_init(&t, "America/New_York", ALL_DAYS, 0, 1440, &r);
    struct ramp_sim_day d[3];
    struct err e;
    /* 2026-03-08 is 23 hours long. */
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-03-07", 3, d, &e), IPW_OK);
    assert_string_equal(d[0].date, "2026-03-07");
    assert_int_equal(d[0].window_ms, 24 * HOUR_MS);
    assert_int_equal(d[0].planned, 5 * 1440);
    assert_int_equal(d[1].window_ms, 23 * HOUR_MS);
    assert_int_equal(d[1].planned, 7.5 * 1380);
    assert_int_equal(d[2].planned, 11.25 * 1440);
}

static void test_ramp_simulate_refusals(void **state)
{
    (void)state;
    struct plan_ramp r = example_ramp();
    struct test_plan t;
    test_plan_init(&t, "Asia/Tokyo", MON_FRI, 9 * 60, 18 * 60, &r);
    struct ramp_sim_day d[2];
    struct err e;
    assert_int_equal(ramp_simulate(&t.p, 1, "2026-06-05", 2, d, &e), IPW_EUSAGE);
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-06-31", 2, d, &e), IPW_EUSAGE);
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-06-05", -1, d, &e), IPW_EUSAGE);
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-06-05", 0, d, &e), IPW_OK);
    t.p.schedule.days = 0;
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-06-05", 2, d, &e), IPW_ENOTFOUND);
    t.p.schedule.days = MON_FRI;
    t.p.timezone = (char *)"Mars/Olympus_Mons";
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-06-05", 2, d, &e), IPW_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ramp_rate_for_stage),
        cmocka_unit_test(test_ramp_cap_today),
        cmocka_unit_test(test_ramp_begin_day_earned_growth),
        cmocka_unit_test(test_ramp_begin_day_complaints),
        cmocka_unit_test(test_ramp_begin_day_placement),
        cmocka_unit_test(test_ramp_begin_day_sending_days),
        cmocka_unit_test(test_ramp_simulate_tokyo_weekdays),
        cmocka_unit_test(test_ramp_simulate_all_day_dst),
        cmocka_unit_test(test_ramp_simulate_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
