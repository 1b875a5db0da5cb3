/* Unit tests of units.c: rates, durations, percentages, triggers and their formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ipwarm/units.h"

static void test_units_parse_rate_units(void **state)
{
    (void)state;
    struct err e;
    double r = 0;
    assert_int_equal(units_parse_rate("5/min", &r, &e), IPW_OK);
    assert_float_equal(r, 5.0, 1e-12);
    assert_int_equal(units_parse_rate("300/h", &r, &e), IPW_OK);
    assert_float_equal(r, 5.0, 1e-12);
    assert_int_equal(units_parse_rate("2880/day", &r, &e), IPW_OK);
    assert_float_equal(r, 2.0, 1e-12);
    assert_int_equal(units_parse_rate("2/s", &r, &e), IPW_OK);
    assert_float_equal(r, 120.0, 1e-12);
    assert_int_equal(units_parse_rate(" 0.5 / m ", &r, &e), IPW_OK);
    assert_float_equal(r, 0.5, 1e-12);
    assert_int_equal(units_parse_rate("10/HOUR", &r, &e), IPW_OK);
    assert_float_equal(r, 10.0 / 60, 1e-12);
}

static void test_units_parse_rate_refusals(void **state)
{
    (void)state;
    const char *bad[] = {"5",           "5/",       "/min", "5/week",  "-5/min",
                         "5/min extra", "five/min", "",     "1e3/min", "0x10/min"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err e;
        double r = -1;
        assert_int_equal(units_parse_rate(bad[i], &r, &e), IPW_ECONFIG);
        assert_non_null(strstr(e.msg, "expected a rate"));
        assert_float_equal(r, -1, 0);
    }
    struct err e;
    double r;
    assert_int_equal(units_parse_rate("0/min", &r, &e), IPW_ECONFIG);
    assert_string_equal(e.msg, "expected a rate > 0, found \"0/min\"");
    assert_int_equal(units_parse_rate("5/week", &r, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "found \"5/week\""));
}

static void test_units_parse_duration(void **state)
{
    (void)state;
    struct err e;
    int64_t ms = -1;
    assert_int_equal(units_parse_duration("30s", &ms, &e), IPW_OK);
    assert_int_equal(ms, 30000);
    assert_int_equal(units_parse_duration("15m", &ms, &e), IPW_OK);
    assert_int_equal(ms, 900000);
    assert_int_equal(units_parse_duration("2h", &ms, &e), IPW_OK);
    assert_int_equal(ms, 7200000);
    assert_int_equal(units_parse_duration("3d", &ms, &e), IPW_OK);
    assert_int_equal(ms, 259200000);
    assert_int_equal(units_parse_duration("1w", &ms, &e), IPW_OK);
    assert_int_equal(ms, 604800000);
    assert_int_equal(units_parse_duration("500ms", &ms, &e), IPW_OK);
    assert_int_equal(ms, 500);
    assert_int_equal(units_parse_duration("1h30m", &ms, &e), IPW_OK);
    assert_int_equal(ms, 5400000);
    assert_int_equal(units_parse_duration("1h 30m 15s", &ms, &e), IPW_OK);
    assert_int_equal(ms, 5415000);
    assert_int_equal(units_parse_duration("1.5h", &ms, &e), IPW_OK);
    assert_int_equal(ms, 5400000);
    assert_int_equal(units_parse_duration("0s", &ms, &e), IPW_OK);
    assert_int_equal(ms, 0);
}

static void test_units_parse_duration_refusals(void **state)
{
    (void)state;
    const char *bad[] = {"30", "", "15 minutes", "2x", "h", "-5m", "5m-", "1y", "99999999d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err e;
        int64_t ms = -7;
        assert_int_equal(units_parse_duration(bad[i], &ms, &e), IPW_ECONFIG);
        assert_non_null(strstr(e.msg, "expected a duration"));
        assert_int_equal(ms, -7);
    }
    struct err e;
    int64_t ms;
    assert_int_equal(units_parse_duration("30", &ms, &e), IPW_ECONFIG);
    assert_string_equal(e.msg,
                        "expected a duration such as 30s, 15m, 2h or 3d, found \"30\" (a number "
                        "needs a unit)");
}

static void test_units_parse_percent(void **state)
{
    (void)state;
    struct err e;
    double p = -1;
    assert_int_equal(units_parse_percent("5%", &p, &e), IPW_OK);
    assert_float_equal(p, 5, 1e-12);
    assert_int_equal(units_parse_percent("0.3 %", &p, &e), IPW_OK);
    assert_float_equal(p, 0.3, 1e-12);
    assert_int_equal(units_parse_percent("100%", &p, &e), IPW_OK);
    assert_float_equal(p, 100, 1e-12);
    assert_int_equal(units_parse_percent("0%", &p, &e), IPW_OK);
    assert_float_equal(p, 0, 1e-12);
    const char *bad[] = {"5", "101%", "-1%", "%", "5%%", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(units_parse_percent(bad[i], &p, &e), IPW_ECONFIG);
        assert_non_null(strstr(e.msg, "expected a percentage from 0% to 100%"));
    }
}

static void test_units_parse_trigger(void **state)
{
    (void)state;
    struct err e;
    int n = 0;
    int64_t period = -1;
    assert_int_equal(units_parse_trigger("immediately", &n, &period, &e), IPW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(period, 0);
    assert_int_equal(units_parse_trigger("3/1h", &n, &period, &e), IPW_OK);
    assert_int_equal(n, 3);
    assert_int_equal(period, 3600000);
    assert_int_equal(units_parse_trigger("5/h", &n, &period, &e), IPW_OK);
    assert_int_equal(n, 5);
    assert_int_equal(period, 3600000);
    assert_int_equal(units_parse_trigger("2/30m", &n, &period, &e), IPW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(period, 1800000);
    const char *bad[] = {"now", "0/1h", "1.5/1h", "3/", "3/0s", "3", "3/1y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(units_parse_trigger(bad[i], &n, &period, &e), IPW_ECONFIG);
        assert_non_null(strstr(e.msg, "expected \"immediately\" or N/PERIOD"));
    }
}

static void test_units_format(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(units_format_rate(buf, sizeof buf, 5), "5/min");
    assert_string_equal(units_format_rate(buf, sizeof buf, 7.5), "7.5/min");
    assert_string_equal(units_format_rate(buf, sizeof buf, 0.5), "30/h");
    assert_string_equal(units_format_duration(buf, sizeof buf, 0), "0s");
    assert_string_equal(units_format_duration(buf, sizeof buf, 900000), "15m");
    assert_string_equal(units_format_duration(buf, sizeof buf, 5400000), "1h30m");
    assert_string_equal(units_format_duration(buf, sizeof buf, 259200000), "3d");
    assert_string_equal(units_format_duration(buf, sizeof buf, 1500), "1s500ms");
    /* Round trip: what is printed parses back to the same value. */
    struct err e;
    int64_t ms;
    assert_int_equal(
        units_parse_duration(units_format_duration(buf, sizeof buf, 97445123), &ms, &e), IPW_OK);
    assert_int_equal(ms, 97445123);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_parse_rate_units),
        cmocka_unit_test(test_units_parse_rate_refusals),
        cmocka_unit_test(test_units_parse_duration),
        cmocka_unit_test(test_units_parse_duration_refusals),
        cmocka_unit_test(test_units_parse_percent),
        cmocka_unit_test(test_units_parse_trigger),
        cmocka_unit_test(test_units_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
