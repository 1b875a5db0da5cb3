/*
 * preflight_smtp: the SMTP reachability checks of the pre-flight (see preflight.h): connect,
 * greeting, EHLO, STARTTLS (RFC 3207), AUTH (RFC 4954) and SIZE (RFC 1870) of the relay, or of
 * a sample MX per provider in direct mode. Never MAIL: no mail is sent.
 */
#ifndef IPWARM_PREFLIGHT_SMTP_H
#define IPWARM_PREFLIGHT_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/dns.h"
#include "ipwarm/err.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/preflight_mx.h"
#include "ipwarm/preflight_report.h"

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

#endif
