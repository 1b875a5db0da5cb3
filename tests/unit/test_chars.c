/*
 * test_chars: every byte against the ASCII character classes, the classes' members written out
 * from the RFCs here (not derived from the code), and no byte of 0x80 or above in any class,
 * whatever the locale.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ipwarm/chars.h"

static bool in(const char *set, int c)
{
    return c != 0 && strchr(set, c) != NULL;
}

#define DIGITS "0123456789"
#define UPPER  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define LOWER  "abcdefghijklmnopqrstuvwxyz"

static void test_every_byte(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        assert_int_equal(chars_is_digit(c), in(DIGITS, c));
        assert_int_equal(chars_is_upper(c), in(UPPER, c));
        assert_int_equal(chars_is_lower(c), in(LOWER, c));
        assert_int_equal(chars_is_alpha(c), in(UPPER LOWER, c));
        assert_int_equal(chars_is_alnum(c), in(UPPER LOWER DIGITS, c));
        assert_int_equal(chars_is_hex(c), in(DIGITS "abcdefABCDEF", c));
        assert_int_equal(chars_is_blank(c), in(" \t", c));
        assert_int_equal(chars_is_space(c), in(" \t\n\v\f\r", c));
        assert_int_equal(chars_is_atext(c), in(UPPER LOWER DIGITS "!#$%&'*+-/=?^_`{|}~", c));
        assert_int_equal(chars_is_ldh(c), in(UPPER LOWER DIGITS "-", c));
        assert_int_equal(chars_is_unreserved(c), in(UPPER LOWER DIGITS "-._~", c));
        if (c >= 0x80) {
            assert_int_equal(chars_lower(c), c);
            assert_int_equal(chars_upper(c), c);
        }
    }
}

static void test_values(void **state)
{
    (void)state;
    assert_int_equal(chars_hex_value('0'), 0);
    assert_int_equal(chars_hex_value('9'), 9);
    assert_int_equal(chars_hex_value('a'), 10);
    assert_int_equal(chars_hex_value('F'), 15);
    assert_int_equal(chars_hex_value('g'), -1);
    assert_int_equal(chars_lower('Q'), 'q');
    assert_int_equal(chars_lower('q'), 'q');
    assert_int_equal(chars_lower('['), '[');
    assert_int_equal(chars_upper('z'), 'Z');
    assert_int_equal(chars_upper('@'), '@');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
