/*
 * plan_rules: the ramps, the providers, the reply rules and the backoff of the plan, and their
 * merge with the shipped provider table (providers.yaml). Both files are walked into a struct
 * plan_part (plan_rules.h); the merge then builds p->providers (the plan's entries first, taking
 * a shipped entry's mx and domains when they give none, then the shipped entries the plan did
 * not name) and p->rules (the shipped rules first, then the plan's), and checks what only the
 * merged result can tell: a ramp's max below its start, a rule naming an unknown provider.
 */
#include "plan_rules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipwarm/chars.h"
#include "ipwarm/infile.h"
#include "ipwarm/plan_yaml.h"
#include "ipwarm/secret.h"
#include "ipwarm/tz.h"
#include "ipwarm/units.h"

#include "plan_value.h"

/* ---------------------------------------------------------------------------------------- */
/* Freeing */

void plan_ramp_clear(struct plan_ramp *r)
{
    free(r->daily_cap);
    r->daily_cap = NULL;
    r->n_daily_cap = 0;
}

void plan_provider_clear(struct plan_provider *pv)
{
    free(pv->name);
    plan_strv_free(pv->mx, pv->n_mx);
    plan_strv_free(pv->domains, pv->n_domains);
    plan_ramp_clear(&pv->ramp);
    memset(pv, 0, sizeof *pv);
}

void plan_rule_clear(struct plan_rule *r)
{
    free(r->name);
    plan_strv_free(r->providers, r->n_providers);
    free(r->match);
    if (r->re_compiled)
        regfree(&r->re);
    memset(r, 0, sizeof *r);
}

/* Reads the ramp keys given in m into r, flagging each in r->set. */
void plan_ramp_parse(struct plan_ctx *c, const plan_node *m, const char *path, struct plan_ramp *r,
                     struct plan_ramp_nodes *nodes)
{
    static const char *const keys[] = {"start", "growth", "max", "daily_cap", "advance_if", NULL};
    static const char *const akeys[] = {"deferral_rate_below", "bounce_rate_below",
                                        "complaint_rate_below", "inbox_rate_above", NULL};
    char kp[PLAN_PATH_MAX];
    if (!plan_mapping(c, m, path, "a mapping with start, growth, max and daily_cap", keys))
        return;
    const plan_node *v;
    if ((v = plan_get(m, "start"))) {
        plan_path(kp, path, "start");
        if (plan_rate(c, v, kp, &r->start_per_min)) {
            r->set |= PLAN_RAMP_START;
            nodes->start = v;
        }
    }
    if ((v = plan_get(m, "growth"))) {
        plan_path(kp, path, "growth");
        if (plan_number(c, v, kp, "a number >= 1 (the rate is multiplied by it each sending day)",
                        1, false, 1000, false, &r->growth))
            r->set |= PLAN_RAMP_GROWTH;
    }
    if ((v = plan_get(m, "max"))) {
        plan_path(kp, path, "max");
        if (plan_rate(c, v, kp, &r->max_per_min)) {
            r->set |= PLAN_RAMP_MAX;
            nodes->max = v;
        }
    }
    if ((v = plan_get(m, "daily_cap"))) {
        plan_path(kp, path, "daily_cap");
        const char *what = "a whole number > 0";
        const plan_node *one = v;
        plan_node *const *items = (plan_node *const *)&one;
        size_t n = 1;
        if (v->kind == PLAN_YAML_SEQUENCE) {
            items = v->items;
            n = v->n;
        } else if (v->kind != PLAN_YAML_SCALAR || v->null) {
            plan_fail(c, v, kp, "expected a whole number > 0 or a list of them, found %s",
                      PLAN_SHOW(v));
            return;
        }
        if (n == 0) {
            plan_fail(c, v, kp, "expected a whole number > 0 or a list of them, found %s",
                      PLAN_SHOW(v));
        } else {
            int64_t *caps = plan_alloc(c, n * sizeof *caps);
            bool ok = caps != NULL;
            for (size_t i = 0; caps && i < n; i++) {
                char ip[PLAN_PATH_MAX];
                if (v->kind == PLAN_YAML_SEQUENCE)
                    plan_path_index(ip, kp, i);
                else
                    plan_path_join(ip, kp, "", "", 0);
                ok = plan_int(c, items[i], ip, what, 1, INT64_C(1000000000000), &caps[i]) && ok;
            }
            if (ok) {
                plan_ramp_clear(r);
                r->daily_cap = caps;
                r->n_daily_cap = n;
                r->set |= PLAN_RAMP_DAILY_CAP;
            } else {
                free(caps);
            }
        }
    }
    if ((v = plan_get(m, "advance_if"))) {
        plan_path(kp, path, "advance_if");
        if (plan_mapping(c, v, kp, "a mapping with deferral_rate_below and bounce_rate_below",
                         akeys)) {
            const plan_node *a;
            char ap[PLAN_PATH_MAX];
            if ((a = plan_get(v, "deferral_rate_below"))) {
                plan_path(ap, kp, "deferral_rate_below");
                if (plan_percent(c, a, ap, &r->deferral_below_pct))
                    r->set |= PLAN_RAMP_DEFERRAL_BELOW;
            }
            if ((a = plan_get(v, "bounce_rate_below"))) {
                plan_path(ap, kp, "bounce_rate_below");
                if (plan_percent(c, a, ap, &r->bounce_below_pct))
                    r->set |= PLAN_RAMP_BOUNCE_BELOW;
            }
            if ((a = plan_get(v, "complaint_rate_below"))) {
                plan_path(ap, kp, "complaint_rate_below");
                if (plan_percent(c, a, ap, &r->complaint_below_pct)) {
                    r->set |= PLAN_RAMP_COMPLAINT_BELOW;
                    r->complaint_gate = true;
                }
            }
            if ((a = plan_get(v, "inbox_rate_above"))) {
                plan_path(ap, kp, "inbox_rate_above");
                if (plan_percent(c, a, ap, &r->inbox_above_pct)) {
                    r->set |= PLAN_RAMP_INBOX_ABOVE;
                    r->inbox_gate = true;
                }
            }
        }
    }
}

static int64_t *plan_caps_dup(struct plan_ctx *c, const int64_t *caps, size_t n)
{
    if (n == 0)
        return NULL;
    int64_t *d = plan_alloc(c, n * sizeof *d);
    if (d)
        memcpy(d, caps, n * sizeof *d);
    return d;
}

/* Copies the keys src gives over dst (daily caps are copied, not shared). */
static void plan_ramp_overlay(struct plan_ctx *c, struct plan_ramp *dst,
                              const struct plan_ramp *src)
{
    if (src->set & PLAN_RAMP_START)
        dst->start_per_min = src->start_per_min;
    if (src->set & PLAN_RAMP_GROWTH)
        dst->growth = src->growth;
    if (src->set & PLAN_RAMP_MAX)
        dst->max_per_min = src->max_per_min;
    if (src->set & PLAN_RAMP_DEFERRAL_BELOW)
        dst->deferral_below_pct = src->deferral_below_pct;
    if (src->set & PLAN_RAMP_BOUNCE_BELOW)
        dst->bounce_below_pct = src->bounce_below_pct;
    if (src->set & PLAN_RAMP_COMPLAINT_BELOW) {
        dst->complaint_below_pct = src->complaint_below_pct;
        dst->complaint_gate = true;
    }
    if (src->set & PLAN_RAMP_INBOX_ABOVE) {
        dst->inbox_above_pct = src->inbox_above_pct;
        dst->inbox_gate = true;
    }
    if (src->set & PLAN_RAMP_DAILY_CAP) {
        int64_t *caps = plan_caps_dup(c, src->daily_cap, src->n_daily_cap);
        plan_ramp_clear(dst);
        dst->daily_cap = caps;
        dst->n_daily_cap = caps ? src->n_daily_cap : 0;
    }
    dst->set |= src->set;
}

void plan_ramp_check(struct plan_ctx *c, const char *file, int rank, const struct plan_ramp *r,
                     const struct plan_ramp_nodes *nodes, const char *path)
{
    if (r->max_per_min >= r->start_per_min)
        return;
    char kp[PLAN_PATH_MAX], a[32], b[32];
    units_format_rate(a, sizeof a, r->start_per_min);
    units_format_rate(b, sizeof b, r->max_per_min);
    if (nodes->max) {
        plan_path(kp, path, "max");
        plan_fail_in(c, file, rank, nodes->max, kp, "expected a rate >= start (%s), found %s", a,
                     PLAN_SHOW(nodes->max));
    } else if (nodes->start) {
        plan_path(kp, path, "start");
        plan_fail_in(c, file, rank, nodes->start, kp, "expected a rate <= max (%s), found %s", b,
                     PLAN_SHOW(nodes->start));
    }
}

static int plan_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Orders entries by name, then by position in the file, so that names given twice are
 * neighbours: O(n log n) where comparing every pair would let a long list take minutes. */
static int plan_prov_cmp(const void *a, const void *b)
{
    const struct plan_prov_in *x = *(const struct plan_prov_in *const *)a,
                              *y = *(const struct plan_prov_in *const *)b;
    int d = strcmp(x->pv.name, y->pv.name);
    return d ? d : (x < y ? -1 : x > y);
}

static void plan_providers_dups(struct plan_ctx *c, struct plan_part *part)
{
    const struct plan_prov_in **v = plan_alloc(c, (part->n_provs + 1) * sizeof *v);
    if (!v)
        return;
    size_t n = 0;
    for (size_t i = 0; i < part->n_provs; i++)
        if (part->provs[i].pv.name)
            v[n++] = &part->provs[i];
    qsort(v, n, sizeof *v, plan_prov_cmp);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(v[i]->pv.name, v[first]->pv.name) != 0) {
            first = i;
            continue;
        }
        char kp[PLAN_PATH_MAX], ip[PLAN_PATH_MAX];
        plan_path_index(ip, "providers", v[i]->index);
        plan_path(kp, ip, "name");
        plan_fail_in(c, v[i]->file, v[i]->rank, v[i]->name_node, kp,
                     "expected each provider name once, found \"%s\" again (first at line %d, "
                     "column %d)",
                     v[i]->pv.name, v[first]->name_node->line, v[first]->name_node->column);
    }
    free(v);
}

/* Reads one list of provider entries (the plan's or the table's). */
void plan_providers_parse(struct plan_ctx *c, const plan_node *v, struct plan_part *part)
{
    static const char *const keys[] = {"name", "mx", "domains", "default", "ramp", NULL};
    if (v->kind != PLAN_YAML_SEQUENCE) {
        plan_fail(c, v, "providers", "expected a list of providers (- name: ...), found %s",
                  PLAN_SHOW(v));
        return;
    }
    part->provs = plan_alloc(c, (v->n ? v->n : 1) * sizeof *part->provs);
    if (!part->provs)
        return;
    const struct plan_prov_in *first_default = NULL;
    for (size_t i = 0; i < v->n; i++) {
        const plan_node *m = v->items[i], *x;
        char path[PLAN_PATH_MAX], kp[PLAN_PATH_MAX];
        plan_path_index(path, "providers", i);
        if (!plan_mapping(c, m, path, "a mapping with name and mx", keys))
            continue;
        struct plan_prov_in *in = &part->provs[part->n_provs++];
        in->node = m;
        in->index = i;
        in->file = c->file;
        in->rank = c->rank;
        in->pv.pos = (struct plan_pos){c->file, m->line, m->column};
        if ((x = plan_get(m, "name"))) {
            plan_path(kp, path, "name");
            const char *what = "a provider name of lower-case letters, digits, '-' and '_'";
            char *s = NULL;
            if (plan_str(c, x, kp, what, &s)) {
                if (!plan_check_provider_name(s, strlen(s))) {
                    plan_fail(c, x, kp, "expected %s, found %s", what, PLAN_SHOW(x));
                    free(s);
                } else {
                    in->pv.name = s;
                    in->name_node = x;
                }
            }
        } else {
            plan_path(kp, path, "name");
            plan_fail(c, m, kp, "expected a provider name, found nothing");
        }
        if ((x = plan_get(m, "mx"))) {
            plan_path(kp, path, "mx");
            in->has_mx = true;
            if (plan_strv(c, x, kp, "an MX host suffix such as .google.com", true,
                          plan_check_mx_suffix, true, &in->pv.mx, &in->pv.n_mx)) {
                /* matching compares suffixes at a label boundary: store them with the dot */
                for (size_t j = 0; j < in->pv.n_mx; j++) {
                    if (in->pv.mx[j][0] != '.') {
                        char *d = plan_concat(c, ".", "", in->pv.mx[j]);
                        free(in->pv.mx[j]);
                        in->pv.mx[j] = d;
                    }
                }
            }
        }
        if ((x = plan_get(m, "domains"))) {
            plan_path(kp, path, "domains");
            in->has_domains = true;
            plan_strv(c, x, kp, "a recipient domain such as gmail.com", true, plan_check_domain,
                      true, &in->pv.domains, &in->pv.n_domains);
        }
        if ((x = plan_get(m, "default"))) {
            plan_path(kp, path, "default");
            if (plan_bool(c, x, kp, &in->pv.is_default)) {
                in->has_default = true;
                in->default_node = x;
                if (in->pv.is_default && first_default)
                    plan_fail(c, x, kp,
                              "expected one provider with default: true, found a second one "
                              "(the first is at line %d, column %d)",
                              first_default->default_node->line,
                              first_default->default_node->column);
                else if (in->pv.is_default)
                    first_default = in;
            }
        }
        if ((x = plan_get(m, "ramp"))) {
            plan_path(kp, path, "ramp");
            struct plan_ramp_nodes rn = {0};
            plan_ramp_parse(c, x, kp, &in->pv.ramp, &rn);
            in->start_node = rn.start;
            in->max_node = rn.max;
        }
    }
    plan_providers_dups(c, part);
}

void plan_rules_parse(struct plan_ctx *c, const plan_node *v, const char *base,
                      struct plan_part *part)
{
    static const char *const keys[] = {"name", "provider", "match",   "action",
                                       "rate", "for",      "trigger", NULL};
    static const char *const actions[] = {"throttle", "suspend", "bounce", NULL};
    if (v->kind != PLAN_YAML_SEQUENCE) {
        plan_fail(c, v, base, "expected a list of rules (- match: ...), found %s", PLAN_SHOW(v));
        return;
    }
    part->rules = plan_alloc(c, (v->n ? v->n : 1) * sizeof *part->rules);
    if (!part->rules)
        return;
    for (size_t i = 0; i < v->n; i++) {
        const plan_node *m = v->items[i], *x, *rate;
        char path[PLAN_PATH_MAX], kp[PLAN_PATH_MAX];
        plan_path_index(path, base, i);
        if (!plan_mapping(c, m, path, "a mapping with match and action", keys))
            continue;
        struct plan_rule_in *in = &part->rules[part->n_rules++];
        struct plan_rule *r = &in->r;
        in->index = i;
        in->file = c->file;
        in->rank = c->rank;
        r->pos = (struct plan_pos){c->file, m->line, m->column};
        r->from_plan = c->rank == 0;
        r->for_ms = 3600 * 1000;
        r->trigger_count = 1;
        r->rate_per_min = 1;
        if ((x = plan_get(m, "name"))) {
            plan_path(kp, path, "name");
            plan_str(c, x, kp, "a rule name", &r->name);
        }
        in->provider_node = plan_get(m, "provider");
        if ((x = plan_get(m, "match"))) {
            plan_path(kp, path, "match");
            if (plan_str(c, x, kp, "a POSIX extended regular expression", &r->match)) {
                int rc = regcomp(&r->re, r->match, REG_EXTENDED | REG_ICASE | REG_NOSUB);
                if (rc == 0) {
                    r->re_compiled = true;
                } else {
                    char why[256];
                    regerror(rc, &r->re, why, sizeof why);
                    plan_fail(c, x, kp,
                              "expected a POSIX extended regular expression, found %s (%s)",
                              PLAN_SHOW(x), why);
                }
            }
        } else {
            plan_path(kp, path, "match");
            plan_fail(c, m, kp, "expected a regular expression to match replies, found nothing");
        }
        int a = -1;
        if ((x = plan_get(m, "action"))) {
            plan_path(kp, path, "action");
            if (plan_enum(c, x, kp, actions, &a))
                r->action = (enum plan_rule_action)a;
        } else {
            plan_path(kp, path, "action");
            plan_fail(c, m, kp, "expected throttle, suspend or bounce, found nothing");
        }
        if ((rate = plan_get(m, "rate"))) {
            plan_path(kp, path, "rate");
            if (a >= 0 && a != PLAN_ACTION_THROTTLE)
                plan_fail(c, rate, kp,
                          "expected no rate with action: %s (rate is only used with action: "
                          "throttle), found %s",
                          actions[a], PLAN_SHOW(rate));
            else
                plan_rate(c, rate, kp, &r->rate_per_min);
        }
        if ((x = plan_get(m, "for"))) {
            plan_path(kp, path, "for");
            plan_duration(c, x, kp, true, &r->for_ms);
        }
        if ((x = plan_get(m, "trigger"))) {
            plan_path(kp, path, "trigger");
            if (plan_scalar(c, x, kp, "immediately or N/PERIOD such as 3/1h") &&
                plan_clean(c, x, kp, false)) {
                struct err ue = {0};
                if (units_parse_trigger(x->text, &r->trigger_count, &r->trigger_period_ms, &ue) !=
                    IPW_OK)
                    plan_fail(c, x, kp, "%s", ue.msg);
            }
        }
    }
}

void plan_backoff_walk(struct plan_ctx *c, const plan_node *m, struct plan_part *part)
{
    static const char *const keys[] = {"deferral", "retry", "blocked", "rules", NULL};
    static const char *const dkeys[] = {"factor",        "pause",        "max_pause",
                                        "recover_after", "recover_step", NULL};
    static const char *const bkeys[] = {"pause", "max_pause", NULL};
    static const char *const rkeys[] = {"first", "max", "give_up_after", NULL};
    struct plan_backoff *b = &c->p->backoff;
    if (!plan_mapping(c, m, "backoff", "a mapping with deferral, retry and rules", keys))
        return;
    const plan_node *v, *x;
    if ((v = plan_get(m, "deferral")) &&
        plan_mapping(c, v, "backoff.deferral", "a mapping with factor and pause", dkeys)) {
        if ((x = plan_get(v, "factor")))
            plan_number(c, x, "backoff.deferral.factor", "a number between 0 and 1 (exclusive)", 0,
                        true, 1, true, &b->factor);
        if ((x = plan_get(v, "pause")))
            plan_duration(c, x, "backoff.deferral.pause", true, &b->pause_ms);
        const plan_node *mp = plan_get(v, "max_pause");
        if (mp && plan_duration(c, mp, "backoff.deferral.max_pause", true, &b->pause_max_ms) &&
            b->pause_max_ms < b->pause_ms) {
            char d[32];
            plan_fail(c, mp, "backoff.deferral.max_pause",
                      "expected a duration >= pause (%s), found %s",
                      units_format_duration(d, sizeof d, b->pause_ms), PLAN_SHOW(mp));
        }
        if ((x = plan_get(v, "recover_after")))
            plan_duration(c, x, "backoff.deferral.recover_after", true, &b->recover_after_ms);
        if ((x = plan_get(v, "recover_step")) &&
            plan_percent(c, x, "backoff.deferral.recover_step", &b->recover_step_pct) &&
            b->recover_step_pct <= 0)
            plan_fail(c, x, "backoff.deferral.recover_step",
                      "expected a percentage > 0 and <= 100 %%, found %s", PLAN_SHOW(x));
    }
    /* A receiver that refuses the sender (a block list, an authentication policy) suspends
     * the provider this long, doubling while it goes on refusing. */
    if ((v = plan_get(m, "blocked")) &&
        plan_mapping(c, v, "backoff.blocked", "a mapping with pause and max_pause", bkeys)) {
        if ((x = plan_get(v, "pause")))
            plan_duration(c, x, "backoff.blocked.pause", true, &b->blocked_pause_ms);
        const plan_node *mp = plan_get(v, "max_pause");
        if (mp &&
            plan_duration(c, mp, "backoff.blocked.max_pause", true, &b->blocked_pause_max_ms) &&
            b->blocked_pause_max_ms < b->blocked_pause_ms) {
            char d[32];
            plan_fail(c, mp, "backoff.blocked.max_pause",
                      "expected a duration >= pause (%s), found %s",
                      units_format_duration(d, sizeof d, b->blocked_pause_ms), PLAN_SHOW(mp));
        }
        /* A pause longer than the default ceiling, with no ceiling of its own, is meant as
         * given: the ceiling rises to it rather than cutting it short. */
        if (!mp && b->blocked_pause_max_ms < b->blocked_pause_ms)
            b->blocked_pause_max_ms = b->blocked_pause_ms;
    }
    if ((v = plan_get(m, "retry")) &&
        plan_mapping(c, v, "backoff.retry", "a mapping with first, max and give_up_after", rkeys)) {
        const plan_node *first = plan_get(v, "first"), *max = plan_get(v, "max"),
                        *gu = plan_get(v, "give_up_after");
        bool ok = true;
        char d[32];
        if (first)
            ok = plan_duration(c, first, "backoff.retry.first", true, &b->retry_first_ms) && ok;
        if (max)
            ok = plan_duration(c, max, "backoff.retry.max", true, &b->retry_max_ms) && ok;
        if (gu)
            ok = plan_duration(c, gu, "backoff.retry.give_up_after", true, &b->retry_give_up_ms) &&
                 ok;
        if (ok && b->retry_max_ms < b->retry_first_ms)
            plan_fail(c, max ? max : first, max ? "backoff.retry.max" : "backoff.retry.first",
                      "expected first <= max, found first %s and max %s",
                      units_format_duration(d, sizeof d, b->retry_first_ms),
                      units_format_duration((char[32]){0}, 32, b->retry_max_ms));
        else if (ok && b->retry_give_up_ms < b->retry_max_ms)
            plan_fail(c, gu ? gu : max, gu ? "backoff.retry.give_up_after" : "backoff.retry.max",
                      "expected max <= give_up_after, found max %s and give_up_after %s",
                      units_format_duration(d, sizeof d, b->retry_max_ms),
                      units_format_duration((char[32]){0}, 32, b->retry_give_up_ms));
    }
    if ((v = plan_get(m, "rules")))
        plan_rules_parse(c, v, "backoff.rules", part);
}

/* ---------------------------------------------------------------------------------------- */
/* Merge */

void plan_part_free(struct plan_part *part)
{
    for (size_t i = 0; part->provs && i < part->n_provs; i++)
        plan_provider_clear(&part->provs[i].pv);
    free(part->provs);
    for (size_t i = 0; part->rules && i < part->n_rules; i++)
        plan_rule_clear(&part->rules[i].r);
    free(part->rules);
    memset(part, 0, sizeof *part);
}

/* The first entry called name in byname (entries sorted by plan_prov_cmp), or NULL. */
static struct plan_prov_in *plan_part_find(struct plan_prov_in **byname, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(byname[mid]->pv.name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(byname[lo]->pv.name, name) == 0 ? byname[lo] : NULL;
}

/*
 * Builds p->providers: the plan's entries in file order (taking a shipped entry's mx and
 * domains when they give none), then the shipped entries the plan did not name. The default
 * is the plan's when it declares one, else the table's.
 */
void plan_merge_providers(struct plan_ctx *c, struct plan_part *plan, struct plan_part *table)
{
    struct plan *p = c->p;
    size_t n = plan->n_provs + table->n_provs;
    p->providers = plan_alloc(c, (n ? n : 1) * sizeof *p->providers);
    if (!p->providers)
        return;
    bool *taken = plan_alloc(c, (table->n_provs ? table->n_provs : 1) * sizeof *taken);
    struct plan_prov_in **byname = plan_alloc(c, (table->n_provs + 1) * sizeof *byname);
    if (!taken || !byname) {
        free(taken);
        free(byname);
        return;
    }
    size_t n_byname = 0;
    for (size_t i = 0; i < table->n_provs; i++)
        if (table->provs[i].pv.name)
            byname[n_byname++] = &table->provs[i];
    qsort(byname, n_byname, sizeof *byname, plan_prov_cmp);
    bool plan_default = false;
    for (size_t i = 0; i < plan->n_provs; i++)
        plan_default = plan_default || (plan->provs[i].has_default && plan->provs[i].pv.is_default);

    for (int pass = 0; pass < 2; pass++) {
        struct plan_part *src = pass == 0 ? plan : table;
        for (size_t i = 0; i < src->n_provs; i++) {
            struct plan_prov_in *in = &src->provs[i];
            if (!in->pv.name || (pass == 1 && taken[i]))
                continue;
            struct plan_prov_in *ship =
                pass == 0 ? plan_part_find(byname, n_byname, in->pv.name) : NULL;
            if (ship)
                taken[ship - table->provs] = true;
            struct plan_provider *out = &p->providers[p->n_providers++];
            out->name = in->pv.name;
            out->pos = in->pv.pos;
            out->from_plan = pass == 0;
            in->pv.name = NULL;
            struct plan_provider *lists = in->has_mx || !ship ? &in->pv : &ship->pv;
            out->mx = lists->mx;
            out->n_mx = lists->n_mx;
            lists->mx = NULL;
            lists->n_mx = 0;
            lists = in->has_domains || !ship ? &in->pv : &ship->pv;
            out->domains = lists->domains;
            out->n_domains = lists->n_domains;
            lists->domains = NULL;
            lists->n_domains = 0;
            if (pass == 0 && in->has_default)
                out->is_default = in->pv.is_default;
            else if (pass == 0)
                out->is_default = !plan_default && ship && ship->pv.is_default;
            else
                out->is_default = !plan_default && in->pv.is_default;

            /* the effective ramp: the plan's, then the table's keys, then the plan entry's */
            out->ramp = p->ramp;
            out->ramp.daily_cap = plan_caps_dup(c, p->ramp.daily_cap, p->ramp.n_daily_cap);
            out->ramp.n_daily_cap = out->ramp.daily_cap ? p->ramp.n_daily_cap : 0;
            out->ramp.set = 0;
            if (ship)
                plan_ramp_overlay(c, &out->ramp, &ship->pv.ramp);
            plan_ramp_overlay(c, &out->ramp, &in->pv.ramp);
            char path[PLAN_PATH_MAX];
            plan_path_index(path, "providers", in->index);
            struct plan_ramp_nodes rn = {in->start_node, in->max_node};
            char rp[PLAN_PATH_MAX];
            plan_path(rp, path, "ramp");
            if (rn.start || rn.max)
                plan_ramp_check(c, in->file, in->rank, &out->ramp, &rn, rp);
            else if (ship && (ship->start_node || ship->max_node)) {
                struct plan_ramp_nodes sn = {ship->start_node, ship->max_node};
                plan_path_index(path, "providers", ship->index);
                plan_path(rp, path, "ramp");
                plan_ramp_check(c, ship->file, ship->rank, &out->ramp, &sn, rp);
            }
            if (pass == 0 && !ship && !in->has_mx && !in->has_domains && !out->is_default)
                plan_fail_in(c, in->file, in->rank, in->node, path,
                             "expected mx or domains for a provider that is not in the provider "
                             "table, found neither (it would match no recipient)");
        }
    }
    free(taken);
    free(byname);

    size_t defaults = 0;
    for (size_t i = 0; i < p->n_providers; i++) {
        if (p->providers[i].is_default) {
            if (defaults++ == 0)
                p->default_provider = i;
        }
    }
    if (defaults == 0) {
        const struct plan_prov_in *off = NULL;
        for (size_t i = 0; i < plan->n_provs && !off; i++)
            if (plan->provs[i].has_default && !plan->provs[i].pv.is_default)
                off = &plan->provs[i];
        const char *what = "expected one provider with default: true (it takes every "
                           "recipient no other provider matches), found none";
        if (off || plan->providers_key)
            plan_fail(c, off ? off->default_node : plan->providers_key, "providers", "%s", what);
        else
            plan_fail_in(c, p->providers_name, 1, NULL, "providers", "%s", what);
    }
}

/* Moves the rules into p->rules (the table's first) and checks the providers they name. */
void plan_merge_rules(struct plan_ctx *c, struct plan_part *plan, struct plan_part *table)
{
    struct plan *p = c->p;
    size_t n = plan->n_rules + table->n_rules;
    p->rules = plan_alloc(c, (n ? n : 1) * sizeof *p->rules);
    if (!p->rules)
        return;
    const char **names = plan_alloc(c, (p->n_providers + 1) * sizeof *names);
    if (!names)
        return;
    size_t n_names = 0;
    for (size_t i = 0; i < p->n_providers; i++)
        if (p->providers[i].name)
            names[n_names++] = p->providers[i].name;
    /* sorted for bsearch: a rule may name thousands of providers in a hostile plan */
    qsort(names, n_names, sizeof *names, plan_name_cmp);
    for (int pass = 0; pass < 2; pass++) {
        struct plan_part *src = pass == 0 ? table : plan;
        const char *base = pass == 0 ? "rules" : "backoff.rules";
        for (size_t i = 0; i < src->n_rules; i++) {
            struct plan_rule_in *in = &src->rules[i];
            const plan_node *v = in->provider_node;
            char path[PLAN_PATH_MAX];
            plan_path_index(path, base, in->index);
            plan_path(path, path, "provider");
            if (v) {
                const char *what = "a provider name or a list of them";
                const char *file = c->file;
                int rank = c->rank;
                c->file = in->file;
                c->rank = in->rank;
                if (plan_strv(c, v, path, what, true, NULL, false, &in->r.providers,
                              &in->r.n_providers)) {
                    for (size_t j = 0; j < in->r.n_providers; j++) {
                        if (bsearch(&in->r.providers[j], names, n_names, sizeof *names,
                                    plan_name_cmp))
                            continue;
                        const plan_node *item = v->kind == PLAN_YAML_SEQUENCE ? v->items[j] : v;
                        char ip[PLAN_PATH_MAX];
                        if (v->kind == PLAN_YAML_SEQUENCE)
                            plan_path_index(ip, path, j);
                        else
                            plan_path_join(ip, path, "", "", 0);
                        const char *near = c->n_total < PLAN_MAX_KEPT
                                               ? plan_nearest(in->r.providers[j],
                                                              strlen(in->r.providers[j]), names)
                                               : NULL;
                        if (near)
                            plan_fail(c, item, ip,
                                      "expected the name of a provider, found %s (did you mean "
                                      "\"%s\"?)",
                                      PLAN_SHOW(item), near);
                        else
                            plan_fail(c, item, ip,
                                      "expected the name of a provider (shipped or in the plan), "
                                      "found %s",
                                      PLAN_SHOW(item));
                    }
                }
                c->file = file;
                c->rank = rank;
            }
            p->rules[p->n_rules++] = in->r;
            memset(&in->r, 0, sizeof in->r);
        }
    }
    free(names);
}
