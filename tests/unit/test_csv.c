/*
 * test_csv: CSV fields (csv.c) and the statistics CSV that uses them (stats_write_csv): RFC 4180
 * quoting, and formula injection defused for a reply text starting with "=HYPERLINK(" and a
 * provider name starting with "-", while numbers and ordinary text are left as they are.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/csv.h"
#include "ipwarm/stats.h"

/* csv_write_field(s) as a string (static). */
static const char *field(const char *s)
{
    static char out[512];
    FILE *f = fmemopen(out, sizeof out, "w");
    assert_non_null(f);
    csv_write_field(f, s);
    fputc('\0', f);
    fclose(f);
    return out;
}

static void test_csv_write_field_rfc4180(void **state)
{
    (void)state;
    assert_string_equal(field("gmail"), "gmail");
    assert_string_equal(field("4.7.28"), "4.7.28");
    assert_string_equal(field(""), "");
    assert_string_equal(field(NULL), "");
    assert_string_equal(field("spam, mail sent"), "\"spam, mail sent\"");
    assert_string_equal(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_string_equal(field("two\r\nlines"), "\"two\r\nlines\"");
}

/* Each character OWASP lists: a leading quote, and the field quoted. */
static void test_csv_write_field_formulas(void **state)
{
    (void)state;
    assert_string_equal(field("=HYPERLINK(\"http://evil.example/\",\"click\")"),
                        "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"click\"\")\"");
    assert_string_equal(field("+1+2"), "\"'+1+2\"");
    assert_string_equal(field("-prov"), "\"'-prov\"");
    assert_string_equal(field("@SUM(A1)"), "\"'@SUM(A1)\"");
    assert_string_equal(field("\tcmd"), "\"'\tcmd\"");
    assert_string_equal(field("\rcmd"), "\"'\rcmd\"");
    assert_true(csv_is_formula("=1"));
    assert_false(csv_is_formula("a=1"));
    assert_false(csv_is_formula("2026-12-01"));
    assert_false(csv_is_formula(""));
    assert_false(csv_is_formula(NULL));
}

/* The statistics CSV of one row whose provider starts with '-' and whose top reply text starts
 * with '=': both defused, the numbers untouched. */
static void test_csv_stats_row_defused(void **state)
{
    (void)state;
    struct stats_reason reason = {.outcome = "deferred",
                                  .code = 421,
                                  .enhanced = "4.7.0",
                                  .text = "=HYPERLINK(\"http://evil.example/\",\"why\")",
                                  .count = 3};
    struct stats_row row = {.period = "2026-12-01",
                            .provider = "-prov",
                            .attempts = 10,
                            .delivered = 7,
                            .deferred = 3,
                            .reasons = &reason,
                            .n_reasons = 1};
    struct stats_result r = {.rows = &row, .n_rows = 1};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    struct err e;
    assert_int_equal(stats_write_csv(&r, f, &e), IPW_OK);
    fclose(f);
    const char *line = strstr(buf, "\r\n");
    assert_non_null(line);
    assert_string_equal(
        line + 2, "2026-12-01,\"'-prov\",10,7,3,0,0,0,0,0.3000,0.0000,421,4.7.0,"
                  "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"why\"\")\",3,0,0,0.0000,0\r\n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_write_field_rfc4180),
        cmocka_unit_test(test_csv_write_field_formulas),
        cmocka_unit_test(test_csv_stats_row_defused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
