/*
 * dns_mx: MX resolution of many domains at once (dns_mx_resolve in dns.h), following RFC 5321
 * section 5.1 (hosts by preference, the implicit MX of a domain with an address and no MX) and
 * RFC 7505 (a null MX means no mail is accepted). Each host's addresses are asked for once,
 * however many domains name it.
 */
#include "ipwarm/dns.h"
#include "dns_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/chars.h"
#include "ipwarm/strmap.h"

/* The address lookups of one host name, shared by every domain whose MX names it. */
struct mx_waiter {
    size_t dom, host;
};

struct mx_entry {
    int outstanding;
    struct dns_result a, aaaa;
    struct mx_waiter *waiters;
    size_t n_waiters, cap_waiters;
    struct mx_ctx *ctx;
};

struct mx_dom {
    struct mx_ctx *ctx;
    size_t index;
    size_t hosts_left;
    bool implicit;
    uint32_t ttl;
    bool ttl_known;
};

struct mx_ctx {
    struct dns *dns;
    struct dns_mx_result *results;
    struct mx_dom *doms;
    struct strmap hosts; /* host name in lower case -> its struct mx_entry * */
    bool enomem;
};

static void dns_mx_dom_ttl(struct mx_dom *d, const struct dns_result *r)
{
    if (!r->ttl_known)
        return;
    if (!d->ttl_known || r->ttl < d->ttl)
        d->ttl = r->ttl;
    d->ttl_known = true;
}

static void dns_mx_finish(struct mx_ctx *ctx, size_t i)
{
    struct dns_mx_result *res = &ctx->results[i];
    struct mx_dom *d = &ctx->doms[i];
    bool any_addr = false, any_nx = false;
    enum dns_status temp = DNS_OK;

    for (size_t h = 0; h < res->n_hosts; h++) {
        struct dns_mx_host *host = &res->hosts[h];
        if (host->n_addresses)
            any_addr = true;
        if (dns_status_is_temporary(host->a_status) || host->a_status == DNS_CANCELLED)
            temp = host->a_status;
        else if (dns_status_is_temporary(host->aaaa_status) || host->aaaa_status == DNS_CANCELLED)
            temp = host->aaaa_status;
        if (host->a_status == DNS_NXDOMAIN)
            any_nx = true;
    }
    if (any_addr) {
        res->status = d->implicit ? DNS_MX_IMPLICIT : DNS_MX_OK;
        res->detail = d->implicit ? "no MX; the domain's own address is used (RFC 5321 5.1)"
                                  : "MX hosts resolved";
    } else if (temp != DNS_OK) {
        res->status = DNS_MX_TEMPERROR;
        res->cause = temp;
        res->detail = "an MX host's address lookup failed temporarily";
    } else if (d->implicit && any_nx) {
        res->status = DNS_MX_NXDOMAIN; /* the domain vanished between the two lookups */
        res->cause = DNS_NXDOMAIN;
        res->detail = "the domain does not exist";
    } else {
        res->status = DNS_MX_NO_ADDRESS;
        res->detail =
            d->implicit ? "no MX and no address for the domain" : "no MX host has an address";
    }
    if (res->status == DNS_MX_NO_ADDRESS && d->implicit) {
        /* There was no MX: the domain itself without an address is no host to list. */
        for (size_t h = 0; h < res->n_hosts; h++)
            free(res->hosts[h].host);
        free(res->hosts);
        res->hosts = NULL;
        res->n_hosts = 0;
    }
    res->ttl = res->status != DNS_MX_TEMPERROR && d->ttl_known ? d->ttl : 0;
}

static void dns_mx_fill(struct mx_ctx *ctx, struct mx_entry *en, struct mx_waiter w)
{
    struct dns_mx_result *res = &ctx->results[w.dom];
    struct dns_mx_host *host = &res->hosts[w.host];
    size_t n = 0;
    host->a_status = en->a.status;
    host->aaaa_status = en->aaaa.status;
    if (en->a.status == DNS_OK)
        n += en->a.n_rrs;
    if (en->aaaa.status == DNS_OK)
        n += en->aaaa.n_rrs;
    if (n) {
        host->addresses = calloc(n, sizeof *host->addresses);
        if (!host->addresses) {
            ctx->enomem = true;
        } else {
            const struct dns_result *rs[2] = {&en->a, &en->aaaa};
            for (int k = 0; k < 2; k++) {
                if (rs[k]->status != DNS_OK)
                    continue;
                for (size_t j = 0; j < rs[k]->n_rrs; j++) {
                    char *s = strdup(rs[k]->rrs[j].data ? rs[k]->rrs[j].data : "");
                    if (!s) {
                        ctx->enomem = true;
                        continue;
                    }
                    host->addresses[host->n_addresses++] = s;
                }
            }
        }
    }
    dns_mx_dom_ttl(&ctx->doms[w.dom], &en->a);
    dns_mx_dom_ttl(&ctx->doms[w.dom], &en->aaaa);
    if (--ctx->doms[w.dom].hosts_left == 0)
        dns_mx_finish(ctx, w.dom);
}

static void dns_mx_entry_done(struct mx_entry *en)
{
    for (size_t k = 0; k < en->n_waiters; k++)
        dns_mx_fill(en->ctx, en, en->waiters[k]);
    en->n_waiters = 0;
}

static void dns_mx_on_a(void *arg, struct dns_result *r)
{
    struct mx_entry *en = arg;
    dns_result_move(&en->a, r);
    if (--en->outstanding == 0)
        dns_mx_entry_done(en);
}

static void dns_mx_on_aaaa(void *arg, struct dns_result *r)
{
    struct mx_entry *en = arg;
    dns_result_move(&en->aaaa, r);
    if (--en->outstanding == 0)
        dns_mx_entry_done(en);
}

/* Queues the address lookups of the host of results[dom].hosts[host], or takes them from a
 * lookup already made or under way for the same name. */
static void dns_mx_want_host(struct mx_ctx *ctx, size_t dom, size_t host)
{
    const char *name = ctx->results[dom].hosts[host].host;
    char key[256];
    size_t len = strlen(name);
    if (len >= sizeof key)
        len = sizeof key - 1;
    for (size_t i = 0; i < len; i++)
        key[i] = (char)chars_lower((unsigned char)name[i]);
    key[len] = '\0';

    intptr_t *known = strmap_find(&ctx->hosts, key);
    struct mx_entry *en = known ? (struct mx_entry *)*known : NULL;
    bool fresh = false;
    if (!en) {
        en = calloc(1, sizeof *en);
        if (!en || strmap_put(&ctx->hosts, key, (intptr_t)en) != 0) {
            free(en);
            ctx->enomem = true;
            goto failed;
        }
        en->ctx = ctx;
        fresh = true;
    }
    struct mx_waiter w = {dom, host};
    if (!fresh && en->outstanding == 0) {
        dns_mx_fill(ctx, en, w);
        return;
    }
    if (en->n_waiters == en->cap_waiters) {
        size_t cap = en->cap_waiters ? 2 * en->cap_waiters : 4;
        struct mx_waiter *nw = realloc(en->waiters, cap * sizeof *nw);
        if (!nw) {
            ctx->enomem = true;
            goto failed;
        }
        en->waiters = nw;
        en->cap_waiters = cap;
    }
    en->waiters[en->n_waiters++] = w;
    if (fresh) {
        en->outstanding = 2;
        if (dns_submit(ctx->dns, key, DNS_T_A, dns_mx_on_a, en) != IPW_OK) {
            en->outstanding = 0;
            en->n_waiters = 0;
            ctx->enomem = true;
            goto failed;
        }
        if (dns_submit(ctx->dns, key, DNS_T_AAAA, dns_mx_on_aaaa, en) != IPW_OK) {
            en->outstanding--; /* the A lookup still ends and finishes the entry */
            en->aaaa.status = DNS_ERROR;
            en->aaaa.detail = "out of memory";
            ctx->enomem = true;
        }
    }
    return;
failed:
    ctx->results[dom].hosts[host].a_status = DNS_ERROR;
    ctx->results[dom].hosts[host].aaaa_status = DNS_ERROR;
    if (--ctx->doms[dom].hosts_left == 0)
        dns_mx_finish(ctx, dom);
}

struct mx_sort {
    uint16_t pref;
    size_t order;
    const char *host;
};

static int dns_mx_cmp(const void *a, const void *b)
{
    const struct mx_sort *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void dns_mx_on_mx(void *arg, struct dns_result *r)
{
    struct mx_dom *d = arg;
    struct mx_ctx *ctx = d->ctx;
    struct dns_mx_result *res = &ctx->results[d->index];

    res->cause = r->status;
    switch (r->status) {
    case DNS_OK:
        break;
    case DNS_NODATA:
        break;
    case DNS_NXDOMAIN:
        dns_mx_dom_ttl(d, r);
        res->status = DNS_MX_NXDOMAIN;
        res->detail = "the domain does not exist";
        res->ttl = d->ttl_known ? d->ttl : 0;
        return;
    case DNS_ERROR:
        if (r->detail && strcmp(r->detail, "not a valid domain name") == 0) {
            res->status = DNS_MX_NXDOMAIN;
            res->detail = "not a valid domain name";
            return;
        }
        /* fall through */
    default:
        res->status = DNS_MX_TEMPERROR;
        res->detail = "the MX lookup failed temporarily";
        return;
    }
    dns_mx_dom_ttl(d, r);

    size_t n = 0;
    struct mx_sort *sorted = NULL;
    if (r->status == DNS_OK) {
        sorted = calloc(r->n_rrs ? r->n_rrs : 1, sizeof *sorted);
        if (!sorted)
            goto enomem;
        for (size_t i = 0; i < r->n_rrs; i++) {
            const char *h = r->rrs[i].data ? r->rrs[i].data : "";
            /* RFC 7505: "." is no host. Alone it is a null MX; beside real hosts (which RFC
             * 7505 3 forbids) it is ignored so that the real ones are still tried. */
            if (h[0] == '\0' || strcmp(h, ".") == 0)
                continue;
            sorted[n++] = (struct mx_sort){r->rrs[i].preference, i, h};
        }
        if (n == 0) {
            free(sorted);
            res->status = DNS_MX_NULL;
            res->detail = "null MX: the domain accepts no mail (RFC 7505)";
            res->ttl = d->ttl_known ? d->ttl : 0;
            return;
        }
        qsort(sorted, n, sizeof *sorted, dns_mx_cmp);
    } else {
        d->implicit = true; /* RFC 5321 5.1: no MX, the domain is its own host */
        n = 1;
    }
    res->hosts = calloc(n, sizeof *res->hosts);
    if (!res->hosts)
        goto enomem;
    for (size_t i = 0; i < n; i++) {
        const char *h = sorted ? sorted[i].host : res->domain;
        res->hosts[i].preference = sorted ? sorted[i].pref : 0;
        res->hosts[i].host = strdup(h);
        if (!res->hosts[i].host) {
            for (size_t j = 0; j < i; j++)
                free(res->hosts[j].host);
            free(res->hosts);
            res->hosts = NULL;
            goto enomem;
        }
        dns_strip_dot(res->hosts[i].host);
    }
    res->n_hosts = n;
    free(sorted);
    sorted = NULL;
    d->hosts_left = n;
    for (size_t i = 0; i < n; i++)
        dns_mx_want_host(ctx, d->index, i);
    return;
enomem:
    free(sorted);
    ctx->enomem = true;
    res->status = DNS_MX_TEMPERROR;
    res->cause = DNS_ERROR;
    res->detail = "out of memory";
}

void dns_mx_result_clear(struct dns_mx_result *r)
{
    if (!r)
        return;
    for (size_t h = 0; h < r->n_hosts; h++) {
        for (size_t a = 0; a < r->hosts[h].n_addresses; a++)
            free(r->hosts[h].addresses[a]);
        free(r->hosts[h].addresses);
        free(r->hosts[h].host);
    }
    free(r->hosts);
    free(r->domain);
    memset(r, 0, sizeof *r);
    r->detail = "";
}

ipw_status dns_mx_resolve(struct dns *dns, const char *const *domains, size_t n,
                          struct dns_mx_result *results, struct err *e)
{
    struct mx_ctx ctx = {.dns = dns, .results = results};
    ipw_status st = IPW_OK;

    for (size_t i = 0; i < n; i++) {
        memset(&results[i], 0, sizeof results[i]);
        results[i].status = DNS_MX_TEMPERROR;
        results[i].cause = DNS_CANCELLED;
        results[i].detail = "not resolved";
    }
    if (n == 0)
        return IPW_OK;
    ctx.doms = calloc(n, sizeof *ctx.doms);
    if (!ctx.doms) {
        st = err_set(e, IPW_ENOMEM, "out of memory resolving %zu domains", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        ctx.doms[i].ctx = &ctx;
        ctx.doms[i].index = i;
        results[i].domain = strdup(domains[i] ? domains[i] : "");
        if (!results[i].domain) {
            st = err_set(e, IPW_ENOMEM, "out of memory resolving %zu domains", n);
            goto done;
        }
        /* A domain that is not a valid name cannot exist; it is refused in dns_submit and
         * arrives in dns_mx_on_mx as such. */
        if (dns_submit(dns, results[i].domain, DNS_T_MX, dns_mx_on_mx, &ctx.doms[i]) != IPW_OK) {
            st = err_set(e, IPW_ENOMEM, "out of memory resolving %zu domains", n);
            goto done;
        }
    }
    st = dns_run(dns, -1, e);
    if (st == IPW_OK && ctx.enomem)
        st = err_set(e, IPW_ENOMEM, "out of memory resolving %zu domains", n);
done:
    if (st != IPW_OK) {
        /* Queries still pending point into ctx, which goes now. */
        dns_detach(dns, dns_mx_on_mx, NULL);
        dns_detach(dns, dns_mx_on_a, NULL);
        dns_detach(dns, dns_mx_on_aaaa, NULL);
    }
    intptr_t v;
    for (size_t pos = 0; strmap_next(&ctx.hosts, &pos, NULL, &v);) {
        struct mx_entry *en = (struct mx_entry *)v;
        dns_result_clear(&en->a);
        dns_result_clear(&en->aaaa);
        free(en->waiters);
        free(en);
    }
    strmap_free(&ctx.hosts);
    free(ctx.doms);
    return st;
}
