/*
 * report_chart: the inline SVG charts of the HTML report (report.c): the grouped data they draw
 * (struct rep, filled by report.c from stats_collect()), the chart of attempts by outcome, the
 * planned and achieved rate, the late bounces and complaints, and the seed placement, each
 * with the colours and names its legend uses. Not a public interface: only src/report*.c
 * include it.
 */
#ifndef IPWARM_REPORT_CHART_H
#define IPWARM_REPORT_CHART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ipwarm/placement.h"
#include "ipwarm/plan.h"
#include "ipwarm/stats.h"

/* blocked: refused because of the sender (a block list, a policy), not the recipient. */
enum { C_DELIVERED, C_DEFERRED, C_BOUNCED, C_FAILED, C_BLOCKED, C_OTHER, N_C };
extern const char *const report_chart_outcome_names[N_C];
extern const char *const report_chart_outcome_colors[N_C];

struct period {
    char label[40];
    char day[40]; /* the local date it belongs to (a stats_period_of() label, like label) */
    int64_t start_ms;
};

struct cell {
    int64_t c[N_C];
    int64_t peak_hour;  /* attempts in the busiest hour */
    int64_t unknown;    /* of C_OTHER: no final reply after the whole message went out */
    int64_t late;       /* of C_BOUNCED: bounces read from the feedback mailbox after a 250 */
    int64_t complaints; /* complaint reports about the period's messages */
};

struct rep {
    const struct plan *p;
    const char *zone;
    bool by_hour;
    struct period *per;
    size_t n_per;
    char **prov;
    size_t n_prov;
    struct cell *cells;            /* [period * n_prov + provider] */
    struct stats_reason **reasons; /* per provider */
    size_t *n_reasons;
};

/* Late bounces and complaints per period, in the order of their bars. */
extern const char *const report_chart_feedback_colors[2];
extern const char *const report_chart_feedback_names[2];

/* Where the seed copies landed, in the order of their stacked bars. */
enum { PL_INBOX, PL_JUNK, PL_MISSING, PL_PENDING, N_PL };
extern const char *const report_chart_placement_names[N_PL];
extern const char *const report_chart_placement_colors[N_PL];

/* Attempts per period of provider pi, stacked by outcome. */
void report_chart_attempts(FILE *f, const struct rep *r, size_t pi);
/* The planned rate (the ramp's stage on clean days) and the achieved rate of provider pi. */
void report_chart_rates(FILE *f, const struct rep *r, size_t pi);
/* Late bounces and complaints per period of provider pi, side by side. */
void report_chart_feedback(FILE *f, const struct rep *r, size_t pi);
/* Seed placement of provider per local day; days is the x axis (the days with seed copies). */
void report_chart_placement(FILE *f, const struct placement_result *pl, struct period *days,
                            size_t n_days, const char *provider);

/* Writes s escaped for HTML text and attribute values (report_html_escape is this). */
void report_chart_escape(FILE *f, const char *s);

#endif
