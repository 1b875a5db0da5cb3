/* Unit tests of provider.c: the MX roll-up from a recipient domain to a plan provider.
 * The plan is filled by hand with the suffixes of reference/providers.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ipwarm/provider.h"

static char *gmail_mx[] = {".google.com", ".googlemail.com"};
static char *gmail_domains[] = {"gmail.com", "googlemail.com"};
static char *outlook_mx[] = {".olc.protection.outlook.com"};
static char *outlook_domains[] = {"outlook.com", "hotmail.com"};
static char *m365_mx[] = {".mail.protection.outlook.com", ".mx.microsoft"};
static char *catchall_mx[] = {".outlook.com"}; /* broader, listed after the precise ones */
static char *yahoo_mx[] = {".yahoodns.net"};
static char *yahoo_domains[] = {"yahoo.com", "aol.com"};
static char *nodot_mx[] = {"example-mx.net"}; /* written without the leading dot */

enum { GMAIL, OUTLOOK, M365, CATCHALL, YAHOO, NODOT, OTHER, N_PROVIDERS };

static struct plan test_plan(void)
{
    static struct plan_provider providers[N_PROVIDERS];
    memset(providers, 0, sizeof providers);
    providers[GMAIL] = (struct plan_provider){
        .name = "gmail", .mx = gmail_mx, .n_mx = 2, .domains = gmail_domains, .n_domains = 2};
    providers[OUTLOOK] = (struct plan_provider){
        .name = "outlook", .mx = outlook_mx, .n_mx = 1, .domains = outlook_domains, .n_domains = 2};
    providers[M365] = (struct plan_provider){.name = "m365", .mx = m365_mx, .n_mx = 2};
    providers[CATCHALL] = (struct plan_provider){.name = "ms-other", .mx = catchall_mx, .n_mx = 1};
    providers[YAHOO] = (struct plan_provider){
        .name = "yahoo", .mx = yahoo_mx, .n_mx = 1, .domains = yahoo_domains, .n_domains = 2};
    providers[NODOT] = (struct plan_provider){.name = "nodot", .mx = nodot_mx, .n_mx = 1};
    providers[OTHER] = (struct plan_provider){.name = "other", .is_default = true};
    struct plan p;
    memset(&p, 0, sizeof p);
    p.providers = providers;
    p.n_providers = N_PROVIDERS;
    p.default_provider = OTHER;
    return p;
}

static void test_provider_mx_matches(void **state)
{
    (void)state;
    assert_true(provider_mx_matches("gmail-smtp-in.l.google.com", ".google.com"));
    assert_true(provider_mx_matches("aspmx.l.google.com.", ".google.com"));
    assert_true(provider_mx_matches("ASPMX.L.Google.COM", ".GOOGLE.com"));
    /* The bare suffix is the provider's own name: it matches too. */
    assert_true(provider_mx_matches("google.com", ".google.com"));
    assert_true(provider_mx_matches("google.com.", ".google.com"));
    /* Without the leading dot the suffix means the same. */
    assert_true(provider_mx_matches("mx1.example-mx.net", "example-mx.net"));
    assert_true(provider_mx_matches("example-mx.net", "example-mx.net"));
    /* Whole labels only. */
    assert_false(provider_mx_matches("evilgoogle.com", ".google.com"));
    assert_false(provider_mx_matches("google.com.evil.net", ".google.com"));
    assert_false(provider_mx_matches("oogle.com", ".google.com"));
    assert_false(provider_mx_matches("", ".google.com"));
    assert_false(provider_mx_matches("google.com", ""));
    assert_false(provider_mx_matches("google.com", "."));
    assert_false(provider_mx_matches(NULL, ".google.com"));
}

static void test_provider_for_by_mx(void **state)
{
    (void)state;
    struct plan p = test_plan();
    const char *g[] = {"alt1.aspmx.l.google.com.", "aspmx.l.google.com"};
    assert_int_equal(provider_for(&p, "example.org", g, 2), GMAIL);
    /* The MX decides over the domain: a gmail.com address hosted elsewhere. */
    const char *y[] = {"mta5.am0.yahoodns.net"};
    assert_int_equal(provider_for(&p, "gmail.com", y, 1), YAHOO);
    /* Microsoft consumer vs 365 tenants, and the broader suffix listed after them. */
    const char *o[] = {"outlook-com.olc.protection.outlook.com"};
    assert_int_equal(provider_for(&p, "contoso.example", o, 1), OUTLOOK);
    const char *m[] = {"contoso-com.mail.protection.outlook.com"};
    assert_int_equal(provider_for(&p, "contoso.example", m, 1), M365);
    const char *d[] = {"contoso-com.d-v1.mx.microsoft"};
    assert_int_equal(provider_for(&p, "contoso.example", d, 1), M365);
    const char *c[] = {"eur.outlook.com"};
    assert_int_equal(provider_for(&p, "contoso.example", c, 1), CATCHALL);
}

static void test_provider_for_first_matching_host_decides(void **state)
{
    (void)state;
    struct plan p = test_plan();
    /* The most preferred host that matches any provider decides, even when a later host
     * matches a provider listed earlier in the plan. */
    const char *h[] = {"mx.unknown.example", "mta6.am0.yahoodns.net", "aspmx.l.google.com"};
    assert_int_equal(provider_for(&p, "example.org", h, 3), YAHOO);
    /* Among providers matching one host, plan order: ".outlook.com" (CATCHALL) also matches
     * this host but comes after OUTLOOK. */
    const char *o[] = {"x.olc.protection.outlook.com"};
    assert_int_equal(provider_for(&p, "example.org", o, 1), OUTLOOK);
    /* Empty and NULL hosts are skipped. */
    const char *e[] = {"", NULL, "aspmx.l.google.com"};
    assert_int_equal(provider_for(&p, "example.org", e, 3), GMAIL);
}

static void test_provider_for_by_domain_then_default(void **state)
{
    (void)state;
    struct plan p = test_plan();
    const char *none[] = {"mx.unknown.example"};
    assert_int_equal(provider_for(&p, "hotmail.com", none, 1), OUTLOOK);
    assert_int_equal(provider_for(&p, "HotMail.COM.", none, 1), OUTLOOK);
    assert_int_equal(provider_for(&p, "aol.com", NULL, 0), YAHOO);
    /* Exact domains only: a subdomain is not the provider's. */
    assert_int_equal(provider_for(&p, "mail.gmail.com", NULL, 0), OTHER);
    assert_int_equal(provider_for(&p, "gmail.co", NULL, 0), OTHER);
    assert_int_equal(provider_for(&p, "example.org", none, 1), OTHER);
    assert_int_equal(provider_for(&p, NULL, NULL, 0), OTHER);
}

static void test_provider_for_mx_results(void **state)
{
    (void)state;
    struct plan p = test_plan();
    struct dns_mx_host hosts[2] = {{.preference = 5, .host = "mx.unknown.example"},
                                   {.preference = 10, .host = "aspmx.l.google.com"}};
    struct dns_mx_result r = {
        .domain = "example.org", .status = DNS_MX_OK, .hosts = hosts, .n_hosts = 2};
    assert_int_equal(provider_for_mx(&p, &r), GMAIL);
    /* Null MX and failures carry no usable hosts: the domain decides. */
    r.status = DNS_MX_NULL;
    assert_int_equal(provider_for_mx(&p, &r), OTHER);
    r.domain = "yahoo.com";
    r.status = DNS_MX_TEMPERROR;
    assert_int_equal(provider_for_mx(&p, &r), YAHOO);
    /* An implicit MX is the domain itself, which a suffix may match. */
    struct dns_mx_host self = {.host = "google.com"};
    struct dns_mx_result imp = {
        .domain = "google.com", .status = DNS_MX_IMPLICIT, .hosts = &self, .n_hosts = 1};
    assert_int_equal(provider_for_mx(&p, &imp), GMAIL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provider_mx_matches),
        cmocka_unit_test(test_provider_for_by_mx),
        cmocka_unit_test(test_provider_for_first_matching_host_decides),
        cmocka_unit_test(test_provider_for_by_domain_then_default),
        cmocka_unit_test(test_provider_for_mx_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
