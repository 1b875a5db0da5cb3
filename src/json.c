/*
 * json: the streaming JSON writer (RFC 8259) behind every --json answer (see json.h).
 *
 * The state is a stack of open containers with a flag "has a member already", which is all
 * that is needed to place commas. Misuse is recorded instead of asserted so that a bug in a
 * command yields an error exit rather than a crash, and json_finish() reports it once.
 */
#include "ipwarm/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void json_init(struct json *j, FILE *f, bool pretty)
{
    memset(j, 0, sizeof *j);
    j->f = f;
    j->pretty = pretty;
}

static void json_indent(struct json *j)
{
    if (!j->pretty)
        return;
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->f);
}

/* Everything that precedes a value: the comma and indentation inside an array, nothing after
 * a key; refuses a value where a key is due or after the document is complete. */
static bool json_before_value(struct json *j)
{
    if (j->misuse)
        return false;
    if (j->depth == 0) {
        if (j->done) {
            j->misuse = true;
            return false;
        }
        return true;
    }
    int top = j->depth - 1;
    if (j->kind[top] == 'o') {
        if (!j->key_pending) {
            j->misuse = true;
            return false;
        }
        j->key_pending = false;
        return true;
    }
    if (j->has_member[top])
        fputc(',', j->f);
    j->has_member[top] = true;
    json_indent(j);
    return true;
}

static void json_after_value(struct json *j)
{
    if (j->depth == 0)
        j->done = true;
}

/* Length of the valid UTF-8 sequence (RFC 3629) at s, or 0 if the bytes are not one. */
static size_t json_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

void json_write_string(FILE *f, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t ulen = json_utf8_len(s + i, len - i);
            if (ulen == 0) {
                fputs("\xEF\xBF\xBD", f); /* U+FFFD for a byte that is not UTF-8 */
                i++;
            } else {
                fwrite(s + i, 1, ulen, f);
                i += ulen;
            }
            continue;
        }
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\b':
            fputs("\\b", f);
            break;
        case '\f':
            fputs("\\f", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", (unsigned)c);
            else
                fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}

static void json_begin(struct json *j, char kind)
{
    if (!json_before_value(j))
        return;
    if (j->depth >= JSON_MAX_DEPTH) {
        j->misuse = true;
        return;
    }
    fputc(kind == 'o' ? '{' : '[', j->f);
    j->kind[j->depth] = kind;
    j->has_member[j->depth] = false;
    j->depth++;
}

static void json_end(struct json *j, char kind)
{
    if (j->misuse)
        return;
    if (j->depth == 0 || j->kind[j->depth - 1] != kind || j->key_pending) {
        j->misuse = true;
        return;
    }
    bool had = j->has_member[j->depth - 1];
    j->depth--;
    if (had)
        json_indent(j);
    fputc(kind == 'o' ? '}' : ']', j->f);
    json_after_value(j);
}

void json_object_begin(struct json *j)
{
    json_begin(j, 'o');
}

void json_object_end(struct json *j)
{
    json_end(j, 'o');
}

void json_array_begin(struct json *j)
{
    json_begin(j, 'a');
}

void json_array_end(struct json *j)
{
    json_end(j, 'a');
}

void json_key(struct json *j, const char *key)
{
    if (j->misuse)
        return;
    if (j->depth == 0 || j->kind[j->depth - 1] != 'o' || j->key_pending || !key) {
        j->misuse = true;
        return;
    }
    int top = j->depth - 1;
    if (j->has_member[top])
        fputc(',', j->f);
    j->has_member[top] = true;
    json_indent(j);
    json_write_string(j->f, key, strlen(key));
    fputs(j->pretty ? ": " : ":", j->f);
    j->key_pending = true;
}

void json_string_n(struct json *j, const char *s, size_t len)
{
    if (!json_before_value(j))
        return;
    if (s)
        json_write_string(j->f, s, len);
    else
        fputs("null", j->f);
    json_after_value(j);
}

void json_string(struct json *j, const char *s)
{
    json_string_n(j, s, s ? strlen(s) : 0);
}

void json_int(struct json *j, int64_t v)
{
    if (!json_before_value(j))
        return;
    fprintf(j->f, "%" PRId64, v);
    json_after_value(j);
}

void json_double(struct json *j, double v)
{
    if (!json_before_value(j))
        return;
    if (!isfinite(v)) {
        fputs("null", j->f); /* JSON has no NaN or infinity */
    } else {
        /* The shortest of %.15g..%.17g that reads back as the same double: 0.1 stays "0.1"
         * and 1.5 stays "1.5", yet no precision is lost. Integral values print without a
         * fraction, which JSON readers accept as numbers. */
        char buf[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
        fputs(buf, j->f);
    }
    json_after_value(j);
}

void json_bool(struct json *j, bool v)
{
    if (!json_before_value(j))
        return;
    fputs(v ? "true" : "false", j->f);
    json_after_value(j);
}

void json_null(struct json *j)
{
    if (!json_before_value(j))
        return;
    fputs("null", j->f);
    json_after_value(j);
}

void json_kv_string(struct json *j, const char *key, const char *s)
{
    json_key(j, key);
    json_string(j, s);
}

void json_kv_int(struct json *j, const char *key, int64_t v)
{
    json_key(j, key);
    json_int(j, v);
}

void json_kv_double(struct json *j, const char *key, double v)
{
    json_key(j, key);
    json_double(j, v);
}

void json_kv_bool(struct json *j, const char *key, bool v)
{
    json_key(j, key);
    json_bool(j, v);
}

void json_kv_null(struct json *j, const char *key)
{
    json_key(j, key);
    json_null(j);
}

void json_kv_int_or_null(struct json *j, const char *key, int64_t v, bool present)
{
    json_key(j, key);
    if (present)
        json_int(j, v);
    else
        json_null(j);
}

void json_kv_double_or_null(struct json *j, const char *key, double v, bool present)
{
    json_key(j, key);
    if (present)
        json_double(j, v);
    else
        json_null(j);
}

ipw_status json_finish(struct json *j, struct err *e)
{
    if (j->misuse || j->depth != 0 || !j->done)
        return err_set(e, IPW_ESOFTWARE, "internal error: malformed JSON document");
    fputc('\n', j->f);
    if (fflush(j->f) != 0 || ferror(j->f))
        return err_set(e, IPW_EIO, "cannot write the JSON output");
    return IPW_OK;
}
