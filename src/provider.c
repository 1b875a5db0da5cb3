/*
 * provider: the MX roll-up from recipient domain to plan provider (see provider.h).
 *
 * The MX hosts are the ones an MX lookup returned (RFC 5321 5.1), already in preference
 * order; names are compared without regard to case, as DNS does (RFC 4343), and without the
 * trailing dot of an absolute name. The decision is a pure function of the plan and the
 * names, so the engine can call it for every recipient and tests need no DNS.
 */
#include "ipwarm/provider.h"

#include <string.h>
#include <strings.h>

/* Length of s without one trailing dot. */
static size_t provider_name_len(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

bool provider_mx_matches(const char *host, const char *suffix)
{
    if (!host || !suffix)
        return false;
    if (suffix[0] == '.')
        suffix++;
    size_t hl = provider_name_len(host), sl = provider_name_len(suffix);
    if (sl == 0 || hl < sl)
        return false;
    if (strncasecmp(host + hl - sl, suffix, sl) != 0)
        return false;
    /* Whole labels only: what precedes the suffix must be a dot, or nothing. */
    return hl == sl || host[hl - sl - 1] == '.';
}

/* The first provider (in plan order) with an MX suffix matching host; false when none. */
static bool provider_by_host(const struct plan *p, const char *host, size_t *out)
{
    if (!host || !*host)
        return false;
    for (size_t i = 0; i < p->n_providers; i++)
        for (size_t k = 0; k < p->providers[i].n_mx; k++)
            if (provider_mx_matches(host, p->providers[i].mx[k])) {
                *out = i;
                return true;
            }
    return false;
}

static size_t provider_by_domain(const struct plan *p, const char *domain)
{
    if (domain) {
        size_t dl = provider_name_len(domain);
        for (size_t i = 0; i < p->n_providers; i++)
            for (size_t k = 0; k < p->providers[i].n_domains; k++) {
                const char *d = p->providers[i].domains[k];
                if (provider_name_len(d) == dl && strncasecmp(d, domain, dl) == 0)
                    return i;
            }
    }
    return p->default_provider;
}

size_t provider_for(const struct plan *p, const char *domain, const char *const *mx_hosts, size_t n)
{
    size_t i;
    for (size_t h = 0; h < n; h++)
        if (provider_by_host(p, mx_hosts[h], &i))
            return i;
    return provider_by_domain(p, domain);
}

size_t provider_for_mx(const struct plan *p, const struct dns_mx_result *mx)
{
    size_t i;
    if (mx->status == DNS_MX_OK || mx->status == DNS_MX_IMPLICIT)
        for (size_t h = 0; h < mx->n_hosts; h++)
            if (provider_by_host(p, mx->hosts[h].host, &i))
                return i;
    return provider_by_domain(p, mx->domain);
}
