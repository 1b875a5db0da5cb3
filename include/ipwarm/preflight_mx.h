/*
 * preflight_mx: the MX of the distinct domains of the plan's recipient list, resolved all at
 * once (dns_mx_resolve, RFC 5321 5.1, RFC 7505), and the mx check on them (see preflight.h).
 * The SMTP probes of direct mode pick their hosts from the same resolution.
 */
#ifndef IPWARM_PREFLIGHT_MX_H
#define IPWARM_PREFLIGHT_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/dns.h"
#include "ipwarm/err.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/preflight_report.h"

/* The MX of the distinct domains of a recipient list, resolved at once. */
struct preflight_domains {
    char **domains;
    struct dns_mx_result *mx; /* parallel to domains */
    size_t *provider;         /* parallel: index in p->providers */
    size_t n;
    size_t bad_records; /* records of the list that were not addresses (skipped) */
};
void preflight_domains_clear(struct preflight_domains *d);
/*
 * Reads the recipient list of p (streamed) and resolves the MX of its distinct domains.
 * Returns IPW_OK; what recipients_open returns (IPW_ENOINPUT, IPW_EDATA, IPW_EIO); IPW_ENOMEM;
 * IPW_EIO when the DNS loop fails.
 */
ipw_status preflight_domains_resolve(const struct plan *p, struct dns *dns,
                                     struct preflight_domains *out, struct err *e);
/* mx: one entry for all the domains: fail naming each that cannot receive (null-mx, nxdomain,
 * no-address), warn for temperror, with the providers the domains roll up to. */
ipw_status preflight_mx(struct preflight_report *r, const struct plan *p,
                        const struct preflight_domains *d, struct err *e);

#endif
