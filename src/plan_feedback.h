/*
 * plan_feedback: the plan's `feedback` and `seeds` sections (see plan_feedback.c), as plan.c
 * calls them. Not a public interface: only src/plan*.c include it.
 */
#ifndef IPWARM_PLAN_FEEDBACK_H
#define IPWARM_PLAN_FEEDBACK_H

#include "plan_value.h"

/* Walk the feedback and seeds sections (after the rest of the plan, so that
 * sender.return_path is known), set their defaults, check what needs the whole plan, and free
 * them. */
void plan_feedback_walk(struct plan_ctx *c, const plan_node *key, const plan_node *v);
void plan_seeds_walk(struct plan_ctx *c, const plan_node *key, const plan_node *v);
void plan_feedback_defaults(struct plan_ctx *c);
void plan_feedback_after(struct plan_ctx *c, const plan_node *root);
void plan_feedback_free(struct plan *p);

#endif
