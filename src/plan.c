/*
 * plan: the warm-up plan's schema, its validation and the merge with the shipped providers.
 *
 * plan_yaml.c turns the file into a tree of positioned nodes; this file walks that tree one
 * section at a time against the keys plan.md defines, fills struct plan, and collects every
 * problem it meets instead of stopping at the first, because a user fixing a plan wants the
 * whole list in one go. Each problem is one line, FILE:LINE:COLUMN: key.path: expected ...,
 * found ...; they are sorted by position and at most PLAN_MAX_SHOWN are printed. Any problem
 * refuses the whole plan: nothing half-valid ever reaches the scheduler.
 *
 * The walkers of the sections are in files of their own, on the typed readers of plan_value.c:
 * plan_sections.c (source, sender, transport, message, recipients, schedule, preflight, dns),
 * plan_rules.c (ramps, providers, rules, backoff, and the merge with the shipped provider
 * table), plan_feedback.c and plan_placement.c. This file keeps the top-level walk, the
 * defaults, loading and freeing.
 *
 * Decisions worth knowing (docs/plan.md should tell users the same):
 *  - Numbers may be quoted ("25" as well as 25): YAML authors quote defensively and the meaning
 *    is not in doubt. Booleans likewise accept "true"/"false"/yes/no/on/off.
 *  - An empty value (`key:` with nothing after it, ~ or null) is refused like a wrong type; it
 *    is usually a block whose lines were commented out.
 *  - Every string value is one line: CR, LF and NUL are refused everywhere because plan values
 *    end up in mail headers and SMTP commands (header injection); other C0 controls except TAB
 *    are refused too. The single exception is message.text, an inline body, which may span
 *    lines (NUL is still refused).
 *  - transport.relay is validated in direct mode too but only used with mode: relay, so a user
 *    can switch modes by changing one line (plan.md's own example carries both).
 *  - Passwords never appear in a plan: a `password` key anywhere, or user:password in the relay
 *    URL, is refused with a pointer to password_env / password_file.
 */
#include "ipwarm/plan.h"

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

#include "plan_feedback.h"
#include "plan_placement.h"
#include "plan_rules.h"
#include "plan_sections.h"
#include "plan_value.h"

#define PLAN_SHIPPED_LABEL "providers.yaml (shipped)"

/* ---------------------------------------------------------------------------------------- */
/* The walk */

static const char *const plan_top_keys[] = {
    "campaign",       "timezone", "state", "source",    "sender",  "transport", "message",
    "recipients",     "schedule", "ramp",  "providers", "backoff", "preflight", "dns",
    "providers_file", "feedback", "seeds", "placement", NULL};

/* Walks the plan's top level. Providers and rules go to part for the merge. */
static void plan_walk(struct plan_ctx *c, const plan_node *root, struct plan_part *part,
                      struct plan_ramp_nodes *ramp_nodes)
{
    struct plan *p = c->p;
    const plan_node *v, *k;
    if (!plan_mapping(c, root, "",
                      "a mapping of plan keys (campaign, source, sender, message, recipients, "
                      "...)",
                      plan_top_keys))
        return;
    if ((v = plan_get(root, "campaign")))
        plan_campaign_walk(c, v);
    else
        plan_fail(c, root, "campaign", "expected a campaign name, found nothing");
    if ((v = plan_get(root, "timezone")))
        plan_timezone_walk(c, v);
    if ((v = plan_get(root, "state")))
        plan_file(c, v, "state", false, &p->state);
    if ((v = plan_get2(root, "source", &k)))
        plan_source_walk(c, k, v);
    else
        plan_fail(c, root, "source", "expected a mapping with ip and helo, found nothing");
    if ((v = plan_get2(root, "sender", &k)))
        plan_sender_walk(c, k, v);
    else
        plan_fail(c, root, "sender", "expected a mapping with from, found nothing");
    if ((v = plan_get2(root, "transport", &k)))
        plan_transport_walk(c, k, v);
    if ((v = plan_get2(root, "message", &k)))
        plan_message_walk(c, k, v);
    else
        plan_fail(c, root, "message",
                  "expected a mapping with subject and text_file, found nothing");
    if ((v = plan_get2(root, "recipients", &k)))
        plan_recipients_walk(c, k, v);
    else
        plan_fail(c, root, "recipients", "expected a mapping with file, found nothing");
    if ((v = plan_get(root, "schedule")))
        plan_schedule_walk(c, v);
    if ((v = plan_get(root, "ramp")))
        plan_ramp_parse(c, v, "ramp", &p->ramp, ramp_nodes);
    if ((v = plan_get2(root, "providers", &k))) {
        part->providers_key = k;
        plan_providers_parse(c, v, part);
    }
    if ((v = plan_get(root, "backoff")))
        plan_backoff_walk(c, v, part);
    if ((v = plan_get(root, "preflight")))
        plan_preflight_walk(c, v);
    if ((v = plan_get(root, "dns")))
        plan_dns_walk(c, v);
    if ((v = plan_get2(root, "feedback", &k)))
        plan_feedback_walk(c, k, v);
    if ((v = plan_get2(root, "seeds", &k)))
        plan_seeds_walk(c, k, v);
    if ((v = plan_get(root, "placement")))
        plan_placement_walk(c, v);
}

/* The provider table has the same entries as the plan, without the rest. */
static void plan_walk_table(struct plan_ctx *c, const plan_node *root, struct plan_part *part)
{
    static const char *const keys[] = {"providers", "rules", NULL};
    const plan_node *v;
    if (!root) {
        plan_fail(c, NULL, "", "expected a mapping with providers and rules, found nothing");
        return;
    }
    if (!plan_mapping(c, root, "", "a mapping with providers and rules", keys))
        return;
    if ((v = plan_get(root, "providers")))
        plan_providers_parse(c, v, part);
    if ((v = plan_get(root, "rules")))
        plan_rules_parse(c, v, "rules", part);
}

/* ---------------------------------------------------------------------------------------- */
/* Public */

int plan_provider_find(const struct plan *p, const char *name)
{
    for (size_t i = 0; p && name && i < p->n_providers; i++)
        if (p->providers[i].name && strcmp(p->providers[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const char *const plan_check_names[] = {"spf",   "ptr",  "helo", "mx",   "dnsbl", "dkim",
                                               "dmarc", "smtp", "tls",  "auth", "size"};

const char *plan_check_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof plan_check_names / sizeof *plan_check_names; i++)
        if (bit == 1u << i)
            return plan_check_names[i];
    return NULL;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_warnings; i++)
        free(p->warnings[i]);
    free(p->warnings);
    free(p->path);
    free(p->dir);
    free(p->name);
    free(p->providers_name);
    free(p->campaign);
    free(p->timezone);
    free(p->state);
    plan_strv_free(p->source_start_dates, p->n_source_ips);
    plan_strv_free(p->source_ips, p->n_source_ips);
    free(p->helo);
    free(p->from);
    free(p->from_name);
    free(p->from_addr);
    free(p->return_path);
    free(p->dkim_domain);
    free(p->dkim_selector);
    free(p->dkim_key_file);
    free(p->relay_url);
    free(p->relay_host);
    free(p->relay_username);
    free(p->relay_password_env);
    free(p->relay_password_file);
    free(p->relay_ca_file);
    free(p->subject);
    free(p->text_file);
    free(p->text);
    free(p->html_file);
    free(p->list_unsubscribe);
    free(p->list_unsubscribe_mailto);
    free(p->recipients_file);
    free(p->recipients_column);
    free(p->schedule.windows);
    plan_ramp_clear(&p->ramp);
    for (size_t i = 0; p->providers && i < p->n_providers; i++)
        plan_provider_clear(&p->providers[i]);
    free(p->providers);
    for (size_t i = 0; p->rules && i < p->n_rules; i++)
        plan_rule_clear(&p->rules[i]);
    free(p->rules);
    plan_strv_free(p->dnsbl_zones, p->n_dnsbl_zones);
    for (size_t i = 0; p->dns_servers && i < p->n_dns_servers; i++)
        free(p->dns_servers[i].host);
    free(p->dns_servers);
    free(p->providers_source);
    plan_feedback_free(p);
    free(p);
}

/* The defaults of every optional key (plan.h lists them next to the fields). */
static void plan_defaults(struct plan_ctx *c)
{
    struct plan *p = c->p;
    p->timezone = plan_strdup(c, "UTC");
    p->mode = PLAN_DIRECT;
    p->port = 25;
    p->tls = PLAN_TLS_OPPORTUNISTIC;
    p->tls_min = PLAN_TLS_1_2;
    p->connect_timeout_ms = 30 * 1000;
    p->command_timeout_ms = 5 * 60 * 1000;
    p->connections_per_provider = 2;
    p->recipients_mode = PLAN_RCPT_ONCE;
    p->recipients_column = plan_strdup(c, "email");
    p->schedule.days = 0x7f;
    p->ramp = (struct plan_ramp){.start_per_min = 5,
                                 .growth = 1.5,
                                 .max_per_min = 600,
                                 .deferral_below_pct = 5,
                                 .bounce_below_pct = 2};
    p->backoff = (struct plan_backoff){.factor = 0.5,
                                       .pause_ms = 15 * 60 * 1000,
                                       .pause_max_ms = 4 * 3600 * 1000,
                                       .recover_after_ms = 30 * 60 * 1000,
                                       .recover_step_pct = 25,
                                       .retry_first_ms = 5 * 60 * 1000,
                                       .retry_max_ms = 4 * 3600 * 1000,
                                       .retry_give_up_ms = INT64_C(3) * 86400 * 1000,
                                       .blocked_pause_ms = 3600 * 1000,
                                       .blocked_pause_max_ms = 24 * 3600 * 1000};
    p->preflight_require =
        PLAN_CHECK_SPF | PLAN_CHECK_PTR | PLAN_CHECK_HELO | PLAN_CHECK_MX | PLAN_CHECK_DNSBL;
    p->dns_timeout_ms = 5000;
    plan_feedback_defaults(c);
    p->placement = (struct plan_placement){.fall_min_placed = 5, .fall_for_ms = 24 * 3600 * 1000};
}

/* Defaults that depend on what the walk found. */
static void plan_defaults_after(struct plan_ctx *c)
{
    struct plan *p = c->p;
    if (!p->state)
        p->state = plan_concat(c, p->dir, "/", "ipwarm.db");
    if (!p->return_path && p->from_addr)
        p->return_path = plan_strdup(c, p->from_addr);
    if (p->schedule.n_windows == 0) {
        p->schedule.windows = plan_alloc(c, sizeof *p->schedule.windows);
        if (p->schedule.windows) {
            p->schedule.windows[0] = (struct plan_window){0, 1440};
            p->schedule.n_windows = 1;
        }
    }
    if (!p->dnsbl_zones) {
        static const char *const zones[] = {"zen.spamhaus.org", "bl.spamcop.net",
                                            "b.barracudacentral.org"};
        p->dnsbl_zones = plan_alloc(c, 3 * sizeof *p->dnsbl_zones);
        for (size_t i = 0; p->dnsbl_zones && i < 3; i++)
            p->dnsbl_zones[i] = plan_strdup(c, zones[i]);
        if (p->dnsbl_zones)
            p->n_dnsbl_zones = 3;
    }
}

/* Reads a whole file of at most PLAN_YAML_MAX_BYTES (one more is read to notice a larger one). */
static ipw_status plan_read_file(const char *path, char **text, size_t *len, int *err_no,
                                 const char **kind)
{
    *text = NULL;
    *len = 0;
    *err_no = 0;
    /* A FIFO or a device given as the plan is refused, not waited on (infile.h). */
    int fd = infile_open_fd(path, kind);
    if (fd < 0) {
        *err_no = errno;
        return IPW_ENOINPUT;
    }
    int rc = infile_read_fd(fd, PLAN_YAML_MAX_BYTES, text, len);
    close(fd);
    if (rc == ENOMEM)
        return IPW_ENOMEM;
    if (rc != 0) {
        *err_no = rc;
        return IPW_ENOINPUT;
    }
    return IPW_OK;
}

/* Parses text into a tree, turning a parse failure into a problem of the walk. */
static plan_node *plan_parse(struct plan_ctx *c, const char *text, size_t len)
{
    struct err pe = {0};
    plan_node *root = NULL;
    ipw_status st = plan_yaml_parse(text, len, c->file, &root, &pe);
    if (st == IPW_ENOMEM)
        c->oom = true;
    else if (st != IPW_OK)
        plan_note(c, c->rank, 0, 0, plan_strdup(c, pe.msg));
    return root;
}

/* Loads the provider table (the shipped one, or providers_file) and merges it in. */
static void plan_load_table(struct plan_ctx *c, const plan_node *pf_node, struct plan_part *plan)
{
    struct plan *p = c->p;
    char *text = NULL;
    size_t len = 0;
    const char *src = embedded_providers_yaml;
    size_t src_len = embedded_providers_yaml_len;
    if (pf_node) {
        if (!plan_file(c, pf_node, "providers_file", true, &p->providers_source))
            return;
        int err_no = 0;
        const char *kind = NULL;
        ipw_status st = plan_read_file(p->providers_source, &text, &len, &err_no, &kind);
        if (st != IPW_OK) {
            if (st == IPW_ENOMEM)
                c->oom = true;
            else
                plan_fail(c, pf_node, "providers_file", "expected a readable file, found %s (%s)",
                          PLAN_SHOW(pf_node), kind ? kind : strerror(err_no));
            return;
        }
        src = text;
        src_len = len;
        p->providers_name = plan_strdup(c, p->providers_source);
    } else {
        p->providers_source = plan_strdup(c, "shipped");
        p->providers_name = plan_strdup(c, PLAN_SHIPPED_LABEL);
    }
    if (!p->providers_name) {
        free(text);
        return;
    }
    /* the table's own problems carry its name and print after the plan's */
    const char *plan_file_label = c->file;
    c->file = p->providers_name;
    c->rank = 1;
    struct plan_part table = {0};
    size_t before = c->n_total;
    plan_node *root = plan_parse(c, src, src_len);
    if (root || c->n_total == before)
        plan_walk_table(c, root, &table);
    c->file = plan_file_label;
    c->rank = 0;
    plan_merge_providers(c, plan, &table);
    plan_merge_rules(c, plan, &table);
    plan_part_free(&table);
    plan_yaml_free(root);
    free(text);
}

ipw_status plan_load_text(const char *text, size_t len, const char *name, const char *base_dir,
                          struct plan **out, struct err *e)
{
    *out = NULL;
    err_clear(e);
    if (!name)
        name = "plan";
    struct plan *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(e, IPW_ENOMEM, "out of memory loading %s", name);
    struct plan_ctx c = {.p = p, .rank = 0};
    p->name = plan_strdup(&c, name);
    char cwd[PATH_MAX];
    if (!base_dir)
        base_dir = getcwd(cwd, sizeof cwd) ? cwd : ".";
    char *real = realpath(base_dir, NULL);
    p->dir = real ? real : plan_strdup(&c, base_dir);
    const char *slash = strrchr(name, '/');
    if (p->dir)
        p->path = plan_concat(&c, p->dir, "/", slash ? slash + 1 : name);
    if (c.oom || !p->name || !p->dir || !p->path) {
        plan_free(p);
        return err_set(e, IPW_ENOMEM, "out of memory loading %s", name);
    }
    c.file = p->name;
    c.dir = p->dir;
    plan_defaults(&c);

    struct plan_part part = {0};
    struct plan_ramp_nodes ramp_nodes = {0};
    plan_node *root = plan_parse(&c, text, len);
    if (!root && c.n_total == 0)
        plan_fail(&c, NULL, "",
                  "the plan is empty: expected a mapping of plan keys (campaign, source, sender, "
                  "message, recipients, ...), found nothing");
    if (root) {
        plan_walk(&c, root, &part, &ramp_nodes);
        plan_ramp_check(&c, c.file, 0, &p->ramp, &ramp_nodes, "ramp");
        if (root->kind == PLAN_YAML_MAPPING)
            plan_load_table(&c, plan_get(root, "providers_file"), &part);
        plan_defaults_after(&c);
        plan_feedback_after(&c, root);
    }
    plan_part_free(&part);
    plan_yaml_free(root);

    if (c.oom) {
        for (size_t i = 0; i < c.n_problems; i++)
            free(c.problems[i].text);
        free(c.problems);
        plan_free(p);
        return err_set(e, IPW_ENOMEM, "out of memory loading %s", name);
    }
    ipw_status st = plan_report(&c, e);
    if (st != IPW_OK) {
        plan_free(p);
        return st;
    }
    *out = p;
    return IPW_OK;
}

ipw_status plan_load(const char *path, struct plan **out, struct err *e)
{
    *out = NULL;
    err_clear(e);
    char *text = NULL;
    size_t len = 0;
    int err_no = 0;
    const char *kind = NULL;
    ipw_status st = plan_read_file(path, &text, &len, &err_no, &kind);
    if (st == IPW_ENOMEM)
        return err_set(e, st, "out of memory reading %s", path);
    if (st != IPW_OK && kind)
        return err_set(e, st, "cannot read the plan %s: it is %s, not a regular file", path, kind);
    if (st != IPW_OK)
        return err_set(e, st, "cannot read the plan %s: %s", path, strerror(err_no));
    /* relative names in the plan are relative to the plan's directory */
    char *copy = strdup(path);
    if (!copy) {
        free(text);
        return err_set(e, IPW_ENOMEM, "out of memory reading %s", path);
    }
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    if (slash == copy)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = copy;
    }
    char *real = realpath(dir, NULL);
    if (!real) {
        int saved = errno;
        free(copy);
        free(text);
        return err_set(e, IPW_ENOINPUT, "cannot read the plan %s: %s", path, strerror(saved));
    }
    st = plan_load_text(text, len, path, real, out, e);
    free(real);
    free(copy);
    free(text);
    return st;
}
