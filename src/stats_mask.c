/*
 * stats_mask: a reply text with its variable parts masked (see stats_mask.h), the key under
 * which the store counts replies in summary_reasons and stats groups them. Reply codes follow
 * RFC 5321 4.2 and enhanced codes RFC 3463; they lead each line of a multi-line reply and are
 * dropped here because they have columns of their own.
 */
#include "ipwarm/stats_mask.h"

#include "ipwarm/chars.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* A bounded writer that never cuts a UTF-8 sequence in two. */
struct stats_mask_buf {
    char *out;
    size_t n, len;
    bool full;
};

static void stats_mask_put(struct stats_mask_buf *b, const char *s, size_t len)
{
    if (b->full || b->n == 0)
        return;
    if (b->len + len >= b->n) {
        size_t room = b->n - 1 - b->len;
        /* Back off to the start of a character: continuation bytes are 10xxxxxx. */
        while (room > 0 && ((unsigned char)s[room] & 0xC0) == 0x80)
            room--;
        len = room;
        b->full = true;
    }
    memcpy(b->out + b->len, s, len);
    b->len += len;
    b->out[b->len] = '\0';
}

static void stats_mask_puts(struct stats_mask_buf *b, const char *s)
{
    stats_mask_put(b, s, strlen(s));
}

/* The characters a variable part (address, name, ID, number) is made of. */
static bool stats_mask_is_tok(int c)
{
    return chars_is_alnum(c) || c == '.' || c == ':' || c == '-' || c == '_' || c == '@' ||
           c == '+';
}

/* Dotted quad, each part 1 to 3 digits. */
static bool stats_mask_is_ipv4(const char *t, size_t n)
{
    int parts = 0;
    size_t i = 0;
    while (i < n) {
        size_t d = 0;
        while (i < n && chars_is_digit(t[i]) && d < 4) {
            i++;
            d++;
        }
        if (d == 0 || d > 3)
            return false;
        parts++;
        if (i == n)
            break;
        if (t[i] != '.')
            return false;
        i++;
        if (i == n)
            return false;
    }
    return parts == 4;
}

/*
 * Hex groups and colons, with "::", a hex letter or seven colons, so that a time of day
 * ("10:00:00") is not taken for an address.
 */
static bool stats_mask_is_ipv6(const char *t, size_t n)
{
    int colons = 0;
    bool letter = false, dbl = false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == ':') {
            colons++;
            if (i + 1 < n && t[i + 1] == ':')
                dbl = true;
        } else if (!chars_is_hex(c) && c != '.') {
            return false;
        } else if (chars_is_alpha(c)) {
            letter = true;
        }
    }
    return colons >= 2 && (dbl || letter || colons >= 7);
}

/* Two or more labels of letters, digits and '-', the last all letters and two or more long. */
static bool stats_mask_is_host(const char *t, size_t n)
{
    int labels = 0;
    size_t i = 0, last_start = 0;
    while (i <= n) {
        size_t s = i;
        while (i < n && (chars_is_alnum(t[i]) || t[i] == '-' || t[i] == '_'))
            i++;
        if (i == s)
            return false;
        labels++;
        last_start = s;
        if (i == n)
            break;
        if (t[i] != '.')
            return false;
        i++;
    }
    if (labels < 2 || n - last_start < 2)
        return false;
    for (size_t k = last_start; k < n; k++)
        if (!chars_is_alpha(t[k]))
            return false;
    return true;
}

static bool stats_mask_is_addr(const char *t, size_t n)
{
    const char *at = memchr(t, '@', n);
    if (!at || at == t)
        return false;
    size_t dn = n - (size_t)(at + 1 - t);
    return dn > 0 && stats_mask_is_host(at + 1, dn);
}

/* Writes one token, masked. */
static void stats_mask_token(struct stats_mask_buf *b, const char *t, size_t n)
{
    if (stats_mask_is_addr(t, n)) {
        stats_mask_puts(b, "<addr>");
        return;
    }
    if (stats_mask_is_ipv4(t, n) || stats_mask_is_ipv6(t, n)) {
        stats_mask_puts(b, "<ip>");
        return;
    }
    if (stats_mask_is_host(t, n)) {
        stats_mask_puts(b, "<host>");
        return;
    }
    bool digit = false, letter = false;
    for (size_t i = 0; i < n; i++) {
        digit |= chars_is_digit(t[i]);
        letter |= chars_is_alpha(t[i]);
    }
    if (n >= 8 && digit && letter) {
        stats_mask_puts(b, "<id>");
        return;
    }
    /* Numbers standing on their own become '#'; digits inside a word ("S77714") stay. */
    size_t i = 0;
    while (i < n) {
        if (chars_is_digit(t[i])) {
            size_t s = i;
            while (i < n && chars_is_digit(t[i]))
                i++;
            bool inside = (s > 0 && chars_is_alpha(t[s - 1])) || (i < n && chars_is_alpha(t[i]));
            if (inside)
                stats_mask_put(b, t + s, i - s);
            else
                stats_mask_puts(b, "#");
        } else {
            stats_mask_put(b, t + i, 1);
            i++;
        }
    }
}

/* The length of a leading "451" + '-' or ' ' (or the end) in s, else 0. */
static size_t stats_mask_lead_code(const char *s, size_t n)
{
    if (n >= 3 && s[0] >= '2' && s[0] <= '5' && chars_is_digit(s[1]) && chars_is_digit(s[2]) &&
        (n == 3 || s[3] == '-' || s[3] == ' '))
        return n == 3 ? 3 : 4;
    return 0;
}

/* The length of a leading enhanced code "4.7.500" followed by a space (or the end), else 0. */
static size_t stats_mask_lead_enhanced(const char *s, size_t n)
{
    if (n < 5 || !(s[0] == '2' || s[0] == '4' || s[0] == '5') || s[1] != '.')
        return 0;
    size_t i = 2, d = 0;
    while (i < n && chars_is_digit(s[i]) && d < 4) {
        i++;
        d++;
    }
    if (d == 0 || d > 3 || i >= n || s[i] != '.')
        return 0;
    i++;
    d = 0;
    while (i < n && chars_is_digit(s[i]) && d < 4) {
        i++;
        d++;
    }
    if (d == 0 || d > 3 || (i < n && s[i] != ' '))
        return 0;
    return i;
}

size_t stats_mask_reason(const char *text, char *out, size_t n)
{
    struct stats_mask_buf b = {out, n, 0, false};
    if (n > 0)
        out[0] = '\0';
    if (!text)
        return 0;
    bool need_space = false;
    const char *line = text;
    while (*line) {
        const char *end = line;
        while (*end && *end != '\n' && *end != '\r')
            end++;
        const char *p = line;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        size_t k = stats_mask_lead_code(p, (size_t)(end - p));
        p += k;
        if (k) {
            while (p < end && *p == ' ')
                p++;
        }
        k = stats_mask_lead_enhanced(p, (size_t)(end - p));
        p += k;
        while (p < end) {
            if (chars_is_space(*p)) {
                p++;
                need_space = b.len > 0;
                continue;
            }
            if (need_space) {
                stats_mask_puts(&b, " ");
                need_space = false;
            }
            if (!stats_mask_is_tok((unsigned char)*p)) {
                /* A whole UTF-8 character at once, so that a cut never splits one. */
                const char *c = p++;
                while (p < end && ((unsigned char)*p & 0xC0) == 0x80)
                    p++;
                stats_mask_put(&b, c, (size_t)(p - c));
                continue;
            }
            const char *s = p;
            while (p < end && stats_mask_is_tok((unsigned char)*p))
                p++;
            size_t tn = (size_t)(p - s);
            if (stats_mask_is_ipv6(s, tn)) {
                stats_mask_puts(&b, "<ip>");
                continue;
            }
            /* Punctuation around a token ("busy." "later:") is text, not part of it. */
            while (tn > 0 && strchr(".:-_+@", *s)) {
                stats_mask_put(&b, s, 1);
                s++;
                tn--;
            }
            size_t tail = 0;
            while (tn > tail && strchr(".:-_+@", s[tn - 1 - tail]))
                tail++;
            if (tn > tail)
                stats_mask_token(&b, s, tn - tail);
            stats_mask_put(&b, s + tn - tail, tail);
        }
        need_space = b.len > 0;
        line = end;
        while (*line == '\n' || *line == '\r')
            line++;
    }
    return b.len;
}
