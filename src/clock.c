/*
 * clock: the injectable clock and RFC 3339 parsing and formatting (see clock.h).
 *
 * Dates are converted with tz.c's civil-date arithmetic rather than timegm(), which is not in
 * C11 or POSIX and depends on TZ. The offset of a named zone comes from tz.c too, which reads
 * the zone database itself: the C library would need TZ set around localtime_r, a process-wide
 * change that other code (and threads) could observe. clock depends on tz, never the reverse.
 */
#include "ipwarm/clock.h"

#include "ipwarm/chars.h"
#include "ipwarm/tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --now shifts the clock rather than stopping it: the scheduler starts at the given time and
 * runs on in real time, so pacing still spaces messages by real seconds. */
static bool clock_overridden;
static int64_t clock_offset_ms;

int64_t clock_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_now_ms(void)
{
    return clock_overridden ? clock_real_ms() + clock_offset_ms : clock_real_ms();
}

void clock_set_override(int64_t ms)
{
    clock_overridden = true;
    clock_offset_ms = ms - clock_real_ms();
}

void clock_clear_override(void)
{
    clock_overridden = false;
}

bool clock_has_override(void)
{
    return clock_overridden;
}

static int64_t clock_system_now(void *ctx)
{
    (void)ctx;
    return clock_now_ms();
}

static int64_t clock_system_real(void *ctx)
{
    (void)ctx;
    return clock_real_ms();
}

static void clock_system_sleep(void *ctx, int64_t ms)
{
    (void)ctx;
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const struct clock_src *clock_system(void)
{
    static const struct clock_src sys = {clock_system_now, clock_system_real, clock_system_sleep,
                                         NULL};
    return &sys;
}

static int64_t clock_manual_now(void *ctx)
{
    return ((struct clock_manual *)ctx)->now_ms;
}

static void clock_manual_sleep(void *ctx, int64_t ms)
{
    clock_manual_advance(ctx, ms);
}

void clock_manual_init(struct clock_manual *c, int64_t start_ms)
{
    c->src.now_ms = clock_manual_now;
    c->src.real_ms = clock_manual_now;
    c->src.sleep_ms = clock_manual_sleep;
    c->src.ctx = c;
    c->now_ms = start_ms;
}

void clock_manual_advance(struct clock_manual *c, int64_t ms)
{
    if (ms > 0)
        c->now_ms += ms;
}

/* Reads exactly n digits at *p into *v and advances *p; false if any is not a digit. */
static bool clock_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!chars_is_digit((unsigned char)(*p)[i]))
            return false;
        x = x * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return true;
}

static bool clock_char(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

ipw_status clock_parse_rfc3339(const char *s, int64_t *ms, struct err *e)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, frac_ms = 0, off_min = 0;
    if (!s)
        goto bad;
    if (!clock_digits(&p, 4, &y) || !clock_char(&p, '-') || !clock_digits(&p, 2, &mo) ||
        !clock_char(&p, '-') || !clock_digits(&p, 2, &d))
        goto bad;
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    if (!clock_digits(&p, 2, &h) || !clock_char(&p, ':') || !clock_digits(&p, 2, &mi) ||
        !clock_char(&p, ':') || !clock_digits(&p, 2, &sec))
        goto bad;
    if (*p == '.') {
        p++;
        if (!chars_is_digit((unsigned char)*p))
            goto bad;
        /* Milliseconds are the clock's resolution; finer digits are read and dropped. */
        int scale = 100;
        while (chars_is_digit((unsigned char)*p)) {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om;
        p++;
        if (!clock_digits(&p, 2, &oh) || !clock_char(&p, ':') || !clock_digits(&p, 2, &om))
            goto bad;
        if (oh > 23 || om > 59)
            goto bad;
        off_min = sign * (oh * 60 + om);
    } else {
        goto bad;
    }
    if (*p != '\0')
        goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > tz_days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        goto bad;
    int64_t days = tz_days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off_min * 60;
    *ms = secs * 1000 + frac_ms;
    return IPW_OK;
bad:
    return err_set(e, IPW_EUSAGE,
                   "expected an RFC 3339 time such as 2026-12-01T09:00:00+09:00, found \"%s\"",
                   s ? s : "");
}

/* Writes the date and time of day of (ms + offset_s) followed by suffix. */
static char *clock_format(int64_t ms, int offset_s, const char *suffix, char *buf, size_t n)
{
    int64_t local_ms = ms + (int64_t)offset_s * 1000;
    int64_t secs = tz_floor_div(local_ms, 1000);
    int milli = (int)(local_ms - secs * 1000);
    int64_t days = tz_floor_div(secs, 86400);
    int64_t sod = secs - days * 86400;
    int64_t y;
    int mo, d;
    tz_civil_from_days(days, &y, &mo, &d);
    char frac[8] = "";
    if (milli != 0)
        snprintf(frac, sizeof frac, ".%03d", milli);
    int w = snprintf(buf, n, "%04lld-%02d-%02dT%02d:%02d:%02d%s%s", (long long)y, mo, d,
                     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), frac, suffix);
    if (n > 0 && (w < 0 || (size_t)w >= n))
        buf[0] = '\0';
    return buf;
}

char *clock_format_rfc3339_utc(int64_t ms, char *buf, size_t n)
{
    return clock_format(ms, 0, "Z", buf, n);
}

bool clock_zone_exists(const char *zone)
{
    return zone && tz_zone_check(zone, NULL) == IPW_OK;
}

/* The offset of `zone` at ms by the zone database (tz.c); false if it is unknown. */
static bool clock_zone_offset(int64_t ms, const char *zone, int *offset_s)
{
    struct tz_local local;
    if (!zone || tz_local(ms, zone, &local, NULL) != IPW_OK)
        return false;
    *offset_s = local.utc_offset_seconds;
    return true;
}

int clock_utc_offset(int64_t ms, const char *zone)
{
    int off = 0;
    if (!clock_zone_offset(ms, zone, &off))
        return 0;
    return off;
}

char *clock_format_rfc3339_local(int64_t ms, const char *zone, char *buf, size_t n)
{
    int off = 0;
    if (!clock_zone_offset(ms, zone, &off))
        return clock_format_rfc3339_utc(ms, buf, n);
    /* Offsets with seconds (historic LMT) are cut to the minute, as RFC 3339 requires, and
     * the time of day with them so that the text stays one exact instant. */
    off = off / 60 * 60;
    int a = off < 0 ? -off : off;
    char suffix[16];
    snprintf(suffix, sizeof suffix, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    return clock_format(ms, off, suffix, buf, n);
}
