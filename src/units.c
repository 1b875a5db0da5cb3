/*
 * units: parsers for rates, durations, percentages and rule triggers (see units.h).
 *
 * These are the only places where the plan's small quantity syntaxes are defined, so the plan
 * loader, the command line (`--for 2h`) and the documentation agree. Parsing is strict: a
 * number must be followed by a known unit, nothing may trail, and values that overflow or are
 * not finite are refused rather than clamped.
 */
#include "ipwarm/units.h"

#include "ipwarm/chars.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *units_skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Reads a non-negative decimal number (no sign, no exponent, no hex) at s. */
static int units_number(const char *s, double *v, const char **end)
{
    const char *p = s;
    int digits = 0;
    while (chars_is_digit((unsigned char)*p)) {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (chars_is_digit((unsigned char)*p)) {
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return -1;
    char buf[64];
    size_t n = (size_t)(p - s);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    double d = strtod(buf, NULL);
    if (errno != 0 || !isfinite(d))
        return -1;
    *v = d;
    *end = p;
    return 0;
}

struct units_unit {
    const char *name;
    double factor;
};

/* The number a rate or a percentage starts with (blanks around it skipped); *rest is what
 * follows. Otherwise the "expect, found" problem of the caller. */
static ipw_status units_leading_number(const char *s, const char *expect, double *n,
                                       const char **rest, struct err *e)
{
    const char *end;
    if (units_number(units_skip_space(s ? s : ""), n, &end) != 0)
        return err_set(e, IPW_ECONFIG, "%s, found \"%s\"", expect, s ? s : "");
    *rest = units_skip_space(end);
    return IPW_OK;
}

/* The unit named by the letters at *p, which it moves past them: its factor in table t (of n
 * units; names matched ASCII case-insensitively when nocase), or 0 when it is not there. *name
 * and *len say what was read (len 0: no letters). */
static double units_unit_find(const struct units_unit *t, size_t n, bool nocase, const char **p,
                              const char **name, size_t *len)
{
    *name = *p;
    while (chars_is_alpha((unsigned char)**p))
        (*p)++;
    *len = (size_t)(*p - *name);
    for (size_t i = 0; i < n; i++) {
        if (strlen(t[i].name) != *len)
            continue;
        if (nocase ? strncasecmp(*name, t[i].name, *len) == 0
                   : strncmp(*name, t[i].name, *len) == 0)
            return t[i].factor;
    }
    return 0;
}

/* Rate denominators, as minutes per unit. */
static const struct units_unit units_rate_units[] = {
    {"s", 1.0 / 60}, {"sec", 1.0 / 60}, {"second", 1.0 / 60}, {"m", 1},    {"min", 1},
    {"minute", 1},   {"h", 60},         {"hour", 60},         {"d", 1440}, {"day", 1440},
};

ipw_status units_parse_rate(const char *s, double *per_min, struct err *e)
{
    static const char expect[] = "expected a rate such as 5/min, 300/h or 2000/day";
    double n;
    const char *p = NULL; /* set on success; -O3 cannot see that an error returns non-zero */
    ipw_status r = units_leading_number(s, expect, &n, &p, e);
    if (r != IPW_OK)
        return r;
    if (*p != '/')
        return err_set(e, IPW_ECONFIG, "%s, found \"%s\" (no /unit)", expect, s);
    p = units_skip_space(p + 1);
    const char *unit;
    size_t ulen;
    double factor =
        units_unit_find(units_rate_units, sizeof units_rate_units / sizeof units_rate_units[0],
                        true, &p, &unit, &ulen);
    if (*units_skip_space(p) != '\0')
        return err_set(e, IPW_ECONFIG, "%s, found \"%s\"", expect, s);
    if (factor == 0)
        return err_set(e, IPW_ECONFIG, "%s, found \"%s\" (unknown unit; use /s, /min, /h or /day)",
                       expect, s);
    if (n <= 0)
        return err_set(e, IPW_ECONFIG, "expected a rate > 0, found \"%s\"", s);
    *per_min = n / factor;
    return IPW_OK;
}

/* Duration units in milliseconds, longest names first so "ms" is not read as "m". */
static const struct units_unit units_duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"w", 604800000},
};

ipw_status units_parse_duration(const char *s, int64_t *ms, struct err *e)
{
    static const char expect[] = "expected a duration such as 30s, 15m, 2h or 3d";
    const char *p = units_skip_space(s ? s : "");
    double total = 0;
    int parts = 0;
    while (*p) {
        double n;
        const char *end;
        if (units_number(p, &n, &end) != 0)
            return err_set(e, IPW_ECONFIG, "%s, found \"%s\"", expect, s ? s : "");
        p = end;
        const char *unit;
        size_t ulen;
        double factor = units_unit_find(
            units_duration_units, sizeof units_duration_units / sizeof units_duration_units[0],
            false, &p, &unit, &ulen);
        if (ulen == 0)
            return err_set(e, IPW_ECONFIG, "%s, found \"%s\" (a number needs a unit)", expect, s);
        if (factor == 0)
            return err_set(e, IPW_ECONFIG,
                           "%s, found \"%s\" (unknown unit \"%.*s\"; use ms, s, m, h, d or w)",
                           expect, s, (int)ulen, unit);
        total += n * factor;
        parts++;
        p = units_skip_space(p);
    }
    if (parts == 0)
        return err_set(e, IPW_ECONFIG, "%s, found \"%s\"", expect, s ? s : "");
    /* A hundred years is far beyond any warm-up; it also keeps later arithmetic in range. */
    if (total > 100.0 * 365 * 86400000)
        return err_set(e, IPW_ECONFIG, "expected a duration of at most 100 years, found \"%s\"", s);
    *ms = (int64_t)llround(total);
    return IPW_OK;
}

ipw_status units_parse_percent(const char *s, double *pct, struct err *e)
{
    static const char expect[] = "expected a percentage from 0% to 100%";
    double n;
    const char *p = NULL; /* set on success; -O3 cannot see that an error returns non-zero */
    ipw_status r = units_leading_number(s, expect, &n, &p, e);
    if (r != IPW_OK)
        return r;
    if (*p != '%' || *units_skip_space(p + 1) != '\0')
        return err_set(e, IPW_ECONFIG, "%s such as 5%%, found \"%s\"", expect, s);
    if (n > 100)
        return err_set(e, IPW_ECONFIG, "%s, found \"%s\"", expect, s);
    *pct = n;
    return IPW_OK;
}

ipw_status units_parse_trigger(const char *s, int *count, int64_t *period_ms, struct err *e)
{
    static const char expect[] = "expected \"immediately\" or N/PERIOD such as 3/1h";
    const char *p = units_skip_space(s ? s : "");
    if (strcasecmp(p, "immediately") == 0) {
        *count = 1;
        *period_ms = 0;
        return IPW_OK;
    }
    double n;
    const char *end;
    if (units_number(p, &n, &end) != 0 || n != floor(n) || n < 1 || n > 1000000)
        return err_set(e, IPW_ECONFIG, "%s, found \"%s\"", expect, s ? s : "");
    p = units_skip_space(end);
    if (*p != '/')
        return err_set(e, IPW_ECONFIG, "%s, found \"%s\"", expect, s);
    p = units_skip_space(p + 1);
    /* "3/h" reads as "3/1h". */
    char buf[64];
    if (chars_is_alpha((unsigned char)*p)) {
        if (snprintf(buf, sizeof buf, "1%s", p) >= (int)sizeof buf)
            return err_set(e, IPW_ECONFIG, "%s, found \"%s\"", expect, s);
        p = buf;
    }
    struct err sub;
    int64_t ms;
    if (units_parse_duration(p, &ms, &sub) != IPW_OK || ms <= 0)
        return err_set(e, IPW_ECONFIG, "%s, found \"%s\"", expect, s);
    *count = (int)n;
    *period_ms = ms;
    return IPW_OK;
}

char *units_format_rate(char *buf, size_t n, double per_min)
{
    /* Per minute is the unit operators think in; tiny rates read better per hour. */
    if (per_min < 1 && per_min > 0 && fabs(per_min * 60 - llround(per_min * 60)) < 1e-9)
        snprintf(buf, n, "%g/h", per_min * 60);
    else
        snprintf(buf, n, "%g/min", per_min);
    return buf;
}

char *units_format_duration(char *buf, size_t n, int64_t ms)
{
    static const struct units_unit parts[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
    };
    if (n == 0)
        return buf;
    buf[0] = '\0';
    if (ms <= 0) {
        snprintf(buf, n, "0s");
        return buf;
    }
    size_t len = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0] && ms > 0; i++) {
        int64_t f = (int64_t)parts[i].factor;
        if (ms >= f) {
            int w = snprintf(buf + len, n - len, "%lld%s", (long long)(ms / f), parts[i].name);
            if (w < 0 || (size_t)w >= n - len)
                break;
            len += (size_t)w;
            ms %= f;
        }
    }
    return buf;
}
