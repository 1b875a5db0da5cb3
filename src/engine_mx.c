/*
 * engine_mx: the run's MX answers (RFC 5321 section 5.1), kept in memory for their TTL (between
 * a minute and a day) and written to the store's cache for `mx`, status and the report. A batch
 * of new domains is resolved in parallel before its recipients are queued. A null MX (RFC 7505),
 * a domain that does not exist or MX hosts without an address make a domain undeliverable.
 */
#include "ipwarm/engine.h"

#include <stdlib.h>
#include <string.h>

#include "ipwarm/json.h"
#include "ipwarm/provider.h"
#include "ipwarm/strmap.h"

#include "engine_state.h"

/* ---- MX ---- */

/* Records an MX answer in the store's cache (what `mx --json` would show), so that operators
 * and the report see where each domain's mail went and until when the answer holds. The run
 * itself keeps its answers in memory; a new run asks DNS again, which is cheap. */
static void engine_mx_record(struct engine *g, const struct dns_mx_result *m, int64_t now,
                             int64_t ttl_ms)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    struct json j;
    json_init(&j, f, false);
    json_array_begin(&j);
    for (size_t h = 0; h < m->n_hosts; h++) {
        json_object_begin(&j);
        json_kv_int(&j, "preference", m->hosts[h].preference);
        json_kv_string(&j, "host", m->hosts[h].host);
        json_key(&j, "addresses");
        json_array_begin(&j);
        for (size_t a = 0; a < m->hosts[h].n_addresses; a++)
            json_string(&j, m->hosts[h].addresses[a]);
        json_array_end(&j);
        json_object_end(&j);
    }
    json_array_end(&j);
    struct err je;
    json_finish(&j, &je);
    fclose(f);
    /* The writer ends a document with a line break; a column holds just the array. */
    if (buf && len > 0 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';
    size_t pi = provider_for_mx(g->p, m);
    struct store_mx row = {
        .domain = m->domain,
        .status = dns_mx_status_name(m->status),
        .provider = g->p->providers[pi].name,
        .hosts_json = buf ? buf : "[]",
        .fetched_ms = now,
        .expires_ms = now + ttl_ms,
    };
    /* A cache: failing to write it costs nothing but the display. */
    store_mx_put(g->st, &row, NULL);
    free(buf);
}

/* Records the answer res (taken over, cleared on failure) for domain, in the store's cache and
 * in memory for its TTL (at least a minute: a temporary failure is asked again soon). Returns
 * where it is kept, or NULL on out of memory (e set). */
static struct dns_mx_result *engine_mx_park(struct engine *g, const char *domain,
                                            struct dns_mx_result *res, int64_t now, struct err *e)
{
    int64_t ttl = (int64_t)res->ttl * 1000;
    if (res->status == DNS_MX_TEMPERROR || ttl < ENGINE_MX_TTL_MIN_MS)
        ttl = ENGINE_MX_TTL_MIN_MS;
    if (ttl > ENGINE_MX_TTL_MAX_MS)
        ttl = ENGINE_MX_TTL_MAX_MS;
    engine_mx_record(g, res, now, ttl);
    intptr_t *idx = strmap_find(&g->mx_index, domain);
    if (idx) {
        dns_mx_result_clear(&g->mx[*idx]);
        g->mx[*idx] = *res;
        g->mx_expires[*idx] = now + ttl;
        return &g->mx[*idx];
    }
    if (g->n_mx == g->cap_mx) {
        size_t ncap = g->cap_mx ? g->cap_mx * 2 : 64;
        struct dns_mx_result *nm = realloc(g->mx, ncap * sizeof *nm);
        int64_t *ne = nm ? realloc(g->mx_expires, ncap * sizeof *ne) : NULL;
        if (nm)
            g->mx = nm;
        if (!nm || !ne) {
            dns_mx_result_clear(res);
            err_set(e, IPW_ENOMEM, "out of memory");
            return NULL;
        }
        g->mx_expires = ne;
        g->cap_mx = ncap;
    }
    g->mx[g->n_mx] = *res;
    g->mx_expires[g->n_mx] = now + ttl;
    if (strmap_put(&g->mx_index, domain, (intptr_t)g->n_mx) != 0) {
        dns_mx_result_clear(&g->mx[g->n_mx]);
        err_set(e, IPW_ENOMEM, "out of memory");
        return NULL;
    }
    return &g->mx[g->n_mx++];
}

/* The MX result for domain, resolving it when unknown or stale. Returns NULL on out of memory
 * (e set). */
struct dns_mx_result *engine_mx(struct engine *g, const char *domain, int64_t now, struct err *e)
{
    intptr_t *idx = strmap_find(&g->mx_index, domain);
    if (idx && g->mx_expires[*idx] > now)
        return &g->mx[*idx];
    struct dns_mx_result res;
    const char *doms[1] = {domain};
    /* The last round's outcomes are not left uncommitted while DNS answers. */
    ipw_status r = store_batch_release(g->st, e);
    if (r == IPW_OK)
        r = dns_mx_resolve(g->dns, doms, 1, &res, e);
    if (r != IPW_OK)
        return NULL;
    return engine_mx_park(g, domain, &res, now, e);
}

/* Resolves the domains of a batch in parallel, so that the first sends need not wait. */
ipw_status engine_mx_prefetch(struct engine *g, const char **domains, size_t n, int64_t now,
                              struct err *e)
{
    const char **todo = calloc(n ? n : 1, sizeof *todo);
    if (!todo)
        return err_set(e, IPW_ENOMEM, "out of memory");
    size_t k = 0;
    struct strmap seen = {0};
    for (size_t i = 0; i < n; i++) {
        intptr_t *idx = strmap_find(&g->mx_index, domains[i]);
        if ((idx && g->mx_expires[*idx] > now) || strmap_find(&seen, domains[i]))
            continue;
        strmap_put(&seen, domains[i], 1);
        todo[k++] = domains[i];
    }
    strmap_free(&seen);
    ipw_status r = IPW_OK;
    if (k > 0) {
        struct dns_mx_result *res = calloc(k, sizeof *res);
        if (!res) {
            free(todo);
            return err_set(e, IPW_ENOMEM, "out of memory");
        }
        r = store_batch_release(g->st, e);
        if (r == IPW_OK)
            r = dns_mx_resolve(g->dns, todo, k, res, e);
        /* The cache rows of the answers, in one short transaction after the lookups. */
        bool tx = r == IPW_OK && store_batch_begin(g->st, NULL) == IPW_OK;
        for (size_t i = 0; i < k; i++) {
            if (r == IPW_OK) {
                /* Park each result where engine_mx() finds it. */
                if (!engine_mx_park(g, todo[i], &res[i], now, e))
                    r = e->status;
            } else {
                dns_mx_result_clear(&res[i]);
            }
        }
        if (tx)
            store_batch_end(g->st, IPW_OK, NULL);
        free(res);
    }
    free(todo);
    return r;
}

bool engine_mx_undeliverable(enum dns_mx_status s)
{
    return s == DNS_MX_NULL || s == DNS_MX_NXDOMAIN || s == DNS_MX_NO_ADDRESS;
}

const char *engine_mx_why(const struct dns_mx_result *m)
{
    switch (m->status) {
    case DNS_MX_NULL:
        return "it publishes a null MX (RFC 7505): it accepts no mail";
    case DNS_MX_NXDOMAIN:
        return "the domain does not exist";
    case DNS_MX_NO_ADDRESS:
        return "none of its MX hosts has an address";
    default:
        return m->detail;
    }
}
