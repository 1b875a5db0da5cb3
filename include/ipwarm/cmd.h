/*
 * cmd: the commands of ipwarm, one cmd_<name>() each, in src/cmd_<name>.c.
 *
 * Each has the signature of struct cli_command.run (cli.h): the parser has already checked
 * its options and arguments, so a command reads them with cli_args_get() and friends, does
 * its work, writes its result to ctx->out (as JSON when ctx->json) and returns IPW_OK or a
 * status with e set. Commands never print errors; main.c does. To add one: write the
 * function here and in its file, and set .run in its entry of cli_commands[] (cli_help.c).
 */
#ifndef IPWARM_CMD_H
#define IPWARM_CMD_H

#include "ipwarm/cli.h"
#include "ipwarm/err.h"

/* init [FILE]: writes the example plan with O_EXCL, and message.txt and seeds.csv beside it
 * unless they exist. Returns IPW_OK; IPW_ECANTCREAT if FILE exists or cannot be created;
 * IPW_EIO if writing fails. */
ipw_status cmd_init(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);

/* validate: loads the plan and prints it normalised (human or --json). Returns IPW_OK, or what
 * cli_load_plan() returns (IPW_ENOINPUT, IPW_ECONFIG, IPW_ENOMEM); IPW_EIO if stdout fails. */
ipw_status cmd_validate(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);

/* The commands below follow cli.md; each returns IPW_OK or a status with e set. */
ipw_status cmd_check(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_spf(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_dnsbl(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_mx(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_run(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_status(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_stats(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_trace(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_report(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_simulate(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_pause(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_resume(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_release(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_metrics(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_dkim_keygen(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
/* feedback parse FILE...: classifies each file (feedback.h) and prints it. Returns IPW_OK when
 * every file was read; IPW_ENOINPUT when one could not be (the others are still printed);
 * IPW_ENOMEM; IPW_EIO when stdout fails. */
ipw_status cmd_feedback_parse(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
/* feedback poll: reads the plan's feedback mailbox (returns.h) and prints what it found.
 * Returns IPW_OK; IPW_EUNAVAIL when the mailbox could not be read (still printed, with its
 * error); IPW_ECONFIG without a feedback section or password; what the store returns. */
/* placement: where the seed copies landed (cmd_placement.c). */
ipw_status cmd_placement(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
ipw_status cmd_feedback_poll(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);

#endif
