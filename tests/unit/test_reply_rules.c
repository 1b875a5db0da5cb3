/*
 * test_reply_rules: the judgement (reply_judge) agrees with the reply rules ipwarm ships
 * (config/providers.yaml, compiled in and merged by plan_rules.c) and with the replies of the
 * sandbox (config/sandbox/sandbox.yaml, read with the project's YAML reader, never written).
 *
 * A throttle rule is a provider slowing us down: every reply it fires on must be judged
 * PROVIDER. A suspend rule for a block list or for authentication (its name says block or
 * auth) is the receiver refusing us: SENDER. Any other suspend rule (Yahoo's [TSS04]) is
 * PROVIDER or SENDER, never the recipient's fault. Each shipped rule must fire on at least one
 * real-world reply of reply_cases.h, so that a rule added without a case fails here. The
 * sandbox's throttles must read PROVIDER, its block-list mode SENDER at MAIL, its unknown
 * recipient RECIPIENT and suppressed, its full mailbox RECIPIENT and kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/backoff.h"
#include "ipwarm/plan.h"
#include "ipwarm/plan_yaml.h"
#include "ipwarm/reply.h"

#include "reply_cases.h"

#define SRC  IPWARM_SOURCE_DIR
#define GOOD SRC "/tests/plans/good"
#define T0   1796083200000LL

/* The smallest plan: everything else (providers, rules) comes from the shipped table. */
static const char MINIMAL[] = "campaign: t\n"
                              "source: {ip: 192.0.2.10, helo: mx.example.com}\n"
                              "sender: {from: news@example.com}\n"
                              "message: {subject: Hi, text_file: ../message.txt}\n"
                              "recipients: {file: ../seeds.csv}\n";

static struct reply R; /* 4 KiB: keep it off the stack */

static struct plan *shipped(void)
{
    struct plan *p = NULL;
    struct err e;
    if (plan_load_text(MINIMAL, strlen(MINIMAL), "t.yaml", GOOD, &p, &e) != IPW_OK)
        fail_msg("the minimal plan did not load: %s", e.msg);
    assert_true(p->n_rules > 0);
    for (size_t i = 0; i < p->n_rules; i++)
        assert_false(p->rules[i].from_plan);
    return p;
}

/* A provider the rule applies to ("other" for a rule of every provider). */
static const char *rule_provider(const struct plan_rule *r)
{
    return r->n_providers > 0 ? r->providers[0] : "other";
}

/* True if rule fires on whole: as many matches at one instant as its trigger asks for. */
static bool rule_fires(const struct plan_rule *r, const char *provider, const char *whole)
{
    struct backoff_rule_hits hits;
    struct backoff_action out;
    memset(&hits, 0, sizeof hits);
    for (int i = 0; i < r->trigger_count; i++)
        if (backoff_rules_match(r, 1, provider, whole, T0, &hits, &out) == 1)
            return true;
    return false;
}

static bool rule_is_block_or_auth(const struct plan_rule *r)
{
    return r->name && (strstr(r->name, "block") || strstr(r->name, "auth"));
}

/*
 * Parses raw and judges it; checks every rule that fires on it (for provider, or for each
 * rule's own provider when provider is NULL) against the judgement. Returns how many fired.
 */
static size_t agree(const struct plan *p, const char *what, enum reply_phase phase, const char *raw,
                    const char *provider, size_t *fired_per_rule)
{
    assert_true(reply_parse(raw, strlen(raw), &R) >= 400);
    char whole[REPLY_TEXT_MAX + 16];
    reply_format(&R, whole, sizeof whole);
    struct reply_input in = {phase, R.code, R.enhanced, R.text, false};
    struct reply_class c = reply_judge(&in);
    size_t n = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct plan_rule *r = &p->rules[i];
        const char *prov = provider ? provider : rule_provider(r);
        if (!rule_fires(r, prov, whole))
            continue;
        n++;
        if (fired_per_rule)
            fired_per_rule[i]++;
        const char *name = r->name ? r->name : r->match;
        bool ok;
        const char *want;
        if (r->action == PLAN_ACTION_THROTTLE) {
            ok = c.fault == REPLY_FAULT_PROVIDER;
            want = "provider";
        } else if (r->action == PLAN_ACTION_SUSPEND && rule_is_block_or_auth(r)) {
            ok = c.fault == REPLY_FAULT_SENDER && c.suspend && !c.suppress;
            want = "sender";
        } else if (r->action == PLAN_ACTION_SUSPEND) {
            ok = c.fault == REPLY_FAULT_PROVIDER || c.fault == REPLY_FAULT_SENDER;
            want = "provider or sender";
        } else {
            ok = c.fault == REPLY_FAULT_RECIPIENT || c.fault == REPLY_FAULT_MESSAGE;
            want = "recipient or message";
        }
        if (!ok)
            fail_msg("%s: rule %s (%s) fires on \"%s\" at %s, judged %s, expected %s", what, name,
                     r->action == PLAN_ACTION_THROTTLE  ? "throttle"
                     : r->action == PLAN_ACTION_SUSPEND ? "suspend"
                                                        : "bounce",
                     whole, reply_phase_name(phase), reply_fault_name(c.fault), want);
    }
    return n;
}

static void test_rules_agree_with_cases(void **state)
{
    (void)state;
    struct plan *p = shipped();
    size_t *fired = calloc(p->n_rules, sizeof *fired);
    assert_non_null(fired);
    for (size_t i = 0; i < sizeof reply_cases / sizeof reply_cases[0]; i++)
        agree(p, reply_cases[i].name, reply_cases[i].phase, reply_cases[i].raw, NULL, fired);
    /* Every shipped rule is vouched for by at least one real reply. */
    for (size_t i = 0; i < p->n_rules; i++)
        if (fired[i] == 0)
            fail_msg("shipped rule %s (%s) fires on none of reply_cases.h: add its real reply",
                     p->rules[i].name ? p->rules[i].name : "?", p->rules[i].match);
    /* The block-list and authentication suspensions the judgement must call SENDER exist. */
    const char *must[] = {"microsoft-block-list", "yahoo-block-list", "gmail-unauthenticated",
                          "microsoft-authentication"};
    for (size_t k = 0; k < sizeof must / sizeof must[0]; k++) {
        bool found = false;
        for (size_t i = 0; i < p->n_rules; i++)
            if (p->rules[i].name && strcmp(p->rules[i].name, must[k]) == 0) {
                found = p->rules[i].action == PLAN_ACTION_SUSPEND &&
                        rule_is_block_or_auth(&p->rules[i]);
                break;
            }
        if (!found)
            fail_msg("shipped suspend rule %s is missing", must[k]);
    }
    free(fired);
    plan_free(p);
}

/* The test must be able to fail: a throttle rule on a block list would be caught. */
static void test_rules_disagreement_is_caught(void **state)
{
    (void)state;
    struct plan *p = shipped();
    size_t i = 0;
    while (i < p->n_rules &&
           strcmp(p->rules[i].name ? p->rules[i].name : "", "microsoft-block-list"))
        i++;
    assert_true(i < p->n_rules);
    struct plan_rule r = p->rules[i];
    r.action = PLAN_ACTION_THROTTLE;
    const char *raw = "550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please "
                      "contact your Internet service provider since part of their network is on "
                      "our block list (S3150).\r\n";
    assert_int_equal(reply_parse(raw, strlen(raw), &R), 550);
    char whole[REPLY_TEXT_MAX + 16];
    reply_format(&R, whole, sizeof whole);
    assert_true(rule_fires(&r, "microsoft", whole));
    struct reply_input in = {REPLY_PHASE_RCPT, R.code, R.enhanced, R.text, false};
    assert_int_not_equal(reply_judge(&in).fault, REPLY_FAULT_PROVIDER);
    plan_free(p);
}

/* ---- the sandbox ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(PLAN_YAML_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, PLAN_YAML_MAX_BYTES, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static const struct plan_yaml_node *yaml_get(const struct plan_yaml_node *map, const char *key)
{
    if (!map || map->kind != PLAN_YAML_MAPPING)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->kind == PLAN_YAML_SCALAR && strcmp(map->keys[i]->text, key) == 0)
            return map->items[i];
    return NULL;
}

/* A sandbox reply as its renderer sends it: {ip} is the sender's IP. */
static void sandbox_reply(const struct plan_yaml_node *n, char *out, size_t size)
{
    assert_int_equal(n->kind, PLAN_YAML_SCALAR);
    size_t o = 0;
    for (const char *s = n->text; *s && o + 16 < size; s++) {
        if (strncmp(s, "{ip}", 4) == 0) {
            o += (size_t)snprintf(out + o, size - o, "127.0.25.1");
            s += 3;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

static struct reply_class judge_raw(enum reply_phase phase, const char *raw)
{
    reply_parse(raw, strlen(raw), &R);
    struct reply_input in = {phase, R.code, R.enhanced, R.text, false};
    return reply_judge(&in);
}

static void test_sandbox_agrees(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = slurp(SRC "/config/sandbox/sandbox.yaml", &len);
    assert_non_null(text);
    struct plan_yaml_node *root = NULL;
    struct err e;
    if (plan_yaml_parse(text, len, "sandbox.yaml", &root, &e) != IPW_OK)
        fail_msg("sandbox.yaml: %s", e.msg);
    struct plan *p = shipped();
    char reply[8192];

    /* Replies every provider gives to some recipients. */
    const struct plan_yaml_node *rc = yaml_get(root, "recipients");
    assert_non_null(rc);
    bool unknown = false, full = false;
    for (size_t i = 0; i < rc->n; i++) {
        sandbox_reply(rc->items[i], reply, sizeof reply);
        struct reply_class c = judge_raw(REPLY_PHASE_RCPT, reply);
        if (c.fault != REPLY_FAULT_RECIPIENT)
            fail_msg("sandbox recipient %s: \"%s\" judged %s", rc->keys[i]->text, reply,
                     reply_fault_name(c.fault));
        agree(p, rc->keys[i]->text, REPLY_PHASE_RCPT, reply, "other", NULL);
        if (strcmp(rc->keys[i]->text, "^unknown") == 0) {
            unknown = true;
            assert_true(c.suppress);
            assert_int_equal(c.outcome, REPLY_BOUNCED);
        } else if (strcmp(rc->keys[i]->text, "^full") == 0) {
            full = true;
            assert_false(c.suppress);
            assert_false(c.throttle);
            assert_int_equal(c.outcome, REPLY_DEFERRED);
        }
    }
    assert_true(unknown && full);

    /* Each provider's throttle (sent at MAIL), modes and own recipients. */
    const struct plan_yaml_node *provs = yaml_get(root, "providers");
    assert_non_null(provs);
    size_t throttles = 0, blocklists = 0;
    for (size_t i = 0; i < provs->n; i++) {
        const char *name = provs->keys[i]->text;
        const struct plan_yaml_node *pv = provs->items[i];
        const struct plan_yaml_node *th = yaml_get(pv, "throttle");
        if (th) {
            sandbox_reply(th, reply, sizeof reply);
            struct reply_class c = judge_raw(REPLY_PHASE_MAIL, reply);
            if (c.fault != REPLY_FAULT_PROVIDER || !c.throttle || c.suppress)
                fail_msg("sandbox %s throttle \"%s\" judged %s", name, reply,
                         reply_fault_name(c.fault));
            agree(p, name, REPLY_PHASE_MAIL, reply, name, NULL);
            throttles++;
        }
        const struct plan_yaml_node *modes = yaml_get(pv, "modes");
        for (size_t m = 0; modes && m < modes->n; m++) {
            static const struct {
                const char *key;
                enum reply_phase phase;
            } at[] = {
                {"mail", REPLY_PHASE_MAIL}, {"rcpt", REPLY_PHASE_RCPT}, {"data", REPLY_PHASE_DATA}};
            for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
                const struct plan_yaml_node *r = yaml_get(modes->items[m], at[k].key);
                if (!r)
                    continue;
                sandbox_reply(r, reply, sizeof reply);
                struct reply_class c = judge_raw(at[k].phase, reply);
                agree(p, name, at[k].phase, reply, name, NULL);
                if (strcmp(modes->keys[m]->text, "blocklist") == 0) {
                    blocklists++;
                    if (c.fault != REPLY_FAULT_SENDER || !c.suspend || c.suppress)
                        fail_msg("sandbox %s blocklist \"%s\" at %s judged %s", name, reply,
                                 at[k].key, reply_fault_name(c.fault));
                }
            }
        }
        const struct plan_yaml_node *own = yaml_get(pv, "recipients");
        for (size_t k = 0; own && k < own->n; k++) {
            sandbox_reply(own->items[k], reply, sizeof reply);
            assert_int_equal(judge_raw(REPLY_PHASE_RCPT, reply).fault, REPLY_FAULT_RECIPIENT);
        }
    }
    assert_true(throttles >= 3);
    assert_true(blocklists >= 1);
    plan_free(p);
    plan_yaml_free(root);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_agree_with_cases),
        cmocka_unit_test(test_rules_disagreement_is_caught),
        cmocka_unit_test(test_sandbox_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
