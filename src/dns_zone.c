/*
 * dns_zone: an in-memory zone behind the resolver interface, for unit tests and the RFC 7208
 * conformance suite, whose scenarios are zones written as data.
 *
 * It answers as a recursive server in front of an authoritative one would (RFC 1034 4.3.2):
 * CNAMEs are followed (at most 8), a name that owns records of other types gets NODATA, a name
 * that owns nothing gets NXDOMAIN unless it is the parent of a name that does (an empty
 * non-terminal, RFC 8020), and both negative answers carry the zone's negative TTL as an SOA
 * would (RFC 2308). Faults set per name stand for a server failure or a timeout, reported at
 * once so that tests never wait. Lookups are linear: zones here hold hundreds of records.
 */
#include "ipwarm/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct zone_rec {
    char *owner;
    struct dns_rr rr;
};

struct zone_fault {
    char *owner;
    enum dns_type type; /* DNS_T_ANY: every type */
    enum dns_status status;
};

struct dns_zone {
    struct zone_rec *recs;
    size_t n_recs, cap_recs;
    struct zone_fault *faults;
    size_t n_faults, cap_faults;
    uint32_t negative_ttl;
    unsigned long queries;
};

struct dns_zone *dns_zone_new(void)
{
    struct dns_zone *z = calloc(1, sizeof *z);
    if (z)
        z->negative_ttl = 300;
    return z;
}

void dns_zone_free(struct dns_zone *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->n_recs; i++) {
        free(z->recs[i].owner);
        free(z->recs[i].rr.data);
    }
    for (size_t i = 0; i < z->n_faults; i++)
        free(z->faults[i].owner);
    free(z->recs);
    free(z->faults);
    free(z);
}

void dns_zone_set_negative_ttl(struct dns_zone *z, uint32_t ttl)
{
    z->negative_ttl = ttl;
}

unsigned long dns_zone_queries(const struct dns_zone *z)
{
    return z->queries;
}

/* A copy of name without its trailing dot. */
static char *dns_zone_norm_dup(const char *name)
{
    char *s = strdup(name);
    if (s) {
        size_t n = strlen(s);
        if (n > 0 && s[n - 1] == '.')
            s[n - 1] = '\0';
    }
    return s;
}

/* Compares a zone name with a queried one, ignoring case and a trailing dot on the latter. */
static bool dns_zone_same_name(const char *owner, const char *q, size_t qlen)
{
    return strlen(owner) == qlen && strncasecmp(owner, q, qlen) == 0;
}

static size_t dns_zone_norm_len(const char *q)
{
    size_t n = strlen(q);
    return n > 0 && q[n - 1] == '.' ? n - 1 : n;
}

ipw_status dns_zone_add(struct dns_zone *z, const char *name, enum dns_type type, uint32_t ttl,
                        const char *data, struct err *e)
{
    struct dns_rr rr = {.type = type, .ttl = ttl};
    char *owner = NULL;

    if (!name || !data)
        return err_set(e, IPW_EUSAGE, "zone record: a name and data are required");
    switch (type) {
    case DNS_T_A:
    case DNS_T_AAAA: {
        char text[INET6_ADDRSTRLEN];
        int af = type == DNS_T_A ? AF_INET : AF_INET6;
        if (inet_pton(af, data, rr.addr) != 1)
            return err_set(e, IPW_EUSAGE, "zone record %s %s: '%s' is not an address", name,
                           dns_type_name(type), data);
        inet_ntop(af, rr.addr, text, sizeof text);
        rr.data = strdup(text);
        break;
    }
    case DNS_T_MX: {
        char *end = NULL;
        errno = 0;
        long pref = strtol(data, &end, 10);
        if (errno || end == data || pref < 0 || pref > 65535 || (*end != ' ' && *end != '\t'))
            return err_set(e, IPW_EUSAGE,
                           "zone record %s MX: expected 'PREFERENCE HOST', found '%s'", name, data);
        while (*end == ' ' || *end == '\t')
            end++;
        if (!*end)
            return err_set(e, IPW_EUSAGE, "zone record %s MX: expected a host after the preference",
                           name);
        rr.preference = (uint16_t)pref;
        rr.data = dns_zone_norm_dup(end); /* "." becomes "", the root, as on the wire */
        break;
    }
    case DNS_T_PTR:
    case DNS_T_CNAME:
    case DNS_T_NS:
        rr.data = dns_zone_norm_dup(data);
        break;
    default:
        rr.data = strdup(data);
        break;
    }
    if (!rr.data)
        return err_set(e, IPW_ENOMEM, "out of memory adding a zone record");
    rr.len = strlen(rr.data);
    owner = dns_zone_norm_dup(name);
    if (owner && z->n_recs == z->cap_recs) {
        size_t cap = z->cap_recs ? 2 * z->cap_recs : 16;
        struct zone_rec *nr = realloc(z->recs, cap * sizeof *nr);
        if (nr) {
            z->recs = nr;
            z->cap_recs = cap;
        }
    }
    if (!owner || z->n_recs == z->cap_recs) {
        free(owner);
        free(rr.data);
        return err_set(e, IPW_ENOMEM, "out of memory adding a zone record");
    }
    z->recs[z->n_recs].owner = owner;
    z->recs[z->n_recs].rr = rr;
    z->n_recs++;
    return IPW_OK;
}

ipw_status dns_zone_add_txt(struct dns_zone *z, const char *name, uint32_t ttl, const char *data,
                            size_t len, struct err *e)
{
    if (!name || (!data && len))
        return err_set(e, IPW_EUSAGE, "zone record: a name and data are required");
    /* Added as an empty record, then given its bytes: the answer copies len + 1 bytes. */
    ipw_status st = dns_zone_add(z, name, DNS_T_TXT, ttl, "", e);
    if (st != IPW_OK)
        return st;
    struct dns_rr *rr = &z->recs[z->n_recs - 1].rr;
    char *copy = malloc(len + 1);
    if (!copy) {
        free(z->recs[z->n_recs - 1].owner);
        free(rr->data);
        z->n_recs--;
        return err_set(e, IPW_ENOMEM, "out of memory adding a zone record");
    }
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    free(rr->data);
    rr->data = copy;
    rr->len = len;
    return IPW_OK;
}

ipw_status dns_zone_fail(struct dns_zone *z, const char *name, enum dns_type type,
                         enum dns_status status, struct err *e)
{
    if (status == DNS_OK || status == DNS_NODATA || status == DNS_NXDOMAIN)
        return err_set(e, IPW_EUSAGE, "zone fault for %s: '%s' is an answer, not a fault", name,
                       dns_status_name(status));
    if (z->n_faults == z->cap_faults) {
        size_t cap = z->cap_faults ? 2 * z->cap_faults : 8;
        struct zone_fault *nf = realloc(z->faults, cap * sizeof *nf);
        if (!nf)
            return err_set(e, IPW_ENOMEM, "out of memory adding a zone fault");
        z->faults = nf;
        z->cap_faults = cap;
    }
    char *owner = dns_zone_norm_dup(name);
    if (!owner)
        return err_set(e, IPW_ENOMEM, "out of memory adding a zone fault");
    z->faults[z->n_faults++] = (struct zone_fault){owner, type, status};
    return IPW_OK;
}

static bool dns_zone_fault_for(const struct dns_zone *z, const char *name, enum dns_type type,
                               enum dns_status *out)
{
    size_t len = dns_zone_norm_len(name);
    for (size_t i = 0; i < z->n_faults; i++)
        if (dns_zone_same_name(z->faults[i].owner, name, len) &&
            (z->faults[i].type == DNS_T_ANY || z->faults[i].type == type)) {
            *out = z->faults[i].status;
            return true;
        }
    return false;
}

/* True when name owns a record or a fault, or is a parent of a name that does. */
static bool dns_zone_name_exists(const struct dns_zone *z, const char *name)
{
    size_t len = dns_zone_norm_len(name);
    for (size_t k = 0; k < z->n_recs + z->n_faults; k++) {
        const char *o = k < z->n_recs ? z->recs[k].owner : z->faults[k - z->n_recs].owner;
        size_t ol = strlen(o);
        if (ol == len && strncasecmp(o, name, len) == 0)
            return true;
        if (ol > len && o[ol - len - 1] == '.' && strncasecmp(o + ol - len, name, len) == 0)
            return true;
    }
    return false;
}

static const struct zone_rec *dns_zone_find_cname(const struct dns_zone *z, const char *name)
{
    size_t len = dns_zone_norm_len(name);
    for (size_t i = 0; i < z->n_recs; i++)
        if (z->recs[i].rr.type == DNS_T_CNAME && dns_zone_same_name(z->recs[i].owner, name, len))
            return &z->recs[i];
    return NULL;
}

/* Answers name/type into r; false on ENOMEM. */
static bool dns_zone_answer(struct dns_zone *z, const char *qname, enum dns_type type,
                            struct dns_result *r)
{
    const char *cur = qname;
    uint32_t ttl = UINT32_MAX;
    enum dns_status fault;

    memset(r, 0, sizeof *r);
    r->type = type;
    r->rcode = -1;
    z->queries++;
    for (int hops = 0;; hops++) {
        if (dns_zone_fault_for(z, cur, type, &fault)) {
            r->status = fault;
            r->rcode = fault == DNS_SERVFAIL ? 2 : fault == DNS_REFUSED ? 5 : -1;
            return true;
        }
        const struct zone_rec *cn = type == DNS_T_CNAME ? NULL : dns_zone_find_cname(z, cur);
        if (!cn)
            break;
        if (hops == 8) {
            r->status = DNS_SERVFAIL; /* a loop or an over-long chain, as a server reports it */
            r->rcode = 2;
            return true;
        }
        cur = cn->rr.data;
        if (cn->rr.ttl < ttl)
            ttl = cn->rr.ttl;
        free(r->canonical);
        if (!(r->canonical = strdup(cur)))
            return false;
    }

    size_t len = dns_zone_norm_len(cur), want = 0;
    for (size_t i = 0; i < z->n_recs; i++)
        if (z->recs[i].rr.type == type && dns_zone_same_name(z->recs[i].owner, cur, len))
            want++;
    if (want == 0) {
        r->status = dns_zone_name_exists(z, cur) ? DNS_NODATA : DNS_NXDOMAIN;
        r->rcode = r->status == DNS_NXDOMAIN ? 3 : 0;
        r->ttl = z->negative_ttl;
        r->ttl_known = true;
        return true;
    }
    r->rrs = calloc(want, sizeof *r->rrs);
    if (!r->rrs)
        return false;
    for (size_t i = 0; i < z->n_recs; i++) {
        const struct dns_rr *src = &z->recs[i].rr;
        if (src->type != type || !dns_zone_same_name(z->recs[i].owner, cur, len))
            continue;
        struct dns_rr *dst = &r->rrs[r->n_rrs];
        *dst = *src;
        dst->data = malloc(src->len + 1);
        if (!dst->data)
            return false;
        memcpy(dst->data, src->data, src->len + 1);
        r->n_rrs++;
        if (src->ttl < ttl)
            ttl = src->ttl;
    }
    r->status = DNS_OK;
    r->rcode = 0;
    r->ttl = ttl;
    r->ttl_known = true;
    return true;
}

static ipw_status dns_zone_start(void *impl, struct dns_query *q)
{
    struct dns_result r;
    if (!dns_zone_answer(impl, dns_query_name(q), dns_query_type(q), &r)) {
        dns_result_clear(&r);
        r.status = DNS_ERROR;
        r.rcode = -1;
        r.detail = "out of memory";
    }
    dns_query_done(q, &r); /* the front end defers the callback */
    return IPW_OK;
}

static size_t dns_zone_pollfds(void *impl, struct pollfd *fds, size_t max)
{
    (void)impl;
    (void)fds;
    (void)max;
    return 0;
}

static int64_t dns_zone_timeout(void *impl)
{
    (void)impl;
    return -1;
}

static void dns_zone_process(void *impl, const struct pollfd *fds, size_t n)
{
    (void)impl;
    (void)fds;
    (void)n;
}

static void dns_zone_free_impl(void *impl)
{
    (void)impl; /* the zone belongs to the caller and holds no query */
}

static const struct dns_backend zone_backend = {
    .name = "zone",
    .start = dns_zone_start,
    .pollfds = dns_zone_pollfds,
    .timeout = dns_zone_timeout,
    .process = dns_zone_process,
    .free = dns_zone_free_impl,
};

struct dns *dns_new_zone(struct dns_zone *zone, const struct dns_config *cfg, struct err *e)
{
    return dns_new_backend(&zone_backend, zone, cfg, e);
}
