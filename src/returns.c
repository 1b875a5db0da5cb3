/*
 * returns: reading what comes back to the return path after the 250 (see returns.h).
 *
 * RFC 3501 (IMAP, through imap.h), RFC 3464 and RFC 6522 (delivery status notifications), RFC
 * 5965 (complaint reports) through feedback.h. This file decides what a parsed message is and
 * which attempt it answers; store_report_add() records it and acts on it in one transaction.
 */
#include "ipwarm/returns.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/feedback.h"
#include "ipwarm/imap.h"
#include "ipwarm/token.h"
#include "ipwarm/verp.h"

/* Bytes of an unmatched report's text kept in the store. */
#define RETURNS_TEXT_MAX (64u * 1024)

/* What a parsed message is, for the store: a bounce (a recipient failed), a delay notice, a
 * complaint report, or other. A DSN that only says delivered or relayed is other. */
static const char *returns_kind(const struct feedback_report *r, size_t *rcpt)
{
    *rcpt = 0;
    if (r->kind == FEEDBACK_ARF) {
        /* "not-spam" is a report that a message is wanted: no complaint. */
        if (r->feedback_type && strcmp(r->feedback_type, "not-spam") == 0)
            return "other";
        return "complaint";
    }
    if (r->kind != FEEDBACK_DSN)
        return "other";
    for (size_t i = 0; i < r->n_recipients; i++)
        if (r->recipients[i].action == FEEDBACK_ACTION_FAILED) {
            *rcpt = i;
            return "bounce";
        }
    for (size_t i = 0; i < r->n_recipients; i++)
        if (r->recipients[i].action == FEEDBACK_ACTION_DELAYED) {
            *rcpt = i;
            return "delay";
        }
    return "other";
}

/* The attempt r answers: *id and *how set, or *id 0. */
static ipw_status returns_match(struct store *st, const struct token_secret *secret,
                                const struct feedback_report *r, int64_t *id, const char **how,
                                struct err *e)
{
    *id = 0;
    *how = NULL;
    struct err ie;
    err_clear(&ie);
    if (secret && r->verp_token && verp_token_check(secret, r->verp_token, id, &ie) == IPW_OK) {
        *how = "verp";
        return IPW_OK;
    }
    *id = 0;
    const char *ids[2] = {r->original_message_id, r->ipwarm_id};
    const char *names[2] = {"message-id", "header"};
    for (int k = 0; k < 2; k++) {
        if (!ids[k] || !*ids[k])
            continue;
        char mid[1024];
        /* X-Ipwarm-Id carries the Message-ID's contents, without the brackets. */
        if (ids[k][0] == '<')
            snprintf(mid, sizeof mid, "%s", ids[k]);
        else
            snprintf(mid, sizeof mid, "<%s>", ids[k]);
        ipw_status s = store_attempt_by_message_id(st, mid, id, e);
        if (s == IPW_OK) {
            *how = names[k];
            return IPW_OK;
        }
        if (s != IPW_ENOTFOUND)
            return s;
        *id = 0;
    }
    return IPW_OK;
}

/* Records one fetched message. */
static ipw_status returns_one(struct store *st, const struct token_secret *secret, const char *mbox,
                              int64_t uidvalidity, uint32_t uid, const struct imap_message *m,
                              const struct returns_opts *o, struct returns_mailbox *out,
                              struct err *e)
{
    struct feedback_report *r = NULL;
    ipw_status s = feedback_parse(m->data, m->len, &r, e);
    if (s != IPW_OK)
        return s;
    size_t ri;
    const char *kind = returns_kind(r, &ri);
    int64_t id = 0;
    const char *how = NULL;
    s = returns_match(st, secret, r, &id, &how, e);
    if (s != IPW_OK) {
        feedback_report_free(r);
        return s;
    }
    char digest[1100];
    if (r->message_id && strlen(r->message_id) < 1000)
        snprintf(digest, sizeof digest, "mid:%s", r->message_id);
    else
        snprintf(digest, sizeof digest, "sha256:%s", r->fingerprint);
    const struct feedback_recipient *fr = r->n_recipients > 0 ? &r->recipients[ri] : NULL;
    bool report = strcmp(kind, "other") != 0;
    /* An unmatched bounce or complaint keeps the message's text, for a person to look at. */
    char *text = NULL;
    if (report && !id) {
        size_t n = m->len < RETURNS_TEXT_MAX ? m->len : RETURNS_TEXT_MAX;
        text = malloc(n + 1);
        if (!text) {
            feedback_report_free(r);
            return err_set(e, IPW_ENOMEM, "out of memory");
        }
        memcpy(text, m->data, n);
        text[n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (text[i] == '\0')
                text[i] = ' ';
    }
    struct store_report rep = {
        .read_ms = o->now_ms,
        .mailbox = mbox,
        .uidvalidity = uidvalidity,
        .uid = uid,
        .digest = digest,
        .kind = kind,
        .format = r->format,
        .matched_by = how,
        .attempt_id = id,
        .recipient = fr ? fr->address : NULL,
        .status = fr && fr->status[0] ? fr->status : NULL,
        .feedback_type = r->feedback_type,
        .text = text ? text : (fr && fr->diagnostic ? fr->diagnostic : r->subject),
    };
    int added = 0;
    s = store_report_add(st, &rep, &added, e);
    free((char *)rep.provider);
    free(text);
    feedback_report_free(r);
    if (s != IPW_OK || !added)
        return s;
    out->new_++;
    if (!strcmp(kind, "other"))
        out->other++;
    else if (!rep.attempt_id)
        out->unmatched++;
    else if (!strcmp(kind, "bounce"))
        out->bounces++;
    else if (!strcmp(kind, "delay"))
        out->delays++;
    else
        out->complaints++;
    if (rep.late)
        out->late_bounces++;
    if (rep.attempt_id && (!strcmp(kind, "bounce") || !strcmp(kind, "complaint")))
        out->suppressed++;
    return IPW_OK;
}

bool returns_complaints_cross(const struct plan_feedback *f, int64_t delivered, int64_t complaints,
                              double *rate_pct)
{
    double rate = delivered > 0 ? 100.0 * (double)complaints / (double)delivered : 0;
    if (rate_pct)
        *rate_pct = rate;
    return complaints > 0 && delivered >= f->complaint_min_delivered &&
           rate > f->complaint_rate_above_pct;
}

/* Per provider of the plan: delivered and complaints in the window. */
struct returns_window {
    const struct plan *p;
    int64_t *delivered, *complaints;
};

static int returns_window_cb(const struct store_summary_row *row, void *arg)
{
    struct returns_window *w = arg;
    for (size_t i = 0; i < w->p->n_providers; i++)
        if (strcmp(w->p->providers[i].name, row->provider) == 0) {
            w->delivered[i] += row->delivered;
            w->complaints[i] += row->complaints;
            break;
        }
    return 0;
}

static int returns_active_cb(const struct store_rule_action *a, void *arg)
{
    if (a->rule && strcmp(a->rule, RETURNS_RULE_COMPLAINTS) == 0)
        *(bool *)arg = true;
    return 0;
}

ipw_status returns_complaints_act(const struct plan *p, struct store *st, int64_t now_ms,
                                  char *acted, size_t size, struct err *e)
{
    const struct plan_feedback *f = &p->feedback;
    if (!f->enabled || p->n_providers == 0)
        return IPW_OK;
    struct returns_window w = {.p = p,
                               .delivered = calloc(p->n_providers, sizeof(int64_t)),
                               .complaints = calloc(p->n_providers, sizeof(int64_t))};
    ipw_status s = IPW_OK;
    if (!w.delivered || !w.complaints)
        s = err_set(e, IPW_ENOMEM, "out of memory");
    if (s == IPW_OK)
        s = store_summary_each(st, NULL, now_ms - RETURNS_COMPLAINT_WINDOW_MS, 0, returns_window_cb,
                               &w, e);
    for (size_t i = 0; s == IPW_OK && i < p->n_providers; i++) {
        double rate;
        if (!returns_complaints_cross(f, w.delivered[i], w.complaints[i], &rate))
            continue;
        bool active = false;
        s = store_rules_active(st, now_ms, p->providers[i].name, returns_active_cb, &active, e);
        if (s != IPW_OK || active)
            continue;
        bool throttle = f->complaint_action == PLAN_COMPLAINT_THROTTLE;
        char reason[512];
        snprintf(reason, sizeof reason,
                 "complaint rate %.2f%% (%lld complaints over %lld delivered in 7 days) is above "
                 "feedback.complaints.rate_above %g%%",
                 rate, (long long)w.complaints[i], (long long)w.delivered[i],
                 f->complaint_rate_above_pct);
        struct store_rule_action a = {
            .provider = p->providers[i].name,
            .rule = RETURNS_RULE_COMPLAINTS,
            .action = throttle ? "throttle" : "suspend",
            .rate_per_min = throttle ? f->complaint_rate_per_min : 0,
            .reason = reason,
            .started_ms = now_ms,
            .expires_ms = now_ms + f->complaint_for_ms,
        };
        s = store_rule_add(st, &a, NULL, e);
        if (s == IPW_OK && acted) {
            size_t len = strlen(acted);
            if (len + strlen(a.provider) + 2 < size)
                snprintf(acted + len, size - len, "%s%s", len ? "," : "", a.provider);
        }
    }
    free(w.delivered);
    free(w.complaints);
    return s;
}

/* The checkpoint's name: the folder and the login, whatever else the plan changes. */
static void returns_key(const struct plan_mailbox *mb, char *key, size_t size)
{
    snprintf(key, size, "%s %s", mb->url, mb->username);
}

ipw_status returns_last_poll(const struct plan *p, struct store *st, int64_t *ms, struct err *e)
{
    *ms = 0;
    if (!p->feedback.enabled)
        return IPW_OK;
    char key[1200];
    returns_key(&p->feedback.mailbox, key, sizeof key);
    int64_t validity, last;
    struct err ce;
    err_clear(&ce);
    ipw_status s = store_checkpoint_get(st, key, &validity, &last, ms, &ce);
    if (s == IPW_ENOTFOUND) {
        *ms = 0;
        return IPW_OK;
    }
    if (s != IPW_OK)
        return err_set(e, s, "%s", ce.msg);
    return IPW_OK;
}

ipw_status returns_mailbox_open(const struct plan_mailbox *mb, const char *key,
                                int64_t session_timeout_ms, struct imap **out, struct err *e)
{
    *out = NULL;
    bool oauth2 = mb->oauth2_token_env || mb->oauth2_token_file;
    const char *env = oauth2 ? mb->oauth2_token_env : mb->password_env;
    const char *file = oauth2 ? mb->oauth2_token_file : mb->password_file;
    char kbuf[1400];
    /* the plan key and the mailbox, so that a missing or empty secret names which one */
    snprintf(kbuf, sizeof kbuf, "%s.%s (mailbox %s, user %s)", key,
             oauth2 ? (env ? "oauth2_token_env" : "oauth2_token_file")
                    : (env ? "password_env" : "password_file"),
             mb->url, mb->username);
    char *password = NULL;
    ipw_status s = oauth2 ? imap_token_read(env, file, kbuf, &password, e)
                          : imap_password_read(env, file, kbuf, &password, e);
    if (s != IPW_OK)
        return s;
    char source[600];
    if (env)
        snprintf(source, sizeof source, "$%s", env);
    else
        snprintf(source, sizeof source, "%s", file);
    struct imap_config cfg = {
        .url = mb->url,
        .username = mb->username,
        .password = oauth2 ? NULL : password,
        .oauth2_token = oauth2 ? password : NULL,
        .password_source = source,
        .ca_file = mb->ca_file,
        .tls = mb->tls == PLAN_MAILBOX_TLS_NONE ? IMAP_TLS_NONE : IMAP_TLS_REQUIRED,
        .session_timeout_ms = session_timeout_ms,
    };
    s = imap_open(&cfg, out, e);
    imap_password_free(password);
    return s;
}

ipw_status returns_poll(const struct plan *p, struct store *st, const struct returns_opts *o,
                        struct returns_mailbox *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    const struct plan_feedback *f = &p->feedback;
    if (!f->enabled)
        return err_set(e, IPW_ECONFIG, "%s: the plan has no feedback section: no mailbox to read",
                       p->name);
    const struct plan_mailbox *mb = &f->mailbox;
    snprintf(out->name, sizeof out->name, "%s", mb->url);
    char key[1200];
    returns_key(mb, key, sizeof key);

    ipw_status s = IPW_OK;
    /* VERP tokens are checked with the state's secret; without VERP none is needed. */
    struct token_secret secret;
    bool have_secret = false;
    memset(&secret, 0, sizeof secret);
    if (f->verp) {
        char *def = token_secret_default_path(store_path(st));
        if (!def)
            return err_set(e, IPW_ENOMEM, "out of memory");
        s = token_secret_load(def, &secret, e);
        free(def);
        if (s != IPW_OK)
            return s;
        have_secret = true;
    }

    struct imap *im = NULL;
    struct imap_folder info = {0};
    struct imap_uids uids = {0};
    s = returns_mailbox_open(mb, "feedback.mailbox", o->session_timeout_ms, &im, e);
    if (s == IPW_OK)
        s = imap_examine(im, mb->folder ? mb->folder : "INBOX", &info, e);
    int64_t validity = 0, last = 0;
    if (s == IPW_OK) {
        struct err ce;
        err_clear(&ce);
        ipw_status cs = store_checkpoint_get(st, key, &validity, &last, NULL, &ce);
        if (cs == IPW_ENOTFOUND || (cs == IPW_OK && validity != (int64_t)info.uidvalidity))
            last = 0; /* never read, or the folder was recreated: from its first message */
        else if (cs != IPW_OK)
            s = err_set(e, cs, "%s", ce.msg);
    }
    if (s == IPW_OK)
        s = imap_uids_after(im, (uint32_t)last, &uids, e);
    for (size_t i = 0; s == IPW_OK && i < uids.n; i++) {
        struct imap_message m = {0};
        s = imap_fetch(im, uids.uid[i], &m, e);
        if (s == IPW_ENOTFOUND) {
            s = IPW_OK; /* expunged meanwhile: nothing to read */
        } else if (s == IPW_OK) {
            s = returns_one(st, have_secret ? &secret : NULL, out->name, info.uidvalidity,
                            uids.uid[i], &m, o, out, e);
        }
        imap_message_free(&m);
        /* The checkpoint moves with every message recorded, so a poll cut short resumes. */
        if (s == IPW_OK)
            s = store_checkpoint_set(st, key, info.uidvalidity, uids.uid[i], o->now_ms, e);
    }
    if (s == IPW_OK && uids.n == 0)
        s = store_checkpoint_set(st, key, info.uidvalidity, last, o->now_ms, e);
    /* What was read counts even when the mailbox failed later; and a provider that reached
     * min_delivered since the last poll is judged even when nothing new came. */
    {
        struct err ae;
        err_clear(&ae);
        ipw_status as = returns_complaints_act(p, st, o->now_ms, out->acted, sizeof out->acted,
                                               s == IPW_OK ? e : &ae);
        if (s == IPW_OK)
            s = as;
    }
    if (s != IPW_OK && e)
        snprintf(out->error, sizeof out->error, "%.1000s", e->msg);
    imap_uids_free(&uids);
    imap_close(im);
    if (have_secret)
        token_secret_clear(&secret);
    return s;
}
