/*
 * fields: blocks of "Name: value" fields, the machine-readable parts of delivery status
 * notifications (message/delivery-status, RFC 3464 2.1) and complaint reports
 * (message/feedback-report, RFC 5965 3.1).
 *
 * A block is groups of fields separated by blank lines; each field is RFC 5322 2.2 shaped: a
 * name of printable ASCII without ':' or space, a colon, and a value continued on lines that
 * start with a space or tab (unfolded here into one space). CRLF and bare LF both end a line.
 * Lines that are not fields are skipped: reports in the wild carry stray text. The parser only
 * reads: it never fails on content, keeps at most FIELDS_MAX_GROUPS groups of
 * FIELDS_MAX_FIELDS fields, and cuts values at FIELDS_MAX_VALUE bytes.
 */
#ifndef IPWARM_FIELDS_H
#define IPWARM_FIELDS_H

#include <stddef.h>

#include "ipwarm/err.h"

#define FIELDS_MAX_GROUPS 128
#define FIELDS_MAX_FIELDS 64
#define FIELDS_MAX_VALUE  998

struct fields_field {
    char *name;  /* as written */
    char *value; /* unfolded, leading and trailing white space removed */
};

struct fields_group {
    struct fields_field *f;
    size_t n;
};

struct fields {
    struct fields_group *g;
    size_t n;
};

/* Parses len bytes of text into out (fields_free it). Returns IPW_OK or IPW_ENOMEM. */
ipw_status fields_parse(const char *text, size_t len, struct fields *out);

void fields_free(struct fields *f);

/* The value of the first field called name (ASCII case-insensitive) in g, or NULL. */
const char *fields_get(const struct fields_group *g, const char *name);

/* How fields_value_copy() copies: ASCII letters lower-cased; control characters made spaces. */
#define FIELDS_COPY_LOWER     1u
#define FIELDS_COPY_PRINTABLE 2u

/*
 * A copy of s[0..n) cut at max bytes, for a value a report's reader keeps, changed as how asks
 * (FIELDS_COPY_*, 0 for none). Returns NULL when s is NULL, n is 0, or out of memory.
 */
char *fields_value_copy(const char *s, size_t n, size_t max, unsigned how);

#endif
