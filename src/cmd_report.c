/*
 * cmd_report: `ipwarm report` (see cli.md). Not implemented yet: its issue is still open.
 */
#include "ipwarm/cmd.h"

ipw_status cmd_report(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    (void)ctx;
    (void)args;
    return err_set(e, IPW_ENOTIMPL, "report: not implemented yet");
}
