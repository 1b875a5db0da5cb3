/*
 * test_spf: spf_check() over the in-memory zone, one behaviour of RFC 7208 per test: results
 * of each mechanism, the explanation, mechanism and domain reported, the lookup counts and
 * their limits, macros, IPv6 and IPv4-mapped clients, CNAMEs, DNS failures and usage errors.
 * (test_spf_suite runs the OpenSPF conformance suite; this file checks what it does not: the
 * reported details, counts and the API's own choices.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ipwarm/clock.h"
#include "ipwarm/dns.h"
#include "ipwarm/spf.h"

struct rec {
    const char *name;
    enum dns_type type;
    const char *data;
};

struct fixture {
    struct dns_zone *zone;
    struct dns *dns;
};

static struct fixture fx;

static void zone_load(const struct rec *recs)
{
    struct err e;
    fx.zone = dns_zone_new();
    assert_non_null(fx.zone);
    for (const struct rec *r = recs; r->name; r++)
        assert_int_equal(dns_zone_add(fx.zone, r->name, r->type, 300, r->data, &e), IPW_OK);
    fx.dns = dns_new_zone(fx.zone, NULL, &e);
    assert_non_null(fx.dns);
}

static int teardown(void **state)
{
    (void)state;
    dns_free(fx.dns);
    dns_zone_free(fx.zone);
    fx.dns = NULL;
    fx.zone = NULL;
    clock_clear_override();
    return 0;
}

static struct spf_result check(const char *ip, const char *sender, const char *helo)
{
    struct spf_result r;
    struct err e;
    ipw_status st = spf_check(fx.dns, ip, sender, helo, &r, &e);
    if (st != IPW_OK)
        fail_msg("spf_check: %s", e.msg);
    return r;
}

static void test_result_names(void **state)
{
    (void)state;
    assert_string_equal(spf_result_name(SPF_NONE), "none");
    assert_string_equal(spf_result_name(SPF_NEUTRAL), "neutral");
    assert_string_equal(spf_result_name(SPF_PASS), "pass");
    assert_string_equal(spf_result_name(SPF_FAIL), "fail");
    assert_string_equal(spf_result_name(SPF_SOFTFAIL), "softfail");
    assert_string_equal(spf_result_name(SPF_TEMPERROR), "temperror");
    assert_string_equal(spf_result_name(SPF_PERMERROR), "permerror");
}

static void test_pass_ip4_reports_term_and_domain(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"example.com", DNS_T_TXT, "v=spf1 ip4:192.0.2.0/24 -all"},
        {"example.com", DNS_T_TXT, "google-site-verification=abc"}, /* not SPF: ignored */
        {NULL, 0, NULL}};
    zone_load(z);
    struct spf_result r = check("192.0.2.10", "news@example.com", "mail.example.com");
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.mechanism, "ip4:192.0.2.0/24");
    assert_string_equal(r.domain, "example.com");
    assert_string_equal(r.explanation,
                        "192.0.2.10 is permitted by ip4:192.0.2.0/24 in example.com");
    assert_int_equal(r.lookups, 0);
    assert_int_equal(r.void_lookups, 0);

    r = check("192.0.3.1", "news@example.com", "mail.example.com");
    assert_int_equal(r.result, SPF_FAIL);
    assert_string_equal(r.mechanism, "-all");
    /* No exp=: the default names the IP, the term and the domain. */
    assert_string_equal(r.explanation, "192.0.3.1 is not permitted by -all in example.com");
}

static void test_qualifiers_and_default(void **state)
{
    (void)state;
    static const struct rec z[] = {{"soft.test", DNS_T_TXT, "v=spf1 ip4:198.51.100.1 ~all"},
                                   {"neutral.test", DNS_T_TXT, "v=spf1 ?ip4:198.51.100.1"},
                                   {"empty.test", DNS_T_TXT, "v=spf1"},
                                   {"none.test", DNS_T_A, "198.51.100.1"},
                                   {NULL, 0, NULL}};
    zone_load(z);
    assert_int_equal(check("198.51.100.2", "a@soft.test", "h.test").result, SPF_SOFTFAIL);
    assert_int_equal(check("198.51.100.1", "a@soft.test", "h.test").result, SPF_PASS);
    struct spf_result r = check("198.51.100.1", "a@neutral.test", "h.test");
    assert_int_equal(r.result, SPF_NEUTRAL);
    assert_string_equal(r.mechanism, "?ip4:198.51.100.1");
    r = check("198.51.100.2", "a@neutral.test", "h.test");
    assert_int_equal(r.result, SPF_NEUTRAL); /* nothing matched */
    assert_string_equal(r.mechanism, "");
    assert_int_equal(check("198.51.100.2", "a@empty.test", "h.test").result, SPF_NEUTRAL);
    r = check("198.51.100.2", "a@none.test", "h.test");
    assert_int_equal(r.result, SPF_NONE);
    assert_non_null(strstr(r.explanation, "no SPF record"));
    assert_int_equal(check("198.51.100.2", "a@nxdomain.test", "h.test").result, SPF_NONE);
}

static void test_include_chain_counts_lookups(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"example.org", DNS_T_TXT, "v=spf1 include:_spf.example.org -all"},
        {"_spf.example.org", DNS_T_TXT, "v=spf1 include:_net.example.org ?all"},
        {"_net.example.org", DNS_T_TXT, "v=spf1 ip4:203.0.113.0/25"},
        {NULL, 0, NULL}};
    zone_load(z);
    struct spf_result r = check("203.0.113.7", "x@example.org", "h.example.org");
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.mechanism, "include:_spf.example.org");
    assert_string_equal(r.domain, "example.org");
    assert_int_equal(r.lookups, 2);
    /* Outside the /25: the inner ?all is neutral, so the include does not match and -all does. */
    r = check("203.0.113.200", "x@example.org", "h.example.org");
    assert_int_equal(r.result, SPF_FAIL);
    assert_string_equal(r.mechanism, "-all");
    assert_int_equal(r.lookups, 2);
}

static void test_redirect_takes_over(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"brand.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.1 exp=x.brand.test redirect=spf.ops.test"},
        {"x.brand.test", DNS_T_TXT, "not this one"},
        {"spf.ops.test", DNS_T_TXT, "v=spf1 a -all exp=why.ops.test"},
        {"spf.ops.test", DNS_T_A, "192.0.2.50"},
        {"why.ops.test", DNS_T_TXT, "%{i} may not send for %{o} (policy of %{d})"},
        {NULL, 0, NULL}};
    zone_load(z);
    /* "a" with no domain-spec is the redirect target's own address. */
    struct spf_result r = check("192.0.2.50", "m@brand.test", "h.test");
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.mechanism, "a");
    assert_string_equal(r.domain, "spf.ops.test");
    assert_int_equal(r.lookups, 2); /* redirect, a */

    r = check("192.0.2.77", "m@brand.test", "h.test");
    assert_int_equal(r.result, SPF_FAIL);
    assert_string_equal(r.explanation, "192.0.2.77 may not send for brand.test (policy of "
                                       "spf.ops.test)");
    assert_string_equal(r.domain, "spf.ops.test");
}

static void test_void_lookup_limit(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"two.test", DNS_T_TXT, "v=spf1 a:n1.test mx:n2.test ?all"},
        {"three.test", DNS_T_TXT, "v=spf1 a:n1.test exists:n2.test a:n3.test ?all"},
        {"nodata.test", DNS_T_TXT, "v=spf1 a:three.test a:two.test a:nodata.test -all"},
        {NULL, 0, NULL}};
    zone_load(z);
    struct spf_result r = check("192.0.2.1", "a@two.test", "h.test");
    assert_int_equal(r.result, SPF_NEUTRAL);
    assert_int_equal(r.void_lookups, 2);
    r = check("192.0.2.1", "a@three.test", "h.test");
    assert_int_equal(r.result, SPF_PERMERROR);
    assert_int_equal(r.void_lookups, 3);
    assert_non_null(strstr(r.explanation, "void"));
    /* Names that exist with other types (NODATA) are void too. */
    r = check("192.0.2.1", "a@nodata.test", "h.test");
    assert_int_equal(r.result, SPF_PERMERROR);
    assert_int_equal(r.void_lookups, 3);
}

static void test_lookup_limit(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"ten.test", DNS_T_TXT, "v=spf1 a a a a a a a a a a ip4:192.0.2.9 -all"},
        {"eleven.test", DNS_T_TXT, "v=spf1 a a a a a a a a a a a ip4:192.0.2.9 -all"},
        {"ten.test", DNS_T_A, "192.0.2.1"},
        {"eleven.test", DNS_T_A, "192.0.2.1"},
        {"loop.test", DNS_T_TXT, "v=spf1 include:loop.test"},
        {NULL, 0, NULL}};
    zone_load(z);
    struct spf_result r = check("192.0.2.9", "a@ten.test", "h.test");
    assert_int_equal(r.result, SPF_PASS);
    assert_int_equal(r.lookups, 10);
    r = check("192.0.2.9", "a@eleven.test", "h.test");
    assert_int_equal(r.result, SPF_PERMERROR);
    assert_int_equal(r.lookups, 11);
    /* An include loop ends at the limit, not in a stack overflow. */
    r = check("192.0.2.9", "a@loop.test", "h.test");
    assert_int_equal(r.result, SPF_PERMERROR);
    assert_int_equal(r.lookups, SPF_MAX_LOOKUPS + 1);
}

static void test_a_mx_cidr_and_ipv6(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"d.test", DNS_T_TXT, "v=spf1 mx/28//64 -all"},
        {"d.test", DNS_T_MX, "10 mx1.d.test"},
        {"d.test", DNS_T_MX, "20 mx2.d.test"},
        {"mx1.d.test", DNS_T_A, "192.0.2.33"},
        {"mx2.d.test", DNS_T_AAAA, "2001:db8:1:2::25"},
        {"v6.test", DNS_T_TXT, "v=spf1 ip6:2001:db8:aa::/48 ip4:192.0.2.1 -all"},
        {NULL, 0, NULL}};
    zone_load(z);
    assert_int_equal(check("192.0.2.40", "a@d.test", "h.test").result, SPF_PASS); /* in /28 */
    assert_int_equal(check("192.0.2.50", "a@d.test", "h.test").result, SPF_FAIL); /* outside */
    assert_int_equal(check("2001:db8:1:2:ffff::1", "a@d.test", "h.test").result, SPF_PASS);
    assert_int_equal(check("2001:db8:1:3::1", "a@d.test", "h.test").result, SPF_FAIL);
    assert_int_equal(check("2001:db8:aa:ff::1", "a@v6.test", "h.test").result, SPF_PASS);
    /* An IPv4-mapped IPv6 client is an IPv4 client: it matches ip4, never ip6. */
    struct spf_result r = check("::ffff:192.0.2.1", "a@v6.test", "h.test");
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.mechanism, "ip4:192.0.2.1");
}

static void test_ptr_and_p_macro(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"ptr.test", DNS_T_TXT, "v=spf1 ptr -all exp=why.ptr.test"},
        {"why.ptr.test", DNS_T_TXT, "host %{p} is not ours"},
        {"10.2.0.192.in-addr.arpa", DNS_T_PTR, "out.ptr.test"},
        {"out.ptr.test", DNS_T_A, "192.0.2.10"},
        {"11.2.0.192.in-addr.arpa", DNS_T_PTR, "liar.other.test"}, /* does not validate */
        {"liar.other.test", DNS_T_A, "192.0.2.99"},
        {"12.2.0.192.in-addr.arpa", DNS_T_PTR, "mail.other.test"},
        {"mail.other.test", DNS_T_A, "192.0.2.12"},
        {NULL, 0, NULL}};
    zone_load(z);
    assert_int_equal(check("192.0.2.10", "a@ptr.test", "h.test").result, SPF_PASS);
    struct spf_result r = check("192.0.2.11", "a@ptr.test", "h.test");
    assert_int_equal(r.result, SPF_FAIL);
    assert_string_equal(r.explanation, "host unknown is not ours");
    r = check("192.0.2.12", "a@ptr.test", "h.test");
    assert_int_equal(r.result, SPF_FAIL);
    assert_string_equal(r.explanation, "host mail.other.test is not ours");
}

static void test_macros(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"m.test", DNS_T_TXT,
         "v=spf1 exists:%{ir}.%{v}.%{l2r-}.%{d2}.chk.test -all exp=%{d1r}.exp.test"},
        {"10.2.0.192.in-addr.jones.bob.m.test.chk.test", DNS_T_A, "127.0.0.2"},
        {"m.exp.test", DNS_T_TXT, "%{L} from %{c} via %{h} at %{t}: see %{r} %%%_%-"},
        {NULL, 0, NULL}};
    zone_load(z);
    /* %{l2r-}: split "bob-jones" on "-", reverse, keep the right two: "jones.bob". */
    struct spf_result r = check("192.0.2.10", "bob-jones@m.test", "mx.m.test");
    assert_int_equal(r.result, SPF_PASS);
    assert_int_equal(r.lookups, 1);

    clock_set_override(1700000000123);
    r = check("192.0.2.11", "a&b@m.test", "mx.m.test");
    assert_int_equal(r.result, SPF_FAIL);
    /* %{L} URL-escapes "&"; %{d1r}: "m.test" reversed and cut to one part, "m". */
    assert_string_equal(r.explanation, "a%26b from 192.0.2.11 via mx.m.test at 1700000000: see "
                                       "unknown % %20");
}

static void test_ipv6_i_macro(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"six.test", DNS_T_TXT, "v=spf1 exists:%{i}.six.test -all"},
        {"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.six.test", DNS_T_A,
         "127.0.0.2"},
        {NULL, 0, NULL}};
    zone_load(z);
    /* %{i} of IPv6 is 32 dotted nibbles; the zone matches names without case. */
    assert_int_equal(check("2001:db8::1", "a@six.test", "h.test").result, SPF_FAIL);
    assert_int_equal(check("2001:db8::1", "a@six.test", "h.test").lookups, 1);
    static const struct rec z2[] = {
        {"six.test", DNS_T_TXT, "v=spf1 exists:%{ir}.six.test -all"},
        {"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.six.test", DNS_T_A,
         "127.0.0.2"},
        {NULL, 0, NULL}};
    teardown(NULL);
    zone_load(z2);
    assert_int_equal(check("2001:db8::1", "a@six.test", "h.test").result, SPF_PASS);
}

static void test_cname_to_record(void **state)
{
    (void)state;
    static const struct rec z[] = {{"alias.test", DNS_T_CNAME, "real.test"},
                                   {"real.test", DNS_T_TXT, "v=spf1 a:host.alias.test -all"},
                                   {"host.alias.test", DNS_T_CNAME, "host.real.test"},
                                   {"host.real.test", DNS_T_A, "192.0.2.5"},
                                   {NULL, 0, NULL}};
    zone_load(z);
    struct spf_result r = check("192.0.2.5", "a@alias.test", "h.test");
    assert_int_equal(r.result, SPF_PASS);
    assert_string_equal(r.domain, "alias.test");
}

static void test_dns_failures(void **state)
{
    (void)state;
    struct err e;
    static const struct rec z[] = {
        {"ok.test", DNS_T_TXT, "v=spf1 a:slow.test include:broken.test -all"},
        {"inc.test", DNS_T_TXT, "v=spf1 include:slow.test -all"},
        {NULL, 0, NULL}};
    zone_load(z);
    assert_int_equal(dns_zone_fail(fx.zone, "slow.test", DNS_T_ANY, DNS_TIMEOUT, &e), IPW_OK);
    assert_int_equal(dns_zone_fail(fx.zone, "down.test", DNS_T_TXT, DNS_SERVFAIL, &e), IPW_OK);
    struct spf_result r = check("192.0.2.1", "a@ok.test", "h.test");
    assert_int_equal(r.result, SPF_TEMPERROR);
    assert_non_null(strstr(r.explanation, "timeout"));
    assert_int_equal(check("192.0.2.1", "a@inc.test", "h.test").result, SPF_TEMPERROR);
    assert_int_equal(check("192.0.2.1", "a@down.test", "h.test").result, SPF_TEMPERROR);
}

static void test_permerrors_name_the_problem(void **state)
{
    (void)state;
    static const struct rec z[] = {
        {"typo.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.1 include=other.test -all"},
        {"two.test", DNS_T_TXT, "v=spf1 -all"},
        {"two.test", DNS_T_TXT, "v=spf1 +all"},
        {"badip.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.300 -all"},
        {"noinc.test", DNS_T_TXT, "v=spf1 include:nothing.test -all"},
        {"nothing.test", DNS_T_A, "192.0.2.1"},
        {NULL, 0, NULL}};
    zone_load(z);
    /* include= is a well-formed unknown modifier: ignored (RFC 7208 6). */
    assert_int_equal(check("192.0.2.1", "a@typo.test", "h.test").result, SPF_PASS);
    struct spf_result r = check("192.0.2.1", "a@two.test", "h.test");
    assert_int_equal(r.result, SPF_PERMERROR);
    assert_non_null(strstr(r.explanation, "2 SPF records"));
    r = check("192.0.2.1", "a@badip.test", "h.test");
    assert_int_equal(r.result, SPF_PERMERROR);
    assert_non_null(strstr(r.explanation, "ip4:192.0.2.300"));
    /* An include whose target has no SPF record is a permerror, not none. */
    r = check("192.0.2.1", "a@noinc.test", "h.test");
    assert_int_equal(r.result, SPF_PERMERROR);
    assert_non_null(strstr(r.explanation, "nothing.test"));
}

static void test_null_sender_and_helo(void **state)
{
    (void)state;
    static const struct rec z[] = {{"mail.example.net", DNS_T_TXT, "v=spf1 -all exp=e.example.net"},
                                   {"e.example.net", DNS_T_TXT, "%{s} / %{l} / %{o} / %{h}"},
                                   {"example.net", DNS_T_TXT, "v=spf1 -all exp=e.example.net"},
                                   {NULL, 0, NULL}};
    zone_load(z);
    struct spf_result r = check("192.0.2.1", "", "mail.example.net");
    assert_int_equal(r.result, SPF_FAIL);
    assert_string_equal(r.explanation, "postmaster@mail.example.net / postmaster / "
                                       "mail.example.net / mail.example.net");
    r = check("192.0.2.1", NULL, "mail.example.net");
    assert_int_equal(r.result, SPF_FAIL);
    /* No local-part: postmaster. */
    r = check("192.0.2.1", "@example.net", "helo.test");
    assert_string_equal(r.explanation, "postmaster@example.net / postmaster / example.net / "
                                       "helo.test");
    /* A HELO that is no multi-label domain name gives none at once. */
    assert_int_equal(check("192.0.2.1", "", "localhost").result, SPF_NONE);
    assert_int_equal(check("192.0.2.1", "", "[192.0.2.1]").result, SPF_NONE);
}

static void test_options(void **state)
{
    (void)state;
    static const struct rec z[] = {{"o.test", DNS_T_TXT, "v=spf1 -all exp=e.o.test"},
                                   {"e.o.test", DNS_T_TXT, "checked by %{r}"},
                                   {"p.test", DNS_T_TXT, "v=spf1 -all"},
                                   {NULL, 0, NULL}};
    zone_load(z);
    struct spf_options opt = {.default_explanation = "go away", .receiver = "mx.receiver.test"};
    struct spf_result r;
    struct err e;
    assert_int_equal(spf_check_opts(fx.dns, "192.0.2.1", "a@o.test", "h", &opt, &r, &e), IPW_OK);
    assert_string_equal(r.explanation, "checked by mx.receiver.test");
    assert_int_equal(spf_check_opts(fx.dns, "192.0.2.1", "a@p.test", "h", &opt, &r, &e), IPW_OK);
    assert_string_equal(r.explanation, "go away");
}

static void test_usage_errors(void **state)
{
    (void)state;
    static const struct rec z[] = {{NULL, 0, NULL}};
    zone_load(z);
    struct spf_result r;
    struct err e;
    assert_int_equal(spf_check(fx.dns, "192.0.2.256", "a@b.test", "h.test", &r, &e), IPW_EUSAGE);
    assert_non_null(strstr(e.msg, "192.0.2.256"));
    assert_int_equal(spf_check(fx.dns, "mail.test", "a@b.test", "h.test", &r, &e), IPW_EUSAGE);
    assert_int_equal(spf_check(fx.dns, "192.0.2.1", "a@", "h.test", &r, &e), IPW_EUSAGE);
    assert_int_equal(spf_check(fx.dns, "192.0.2.1", "", "", &r, &e), IPW_EUSAGE);
    assert_int_equal(spf_check(fx.dns, "192.0.2.1", "", NULL, &r, &e), IPW_EUSAGE);
    assert_int_equal(dns_zone_queries(fx.zone), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_names),
        cmocka_unit_test_teardown(test_pass_ip4_reports_term_and_domain, teardown),
        cmocka_unit_test_teardown(test_qualifiers_and_default, teardown),
        cmocka_unit_test_teardown(test_include_chain_counts_lookups, teardown),
        cmocka_unit_test_teardown(test_redirect_takes_over, teardown),
        cmocka_unit_test_teardown(test_void_lookup_limit, teardown),
        cmocka_unit_test_teardown(test_lookup_limit, teardown),
        cmocka_unit_test_teardown(test_a_mx_cidr_and_ipv6, teardown),
        cmocka_unit_test_teardown(test_ptr_and_p_macro, teardown),
        cmocka_unit_test_teardown(test_macros, teardown),
        cmocka_unit_test_teardown(test_ipv6_i_macro, teardown),
        cmocka_unit_test_teardown(test_cname_to_record, teardown),
        cmocka_unit_test_teardown(test_dns_failures, teardown),
        cmocka_unit_test_teardown(test_permerrors_name_the_problem, teardown),
        cmocka_unit_test_teardown(test_null_sender_and_helo, teardown),
        cmocka_unit_test_teardown(test_options, teardown),
        cmocka_unit_test_teardown(test_usage_errors, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
