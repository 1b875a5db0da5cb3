/* Unit tests of pace.c with a fake clock: even spacing without drift, interleaving, cron ticks,
 * restarts without bursts, windows, pauses, caps, and a 30-day warm-up driven by ramp.c whose
 * daily counts must equal an independent computation and ramp_simulate(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipwarm/pace.h"
#include "ipwarm/ramp.h"

#define MIN_MS   (60 * 1000LL)
#define HOUR_MS  (60 * MIN_MS)
#define DAY_MS   (24 * HOUR_MS)
#define MON_FRI  0x1fu
#define ALL_DAYS 0x7fu

/* UTC ms of a civil date and time (Hinnant's days_from_civil), independent of tz.c. */
static int64_t utc(int y, int m, int d, int hh, int mm, int ss)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return ((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000;
}

/* ---- a fake engine: the loop the runner will run, with the clock under the test's control -- */

#define SIM_MAX_PROV 4
#define SIM_MAX_DAYS 64

struct sim_prov {
    struct pace_slot slot;
    const struct plan_ramp *ramp;    /* NULL: slot.rate_per_min and slot.cap are fixed */
    struct ramp_state rs;            /* the stored ramp state */
    int64_t day_count[SIM_MAX_DAYS]; /* messages per sending day (index sending_day - 1) */
    char day_date[SIM_MAX_DAYS][TZ_DATE_MAX];
};

struct sim_send {
    int slot;
    int64_t planned_ms;
};

struct sim {
    struct plan_schedule sched;
    struct plan_window win[2];
    const char *zone;
    struct sim_prov p[SIM_MAX_PROV];
    size_t n;
    struct pace_frame f;
    bool have_frame;
    struct sim_send *log; /* every send, if not NULL */
    size_t n_log, cap_log;
    int64_t frames; /* how many frames were computed */
};

static void sim_init(struct sim *s, const char *zone, unsigned days, int start_min, int end_min)
{
    memset(s, 0, sizeof *s);
    s->zone = zone;
    s->win[0].start_min = start_min;
    s->win[0].end_min = end_min;
    s->sched.days = days;
    s->sched.windows = s->win;
    s->sched.n_windows = 1;
}

static void sim_add_fixed(struct sim *s, double rate, int64_t cap)
{
    struct sim_prov *p = &s->p[s->n++];
    p->slot.rate_per_min = rate;
    p->slot.cap = cap;
}

static void sim_add_ramp(struct sim *s, const struct plan_ramp *r)
{
    struct sim_prov *p = &s->p[s->n++];
    p->ramp = r;
    p->slot.cap = -1;
}

static void sim_keep_log(struct sim *s, size_t cap)
{
    s->log = calloc(cap, sizeof *s->log);
    assert_non_null(s->log);
    s->cap_log = cap;
}

static void sim_free(struct sim *s)
{
    free(s->log);
    s->log = NULL;
}

static void sim_frame(struct sim *s, int64_t now)
{
    struct err e;
    char before[TZ_DATE_MAX];
    memcpy(before, s->f.today, sizeof before);
    assert_int_equal(pace_frame_at(&s->sched, s->zone, now, &s->f, &e), IPW_OK);
    s->frames++;
    /* sent_today belongs to a local date: a new date starts from 0. */
    if (!s->have_frame || strcmp(before, s->f.today) != 0)
        for (size_t i = 0; i < s->n; i++)
            s->p[i].slot.sent_today = 0;
    s->have_frame = true;
}

/* The ramp state the provider would have if it sent now: what the engine computes before each
 * pick, storing it only once the day's first message goes out. */
static void sim_ramp_tentative(struct sim *s, struct sim_prov *p, struct ramp_state *next)
{
    struct err e;
    struct ramp_day_counts prev = {0};
    if (p->rs.sending_day > 0)
        prev.attempts = p->day_count[p->rs.sending_day - 1]; /* clean: nothing deferred */
    assert_int_equal(ramp_begin_day(p->ramp, &p->rs, &prev, s->f.today, next, NULL, &e), IPW_OK);
    p->slot.rate_per_min = next->rate_per_min;
    p->slot.cap = ramp_cap_today(p->ramp, next->sending_day);
}

static void sim_send(struct sim *s, int i, int64_t planned)
{
    struct sim_prov *p = &s->p[i];
    if (p->ramp) {
        if (strcmp(p->rs.day_date, s->f.today) != 0) /* the day's first message */
            sim_ramp_tentative(s, p, &p->rs);
        assert_true(p->rs.sending_day <= SIM_MAX_DAYS);
        p->day_count[p->rs.sending_day - 1]++;
        memcpy(p->day_date[p->rs.sending_day - 1], p->rs.day_date, TZ_DATE_MAX);
    }
    pace_seq_commit(&p->slot.seq, p->slot.rate_per_min, planned);
    p->slot.sent_today++;
    if (s->log) {
        assert_true(s->n_log < s->cap_log);
        s->log[s->n_log].slot = i;
        s->log[s->n_log].planned_ms = planned;
        s->n_log++;
    }
}

/* One pick at now, with a fresh frame when the old one has expired. */
static struct pace_pick sim_pick(struct sim *s, int64_t now)
{
    if (!s->have_frame || now >= s->f.valid_until_ms || now < s->f.now_ms)
        sim_frame(s, now);
    s->f.now_ms = now; /* the frame's facts hold until valid_until; only "now" moves */
    struct pace_slot slots[SIM_MAX_PROV];
    for (size_t i = 0; i < s->n; i++) {
        /* On the current sending day the slot already holds its rate and cap. */
        if (s->p[i].ramp && strcmp(s->p[i].rs.day_date, s->f.today) != 0) {
            struct ramp_state next;
            sim_ramp_tentative(s, &s->p[i], &next);
        }
        slots[i] = s->p[i].slot;
    }
    return pace_pick(slots, s->n, &s->f);
}

/* The continuous runner: wakes when the pick says, sends what is due, from start until end. */
static void sim_run(struct sim *s, int64_t start, int64_t end)
{
    int64_t now = start;
    while (now < end) {
        struct pace_pick k = sim_pick(s, now);
        if (k.at_ms > now) {
            now = k.at_ms; /* sleep, then ask again with fresh state */
            continue;
        }
        if (k.slot < 0) {
            s->have_frame = false; /* the frame ran out exactly now */
            continue;
        }
        sim_send(s, k.slot, k.at_ms);
    }
}

/* The cron runner: a process every 60 s (starting jitter_ms late) sends what is planned
 * before the next tick, then exits; only the stored state carries over. */
static void sim_run_cron(struct sim *s, int64_t start, int64_t end, int64_t jitter_ms)
{
    for (int64_t tick = start; tick < end; tick += MIN_MS) {
        s->have_frame = false; /* a new process knows nothing but the store */
        int64_t now = tick + jitter_ms;
        int64_t stop = tick + MIN_MS < end ? tick + MIN_MS : end;
        for (;;) {
            struct pace_pick k = sim_pick(s, now);
            if (k.at_ms >= stop)
                break;
            if (k.at_ms > now) {
                now = k.at_ms;
                continue;
            }
            if (k.slot < 0) {
                s->have_frame = false;
                continue;
            }
            sim_send(s, k.slot, k.at_ms);
        }
    }
}

/* Sends of one slot from the log, in order. */
static size_t sim_times(const struct sim *s, int slot, int64_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_log; i++)
        if (s->log[i].slot == slot && n < max)
            out[n++] = s->log[i].planned_ms;
    return n;
}

/* ---- the pacing rule ---- */

static void test_pace_next_rule(void **state)
{
    (void)state;
    int64_t t = utc(2026, 6, 1, 9, 0, 0);
    assert_int_equal(pace_next(5, t, t), t + 12000);
    assert_int_equal(pace_next(5, t, t + 12000), t + 12000);
    /* Late by up to one interval: keep the plan (send at once). */
    assert_int_equal(pace_next(5, t, t + 24000), t + 12000);
    /* More than one interval behind: restart at now, no catching up. */
    assert_int_equal(pace_next(5, t, t + 24001), t + 24001);
    assert_int_equal(pace_next(5, t, t + 3 * HOUR_MS), t + 3 * HOUR_MS);
    assert_int_equal(pace_next(7, t, t), t + 8571);
    assert_int_equal(pace_next(0, t, t), INT64_MAX);
    assert_int_equal(pace_next(-1, t, t), INT64_MAX);
    assert_int_equal(pace_next(NAN, t, t), INT64_MAX);

    struct pace_seq q;
    memset(&q, 0, sizeof q);
    assert_int_equal(pace_seq_due(&q, 5, t), t); /* no run: now */
    assert_int_equal(pace_seq_last(&q), INT64_MIN);
    pace_seq_commit(&q, 5, t);
    assert_int_equal(pace_seq_last(&q), t);
    assert_int_equal(pace_seq_due(&q, 5, t), t + 12000);
    pace_seq_commit(&q, 5, t + 12000);
    assert_int_equal(q.n, 2);
    /* A new rate continues from the last message at the new spacing. */
    assert_int_equal(pace_seq_due(&q, 60, t + 12000), t + 13000);
    pace_seq_commit(&q, 60, t + 13000);
    assert_int_equal(q.anchor_ms, t + 13000);
    assert_int_equal(q.n, 1);
    assert_int_equal(pace_seq_due(&q, 60, t + 13000), t + 14000);
    /* pace_seq_run commits what a loop would. */
    assert_int_equal(pace_seq_run(&q, t + 20000, -1), 6); /* 14000 .. 19000 */
    assert_int_equal(pace_seq_last(&q), t + 19000);
    assert_int_equal(pace_seq_run(&q, t + 30000, 3), 3);
    assert_int_equal(pace_seq_last(&q), t + 22000);
    assert_int_equal(pace_seq_run(&q, t + 22000, -1), 0);
}

/* pace_seq_run is the closed form of a due/commit loop: compare them on many runs. */
static void test_pace_seq_run_equals_loop(void **state)
{
    (void)state;
    uint32_t x = 12345;
    for (int trial = 0; trial < 300; trial++) {
        x = x * 1103515245u + 12345u;
        double rate = 0.3 + (double)(x % 100000) / 97.0; /* 0.3 .. ~1031/min */
        x = x * 1103515245u + 12345u;
        int64_t t0 = utc(2026, 6, 1, 0, 0, 0) + (int64_t)(x % 86400000u);
        x = x * 1103515245u + 12345u;
        int64_t end = t0 + 1 + (int64_t)(x % 3600000u);
        int64_t limit = trial % 3 == 0 ? (int64_t)(x % 50) : -1;
        struct pace_seq a, b;
        memset(&a, 0, sizeof a);
        pace_seq_commit(&a, rate, t0);
        b = a;
        int64_t n = 0;
        for (;;) {
            int64_t due = pace_seq_due(&a, rate, t0);
            if (due >= end || (limit >= 0 && n == limit))
                break;
            pace_seq_commit(&a, rate, due);
            n++;
        }
        assert_int_equal(pace_seq_run(&b, end, limit), n);
        assert_int_equal(b.n, a.n);
        assert_int_equal(pace_seq_last(&b), pace_seq_last(&a));
    }
}

static void test_pace_5_per_min_one_hour(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "UTC", ALL_DAYS, 0, 1440);
    sim_add_fixed(&s, 5, -1);
    sim_keep_log(&s, 1000);
    int64_t t0 = utc(2026, 6, 1, 9, 0, 0) + 345; /* not on a minute: no alignment either */
    sim_run(&s, t0, t0 + HOUR_MS);
    assert_int_equal(s.n_log, 300);
    assert_int_equal(s.log[0].planned_ms, t0);
    for (size_t i = 1; i < s.n_log; i++)
        assert_int_equal(s.log[i].planned_ms - s.log[i - 1].planned_ms, 12000);
    sim_free(&s);
}

static void test_pace_7_per_min_no_drift(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "UTC", ALL_DAYS, 0, 1440);
    sim_add_fixed(&s, 7, -1);
    sim_keep_log(&s, 20000);
    int64_t t0 = utc(2026, 6, 1, 0, 0, 0);
    sim_run(&s, t0, t0 + DAY_MS);
    assert_int_equal(s.n_log, 7 * 1440);
    const double iv = 60000.0 / 7;
    for (size_t i = 1; i < s.n_log; i++) {
        double gap = (double)(s.log[i].planned_ms - s.log[i - 1].planned_ms);
        assert_true(fabs(gap - iv) < 1.0);
        /* Each message sits where k * interval puts it: no drift, however long the run. */
        assert_true(fabs((double)(s.log[i].planned_ms - t0) - (double)i * iv) <= 0.5);
    }
    assert_true(s.log[s.n_log - 1].planned_ms < t0 + DAY_MS);
    sim_free(&s);
}

static void test_pace_three_providers_interleave(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "UTC", ALL_DAYS, 0, 1440);
    sim_add_fixed(&s, 5, -1);
    sim_add_fixed(&s, 60, -1);
    sim_add_fixed(&s, 600, -1);
    sim_keep_log(&s, 50000);
    int64_t t0 = utc(2026, 6, 1, 9, 0, 0);
    sim_run(&s, t0, t0 + HOUR_MS);
    assert_int_equal(s.n_log, 300 + 3600 + 36000);
    /* All three are due at t0: the plan's order breaks the tie. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.log[i].slot, i);
        assert_int_equal(s.log[i].planned_ms, t0);
    }
    /* One time line, in order: they interleave rather than take turns in blocks. */
    for (size_t i = 1; i < s.n_log; i++)
        assert_true(s.log[i].planned_ms >= s.log[i - 1].planned_ms);
    static int64_t t[40000];
    const int64_t gap[3] = {12000, 1000, 100};
    const size_t count[3] = {300, 3600, 36000};
    for (int k = 0; k < 3; k++) {
        size_t n = sim_times(&s, k, t, 40000);
        assert_int_equal(n, count[k]);
        for (size_t i = 1; i < n; i++)
            assert_int_equal(t[i] - t[i - 1], gap[k]);
    }
    /* Between two gmail (5/min) messages, 12 of the 60/min provider's. */
    size_t between = 0;
    for (size_t i = 0; i < s.n_log && s.log[i].planned_ms < t0 + 12000; i++)
        between += s.log[i].slot == 1;
    assert_int_equal(between, 12);
    sim_free(&s);
}

static void test_pace_cron_ticks_equal_continuous(void **state)
{
    (void)state;
    const double rates[] = {7, 0.7, 600, 45.5};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        struct sim a, b;
        sim_init(&a, "Asia/Tokyo", ALL_DAYS, 0, 1440);
        sim_init(&b, "Asia/Tokyo", ALL_DAYS, 0, 1440);
        sim_add_fixed(&a, rates[r], -1);
        sim_add_fixed(&a, 5, -1);
        sim_add_fixed(&b, rates[r], -1);
        sim_add_fixed(&b, 5, -1);
        sim_keep_log(&a, 100000);
        sim_keep_log(&b, 100000);
        int64_t t0 = utc(2026, 6, 1, 9, 0, 0);
        sim_run(&a, t0, t0 + 2 * HOUR_MS);
        /* Each tick's process starts 150 ms late; the first tick defines the start. */
        sim_run_cron(&b, t0, t0 + 2 * HOUR_MS, 0);
        assert_int_equal(a.n_log, b.n_log);
        for (size_t i = 0; i < a.n_log; i++) {
            assert_int_equal(a.log[i].slot, b.log[i].slot);
            assert_int_equal(a.log[i].planned_ms, b.log[i].planned_ms);
        }
        /* Each process starting 150 ms late does not move the plan either: messages planned
         * in a tick's first 150 ms go out at once, late, and keep their planned times. Only the
         * very first message (no run yet) starts at the first process's start. */
        struct sim c, d;
        sim_init(&c, "Asia/Tokyo", ALL_DAYS, 0, 1440);
        sim_init(&d, "Asia/Tokyo", ALL_DAYS, 0, 1440);
        sim_add_fixed(&c, rates[r], -1);
        sim_add_fixed(&c, 5, -1);
        sim_add_fixed(&d, rates[r], -1);
        sim_add_fixed(&d, 5, -1);
        sim_keep_log(&c, 100000);
        sim_keep_log(&d, 100000);
        sim_run_cron(&c, t0, t0 + 2 * HOUR_MS, 150);
        sim_run(&d, t0 + 150, t0 + 2 * HOUR_MS);
        assert_int_equal(c.n_log, d.n_log);
        for (size_t i = 0; i < c.n_log; i++) {
            assert_int_equal(c.log[i].slot, d.log[i].slot);
            assert_int_equal(c.log[i].planned_ms, d.log[i].planned_ms);
        }
        sim_free(&a);
        sim_free(&b);
        sim_free(&c);
        sim_free(&d);
    }
}

static void test_pace_restart_after_stop_no_burst(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "UTC", ALL_DAYS, 0, 1440);
    sim_add_fixed(&s, 5, -1);
    sim_keep_log(&s, 1000);
    int64_t t0 = utc(2026, 6, 1, 9, 0, 0);
    sim_run(&s, t0, t0 + HOUR_MS);
    size_t before = s.n_log;
    assert_int_equal(before, 300);
    /* Stopped for three hours; the stored run is picked up by a new process. */
    int64_t restart = t0 + 4 * HOUR_MS + 4321;
    s.have_frame = false;
    sim_run(&s, restart, restart + HOUR_MS);
    assert_int_equal(s.n_log, 600);
    assert_int_equal(s.log[before].planned_ms, restart);
    for (size_t i = before + 1; i < s.n_log; i++)
        assert_int_equal(s.log[i].planned_ms - s.log[i - 1].planned_ms, 12000);
    sim_free(&s);
}

static void test_pace_window_tokyo(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "Asia/Tokyo", MON_FRI, 9 * 60, 18 * 60);
    sim_add_fixed(&s, 5, -1);
    sim_keep_log(&s, 20000);
    /* Monday 2026-06-01 00:00 JST to Monday 2026-06-08 00:00 JST. */
    int64_t t0 = utc(2026, 5, 31, 15, 0, 0);
    sim_run(&s, t0, t0 + 7 * DAY_MS);
    assert_int_equal(s.n_log, 5 * 2700);
    for (int d = 0; d < 5; d++) {
        int64_t open = utc(2026, 6, 1 + d, 0, 0, 0); /* 09:00 JST */
        const struct sim_send *first = &s.log[d * 2700];
        const struct sim_send *last = &s.log[d * 2700 + 2699];
        assert_int_equal(first->planned_ms, open);
        assert_int_equal(last->planned_ms, open + 9 * HOUR_MS - 12000);
        for (int i = 1; i < 2700; i++)
            assert_int_equal(first[i].planned_ms - first[i - 1].planned_ms, 12000);
        struct tz_local lt;
        struct err e;
        assert_int_equal(tz_local(first->planned_ms, "Asia/Tokyo", &lt, &e), IPW_OK);
        assert_int_equal(lt.hour, 9);
        assert_int_equal(tz_local(last->planned_ms, "Asia/Tokyo", &lt, &e), IPW_OK);
        assert_true(lt.minute_of_day < 18 * 60);
        assert_true(pace_window_open(&s.sched, &lt));
    }
    /* The week's frames are few: the runner asks the zone database a handful of times a day. */
    assert_true(s.frames < 5 * 7);
    sim_free(&s);
}

static void test_pace_cap_waits_for_local_midnight(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "Asia/Tokyo", ALL_DAYS, 0, 1440);
    sim_add_fixed(&s, 60, 10);
    sim_add_fixed(&s, 60, -1);
    sim_keep_log(&s, 200000);
    int64_t t0 = utc(2026, 6, 1, 10, 0, 0); /* 19:00 JST */
    int64_t midnight = utc(2026, 6, 1, 15, 0, 0);
    sim_run(&s, t0, midnight + 30000);
    static int64_t t[100000];
    size_t n = sim_times(&s, 0, t, 100000);
    assert_int_equal(n, 10 + 10); /* the cap again on the new date */
    for (size_t i = 1; i < 10; i++)
        assert_int_equal(t[i] - t[i - 1], 1000);
    assert_int_equal(t[9], t0 + 9000);
    assert_int_equal(t[10], midnight); /* nothing until local midnight, then a fresh run */
    for (size_t i = 11; i < n; i++)
        assert_int_equal(t[i] - t[i - 1], 1000);
    /* The uncapped provider was not held up by the capped one. */
    assert_int_equal(sim_times(&s, 1, t, 100000), 5 * 3600 + 30);

    /* pace_slot_due says the same directly. */
    struct pace_frame f;
    struct err e;
    assert_int_equal(pace_frame_at(&s.sched, "Asia/Tokyo", t0 + 20000, &f, &e), IPW_OK);
    assert_int_equal(f.midnight_ms, midnight);
    struct pace_slot slot;
    memset(&slot, 0, sizeof slot);
    slot.rate_per_min = 60;
    slot.cap = 10;
    slot.sent_today = 10;
    assert_int_equal(pace_slot_due(&slot, &f), midnight);
    slot.sent_today = 9;
    assert_int_equal(pace_slot_due(&slot, &f), t0 + 20000);
    sim_free(&s);
}

/* A run stored by a clock that was ahead (a run with --now next month): its next message is
 * weeks away by this clock. pace_slot_due starts a new run now instead of waiting for it; a run
 * claimed just now (up to one interval and a rounded millisecond ahead) is kept. */
static void test_pace_run_from_a_clock_ahead(void **state)
{
    (void)state;
    struct pace_frame f;
    struct err e;
    struct plan_window w = {0, 1440};
    struct plan_schedule sched = {ALL_DAYS, &w, 1};
    int64_t now = utc(2026, 6, 1, 9, 0, 0);
    assert_int_equal(pace_frame_at(&sched, "UTC", now, &f, &e), IPW_OK);
    struct pace_slot slot;
    memset(&slot, 0, sizeof slot);
    slot.rate_per_min = 60;
    slot.cap = -1;
    pace_seq_commit(&slot.seq, 60, now + 35 * DAY_MS);
    assert_int_equal(pace_seq_due(&slot.seq, 60, now), now + 35 * DAY_MS + 1000);
    assert_int_equal(pace_slot_due(&slot, &f), now);
    /* Just claimed at now: the next one is one interval on, as always. */
    memset(&slot.seq, 0, sizeof slot.seq);
    pace_seq_commit(&slot.seq, 60, now);
    assert_int_equal(pace_slot_due(&slot, &f), now + 1000);
    /* 7/min does not divide a minute: the rounded interval (8571 or 8572 ms) is kept. */
    slot.rate_per_min = 7;
    memset(&slot.seq, 0, sizeof slot.seq);
    for (int i = 0; i < 5; i++) {
        int64_t due = pace_slot_due(&slot, &f);
        pace_seq_commit(&slot.seq, 7, due);
        f.now_ms = due;
    }
    assert_int_equal(pace_slot_due(&slot, &f), now + 42857); /* round(5 * 60000 / 7) */
}

static void test_pace_pause_and_idle(void **state)
{
    (void)state;
    struct pace_frame f;
    struct err e;
    struct plan_window w = {0, 1440};
    struct plan_schedule sched = {ALL_DAYS, &w, 1};
    int64_t now = utc(2026, 6, 1, 9, 0, 0);
    assert_int_equal(pace_frame_at(&sched, "UTC", now, &f, &e), IPW_OK);
    assert_true(f.open);
    assert_int_equal(f.open_ms, utc(2026, 6, 1, 0, 0, 0));
    assert_int_equal(f.close_ms, utc(2026, 6, 2, 0, 0, 0));
    struct pace_slot slots[3];
    memset(slots, 0, sizeof slots);
    for (int i = 0; i < 3; i++) {
        slots[i].rate_per_min = 60;
        slots[i].cap = -1;
        pace_seq_commit(&slots[i].seq, 60, now - 500); /* each has a message due at +500 ms */
    }
    slots[0].paused_until_ms = now + 15 * MIN_MS;
    slots[1].idle = true;
    struct pace_pick k = pace_pick(slots, 3, &f);
    assert_int_equal(k.slot, 2);
    assert_int_equal(k.at_ms, now + 500);
    slots[2].rate_per_min = 0;
    k = pace_pick(slots, 3, &f);
    assert_int_equal(k.slot, 0);
    assert_int_equal(k.at_ms, now + 15 * MIN_MS); /* not before the pause ends, no burst after */
    /* A pause past the window's end: nothing in this frame; ask again when it ends. */
    slots[0].paused_until_ms = f.close_ms;
    k = pace_pick(slots, 3, &f);
    assert_int_equal(k.slot, -1);
    assert_int_equal(k.at_ms, f.valid_until_ms);
}

static void test_pace_windows(void **state)
{
    (void)state;
    struct err e;
    struct plan_window w[2] = {{9 * 60, 18 * 60}, {22 * 60, 2 * 60}};
    struct plan_schedule sched = {MON_FRI, w, 1};
    struct tz_local lt;
    /* Friday 2026-06-05 08:59 and 09:00 JST, 17:59 and 18:00, Saturday 10:00. */
    assert_int_equal(tz_local(utc(2026, 6, 4, 23, 59, 0), "Asia/Tokyo", &lt, &e), IPW_OK);
    assert_false(pace_window_open(&sched, &lt));
    assert_int_equal(tz_local(utc(2026, 6, 5, 0, 0, 0), "Asia/Tokyo", &lt, &e), IPW_OK);
    assert_true(pace_window_open(&sched, &lt));
    assert_int_equal(tz_local(utc(2026, 6, 5, 8, 59, 59), "Asia/Tokyo", &lt, &e), IPW_OK);
    assert_true(pace_window_open(&sched, &lt));
    assert_int_equal(tz_local(utc(2026, 6, 5, 9, 0, 0), "Asia/Tokyo", &lt, &e), IPW_OK);
    assert_false(pace_window_open(&sched, &lt));
    assert_int_equal(tz_local(utc(2026, 6, 6, 1, 0, 0), "Asia/Tokyo", &lt, &e), IPW_OK);
    assert_false(pace_window_open(&sched, &lt));

    /* From Friday 18:30 JST the next window is Monday 09:00 JST; inside one, now. */
    int64_t start;
    assert_int_equal(
        pace_next_window_start(&sched, "Asia/Tokyo", utc(2026, 6, 5, 9, 30, 0), &start, &e),
        IPW_OK);
    assert_int_equal(start, utc(2026, 6, 8, 0, 0, 0));
    assert_int_equal(
        pace_next_window_start(&sched, "Asia/Tokyo", utc(2026, 6, 5, 3, 0, 7), &start, &e), IPW_OK);
    assert_int_equal(start, utc(2026, 6, 5, 3, 0, 7));
    struct plan_schedule never = {0, w, 1};
    assert_int_equal(pace_next_window_start(&never, "Asia/Tokyo", 0, &start, &e), IPW_ENOTFOUND);
    assert_int_equal(pace_next_window_start(&sched, "Nowhere/Zone", 0, &start, &e), IPW_ECONFIG);

    /* A window across midnight opens at both ends of each scheduled date. */
    struct plan_schedule night = {MON_FRI, &w[1], 1};
    struct pace_interval iv[PACE_MAX_INTERVALS];
    size_t n;
    assert_int_equal(pace_day_windows(&night, "UTC", "2026-06-05", iv, PACE_MAX_INTERVALS, &n, &e),
                     IPW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(iv[0].open_ms, utc(2026, 6, 5, 0, 0, 0));
    assert_int_equal(iv[0].close_ms, utc(2026, 6, 5, 2, 0, 0));
    assert_int_equal(iv[1].open_ms, utc(2026, 6, 5, 22, 0, 0));
    assert_int_equal(iv[1].close_ms, utc(2026, 6, 6, 0, 0, 0));
    assert_int_equal(pace_day_windows(&night, "UTC", "2026-06-06", iv, PACE_MAX_INTERVALS, &n, &e),
                     IPW_OK);
    assert_int_equal(n, 0); /* Saturday */
    assert_int_equal(tz_local(utc(2026, 6, 6, 1, 0, 0), "UTC", &lt, &e), IPW_OK);
    assert_false(pace_window_open(&night, &lt));
    assert_int_equal(tz_local(utc(2026, 6, 5, 1, 0, 0), "UTC", &lt, &e), IPW_OK);
    assert_true(pace_window_open(&night, &lt));

    /* Overlapping windows merge; DST days have their real length. */
    struct plan_window ov[2] = {{60, 180}, {120, 240}}; /* 01:00-03:00 and 02:00-04:00 */
    struct plan_schedule both = {ALL_DAYS, ov, 2};
    assert_int_equal(
        pace_day_windows(&both, "America/New_York", "2026-03-08", iv, PACE_MAX_INTERVALS, &n, &e),
        IPW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(iv[0].close_ms - iv[0].open_ms, 2 * HOUR_MS);
    assert_int_equal(
        pace_day_windows(&both, "America/New_York", "2026-11-01", iv, PACE_MAX_INTERVALS, &n, &e),
        IPW_OK);
    assert_int_equal(iv[0].close_ms - iv[0].open_ms, 4 * HOUR_MS);
    /* A window inside the skipped hour never opens. */
    struct plan_window gap = {2 * 60 + 10, 2 * 60 + 50};
    struct plan_schedule g = {ALL_DAYS, &gap, 1};
    assert_int_equal(
        pace_day_windows(&g, "America/New_York", "2026-03-08", iv, PACE_MAX_INTERVALS, &n, &e),
        IPW_OK);
    assert_int_equal(n, 0);
    assert_int_equal(
        pace_day_windows(&g, "America/New_York", "2026-03-09", iv, PACE_MAX_INTERVALS, &n, &e),
        IPW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(
        pace_day_windows(&g, "America/New_York", "2026-03-32", iv, PACE_MAX_INTERVALS, &n, &e),
        IPW_EUSAGE);
}

/* ---- the 30-day warm-up ---- */

static int64_t caps4[] = {500, 1000, 2000, 5000};

static struct plan_ramp ramp_of(double start, double growth, double max, int64_t *caps,
                                size_t n_caps)
{
    struct plan_ramp r;
    memset(&r, 0, sizeof r);
    r.start_per_min = start;
    r.growth = growth;
    r.max_per_min = max;
    r.daily_cap = caps;
    r.n_daily_cap = n_caps;
    r.deferral_below_pct = 5;
    r.bounce_below_pct = 2;
    return r;
}

/* Checks the sim's per-sending-day counts against ramp_simulate for the same plan. */
static void check_against_simulate(const struct sim *s, size_t k, int days, const char *start)
{
    struct plan p;
    struct plan_provider prov;
    memset(&p, 0, sizeof p);
    memset(&prov, 0, sizeof prov);
    p.timezone = (char *)s->zone;
    p.schedule = s->sched;
    prov.name = (char *)"x";
    prov.ramp = *s->p[k].ramp;
    p.providers = &prov;
    p.n_providers = 1;
    struct ramp_sim_day d[SIM_MAX_DAYS];
    struct err e;
    assert_int_equal(ramp_simulate(&p, 0, start, days, d, &e), IPW_OK);
    for (int i = 0; i < days; i++) {
        assert_string_equal(d[i].date, s->p[k].day_date[i]);
        assert_int_equal(d[i].planned, s->p[k].day_count[i]);
    }
}

static void test_pace_ramp_30_day_warmup(void **state)
{
    (void)state;
    clock_t c0 = clock();
    /* microsoft: the example ramp with caps; gmail: uncapped, up to 12/min. */
    struct plan_ramp capped = ramp_of(5, 1.5, 600, caps4, 4);
    struct plan_ramp open = ramp_of(1, 1.5, 12, NULL, 0);
    struct sim s;
    sim_init(&s, "Asia/Tokyo", MON_FRI, 9 * 60, 18 * 60);
    sim_add_ramp(&s, &capped);
    sim_add_ramp(&s, &open);
    /* 30 calendar days from Monday 2026-06-01 00:00 JST: 22 weekdays. */
    int64_t t0 = utc(2026, 5, 31, 15, 0, 0);
    sim_run(&s, t0, t0 + 30 * DAY_MS);
    assert_int_equal(s.p[0].rs.sending_day, 22);
    assert_int_equal(s.p[1].rs.sending_day, 22);
    for (int d = 0; d < 22; d++) {
        /* Independently: stage d, rate 5 * 1.5^d up to max, one message per 60/rate s over
         * the 540 minutes of 09:00-18:00, then the day's cap. */
        double r0 = fmin(5 * pow(1.5, d), 600), r1 = fmin(pow(1.5, d), 12);
        int64_t cap0 = caps4[d < 4 ? d : 3];
        int64_t want0 = (int64_t)ceil(r0 * 540 - 1e-9);
        int64_t want1 = (int64_t)ceil(r1 * 540 - 1e-9);
        assert_int_equal(s.p[0].day_count[d], want0 < cap0 ? want0 : cap0);
        assert_int_equal(s.p[1].day_count[d], want1);
    }
    assert_int_equal(s.p[1].day_count[0], 540);
    assert_int_equal(s.p[1].day_count[21], 12 * 540);
    assert_string_equal(s.p[0].day_date[0], "2026-06-01");
    assert_string_equal(s.p[0].day_date[5], "2026-06-08");
    assert_string_equal(s.p[0].day_date[21], "2026-06-30");
    assert_int_equal(s.p[0].rs.stage, 12);
    assert_int_equal(s.p[1].rs.stage, 7); /* 1.5^6 = 11.4 < 12 <= 1.5^7 */
    check_against_simulate(&s, 0, 22, "2026-06-01");
    check_against_simulate(&s, 1, 22, "2026-05-30"); /* a Saturday: starts on Monday */
    /* A month of warm-up is a unit test: well under a second even with sanitizers. */
    assert_true((double)(clock() - c0) / CLOCKS_PER_SEC < 1.0);
}

/* A window through midnight: the engine's run goes on across the date, at the new day's rate
 * from the first message of the day, and ramp_simulate follows it message for message. */
static void test_pace_ramp_all_day_matches_simulate(void **state)
{
    (void)state;
    int64_t two[] = {1500, 3000};
    struct plan_ramp a = ramp_of(1, 1.5, 6, NULL, 0);
    struct plan_ramp b = ramp_of(0.7, 1.37, 3.1, two, 2);
    const char *zones[] = {"UTC", "America/New_York"};
    for (size_t z = 0; z < 2; z++) {
        struct sim s;
        sim_init(&s, zones[z], ALL_DAYS, 0, 1440);
        sim_add_ramp(&s, &a);
        sim_add_ramp(&s, &b);
        /* 2026-03-05 .. 2026-03-14: across New York's spring-forward day. */
        int64_t t0;
        struct err e;
        assert_int_equal(tz_local_midnight_utc(zones[z], "2026-03-05", &t0, &e), IPW_OK);
        int64_t t1;
        assert_int_equal(tz_local_midnight_utc(zones[z], "2026-03-15", &t1, &e), IPW_OK);
        sim_run(&s, t0 + 1234, t1);
        assert_int_equal(s.p[0].rs.sending_day, 10);
        check_against_simulate(&s, 0, 10, "2026-03-05");
        check_against_simulate(&s, 1, 10, "2026-03-05");
    }
    /* And a window 22:00-02:00 on weekdays. */
    struct sim s;
    sim_init(&s, "Asia/Tokyo", MON_FRI, 22 * 60, 2 * 60);
    sim_add_ramp(&s, &a);
    sim_add_ramp(&s, &b);
    int64_t t0 = utc(2026, 5, 31, 15, 0, 0);
    sim_run(&s, t0, t0 + 21 * DAY_MS);
    assert_int_equal(s.p[0].rs.sending_day, 15);
    check_against_simulate(&s, 0, 15, "2026-06-01");
    check_against_simulate(&s, 1, 15, "2026-06-01");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pace_next_rule),
        cmocka_unit_test(test_pace_seq_run_equals_loop),
        cmocka_unit_test(test_pace_5_per_min_one_hour),
        cmocka_unit_test(test_pace_7_per_min_no_drift),
        cmocka_unit_test(test_pace_three_providers_interleave),
        cmocka_unit_test(test_pace_cron_ticks_equal_continuous),
        cmocka_unit_test(test_pace_restart_after_stop_no_burst),
        cmocka_unit_test(test_pace_window_tokyo),
        cmocka_unit_test(test_pace_cap_waits_for_local_midnight),
        cmocka_unit_test(test_pace_pause_and_idle),
        cmocka_unit_test(test_pace_run_from_a_clock_ahead),
        cmocka_unit_test(test_pace_windows),
        cmocka_unit_test(test_pace_ramp_30_day_warmup),
        cmocka_unit_test(test_pace_ramp_all_day_matches_simulate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
