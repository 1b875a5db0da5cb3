/*
 * returns: the decision of feedback.complaints (returns_complaints_cross), a pure function of
 * the plan's thresholds and a provider's counts. The mailbox reading itself runs against a real
 * Dovecot in tests/cli/test_feedback_poll.sh and test_feedback_days.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ipwarm/returns.h"

static void test_complaints_cross(void **state)
{
    (void)state;
    struct plan_feedback f = {
        .enabled = true, .complaint_rate_above_pct = 0.3, .complaint_min_delivered = 300};
    double rate = -1;
    /* Under min_delivered nothing crosses, however high the rate. */
    assert_false(returns_complaints_cross(&f, 299, 50, &rate));
    assert_float_equal(rate, 100.0 * 50 / 299, 1e-9);
    /* 1 in 300 is 0.333%: above 0.3%. */
    assert_true(returns_complaints_cross(&f, 300, 1, &rate));
    assert_float_equal(rate, 100.0 / 300, 1e-9);
    /* 3 in 1000 is exactly the line: not above it. */
    assert_false(returns_complaints_cross(&f, 1000, 3, &rate));
    assert_true(returns_complaints_cross(&f, 1000, 4, NULL));
    /* No complaints, or nothing delivered: nothing to act on. */
    assert_false(returns_complaints_cross(&f, 100000, 0, &rate));
    assert_float_equal(rate, 0, 0);
    assert_false(returns_complaints_cross(&f, 0, 5, &rate));
    f.complaint_min_delivered = 1;
    assert_true(returns_complaints_cross(&f, 1, 1, &rate));
    assert_float_equal(rate, 100, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complaints_cross),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
