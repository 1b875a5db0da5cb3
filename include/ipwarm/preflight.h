/*
 * preflight: the checks that a new sending IP and its sender are set up the way receivers
 * expect, before any mail is sent: SPF (RFC 7208), PTR with forward confirmation, the HELO
 * name, MX of the recipient domains (RFC 5321 5.1, RFC 7505), DNS block lists (RFC 5782), the
 * DKIM key in DNS (RFC 6376 3.6.1), DMARC (RFC 7489), and SMTP reachability, STARTTLS
 * (RFC 3207), AUTH (RFC 4954) and SIZE (RFC 1870) of the relay or of a sample MX per provider.
 *
 * A report is a list of checks, each pass / warn / fail / skip, with a detail sentence, and for
 * a problem the fix in one sentence and the shell look-up an operator would run to see it. A
 * check is required when its name is in the plan's preflight.require; the report is ok when no
 * required check failed (a warn, such as a DNS timeout or a block list that refused to answer,
 * does not fail it: it is shown, and `check` may be run again). Checks that run per source IP
 * or per provider appear once for each.
 *
 * Nothing here prints or exits; DNS goes through struct dns, so the unit tests run it against
 * the in-memory zone and the integration tests against dnsmasq.
 */
#ifndef IPWARM_PREFLIGHT_H
#define IPWARM_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/dns.h"
#include "ipwarm/err.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/preflight_mx.h"
#include "ipwarm/preflight_report.h"
#include "ipwarm/preflight_smtp.h"

/* ---- the checks; each appends one or more entries to r (the report: preflight_report.h;
 * mx: preflight_mx.h; smtp, tls, auth, size: preflight_smtp.h) ---- */

/* spf: spf_check() of each source IP for the return-path domain and (when it differs) the
 * From domain. pass; temperror: warn; anything else: fail. */
ipw_status preflight_spf(struct preflight_report *r, const struct plan *p, struct dns *dns,
                         struct err *e);
/* ptr: each source IP has a PTR whose name resolves back to the IP (FCrDNS). */
ipw_status preflight_ptr(struct preflight_report *r, const struct plan *p, struct dns *dns,
                         struct err *e);
/* helo: the HELO name resolves to each source IP; warn when the PTR names another name. */
ipw_status preflight_helo(struct preflight_report *r, const struct plan *p, struct dns *dns,
                          struct err *e);
/* dnsbl: each source IP in every zone of p->dnsbl_zones: listed: fail; a zone that could not
 * be checked: warn; else pass. */
ipw_status preflight_dnsbl(struct preflight_report *r, const struct plan *p, struct dns *dns,
                           struct err *e);
/* dkim: the p= of the TXT record at selector._domainkey.domain equals the public key of the
 * configured private key. Not configured: fail when required, else skip. */
ipw_status preflight_dkim(struct preflight_report *r, const struct plan *p, struct dns *dns,
                          struct err *e);
/* dmarc: a DMARC record for the From domain (or its organisational domain, approximated by
 * its last two labels) parses, and SPF (return-path domain) or DKIM (d= domain) aligns with
 * the From domain under its adkim/aspf modes. */
ipw_status preflight_dmarc(struct preflight_report *r, const struct plan *p, struct dns *dns,
                           struct err *e);

/* ---- everything ---- */

struct preflight_options {
    bool no_smtp; /* skip the SMTP probes (entries "skip") */
};

/* Runs every check into r (initialised by the caller) and finishes it. Returns IPW_OK whatever
 * the checks found (r->ok says); IPW_ENOMEM; IPW_EIO when the DNS loop fails; what reading the
 * recipient list returns. */
ipw_status preflight_run(const struct plan *p, struct dns *dns, const struct preflight_options *o,
                         struct preflight_report *r, struct err *e);

/* ---- helpers for the look-up commands ---- */

/* A resolver as cfg says (cli_dns_config). Returns NULL with e: IPW_EUSAGE for a bad server,
 * IPW_ETEMP when the resolver cannot start, IPW_ENOMEM. */
struct dns *preflight_dns_new(const struct dns_config *cfg, struct err *e);

/* A plan with only the shipped providers and the default block lists, for `mx` and `dnsbl`
 * run without a plan file. Returns IPW_OK or IPW_ENOMEM. */
ipw_status preflight_builtin_plan(struct plan **out, struct err *e);

#endif
