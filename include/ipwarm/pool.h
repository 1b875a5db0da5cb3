/*
 * pool: whether trouble is an IP's or the whole pool's.
 *
 * With an IP pool (source.ips) each IP has its own reputation at each provider, so a deferral
 * or a rule hit acts on the IP that received it. But when every IP of the pool that sends to a
 * provider gets the same throttling reply within the hour (the same rule, or for backoff the
 * same kind of enhanced status code), the trouble is not an IP's: it is the sending domain or
 * the content, and the provider is acted on for the whole pool. pool_key() names a reply's kind;
 * pool_every_ip() is the decision. Pure: no clock, no I/O.
 */
#ifndef IPWARM_POOL_H
#define IPWARM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a key: "rule:" and a rule name, or "code:" and a status. */
#define POOL_KEY_MAX 96
/* How far back the replies of the other IPs count. */
#define POOL_WINDOW_MS 3600000LL
/* The hits an IP keeps (the oldest goes first). */
#define POOL_RECENT_MAX 8

/* A throttling reply or a rule hit that one IP received. */
struct pool_hit {
    char key[POOL_KEY_MAX];
    int64_t at_ms;
};

/* One IP of the pool at a provider, as the decision sees it. */
struct pool_lane {
    const struct pool_hit *hits;
    size_t n_hits;
    bool sending; /* it takes part: it has started (source.start); else it is not counted */
};

/*
 * The key of a throttling reply: "code:" and the class and subject of its enhanced status code
 * ("code:4.7" for 451 4.7.500 and 421 4.7.0), or its reply code when it has none ("code:421";
 * no reply at all: "code:none"). With rule set, the key of that rule's hit: "rule:NAME".
 */
void pool_key(const char *rule, int code, const char *enhanced, char *out, size_t size);

/* Adds a hit to an IP's recent ones (hits[0..*n), at most POOL_RECENT_MAX: the oldest goes). */
void pool_hit_add(struct pool_hit *hits, size_t *n, const char *key, int64_t at_ms);

/*
 * True when at least two lanes are sending and every sending lane of lanes[0..n) has a hit
 * with key in (now_ms - POOL_WINDOW_MS, now_ms]: the provider is acted on for the whole pool.
 */
bool pool_every_ip(const struct pool_lane *lanes, size_t n, const char *key, int64_t now_ms);

#endif
