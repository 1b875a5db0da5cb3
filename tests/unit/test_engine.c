/*
 * Replays of the engine (engine_run) on a manual clock: the real loop, store, plan, ramp,
 * pacing, backoff and rules, with the network replaced by the scripted transport
 * (transport_fake) and an in-memory DNS zone, so that hours and days of warm-up run in
 * milliseconds. Each test scripts what the providers answer and asserts when each message went
 * out (fake time), what the store recorded, and what the recipients became.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipwarm/clock.h"
#include "ipwarm/dns.h"
#include "ipwarm/engine.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"
#include "ipwarm/transport.h"

/* 2026-12-01T09:00:00Z, a Tuesday. */
#define T0   1796115600000LL
#define MIN  60000LL
#define HOUR 3600000LL
#define DAY  (24 * HOUR)

/* What the scripted providers answer: the first rule whose recipient prefix matches and whose
 * from..to window of its nth message (counted per rule, from 1) holds. */
struct rule {
    const char *prefix; /* recipient prefix, "" for any */
    int from, to;       /* the matching messages it applies to (to 0: no end) */
    struct transport_fake_reply reply;
    int seen;
};

struct world {
    char dir[64];
    struct dns_zone *zone;
    struct dns *dns;
    struct plan *plan;
    struct store *st;
    struct clock_manual clk;
    struct transport tr;
    struct rule rules[8];
    size_t n_rules;
    volatile sig_atomic_t stop;
    int stop_at_submit; /* set stop when this many transactions were submitted (0: never) */
    int submitted;
    struct engine_summary sum;
    /* Called at each submission, after the reply is scripted (another process's doing). */
    void (*on_submit)(struct world *w, const struct smtp_job *job);
};

static void script(const struct smtp_job *job, int64_t now, struct transport_fake_reply *out,
                   void *ctx)
{
    struct world *w = ctx;
    (void)now;
    w->submitted++;
    if (w->stop_at_submit && w->submitted == w->stop_at_submit)
        w->stop = 1;
    for (size_t i = 0; i < w->n_rules; i++) {
        struct rule *r = &w->rules[i];
        if (strncmp(job->rcpt, r->prefix, strlen(r->prefix)) != 0)
            continue;
        r->seen++;
        if (r->seen >= r->from && (r->to == 0 || r->seen <= r->to)) {
            *out = r->reply;
            return;
        }
    }
    /* Everyone else: accepted after a second. */
    out->delay_ms = 1000;
    out->phase = SMTP_PHASE_DATA;
    out->reply = "250 2.0.0 OK queued";
    out->delivered = true;
    if (w->on_submit)
        w->on_submit(w, job);
}

static void add_rule(struct world *w, const char *prefix, int from, int to, int64_t delay,
                     enum smtp_phase phase, const char *reply)
{
    struct rule *r = &w->rules[w->n_rules++];
    memset(r, 0, sizeof *r);
    r->prefix = prefix;
    r->from = from;
    r->to = to;
    r->reply.delay_ms = delay;
    r->reply.phase = phase;
    r->reply.reply = reply;
    r->reply.delivered = reply && reply[0] == '2' && phase == SMTP_PHASE_DATA;
    r->reply.dot_sent = phase == SMTP_PHASE_DATA;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/*
 * A world with one sender, four providers' MX in DNS (gmail.test, outlook.test, yahoo.test,
 * example.test), the recipients given (one address per line) and the plan's extra YAML
 * (ramp, backoff, ... at top level).
 */
/* The plan's source line for the next world_open (NULL: one IP, 192.0.2.10). */
static const char *world_source;
/* recipients.mode for the next world_open (NULL: once). */
static const char *world_mode;

static void world_open(struct world *w, const char *recipients, const char *extra)
{
    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/ipwarm-engine-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    write_file(w->dir, "message.txt", "Hello {{recipient}}.\n");
    write_file(w->dir, "recipients.txt", recipients);
    char plan[4096];
    snprintf(plan, sizeof plan,
             "campaign: replay\n"
             "timezone: UTC\n"
             "%s"
             "sender: {from: \"News <news@example.com>\", return_path: bounces@example.com}\n"
             "transport: {mode: direct, port: 25, connections_per_provider: 1,\n"
             "            timeouts: {connect: 30s, command: 5m}}\n"
             "message: {subject: \"Hello\", text_file: message.txt}\n"
             "recipients: {file: recipients.txt, mode: %s}\n"
             "preflight: {require: []}\n"
             "%s",
             world_source ? world_source : "source: {ip: 192.0.2.10, helo: mx1.example.com}\n",
             world_mode ? world_mode : "once", extra);
    struct err e;
    ipw_status r = plan_load_text(plan, strlen(plan), "replay.yaml", w->dir, &w->plan, &e);
    if (r != IPW_OK)
        fail_msg("plan: %s", e.msg);
    w->zone = dns_zone_new();
    assert_non_null(w->zone);
    static const char *const records[][3] = {
        {"gmail.test", "MX", "5 gmail-smtp-in.l.google.com"},
        {"gmail-smtp-in.l.google.com", "A", "127.0.0.2"},
        {"outlook.test", "MX", "10 outlook-test.olc.protection.outlook.com"},
        {"outlook-test.olc.protection.outlook.com", "A", "127.0.0.3"},
        {"yahoo.test", "MX", "1 mta5.am0.yahoodns.net"},
        {"mta5.am0.yahoodns.net", "A", "127.0.0.4"},
        {"example.test", "MX", "10 mx.example.test"},
        {"mx.example.test", "A", "127.0.0.5"},
    };
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++)
        assert_int_equal(dns_zone_add(w->zone, records[i][0],
                                      strcmp(records[i][1], "MX") == 0 ? DNS_T_MX : DNS_T_A, 3600,
                                      records[i][2], &e),
                         IPW_OK);
    w->dns = dns_new_zone(w->zone, NULL, &e);
    assert_non_null(w->dns);
    char db[128];
    snprintf(db, sizeof db, "%s/state.db", w->dir);
    assert_int_equal(store_open(db, &w->st, &e), IPW_OK);
    clock_manual_init(&w->clk, T0);
    assert_int_equal(transport_fake_new(&w->clk, script, w, &w->tr, &e), IPW_OK);
}

static void world_close(struct world *w)
{
    transport_free(&w->tr);
    store_close(w->st);
    dns_free(w->dns);
    dns_zone_free(w->zone);
    plan_free(w->plan);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", w->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", w->dir);
}

/* Runs the engine like `run --for for_ms` (0: until stopped or the list is done). */
static ipw_status world_run(struct world *w, int64_t for_ms, struct err *e)
{
    struct engine_opts o = {
        .for_ms = for_ms,
        .stop = &w->stop,
        .clock = &w->clk.src,
        .transport = &w->tr,
    };
    return engine_run(w->plan, w->st, w->dns, &o, &w->sum, e);
}

static void world_run_ok(struct world *w, int64_t for_ms)
{
    struct err e;
    ipw_status r = world_run(w, for_ms, &e);
    if (r != IPW_OK)
        fail_msg("engine_run: %s", e.msg);
}

/* When the transactions to recipients starting with prefix were submitted, in order. */
static size_t sends(const struct world *w, const char *prefix, int64_t *at, size_t max)
{
    size_t n_log, k = 0;
    const struct transport_fake_sent *log = transport_fake_log(&w->tr, &n_log);
    for (size_t i = 0; i < n_log && k < max; i++)
        if (strncmp(log[i].rcpt, prefix, strlen(prefix)) == 0)
            at[k++] = log[i].submitted_ms;
    return k;
}

static int64_t sql_int(struct world *w, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(w->st), sql, -1, &s, NULL), SQLITE_OK);
    int64_t v = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static char *sql_text(struct world *w, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(w->st), sql, -1, &s, NULL), SQLITE_OK);
    char *v = NULL;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        v = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return v ? v : strdup("");
}

/* "PREFIX01@DOMAIN\n" ... for n recipients (numbers two digits wide, three from 100). */
static char *numbered(const char *prefix, const char *domain, int n)
{
    size_t cap = (size_t)n * 64 + 1, len = 0;
    char *s = calloc(1, cap);
    for (int i = 1; i <= n; i++)
        len += (size_t)snprintf(s + len, cap - len, n < 100 ? "%s%02d@%s\n" : "%s%03d@%s\n", prefix,
                                i, domain);
    return s;
}

/* ---- pacing ---- */

static void test_engine_paces_evenly(void **state)
{
    (void)state;
    struct world w;
    char *list = numbered("g", "gmail.test", 30);
    world_open(&w, list, "ramp: {start: 6/min}\n");
    free(list);
    world_run_ok(&w, 2 * MIN);
    int64_t at[64];
    size_t n = sends(&w, "g", at, 64);
    /* 6 a minute: one every 10 s from the start, for two minutes. */
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(at[i], T0 + (int64_t)i * 10000);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM attempts WHERE outcome = 'delivered'"), 12);
    world_close(&w);
}

static void test_engine_interleaves_providers(void **state)
{
    (void)state;
    struct world w;
    char *a = numbered("g", "gmail.test", 20), *b = numbered("m", "outlook.test", 20);
    char list[4096];
    snprintf(list, sizeof list, "%s%s", a, b);
    free(a);
    free(b);
    world_open(&w, list,
               "ramp: {start: 6/min}\n"
               "providers:\n"
               "  - {name: microsoft, ramp: {start: 3/min}}\n");
    world_run_ok(&w, MIN);
    int64_t g[16], m[16];
    assert_int_equal(sends(&w, "g", g, 16), 6);
    assert_int_equal(sends(&w, "m", m, 16), 3);
    for (int i = 0; i < 6; i++)
        assert_int_equal(g[i], T0 + i * 10000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(m[i], T0 + i * 20000);
    world_close(&w);
}

/* ---- backoff, retries and rules ---- */

static void test_engine_deferral_halves_and_pauses(void **state)
{
    (void)state;
    struct world w;
    char *list = numbered("m", "outlook.test", 6);
    world_open(&w, list, "ramp: {start: 6/min}\n");
    free(list);
    add_rule(&w, "m", 3, 3, 500, SMTP_PHASE_MAIL,
             "451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714)");
    world_run_ok(&w, 20 * MIN);
    int64_t at[64];
    size_t n = sends(&w, "m", at, 64);
    assert_true(n >= 4);
    assert_int_equal(at[2], T0 + 20000);
    /* Paused 15 min from the deferral, then at half the rate: one every 20 s. */
    assert_int_equal(at[3], T0 + 20000 + 500 + 15 * MIN);
    if (n >= 5)
        assert_int_equal(at[4] - at[3], 20000);
    char *reason = sql_text(&w, "SELECT pause_reason FROM providers WHERE name = 'microsoft'");
    assert_non_null(strstr(reason, "4.7.500"));
    free(reason);
    /* The deferred recipient is tried again, after the others (retry.first is 5 min, the pause
     * longer). */
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM attempts WHERE recipient = "
                                 "'m03@outlook.test'"),
                     2);
    world_close(&w);
}

static void test_engine_mailbox_full_retries_without_throttling(void **state)
{
    (void)state;
    struct world w;
    char *list = numbered("g", "gmail.test", 9);
    char full[1024];
    snprintf(full, sizeof full, "full@gmail.test\n%s", list);
    free(list);
    world_open(&w, full, "ramp: {start: 6/min}\n");
    add_rule(&w, "full", 1, 1, 500, SMTP_PHASE_RCPT,
             "452 4.2.2 The email account that you tried to reach is over quota");
    world_run_ok(&w, 7 * MIN);
    /* The provider's pace never broke: the ten first messages 10 s apart. */
    int64_t g[64];
    size_t n = sends(&w, "", g, 64);
    assert_int_equal(n, 11);
    for (size_t i = 1; i < 10; i++)
        assert_int_equal(g[i] - g[i - 1], 10000);
    /* The full mailbox is tried again on the first slot 5 min (retry.first) after its reply. */
    int64_t at[8];
    assert_int_equal(sends(&w, "full", at, 8), 2);
    assert_true(at[1] >= T0 + 500 + 5 * MIN);
    assert_true(at[1] < T0 + 500 + 5 * MIN + 10000);
    assert_int_equal(sql_int(&w, "SELECT coalesce(paused_until_ms, 0) FROM providers "
                                 "WHERE name = 'gmail'"),
                     0);
    world_close(&w);
}

static void test_engine_rule_suspends(void **state)
{
    (void)state;
    struct world w;
    char *list = numbered("y", "yahoo.test", 40);
    world_open(&w, list, "ramp: {start: 6/min}\n");
    free(list);
    add_rule(&w, "y", 2, 2, 500, SMTP_PHASE_MAIL,
             "421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to "
             "unexpected volume or user complaints");
    world_run_ok(&w, 3 * HOUR);
    int64_t at[64];
    size_t n = sends(&w, "y", at, 64);
    assert_true(n >= 3);
    /* The shipped rule suspends Yahoo 2 h from the reply. */
    assert_true(at[2] >= T0 + 10000 + 500 + 2 * HOUR);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions WHERE provider = 'yahoo' "
                                 "AND rule = 'yahoo-tss04' AND action = 'suspend'"),
                     1);
    world_close(&w);
}

/* ---- stopping, and messages whose fate is unknown ---- */

static void test_engine_stop_with_message_in_flight(void **state)
{
    (void)state;
    struct world w;
    char *list = numbered("g", "gmail.test", 30);
    world_open(&w, list, "ramp: {start: 60/min}\n");
    free(list);
    /* The third message stalls after its dot; the stop arrives as it is submitted. */
    add_rule(&w, "g03", 1, 0, 10 * MIN, SMTP_PHASE_DATA, NULL);
    w.stop_at_submit = 3;
    world_run_ok(&w, 0);
    size_t n_log;
    const struct transport_fake_sent *log = transport_fake_log(&w.tr, &n_log);
    /* Nothing new started after the stop. */
    assert_int_equal(n_log, 3);
    /* The stalled one was ended after the grace, not waited for. */
    assert_true(w.clk.now_ms - log[2].submitted_ms <= ENGINE_STOP_GRACE_MS + 1000);
    assert_true(log[2].aborted);
    /* Its dot had gone: unknown, and its recipient held, never sent twice blindly. */
    char *outcome = sql_text(&w, "SELECT outcome FROM attempts WHERE recipient = "
                                 "'g03@gmail.test'");
    assert_string_equal(outcome, "unknown");
    free(outcome);
    char *rstate = sql_text(&w, "SELECT state FROM recipients WHERE address = 'g03@gmail.test'");
    assert_string_equal(rstate, "held");
    free(rstate);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM attempts WHERE outcome = 'in-flight'"), 0);
    world_close(&w);
}

static void test_engine_tarpit_after_dot_holds(void **state)
{
    (void)state;
    struct world w;
    char *list = numbered("g", "gmail.test", 20);
    world_open(&w, list, "ramp: {start: 6/min}\n");
    free(list);
    add_rule(&w, "g02", 1, 0, HOUR, SMTP_PHASE_DATA, NULL);
    world_run_ok(&w, 10 * MIN);
    char *outcome = sql_text(&w, "SELECT outcome FROM attempts WHERE recipient = "
                                 "'g02@gmail.test'");
    assert_string_equal(outcome, "unknown");
    free(outcome);
    char *rstate = sql_text(&w, "SELECT state FROM recipients WHERE address = 'g02@gmail.test'");
    assert_string_equal(rstate, "held");
    free(rstate);
    /* Sent once only. */
    int64_t at[8];
    assert_int_equal(sends(&w, "g02", at, 8), 1);
    world_close(&w);
}

/* ---- restarts ---- */

static void test_engine_restart_holds_what_was_in_flight(void **state)
{
    (void)state;
    struct world w;
    char *list = numbered("g", "gmail.test", 20);
    world_open(&w, list, "ramp: {start: 6/min}\n");
    free(list);
    world_run_ok(&w, MIN);
    /* A run killed with a message in flight leaves its attempt in-flight. */
    struct err e;
    struct store_attempt a = {.started_ms = T0 + MIN,
                              .recipient = "g07@gmail.test",
                              .provider = "gmail",
                              .phase = "data"};
    int64_t id;
    assert_int_equal(store_attempt_begin(w.st, &a, &id, &e), IPW_OK);
    clock_manual_advance(&w.clk, MIN);
    world_run_ok(&w, MIN);
    assert_int_equal(w.sum.recovered, 1);
    char *rstate = sql_text(&w, "SELECT state FROM recipients WHERE address = 'g07@gmail.test'");
    assert_string_equal(rstate, "held");
    free(rstate);
    int64_t at[8];
    assert_int_equal(sends(&w, "g07", at, 8), 0);
    /* The even sequence went on across the restart: no burst, no gap beyond the pause. */
    int64_t g[64];
    size_t n = sends(&w, "g", g, 64);
    assert_true(n >= 10);
    world_close(&w);
}

/* ---- days ---- */

static void test_engine_days_grow_hold_and_step_back(void **state)
{
    (void)state;
    struct world w;
    char *list = numbered("m", "outlook.test", 200);
    world_open(&w, list, "ramp: {start: 6/min, growth: 2, daily_cap: [5]}\n");
    free(list);
    int64_t at[256];
    /* Day 1: five messages 10 s apart (the cap is reached within a minute). */
    world_run_ok(&w, 10 * MIN);
    assert_int_equal(sends(&w, "m", at, 256), 5);
    assert_int_equal(at[4] - at[3], 10000);
    /* Day 2: a clean day 1 earned growth: 12/min, one every 5 s. One deferral in five. */
    w.clk.now_ms = T0 + DAY;
    add_rule(&w, "m", 3, 3, 500, SMTP_PHASE_RCPT, "450 4.7.1 Try again later");
    world_run_ok(&w, HOUR);
    size_t n = sends(&w, "m", at, 256);
    assert_true(n >= 10);
    assert_int_equal(at[6] - at[5], 5000);
    assert_int_equal(sql_int(&w, "SELECT stage FROM providers WHERE name = 'microsoft'"), 1);
    /* Day 3: 20 % deferred on day 2 is over twice the 5 % threshold: one stage back. */
    w.clk.now_ms = T0 + 2 * DAY;
    size_t before = n;
    world_run_ok(&w, 10 * MIN);
    n = sends(&w, "m", at, 256);
    assert_true(n > before + 1);
    assert_int_equal(at[before + 1] - at[before], 10000);
    assert_int_equal(sql_int(&w, "SELECT stage FROM providers WHERE name = 'microsoft'"), 0);
    assert_int_equal(sql_int(&w, "SELECT sending_day FROM providers WHERE name = 'microsoft'"), 3);
    world_close(&w);
}

/* ---- the scenarios of the former real-time run tests ---- */

/* The times of the transactions whose recipient starts with prefix, as gaps between them. */
static size_t gaps_of(const struct world *w, const char *prefix, int64_t *at, int64_t *gap,
                      size_t max)
{
    size_t n = sends(w, prefix, at, max);
    for (size_t i = 1; i < n; i++)
        gap[i - 1] = at[i] - at[i - 1];
    return n;
}

/*
 * Four providers at 30/min each: Microsoft takes 3 and then answers "Server busy", Yahoo takes 2
 * and then defers with [TSS04], the other domain refuses one recipient on RCPT, and one domain
 * has a null MX. Over 14 s gmail keeps exact 2 s gaps while Microsoft is cut to 15/min and
 * paused 15 min, Yahoo is suspended 2 h by the shipped rule, the deferred recipient waits
 * 5 min (retry.first), the refused one is suppressed and the null-MX one set aside unsent.
 */
static void test_engine_providers_throttled_suspended_while_gmail_paces(void **state)
{
    (void)state;
    struct world w;
    char list[2048];
    size_t len = 0;
    for (int i = 1; i <= 12; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "g%02d@gmail.test\n", i);
    for (int i = 1; i <= 8; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "m%02d@outlook.test\n", i);
    for (int i = 1; i <= 6; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "y%02d@yahoo.test\n", i);
    snprintf(list + len, sizeof list - len,
             "o1@example.test\nnobody@example.test\nx@nullmx.test\n");
    world_open(&w, list, "ramp: {start: 30/min, growth: 1.5, max: 600/min}\n");
    struct err e;
    assert_int_equal(dns_zone_add(w.zone, "nullmx.test", DNS_T_MX, 3600, "0 .", &e), IPW_OK);
    add_rule(&w, "m", 4, 0, 500, SMTP_PHASE_MAIL,
             "451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714)");
    add_rule(&w, "y", 3, 0, 500, SMTP_PHASE_MAIL,
             "421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to "
             "unexpected volume or user complaints - 4.16.55.1; see "
             "https://postmaster.yahooinc.com/error-codes");
    add_rule(&w, "nobody", 1, 0, 500, SMTP_PHASE_RCPT,
             "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown");
    world_run_ok(&w, 14000);
    /* run --for 14s: neither cut short nor overrun (nothing was in flight at the end). */
    assert_true(w.clk.now_ms >= T0 + 14000 && w.clk.now_ms < T0 + 15000);

    /* gmail: 30/min is one every 2 s from the start, whatever the others do. */
    int64_t at[64], gap[64];
    size_t n = gaps_of(&w, "g", at, gap, 64);
    assert_int_equal(n, 7);
    assert_int_equal(at[0], T0);
    for (size_t i = 0; i + 1 < n; i++)
        assert_int_equal(gap[i], 2000);
    /* Microsoft: three taken, the fourth refused, then nothing for the rest of the run. */
    assert_int_equal(sends(&w, "m", at, 64), 4);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM attempts WHERE provider = 'microsoft' "
                                 "AND outcome = 'delivered'"),
                     3);
    /* Yahoo: two taken, the [TSS04] deferral, then nothing. */
    assert_int_equal(sends(&w, "y", at, 64), 3);

    /* Microsoft's rate cut x0.5 (30 -> 15/min) and its 15 min pause, with the reason. */
    assert_int_equal(sql_int(&w, "SELECT rate_per_min * 10 FROM providers "
                                 "WHERE name = 'microsoft'"),
                     150);
    assert_int_equal(sql_int(&w, "SELECT paused_until_ms - last_deferral_ms FROM providers "
                                 "WHERE name = 'microsoft'"),
                     15 * MIN);
    char *s = sql_text(&w, "SELECT pause_reason FROM providers WHERE name = 'microsoft'");
    assert_non_null(strstr(s, "4.7.500 Server busy"));
    free(s);
    /* Yahoo suspended 2 h by the shipped rule, once. */
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions WHERE provider = 'yahoo'"), 1);
    assert_int_equal(sql_int(&w, "SELECT expires_ms - started_ms FROM rule_actions "
                                 "WHERE provider = 'yahoo' AND rule = 'yahoo-tss04' "
                                 "AND action = 'suspend'"),
                     2 * HOUR);
    /* The deferral is recorded with its phase, codes, whole text and MX. */
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM attempts WHERE provider = 'yahoo' "
                                 "AND outcome = 'deferred' AND phase = 'mail' AND code = 421 "
                                 "AND enhanced = '4.7.0' AND instr(text, '[TSS04]') > 0 "
                                 "AND mx = 'mta5.am0.yahoodns.net'"),
                     1);
    /* The deferred recipient at Microsoft is pending, one retry counted, due 5 min after. */
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM recipients r JOIN attempts a "
                                 "ON a.recipient = r.address WHERE a.provider = 'microsoft' "
                                 "AND a.outcome = 'deferred' AND r.state = 'pending' "
                                 "AND r.retries = 1 AND r.next_at_ms - a.finished_ms = 300000"),
                     1);
    /* A 550 5.1.1 on RCPT suppresses the recipient for good. */
    s = sql_text(&w, "SELECT state || ' ' || reason FROM recipients "
                     "WHERE address = 'nobody@example.test'");
    assert_true(strncmp(s, "suppressed ", 11) == 0 && strstr(s, "5.1.1"));
    free(s);
    /* A null-MX domain is set aside before any mail, and cached as such. */
    s = sql_text(&w, "SELECT state || ' ' || reason FROM recipients "
                     "WHERE address = 'x@nullmx.test'");
    assert_true(strncmp(s, "skipped ", 8) == 0 && strstr(s, "null MX"));
    free(s);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM attempts WHERE recipient = "
                                 "'x@nullmx.test'"),
                     0);
    s = sql_text(&w, "SELECT status FROM mx_cache WHERE domain = 'nullmx.test'");
    assert_string_equal(s, "null-mx");
    free(s);
    /* The MX answer is cached with its provider and an expiry after the fetch. */
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM mx_cache WHERE domain = 'gmail.test' "
                                 "AND status = 'ok' AND provider = 'gmail' "
                                 "AND json_extract(hosts_json, '$[0].host') = "
                                 "'gmail-smtp-in.l.google.com' AND expires_ms > fetched_ms "
                                 "AND substr(hosts_json, -1) <> char(10)"),
                     1);
    world_close(&w);
}

/*
 * A cron tick (run --once) sends what is due and returns; a tick with nothing due before its
 * end (the provider paused, the retry 5 min away) returns at once, without waiting for it.
 */
static void test_engine_once_sends_what_is_due_then_returns(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "g01@gmail.test\ng02@gmail.test\nm01@outlook.test\n", "ramp: {start: 30/min}\n");
    add_rule(&w, "m", 1, 0, 500, SMTP_PHASE_MAIL, "451 4.7.500 Server busy. (S77714)");
    struct engine_opts o = {.once = true, .stop = &w.stop, .clock = &w.clk.src, .transport = &w.tr};
    struct err e;
    assert_int_equal(engine_run(w.plan, w.st, w.dns, &o, &w.sum, &e), IPW_OK);
    int64_t at[8];
    assert_int_equal(sends(&w, "g", at, 8), 2);
    assert_int_equal(sends(&w, "m", at, 8), 1);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM recipients WHERE provider = 'gmail' "
                                 "AND state = 'done'"),
                     2);
    assert_false(w.sum.all_done);
    /* Nothing is due now: the next tick sends nothing and takes no (fake) time waiting. */
    int64_t before = w.clk.now_ms;
    assert_int_equal(engine_run(w.plan, w.st, w.dns, &o, &w.sum, &e), IPW_OK);
    size_t n_log;
    transport_fake_log(&w.tr, &n_log);
    assert_int_equal(n_log, 3);
    assert_true(w.clk.now_ms - before < 5 * MIN);
    world_close(&w);
}

/* A complaint about a03's first message, recorded as `ipwarm feedback poll` (or the run's own
 * poll) records it, at the first submission of a01's second cycle. */
static void complain_about_a03(struct world *w, const struct smtp_job *job)
{
    if (strcmp(job->rcpt, "a01@gmail.test") != 0 || w->submitted != 5)
        return;
    struct store_report rep = {
        .read_ms = w->clk.now_ms,
        .mailbox = "imap://fbl.example.test/INBOX",
        .digest = "<complaint-a03@fbl.example.test>",
        .kind = "complaint",
        .format = "arf",
        .matched_by = "message-id",
        .attempt_id = sql_int(w, "SELECT min(id) FROM attempts WHERE recipient = "
                                 "'a03@gmail.test' AND outcome = 'delivered'"),
        .recipient = "a03@gmail.test",
        .feedback_type = "abuse",
    };
    int added = 0;
    struct err e;
    assert_int_equal(store_report_add(w->st, &rep, &added, &e), IPW_OK);
    assert_int_equal(added, 1);
    free((char *)rep.provider);
}

/*
 * In `cycle` mode a recipient whose complaint arrives while its next copy waits in the run's
 * queue gets no more mail: 60/min over a01..a04 (each accepted after 1 s), the complaint about
 * a03 is recorded at the fifth submission (a01's second cycle, with a02 and a03 queued); a03 is
 * never sent again while the others go on cycling.
 */
static void test_engine_cycle_complaint_drops_queued_copy(void **state)
{
    (void)state;
    struct world w;
    world_mode = "cycle";
    world_open(&w, "a01@gmail.test\na02@gmail.test\na03@gmail.test\na04@gmail.test\n",
               "ramp: {start: 60/min}\n");
    world_mode = NULL;
    w.on_submit = complain_about_a03;
    world_run_ok(&w, 20000);
    int64_t at[32];
    assert_int_equal(sends(&w, "a03", at, 32), 1);
    assert_true(sends(&w, "a01", at, 32) >= 4);
    assert_true(sends(&w, "a02", at, 32) >= 4);
    assert_true(sends(&w, "a04", at, 32) >= 4);
    char *state_a03 = sql_text(&w, "SELECT state FROM recipients WHERE address = 'a03@gmail.test'");
    assert_string_equal(state_a03, "suppressed");
    free(state_a03);
    world_close(&w);
}

/*
 * No burst after a pause: at 20/min (3 s apart) the fourth message is deferred; the provider
 * pauses 8 s (backoff.deferral.pause) from the reply, then sends one message and keeps the cut
 * pace (x0.5: 10/min, 6 s apart) instead of catching up on the slots it missed. A regression
 * test for a stale clock in the pacing frame, first seen in real time.
 */
static void test_engine_no_burst_after_pause(void **state)
{
    (void)state;
    struct world w;
    char *list = numbered("m", "outlook.test", 20);
    world_open(&w, list,
               "ramp: {start: 20/min, max: 600/min}\n"
               "backoff: {deferral: {pause: 8s, recover_after: 30m}}\n");
    free(list);
    add_rule(&w, "m", 4, 4, 500, SMTP_PHASE_MAIL,
             "451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714)");
    world_run_ok(&w, MIN);
    int64_t at[64], gap[64];
    size_t n = gaps_of(&w, "m", at, gap, 64);
    assert_true(n >= 7);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(gap[i], 3000);
    /* The pause runs from the deferral's reply, 500 ms after the fourth was submitted. */
    assert_int_equal(gap[3], 500 + 8000);
    /* At the pause's end the provider is behind its cut sequence (at[3] + 6 s) by less than one
     * interval, so it continues that sequence (docs/engine.md): the fifth goes at once, the
     * sixth at at[3] + 2 x 6 s, and every later one 6 s apart. No two messages ever come
     * closer than half the planned 3 s. */
    assert_int_equal(at[5], at[3] + 2 * 6000);
    for (size_t i = 5; i + 1 < n; i++)
        assert_int_equal(gap[i], 6000);
    for (size_t i = 0; i + 1 < n; i++)
        assert_true(gap[i] >= 1500);
    world_close(&w);
}

/* ---- IP pools: each IP a lane of its own ---- */

#define POOL2 "source: {ips: [192.0.2.10, 192.0.2.11], helo: mx1.example.com}\n"
#define POOL3 "source: {ips: [192.0.2.10, 192.0.2.11, 192.0.2.12], helo: mx1.example.com}\n"

/* What the providers answer in a pool replay: per source IP, the nth message (counted per IP,
 * from 1) from..to gets reply; everyone else is accepted after a second. */
struct pool_script {
    const char *ip[3];
    int from[3], to[3];
    const char *reply[3];
    enum smtp_phase phase;
    int seen[3];
};

static void pool_script(const struct smtp_job *job, int64_t now, struct transport_fake_reply *out,
                        void *ctx)
{
    struct pool_script *ps = ctx;
    (void)now;
    out->delay_ms = 1000;
    out->phase = SMTP_PHASE_DATA;
    out->reply = "250 2.0.0 OK queued";
    out->delivered = true;
    out->dot_sent = true;
    for (int i = 0; i < 3; i++) {
        if (!ps->ip[i] || !job->source_ip || strcmp(ps->ip[i], job->source_ip) != 0)
            continue;
        ps->seen[i]++;
        if (ps->reply[i] && ps->seen[i] >= ps->from[i] &&
            (!ps->to[i] || ps->seen[i] <= ps->to[i])) {
            memset(out, 0, sizeof *out);
            out->delay_ms = 500;
            out->phase = ps->phase;
            out->reply = ps->reply[i];
        }
    }
}

/* Opens a world whose plan has the source line source, answered by ps. */
static void pool_open(struct world *w, const char *source, const char *recipients,
                      const char *extra, struct pool_script *ps)
{
    world_source = source;
    world_open(w, recipients, extra);
    world_source = NULL;
    transport_free(&w->tr);
    struct err e;
    assert_int_equal(transport_fake_new(&w->clk, pool_script, ps, &w->tr, &e), IPW_OK);
}

/* When the transactions from source IP ip were submitted, in order. */
static size_t sends_from(const struct world *w, const char *ip, int64_t *at, size_t max)
{
    size_t n_log, k = 0;
    const struct transport_fake_sent *log = transport_fake_log(&w->tr, &n_log);
    for (size_t i = 0; i < n_log && k < max; i++)
        if (log[i].source_ip && strcmp(log[i].source_ip, ip) == 0)
            at[k++] = log[i].submitted_ms;
    return k;
}

/* A pool of three: the IP Microsoft defers backs off alone; the other two keep their pace. */
static void test_engine_pool_one_ip_backs_off(void **state)
{
    (void)state;
    struct world w;
    struct pool_script ps = {.ip = {"192.0.2.11"},
                             .from = {2},
                             .to = {2},
                             .reply = {"451 4.7.500 Server busy. Please try again later from "
                                       "[192.0.2.11]. (S77714)"},
                             .phase = SMTP_PHASE_MAIL};
    char *list = numbered("m", "outlook.test", 200);
    pool_open(&w, POOL3, list, "ramp: {start: 6/min}\n", &ps);
    free(list);
    world_run_ok(&w, 10 * MIN);
    int64_t a[128], b[128], c[128];
    size_t na = sends_from(&w, "192.0.2.10", a, 128), nb = sends_from(&w, "192.0.2.11", b, 128),
           nc = sends_from(&w, "192.0.2.12", c, 128);
    /* Each IP on its own at 6/min: one every 10 s for ten minutes. */
    assert_int_equal(na, 60);
    assert_int_equal(nc, 60);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i], T0 + (int64_t)i * 10000);
        assert_int_equal(c[i], T0 + (int64_t)i * 10000);
    }
    /* The deferred IP: two messages, then its 15 min pause outlasts the run. */
    assert_int_equal(nb, 2);
    assert_int_equal(b[1], T0 + 10000);
    /* A lane per IP in the store: only .11 is paused, and only .11's rate was cut. */
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM providers WHERE name = 'microsoft'"), 3);
    assert_int_equal(sql_int(&w, "SELECT paused_until_ms FROM providers WHERE name = "
                                 "'microsoft' AND ip = '192.0.2.11'"),
                     T0 + 10000 + 500 + 15 * MIN);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM providers WHERE name = 'microsoft' "
                                 "AND ip <> '192.0.2.11' AND paused_until_ms IS NULL "
                                 "AND rate_per_min = 6 AND sent_today = 60"),
                     2);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions"), 0);
    /* Every message to the deferred IP's recipient went out from a pool IP, none twice. */
    assert_int_equal(sql_int(&w, "SELECT count(DISTINCT source_ip) FROM attempts"), 3);
    world_close(&w);
}

/* The same kind of throttling from every IP within the hour: the provider's trouble, acted on
 * for the whole pool and recorded so. */
static void test_engine_pool_every_ip_throttled(void **state)
{
    (void)state;
    struct world w;
    struct pool_script ps = {
        .ip = {"192.0.2.10", "192.0.2.11", "192.0.2.12"},
        .from = {2, 3, 4},
        .to = {2, 3, 4},
        .reply = {"451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714)",
                  "421 4.7.0 Too many messages from [192.0.2.11]",
                  "451 4.7.500 Server busy. Please try again later from [192.0.2.12]. (S77714)"},
        .phase = SMTP_PHASE_MAIL};
    char *list = numbered("m", "outlook.test", 200);
    pool_open(&w, POOL3, list, "ramp: {start: 6/min}\n", &ps);
    free(list);
    world_run_ok(&w, 10 * MIN);
    /* One action on the provider (no IP), from the third IP's reply, until its pause ends. */
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions"), 1);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions WHERE provider = 'microsoft' "
                                 "AND ip = '' AND rule = 'pool-throttled' AND action = 'suspend'"),
                     1);
    int64_t third = T0 + 30000; /* .12's fourth message */
    assert_int_equal(sql_int(&w, "SELECT started_ms FROM rule_actions"), third + 500);
    assert_int_equal(sql_int(&w, "SELECT expires_ms FROM rule_actions"), third + 500 + 15 * MIN);
    char *reason = sql_text(&w, "SELECT reason FROM rule_actions");
    assert_non_null(strstr(reason, "every IP of the pool (3) was throttled within the hour "
                                   "(code:4.7)"));
    assert_non_null(strstr(reason, "from [192.0.2.12]"));
    free(reason);
    /* Nothing from any IP after it. */
    size_t n_log;
    const struct transport_fake_sent *log = transport_fake_log(&w.tr, &n_log);
    for (size_t i = 0; i < n_log; i++)
        assert_true(log[i].submitted_ms <= third + 500);
    world_close(&w);
}

/* A reply rule that fires on one IP suspends that IP; on every IP within the hour, the provider. */
static void test_engine_pool_rule_on_every_ip(void **state)
{
    (void)state;
    struct world w;
    const char *tss = "421 4.7.0 [TSS04] Messages from 192.0.2.1x temporarily deferred due to "
                      "unexpected volume or user complaints";
    struct pool_script ps = {.ip = {"192.0.2.10", "192.0.2.11"},
                             .from = {1, 5},
                             .to = {1, 5},
                             .reply = {tss, tss},
                             .phase = SMTP_PHASE_MAIL};
    char *list = numbered("y", "yahoo.test", 200);
    pool_open(&w, POOL2, list, "ramp: {start: 6/min}\n", &ps);
    free(list);
    world_run_ok(&w, 30 * MIN);
    /* .10 suspended alone at its first message: .11 went on until its fifth. */
    int64_t a[64], b[64];
    assert_int_equal(sends_from(&w, "192.0.2.10", a, 64), 1);
    assert_int_equal(sends_from(&w, "192.0.2.11", b, 64), 5);
    assert_int_equal(b[4], T0 + 40000);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions WHERE rule = 'yahoo-tss04' "
                                 "AND ip = '192.0.2.10'"),
                     1);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions WHERE rule = 'yahoo-tss04' "
                                 "AND ip = '192.0.2.11'"),
                     1);
    /* Both within the hour: the rule acts on the provider, for the rule's 2 h. */
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions WHERE rule = 'yahoo-tss04' "
                                 "AND ip = '' AND action = 'suspend' AND reason LIKE "
                                 "'every IP of the pool (2) was throttled within the hour "
                                 "(rule:yahoo-tss04)%'"),
                     1);
    /* Once: the rule speaks for the reply, not the backoff's throttling as well. */
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions WHERE ip = ''"), 1);
    assert_int_equal(sql_int(&w, "SELECT expires_ms - started_ms FROM rule_actions WHERE ip = ''"),
                     2 * HOUR - 0);
    world_close(&w);
}

/* An IP named in source.start sends nothing before its date, then joins at the first stage
 * while the other goes on growing. */
static void test_engine_pool_ip_starts_later(void **state)
{
    (void)state;
    struct world w;
    struct pool_script ps = {0};
    char *list = numbered("g", "gmail.test", 400);
    pool_open(&w,
              "source:\n"
              "  ips: [192.0.2.10, 192.0.2.11]\n"
              "  start: {192.0.2.11: 2026-12-02}\n"
              "  helo: mx1.example.com\n",
              list, "ramp: {start: 6/min, growth: 2, daily_cap: [10, 20]}\n", &ps);
    free(list);
    /* Day 1 (2026-12-01): only .10, up to its cap (within two minutes). */
    world_run_ok(&w, 10 * MIN);
    int64_t a[128], b[128];
    assert_int_equal(sends_from(&w, "192.0.2.10", a, 128), 10);
    assert_int_equal(sends_from(&w, "192.0.2.11", b, 128), 0);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM providers WHERE ip = '192.0.2.11'"), 0);
    /* Day 2: .10 earned its growth (stage 1, 12/min, cap 20); .11 begins at stage 0, 6/min,
     * on its first sending day (cap 10). */
    w.clk.now_ms = T0 + DAY;
    world_run_ok(&w, 10 * MIN);
    size_t na = sends_from(&w, "192.0.2.10", a, 128), nb = sends_from(&w, "192.0.2.11", b, 128);
    assert_int_equal(na, 30);
    assert_int_equal(nb, 10);
    assert_int_equal(b[0], T0 + DAY);
    assert_int_equal(b[1] - b[0], 10000);
    assert_int_equal(a[11] - a[10], 5000);
    assert_int_equal(sql_int(&w, "SELECT stage * 100 + sending_day FROM providers "
                                 "WHERE name = 'gmail' AND ip = '192.0.2.10'"),
                     102);
    assert_int_equal(sql_int(&w, "SELECT stage * 100 + sending_day FROM providers "
                                 "WHERE name = 'gmail' AND ip = '192.0.2.11'"),
                     1);
    world_close(&w);
}

/*
 * A state file written at schema version 4 (the schema before pools, made by the migrations of
 * that version): Microsoft mid-ramp at stage 3 on its fourth sending day, today, 7 messages
 * sent; Yahoo suspended by a rule for another hour. Opened by this version, it migrates and the
 * warm-up goes on where it was.
 */
static void v4_fixture(struct world *w)
{
    char db[128];
    snprintf(db, sizeof db, "%s/state.db", w->dir);
    store_close(w->st);
    unlink(db);
    struct err e;
    struct store *st = NULL;
    assert_int_equal(store_open_at_version(db, 4, &st, &e), IPW_OK);
    char sql[2048];
    snprintf(sql, sizeof sql,
             "INSERT INTO providers (name, stage, sending_day, sending_day_date, rate_per_min, "
             "sent_today, sent_today_date, updated_ms, pace_anchor_ms, pace_n, pace_rate) VALUES "
             "('microsoft', 3, 4, '2026-12-01', 48, 7, '2026-12-01', %lld, %lld, 7, 48);"
             "INSERT INTO rule_actions (provider, rule, action, reason, started_ms, expires_ms, "
             "manual) VALUES ('yahoo', 'yahoo-tss04', 'suspend', '421 4.7.0 [TSS04] ...', %lld, "
             "%lld, 0);",
             (long long)(T0 - MIN), (long long)(T0 - 7 * 1250), (long long)(T0 - HOUR),
             (long long)(T0 + HOUR));
    assert_int_equal(sqlite3_exec(store_db(st), sql, NULL, NULL, NULL), SQLITE_OK);
    store_close(st);
    assert_int_equal(store_open(db, &w->st, &e), IPW_OK);
    assert_int_equal(store_version(w->st), store_schema_version());
}

/* The recipients of the v4 replays: 60 at Microsoft, then 10 at Yahoo. */
static void v4_recipients(char *list, size_t cap)
{
    char *m = numbered("m", "outlook.test", 60), *y = numbered("y", "yahoo.test", 10);
    snprintf(list, cap, "%s%s", m, y);
    free(m);
    free(y);
}

static void test_engine_v4_state_goes_on(void **state)
{
    (void)state;
    struct world w;
    char list[8192];
    v4_recipients(list, sizeof list);
    world_open(&w, list, "ramp: {start: 6/min, growth: 2}\n");
    v4_fixture(&w);
    world_run_ok(&w, 20 * MIN);
    /* Stage 3 (48/min: one every 1.25 s), the same sending day, the sequence continued. */
    int64_t m[128], y[16];
    size_t n = sends(&w, "m", m, 128);
    assert_int_equal(n, 60);
    assert_int_equal(m[0], T0);
    assert_int_equal(m[1] - m[0], 1250);
    assert_int_equal(sql_int(&w, "SELECT stage * 100 + sending_day FROM providers "
                                 "WHERE name = 'microsoft' AND ip = ''"),
                     304);
    assert_int_equal(sql_int(&w, "SELECT sent_today FROM providers WHERE name = 'microsoft'"), 67);
    /* Yahoo's suspension still holds: nothing before T0 + 1 h. */
    assert_int_equal(sends(&w, "y", y, 16), 0);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM providers"), 1);
    world_close(&w);
}

/* The same state under a pool: the first IP adopts the provider's row, the second starts at
 * the first stage, and the provider's suspension holds both. */
static void test_engine_v4_state_goes_on_in_a_pool(void **state)
{
    (void)state;
    struct world w;
    struct pool_script ps = {0};
    char list[8192];
    v4_recipients(list, sizeof list);
    pool_open(&w, POOL2, list, "ramp: {start: 6/min, growth: 2}\n", &ps);
    v4_fixture(&w);
    world_run_ok(&w, 2 * MIN);
    int64_t x[128];
    size_t n10 = sends_from(&w, "192.0.2.10", x, 128);
    assert_int_equal(x[1] - x[0], 1250);
    size_t n11 = sends_from(&w, "192.0.2.11", x, 128);
    assert_int_equal(x[1] - x[0], 10000);
    assert_int_equal(n10 + n11, 60);
    assert_int_equal(sql_int(&w, "SELECT stage * 100 + sending_day FROM providers "
                                 "WHERE name = 'microsoft' AND ip = '192.0.2.10'"),
                     304);
    assert_int_equal(sql_int(&w, "SELECT stage * 100 + sending_day FROM providers "
                                 "WHERE name = 'microsoft' AND ip = '192.0.2.11'"),
                     1);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM attempts WHERE recipient LIKE 'y%'"), 0);
    world_close(&w);
}

/* Cron ticks: the first IP's throttling seen by one run still counts in the next, whose reply
 * to the second IP makes it every IP of the pool within the hour. */
static void test_engine_pool_across_runs(void **state)
{
    (void)state;
    struct world w;
    struct pool_script ps = {
        .ip = {"192.0.2.10", "192.0.2.11"},
        .from = {1, 8},
        .to = {1, 8},
        .reply = {"451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714)",
                  "451 4.7.500 Server busy. Please try again later from [192.0.2.11]. (S77714)"},
        .phase = SMTP_PHASE_MAIL};
    char *list = numbered("m", "outlook.test", 200);
    pool_open(&w, POOL2, list, "ramp: {start: 6/min}\n", &ps);
    free(list);
    world_run_ok(&w, MIN);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions"), 0);
    int64_t second = w.clk.now_ms;
    world_run_ok(&w, MIN);
    assert_int_equal(sql_int(&w, "SELECT count(*) FROM rule_actions WHERE ip = '' AND rule = "
                                 "'pool-throttled'"),
                     1);
    assert_true(sql_int(&w, "SELECT started_ms FROM rule_actions") >= second);
    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_paces_evenly),
        cmocka_unit_test(test_engine_interleaves_providers),
        cmocka_unit_test(test_engine_deferral_halves_and_pauses),
        cmocka_unit_test(test_engine_mailbox_full_retries_without_throttling),
        cmocka_unit_test(test_engine_rule_suspends),
        cmocka_unit_test(test_engine_stop_with_message_in_flight),
        cmocka_unit_test(test_engine_tarpit_after_dot_holds),
        cmocka_unit_test(test_engine_restart_holds_what_was_in_flight),
        cmocka_unit_test(test_engine_days_grow_hold_and_step_back),
        cmocka_unit_test(test_engine_providers_throttled_suspended_while_gmail_paces),
        cmocka_unit_test(test_engine_once_sends_what_is_due_then_returns),
        cmocka_unit_test(test_engine_cycle_complaint_drops_queued_copy),
        cmocka_unit_test(test_engine_no_burst_after_pause),
        cmocka_unit_test(test_engine_pool_one_ip_backs_off),
        cmocka_unit_test(test_engine_pool_every_ip_throttled),
        cmocka_unit_test(test_engine_pool_rule_on_every_ip),
        cmocka_unit_test(test_engine_pool_ip_starts_later),
        cmocka_unit_test(test_engine_v4_state_goes_on),
        cmocka_unit_test(test_engine_v4_state_goes_on_in_a_pool),
        cmocka_unit_test(test_engine_pool_across_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
