/*
 * tz: local time in the plan's IANA zone (see tz.h).
 *
 * Two ways were open: parse the TZif files ourselves (transitions, types, and the POSIX TZ rule
 * in the footer for instants after the last transition), or let the C library do it by setting
 * TZ, calling localtime_r and putting TZ back. This file takes the second. glibc's zone code is
 * the reference implementation of the same database files, it handles every footer rule and
 * every TZif version the system ships; a parser of our own would be a few hundred lines of
 * new code to get exactly as right. The price is that TZ is a
 * process-wide variable: each public function sets it once, does all its lookups, and restores
 * the caller's value (set or unset) before it returns, so nothing outside sees the change and
 * nothing is cached between calls. That is safe because ipwarm is single-threaded.
 *
 * Only localtime_r is used, never mktime: mktime's treatment of wall-clock times that a DST
 * change skips or repeats differs between C libraries, so local-to-UTC conversions are done
 * here from offsets alone (tz_local_to_utc).
 *
 * The civil-date arithmetic (days from a Gregorian date and back) lives here too, as the one
 * copy in ipwarm: clock.c builds on this module for RFC 3339 and zone offsets, and this module
 * uses nothing of clock.c.
 */
#include "ipwarm/tz.h"

#include "ipwarm/chars.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Years the date strings can hold; also keeps every time_t well inside its range. */
#define TZ_YEAR_MIN 1
#define TZ_YEAR_MAX 9999

int64_t tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Howard Hinnant's days_from_civil and civil_from_days: eras of 400 years (146097 days), the
 * year starting on 1 March so that the leap day comes last. */
int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tz_days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* Writes a date known to be in range as "YYYY-MM-DD", digit by digit, so that no format can
 * overflow the 11 bytes. */
static void tz_date_write(char out[TZ_DATE_MAX], int y, int m, int d)
{
    out[0] = (char)('0' + y / 1000 % 10);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

bool tz_date_parse(const char *date, int *year, int *month, int *day)
{
    if (!date || strlen(date) != 10 || date[4] != '-' || date[7] != '-')
        return false;
    int v[3] = {0, 0, 0};
    const int start[3] = {0, 5, 8}, len[3] = {4, 2, 2};
    for (int f = 0; f < 3; f++) {
        for (int i = 0; i < len[f]; i++) {
            char c = date[start[f] + i];
            if (!chars_is_digit(c))
                return false;
            v[f] = v[f] * 10 + (c - '0');
        }
    }
    if (v[0] < TZ_YEAR_MIN || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
        v[2] > tz_days_in_month(v[0], v[1]))
        return false;
    *year = v[0];
    *month = v[1];
    *day = v[2];
    return true;
}

/* Days since the epoch of a valid date string; false if it is not valid. */
static bool tz_date_days(const char *date, int64_t *days)
{
    int y, m, d;
    if (!tz_date_parse(date, &y, &m, &d))
        return false;
    *days = tz_days_from_civil(y, m, d);
    return true;
}

static bool tz_days_to_date(int64_t days, char out[TZ_DATE_MAX])
{
    int64_t y;
    int m, d;
    tz_civil_from_days(days, &y, &m, &d);
    if (y < TZ_YEAR_MIN || y > TZ_YEAR_MAX)
        return false;
    tz_date_write(out, (int)y, m, d);
    return true;
}

ipw_status tz_date_add(const char *date, int days, char out[TZ_DATE_MAX], struct err *e)
{
    int64_t n;
    if (!tz_date_days(date, &n))
        return err_set(e, IPW_EUSAGE, "expected a date such as 2026-12-01, found \"%s\"",
                       date ? date : "");
    if (!tz_days_to_date(n + days, out))
        return err_set(e, IPW_EUSAGE, "%s %+d days is outside years 1 to 9999", date, days);
    return IPW_OK;
}

ipw_status tz_next_day(const char *date, char out[TZ_DATE_MAX], struct err *e)
{
    return tz_date_add(date, 1, out, e);
}

int tz_date_weekday(const char *date)
{
    int64_t n;
    if (!tz_date_days(date, &n))
        return -1;
    /* 1970-01-01 was a Thursday, weekday 3 when Monday is 0. */
    return (int)((n % 7 + 7 + 3) % 7);
}

static const char *tz_dir(void)
{
    const char *dir = getenv("TZDIR");
    return dir && *dir ? dir : "/usr/share/zoneinfo";
}

static bool tz_is_utc(const char *zone)
{
    return strcmp(zone, "UTC") == 0;
}

ipw_status tz_zone_check(const char *zone, struct err *e)
{
    if (!zone || !*zone)
        return err_set(e, IPW_ECONFIG,
                       "unknown time zone \"\": expected an IANA name such as "
                       "Asia/Tokyo");
    if (tz_is_utc(zone))
        return IPW_OK;
    /* The name becomes a path: keep it below the database directory. */
    if (zone[0] == '/' || strstr(zone, "..") != NULL || strncmp(zone, "right/", 6) == 0)
        return err_set(e, IPW_ECONFIG,
                       "unknown time zone \"%s\": expected an IANA name such as Asia/Tokyo", zone);
    char path[4096];
    int w = snprintf(path, sizeof path, "%s/%s", tz_dir(), zone);
    if (w < 0 || (size_t)w >= sizeof path)
        return err_set(e, IPW_ECONFIG, "unknown time zone \"%s\": name too long", zone);
    /* glibc quietly falls back to UTC for a zone it cannot read, so a missing or foreign file
     * must be caught here, by its TZif magic, or a typo would shift every window. */
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, IPW_ECONFIG, "unknown time zone \"%s\": no such zone in %s", zone,
                       tz_dir());
    char magic[4];
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got != sizeof magic || memcmp(magic, "TZif", 4) != 0)
        return err_set(e, IPW_ECONFIG, "unknown time zone \"%s\": %s is not a zone file", zone,
                       path);
    return IPW_OK;
}

/*
 * A zone made current through TZ for the length of one public call. tz_enter saves the
 * caller's TZ; tz_leave puts it back exactly (set or unset) and re-reads it.
 */
struct tz_session {
    bool utc;    /* UTC needs no database and leaves TZ alone */
    bool active; /* TZ was changed and must be restored */
    char *saved; /* the caller's TZ, or NULL if it was unset */
};

static ipw_status tz_enter(struct tz_session *s, const char *zone, struct err *e)
{
    memset(s, 0, sizeof *s);
    ipw_status rc = tz_zone_check(zone, e);
    if (rc != IPW_OK)
        return rc;
    if (tz_is_utc(zone)) {
        s->utc = true;
        return IPW_OK;
    }
    const char *old = getenv("TZ");
    if (old) {
        s->saved = strdup(old);
        if (!s->saved)
            return err_set(e, IPW_ENOMEM, "out of memory saving TZ");
    }
    /* ":" asks for a database file, never a POSIX rule string. */
    char tz[4200];
    snprintf(tz, sizeof tz, ":%s", zone);
    if (setenv("TZ", tz, 1) != 0) {
        free(s->saved);
        s->saved = NULL;
        return err_set(e, IPW_ENOMEM, "cannot set TZ for time zone \"%s\"", zone);
    }
    s->active = true;
    tzset();
    return IPW_OK;
}

static void tz_leave(struct tz_session *s)
{
    if (s->active) {
        if (s->saved)
            setenv("TZ", s->saved, 1);
        else
            unsetenv("TZ");
        tzset();
    }
    free(s->saved);
    memset(s, 0, sizeof *s);
}

/* Broken-down local time of the second t in the session's zone. */
static bool tz_break(const struct tz_session *s, int64_t t, struct tm *tm, int *offset)
{
    time_t tt = (time_t)t;
    if (s->utc) {
        if (!gmtime_r(&tt, tm))
            return false;
        *offset = 0;
        return true;
    }
    if (!localtime_r(&tt, tm))
        return false;
    *offset = (int)tm->tm_gmtoff;
    return true;
}

/* The zone's UTC offset at second t; 0 if the C library cannot say (outside its range). */
static int tz_offset_at(const struct tz_session *s, int64_t t)
{
    struct tm tm;
    int off = 0;
    if (!tz_break(s, t, &tm, &off))
        return 0;
    return off;
}

ipw_status tz_local(int64_t utc_ms, const char *zone, struct tz_local *out, struct err *e)
{
    int64_t t = tz_floor_div(utc_ms, 1000);
    /* Year 1 to 9999 by a margin of a day either side for the offset. */
    if (t < -62135596800 + 86400 || t > 253402300799 - 86400)
        return err_set(e, IPW_EUSAGE, "time %lld ms is outside years 1 to 9999", (long long)utc_ms);
    struct tz_session s;
    ipw_status rc = tz_enter(&s, zone, e);
    if (rc != IPW_OK)
        return rc;
    struct tm tm;
    int off = 0;
    bool ok = tz_break(&s, t, &tm, &off);
    tz_leave(&s);
    if (!ok)
        return err_set(e, IPW_EUSAGE, "time %lld ms cannot be converted to local time",
                       (long long)utc_ms);
    memset(out, 0, sizeof *out);
    out->year = tm.tm_year + 1900;
    out->month = tm.tm_mon + 1;
    out->day = tm.tm_mday;
    out->hour = tm.tm_hour;
    out->minute = tm.tm_min;
    /* glibc can show a leap second as :60 in "right/" zones only, which tz_zone_check refuses;
     * clamp anyway so that callers can rely on the documented range. */
    out->second = tm.tm_sec > 59 ? 59 : tm.tm_sec;
    out->weekday = (tm.tm_wday + 6) % 7;
    out->minute_of_day = tm.tm_hour * 60 + tm.tm_min;
    out->utc_offset_seconds = off;
    tz_date_write(out->date, out->year, out->month, out->day);
    return IPW_OK;
}

/*
 * The first second t whose wall-clock time in the session's zone is at or after the local
 * second-count want (local time written as if it were UTC). Where want exists once that is
 * want - offset; where it exists twice (a fall-back) the earlier; where a spring-forward skips
 * it, the instant of the jump.
 */
static int64_t tz_wall_to_utc(const struct tz_session *s, int64_t want)
{
    /* A wall-clock time has at most two readings, one per offset in force around it; offsets a
     * day either side are the candidates (no zone changes offset twice within two days). */
    int offs[3] = {tz_offset_at(s, want - 86400), tz_offset_at(s, want),
                   tz_offset_at(s, want + 86400)};
    bool found = false;
    int64_t best = 0;
    for (int i = 0; i < 3; i++) {
        int64_t t = want - offs[i];
        if (tz_offset_at(s, t) == offs[i] && (!found || t < best)) {
            best = t;
            found = true;
        }
    }
    if (found)
        return best;
    /* No reading: the time falls in a gap. The jump lies between the two candidates; find the
     * first second after it by bisection, as offsets change on whole seconds. */
    int lo_off = offs[0] > offs[2] ? offs[0] : offs[2];
    int hi_off = offs[0] > offs[2] ? offs[2] : offs[0];
    int64_t lo = want - lo_off, hi = want - hi_off;
    if (lo >= hi)
        return want - offs[0];
    int before = tz_offset_at(s, lo);
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (tz_offset_at(s, mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

ipw_status tz_local_to_utc(const char *zone, const char *date, int minute_of_day, int64_t *utc_ms,
                           struct err *e)
{
    int64_t days;
    if (!tz_date_days(date, &days))
        return err_set(e, IPW_EUSAGE, "expected a date such as 2026-12-01, found \"%s\"",
                       date ? date : "");
    if (minute_of_day < 0 || minute_of_day > 1440)
        return err_set(e, IPW_EUSAGE, "expected a minute of the day from 0 to 1440, found %d",
                       minute_of_day);
    struct tz_session s;
    ipw_status rc = tz_enter(&s, zone, e);
    if (rc != IPW_OK)
        return rc;
    int64_t t = tz_wall_to_utc(&s, days * 86400 + (int64_t)minute_of_day * 60);
    tz_leave(&s);
    *utc_ms = t * 1000;
    return IPW_OK;
}

ipw_status tz_local_midnight_utc(const char *zone, const char *date, int64_t *utc_ms, struct err *e)
{
    return tz_local_to_utc(zone, date, 0, utc_ms, e);
}
