/*
 * test_base64: the RFC 4648 section 10 vectors both ways, base64url without padding, MIME's
 * 76-character lines with CRLF, and the decoder's edges: white space, optional padding, a
 * short tail, padding in the wrong place, characters outside the alphabet, and input longer
 * than one internal chunk.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ipwarm/base64.h"

static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        char out[16];
        size_t n = base64_encode(plain[i], strlen(plain[i]), out);
        assert_string_equal(out, coded[i]);
        assert_int_equal(n, strlen(coded[i]));
        assert_int_equal(n, BASE64_LEN(strlen(plain[i])));

        unsigned char back[16];
        size_t bn = 99;
        assert_true(base64_decode(coded[i], strlen(coded[i]), back, &bn));
        assert_int_equal(bn, strlen(plain[i]));
        assert_memory_equal(back, plain[i], bn);
    }
}

static void test_alloc_and_binary(void **state)
{
    (void)state;
    const unsigned char bin[] = {0xfb, 0xff, 0x00, 0xfe};
    char *s = base64_encode_alloc(bin, sizeof bin);
    assert_non_null(s);
    assert_string_equal(s, "+/8A/g==");
    free(s);
}

static void test_url_no_padding(void **state)
{
    (void)state;
    const unsigned char bin[] = {0xfb, 0xff, 0x00, 0xfe};
    char out[16];
    assert_int_equal(base64_encode_url(bin, sizeof bin, out), 6);
    assert_string_equal(out, "-_8A_g");
    assert_int_equal(base64_encode_url("foobar", 6, out), 8);
    assert_string_equal(out, "Zm9vYmFy");
}

static void test_mime_lines(void **state)
{
    (void)state;
    /* 57 bytes make exactly one full line of 76; 58 start a second line of 4. */
    unsigned char in[58];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 7);
    struct buf b = {0};
    base64_encode_mime(in, 57, &b);
    assert_false(b.oom);
    assert_int_equal(b.len, 76 + 2);
    assert_memory_equal(b.p + 76, "\r\n", 2);
    buf_free(&b);

    base64_encode_mime(in, 58, &b);
    assert_int_equal(b.len, 76 + 2 + 4 + 2);
    assert_memory_equal(b.p + 76, "\r\n", 2);
    assert_memory_equal(b.p + 82, "\r\n", 2);
    assert_int_equal(b.p[81], '=');
    assert_int_equal(b.p[80], '=');

    /* and it decodes back, line breaks and all */
    unsigned char back[64];
    size_t n = 0;
    assert_true(base64_decode(b.p, b.len, back, &n));
    assert_int_equal(n, 58);
    assert_memory_equal(back, in, 58);
    buf_free(&b);

    base64_encode_mime("", 0, &b);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_decode_lenient(void **state)
{
    (void)state;
    unsigned char out[32];
    size_t n = 0;
    /* white space anywhere, as FWS in a DKIM b= tag */
    assert_true(base64_decode(" Zm9v\r\n YmFy \t", 14, out, &n));
    assert_int_equal(n, 6);
    assert_memory_equal(out, "foobar", 6);
    /* unpadded tails of 2 and 3 characters */
    assert_true(base64_decode("Zm9vYg", 6, out, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(out, "foob", 4);
    assert_true(base64_decode("Zm9vYmE", 7, out, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(out, "fooba", 5);
    /* a lone trailing character holds less than a byte */
    assert_true(base64_decode("Zm9vY", 5, out, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(out, "foo", 3);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    unsigned char out[32];
    size_t n = 7;
    assert_false(base64_decode("Zm9v!", 5, out, &n));
    assert_int_equal(n, 0);
    assert_false(base64_decode("Zg==Zg==", 8, out, &n)); /* data after padding */
    assert_false(base64_decode("Z===", 4, out, &n));     /* padding too early */
    assert_false(base64_decode("Zm9=v", 5, out, &n));
    assert_false(base64_decode("Zg=", 3, out, &n));  /* padding that does not fill */
    assert_false(base64_decode("-_8A", 4, out, &n)); /* base64url is not base64 */
}

static void test_long_input(void **state)
{
    (void)state;
    /* longer than the encoder's and the decoder's chunks, with padding at the very end */
    size_t n = 3 * 4096 * 2 + 1;
    unsigned char *in = malloc(n);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (unsigned char)(i * 31 + (i >> 8));
    char *s = base64_encode_alloc(in, n);
    assert_non_null(s);
    assert_int_equal(strlen(s), BASE64_LEN(n));
    unsigned char *back = malloc(BASE64_DECODED_MAX(strlen(s)));
    assert_non_null(back);
    size_t bn = 0;
    assert_true(base64_decode(s, strlen(s), back, &bn));
    assert_int_equal(bn, n);
    assert_memory_equal(back, in, n);
    /* padding landing exactly on the decoder's internal 1024-character boundary */
    char padded[1024];
    memset(padded, 'A', sizeof padded);
    padded[1022] = padded[1023] = '=';
    assert_true(base64_decode(padded, sizeof padded, back, &bn));
    assert_int_equal(bn, 1024 / 4 * 3 - 2);
    free(back);
    free(s);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_alloc_and_binary),
        cmocka_unit_test(test_url_no_padding),  cmocka_unit_test(test_mime_lines),
        cmocka_unit_test(test_decode_lenient),  cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_long_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
