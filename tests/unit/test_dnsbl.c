/*
 * Tests of dnsbl.c: query names (RFC 5782 2.1 IPv4 octets, 2.4 IPv6 nibbles) and the three
 * outcomes of a look-up, listed (with the TXT reason), not listed, could not check (refusal
 * codes 127.255.255.x, timeout, server failure, an answer outside 127/8), on the in-memory
 * zone, which answers like a recursive server without the wait. The same look-ups against a
 * real dnsmasq are in tests/cli/test_mx_dnsbl.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ipwarm/dnsbl.h"

static void test_dnsbl_query_name(void **state)
{
    (void)state;
    char buf[DNSBL_NAME_MAX];
    struct err e;
    assert_int_equal(dnsbl_query_name("192.0.2.99", "zen.example", buf, sizeof buf, &e), IPW_OK);
    assert_string_equal(buf, "99.2.0.192.zen.example");
    /* A trailing dot on the zone is dropped. */
    assert_int_equal(dnsbl_query_name("10.20.30.40", "bl.test.", buf, sizeof buf, &e), IPW_OK);
    assert_string_equal(buf, "40.30.20.10.bl.test");
    /* RFC 5782 2.4: the example of the RFC, nibble by nibble, lowest first. */
    assert_int_equal(
        dnsbl_query_name("2001:db8:1:2:3:4:567:89ab", "ugly.example.com", buf, sizeof buf, &e),
        IPW_OK);
    assert_string_equal(
        buf, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com");
    assert_int_equal(dnsbl_query_name("2001:db8::1", "z.test", buf, sizeof buf, &e), IPW_OK);
    assert_string_equal(buf,
                        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.z.test");
    assert_int_equal(dnsbl_query_name("192.0.2", "z.test", buf, sizeof buf, &e), IPW_EUSAGE);
    assert_int_equal(dnsbl_query_name("192.0.2.1", "", buf, sizeof buf, &e), IPW_EUSAGE);
    char small[8];
    assert_int_equal(dnsbl_query_name("192.0.2.1", "z.test", small, sizeof small, &e), IPW_EUSAGE);
}

static void zadd(struct dns_zone *z, const char *name, enum dns_type t, const char *data)
{
    struct err e;
    assert_int_equal(dns_zone_add(z, name, t, 300, data, &e), IPW_OK);
}

static const struct dnsbl_zone_result *zone_of(const struct dnsbl_result *r, const char *zone)
{
    for (size_t i = 0; i < r->n_zones; i++)
        if (strcmp(r->zones[i].zone, zone) == 0)
            return &r->zones[i];
    fail_msg("no zone %s", zone);
    return NULL;
}

static void test_dnsbl_lookup_outcomes(void **state)
{
    (void)state;
    struct err e;
    struct dns_zone *z = dns_zone_new();
    assert_non_null(z);
    /* 192.0.2.2 is listed by listed.test, with a reason in two TXT records. */
    zadd(z, "2.2.0.192.listed.test", DNS_T_A, "127.0.0.2");
    zadd(z, "2.2.0.192.listed.test", DNS_T_A, "127.0.0.4");
    zadd(z, "2.2.0.192.listed.test", DNS_T_TXT, "spam source");
    /* A listing without TXT is still a listing. */
    zadd(z, "2.2.0.192.notxt.test", DNS_T_A, "127.0.0.3");
    /* Spamhaus-style refusal: could not check. */
    zadd(z, "2.2.0.192.refused.test", DNS_T_A, "127.255.255.254");
    /* A resolver that rewrites NXDOMAIN to an address of its own. */
    zadd(z, "2.2.0.192.hijack.test", DNS_T_A, "198.51.100.7");
    /* The clean zone owns something else, so its names are NXDOMAIN. */
    zadd(z, "1.0.0.127.clean.test", DNS_T_A, "127.0.0.2");
    struct err fe;
    assert_int_equal(dns_zone_fail(z, "2.2.0.192.slow.test", DNS_T_A, DNS_TIMEOUT, &fe), IPW_OK);
    assert_int_equal(dns_zone_fail(z, "2.2.0.192.broken.test", DNS_T_A, DNS_SERVFAIL, &fe), IPW_OK);
    struct dns *dns = dns_new_zone(z, NULL, &e);
    assert_non_null(dns);

    const char *zones[] = {"listed.test", "notxt.test", "refused.test", "hijack.test",
                           "clean.test",  "slow.test",  "broken.test"};
    const char *ips[] = {"192.0.2.2", "192.0.2.3"};
    struct dnsbl_result res[2];
    assert_int_equal(dnsbl_lookup(dns, ips, 2, zones, 7, res, &e), IPW_OK);

    const struct dnsbl_result *r = &res[0];
    assert_string_equal(r->ip, "192.0.2.2");
    assert_true(r->listed);
    assert_int_equal(r->n_zones, 7);
    assert_int_equal(r->n_unchecked, 4); /* refused, hijack, slow, broken */
    const struct dnsbl_zone_result *zr = zone_of(r, "listed.test");
    assert_true(zr->listed);
    assert_null(zr->error);
    assert_int_equal(zr->n_answers, 2);
    assert_string_equal(zr->answers[0], "127.0.0.2");
    assert_string_equal(zr->answers[1], "127.0.0.4");
    assert_string_equal(zr->txt, "spam source");
    zr = zone_of(r, "notxt.test");
    assert_true(zr->listed);
    assert_null(zr->txt);
    zr = zone_of(r, "refused.test");
    assert_false(zr->listed);
    assert_string_equal(zr->error, "refused-by-list");
    assert_string_equal(zr->answers[0], "127.255.255.254");
    zr = zone_of(r, "hijack.test");
    assert_false(zr->listed);
    assert_string_equal(zr->error, "unexpected-answer");
    zr = zone_of(r, "clean.test");
    assert_false(zr->listed);
    assert_null(zr->error);
    assert_int_equal(zr->n_answers, 0);
    zr = zone_of(r, "slow.test");
    assert_false(zr->listed);
    assert_string_equal(zr->error, "timeout");
    zr = zone_of(r, "broken.test");
    assert_string_equal(zr->error, "servfail");

    /* The second address is in no list: only the zones that answer nothing for it. */
    r = &res[1];
    assert_false(r->listed);
    assert_int_equal(r->n_unchecked, 0);
    for (size_t i = 0; i < r->n_zones; i++) {
        assert_false(r->zones[i].listed);
        assert_null(r->zones[i].error);
    }
    assert_false(dnsbl_result_unreachable(&res[0]));
    dnsbl_result_clear(&res[0]);
    dnsbl_result_clear(&res[1]);

    /* A bad address submits nothing and fails as a usage error. */
    const char *bad[] = {"192.0.2.2", "not-an-ip"};
    unsigned long before = dns_zone_queries(z);
    assert_int_equal(dnsbl_lookup(dns, bad, 2, zones, 1, res, &e), IPW_EUSAGE);
    assert_non_null(strstr(e.msg, "not-an-ip"));
    assert_int_equal(dns_zone_queries(z), before);
    dns_free(dns);
    dns_zone_free(z);
}

static void test_dnsbl_listed_beats_refusal_and_ipv6(void **state)
{
    (void)state;
    struct err e;
    struct dns_zone *z = dns_zone_new();
    assert_non_null(z);
    /* A real listing next to a refusal code still lists the address. */
    zadd(z, "5.2.0.192.mixed.test", DNS_T_A, "127.255.255.252");
    zadd(z, "5.2.0.192.mixed.test", DNS_T_A, "127.0.0.10");
    zadd(z, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.v6.test", DNS_T_A,
         "127.0.0.2");
    struct dns *dns = dns_new_zone(z, NULL, &e);
    assert_non_null(dns);
    const char *zones[] = {"mixed.test", "v6.test"};
    const char *ips[] = {"192.0.2.5", "2001:db8::1"};
    struct dnsbl_result res[2];
    assert_int_equal(dnsbl_lookup(dns, ips, 2, zones, 2, res, &e), IPW_OK);
    assert_true(res[0].listed);
    assert_true(res[0].zones[0].listed);
    assert_null(res[0].zones[0].error);
    assert_true(res[1].listed);
    assert_false(res[1].zones[0].listed);
    assert_true(res[1].zones[1].listed);
    dnsbl_result_clear(&res[0]);
    dnsbl_result_clear(&res[1]);
    dns_free(dns);
    dns_zone_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dnsbl_query_name),
        cmocka_unit_test(test_dnsbl_lookup_outcomes),
        cmocka_unit_test(test_dnsbl_listed_beats_refusal_and_ipv6),
    };
    return cmocka_run_group_tests_name("dnsbl", tests, NULL, NULL);
}
