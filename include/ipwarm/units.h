/*
 * units: the small parsers for the quantities a plan is written in.
 *
 * Rates    "5/min", "300/h", "2000/day", "2/s" (also /sec, /m, /hour, /d): normalised to
 *          messages per minute.
 * Durations "30s", "15m", "2h", "3d", "1w", "500ms", and sums such as "1h30m": milliseconds.
 * Percentages "5%", "0.5%", "25 %": a number from 0 to 100.
 *
 * On failure each parser fills e with "expected ..., found \"...\"" so that the plan loader can
 * prefix FILE:LINE:COLUMN and the key; the sentence never repeats the key itself.
 */
#ifndef IPWARM_UNITS_H
#define IPWARM_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"

/* Parses a rate; *per_min > 0 on success. Returns IPW_OK or IPW_ECONFIG. */
ipw_status units_parse_rate(const char *s, double *per_min, struct err *e);
/* Parses a duration; *ms >= 0 on success. Returns IPW_OK or IPW_ECONFIG. */
ipw_status units_parse_duration(const char *s, int64_t *ms, struct err *e);
/* Parses a percentage 0..100. Returns IPW_OK or IPW_ECONFIG. */
ipw_status units_parse_percent(const char *s, double *pct, struct err *e);
/* Parses a rule trigger "immediately" (count 1, period 0) or "N/DURATION" ("3/1h", "3/h").
 * Returns IPW_OK or IPW_ECONFIG. */
ipw_status units_parse_trigger(const char *s, int *count, int64_t *period_ms, struct err *e);

/* Writes the rate back in the unit that reads best: per minute ("5/min", "7.5/min"), or per
 * hour for rates under one a minute that are whole per hour ("0.5/min" is shown as "30/h").
 * Returns buf. */
char *units_format_rate(char *buf, size_t n, double per_min);
/* Writes a duration as "2h30m", "15m", "0s". Returns buf. */
char *units_format_duration(char *buf, size_t n, int64_t ms);

#endif
