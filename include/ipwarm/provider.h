/*
 * provider: which plan provider a recipient domain belongs to (the MX roll-up).
 *
 * Provider state (ramp, pauses, deferral counts) is keyed by the provider that runs the
 * receiving servers, not by the recipient domain: thousands of domains hosted by one provider
 * share its limits, and its MX host names tell it (RFC 5321 5.1: the MX hosts are where the
 * mail goes). The domain list of a provider covers what the MX cannot tell.
 */
#ifndef IPWARM_PROVIDER_H
#define IPWARM_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/dns.h"
#include "ipwarm/plan.h"

/*
 * True when host falls under the MX suffix: host ends with suffix (".google.com" matches
 * "aspmx.l.google.com"), or host is the suffix without its leading dot ("google.com").
 * A suffix written without the leading dot means the same. Case and a trailing dot on either
 * are ignored; a label is never matched in part ("evilgoogle.com" does not match).
 */
bool provider_mx_matches(const char *host, const char *suffix);

/*
 * The index in p->providers of the provider of mail to domain whose MX hosts, most preferred
 * first, are mx_hosts[0..n):
 *   1. the first host that any provider's MX suffix matches decides, and among the providers
 *      matching it the first in p->providers order wins;
 *   2. else the first provider listing domain (case and a trailing dot ignored);
 *   3. else p->default_provider.
 * n may be 0 (null MX, nxdomain, not resolved yet): then only the domain decides.
 */
size_t provider_for(const struct plan *p, const char *domain, const char *const *mx_hosts,
                    size_t n);

/* provider_for with the hosts of an MX result (none unless its status is ok or implicit-mx). */
size_t provider_for_mx(const struct plan *p, const struct dns_mx_result *mx);

#endif
