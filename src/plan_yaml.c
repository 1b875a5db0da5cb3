/*
 * plan_yaml: libyaml's event stream built into a tree of nodes with their positions.
 *
 * The event API is used rather than yaml_parser_load() because the document API expands
 * nothing but also refuses nothing: it would happily build a billion-laughs graph of aliases
 * and keep no per-scalar length semantics we control. Here each event is judged as it comes,
 * so an alias, a tag or a 33rd nesting level stops the parse at once, in time proportional to
 * the bytes read so far. Containers are tracked on an explicit stack (no recursion while
 * building); freeing recurses, which the depth limit keeps shallow.
 */
#include "ipwarm/plan_yaml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct plan_yaml_builder {
    const char *file;
    const char *text;
    size_t text_len;
    struct plan_yaml_node *root;
    struct plan_yaml_node *stack[PLAN_YAML_MAX_DEPTH];
    int depth;
    size_t n_nodes;
    struct err *e;
};

void plan_yaml_free(struct plan_yaml_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            plan_yaml_free(n->keys[i]);
        if (n->items)
            plan_yaml_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->text);
    free(n);
}

/* The key path of the place being built, e.g. "providers[1].mx", so that a refused alias or
 * tag is reported like any other problem: with the key it was written under. */
static void plan_yaml_path(const struct plan_yaml_builder *b, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < b->depth && len + 1 < size; d++) {
        const struct plan_yaml_node *n = b->stack[d];
        /* an inner frame's container is already attached as its parent's last entry; the
         * innermost frame is where the next node goes */
        bool inner = d + 1 < b->depth;
        int w = 0;
        if (n->kind == PLAN_YAML_SEQUENCE) {
            w = snprintf(buf + len, size - len, "[%zu]", inner && n->n ? n->n - 1 : n->n);
        } else if (n->n > 0 && (inner || n->items[n->n - 1] == NULL) && n->keys[n->n - 1]->text) {
            const struct plan_yaml_node *k = n->keys[n->n - 1];
            w = snprintf(buf + len, size - len, "%s%.*s", len ? "." : "", (int)k->len, k->text);
            /* keep the path one printable line whatever the key holds */
            for (size_t i = len; i < size && buf[i]; i++)
                if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
                    buf[i] = '?';
        } else {
            break;
        }
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (len >= size)
        buf[size - 1] = '\0';
}

static ipw_status plan_yaml_fail(struct plan_yaml_builder *b, yaml_mark_t mark, const char *what)
{
    char path[256];
    plan_yaml_path(b, path, sizeof path);
    if (path[0])
        return err_append(b->e, IPW_ECONFIG, "%s:%zu:%zu: %s: %s", b->file, mark.line + 1,
                          mark.column + 1, path, what);
    return err_append(b->e, IPW_ECONFIG, "%s:%zu:%zu: %s", b->file, mark.line + 1, mark.column + 1,
                      what);
}

/* libyaml's own complaint (bad indentation, an unclosed quote, bytes that are not UTF-8). */
static ipw_status plan_yaml_syntax(struct plan_yaml_builder *b, const yaml_parser_t *ps)
{
    size_t line = ps->problem_mark.line + 1, col = ps->problem_mark.column + 1;
    if (ps->error == YAML_READER_ERROR) {
        /* the reader reports a byte offset, not a mark: count the lines up to it */
        line = 1;
        col = 1;
        for (size_t i = 0; i < ps->problem_offset && i < b->text_len; i++) {
            if (b->text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
    }
    const char *problem = ps->problem ? ps->problem : "unreadable input";
    if (ps->context)
        return err_append(b->e, IPW_ECONFIG,
                          "%s:%zu:%zu: invalid YAML: %s (%s that starts at line %zu, column %zu)",
                          b->file, line, col, problem, ps->context, ps->context_mark.line + 1,
                          ps->context_mark.column + 1);
    if (ps->error == YAML_READER_ERROR && ps->problem_value != -1)
        return err_append(b->e, IPW_ECONFIG, "%s:%zu:%zu: invalid YAML: %s (byte 0x%02X)", b->file,
                          line, col, problem, (unsigned)ps->problem_value & 0xffu);
    return err_append(b->e, IPW_ECONFIG, "%s:%zu:%zu: invalid YAML: %s", b->file, line, col,
                      problem);
}

static bool plan_yaml_grow(struct plan_yaml_node *parent, bool with_keys)
{
    if (parent->n < parent->cap)
        return true;
    size_t cap = parent->cap ? parent->cap * 2 : 4;
    struct plan_yaml_node **items = realloc(parent->items, cap * sizeof *items);
    if (!items)
        return false;
    parent->items = items;
    if (with_keys) {
        struct plan_yaml_node **keys = realloc(parent->keys, cap * sizeof *keys);
        if (!keys)
            return false;
        parent->keys = keys;
    }
    parent->cap = cap;
    return true;
}

/* Hangs a new node under the innermost open container: a list item, a mapping key (its value
 * slot stays NULL until the next node arrives) or a mapping value. */
static ipw_status plan_yaml_attach(struct plan_yaml_builder *b, struct plan_yaml_node *n)
{
    if (b->depth == 0) {
        b->root = n;
        return IPW_OK;
    }
    struct plan_yaml_node *top = b->stack[b->depth - 1];
    if (top->kind == PLAN_YAML_MAPPING && top->n > 0 && top->items[top->n - 1] == NULL) {
        top->items[top->n - 1] = n;
        return IPW_OK;
    }
    if (!plan_yaml_grow(top, top->kind == PLAN_YAML_MAPPING)) {
        plan_yaml_free(n);
        return err_append(b->e, IPW_ENOMEM, "out of memory reading %s", b->file);
    }
    if (top->kind == PLAN_YAML_MAPPING) {
        top->keys[top->n] = n;
        top->items[top->n] = NULL;
    } else {
        top->items[top->n] = n;
    }
    top->n++;
    return IPW_OK;
}

static ipw_status plan_yaml_node_new(struct plan_yaml_builder *b, const yaml_event_t *ev,
                                     enum plan_yaml_kind kind, struct plan_yaml_node **out)
{
    *out = NULL;
    if (++b->n_nodes > PLAN_YAML_MAX_NODES) {
        char what[96];
        snprintf(what, sizeof what, "expected at most %d values in a plan, found more",
                 PLAN_YAML_MAX_NODES);
        return plan_yaml_fail(b, ev->start_mark, what);
    }
    const yaml_char_t *tag = kind == PLAN_YAML_SCALAR    ? ev->data.scalar.tag
                             : kind == PLAN_YAML_MAPPING ? ev->data.mapping_start.tag
                                                         : ev->data.sequence_start.tag;
    if (tag) {
        char what[160];
        snprintf(what, sizeof what,
                 "YAML tags (%.60s) are not allowed in a plan: expected a plain value, found a "
                 "tagged one",
                 (const char *)tag);
        return plan_yaml_fail(b, ev->start_mark, what);
    }
    struct plan_yaml_node *n = calloc(1, sizeof *n);
    if (!n)
        return err_append(b->e, IPW_ENOMEM, "out of memory reading %s", b->file);
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    n->column = (int)ev->start_mark.column + 1;
    if (kind == PLAN_YAML_SCALAR) {
        size_t len = ev->data.scalar.length;
        n->text = malloc(len + 1);
        if (!n->text) {
            free(n);
            return err_append(b->e, IPW_ENOMEM, "out of memory reading %s", b->file);
        }
        memcpy(n->text, ev->data.scalar.value, len);
        n->text[len] = '\0';
        n->len = len;
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        n->null =
            !n->quoted && (len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
                           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0);
    }
    ipw_status st = plan_yaml_attach(b, n);
    if (st == IPW_OK)
        *out = n;
    return st;
}

static ipw_status plan_yaml_event(struct plan_yaml_builder *b, const yaml_event_t *ev,
                                  int *documents, bool *done)
{
    struct plan_yaml_node *n;
    ipw_status st;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*documents > 1)
            return plan_yaml_fail(b, ev->start_mark,
                                  "expected one YAML document, found a second one (a plan is "
                                  "one document)");
        return IPW_OK;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return IPW_OK;
    case YAML_ALIAS_EVENT: {
        char what[160];
        snprintf(what, sizeof what,
                 "YAML aliases (*%.40s) are not allowed in a plan: expected a value written out, "
                 "found an alias",
                 (const char *)ev->data.alias.anchor);
        return plan_yaml_fail(b, ev->start_mark, what);
    }
    case YAML_SCALAR_EVENT:
        return plan_yaml_node_new(b, ev, PLAN_YAML_SCALAR, &n);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (b->depth >= PLAN_YAML_MAX_DEPTH) {
            char what[96];
            snprintf(what, sizeof what, "expected at most %d levels of nesting, found more",
                     PLAN_YAML_MAX_DEPTH);
            return plan_yaml_fail(b, ev->start_mark, what);
        }
        st = plan_yaml_node_new(
            b, ev, ev->type == YAML_MAPPING_START_EVENT ? PLAN_YAML_MAPPING : PLAN_YAML_SEQUENCE,
            &n);
        if (st != IPW_OK)
            return st;
        b->stack[b->depth++] = n;
        return IPW_OK;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return IPW_OK;
    default:
        return IPW_OK;
    }
}

ipw_status plan_yaml_parse(const char *text, size_t len, const char *file,
                           struct plan_yaml_node **root, struct err *e)
{
    *root = NULL;
    struct plan_yaml_builder b = {.file = file, .text = text, .text_len = len, .e = e};
    if (len > PLAN_YAML_MAX_BYTES)
        return err_append(e, IPW_ECONFIG,
                          "%s:1:1: expected a plan of at most %d bytes, found a larger one", file,
                          PLAN_YAML_MAX_BYTES);

    yaml_parser_t ps;
    if (!yaml_parser_initialize(&ps))
        return err_append(e, IPW_ENOMEM, "out of memory reading %s", file);
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);

    ipw_status st = IPW_OK;
    int documents = 0;
    bool done = false;
    while (!done && st == IPW_OK) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&ps, &ev)) {
            st = ps.error == YAML_MEMORY_ERROR
                     ? err_append(e, IPW_ENOMEM, "out of memory reading %s", file)
                     : plan_yaml_syntax(&b, &ps);
            break;
        }
        st = plan_yaml_event(&b, &ev, &documents, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&ps);
    if (st != IPW_OK) {
        plan_yaml_free(b.root);
        return st;
    }
    *root = b.root;
    return IPW_OK;
}
