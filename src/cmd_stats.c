/*
 * cmd_stats: `ipwarm stats` prints deferral statistics per provider and local day or hour, or
 * (--by ip) per source IP and provider over the range, to compare the IPs of a pool.
 *
 * The plan gives the time zone that days are counted in and the state file; stats.c does the
 * counting from the store's summary rows, so the command costs the same whatever the number of
 * attempts behind them. --format json (or the global --json) prints cli.md's document, csv an
 * RFC 4180 table, table (the default) an aligned one for people. A state file that does not
 * exist yet is an empty answer, not an error: nothing has been sent.
 */
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/cmd.h"
#include "ipwarm/plan.h"
#include "ipwarm/stats.h"
#include "ipwarm/store.h"

ipw_status cmd_stats(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct plan *p = NULL;
    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r != IPW_OK)
        return r;
    struct stats_query q = {
        .by = STATS_BY_DAY,
        .zone = p->timezone,
        .provider = cli_args_get(args, "provider"),
        .since_ms = cli_args_time_ms(args, "since", 0),
        .until_ms = cli_args_time_ms(args, "until", 0),
    };
    const char *by = cli_args_get(args, "by");
    if (by && strcmp(by, "hour") == 0)
        q.by = STATS_BY_HOUR;
    else if (by && strcmp(by, "ip") == 0)
        q.by = STATS_BY_IP;
    const char *format = cli_args_get(args, "format");
    if (!format)
        format = ctx->json ? "json" : "table";
    if (q.since_ms && q.until_ms && q.until_ms <= q.since_ms) {
        plan_free(p);
        return err_set(e, IPW_EUSAGE, "stats: --until must be after --since");
    }

    struct store *st = NULL;
    r = cli_store_read(ctx, p, &st, e);
    struct stats_result res;
    memset(&res, 0, sizeof res);
    if (r == IPW_OK)
        r = q.by == STATS_BY_IP ? stats_ip_collect(st, &q, &res, e)
                                : stats_collect(st, &q, &res, e);
    if (r == IPW_OK) {
        if (strcmp(format, "json") == 0)
            r = stats_write_json(&res, &q, ctx->out, true, e);
        else if (strcmp(format, "csv") == 0)
            r = stats_write_csv(&res, ctx->out, e);
        else
            r = stats_write_table(&res, q.zone, ctx->out, e);
    }
    stats_result_free(&res);
    store_close(st);
    plan_free(p);
    return r;
}
