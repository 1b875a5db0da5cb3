/*
 * spf: the Sender Policy Framework evaluator, RFC 7208 complete: check_host() with every
 * mechanism (all, include, a, mx, ptr, ip4, ip6, exists) and modifier (redirect, exp), macros
 * (section 7, including %{p}, %{h}, reversal and delimiters), the limits of section 4.6.4 (10
 * DNS-querying terms, 2 void lookups, 10 MX/PTR names) and the exact results of section 2.6.
 *
 * DNS goes through struct dns (dns.h), so the same code runs over c-ares against a real server
 * and over the in-memory zone in the RFC 7208 conformance suite.
 */
#ifndef IPWARM_SPF_H
#define IPWARM_SPF_H

#include <stddef.h>

#include "ipwarm/dns.h"
#include "ipwarm/err.h"

enum spf_outcome {
    SPF_NONE = 0,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR,
};

struct spf_result {
    enum spf_outcome result;
    char explanation[512]; /* fail: the exp= text (macro-expanded) or a default; else a
                              sentence saying why this result (which term matched, or what
                              went wrong) */
    char mechanism[256];   /* the term that decided, e.g. "ip4:192.0.2.0/24", or "" */
    char domain[256];      /* the domain whose record decided */
    int lookups;           /* DNS-querying terms counted against the limit of 10 */
    int void_lookups;      /* lookups that found nothing, against the limit of 2 */
};

/* "pass", "fail", ... as in the `spf --json` contract. */
const char *spf_result_name(enum spf_outcome r);

/*
 * check_host() for a client IP (v4 or v6 literal), the MAIL FROM sender ("" or NULL means the
 * null sender: postmaster@helo is checked, RFC 7208 section 2.4) and the HELO name. Fills *out
 * and returns IPW_OK whatever the SPF result (temperror and permerror are results, not errors);
 * IPW_EUSAGE when ip is not an IP address literal or sender/helo give no domain; IPW_ENOMEM.
 */
ipw_status spf_check(struct dns *dns, const char *ip, const char *sender, const char *helo,
                     struct spf_result *out, struct err *e);

/* The limits of RFC 7208 section 4.6.4, in one place. */
#define SPF_MAX_LOOKUPS 10 /* DNS-querying terms (include, a, mx, ptr, exists, redirect) */
#define SPF_MAX_VOID    2  /* of those, lookups answered NXDOMAIN or with no records */
#define SPF_MAX_NAMES   10 /* MX names per mx (more: permerror), PTR names per ptr (rest ignored) */

/* What a receiver may choose (RFC 7208 6.2, 7.3); a NULL field takes the default. */
struct spf_options {
    /* The explanation of a fail when the record has no exp= or it cannot be used; taken as
     * written (no macros). Default: "IP is not permitted by MECHANISM in DOMAIN". */
    const char *default_explanation;
    const char *receiver; /* %{r}, the checking host's name; default "unknown" */
};

/* spf_check with options (opt may be NULL); the same returns. */
ipw_status spf_check_opts(struct dns *dns, const char *ip, const char *sender, const char *helo,
                          const struct spf_options *opt, struct spf_result *out, struct err *e);

#endif
