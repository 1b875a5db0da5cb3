/*
 * plan_feedback: the plan's `feedback` and `seeds` sections, the mailboxes ipwarm reads over
 * IMAP (RFC 3501) to learn what happens after the 250: late bounces and complaint reports in
 * the return path's mailbox, and where the copies sent to seed mailboxes land.
 *
 * A mailbox is an imaps:// URL (TLS from the start, RFC 8314), or an imap:// URL on which
 * STARTTLS is required (RFC 2595), a login and where its password comes from: an environment
 * variable or a file, never the plan; or, for providers that accept only OAuth 2.0 (Microsoft
 * 365, Google without app passwords), where a bearer access token comes from (oauth2_token_env
 * or oauth2_token_file), for an XOAUTH2 login; the operator's own tooling keeps it fresh. `tls:
 * none` allows plain imap:// and is refused for a host that is not on this machine, because the
 * password would cross a network in clear. The URL may name a folder (imaps://host/INBOX,
 * percent-encoded as RFC 5092 writes it); its userinfo is refused like a relay URL's. Refusals read
 * like every other plan problem: FILE:LINE:COLUMN: key.path: expected ..., found ...
 *
 * With `verp`, the return path becomes LOCAL+TOKEN@domain (verp.h): the local part of
 * sender.return_path must leave room for the token within RFC 5321's 64 octets, and must be a
 * dot-atom (a quoted local part cannot carry it). That is checked after the whole plan is
 * read, when the return path and its default are known.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/chars.h"
#include "ipwarm/verp.h"

#include "plan_feedback.h"
#include "plan_value.h"

/* ---------------------------------------------------------------------------------------- */
/* Mailbox URLs */

/* The folder of a URL path (after the '/'), percent-decoded into a new string; NULL when a
 * %XX is malformed or decodes to a control character. */
static char *plan_url_folder(struct plan_ctx *c, const char *s, size_t len)
{
    char *d = plan_alloc(c, len + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '%') {
            int hi = i + 2 < len ? chars_hex_value(s[i + 1]) : -1;
            int lo = hi >= 0 ? chars_hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(d);
                return NULL;
            }
            ch = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (ch < 0x20 || ch == 0x7f) {
            free(d);
            return NULL;
        }
        d[o++] = (char)ch;
    }
    d[o] = '\0';
    return d;
}

/* True when host (as written in the URL) is this machine: localhost, 127.0.0.0/8 or [::1]. */
static bool plan_host_is_loopback(const char *host, size_t len)
{
    if ((len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
        (len == 5 && memcmp(host, "[::1]", 5) == 0))
        return true;
    char buf[64];
    if (len < 4 || len >= sizeof buf || strncmp(host, "127.", 4) != 0)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    return plan_ip_valid(buf);
}

/*
 * Checks an imap:// or imaps:// URL: scheme, host, optional port, optional /FOLDER; no
 * userinfo, query, fragment or IMAP URL parameters (";UID="). Fills *tls_scheme (imaps), the
 * decoded folder (NULL when none) and whether the host is loopback. *why says what is wrong
 * when a sentence better than "expected ..." exists.
 */
static bool plan_imap_url(struct plan_ctx *c, const char *s, bool *implicit_tls, char **folder,
                          bool *loopback, const char **why)
{
    *why = NULL;
    *folder = NULL;
    const char *rest;
    if (strncasecmp(s, "imap://", 7) == 0) {
        rest = s + 7;
        *implicit_tls = false;
    } else if (strncasecmp(s, "imaps://", 8) == 0) {
        rest = s + 8;
        *implicit_tls = true;
    } else {
        return false;
    }
    size_t alen = strcspn(rest, "/?#");
    const char *at = memchr(rest, '@', alen);
    if (at) {
        *why = memchr(rest, ':', (size_t)(at - rest))
                   ? "inline passwords are not allowed: use password_env or password_file"
                   : "put the login in username, not in the URL";
        return false;
    }
    if (rest[alen] == '?' || rest[alen] == '#' || strpbrk(rest + alen, "?#;")) {
        *why = "a mailbox URL names a server and a folder only (no ?query, #fragment or ;UID=)";
        return false;
    }
    size_t hlen;
    if (!plan_authority_valid(rest, alen, &hlen))
        return false;
    *loopback = plan_host_is_loopback(rest, hlen);
    const char *path = rest + alen;
    if (path[0] == '/' && path[1]) {
        *folder = plan_url_folder(c, path + 1, strlen(path + 1));
        if (!*folder) {
            *why = "the folder in the URL has a bad %XX escape or a control character";
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Mailboxes */

static void plan_mailbox_clear(struct plan_mailbox *m)
{
    free(m->url);
    free(m->folder);
    free(m->username);
    free(m->password_env);
    free(m->password_file);
    free(m->oauth2_token_env);
    free(m->oauth2_token_file);
    free(m->ca_file);
    memset(m, 0, sizeof *m);
}

/* An environment variable's name under path.name (password_env, oauth2_token_env). */
static void plan_mailbox_env(struct plan_ctx *c, const plan_node *v, const char *path,
                             const char *name, const char *example, char **out)
{
    if (!v)
        return;
    char kp[PLAN_PATH_MAX], what[128];
    plan_path(kp, path, name);
    snprintf(what, sizeof what, "the name of an environment variable such as %s", example);
    char *s = NULL;
    if (!plan_str(c, v, kp, what, &s))
        return;
    if (plan_env_name_valid(s, strlen(s))) {
        free(*out);
        *out = s;
    } else {
        plan_fail(c, v, kp, "expected %s, found %s", what, PLAN_SHOW(v));
        free(s);
    }
}

/* The mailbox keys of m (feedback.mailbox, or a seed, which has more keys: extra lists them for
 * the unknown-key check). */
static void plan_mailbox_parse(struct plan_ctx *c, const plan_node *key, const plan_node *m,
                               const char *path, const char *const *known, struct plan_mailbox *out)
{
    static const char *const tlss[] = {"required", "none", NULL};
    char kp[PLAN_PATH_MAX];
    const plan_node *v, *url_node = plan_get(m, "url"), *user = plan_get(m, "username"),
                        *penv = plan_get(m, "password_env"), *pfile = plan_get(m, "password_file"),
                        *tenv = plan_get(m, "oauth2_token_env"),
                        *tfile = plan_get(m, "oauth2_token_file"), *tls_node = plan_get(m, "tls");
    if (!plan_mapping(c, m, path, "a mapping with url, username and password_env", known))
        return;
    out->pos = (struct plan_pos){c->p->name, m->line, m->column};
    int i;
    plan_path(kp, path, "tls");
    if (tls_node && plan_enum(c, tls_node, kp, tlss, &i))
        out->tls = (enum plan_mailbox_tls)i;

    plan_path(kp, path, "url");
    if (url_node) {
        const char *what = "an imaps:// or imap:// URL with a host, such as "
                           "imaps://imap.example.com/INBOX";
        char *s = NULL;
        if (plan_str(c, url_node, kp, what, &s)) {
            bool implicit_tls = false, loopback = false;
            char *folder = NULL;
            const char *why = NULL;
            if (!plan_imap_url(c, s, &implicit_tls, &folder, &loopback, &why)) {
                /* never echo a password found in the URL into messages and logs */
                if (why)
                    plan_fail(c, url_node, kp, "%s: expected %s", why, what);
                else
                    plan_fail(c, url_node, kp, "expected %s, found %s", what, PLAN_SHOW(url_node));
                free(s);
            } else if (out->tls == PLAN_MAILBOX_TLS_NONE && !implicit_tls && !loopback) {
                plan_path(kp, path, "tls");
                plan_fail(c, tls_node, kp,
                          "tls: none sends the password (or token) in clear: it is allowed only "
                          "for a server on this machine (localhost, 127.0.0.0/8, [::1]); expected "
                          "imaps:// or tls: required, found %s",
                          PLAN_SHOW(url_node));
                free(s);
                free(folder);
            } else {
                free(out->url);
                free(out->folder);
                out->url = s;
                out->folder = folder;
            }
        }
    } else {
        plan_fail(c, key, kp, "expected the mailbox's imaps:// URL, found nothing");
    }

    plan_path(kp, path, "username");
    if (user)
        plan_str(c, user, kp, "the IMAP login, such as bounces@example.com", &out->username);
    else
        plan_fail(c, key, kp, "expected the IMAP login, found nothing");

    plan_mailbox_env(c, penv, path, "password_env", "IPWARM_IMAP_PASSWORD", &out->password_env);
    plan_path(kp, path, "password_file");
    if (pfile)
        plan_file(c, pfile, kp, true, &out->password_file);
    plan_mailbox_env(c, tenv, path, "oauth2_token_env", "IPWARM_IMAP_TOKEN",
                     &out->oauth2_token_env);
    plan_path(kp, path, "oauth2_token_file");
    /* a token is worth a warning when other users may read it (a new key: a mailbox's
     * password_file is not warned about, to keep existing set-ups quiet) */
    if (tfile && plan_file(c, tfile, kp, true, &out->oauth2_token_file))
        plan_warn_secret_file(c, out->oauth2_token_file, kp);
    /* one login: a password (LOGIN or SASL PLAIN) or an OAuth 2.0 token (XOAUTH2), from one
     * place; the second key given is the one reported */
    const plan_node *given[4] = {penv, pfile, tenv, tfile};
    static const char *const names[4] = {"password_env", "password_file", "oauth2_token_env",
                                         "oauth2_token_file"};
    int first = -1;
    for (int g = 0; g < 4; g++) {
        if (!given[g])
            continue;
        if (first < 0) {
            first = g;
            continue;
        }
        plan_path(kp, path, names[g]);
        if ((first < 2) == (g < 2))
            plan_fail(c, given[g], kp, "expected %s or %s, found both", names[first], names[g]);
        else
            plan_fail(c, given[g], kp,
                      "a mailbox logs in with a password or with an OAuth 2.0 token: expected "
                      "password_env, password_file, oauth2_token_env or oauth2_token_file, "
                      "found %s beside %s",
                      names[g], names[first]);
        break;
    }
    /* a `password` key was refused as an unknown key already: do not say it twice */
    if (first < 0 && !plan_get(m, "password")) {
        plan_path(kp, path, "password_env");
        plan_fail(c, key, kp,
                  "expected password_env or password_file (inline passwords are not allowed), "
                  "or oauth2_token_env or oauth2_token_file for an OAuth 2.0 login, found none");
    }
    plan_path(kp, path, "ca_file");
    if ((v = plan_get(m, "ca_file")))
        plan_file(c, v, kp, true, &out->ca_file);
}

/* ---------------------------------------------------------------------------------------- */
/* feedback */

/* Feedback-ID (Gmail's feedback loop): "a:b:c:SenderId", placeholders campaign, ip, provider;
 * printable ASCII on one line because it becomes a header field. */
static void plan_feedback_id(struct plan_ctx *c, const plan_node *v)
{
    static const char *const names[] = {"campaign", "ip", "provider", NULL};
    const char *path = "feedback.feedback_id";
    const char *what = "a Feedback-ID such as \"{{campaign}}:{{ip}}:{{provider}}:example\"";
    char *s = NULL;
    if (!plan_str(c, v, path, what, &s))
        return;
    for (const char *q = s; *q; q++) {
        if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e) {
            plan_fail(c, v, path, "expected printable ASCII (it becomes a header field), found %s",
                      PLAN_SHOW(v));
            free(s);
            return;
        }
    }
    for (const char *q = strstr(s, "{{"); q; q = strstr(q, "{{")) {
        const char *end = strstr(q + 2, "}}");
        if (!end) {
            plan_fail(c, v, path,
                      "unterminated placeholder: expected \"}}\" after \"{{\", found %s",
                      PLAN_SHOW(v));
            free(s);
            return;
        }
        const char *n = q + 2;
        size_t len = (size_t)(end - n);
        while (len && (*n == ' ' || *n == '\t')) {
            n++;
            len--;
        }
        while (len && (n[len - 1] == ' ' || n[len - 1] == '\t'))
            len--;
        bool known = false;
        for (size_t i = 0; names[i]; i++)
            known = known || (strlen(names[i]) == len && strncasecmp(n, names[i], len) == 0);
        if (!known) {
            plan_fail(c, v, path,
                      "unknown placeholder {{%.*s}}: expected campaign, ip or provider, found %s",
                      (int)(len > 40 ? 40 : len), n, PLAN_SHOW(v));
            free(s);
            return;
        }
        q = end + 2;
    }
    const char *last = strrchr(s, ':');
    if (!(last ? last[1] : s[0])) {
        plan_fail(c, v, path,
                  "expected a sender id after the last ':' (Gmail requires it), found %s",
                  PLAN_SHOW(v));
        free(s);
        return;
    }
    free(c->p->feedback.feedback_id);
    c->p->feedback.feedback_id = s;
}

static void plan_complaints(struct plan_ctx *c, const plan_node *m)
{
    static const char *const keys[] = {"rate_above", "min_delivered", "action",
                                       "rate",       "for",           NULL};
    static const char *const actions[] = {"suspend", "throttle", NULL};
    struct plan_feedback *f = &c->p->feedback;
    if (!plan_mapping(c, m, "feedback.complaints",
                      "a mapping with rate_above, min_delivered, action and for", keys))
        return;
    const plan_node *v;
    int i;
    if ((v = plan_get(m, "rate_above")) &&
        plan_percent(c, v, "feedback.complaints.rate_above", &f->complaint_rate_above_pct) &&
        !(f->complaint_rate_above_pct > 0))
        plan_fail(c, v, "feedback.complaints.rate_above",
                  "expected a percentage > 0 such as 0.3%%, found %s", PLAN_SHOW(v));
    if ((v = plan_get(m, "min_delivered")))
        plan_int(c, v, "feedback.complaints.min_delivered", "a whole number from 1 to 1000000000",
                 1, 1000000000, &f->complaint_min_delivered);
    const plan_node *action = plan_get(m, "action"), *rate = plan_get(m, "rate");
    if (action && plan_enum(c, action, "feedback.complaints.action", actions, &i))
        f->complaint_action = (enum plan_complaint_action)i;
    if (rate && plan_rate(c, rate, "feedback.complaints.rate", &f->complaint_rate_per_min) &&
        f->complaint_action != PLAN_COMPLAINT_THROTTLE)
        plan_fail(c, rate, "feedback.complaints.rate",
                  "a rate goes with action: throttle: expected no rate with action: suspend, "
                  "found %s",
                  PLAN_SHOW(rate));
    if ((v = plan_get(m, "for")))
        plan_duration(c, v, "feedback.complaints.for", true, &f->complaint_for_ms);
}

/* The keys of an IMAP account, the same in feedback.mailbox and in each seed. */
#define PLAN_FEEDBACK_IMAP_KEYS                                                                    \
    "url", "username", "password_env", "password_file", "oauth2_token_env", "oauth2_token_file",   \
        "ca_file", "tls"

void plan_feedback_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m)
{
    static const char *const keys[] = {"mailbox",    "verp",        "poll_every",
                                       "complaints", "feedback_id", NULL};
    static const char *const mkeys[] = {PLAN_FEEDBACK_IMAP_KEYS, NULL};
    struct plan_feedback *f = &c->p->feedback;
    if (!plan_mapping(c, m, "feedback", "a mapping with mailbox", keys))
        return;
    f->enabled = true;
    const plan_node *v, *k;
    if ((v = plan_get2(m, "mailbox", &k)))
        plan_mailbox_parse(c, k, v, "feedback.mailbox", mkeys, &f->mailbox);
    else
        plan_fail(c, key, "feedback.mailbox",
                  "expected the mailbox that receives bounces and complaint reports (url, "
                  "username, password_env), found nothing");
    if ((v = plan_get(m, "verp")))
        plan_bool(c, v, "feedback.verp", &f->verp);
    if ((v = plan_get(m, "poll_every")) &&
        plan_duration(c, v, "feedback.poll_every", true, &f->poll_every_ms) &&
        f->poll_every_ms < 60 * 1000)
        plan_fail(c, v, "feedback.poll_every",
                  "expected a duration of at least 1m (a mailbox polled more often is a burden "
                  "on its server), found %s",
                  PLAN_SHOW(v));
    if ((v = plan_get(m, "complaints")))
        plan_complaints(c, v);
    if ((v = plan_get(m, "feedback_id")))
        plan_feedback_id(c, v);
}

/* ---------------------------------------------------------------------------------------- */
/* seeds */

/* A folder name: one line, not empty; IMAP quoting and modified UTF-7 are the client's job. */
static void plan_folder(struct plan_ctx *c, const plan_node *v, const char *path, char **out)
{
    plan_str(c, v, path, "a folder name such as INBOX or \"[Gmail]/Spam\"", out);
}

static void plan_seed_parse(struct plan_ctx *c, const plan_node *m, size_t index,
                            struct plan_seed *out)
{
    static const char *const keys[] = {"address", PLAN_FEEDBACK_IMAP_KEYS, "folders", NULL};
    static const char *const fkeys[] = {"inbox", "junk", NULL};
    char path[PLAN_PATH_MAX], kp[PLAN_PATH_MAX];
    plan_path_index(path, "seeds", index);
    if (m->kind != PLAN_YAML_MAPPING) {
        plan_fail(c, m, path,
                  "expected a mapping with address, url, username and password_env, "
                  "found %s",
                  PLAN_SHOW(m));
        return;
    }
    plan_mailbox_parse(c, m, m, path, keys, &out->mailbox);
    const plan_node *v;
    plan_path(kp, path, "address");
    if ((v = plan_get(m, "address")))
        plan_addr(c, v, kp, &out->address);
    else
        plan_fail(c, m, kp, "expected the seed's address (the one ipwarm sends to), found nothing");
    plan_path(kp, path, "folders");
    if ((v = plan_get(m, "folders")) &&
        plan_mapping(c, v, kp, "a mapping with inbox and junk", fkeys)) {
        const plan_node *f;
        char fp[PLAN_PATH_MAX];
        plan_path(fp, kp, "inbox");
        if ((f = plan_get(v, "inbox")))
            plan_folder(c, f, fp, &out->inbox);
        plan_path(fp, kp, "junk");
        if ((f = plan_get(v, "junk")))
            plan_folder(c, f, fp, &out->junk);
    }
    if (!out->inbox)
        out->inbox = plan_strdup(c, "INBOX");
}

void plan_seeds_walk(struct plan_ctx *c, const plan_node *key, const plan_node *v)
{
    struct plan *p = c->p;
    plan_node *const *items;
    size_t n;
    if (!plan_items(c, v, "seeds", "a list of seed mailboxes (address, url, username, ...)", &items,
                    &n))
        return;
    p->seeds = plan_alloc(c, (n ? n : 1) * sizeof *p->seeds);
    if (!p->seeds)
        return;
    p->n_seeds = n;
    for (size_t i = 0; i < n; i++)
        plan_seed_parse(c, items[i], i, &p->seeds[i]);
    /* one seed per address: two would count each copy twice */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i && p->seeds[i].address; j++) {
            if (p->seeds[j].address && strcasecmp(p->seeds[i].address, p->seeds[j].address) == 0) {
                char kp[PLAN_PATH_MAX];
                plan_path_index(kp, "seeds", i);
                plan_path(kp, kp, "address");
                plan_fail(c, plan_get(items[i], "address"), kp,
                          "duplicate seed: expected each address once, found %s again (seeds[%zu])",
                          p->seeds[i].address, j);
                break;
            }
        }
    }
    (void)key;
}

/* ---------------------------------------------------------------------------------------- */
/* Defaults and after the walk */

void plan_feedback_defaults(struct plan_ctx *c)
{
    c->p->feedback = (struct plan_feedback){.poll_every_ms = 5 * 60 * 1000,
                                            .complaint_rate_above_pct = 0.3,
                                            .complaint_min_delivered = 300,
                                            .complaint_action = PLAN_COMPLAINT_SUSPEND,
                                            .complaint_rate_per_min = 1,
                                            .complaint_for_ms = 24 * 3600 * 1000};
}

void plan_feedback_after(struct plan_ctx *c, const plan_node *root)
{
    struct plan_feedback *f = &c->p->feedback;
    if (!f->enabled || !f->verp || !c->p->return_path)
        return;
    const plan_node *v = plan_get(plan_get(root, "feedback"), "verp");
    const char *rp = c->p->return_path;
    const char *at = strrchr(rp, '@');
    size_t local = at ? (size_t)(at - rp) : strlen(rp);
    if (rp[0] == '"') {
        plan_fail(c, v, "feedback.verp",
                  "expected a return path whose local part is a dot-atom (LOCAL+TOKEN@domain "
                  "cannot be made from a quoted local part), found %s",
                  rp);
    } else if (local + 1 + VERP_TOKEN_LEN > 64) {
        plan_fail(c, v, "feedback.verp",
                  "the return path %s leaves no room for the %d-character token: expected a local "
                  "part of at most %d characters (RFC 5321: 64 octets with +TOKEN), found %zu",
                  rp, VERP_TOKEN_LEN, 64 - 1 - VERP_TOKEN_LEN, local);
    }
}

void plan_feedback_free(struct plan *p)
{
    plan_mailbox_clear(&p->feedback.mailbox);
    free(p->feedback.feedback_id);
    p->feedback.feedback_id = NULL;
    for (size_t i = 0; p->seeds && i < p->n_seeds; i++) {
        free(p->seeds[i].address);
        free(p->seeds[i].inbox);
        free(p->seeds[i].junk);
        plan_mailbox_clear(&p->seeds[i].mailbox);
    }
    free(p->seeds);
    p->seeds = NULL;
    p->n_seeds = 0;
}
