/*
 * Unit tests of mime.c: UTF-8 validation, the header writer (folding within 78 columns,
 * RFC 2047 encoded-words that hold whole characters, Q for Latin text and B for the rest)
 * and body encoding (canonical CRLF line ends, quoted-printable soft breaks and escapes,
 * base64 for mostly non-Latin text). Encoded output is checked by decoding it with the
 * independent decoders of mime_decoders.h, or against bytes written out by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/mime.h"

#include "mime_decoders.h"

/* Checks that b holds exactly one field "name:" whose lines all end in CRLF, stay within 78
 * columns and continue with whitespace; returns its value unfolded, without the first space. */
static char *field_value(const struct buf *b, const char *name)
{
    size_t nl = strlen(name);
    assert_true(b->len > nl + 3);
    assert_memory_equal(b->p, name, nl);
    assert_int_equal(b->p[nl], ':');
    size_t line = 0;
    char *out = malloc(b->len);
    size_t o = 0;
    for (size_t i = nl + 1; i < b->len; i++) {
        if (b->p[i] == '\r') {
            assert_true(i + 1 < b->len && b->p[i + 1] == '\n');
            assert_true(line + nl + 1 <= MIME_FOLD_COLUMN || i == b->len - 2);
            i++;
            if (i + 1 < b->len)
                assert_true(b->p[i + 1] == ' ' || b->p[i + 1] == '\t');
            line = 0;
            nl = 0; /* the name counts on the first line only */
            continue;
        }
        assert_true(b->p[i] != '\n');
        line++;
        out[o++] = b->p[i];
    }
    assert_true(b->len >= 2 && memcmp(b->p + b->len - 2, "\r\n", 2) == 0);
    out[o] = '\0';
    if (out[0] == ' ')
        memmove(out, out + 1, o);
    return out;
}

/* Lines of at most 78 columns, counting the field name: field_value counts only the value. */
static void assert_lines_within(const struct buf *b, size_t max)
{
    size_t line = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->p[i] == '\r') {
            assert_true(line <= max);
            line = 0;
            i++;
        } else {
            line++;
        }
    }
}

static void test_mime_utf8_valid(void **state)
{
    (void)state;
    size_t bad = 99;
    assert_true(mime_utf8_valid("héllo 日本 🚀", strlen("héllo 日本 🚀"), &bad));
    assert_false(mime_utf8_valid("\xC0\xAF", 2, &bad)); /* overlong '/' */
    assert_int_equal(bad, 0);
    assert_false(mime_utf8_valid("ab\xF4\x90\x80\x80", 6, &bad)); /* > U+10FFFF */
    assert_int_equal(bad, 2);
    assert_false(mime_utf8_valid("abc\xE3\x81", 5, &bad)); /* truncated */
    assert_int_equal(bad, 3);
    assert_false(mime_utf8_valid("x\xED\xA0\x80", 4, &bad)); /* surrogate U+D800 */
    assert_int_equal(bad, 1);
}

static void test_mime_hw_folds_within_78(void **state)
{
    (void)state;
    const char *subjects[] = {
        /* 60 Japanese characters, an ASCII word, then more Japanese */
        "日本語の件名がとても長い場合には複数のエンコードワードに分割されなければなりません。"
        "そうでないと一行が長くなりすぎます news 日本語の件名がとても長い場合",
        /* emoji (4-byte sequences) must never be split between words */
        "Launch 🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀 today",
        /* mostly Latin: Q encoding, still within 75 per word */
        "Café crème brûlée à la carte pour le déjeuner de l'équipe, encore une fois très long",
        /* plain ASCII, folded at spaces only */
        "This is a rather long plain ASCII subject line that needs folding because it goes "
        "past seventy-eight columns  with  double spaces kept",
        "=?UTF-8?B?not-an-encoded-word?= must survive as typed",
    };
    for (size_t k = 0; k < sizeof subjects / sizeof subjects[0]; k++) {
        struct buf b = {0}, tmp = {0};
        struct mime_hw h = {.b = &b};
        mime_hw_begin(&h, "Subject");
        mime_hw_unstructured(&h, subjects[k]);
        mime_hw_end(&h);
        assert_false(b.oom || h.too_long);
        assert_int_equal(h.field_off, 0);
        assert_int_equal(h.name_len, strlen("Subject"));
        assert_lines_within(&b, MIME_FOLD_COLUMN);
        char *v = field_value(&b, "Subject");
        char *dec = decode_2047(v);
        assert_string_equal(dec, subjects[k]);
        free(v);
        free(dec);

        b.len = 0;
        h = (struct mime_hw){.b = &b};
        mime_hw_begin(&h, "From");
        mime_hw_mailbox(&h, "Ünïcödé Sender with a very long display name that certainly must fold",
                        "news@example.com", &tmp);
        mime_hw_end(&h);
        assert_false(b.oom || tmp.oom || h.too_long);
        assert_lines_within(&b, MIME_FOLD_COLUMN);
        v = field_value(&b, "From");
        dec = decode_2047(v);
        assert_string_equal(dec, "Ünïcödé Sender with a very long display name that certainly "
                                 "must fold <news@example.com>");
        free(v);
        free(dec);
        buf_free(&b);
        buf_free(&tmp);
    }
    /* The Latin one uses Q, the Japanese one B. */
    for (size_t k = 0; k < 3; k += 2) {
        struct buf b = {0};
        struct mime_hw h = {.b = &b};
        mime_hw_begin(&h, "Subject");
        mime_hw_unstructured(&h, subjects[k]);
        mime_hw_end(&h);
        assert_non_null(strstr(b.p, k == 2 ? "=?UTF-8?Q?" : "=?UTF-8?B?"));
        assert_null(strstr(b.p, k == 2 ? "=?UTF-8?B?" : "=?UTF-8?Q?"));
        buf_free(&b);
    }
}

static void test_mime_hw_mailbox_forms(void **state)
{
    (void)state;
    static const struct {
        const char *name, *want;
    } cases[] = {
        {NULL, "From: a@example.com\r\n"},
        {"Example News", "From: Example News <a@example.com>\r\n"},
        /* '.' is not atext; '=' and '?' are quoted so nothing looks like an encoded-word */
        {"J. \"Q\" Public", "From: \"J. \\\"Q\\\" Public\" <a@example.com>\r\n"},
        {"a=b", "From: \"a=b\" <a@example.com>\r\n"},
        /* "=?" would start an encoded-word in a decoder: encoded, not quoted */
        {"a=?b", "From: =?UTF-8?Q?a=3D=3Fb?= <a@example.com>\r\n"},
        {"Zoë", "From: =?UTF-8?Q?Zo=C3=AB?= <a@example.com>\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b = {0}, tmp = {0};
        struct mime_hw h = {.b = &b};
        mime_hw_begin(&h, "From");
        mime_hw_mailbox(&h, cases[i].name, "a@example.com", &tmp);
        mime_hw_end(&h);
        assert_string_equal(b.p, cases[i].want);
        buf_free(&b);
        buf_free(&tmp);
    }
}

static void test_mime_hw_too_long_word(void **state)
{
    (void)state;
    /* A word that cannot fit 998 octets even on a line of its own marks the writer. */
    char word[1100];
    memset(word, 'x', sizeof word);
    struct buf b = {0};
    struct mime_hw h = {.b = &b};
    mime_hw_begin(&h, "X-Long");
    mime_hw_word(&h, word, sizeof word);
    mime_hw_end(&h);
    assert_true(h.too_long);
    buf_free(&b);
}

static struct mime_body body_ok(const char *s, size_t n)
{
    struct mime_body out = {{0}, MIME_7BIT};
    struct err e;
    ipw_status st = mime_body_make(s, n, "text body", &out, &e);
    if (st != IPW_OK)
        fail_msg("mime_body_make: %s", e.msg);
    return out;
}

static void test_mime_body_qp_wraps_long_line(void **state)
{
    (void)state;
    char *text = malloc(5000 + 64);
    for (int i = 0; i < 5000; i++)
        text[i] = "abcdefghij=klmnopqrs tuvwxyz"[i % 28];
    memcpy(text + 5000, " \nnext line ends with tab\t\n", 28);
    size_t n = strlen(text);
    struct mime_body body = body_ok(text, n);
    assert_int_equal(body.cte, MIME_QP);
    assert_string_equal(mime_cte_name(body.cte), "quoted-printable");
    /* Every encoded line is at most 76 characters. */
    size_t line = 0, lines = 0;
    for (size_t i = 0; i < body.enc.len; i++) {
        if (body.enc.p[i] == '\r') {
            assert_true(line <= MIME_ENCODED_LINE_MAX);
            line = 0;
            lines++;
            i++;
        } else {
            line++;
        }
    }
    assert_true(lines > 5000 / 76);
    char *dec = malloc(body.enc.len);
    size_t dn = qp_decode(body.enc.p, body.enc.len, dec);
    /* Decoding gives the text back, with CRLF line ends; the trailing space and tab were
     * escaped (=20, =09) so that no transport strips them. */
    static const char tail[] = " \r\nnext line ends with tab\t\r\n";
    assert_int_equal(dn, 5000 + sizeof tail - 1);
    assert_memory_equal(dec, text, 5000);
    /* The decoded text has no terminating NUL: compare the characters only. */
    assert_memory_equal(dec + 5000, tail, sizeof tail - 1);
    assert_non_null(strstr(body.enc.p, "=20\r\n"));
    assert_non_null(strstr(body.enc.p, "=09\r\n"));
    free(dec);
    free(text);
    buf_free(&body.enc);
}

static void test_mime_body_qp_latin(void **state)
{
    (void)state;
    const char *t = "Grüße aus Köln, = signe égal\r\n";
    struct mime_body body = body_ok(t, strlen(t));
    assert_int_equal(body.cte, MIME_QP);
    assert_string_equal(body.enc.p, "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, =3D signe =C3=A9gal\r\n");
    buf_free(&body.enc);
}

static void test_mime_body_line_ends_canonical(void **state)
{
    (void)state;
    const char *t = "a\rb\r\nc\n\nd";
    struct mime_body body = body_ok(t, strlen(t));
    assert_int_equal(body.cte, MIME_7BIT);
    assert_string_equal(mime_cte_name(body.cte), "7bit");
    assert_string_equal(body.enc.p, "a\r\nb\r\nc\r\n\r\nd\r\n");
    buf_free(&body.enc);
    body = body_ok("", 0);
    assert_string_equal(body.enc.p, "\r\n");
    buf_free(&body.enc);
    /* Leading dots stay: transparency is the SMTP session's (message.h). */
    t = ".first\n..second\n.\nlast";
    body = body_ok(t, strlen(t));
    assert_string_equal(body.enc.p, ".first\r\n..second\r\n.\r\nlast\r\n");
    buf_free(&body.enc);
}

static void test_mime_body_base64_for_non_latin(void **state)
{
    (void)state;
    const char *t = "本文です。\n";
    struct mime_body body = body_ok(t, strlen(t));
    assert_int_equal(body.cte, MIME_BASE64);
    assert_string_equal(mime_cte_name(body.cte), "base64");
    char dec[64];
    size_t dn = b64_decode(body.enc.p, body.enc.len, dec);
    assert_int_equal(dn, strlen("本文です。\r\n"));
    assert_memory_equal(dec, "本文です。\r\n", dn);
    buf_free(&body.enc);
    /* An ASCII line over 78 octets cannot go 7bit either. */
    char longline[100];
    memset(longline, 'a', sizeof longline);
    body = body_ok(longline, sizeof longline);
    assert_int_equal(body.cte, MIME_QP);
    buf_free(&body.enc);
}

static void test_mime_body_refusals(void **state)
{
    (void)state;
    struct mime_body body = {{0}, MIME_7BIT};
    struct err e;
    assert_int_equal(mime_body_make("ab\0cd", 5, "HTML body", &body, &e), IPW_EDATA);
    assert_string_equal(e.msg, "HTML body: NUL byte at byte offset 2");
    assert_int_equal(mime_body_make("abc\xE3\x81", 5, "text body", &body, &e), IPW_EDATA);
    assert_string_equal(e.msg, "text body: invalid UTF-8 at byte offset 3");
    assert_null(body.enc.p);
}

/* The memo gives each caller its own copy of exactly what mime_body_make() gives, and
 * encodes again when the text differs, even by one byte or in length only. */
static void test_mime_body_memo(void **state)
{
    (void)state;
    struct mime_memo m = {0};
    struct err e;
    const char *texts[] = {"Hello,\nsecond line\n",      "Hello,\nsecond line\n",
                           "Hello,\nsecond lime\n",      "Hello,\nsecond line\n\n",
                           "caf\xC3\xA9 \xE2\x82\xAC\n", ""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct mime_body want = {{0}, MIME_7BIT}, got = {{0}, MIME_7BIT};
        size_t n = strlen(texts[i]);
        assert_int_equal(mime_body_make(texts[i], n, "text body", &want, &e), IPW_OK);
        assert_int_equal(mime_body_make_memo(&m, texts[i], n, "text body", &got, &e), IPW_OK);
        assert_int_equal(got.cte, want.cte);
        assert_int_equal(got.enc.len, want.enc.len);
        assert_memory_equal(got.enc.p, want.enc.p, want.enc.len);
        assert_ptr_not_equal(got.enc.p, m.body.enc.p); /* a copy: the caller frees it */
        assert_true(m.valid);
        assert_int_equal(m.src.len, n);
        buf_free(&got.enc);
        buf_free(&want.enc);
    }
    /* Refused text is refused again, and leaves nothing remembered. */
    struct mime_body bad = {{0}, MIME_7BIT};
    for (int round = 0; round < 2; round++) {
        assert_int_equal(mime_body_make_memo(&m, "abc\xE3\x81", 5, "text body", &bad, &e),
                         IPW_EDATA);
        assert_string_equal(e.msg, "text body: invalid UTF-8 at byte offset 3");
        assert_false(m.valid);
        assert_null(bad.enc.p);
    }
    /* Without a memo it is mime_body_make(). */
    assert_int_equal(mime_body_make_memo(NULL, "x\n", 2, "text body", &bad, &e), IPW_OK);
    assert_int_equal(bad.enc.len, 3);
    assert_memory_equal(bad.enc.p, "x\r\n", 3);
    buf_free(&bad.enc);
    mime_memo_free(&m);
    mime_memo_free(&m); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mime_utf8_valid),
        cmocka_unit_test(test_mime_hw_folds_within_78),
        cmocka_unit_test(test_mime_hw_mailbox_forms),
        cmocka_unit_test(test_mime_hw_too_long_word),
        cmocka_unit_test(test_mime_body_qp_wraps_long_line),
        cmocka_unit_test(test_mime_body_qp_latin),
        cmocka_unit_test(test_mime_body_line_ends_canonical),
        cmocka_unit_test(test_mime_body_base64_for_non_latin),
        cmocka_unit_test(test_mime_body_refusals),
        cmocka_unit_test(test_mime_body_memo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
