/*
 * engine_attempt: one message from its pick to its verdict. engine_send() takes the next due
 * recipient of a lane, finds where it goes (its MX hosts, or the relay), composes and signs the
 * message and makes it ready; engine_flush() records the attempts of all ready messages in one
 * commit, and only then starts their transactions; engine_done_cb() gets the reply, lets the
 * rules, the verdict (verdict.h) and the backoff judge it, and records the outcome with the
 * recipient's next step and the lane's state in the commit shared by the completions of one
 * perform(). An attempt is recorded as in flight before its transaction starts, so that a run
 * that dies in between is noticed by the next one.
 */
#include "ipwarm/engine.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipwarm/backoff.h"
#include "ipwarm/dkim.h"
#include "ipwarm/feedback.h"
#include "ipwarm/message.h"
#include "ipwarm/pool.h"
#include "ipwarm/recipients.h"
#include "ipwarm/reply.h"
#include "ipwarm/smtp.h"
#include "ipwarm/strmap.h"
#include "ipwarm/template.h"
#include "ipwarm/token.h"
#include "ipwarm/verdict.h"
#include "ipwarm/verp.h"

#include "engine_state.h"

/* ---- sending one message ---- */

void engine_flight_free(struct engine_flight *f)
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

/* Records the attempt of f, inside engine_flush's transaction. */
static ipw_status engine_attempt_record(struct engine *g, struct engine_flight *f, struct err *e)
{
    const struct plan *p = g->p;
    struct engine_lane *v = &g->lanes[f->lane];
    bool verp = p->feedback.enabled && p->feedback.verp;
    snprintf(f->mail_from, sizeof f->mail_from, "%s", p->return_path);
    struct store_attempt a = {
        .started_ms = f->picked_ms,
        .recipient = f->rec.address,
        .domain = f->rec.domain,
        .provider = v->pp->name,
        .mx = p->mode == PLAN_RELAY ? g->relay_host : f->mx_hosts[f->mx_i],
        .source_ip = f->source_ip,
        .message_id = f->message_id,
        .phase = "connect",
        .retry_no = f->rec.retries,
        .dry_run = g->o->dry_run,
        .mail_from = f->mail_from,
        .rcpt_id = f->rec.id,
    };
    ipw_status r = store_attempt_begin(g->st, &a, &f->attempt_id, e);
    if (r == IPW_OK && verp) {
        /* The token carries the attempt's id, so a bounce names the attempt whatever it says
         * inside; the row records the address used, in the same commit. */
        r = verp_make(&g->token, p->return_path, f->attempt_id, f->mail_from, sizeof f->mail_from,
                      e);
        if (r == IPW_OK)
            r = store_attempt_set_mail_from(g->st, f->attempt_id, f->mail_from, e);
    }
    return r;
}

/* Random bits for Message-IDs and MIME boundaries, taken from OpenSSL 4 KB at a time: one
 * RAND_bytes() call per value was 2 % of bench/'s throughput samples (its locks). The loop
 * runs on one thread, so the pool needs no lock. */
static uint64_t engine_random64(void)
{
    static uint64_t pool[512];
    static size_t left;
    if (left == 0) {
        if (RAND_bytes((unsigned char *)pool, sizeof pool) != 1)
            return (uint64_t)clock_real_ms() * 6364136223846793005ULL + (uint64_t)getpid();
        left = sizeof pool / sizeof pool[0];
    }
    uint64_t v = pool[--left];
    pool[left] = 0; /* a value handed out is not kept */
    return v;
}

/* Makes f ready: it counts as in flight from now on (the lane is busy, a stop waits for it),
 * and engine_flush records its attempt and starts it. */
static void engine_ready(struct engine *g, struct engine_flight *f, int64_t now)
{
    f->picked_ms = now;
    if (!f->linked) {
        /* Kept in a list so that a run that stops on an error frees what is still in flight. */
        f->linked = true;
        f->lprev = NULL;
        f->lnext = g->flights;
        if (g->flights)
            g->flights->lprev = f;
        g->flights = f;
    }
    f->rnext = NULL;
    if (!g->ready)
        g->ready_tail = &g->ready;
    *g->ready_tail = f;
    g->ready_tail = &f->rnext;
    g->lanes[f->lane].inflight++;
    g->inflight++;
}

/* Starts the transaction of f, whose attempt is committed, to its current MX host (or the
 * relay). */
static ipw_status engine_start(struct engine *g, struct engine_flight *f, struct err *e)
{
    const struct plan *p = g->p;
    const char *host = p->mode == PLAN_RELAY ? g->relay_host : f->mx_hosts[f->mx_i];
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
    return g->tr.ops->submit(g->tr.impl, &job, e);
}

/* Writes the rows of the lanes whose state changed, in the caller's transaction, when r is
 * IPW_OK; returns the final status. */
static ipw_status engine_lanes_save(struct engine *g, ipw_status r, struct err *e)
{
    int64_t now = engine_now(g);
    for (size_t i = 0; i < g->n_lanes && r == IPW_OK; i++)
        if (g->lanes[i].dirty)
            r = engine_lane_save(g, &g->lanes[i], now, e);
    return r;
}

/*
 * Group commit. plan.md's rule is that every attempt is committed before the command that could
 * deliver it, and its outcome after; not that each has a commit of its own. The loop picks
 * every message due now, one after another, and only then flushes: their records, and the
 * lanes' state the picks changed (pace step, count of the day), go in one transaction, and
 * only once it is committed do their transactions start. A crash before the commit loses the
 * picks, none of which had started; after it, the records are there for the next run to find
 * in flight. bench/ showed the commits, not the SMTP dialogues, bounding the send rate.
 */
ipw_status engine_flush(struct engine *g, struct err *e)
{
    bool dirty = false;
    for (size_t i = 0; i < g->n_lanes && !g->o->dry_run; i++)
        dirty = dirty || g->lanes[i].dirty;
    if (!g->ready && !dirty)
        return store_batch_release(g->st, e);
    /* Joins the outcomes of the last round when engine_group_end held them: one commit for
     * both (a failure here rolls back only the records). */
    ipw_status r = store_batch_join(g->st, e);
    for (struct engine_flight *f = g->ready; f && r == IPW_OK; f = f->rnext)
        r = engine_attempt_record(g, f, e);
    r = engine_lanes_save(g, r, e);
    r = store_batch_end(g->st, r, e);
    while (g->ready) {
        struct engine_flight *f = g->ready;
        g->ready = f->rnext;
        f->rnext = NULL;
        if (r == IPW_OK)
            r = engine_start(g, f, e);
        else {
            /* Not recorded, so not started: the run ends with r, and the recipient's row is
             * as it was before the pick. */
            g->lanes[f->lane].inflight--;
            g->inflight--;
            engine_flight_free(f);
        }
    }
    return r;
}

ipw_status engine_group_end(struct engine *g, ipw_status r, struct err *e)
{
    if (!g->group)
        return r;
    g->group = false;
    r = engine_lanes_save(g, r, e);
    if (r != IPW_OK)
        return store_batch_end(g->st, r, e);
    /* Committed with the next records (engine_flush), or before anything slow (store.h). */
    store_batch_hold(g->st);
    return IPW_OK;
}

/* Ends the message of f that could not start for a local reason (DNS trouble, a domain that
 * cannot receive, a list value that cannot make a message, a list that changed): nothing went
 * to any provider, so nothing is counted against one; the recipient moves on by u. */
static ipw_status engine_finish_local(struct engine *g, struct engine_flight *f, int64_t now,
                                      const char *text, const struct store_recipient_update *u,
                                      struct err *e);

/* Takes the next recipient of provider pi and starts its message. */
ipw_status engine_send(struct engine *g, size_t pi, int64_t now, struct err *e)
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
    char tok[TOKEN_LEN + 1];
    int off = clock_utc_offset(now, p->timezone);
    int64_t sec = now / 1000 - (now % 1000 < 0);
    if (!g->memo_date[0] || sec != g->memo_date_sec || off != g->memo_date_off) {
        message_format_date(now, off, g->memo_date, sizeof g->memo_date);
        g->memo_date_sec = sec;
        g->memo_date_off = off;
    }
    const char *date = g->memo_date;
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
        struct message_args ma = {.id_left = idl,
                                  .boundary_seed = engine_random64(),
                                  .extra = xh,
                                  .n_extra = n_xh,
                                  .memo = &g->memo};
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
        r = dkim_sign(g->dkim, &so, &f->msg, now, e);
        if (r != IPW_OK) {
            /* Signing is not the recipient's fault: stop rather than send unsigned mail. */
            engine_flight_free(f);
            return err_prefix(e, r, "DKIM signing failed: ");
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
    engine_ready(g, f, now);
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
    if (!g->group) {
        /* The first completion this perform() reports: what it and the others write (rule
         * actions, outcomes, recipients' next steps, lanes' state) goes in one transaction,
         * which the loop commits when perform() returns (engine_group_end). */
        ipw_status r = store_batch_begin(g->st, e);
        if (r != IPW_OK)
            return r;
        g->group = true;
    }

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
    /* The outcome and the provider's state it changed (last reply, backoff), in the group. */
    snprintf(v->ls.last_reply, sizeof v->ls.last_reply, "%.500s", full);
    v->ls.last_reply_ms = now;
    vd.step.rcpt_id = f->rec.id;
    ipw_status r =
        store_attempt_finish_ex(g->st, f->attempt_id, &o, g->o->dry_run ? NULL : &vd.step, e);
    if (r != IPW_OK)
        return r;
    /* The lane's row is written once when the group ends, in its commit. */
    v->dirty = true;

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
        /* The same message (same Message-ID) to the next address, as its own attempt, recorded
         * and started by the next flush. */
        f->mx_i++;
        engine_ready(g, f, now);
        return IPW_OK;
    }
    if (!g->o->dry_run)
        strmap_del(&g->claimed, f->rec.address);
    engine_flight_free(f);
    return IPW_OK;
}

void engine_done_cb(const struct smtp_result *r, void *arg)
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
