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
 * The values shown follow what the engine does with the same stored state (docs/schema.md):
 * - the rate is the stored rate (after backoff), or the ramp's rate for the stage when none was
 *   stored, and never above the lowest active throttle rule;
 * - "today" is the plan's local date: a count stored for another date is 0 today, and the cap is
 *   that of the sending day in progress, or of the one that begins with today's first message;
 * - a provider is paused while a pause or suspend rule action is active (a manual hold has no
 *   end until `ipwarm resume`) or while the backoff pause stored in its row lasts.
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
#include "ipwarm/plan.h"
#include "ipwarm/ramp.h"
#include "ipwarm/store.h"
#include "ipwarm/tz.h"

/* The human table fits 80 columns; longer notes are cut with "...". */
#define STATUS_COLUMNS 80

#define STATUS_N_RSTATES 7

/* One active rule action, copied out of the store's callback. */
struct status_action {
    char *rule;
    char *action;
    char *reason;
    double rate_per_min;
    int64_t started_ms;
    int64_t expires_ms; /* 0 = until resumed */
    bool manual;
};

/* What status shows for one provider. */
struct status_row {
    const struct plan_provider *pp;
    bool stored; /* the store has a row for it */
    int stage;
    int sending_day;
    double ramp_rate;   /* the ramp's rate for the stage */
    double stored_rate; /* the row's rate after backoff; 0 = none */
    double rate;        /* effective: what the engine sends at when not paused */
    int64_t sent_today;
    int64_t cap; /* -1 = none */
    bool paused;
    bool held;               /* paused with no end: a manual hold or an open-ended action */
    int64_t paused_until_ms; /* latest end of the pauses; 0 when none or held */
    char *pause_reason;      /* malloc'd; NULL = not paused */
    char *last_reply;        /* malloc'd; NULL = none */
    int64_t last_reply_ms;
    struct status_action *actions;
    size_t n_actions;
};

struct status {
    const struct plan *plan;
    int64_t now_ms;
    char today[TZ_DATE_MAX];
    const char *state_path;
    bool state_exists;
    bool lock_known; /* the lock could be probed */
    bool lock_held;
    struct store_lock_holder lock;
    int64_t recipients[STATUS_N_RSTATES + 1]; /* per state, then all */
    struct status_row *rows;
    size_t n_rows;
};

/* Recipient states (store.h); "held": its attempt was in flight when a run stopped, so it
 * waits for an operator (`ipwarm release`); "removed": no longer in the list; "skipped": set
 * aside for a local reason. */
static const char *const status_recipient_states[STATUS_N_RSTATES] = {
    "pending", "done", "suppressed", "expired", "held", "removed", "skipped"};

static char *status_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void status_free(struct status *s)
{
    for (size_t i = 0; i < s->n_rows; i++) {
        struct status_row *r = &s->rows[i];
        free(r->pause_reason);
        free(r->last_reply);
        for (size_t k = 0; k < r->n_actions; k++) {
            free(r->actions[k].rule);
            free(r->actions[k].action);
            free(r->actions[k].reason);
        }
        free(r->actions);
    }
    free(s->rows);
}

struct status_collect {
    struct status_row *row;
    bool nomem;
};

/* store_rules_active() callback: keeps a copy of each action (the strings die on return). */
static int status_collect_action(const struct store_rule_action *a, void *vctx)
{
    struct status_collect *c = vctx;
    struct status_row *r = c->row;
    struct status_action *grown = realloc(r->actions, (r->n_actions + 1) * sizeof *grown);
    if (!grown) {
        c->nomem = true;
        return 1;
    }
    r->actions = grown;
    struct status_action *x = &r->actions[r->n_actions];
    memset(x, 0, sizeof *x);
    x->rule = status_strdup(a->rule);
    x->action = status_strdup(a->action);
    x->reason = status_strdup(a->reason);
    x->rate_per_min = a->rate_per_min;
    x->started_ms = a->started_ms;
    x->expires_ms = a->expires_ms;
    x->manual = a->manual != 0;
    r->n_actions++;
    if ((a->rule && !x->rule) || (a->action && !x->action) || (a->reason && !x->reason)) {
        c->nomem = true;
        return 1;
    }
    return 0;
}

/* Appends "; part" (or part when reason is still empty) to *reason. Returns false when out of
 * memory. */
static bool status_reason_add(char **reason, const char *prefix, const char *part)
{
    const char *sep = *reason ? "; " : "";
    const char *old = *reason ? *reason : "";
    size_t n = strlen(old) + strlen(sep) + strlen(prefix) + strlen(part) + 1;
    char *s = malloc(n);
    if (!s)
        return false;
    snprintf(s, n, "%s%s%s%s", old, sep, prefix, part);
    free(*reason);
    *reason = s;
    return true;
}

/*
 * Fills row from the stored provider (p may be NULL: never sent to) and its active actions.
 * Returns IPW_OK or IPW_ENOMEM.
 */
static ipw_status status_row_fill(struct status *s, struct status_row *row,
                                  const struct store_provider *p, struct err *e)
{
    const struct plan_ramp *ramp = &row->pp->ramp;
    int next_day = 1;
    if (p) {
        row->stored = true;
        row->stage = p->stage;
        row->sending_day = p->sending_day;
        row->stored_rate = p->rate_per_min;
        if (p->sent_today_date && strcmp(p->sent_today_date, s->today) == 0)
            row->sent_today = p->sent_today;
        /* The day in progress, or the one today's first message begins. */
        if (p->sending_day_date && strcmp(p->sending_day_date, s->today) == 0)
            next_day = p->sending_day;
        else
            next_day = p->sending_day + 1;
        if (p->last_reply) {
            row->last_reply = strdup(p->last_reply);
            if (!row->last_reply)
                return err_set(e, IPW_ENOMEM, "status: out of memory");
            row->last_reply_ms = p->last_reply_ms;
        }
    }
    row->ramp_rate = ramp_rate_for_stage(ramp, row->stage);
    row->rate = row->stored_rate > 0 ? row->stored_rate : row->ramp_rate;
    row->cap = ramp_cap_today(ramp, next_day < 1 ? 1 : next_day);

    bool held = false;
    int64_t until = 0;
    for (size_t k = 0; k < row->n_actions; k++) {
        const struct status_action *a = &row->actions[k];
        const char *act = a->action ? a->action : "";
        if (strcmp(act, "throttle") == 0 && a->rate_per_min > 0) {
            if (a->rate_per_min < row->rate)
                row->rate = a->rate_per_min;
            continue;
        }
        if (strcmp(act, "pause") != 0 && strcmp(act, "suspend") != 0)
            continue;
        if (a->expires_ms == 0)
            held = true;
        else if (a->expires_ms > until)
            until = a->expires_ms;
        char prefix[256];
        if (a->manual)
            prefix[0] = '\0';
        else
            snprintf(prefix, sizeof prefix, "%s by rule %s: ", act, a->rule ? a->rule : "?");
        if (!status_reason_add(&row->pause_reason, prefix,
                               a->reason ? a->reason : (a->manual ? "paused by hand" : "")))
            return err_set(e, IPW_ENOMEM, "status: out of memory");
    }
    if (p && p->paused_until_ms > s->now_ms) {
        if (p->paused_until_ms > until)
            until = p->paused_until_ms;
        /* A manual hold with an end is in the row and in its action: say it once. */
        bool said = false;
        for (size_t k = 0; k < row->n_actions && p->pause_manual; k++)
            said = said || row->actions[k].manual;
        if (!said) {
            const char *prefix = p->pause_manual ? "" : "backoff: ";
            const char *why = p->pause_reason   ? p->pause_reason
                              : p->pause_manual ? "paused by hand"
                                                : "deferrals";
            if (!status_reason_add(&row->pause_reason, prefix, why))
                return err_set(e, IPW_ENOMEM, "status: out of memory");
        }
    }
    row->held = held;
    row->paused = held || until > 0;
    row->paused_until_ms = held ? 0 : until;
    return IPW_OK;
}

/* Reads everything status shows from the open store st (NULL: no state file yet). */
static ipw_status status_gather(struct status *s, struct store *st, const struct cli_ctx *ctx,
                                struct err *e)
{
    const struct plan *p = s->plan;
    s->rows = calloc(p->n_providers ? p->n_providers : 1, sizeof *s->rows);
    if (!s->rows)
        return err_set(e, IPW_ENOMEM, "status: out of memory");
    s->n_rows = p->n_providers;
    for (size_t i = 0; i < p->n_providers; i++)
        s->rows[i].pp = &p->providers[i];

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
    }

    for (size_t i = 0; i < s->n_rows; i++) {
        struct status_row *row = &s->rows[i];
        struct store_provider sp;
        memset(&sp, 0, sizeof sp);
        bool have = false;
        if (st) {
            struct status_collect c = {.row = row};
            ipw_status r =
                store_rules_active(st, s->now_ms, row->pp->name, status_collect_action, &c, e);
            if (r == IPW_OK && c.nomem)
                r = err_set(e, IPW_ENOMEM, "status: out of memory");
            if (r != IPW_OK)
                return r;
            r = store_provider_load(st, row->pp->name, &sp, e);
            if (r == IPW_OK)
                have = true;
            else if (r != IPW_ENOTFOUND)
                return r;
            err_clear(e);
        }
        ipw_status r = status_row_fill(s, row, have ? &sp : NULL, e);
        if (have)
            store_provider_clear(&sp);
        if (r != IPW_OK)
            return r;
    }
    return IPW_OK;
}

static void status_json_time(struct json *j, const char *key, int64_t ms, const char *tz)
{
    char buf[CLOCK_RFC3339_MAX];
    if (ms > 0)
        json_kv_string(j, key, clock_format_rfc3339_local(ms, tz, buf, sizeof buf));
    else
        json_kv_null(j, key);
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
    json_kv_string(&j, "today", s->today);
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
    for (size_t i = 0; i < s->n_rows; i++) {
        const struct status_row *r = &s->rows[i];
        json_object_begin(&j);
        json_kv_string(&j, "name", r->pp->name);
        json_kv_int(&j, "stage", r->stage);
        json_kv_int(&j, "sending_day", r->sending_day);
        json_kv_double(&j, "rate_per_min", r->rate);
        json_kv_int(&j, "sent_today", r->sent_today);
        if (r->cap >= 0)
            json_kv_int(&j, "cap_today", r->cap);
        else
            json_kv_null(&j, "cap_today");
        status_json_time(&j, "paused_until", r->paused_until_ms, tz);
        json_kv_string(&j, "pause_reason", r->pause_reason);
        json_kv_string(&j, "last_reply", r->last_reply);
        /* Beyond the contract's keys: */
        json_kv_bool(&j, "paused", r->paused);
        json_kv_bool(&j, "held", r->held);
        json_kv_double(&j, "ramp_rate_per_min", r->ramp_rate);
        status_json_time(&j, "last_reply_at", r->last_reply_ms, tz);
        json_key(&j, "actions");
        json_array_begin(&j);
        for (size_t k = 0; k < r->n_actions; k++) {
            const struct status_action *a = &r->actions[k];
            json_object_begin(&j);
            json_kv_string(&j, "action", a->action);
            json_kv_string(&j, "rule", a->rule);
            json_kv_bool(&j, "manual", a->manual);
            if (a->rate_per_min > 0)
                json_kv_double(&j, "rate_per_min", a->rate_per_min);
            else
                json_kv_null(&j, "rate_per_min");
            json_kv_string(&j, "reason", a->reason);
            status_json_time(&j, "started", a->started_ms, tz);
            status_json_time(&j, "expires", a->expires_ms, tz);
            json_object_end(&j);
        }
        json_array_end(&j);
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
    for (size_t i = 0; i < s->n_rows; i++) {
        int n = (int)strlen(s->rows[i].pp->name);
        if (n > wname)
            wname = n;
    }
    fprintf(f, "%-*s %5s %4s %8s %11s  %s\n", wname, "provider", "stage", "day", "rate/min",
            "today/cap", "pause");
    for (size_t i = 0; i < s->n_rows; i++) {
        const struct status_row *r = &s->rows[i];
        char rate[32], today[48], pause[CLOCK_RFC3339_MAX + 16];
        status_format_rate(r->rate, rate, sizeof rate);
        if (r->cap >= 0)
            snprintf(today, sizeof today, "%lld/%lld", (long long)r->sent_today, (long long)r->cap);
        else
            snprintf(today, sizeof today, "%lld/-", (long long)r->sent_today);
        if (r->held)
            snprintf(pause, sizeof pause, "held until resumed");
        else if (r->paused)
            snprintf(pause, sizeof pause, "until %s",
                     status_time(r->paused_until_ms, tz, t, sizeof t));
        else
            snprintf(pause, sizeof pause, "-");
        fprintf(f, "%-*s %5d %4d %8s %11s  %s\n", wname, r->pp->name, r->stage, r->sending_day,
                rate, today, pause);
    }

    /* Why: one line per pause, action and last reply, under the table. */
    bool any = false;
    for (size_t i = 0; i < s->n_rows; i++) {
        const struct status_row *r = &s->rows[i];
        const char *name = r->pp->name;
        if (!any && (r->n_actions > 0 || r->pause_reason || r->last_reply))
            fputc('\n', f);
        any = any || r->n_actions > 0 || r->pause_reason || r->last_reply;
        if (r->pause_reason)
            status_note(f, name, "", r->pause_reason);
        for (size_t k = 0; k < r->n_actions; k++) {
            const struct status_action *a = &r->actions[k];
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
        if (r->last_reply) {
            char label[CLOCK_RFC3339_MAX + 16];
            if (r->last_reply_ms > 0)
                snprintf(label, sizeof label,
                         "last reply %s:", status_time(r->last_reply_ms, tz, t, sizeof t));
            else
                snprintf(label, sizeof label, "last reply:");
            status_note(f, name, label, r->last_reply);
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
    struct tz_local lt;
    r = tz_local(s.now_ms, p->timezone, &lt, e);
    if (r != IPW_OK)
        goto done;
    memcpy(s.today, lt.date, sizeof s.today);

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
    status_free(&s);
    store_close(st);
    plan_free(p);
    return r;
}
