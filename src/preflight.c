/*
 * preflight: the DNS side of the pre-flight checks, and preflight_run, which runs them all.
 *
 * Identity: PTR of each source IP with forward confirmation (FCrDNS: a PTR name whose A or
 * AAAA records include the IP, the test receivers apply), the HELO name resolving to the IP
 * (RFC 5321 4.1.1.1 asks for a name that resolves; receivers compare it to the PTR), SPF
 * through spf_check() (RFC 7208), the DKIM key published at selector._domainkey.domain
 * compared key for key with the configured private key (RFC 6376 3.6.1, 3.6.2.2: a record
 * that merely exists but holds an old key fails every signature), and DMARC (RFC 7489: the
 * record, its discovery and identifier alignment are dmarc.c's; this file reports on them).
 * Destinations: DNS block lists (RFC 5782) through dnsbl.c. The rest of the family: the report
 * they fill in preflight_report.c, the MX of the recipient domains in preflight_mx.c, the SMTP
 * probes in preflight_smtp.c; none of them calls back into this file.
 *
 * A DNS failure is never read as an answer: a timeout on a PTR, a TXT or an MX look-up is a
 * warn ("could not check"), not a fail and not a pass.
 */
#include "ipwarm/preflight.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/dkim.h"
#include "ipwarm/dmarc.h"
#include "ipwarm/dnsbl.h"
#include "ipwarm/provider.h"
#include "ipwarm/recipients.h"
#include "ipwarm/spf.h"

/* ---- small helpers ---- */

/* The domain of an addr-spec, or "" when it has none. */
static const char *preflight_domain_of(const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    return at ? at + 1 : "";
}

/* The address family of an IP literal and its bytes; 0 when it is none. */
static int preflight_ip_parse(const char *ip, unsigned char *bytes)
{
    if (inet_pton(AF_INET, ip, bytes) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, ip, bytes) == 1)
        return AF_INET6;
    return 0;
}

enum { NAME_HAS_IP = 1, NAME_LACKS_IP = 0, NAME_UNKNOWN = -1 };

/* Whether name's A (IPv4 ip) or AAAA (IPv6) records include ip. *st gets the look-up status;
 * *addrs (may be NULL) a ", "-separated list of what it has. */
static ipw_status preflight_name_has_ip(struct dns *dns, const char *name, const char *ip, int *res,
                                        enum dns_status *st, char *addrs, size_t addrs_n,
                                        struct err *e)
{
    unsigned char want[16];
    int fam = preflight_ip_parse(ip, want);
    struct dns_result r;
    ipw_status s = dns_query(dns, name, fam == AF_INET6 ? DNS_T_AAAA : DNS_T_A, &r, e);
    if (s != IPW_OK)
        return s;
    *st = r.status;
    if (addrs && addrs_n)
        addrs[0] = '\0';
    if (r.status == DNS_OK) {
        *res = NAME_LACKS_IP;
        size_t alen = fam == AF_INET6 ? 16 : 4, k = 0;
        for (size_t i = 0; i < r.n_rrs; i++) {
            if (memcmp(r.rrs[i].addr, want, alen) == 0)
                *res = NAME_HAS_IP;
            if (addrs && addrs_n > k) {
                int w = snprintf(addrs + k, addrs_n - k, "%s%s", i ? ", " : "", r.rrs[i].data);
                if (w > 0)
                    k += (size_t)w < addrs_n - k ? (size_t)w : addrs_n - k - 1;
            }
        }
    } else if (r.status == DNS_NXDOMAIN || r.status == DNS_NODATA) {
        *res = NAME_LACKS_IP;
    } else {
        *res = NAME_UNKNOWN;
    }
    dns_result_clear(&r);
    return IPW_OK;
}

/* The PTR names of ip into *out (dns_result_clear it). */
static ipw_status preflight_ptr_query(struct dns *dns, const char *ip, struct dns_result *out,
                                      char *rev, size_t rev_n, struct err *e)
{
    unsigned char b[16];
    int fam = preflight_ip_parse(ip, b);
    ipw_status s =
        dnsbl_query_name(ip, fam == AF_INET6 ? "ip6.arpa" : "in-addr.arpa", rev, rev_n, e);
    if (s != IPW_OK)
        return s;
    return dns_query(dns, rev, DNS_T_PTR, out, e);
}

/* ---- spf ---- */

static ipw_status preflight_spf_one(struct preflight_report *r, const struct plan *p,
                                    struct dns *dns, const char *ip, const char *sender,
                                    const char *role, struct err *e)
{
    struct spf_result res;
    memset(&res, 0, sizeof res);
    const char *domain = preflight_domain_of(sender);
    char subject[320], lookup[320], fix[768];
    snprintf(subject, sizeof subject, "%s %s", ip, domain);
    snprintf(lookup, sizeof lookup, "dig +short TXT %s", domain);
    struct err se;
    ipw_status s = spf_check(dns, ip, sender, p->helo, &res, &se);
    if (s == IPW_ENOMEM)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    if (s != IPW_OK) {
        PREFLIGHT_TRY(preflight_add(
            r, p, "spf", PREFLIGHT_FAIL, subject, "give the sender a valid address in the plan",
            lookup, "%s (%s): SPF could not be evaluated: %s", domain, role, se.msg));
        return IPW_OK;
    }
    const char *name = spf_result_name(res.result);
    const char *mech = res.mechanism[0] ? res.mechanism : "";
    const char *ipkind = strchr(ip, ':') ? "ip6" : "ip4";
    enum preflight_status st = PREFLIGHT_FAIL;
    switch (res.result) {
    case SPF_PASS:
        st = PREFLIGHT_PASS;
        fix[0] = '\0';
        break;
    case SPF_TEMPERROR:
        st = PREFLIGHT_WARN;
        snprintf(fix, sizeof fix,
                 "run check again; if it persists, see why the DNS servers of %s do not answer",
                 domain);
        break;
    case SPF_NONE:
        snprintf(fix, sizeof fix, "publish a TXT record at %s: \"v=spf1 %s:%s -all\"", domain,
                 ipkind, ip);
        break;
    case SPF_PERMERROR:
        snprintf(fix, sizeof fix, "correct the SPF record of %s (%s)", domain, res.explanation);
        break;
    default:
        snprintf(fix, sizeof fix, "add %s:%s to the SPF record of %s (before its \"all\")", ipkind,
                 ip, domain);
        break;
    }
    PREFLIGHT_TRY(preflight_add(r, p, "spf", st, subject, fix, lookup, "%s for %s (%s): %s%s%s%s%s",
                                ip, domain, role, name, mech[0] ? " by " : "", mech,
                                res.explanation[0] ? ": " : "", res.explanation));
    return IPW_OK;
}

ipw_status preflight_spf(struct preflight_report *r, const struct plan *p, struct dns *dns,
                         struct err *e)
{
    const char *rp = p->return_path ? p->return_path : p->from_addr;
    bool same = dns_name_equal(preflight_domain_of(rp), preflight_domain_of(p->from_addr));
    for (size_t i = 0; i < p->n_source_ips; i++) {
        ipw_status s = preflight_spf_one(r, p, dns, p->source_ips[i], rp,
                                         same ? "return-path and From" : "return-path", e);
        if (s == IPW_OK && !same)
            s = preflight_spf_one(r, p, dns, p->source_ips[i], p->from_addr, "From", e);
        if (s != IPW_OK)
            return s;
    }
    return IPW_OK;
}

/* ---- ptr and helo ---- */

ipw_status preflight_ptr(struct preflight_report *r, const struct plan *p, struct dns *dns,
                         struct err *e)
{
    for (size_t i = 0; i < p->n_source_ips; i++) {
        const char *ip = p->source_ips[i];
        char rev[DNSBL_NAME_MAX], lookup[128], fix[512];
        struct dns_result ptr;
        snprintf(lookup, sizeof lookup, "dig +short -x %s", ip);
        PREFLIGHT_TRY(preflight_ptr_query(dns, ip, &ptr, rev, sizeof rev, e));
        ipw_status s = IPW_OK;
        if (ptr.status == DNS_NXDOMAIN || ptr.status == DNS_NODATA) {
            snprintf(fix, sizeof fix,
                     "ask whoever runs the IP range (the hosting provider) to set the PTR of %s "
                     "to %s, and give %s an A record with %s",
                     ip, p->helo, p->helo, ip);
            s = preflight_add(r, p, "ptr", PREFLIGHT_FAIL, ip, fix, lookup,
                              "%s has no PTR record (%s)", ip, dns_status_name(ptr.status));
        } else if (ptr.status != DNS_OK) {
            s = preflight_add(r, p, "ptr", PREFLIGHT_WARN, ip,
                              "run check again; the reverse zone's servers did not answer", lookup,
                              "could not look up the PTR of %s: %s", ip,
                              dns_status_name(ptr.status));
        } else {
            /* FCrDNS: some PTR name must resolve back to the IP. */
            const char *confirmed = NULL;
            bool unknown = false;
            char seen[512] = "";
            size_t k = 0;
            for (size_t n = 0; n < ptr.n_rrs && s == IPW_OK; n++) {
                int has;
                enum dns_status st;
                s = preflight_name_has_ip(dns, ptr.rrs[n].data, ip, &has, &st, NULL, 0, e);
                if (s != IPW_OK)
                    break;
                if (has == NAME_HAS_IP && !confirmed)
                    confirmed = ptr.rrs[n].data;
                if (has == NAME_UNKNOWN)
                    unknown = true;
                int w = snprintf(seen + k, sizeof seen - k, "%s%s", n ? ", " : "", ptr.rrs[n].data);
                if (w > 0 && (size_t)w < sizeof seen - k)
                    k += (size_t)w;
            }
            if (s != IPW_OK) {
                dns_result_clear(&ptr);
                return s;
            }
            if (confirmed) {
                s = preflight_add(r, p, "ptr", PREFLIGHT_PASS, ip, NULL, NULL,
                                  "%s has PTR %s, which resolves back to it (FCrDNS)", ip,
                                  confirmed);
            } else if (unknown) {
                s = preflight_add(r, p, "ptr", PREFLIGHT_WARN, ip,
                                  "run check again; the PTR name's DNS servers did not answer",
                                  lookup, "%s has PTR %s, whose address look-up failed", ip, seen);
            } else {
                snprintf(fix, sizeof fix,
                         "give %s an %s record with %s (forward-confirmed reverse DNS), or set "
                         "the PTR to a name that has it",
                         ptr.rrs[0].data, strchr(ip, ':') ? "AAAA" : "A", ip);
                s = preflight_add(r, p, "ptr", PREFLIGHT_FAIL, ip, fix, lookup,
                                  "%s has PTR %s, which does not resolve back to %s (no FCrDNS)",
                                  ip, seen, ip);
            }
        }
        dns_result_clear(&ptr);
        PREFLIGHT_TRY(s);
    }
    return IPW_OK;
}

ipw_status preflight_helo(struct preflight_report *r, const struct plan *p, struct dns *dns,
                          struct err *e)
{
    for (size_t i = 0; i < p->n_source_ips; i++) {
        const char *ip = p->source_ips[i];
        const char *rtype = strchr(ip, ':') ? "AAAA" : "A";
        char lookup[320], fix[512], addrs[256];
        snprintf(lookup, sizeof lookup, "dig +short %s %s", rtype, p->helo);
        int has;
        enum dns_status st;
        PREFLIGHT_TRY(preflight_name_has_ip(dns, p->helo, ip, &has, &st, addrs, sizeof addrs, e));
        ipw_status s;
        if (has == NAME_UNKNOWN) {
            s = preflight_add(r, p, "helo", PREFLIGHT_WARN, ip,
                              "run check again; the HELO name's DNS servers did not answer", lookup,
                              "could not look up %s %s: %s", rtype, p->helo, dns_status_name(st));
        } else if (has == NAME_LACKS_IP) {
            snprintf(fix, sizeof fix, "publish %s %s %s, or set source.helo to the PTR name of %s",
                     p->helo, rtype, ip, ip);
            if (st == DNS_OK)
                s = preflight_add(r, p, "helo", PREFLIGHT_FAIL, ip, fix, lookup,
                                  "HELO name %s resolves to %s, not to %s", p->helo, addrs, ip);
            else
                s = preflight_add(r, p, "helo", PREFLIGHT_FAIL, ip, fix, lookup,
                                  "HELO name %s has no %s record (%s)", p->helo, rtype,
                                  dns_status_name(st));
        } else {
            /* Receivers also compare the HELO name with the PTR name: say when they differ. */
            char rev[DNSBL_NAME_MAX];
            struct dns_result ptr;
            PREFLIGHT_TRY(preflight_ptr_query(dns, ip, &ptr, rev, sizeof rev, e));
            bool match = false;
            for (size_t n = 0; ptr.status == DNS_OK && n < ptr.n_rrs; n++)
                if (dns_name_equal(ptr.rrs[n].data, p->helo))
                    match = true;
            if (match || ptr.status != DNS_OK) {
                s = preflight_add(r, p, "helo", PREFLIGHT_PASS, ip, NULL, NULL,
                                  "HELO name %s resolves to %s%s", p->helo, ip,
                                  match ? " and is its PTR name" : "");
            } else {
                snprintf(lookup, sizeof lookup, "dig +short -x %s", ip);
                snprintf(fix, sizeof fix, "set source.helo to %s, or the PTR of %s to %s",
                         ptr.rrs[0].data, ip, p->helo);
                s = preflight_add(r, p, "helo", PREFLIGHT_WARN, ip, fix, lookup,
                                  "HELO name %s resolves to %s, but the PTR name is %s", p->helo,
                                  ip, ptr.rrs[0].data);
            }
            dns_result_clear(&ptr);
        }
        PREFLIGHT_TRY(s);
    }
    return IPW_OK;
}

/* ---- dnsbl ---- */

ipw_status preflight_dnsbl(struct preflight_report *r, const struct plan *p, struct dns *dns,
                           struct err *e)
{
    if (p->n_dnsbl_zones == 0) {
        PREFLIGHT_TRY(preflight_add(r, p, "dnsbl", PREFLIGHT_SKIP, NULL, NULL, NULL,
                                    "no block list zones in preflight.dnsbl"));
        return IPW_OK;
    }
    struct dnsbl_result *res = calloc(p->n_source_ips, sizeof *res);
    if (!res)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    ipw_status s = dnsbl_lookup(dns, (const char *const *)p->source_ips, p->n_source_ips,
                                (const char *const *)p->dnsbl_zones, p->n_dnsbl_zones, res, e);
    for (size_t i = 0; i < p->n_source_ips && s == IPW_OK; i++) {
        const struct dnsbl_result *d = &res[i];
        char detail[2048], lookup[DNSBL_NAME_MAX + 32], qname[DNSBL_NAME_MAX];
        size_t k = 0;
        detail[0] = lookup[0] = '\0';
        const struct dnsbl_zone_result *first = NULL;
        for (size_t z = 0; z < d->n_zones; z++) {
            const struct dnsbl_zone_result *zr = &d->zones[z];
            int w = 0;
            if (d->listed && zr->listed)
                w = snprintf(detail + k, sizeof detail - k, "%slisted by %s (%s%s%s)",
                             k ? "; " : "", zr->zone, zr->n_answers ? zr->answers[0] : "",
                             zr->txt ? ": " : "", zr->txt ? zr->txt : "");
            else if (!d->listed && zr->error)
                w = snprintf(detail + k, sizeof detail - k, "%scould not check %s (%s)",
                             k ? "; " : "", zr->zone, zr->error);
            else
                continue;
            if (!first)
                first = zr;
            if (w > 0 && (size_t)w < sizeof detail - k)
                k += (size_t)w;
        }
        if (first && dnsbl_query_name(d->ip, first->zone, qname, sizeof qname, NULL) == IPW_OK)
            snprintf(lookup, sizeof lookup, "dig +short A %s", qname);
        if (d->listed)
            s = preflight_add(r, p, "dnsbl", PREFLIGHT_FAIL, d->ip,
                              "request delisting at each list's web site (the reason names it) "
                              "and send nothing until the listing is lifted",
                              lookup, "%s is %s", d->ip, detail);
        else if (d->n_unchecked)
            s = preflight_add(
                r, p, "dnsbl", PREFLIGHT_WARN, d->ip,
                "ask the lists through a resolver of your own (dns.servers or --dns), "
                "not a public one, which some lists refuse",
                lookup, "%s is not listed by %zu of %zu zones, but %s", d->ip,
                d->n_zones - d->n_unchecked, d->n_zones, detail);
        else
            s = preflight_add(r, p, "dnsbl", PREFLIGHT_PASS, d->ip, NULL, NULL,
                              "%s is not listed by any of %zu zones", d->ip, d->n_zones);
        if (s == IPW_ENOMEM)
            s = err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    for (size_t i = 0; i < p->n_source_ips; i++)
        dnsbl_result_clear(&res[i]);
    free(res);
    return s;
}

/* ---- dkim ---- */

ipw_status preflight_dkim(struct preflight_report *r, const struct plan *p, struct dns *dns,
                          struct err *e)
{
    if (!p->dkim) {
        bool req = (p->preflight_require & PLAN_CHECK_DKIM) != 0;
        PREFLIGHT_TRY(
            preflight_add(r, p, "dkim", req ? PREFLIGHT_FAIL : PREFLIGHT_SKIP, NULL,
                          "configure sender.dkim (domain, selector, key_file); ipwarm dkim "
                          "keygen makes the key and the record",
                          NULL, "sender.dkim is not set: messages are not signed"));
        return IPW_OK;
    }
    char name[600], lookup[640], subject[600];
    snprintf(name, sizeof name, "%s._domainkey.%s", p->dkim_selector, p->dkim_domain);
    snprintf(subject, sizeof subject, "%s", name);
    snprintf(lookup, sizeof lookup, "dig +short TXT %s", name);
    struct dkim_key *key = NULL;
    struct err ke;
    ipw_status ks = dkim_key_load(p->dkim_key_file, &key, &ke);
    if (ks == IPW_ENOMEM)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    if (ks != IPW_OK) {
        PREFLIGHT_TRY(
            preflight_add(r, p, "dkim", PREFLIGHT_FAIL, subject,
                          "point sender.dkim.key_file at the PEM private key whose public key "
                          "is published",
                          NULL, "%s", ke.msg));
        return IPW_OK;
    }
    char *pub = dkim_key_public_b64(key, e); /* sets e whenever it returns NULL */
    const char *ktype = dkim_key_type(key) == DKIM_ED25519 ? "ed25519" : "rsa";
    dkim_key_free(key);
    if (!pub)
        return e->status;
    size_t fixn = strlen(pub) + 512;
    char *fix = malloc(fixn);
    if (!fix) {
        free(pub);
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    snprintf(fix, fixn, "publish a TXT record at %s: \"v=DKIM1; k=%s; p=%s\"", name, ktype, pub);
    struct dns_result txt;
    ipw_status s = dns_query(dns, name, DNS_T_TXT, &txt, e);
    if (s != IPW_OK) {
        free(pub);
        free(fix);
        return s;
    }
    if (txt.status == DNS_NXDOMAIN || txt.status == DNS_NODATA) {
        s = preflight_add(r, p, "dkim", PREFLIGHT_FAIL, subject, fix, lookup,
                          "no DKIM record at %s (%s)", name, dns_status_name(txt.status));
    } else if (txt.status != DNS_OK) {
        s = preflight_add(r, p, "dkim", PREFLIGHT_WARN, subject,
                          "run check again; the domain's DNS servers did not answer", lookup,
                          "could not look up TXT %s: %s", name, dns_status_name(txt.status));
    } else {
        size_t match = 0, keys = 0;
        bool revoked = false, wrong_type = false;
        size_t vn = 8192;
        char *val = malloc(vn);
        if (!val) {
            s = IPW_ENOMEM;
        } else {
            for (size_t i = 0; i < txt.n_rrs; i++) {
                if (!dkim_tag(txt.rrs[i].data, "p", val, vn))
                    continue;
                keys++;
                if (val[0] == '\0') {
                    revoked = true;
                    continue;
                }
                char k[32] = "rsa";
                dkim_tag(txt.rrs[i].data, "k", k, sizeof k);
                if (strcasecmp(k, ktype) != 0)
                    wrong_type = true;
                else if (strcmp(val, pub) == 0)
                    match++;
            }
            free(val);
            if (match && keys == 1)
                s = preflight_add(r, p, "dkim", PREFLIGHT_PASS, subject, NULL, NULL,
                                  "the key published at %s matches %s", name, p->dkim_key_file);
            else if (match)
                s = preflight_add(r, p, "dkim", PREFLIGHT_WARN, subject,
                                  "keep only one DKIM record at the selector", lookup,
                                  "%s holds %zu DKIM records; one matches the key, but a "
                                  "verifier may use another",
                                  name, keys);
            else if (keys == 0)
                s = preflight_add(r, p, "dkim", PREFLIGHT_FAIL, subject, fix, lookup,
                                  "the TXT record at %s has no p= tag: it is no DKIM key", name);
            else
                s = preflight_add(r, p, "dkim", PREFLIGHT_FAIL, subject, fix, lookup,
                                  "the key published at %s does not match %s%s", name,
                                  p->dkim_key_file,
                                  revoked      ? " (the record is revoked: empty p=)"
                                  : wrong_type ? " (the record is for another key type)"
                                               : "");
        }
    }
    dns_result_clear(&txt);
    free(pub);
    free(fix);
    PREFLIGHT_TRY(s);
    return IPW_OK;
}

/* ---- dmarc ---- */

ipw_status preflight_dmarc(struct preflight_report *r, const struct plan *p, struct dns *dns,
                           struct err *e)
{
    const char *from = preflight_domain_of(p->from_addr);
    const char *org = dmarc_org_domain(from);
    const char *rp = preflight_domain_of(p->return_path ? p->return_path : p->from_addr);
    char lookup[320], fix[512];
    snprintf(lookup, sizeof lookup, "dig +short TXT _dmarc.%s", from);
    snprintf(fix, sizeof fix,
             "publish a TXT record at _dmarc.%s: \"v=DMARC1; p=none; rua=mailto:dmarc@%s\"", org,
             org);
    enum dns_status st;
    size_t count;
    char *rec = NULL;
    const char *where = from;
    PREFLIGHT_TRY(dmarc_lookup(dns, from, &st, &count, &rec, e));
    /* RFC 7489 6.6.3: without a record at the From domain, the organisational domain's. */
    if ((st == DNS_NXDOMAIN || st == DNS_NODATA) && !dns_name_equal(org, from)) {
        where = org;
        PREFLIGHT_TRY(dmarc_lookup(dns, org, &st, &count, &rec, e));
    }
    ipw_status s;
    struct dmarc_record d;
    const char *why = NULL;
    if (st == DNS_NXDOMAIN || st == DNS_NODATA) {
        s = preflight_add(r, p, "dmarc", PREFLIGHT_FAIL, from, fix, lookup,
                          "no DMARC record at _dmarc.%s%s%s", from,
                          where != from ? " nor at _dmarc." : "", where != from ? org : "");
    } else if (st != DNS_OK) {
        s = preflight_add(r, p, "dmarc", PREFLIGHT_WARN, from,
                          "run check again; the domain's DNS servers did not answer", lookup,
                          "could not look up TXT _dmarc.%s: %s", where, dns_status_name(st));
    } else if (count > 1) {
        s = preflight_add(
            r, p, "dmarc", PREFLIGHT_FAIL, from, "keep exactly one v=DMARC1 record", lookup,
            "_dmarc.%s has %zu DMARC records: receivers apply none (RFC 7489 6.6.3)", where, count);
    } else if (!dmarc_parse(rec, &d, &why)) {
        s = preflight_add(r, p, "dmarc", PREFLIGHT_FAIL, from, fix, lookup,
                          "the DMARC record at _dmarc.%s does not parse: %s", where, why);
    } else {
        bool spf_al = dmarc_aligned(rp, from, d.aspf_strict);
        bool dkim_al = p->dkim && dmarc_aligned(p->dkim_domain, from, d.adkim_strict);
        char al[256];
        snprintf(al, sizeof al, "SPF (%s, aspf=%s) %s, DKIM (%s, adkim=%s) %s", rp,
                 d.aspf_strict ? "s" : "r", spf_al ? "aligns" : "does not align",
                 p->dkim ? p->dkim_domain : "no signature", d.adkim_strict ? "s" : "r",
                 dkim_al ? "aligns" : "does not align");
        if (spf_al || dkim_al) {
            s = preflight_add(r, p, "dmarc", PREFLIGHT_PASS, from, NULL, NULL,
                              "DMARC p=%s at _dmarc.%s; %s with %s (relaxed alignment compares "
                              "the last two labels)",
                              d.policy, where, al, from);
        } else {
            snprintf(fix, sizeof fix,
                     "use a return path or a DKIM domain under %s (sender.return_path, "
                     "sender.dkim.domain)",
                     d.aspf_strict || d.adkim_strict ? from : org);
            s = preflight_add(r, p, "dmarc", PREFLIGHT_FAIL, from, fix, lookup,
                              "DMARC p=%s at _dmarc.%s, but neither identifier aligns with %s: %s",
                              d.policy, where, from, al);
        }
    }
    free(rec);
    PREFLIGHT_TRY(s);
    return IPW_OK;
}

/* ---- everything ---- */

ipw_status preflight_run(const struct plan *p, struct dns *dns, const struct preflight_options *o,
                         struct preflight_report *r, struct err *e)
{
    ipw_status s;
    if ((s = preflight_spf(r, p, dns, e)) != IPW_OK ||
        (s = preflight_ptr(r, p, dns, e)) != IPW_OK || (s = preflight_helo(r, p, dns, e)) != IPW_OK)
        return s;
    struct preflight_domains d;
    struct err de;
    s = preflight_domains_resolve(p, dns, &d, &de);
    if (s == IPW_ENOMEM || s == IPW_EIO)
        return err_set(e, s, "%s", de.msg);
    if (s != IPW_OK) {
        /* A list that cannot be read is one more problem to name, not a reason to stop. */
        memset(&d, 0, sizeof d);
        PREFLIGHT_TRY(preflight_add(r, p, "mx", PREFLIGHT_FAIL, NULL,
                                    "correct the recipient list (recipients.file)", NULL,
                                    "the recipient list could not be read: %s", de.msg));
        s = IPW_OK;
    } else {
        s = preflight_mx(r, p, &d, e);
    }
    if (s == IPW_OK)
        s = preflight_dnsbl(r, p, dns, e);
    if (s == IPW_OK)
        s = preflight_dkim(r, p, dns, e);
    if (s == IPW_OK)
        s = preflight_dmarc(r, p, dns, e);
    if (s == IPW_OK && o && o->no_smtp) {
        const char *names[] = {"smtp", "tls", "auth", "size"};
        for (size_t i = 0; i < 4 && s == IPW_OK; i++)
            s = preflight_add(r, p, names[i], PREFLIGHT_SKIP, NULL, NULL, NULL,
                              "SMTP probes not run");
    } else if (s == IPW_OK) {
        s = preflight_smtp(r, p, dns, &d, e);
    }
    preflight_domains_clear(&d);
    preflight_report_finish(r);
    if (s == IPW_ENOMEM)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    return s;
}

/* ---- helpers for the look-up commands ---- */

struct dns *preflight_dns_new(const struct dns_config *cfg, struct err *e)
{
    struct dns *dns = dns_new(cfg, e);
    if (!dns && e && e->status == IPW_EUNAVAIL)
        e->status = IPW_ETEMP; /* cli.md: 75 when DNS cannot be used at all */
    return dns;
}

ipw_status preflight_builtin_plan(struct plan **out, struct err *e)
{
    /* The required keys only: everything else (the shipped providers, the default block
     * lists) takes its default. No file named here is opened by mx or dnsbl. */
    static const char text[] = "campaign: lookup\n"
                               "source: {ip: 192.0.2.1, helo: localhost.localdomain}\n"
                               "sender: {from: postmaster@localhost.localdomain}\n"
                               "message: {subject: none, text: none}\n"
                               "recipients: {file: /dev/null}\n";
    ipw_status s = plan_load_text(text, sizeof text - 1, "(built-in)", "/", out, e);
    if (s != IPW_OK && s != IPW_ENOMEM)
        return err_prefix(e, IPW_ESOFTWARE, "the built-in plan does not load: ");
    return s;
}
