/*
 * pace: when each provider's next message goes out, evenly, inside the schedule's windows.
 *
 * A provider at R messages a minute gets one message every 60000/R ms, never a burst at the
 * start of a minute or of a cron tick. Its messages form a run: message k of a run is planned
 * at anchor + round(k * 60000 / R), so the spacing never drifts however long the run lasts, and
 * the run (struct pace_seq) is stored with the provider so that the next process, started by
 * the next cron tick, continues the same sequence. A run ends, and a new one starts at "now",
 * when its next planned time is more than one interval in the past (the runner was stopped, a
 * window was closed, the provider was paused): missed messages are never caught up. A change
 * of rate continues from the last planned message at the new spacing.
 *
 * Several providers interleave: pace_pick() takes each provider's run, rate, pause, cap and
 * the schedule's windows (struct pace_frame) and says which provider sends next and when.
 * Everything is a pure function of its arguments except that the window functions read the
 * zone database through tz.
 *
 * Windows follow plan_schedule: a local date whose weekday is in schedule.days is open during
 * its windows; a window whose end is before its start (22:00-02:00) is open from its start to
 * midnight and from midnight to its end on each scheduled date, so the days list picks local
 * dates and the minutes of one date never depend on the day before. A window whose start equals
 * its end is empty; 00:00-24:00 is the whole day.
 */
#ifndef IPWARM_PACE_H
#define IPWARM_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/plan.h"
#include "ipwarm/tz.h"

/* At most this many separate open intervals in one local day (every other minute open). */
#define PACE_MAX_INTERVALS 720

/* One provider's current run of evenly spaced messages; a zeroed struct is "no run yet". */
struct pace_seq {
    int64_t anchor_ms;   /* planned time of message 0 of the run */
    int64_t n;           /* messages of the run committed so far; the next is message n */
    double rate_per_min; /* the rate the run is spaced at */
};

/*
 * One step of the pacing rule: last_planned_ms + 60000/rate (rounded to the ms), or now_ms if
 * that is more than one interval before now_ms (never catch up with a burst). INT64_MAX when
 * rate_per_min is not > 0. Runs use pace_seq_due, which applies the same rule from the run's
 * anchor so that rounding never accumulates.
 */
int64_t pace_next(double rate_per_min, int64_t last_planned_ms, int64_t now_ms);

/*
 * The planned time of the next message of s at rate_per_min, seen at now_ms: now_ms when there
 * is no run yet or the run's next message is more than one interval before now_ms; else the
 * run's next message, or, if the rate changed, pace_next(rate, run's last message, now).
 * The result may be before now_ms by up to one interval (send at once, keep the plan).
 * INT64_MAX when rate_per_min is not > 0.
 */
int64_t pace_seq_due(const struct pace_seq *s, double rate_per_min, int64_t now_ms);

/*
 * Records that the message planned at due_ms was claimed (its attempt is being stored and
 * sent). When due_ms is the run's next message at the same rate the run goes on; otherwise a
 * new run starts at due_ms (a restart, a rate change, a delay by a window, pause or cap).
 * Always pass the planned time, not the time the message actually went out: that is what keeps
 * the sequence even.
 */
void pace_seq_commit(struct pace_seq *s, double rate_per_min, int64_t due_ms);

/*
 * Commits, without gaps, the run's next messages planned before end_ms, at most limit of them
 * (limit < 0: no limit), as a loop of pace_seq_due/pace_seq_commit would when nothing
 * interrupts it. Returns how many; 0 if s has no run. For projections (ramp_simulate) and tests.
 */
int64_t pace_seq_run(struct pace_seq *s, int64_t end_ms, int64_t limit);

/* The planned time of the run's last committed message; INT64_MIN when there is none. */
int64_t pace_seq_last(const struct pace_seq *s);

/* True if the schedule has a window open at the local time t (its weekday and minute_of_day). */
bool pace_window_open(const struct plan_schedule *s, const struct tz_local *t);

/* An open interval of real time, UTC ms: [open_ms, close_ms). */
struct pace_interval {
    int64_t open_ms;
    int64_t close_ms;
};

/*
 * The open intervals of the local date in zone, in order, overlapping windows merged, each
 * within that date (the last may close at its midnight): at most max written to out, the count
 * in *n. Intervals that a DST change shortens are as long as the clock really runs; one that it
 * skips entirely is left out. Returns IPW_OK; IPW_EUSAGE for a bad date or more than max
 * intervals; IPW_ECONFIG for an unknown zone.
 */
ipw_status pace_day_windows(const struct plan_schedule *s, const char *zone, const char *date,
                            struct pace_interval *out, size_t max, size_t *n, struct err *e);

/*
 * What the schedule means at now_ms, for pace_pick. A frame holds until valid_until_ms (the
 * next window edge or local midnight); compute a new one then.
 */
struct pace_frame {
    int64_t now_ms;
    char today[TZ_DATE_MAX]; /* local date of now_ms */
    int64_t midnight_ms;     /* start of the next local date: sent_today resets */
    bool open;               /* a window is open at now_ms */
    int64_t open_ms;  /* start of the open interval (<= now_ms), else of the next one; INT64_MAX
                         if none opens within a week */
    int64_t close_ms; /* its end (never past the midnight that ends its date); INT64_MAX if none */
    int64_t valid_until_ms; /* the frame's facts change at this instant */
};

/* Fills f for now_ms. Returns IPW_OK; IPW_ECONFIG for an unknown zone; IPW_EUSAGE for a time
 * outside years 1..9999. */
ipw_status pace_frame_at(const struct plan_schedule *s, const char *zone, int64_t now_ms,
                         struct pace_frame *f, struct err *e);

/*
 * The first instant at or after now_ms at which a window is open (now_ms itself if one is open),
 * as UTC ms. Returns IPW_OK; IPW_ENOTFOUND when no window opens within a week (the schedule is
 * empty); IPW_ECONFIG for an unknown zone.
 */
ipw_status pace_next_window_start(const struct plan_schedule *s, const char *zone, int64_t now_ms,
                                  int64_t *start_ms, struct err *e);

/* One provider as pace_pick sees it. A zeroed slot with a rate is a fresh, unpaused provider. */
struct pace_slot {
    double rate_per_min;     /* the rate now: the ramp's, lowered by backoff; <= 0: not sending */
    struct pace_seq seq;     /* its run, as stored */
    int64_t paused_until_ms; /* not due before this; 0 = not paused */
    int64_t sent_today;      /* messages claimed on the frame's local date */
    int64_t cap;             /* today's cap (ramp_cap_today), -1 = none */
    bool idle;               /* nothing to send (no recipient due): never picked */
};

/*
 * When slot may send next under frame f: pace_seq_due at f->now_ms (or f->now_ms when that is
 * more than two intervals ahead: a run planned by a clock that was ahead, such as a mistaken
 * --now in the future), not before its pause ends, not before f->midnight_ms if it is at its
 * cap, not before f->open_ms. INT64_MAX when idle or not sending. A time at or after
 * f->close_ms cannot be used in this frame.
 */
int64_t pace_slot_due(const struct pace_slot *slot, const struct pace_frame *f);

/* pace_pick's answer. */
struct pace_pick {
    int slot;      /* the index of the provider to send to, or -1: nothing to send in this frame */
    int64_t at_ms; /* slot >= 0: the planned time of its message (send then, or at once if it
                      has passed); slot -1: when to compute a new frame and ask again */
};

/*
 * Picks the provider whose message is due first (ties go to the lower index, so the plan's
 * order decides), among slots[0..n) under frame f. A pick in the future is a time to wake up
 * and ask again with fresh state (the date, a pause, a cap may have changed by then), not a
 * promise; a pick due now is sent, and the caller then passes at_ms to pace_seq_commit for that
 * slot's run.
 */
struct pace_pick pace_pick(const struct pace_slot *slots, size_t n, const struct pace_frame *f);

#endif
