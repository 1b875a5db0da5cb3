/*
 * fuzz_spf: the SPF record parser, macro expander and evaluator (spf.h; RFC 7208 sections
 * 4-7) over the in-memory zone (dns.h), on arbitrary records.
 *
 * The input is up to eight TXT records separated by LF bytes: the first is published at the
 * sender's domain fuzz.test, the others at d1.test ... d7.test, so include:, redirect= and
 * exp= can reach more fuzzed records. A fixed zone around them gives the a, mx, ptr and exists
 * mechanisms something to find. Each input is checked for an IPv4 and an IPv6 client, and for
 * the null sender. Checks what spf.h promises: IPW_OK whatever the result, a result in range
 * with its name, NUL-terminated reports, the lookup counts within the limits plus the one
 * lookup that breaks them.
 */
#include <string.h>

#include "ipwarm/dns.h"
#include "ipwarm/spf.h"

#include "fuzz.h"

struct rec {
    const char *name;
    enum dns_type type;
    const char *data;
};

/* The fixed part of the zone: addresses, MX hosts and reverse names for the mechanisms. */
static const struct rec fixed[] = {
    {"fuzz.test", DNS_T_A, "192.0.2.1"},
    {"fuzz.test", DNS_T_AAAA, "2001:db8::1"},
    {"fuzz.test", DNS_T_MX, "10 mx.fuzz.test"},
    {"fuzz.test", DNS_T_MX, "20 mx2.fuzz.test"},
    {"mx.fuzz.test", DNS_T_A, "192.0.2.10"},
    {"mx2.fuzz.test", DNS_T_AAAA, "2001:db8::10"},
    {"mail.fuzz.test", DNS_T_A, "192.0.2.1"},
    {"mail.fuzz.test", DNS_T_AAAA, "2001:db8::1"},
    {"1.2.0.192.in-addr.arpa", DNS_T_PTR, "mail.fuzz.test"},
    {"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", DNS_T_PTR,
     "mail.fuzz.test"},
    {"alias.test", DNS_T_CNAME, "d1.test"},
    {"1.2.0.192.x.test", DNS_T_A, "127.0.0.2"},
    {"d1.test", DNS_T_A, "192.0.2.1"},
    {"d2.test", DNS_T_MX, "0 ."},
    {NULL, 0, NULL},
};

#define MAX_RECORDS 8

static void check_one(struct dns *dns, const char *ip, const char *sender)
{
    struct spf_result r;
    struct err e;
    memset(&r, 0x55, sizeof r);
    ipw_status st = spf_check(dns, ip, sender, "mail.fuzz.test", &r, &e);
    FUZZ_CHECK(st == IPW_OK || st == IPW_ENOMEM);
    if (st != IPW_OK)
        return;
    FUZZ_CHECK(r.result >= SPF_NONE && r.result <= SPF_PERMERROR);
    FUZZ_CHECK(spf_result_name(r.result) != NULL);
    FUZZ_CHECK(strnlen(r.explanation, sizeof r.explanation) < sizeof r.explanation);
    FUZZ_CHECK(strnlen(r.mechanism, sizeof r.mechanism) < sizeof r.mechanism);
    FUZZ_CHECK(strnlen(r.domain, sizeof r.domain) < sizeof r.domain);
    FUZZ_CHECK(r.lookups >= 0 && r.lookups <= SPF_MAX_LOOKUPS + 1);
    FUZZ_CHECK(r.void_lookups >= 0 && r.void_lookups <= SPF_MAX_VOID + 1);
    if (r.lookups > SPF_MAX_LOOKUPS || r.void_lookups > SPF_MAX_VOID)
        FUZZ_CHECK(r.result == SPF_PERMERROR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    struct err e;
    struct dns_zone *zone = dns_zone_new();
    FUZZ_CHECK(zone != NULL);
    for (const struct rec *r = fixed; r->name; r++)
        FUZZ_CHECK(dns_zone_add(zone, r->name, r->type, 300, r->data, &e) == IPW_OK);

    const char *p = (const char *)data;
    const char *end = p + size;
    for (int i = 0; i < MAX_RECORDS && p <= end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        char name[16];
        if (i == 0)
            memcpy(name, "fuzz.test", sizeof "fuzz.test");
        else
            snprintf(name, sizeof name, "d%d.test", i);
        FUZZ_CHECK(dns_zone_add_txt(zone, name, 300, p, (size_t)(stop - p), &e) == IPW_OK);
        if (!nl)
            break;
        p = nl + 1;
    }

    struct dns *dns = dns_new_zone(zone, NULL, &e);
    FUZZ_CHECK(dns != NULL);
    check_one(dns, "192.0.2.1", "user@fuzz.test");
    check_one(dns, "2001:db8::1", "user@fuzz.test");
    check_one(dns, "::ffff:192.0.2.10", "");
    dns_free(dns);
    dns_zone_free(zone);
    return 0;
}
