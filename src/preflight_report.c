/*
 * preflight_report: the pre-flight report (see preflight_report.h): appending checks, whether
 * the required ones passed, and the `check --json` document (RFC 8259).
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
    /* A fix and a look-up only mean something for a problem. */
    bool problem = status == PREFLIGHT_WARN || status == PREFLIGHT_FAIL;
    if (problem) {
        c->fix = preflight_dup(fix);
        c->lookup = preflight_dup(lookup);
    }
    if (!c->detail || (subject && !c->subject) || (problem && fix && !c->fix) ||
        (problem && lookup && !c->lookup)) {
        free(c->detail);
        free(c->subject);
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
        json_object_end(j);
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
