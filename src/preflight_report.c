/*
 * preflight_report: the pre-flight report (see preflight_report.h): appending checks, whether
 * the required ones passed, and the `check --json` document (RFC 8259). A check about one
 * source IP (its subject starts with that IP) carries it, so that a pool's report says per IP
 * which checks failed.
 */
#include "ipwarm/preflight_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *preflight_status_name(enum preflight_status s)
{
    switch (s) {
    case PREFLIGHT_PASS:
        return "pass";
    case PREFLIGHT_WARN:
        return "warn";
    case PREFLIGHT_FAIL:
        return "fail";
    case PREFLIGHT_SKIP:
        return "skip";
    }
    return "unknown";
}

void preflight_report_init(struct preflight_report *r)
{
    memset(r, 0, sizeof *r);
    r->ok = true;
}

void preflight_report_clear(struct preflight_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_checks; i++) {
        free(r->checks[i].subject);
        free(r->checks[i].ip);
        free(r->checks[i].detail);
        free(r->checks[i].fix);
        free(r->checks[i].lookup);
    }
    free(r->checks);
    preflight_report_init(r);
}

/* The check's bit in preflight.require, 0 for a name that has none. */
static unsigned preflight_bit(const char *name)
{
    for (unsigned i = 0; i < 32; i++) {
        const char *n = plan_check_name(1u << i);
        if (!n)
            break;
        if (strcmp(n, name) == 0)
            return 1u << i;
    }
    return 0;
}

__attribute__((format(printf, 1, 0))) static char *preflight_vfmt(const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static char *preflight_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

ipw_status preflight_add(struct preflight_report *r, const struct plan *p, const char *name,
                         enum preflight_status status, const char *subject, const char *fix,
                         const char *lookup, const char *fmt, ...)
{
    if (r->n_checks == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct preflight_check *c = realloc(r->checks, cap * sizeof *c);
        if (!c)
            return IPW_ENOMEM;
        r->checks = c;
        r->cap = cap;
    }
    struct preflight_check *c = &r->checks[r->n_checks];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->status = status;
    c->required = p && (p->preflight_require & preflight_bit(name)) != 0;
    va_list ap;
    va_start(ap, fmt);
    c->detail = preflight_vfmt(fmt, ap);
    va_end(ap);
    c->subject = preflight_dup(subject);
    /* The subject of a per-IP check is the IP, or the IP and what was checked for it. */
    for (size_t k = 0; subject && p && k < p->n_source_ips && !c->ip; k++) {
        size_t n = strlen(p->source_ips[k]);
        if (strncmp(subject, p->source_ips[k], n) == 0 && (subject[n] == '\0' || subject[n] == ' '))
            c->ip = preflight_dup(p->source_ips[k]);
    }
    /* A fix and a look-up only mean something for a problem. */
    bool problem = status == PREFLIGHT_WARN || status == PREFLIGHT_FAIL;
    if (problem) {
        c->fix = preflight_dup(fix);
        c->lookup = preflight_dup(lookup);
    }
    bool ip_lost = false;
    for (size_t k = 0; subject && p && k < p->n_source_ips && !c->ip; k++)
        ip_lost = ip_lost || strcmp(subject, p->source_ips[k]) == 0;
    if (!c->detail || (subject && !c->subject) || (problem && fix && !c->fix) ||
        (problem && lookup && !c->lookup) || ip_lost) {
        free(c->detail);
        free(c->subject);
        free(c->ip);
        free(c->fix);
        free(c->lookup);
        return IPW_ENOMEM;
    }
    r->n_checks++;
    return IPW_OK;
}

void preflight_report_finish(struct preflight_report *r)
{
    r->required_failed = 0;
    for (size_t i = 0; i < r->n_checks; i++)
        if (r->checks[i].required && r->checks[i].status == PREFLIGHT_FAIL)
            r->required_failed++;
    r->ok = r->required_failed == 0;
}

size_t preflight_report_ips(const struct preflight_report *r, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_checks; i++) {
        const char *ip = r->checks[i].ip;
        bool seen = !ip;
        for (size_t k = 0; k < i && !seen; k++)
            seen = r->checks[k].ip && strcmp(r->checks[k].ip, ip) == 0;
        if (seen)
            continue;
        if (n < max)
            out[n] = ip;
        n++;
    }
    return n;
}

bool preflight_report_ip(const struct preflight_report *r, const char *ip, char *failed,
                         size_t failed_n, char *warned, size_t warned_n)
{
    bool ok = true;
    size_t kf = 0, kw = 0;
    if (failed_n)
        failed[0] = '\0';
    if (warned_n)
        warned[0] = '\0';
    for (size_t i = 0; i < r->n_checks; i++) {
        const struct preflight_check *c = &r->checks[i];
        if (!c->ip || strcmp(c->ip, ip) != 0)
            continue;
        char *buf = c->status == PREFLIGHT_FAIL ? failed : warned;
        size_t n = c->status == PREFLIGHT_FAIL ? failed_n : warned_n;
        size_t *k = c->status == PREFLIGHT_FAIL ? &kf : &kw;
        if (c->status == PREFLIGHT_FAIL && c->required)
            ok = false;
        if ((c->status != PREFLIGHT_FAIL && c->status != PREFLIGHT_WARN) || !buf || !n)
            continue;
        /* A name once, even when the check ran twice (SPF of two sender domains). */
        if (*k && strstr(buf, c->name))
            continue;
        int w = snprintf(buf + *k, n - *k, "%s%s", *k ? ", " : "", c->name);
        if (w > 0 && (size_t)w < n - *k)
            *k += (size_t)w;
    }
    return ok;
}

/* {"ip", "ok", "failed": [names], "warned": [names]} for ip. */
static void preflight_report_ip_json(const struct preflight_report *r, const char *ip,
                                     struct json *j)
{
    json_object_begin(j);
    json_kv_string(j, "ip", ip);
    bool ok = preflight_report_ip(r, ip, NULL, 0, NULL, 0);
    json_kv_bool(j, "ok", ok);
    for (int pass = 0; pass < 2; pass++) {
        enum preflight_status want = pass == 0 ? PREFLIGHT_FAIL : PREFLIGHT_WARN;
        json_key(j, pass == 0 ? "failed" : "warned");
        json_array_begin(j);
        for (size_t i = 0; i < r->n_checks; i++) {
            const struct preflight_check *c = &r->checks[i];
            if (!c->ip || strcmp(c->ip, ip) != 0 || c->status != want)
                continue;
            bool dup = false;
            for (size_t k = 0; k < i && !dup; k++)
                dup = r->checks[k].ip && strcmp(r->checks[k].ip, ip) == 0 &&
                      r->checks[k].status == want && strcmp(r->checks[k].name, c->name) == 0;
            if (!dup)
                json_string(j, c->name);
        }
        json_array_end(j);
    }
    json_object_end(j);
}

void preflight_report_json(const struct preflight_report *r, struct json *j)
{
    json_object_begin(j);
    json_kv_bool(j, "ok", r->ok);
    json_key(j, "checks");
    json_array_begin(j);
    for (size_t i = 0; i < r->n_checks; i++) {
        const struct preflight_check *c = &r->checks[i];
        json_object_begin(j);
        json_kv_string(j, "name", c->name);
        json_kv_string(j, "status", preflight_status_name(c->status));
        json_kv_bool(j, "required", c->required);
        json_kv_string(j, "detail", c->detail);
        json_kv_string(j, "subject", c->subject);
        json_kv_string(j, "fix", c->fix);
        json_kv_string(j, "lookup", c->lookup);
        json_kv_string(j, "ip", c->ip);
        json_object_end(j);
    }
    json_array_end(j);
    /* Per source IP: whether its own required checks passed, and which failed or warned. */
    json_key(j, "ips");
    json_array_begin(j);
    size_t n = preflight_report_ips(r, NULL, 0);
    const char **ips = n ? calloc(n, sizeof *ips) : NULL;
    if (ips) {
        preflight_report_ips(r, ips, n);
        for (size_t i = 0; i < n; i++)
            preflight_report_ip_json(r, ips[i], j);
        free(ips);
    }
    json_array_end(j);
    json_object_end(j);
}

char *preflight_report_json_string(const struct preflight_report *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    struct json j;
    json_init(&j, f, false);
    preflight_report_json(r, &j);
    struct err e;
    ipw_status s = json_finish(&j, &e);
    if (fclose(f) != 0 || s != IPW_OK) {
        free(buf);
        return NULL;
    }
    /* json_finish ends the document with a newline; the store keeps the document alone. */
    if (len > 0 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';
    return buf;
}
