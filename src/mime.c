/*
 * mime: header fields, RFC 2047 encoded-words and body transfer encodings (see mime.h).
 *
 * Implements RFC 5322 (header fields and folding: lines kept within 78 columns where there is
 * whitespace to fold at, never over 998 octets), RFC 2045 6.7 (quoted-printable: "=XX"
 * escapes, soft line breaks, encoded lines of at most 76 characters, trailing whitespace
 * escaped), RFC 2045 6.8 (base64 in 76-character lines) and RFC 2047 (encoded-words of at
 * most 75 characters, "B" or "Q", each holding whole UTF-8 characters, 2047 section 5 rule 3).
 *
 * The header writer folds only at spaces that are already part of the value (RFC 5322 2.2.3:
 * a fold is a CRLF inserted before whitespace), so unfolding restores the value exactly.
 */
#include "ipwarm/mime.h"

#include "ipwarm/base64.h"
#include "ipwarm/chars.h"

#include <string.h>

/* Bytes of the UTF-8 sequence that lead starts (1 for ASCII and for stray bytes). */
static size_t mime_utf8_seqlen(unsigned char lead)
{
    if (lead >= 0xF0 && lead <= 0xF4)
        return 4;
    if (lead >= 0xE0 && lead <= 0xEF)
        return 3;
    if (lead >= 0xC2 && lead <= 0xDF)
        return 2;
    return 1;
}

bool mime_utf8_valid(const char *s, size_t n, size_t *bad_off)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = mime_utf8_seqlen(c);
        if (len == 1 || i + len > n)
            goto bad;
        /* RFC 3629 4: the second byte's range rules out overlong forms, surrogates and
         * code points above U+10FFFF. */
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        else if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        if (u[i + 1] < lo || u[i + 1] > hi)
            goto bad;
        for (size_t k = 2; k < len; k++)
            if (u[i + k] < 0x80 || u[i + k] > 0xBF)
                goto bad;
        i += len;
    }
    return true;
bad:
    if (bad_off)
        *bad_off = i;
    return false;
}

/* ---- header writer ---- */

static size_t mime_hw_col(const struct mime_hw *h)
{
    return h->b->len - h->line_off;
}

void mime_hw_begin(struct mime_hw *h, const char *name)
{
    h->field_off = h->b->len;
    h->line_off = h->b->len;
    h->name_len = strlen(name);
    h->words = 0;
    buf_str(h->b, name);
    buf_put(h->b, ":", 1);
}

/* Ends the current line so that the next word starts a continuation line. */
static void mime_hw_fold(struct mime_hw *h)
{
    if (h->words == 0)
        return;
    buf_put(h->b, "\r\n", 2);
    h->line_off = h->b->len;
    h->words = 0;
}

/* Appends " word", first folding when the word would pass the 78th column and the line
 * already holds a word (a fold right after "Name:" would gain nothing). */
void mime_hw_word(struct mime_hw *h, const char *w, size_t n)
{
    if (n > 0 && h->words > 0 && mime_hw_col(h) + 1 + n > MIME_FOLD_COLUMN)
        mime_hw_fold(h);
    buf_put(h->b, " ", 1);
    buf_put(h->b, w, n);
    h->words++;
    if (mime_hw_col(h) > MIME_LINE_MAX)
        h->too_long = true;
}

/* Appends text split at its spaces, each piece a word; runs of spaces are kept. */
void mime_hw_text(struct mime_hw *h, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ' ') {
            mime_hw_word(h, s + start, i - start);
            start = i + 1;
        }
    }
}

void mime_hw_end(struct mime_hw *h)
{
    buf_put(h->b, "\r\n", 2);
}

/* RFC 2047 5 rule 3: the characters a "Q" encoded-word may hold as they are, in any header
 * position (the phrase set is the strictest, so one set serves Subject and From). */
static bool mime_q_plain(unsigned char c)
{
    return chars_is_alnum(c) || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

static size_t mime_q_cost(unsigned char c)
{
    return (mime_q_plain(c) || c == ' ') ? 1 : 3;
}

/*
 * Appends s[0..n) (UTF-8) as RFC 2047 encoded-words separated by folding whitespace. Each word
 * holds whole characters and is at most 75 characters; the first is sized to fit the current
 * line. Q is used when it is not much longer than B, since it keeps Latin text readable.
 */
static void mime_hw_encoded(struct mime_hw *h, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t qcost = 0;
    for (size_t i = 0; i < n; i++)
        qcost += mime_q_cost(u[i]);
    size_t bcost = (n + 2) / 3 * 4;
    bool q = qcost * 2 <= bcost * 3;
    const size_t overhead = strlen("=?UTF-8?B?") + strlen("?=");

    size_t i = 0;
    while (i < n) {
        size_t col = mime_hw_col(h);
        size_t room = col + 1 < MIME_FOLD_COLUMN ? MIME_FOLD_COLUMN - col - 1 : 0;
        if (room > MIME_EWORD_MAX)
            room = MIME_EWORD_MAX;
        size_t payload = room > overhead ? room - overhead : 0;
        if (payload < 16 && h->words > 0) {
            mime_hw_fold(h);
            continue;
        }
        /* Take whole characters while they fit. */
        size_t limit = q ? payload : payload / 4 * 3;
        size_t take = 0, cost = 0;
        while (i + take < n) {
            size_t len = mime_utf8_seqlen(u[i + take]);
            if (i + take + len > n)
                len = n - i - take;
            size_t c = 0;
            for (size_t k = 0; k < len; k++)
                c += q ? mime_q_cost(u[i + take + k]) : 1;
            if (cost + c > limit)
                break;
            cost += c;
            take += len;
        }
        if (take == 0) {
            if (h->words > 0) {
                mime_hw_fold(h);
                continue;
            }
            take = mime_utf8_seqlen(u[i]); /* cannot happen with our short names */
            if (i + take > n)
                take = n - i;
        }
        char word[MIME_EWORD_MAX * 2 + 16];
        size_t w = 0;
        memcpy(word, q ? "=?UTF-8?Q?" : "=?UTF-8?B?", 10);
        w = 10;
        if (q) {
            for (size_t k = 0; k < take; k++) {
                unsigned char c = u[i + k];
                if (mime_q_plain(c)) {
                    word[w++] = (char)c;
                } else if (c == ' ') {
                    word[w++] = '_';
                } else {
                    word[w++] = '=';
                    word[w++] = "0123456789ABCDEF"[c >> 4];
                    word[w++] = "0123456789ABCDEF"[c & 15];
                }
            }
        } else {
            w += base64_encode(u + i, take, word + w);
        }
        word[w++] = '?';
        word[w++] = '=';
        mime_hw_word(h, word, w);
        i += take;
    }
}

/* A word that cannot go into a header as it is: non-ASCII, a control character, something a
 * decoder would take for an encoded-word, or too long to ever fit a line. */
static bool mime_needs_encoding(const char *s, size_t n)
{
    if (n > MIME_LINE_MAX - 100)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x7F || (c < 0x20 && c != '\t'))
            return true;
        if (c == '=' && i + 1 < n && s[i + 1] == '?')
            return true;
    }
    return false;
}

/*
 * Subject (RFC 5322 3.6.5 unstructured): the words before the first and after the last word
 * that needs encoding stay as they are; the run between, spaces included, becomes
 * encoded-words (the spaces must be inside them: RFC 2047 6.2 drops whitespace between
 * adjacent encoded-words).
 */
void mime_hw_unstructured(struct mime_hw *h, const char *s)
{
    size_t n = strlen(s);
    size_t run_start = n, run_end = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ' ') {
            if (mime_needs_encoding(s + start, i - start)) {
                if (run_start == n)
                    run_start = start;
                run_end = i;
            }
            start = i + 1;
        }
    }
    if (run_start == n) {
        mime_hw_text(h, s, n);
        return;
    }
    if (run_start > 0)
        mime_hw_text(h, s, run_start - 1);
    mime_hw_encoded(h, s + run_start, run_end - run_start);
    if (run_end < n)
        mime_hw_text(h, s + run_end + 1, n - run_end - 1);
}

/* A display name that can go out as atoms: RFC 5322 3.2.5 phrase, single spaces between. '='
 * and '?' are atext but are quoted anyway so that nothing looks like an encoded-word. */
static bool mime_is_atoms(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            if (s[i + 1] == ' ')
                return false;
        } else if (!chars_is_atext(c) || c == '=' || c == '?') {
            return false;
        }
    }
    return true;
}

/* From: display name as atoms, a quoted-string (RFC 5322 3.2.4) or encoded-words. */
void mime_hw_mailbox(struct mime_hw *h, const char *name, const char *addr, struct buf *tmp)
{
    if (name && *name) {
        size_t n = strlen(name);
        if (mime_needs_encoding(name, n)) {
            mime_hw_encoded(h, name, n);
        } else if (mime_is_atoms(name)) {
            mime_hw_text(h, name, n);
        } else {
            tmp->len = 0;
            buf_put(tmp, "\"", 1);
            for (size_t i = 0; i < n; i++) {
                if (name[i] == '"' || name[i] == '\\')
                    buf_put(tmp, "\\", 1);
                buf_put(tmp, name + i, 1);
            }
            buf_put(tmp, "\"", 1);
            /* Folding at the spaces inside the quotes is allowed (FWS in quoted-string). */
            if (!tmp->oom)
                mime_hw_text(h, tmp->p, tmp->len);
        }
        tmp->len = 0;
        buf_put(tmp, "<", 1);
        buf_str(tmp, addr);
        buf_put(tmp, ">", 1);
        if (!tmp->oom)
            mime_hw_word(h, tmp->p, tmp->len);
    } else {
        mime_hw_word(h, addr, strlen(addr));
    }
}

/* ---- bodies ---- */

const char *mime_cte_name(enum mime_cte c)
{
    switch (c) {
    case MIME_7BIT:
        return "7bit";
    case MIME_QP:
        return "quoted-printable";
    case MIME_BASE64:
        return "base64";
    }
    return "7bit";
}

/* Makes every line end CRLF (RFC 2046 4.1.1 canonical form: CRLF, LF and a lone CR all end a
 * line) and the text end with CRLF; empty text becomes one empty line. */
static void mime_canon(const char *s, size_t n, struct buf *out)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n') {
            buf_put(out, s + start, i - start);
            buf_put(out, "\r\n", 2);
            if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
            start = i + 1;
        }
    }
    if (start < n || n == 0) {
        buf_put(out, s + start, n - start);
        buf_put(out, "\r\n", 2);
    }
}

/* Picks the transfer encoding of canonical text (see mime_body_make in mime.h). Past a third
 * of escaped bytes quoted-printable is over 1.67 times the text and base64 (1.37 times) wins;
 * below it quoted-printable is kept because it leaves Latin text readable in the raw. */
static enum mime_cte mime_choose(const char *s, size_t n)
{
    size_t escapes = 0, eq = 0, line = 0, longest = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
            if (line > longest)
                longest = line;
            line = 0;
            i++;
            continue;
        }
        line++;
        if (c >= 0x7F || (c < 0x20 && c != '\t'))
            escapes++;
        else if (c == '=')
            eq++;
    }
    if (line > longest)
        longest = line;
    if (escapes == 0 && longest <= MIME_FOLD_COLUMN)
        return MIME_7BIT;
    return (escapes + eq) * 3 > n ? MIME_BASE64 : MIME_QP;
}

/* RFC 2045 6.7: quoted-printable of canonical text, hard line breaks kept as CRLF, soft
 * breaks ("=" CRLF) so that no encoded line passes 76 characters, an escape never split,
 * and whitespace at a line's end escaped (rule 3) so transports cannot strip it. */
static void mime_qp(const char *s, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && !(s[end] == '\r' && end + 1 < n && s[end + 1] == '\n'))
            end++;
        size_t col = 0;
        for (size_t k = i; k < end; k++) {
            unsigned char c = (unsigned char)s[k];
            bool last = k + 1 == end;
            bool esc = c >= 0x7F || (c < 0x20 && c != '\t') || c == '=' ||
                       (last && (c == ' ' || c == '\t'));
            size_t tok = esc ? 3 : 1;
            /* Leave room for the "=" of a soft break unless this is the line's last token. */
            size_t limit = last ? MIME_ENCODED_LINE_MAX : MIME_ENCODED_LINE_MAX - 1;
            if (col + tok > limit) {
                buf_put(out, "=\r\n", 3);
                col = 0;
            }
            if (esc) {
                char hex[3] = {'=', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};
                buf_put(out, hex, 3);
            } else {
                buf_put(out, s + k, 1);
            }
            col += tok;
        }
        buf_put(out, "\r\n", 2);
        i = end + 2;
    }
}

ipw_status mime_body_make(const char *s, size_t n, const char *what, struct mime_body *out,
                          struct err *e)
{
    const char *nul = memchr(s, '\0', n);
    if (nul)
        return err_set(e, IPW_EDATA, "%s: NUL byte at byte offset %zu", what, (size_t)(nul - s));
    size_t bad;
    if (!mime_utf8_valid(s, n, &bad))
        return err_set(e, IPW_EDATA, "%s: invalid UTF-8 at byte offset %zu", what, bad);
    struct buf canon = {0};
    mime_canon(s, n, &canon);
    if (canon.oom) {
        buf_free(&canon);
        return err_set(e, IPW_ENOMEM, "out of memory encoding the %s", what);
    }
    out->cte = mime_choose(canon.p, canon.len);
    switch (out->cte) {
    case MIME_7BIT:
        out->enc = canon;
        canon = (struct buf){0};
        break;
    case MIME_QP:
        mime_qp(canon.p, canon.len, &out->enc);
        break;
    case MIME_BASE64:
        base64_encode_mime(canon.p, canon.len, &out->enc);
        break;
    }
    buf_free(&canon);
    if (out->enc.oom)
        return err_set(e, IPW_ENOMEM, "out of memory encoding the %s", what);
    return IPW_OK;
}

void mime_memo_free(struct mime_memo *m)
{
    if (!m)
        return;
    buf_free(&m->src);
    buf_free(&m->body.enc);
    m->valid = false;
}

ipw_status mime_body_make_memo(struct mime_memo *m, const char *s, size_t n, const char *what,
                               struct mime_body *out, struct err *e)
{
    if (!m)
        return mime_body_make(s, n, what, out, e);
    if (!(m->valid && m->src.len == n && (n == 0 || memcmp(m->src.p, s, n) == 0))) {
        mime_memo_free(m);
        ipw_status r = mime_body_make(s, n, what, &m->body, e);
        if (r != IPW_OK)
            return r;
        buf_put(&m->src, s, n);
        if (m->src.oom) {
            mime_memo_free(m);
            return err_set(e, IPW_ENOMEM, "out of memory encoding the %s", what);
        }
        m->valid = true;
    }
    *out = (struct mime_body){{0}, m->body.cte};
    buf_put(&out->enc, m->body.enc.p, m->body.enc.len);
    if (out->enc.oom)
        return err_set(e, IPW_ENOMEM, "out of memory encoding the %s", what);
    return IPW_OK;
}
