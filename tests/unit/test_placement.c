/*
 * placement: the pure parts. The sharp fall (placement_fall: under half of inbox_rate_above,
 * once enough copies are placed), the throttle's rate and reason, the inbox rate of a row and
 * the providers' junk folders. Reading the seeds runs against a real Dovecot in
 * tests/cli/test_placement.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "ipwarm/placement.h"
#include "ipwarm/ramp.h"

static void test_fall(void **state)
{
    (void)state;
    struct plan_ramp r = {.inbox_gate = true, .inbox_above_pct = 70};
    struct plan_placement pl = {.fall_min_placed = 5, .fall_for_ms = 86400000};
    double rate = -1;
    /* 4 of 20 is 20%: under 35%, half of 70%. */
    assert_true(placement_fall(&r, &pl, 4, 20, &rate));
    assert_float_equal(rate, 20, 1e-9);
    /* 7 of 20 is 35%, exactly half: not under it (a fall, not a poor day). */
    assert_false(placement_fall(&r, &pl, 7, 20, &rate));
    assert_float_equal(rate, 35, 1e-9);
    assert_true(placement_fall(&r, &pl, 6, 20, NULL));
    /* A poor day above half holds the ramp (ramp.c) but is no fall. */
    assert_false(placement_fall(&r, &pl, 12, 20, NULL));
    /* One copy does not decide: 0 of 4 placed with min_placed 5 is no fall, 0 of 5 is. */
    assert_false(placement_fall(&r, &pl, 0, 4, &rate));
    assert_float_equal(rate, 0, 0);
    assert_true(placement_fall(&r, &pl, 0, 5, NULL));
    /* Nothing placed: nothing to judge, even with min_placed 1 (or 0 from a zeroed struct). */
    pl.fall_min_placed = 0;
    assert_false(placement_fall(&r, &pl, 0, 0, &rate));
    pl.fall_min_placed = 1;
    assert_true(placement_fall(&r, &pl, 0, 1, NULL));
    /* Without the gate there is no threshold to fall below. */
    r.inbox_gate = false;
    assert_false(placement_fall(&r, &pl, 0, 20, NULL));
}

static void test_fall_rate(void **state)
{
    (void)state;
    struct plan_backoff b = {.factor = 0.5};
    assert_float_equal(placement_fall_rate(20, &b), 10, 1e-9);
    /* As a deferral's cut, never under 1/min. */
    assert_float_equal(placement_fall_rate(1.5, &b), 1, 1e-9);
    b.factor = 0.25;
    assert_float_equal(placement_fall_rate(600, &b), 150, 1e-9);
}

static void test_fall_reason(void **state)
{
    (void)state;
    char buf[256];
    placement_fall_reason(buf, sizeof buf, "2026-12-04", 4, 20, 70);
    assert_string_equal(buf, "inbox rate 20% on 2026-12-04 (4 of 20 seed copies), below half of "
                             "inbox_rate_above 70%");
    placement_fall_reason(buf, sizeof buf, "2026-12-05", 1, 6, 62.5);
    assert_string_equal(buf, "inbox rate 16.7% on 2026-12-05 (1 of 6 seed copies), below half of "
                             "inbox_rate_above 62.5%");
    /* Cut to the room there is, still terminated. */
    char small[12];
    placement_fall_reason(small, sizeof small, "2026-12-04", 4, 20, 70);
    assert_string_equal(small, "inbox rate ");
}

static void test_inbox_rate(void **state)
{
    (void)state;
    struct placement_row r;
    memset(&r, 0, sizeof r);
    r.sent = 5;
    /* Nothing placed: no rate (-1), not 0%. */
    assert_float_equal(placement_inbox_rate(&r), -1, 0);
    /* Pending copies do not count; missing ones count against the inbox. */
    r.inbox = 2;
    r.junk = 1;
    r.missing = 1;
    assert_float_equal(placement_inbox_rate(&r), 50, 1e-9);
}

static void test_junk_default(void **state)
{
    (void)state;
    assert_string_equal(placement_junk_default("gmail"), "[Gmail]/Spam");
    assert_string_equal(placement_junk_default("Outlook"), "Junk Email");
    assert_string_equal(placement_junk_default("yahoo"), "Bulk");
    assert_string_equal(placement_junk_default("aol"), "Bulk");
    assert_null(placement_junk_default("other"));
    assert_null(placement_junk_default(NULL));
}

static void test_gate_why(void **state)
{
    (void)state;
    struct plan_ramp r = {.inbox_gate = true, .inbox_above_pct = 70};
    struct ramp_day_counts c = {.attempts = 10, .delivered = 10};
    char buf[512];
    /* No seed copy that day: placement does not judge it. */
    assert_false(placement_gate_why(&r, &c, "2026-12-04", RAMP_GROW, 3, buf, sizeof buf));
    assert_string_equal(buf, "");
    c.seed_sent = 10;
    c.seed_placed = 10;
    c.seed_inbox = 4;
    assert_true(placement_gate_why(&r, &c, "2026-12-04", RAMP_HOLD, 2, buf, sizeof buf));
    assert_string_equal(buf, "holds at stage 2: inbox rate 40% on 2026-12-04 (4 of 10 seed "
                             "copies) not above inbox_rate_above 70%");
    /* Exactly the threshold is not above it. */
    c.seed_inbox = 7;
    assert_true(placement_gate_why(&r, &c, "2026-12-04", RAMP_HOLD, 2, buf, sizeof buf));
    c.seed_inbox = 10;
    assert_false(placement_gate_why(&r, &c, "2026-12-04", RAMP_GROW, 3, buf, sizeof buf));
    assert_string_equal(buf, "grows to stage 3: inbox rate 100% on 2026-12-04 (10 of 10 seed "
                             "copies) above inbox_rate_above 70%");
    /* Good placement, held for another reason: said so. */
    assert_false(placement_gate_why(&r, &c, "2026-12-04", RAMP_HOLD, 2, buf, sizeof buf));
    assert_non_null(strstr(buf, "above inbox_rate_above 70% (another advance_if rate"));
    /* Not all placed yet: holds, whatever the rate so far. */
    c.seed_placed = 9;
    c.seed_inbox = 9;
    assert_true(placement_gate_why(&r, &c, "2026-12-04", RAMP_HOLD, 2, buf, sizeof buf));
    assert_string_equal(buf, "holds at stage 2: placement on 2026-12-04 not all known yet (9 of "
                             "10 seed copies placed)");
    c.seed_placed = 10;
    c.seed_inbox = 1;
    assert_true(placement_gate_why(&r, &c, "2026-12-04", RAMP_STEP_BACK, 1, buf, sizeof buf));
    assert_string_equal(buf, "steps back to stage 1: inbox rate 10% on 2026-12-04 (1 of 10 seed "
                             "copies) not above inbox_rate_above 70%");
    r.inbox_gate = false;
    assert_false(placement_gate_why(&r, &c, "2026-12-04", RAMP_HOLD, 2, buf, sizeof buf));
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fall),         cmocka_unit_test(test_fall_rate),
        cmocka_unit_test(test_fall_reason),  cmocka_unit_test(test_inbox_rate),
        cmocka_unit_test(test_junk_default), cmocka_unit_test(test_gate_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
