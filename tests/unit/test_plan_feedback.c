/*
 * test_plan_feedback: the plan's feedback and seeds sections (plan_feedback.c).
 *
 * The good plan tests/plans/good/feedback.yaml must load into exactly the values it writes,
 * a plan without the sections must leave them off, a feedback section must take the
 * documented defaults, and the refusals that have no file of their own in tests/plans/bad/
 * are pinned here by the sentence users read.
 */
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

#define BASE                                                                                       \
    "campaign: t\n"                                                                                \
    "source: {ip: 192.0.2.1, helo: mx.example.com}\n"                                              \
    "sender: {from: news@example.com}\n"                                                           \
    "message: {subject: Hi, text_file: ../message.txt}\n"                                          \
    "recipients: {file: ../seeds.csv}\n"
#define MAILBOX                                                                                    \
    "  mailbox: {url: imaps://imap.example.com, username: b@example.com, password_env: PW}\n"

static struct plan *load_ok(const char *yaml)
{
    struct plan *p = NULL;
    struct err e;
    ipw_status st = plan_load_text(yaml, strlen(yaml), "t.yaml", GOOD, &p, &e);
    if (st != IPW_OK)
        fail_msg("status %d for:\n%s\n%s", st, yaml, e.msg);
    return p;
}

static void refused(const char *yaml, const char *want)
{
    struct plan *p = NULL;
    struct err e;
    ipw_status st = plan_load_text(yaml, strlen(yaml), "t.yaml", GOOD, &p, &e);
    if (st != IPW_ECONFIG)
        fail_msg("status %d, expected IPW_ECONFIG, for:\n%s\n%s", st, yaml, e.msg);
    assert_null(p);
    if (!strstr(e.msg, want))
        fail_msg("message lacks '%s':\n%s", want, e.msg);
}

static void test_good_plan(void **state)
{
    (void)state;
    struct plan *p = NULL;
    struct err e;
    ipw_status st = plan_load(GOOD "/feedback.yaml", &p, &e);
    if (st != IPW_OK)
        fail_msg("%s", e.msg);
    const struct plan_feedback *f = &p->feedback;
    assert_true(f->enabled);
    assert_string_equal(f->mailbox.url, "imaps://imap.example.com/INBOX");
    assert_string_equal(f->mailbox.folder, "INBOX");
    assert_string_equal(f->mailbox.username, "bounces@example.com");
    assert_string_equal(f->mailbox.password_env, "IPWARM_IMAP_PASSWORD");
    assert_null(f->mailbox.password_file);
    assert_string_equal(f->mailbox.ca_file, SRC "/tests/plans/keys/ca.pem");
    assert_int_equal(f->mailbox.tls, PLAN_MAILBOX_TLS_REQUIRED);
    assert_int_equal(f->mailbox.pos.line, 11);
    assert_true(f->verp);
    assert_int_equal(f->poll_every_ms, 10 * 60 * 1000);
    assert_true(f->complaint_rate_above_pct > 0.1999 && f->complaint_rate_above_pct < 0.2001);
    assert_int_equal(f->complaint_min_delivered, 500);
    assert_int_equal(f->complaint_action, PLAN_COMPLAINT_THROTTLE);
    assert_true(f->complaint_rate_per_min == 2);
    assert_int_equal(f->complaint_for_ms, 12 * 3600 * 1000);
    assert_string_equal(f->feedback_id, "{{campaign}}:{{ip}}:{{provider}}:example");

    assert_int_equal(p->n_seeds, 2);
    assert_string_equal(p->seeds[0].address, "seed.one@gmail.com");
    assert_string_equal(p->seeds[0].mailbox.url, "imaps://imap.gmail.com");
    assert_null(p->seeds[0].mailbox.folder);
    assert_string_equal(p->seeds[0].mailbox.password_file, SRC "/tests/plans/keys/imap-password");
    assert_string_equal(p->seeds[0].inbox, "INBOX");
    assert_string_equal(p->seeds[0].junk, "[Gmail]/Spam");
    assert_string_equal(p->seeds[1].address, "seed.two@outlook.com");
    assert_int_equal(p->seeds[1].mailbox.tls, PLAN_MAILBOX_TLS_NONE);
    assert_string_equal(p->seeds[1].inbox, "INBOX");
    assert_null(p->seeds[1].junk);
    plan_free(p);
}

static void test_absent_and_defaults(void **state)
{
    (void)state;
    struct plan *p = load_ok(BASE);
    assert_false(p->feedback.enabled);
    assert_null(p->feedback.mailbox.url);
    assert_int_equal(p->n_seeds, 0);
    plan_free(p);

    p = load_ok(BASE "feedback:\n" MAILBOX);
    const struct plan_feedback *f = &p->feedback;
    assert_true(f->enabled);
    assert_false(f->verp);
    assert_int_equal(f->poll_every_ms, 5 * 60 * 1000);
    assert_true(f->complaint_rate_above_pct > 0.2999 && f->complaint_rate_above_pct < 0.3001);
    assert_int_equal(f->complaint_min_delivered, 300);
    assert_int_equal(f->complaint_action, PLAN_COMPLAINT_SUSPEND);
    assert_int_equal(f->complaint_for_ms, 24 * 3600 * 1000);
    assert_null(f->feedback_id);
    assert_null(f->mailbox.folder);
    assert_int_equal(f->mailbox.tls, PLAN_MAILBOX_TLS_REQUIRED);
    plan_free(p);
}

static void test_urls(void **state)
{
    (void)state;
    /* a folder in the URL is percent-decoded (RFC 5092) */
    struct plan *p = load_ok(BASE "feedback:\n  mailbox: {url: "
                                  "\"imaps://imap.example.com:993/%5BGmail%5D%2FSpam\", username: "
                                  "u, password_env: PW}\n");
    assert_string_equal(p->feedback.mailbox.folder, "[Gmail]/Spam");
    plan_free(p);
    /* plain IMAP to this machine, STARTTLS elsewhere */
    p = load_ok(BASE "feedback:\n  mailbox: {url: \"imap://localhost:10143/INBOX\", username: u, "
                     "password_env: PW, tls: none}\n");
    assert_int_equal(p->feedback.mailbox.tls, PLAN_MAILBOX_TLS_NONE);
    plan_free(p);
    p = load_ok(BASE "feedback:\n  mailbox: {url: \"imap://[::1]:143\", username: u, "
                     "password_env: PW, tls: none}\n");
    plan_free(p);
    p = load_ok(BASE "feedback:\n  mailbox: {url: \"imap://imap.example.com\", username: u, "
                     "password_env: PW}\n");
    assert_int_equal(p->feedback.mailbox.tls, PLAN_MAILBOX_TLS_REQUIRED);
    plan_free(p);

    refused(BASE "feedback:\n  mailbox: {url: \"imaps://imap.example.com/INBOX;UID=4\", "
                 "username: u, password_env: PW}\n",
            "t.yaml:7:18: feedback.mailbox.url: a mailbox URL names a server and a folder only");
    refused(BASE "feedback:\n  mailbox: {url: \"imaps://imap.example.com/%4\", username: u, "
                 "password_env: PW}\n",
            "feedback.mailbox.url: the folder in the URL has a bad %XX escape");
    refused(BASE "feedback:\n  mailbox: {url: \"imaps://u@imap.example.com/\", username: u, "
                 "password_env: PW}\n",
            "put the login in username, not in the URL");
    refused(BASE "feedback:\n  mailbox: {url: \"imaps://imap.example.com:99999\", username: u, "
                 "password_env: PW}\n",
            "feedback.mailbox.url: expected an imaps:// or imap:// URL");
}

static void test_refusals(void **state)
{
    (void)state;
    refused(BASE "feedback:\n" MAILBOX "  complaints: {action: suspend, rate: 2/min}\n",
            "t.yaml:8:39: feedback.complaints.rate: a rate goes with action: throttle");
    refused(BASE "feedback:\n" MAILBOX "  complaints: {rate_above: 0%}\n",
            "feedback.complaints.rate_above: expected a percentage > 0");
    refused(BASE "feedback:\n" MAILBOX "  feedback_id: \"{{campaign}}:\"\n",
            "feedback.feedback_id: expected a sender id after the last ':'");
    refused(BASE "feedback:\n" MAILBOX "  feedback_id: \"{{campaign:x\"\n",
            "feedback.feedback_id: unterminated placeholder");
    refused(BASE "feedback:\n  mailbox: {url: imaps://h.example.com, username: u, password_env: "
                 "PW, password_file: ../../plans/keys/imap-password}\n",
            "feedback.mailbox.password_file: expected password_env or password_file, found both");
    refused(BASE "feedback:\n  mailbox: {url: imaps://h.example.com, username: u, password_env: "
                 "1PW}\n",
            "feedback.mailbox.password_env: expected the name of an environment variable");
    /* a password or an OAuth 2.0 token, from one place */
    refused(BASE "feedback:\n  mailbox: {url: imaps://h.example.com, username: u, password_env: "
                 "PW, oauth2_token_env: TOK}\n",
            "t.yaml:7:90: feedback.mailbox.oauth2_token_env: a mailbox logs in with a password or "
            "with an OAuth 2.0 token: expected password_env, password_file, oauth2_token_env or "
            "oauth2_token_file, found oauth2_token_env beside password_env");
    refused(BASE "seeds:\n  - {address: s@example.com, url: imaps://imap.example.com, username: s, "
                 "oauth2_token_env: TOK, oauth2_token_file: ../message.txt}\n",
            "seeds[0].oauth2_token_file: expected oauth2_token_env or oauth2_token_file, found "
            "both");
    refused(BASE "seeds:\n  - {address: s@example.com, url: imaps://imap.example.com, username: s, "
                 "password_file: ../message.txt, oauth2_token_file: ../message.txt}\n",
            "seeds[0].oauth2_token_file: a mailbox logs in with a password or with an OAuth 2.0 "
            "token");
    refused(BASE "feedback:\n  mailbox: {url: imaps://h.example.com, username: u, "
                 "oauth2_token_env: 1TOK}\n",
            "feedback.mailbox.oauth2_token_env: expected the name of an environment variable");
    /* VERP needs a dot-atom return path */
    refused("campaign: t\nsource: {ip: 192.0.2.1, helo: mx.example.com}\n"
            "sender: {from: news@example.com, return_path: '\"b b\"@example.com'}\n"
            "message: {subject: Hi, text_file: ../message.txt}\n"
            "recipients: {file: ../seeds.csv}\nfeedback:\n" MAILBOX "  verp: yes\n",
            "feedback.verp: expected a return path whose local part is a dot-atom");
    /* a seed is a mailbox too */
    refused(BASE
            "seeds:\n  - {address: s@example.com, url: imaps://imap.example.com, username: s}\n",
            "seeds[0].password_env: expected password_env or password_file");
    refused(BASE
            "seeds:\n  - {address: not-an-address, url: imaps://imap.example.com, username: s, "
            "password_env: PW}\n",
            "seeds[0].address: expected an address such as user@example.com");
    refused(BASE "seeds:\n  - {address: s@example.com, url: imaps://imap.example.com, username: s, "
                 "password_env: PW, folders: {junk: \"\"}}\n",
            "seeds[0].folders.junk: expected a folder name");
    refused(BASE "seeds:\n  - just-a-string\n", "t.yaml:7:5: seeds[0]: expected a mapping");
}

/* advance_if.complaint_rate_below: off by default; given plan-wide it reaches every provider's
 * effective ramp, and a provider's own value wins. */
/* oauth2_token_env / oauth2_token_file instead of a password, for a mailbox and a seed; the file
 * is relative to the plan */
static void test_oauth2(void **state)
{
    (void)state;
    struct plan *p =
        load_ok(BASE "feedback:\n  mailbox: {url: imaps://outlook.office365.com, "
                     "username: b@example.com, oauth2_token_env: IPW_TOK}\n"
                     "seeds:\n  - {address: s@example.com, url: imaps://i.example.com, "
                     "username: s, oauth2_token_file: ../message.txt}\n");
    const struct plan_mailbox *m = &p->feedback.mailbox;
    assert_string_equal(m->oauth2_token_env, "IPW_TOK");
    assert_null(m->oauth2_token_file);
    assert_null(m->password_env);
    assert_null(m->password_file);
    assert_int_equal(p->n_seeds, 1);
    m = &p->seeds[0].mailbox;
    assert_null(m->oauth2_token_env);
    assert_non_null(m->oauth2_token_file);
    assert_true(m->oauth2_token_file[0] == '/');
    assert_non_null(strstr(m->oauth2_token_file, "/tests/plans/message.txt"));
    assert_null(m->password_env);
    plan_free(p);
}

static void test_complaint_gate(void **state)
{
    (void)state;
    struct plan *p = load_ok(BASE "feedback:\n" MAILBOX);
    for (size_t i = 0; i < p->n_providers; i++)
        assert_false(p->providers[i].ramp.complaint_gate);
    plan_free(p);
    p = load_ok(BASE "ramp: {advance_if: {complaint_rate_below: 0.1%}}\n"
                     "providers:\n"
                     "  - {name: gmail, ramp: {advance_if: {complaint_rate_below: 0.05%}}}\n"
                     "feedback:\n" MAILBOX);
    assert_true(p->ramp.complaint_gate);
    size_t checked = 0;
    for (size_t i = 0; i < p->n_providers; i++) {
        const struct plan_ramp *r = &p->providers[i].ramp;
        assert_true(r->complaint_gate);
        double want = strcmp(p->providers[i].name, "gmail") == 0 ? 0.05 : 0.1;
        assert_true(r->complaint_below_pct > want - 1e-9 && r->complaint_below_pct < want + 1e-9);
        checked++;
    }
    assert_true(checked > 1);
    plan_free(p);
    refused(BASE "ramp: {advance_if: {complaint_rate_below: 101%}}\n",
            "ramp.advance_if.complaint_rate_below");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plan),      cmocka_unit_test(test_absent_and_defaults),
        cmocka_unit_test(test_urls),           cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_complaint_gate), cmocka_unit_test(test_oauth2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
