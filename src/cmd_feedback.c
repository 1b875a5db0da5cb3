/*
 * cmd_feedback: `ipwarm feedback parse FILE...` classifies message files as the bounce mailbox
 * poll does (feedback.h) and prints what each says: a readable block per file, or with --json
 * the document of the command-line contract ({"messages": [...]}, with a few more keys).
 *
 * It reads no plan and no state. A readable file is always reported, whatever it turns out to
 * be (bytes that are not a message at all are kind "other", format "none"); a file that does
 * not exist or cannot be read is named on stderr, the others are still reported, and the exit
 * code is then 66. "-" reads standard input. Only the first FEEDBACK_MAX_BYTES of a file are
 * read, as over IMAP ("truncated": true).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/feedback.h"
#include "ipwarm/json.h"
#include "ipwarm/placement.h"
#include "ipwarm/placement_fall.h"
#include "ipwarm/plan.h"
#include "ipwarm/returns.h"
#include "ipwarm/store.h"

/* Reads at most FEEDBACK_MAX_BYTES + 1 bytes of path ("-": stdin) into *data. */
static ipw_status cmd_feedback_read(const char *path, char **data, size_t *len, struct err *e)
{
    *data = NULL;
    *len = 0;
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return err_set(e, IPW_ENOINPUT, "feedback parse: cannot open %s: %s", path,
                       strerror(errno));
    size_t cap = 64 * 1024, max = FEEDBACK_MAX_BYTES + 1;
    char *buf = malloc(cap);
    ipw_status st = IPW_OK;
    while (buf) {
        if (*len == cap && cap < max) {
            size_t ncap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        if (*len == cap)
            break;
        size_t n = fread(buf + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0)
            break;
    }
    if (!buf)
        st = err_set(e, IPW_ENOMEM, "feedback parse: out of memory reading %s", path);
    else if (ferror(f))
        st = err_set(e, IPW_ENOINPUT, "feedback parse: cannot read %s: %s", path,
                     strerror(errno ? errno : EIO));
    if (!is_stdin)
        fclose(f);
    if (st) {
        free(buf);
        *len = 0;
        return st;
    }
    *data = buf;
    return IPW_OK;
}

static void cmd_feedback_text(FILE *out, const char *file, const struct feedback_report *r)
{
    fprintf(out, "%s: %s (%s)%s\n", file, feedback_kind_name(r->kind), r->format,
            r->truncated ? ", truncated" : "");
    if (r->subject)
        fprintf(out, "  subject: %s\n", r->subject);
    for (size_t i = 0; i < r->n_recipients; i++) {
        const struct feedback_recipient *rc = &r->recipients[i];
        const char *action = feedback_action_name(rc->action);
        fprintf(out, "  recipient %s: %s%s%s", rc->address, action ? action : "complained",
                rc->status[0] ? " " : "", rc->status);
        if (rc->diagnostic)
            fprintf(out, " (%s)", rc->diagnostic);
        fputc('\n', out);
    }
    if (r->feedback_type)
        fprintf(out, "  feedback type: %s\n", r->feedback_type);
    if (r->auto_reply)
        fputs("  an automatic reply (out of office or similar)\n", out);
    fprintf(out, "  original Message-ID: %s\n",
            r->original_message_id ? r->original_message_id : "none");
    fprintf(out, "  ipwarm id: %s\n", r->ipwarm_id ? r->ipwarm_id : "none");
    if (r->verp_token)
        fprintf(out, "  VERP token: %s\n", r->verp_token);
    if (r->envelope_id)
        fprintf(out, "  envelope id: %s\n", r->envelope_id);
}

static void cmd_feedback_json(struct json *j, const char *file, const struct feedback_report *r)
{
    json_object_begin(j);
    json_kv_string(j, "file", file);
    json_kv_string(j, "kind", feedback_kind_name(r->kind));
    json_key(j, "recipients");
    json_array_begin(j);
    for (size_t i = 0; i < r->n_recipients; i++) {
        const struct feedback_recipient *rc = &r->recipients[i];
        json_object_begin(j);
        json_kv_string(j, "address", rc->address);
        json_kv_string(j, "action", feedback_action_name(rc->action));
        json_kv_string(j, "status", rc->status[0] ? rc->status : NULL);
        json_kv_string(j, "diagnostic", rc->diagnostic);
        json_kv_string(j, "original_recipient", rc->original);
        json_kv_string(j, "remote_mta", rc->remote_mta);
        json_object_end(j);
    }
    json_array_end(j);
    json_kv_string(j, "feedback_type", r->feedback_type);
    json_kv_string(j, "original_message_id", r->original_message_id);
    json_kv_string(j, "ipwarm_id", r->ipwarm_id);
    /* more than the contract asks */
    json_kv_string(j, "format", r->format);
    json_kv_string(j, "verp_token", r->verp_token);
    json_kv_string(j, "envelope_id", r->envelope_id);
    json_kv_string(j, "reporting_mta", r->reporting_mta);
    json_kv_string(j, "original_mail_from", r->original_mail_from);
    json_kv_string(j, "source_ip", r->source_ip);
    json_kv_string(j, "subject", r->subject);
    json_kv_string(j, "from", r->from);
    json_kv_string(j, "message_id", r->message_id);
    json_kv_bool(j, "auto_reply", r->auto_reply);
    json_kv_bool(j, "truncated", r->truncated);
    json_kv_string(j, "fingerprint", r->fingerprint);
    json_object_end(j);
}

ipw_status cmd_feedback_parse(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct json j;
    if (ctx->json) {
        json_init(&j, ctx->out, true);
        json_object_begin(&j);
        json_key(&j, "messages");
        json_array_begin(&j);
    }
    ipw_status worst = IPW_OK;
    err_clear(e);
    for (int i = 0; i < args->argc; i++) {
        const char *file = args->argv[i];
        char *data = NULL;
        size_t len = 0;
        struct err fe = {0};
        ipw_status st = cmd_feedback_read(file, &data, &len, &fe);
        struct feedback_report *r = NULL;
        if (st == IPW_OK)
            st = feedback_parse(data, len, &r, &fe);
        free(data);
        if (st == IPW_ENOMEM) {
            feedback_report_free(r);
            return err_set(e, st, "%s", fe.msg);
        }
        if (st) {
            /* the others are still reported; the exit code says one was missing */
            err_append(e, st, "%s", fe.msg);
            worst = st;
            continue;
        }
        if (ctx->json)
            cmd_feedback_json(&j, file, r);
        else
            cmd_feedback_text(ctx->out, file, r);
        feedback_report_free(r);
    }
    if (ctx->json) {
        json_array_end(&j);
        json_object_end(&j);
        ipw_status js = json_finish(&j, e);
        if (js)
            return js;
    } else if (fflush(ctx->out) != 0 || ferror(ctx->out)) {
        return err_set(e, IPW_EIO, "feedback parse: cannot write to standard output");
    }
    if (worst)
        e->status = worst;
    return worst;
}

/*
 * `ipwarm feedback poll`: reads the new mail of the plan's feedback mailbox now (returns.h) and
 * prints what it found, one line per mailbox, or with --json the contract's document
 * ({"mailboxes": [...]}, with late_bounces and suppressed besides). A mailbox that cannot be
 * read is still listed, with its error, and the exit code is then 69.
 */
/* One mailbox line of `feedback poll`. */
static void cmd_feedback_mailbox_json(struct json *j, const struct returns_mailbox *mb)
{
    json_object_begin(j);
    json_kv_string(j, "name", mb->name);
    json_kv_int(j, "new", mb->new_);
    json_kv_int(j, "bounces", mb->bounces);
    json_kv_int(j, "delays", mb->delays);
    json_kv_int(j, "complaints", mb->complaints);
    json_kv_int(j, "placements", mb->placements);
    json_kv_int(j, "unmatched", mb->unmatched);
    json_kv_int(j, "other", mb->other);
    json_kv_int(j, "late_bounces", mb->late_bounces);
    json_kv_int(j, "suppressed", mb->suppressed);
    /* The providers feedback.complaints acted on (see status for the reason). */
    json_key(j, "complaint_actions");
    json_array_begin(j);
    for (const char *s = mb->acted; *s;) {
        size_t n = strcspn(s, ",");
        json_string_n(j, s, n);
        s += n + (s[n] == ',');
    }
    json_array_end(j);
    json_kv_string(j, "error", mb->error[0] ? mb->error : NULL);
}

/*
 * `ipwarm feedback poll`: reads the new mail of the plan's feedback mailbox now (returns.h) and
 * looks up the seed copies not placed yet (placement.h), and prints what it found, one line per
 * mailbox (the feedback mailbox, then each seed by its address), or with --json the contract's
 * document ({"mailboxes": [...]}, with late_bounces and suppressed besides, and for a seed
 * "seed": true, inbox, junk, missing and pending). A mailbox that cannot be read is still
 * listed, with its error, the others are still read, and the exit code is then 69.
 */
ipw_status cmd_feedback_poll(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    (void)args;
    struct plan *p = NULL;
    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r != IPW_OK)
        return r;
    if (!p->feedback.enabled && p->n_seeds == 0) {
        r = err_set(e, IPW_ECONFIG,
                    "feedback poll: %s has no feedback section and no seeds: add "
                    "feedback.mailbox or seeds (see docs/feedback.md, docs/placement.md)",
                    p->name);
        plan_free(p);
        return r;
    }
    struct store *st = NULL;
    r = store_open(cli_state_path(ctx, p), &st, e);
    if (r == IPW_OK)
        r = cli_store_campaign(p, st, e);
    struct placement_seed_result *seeds = calloc(p->n_seeds ? p->n_seeds : 1, sizeof *seeds);
    if (r == IPW_OK && !seeds)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    if (r != IPW_OK) {
        free(seeds);
        store_close(st);
        plan_free(p);
        return r;
    }
    struct returns_mailbox mb;
    memset(&mb, 0, sizeof mb);
    int64_t now = clock_now_ms();
    struct returns_opts o = {.now_ms = now};
    ipw_status pr = IPW_OK;
    bool have_fb = p->feedback.enabled;
    if (have_fb)
        pr = returns_poll(p, st, &o, &mb, e);
    /* Only a mailbox that could not be read is reported with the counts; anything else (the
     * password, the state file) is the command's error alone. */
    ipw_status sr = IPW_OK;
    struct err se;
    err_clear(&se);
    char fell[512] = "";
    if (pr == IPW_OK || pr == IPW_EUNAVAIL)
        sr = placement_poll(p, st, now, 0, seeds, &se);
    /* A sharp fall is judged on what is placed, even when a seed could not be read. */
    if (sr == IPW_OK || sr == IPW_EUNAVAIL) {
        struct err fe;
        err_clear(&fe);
        ipw_status fr = placement_fall_act(p, st, now, fell, sizeof fell, &fe);
        if (fr != IPW_OK) {
            sr = fr;
            err_set(&se, fr, "%s", fe.msg);
        }
    }
    size_t n_seeds = p->n_seeds;
    store_close(st);
    plan_free(p);
    if (pr != IPW_OK && pr != IPW_EUNAVAIL) {
        free(seeds);
        return pr;
    }
    if (sr != IPW_OK && sr != IPW_EUNAVAIL) {
        free(seeds);
        return err_set(e, sr, "%s", se.msg);
    }
    if (pr == IPW_OK && sr != IPW_OK) {
        pr = sr;
        err_set(e, sr, "%s", se.msg);
    }
    if (ctx->json) {
        struct json j;
        json_init(&j, ctx->out, true);
        json_object_begin(&j);
        json_key(&j, "mailboxes");
        json_array_begin(&j);
        if (have_fb) {
            cmd_feedback_mailbox_json(&j, &mb);
            json_object_end(&j);
        }
        for (size_t i = 0; i < n_seeds; i++) {
            struct returns_mailbox sm;
            memset(&sm, 0, sizeof sm);
            snprintf(sm.name, sizeof sm.name, "%s", seeds[i].name);
            sm.placements = seeds[i].inbox + seeds[i].junk + seeds[i].missing;
            sm.new_ = seeds[i].inbox + seeds[i].junk;
            snprintf(sm.error, sizeof sm.error, "%s", seeds[i].error);
            cmd_feedback_mailbox_json(&j, &sm);
            json_kv_bool(&j, "seed", true);
            json_kv_int(&j, "inbox", seeds[i].inbox);
            json_kv_int(&j, "junk", seeds[i].junk);
            json_kv_int(&j, "missing", seeds[i].missing);
            json_kv_int(&j, "pending", seeds[i].pending);
            json_object_end(&j);
        }
        json_array_end(&j);
        /* The providers a sharp fall in inbox placement throttled (placement.h). */
        json_key(&j, "placement_actions");
        json_array_begin(&j);
        for (const char *s = fell; *s;) {
            size_t n = strcspn(s, ",");
            json_string_n(&j, s, n);
            s += n + (s[n] == ',');
        }
        json_array_end(&j);
        json_object_end(&j);
        struct err je;
        err_clear(&je);
        r = json_finish(&j, &je);
        if (r != IPW_OK && pr == IPW_OK) {
            free(seeds);
            return err_set(e, r, "%s", je.msg);
        }
    } else {
        fprintf(ctx->out, "%-40s %5s %7s %6s %10s %10s %9s %5s\n", "MAILBOX", "NEW", "BOUNCES",
                "DELAYS", "COMPLAINTS", "PLACEMENTS", "UNMATCHED", "OTHER");
        if (have_fb)
            fprintf(ctx->out, "%-40s %5lld %7lld %6lld %10lld %10lld %9lld %5lld\n", mb.name,
                    (long long)mb.new_, (long long)mb.bounces, (long long)mb.delays,
                    (long long)mb.complaints, (long long)mb.placements, (long long)mb.unmatched,
                    (long long)mb.other);
        if (mb.late_bounces || mb.suppressed)
            fprintf(ctx->out,
                    "%lld late bounce%s (delivered, then bounced); %lld recipient%s "
                    "suppressed\n",
                    (long long)mb.late_bounces, mb.late_bounces == 1 ? "" : "s",
                    (long long)mb.suppressed, mb.suppressed == 1 ? "" : "s");
        if (mb.acted[0])
            fprintf(ctx->out,
                    "complaint rate over feedback.complaints.rate_above: %s %s (see `ipwarm "
                    "status`)\n",
                    mb.acted, "acted on");
        for (size_t i = 0; i < n_seeds; i++) {
            const struct placement_seed_result *sd = &seeds[i];
            fprintf(ctx->out, "%-40s %5lld %7d %6d %10d %10lld %9d %5d\n", sd->name,
                    (long long)(sd->inbox + sd->junk), 0, 0, 0,
                    (long long)(sd->inbox + sd->junk + sd->missing), 0, 0);
            if (sd->error[0])
                fprintf(ctx->out, "  seed %s not read: %s\n", sd->name, sd->error);
            else if (sd->inbox + sd->junk + sd->missing + sd->pending > 0)
                fprintf(ctx->out, "  seed %s: %lld inbox, %lld junk, %lld missing, %lld pending\n",
                        sd->name, (long long)sd->inbox, (long long)sd->junk, (long long)sd->missing,
                        (long long)sd->pending);
        }
        if (fell[0])
            fprintf(ctx->out,
                    "inbox rate under half of advance_if.inbox_rate_above: %s throttled (see "
                    "`ipwarm status`)\n",
                    fell);
        if (fflush(ctx->out) != 0 && pr == IPW_OK) {
            free(seeds);
            return err_set(e, IPW_EIO, "feedback poll: cannot write the output");
        }
    }
    free(seeds);
    return pr;
}
