/*
 * cmd_status: `ipwarm status` shows where each provider of the plan stands right now: its ramp
 * stage and sending day, the rate it is sent at, today's count against today's cap, whether it
 * is paused and why, and the last reply it gave; plus who holds the run lock and how many
 * recipients are in each state.
 *
 * Status is what an operator types while a run is going, often because something looks wrong,
 * so it must never get in the run's way: it does not take the run lock, it opens the state file
 * without creating it, and it only reads (SQLite's WAL journal lets readers and the one writer
 * work at the same time). A state file that does not exist yet is not an error: nothing has
 * been sent, and every plan provider is listed with its starting values.
 *
 * What each provider is doing now (sending, held, suspended, paused, capped or closed), why,
 * until when, its rate and today's cap come from lane_store_load(), the one place that works
 * them out from the stored state (lane.h): report and metrics show the same. stage and
 * sending_day are the stored ones (the sending day in progress or the last one); stage_today
 * and sending_day_today are those of the day today's sending is (or will be) counted in.
 * Times are shown in RFC 3339 with the plan's UTC offset (cli.md).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/json.h"
#include "ipwarm/lane.h"
#include "ipwarm/lane_store.h"
#include "ipwarm/placement.h"
#include "ipwarm/plan.h"
#include "ipwarm/ramp.h"
#include "ipwarm/store.h"
#include "ipwarm/tz.h"

/* The human table fits 80 columns; longer notes are cut with "...". */
#define STATUS_COLUMNS 80

#define STATUS_N_RSTATES 7

struct status {
    const struct plan *plan;
    int64_t now_ms;
    const char *state_path;
    bool state_exists;
    bool lock_known; /* the lock could be probed */
    bool lock_held;
    struct store_lock_holder lock;
    int64_t recipients[STATUS_N_RSTATES + 1]; /* per state, then all */
    struct lane_views lanes;                  /* one per plan provider, in the plan's order */
    struct placement_result placement;        /* seed copies by day and provider (placement.h) */
};

/* The inbox rate of provider's latest day with seed copies placed (percent), or -1. */
static double status_inbox_rate(const struct status *s, const char *provider, char *day,
                                size_t size)
{
    double rate = -1;
    for (size_t i = 0; i < s->placement.n; i++) {
        const struct placement_row *r = &s->placement.rows[i];
        double x = placement_inbox_rate(r);
        if (strcmp(r->provider, provider) == 0 && x >= 0) {
            rate = x; /* rows go by date: the last one wins */
            if (day)
                snprintf(day, size, "%s", r->period);
        }
    }
    return rate;
}

/* Recipient states (store.h); "held": its attempt was in flight when a run stopped, so it
 * waits for an operator (`ipwarm release`); "removed": no longer in the list; "skipped": set
 * aside for a local reason. */
static const char *const status_recipient_states[STATUS_N_RSTATES] = {
    "pending", "done", "suppressed", "expired", "held", "removed", "skipped"};

/* Held, suspended or paused: the lane waits for a time (or for `resume`), not for the clock's
 * windows or tomorrow's cap. The contract's paused_until and pause_reason say these. */
static bool status_paused(const struct lane_now *n)
{
    return n->activity == LANE_HELD || n->activity == LANE_SUSPENDED || n->activity == LANE_PAUSED;
}

/* Reads everything status shows from the open store st (NULL: no state file yet). */
static ipw_status status_gather(struct status *s, struct store *st, const struct cli_ctx *ctx,
                                struct err *e)
{
    if (st) {
        struct err le;
        err_clear(&le);
        ipw_status r = store_lock_holder(st, &s->lock, &le);
        if (r == IPW_OK || r == IPW_ENOTFOUND) {
            s->lock_known = true;
            s->lock_held = r == IPW_OK;
        } else {
            /* Not knowing the holder is no reason to hide the rest of the status. */
            cli_info(ctx, "%s", le.msg);
        }
        for (size_t k = 0; k < STATUS_N_RSTATES; k++) {
            r = store_recipients_count(st, status_recipient_states[k], &s->recipients[k], e);
            if (r != IPW_OK)
                return r;
        }
        r = store_recipients_count(st, NULL, &s->recipients[STATUS_N_RSTATES], e);
        if (r != IPW_OK)
            return r;
        if (s->plan->n_seeds > 0) {
            r = placement_collect(s->plan, st, PLACEMENT_BY_DAY, 0, &s->placement, e);
            if (r != IPW_OK)
                return r;
        }
    }
    return lane_store_load(st, s->plan, s->now_ms, &s->lanes, e);
}

static void status_json_time(struct json *j, const char *key, int64_t ms, const char *tz)
{
    char buf[CLOCK_RFC3339_MAX];
    if (ms > 0)
        json_kv_string(j, key, clock_format_rfc3339_local(ms, tz, buf, sizeof buf));
    else
        json_kv_null(j, key);
}

/* The members a lane's object opens with, a provider's or a pool's IP's: where its ramp stands
 * and what it sends today, and its pause. */
static void status_json_lane_head(struct json *j, const struct lane_view *v, const char *tz)
{
    const struct lane_now *n = &v->now;
    bool paused = status_paused(n);
    json_kv_int(j, "stage", v->state.ramp.stage);
    json_kv_int(j, "sending_day", v->state.ramp.sending_day);
    json_kv_double(j, "rate_per_min", n->rate_per_min);
    json_kv_int(j, "sent_today", n->sent_today);
    json_kv_int_or_null(j, "cap_today", n->cap_today, n->cap_today >= 0);
    status_json_time(j, "paused_until", paused ? n->until_ms : 0, tz);
    json_kv_string(j, "pause_reason", paused ? n->reason : NULL);
}

/* What a lane is doing now (lane.h), as report and metrics show it. */
static void status_json_lane_now(struct json *j, const struct lane_now *n, const char *tz)
{
    json_kv_string(j, "state", lane_activity_name(n->activity));
    json_kv_string(j, "state_reason", n->activity == LANE_SENDING ? NULL : n->reason);
    status_json_time(j, "state_until", n->until_ms, tz);
    json_kv_int(j, "stage_today", n->stage);
    json_kv_int(j, "sending_day_today", n->sending_day);
}

static ipw_status status_print_json(const struct status *s, const struct cli_ctx *ctx,
                                    struct err *e)
{
    const char *tz = s->plan->timezone;
    struct json j;
    json_init(&j, ctx->out, true);
    json_object_begin(&j);
    json_kv_string(&j, "campaign", s->plan->campaign);
    /* The clock runs on from --now; whole seconds read better and are exact enough. */
    status_json_time(&j, "now", s->now_ms - s->now_ms % 1000, tz);
    json_kv_string(&j, "today", s->lanes.frame.today);
    json_kv_string(&j, "state", s->state_path);
    json_kv_bool(&j, "state_exists", s->state_exists);
    json_key(&j, "lock");
    if (s->lock_held) {
        json_object_begin(&j);
        if (s->lock.pid > 0) {
            json_kv_int(&j, "pid", s->lock.pid);
            json_kv_string(&j, "host", s->lock.host);
            status_json_time(&j, "since", s->lock.acquired_ms, tz);
        } else {
            /* Held, but the holder has not recorded itself yet. */
            json_kv_null(&j, "pid");
            json_kv_null(&j, "host");
            json_kv_null(&j, "since");
        }
        json_object_end(&j);
    } else {
        json_null(&j);
    }
    json_key(&j, "recipients");
    json_object_begin(&j);
    for (size_t k = 0; k < STATUS_N_RSTATES; k++)
        json_kv_int(&j, status_recipient_states[k], s->recipients[k]);
    json_kv_int(&j, "total", s->recipients[STATUS_N_RSTATES]);
    json_object_end(&j);

    json_key(&j, "providers");
    json_array_begin(&j);
    for (size_t i = 0; i < s->lanes.n; i++) {
        const struct lane_view *v = &s->lanes.v[i];
        const struct lane_now *n = &v->now;
        bool paused = status_paused(n);
        json_object_begin(&j);
        json_kv_string(&j, "name", v->pp->name);
        status_json_lane_head(&j, v, tz);
        json_kv_string(&j, "last_reply", v->last_reply);
        /* Beyond the contract's keys: */
        json_kv_bool(&j, "paused", paused);
        json_kv_bool(&j, "held", paused && n->until_ms == 0);
        json_kv_double(&j, "ramp_rate_per_min", n->planned_per_min);
        status_json_time(&j, "last_reply_at", v->state.last_reply_ms, tz);
        /* What it is doing now, as report and metrics show it (lane.h). */
        status_json_lane_now(&j, n, tz);
        json_kv_bool(&j, "throttled", n->throttled);
        /* Seed placement: the inbox rate of the latest day with copies placed. */
        char pday[16] = "";
        double inbox = status_inbox_rate(s, v->pp->name, pday, sizeof pday);
        if (inbox >= 0) {
            json_kv_double(&j, "inbox_rate", inbox);
            json_kv_string(&j, "inbox_rate_day", pday);
        } else {
            json_kv_null(&j, "inbox_rate");
            json_kv_null(&j, "inbox_rate_day");
        }
        json_key(&j, "actions");
        json_array_begin(&j);
        for (size_t k = 0; k < v->n_actions; k++) {
            const struct store_rule_action *a = &v->actions[k];
            json_object_begin(&j);
            json_kv_string(&j, "action", a->action);
            json_kv_string(&j, "rule", a->rule);
            json_kv_bool(&j, "manual", a->manual != 0);
            json_kv_double_or_null(&j, "rate_per_min", a->rate_per_min, a->rate_per_min > 0);
            json_kv_string(&j, "reason", a->reason);
            status_json_time(&j, "started", a->started_ms, tz);
            status_json_time(&j, "expires", a->expires_ms, tz);
            if (v->ips) /* a pool: the IP it acts on, null for the whole provider */
                json_kv_string(&j, "ip", a->ip);
            json_object_end(&j);
        }
        json_array_end(&j);
        if (v->ips) {
            /* A pool: each IP's own lane. */
            json_key(&j, "ips");
            json_array_begin(&j);
            for (size_t k = 0; k < v->n_ips; k++) {
                const struct lane_view *x = &v->ips[k];
                json_object_begin(&j);
                json_kv_string(&j, "ip", x->ip);
                status_json_lane_head(&j, x, tz);
                status_json_lane_now(&j, &x->now, tz);
                json_kv_string(&j, "last_reply", x->last_reply);
                json_object_end(&j);
            }
            json_array_end(&j);
        }
        json_object_end(&j);
    }
    json_array_end(&j);
    json_object_end(&j);
    return json_finish(&j, e);
}

/* A rate for the table: up to two decimals, without trailing zeros ("11.25", "5", "0.5"). */
static void status_format_rate(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.2f", v);
    char *dot = strchr(buf, '.');
    if (!dot)
        return;
    char *end = buf + strlen(buf);
    while (end > dot + 1 && end[-1] == '0')
        *--end = '\0';
    if (end == dot + 1)
        *dot = '\0';
}

/*
 * Writes s on one line of at most STATUS_COLUMNS columns: control characters (the line breaks of
 * a multi-line reply) become spaces, and a longer text is cut at a UTF-8 character boundary and
 * ends with "...". Returns the columns s takes uncut.
 */
static size_t status_put_cut(FILE *f, const char *s, bool print)
{
    size_t cols = 0, total = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        total += (*p & 0xC0) != 0x80; /* count bytes that are not UTF-8 continuations */
    if (!print)
        return total;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool start = (*p & 0xC0) != 0x80;
        if (start && total > STATUS_COLUMNS && cols == STATUS_COLUMNS - 3) {
            fputs("...", f);
            break;
        }
        fputc((*p < 0x20 || *p == 0x7f) ? ' ' : *p, f);
        cols += start;
    }
    fputc('\n', f);
    return total;
}

/*
 * Writes "  NAME: LABEL TEXT" under the table: on one line when it fits in STATUS_COLUMNS,
 * else the label on one line and the text indented on the next, each cut to fit. The full text
 * is in --json (and, for replies, in `ipwarm trace`).
 */
static void status_note(FILE *f, const char *name, const char *label, const char *text)
{
    char line[4096];
    snprintf(line, sizeof line, "  %s: %s%s%s", name, label, *label && *text ? " " : "", text);
    if (!*label || status_put_cut(f, line, false) <= STATUS_COLUMNS) {
        status_put_cut(f, line, true);
        return;
    }
    snprintf(line, sizeof line, "  %s: %s", name, label);
    status_put_cut(f, line, true);
    snprintf(line, sizeof line, "    %s", text);
    status_put_cut(f, line, true);
}

/* A time for people: the plan's offset, whole seconds (the JSON keeps the milliseconds). */
static char *status_time(int64_t ms, const char *tz, char *buf, size_t n)
{
    return clock_format_rfc3339_local(ms - ms % 1000, tz, buf, n);
}

/* One row of the table: a provider, or an IP of a pool (name indented). */
static void status_row(FILE *f, int wname, const char *name, const struct lane_view *v,
                       const char *tz)
{
    const struct lane_now *n = &v->now;
    char rate[32], today[48], state[CLOCK_RFC3339_MAX + 16], t[CLOCK_RFC3339_MAX];
    status_format_rate(n->rate_per_min, rate, sizeof rate);
    if (n->cap_today >= 0)
        snprintf(today, sizeof today, "%lld/%lld", (long long)n->sent_today,
                 (long long)n->cap_today);
    else
        snprintf(today, sizeof today, "%lld/-", (long long)n->sent_today);
    /* A pause's end fits the column; capped and closed say their end under the table. */
    if (n->activity == LANE_SENDING)
        snprintf(state, sizeof state, "-");
    else if (!status_paused(n))
        snprintf(state, sizeof state, "%s", lane_activity_name(n->activity));
    else if (n->until_ms == 0)
        snprintf(state, sizeof state, "%s until resumed", lane_activity_name(n->activity));
    else
        snprintf(state, sizeof state, "until %s", status_time(n->until_ms, tz, t, sizeof t));
    fprintf(f, "%-*s %5d %4d %8s %11s  %s\n", wname, name, v->state.ramp.stage,
            v->state.ramp.sending_day, rate, today, state);
}

/* Why a lane does not send, and until when: one note. */
static void status_why(FILE *f, const char *name, const struct lane_now *n, const char *tz)
{
    char t[CLOCK_RFC3339_MAX];
    if (status_paused(n)) {
        status_note(f, name, "", n->reason);
        return;
    }
    char label[CLOCK_RFC3339_MAX + 32];
    if (n->until_ms > 0)
        snprintf(label, sizeof label, "%s until %s:", lane_activity_name(n->activity),
                 status_time(n->until_ms, tz, t, sizeof t));
    else
        snprintf(label, sizeof label, "%s:", lane_activity_name(n->activity));
    status_note(f, name, label, n->reason);
}

static ipw_status status_print_human(const struct status *s, const struct cli_ctx *ctx,
                                     struct err *e)
{
    FILE *f = ctx->out;
    const char *tz = s->plan->timezone;
    char t[CLOCK_RFC3339_MAX];
    fprintf(f, "campaign %s at %s\n", s->plan->campaign, status_time(s->now_ms, tz, t, sizeof t));
    if (!s->state_exists) {
        fprintf(f, "state:      %s: no state yet (nothing sent)\n", s->state_path);
    } else {
        fprintf(f, "state:      %s\n", s->state_path);
        if (!s->lock_known)
            fprintf(f, "run lock:   unknown (see the message above)\n");
        else if (!s->lock_held)
            fprintf(f, "run lock:   free (no run is going)\n");
        else if (s->lock.pid > 0)
            fprintf(f, "run lock:   held by pid %ld on %s since %s\n", s->lock.pid, s->lock.host,
                    status_time(s->lock.acquired_ms, tz, t, sizeof t));
        else
            fprintf(f, "run lock:   held (the run has not recorded its pid yet)\n");
        fprintf(f, "recipients: %lld in all:", (long long)s->recipients[STATUS_N_RSTATES]);
        /* The five states of every campaign always; removed and skipped when there are any,
         * so that the line stays within 80 columns in the usual case. */
        for (size_t k = 0; k < STATUS_N_RSTATES; k++)
            if (k < 5 || s->recipients[k] > 0)
                fprintf(f, "%s %lld %s", k ? "," : "", (long long)s->recipients[k],
                        status_recipient_states[k]);
        fputc('\n', f);
    }
    fputc('\n', f);

    int wname = 8;
    for (size_t i = 0; i < s->lanes.n; i++) {
        int n = (int)strlen(s->lanes.v[i].pp->name);
        if (n > wname)
            wname = n;
        for (size_t k = 0; k < s->lanes.v[i].n_ips; k++) {
            n = 2 + (int)strlen(s->lanes.v[i].ips[k].ip);
            if (n > wname)
                wname = n;
        }
    }
    fprintf(f, "%-*s %5s %4s %8s %11s  %s\n", wname, "provider", "stage", "day", "rate/min",
            "today/cap", "state");
    for (size_t i = 0; i < s->lanes.n; i++) {
        const struct lane_view *v = &s->lanes.v[i];
        status_row(f, wname, v->pp->name, v, tz);
        /* A pool: a row per IP under its provider. */
        for (size_t k = 0; k < v->n_ips; k++) {
            char name[80];
            snprintf(name, sizeof name, "  %s", v->ips[k].ip);
            status_row(f, wname, name, &v->ips[k], tz);
        }
    }
    /* Seed placement, for the providers that have figures: one line. */
    bool placed = false;
    for (size_t i = 0; i < s->lanes.n; i++) {
        char pday[16];
        double inbox = status_inbox_rate(s, s->lanes.v[i].pp->name, pday, sizeof pday);
        if (inbox < 0)
            continue;
        fprintf(f, "%s %s %.1f%% (%s)",
                placed ? "," : "\ninbox rate (seeds):", s->lanes.v[i].pp->name, inbox, pday);
        placed = true;
    }
    if (placed)
        fputc('\n', f);

    /* Why: one line per state other than sending, per throttle and per last reply. */
    bool any = false;
    for (size_t i = 0; i < s->lanes.n; i++) {
        const struct lane_view *v = &s->lanes.v[i];
        const struct lane_now *n = &v->now;
        const char *name = v->pp->name;
        bool why = n->activity != LANE_SENDING;
        bool ipwhy = false; /* a pool: an IP that does not send */
        for (size_t k = 0; k < v->n_ips; k++)
            ipwhy = ipwhy || v->ips[k].now.activity != LANE_SENDING;
        if (!any && (v->n_actions > 0 || why || ipwhy || v->last_reply))
            fputc('\n', f);
        any = any || v->n_actions > 0 || why || ipwhy || v->last_reply;
        /* A pool: the IPs that do not send, each on its line. */
        for (size_t k = 0; k < v->n_ips; k++) {
            const struct lane_now *xn = &v->ips[k].now;
            if (xn->activity == LANE_SENDING)
                continue;
            char xname[160];
            snprintf(xname, sizeof xname, "%s from %s", name, v->ips[k].ip);
            status_why(f, xname, xn, tz);
        }
        if (why)
            status_why(f, name, n, tz);
        for (size_t k = 0; k < v->n_actions; k++) {
            const struct store_rule_action *a = &v->actions[k];
            if (!a->action || strcmp(a->action, "throttle") != 0)
                continue;
            /* The rate and its end on the first line, the rule and its reply under it. */
            char label[160], rb[32];
            status_format_rate(a->rate_per_min, rb, sizeof rb);
            if (a->expires_ms > 0)
                snprintf(label, sizeof label, "throttled to %s/min until %s", rb,
                         status_time(a->expires_ms, tz, t, sizeof t));
            else
                snprintf(label, sizeof label, "throttled to %s/min until resumed", rb);
            status_note(f, name, label, "");
            char line[4096];
            snprintf(line, sizeof line, "    rule %s: %s", a->rule ? a->rule : "?",
                     a->reason ? a->reason : "");
            status_put_cut(f, line, true);
        }
        if (v->last_reply) {
            char label[CLOCK_RFC3339_MAX + 16];
            if (v->state.last_reply_ms > 0)
                snprintf(label, sizeof label,
                         "last reply %s:", status_time(v->state.last_reply_ms, tz, t, sizeof t));
            else
                snprintf(label, sizeof label, "last reply:");
            status_note(f, name, label, v->last_reply);
        }
    }
    if (fflush(f) != 0 || ferror(f))
        return err_set(e, IPW_EIO, "status: cannot write the output");
    return IPW_OK;
}

ipw_status cmd_status(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    (void)args;
    struct plan *p = NULL;
    struct store *st = NULL;
    struct status s;
    memset(&s, 0, sizeof s);

    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r != IPW_OK)
        return r;
    s.plan = p;
    s.now_ms = clock_now_ms();
    s.state_path = cli_state_path(ctx, p);

    /* Never create the state file, never take the run lock: status only looks. */
    const struct store_options opt = {.must_exist = 1};
    r = store_open_opts(s.state_path, &opt, &st, e);
    if (r == IPW_ENOINPUT) {
        err_clear(e);
        st = NULL;
    } else if (r != IPW_OK) {
        goto done;
    } else {
        s.state_exists = true;
        r = cli_store_campaign(p, st, e);
        if (r != IPW_OK)
            goto done;
    }

    r = status_gather(&s, st, ctx, e);
    if (r != IPW_OK)
        goto done;
    r = ctx->json ? status_print_json(&s, ctx, e) : status_print_human(&s, ctx, e);

done:
    lane_views_free(&s.lanes);
    placement_result_free(&s.placement);
    store_close(st);
    plan_free(p);
    return r;
}
