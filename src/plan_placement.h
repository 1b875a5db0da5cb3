/*
 * plan_placement: the plan's `placement` section (see plan_placement.c), as plan.c calls it.
 * Not a public interface: only src/plan*.c include it.
 */
#ifndef IPWARM_PLAN_PLACEMENT_H
#define IPWARM_PLAN_PLACEMENT_H

#include "plan_value.h"

/* Walks the placement section (the sharp-fall throttle). */
void plan_placement_walk(struct plan_ctx *c, const plan_node *v);

#endif
