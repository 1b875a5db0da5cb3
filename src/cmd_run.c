/*
 * cmd_run: `ipwarm run [--once] [--for DURATION] [--dry-run] [--force]` (see cli.md).
 *
 * Thin: it loads the plan, opens the state file, takes the run lock (a second runner exits 75
 * at once), checks the last pre-flight result, installs the signal handlers that let the
 * message in flight finish (SIGTERM, SIGINT and SIGHUP), and hands over to engine_run(). The
 * pre-flight gate is here too.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/engine.h"
#include "ipwarm/json.h"
#include "ipwarm/preflight.h"
#include "ipwarm/store.h"
#include "ipwarm/tz.h"

static volatile sig_atomic_t cmd_run_stop;

static void cmd_run_on_signal(int sig)
{
    (void)sig;
    cmd_run_stop = 1;
}

/* A recorded pre-flight result older than this is checked again before a run sends. */
#define CMD_RUN_PREFLIGHT_MAX_AGE_MS (24 * 3600000LL)

/*
 * The pre-flight gate: a required check that fails keeps the warm-up from starting, since the
 * first messages of a new IP are the ones that count most. The latest `check` result recorded
 * in the state file is used while it is less than a day old; otherwise the checks run now
 * (the SMTP probes only when the plan requires one of smtp, tls, auth or size) and their
 * result is recorded like `check`'s. A plan that requires nothing is not gated.
 */
static ipw_status cmd_run_preflight_gate(const struct cli_ctx *ctx, const struct plan *p,
                                         struct store *st, struct dns *dns, bool force,
                                         struct err *e)
{
    if (!p->preflight_require)
        return IPW_OK;
    int64_t now = clock_now_ms();
    struct store_preflight pf;
    ipw_status r = store_preflight_latest(st, &pf, e);
    bool ok;
    char failed[512] = "";
    int64_t when_ms;
    /* A result recorded "in the future" (a run with a mistaken --now) is not a recent one. */
    if (r == IPW_OK && now >= pf.run_ms && now - pf.run_ms < CMD_RUN_PREFLIGHT_MAX_AGE_MS) {
        ok = pf.ok;
        when_ms = pf.run_ms;
        store_preflight_clear(&pf);
    } else if (r == IPW_OK || r == IPW_ENOTFOUND) {
        if (r == IPW_OK)
            store_preflight_clear(&pf);
        err_clear(e);
        cli_info(ctx, "running the pre-flight checks (no recent `ipwarm check` result)");
        unsigned smtp = PLAN_CHECK_SMTP | PLAN_CHECK_TLS | PLAN_CHECK_AUTH | PLAN_CHECK_SIZE;
        struct preflight_options po = {.no_smtp = !(p->preflight_require & smtp)};
        struct preflight_report rep;
        preflight_report_init(&rep);
        r = preflight_run(p, dns, &po, &rep, e);
        if (r != IPW_OK) {
            preflight_report_clear(&rep);
            return r;
        }
        ok = rep.ok;
        when_ms = now;
        size_t len = 0;
        for (size_t i = 0; i < rep.n_checks; i++) {
            if (!rep.checks[i].required || rep.checks[i].status != PREFLIGHT_FAIL)
                continue;
            int w = snprintf(failed + len, sizeof failed - len, "%s%s%s%s", len ? ", " : "",
                             rep.checks[i].name, rep.checks[i].subject ? " " : "",
                             rep.checks[i].subject ? rep.checks[i].subject : "");
            if (w > 0 && (size_t)w < sizeof failed - len)
                len += (size_t)w;
        }
        char *doc = preflight_report_json_string(&rep);
        if (doc)
            r = store_preflight_add(st, now, rep.ok, doc, NULL, e);
        free(doc);
        preflight_report_clear(&rep);
        if (r != IPW_OK)
            return r;
    } else {
        return r;
    }
    if (ok)
        return IPW_OK;
    char when[CLOCK_RFC3339_MAX];
    clock_format_rfc3339_local(when_ms / 1000 * 1000, p->timezone, when, sizeof when);
    if (force) {
        cli_info(ctx, "the pre-flight check of %s failed; sending anyway (--force)", when);
        return IPW_OK;
    }
    return err_set(e, IPW_ECHECK,
                   "run: a required pre-flight check failed (%s%s%s): run `ipwarm check` to see "
                   "each problem and its fix, or pass --force to send anyway",
                   when, failed[0] ? ": " : "", failed);
}

/* What an operator must hear about even under cron (where stderr becomes mail): messages whose
 * fate is unknown, refusals of the sender, domains set aside. -q silences them. */
static void cmd_run_warn(const struct cli_ctx *ctx, const struct engine_summary *s)
{
    if (s->recovered > 0)
        cli_info(ctx,
                 "%lld attempts of an earlier run were in flight when it stopped: marked unknown, "
                 "their recipients held (see `ipwarm trace`)",
                 (long long)s->recovered);
    if (s->undeliverable > 0)
        cli_info(ctx, "%lld recipients set aside: their domains cannot receive mail",
                 (long long)s->undeliverable);
    if (s->blocked > 0)
        cli_info(ctx,
                 "%lld messages were refused because of the sender (a block list, an "
                 "authentication policy): their providers are suspended and the recipients "
                 "kept (see `ipwarm status`)",
                 (long long)s->blocked);
    if (s->unknown > 0)
        cli_info(ctx,
                 "%lld messages went out whole but got no reply: their recipients are held "
                 "(see `ipwarm trace`; `ipwarm release` once the server's log shows them)",
                 (long long)s->unknown);
}

/* What cmd_run_clock_ahead collects: the providers the state says were written later than
 * now, and the latest such time. */
struct cmd_run_ahead {
    const char *today;
    int64_t now_ms;
    char names[256];
    size_t len;
    char last[128]; /* the provider named last: a pool's lanes of one provider come in a row */
    int64_t latest_ms;
    char latest_date[TZ_DATE_MAX];
};

static int cmd_run_ahead_cb(const struct store_provider *sp, void *arg)
{
    struct cmd_run_ahead *a = arg;
    bool day_ahead = sp->sending_day_date && strcmp(sp->sending_day_date, a->today) > 0;
    /* A minute of slack: two hosts' clocks, or an NTP step, may differ by that much. */
    bool written_ahead = sp->updated_ms > a->now_ms + 60000;
    if (!day_ahead && !written_ahead)
        return 0;
    bool named = strcmp(a->last, sp->name) == 0;
    snprintf(a->last, sizeof a->last, "%s", sp->name);
    int w = named ? 0
                  : snprintf(a->names + a->len, sizeof a->names - a->len, "%s%s",
                             a->len ? ", " : "", sp->name);
    if (w > 0 && (size_t)w < sizeof a->names - a->len)
        a->len += (size_t)w;
    if (sp->updated_ms > a->latest_ms)
        a->latest_ms = sp->updated_ms;
    if (day_ahead && strcmp(sp->sending_day_date, a->latest_date) > 0)
        snprintf(a->latest_date, sizeof a->latest_date, "%s", sp->sending_day_date);
    return 0;
}

/*
 * A state written by a clock ahead of this one (a run with a mistaken --now in the future, a
 * host whose clock was wrong) is no dead end: the ramp keeps each provider's stage and sending
 * day and moves its day to today (ramp_begin_day, RAMP_CLOCK_BACK), and the pacer starts a new
 * even run now. But it is worth a warning: a pause or a retry set then may still lie ahead.
 */
static void cmd_run_clock_ahead(const struct cli_ctx *ctx, const struct plan *p, struct store *st)
{
    struct cmd_run_ahead a = {.now_ms = clock_now_ms()};
    struct tz_local now;
    struct err e;
    if (tz_local(a.now_ms, p->timezone, &now, &e) != IPW_OK)
        return;
    a.today = now.date;
    if (store_providers_each(st, cmd_run_ahead_cb, &a, &e) != IPW_OK || a.len == 0)
        return;
    char when[CLOCK_RFC3339_MAX] = "";
    if (a.latest_ms > a.now_ms)
        clock_format_rfc3339_local(a.latest_ms / 1000 * 1000, p->timezone, when, sizeof when);
    cli_warn(ctx,
             "the state file %s was written with a clock ahead of this one (%s%s%s%s%s): "
             "going on from now, %s, with each provider's stage and sending day as they are; "
             "a pause or a retry set then may still lie ahead (`ipwarm status`, `ipwarm resume "
             "PROVIDER`)",
             store_path(st), a.names, when[0] ? " last updated " : "", when,
             a.latest_date[0] ? ", sending day dated " : "", a.latest_date, a.today);
}

static void cmd_run_print(const struct cli_ctx *ctx, const struct engine_summary *s, bool dry_run)
{
    if (ctx->json) {
        struct json j;
        json_init(&j, ctx->out, true);
        json_object_begin(&j);
        json_kv_int(&j, "attempts", s->attempts);
        json_kv_int(&j, "delivered", s->delivered);
        json_kv_int(&j, "deferred", s->deferred);
        json_kv_int(&j, "bounced", s->bounced);
        json_kv_int(&j, "failed", s->failed);
        json_kv_int(&j, "expired", s->expired);
        json_kv_int(&j, "unknown", s->unknown);
        json_kv_int(&j, "blocked", s->blocked);
        json_kv_int(&j, "queued", s->queued);
        json_kv_int(&j, "undeliverable", s->undeliverable);
        json_kv_int(&j, "recovered_unknown", s->recovered);
        json_kv_int(&j, "late_bounces", s->late_bounces);
        json_kv_int(&j, "complaints", s->complaints);
        json_kv_int(&j, "feedback_failures", s->feedback_failures);
        json_kv_bool(&j, "all_done", s->all_done);
        json_kv_bool(&j, "dry_run", dry_run);
        json_object_end(&j);
        struct err je;
        json_finish(&j, &je);
        return;
    }
    cli_info(ctx,
             "%s%lld attempts: %lld delivered, %lld deferred, %lld bounced, %lld failed, "
             "%lld expired%s",
             dry_run ? "dry run: " : "", (long long)s->attempts, (long long)s->delivered,
             (long long)s->deferred, (long long)s->bounced, (long long)s->failed,
             (long long)s->expired, s->all_done ? "; every recipient is done" : "");
}

ipw_status cmd_run(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct plan *p = NULL;
    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r != IPW_OK)
        return r;
    struct engine_opts o = {
        .once = cli_args_has(args, "once"),
        .for_ms = cli_args_duration_ms(args, "for", 0),
        .dry_run = cli_args_has(args, "dry-run"),
        .stop = &cmd_run_stop,
    };
    bool force = cli_args_has(args, "force");
    /* A progress line on a terminal; under cron (no terminal) nothing but errors. */
    bool tty = isatty(fileno(ctx->diag));
    if (tty && ctx->verbosity >= 0 && !ctx->json)
        o.progress = ctx->diag;
    if (ctx->verbosity > 0)
        o.log = ctx->diag;
    if (ctx->verbosity >= 0)
        o.warn = ctx->diag;

    struct store *st = NULL;
    struct dns *dns = NULL;
    const char *path = cli_state_path(ctx, p);
    r = store_open(path, &st, e);
    if (r == IPW_OK)
        r = cli_store_campaign(p, st, e);
    if (r == IPW_OK)
        r = store_lock_acquire(st, clock_now_ms(), e);
    if (r == IPW_OK) {
        dns = cli_dns_open(ctx, p, e);
        if (!dns)
            r = e->status != IPW_OK ? e->status : IPW_ETEMP;
    }
    if (r == IPW_OK)
        cmd_run_clock_ahead(ctx, p, st);
    if (r == IPW_OK)
        r = cmd_run_preflight_gate(ctx, p, st, dns, force, e);
    if (r == IPW_OK) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = cmd_run_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        /* A closed terminal or an ended session: by default SIGHUP would end the run like
         * kill -9, leaving its message in flight unknown and its recipient held. */
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        struct engine_summary sum;
        r = engine_run(p, st, dns, &o, &sum, e);
        if (!ctx->json)
            cmd_run_warn(ctx, &sum);
        if (r == IPW_OK && (tty || ctx->verbosity > 0 || ctx->json))
            cmd_run_print(ctx, &sum, o.dry_run);
    }
    dns_free(dns);
    store_close(st);
    plan_free(p);
    return r;
}
