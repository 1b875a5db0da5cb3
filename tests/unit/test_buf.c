/*
 * test_buf: appends grow the string and keep it NUL-terminated, buf_take hands over an empty
 * string when nothing was appended, and buf_grow doubles an array from its first capacity,
 * keeps what it held, leaves a large-enough array alone and refuses a size that overflows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ipwarm/buf.h"

static void test_put_take(void **state)
{
    (void)state;
    struct buf b = {0};
    size_t len = 99;
    char *s = buf_take(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);
    for (int i = 0; i < 300; i++)
        buf_str(&b, "ab");
    buf_put(&b, "c", 1);
    assert_false(b.oom);
    assert_int_equal(b.len, 601);
    assert_int_equal(b.p[600], 'c');
    assert_int_equal(b.p[601], '\0');
    s = buf_take(&b, &len);
    assert_int_equal(len, 601);
    assert_int_equal(strlen(s), 601);
    assert_null(b.p);
    free(s);
}

static void test_grow(void **state)
{
    (void)state;
    size_t cap = 0;
    int *a = buf_grow(NULL, &cap, 1, sizeof *a, 4);
    assert_non_null(a);
    assert_int_equal(cap, 4);
    for (int i = 0; i < 4; i++)
        a[i] = i;
    assert_ptr_equal(buf_grow(a, &cap, 4, sizeof *a, 4), a); /* room enough: untouched */
    assert_int_equal(cap, 4);
    a = buf_grow(a, &cap, 9, sizeof *a, 4);
    assert_non_null(a);
    assert_int_equal(cap, 16);
    for (int i = 0; i < 4; i++)
        assert_int_equal(a[i], i);
    size_t before = cap;
    assert_null(buf_grow(a, &cap, SIZE_MAX / 2, sizeof *a, 4)); /* bytes would overflow */
    assert_int_equal(cap, before);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_take),
        cmocka_unit_test(test_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
