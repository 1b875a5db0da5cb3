/*
 * reply: parsing SMTP replies and judging whose fault a refusal is (see reply.h).
 *
 * The syntax is RFC 5321 section 4.2 (reply lines), RFC 2034 (enhanced status codes at the
 * start of each line's text) and RFC 3463 section 2 (the code's syntax); the meaning of the
 * subjects and details is RFC 3463 section 3, RFC 4954 (AUTH), RFC 7372 and RFC 7505, and the
 * judgement encodes how the large mailbox providers word their throttling, block lists and
 * authentication refusals in their published error lists. The input comes from the network,
 * so the parser works on a length-delimited buffer in two linear passes without allocating,
 * and writes only into the fixed buffers of struct reply: any byte string, of any size, parses
 * without harm; the judgement only reads the NUL-terminated text it is given.
 */
#include "ipwarm/reply.h"

#include "ipwarm/chars.h"

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

/*
 * The reply code of a line, or 0 when the line does not open with one. *final is set when the
 * line ends the reply ("CODE text" or "CODE"), *text_off to where its text starts.
 */
static int reply_line_code(const char *s, size_t n, bool *final, size_t *text_off)
{
    if (n < 3 || s[0] < '2' || s[0] > '5' || !chars_is_digit(s[1]) || !chars_is_digit(s[2]))
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
    while (i < n && i < 4 && chars_is_digit(s[i]))
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

/* Appends one line's text, trimmed, after a single space when text came before. */
static void reply_put_line(struct reply_writer *w, const char *s, size_t n)
{
    while (n > 0 && chars_is_blank(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && chars_is_blank(s[n - 1]))
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
        while (lead < tn && chars_is_blank(t[lead]))
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

/* ---- the judgement ---- */

/*
 * What a phrase in a reply is evidence of. The same words mean different faults by class and
 * phase ("blocked" in a 5xx at MAIL is our IP refused; a 421 saying it is a rate limit), so the
 * table below says only what a phrase is a clue of and reply_decide() weighs the clues.
 */
enum reply_clue {
    REPLY_CLUE_GREYLIST = 1u << 0,
    REPLY_CLUE_MAILBOX = 1u << 1,      /* the mailbox does not exist or is disabled */
    REPLY_CLUE_MAILBOX_WEAK = 1u << 2, /* RFC 5321's "mailbox unavailable": any 550 says it */
    REPLY_CLUE_FULL = 1u << 3,         /* the mailbox is full */
    REPLY_CLUE_RCPT_RATE = 1u << 4,    /* the recipient receives too fast */
    REPLY_CLUE_RCPT = 1u << 5,         /* the recipient is refused, no reason given */
    REPLY_CLUE_THROTTLE = 1u << 6,     /* rate limits, busy, try later */
    REPLY_CLUE_REPUTATION = 1u << 7,   /* our reputation, unsolicited mail */
    REPLY_CLUE_BLOCKLIST = 1u << 8,    /* a block list, our IP blocked: never anything else */
    REPLY_CLUE_BLOCKED = 1u << 9,      /* weaker: "blocked", "listed in", "banned" */
    REPLY_CLUE_AUTHPOL = 1u << 10,     /* SPF, DKIM, DMARC, reverse DNS, HELO refused */
    REPLY_CLUE_CONTENT = 1u << 11,     /* virus, spam content, header syntax */
    REPLY_CLUE_SIZE = 1u << 12,
    REPLY_CLUE_RELAY = 1u << 13,   /* relaying refused */
    REPLY_CLUE_TLS = 1u << 14,     /* TLS required */
    REPLY_CLUE_AUTH = 1u << 15,    /* authentication required */
    REPLY_CLUE_SENDER = 1u << 16,  /* our sender address (the return path) refused */
    REPLY_CLUE_NULL_MX = 1u << 17, /* RFC 7505 */
    REPLY_CLUE_POLICY = 1u << 18,  /* a refusal that gives a reason, not necessarily ours */
};

/* A phrase, lower case ASCII; word: it must not touch letters or digits on either side. */
struct reply_phrase {
    const char *text;
    unsigned clue;
    bool word;
};

/*
 * The phrases, from the providers' documented replies and the reject texts of Postfix, Exim
 * and Sendmail (tests/unit/reply_cases.h quotes them with their sources). Words that appear in
 * replies of other kinds are left out or given as longer phrases: "spf" alone is in Gmail's
 * 4.7.28 rate limit ("your SPF domain"), "insufficient system storage" is the server's own
 * trouble (RFC 5321's 452), "greylisted" contains "listed".
 */
static const struct reply_phrase reply_phrases[] = {
    {"greylist", REPLY_CLUE_GREYLIST, false},
    {"graylist", REPLY_CLUE_GREYLIST, false},
    {"grey-list", REPLY_CLUE_GREYLIST, false},
    {"gray-list", REPLY_CLUE_GREYLIST, false},
    {"grey list", REPLY_CLUE_GREYLIST, false},
    {"gray list", REPLY_CLUE_GREYLIST, false},

    {"user unknown", REPLY_CLUE_MAILBOX, false},
    {"unknown user", REPLY_CLUE_MAILBOX, false},
    {"addressee unknown", REPLY_CLUE_MAILBOX, false},
    {"recipient unknown", REPLY_CLUE_MAILBOX, false},
    {"unknown recipient", REPLY_CLUE_MAILBOX, false},
    {"no such user", REPLY_CLUE_MAILBOX, false},
    {"no such mailbox", REPLY_CLUE_MAILBOX, false},
    {"no such recipient", REPLY_CLUE_MAILBOX, false},
    {"no such address", REPLY_CLUE_MAILBOX, false},
    {"user not found", REPLY_CLUE_MAILBOX, false},
    {"mailbox not found", REPLY_CLUE_MAILBOX, false},
    {"recipient not found", REPLY_CLUE_MAILBOX, false},
    {"address not found", REPLY_CLUE_MAILBOX, false},
    {"invalid recipient", REPLY_CLUE_MAILBOX, false},
    {"invalid mailbox", REPLY_CLUE_MAILBOX, false},
    {"invalid address", REPLY_CLUE_MAILBOX, false},
    {"not a valid email address", REPLY_CLUE_MAILBOX, false},
    {"does not exist", REPLY_CLUE_MAILBOX, false},
    {"doesn't exist", REPLY_CLUE_MAILBOX, false},
    {"doesn't have a", REPLY_CLUE_MAILBOX, false},
    {"no mailbox", REPLY_CLUE_MAILBOX, false},
    {"mailbox unallocated", REPLY_CLUE_MAILBOX, false},
    {"mailbox disabled", REPLY_CLUE_MAILBOX, false},
    {"mailbox is disabled", REPLY_CLUE_MAILBOX, false},
    {"account disabled", REPLY_CLUE_MAILBOX, false},
    {"account is disabled", REPLY_CLUE_MAILBOX, false},
    {"account has been disabled", REPLY_CLUE_MAILBOX, false},
    {"inactive", REPLY_CLUE_MAILBOX, false},
    {"inactivity", REPLY_CLUE_MAILBOX, false},
    {"no longer valid", REPLY_CLUE_MAILBOX, false},
    {"unrouteable address", REPLY_CLUE_MAILBOX, false},
    {"unroutable address", REPLY_CLUE_MAILBOX, false},
    {"not our customer", REPLY_CLUE_MAILBOX, false},
    {"domino directory", REPLY_CLUE_MAILBOX, false},

    {"mailbox unavailable", REPLY_CLUE_MAILBOX_WEAK, false},
    {"mailbox is unavailable", REPLY_CLUE_MAILBOX_WEAK, false},
    {"mailbox not available", REPLY_CLUE_MAILBOX_WEAK, false},
    {"requested action not taken", REPLY_CLUE_MAILBOX_WEAK, false},

    {"mailbox full", REPLY_CLUE_FULL, false},
    {"mailbox is full", REPLY_CLUE_FULL, false},
    {"inbox is full", REPLY_CLUE_FULL, false},
    {"over quota", REPLY_CLUE_FULL, false},
    {"overquota", REPLY_CLUE_FULL, false},
    {"quota exceeded", REPLY_CLUE_FULL, false},
    {"exceeded quota", REPLY_CLUE_FULL, false},
    {"quota violation", REPLY_CLUE_FULL, false},
    {"exceeded storage", REPLY_CLUE_FULL, false},
    {"storage allocation", REPLY_CLUE_FULL, false},
    {"out of storage", REPLY_CLUE_FULL, false},
    {"mailbox size limit", REPLY_CLUE_FULL, false},

    {"receiving mail too quickly", REPLY_CLUE_RCPT_RATE, false},
    {"receiving mail at a rate", REPLY_CLUE_RCPT_RATE, false},
    {"they can receive", REPLY_CLUE_RCPT_RATE, false},
    {"send to this recipient", REPLY_CLUE_RCPT_RATE, false},
    {"recipient thread limit", REPLY_CLUE_RCPT_RATE, false},

    {"recipient address rejected", REPLY_CLUE_RCPT, false},
    {"recipient addresses rejected", REPLY_CLUE_RCPT, false},
    {"recipient rejected", REPLY_CLUE_RCPT, false},
    {"rejected by recipient", REPLY_CLUE_RCPT, false},
    {"resolver.rst.", REPLY_CLUE_RCPT, false},
    {"target address", REPLY_CLUE_RCPT, false},

    {"rate limit", REPLY_CLUE_THROTTLE, false},
    {"ratelimit", REPLY_CLUE_THROTTLE, false},
    {"rate-limit", REPLY_CLUE_THROTTLE, false},
    {"unusual rate", REPLY_CLUE_THROTTLE, false},
    {"rate overlimit", REPLY_CLUE_THROTTLE, false},
    {"rate exceeded", REPLY_CLUE_THROTTLE, false},
    {"limit exceeded", REPLY_CLUE_THROTTLE, false},
    {"frequency limit", REPLY_CLUE_THROTTLE, false},
    {"try again later", REPLY_CLUE_THROTTLE, false},
    {"try later", REPLY_CLUE_THROTTLE, false},
    {"retry later", REPLY_CLUE_THROTTLE, false},
    {"please try again", REPLY_CLUE_THROTTLE, false},
    {"come back later", REPLY_CLUE_THROTTLE, false},
    {"temporarily deferred", REPLY_CLUE_THROTTLE, false},
    {"deferred due to", REPLY_CLUE_THROTTLE, false},
    {"temporarily rejected", REPLY_CLUE_THROTTLE, false},
    {"temporarily unavailable", REPLY_CLUE_THROTTLE, false},
    {"temporary failure", REPLY_CLUE_THROTTLE, false},
    {"temporary system", REPLY_CLUE_THROTTLE, false},
    {"temporary server error", REPLY_CLUE_THROTTLE, false},
    {"server busy", REPLY_CLUE_THROTTLE, false},
    {"system busy", REPLY_CLUE_THROTTLE, false},
    {"too busy", REPLY_CLUE_THROTTLE, false},
    {"too many", REPLY_CLUE_THROTTLE, false},
    {"throttl", REPLY_CLUE_THROTTLE, false},
    {"slow down", REPLY_CLUE_THROTTLE, false},
    {"too fast", REPLY_CLUE_THROTTLE, false},
    {"unexpected volume", REPLY_CLUE_THROTTLE, false},
    {"excessive volume", REPLY_CLUE_THROTTLE, false},
    {"complaints", REPLY_CLUE_THROTTLE, false},
    {"resources temporarily", REPLY_CLUE_THROTTLE, false},
    {"insufficient system", REPLY_CLUE_THROTTLE, false},
    {"system resources", REPLY_CLUE_THROTTLE, false},
    {"not accepting mail", REPLY_CLUE_THROTTLE, false},
    {"concurrent connections", REPLY_CLUE_THROTTLE, false},
    {"connection rate", REPLY_CLUE_THROTTLE, false},
    {"[tss0", REPLY_CLUE_THROTTLE, false},
    {"[ts0", REPLY_CLUE_THROTTLE, false},

    {"reputation", REPLY_CLUE_REPUTATION, false},
    {"unsolicited", REPLY_CLUE_REPUTATION, false},
    {"suspicious due to", REPLY_CLUE_REPUTATION, false},
    {"spam sender", REPLY_CLUE_REPUTATION, false},
    {"suspected spam", REPLY_CLUE_REPUTATION, false},
    {"spammer", REPLY_CLUE_REPUTATION, false},
    {"spamming", REPLY_CLUE_REPUTATION, false},

    {"block list", REPLY_CLUE_BLOCKLIST, false},
    {"blocklist", REPLY_CLUE_BLOCKLIST, false},
    {"block-list", REPLY_CLUE_BLOCKLIST, false},
    {"blacklist", REPLY_CLUE_BLOCKLIST, false},
    {"black list", REPLY_CLUE_BLOCKLIST, false},
    {"black-list", REPLY_CLUE_BLOCKLIST, false},
    {"denylist", REPLY_CLUE_BLOCKLIST, false},
    {"deny list", REPLY_CLUE_BLOCKLIST, false},
    {"blocked using", REPLY_CLUE_BLOCKLIST, false},
    {"spamhaus", REPLY_CLUE_BLOCKLIST, false},
    {"spamcop", REPLY_CLUE_BLOCKLIST, false},
    {"barracuda", REPLY_CLUE_BLOCKLIST, false},
    {"sorbs", REPLY_CLUE_BLOCKLIST, true},
    {"spamrats", REPLY_CLUE_BLOCKLIST, false},
    {"uceprotect", REPLY_CLUE_BLOCKLIST, false},
    {"cloudmark", REPLY_CLUE_BLOCKLIST, false},
    {"mailspike", REPLY_CLUE_BLOCKLIST, false},
    {"dnsbl", REPLY_CLUE_BLOCKLIST, false},
    {"rbl", REPLY_CLUE_BLOCKLIST, true},
    {"threat list", REPLY_CLUE_BLOCKLIST, false},
    {"[bl2", REPLY_CLUE_BLOCKLIST, false},
    {"(s3150)", REPLY_CLUE_BLOCKLIST, false},
    {"(s3140)", REPLY_CLUE_BLOCKLIST, false},
    {"banned sending ip", REPLY_CLUE_BLOCKLIST, false},
    {"banned sender", REPLY_CLUE_BLOCKLIST, false},
    {"bad ip", REPLY_CLUE_BLOCKLIST, true},
    {"host blocked", REPLY_CLUE_BLOCKLIST, false},
    {"ip blocked", REPLY_CLUE_BLOCKLIST, true},
    {"ip is blocked", REPLY_CLUE_BLOCKLIST, true},
    {"ip address is block", REPLY_CLUE_BLOCKLIST, true},
    {"ip address blocked", REPLY_CLUE_BLOCKLIST, true},
    {"ip address has been blocked", REPLY_CLUE_BLOCKLIST, true},
    {"ip has been blocked", REPLY_CLUE_BLOCKLIST, true},
    {"found on one or more", REPLY_CLUE_BLOCKLIST, false},

    {"blocked", REPLY_CLUE_BLOCKED, false},
    {"block for", REPLY_CLUE_BLOCKED, false},
    {"client host rejected", REPLY_CLUE_BLOCKED, false},
    {"banned", REPLY_CLUE_BLOCKED, false},
    {"listed at", REPLY_CLUE_BLOCKED, false},
    {"listed in", REPLY_CLUE_BLOCKED, false},
    {"listed on", REPLY_CLUE_BLOCKED, false},
    {"listed by", REPLY_CLUE_BLOCKED, false},
    {"is listed", REPLY_CLUE_BLOCKED, false},
    {"are listed", REPLY_CLUE_BLOCKED, false},
    {"been listed", REPLY_CLUE_BLOCKED, false},
    {"listing in", REPLY_CLUE_BLOCKED, false},

    {"unauthenticated", REPLY_CLUE_AUTHPOL, false},
    {"authentication checks", REPLY_CLUE_AUTHPOL, false},
    {"authentication information", REPLY_CLUE_AUTHPOL, false},
    {"authentication level", REPLY_CLUE_AUTHPOL, false},
    {"dmarc", REPLY_CLUE_AUTHPOL, false},
    {"spf check", REPLY_CLUE_AUTHPOL, true},
    {"spf-check", REPLY_CLUE_AUTHPOL, true},
    {"spf fail", REPLY_CLUE_AUTHPOL, true},
    {"spf=fail", REPLY_CLUE_AUTHPOL, true},
    {"spf validation", REPLY_CLUE_AUTHPOL, true},
    {"spf authentication", REPLY_CLUE_AUTHPOL, true},
    {"spf policy", REPLY_CLUE_AUTHPOL, true},
    {"spf record", REPLY_CLUE_AUTHPOL, true},
    {"due to spf", REPLY_CLUE_AUTHPOL, true},
    {"dkim fail", REPLY_CLUE_AUTHPOL, true},
    {"dkim=fail", REPLY_CLUE_AUTHPOL, true},
    {"dkim signature", REPLY_CLUE_AUTHPOL, true},
    {"dkim authentication", REPLY_CLUE_AUTHPOL, true},
    {"dkim validation", REPLY_CLUE_AUTHPOL, true},
    {"reverse dns", REPLY_CLUE_AUTHPOL, false},
    {"reverse hostname", REPLY_CLUE_AUTHPOL, false},
    {"rdns", REPLY_CLUE_AUTHPOL, true},
    {"ptr", REPLY_CLUE_AUTHPOL, true},
    {"cannot find your hostname", REPLY_CLUE_AUTHPOL, false},
    {"helo command rejected", REPLY_CLUE_AUTHPOL, false},
    {"helo domain", REPLY_CLUE_AUTHPOL, false},
    {"helo rejected", REPLY_CLUE_AUTHPOL, false},
    {"bad helo", REPLY_CLUE_AUTHPOL, false},
    {"invalid helo", REPLY_CLUE_AUTHPOL, false},

    {"virus", REPLY_CLUE_CONTENT, false},
    {"malware", REPLY_CLUE_CONTENT, false},
    {"phish", REPLY_CLUE_CONTENT, false},
    {"attachment", REPLY_CLUE_CONTENT, false},
    {"content", REPLY_CLUE_CONTENT, false},
    {"spam message", REPLY_CLUE_CONTENT, false},
    {"rejected as spam", REPLY_CLUE_CONTENT, false},
    {"detected as spam", REPLY_CLUE_CONTENT, false},
    {"looks like spam", REPLY_CLUE_CONTENT, false},
    {"considered as spam", REPLY_CLUE_CONTENT, false},
    {"considered spam", REPLY_CLUE_CONTENT, false},
    {"flagged as spam", REPLY_CLUE_CONTENT, false},
    {"suspicion of spam", REPLY_CLUE_CONTENT, false},
    {"spam detected", REPLY_CLUE_CONTENT, false},
    {"spam filter", REPLY_CLUE_CONTENT, false},
    {"spam url", REPLY_CLUE_CONTENT, false},
    {"uribl", REPLY_CLUE_CONTENT, false},
    {"surbl", REPLY_CLUE_CONTENT, false},
    {"message filtered", REPLY_CLUE_CONTENT, false},
    {"header", REPLY_CLUE_CONTENT, false},
    {"rfc 5322", REPLY_CLUE_CONTENT, false},
    {"rfc5322", REPLY_CLUE_CONTENT, false},
    {"rfc-5322", REPLY_CLUE_CONTENT, false},
    {"rfc 2822", REPLY_CLUE_CONTENT, false},
    {"not rfc compliant", REPLY_CLUE_CONTENT, false},

    {"too large", REPLY_CLUE_SIZE, false},
    {"too big", REPLY_CLUE_SIZE, false},
    {"size limit", REPLY_CLUE_SIZE, false},
    {"exceeds size", REPLY_CLUE_SIZE, false},
    {"size exceeds", REPLY_CLUE_SIZE, false},
    {"message size", REPLY_CLUE_SIZE, false},

    {"relay access denied", REPLY_CLUE_RELAY, false},
    {"relaying denied", REPLY_CLUE_RELAY, false},
    {"relay denied", REPLY_CLUE_RELAY, false},
    {"relay not permitted", REPLY_CLUE_RELAY, false},
    {"relaying not permitted", REPLY_CLUE_RELAY, false},
    {"not permitted to relay", REPLY_CLUE_RELAY, false},
    {"unable to relay", REPLY_CLUE_RELAY, false},
    {"relaying disallowed", REPLY_CLUE_RELAY, false},
    {"relay not allowed", REPLY_CLUE_RELAY, false},
    {"relaying not allowed", REPLY_CLUE_RELAY, false},
    {"relay prohibited", REPLY_CLUE_RELAY, false},
    {"relaying prohibited", REPLY_CLUE_RELAY, false},
    {"we do not relay", REPLY_CLUE_RELAY, false},
    {"as a relay", REPLY_CLUE_RELAY, false},

    {"must issue a starttls", REPLY_CLUE_TLS, false},
    {"starttls first", REPLY_CLUE_TLS, false},
    {"starttls is required", REPLY_CLUE_TLS, false},
    {"starttls required", REPLY_CLUE_TLS, false},
    {"tls required", REPLY_CLUE_TLS, true},
    {"tls is required", REPLY_CLUE_TLS, true},
    {"requires tls", REPLY_CLUE_TLS, true},
    {"encryption required", REPLY_CLUE_TLS, false},
    {"encryption needed", REPLY_CLUE_TLS, false},

    {"authentication required", REPLY_CLUE_AUTH, false},
    {"authentication is required", REPLY_CLUE_AUTH, false},
    {"auth required", REPLY_CLUE_AUTH, true},
    {"client was not authenticated", REPLY_CLUE_AUTH, false},
    {"client not authenticated", REPLY_CLUE_AUTH, false},
    {"not authenticated to send", REPLY_CLUE_AUTH, false},
    {"anonymous mail", REPLY_CLUE_AUTH, false},

    {"sender address rejected", REPLY_CLUE_SENDER, false},
    {"domain of sender address", REPLY_CLUE_SENDER, false},
    {"sender verify", REPLY_CLUE_SENDER, false},
    {"sender verification", REPLY_CLUE_SENDER, false},
    {"invalid sender", REPLY_CLUE_SENDER, false},
    {"sender address is invalid", REPLY_CLUE_SENDER, false},
    {"sender address invalid", REPLY_CLUE_SENDER, false},
    {"not a valid sender", REPLY_CLUE_SENDER, false},
    {"bad sender", REPLY_CLUE_SENDER, false},
    {"sender rejected", REPLY_CLUE_SENDER, false},
    {"not owned by user", REPLY_CLUE_SENDER, false},
    {"sendasdenied", REPLY_CLUE_SENDER, false},

    {"null mx", REPLY_CLUE_NULL_MX, false},

    {"policy", REPLY_CLUE_POLICY, false},
    {"access denied", REPLY_CLUE_POLICY, false},
    {"denied", REPLY_CLUE_POLICY, false},
    {"not allowed", REPLY_CLUE_POLICY, false},
    {"not accepted", REPLY_CLUE_POLICY, false},
    {"not authorized", REPLY_CLUE_POLICY, false},
    {"refused", REPLY_CLUE_POLICY, false},
    {"prohibited", REPLY_CLUE_POLICY, false},
    {"reject", REPLY_CLUE_POLICY, false},
};

/* True if t (n bytes) holds the phrase, ASCII case-insensitively, on word bounds if asked. */
static bool reply_has_phrase(const char *t, size_t n, const struct reply_phrase *ph)
{
    size_t pl = strlen(ph->text);
    if (pl == 0 || pl > n)
        return false;
    for (size_t i = 0; i + pl <= n; i++) {
        if ((char)chars_lower(t[i]) != ph->text[0])
            continue;
        size_t k = 1;
        while (k < pl && (char)chars_lower(t[i + k]) == ph->text[k])
            k++;
        if (k < pl)
            continue;
        if (ph->word &&
            ((i > 0 && chars_is_alnum(t[i - 1])) || (i + pl < n && chars_is_alnum(t[i + pl]))))
            continue;
        return true;
    }
    return false;
}

/* True if low (lower case, NUL-terminated) holds the phrase, on word bounds if asked. */
static bool reply_has_phrase_lower(const char *low, size_t n, const struct reply_phrase *ph)
{
    size_t pl = strlen(ph->text);
    for (const char *p = strstr(low, ph->text); p; p = strstr(p + 1, ph->text)) {
        size_t i = (size_t)(p - low);
        if (!ph->word ||
            ((i == 0 || !chars_is_alnum(low[i - 1])) && (i + pl >= n || !chars_is_alnum(p[pl]))))
            return true;
    }
    return false;
}

/*
 * The clues in a text: one pass of the phrase table. A text that fits REPLY_TEXT_MAX (every
 * text reply_parse gives) is lowered once and searched with strstr; a longer one, which only a
 * caller of its own can pass, is searched in place.
 */
static unsigned reply_clues(const char *text)
{
    size_t n = strlen(text);
    char low[REPLY_TEXT_MAX];
    bool lowered = n < sizeof low;
    if (lowered) {
        for (size_t i = 0; i < n; i++)
            low[i] = (char)chars_lower(text[i]);
        low[n] = '\0';
    }
    unsigned clues = 0;
    for (size_t i = 0; i < sizeof reply_phrases / sizeof reply_phrases[0]; i++) {
        const struct reply_phrase *ph = &reply_phrases[i];
        if (clues & ph->clue)
            continue;
        if (lowered ? reply_has_phrase_lower(low, n, ph) : reply_has_phrase(text, n, ph))
            clues |= ph->clue;
    }
    return clues;
}

/*
 * Policy codes (x.7.DDD) whose meaning is documented beyond RFC 3463: RFC 7372, RFC 7505,
 * Gmail's SMTP error list and Microsoft's NDR reference. cls 0 applies to 4xx and 5xx.
 * relay_fault is the fault when the reply comes from our own smarthost.
 */
struct reply_policy_code {
    int cls;
    int lo, hi;
    enum reply_fault fault;
    enum reply_fault relay_fault;
};

static const struct reply_policy_code reply_policy_codes[] = {
    {0, 20, 26, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},         /* DKIM, SPF, reverse DNS */
    {0, 27, 27, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},         /* Gmail SPF; RFC 7505: below */
    {0, 28, 28, REPLY_FAULT_PROVIDER, REPLY_FAULT_PROVIDER},     /* mail flood, unusual rate */
    {0, 30, 32, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},         /* Gmail DKIM, DMARC, alignment */
    {0, 40, 40, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},         /* Gmail DMARC policy missing */
    {0, 57, 57, REPLY_FAULT_SENDER, REPLY_FAULT_SETUP},          /* not authenticated */
    {0, 60, 60, REPLY_FAULT_SENDER, REPLY_FAULT_SETUP},          /* send-as denied */
    {4, 500, 899, REPLY_FAULT_PROVIDER, REPLY_FAULT_PROVIDER},   /* server busy, rate limited */
    {5, 501, 503, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},       /* spam abuse, banned sender */
    {5, 504, 505, REPLY_FAULT_RECIPIENT, REPLY_FAULT_RECIPIENT}, /* recipient access denied */
    {5, 506, 506, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},       /* bad HELO */
    {5, 507, 507, REPLY_FAULT_RECIPIENT, REPLY_FAULT_RECIPIENT}, /* rejected by recipient */
    {5, 508, 511, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},   /* IP limits, DMARC, banned sender */
    {5, 512, 512, REPLY_FAULT_MESSAGE, REPLY_FAULT_MESSAGE}, /* no valid From header */
    {5, 513, 513, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},   /* customer block list */
    {5, 515, 515, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},   /* authentication level */
    {5, 606, 649, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},   /* banned sending IP */
    {5, 700, 702, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},   /* tenant over threshold */
    {5, 703, 703, REPLY_FAULT_RECIPIENT, REPLY_FAULT_RECIPIENT}, /* tenant blocks recipient */
    {5, 704, 749, REPLY_FAULT_SENDER, REPLY_FAULT_SENDER},
    {5, 750, 750, REPLY_FAULT_SENDER, REPLY_FAULT_SETUP}, /* unregistered sending domain */
};

/* The reply as the decision sees it. subject and detail are -1 without a valid code. */
struct reply_view {
    enum reply_phase phase;
    int code;
    bool temp; /* 4xx */
    int subject, detail;
    unsigned clues;
    bool relay;
};

/* Reads "C.S.D" into subject and detail when valid and of the reply's class. */
static void reply_view_code(struct reply_view *v, const char *enhanced)
{
    v->subject = v->detail = -1;
    if (!enhanced)
        return;
    size_t len = strnlen(enhanced, REPLY_ENHANCED_MAX);
    if (!reply_enhanced_valid(enhanced, len) || enhanced[0] - '0' != v->code / 100)
        return;
    const char *p = enhanced + 2;
    int s = 0, d = 0;
    while (*p != '.')
        s = s * 10 + (*p++ - '0');
    p++;
    while (*p)
        d = d * 10 + (*p++ - '0');
    v->subject = s;
    v->detail = d;
}

static bool reply_has_clue(const struct reply_view *v, unsigned clues)
{
    return (v->clues & clues) != 0;
}

static bool reply_rcpt_or_data(const struct reply_view *v)
{
    return v->phase == REPLY_PHASE_RCPT || v->phase == REPLY_PHASE_DATA;
}

/* A named policy code's fault, or NONE. */
static enum reply_fault reply_fault_policy_code(const struct reply_view *v, bool *keep)
{
    if (v->subject != 7)
        return REPLY_FAULT_NONE;
    for (size_t i = 0; i < sizeof reply_policy_codes / sizeof reply_policy_codes[0]; i++) {
        const struct reply_policy_code *pc = &reply_policy_codes[i];
        if ((pc->cls && pc->cls != v->code / 100) || v->detail < pc->lo || v->detail > pc->hi)
            continue;
        if (v->detail == 27 && !v->temp && reply_has_clue(v, REPLY_CLUE_NULL_MX))
            return REPLY_FAULT_SETUP; /* RFC 7505: our return path's domain takes no mail */
        enum reply_fault f = v->relay ? pc->relay_fault : pc->fault;
        if (f == REPLY_FAULT_RECIPIENT)
            *keep = true; /* that recipient refuses us: no proof the mailbox is bad */
        return f;
    }
    return REPLY_FAULT_NONE;
}

/* At RCPT or DATA: whether the recipient is at fault, and whether to keep it if so. */
static bool reply_fault_recipient(const struct reply_view *v, bool *keep)
{
    int s = v->subject, d = v->detail;
    bool rate = reply_has_clue(v, REPLY_CLUE_RCPT_RATE | REPLY_CLUE_THROTTLE);
    if (s == 1 || s == 2) {
        bool proof = (s == 1 && (d == 1 || d == 2 || d == 3 || d == 6 || d == 10)) ||
                     (s == 2 && (d == 1 || d == 2)) ||
                     reply_has_clue(v, REPLY_CLUE_MAILBOX | REPLY_CLUE_FULL);
        *keep = !proof || rate;
        return true;
    }
    if (reply_has_clue(v, REPLY_CLUE_MAILBOX | REPLY_CLUE_FULL)) {
        *keep = rate;
        return true;
    }
    if (reply_has_clue(v, REPLY_CLUE_RCPT_RATE)) {
        *keep = true;
        return true;
    }
    /* RFC 5321's own words for 550 at RCPT, and nothing else (Outlook.com sends it as 5.5.0
     * for an unknown address): the mailbox, as the code says. */
    if (v->phase == REPLY_PHASE_RCPT && !v->temp && v->clues == REPLY_CLUE_MAILBOX_WEAK &&
        (s <= 0 || s == 5)) {
        *keep = false;
        return true;
    }
    return false;
}

/* Rules 2 to 19 of reply.h, for a refusal (4xx or 5xx) not to QUIT. */
static enum reply_fault reply_decide(const struct reply_view *v, bool *keep)
{
    int s = v->subject, d = v->detail;
    enum reply_phase ph = v->phase;
    bool rcpt_or_data = reply_rcpt_or_data(v);
    bool from_mail = ph == REPLY_PHASE_MAIL || rcpt_or_data;

    /* 2-6: TLS we must provide, block lists, greylisting, policy codes, authentication. */
    if (reply_has_clue(v, REPLY_CLUE_TLS) || v->code == 538 ||
        (s == 7 && (d == 10 || d == 11) && !v->temp))
        return REPLY_FAULT_SETUP; /* encryption needed, or required for this mechanism */
    if (reply_has_clue(v, REPLY_CLUE_BLOCKLIST))
        return REPLY_FAULT_SENDER;
    if (v->temp && reply_has_clue(v, REPLY_CLUE_GREYLIST))
        return rcpt_or_data ? REPLY_FAULT_RECIPIENT : REPLY_FAULT_PROVIDER;
    enum reply_fault f = reply_fault_policy_code(v, keep);
    if (f != REPLY_FAULT_NONE)
        return f;
    if (reply_has_clue(v, REPLY_CLUE_AUTHPOL))
        return REPLY_FAULT_SENDER;

    /* 7: AUTH is only ever ours to get right, unless the server is briefly unable. */
    if (ph == REPLY_PHASE_AUTH)
        return !v->temp || v->code == 432 || (s == 7 && d == 12) ? REPLY_FAULT_SETUP
                                                                 : REPLY_FAULT_PROVIDER;

    /* 8: relaying refused, or anonymous mail refused. */
    if (reply_has_clue(v, REPLY_CLUE_RELAY | REPLY_CLUE_AUTH) || (v->code == 530 && from_mail)) {
        if (v->relay)
            return REPLY_FAULT_SETUP;
        if (rcpt_or_data) {
            *keep = true; /* the domain is not hosted there: not the mailbox's fault */
            return REPLY_FAULT_RECIPIENT;
        }
        return REPLY_FAULT_SENDER;
    }

    /* 9: our return path. */
    bool sender_code = s == 1 && (d == 7 || d == 8 || (d == 3 && ph == REPLY_PHASE_MAIL));
    if (from_mail && (sender_code || reply_has_clue(v, REPLY_CLUE_SENDER))) {
        if (!sender_code && s == 7)
            return v->relay ? REPLY_FAULT_SETUP : REPLY_FAULT_SENDER;
        return v->temp ? REPLY_FAULT_MESSAGE : REPLY_FAULT_SETUP;
    }

    /* 10-11: a closing channel, refusals before anything was named. */
    if (v->code == 421)
        return REPLY_FAULT_PROVIDER;
    if (!from_mail) {
        if (v->temp)
            return REPLY_FAULT_PROVIDER;
        if (ph == REPLY_PHASE_STARTTLS)
            return v->relay ? REPLY_FAULT_SETUP : REPLY_FAULT_PROVIDER;
        return REPLY_FAULT_SENDER;
    }

    /* 12-14: too big; the recipient; content. */
    if ((s == 3 && d == 4) || (s == 2 && d == 3))
        return REPLY_FAULT_MESSAGE;
    if (rcpt_or_data && reply_fault_recipient(v, keep))
        return REPLY_FAULT_RECIPIENT;
    if (reply_has_clue(v, REPLY_CLUE_CONTENT | REPLY_CLUE_SIZE))
        return REPLY_FAULT_MESSAGE;

    /* 15-17: reputation and weaker block wording; throttling; a bare recipient refusal. */
    bool throttle = reply_has_clue(v, REPLY_CLUE_THROTTLE);
    if (reply_has_clue(v, REPLY_CLUE_REPUTATION))
        return v->temp ? REPLY_FAULT_PROVIDER : REPLY_FAULT_SENDER;
    if (reply_has_clue(v, REPLY_CLUE_BLOCKED))
        return v->temp && throttle ? REPLY_FAULT_PROVIDER : REPLY_FAULT_SENDER;
    if (throttle)
        return REPLY_FAULT_PROVIDER;
    if (rcpt_or_data && reply_has_clue(v, REPLY_CLUE_RCPT)) {
        *keep = true;
        return REPLY_FAULT_RECIPIENT;
    }

    /* 18: the enhanced code's subject. */
    if (s == 3 || s == 4 || (s == 5 && d == 3))
        return REPLY_FAULT_PROVIDER;
    if (s == 5 || s == 6)
        return REPLY_FAULT_MESSAGE;
    if (s == 7) {
        if (v->temp)
            return REPLY_FAULT_PROVIDER;
        if (ph == REPLY_PHASE_RCPT) {
            *keep = true;
            return REPLY_FAULT_RECIPIENT;
        }
        return ph == REPLY_PHASE_DATA ? REPLY_FAULT_MESSAGE : REPLY_FAULT_SENDER;
    }

    /* 19: the code and the phase. */
    if (ph == REPLY_PHASE_MAIL) {
        if (v->temp)
            return REPLY_FAULT_PROVIDER;
        return v->code == 552 ? REPLY_FAULT_MESSAGE : REPLY_FAULT_SENDER;
    }
    if (ph == REPLY_PHASE_DATA)
        return v->temp ? REPLY_FAULT_PROVIDER : REPLY_FAULT_MESSAGE;
    switch (v->code) {
    case 450:
        return REPLY_FAULT_RECIPIENT;
    case 550:
    case 551:
    case 552:
    case 553:
        /* RFC 5321's "mailbox unavailable" and nothing else: the mailbox, as the code says. */
        *keep = (v->clues & ~(unsigned)REPLY_CLUE_MAILBOX_WEAK) != 0;
        return REPLY_FAULT_RECIPIENT;
    default:
        if (v->temp)
            return REPLY_FAULT_PROVIDER;
        *keep = true;
        return REPLY_FAULT_RECIPIENT;
    }
}

/* Whose the trouble is, for each fault: the mailbox, the message, or the receiving side. */
static enum reply_scope reply_scope_of(enum reply_fault f)
{
    switch (f) {
    case REPLY_FAULT_NONE:
        return REPLY_SCOPE_NONE;
    case REPLY_FAULT_RECIPIENT:
        return REPLY_SCOPE_RECIPIENT;
    case REPLY_FAULT_MESSAGE:
        return REPLY_SCOPE_MESSAGE;
    case REPLY_FAULT_PROVIDER:
    case REPLY_FAULT_SENDER:
    case REPLY_FAULT_SETUP:
    case REPLY_FAULT_NETWORK:
        break;
    }
    return REPLY_SCOPE_PROVIDER;
}

/* The class that follows from a fault (see struct reply_class). */
static struct reply_class reply_class_of(enum reply_fault f, const struct reply_view *v, bool keep)
{
    struct reply_class c;
    memset(&c, 0, sizeof c);
    c.fault = f;
    c.scope = reply_scope_of(f);
    switch (f) {
    case REPLY_FAULT_NONE:
        break;
    case REPLY_FAULT_NETWORK:
        c.outcome = REPLY_FAILED;
        c.throttle = c.retry = true;
        break;
    case REPLY_FAULT_PROVIDER:
        if (v->temp || !reply_rcpt_or_data(v) || reply_has_clue(v, REPLY_CLUE_THROTTLE)) {
            c.outcome = REPLY_DEFERRED;
            c.throttle = c.retry = true;
        } else {
            c.outcome = REPLY_BOUNCED;
        }
        break;
    case REPLY_FAULT_SENDER:
        c.outcome = REPLY_BLOCKED;
        c.suspend = c.requeue = true;
        break;
    case REPLY_FAULT_SETUP:
        c.outcome = REPLY_FAILED;
        c.stop = c.requeue = true;
        break;
    case REPLY_FAULT_MESSAGE:
    case REPLY_FAULT_RECIPIENT:
        /* A temporary refusal is tried again; a final one bounces, and only a mailbox that
         * will not take mail is never sent to again. */
        c.outcome = v->temp ? REPLY_DEFERRED : REPLY_BOUNCED;
        c.retry = v->temp;
        c.suppress = f == REPLY_FAULT_RECIPIENT && !v->temp && !keep;
        break;
    }
    return c;
}

struct reply_class reply_judge(const struct reply_input *in)
{
    struct reply_view v;
    memset(&v, 0, sizeof v);
    v.phase = in->phase;
    if ((unsigned)v.phase > REPLY_PHASE_QUIT)
        v.phase = REPLY_PHASE_CONNECT; /* not a phase: nothing was named yet */
    v.code = in->code;
    v.relay = in->relay;
    if (v.code < 200 || v.code > 599)
        return reply_class_of(REPLY_FAULT_NETWORK, &v, false);
    if (v.phase == REPLY_PHASE_QUIT || v.code < 400) {
        struct reply_class c = reply_class_of(REPLY_FAULT_NONE, &v, false);
        if (v.code < 300 && v.phase == REPLY_PHASE_DATA)
            c.outcome = REPLY_DELIVERED;
        return c;
    }
    v.temp = v.code < 500;
    reply_view_code(&v, in->enhanced);
    v.clues = reply_clues(in->text ? in->text : "");

    bool keep = false;
    enum reply_fault f = reply_decide(&v, &keep);
    /* Nothing names the recipient before RCPT, nor the message before MAIL. */
    if ((f == REPLY_FAULT_RECIPIENT && !reply_rcpt_or_data(&v)) ||
        (f == REPLY_FAULT_MESSAGE && v.phase < REPLY_PHASE_MAIL))
        f = v.temp ? REPLY_FAULT_PROVIDER : REPLY_FAULT_SENDER;
    return reply_class_of(f, &v, keep);
}

struct reply_class reply_classify(enum reply_phase phase, int code, const char *enhanced,
                                  const char *text)
{
    struct reply_input in = {phase, code, enhanced, text, false};
    struct reply_class c = reply_judge(&in);
    if (c.suspend || c.stop) {
        /* A caller without suspend and stop backs the provider off and keeps the recipient. */
        if (c.outcome == REPLY_BLOCKED)
            c.outcome = REPLY_DEFERRED;
        c.throttle = c.retry = true;
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
    static const char *const names[] = {"pending", "delivered", "deferred", "bounced",
                                        "failed",  "expired",   "blocked"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "?";
}

const char *reply_scope_name(enum reply_scope s)
{
    static const char *const names[] = {"none", "recipient", "provider", "message"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

const char *reply_fault_name(enum reply_fault f)
{
    static const char *const names[] = {"none",   "recipient", "message", "provider",
                                        "sender", "setup",     "network"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "?";
}
