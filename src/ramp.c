/*
 * ramp: stages, earned growth, step back and daily caps per sending day (see ramp.h).
 *
 * The ladder is kept as a stage number rather than a rate so that holding, growing and stepping
 * back are exact: a rate multiplied and divided by growth would wander by rounding, and a stage
 * names the same rate in the store, in `status` and in `simulate`. The projection reuses the
 * pacer's own arithmetic (pace.h) and windows, so that what `simulate` promises is what the
 * engine does on clean days, message for message.
 */
#include "ipwarm/ramp.h"

#include <math.h>
#include <string.h>

#include "ipwarm/pace.h"

/* Rates within this fraction of max count as max, so that 5 * 2^7 = 640 reaches a 640 max even
 * if pow() lands a hair below it. */
#define RAMP_EPSILON 1e-9

const char *ramp_change_name(enum ramp_change c)
{
    switch (c) {
    case RAMP_SAME_DAY:
        return "same day";
    case RAMP_FIRST_DAY:
        return "first day";
    case RAMP_GROW:
        return "grow";
    case RAMP_HOLD:
        return "hold";
    case RAMP_STEP_BACK:
        return "step back";
    case RAMP_CLOCK_BACK:
        return "clock back";
    }
    return "unknown";
}

/* Does stage k's unclamped rate reach max? */
static bool ramp_reaches_max(const struct plan_ramp *r, int k)
{
    return r->start_per_min * pow(r->growth, k) >= r->max_per_min * (1 - RAMP_EPSILON);
}

double ramp_rate_for_stage(const struct plan_ramp *r, int stage)
{
    if (stage < 0)
        stage = 0;
    if (ramp_reaches_max(r, stage))
        return r->max_per_min;
    return r->start_per_min * pow(r->growth, stage);
}

int ramp_max_stage(const struct plan_ramp *r)
{
    if (ramp_reaches_max(r, 0))
        return 0;
    if (!(r->growth > 1) || !(r->start_per_min > 0))
        return -1; /* the rate never moves, so it never reaches max */
    double est = ceil(log(r->max_per_min / r->start_per_min) / log(r->growth));
    int k = est < 0 ? 0 : est > 100000 ? 100000 : (int)est;
    while (k > 0 && ramp_reaches_max(r, k - 1))
        k--;
    while (!ramp_reaches_max(r, k))
        k++;
    return k;
}

int ramp_max_day(const struct plan_ramp *r)
{
    int k = ramp_max_stage(r);
    return k < 0 ? -1 : k + 1;
}

int64_t ramp_cap_today(const struct plan_ramp *r, int sending_day)
{
    if (!r->daily_cap || r->n_daily_cap == 0)
        return -1;
    size_t i = sending_day <= 1 ? 0 : (size_t)(sending_day - 1);
    if (i >= r->n_daily_cap)
        i = r->n_daily_cap - 1;
    return r->daily_cap[i] > 0 ? r->daily_cap[i] : -1;
}

/* The highest stage the ladder may stand on: the first at max, or 0 if it cannot climb. */
static int ramp_top_stage(const struct plan_ramp *r)
{
    int k = ramp_max_stage(r);
    return k < 0 ? 0 : k;
}

ipw_status ramp_begin_day(const struct plan_ramp *r, const struct ramp_state *prev,
                          const struct ramp_day_counts *prev_day, const char *today,
                          struct ramp_state *next, enum ramp_change *why, struct err *e)
{
    int y, m, d;
    if (!tz_date_parse(today, &y, &m, &d))
        return err_set(e, IPW_EUSAGE, "expected a date such as 2026-12-01, found \"%s\"",
                       today ? today : "");
    struct ramp_state s;
    enum ramp_change change;
    if (prev->day_date[0] == '\0') {
        memset(&s, 0, sizeof s);
        s.stage = 0;
        s.sending_day = 1;
        change = RAMP_FIRST_DAY;
    } else {
        int cmp = strcmp(today, prev->day_date);
        if (cmp == 0) {
            s = *prev;
            change = RAMP_SAME_DAY;
            goto done;
        }
        if (cmp < 0) {
            /* The stored day lies in the future: written with a clock set ahead (a mistaken
             * --now, a host whose clock was wrong). Refusing would end the warm-up for good,
             * so the ladder stays where it is (stage and sending day as stored) and its day
             * moves to today; the next date then begins sending day + 1 as usual. */
            s = *prev;
            memcpy(s.day_date, today, TZ_DATE_MAX);
            s.rate_per_min = ramp_rate_for_stage(r, s.stage < 0 ? 0 : s.stage);
            change = RAMP_CLOCK_BACK;
            goto done;
        }
        s = *prev;
        s.sending_day = prev->sending_day + 1;
        int top = ramp_top_stage(r);
        s.stage = prev->stage < 0 ? 0 : prev->stage > top ? top : prev->stage;
        change = RAMP_HOLD;
        /* Growth is earned: a day with no attempts proves nothing, so it holds. A sending day
         * always has attempts; this only happens if the records were lost or pruned. */
        if (prev_day && prev_day->attempts > 0) {
            double n = (double)prev_day->attempts;
            double deferral = 100.0 * (double)prev_day->deferred / n;
            double bounce = 100.0 * (double)prev_day->bounced / n;
            bool clean = deferral < r->deferral_below_pct && bounce < r->bounce_below_pct;
            /* "> 0" so that a threshold of 0% (never grow) does not also step back a perfect
             * day. */
            bool bad = (deferral > 0 && deferral >= 2 * r->deferral_below_pct) ||
                       (bounce > 0 && bounce >= 2 * r->bounce_below_pct);
            if (r->complaint_gate) {
                /* Complaints are judged against what reached a mailbox; a day with complaints
                 * and nothing delivered (all read late) is not clean either. */
                double complaint =
                    prev_day->delivered > 0
                        ? 100.0 * (double)prev_day->complaints / (double)prev_day->delivered
                        : (prev_day->complaints > 0 ? 100.0 : 0.0);
                if (!(complaint < r->complaint_below_pct))
                    clean = false;
                if (complaint > 0 && complaint >= 2 * r->complaint_below_pct)
                    bad = true;
            }
            if (r->inbox_gate && prev_day->seed_sent > 0) {
                /* Placement not all known yet (copies not looked up, a seed that could not be
                 * read): the evidence is not in, so the stage holds rather than guess. */
                if (prev_day->seed_placed < prev_day->seed_sent)
                    clean = false;
                else if (!(100.0 * (double)prev_day->seed_inbox / (double)prev_day->seed_placed >
                           r->inbox_above_pct))
                    clean = false;
            }
            if (clean && s.stage < top) {
                s.stage++;
                change = RAMP_GROW;
            } else if (!clean && bad && s.stage > 0) {
                s.stage--;
                change = RAMP_STEP_BACK;
            }
        }
    }
    memcpy(s.day_date, today, TZ_DATE_MAX);
    s.rate_per_min = ramp_rate_for_stage(r, s.stage);
done:
    *next = s;
    if (why)
        *why = change;
    return IPW_OK;
}

ipw_status ramp_simulate(const struct plan *p, size_t provider_index, const char *start_date,
                         int days, struct ramp_sim_day *out, struct err *e)
{
    if (provider_index >= p->n_providers)
        return err_set(e, IPW_EUSAGE, "no provider %zu: the plan has %zu", provider_index,
                       p->n_providers);
    if (days < 0)
        return err_set(e, IPW_EUSAGE, "expected a number of days >= 0, found %d", days);
    int y, m, d;
    if (!tz_date_parse(start_date, &y, &m, &d))
        return err_set(e, IPW_EUSAGE, "expected a date such as 2026-12-01, found \"%s\"",
                       start_date ? start_date : "");
    const struct plan_ramp *r = &p->providers[provider_index].ramp;
    const char *zone = p->timezone ? p->timezone : "UTC";
    int top = ramp_top_stage(r);

    /* The pacer's run carries from day to day: a window open through midnight continues it. */
    struct pace_seq seq;
    memset(&seq, 0, sizeof seq);
    struct pace_interval ivs[PACE_MAX_INTERVALS];
    char date[TZ_DATE_MAX];
    memcpy(date, start_date, TZ_DATE_MAX);
    int stage = -1, done = 0, idle = 0;
    while (done < days) {
        size_t n = 0;
        ipw_status rc = pace_day_windows(&p->schedule, zone, date, ivs, PACE_MAX_INTERVALS, &n, e);
        if (rc != IPW_OK)
            return rc;
        /* Clean days: each sending day stands one stage above the last, up to max. */
        int today_stage = stage < 0 ? 0 : stage < top ? stage + 1 : top;
        double rate = ramp_rate_for_stage(r, today_stage);
        int64_t cap = ramp_cap_today(r, done + 1);
        int64_t sent = 0, window_ms = 0;
        for (size_t i = 0; i < n; i++) {
            window_ms += ivs[i].close_ms - ivs[i].open_ms;
            int64_t left = cap < 0 ? -1 : cap - sent;
            if (left == 0)
                continue;
            /* As the engine's pick when the interval opens: the run's next message, or the
             * opening instant if that has passed. */
            int64_t due = pace_seq_due(&seq, rate, ivs[i].open_ms);
            if (due < ivs[i].open_ms)
                due = ivs[i].open_ms;
            if (due >= ivs[i].close_ms)
                continue;
            pace_seq_commit(&seq, rate, due);
            sent++;
            sent += pace_seq_run(&seq, ivs[i].close_ms, left < 0 ? -1 : left - 1);
        }
        if (sent > 0) {
            struct ramp_sim_day *o = &out[done];
            memset(o, 0, sizeof *o);
            o->day = done + 1;
            memcpy(o->date, date, TZ_DATE_MAX);
            o->stage = today_stage;
            o->rate_per_min = rate;
            o->cap = cap;
            o->window_ms = window_ms;
            o->planned = sent;
            o->at_max = rate >= r->max_per_min;
            stage = today_stage;
            done++;
            idle = 0;
        } else if (++idle >= 7) {
            return err_set(e, IPW_ENOTFOUND,
                           "the schedule opens no window in the week after %s: nothing would be "
                           "sent",
                           date);
        }
        rc = tz_next_day(date, date, e);
        if (rc != IPW_OK)
            return rc;
    }
    return IPW_OK;
}
