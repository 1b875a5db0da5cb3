/*
 * bounce: non-standard bounce notices read from their text (see bounce.h).
 *
 * Each notice family is recognised by a sentence of its own and read the way it lays out a
 * failed recipient:
 *   "<addr>:" at the start of a line, the remote reply below or after it (qmail, Yahoo,
 *       Postfix's text, RFC 3464 section 6 shows the same shape);
 *   an address indented by two spaces, the reply on the lines indented further (Exim);
 *   "<addr>" then "(reason: 550 ...)" under "The following addresses had permanent fatal
 *       errors" (sendmail);
 *   an address, then "Remote Server returned '550 5.1.1 ...'" or "#550 5.1.1 ...##" (Exchange
 *       and Outlook.com);
 *   "wasn't delivered to ADDR" / "failed permanently: ADDR" with "The response from the remote
 *       server was:" or "The error that the other server returned was:" (Gmail).
 * When none of these finds a recipient, any line with a 4xx/5xx reply code is paired with an
 * address on it or on the few lines before it. The status is the reply's enhanced code
 * (RFC 3463) where it has one, else C.0.0 from its reply code, else 5.0.0 for a permanent and
 * 4.0.0 for a temporary notice. Reading is bounded by the text's length: every loop advances.
 */
#include "ipwarm/bounce.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/chars.h"
#include "ipwarm/dsn.h"

#define BOUNCE_LOOKBACK 4 /* lines before a reply line searched for its address */

/* ---------------------------------------------------------------------------------------- */
/* Text helpers */

/* The first occurrence of needle in h[0..len), ASCII case-insensitive; NULL if none. */
static const char *bounce_find(const char *h, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0 || n > len)
        return NULL;
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(h + i, needle, n) == 0)
            return h + i;
    return NULL;
}

static bool bounce_has(const char *h, size_t len, const char *needle)
{
    return h && bounce_find(h, len, needle) != NULL;
}

static bool bounce_local_char(unsigned char c)
{
    return chars_is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~.", c));
}

static bool bounce_domain_char(unsigned char c)
{
    return chars_is_alnum(c) || c == '-' || c == '.';
}

/* Finds the first addr-spec-looking word in s[0..len): local@domain.tld. */
static bool bounce_addr_in(const char *s, size_t len, size_t *start, size_t *alen)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '@' || i == 0)
            continue;
        size_t a = i;
        while (a > 0 && bounce_local_char((unsigned char)s[a - 1]) && i - a < 64)
            a--;
        size_t b = i + 1;
        while (b < len && bounce_domain_char((unsigned char)s[b]) && b - i < 253)
            b++;
        while (b > i + 1 && (s[b - 1] == '.' || s[b - 1] == '-'))
            b--;
        while (a < i && s[a] == '.')
            a++;
        if (a == i || b == i + 1)
            continue;
        const char *dot = memchr(s + i + 1, '.', b - i - 1);
        if (!dot || !chars_is_alpha((unsigned char)s[b - 1]))
            continue;
        *start = a;
        *alen = b - a;
        return true;
    }
    return false;
}

/* A line of text: [start, end) without the line break. */
struct bounce_line {
    const char *s;
    size_t len;
};

/* Splits text into lines (at most max; the rest is left unread). Returns the count. */
static size_t bounce_lines(const char *text, size_t len, struct bounce_line *lines, size_t max)
{
    size_t n = 0, pos = 0;
    while (pos < len && n < max) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;
        size_t ll = l;
        if (ll && text[pos + ll - 1] == '\r')
            ll--;
        lines[n].s = text + pos;
        lines[n].len = ll;
        n++;
        pos += l + (nl ? 1 : 0);
    }
    return n;
}

static bool bounce_blank(const struct bounce_line *l)
{
    for (size_t i = 0; i < l->len; i++)
        if (l->s[i] != ' ' && l->s[i] != '\t')
            return false;
    return true;
}

static size_t bounce_indent(const struct bounce_line *l)
{
    size_t i = 0;
    while (i < l->len && (l->s[i] == ' ' || l->s[i] == '\t'))
        i += l->s[i] == '\t' ? 8 : 1;
    return i;
}

/* ---------------------------------------------------------------------------------------- */
/* Results */

struct bounce_ctx {
    struct bounce *out;
    size_t cap;
    bool temporary; /* the notice says delivery is only delayed */
    bool oom;
};

void bounce_free(struct bounce *b)
{
    for (size_t i = 0; b->recipients && i < b->n; i++)
        dsn_recipient_clear(&b->recipients[i]);
    free(b->recipients);
    b->recipients = NULL;
    b->n = 0;
}

/* A copy of s[0..len) with runs of white space made one space, cut at FEEDBACK_MAX_TEXT. */
static char *bounce_squeeze(const char *s, size_t len)
{
    while (len && chars_is_space((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && chars_is_space((unsigned char)s[len - 1]))
        len--;
    if (len == 0)
        return NULL;
    char *d = malloc((len > FEEDBACK_MAX_TEXT ? FEEDBACK_MAX_TEXT : len) + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < len && o < FEEDBACK_MAX_TEXT; i++) {
        unsigned char c = (unsigned char)s[i];
        if (chars_is_space(c) || c < 0x20 || c == 0x7f) {
            space = true;
            continue;
        }
        if (space && o)
            d[o++] = ' ';
        space = false;
        if (o < FEEDBACK_MAX_TEXT)
            d[o++] = (char)c;
    }
    if (o == 0) { /* nothing but control characters */
        free(d);
        return NULL;
    }
    d[o] = '\0';
    return d;
}

/* Adds a recipient (address addr[0..alen), diagnostic text diag[0..dlen)) unless listed. */
static void bounce_add(struct bounce_ctx *c, const char *addr, size_t alen, const char *diag,
                       size_t dlen)
{
    struct bounce *b = c->out;
    if (c->oom || b->n >= FEEDBACK_MAX_RECIPIENTS || alen == 0 || alen > 254)
        return;
    for (size_t i = 0; i < b->n; i++)
        if (strlen(b->recipients[i].address) == alen &&
            strncasecmp(b->recipients[i].address, addr, alen) == 0)
            return;
    if (b->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        struct feedback_recipient *r = realloc(b->recipients, cap * sizeof *r);
        if (!r) {
            c->oom = true;
            return;
        }
        b->recipients = r;
        c->cap = cap;
    }
    struct feedback_recipient *r = &b->recipients[b->n];
    memset(r, 0, sizeof *r);
    r->address = malloc(alen + 1);
    if (!r->address) {
        c->oom = true;
        return;
    }
    memcpy(r->address, addr, alen);
    r->address[alen] = '\0';
    r->diagnostic = diag ? bounce_squeeze(diag, dlen) : NULL;
    if (!r->diagnostic || !dsn_status_from_text(r->diagnostic, strlen(r->diagnostic), r->status))
        memcpy(r->status, c->temporary ? "4.0.0" : "5.0.0", 6);
    r->action = dsn_action_of_status(r->status);
    b->n++;
}

/* The text of lines [from, to) joined (they are contiguous in the buffer). */
static void bounce_span(const struct bounce_line *lines, size_t from, size_t to, const char **s,
                        size_t *len)
{
    if (from >= to) {
        *s = NULL;
        *len = 0;
        return;
    }
    *s = lines[from].s;
    *len = (size_t)(lines[to - 1].s + lines[to - 1].len - lines[from].s);
}

/* ---------------------------------------------------------------------------------------- */
/* Layouts */

/* "<addr>:" opening a line (qmail, Yahoo, Postfix); the reply follows on that line and the
 * lines up to the next blank line or next recipient. */
static void bounce_colon_blocks(struct bounce_ctx *c, const struct bounce_line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct bounce_line *l = &lines[i];
        if (l->len < 5 || l->s[0] != '<')
            continue;
        const char *gt = memchr(l->s, '>', l->len);
        if (!gt || (size_t)(gt - l->s) + 1 >= l->len || gt[1] != ':')
            continue;
        size_t st, al;
        if (!bounce_addr_in(l->s + 1, (size_t)(gt - l->s) - 1, &st, &al))
            continue;
        size_t j = i + 1;
        while (j < n && !bounce_blank(&lines[j]) && lines[j].s[0] != '<')
            j++;
        const char *d;
        size_t dl;
        bounce_span(lines, i, j, &d, &dl);
        size_t skip = (size_t)(gt - l->s) + 2; /* the diagnostic starts after "<addr>:" */
        bounce_add(c, l->s + 1 + st, al, d + skip, dl - skip);
        i = j - 1;
    }
}

/* Exim: an address indented by two spaces, its reply on the lines indented further. */
static void bounce_indented_blocks(struct bounce_ctx *c, const struct bounce_line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct bounce_line *l = &lines[i];
        size_t ind = bounce_indent(l);
        if (ind < 1 || ind > 3)
            continue;
        size_t st, al;
        if (!bounce_addr_in(l->s, l->len, &st, &al))
            continue;
        /* the line is the address (maybe in <>) and little else */
        if (l->len - al > ind + 4 && !memchr(l->s + st + al, ':', l->len - st - al))
            continue;
        size_t j = i + 1;
        while (j < n && !bounce_blank(&lines[j]) && bounce_indent(&lines[j]) > ind)
            j++;
        const char *d;
        size_t dl;
        bounce_span(lines, i + 1, j, &d, &dl);
        bounce_add(c, l->s + st, al, d, dl);
        i = j - 1;
    }
}

/* sendmail: "<addr>" lines, each followed by "(reason: ...)". */
static void bounce_reason_blocks(struct bounce_ctx *c, const struct bounce_line *lines, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        size_t st, al;
        if (!bounce_addr_in(lines[i].s, lines[i].len, &st, &al))
            continue;
        const struct bounce_line *next = &lines[i + 1];
        const char *r = bounce_find(next->s, next->len, "(reason:");
        if (!r)
            continue;
        size_t dl = next->len - (size_t)(r + 8 - next->s);
        while (dl && (r[8 + dl - 1] == ')' || r[8 + dl - 1] == ' '))
            dl--; /* the closing parenthesis of "(reason: ...)" */
        bounce_add(c, lines[i].s + st, al, r + 8, dl);
        i++;
    }
}

/* Exchange / Outlook.com: "Remote Server returned '...'" or "#550 5.1.1 ...##" after the
 * address it concerns. */
static void bounce_microsoft(struct bounce_ctx *c, const struct bounce_line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct bounce_line *l = &lines[i];
        const char *r = bounce_find(l->s, l->len, "Remote Server returned");
        const char *hash = NULL;
        if (!r) {
            hash = memchr(l->s, '#', l->len);
            if (!hash || (size_t)(hash - l->s) + 4 >= l->len || (hash[1] != '4' && hash[1] != '5'))
                continue;
        }
        const char *d = r ? r + strlen("Remote Server returned") : hash + 1;
        size_t dl = l->len - (size_t)(d - l->s);
        /* Remote Server returned '550 5.1.10 ...': the reply without its quotes */
        while (dl && (*d == ' ' || *d == '\'')) {
            d++;
            dl--;
        }
        while (dl && (d[dl - 1] == ' ' || d[dl - 1] == '\'' || d[dl - 1] == '#'))
            dl--;
        /* the address: on this line before the reply, else on the lines above */
        size_t st, al;
        if (bounce_addr_in(l->s, (size_t)((r ? r : hash) - l->s), &st, &al)) {
            bounce_add(c, l->s + st, al, d, dl);
            continue;
        }
        for (size_t k = 1; k <= BOUNCE_LOOKBACK && k <= i; k++) {
            if (bounce_addr_in(lines[i - k].s, lines[i - k].len, &st, &al)) {
                bounce_add(c, lines[i - k].s + st, al, d, dl);
                break;
            }
        }
    }
}

/* Gmail: the address in "wasn't delivered to ADDR" or on the lines after "failed
 * permanently:" / "has been delayed:", the reply after "The response from the remote server
 * was:" or "The error that the other server returned was:". */
static void bounce_gmail(struct bounce_ctx *c, const char *text, size_t len,
                         const struct bounce_line *lines, size_t n)
{
    static const char *const reply_marks[] = {
        "The response from the remote server was:", "The error that the other server returned was:",
        "The response was:", NULL};
    const char *reply = NULL;
    size_t reply_len = 0;
    for (size_t m = 0; reply_marks[m] && !reply; m++) {
        const char *p = bounce_find(text, len, reply_marks[m]);
        if (p) {
            p += strlen(reply_marks[m]);
            while (p < text + len && chars_is_space((unsigned char)*p))
                p++;
            const char *end = p;
            /* the reply runs to the next blank line */
            while (end < text + len) {
                const char *nl = memchr(end, '\n', (size_t)(text + len - end));
                if (!nl) {
                    end = text + len;
                    break;
                }
                const char *after = nl + 1;
                if (after >= text + len || *after == '\n' ||
                    (*after == '\r' && after + 1 < text + len && after[1] == '\n')) {
                    end = nl;
                    break;
                }
                end = after;
            }
            reply = p;
            reply_len = (size_t)(end - p);
        }
    }
    static const char *const addr_marks[] = {"wasn't delivered to ", "was not delivered to ",
                                             "problem delivering your message to ", NULL};
    for (size_t m = 0; addr_marks[m]; m++) {
        const char *p = bounce_find(text, len, addr_marks[m]);
        size_t st, al;
        if (p) {
            p += strlen(addr_marks[m]);
            size_t rest = (size_t)(text + len - p);
            if (bounce_addr_in(p, rest < 300 ? rest : 300, &st, &al)) {
                bounce_add(c, p + st, al, reply, reply_len);
                return;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!bounce_has(lines[i].s, lines[i].len, "recipient failed permanently") &&
            !bounce_has(lines[i].s, lines[i].len, "recipient has been delayed") &&
            !bounce_has(lines[i].s, lines[i].len, "recipients failed permanently"))
            continue;
        for (size_t j = i + 1; j < n && j < i + 6; j++) {
            size_t st, al;
            if (bounce_addr_in(lines[j].s, lines[j].len, &st, &al))
                bounce_add(c, lines[j].s + st, al, reply, reply_len);
            else if (c->out->n && bounce_blank(&lines[j]))
                break;
        }
        return;
    }
}

/* Any other notice: each line with a 4xx/5xx reply and an address on it or just above. */
static void bounce_generic(struct bounce_ctx *c, const struct bounce_line *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char st_text[FEEDBACK_STATUS_MAX];
        const struct bounce_line *l = &lines[i];
        if (!dsn_status_from_text(l->s, l->len, st_text) || st_text[0] == '2')
            continue;
        size_t st, al;
        if (bounce_addr_in(l->s, l->len, &st, &al)) {
            bounce_add(c, l->s + st, al, l->s, l->len);
            continue;
        }
        for (size_t k = 1; k <= BOUNCE_LOOKBACK && k <= i; k++) {
            if (bounce_addr_in(lines[i - k].s, lines[i - k].len, &st, &al)) {
                bounce_add(c, lines[i - k].s + st, al, l->s, l->len);
                break;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Public */

size_t bounce_notice_end(const char *text, size_t len, size_t *copy_at)
{
    static const char *const marks[] = {
        "Below this line is a copy of the message", /* qmail, Yahoo */
        "This is a copy of the message",            /* Exim */
        "----- Original message -----",             /* Gmail */
        "Original message headers:",                /* Exchange */
        "-----Original Message-----",
        "------ This is a copy of",
        "Content-Description: Undelivered Message", /* a Postfix report flattened into text */
        NULL};
    size_t best = len;
    for (size_t m = 0; marks[m]; m++) {
        const char *p = bounce_find(text, len, marks[m]);
        if (p && (size_t)(p - text) < best)
            best = (size_t)(p - text);
    }
    /* back to the start of the marker's line; the copy starts on the next line */
    size_t start = best;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    if (copy_at) {
        *copy_at = len;
        if (best < len) {
            const char *nl = memchr(text + best, '\n', len - best);
            *copy_at = nl ? (size_t)(nl + 1 - text) : len;
            /* a blank line may separate the marker from the copy */
            while (*copy_at < len && (text[*copy_at] == '\n' || text[*copy_at] == '\r'))
                (*copy_at)++;
        }
    }
    return best < len ? start : len;
}

bool bounce_is_notice(const char *from, const char *subject, bool null_sender, const char *text,
                      size_t len)
{
    static const char *const senders[] = {"mailer-daemon", "postmaster", "mail delivery",
                                          "mail-daemon", NULL};
    static const char *const subjects[] = {"undeliver",
                                           "returned mail",
                                           "delivery status notification",
                                           "delivery failure",
                                           "failure notice",
                                           "mail delivery failed",
                                           "delivery has failed",
                                           "not delivered",
                                           "delivery failed",
                                           "delayed mail",
                                           "delivery delayed",
                                           "warning: could not send",
                                           "address not found",
                                           "non remis",
                                           "unzustellbar",
                                           NULL};
    static const char *const sentences[] = {
        "This message was created automatically by mail delivery software",
        "This is the qmail-send program",
        "we were unable to deliver your message",
        "This is the mail system at host",
        "This is the Postfix program",
        "The following addresses had permanent fatal errors",
        "Delivery has failed to these recipients or groups",
        "Your message wasn't delivered",
        "Delivery to the following recipient failed permanently",
        "Delivery to the following recipient has been delayed",
        "could not be delivered to one or more recipients",
        NULL};
    if (null_sender)
        return true;
    for (size_t i = 0; from && senders[i]; i++)
        if (bounce_has(from, strlen(from), senders[i]))
            return true;
    for (size_t i = 0; subject && subjects[i]; i++)
        if (bounce_has(subject, strlen(subject), subjects[i]))
            return true;
    for (size_t i = 0; sentences[i]; i++)
        if (bounce_has(text, len, sentences[i]))
            return true;
    return false;
}

ipw_status bounce_scan(const char *text, size_t len, const char *subject, struct bounce *out)
{
    memset(out, 0, sizeof *out);
    out->format = "text";
    len = bounce_notice_end(text, len, NULL);
    size_t max_lines = 4096;
    struct bounce_line *lines = malloc(max_lines * sizeof *lines);
    if (!lines)
        return IPW_ENOMEM;
    size_t n = bounce_lines(text, len, lines, max_lines);
    struct bounce_ctx c = {.out = out};
    const char *subj = subject ? subject : "";
    c.temporary = bounce_has(text, len, "has been delayed") ||
                  bounce_has(text, len, "has not yet been delivered") ||
                  bounce_has(text, len, "will continue trying") ||
                  bounce_has(text, len, "will keep trying") ||
                  bounce_has(text, len, "transient non-fatal errors") ||
                  bounce_has(text, len, "THIS IS A WARNING MESSAGE ONLY") ||
                  bounce_has(subj, strlen(subj), "(Delay)") ||
                  bounce_has(subj, strlen(subj), "delayed") ||
                  bounce_has(subj, strlen(subj), "Warning:");

    if (bounce_has(text, len, "This is the qmail-send program") ||
        bounce_has(text, len, "we were unable to deliver your message")) {
        out->format =
            bounce_has(text, len, "we were unable to deliver your message") ? "yahoo" : "qmail";
        bounce_colon_blocks(&c, lines, n);
    } else if (bounce_has(text, len,
                          "This message was created automatically by mail delivery software")) {
        out->format = "exim";
        bounce_indented_blocks(&c, lines, n);
    } else if (bounce_has(text, len, "This is the mail system at host") ||
               bounce_has(text, len, "This is the Postfix program")) {
        out->format = "postfix";
        bounce_colon_blocks(&c, lines, n);
    } else if (bounce_has(text, len, "The following addresses had permanent fatal errors") ||
               bounce_has(text, len, "The following addresses had transient non-fatal errors")) {
        out->format = "sendmail";
        bounce_reason_blocks(&c, lines, n);
    } else if (bounce_has(text, len, "Delivery has failed to these recipients or groups") ||
               bounce_has(text, len, "Remote Server returned") ||
               bounce_has(text, len, "Diagnostic information for administrators")) {
        out->format = "microsoft";
        bounce_microsoft(&c, lines, n);
    } else if (bounce_has(text, len, "Your message wasn't delivered to") ||
               bounce_has(text, len, "Delivery to the following recipient") ||
               bounce_has(text, len, "Address not found")) {
        out->format = "gmail";
        bounce_gmail(&c, text, len, lines, n);
    }
    if (out->n == 0 && !c.oom)
        bounce_generic(&c, lines, n);
    free(lines);
    if (c.oom) {
        bounce_free(out);
        return IPW_ENOMEM;
    }
    return IPW_OK;
}
