/*
 * base64: RFC 4648 section 4 (and section 5, base64url) over OpenSSL's EVP_EncodeBlock and
 * EVP_DecodeBlock, for every part of ipwarm that writes or reads base64: MIME bodies and
 * encoded-words (mime.c), DKIM bh= and b= and public keys (dkim.c), AUTH PLAIN
 * (preflight_smtp.c), unsubscribe tokens (token.c), IMAP mailbox names (imap.c) and the
 * masking of credentials in recorded replies (secret.c).
 *
 * EVP_DecodeBlock wants whole, padded quanta and keeps the zero bytes of the padding; the
 * decoder here takes the unpadded tails that SASL echoes and IMAP names carry, skips white
 * space (MIME line breaks, FWS in a DKIM b= tag) and reports only the bytes that were sent.
 */
#ifndef IPWARM_BASE64_H
#define IPWARM_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/buf.h"

/* Characters in the padded base64 of n bytes (no NUL). */
#define BASE64_LEN(n) (((n) + 2) / 3 * 4)
/* Bytes at most in the decoding of n base64 characters. */
#define BASE64_DECODED_MAX(n) (((n) + 3) / 4 * 3)
/* RFC 2045 6.8: a MIME base64 body is written in lines of at most 76 characters. */
#define BASE64_MIME_LINE 76

/* Writes the padded base64 of s[0..n) and a NUL to out (room for BASE64_LEN(n) + 1); returns
 * the characters written (BASE64_LEN(n)). */
size_t base64_encode(const void *s, size_t n, char *out);
/* The same as a malloc'd string, or NULL when out of memory. */
char *base64_encode_alloc(const void *s, size_t n);
/* base64url (RFC 4648 5: "-" and "_" for "+" and "/") without padding, and a NUL; room for
 * BASE64_LEN(n) + 1. Returns the characters written. */
size_t base64_encode_url(const void *s, size_t n, char *out);
/* Appends the base64 of s[0..n) to out in lines of BASE64_MIME_LINE characters, each ending
 * in CRLF (RFC 2045 6.8). Nothing for n == 0. */
void base64_encode_mime(const void *s, size_t n, struct buf *out);

/* A character of the base64 alphabet (letters, digits, "+" and "/"; not the padding "="). */
bool base64_is_char(int c);

/*
 * Decodes s[0..len) into out (room for BASE64_DECODED_MAX(len) bytes) and sets *out_len to
 * the bytes decoded. ASCII white space anywhere is skipped; "=" padding is optional but only
 * at the end; an unpadded tail of 2 or 3 characters gives 1 or 2 bytes, a tail of 1 character
 * none (it holds less than a byte). Returns false on any other character or on data after
 * padding (*out_len is then 0).
 */
bool base64_decode(const char *s, size_t len, unsigned char *out, size_t *out_len);

#endif
