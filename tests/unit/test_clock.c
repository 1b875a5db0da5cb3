/*
 * test_clock: the injectable clock (clock.c): RFC 3339 parsing and formatting, local time in
 * IANA zones with their offsets (and daylight saving time), and that TZ is left as found.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipwarm/clock.h"
#include "ipwarm/tz.h"

/* 2026-12-01T00:00:00Z in ms since the epoch. */
#define T_2026_12_01 INT64_C(1796083200000)

static int64_t parse_ok(const char *s)
{
    int64_t ms = -1;
    struct err e;
    err_clear(&e);
    ipw_status st = clock_parse_rfc3339(s, &ms, &e);
    if (st != IPW_OK)
        fail_msg("clock_parse_rfc3339(\"%s\") refused: %s", s, e.msg);
    return ms;
}

/* clock_parse_rfc3339: Z, lower case, offsets, fractions. */
static void test_clock_parse_rfc3339_forms(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2026-12-01T00:00:00Z"), T_2026_12_01);
    assert_int_equal(parse_ok("2026-12-01t00:00:00z"), T_2026_12_01);
    assert_int_equal(parse_ok("2026-12-01 00:00:00Z"), T_2026_12_01);
    assert_int_equal(parse_ok("2026-12-01T09:00:00+09:00"), T_2026_12_01);
    assert_int_equal(parse_ok("2026-11-30T19:00:00-05:00"), T_2026_12_01);
    assert_int_equal(parse_ok("2026-12-01T05:30:00+05:30"), T_2026_12_01);
    assert_int_equal(parse_ok("2026-12-01T00:00:00+00:00"), T_2026_12_01);
    assert_int_equal(parse_ok("2026-12-01T00:00:00-00:00"), T_2026_12_01);
    assert_int_equal(parse_ok("2026-12-01T00:00:00.5Z"), T_2026_12_01 + 500);
    assert_int_equal(parse_ok("2026-12-01T00:00:00.123Z"), T_2026_12_01 + 123);
    assert_int_equal(parse_ok("2026-12-01T00:00:00.123999999Z"), T_2026_12_01 + 123);
    assert_int_equal(parse_ok("2026-12-01T09:00:00.250+09:00"), T_2026_12_01 + 250);
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_ok("1969-12-31T23:59:59Z"), -1000);
    assert_int_equal(parse_ok("2024-02-29T12:00:00Z"),
                     tz_days_from_civil(2024, 2, 29) * 86400000 + 12 * 3600000);
    /* A leap second reads as the next second. */
    assert_int_equal(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2017-01-01T00:00:00Z"));
}

/* clock_parse_rfc3339: everything that is not an RFC 3339 date-time is refused. */
static void test_clock_parse_rfc3339_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "now",
        "2026-12-01",
        "2026-12-01T00:00:00",      /* no offset: ambiguous */
        "2026-12-01T00:00Z",        /* no seconds */
        "2026-12-01T00:00:00+0900", /* offset without colon */
        "2026-12-01T00:00:00+9:00",
        "2026-12-01T00:00:00+24:00",
        "2026-12-01T00:00:00+09:60",
        "2026-12-01T00:00:00.Z", /* fraction without digits */
        "2026-12-01T00:00:00ZZ", /* trailing text */
        "2026-12-01T00:00:00Z ",
        " 2026-12-01T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-02-29T00:00:00Z", /* not a leap year */
        "2026-04-31T00:00:00Z",
        "2026-12-00T00:00:00Z",
        "2026-12-01T24:00:00Z",
        "2026-12-01T23:60:00Z",
        "2026-12-01T23:59:61Z",
        "26-12-01T00:00:00Z",
        "2026/12/01T00:00:00Z",
        "2026-12-01X00:00:00Z",
        "+2026-12-01T00:00:00Z",
        "2026-1a-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        struct err e;
        err_clear(&e);
        ipw_status st = clock_parse_rfc3339(bad[i], &ms, &e);
        if (st != IPW_EUSAGE)
            fail_msg("clock_parse_rfc3339(\"%s\") accepted", bad[i]);
        assert_non_null(strstr(e.msg, "RFC 3339"));
        assert_int_equal(ms, 42); /* untouched */
    }
    assert_int_equal(clock_parse_rfc3339(NULL, NULL, NULL), IPW_EUSAGE);
}

/* clock_format_rfc3339_utc: whole seconds without fraction, milliseconds when present, and
 * a round trip through the parser; times before 1970 too. */
static void test_clock_format_rfc3339_utc(void **state)
{
    (void)state;
    char buf[CLOCK_RFC3339_MAX];
    assert_string_equal(clock_format_rfc3339_utc(T_2026_12_01, buf, sizeof buf),
                        "2026-12-01T00:00:00Z");
    assert_string_equal(clock_format_rfc3339_utc(T_2026_12_01 + 123, buf, sizeof buf),
                        "2026-12-01T00:00:00.123Z");
    assert_string_equal(clock_format_rfc3339_utc(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
    assert_string_equal(clock_format_rfc3339_utc(0, buf, sizeof buf), "1970-01-01T00:00:00Z");
    for (int64_t t = -86400000LL * 400; t < 86400000LL * 40000; t += 86400000LL * 7 + 3723001) {
        clock_format_rfc3339_utc(t, buf, sizeof buf);
        assert_int_equal(parse_ok(buf), t);
    }
    char small[10];
    assert_string_equal(clock_format_rfc3339_utc(0, small, sizeof small), "");
}

/* clock_format_rfc3339_local: Tokyo is +09:00 all year; New York is -05:00 in January and
 * -04:00 in July (daylight saving time); UTC is +00:00; an unknown zone falls back to UTC. */
static void test_clock_format_rfc3339_local(void **state)
{
    (void)state;
    char buf[CLOCK_RFC3339_MAX];
    if (!clock_zone_exists("Asia/Tokyo") || !clock_zone_exists("America/New_York"))
        skip(); /* no tzdata on this system */
    assert_string_equal(clock_format_rfc3339_local(T_2026_12_01, "Asia/Tokyo", buf, sizeof buf),
                        "2026-12-01T09:00:00+09:00");
    int64_t jan = parse_ok("2026-01-15T12:00:00Z");
    int64_t jul = parse_ok("2026-07-15T12:00:00Z");
    assert_string_equal(clock_format_rfc3339_local(jan, "America/New_York", buf, sizeof buf),
                        "2026-01-15T07:00:00-05:00");
    assert_string_equal(clock_format_rfc3339_local(jul, "America/New_York", buf, sizeof buf),
                        "2026-07-15T08:00:00-04:00");
    assert_string_equal(clock_format_rfc3339_local(jul + 7, "Asia/Tokyo", buf, sizeof buf),
                        "2026-07-15T21:00:00.007+09:00");
    assert_string_equal(clock_format_rfc3339_local(jan, "UTC", buf, sizeof buf),
                        "2026-01-15T12:00:00+00:00");
    /* Half-hour offsets. */
    if (clock_zone_exists("Asia/Kolkata"))
        assert_string_equal(clock_format_rfc3339_local(jan, "Asia/Kolkata", buf, sizeof buf),
                            "2026-01-15T17:30:00+05:30");
    assert_string_equal(clock_format_rfc3339_local(jan, "Not/AZone", buf, sizeof buf),
                        "2026-01-15T12:00:00Z");
    assert_string_equal(clock_format_rfc3339_local(jan, "../../etc/passwd", buf, sizeof buf),
                        "2026-01-15T12:00:00Z");
    /* Each formatted local time reads back as the same instant. */
    assert_int_equal(parse_ok(clock_format_rfc3339_local(jul, "America/New_York", buf, sizeof buf)),
                     jul);
    assert_int_equal(clock_utc_offset(jul, "Asia/Tokyo"), 9 * 3600);
    assert_int_equal(clock_utc_offset(jan, "America/New_York"), -5 * 3600);
}

/* clock_format_rfc3339_local leaves TZ as it found it, set or unset, and does not depend on it. */
static void test_clock_format_rfc3339_local_restores_tz(void **state)
{
    (void)state;
    char buf[CLOCK_RFC3339_MAX];
    setenv("TZ", "Europe/Berlin", 1);
    assert_string_equal(clock_format_rfc3339_local(T_2026_12_01, "Asia/Tokyo", buf, sizeof buf),
                        "2026-12-01T09:00:00+09:00");
    assert_non_null(getenv("TZ"));
    assert_string_equal(getenv("TZ"), "Europe/Berlin");
    unsetenv("TZ");
    clock_format_rfc3339_local(T_2026_12_01, "Asia/Tokyo", buf, sizeof buf);
    assert_null(getenv("TZ"));
}

/* clock_zone_exists: database names yes; unknown names, paths and empty strings no. */
static void test_clock_zone_exists(void **state)
{
    (void)state;
    assert_true(clock_zone_exists("UTC"));
    assert_false(clock_zone_exists(""));
    assert_false(clock_zone_exists(NULL));
    assert_false(clock_zone_exists("Mars/Olympus_Mons"));
    assert_false(clock_zone_exists("/etc/passwd"));
    assert_false(clock_zone_exists("../zoneinfo/UTC"));
    assert_false(clock_zone_exists("Asia")); /* a directory, not a zone */
}

/* clock_now_ms: real time by default; with --now it starts at the override and runs on. */
static void test_clock_now_override(void **state)
{
    (void)state;
    assert_false(clock_has_override());
    int64_t real = clock_now_ms();
    assert_true(real > T_2026_12_01 - 86400000LL * 365 * 5); /* after 2021 */
    clock_set_override(T_2026_12_01);
    assert_true(clock_has_override());
    int64_t shifted = clock_now_ms();
    /* Upper bounds wide enough for a loaded machine that stops this process for seconds. */
    assert_true(shifted >= T_2026_12_01 && shifted < T_2026_12_01 + 10000);
    struct timespec ts = {0, 30 * 1000000};
    nanosleep(&ts, NULL);
    int64_t later = clock_now_ms();
    assert_true(later >= shifted + 29 && later < shifted + 10000);
    assert_true(clock_real_ms() >= real);
    clock_clear_override();
    assert_false(clock_has_override());
    assert_true(clock_now_ms() >= real);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_parse_rfc3339_forms),
        cmocka_unit_test(test_clock_parse_rfc3339_invalid),
        cmocka_unit_test(test_clock_format_rfc3339_utc),
        cmocka_unit_test(test_clock_format_rfc3339_local),
        cmocka_unit_test(test_clock_format_rfc3339_local_restores_tz),
        cmocka_unit_test(test_clock_zone_exists),
        cmocka_unit_test(test_clock_now_override),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
