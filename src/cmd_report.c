/*
 * cmd_report: `ipwarm report -o FILE` writes the HTML report (report.c) of the campaign.
 *
 * The file is written to a new temporary file beside FILE and renamed over it when complete
 * (afile.h), so a browser or a web server never shows half a report, and a link planted beside
 * it cannot redirect the write. A state file that does not exist
 * yet gives a report that says nothing was recorded.
 */
#include <errno.h>
#include <stdio.h>

#include "ipwarm/afile.h"
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
    struct plan *p;
    struct store *st;
    ipw_status r = cli_load_plan_store(ctx, &p, &st, e);
    if (r != IPW_OK)
        return r;
    struct afile af;
    r = afile_open(&af, out, 0644, 0, e);
    if (r == IPW_OK) {
        struct err sub;
        errno = 0;
        r = report_write(st, p, clock_now_ms(), af.f, &sub);
        if (r == IPW_OK) {
            r = afile_commit(&af, e);
        } else {
            afile_abort(&af);
            err_set(e, r, "%s (to %s; the file there was left as it was)", sub.msg, out);
        }
    }
    if (r == IPW_OK)
        cli_info(ctx, "report written to %s", out);
    store_close(st);
    plan_free(p);
    return r;
}
