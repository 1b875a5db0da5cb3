/*
 * pool: whether trouble is an IP's or the whole pool's (see pool.h).
 *
 * Enhanced status codes (RFC 3463) are class.subject.detail; the class and subject ("4.7":
 * security or policy, "4.2": mailbox) say what kind of trouble a reply is about, while the
 * detail differs between providers and even between their servers, so two IPs throttled with
 * 4.7.500 and 4.7.0 count as the same trouble.
 */
#include "ipwarm/pool.h"

#include <stdio.h>
#include <string.h>

void pool_key(const char *rule, int code, const char *enhanced, char *out, size_t size)
{
    if (rule && *rule) {
        snprintf(out, size, "rule:%s", rule);
        return;
    }
    if (enhanced && *enhanced) {
        const char *dot = strchr(enhanced, '.');
        const char *dot2 = dot ? strchr(dot + 1, '.') : NULL;
        int len = dot2 ? (int)(dot2 - enhanced) : (int)strlen(enhanced);
        snprintf(out, size, "code:%.*s", len, enhanced);
        return;
    }
    if (code > 0)
        snprintf(out, size, "code:%d", code);
    else
        snprintf(out, size, "code:none");
}

void pool_hit_add(struct pool_hit *hits, size_t *n, const char *key, int64_t at_ms)
{
    if (*n == POOL_RECENT_MAX) {
        memmove(hits, hits + 1, (POOL_RECENT_MAX - 1) * sizeof *hits);
        (*n)--;
    }
    snprintf(hits[*n].key, sizeof hits[*n].key, "%s", key);
    hits[*n].at_ms = at_ms;
    (*n)++;
}

static bool pool_lane_hit(const struct pool_lane *l, const char *key, int64_t now_ms)
{
    for (size_t i = 0; i < l->n_hits; i++)
        if (l->hits[i].at_ms > now_ms - POOL_WINDOW_MS && l->hits[i].at_ms <= now_ms &&
            strcmp(l->hits[i].key, key) == 0)
            return true;
    return false;
}

bool pool_every_ip(const struct pool_lane *lanes, size_t n, const char *key, int64_t now_ms)
{
    size_t sending = 0;
    for (size_t i = 0; i < n; i++) {
        if (!lanes[i].sending)
            continue;
        if (!pool_lane_hit(&lanes[i], key, now_ms))
            return false;
        sending++;
    }
    return sending >= 2;
}
