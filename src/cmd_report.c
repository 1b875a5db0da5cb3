/*
 * cmd_report: `ipwarm report -o FILE` writes the HTML report (report.c) of the campaign.
 *
 * The file is written next to its final name as FILE.tmp and renamed over FILE when complete,
 * so a browser or a web server never shows half a report. A state file that does not exist
 * yet gives a report that says nothing was recorded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/plan.h"
#include "ipwarm/report.h"
#include "ipwarm/stats.h"
#include "ipwarm/store.h"

ipw_status cmd_report(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    const char *out = cli_args_get(args, "output");
    struct plan *p = NULL;
    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r != IPW_OK)
        return r;
    struct store *st = NULL;
    r = stats_store_open(cli_state_path(ctx, p), &st, NULL, e);
    if (r == IPW_OK)
        r = cli_store_campaign(p, st, e);
    size_t n = strlen(out);
    char *tmp = malloc(n + sizeof ".tmp");
    FILE *f = NULL;
    if (r == IPW_OK && !tmp)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    if (r == IPW_OK) {
        memcpy(tmp, out, n);
        memcpy(tmp + n, ".tmp", sizeof ".tmp");
        f = fopen(tmp, "w");
        if (!f)
            r = err_set(e, IPW_ECANTCREAT, "cannot create the report %s: %s", tmp, strerror(errno));
    }
    if (r == IPW_OK)
        r = report_write(st, p, clock_now_ms(), f, e);
    if (f) {
        if (r == IPW_OK && fsync(fileno(f)) != 0)
            r = err_set(e, IPW_EIO, "cannot write the report %s: %s", tmp, strerror(errno));
        if (fclose(f) != 0 && r == IPW_OK)
            r = err_set(e, IPW_EIO, "cannot write the report %s: %s", tmp, strerror(errno));
        if (r == IPW_OK && rename(tmp, out) != 0)
            r = err_set(e, IPW_ECANTCREAT, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
        if (r != IPW_OK)
            unlink(tmp);
    }
    if (r == IPW_OK)
        cli_info(ctx, "report written to %s", out);
    free(tmp);
    store_close(st);
    plan_free(p);
    return r;
}
