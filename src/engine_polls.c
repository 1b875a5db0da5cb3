/*
 * engine_polls: what comes back after the 250, read while the run goes on: the feedback mailbox
 * (bounces, delays and complaints, returns.h) and the seed mailboxes (inbox placement,
 * placement.h), both every feedback.poll_every, and the seeds' daily requeue. A poll never
 * stops the run: its failure is a warning, and what it records reaches the lanes through the
 * store at their next refresh.
 */
#include "ipwarm/engine.h"

#include <stdlib.h>
#include <string.h>

#include "ipwarm/feedback.h"
#include "ipwarm/placement.h"
#include "ipwarm/placement_fall.h"
#include "ipwarm/returns.h"
#include "ipwarm/tz.h"

#include "engine_state.h"

/* ---- what comes back after the 250 ---- */

/* Looks the seed copies up (placement.h), with the feedback poll. A seed that cannot be read is
 * a warning; what was found reaches the ramp through the store, at the next sending day. */
static void engine_seeds_poll(struct engine *g, int64_t now, int64_t session)
{
    const struct plan *p = g->p;
    struct placement_seed_result *res = calloc(p->n_seeds, sizeof *res);
    if (!res)
        return;
    struct err pe;
    err_clear(&pe);
    ipw_status r = placement_poll(p, g->st, now, session, res, &pe);
    if (r != IPW_OK && g->o->warn)
        fprintf(g->o->warn, "ipwarm: warning: seed placement poll: %s\n", pe.msg);
    int64_t inbox = 0, junk = 0, missing = 0;
    for (size_t i = 0; i < p->n_seeds; i++) {
        inbox += res[i].inbox;
        junk += res[i].junk;
        missing += res[i].missing;
    }
    if (g->o->log && inbox + junk + missing > 0)
        fprintf(g->o->log, "ipwarm: placement: %lld inbox, %lld junk, %lld missing\n",
                (long long)inbox, (long long)junk, (long long)missing);
    free(res);
    /* A sharp fall throttles the provider through a rule action, as the next refresh reads. */
    char fell[512] = "";
    err_clear(&pe);
    r = placement_fall_act(p, g->st, now, fell, sizeof fell, &pe);
    if (r != IPW_OK && g->o->warn)
        fprintf(g->o->warn, "ipwarm: warning: seed placement: %s\n", pe.msg);
    if (fell[0] && g->o->warn)
        fprintf(g->o->warn,
                "ipwarm: warning: inbox rate under half of advance_if.inbox_rate_above: %s "
                "throttled (see `ipwarm status`)\n",
                fell);
}

/* Each seed in the queue that got its copy on an earlier local date is due again today: a
 * seed is sent at least one message every sending day (placement.h). Paced, capped and
 * recorded like any other recipient; a suppressed seed (it bounced) stays suppressed. */
ipw_status engine_seeds_requeue(struct engine *g, const char *today, int64_t now, struct err *e)
{
    int64_t midnight;
    ipw_status r = tz_local_midnight_utc(g->p->timezone, today, &midnight, e);
    for (size_t i = 0; r == IPW_OK && i < g->p->n_seeds; i++)
        r = store_recipient_requeue(g->st, g->p->seeds[i].address, midnight, now, NULL, e);
    return r;
}

/* Reads the feedback mailbox (returns.h) every feedback.poll_every. Its outcome never stops the
 * run or touches the pacing directly: a failure is a warning, and what a poll records (late
 * bounces, complaints, a complaint-rate suspension) reaches the providers through the store,
 * as the next refresh and the next sending day read it. The session is bounded, since sending
 * waits while it lasts. */
void engine_feedback_poll(struct engine *g, int64_t now)
{
    const struct plan *p = g->p;
    g->feedback_next_ms = now + p->feedback.poll_every_ms;
    int64_t session = ENGINE_FEEDBACK_SESSION_MS;
    if (g->hard_end_real_ms) {
        int64_t left = g->hard_end_real_ms - engine_real(g) - 2000;
        if (left < 5000)
            return; /* the next tick reads it */
        if (session > left)
            session = left;
    }
    if (p->n_seeds > 0)
        engine_seeds_poll(g, now, session);
    if (!p->feedback.enabled)
        return;
    struct returns_mailbox mb;
    struct returns_opts ro = {.now_ms = now, .session_timeout_ms = session};
    struct err pe;
    err_clear(&pe);
    ipw_status r = returns_poll(p, g->st, &ro, &mb, &pe);
    g->sum->late_bounces += mb.late_bounces;
    g->sum->complaints += mb.complaints;
    if (r != IPW_OK) {
        g->sum->feedback_failures++;
        if (g->o->warn)
            fprintf(g->o->warn, "ipwarm: warning: feedback poll failed, sending goes on: %s\n",
                    pe.msg);
        return;
    }
    g->sum->feedback_polls++;
    if (g->o->log && mb.new_ > 0)
        fprintf(g->o->log,
                "ipwarm: feedback: %lld new: %lld bounces (%lld late), %lld delays, %lld "
                "complaints, %lld unmatched, %lld other\n",
                (long long)mb.new_, (long long)mb.bounces, (long long)mb.late_bounces,
                (long long)mb.delays, (long long)mb.complaints, (long long)mb.unmatched,
                (long long)mb.other);
    if (g->o->warn && mb.acted[0])
        fprintf(g->o->warn,
                "ipwarm: warning: complaint rate over feedback.complaints.rate_above: %s acted on "
                "(see `ipwarm status`)\n",
                mb.acted);
}
