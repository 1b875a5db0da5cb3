/*
 * dmarc: Domain-based Message Authentication, Reporting and Conformance (RFC 7489), the parts a
 * sender checks before it sends: the policy record published at _dmarc.<domain> (6.1, 6.6.3),
 * its syntax (6.3, 6.4: v=DMARC1 first, p= required, adkim/aspf r or s) and identifier
 * alignment (3.1), relaxed by the organisational domain (3.2), which we approximate by the last
 * two labels rather than the Public Suffix List.
 *
 * Parsing and alignment are pure; dmarc_lookup goes through struct dns, so the unit tests run it
 * against the in-memory zone. The pre-flight check that reports on it is preflight_dmarc.
 */
#ifndef IPWARM_DMARC_H
#define IPWARM_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/dns.h"
#include "ipwarm/err.h"

struct dmarc_record {
    char policy[16]; /* none, quarantine or reject, lower case */
    bool adkim_strict, aspf_strict;
};

/* Parses a DMARC record (RFC 7489 6.3): v=DMARC1 first, p= one of none/quarantine/reject,
 * adkim/aspf r or s. Returns true with the policy and strictness, or false with *why (why may
 * be NULL). */
bool dmarc_parse(const char *txt, struct dmarc_record *out, const char **why);

/* The organisational domain, approximated by the last two labels ("mail.example.com" ->
 * "example.com"); a name of two labels or fewer is its own. Points into name. */
const char *dmarc_org_domain(const char *name);

/* Identifier alignment (RFC 7489 3.1): id equals from when strict, has the same organisational
 * domain when relaxed. */
bool dmarc_aligned(const char *id, const char *from, bool strict);

/* The DMARC records (those starting "v=DMARC1", RFC 7489 6.6.3) of _dmarc.domain: *count of
 * them and *rec a copy of the first (NULL when none; the caller frees it). The look-up's status
 * goes to *st, DNS_NODATA when TXT records exist but none is DMARC's. Returns IPW_OK, or the
 * error of the look-up itself (out of memory). */
ipw_status dmarc_lookup(struct dns *dns, const char *domain, enum dns_status *st, size_t *count,
                        char **rec, struct err *e);

#endif
