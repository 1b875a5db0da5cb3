/*
 * dnsbl: looks IP addresses up in DNS block lists (RFC 5782).
 *
 * A list publishes an address under its zone with the octets of an IPv4 address reversed
 * (192.0.2.99 in zen.example is 99.2.0.192.zen.example) or the 32 nibbles of an IPv6 address
 * reversed. An A record in 127.0.0.0/8 means listed, and the TXT record of the same name says
 * why; NXDOMAIN means not listed. Three outcomes are kept apart because the caller must not
 * mistake one for another: listed, not listed, and "could not check". Answers in
 * 127.255.255.0/24 are how Spamhaus refuses a query (through a public resolver, or over its
 * free-use limit): they are "could not check", never "listed", and so are timeouts, server
 * failures and answers outside 127.0.0.0/8 (a resolver that rewrites NXDOMAIN).
 *
 * Every query of every address and zone is in flight at once through struct dns (dns.h).
 */
#ifndef IPWARM_DNSBL_H
#define IPWARM_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/dns.h"
#include "ipwarm/err.h"

/* The longest query name: 32 nibbles and dots (64) plus a zone of up to 253 octets. */
#define DNSBL_NAME_MAX 320

struct dnsbl_zone_result {
    char *zone;
    bool listed;    /* an answer in 127.0.0.0/8 outside 127.255.255.0/24 */
    char **answers; /* every A record of the answer, as text */
    size_t n_answers;
    char *txt; /* listed: the TXT reason (records joined by "; "), or NULL */
    /* NULL when the zone was checked; else why not: "refused-by-list" (127.255.255.x),
     * "timeout", "servfail", "refused", "unreachable", "unexpected-answer" (an address
     * outside 127.0.0.0/8), "error". A zone with an error is neither listed nor clean. */
    const char *error;
    enum dns_status dns_status; /* of the A query */
};

struct dnsbl_result {
    char *ip;
    bool listed;                     /* some zone lists the address */
    size_t n_unchecked;              /* zones with an error */
    struct dnsbl_zone_result *zones; /* in the order given */
    size_t n_zones;
};

/*
 * Writes the query name of ip under zone into buf (DNSBL_NAME_MAX bytes are always enough):
 * "99.2.0.192.zen.example" or
 * "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.zone". A trailing dot on zone is
 * dropped. Returns IPW_OK, or IPW_EUSAGE when ip is not an IPv4 or IPv6 literal, zone is empty, or
 * the name does not fit.
 */
ipw_status dnsbl_query_name(const char *ip, const char *zone, char *buf, size_t n, struct err *e);

/*
 * Looks each of ips[0..n_ips) up in each of zones[0..n_zones), all at once, with the TXT
 * reason of each listing, into results[0..n_ips) (overwritten; release each with
 * dnsbl_result_clear). Returns IPW_OK whatever the answers; IPW_EUSAGE when an IP is not an
 * address literal; IPW_ENOMEM; IPW_EIO when the event loop fails.
 */
ipw_status dnsbl_lookup(struct dns *dns, const char *const *ips, size_t n_ips,
                        const char *const *zones, size_t n_zones, struct dnsbl_result *results,
                        struct err *e);

void dnsbl_result_clear(struct dnsbl_result *r);

/* True when every zone ended in DNS_UNREACHABLE: the resolver could not be used at all. */
bool dnsbl_result_unreachable(const struct dnsbl_result *r);

#endif
