/*
 * cmd_placement: `ipwarm placement` prints where the copies sent to seed mailboxes landed:
 * per local day and provider (--by day, the default), per provider (--by provider) or per
 * provider and source IP (--by ip), the copies sent and how many were found in the inbox, in
 * junk, or missing, and the inbox rate over those placed (copies not looked up yet are in sent
 * only). --format json (or --json) prints the contract's document, csv an RFC 4180 table.
 * Reads the state only; `feedback poll` (or `run`) does the looking up.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/cmd.h"
#include "ipwarm/csv.h"
#include "ipwarm/json.h"
#include "ipwarm/placement.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"

static void cmd_placement_json(FILE *f, const struct placement_result *res)
{
    struct json j;
    json_init(&j, f, true);
    json_object_begin(&j);
    json_key(&j, "rows");
    json_array_begin(&j);
    for (size_t i = 0; i < res->n; i++) {
        const struct placement_row *r = &res->rows[i];
        json_object_begin(&j);
        json_kv_string(&j, "period", r->period);
        json_kv_string(&j, "provider", r->provider);
        json_kv_string(&j, "ip", r->ip[0] ? r->ip : NULL);
        json_kv_int(&j, "sent", r->sent);
        json_kv_int(&j, "inbox", r->inbox);
        json_kv_int(&j, "junk", r->junk);
        json_kv_int(&j, "missing", r->missing);
        json_kv_int(&j, "pending", r->sent - r->inbox - r->junk - r->missing);
        double rate = placement_inbox_rate(r);
        json_kv_double_or_null(&j, "inbox_rate", rate, rate >= 0);
        json_object_end(&j);
    }
    json_array_end(&j);
    json_object_end(&j);
    struct err je;
    err_clear(&je);
    (void)json_finish(&j, &je);
}

static void cmd_placement_csv(FILE *f, const struct placement_result *res)
{
    fputs("period,provider,ip,sent,inbox,junk,missing,pending,inbox_rate\r\n", f);
    for (size_t i = 0; i < res->n; i++) {
        const struct placement_row *r = &res->rows[i];
        csv_write_field(f, r->period);
        fputc(',', f);
        csv_write_field(f, r->provider);
        fputc(',', f);
        csv_write_field(f, r->ip);
        fprintf(f, ",%lld,%lld,%lld,%lld,%lld,", (long long)r->sent, (long long)r->inbox,
                (long long)r->junk, (long long)r->missing,
                (long long)(r->sent - r->inbox - r->junk - r->missing));
        double rate = placement_inbox_rate(r);
        if (rate >= 0)
            fprintf(f, "%.1f", rate);
        fputs("\r\n", f);
    }
}

static void cmd_placement_table(FILE *f, const struct placement_result *res, bool by_ip)
{
    if (res->n == 0) {
        fputs("no copies sent to seeds yet\n", f);
        return;
    }
    fprintf(f, "%-10s %-16s %s%5s %6s %5s %7s %7s %7s\n", "PERIOD", "PROVIDER",
            by_ip ? "IP                " : "", "SENT", "INBOX", "JUNK", "MISSING", "PENDING",
            "INBOX%");
    for (size_t i = 0; i < res->n; i++) {
        const struct placement_row *r = &res->rows[i];
        char ip[80] = "";
        if (by_ip)
            snprintf(ip, sizeof ip, "%-17s ", r->ip);
        double rate = placement_inbox_rate(r);
        char rs[16];
        if (rate < 0)
            snprintf(rs, sizeof rs, "-");
        else
            snprintf(rs, sizeof rs, "%.1f", rate);
        fprintf(f, "%-10s %-16s %s%5lld %6lld %5lld %7lld %7lld %7s\n", r->period, r->provider, ip,
                (long long)r->sent, (long long)r->inbox, (long long)r->junk, (long long)r->missing,
                (long long)(r->sent - r->inbox - r->junk - r->missing), rs);
    }
}

ipw_status cmd_placement(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct plan *p = NULL;
    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r != IPW_OK)
        return r;
    enum placement_by by = PLACEMENT_BY_DAY;
    const char *bys = cli_args_get(args, "by");
    if (bys && !strcmp(bys, "provider"))
        by = PLACEMENT_BY_PROVIDER;
    else if (bys && !strcmp(bys, "ip"))
        by = PLACEMENT_BY_IP;
    const char *format = cli_args_get(args, "format");
    if (!format)
        format = ctx->json ? "json" : "table";
    struct store *st = NULL;
    r = cli_store_read(ctx, p, &st, e);
    struct placement_result res = {0};
    if (r == IPW_OK)
        r = placement_collect(p, st, by, cli_args_time_ms(args, "since", 0), &res, e);
    if (r == IPW_OK) {
        if (!strcmp(format, "json"))
            cmd_placement_json(ctx->out, &res);
        else if (!strcmp(format, "csv"))
            cmd_placement_csv(ctx->out, &res);
        else
            cmd_placement_table(ctx->out, &res, by == PLACEMENT_BY_IP);
        if (fflush(ctx->out) != 0 || ferror(ctx->out))
            r = err_set(e, IPW_EIO, "placement: cannot write to standard output");
    }
    placement_result_free(&res);
    store_close(st);
    plan_free(p);
    return r;
}
