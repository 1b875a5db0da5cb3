/*
 * Integration tests of smtp.c against a real SMTP server on loopback: tests/servers/smtpd.py,
 * started and stopped here. Each test asserts what the module reports (phase, code, full reply
 * text, delivered) and the dialogue the server logged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipwarm/smtp.h"

struct fixture {
    char dir[64];
    char log[128];
    pid_t pid;
    int port;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(1, (size_t)n + 1);
    if (n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n)
        s[0] = '\0';
    fclose(f);
    return s;
}

static int free_port(void)
{
    /* Ports in a range no system service uses, varied per process to let suites run in
     * parallel. */
    return 20000 + (int)(getpid() % 20000);
}

/* Starts smtpd.py with the listener JSON given; waits for its ready file. */
static void server_start(struct fixture *f, const char *listener_json)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/ipwarm-smtp-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->log, sizeof f->log, "%s/log.jsonl", f->dir);
    char cfg[256], ready[128];
    snprintf(cfg, sizeof cfg, "%s/config.json", f->dir);
    snprintf(ready, sizeof ready, "%s/ready", f->dir);
    f->port = free_port();
    FILE *c = fopen(cfg, "w");
    assert_non_null(c);
    fprintf(c,
            "{\"log\": \"%s\", \"maildir\": \"%s/mail\", \"ready_file\": \"%s\",\n"
            " \"listeners\": [{\"name\": \"t\", \"host\": \"127.0.0.1\", \"port\": %d, %s}]}\n",
            f->log, f->dir, ready, f->port, listener_json);
    fclose(c);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        char script[512];
        snprintf(script, sizeof script, "%s/tests/servers/smtpd.py", IPWARM_SOURCE_DIR);
        execl("/usr/bin/python3", "python3", script, cfg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        struct stat st;
        if (stat(ready, &st) == 0)
            return;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("smtpd.py did not start");
}

static int server_stop(void **state)
{
    struct fixture *f = *state;
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static int setup(void **state)
{
    *state = calloc(1, sizeof(struct fixture));
    return *state ? 0 : -1;
}

struct collected {
    int n;
    struct smtp_result r;
    char reply[4096];
};

static void collect(const struct smtp_result *r, void *arg)
{
    struct collected *c = arg;
    c->n++;
    c->r = *r;
    snprintf(c->reply, sizeof c->reply, "%s", r->reply ? r->reply : "");
    c->r.reply = c->reply;
}

static const char message[] = "From: <a@example.com>\r\nTo: <b@example.net>\r\n"
                              "Subject: t\r\n\r\nline one\r\n.starts with a dot\r\n";

static void send_tls(struct fixture *f, const char *rcpt, enum plan_tls tls,
                     enum plan_tls_version min, struct collected *out);

static void send_one(struct fixture *f, const char *rcpt, struct collected *out)
{
    send_tls(f, rcpt, PLAN_TLS_OPPORTUNISTIC, PLAN_TLS_1_2, out);
}

static void send_tls(struct fixture *f, const char *rcpt, enum plan_tls tls,
                     enum plan_tls_version min, struct collected *out)
{
    struct err e;
    struct smtp *s = smtp_new(2, &e);
    assert_non_null(s);
    struct smtp_job job = {
        .host = "localhost",
        .port = f->port,
        .connect_ip = "127.0.0.1",
        .helo = "mx1.example.com",
        .tls = tls,
        .tls_min = min,
        .connect_timeout_ms = 5000,
        .command_timeout_ms = 5000,
        .mail_from = "bounces@example.com",
        .rcpt = rcpt,
        .data = message,
        .len = sizeof message - 1,
    };
    assert_int_equal(smtp_submit(s, &job, &e), IPW_OK);
    time_t t0 = time(NULL);
    while (smtp_perform(s, 200, collect, out) > 0 && time(NULL) - t0 < 20)
        ;
    smtp_free(s);
    assert_int_equal(out->n, 1);
}

static void test_smtp_delivers_and_logs_dialogue(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"hostname\": \"mx.test\", \"size\": 1000000");
    struct collected c = {0};
    send_one(f, "b@example.net", &c);
    assert_true(c.r.delivered);
    assert_int_equal(c.r.code, 250);
    assert_string_equal(smtp_phase_name(c.r.phase), "data");
    assert_string_equal(c.reply, "250 2.0.0 OK queued");
    char *log = slurp(f->log);
    assert_non_null(strstr(log, "\"line\": \"EHLO mx1.example.com\""));
    char expect[128];
    snprintf(expect, sizeof expect, "\"line\": \"MAIL FROM:<bounces@example.com> SIZE=%zu\"",
             sizeof message - 1);
    assert_non_null(strstr(log, expect));
    assert_non_null(strstr(log, "\"line\": \"RCPT TO:<b@example.net>\""));
    assert_non_null(strstr(log, "\"ev\": \"message\""));
    free(log);
    /* The line that starts with a dot arrived unchanged (libcurl stuffed it, the server
     * unstuffed it). */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -qx '.starts with a dot.' %s/mail/*.eml", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_smtp_rcpt_bounce_keeps_phase_and_text(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"recipients\": {\"^nobody@\": \"550 5.1.1 <nobody@example.net>: "
                    "Recipient address rejected: User unknown\"}");
    struct collected c = {0};
    send_one(f, "nobody@example.net", &c);
    assert_false(c.r.delivered);
    assert_int_equal(c.r.code, 550);
    assert_string_equal(smtp_phase_name(c.r.phase), "rcpt");
    assert_string_equal(c.reply,
                        "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown");
}

static void test_smtp_multiline_throttle_joined(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"rate_per_min\": 1, \"throttle\": \"421-4.7.28 [127.0.0.1] Our system has "
                    "detected an unusual rate of\\n421-4.7.28 unsolicited mail originating from "
                    "your IP address.\\n421 4.7.28 To protect our users, temporarily rate "
                    "limited.\"");
    struct collected c1 = {0}, c2 = {0};
    send_one(f, "b@example.net", &c1);
    assert_true(c1.r.delivered);
    send_one(f, "b@example.net", &c2);
    assert_false(c2.r.delivered);
    assert_int_equal(c2.r.code, 421);
    assert_string_equal(smtp_phase_name(c2.r.phase), "mail");
    assert_string_equal(c2.reply,
                        "421-4.7.28 [127.0.0.1] Our system has detected an unusual rate of\n"
                        "421-4.7.28 unsolicited mail originating from your IP address.\n"
                        "421 4.7.28 To protect our users, temporarily rate limited.");
}

static void test_smtp_greeting_refused(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"greeting\": \"421 4.3.2 Service not available, closing channel\"");
    struct collected c = {0};
    send_one(f, "b@example.net", &c);
    assert_false(c.r.delivered);
    assert_int_equal(c.r.code, 421);
    assert_string_equal(smtp_phase_name(c.r.phase), "connect");
    assert_string_equal(c.reply, "421 4.3.2 Service not available, closing channel");
}

static void test_smtp_connection_refused(void **state)
{
    struct fixture *f = *state;
    f->port = free_port() + 1; /* nothing listens there */
    struct collected c = {0};
    send_one(f, "b@example.net", &c);
    assert_false(c.r.delivered);
    assert_int_equal(c.r.code, 0);
    assert_string_equal(smtp_phase_name(c.r.phase), "connect");
    assert_true(c.r.curl_code != 0);
    assert_true(strlen(c.r.error) > 0);
}

/* Writes a self-signed certificate for mx.test into the fixture's directory. */
static void make_cert(struct fixture *f)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=mx.test -days 2 "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             f->dir, f->dir);
    assert_int_equal(system(cmd), 0);
}

static void server_start_tls(struct fixture *f, const char *tls_min, const char *tls_max)
{
    /* The certificate must exist before the server reads its configuration, so make the
     * directory first and let server_start reuse the path. */
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/ipwarm-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct fixture tmp = *f;
    snprintf(tmp.dir, sizeof tmp.dir, "%s", dir);
    make_cert(&tmp);
    char json[512];
    snprintf(json, sizeof json,
             "\"starttls\": {\"cert\": \"%s/cert.pem\", \"key\": \"%s/key.pem\", \"min\": \"%s\", "
             "\"max\": \"%s\"}",
             dir, dir, tls_min, tls_max);
    server_start(f, json);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mv %s/cert.pem %s/key.pem %s/ && rmdir %s", dir, dir, f->dir, dir);
    assert_int_equal(system(cmd), 0);
}

static void test_smtp_starttls_opportunistic(void **state)
{
    struct fixture *f = *state;
    server_start_tls(f, "1.2", "1.3");
    struct collected c = {0};
    send_tls(f, "b@example.net", PLAN_TLS_OPPORTUNISTIC, PLAN_TLS_1_2, &c);
    assert_true(c.r.delivered);
    assert_true(c.r.tls);
    assert_string_equal(c.r.tls_version, "TLSv1.3");
    char *log = slurp(f->log);
    assert_non_null(strstr(log, "\"line\": \"STARTTLS\""));
    assert_non_null(strstr(log, "\"ev\": \"tls\""));
    free(log);
}

static void test_smtp_tls_required_but_not_offered(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"hostname\": \"mx.test\"");
    struct collected c = {0};
    send_tls(f, "b@example.net", PLAN_TLS_REQUIRED, PLAN_TLS_1_2, &c);
    assert_false(c.r.delivered);
    assert_false(c.r.tls);
    assert_string_equal(smtp_phase_name(c.r.phase), "starttls");
    assert_int_equal(c.r.code, 0);
    char *log = slurp(f->log);
    assert_null(strstr(log, "MAIL FROM"));
    free(log);
}

static void test_smtp_tls_version_too_old(void **state)
{
    struct fixture *f = *state;
    server_start_tls(f, "1.1", "1.1");
    struct collected c = {0};
    send_tls(f, "b@example.net", PLAN_TLS_REQUIRED, PLAN_TLS_1_2, &c);
    assert_false(c.r.delivered);
    assert_string_equal(smtp_phase_name(c.r.phase), "starttls");
    assert_int_equal(c.r.code, 0);
    assert_true(strlen(c.r.error) > 0);
    char *log = slurp(f->log);
    assert_null(strstr(log, "MAIL FROM"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_smtp_delivers_and_logs_dialogue, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_rcpt_bounce_keeps_phase_and_text, setup,
                                        server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_multiline_throttle_joined, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_greeting_refused, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_connection_refused, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_starttls_opportunistic, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_tls_required_but_not_offered, setup,
                                        server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_tls_version_too_old, setup, server_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
