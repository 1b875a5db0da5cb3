/*
 * dnsbl: DNS block list look-ups (RFC 5782).
 *
 * The query name is the address reversed under the list's zone: the four octets of IPv4
 * (RFC 5782 2.1) or the 32 nibbles of IPv6 (RFC 5782 2.4), most significant last. Every A query
 * of every (address, zone) pair is submitted before the event loop runs, so a slow list costs
 * its own timeout once, not once per zone. A listing (an A answer in 127.0.0.0/8, RFC 5782 2.3)
 * submits the TXT query of the same name from its callback, to say why. Answers in
 * 127.255.255.0/24 are Spamhaus's "your query was refused" codes (public resolver, over the
 * free-use limit, malformed query): reading them as "listed" would halt a warm-up for nothing,
 * and reading them as "clean" would hide a listing, so they are "could not check".
 */
#include "ipwarm/dnsbl.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ipw_status dnsbl_query_name(const char *ip, const char *zone, char *buf, size_t n, struct err *e)
{
    unsigned char a[16];
    size_t zl = zone ? strlen(zone) : 0;
    if (zl > 0 && zone[zl - 1] == '.')
        zl--;
    if (zl == 0)
        return err_set(e, IPW_EUSAGE, "dnsbl: the block list zone is empty");
    int w;
    if (inet_pton(AF_INET, ip, a) == 1) {
        w = snprintf(buf, n, "%u.%u.%u.%u.%.*s", a[3], a[2], a[1], a[0], (int)zl, zone);
    } else if (inet_pton(AF_INET6, ip, a) == 1) {
        static const char hex[] = "0123456789abcdef";
        char nib[65];
        size_t k = 0;
        for (int i = 15; i >= 0; i--) {
            nib[k++] = hex[a[i] & 0xf];
            nib[k++] = '.';
            nib[k++] = hex[a[i] >> 4];
            nib[k++] = '.';
        }
        nib[k] = '\0';
        w = snprintf(buf, n, "%s%.*s", nib, (int)zl, zone);
    } else {
        return err_set(e, IPW_EUSAGE, "dnsbl: \"%s\" is not an IPv4 or IPv6 address", ip);
    }
    if (w < 0 || (size_t)w >= n)
        return err_set(e, IPW_EUSAGE, "dnsbl: the query name for %s under %.*s is too long", ip,
                       (int)zl, zone);
    return IPW_OK;
}

/* One (address, zone) pair in flight: the callbacks find their slot through it. */
struct dnsbl_job {
    struct dns *dns;
    struct dnsbl_result *res;
    struct dnsbl_zone_result *z;
    char name[DNSBL_NAME_MAX];
    bool enomem;
};

/* The error name of a lookup that did not answer. */
static const char *dnsbl_error_of(enum dns_status s)
{
    switch (s) {
    case DNS_TIMEOUT:
        return "timeout";
    case DNS_SERVFAIL:
        return "servfail";
    case DNS_REFUSED:
        return "refused";
    case DNS_UNREACHABLE:
        return "unreachable";
    default:
        return "error";
    }
}

static void dnsbl_on_txt(void *arg, struct dns_result *r)
{
    struct dnsbl_job *job = arg;
    if (r->status != DNS_OK || r->n_rrs == 0)
        return; /* the reason is optional: a listing without TXT is still a listing */
    size_t len = 0;
    for (size_t i = 0; i < r->n_rrs; i++)
        len += strlen(r->rrs[i].data) + 2;
    char *t = malloc(len + 1);
    if (!t) {
        job->enomem = true;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->n_rrs; i++) {
        /* strlen, not rr.len: a TXT with a NUL byte is cut there, never printed past it. */
        size_t l = strlen(r->rrs[i].data);
        if (i > 0) {
            memcpy(t + k, "; ", 2);
            k += 2;
        }
        memcpy(t + k, r->rrs[i].data, l);
        k += l;
    }
    t[k] = '\0';
    job->z->txt = t;
}

static void dnsbl_on_a(void *arg, struct dns_result *r)
{
    struct dnsbl_job *job = arg;
    struct dnsbl_zone_result *z = job->z;
    z->dns_status = r->status;
    if (r->status == DNS_NXDOMAIN || r->status == DNS_NODATA)
        return; /* not listed (RFC 5782 2.1: no A record) */
    if (r->status != DNS_OK) {
        z->error = dnsbl_error_of(r->status);
        return;
    }
    z->answers = calloc(r->n_rrs, sizeof *z->answers);
    if (!z->answers) {
        job->enomem = true;
        return;
    }
    bool listed = false, refused = false, foreign = false;
    for (size_t i = 0; i < r->n_rrs; i++) {
        const unsigned char *a = r->rrs[i].addr;
        z->answers[i] = strdup(r->rrs[i].data);
        if (!z->answers[i]) {
            job->enomem = true;
            return;
        }
        z->n_answers++;
        if (a[0] != 127)
            foreign = true;
        else if (a[1] == 255 && a[2] == 255)
            refused = true;
        else
            listed = true;
    }
    if (listed) {
        /* A real listing beside a refusal code still lists the address. */
        z->listed = true;
        job->res->listed = true;
        if (dns_submit(job->dns, job->name, DNS_T_TXT, dnsbl_on_txt, job) != IPW_OK)
            job->enomem = true;
    } else if (refused) {
        z->error = "refused-by-list";
    } else if (foreign) {
        z->error = "unexpected-answer";
    }
}

void dnsbl_result_clear(struct dnsbl_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_zones; i++) {
        struct dnsbl_zone_result *z = &r->zones[i];
        free(z->zone);
        for (size_t k = 0; k < z->n_answers; k++)
            free(z->answers[k]);
        free(z->answers);
        free(z->txt);
    }
    free(r->zones);
    free(r->ip);
    memset(r, 0, sizeof *r);
}

bool dnsbl_result_unreachable(const struct dnsbl_result *r)
{
    if (r->n_zones == 0)
        return false;
    for (size_t i = 0; i < r->n_zones; i++)
        if (r->zones[i].dns_status != DNS_UNREACHABLE)
            return false;
    return true;
}

ipw_status dnsbl_lookup(struct dns *dns, const char *const *ips, size_t n_ips,
                        const char *const *zones, size_t n_zones, struct dnsbl_result *results,
                        struct err *e)
{
    ipw_status s = IPW_OK;
    memset(results, 0, n_ips * sizeof *results);
    struct dnsbl_job *jobs = calloc(n_ips * n_zones + 1, sizeof *jobs);
    if (!jobs)
        return err_set(e, IPW_ENOMEM, "dnsbl: out of memory");
    for (size_t i = 0; i < n_ips && s == IPW_OK; i++) {
        struct dnsbl_result *res = &results[i];
        res->ip = strdup(ips[i]);
        res->zones = calloc(n_zones + 1, sizeof *res->zones);
        if (!res->ip || !res->zones) {
            s = err_set(e, IPW_ENOMEM, "dnsbl: out of memory");
            break;
        }
        res->n_zones = n_zones;
        for (size_t k = 0; k < n_zones; k++) {
            struct dnsbl_job *job = &jobs[i * n_zones + k];
            struct dnsbl_zone_result *z = &res->zones[k];
            z->zone = strdup(zones[k]);
            if (!z->zone) {
                s = err_set(e, IPW_ENOMEM, "dnsbl: out of memory");
                break;
            }
            s = dnsbl_query_name(ips[i], zones[k], job->name, sizeof job->name, e);
            if (s != IPW_OK)
                break;
            job->dns = dns;
            job->res = res;
            job->z = z;
        }
    }
    /* Submit only once every name is known, so that a bad IP leaves nothing in flight. */
    size_t submitted = 0;
    for (size_t j = 0; j < n_ips * n_zones && s == IPW_OK; j++) {
        if (dns_submit(dns, jobs[j].name, DNS_T_A, dnsbl_on_a, &jobs[j]) != IPW_OK)
            s = err_set(e, IPW_ENOMEM, "dnsbl: out of memory");
        else
            submitted++;
    }
    /* Even after a failure, let what was submitted end: the callbacks point into jobs. */
    if (submitted > 0) {
        struct err e2;
        ipw_status rs = dns_run(dns, -1, &e2);
        if (s == IPW_OK && rs != IPW_OK)
            s = err_set(e, rs, "%s", e2.msg);
    }
    for (size_t j = 0; j < n_ips * n_zones && s == IPW_OK; j++)
        if (jobs[j].enomem)
            s = err_set(e, IPW_ENOMEM, "dnsbl: out of memory");
    for (size_t i = 0; i < n_ips && s == IPW_OK; i++)
        for (size_t k = 0; k < results[i].n_zones; k++)
            if (results[i].zones[k].error)
                results[i].n_unchecked++;
    free(jobs);
    if (s != IPW_OK)
        for (size_t i = 0; i < n_ips; i++)
            dnsbl_result_clear(&results[i]);
    return s;
}
