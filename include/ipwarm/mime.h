/*
 * mime: the encoding half of message composition: header fields written and folded within
 * the line limits, RFC 2047 encoded-words for UTF-8 text in headers, and bodies in canonical
 * form with the transfer encoding that suits them. message.c decides what a message holds;
 * this module decides how each piece goes on the wire.
 *
 * Follows RFC 5322 2.1.1 and 2.2.3 (lines within 78 columns where there is whitespace to fold
 * at, never over 998 octets; a fold is a CRLF inserted before whitespace, so unfolding gives
 * the value back exactly), RFC 3629 (UTF-8), RFC 2045 6.7 and 6.8 (quoted-printable and
 * base64 in lines of at most 76 characters), RFC 2046 4.1.1 (canonical CRLF text) and
 * RFC 2047 (encoded-words of at most 75 characters, "B" or "Q", each holding whole UTF-8
 * characters, section 5 rule 3).
 *
 * Everything is pure and writes into a struct buf, whose sticky out-of-memory flag the caller
 * checks once at the end, so the many small appends of a header writer need no checks.
 */
#ifndef IPWARM_MIME_H
#define IPWARM_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/buf.h"
#include "ipwarm/err.h"

/* RFC 5322 2.1.1: lines SHOULD stay within 78 characters and MUST within 998. */
#define MIME_FOLD_COLUMN 78
#define MIME_LINE_MAX    998
/* RFC 2045 6.7 rule 5 and 6.8: encoded lines are at most 76 characters. */
#define MIME_ENCODED_LINE_MAX 76
/* RFC 2047 2: an encoded-word is at most 75 characters. */
#define MIME_EWORD_MAX 75

/*
 * True if s[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF). Otherwise *bad_off (may be NULL) is the offset of the first bad byte.
 */
bool mime_utf8_valid(const char *s, size_t n, size_t *bad_off);

/*
 * A header writer appending fields to *b: mime_hw_begin("Name"), then words, text, an
 * unstructured value or a mailbox, then mime_hw_end. Between begin and end, field_off and
 * name_len tell where the field starts and how long its name is (message.c records them).
 * Set b and zero the rest before the first field.
 */
struct mime_hw {
    struct buf *b;
    size_t field_off; /* start of the field being written */
    size_t line_off;  /* start of the current physical line */
    size_t name_len;
    int words;     /* words on the current line after the field name */
    bool too_long; /* some line exceeded MIME_LINE_MAX: the caller must refuse the result */
};

/* Starts the field "Name:". */
void mime_hw_begin(struct mime_hw *h, const char *name);
/* Appends " word", first folding when the word would pass the 78th column and the line
 * already holds a word. */
void mime_hw_word(struct mime_hw *h, const char *w, size_t n);
/* Appends ASCII text split at its spaces, each piece a word; runs of spaces are kept. */
void mime_hw_text(struct mime_hw *h, const char *s, size_t n);
/* Appends an RFC 5322 3.6.5 unstructured value (a Subject) of UTF-8 text: words that cannot
 * go as they are (non-ASCII, control characters, "=?", too long) become encoded-words. */
void mime_hw_unstructured(struct mime_hw *h, const char *s);
/* Appends a mailbox: the display name (UTF-8, may be NULL) as atoms, a quoted-string or
 * encoded-words, then "<addr>"; addr alone without a name. tmp is scratch space. */
void mime_hw_mailbox(struct mime_hw *h, const char *name, const char *addr, struct buf *tmp);
/* Ends the field with CRLF. */
void mime_hw_end(struct mime_hw *h);

/* Content-Transfer-Encoding of a body. */
enum mime_cte { MIME_7BIT = 0, MIME_QP, MIME_BASE64 };

/* "7bit", "quoted-printable" or "base64". */
const char *mime_cte_name(enum mime_cte c);

/* One body, canonicalised and encoded, with the encoding it got. */
struct mime_body {
    struct buf enc;
    enum mime_cte cte;
};

/*
 * Encodes the UTF-8 text s[0..n) into out->enc (free with buf_free): line ends made CRLF
 * (CRLF, LF and a lone CR each end a line; the text ends with CRLF; empty text is one empty
 * line), then 7bit when it is ASCII with lines of at most 78 octets, else quoted-printable,
 * or base64 when more than a third of its bytes would need quoted-printable escapes.
 * Returns IPW_OK; IPW_EDATA for a NUL byte or invalid UTF-8 ("WHAT: invalid UTF-8 at byte
 * offset N"); IPW_ENOMEM.
 */
ipw_status mime_body_make(const char *s, size_t n, const char *what, struct mime_body *out,
                          struct err *e);

/*
 * The last text mime_body_make_memo() encoded, and what it became. A warm-up sends the same
 * body to every recipient unless its template names a per-recipient value, and encoding it
 * again for each message was a tenth of the run loop's work (bench/throughput.sh). Zero it
 * before use; free with mime_memo_free. One thread at a time.
 */
struct mime_memo {
    struct buf src;
    struct mime_body body;
    bool valid;
};

/* As mime_body_make(), but when s[0..n) is the text m holds, copies its encoding instead of
 * encoding again; otherwise encodes and, on success, remembers. m NULL: mime_body_make(). */
ipw_status mime_body_make_memo(struct mime_memo *m, const char *s, size_t n, const char *what,
                               struct mime_body *out, struct err *e);
void mime_memo_free(struct mime_memo *m);

#endif
