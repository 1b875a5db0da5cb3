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
#include <stdbool.h>
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

static void server_start_listeners(struct fixture *f, const char *listeners);

/* Starts smtpd.py with one listener (keys given) on f->port; waits for its ready file. */
static void server_start(struct fixture *f, const char *listener_json)
{
    f->port = free_port();
    size_t n = strlen(listener_json) + 128;
    char *l = malloc(n);
    assert_non_null(l);
    snprintf(l, n, "[{\"name\": \"t\", \"host\": \"127.0.0.1\", \"port\": %d, %s}]", f->port,
             listener_json);
    server_start_listeners(f, l);
    free(l);
}

/* Starts smtpd.py with the listeners JSON array given; waits for its ready file. */
static void server_start_listeners(struct fixture *f, const char *listeners)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/ipwarm-smtp-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->log, sizeof f->log, "%s/log.jsonl", f->dir);
    char cfg[256], ready[128];
    snprintf(cfg, sizeof cfg, "%s/config.json", f->dir);
    snprintf(ready, sizeof ready, "%s/ready", f->dir);
    FILE *c = fopen(cfg, "w");
    assert_non_null(c);
    fprintf(c,
            "{\"log\": \"%s\", \"maildir\": \"%s/mail\", \"ready_file\": \"%s\",\n"
            " \"listeners\": %s}\n",
            f->log, f->dir, ready, listeners);
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

/* Results in the order they arrived. */
struct arrivals {
    int n;
    struct smtp_result r[8];
    char reply[8][512];
    char rcpt[8][64];
};

static void arrive(const struct smtp_result *r, void *arg)
{
    struct arrivals *a = arg;
    if (!a || a->n >= 8)
        return;
    a->r[a->n] = *r;
    snprintf(a->reply[a->n], sizeof a->reply[a->n], "%s", r->reply ? r->reply : "");
    a->r[a->n].reply = a->reply[a->n];
    snprintf(a->rcpt[a->n], sizeof a->rcpt[a->n], "%s", (const char *)r->user);
    a->n++;
}

static struct smtp_job job_to(int port, const char *rcpt, int64_t command_ms)
{
    struct smtp_job job = {
        .host = "localhost",
        .port = port,
        .connect_ip = "127.0.0.1",
        .helo = "mx1.example.com",
        .tls = PLAN_TLS_OPPORTUNISTIC,
        .tls_min = PLAN_TLS_1_2,
        .connect_timeout_ms = 5000,
        .command_timeout_ms = command_ms,
        .mail_from = "bounces@example.com",
        .rcpt = rcpt,
        .data = message,
        .len = sizeof message - 1,
        .user = (void *)rcpt,
    };
    return job;
}

/* Drives s until want results arrived (or 60 s passed, which fails the test). */
static void collect_n(struct smtp *s, struct arrivals *a, int want)
{
    time_t t0 = time(NULL);
    while (a->n < want && time(NULL) - t0 < 60)
        smtp_perform(s, 200, arrive, a);
    assert_int_equal(a->n, want);
}

/* A server that stalls after the final dot stalls only its own transaction (libcurl 7.88
 * waits for that reply in a blocking call); when it never answers, the message's fate is
 * unknown, not failed, since the server may have taken it. */
static void test_smtp_tarpit_after_dot_blocks_nobody(void **state)
{
    struct fixture *f = *state;
    f->port = free_port();
    char listeners[512];
    snprintf(listeners, sizeof listeners,
             "[{\"name\": \"slow\", \"host\": \"127.0.0.1\", \"port\": %d, "
             "\"delay_ms\": {\"data\": 60000}},"
             " {\"name\": \"quick\", \"host\": \"127.0.0.1\", \"port\": %d}]",
             f->port, f->port + 1);
    server_start_listeners(f, listeners);
    struct err e;
    struct smtp *s = smtp_new(4, &e);
    assert_non_null(s);
    struct smtp_job slow = job_to(f->port, "slow@example.net", 6000);
    assert_int_equal(smtp_submit(s, &slow, &e), IPW_OK);
    /* The quick one starts once the slow one is waiting for its final reply. */
    time_t t0 = time(NULL);
    for (;;) {
        char *log = slurp(f->log);
        bool dot = strstr(log, "\"text\": \"354") != NULL;
        free(log);
        if (dot || time(NULL) - t0 > 30)
            break;
        smtp_perform(s, 50, arrive, NULL);
    }
    struct smtp_job quick = job_to(f->port + 1, "quick@example.net", 6000);
    assert_int_equal(smtp_submit(s, &quick, &e), IPW_OK);
    struct arrivals a = {0};
    collect_n(s, &a, 2);
    smtp_free(s);
    assert_string_equal(a.rcpt[0], "quick@example.net");
    assert_true(a.r[0].delivered);
    assert_string_equal(a.rcpt[1], "slow@example.net");
    assert_false(a.r[1].delivered);
    assert_true(a.r[1].unknown);
    assert_int_equal(a.r[1].code, 0);
    assert_string_equal(smtp_phase_name(a.r[1].phase), "data");
    assert_non_null(strstr(a.r[1].error, "command timeout"));
}

/* A server that drops a kept connection just as it is reused costs nothing: the message goes
 * out on a new connection and nobody sees a failure. */
static void test_smtp_reused_connection_dropped(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"close_on_reuse\": true");
    struct err e;
    struct smtp *s = smtp_new(1, &e);
    assert_non_null(s);
    struct arrivals a = {0};
    struct smtp_job j1 = job_to(f->port, "one@example.net", 5000);
    assert_int_equal(smtp_submit(s, &j1, &e), IPW_OK);
    collect_n(s, &a, 1);
    struct smtp_job j2 = job_to(f->port, "two@example.net", 5000);
    assert_int_equal(smtp_submit(s, &j2, &e), IPW_OK);
    collect_n(s, &a, 2);
    smtp_free(s);
    assert_true(a.r[0].delivered);
    assert_true(a.r[1].delivered);
    char *log = slurp(f->log);
    /* The second message did try the kept connection first. */
    assert_non_null(strstr(log, "close-on-reuse"));
    size_t connects = 0;
    for (const char *p = log; (p = strstr(p, "\"ev\": \"connect\"")); p++)
        connects++;
    assert_int_equal(connects, 2);
    free(log);
}

/* The same destination reuses one connection: two messages, one EHLO. */
static void test_smtp_connection_reused(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"hostname\": \"mx.test\"");
    struct err e;
    struct smtp *s = smtp_new(1, &e);
    assert_non_null(s);
    struct arrivals a = {0};
    struct smtp_job j1 = job_to(f->port, "one@example.net", 5000);
    assert_int_equal(smtp_submit(s, &j1, &e), IPW_OK);
    collect_n(s, &a, 1);
    struct smtp_job j2 = job_to(f->port, "two@example.net", 5000);
    assert_int_equal(smtp_submit(s, &j2, &e), IPW_OK);
    collect_n(s, &a, 2);
    smtp_free(s);
    assert_true(a.r[0].delivered && a.r[1].delivered);
    char *log = slurp(f->log);
    size_t ehlo = 0;
    for (const char *p = log; (p = strstr(p, "\"line\": \"EHLO")); p++)
        ehlo++;
    assert_int_equal(ehlo, 1);
    /* smtp_free said goodbye. */
    assert_non_null(strstr(log, "\"line\": \"QUIT\""));
    free(log);
}

/* A login never goes out in clear: a server that offers AUTH without STARTTLS gets neither the
 * AUTH command nor the message, and the reason says why. */
static void test_smtp_auth_never_in_clear(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"auth\": {\"user\": \"warmup\", \"password\": \"s3cret-pw\"}");
    struct err e;
    struct smtp *s = smtp_new(1, &e);
    assert_non_null(s);
    struct smtp_job j = job_to(f->port, "one@example.net", 5000);
    j.username = "warmup";
    j.password = "s3cret-pw";
    assert_int_equal(smtp_submit(s, &j, &e), IPW_OK);
    struct arrivals a = {0};
    collect_n(s, &a, 1);
    smtp_free(s);
    assert_false(a.r[0].delivered);
    assert_int_equal(a.r[0].code, 0);
    assert_string_equal(smtp_phase_name(a.r[0].phase), "starttls");
    assert_non_null(strstr(a.r[0].error, "never sent in clear"));
    char *log = slurp(f->log);
    assert_null(strstr(log, "\"line\": \"AUTH"));
    assert_null(strstr(log, "MAIL FROM"));
    free(log);
}

/* smtp_abort ends a transaction at once, whatever the server does; one that never reached
 * DATA is not unknown. */
static void test_smtp_abort(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"delay_ms\": {\"greeting\": 60000}");
    struct err e;
    struct smtp *s = smtp_new(1, &e);
    assert_non_null(s);
    struct smtp_job j = job_to(f->port, "one@example.net", 120000);
    assert_int_equal(smtp_submit(s, &j, &e), IPW_OK);
    /* Connected and waiting for the greeting. */
    time_t t0 = time(NULL);
    for (;;) {
        char *log = slurp(f->log);
        bool connected = strstr(log, "\"ev\": \"connect\"") != NULL;
        free(log);
        if (connected || time(NULL) - t0 > 30)
            break;
        smtp_perform(s, 50, arrive, NULL);
    }
    smtp_abort(s);
    struct arrivals a = {0};
    time_t t1 = time(NULL);
    collect_n(s, &a, 1);
    assert_true(time(NULL) - t1 < 30);
    smtp_free(s);
    assert_true(a.r[0].aborted);
    assert_false(a.r[0].unknown);
    assert_false(a.r[0].delivered);
    assert_int_equal(a.r[0].code, 0);
}

/* A server that takes the whole message, final dot included, and closes without a reply may
 * have taken it: unknown, never a plain failure to retry. */
static void test_smtp_close_after_dot_is_unknown(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"close_after_dot\": true");
    struct err e;
    struct smtp *s = smtp_new(1, &e);
    assert_non_null(s);
    struct smtp_job j = job_to(f->port, "one@example.net", 10000);
    assert_int_equal(smtp_submit(s, &j, &e), IPW_OK);
    struct arrivals a = {0};
    collect_n(s, &a, 1);
    smtp_free(s);
    assert_false(a.r[0].delivered);
    assert_true(a.r[0].unknown);
    assert_int_equal(a.r[0].code, 0);
    assert_string_equal(smtp_phase_name(a.r[0].phase), "data");
}

/* A server that closes right after its 354, while a message too big for the socket buffers is
 * still going out: the dot never left, so the server cannot have the message: a plain
 * failure, retried later, not unknown. */
static void test_smtp_close_before_dot_is_failed(void **state)
{
    struct fixture *f = *state;
    server_start(f, "\"close_in_data\": 0");
    size_t big = 16 * 1024 * 1024;
    char *data = malloc(big);
    assert_non_null(data);
    static const char head[] = "Subject: big\r\n\r\n";
    memcpy(data, head, sizeof head - 1);
    for (size_t i = sizeof head - 1; i + 2 <= big; i += 80) {
        size_t n = big - i < 80 ? big - i : 80;
        memset(data + i, 'x', n - 2);
        data[i + n - 2] = '\r';
        data[i + n - 1] = '\n';
    }
    struct err e;
    struct smtp *s = smtp_new(1, &e);
    assert_non_null(s);
    struct smtp_job j = job_to(f->port, "one@example.net", 10000);
    j.data = data;
    j.len = big;
    assert_int_equal(smtp_submit(s, &j, &e), IPW_OK);
    struct arrivals a = {0};
    collect_n(s, &a, 1);
    smtp_free(s);
    free(data);
    assert_false(a.r[0].delivered);
    assert_false(a.r[0].unknown);
    assert_int_equal(a.r[0].code, 0);
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
        cmocka_unit_test_setup_teardown(test_smtp_tls_required_but_not_offered, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_tls_version_too_old, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_tarpit_after_dot_blocks_nobody, setup,
                                        server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_reused_connection_dropped, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_connection_reused, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_auth_never_in_clear, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_abort, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_close_after_dot_is_unknown, setup, server_stop),
        cmocka_unit_test_setup_teardown(test_smtp_close_before_dot_is_failed, setup, server_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
