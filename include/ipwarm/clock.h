/*
 * clock: the one source of "now" for ipwarm, and RFC 3339 times in and out.
 *
 * Decisions (ramp, pacing, backoff) take the time as an argument; whoever calls them asks
 * clock_now_ms(). The command line sets an override with --now so that a replay or a test sees
 * the scheduler's clock at a chosen instant; everything else keeps real time. Times are
 * milliseconds since the Unix epoch, UTC, in an int64_t.
 *
 * Times shown to people carry their UTC offset in the plan's time zone
 * (clock_format_rfc3339_local); times stored are UTC (clock_format_rfc3339_utc).
 */
#ifndef IPWARM_CLOCK_H
#define IPWARM_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"

/* Room for the longest time these functions write: "2026-12-01T09:00:00.123+09:00". */
#define CLOCK_RFC3339_MAX 40

/* The current time in ms since the epoch: real time, or, after clock_set_override(), the
 * override plus the real time elapsed since it was set. */
int64_t clock_now_ms(void);
/* The real time in ms, whatever the override, for measuring elapsed time. */
int64_t clock_real_ms(void);
/* Sets the override (--now): clock_now_ms() returns ms now and runs on in real time. */
void clock_set_override(int64_t ms);
void clock_clear_override(void);
bool clock_has_override(void);

/*
 * A clock to run on, for the engine: the system's (clock_system()), or a test's that only
 * moves when told to, so that days of warm-up replay in milliseconds.
 *   now_ms:   the scheduler's time (the system clock honours --now, as clock_now_ms()).
 *   real_ms:  elapsed-time measurements: how long a cron tick or --for has run.
 *   sleep_ms: waits ms (a test clock moves on by ms instead).
 */
struct clock_src {
    int64_t (*now_ms)(void *ctx);
    int64_t (*real_ms)(void *ctx);
    void (*sleep_ms)(void *ctx, int64_t ms);
    void *ctx;
};
/* The system clock as a clock_src. */
const struct clock_src *clock_system(void);

/* A clock for tests and replays that stands still until advanced. */
struct clock_manual {
    struct clock_src src; /* hand &clock.src to whoever takes a clock_src */
    int64_t now_ms;
};
/* Sets c to stand at start_ms. */
void clock_manual_init(struct clock_manual *c, int64_t start_ms);
/* Moves c on by ms (>= 0). */
void clock_manual_advance(struct clock_manual *c, int64_t ms);

/*
 * Parses an RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm). 't', 'z' and
 * a space for 'T' are accepted (RFC 3339 section 5.6 notes); fractions beyond milliseconds
 * are truncated; a leap second (:60) counts as the next second. Returns IPW_OK, or
 * IPW_EUSAGE with "expected an RFC 3339 time such as 2026-12-01T09:00:00+09:00, found ...".
 */
ipw_status clock_parse_rfc3339(const char *s, int64_t *ms, struct err *e);

/* Writes ms as "2026-12-01T00:00:00Z" (with ".123" when the milliseconds are not 0). Returns
 * buf; an empty string if n is too small (CLOCK_RFC3339_MAX always fits). */
char *clock_format_rfc3339_utc(int64_t ms, char *buf, size_t n);

/*
 * Writes ms as local time in the IANA zone `zone` with its offset, e.g.
 * "2026-12-01T09:00:00+09:00". Returns buf. A zone that does not exist is written as UTC
 * (with a "Z"), never in a wrong offset; plan_load() has checked the plan's zone already and
 * clock_zone_exists() lets other callers check first.
 */
char *clock_format_rfc3339_local(int64_t ms, const char *zone, char *buf, size_t n);

/* The UTC offset in seconds east of Greenwich of `zone` at ms (Tokyo: 32400). A zone that does
 * not exist gives 0. */
int clock_utc_offset(int64_t ms, const char *zone);

/* True if `zone` names a zone of the system's time zone database ($TZDIR or
 * /usr/share/zoneinfo), or is "UTC" (tz_zone_check()). */
bool clock_zone_exists(const char *zone);

#endif
