/*
 * cmd_pause: `ipwarm pause PROVIDER [--for DURATION]` holds a provider by hand.
 *
 * A manual hold is recorded the way automatic ones are, so that the engine, `status` and the
 * history treat both alike: a rule action "pause" (rule "manual", manual 1, the operator named
 * in its reason) that expires after --for or, without it, lasts until `ipwarm resume`; and the
 * provider's row says pause_manual = 1 with paused_until_ms, so that a reader of the row alone
 * also sees the hold. The engine sends nothing to a provider with an active pause or suspend
 * action or with paused_until_ms in the future.
 *
 * Pausing must work while a run is going (that is when an operator needs it), so it takes no
 * run lock: each write is one short transaction that waits for the run's own short
 * transactions. A new manual hold replaces an earlier one (so `pause gmail --for 2h` after
 * `pause gmail` shortens the hold to two hours), while automatic actions stay: the operator can
 * hold longer than backoff, never shorter; `ipwarm resume` ends everything.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/json.h"
#include "ipwarm/lane_store.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"

/*
 * Who is pausing, for the record: the user behind sudo if root was reached through it, else
 * the account of the effective uid, else $USER, else "uid N".
 */
static void pause_user(char *buf, size_t n)
{
    const char *sudo = getenv("SUDO_USER");
    if (geteuid() == 0 && sudo && *sudo) {
        snprintf(buf, n, "%s (via sudo)", sudo);
        return;
    }
    const struct passwd *pw = getpwuid(geteuid());
    const char *env = getenv("USER");
    if (pw && pw->pw_name && *pw->pw_name)
        snprintf(buf, n, "%s", pw->pw_name);
    else if (env && *env)
        snprintf(buf, n, "%s", env);
    else
        snprintf(buf, n, "uid %ld", (long)geteuid());
}

ipw_status cmd_pause(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct plan *p = NULL;
    struct store *st = NULL;
    struct store_provider row = {0};
    bool have_row = false;

    const struct plan_provider *pp;
    ipw_status r = cli_load_plan_provider(ctx, args->argv[0], &p, &pp, e);
    if (r != IPW_OK)
        return r;
    const char *name = pp->name;

    int64_t now = clock_now_ms();
    int64_t for_ms = cli_args_duration_ms(args, "for", 0);
    /* The end at a whole second: "until 11:00:00", not "until 11:00:00.004" when the clock
     * ran on a few milliseconds from --now or from the operator's keystroke. */
    int64_t until = 0;
    if (for_ms > 0)
        until = (now + for_ms + 500) / 1000 * 1000;

    char user[128], reason[256];
    pause_user(user, sizeof user);
    snprintf(reason, sizeof reason, "paused by hand by %s", user);

    /* Pausing before the first run is fine: it creates the state file the run will use. */
    r = store_open(cli_state_path(ctx, p), &st, e);
    if (r == IPW_OK)
        r = cli_store_campaign(p, st, e);
    if (r != IPW_OK)
        goto done;

    r = lane_store_row_load(st, pp, &row, &have_row, e);
    if (r != IPW_OK)
        goto done;

    /*
     * The row first: while the old manual action is ended and the new one added (two short
     * transactions), the row already says the provider is held. A backoff pause that lasts
     * longer than a timed hold keeps its end.
     */
    int64_t row_until = until;
    if (until > 0 && row.paused_until_ms > until)
        row_until = row.paused_until_ms;
    r = lane_store_row_pause(st, &row, row_until, true, reason, now, e);
    if (r != IPW_OK)
        goto done;

    int64_t replaced = 0;
    r = store_rules_end(st, name, now, 1, &replaced, e);
    if (r != IPW_OK)
        goto done;
    const struct store_rule_action a = {
        .provider = name,
        .rule = "manual",
        .action = "pause",
        .reason = reason,
        .started_ms = now,
        .expires_ms = until,
        .manual = 1,
    };
    r = store_rule_add(st, &a, NULL, e);
    if (r != IPW_OK)
        goto done;

    char t[CLOCK_RFC3339_MAX];
    if (until > 0)
        clock_format_rfc3339_local(until, p->timezone, t, sizeof t);
    if (ctx->json) {
        struct json j;
        json_init(&j, ctx->out, true);
        json_object_begin(&j);
        json_kv_string(&j, "provider", name);
        json_kv_string(&j, "action", "pause");
        json_kv_string(&j, "paused_until", until > 0 ? t : NULL);
        json_kv_bool(&j, "held", until == 0);
        json_kv_string(&j, "reason", reason);
        json_kv_int(&j, "replaced", replaced);
        json_object_end(&j);
        r = json_finish(&j, e);
        goto done;
    }
    if (until > 0)
        fprintf(ctx->out, "paused %s until %s\n", name, t);
    else
        fprintf(ctx->out, "paused %s until resumed\n", name);
    if (replaced > 0)
        cli_info(ctx, "this hold replaces the earlier manual one");
    if (until > 0 && row_until > until) {
        char t2[CLOCK_RFC3339_MAX];
        cli_info(ctx, "%s stays paused by backoff until %s", name,
                 clock_format_rfc3339_local(row_until, p->timezone, t2, sizeof t2));
    }
    if (fflush(ctx->out) != 0 || ferror(ctx->out))
        r = err_set(e, IPW_EIO, "pause: cannot write the output");

done:
    if (have_row)
        store_provider_clear(&row);
    store_close(st);
    plan_free(p);
    return r;
}
