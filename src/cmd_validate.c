/*
 * cmd_validate: `ipwarm validate` loads the plan and prints it normalised.
 *
 * Normalised means as the scheduler will use it: defaults filled in, the shipped provider
 * table merged, providers in matching order with their effective ramps, shipped rules before
 * the plan's, relative paths made absolute, and the command line's --db and --dns over the
 * plan's. A user reads it to see what a plan really does; a script reads the --json form.
 * Credentials are never shown: the plan holds only where a relay password comes from (an
 * environment variable name or a file path), and that is all that is printed.
 */
#include <stdio.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/cmd.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/units.h"

static const char *const cmd_validate_day_names[7] = {"mon", "tue", "wed", "thu",
                                                      "fri", "sat", "sun"};

/* "mon-fri", "mon,wed,fri", "every day": runs of three or more days as a range. */
static void cmd_validate_days(unsigned days, char *buf, size_t n)
{
    if ((days & 0x7f) == 0x7f) {
        snprintf(buf, n, "every day");
        return;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < 7; d++) {
        if (!(days & (1u << d)))
            continue;
        int end = d;
        while (end + 1 < 7 && (days & (1u << (end + 1))))
            end++;
        int w;
        const char *sep = len ? "," : "";
        if (end - d >= 2) {
            w = snprintf(buf + len, n - len, "%s%s-%s", sep, cmd_validate_day_names[d],
                         cmd_validate_day_names[end]);
            d = end;
        } else {
            w = snprintf(buf + len, n - len, "%s%s", sep, cmd_validate_day_names[d]);
        }
        if (w < 0 || (size_t)w >= n - len)
            return;
        len += (size_t)w;
    }
    if (len == 0)
        snprintf(buf, n, "no day");
}

/* "09:00-18:00". */
static void cmd_validate_window(const struct plan_window *w, char *buf, size_t n)
{
    snprintf(buf, n, "%02d:%02d-%02d:%02d", w->start_min / 60, w->start_min % 60, w->end_min / 60,
             w->end_min % 60);
}

/* "127.0.0.1:5353", "[::1]:53". */
static void cmd_validate_dns_server(const struct dns_server *s, char *buf, size_t n)
{
    if (strchr(s->host, ':'))
        snprintf(buf, n, "[%s]:%d", s->host, s->port);
    else
        snprintf(buf, n, "%s:%d", s->host, s->port);
}

/* "immediately" or "3/1h". */
static void cmd_validate_trigger(const struct plan_rule *r, char *buf, size_t n)
{
    if (r->trigger_count <= 1 && r->trigger_period_ms == 0) {
        snprintf(buf, n, "immediately");
        return;
    }
    char d[32];
    snprintf(buf, n, "%d/%s", r->trigger_count,
             units_format_duration(d, sizeof d, r->trigger_period_ms));
}

static const char *cmd_validate_action(enum plan_rule_action a)
{
    switch (a) {
    case PLAN_ACTION_THROTTLE:
        return "throttle";
    case PLAN_ACTION_SUSPEND:
        return "suspend";
    case PLAN_ACTION_BOUNCE:
        return "bounce";
    }
    return "?";
}

/* The relay URL with a password in its userinfo (smtp://user:secret@host) masked: a plan
 * should not hold one, but if it does, validate must not be what leaks it into a log. */
static void cmd_validate_url(const char *url, char *buf, size_t n)
{
    const char *scheme_end = url ? strstr(url, "://") : NULL;
    if (!scheme_end) {
        snprintf(buf, n, "%s", url ? url : "");
        return;
    }
    const char *auth = scheme_end + 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', auth_len);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) {
        snprintf(buf, n, "%s", url);
        return;
    }
    snprintf(buf, n, "%.*s:***%s", (int)(colon - url), url, at);
}

static void cmd_validate_tls_min(enum plan_tls_version v, char *buf, size_t n)
{
    snprintf(buf, n, "%d.%d", (int)v / 10, (int)v % 10);
}

static void cmd_validate_list(FILE *f, char *const *items, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? sep : "", items[i]);
}

static void cmd_validate_ramp_text(FILE *f, const struct plan_ramp *r)
{
    char a[32], b[32];
    fprintf(f, "ramp %s x%g to %s  caps", units_format_rate(a, sizeof a, r->start_per_min),
            r->growth, units_format_rate(b, sizeof b, r->max_per_min));
    if (r->n_daily_cap == 0)
        fputs(" none", f);
    for (size_t i = 0; i < r->n_daily_cap; i++) {
        if (r->daily_cap[i] > 0)
            fprintf(f, " %lld", (long long)r->daily_cap[i]);
        else
            fputs(" -", f);
    }
    fprintf(f, "  advance if deferrals < %g%% and bounces < %g%%", r->deferral_below_pct,
            r->bounce_below_pct);
    if (r->complaint_gate)
        fprintf(f, " and complaints < %g%%", r->complaint_below_pct);
    if (r->inbox_gate)
        fprintf(f, " and seed inbox rate > %g%%", r->inbox_above_pct);
}

/* "imaps://imap.example.com/INBOX, user bounces@example.com, password from $X, TLS required":
 * how the mailbox logs in and where its password or OAuth 2.0 token comes from, never the
 * secret. */
static void cmd_validate_mailbox_text(FILE *f, const struct plan_mailbox *m)
{
    fprintf(f, "%s, user %s", m->url, m->username);
    if (m->password_env)
        fprintf(f, ", password from $%s", m->password_env);
    else if (m->password_file)
        fprintf(f, ", password from %s", m->password_file);
    else if (m->oauth2_token_env)
        fprintf(f, ", OAuth 2.0 token (XOAUTH2) from $%s", m->oauth2_token_env);
    else if (m->oauth2_token_file)
        fprintf(f, ", OAuth 2.0 token (XOAUTH2) from %s", m->oauth2_token_file);
    if (m->ca_file)
        fprintf(f, ", CA %s", m->ca_file);
    fprintf(f, ", TLS %s", m->tls == PLAN_MAILBOX_TLS_NONE ? "none" : "required");
}

static void cmd_validate_text(const struct cli_ctx *ctx, const struct plan *p)
{
    FILE *f = ctx->out;
    char a[64], b[64], c[64];

    fprintf(f, "plan %s: campaign %s, time zone %s, state %s%s\n", p->path, p->campaign,
            p->timezone, cli_state_path(ctx, p), ctx->db_path ? " (from --db)" : "");

    fputs("source ", f);
    cmd_validate_list(f, p->source_ips, p->n_source_ips, " ");
    fprintf(f, " (helo %s); ", p->helo);
    cmd_validate_tls_min(p->tls_min, a, sizeof a);
    const char *tls = p->tls == PLAN_TLS_REQUIRED ? "required" : "opportunistic";
    if (p->mode == PLAN_RELAY) {
        char url[512];
        cmd_validate_url(p->relay_url, url, sizeof url);
        fprintf(f, "mode relay via %s", url);
        if (p->relay_username)
            fprintf(f, ", user %s", p->relay_username);
        /* Where the password comes from, never the password. */
        if (p->relay_password_env)
            fprintf(f, ", password from $%s", p->relay_password_env);
        else if (p->relay_password_file)
            fprintf(f, ", password from %s", p->relay_password_file);
        if (p->relay_ca_file)
            fprintf(f, ", CA %s", p->relay_ca_file);
        fprintf(f, ", TLS %s >= %s\n", tls, a);
    } else {
        fprintf(f, "mode direct, port %d, TLS %s >= %s\n", p->port, tls, a);
    }
    fprintf(f, "connections: timeouts connect %s, command %s; %d per provider\n",
            units_format_duration(b, sizeof b, p->connect_timeout_ms),
            units_format_duration(c, sizeof c, p->command_timeout_ms), p->connections_per_provider);

    fprintf(f, "sender %s", p->from);
    if (p->return_path)
        fprintf(f, ", return path %s", p->return_path);
    if (p->dkim)
        fprintf(f, "; DKIM %s._domainkey.%s, key %s\n", p->dkim_selector, p->dkim_domain,
                p->dkim_key_file);
    else
        fputs("; no DKIM signature\n", f);

    fprintf(f, "message subject \"%s\"", p->subject ? p->subject : "");
    if (p->text_file)
        fprintf(f, ", text %s", p->text_file);
    else if (p->text)
        fputs(", text inline", f);
    if (p->html_file)
        fprintf(f, ", html %s", p->html_file);
    if (p->list_unsubscribe)
        fprintf(f, ", unsubscribe %s", p->list_unsubscribe);
    if (p->list_unsubscribe_mailto)
        fprintf(f, ", unsubscribe mailto:%s", p->list_unsubscribe_mailto);
    fputc('\n', f);
    fprintf(f, "recipients %s (column %s), mode %s\n", p->recipients_file,
            p->recipients_column ? p->recipients_column : "email",
            p->recipients_mode == PLAN_RCPT_CYCLE ? "cycle" : "once");

    cmd_validate_days(p->schedule.days, a, sizeof a);
    fprintf(f, "schedule %s", a);
    for (size_t i = 0; i < p->schedule.n_windows; i++) {
        cmd_validate_window(&p->schedule.windows[i], b, sizeof b);
        fprintf(f, "%s%s", i ? ", " : " ", b);
    }
    fputc('\n', f);

    fputs("default ", f);
    cmd_validate_ramp_text(f, &p->ramp);
    fputc('\n', f);

    fputs("providers (matched by MX suffix, then domain, in this order", f);
    if (p->providers_source && strcmp(p->providers_source, "shipped") != 0)
        fprintf(f, "; table %s", p->providers_source);
    fputs("):\n", f);
    int width = 0;
    for (size_t i = 0; i < p->n_providers; i++) {
        int w = (int)strlen(p->providers[i].name) + (p->providers[i].is_default ? 10 : 0);
        if (w > width)
            width = w;
    }
    for (size_t i = 0; i < p->n_providers; i++) {
        const struct plan_provider *pr = &p->providers[i];
        snprintf(a, sizeof a, "%s%s", pr->name, pr->is_default ? " (default)" : "");
        fprintf(f, "  %-*s  ", width, a);
        if (pr->n_mx > 0) {
            fputs("mx ", f);
            cmd_validate_list(f, pr->mx, pr->n_mx, " ");
            fputs("  ", f);
        }
        if (pr->n_domains > 0) {
            fputs("domains ", f);
            cmd_validate_list(f, pr->domains, pr->n_domains, " ");
            fputs("  ", f);
        }
        if (pr->n_mx == 0 && pr->n_domains == 0)
            fputs(pr->is_default ? "everything else  " : "matches nothing  ", f);
        cmd_validate_ramp_text(f, &pr->ramp);
        fputc('\n', f);
    }

    const struct plan_backoff *bo = &p->backoff;
    char d1[32], d2[32], d3[32], d4[32], d5[32], d6[32];
    fprintf(f,
            "backoff: throttle x%g, pause %s (max %s), recover after %s in %g%% steps; "
            "retry %s doubling to %s, give up after %s\n",
            bo->factor, units_format_duration(d1, sizeof d1, bo->pause_ms),
            units_format_duration(d2, sizeof d2, bo->pause_max_ms),
            units_format_duration(d3, sizeof d3, bo->recover_after_ms), bo->recover_step_pct,
            units_format_duration(d4, sizeof d4, bo->retry_first_ms),
            units_format_duration(d5, sizeof d5, bo->retry_max_ms),
            units_format_duration(d6, sizeof d6, bo->retry_give_up_ms));

    fputs("rules:\n", f);
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct plan_rule *r = &p->rules[i];
        if (r->name)
            fprintf(f, "  %s", r->name);
        else
            fprintf(f, "  #%zu", i + 1);
        fprintf(f, " (%s) ", r->from_plan ? "plan" : "shipped");
        if (r->n_providers > 0)
            cmd_validate_list(f, r->providers, r->n_providers, ",");
        else
            fputs("all providers", f);
        fprintf(f, ": '%s' -> %s", r->match, cmd_validate_action(r->action));
        if (r->action == PLAN_ACTION_THROTTLE)
            fprintf(f, " to %s", units_format_rate(a, sizeof a, r->rate_per_min));
        cmd_validate_trigger(r, b, sizeof b);
        fprintf(f, " for %s, %s%s\n", units_format_duration(c, sizeof c, r->for_ms),
                strcmp(b, "immediately") == 0 ? "" : "trigger ", b);
    }
    if (p->n_rules == 0)
        fputs("  none\n", f);

    fputs("preflight: require", f);
    for (unsigned bit = 1; bit != 0 && bit <= PLAN_CHECK_SIZE; bit <<= 1) {
        const char *name = plan_check_name(bit);
        if ((p->preflight_require & bit) && name)
            fprintf(f, " %s", name);
    }
    if (p->preflight_require == 0)
        fputs(" nothing", f);
    fputs("; dnsbl", f);
    if (p->n_dnsbl_zones == 0)
        fputs(" none", f);
    for (size_t i = 0; i < p->n_dnsbl_zones; i++)
        fprintf(f, " %s", p->dnsbl_zones[i]);
    fputc('\n', f);

    size_t n_dns;
    const struct dns_server *dns = cli_dns_servers(ctx, p, &n_dns);
    fputs("dns: servers", f);
    if (n_dns == 0)
        fputs(" from /etc/resolv.conf", f);
    for (size_t i = 0; i < n_dns; i++) {
        cmd_validate_dns_server(&dns[i], a, sizeof a);
        fprintf(f, " %s", a);
    }
    if (ctx->n_dns > 0)
        fputs(" (from --dns)", f);
    fprintf(f, ", timeout %s\n", units_format_duration(b, sizeof b, cli_dns_timeout_ms(ctx, p)));

    const struct plan_feedback *fb = &p->feedback;
    if (fb->enabled) {
        fputs("feedback: mailbox ", f);
        cmd_validate_mailbox_text(f, &fb->mailbox);
        fprintf(f, "; verp %s, poll every %s\n", fb->verp ? "on" : "off",
                units_format_duration(a, sizeof a, fb->poll_every_ms));
        fprintf(f, "  complaints above %g%% of at least %lld delivered -> %s",
                fb->complaint_rate_above_pct, (long long)fb->complaint_min_delivered,
                fb->complaint_action == PLAN_COMPLAINT_THROTTLE ? "throttle" : "suspend");
        if (fb->complaint_action == PLAN_COMPLAINT_THROTTLE)
            fprintf(f, " to %s", units_format_rate(b, sizeof b, fb->complaint_rate_per_min));
        fprintf(f, " for %s", units_format_duration(c, sizeof c, fb->complaint_for_ms));
        if (fb->feedback_id)
            fprintf(f, "; Feedback-ID %s", fb->feedback_id);
        fputc('\n', f);
    } else {
        fputs("feedback: none (no mailbox read)\n", f);
    }
    fprintf(f, "seeds: %zu\n", p->n_seeds);
    for (size_t i = 0; i < p->n_seeds; i++) {
        const struct plan_seed *sd = &p->seeds[i];
        fprintf(f, "  %s: ", sd->address);
        cmd_validate_mailbox_text(f, &sd->mailbox);
        fprintf(f, "; inbox \"%s\", junk %s%s%s\n", sd->inbox, sd->junk ? "\"" : "",
                sd->junk ? sd->junk : "found at poll time", sd->junk ? "\"" : "");
    }
    if (p->n_seeds > 0) {
        char d[32];
        fprintf(f,
                "placement: a day under half of advance_if.inbox_rate_above, with at least %lld "
                "copies placed, throttles the provider for %s\n",
                (long long)p->placement.fall_min_placed,
                units_format_duration(d, sizeof d, p->placement.fall_for_ms));
    }
}

static void cmd_validate_json_strings(struct json *j, const char *key, char *const *items, size_t n)
{
    json_key(j, key);
    json_array_begin(j);
    for (size_t i = 0; i < n; i++)
        json_string(j, items[i]);
    json_array_end(j);
}

/* A duration as "15m" under key and as milliseconds under key_ms. */
static void cmd_validate_json_duration(struct json *j, const char *key, int64_t ms)
{
    char buf[32], key_ms[64];
    json_kv_string(j, key, units_format_duration(buf, sizeof buf, ms));
    snprintf(key_ms, sizeof key_ms, "%s_ms", key);
    json_kv_int(j, key_ms, ms);
}

static void cmd_validate_json_ramp(struct json *j, const struct plan_ramp *r)
{
    json_object_begin(j);
    json_kv_double(j, "start_per_min", r->start_per_min);
    json_kv_double(j, "growth", r->growth);
    json_kv_double(j, "max_per_min", r->max_per_min);
    json_key(j, "daily_cap");
    json_array_begin(j);
    for (size_t i = 0; i < r->n_daily_cap; i++) {
        if (r->daily_cap[i] > 0)
            json_int(j, r->daily_cap[i]);
        else
            json_null(j);
    }
    json_array_end(j);
    json_kv_double(j, "deferral_rate_below", r->deferral_below_pct);
    json_kv_double(j, "bounce_rate_below", r->bounce_below_pct);
    json_kv_double_or_null(j, "complaint_rate_below", r->complaint_below_pct, r->complaint_gate);
    json_kv_double_or_null(j, "inbox_rate_above", r->inbox_above_pct, r->inbox_gate);
    json_object_end(j);
}

/* A mailbox: how it logs in and where its password or token comes from, never the secret. */
static void cmd_validate_json_mailbox(struct json *j, const struct plan_mailbox *m)
{
    json_object_begin(j);
    json_kv_string(j, "url", m->url);
    json_kv_string(j, "folder", m->folder);
    json_kv_string(j, "username", m->username);
    json_kv_string(j, "password_env", m->password_env);
    json_kv_string(j, "password_file", m->password_file);
    json_kv_string(j, "login",
                   m->oauth2_token_env || m->oauth2_token_file ? "xoauth2" : "password");
    json_kv_string(j, "oauth2_token_env", m->oauth2_token_env);
    json_kv_string(j, "oauth2_token_file", m->oauth2_token_file);
    json_kv_string(j, "ca_file", m->ca_file);
    json_kv_string(j, "tls", m->tls == PLAN_MAILBOX_TLS_NONE ? "none" : "required");
    json_object_end(j);
}

static ipw_status cmd_validate_json(const struct cli_ctx *ctx, const struct plan *p, struct err *e)
{
    struct json j;
    char buf[64];
    json_init(&j, ctx->out, true);
    json_object_begin(&j);
    json_kv_string(&j, "plan", p->path);
    json_kv_string(&j, "campaign", p->campaign);
    json_kv_string(&j, "timezone", p->timezone);
    json_kv_string(&j, "state", cli_state_path(ctx, p));

    json_key(&j, "source");
    json_object_begin(&j);
    cmd_validate_json_strings(&j, "ips", p->source_ips, p->n_source_ips);
    json_kv_string(&j, "helo", p->helo);
    json_object_end(&j);

    json_key(&j, "sender");
    json_object_begin(&j);
    json_kv_string(&j, "from", p->from);
    json_kv_string(&j, "from_name", p->from_name);
    json_kv_string(&j, "from_addr", p->from_addr);
    json_kv_string(&j, "return_path", p->return_path);
    json_key(&j, "dkim");
    if (p->dkim) {
        json_object_begin(&j);
        json_kv_string(&j, "domain", p->dkim_domain);
        json_kv_string(&j, "selector", p->dkim_selector);
        json_kv_string(&j, "key_file", p->dkim_key_file);
        json_object_end(&j);
    } else {
        json_null(&j);
    }
    json_object_end(&j);

    json_key(&j, "transport");
    json_object_begin(&j);
    json_kv_string(&j, "mode", p->mode == PLAN_RELAY ? "relay" : "direct");
    json_kv_int(&j, "port", p->port);
    json_kv_string(&j, "tls", p->tls == PLAN_TLS_REQUIRED ? "required" : "opportunistic");
    cmd_validate_tls_min(p->tls_min, buf, sizeof buf);
    json_kv_string(&j, "tls_min", buf);
    json_key(&j, "relay");
    if (p->mode == PLAN_RELAY) {
        json_object_begin(&j);
        char url[512];
        cmd_validate_url(p->relay_url, url, sizeof url);
        json_kv_string(&j, "url", p->relay_url ? url : NULL);
        json_kv_string(&j, "username", p->relay_username);
        /* Where the password comes from, never the password. */
        json_kv_string(&j, "password_env", p->relay_password_env);
        json_kv_string(&j, "password_file", p->relay_password_file);
        json_kv_string(&j, "ca_file", p->relay_ca_file);
        json_object_end(&j);
    } else {
        json_null(&j);
    }
    json_key(&j, "timeouts");
    json_object_begin(&j);
    cmd_validate_json_duration(&j, "connect", p->connect_timeout_ms);
    cmd_validate_json_duration(&j, "command", p->command_timeout_ms);
    json_object_end(&j);
    json_kv_int(&j, "connections_per_provider", p->connections_per_provider);
    json_object_end(&j);

    json_key(&j, "message");
    json_object_begin(&j);
    json_kv_string(&j, "subject", p->subject);
    json_kv_string(&j, "text_file", p->text_file);
    json_kv_bool(&j, "text_inline", p->text != NULL);
    json_kv_string(&j, "html_file", p->html_file);
    json_kv_string(&j, "list_unsubscribe", p->list_unsubscribe);
    json_kv_string(&j, "list_unsubscribe_mailto", p->list_unsubscribe_mailto);
    json_object_end(&j);

    json_key(&j, "recipients");
    json_object_begin(&j);
    json_kv_string(&j, "file", p->recipients_file);
    json_kv_string(&j, "mode", p->recipients_mode == PLAN_RCPT_CYCLE ? "cycle" : "once");
    json_kv_string(&j, "column", p->recipients_column ? p->recipients_column : "email");
    json_object_end(&j);

    json_key(&j, "schedule");
    json_object_begin(&j);
    json_key(&j, "days");
    json_array_begin(&j);
    for (int d = 0; d < 7; d++)
        if (p->schedule.days & (1u << d))
            json_string(&j, cmd_validate_day_names[d]);
    json_array_end(&j);
    json_key(&j, "hours");
    json_array_begin(&j);
    for (size_t i = 0; i < p->schedule.n_windows; i++) {
        cmd_validate_window(&p->schedule.windows[i], buf, sizeof buf);
        json_string(&j, buf);
    }
    json_array_end(&j);
    json_object_end(&j);

    json_key(&j, "ramp");
    cmd_validate_json_ramp(&j, &p->ramp);

    json_kv_string(&j, "providers_source", p->providers_source);
    json_key(&j, "providers");
    json_array_begin(&j);
    for (size_t i = 0; i < p->n_providers; i++) {
        const struct plan_provider *pr = &p->providers[i];
        json_object_begin(&j);
        json_kv_string(&j, "name", pr->name);
        json_kv_bool(&j, "default", pr->is_default);
        cmd_validate_json_strings(&j, "mx", pr->mx, pr->n_mx);
        cmd_validate_json_strings(&j, "domains", pr->domains, pr->n_domains);
        json_kv_string(&j, "origin", pr->from_plan ? "plan" : "shipped");
        json_key(&j, "ramp");
        cmd_validate_json_ramp(&j, &pr->ramp);
        json_object_end(&j);
    }
    json_array_end(&j);

    const struct plan_backoff *bo = &p->backoff;
    json_key(&j, "backoff");
    json_object_begin(&j);
    json_key(&j, "deferral");
    json_object_begin(&j);
    json_kv_double(&j, "factor", bo->factor);
    cmd_validate_json_duration(&j, "pause", bo->pause_ms);
    cmd_validate_json_duration(&j, "max_pause", bo->pause_max_ms);
    cmd_validate_json_duration(&j, "recover_after", bo->recover_after_ms);
    json_kv_double(&j, "recover_step", bo->recover_step_pct);
    json_object_end(&j);
    json_key(&j, "retry");
    json_object_begin(&j);
    cmd_validate_json_duration(&j, "first", bo->retry_first_ms);
    cmd_validate_json_duration(&j, "max", bo->retry_max_ms);
    cmd_validate_json_duration(&j, "give_up_after", bo->retry_give_up_ms);
    json_object_end(&j);
    json_object_end(&j);

    json_key(&j, "rules");
    json_array_begin(&j);
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct plan_rule *r = &p->rules[i];
        json_object_begin(&j);
        json_kv_string(&j, "name", r->name);
        cmd_validate_json_strings(&j, "providers", r->providers, r->n_providers);
        json_kv_string(&j, "match", r->match);
        json_kv_string(&j, "action", cmd_validate_action(r->action));
        json_kv_double_or_null(&j, "rate_per_min", r->rate_per_min,
                               r->action == PLAN_ACTION_THROTTLE);
        cmd_validate_json_duration(&j, "for", r->for_ms);
        cmd_validate_trigger(r, buf, sizeof buf);
        json_kv_string(&j, "trigger", buf);
        json_kv_string(&j, "origin", r->from_plan ? "plan" : "shipped");
        json_object_end(&j);
    }
    json_array_end(&j);

    json_key(&j, "preflight");
    json_object_begin(&j);
    json_key(&j, "require");
    json_array_begin(&j);
    for (unsigned bit = 1; bit != 0 && bit <= PLAN_CHECK_SIZE; bit <<= 1) {
        const char *name = plan_check_name(bit);
        if ((p->preflight_require & bit) && name)
            json_string(&j, name);
    }
    json_array_end(&j);
    cmd_validate_json_strings(&j, "dnsbl", p->dnsbl_zones, p->n_dnsbl_zones);
    json_object_end(&j);

    size_t n_dns;
    const struct dns_server *dns = cli_dns_servers(ctx, p, &n_dns);
    json_key(&j, "dns");
    json_object_begin(&j);
    json_key(&j, "servers");
    json_array_begin(&j);
    for (size_t i = 0; i < n_dns; i++) {
        cmd_validate_dns_server(&dns[i], buf, sizeof buf);
        json_string(&j, buf);
    }
    json_array_end(&j);
    json_kv_int(&j, "timeout_ms", cli_dns_timeout_ms(ctx, p));
    json_object_end(&j);

    const struct plan_feedback *fb = &p->feedback;
    json_key(&j, "feedback");
    if (fb->enabled) {
        json_object_begin(&j);
        json_key(&j, "mailbox");
        cmd_validate_json_mailbox(&j, &fb->mailbox);
        json_kv_bool(&j, "verp", fb->verp);
        cmd_validate_json_duration(&j, "poll_every", fb->poll_every_ms);
        json_key(&j, "complaints");
        json_object_begin(&j);
        json_kv_double(&j, "rate_above", fb->complaint_rate_above_pct);
        json_kv_int(&j, "min_delivered", fb->complaint_min_delivered);
        json_kv_string(&j, "action",
                       fb->complaint_action == PLAN_COMPLAINT_THROTTLE ? "throttle" : "suspend");
        json_kv_double_or_null(&j, "rate_per_min", fb->complaint_rate_per_min,
                               fb->complaint_action == PLAN_COMPLAINT_THROTTLE);
        cmd_validate_json_duration(&j, "for", fb->complaint_for_ms);
        json_object_end(&j);
        json_kv_string(&j, "feedback_id", fb->feedback_id);
        json_object_end(&j);
    } else {
        json_null(&j);
    }
    json_key(&j, "seeds");
    json_array_begin(&j);
    for (size_t i = 0; i < p->n_seeds; i++) {
        const struct plan_seed *sd = &p->seeds[i];
        json_object_begin(&j);
        json_kv_string(&j, "address", sd->address);
        json_key(&j, "mailbox");
        cmd_validate_json_mailbox(&j, &sd->mailbox);
        json_key(&j, "folders");
        json_object_begin(&j);
        json_kv_string(&j, "inbox", sd->inbox);
        json_kv_string(&j, "junk", sd->junk);
        json_object_end(&j);
        json_object_end(&j);
    }
    json_array_end(&j);
    json_key(&j, "placement");
    json_object_begin(&j);
    json_key(&j, "fall");
    json_object_begin(&j);
    json_kv_int(&j, "min_placed", p->placement.fall_min_placed);
    cmd_validate_json_duration(&j, "for", p->placement.fall_for_ms);
    json_object_end(&j);
    json_object_end(&j);

    json_object_end(&j);
    return json_finish(&j, e);
}

ipw_status cmd_validate(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct plan *p = NULL;
    ipw_status s = cli_load_plan(ctx, &p, e);
    if (s)
        return s;
    cli_verbose(ctx, "read %s: %zu providers, %zu rules", p->path, p->n_providers, p->n_rules);
    if (ctx->json) {
        s = cmd_validate_json(ctx, p, e);
    } else {
        cmd_validate_text(ctx, p);
        if (fflush(ctx->out) != 0 || ferror(ctx->out))
            s = err_set(e, IPW_EIO, "validate: cannot write the plan to standard output");
    }
    /* The plan is valid either way; a word on stderr says so for people, not for scripts. */
    if (s == IPW_OK)
        cli_info(ctx, "%s is valid", p->path);
    plan_free(p);
    return s;
}
