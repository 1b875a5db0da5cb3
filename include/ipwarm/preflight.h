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

enum preflight_status { PREFLIGHT_PASS = 0, PREFLIGHT_WARN, PREFLIGHT_FAIL, PREFLIGHT_SKIP };

/* "pass", "warn", "fail", "skip". */
const char *preflight_status_name(enum preflight_status s);

struct preflight_check {
    const char *name; /* "spf", "ptr", ... "size" (static) */
    enum preflight_status status;
    bool required;
    char *subject; /* what it is about: a source IP, a domain, a provider; or NULL */
    char *detail;  /* one sentence (several for mx: the domains that cannot receive) */
    char *fix;     /* warn/fail: what to do, one sentence; else NULL */
    char *lookup;  /* the shell command that shows the problem (dig +short TXT ...), or NULL */
};

struct preflight_report {
    struct preflight_check *checks;
    size_t n_checks, cap;
    bool ok;                  /* no required check failed (set by preflight_report_finish) */
    unsigned required_failed; /* how many */
};

void preflight_report_init(struct preflight_report *r);
void preflight_report_clear(struct preflight_report *r);

/*
 * Appends a check; required comes from p->preflight_require (p may be NULL: not required).
 * subject, fix and lookup may be NULL; detail is printf-style. Returns IPW_OK or IPW_ENOMEM.
 */
ipw_status preflight_add(struct preflight_report *r, const struct plan *p, const char *name,
                         enum preflight_status status, const char *subject, const char *fix,
                         const char *lookup, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Sets r->ok and r->required_failed from the checks. */
void preflight_report_finish(struct preflight_report *r);

/* Writes the `check --json` document: {"ok", "checks": [{"name", "status", "required",
 * "detail", "subject", "fix", "lookup"}]}. */
void preflight_report_json(const struct preflight_report *r, struct json *j);
/* The same document as a compact malloc'd string (for the store), or NULL on IPW_ENOMEM. */
char *preflight_report_json_string(const struct preflight_report *r);

/* ---- the checks; each appends one or more entries to r ---- */

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

/* ---- SMTP reachability (preflight_smtp.c) ---- */

/* One probe: connect (bound to source_ip when given), greeting, EHLO, STARTTLS, EHLO again,
 * AUTH, QUIT. Never MAIL: no mail is sent. */
struct preflight_smtp_target {
    const char *host;    /* a name or an address literal: the TLS name */
    const char *address; /* connect here when given (host already resolved), else resolve host */
    int port;
    bool implicit_tls;     /* smtps:// : TLS from the start */
    const char *source_ip; /* bind to it, or NULL */
    const char *helo;
    const char *username, *password; /* AUTH when both given */
    bool verify;                     /* verify the certificate chain and the host name (relay) */
    const char *ca_file;             /* trust this CA (else the system's) */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
};

struct preflight_smtp_probe {
    bool resolved;    /* host had an address */
    char address[64]; /* the address connected to (or tried) */
    bool bind_failed; /* source_ip could not be bound: not on this machine */
    bool connected;
    bool timed_out;    /* connect or a reply timed out */
    char error[256];   /* why the probe stopped, if it did */
    int greeting_code; /* 0: none */
    bool ehlo_ok;
    char ehlo_reply[512];
    bool starttls_offered;
    bool tls_ok;
    int tls_version; /* 10 * major.minor of the negotiated version: 12 = TLS 1.2; 0 none */
    char tls_version_name[16];
    char tls_error[256];
    bool cert_ok; /* verify: chain and name verified */
    bool auth_offered;
    int auth; /* -1 not tried, 0 refused, 1 accepted */
    char auth_reply[256];
    bool size_advertised;
    uint64_t size; /* SIZE value (0 with size_advertised: no fixed limit) */
};

/*
 * Runs one probe. Returns IPW_OK whatever the server did (out says how far it went);
 * IPW_ENOMEM; IPW_ESOFTWARE when OpenSSL cannot start.
 */
ipw_status preflight_smtp_probe(const struct preflight_smtp_target *t,
                                struct preflight_smtp_probe *out, struct err *e);

/* The size in bytes of the largest message the plan produces: text and HTML bodies, with
 * base64 growth (4/3) for a body that is not ASCII, and about 2 KB of headers. */
uint64_t preflight_message_size(const struct plan *p);

/*
 * smtp, tls, auth, size: relay mode: one probe of the relay; direct mode: one probe per
 * provider the recipient domains roll up to, at the first MX host of one of its domains, on
 * the plan's port, bound to the source IP. d may be NULL in relay mode. The relay's name is
 * resolved through dns, the resolver every other look-up uses (as the engine does).
 */
ipw_status preflight_smtp(struct preflight_report *r, const struct plan *p, struct dns *dns,
                          const struct preflight_domains *d, struct err *e);

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
