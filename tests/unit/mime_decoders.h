/*
 * mime_decoders: small decoders written apart from src/mime.c and src/base64.c (base64,
 * quoted-printable, RFC 2047 encoded-words) so that test_mime.c and test_message.c check
 * encoded output by decoding it, not by comparing with what the encoder produced. Include
 * after cmocka.h: the decoders assert what they parse.
 */
#ifndef IPWARM_TEST_MIME_DECODERS_H
#define IPWARM_TEST_MIME_DECODERS_H

#include <stdlib.h>
#include <string.h>

#include "ipwarm/mime.h"

static inline char *b64_encode(const unsigned char *s, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(n / 3 * 4 + 8);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        out[o++] = a[s[i] >> 2];
        out[o++] = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = a[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        out[o++] = a[s[i + 2] & 63];
    }
    if (n - i == 1) {
        out[o++] = a[s[i] >> 2];
        out[o++] = a[(s[i] & 3) << 4];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        out[o++] = a[s[i] >> 2];
        out[o++] = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = a[(s[i + 1] & 15) << 2];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static inline int b64_val(char c)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(a, c);
    return c && p ? (int)(p - a) : -1;
}

/* Decodes base64, skipping CRLF; appends to out (returns bytes written). */
static inline size_t b64_decode(const char *s, size_t n, char *out)
{
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(s[i]);
        if (v < 0)
            continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    return o;
}

static inline int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes quoted-printable (RFC 2045 6.7) text. */
static inline size_t qp_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
        } else if (s[i] == '=') {
            assert_true(i + 2 < n);
            assert_true(hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0);
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

/* Decodes RFC 2047 encoded-words in an unfolded header value; whitespace between two adjacent
 * encoded-words is dropped (RFC 2047 6.2). Every encoded-word must be <= 75 characters and
 * hold valid UTF-8 on its own (no character split across words). */
static inline char *decode_2047(const char *v)
{
    char *out = calloc(1, strlen(v) * 3 + 1);
    size_t o = 0, i = 0;
    const char *ws = NULL;
    size_t ws_len = 0;
    int last_ew = 0;
    while (v[i]) {
        if (v[i] == ' ' || v[i] == '\t') {
            ws = v + i;
            ws_len = 0;
            while (v[i] == ' ' || v[i] == '\t') {
                i++;
                ws_len++;
            }
            continue;
        }
        size_t start = i;
        while (v[i] && v[i] != ' ' && v[i] != '\t')
            i++;
        const char *w = v + start;
        size_t wn = i - start;
        int is_ew = wn > 12 && strncmp(w, "=?UTF-8?", 8) == 0 && w[9] == '?' && w[wn - 2] == '?' &&
                    w[wn - 1] == '=';
        if (!(is_ew && last_ew) && ws) {
            memcpy(out + o, ws, ws_len);
            o += ws_len;
        }
        ws = NULL;
        if (is_ew) {
            assert_true(wn <= 75);
            const char *t = w + 10;
            size_t tn = wn - 12;
            char dec[128];
            size_t dn = 0;
            if (w[8] == 'B') {
                dn = b64_decode(t, tn, dec);
            } else {
                assert_int_equal(w[8], 'Q');
                for (size_t k = 0; k < tn; k++) {
                    if (t[k] == '_') {
                        dec[dn++] = ' ';
                    } else if (t[k] == '=') {
                        dec[dn++] = (char)(hexval(t[k + 1]) * 16 + hexval(t[k + 2]));
                        k += 2;
                    } else {
                        dec[dn++] = t[k];
                    }
                }
            }
            assert_true(mime_utf8_valid(dec, dn, NULL));
            memcpy(out + o, dec, dn);
            o += dn;
        } else {
            memcpy(out + o, w, wn);
            o += wn;
        }
        last_ew = is_ew;
    }
    out[o] = '\0';
    return out;
}

#endif
