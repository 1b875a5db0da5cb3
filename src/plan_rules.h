/*
 * plan_rules: the providers, ramps, reply rules and backoff of the plan and of the shipped
 * provider table, and their merge (plan_rules.c). Not a public interface: only src/plan*.c
 * include it. A walk of either file fills a struct plan_part; plan.c then merges the two parts
 * into struct plan and frees them.
 */
#ifndef IPWARM_PLAN_RULES_H
#define IPWARM_PLAN_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "plan_value.h"

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

/* Nodes of a ramp's start and max, for the max >= start message after merging. */
struct plan_ramp_nodes {
    const plan_node *start;
    const plan_node *max;
};

/* Free what a ramp, a provider and a rule own, and zero them. */
void plan_ramp_clear(struct plan_ramp *r);
void plan_provider_clear(struct plan_provider *pv);
void plan_rule_clear(struct plan_rule *r);

/* Reads the ramp keys given in m into r, flagging each in r->set. */
void plan_ramp_parse(struct plan_ctx *c, const plan_node *m, const char *path, struct plan_ramp *r,
                     struct plan_ramp_nodes *nodes);
/* Reports a ramp whose max is below its start (after the merge: either may come from the
 * shipped entry), at the node that set the offending key. */
void plan_ramp_check(struct plan_ctx *c, const char *file, int rank, const struct plan_ramp *r,
                     const struct plan_ramp_nodes *nodes, const char *path);

/* Read one list of provider entries or reply rules (the plan's or the table's) into part. */
void plan_providers_parse(struct plan_ctx *c, const plan_node *v, struct plan_part *part);
void plan_rules_parse(struct plan_ctx *c, const plan_node *v, const char *base,
                      struct plan_part *part);
/* The backoff section; its rules go to part like the table's. */
void plan_backoff_walk(struct plan_ctx *c, const plan_node *m, struct plan_part *part);

/* The merge: p->providers (the plan's entries first, then the shipped ones it did not name)
 * and p->rules (the table's first), then part_free releases what the merge did not take. */
void plan_merge_providers(struct plan_ctx *c, struct plan_part *plan, struct plan_part *table);
void plan_merge_rules(struct plan_ctx *c, struct plan_part *plan, struct plan_part *table);
void plan_part_free(struct plan_part *part);

#endif
