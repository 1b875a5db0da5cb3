/*
 * json: a small streaming JSON writer (RFC 8259) to a FILE*.
 *
 * Commands that answer with --json build their document by calls in document order; the
 * writer inserts the commas, the colons and (when asked) the indentation, and escapes strings.
 * Strings are taken as UTF-8: valid multi-byte sequences pass through unchanged, quotes,
 * backslashes and control characters are escaped, and bytes that are not valid UTF-8 are
 * replaced by U+FFFD so that the output is always valid JSON whatever a remote server sent us.
 *
 * The writer never fails half-way: a misuse (a value where a key is due, too deep nesting)
 * or a write error is remembered and reported by json_finish(), which is the one place a
 * caller checks.
 */
#ifndef IPWARM_JSON_H
#define IPWARM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ipwarm/err.h"

/* Deeper than any document ipwarm writes; deeper nesting is a programming error. */
#define JSON_MAX_DEPTH 32

struct json {
    FILE *f;
    bool pretty; /* newline and two spaces per level; else compact */
    int depth;
    /* Per level: 'o' object, 'a' array; and whether the level has a member already. */
    char kind[JSON_MAX_DEPTH];
    bool has_member[JSON_MAX_DEPTH];
    bool key_pending; /* a key was written; its value is next */
    bool misuse;      /* a call out of order; reported by json_finish() */
    bool done;        /* the top-level value is complete */
};

/* Starts a document on f. pretty: indent by two spaces per level (for people); compact
 * otherwise (one line, for logs and pipes). */
void json_init(struct json *j, FILE *f, bool pretty);

void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);

/* The key of the next object member; the value follows by one of the value calls. */
void json_key(struct json *j, const char *key);

/* Values. json_string(NULL) writes null. */
void json_string(struct json *j, const char *s);
void json_string_n(struct json *j, const char *s, size_t len);
void json_int(struct json *j, int64_t v);
/* A number in its shortest round-tripping form; NaN and infinities become null. */
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);

/* Key and value in one call, for the common object member. */
void json_kv_string(struct json *j, const char *key, const char *s);
void json_kv_int(struct json *j, const char *key, int64_t v);
void json_kv_double(struct json *j, const char *key, double v);
void json_kv_bool(struct json *j, const char *key, bool v);
void json_kv_null(struct json *j, const char *key);
/* An optional member: the value when present, else null (a string needs none of these:
 * json_kv_string(NULL) writes null). */
void json_kv_int_or_null(struct json *j, const char *key, int64_t v, bool present);
void json_kv_double_or_null(struct json *j, const char *key, double v, bool present);

/*
 * Ends the document with a newline and flushes. Returns IPW_OK; IPW_ESOFTWARE when the calls
 * did not form one complete document; IPW_EIO when writing failed (e.g. stdout is a full
 * disk or a closed pipe).
 */
ipw_status json_finish(struct json *j, struct err *e);

/* Writes s as a JSON string literal (with quotes) to f; for callers that need only that. */
void json_write_string(FILE *f, const char *s, size_t len);

#endif
