/*
 * test_verp: VERP return paths (verp.c): made and read back, any case, refused when forged,
 * altered or made with another secret, and within RFC 5321's 64-octet local part.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ipwarm/verp.h"

static void secret(struct token_secret *s, const char *text)
{
    memset(s, 0, sizeof *s);
    s->len = strlen(text);
    memcpy(s->key, text, s->len);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct token_secret s;
    secret(&s, "0123456789abcdef0123456789abcdef");
    struct err e;
    const int64_t ids[] = {1, 2, 255, 256, 123456789, VERP_ID_MAX};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        char addr[128];
        assert_int_equal(verp_make(&s, "bounces@example.com", ids[i], addr, sizeof addr, &e),
                         IPW_OK);
        /* bounces+TOKEN@example.com: 24 characters of a-z2-7 */
        assert_int_equal(strlen(addr), strlen("bounces@example.com") + 1 + VERP_TOKEN_LEN);
        assert_memory_equal(addr, "bounces+", 8);
        assert_string_equal(addr + 8 + VERP_TOKEN_LEN, "@example.com");
        assert_int_equal(strspn(addr + 8, "abcdefghijklmnopqrstuvwxyz234567"), VERP_TOKEN_LEN);
        int64_t id = 0;
        assert_int_equal(verp_parse(&s, "bounces@example.com", addr, &id, &e), IPW_OK);
        assert_int_equal(id, ids[i]);
        /* an MTA that upper-cases the whole address */
        for (char *q = addr; *q; q++)
            *q = (char)(*q >= 'a' && *q <= 'z' ? *q - 32 : *q);
        id = 0;
        assert_int_equal(verp_parse(&s, "bounces@example.com", addr, &id, &e), IPW_OK);
        assert_int_equal(id, ids[i]);
    }
}

static void test_known_token(void **state)
{
    (void)state;
    /* Fixed: the token of id 1 with this secret must not change between versions (bounces of
     * mail sent before an upgrade still arrive afterwards). Independent computation:
     * HMAC-SHA256(key, "\x01ipwarm-verp\0" || 00 00 00 00 00 01), first 9 bytes, base32. */
    struct token_secret s;
    secret(&s, "0123456789abcdef0123456789abcdef");
    char token[VERP_TOKEN_LEN + 1];
    struct err e;
    assert_int_equal(verp_token(&s, 1, token, &e), IPW_OK);
    assert_string_equal(token, "aaaaaaaaafzrasmwoppeyma6");
}

static void test_refused(void **state)
{
    (void)state;
    struct token_secret s, other;
    secret(&s, "0123456789abcdef0123456789abcdef");
    secret(&other, "another secret of enough length");
    struct err e;
    char addr[128], token[VERP_TOKEN_LEN + 1];
    int64_t id = 0;
    assert_int_equal(verp_make(&s, "b@example.com", 42, addr, sizeof addr, &e), IPW_OK);
    assert_int_equal(verp_parse(&other, "b@example.com", addr, &id, &e), IPW_EDATA);
    assert_non_null(strstr(e.msg, "does not authenticate"));
    assert_int_equal(id, 0);

    /* every single-character change of the token is refused */
    memcpy(token, addr + 2, VERP_TOKEN_LEN);
    token[VERP_TOKEN_LEN] = '\0';
    for (size_t i = 0; i < VERP_TOKEN_LEN; i++) {
        char t[VERP_TOKEN_LEN + 1];
        memcpy(t, token, sizeof t);
        t[i] = t[i] == 'a' ? 'b' : 'a';
        assert_int_equal(verp_token_check(&s, t, &id, &e), IPW_EDATA);
    }
    /* the id bytes of another attempt with the old MAC: forged */
    char forged[VERP_TOKEN_LEN + 1];
    assert_int_equal(verp_token(&s, 43, forged, &e), IPW_OK);
    memcpy(forged + 10, token + 10, VERP_TOKEN_LEN - 10);
    assert_int_equal(verp_token_check(&s, forged, &id, &e), IPW_EDATA);

    assert_int_equal(verp_token_check(&s, "short", &id, &e), IPW_EDATA);
    assert_int_equal(verp_token_check(&s, "aaaaaaaaaaaaaaaaaaaaaaa1", &id, &e), IPW_EDATA);
    assert_false(verp_token_shaped("aaaaaaaaaaaaaaaaaaaaaaa1", 24));
    assert_true(verp_token_shaped("AAAAAAAAAAAAAAAAAAAAAAA7", 24));

    /* not a VERP address of this return path */
    assert_int_equal(verp_parse(&s, "b@example.com", "b@example.com", &id, &e), IPW_ENOTFOUND);
    assert_int_equal(
        verp_parse(&s, "b@example.com", "c+aaaaaaaaaaaaaaaaaaaaaaaa@example.com", &id, &e),
        IPW_ENOTFOUND);
    assert_int_equal(
        verp_parse(&s, "b@example.com", "b+aaaaaaaaaaaaaaaaaaaaaaaa@example.org", &id, &e),
        IPW_ENOTFOUND);
    assert_int_equal(
        verp_parse(&s, "b@example.com", "b-aaaaaaaaaaaaaaaaaaaaaaaa@example.com", &id, &e),
        IPW_ENOTFOUND);
    assert_int_equal(
        verp_parse(&s, "b@example.com", "b+aaaaaaaaaaaaaaaaaaaaaaaa@example.com", &id, &e),
        IPW_EDATA);
}

static void test_limits(void **state)
{
    (void)state;
    struct token_secret s;
    secret(&s, "0123456789abcdef0123456789abcdef");
    struct err e;
    char addr[128];
    /* 39 octets of local part fit: 39 + 1 + 24 = 64 */
    const char *l39 = "abcdefghijabcdefghijabcdefghijabcdefghi@example.com";
    assert_int_equal(verp_make(&s, l39, 7, addr, sizeof addr, &e), IPW_OK);
    assert_int_equal(strchr(addr, '@') - addr, 64);
    const char *l40 = "abcdefghijabcdefghijabcdefghijabcdefghij@example.com";
    assert_int_equal(verp_make(&s, l40, 7, addr, sizeof addr, &e), IPW_EUSAGE);
    assert_int_equal(verp_make(&s, "\"a b\"@example.com", 7, addr, sizeof addr, &e), IPW_EUSAGE);
    assert_int_equal(verp_make(&s, "no-at-sign", 7, addr, sizeof addr, &e), IPW_EUSAGE);
    assert_int_equal(verp_make(&s, "b@example.com", 0, addr, sizeof addr, &e), IPW_EUSAGE);
    assert_int_equal(verp_make(&s, "b@example.com", VERP_ID_MAX + 1, addr, sizeof addr, &e),
                     IPW_EUSAGE);
    assert_int_equal(verp_make(&s, "b@example.com", 7, addr, 20, &e), IPW_ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_known_token),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
