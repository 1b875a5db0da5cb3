/*
 * reply: parsing and classifying SMTP replies (see reply.h).
 *
 * The syntax is RFC 5321 section 4.2 (reply lines), RFC 2034 (enhanced status codes at the
 * start of each line's text) and RFC 3463 section 2 (the code's syntax); the meaning of the
 * subjects and details is RFC 3463 section 3, and the scope decisions encode what
 * ../shared/reference/providers.md records of how the large mailbox providers word their
 * throttling. The input comes from the network, so the parser works on a length-delimited
 * buffer in two linear passes without allocating, and writes only into the fixed buffers of
 * struct reply: any byte string, of any size, parses without harm.
 */
#include "ipwarm/reply.h"

#include <stdio.h>
#include <string.h>

/* ---- lines ---- */

/* Cuts the next line of raw at *pos: LF ends a line, a CR before it is dropped. */
static bool reply_next_line(const char *raw, size_t len, size_t *pos, const char **line, size_t *n)
{
    if (*pos >= len)
        return false;
    const char *s = raw + *pos;
    size_t left = len - *pos;
    const char *nl = memchr(s, '\n', left);
    size_t l = nl ? (size_t)(nl - s) : left;
    *pos += nl ? l + 1 : l;
    if (l > 0 && s[l - 1] == '\r')
        l--;
    *line = s;
    *n = l;
    return true;
}

static bool reply_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * The reply code of a line, or 0 when the line does not open with one. *final is set when the
 * line ends the reply ("CODE text" or "CODE"), *text_off to where its text starts.
 */
static int reply_line_code(const char *s, size_t n, bool *final, size_t *text_off)
{
    if (n < 3 || s[0] < '2' || s[0] > '5' || !reply_is_digit(s[1]) || !reply_is_digit(s[2]))
        return 0;
    if (n == 3) {
        *final = true;
        *text_off = 3;
    } else if (s[3] == ' ' || s[3] == '-') {
        *final = s[3] == ' ';
        *text_off = 4;
    } else {
        return 0; /* "4210 ..." or "421x": not a reply line */
    }
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

/* ---- enhanced status codes ---- */

/* One RFC 3463 sub-code: 1 to 3 digits, no leading zero. Returns its length or 0. */
static size_t reply_subcode(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && i < 4 && reply_is_digit(s[i]))
        i++;
    if (i == 0 || i > 3 || (i > 1 && s[0] == '0'))
        return 0;
    return i;
}

bool reply_enhanced_valid(const char *s, size_t len)
{
    if (!s || len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    size_t i = 2;
    size_t k = reply_subcode(s + i, len - i);
    if (k == 0)
        return false;
    i += k;
    if (i >= len || s[i] != '.')
        return false;
    i++;
    k = reply_subcode(s + i, len - i);
    return k != 0 && i + k == len;
}

/* Length of the token at s (up to a space or tab), for enhanced code detection. */
static size_t reply_token(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] != ' ' && s[i] != '\t')
        i++;
    return i;
}

/* ---- the text writer ---- */

/*
 * Appends sanitised bytes to out->text. Once a byte does not fit, the writer stops and marks
 * the text truncated: the caller can then stop reading the input, which keeps a reply of
 * millions of lines as cheap as one of a few.
 */
struct reply_writer {
    char *buf;
    size_t len;
    size_t limit; /* usable bytes, the NUL excluded */
    bool full;
};

/* Length of the valid UTF-8 sequence at s (RFC 3629 section 4), or 0. */
static size_t reply_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* beyond U+10FFFF */
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return need;
}

static void reply_put(struct reply_writer *w, const char *s, size_t n)
{
    if (w->full)
        return;
    if (n > w->limit - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* Appends s[0..n) with tabs as spaces, other controls and invalid UTF-8 as '?'. */
static void reply_put_clean(struct reply_writer *w, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !w->full) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t') {
            reply_put(w, " ", 1);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            reply_put(w, "?", 1);
            i++;
        } else {
            size_t k = reply_utf8_len((const unsigned char *)s + i, n - i);
            if (k == 0) {
                reply_put(w, "?", 1);
                i++;
            } else {
                reply_put(w, s + i, k);
                i += k;
            }
        }
    }
}

static bool reply_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Appends one line's text, trimmed, after a single space when text came before. */
static void reply_put_line(struct reply_writer *w, const char *s, size_t n)
{
    while (n > 0 && reply_is_blank(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && reply_is_blank(s[n - 1]))
        n--;
    if (n == 0)
        return;
    if (w->len > 0)
        reply_put(w, " ", 1);
    reply_put_clean(w, s, n);
}

/* Ends a truncated text in the marker, cutting back to a whole UTF-8 character. */
static void reply_finish(struct reply_writer *w, bool *truncated)
{
    *truncated = w->full;
    if (w->full) {
        size_t mark = sizeof REPLY_TRUNCATED_MARK - 1;
        size_t len = w->len;
        if (len > w->limit - mark)
            len = w->limit - mark;
        while (len > 0 && len < w->len && ((unsigned char)w->buf[len] & 0xC0) == 0x80)
            len--;
        while (len > 0 && w->buf[len - 1] == ' ')
            len--;
        memcpy(w->buf + len, REPLY_TRUNCATED_MARK, mark);
        w->len = len + mark;
    }
    w->buf[w->len] = '\0';
}

/* ---- parsing ---- */

int reply_parse(const char *raw, size_t len, struct reply *out)
{
    /* Not memset: 4 KiB per reply adds up over a month of replies replayed in a test. */
    out->code = 0;
    out->enhanced[0] = '\0';
    out->text[0] = '\0';
    out->lines = 0;
    out->dropped = 0;
    out->complete = false;
    out->truncated = false;
    if (!raw)
        len = 0;

    /*
     * Pass 1 finds the reply that counts: the last group of same-code lines that ends in a
     * final line or in the input's end. Lines without a code neither join nor break a group.
     */
    size_t pos = 0, total = 0, g_start = 0, g_end = 0, g_lines = 0;
    int g_code = 0;
    bool g_open = false;
    const char *line;
    size_t n;
    while (true) {
        size_t at = pos;
        if (!reply_next_line(raw, len, &pos, &line, &n))
            break;
        total++;
        bool final = false;
        size_t off = 0;
        int code = reply_line_code(line, n, &final, &off);
        if (code == 0)
            continue;
        if (g_open && code == g_code) {
            g_lines++;
        } else {
            g_code = code;
            g_start = at;
            g_lines = 1;
        }
        g_end = pos;
        g_open = !final;
    }
    out->dropped = total - g_lines;
    if (g_code == 0)
        return 0;
    out->code = g_code;
    out->lines = g_lines;
    out->complete = !g_open;

    /* Pass 2 joins the group's text; lines without a code inside it are skipped. */
    struct reply_writer w = {out->text, 0, sizeof out->text - 1, false};
    bool first = true;
    pos = g_start;
    while (!w.full && reply_next_line(raw, g_end, &pos, &line, &n)) {
        bool final = false;
        size_t off = 0;
        if (reply_line_code(line, n, &final, &off) != g_code)
            continue;
        const char *t = line + off;
        size_t tn = n - off;
        size_t lead = 0;
        while (lead < tn && reply_is_blank(t[lead]))
            lead++;
        size_t tok = reply_token(t + lead, tn - lead);
        if (first) {
            /* RFC 2034 section 4: the class must agree with the reply code's first digit. */
            if (tok < sizeof out->enhanced && reply_enhanced_valid(t + lead, tok) &&
                t[lead] == line[0]) {
                memcpy(out->enhanced, t + lead, tok);
                out->enhanced[tok] = '\0';
            }
            first = false;
        } else if (out->enhanced[0] && tok == strlen(out->enhanced) &&
                   memcmp(t + lead, out->enhanced, tok) == 0) {
            t += lead + tok;
            tn -= lead + tok;
        }
        reply_put_line(&w, t, tn);
    }
    reply_finish(&w, &out->truncated);
    return out->code;
}

char *reply_format(const struct reply *r, char *buf, size_t n)
{
    if (!buf || n == 0)
        return buf;
    buf[0] = '\0';
    if (!r)
        return buf;
    struct reply_writer w = {buf, 0, n - 1, false};
    if (r->code > 0) {
        char code[16];
        int k = snprintf(code, sizeof code, "%d", r->code);
        if (k > 0 && (size_t)k < sizeof code)
            reply_put(&w, code, (size_t)k);
        if (r->text[0])
            reply_put(&w, " ", 1);
    }
    /* r->text is clean already; cut on a character boundary if it does not fit. */
    size_t tl = strnlen(r->text, sizeof r->text);
    size_t room = w.limit - w.len;
    if (tl > room) {
        tl = room;
        while (tl > 0 && ((unsigned char)r->text[tl] & 0xC0) == 0x80)
            tl--;
    }
    reply_put(&w, r->text, tl);
    buf[w.len] = '\0';
    return buf;
}

/* ---- classification ---- */

/* ASCII case-insensitive substring test; the phrases below are all ASCII. */
static bool reply_has(const char *text, const char *needle)
{
    size_t nl = strlen(needle);
    for (const char *p = text; *p; p++) {
        size_t i = 0;
        while (i < nl && p[i]) {
            char a = p[i], b = needle[i];
            if (a >= 'A' && a <= 'Z')
                a = (char)(a - 'A' + 'a');
            if (a != b)
                break;
            i++;
        }
        if (i == nl)
            return true;
    }
    return false;
}

static bool reply_has_any(const char *text, const char *const *needles)
{
    for (size_t i = 0; needles[i]; i++)
        if (reply_has(text, needles[i]))
            return true;
    return false;
}

/*
 * Phrases, lower case. Greylisting is per (sender, recipient, IP): retrying that recipient is the
 * cure, and slowing the whole provider down for it would stall a warm-up to small domains, so it
 * is recognised even under the 4.7.1 many greylisting servers send.
 */
static const char *const reply_greylist_phrases[] = {
    "greylist", "graylist", "grey-list", "gray-list", NULL,
};

/*
 * Recipient phrases are checked before provider phrases, but only phrases that cannot describe
 * throttling (a full mailbox also says "try again later" at some providers). Anything vaguer
 * falls to the provider phrases: mistaking throttling for a recipient's problem would both keep
 * up the rate and suppress a good address.
 */
static const char *const reply_recipient_phrases[] = {
    "greylist",
    "graylist",
    "mailbox full",
    "mailbox is full",
    "over quota",
    "quota exceeded",
    "exceeded storage",
    "user unknown",
    "unknown user",
    "no such user",
    "no such mailbox",
    "user not found",
    "mailbox not found",
    "recipient not found",
    "unknown recipient",
    "recipient unknown",
    "invalid recipient",
    "does not exist",
    "doesn't exist",
    "mailbox unavailable",
    "mailbox disabled",
    "account disabled",
    "account has been disabled",
    "inactive",
    NULL,
};

static const char *const reply_provider_phrases[] = {
    "rate limit",
    "ratelimit",
    "rate-limit",
    "unusual rate",
    "try again later",
    "try later",
    "temporarily deferred",
    "deferred due to",
    "server busy",
    "too busy",
    "too many",
    "throttl",
    "reputation",
    "slow down",
    "too fast",
    "unexpected volume",
    "complaints",
    "blocked",
    "block list",
    "blocklist",
    "blacklist",
    "spamhaus",
    "spamcop",
    "dnsbl",
    "listed",
    "not accepting",
    "service unavailable",
    NULL,
};

static const char *const reply_message_phrases[] = {
    "too large", "too big", "size limit", "exceeds size", "message size",
    "virus",     "malware", "attachment", "content",      NULL,
};

/* Within x.7.x (policy), the replies that are about this message's content. */
static const char *const reply_content_phrases[] = {
    "virus",
    "malware",
    "attachment",
    "content",
    "spam message",
    "message rejected as spam",
    "message looks like spam",
    "detected as spam",
    NULL,
};

/* Scope from an RFC 3463 code's subject and detail; NONE when it says nothing (x.0.x). */
static enum reply_scope reply_scope_enhanced(const char *enhanced, const char *text)
{
    if (!enhanced || !reply_enhanced_valid(enhanced, strlen(enhanced)))
        return REPLY_SCOPE_NONE;
    const char *p = enhanced + 2;
    int subject = 0, detail = 0;
    while (*p != '.')
        subject = subject * 10 + (*p++ - '0');
    p++;
    while (*p)
        detail = detail * 10 + (*p++ - '0');
    switch (subject) {
    case 1: /* addressing: x.1.7/x.1.8 concern our sender address */
        return detail == 7 || detail == 8 ? REPLY_SCOPE_MESSAGE : REPLY_SCOPE_RECIPIENT;
    case 2: /* mailbox status: x.2.3 is the message's length */
        return detail == 3 ? REPLY_SCOPE_MESSAGE : REPLY_SCOPE_RECIPIENT;
    case 3: /* mail system status: x.3.4 message too big for the system */
        return detail == 4 ? REPLY_SCOPE_MESSAGE : REPLY_SCOPE_PROVIDER;
    case 4: /* network and routing, x.4.5 congestion */
        return REPLY_SCOPE_PROVIDER;
    case 5: /* protocol: x.5.3 too many recipients is a volume limit */
        return detail == 3 ? REPLY_SCOPE_PROVIDER : REPLY_SCOPE_MESSAGE;
    case 6: /* message content or media */
        return REPLY_SCOPE_MESSAGE;
    case 7: /* security or policy: mostly the sender's IP or domain as the receiver sees it */
        return reply_has_any(text, reply_content_phrases) ? REPLY_SCOPE_MESSAGE
                                                          : REPLY_SCOPE_PROVIDER;
    default: /* x.0.x and unregistered subjects */
        return REPLY_SCOPE_NONE;
    }
}

static enum reply_scope reply_scope_default(enum reply_phase phase, int code)
{
    switch (phase) {
    case REPLY_PHASE_RCPT:
        return code == 450 || code == 550 || code == 551 || code == 552 || code == 553
                   ? REPLY_SCOPE_RECIPIENT
                   : REPLY_SCOPE_PROVIDER;
    case REPLY_PHASE_DATA:
        return code >= 500 ? REPLY_SCOPE_MESSAGE : REPLY_SCOPE_PROVIDER;
    case REPLY_PHASE_MAIL:
        return code == 552 ? REPLY_SCOPE_MESSAGE : REPLY_SCOPE_PROVIDER;
    default:
        return REPLY_SCOPE_PROVIDER;
    }
}

struct reply_class reply_classify(enum reply_phase phase, int code, const char *enhanced,
                                  const char *text)
{
    struct reply_class c = {REPLY_PENDING, REPLY_SCOPE_NONE, false, false, false};
    if (!text)
        text = "";
    if (code < 200 || code > 599) {
        c.outcome = REPLY_FAILED;
        c.scope = REPLY_SCOPE_PROVIDER;
        c.throttle = true;
        c.retry = true;
        return c;
    }
    if (phase == REPLY_PHASE_QUIT || code < 400) {
        if (code < 300 && phase == REPLY_PHASE_DATA)
            c.outcome = REPLY_DELIVERED;
        return c;
    }

    enum reply_scope s = REPLY_SCOPE_NONE;
    if (code == 421)
        s = REPLY_SCOPE_PROVIDER;
    else if (code < 500 && reply_has_any(text, reply_greylist_phrases))
        s = REPLY_SCOPE_RECIPIENT; /* often sent as 4.7.1, which would read as policy */
    if (s == REPLY_SCOPE_NONE)
        s = reply_scope_enhanced(enhanced, text);
    if (s == REPLY_SCOPE_NONE) {
        if (reply_has_any(text, reply_recipient_phrases))
            s = REPLY_SCOPE_RECIPIENT;
        else if (reply_has_any(text, reply_provider_phrases))
            s = REPLY_SCOPE_PROVIDER;
        else if (reply_has_any(text, reply_message_phrases))
            s = REPLY_SCOPE_MESSAGE;
        else
            s = reply_scope_default(phase, code);
    }
    /* Before RCPT no recipient has been named: a "recipient" code there is the server's. */
    if (s == REPLY_SCOPE_RECIPIENT && phase != REPLY_PHASE_RCPT && phase != REPLY_PHASE_DATA)
        s = REPLY_SCOPE_PROVIDER;

    c.scope = s;
    if (code < 500) {
        c.outcome = REPLY_DEFERRED;
        c.retry = true;
        c.throttle = s == REPLY_SCOPE_PROVIDER;
    } else {
        c.outcome = REPLY_BOUNCED;
        c.suppress = s == REPLY_SCOPE_RECIPIENT;
    }
    return c;
}

const char *reply_phase_name(enum reply_phase p)
{
    static const char *const names[] = {"connect", "ehlo", "starttls", "auth",
                                        "mail",    "rcpt", "data",     "quit"};
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

const char *reply_outcome_name(enum reply_outcome o)
{
    static const char *const names[] = {"pending", "delivered", "deferred",
                                        "bounced", "failed",    "expired"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "?";
}

const char *reply_scope_name(enum reply_scope s)
{
    static const char *const names[] = {"none", "recipient", "provider", "message"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}
