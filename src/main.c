/*
 * main: the ipwarm program. Parses the command line, runs the command, and is the one place
 * that prints errors and turns a status into an exit code (sysexits(3), via cli_exit_code()).
 *
 * Every error goes to stderr as "ipwarm: <sentence>". A refused plan is the exception in form:
 * its lines already start with FILE:LINE:COLUMN, the form editors and CI logs jump to, so they
 * are printed as they are, followed by one line saying that nothing was done.
 */
#include <stdio.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/err.h"

static void main_report(const struct cli_args *args, ipw_status s, const struct err *e)
{
    if (s == IPW_ECONFIG) {
        fprintf(stderr, "%s\n", e->msg);
        fputs("ipwarm: the plan is invalid; nothing was done\n", stderr);
        return;
    }
    const char *msg = e->msg[0] ? e->msg : err_status_name(s);
    /* One "ipwarm: " per line, so that a message of several lines still reads as ours. */
    const char *p = msg;
    while (*p) {
        size_t n = strcspn(p, "\n");
        fprintf(stderr, "ipwarm: %.*s\n", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
    if (args->show_usage) {
        fputc('\n', stderr);
        cli_help(stderr, args->cmd);
    }
}

int main(int argc, char **argv)
{
    struct cli_ctx ctx;
    struct cli_args args;
    struct err e;
    err_clear(&e);
    cli_ctx_init(&ctx);

    ipw_status s = cli_parse(&ctx, &args, argc, argv, &e);
    if (s == IPW_OK) {
        switch (args.action) {
        case CLI_HELP:
            cli_help(stdout, args.cmd);
            break;
        case CLI_VERSION:
            cli_version(stdout);
            break;
        case CLI_RUN:
            if (ctx.has_now)
                clock_set_override(ctx.now_ms);
            s = cli_run(&ctx, &args, &e);
            break;
        }
    }
    /* Output that did not reach its destination (a full disk, a closed pipe) is a failure,
     * not a success with a truncated answer. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (s == IPW_OK)
            s = err_set(&e, IPW_EIO, "cannot write to standard output");
    }
    if (s != IPW_OK)
        main_report(&args, s, &e);
    int code = cli_exit_code(s);
    cli_args_free(&args);
    cli_ctx_free(&ctx);
    return code;
}
