/*
 * plan_sections: the walkers of the plan's own sections: campaign, timezone, source, sender and
 * its DKIM key, transport and relay, message, recipients, schedule, preflight and dns (plan.md).
 * plan.c calls them from its top-level walk; each reads its YAML mapping with the typed readers
 * of plan_value.c, fills its part of struct plan and reports every problem it meets, without
 * stopping at the first. The providers, ramps, rules and backoff are plan_rules.c's.
 */
#include "plan_sections.h"

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

void plan_campaign_walk(struct plan_ctx *c, const plan_node *v)
{
    plan_str(c, v, "campaign", "a campaign name", &c->p->campaign);
}

void plan_timezone_walk(struct plan_ctx *c, const plan_node *v)
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

void plan_source_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m)
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

void plan_sender_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m)
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

void plan_transport_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m)
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

void plan_message_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m)
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

void plan_recipients_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m)
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

void plan_schedule_walk(struct plan_ctx *c, const plan_node *m)
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

void plan_preflight_walk(struct plan_ctx *c, const plan_node *m)
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

void plan_dns_walk(struct plan_ctx *c, const plan_node *m)
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
