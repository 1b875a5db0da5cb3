/*
 * engine: the warm-up loop behind `ipwarm run` (see engine.h).
 *
 * One event loop drives everything: libcurl carries the SMTP transactions, a thread per
 * connection (smtp.c), and between completions the loop asks sched_next() which lane (a provider,
 * or with an IP pool one source IP at a provider) is due next and when. Decisions are the pure
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
 *
 * This file holds the loop (engine_run), setting up and tearing down. Read in this order:
 * engine_state.h (the run's state: lanes, queues, flights), this file, then
 * engine_list.c (the recipient list read into the queue, and the per-provider queues),
 * engine_mx.c (MX answers and their cache), engine_lane.c (a lane's state, rule actions,
 * suspensions and pool-wide actions), engine_attempt.c (one message from its pick to its
 * recorded verdict) and engine_polls.c (the feedback and seed mailboxes).
 */
#include "ipwarm/engine.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipwarm/backoff.h"
#include "ipwarm/dkim.h"
#include "ipwarm/lane_store.h"
#include "ipwarm/message.h"
#include "ipwarm/pace.h"
#include "ipwarm/pool.h"
#include "ipwarm/ramp.h"
#include "ipwarm/recipients.h"
#include "ipwarm/reply.h"
#include "ipwarm/returns.h"
#include "ipwarm/sched.h"
#include "ipwarm/secret.h"
#include "ipwarm/strmap.h"
#include "ipwarm/token.h"
#include "ipwarm/units.h"

#include "engine_state.h"

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
    ipw_status r = dns_host_addresses(g->dns, g->relay_host, &addrs, &n_addrs, e);
    if (r == IPW_ENOMEM)
        return err_set(e, r, "out of memory");
    if (r != IPW_OK)
        return err_prefix(e, r == IPW_ETEMP ? IPW_ETEMP : IPW_EUNAVAIL,
                          "relay %s (transport.relay.url): cannot resolve it: ", g->relay_host);
    g->relay_ip = strdup(addrs[0]);
    dns_addresses_free(addrs, n_addrs);
    if (!g->relay_ip)
        return err_set(e, IPW_ENOMEM, "out of memory");
    if (p->relay_password_env || p->relay_password_file) {
        /* secret.c: the file must be a regular one (a FIFO would hang the run). */
        r = secret_password_read(p->relay_password_env, p->relay_password_file,
                                 p->relay_password_env ? "transport.relay.password_env"
                                                       : "transport.relay.password_file",
                                 &g->relay_password, e);
        if (r != IPW_OK)
            return err_prefix(e, r == IPW_ENOMEM ? r : IPW_ECONFIG,
                              "%s: ", p->name ? p->name : p->path);
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
    message_memo_free(&g->memo);
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
        /* Messages picked before a stop, or before a feedback poll (which talks IMAP for a
         * while), are recorded and started now, not after. */
        if (g.ready && (stopping || (g.feedback_next_ms && now >= g.feedback_next_ms))) {
            r = engine_flush(&g, e);
            if (r != IPW_OK)
                break;
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
                /* Not while the last round's outcomes wait for a commit: IMAP takes time. */
                r = store_batch_release(g.st, e);
                if (r != IPW_OK)
                    break;
                engine_feedback_poll(&g, now);
                /* The poll took time, and may have suspended a provider: look at the clock
                 * and the stored actions again before anything is sent. */
                next_refresh = 0;
                continue;
            }
            if (now >= next_refresh) {
                next_refresh = now + ENGINE_REFRESH_MS;
                bool starving = false;
                r = engine_queues_recheck(&g, e);
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
                /* Saved with the attempt records by the next flush. */
                v->dirty = true;
                /* The message is made ready, not started: the loop comes round again for
                 * every other message due now, and engine_flush records them all in one
                 * commit before any of them starts. */
                r = engine_send(&g, i, now, e);
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
        /* What the picks made ready is recorded and started before the loop waits. */
        r = engine_flush(&g, e);
        if (r != IPW_OK)
            break;
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
            /* The outcomes it reported, in one transaction, committed with the next round's
             * records (engine_flush). */
            r = engine_group_end(&g, dc.r, e);
            /* The last message in flight ended with the list read: look now whether all is
             * done, so that a once-list run ends at once rather than at the next refresh. */
            if (before > 0 && g.inflight == 0 && g.list_eof)
                next_refresh = 0;
        } else if (timeout > 0) {
            g.clk->sleep_ms(g.clk->ctx, timeout);
        }
    }
    /* The last round's outcomes, when the loop ended before another flush. */
    ipw_status held = store_batch_release(g.st, r == IPW_OK ? e : NULL);
    if (r == IPW_OK)
        r = held;
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
