/*
 * Unit tests of pool.c: the kind of a throttling reply, and whether the same trouble hit every
 * sending IP of a pool within the hour (the provider is acted on for the whole pool) or only
 * some of them (each IP is acted on alone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ipwarm/pool.h"

#define NOW  1796115600000LL
#define MIN  60000LL
#define HOUR 3600000LL

static void test_pool_key(void **state)
{
    (void)state;
    char k[POOL_KEY_MAX];
    pool_key(NULL, 451, "4.7.500", k, sizeof k);
    assert_string_equal(k, "code:4.7");
    pool_key(NULL, 421, "4.7.0", k, sizeof k);
    assert_string_equal(k, "code:4.7");
    pool_key(NULL, 452, "4.2.2", k, sizeof k);
    assert_string_equal(k, "code:4.2");
    pool_key(NULL, 421, NULL, k, sizeof k);
    assert_string_equal(k, "code:421");
    pool_key(NULL, 0, NULL, k, sizeof k);
    assert_string_equal(k, "code:none");
    pool_key("yahoo-tss04", 421, "4.7.0", k, sizeof k);
    assert_string_equal(k, "rule:yahoo-tss04");
}

static void test_pool_hit_ring(void **state)
{
    (void)state;
    struct pool_hit h[POOL_RECENT_MAX];
    size_t n = 0;
    for (int i = 0; i < POOL_RECENT_MAX + 3; i++) {
        char k[16];
        snprintf(k, sizeof k, "code:%d", 400 + i);
        pool_hit_add(h, &n, k, NOW + i);
    }
    assert_int_equal(n, POOL_RECENT_MAX);
    assert_string_equal(h[0].key, "code:403"); /* the three oldest went */
    assert_int_equal(h[POOL_RECENT_MAX - 1].at_ms, NOW + POOL_RECENT_MAX + 2);
}

/* Three IPs: the pool is acted on only when all three got the same kind within the hour. */
static void test_pool_every_ip(void **state)
{
    (void)state;
    struct pool_hit a[] = {{"code:4.7", NOW - 50 * MIN}};
    struct pool_hit b[] = {{"code:4.2", NOW - 5 * MIN}, {"code:4.7", NOW - 10 * MIN}};
    struct pool_hit c[] = {{"code:4.7", NOW}};
    struct pool_lane l[] = {{a, 1, true}, {b, 2, true}, {c, 1, true}};
    assert_true(pool_every_ip(l, 3, "code:4.7", NOW));
    /* one IP of three throttled only: the IP's trouble */
    assert_false(pool_every_ip(l, 3, "code:4.2", NOW));
    /* a different kind on one IP is not the same trouble */
    struct pool_hit c2[] = {{"code:4.2", NOW}};
    struct pool_lane l2[] = {{a, 1, true}, {b, 2, true}, {c2, 1, true}};
    assert_false(pool_every_ip(l2, 3, "code:4.7", NOW));
    /* the first IP's reply is over an hour old by now */
    assert_false(pool_every_ip(l, 3, "code:4.7", NOW + 11 * MIN));
    /* an IP that has not joined yet (source.start) does not count */
    struct pool_lane l3[] = {{a, 1, true}, {c2, 1, false}, {c, 1, true}};
    assert_true(pool_every_ip(l3, 3, "code:4.7", NOW));
    /* one sending IP is no pool */
    struct pool_lane l4[] = {{a, 1, true}, {c2, 1, false}};
    assert_false(pool_every_ip(l4, 2, "code:4.7", NOW));
    /* a rule's key */
    struct pool_hit r1[] = {{"rule:ms-s3140", NOW - MIN}}, r2[] = {{"rule:ms-s3140", NOW}};
    struct pool_lane l5[] = {{r1, 1, true}, {r2, 1, true}};
    assert_true(pool_every_ip(l5, 2, "rule:ms-s3140", NOW));
    assert_false(pool_every_ip(l5, 2, "code:4.7", NOW));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_key),
        cmocka_unit_test(test_pool_hit_ring),
        cmocka_unit_test(test_pool_every_ip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
