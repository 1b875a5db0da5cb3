/*
 * tz: local time in the plan's IANA time zone, for the scheduler's windows, days and caps.
 *
 * ipwarm stores and compares UTC milliseconds; the plan speaks in local wall-clock time
 * ("09:00-18:00", "mon-fri", a daily cap that resets at midnight). This module converts between
 * the two for one zone at a time, deterministically: the answer depends only on the arguments
 * and the system's time zone database ($TZDIR or /usr/share/zoneinfo), never on the process's
 * own TZ or the machine's local zone. Local days may be 23 or 25 hours long; the functions that
 * turn a local date and time into UTC say what they do with times that a DST change skips or
 * repeats.
 *
 * Dates are "YYYY-MM-DD" strings (TZ_DATE_MAX bytes with the NUL), which also sort in time order
 * with strcmp(). Weekdays count 0 = Monday ... 6 = Sunday, as plan_schedule.days does.
 */
#ifndef IPWARM_TZ_H
#define IPWARM_TZ_H

#include <stdbool.h>
#include <stdint.h>

#include "ipwarm/err.h"

/* "YYYY-MM-DD" and its NUL. */
#define TZ_DATE_MAX 11

struct tz_local {
    int year;
    int month;              /* 1..12 */
    int day;                /* 1..31 */
    int hour;               /* 0..23 */
    int minute;             /* 0..59 */
    int second;             /* 0..59 (a leap second never shows: ipwarm's clock has none) */
    int weekday;            /* 0 = Monday ... 6 = Sunday */
    int minute_of_day;      /* hour * 60 + minute */
    int utc_offset_seconds; /* east of Greenwich: Tokyo 32400, New York -18000 or -14400 */
    char date[TZ_DATE_MAX]; /* "YYYY-MM-DD" */
};

/* Days since 1970-01-01 of a proleptic Gregorian date, and back; exact for any int year
 * (Howard Hinnant's days_from_civil and civil_from_days). The one place ipwarm does calendar
 * arithmetic: clock.c formats and parses RFC 3339 with these. */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Days in month m (1-12) of year y, proleptic Gregorian. */
int tz_days_in_month(int64_t y, int m);
/* a / b rounded towards minus infinity (b > 0), so that times before 1970 split into days
 * and seconds correctly. */
int64_t tz_floor_div(int64_t a, int64_t b);

/*
 * Checks that zone names a zone of the database: "UTC", or a TZif file below the database
 * directory (no absolute paths, no "..", not the leap-second "right/" zones, whose clocks count
 * seconds that ipwarm's UTC milliseconds do not). Returns IPW_OK, or IPW_ECONFIG with
 * "unknown time zone \"...\": ...".
 */
ipw_status tz_zone_check(const char *zone, struct err *e);

/*
 * The wall-clock time in zone at the instant utc_ms. Returns IPW_OK; IPW_ECONFIG for an unknown
 * zone (as tz_zone_check); IPW_EUSAGE if the instant is outside years 1..9999.
 */
ipw_status tz_local(int64_t utc_ms, const char *zone, struct tz_local *out, struct err *e);

/*
 * The first instant (UTC ms) of the local date in zone: its midnight, or, where a DST change
 * skips midnight itself, the instant the day begins. The length of a local day is
 * tz_local_midnight_utc(next day) - tz_local_midnight_utc(day). Returns IPW_OK; IPW_ECONFIG for
 * an unknown zone; IPW_EUSAGE for a date that is not a valid "YYYY-MM-DD".
 */
ipw_status tz_local_midnight_utc(const char *zone, const char *date, int64_t *utc_ms,
                                 struct err *e);

/*
 * The instant (UTC ms) at which the wall clock in zone shows minute_of_day (0..1440; 1440 is the
 * next day's midnight) on date. A time that a DST change skips (02:30 on a spring-forward day in
 * New York) maps to the instant the clock jumps, so "the window opens at 02:30" means "as soon as
 * the clock has passed 02:30"; a time that happens twice maps to the first. Returns IPW_OK;
 * IPW_ECONFIG for an unknown zone; IPW_EUSAGE for a bad date or minute.
 */
ipw_status tz_local_to_utc(const char *zone, const char *date, int minute_of_day, int64_t *utc_ms,
                           struct err *e);

/* Parses "YYYY-MM-DD" (a real calendar date, years 1..9999). Returns true on success. */
bool tz_date_parse(const char *date, int *year, int *month, int *day);

/*
 * Writes the date days after date (before it if negative) into out. Returns IPW_OK, or
 * IPW_EUSAGE if date is not valid or the result leaves years 1..9999.
 */
ipw_status tz_date_add(const char *date, int days, char out[TZ_DATE_MAX], struct err *e);

/* The calendar day after date: tz_date_add(date, 1, ...). Same returns. */
ipw_status tz_next_day(const char *date, char out[TZ_DATE_MAX], struct err *e);

/* The weekday of a valid date, 0 = Monday ... 6 = Sunday; -1 if date is not valid. */
int tz_date_weekday(const char *date);

#endif
