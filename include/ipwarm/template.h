/*
 * template: {{name}} placeholders in the subject, the bodies and the List-Unsubscribe URI.
 *
 * A placeholder is "{{", a name, "}}" on one line; spaces or tabs around the name are ignored
 * and names are matched without regard to ASCII case. The built-in names are recipient (the
 * address), seq (the send's sequence number), date (the RFC 5322 date of the message, the same
 * text as its Date header), campaign and token (the recipient's unsubscribe token); every
 * other name is a column of the CSV recipient list, looked up by its header name. A built-in
 * wins over a column of the same name. To write "{{" literally, write "{{{{"; "}}" outside a
 * placeholder is ordinary text. A "{{" without its "}}" on the same line is an error, so a
 * typo never goes out to thousands of recipients as raw braces.
 *
 * Templates are checked once against the list's columns before anything is sent
 * (template_check); expansion then only fails on a value that is unsafe where it goes: a
 * value with CR or LF is refused in a header (RFC 5322 2.2: it would start a new header
 * field, the classic header injection), and values are escaped in HTML and URIs.
 */
#ifndef IPWARM_TEMPLATE_H
#define IPWARM_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"

/* Flags of template_expand: what the expanded text is used for. */
enum {
    TEMPLATE_HEADER = 1u << 0, /* a header field: a value with CR or LF is refused (IPW_EDATA) */
    TEMPLATE_HTML = 1u << 1,   /* an HTML body: values are escaped (& < > " ') */
    TEMPLATE_URL = 1u << 2,    /* a URI: values are percent-encoded except RFC 3986 unreserved */
};

/* The values of one send. Strings are UTF-8; a built-in left NULL makes its placeholder fail
 * with IPW_EUSAGE (a caller bug, never silently empty). */
struct template_vars {
    const char *recipient; /* the address */
    int64_t seq;           /* {{seq}}: written in decimal */
    const char *date;      /* {{date}}: e.g. "Tue, 01 Dec 2026 09:00:00 +0900" */
    const char *campaign;
    const char *token;
    const char *const *names;  /* CSV column names (recipients_columns()), or NULL */
    const char *const *values; /* this recipient's values, parallel to names */
    size_t n;
    const char *src; /* where the values come from (the list file), for refusals; may be NULL */
    long src_line;   /* the recipient's line in src */
};

/* The built-in names, for messages and documentation; NULL-terminated. */
extern const char *const template_builtins[];

/*
 * Checks every placeholder of the NUL-terminated text against the built-ins and the column
 * names[0..n). Returns IPW_OK, or IPW_EDATA with one sentence:
 *     WHERE:LINE: unknown placeholder {{x}} (known: recipient, seq, ..., first_name)
 *     WHERE:LINE: unterminated placeholder "{{x" (no "}}" on that line)
 *     WHERE:LINE: empty placeholder {{}}
 * where LINE counts the lines of text from 1.
 */
ipw_status template_check(const char *text, const char *const *names, size_t n, const char *where,
                          struct err *e);

/* Like template_check, with the lines of text numbered from first_line; first_line 0 leaves
 * the line out ("WHERE: unknown placeholder ..."), for one-line values such as the subject
 * written in the plan, whose position in the plan a caller names in where. */
ipw_status template_check_at(const char *text, const char *const *names, size_t n,
                             const char *where, int first_line, struct err *e);

/*
 * Expands text with v into *out (NUL-terminated, malloc'd, *out_len bytes without the NUL;
 * out_len may be NULL). flags: TEMPLATE_*. where names the template in messages. Returns IPW_OK;
 * IPW_EDATA for a syntax error or an unknown name (as template_check), or, with
 * TEMPLATE_HEADER, for a value with CR or LF:
 *     SRC:LINE: the value of {{first_name}} contains a line break, refused in a header
 * IPW_EUSAGE when a built-in the text uses was left NULL; IPW_ENOMEM. On failure *out is NULL.
 */
ipw_status template_expand(const char *text, const struct template_vars *v, unsigned flags,
                           const char *where, char **out, size_t *out_len, struct err *e);

#endif
