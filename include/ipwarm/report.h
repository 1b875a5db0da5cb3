/*
 * report: one self-contained HTML file about a campaign, for people and for printing.
 *
 * Per provider a chart over time of delivered, deferred, bounced and failed attempts (stacked
 * bars per local day, or per hour when the history spans two days or less) and of the planned
 * against the achieved rate; the current state of each provider; the most frequent deferral
 * replies, masked as `stats` groups them; the rules that acted and the pauses; and the latest
 * pre-flight result if one was recorded. Everything is inline (CSS in a <style>, charts as
 * inline SVG): the file loads nothing from the network, so it can be mailed, archived and
 * opened offline. The layout narrows to one column on a phone and prints without backgrounds.
 */
#ifndef IPWARM_REPORT_H
#define IPWARM_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "ipwarm/err.h"
#include "ipwarm/plan.h"

struct store;

/*
 * Writes the report of the campaign in st (planned by p) as of now_ms to f. Reads only the
 * summary rows, provider state, rule actions and pre-flight runs, so its cost follows the
 * number of provider-hours, not of attempts. Returns IPW_OK; IPW_EIO when writing to f fails;
 * IPW_ENOMEM; or a store status.
 */
ipw_status report_write(struct store *st, const struct plan *p, int64_t now_ms, FILE *f,
                        struct err *e);

/* Writes s to f with &, <, >, " and ' escaped for HTML text and attribute values. */
void report_html_escape(FILE *f, const char *s);

#endif
