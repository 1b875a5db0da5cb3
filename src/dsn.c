/*
 * dsn: RFC 3464 delivery status fields and RFC 3463 status codes (see dsn.h).
 *
 * The per-recipient fields are RFC 3464 2.3: Final-Recipient and Original-Recipient are
 * "address-type ; address" (rfc822 for mail addresses, utf-8 per RFC 6533), Diagnostic-Code is
 * "diagnostic-type ; text" (smtp for SMTP replies), Remote-MTA "mta-name-type ; name". Status
 * codes are RFC 3463 2: class "." subject "." detail, at most three digits each.
 */
#include "ipwarm/dsn.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/chars.h"
#include "ipwarm/fields.h"

void dsn_recipient_clear(struct feedback_recipient *r)
{
    free(r->address);
    free(r->original);
    free(r->diagnostic);
    free(r->remote_mta);
    memset(r, 0, sizeof *r);
}

void dsn_free(struct dsn *d)
{
    for (size_t i = 0; d->recipients && i < d->n; i++)
        dsn_recipient_clear(&d->recipients[i]);
    free(d->recipients);
    free(d->reporting_mta);
    free(d->envelope_id);
    memset(d, 0, sizeof *d);
}

bool dsn_status_valid(const char *s, size_t len)
{
    if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    size_t i = 2, d = 0;
    while (i < len && chars_is_digit((unsigned char)s[i]) && d < 4)
        i++, d++;
    if (d == 0 || d > 3 || i >= len || s[i] != '.')
        return false;
    i++;
    d = 0;
    while (i < len && chars_is_digit((unsigned char)s[i]) && d < 4)
        i++, d++;
    return d >= 1 && d <= 3 && i == len;
}

/* The length of an enhanced code starting at s (class digit, '.', digits, '.', digits), or 0. */
static size_t dsn_code_at(const char *s, size_t len)
{
    size_t i = 0;
    if (len < 5 || !strchr("245", s[0]) || s[0] == '\0' || s[1] != '.')
        return 0;
    i = 2;
    size_t d = 0;
    while (i < len && chars_is_digit((unsigned char)s[i]))
        i++, d++;
    if (d < 1 || d > 3 || i >= len || s[i] != '.')
        return 0;
    i++;
    d = 0;
    while (i < len && chars_is_digit((unsigned char)s[i]))
        i++, d++;
    if (d < 1 || d > 3)
        return 0;
    return i;
}

static void dsn_status_set(char out[FEEDBACK_STATUS_MAX], const char *s, size_t n)
{
    if (n >= FEEDBACK_STATUS_MAX)
        n = FEEDBACK_STATUS_MAX - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

bool dsn_status_from_text(const char *text, size_t len, char out[FEEDBACK_STATUS_MAX])
{
    out[0] = '\0';
    /* 1. a reply code and the enhanced code after it */
    for (size_t i = 0; i + 3 <= len; i++) {
        const char *s = text + i;
        if (!strchr("245", s[0]) || s[0] == '\0' || !chars_is_digit((unsigned char)s[1]) ||
            !chars_is_digit((unsigned char)s[2]))
            continue;
        if (i > 0 && (chars_is_alnum((unsigned char)s[-1]) || s[-1] == '.'))
            continue;
        size_t j = i + 3;
        if (j < len && (chars_is_alnum((unsigned char)text[j]) || text[j] == '.'))
            continue;
        size_t k = j;
        while (k < len && k < j + 3 && strchr(" -:\t", text[k]) && text[k] != '\0')
            k++;
        if (k == j)
            continue;
        size_t n = dsn_code_at(text + k, len - k);
        if (n && text[k] == s[0] && (k + n == len || !chars_is_digit((unsigned char)text[k + n])) &&
            (k + n == len || text[k + n] != '.' || k + n + 1 == len ||
             !chars_is_digit((unsigned char)text[k + n + 1]))) {
            dsn_status_set(out, text + k, n);
            return true;
        }
    }
    /* 2. a lone enhanced code of class 4 or 5, not inside a dotted number */
    for (size_t i = 0; i + 5 <= len; i++) {
        if ((text[i] != '4' && text[i] != '5') ||
            (i > 0 && (chars_is_alnum((unsigned char)text[i - 1]) || text[i - 1] == '.')))
            continue;
        size_t n = dsn_code_at(text + i, len - i);
        if (!n)
            continue;
        if (i + n < len && (chars_is_alnum((unsigned char)text[i + n]) ||
                            (text[i + n] == '.' && i + n + 1 < len &&
                             chars_is_digit((unsigned char)text[i + n + 1]))))
            continue;
        dsn_status_set(out, text + i, n);
        return true;
    }
    /* 3. a reply code alone */
    for (size_t i = 0; i + 3 <= len; i++) {
        const char *s = text + i;
        if ((s[0] != '4' && s[0] != '5') || !chars_is_digit((unsigned char)s[1]) ||
            !chars_is_digit((unsigned char)s[2]) || s[1] > '5')
            continue;
        if (i > 0 && (chars_is_alnum((unsigned char)s[-1]) || s[-1] == '.' || s[-1] == ':'))
            continue;
        if (i + 3 < len && (chars_is_alnum((unsigned char)s[3]) || s[3] == '.' || s[3] == ':'))
            if (!(s[3] == ':' && (i + 4 >= len || s[4] == ' ')))
                continue;
        out[0] = s[0];
        memcpy(out + 1, ".0.0", 5);
        return true;
    }
    return false;
}

enum feedback_action dsn_action_of_status(const char *status)
{
    switch (status ? status[0] : 0) {
    case '5':
        return FEEDBACK_ACTION_FAILED;
    case '4':
        return FEEDBACK_ACTION_DELAYED;
    case '2':
        return FEEDBACK_ACTION_DELIVERED;
    default:
        return FEEDBACK_ACTION_NONE;
    }
}

static enum feedback_action dsn_action_parse(const char *s)
{
    static const struct {
        const char *name;
        enum feedback_action a;
    } names[] = {{"failed", FEEDBACK_ACTION_FAILED},
                 {"delayed", FEEDBACK_ACTION_DELAYED},
                 {"delivered", FEEDBACK_ACTION_DELIVERED},
                 {"relayed", FEEDBACK_ACTION_RELAYED},
                 {"expanded", FEEDBACK_ACTION_EXPANDED}};
    if (!s)
        return FEEDBACK_ACTION_NONE;
    size_t n = strcspn(s, " \t(;");
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (n == strlen(names[i].name) && strncasecmp(s, names[i].name, n) == 0)
            return names[i].a;
    return FEEDBACK_ACTION_NONE;
}

/* "type; value" -> a copy of value (the type removed), "<>" around an address removed too. */
static char *dsn_typed_value(const char *v, bool address)
{
    if (!v)
        return NULL;
    const char *semi = strchr(v, ';');
    const char *s = semi ? semi + 1 : v;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (address) {
        if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
            s++;
            n -= 2;
        }
        /* an address has no spaces; "user@example.com (comment)" keeps the address */
        size_t sp = strcspn(s, " \t");
        if (sp < n)
            n = sp;
    }
    return fields_value_copy(s, n, FEEDBACK_MAX_TEXT, 0);
}

ipw_status dsn_parse(const char *text, size_t len, struct dsn *out)
{
    memset(out, 0, sizeof *out);
    struct fields f;
    if (fields_parse(text, len, &f) != IPW_OK)
        return IPW_ENOMEM;
    ipw_status st = IPW_OK;
    size_t first = 0;
    /* The per-message group comes first; a report that left it out starts with a recipient. */
    if (f.n > 0 && !fields_get(&f.g[0], "Final-Recipient") &&
        !fields_get(&f.g[0], "Original-Recipient")) {
        out->reporting_mta = dsn_typed_value(fields_get(&f.g[0], "Reporting-MTA"), false);
        out->envelope_id = dsn_typed_value(fields_get(&f.g[0], "Original-Envelope-Id"), false);
        first = 1;
    }
    if (f.n > first) {
        out->recipients = calloc(f.n - first, sizeof *out->recipients);
        if (!out->recipients) {
            st = IPW_ENOMEM;
            goto done;
        }
    }
    for (size_t i = first; i < f.n && out->n < FEEDBACK_MAX_RECIPIENTS; i++) {
        const struct fields_group *g = &f.g[i];
        const char *final = fields_get(g, "Final-Recipient"),
                   *orig = fields_get(g, "Original-Recipient");
        struct feedback_recipient *r = &out->recipients[out->n];
        char *addr = dsn_typed_value(final ? final : orig, true);
        if (!addr)
            continue;
        r->address = addr;
        if (orig && final)
            r->original = dsn_typed_value(orig, true);
        r->diagnostic = dsn_typed_value(fields_get(g, "Diagnostic-Code"), false);
        r->remote_mta = dsn_typed_value(fields_get(g, "Remote-MTA"), false);
        const char *status = fields_get(g, "Status");
        size_t sl = status ? strcspn(status, " \t(") : 0;
        if (status && dsn_status_valid(status, sl))
            dsn_status_set(r->status, status, sl);
        else if (r->diagnostic)
            dsn_status_from_text(r->diagnostic, strlen(r->diagnostic), r->status);
        r->action = dsn_action_parse(fields_get(g, "Action"));
        if (r->action == FEEDBACK_ACTION_NONE)
            r->action = dsn_action_of_status(r->status);
        if (!r->status[0] && r->action != FEEDBACK_ACTION_NONE)
            memcpy(r->status,
                   r->action == FEEDBACK_ACTION_FAILED    ? "5.0.0"
                   : r->action == FEEDBACK_ACTION_DELAYED ? "4.0.0"
                                                          : "2.0.0",
                   6);
        if (!r->status[0]) {
            /* neither Action nor Status: nothing this group says can be used */
            dsn_recipient_clear(r);
            continue;
        }
        out->n++;
    }
done:
    fields_free(&f);
    if (st)
        dsn_free(out);
    return st;
}
