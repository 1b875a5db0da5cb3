/*
 * cmd_init: `ipwarm init [FILE]` writes the annotated example plan and the files it names.
 *
 * The plan is created with O_CREAT|O_EXCL, so that an existing plan (perhaps weeks into a
 * warm-up) is never overwritten, not even by a race with another init. The example refers to
 * message.txt and seeds.csv beside it; those are written from the embedded copies only when
 * they do not exist yet, since a user may have prepared them first. The result validates by
 * design: `ipwarm -p FILE validate` exits 0 right after.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipwarm/cli.h"
#include "ipwarm/cmd.h"
#include "ipwarm/plan.h"

/* Writes len bytes of data to a new file at path (mode 0644). Returns IPW_OK; IPW_ECANTCREAT
 * with *exists set when the file exists; IPW_ECANTCREAT or IPW_EIO otherwise. A file this
 * function created and could not finish is removed again. */
static ipw_status cmd_init_write(const char *path, const char *data, size_t len, bool *exists,
                                 struct err *e)
{
    *exists = false;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST) {
            *exists = true;
            return err_set(e, IPW_ECANTCREAT, "init: %s exists; not overwriting it", path);
        }
        return err_set(e, IPW_ECANTCREAT, "init: cannot create %s: %s", path, strerror(errno));
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : EIO;
            close(fd);
            unlink(path);
            return err_set(e, IPW_EIO, "init: cannot write %s: %s", path, strerror(saved));
        }
        done += (size_t)w;
    }
    if (close(fd) != 0) {
        int saved = errno;
        unlink(path);
        return err_set(e, IPW_EIO, "init: cannot write %s: %s", path, strerror(saved));
    }
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
