/*
 * engine: the warm-up loop behind `ipwarm run` (see engine.h).
 *
 * One event loop drives everything: libcurl's multi interface carries the SMTP transactions
 * (smtp.c), and between completions the loop asks pace_pick() which provider is due next and
 * when. Decisions are the pure modules' (ramp, pace, backoff, reply, provider); this file only
 * gathers their inputs from the store, applies their answers and writes the results back.
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
#include "ipwarm/message.h"
#include "ipwarm/pace.h"
#include "ipwarm/provider.h"
#include "ipwarm/ramp.h"
#include "ipwarm/recipients.h"
#include "ipwarm/reply.h"
#include "ipwarm/secret.h"
#include "ipwarm/smtp.h"
#include "ipwarm/template.h"
#include "ipwarm/token.h"
#include "ipwarm/tz.h"
#include "ipwarm/units.h"

/* Recipients read from the list per import step, and the queue depth that triggers one. */
#define ENGINE_IMPORT_CHUNK 2000
/* Due recipients fetched per provider at a time. */
#define ENGINE_QUEUE_BATCH 64
/* How long an MX answer is trusted at most, and how long a temporary failure is remembered. */
#define ENGINE_MX_TTL_MAX_MS (24 * 3600000LL)
#define ENGINE_MX_TTL_MIN_MS 60000
/* The loop looks at the store (manual holds, newly due retries) at least this often. */
#define ENGINE_REFRESH_MS 1000

/* ---- a small string-keyed hash table ---- */

struct engine_map {
    char **keys;
    long *vals;
    size_t cap, n;
};

static uint64_t engine_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static long *engine_map_find(struct engine_map *m, const char *key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = engine_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (strcmp(m->keys[i], key) == 0)
            return &m->vals[i];
    }
}

static int engine_map_put(struct engine_map *m, const char *key, long val)
{
    long *v = engine_map_find(m, key);
    if (v) {
        *v = val;
        return 0;
    }
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        char **nk = calloc(ncap, sizeof *nk);
        long *nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = engine_hash(m->keys[i]) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    size_t i = engine_hash(key) & (m->cap - 1);
    while (m->keys[i])
        i = (i + 1) & (m->cap - 1);
    m->keys[i] = strdup(key);
    if (!m->keys[i])
        return -1;
    m->vals[i] = val;
    m->n++;
    return 0;
}

/* Removing keeps the probe chains intact by re-inserting the cluster after the hole. */
static void engine_map_del(struct engine_map *m, const char *key)
{
    if (!m->cap)
        return;
    size_t i = engine_hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        return;
    free(m->keys[i]);
    m->keys[i] = NULL;
    m->n--;
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        char *k = m->keys[j];
        long v = m->vals[j];
        m->keys[j] = NULL;
        size_t t = engine_hash(k) & (m->cap - 1);
        while (m->keys[t])
            t = (t + 1) & (m->cap - 1);
        m->keys[t] = k;
        m->vals[t] = v;
    }
}

static void engine_map_free(struct engine_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- transports: libcurl, or the dry-run stand-in ---- */

struct engine_transport {
    ipw_status (*submit)(void *impl, const struct smtp_job *job, struct err *e);
    int (*perform)(void *impl, int timeout_ms, smtp_done_fn done, void *arg);
    void (*free)(void *impl);
    void *impl;
};

static ipw_status engine_curl_submit(void *impl, const struct smtp_job *job, struct err *e)
{
    return smtp_submit(impl, job, e);
}

static int engine_curl_perform(void *impl, int timeout_ms, smtp_done_fn done, void *arg)
{
    return smtp_perform(impl, timeout_ms, done, arg);
}

static void engine_curl_free(void *impl)
{
    smtp_free(impl);
}

/* The dry run accepts each message at once, without a connection. */
struct engine_dry {
    void **users;
    size_t n, cap;
};

static ipw_status engine_dry_submit(void *impl, const struct smtp_job *job, struct err *e)
{
    struct engine_dry *d = impl;
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 16;
        void **nu = realloc(d->users, ncap * sizeof *nu);
        if (!nu)
            return err_set(e, IPW_ENOMEM, "out of memory");
        d->users = nu;
        d->cap = ncap;
    }
    d->users[d->n++] = job->user;
    return IPW_OK;
}

static int engine_dry_perform(void *impl, int timeout_ms, smtp_done_fn done, void *arg)
{
    struct engine_dry *d = impl;
    if (d->n == 0 && timeout_ms > 0) {
        struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    while (d->n > 0) {
        struct smtp_result r;
        memset(&r, 0, sizeof r);
        r.user = d->users[--d->n];
        r.phase = SMTP_PHASE_DATA;
        r.code = 250;
        r.reply = (char *)"250 2.0.0 dry run: accepted without connecting";
        r.delivered = true;
        r.started_ms = r.finished_ms = clock_real_ms();
        done(&r, arg);
    }
    return 0;
}

static void engine_dry_free(void *impl)
{
    struct engine_dry *d = impl;
    free(d->users);
    free(d);
}

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

struct engine_prov {
    const struct plan_provider *pp;
    size_t index;
    bool loaded; /* a row exists in the store */
    struct ramp_state ramp;
    struct backoff_state bo;
    struct pace_seq seq;
    int64_t sent_today;
    char sent_date[TZ_DATE_MAX];
    int64_t paused_seen_ms; /* paused_until_ms as last read or written, to notice `pause` */
    int pause_manual;
    char last_reply[512];
    int64_t last_reply_ms;
    struct backoff_rule_hits *hits; /* one per plan rule */
    struct backoff_action *actions; /* active ones, from the store */
    size_t n_actions;
    int inflight;
    struct engine_qrec *q; /* due recipients, FIFO */
    size_t q_head, q_n, q_cap;
    int64_t refill_after_ms; /* the queue was found empty: look again then */
    bool dirty; /* state changed by a pick and not saved yet: goes with the attempt record */
};

/* A message in flight. */
struct engine_flight {
    struct engine *eng;
    int64_t attempt_id;
    size_t prov;
    struct engine_qrec rec;
    struct message msg;
    char *mx_hosts[16]; /* direct mode: the MX hosts still to try, best first */
    char *mx_addrs[16];
    size_t n_mx, mx_i;
    char source_ip[64];
    char message_id[256];
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
    struct engine_transport tr;
    struct engine_prov *prov;
    size_t n_prov;
    struct message_tmpl *tmpl;
    struct recipients *list;
    struct recipients *list_lookup; /* a second reader to fetch a recipient's columns */
    const char *const *columns;
    size_t n_columns;
    bool list_eof;
    int64_t list_offset;
    long list_line;
    struct engine_map mx_index; /* domain -> index in mx[] */
    struct dns_mx_result *mx;
    int64_t *mx_expires;
    size_t n_mx, cap_mx;
    struct engine_map claimed; /* addresses in flight (and, in a dry run, done) */
    int64_t seq;
    size_t source_rr;
    char *relay_host;
    int relay_port;
    bool relay_tls;
    char *relay_password;
    int inflight;
    int64_t hard_end_real_ms; /* real time by which everything must be over; 0 = none */
    struct dkim_key *dkim;     /* sender.dkim's key, loaded once */
    struct token_secret token; /* for {{token}} and List-Unsubscribe */
    struct engine_flight *flights; /* submitted and not yet finished, freed at teardown */
    bool have_token;
};

/* ---- providers: loading and saving their state ---- */

static void engine_prov_from_row(struct engine *g, struct engine_prov *v,
                                 const struct store_provider *row)
{
    v->loaded = true;
    v->ramp.stage = row->stage;
    v->ramp.sending_day = row->sending_day;
    snprintf(v->ramp.day_date, sizeof v->ramp.day_date, "%s",
             row->sending_day_date ? row->sending_day_date : "");
    v->ramp.rate_per_min = ramp_rate_for_stage(&v->pp->ramp, row->stage);
    backoff_state_init(&v->bo, v->ramp.rate_per_min);
    if (row->rate_per_min > 0 && row->rate_per_min < v->ramp.rate_per_min)
        v->bo.rate_per_min = row->rate_per_min;
    v->bo.paused_until_ms = row->paused_until_ms;
    v->bo.pause_level = row->pause_level;
    v->bo.last_deferral_ms = row->last_deferral_ms;
    v->bo.last_recover_ms = row->rate_changed_ms;
    snprintf(v->bo.pause_reason, sizeof v->bo.pause_reason, "%s",
             row->pause_reason ? row->pause_reason : "");
    v->paused_seen_ms = row->paused_until_ms;
    v->pause_manual = row->pause_manual;
    v->sent_today = row->sent_today;
    snprintf(v->sent_date, sizeof v->sent_date, "%s",
             row->sent_today_date ? row->sent_today_date : "");
    snprintf(v->last_reply, sizeof v->last_reply, "%s", row->last_reply ? row->last_reply : "");
    v->last_reply_ms = row->last_reply_ms;
    v->seq.anchor_ms = row->pace_anchor_ms;
    v->seq.n = row->pace_n;
    v->seq.rate_per_min = row->pace_rate;
    (void)g;
}

static ipw_status engine_prov_save(struct engine *g, struct engine_prov *v, int64_t now,
                                   struct err *e)
{
    if (g->o->dry_run)
        return IPW_OK;
    struct store_provider row = {
        .name = v->pp->name,
        .stage = v->ramp.stage,
        .sending_day = v->ramp.sending_day,
        .sending_day_date = v->ramp.day_date[0] ? v->ramp.day_date : NULL,
        .rate_per_min = v->bo.rate_per_min > 0 ? v->bo.rate_per_min : v->ramp.rate_per_min,
        .sent_today = v->sent_today,
        .sent_today_date = v->sent_date[0] ? v->sent_date : NULL,
        .paused_until_ms = v->bo.paused_until_ms,
        .pause_reason = v->bo.pause_reason[0] ? v->bo.pause_reason : NULL,
        .pause_level = v->bo.pause_level,
        .pause_manual = v->pause_manual,
        .last_deferral_ms = v->bo.last_deferral_ms,
        .rate_changed_ms = v->bo.last_recover_ms > v->bo.last_deferral_ms
                               ? v->bo.last_recover_ms
                               : v->bo.last_deferral_ms,
        .last_reply = v->last_reply[0] ? v->last_reply : NULL,
        .last_reply_ms = v->last_reply_ms,
        .next_send_ms = v->seq.rate_per_min > 0 ? pace_seq_due(&v->seq, v->seq.rate_per_min, now)
                                                 : 0,
        .updated_ms = now,
        .pace_anchor_ms = v->seq.anchor_ms,
        .pace_n = v->seq.n,
        .pace_rate = v->seq.rate_per_min,
    };
    ipw_status r = store_provider_save(g->st, &row, e);
    if (r == IPW_OK) {
        v->loaded = true;
        v->dirty = false;
        v->paused_seen_ms = v->bo.paused_until_ms;
    }
    return r;
}

/* Records the attempt a before it starts, and with it, in the same transaction, the state the
 * pick changed (pace step, count of the day) when it is not saved yet. One commit per message
 * instead of two: bench/ showed the commits, not the SMTP dialogue, bounding the send rate. */
static ipw_status engine_attempt_begin(struct engine *g, struct engine_prov *v, int64_t now,
                                       const struct store_attempt *a, int64_t *id,
                                       struct err *e)
{
    if (!v->dirty || g->o->dry_run)
        return store_attempt_begin(g->st, a, id, e);
    ipw_status r = store_batch_begin(g->st, e);
    if (r == IPW_OK)
        r = engine_prov_save(g, v, now, e);
    if (r == IPW_OK)
        r = store_attempt_begin(g->st, a, id, e);
    return store_batch_end(g->st, r, e);
}

struct engine_rule_ctx {
    struct engine_prov *v;
    ipw_status r;
    struct err *e;
};

static int engine_rule_cb(const struct store_rule_action *a, void *arg)
{
    struct engine_rule_ctx *c = arg;
    struct engine_prov *v = c->v;
    struct backoff_action *n = realloc(v->actions, (v->n_actions + 1) * sizeof *n);
    if (!n) {
        c->r = err_set(c->e, IPW_ENOMEM, "out of memory");
        return 1;
    }
    v->actions = n;
    struct backoff_action *b = &v->actions[v->n_actions++];
    memset(b, 0, sizeof *b);
    b->name = "stored";
    /* A manual `pause` holds the provider like a suspension. */
    if (strcmp(a->action, "throttle") == 0)
        b->action = PLAN_ACTION_THROTTLE;
    else if (strcmp(a->action, "bounce") == 0)
        b->action = PLAN_ACTION_BOUNCE;
    else
        b->action = PLAN_ACTION_SUSPEND;
    b->rate_per_min = a->rate_per_min;
    b->started_ms = a->started_ms;
    b->expires_ms = a->expires_ms ? a->expires_ms : INT64_MAX;
    return 0;
}

/* Reloads the provider's active actions and notices holds set or lifted by `pause`/`resume`. */
static ipw_status engine_prov_refresh(struct engine *g, struct engine_prov *v, int64_t now,
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
    r = store_provider_load(g->st, v->pp->name, &row, e);
    if (r == IPW_ENOTFOUND)
        return IPW_OK;
    if (r != IPW_OK)
        return r;
    if (row.paused_until_ms != v->paused_seen_ms || row.pause_manual != v->pause_manual) {
        /* Another process (pause, resume) changed the hold: its word wins. */
        v->bo.paused_until_ms = row.paused_until_ms;
        v->paused_seen_ms = row.paused_until_ms;
        v->pause_manual = row.pause_manual;
        snprintf(v->bo.pause_reason, sizeof v->bo.pause_reason, "%s",
                 row.pause_reason ? row.pause_reason : "");
    }
    store_provider_clear(&row);
    return IPW_OK;
}

/* ---- the previous sending day's counts, for earned growth ---- */

struct engine_day_ctx {
    struct ramp_day_counts c;
};

static int engine_day_cb(const struct store_summary_row *row, void *arg)
{
    struct engine_day_ctx *c = arg;
    c->c.attempts += row->attempts;
    c->c.deferred += row->deferred + row->failed;
    c->c.bounced += row->bounced;
    return 0;
}

static ipw_status engine_day_counts(struct engine *g, struct engine_prov *v, const char *date,
                                    struct ramp_day_counts *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (!date[0])
        return IPW_OK;
    int64_t from, to;
    char next[TZ_DATE_MAX];
    ipw_status r = tz_local_midnight_utc(g->p->timezone, date, &from, e);
    if (r == IPW_OK)
        r = tz_next_day(date, next, e);
    if (r == IPW_OK)
        r = tz_local_midnight_utc(g->p->timezone, next, &to, e);
    if (r != IPW_OK)
        return r;
    struct engine_day_ctx c;
    memset(&c, 0, sizeof c);
    r = store_summary_each(g->st, v->pp->name, from, to, engine_day_cb, &c, e);
    *out = c.c;
    return r;
}

/* ---- rule trigger counts, rebuilt from recent replies ---- */

struct engine_hits_ctx {
    struct engine *g;
    struct engine_prov *v;
};

static int engine_hits_cb(const struct store_attempt *a, void *arg)
{
    struct engine_hits_ctx *c = arg;
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
    long *idx = engine_map_find(&g->mx_index, domain);
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
    if (engine_map_put(&g->mx_index, domain, (long)g->n_mx) != 0) {
        dns_mx_result_clear(&g->mx[g->n_mx]);
        err_set(e, IPW_ENOMEM, "out of memory");
        return NULL;
    }
    return &g->mx[g->n_mx++];
}

/* Resolves the domains of a batch in parallel, so that the first sends need not wait. */
static ipw_status engine_mx_prefetch(struct engine *g, const char **domains, size_t n,
                                     int64_t now, struct err *e)
{
    const char **todo = calloc(n ? n : 1, sizeof *todo);
    if (!todo)
        return err_set(e, IPW_ENOMEM, "out of memory");
    size_t k = 0;
    struct engine_map seen = {0};
    for (size_t i = 0; i < n; i++) {
        long *idx = engine_map_find(&g->mx_index, domains[i]);
        if ((idx && g->mx_expires[*idx] > now) || engine_map_find(&seen, domains[i]))
            continue;
        engine_map_put(&seen, domains[i], 1);
        todo[k++] = domains[i];
    }
    engine_map_free(&seen);
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
                long *idx = engine_map_find(&g->mx_index, todo[i]);
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
                if (engine_map_put(&g->mx_index, todo[i], (long)g->n_mx) != 0) {
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

static ipw_status engine_list_open(struct engine *g, struct err *e)
{
    ipw_status r = recipients_open(g->p->recipients_file, g->p->recipients_column, &g->list, e);
    if (r != IPW_OK)
        return r;
    r = recipients_open(g->p->recipients_file, g->p->recipients_column, &g->list_lookup, e);
    if (r != IPW_OK)
        return r;
    g->columns = recipients_columns(g->list, &g->n_columns);
    /* Continue where the last run stopped reading, unless the list was replaced by a shorter
     * one. */
    char *path = NULL, *off = NULL, *line = NULL;
    g->list_offset = recipients_data_offset(g->list);
    g->list_line = recipients_data_line(g->list);
    if (store_meta_get(g->st, "list.path", &path, NULL) == IPW_OK &&
        strcmp(path, g->p->recipients_file) == 0 &&
        store_meta_get(g->st, "list.offset", &off, NULL) == IPW_OK &&
        store_meta_get(g->st, "list.line", &line, NULL) == IPW_OK) {
        long long o = strtoll(off, NULL, 10);
        long l = strtol(line, NULL, 10);
        if (o >= g->list_offset && l >= g->list_line) {
            if (recipients_seek(g->list, o, l, NULL) == IPW_OK) {
                g->list_offset = o;
                g->list_line = l;
            }
        }
    }
    free(path);
    free(off);
    free(line);
    return IPW_OK;
}

/* Reads up to max records of the list into the queue, resolving their MX first. */
static ipw_status engine_import(struct engine *g, size_t max, int64_t now, struct err *e)
{
    if (g->list_eof || max == 0)
        return IPW_OK;
    struct pending {
        char *address, *domain;
        int64_t offset;
        long line;
    } *batch = calloc(max, sizeof *batch);
    const char **domains = calloc(max, sizeof *domains);
    if (!batch || !domains) {
        free(batch);
        free(domains);
        return err_set(e, IPW_ENOMEM, "out of memory");
    }
    size_t n = 0;
    ipw_status r = IPW_OK;
    int64_t end_offset = g->list_offset;
    long end_line = g->list_line;
    while (n < max) {
        struct recipients_rec rec;
        struct err le;
        ipw_status lr = recipients_next(g->list, &rec, &le);
        if (lr == IPW_ENOTFOUND) {
            g->list_eof = true;
            break;
        }
        if (lr == IPW_EDATA) {
            /* A bad line is reported and skipped: the rest of the list still goes out. */
            if (g->o->log)
                fprintf(g->o->log, "ipwarm: skipping a bad recipient: %s\n", le.msg);
            end_offset = rec.next_offset;
            end_line = rec.next_line;
            continue;
        }
        if (lr != IPW_OK) {
            r = err_set(e, lr, "%s", le.msg);
            break;
        }
        batch[n].address = strdup(rec.address);
        batch[n].domain = strdup(rec.domain);
        batch[n].offset = rec.offset;
        batch[n].line = rec.line;
        if (!batch[n].address || !batch[n].domain) {
            free(batch[n].address);
            free(batch[n].domain);
            r = err_set(e, IPW_ENOMEM, "out of memory");
            break;
        }
        domains[n] = batch[n].domain;
        n++;
        end_offset = rec.next_offset;
        end_line = rec.next_line;
    }
    /* The MX lookups first, outside any transaction: holding the write lock through a DNS
     * timeout would make `pause` and `resume` wait for it. Then one transaction for the chunk's
     * queue rows. A dry run queues too: queued recipients are only pending, the real run later
     * sends them, and without a queue a dry run on a new state file would decide nothing. */
    if (r == IPW_OK && n > 0)
        r = engine_mx_prefetch(g, domains, n, now, e);
    bool in_tx = r == IPW_OK;
    if (in_tx)
        r = store_batch_begin(g->st, e);
    in_tx = in_tx && r == IPW_OK;
    if (r == IPW_OK) {
        for (size_t i = 0; r == IPW_OK && i < n; i++) {
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
            };
            if (engine_mx_undeliverable(m->status)) {
                /* Domains that cannot receive are set aside before any mail is queued. */
                snprintf(reason, sizeof reason, "%s cannot receive mail: %s", batch[i].domain,
                         engine_mx_why(m));
                q.state = "suppressed";
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
        if (r == IPW_OK) {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", (long long)end_offset);
            r = store_meta_set(g->st, "list.path", g->p->recipients_file, e);
            if (r == IPW_OK)
                r = store_meta_set(g->st, "list.offset", buf, e);
            snprintf(buf, sizeof buf, "%ld", end_line);
            if (r == IPW_OK)
                r = store_meta_set(g->st, "list.line", buf, e);
        }
    }
    if (in_tx)
        r = store_batch_end(g->st, r, e);
    if (r == IPW_OK) {
        g->list_offset = end_offset;
        g->list_line = end_line;
    }
    for (size_t i = 0; i < n; i++) {
        free(batch[i].address);
        free(batch[i].domain);
    }
    free(batch);
    free(domains);
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
    struct engine_prov *v;
    size_t added;
    int oom;
};

static int engine_fill_cb(const struct store_recipient *r, void *arg)
{
    struct engine_fill_ctx *c = arg;
    struct engine_prov *v = c->v;
    if (engine_map_find(&c->g->claimed, r->address))
        return 0;
    if (v->q_n == v->q_cap) {
        size_t ncap = v->q_cap ? v->q_cap * 2 : ENGINE_QUEUE_BATCH;
        struct engine_qrec *nq = calloc(ncap, sizeof *nq);
        if (!nq) {
            c->oom = 1;
            return 1;
        }
        for (size_t i = 0; i < v->q_n; i++)
            nq[i] = v->q[(v->q_head + i) % v->q_cap];
        free(v->q);
        v->q = nq;
        v->q_head = 0;
        v->q_cap = ncap;
    }
    struct engine_qrec *q = &v->q[(v->q_head + v->q_n) % v->q_cap];
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
    if (engine_map_put(&c->g->claimed, r->address, 1) != 0) {
        engine_qrec_free(q);
        c->oom = 1;
        return 1;
    }
    v->q_n++;
    c->added++;
    return 0;
}

static ipw_status engine_fill(struct engine *g, struct engine_prov *v, int64_t now,
                              struct err *e)
{
    if (v->q_n > 0 || now < v->refill_after_ms)
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
        v->refill_after_ms = now + ENGINE_REFRESH_MS;
    return IPW_OK;
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

/* The recipient's CSV columns, read again from its place in the list. */
static ipw_status engine_columns(struct engine *g, const struct engine_qrec *q,
                                 const char *const **values, size_t *n, struct err *e)
{
    *values = NULL;
    *n = 0;
    if (g->n_columns == 0 || q->list_offset < 0 || q->list_line <= 0)
        return IPW_OK;
    ipw_status r = recipients_seek(g->list_lookup, q->list_offset, q->list_line, e);
    if (r != IPW_OK)
        return r;
    struct recipients_rec rec;
    r = recipients_next(g->list_lookup, &rec, e);
    if (r != IPW_OK || !rec.address || strcasecmp(rec.address, q->address) != 0) {
        /* The list changed under us: send with the built-in placeholders only, which the
         * template check at start guarantees are enough only if no column is used; so refuse
         * clearly instead. */
        return err_set(e, IPW_EDATA,
                       "%s:%ld: the recipient list changed since %s was queued; its columns "
                       "cannot be read",
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
    struct engine_prov *v = &g->prov[f->prov];
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
    ipw_status r = engine_attempt_begin(g, v, now, &a, &f->attempt_id, e);
    if (r != IPW_OK)
        return r;
    int64_t command_ms = p->command_timeout_ms;
    int64_t connect_ms = p->connect_timeout_ms;
    if (g->hard_end_real_ms) {
        /* A cron tick or a --for run must end on time, whatever the server does. */
        int64_t left = g->hard_end_real_ms - clock_real_ms();
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
        .connect_ip = p->mode == PLAN_RELAY ? NULL : f->mx_addrs[f->mx_i],
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
        .mail_from = p->return_path,
        .rcpt = f->rec.address,
        .data = f->msg.data,
        .len = f->msg.len,
        .user = f,
    };
    r = g->tr.submit(g->tr.impl, &job, e);
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

/* Finishes the attempt of f that could not start (no MX, DNS trouble, a bad template) and
 * moves the recipient on, without an SMTP transaction. */
static ipw_status engine_finish_local(struct engine *g, struct engine_flight *f, int64_t now,
                                      const char *outcome, const char *text,
                                      const struct store_recipient_update *u, struct err *e);

/* Takes the next recipient of provider pi and starts its message. */
static ipw_status engine_send(struct engine *g, size_t pi, int64_t now, struct err *e)
{
    const struct plan *p = g->p;
    struct engine_prov *v = &g->prov[pi];
    struct engine_flight *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(e, IPW_ENOMEM, "out of memory");
    f->eng = g;
    f->prov = pi;
    f->rec = v->q[v->q_head];
    memset(&v->q[v->q_head], 0, sizeof v->q[v->q_head]);
    v->q_head = (v->q_head + 1) % v->q_cap;
    v->q_n--;
    snprintf(f->source_ip, sizeof f->source_ip, "%s",
             p->source_ips[g->source_rr++ % p->n_source_ips]);
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
            char text[512];
            snprintf(text, sizeof text, "MX lookup of %s failed temporarily: %s", f->rec.domain,
                     m->detail);
            int64_t next;
            struct store_recipient_update u = {.step = STORE_RCPT_RETRY};
            const char *outcome = "failed";
            if (backoff_retry_next(&p->backoff, f->rec.retries,
                                   f->rec.first_attempt_ms ? f->rec.first_attempt_ms : now, now,
                                   &next) == BACKOFF_EXPIRE) {
                u.step = STORE_RCPT_EXPIRE;
                u.reason = text;
                outcome = "expired";
            } else {
                u.next_at_ms = next;
            }
            return engine_finish_local(g, f, now, outcome, text, &u, e);
        }
        if (engine_mx_undeliverable(m->status)) {
            char text[512];
            snprintf(text, sizeof text, "%s cannot receive mail: %s", f->rec.domain,
                     engine_mx_why(m));
            struct store_recipient_update u = {.step = STORE_RCPT_SUPPRESS, .reason = text};
            return engine_finish_local(g, f, now, "bounced", text, &u, e);
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
            .token = g->have_token ? token_make(&g->token, p->campaign, f->rec.address, tok)
                                   : "",
            .names = g->columns,
            .values = values,
            .n = n_values,
            .src = p->recipients_file,
            .src_line = f->rec.list_line,
        };
        struct message_args ma = {.id_left = idl, .boundary_seed = engine_random64()};
        r = message_compose(g->tmpl, &tv, &ma, &f->msg, &ce);
    }
    if (r == IPW_OK && g->dkim) {
        struct dkim_sign_opts so = {.domain = p->dkim_domain, .selector = p->dkim_selector};
        r = dkim_sign(g->dkim, &so, &f->msg, now, &ce);
        if (r != IPW_OK) {
            /* Signing is not the recipient's fault: stop rather than send unsigned mail. */
            engine_flight_free(f);
            return err_set(e, r, "DKIM signing failed: %s", ce.msg);
        }
    }
    if (r != IPW_OK) {
        /* This recipient's data cannot make a message (a line break in a column that goes
         * into the subject, ...): it is set aside with the reason, the others go on. */
        struct store_recipient_update u = {.step = STORE_RCPT_SUPPRESS, .reason = ce.msg};
        return engine_finish_local(g, f, now, "bounced", ce.msg, &u, e);
    }
    r = engine_submit(g, f, now, e);
    if (r != IPW_OK) {
        engine_flight_free(f);
        return r;
    }
    return IPW_OK;
}

static ipw_status engine_finish_local(struct engine *g, struct engine_flight *f, int64_t now,
                                      const char *outcome, const char *text,
                                      const struct store_recipient_update *u, struct err *e)
{
    struct engine_prov *v = &g->prov[f->prov];
    struct store_attempt a = {
        .started_ms = now,
        .recipient = f->rec.address,
        .domain = f->rec.domain,
        .provider = v->pp->name,
        .source_ip = f->source_ip,
        .message_id = f->message_id,
        .phase = "connect",
        .retry_no = f->rec.retries,
        .dry_run = g->o->dry_run,
    };
    ipw_status r = engine_attempt_begin(g, v, now, &a, &f->attempt_id, e);
    if (r == IPW_OK) {
        struct store_outcome o = {
            .finished_ms = now, .phase = "connect", .text = text, .outcome = outcome};
        r = store_attempt_finish_ex(g->st, f->attempt_id, &o, g->o->dry_run ? NULL : u, e);
    }
    g->sum->attempts++;
    if (strcmp(outcome, "bounced") == 0)
        g->sum->bounced++;
    else if (strcmp(outcome, "expired") == 0)
        g->sum->expired++;
    else
        g->sum->failed++;
    if (g->o->log)
        fprintf(g->o->log, "ipwarm: %s %s: %s\n", f->rec.address, outcome, text);
    if (!g->o->dry_run)
        engine_map_del(&g->claimed, f->rec.address);
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
    case SMTP_PHASE_CONNECT: return REPLY_PHASE_CONNECT;
    case SMTP_PHASE_EHLO: return REPLY_PHASE_EHLO;
    case SMTP_PHASE_STARTTLS: return REPLY_PHASE_STARTTLS;
    case SMTP_PHASE_AUTH: return REPLY_PHASE_AUTH;
    case SMTP_PHASE_MAIL: return REPLY_PHASE_MAIL;
    case SMTP_PHASE_RCPT: return REPLY_PHASE_RCPT;
    case SMTP_PHASE_DATA: return REPLY_PHASE_DATA;
    case SMTP_PHASE_QUIT: return REPLY_PHASE_QUIT;
    }
    return REPLY_PHASE_CONNECT;
}

static ipw_status engine_complete(struct engine *g, struct engine_flight *f,
                                  const struct smtp_result *res, struct err *e)
{
    const struct plan *p = g->p;
    struct engine_prov *v = &g->prov[f->prov];
    int64_t now = clock_now_ms();
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
    enum reply_phase phase = engine_reply_phase(res->phase);
    struct reply_class cls;
    if (res->delivered) {
        memset(&cls, 0, sizeof cls);
        cls.outcome = REPLY_DELIVERED;
    } else {
        cls = reply_classify(phase, code, rp.enhanced, rp.text);
        if (cls.outcome == REPLY_PENDING || cls.outcome == REPLY_DELIVERED) {
            /* A positive last reply without delivery: the connection broke afterwards. */
            cls.outcome = REPLY_FAILED;
            cls.scope = REPLY_SCOPE_PROVIDER;
            cls.throttle = true;
            cls.retry = true;
        }
    }

    /* Rules see every reply that refused something. */
    struct backoff_action *fired = NULL;
    size_t n_fired = 0;
    if (!res->delivered && p->n_rules > 0) {
        fired = calloc(p->n_rules, sizeof *fired);
        if (!fired)
            return err_set(e, IPW_ENOMEM, "out of memory");
        n_fired = backoff_rules_match(p->rules, p->n_rules, v->pp->name, full, now, v->hits,
                                      fired);
    }
    for (size_t i = 0; i < n_fired; i++) {
        if (fired[i].action == PLAN_ACTION_BOUNCE) {
            backoff_bounce(&cls);
            continue;
        }
        const struct plan_rule *rule = &p->rules[fired[i].rule];
        char rname[128];
        snprintf(rname, sizeof rname, "%s", rule->name ? rule->name : rule->match);
        struct store_rule_action sa = {
            .provider = v->pp->name,
            .rule = rname,
            .action = fired[i].action == PLAN_ACTION_THROTTLE ? "throttle" : "suspend",
            .rate_per_min = fired[i].action == PLAN_ACTION_THROTTLE ? fired[i].rate_per_min : 0,
            .reason = full,
            .started_ms = fired[i].started_ms,
            .expires_ms = fired[i].expires_ms,
        };
        if (!g->o->dry_run) {
            ipw_status r = store_rule_add(g->st, &sa, NULL, e);
            if (r != IPW_OK) {
                free(fired);
                return r;
            }
        }
        /* In force at once, not only from the next refresh: a suspension that lets one more
         * message through would defeat it. */
        struct backoff_action *na = realloc(v->actions, (v->n_actions + 1) * sizeof *na);
        if (na) {
            v->actions = na;
            v->actions[v->n_actions++] = fired[i];
        }
        if (g->o->log)
            fprintf(g->o->log, "ipwarm: %s: rule %s fired: %s\n", v->pp->name, rname,
                    sa.action);
    }
    free(fired);

    /* A connection that failed tries the next MX address at once; the provider counts one
     * deferral for the message, not one per host. */
    bool next_mx = p->mode == PLAN_DIRECT && cls.outcome == REPLY_FAILED &&
                   res->phase == SMTP_PHASE_CONNECT && code == 0 && f->mx_i + 1 < f->n_mx;

    if (cls.throttle && !f->deferral_counted) {
        backoff_on_deferral(&v->bo, &p->backoff, now, full);
        f->deferral_counted = true;
    }

    const char *outcome = reply_outcome_name(cls.outcome);
    struct store_recipient_update u = {.step = STORE_RCPT_KEEP};
    char reason[600];
    if (next_mx) {
        u.step = STORE_RCPT_KEEP;
    } else if (cls.outcome == REPLY_DELIVERED) {
        if (p->recipients_mode == PLAN_RCPT_CYCLE) {
            u.step = STORE_RCPT_NEXT_CYCLE;
            u.next_at_ms = now;
        } else {
            u.step = STORE_RCPT_DONE;
        }
    } else if (cls.suppress) {
        snprintf(reason, sizeof reason, "%.590s", full);
        u.step = STORE_RCPT_SUPPRESS;
        u.reason = reason;
    } else if (cls.outcome == REPLY_BOUNCED) {
        snprintf(reason, sizeof reason, "%.590s", full);
        u.reason = reason;
        if (p->recipients_mode == PLAN_RCPT_CYCLE) {
            u.step = STORE_RCPT_NEXT_CYCLE;
            u.next_at_ms = now;
        } else {
            u.step = STORE_RCPT_DONE;
        }
    } else {
        int64_t first = f->rec.first_attempt_ms ? f->rec.first_attempt_ms : now;
        int64_t next = 0;
        if (backoff_retry_next(&p->backoff, f->rec.retries, first, now, &next) ==
            BACKOFF_EXPIRE) {
            snprintf(reason, sizeof reason, "retries gave up: %.570s", full);
            u.step = STORE_RCPT_EXPIRE;
            u.reason = reason;
            outcome = "expired";
        } else {
            u.step = STORE_RCPT_RETRY;
            u.next_at_ms = next;
        }
    }

    struct store_outcome o = {
        .finished_ms = now,
        .phase = smtp_phase_name(res->phase),
        .code = code,
        .enhanced = rp.enhanced[0] ? rp.enhanced : NULL,
        .text = text,
        .outcome = outcome,
    };
    /* The outcome and the provider's state it changed (last reply, backoff) in one commit. */
    snprintf(v->last_reply, sizeof v->last_reply, "%.500s", full);
    v->last_reply_ms = now;
    ipw_status r = g->o->dry_run ? IPW_OK : store_batch_begin(g->st, e);
    if (r == IPW_OK)
        r = store_attempt_finish_ex(g->st, f->attempt_id, &o, g->o->dry_run ? NULL : &u, e);
    if (r == IPW_OK)
        r = engine_prov_save(g, v, now, e);
    r = store_batch_end(g->st, r, e);
    if (r != IPW_OK)
        return r;

    g->sum->attempts++;
    if (cls.outcome == REPLY_DELIVERED)
        g->sum->delivered++;
    else if (strcmp(outcome, "expired") == 0)
        g->sum->expired++;
    else if (cls.outcome == REPLY_DEFERRED)
        g->sum->deferred++;
    else if (cls.outcome == REPLY_BOUNCED)
        g->sum->bounced++;
    else
        g->sum->failed++;
    if (g->o->log)
        fprintf(g->o->log, "ipwarm: %s via %s (%s): %s [%s] %s\n", f->rec.address,
                p->mode == PLAN_RELAY ? g->relay_host : f->mx_hosts[f->mx_i], v->pp->name,
                outcome, smtp_phase_name(res->phase), full);


    if (next_mx) {
        /* The same message (same Message-ID) to the next address, as its own attempt. */
        f->mx_i++;
        r = engine_submit(g, f, now, e);
        if (r != IPW_OK)
            engine_flight_free(f);
        return r;
    }
    if (!g->o->dry_run)
        engine_map_del(&g->claimed, f->rec.address);
    engine_flight_free(f);
    return IPW_OK;
}

static void engine_done_cb(const struct smtp_result *r, void *arg)
{
    struct engine_done_ctx *c = arg;
    struct engine_flight *f = r->user;
    if (c->r != IPW_OK) {
        /* An earlier completion failed to record: keep the first error, still free. */
        f->eng->prov[f->prov].inflight--;
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

/* Reads the relay password from its environment variable or file; never logged. */
static ipw_status engine_relay_setup(struct engine *g, struct err *e)
{
    const struct plan *p = g->p;
    const char *url = p->relay_url;
    const char *rest;
    if (strncasecmp(url, "smtps://", 8) == 0) {
        g->relay_tls = true;
        g->relay_port = 465;
        rest = url + 8;
    } else {
        g->relay_port = 587;
        rest = url + 7;
    }
    size_t hl = strcspn(rest, ":/");
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        hl = close ? (size_t)(close - rest) + 1 : strlen(rest);
    }
    g->relay_host = strndup(rest[0] == '[' ? rest + 1 : rest, rest[0] == '[' ? hl - 2 : hl);
    if (!g->relay_host)
        return err_set(e, IPW_ENOMEM, "out of memory");
    if (rest[hl] == ':')
        g->relay_port = (int)strtol(rest + hl + 1, NULL, 10);
    if (p->relay_password_env || p->relay_password_file) {
        /* secret.c: the file must be a regular one (a FIFO would hang the run). */
        struct err sub;
        ipw_status r = secret_password_read(p->relay_password_env, p->relay_password_file,
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
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gr = getaddrinfo(g->relay_host, port, &hints, &ai);
    if (gr != 0)
        return err_set(e, IPW_EUNAVAIL, "relay %s: cannot resolve it: %s", g->relay_host,
                       gai_strerror(gr));
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
                snprintf(why, sizeof why, "%s", pr == 0 ? "no answer within the connect timeout"
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
    g->n_prov = p->n_providers;
    g->prov = calloc(g->n_prov, sizeof *g->prov);
    if (!g->prov)
        return err_set(e, IPW_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_prov; i++) {
        struct engine_prov *v = &g->prov[i];
        v->pp = &p->providers[i];
        v->index = i;
        v->hits = calloc(p->n_rules ? p->n_rules : 1, sizeof *v->hits);
        if (!v->hits)
            return err_set(e, IPW_ENOMEM, "out of memory");
        v->ramp.rate_per_min = ramp_rate_for_stage(&v->pp->ramp, 0);
        backoff_state_init(&v->bo, v->ramp.rate_per_min);
        struct store_provider row;
        r = store_provider_load(g->st, v->pp->name, &row, e);
        if (r == IPW_OK) {
            engine_prov_from_row(g, v, &row);
            store_provider_clear(&row);
        } else if (r != IPW_ENOTFOUND) {
            return r;
        }
        if (window > 0) {
            struct engine_hits_ctx hc = {.g = g, .v = v};
            r = store_attempts_since(g->st, v->pp->name, now - window, engine_hits_cb, &hc, e);
            if (r != IPW_OK)
                return r;
        }
        r = engine_prov_refresh(g, v, now, e);
        if (r != IPW_OK)
            return r;
    }
    g->seq = engine_last_attempt_id(g);
    if (g->o->dry_run) {
        struct engine_dry *d = calloc(1, sizeof *d);
        if (!d)
            return err_set(e, IPW_ENOMEM, "out of memory");
        g->tr = (struct engine_transport){engine_dry_submit, engine_dry_perform,
                                          engine_dry_free, d};
    } else {
        struct smtp *s = smtp_new(0, e);
        if (!s)
            return e->status;
        g->tr = (struct engine_transport){engine_curl_submit, engine_curl_perform,
                                          engine_curl_free, s};
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
    if (g->tr.free)
        g->tr.free(g->tr.impl);
    while (g->flights)
        engine_flight_free(g->flights);
    for (size_t i = 0; i < g->n_prov; i++) {
        struct engine_prov *v = &g->prov[i];
        for (size_t k = 0; k < v->q_n; k++)
            engine_qrec_free(&v->q[(v->q_head + k) % v->q_cap]);
        free(v->q);
        free(v->hits);
        free(v->actions);
    }
    free(g->prov);
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
    engine_map_free(&g->mx_index);
    engine_map_free(&g->claimed);
    dkim_key_free(g->dkim);
    token_secret_clear(&g->token);
    free(g->relay_host);
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
static ipw_status engine_ramp_today(struct engine *g, struct engine_prov *v, const char *today,
                                    struct ramp_state *out, enum ramp_change *why,
                                    struct err *e)
{
    *why = RAMP_SAME_DAY;
    if (strcmp(v->ramp.day_date, today) == 0) {
        *out = v->ramp;
        return IPW_OK;
    }
    struct ramp_day_counts prev;
    ipw_status r = engine_day_counts(g, v, v->ramp.day_date, &prev, e);
    if (r != IPW_OK)
        return r;
    return ramp_begin_day(&v->pp->ramp, &v->ramp, &prev, today, out, why, e);
}

static void engine_progress(struct engine *g, int64_t now)
{
    FILE *out = g->o->progress;
    if (!out)
        return;
    fprintf(out, "\r\033[Kipwarm: %lld sent: %lld delivered, %lld deferred, %lld bounced, %lld "
                 "failed; %d in flight",
            (long long)g->sum->attempts, (long long)g->sum->delivered,
            (long long)g->sum->deferred, (long long)g->sum->bounced,
            (long long)g->sum->failed, g->inflight);
    for (size_t i = 0; i < g->n_prov; i++) {
        struct engine_prov *v = &g->prov[i];
        if (!v->loaded)
            continue;
        char rate[32];
        if (v->bo.paused_until_ms > now)
            fprintf(out, " | %s paused", v->pp->name);
        else
            fprintf(out, " | %s %s", v->pp->name,
                    units_format_rate(rate, sizeof rate, backoff_effective_rate(
                                                             &v->bo, &g->p->backoff, now)));
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
    int64_t start_real = clock_real_ms();
    int64_t send_until_real = 0;
    if (o->once) {
        send_until_real = start_real + ENGINE_TICK_SEND_MS;
        g.hard_end_real_ms = start_real + ENGINE_TICK_MAX_MS;
    } else if (o->for_ms > 0) {
        send_until_real = start_real + o->for_ms;
    }
    int64_t now = clock_now_ms();
    ipw_status r = engine_setup(&g, now, e);
    if (r == IPW_OK)
        r = engine_import(&g, ENGINE_IMPORT_CHUNK, now, e);

    struct pace_slot *slots = calloc(g.n_prov ? g.n_prov : 1, sizeof *slots);
    struct ramp_state *today_ramp = calloc(g.n_prov ? g.n_prov : 1, sizeof *today_ramp);
    enum ramp_change *today_why = calloc(g.n_prov ? g.n_prov : 1, sizeof *today_why);
    if (r == IPW_OK && (!slots || !today_ramp || !today_why))
        r = err_set(e, IPW_ENOMEM, "out of memory");

    struct pace_frame fr;
    memset(&fr, 0, sizeof fr);
    int64_t frame_valid = 0, next_refresh = 0, import_after = 0;
    bool stopping = false;
    struct engine_done_ctx dc = {.g = &g, .r = IPW_OK, .e = e};
    while (r == IPW_OK) {
        now = clock_now_ms();
        int64_t real = clock_real_ms();
        if (!stopping && ((o->stop && *o->stop) || (send_until_real && real >= send_until_real)))
            stopping = true;
        if (g.hard_end_real_ms && real >= g.hard_end_real_ms)
            break;
        if (stopping && g.inflight == 0)
            break;
        int64_t wait_until = now + ENGINE_REFRESH_MS;
        if (!stopping) {
            if (now >= frame_valid) {
                r = pace_frame_at(&p->schedule, p->timezone, now, &fr, e);
                if (r != IPW_OK)
                    break;
                frame_valid = fr.valid_until_ms;
                /* A new local date: work out each provider's stage for it afresh. */
                for (size_t i = 0; i < g.n_prov; i++)
                    today_ramp[i].day_date[0] = '\0';
            }
            if (now >= next_refresh) {
                next_refresh = now + ENGINE_REFRESH_MS;
                bool starving = false;
                for (size_t i = 0; i < g.n_prov && r == IPW_OK; i++) {
                    r = engine_prov_refresh(&g, &g.prov[i], now, e);
                    if (r == IPW_OK && backoff_tick(&g.prov[i].bo, &p->backoff, now))
                        r = engine_prov_save(&g, &g.prov[i], now, e);
                    if (r == IPW_OK) {
                        g.prov[i].refill_after_ms = 0;
                        r = engine_fill(&g, &g.prov[i], now, e);
                    }
                    if (g.prov[i].q_n == 0)
                        starving = true;
                }
                if (r == IPW_OK && starving && !g.list_eof)
                    r = engine_import(&g, ENGINE_IMPORT_CHUNK, now, e);
                if (r != IPW_OK)
                    break;
                if (p->recipients_mode == PLAN_RCPT_ONCE && g.list_eof && g.inflight == 0) {
                    bool empty = true;
                    for (size_t i = 0; i < g.n_prov; i++)
                        if (g.prov[i].q_n)
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
                for (size_t i = 0; i < g.n_prov && r == IPW_OK; i++) {
                    r = engine_fill(&g, &g.prov[i], now, e);
                    if (g.prov[i].q_n == 0 && i < 64)
                        dry[i] = any = true;
                }
                if (r == IPW_OK && any)
                    r = engine_import(&g, ENGINE_IMPORT_CHUNK, now, e);
                bool fed = false;
                for (size_t i = 0; i < g.n_prov && i < 64 && r == IPW_OK && any; i++) {
                    if (!dry[i])
                        continue;
                    g.prov[i].refill_after_ms = 0;
                    r = engine_fill(&g, &g.prov[i], now, e);
                    if (g.prov[i].q_n > 0)
                        fed = true;
                }
                if (r != IPW_OK)
                    break;
                import_after = any && !fed ? now + ENGINE_REFRESH_MS : 0;
            }
            for (size_t i = 0; i < g.n_prov && r == IPW_OK; i++) {
                struct engine_prov *v = &g.prov[i];
                r = engine_fill(&g, v, now, e);
                if (r != IPW_OK)
                    break;
                if (strcmp(today_ramp[i].day_date, fr.today) != 0) {
                    r = engine_ramp_today(&g, v, fr.today, &today_ramp[i], &today_why[i], e);
                    if (r != IPW_OK)
                        break;
                }
                struct backoff_state bo = v->bo;
                if (today_ramp[i].rate_per_min != bo.planned_per_min)
                    backoff_set_planned(&bo, today_ramp[i].rate_per_min);
                struct backoff_decision d;
                backoff_decide(&bo, &p->backoff, v->actions, v->n_actions, now, &d);
                slots[i].rate_per_min = d.rate_per_min;
                slots[i].seq = v->seq;
                slots[i].paused_until_ms = d.may_send ? 0 : d.until_ms;
                slots[i].sent_today = strcmp(v->sent_date, fr.today) == 0 ? v->sent_today : 0;
                slots[i].cap = ramp_cap_today(&v->pp->ramp, today_ramp[i].sending_day);
                slots[i].idle = v->q_n == 0 || v->inflight >= p->connections_per_provider;
            }
            if (r != IPW_OK)
                break;
            /* The frame's facts (date, windows) hold until valid_until, but lateness is judged
             * against now: a provider back from a pause whose planned times have passed starts
             * a new sequence at now instead of catching up with a burst. */
            fr.now_ms = now;
            struct pace_pick pk = pace_pick(slots, g.n_prov, &fr);
            if (pk.slot >= 0 && pk.at_ms <= now) {
                size_t i = (size_t)pk.slot;
                struct engine_prov *v = &g.prov[i];
                if (strcmp(v->ramp.day_date, fr.today) != 0) {
                    /* The first message of a sending day begins the day's stage. */
                    if (o->log && today_why[i] != RAMP_SAME_DAY)
                        fprintf(o->log, "ipwarm: %s: sending day %d (%s): %s, rate %g/min\n",
                                v->pp->name, today_ramp[i].sending_day, fr.today,
                                ramp_change_name(today_why[i]), today_ramp[i].rate_per_min);
                    v->ramp = today_ramp[i];
                    backoff_set_planned(&v->bo, v->ramp.rate_per_min);
                }
                if (strcmp(v->sent_date, fr.today) != 0) {
                    snprintf(v->sent_date, sizeof v->sent_date, "%s", fr.today);
                    v->sent_today = 0;
                }
                pace_seq_commit(&v->seq, slots[i].rate_per_min, pk.at_ms);
                v->sent_today++;
                /* Saved with the attempt record (engine_attempt_begin); any path that ends
                 * without one saves it here. */
                v->dirty = true;
                r = engine_send(&g, i, now, e);
                if (r == IPW_OK && v->dirty)
                    r = engine_prov_save(&g, v, now, e);
                continue;
            }
            if (o->once && g.inflight == 0 && g.list_eof) {
                /* A cron tick with nothing to send before its end returns at once, so that
                 * an idle minute costs milliseconds. */
                int64_t tick_end = now + (send_until_real - clock_real_ms());
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
        if (g.inflight > 0 || o->dry_run) {
            int before = g.inflight;
            g.tr.perform(g.tr.impl, timeout, engine_done_cb, &dc);
            if (dc.r != IPW_OK)
                r = dc.r;
            /* The last message in flight ended with the list read: look now whether all is
             * done, so that a once-list run ends at once rather than at the next refresh. */
            if (before > 0 && g.inflight == 0 && g.list_eof)
                next_refresh = 0;
        } else if (timeout > 0) {
            struct timespec ts = {timeout / 1000, (long)(timeout % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (o->progress) {
        engine_progress(&g, clock_now_ms());
        fputc('\n', o->progress);
    }
    free(slots);
    free(today_ramp);
    free(today_why);
    engine_teardown(&g);
    return r;
}
