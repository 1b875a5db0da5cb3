/*
 * Unit tests of dkim.c and token.c: relaxed canonicalisation and body hashes against the
 * worked examples of RFC 6376 (3.4.5, appendix A) and RFC 8463 (appendix A), the RFC 8463
 * signatures reproduced byte for byte with the RFC's own keys (RSASSA-PKCS1-v1_5 and Ed25519
 * are deterministic), key loading and refusals, the DNS record and its 255-octet strings,
 * key files (mode 0600, never overwritten), the DKIM-Signature field dkim_sign adds, and the
 * unsubscribe token (HMAC-SHA256 values computed with the openssl command line).
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

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ipwarm/dkim.h"
#include "ipwarm/message.h"
#include "ipwarm/token.h"

/* RFC 8463 A.1 (the RSA key is RFC 6376's example key; the Ed25519 key is RFC 8032 7.1 test 1,
 * here in its PKCS#8 wrapping). */
static const char rfc_rsa_pem[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi\n"
    "Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM\n"
    "KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB\n"
    "AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm\n"
    "6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe\n"
    "zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy\n"
    "6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc\n"
    "uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy\n"
    "WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd\n"
    "WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a\n"
    "licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst\n"
    "o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe\n"
    "uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL\n"
    "-----END RSA PRIVATE KEY-----\n";
static const char rfc_rsa_p[] =
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/"
    "J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBf"
    "O2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
static const char rfc_ed_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";
static const char rfc_ed_p[] = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

/* RFC 8463 A.3: the signed fields, and the two signature fields with their b= values. */
static const char *const rfc_fields[] = {
    "From: Joe SixPack <joe@football.example.com>\r\n",
    "To: Suzie Q <suzie@shopping.example.net>\r\n",
    "Subject: Is dinner ready?\r\n",
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n",
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n",
};
static const char rfc_ed_sig_field[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=";
static const char rfc_ed_b[] =
    "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==";
static const char rfc_rsa_sig_field[] =
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=";
static const char rfc_rsa_b[] = "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3"
                                "DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz"
                                "dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=";
/* RFC 8463 A.3's body (two spaces in the second line, relaxed makes them one) and RFC 6376
 * A.2's (simple canonicalisation there): both hash to the bh= the RFCs print. */
static const char rfc8463_body[] =
    "Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n\r\n";
static const char rfc6376_body[] =
    "Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n";
static const char rfc_bh[] = "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=";

static struct dkim_key *parse(const char *pem)
{
    struct dkim_key *k = NULL;
    struct err e;
    assert_int_equal(dkim_key_parse(pem, strlen(pem), "test key", &k, &e), IPW_OK);
    return k;
}

/* RFC 6376 3.4.5, relaxed header canonicalisation. */
static void test_dkim_canon_header_rfc6376_example(void **state)
{
    (void)state;
    size_t n;
    char *a = dkim_canon_header("A: X\r\n", 6, &n);
    assert_string_equal(a, "a:X");
    assert_int_equal(n, 3);
    const char b_field[] = "B : Y\t\r\n\tZ  \r\n";
    char *b = dkim_canon_header(b_field, sizeof b_field - 1, &n);
    assert_string_equal(b, "b:Y Z");
    free(a);
    free(b);
    /* More edges: folds with runs of WSP, a name in mixed case, WSP before the colon. */
    const char c_field[] = "SubJect \t:  a \t b  \r\n\t c  \r\n";
    char *c = dkim_canon_header(c_field, sizeof c_field - 1, NULL);
    assert_string_equal(c, "subject:a b c");
    free(c);
    char *d = dkim_canon_header("X-Empty:\r\n", 10, NULL);
    assert_string_equal(d, "x-empty:");
    free(d);
}

/* RFC 6376 3.4.5, relaxed body canonicalisation; and the edge cases of 3.4.4. */
static void test_dkim_canon_body_rfc6376_example(void **state)
{
    (void)state;
    const char body[] = " C \r\nD \t E\r\n\r\n\r\n";
    size_t n;
    char *c = dkim_canon_body(body, sizeof body - 1, &n);
    assert_string_equal(c, " C\r\nD E\r\n");
    free(c);
    c = dkim_canon_body("", 0, &n);
    assert_int_equal(n, 0);
    free(c);
    c = dkim_canon_body("\r\n\r\n", 4, &n);
    assert_int_equal(n, 0);
    free(c);
    c = dkim_canon_body("no break", 8, &n);
    assert_string_equal(c, "no break\r\n");
    free(c);
    /* A line of only whitespace is empty: dropped at the end, kept (empty) in the middle. */
    const char ws[] = "a\r\n \t \r\nb\r\n  \r\n\t\r\n";
    c = dkim_canon_body(ws, sizeof ws - 1, &n);
    assert_string_equal(c, "a\r\n\r\nb\r\n");
    free(c);
    /* A line that begins with a dot is body text like any other (no SMTP stuffing here). */
    const char dots[] = ".\r\n..x\r\n";
    c = dkim_canon_body(dots, sizeof dots - 1, &n);
    assert_string_equal(c, ".\r\n..x\r\n");
    free(c);
}

static void test_dkim_body_hash_rfc_examples(void **state)
{
    (void)state;
    char bh[DKIM_BH_LEN + 1];
    struct err e;
    assert_int_equal(dkim_body_hash(rfc8463_body, sizeof rfc8463_body - 1, bh, &e), IPW_OK);
    assert_string_equal(bh, rfc_bh);
    assert_int_equal(dkim_body_hash(rfc6376_body, sizeof rfc6376_body - 1, bh, &e), IPW_OK);
    assert_string_equal(bh, rfc_bh);
    /* The SHA-256 of nothing (FIPS 180-4; `openssl sha256 </dev/null`): an empty body. */
    assert_int_equal(dkim_body_hash("\r\n", 2, bh, &e), IPW_OK);
    assert_string_equal(bh, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

/* Builds RFC 8463's header data (h=from:to:subject:date:message-id:from:subject:date; the
 * second from, subject and date match nothing) and the signature field with an empty b=. */
static char *rfc_header_data(const char *sig_field, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *data = malloc(cap);
    assert_non_null(data);
    for (size_t i = 0; i < sizeof rfc_fields / sizeof rfc_fields[0]; i++) {
        size_t cl;
        char *c = dkim_canon_header(rfc_fields[i], strlen(rfc_fields[i]), &cl);
        assert_true(n + cl + 2 < cap);
        memcpy(data + n, c, cl);
        memcpy(data + n + cl, "\r\n", 2);
        n += cl + 2;
        free(c);
    }
    size_t cl;
    char *c = dkim_canon_header(sig_field, strlen(sig_field), &cl);
    assert_true(n + cl < cap);
    memcpy(data + n, c, cl);
    n += cl;
    free(c);
    *len = n;
    return data;
}

static void test_dkim_sign_data_rfc8463_ed25519(void **state)
{
    (void)state;
    struct dkim_key *k = parse(rfc_ed_pem);
    assert_int_equal(dkim_key_type(k), DKIM_ED25519);
    struct err e;
    char *p = dkim_key_public_b64(k, &e);
    assert_string_equal(p, rfc_ed_p);
    free(p);
    size_t len;
    char *data = rfc_header_data(rfc_ed_sig_field, &len);
    char *b = NULL;
    assert_int_equal(dkim_sign_data(k, data, len, &b, &e), IPW_OK);
    assert_string_equal(b, rfc_ed_b);
    free(b);
    free(data);
    dkim_key_free(k);
}

static void test_dkim_sign_data_rfc8463_rsa(void **state)
{
    (void)state;
    struct dkim_key *k = parse(rfc_rsa_pem);
    assert_int_equal(dkim_key_type(k), DKIM_RSA);
    struct err e;
    char *p = dkim_key_public_b64(k, &e);
    assert_string_equal(p, rfc_rsa_p);
    free(p);
    size_t len;
    char *data = rfc_header_data(rfc_rsa_sig_field, &len);
    char *b = NULL;
    assert_int_equal(dkim_sign_data(k, data, len, &b, &e), IPW_OK);
    assert_string_equal(b, rfc_rsa_b);
    free(b);
    free(data);
    dkim_key_free(k);
}

static char *temp_dir(void)
{
    char *d = strdup("/tmp/ipwarm-dkim-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static void test_dkim_key_load_refusals(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[256];
    struct dkim_key *k = NULL;
    struct err e;

    snprintf(path, sizeof path, "%s/missing.pem", dir);
    assert_int_equal(dkim_key_load(path, &k, &e), IPW_ENOINPUT);
    assert_non_null(strstr(e.msg, path));
    assert_null(k);

    snprintf(path, sizeof path, "%s/garbage.pem", dir);
    write_file(path, "not a key\n");
    assert_int_equal(dkim_key_load(path, &k, &e), IPW_EDATA);
    assert_non_null(strstr(e.msg, path));

    /* Keys of the wrong kind or size, made by the openssl command line. */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
             "-out ec.pem 2>/dev/null && openssl genpkey -algorithm RSA -pkeyopt "
             "rsa_keygen_bits:512 -out small.pem 2>/dev/null && openssl genpkey -algorithm "
             "ed25519 -aes-128-cbc -pass pass:secret -out enc.pem 2>/dev/null && openssl "
             "genpkey -algorithm ed25519 -out ed.pem 2>/dev/null",
             dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/ec.pem", dir);
    assert_int_equal(dkim_key_load(path, &k, &e), IPW_EDATA);
    assert_non_null(strstr(e.msg, "RSA"));
    snprintf(path, sizeof path, "%s/small.pem", dir);
    assert_int_equal(dkim_key_load(path, &k, &e), IPW_EDATA);
    assert_non_null(strstr(e.msg, "512 bits"));
    snprintf(path, sizeof path, "%s/enc.pem", dir);
    assert_int_equal(dkim_key_load(path, &k, &e), IPW_EDATA);
    assert_non_null(strstr(e.msg, "encrypted"));
    snprintf(path, sizeof path, "%s/ed.pem", dir);
    assert_int_equal(dkim_key_load(path, &k, &e), IPW_OK);
    assert_int_equal(dkim_key_type(k), DKIM_ED25519);
    dkim_key_free(k);
    rm_rf(dir);
    free(dir);
}

static void test_dkim_record_and_split(void **state)
{
    (void)state;
    struct dkim_key *k = parse(rfc_ed_pem);
    char *txt = NULL;
    struct err e;
    assert_int_equal(dkim_record(k, &txt, &e), IPW_OK);
    assert_string_equal(txt, "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    char **s = NULL;
    size_t n = 0;
    assert_int_equal(dkim_record_split(txt, &s, &n, &e), IPW_OK);
    assert_int_equal(n, 2);
    assert_string_equal(s[0], "v=DKIM1; k=ed25519; ");
    assert_string_equal(s[1], "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    dkim_strings_free(s, n);
    free(txt);
    dkim_key_free(k);

    /* A 2048-bit RSA key: p= is 2 + 392 characters, so three strings (16, 255, 139). */
    assert_int_equal(dkim_key_generate(DKIM_RSA, &k, &e), IPW_OK);
    assert_int_equal(dkim_record(k, &txt, &e), IPW_OK);
    assert_int_equal(strlen(txt), 16 + 2 + 392);
    assert_int_equal(
        strncmp(txt, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 62), 0);
    assert_int_equal(dkim_record_split(txt, &s, &n, &e), IPW_OK);
    assert_int_equal(n, 3);
    assert_string_equal(s[0], "v=DKIM1; k=rsa; ");
    assert_int_equal(strlen(s[1]), 255);
    assert_int_equal(strlen(s[2]), 394 - 255);
    char joined[1024];
    size_t jl = 0;
    for (size_t i = 0; i < n; i++) {
        size_t sl = strlen(s[i]);
        assert_true(jl + sl < sizeof joined);
        memcpy(joined + jl, s[i], sl);
        jl += sl;
    }
    joined[jl] = '\0';
    assert_string_equal(joined, txt);
    dkim_strings_free(s, n);
    free(txt);
    dkim_key_free(k);
}

static void test_dkim_key_write_mode_and_no_overwrite(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/s.example.com.pem", dir);
    struct dkim_key *k = NULL, *back = NULL;
    struct err e;
    mode_t old = umask(0);
    assert_int_equal(dkim_key_generate(DKIM_ED25519, &k, &e), IPW_OK);
    assert_int_equal(dkim_key_write(k, path, &e), IPW_OK);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The file loads back to the same public key. */
    assert_int_equal(dkim_key_load(path, &back, &e), IPW_OK);
    char *p1 = dkim_key_public_b64(k, &e), *p2 = dkim_key_public_b64(back, &e);
    assert_string_equal(p1, p2);
    free(p1);
    free(p2);
    /* Never overwritten: the second write fails and the first key is still there. */
    assert_int_equal(dkim_key_write(k, path, &e), IPW_ECANTCREAT);
    assert_non_null(strstr(e.msg, "exists"));
    dkim_key_free(k);
    dkim_key_free(back);
    rm_rf(dir);
    free(dir);
}

/* A message from message_build, signed; checks the field dkim_sign adds and, with OpenSSL's
 * verifier and the header data rebuilt here by the RFC 6376 3.7 rules, its signature. */
static void test_dkim_sign_message(void **state)
{
    (void)state;
    struct message_header extra[] = {
        {"List-Unsubscribe", "<https://example.com/u/abc>"},
        {"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"},
    };
    struct message_parts p = {
        .from_name = "News",
        .from_addr = "news@example.com",
        .to_addr = "b@example.net",
        .subject = "Hello",
        .date = "Tue, 01 Dec 2026 09:00:00 +0900",
        .id_left = "c.1.1",
        .text = "Hi.\n.dot line\n",
        .text_len = 14,
        .extra = extra,
        .n_extra = 2,
    };
    struct message m;
    struct err e;
    assert_int_equal(message_build(&p, &m, &e), IPW_OK);
    size_t before = m.len;
    struct dkim_key *k = parse(rfc_ed_pem);
    struct dkim_sign_opts o = {.domain = "example.com", .selector = "s2026", .expire_s = 86400};
    /* 2026-12-01T00:00:00Z = 1796083200 s (20788 days after the epoch). */
    int64_t now_ms = INT64_C(1796083200) * 1000 + 999;
    assert_int_equal(dkim_sign(k, &o, &m, now_ms, &e), IPW_OK);
    assert_int_equal(message_field_find(&m, "DKIM-Signature"), 0);
    const struct message_field *f = &m.fields[0];
    assert_int_equal(m.len, before + f->len);
    char *field = strndup(m.data + f->off, f->len);
    assert_int_equal(strncmp(field,
                             "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; "
                             "d=example.com;\r\n s=s2026; t=1796083200; x=1796169600; h=",
                             strlen("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; "
                                    "d=example.com;\r\n s=s2026; t=1796083200; x=1796169600; "
                                    "h=")),
                     0);
    /* Lines within 78 columns, b= last. */
    for (char *line = field, *end; (end = strstr(line, "\r\n")); line = end + 2)
        assert_true(end - line <= 78);
    char *bpos = strstr(field, " b=");
    assert_non_null(bpos);
    assert_null(strchr(bpos, ';'));

    /* Unfold and parse h= and b=. */
    char flat[4096];
    size_t fl = 0;
    for (size_t i = 0; i < f->len && fl + 1 < sizeof flat; i++)
        if (field[i] != '\r' && field[i] != '\n' && field[i] != ' ')
            flat[fl++] = field[i];
    flat[fl] = '\0';
    char *h = strstr(flat, ";h=") + 3;
    char *hend = strchr(h, ';');
    *hend = '\0';
    assert_string_equal(h, "from:from:to:to:cc:reply-to:subject:subject:date:date:message-id:"
                           "message-id:in-reply-to:references:mime-version:mime-version:"
                           "content-type:content-type:content-transfer-encoding:"
                           "content-transfer-encoding:list-unsubscribe:list-unsubscribe:"
                           "list-unsubscribe-post:list-unsubscribe-post");
    char *bh = strstr(hend + 1, "bh=") + 3;
    char *bhend = strchr(bh, ';');
    *bhend = '\0';
    /* The body as built, hashed by the function the RFC examples checked. */
    char want_bh[DKIM_BH_LEN + 1];
    assert_int_equal(dkim_body_hash(m.data + m.body_off, m.len - m.body_off, want_bh, &e), IPW_OK);
    assert_string_equal(bh, want_bh);
    char *b64 = strstr(bhend + 1, "b=") + 2;

    /* Header data: each signed field once, bottom-up, then the signature field without b=. */
    static const char *const order[] = {"From",
                                        "To",
                                        "Subject",
                                        "Date",
                                        "Message-ID",
                                        "MIME-Version",
                                        "Content-Type",
                                        "Content-Transfer-Encoding",
                                        "List-Unsubscribe",
                                        "List-Unsubscribe-Post"};
    char data[8192];
    size_t dl = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        long idx = message_field_find(&m, order[i]);
        assert_true(idx > 0);
        size_t cl;
        char *c = dkim_canon_header(m.data + m.fields[idx].off, m.fields[idx].len, &cl);
        memcpy(data + dl, c, cl);
        memcpy(data + dl + cl, "\r\n", 2);
        dl += cl + 2;
        free(c);
    }
    size_t cl;
    char *c = dkim_canon_header(field, (size_t)(bpos + 3 - field), &cl);
    memcpy(data + dl, c, cl);
    dl += cl;
    free(c);
    unsigned char sig[128], hash[32];
    int sl = EVP_DecodeBlock(sig, (const unsigned char *)b64, (int)strlen(b64));
    assert_int_equal(sl, 66); /* 64 bytes and two '=' of padding */
    unsigned int hn;
    assert_int_equal(EVP_Digest(data, dl, hash, &hn, EVP_sha256(), NULL), 1);
    unsigned char pub[32];
    assert_int_equal(EVP_DecodeBlock(pub, (const unsigned char *)rfc_ed_p, 44), 33);
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk), 1);
    assert_int_equal(EVP_DigestVerify(ctx, sig, 64, hash, 32), 1);
    /* A changed subject no longer verifies. */
    data[strstr(data, "subject:Hello") - data + 8] = 'J';
    assert_int_equal(EVP_Digest(data, dl, hash, &hn, EVP_sha256(), NULL), 1);
    EVP_MD_CTX_free(ctx);
    ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk), 1);
    assert_int_equal(EVP_DigestVerify(ctx, sig, 64, hash, 32), 0);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    free(field);

    /* Refusals leave the message unchanged. */
    size_t len = m.len;
    struct dkim_sign_opts bad = {.domain = "example.com; x=1", .selector = "s"};
    assert_int_equal(dkim_sign(k, &bad, &m, now_ms, &e), IPW_EUSAGE);
    bad = (struct dkim_sign_opts){.domain = "example.com", .selector = ""};
    assert_int_equal(dkim_sign(k, &bad, &m, now_ms, &e), IPW_EUSAGE);
    assert_int_equal(m.len, len);
    message_free(&m);
    dkim_key_free(k);
}

static void test_token_values(void **state)
{
    (void)state;
    struct token_secret s = {0};
    memcpy(s.key, "0123456789abcdef0123456789abcdef", 32);
    s.len = 32;
    char t[TOKEN_LEN + 1];
    /* printf 'spring-2026\0taro@example.jp' | openssl dgst -sha256 -mac HMAC -macopt key:...
     * -binary | head -c16 | base64 | tr '+/' '-_' | tr -d '=' */
    assert_string_equal(token_make(&s, "spring-2026", "taro@example.jp", t),
                        "OCzFBWD0DvVxXdBdEO_-qg");
    assert_string_equal(token_make(&s, "x", "a@b.c", t), "_F1EXYtIdSN2pI0gpzGE_g");
    assert_true(token_check(&s, "x", "a@b.c", "_F1EXYtIdSN2pI0gpzGE_g"));
    assert_false(token_check(&s, "x", "a@b.c", "_F1EXYtIdSN2pI0gpzGE_h"));
    assert_false(token_check(&s, "y", "a@b.c", "_F1EXYtIdSN2pI0gpzGE_g"));
    assert_false(token_check(&s, "x", "a@b.c", "short"));
    token_secret_clear(&s);
}

static void test_token_secret_sources(void **state)
{
    (void)state;
    char *dir = temp_dir();
    char path[256], other[256];
    snprintf(path, sizeof path, "%s/ipwarm.db.unsubscribe-secret", dir);
    snprintf(other, sizeof other, "%s/other-secret", dir);
    char *def = token_secret_default_path("/var/lib/ipwarm/ipwarm.db");
    assert_string_equal(def, "/var/lib/ipwarm/ipwarm.db.unsubscribe-secret");
    free(def);
    unsetenv(TOKEN_ENV);
    unsetenv(TOKEN_ENV_FILE);
    struct token_secret s;
    struct err e;
    /* No source at all. */
    assert_int_equal(token_secret_load(NULL, &s, &e), IPW_EUSAGE);
    /* The default file is made once (mode 0600, 64 hex digits) and then read back. */
    assert_int_equal(token_secret_load(path, &s, &e), IPW_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(s.len, 64);
    char t1[TOKEN_LEN + 1], t2[TOKEN_LEN + 1];
    token_make(&s, "c", "a@b.c", t1);
    assert_int_equal(token_secret_load(path, &s, &e), IPW_OK);
    token_make(&s, "c", "a@b.c", t2);
    assert_string_equal(t1, t2);
    /* The environment wins over the file; a short secret is refused. */
    setenv(TOKEN_ENV, "0123456789abcdef0123456789abcdef", 1);
    assert_int_equal(token_secret_load(path, &s, &e), IPW_OK);
    assert_string_equal(token_make(&s, "x", "a@b.c", t1), "_F1EXYtIdSN2pI0gpzGE_g");
    setenv(TOKEN_ENV, "tiny-pw", 1);
    assert_int_equal(token_secret_load(path, &s, &e), IPW_EUSAGE);
    assert_null(strstr(e.msg, "tiny-pw")); /* the secret is never in a message */
    unsetenv(TOKEN_ENV);
    /* A named file, its final line break ignored. */
    write_file(other, "0123456789abcdef0123456789abcdef\n");
    setenv(TOKEN_ENV_FILE, other, 1);
    assert_int_equal(token_secret_load(path, &s, &e), IPW_OK);
    assert_string_equal(token_make(&s, "x", "a@b.c", t1), "_F1EXYtIdSN2pI0gpzGE_g");
    /* A FIFO named there is refused at once, never waited on. */
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/secret-fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    setenv(TOKEN_ENV_FILE, fifo, 1);
    alarm(10);
    assert_int_equal(token_secret_load(path, &s, &e), IPW_ENOINPUT);
    alarm(0);
    assert_non_null(strstr(e.msg, "secret-fifo is a FIFO (named pipe), not a regular file"));
    unsetenv(TOKEN_ENV_FILE);
    token_secret_clear(&s);
    rm_rf(dir);
    free(dir);
}

/* Every line of the signature field stays within 78 columns whatever the lengths of the domain,
 * the selector and the signed names: a fold goes before a ":" of h= (FWS is allowed on both
 * sides of it, RFC 6376 3.5) rather than leaving the ":" in column 79. */
static void test_dkim_sign_fold_columns(void **state)
{
    (void)state;
    struct dkim_key *k = parse(rfc_ed_pem);
    static const char *const names[] = {
        "From",       "To",           "Subject", "Date",
        "Message-ID", "X-Abcdefghij", "X-Ab",    "X-Abcdefghijklmnopqrst",
        NULL};
    for (int dl = 1; dl <= 40; dl++) {
        for (int extra = 0; extra < 24; extra++) {
            char domain[64], sel[32], name[40];
            snprintf(domain, sizeof domain, "%.*s.example", dl,
                     "dddddddddddddddddddddddddddddddddddddddddddddddddddd");
            snprintf(sel, sizeof sel, "s%.*s", extra % 12, "123456789012");
            snprintf(name, sizeof name, "X-%.*s", extra, "abcdefghijklmnopqrstuvwxyz");
            const char *hs[] = {names[0], names[1], names[2], names[3], names[4],
                                name,     names[5], names[6], names[7], NULL};
            struct message_header extra_h[] = {{name, "1"}};
            struct message_parts p = {.from_name = "News",
                                      .from_addr = "news@example.com",
                                      .to_addr = "b@example.net",
                                      .subject = "Hello",
                                      .date = "Tue, 01 Dec 2026 09:00:00 +0900",
                                      .id_left = "c.1.1",
                                      .text = "Hi.\n",
                                      .text_len = 4,
                                      .extra = extra_h,
                                      .n_extra = 1};
            struct message m;
            struct err e;
            assert_int_equal(message_build(&p, &m, &e), IPW_OK);
            struct dkim_sign_opts o = {.domain = domain, .selector = sel, .headers = hs};
            assert_int_equal(dkim_sign(k, &o, &m, INT64_C(1796083200) * 1000, &e), IPW_OK);
            const struct message_field *f = &m.fields[0];
            char *field = strndup(m.data + f->off, f->len);
            for (char *line = field, *end; (end = strstr(line, "\r\n")); line = end + 2) {
                if (end - line > 78)
                    fail_msg("line of %d columns (domain %s, selector %s, name %s): %.*s",
                             (int)(end - line), domain, sel, name, (int)(end - line), line);
            }
            free(field);
            message_free(&m);
        }
    }
    dkim_key_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dkim_canon_header_rfc6376_example),
        cmocka_unit_test(test_dkim_canon_body_rfc6376_example),
        cmocka_unit_test(test_dkim_body_hash_rfc_examples),
        cmocka_unit_test(test_dkim_sign_data_rfc8463_ed25519),
        cmocka_unit_test(test_dkim_sign_data_rfc8463_rsa),
        cmocka_unit_test(test_dkim_key_load_refusals),
        cmocka_unit_test(test_dkim_record_and_split),
        cmocka_unit_test(test_dkim_key_write_mode_and_no_overwrite),
        cmocka_unit_test(test_dkim_sign_message),
        cmocka_unit_test(test_dkim_sign_fold_columns),
        cmocka_unit_test(test_token_values),
        cmocka_unit_test(test_token_secret_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
