/*
 * test_json: the streaming JSON writer (json.c): string escaping, numbers, nesting, commas,
 * and the misuse and write errors that json_finish() reports.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/json.h"

/* A memory stream the writer writes to; text() returns what it holds so far. */
struct sink {
    FILE *f;
    char *buf;
    size_t len;
};

static void sink_open(struct sink *s)
{
    s->buf = NULL;
    s->len = 0;
    s->f = open_memstream(&s->buf, &s->len);
    assert_non_null(s->f);
}

static const char *sink_text(struct sink *s)
{
    fflush(s->f);
    return s->buf;
}

static void sink_close(struct sink *s)
{
    fclose(s->f);
    free(s->buf);
}

/* json_write_string: quotes, backslash, the short escapes, other control characters as \u00XX. */
static void test_json_write_string_escapes(void **state)
{
    (void)state;
    struct sink s;
    sink_open(&s);
    const char in[] = "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj/k\x7f";
    json_write_string(s.f, in, strlen(in));
    assert_string_equal(sink_text(&s), "\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj/k\x7f\"");
    sink_close(&s);
}

/* json_string_n: an embedded NUL byte is escaped, not a terminator. */
static void test_json_string_n_nul(void **state)
{
    (void)state;
    struct sink s;
    sink_open(&s);
    struct json j;
    json_init(&j, s.f, false);
    json_string_n(&j, "a\0b", 3);
    assert_int_equal(json_finish(&j, NULL), IPW_OK);
    assert_string_equal(sink_text(&s), "\"a\\u0000b\"\n");
    sink_close(&s);
}

/* json_write_string: valid UTF-8 passes through; invalid bytes become U+FFFD. */
static void test_json_write_string_utf8(void **state)
{
    (void)state;
    struct sink s;
    sink_open(&s);
    /* "é", "日本", an emoji (4 bytes), then a lone continuation byte, an overlong "/" (C0 AF),
     * a surrogate (ED A0 80) and a truncated sequence at the end. */
    const char in[] =
        "\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x93\xa7 \x80 \xc0\xaf \xed\xa0\x80 \xe6\x97";
    json_write_string(s.f, in, strlen(in));
    assert_string_equal(sink_text(&s), "\"\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x93\xa7 "
                                       "\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
                                       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                                       "\xef\xbf\xbd\xef\xbf\xbd\"");
    sink_close(&s);
}

/* Nesting and commas in compact form: objects in arrays in objects, empty containers. */
static void test_json_nesting_compact(void **state)
{
    (void)state;
    struct sink s;
    sink_open(&s);
    struct json j;
    json_init(&j, s.f, false);
    json_object_begin(&j);
    json_kv_string(&j, "name", "gmail");
    json_kv_bool(&j, "default", false);
    json_key(&j, "mx");
    json_array_begin(&j);
    json_string(&j, ".google.com");
    json_string(&j, ".googlemail.com");
    json_array_end(&j);
    json_key(&j, "empty");
    json_array_begin(&j);
    json_array_end(&j);
    json_key(&j, "obj");
    json_object_begin(&j);
    json_object_end(&j);
    json_key(&j, "rows");
    json_array_begin(&j);
    json_object_begin(&j);
    json_kv_int(&j, "n", 1);
    json_kv_null(&j, "x");
    json_object_end(&j);
    json_object_begin(&j);
    json_kv_int(&j, "n", -2);
    json_object_end(&j);
    json_null(&j);
    json_array_end(&j);
    json_kv_string(&j, "nothing", NULL);
    json_object_end(&j);
    assert_int_equal(json_finish(&j, NULL), IPW_OK);
    assert_string_equal(sink_text(&s),
                        "{\"name\":\"gmail\",\"default\":false,\"mx\":[\".google.com\","
                        "\".googlemail.com\"],\"empty\":[],\"obj\":{},\"rows\":[{\"n\":1,"
                        "\"x\":null},{\"n\":-2},null],\"nothing\":null}\n");
    sink_close(&s);
}

/* Pretty form: two spaces per level, ": " after keys, empty containers stay "[]". */
static void test_json_nesting_pretty(void **state)
{
    (void)state;
    struct sink s;
    sink_open(&s);
    struct json j;
    json_init(&j, s.f, true);
    json_object_begin(&j);
    json_kv_int(&j, "a", 1);
    json_key(&j, "b");
    json_array_begin(&j);
    json_bool(&j, true);
    json_array_end(&j);
    json_key(&j, "c");
    json_array_begin(&j);
    json_array_end(&j);
    json_object_end(&j);
    assert_int_equal(json_finish(&j, NULL), IPW_OK);
    assert_string_equal(sink_text(&s),
                        "{\n  \"a\": 1,\n  \"b\": [\n    true\n  ],\n  \"c\": []\n}\n");
    sink_close(&s);
}

/* Keys are escaped like strings. */
static void test_json_key_escaped(void **state)
{
    (void)state;
    struct sink s;
    sink_open(&s);
    struct json j;
    json_init(&j, s.f, false);
    json_object_begin(&j);
    json_kv_string(&j, "a\"b", "c\nd");
    json_object_end(&j);
    assert_int_equal(json_finish(&j, NULL), IPW_OK);
    assert_string_equal(sink_text(&s), "{\"a\\\"b\":\"c\\nd\"}\n");
    sink_close(&s);
}

/* json_double: shortest round trip, integers without fraction, NaN and infinity as null. */
static void test_json_double(void **state)
{
    (void)state;
    struct sink s;
    sink_open(&s);
    struct json j;
    json_init(&j, s.f, false);
    json_array_begin(&j);
    json_double(&j, 1.5);
    json_double(&j, 5);
    json_double(&j, 0.1);
    json_double(&j, -2.25);
    json_double(&j, 1.0 / 3.0);
    json_double(&j, NAN);
    json_double(&j, INFINITY);
    json_int(&j, INT64_MIN);
    json_array_end(&j);
    assert_int_equal(json_finish(&j, NULL), IPW_OK);
    assert_string_equal(sink_text(&s), "[1.5,5,0.1,-2.25,0.3333333333333333,null,null,"
                                       "-9223372036854775808]\n");
    sink_close(&s);
}

/* The optional members: the value when present (0 included), else null. */
static void test_json_kv_or_null(void **state)
{
    (void)state;
    struct sink s;
    sink_open(&s);
    struct json j;
    json_init(&j, s.f, false);
    json_object_begin(&j);
    json_kv_int_or_null(&j, "a", 0, true);
    json_kv_int_or_null(&j, "b", 7, false);
    json_kv_double_or_null(&j, "c", 0.5, true);
    json_kv_double_or_null(&j, "d", 0.5, false);
    json_object_end(&j);
    assert_int_equal(json_finish(&j, NULL), IPW_OK);
    assert_string_equal(sink_text(&s), "{\"a\":0,\"b\":null,\"c\":0.5,\"d\":null}\n");
    sink_close(&s);
}

/* json_finish: misuse (value without key, unclosed container, mismatched end, second
 * top-level value) is reported as IPW_ESOFTWARE. */
static void test_json_finish_misuse(void **state)
{
    (void)state;
    struct sink s;
    struct json j;
    struct err e;

    sink_open(&s);
    json_init(&j, s.f, false);
    json_object_begin(&j);
    json_string(&j, "no key");
    json_object_end(&j);
    assert_int_equal(json_finish(&j, &e), IPW_ESOFTWARE);
    sink_close(&s);

    sink_open(&s);
    json_init(&j, s.f, false);
    json_array_begin(&j);
    assert_int_equal(json_finish(&j, &e), IPW_ESOFTWARE);
    sink_close(&s);

    sink_open(&s);
    json_init(&j, s.f, false);
    json_array_begin(&j);
    json_object_end(&j);
    assert_int_equal(json_finish(&j, &e), IPW_ESOFTWARE);
    sink_close(&s);

    sink_open(&s);
    json_init(&j, s.f, false);
    json_int(&j, 1);
    json_int(&j, 2);
    assert_int_equal(json_finish(&j, &e), IPW_ESOFTWARE);
    sink_close(&s);

    sink_open(&s);
    json_init(&j, s.f, false);
    assert_int_equal(json_finish(&j, &e), IPW_ESOFTWARE); /* nothing written */
    sink_close(&s);

    sink_open(&s);
    json_init(&j, s.f, false);
    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++)
        json_array_begin(&j);
    assert_int_equal(json_finish(&j, &e), IPW_ESOFTWARE);
    sink_close(&s);
}

/* json_finish: a failed write (a full disk) is IPW_EIO. */
static void test_json_finish_write_error(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    if (!f)
        skip();
    struct json j;
    struct err e;
    json_init(&j, f, false);
    json_string(&j, "x");
    assert_int_equal(json_finish(&j, &e), IPW_EIO);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_write_string_escapes),
        cmocka_unit_test(test_json_string_n_nul),
        cmocka_unit_test(test_json_write_string_utf8),
        cmocka_unit_test(test_json_nesting_compact),
        cmocka_unit_test(test_json_nesting_pretty),
        cmocka_unit_test(test_json_key_escaped),
        cmocka_unit_test(test_json_double),
        cmocka_unit_test(test_json_kv_or_null),
        cmocka_unit_test(test_json_finish_misuse),
        cmocka_unit_test(test_json_finish_write_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
