/*
 * arf: the machine-readable part of a complaint report in the Abuse Reporting Format (RFC 5965
 * 3.1 and 3.2: the body of a message/feedback-report part), as mailbox providers' feedback
 * loops send it (Yahoo's CFL, Microsoft's JMRP).
 *
 * Feedback-Type is required by the RFC but read leniently: lower-cased, and "abuse" when a
 * report omits it (a complaint loop reports complaints). Original-Rcpt-To may appear more than
 * once; providers often leave it out or redact it (then the caller reads the original's To).
 */
#ifndef IPWARM_ARF_H
#define IPWARM_ARF_H

#include <stddef.h>

#include "ipwarm/err.h"

#define ARF_MAX_RCPT 16

struct arf {
    char *feedback_type; /* lower case: abuse, fraud, virus, other, not-spam, auth-failure... */
    char *user_agent;
    char *original_mail_from;    /* without <> */
    char *rcpt_to[ARF_MAX_RCPT]; /* Original-Rcpt-To addresses, without <> */
    size_t n_rcpt;
    char *source_ip;
    char *reported_domain;
    char *arrival_date;
};

/* Parses a message/feedback-report body into out (arf_free it). Returns IPW_OK or
 * IPW_ENOMEM. */
ipw_status arf_parse(const char *text, size_t len, struct arf *out);
void arf_free(struct arf *a);

#endif
