/*
 * dns: asynchronous DNS lookups and the MX resolution that decides where mail for a domain goes.
 *
 * Queries follow RFC 1035 (messages, names, A/MX/TXT/PTR/CNAME data) and RFC 3596 (AAAA). The
 * outcome of a query keeps apart the cases that callers treat differently: an answer, a name
 * that does not exist (NXDOMAIN) and a name without records of the asked type (NODATA), both
 * with their negative TTL from the SOA of the authority section (RFC 2308), a server failure,
 * a refusal and a timeout. A timeout is never read as "no records". MX resolution applies
 * RFC 5321 section 5.1 (hosts by preference; the implicit MX of a domain that has an address
 * but no MX) and RFC 7505 (the null MX "0 ." means the domain accepts no mail).
 *
 * A struct dns runs many queries at once (bounded by max_inflight; the rest wait in order)
 * through a resolver backend behind a small table of function pointers: c-ares talking to the
 * servers of /etc/resolv.conf or of --dns (dns_new), or an in-memory zone for tests and the
 * RFC 7208 conformance suite (dns_new_zone). Callbacks run only from dns_run() or
 * dns_process(), never from inside dns_submit(). A struct dns is for one thread.
 */
#ifndef IPWARM_DNS_H
#define IPWARM_DNS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"

/* Record types, by their number on the wire. */
enum dns_type {
    DNS_T_A = 1,
    DNS_T_NS = 2,
    DNS_T_CNAME = 5,
    DNS_T_SOA = 6,
    DNS_T_PTR = 12,
    DNS_T_MX = 15,
    DNS_T_TXT = 16,
    DNS_T_AAAA = 28,
    DNS_T_ANY = 255, /* dns_zone_fail: every type */
};

/* How a query ended. Only DNS_OK carries records. */
enum dns_status {
    DNS_OK = 0,      /* records of the asked type (rcode 0) */
    DNS_NXDOMAIN,    /* the name does not exist (rcode 3) */
    DNS_NODATA,      /* the name exists but has no records of the type (rcode 0, none) */
    DNS_SERVFAIL,    /* the server could not answer (rcode 2): temporary */
    DNS_REFUSED,     /* the server refused to answer (rcode 5) */
    DNS_TIMEOUT,     /* no answer within the time limit, retries included */
    DNS_UNREACHABLE, /* no server could be reached (connection refused, network down) */
    DNS_ERROR,       /* a malformed answer, another rcode, a bad name or a local failure */
    DNS_CANCELLED,   /* the query was dropped by dns_free() before it ended */
};

/* The lower-case name of a status, e.g. "nxdomain", "timeout". */
const char *dns_status_name(enum dns_status s);

/* Equal domain names, without regard to case (RFC 4343) and a trailing dot. */
bool dns_name_equal(const char *a, const char *b);
/* "A", "AAAA", "MX", ... or "TYPE<n>" in a static buffer for others. */
const char *dns_type_name(enum dns_type t);
/* True for the statuses that say "ask again later": servfail, refused, timeout, unreachable,
 * error. (An error includes a malformed answer, which a retry may not repeat.) */
bool dns_status_is_temporary(enum dns_status s);

/* One resource record of an answer. Names carry no trailing dot; the root is "". */
struct dns_rr {
    enum dns_type type;
    uint32_t ttl;
    uint16_t preference;    /* MX only */
    unsigned char addr[16]; /* A: 4 bytes, AAAA: 16 bytes */
    /* A/AAAA: the address as text; MX: the exchange; PTR, CNAME, NS: the target name;
     * TXT: the character-strings of one record joined without separator (RFC 7208 3.3). */
    char *data;
    size_t len; /* strlen(data), except TXT (may hold NUL bytes) and types kept raw (SOA) */
};

struct dns_result {
    enum dns_status status;
    enum dns_type type;
    char *name;         /* as asked, without trailing dot */
    char *canonical;    /* the end of the CNAME chain when the answer has one, else NULL */
    struct dns_rr *rrs; /* DNS_OK: the records of the asked type, in answer order */
    size_t n_rrs;
    /* DNS_OK: the smallest TTL of the records and the CNAMEs leading to them.
     * DNS_NXDOMAIN/DNS_NODATA: the negative TTL, min(SOA TTL, SOA MINIMUM) (RFC 2308 5).
     * ttl_known is false when the answer gave none (negative without SOA, or a failure). */
    uint32_t ttl;
    bool ttl_known;
    int rcode;          /* from the header, -1 when there was no answer */
    const char *detail; /* a static phrase on DNS_ERROR, else NULL */
};

void dns_result_clear(struct dns_result *r);
/* Moves src into dst (which must be clear or zeroed) and leaves src empty. */
void dns_result_move(struct dns_result *dst, struct dns_result *src);

/*
 * Parses a DNS answer message buf[0..len) to the question (qname, qtype) into out, which is
 * overwritten. The status comes from the rcode, and for rcode 0 from whether records of qtype
 * are present at the end of the CNAME chain from qname. Returns IPW_OK when out holds a result
 * (out->status may be DNS_ERROR for a malformed message) and IPW_ENOMEM otherwise. Used by the
 * c-ares backend and by the fuzz target.
 */
ipw_status dns_parse(const unsigned char *buf, size_t len, const char *qname, enum dns_type qtype,
                     struct dns_result *out);

/* True when name is a syntactically valid domain name: labels of 1-63 octets, 253 in all, an
 * optional trailing dot. (Any octet is allowed in a label: DNS is not only host names.) */
bool dns_name_valid(const char *name);

/*
 * Parses one server "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT" (port 53 by default; a bare
 * IPv6 address without brackets has no port). On success ip (at least 46 bytes) holds the
 * address text and *port the port. Returns IPW_OK or IPW_EUSAGE with a sentence.
 */
ipw_status dns_server_parse(const char *s, char *ip, size_t ip_size, int *port, struct err *e);

/* One DNS server to ask: the plan's dns.servers and --dns hold these, and dns_new takes them
 * as they are (no text to print and parse back). */
struct dns_server {
    char *host; /* an IP address literal, IPv4 or IPv6 (no brackets) */
    int port;   /* 1-65535; 0 means 53 */
};

/*
 * Defaults of struct dns_config; a field left 0 takes them. The limits on queries in flight
 * and on their start rate keep the queue at the server within the default 208 KiB socket
 * buffer of Linux: with 256 or more in flight, dnsmasq dropped queries, and each drop costs a
 * retry (a third of the timeout). Measured against dnsmasq on loopback, these defaults resolve
 * about 20,000 domains a second; a remote resolver with a longer round trip wants more in
 * flight (in flight / round trip = queries a second).
 */
#define DNS_DEFAULT_TIMEOUT_MS   5000
#define DNS_DEFAULT_TRIES        2
#define DNS_DEFAULT_MAX_INFLIGHT 128
#define DNS_DEFAULT_RATE_PER_SEC 20000

struct dns_config {
    const struct dns_server *servers; /* none: the servers of /etc/resolv.conf */
    size_t n_servers;
    int64_t timeout_ms;   /* the time limit of one query, every retry and server included */
    int tries;            /* attempts per server within that limit */
    size_t max_inflight;  /* queries sent at once; more wait in order of submission */
    int64_t rate_per_sec; /* queries started per second at most, in bursts of 64 */
};

struct dns;

/*
 * A resolver using c-ares and the servers of cfg (or /etc/resolv.conf). Answers over 512
 * bytes come by TCP after a truncated UDP answer. Returns NULL and fills e with IPW_EUSAGE
 * for a bad server, IPW_EUNAVAIL when c-ares cannot start, IPW_ENOMEM.
 */
struct dns *dns_new(const struct dns_config *cfg, struct err *e);

/*
 * The in-memory zone (dns_zone.c), a second backend with the same behaviour for callers:
 * NXDOMAIN for a name that owns nothing (and is no parent of a name that does), NODATA for
 * one that owns other types, CNAMEs followed as a recursive server would, and faults per name
 * so tests can see a timeout or a server failure at once, without waiting.
 */
struct dns_zone;
struct dns_zone *dns_zone_new(void);
void dns_zone_free(struct dns_zone *z);
/*
 * Adds a record. data by type: A/AAAA an address; MX "PREFERENCE HOST" ("0 ." is a null MX);
 * TXT the text of one record (its strings already joined); PTR, CNAME, NS a name; any other
 * type: kept as text. Names are matched without case and without a trailing dot.
 * Returns IPW_OK, IPW_EUSAGE for bad data, IPW_ENOMEM.
 */
ipw_status dns_zone_add(struct dns_zone *z, const char *name, enum dns_type type, uint32_t ttl,
                        const char *data, struct err *e);
/* Adds a TXT record of len bytes, which may hold NUL bytes (dns_zone_add stops at the first):
 * the RFC 7208 suite has records with a NUL that must reach the SPF parser. Returns IPW_OK,
 * IPW_EUSAGE (no name), IPW_ENOMEM. */
ipw_status dns_zone_add_txt(struct dns_zone *z, const char *name, uint32_t ttl, const char *data,
                            size_t len, struct err *e);
/* Makes queries for name and type (DNS_T_ANY: all types) end with status, e.g. DNS_TIMEOUT or
 * DNS_SERVFAIL. Returns IPW_OK, IPW_EUSAGE (status DNS_OK), IPW_ENOMEM. */
ipw_status dns_zone_fail(struct dns_zone *z, const char *name, enum dns_type type,
                         enum dns_status status, struct err *e);
/* The negative TTL of NXDOMAIN and NODATA answers (default 300), as an SOA would give. */
void dns_zone_set_negative_ttl(struct dns_zone *z, uint32_t ttl);
/* How many queries the zone has answered. */
unsigned long dns_zone_queries(const struct dns_zone *z);
/* A resolver answering from zone, which must outlive it. cfg may be NULL (only max_inflight
 * is used). Returns NULL on IPW_ENOMEM. */
struct dns *dns_new_zone(struct dns_zone *zone, const struct dns_config *cfg, struct err *e);

/* Drops every query still running (their callbacks see DNS_CANCELLED; those already ended
 * see their result) and frees dns. Must not be called from a callback. */
void dns_free(struct dns *dns);

/* Called once per query with the result, which the library frees after the call returns
 * (keep it with dns_result_move). The callback may submit further queries. */
typedef void dns_callback(void *arg, struct dns_result *r);

/*
 * Starts a query for name and type; cb runs later from dns_run/dns_process. An invalid name
 * is not refused here: its callback sees DNS_ERROR. Returns IPW_OK, IPW_ENOMEM, or
 * IPW_EUSAGE after dns_free has begun.
 */
ipw_status dns_submit(struct dns *dns, const char *name, enum dns_type type, dns_callback *cb,
                      void *arg);

/* Queries submitted and not yet ended (waiting or in flight). */
size_t dns_pending(const struct dns *dns);

/*
 * Runs the event loop until no query is pending, or until max_ms milliseconds have passed
 * (max_ms < 0: no limit). Returns IPW_OK when none is pending, IPW_ETEMP when the time ran out
 * first, IPW_EIO when poll(2) fails.
 */
ipw_status dns_run(struct dns *dns, int64_t max_ms, struct err *e);

/*
 * For another event loop (the engine's curl multi): dns_pollfds fills up to max entries and
 * returns how many it needs; dns_timeout says in how many milliseconds dns_process must be
 * called at the latest (-1: nothing pending, 0: now); dns_process handles the revents of
 * fds (n may be 0) and expired timers, and runs the callbacks that are due.
 */
size_t dns_pollfds(struct dns *dns, struct pollfd *fds, size_t max);
int64_t dns_timeout(struct dns *dns);
void dns_process(struct dns *dns, const struct pollfd *fds, size_t n);

/* A synchronous query: runs the loop until this one ends. Returns IPW_OK when out holds the
 * result (any status), IPW_ENOMEM, IPW_EIO. */
ipw_status dns_query(struct dns *dns, const char *name, enum dns_type type, struct dns_result *out,
                     struct err *e);

/*
 * The addresses of host, IPv4 ones first, as malloc'd strings (release with
 * dns_addresses_free); an address literal is its own address, and "localhost" (or a name under
 * it) is 127.0.0.1 without asking DNS (RFC 6761 6.3). For names ipwarm connects to
 * itself (the relay): resolved through the plan's DNS servers like every other name.
 * Returns IPW_OK with *n_out >= 1; IPW_ENOTFOUND when the name has no address; IPW_ETEMP when
 * a lookup failed for now; IPW_ENOMEM; or dns_query's status.
 */
ipw_status dns_host_addresses(struct dns *dns, const char *host, char ***out, size_t *n_out,
                              struct err *e);
void dns_addresses_free(char **a, size_t n);

/* ---- MX resolution (RFC 5321 5.1, RFC 7505) ---- */

enum dns_mx_status {
    DNS_MX_OK = 0,     /* MX hosts, at least one with an address */
    DNS_MX_IMPLICIT,   /* no MX, but the domain has an address: it is its own MX */
    DNS_MX_NULL,       /* null MX: the domain accepts no mail (undeliverable) */
    DNS_MX_NXDOMAIN,   /* the domain does not exist (or is not a valid name): undeliverable */
    DNS_MX_NO_ADDRESS, /* no MX host (nor the domain) has an address: undeliverable */
    DNS_MX_TEMPERROR,  /* a lookup failed temporarily: ask again later, never send now */
};

/* "ok", "implicit-mx", "null-mx", "nxdomain", "no-address", "temperror" (the mx JSON). */
const char *dns_mx_status_name(enum dns_mx_status s);

struct dns_mx_host {
    uint16_t preference;
    char *host;       /* no trailing dot */
    char **addresses; /* IPv4 ones first, then IPv6, each in answer order */
    size_t n_addresses;
    enum dns_status a_status, aaaa_status; /* of the address lookups of host */
};

struct dns_mx_result {
    char *domain; /* as given */
    enum dns_mx_status status;
    struct dns_mx_host *hosts; /* by preference, ties in answer order; the implicit MX is the
                                * domain itself with preference 0; none for null-mx/nxdomain */
    size_t n_hosts;
    uint32_t ttl; /* smallest TTL of the answers used; 0 when none was known (do not cache) */
    enum dns_status cause; /* the lookup status that decided a temperror or nxdomain */
    const char *detail;    /* a static phrase saying why, for messages; never NULL */
};

void dns_mx_result_clear(struct dns_mx_result *r);

/*
 * Resolves the MX of each of domains[0..n) into results[0..n) (overwritten; clear each with
 * dns_mx_result_clear), all domains at once within max_inflight, with each host's A and AAAA
 * lookups in parallel and shared between domains that name the same host. Statuses:
 *   - MX records: hosts sorted by preference; "ok" when one has an address, "no-address" when
 *     none does and every address lookup was answered, "temperror" otherwise;
 *   - only MX records naming the root: "null-mx" (other MX beside a "." one: the "." is ignored);
 *   - NODATA for MX: the domain's own A/AAAA: "implicit-mx", "no-address", or "temperror";
 *   - NXDOMAIN, or a name that is not a valid domain: "nxdomain";
 *   - servfail, refused, timeout, unreachable, error: "temperror".
 * Returns IPW_OK (whatever the statuses), IPW_ENOMEM, or IPW_EIO when poll(2) fails.
 */
ipw_status dns_mx_resolve(struct dns *dns, const char *const *domains, size_t n,
                          struct dns_mx_result *results, struct err *e);

/* ---- resolver backends ---- */

/* One query as the backend sees it. */
struct dns_query;
const char *dns_query_name(const struct dns_query *q);
enum dns_type dns_query_type(const struct dns_query *q);
/* The backend reports the end of q exactly once, passing r's content over (r is left clear).
 * It may do so from inside start(); the callback is then deferred to the next dns_process. */
void dns_query_done(struct dns_query *q, struct dns_result *r);

struct dns_backend {
    const char *name;
    /* Sends q. Returns IPW_OK (done will follow) or IPW_ENOMEM (done will not). */
    ipw_status (*start)(void *impl, struct dns_query *q);
    /* Sockets to watch, as for dns_pollfds. */
    size_t (*pollfds)(void *impl, struct pollfd *fds, size_t max);
    /* Milliseconds until the backend's next timer, -1 for none. */
    int64_t (*timeout)(void *impl);
    /* Handles the revents of fds and the expired timers. */
    void (*process)(void *impl, const struct pollfd *fds, size_t n);
    /* Ends every query it holds with DNS_CANCELLED and frees impl. */
    void (*free)(void *impl);
};

/* A resolver over any backend (dns_new and dns_new_zone use it). Takes impl over: on failure
 * ops->free(impl) has been called. */
struct dns *dns_new_backend(const struct dns_backend *ops, void *impl, const struct dns_config *cfg,
                            struct err *e);

#endif
