/*
 * transport: how the engine hands a message to the network, behind a small table of function
 * pointers, so that the loop that decides what to send does not know how it is sent.
 *
 * Three implementations:
 * - transport_curl: real SMTP through libcurl (smtp.c), one thread per connection;
 * - transport_dry: `run --dry-run`; accepts every message at once without connecting;
 * - transport_fake: for tests; a script decides each transaction's reply and how long it
 *   takes, on a manual clock (clock.h), so that days of warm-up replay in milliseconds.
 */
#ifndef IPWARM_TRANSPORT_H
#define IPWARM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/clock.h"
#include "ipwarm/err.h"
#include "ipwarm/smtp.h"

struct transport_ops {
    const char *name;
    /* Starts a transaction (see smtp_submit: the job's strings are copied, its data must live
     * until the result is reported). */
    ipw_status (*submit)(void *impl, const struct smtp_job *job, struct err *e);
    /* Waits at most timeout_ms for transactions to finish, reporting them to done; returns how
     * many are still running. */
    int (*perform)(void *impl, int timeout_ms, smtp_done_fn done, void *arg);
    /* Ends every transaction now; the next perform() calls report them, aborted. */
    void (*abort)(void *impl);
    void (*free)(void *impl);
};

struct transport {
    const struct transport_ops *ops;
    void *impl;
};

/* libcurl, at most max_connections open at once (0: smtp.c's limit); mask (may be NULL) masks
 * credentials a server echoes (smtp_set_masker). */
ipw_status transport_curl_new(int max_connections, smtp_mask_fn mask, struct transport *out,
                              struct err *e);
/* The dry run: every message is accepted at once with "250 2.0.0 dry run", nothing connects. */
ipw_status transport_dry_new(struct transport *out, struct err *e);
/* Frees t's implementation (t itself is the caller's); a zeroed transport is fine. */
void transport_free(struct transport *t);

/* ---- the scripted fake ---- */

/* What the script says a transaction does. */
struct transport_fake_reply {
    int64_t delay_ms; /* how long it takes, from submit to its decisive reply */
    enum smtp_phase phase;
    const char *reply; /* the decisive reply, "451 4.7.500 Server busy" (lines joined with
                          "\n"), or NULL for none (refused, reset): code 0 */
    bool delivered;    /* the server took the message (a 2xx after DATA) */
    bool dot_sent;     /* the final dot goes out before the end: no reply then means the
                          message's fate is unknown */
    const char *error; /* without a reply: why ("Connection refused") */
};

/* Decides job's transaction, submitted at now_ms (the manual clock). */
typedef void (*transport_fake_fn)(const struct smtp_job *job, int64_t now_ms,
                                  struct transport_fake_reply *out, void *ctx);

/* One transaction the fake saw, for a test's assertions. */
struct transport_fake_sent {
    char *rcpt;
    char *host;
    char *source_ip; /* NULL when not bound */
    char *data;      /* the message as handed over */
    int64_t submitted_ms, finished_ms;
    int code; /* of the reply it got, 0 for none */
    bool delivered, unknown, aborted;
};

/*
 * The fake runs on clock: perform() moves the clock on to the next transaction's end (or by the
 * timeout when none ends sooner). A transaction that takes longer than the job's command
 * timeout ends at the timeout without a reply, as the real transport does (unknown when its dot
 * had gone). script and ctx must outlive the transport.
 */
ipw_status transport_fake_new(struct clock_manual *clock, transport_fake_fn script, void *ctx,
                              struct transport *out, struct err *e);
/* The transactions seen so far by a fake transport, oldest first; NULL and 0 for another. */
const struct transport_fake_sent *transport_fake_log(const struct transport *t, size_t *n);

#endif
