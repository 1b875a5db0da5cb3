/*
 * cmd_release: `ipwarm release ADDRESS... | --all [--provider NAME]` puts held recipients back
 * in the queue.
 *
 * A recipient is held when a run stopped (a crash, kill -9, a power cut) while its message was
 * in flight: the message may have been delivered, so ipwarm never sends it again by itself. The
 * operator looks in the receiving server's log (`ipwarm trace ADDRESS` gives the time, the MX
 * host and the Message-ID to look for) and releases the recipients whose message did not
 * arrive: they are pending again, due at once. A recipient skipped for a local reason (its
 * domain had no usable MX, say) can be released by name too, once the cause is gone.
 *
 * Like pause and resume, release works while a run is going: it takes no run lock, each change
 * is one short transaction, and the run picks the released recipients up within a second.
 * Addresses are matched without regard to case. An address that is not held (or skipped) is
 * named with its state and makes the command exit 64, after the others were released.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/clock.h"
#include "ipwarm/cmd.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"

/* The addresses released by --all, copied out of the store's callback. */
struct release_list {
    char **v;
    size_t n;
    bool nomem;
};

static void release_collect(const char *address, const char *provider, void *ctx)
{
    struct release_list *l = ctx;
    (void)provider;
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    char *a = strdup(address);
    if (!nv || !a) {
        if (nv)
            l->v = nv;
        free(a);
        l->nomem = true;
        return;
    }
    l->v = nv;
    l->v[l->n++] = a;
}

static void release_list_free(struct release_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* The addresses named, released or refused, in the order given. */
struct release_one {
    char *address; /* as stored (the spelling first queued), or as given when not queued */
    char *state;   /* the state it had; NULL: not in the queue */
    bool released;
};

static ipw_status release_named(struct store *st, const struct cli_args *args, int64_t now,
                                struct release_one *out, struct err *e)
{
    for (int i = 0; i < args->argc; i++) {
        struct store_recipient was;
        ipw_status r = store_recipient_release(st, args->argv[i], now, &was, e);
        if (r == IPW_ENOTFOUND) {
            err_clear(e);
            out[i].address = strdup(args->argv[i]);
            if (!out[i].address)
                return err_set(e, IPW_ENOMEM, "out of memory");
            continue;
        }
        if (r != IPW_OK)
            return r;
        out[i].address = strdup(was.address);
        out[i].state = strdup(was.state);
        out[i].released = strcmp(was.state, "held") == 0 || strcmp(was.state, "skipped") == 0;
        store_recipient_clear(&was);
        if (!out[i].address || !out[i].state)
            return err_set(e, IPW_ENOMEM, "out of memory");
    }
    return IPW_OK;
}

ipw_status cmd_release(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    bool all = cli_args_has(args, "all");
    const char *provider = cli_args_get(args, "provider");
    if (!all && args->argc == 0)
        return err_set(e, IPW_EUSAGE, "release: name the held recipients to release, or --all");
    if (all && args->argc > 0)
        return err_set(e, IPW_EUSAGE, "release: give addresses or --all, not both");
    if (provider && !all)
        return err_set(e, IPW_EUSAGE, "release: --provider goes with --all");

    struct plan *p = NULL;
    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r != IPW_OK)
        return r;
    struct store *st = NULL;
    struct release_list rl = {0};
    struct release_one *named = calloc((size_t)args->argc + 1, sizeof *named);
    if (!named) {
        r = err_set(e, IPW_ENOMEM, "out of memory");
        goto done;
    }
    size_t idx;
    if (provider) {
        r = cli_find_provider(p, provider, &idx, e);
        if (r != IPW_OK)
            goto done;
        provider = p->providers[idx].name;
    }
    /* Nothing recorded yet: nothing is held, and no state file is made just to say so. */
    const struct store_options opt = {.must_exist = 1};
    r = store_open_opts(cli_state_path(ctx, p), &opt, &st, e);
    if (r == IPW_OK)
        r = cli_store_campaign(p, st, e);
    if (r != IPW_OK)
        goto done;

    int64_t now = clock_now_ms();
    int64_t count = 0;
    if (all) {
        r = store_recipients_release_held(st, provider, now, release_collect, &rl, &count, e);
        if (r == IPW_OK && rl.nomem)
            r = err_set(e, IPW_ENOMEM, "out of memory");
    } else {
        r = release_named(st, args, now, named, e);
    }
    if (r != IPW_OK)
        goto done;

    if (ctx->json) {
        struct json j;
        json_init(&j, ctx->out, true);
        json_object_begin(&j);
        json_key(&j, "released");
        json_array_begin(&j);
        for (size_t i = 0; i < rl.n; i++)
            json_string(&j, rl.v[i]);
        for (int i = 0; i < args->argc; i++)
            if (named[i].released)
                json_string(&j, named[i].address);
        json_array_end(&j);
        json_key(&j, "not_released");
        json_array_begin(&j);
        for (int i = 0; i < args->argc; i++) {
            if (named[i].released)
                continue;
            json_object_begin(&j);
            json_kv_string(&j, "address", named[i].address);
            json_kv_string(&j, "state", named[i].state);
            json_object_end(&j);
        }
        json_array_end(&j);
        json_object_end(&j);
        r = json_finish(&j, e);
    } else {
        for (size_t i = 0; i < rl.n; i++)
            fprintf(ctx->out, "released %s\n", rl.v[i]);
        for (int i = 0; i < args->argc; i++)
            if (named[i].released)
                fprintf(ctx->out, "released %s (was %s)\n", named[i].address, named[i].state);
        if (all && rl.n == 0)
            fprintf(ctx->out, "no recipient%s%s is held\n", provider ? " of " : "",
                    provider ? provider : "");
        if (fflush(ctx->out) != 0 || ferror(ctx->out))
            r = err_set(e, IPW_EIO, "release: cannot write the output");
    }
    /* Each address that was not released, one line each in one refusal (exit 64), after the
     * others were released. */
    bool first = true;
    for (int i = 0; r == IPW_OK && i < args->argc; i++) {
        if (named[i].released)
            continue;
        char line[600];
        if (named[i].state)
            snprintf(line, sizeof line,
                     "release: %s is not held (it is %s): only held recipients, or skipped ones, "
                     "are released",
                     named[i].address, named[i].state);
        else
            snprintf(line, sizeof line, "release: %s is not in the queue of %s", named[i].address,
                     store_path(st));
        if (first)
            err_set(e, IPW_ENOTFOUND, "%s", line);
        else
            err_append(e, IPW_ENOTFOUND, "%s", line);
        first = false;
    }
    if (r == IPW_OK && !first)
        r = IPW_ENOTFOUND;

done:
    if (named)
        for (int i = 0; i < args->argc; i++) {
            free(named[i].address);
            free(named[i].state);
        }
    free(named);
    release_list_free(&rl);
    store_close(st);
    plan_free(p);
    return r;
}
