/*
 * transport_fake: the scripted transport for tests and replays (see transport.h).
 *
 * Nothing here touches the network or the real clock: a test's script decides each
 * transaction's reply and duration, and perform() moves the manual clock on to the next end,
 * as unbound's replay tests move their fake time. The engine above it then runs exactly as in
 * production, on days of simulated time, in milliseconds.
 */
#include "ipwarm/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/buf.h"
#include "ipwarm/reply.h"

struct transport_fake_job {
    void *user;
    int64_t end_ms;
    size_t log_index;
    enum smtp_phase phase;
    char *reply;
    char *error;
    bool delivered, unknown, aborted, dot_sent;
};

struct transport_fake {
    struct clock_manual *clock;
    transport_fake_fn script;
    void *ctx;
    struct transport_fake_job *jobs; /* in flight */
    size_t n_jobs, cap_jobs;
    struct transport_fake_sent *log;
    size_t n_log, cap_log;
};

static char *transport_fake_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static ipw_status transport_fake_submit(void *impl, const struct smtp_job *job, struct err *e)
{
    struct transport_fake *f = impl;
    struct transport_fake_job *nj = buf_grow(f->jobs, &f->cap_jobs, f->n_jobs + 1, sizeof *nj, 16);
    if (!nj)
        return err_set(e, IPW_ENOMEM, "out of memory");
    f->jobs = nj;
    struct transport_fake_sent *nl = buf_grow(f->log, &f->cap_log, f->n_log + 1, sizeof *nl, 64);
    if (!nl)
        return err_set(e, IPW_ENOMEM, "out of memory");
    f->log = nl;
    int64_t now = f->clock->now_ms;
    struct transport_fake_reply rep = {.phase = SMTP_PHASE_DATA};
    f->script(job, now, &rep, f->ctx);
    struct transport_fake_job *j = &f->jobs[f->n_jobs];
    memset(j, 0, sizeof *j);
    j->user = job->user;
    j->phase = rep.phase;
    j->delivered = rep.delivered;
    j->dot_sent = rep.dot_sent;
    int64_t delay = rep.delay_ms > 0 ? rep.delay_ms : 0;
    if (job->command_timeout_ms > 0 && delay > job->command_timeout_ms) {
        /* The real transport gives up on a silent server at the command timeout. */
        delay = job->command_timeout_ms;
        j->delivered = false;
        j->unknown = rep.dot_sent;
        j->error = strdup("no reply within the command timeout");
    } else {
        j->reply = transport_fake_dup(rep.reply);
        j->error = transport_fake_dup(rep.error);
        j->unknown = !rep.reply && !rep.delivered && rep.dot_sent;
    }
    j->end_ms = now + delay;
    struct transport_fake_sent *s = &f->log[f->n_log];
    memset(s, 0, sizeof *s);
    s->rcpt = transport_fake_dup(job->rcpt);
    s->host = transport_fake_dup(job->host);
    s->source_ip = transport_fake_dup(job->source_ip);
    s->data = job->data ? strndup(job->data, job->len) : NULL;
    s->submitted_ms = now;
    j->log_index = f->n_log;
    f->n_log++;
    f->n_jobs++;
    return IPW_OK;
}

/* Reports job i (taken out of the list first: done() may submit). */
static void transport_fake_finish(struct transport_fake *f, size_t i, smtp_done_fn done, void *arg)
{
    struct transport_fake_job j = f->jobs[i];
    bool aborted = j.aborted;
    f->jobs[i] = f->jobs[--f->n_jobs];
    struct smtp_result r;
    memset(&r, 0, sizeof r);
    r.user = j.user;
    r.phase = j.phase;
    r.delivered = j.delivered && !aborted;
    r.unknown = j.unknown;
    r.aborted = aborted;
    r.finished_ms = f->clock->now_ms;
    if (!aborted && j.reply) {
        struct reply rp;
        reply_parse(j.reply, strlen(j.reply), &rp);
        r.code = rp.code;
        r.reply = j.reply;
    } else {
        snprintf(r.error, sizeof r.error, "%s",
                 aborted ? "the run was stopped during the transaction"
                         : (j.error ? j.error : "no reply"));
    }
    struct transport_fake_sent *s = &f->log[j.log_index];
    s->finished_ms = r.finished_ms;
    s->code = r.code;
    s->delivered = r.delivered;
    s->unknown = r.unknown;
    s->aborted = aborted;
    done(&r, arg);
    free(j.reply);
    free(j.error);
}

static int transport_fake_perform(void *impl, int timeout_ms, smtp_done_fn done, void *arg)
{
    struct transport_fake *f = impl;
    int64_t until = f->clock->now_ms + (timeout_ms > 0 ? timeout_ms : 0);
    int64_t first = INT64_MAX;
    for (size_t i = 0; i < f->n_jobs; i++)
        if (f->jobs[i].end_ms < first)
            first = f->jobs[i].end_ms;
    if (first > until) {
        clock_manual_advance(f->clock, until - f->clock->now_ms);
        return (int)f->n_jobs;
    }
    if (first > f->clock->now_ms)
        clock_manual_advance(f->clock, first - f->clock->now_ms);
    /* Every transaction that has ended by now, in the order they ended. */
    for (;;) {
        size_t best = f->n_jobs;
        for (size_t i = 0; i < f->n_jobs; i++)
            if (f->jobs[i].end_ms <= f->clock->now_ms &&
                (best == f->n_jobs || f->jobs[i].end_ms < f->jobs[best].end_ms))
                best = i;
        if (best == f->n_jobs)
            break;
        transport_fake_finish(f, best, done, arg);
    }
    return (int)f->n_jobs;
}

static void transport_fake_abort(void *impl)
{
    /* Marked by moving their end to now: the next perform() reports them. */
    struct transport_fake *f = impl;
    for (size_t i = 0; i < f->n_jobs; i++) {
        struct transport_fake_job *j = &f->jobs[i];
        if (j->end_ms > f->clock->now_ms) {
            j->end_ms = f->clock->now_ms;
            j->aborted = true;
            j->delivered = false;
            free(j->reply);
            j->reply = NULL;
            free(j->error);
            j->error = strdup("the run was stopped during the transaction");
            j->unknown = j->dot_sent;
        }
    }
}

static void transport_fake_free(void *impl)
{
    struct transport_fake *f = impl;
    for (size_t i = 0; i < f->n_jobs; i++) {
        free(f->jobs[i].reply);
        free(f->jobs[i].error);
    }
    for (size_t i = 0; i < f->n_log; i++) {
        free(f->log[i].rcpt);
        free(f->log[i].host);
        free(f->log[i].source_ip);
        free(f->log[i].data);
    }
    free(f->jobs);
    free(f->log);
    free(f);
}

static const struct transport_ops transport_fake_ops = {
    "fake",
    transport_fake_submit,
    transport_fake_perform,
    transport_fake_abort,
    transport_fake_free,
};

ipw_status transport_fake_new(struct clock_manual *clock, transport_fake_fn script, void *ctx,
                              struct transport *out, struct err *e)
{
    struct transport_fake *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(e, IPW_ENOMEM, "out of memory");
    f->clock = clock;
    f->script = script;
    f->ctx = ctx;
    out->ops = &transport_fake_ops;
    out->impl = f;
    return IPW_OK;
}

const struct transport_fake_sent *transport_fake_log(const struct transport *t, size_t *n)
{
    if (!t || t->ops != &transport_fake_ops) {
        *n = 0;
        return NULL;
    }
    const struct transport_fake *f = t->impl;
    *n = f->n_log;
    return f->log;
}
