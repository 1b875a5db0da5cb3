/*
 * test_imap_token: reading a mailbox's OAuth 2.0 access token (imap_token_read) and password
 * (imap_password_read). A token file's line end is not part of the token, a token longer than a
 * password (a JWT of a few KiB) is read whole, an empty or unset variable and an empty file are
 * refused with a sentence naming the plan key, and no sentence ever holds the secret.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipwarm/imap.h"

#define KEY "seeds[1].oauth2_token_file (mailbox imaps://imap.example.com, user s)"

static char path[64];

static void write_file(const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/ipwarm-token-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void test_file(void **state)
{
    (void)state;
    char *t = NULL;
    struct err e;
    write_file("ya29.a0-tok_en~1/+=\n", 20);
    assert_int_equal(imap_token_read(NULL, path, KEY, &t, &e), IPW_OK);
    assert_string_equal(t, "ya29.a0-tok_en~1/+=");
    imap_password_free(t);
    /* CRLF and trailing blanks a helper may leave; a second line is not read */
    write_file("abc.def \t\r\nsecond line\n", 23);
    assert_int_equal(imap_token_read(NULL, path, KEY, &t, &e), IPW_OK);
    assert_string_equal(t, "abc.def");
    imap_password_free(t);
    /* rewritten between two reads: the new token */
    write_file("rotated", 7);
    assert_int_equal(imap_token_read(NULL, path, KEY, &t, &e), IPW_OK);
    assert_string_equal(t, "rotated");
    imap_password_free(t);
}

static void test_long_token(void **state)
{
    (void)state;
    size_t n = 6000; /* longer than any password: a JWT */
    char *big = malloc(n + 2);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\n';
    big[n + 1] = '\0';
    write_file(big, n + 1);
    char *t = NULL;
    struct err e;
    assert_int_equal(imap_token_read(NULL, path, KEY, &t, &e), IPW_OK);
    assert_int_equal(strlen(t), n);
    assert_memory_equal(t, big, n);
    imap_password_free(t);
    free(big);
}

static void test_refusals(void **state)
{
    (void)state;
    char *t = NULL;
    struct err e;
    write_file("\n", 1);
    assert_int_equal(imap_token_read(NULL, path, KEY, &t, &e), IPW_ECONFIG);
    assert_null(t);
    assert_non_null(strstr(e.msg, KEY ": "));
    assert_non_null(strstr(e.msg, "is empty: expected the OAuth 2.0 access token"));

    write_file("two words\n", 10);
    assert_int_equal(imap_token_read(NULL, path, KEY, &t, &e), IPW_ECONFIG);
    assert_null(t);
    assert_null(strstr(e.msg, "two words"));
    assert_non_null(strstr(e.msg, "expected a bearer access token"));

    setenv("IPWARM_TEST_TOKEN", "", 1);
    assert_int_equal(
        imap_token_read("IPWARM_TEST_TOKEN", NULL, "feedback.mailbox.oauth2_token_env", &t, &e),
        IPW_ECONFIG);
    assert_string_equal(e.msg, "feedback.mailbox.oauth2_token_env: the environment variable "
                               "IPWARM_TEST_TOKEN is empty: expected the mailbox OAuth 2.0 "
                               "access token");
    unsetenv("IPWARM_TEST_TOKEN");
    assert_int_equal(imap_token_read("IPWARM_TEST_TOKEN", NULL, "k", &t, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "IPWARM_TEST_TOKEN is not set"));

    setenv("IPWARM_TEST_TOKEN", "env-token-42", 1);
    assert_int_equal(imap_token_read("IPWARM_TEST_TOKEN", NULL, "k", &t, &e), IPW_OK);
    assert_string_equal(t, "env-token-42");
    imap_password_free(t);
    unsetenv("IPWARM_TEST_TOKEN");

    unlink(path);
    assert_int_equal(imap_token_read(NULL, path, "k", &t, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "cannot read"));
}

/* the password reader keeps its own limits and sentences */
static void test_password(void **state)
{
    (void)state;
    char *t = NULL;
    struct err e;
    write_file("pass word \n", 11); /* a password may end with a blank: it is kept */
    assert_int_equal(imap_password_read(NULL, path, "k", &t, &e), IPW_OK);
    assert_string_equal(t, "pass word ");
    imap_password_free(t);
    write_file("\n", 1);
    assert_int_equal(imap_password_read(NULL, path, "k", &t, &e), IPW_ECONFIG);
    assert_non_null(strstr(e.msg, "is empty: expected the password on its first line"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
