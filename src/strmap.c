/*
 * strmap: string-keyed open-addressing hash table (see strmap.h). Removal re-inserts the rest
 * of the probe cluster after the hole, so lookups never need tombstones.
 */
#include "ipwarm/strmap.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bits. */
static uint64_t strmap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot of key, or the empty slot where it would go. cap must be non-zero. */
static size_t strmap_slot(char *const *keys, size_t cap, const char *key)
{
    size_t i = strmap_hash(key) & (cap - 1);
    while (keys[i] && strcmp(keys[i], key) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

intptr_t *strmap_find(const struct strmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = strmap_slot(m->keys, m->cap, key);
    return m->keys[i] ? &m->vals[i] : NULL;
}

static int strmap_grow(struct strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    char **nk = calloc(ncap, sizeof *nk);
    intptr_t *nv = calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = strmap_slot(nk, ncap, m->keys[i]);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

int strmap_put(struct strmap *m, const char *key, intptr_t val)
{
    intptr_t *v = strmap_find(m, key);
    if (v) {
        *v = val;
        return 0;
    }
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m) != 0)
        return -1;
    size_t i = strmap_slot(m->keys, m->cap, key);
    m->keys[i] = strdup(key);
    if (!m->keys[i])
        return -1;
    m->vals[i] = val;
    m->n++;
    return 0;
}

void strmap_del(struct strmap *m, const char *key)
{
    if (!m->cap)
        return;
    size_t i = strmap_slot(m->keys, m->cap, key);
    if (!m->keys[i])
        return;
    free(m->keys[i]);
    m->keys[i] = NULL;
    m->n--;
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        char *k = m->keys[j];
        intptr_t v = m->vals[j];
        m->keys[j] = NULL;
        size_t t = strmap_slot(m->keys, m->cap, k);
        m->keys[t] = k;
        m->vals[t] = v;
    }
}

bool strmap_next(const struct strmap *m, size_t *pos, const char **key, intptr_t *val)
{
    for (; *pos < m->cap; (*pos)++) {
        if (m->keys[*pos]) {
            if (key)
                *key = m->keys[*pos];
            if (val)
                *val = m->vals[*pos];
            (*pos)++;
            return true;
        }
    }
    return false;
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
