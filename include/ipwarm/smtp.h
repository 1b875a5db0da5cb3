/*
 * smtp: one-recipient SMTP transactions over libcurl's multi interface.
 *
 * Follows RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 1870 (SIZE) and
 * RFC 2034 (enhanced status codes). libcurl speaks the protocol; this module adds what a
 * warm-up needs on top: the phase each reply belongs to and the full text of every reply
 * (multi-line replies kept whole), captured from the debug callback because
 * CURLINFO_RESPONSE_CODE alone loses the text and the phase. Many transactions run at once
 * in one event loop, and libcurl reuses a connection for the next message to the same host.
 */
#ifndef IPWARM_SMTP_H
#define IPWARM_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/plan.h"

enum smtp_phase {
    SMTP_PHASE_CONNECT = 0, /* before or at the greeting */
    SMTP_PHASE_EHLO,
    SMTP_PHASE_STARTTLS,
    SMTP_PHASE_AUTH,
    SMTP_PHASE_MAIL,
    SMTP_PHASE_RCPT,
    SMTP_PHASE_DATA,
    SMTP_PHASE_QUIT,
};

/* "connect", "ehlo", ... as in the trace JSON of cli.md. */
const char *smtp_phase_name(enum smtp_phase p);

struct smtp_job {
    const char *host;       /* MX host name or relay host name (also the TLS SNI name) */
    int port;
    const char *connect_ip; /* connect to this address instead of resolving host, or NULL */
    bool implicit_tls;      /* smtps:// (port 465 style) instead of STARTTLS */
    const char *helo;       /* EHLO name */
    const char *source_ip;  /* bind the connection to this local address, or NULL */
    enum plan_tls tls;      /* opportunistic: STARTTLS when offered; required: or fail */
    enum plan_tls_version tls_min;
    bool verify_peer;       /* verify the server certificate and name (relay mode) */
    const char *ca_file;    /* trust this CA file, or NULL for the system store */
    const char *username;   /* AUTH, or NULL */
    const char *password;   /* never logged; kept only as long as the transfer */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms; /* the longest wait for one reply */
    const char *mail_from;  /* addr-spec, without brackets; "" for the null sender */
    const char *rcpt;       /* addr-spec of the one recipient */
    const char *data;       /* the message, CRLF lines; libcurl dot-stuffs it on the wire */
    size_t len;
    void *user;             /* handed back with the result */
};

struct smtp_result {
    void *user;
    enum smtp_phase phase; /* the phase of the decisive reply, or where the session failed */
    int code;              /* its reply code, 0 when there was no reply (refused, timeout) */
    char *reply;           /* its full text, lines joined with "\n"; NULL when none. Owned. */
    bool delivered;        /* the server accepted the message after DATA */
    bool tls;              /* the session was encrypted */
    char tls_version[16];  /* "TLSv1.3" etc. when known */
    int curl_code;         /* CURLcode of the transfer */
    char error[256];       /* libcurl's sentence when the transfer failed */
    int64_t started_ms, finished_ms; /* wall clock */
};

struct smtp;

/* A new transaction pool; at most max_connections open at once (0 = no limit). Returns NULL and
 * fills e on failure. */
struct smtp *smtp_new(int max_connections, struct err *e);
void smtp_free(struct smtp *s);

/* Starts one transaction. The job's strings are copied; the data buffer must stay valid until the
 * transaction's result is reported. Returns IPW_OK, IPW_ENOMEM or IPW_ESOFTWARE. */
ipw_status smtp_submit(struct smtp *s, const struct smtp_job *job, struct err *e);

/* Callback for a finished transaction; the result and its strings are valid during the call. */
typedef void (*smtp_done_fn)(const struct smtp_result *r, void *arg);

/* Drives the transfers for at most timeout_ms (waiting on their sockets), reporting finished
 * ones to done. Returns the number still running. */
int smtp_perform(struct smtp *s, int timeout_ms, smtp_done_fn done, void *arg);

/* Number of transactions submitted and not yet reported. */
int smtp_running(const struct smtp *s);

#endif
