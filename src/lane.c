/*
 * lane: what a lane is doing now, and why (see lane.h).
 */
#include "ipwarm/lane.h"

#include <stdio.h>
#include <string.h>

const char *lane_activity_name(enum lane_activity a)
{
    switch (a) {
    case LANE_SENDING:
        return "sending";
    case LANE_HELD:
        return "held";
    case LANE_SUSPENDED:
        return "suspended";
    case LANE_PAUSED:
        return "paused";
    case LANE_CAPPED:
        return "capped";
    case LANE_CLOSED:
        return "closed";
    }
    return "?";
}

void lane_state_init(struct lane_state *s, const struct plan_ramp *ramp)
{
    memset(s, 0, sizeof *s);
    s->ramp.rate_per_min = ramp_rate_for_stage(ramp, 0);
    backoff_state_init(&s->bo, s->ramp.rate_per_min);
}

void lane_state_from_row(struct lane_state *s, const struct plan_ramp *ramp,
                         const struct store_provider *row)
{
    lane_state_init(s, ramp);
    if (!row)
        return;
    s->stored = true;
    s->ramp.stage = row->stage;
    s->ramp.sending_day = row->sending_day;
    snprintf(s->ramp.day_date, sizeof s->ramp.day_date, "%s",
             row->sending_day_date ? row->sending_day_date : "");
    s->ramp.rate_per_min = ramp_rate_for_stage(ramp, row->stage);
    backoff_state_init(&s->bo, s->ramp.rate_per_min);
    /* The stored rate is backoff's cut; a rate at or above the stage's is no cut. */
    if (row->rate_per_min > 0 && row->rate_per_min < s->ramp.rate_per_min)
        s->bo.rate_per_min = row->rate_per_min;
    s->bo.paused_until_ms = row->paused_until_ms;
    s->bo.pause_level = row->pause_level;
    s->bo.last_deferral_ms = row->last_deferral_ms;
    s->bo.last_recover_ms = row->rate_changed_ms;
    snprintf(s->bo.pause_reason, sizeof s->bo.pause_reason, "%s",
             row->pause_reason ? row->pause_reason : "");
    s->manual = row->pause_manual != 0;
    s->sent_today = row->sent_today;
    snprintf(s->sent_date, sizeof s->sent_date, "%s",
             row->sent_today_date ? row->sent_today_date : "");
    snprintf(s->last_reply, sizeof s->last_reply, "%s", row->last_reply ? row->last_reply : "");
    s->last_reply_ms = row->last_reply_ms;
    s->seq.anchor_ms = row->pace_anchor_ms;
    s->seq.n = row->pace_n;
    s->seq.rate_per_min = row->pace_rate;
}

void lane_state_to_row(const struct lane_state *s, const char *name, int64_t now_ms,
                       struct store_provider *row)
{
    memset(row, 0, sizeof *row);
    row->name = name;
    row->stage = s->ramp.stage;
    row->sending_day = s->ramp.sending_day;
    row->sending_day_date = s->ramp.day_date[0] ? s->ramp.day_date : NULL;
    row->rate_per_min = s->bo.rate_per_min > 0 ? s->bo.rate_per_min : s->ramp.rate_per_min;
    row->sent_today = s->sent_today;
    row->sent_today_date = s->sent_date[0] ? s->sent_date : NULL;
    row->paused_until_ms = s->bo.paused_until_ms;
    row->pause_reason = s->bo.pause_reason[0] ? s->bo.pause_reason : NULL;
    row->pause_level = s->bo.pause_level;
    row->pause_manual = s->manual;
    row->last_deferral_ms = s->bo.last_deferral_ms;
    /* recover_after counts from the later of the last cut and the last recovery step. */
    row->rate_changed_ms = s->bo.last_recover_ms > s->bo.last_deferral_ms ? s->bo.last_recover_ms
                                                                          : s->bo.last_deferral_ms;
    row->last_reply = s->last_reply[0] ? s->last_reply : NULL;
    row->last_reply_ms = s->last_reply_ms;
    row->next_send_ms =
        s->seq.rate_per_min > 0 ? pace_seq_due(&s->seq, s->seq.rate_per_min, now_ms) : 0;
    row->updated_ms = now_ms;
    row->pace_anchor_ms = s->seq.anchor_ms;
    row->pace_n = s->seq.n;
    row->pace_rate = s->seq.rate_per_min;
}

void lane_action_from_store(const struct store_rule_action *a, struct lane_action *out)
{
    memset(out, 0, sizeof *out);
    out->b.name = a->rule;
    if (a->action && strcmp(a->action, "throttle") == 0)
        out->b.action = PLAN_ACTION_THROTTLE;
    else if (a->action && strcmp(a->action, "bounce") == 0)
        out->b.action = PLAN_ACTION_BOUNCE;
    else
        out->b.action = PLAN_ACTION_SUSPEND; /* suspend, and a manual pause */
    out->b.rate_per_min = a->rate_per_min;
    out->b.started_ms = a->started_ms;
    out->b.expires_ms = a->expires_ms ? a->expires_ms : INT64_MAX;
    out->manual = a->manual != 0 || (a->action && strcmp(a->action, "pause") == 0);
    out->reason = a->reason;
}

/* The latest end among the active actions that are (or are not) manual suspensions; 0 when one
 * has no end. Sets *found. Copies the reason of the one ending last. */
static int64_t lane_until(const struct lane_action *a, size_t n, bool manual, int64_t now,
                          bool *found, char *reason, size_t rn)
{
    int64_t until = -1;
    *found = false;
    for (size_t i = 0; i < n; i++) {
        if (a[i].b.action != PLAN_ACTION_SUSPEND || a[i].manual != manual ||
            !backoff_action_active(&a[i].b, now))
            continue;
        *found = true;
        int64_t end = a[i].b.expires_ms == INT64_MAX ? 0 : a[i].b.expires_ms;
        /* On a tie the newer one speaks (actions come oldest first): a whole pool's action
         * recorded after the IP's own, for the same trouble and the same end. */
        bool later = until != 0 && (end == 0 || end >= until);
        if (!later)
            continue;
        until = end;
        const char *why =
            a[i].reason && a[i].reason[0] ? a[i].reason : (manual ? "paused by hand" : "suspended");
        /* The words status has always shown: "suspend by rule yahoo-tss04: 421 ...". */
        if (manual || !a[i].b.name)
            snprintf(reason, rn, "%s", why);
        else
            snprintf(reason, rn, "suspend by rule %s: %s", a[i].b.name, why);
    }
    return until < 0 ? 0 : until;
}

void lane_now(const struct lane_state *s, const struct ramp_state *today,
              const struct plan_ramp *ramp, const struct plan_backoff *b,
              const struct lane_action *a, size_t n, const struct pace_frame *fr,
              struct lane_now *out)
{
    memset(out, 0, sizeof *out);
    int64_t now = fr->now_ms;
    struct ramp_state day = s->ramp;
    if (today) {
        day = *today;
    } else if (strcmp(s->ramp.day_date, fr->today) != 0) {
        day.sending_day = s->ramp.sending_day + 1;
        snprintf(day.day_date, sizeof day.day_date, "%s", fr->today);
    }
    if (day.sending_day < 1)
        day.sending_day = 1;
    out->stage = day.stage;
    out->sending_day = day.sending_day;
    out->planned_per_min = ramp_rate_for_stage(ramp, day.stage);
    out->sent_today = strcmp(s->sent_date, fr->today) == 0 ? s->sent_today : 0;
    out->cap_today = ramp_cap_today(ramp, day.sending_day);

    /* Backoff and the actions, as the engine weighs them. */
    struct backoff_state bo = s->bo;
    if (bo.planned_per_min != out->planned_per_min)
        backoff_set_planned(&bo, out->planned_per_min);
    struct backoff_action acts[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof acts / sizeof acts[0]; i++)
        acts[k++] = a[i].b;
    struct backoff_decision d;
    backoff_decide(&bo, b, acts, k, now, &d);
    out->rate_per_min = d.rate_per_min;
    out->throttled = d.throttled;

    bool found;
    int64_t until = lane_until(a, n, true, now, &found, out->reason, sizeof out->reason);
    if (!found && s->manual && bo.paused_until_ms > now) {
        /* A timed manual hold kept only in the row. */
        found = true;
        until = bo.paused_until_ms;
        snprintf(out->reason, sizeof out->reason, "%s",
                 bo.pause_reason[0] ? bo.pause_reason : "paused by hand");
    }
    if (found) {
        out->activity = LANE_HELD;
        out->until_ms = until;
        return;
    }
    until = lane_until(a, n, false, now, &found, out->reason, sizeof out->reason);
    if (found) {
        out->activity = LANE_SUSPENDED;
        out->until_ms = until;
        return;
    }
    if (d.paused) {
        out->activity = LANE_PAUSED;
        out->until_ms = bo.paused_until_ms;
        snprintf(out->reason, sizeof out->reason, "backoff: %s",
                 bo.pause_reason[0] ? bo.pause_reason : "deferrals");
        return;
    }
    if (out->cap_today >= 0 && out->sent_today >= out->cap_today) {
        out->activity = LANE_CAPPED;
        out->until_ms = fr->midnight_ms;
        snprintf(out->reason, sizeof out->reason, "today's cap of %lld messages is reached",
                 (long long)out->cap_today);
        return;
    }
    if (!fr->open) {
        out->activity = LANE_CLOSED;
        out->until_ms = fr->open_ms == INT64_MAX ? 0 : fr->open_ms;
        snprintf(out->reason, sizeof out->reason, "outside the schedule's sending windows");
        return;
    }
    out->activity = LANE_SENDING;
}
