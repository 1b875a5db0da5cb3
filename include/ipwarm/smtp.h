/*
 * smtp: one-recipient SMTP transactions over libcurl, many at once, none blocking another.
 *
 * Follows RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 1870 (SIZE) and
 * RFC 2034 (enhanced status codes). libcurl speaks the protocol; this module adds what a
 * warm-up needs on top: the phase each reply belongs to and the full text of every reply
 * (multi-line replies kept whole), captured from the debug callback because
 * CURLINFO_RESPONSE_CODE alone loses the text and the phase.
 *
 * Each connection has a worker thread of its own with one libcurl easy handle, which keeps the
 * connection open for the next message to the same destination. libcurl 7.88 waits for the
 * reply to the end of the message (and to QUIT) inside a blocking call even under its multi
 * interface, so a server that stalls there would otherwise stall every other transaction: here
 * it stalls only its own thread. The caller's thread submits jobs and collects results; it
 * also enforces every deadline by shutting the stalled connection's socket down, which ends
 * libcurl's wait at once.
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

/* "connect", "ehlo", ... as in the trace JSON of the command-line reference. */
const char *smtp_phase_name(enum smtp_phase p);

struct smtp_job {
    const char *host; /* MX host name or relay host name (also the TLS SNI name) */
    int port;
    const char *connect_ip; /* connect to this address instead of resolving host, or NULL */
    bool implicit_tls;      /* smtps:// (port 465 style) instead of STARTTLS */
    const char *helo;       /* EHLO name */
    const char *source_ip;  /* bind the connection to this local address, or NULL */
    enum plan_tls tls;      /* opportunistic: STARTTLS when offered; required: or fail.
                               With a username, TLS is always required: no password in clear. */
    enum plan_tls_version tls_min;
    bool verify_peer;     /* verify the server certificate and name (relay mode) */
    const char *ca_file;  /* trust this CA file, or NULL for the system store */
    const char *username; /* AUTH, or NULL */
    const char *password; /* never logged; kept only as long as the transfer */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms; /* the longest wait for the reply to one command, counted from
                                   when the command (or the last piece of the message) went
                                   out; lines that trickle in do not extend it */
    const char *mail_from;      /* addr-spec, without brackets; "" for the null sender */
    const char *rcpt;           /* addr-spec of the one recipient */
    const char *data;           /* the message, CRLF lines; libcurl dot-stuffs it on the wire */
    size_t len;
    void *user; /* handed back with the result */
};

struct smtp_result {
    void *user;
    enum smtp_phase phase; /* the phase of the decisive reply, or where the session failed */
    int code;              /* its reply code, 0 when there was no reply (refused, timeout) */
    char *reply;           /* its full text, lines joined with "\n"; NULL when none. Owned by
                              the module, valid during the callback. */
    bool delivered;        /* the server accepted the message after DATA */
    bool unknown;          /* the whole message and its final dot went out but no final reply
                              came (the connection broke or the reply timed out): the server
                              may have taken it, so it must not be sent again blindly */
    bool aborted;          /* ended by smtp_abort() before it finished */
    bool tls_unavailable;  /* TLS was required (or a login was to be sent) and the server
                              offers no STARTTLS */
    bool tls;              /* the session was encrypted */
    char tls_version[16];  /* "TLSv1.3" etc. when known */
    int curl_code;         /* CURLcode of the transfer */
    char error[256];       /* a sentence when the transfer failed without a reply */
    int64_t started_ms, finished_ms; /* wall clock */
};

struct smtp;

/* Masks secrets in a reply text in place (a server may echo what we sent after AUTH); set with
 * smtp_set_masker. NULL: replies at the AUTH phase are kept as they came. */
typedef void (*smtp_mask_fn)(char *text, const char *username, const char *password);

/* A new transaction pool; at most max_connections open at once (0 = no limit but the module's
 * own, SMTP_CONNECTIONS_MAX). Returns NULL and fills e on failure. */
struct smtp *smtp_new(int max_connections, struct err *e);
/* Ends every transaction (as smtp_abort), closes the connections (QUIT, bounded by a short
 * deadline) and frees the pool. Results not collected yet are dropped. */
void smtp_free(struct smtp *s);
void smtp_set_masker(struct smtp *s, smtp_mask_fn fn);

/* Starts one transaction. The job's strings are copied; the data buffer must stay valid until
 * the transaction's result is reported. Returns IPW_OK, IPW_ENOMEM or IPW_ESOFTWARE. */
ipw_status smtp_submit(struct smtp *s, const struct smtp_job *job, struct err *e);

/* Callback for a finished transaction; the result and its strings are valid during the call.
 * It runs on the caller's thread and may submit new transactions. */
typedef void (*smtp_done_fn)(const struct smtp_result *r, void *arg);

/* Waits at most timeout_ms for transactions to finish (less when one finishes), enforces the
 * deadlines, and reports finished ones to done. Returns the number still running. */
int smtp_perform(struct smtp *s, int timeout_ms, smtp_done_fn done, void *arg);

/* Ends every transaction in flight now: their sockets are shut down and each is reported by
 * the next smtp_perform() calls with aborted set (and unknown when its final dot had gone). */
void smtp_abort(struct smtp *s);

/* Number of transactions submitted and not yet reported. */
int smtp_running(const struct smtp *s);

#endif
