/* Unit tests of simulate_pool.c: a pool of three IPs at one provider, one joining on a later
 * date, projected each on its own; the provider's day is the pool's sum. Plans are built by
 * hand (UTC, one window 09:00-10:00 on weekdays), and every expected number is worked out here
 * from the ramp's definition: rate of stage k = min(start * growth^k, max), a 60-minute window
 * at r per minute plans ceil(60 r) messages, bounded by the sending day's cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/simulate_pool.h"

static int64_t caps[] = {50, 100};

struct test_pool {
    struct plan p;
    struct plan_provider prov;
    struct plan_window win;
    char *ips[3];
    char *starts[3];
};

/* start 1/min, x2, max 4/min; caps 50 then 100 a day; weekdays 09:00-10:00 UTC. */
static void test_pool_init(struct test_pool *t, const char *late_start)
{
    memset(t, 0, sizeof *t);
    struct plan_ramp r;
    memset(&r, 0, sizeof r);
    r.start_per_min = 1;
    r.growth = 2;
    r.max_per_min = 4;
    r.daily_cap = caps;
    r.n_daily_cap = 2;
    t->p.timezone = (char *)"UTC";
    t->win.start_min = 9 * 60;
    t->win.end_min = 10 * 60;
    t->p.schedule.days = 0x1fu;
    t->p.schedule.windows = &t->win;
    t->p.schedule.n_windows = 1;
    t->p.ramp = r;
    t->prov.name = (char *)"gmail";
    t->prov.ramp = r;
    t->p.providers = &t->prov;
    t->p.n_providers = 1;
    t->ips[0] = (char *)"192.0.2.10";
    t->ips[1] = (char *)"192.0.2.11";
    t->ips[2] = (char *)"192.0.2.12";
    t->p.source_ips = t->ips;
    t->p.n_source_ips = 3;
    if (late_start) {
        t->starts[2] = (char *)late_start;
        t->p.source_start_dates = t->starts;
    }
}

/* What one IP plans on its own sending day n (1-based): min(cap, ceil(60 * rate)). */
static int64_t own_planned(int n)
{
    double rate = fmin(pow(2, n - 1), 4);
    int64_t cap = n == 1 ? 50 : 100;
    int64_t w = (int64_t)ceil(60 * rate - 1e-9);
    return w < cap ? w : cap;
}

static void test_pool_late_join(void **state)
{
    (void)state;
    struct test_pool t;
    /* 2026-06-05 is a Friday: sending days 06-05, 06-08, 06-09, 06-10, 06-11, 06-12. The third
     * IP joins on Tuesday 06-09, the third projected day. */
    test_pool_init(&t, "2026-06-09");
    assert_true(simulate_pool_active(&t.p));
    enum { DAYS = 6 };
    struct ramp_sim_day d[DAYS];
    struct simulate_pool_ip ips[3 * DAYS];
    struct err e;
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-06-05", DAYS, d, &e), IPW_OK);
    assert_int_equal(simulate_pool_project(&t.p, 0, "2026-06-05", DAYS, d, ips, &e), IPW_OK);
    const char *dates[DAYS] = {"2026-06-05", "2026-06-08", "2026-06-09",
                               "2026-06-10", "2026-06-11", "2026-06-12"};
    for (int i = 0; i < DAYS; i++) {
        assert_string_equal(d[i].date, dates[i]);
        int64_t sum = 0;
        double rate = 0;
        for (int k = 0; k < 3; k++) {
            const struct simulate_pool_ip *o = &ips[k * DAYS + i];
            /* The first two from day 1; the third from day 3, on its own sending day 1. */
            int n = k < 2 ? i + 1 : i - 1;
            if (n < 1) {
                assert_false(o->joined);
                assert_int_equal(o->planned, 0);
                assert_float_equal(o->rate_per_min, 0, 0);
                continue;
            }
            assert_true(o->joined);
            assert_int_equal(o->stage, n - 1 < 2 ? n - 1 : 2);
            assert_float_equal(o->rate_per_min, fmin(pow(2, n - 1), 4), 1e-9);
            assert_int_equal(o->cap, n == 1 ? 50 : 100);
            assert_int_equal(o->planned, own_planned(n));
            sum += own_planned(n);
            rate += fmin(pow(2, n - 1), 4);
        }
        assert_int_equal(d[i].planned, sum);
        assert_float_equal(d[i].rate_per_min, rate, 1e-9);
    }
    /* Day 3: the two first IPs at 4/min (stage 2), capped at 100 (ceil(240) > 100), and the
     * newcomer at 1/min, 50 (its first day's cap; 60 in the window). */
    assert_int_equal(d[2].planned, 100 + 100 + 50);
    assert_int_equal(d[2].cap, 100 + 100 + 50);
    assert_int_equal(d[2].stage, 2);
    /* Day 1: the newcomer has not joined: the provider gets the two others only. */
    assert_int_equal(d[0].planned, 50 + 50);
    assert_int_equal(d[0].cap, 100);
    /* The pool is at its max once the newcomer is: its own day 3 is the projection's day 5. */
    assert_false(d[3].at_max);
    assert_true(d[4].at_max);
}

static void test_pool_not_active_and_past_start(void **state)
{
    (void)state;
    struct test_pool t;
    test_pool_init(&t, NULL);
    t.p.n_source_ips = 1;
    assert_false(simulate_pool_active(&t.p));
    /* A start date already past: the IP is projected from the start like the others. */
    test_pool_init(&t, "2026-01-01");
    enum { DAYS = 2 };
    struct ramp_sim_day d[DAYS];
    struct simulate_pool_ip ips[3 * DAYS];
    struct err e;
    assert_int_equal(ramp_simulate(&t.p, 0, "2026-06-05", DAYS, d, &e), IPW_OK);
    assert_int_equal(simulate_pool_project(&t.p, 0, "2026-06-05", DAYS, d, ips, &e), IPW_OK);
    for (int k = 0; k < 3; k++) {
        assert_true(ips[k * DAYS].joined);
        assert_int_equal(ips[k * DAYS].planned, 50);
        assert_int_equal(ips[k * DAYS + 1].planned, 100);
    }
    assert_int_equal(d[1].planned, 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_late_join),
        cmocka_unit_test(test_pool_not_active_and_past_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
