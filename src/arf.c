/*
 * arf: RFC 5965 feedback report fields (see arf.h). Field names are RFC 5965 3.1 (required:
 * Feedback-Type, User-Agent, Version) and 3.2 (optional: Original-Mail-From, Original-Rcpt-To,
 * Arrival-Date, Source-IP, Reported-Domain, ...). All fields of the part are read as one group:
 * the RFC has no blank lines inside it, and a report that has some still means one report.
 */
#include "ipwarm/arf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/feedback.h"
#include "ipwarm/fields.h"

void arf_free(struct arf *a)
{
    free(a->feedback_type);
    free(a->user_agent);
    free(a->original_mail_from);
    for (size_t i = 0; i < a->n_rcpt; i++)
        free(a->rcpt_to[i]);
    free(a->source_ip);
    free(a->reported_domain);
    free(a->arrival_date);
    memset(a, 0, sizeof *a);
}

/* A copy of v, "<>" removed when address; lower-cased when lower. NULL for an empty value. */
static char *arf_value(const char *v, bool address, bool lower)
{
    if (!v)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    if (address) {
        if (n && v[0] == '<') {
            v++;
            n--;
        }
        n = strcspn(v, "> \t");
    }
    return fields_value_copy(v, n, FEEDBACK_MAX_TEXT, lower ? FIELDS_COPY_LOWER : 0);
}

ipw_status arf_parse(const char *text, size_t len, struct arf *out)
{
    memset(out, 0, sizeof *out);
    struct fields f;
    if (fields_parse(text, len, &f) != IPW_OK)
        return IPW_ENOMEM;
    for (size_t gi = 0; gi < f.n; gi++) {
        const struct fields_group *g = &f.g[gi];
        for (size_t i = 0; i < g->n; i++) {
            const char *name = g->f[i].name, *v = g->f[i].value;
            char **slot = NULL;
            bool address = false, lower = false;
            if (strcasecmp(name, "Feedback-Type") == 0) {
                slot = &out->feedback_type;
                lower = true;
            } else if (strcasecmp(name, "User-Agent") == 0) {
                slot = &out->user_agent;
            } else if (strcasecmp(name, "Original-Mail-From") == 0) {
                slot = &out->original_mail_from;
                address = true;
            } else if (strcasecmp(name, "Source-IP") == 0) {
                slot = &out->source_ip;
            } else if (strcasecmp(name, "Reported-Domain") == 0) {
                slot = &out->reported_domain;
            } else if (strcasecmp(name, "Arrival-Date") == 0 ||
                       strcasecmp(name, "Received-Date") == 0) {
                slot = &out->arrival_date;
            } else if (strcasecmp(name, "Original-Rcpt-To") == 0 && out->n_rcpt < ARF_MAX_RCPT) {
                char *a = arf_value(v, true, false);
                if (a)
                    out->rcpt_to[out->n_rcpt++] = a;
                continue;
            }
            if (slot && !*slot) {
                *slot = arf_value(v, address, lower);
                if (slot == &out->feedback_type && *slot) {
                    (*slot)[strcspn(*slot, " \t;(")] = '\0';
                    if (!**slot) { /* "(comment)" alone: no type; the default below */
                        free(*slot);
                        *slot = NULL;
                    }
                }
            }
        }
    }
    fields_free(&f);
    if (!out->feedback_type) {
        out->feedback_type = strdup("abuse");
        if (!out->feedback_type) {
            arf_free(out);
            return IPW_ENOMEM;
        }
    }
    return IPW_OK;
}
