/*
 * cmd_check: `ipwarm check` runs every pre-flight check (preflight.h) and prints one line per
 * check: status, name, required or not, and a sentence; under each problem the fix in one
 * sentence and the shell look-up that shows it. Every check runs even after one fails, so a
 * broken set-up is named whole in one go. With a pool of source IPs, a line per IP after the
 * checks says which of its checks failed or warned. --json prints the document of cli.md. The
 * result is recorded in the state file (store_preflight_add) for `report`; that needs no run lock.
 * Exit 0 when no required check failed, else IPW_ECHECK (exit 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/preflight.h"
#include "ipwarm/store.h"

static void cmd_check_human(FILE *f, const struct preflight_report *r)
{
    unsigned counts[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < r->n_checks; i++) {
        const struct preflight_check *c = &r->checks[i];
        counts[c->status]++;
        const char *st = c->status == PREFLIGHT_FAIL   ? "FAIL"
                         : c->status == PREFLIGHT_WARN ? "warn"
                                                       : preflight_status_name(c->status);
        fprintf(f, "%-4s  %-5s  %-8s  %s\n", st, c->name, c->required ? "required" : "optional",
                c->detail);
        if (c->fix)
            fprintf(f, "                        fix: %s\n", c->fix);
        if (c->lookup)
            fprintf(f, "                        see: %s\n", c->lookup);
    }
    /* A pool: one line per source IP, so that the IP in trouble is named at a glance. */
    const char *ips[64];
    size_t n = preflight_report_ips(r, ips, sizeof ips / sizeof ips[0]);
    if (n > 1) {
        fputs("per source IP:\n", f);
        for (size_t i = 0; i < n && i < sizeof ips / sizeof ips[0]; i++) {
            char failed[128], warned[128];
            bool ok = preflight_report_ip(r, ips[i], failed, sizeof failed, warned, sizeof warned);
            fprintf(f, "  %-15s  %-6s%s%s%s%s\n", ips[i], ok ? "ok" : "NOT OK",
                    failed[0] ? "  fail: " : "", failed, warned[0] ? "  warn: " : "", warned);
        }
    }
    fprintf(f, "%s: %u pass, %u warn, %u fail, %u skip; %u required check%s failed\n",
            r->ok ? "ok" : "NOT OK", counts[PREFLIGHT_PASS], counts[PREFLIGHT_WARN],
            counts[PREFLIGHT_FAIL], counts[PREFLIGHT_SKIP], r->required_failed,
            r->required_failed == 1 ? "" : "s");
}

/* Records the report; a state file that cannot be written is said, not fatal. */
static void cmd_check_record(const struct cli_ctx *ctx, const struct plan *p,
                             const struct preflight_report *r)
{
    char *doc = preflight_report_json_string(r);
    if (!doc) {
        cli_info(ctx, "check: out of memory: the result is not recorded");
        return;
    }
    struct store *st = NULL;
    struct err e;
    const char *path = cli_state_path(ctx, p);
    if (store_open(path, &st, &e) != IPW_OK || cli_store_campaign(p, st, &e) != IPW_OK ||
        store_preflight_add(st, clock_now_ms(), r->ok, doc, NULL, &e) != IPW_OK)
        cli_info(ctx, "check: the result is not recorded in %s: %s", path, e.msg);
    store_close(st);
    free(doc);
}

ipw_status cmd_check(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    (void)args;
    struct plan *p = NULL;
    struct dns *dns = NULL;
    struct preflight_report r;
    preflight_report_init(&r);
    ipw_status s = cli_load_plan(ctx, &p, e);
    if (s != IPW_OK)
        return s;
    s = cli_dns_open_lookup(ctx, p, &dns, e);
    if (s != IPW_OK)
        goto done;
    s = preflight_run(p, dns, NULL, &r, e);
    if (s != IPW_OK)
        goto done;
    if (ctx->json) {
        struct json j;
        json_init(&j, ctx->out, true);
        preflight_report_json(&r, &j);
        s = json_finish(&j, e);
    } else {
        cmd_check_human(ctx->out, &r);
        if (fflush(ctx->out) != 0)
            s = err_set(e, IPW_EIO, "check: cannot write the output");
    }
    if (s != IPW_OK)
        goto done;
    cmd_check_record(ctx, p, &r);
    if (!r.ok) {
        char names[256] = "";
        size_t k = 0;
        for (size_t i = 0; i < r.n_checks; i++) {
            const struct preflight_check *c = &r.checks[i];
            if (!c->required || c->status != PREFLIGHT_FAIL || strstr(names, c->name))
                continue;
            int w = snprintf(names + k, sizeof names - k, "%s%s", k ? ", " : "", c->name);
            if (w > 0 && (size_t)w < sizeof names - k)
                k += (size_t)w;
        }
        s = err_set(e, IPW_ECHECK, "check: %u required check%s failed (%s)", r.required_failed,
                    r.required_failed == 1 ? "" : "s", names);
    }
done:
    preflight_report_clear(&r);
    dns_free(dns);
    plan_free(p);
    return s;
}
