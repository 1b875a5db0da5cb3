/*
 * plan: the warm-up plan's schema, its validation and the merge with the shipped providers.
 *
 * plan_yaml.c turns the file into a tree of positioned nodes; this file walks that tree one
 * section at a time against the keys plan.md defines (with the typed readers of plan_value.c;
 * the feedback and seeds sections are plan_feedback.c's), fills struct plan, and collects every
 * problem it meets instead of stopping at the first, because a user fixing a plan wants the
 * whole list in one go. Each problem is one line, FILE:LINE:COLUMN: key.path: expected ...,
 * found ...; they are sorted by position and at most PLAN_MAX_SHOWN are printed. Any problem
 * refuses the whole plan: nothing half-valid ever reaches the scheduler.
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
#include "plan_value.h"

#define PLAN_SHIPPED_LABEL "providers.yaml (shipped)"

/* A provider entry as written, before the merge decides what it contributes. */
struct plan_prov_in {
    struct plan_provider pv; /* pv.ramp holds only the keys given, flagged in pv.ramp.set */
    bool has_mx;
    bool has_domains;
    bool has_default;
    const plan_node *node;
    const plan_node *name_node;
    const plan_node *default_node;
    const plan_node *start_node;
    const plan_node *max_node;
    size_t index; /* in the file's list, for key paths */
    const char *file;
    int rank;
};

struct plan_rule_in {
    struct plan_rule r;
    const plan_node *provider_node; /* a scalar or a list, checked after the merge */
    size_t index;                   /* in the file's list, for key paths */
    const char *file;
    int rank;
};

/* What the walk of one file yields besides the fields of struct plan. */
struct plan_part {
    struct plan_prov_in *provs;
    size_t n_provs;
    struct plan_rule_in *rules;
    size_t n_rules;
    const plan_node *providers_key;
};

/* ---------------------------------------------------------------------------------------- */
/* Freeing */

static void plan_ramp_clear(struct plan_ramp *r)
{
    free(r->daily_cap);
    r->daily_cap = NULL;
    r->n_daily_cap = 0;
}

static void plan_provider_clear(struct plan_provider *pv)
{
    free(pv->name);
    plan_strv_free(pv->mx, pv->n_mx);
    plan_strv_free(pv->domains, pv->n_domains);
    plan_ramp_clear(&pv->ramp);
    memset(pv, 0, sizeof *pv);
}

static void plan_rule_clear(struct plan_rule *r)
{
    free(r->name);
    plan_strv_free(r->providers, r->n_providers);
    free(r->match);
    if (r->re_compiled)
        regfree(&r->re);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------------------------------- */
/* Sections */

static void plan_campaign(struct plan_ctx *c, const plan_node *v)
{
    plan_str(c, v, "campaign", "a campaign name", &c->p->campaign);
}

static void plan_timezone(struct plan_ctx *c, const plan_node *v)
{
    const char *what =
        "an IANA time zone name such as Europe/Berlin (a file under " PLAN_ZONEINFO ")";
    char *s = NULL;
    if (!plan_str(c, v, "timezone", what, &s))
        return;
    if (!plan_timezone_valid(s, strlen(s))) {
        plan_fail(c, v, "timezone", "expected %s, found %s", what, PLAN_SHOW(v));
        free(s);
        return;
    }
    free(c->p->timezone);
    c->p->timezone = s;
}

/*
 * source.start: {IP: YYYY-MM-DD}, the local date (plan timezone) on which an IP of source.ips
 * joins the pool. Fills p->source_start_dates, parallel to p->source_ips (NULL: no date, the IP
 * sends from the start); the array stays NULL when the key is absent. Each key must be an IP of
 * source.ips (compared as addresses, so 2001:db8::a is 2001:DB8:0::A), each date a real one.
 */
static void plan_source_start_parse(struct plan_ctx *c, const plan_node *v)
{
    struct plan *p = c->p;
    const char *what = "a mapping of an IP of source.ips to its start date, such as "
                       "{192.0.2.12: 2026-12-10}";
    if (v->kind != PLAN_YAML_MAPPING) {
        plan_fail(c, v, "source.start", "expected %s, found %s", what, PLAN_SHOW(v));
        return;
    }
    if (p->n_source_ips == 0)
        return; /* source.ip(s) is wrong: said already */
    p->source_start_dates = plan_alloc(c, p->n_source_ips * sizeof *p->source_start_dates);
    if (!p->source_start_dates)
        return;
    for (size_t i = 0; i < v->n; i++) {
        const plan_node *k = v->keys[i], *d = v->items[i];
        char path[PLAN_PATH_MAX];
        snprintf(path, sizeof path, "source.start.%.*s", (int)(k->len < 64 ? k->len : 64),
                 k->text ? k->text : "");
        unsigned char want[sizeof(struct in6_addr)], have[sizeof(struct in6_addr)];
        int fam = k->kind != PLAN_YAML_SCALAR || k->null    ? 0
                  : inet_pton(AF_INET, k->text, want) == 1  ? AF_INET
                  : inet_pton(AF_INET6, k->text, want) == 1 ? AF_INET6
                                                            : 0;
        size_t at = p->n_source_ips;
        for (size_t n = 0; fam && n < p->n_source_ips && at == p->n_source_ips; n++)
            if (inet_pton(fam, p->source_ips[n], have) == 1 &&
                memcmp(want, have, fam == AF_INET ? 4 : 16) == 0)
                at = n;
        if (at == p->n_source_ips) {
            plan_fail(c, k, "source.start",
                      "expected an IP address of source.ips as the key, found %s", PLAN_SHOW(k));
            continue;
        }
        if (p->source_start_dates[at]) {
            plan_fail(c, k, path, "duplicate key: expected each IP once, found it again");
            continue;
        }
        int y, mo, dd;
        char *date = NULL;
        if (!plan_str(c, d, path, "a date YYYY-MM-DD such as 2026-12-10", &date))
            continue;
        if (strlen(date) != 10 || !tz_date_parse(date, &y, &mo, &dd)) {
            plan_fail(c, d, path, "expected a date YYYY-MM-DD such as 2026-12-10, found %s",
                      PLAN_SHOW(d));
            free(date);
            continue;
        }
        p->source_start_dates[at] = date;
    }
}

const char *plan_source_start(const struct plan *p, const char *ip)
{
    for (size_t i = 0; ip && p->source_start_dates && i < p->n_source_ips; i++)
        if (strcmp(p->source_ips[i], ip) == 0)
            return p->source_start_dates[i];
    return NULL;
}

static void plan_source(struct plan_ctx *c, const plan_node *key, const plan_node *m)
{
    static const char *const keys[] = {"ip", "ips", "helo", "start", NULL};
    struct plan *p = c->p;
    if (!plan_mapping(c, m, "source", "a mapping with ip and helo", keys))
        return;
    const plan_node *ip = plan_get(m, "ip"), *ips = plan_get(m, "ips"), *helo = plan_get(m, "helo");
    if (ip && ips) {
        plan_fail(c, ips, "source.ips", "expected source.ip or source.ips, found both");
    } else if (ip) {
        char *s = NULL;
        if (plan_ip(c, ip, "source.ip", &s)) {
            p->source_ips = plan_alloc(c, sizeof *p->source_ips);
            if (p->source_ips) {
                p->source_ips[0] = s;
                p->n_source_ips = 1;
            } else {
                free(s);
            }
        }
    } else if (ips) {
        if (plan_strv(c, ips, "source.ips",
                      "an IPv4 or IPv6 address such as 192.0.2.10 or 2001:db8::10", true,
                      plan_check_ip, false, &p->source_ips, &p->n_source_ips) &&
            p->n_source_ips == 0)
            plan_fail(c, ips, "source.ips",
                      "expected at least one IP address, found an empty list");
    } else {
        plan_fail(c, key, "source.ip", "expected the IP address to warm up, found nothing");
    }
    const plan_node *start = plan_get(m, "start");
    if (start && ip && !ips)
        plan_fail(c, start, "source.start",
                  "expected source.ips with it (the IPs of a pool that join later), found "
                  "source.ip");
    else if (start && p->n_source_ips > 0)
        plan_source_start_parse(c, start);
    if (helo)
        plan_domain(c, helo, "source.helo", "a domain name such as mx1.example.com", &p->helo);
    else
        plan_fail(c, key, "source.helo",
                  "expected the EHLO name (a domain name such as mx1.example.com), found nothing");
}

static void plan_dkim(struct plan_ctx *c, const plan_node *key, const plan_node *m)
{
    static const char *const keys[] = {"domain", "selector", "key_file", NULL};
    struct plan *p = c->p;
    if (!plan_mapping(c, m, "sender.dkim", "a mapping with domain, selector and key_file", keys))
        return;
    p->dkim = true;
    const plan_node *v;
    if ((v = plan_get(m, "domain")))
        plan_domain(c, v, "sender.dkim.domain", "a domain name such as example.com",
                    &p->dkim_domain);
    else
        plan_fail(c, key, "sender.dkim.domain", "expected the signing domain, found nothing");
    if ((v = plan_get(m, "selector"))) {
        const char *what = "a DKIM selector such as s2026 (letters, digits, '-', dots)";
        char *s = NULL;
        if (plan_str(c, v, "sender.dkim.selector", what, &s)) {
            if (plan_domain_valid(s, strlen(s), 1, false)) {
                free(p->dkim_selector);
                p->dkim_selector = s;
            } else {
                plan_fail(c, v, "sender.dkim.selector", "expected %s, found %s", what,
                          PLAN_SHOW(v));
                free(s);
            }
        }
    } else {
        plan_fail(c, key, "sender.dkim.selector", "expected the DKIM selector, found nothing");
    }
    if ((v = plan_get(m, "key_file")))
        plan_file(c, v, "sender.dkim.key_file", true, &p->dkim_key_file);
    else
        plan_fail(c, key, "sender.dkim.key_file",
                  "expected the private key file (ipwarm dkim keygen writes one), found nothing");
}

static void plan_sender(struct plan_ctx *c, const plan_node *key, const plan_node *m)
{
    static const char *const keys[] = {"from", "return_path", "dkim", NULL};
    struct plan *p = c->p;
    if (!plan_mapping(c, m, "sender", "a mapping with from", keys))
        return;
    const plan_node *v, *k;
    if ((v = plan_get(m, "from"))) {
        const char *what = "an address such as \"Example <news@example.com>\" or news@example.com";
        char *s = NULL;
        if (plan_str(c, v, "sender.from", what, &s)) {
            char *name = NULL, *addr = NULL;
            if (plan_mailbox_split(c, s, strlen(s), &name, &addr)) {
                p->from = s;
                p->from_name = name;
                p->from_addr = addr;
            } else {
                plan_fail(c, v, "sender.from", "expected %s, found %s", what, PLAN_SHOW(v));
                free(s);
                free(name);
                free(addr);
            }
        }
    } else {
        plan_fail(c, key, "sender.from",
                  "expected the From address (\"Example <news@example.com>\"), found nothing");
    }
    if ((v = plan_get(m, "return_path")))
        plan_addr(c, v, "sender.return_path", &p->return_path);
    if ((v = plan_get2(m, "dkim", &k)))
        plan_dkim(c, k, v);
}

/*
 * The relay's host, port and TLS from a URL plan_url_valid() accepted, read once here for every
 * command: smtps:// is TLS from the start (port 465 unless given), smtp:// uses STARTTLS (587
 * unless given); an IPv6 literal loses its brackets.
 */
static void plan_relay_split(struct plan *p)
{
    const char *url = p->relay_url;
    const char *rest = url;
    p->relay_implicit_tls = strncasecmp(url, "smtps://", 8) == 0;
    p->relay_port = p->relay_implicit_tls ? 465 : 587;
    rest = url + (p->relay_implicit_tls ? 8 : 7);
    const char *h = rest;
    size_t hl;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        h = rest + 1;
        hl = close ? (size_t)(close - h) : strlen(h);
        rest = close ? close + 1 : h + hl;
    } else {
        hl = strcspn(rest, ":/");
        rest += hl;
    }
    free(p->relay_host);
    p->relay_host = strndup(h, hl);
    if (*rest == ':')
        p->relay_port = (int)strtol(rest + 1, NULL, 10);
}

static void plan_relay(struct plan_ctx *c, const plan_node *m)
{
    static const char *const keys[] = {"url",           "username", "password_env",
                                       "password_file", "ca_file",  NULL};
    struct plan *p = c->p;
    if (!plan_mapping(c, m, "transport.relay", "a mapping with url", keys))
        return;
    const plan_node *v, *user = plan_get(m, "username"), *penv = plan_get(m, "password_env"),
                        *pfile = plan_get(m, "password_file");
    if ((v = plan_get(m, "url"))) {
        const char *what = "an smtp:// or smtps:// URL with a host, such as "
                           "smtp://smtp.example.com:587";
        char *s = NULL;
        const char *why = NULL;
        if (plan_str(c, v, "transport.relay.url", what, &s)) {
            if (plan_url_valid(s, &why)) {
                free(p->relay_url);
                p->relay_url = s;
                plan_relay_split(p);
            } else if (why) {
                /* never echo a password found in the URL into messages and logs */
                plan_fail(c, v, "transport.relay.url",
                          "%s: expected %s, found a URL with "
                          "credentials",
                          why, what);
                free(s);
            } else {
                plan_fail(c, v, "transport.relay.url", "expected %s, found %s", what, PLAN_SHOW(v));
                free(s);
            }
        }
    }
    if (user)
        plan_str(c, user, "transport.relay.username", "a user name", &p->relay_username);
    if (penv) {
        const char *what = "the name of an environment variable such as IPWARM_SMTP_PASSWORD";
        char *s = NULL;
        if (plan_str(c, penv, "transport.relay.password_env", what, &s)) {
            if (plan_env_name_valid(s, strlen(s))) {
                free(p->relay_password_env);
                p->relay_password_env = s;
            } else {
                plan_fail(c, penv, "transport.relay.password_env", "expected %s, found %s", what,
                          PLAN_SHOW(penv));
                free(s);
            }
        }
    }
    if (pfile &&
        plan_file(c, pfile, "transport.relay.password_file", true, &p->relay_password_file))
        plan_warn_secret_file(c, p->relay_password_file, "transport.relay.password_file");
    if ((v = plan_get(m, "ca_file")))
        plan_file(c, v, "transport.relay.ca_file", true, &p->relay_ca_file);
    if (penv && pfile)
        plan_fail(c, pfile, "transport.relay.password_file",
                  "expected password_env or password_file, found both");
    /* a `password` key was refused above: the username's complaint would say it twice */
    if (user && !penv && !pfile && !plan_get(m, "password"))
        plan_fail(c, user, "transport.relay.username",
                  "expected password_env or password_file beside a username, found neither "
                  "(inline passwords are not allowed)");
    if (!user && (penv || pfile))
        plan_fail(c, penv ? penv : pfile,
                  penv ? "transport.relay.password_env" : "transport.relay.password_file",
                  "expected transport.relay.username beside a password, found none");
}

static void plan_tls_min(struct plan_ctx *c, const plan_node *v)
{
    static const char *const names[] = {"1.0", "1.1", "1.2", "1.3", NULL};
    const char *what = "a TLS version \"1.0\", \"1.1\", \"1.2\" or \"1.3\"";
    if (!plan_scalar(c, v, "transport.tls_min", what))
        return;
    for (int i = 0; names[i]; i++) {
        if (plan_key_is(v, names[i])) {
            c->p->tls_min = (enum plan_tls_version)(PLAN_TLS_1_0 + i);
            return;
        }
    }
    plan_fail(c, v, "transport.tls_min", "expected %s, found %s", what, PLAN_SHOW(v));
}

static void plan_transport(struct plan_ctx *c, const plan_node *key, const plan_node *m)
{
    static const char *const keys[] = {
        "mode", "port", "tls", "tls_min", "relay", "timeouts", "connections_per_provider", NULL};
    static const char *const modes[] = {"direct", "relay", NULL};
    static const char *const tlss[] = {"opportunistic", "required", NULL};
    static const char *const tkeys[] = {"connect", "command", NULL};
    struct plan *p = c->p;
    if (!plan_mapping(c, m, "transport", "a mapping with mode", keys))
        return;
    const plan_node *v, *mode = plan_get(m, "mode");
    int i;
    int64_t n;
    if (mode && plan_enum(c, mode, "transport.mode", modes, &i))
        p->mode = (enum plan_transport_mode)i;
    if ((v = plan_get(m, "port")) &&
        plan_int(c, v, "transport.port", "a port number from 1 to 65535", 1, 65535, &n))
        p->port = (int)n;
    if ((v = plan_get(m, "tls")) && plan_enum(c, v, "transport.tls", tlss, &i))
        p->tls = (enum plan_tls)i;
    if ((v = plan_get(m, "tls_min")))
        plan_tls_min(c, v);
    if ((v = plan_get(m, "relay")))
        plan_relay(c, v);
    if ((v = plan_get(m, "timeouts")) &&
        plan_mapping(c, v, "transport.timeouts", "a mapping with connect and command", tkeys)) {
        const plan_node *t;
        if ((t = plan_get(v, "connect")))
            plan_duration(c, t, "transport.timeouts.connect", true, &p->connect_timeout_ms);
        if ((t = plan_get(v, "command")))
            plan_duration(c, t, "transport.timeouts.command", true, &p->command_timeout_ms);
    }
    if ((v = plan_get(m, "connections_per_provider")) &&
        plan_int(c, v, "transport.connections_per_provider", "a whole number from 1 to 100", 1, 100,
                 &n))
        p->connections_per_provider = (int)n;
    if (p->mode == PLAN_RELAY && !plan_get(plan_get(m, "relay"), "url"))
        plan_fail(c, mode ? mode : key, "transport.relay.url",
                  "expected an smtp:// or smtps:// URL with mode: relay, found nothing");
}

static void plan_message(struct plan_ctx *c, const plan_node *key, const plan_node *m)
{
    static const char *const keys[] = {"subject",   "text_file",        "text",
                                       "html_file", "list_unsubscribe", "list_unsubscribe_mailto",
                                       NULL};
    struct plan *p = c->p;
    if (!plan_mapping(c, m, "message", "a mapping with subject and text_file", keys))
        return;
    const plan_node *v, *tf = plan_get(m, "text_file"), *tx = plan_get(m, "text");
    if ((v = plan_get(m, "subject")))
        plan_str(c, v, "message.subject", "a subject line", &p->subject);
    else
        plan_fail(c, key, "message.subject", "expected a subject line, found nothing");
    if (tf && tx)
        plan_fail(c, tx, "message.text", "expected message.text_file or message.text, found both");
    else if (tf)
        plan_file(c, tf, "message.text_file", true, &p->text_file);
    else if (tx) {
        if (plan_scalar(c, tx, "message.text", "the text body") &&
            plan_clean(c, tx, "message.text", true)) {
            free(p->text);
            p->text = plan_strndup(c, tx->text, tx->len);
        }
    } else {
        plan_fail(c, key, "message.text_file",
                  "expected a text body file (or message.text), found nothing");
    }
    if ((v = plan_get(m, "html_file")))
        plan_file(c, v, "message.html_file", true, &p->html_file);
    if ((v = plan_get(m, "list_unsubscribe"))) {
        const char *what = "an https:// URL such as \"https://example.com/u/{{token}}\"";
        char *s = NULL;
        if (plan_str(c, v, "message.list_unsubscribe", what, &s)) {
            /* the URL goes between <> in List-Unsubscribe: no spaces or brackets in it */
            if (strncmp(s, "https://", 8) == 0 && s[8] && s[8] != '/' && !strpbrk(s, " \t<>\"")) {
                free(p->list_unsubscribe);
                p->list_unsubscribe = s;
            } else {
                plan_fail(c, v, "message.list_unsubscribe", "expected %s, found %s", what,
                          PLAN_SHOW(v));
                free(s);
            }
        }
    }
    if ((v = plan_get(m, "list_unsubscribe_mailto"))) {
        /* "mailto:" is optional; the struct holds the address */
        if (v->kind == PLAN_YAML_SCALAR && v->len > 7 && strncasecmp(v->text, "mailto:", 7) == 0) {
            plan_node stripped = *v;
            stripped.text += 7;
            stripped.len -= 7;
            if (!plan_addr(c, &stripped, "message.list_unsubscribe_mailto",
                           &p->list_unsubscribe_mailto))
                return;
        } else {
            plan_addr(c, v, "message.list_unsubscribe_mailto", &p->list_unsubscribe_mailto);
        }
    }
}

static void plan_recipients(struct plan_ctx *c, const plan_node *key, const plan_node *m)
{
    static const char *const keys[] = {"file", "mode", "column", NULL};
    static const char *const modes[] = {"once", "cycle", NULL};
    struct plan *p = c->p;
    if (!plan_mapping(c, m, "recipients", "a mapping with file", keys))
        return;
    const plan_node *v;
    int i;
    if ((v = plan_get(m, "file")))
        plan_file(c, v, "recipients.file", true, &p->recipients_file);
    else
        plan_fail(c, key, "recipients.file", "expected the recipient list file, found nothing");
    if ((v = plan_get(m, "mode")) && plan_enum(c, v, "recipients.mode", modes, &i))
        p->recipients_mode = (enum plan_recipients_mode)i;
    if ((v = plan_get(m, "column")))
        plan_str(c, v, "recipients.column", "a CSV column name", &p->recipients_column);
}

/* "mon", "monday" (any case) -> 0..6, else -1. */
static int plan_day_index(const char *s, size_t len)
{
    static const char *const full[] = {"monday", "tuesday",  "wednesday", "thursday",
                                       "friday", "saturday", "sunday"};
    for (int d = 0; d < 7; d++) {
        if ((len == 3 || len == strlen(full[d])) && strncasecmp(s, full[d], len) == 0)
            return d;
    }
    return -1;
}

/* A day or a range of days ("mon-fri", also across the weekend: "fri-mon") as bits. */
static unsigned plan_days_bits(const char *s, size_t len)
{
    const char *dash = memchr(s, '-', len);
    if (!dash) {
        int d = plan_day_index(s, len);
        return d < 0 ? 0 : 1u << d;
    }
    int a = plan_day_index(s, (size_t)(dash - s));
    int b = plan_day_index(dash + 1, len - (size_t)(dash - s) - 1);
    if (a < 0 || b < 0)
        return 0;
    unsigned bits = 0;
    for (int d = a;; d = (d + 1) % 7) {
        bits |= 1u << d;
        if (d == b)
            break;
    }
    return bits;
}

/* "HH:MM" with hours up to max_hour (24 only as "24:00"); minutes after midnight or -1. */
static int plan_clock(const char *s, size_t len, int max_hour)
{
    if (len < 4 || len > 5 || s[len - 3] != ':' || strspn(s, "0123456789") != len - 3 ||
        strspn(s + len - 2, "0123456789") != 2)
        return -1;
    int h = (int)strtol(s, NULL, 10), m = (int)strtol(s + len - 2, NULL, 10);
    if (h > max_hour || m > 59 || (h == 24 && m != 0))
        return -1;
    return h * 60 + m;
}

/* "HH:MM-HH:MM": 0 ok, 1 malformed, 2 start equals end. */
static int plan_window_parse(const char *s, size_t len, struct plan_window *w)
{
    const char *dash = memchr(s, '-', len);
    if (!dash)
        return 1;
    const char *a = s, *b = dash + 1;
    size_t al = (size_t)(dash - s), bl = len - al - 1;
    plan_trim(&a, &al);
    plan_trim(&b, &bl);
    int start = plan_clock(a, al, 23), end = plan_clock(b, bl, 24);
    if (start < 0 || end < 0)
        return 1;
    if (start == end)
        return 2;
    /* "18:00-00:00" ends at midnight: the same as 24:00, not a window across midnight */
    w->start_min = start;
    w->end_min = end == 0 ? 1440 : end;
    return 0;
}

static void plan_schedule(struct plan_ctx *c, const plan_node *m)
{
    static const char *const keys[] = {"days", "hours", NULL};
    struct plan_schedule *s = &c->p->schedule;
    if (!plan_mapping(c, m, "schedule", "a mapping with days and hours", keys))
        return;
    const plan_node *v;
    if ((v = plan_get(m, "days"))) {
        const char *what = "a day (mon, tue, wed, thu, fri, sat, sun) or a range such as mon-fri";
        const plan_node *one = v;
        plan_node *const *items = (plan_node *const *)&one;
        size_t n = 1;
        if (v->kind != PLAN_YAML_SCALAR &&
            !plan_items(c, v, "schedule.days", "a list of days such as [mon, tue, wed]", &items,
                        &n))
            return;
        unsigned bits = 0;
        bool ok = true;
        for (size_t i = 0; i < n; i++) {
            char ip[PLAN_PATH_MAX];
            if (v->kind == PLAN_YAML_SEQUENCE)
                plan_path_index(ip, "schedule.days", i);
            else
                snprintf(ip, sizeof ip, "schedule.days");
            unsigned b = 0;
            if (plan_scalar(c, items[i], ip, what) && plan_clean(c, items[i], ip, false) &&
                !(b = plan_days_bits(items[i]->text, items[i]->len))) {
                plan_fail(c, items[i], ip, "expected %s, found %s", what, PLAN_SHOW(items[i]));
            }
            ok = ok && b;
            bits |= b;
        }
        if (ok && n == 0)
            plan_fail(c, v, "schedule.days", "expected at least one day, found an empty list");
        else if (ok)
            s->days = bits;
    }
    if ((v = plan_get(m, "hours"))) {
        const char *what = "a window \"HH:MM-HH:MM\" such as \"09:00-18:00\"";
        const plan_node *one = v;
        plan_node *const *items = (plan_node *const *)&one;
        size_t n = 1;
        if (v->kind != PLAN_YAML_SCALAR &&
            !plan_items(c, v, "schedule.hours", "a window \"HH:MM-HH:MM\" or a list of them",
                        &items, &n))
            return;
        struct plan_window *w = plan_alloc(c, (n ? n : 1) * sizeof *w);
        if (!w)
            return;
        bool ok = true;
        for (size_t i = 0; i < n; i++) {
            char ip[PLAN_PATH_MAX];
            if (v->kind == PLAN_YAML_SEQUENCE)
                plan_path_index(ip, "schedule.hours", i);
            else
                snprintf(ip, sizeof ip, "schedule.hours");
            if (!plan_scalar(c, items[i], ip, what) || !plan_clean(c, items[i], ip, false)) {
                ok = false;
                continue;
            }
            int r = plan_window_parse(items[i]->text, items[i]->len, &w[i]);
            if (r == 1)
                plan_fail(c, items[i], ip, "expected %s, found %s", what, PLAN_SHOW(items[i]));
            else if (r == 2)
                plan_fail(c, items[i], ip,
                          "expected a window whose end differs from its start (00:00-24:00 is "
                          "the whole day), found %s",
                          PLAN_SHOW(items[i]));
            ok = ok && r == 0;
        }
        if (ok && n == 0)
            plan_fail(c, v, "schedule.hours", "expected at least one window, found an empty list");
        if (ok && n > 0) {
            free(s->windows);
            s->windows = w;
            s->n_windows = n;
        } else {
            free(w);
        }
    }
}

/* Nodes of a ramp's start and max, for the max >= start message after merging. */
struct plan_ramp_nodes {
    const plan_node *start;
    const plan_node *max;
};

/* Reads the ramp keys given in m into r, flagging each in r->set. */
static void plan_ramp_parse(struct plan_ctx *c, const plan_node *m, const char *path,
                            struct plan_ramp *r, struct plan_ramp_nodes *nodes)
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

static void plan_ramp_check(struct plan_ctx *c, const char *file, int rank,
                            const struct plan_ramp *r, const struct plan_ramp_nodes *nodes,
                            const char *path)
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
static void plan_providers_parse(struct plan_ctx *c, const plan_node *v, struct plan_part *part)
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

static void plan_rules_parse(struct plan_ctx *c, const plan_node *v, const char *base,
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

static void plan_backoff(struct plan_ctx *c, const plan_node *m, struct plan_part *part)
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

static void plan_preflight(struct plan_ctx *c, const plan_node *m)
{
    static const char *const keys[] = {"require", "dnsbl", NULL};
    static const char *const checks[] = {"spf",   "ptr",  "helo", "mx",   "dnsbl", "dkim",
                                         "dmarc", "smtp", "tls",  "auth", "size",  NULL};
    struct plan *p = c->p;
    if (!plan_mapping(c, m, "preflight", "a mapping with require and dnsbl", keys))
        return;
    const plan_node *v;
    if ((v = plan_get(m, "require"))) {
        const plan_node *one = v;
        plan_node *const *items = (plan_node *const *)&one;
        size_t n = 1;
        if (v->kind != PLAN_YAML_SCALAR &&
            !plan_items(c, v, "preflight.require", "a list of checks such as [spf, ptr, helo]",
                        &items, &n))
            return;
        unsigned bits = 0;
        bool ok = true;
        for (size_t i = 0; i < n; i++) {
            char ip[PLAN_PATH_MAX];
            int idx;
            if (v->kind == PLAN_YAML_SEQUENCE)
                plan_path_index(ip, "preflight.require", i);
            else
                snprintf(ip, sizeof ip, "preflight.require");
            if (plan_enum(c, items[i], ip, checks, &idx))
                bits |= 1u << idx;
            else
                ok = false;
        }
        if (ok)
            p->preflight_require = bits;
    }
    if ((v = plan_get(m, "dnsbl")))
        plan_strv(c, v, "preflight.dnsbl", "a DNS block list zone such as zen.spamhaus.org", true,
                  plan_check_domain, true, &p->dnsbl_zones, &p->n_dnsbl_zones);
}

/* "IP", "IP:PORT", "[v6]:PORT", "[v6]" or a bare IPv6 address. */
static bool plan_dns_server_parse(struct plan_ctx *c, const char *s, struct dns_server *out)
{
    size_t len = strlen(s);
    const char *host = s, *port = NULL;
    size_t hlen = len;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb)
            return false;
        host = s + 1;
        hlen = (size_t)(rb - s) - 1;
        if (rb[1] == ':')
            port = rb + 2;
        else if (rb[1])
            return false;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && !strchr(colon + 1, ':')) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    char buf[INET6_ADDRSTRLEN + 1];
    if (hlen == 0 || hlen >= sizeof buf)
        return false;
    memcpy(buf, host, hlen);
    buf[hlen] = '\0';
    if (!plan_ip_valid(buf) || (port && !plan_port_text_valid(port, strlen(port))))
        return false;
    out->host = plan_strdup(c, buf);
    out->port = port ? (int)strtol(port, NULL, 10) : 53;
    return true;
}

static void plan_dns(struct plan_ctx *c, const plan_node *m)
{
    static const char *const keys[] = {"servers", "timeout", NULL};
    struct plan *p = c->p;
    if (!plan_mapping(c, m, "dns", "a mapping with servers and timeout", keys))
        return;
    const plan_node *v;
    if ((v = plan_get(m, "servers"))) {
        const char *what = "a DNS server \"IP\", \"IP:PORT\" or \"[IPv6]:PORT\"";
        char **list = NULL;
        size_t n = 0;
        if (plan_strv(c, v, "dns.servers", what, true, NULL, false, &list, &n)) {
            struct dns_server *sv = plan_alloc(c, (n ? n : 1) * sizeof *sv);
            for (size_t i = 0; sv && i < n; i++) {
                if (!plan_dns_server_parse(c, list[i], &sv[i])) {
                    char ip[PLAN_PATH_MAX];
                    const plan_node *item = v->kind == PLAN_YAML_SEQUENCE ? v->items[i] : v;
                    if (v->kind == PLAN_YAML_SEQUENCE)
                        plan_path_index(ip, "dns.servers", i);
                    else
                        snprintf(ip, sizeof ip, "dns.servers");
                    plan_fail(c, item, ip, "expected %s, found %s", what, PLAN_SHOW(item));
                }
            }
            if (sv) {
                p->dns_servers = sv;
                p->n_dns_servers = n;
            }
        }
        plan_strv_free(list, n);
    }
    if ((v = plan_get(m, "timeout")))
        plan_duration(c, v, "dns.timeout", true, &p->dns_timeout_ms);
}

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
        plan_campaign(c, v);
    else
        plan_fail(c, root, "campaign", "expected a campaign name, found nothing");
    if ((v = plan_get(root, "timezone")))
        plan_timezone(c, v);
    if ((v = plan_get(root, "state")))
        plan_file(c, v, "state", false, &p->state);
    if ((v = plan_get2(root, "source", &k)))
        plan_source(c, k, v);
    else
        plan_fail(c, root, "source", "expected a mapping with ip and helo, found nothing");
    if ((v = plan_get2(root, "sender", &k)))
        plan_sender(c, k, v);
    else
        plan_fail(c, root, "sender", "expected a mapping with from, found nothing");
    if ((v = plan_get2(root, "transport", &k)))
        plan_transport(c, k, v);
    if ((v = plan_get2(root, "message", &k)))
        plan_message(c, k, v);
    else
        plan_fail(c, root, "message",
                  "expected a mapping with subject and text_file, found nothing");
    if ((v = plan_get2(root, "recipients", &k)))
        plan_recipients(c, k, v);
    else
        plan_fail(c, root, "recipients", "expected a mapping with file, found nothing");
    if ((v = plan_get(root, "schedule")))
        plan_schedule(c, v);
    if ((v = plan_get(root, "ramp")))
        plan_ramp_parse(c, v, "ramp", &p->ramp, ramp_nodes);
    if ((v = plan_get2(root, "providers", &k))) {
        part->providers_key = k;
        plan_providers_parse(c, v, part);
    }
    if ((v = plan_get(root, "backoff")))
        plan_backoff(c, v, part);
    if ((v = plan_get(root, "preflight")))
        plan_preflight(c, v);
    if ((v = plan_get(root, "dns")))
        plan_dns(c, v);
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
/* Merge */

static void plan_part_free(struct plan_part *part)
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
static void plan_merge_providers(struct plan_ctx *c, struct plan_part *plan,
                                 struct plan_part *table)
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
static void plan_merge_rules(struct plan_ctx *c, struct plan_part *plan, struct plan_part *table)
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
    size_t cap = PLAN_YAML_MAX_BYTES + 2;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return IPW_ENOMEM;
    }
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *err_no = errno;
            free(buf);
            close(fd);
            return IPW_ENOINPUT;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *text = buf;
    *len = n;
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
