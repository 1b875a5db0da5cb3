/*
 * engine: the warm-up loop behind `ipwarm run`.
 *
 * It turns a plan into paced SMTP deliveries: it queues recipients from the list (resolving
 * their MX and provider as it goes), asks the pure decision modules when each provider may
 * send next (ramp.c for the day's stage and cap, backoff.c for pauses, throttles and rule
 * actions, pace.c for even spacing and the schedule's windows), records every attempt in the
 * store before the transaction that could deliver it and its outcome after, and reacts to
 * every reply. All the state it needs between cron ticks lives in the store, so `run --once`
 * every minute continues one even sequence. The clock is clock_now_ms() (which honours --now).
 */
#ifndef IPWARM_ENGINE_H
#define IPWARM_ENGINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ipwarm/clock.h"
#include "ipwarm/dns.h"
#include "ipwarm/err.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"
#include "ipwarm/transport.h"

/* A `run --once` tick stops starting messages after this long, so that it ends within 60 s. */
#define ENGINE_TICK_SEND_MS 50000
/* ... and gives the messages in flight until this long to finish. */
#define ENGINE_TICK_MAX_MS 58000
/* A feedback poll inside a run (feedback.poll_every) ends within this long: sending waits. */
#define ENGINE_FEEDBACK_SESSION_MS 60000
/* After SIGTERM or SIGINT, the messages in flight get this long to finish before they are
 * ended (a message whose final dot went out is then held, never sent twice). */
#define ENGINE_STOP_GRACE_MS 1500
/* At the end of --for (or of a list), the messages in flight get this long. */
#define ENGINE_DRAIN_MS 30000
/* The rule name of the suspension recorded when a receiver refuses the sender. */
#define ENGINE_RULE_REFUSED "sender-refused"
/* The rule name of the suspension recorded when every IP of a pool was throttled alike. */
#define ENGINE_RULE_POOL "pool-throttled"
/* Ended transactions report back within this long (a safety net; see engine_run). */
#define ENGINE_ABORT_WAIT_MS 10000

struct engine_opts {
    bool once;                     /* one cron tick */
    int64_t for_ms;                /* run this long; 0 = until stopped (or a `once` list is done) */
    bool dry_run;                  /* decide and record, send nothing */
    volatile sig_atomic_t *stop;   /* set by a signal handler: finish what is in flight, return */
    FILE *progress;                /* a progress line is drawn here (a terminal), or NULL */
    FILE *log;                     /* one line per attempt (-v), or NULL */
    FILE *warn;                    /* warnings that do not stop the run (a feedback poll that
                                      failed), or NULL */
    const struct clock_src *clock; /* the run's clocks; NULL: the system's (honours --now) */
    struct transport *transport;   /* how messages go out; NULL: libcurl, or the dry run's
                                      stand-in with dry_run. A given one stays the caller's. */
};

struct engine_summary {
    int64_t attempts, delivered, deferred, bounced, failed, expired;
    int64_t unknown;           /* the message went out whole, no reply came: recipient held */
    int64_t blocked;           /* refused because of the sender: provider suspended, kept */
    int64_t queued;            /* recipients added to the queue */
    int64_t undeliverable;     /* of them, refused at once (null MX, no such domain) */
    int64_t recovered;         /* attempts a previous run left in flight, now marked unknown */
    int64_t feedback_polls;    /* polls of the feedback mailbox that read it */
    int64_t feedback_failures; /* polls that could not (a warning each; sending went on) */
    int64_t late_bounces;      /* read by those polls: delivered attempts turned bounced */
    int64_t complaints;        /* complaint reports matched to attempts */
    bool all_done;             /* mode once: every recipient is done and nothing is pending */
};

/*
 * Runs the warm-up of p with the state in st (whose run lock the caller holds) and the
 * resolver dns. Returns IPW_OK when the tick, the duration or the list ended, or a stop was
 * requested; IPW_ECONFIG for a relay password that cannot be read; IPW_EUNAVAIL when the relay
 * does not answer at start; IPW_EDATA/IPW_ENOINPUT for a bad message template or recipient
 * list; a store status when the state file fails (nothing is lost: every attempt is recorded
 * before it is sent).
 */
ipw_status engine_run(const struct plan *p, struct store *st, struct dns *dns,
                      const struct engine_opts *o, struct engine_summary *sum, struct err *e);

#endif
