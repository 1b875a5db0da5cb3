/*
 * backoff: throttling, pausing, recovery, rule triggers and the retry schedule (see backoff.h).
 *
 * A warm-up lives or dies by how it reacts to a provider's pushback: keep sending at full
 * speed into "421 4.7.28 unusual rate" and the new IP's reputation sinks; snap back to full
 * speed after one quiet minute and the provider pushes back harder. So a throttling deferral
 * cuts the rate and pauses, repeats lengthen the pause, and the rate climbs back in steps on a
 * fixed schedule. The SMTP side (which replies are throttling) is reply.c, following RFC 5321
 * and RFC 3463; nothing here reads the clock or does I/O.
 */
#include "ipwarm/backoff.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "ipwarm/units.h"

static int64_t backoff_max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

void backoff_state_init(struct backoff_state *s, double planned_per_min)
{
    memset(s, 0, sizeof *s);
    s->rate_per_min = planned_per_min;
    s->planned_per_min = planned_per_min;
}

void backoff_set_planned(struct backoff_state *s, double planned_per_min)
{
    /* Not cut: the ramp alone decides the rate. Cut: stay cut, never above the new plan. */
    if (s->rate_per_min <= 0 || s->rate_per_min >= s->planned_per_min ||
        s->rate_per_min > planned_per_min)
        s->rate_per_min = planned_per_min;
    s->planned_per_min = planned_per_min;
}

/* The end of the last deferral episode: its deferral, or the end of the pause it caused. */
static int64_t backoff_episode_end(const struct backoff_state *s)
{
    return backoff_max64(s->last_deferral_ms, s->paused_until_ms);
}

/* True when deferrals no longer "repeat within the hour". */
static bool backoff_quiet(const struct backoff_state *s, int64_t now_ms)
{
    return s->last_deferral_ms == 0 || now_ms - backoff_episode_end(s) > BACKOFF_REPEAT_WINDOW_MS;
}

bool backoff_tick(struct backoff_state *s, const struct plan_backoff *b, int64_t now_ms)
{
    bool changed = false;
    double planned = s->planned_per_min;

    if (s->pause_level != 0 && backoff_quiet(s, now_ms)) {
        s->pause_level = 0;
        changed = true;
    }
    if (planned <= 0)
        return changed; /* no plan for this provider yet: nothing to recover toward */
    if (s->rate_per_min <= 0 || s->rate_per_min > planned) {
        s->rate_per_min = planned;
        return true;
    }
    if (s->rate_per_min == planned)
        return changed;

    double step = planned * b->recover_step_pct / 100.0;
    if (!(step > 0))
        return changed; /* a plan without recovery steps stays cut */
    /* Steps are counted from the later of the deferral, its pause's end and the last step. */
    int64_t base = backoff_max64(backoff_episode_end(s), s->last_recover_ms);
    if (now_ms <= base)
        return changed;
    if (b->recover_after_ms <= 0) {
        s->rate_per_min = planned;
        s->last_recover_ms = now_ms;
        return true;
    }
    int64_t k = (now_ms - base) / b->recover_after_ms;
    if (k <= 0)
        return changed;
    double rate = s->rate_per_min + (double)k * step;
    s->rate_per_min = rate < planned ? rate : planned;
    /* Anchor the next step to the schedule, not to when the tick happened to run. */
    s->last_recover_ms = base + k * b->recover_after_ms;
    return true;
}

double backoff_effective_rate(const struct backoff_state *s, const struct plan_backoff *b,
                              int64_t now_ms)
{
    /* The same arithmetic as the tick, on a copy: the two can never disagree. */
    struct backoff_state t = *s;
    backoff_tick(&t, b, now_ms);
    if (t.planned_per_min > 0 && t.rate_per_min > t.planned_per_min)
        return t.planned_per_min;
    return t.rate_per_min;
}

bool backoff_paused(const struct backoff_state *s, int64_t now_ms)
{
    return s->paused_until_ms > now_ms;
}

/* Copies src into dst[0..n) cut on a UTF-8 character boundary, with "..." when cut. */
static void backoff_copy_cut(char *dst, size_t n, const char *src)
{
    if (n == 0)
        return;
    size_t len = strlen(src);
    if (len < n) {
        memcpy(dst, src, len + 1);
        return;
    }
    size_t keep = n > 4 ? n - 4 : 0;
    while (keep > 0 && ((unsigned char)src[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(dst, src, keep);
    size_t mark = n - 1 - keep < 3 ? n - 1 - keep : 3;
    memcpy(dst + keep, "...", mark);
    dst[keep + mark] = '\0';
}

bool backoff_on_deferral(struct backoff_state *s, const struct plan_backoff *b, int64_t now_ms,
                         const char *reply)
{
    backoff_tick(s, b, now_ms);
    if (backoff_paused(s, now_ms)) {
        /* A straggler from before the pause: one episode, counted once. */
        if (now_ms > s->last_deferral_ms)
            s->last_deferral_ms = now_ms;
        return false;
    }

    int level = backoff_quiet(s, now_ms) ? 0 : s->pause_level + 1;
    if (level > 62)
        level = 62; /* the pause is long capped by then; keep the counter finite */
    int64_t max_pause = b->pause_max_ms > 0 ? b->pause_max_ms : BACKOFF_PAUSE_MAX_DEFAULT_MS;
    int64_t pause = b->pause_ms > 0 ? b->pause_ms : 0;
    for (int i = 0; i < level && pause < max_pause && pause <= INT64_MAX / 2; i++)
        pause *= 2;
    if (pause > max_pause)
        pause = max_pause;

    double factor = b->factor > 0 && b->factor < 1 ? b->factor : 0.5;
    double cur = backoff_effective_rate(s, b, now_ms);
    double rate = cur * factor;
    double lowest = cur < BACKOFF_MIN_RATE_PER_MIN ? cur : BACKOFF_MIN_RATE_PER_MIN;
    if (rate < lowest)
        rate = lowest;

    s->rate_per_min = rate;
    s->paused_until_ms = now_ms + pause;
    s->pause_level = level;
    s->last_deferral_ms = now_ms;
    s->last_recover_ms = 0;

    char rbuf[32], dbuf[32], suffix[96];
    snprintf(suffix, sizeof suffix, " (throttle x%g to %s, pause %s)", factor,
             units_format_rate(rbuf, sizeof rbuf, rate),
             units_format_duration(dbuf, sizeof dbuf, pause));
    const char *what = reply && reply[0] ? reply : "deferral";
    size_t sl = strlen(suffix);
    /* The suffix always fits (96 < 256): the reply gives way to it. */
    backoff_copy_cut(s->pause_reason, sizeof s->pause_reason - sl, what);
    memcpy(s->pause_reason + strlen(s->pause_reason), suffix, sl + 1);
    return true;
}

/* ---- rules ---- */

static bool backoff_rule_applies(const struct plan_rule *r, const char *provider)
{
    if (r->n_providers == 0)
        return true;
    if (!provider)
        return false;
    for (size_t i = 0; i < r->n_providers; i++)
        if (r->providers[i] && strcmp(r->providers[i], provider) == 0)
            return true;
    return false;
}

/* Records a match at now; true when it is the cap-th within period. */
static bool backoff_hits_add(struct backoff_rule_hits *h, int count, int64_t period_ms,
                             int64_t now_ms)
{
    int cap = count < 1 ? 1 : count > BACKOFF_TRIGGER_MAX ? BACKOFF_TRIGGER_MAX : count;
    if (h->cap != cap || h->n < 0 || h->n > cap || h->next < 0 || h->next >= cap) {
        /* First use, or the plan changed the trigger: start counting afresh. */
        memset(h, 0, sizeof *h);
        h->cap = cap;
    }
    h->at[h->next] = now_ms;
    h->next = (h->next + 1) % cap;
    if (h->n < cap)
        h->n++;
    if (h->n < cap)
        return false;
    /* Full ring: h->next is the oldest, the cap-th latest match. */
    return now_ms - h->at[h->next] <= period_ms;
}

size_t backoff_rules_match(const struct plan_rule *rules, size_t n_rules, const char *provider,
                           const char *reply, int64_t now_ms, struct backoff_rule_hits *hits,
                           struct backoff_action *out)
{
    size_t fired = 0;
    if (!reply)
        reply = "";
    for (size_t i = 0; i < n_rules; i++) {
        const struct plan_rule *r = &rules[i];
        if (!r->re_compiled || !backoff_rule_applies(r, provider))
            continue; /* a rule plan_load could not compile never matches */
        if (regexec(&r->re, reply, 0, NULL, 0) != 0)
            continue;
        if (!backoff_hits_add(&hits[i], r->trigger_count, r->trigger_period_ms, now_ms))
            continue;
        struct backoff_action *a = &out[fired++];
        a->rule = i;
        a->name = r->name ? r->name : r->match;
        a->action = r->action;
        a->rate_per_min = r->action == PLAN_ACTION_THROTTLE ? r->rate_per_min : 0;
        a->started_ms = now_ms;
        a->expires_ms = now_ms + (r->for_ms > 0 ? r->for_ms : 0);
    }
    return fired;
}

bool backoff_action_active(const struct backoff_action *a, int64_t now_ms)
{
    return a->started_ms <= now_ms && now_ms < a->expires_ms;
}

void backoff_decide(const struct backoff_state *s, const struct plan_backoff *b,
                    const struct backoff_action *a, size_t n, int64_t now_ms,
                    struct backoff_decision *out)
{
    memset(out, 0, sizeof *out);
    out->rate_per_min = backoff_effective_rate(s, b, now_ms);
    out->paused = backoff_paused(s, now_ms);
    int64_t until = out->paused ? s->paused_until_ms : 0;
    for (size_t i = 0; i < n; i++) {
        if (!backoff_action_active(&a[i], now_ms))
            continue;
        if (a[i].action == PLAN_ACTION_SUSPEND) {
            out->suspended = true;
            until = backoff_max64(until, a[i].expires_ms);
        } else if (a[i].action == PLAN_ACTION_THROTTLE && a[i].rate_per_min > 0 &&
                   a[i].rate_per_min < out->rate_per_min) {
            out->throttled = true;
            out->rate_per_min = a[i].rate_per_min;
        }
    }
    out->may_send = !out->paused && !out->suspended;
    out->until_ms = out->may_send ? 0 : until;
}

void backoff_bounce(struct reply_class *c)
{
    c->outcome = REPLY_BOUNCED;
    c->retry = false;
    c->suppress = c->scope == REPLY_SCOPE_RECIPIENT;
}

/* ---- retries ---- */

enum backoff_retry backoff_retry_next(const struct plan_backoff *b, int retry_no,
                                      int64_t first_attempt_ms, int64_t now_ms, int64_t *next_ms)
{
    int64_t deadline = first_attempt_ms + b->retry_give_up_ms;
    if (now_ms - first_attempt_ms >= b->retry_give_up_ms)
        return BACKOFF_EXPIRE;
    int64_t max = b->retry_max_ms > 0 ? b->retry_max_ms : INT64_MAX / 4;
    int64_t delay = b->retry_first_ms > 1000 ? b->retry_first_ms : 1000;
    for (int i = 0; i < retry_no && delay < max && delay <= INT64_MAX / 2; i++)
        delay *= 2;
    if (delay > max)
        delay = max;
    int64_t next = now_ms + delay;
    *next_ms = next < deadline ? next : deadline;
    return BACKOFF_RETRY;
}
