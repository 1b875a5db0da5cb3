/*
 * cmd_trace: `ipwarm trace ADDRESS` lists every attempt for one recipient, oldest first.
 *
 * Each attempt shows when it started in the plan's time zone with its UTC offset and in UTC
 * (cli.md: times shown to people carry their offset), the MX host or relay, the source IP,
 * the SMTP phase it ended in, the reply code, enhanced code (RFC 3463) and the full reply text
 * as received, and the outcome. The address is matched without regard to case. The human
 * output ends with where the recipient stands in the queue now (its state, why, and when it is
 * due), which is also where a local failure shows: a list value that cannot make a message, a
 * domain that cannot receive mail or an MX lookup that failed is no attempt (nothing went to a
 * provider) but the recipient's state and reason. An address without attempts is an empty
 * answer (exit 0): the question was fine, there is just nothing to show.
 *
 * What came back after the 250 (feedback poll: a late bounce, a delay notice, a complaint
 * report) is shown under the attempt it answers, with the time it was read and its text.
 * For a seed address (the plan's `seeds`), each delivered copy shows where it landed (inbox,
 * junk, missing, or not found yet), the folder and when it was found (placement.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/json.h"
#include "ipwarm/placement.h"
#include "ipwarm/plan.h"
#include "ipwarm/stats.h"
#include "ipwarm/store.h"

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

/* A report read from the mailbox about one of the recipient's attempts (copied). */
struct trace_report {
    int64_t attempt_id, read_ms;
    char *kind, *matched_by, *status, *text, *format;
};

/* Where a copy to a seed landed (copied from store_placement). */
struct trace_placement {
    int64_t attempt_id, found_ms;
    char *result, *folder; /* result NULL: not found yet */
};

struct trace_ctx {
    const char *zone;
    bool seed; /* the address is one of the plan's seeds */
    struct trace_placement *placements;
    size_t n_placements;
    FILE *out;
    struct json *j; /* NULL: human output */
    size_t n;
    struct trace_report *reports;
    size_t n_reports;
    bool nomem;
};

static char *trace_dup(const char *s, bool *nomem)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *nomem = true;
    return d;
}

static int trace_report_cb(const struct store_report *r, void *arg)
{
    struct trace_ctx *t = arg;
    if (!r->attempt_id)
        return 0;
    struct trace_report *n = realloc(t->reports, (t->n_reports + 1) * sizeof *n);
    if (!n) {
        t->nomem = true;
        return 1;
    }
    t->reports = n;
    struct trace_report *w = &n[t->n_reports++];
    w->attempt_id = r->attempt_id;
    w->read_ms = r->read_ms;
    w->kind = trace_dup(r->kind, &t->nomem);
    w->matched_by = trace_dup(r->matched_by, &t->nomem);
    w->status = trace_dup(r->status, &t->nomem);
    w->text = trace_dup(r->text, &t->nomem);
    w->format = trace_dup(r->format, &t->nomem);
    return 0;
}

static void trace_reports_free(struct trace_ctx *t)
{
    for (size_t i = 0; i < t->n_reports; i++) {
        struct trace_report *w = &t->reports[i];
        free(w->kind);
        free(w->matched_by);
        free(w->status);
        free(w->text);
        free(w->format);
    }
    free(t->reports);
}

static int trace_placement_cb(const struct store_placement *c, void *arg)
{
    struct trace_ctx *t = arg;
    struct trace_placement *n = realloc(t->placements, (t->n_placements + 1) * sizeof *n);
    if (!n) {
        t->nomem = true;
        return 1;
    }
    t->placements = n;
    struct trace_placement *w = &n[t->n_placements++];
    w->attempt_id = c->attempt_id;
    w->found_ms = c->found_ms;
    w->result = trace_dup(c->result, &t->nomem);
    w->folder = trace_dup(c->folder, &t->nomem);
    return 0;
}

static void trace_placements_free(struct trace_ctx *t)
{
    for (size_t i = 0; i < t->n_placements; i++) {
        free(t->placements[i].result);
        free(t->placements[i].folder);
    }
    free(t->placements);
}

/* Where the copy of attempt a landed, under it: only for a seed's delivered copies (JSON:
 * "placement": {"result": "inbox|junk|missing|pending", "folder", "found"}, else null). */
static void trace_placement_of(const struct trace_ctx *t, const struct store_attempt *a)
{
    const struct trace_placement *w = NULL;
    for (size_t i = 0; t->seed && i < t->n_placements && !w; i++)
        if (t->placements[i].attempt_id == a->id)
            w = &t->placements[i];
    if (!w) {
        if (t->j)
            json_kv_null(t->j, "placement");
        return;
    }
    char when[CLOCK_RFC3339_MAX] = "";
    if (w->result && w->found_ms)
        clock_format_rfc3339_local(w->found_ms, t->zone, when, sizeof when);
    if (t->j) {
        json_key(t->j, "placement");
        json_object_begin(t->j);
        json_kv_string(t->j, "result", w->result ? w->result : "pending");
        json_kv_string(t->j, "folder", w->folder);
        json_kv_string(t->j, "found", when[0] ? when : NULL);
        json_object_end(t->j);
        return;
    }
    if (!w->result)
        fputs("  placement: not found yet (looked up by the next feedback poll; missing 24 h "
              "after it was sent)\n",
              t->out);
    else if (strcmp(w->result, "missing") == 0)
        fprintf(t->out,
                "  placement: missing (in neither folder 24 h after it was sent; given up %s)\n",
                when[0] ? when : "-");
    else
        fprintf(t->out, "  placement: %s, folder %s, found %s\n", w->result, or_dash(w->folder),
                when[0] ? when : "-");
}

/* "late bounce", "delay notice", "complaint": how a report reads under its attempt. */
static const char *trace_kind(const char *kind)
{
    if (strcmp(kind, "bounce") == 0)
        return "bounce";
    if (strcmp(kind, "delay") == 0)
        return "delay notice";
    if (strcmp(kind, "complaint") == 0)
        return "complaint";
    return "report";
}

/* The reports of attempt a, under it. */
static void trace_reports_of(const struct trace_ctx *t, const struct store_attempt *a)
{
    if (t->j) {
        json_key(t->j, "reports");
        json_array_begin(t->j);
    }
    for (size_t i = 0; i < t->n_reports; i++) {
        const struct trace_report *w = &t->reports[i];
        if (w->attempt_id != a->id)
            continue;
        char when[CLOCK_RFC3339_MAX];
        clock_format_rfc3339_local(w->read_ms, t->zone, when, sizeof when);
        if (t->j) {
            json_object_begin(t->j);
            json_kv_string(t->j, "kind", w->kind);
            json_kv_string(t->j, "read", when);
            json_kv_string(t->j, "matched_by", w->matched_by);
            json_kv_string(t->j, "format", w->format);
            json_kv_string(t->j, "status", w->status);
            json_kv_string(t->j, "text", w->text);
            json_object_end(t->j);
            continue;
        }
        fprintf(t->out, "  %s read %s (%s, matched by %s)%s%s%s%s\n", trace_kind(w->kind), when,
                or_dash(w->format), or_dash(w->matched_by), w->status ? ": " : "",
                w->status ? w->status : "", w->text ? " " : "", w->text ? w->text : "");
    }
    if (t->j)
        json_array_end(t->j);
}

static int trace_one(const struct store_attempt *a, void *arg)
{
    struct trace_ctx *t = arg;
    char local[CLOCK_RFC3339_MAX], utc[CLOCK_RFC3339_MAX];
    clock_format_rfc3339_local(a->started_ms, t->zone, local, sizeof local);
    clock_format_rfc3339_utc(a->started_ms, utc, sizeof utc);
    t->n++;
    if (t->j) {
        struct json *j = t->j;
        json_object_begin(j);
        json_kv_string(j, "time", local);
        json_kv_string(j, "time_utc", utc);
        json_kv_string(j, "recipient", a->recipient);
        json_kv_string(j, "provider", a->provider);
        json_kv_string(j, "mx", a->mx);
        json_kv_string(j, "source_ip", a->source_ip);
        json_kv_string(j, "phase", a->phase);
        json_kv_int_or_null(j, "code", a->code, a->code != 0);
        json_kv_string(j, "enhanced", a->enhanced);
        json_kv_string(j, "text", a->text);
        json_kv_string(j, "outcome", a->outcome);
        json_kv_int(j, "attempt_id", a->id);
        json_kv_int(j, "retry_no", a->retry_no);
        if (a->finished_ms) {
            char fin[CLOCK_RFC3339_MAX];
            json_kv_string(j, "finished",
                           clock_format_rfc3339_local(a->finished_ms, t->zone, fin, sizeof fin));
        } else {
            json_kv_null(j, "finished");
        }
        json_kv_string(j, "message_id", a->message_id);
        json_kv_bool(j, "dry_run", a->dry_run != 0);
        json_kv_string(j, "mail_from", a->mail_from);
        trace_placement_of(t, a);
        trace_reports_of(t, a);
        json_object_end(j);
        return 0;
    }
    FILE *f = t->out;
    if (t->n > 1)
        fputc('\n', f);
    fprintf(f, "%s (%s)  %s%s\n", local, utc, a->outcome, a->dry_run ? " (dry run)" : "");
    fprintf(f, "  provider %s  mx %s  source %s\n", a->provider, or_dash(a->mx),
            or_dash(a->source_ip));
    fprintf(f, "  phase %s  retry %d\n", or_dash(a->phase), a->retry_no);
    char code[8] = "-";
    if (a->code)
        snprintf(code, sizeof code, "%d", a->code);
    const char *text = a->text && *a->text ? a->text : "(none)";
    /* The full reply, each of its lines indented under the attempt, read as it was received:
     * "421 4.7.28 Our system has detected ...". The code goes in front unless the text already
     * starts with it; the enhanced code only when the text does not already open with it, as
     * the stored text does (reply.h: the first line keeps its enhanced code). */
    size_t el = a->enhanced ? strlen(a->enhanced) : 0;
    bool has_enhanced =
        el > 0 && strncmp(text, a->enhanced, el) == 0 && (text[el] == '\0' || text[el] == ' ');
    if (a->code && strncmp(text, code, 3) == 0 &&
        (text[3] == '\0' || text[3] == ' ' || text[3] == '-' || text[3] == '\n'))
        fputs("  reply ", f);
    else if (el > 0 && !has_enhanced)
        fprintf(f, "  reply %s %s ", code, a->enhanced);
    else
        fprintf(f, "  reply %s ", code);
    for (const char *p = text; *p; p++) {
        if (*p == '\r')
            continue;
        fputc(*p, f);
        if (*p == '\n' && p[1])
            fputs("        ", f);
    }
    fputc('\n', f);
    trace_placement_of(t, a);
    trace_reports_of(t, a);
    return 0;
}

/* Where the recipient stands now: "now: skipped: REASON", "now: pending, due TIME". */
static ipw_status trace_queue(struct store *st, const char *address, const struct trace_ctx *t,
                              struct err *e)
{
    struct store_recipient r;
    ipw_status s = store_recipient_get(st, address, &r, e);
    if (s == IPW_ENOTFOUND) {
        err_clear(e);
        fprintf(t->out, "%s%s is not in the queue\n", t->n ? "\n" : "", address);
        return IPW_OK;
    }
    if (s != IPW_OK)
        return s;
    fprintf(t->out, "%s%s now: %s", t->n ? "\n" : "", r.address, r.state);
    if (strcmp(r.state, "pending") == 0) {
        char due[CLOCK_RFC3339_MAX];
        fprintf(t->out, ", due %s",
                r.next_at_ms > 0
                    ? clock_format_rfc3339_local(r.next_at_ms, t->zone, due, sizeof due)
                    : "now");
    }
    if (r.retries > 0)
        fprintf(t->out, ", %d %s", r.retries, r.retries == 1 ? "retry" : "retries");
    fprintf(t->out, "%s%s\n", r.reason ? ": " : "", r.reason ? r.reason : "");
    store_recipient_clear(&r);
    return IPW_OK;
}

ipw_status cmd_trace(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    const char *address = args->argv[0];
    struct plan *p;
    struct store *st;
    ipw_status r = cli_load_plan_store(ctx, &p, &st, e);
    if (r != IPW_OK)
        return r;
    struct json j;
    struct trace_ctx t = {.zone = p->timezone ? p->timezone : "UTC", .out = ctx->out};
    if (ctx->json) {
        json_init(&j, ctx->out, true);
        json_array_begin(&j);
        t.j = &j;
    }
    r = store_reports_for_recipient(st, address, trace_report_cb, &t, e);
    t.seed = placement_is_seed(p, address) != 0;
    if (r == IPW_OK && t.seed)
        r = store_placement_copies(st, address, 0, 0, trace_placement_cb, &t, e);
    if (r == IPW_OK && t.nomem)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    if (r == IPW_OK)
        r = store_attempts_for_recipient(st, address, trace_one, &t, e);
    if (ctx->json) {
        json_array_end(&j);
        ipw_status jr = json_finish(&j, e);
        if (r == IPW_OK)
            r = jr;
    } else if (r == IPW_OK) {
        if (t.n == 0)
            fprintf(ctx->out, "no attempts recorded for %s\n", address);
        r = trace_queue(st, address, &t, e);
        if (r == IPW_OK && (fflush(ctx->out) != 0 || ferror(ctx->out)))
            r = err_set(e, IPW_EIO, "trace: cannot write the output");
    }
    trace_reports_free(&t);
    trace_placements_free(&t);
    store_close(st);
    plan_free(p);
    return r;
}
