/* Unit tests of tz.c: local time, local midnights and DST-length days, date arithmetic, zone
 * refusal, and that the caller's TZ is left as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/tz.h"

#define HOUR_MS (3600 * 1000LL)

/* UTC ms of a civil date and time, independently of tz.c (Hinnant's days_from_civil). */
static int64_t utc(int y, int m, int d, int hh, int mm, int ss)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return ((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000;
}

static int64_t midnight(const char *zone, const char *date)
{
    struct err e;
    int64_t ms = 0;
    assert_int_equal(tz_local_midnight_utc(zone, date, &ms, &e), IPW_OK);
    return ms;
}

static int64_t day_length(const char *zone, const char *date)
{
    char next[TZ_DATE_MAX];
    struct err e;
    assert_int_equal(tz_next_day(date, next, &e), IPW_OK);
    return midnight(zone, next) - midnight(zone, date);
}

static void test_tz_local_tokyo(void **state)
{
    (void)state;
    struct tz_local t;
    struct err e;
    assert_int_equal(tz_local(utc(2026, 3, 8, 0, 0, 0), "Asia/Tokyo", &t, &e), IPW_OK);
    assert_int_equal(t.year, 2026);
    assert_int_equal(t.month, 3);
    assert_int_equal(t.day, 8);
    assert_int_equal(t.hour, 9);
    assert_int_equal(t.minute, 0);
    assert_int_equal(t.second, 0);
    assert_int_equal(t.weekday, 6); /* Sunday */
    assert_int_equal(t.minute_of_day, 540);
    assert_int_equal(t.utc_offset_seconds, 32400);
    assert_string_equal(t.date, "2026-03-08");

    /* 23:59:59.999 UTC is already the next local day in Tokyo. */
    assert_int_equal(tz_local(utc(2026, 11, 30, 23, 59, 59) + 999, "Asia/Tokyo", &t, &e), IPW_OK);
    assert_string_equal(t.date, "2026-12-01");
    assert_int_equal(t.weekday, 1); /* Tuesday */
    assert_int_equal(t.minute_of_day, 8 * 60 + 59);
    assert_int_equal(t.second, 59);

    assert_int_equal(midnight("Asia/Tokyo", "2026-12-01"), utc(2026, 11, 30, 15, 0, 0));
    assert_int_equal(day_length("Asia/Tokyo", "2026-03-08"), 24 * HOUR_MS);
    int64_t ms;
    assert_int_equal(tz_local_to_utc("Asia/Tokyo", "2026-12-01", 9 * 60, &ms, &e), IPW_OK);
    assert_int_equal(ms, utc(2026, 12, 1, 0, 0, 0));
    assert_int_equal(tz_local_to_utc("Asia/Tokyo", "2026-12-01", 1440, &ms, &e), IPW_OK);
    assert_int_equal(ms, midnight("Asia/Tokyo", "2026-12-02"));
}

static void test_tz_local_new_york_spring_forward(void **state)
{
    (void)state;
    const char *ny = "America/New_York";
    struct tz_local t;
    struct err e;
    /* 2026-03-08 02:00 EST becomes 03:00 EDT at 07:00Z. */
    assert_int_equal(tz_local(utc(2026, 3, 8, 6, 59, 59), ny, &t, &e), IPW_OK);
    assert_int_equal(t.utc_offset_seconds, -5 * 3600);
    assert_int_equal(t.hour, 1);
    assert_int_equal(t.minute, 59);
    assert_int_equal(tz_local(utc(2026, 3, 8, 7, 0, 0), ny, &t, &e), IPW_OK);
    assert_int_equal(t.utc_offset_seconds, -4 * 3600);
    assert_int_equal(t.hour, 3);
    assert_int_equal(t.minute_of_day, 180);
    assert_string_equal(t.date, "2026-03-08");
    assert_int_equal(t.weekday, 6);

    assert_int_equal(midnight(ny, "2026-03-08"), utc(2026, 3, 8, 5, 0, 0));
    assert_int_equal(midnight(ny, "2026-03-09"), utc(2026, 3, 9, 4, 0, 0));
    assert_int_equal(day_length(ny, "2026-03-08"), 23 * HOUR_MS);
    assert_int_equal(day_length(ny, "2026-03-07"), 24 * HOUR_MS);

    /* 02:30 does not exist that day: it maps to the instant the clock jumps. */
    int64_t ms;
    assert_int_equal(tz_local_to_utc(ny, "2026-03-08", 150, &ms, &e), IPW_OK);
    assert_int_equal(ms, utc(2026, 3, 8, 7, 0, 0));
    assert_int_equal(tz_local_to_utc(ny, "2026-03-08", 180, &ms, &e), IPW_OK);
    assert_int_equal(ms, utc(2026, 3, 8, 7, 0, 0));
    assert_int_equal(tz_local_to_utc(ny, "2026-03-08", 9 * 60, &ms, &e), IPW_OK);
    assert_int_equal(ms, utc(2026, 3, 8, 13, 0, 0));
}

static void test_tz_local_new_york_fall_back(void **state)
{
    (void)state;
    const char *ny = "America/New_York";
    struct tz_local t;
    struct err e;
    /* 2026-11-01 02:00 EDT becomes 01:00 EST at 06:00Z. */
    assert_int_equal(tz_local(utc(2026, 11, 1, 5, 59, 59), ny, &t, &e), IPW_OK);
    assert_int_equal(t.utc_offset_seconds, -4 * 3600);
    assert_int_equal(t.hour, 1);
    assert_int_equal(tz_local(utc(2026, 11, 1, 6, 0, 0), ny, &t, &e), IPW_OK);
    assert_int_equal(t.utc_offset_seconds, -5 * 3600);
    assert_int_equal(t.hour, 1);
    assert_int_equal(t.minute, 0);

    assert_int_equal(midnight(ny, "2026-11-01"), utc(2026, 11, 1, 4, 0, 0));
    assert_int_equal(day_length(ny, "2026-11-01"), 25 * HOUR_MS);
    assert_int_equal(day_length(ny, "2026-11-02"), 24 * HOUR_MS);

    /* 01:30 happens twice: the first one. */
    int64_t ms;
    assert_int_equal(tz_local_to_utc(ny, "2026-11-01", 90, &ms, &e), IPW_OK);
    assert_int_equal(ms, utc(2026, 11, 1, 5, 30, 0));
    assert_int_equal(tz_local_to_utc(ny, "2026-11-01", 180, &ms, &e), IPW_OK);
    assert_int_equal(ms, utc(2026, 11, 1, 8, 0, 0));
}

/* Beyond the zone file's last transition the footer rule (EST5EDT,M3.2.0,M11.1.0) applies. */
static void test_tz_local_footer_rule_far_future(void **state)
{
    (void)state;
    const char *ny = "America/New_York";
    assert_int_equal(day_length(ny, "2040-03-11"), 23 * HOUR_MS);
    assert_int_equal(day_length(ny, "2040-11-04"), 25 * HOUR_MS);
    assert_int_equal(day_length(ny, "2040-07-04"), 24 * HOUR_MS);
    struct tz_local t;
    struct err e;
    assert_int_equal(tz_local(utc(2040, 7, 4, 16, 0, 0), ny, &t, &e), IPW_OK);
    assert_int_equal(t.utc_offset_seconds, -4 * 3600);
    assert_int_equal(t.hour, 12);
    /* Europe/Berlin: last Sunday of March. */
    assert_int_equal(day_length("Europe/Berlin", "2026-03-29"), 23 * HOUR_MS);
    assert_int_equal(day_length("Europe/Berlin", "2026-10-25"), 25 * HOUR_MS);
}

/* Chile moves its clocks at midnight: 2026-09-06 00:00 never happens, the day starts at 01:00. */
static void test_tz_local_midnight_skipped(void **state)
{
    (void)state;
    const char *cl = "America/Santiago";
    assert_int_equal(midnight(cl, "2026-09-06"), utc(2026, 9, 6, 4, 0, 0));
    assert_int_equal(day_length(cl, "2026-09-05"), 24 * HOUR_MS);
    assert_int_equal(day_length(cl, "2026-09-06"), 23 * HOUR_MS);
    struct tz_local t;
    struct err e;
    assert_int_equal(tz_local(utc(2026, 9, 6, 4, 0, 0), cl, &t, &e), IPW_OK);
    assert_string_equal(t.date, "2026-09-06");
    assert_int_equal(t.hour, 1);
    assert_int_equal(tz_local(utc(2026, 9, 6, 4, 0, 0) - 1, cl, &t, &e), IPW_OK);
    assert_string_equal(t.date, "2026-09-05");
}

static void test_tz_local_utc(void **state)
{
    (void)state;
    struct tz_local t;
    struct err e;
    assert_int_equal(tz_local(utc(2026, 6, 1, 12, 34, 56) + 789, "UTC", &t, &e), IPW_OK);
    assert_string_equal(t.date, "2026-06-01");
    assert_int_equal(t.hour, 12);
    assert_int_equal(t.minute, 34);
    assert_int_equal(t.second, 56);
    assert_int_equal(t.weekday, 0);
    assert_int_equal(t.utc_offset_seconds, 0);
    assert_int_equal(midnight("UTC", "2026-06-01"), utc(2026, 6, 1, 0, 0, 0));
    assert_int_equal(day_length("UTC", "2026-06-01"), 24 * HOUR_MS);
    /* Before 1970 too. */
    assert_int_equal(tz_local(utc(1969, 12, 31, 23, 59, 59), "UTC", &t, &e), IPW_OK);
    assert_string_equal(t.date, "1969-12-31");
    assert_int_equal(t.weekday, 2);
}

static void test_tz_zone_check_refuses_unknown(void **state)
{
    (void)state;
    const char *bad[] = {"Mars/Olympus_Mons",  "",         "/etc/passwd", "../../etc/passwd",
                         "Asia/../Asia/Tokyo", "zone.tab", "Asia"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err e;
        struct tz_local t;
        int64_t ms = 42;
        assert_int_equal(tz_zone_check(bad[i], &e), IPW_ECONFIG);
        assert_non_null(strstr(e.msg, "unknown time zone"));
        assert_int_equal(tz_local(0, bad[i], &t, &e), IPW_ECONFIG);
        assert_int_equal(tz_local_midnight_utc(bad[i], "2026-01-01", &ms, &e), IPW_ECONFIG);
        assert_int_equal(ms, 42);
    }
    struct err e;
    assert_int_equal(tz_zone_check(NULL, &e), IPW_ECONFIG);
    assert_int_equal(tz_zone_check("Asia/Tokyo", &e), IPW_OK);
    assert_int_equal(tz_zone_check("UTC", &e), IPW_OK);
}

static void test_tz_restores_caller_tz(void **state)
{
    (void)state;
    struct tz_local t;
    struct err e;
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;

    setenv("TZ", "Europe/Paris", 1);
    assert_int_equal(tz_local(0, "Asia/Tokyo", &t, &e), IPW_OK);
    assert_string_equal(getenv("TZ"), "Europe/Paris");
    unsetenv("TZ");
    int64_t ms;
    assert_int_equal(tz_local_midnight_utc("America/New_York", "2026-03-08", &ms, &e), IPW_OK);
    assert_null(getenv("TZ"));
    /* The process's own zone does not leak into the answer. */
    setenv("TZ", "Pacific/Kiritimati", 1);
    assert_int_equal(tz_local(utc(2026, 3, 8, 0, 0, 0), "Asia/Tokyo", &t, &e), IPW_OK);
    assert_int_equal(t.hour, 9);
    assert_int_equal(tz_local(utc(2026, 3, 8, 0, 0, 0), "UTC", &t, &e), IPW_OK);
    assert_int_equal(t.hour, 0);

    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    free(saved);
}

static void test_tz_dates(void **state)
{
    (void)state;
    char out[TZ_DATE_MAX];
    struct err e;
    assert_int_equal(tz_next_day("2026-12-31", out, &e), IPW_OK);
    assert_string_equal(out, "2027-01-01");
    assert_int_equal(tz_next_day("2028-02-28", out, &e), IPW_OK);
    assert_string_equal(out, "2028-02-29");
    assert_int_equal(tz_next_day("2026-02-28", out, &e), IPW_OK);
    assert_string_equal(out, "2026-03-01");
    assert_int_equal(tz_date_add("2026-03-01", -1, out, &e), IPW_OK);
    assert_string_equal(out, "2026-02-28");
    assert_int_equal(tz_date_add("2026-01-05", 30, out, &e), IPW_OK);
    assert_string_equal(out, "2026-02-04");
    assert_int_equal(tz_next_day("9999-12-31", out, &e), IPW_EUSAGE);

    assert_int_equal(tz_date_weekday("2026-01-05"), 0);
    assert_int_equal(tz_date_weekday("2026-03-08"), 6);
    assert_int_equal(tz_date_weekday("2026-12-01"), 1);
    assert_int_equal(tz_date_weekday("1970-01-01"), 3);

    const char *bad[] = {"2026-02-29", "2026-13-01",  "2026-00-10", "2026-1-01",  "26-01-01",
                         "2026/01/01", "2026-01-01x", "",           "0000-01-01", "2026-04-31"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int y, m, d;
        assert_false(tz_date_parse(bad[i], &y, &m, &d));
        assert_int_equal(tz_date_weekday(bad[i]), -1);
        assert_int_equal(tz_next_day(bad[i], out, &e), IPW_EUSAGE);
        int64_t ms;
        assert_int_equal(tz_local_midnight_utc("UTC", bad[i], &ms, &e), IPW_EUSAGE);
    }
    int64_t ms;
    assert_int_equal(tz_local_to_utc("UTC", "2026-01-01", 1441, &ms, &e), IPW_EUSAGE);
    assert_int_equal(tz_local_to_utc("UTC", "2026-01-01", -1, &ms, &e), IPW_EUSAGE);
}

/* tz_days_from_civil / tz_civil_from_days: known dates and a round trip. */
static void test_tz_days_from_civil(void **state)
{
    (void)state;
    assert_int_equal(tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(tz_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(tz_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(tz_days_from_civil(2026, 12, 1) * 86400000,
                     INT64_C(1796083200000) /* 2026-12-01T00:00:00Z */);
    for (int64_t d = -800000; d < 800000; d += 997) {
        int64_t y;
        int m, day;
        tz_civil_from_days(d, &y, &m, &day);
        assert_int_equal(tz_days_from_civil(y, m, day), d);
    }
}

/* tz_days_in_month: the Gregorian leap rule (every 4th year, not every 100th, every 400th). */
static void test_tz_days_in_month(void **state)
{
    (void)state;
    assert_int_equal(tz_days_in_month(2026, 1), 31);
    assert_int_equal(tz_days_in_month(2026, 4), 30);
    assert_int_equal(tz_days_in_month(2026, 2), 28);
    assert_int_equal(tz_days_in_month(2024, 2), 29);
    assert_int_equal(tz_days_in_month(1900, 2), 28);
    assert_int_equal(tz_days_in_month(2000, 2), 29);
    assert_int_equal(tz_days_in_month(2026, 12), 31);
}

/* tz_floor_div: rounds towards minus infinity, so instants before 1970 fall on the right day. */
static void test_tz_floor_div(void **state)
{
    (void)state;
    assert_int_equal(tz_floor_div(7, 2), 3);
    assert_int_equal(tz_floor_div(-7, 2), -4);
    assert_int_equal(tz_floor_div(-1000, 1000), -1);
    assert_int_equal(tz_floor_div(-1, 86400), -1);
    assert_int_equal(tz_floor_div(0, 86400), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tz_local_tokyo),
        cmocka_unit_test(test_tz_local_new_york_spring_forward),
        cmocka_unit_test(test_tz_local_new_york_fall_back),
        cmocka_unit_test(test_tz_local_footer_rule_far_future),
        cmocka_unit_test(test_tz_local_midnight_skipped),
        cmocka_unit_test(test_tz_local_utc),
        cmocka_unit_test(test_tz_zone_check_refuses_unknown),
        cmocka_unit_test(test_tz_restores_caller_tz),
        cmocka_unit_test(test_tz_dates),
        cmocka_unit_test(test_tz_days_from_civil),
        cmocka_unit_test(test_tz_days_in_month),
        cmocka_unit_test(test_tz_floor_div),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
