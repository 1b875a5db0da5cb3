/*
 * test_plan: the plan loader (plan*.c, plan_yaml.c).
 *
 * Good plans (config/ and tests/plans/good/) must load into exactly the values they say; every
 * bad plan in tests/plans/bad/ must be refused at the FILE:LINE:COLUMN and key its first line
 * names; and inline cases pin the exact sentences users read: suggestions, several problems at
 * once, hostile YAML (aliases, nesting, size) refused rather than expanded.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipwarm/plan.h"

#define SRC  IPWARM_SOURCE_DIR
#define GOOD SRC "/tests/plans/good"

/* The required keys, one line each; text after BASE starts at line 6. */
#define L_CAMPAIGN   "campaign: t\n"
#define L_SOURCE     "source: {ip: 192.0.2.1, helo: mx.example.com}\n"
#define L_SENDER     "sender: {from: news@example.com}\n"
#define L_MESSAGE    "message: {subject: Hi, text_file: ../message.txt}\n"
#define L_RECIPIENTS "recipients: {file: ../seeds.csv}\n"
#define BASE         L_CAMPAIGN L_SOURCE L_SENDER L_MESSAGE L_RECIPIENTS

static ipw_status load_text(const char *yaml, struct plan **p, struct err *e)
{
    return plan_load_text(yaml, strlen(yaml), "t.yaml", GOOD, p, e);
}

/* Loads yaml and expects a refusal whose message contains want. */
static void refused_text(const char *yaml, const char *want)
{
    struct plan *p = (struct plan *)1;
    struct err e;
    ipw_status st = load_text(yaml, &p, &e);
    if (st != IPW_ECONFIG)
        fail_msg("status %d, expected IPW_ECONFIG, for:\n%s\n%s", st, yaml, e.msg);
    assert_null(p);
    if (!strstr(e.msg, want))
        fail_msg("message lacks '%s':\n%s", want, e.msg);
}

/* Loads BASE + extra and expects a refusal whose message contains want. */
static void refused_with(const char *extra, const char *want)
{
    char yaml[8192];
    snprintf(yaml, sizeof yaml, "%s%s", BASE, extra);
    refused_text(yaml, want);
}

static struct plan *loaded(const char *path)
{
    struct plan *p = NULL;
    struct err e;
    ipw_status st = plan_load(path, &p, &e);
    if (st != IPW_OK)
        fail_msg("%s refused: %s", path, e.msg);
    assert_non_null(p);
    return p;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

static const struct plan_rule *rule_named(const struct plan *p, const char *name)
{
    for (size_t i = 0; i < p->n_rules; i++)
        if (p->rules[i].name && strcmp(p->rules[i].name, name) == 0)
            return &p->rules[i];
    return NULL;
}

static void test_example_plan(void **state)
{
    (void)state;
    struct plan *p = loaded(SRC "/config/example.yaml");
    assert_string_equal(p->campaign, "mx1-new-ip");
    assert_string_equal(p->timezone, "UTC");
    assert_true(ends_with(p->state, "/config/ipwarm.db"));
    assert_int_equal(p->n_source_ips, 1);
    assert_string_equal(p->source_ips[0], "192.0.2.10");
    assert_string_equal(p->from_name, "Example");
    assert_string_equal(p->from_addr, "news@example.com");
    assert_string_equal(p->return_path, "bounces@example.com");
    assert_false(p->dkim);
    assert_int_equal(p->tls_min, PLAN_TLS_1_2);
    assert_true(ends_with(p->text_file, "/config/message.txt"));
    assert_int_equal(p->schedule.days, 0x1f);
    assert_int_equal(p->schedule.n_windows, 1);
    assert_int_equal(p->schedule.windows[0].start_min, 9 * 60);
    assert_int_equal(p->schedule.windows[0].end_min, 18 * 60);
    assert_true(p->ramp.start_per_min == 5.0);
    assert_true(p->ramp.growth == 1.5);
    assert_true(p->ramp.max_per_min == 600.0);
    assert_int_equal(p->ramp.n_daily_cap, 4);
    assert_int_equal(p->ramp.daily_cap[3], 5000);

    /* plan providers first, then the rest of the shipped table in its order */
    static const char *const order[] = {"microsoft365", "other", "gmail",  "microsoft",
                                        "yahoo",        "apple", "comcast"};
    assert_int_equal(p->n_providers, 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(p->providers[i].name, order[i]);
    assert_int_equal(p->default_provider, 1);
    assert_true(p->providers[1].is_default);
    const struct plan_provider *m365 = &p->providers[0];
    assert_true(m365->from_plan);
    assert_int_equal(m365->n_mx, 2); /* taken from the shipped entry */
    assert_string_equal(m365->mx[0], ".mail.protection.outlook.com");
    assert_int_equal(m365->ramp.n_daily_cap, 3);
    assert_int_equal(m365->ramp.daily_cap[2], 6000);
    assert_true(m365->ramp.start_per_min == 5.0);
    assert_int_equal(m365->ramp.set, PLAN_RAMP_DAILY_CAP);
    assert_false(p->providers[2].from_plan);
    assert_int_equal(p->providers[2].ramp.n_daily_cap, 4);

    /* 11 shipped rules, then the plan's one (for every provider) */
    assert_int_equal(p->n_rules, 12);
    assert_false(p->rules[0].from_plan);
    assert_string_equal(p->rules[0].pos.file, "providers.yaml (shipped)");
    const struct plan_rule *r = &p->rules[11];
    assert_true(r->from_plan);
    assert_string_equal(r->name, "too-many-connections");
    assert_int_equal(r->n_providers, 0);
    assert_int_equal(r->action, PLAN_ACTION_THROTTLE);
    assert_true(r->rate_per_min == 2.0);
    assert_int_equal(r->for_ms, 30 * 60 * 1000);
    assert_int_equal(r->trigger_count, 2);
    assert_int_equal(r->trigger_period_ms, 3600 * 1000);
    assert_int_equal(regexec(&r->re, "421 Too many concurrent SMTP connections", 0, NULL, 0), 0);

    /* the shipped Yahoo rule matches a real TSS04 reply, and only that */
    r = rule_named(p, "yahoo-tss04");
    assert_non_null(r);
    assert_int_equal(r->action, PLAN_ACTION_SUSPEND);
    assert_int_equal(r->for_ms, 2 * 3600 * 1000);
    assert_int_equal(r->trigger_count, 1);
    assert_int_equal(r->trigger_period_ms, 0);
    assert_int_equal(r->n_providers, 1);
    assert_string_equal(r->providers[0], "yahoo");
    const char *reply = "421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to "
                        "unexpected volume or user complaints - 4.16.55.1; see "
                        "https://postmaster.yahooinc.com/error-codes";
    assert_int_equal(regexec(&r->re, reply, 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&r->re, "421 4.7.0 [TS01] Messages deferred", 0, NULL, 0), 0);
    assert_int_equal(regexec(&rule_named(p, "yahoo-ts0x")->re, "421 4.7.0 [ts01] x", 0, NULL, 0),
                     0); /* case-insensitive */

    assert_int_equal(p->preflight_require, PLAN_CHECK_SPF | PLAN_CHECK_PTR | PLAN_CHECK_HELO |
                                               PLAN_CHECK_MX | PLAN_CHECK_DNSBL);
    assert_int_equal(p->n_dnsbl_zones, 3);
    assert_int_equal(p->n_dns_servers, 0);
    assert_string_equal(p->providers_source, "shipped");
    plan_free(p);
}

/* The other shipped examples are written elsewhere; they must load whenever they exist. */
static void test_config_examples(void **state)
{
    (void)state;
    static const char *const files[] = {SRC "/config/direct.yaml", SRC "/config/relay.yaml"};
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f)
            continue;
        fclose(f);
        struct plan *p = loaded(files[i]);
        assert_true(p->n_providers > 0);
        assert_true(p->providers[p->default_provider].is_default);
        plan_free(p);
    }
}

static void test_full_plan(void **state)
{
    (void)state;
    struct plan *p = loaded(GOOD "/full.yaml");
    assert_string_equal(p->name, GOOD "/full.yaml");
    assert_string_equal(p->campaign, "full-test");
    assert_string_equal(p->timezone, "Asia/Tokyo");
    assert_true(ends_with(p->state, "/tests/plans/good/state/full.db"));
    assert_string_equal(p->helo, "mx1.example.com"); /* lower-cased */
    assert_string_equal(p->from, "\"Example, Inc.\" <news@example.com>");
    assert_string_equal(p->from_name, "Example, Inc.");
    assert_string_equal(p->from_addr, "news@example.com");
    assert_string_equal(p->return_path, "bounces@example.com");
    assert_true(p->dkim);
    assert_string_equal(p->dkim_domain, "example.com");
    assert_string_equal(p->dkim_selector, "s2026");
    assert_true(ends_with(p->dkim_key_file, "/tests/plans/keys/dkim.pem"));
    assert_null(strstr(p->dkim_key_file, "/../"));

    assert_int_equal(p->mode, PLAN_DIRECT);
    assert_int_equal(p->port, 2525);
    assert_int_equal(p->tls, PLAN_TLS_REQUIRED);
    assert_int_equal(p->tls_min, PLAN_TLS_1_3);
    assert_string_equal(p->relay_url, "smtps://[2001:db8::25]:465/");
    assert_int_equal(p->connect_timeout_ms, 20000);
    assert_int_equal(p->command_timeout_ms, 120000);
    assert_int_equal(p->connections_per_provider, 3);

    assert_string_equal(p->subject, "Hello {{first_name}}\tfrom {{campaign}}");
    assert_true(ends_with(p->text_file, "/tests/plans/message.txt"));
    assert_true(ends_with(p->html_file, "/tests/plans/message.html"));
    assert_string_equal(p->list_unsubscribe, "https://example.com/u/{{token}}");
    assert_string_equal(p->list_unsubscribe_mailto, "unsubscribe@example.com");
    assert_true(ends_with(p->recipients_file, "/tests/plans/seeds.csv"));
    assert_int_equal(p->recipients_mode, PLAN_RCPT_CYCLE);
    assert_string_equal(p->recipients_column, "email");

    assert_int_equal(p->schedule.days, 1u << 0 | 1u << 1 | 1u << 2 | 1u << 4 | 1u << 6);
    assert_int_equal(p->schedule.n_windows, 3);
    assert_int_equal(p->schedule.windows[0].start_min, 540);
    assert_int_equal(p->schedule.windows[0].end_min, 720);
    assert_int_equal(p->schedule.windows[1].start_min, 810);
    assert_int_equal(p->schedule.windows[1].end_min, 1440);
    assert_int_equal(p->schedule.windows[2].start_min, 1320); /* across midnight */
    assert_int_equal(p->schedule.windows[2].end_min, 120);

    assert_true(p->ramp.start_per_min == 5.0); /* 300/h */
    assert_true(p->ramp.growth == 2.0);
    assert_true(p->ramp.max_per_min == 1200.0);
    assert_int_equal(p->ramp.n_daily_cap, 4);
    assert_true(p->ramp.deferral_below_pct == 4.0);
    assert_true(p->ramp.bounce_below_pct == 1.5);

    static const char *const order[] = {"microsoft365", "example-hosting", "gmail",
                                        "fallback",     "microsoft",       "yahoo",
                                        "apple",        "comcast",         "other"};
    assert_int_equal(p->n_providers, 9);
    for (size_t i = 0; i < 9; i++)
        assert_string_equal(p->providers[i].name, order[i]);
    assert_int_equal(p->default_provider, 3);
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(p->providers[i].is_default, i == 3); /* shipped "other" is not */
    assert_int_equal(plan_provider_find(p, "fallback"), 3);
    assert_int_equal(plan_provider_find(p, "nobody"), -1);

    const struct plan_provider *m365 = &p->providers[0];
    assert_true(m365->ramp.start_per_min == 2.0);
    assert_true(m365->ramp.growth == 2.0);
    assert_true(m365->ramp.max_per_min == 1200.0);
    assert_int_equal(m365->ramp.n_daily_cap, 3);
    assert_int_equal(m365->ramp.daily_cap[0], 1500);
    assert_int_equal(m365->ramp.set, PLAN_RAMP_START | PLAN_RAMP_DAILY_CAP);
    assert_int_equal(m365->pos.line, 52);
    assert_int_equal(m365->pos.column, 5);
    assert_string_equal(m365->pos.file, p->name);

    const struct plan_provider *eh = &p->providers[1];
    assert_int_equal(eh->n_mx, 2);
    assert_string_equal(eh->mx[0], ".mx.example-hosting.net"); /* dot added, lower-cased */
    assert_string_equal(eh->mx[1], ".mail.example-hosting.net");
    assert_int_equal(eh->n_domains, 1);
    assert_string_equal(eh->domains[0], "example-hosting.net");
    assert_true(eh->ramp.max_per_min == 60.0);
    assert_true(eh->ramp.growth == 1.25);
    assert_true(eh->ramp.start_per_min == 5.0);
    assert_int_equal(eh->ramp.n_daily_cap, 4);

    const struct plan_provider *gm = &p->providers[2];
    assert_int_equal(gm->n_mx, 2); /* the shipped MX suffixes, the plan's domains */
    assert_string_equal(gm->mx[0], ".google.com");
    assert_int_equal(gm->n_domains, 1);
    assert_string_equal(gm->domains[0], "gmail.com");
    assert_string_equal(p->providers[4].pos.file, p->providers_name);
    assert_string_equal(p->providers_name, "providers.yaml (shipped)");

    assert_true(p->backoff.factor == 0.25);
    assert_int_equal(p->backoff.pause_ms, 10 * 60000);
    assert_int_equal(p->backoff.pause_max_ms, 2 * 3600000);
    assert_int_equal(p->backoff.recover_after_ms, 45 * 60000);
    assert_true(p->backoff.recover_step_pct == 10.0);
    assert_int_equal(p->backoff.retry_first_ms, 2 * 60000);
    assert_int_equal(p->backoff.retry_max_ms, 3600000);
    assert_int_equal(p->backoff.retry_give_up_ms, INT64_C(2) * 86400000);

    assert_int_equal(p->n_rules, 14);
    const struct plan_rule *r = &p->rules[11];
    assert_string_equal(r->name, "tss04");
    assert_int_equal(r->pos.line, 67);
    r = &p->rules[12];
    assert_null(r->name);
    assert_int_equal(r->n_providers, 2);
    assert_string_equal(r->providers[1], "example-hosting");
    assert_int_equal(r->action, PLAN_ACTION_THROTTLE);
    assert_true(r->rate_per_min == 2.0);
    assert_int_equal(r->for_ms, 30 * 60000);
    assert_int_equal(r->trigger_count, 3);
    assert_int_equal(r->trigger_period_ms, 3600000);
    assert_int_equal(regexec(&r->re, "421 Too Many Connections from your IP", 0, NULL, 0), 0);
    r = &p->rules[13];
    assert_int_equal(r->action, PLAN_ACTION_BOUNCE);
    assert_int_equal(r->n_providers, 0);
    assert_int_equal(r->for_ms, 3600000);
    assert_int_equal(r->trigger_count, 1);

    assert_int_equal(p->preflight_require, 0x7ff & ~PLAN_CHECK_AUTH);
    assert_string_equal(plan_check_name(PLAN_CHECK_DMARC), "dmarc");
    assert_null(plan_check_name(3));
    assert_int_equal(p->n_dnsbl_zones, 2);
    assert_int_equal(p->n_dns_servers, 4);
    assert_string_equal(p->dns_servers[0].host, "127.0.0.1");
    assert_int_equal(p->dns_servers[0].port, 5353);
    assert_int_equal(p->dns_servers[1].port, 53);
    assert_string_equal(p->dns_servers[2].host, "::1");
    assert_int_equal(p->dns_servers[2].port, 5300);
    assert_string_equal(p->dns_servers[3].host, "2001:db8::53");
    assert_int_equal(p->dns_servers[3].port, 53);
    assert_int_equal(p->dns_timeout_ms, 2000);
    plan_free(p);
}

#define L_POOL                                                                                     \
    "campaign: t\n"                                                                                \
    "source:\n"                                                                                    \
    "  ips: [192.0.2.10, 192.0.2.11, 192.0.2.12]\n"                                                \
    "  helo: mx.example.com\n"

/* source.start: the date a pool IP joins, looked up by IP; a single source.ip has no pool. */
static void test_source_start_lookup(void **state)
{
    (void)state;
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "%s  start: {192.0.2.12: 2026-12-10}\n%s%s%s", L_POOL, L_SENDER,
             L_MESSAGE, L_RECIPIENTS);
    struct plan *p = NULL;
    struct err e;
    if (load_text(yaml, &p, &e) != IPW_OK)
        fail_msg("%s", e.msg);
    assert_string_equal(p->source_start_dates[2], "2026-12-10");
    assert_string_equal(plan_source_start(p, "192.0.2.12"), "2026-12-10");
    assert_null(plan_source_start(p, "192.0.2.10"));
    plan_free(p);

    snprintf(yaml, sizeof yaml,
             "campaign: t\nsource:\n  ip: 192.0.2.10\n  helo: mx.example.com\n"
             "  start: {192.0.2.10: 2026-12-10}\n%s%s%s",
             L_SENDER, L_MESSAGE, L_RECIPIENTS);
    refused_text(yaml, "source.start: expected source.ips with it");
}

static void test_relay_plan(void **state)
{
    (void)state;
    struct plan *p = loaded(GOOD "/relay.yaml");
    assert_int_equal(p->mode, PLAN_RELAY);
    assert_int_equal(p->n_source_ips, 2);
    assert_string_equal(p->source_ips[1], "2001:db8::7");
    assert_null(p->from_name);
    assert_string_equal(p->from_addr, "billing@example.net");
    assert_string_equal(p->return_path, "billing@example.net"); /* defaults to From */
    assert_string_equal(p->relay_url, "smtp://smtp.example.net:587");
    assert_string_equal(p->relay_username, "warmup@example.net");
    assert_null(p->relay_password_env);
    assert_true(ends_with(p->relay_password_file, "/tests/plans/keys/relay-password"));
    assert_true(ends_with(p->relay_ca_file, "/tests/plans/keys/ca.pem"));
    assert_null(p->text_file);
    assert_string_equal(p->text, "Hello,\nthis body is written inline.\n");
    assert_int_equal(p->schedule.days, 0x1f);
    assert_int_equal(p->schedule.windows[0].start_min, 8 * 60);
    assert_true(p->ramp.start_per_min == 2.0);
    assert_int_equal(p->ramp.n_daily_cap, 1);
    assert_int_equal(p->ramp.daily_cap[0], 800);
    for (size_t i = 0; i < p->n_providers; i++) {
        assert_int_equal(p->providers[i].ramp.n_daily_cap, 1);
        assert_int_equal(p->providers[i].ramp.set, 0);
    }
    plan_free(p);
}

/* source.start: an IP of the pool joins on a date; keys must be IPs of source.ips (compared as
 * addresses), dates real YYYY-MM-DD; without the key the array is NULL. */
#define L_POOL_REST L_SENDER L_MESSAGE L_RECIPIENTS
static void test_source_start(void **state)
{
    (void)state;
    struct plan *p = NULL;
    struct err e;
    const char *ok =
        L_CAMPAIGN "source:\n  ips: [192.0.2.10, 192.0.2.11, 2001:db8::c]\n"
                   "  helo: mx.example.com\n"
                   "  start: {192.0.2.11: 2026-12-10, 2001:DB8:0::C: 2027-01-02}\n" L_POOL_REST;
    if (load_text(ok, &p, &e) != IPW_OK)
        fail_msg("%s", e.msg);
    assert_non_null(p->source_start_dates);
    assert_null(p->source_start_dates[0]);
    assert_string_equal(p->source_start_dates[1], "2026-12-10");
    assert_string_equal(p->source_start_dates[2], "2027-01-02");
    plan_free(p);
    p = NULL;
    if (load_text(BASE, &p, &e) != IPW_OK)
        fail_msg("%s", e.msg);
    assert_null(p->source_start_dates);
    plan_free(p);
    refused_text(L_CAMPAIGN "source:\n  ips: [192.0.2.10, 192.0.2.11]\n  helo: mx.example.com\n"
                            "  start: {192.0.2.12: 2026-12-10}\n" L_POOL_REST,
                 "t.yaml:5:11: source.start: expected an IP address of source.ips as the key, "
                 "found \"192.0.2.12\"");
    refused_text(L_CAMPAIGN "source:\n  ips: [192.0.2.10, 192.0.2.11]\n  helo: mx.example.com\n"
                            "  start: {192.0.2.11: 2026-02-30}\n" L_POOL_REST,
                 "t.yaml:5:23: source.start.192.0.2.11: expected a date YYYY-MM-DD such as "
                 "2026-12-10, found \"2026-02-30\"");
    refused_text(L_CAMPAIGN "source:\n  ips: [192.0.2.10, 192.0.2.11]\n  helo: mx.example.com\n"
                            "  start: {192.0.2.11: 2026-1-5}\n" L_POOL_REST,
                 "source.start.192.0.2.11: expected a date YYYY-MM-DD");
    refused_text(L_CAMPAIGN "source:\n  ips: [192.0.2.10]\n  helo: mx.example.com\n"
                            "  start: [192.0.2.10]\n" L_POOL_REST,
                 "t.yaml:5:10: source.start: expected a mapping of an IP of source.ips");
    refused_text(L_CAMPAIGN
                 "source:\n  ips: [192.0.2.10, 192.0.2.11]\n  helo: mx.example.com\n"
                 "  start: {192.0.2.11: 2026-12-10, 192.0.2.11: 2026-12-11}\n" L_POOL_REST,
                 "duplicate");
}

static void test_minimal_defaults(void **state)
{
    (void)state;
    struct plan *p = loaded(GOOD "/minimal.yaml");
    assert_string_equal(p->timezone, "UTC");
    assert_true(ends_with(p->state, "/tests/plans/good/ipwarm.db"));
    assert_string_equal(p->path, GOOD "/minimal.yaml");
    assert_true(ends_with(p->dir, "/tests/plans/good"));
    assert_int_equal(p->mode, PLAN_DIRECT);
    assert_int_equal(p->port, 25);
    assert_int_equal(p->tls, PLAN_TLS_OPPORTUNISTIC);
    assert_int_equal(p->tls_min, PLAN_TLS_1_2);
    assert_int_equal(p->connect_timeout_ms, 30000);
    assert_int_equal(p->command_timeout_ms, 300000);
    assert_int_equal(p->connections_per_provider, 2);
    assert_int_equal(p->recipients_mode, PLAN_RCPT_ONCE);
    assert_string_equal(p->recipients_column, "email");
    assert_int_equal(p->schedule.days, 0x7f);
    assert_int_equal(p->schedule.n_windows, 1);
    assert_int_equal(p->schedule.windows[0].start_min, 0);
    assert_int_equal(p->schedule.windows[0].end_min, 1440);
    assert_true(p->ramp.start_per_min == 5.0);
    assert_true(p->ramp.growth == 1.5);
    assert_true(p->ramp.max_per_min == 600.0);
    assert_int_equal(p->ramp.n_daily_cap, 0);
    assert_true(p->ramp.deferral_below_pct == 5.0);
    assert_true(p->ramp.bounce_below_pct == 2.0);
    assert_int_equal(p->ramp.set, 0);
    assert_true(p->backoff.factor == 0.5);
    assert_int_equal(p->backoff.pause_ms, 15 * 60000);
    assert_int_equal(p->backoff.pause_max_ms, 4 * 3600000);
    assert_int_equal(p->backoff.recover_after_ms, 30 * 60000);
    assert_true(p->backoff.recover_step_pct == 25.0);
    assert_int_equal(p->backoff.retry_first_ms, 5 * 60000);
    assert_int_equal(p->backoff.retry_max_ms, 4 * 3600000);
    assert_int_equal(p->backoff.retry_give_up_ms, INT64_C(3) * 86400000);
    assert_int_equal(p->n_providers, 7);
    assert_string_equal(p->providers[p->default_provider].name, "other");
    assert_int_equal(p->n_rules, 11);
    assert_string_equal(p->dnsbl_zones[2], "b.barracudacentral.org");
    assert_int_equal(p->dns_timeout_ms, 5000);
    plan_free(p);
}

static void test_custom_table(void **state)
{
    (void)state;
    struct plan *p = loaded(GOOD "/custom_table.yaml");
    assert_true(ends_with(p->providers_source, "/tests/plans/providers-custom.yaml"));
    assert_int_equal(p->n_providers, 2);
    assert_string_equal(p->providers[0].name, "acme");
    assert_string_equal(p->providers[0].mx[0], ".mx.acme.example");
    assert_true(p->providers[0].ramp.max_per_min == 30.0);
    assert_string_equal(p->providers[1].name, "rest");
    assert_int_equal(p->default_provider, 1);
    assert_string_equal(p->providers[1].pos.file, p->providers_source);
    assert_int_equal(p->n_rules, 2);
    assert_string_equal(p->rules[0].name, "acme-busy"); /* the table's rules come first */
    assert_int_equal(p->rules[1].action, PLAN_ACTION_THROTTLE);
    assert_true(p->rules[1].rate_per_min == 1.0); /* throttle's default rate */
    plan_free(p);
}

/* Every file in tests/plans/bad names its refusal on its first line: "# expect: L:C KEY". */
static void test_bad_plans(void **state)
{
    (void)state;
    const char *dir = SRC "/tests/plans/bad";
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
            continue;
        char path[1024], line[512], want[1600];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "# expect: ", 10) != 0)
            fail_msg("%s: first line is not '# expect: LINE:COL [KEY]'", path);
        char *where = line + 10, *key = strchr(where, ' ');
        if (key)
            *key++ = '\0';
        snprintf(want, sizeof want, "%s:%s:%s%s", path, where, key ? " " : "", key ? key : "");
        struct plan *p = (struct plan *)1;
        struct err e;
        ipw_status st = plan_load(path, &p, &e);
        if (st != IPW_ECONFIG)
            fail_msg("%s: status %d, expected IPW_ECONFIG: %s", path, st, e.msg);
        assert_null(p);
        if (!strstr(e.msg, want))
            fail_msg("%s: message lacks '%s':\n%s", path, want, e.msg);
        n++;
    }
    closedir(d);
    assert_true(n >= 25);
}

static void test_unknown_key_suggestion(void **state)
{
    (void)state;
    refused_with("ramp:\n  grwth: 1.5\n",
                 "t.yaml:7:3: ramp.grwth: unknown key; did you mean \"growth\"?");
    refused_with("ramp:\n  strat: 5/min\n",
                 "t.yaml:7:3: ramp.strat: unknown key; did you mean \"start\"?");
    refused_with("shedule: {}\n", "t.yaml:6:1: shedule: unknown key; did you mean \"schedule\"?");
    refused_with("ramp:\n  speed: 5/min\n",
                 "t.yaml:7:3: ramp.speed: unknown key; expected one of start, growth, max, "
                 "daily_cap or advance_if");
    refused_with("providers:\n  - name: x\n    mx: [.x.example]\n    defualt: true\n",
                 "t.yaml:9:5: providers[0].defualt: unknown key; did you mean \"default\"?");
    refused_with("transport: {mode: dirct}\n",
                 "t.yaml:6:19: transport.mode: expected direct or relay, found \"dirct\" (did you "
                 "mean \"direct\"?)");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    refused_with("ramp:\n  start: 5/min\n  growth: 2\n  start: 10/min\n",
                 "t.yaml:9:3: ramp.start: duplicate key: expected it once, found it again (first "
                 "at line 7, column 3)");
    refused_with("campaign: again\n", "t.yaml:6:1: campaign: duplicate key");
}

static void test_several_problems(void **state)
{
    (void)state;
    struct plan *p = NULL;
    struct err e;
    const char *yaml = "campaign: t\n"
                       "source: {ip: 999.1.1.1, helo: mx.example.com}\n"
                       "sender: {from: news@example.com}\n"
                       "message: {subject: Hi, text_file: ../message.txt}\n"
                       "recipients: {file: ../seeds.csv}\n"
                       "ramp: {growth: 0.5, start: 0/min}\n"
                       "transport: {port: 0}\n";
    assert_int_equal(load_text(yaml, &p, &e), IPW_ECONFIG);
    assert_null(p);
    /* one line each, in file order */
    const char *a = strstr(e.msg, "t.yaml:2:14: source.ip:");
    const char *b = strstr(e.msg, "t.yaml:6:16: ramp.growth: expected a number >= 1");
    const char *c = strstr(e.msg, "t.yaml:6:28: ramp.start:");
    const char *d = strstr(e.msg, "t.yaml:7:19: transport.port: expected a port number from 1 to "
                                  "65535, found \"0\"");
    if (!a || !b || !c || !d || !(a < b && b < c && c < d))
        fail_msg("unexpected message:\n%s", e.msg);
    size_t lines = 1;
    for (const char *s = e.msg; *s; s++)
        lines += *s == '\n';
    assert_int_equal(lines, 4);
}

static void test_problem_cap(void **state)
{
    (void)state;
    char yaml[8192];
    size_t o = (size_t)snprintf(yaml, sizeof yaml, "%s", BASE);
    for (int i = 0; i < 60; i++)
        o += (size_t)snprintf(yaml + o, sizeof yaml - o, "unknown%02d: x\n", i);
    struct plan *p = NULL;
    struct err e;
    assert_int_equal(load_text(yaml, &p, &e), IPW_ECONFIG);
    /* whole lines in file order, as many as fit, then how many were left out */
    assert_non_null(strstr(e.msg, "t.yaml:6:1: unknown00: unknown key; expected one of campaign,"));
    assert_null(strstr(e.msg, "unknown50"));
    const char *last = strrchr(e.msg, '\n');
    assert_non_null(last);
    unsigned shown = 0, more = 0;
    for (const char *s = e.msg; *s; s++)
        shown += *s == '\n';
    assert_int_equal(sscanf(last, "\n... and %u more problems", &more), 1);
    assert_int_equal(shown + more, 60);
    assert_true(shown >= 30 && shown <= 50);
}

static void test_wrong_types_and_ranges(void **state)
{
    (void)state;
    refused_with("transport: {port: 70000}\n", "t.yaml:6:19: transport.port: expected a port");
    refused_with("transport: {port: 25.5}\n", "t.yaml:6:19: transport.port: expected a port");
    refused_with("transport: {port: {a: 1}}\n", "found a mapping");
    refused_with("ramp: [1, 2]\n", "t.yaml:6:7: ramp: expected a mapping");
    refused_with("ramp: {start: 10/min, max: 5/min}\n",
                 "t.yaml:6:28: ramp.max: expected a rate >= start (10/min), found \"5/min\"");
    refused_with("ramp: {start: 700/min}\n", "t.yaml:6:15: ramp.start: expected a rate <= max");
    refused_with("ramp: {growth: 0.99}\n", "t.yaml:6:16: ramp.growth: expected a number >= 1");
    refused_with("ramp: {growth: nan}\n", "ramp.growth: expected a number >= 1");
    refused_with("ramp: {advance_if: {bounce_rate_below: 101%}}\n",
                 "t.yaml:6:40: ramp.advance_if.bounce_rate_below:");
    refused_with("ramp: {daily_cap: [10, -1]}\n", "t.yaml:6:24: ramp.daily_cap[1]:");
    refused_with("backoff: {deferral: {factor: 0}}\n", "backoff.deferral.factor: expected a number "
                                                       "between 0 and 1");
    refused_with("backoff: {deferral: {pause: 0s}}\n",
                 "backoff.deferral.pause: expected a duration > 0");
    refused_with("backoff: {retry: {max: 2d, give_up_after: 1d}}\n",
                 "backoff.retry.give_up_after: expected max <= give_up_after");
    refused_with("transport: {connections_per_provider: 0}\n",
                 "transport.connections_per_provider: expected a whole number from 1 to 100");
    refused_with("campaign2: x\n", "campaign2: unknown key; did you mean \"campaign\"?");
    refused_with("schedule: {hours: \"25:00-26:00\"}\n", "schedule.hours: expected a window");
    refused_with("schedule: {hours: \"09:00-24:01\"}\n", "schedule.hours: expected a window");
    refused_with("schedule: {days: []}\n", "schedule.days: expected at least one day");
    refused_with("preflight: {require: [spf, dkm]}\n",
                 "preflight.require[1]: expected spf, ptr, helo, mx, dnsbl, dkim, dmarc, smtp, "
                 "tls, auth or size, found \"dkm\" (did you mean \"dkim\"?)");
    refused_with("preflight: {dnsbl: [zen.spamhaus.org, \"bad zone\"]}\n", "preflight.dnsbl[1]:");
    refused_with("dns: {servers: [\"localhost\"]}\n", "dns.servers[0]: expected a DNS server");
    refused_text(L_CAMPAIGN L_SOURCE L_SENDER L_MESSAGE
                 "recipients: {file: ../seeds.csv, mode: x}\n",
                 "t.yaml:5:40: recipients.mode: expected once or cycle, found \"x\"");
    refused_with("providers: {name: x}\n", "t.yaml:6:12: providers: expected a list of providers");
    refused_with("providers:\n  - name: lonely\n",
                 "t.yaml:7:5: providers[0]: expected mx or domains for a provider that is not in "
                 "the provider table");
    refused_with("providers:\n  - name: other\n    default: false\n",
                 "t.yaml:8:14: providers: expected one provider with default: true");
    refused_with("timezone: ../../etc/passwd\n",
                 "t.yaml:6:11: timezone: expected an IANA time zone");
    refused_with("timezone: /etc/localtime\n", "t.yaml:6:11: timezone: expected an IANA time zone");
    refused_with("timezone: America\n", "t.yaml:6:11: timezone: expected an IANA time zone");
    refused_with("state: ~\n", "t.yaml:6:8: state: expected a file name, found an empty value");
}

/* backoff.blocked: a pause beyond the default 24 h ceiling with no max_pause is kept whole;
 * a max_pause below the pause is refused. */
static void test_blocked_pause_ceiling(void **state)
{
    (void)state;
    struct plan *p = NULL;
    struct err e;
    assert_int_equal(load_text(BASE "backoff: {blocked: {pause: 48h}}\n", &p, &e), IPW_OK);
    assert_int_equal(p->backoff.blocked_pause_ms, INT64_C(48) * 3600000);
    assert_int_equal(p->backoff.blocked_pause_max_ms, INT64_C(48) * 3600000);
    plan_free(p);
    assert_int_equal(load_text(BASE "backoff: {blocked: {pause: 2h}}\n", &p, &e), IPW_OK);
    assert_int_equal(p->backoff.blocked_pause_ms, INT64_C(2) * 3600000);
    assert_int_equal(p->backoff.blocked_pause_max_ms, INT64_C(24) * 3600000);
    plan_free(p);
    refused_with("backoff: {blocked: {pause: 48h, max_pause: 24h}}\n",
                 "t.yaml:6:44: backoff.blocked.max_pause: expected a duration >= pause (2d)");
}

static void test_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *from, *name, *addr;
    } good[] = {
        {"news@example.com", NULL, "news@example.com"},
        {"<news@example.com>", NULL, "news@example.com"},
        {"Example News <news@example.com>", "Example News", "news@example.com"},
        {"\\\"Ex \\\\\\\"Q\\\\\\\" <x>\\\" <a.b+c@sub.example.com>", "Ex \"Q\" <x>",
         "a.b+c@sub.example.com"},
        {"\\\"quoted local\\\"@example.com", NULL, "\"quoted local\"@example.com"},
        {"Jörg <j@example.de>", "Jörg", "j@example.de"},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "campaign: t\nsource: {ip: 192.0.2.1, helo: mx.example.com}\n"
                 "sender: {from: \"%s\"}\nmessage: {subject: Hi, text_file: ../message.txt}\n"
                 "recipients: {file: ../seeds.csv}\n",
                 good[i].from);
        struct plan *p = NULL;
        struct err e;
        if (load_text(yaml, &p, &e) != IPW_OK)
            fail_msg("From %s refused: %s", good[i].from, e.msg);
        if (good[i].name)
            assert_string_equal(p->from_name, good[i].name);
        else
            assert_null(p->from_name);
        assert_string_equal(p->from_addr, good[i].addr);
        plan_free(p);
    }
    static const char *const bad[] = {"Example News",
                                      "news@",
                                      "@example.com",
                                      "a..b@example.com",
                                      ".a@example.com",
                                      "news@example",
                                      "Ex <news@exa mple.com>",
                                      "Ex <news@example.com",
                                      "Ex <<news@example.com>>",
                                      "news@-example.com",
                                      "a b@example.com",
                                      "Ex, Inc <news@example.com>"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char extra[512];
        snprintf(extra, sizeof extra, "sender: {from: \"%s\"}\n", bad[i]);
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "campaign: t\nsource: {ip: 192.0.2.1, helo: mx.example.com}\n%s"
                 "message: {subject: Hi, text_file: ../message.txt}\n"
                 "recipients: {file: ../seeds.csv}\n",
                 extra);
        struct plan *p = NULL;
        struct err e;
        if (load_text(yaml, &p, &e) != IPW_ECONFIG || !strstr(e.msg, "t.yaml:3:16: sender.from:"))
            fail_msg("From %s not refused as expected: %s", bad[i], e.msg);
    }
    refused_text(L_CAMPAIGN L_SOURCE
                 "sender: {from: a@example.com, return_path: bounces}\n" L_MESSAGE L_RECIPIENTS,
                 "t.yaml:3:44: sender.return_path: expected an address such as user@example.com, "
                 "found \"bounces\"");
}

static void test_control_characters(void **state)
{
    (void)state;
    struct plan *p = NULL;
    struct err e;
    const char *yaml =
        "campaign: t\n"
        "source: {ip: 192.0.2.1, helo: mx.example.com}\n"
        "sender: {from: news@example.com}\n"
        "message: {subject: \"Hi\\r\\nBcc: x@example.org\", text_file: ../message.txt}\n"
        "recipients: {file: ../seeds.csv, column: \"em\\x07ail\"}\n";
    assert_int_equal(load_text(yaml, &p, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "t.yaml:4:20: message.subject: control characters CR/LF/NUL are "
                                  "not allowed (they could inject mail headers or SMTP commands): "
                                  "expected one line of text, found \"Hi\\r\\nBcc: "
                                  "x@example.org\""));
    assert_non_null(strstr(e.msg, "t.yaml:5:42: recipients.column: expected text without control "
                                  "characters, found \"em\\x07ail\""));

    /* "\0" survives libyaml as a byte inside the scalar: it must not cut the value short */
    const char nul[] = "campaign: \"ok\\0evil\"\n"
                       "source: {ip: 192.0.2.1, helo: mx.example.com}\n"
                       "sender: {from: news@example.com}\n"
                       "message: {subject: Hi, text_file: ../message.txt}\n"
                       "recipients: {file: ../seeds.csv}\n";
    assert_int_equal(load_text(nul, &p, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "t.yaml:1:11: campaign: control characters CR/LF/NUL"));
    assert_non_null(strstr(e.msg, "found \"ok\\0evil\""));

    /* a raw NUL byte in the file is not YAML at all */
    const char raw[] = "campaign: a\0b\n";
    assert_int_equal(plan_load_text(raw, sizeof raw - 1, "t.yaml", GOOD, &p, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "t.yaml:1:"));

    /* message.text is a body: lines are fine there, NUL is not */
    struct plan *ok = NULL;
    const char *body = "campaign: t\n"
                       "source: {ip: 192.0.2.1, helo: mx.example.com}\n"
                       "sender: {from: news@example.com}\n"
                       "message: {subject: Hi, text: \"line 1\\r\\nline 2\\n\"}\n"
                       "recipients: {file: ../seeds.csv}\n";
    assert_int_equal(load_text(body, &ok, &e), IPW_OK);
    assert_string_equal(ok->text, "line 1\r\nline 2\n");
    plan_free(ok);
    refused_text(L_CAMPAIGN L_SOURCE L_SENDER
                 "message: {subject: Hi, text: \"a\\0b\"}\n" L_RECIPIENTS,
                 "t.yaml:4:30: message.text: control characters CR/LF/NUL are not allowed");
}

static void test_yaml_hostile(void **state)
{
    (void)state;
    struct plan *p = NULL;
    struct err e;
    const char *laughs = "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n"
                         "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                         "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                         "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                         "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                         "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    assert_int_equal(load_text(laughs, &p, &e), IPW_ECONFIG);
    assert_null(p);
    assert_string_equal(e.msg, "t.yaml:2:8: b[0]: YAML aliases (*a) are not allowed in a plan: "
                               "expected a value written out, found an alias");

    /* a merge key is an alias too */
    refused_with("ramp: &r {start: 5/min}\nx: {<<: *r}\n", "YAML aliases (*r) are not allowed");

    char deep[256];
    size_t o = (size_t)snprintf(deep, sizeof deep, "campaign: ");
    for (int i = 0; i < 40; i++)
        deep[o++] = '[';
    for (int i = 0; i < 40; i++)
        deep[o++] = ']';
    deep[o++] = '\n';
    deep[o] = '\0';
    assert_int_equal(load_text(deep, &p, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "t.yaml:1:42: campaign[0]"));
    assert_non_null(strstr(e.msg, "expected at most 32 levels of nesting, found more"));

    size_t big = 1024 * 1024 + 10;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, '#', big);
    huge[big] = '\0';
    assert_int_equal(load_text(huge, &p, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "t.yaml:1:1: expected a plan of at most 1048576 bytes"));
    free(huge);

    assert_int_equal(load_text("", &p, &e), IPW_ECONFIG);
    assert_string_equal(e.msg,
                        "t.yaml:1:1: the plan is empty: expected a mapping of plan keys "
                        "(campaign, source, sender, message, recipients, ...), found nothing");
    assert_int_equal(load_text("just a string\n", &p, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "t.yaml:1:1: expected a mapping of plan keys"));
    assert_int_equal(load_text(BASE "---\ncampaign: u\n", &p, &e), IPW_ECONFIG);
    assert_string_equal(e.msg, "t.yaml:6:1: expected one YAML document, found a second one (a plan "
                               "is one document)");
    assert_int_equal(load_text("campaign: [unclosed\n", &p, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "t.yaml:2:1: invalid YAML:"));
    refused_with("? [a, b]\n: c\n", "t.yaml:6:3: expected a key name, found a list");
    refused_with("campaign2: !!str x\n", "t.yaml:6:12: campaign2: YAML tags");
}

static void test_providers_and_rules(void **state)
{
    (void)state;
    refused_with("providers:\n  - {name: a, mx: [.a.example], default: true}\n"
                 "  - {name: b, mx: [.b.example], default: true}\n",
                 "t.yaml:8:42: providers[1].default: expected one provider with default: true, "
                 "found a second one (the first is at line 7, column 42)");
    refused_with("providers:\n  - {name: a, mx: [.a.example]}\n  - {name: a, mx: [.b.example]}\n",
                 "t.yaml:8:12: providers[1].name: expected each provider name once, found \"a\" "
                 "again (first at line 7, column 12)");
    refused_with("providers:\n  - {name: gmail, ramp: {start: 700/min}}\n",
                 "t.yaml:7:33: providers[0].ramp.start: expected a rate <= max (600/min)");
    refused_with("backoff:\n  rules:\n    - {match: '(unclosed', action: suspend}\n",
                 "t.yaml:8:15: backoff.rules[0].match: expected a POSIX extended regular "
                 "expression, found \"(unclosed\" (");
    refused_with("backoff:\n  rules:\n    - {match: x, action: suspend, trigger: 0/1h}\n",
                 "t.yaml:8:44: backoff.rules[0].trigger:");
    refused_with("backoff:\n  rules:\n    - {match: x, action: pause}\n",
                 "backoff.rules[0].action: expected throttle, suspend or bounce, found \"pause\"");
    refused_with("backoff:\n  rules:\n    - {action: suspend}\n",
                 "t.yaml:8:7: backoff.rules[0].match: expected a regular expression");
    refused_with(
        "backoff:\n  rules:\n    - {match: x, action: suspend, provider: [gmail, nobody]}\n",
        "t.yaml:8:53: backoff.rules[0].provider[1]: expected the name of a provider "
        "(shipped or in the plan), found \"nobody\"");

    /* a plan provider may be named by a rule; a plan default replaces the shipped one */
    struct plan *p = NULL;
    struct err e;
    const char *yaml = BASE "providers:\n  - {name: acme, domains: [acme.example]}\n"
                            "  - {name: rest, default: yes}\n"
                            "backoff: {rules: [{match: x, action: bounce, provider: acme}]}\n";
    if (load_text(yaml, &p, &e) != IPW_OK)
        fail_msg("%s", e.msg);
    assert_int_equal(p->default_provider, 1);
    assert_false(p->providers[plan_provider_find(p, "other")].is_default);
    assert_string_equal(p->rules[p->n_rules - 1].providers[0], "acme");
    plan_free(p);
}

static void test_relay_rules(void **state)
{
    (void)state;
#define RELAY "transport:\n  mode: relay\n  relay:\n    url: %s\n%s"
    char extra[1024];
    snprintf(extra, sizeof extra, RELAY, "smtp://smtp.example.com:587",
             "    username: u\n    password: hunter2\n");
    refused_with(extra, "t.yaml:11:5: transport.relay.password: inline passwords are not allowed: "
                        "use password_env or password_file");
    snprintf(extra, sizeof extra, RELAY, "smtp://smtp.example.com:587",
             "    username: u\n    password_env: PW\n    password_file: ../seeds.csv\n");
    refused_with(extra, "t.yaml:12:20: transport.relay.password_file: expected password_env or "
                        "password_file, found both");
    snprintf(extra, sizeof extra, RELAY, "smtp://smtp.example.com:587", "    password_env: PW\n");
    refused_with(extra, "transport.relay.password_env: expected transport.relay.username");
    snprintf(extra, sizeof extra, RELAY, "smtp://smtp.example.com:587",
             "    username: u\n    password_env: 1PW\n");
    refused_with(extra, "transport.relay.password_env: expected the name of an environment");
    snprintf(extra, sizeof extra, RELAY, "http://smtp.example.com", "");
    refused_with(extra, "t.yaml:9:10: transport.relay.url: expected an smtp:// or smtps:// URL");
    snprintf(extra, sizeof extra, RELAY, "smtp://", "");
    refused_with(extra, "transport.relay.url: expected an smtp://");
    snprintf(extra, sizeof extra, RELAY, "smtp://host:0", "");
    refused_with(extra, "transport.relay.url: expected an smtp://");
    snprintf(extra, sizeof extra, RELAY, "smtp://u:secret@host", "");
    refused_with(extra, "transport.relay.url: inline passwords are not allowed");
    struct plan *p = NULL;
    struct err e;
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%s%s", BASE, "secret_password: x\n");
    assert_int_equal(load_text(yaml, &p, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "inline passwords are not allowed"));
    assert_null(strstr(e.msg, ": x")); /* the value is never echoed */

    snprintf(extra, sizeof extra, RELAY, "smtps://localhost",
             "    username: u\n    password_env: PW\n");
    snprintf(yaml, sizeof yaml, "%s%s", BASE, extra);
    if (load_text(yaml, &p, &e) != IPW_OK)
        fail_msg("%s", e.msg);
    assert_string_equal(p->relay_password_env, "PW");
    plan_free(p);
}

static void test_files(void **state)
{
    (void)state;
    struct plan *p = NULL;
    struct err e;
    const char *yaml = "campaign: t\n"
                       "source: {ip: 192.0.2.1, helo: mx.example.com}\n"
                       "sender: {from: news@example.com}\n"
                       "message: {subject: Hi, text_file: nothing-here.txt}\n"
                       "recipients: {file: ../seeds.csv}\n";
    assert_int_equal(load_text(yaml, &p, &e), IPW_ECONFIG);
    assert_string_equal(e.msg, "t.yaml:4:35: message.text_file: expected a readable file, found "
                               "\"nothing-here.txt\" (" GOOD "/nothing-here.txt: No such file or "
                               "directory)");
    refused_text(L_CAMPAIGN L_SOURCE L_SENDER
                 "message: {subject: Hi, text_file: ..}\n" L_RECIPIENTS,
                 "t.yaml:4:35: message.text_file: expected a readable file, found \"..\" (" SRC
                 "/tests/plans: Is a directory)");
    refused_text(L_CAMPAIGN L_SOURCE L_SENDER L_MESSAGE "recipients: {mode: once}\n",
                 "t.yaml:5:1: recipients.file: expected the recipient list file, found nothing");
    refused_with("providers_file: none.yaml\n", "t.yaml:6:17: providers_file: expected a readable "
                                                "file");

    /* the plan file itself missing is not a config error */
    assert_int_equal(plan_load(GOOD "/no-such-plan.yaml", &p, &e), IPW_ENOINPUT);
    assert_null(p);
    assert_non_null(strstr(e.msg, "no-such-plan.yaml"));
    plan_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_plan),
        cmocka_unit_test(test_config_examples),
        cmocka_unit_test(test_full_plan),
        cmocka_unit_test(test_relay_plan),
        cmocka_unit_test(test_source_start),
        cmocka_unit_test(test_source_start_lookup),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_custom_table),
        cmocka_unit_test(test_bad_plans),
        cmocka_unit_test(test_unknown_key_suggestion),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_several_problems),
        cmocka_unit_test(test_problem_cap),
        cmocka_unit_test(test_wrong_types_and_ranges),
        cmocka_unit_test(test_blocked_pause_ceiling),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_yaml_hostile),
        cmocka_unit_test(test_providers_and_rules),
        cmocka_unit_test(test_relay_rules),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
