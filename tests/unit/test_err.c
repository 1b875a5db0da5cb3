/*
 * test_err: err_prefix puts where before a callee's sentence and sets the status, also when an
 * argument points into the message itself, and cuts the old message, not the prefix, when the
 * two do not fit; err_append adds lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ipwarm/err.h"

static struct err e;

static void test_prefix(void **state)
{
    (void)state;
    err_set(&e, IPW_EUNAVAIL, "cannot connect to 127.0.0.1:25");
    assert_int_equal(err_prefix(&e, IPW_ETEMP, "relay %s: ", "r1"), IPW_ETEMP);
    assert_int_equal(e.status, IPW_ETEMP);
    assert_string_equal(e.msg, "relay r1: cannot connect to 127.0.0.1:25");
    /* an empty message gets the prefix alone */
    err_clear(&e);
    err_prefix(&e, IPW_EIO, "x: ");
    assert_string_equal(e.msg, "x: ");
    assert_int_equal(err_prefix(NULL, IPW_EIO, "x"), IPW_EIO);
}

static void test_prefix_self(void **state)
{
    (void)state;
    /* the message as an argument of its own prefix: formatted before it moves */
    err_set(&e, IPW_ECONFIG, "abc");
    err_prefix(&e, IPW_ESOFTWARE, "[%s] ", e.msg);
    assert_string_equal(e.msg, "[abc] abc");
    assert_int_equal(e.status, IPW_ESOFTWARE);
}

static void test_prefix_cut(void **state)
{
    (void)state;
    char big[ERR_MSG_MAX];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    err_set(&e, IPW_EDATA, "%s", big);
    err_prefix(&e, IPW_EDATA, "where: ");
    assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
    assert_memory_equal(e.msg, "where: mmm", 10);
    assert_int_equal(e.msg[ERR_MSG_MAX - 2], 'm');
}

static void test_append(void **state)
{
    (void)state;
    err_clear(&e);
    err_append(&e, IPW_EDATA, "one");
    err_append(&e, IPW_EIO, "two");
    assert_string_equal(e.msg, "one\ntwo");
    assert_int_equal(e.status, IPW_EDATA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_prefix_self),
        cmocka_unit_test(test_prefix_cut),
        cmocka_unit_test(test_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
