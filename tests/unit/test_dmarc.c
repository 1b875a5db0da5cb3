/*
 * Tests of dmarc.c: the record's syntax (RFC 7489 6.3, 6.4), the organisational domain by the
 * last two labels, identifier alignment strict and relaxed (3.1), discovery at _dmarc.<domain>
 * on the in-memory zone (6.6.3: records not starting v=DMARC1 are discarded; a timeout is a
 * status, not an answer), and dkim_tag, the tag=value reader DMARC shares with DKIM. The check
 * that reports on a plan's sender is tested in test_preflight.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ipwarm/dkim.h"
#include "ipwarm/dmarc.h"

static void test_dmarc_parse(void **state)
{
    (void)state;
    struct dmarc_record d;
    const char *why;
    assert_true(dmarc_parse("v=DMARC1; p=none; rua=mailto:d@example.com", &d, &why));
    assert_null(why);
    assert_string_equal(d.policy, "none");
    assert_false(d.adkim_strict);
    assert_false(d.aspf_strict);
    assert_true(dmarc_parse("v=DMARC1;p=Reject;adkim=s; aspf=r", &d, &why));
    assert_string_equal(d.policy, "reject");
    assert_true(d.adkim_strict);
    assert_false(d.aspf_strict);
    assert_true(dmarc_parse("  v = DMARC1 ; p = quarantine ; aspf = S", &d, NULL));
    assert_string_equal(d.policy, "quarantine");
    assert_true(d.aspf_strict);
    assert_false(dmarc_parse("p=none; v=DMARC1", &d, &why));
    assert_non_null(strstr(why, "v=DMARC1"));
    assert_false(dmarc_parse("v=DMARC2; p=none", &d, &why));
    assert_non_null(strstr(why, "v=DMARC1"));
    assert_false(dmarc_parse("v=DMARC1; rua=mailto:x@y.test", &d, &why));
    assert_non_null(strstr(why, "p="));
    assert_false(dmarc_parse("v=DMARC1; p=block", &d, &why));
    assert_non_null(strstr(why, "quarantine"));
    assert_false(dmarc_parse("v=DMARC1; p=none; aspf=x", &d, &why));
    assert_string_equal(why, "aspf= is not r or s");
    assert_false(dmarc_parse("v=DMARC1; p=none; adkim=relaxed", &d, &why));
    assert_string_equal(why, "adkim= is not r or s");
}

static void test_dmarc_org_domain_and_alignment(void **state)
{
    (void)state;
    assert_string_equal(dmarc_org_domain("mail.news.example.com"), "example.com");
    assert_string_equal(dmarc_org_domain("example.com"), "example.com");
    assert_string_equal(dmarc_org_domain("example.com."), "example.com.");
    assert_string_equal(dmarc_org_domain("localhost"), "localhost");
    /* Relaxed: the same organisational domain, case and a trailing dot aside. */
    assert_true(dmarc_aligned("bounces.Example.COM", "news.example.com", false));
    assert_true(dmarc_aligned("example.com.", "example.com", false));
    assert_false(dmarc_aligned("example.net", "example.com", false));
    /* Strict: the very name. */
    assert_false(dmarc_aligned("bounces.example.com", "news.example.com", true));
    assert_true(dmarc_aligned("NEWS.example.com.", "news.example.com", true));
}

static void zadd(struct dns_zone *z, const char *name, const char *txt)
{
    struct err e;
    assert_int_equal(dns_zone_add(z, name, DNS_T_TXT, 300, txt, &e), IPW_OK);
}

static void test_dmarc_lookup(void **state)
{
    (void)state;
    struct dns_zone *z = dns_zone_new();
    assert_non_null(z);
    zadd(z, "_dmarc.one.test", "some-verification=abc");
    zadd(z, "_dmarc.one.test", "v=DMARC1; p=reject");
    zadd(z, "_dmarc.two.test", "v=DMARC1; p=none");
    zadd(z, "_dmarc.two.test", "v=DMARC1; p=quarantine");
    zadd(z, "_dmarc.noise.test", "v=spf1 -all");
    struct err e;
    assert_int_equal(dns_zone_fail(z, "_dmarc.slow.test", DNS_T_TXT, DNS_TIMEOUT, &e), IPW_OK);
    struct dns *dns = dns_new_zone(z, NULL, &e);
    assert_non_null(dns);

    enum dns_status st;
    size_t count;
    char *rec;
    assert_int_equal(dmarc_lookup(dns, "one.test", &st, &count, &rec, &e), IPW_OK);
    assert_int_equal(st, DNS_OK);
    assert_int_equal(count, 1);
    assert_string_equal(rec, "v=DMARC1; p=reject");
    free(rec);

    assert_int_equal(dmarc_lookup(dns, "two.test", &st, &count, &rec, &e), IPW_OK);
    assert_int_equal(st, DNS_OK);
    assert_int_equal(count, 2);
    assert_non_null(rec);
    free(rec);

    assert_int_equal(dmarc_lookup(dns, "noise.test", &st, &count, &rec, &e), IPW_OK);
    assert_int_equal(st, DNS_NODATA);
    assert_int_equal(count, 0);
    assert_null(rec);

    assert_int_equal(dmarc_lookup(dns, "absent.test", &st, &count, &rec, &e), IPW_OK);
    assert_int_equal(st, DNS_NXDOMAIN);
    assert_null(rec);

    assert_int_equal(dmarc_lookup(dns, "slow.test", &st, &count, &rec, &e), IPW_OK);
    assert_int_equal(st, DNS_TIMEOUT);
    assert_int_equal(count, 0);
    assert_null(rec);

    dns_free(dns);
    dns_zone_free(z);
}

static void test_dmarc_dkim_tag(void **state)
{
    (void)state;
    char v[16];
    assert_true(dkim_tag("v=DKIM1; k = ed25519 ;p=ab cd\r\n ef", "p", v, sizeof v));
    assert_string_equal(v, "abcdef");
    assert_true(dkim_tag("v=DKIM1; k = ed25519 ;p=abcdef", "K", v, sizeof v));
    assert_string_equal(v, "ed25519");
    assert_false(dkim_tag("v=DKIM1; kp=x", "p", v, sizeof v));
    assert_true(dkim_tag("p=", "p", v, sizeof v));
    assert_string_equal(v, "");
    char small[4];
    assert_true(dkim_tag("p=abcdef", "p", small, sizeof small));
    assert_string_equal(small, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dmarc_parse),
        cmocka_unit_test(test_dmarc_org_domain_and_alignment),
        cmocka_unit_test(test_dmarc_lookup),
        cmocka_unit_test(test_dmarc_dkim_tag),
    };
    return cmocka_run_group_tests_name("dmarc", tests, NULL, NULL);
}
