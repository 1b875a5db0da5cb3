/*
 * preflight_mx: the recipient domains of the plan and their MX (see preflight_mx.h). The list
 * is streamed (recipients.c) and each distinct domain resolved once, all in parallel through
 * dns_mx_resolve; the mx check names every domain that cannot receive mail (a null MX,
 * RFC 7505; NXDOMAIN; no address) and warns for those whose DNS did not answer.
 */
#include "ipwarm/preflight_mx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/provider.h"
#include "ipwarm/recipients.h"

void preflight_domains_clear(struct preflight_domains *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->domains[i]);
        if (d->mx)
            dns_mx_result_clear(&d->mx[i]);
    }
    free(d->domains);
    free(d->mx);
    free(d->provider);
    memset(d, 0, sizeof *d);
}

/* An open-addressing set of the distinct domains, in order of first sight. */
struct preflight_set {
    size_t *slots; /* index + 1 into the list; 0 = empty */
    size_t size;   /* a power of two */
    char **list;
    size_t n, cap;
};

static size_t preflight_hash(const char *s)
{
    size_t h = 1469598103934665603ull & SIZE_MAX;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * (1099511628211ull & SIZE_MAX);
    return h;
}

static bool preflight_set_add(struct preflight_set *set, const char *s)
{
    if ((set->n + 1) * 2 > set->size) {
        size_t size = set->size ? set->size * 2 : 1024;
        size_t *slots = calloc(size, sizeof *slots);
        if (!slots)
            return false;
        for (size_t i = 0; i < set->n; i++) {
            size_t h = preflight_hash(set->list[i]) & (size - 1);
            while (slots[h])
                h = (h + 1) & (size - 1);
            slots[h] = i + 1;
        }
        free(set->slots);
        set->slots = slots;
        set->size = size;
    }
    size_t h = preflight_hash(s) & (set->size - 1);
    while (set->slots[h]) {
        if (strcmp(set->list[set->slots[h] - 1], s) == 0)
            return true;
        h = (h + 1) & (set->size - 1);
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        char **l = realloc(set->list, cap * sizeof *l);
        if (!l)
            return false;
        set->list = l;
        set->cap = cap;
    }
    if (!(set->list[set->n] = strdup(s)))
        return false;
    set->slots[h] = ++set->n;
    return true;
}

ipw_status preflight_domains_resolve(const struct plan *p, struct dns *dns,
                                     struct preflight_domains *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    struct preflight_set set;
    memset(&set, 0, sizeof set);
    struct recipients *rc = NULL;
    ipw_status s = recipients_open(p->recipients_file, p->recipients_column, &rc, e);
    while (s == IPW_OK) {
        struct recipients_rec rec;
        ipw_status rs = recipients_next(rc, &rec, e);
        if (rs == IPW_ENOTFOUND)
            break;
        if (rs == IPW_EDATA) {
            out->bad_records++;
            continue;
        }
        if (rs != IPW_OK)
            s = rs;
        else if (!preflight_set_add(&set, rec.domain))
            s = err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    recipients_close(rc);
    free(set.slots);
    out->domains = set.list;
    out->n = set.n;
    if (s != IPW_OK) {
        preflight_domains_clear(out);
        return s;
    }
    out->mx = calloc(out->n + 1, sizeof *out->mx);
    out->provider = calloc(out->n + 1, sizeof *out->provider);
    if (!out->mx || !out->provider) {
        preflight_domains_clear(out);
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    if (out->n > 0) {
        s = dns_mx_resolve(dns, (const char *const *)out->domains, out->n, out->mx, e);
        if (s != IPW_OK) {
            free(out->mx); /* dns_mx_resolve leaves nothing to clear on failure */
            out->mx = NULL;
            preflight_domains_clear(out);
            return s;
        }
    }
    for (size_t i = 0; i < out->n; i++)
        out->provider[i] = provider_for_mx(p, &out->mx[i]);
    return IPW_OK;
}

/* How many domains preflight_mx names in its detail; the rest are counted. */
#define PREFLIGHT_MX_NAMED 100

ipw_status preflight_mx(struct preflight_report *r, const struct plan *p,
                        const struct preflight_domains *d, struct err *e)
{
    if (d->n == 0) {
        PREFLIGHT_TRY(preflight_add(
            r, p, "mx", PREFLIGHT_WARN, NULL, "put recipient addresses in recipients.file", NULL,
            "the recipient list has no addresses%s", d->bad_records ? " that can be used" : ""));
        return IPW_OK;
    }
    size_t n_bad = 0, n_temp = 0;
    size_t *per_provider = calloc(p->n_providers + 1, sizeof *per_provider);
    if (!per_provider)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    for (size_t i = 0; i < d->n; i++) {
        enum dns_mx_status st = d->mx[i].status;
        if (st == DNS_MX_TEMPERROR)
            n_temp++;
        else if (st != DNS_MX_OK && st != DNS_MX_IMPLICIT)
            n_bad++;
        per_provider[d->provider[i]]++;
    }
    /* The detail is built in a memory stream: it names up to PREFLIGHT_MX_NAMED domains. */
    char *detail = NULL;
    size_t dlen = 0;
    FILE *f = open_memstream(&detail, &dlen);
    if (!f) {
        free(per_provider);
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    fprintf(f, "%zu recipient domain%s", d->n, d->n == 1 ? "" : "s");
    if (n_bad + n_temp == 0)
        fputs(d->n == 1 ? ": it can receive mail" : ": every one can receive mail", f);
    const char *first_bad = NULL;
    for (int pass = 0; pass < 2; pass++) {
        size_t want = pass == 0 ? n_bad : n_temp, named = 0;
        if (want == 0)
            continue;
        fprintf(f, "; %zu %s: ", want,
                pass == 0 ? "cannot receive mail" : "could not be resolved now (temperror)");
        for (size_t i = 0; i < d->n && named < PREFLIGHT_MX_NAMED; i++) {
            enum dns_mx_status st = d->mx[i].status;
            bool temp = st == DNS_MX_TEMPERROR;
            if (st == DNS_MX_OK || st == DNS_MX_IMPLICIT || temp != (pass == 1))
                continue;
            if (!first_bad)
                first_bad = d->domains[i];
            fprintf(f, "%s%s (%s)", named ? ", " : "", d->domains[i],
                    temp ? dns_status_name(d->mx[i].cause) : dns_mx_status_name(st));
            named++;
        }
        if (want > named)
            fprintf(f, " and %zu more", want - named);
    }
    fputs("; providers: ", f);
    bool any = false;
    for (size_t i = 0; i < p->n_providers; i++) {
        if (!per_provider[i])
            continue;
        fprintf(f, "%s%s %zu", any ? ", " : "", p->providers[i].name, per_provider[i]);
        any = true;
    }
    if (d->bad_records)
        fprintf(f, "; %zu record%s of the list skipped (not addresses)", d->bad_records,
                d->bad_records == 1 ? "" : "s");
    free(per_provider);
    if (fclose(f) != 0 || !detail) {
        free(detail);
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    char lookup[300] = "";
    if (first_bad)
        snprintf(lookup, sizeof lookup, "dig +short MX %s", first_bad);
    ipw_status s;
    if (n_bad)
        s = preflight_add(r, p, "mx", PREFLIGHT_FAIL, NULL,
                          "remove the recipients of the domains that cannot receive mail from "
                          "the list (ipwarm mx DOMAIN shows why)",
                          lookup, "%s", detail);
    else if (n_temp)
        s = preflight_add(r, p, "mx", PREFLIGHT_WARN, NULL,
                          "run check again later: a DNS failure is never read as \"no MX\"", lookup,
                          "%s", detail);
    else
        s = preflight_add(r, p, "mx", PREFLIGHT_PASS, NULL, NULL, NULL, "%s", detail);
    free(detail);
    PREFLIGHT_TRY(s);
    return IPW_OK;
}
