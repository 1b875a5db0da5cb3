/*
 * engine_state: what the files of the run loop (engine.c, engine_lane.c, engine_polls.c,
 * engine_mx.c, engine_list.c, engine_attempt.c) share and no user of engine.h needs: the
 * run's state and the functions one file calls in another.
 */
#ifndef IPWARM_ENGINE_STATE_H
#define IPWARM_ENGINE_STATE_H

#include "ipwarm/backoff.h"
#include "ipwarm/dkim.h"
#include "ipwarm/engine.h"
#include "ipwarm/lane.h"
#include "ipwarm/message.h"
#include "ipwarm/pool.h"
#include "ipwarm/ramp.h"
#include "ipwarm/recipients.h"
#include "ipwarm/smtp.h"
#include "ipwarm/strmap.h"
#include "ipwarm/token.h"

/* Recipients read from the list per import step, and the queue depth that triggers one. */
#define ENGINE_IMPORT_CHUNK 2000
/* Due recipients fetched per provider at a time. */
#define ENGINE_QUEUE_BATCH 64
/* How long an MX answer is trusted at most, and how long a temporary failure is remembered. */
#define ENGINE_MX_TTL_MAX_MS (24 * 3600000LL)
#define ENGINE_MX_TTL_MIN_MS 60000
/* The loop looks at the store (manual holds, newly due retries) at least this often. */
#define ENGINE_REFRESH_MS 1000

/* ---- the run's state ---- */

/* A due recipient waiting in a provider's queue. */
struct engine_qrec {
    int64_t id; /* its row in the store */
    char *address;
    char *domain;
    int retries;
    int64_t first_attempt_ms;
    int64_t list_offset;
    long list_line;
    int cycle;
};

/* The recipients due at one provider: every lane (source IP) of the provider draws from it, so
 * a recipient goes to whichever of its provider's lanes is due first. */
struct engine_queue {
    struct engine_qrec *q; /* FIFO */
    size_t q_head, q_n, q_cap;
    int64_t refill_after_ms; /* the queue was found empty: look again then */
};

/* A lane: a provider, or with an IP pool one source IP at a provider, paced on its own. */
struct engine_lane {
    const struct plan_provider *pp;
    size_t index;      /* the provider's index in the plan */
    const char *ip;    /* the source IP it sends from */
    const char *key;   /* its key in the store (providers.ip, rule_actions.ip): "" for the only
                          lane of a provider (one source IP, or relay mode), else ip */
    const char *start; /* source.start's first date for ip, or NULL */
    struct engine_queue *qu;
    struct lane_state ls;
    int64_t paused_seen_ms; /* paused_until_ms as last read or written, to notice `pause` */
    int refusals; /* sender refusals in a row (recent suspensions): the next one is longer */
    struct backoff_rule_hits *hits; /* one per plan rule */
    struct lane_action *actions;    /* active ones, from the store and just fired */
    size_t n_actions;
    struct pool_hit recent[POOL_RECENT_MAX]; /* its recent throttling replies and rule hits */
    size_t n_recent;
    int inflight;
    bool dirty; /* state changed by a pick and not saved yet: goes with the attempt record */
};

/* A message in flight. */
struct engine_flight {
    struct engine *eng;
    int64_t attempt_id;
    size_t lane;
    struct engine_qrec rec;
    struct message msg;
    char *mx_hosts[16]; /* direct mode: the MX hosts still to try, best first */
    char *mx_addrs[16];
    size_t n_mx, mx_i;
    char source_ip[64];
    char message_id[256];
    char mail_from[320]; /* the envelope sender: the return path, or its VERP form */
    bool deferral_counted;
    int64_t picked_ms;                   /* when it was picked: its attempt's started_ms */
    struct engine_flight *lnext, *lprev; /* in engine.flights from its pick to its end */
    bool linked;
    struct engine_flight *rnext; /* in engine.ready until its group is committed */
};

struct engine {
    const struct plan *p;
    struct store *st;
    struct dns *dns;
    const struct engine_opts *o;
    struct engine_summary *sum;
    struct transport tr; /* the opts' transport, or one of ours (own_tr) */
    bool own_tr;
    const struct clock_src *clk;
    struct engine_lane *lanes; /* provider by provider, each one's IPs in the pool's order */
    size_t n_lanes;
    size_t n_ips;                /* lanes per provider */
    struct engine_queue *queues; /* one per provider */
    struct message_tmpl *tmpl;
    struct message_memo memo; /* the bodies encoded last (message_compose) */
    struct recipients *list;
    struct recipients *list_lookup; /* a second reader to fetch a recipient's columns */
    const char *const *columns;
    size_t n_columns;
    bool list_eof; /* the complete lines are read (engine_list_poll looks for changes) */
    int64_t list_offset;
    long list_line;
    /* the list's reading (see "importing the recipient list" in engine_list.c) */
    int64_t list_scan;                    /* the current scan's number */
    bool list_swept;                      /* it read the whole list (the rest is removed) */
    bool list_confirm;                    /* a new scan of a list read before: to its end first */
    bool list_tail;                       /* a last line waits for its line end */
    bool list_resync;                     /* a recipient's line was not where recorded */
    bool list_dirty;                      /* the place or file state changed since saved */
    bool list_read;                       /* it was read once in this run */
    char list_sha[RECIPIENTS_SHA256_HEX]; /* of the bytes parsed before list_offset */
    char list_stat[128];                  /* the file's state before they were read */
    /* The list's state last formatted for list_stat's comparison, and the Date header last
     * formatted: the same for every message until the file changes or the second turns. */
    struct recipients_file_state memo_fs;
    char memo_fs_text[128];
    int64_t memo_date_sec;
    int memo_date_off;
    char memo_date[MESSAGE_DATE_MAX];
    int64_t list_poll_real_ms;  /* engine_list_poll looks at the file then */
    int64_t list_until_real_ms; /* reading stops then (the run's end); 0 = never */
    struct strmap mx_index;     /* domain -> index in mx[] */
    struct dns_mx_result *mx;
    int64_t *mx_expires;
    size_t n_mx, cap_mx;
    struct strmap claimed; /* addresses in flight (and, in a dry run, done) */
    int64_t seq;
    char *relay_host;
    char *relay_ip; /* its address, resolved at start */
    int relay_port;
    bool relay_tls;
    char *relay_password;
    int inflight;
    int64_t hard_end_real_ms;      /* real time by which everything must be over; 0 = none */
    struct dkim_key *dkim;         /* sender.dkim's key, loaded once */
    struct token_secret token;     /* for {{token}} and List-Unsubscribe */
    struct engine_flight *flights; /* picked and not yet finished, freed at teardown */
    /* Group commit (engine_flush): the flights picked since the last flush, whose attempt
     * records go in one transaction before any of them starts, and whether the outcomes of
     * the completions being reported share one (engine_group_end ends it). */
    struct engine_flight *ready, **ready_tail;
    bool group;
    bool have_token;
    int64_t feedback_next_ms; /* the feedback mailbox is read then (scheduler time); 0 = never */
    int64_t report_seen_id;   /* the latest feedback report when the queues were last filled */
    ipw_status fatal;         /* a set-up failure stops the run once what is in flight is ended */
    char fatal_msg[1024];
};

/* The state of engine_done_cb(), one per batch of completions. */
struct engine_done_ctx {
    struct engine *g;
    ipw_status r;
    struct err *e;
};

/* The run's clocks (engine_opts.clock): the scheduler's time, and real time for deadlines. */
static inline int64_t engine_now(const struct engine *g)
{
    return g->clk->now_ms(g->clk->ctx);
}

static inline int64_t engine_real(const struct engine *g)
{
    return g->clk->real_ms(g->clk->ctx);
}

/* ---- lanes (engine_lane.c) ---- */

/* The stored row of lane v (IPW_ENOTFOUND: none), adopting a provider's row kept without an IP. */
ipw_status engine_lane_row(struct engine *g, const struct engine_lane *v,
                           struct store_provider *row, struct err *e);

/* Saves lane v's state row (not in a dry run). */
ipw_status engine_lane_save(struct engine *g, struct engine_lane *v, int64_t now, struct err *e);

/* Whether an action stored or fired with ip (NULL or "": the provider's) acts on v. */
bool engine_lane_concerned(const struct engine_lane *v, const char *ip);

/* Puts action b (manual: a hand's hold) in force on v at once. */
ipw_status engine_lane_push(struct engine_lane *v, const struct backoff_action *b, bool manual,
                            struct err *e);

/* Reloads the lane's active actions and notices holds set or lifted by `pause`/`resume`. */
ipw_status engine_lane_refresh(struct engine *g, struct engine_lane *v, int64_t now, struct err *e);

/* Records and puts in force the suspension of a lane whose receiver refuses the sender. */
ipw_status engine_suspend(struct engine *g, struct engine_lane *v, int64_t now, int64_t ms,
                          const char *reply, struct err *e);

/* Whether lane w of a pool takes part on the local date today. */
bool engine_lane_started(const struct engine_lane *w, const char *today);

/* Acts on the whole pool when every started IP of it got trouble key within the hour. */
ipw_status engine_pool_check(struct engine *g, struct engine_lane *v, const char *key,
                             const char *rule, const struct backoff_action *b, const char *reply,
                             int64_t now, struct err *e);

/* The lane's ramp state for today: its stored one, or the one its first send will begin. */
ipw_status engine_ramp_today(struct engine *g, struct engine_lane *v, const char *today,
                             struct ramp_state *out, enum ramp_change *why, struct err *e);

/* ---- feedback and seed polls (engine_polls.c) ---- */

/* Queues again each seed that got its copy on an earlier local date than today. */
ipw_status engine_seeds_requeue(struct engine *g, const char *today, int64_t now, struct err *e);

/* Reads the seed and feedback mailboxes; failures are warnings. */
void engine_feedback_poll(struct engine *g, int64_t now);

/* ---- MX answers (engine_mx.c) ---- */

/* The MX result for domain, resolved when unknown or stale; NULL on out of memory (e set). */
struct dns_mx_result *engine_mx(struct engine *g, const char *domain, int64_t now, struct err *e);

/* Resolves the domains of a batch in parallel, so that the first sends need not wait. */
ipw_status engine_mx_prefetch(struct engine *g, const char **domains, size_t n, int64_t now,
                              struct err *e);

/* Whether an MX status means the domain cannot receive mail. */
bool engine_mx_undeliverable(enum dns_mx_status s);

/* Why domain m cannot receive mail (or its lookup failed), in words. */
const char *engine_mx_why(const struct dns_mx_result *m);

/* ---- the recipient list and the queues (engine_list.c) ---- */

/* Opens the list and goes on where the runs before this one got to. */
ipw_status engine_list_open(struct engine *g, struct err *e);

/* Reads the next records of the list (up to max) into the queue. */
ipw_status engine_import(struct engine *g, size_t max, int64_t now, struct err *e);

/* At every refresh: reads the list again when the file changed. */
ipw_status engine_list_poll(struct engine *g, int64_t now, struct err *e);

/* Fills the queue of lane v's provider with due recipients when it is empty. */
ipw_status engine_fill(struct engine *g, struct engine_lane *v, int64_t now, struct err *e);

/* When a feedback report was recorded since the last look (by this run's poll or another
 * process's), forgets the queued recipients, so that the queues are filled again from the store
 * and a recipient suppressed meanwhile (a complaint, a late bounce) gets no copy from memory. */
ipw_status engine_queues_recheck(struct engine *g, struct err *e);

/* Frees a queued recipient's strings and clears it. */
void engine_qrec_free(struct engine_qrec *q);

/* The recipient's CSV columns, read from its line in the list. */
ipw_status engine_columns(struct engine *g, struct engine_qrec *q, const char *const **values,
                          size_t *n, struct err *e);

/* ---- attempts (engine_attempt.c) ---- */

/* Frees a message in flight, unlinking it from engine.flights. */
void engine_flight_free(struct engine_flight *f);

/* Takes the next recipient of lane pi and makes its message ready (engine_flush starts it). */
ipw_status engine_send(struct engine *g, size_t pi, int64_t now, struct err *e);

/* Records the attempts of every ready flight and the lanes' changed state in one commit, then
 * starts their transactions. A failure to record starts none of them. */
ipw_status engine_flush(struct engine *g, struct err *e);

/* Ends the transaction that the outcomes reported by one transport perform() share: commits
 * it when r is IPW_OK, else rolls it back. Returns the final status. */
ipw_status engine_group_end(struct engine *g, ipw_status r, struct err *e);

/* The transport's completion callback (arg: a struct engine_done_ctx). */
void engine_done_cb(const struct smtp_result *r, void *arg);

#endif
