/*
 * fields: "Name: value" blocks of report parts (RFC 3464 2.1, RFC 5965 3.1; see fields.h).
 *
 * One pass over the lines: a line that starts with a space or tab continues the field before it
 * (RFC 5322 2.2.3 unfolding), an empty line closes the group, a "Name:" line opens a field, and
 * anything else is skipped. Every count and length is bounded, so a hostile report costs at
 * most its own size in time and FIELDS_MAX_* in memory.
 */
#include "ipwarm/fields.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/chars.h"

void fields_free(struct fields *f)
{
    for (size_t i = 0; f->g && i < f->n; i++) {
        for (size_t j = 0; j < f->g[i].n; j++) {
            free(f->g[i].f[j].name);
            free(f->g[i].f[j].value);
        }
        free(f->g[i].f);
    }
    free(f->g);
    f->g = NULL;
    f->n = 0;
}

const char *fields_get(const struct fields_group *g, const char *name)
{
    for (size_t i = 0; g && i < g->n; i++)
        if (strcasecmp(g->f[i].name, name) == 0)
            return g->f[i].value;
    return NULL;
}

/* Appends len bytes to a value being built (cut at FIELDS_MAX_VALUE), a space between pieces. */
static bool fields_append(char **value, size_t *vlen, const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0)
        return true;
    size_t sep = *vlen ? 1 : 0;
    if (*vlen + sep >= FIELDS_MAX_VALUE)
        return true;
    if (*vlen + sep + len > FIELDS_MAX_VALUE)
        len = FIELDS_MAX_VALUE - *vlen - sep;
    char *v = realloc(*value, *vlen + sep + len + 1);
    if (!v)
        return false;
    if (sep)
        v[(*vlen)++] = ' ';
    for (size_t i = 0; i < len; i++) /* NUL and controls would cut or corrupt the value */
        v[(*vlen)++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    v[*vlen] = '\0';
    *value = v;
    return true;
}

ipw_status fields_parse(const char *text, size_t len, struct fields *out)
{
    out->g = NULL;
    out->n = 0;
    struct fields_group *cur = NULL;
    size_t vlen = 0; /* length of the value of the group's last field */
    bool in_field = false;
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        pos += llen + (nl ? 1 : 0);
        if (llen && line[llen - 1] == '\r')
            llen--;
        if (llen == 0 || strspn(line, " \t") == llen) {
            if (llen == 0 || !in_field) {
                cur = NULL; /* a blank line closes the group */
                in_field = false;
            }
            continue;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (in_field) {
                struct fields_field *f = &cur->f[cur->n - 1];
                if (!fields_append(&f->value, &vlen, line, llen))
                    goto oom;
            }
            continue;
        }
        size_t nlen = 0;
        while (nlen < llen && line[nlen] != ':' && (unsigned char)line[nlen] > 0x20 &&
               (unsigned char)line[nlen] < 0x7f)
            nlen++;
        if (nlen == 0 || nlen == llen || line[nlen] != ':') {
            in_field = false; /* not a field: skipped, and no continuation belongs to it */
            continue;
        }
        if (!cur) {
            if (out->n == FIELDS_MAX_GROUPS) {
                in_field = false;
                continue;
            }
            struct fields_group *g = realloc(out->g, (out->n + 1) * sizeof *g);
            if (!g)
                goto oom;
            out->g = g;
            cur = &out->g[out->n++];
            cur->f = NULL;
            cur->n = 0;
        }
        if (cur->n == FIELDS_MAX_FIELDS) {
            in_field = false;
            continue;
        }
        struct fields_field *f = realloc(cur->f, (cur->n + 1) * sizeof *f);
        if (!f)
            goto oom;
        cur->f = f;
        f = &cur->f[cur->n];
        f->name = malloc(nlen + 1);
        f->value = calloc(1, 1);
        if (!f->name || !f->value) {
            free(f->name);
            free(f->value);
            goto oom;
        }
        memcpy(f->name, line, nlen);
        f->name[nlen] = '\0';
        cur->n++;
        vlen = 0;
        in_field = true;
        if (!fields_append(&f->value, &vlen, line + nlen + 1, llen - nlen - 1))
            goto oom;
    }
    return IPW_OK;
oom:
    fields_free(out);
    return IPW_ENOMEM;
}

char *fields_value_copy(const char *s, size_t n, size_t max, unsigned how)
{
    if (!s || n == 0)
        return NULL;
    if (n > max)
        n = max;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (how & FIELDS_COPY_LOWER)
            c = (unsigned char)chars_lower(c);
        if ((how & FIELDS_COPY_PRINTABLE) && (c < 0x20 || c == 0x7f))
            c = ' ';
        d[i] = (char)c;
    }
    d[n] = '\0';
    return d;
}
