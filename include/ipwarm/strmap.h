/*
 * strmap: a small hash table from strings to intptr_t values (an index into an array, a flag,
 * or a pointer cast to intptr_t), for the run's in-flight addresses and MX index
 * (engine_state.h) and the host names an MX resolution shares (dns.c).
 *
 * Open addressing with linear probing over a power-of-two table kept at most half full, FNV-1a
 * hashing; the map owns copies of its keys, never the values. A zeroed struct is an empty map.
 *
 *     struct strmap m = {0};
 *     if (strmap_put(&m, "example.com", 3) != 0) ...out of memory...
 *     intptr_t *v = strmap_find(&m, "example.com");   // NULL when absent
 *     strmap_free(&m);
 */
#ifndef IPWARM_STRMAP_H
#define IPWARM_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap {
    char **keys; /* cap slots, NULL where empty */
    intptr_t *vals;
    size_t cap, n; /* cap: 0 or a power of two */
};

/* The value stored for key (to read or to change in place), or NULL. */
intptr_t *strmap_find(const struct strmap *m, const char *key);
/* Sets key to val, adding a copy of key if it is new. Returns 0, or -1 when out of memory
 * (the map is then as it was). */
int strmap_put(struct strmap *m, const char *key, intptr_t val);
/* Removes key if present. */
void strmap_del(struct strmap *m, const char *key);
/* Walks the entries in no particular order: start with *pos = 0; returns false at the end.
 * The map must not change during the walk. */
bool strmap_next(const struct strmap *m, size_t *pos, const char **key, intptr_t *val);
/* Frees the keys and the table (not what the values point to) and empties m. */
void strmap_free(struct strmap *m);

#endif
