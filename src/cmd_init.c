/*
 * cmd_init: `ipwarm init [FILE]` writes the annotated example plan and the files it names.
 *
 * The plan is created only if absent (afile.h with AFILE_NOREPLACE: written beside it, then
 * linked to its name), so that an existing plan (perhaps weeks into a warm-up) is never
 * overwritten, not even by a race with another init, and a plan is never left half written. The
 * example refers to message.txt and seeds.csv beside it; those are written from the embedded copies
 * only when they do not exist yet, since a user may have prepared them first. The result validates
 * by design: `ipwarm -p FILE validate` exits 0 right after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/afile.h"
#include "ipwarm/cli.h"
#include "ipwarm/cmd.h"
#include "ipwarm/plan.h"

/* Writes len bytes of data to a new file at path (mode 0644), which appears whole or not at
 * all. Returns IPW_OK; IPW_ECANTCREAT with *exists set when the file exists; IPW_ECANTCREAT or
 * IPW_EIO otherwise. */
static ipw_status cmd_init_write(const char *path, const char *data, size_t len, bool *exists,
                                 struct err *e)
{
    ipw_status s = afile_write(path, 0644, AFILE_NOREPLACE, data, len, exists, e);
    if (s != IPW_OK)
        return err_prefix(e, s, "init: ");
    return IPW_OK;
}

/* The path of name in the directory of plan_path ("x/seeds.csv"; "seeds.csv" if plan_path has
 * no directory part). Returns a new string or NULL when out of memory. */
static char *cmd_init_beside(const char *plan_path, const char *name)
{
    const char *slash = strrchr(plan_path, '/');
    size_t dl = slash ? (size_t)(slash - plan_path) + 1 : 0;
    size_t nl = strlen(name);
    char *p = malloc(dl + nl + 1);
    if (!p)
        return NULL;
    memcpy(p, plan_path, dl);
    memcpy(p + dl, name, nl + 1);
    return p;
}

ipw_status cmd_init(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    const char *path = args->argc > 0 ? args->argv[0] : ctx->plan_path;
    bool exists;
    ipw_status s =
        cmd_init_write(path, embedded_example_plan, embedded_example_plan_len, &exists, e);
    if (s)
        return s;
    cli_info(ctx, "wrote %s: the annotated example plan", path);

    static const struct {
        const char *name;
        const char *what;
        const char *data;
        const size_t *len;
    } side[] = {
        {"message.txt", "the message text", embedded_example_message,
         &embedded_example_message_len},
        {"seeds.csv", "the recipient list", embedded_example_seeds, &embedded_example_seeds_len},
    };
    for (size_t i = 0; i < sizeof side / sizeof side[0]; i++) {
        char *p = cmd_init_beside(path, side[i].name);
        if (!p)
            return err_set(e, IPW_ENOMEM, "out of memory");
        struct err sub;
        err_clear(&sub);
        s = cmd_init_write(p, side[i].data, *side[i].len, &exists, &sub);
        if (s == IPW_OK) {
            cli_info(ctx, "wrote %s: %s the plan refers to", p, side[i].what);
        } else if (exists) {
            cli_info(ctx, "kept the existing %s (%s)", p, side[i].what);
            s = IPW_OK;
        } else {
            /* The plan is written but names a file that could not be: say so, and exit
             * non-zero so that a script notices. */
            err_set(e, s, "%s; %s was written, but refers to it", sub.msg, path);
        }
        free(p);
        if (s)
            return s;
    }
    cli_info(ctx, "edit it, then check it with: ipwarm -p %s validate", path);
    return IPW_OK;
}
