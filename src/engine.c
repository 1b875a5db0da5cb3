/*
 * engine: the warm-up loop behind `ipwarm run` (see engine.h).
 *
 * One event loop drives everything: libcurl's multi interface carries the SMTP transactions
 * (smtp.c), and between completions the loop asks sched_next() which lane (a provider, or
 * with an IP pool one source IP at a provider) is due next and when. Decisions are the pure
 * modules' (ramp, pace, backoff, reply, provider); this file only gathers their inputs from the
 * store, applies their answers and writes the results back.
 *
 * Records (plan.md "Records"): every attempt is inserted as in-flight before its transaction
 * starts and finished, together with its recipient's next step, in one transaction when the
 * reply arrives. A run that dies in between leaves the attempt in flight; the next run marks it
 * unknown and holds its recipient (store_attempts_recover), so nothing is sent twice blindly.
 *
 * With --dry-run the transport is a stand-in that accepts every message without connecting:
 * attempts are recorded with dry_run set (statistics leave them out), and neither the
 * recipients' queue nor the providers' ramp state is written, so a rehearsal costs nothing.
 */
#include "ipwarm/engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipwarm/backoff.h"
#include "ipwarm/clock.h"
#include "ipwarm/dkim.h"
#include "ipwarm/json.h"
#include "ipwarm/lane_store.h"
#include "ipwarm/message.h"
#include "ipwarm/pace.h"
#include "ipwarm/placement.h"
#include "ipwarm/pool.h"
#include "ipwarm/sched.h"
#include "ipwarm/provider.h"
#include "ipwarm/ramp.h"
#include "ipwarm/recipients.h"
#include "ipwarm/reply.h"
#include "ipwarm/returns.h"
#include "ipwarm/secret.h"
#include "ipwarm/verp.h"
#include "ipwarm/feedback.h"
#include "ipwarm/smtp.h"
#include "ipwarm/strmap.h"
#include "ipwarm/template.h"
#include "ipwarm/token.h"
#include "ipwarm/transport.h"
#include "ipwarm/tz.h"
#include "ipwarm/units.h"
#include "ipwarm/verdict.h"

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
    struct engine_flight *lnext, *lprev; /* in engine.flights while submitted */
    bool linked;
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
    struct recipients *list;
    struct recipients *list_lookup; /* a second reader to fetch a recipient's columns */
    const char *const *columns;
    size_t n_columns;
    bool list_eof; /* the complete lines are read (engine_list_poll looks for changes) */
    int64_t list_offset;
    long list_line;
    /* the list's reading (see "importing the recipient list" below) */
    int64_t list_scan;                    /* the current scan's number */
    bool list_swept;                      /* it read the whole list (the rest is removed) */
    bool list_confirm;                    /* a new scan of a list read before: to its end first */
    bool list_tail;                       /* a last line waits for its line end */
    bool list_resync;                     /* a recipient's line was not where recorded */
    bool list_dirty;                      /* the place or file state changed since saved */
    bool list_read;                       /* it was read once in this run */
    char list_sha[RECIPIENTS_SHA256_HEX]; /* of the bytes parsed before list_offset */
    char list_stat[128];                  /* the file's state before they were read */
    int64_t list_poll_real_ms;            /* engine_list_poll looks at the file then */
    int64_t list_until_real_ms;           /* reading stops then (the run's end); 0 = never */
    struct strmap mx_index;               /* domain -> index in mx[] */
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
    struct engine_flight *flights; /* submitted and not yet finished, freed at teardown */
    bool have_token;
    int64_t feedback_next_ms; /* the feedback mailbox is read then (scheduler time); 0 = never */
    ipw_status fatal;         /* a set-up failure stops the run once what is in flight is ended */
    char fatal_msg[1024];
};

/* The run's clocks (engine_opts.clock): the scheduler's time, and real time for deadlines. */
static int64_t engine_now(const struct engine *g)
{
    return g->clk->now_ms(g->clk->ctx);
}

static int64_t engine_real(const struct engine *g)
{
    return g->clk->real_ms(g->clk->ctx);
}

/* ---- providers: loading and saving their state ---- */

/* The stored row of lane v (IPW_ENOTFOUND: none). A pool's first IP adopts the provider's row
 * kept without an IP (a campaign that had one source IP before its pool, or a state file of
 * schema version 4), and a campaign back to one IP the row of its first IP, so that a warm-up
 * goes on where it was. */
static ipw_status engine_lane_row(struct engine *g, const struct engine_lane *v,
                                  struct store_provider *row, struct err *e)
{
    ipw_status r = store_lane_load(g->st, v->pp->name, v->key, row, e);
    if (r != IPW_ENOTFOUND || strcmp(v->ip, g->p->source_ips[0]) != 0)
        return r;
    return store_lane_load(g->st, v->pp->name, v->key[0] ? "" : v->ip, row, e);
}

static ipw_status engine_lane_save(struct engine *g, struct engine_lane *v, int64_t now,
                                   struct err *e)
{
    if (g->o->dry_run)
        return IPW_OK;
    struct store_provider row;
    lane_state_to_row(&v->ls, v->pp->name, now, &row);
    row.ip = v->key;
    ipw_status r = store_provider_save(g->st, &row, e);
    if (r == IPW_OK) {
        v->ls.stored = true;
        v->dirty = false;
        v->paused_seen_ms = v->ls.bo.paused_until_ms;
    }
    return r;
}

/* Records the attempt a before it starts, and with it, in the same transaction, the state the
 * pick changed (pace step, count of the day) when it is not saved yet. One commit per message
 * instead of two: bench/ showed the commits, not the SMTP dialogue, bounding the send rate. */
static ipw_status engine_attempt_begin(struct engine *g, struct engine_lane *v, int64_t now,
                                       struct store_attempt *a, int64_t *id, char *mail_from,
                                       size_t mail_from_size, struct err *e)
{
    const struct plan *p = g->p;
    bool verp = p->feedback.enabled && p->feedback.verp;
    snprintf(mail_from, mail_from_size, "%s", p->return_path);
    a->mail_from = mail_from;
    if (!verp && (!v->dirty || g->o->dry_run))
        return store_attempt_begin(g->st, a, id, e);
    ipw_status r = store_batch_begin(g->st, e);
    if (r == IPW_OK && v->dirty && !g->o->dry_run)
        r = engine_lane_save(g, v, now, e);
    if (r == IPW_OK)
        r = store_attempt_begin(g->st, a, id, e);
    if (r == IPW_OK && verp) {
        /* The token carries the attempt's id, so a bounce names the attempt whatever it says
         * inside; the row records the address used, in the same commit. */
        r = verp_make(&g->token, p->return_path, *id, mail_from, mail_from_size, e);
        if (r == IPW_OK)
            r = store_attempt_set_mail_from(g->st, *id, mail_from, e);
    }
    return store_batch_end(g->st, r, e);
}

/* Whether an action stored or fired with ip (NULL or "": the provider's, every IP) acts on v. */
static bool engine_lane_concerned(const struct engine_lane *v, const char *ip)
{
    return !ip || !ip[0] || strcmp(ip, v->ip) == 0;
}

/* Puts action b (manual: a hand's hold) in force on v at once. */
static ipw_status engine_lane_push(struct engine_lane *v, const struct backoff_action *b,
                                   bool manual, struct err *e)
{
    struct lane_action *n = realloc(v->actions, (v->n_actions + 1) * sizeof *n);
    if (!n)
        return err_set(e, IPW_ENOMEM, "out of memory");
    v->actions = n;
    struct lane_action *a = &v->actions[v->n_actions++];
    memset(a, 0, sizeof *a);
    a->b = *b;
    a->manual = manual;
    return IPW_OK;
}

/* Puts b in force on every lane it concerns: lane v's, or with ip "" all its provider's. */
static ipw_status engine_push(struct engine *g, const struct engine_lane *v, const char *ip,
                              const struct backoff_action *b, struct err *e)
{
    for (size_t i = 0; i < g->n_lanes; i++) {
        struct engine_lane *w = &g->lanes[i];
        if (w->index != v->index || !(w == v || !ip || !ip[0]))
            continue;
        ipw_status r = engine_lane_push(w, b, false, e);
        if (r != IPW_OK)
            return r;
    }
    return IPW_OK;
}

struct engine_rule_ctx {
    struct engine_lane *v;
    ipw_status r;
    struct err *e;
};

static int engine_rule_cb(const struct store_rule_action *a, void *arg)
{
    struct engine_rule_ctx *c = arg;
    if (!engine_lane_concerned(c->v, a->ip))
        return 0;
    struct lane_action la;
    lane_action_from_store(a, &la);
    la.b.name = "stored"; /* the store's strings die on return */
    c->r = engine_lane_push(c->v, &la.b, la.manual, c->e);
    return c->r != IPW_OK;
}

/* Reloads the lane's active actions and notices holds set or lifted by `pause`/`resume`. */
static ipw_status engine_lane_refresh(struct engine *g, struct engine_lane *v, int64_t now,
                                      struct err *e)
{
    v->n_actions = 0;
    struct engine_rule_ctx c = {.v = v, .r = IPW_OK, .e = e};
    ipw_status r = store_rules_active(g->st, now, v->pp->name, engine_rule_cb, &c, e);
    if (r != IPW_OK)
        return r;
    if (c.r != IPW_OK)
        return c.r;
    struct store_provider row;
    r = store_lane_load(g->st, v->pp->name, v->key, &row, e);
    if (r == IPW_ENOTFOUND)
        return IPW_OK;
    if (r != IPW_OK)
        return r;
    if (row.paused_until_ms != v->paused_seen_ms || (row.pause_manual != 0) != v->ls.manual) {
        /* Another process (pause, resume) changed the hold: its word wins. */
        v->ls.bo.paused_until_ms = row.paused_until_ms;
        v->paused_seen_ms = row.paused_until_ms;
        v->ls.manual = row.pause_manual != 0;
        snprintf(v->ls.bo.pause_reason, sizeof v->ls.bo.pause_reason, "%s",
                 row.pause_reason ? row.pause_reason : "");
    }
    store_provider_clear(&row);
    return IPW_OK;
}

/* ---- what comes back after the 250 ---- */

/* Looks the seed copies up (placement.h), with the feedback poll. A seed that cannot be read is
 * a warning; what was found reaches the ramp through the store, at the next sending day. */
static void engine_seeds_poll(struct engine *g, int64_t now, int64_t session)
{
    const struct plan *p = g->p;
    struct placement_seed_result *res = calloc(p->n_seeds, sizeof *res);
    if (!res)
        return;
    struct err pe;
    err_clear(&pe);
    ipw_status r = placement_poll(p, g->st, now, session, res, &pe);
    if (r != IPW_OK && g->o->warn)
        fprintf(g->o->warn, "ipwarm: warning: seed placement poll: %s\n", pe.msg);
    int64_t inbox = 0, junk = 0, missing = 0;
    for (size_t i = 0; i < p->n_seeds; i++) {
        inbox += res[i].inbox;
        junk += res[i].junk;
        missing += res[i].missing;
    }
    if (g->o->log && inbox + junk + missing > 0)
        fprintf(g->o->log, "ipwarm: placement: %lld inbox, %lld junk, %lld missing\n",
                (long long)inbox, (long long)junk, (long long)missing);
    free(res);
    /* A sharp fall throttles the provider through a rule action, as the next refresh reads. */
    char fell[512] = "";
    err_clear(&pe);
    r = placement_fall_act(p, g->st, now, fell, sizeof fell, &pe);
    if (r != IPW_OK && g->o->warn)
        fprintf(g->o->warn, "ipwarm: warning: seed placement: %s\n", pe.msg);
    if (fell[0] && g->o->warn)
        fprintf(g->o->warn,
                "ipwarm: warning: inbox rate under half of advance_if.inbox_rate_above: %s "
                "throttled (see `ipwarm status`)\n",
                fell);
}

/* Each seed in the queue that got its copy on an earlier local date is due again today: a
 * seed is sent at least one message every sending day (placement.h). Paced, capped and
 * recorded like any other recipient; a suppressed seed (it bounced) stays suppressed. */
static ipw_status engine_seeds_requeue(struct engine *g, const char *today, int64_t now,
                                       struct err *e)
{
    int64_t midnight;
    ipw_status r = tz_local_midnight_utc(g->p->timezone, today, &midnight, e);
    for (size_t i = 0; r == IPW_OK && i < g->p->n_seeds; i++)
        r = store_recipient_requeue(g->st, g->p->seeds[i].address, midnight, now, NULL, e);
    return r;
}

/* Reads the feedback mailbox (returns.h) every feedback.poll_every. Its outcome never stops the
 * run or touches the pacing directly: a failure is a warning, and what a poll records (late
 * bounces, complaints, a complaint-rate suspension) reaches the providers through the store,
 * as the next refresh and the next sending day read it. The session is bounded, since sending
 * waits while it lasts. */
static void engine_feedback_poll(struct engine *g, int64_t now)
{
    const struct plan *p = g->p;
    g->feedback_next_ms = now + p->feedback.poll_every_ms;
    int64_t session = ENGINE_FEEDBACK_SESSION_MS;
    if (g->hard_end_real_ms) {
        int64_t left = g->hard_end_real_ms - engine_real(g) - 2000;
        if (left < 5000)
            return; /* the next tick reads it */
        if (session > left)
            session = left;
    }
    if (p->n_seeds > 0)
        engine_seeds_poll(g, now, session);
    if (!p->feedback.enabled)
        return;
    struct returns_mailbox mb;
    struct returns_opts ro = {.now_ms = now, .session_timeout_ms = session};
    struct err pe;
    err_clear(&pe);
    ipw_status r = returns_poll(p, g->st, &ro, &mb, &pe);
    g->sum->late_bounces += mb.late_bounces;
    g->sum->complaints += mb.complaints;
    if (r != IPW_OK) {
        g->sum->feedback_failures++;
        if (g->o->warn)
            fprintf(g->o->warn, "ipwarm: warning: feedback poll failed, sending goes on: %s\n",
                    pe.msg);
        return;
    }
    g->sum->feedback_polls++;
    if (g->o->log && mb.new_ > 0)
        fprintf(g->o->log,
                "ipwarm: feedback: %lld new: %lld bounces (%lld late), %lld delays, %lld "
                "complaints, %lld unmatched, %lld other\n",
                (long long)mb.new_, (long long)mb.bounces, (long long)mb.late_bounces,
                (long long)mb.delays, (long long)mb.complaints, (long long)mb.unmatched,
                (long long)mb.other);
    if (g->o->warn && mb.acted[0])
        fprintf(g->o->warn,
                "ipwarm: warning: complaint rate over feedback.complaints.rate_above: %s acted on "
                "(see `ipwarm status`)\n",
                mb.acted);
}

/* ---- the previous sending day's counts, for earned growth ---- */

/* Counted as status, report and metrics count them (lane_store.h). */
static ipw_status engine_day_counts(struct engine *g, struct engine_lane *v, const char *date,
                                    struct ramp_day_counts *out, struct err *e)
{
    ipw_status r =
        lane_store_ip_day_counts(g->st, g->p->timezone, v->pp->name, v->key, date, out, e);
    if (r == IPW_OK)
        r = placement_day_counts(g->p, g->st, v->pp->name, date, out, e);
    return r;
}

/* ---- rule trigger counts, rebuilt from recent replies ---- */

struct engine_hits_ctx {
    struct engine *g;
    struct engine_lane *v;
};

static int engine_hits_cb(const struct store_attempt *a, void *arg)
{
    struct engine_hits_ctx *c = arg;
    /* A pool's lane counts the replies its own IP received. */
    if (c->v->key[0] && (!a->source_ip || strcmp(a->source_ip, c->v->ip) != 0))
        return 0;
    char reply[REPLY_TEXT_MAX + 16];
    snprintf(reply, sizeof reply, "%d %s", a->code, a->text ? a->text : "");
    struct backoff_action *out = calloc(c->g->p->n_rules ? c->g->p->n_rules : 1, sizeof *out);
    if (!out)
        return 1;
    /* Replaying the matches refills the rings; the actions they fired are in the store. */
    backoff_rules_match(c->g->p->rules, c->g->p->n_rules, c->v->pp->name, reply, a->started_ms,
                        c->v->hits, out);
    free(out);
    return 0;
}

/* ---- MX ---- */

/* Records an MX answer in the store's cache (what `mx --json` would show), so that operators
 * and the report see where each domain's mail went and until when the answer holds. The run
 * itself keeps its answers in memory; a new run asks DNS again, which is cheap. */
static void engine_mx_record(struct engine *g, const struct dns_mx_result *m, int64_t now,
                             int64_t ttl_ms)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    struct json j;
    json_init(&j, f, false);
    json_array_begin(&j);
    for (size_t h = 0; h < m->n_hosts; h++) {
        json_object_begin(&j);
        json_kv_int(&j, "preference", m->hosts[h].preference);
        json_kv_string(&j, "host", m->hosts[h].host);
        json_key(&j, "addresses");
        json_array_begin(&j);
        for (size_t a = 0; a < m->hosts[h].n_addresses; a++)
            json_string(&j, m->hosts[h].addresses[a]);
        json_array_end(&j);
        json_object_end(&j);
    }
    json_array_end(&j);
    struct err je;
    json_finish(&j, &je);
    fclose(f);
    /* The writer ends a document with a line break; a column holds just the array. */
    if (buf && len > 0 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';
    size_t pi = provider_for_mx(g->p, m);
    struct store_mx row = {
        .domain = m->domain,
        .status = dns_mx_status_name(m->status),
        .provider = g->p->providers[pi].name,
        .hosts_json = buf ? buf : "[]",
        .fetched_ms = now,
        .expires_ms = now + ttl_ms,
    };
    /* A cache: failing to write it costs nothing but the display. */
    store_mx_put(g->st, &row, NULL);
    free(buf);
}

/* The MX result for domain, resolving it when unknown or stale. Returns NULL on out of memory
 * (e set). */
static struct dns_mx_result *engine_mx(struct engine *g, const char *domain, int64_t now,
                                       struct err *e)
{
    intptr_t *idx = strmap_find(&g->mx_index, domain);
    if (idx && g->mx_expires[*idx] > now)
        return &g->mx[*idx];
    struct dns_mx_result res;
    const char *doms[1] = {domain};
    ipw_status r = dns_mx_resolve(g->dns, doms, 1, &res, e);
    if (r != IPW_OK)
        return NULL;
    int64_t ttl = (int64_t)res.ttl * 1000;
    if (res.status == DNS_MX_TEMPERROR || ttl < ENGINE_MX_TTL_MIN_MS)
        ttl = ENGINE_MX_TTL_MIN_MS;
    if (ttl > ENGINE_MX_TTL_MAX_MS)
        ttl = ENGINE_MX_TTL_MAX_MS;
    engine_mx_record(g, &res, now, ttl);
    if (idx) {
        dns_mx_result_clear(&g->mx[*idx]);
        g->mx[*idx] = res;
        g->mx_expires[*idx] = now + ttl;
        return &g->mx[*idx];
    }
    if (g->n_mx == g->cap_mx) {
        size_t ncap = g->cap_mx ? g->cap_mx * 2 : 64;
        struct dns_mx_result *nm = realloc(g->mx, ncap * sizeof *nm);
        if (!nm) {
            dns_mx_result_clear(&res);
            err_set(e, IPW_ENOMEM, "out of memory");
            return NULL;
        }
        g->mx = nm;
        int64_t *ne = realloc(g->mx_expires, ncap * sizeof *ne);
        if (!ne) {
            dns_mx_result_clear(&res);
            err_set(e, IPW_ENOMEM, "out of memory");
            return NULL;
        }
        g->mx_expires = ne;
        g->cap_mx = ncap;
    }
    g->mx[g->n_mx] = res;
    g->mx_expires[g->n_mx] = now + ttl;
    if (strmap_put(&g->mx_index, domain, (intptr_t)g->n_mx) != 0) {
        dns_mx_result_clear(&g->mx[g->n_mx]);
        err_set(e, IPW_ENOMEM, "out of memory");
        return NULL;
    }
    return &g->mx[g->n_mx++];
}

/* Resolves the domains of a batch in parallel, so that the first sends need not wait. */
static ipw_status engine_mx_prefetch(struct engine *g, const char **domains, size_t n, int64_t now,
                                     struct err *e)
{
    const char **todo = calloc(n ? n : 1, sizeof *todo);
    if (!todo)
        return err_set(e, IPW_ENOMEM, "out of memory");
    size_t k = 0;
    struct strmap seen = {0};
    for (size_t i = 0; i < n; i++) {
        intptr_t *idx = strmap_find(&g->mx_index, domains[i]);
        if ((idx && g->mx_expires[*idx] > now) || strmap_find(&seen, domains[i]))
            continue;
        strmap_put(&seen, domains[i], 1);
        todo[k++] = domains[i];
    }
    strmap_free(&seen);
    ipw_status r = IPW_OK;
    if (k > 0) {
        struct dns_mx_result *res = calloc(k, sizeof *res);
        if (!res) {
            free(todo);
            return err_set(e, IPW_ENOMEM, "out of memory");
        }
        r = dns_mx_resolve(g->dns, todo, k, res, e);
        /* The cache rows of the answers, in one short transaction after the lookups. */
        bool tx = r == IPW_OK && store_batch_begin(g->st, NULL) == IPW_OK;
        for (size_t i = 0; i < k; i++) {
            if (r == IPW_OK) {
                /* Park each result where engine_mx() finds it. */
                intptr_t *idx = strmap_find(&g->mx_index, todo[i]);
                int64_t ttl = (int64_t)res[i].ttl * 1000;
                if (res[i].status == DNS_MX_TEMPERROR || ttl < ENGINE_MX_TTL_MIN_MS)
                    ttl = ENGINE_MX_TTL_MIN_MS;
                if (ttl > ENGINE_MX_TTL_MAX_MS)
                    ttl = ENGINE_MX_TTL_MAX_MS;
                engine_mx_record(g, &res[i], now, ttl);
                if (idx) {
                    dns_mx_result_clear(&g->mx[*idx]);
                    g->mx[*idx] = res[i];
                    g->mx_expires[*idx] = now + ttl;
                    continue;
                }
                if (g->n_mx == g->cap_mx) {
                    size_t ncap = g->cap_mx ? g->cap_mx * 2 : 64;
                    while (ncap < g->n_mx + 1)
                        ncap *= 2;
                    struct dns_mx_result *nm = realloc(g->mx, ncap * sizeof *nm);
                    int64_t *ne = nm ? realloc(g->mx_expires, ncap * sizeof *ne) : NULL;
                    if (nm)
                        g->mx = nm;
                    if (!nm || !ne) {
                        r = err_set(e, IPW_ENOMEM, "out of memory");
                        dns_mx_result_clear(&res[i]);
                        continue;
                    }
                    g->mx_expires = ne;
                    g->cap_mx = ncap;
                }
                g->mx[g->n_mx] = res[i];
                g->mx_expires[g->n_mx] = now + ttl;
                if (strmap_put(&g->mx_index, todo[i], (intptr_t)g->n_mx) != 0) {
                    dns_mx_result_clear(&g->mx[g->n_mx]);
                    r = err_set(e, IPW_ENOMEM, "out of memory");
                    continue;
                }
                g->n_mx++;
            } else {
                dns_mx_result_clear(&res[i]);
            }
        }
        if (tx)
            store_batch_end(g->st, IPW_OK, NULL);
        free(res);
    }
    free(todo);
    return r;
}

static bool engine_mx_undeliverable(enum dns_mx_status s)
{
    return s == DNS_MX_NULL || s == DNS_MX_NXDOMAIN || s == DNS_MX_NO_ADDRESS;
}

static const char *engine_mx_why(const struct dns_mx_result *m)
{
    switch (m->status) {
    case DNS_MX_NULL:
        return "it publishes a null MX (RFC 7505): it accepts no mail";
    case DNS_MX_NXDOMAIN:
        return "the domain does not exist";
    case DNS_MX_NO_ADDRESS:
        return "none of its MX hosts has an address";
    default:
        return m->detail;
    }
}

/* ---- importing the recipient list into the queue ---- */

/*
 * The list is the operator's file, and it changes while a warm-up goes on: addresses added
 * anywhere, unsubscribed ones taken out, the file replaced, a line appended while a run reads.
 * What the runs have read is kept in meta:
 *   list.path           the list read
 *   list.scan           the number of the current scan (one reading of the list from its start)
 *   list.offset, .line  how far it has read (a record boundary)
 *   list.sha256         the SHA-256 of the bytes it parsed before list.offset
 *   list.stat           the file's size, times and inode before it read them
 *   list.swept          the last scan that read the whole list
 * A run goes on where the last one stopped when the file is as it was (same state) or only
 * grew (same SHA-256 of the part read: lines were appended). Otherwise it starts a new scan
 * from the start: every recipient found gets its place refreshed (template columns are read
 * from its line at send time), addresses not queued yet are added wherever they are, and at
 * the end the pending and held recipients the scan did not find are removed (not sent; they
 * come back if they reappear). While a new scan of a list read before goes on, nothing more is
 * sent: a recipient taken out of the list could otherwise go out before the scan reached the
 * end. Only complete lines are read; a last line without its line end waits until it gets one
 * or the file has not changed for RECIPIENTS_SETTLE_MS.
 */

/* The import's reads stop when the run is asked to stop or its sending time is over. */
static bool engine_list_interrupt(void *arg)
{
    struct engine *g = arg;
    if (g->o->stop && *g->o->stop)
        return true;
    return g->list_until_real_ms && clock_real_ms() >= g->list_until_real_ms;
}

/* Opens (again) the list's two readers: one that reads on, one for a recipient's columns. */
static ipw_status engine_list_readers(struct engine *g, struct err *e)
{
    if (g->list)
        recipients_close(g->list);
    if (g->list_lookup)
        recipients_close(g->list_lookup);
    g->list = g->list_lookup = NULL;
    g->columns = NULL;
    g->n_columns = 0;
    ipw_status r = recipients_open(g->p->recipients_file, g->p->recipients_column, &g->list, e);
    if (r == IPW_OK)
        r = recipients_open(g->p->recipients_file, g->p->recipients_column, &g->list_lookup, e);
    if (r != IPW_OK)
        return r;
    recipients_wait_for_line_end(g->list, true);
    recipients_set_interrupt(g->list, engine_list_interrupt, g);
    g->columns = recipients_columns(g->list, &g->n_columns);
    return IPW_OK;
}

static ipw_status engine_list_seek(struct engine *g, struct err *e)
{
    int64_t data = recipients_data_offset(g->list);
    if (g->list_offset < data) {
        g->list_offset = data;
        g->list_line = recipients_data_line(g->list);
    }
    return recipients_seek(g->list, g->list_offset, g->list_line, e);
}

/*
 * Decides where reading goes on: at the stored place when the file is unchanged or only grew,
 * else from the start in a new scan (readers opened again: the header may have changed).
 */
static ipw_status engine_list_sync(struct engine *g, struct err *e)
{
    const char *path = g->p->recipients_file;
    struct recipients_file_state now_fs, open_fs;
    ipw_status r = recipients_stat(path, &now_fs, e);
    if (r == IPW_OK)
        r = recipients_fstat(g->list, &open_fs, e);
    if (r != IPW_OK)
        return r;
    char cur[sizeof g->list_stat];
    recipients_file_state_format(&now_fs, cur, sizeof cur);
    bool same_file = now_fs.dev == open_fs.dev && now_fs.ino == open_fs.ino;
    if (g->list_scan > 0 && same_file && strcmp(cur, g->list_stat) == 0)
        return engine_list_seek(g, e);
    if (!same_file) {
        r = engine_list_readers(g, e);
        if (r != IPW_OK)
            return r;
    }
    if (g->list_scan > 0 && g->list_sha[0]) {
        /* The file as it is now: the reader's own hash is of what it parsed before. */
        char hex[RECIPIENTS_SHA256_HEX];
        r = recipients_file_sha256(g->list, g->list_offset, hex, e);
        if (r == IPW_OK && strcmp(hex, g->list_sha) == 0) {
            /* Only grown: what was read is still there. */
            snprintf(g->list_stat, sizeof g->list_stat, "%s", cur);
            g->list_dirty = true;
            return engine_list_seek(g, e);
        }
        if (r != IPW_OK && r != IPW_ENOTFOUND)
            return r;
        err_clear(e);
    }
    /* A new scan from the start. */
    if (same_file) {
        r = engine_list_readers(g, e);
        if (r != IPW_OK)
            return r;
    }
    if (g->list_scan > 0 && g->o->log)
        fprintf(g->o->log,
                "ipwarm: the recipient list %s changed: reading it again from the "
                "start\n",
                path);
    g->list_scan++;
    g->list_offset = recipients_data_offset(g->list);
    g->list_line = recipients_data_line(g->list);
    g->list_swept = false;
    g->list_sha[0] = '\0';
    snprintf(g->list_stat, sizeof g->list_stat, "%s", cur);
    g->list_dirty = true;
    int any = 0;
    r = store_recipients_unconfirmed(g->st, g->list_scan, &any, e);
    if (r != IPW_OK)
        return r;
    g->list_confirm = any != 0;
    return engine_list_seek(g, e);
}

static ipw_status engine_list_meta_int(struct engine *g, const char *key, int64_t *v)
{
    char *s = NULL;
    ipw_status r = store_meta_get(g->st, key, &s, NULL);
    if (r == IPW_OK)
        *v = strtoll(s, NULL, 10);
    free(s);
    return r;
}

/* Writes what the list's reading has reached; part of the caller's batch. */
static ipw_status engine_list_save(struct engine *g, struct err *e)
{
    char off[32], line[32], scan[32], swept[32];
    snprintf(off, sizeof off, "%lld", (long long)g->list_offset);
    snprintf(line, sizeof line, "%ld", g->list_line);
    snprintf(scan, sizeof scan, "%lld", (long long)g->list_scan);
    snprintf(swept, sizeof swept, "%lld", (long long)(g->list_swept ? g->list_scan : 0));
    const char *const kv[][2] = {
        {"list.path", g->p->recipients_file},
        {"list.scan", scan},
        {"list.offset", off},
        {"list.line", line},
        {"list.sha256", g->list_sha},
        {"list.stat", g->list_stat},
        {"list.swept", swept},
    };
    ipw_status r = IPW_OK;
    for (size_t i = 0; r == IPW_OK && i < sizeof kv / sizeof kv[0]; i++)
        r = store_meta_set(g->st, kv[i][0], kv[i][1], e);
    return r;
}

static void engine_list_forget_queued(struct engine *g);
static ipw_status engine_list_reassign(struct engine *g, int64_t now, struct err *e);

static ipw_status engine_list_open(struct engine *g, struct err *e)
{
    ipw_status r = engine_list_readers(g, e);
    if (r != IPW_OK)
        return r;
    int64_t real = clock_real_ms();
    if (g->o->once)
        g->list_until_real_ms = real + ENGINE_TICK_SEND_MS;
    else if (g->o->for_ms > 0)
        g->list_until_real_ms = real + g->o->for_ms;
    /* Where the runs before this one got to; nothing recorded (a new state file, or one from
     * before list scans) starts scan 1 from the start. */
    char *path = NULL, *sha = NULL, *stat = NULL;
    int64_t scan = 0, off = 0, line = 0, swept = 0;
    if (store_meta_get(g->st, "list.path", &path, NULL) == IPW_OK &&
        strcmp(path, g->p->recipients_file) == 0 &&
        engine_list_meta_int(g, "list.scan", &scan) == IPW_OK &&
        engine_list_meta_int(g, "list.offset", &off) == IPW_OK &&
        engine_list_meta_int(g, "list.line", &line) == IPW_OK &&
        store_meta_get(g->st, "list.sha256", &sha, NULL) == IPW_OK &&
        store_meta_get(g->st, "list.stat", &stat, NULL) == IPW_OK) {
        engine_list_meta_int(g, "list.swept", &swept);
        g->list_offset = off;
        g->list_line = (long)line;
        snprintf(g->list_sha, sizeof g->list_sha, "%s", sha);
        snprintf(g->list_stat, sizeof g->list_stat, "%s", stat);
        g->list_swept = swept == scan;
    } else if (engine_list_meta_int(g, "list.scan", &scan) != IPW_OK) {
        scan = 0;
    }
    /* A scan number is never used twice, even when the list's path changed (no place is then
     * kept, so a new scan starts): the recipients of the old list are not found by it, and
     * are removed at its end. */
    g->list_scan = scan;
    free(path);
    free(sha);
    free(stat);
    r = engine_list_sync(g, e);
    if (r == IPW_OK && !g->list_swept && !g->list_confirm) {
        /* Going on with a scan that an earlier run started. */
        int any = 0;
        r = store_recipients_unconfirmed(g->st, g->list_scan, &any, e);
        g->list_confirm = any != 0;
    }
    if (r == IPW_OK)
        r = engine_list_reassign(g, clock_now_ms(), e);
    return r;
}

/* One record read from the list, on its way to the queue. */
struct engine_import_rec {
    char *address, *domain;
    int64_t offset;
    long line;
    uint64_t digest;
    bool known;
};

/*
 * Reads up to max records (good or bad) of the list into the queue: the recipients already
 * queued are marked as found, the new ones' MX resolved and queued. *end is set when the
 * complete lines are all read; a scan that reached the end marks what it did not find removed.
 */
static ipw_status engine_import_chunk(struct engine *g, size_t max, int64_t now, bool *end,
                                      struct err *e)
{
    *end = false;
    struct engine_import_rec *batch = calloc(max, sizeof *batch);
    const char **domains = calloc(max, sizeof *domains);
    if (!batch || !domains) {
        free(batch);
        free(domains);
        return err_set(e, IPW_ENOMEM, "out of memory");
    }
    size_t n = 0, n_new = 0;
    ipw_status r = IPW_OK;
    bool stopped = false;
    for (size_t read = 0; read < max; read++) {
        struct recipients_rec rec;
        struct err le;
        ipw_status lr = recipients_next(g->list, &rec, &le);
        if (lr == IPW_ENOTFOUND) {
            *end = true;
            break;
        }
        if (lr == IPW_ETEMP) {
            stopped = true;
            break;
        }
        if (lr == IPW_EDATA) {
            /* A bad line is reported and skipped: the rest of the list still goes out. */
            if (g->o->log)
                fprintf(g->o->log, "ipwarm: skipping a bad recipient: %s\n", le.msg);
            continue;
        }
        if (lr != IPW_OK) {
            r = err_set(e, lr, "%s", le.msg);
            break;
        }
        struct engine_import_rec *b = &batch[n];
        b->address = strdup(rec.address);
        b->domain = strdup(rec.domain);
        b->offset = rec.offset;
        b->line = rec.line;
        b->digest = rec.digest;
        n++;
        if (!b->address || !b->domain) {
            r = err_set(e, IPW_ENOMEM, "out of memory");
            break;
        }
    }
    /* Where the reader is now (after the last record, or before a line that is not complete)
     * and the hash of exactly the bytes it parsed to get there. */
    long end_line = 0;
    int64_t end_offset = recipients_tell(g->list, &end_line);
    char sha[RECIPIENTS_SHA256_HEX] = "";
    if (r == IPW_OK && end_offset == g->list_offset) {
        /* Nothing new (an idle tick): no hashing at all. */
        memcpy(sha, g->list_sha, sizeof sha);
    } else if (r == IPW_OK) {
        ipw_status hr = recipients_prefix_sha256(g->list, end_offset, sha, e);
        if (hr == IPW_ETEMP) {
            /* Stopped while hashing (a rare second pass): this chunk is read again next time. */
            err_clear(e);
            stopped = true;
            for (size_t i = 0; i < n; i++) {
                free(batch[i].address);
                free(batch[i].domain);
            }
            n = 0;
            end_offset = g->list_offset;
            end_line = g->list_line;
            memcpy(sha, g->list_sha, sizeof sha);
        } else if (hr != IPW_OK) {
            r = hr;
        }
    }
    if (stopped)
        *end = false;

    /* Found in the list: the queued ones are marked, in one transaction. */
    if (r == IPW_OK && n > 0) {
        r = store_batch_begin(g->st, e);
        for (size_t i = 0; r == IPW_OK && i < n; i++) {
            struct store_recipient q = {.address = batch[i].address,
                                        .list_offset = batch[i].offset,
                                        .list_line = batch[i].line,
                                        .list_scan = g->list_scan,
                                        .list_digest = (int64_t)batch[i].digest};
            int known = 0;
            r = store_recipient_seen(g->st, &q, now, &known, e);
            batch[i].known = known != 0;
            if (!known)
                domains[n_new++] = batch[i].domain;
        }
        r = store_batch_end(g->st, r, e);
    }
    /* The MX lookups of the new ones outside any transaction: holding the write lock through
     * a DNS timeout would make `pause` and `resume` wait for it. Then one transaction for their
     * queue rows, the end of the scan and the place reached. A dry run queues too: queued
     * recipients are only pending, and the real run would queue them the same way. */
    if (r == IPW_OK && n_new > 0)
        r = engine_mx_prefetch(g, domains, n_new, now, e);
    int64_t removed = 0;
    bool swept_before = g->list_swept;
    bool progress = n > 0 || end_offset != g->list_offset || (*end && !g->list_swept);
    if (r == IPW_OK && (progress || g->list_dirty)) {
        r = store_batch_begin(g->st, e);
        for (size_t i = 0; r == IPW_OK && i < n; i++) {
            if (batch[i].known)
                continue;
            struct dns_mx_result *m = engine_mx(g, batch[i].domain, now, e);
            if (!m) {
                r = e->status;
                break;
            }
            size_t pi = provider_for_mx(g->p, m);
            char reason[512] = "";
            struct store_recipient q = {
                .address = batch[i].address,
                .domain = batch[i].domain,
                .provider = g->p->providers[pi].name,
                .state = "pending",
                .next_at_ms = 0,
                .added_ms = now,
                .list_offset = batch[i].offset,
                .list_line = batch[i].line,
                .list_scan = g->list_scan,
                .list_digest = (int64_t)batch[i].digest,
            };
            if (engine_mx_undeliverable(m->status)) {
                /* Domains that cannot receive are set aside before any mail is queued: a
                 * local reason (nobody replied), so skipped, not suppressed. */
                snprintf(reason, sizeof reason, "%s cannot receive mail: %s", batch[i].domain,
                         engine_mx_why(m));
                q.state = "skipped";
                q.reason = reason;
            }
            int added = 0;
            r = store_recipient_queue(g->st, &q, &added, e);
            if (added) {
                g->sum->queued++;
                if (engine_mx_undeliverable(m->status))
                    g->sum->undeliverable++;
            }
        }
        bool sweep = r == IPW_OK && *end && !g->list_swept;
        if (sweep) {
            char reason[600];
            snprintf(reason, sizeof reason, "no longer in the recipient list %s",
                     g->p->recipients_file);
            r = store_recipients_sweep(g->st, g->list_scan, reason, &removed, e);
        }
        int64_t old_offset = g->list_offset;
        long old_line = g->list_line;
        char old_sha[RECIPIENTS_SHA256_HEX];
        memcpy(old_sha, g->list_sha, sizeof old_sha);
        if (r == IPW_OK) {
            g->list_offset = end_offset;
            g->list_line = end_line;
            memcpy(g->list_sha, sha, sizeof sha);
            g->list_swept = g->list_swept || sweep;
            r = engine_list_save(g, e);
        }
        r = store_batch_end(g->st, r, e);
        if (r == IPW_OK) {
            g->list_dirty = false;
        } else {
            g->list_offset = old_offset;
            g->list_line = old_line;
            memcpy(g->list_sha, old_sha, sizeof old_sha);
            if (sweep)
                g->list_swept = false;
        }
    }
    if (r == IPW_OK && g->list_swept && !swept_before) {
        /* Recipients taken into the providers' queues before the scan ended may have been
         * removed, and their places in the list have changed: take them again from the store. */
        engine_list_forget_queued(g);
    }
    if (r == IPW_OK && removed > 0) {
        if (g->o->log)
            fprintf(g->o->log, "ipwarm: %lld recipients are no longer in the list %s: not sent\n",
                    (long long)removed, g->p->recipients_file);
    }
    for (size_t i = 0; i < n; i++) {
        free(batch[i].address);
        free(batch[i].domain);
    }
    free(batch);
    free(domains);
    return r;
}

/*
 * Reads the next records of the list into the queue (up to max, or the whole rest during a
 * scan that must end before anything more is sent), after checking whether the file changed.
 * Ends with the complete lines read (list_eof), or with a last line that waits for its line
 * end (list_tail), or when the run is asked to stop (the read goes on in the next run).
 */
static ipw_status engine_import(struct engine *g, size_t max, int64_t now, struct err *e)
{
    if (g->list_eof || max == 0)
        return IPW_OK;
    ipw_status r = engine_list_sync(g, e);
    if (r == IPW_ETEMP && engine_list_interrupt(g))
        return IPW_OK; /* stopping: the next run reads on */
    if (r == IPW_ENOINPUT && g->list_read) {
        /* Gone during a run (being replaced by `rm` and `cp`, say): what was queued goes on,
         * and the list is looked at again at the next call. A run cannot start without it. */
        if (g->o->log)
            fprintf(g->o->log, "ipwarm: %s\n", e->msg);
        err_clear(e);
        return IPW_OK;
    }
    if (r != IPW_OK)
        return r;
    g->list_read = true;
    if (g->list_tail) {
        /* A last line without its line end is taken as it is once the file has settled. */
        struct recipients_file_state fs;
        if (recipients_stat(g->p->recipients_file, &fs, NULL) == IPW_OK &&
            recipients_settled(&fs, clock_real_ms()))
            recipients_wait_for_line_end(g->list, false);
    }
    bool end = false;
    do {
        r = engine_import_chunk(g, max, now, &end, e);
    } while (r == IPW_OK && !end && g->list_confirm && !engine_list_interrupt(g));
    recipients_wait_for_line_end(g->list, true);
    if (r != IPW_OK)
        return r;
    if (end)
        g->list_confirm = false;
    g->list_tail = end && recipients_unterminated(g->list) > 0;
    g->list_eof = end && !g->list_tail;
    return IPW_OK;
}

/*
 * Called at every refresh of the loop: while the list is read to its end, looks (once a
 * second, one stat) whether the file changed, and reads it again when it did, or when a last
 * line waits to be complete, so that a long run notices an edited list within a second.
 */
static ipw_status engine_list_poll(struct engine *g, int64_t now, struct err *e)
{
    int64_t real = clock_real_ms();
    if (real < g->list_poll_real_ms)
        return IPW_OK;
    g->list_poll_real_ms = real + ENGINE_REFRESH_MS;
    bool look = g->list_tail || g->list_resync;
    if (!look && g->list_eof) {
        struct recipients_file_state fs;
        char cur[sizeof g->list_stat];
        if (recipients_stat(g->p->recipients_file, &fs, NULL) != IPW_OK)
            return IPW_OK; /* gone for a moment (being replaced): look again later */
        recipients_file_state_format(&fs, cur, sizeof cur);
        look = strcmp(cur, g->list_stat) != 0;
    }
    if (!look)
        return IPW_OK;
    g->list_resync = false;
    g->list_eof = false;
    return engine_import(g, ENGINE_IMPORT_CHUNK, now, e);
}

/*
 * Recipients queued for a provider the plan no longer has would never be sent (and a `once`
 * run would never end): at start, when the plan's providers changed, they go to the provider
 * the plan's matching gives their domain now.
 */
struct engine_names {
    char **v;
    size_t n, cap;
    bool with_null; /* NULL was among the names */
    bool oom;
};

static int engine_names_add(const char *name, void *arg)
{
    struct engine_names *l = arg;
    if (!name) {
        l->with_null = true;
        return 0;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv) {
            l->oom = true;
            return 1;
        }
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n] = strdup(name);
    if (!l->v[l->n]) {
        l->oom = true;
        return 1;
    }
    l->n++;
    return 0;
}

static void engine_names_free(struct engine_names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Moves the unfinished recipients of provider from (NULL: none) to their provider now. */
static ipw_status engine_list_move(struct engine *g, const char *from, int64_t now, int64_t *moved,
                                   struct err *e)
{
    struct engine_names doms = {0};
    ipw_status r = store_recipient_domains(g->st, from, engine_names_add, &doms, e);
    if (r == IPW_OK && doms.oom)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    for (size_t at = 0; r == IPW_OK && at < doms.n; at += ENGINE_IMPORT_CHUNK) {
        size_t k = doms.n - at < ENGINE_IMPORT_CHUNK ? doms.n - at : ENGINE_IMPORT_CHUNK;
        r = engine_mx_prefetch(g, (const char **)doms.v + at, k, now, e);
        if (r == IPW_OK)
            r = store_batch_begin(g->st, e);
        for (size_t i = at; r == IPW_OK && i < at + k; i++) {
            struct dns_mx_result *m = engine_mx(g, doms.v[i], now, e);
            if (!m) {
                r = e->status;
                break;
            }
            int64_t c = 0;
            r = store_recipients_set_provider(
                g->st, from, doms.v[i], g->p->providers[provider_for_mx(g->p, m)].name, &c, e);
            *moved += c;
        }
        r = store_batch_end(g->st, r, e);
    }
    engine_names_free(&doms);
    return r;
}

static ipw_status engine_list_reassign(struct engine *g, int64_t now, struct err *e)
{
    char key[4096];
    size_t len = 0;
    key[0] = '\0';
    for (size_t i = 0; i < g->p->n_providers && len < sizeof key; i++) {
        int w =
            snprintf(key + len, sizeof key - len, "%s%s", i ? "," : "", g->p->providers[i].name);
        if (w > 0)
            len += (size_t)w;
    }
    char *was = NULL;
    bool same =
        store_meta_get(g->st, "list.providers", &was, NULL) == IPW_OK && strcmp(was, key) == 0;
    free(was);
    if (same)
        return IPW_OK;
    struct engine_names provs = {0};
    ipw_status r = store_recipient_providers(g->st, engine_names_add, &provs, e);
    if (r == IPW_OK && provs.oom)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    int64_t moved = 0;
    if (r == IPW_OK && provs.with_null)
        r = engine_list_move(g, NULL, now, &moved, e);
    for (size_t i = 0; r == IPW_OK && i < provs.n; i++)
        if (plan_provider_find(g->p, provs.v[i]) < 0)
            r = engine_list_move(g, provs.v[i], now, &moved, e);
    engine_names_free(&provs);
    if (r == IPW_OK)
        r = store_meta_set(g->st, "list.providers", key, e);
    if (r == IPW_OK && moved > 0 && g->o->log)
        fprintf(g->o->log,
                "ipwarm: %lld queued recipients of providers the plan no longer has "
                "moved to the plan's providers\n",
                (long long)moved);
    return r;
}

/* ---- the per-provider queues of due recipients ---- */

static void engine_qrec_free(struct engine_qrec *q)
{
    free(q->address);
    free(q->domain);
    memset(q, 0, sizeof *q);
}

struct engine_fill_ctx {
    struct engine *g;
    struct engine_lane *v;
    size_t added;
    int oom;
};

static int engine_fill_cb(const struct store_recipient *r, void *arg)
{
    struct engine_fill_ctx *c = arg;
    struct engine_lane *v = c->v;
    if (strmap_find(&c->g->claimed, r->address))
        return 0;
    if (v->qu->q_n == v->qu->q_cap) {
        size_t ncap = v->qu->q_cap ? v->qu->q_cap * 2 : ENGINE_QUEUE_BATCH;
        struct engine_qrec *nq = calloc(ncap, sizeof *nq);
        if (!nq) {
            c->oom = 1;
            return 1;
        }
        for (size_t i = 0; i < v->qu->q_n; i++)
            nq[i] = v->qu->q[(v->qu->q_head + i) % v->qu->q_cap];
        free(v->qu->q);
        v->qu->q = nq;
        v->qu->q_head = 0;
        v->qu->q_cap = ncap;
    }
    struct engine_qrec *q = &v->qu->q[(v->qu->q_head + v->qu->q_n) % v->qu->q_cap];
    q->address = strdup(r->address);
    q->domain = strdup(r->domain);
    if (!q->address || !q->domain) {
        engine_qrec_free(q);
        c->oom = 1;
        return 1;
    }
    q->retries = r->retries;
    q->first_attempt_ms = r->first_attempt_ms;
    q->list_offset = r->list_offset;
    q->list_line = r->list_line;
    q->cycle = r->cycle;
    /* Claimed from now on, so that the next refill does not take it twice. */
    if (strmap_put(&c->g->claimed, r->address, 1) != 0) {
        engine_qrec_free(q);
        c->oom = 1;
        return 1;
    }
    v->qu->q_n++;
    c->added++;
    return 0;
}

static ipw_status engine_fill(struct engine *g, struct engine_lane *v, int64_t now, struct err *e)
{
    if (v->qu->q_n > 0 || now < v->qu->refill_after_ms)
        return IPW_OK;
    struct engine_fill_ctx c = {.g = g, .v = v};
    /* Ask for more than a batch: recipients already claimed in this run are skipped. */
    int limit = ENGINE_QUEUE_BATCH + (int)(g->claimed.n < 100000 ? g->claimed.n : 100000);
    ipw_status r = store_recipients_due(g->st, now, v->pp->name, limit, engine_fill_cb, &c, e);
    if (r != IPW_OK)
        return r;
    if (c.oom)
        return err_set(e, IPW_ENOMEM, "out of memory");
    if (c.added == 0)
        v->qu->refill_after_ms = now + ENGINE_REFRESH_MS;
    return IPW_OK;
}

/* Drops the recipients taken into the providers' queues (not in flight): after recipients
 * were removed from the list, the queues are filled again from the store, which has only
 * those still pending. */
static void engine_list_forget_queued(struct engine *g)
{
    for (size_t i = 0; i < g->n_lanes; i++) {
        struct engine_lane *v = &g->lanes[i];
        for (size_t k = 0; k < v->qu->q_n; k++) {
            struct engine_qrec *q = &v->qu->q[(v->qu->q_head + k) % v->qu->q_cap];
            strmap_del(&g->claimed, q->address);
            engine_qrec_free(q);
        }
        v->qu->q_n = 0;
        v->qu->q_head = 0;
        v->qu->refill_after_ms = 0;
    }
}

/* ---- sending one message ---- */

static void engine_flight_free(struct engine_flight *f)
{
    if (!f)
        return;
    if (f->linked) {
        if (f->lprev)
            f->lprev->lnext = f->lnext;
        else
            f->eng->flights = f->lnext;
        if (f->lnext)
            f->lnext->lprev = f->lprev;
    }
    engine_qrec_free(&f->rec);
    message_free(&f->msg);
    for (size_t i = 0; i < f->n_mx; i++) {
        free(f->mx_hosts[i]);
        free(f->mx_addrs[i]);
    }
    free(f);
}

/*
 * Just before a message is composed: when the list changed since it was last looked at (one
 * stat), it is read again now, and the recipient's row with it. IPW_ENOTFOUND (e says why) when
 * the recipient is no longer to be sent (taken out of the list): the window between an edit and
 * the next look at the file is closed for every message.
 */
static ipw_status engine_list_current(struct engine *g, struct engine_qrec *q, struct err *e)
{
    struct recipients_file_state fs;
    char cur[sizeof g->list_stat];
    if (recipients_stat(g->p->recipients_file, &fs, NULL) != IPW_OK)
        return IPW_OK; /* gone for a moment: engine_import says so when it reads */
    recipients_file_state_format(&fs, cur, sizeof cur);
    if (strcmp(cur, g->list_stat) == 0)
        return IPW_OK;
    g->list_eof = false;
    ipw_status r = engine_import(g, ENGINE_IMPORT_CHUNK, clock_now_ms(), e);
    if (r != IPW_OK)
        return r;
    struct store_recipient row;
    r = store_recipient_get(g->st, q->address, &row, e);
    if (r != IPW_OK)
        return r;
    if (strcmp(row.state, "pending") != 0) {
        r = err_set(e, IPW_ENOTFOUND, "%s, found just before sending: not sent",
                    row.reason ? row.reason : row.state);
    } else {
        q->list_offset = row.list_offset;
        q->list_line = (long)row.list_line;
    }
    store_recipient_clear(&row);
    return r;
}

/*
 * The recipient's CSV columns, read from its line in the list (its place is refreshed by every
 * scan, and a changed file is read again before anything is sent, so it is where recorded).
 * IPW_ENOTFOUND when the list changed and no longer has the recipient; IPW_ETEMP when the line
 * there is not the recipient's after all: not the recipient's fault, so it waits while the list
 * is read again; another status when reading the list failed.
 */
static ipw_status engine_columns(struct engine *g, struct engine_qrec *q,
                                 const char *const **values, size_t *n, struct err *e)
{
    *values = NULL;
    *n = 0;
    ipw_status r = engine_list_current(g, q, e);
    if (r != IPW_OK || g->n_columns == 0)
        return r;
    r = IPW_ENOTFOUND;
    struct recipients_rec rec;
    if (q->list_offset >= recipients_data_offset(g->list_lookup) && q->list_line > 0 &&
        recipients_seek(g->list_lookup, q->list_offset, q->list_line, NULL) == IPW_OK)
        r = recipients_next(g->list_lookup, &rec, NULL);
    if (r != IPW_OK || !rec.address || strcasecmp(rec.address, q->address) != 0) {
        /* Forget what the file looked like, so that engine_list_poll reads it again from the
         * start and every recipient's place is found afresh. */
        g->list_sha[0] = '\0';
        g->list_stat[0] = '\0';
        g->list_resync = true;
        return err_set(e, IPW_ETEMP,
                       "%s:%ld: the recipient list changed since %s was read there; reading "
                       "the list again",
                       g->p->recipients_file, q->list_line, q->address);
    }
    *values = rec.values;
    *n = rec.n_values;
    return IPW_OK;
}

static uint64_t engine_random64(void)
{
    uint64_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        v = (uint64_t)clock_real_ms() * 6364136223846793005ULL + (uint64_t)getpid();
    return v;
}

static void engine_done_cb(const struct smtp_result *r, void *arg);

/* Starts the transaction of f to its current MX host (or the relay). */
static ipw_status engine_submit(struct engine *g, struct engine_flight *f, int64_t now,
                                struct err *e)
{
    const struct plan *p = g->p;
    struct engine_lane *v = &g->lanes[f->lane];
    const char *host = p->mode == PLAN_RELAY ? g->relay_host : f->mx_hosts[f->mx_i];
    struct store_attempt a = {
        .started_ms = now,
        .recipient = f->rec.address,
        .domain = f->rec.domain,
        .provider = v->pp->name,
        .mx = host,
        .source_ip = f->source_ip,
        .message_id = f->message_id,
        .phase = "connect",
        .retry_no = f->rec.retries,
        .dry_run = g->o->dry_run,
    };
    /* The record comes first: if the process dies from here on, the next run knows. */
    ipw_status r =
        engine_attempt_begin(g, v, now, &a, &f->attempt_id, f->mail_from, sizeof f->mail_from, e);
    if (r != IPW_OK)
        return r;
    int64_t command_ms = p->command_timeout_ms;
    int64_t connect_ms = p->connect_timeout_ms;
    if (g->hard_end_real_ms) {
        /* A cron tick or a --for run must end on time, whatever the server does. */
        int64_t left = g->hard_end_real_ms - engine_real(g);
        if (left < 1000)
            left = 1000;
        if (command_ms > left)
            command_ms = left;
        if (connect_ms > left)
            connect_ms = left;
    }
    struct smtp_job job = {
        .host = host,
        .port = p->mode == PLAN_RELAY ? g->relay_port : p->port,
        .connect_ip = p->mode == PLAN_RELAY ? g->relay_ip : f->mx_addrs[f->mx_i],
        .implicit_tls = p->mode == PLAN_RELAY && g->relay_tls,
        .helo = p->helo,
        .source_ip = p->mode == PLAN_RELAY ? NULL : f->source_ip,
        .tls = p->tls,
        .tls_min = p->tls_min,
        .verify_peer = p->mode == PLAN_RELAY,
        .ca_file = p->relay_ca_file,
        .username = p->mode == PLAN_RELAY ? p->relay_username : NULL,
        .password = p->mode == PLAN_RELAY ? g->relay_password : NULL,
        .connect_timeout_ms = connect_ms,
        .command_timeout_ms = command_ms,
        .mail_from = f->mail_from,
        .rcpt = f->rec.address,
        .data = f->msg.data,
        .len = f->msg.len,
        .user = f,
    };
    r = g->tr.ops->submit(g->tr.impl, &job, e);
    if (r != IPW_OK)
        return r;
    v->inflight++;
    if (!f->linked) {
        /* Kept in a list so that a run that stops on an error frees what is still in flight. */
        f->linked = true;
        f->lprev = NULL;
        f->lnext = g->flights;
        if (g->flights)
            g->flights->lprev = f;
        g->flights = f;
    }
    g->inflight++;
    return IPW_OK;
}

/* Ends the message of f that could not start for a local reason (DNS trouble, a domain that
 * cannot receive, a list value that cannot make a message, a list that changed): nothing went
 * to any provider, so nothing is counted against one; the recipient moves on by u. */
static ipw_status engine_finish_local(struct engine *g, struct engine_flight *f, int64_t now,
                                      const char *text, const struct store_recipient_update *u,
                                      struct err *e);

/* Takes the next recipient of provider pi and starts its message. */
static ipw_status engine_send(struct engine *g, size_t pi, int64_t now, struct err *e)
{
    const struct plan *p = g->p;
    struct engine_lane *v = &g->lanes[pi];
    struct engine_flight *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(e, IPW_ENOMEM, "out of memory");
    f->eng = g;
    f->lane = pi;
    f->rec = v->qu->q[v->qu->q_head];
    memset(&v->qu->q[v->qu->q_head], 0, sizeof v->qu->q[v->qu->q_head]);
    v->qu->q_head = (v->qu->q_head + 1) % v->qu->q_cap;
    v->qu->q_n--;
    snprintf(f->source_ip, sizeof f->source_ip, "%s", v->ip);
    int64_t seq = ++g->seq;
    char idl[200];
    message_id_left(p->campaign, seq, engine_random64(), idl, sizeof idl);
    const char *at = strrchr(p->from_addr, '@');
    snprintf(f->message_id, sizeof f->message_id, "<%s@%s>", idl, at ? at + 1 : "localhost");

    /* Where it goes: the MX hosts in preference order, each address a host to try. */
    ipw_status r = IPW_OK;
    if (p->mode == PLAN_DIRECT) {
        struct dns_mx_result *m = engine_mx(g, f->rec.domain, now, e);
        if (!m) {
            engine_flight_free(f);
            return e->status;
        }
        if (m->status == DNS_MX_TEMPERROR) {
            /* Our resolver's trouble, not the recipient's: tried again after retry.first,
             * without a retry counted or the give-up clock started. */
            char text[512];
            snprintf(text, sizeof text, "MX lookup of %s failed temporarily: %s", f->rec.domain,
                     m->detail);
            struct store_recipient_update u = {.step = STORE_RCPT_REQUEUE,
                                               .next_at_ms = now + p->backoff.retry_first_ms,
                                               .reason = text};
            return engine_finish_local(g, f, now, text, &u, e);
        }
        if (engine_mx_undeliverable(m->status)) {
            char text[512];
            snprintf(text, sizeof text, "%s cannot receive mail: %s", f->rec.domain,
                     engine_mx_why(m));
            struct store_recipient_update u = {.step = STORE_RCPT_SKIP, .reason = text};
            g->sum->undeliverable++;
            return engine_finish_local(g, f, now, text, &u, e);
        }
        for (size_t h = 0; h < m->n_hosts && f->n_mx < 16; h++) {
            for (size_t k = 0; k < m->hosts[h].n_addresses && f->n_mx < 16; k++) {
                f->mx_hosts[f->n_mx] = strdup(m->hosts[h].host);
                f->mx_addrs[f->n_mx] = strdup(m->hosts[h].addresses[k]);
                if (!f->mx_hosts[f->n_mx] || !f->mx_addrs[f->n_mx]) {
                    free(f->mx_hosts[f->n_mx]);
                    free(f->mx_addrs[f->n_mx]);
                    engine_flight_free(f);
                    return err_set(e, IPW_ENOMEM, "out of memory");
                }
                f->n_mx++;
            }
        }
    }

    /* The message. */
    const char *const *values = NULL;
    size_t n_values = 0;
    struct err ce;
    err_clear(&ce);
    r = engine_columns(g, &f->rec, &values, &n_values, &ce);
    char date[MESSAGE_DATE_MAX];
    char tok[TOKEN_LEN + 1];
    message_format_date(now, clock_utc_offset(now, p->timezone), date, sizeof date);
    if (r == IPW_OK) {
        struct template_vars tv = {
            .recipient = f->rec.address,
            .seq = seq,
            .date = date,
            .campaign = p->campaign,
            .token = g->have_token ? token_make(&g->token, p->campaign, f->rec.address, tok) : "",
            .names = g->columns,
            .values = values,
            .n = n_values,
            .src = p->recipients_file,
            .src_line = f->rec.list_line,
        };
        /* The Message-ID's contents again, in a field of ours: relays that replace the
         * Message-ID (some do) leave it, and a report quoting the original carries it. */
        char xid[sizeof f->message_id];
        snprintf(xid, sizeof xid, "%.*s", (int)strlen(f->message_id) - 2, f->message_id + 1);
        struct message_header xh[2] = {{.name = FEEDBACK_ID_HEADER, .value = xid}};
        size_t n_xh = 1;
        char fbid[256];
        if (p->feedback.feedback_id) {
            /* Gmail's feedback loop: complaints counted per campaign, IP and provider. */
            r = message_feedback_id(p->feedback.feedback_id, p->campaign, f->source_ip, v->pp->name,
                                    fbid, sizeof fbid, &ce);
            xh[n_xh++] = (struct message_header){.name = "Feedback-ID", .value = fbid};
        }
        struct message_args ma = {
            .id_left = idl, .boundary_seed = engine_random64(), .extra = xh, .n_extra = n_xh};
        if (r == IPW_OK)
            r = message_compose(g->tmpl, &tv, &ma, &f->msg, &ce);
    }
    if (r == IPW_OK && g->dkim) {
        struct dkim_sign_opts so = {.domain = p->dkim_domain, .selector = p->dkim_selector};
        /* Gmail counts a Feedback-ID only when it is signed: the default fields and it. */
        const char *with_fbid[40];
        if (p->feedback.feedback_id) {
            size_t k = 0;
            for (; dkim_default_headers[k] && k + 2 < sizeof with_fbid / sizeof with_fbid[0]; k++)
                with_fbid[k] = dkim_default_headers[k];
            with_fbid[k++] = "Feedback-ID";
            with_fbid[k] = NULL;
            so.headers = with_fbid;
        }
        r = dkim_sign(g->dkim, &so, &f->msg, now, &ce);
        if (r != IPW_OK) {
            /* Signing is not the recipient's fault: stop rather than send unsigned mail. */
            engine_flight_free(f);
            return err_set(e, r, "DKIM signing failed: %s", ce.msg);
        }
    }
    if (r == IPW_ENOTFOUND) {
        /* Taken out of the list: its row already says so. */
        struct store_recipient_update u = {.step = STORE_RCPT_KEEP};
        return engine_finish_local(g, f, now, ce.msg, &u, e);
    }
    if (r == IPW_ETEMP) {
        /* Its line moved: it waits a moment while the list is read again (engine_list_poll). */
        struct store_recipient_update u = {
            .step = STORE_RCPT_REQUEUE, .next_at_ms = now + ENGINE_REFRESH_MS, .reason = ce.msg};
        return engine_finish_local(g, f, now, ce.msg, &u, e);
    }
    if (r != IPW_OK && r != IPW_EDATA) {
        /* Reading the list or composing failed for no reason of this recipient's. */
        engine_flight_free(f);
        return err_set(e, r, "%s", ce.msg);
    }
    if (r != IPW_OK) {
        /* This recipient's data cannot make a message (a line break in a column that goes
         * into the subject, ...): it is set aside with the reason until its line in the list
         * changes; the others go on. */
        struct store_recipient_update u = {.step = STORE_RCPT_SKIP, .reason = ce.msg};
        return engine_finish_local(g, f, now, ce.msg, &u, e);
    }
    r = engine_submit(g, f, now, e);
    if (r != IPW_OK) {
        engine_flight_free(f);
        return r;
    }
    return IPW_OK;
}

static ipw_status engine_finish_local(struct engine *g, struct engine_flight *f, int64_t now,
                                      const char *text, const struct store_recipient_update *u,
                                      struct err *e)
{
    /* No attempt is recorded (an attempt is a transaction with a provider: its statistics,
     * rates and caps count those), and the pick gives back what it took: its share of the
     * day's cap and its place in the even sequence, which the next recipient can use. What
     * happened is the recipient's state and reason, which `trace` shows. */
    struct engine_lane *v = &g->lanes[f->lane];
    if (v->ls.sent_today > 0)
        v->ls.sent_today--;
    if (v->ls.seq.n > 0)
        v->ls.seq.n--;
    v->dirty = true;
    (void)now;
    /* A dry run leaves the queue as the real run will find it. */
    ipw_status r =
        g->o->dry_run ? IPW_OK : store_recipient_update(g->st, f->rec.address, 0, NULL, u, e);
    if (g->o->log)
        fprintf(g->o->log, "ipwarm: %s %s: %s\n", f->rec.address,
                u->step == STORE_RCPT_SKIP      ? "skipped"
                : u->step == STORE_RCPT_REQUEUE ? "waits"
                                                : "not sent",
                text);
    if (!g->o->dry_run)
        strmap_del(&g->claimed, f->rec.address);
    engine_flight_free(f);
    return r;
}

/* ---- completions ---- */

struct engine_done_ctx {
    struct engine *g;
    ipw_status r;
    struct err *e;
};

static enum reply_phase engine_reply_phase(enum smtp_phase p)
{
    switch (p) {
    case SMTP_PHASE_CONNECT:
        return REPLY_PHASE_CONNECT;
    case SMTP_PHASE_EHLO:
        return REPLY_PHASE_EHLO;
    case SMTP_PHASE_STARTTLS:
        return REPLY_PHASE_STARTTLS;
    case SMTP_PHASE_AUTH:
        return REPLY_PHASE_AUTH;
    case SMTP_PHASE_MAIL:
        return REPLY_PHASE_MAIL;
    case SMTP_PHASE_RCPT:
        return REPLY_PHASE_RCPT;
    case SMTP_PHASE_DATA:
        return REPLY_PHASE_DATA;
    case SMTP_PHASE_QUIT:
        return REPLY_PHASE_QUIT;
    }
    return REPLY_PHASE_CONNECT;
}

/* Records the suspension of a lane whose receiver refuses the sender, in force at once: the
 * lane's IP in a pool, else the provider. */
static ipw_status engine_suspend(struct engine *g, struct engine_lane *v, int64_t now, int64_t ms,
                                 const char *reply, struct err *e)
{
    char reason[700];
    snprintf(reason, sizeof reason, "the receiver refuses the sender: %.600s", reply);
    struct store_rule_action sa = {
        .provider = v->pp->name,
        .ip = v->key,
        .rule = ENGINE_RULE_REFUSED,
        .action = "suspend",
        .reason = reason,
        .started_ms = now,
        .expires_ms = now + ms,
    };
    if (!g->o->dry_run) {
        ipw_status r = store_rule_add(g->st, &sa, NULL, e);
        if (r != IPW_OK)
            return r;
    }
    struct backoff_action b = {.name = ENGINE_RULE_REFUSED,
                               .action = PLAN_ACTION_SUSPEND,
                               .started_ms = now,
                               .expires_ms = now + ms};
    ipw_status r = engine_lane_push(v, &b, false, e);
    if (r != IPW_OK)
        return r;
    v->refusals++;
    if (g->o->log) {
        if (v->key[0])
            fprintf(g->o->log, "ipwarm: %s from %s: suspended for %lld min: %s\n", v->pp->name,
                    v->ip, (long long)(ms / 60000), reason);
        else
            fprintf(g->o->log, "ipwarm: %s: suspended for %lld min: %s\n", v->pp->name,
                    (long long)(ms / 60000), reason);
    }
    return IPW_OK;
}

/* Whether lane w of a pool takes part on the local date today: its source.start has come. */
static bool engine_lane_started(const struct engine_lane *w, const char *today)
{
    return !w->start || strcmp(today, w->start) >= 0;
}

struct engine_pool_find {
    const char *rule;
    bool found;
};

static int engine_pool_find_cb(const struct store_rule_action *a, void *arg)
{
    struct engine_pool_find *c = arg;
    if ((!a->ip || !a->ip[0]) && a->rule && strcmp(a->rule, c->rule) == 0)
        c->found = true;
    return c->found;
}

/*
 * Lane v of a pool just received a throttling reply or a rule hit of kind key (pool.h). When
 * every started IP of the pool got the same within the hour, the trouble is the provider's,
 * not an IP's (the sending domain, the content): the provider is acted on for the whole pool,
 * with a rule action without an IP that says so. b is what acts (a rule's action, or for
 * backoff a suspension until the pause v just began ends); rule names it (it outlives the run's
 * use: the plan's, or a literal).
 */
static ipw_status engine_pool_check(struct engine *g, struct engine_lane *v, const char *key,
                                    const char *rule, const struct backoff_action *b,
                                    const char *reply, int64_t now, struct err *e)
{
    if (!v->key[0] || g->n_ips < 2)
        return IPW_OK;
    pool_hit_add(v->recent, &v->n_recent, key, now);
    struct tz_local loc;
    ipw_status r = tz_local(now, g->p->timezone, &loc, e);
    if (r != IPW_OK)
        return r;
    struct pool_lane pl[64];
    size_t n = 0;
    struct engine_lane *first = &g->lanes[v->index * g->n_ips];
    for (size_t k = 0; k < g->n_ips && n < 64; k++, n++) {
        struct engine_lane *w = first + k;
        pl[n] = (struct pool_lane){
            .hits = w->recent, .n_hits = w->n_recent, .sending = engine_lane_started(w, loc.date)};
    }
    if (!pool_every_ip(pl, n, key, now))
        return IPW_OK;
    /* Once: an action of the whole pool already in force for this trouble stands. */
    struct engine_pool_find pf = {.rule = rule};
    if (!g->o->dry_run) {
        r = store_rules_active(g->st, now, v->pp->name, engine_pool_find_cb, &pf, e);
        if (r != IPW_OK)
            return r;
    }
    if (pf.found)
        return IPW_OK;
    char reason[900];
    snprintf(reason, sizeof reason,
             "every IP of the pool (%zu) was throttled within the hour (%s): the sending domain "
             "or the content, not an IP: %.600s",
             n, key, reply);
    struct store_rule_action sa = {
        .provider = v->pp->name,
        .ip = "",
        .rule = rule,
        .action = b->action == PLAN_ACTION_THROTTLE ? "throttle" : "suspend",
        .rate_per_min = b->action == PLAN_ACTION_THROTTLE ? b->rate_per_min : 0,
        .reason = reason,
        .started_ms = now,
        .expires_ms = b->expires_ms == INT64_MAX ? 0 : b->expires_ms,
    };
    if (!g->o->dry_run) {
        r = store_rule_add(g->st, &sa, NULL, e);
        if (r != IPW_OK)
            return r;
    }
    struct backoff_action pb = *b;
    pb.name = rule;
    pb.started_ms = now;
    r = engine_push(g, v, "", &pb, e);
    if (r == IPW_OK && g->o->log)
        fprintf(g->o->log, "ipwarm: %s: %s for the whole pool: %s\n", v->pp->name, sa.action,
                reason);
    return r;
}

/* The sentence that stops a run whose own set-up the server refused: what, and what to fix. */
static void engine_setup_failed(struct engine *g, const struct engine_flight *f,
                                enum smtp_phase phase, const char *reply)
{
    const struct plan *p = g->p;
    const char *who = p->mode == PLAN_RELAY ? g->relay_host : f->mx_hosts[f->mx_i];
    const char *fix;
    char buf[256];
    switch (phase) {
    case SMTP_PHASE_AUTH:
        if (p->relay_password_env)
            snprintf(buf, sizeof buf, "check transport.relay.username (%s) and the password in $%s",
                     p->relay_username ? p->relay_username : "none", p->relay_password_env);
        else
            snprintf(buf, sizeof buf, "check transport.relay.username (%s) and the password in %s",
                     p->relay_username ? p->relay_username : "none",
                     p->relay_password_file ? p->relay_password_file : "password_file");
        fix = buf;
        break;
    case SMTP_PHASE_STARTTLS:
    case SMTP_PHASE_EHLO:
    case SMTP_PHASE_CONNECT:
        fix = p->mode == PLAN_RELAY
                  ? "enable STARTTLS on the relay, or use its smtps:// port (transport.relay.url); "
                    "ipwarm never sends a password in clear"
                  : "check transport.tls";
        break;
    case SMTP_PHASE_MAIL:
        fix = "check sender.return_path: the server refuses it";
        break;
    default:
        fix = p->mode == PLAN_RELAY ? "the relay does not let this account send to this "
                                      "recipient: check the relay's settings for it"
                                    : "check the plan's transport and sender";
        break;
    }
    g->fatal = IPW_EUNAVAIL;
    snprintf(g->fatal_msg, sizeof g->fatal_msg,
             "run stopped: %s refused our set-up at %s: %.600s; %s. Nothing more was sent; the "
             "recipients stay pending",
             who ? who : "the server", smtp_phase_name(phase), reply, fix);
}

static ipw_status engine_complete(struct engine *g, struct engine_flight *f,
                                  const struct smtp_result *res, struct err *e)
{
    const struct plan *p = g->p;
    struct engine_lane *v = &g->lanes[f->lane];
    int64_t now = engine_now(g);
    v->inflight--;
    g->inflight--;

    struct reply rp;
    memset(&rp, 0, sizeof rp);
    if (res->reply)
        reply_parse(res->reply, strlen(res->reply), &rp);
    int code = res->reply ? rp.code : 0;
    char full[REPLY_TEXT_MAX + 16];
    const char *text;
    if (code) {
        reply_format(&rp, full, sizeof full);
        text = rp.text;
    } else {
        snprintf(full, sizeof full, "no reply: %s", res->error[0] ? res->error : "no answer");
        text = full;
    }
    bool decisive = !res->delivered && !res->unknown && !res->aborted;

    /* Rules see every reply that refused something. */
    bool rule_bounce = false, rule_suspend = false, rule_acted = false;
    struct backoff_action *fired = NULL;
    size_t n_fired = 0;
    if (decisive && p->n_rules > 0) {
        fired = calloc(p->n_rules, sizeof *fired);
        if (!fired)
            return err_set(e, IPW_ENOMEM, "out of memory");
        n_fired = backoff_rules_match(p->rules, p->n_rules, v->pp->name, full, now, v->hits, fired);
    }
    for (size_t i = 0; i < n_fired; i++) {
        if (fired[i].action == PLAN_ACTION_BOUNCE) {
            rule_bounce = true;
            continue;
        }
        if (fired[i].action == PLAN_ACTION_SUSPEND)
            rule_suspend = true;
        rule_acted = true;
        const struct plan_rule *rule = &p->rules[fired[i].rule];
        const char *rname = rule->name ? rule->name : rule->match;
        struct store_rule_action sa = {
            .provider = v->pp->name,
            .ip = v->key,
            .rule = rname,
            .action = fired[i].action == PLAN_ACTION_THROTTLE ? "throttle" : "suspend",
            .rate_per_min = fired[i].action == PLAN_ACTION_THROTTLE ? fired[i].rate_per_min : 0,
            .reason = full,
            .started_ms = fired[i].started_ms,
            .expires_ms = fired[i].expires_ms,
        };
        ipw_status r = g->o->dry_run ? IPW_OK : store_rule_add(g->st, &sa, NULL, e);
        /* In force at once, not only from the next refresh: a suspension that lets one more
         * message through would defeat it. */
        if (r == IPW_OK)
            r = engine_lane_push(v, &fired[i], false, e);
        if (r == IPW_OK && g->o->log) {
            if (v->key[0])
                fprintf(g->o->log, "ipwarm: %s from %s: rule %s fired: %s\n", v->pp->name, v->ip,
                        rname, sa.action);
            else
                fprintf(g->o->log, "ipwarm: %s: rule %s fired: %s\n", v->pp->name, rname,
                        sa.action);
        }
        /* The same rule on every IP of the pool within the hour: the provider's trouble. */
        char key[POOL_KEY_MAX];
        pool_key(rname, 0, NULL, key, sizeof key);
        if (r == IPW_OK)
            r = engine_pool_check(g, v, key, rname, &fired[i], full, now, e);
        if (r != IPW_OK) {
            free(fired);
            return r;
        }
    }
    free(fired);

    struct verdict_input vin = {
        .delivered = res->delivered,
        .unknown = res->unknown,
        .aborted = res->aborted,
        .tls_unavailable = res->tls_unavailable,
        .phase = engine_reply_phase(res->phase),
        .code = code,
        .enhanced = rp.enhanced[0] ? rp.enhanced : NULL,
        .text = code ? rp.text : text,
        .full = full,
        .relay = p->mode == PLAN_RELAY,
        .more_mx = p->mode == PLAN_DIRECT && f->mx_i + 1 < f->n_mx,
        .default_provider = v->pp->is_default,
        .rule_bounce = rule_bounce,
        .mode = p->recipients_mode,
        .retries = f->rec.retries,
        .first_attempt_ms = f->rec.first_attempt_ms,
        .refusals = v->refusals,
        .backoff = &p->backoff,
        .now_ms = now,
    };
    struct verdict vd;
    verdict_decide(&vin, &vd);

    /* The provider counts one deferral for the message, not one per MX host. */
    if (vd.throttle && !f->deferral_counted) {
        backoff_on_deferral(&v->ls.bo, &p->backoff, now, full);
        f->deferral_counted = true;
        /* The same kind of throttling on every IP of the pool within the hour: the provider is
         * suspended for the whole pool until the pause this reply began ends. A rule that
         * fired for this reply speaks for it (above): the pool is acted on once. */
        char key[POOL_KEY_MAX];
        pool_key(NULL, code, rp.enhanced[0] ? rp.enhanced : NULL, key, sizeof key);
        struct backoff_action b = {.action = PLAN_ACTION_SUSPEND,
                                   .started_ms = now,
                                   .expires_ms = v->ls.bo.paused_until_ms > now
                                                     ? v->ls.bo.paused_until_ms
                                                     : now + p->backoff.pause_ms};
        ipw_status r =
            rule_acted ? IPW_OK : engine_pool_check(g, v, key, ENGINE_RULE_POOL, &b, full, now, e);
        if (r != IPW_OK)
            return r;
    }
    if (vd.suspend_ms > 0 && !rule_suspend) {
        ipw_status r = engine_suspend(g, v, now, vd.suspend_ms, full, e);
        if (r != IPW_OK)
            return r;
    } else if (vd.suspend_ms > 0) {
        v->refusals++;
    }
    if (res->delivered)
        v->refusals = 0;
    if (vd.stop && !g->fatal)
        engine_setup_failed(g, f, res->phase, full);

    struct store_outcome o = {
        .finished_ms = now,
        .phase = smtp_phase_name(res->phase),
        .code = code,
        .enhanced = rp.enhanced[0] ? rp.enhanced : NULL,
        .text = text,
        .outcome = vd.outcome,
    };
    /* The outcome and the provider's state it changed (last reply, backoff) in one commit. */
    snprintf(v->ls.last_reply, sizeof v->ls.last_reply, "%.500s", full);
    v->ls.last_reply_ms = now;
    ipw_status r = g->o->dry_run ? IPW_OK : store_batch_begin(g->st, e);
    if (r == IPW_OK)
        r = store_attempt_finish_ex(g->st, f->attempt_id, &o, g->o->dry_run ? NULL : &vd.step, e);
    if (r == IPW_OK)
        r = engine_lane_save(g, v, now, e);
    r = store_batch_end(g->st, r, e);
    if (r != IPW_OK)
        return r;

    g->sum->attempts++;
    if (strcmp(vd.outcome, "delivered") == 0)
        g->sum->delivered++;
    else if (strcmp(vd.outcome, "unknown") == 0)
        g->sum->unknown++;
    else if (strcmp(vd.outcome, "expired") == 0)
        g->sum->expired++;
    else if (strcmp(vd.outcome, "deferred") == 0)
        g->sum->deferred++;
    else if (strcmp(vd.outcome, "bounced") == 0)
        g->sum->bounced++;
    else if (strcmp(vd.outcome, "blocked") == 0)
        g->sum->blocked++;
    else
        g->sum->failed++;
    if (g->o->log)
        fprintf(g->o->log, "ipwarm: %s via %s (%s): %s [%s] %s\n", f->rec.address,
                p->mode == PLAN_RELAY ? g->relay_host : f->mx_hosts[f->mx_i], v->pp->name,
                vd.outcome, smtp_phase_name(res->phase), full);

    if (vd.next_mx) {
        /* The same message (same Message-ID) to the next address, as its own attempt. */
        f->mx_i++;
        r = engine_submit(g, f, now, e);
        if (r != IPW_OK)
            engine_flight_free(f);
        return r;
    }
    if (!g->o->dry_run)
        strmap_del(&g->claimed, f->rec.address);
    engine_flight_free(f);
    return IPW_OK;
}

static void engine_done_cb(const struct smtp_result *r, void *arg)
{
    struct engine_done_ctx *c = arg;
    struct engine_flight *f = r->user;
    if (c->r != IPW_OK) {
        /* An earlier completion failed to record: keep the first error, still free. */
        f->eng->lanes[f->lane].inflight--;
        f->eng->inflight--;
        engine_flight_free(f);
        return;
    }
    c->r = engine_complete(c->g, f, r, c->e);
}

/* ---- setting up ---- */

/* The {{seq}} numbers go on from the highest attempt id, which is the number of attempts made
 * so far (they are never deleted). count(*) gave the same but read the whole attempts index:
 * about 50 ms of every cron tick with ten million attempts (bench/scale.sh); max(id) is one
 * B-tree descent. A read through the store's connection, as engine_next_retry does. */
static int64_t engine_last_attempt_id(struct engine *g)
{
    sqlite3_stmt *s = NULL;
    int64_t id = 0;
    if (sqlite3_prepare_v2(store_db(g->st), "SELECT max(id) FROM attempts", -1, &s, NULL) ==
            SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        id = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return id;
}

/*
 * The relay: its address, resolved through ipwarm's own resolver (dns.servers, --dns) like every
 * other name, so that a plan pointing at a local resolver reaches its relay (libcurl then
 * connects to that address and keeps the name for TLS); and its password, read from its
 * environment variable or file, never logged.
 */
static ipw_status engine_relay_setup(struct engine *g, struct err *e)
{
    const struct plan *p = g->p;
    g->relay_host = strdup(p->relay_host);
    if (!g->relay_host)
        return err_set(e, IPW_ENOMEM, "out of memory");
    g->relay_port = p->relay_port;
    g->relay_tls = p->relay_implicit_tls;
    char **addrs = NULL;
    size_t n_addrs = 0;
    struct err de;
    ipw_status r = dns_host_addresses(g->dns, g->relay_host, &addrs, &n_addrs, &de);
    if (r == IPW_ENOMEM)
        return err_set(e, r, "out of memory");
    if (r != IPW_OK)
        return err_set(e, r == IPW_ETEMP ? IPW_ETEMP : IPW_EUNAVAIL,
                       "relay %s (transport.relay.url): cannot resolve it: %s", g->relay_host,
                       de.msg);
    g->relay_ip = strdup(addrs[0]);
    dns_addresses_free(addrs, n_addrs);
    if (!g->relay_ip)
        return err_set(e, IPW_ENOMEM, "out of memory");
    if (p->relay_password_env || p->relay_password_file) {
        /* secret.c: the file must be a regular one (a FIFO would hang the run). */
        struct err sub;
        r = secret_password_read(p->relay_password_env, p->relay_password_file,
                                 p->relay_password_env ? "transport.relay.password_env"
                                                       : "transport.relay.password_file",
                                 &g->relay_password, &sub);
        if (r != IPW_OK)
            return err_set(e, r == IPW_ENOMEM ? r : IPW_ECONFIG, "%s: %s",
                           p->name ? p->name : p->path, sub.msg);
    }
    return IPW_OK;
}

/* A relay that does not answer at start is a service unavailable (exit 69), not a thousand
 * failed attempts. */
static ipw_status engine_relay_probe(struct engine *g, struct err *e)
{
    char port[16];
    snprintf(port, sizeof port, "%d", g->relay_port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai = NULL;
    int gr = getaddrinfo(g->relay_ip, port, &hints, &ai);
    if (gr != 0)
        return err_set(e, IPW_EUNAVAIL, "relay %s: cannot use its address %s: %s", g->relay_host,
                       g->relay_ip, gai_strerror(gr));
    ipw_status r = IPW_EUNAVAIL;
    char why[256] = "no address";
    for (struct addrinfo *a = ai; a && r != IPW_OK; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int pr = poll(&pfd, 1, (int)g->p->connect_timeout_ms);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                r = IPW_OK;
            else
                snprintf(why, sizeof why, "%s",
                         pr == 0 ? "no answer within the connect timeout"
                                 : strerror(soerr ? soerr : errno));
        } else {
            snprintf(why, sizeof why, "%s", strerror(errno));
        }
        close(fd);
    }
    freeaddrinfo(ai);
    if (r != IPW_OK)
        return err_set(e, IPW_EUNAVAIL, "relay %s port %d does not answer: %s", g->relay_host,
                       g->relay_port, why);
    return IPW_OK;
}

/* Sender refusals of the last day count toward the next suspension's length: a receiver that
 * still refuses after an hour is asked again after two, then four... (backoff.blocked). */
#define ENGINE_REFUSALS_WINDOW_MS (24 * 3600000LL)

struct engine_refusals_ctx {
    struct engine_lane *v;
    int64_t now;
};

/* Counts the lane's recent sender refusals, and gives a pool's lane back the rule hits of its
 * IP within the hour (engine_pool_check), so that cron ticks see what the previous ones saw. */
static int engine_refusals_cb(const struct store_rule_action *a, void *arg)
{
    struct engine_refusals_ctx *c = arg;
    if (!engine_lane_concerned(c->v, a->ip))
        return 0;
    if (a->rule && strcmp(a->rule, ENGINE_RULE_REFUSED) == 0)
        c->v->refusals++;
    if (c->v->key[0] && a->ip && a->ip[0] && a->rule && a->started_ms > c->now - POOL_WINDOW_MS) {
        char key[POOL_KEY_MAX];
        pool_key(a->rule, 0, NULL, key, sizeof key);
        pool_hit_add(c->v->recent, &c->v->n_recent, key, a->started_ms);
    }
    return 0;
}

/* A server may echo what we sent after AUTH: the credentials never reach the state. */
static void engine_mask(char *text, const char *username, const char *password)
{
    secret_mask(text, username, password);
}

static ipw_status engine_setup(struct engine *g, int64_t now, struct err *e)
{
    const struct plan *p = g->p;
    ipw_status r;
    if (!g->o->dry_run) {
        int64_t n = 0;
        r = store_attempts_recover(g->st, now, &n, e);
        if (r != IPW_OK)
            return r;
        g->sum->recovered = n;
        if (p->feedback.enabled || p->n_seeds > 0) {
            /* Due at once unless the last poll (of any process) was recent. Seeds are looked
             * up on the same clock (feedback.poll_every). */
            int64_t last = 0;
            r = returns_last_poll(p, g->st, &last, e);
            if (r != IPW_OK)
                return r;
            g->feedback_next_ms = last ? last + p->feedback.poll_every_ms : now;
            if (g->feedback_next_ms <= 0)
                g->feedback_next_ms = 1;
        }
    }
    if (p->mode == PLAN_RELAY) {
        r = engine_relay_setup(g, e);
        if (r == IPW_OK && !g->o->dry_run)
            r = engine_relay_probe(g, e);
        if (r != IPW_OK)
            return r;
    }
    int64_t window = 0;
    for (size_t i = 0; i < p->n_rules; i++)
        if (p->rules[i].trigger_period_ms > window)
            window = p->rules[i].trigger_period_ms;
    /* One lane per provider and source IP: a pool's IPs are warmed each on its own. Relay
     * mode sends from the relay's address, whatever ours are: one lane per provider. */
    g->n_ips = p->mode == PLAN_RELAY ? 1 : p->n_source_ips;
    g->n_lanes = p->n_providers * g->n_ips;
    g->lanes = calloc(g->n_lanes ? g->n_lanes : 1, sizeof *g->lanes);
    g->queues = calloc(p->n_providers ? p->n_providers : 1, sizeof *g->queues);
    if (!g->lanes || !g->queues)
        return err_set(e, IPW_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_lanes; i++) {
        struct engine_lane *v = &g->lanes[i];
        v->index = i / g->n_ips;
        v->pp = &p->providers[v->index];
        v->qu = &g->queues[v->index];
        v->ip = p->source_ips[i % g->n_ips];
        v->key = g->n_ips > 1 ? v->ip : "";
        v->start = g->n_ips > 1 ? plan_source_start(p, v->ip) : NULL;
        v->hits = calloc(p->n_rules ? p->n_rules : 1, sizeof *v->hits);
        if (!v->hits)
            return err_set(e, IPW_ENOMEM, "out of memory");
        lane_state_init(&v->ls, &v->pp->ramp);
        struct store_provider row;
        r = engine_lane_row(g, v, &row, e);
        if (r == IPW_OK) {
            lane_state_from_row(&v->ls, &v->pp->ramp, &row);
            v->paused_seen_ms = row.paused_until_ms;
            store_provider_clear(&row);
        } else if (r != IPW_ENOTFOUND) {
            return r;
        }
        if (v->key[0] && v->ls.bo.last_deferral_ms > now - POOL_WINDOW_MS &&
            v->ls.bo.pause_reason[0]) {
            /* Its last throttling reply, for engine_pool_check. */
            struct reply rp;
            memset(&rp, 0, sizeof rp);
            reply_parse(v->ls.bo.pause_reason, strlen(v->ls.bo.pause_reason), &rp);
            char key[POOL_KEY_MAX];
            pool_key(NULL, rp.code, rp.enhanced[0] ? rp.enhanced : NULL, key, sizeof key);
            pool_hit_add(v->recent, &v->n_recent, key, v->ls.bo.last_deferral_ms);
        }
        if (window > 0) {
            struct engine_hits_ctx hc = {.g = g, .v = v};
            r = store_attempts_since(g->st, v->pp->name, now - window, engine_hits_cb, &hc, e);
            if (r != IPW_OK)
                return r;
        }
        r = engine_lane_refresh(g, v, now, e);
        if (r != IPW_OK)
            return r;
        struct engine_refusals_ctx rc = {.v = v, .now = now};
        r = store_rules_each(g->st, v->pp->name, now - ENGINE_REFUSALS_WINDOW_MS, 0,
                             engine_refusals_cb, &rc, e);
        if (r != IPW_OK)
            return r;
    }
    g->seq = engine_last_attempt_id(g);
    if (g->o->transport) {
        g->tr = *g->o->transport;
    } else {
        r = g->o->dry_run ? transport_dry_new(&g->tr, e)
                          : transport_curl_new(0, engine_mask, &g->tr, e);
        if (r != IPW_OK)
            return r;
        g->own_tr = true;
    }
    r = engine_list_open(g, e);
    if (r != IPW_OK)
        return r;
    r = message_tmpl_load(p, g->columns, g->n_columns, &g->tmpl, e);
    if (r != IPW_OK)
        return r;
    if (p->dkim) {
        r = dkim_key_load(p->dkim_key_file, &g->dkim, e);
        if (r != IPW_OK)
            return r;
    }
    /* The unsubscribe token needs the secret only when a template or the header uses it. */
    const char *uses[] = {g->tmpl->subject, g->tmpl->text, g->tmpl->html, p->list_unsubscribe};
    bool need = false;
    for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++)
        if (uses[i] && strstr(uses[i], "token"))
            need = true;
    /* VERP tokens are authenticated with the same secret. */
    if (p->feedback.enabled && p->feedback.verp)
        need = true;
    if (need) {
        char *def = token_secret_default_path(store_path(g->st));
        if (!def)
            return err_set(e, IPW_ENOMEM, "out of memory");
        r = token_secret_load(def, &g->token, e);
        free(def);
        if (r != IPW_OK)
            return r;
        g->have_token = true;
    }
    return IPW_OK;
}

static void engine_teardown(struct engine *g)
{
    if (g->own_tr)
        transport_free(&g->tr);
    while (g->flights)
        engine_flight_free(g->flights);
    for (size_t i = 0; i < g->n_lanes; i++) {
        free(g->lanes[i].hits);
        free(g->lanes[i].actions);
    }
    for (size_t i = 0; g->queues && i < g->p->n_providers; i++) {
        struct engine_queue *qu = &g->queues[i];
        for (size_t k = 0; k < qu->q_n; k++)
            engine_qrec_free(&qu->q[(qu->q_head + k) % qu->q_cap]);
        free(qu->q);
    }
    free(g->lanes);
    free(g->queues);
    if (g->tmpl)
        message_tmpl_free(g->tmpl);
    if (g->list)
        recipients_close(g->list);
    if (g->list_lookup)
        recipients_close(g->list_lookup);
    for (size_t i = 0; i < g->n_mx; i++)
        dns_mx_result_clear(&g->mx[i]);
    free(g->mx);
    free(g->mx_expires);
    strmap_free(&g->mx_index);
    strmap_free(&g->claimed);
    dkim_key_free(g->dkim);
    token_secret_clear(&g->token);
    free(g->relay_host);
    free(g->relay_ip);
    if (g->relay_password) {
        volatile char *pw = g->relay_password;
        while (*pw)
            *pw++ = '\0';
        free(g->relay_password);
    }
}

/* ---- the loop ---- */

/* The earliest retry still to come (a pending recipient due after now), or INT64_MAX. A plain
 * read through the store's connection: the partial index over pending rows answers it. */
static int64_t engine_next_retry(struct engine *g, int64_t now)
{
    sqlite3_stmt *s = NULL;
    int64_t next = INT64_MAX;
    if (sqlite3_prepare_v2(store_db(g->st),
                           "SELECT min(next_at_ms) FROM recipients WHERE state = 'pending' "
                           "AND next_at_ms > ?1",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, now);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
            next = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return next;
}

/* The provider's ramp state for today: its stored one, or the one its first send of today
 * will begin (growth earned by yesterday's counts). */
static ipw_status engine_ramp_today(struct engine *g, struct engine_lane *v, const char *today,
                                    struct ramp_state *out, enum ramp_change *why, struct err *e)
{
    *why = RAMP_SAME_DAY;
    if (strcmp(v->ls.ramp.day_date, today) == 0) {
        *out = v->ls.ramp;
        return IPW_OK;
    }
    struct ramp_day_counts prev;
    ipw_status r = engine_day_counts(g, v, v->ls.ramp.day_date, &prev, e);
    if (r != IPW_OK)
        return r;
    return ramp_begin_day(&v->pp->ramp, &v->ls.ramp, &prev, today, out, why, e);
}

static void engine_progress(struct engine *g, int64_t now)
{
    FILE *out = g->o->progress;
    if (!out)
        return;
    fprintf(out,
            "\r\033[Kipwarm: %lld sent: %lld delivered, %lld deferred, %lld bounced, %lld "
            "failed; %d in flight",
            (long long)g->sum->attempts, (long long)g->sum->delivered, (long long)g->sum->deferred,
            (long long)g->sum->bounced, (long long)g->sum->failed, g->inflight);
    for (size_t i = 0; i < g->n_lanes; i++) {
        struct engine_lane *v = &g->lanes[i];
        if (!v->ls.stored)
            continue;
        char rate[32];
        if (v->ls.bo.paused_until_ms > now)
            fprintf(out, " | %s%s%s paused", v->pp->name, v->key[0] ? " " : "", v->key);
        else
            fprintf(out, " | %s%s%s %s", v->pp->name, v->key[0] ? " " : "", v->key,
                    units_format_rate(rate, sizeof rate,
                                      backoff_effective_rate(&v->ls.bo, &g->p->backoff, now)));
    }
    fflush(out);
}

ipw_status engine_run(const struct plan *p, struct store *st, struct dns *dns,
                      const struct engine_opts *o, struct engine_summary *sum, struct err *e)
{
    memset(sum, 0, sizeof *sum);
    struct engine g;
    memset(&g, 0, sizeof g);
    g.p = p;
    g.st = st;
    g.dns = dns;
    g.o = o;
    g.sum = sum;
    g.clk = o->clock ? o->clock : clock_system();
    int64_t start_real = engine_real(&g);
    int64_t send_until_real = 0;
    if (o->once) {
        send_until_real = start_real + ENGINE_TICK_SEND_MS;
        g.hard_end_real_ms = start_real + ENGINE_TICK_MAX_MS;
    } else if (o->for_ms > 0) {
        send_until_real = start_real + o->for_ms;
    }
    int64_t now = engine_now(&g);
    ipw_status r = engine_setup(&g, now, e);
    if (r == IPW_OK)
        r = engine_import(&g, ENGINE_IMPORT_CHUNK, now, e);

    struct sched_lane *slots = calloc(g.n_lanes ? g.n_lanes : 1, sizeof *slots);
    struct ramp_state *today_ramp = calloc(g.n_lanes ? g.n_lanes : 1, sizeof *today_ramp);
    enum ramp_change *today_why = calloc(g.n_lanes ? g.n_lanes : 1, sizeof *today_why);
    if (r == IPW_OK && (!slots || !today_ramp || !today_why))
        r = err_set(e, IPW_ENOMEM, "out of memory");

    struct pace_frame fr;
    memset(&fr, 0, sizeof fr);
    int64_t frame_valid = 0, next_refresh = 0, import_after = 0;
    bool stopping = false, aborted = false;
    int64_t stop_real = 0; /* when stopping began */
    struct engine_done_ctx dc = {.g = &g, .r = IPW_OK, .e = e};
    while (r == IPW_OK) {
        now = engine_now(&g);
        int64_t real = engine_real(&g);
        bool signalled = (o->stop && *o->stop) || g.fatal;
        if (!stopping && (signalled || (send_until_real && real >= send_until_real))) {
            stopping = true;
            stop_real = real;
        }
        /* What is in flight when the run must end is ended: at once after a short grace on
         * a signal (an operator or systemd waits), at the tick's hard end, or after a longer
         * grace at the end of --for. A transaction whose final dot had gone comes back
         * unknown and its recipient is held; the others are requeued. */
        if (stopping && !aborted && g.inflight > 0 &&
            (g.fatal || (signalled && real - stop_real >= ENGINE_STOP_GRACE_MS) ||
             (g.hard_end_real_ms && real >= g.hard_end_real_ms) ||
             real - stop_real >= ENGINE_DRAIN_MS)) {
            g.tr.ops->abort(g.tr.impl);
            aborted = true;
            stop_real = real;
        }
        if (stopping && g.inflight == 0)
            break;
        if (aborted && real - stop_real >= ENGINE_ABORT_WAIT_MS)
            break; /* never expected: what is left in flight is held by the next run */
        int64_t wait_until = now + ENGINE_REFRESH_MS;
        if (!stopping) {
            if (now >= frame_valid) {
                r = pace_frame_at(&p->schedule, p->timezone, now, &fr, e);
                if (r != IPW_OK)
                    break;
                frame_valid = fr.valid_until_ms;
                /* A new local date: work out each provider's stage for it afresh. */
                for (size_t i = 0; i < g.n_lanes; i++)
                    today_ramp[i].day_date[0] = '\0';
                if (!g.o->dry_run && p->n_seeds > 0) {
                    r = engine_seeds_requeue(&g, fr.today, now, e);
                    if (r != IPW_OK)
                        break;
                }
            }
            /* Before the refresh, which ends a run whose recipients are all done: late
             * bounces and complaints keep coming after the last message. */
            if (g.feedback_next_ms && now >= g.feedback_next_ms) {
                engine_feedback_poll(&g, now);
                /* The poll took time, and may have suspended a provider: look at the clock
                 * and the stored actions again before anything is sent. */
                next_refresh = 0;
                continue;
            }
            if (now >= next_refresh) {
                next_refresh = now + ENGINE_REFRESH_MS;
                bool starving = false;
                for (size_t i = 0; i < g.n_lanes && r == IPW_OK; i++) {
                    r = engine_lane_refresh(&g, &g.lanes[i], now, e);
                    if (r == IPW_OK && backoff_tick(&g.lanes[i].ls.bo, &p->backoff, now))
                        r = engine_lane_save(&g, &g.lanes[i], now, e);
                    if (r == IPW_OK) {
                        g.lanes[i].qu->refill_after_ms = 0;
                        r = engine_fill(&g, &g.lanes[i], now, e);
                    }
                    if (g.lanes[i].qu->q_n == 0)
                        starving = true;
                }
                if (r == IPW_OK && starving && !g.list_eof)
                    r = engine_import(&g, ENGINE_IMPORT_CHUNK, now, e);
                if (r == IPW_OK)
                    r = engine_list_poll(&g, now, e);
                if (r != IPW_OK)
                    break;
                if (p->recipients_mode == PLAN_RCPT_ONCE && g.list_eof && g.inflight == 0) {
                    bool empty = true;
                    for (size_t i = 0; i < g.n_lanes; i++)
                        if (g.lanes[i].qu->q_n)
                            empty = false;
                    int64_t pending = 0;
                    if (empty && !o->dry_run)
                        r = store_recipients_count(st, "pending", &pending, e);
                    if (r != IPW_OK)
                        break;
                    if (empty && pending == 0) {
                        sum->all_done = true;
                        break;
                    }
                }
                engine_progress(&g, now);
            }
            if (!g.list_eof && now >= import_after) {
                /* A provider ran dry while the list has more: read the next chunk now, not at
                 * the next refresh, or the list (one chunk a second), not the pace, sets the
                 * rate (bench/ measured 2,000 messages a second). A chunk that fed none of the
                 * dry providers (their recipients are rare in the list) leaves the next read
                 * to the refresh, as before. */
                bool dry[64] = {false}, any = false;
                for (size_t i = 0; i < g.n_lanes && r == IPW_OK; i++) {
                    r = engine_fill(&g, &g.lanes[i], now, e);
                    if (g.lanes[i].qu->q_n == 0 && i < 64)
                        dry[i] = any = true;
                }
                if (r == IPW_OK && any)
                    r = engine_import(&g, ENGINE_IMPORT_CHUNK, now, e);
                bool fed = false;
                for (size_t i = 0; i < g.n_lanes && i < 64 && r == IPW_OK && any; i++) {
                    if (!dry[i])
                        continue;
                    g.lanes[i].qu->refill_after_ms = 0;
                    r = engine_fill(&g, &g.lanes[i], now, e);
                    if (g.lanes[i].qu->q_n > 0)
                        fed = true;
                }
                if (r != IPW_OK)
                    break;
                import_after = any && !fed ? now + ENGINE_REFRESH_MS : 0;
            }
            for (size_t i = 0; i < g.n_lanes && r == IPW_OK; i++) {
                struct engine_lane *v = &g.lanes[i];
                r = engine_fill(&g, v, now, e);
                if (r != IPW_OK)
                    break;
                if (strcmp(today_ramp[i].day_date, fr.today) != 0) {
                    r = engine_ramp_today(&g, v, fr.today, &today_ramp[i], &today_why[i], e);
                    if (r != IPW_OK)
                        break;
                }
                slots[i] = (struct sched_lane){
                    .state = &v->ls,
                    .today = &today_ramp[i],
                    .ramp = &v->pp->ramp,
                    .actions = v->actions,
                    .n_actions = v->n_actions,
                    /* An IP that source.start names sends nothing before its date. */
                    .has_work = v->qu->q_n > 0 && engine_lane_started(v, fr.today),
                    .busy = v->inflight >= p->connections_per_provider,
                };
            }
            if (r != IPW_OK)
                break;
            /* The frame's facts (date, windows) hold until valid_until, but lateness is judged
             * against now: a provider back from a pause whose planned times have passed starts
             * a new sequence at now instead of catching up with a burst. */
            fr.now_ms = now;
            struct sched_pick pk = sched_next(slots, g.n_lanes, &p->backoff, &fr, NULL);
            if (pk.lane >= 0 && pk.at_ms <= now) {
                size_t i = (size_t)pk.lane;
                struct engine_lane *v = &g.lanes[i];
                if (strcmp(v->ls.ramp.day_date, fr.today) != 0) {
                    /* The first message of a sending day begins the day's stage. */
                    if (o->log && today_why[i] != RAMP_SAME_DAY)
                        fprintf(o->log, "ipwarm: %s%s%s: sending day %d (%s): %s, rate %g/min\n",
                                v->pp->name, v->key[0] ? " from " : "", v->key,
                                today_ramp[i].sending_day, fr.today, ramp_change_name(today_why[i]),
                                today_ramp[i].rate_per_min);
                    v->ls.ramp = today_ramp[i];
                    backoff_set_planned(&v->ls.bo, v->ls.ramp.rate_per_min);
                }
                if (strcmp(v->ls.sent_date, fr.today) != 0) {
                    snprintf(v->ls.sent_date, sizeof v->ls.sent_date, "%s", fr.today);
                    v->ls.sent_today = 0;
                }
                pace_seq_commit(&v->ls.seq, pk.rate_per_min, pk.at_ms);
                v->ls.sent_today++;
                /* Saved with the attempt record (engine_attempt_begin); any path that ends
                 * without one saves it here. */
                v->dirty = true;
                r = engine_send(&g, i, now, e);
                if (r == IPW_OK && v->dirty)
                    r = engine_lane_save(&g, v, now, e);
                continue;
            }
            if (o->once && g.inflight == 0 && g.list_eof) {
                /* A cron tick with nothing to send before its end returns at once, so that
                 * an idle minute costs milliseconds. */
                int64_t tick_end = now + (send_until_real - engine_real(&g));
                int64_t next = pk.at_ms;
                int64_t retry = o->dry_run ? INT64_MAX : engine_next_retry(&g, now);
                if (retry < next)
                    next = retry;
                if (next > tick_end)
                    break;
            }
            if (pk.at_ms < wait_until)
                wait_until = pk.at_ms;
            if (next_refresh < wait_until)
                wait_until = next_refresh;
        }
        int timeout = (int)(wait_until - now);
        if (timeout < 0)
            timeout = 0;
        if (timeout > ENGINE_REFRESH_MS)
            timeout = ENGINE_REFRESH_MS;
        if (stopping)
            timeout = 100;
        if (g.inflight > 0) {
            int before = g.inflight;
            g.tr.ops->perform(g.tr.impl, timeout, engine_done_cb, &dc);
            if (dc.r != IPW_OK)
                r = dc.r;
            /* The last message in flight ended with the list read: look now whether all is
             * done, so that a once-list run ends at once rather than at the next refresh. */
            if (before > 0 && g.inflight == 0 && g.list_eof)
                next_refresh = 0;
        } else if (timeout > 0) {
            g.clk->sleep_ms(g.clk->ctx, timeout);
        }
    }
    if (r == IPW_OK && g.fatal)
        r = err_set(e, g.fatal, "%s", g.fatal_msg);
    if (o->progress) {
        engine_progress(&g, engine_now(&g));
        fputc('\n', o->progress);
    }
    free(slots);
    free(today_ramp);
    free(today_why);
    engine_teardown(&g);
    return r;
}
