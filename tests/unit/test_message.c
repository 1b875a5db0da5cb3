/*
 * Unit tests of message.c: message_build (the header fields and their order, a Japanese
 * subject and display name end to end, multipart), message_compose, message_tmpl_load,
 * message_prepend_field, message_format_date and message_id_left. The encodings themselves
 * (folding, quoted-printable, canonical line ends, UTF-8) are tested in test_mime.c. Expected
 * bytes are written out by hand or computed with the independent decoders of
 * mime_decoders.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipwarm/message.h"

#include "mime_decoders.h"

/* ---- independent helpers ---- */

/* The value of header field name, unfolded, without the space after the colon. */
static char *header_value(const struct message *m, const char *name)
{
    long i = message_field_find(m, name);
    assert_true(i >= 0);
    const struct message_field *f = &m->fields[i];
    const char *p = m->data + f->off + f->name_len + 1;
    size_t n = f->len - f->name_len - 1 - 2;
    char *out = malloc(n + 1);
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        if (p[k] == '\r' && k + 1 < n && p[k + 1] == '\n') {
            k++;
            continue;
        }
        out[o++] = p[k];
    }
    out[o] = '\0';
    if (out[0] == ' ')
        memmove(out, out + 1, o);
    return out;
}

/* Every line ends in CRLF, none passes 998 octets, and header lines stay within max_header. */
static void assert_well_formed(const struct message *m, size_t max_header)
{
    size_t line = 0;
    for (size_t i = 0; i < m->len; i++) {
        if (m->data[i] == '\r') {
            assert_true(i + 1 < m->len && m->data[i + 1] == '\n');
            if (i < m->body_off)
                assert_true(line <= max_header);
            line = 0;
            i++;
            continue;
        }
        assert_true(m->data[i] != '\n');
        line++;
        assert_true(line <= MESSAGE_LINE_MAX);
    }
    assert_int_equal(line, 0); /* ends with CRLF */
    assert_true(m->body_off >= 4 && memcmp(m->data + m->body_off - 4, "\r\n\r\n", 4) == 0);
}

static struct message_parts base_parts(void)
{
    struct message_parts p = {
        .from_name = "Example",
        .from_addr = "news@example.com",
        .to_addr = "bob@example.org",
        .subject = "Hello Bob",
        .date = "Tue, 01 Dec 2026 09:00:00 +0900",
        .id_left = "camp.1.00000000deadbeef",
        .text = "Hi Bob\n",
        .text_len = 7,
        .boundary_seed = 0x0123456789abcdefULL,
    };
    return p;
}

static void build_ok(const struct message_parts *p, struct message *m)
{
    struct err e;
    ipw_status s = message_build(p, m, &e);
    if (s != IPW_OK)
        fail_msg("message_build: %s", e.msg);
}

/* ---- tests ---- */

static void test_message_build_exact_single_part(void **state)
{
    (void)state;
    struct message_parts p = base_parts();
    struct message m;
    build_ok(&p, &m);
    const char *expect = "Date: Tue, 01 Dec 2026 09:00:00 +0900\r\n"
                         "From: Example <news@example.com>\r\n"
                         "To: bob@example.org\r\n"
                         "Subject: Hello Bob\r\n"
                         "Message-ID: <camp.1.00000000deadbeef@example.com>\r\n"
                         "MIME-Version: 1.0\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: 7bit\r\n"
                         "\r\n"
                         "Hi Bob\r\n";
    assert_int_equal(m.len, strlen(expect));
    assert_memory_equal(m.data, expect, m.len);
    assert_int_equal(m.body_off, strlen(expect) - strlen("Hi Bob\r\n"));
    assert_int_equal(m.n_fields, 8);
    const char *names[] = {
        "Date",       "From",         "To",           "Subject",
        "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"};
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(m.fields[i].name_len, strlen(names[i]));
        assert_memory_equal(m.data + m.fields[i].off, names[i], strlen(names[i]));
        assert_memory_equal(m.data + m.fields[i].off + m.fields[i].len - 2, "\r\n", 2);
    }
    assert_int_equal(message_field_find(&m, "message-id"), 4);
    assert_int_equal(message_field_find(&m, "DKIM-Signature"), -1);
    assert_string_equal(m.boundary, "");
    message_free(&m);
}

static void test_message_build_exact_multipart(void **state)
{
    (void)state;
    struct message_parts p = base_parts();
    p.html = "<p>Hi Bob</p>";
    p.html_len = strlen(p.html);
    p.from_name = "Example, Inc.";
    struct message_header extra[] = {{"X-Test", "one two"}};
    p.extra = extra;
    p.n_extra = 1;
    struct message m;
    build_ok(&p, &m);
    const char *expect = "Date: Tue, 01 Dec 2026 09:00:00 +0900\r\n"
                         "From: \"Example, Inc.\" <news@example.com>\r\n"
                         "To: bob@example.org\r\n"
                         "Subject: Hello Bob\r\n"
                         "Message-ID: <camp.1.00000000deadbeef@example.com>\r\n"
                         "MIME-Version: 1.0\r\n"
                         "X-Test: one two\r\n"
                         "Content-Type: multipart/alternative; "
                         "boundary=\"=_ipwarm_0123456789abcdef\"\r\n"
                         "\r\n"
                         "--=_ipwarm_0123456789abcdef\r\n"
                         "Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: 7bit\r\n"
                         "\r\n"
                         "Hi Bob\r\n"
                         "\r\n" /* RFC 2046 5.1.1: this CRLF belongs to the delimiter */
                         "--=_ipwarm_0123456789abcdef\r\n"
                         "Content-Type: text/html; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: 7bit\r\n"
                         "\r\n"
                         "<p>Hi Bob</p>\r\n"
                         "\r\n"
                         "--=_ipwarm_0123456789abcdef--\r\n";
    assert_int_equal(m.len, strlen(expect));
    assert_memory_equal(m.data, expect, m.len);
    assert_string_equal(m.boundary, "=_ipwarm_0123456789abcdef");
    assert_well_formed(&m, 78);
    message_free(&m);
}

static void test_message_boundary_avoids_body(void **state)
{
    (void)state;
    struct message_parts p = base_parts();
    p.text = "a line with --=_ipwarm_0123456789abcdef in it\n";
    p.text_len = strlen(p.text);
    p.html = "<p>=_ipwarm_0123456789abcdef</p>";
    p.html_len = strlen(p.html);
    struct message m;
    build_ok(&p, &m);
    assert_string_not_equal(m.boundary, "=_ipwarm_0123456789abcdef");
    /* The chosen boundary occurs only as delimiter lines and in the Content-Type. */
    size_t count = 0;
    for (const char *q = m.data; (q = strstr(q, m.boundary)) != NULL; q++)
        count++;
    assert_int_equal(count, 4);
    message_free(&m);
}

static void test_message_japanese_subject_and_display_name(void **state)
{
    (void)state;
    struct message_tmpl t = {
        .from_name = "山田 太郎",
        .from_addr = "news@example.com",
        .subject = "こんにちは、世界 {{first_name}}",
        .subject_where = "plan.yaml: message.subject",
        .text = "本文です。\n",
        .text_where = "message.txt",
    };
    static const char *const names[] = {"email", "first_name"};
    const char *values[] = {"taro@example.jp", "Taro"};
    struct template_vars v = {.recipient = "taro@example.jp",
                              .seq = 1,
                              .date = "Tue, 01 Dec 2026 09:00:00 +0900",
                              .campaign = "c",
                              .token = "t",
                              .names = names,
                              .values = values,
                              .n = 2,
                              .src = "seeds.csv",
                              .src_line = 2};
    struct message_args a = {.id_left = "c.1.1", .boundary_seed = 1};
    struct message m;
    struct err e;
    assert_int_equal(message_compose(&t, &v, &a, &m, &e), IPW_OK);

    /* Known encodings, computed by hand from the UTF-8 bytes, and by this file's encoder. */
    char *name_b64 = b64_encode((const unsigned char *)"山田 太郎", strlen("山田 太郎"));
    assert_string_equal(name_b64, "5bGx55SwIOWkqumDjg==");
    char *subj_b64 =
        b64_encode((const unsigned char *)"こんにちは、世界", strlen("こんにちは、世界"));
    assert_string_equal(subj_b64, "44GT44KT44Gr44Gh44Gv44CB5LiW55WM");
    char expect_from[200], expect_subject[200];
    snprintf(expect_from, sizeof expect_from, "From: =?UTF-8?B?%s?= <news@example.com>\r\n",
             name_b64);
    snprintf(expect_subject, sizeof expect_subject, "Subject: =?UTF-8?B?%s?= Taro\r\n", subj_b64);
    const struct message_field *f = &m.fields[message_field_find(&m, "From")];
    assert_int_equal(f->len, strlen(expect_from));
    assert_memory_equal(m.data + f->off, expect_from, f->len);
    f = &m.fields[message_field_find(&m, "Subject")];
    assert_int_equal(f->len, strlen(expect_subject));
    assert_memory_equal(m.data + f->off, expect_subject, f->len);

    char *from = header_value(&m, "From");
    char *dec = decode_2047(from);
    assert_string_equal(dec, "山田 太郎 <news@example.com>");
    free(from);
    free(dec);
    char *subject = header_value(&m, "Subject");
    dec = decode_2047(subject);
    assert_string_equal(dec, "こんにちは、世界 Taro");
    free(subject);
    free(dec);
    char *to = header_value(&m, "To");
    assert_string_equal(to, "taro@example.jp");
    free(to);

    /* The Japanese body goes base64 and decodes to the CRLF text. */
    char *cte = header_value(&m, "Content-Transfer-Encoding");
    assert_string_equal(cte, "base64");
    free(cte);
    char body[256];
    size_t bn = b64_decode(m.data + m.body_off, m.len - m.body_off, body);
    assert_int_equal(bn, strlen("本文です。\r\n"));
    assert_memory_equal(body, "本文です。\r\n", bn);
    assert_well_formed(&m, 78);
    free(name_b64);
    free(subj_b64);
    message_free(&m);
}

static void test_message_leading_dot_is_not_stuffed(void **state)
{
    (void)state;
    /* RFC 5321 4.5.2 transparency is libcurl's job on the wire (lib/smtp.c escapes CRLF "."),
     * so the message keeps its dots as the recipient and DKIM see them. */
    struct message_parts p = base_parts();
    p.text = ".first\n..second\n.\nlast";
    p.text_len = strlen(p.text);
    struct message m;
    build_ok(&p, &m);
    assert_string_equal(m.data + m.body_off, ".first\r\n..second\r\n.\r\nlast\r\n");
    message_free(&m);
}

static void test_message_refusals(void **state)
{
    (void)state;
    struct message_parts p = base_parts();
    struct message m;
    struct err e;
    p.text = "ok\n\xC3\x28 bad";
    p.text_len = strlen(p.text);
    assert_int_equal(message_build(&p, &m, &e), IPW_EDATA);
    assert_string_equal(e.msg, "text body: invalid UTF-8 at byte offset 3");
    assert_null(m.data);
    p = base_parts();
    p.html = "<p>\xED\xA0\x80</p>"; /* an encoded surrogate */
    p.html_len = strlen(p.html);
    assert_int_equal(message_build(&p, &m, &e), IPW_EDATA);
    assert_string_equal(e.msg, "HTML body: invalid UTF-8 at byte offset 3");
    p = base_parts();
    p.text = "a\0b";
    p.text_len = 3;
    assert_int_equal(message_build(&p, &m, &e), IPW_EDATA);
    assert_string_equal(e.msg, "text body: NUL byte at byte offset 1");
    p = base_parts();
    p.subject = "Hello\r\nBcc: x@example.net";
    assert_int_equal(message_build(&p, &m, &e), IPW_EDATA);
    assert_string_equal(e.msg, "Subject: contains a line break");
    p = base_parts();
    p.to_addr = "bob";
    assert_int_equal(message_build(&p, &m, &e), IPW_EDATA);
    p = base_parts();
    p.id_left = "has space";
    assert_int_equal(message_build(&p, &m, &e), IPW_EUSAGE);
    p = base_parts();
    struct message_header bad[] = {{"X-Bad", "a\r\nb"}};
    p.extra = bad;
    p.n_extra = 1;
    assert_int_equal(message_build(&p, &m, &e), IPW_EUSAGE);
    /* An extra header that cannot be folded within 998 octets. */
    char *longv = malloc(1200);
    memset(longv, 'x', 1199);
    longv[1199] = '\0';
    struct message_header big[] = {{"List-Unsubscribe", longv}};
    p.extra = big;
    assert_int_equal(message_build(&p, &m, &e), IPW_EDATA);
    assert_non_null(strstr(e.msg, "998"));
    free(longv);
}

static void test_message_compose_refuses_header_injection(void **state)
{
    (void)state;
    struct message_tmpl t = {
        .from_addr = "news@example.com",
        .subject = "Hello {{first_name}}",
        .subject_where = "plan.yaml: message.subject",
        .text = "Dear {{first_name}}\n",
        .text_where = "message.txt",
        .html = "<p>{{first_name}}</p>",
        .html_where = "message.html",
    };
    static const char *const names[] = {"email", "first_name"};
    const char *values[] = {"bob@example.org", "Bob\r\nBcc: victim@example.net"};
    struct template_vars v = {.recipient = "bob@example.org",
                              .date = "Tue, 01 Dec 2026 09:00:00 +0900",
                              .campaign = "c",
                              .names = names,
                              .values = values,
                              .n = 2,
                              .src = "seeds.csv",
                              .src_line = 7};
    struct message_args a = {.id_left = "c.1.1"};
    struct message m;
    struct err e;
    assert_int_equal(message_compose(&t, &v, &a, &m, &e), IPW_EDATA);
    assert_string_equal(e.msg, "seeds.csv:7: the value of {{first_name}} contains a line break, "
                               "refused in a header");
    assert_null(m.data);
    /* The same value in the bodies only is fine; in HTML it is escaped. */
    values[1] = "<Bob>";
    assert_int_equal(message_compose(&t, &v, &a, &m, &e), IPW_OK);
    assert_non_null(strstr(m.data, "<p>&lt;Bob&gt;</p>"));
    assert_non_null(strstr(m.data, "Subject: Hello <Bob>\r\n"));
    message_free(&m);
}

/* RFC 8058: the one-click fields, per recipient, in order after MIME-Version and before the
 * caller's extra fields; the token is percent-encoded where it goes into the URI. */
static void test_message_compose_list_unsubscribe(void **state)
{
    (void)state;
    struct message_tmpl t = {
        .from_addr = "news@example.com",
        .subject = "Hi",
        .subject_where = "plan.yaml: message.subject",
        .text = "Hi\n",
        .text_where = "message.txt",
        .list_unsubscribe = "https://example.com/u/{{token}}?c={{campaign}}",
        .list_unsubscribe_mailto = "unsub@example.com",
    };
    struct template_vars v = {.recipient = "bob@example.org",
                              .date = "Tue, 01 Dec 2026 09:00:00 +0900",
                              .campaign = "spring 2026",
                              .token = "OCzFBWD0DvVxXdBdEO_-qg"};
    struct message_header extra[] = {{"X-Test", "one"}};
    struct message_args a = {.id_left = "c.1.1", .extra = extra, .n_extra = 1};
    struct message m;
    struct err e;
    assert_int_equal(message_compose(&t, &v, &a, &m, &e), IPW_OK);
    long lu = message_field_find(&m, "List-Unsubscribe");
    long lup = message_field_find(&m, "List-Unsubscribe-Post");
    long mv = message_field_find(&m, "MIME-Version");
    long xt = message_field_find(&m, "X-Test");
    assert_true(mv >= 0 && lu == mv + 1 && lup == lu + 1 && xt == lup + 1);
    const char want_lu[] =
        "List-Unsubscribe: "
        "<https://example.com/u/OCzFBWD0DvVxXdBdEO_-qg?c=spring%202026>,\r\n"
        " <mailto:unsub@example.com?subject=unsubscribe%20OCzFBWD0DvVxXdBdEO_-qg>"
        "\r\n";
    assert_int_equal(m.fields[lu].len, strlen(want_lu));
    assert_memory_equal(m.data + m.fields[lu].off, want_lu, strlen(want_lu));
    const char want_lup[] = "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
    assert_int_equal(m.fields[lup].len, strlen(want_lup));
    assert_memory_equal(m.data + m.fields[lup].off, want_lup, strlen(want_lup));
    message_free(&m);

    /* A mailto alone: List-Unsubscribe without the Post field (RFC 8058 3.1 needs HTTPS). */
    t.list_unsubscribe = NULL;
    assert_int_equal(message_compose(&t, &v, &a, &m, &e), IPW_OK);
    assert_true(message_field_find(&m, "List-Unsubscribe") >= 0);
    assert_int_equal(message_field_find(&m, "List-Unsubscribe-Post"), -1);
    message_free(&m);

    /* Neither: no such fields, the caller's extra fields as before. */
    t.list_unsubscribe_mailto = NULL;
    assert_int_equal(message_compose(&t, &v, &a, &m, &e), IPW_OK);
    assert_int_equal(message_field_find(&m, "List-Unsubscribe"), -1);
    assert_true(message_field_find(&m, "X-Test") >= 0);
    message_free(&m);

    /* A URI template that needs the token, with no token: a caller bug, refused. */
    t.list_unsubscribe = "https://example.com/u/{{token}}";
    v.token = NULL;
    assert_int_equal(message_compose(&t, &v, &a, &m, &e), IPW_EUSAGE);
    assert_null(m.data);
}

static void test_message_prepend_field(void **state)
{
    (void)state;
    struct message_parts p = base_parts();
    struct message m;
    build_ok(&p, &m);
    size_t old_len = m.len, old_body = m.body_off, old_from = m.fields[1].off;
    const char *dkim = "DKIM-Signature: v=1; a=rsa-sha256; d=example.com;\r\n\ts=s2026; b=abc";
    struct err e;
    assert_int_equal(message_prepend_field(&m, dkim, strlen(dkim), &e), IPW_OK);
    size_t add = strlen(dkim) + 2;
    assert_int_equal(m.len, old_len + add);
    assert_int_equal(m.body_off, old_body + add);
    assert_int_equal(m.n_fields, 9);
    assert_int_equal(m.fields[0].off, 0);
    assert_int_equal(m.fields[0].len, add);
    assert_int_equal(m.fields[0].name_len, strlen("DKIM-Signature"));
    assert_int_equal(m.fields[2].off, old_from + add);
    assert_memory_equal(m.data + m.fields[2].off, "From:", 5);
    assert_memory_equal(m.data + add - 2, "\r\n", 2);
    assert_well_formed(&m, 78);
    assert_int_equal(message_prepend_field(&m, "no colon", 8, &e), IPW_EUSAGE);
    assert_int_equal(message_prepend_field(&m, "X: a\r\nb", 7, &e), IPW_EUSAGE);
    assert_int_equal(message_prepend_field(&m, "X: a\nb", 6, &e), IPW_EUSAGE);
    message_free(&m);
}

static void test_message_format_date(void **state)
{
    (void)state;
    char buf[MESSAGE_DATE_MAX];
    const int64_t dec1 = 1796083200000; /* 2026-12-01T00:00:00Z, a Tuesday */
    assert_string_equal(message_format_date(dec1, 32400, buf, sizeof buf),
                        "Tue, 01 Dec 2026 09:00:00 +0900");
    assert_string_equal(message_format_date(dec1 + 999, 0, buf, sizeof buf),
                        "Tue, 01 Dec 2026 00:00:00 +0000");
    assert_string_equal(message_format_date(dec1, -12600, buf, sizeof buf),
                        "Mon, 30 Nov 2026 20:30:00 -0330");
    assert_string_equal(message_format_date(0, 0, buf, sizeof buf),
                        "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_string_equal(message_format_date(-1, 0, buf, sizeof buf),
                        "Wed, 31 Dec 1969 23:59:59 +0000");
    assert_string_equal(message_format_date(dec1, 90000, buf, sizeof buf), "");
    char small[10];
    assert_string_equal(message_format_date(dec1, 0, small, sizeof small), "");
}

static void test_message_id_left(void **state)
{
    (void)state;
    char id[64];
    assert_string_equal(message_id_left("mx1 new@ip", 42, 0x9f3a07c1u, id, sizeof id),
                        "mx1-new-ip.42.000000009f3a07c1");
}

static char *write_temp(const char *dir, const char *name, const char *content, size_t n)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    memcpy(path, dir, strlen(dir));
    path[strlen(dir)] = '/';
    memcpy(path + strlen(dir) + 1, name, strlen(name) + 1);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, n, f), n);
    fclose(f);
    return path;
}

static void test_message_tmpl_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/ipwarm-msg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char good[] = "\xEF\xBB\xBFHello {{first_name}},\nseq {{seq}}\n";
    const char badutf[] = "line one\nline \xFF two\n";
    const char unknown[] = "a\nb\nHello {{frist_name}}\n";
    char *good_path = write_temp(dir, "message.txt", good, sizeof good - 1);
    char *bad_path = write_temp(dir, "bad.txt", badutf, sizeof badutf - 1);
    char *unk_path = write_temp(dir, "unknown.html", unknown, sizeof unknown - 1);
    static const char *const names[] = {"email", "first_name"};
    struct plan plan = {0};
    plan.path = "/plans/ipwarm.yaml";
    plan.from_addr = "news@example.com";
    plan.from_name = "News";
    plan.subject = "Hi {{first_name}}";
    plan.text_file = good_path;
    plan.list_unsubscribe = "https://example.com/u/{{token}}";
    plan.list_unsubscribe_mailto = "unsub@example.com";
    struct message_tmpl *t = NULL;
    struct err e;
    assert_int_equal(message_tmpl_load(&plan, names, 2, &t, &e), IPW_OK);
    assert_string_equal(t->text, "Hello {{first_name}},\nseq {{seq}}\n"); /* BOM dropped */
    assert_null(t->html);
    assert_string_equal(t->list_unsubscribe, "https://example.com/u/{{token}}");
    assert_string_equal(t->list_unsubscribe_mailto, "unsub@example.com");
    message_tmpl_free(t);

    plan.text_file = bad_path;
    assert_int_equal(message_tmpl_load(&plan, names, 2, &t, &e), IPW_EDATA);
    char expect[512];
    snprintf(expect, sizeof expect, "%s:2: invalid UTF-8 at byte offset 14", bad_path);
    assert_string_equal(e.msg, expect);
    assert_null(t);

    plan.text_file = good_path;
    plan.html_file = unk_path;
    assert_int_equal(message_tmpl_load(&plan, names, 2, &t, &e), IPW_EDATA);
    snprintf(expect, sizeof expect, "%s:3: unknown placeholder {{frist_name}}", unk_path);
    assert_non_null(strstr(e.msg, expect));

    plan.html_file = NULL;
    plan.subject = "Hi {{name}}";
    assert_int_equal(message_tmpl_load(&plan, names, 2, &t, &e), IPW_EDATA);
    assert_non_null(
        strstr(e.msg, "/plans/ipwarm.yaml: message.subject: unknown placeholder {{name}}"));

    plan.subject = "Hi";
    plan.list_unsubscribe = "https://example.com/u/{{tokn}}";
    assert_int_equal(message_tmpl_load(&plan, names, 2, &t, &e), IPW_EDATA);
    assert_non_null(strstr(e.msg, "message.list_unsubscribe: unknown placeholder {{tokn}}"));

    plan.list_unsubscribe = NULL;
    plan.text_file = NULL;
    plan.text = "inline {{recipient}}";
    assert_int_equal(message_tmpl_load(&plan, NULL, 0, &t, &e), IPW_OK);
    assert_string_equal(t->text, "inline {{recipient}}");
    message_tmpl_free(t);

    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope.txt", dir);
    plan.text_file = missing;
    assert_int_equal(message_tmpl_load(&plan, NULL, 0, &t, &e), IPW_ENOINPUT);
    /* The sentence says which plan key names the file, which file, and what went wrong. */
    snprintf(expect, sizeof expect, "message.text_file: cannot open %s: No such file or directory",
             missing);
    assert_string_equal(e.msg, expect);

    /* A FIFO is refused at once, never read (a blocking open would hang here). */
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/fifo.html", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    plan.text_file = good_path;
    plan.html_file = fifo;
    alarm(10);
    assert_int_equal(message_tmpl_load(&plan, names, 2, &t, &e), IPW_ENOINPUT);
    alarm(0);
    snprintf(expect, sizeof expect,
             "message.html_file: %s is a FIFO (named pipe), not a regular file", fifo);
    assert_string_equal(e.msg, expect);
    assert_null(t);
    unlink(fifo);

    unlink(good_path);
    unlink(bad_path);
    unlink(unk_path);
    rmdir(dir);
    free(good_path);
    free(bad_path);
    free(unk_path);
}

/* Feedback-ID: the placeholders filled, their values kept to one field each. */
static void test_message_feedback_id(void **state)
{
    (void)state;
    char out[128];
    struct err e;
    assert_int_equal(message_feedback_id("{{campaign}}:{{ ip }}:{{provider}}:news", "spring-26",
                                         "192.0.2.1", "gmail", out, sizeof out, &e),
                     IPW_OK);
    assert_string_equal(out, "spring-26:192.0.2.1:gmail:news");
    /* An IPv6 address's colons, a space: never a field of their own. */
    assert_int_equal(message_feedback_id("{{campaign}}:{{ip}}:x:news", "a b", "2001:db8::1", "p",
                                         out, sizeof out, &e),
                     IPW_OK);
    assert_string_equal(out, "a-b:2001-db8--1:x:news");
    assert_int_equal(message_feedback_id("{{recipient}}:x", "c", "i", "p", out, sizeof out, &e),
                     IPW_EUSAGE);
    assert_int_equal(message_feedback_id("{{campaign:x", "c", "i", "p", out, sizeof out, &e),
                     IPW_EUSAGE);
    assert_int_equal(message_feedback_id("{{campaign}}:abcdef", "c", "i", "p", out, 6, &e),
                     IPW_ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_build_exact_single_part),
        cmocka_unit_test(test_message_build_exact_multipart),
        cmocka_unit_test(test_message_boundary_avoids_body),
        cmocka_unit_test(test_message_japanese_subject_and_display_name),
        cmocka_unit_test(test_message_leading_dot_is_not_stuffed),
        cmocka_unit_test(test_message_refusals),
        cmocka_unit_test(test_message_compose_refuses_header_injection),
        cmocka_unit_test(test_message_compose_list_unsubscribe),
        cmocka_unit_test(test_message_prepend_field),
        cmocka_unit_test(test_message_format_date),
        cmocka_unit_test(test_message_id_left),
        cmocka_unit_test(test_message_tmpl_load),
        cmocka_unit_test(test_message_feedback_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
