/*
 * plan_sections: the walkers of the plan's own sections (plan_sections.c), which plan.c's
 * top-level walk calls. Not a public interface: only src/plan*.c include it. Each walker takes
 * the value of its top-level key (and the key node, where a missing sub-key is reported at the
 * key), fills its part of struct plan and reports problems through the context (plan_value.h).
 */
#ifndef IPWARM_PLAN_SECTIONS_H
#define IPWARM_PLAN_SECTIONS_H

#include "plan_value.h"

void plan_campaign_walk(struct plan_ctx *c, const plan_node *v);
void plan_timezone_walk(struct plan_ctx *c, const plan_node *v);
void plan_source_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m);
void plan_sender_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m);
void plan_transport_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m);
void plan_message_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m);
void plan_recipients_walk(struct plan_ctx *c, const plan_node *key, const plan_node *m);
void plan_schedule_walk(struct plan_ctx *c, const plan_node *m);
void plan_preflight_walk(struct plan_ctx *c, const plan_node *m);
void plan_dns_walk(struct plan_ctx *c, const plan_node *m);

#endif
