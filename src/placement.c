/*
 * placement: finding the copies sent to seed mailboxes (see placement.h).
 *
 * RFC 3501 (IMAP: EXAMINE, UID SEARCH HEADER) through imap.h, RFC 6154 (the \Junk folder). A
 * seed's session: log in as the feedback mailbox does (returns_mailbox_open), open the inbox
 * read-only and look each unknown copy up by its X-Ipwarm-Id, then the junk folder for those
 * not found; what is still not found a day after it was sent is missing. The results go to the
 * store one by one, so a session cut short keeps what it found.
 *
 * The sharp fall: after a poll, placement_fall_act() judges each gated provider's latest day
 * with enough copies placed and records a throttle, as the complaint-rate suspension does
 * (returns.c), which the engine, status, stats, report and metrics then see like any rule
 * action (lane.c works out what it does to the provider).
 */
#include "ipwarm/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/feedback.h"
#include "ipwarm/imap.h"
#include "ipwarm/ramp.h"
#include "ipwarm/returns.h"
#include "ipwarm/tz.h"

const char *placement_junk_default(const char *provider)
{
    if (!provider)
        return NULL;
    if (!strcasecmp(provider, "gmail") || !strcasecmp(provider, "google"))
        return "[Gmail]/Spam";
    if (!strcasecmp(provider, "microsoft") || !strcasecmp(provider, "outlook") ||
        !strcasecmp(provider, "hotmail"))
        return "Junk Email";
    if (!strcasecmp(provider, "yahoo") || !strcasecmp(provider, "aol"))
        return "Bulk";
    return NULL;
}

int placement_is_seed(const struct plan *p, const char *address)
{
    for (size_t i = 0; address && i < p->n_seeds; i++)
        if (p->seeds[i].address && !strcasecmp(p->seeds[i].address, address))
            return 1;
    return 0;
}

/* A seed's copies not placed yet. */
struct placement_copy {
    int64_t attempt_id;
    int64_t sent_ms;
    char id[512]; /* X-Ipwarm-Id: the Message-ID without its brackets */
    char provider[64];
    int found; /* 1 inbox, 2 junk */
};

struct placement_list {
    struct placement_copy *c;
    size_t n, cap;
    int oom;
};

static int placement_collect_cb(const struct store_placement *c, void *ctx)
{
    struct placement_list *l = ctx;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        struct placement_copy *nc = realloc(l->c, ncap * sizeof *nc);
        if (!nc) {
            l->oom = 1;
            return 1;
        }
        l->c = nc;
        l->cap = ncap;
    }
    struct placement_copy *pc = &l->c[l->n++];
    memset(pc, 0, sizeof *pc);
    pc->attempt_id = c->attempt_id;
    pc->sent_ms = c->sent_ms;
    const char *mid = c->message_id ? c->message_id : "";
    size_t len = strlen(mid);
    if (len >= 2 && mid[0] == '<' && mid[len - 1] == '>')
        snprintf(pc->id, sizeof pc->id, "%.*s", (int)(len - 2), mid + 1);
    else
        snprintf(pc->id, sizeof pc->id, "%s", mid);
    snprintf(pc->provider, sizeof pc->provider, "%s", c->provider ? c->provider : "");
    return 0;
}

/* Looks every copy not found yet up in folder; found: what a hit means (1 inbox, 2 junk). */
static ipw_status placement_search(struct imap *im, const char *folder, struct placement_list *l,
                                   int found, struct err *e)
{
    struct imap_folder info;
    ipw_status s = imap_examine(im, folder, &info, e);
    if (s != IPW_OK)
        return s;
    for (size_t i = 0; i < l->n; i++) {
        struct placement_copy *pc = &l->c[i];
        if (pc->found || !pc->id[0])
            continue;
        struct imap_uids u = {0};
        s = imap_search_header(im, FEEDBACK_ID_HEADER, pc->id, &u, e);
        if (s != IPW_OK)
            return s;
        if (u.n > 0)
            pc->found = found;
        imap_uids_free(&u);
    }
    return IPW_OK;
}

/* The junk folder to look in: folders.junk, the provider's usual one when it exists, else the
 * \Junk special-use folder; *name NULL when there is none. */
static ipw_status placement_junk_folder(struct imap *im, const struct plan_seed *sd,
                                        const char *provider, char *name, size_t size,
                                        struct err *e)
{
    name[0] = '\0';
    if (sd->junk) {
        snprintf(name, size, "%s", sd->junk);
        return IPW_OK;
    }
    struct imap_mailbox *list = NULL;
    size_t n = 0;
    ipw_status s = imap_list(im, &list, &n, e);
    if (s != IPW_OK)
        return s;
    const char *want = placement_junk_default(provider);
    for (size_t i = 0; want && i < n; i++)
        if (list[i].name_utf8 && !strcmp(list[i].name_utf8, want)) {
            snprintf(name, size, "%s", want);
            break;
        }
    if (!name[0]) {
        const struct imap_mailbox *j = imap_list_junk(list, n);
        if (j && j->name_utf8)
            snprintf(name, size, "%s", j->name_utf8);
    }
    imap_list_free(list, n);
    return IPW_OK;
}

static ipw_status placement_seed(const struct plan_seed *sd, size_t index, struct store *st,
                                 int64_t now_ms, int64_t session_ms,
                                 struct placement_seed_result *out, struct err *e)
{
    struct placement_list l = {0};
    ipw_status s = store_placement_copies(st, sd->address, 1, 0, placement_collect_cb, &l, e);
    if (s == IPW_OK && l.oom)
        s = err_set(e, IPW_ENOMEM, "out of memory");
    if (s != IPW_OK || l.n == 0) {
        free(l.c);
        return s;
    }
    struct imap *im = NULL;
    char key[64];
    snprintf(key, sizeof key, "seeds[%zu]", index);
    ipw_status rs = returns_mailbox_open(&sd->mailbox, key, session_ms, &im, e);
    if (rs == IPW_OK)
        rs = placement_search(im, sd->inbox ? sd->inbox : "INBOX", &l, 1, e);
    char junk[512] = "";
    if (rs == IPW_OK)
        rs = placement_junk_folder(im, sd, l.c[0].provider, junk, sizeof junk, e);
    if (rs == IPW_OK && junk[0])
        rs = placement_search(im, junk, &l, 2, e);
    imap_close(im);
    /* What was found is recorded even when the session failed later; missing only after a
     * complete look (a failed login proves nothing about where a copy is). */
    for (size_t i = 0; s == IPW_OK && i < l.n; i++) {
        struct placement_copy *pc = &l.c[i];
        const char *result = NULL, *folder = NULL;
        if (pc->found == 1) {
            result = "inbox";
            folder = sd->inbox ? sd->inbox : "INBOX";
        } else if (pc->found == 2) {
            result = "junk";
            folder = junk;
        } else if (rs == IPW_OK && now_ms - pc->sent_ms >= PLACEMENT_MISSING_AFTER_MS) {
            result = "missing";
        }
        if (!result) {
            out->pending++;
            continue;
        }
        s = store_placement_set(st, pc->attempt_id, sd->address, result, folder, now_ms, e);
        if (s == IPW_OK)
            (*result == 'i' ? &out->inbox : *result == 'j' ? &out->junk : &out->missing)[0]++;
    }
    free(l.c);
    if (s != IPW_OK)
        return s;
    if (rs != IPW_OK)
        snprintf(out->error, sizeof out->error, "%.1000s", e->msg);
    return rs;
}

ipw_status placement_poll(const struct plan *p, struct store *st, int64_t now_ms,
                          int64_t session_timeout_ms, struct placement_seed_result *results,
                          struct err *e)
{
    ipw_status worst = IPW_OK;
    struct err first;
    err_clear(&first);
    for (size_t i = 0; i < p->n_seeds; i++) {
        struct placement_seed_result *r = &results[i];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", p->seeds[i].address);
        struct err se;
        err_clear(&se);
        ipw_status s = placement_seed(&p->seeds[i], i, st, now_ms, session_timeout_ms, r, &se);
        if (s == IPW_OK)
            continue;
        if (!r->error[0]) /* a store failure (or memory): the poll stops */
            return err_set(e, s, "%s", se.msg);
        if (worst == IPW_OK) {
            worst = IPW_EUNAVAIL;
            err_set(&first, IPW_EUNAVAIL, "seed %s: %s", r->name, se.msg);
        }
    }
    if (worst != IPW_OK)
        return err_set(e, worst, "%s", first.msg);
    return IPW_OK;
}

/* ---- the figures ---- */

double placement_inbox_rate(const struct placement_row *r)
{
    int64_t placed = r->inbox + r->junk + r->missing;
    return placed > 0 ? 100.0 * (double)r->inbox / (double)placed : -1;
}

struct placement_agg {
    const struct plan *p;
    enum placement_by by;
    struct placement_result *out;
    size_t cap;
    ipw_status s;
    struct err *e;
};

static int placement_row_cmp(const void *a, const void *b)
{
    const struct placement_row *x = a, *y = b;
    int c = strcmp(x->period, y->period);
    if (!c)
        c = strcmp(x->provider, y->provider);
    if (!c)
        c = strcmp(x->ip, y->ip);
    return c;
}

static int placement_agg_cb(const struct store_placement *c, void *ctx)
{
    struct placement_agg *a = ctx;
    struct placement_row key;
    memset(&key, 0, sizeof key);
    snprintf(key.period, sizeof key.period, "all");
    if (a->by == PLACEMENT_BY_DAY) {
        struct tz_local lt;
        a->s = tz_local(c->sent_ms, a->p->timezone, &lt, a->e);
        if (a->s != IPW_OK)
            return 1;
        snprintf(key.period, sizeof key.period, "%s", lt.date);
    }
    snprintf(key.provider, sizeof key.provider, "%s", c->provider ? c->provider : "");
    if (a->by == PLACEMENT_BY_IP)
        snprintf(key.ip, sizeof key.ip, "%s", c->ip ? c->ip : "");
    struct placement_row *row = NULL;
    for (size_t i = 0; i < a->out->n && !row; i++)
        if (!placement_row_cmp(&a->out->rows[i], &key))
            row = &a->out->rows[i];
    if (!row) {
        if (a->out->n == a->cap) {
            size_t ncap = a->cap ? a->cap * 2 : 16;
            struct placement_row *nr = realloc(a->out->rows, ncap * sizeof *nr);
            if (!nr) {
                a->s = err_set(a->e, IPW_ENOMEM, "out of memory");
                return 1;
            }
            a->out->rows = nr;
            a->cap = ncap;
        }
        row = &a->out->rows[a->out->n++];
        *row = key;
    }
    row->sent++;
    if (c->result && !strcmp(c->result, "inbox"))
        row->inbox++;
    else if (c->result && !strcmp(c->result, "junk"))
        row->junk++;
    else if (c->result && !strcmp(c->result, "missing"))
        row->missing++;
    return 0;
}

ipw_status placement_collect(const struct plan *p, struct store *st, enum placement_by by,
                             int64_t since_ms, struct placement_result *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    struct placement_agg a = {.p = p, .by = by, .out = out, .s = IPW_OK, .e = e};
    for (size_t i = 0; i < p->n_seeds; i++) {
        ipw_status s =
            store_placement_copies(st, p->seeds[i].address, 0, since_ms, placement_agg_cb, &a, e);
        if (s == IPW_OK)
            s = a.s;
        if (s != IPW_OK) {
            placement_result_free(out);
            return s;
        }
    }
    if (out->n > 1)
        qsort(out->rows, out->n, sizeof *out->rows, placement_row_cmp);
    return IPW_OK;
}

void placement_result_free(struct placement_result *r)
{
    free(r->rows);
    r->rows = NULL;
    r->n = 0;
}

struct placement_day {
    const char *provider;
    int64_t to;
    struct ramp_day_counts *out;
};

static int placement_day_cb(const struct store_placement *c, void *ctx)
{
    struct placement_day *d = ctx;
    if (c->sent_ms >= d->to || !c->provider || strcmp(c->provider, d->provider) != 0)
        return 0;
    d->out->seed_sent++;
    if (c->result) {
        d->out->seed_placed++;
        if (!strcmp(c->result, "inbox"))
            d->out->seed_inbox++;
    }
    return 0;
}

ipw_status placement_day_counts(const struct plan *p, struct store *st, const char *provider,
                                const char *date, struct ramp_day_counts *out, struct err *e)
{
    if (!st || !date || !date[0] || p->n_seeds == 0)
        return IPW_OK;
    int64_t from = 0, to = 0;
    char next[TZ_DATE_MAX];
    ipw_status r = tz_local_midnight_utc(p->timezone, date, &from, e);
    if (r == IPW_OK)
        r = tz_next_day(date, next, e);
    if (r == IPW_OK)
        r = tz_local_midnight_utc(p->timezone, next, &to, e);
    struct placement_day d = {.provider = provider, .to = to, .out = out};
    for (size_t i = 0; r == IPW_OK && i < p->n_seeds; i++)
        r = store_placement_copies(st, p->seeds[i].address, 0, from, placement_day_cb, &d, e);
    return r;
}

/* ---- the gate, in words ---- */

bool placement_gate_why(const struct plan_ramp *r, const struct ramp_day_counts *c,
                        const char *date, int change, int stage, char *out, size_t size)
{
    out[0] = '\0';
    if (!r->inbox_gate || c->seed_sent <= 0)
        return false;
    char move[64];
    if (change == RAMP_GROW)
        snprintf(move, sizeof move, "grows to stage %d", stage);
    else if (change == RAMP_STEP_BACK)
        snprintf(move, sizeof move, "steps back to stage %d", stage);
    else
        snprintf(move, sizeof move, "holds at stage %d", stage);
    if (c->seed_placed < c->seed_sent) {
        snprintf(out, size,
                 "%s: placement on %s not all known yet (%lld of %lld seed copies placed)", move,
                 date, (long long)c->seed_placed, (long long)c->seed_sent);
        return true;
    }
    char rate[32], thr[32];
    double x = 100.0 * (double)c->seed_inbox / (double)c->seed_placed;
    placement_pct(x, rate, sizeof rate);
    placement_pct(r->inbox_above_pct, thr, sizeof thr);
    bool above = x > r->inbox_above_pct;
    snprintf(out, size,
             "%s: inbox rate %s%% on %s (%lld of %lld seed copies) %s inbox_rate_above %s%%%s",
             move, rate, date, (long long)c->seed_inbox, (long long)c->seed_placed,
             above ? "above" : "not above", thr,
             above && change != RAMP_GROW
                 ? " (another advance_if rate, or the ramp's max, holds it)"
                 : "");
    return !above;
}

/* ---- the sharp fall ---- */

bool placement_fall(const struct plan_ramp *r, const struct plan_placement *pl, int64_t inbox,
                    int64_t placed, double *rate_pct)
{
    double rate = placed > 0 ? 100.0 * (double)inbox / (double)placed : 0;
    if (rate_pct)
        *rate_pct = rate;
    return r->inbox_gate && placed > 0 && placed >= pl->fall_min_placed &&
           rate < r->inbox_above_pct / 2;
}

double placement_fall_rate(double rate_now, const struct plan_backoff *b)
{
    double rate = rate_now * b->factor;
    return rate < 1 ? 1 : rate;
}

void placement_pct(double v, char *out, size_t size)
{
    snprintf(out, size, "%.1f", v);
    size_t n = strlen(out);
    if (n > 2 && !strcmp(out + n - 2, ".0"))
        out[n - 2] = '\0';
}

void placement_fall_reason(char *out, size_t size, const char *date, int64_t inbox, int64_t placed,
                           double threshold_pct)
{
    char rate[32], thr[32];
    placement_pct(placed > 0 ? 100.0 * (double)inbox / (double)placed : 0, rate, sizeof rate);
    placement_pct(threshold_pct, thr, sizeof thr);
    snprintf(out, size,
             "inbox rate %s%% on %s (%lld of %lld seed copies), below half of inbox_rate_above "
             "%s%%",
             rate, date, (long long)inbox, (long long)placed, thr);
}
