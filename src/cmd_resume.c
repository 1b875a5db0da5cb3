/*
 * cmd_resume: `ipwarm resume PROVIDER` ends every hold of a provider.
 *
 * It ends the provider's active rule actions, manual and automatic alike (a suspend after
 * [TSS04], a throttle after "Server busy"): the operator who resumes takes responsibility for
 * sending again, so resume does not second-guess them. Ending sets the actions' expiry to now,
 * so the history stays in the state file. It also clears the pause in the provider's row (a
 * backoff pause or the row side of `ipwarm pause`). The rate is left as backoff set it: it climbs
 * back in recover_step steps, as after any pause, rather than snapping back to full speed.
 *
 * Like pause, resume works while a run is going: no run lock, short transactions. It prints what
 * it ended, so that the operator sees which automatic action they overrode.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/json.h"
#include "ipwarm/lane_store.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"

static char *resume_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* "pause (manual)", "suspend by rule yahoo-tss04 until T", "throttle to 1/min by rule x". */
static void resume_describe(const struct store_rule_action *a, const char *tz, char *buf, size_t n)
{
    char t[CLOCK_RFC3339_MAX] = "";
    char until[CLOCK_RFC3339_MAX + 8] = "";
    if (a->expires_ms > 0)
        snprintf(until, sizeof until, " until %s",
                 clock_format_rfc3339_local(a->expires_ms, tz, t, sizeof t));
    else
        snprintf(until, sizeof until, " until resumed");
    const char *act = a->action ? a->action : "?";
    if (a->manual)
        snprintf(buf, n, "manual %s%s", act, until);
    else if (strcmp(act, "throttle") == 0)
        snprintf(buf, n, "throttle to %g/min by rule %s%s", a->rate_per_min,
                 a->rule ? a->rule : "?", until);
    else
        snprintf(buf, n, "%s by rule %s%s", act, a->rule ? a->rule : "?", until);
}

ipw_status cmd_resume(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct plan *p = NULL;
    struct store *st = NULL;
    struct store_rule_action *ended = NULL; /* the actions ended */
    size_t n_ended = 0;
    struct store_provider row = {0};
    bool have_row = false;
    int64_t cleared_until = 0; /* the row's pause that was cleared; 0 = none */
    bool was_manual = false;   /* that pause was `ipwarm pause`'s */
    char *cleared_reason = NULL;

    const struct plan_provider *pp;
    ipw_status r = cli_load_plan_provider(ctx, args->argv[0], &p, &pp, e);
    if (r != IPW_OK)
        return r;
    const char *name = pp->name;
    const char *tz = p->timezone;
    int64_t now = clock_now_ms();

    /* No state file: nothing was ever paused; do not create one just to say so. */
    const struct store_options opt = {.must_exist = 1};
    r = store_open_opts(cli_state_path(ctx, p), &opt, &st, e);
    if (r == IPW_ENOINPUT) {
        err_clear(e);
        r = IPW_OK;
    } else if (r == IPW_OK) {
        r = cli_store_campaign(p, st, e);
    }
    if (r != IPW_OK)
        goto done;

    if (st) {
        /* What is active now, to say what was ended; then end exactly that (same now). */
        r = lane_store_actions_load(st, now, name, &ended, &n_ended, e);
        if (r != IPW_OK)
            goto done;
        int64_t count = 0;
        r = store_rules_end(st, name, now, 0, &count, e);
        /* A pool's IPs, each paused on its own, send again too. */
        if (r == IPW_OK)
            r = store_lanes_resume(st, name, now, NULL, e);
        if (r != IPW_OK)
            goto done;

        r = lane_store_row_load(st, pp, &row, &have_row, e);
        if (r != IPW_OK)
            goto done;
    }
    if (have_row && (row.pause_manual || row.paused_until_ms != 0 || row.pause_reason)) {
        if (row.paused_until_ms > now) {
            cleared_until = row.paused_until_ms;
            cleared_reason = resume_strdup(row.pause_reason);
            if (row.pause_reason && !cleared_reason) {
                r = err_set(e, IPW_ENOMEM, "resume: out of memory");
                goto done;
            }
        }
        was_manual = row.pause_manual != 0;
        r = lane_store_row_pause(st, &row, 0, false, NULL, now, e);
        if (r != IPW_OK)
            goto done;
    }

    char line[1024], t[CLOCK_RFC3339_MAX];
    if (ctx->json) {
        struct json j;
        json_init(&j, ctx->out, true);
        json_object_begin(&j);
        json_kv_string(&j, "provider", name);
        json_kv_bool(&j, "resumed", n_ended > 0 || cleared_until > 0);
        json_key(&j, "ended");
        json_array_begin(&j);
        for (size_t i = 0; i < n_ended; i++) {
            const struct store_rule_action *a = &ended[i];
            json_object_begin(&j);
            json_kv_string(&j, "action", a->action);
            json_kv_string(&j, "rule", a->rule);
            json_kv_bool(&j, "manual", a->manual != 0);
            json_kv_string(&j, "reason", a->reason);
            if (a->expires_ms > 0)
                json_kv_string(&j, "expires",
                               clock_format_rfc3339_local(a->expires_ms, tz, t, sizeof t));
            else
                json_kv_null(&j, "expires");
            json_object_end(&j);
        }
        json_array_end(&j);
        if (cleared_until > 0)
            json_kv_string(&j, "cleared_pause_until",
                           clock_format_rfc3339_local(cleared_until, tz, t, sizeof t));
        else
            json_kv_null(&j, "cleared_pause_until");
        json_object_end(&j);
        r = json_finish(&j, e);
        goto done;
    }

    if (n_ended == 0 && cleared_until == 0) {
        fprintf(ctx->out, "%s was not paused: nothing to end\n", name);
    } else {
        fprintf(ctx->out, "resumed %s\n", name);
        for (size_t i = 0; i < n_ended; i++) {
            resume_describe(&ended[i], tz, line, sizeof line);
            fprintf(ctx->out, "  ended %s%s%s\n", line, ended[i].reason ? ": " : "",
                    ended[i].reason ? ended[i].reason : "");
        }
        /* A timed manual hold is both an action and the row's pause: report it once. */
        bool manual_said = false;
        for (size_t i = 0; i < n_ended; i++)
            manual_said = manual_said || ended[i].manual != 0;
        if (cleared_until > 0 && !(was_manual && manual_said))
            fprintf(ctx->out, "  cleared the %s pause until %s%s%s\n",
                    was_manual ? "manual" : "backoff",
                    clock_format_rfc3339_local(cleared_until, tz, t, sizeof t),
                    cleared_reason ? ": " : "", cleared_reason ? cleared_reason : "");
    }
    if (fflush(ctx->out) != 0 || ferror(ctx->out))
        r = err_set(e, IPW_EIO, "resume: cannot write the output");

done:
    free(cleared_reason);
    lane_store_actions_free(ended, n_ended);
    if (have_row)
        store_provider_clear(&row);
    store_close(st);
    plan_free(p);
    return r;
}
