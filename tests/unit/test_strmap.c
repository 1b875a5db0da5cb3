/*
 * test_strmap: put, find, overwrite, delete (the probe chain past a hole stays reachable), growth
 * past many doublings, the walk sees each entry once, and the map keeps its own copy of a key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ipwarm/strmap.h"

static void test_basic(void **state)
{
    (void)state;
    struct strmap m = {0};
    assert_null(strmap_find(&m, "a"));
    strmap_del(&m, "a"); /* on an empty map: nothing */
    char key[8] = "gmail";
    assert_int_equal(strmap_put(&m, key, 7), 0);
    memcpy(key, "xxxxx", 5); /* the map has its own copy */
    intptr_t *v = strmap_find(&m, "gmail");
    assert_non_null(v);
    assert_int_equal(*v, 7);
    assert_null(strmap_find(&m, "xxxxx"));
    assert_int_equal(strmap_put(&m, "gmail", 9), 0);
    assert_int_equal(*strmap_find(&m, "gmail"), 9);
    assert_int_equal(m.n, 1);
    *strmap_find(&m, "gmail") = 11; /* changed in place */
    assert_int_equal(*strmap_find(&m, "gmail"), 11);
    strmap_del(&m, "gmail");
    assert_null(strmap_find(&m, "gmail"));
    assert_int_equal(m.n, 0);
    strmap_free(&m);
    assert_int_equal(m.cap, 0);
}

static void test_many(void **state)
{
    (void)state;
    struct strmap m = {0};
    char k[32];
    const int n = 5000;
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "user%d@example.test", i);
        assert_int_equal(strmap_put(&m, k, i), 0);
    }
    assert_int_equal(m.n, n);
    assert_true(m.cap >= 2 * (size_t)n);
    /* delete every third: the others must still be found through the holes */
    for (int i = 0; i < n; i += 3) {
        snprintf(k, sizeof k, "user%d@example.test", i);
        strmap_del(&m, k);
    }
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "user%d@example.test", i);
        intptr_t *v = strmap_find(&m, k);
        if (i % 3 == 0) {
            assert_null(v);
        } else {
            assert_non_null(v);
            assert_int_equal(*v, i);
        }
    }
    /* the walk: each remaining entry once */
    static unsigned char seen[5000];
    memset(seen, 0, sizeof seen);
    size_t pos = 0, count = 0;
    const char *key;
    intptr_t val;
    while (strmap_next(&m, &pos, &key, &val)) {
        assert_true(val >= 0 && val < n);
        assert_int_equal(seen[val], 0);
        seen[val] = 1;
        snprintf(k, sizeof k, "user%d@example.test", (int)val);
        assert_string_equal(key, k);
        count++;
    }
    assert_int_equal(count, m.n);
    strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
