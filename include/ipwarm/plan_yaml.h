/*
 * plan_yaml: a YAML document read into a small tree of mappings, lists and scalars.
 *
 * The plan loader (plan.c) walks this tree against its schema; this module only turns text
 * into nodes that remember where they were written. It is deliberately stricter than YAML:
 * a plan is one document of plain data, so aliases (the billion-laughs vector), explicit tags
 * and second documents are refused, and nesting depth, node count and size are bounded, so
 * that hostile input fails fast with a FILE:LINE:COLUMN sentence like any other mistake.
 */
#ifndef IPWARM_PLAN_YAML_H
#define IPWARM_PLAN_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/err.h"

/* Limits on hostile input; a real plan is a few kilobytes and five levels deep. */
#define PLAN_YAML_MAX_BYTES (1024 * 1024)
#define PLAN_YAML_MAX_DEPTH 32
#define PLAN_YAML_MAX_NODES 100000

enum plan_yaml_kind { PLAN_YAML_SCALAR = 0, PLAN_YAML_MAPPING, PLAN_YAML_SEQUENCE };

struct plan_yaml_node {
    enum plan_yaml_kind kind;
    int line;   /* 1-based, where the node starts */
    int column; /* 1-based */
    /* Scalars: the value, NUL-terminated for convenience, but it may hold NULs from "\0"
     * escapes, so len is the truth. */
    char *text;
    size_t len;
    bool quoted; /* written in quotes or as a block scalar (| or >), not plain */
    bool null;   /* plain and empty, "~" or "null": YAML's null */
    /* Mappings: keys[i] maps to items[i]. Sequences: items[i], keys is NULL. */
    struct plan_yaml_node **keys;
    struct plan_yaml_node **items;
    size_t n;
    size_t cap;
};

/*
 * Parses text (len bytes, need not be NUL-terminated) into *root. file names the text in
 * messages. Returns IPW_OK; IPW_ECONFIG with one "FILE:LINE:COLUMN: ..." line appended to e
 * (invalid YAML, aliases, tags, several documents, limits exceeded); IPW_ENOMEM. An empty
 * document gives IPW_OK and *root NULL; the caller decides what that means.
 */
ipw_status plan_yaml_parse(const char *text, size_t len, const char *file,
                           struct plan_yaml_node **root, struct err *e);

/* Frees a tree; NULL is fine. */
void plan_yaml_free(struct plan_yaml_node *n);

#endif
