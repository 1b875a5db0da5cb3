/* Unit tests of backoff.c: throttling, pause doubling, stepwise recovery, rule triggers and
 * actions, the retry schedule, and a 30-day replay on a fake clock. Every expected value is
 * worked out here from the plan's numbers, not taken from the code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ipwarm/backoff.h"
#include "ipwarm/reply.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
/* 2026-12-01T00:00:00Z: the fake clock's start. */
#define T0 1796083200000LL

#define MS_BUSY "451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714)"
#define YAHOO_TSS04                                                                                \
    "421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected "           \
    "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
#define GMAIL_RAW                                                                                  \
    "421-4.7.28 [192.0.2.10      15] Our system has detected an\r\n"                               \
    "421-4.7.28 unusual rate of unsolicited mail originating from your IP\r\n"                     \
    "421 4.7.28 address. To protect our users from spam ... - gsmtp\r\n"

/* The plan's example backoff (plan.md): deferral 0.5, 15m, recover 30m by 25%; retry 5m..4h,
 * give up after 3d; max_pause 4h. */
static struct plan_backoff defaults(void)
{
    struct plan_backoff b = {
        .factor = 0.5,
        .pause_ms = 15 * MIN,
        .pause_max_ms = 4 * HOUR,
        .recover_after_ms = 30 * MIN,
        .recover_step_pct = 25,
        .retry_first_ms = 5 * MIN,
        .retry_max_ms = 4 * HOUR,
        .retry_give_up_ms = 3 * DAY,
    };
    return b;
}

/* ---- throttle ---- */

static void test_backoff_on_deferral_halves(void **state)
{
    (void)state;
    struct plan_backoff b = defaults();
    struct backoff_state s;
    backoff_state_init(&s, 8);
    assert_true(backoff_on_deferral(&s, &b, T0, "451 4.7.500 Server busy. Please try again later"));
    assert_float_equal(s.rate_per_min, 4, 1e-12);
    assert_int_equal(s.paused_until_ms, T0 + 15 * MIN);
    assert_int_equal(s.pause_level, 0);
    assert_int_equal(s.last_deferral_ms, T0);
    assert_string_equal(s.pause_reason, "451 4.7.500 Server busy. Please try again later "
                                        "(throttle x0.5 to 4/min, pause 15m)");
    assert_true(backoff_paused(&s, T0 + 15 * MIN - 1));
    assert_false(backoff_paused(&s, T0 + 15 * MIN));
    assert_float_equal(backoff_effective_rate(&s, &b, T0 + MIN), 4, 1e-12);

    /* Each deferral right after the pause halves again: 2, 1, then the floor of 1/min. */
    int64_t t = s.paused_until_ms + MIN;
    assert_true(backoff_on_deferral(&s, &b, t, MS_BUSY));
    assert_float_equal(s.rate_per_min, 2, 1e-12);
    t = s.paused_until_ms + MIN;
    assert_true(backoff_on_deferral(&s, &b, t, MS_BUSY));
    assert_float_equal(s.rate_per_min, 1, 1e-12);
    t = s.paused_until_ms + MIN;
    assert_true(backoff_on_deferral(&s, &b, t, NULL));
    assert_float_equal(s.rate_per_min, 1, 1e-12);
    assert_string_equal(s.pause_reason, "deferral (throttle x0.5 to 1/min, pause 2h)");

    /* 1.5/min halves to 0.75, which the floor lifts to 1. */
    backoff_state_init(&s, 1.5);
    backoff_on_deferral(&s, &b, T0, MS_BUSY);
    assert_float_equal(s.rate_per_min, 1, 1e-12);
    /* A plan already below 1/min is not raised by the floor. */
    backoff_state_init(&s, 0.5);
    backoff_on_deferral(&s, &b, T0, MS_BUSY);
    assert_float_equal(s.rate_per_min, 0.5, 1e-12);
    /* Another factor. */
    b.factor = 0.25;
    backoff_state_init(&s, 100);
    backoff_on_deferral(&s, &b, T0, MS_BUSY);
    assert_float_equal(s.rate_per_min, 25, 1e-12);
    /* An invalid factor reads as 0.5. */
    b.factor = 0;
    backoff_state_init(&s, 100);
    backoff_on_deferral(&s, &b, T0, MS_BUSY);
    assert_float_equal(s.rate_per_min, 50, 1e-12);
}

static void test_backoff_on_deferral_long_reason(void **state)
{
    (void)state;
    struct plan_backoff b = defaults();
    struct backoff_state s;
    backoff_state_init(&s, 8);
    /* A reply longer than the reason: cut on a character boundary, the action kept whole. */
    char reply[600];
    for (size_t shift = 0; shift < 2; shift++) {
        /* "451 " or "451 x", then two-byte characters: the cut falls on both parities. */
        size_t pos = 4;
        memcpy(reply, "451 x", 5);
        pos += shift;
        for (; pos + 2 < sizeof reply; pos += 2) {
            reply[pos] = (char)0xC3;
            reply[pos + 1] = (char)0xA9;
        }
        reply[pos] = '\0';
        backoff_state_init(&s, 8);
        backoff_on_deferral(&s, &b, T0, reply);
        size_t n = strlen(s.pause_reason);
        assert_true(n <= BACKOFF_REASON_MAX - 1);
        assert_true(n >= BACKOFF_REASON_MAX - 2);
        const char *tail = "... (throttle x0.5 to 4/min, pause 15m)";
        assert_string_equal(s.pause_reason + n - strlen(tail), tail);
        /* The byte before "..." ends a whole character. */
        const unsigned char *cut = (const unsigned char *)s.pause_reason + n - strlen(tail);
        assert_int_equal(cut[-1], 0xA9);
        assert_int_equal(cut[-2], 0xC3);
    }
}

static void test_backoff_on_deferral_during_pause(void **state)
{
    (void)state;
    struct plan_backoff b = defaults();
    struct backoff_state s;
    backoff_state_init(&s, 8);
    assert_true(backoff_on_deferral(&s, &b, T0, MS_BUSY));
    /* A message in flight on another connection (or the next MX) is deferred too: one episode. */
    assert_false(backoff_on_deferral(&s, &b, T0 + 2 * SEC, "connection refused"));
    assert_float_equal(s.rate_per_min, 4, 1e-12);
    assert_int_equal(s.paused_until_ms, T0 + 15 * MIN);
    assert_int_equal(s.pause_level, 0);
    assert_int_equal(s.last_deferral_ms, T0 + 2 * SEC);
    assert_non_null(strstr(s.pause_reason, "Server busy"));
}

static void test_backoff_pause_doubles(void **state)
{
    (void)state;
    struct plan_backoff b = defaults();
    struct backoff_state s;
    backoff_state_init(&s, 100);
    /* Deferred again a minute after each pause ends: 15m, 30m, 1h, 2h, then 4h, 4h, 4h. */
    static const int64_t want[] = {15 * MIN,  30 * MIN,  60 * MIN, 120 * MIN,
                                   240 * MIN, 240 * MIN, 240 * MIN};
    int64_t t = T0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_true(backoff_on_deferral(&s, &b, t, MS_BUSY));
        assert_int_equal(s.paused_until_ms - t, want[i]);
        assert_int_equal(s.pause_level, (int)i);
        t = s.paused_until_ms + MIN;
    }
    /* Exactly an hour after the pause ended still repeats. */
    t = s.paused_until_ms + HOUR;
    assert_true(backoff_on_deferral(&s, &b, t, MS_BUSY));
    assert_int_equal(s.paused_until_ms - t, 4 * HOUR);
    /* A quiet hour (more than 60 minutes since the pause ended) starts again at 15m. */
    t = s.paused_until_ms + HOUR + 1;
    assert_true(backoff_on_deferral(&s, &b, t, MS_BUSY));
    assert_int_equal(s.paused_until_ms - t, 15 * MIN);
    assert_int_equal(s.pause_level, 0);
    t = s.paused_until_ms + 5 * MIN;
    assert_true(backoff_on_deferral(&s, &b, t, MS_BUSY));
    assert_int_equal(s.paused_until_ms - t, 30 * MIN);
    assert_non_null(strstr(s.pause_reason, ", pause 30m)")); /* the rate recovered meanwhile */

    /* The tick resets the level after the quiet hour, so `status` shows it. */
    int64_t quiet = s.paused_until_ms + HOUR + 1;
    backoff_tick(&s, &b, s.paused_until_ms + HOUR);
    assert_int_equal(s.pause_level, 1);
    assert_true(backoff_tick(&s, &b, quiet));
    assert_int_equal(s.pause_level, 0);

    /* A plan without max_pause gets 4h; one with a lower cap keeps it. */
    b.pause_max_ms = 0;
    backoff_state_init(&s, 100);
    t = T0;
    for (int i = 0; i < 8; i++) {
        backoff_on_deferral(&s, &b, t, MS_BUSY);
        if (i < 7)
            t = s.paused_until_ms + MIN;
    }
    assert_int_equal(s.paused_until_ms - t, 4 * HOUR);
    b.pause_max_ms = 45 * MIN;
    backoff_state_init(&s, 100);
    t = T0;
    int64_t got[4];
    for (int i = 0; i < 4; i++) {
        backoff_on_deferral(&s, &b, t, MS_BUSY);
        got[i] = s.paused_until_ms - t;
        t = s.paused_until_ms + MIN;
    }
    assert_int_equal(got[0], 15 * MIN);
    assert_int_equal(got[1], 30 * MIN);
    assert_int_equal(got[2], 45 * MIN);
    assert_int_equal(got[3], 45 * MIN);
}

/* ---- recovery ---- */

static void test_backoff_recovery_steps(void **state)
{
    (void)state;
    struct plan_backoff b = defaults();
    struct backoff_state s;
    backoff_state_init(&s, 10);
    backoff_on_deferral(&s, &b, T0, MS_BUSY); /* 5/min, paused until T0+15m */
    struct backoff_state fresh = s;
    /* Steps of 25% of 10 = 2.5 every 30 minutes, counted from the end of the pause. */
    int64_t p = T0 + 15 * MIN;
    assert_float_equal(backoff_effective_rate(&s, &b, p + 30 * MIN - 1), 5, 1e-12);
    assert_float_equal(backoff_effective_rate(&s, &b, p + 30 * MIN), 7.5, 1e-12);
    assert_float_equal(backoff_effective_rate(&s, &b, p + 60 * MIN - 1), 7.5, 1e-12);
    assert_float_equal(backoff_effective_rate(&s, &b, p + 60 * MIN), 10, 1e-12);
    assert_float_equal(backoff_effective_rate(&s, &b, p + 90 * MIN), 10, 1e-12);
    assert_float_equal(backoff_effective_rate(&s, &b, p + 30 * DAY), 10, 1e-12);
    /* effective_rate is pure. */
    assert_float_equal(s.rate_per_min, 5, 1e-12);

    /* Ticking applies the steps, anchored to the schedule whenever the tick runs. */
    assert_false(backoff_tick(&s, &b, p + 29 * MIN));
    assert_true(backoff_tick(&s, &b, p + 31 * MIN));
    assert_float_equal(s.rate_per_min, 7.5, 1e-12);
    assert_int_equal(s.last_recover_ms, p + 30 * MIN);
    assert_false(backoff_tick(&s, &b, p + 59 * MIN));
    assert_true(backoff_tick(&s, &b, p + 60 * MIN));
    assert_float_equal(s.rate_per_min, 10, 1e-12);
    assert_false(backoff_tick(&s, &b, p + 600 * MIN));
    assert_float_equal(s.rate_per_min, 10, 1e-12);
    /* One late tick gives the same result as many. */
    assert_true(backoff_tick(&fresh, &b, p + 200 * MIN));
    assert_float_equal(fresh.rate_per_min, 10, 1e-12);

    /* A deep cut climbs back over several steps: 10 -> 5 -> 2.5 -> 1.25 by three deferrals,
     * then 3.75, 6.25, 8.75, 10 every 30 minutes after the last (1 h) pause. */
    backoff_state_init(&s, 10);
    int64_t t = T0;
    for (int i = 0; i < 3; i++) {
        backoff_on_deferral(&s, &b, t, MS_BUSY);
        t = s.paused_until_ms + MIN;
    }
    assert_float_equal(s.rate_per_min, 1.25, 1e-12);
    p = s.paused_until_ms;
    assert_int_equal(p - s.last_deferral_ms, HOUR);
    static const double climb[] = {1.25, 3.75, 6.25, 8.75, 10, 10};
    for (int k = 0; k < 6; k++) {
        assert_float_equal(backoff_effective_rate(&s, &b, p + k * 30 * MIN), climb[k], 1e-12);
        backoff_tick(&s, &b, p + k * 30 * MIN + 7 * SEC);
        assert_float_equal(s.rate_per_min, climb[k], 1e-12);
    }

    /* Never above planned: 30% steps from 5 go to 8, then 10, not 11. */
    b.recover_step_pct = 30;
    backoff_state_init(&s, 10);
    backoff_on_deferral(&s, &b, T0, MS_BUSY);
    p = T0 + 15 * MIN;
    assert_float_equal(backoff_effective_rate(&s, &b, p + 30 * MIN), 8, 1e-12);
    assert_float_equal(backoff_effective_rate(&s, &b, p + 60 * MIN), 10, 1e-12);
    /* A deferral during recovery cuts from where the rate is, and repeats the pause level. */
    b.recover_step_pct = 25;
    backoff_state_init(&s, 10);
    backoff_on_deferral(&s, &b, T0, MS_BUSY);
    t = T0 + 15 * MIN + 35 * MIN; /* 7.5 by now */
    assert_true(backoff_on_deferral(&s, &b, t, MS_BUSY));
    assert_float_equal(s.rate_per_min, 3.75, 1e-12);
    assert_int_equal(s.pause_level, 1);
    assert_int_equal(s.paused_until_ms, t + 30 * MIN);
    /* recover_after 0: back at once when the pause ends. */
    b.recover_after_ms = 0;
    backoff_state_init(&s, 10);
    backoff_on_deferral(&s, &b, T0, MS_BUSY);
    assert_float_equal(backoff_effective_rate(&s, &b, T0 + 15 * MIN), 5, 1e-12);
    assert_float_equal(backoff_effective_rate(&s, &b, T0 + 15 * MIN + 1), 10, 1e-12);
}

static void test_backoff_set_planned(void **state)
{
    (void)state;
    struct plan_backoff b = defaults();
    struct backoff_state s;
    backoff_state_init(&s, 10);
    backoff_set_planned(&s, 15); /* not cut: follows the ramp */
    assert_float_equal(s.rate_per_min, 15, 1e-12);
    backoff_on_deferral(&s, &b, T0, MS_BUSY); /* 7.5 */
    backoff_set_planned(&s, 20);              /* cut: stays, recovers toward 20 by 5 */
    assert_float_equal(s.rate_per_min, 7.5, 1e-12);
    assert_float_equal(backoff_effective_rate(&s, &b, T0 + 45 * MIN), 12.5, 1e-12);
    backoff_set_planned(&s, 5); /* a step back below the cut rate */
    assert_float_equal(s.rate_per_min, 5, 1e-12);
    /* rate 0 means not set: the planned rate. */
    s.rate_per_min = 0;
    assert_float_equal(backoff_effective_rate(&s, &b, T0), 5, 1e-12);
}

/* ---- rules ---- */

enum { GMAIL_RATE, MS_BUSY_3, MS_BUSY_5, YAHOO_TSS, ANY_OVERQUOTA, N_RULES };

static char *gmail_only[] = {"gmail"};
static char *ms_both[] = {"microsoft", "microsoft365"};
static char *yahoo_only[] = {"yahoo"};

/* The shipped rules of config/providers.yaml (patterns copied) and one plan rule. */
static void rules_init(struct plan_rule *r)
{
    memset(r, 0, N_RULES * sizeof *r);
    r[GMAIL_RATE] = (struct plan_rule){.name = "gmail-unusual-rate",
                                       .providers = gmail_only,
                                       .n_providers = 1,
                                       .match = "4\\.7\\.28.*unusual rate",
                                       .action = PLAN_ACTION_THROTTLE,
                                       .rate_per_min = 10,
                                       .for_ms = 30 * MIN,
                                       .trigger_count = 2,
                                       .trigger_period_ms = HOUR};
    r[MS_BUSY_3] = (struct plan_rule){.name = "microsoft-server-busy",
                                      .providers = ms_both,
                                      .n_providers = 2,
                                      .match = "4\\.7\\.500.*server busy",
                                      .action = PLAN_ACTION_THROTTLE,
                                      .rate_per_min = 1,
                                      .for_ms = 15 * MIN,
                                      .trigger_count = 3,
                                      .trigger_period_ms = HOUR};
    r[MS_BUSY_5] = (struct plan_rule){.name = "microsoft-server-busy-repeated",
                                      .providers = ms_both,
                                      .n_providers = 2,
                                      .match = "4\\.7\\.500.*server busy",
                                      .action = PLAN_ACTION_SUSPEND,
                                      .for_ms = 30 * MIN,
                                      .trigger_count = 5,
                                      .trigger_period_ms = HOUR};
    r[YAHOO_TSS] = (struct plan_rule){.name = "yahoo-tss04",
                                      .providers = yahoo_only,
                                      .n_providers = 1,
                                      .match = "\\[TSS04\\]",
                                      .action = PLAN_ACTION_SUSPEND,
                                      .for_ms = 2 * HOUR,
                                      .trigger_count = 1,
                                      .trigger_period_ms = 0};
    r[ANY_OVERQUOTA] = (struct plan_rule){.name = NULL,
                                          .match = "4\\.2\\.2.*over quota",
                                          .action = PLAN_ACTION_BOUNCE,
                                          .for_ms = HOUR,
                                          .trigger_count = 1,
                                          .trigger_period_ms = 0};
    for (int i = 0; i < N_RULES; i++) {
        assert_int_equal(regcomp(&r[i].re, r[i].match, REG_EXTENDED | REG_ICASE | REG_NOSUB), 0);
        r[i].re_compiled = true;
    }
}

static void rules_free(struct plan_rule *r)
{
    for (int i = 0; i < N_RULES; i++)
        regfree(&r[i].re);
}

static void test_backoff_rules_microsoft_server_busy(void **state)
{
    (void)state;
    struct plan_rule rules[N_RULES];
    rules_init(rules);
    struct backoff_rule_hits hits[N_RULES];
    struct backoff_action out[N_RULES];

    /* Three within the hour: the third fires the throttle, 1/min for 15 minutes. */
    memset(hits, 0, sizeof hits);
    assert_int_equal(backoff_rules_match(rules, N_RULES, "microsoft", MS_BUSY, T0, hits, out), 0);
    assert_int_equal(
        backoff_rules_match(rules, N_RULES, "microsoft", MS_BUSY, T0 + 20 * MIN, hits, out), 0);
    assert_int_equal(
        backoff_rules_match(rules, N_RULES, "microsoft", MS_BUSY, T0 + 40 * MIN, hits, out), 1);
    assert_int_equal(out[0].rule, MS_BUSY_3);
    assert_string_equal(out[0].name, "microsoft-server-busy");
    assert_int_equal(out[0].action, PLAN_ACTION_THROTTLE);
    assert_float_equal(out[0].rate_per_min, 1, 1e-12);
    assert_int_equal(out[0].started_ms, T0 + 40 * MIN);
    assert_int_equal(out[0].expires_ms, T0 + 55 * MIN);
    /* The fourth keeps it going; the fifth within the hour also suspends for 30 minutes. */
    assert_int_equal(
        backoff_rules_match(rules, N_RULES, "microsoft", MS_BUSY, T0 + 45 * MIN, hits, out), 1);
    assert_int_equal(out[0].expires_ms, T0 + 60 * MIN);
    assert_int_equal(
        backoff_rules_match(rules, N_RULES, "microsoft", MS_BUSY, T0 + 50 * MIN, hits, out), 2);
    assert_int_equal(out[0].rule, MS_BUSY_3);
    assert_int_equal(out[1].rule, MS_BUSY_5);
    assert_int_equal(out[1].action, PLAN_ACTION_SUSPEND);
    assert_int_equal(out[1].expires_ms, T0 + 80 * MIN);

    /* Spread over more than an hour: nothing; then three within an hour again: fires. */
    memset(hits, 0, sizeof hits);
    assert_int_equal(backoff_rules_match(rules, N_RULES, "microsoft365", MS_BUSY, T0, hits, out),
                     0);
    assert_int_equal(
        backoff_rules_match(rules, N_RULES, "microsoft365", MS_BUSY, T0 + 40 * MIN, hits, out), 0);
    assert_int_equal(
        backoff_rules_match(rules, N_RULES, "microsoft365", MS_BUSY, T0 + 61 * MIN, hits, out), 0);
    assert_int_equal(
        backoff_rules_match(rules, N_RULES, "microsoft365", MS_BUSY, T0 + 70 * MIN, hits, out), 1);
    /* Exactly an hour between the first and the third counts as within. */
    memset(hits, 0, sizeof hits);
    for (int i = 0; i < 2; i++)
        backoff_rules_match(rules, N_RULES, "microsoft", MS_BUSY, T0 + i * 30 * MIN, hits, out);
    assert_int_equal(
        backoff_rules_match(rules, N_RULES, "microsoft", MS_BUSY, T0 + 60 * MIN, hits, out), 1);

    /* Other providers' replies never touch Microsoft's rules, and other text never matches. */
    memset(hits, 0, sizeof hits);
    for (int i = 0; i < 10; i++)
        assert_int_equal(
            backoff_rules_match(rules, N_RULES, "gmail", MS_BUSY, T0 + i * MIN, hits, out), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(backoff_rules_match(rules, N_RULES, "microsoft", "250 2.0.0 OK",
                                             T0 + i * MIN, hits, out),
                         0);
    assert_int_equal(hits[MS_BUSY_3].n, 0);
    rules_free(rules);
}

static void test_backoff_rules_gmail_multiline(void **state)
{
    (void)state;
    struct plan_rule rules[N_RULES];
    rules_init(rules);
    struct backoff_rule_hits hits[N_RULES];
    struct backoff_action out[N_RULES];
    memset(hits, 0, sizeof hits);

    static struct reply r;
    assert_int_equal(reply_parse(GMAIL_RAW, strlen(GMAIL_RAW), &r), 421);
    char whole[REPLY_TEXT_MAX + 16];
    reply_format(&r, whole, sizeof whole);
    /* Twice within the hour: 10/min for 30 minutes. */
    assert_int_equal(backoff_rules_match(rules, N_RULES, "gmail", whole, T0, hits, out), 0);
    assert_int_equal(backoff_rules_match(rules, N_RULES, "gmail", whole, T0 + 59 * MIN, hits, out),
                     1);
    assert_int_equal(out[0].rule, GMAIL_RATE);
    assert_float_equal(out[0].rate_per_min, 10, 1e-12);
    assert_int_equal(out[0].expires_ms, T0 + 89 * MIN);

    /* The class says throttle too; the rule's 10/min caps the cut rate only when lower. */
    struct reply_class c = reply_classify(REPLY_PHASE_RCPT, r.code, r.enhanced, r.text);
    assert_true(c.throttle);
    struct plan_backoff b = defaults();
    struct backoff_state s;
    backoff_state_init(&s, 40);
    backoff_on_deferral(&s, &b, T0 + 59 * MIN, whole);
    assert_memory_equal(s.pause_reason, "421 4.7.28 [192.0.2.10 ", 23);
    assert_non_null(strstr(s.pause_reason, "- gsmtp (throttle x0.5 to 20/min, pause 15m)"));
    struct backoff_decision d;
    backoff_decide(&s, &b, out, 1, T0 + 80 * MIN, &d);
    assert_true(d.may_send);
    assert_true(d.throttled);
    assert_float_equal(d.rate_per_min, 10, 1e-12);
    backoff_decide(&s, &b, out, 1, T0 + 89 * MIN, &d); /* expired */
    assert_false(d.throttled);
    assert_float_equal(d.rate_per_min, 20, 1e-12);
    rules_free(rules);
}

static void test_backoff_rules_yahoo_suspend(void **state)
{
    (void)state;
    struct plan_rule rules[N_RULES];
    rules_init(rules);
    struct backoff_rule_hits hits[N_RULES];
    struct backoff_action out[N_RULES];
    memset(hits, 0, sizeof hits);
    struct plan_backoff b = defaults();
    struct backoff_state s;
    backoff_state_init(&s, 5);

    /* Immediately: the first match suspends Yahoo for 2 hours. */
    assert_int_equal(backoff_rules_match(rules, N_RULES, "yahoo", YAHOO_TSS04, T0, hits, out), 1);
    assert_int_equal(out[0].rule, YAHOO_TSS);
    assert_int_equal(out[0].action, PLAN_ACTION_SUSPEND);
    assert_int_equal(out[0].expires_ms, T0 + 2 * HOUR);
    struct backoff_decision d;
    backoff_decide(&s, &b, out, 1, T0 + HOUR, &d);
    assert_false(d.may_send);
    assert_true(d.suspended);
    assert_false(d.paused);
    assert_int_equal(d.until_ms, T0 + 2 * HOUR);
    assert_float_equal(d.rate_per_min, 5, 1e-12);
    backoff_decide(&s, &b, out, 1, T0 + 2 * HOUR - 1, &d);
    assert_false(d.may_send);
    backoff_decide(&s, &b, out, 1, T0 + 2 * HOUR, &d);
    assert_true(d.may_send);
    assert_false(d.suspended);
    assert_int_equal(d.until_ms, 0);
    assert_false(backoff_action_active(&out[0], T0 + 2 * HOUR));
    assert_true(backoff_action_active(&out[0], T0));
    assert_false(backoff_action_active(&out[0], T0 - 1));
    /* Every match fires again (and would extend the suspension). */
    assert_int_equal(backoff_rules_match(rules, N_RULES, "yahoo", YAHOO_TSS04, T0 + MIN, hits, out),
                     1);
    assert_int_equal(out[0].expires_ms, T0 + MIN + 2 * HOUR);
    rules_free(rules);
}

static void test_backoff_decide_combines(void **state)
{
    (void)state;
    struct plan_backoff b = defaults();
    struct backoff_state s;
    backoff_state_init(&s, 5);
    struct backoff_action a[5] = {
        {.action = PLAN_ACTION_THROTTLE,
         .rate_per_min = 3,
         .started_ms = T0,
         .expires_ms = T0 + HOUR},
        {.action = PLAN_ACTION_THROTTLE,
         .rate_per_min = 2,
         .started_ms = T0,
         .expires_ms = T0 + 30 * MIN},
        {.action = PLAN_ACTION_THROTTLE,
         .rate_per_min = 0.5,
         .started_ms = T0 - 2 * HOUR,
         .expires_ms = T0 - HOUR}, /* expired */
        {.action = PLAN_ACTION_THROTTLE,
         .rate_per_min = 10,
         .started_ms = T0,
         .expires_ms = T0 + HOUR}, /* above the rate: never speeds up */
        {.action = PLAN_ACTION_BOUNCE, .started_ms = T0, .expires_ms = T0 + HOUR},
    };
    struct backoff_decision d;
    backoff_decide(&s, &b, a, 5, T0 + MIN, &d);
    assert_true(d.may_send);
    assert_true(d.throttled);
    assert_float_equal(d.rate_per_min, 2, 1e-12); /* the lowest active throttle */
    backoff_decide(&s, &b, a, 5, T0 + 30 * MIN, &d);
    assert_float_equal(d.rate_per_min, 3, 1e-12);
    backoff_decide(&s, &b, a + 3, 2, T0 + MIN, &d);
    assert_false(d.throttled);
    assert_float_equal(d.rate_per_min, 5, 1e-12);

    /* A suspension beats the throttles; with a pause too, sending resumes when both end. */
    struct backoff_action b2[3] = {
        a[0], a[1], {.action = PLAN_ACTION_SUSPEND, .started_ms = T0, .expires_ms = T0 + 20 * MIN}};
    backoff_decide(&s, &b, b2, 3, T0 + MIN, &d);
    assert_false(d.may_send);
    assert_true(d.suspended);
    assert_int_equal(d.until_ms, T0 + 20 * MIN);
    backoff_on_deferral(&s, &b, T0 + MIN, MS_BUSY); /* paused until T0+16m */
    backoff_decide(&s, &b, b2, 3, T0 + 2 * MIN, &d);
    assert_true(d.paused);
    assert_int_equal(d.until_ms, T0 + 20 * MIN);
    s.paused_until_ms = T0 + 25 * MIN;
    backoff_decide(&s, &b, b2, 3, T0 + 2 * MIN, &d);
    assert_int_equal(d.until_ms, T0 + 25 * MIN);
    backoff_decide(&s, &b, b2, 3, T0 + 25 * MIN, &d);
    assert_true(d.may_send);
    assert_float_equal(d.rate_per_min, 2, 1e-12);
}

static void test_backoff_rules_bounce(void **state)
{
    (void)state;
    struct plan_rule rules[N_RULES];
    rules_init(rules);
    struct backoff_rule_hits hits[N_RULES];
    struct backoff_action out[N_RULES];
    memset(hits, 0, sizeof hits);
    const char *reply = "452 4.2.2 The email account that you tried to reach is over quota";
    struct reply_class c = reply_classify(REPLY_PHASE_RCPT, 452, "4.2.2", reply + 4);
    assert_int_equal(c.outcome, REPLY_DEFERRED);
    /* A rule without providers applies to every provider; its pattern is its name. */
    assert_int_equal(backoff_rules_match(rules, N_RULES, "other", reply, T0, hits, out), 1);
    assert_int_equal(out[0].action, PLAN_ACTION_BOUNCE);
    assert_string_equal(out[0].name, "4\\.2\\.2.*over quota");
    backoff_bounce(&c);
    assert_int_equal(c.outcome, REPLY_BOUNCED);
    assert_false(c.retry);
    assert_true(c.suppress);
    assert_false(c.throttle);
    /* On a provider-scope reply a bounce ends the recipient's attempts without suppressing. */
    c = reply_classify(REPLY_PHASE_RCPT, 421, "4.7.0", "4.7.0 try again later");
    backoff_bounce(&c);
    assert_int_equal(c.outcome, REPLY_BOUNCED);
    assert_false(c.suppress);
    assert_true(c.throttle);
    /* NULL text and no provider. */
    assert_int_equal(backoff_rules_match(rules, N_RULES, NULL, NULL, T0, hits, out), 0);
    rules_free(rules);
}

static void test_backoff_rules_trigger_limits(void **state)
{
    (void)state;
    struct plan_rule r;
    memset(&r, 0, sizeof r);
    r.match = "x";
    r.action = PLAN_ACTION_THROTTLE;
    r.rate_per_min = 1;
    r.for_ms = MIN;
    r.trigger_count = 200; /* above BACKOFF_TRIGGER_MAX: counts as 64 */
    r.trigger_period_ms = DAY;
    struct backoff_rule_hits h;
    memset(&h, 0, sizeof h);
    struct backoff_action out[1];
    /* Not compiled (re_compiled false): never matches, and regexec is never called on it. */
    assert_int_equal(backoff_rules_match(&r, 1, "p", "x", T0, &h, out), 0);
    assert_int_equal(regcomp(&r.re, r.match, REG_EXTENDED | REG_ICASE | REG_NOSUB), 0);
    r.re_compiled = true;
    for (int i = 1; i < BACKOFF_TRIGGER_MAX; i++)
        assert_int_equal(backoff_rules_match(&r, 1, "p", "x", T0 + i, &h, out), 0);
    assert_int_equal(backoff_rules_match(&r, 1, "p", "x", T0 + 1000, &h, out), 1);
    /* The plan changed the trigger: the ring starts again. */
    r.trigger_count = 2;
    assert_int_equal(backoff_rules_match(&r, 1, "p", "x", T0 + 2000, &h, out), 0);
    assert_int_equal(backoff_rules_match(&r, 1, "p", "x", T0 + 3000, &h, out), 1);
    regfree(&r.re);
}

/* ---- retries ---- */

static void test_backoff_retry_schedule(void **state)
{
    (void)state;
    struct plan_backoff b = defaults();
    int64_t next = 0;
    /* 5m, 10m, 20m, 40m, 80m, 160m, then capped at 4h. */
    static const int64_t want[] = {5, 10, 20, 40, 80, 160, 240, 240, 240, 240};
    int64_t now = T0 + HOUR;
    for (int n = 0; n < 10; n++) {
        assert_int_equal(backoff_retry_next(&b, n, T0, now, &next), BACKOFF_RETRY);
        assert_int_equal(next - now, want[n] * MIN);
    }
    assert_int_equal(backoff_retry_next(&b, 1000000, T0, now, &next), BACKOFF_RETRY);
    assert_int_equal(next - now, 4 * HOUR);
    /* Expired once the first attempt is 3 days old. */
    assert_int_equal(backoff_retry_next(&b, 3, T0, T0 + 3 * DAY, &next), BACKOFF_EXPIRE);
    assert_int_equal(backoff_retry_next(&b, 3, T0, T0 + 5 * DAY, &next), BACKOFF_EXPIRE);
    /* Never scheduled past the give-up moment: the last try is at it. */
    assert_int_equal(backoff_retry_next(&b, 20, T0, T0 + 3 * DAY - HOUR, &next), BACKOFF_RETRY);
    assert_int_equal(next, T0 + 3 * DAY);
    assert_int_equal(backoff_retry_next(&b, 20, T0, T0 + 3 * DAY - 5 * HOUR, &next), BACKOFF_RETRY);
    assert_int_equal(next, T0 + 3 * DAY - HOUR);

    /* A recipient deferred at every try: attempts at 0, 5, 15, 35, 75, 155, 315 minutes, then
     * every 240 minutes while below 4320 (3 days): 16 more up to 4155, one at 4320, expired. */
    int64_t t = T0;
    int retries = 0;
    while (backoff_retry_next(&b, retries, T0, t, &next) == BACKOFF_RETRY) {
        assert_true(next > t);
        t = next;
        retries++;
    }
    assert_int_equal(retries, 6 + 16 + 1);
    assert_int_equal(t, T0 + 3 * DAY);

    /* A zero first delay cannot spin. */
    b.retry_first_ms = 0;
    assert_int_equal(backoff_retry_next(&b, 0, T0, T0, &next), BACKOFF_RETRY);
    assert_int_equal(next, T0 + SEC);
}

/* ---- a 30-day replay ---- */

struct sim_provider {
    const char *name;
    const char *throttle_raw; /* what this provider says when it pushes back */
    struct backoff_state st;
    struct backoff_rule_hits hits[N_RULES];
    struct backoff_action acts[32];
    size_t n_acts;
    long sent, deferrals, cuts, fired, suspended_minutes, suppressed, expired;
};

struct sim_summary {
    double rate[4];
    int64_t paused_until[4];
    long sent[4], cuts[4], fired[4];
};

static uint32_t sim_rand(uint32_t *x)
{
    *x = *x * 1664525u + 1013904223u;
    return *x >> 8;
}

static void sim_keep(struct sim_provider *p, const struct backoff_action *a, int64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n_acts; i++)
        if (p->acts[i].expires_ms > now)
            p->acts[k++] = p->acts[i];
    p->n_acts = k;
    if (p->n_acts < sizeof p->acts / sizeof p->acts[0])
        p->acts[p->n_acts++] = *a;
}

static void simulate(struct sim_summary *sum)
{
    struct plan_rule rules[N_RULES];
    rules_init(rules);
    struct plan_backoff b = defaults();
    static struct sim_provider prov[4];
    memset(prov, 0, sizeof prov);
    prov[0].name = "gmail";
    prov[0].throttle_raw = GMAIL_RAW;
    prov[1].name = "microsoft";
    prov[1].throttle_raw = MS_BUSY "\r\n";
    prov[2].name = "yahoo";
    prov[2].throttle_raw = YAHOO_TSS04 "\r\n";
    prov[3].name = "other";
    prov[3].throttle_raw = "421 Too many connections from your IP, try again later\r\n";
    double planned = 5;
    for (int i = 0; i < 4; i++)
        backoff_state_init(&prov[i].st, planned);

    static struct reply r;
    char whole[REPLY_TEXT_MAX + 16];
    uint32_t x = 42;
    for (int64_t now = T0; now < T0 + 30 * DAY; now += MIN) {
        if ((now - T0) % DAY == 0 && now != T0) {
            planned = planned * 1.5 < 600 ? planned * 1.5 : 600;
            for (int i = 0; i < 4; i++)
                backoff_set_planned(&prov[i].st, planned);
        }
        for (int i = 0; i < 4; i++) {
            struct sim_provider *p = &prov[i];
            backoff_tick(&p->st, &b, now);
            struct backoff_decision d;
            backoff_decide(&p->st, &b, p->acts, p->n_acts, now, &d);
            double eff = backoff_effective_rate(&p->st, &b, now);
            double low = p->st.planned_per_min < 1 ? p->st.planned_per_min : 1;
            assert_true(eff >= low - 1e-9 && eff <= p->st.planned_per_min + 1e-9);
            assert_true(d.rate_per_min <= eff + 1e-9);
            assert_true(d.may_send || d.until_ms > now);
            assert_true(p->st.paused_until_ms - p->st.last_deferral_ms <= 4 * HOUR ||
                        p->st.last_deferral_ms > p->st.paused_until_ms);
            if (!d.may_send) {
                if (d.suspended)
                    p->suspended_minutes++;
                continue;
            }
            /* One reply a minute: mostly delivered, sometimes pushback, sometimes the
             * recipient's problem, now and then no connection at all. */
            uint32_t roll = sim_rand(&x) % 1000;
            const char *raw;
            enum reply_phase phase = REPLY_PHASE_RCPT;
            if (roll < 930) {
                raw = "250 2.0.0 OK queued\r\n";
                phase = REPLY_PHASE_DATA;
            } else if (roll < 960) {
                raw = p->throttle_raw;
            } else if (roll < 980) {
                raw = "452 4.2.2 Mailbox full\r\n";
            } else if (roll < 995) {
                raw = "550 5.1.1 User unknown\r\n";
            } else {
                raw = "";
                phase = REPLY_PHASE_CONNECT;
            }
            reply_parse(raw, strlen(raw), &r);
            reply_format(&r, whole, sizeof whole);
            struct reply_class c =
                reply_classify(phase, r.code, r.enhanced, r.code ? r.text : "connection refused");
            p->sent++;
            if (r.code) {
                struct backoff_action out[N_RULES];
                size_t n = backoff_rules_match(rules, N_RULES, p->name, whole, now, p->hits, out);
                for (size_t k = 0; k < n; k++)
                    sim_keep(p, &out[k], now);
                p->fired += (long)n;
            }
            if (c.throttle) {
                p->deferrals++;
                if (backoff_on_deferral(&p->st, &b, now, r.code ? whole : "connection refused"))
                    p->cuts++;
                assert_true(strlen(p->st.pause_reason) < BACKOFF_REASON_MAX);
            }
            if (c.suppress)
                p->suppressed++;
            if (c.retry) {
                int64_t next;
                int retry_no = (int)(sim_rand(&x) % 12);
                int64_t first = now - (int64_t)(sim_rand(&x) % (4 * DAY / MIN)) * MIN;
                if (backoff_retry_next(&b, retry_no, first, now, &next) == BACKOFF_RETRY)
                    assert_true(next > now && next <= first + 3 * DAY);
                else
                    p->expired++;
            }
        }
    }
    for (int i = 0; i < 4; i++) {
        sum->rate[i] = prov[i].st.rate_per_min;
        sum->paused_until[i] = prov[i].st.paused_until_ms;
        sum->sent[i] = prov[i].sent;
        sum->cuts[i] = prov[i].cuts;
        sum->fired[i] = prov[i].fired;
        /* Every provider was pushed back and recovered in the month. */
        assert_true(prov[i].cuts > 10);
        assert_true(prov[i].sent > 1000);
    }
    assert_true(prov[1].fired > 0);             /* server busy 3/1h happened */
    assert_true(prov[2].suspended_minutes > 0); /* TSS04 suspended Yahoo */
    assert_int_equal(prov[3].fired, 0);         /* no rule speaks to "other" but the bounce one */
    rules_free(rules);
}

static void test_backoff_thirty_days(void **state)
{
    (void)state;
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct sim_summary one, two;
    memset(&one, 0, sizeof one);
    memset(&two, 0, sizeof two);
    simulate(&one);
    clock_gettime(CLOCK_MONOTONIC, &z);
    simulate(&two);
    /* Pure functions of (plan, state, now): the replay is exactly repeatable. */
    assert_memory_equal(&one, &two, sizeof one);
    long ms = (long)((z.tv_sec - a.tv_sec) * 1000 + (z.tv_nsec - a.tv_nsec) / 1000000);
    print_message("30 simulated days (4 providers, a reply a minute) in %ld ms\n", ms);
    assert_true(ms < 20000); /* a generous bound for sanitizer builds on slow machines */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_on_deferral_halves),
        cmocka_unit_test(test_backoff_on_deferral_long_reason),
        cmocka_unit_test(test_backoff_on_deferral_during_pause),
        cmocka_unit_test(test_backoff_pause_doubles),
        cmocka_unit_test(test_backoff_recovery_steps),
        cmocka_unit_test(test_backoff_set_planned),
        cmocka_unit_test(test_backoff_rules_microsoft_server_busy),
        cmocka_unit_test(test_backoff_rules_gmail_multiline),
        cmocka_unit_test(test_backoff_rules_yahoo_suspend),
        cmocka_unit_test(test_backoff_decide_combines),
        cmocka_unit_test(test_backoff_rules_bounce),
        cmocka_unit_test(test_backoff_rules_trigger_limits),
        cmocka_unit_test(test_backoff_retry_schedule),
        cmocka_unit_test(test_backoff_thirty_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
