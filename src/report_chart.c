/*
 * report_chart: the SVG 1.1 charts of the HTML report (see report_chart.h), drawn inline with
 * fixed geometry so that the page needs no script or style sheet. The y axis of each chart tops
 * at a round number (1, 2 or 5 times a power of ten); the x axis is the report's periods (local
 * days, or hours when the history spans two days or less), or the days with seed copies for the
 * placement chart.
 */
#include "report_chart.h"

#include <stdlib.h>
#include <string.h>

#include "ipwarm/chars.h"
#include "ipwarm/ramp.h"

/* s written as HTML text (and attribute value) content: the five special characters escaped. */
void report_chart_escape(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        const char *entity = chars_html_entity((unsigned char)*s);
        if (entity)
            fputs(entity, f);
        else
            fputc(*s, f);
    }
}

const char *const report_chart_outcome_names[N_C] = {"delivered", "deferred", "bounced",
                                                     "failed",    "blocked",  "expired or unknown"};
const char *const report_chart_outcome_colors[N_C] = {"#2e7d32", "#f9a825", "#c62828",
                                                      "#6d4c41", "#6a1b9a", "#90a4ae"};

/* A round number at or above v for the top of an axis: 1, 2 or 5 times a power of ten. */
static double report_chart_ceiling(double v)
{
    if (v <= 0)
        return 1;
    double p = 1;
    while (p * 10 <= v)
        p *= 10;
    while (p > v)
        p /= 10;
    if (v <= p)
        return p;
    if (v <= 2 * p)
        return 2 * p;
    if (v <= 5 * p)
        return 5 * p;
    return 10 * p;
}

#define SVG_W 640.0
#define SVG_H 220.0
#define PAD_L 52.0
#define PAD_R 10.0
#define PAD_T 12.0
#define PAD_B 42.0
/* The plotting area inside the axes. */
#define PLOT_W (SVG_W - PAD_L - PAD_R)
#define PLOT_H (SVG_H - PAD_T - PAD_B)

/* A short x-axis label: "12-01" for a day, "12-01 09h" for an hour. */
static void report_chart_x_label(const struct rep *r, size_t i, char *buf, size_t n)
{
    const char *l = r->per[i].label;
    if (r->by_hour && strlen(l) >= 13)
        snprintf(buf, n, "%.5s %.2sh", l + 5, l + 11);
    else if (strlen(l) >= 10)
        snprintf(buf, n, "%.5s", l + 5);
    else
        snprintf(buf, n, "%s", l);
}

static void report_chart_axes(FILE *f, const struct rep *r, double ymax, const char *unit)
{
    double pw = PLOT_W, ph = PLOT_H;
    for (int k = 0; k <= 4; k++) {
        double y = PAD_T + ph - ph * k / 4.0;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" "
                "fill=\"#555\">%g</text>\n",
                PAD_L, y, PAD_L + pw, y, PAD_L - 4, y + 4, ymax * k / 4.0);
    }
    fprintf(f,
            "<text x=\"12\" y=\"%.1f\" font-size=\"11\" fill=\"#555\" "
            "transform=\"rotate(-90 12 %.1f)\" text-anchor=\"middle\">%s</text>\n",
            PAD_T + ph / 2, PAD_T + ph / 2, unit);
    size_t step = r->n_per / 8 + 1;
    double bw = pw / (double)r->n_per;
    for (size_t i = 0; i < r->n_per; i += step) {
        char l[24];
        report_chart_x_label(r, i, l, sizeof l);
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" "
                "fill=\"#555\">%s</text>\n",
                PAD_L + bw * ((double)i + 0.5), SVG_H - PAD_B + 16, l);
    }
}

/* Opens a chart: the svg element, named "WHAT of PROVIDER TAIL" for screen readers, and its
 * axes up to ymax with the y axis titled unit. */
static void report_chart_open(FILE *f, const struct rep *axis, double ymax, const char *what,
                              const char *provider, const char *tail, const char *unit)
{
    fprintf(f, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"%s of ", SVG_W, SVG_H,
            what);
    report_chart_escape(f, provider);
    fprintf(f, "%s\" xmlns=\"http://www.w3.org/2000/svg\">\n", tail);
    report_chart_axes(f, axis, ymax, unit);
}

/* One bar of period (or day) i of a chart of n periods: the values v[0..n_v) stacked from the
 * x axis up, each a rect with a title "LABEL NAME: V" (" of OF" after it when of >= 0, the
 * placement chart's copies sent). A value of 0 draws nothing. */
static void report_chart_stack(FILE *f, size_t i, size_t n, double ymax, const int64_t *v, int n_v,
                               const char *const *colors, const char *const *names,
                               const char *label, int64_t of)
{
    double bw = PLOT_W / (double)n;
    double y = PAD_T + PLOT_H;
    for (int k = 0; k < n_v; k++) {
        if (v[k] <= 0)
            continue;
        double h = PLOT_H * (double)v[k] / ymax;
        y -= h;
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                "<title>%s %s: %lld",
                PAD_L + bw * (double)i + bw * 0.1, y, bw * 0.8, h, colors[k], label, names[k],
                (long long)v[k]);
        if (of >= 0)
            fprintf(f, " of %lld", (long long)of);
        fputs("</title></rect>\n", f);
    }
}

void report_chart_attempts(FILE *f, const struct rep *r, size_t pi)
{
    int64_t max = 0;
    for (size_t i = 0; i < r->n_per; i++) {
        const struct cell *c = &r->cells[i * r->n_prov + pi];
        int64_t t = 0;
        for (int k = 0; k < N_C; k++)
            t += c->c[k];
        if (t > max)
            max = t;
    }
    double ymax = report_chart_ceiling((double)max);
    report_chart_open(f, r, ymax, "attempts", r->prov[pi], r->by_hour ? " per hour" : " per day",
                      r->by_hour ? "attempts per hour" : "attempts per day");
    for (size_t i = 0; i < r->n_per; i++)
        report_chart_stack(f, i, r->n_per, ymax, r->cells[i * r->n_prov + pi].c, N_C,
                           report_chart_outcome_colors, report_chart_outcome_names, r->per[i].label,
                           -1);
    fputs("</svg>\n", f);
}

void report_chart_rates(FILE *f, const struct rep *r, size_t pi)
{
    int idx = plan_provider_find(r->p, r->prov[pi]);
    const struct plan_ramp *ramp = idx >= 0 ? &r->p->providers[idx].ramp : NULL;
    double *planned = calloc(r->n_per, sizeof *planned);
    double *achieved = calloc(r->n_per, sizeof *achieved);
    if (!planned || !achieved) {
        free(planned);
        free(achieved);
        return;
    }
    /* The k-th local day with attempts is sending day k + 1: stage k on clean days. */
    int k = -1;
    const char *day = "";
    double max = 0;
    for (size_t i = 0; i < r->n_per; i++) {
        const struct cell *c = &r->cells[i * r->n_prov + pi];
        if (strcmp(r->per[i].day, day) != 0) {
            /* A new day: it is a sending day if any of its periods had attempts. */
            bool sent = false;
            for (size_t j = i; j < r->n_per && strcmp(r->per[j].day, r->per[i].day) == 0; j++)
                sent |= r->cells[j * r->n_prov + pi].peak_hour > 0;
            if (sent)
                k++;
            day = r->per[i].day;
        }
        planned[i] = ramp && k >= 0 ? ramp_rate_for_stage(ramp, k) : 0;
        achieved[i] = (double)c->peak_hour / 60.0;
        if (planned[i] > max)
            max = planned[i];
        if (achieved[i] > max)
            max = achieved[i];
    }
    double ymax = report_chart_ceiling(max);
    report_chart_open(f, r, ymax, "planned and achieved rate", r->prov[pi], "",
                      "messages a minute");
    double pw = PLOT_W, ph = PLOT_H;
    double bw = pw / (double)r->n_per;
    for (int line = 0; line < 2; line++) {
        const double *v = line == 0 ? planned : achieved;
        if (line == 0 && !ramp)
            continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
                line == 0 ? "#1565c0" : "#6a1b9a", line == 0 ? " stroke-dasharray=\"6 4\"" : "");
        for (size_t i = 0; i < r->n_per; i++)
            fprintf(f, "%s%.1f,%.1f", i ? " " : "", PAD_L + bw * ((double)i + 0.5),
                    PAD_T + ph - ph * v[i] / ymax);
        fputs("\"/>\n", f);
        if (line == 1)
            for (size_t i = 0; i < r->n_per; i++)
                if (v[i] > 0)
                    fprintf(f,
                            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#6a1b9a\"><title>%s "
                            "achieved %.2f/min, planned %.2f/min</title></circle>\n",
                            PAD_L + bw * ((double)i + 0.5), PAD_T + ph - ph * v[i] / ymax,
                            r->per[i].label, v[i], planned[i]);
    }
    fputs("</svg>\n", f);
    free(planned);
    free(achieved);
}

/* Late bounces and complaints per period: two bars side by side, so that a day with
 * complaints stands out even when there are few (they are counted apart from the attempts). */
const char *const report_chart_feedback_colors[2] = {"#ad1457", "#e65100"};
const char *const report_chart_feedback_names[2] = {"late bounces", "complaints"};

void report_chart_feedback(FILE *f, const struct rep *r, size_t pi)
{
    int64_t max = 0;
    for (size_t i = 0; i < r->n_per; i++) {
        const struct cell *c = &r->cells[i * r->n_prov + pi];
        if (c->late > max)
            max = c->late;
        if (c->complaints > max)
            max = c->complaints;
    }
    double ymax = report_chart_ceiling((double)max);
    report_chart_open(f, r, ymax, "late bounces and complaints", r->prov[pi],
                      r->by_hour ? " per hour" : " per day",
                      r->by_hour ? "reports per hour" : "reports per day");
    double pw = PLOT_W, ph = PLOT_H;
    double bw = pw / (double)r->n_per;
    for (size_t i = 0; i < r->n_per; i++) {
        const struct cell *c = &r->cells[i * r->n_prov + pi];
        int64_t v[2] = {c->late, c->complaints};
        for (int k = 0; k < 2; k++) {
            if (v[k] == 0)
                continue;
            double h = ph * (double)v[k] / ymax;
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                    "<title>%s %s: %lld</title></rect>\n",
                    PAD_L + bw * (double)i + bw * (0.1 + 0.4 * k), PAD_T + ph - h, bw * 0.4, h,
                    report_chart_feedback_colors[k], r->per[i].label,
                    report_chart_feedback_names[k], (long long)v[k]);
        }
    }
    fputs("</svg>\n", f);
}

/* Seed placement per local day: stacked bars of the copies sent that day, by where they
 * landed. Its x axis is the days with seed copies (placement_collect by day), not the
 * attempts' periods. */
const char *const report_chart_placement_names[N_PL] = {"inbox", "junk", "missing",
                                                        "not placed yet"};
const char *const report_chart_placement_colors[N_PL] = {"#2e7d32", "#ef6c00", "#546e7a",
                                                         "#cfd8dc"};

void report_chart_placement(FILE *f, const struct placement_result *pl, struct period *days,
                            size_t n_days, const char *provider)
{
    struct rep axis;
    memset(&axis, 0, sizeof axis);
    axis.per = days;
    axis.n_per = n_days;
    int64_t max = 0;
    for (size_t i = 0; i < pl->n; i++)
        if (!strcmp(pl->rows[i].provider, provider) && pl->rows[i].sent > max)
            max = pl->rows[i].sent;
    double ymax = report_chart_ceiling((double)max);
    report_chart_open(f, &axis, ymax, "seed placement", provider, " per day",
                      "seed copies per day");
    for (size_t d = 0; d < n_days; d++) {
        const struct placement_row *row = NULL;
        for (size_t i = 0; i < pl->n && !row; i++)
            if (!strcmp(pl->rows[i].provider, provider) &&
                !strcmp(pl->rows[i].period, days[d].label))
                row = &pl->rows[i];
        if (!row)
            continue;
        int64_t v[N_PL] = {row->inbox, row->junk, row->missing,
                           row->sent - row->inbox - row->junk - row->missing};
        report_chart_stack(f, d, n_days, ymax, v, N_PL, report_chart_placement_colors,
                           report_chart_placement_names, days[d].label, row->sent);
    }
    fputs("</svg>\n", f);
}
