/*
 * buf: a growable string with a sticky out-of-memory flag, for code that appends many pieces
 * (message composition, DKIM signatures, SPF macro expansion): append freely, check b.oom
 * once at the end. The string is always NUL-terminated once anything was appended.
 * buf_grow() is the same doubling for an array of any element, for lists built one item at
 * a time.
 */
#ifndef IPWARM_BUF_H
#define IPWARM_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *p;
    size_t len, cap;
    bool oom; /* an append failed: the content is incomplete */
};

/* Appends s[0..n) (n may be 0). On failure sets b->oom; later appends do nothing. */
void buf_put(struct buf *b, const void *s, size_t n);
/* Appends the NUL-terminated s. */
void buf_str(struct buf *b, const char *s);
/* Hands the string over (an empty one if nothing was appended) with its length in *len (may
 * be NULL), or returns NULL and frees it after an out-of-memory. */
char *buf_take(struct buf *b, size_t *len);
/* Frees the string and empties b. */
void buf_free(struct buf *b);

/*
 * Makes room in the array p, of *cap elements of size bytes, for at least need elements:
 * the capacity doubles, starting at first. Returns the array (moved, with *cap updated, when
 * it had to grow), or NULL when out of memory; p and *cap are then untouched and p is still
 * the caller's to free.
 */
void *buf_grow(void *p, size_t *cap, size_t need, size_t size, size_t first);

#endif
