/*
 * pace: even spacing of each provider's messages, their interleaving, and the schedule's
 * windows (see pace.h).
 *
 * The spacing is computed from the run's anchor and the message's index rather than by adding
 * 60000/R to the previous time: an interval such as 60000/7 = 8571.43 ms rounded at every step
 * would drift by seconds a day, while anchor + round(k * interval) keeps every gap within a
 * millisecond of the ideal and the k-th message exactly where it belongs.
 */
#include "ipwarm/pace.h"

#include <math.h>
#include <string.h>

static bool pace_rate_ok(double rate_per_min)
{
    /* Also refuses NaN, which compares false with everything. */
    return rate_per_min > 0 && isfinite(rate_per_min);
}

static double pace_interval_ms(double rate_per_min)
{
    return 60000.0 / rate_per_min;
}

/* Planned time of message k of a run. */
static int64_t pace_at(int64_t anchor_ms, double interval_ms, int64_t k)
{
    return anchor_ms + (int64_t)llround((double)k * interval_ms);
}

/* Further behind now than one interval: the run is over, restart at now. */
static bool pace_too_late(int64_t planned_ms, int64_t now_ms, double interval_ms)
{
    return (double)(now_ms - planned_ms) > interval_ms;
}

int64_t pace_next(double rate_per_min, int64_t last_planned_ms, int64_t now_ms)
{
    if (!pace_rate_ok(rate_per_min))
        return INT64_MAX;
    double iv = pace_interval_ms(rate_per_min);
    int64_t next = pace_at(last_planned_ms, iv, 1);
    return pace_too_late(next, now_ms, iv) ? now_ms : next;
}

static bool pace_has_run(const struct pace_seq *s)
{
    return s->n > 0 && pace_rate_ok(s->rate_per_min);
}

int64_t pace_seq_last(const struct pace_seq *s)
{
    if (!pace_has_run(s))
        return INT64_MIN;
    return pace_at(s->anchor_ms, pace_interval_ms(s->rate_per_min), s->n - 1);
}

int64_t pace_seq_due(const struct pace_seq *s, double rate_per_min, int64_t now_ms)
{
    if (!pace_rate_ok(rate_per_min))
        return INT64_MAX;
    if (!pace_has_run(s))
        return now_ms;
    if (s->rate_per_min != rate_per_min)
        return pace_next(rate_per_min, pace_seq_last(s), now_ms);
    double iv = pace_interval_ms(rate_per_min);
    int64_t next = pace_at(s->anchor_ms, iv, s->n);
    return pace_too_late(next, now_ms, iv) ? now_ms : next;
}

void pace_seq_commit(struct pace_seq *s, double rate_per_min, int64_t due_ms)
{
    if (pace_has_run(s) && s->rate_per_min == rate_per_min &&
        due_ms == pace_at(s->anchor_ms, pace_interval_ms(rate_per_min), s->n)) {
        s->n++;
        return;
    }
    s->anchor_ms = due_ms;
    s->n = 1;
    s->rate_per_min = rate_per_min;
}

int64_t pace_seq_run(struct pace_seq *s, int64_t end_ms, int64_t limit)
{
    if (!pace_has_run(s) || limit == 0)
        return 0;
    double iv = pace_interval_ms(s->rate_per_min);
    if (pace_at(s->anchor_ms, iv, s->n) >= end_ms)
        return 0;
    /* The first index planned at or after end_ms: estimate, then settle the rounding. */
    double est = ceil(((double)end_ms - (double)s->anchor_ms) / iv);
    if (limit > 0 && est > (double)s->n + (double)limit + 1) {
        s->n += limit; /* the limit ends the run well before end_ms */
        return limit;
    }
    if (est > 1e15) /* no real interval is this long; keeps the conversion defined */
        est = 1e15;
    int64_t k = est < (double)s->n ? s->n : (int64_t)est;
    while (k > s->n && pace_at(s->anchor_ms, iv, k - 1) >= end_ms)
        k--;
    while (pace_at(s->anchor_ms, iv, k) < end_ms)
        k++;
    int64_t count = k - s->n;
    if (limit > 0 && count > limit)
        count = limit;
    s->n += count;
    return count;
}

/* Is minute m (0..1439) of a scheduled date inside window w? */
static bool pace_in_window(const struct plan_window *w, int m)
{
    if (w->start_min < w->end_min)
        return m >= w->start_min && m < w->end_min;
    if (w->end_min < w->start_min) /* crosses midnight: the two ends of the same date */
        return m >= w->start_min || m < w->end_min;
    return false;
}

static bool pace_day_scheduled(const struct plan_schedule *s, int weekday)
{
    return weekday >= 0 && weekday < 7 && (s->days & (1u << weekday)) != 0;
}

bool pace_window_open(const struct plan_schedule *s, const struct tz_local *t)
{
    if (!pace_day_scheduled(s, t->weekday))
        return false;
    for (size_t i = 0; i < s->n_windows; i++)
        if (pace_in_window(&s->windows[i], t->minute_of_day))
            return true;
    return false;
}

ipw_status pace_day_windows(const struct plan_schedule *s, const char *zone, const char *date,
                            struct pace_interval *out, size_t max, size_t *n, struct err *e)
{
    *n = 0;
    int wd = tz_date_weekday(date);
    if (wd < 0)
        return err_set(e, IPW_EUSAGE, "expected a date such as 2026-12-01, found \"%s\"",
                       date ? date : "");
    ipw_status rc = tz_zone_check(zone, e);
    if (rc != IPW_OK || !pace_day_scheduled(s, wd))
        return rc;
    /* Minute by minute, so that overlapping windows merge and the order is the day's. */
    bool open[1440];
    for (int m = 0; m < 1440; m++) {
        open[m] = false;
        for (size_t i = 0; i < s->n_windows && !open[m]; i++)
            open[m] = pace_in_window(&s->windows[i], m);
    }
    for (int m = 0; m < 1440;) {
        if (!open[m]) {
            m++;
            continue;
        }
        int end = m;
        while (end < 1440 && open[end])
            end++;
        struct pace_interval iv;
        rc = tz_local_to_utc(zone, date, m, &iv.open_ms, e);
        if (rc == IPW_OK)
            rc = tz_local_to_utc(zone, date, end, &iv.close_ms, e);
        if (rc != IPW_OK)
            return rc;
        /* A window entirely inside a spring-forward gap never opens. */
        if (iv.close_ms > iv.open_ms) {
            if (*n == max)
                return err_set(e, IPW_EUSAGE, "more than %zu open intervals on %s", max, date);
            out[(*n)++] = iv;
        }
        m = end;
    }
    return IPW_OK;
}

ipw_status pace_frame_at(const struct plan_schedule *s, const char *zone, int64_t now_ms,
                         struct pace_frame *f, struct err *e)
{
    struct tz_local loc;
    ipw_status rc = tz_local(now_ms, zone, &loc, e);
    if (rc != IPW_OK)
        return rc;
    memset(f, 0, sizeof *f);
    f->now_ms = now_ms;
    memcpy(f->today, loc.date, sizeof f->today);
    f->open_ms = INT64_MAX;
    f->close_ms = INT64_MAX;
    char date[TZ_DATE_MAX];
    rc = tz_next_day(loc.date, date, e);
    if (rc == IPW_OK)
        rc = tz_local_midnight_utc(zone, date, &f->midnight_ms, e);
    if (rc != IPW_OK)
        return rc;
    f->valid_until_ms = f->midnight_ms;

    /* Today, then up to a week ahead: a schedule with any open minute opens within 7 days. */
    memcpy(date, loc.date, sizeof date);
    struct pace_interval ivs[PACE_MAX_INTERVALS];
    for (int d = 0; d <= 7; d++) {
        size_t n = 0;
        rc = pace_day_windows(s, zone, date, ivs, PACE_MAX_INTERVALS, &n, e);
        if (rc != IPW_OK)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (ivs[i].close_ms <= now_ms)
                continue;
            f->open_ms = ivs[i].open_ms;
            f->close_ms = ivs[i].close_ms;
            f->open = ivs[i].open_ms <= now_ms;
            int64_t edge = f->open ? f->close_ms : f->open_ms;
            if (edge < f->valid_until_ms)
                f->valid_until_ms = edge;
            return IPW_OK;
        }
        rc = tz_next_day(date, date, e);
        if (rc != IPW_OK)
            return rc;
    }
    return IPW_OK;
}

ipw_status pace_next_window_start(const struct plan_schedule *s, const char *zone, int64_t now_ms,
                                  int64_t *start_ms, struct err *e)
{
    struct pace_frame f;
    ipw_status rc = pace_frame_at(s, zone, now_ms, &f, e);
    if (rc != IPW_OK)
        return rc;
    if (f.open_ms == INT64_MAX)
        return err_set(e, IPW_ENOTFOUND, "the schedule has no window open within a week");
    *start_ms = f.open ? now_ms : f.open_ms;
    return IPW_OK;
}

int64_t pace_slot_due(const struct pace_slot *slot, const struct pace_frame *f)
{
    if (slot->idle || !pace_rate_ok(slot->rate_per_min))
        return INT64_MAX;
    int64_t t = pace_seq_due(&slot->seq, slot->rate_per_min, f->now_ms);
    /* A run claims a message only once its time has come, so its next one is never more than
     * one interval (and a rounded millisecond) ahead of now. One further ahead was planned by
     * a clock ahead of this one (a mistaken --now in the future, a clock set back): waiting for
     * it could mean waiting for weeks, so a new run starts now. */
    if (t != INT64_MAX && (double)(t - f->now_ms) > 2 * 60000.0 / slot->rate_per_min)
        t = f->now_ms;
    if (slot->paused_until_ms > t)
        t = slot->paused_until_ms;
    /* A provider at its cap waits for the count to reset at the next local midnight. */
    if (slot->cap >= 0 && slot->sent_today >= slot->cap && f->midnight_ms > t)
        t = f->midnight_ms;
    if (f->open_ms > t)
        t = f->open_ms;
    return t;
}

struct pace_pick pace_pick(const struct pace_slot *slots, size_t n, const struct pace_frame *f)
{
    struct pace_pick best = {-1, f->valid_until_ms};
    for (size_t i = 0; i < n; i++) {
        int64_t t = pace_slot_due(&slots[i], f);
        /* Strictly earlier wins, so equal times keep the lower index. */
        if (t < f->close_ms && (best.slot < 0 || t < best.at_ms)) {
            best.slot = (int)i;
            best.at_ms = t;
        }
    }
    return best;
}
