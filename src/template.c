/*
 * template: {{name}} placeholders (see template.h for the syntax).
 *
 * One scanner (template_next) splits a template into literal runs and placeholder names, so
 * that checking and expanding cannot disagree on what a placeholder is. Expansion writes into
 * a growable buffer; only the values, never the template's own text, are escaped or refused,
 * because the template is the sender's and the values come from a recipient list that may
 * hold anything. Header safety follows RFC 5322 2.2 (a CR or LF in a field body ends the
 * field); URI escaping follows RFC 3986 2.3 (only unreserved characters go through as is).
 */
#include "ipwarm/template.h"

#include "ipwarm/buf.h"
#include "ipwarm/chars.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const template_builtins[] = {"recipient", "seq", "date", "campaign", "token", NULL};

enum template_tok_kind { TEMPLATE_TOK_END = 0, TEMPLATE_TOK_TEXT, TEMPLATE_TOK_NAME };

struct template_tok {
    enum template_tok_kind kind;
    const char *p; /* the literal text, or the trimmed name */
    size_t len;
    int line; /* the line the token starts on */
};

/* "WHERE:LINE" or just "WHERE" when lines are not numbered (first_line 0). */
static void template_where(char *buf, size_t n, const char *where, int first_line, int line)
{
    if (first_line > 0)
        snprintf(buf, n, "%s:%d", where ? where : "template", first_line + line - 1);
    else
        snprintf(buf, n, "%s", where ? where : "template");
}

/*
 * Reads the next token of s at *i. line is the 1-based line of s[*i] and is advanced past the
 * newlines the token holds. A placeholder must close on its own line: a name never holds a
 * line break, so an unclosed "{{" is caught at once rather than swallowing the next lines.
 */
static ipw_status template_next(const char *s, size_t *i, int *line, struct template_tok *t,
                                const char *where, int first_line, struct err *e)
{
    size_t k = *i;
    t->line = *line;
    if (s[k] == '\0') {
        t->kind = TEMPLATE_TOK_END;
        return IPW_OK;
    }
    if (s[k] == '{' && s[k + 1] == '{') {
        if (s[k + 2] == '{' && s[k + 3] == '{') {
            /* "{{{{" is the escape for a literal "{{". */
            t->kind = TEMPLATE_TOK_TEXT;
            t->p = s + k;
            t->len = 2;
            *i = k + 4;
            return IPW_OK;
        }
        size_t j = k + 2;
        while (s[j] != '\0' && s[j] != '\n' && !(s[j] == '}' && s[j + 1] == '}'))
            j++;
        if (s[j] != '}') {
            char at[512];
            template_where(at, sizeof at, where, first_line, *line);
            size_t show = j - k > 40 ? 40 : j - k;
            while (show > 2 && (s[k + show - 1] == '\r' || s[k + show - 1] == ' '))
                show--;
            return err_set(e, IPW_EDATA,
                           "%s: unterminated placeholder \"%.*s\" (no \"}}\" on that line; "
                           "write {{{{ for a literal {{)",
                           at, (int)show, s + k);
        }
        const char *a = s + k + 2, *b = s + j;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a == b) {
            char at[512];
            template_where(at, sizeof at, where, first_line, *line);
            return err_set(e, IPW_EDATA, "%s: empty placeholder %.*s", at, (int)(j + 2 - k), s + k);
        }
        t->kind = TEMPLATE_TOK_NAME;
        t->p = a;
        t->len = (size_t)(b - a);
        *i = j + 2;
        return IPW_OK;
    }
    /* Literal text up to the next "{{", found with strchr and its line ends counted with
     * memchr: a body is expanded for every message, and a byte at a time was most of it. */
    const char *q = s + k, *stop;
    for (;;) {
        stop = strchr(q, '{');
        if (!stop || stop[1] == '{') {
            if (!stop)
                stop = q + strlen(q);
            break;
        }
        q = stop + 1;
    }
    for (const char *nl = s + k; (nl = memchr(nl, '\n', (size_t)(stop - nl))) != NULL; nl++)
        (*line)++;
    size_t j = (size_t)(stop - s);
    t->kind = TEMPLATE_TOK_TEXT;
    t->p = s + k;
    t->len = j - k;
    *i = j;
    return IPW_OK;
}

static bool template_name_is(const struct template_tok *t, const char *name)
{
    return strlen(name) == t->len && strncasecmp(t->p, name, t->len) == 0;
}

static int template_builtin_index(const struct template_tok *t)
{
    for (int k = 0; template_builtins[k]; k++)
        if (template_name_is(t, template_builtins[k]))
            return k;
    return -1;
}

static long template_column_index(const struct template_tok *t, const char *const *names, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (names && names[k] && template_name_is(t, names[k]))
            return (long)k;
    return -1;
}

static ipw_status template_unknown(const struct template_tok *t, const char *const *names, size_t n,
                                   const char *where, int first_line, struct err *e)
{
    char at[512];
    template_where(at, sizeof at, where, first_line, t->line);
    char known[1024];
    size_t used = 0;
    known[0] = '\0';
    for (int k = 0; template_builtins[k]; k++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "",
                         template_builtins[k]);
        if (w > 0 && (size_t)w < sizeof known - used)
            used += (size_t)w;
    }
    for (size_t k = 0; k < n; k++) {
        if (!names || !names[k] || !names[k][0])
            continue;
        int w = snprintf(known + used, sizeof known - used, ", %s", names[k]);
        if (w > 0 && (size_t)w < sizeof known - used)
            used += (size_t)w;
    }
    return err_set(e, IPW_EDATA, "%s: unknown placeholder {{%.*s}} (known: %s)", at, (int)t->len,
                   t->p, known);
}

ipw_status template_check_at(const char *text, const char *const *names, size_t n,
                             const char *where, int first_line, struct err *e)
{
    size_t i = 0;
    int line = 1;
    for (;;) {
        struct template_tok t;
        ipw_status s = template_next(text, &i, &line, &t, where, first_line, e);
        if (s)
            return s;
        if (t.kind == TEMPLATE_TOK_END)
            return IPW_OK;
        if (t.kind == TEMPLATE_TOK_NAME && template_builtin_index(&t) < 0 &&
            template_column_index(&t, names, n) < 0)
            return template_unknown(&t, names, n, where, first_line, e);
    }
}

ipw_status template_check(const char *text, const char *const *names, size_t n, const char *where,
                          struct err *e)
{
    return template_check_at(text, names, n, where, 1, e);
}

/* Appends value as the flags ask: escaped for HTML, percent-encoded for a URI. */
static void template_put_value(struct buf *b, const char *v, unsigned flags)
{
    if (!(flags & (TEMPLATE_HTML | TEMPLATE_URL))) {
        buf_str(b, v);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (flags & TEMPLATE_URL) {
            if (chars_is_unreserved(*p)) {
                buf_put(b, p, 1);
            } else {
                char hex[4];
                snprintf(hex, sizeof hex, "%%%02X", *p);
                buf_put(b, hex, 3);
            }
            continue;
        }
        const char *entity = chars_html_entity(*p);
        if (entity)
            buf_str(b, entity);
        else
            buf_put(b, p, 1);
    }
}

ipw_status template_expand(const char *text, const struct template_vars *v, unsigned flags,
                           const char *where, char **out, size_t *out_len, struct err *e)
{
    struct buf b = {0};
    ipw_status s = IPW_OK;
    size_t i = 0;
    int line = 1;
    *out = NULL;
    if (out_len)
        *out_len = 0;
    buf_put(&b, "", 0); /* an empty template still yields "" */
    for (;;) {
        struct template_tok t;
        s = template_next(text, &i, &line, &t, where, 1, e);
        if (s)
            goto done;
        if (t.kind == TEMPLATE_TOK_END)
            break;
        if (t.kind == TEMPLATE_TOK_TEXT) {
            buf_put(&b, t.p, t.len);
            continue;
        }
        const char *val = NULL;
        char num[24];
        int bi = template_builtin_index(&t);
        switch (bi) {
        case 0:
            val = v->recipient;
            break;
        case 1:
            snprintf(num, sizeof num, "%" PRId64, v->seq);
            val = num;
            break;
        case 2:
            val = v->date;
            break;
        case 3:
            val = v->campaign;
            break;
        case 4:
            val = v->token;
            break;
        default: {
            long ci = template_column_index(&t, v->names, v->n);
            if (ci < 0) {
                s = template_unknown(&t, v->names, v->n, where, 1, e);
                goto done;
            }
            val = v->values ? v->values[ci] : NULL;
            if (!val)
                val = ""; /* a column the record leaves empty */
            break;
        }
        }
        if (!val) {
            s = err_set(e, IPW_EUSAGE, "%s: no value given for {{%s}}", where ? where : "template",
                        template_builtins[bi]);
            goto done;
        }
        if ((flags & TEMPLATE_HEADER) && strpbrk(val, "\r\n")) {
            if (v->src)
                s = err_set(e, IPW_EDATA,
                            "%s:%ld: the value of {{%.*s}} contains a line break, refused in a "
                            "header",
                            v->src, v->src_line, (int)t.len, t.p);
            else
                s = err_set(e, IPW_EDATA,
                            "%s: the value of {{%.*s}} contains a line break, refused in a header",
                            where ? where : "template", (int)t.len, t.p);
            goto done;
        }
        template_put_value(&b, val, flags);
    }
    /* One check for every append above: the buffer's out-of-memory flag is sticky. */
    *out = buf_take(&b, out_len);
    if (!*out)
        return err_set(e, IPW_ENOMEM, "out of memory expanding %s", where ? where : "a template");
    return IPW_OK;
done:
    buf_free(&b);
    return s;
}
