/*
 * base64: RFC 4648 base64 and base64url over OpenSSL 3.0's EVP_EncodeBlock and
 * EVP_DecodeBlock (see base64.h), with RFC 2045 6.8's 76-character lines for MIME.
 *
 * EVP_EncodeBlock takes an int length, so long inputs go through in chunks of whole quanta.
 * EVP_DecodeBlock needs a multiple of four characters and returns three bytes per quantum
 * whatever the padding, so the decoder gathers the significant characters, pads a short tail
 * itself and takes the padding's bytes off again.
 */
#include "ipwarm/base64.h"

#include "ipwarm/chars.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Input bytes per EVP call: a multiple of 3 (whole quanta), far below INT_MAX. */
#define BASE64_CHUNK ((size_t)3 * 4096)

size_t base64_encode(const void *s, size_t n, char *out)
{
    const unsigned char *p = s;
    size_t o = 0;
    for (size_t i = 0; i < n; i += BASE64_CHUNK) {
        size_t take = n - i < BASE64_CHUNK ? n - i : BASE64_CHUNK;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p + i, (int)take);
    }
    out[o] = '\0';
    return o;
}

char *base64_encode_alloc(const void *s, size_t n)
{
    char *out = malloc(BASE64_LEN(n) + 1);
    if (out)
        base64_encode(s, n, out);
    return out;
}

size_t base64_encode_url(const void *s, size_t n, char *out)
{
    size_t o = base64_encode(s, n, out);
    while (o > 0 && out[o - 1] == '=')
        o--;
    out[o] = '\0';
    for (size_t i = 0; i < o; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return o;
}

void base64_encode_mime(const void *s, size_t n, struct buf *out)
{
    const unsigned char *p = s;
    const size_t per_line = BASE64_MIME_LINE / 4 * 3; /* 57 bytes in, 76 out */
    char line[BASE64_MIME_LINE + 1];
    for (size_t i = 0; i < n; i += per_line) {
        size_t take = n - i < per_line ? n - i : per_line;
        size_t w = base64_encode(p + i, take, line);
        buf_put(out, line, w);
        buf_put(out, "\r\n", 2);
    }
}

bool base64_is_char(int c)
{
    return chars_is_alnum(c) || c == '+' || c == '/';
}

/* Decodes the gathered characters q[0..n) (n a multiple of 4, pad of them "=") to out. */
static bool base64_flush(const char *q, size_t n, size_t pad, unsigned char *out, size_t *o)
{
    if (n == 0)
        return true;
    int got = EVP_DecodeBlock(out + *o, (const unsigned char *)q, (int)n);
    if (got < 0 || (size_t)got != n / 4 * 3)
        return false;
    *o += (size_t)got - pad;
    return true;
}

bool base64_decode(const char *s, size_t len, unsigned char *out, size_t *out_len)
{
    char q[4 * 256];
    size_t nq = 0, o = 0, pad = 0;
    *out_len = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (chars_is_space(c))
            continue;
        if (c == '=') {
            /* padding closes the last quantum: at most two, never a quantum of its own */
            if (nq % 4 < 2 || ++pad > 2)
                return false;
        } else if (!base64_is_char(c) || pad > 0) {
            return false;
        }
        q[nq++] = c;
        if (nq == sizeof q) {
            if (!base64_flush(q, nq, pad, out, &o))
                return false;
            nq = 0;
        }
    }
    if (pad > 0 && nq % 4 != 0)
        return false; /* "QQ=" : padding that does not fill the quantum */
    size_t tail = nq % 4;
    if (tail == 1) {
        nq--; /* six bits: less than a byte */
        tail = 0;
    } else if (tail > 1) {
        while (nq % 4) {
            q[nq++] = '=';
            pad++;
        }
    }
    if (!base64_flush(q, nq, pad, out, &o))
        return false;
    *out_len = o;
    return true;
}
