/*
 * test_secret: credentials (secret.c). secret_mask removes what a server echoed of an AUTH
 * exchange (the PLAIN blob, a LOGIN or CRAM-MD5 argument, a base64 token that decodes to the
 * username or the password, the password in clear) and leaves ordinary reply text alone;
 * secret_password_read reads the first line of a password file or the environment, refuses a
 * FIFO without blocking; secret_file_warning names a world-readable file and its mode.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipwarm/secret.h"

/* secret_mask on a copy of in; returns the masked text (static) and the span count in *n. */
static const char *masked(const char *in, const char *user, const char *pw, size_t *n)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s", in);
    size_t k = secret_mask(buf, user, pw);
    if (n)
        *n = k;
    return buf;
}

/* The hostile relay of the finding: the AUTH PLAIN line echoed in a 535. base64 of
 * "\0email\0pass" is AGVtYWlsAHBhc3M=. */
static void test_secret_mask_auth_plain_echo(void **state)
{
    (void)state;
    size_t n;
    assert_string_equal(masked("5.7.8 AUTH PLAIN AGVtYWlsAHBhc3M= rejected", "email", "pass", &n),
                        "5.7.8 AUTH PLAIN *** rejected");
    assert_int_equal(n, 1);
    /* The AUTH rule needs no credentials to know the argument is one. */
    assert_string_equal(masked("5.7.8 auth plain AGVtYWlsAHBhc3M= rejected", NULL, NULL, &n),
                        "5.7.8 auth plain *** rejected");
}

/* AUTH LOGIN and CRAM-MD5 echoes, and a mechanism ipwarm does not use. */
static void test_secret_mask_other_mechanisms(void **state)
{
    (void)state;
    assert_string_equal(masked("500 unrecognised: AUTH LOGIN d2FybXVw", NULL, NULL, NULL),
                        "500 unrecognised: AUTH LOGIN ***");
    assert_string_equal(
        masked("535 AUTH CRAM-MD5 d2FybXVwIDVmNGRjYzNiNWFhNzY1ZDYxZDgzMjdkZWI4ODJjZjk5 failed",
               NULL, NULL, NULL),
        "535 AUTH CRAM-MD5 *** failed");
    assert_string_equal(masked("AUTH XOAUTH2 dXNlcj13YXJtdXAB", NULL, NULL, NULL),
                        "AUTH XOAUTH2 ***");
}

/* A base64 token anywhere that decodes to the username or the password: the PLAIN blob
 * without the AUTH words, base64("s3cret-pw") = czNjcmV0LXB3, base64("warmup") = d2FybXVw,
 * and a token with a letter stuck to its front (decoded from another alignment). */
static void test_secret_mask_base64_tokens(void **state)
{
    (void)state;
    size_t n;
    assert_string_equal(
        masked("535 5.7.8 credentials AGVtYWlsAHBhc3M= invalid", "email", "pass", &n),
        "535 5.7.8 credentials *** invalid");
    assert_string_equal(masked("535 bad password czNjcmV0LXB3", "warmup", "s3cret-pw", &n),
                        "535 bad password ***");
    assert_string_equal(masked("334 d2FybXVw?", "warmup", "s3cret-pw", &n), "334 ***?");
    assert_string_equal(masked("535 xczNjcmV0LXB3 no", "warmup", "s3cret-pw", &n), "535 *** no");
    /* Without the credentials the token means nothing: left alone. */
    assert_string_equal(masked("535 bad password czNjcmV0LXB3", NULL, NULL, &n),
                        "535 bad password czNjcmV0LXB3");
    assert_int_equal(n, 0);
}

/* The password in clear, wherever it is; a short one becomes as many stars. The username in
 * clear is not a secret (check names it). */
static void test_secret_mask_clear_password(void **state)
{
    (void)state;
    size_t n;
    assert_string_equal(
        masked("535 user warmup password s3cret-pw is wrong", "warmup", "s3cret-pw", &n),
        "535 user warmup password *** is wrong");
    assert_int_equal(n, 1);
    assert_string_equal(masked("535 x s3cret-pws3cret-pw y", NULL, "s3cret-pw", &n), "535 x *** y");
    assert_string_equal(masked("a pw b", NULL, "pw", &n), "a ** b");
}

/* Ordinary replies are not touched: words, queue ids, hosts, enhanced codes. */
static void test_secret_mask_leaves_replies(void **state)
{
    (void)state;
    const char *replies[] = {
        "535 5.7.8 Authentication credentials invalid",
        "250 2.0.0 OK  1733014803 q1-20020a05600c1d1200b0042cafd0e0d8si123456wmq.3 - gsmtp",
        "451 4.7.500 Server busy. Please try again later from [1.2.3.4]. (S77714)",
        "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred",
        "AUTHENTICATION PLAIN is not a command",
        "250-AUTH PLAIN LOGIN",
    };
    for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++) {
        size_t n;
        assert_string_equal(masked(replies[i], "warmup", "s3cret-pw", &n), replies[i]);
        assert_int_equal(n, 0);
    }
    size_t n;
    assert_string_equal(masked("", "u", "p", &n), "");
    assert_int_equal(n, 0);
}

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_secret.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

/* The first line of the file; the environment; what is refused, with the key named. */
static void test_secret_password_read(void **state)
{
    (void)state;
    char path[128], fifo[128];
    snprintf(path, sizeof path, "%s/pw", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    const char *key = "transport.relay.password_file";
    char *pw = NULL;
    struct err e;
    put(path, "s3cret-pw\r\nsecond line\n", 0600);
    assert_int_equal(secret_password_read(NULL, path, key, &pw, &e), IPW_OK);
    assert_string_equal(pw, "s3cret-pw");
    secret_free(pw);

    put(path, "\nlater\n", 0600);
    assert_int_equal(secret_password_read(NULL, path, key, &pw, &e), IPW_EDATA);
    assert_null(pw);
    assert_non_null(strstr(e.msg, "transport.relay.password_file: "));
    assert_non_null(strstr(e.msg, "its first line is empty"));

    /* A FIFO is refused at once (the test would hang here if it were opened for reading). */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10);
    assert_int_equal(secret_password_read(NULL, fifo, key, &pw, &e), IPW_ENOINPUT);
    alarm(0);
    assert_non_null(strstr(e.msg, "transport.relay.password_file: "));
    assert_non_null(strstr(e.msg, "/fifo is a FIFO (named pipe), not a regular file"));

    assert_int_equal(secret_password_read(NULL, "/nonexistent/pw", key, &pw, &e), IPW_ENOINPUT);
    assert_string_equal(
        e.msg,
        "transport.relay.password_file: cannot open /nonexistent/pw: No such file or directory");

    setenv("TEST_SECRET_PW", "from-env", 1);
    assert_int_equal(
        secret_password_read("TEST_SECRET_PW", NULL, "transport.relay.password_env", &pw, &e),
        IPW_OK);
    assert_string_equal(pw, "from-env");
    secret_free(pw);
    unsetenv("TEST_SECRET_PW");
    assert_int_equal(
        secret_password_read("TEST_SECRET_PW", NULL, "transport.relay.password_env", &pw, &e),
        IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "TEST_SECRET_PW is not set"));
}

/* A world-readable file is named with its mode; owner-only and owner-and-group are fine. */
static void test_secret_file_warning(void **state)
{
    (void)state;
    char path[128], warn[512];
    snprintf(path, sizeof path, "%s/pw", dir);
    const char *key = "transport.relay.password_file";
    put(path, "x\n", 0644);
    assert_true(secret_file_warning(path, key, warn, sizeof warn));
    char want[512];
    snprintf(want, sizeof want,
             "transport.relay.password_file: %s is readable by every user (mode 0644): chmod "
             "0600 it (or 0640 with the sending user's group)",
             path);
    assert_string_equal(warn, want);
    put(path, "x\n", 0666);
    assert_true(secret_file_warning(path, key, warn, sizeof warn));
    assert_non_null(strstr(warn, "readable and writable by every user (mode 0666)"));
    put(path, "x\n", 0600);
    assert_false(secret_file_warning(path, key, warn, sizeof warn));
    assert_string_equal(warn, "");
    put(path, "x\n", 0640);
    assert_false(secret_file_warning(path, key, warn, sizeof warn));
    assert_false(secret_file_warning("/nonexistent/pw", key, warn, sizeof warn));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_mask_auth_plain_echo),
        cmocka_unit_test(test_secret_mask_other_mechanisms),
        cmocka_unit_test(test_secret_mask_base64_tokens),
        cmocka_unit_test(test_secret_mask_clear_password),
        cmocka_unit_test(test_secret_mask_leaves_replies),
        cmocka_unit_test_setup_teardown(test_secret_password_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_file_warning, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
