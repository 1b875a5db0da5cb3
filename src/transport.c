/*
 * transport: the libcurl and dry-run transports behind the engine (see transport.h).
 */
#include "ipwarm/transport.h"

#include <stdlib.h>
#include <string.h>

/* ---- libcurl ---- */

static ipw_status transport_curl_submit(void *impl, const struct smtp_job *job, struct err *e)
{
    return smtp_submit(impl, job, e);
}

static int transport_curl_perform(void *impl, int timeout_ms, smtp_done_fn done, void *arg)
{
    return smtp_perform(impl, timeout_ms, done, arg);
}

static void transport_curl_abort(void *impl)
{
    smtp_abort(impl);
}

static void transport_curl_free(void *impl)
{
    smtp_free(impl);
}

static const struct transport_ops transport_curl_ops = {
    "curl",
    transport_curl_submit,
    transport_curl_perform,
    transport_curl_abort,
    transport_curl_free,
};

ipw_status transport_curl_new(int max_connections, smtp_mask_fn mask, struct transport *out,
                              struct err *e)
{
    struct smtp *s = smtp_new(max_connections, e);
    if (!s)
        return e ? e->status : IPW_ENOMEM;
    smtp_set_masker(s, mask);
    out->ops = &transport_curl_ops;
    out->impl = s;
    return IPW_OK;
}

/* ---- the dry run: each message is accepted at once, without a connection ---- */

struct transport_dry {
    void **users;
    size_t n, cap;
};

static ipw_status transport_dry_submit(void *impl, const struct smtp_job *job, struct err *e)
{
    struct transport_dry *d = impl;
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 16;
        void **nu = realloc(d->users, ncap * sizeof *nu);
        if (!nu)
            return err_set(e, IPW_ENOMEM, "out of memory");
        d->users = nu;
        d->cap = ncap;
    }
    d->users[d->n++] = job->user;
    return IPW_OK;
}

static int transport_dry_perform(void *impl, int timeout_ms, smtp_done_fn done, void *arg)
{
    struct transport_dry *d = impl;
    (void)timeout_ms;
    while (d->n > 0) {
        struct smtp_result r;
        memset(&r, 0, sizeof r);
        r.user = d->users[--d->n];
        r.phase = SMTP_PHASE_DATA;
        r.code = 250;
        r.reply = (char *)"250 2.0.0 dry run: accepted without connecting";
        r.delivered = true;
        done(&r, arg);
    }
    return 0;
}

static void transport_dry_abort(void *impl)
{
    /* Nothing is ever under way: the next perform() accepts what was submitted. */
    (void)impl;
}

static void transport_dry_free(void *impl)
{
    struct transport_dry *d = impl;
    free(d->users);
    free(d);
}

static const struct transport_ops transport_dry_ops = {
    "dry-run", transport_dry_submit, transport_dry_perform, transport_dry_abort, transport_dry_free,
};

ipw_status transport_dry_new(struct transport *out, struct err *e)
{
    struct transport_dry *d = calloc(1, sizeof *d);
    if (!d)
        return err_set(e, IPW_ENOMEM, "out of memory");
    out->ops = &transport_dry_ops;
    out->impl = d;
    return IPW_OK;
}

void transport_free(struct transport *t)
{
    if (t && t->ops && t->impl)
        t->ops->free(t->impl);
    if (t) {
        t->ops = NULL;
        t->impl = NULL;
    }
}
