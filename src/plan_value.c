/*
 * plan_value: the plan walker's tools, shared by plan.c and every section file: memory that
 * records an out-of-memory once, the list of problems (collected, sorted by position, at most
 * PLAN_MAX_SHOWN printed), key paths, mappings with unknown-key suggestions, the typed readers
 * (strings, numbers, durations, rates, percentages, booleans, enums, lists, files, addresses),
 * built on the validators of plain strings in plan_valid.c. Each reader reports its own problem
 * as FILE:LINE:COLUMN: key.path: expected ..., found ... and returns false, so a section only
 * says what it expects.
 */
#include "plan_value.h"

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
#include "ipwarm/units.h"

#define PLAN_MAX_KEYS 32 /* known keys of one mapping (the top level has 17) */

/* ---------------------------------------------------------------------------------------- */
/* Memory */

void *plan_alloc(struct plan_ctx *c, size_t size)
{
    void *m = calloc(1, size ? size : 1);
    if (!m)
        c->oom = true;
    return m;
}

char *plan_strndup(struct plan_ctx *c, const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) {
        c->oom = true;
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *plan_strdup(struct plan_ctx *c, const char *s)
{
    return s ? plan_strndup(c, s, strlen(s)) : NULL;
}

/* Joins two strings with a separator into a new string. */
char *plan_concat(struct plan_ctx *c, const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *d = malloc(la + ls + lb + 1);
    if (!d) {
        c->oom = true;
        return NULL;
    }
    memcpy(d, a, la);
    memcpy(d + la, sep, ls);
    memcpy(d + la + ls, b, lb + 1);
    return d;
}

void plan_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* ---------------------------------------------------------------------------------------- */
/* Problems */

/* Quotes a value for a message: escapes controls so that the message itself stays one line
 * and cannot be used to forge further lines, and truncates long values. */
const char *plan_show(const plan_node *v, char *buf, size_t size)
{
    if (!v)
        return "nothing";
    if (v->kind == PLAN_YAML_MAPPING)
        return v->n ? "a mapping" : "an empty mapping";
    if (v->kind == PLAN_YAML_SEQUENCE)
        return v->n ? "a list" : "an empty list";
    if (v->null)
        return "an empty value";
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; i < v->len && o + 8 < size; i++) {
        unsigned char ch = (unsigned char)v->text[i];
        if (i >= PLAN_SHOW_MAX) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        const char *esc = ch == '\r'   ? "\\r"
                          : ch == '\n' ? "\\n"
                          : ch == '\t' ? "\\t"
                          : ch == 0    ? "\\0"
                          : ch == '"'  ? "\\\""
                          : ch == '\\' ? "\\\\"
                                       : NULL;
        if (esc) {
            size_t l = strlen(esc);
            memcpy(buf + o, esc, l);
            o += l;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02X", ch);
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void plan_note(struct plan_ctx *c, int rank, int line, int column, char *text)
{
    c->n_total++;
    if (!text)
        return;
    if (c->n_problems == c->cap_problems) {
        if (c->n_problems >= PLAN_MAX_KEPT) {
            free(text);
            return;
        }
        size_t cap = c->cap_problems ? c->cap_problems * 2 : 16;
        struct plan_problem *np = realloc(c->problems, cap * sizeof *np);
        if (!np) {
            c->oom = true;
            free(text);
            return;
        }
        c->problems = np;
        c->cap_problems = cap;
    }
    c->problems[c->n_problems] = (struct plan_problem){
        .rank = rank, .line = line, .column = column, .seq = c->n_total, .text = text};
    c->n_problems++;
}

__attribute__((format(printf, 6, 0))) static void
plan_vfail_in(struct plan_ctx *c, const char *file, int rank, const plan_node *at, const char *path,
              const char *fmt, va_list ap)
{
    char tail[1024];
    vsnprintf(tail, sizeof tail, fmt, ap);
    int line = at ? at->line : 1, column = at ? at->column : 1;
    char head[PLAN_PATH_MAX + 300];
    if (path && path[0])
        snprintf(head, sizeof head, "%s:%d:%d: %s: ", file, line, column, path);
    else
        snprintf(head, sizeof head, "%s:%d:%d: ", file, line, column);
    plan_note(c, rank, line, column, plan_concat(c, head, "", tail));
}

__attribute__((format(printf, 4, 5))) void plan_fail(struct plan_ctx *c, const plan_node *at,
                                                     const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plan_vfail_in(c, c->file, c->rank, at, path, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 6, 7))) void plan_fail_in(struct plan_ctx *c, const char *file,
                                                        int rank, const plan_node *at,
                                                        const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plan_vfail_in(c, file, rank, at, path, fmt, ap);
    va_end(ap);
}

static int plan_problem_cmp(const void *a, const void *b)
{
    const struct plan_problem *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the collected problems into e, in file order, and frees them. */
ipw_status plan_report(struct plan_ctx *c, struct err *e)
{
    if (c->n_problems > 1)
        qsort(c->problems, c->n_problems, sizeof *c->problems, plan_problem_cmp);
    size_t shown = 0, used = strlen(e->msg);
    bool full = false;
    for (size_t i = 0; i < c->n_problems; i++) {
        size_t len = strlen(c->problems[i].text);
        /* whole lines only, leaving room for the count of the rest */
        full = full || shown >= PLAN_MAX_SHOWN || used + len + 1 + 64 >= sizeof e->msg;
        if (!full) {
            err_append(e, IPW_ECONFIG, "%s", c->problems[i].text);
            used += len + (used ? 1 : 0);
            shown++;
        }
        free(c->problems[i].text);
    }
    free(c->problems);
    c->problems = NULL;
    c->n_problems = c->cap_problems = 0;
    if (c->n_total > shown)
        err_append(e, IPW_ECONFIG, "... and %zu more problems", c->n_total - shown);
    return c->n_total ? IPW_ECONFIG : IPW_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Key paths and mappings */

/* Writes parent, sep (only when parent is not empty) and len bytes of tail into buf, cut at
 * PLAN_PATH_MAX; bytes that would break the message's single line become '?'. */
void plan_path_join(char *buf, const char *parent, const char *sep, const char *tail, size_t len)
{
    size_t o = 0, pl = strlen(parent);
    if (buf != parent) {
        o = pl < PLAN_PATH_MAX - 1 ? pl : PLAN_PATH_MAX - 1;
        memmove(buf, parent, o);
    } else {
        o = pl;
    }
    for (const char *s = pl ? sep : ""; *s && o + 1 < PLAN_PATH_MAX; s++)
        buf[o++] = *s;
    for (size_t i = 0; i < len && o + 1 < PLAN_PATH_MAX; i++) {
        unsigned char ch = (unsigned char)tail[i];
        buf[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    buf[o] = '\0';
}

static void plan_path_key(char *buf, const char *parent, const plan_node *key)
{
    if (key->kind != PLAN_YAML_SCALAR)
        plan_path_join(buf, parent, ".", "?", 1);
    else
        plan_path_join(buf, parent, ".", key->text, key->len > 64 ? 64 : key->len);
}

void plan_path(char *buf, const char *parent, const char *key)
{
    plan_path_join(buf, parent, ".", key, strlen(key));
}

void plan_path_index(char *buf, const char *parent, size_t i)
{
    char idx[32];
    int n = snprintf(idx, sizeof idx, "[%zu]", i);
    plan_path_join(buf, parent, "", idx, n > 0 ? (size_t)n : 0);
}

bool plan_key_is(const plan_node *k, const char *name)
{
    return k->kind == PLAN_YAML_SCALAR && k->len == strlen(name) &&
           memcmp(k->text, name, k->len) == 0;
}

/* The value of the first key called name in mapping m (duplicates are refused elsewhere), and
 * the key node itself through *key_out, or NULL. */
const plan_node *plan_get2(const plan_node *m, const char *name, const plan_node **key_out)
{
    if (key_out)
        *key_out = NULL;
    if (!m || m->kind != PLAN_YAML_MAPPING)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        if (plan_key_is(m->keys[i], name)) {
            if (key_out)
                *key_out = m->keys[i];
            return m->items[i];
        }
    }
    return NULL;
}

const plan_node *plan_get(const plan_node *m, const char *name)
{
    return plan_get2(m, name, NULL);
}

/* Optimal string alignment distance (Damerau-Levenshtein without repeated edits of one
 * substring), enough to catch the usual typos: a missing, extra, wrong or swapped letter. */
static size_t plan_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost =
                chars_lower((unsigned char)a[i - 1]) == chars_lower((unsigned char)b[j - 1]) ? 0
                                                                                             : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The known name nearest to s within two edits, or NULL. */
const char *plan_nearest(const char *s, size_t len, const char *const *known)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; known[i]; i++) {
        size_t d = plan_distance(s, len, known[i]);
        /* a one- or two-letter word is two edits from almost anything: demand closer */
        if (d < best_d && d < strlen(known[i])) {
            best = known[i];
            best_d = d;
        }
    }
    return best;
}

/* "a, b, c or d" */
static void plan_list_names(char *buf, size_t size, const char *const *names)
{
    size_t n = 0, o = 0;
    while (names[n])
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < size; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + o, size - o, "%s%s", sep, names[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

static bool plan_is_password_key(const plan_node *k)
{
    if (k->kind != PLAN_YAML_SCALAR)
        return false;
    char low[32];
    if (k->len >= sizeof low)
        return false;
    for (size_t i = 0; i < k->len; i++)
        low[i] = (char)chars_lower((unsigned char)k->text[i]);
    low[k->len] = '\0';
    return strstr(low, "password") || strcmp(low, "pass") == 0 || strcmp(low, "passwd") == 0 ||
           strcmp(low, "secret") == 0 || strcmp(low, "pw") == 0;
}

/*
 * Checks that v is a mapping whose keys are all known and given once. what describes the
 * mapping for the message when it is something else. Returns false (reported) when v is not a
 * mapping; unknown and duplicate keys are reported but the known ones are still walked.
 */
bool plan_mapping(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
                  const char *const *known)
{
    if (v->kind != PLAN_YAML_MAPPING) {
        plan_fail(c, v, path, "expected %s, found %s", what, PLAN_SHOW(v));
        return false;
    }
    /* where each known key was first seen: duplicates are found in O(keys), not O(keys^2),
     * so that a hostile mapping of 50,000 keys costs no more than reading it */
    const plan_node *first[PLAN_MAX_KEYS] = {0};
    for (size_t i = 0; i < v->n; i++) {
        const plan_node *k = v->keys[i];
        if (c->n_total >= PLAN_MAX_KEPT) {
            /* enough said: count the rest without the cost of suggestions */
            c->n_total += v->n - i;
            break;
        }
        char kp[PLAN_PATH_MAX];
        plan_path_key(kp, path, k);
        if (k->kind != PLAN_YAML_SCALAR || k->null) {
            plan_fail(c, k, path, "expected a key name, found %s", PLAN_SHOW(k));
            continue;
        }
        size_t j = 0;
        while (j < PLAN_MAX_KEYS && known[j] && !plan_key_is(k, known[j]))
            j++;
        if (j < PLAN_MAX_KEYS && known[j]) {
            if (first[j])
                plan_fail(c, k, kp,
                          "duplicate key: expected it once, found it again (first at line %d, "
                          "column %d)",
                          first[j]->line, first[j]->column);
            else
                first[j] = k;
            continue;
        }
        if (plan_is_password_key(k)) {
            bool here = false;
            for (size_t x = 0; known[x]; x++)
                here = here || strcmp(known[x], "password_env") == 0;
            plan_fail(c, k, kp,
                      "inline passwords are not allowed: use password_env or password_file%s",
                      here ? "" : " (under transport.relay, feedback.mailbox or a seed)");
        } else {
            const char *near = plan_nearest(k->text, k->len, known);
            char names[512];
            if (near) {
                plan_fail(c, k, kp, "unknown key; did you mean \"%s\"?", near);
            } else {
                plan_list_names(names, sizeof names, known);
                plan_fail(c, k, kp, "unknown key; expected one of %s", names);
            }
        }
    }
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Scalars */

bool plan_scalar(struct plan_ctx *c, const plan_node *v, const char *path, const char *what)
{
    if (v->kind == PLAN_YAML_SCALAR && !v->null)
        return true;
    plan_fail(c, v, path, "expected %s, found %s", what, PLAN_SHOW(v));
    return false;
}

/* Refuses control characters: the plan's strings reach headers and SMTP commands. */
bool plan_clean(struct plan_ctx *c, const plan_node *v, const char *path, bool multiline)
{
    for (size_t i = 0; i < v->len; i++) {
        unsigned char ch = (unsigned char)v->text[i];
        if (ch == 0 || (!multiline && (ch == '\r' || ch == '\n'))) {
            plan_fail(c, v, path,
                      "control characters CR/LF/NUL are not allowed (they could inject mail "
                      "headers or SMTP commands): expected %s, found %s",
                      multiline ? "text without NUL" : "one line of text", PLAN_SHOW(v));
            return false;
        }
        if ((ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7f) {
            plan_fail(c, v, path, "expected text without control characters, found %s",
                      PLAN_SHOW(v));
            return false;
        }
    }
    return true;
}

/* A one-line string; *out is replaced. */
bool plan_str(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
              char **out)
{
    if (!plan_scalar(c, v, path, what) || !plan_clean(c, v, path, false))
        return false;
    if (v->len == 0) {
        plan_fail(c, v, path, "expected %s, found an empty string", what);
        return false;
    }
    free(*out);
    *out = plan_strndup(c, v->text, v->len);
    return true;
}

bool plan_int(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
              int64_t min, int64_t max, int64_t *out)
{
    if (!plan_scalar(c, v, path, what))
        return false;
    const char *s = v->text;
    char *end = NULL;
    errno = 0;
    long long x = (chars_is_digit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+')
                      ? strtoll(s, &end, 10)
                      : 0;
    if (!end || end == s || *end || (size_t)(end - s) != v->len || errno || x < min || x > max) {
        plan_fail(c, v, path, "expected %s, found %s", what, PLAN_SHOW(v));
        return false;
    }
    *out = x;
    return true;
}

/* A finite decimal number in the range lo..hi; lo_open/hi_open exclude the bound. */
bool plan_number(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
                 double lo, bool lo_open, double hi, bool hi_open, double *out)
{
    if (!plan_scalar(c, v, path, what))
        return false;
    const char *s = v->text;
    char *end = NULL;
    double x = 0;
    /* strtod also reads "inf", "nan" and hex floats: only plain decimals are numbers here */
    bool plain = strspn(s, "0123456789.+-eE") == v->len && v->len > 0;
    if (plain)
        x = strtod(s, &end);
    if (!plain || !end || *end || !isfinite(x) || x < lo || (lo_open && x == lo) || x > hi ||
        (hi_open && x == hi)) {
        plan_fail(c, v, path, "expected %s, found %s", what, PLAN_SHOW(v));
        return false;
    }
    *out = x;
    return true;
}

bool plan_bool(struct plan_ctx *c, const plan_node *v, const char *path, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    if (!plan_scalar(c, v, path, "true or false"))
        return false;
    for (size_t i = 0; yes[i]; i++) {
        if (strcasecmp(v->text, yes[i]) == 0 && strlen(yes[i]) == v->len) {
            *out = true;
            return true;
        }
        if (strcasecmp(v->text, no[i]) == 0 && strlen(no[i]) == v->len) {
            *out = false;
            return true;
        }
    }
    plan_fail(c, v, path, "expected true or false, found %s", PLAN_SHOW(v));
    return false;
}

/* One of names (exact, lower case); *out is its index. */
bool plan_enum(struct plan_ctx *c, const plan_node *v, const char *path, const char *const *names,
               int *out)
{
    char list[256];
    plan_list_names(list, sizeof list, names);
    if (!plan_scalar(c, v, path, list))
        return false;
    for (int i = 0; names[i]; i++) {
        if (plan_key_is(v, names[i])) {
            *out = i;
            return true;
        }
    }
    const char *near = plan_nearest(v->text, v->len, names);
    if (near)
        plan_fail(c, v, path, "expected %s, found %s (did you mean \"%s\"?)", list, PLAN_SHOW(v),
                  near);
    else
        plan_fail(c, v, path, "expected %s, found %s", list, PLAN_SHOW(v));
    return false;
}

bool plan_rate(struct plan_ctx *c, const plan_node *v, const char *path, double *out)
{
    if (!plan_scalar(c, v, path, "a rate such as 5/min, 300/h or 2000/day") ||
        !plan_clean(c, v, path, false))
        return false;
    struct err ue = {0};
    if (units_parse_rate(v->text, out, &ue) != IPW_OK) {
        plan_fail(c, v, path, "%s", ue.msg);
        return false;
    }
    if (!(*out > 0)) {
        plan_fail(c, v, path, "expected a rate > 0, found %s", PLAN_SHOW(v));
        return false;
    }
    return true;
}

/* A duration; positive refuses zero, where zero would mean "never" or "spin". */
bool plan_duration(struct plan_ctx *c, const plan_node *v, const char *path, bool positive,
                   int64_t *out)
{
    if (!plan_scalar(c, v, path, "a duration such as 30s, 15m, 2h or 3d") ||
        !plan_clean(c, v, path, false))
        return false;
    struct err ue = {0};
    if (units_parse_duration(v->text, out, &ue) != IPW_OK) {
        plan_fail(c, v, path, "%s", ue.msg);
        return false;
    }
    if (positive && *out <= 0) {
        plan_fail(c, v, path, "expected a duration > 0 such as 30s, 15m, 2h or 3d, found %s",
                  PLAN_SHOW(v));
        return false;
    }
    return true;
}

bool plan_percent(struct plan_ctx *c, const plan_node *v, const char *path, double *out)
{
    if (!plan_scalar(c, v, path, "a percentage from 0 to 100 % such as 5%") ||
        !plan_clean(c, v, path, false))
        return false;
    struct err ue = {0};
    if (units_parse_percent(v->text, out, &ue) != IPW_OK) {
        plan_fail(c, v, path, "%s", ue.msg);
        return false;
    }
    return true;
}

/* The items of a list. Keys that take "one or a list of them" (schedule.hours, a rule's
 * provider, ...) handle the single scalar themselves before calling this. */
bool plan_items(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
                plan_node *const **items, size_t *n)
{
    if (v->kind == PLAN_YAML_SEQUENCE) {
        *items = v->items;
        *n = v->n;
        return true;
    }
    plan_fail(c, v, path, "expected %s, found %s", what, PLAN_SHOW(v));
    return false;
}

/*
 * Splits a From value, "Display Name <addr-spec>", "\"Quoted, Name\" <addr-spec>",
 * "<addr-spec>" or a bare addr-spec, into a display name (unquoted, NULL if none) and the
 * address. Returns false when it is none of these.
 */
bool plan_mailbox_split(struct plan_ctx *c, const char *s, size_t len, char **name, char **addr)
{
    *name = NULL;
    *addr = NULL;
    plan_trim(&s, &len);
    if (len == 0)
        return false;
    if (s[len - 1] != '>') {
        if (!plan_addr_spec_valid(s, len))
            return false;
        *addr = plan_strndup(c, s, len);
        return true;
    }
    /* find the '<' that opens the address: the first one outside a quoted display name */
    size_t lt = len;
    bool quoted = false;
    for (size_t i = 0; i + 1 < len; i++) {
        if (quoted && s[i] == '\\')
            i++;
        else if (s[i] == '"')
            quoted = !quoted;
        else if (!quoted && s[i] == '<') {
            lt = i;
            break;
        }
    }
    if (lt == len)
        return false;
    const char *a = s + lt + 1;
    size_t al = len - lt - 2;
    if (memchr(a, '<', al) || memchr(a, '>', al) || !plan_addr_spec_valid(a, al))
        return false;
    const char *n = s;
    size_t nl = lt;
    plan_trim(&n, &nl);
    if (nl > 0) {
        char *d = plan_alloc(c, nl + 1);
        if (!d)
            return false;
        size_t o = 0;
        if (n[0] == '"') {
            if (nl < 2 || n[nl - 1] != '"') {
                free(d);
                return false;
            }
            for (size_t i = 1; i + 1 < nl; i++) {
                if (n[i] == '\\' && i + 2 < nl)
                    i++;
                else if (n[i] == '"') {
                    free(d);
                    return false;
                }
                d[o++] = n[i];
            }
        } else {
            /* an unquoted phrase: atoms, spaces, dots (obs-phrase) and UTF-8 (RFC 6532) */
            for (size_t i = 0; i < nl; i++) {
                unsigned char ch = (unsigned char)n[i];
                if (!(chars_is_atext(ch) || ch == ' ' || ch == '\t' || ch == '.' || ch >= 0x80)) {
                    free(d);
                    return false;
                }
                d[o++] = n[i];
            }
        }
        d[o] = '\0';
        *name = d;
    }
    *addr = plan_strndup(c, a, al);
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Typed values built from the validators */

bool plan_domain(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
                 char **out)
{
    char *s = NULL;
    if (!plan_str(c, v, path, what, &s))
        return false;
    if (!plan_domain_valid(s, strlen(s), 2, true)) {
        plan_fail(c, v, path, "expected %s, found %s", what, PLAN_SHOW(v));
        free(s);
        return false;
    }
    for (char *q = s; *q; q++)
        *q = (char)chars_lower((unsigned char)*q);
    free(*out);
    *out = s;
    return true;
}

bool plan_ip(struct plan_ctx *c, const plan_node *v, const char *path, char **out)
{
    const char *what = "an IPv4 or IPv6 address such as 192.0.2.10 or 2001:db8::10";
    char *s = NULL;
    if (!plan_str(c, v, path, what, &s))
        return false;
    if (!plan_ip_valid(s)) {
        plan_fail(c, v, path, "expected %s, found %s", what, PLAN_SHOW(v));
        free(s);
        return false;
    }
    free(*out);
    *out = s;
    return true;
}

bool plan_addr(struct plan_ctx *c, const plan_node *v, const char *path, char **out)
{
    const char *what = "an address such as user@example.com";
    char *s = NULL;
    if (!plan_str(c, v, path, what, &s))
        return false;
    const char *a = s;
    size_t al = strlen(s);
    /* "<user@example.com>" is how the address appears in MAIL FROM: accept it too */
    if (al >= 2 && a[0] == '<' && a[al - 1] == '>') {
        a++;
        al -= 2;
    }
    if (!plan_addr_spec_valid(a, al)) {
        plan_fail(c, v, path, "expected %s, found %s", what, PLAN_SHOW(v));
        free(s);
        return false;
    }
    free(*out);
    *out = plan_strndup(c, a, al);
    free(s);
    return true;
}

/* Removes "." and "//" and folds "dir/.." in an absolute path, in place, so that names shown
 * to users read /plans/keys/a.pem rather than /plans/good/../keys/a.pem. Lexical only: the
 * plan's own directory is already a realpath, and symlinks below it are the user's to keep. */
static void plan_normalize(char *path)
{
    size_t o = 0; /* output so far, "/seg/seg"; never longer than the input read */
    const char *s = path;
    for (;;) {
        while (*s == '/')
            s++;
        size_t n = strcspn(s, "/");
        if (n == 0)
            break;
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && path[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else if (!(n == 1 && s[0] == '.')) {
            path[o++] = '/';
            memmove(path + o, s, n);
            o += n;
        }
        s += n;
    }
    if (o == 0)
        path[o++] = '/';
    path[o] = '\0';
}

/* A file name resolved against the plan's directory; readable says it must exist now. */
bool plan_file(struct plan_ctx *c, const plan_node *v, const char *path, bool readable, char **out)
{
    char *s = NULL;
    if (!plan_str(c, v, path, "a file name", &s))
        return false;
    char *abs = s[0] == '/' ? plan_strdup(c, s) : plan_concat(c, c->dir, "/", s);
    free(s);
    if (!abs)
        return false;
    plan_normalize(abs);
    if (readable) {
        /* Never blocks: a FIFO or a device named here is refused, not read (infile.h). The
         * recipient list is judged by its reader (recipients.c), and the built-in plan of the
         * lookup commands names /dev/null there: any readable kind passes here. */
        const char *kind;
        int fd = infile_open_fd(abs, &kind);
        if (fd < 0 && kind && errno != EISDIR && strcmp(path, "recipients.file") == 0)
            fd = open(abs, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (kind && err != EISDIR)
                plan_fail(c, v, path, "expected a regular file, found %s (%s is %s)", PLAN_SHOW(v),
                          abs, kind);
            else
                plan_fail(c, v, path, "expected a readable file, found %s (%s: %s)", PLAN_SHOW(v),
                          abs, strerror(err));
            free(abs);
            return false;
        }
        close(fd);
    }
    free(*out);
    *out = abs;
    return true;
}

/* Records a warning for a password file that other users may read (secret.h): the plan is
 * valid, but the command that loaded it says so. */
void plan_warn_secret_file(struct plan_ctx *c, const char *path, const char *key)
{
    char warn[PATH_MAX + 256];
    if (!secret_file_warning(path, key, warn, sizeof warn))
        return;
    struct plan *p = c->p;
    char **w = realloc(p->warnings, (p->n_warnings + 1) * sizeof *w);
    if (!w) {
        c->oom = true;
        return;
    }
    p->warnings = w;
    if ((w[p->n_warnings] = plan_strdup(c, warn)))
        p->n_warnings++;
}

/* Collects a list of strings (or one string when single) with check() judging each item. */
bool plan_strv(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
               bool single, bool (*check)(const char *, size_t), bool lower, char ***out,
               size_t *n_out)
{
    const plan_node *one = v;
    plan_node *const *items;
    size_t n;
    if (v->kind == PLAN_YAML_SCALAR && single && !v->null) {
        items = (plan_node *const *)&one;
        n = 1;
    } else if (!plan_items(c, v, path, what, &items, &n)) {
        return false;
    }
    char **list = plan_alloc(c, (n ? n : 1) * sizeof *list);
    if (!list)
        return false;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        char ip[PLAN_PATH_MAX];
        if (v->kind == PLAN_YAML_SEQUENCE)
            plan_path_index(ip, path, i);
        else
            plan_path_join(ip, path, "", "", 0);
        char *s = NULL;
        if (!plan_str(c, items[i], ip, what, &s)) {
            ok = false;
            continue;
        }
        if (check && !check(s, strlen(s))) {
            plan_fail(c, items[i], ip, "expected %s, found %s", what, PLAN_SHOW(items[i]));
            free(s);
            ok = false;
            continue;
        }
        if (lower)
            for (char *q = s; *q; q++)
                *q = (char)chars_lower((unsigned char)*q);
        list[i] = s;
    }
    if (!ok) {
        plan_strv_free(list, n);
        return false;
    }
    plan_strv_free(*out, *n_out);
    *out = list;
    *n_out = n;
    return true;
}
