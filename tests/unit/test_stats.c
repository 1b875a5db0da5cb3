/*
 * test_stats: deferral statistics (stats.c) over a store filled through the store API with a
 * fake clock.
 *
 * Reply masking (stats_mask_reason) token class by token class, and the Microsoft throttling
 * reply with many IPs and IDs that must become one reason; the grouping of UTC hours into local
 * days in Asia/Tokyo (midnight at 15:00Z) and in America/New_York across the 2026-03-08 (23
 * hours) and 2026-11-01 (25 hours) DST changes; stats_collect's counts, top reasons, rules and
 * pauses against the scenario's known numbers; and the table, CSV and JSON writers.
 *
 * `test_stats --fill FILE` writes the scenario into the state file FILE and exits: the CLI tests
 * (tests/cli/test_stats.sh, test_report.sh) use it to get a store with known counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipwarm/stats.h"
#include "ipwarm/store.h"

#define HOUR INT64_C(3600000)
#define MIN  INT64_C(60000)
/* 2026-12-01T00:00:00Z = 2026-12-01T09:00:00+09:00: 1767225600 s (2026-01-01) + 334 days. */
#define DEC1 INT64_C(1796083200000)
/* 2026-03-08T00:00:00Z: 1767225600 s + 66 days (31 + 28 + 7). */
#define MAR8 INT64_C(1772928000000)
/* 2026-11-01T00:00:00Z: 1767225600 s + 304 days. */
#define NOV1 INT64_C(1793491200000)

/* ---- masking ---- */

static void mask_is(const char *in, const char *want)
{
    char out[STATS_REASON_MAX];
    size_t n = stats_mask_reason(in, out, sizeof out);
    if (strcmp(out, want) != 0)
        print_error("mask(\"%s\")\n  got  \"%s\"\n  want \"%s\"\n", in, out, want);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_mask_microsoft_one_reason(void **state)
{
    (void)state;
    static const char *const variants[] = {
        "451 4.7.500 Server busy. Please try again later from [1.2.3.4]. (S77714)",
        "451 4.7.500 Server busy. Please try again later from [203.0.113.250]. (S77714)",
        "4.7.500 Server busy. Please try again later from [198.51.100.7]. (S77714)",
        "Server busy. Please try again later from [2001:db8::25]. (S77714)",
        "451 4.7.500 Server busy.  Please try again later from [10.0.0.1].\t(S77714)",
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        mask_is(variants[i], "Server busy. Please try again later from [<ip>]. (S77714)");
    /* With the queue ID and host name that the real reply carries at its end. */
    mask_is("451 4.7.500 Server busy. Please try again later from [1.2.3.4]. (S77714) "
            "[DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com 2026-12-01T00:00:01.123Z "
            "08DD1A2B3C4D5E6F]",
            "Server busy. Please try again later from [<ip>]. (S77714) [<host> <id> <id>]");
}

static void test_mask_token_classes(void **state)
{
    (void)state;
    mask_is(NULL, "");
    mask_is("", "");
    /* Multi-line: the code and enhanced code of every line go, the lines are joined. */
    mask_is("421-4.7.28 [192.0.2.1 15] Our system has detected an unusual rate of\r\n"
            "421-4.7.28 unsolicited mail originating from your IP address.\r\n"
            "421 4.7.28 d2e1a72fcca58-7a0a8b0b123si12345pfb.123 - gsmtp",
            "[<ip> #] Our system has detected an unusual rate of unsolicited mail originating "
            "from your IP address. <id> - gsmtp");
    mask_is("550 5.1.1 <jane.doe+news@example.com>: Recipient address rejected",
            "<<addr>>: Recipient address rejected");
    mask_is("421 4.7.0 [TSS04] Messages from 192.0.2.9 temporarily deferred due to unexpected "
            "volume",
            "[TSS04] Messages from <ip> temporarily deferred due to unexpected volume");
    mask_is("452 try again in 300 seconds, queue 4 of 12", "try again in # seconds, queue # of #");
    mask_is("connect to mx1.example.net[192.0.2.5]:25: Connection refused",
            "connect to <host>[<ip>]:#: Connection refused");
    mask_is("timeout at 10:00:00 after 30s", "timeout at #:#:# after 30s");
    mask_is("id 550e8400-e29b-41d4-a716-446655440000 queued", "id <id> queued");
    mask_is("fe80::1 and 2001:4860:4860:0:0:0:0:8888 refused", "<ip> and <ip> refused");
    /* Words with a dot that are not host names stay. */
    mask_is("e.g. not now.", "e.g. not now.");
    /* Code-like words of fewer than 8 characters name the reason: kept. */
    mask_is("550 5.7.1 blocked (S3150) RFC5321", "blocked (S3150) RFC5321");
}

static void test_mask_bounds(void **state)
{
    (void)state;
    char out[8];
    /* "ab" then U+00E9 (2 bytes) "cd" then U+00E9: cut before a character that does not fit. */
    size_t n = stats_mask_reason("ab\xc3\xa9"
                                 "cd\xc3\xa9",
                                 out, sizeof out);
    assert_int_equal(n, 6);
    assert_string_equal(out, "ab\xc3\xa9"
                             "cd");
    n = stats_mask_reason("abcdef\xc3\xa9", out, sizeof out);
    assert_int_equal(n, 6); /* 7 bytes of room: the 2-byte character does not fit whole */
    assert_string_equal(out, "abcdef");
    char big[STATS_REASON_MAX];
    char in[2000];
    memset(in, 'x', sizeof in - 1);
    in[sizeof in - 1] = '\0';
    n = stats_mask_reason(in, big, sizeof big);
    assert_int_equal(n, STATS_REASON_MAX - 1);
    assert_int_equal(strlen(big), STATS_REASON_MAX - 1);
}

/* ---- periods ---- */

static void period(int64_t hour, enum stats_by by, const char *zone, struct stats_day_cache *c,
                   const char *want_label, int64_t want_start, int64_t want_end)
{
    char label[40];
    int64_t s = 0, en = 0;
    struct err e;
    assert_int_equal(stats_period_of(hour, by, zone, c, label, &s, &en, &e), IPW_OK);
    assert_string_equal(label, want_label);
    assert_int_equal(s, want_start);
    assert_int_equal(en, want_end);
}

static void test_period_tokyo(void **state)
{
    (void)state;
    struct stats_day_cache c;
    memset(&c, 0, sizeof c);
    /* Tokyo midnight is 15:00Z of the day before. */
    int64_t mid = DEC1 - 9 * HOUR;
    period(DEC1 + 14 * HOUR, STATS_BY_DAY, "Asia/Tokyo", &c, "2026-12-01", mid, mid + 24 * HOUR);
    period(DEC1 + 15 * HOUR, STATS_BY_DAY, "Asia/Tokyo", &c, "2026-12-02", mid + 24 * HOUR,
           mid + 48 * HOUR);
    period(DEC1 - 9 * HOUR, STATS_BY_DAY, "Asia/Tokyo", &c, "2026-12-01", mid, mid + 24 * HOUR);
    period(DEC1 - 10 * HOUR, STATS_BY_DAY, "Asia/Tokyo", &c, "2026-11-30", mid - 24 * HOUR, mid);
    period(DEC1 + 15 * HOUR, STATS_BY_HOUR, "Asia/Tokyo", &c, "2026-12-02T00:00:00+09:00",
           DEC1 + 15 * HOUR, DEC1 + 16 * HOUR);
    period(DEC1, STATS_BY_HOUR, NULL, &c, "2026-12-01T00:00:00+00:00", DEC1, DEC1 + HOUR);
}

static void test_period_new_york_dst(void **state)
{
    (void)state;
    struct stats_day_cache c;
    memset(&c, 0, sizeof c);
    /* 2026-03-08 in New York: midnight EST = 05:00Z; the next midnight is EDT = 04:00Z of the
     * 9th: a day of 23 hours. */
    int64_t s = MAR8 + 5 * HOUR, en = MAR8 + 24 * HOUR + 4 * HOUR;
    for (int64_t h = s; h < en; h += HOUR)
        period(h, STATS_BY_DAY, "America/New_York", &c, "2026-03-08", s, en);
    assert_int_equal((en - s) / HOUR, 23);
    period(en, STATS_BY_DAY, "America/New_York", &c, "2026-03-09", en, en + 24 * HOUR);
    /* Hours before and after the change carry their own offsets. */
    period(MAR8 + 6 * HOUR, STATS_BY_HOUR, "America/New_York", &c, "2026-03-08T01:00:00-05:00",
           MAR8 + 6 * HOUR, MAR8 + 7 * HOUR);
    period(MAR8 + 7 * HOUR, STATS_BY_HOUR, "America/New_York", &c, "2026-03-08T03:00:00-04:00",
           MAR8 + 7 * HOUR, MAR8 + 8 * HOUR);
    /* 2026-11-01: midnight EDT = 04:00Z; the next midnight EST = 05:00Z of the 2nd: 25 hours. */
    s = NOV1 + 4 * HOUR;
    en = NOV1 + 24 * HOUR + 5 * HOUR;
    for (int64_t h = s; h < en; h += HOUR)
        period(h, STATS_BY_DAY, "America/New_York", &c, "2026-11-01", s, en);
    assert_int_equal((en - s) / HOUR, 25);
    period(s - HOUR, STATS_BY_DAY, "America/New_York", &c, "2026-10-31", s - 24 * HOUR, s);
    /* 01:00 happens twice: -04:00 then -05:00. */
    period(NOV1 + 5 * HOUR, STATS_BY_HOUR, "America/New_York", &c, "2026-11-01T01:00:00-04:00",
           NOV1 + 5 * HOUR, NOV1 + 6 * HOUR);
    period(NOV1 + 6 * HOUR, STATS_BY_HOUR, "America/New_York", &c, "2026-11-01T01:00:00-05:00",
           NOV1 + 6 * HOUR, NOV1 + 7 * HOUR);
}

/* ---- the scenario ---- */

static int seq_no;

/* One attempt to a new recipient of provider at t, ending in outcome with the reply given. */
static void attempt(struct store *st, const char *rcpt, const char *provider, int64_t t,
                    const char *outcome, int code, const char *enhanced, const char *text)
{
    struct err e;
    char addr[96];
    if (!rcpt) {
        snprintf(addr, sizeof addr, "r%d@%s.example", ++seq_no, provider);
        rcpt = addr;
    }
    int added = 0;
    assert_int_equal(store_recipient_add(st, rcpt, NULL, provider, t, t, &added, &e), IPW_OK);
    struct store_attempt a = {.started_ms = t,
                              .recipient = rcpt,
                              .provider = provider,
                              .mx = "mx.test.example",
                              .source_ip = "192.0.2.10",
                              .phase = "connect"};
    int64_t id = 0;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    struct store_outcome o = {.finished_ms = t + 1500,
                              .phase = code ? (code < 300 ? "data" : "rcpt") : "connect",
                              .code = code,
                              .enhanced = enhanced,
                              .text = text,
                              .outcome = outcome};
    struct store_recipient_update u = {.step = STORE_RCPT_RETRY, .next_at_ms = t + 5 * MIN};
    if (strcmp(outcome, "delivered") == 0)
        u.step = STORE_RCPT_DONE;
    else if (strcmp(outcome, "bounced") == 0)
        u.step = STORE_RCPT_SUPPRESS;
    ipw_status r = store_attempt_finish_ex(st, id, &o, &u, &e);
    if (r != IPW_OK)
        print_error("finish: %s\n", e.msg);
    assert_int_equal(r, IPW_OK);
}

static const char *const MS_BUSY[] = {
    "451 4.7.500 Server busy. Please try again later from [1.2.3.4]. (S77714) "
    "[BN8NAM11FT034.eop-nam11.prod.protection.outlook.com]",
    "451 4.7.500 Server busy. Please try again later from [5.6.7.8]. (S77714) "
    "[AM6EUR05FT011.eop-eur05.prod.protection.outlook.com]",
    "451 4.7.500 Server busy. Please try again later from [192.0.2.44]. (S77714) "
    "[DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]",
};

/*
 * The scenario, in the plan zone Asia/Tokyo (local day 2026-12-01 runs 2026-11-30T15:00Z to
 * 2026-12-01T15:00Z):
 *   2026-12-01: microsoft 10 delivered, 6 deferred (Server busy, three IP/ID variants), 1 bounced
 *               gmail 20 delivered, 2 deferred (unusual rate), 1 failed (no reply)
 *   2026-12-02: microsoft 5 delivered, 1 deferred (Server busy)
 * The microsoft attempt at 14:30Z (23:30 in Tokyo) counts on the 1st, the one at 15:30Z
 * (00:30 on the 2nd) on the 2nd although both are on the 1st in UTC. trace@outlook.example
 * has three attempts: deferred, deferred, delivered (its last delivered is one of the 10).
 * Rule actions: a throttle twice and a suspend for microsoft, a manual pause for gmail.
 */
static void fill(struct store *st)
{
    struct err e;
    int64_t d1 = DEC1; /* 09:00 in Tokyo on the 1st */
    /* trace@: the first two of the 6 deferrals and the first of the 10 deliveries. */
    attempt(st, "trace@outlook.example", "microsoft", d1, "deferred", 451, "4.7.500", MS_BUSY[0]);
    attempt(st, "trace@outlook.example", "microsoft", d1 + 20 * MIN, "deferred", 451, "4.7.500",
            MS_BUSY[1]);
    attempt(st, "trace@outlook.example", "microsoft", d1 + 2 * HOUR, "delivered", 250, "2.6.0",
            "250 2.6.0 <m1@example.com> [InternalId=123] Queued mail for delivery");
    for (int i = 0; i < 8; i++)
        attempt(st, NULL, "microsoft", d1 + 3 * HOUR + i * MIN, "delivered", 250, "2.0.0", "OK");
    attempt(st, NULL, "microsoft", d1 + 14 * HOUR + 30 * MIN, "delivered", 250, "2.0.0", "OK");
    for (int i = 0; i < 4; i++)
        attempt(st, NULL, "microsoft", d1 + 4 * HOUR + i * MIN, "deferred", 451, "4.7.500",
                MS_BUSY[i % 3]);
    attempt(st, NULL, "microsoft", d1 + 5 * HOUR, "bounced", 550, "5.7.1",
            "550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. (S3150)");
    for (int i = 0; i < 20; i++)
        attempt(st, NULL, "gmail", d1 + i * 10 * MIN, "delivered", 250, "2.0.0", "OK gsmtp");
    attempt(
        st, NULL, "gmail", d1 + 6 * HOUR, "deferred", 421, "4.7.28",
        "421-4.7.28 [192.0.2.10 15] Our system has detected an unusual rate\r\n"
        "421 4.7.28 of unsolicited mail. To protect our users from spam, mail sent from "
        "your IP address has been rate limited. a640c23a62f3a-a9a2c1b8f12si1234567a.123 - gsmtp");
    attempt(
        st, NULL, "gmail", d1 + 7 * HOUR, "deferred", 421, "4.7.28",
        "421-4.7.28 [192.0.2.11 16] Our system has detected an unusual rate\r\n"
        "421 4.7.28 of unsolicited mail. To protect our users from spam, mail sent from "
        "your IP address has been rate limited. b7f0c23a62f3a-z9a2c1b8f12si7654321b.456 - gsmtp");
    attempt(st, NULL, "gmail", d1 + 8 * HOUR, "failed", 0, NULL,
            "connect to gmail-smtp-in.l.google.com[142.250.1.27]:25: Connection refused");
    /* The 2nd in Tokyo. */
    int64_t d2 = DEC1 + 15 * HOUR + 30 * MIN; /* 00:30 on the 2nd */
    for (int i = 0; i < 5; i++)
        attempt(st, NULL, "microsoft", d2 + i * MIN, "delivered", 250, "2.0.0", "OK");
    attempt(st, NULL, "microsoft", d2 + 10 * MIN, "deferred", 451, "4.7.500", MS_BUSY[2]);

    struct store_rule_action ra = {.provider = "microsoft",
                                   .rule = "outlook-server-busy",
                                   .action = "throttle",
                                   .rate_per_min = 1,
                                   .reason = MS_BUSY[0],
                                   .started_ms = d1 + 4 * HOUR,
                                   .expires_ms = d1 + 4 * HOUR + 15 * MIN};
    assert_int_equal(store_rule_add(st, &ra, NULL, &e), IPW_OK);
    ra.started_ms = d2 + 10 * MIN;
    ra.expires_ms = d2 + 25 * MIN;
    assert_int_equal(store_rule_add(st, &ra, NULL, &e), IPW_OK);
    struct store_rule_action su = {.provider = "microsoft",
                                   .rule = "outlook-block-list",
                                   .action = "suspend",
                                   .reason = "550 5.7.1 Unfortunately, messages from "
                                             "[192.0.2.10] weren't sent. (S3150)",
                                   .started_ms = d1 + 5 * HOUR,
                                   .expires_ms = d1 + 5 * HOUR + 30 * MIN};
    assert_int_equal(store_rule_add(st, &su, NULL, &e), IPW_OK);
    struct store_rule_action pa = {.provider = "gmail",
                                   .rule = "manual",
                                   .action = "pause",
                                   .reason = "checking the DNS",
                                   .started_ms = d1 + 9 * HOUR,
                                   .manual = 1};
    assert_int_equal(store_rule_add(st, &pa, NULL, &e), IPW_OK);

    struct store_provider pm = {.name = "microsoft",
                                .stage = 1,
                                .sending_day = 2,
                                .sending_day_date = "2026-12-02",
                                .rate_per_min = 3.5,
                                .sent_today = 6,
                                .sent_today_date = "2026-12-02",
                                .last_reply = MS_BUSY[2],
                                .last_reply_ms = d2 + 10 * MIN,
                                .updated_ms = d2 + 10 * MIN};
    assert_int_equal(store_provider_save(st, &pm, &e), IPW_OK);
    struct store_provider pg = {.name = "gmail",
                                .stage = 0,
                                .sending_day = 1,
                                .sending_day_date = "2026-12-01",
                                .rate_per_min = 5,
                                .sent_today = 23,
                                .sent_today_date = "2026-12-01",
                                .paused_until_ms = 0,
                                .pause_reason = "checking the DNS",
                                .pause_manual = 1,
                                .updated_ms = d1 + 9 * HOUR};
    pg.paused_until_ms = INT64_C(4102444800000); /* 2100: held until resumed */
    assert_int_equal(store_provider_save(st, &pg, &e), IPW_OK);
    assert_int_equal(store_preflight_add(st, d1 - HOUR, 1,
                                         "{\"ok\": true, \"checks\": [{\"name\": \"spf\", "
                                         "\"status\": \"pass\", \"required\": true, "
                                         "\"detail\": \"pass for 192.0.2.10\"}]}",
                                         NULL, &e),
                     IPW_OK);
}

static char tmpdir[64];

static struct store *filled_store(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.db", tmpdir, name);
    struct store *st = NULL;
    struct err e;
    assert_int_equal(store_open(path, &st, &e), IPW_OK);
    seq_no = 0;
    fill(st);
    return st;
}

static const struct stats_row *row_of(const struct stats_result *r, const char *period,
                                      const char *provider)
{
    for (size_t i = 0; i < r->n_rows; i++)
        if (strcmp(r->rows[i].period, period) == 0 && strcmp(r->rows[i].provider, provider) == 0)
            return &r->rows[i];
    return NULL;
}

static void test_collect_tokyo_days(void **state)
{
    (void)state;
    struct store *st = filled_store("tokyo");
    struct stats_query q = {.by = STATS_BY_DAY, .zone = "Asia/Tokyo"};
    struct stats_result r;
    struct err e;
    assert_int_equal(stats_collect(st, &q, &r, &e), IPW_OK);
    assert_int_equal(r.n_rows, 3);
    /* By period, then provider. */
    assert_string_equal(r.rows[0].period, "2026-12-01");
    assert_string_equal(r.rows[0].provider, "gmail");
    assert_string_equal(r.rows[1].provider, "microsoft");
    assert_string_equal(r.rows[2].period, "2026-12-02");

    const struct stats_row *m1 = row_of(&r, "2026-12-01", "microsoft");
    assert_non_null(m1);
    assert_int_equal(m1->attempts, 17);
    assert_int_equal(m1->delivered, 10);
    assert_int_equal(m1->deferred, 6);
    assert_int_equal(m1->bounced, 1);
    assert_int_equal(m1->failed, 0);
    assert_float_equal(stats_deferral_rate(m1), 6.0 / 17.0, 1e-9);
    assert_float_equal(stats_bounce_rate(m1), 1.0 / 17.0, 1e-9);
    assert_int_equal(m1->start_ms, DEC1 - 9 * HOUR);
    assert_int_equal(m1->end_ms, DEC1 + 15 * HOUR);
    /* Six Server busy replies with three IP/ID variants: one reason. */
    assert_int_equal(m1->n_reasons, 2);
    assert_int_equal(m1->reasons[0].count, 6);
    assert_int_equal(m1->reasons[0].code, 451);
    assert_string_equal(m1->reasons[0].enhanced, "4.7.500");
    assert_string_equal(m1->reasons[0].outcome, "deferred");
    assert_string_equal(m1->reasons[0].text,
                        "Server busy. Please try again later from [<ip>]. (S77714) [<host>]");
    assert_int_equal(m1->reasons[1].count, 1);
    assert_int_equal(m1->reasons[1].code, 550);
    assert_string_equal(m1->reasons[1].text,
                        "Unfortunately, messages from [<ip>] weren't sent. (S3150)");

    const struct stats_row *g1 = row_of(&r, "2026-12-01", "gmail");
    assert_non_null(g1);
    assert_int_equal(g1->attempts, 23);
    assert_int_equal(g1->delivered, 20);
    assert_int_equal(g1->deferred, 2);
    assert_int_equal(g1->failed, 1);
    assert_int_equal(g1->n_reasons, 2);
    assert_int_equal(g1->reasons[0].count, 2);
    assert_int_equal(g1->reasons[0].code, 421);
    assert_int_equal(g1->reasons[1].code, 0);
    assert_null(g1->reasons[1].enhanced);
    assert_string_equal(g1->reasons[1].outcome, "failed");
    assert_string_equal(g1->reasons[1].text, "connect to <host>[<ip>]:#: Connection refused");

    const struct stats_row *m2 = row_of(&r, "2026-12-02", "microsoft");
    assert_non_null(m2);
    assert_int_equal(m2->attempts, 6);
    assert_int_equal(m2->delivered, 5);
    assert_int_equal(m2->deferred, 1);
    assert_int_equal(m2->n_reasons, 1);

    /* Rules: microsoft's throttle twice, its suspension once; gmail's manual pause. */
    assert_int_equal(r.n_rules, 3);
    assert_string_equal(r.rules[0].provider, "gmail");
    assert_string_equal(r.rules[1].rule, "outlook-server-busy");
    assert_int_equal(r.rules[1].count, 2);
    assert_int_equal(r.rules[1].last_ms, DEC1 + 15 * HOUR + 40 * MIN);
    assert_int_equal(r.n_pauses, 2);
    assert_string_equal(r.pauses[0].action, "suspend");
    assert_int_equal(r.pauses[0].expires_ms, DEC1 + 5 * HOUR + 30 * MIN);
    assert_string_equal(r.pauses[1].action, "pause");
    assert_true(r.pauses[1].manual);
    assert_int_equal(r.pauses[1].expires_ms, 0);
    stats_result_free(&r);

    /* --provider and --since: only microsoft, from 10:00Z on the 1st (hours overlapping). */
    q.provider = "microsoft";
    q.since_ms = DEC1 + 10 * HOUR + 20 * MIN;
    assert_int_equal(stats_collect(st, &q, &r, &e), IPW_OK);
    assert_int_equal(r.n_rows, 2);
    assert_int_equal(r.rows[0].attempts, 1); /* the delivery at 14:30Z */
    assert_int_equal(r.rows[1].attempts, 6);
    assert_int_equal(r.n_rules, 1);
    assert_int_equal(r.rules[0].count, 1);
    stats_result_free(&r);

    /* By hour: the hour of 15:00Z is 00:00 on the 2nd in Tokyo. */
    q.provider = NULL;
    q.since_ms = DEC1 + 15 * HOUR;
    q.by = STATS_BY_HOUR;
    assert_int_equal(stats_collect(st, &q, &r, &e), IPW_OK);
    assert_int_equal(r.n_rows, 1);
    assert_string_equal(r.rows[0].period, "2026-12-02T00:00:00+09:00");
    stats_result_free(&r);

    /* In UTC the same attempts fall on one day. */
    q.since_ms = 0;
    q.by = STATS_BY_DAY;
    q.zone = "UTC";
    assert_int_equal(stats_collect(st, &q, &r, &e), IPW_OK);
    assert_int_equal(r.n_rows, 2);
    m1 = row_of(&r, "2026-12-01", "microsoft");
    assert_non_null(m1);
    assert_int_equal(m1->attempts, 23);
    assert_int_equal(m1->reasons[0].count, 7);
    stats_result_free(&r);
    store_close(st);
}

static void test_collect_new_york_dst(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/ny.db", tmpdir);
    struct store *st = NULL;
    struct err e;
    assert_int_equal(store_open(path, &st, &e), IPW_OK);
    /* One delivery in each UTC hour from 2026-03-08T00:00Z to 2026-03-10T00:00Z, and from
     * 2026-11-01T00:00Z to 2026-11-03T00:00Z, at half past. */
    for (int64_t h = 0; h < 48; h++) {
        attempt(st, NULL, "gmail", MAR8 + h * HOUR + 30 * MIN, "delivered", 250, NULL, "OK");
        attempt(st, NULL, "gmail", NOV1 + h * HOUR + 30 * MIN, "delivered", 250, NULL, "OK");
    }
    struct stats_query q = {.by = STATS_BY_DAY, .zone = "America/New_York"};
    struct stats_result r;
    assert_int_equal(stats_collect(st, &q, &r, &e), IPW_OK);
    /* 2026-03-07 gets the hours before 05:00Z (5), the 8th its 23 hours, the 9th the rest
     * (48 - 5 - 23 = 20); in November the 31st gets 4, the 1st 25 and the 2nd 19. */
    const struct stats_row *x;
    x = row_of(&r, "2026-03-07", "gmail");
    assert_non_null(x);
    assert_int_equal(x->attempts, 5);
    x = row_of(&r, "2026-03-08", "gmail");
    assert_non_null(x);
    assert_int_equal(x->attempts, 23);
    assert_int_equal(x->end_ms - x->start_ms, 23 * HOUR);
    x = row_of(&r, "2026-03-09", "gmail");
    assert_non_null(x);
    assert_int_equal(x->attempts, 20);
    x = row_of(&r, "2026-10-31", "gmail");
    assert_non_null(x);
    assert_int_equal(x->attempts, 4);
    x = row_of(&r, "2026-11-01", "gmail");
    assert_non_null(x);
    assert_int_equal(x->attempts, 25);
    assert_int_equal(x->end_ms - x->start_ms, 25 * HOUR);
    x = row_of(&r, "2026-11-02", "gmail");
    assert_non_null(x);
    assert_int_equal(x->attempts, 19);
    assert_int_equal(r.n_rows, 6);
    stats_result_free(&r);
    store_close(st);
}

/* ---- writers ---- */

/* Runs a writer into a temporary file and returns its text (malloc'd). */
static char *capture(const struct stats_result *r, const struct stats_query *q, int which)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    struct err e;
    ipw_status s = which == 0   ? stats_write_table(r, q->zone, f, &e)
                   : which == 1 ? stats_write_csv(r, f, &e)
                                : stats_write_json(r, q, f, false, &e);
    assert_int_equal(s, IPW_OK);
    long n = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static void test_writers(void **state)
{
    (void)state;
    struct store *st = filled_store("writers");
    struct stats_query q = {.by = STATS_BY_DAY, .zone = "Asia/Tokyo"};
    struct stats_result r;
    struct err e;
    assert_int_equal(stats_collect(st, &q, &r, &e), IPW_OK);

    char *t = capture(&r, &q, 0);
    /* Every line fits 80 columns; the rows are there with their numbers. */
    for (char *line = t; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        size_t w = 0;
        for (char *p = line; p < nl; p++)
            if (((unsigned char)*p & 0xC0) != 0x80)
                w++;
        if (w > 80)
            print_error("too wide: %.*s\n", (int)(nl - line), line);
        assert_true(w <= 80);
        line = nl + 1;
    }
    assert_non_null(strstr(t, "PERIOD"));
    assert_non_null(strstr(t, "2026-12-01 microsoft    17    10     6      1    0  35.3%   5.9%"));
    assert_non_null(
        strstr(t, "       6 x 451 4.7.500 Server busy. Please try again later from [<ip>]."));
    assert_non_null(strstr(t, "Pauses and suspensions:"));
    assert_non_null(strstr(t, "microsoft suspend from 2026-12-01T14:00+09:00 to "
                              "2026-12-01T14:30+09:00\n"));
    assert_non_null(strstr(t, "gmail pause (manual) from 2026-12-01T18:00+09:00 until resumed\n"));
    assert_non_null(strstr(t, "  microsoft  throttle    2 x outlook-server-busy, last "
                              "2026-12-02T00:40+09:00\n"));
    free(t);

    t = capture(&r, &q, 1);
    assert_non_null(
        strstr(t, "period,provider,attempts,delivered,deferred,bounced,failed,"
                  "expired,unknown,deferral_rate,bounce_rate,top_reason_code,"
                  "top_reason_enhanced,top_reason_text,top_reason_count,blocked,complaints,"
                  "complaint_rate,late_bounces\r\n"));
    assert_non_null(strstr(
        t,
        "2026-12-01,microsoft,17,10,6,1,0,0,0,0.3529,0.0588,451,4.7.500,"
        "Server busy. Please try again later from [<ip>]. (S77714) [<host>],6,0,0,0.0000,0\r\n"));
    /* A text with a comma is quoted. */
    assert_non_null(
        strstr(t, "2026-12-01,gmail,23,20,2,0,1,0,0,0.0870,0.0000,421,4.7.28,"
                  "\"[<ip> #] Our system has detected an unusual rate of "
                  "unsolicited mail. To protect our users from spam, mail sent from "
                  "your IP address has been rate limited. <id> - gsmtp\",2,0,0,0.0000,0\r\n"));
    int lines = 0;
    for (char *p = t; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 4);
    free(t);

    t = capture(&r, &q, 2);
    assert_non_null(strstr(t, "\"period\":\"2026-12-01\",\"start\":\"2026-12-01T00:00:00+09:00\""));
    assert_non_null(strstr(t, "\"provider\":\"microsoft\",\"attempts\":17,\"delivered\":10,"
                              "\"deferred\":6,\"bounced\":1,\"failed\":0"));
    assert_non_null(strstr(t, "\"deferral_rate\":0.3529,\"bounce_rate\":0.0588"));
    assert_non_null(strstr(t,
                           "{\"code\":451,\"enhanced\":\"4.7.500\",\"text\":\"Server busy. "
                           "Please try again later from [<ip>]. (S77714) [<host>]\",\"count\":6"));
    assert_non_null(strstr(t, "{\"code\":null,\"enhanced\":null,"));
    assert_non_null(strstr(t, "\"rules\":[{\"provider\":\"gmail\",\"rule\":\"manual\""));
    assert_non_null(strstr(t, "\"expires\":null,\"manual\":true"));
    free(t);

    /* Nothing in range: the table says so, the CSV is its header, the JSON has no rows. */
    stats_result_free(&r);
    q.since_ms = DEC1 + 1000 * HOUR;
    assert_int_equal(stats_collect(st, &q, &r, &e), IPW_OK);
    assert_int_equal(r.n_rows, 0);
    t = capture(&r, &q, 0);
    assert_string_equal(t, "No attempts recorded in this range.\n");
    free(t);
    t = capture(&r, &q, 2);
    assert_non_null(strstr(t, "\"rows\":[]"));
    free(t);
    stats_result_free(&r);
    store_close(st);
}

/* A refusal of the sender (blocked) and an attempt a killed run left in flight (unknown) are
 * counted in their own columns of every writer. */
static void test_blocked_unknown(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/blocked.db", tmpdir);
    struct store *st = NULL;
    struct err e;
    assert_int_equal(store_open(path, &st, &e), IPW_OK);
    seq_no = 0;
    /* 2026-12-01T01:00Z: 10:00 in Tokyo. */
    int64_t t = INT64_C(1796086800000);
    attempt(st, NULL, "yahoo", t, "delivered", 250, "2.0.0", "ok");
    attempt(st, NULL, "yahoo", t + MIN, "blocked", 554, "5.7.9",
            "Message not accepted for policy reasons");
    attempt(st, NULL, "yahoo", t + 2 * MIN, "blocked", 554, "5.7.9",
            "Message not accepted for policy reasons");
    /* In flight when the run was killed: recovered as unknown. */
    int added = 0;
    assert_int_equal(store_recipient_add(st, "lost@yahoo.example", NULL, "yahoo", t, t, &added, &e),
                     IPW_OK);
    struct store_attempt a = {.started_ms = t + 3 * MIN,
                              .recipient = "lost@yahoo.example",
                              .provider = "yahoo",
                              .mx = "mx.test.example",
                              .source_ip = "192.0.2.10",
                              .phase = "data"};
    int64_t id = 0;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    int64_t n = 0;
    assert_int_equal(store_attempts_recover(st, t + 4 * MIN, &n, &e), IPW_OK);
    assert_int_equal(n, 1);

    struct stats_query q = {.by = STATS_BY_DAY, .zone = "Asia/Tokyo"};
    struct stats_result r;
    assert_int_equal(stats_collect(st, &q, &r, &e), IPW_OK);
    const struct stats_row *w = row_of(&r, "2026-12-01", "yahoo");
    assert_non_null(w);
    assert_int_equal(w->attempts, 4);
    assert_int_equal(w->blocked, 2);
    assert_int_equal(w->unknown, 1);
    assert_int_equal(w->deferred, 0);

    char *txt = capture(&r, &q, 0);
    assert_non_null(strstr(txt, " FAIL BLOCK UNKN DEFER%"));
    assert_non_null(
        strstr(txt, " yahoo        4     1     0      0    0     2    1   0.0%   0.0%\n"));
    free(txt);
    txt = capture(&r, &q, 1);
    assert_non_null(
        strstr(txt, "top_reason_count,blocked,complaints,complaint_rate,late_bounces\r\n"));
    assert_non_null(strstr(txt, "2026-12-01,yahoo,4,1,0,0,0,0,1,0.0000,0.0000,554,5.7.9,"
                                "Message not accepted for policy reasons,2,2,0,0.0000,0\r\n"));
    free(txt);
    txt = capture(&r, &q, 2);
    assert_non_null(strstr(txt, "\"unknown\":1,\"blocked\":2,"));
    assert_non_null(strstr(txt, "\"outcome\":\"blocked\""));
    free(txt);
    stats_result_free(&r);
    store_close(st);
}

/* The one merge of reply counters: equal replies add up, and ties sort by code, enhanced
 * code, outcome, then text, whatever order the store gave them in. */
static void test_reasons_merge_and_ties(void **state)
{
    (void)state;
    struct stats_reason *l = NULL;
    size_t n = 0;
    assert_true(stats_reason_add(&l, &n, "deferred", 451, "4.7.500", "busy", 2));
    assert_true(stats_reason_add(&l, &n, "deferred", 421, NULL, "zzz", 3));
    assert_true(stats_reason_add(&l, &n, "failed", 0, NULL, NULL, 3));
    assert_true(stats_reason_add(&l, &n, "deferred", 421, "4.7.0", "aaa", 3));
    assert_true(stats_reason_add(&l, &n, "blocked", 421, "4.7.0", "aaa", 3));
    assert_true(stats_reason_add(&l, &n, "deferred", 451, "4.7.500", "busy", 1));
    assert_true(stats_reason_add(&l, &n, "deferred", 421, "4.7.0", "aaa", 0));
    assert_int_equal(n, 5);
    stats_reasons_sort(l, n);
    /* 3 each: code 0 (no reply) first; then 421 with no enhanced code before 4.7.0; then
     * blocked before deferred; the merged 451 (2 + 1) last by code. */
    assert_int_equal(l[0].code, 0);
    assert_string_equal(l[0].text, "");
    assert_int_equal(l[1].code, 421);
    assert_null(l[1].enhanced);
    assert_string_equal(l[2].outcome, "blocked");
    assert_string_equal(l[3].outcome, "deferred");
    assert_string_equal(l[3].enhanced, "4.7.0");
    assert_int_equal(l[4].code, 451);
    assert_int_equal(l[4].count, 3);
    stats_reasons_free(l, n);
}

static void test_store_open_missing(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/never.db", tmpdir);
    struct store *st = NULL;
    bool missing = false;
    struct err e;
    assert_int_equal(stats_store_open(path, &st, &missing, &e), IPW_OK);
    assert_true(missing);
    assert_int_equal(access(path, F_OK), -1); /* not created */
    int64_t n = -1;
    assert_int_equal(store_attempts_count(st, NULL, &n, &e), IPW_OK);
    assert_int_equal(n, 0);
    store_close(st);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ipwarm-stats-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --fill FILE: the scenario into FILE, for the CLI tests. */
static int fill_main(const char *path)
{
    struct store *st = NULL;
    struct err e;
    if (store_open(path, &st, &e) != IPW_OK) {
        fprintf(stderr, "test_stats --fill: %s\n", e.msg);
        return 1;
    }
    seq_no = 0;
    fill(st);
    store_close(st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--fill") == 0)
        return fill_main(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_microsoft_one_reason),
        cmocka_unit_test(test_mask_token_classes),
        cmocka_unit_test(test_mask_bounds),
        cmocka_unit_test(test_period_tokyo),
        cmocka_unit_test(test_period_new_york_dst),
        cmocka_unit_test(test_collect_tokyo_days),
        cmocka_unit_test(test_collect_new_york_dst),
        cmocka_unit_test(test_writers),
        cmocka_unit_test(test_blocked_unknown),
        cmocka_unit_test(test_reasons_merge_and_ties),
        cmocka_unit_test(test_store_open_missing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
