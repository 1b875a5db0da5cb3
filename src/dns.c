/*
 * dns: the resolver front end shared by every backend (the answer parser is dns_parse.c, MX
 * resolution dns_mx.c, the backends dns_ares.c and dns_zone.c).
 *
 * The front end keeps its own deadline per
 * query so that "the time limit of one query, retries included" holds whatever the backend
 * does, and bounds the queries in flight so that thousands of domains can be submitted at once.
 */
#include "ipwarm/dns.h"
#include "dns_internal.h"

#include "ipwarm/chars.h"
#include "ipwarm/strmap.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Also used by the answer parser and the MX roll-up (dns_internal.h). */
void dns_strip_dot(char *s)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        s[n - 1] = '\0';
}

/* ---- names of things ---- */

const char *dns_status_name(enum dns_status s)
{
    switch (s) {
    case DNS_OK:
        return "ok";
    case DNS_NXDOMAIN:
        return "nxdomain";
    case DNS_NODATA:
        return "nodata";
    case DNS_SERVFAIL:
        return "servfail";
    case DNS_REFUSED:
        return "refused";
    case DNS_TIMEOUT:
        return "timeout";
    case DNS_UNREACHABLE:
        return "unreachable";
    case DNS_ERROR:
        return "error";
    case DNS_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

const char *dns_type_name(enum dns_type t)
{
    static char other[16];
    switch (t) {
    case DNS_T_A:
        return "A";
    case DNS_T_NS:
        return "NS";
    case DNS_T_CNAME:
        return "CNAME";
    case DNS_T_SOA:
        return "SOA";
    case DNS_T_PTR:
        return "PTR";
    case DNS_T_MX:
        return "MX";
    case DNS_T_TXT:
        return "TXT";
    case DNS_T_AAAA:
        return "AAAA";
    case DNS_T_ANY:
        return "ANY";
    }
    snprintf(other, sizeof other, "TYPE%u", (unsigned)t);
    return other;
}

bool dns_status_is_temporary(enum dns_status s)
{
    switch (s) {
    case DNS_SERVFAIL:
    case DNS_REFUSED:
    case DNS_TIMEOUT:
    case DNS_UNREACHABLE:
    case DNS_ERROR:
        return true;
    default:
        return false;
    }
}

const char *dns_mx_status_name(enum dns_mx_status s)
{
    switch (s) {
    case DNS_MX_OK:
        return "ok";
    case DNS_MX_IMPLICIT:
        return "implicit-mx";
    case DNS_MX_NULL:
        return "null-mx";
    case DNS_MX_NXDOMAIN:
        return "nxdomain";
    case DNS_MX_NO_ADDRESS:
        return "no-address";
    case DNS_MX_TEMPERROR:
        return "temperror";
    }
    return "unknown";
}

void dns_result_clear(struct dns_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_rrs; i++)
        free(r->rrs[i].data);
    free(r->rrs);
    free(r->name);
    free(r->canonical);
    memset(r, 0, sizeof *r);
}

void dns_result_move(struct dns_result *dst, struct dns_result *src)
{
    *dst = *src;
    memset(src, 0, sizeof *src);
}

bool dns_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (++label > 63) {
            return false;
        }
    }
    return label > 0;
}

ipw_status dns_server_parse(const char *s, char *ip, size_t ip_size, int *port, struct err *e)
{
    char buf[INET6_ADDRSTRLEN + 8];
    const char *addr = s, *port_s = NULL;
    size_t addr_len;
    unsigned char bin[16];

    if (!s || !*s)
        return err_set(e, IPW_EUSAGE, "DNS server: expected IP[:PORT], found nothing");
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return err_set(e, IPW_EUSAGE, "DNS server '%s': missing ']'", s);
        addr = s + 1;
        addr_len = (size_t)(close - addr);
        if (close[1] == ':')
            port_s = close + 2;
        else if (close[1] != '\0')
            return err_set(e, IPW_EUSAGE, "DNS server '%s': expected ':PORT' after ']'", s);
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
            addr_len = strlen(s); /* a bare IPv6 address: its colons are not a port */
        } else if (colon) {
            addr_len = (size_t)(colon - s);
            port_s = colon + 1;
        } else {
            addr_len = strlen(s);
        }
    }
    if (addr_len == 0 || addr_len >= sizeof buf)
        return err_set(e, IPW_EUSAGE, "DNS server '%s': expected an IP address", s);
    memcpy(buf, addr, addr_len);
    buf[addr_len] = '\0';
    if (inet_pton(AF_INET, buf, bin) != 1 && inet_pton(AF_INET6, buf, bin) != 1)
        return err_set(e, IPW_EUSAGE,
                       "DNS server '%s': '%s' is not an IP address (host names cannot be used)", s,
                       buf);
    long p = 53;
    if (port_s) {
        char *end = NULL;
        errno = 0;
        p = strtol(port_s, &end, 10);
        if (errno || end == port_s || *end || p < 1 || p > 65535 ||
            !chars_is_digit((unsigned char)*port_s))
            return err_set(e, IPW_EUSAGE, "DNS server '%s': expected a port 1-65535", s);
    }
    if (addr_len >= ip_size)
        return err_set(e, IPW_EUSAGE, "DNS server '%s': address too long", s);
    memcpy(ip, buf, addr_len + 1);
    *port = (int)p;
    return IPW_OK;
}

/* ---- the front end: queueing, deadlines, callbacks ---- */

enum query_state { Q_WAITING, Q_ACTIVE, Q_READY, Q_ABANDONED };

struct dns_query {
    struct dns *dns;
    char *name;
    enum dns_type type;
    dns_callback *cb;
    void *arg;
    int64_t deadline; /* monotonic ms, while active */
    enum query_state state;
    struct dns_result result; /* while ready */
    struct dns_query *prev, *next;
};

struct qlist {
    struct dns_query *head, *tail;
    size_t n;
};

struct dns {
    const struct dns_backend *ops;
    void *impl;
    int64_t timeout_ms;
    size_t max_inflight;
    struct qlist waiting; /* submitted, not started: FIFO */
    struct qlist active;  /* started, in start order, which is deadline order */
    struct qlist ready;   /* ended, callback not yet run */
    /* Pacing: a token bucket that lets queries start at rate_per_ms, in bursts of at most
     * DNS_PACE_BURST. Without it, submitting thousands of queries sends max_inflight packets
     * back to back, more than a server's socket buffer holds: the lost ones then wait for a
     * retry, and 1,000 domains take seconds instead of milliseconds. */
    double tokens;
    int64_t tokens_at;
    double rate_per_ms;
    bool closing;
    struct pollfd *fds; /* dns_run's poll set */
    size_t fds_cap;
};

static void dns_ql_push(struct qlist *l, struct dns_query *q)
{
    q->next = NULL;
    q->prev = l->tail;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->n++;
}

static void dns_ql_remove(struct qlist *l, struct dns_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        l->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        l->tail = q->prev;
    q->prev = q->next = NULL;
    l->n--;
}

static int64_t dns_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *dns_query_name(const struct dns_query *q)
{
    return q->name;
}

enum dns_type dns_query_type(const struct dns_query *q)
{
    return q->type;
}

static void dns_query_free(struct dns_query *q)
{
    dns_result_clear(&q->result);
    free(q->name);
    free(q);
}

/* Ends q with a result made here (not by the backend). */
static void dns_make_ready(struct dns *dns, struct dns_query *q, enum dns_status s,
                           const char *detail)
{
    memset(&q->result, 0, sizeof q->result);
    q->result.status = s;
    q->result.type = q->type;
    q->result.rcode = -1;
    q->result.detail = detail;
    q->state = Q_READY;
    dns_ql_push(&dns->ready, q);
}

void dns_query_done(struct dns_query *q, struct dns_result *r)
{
    struct dns *dns = q->dns;
    if (q->state == Q_ABANDONED) {
        /* Its caller already saw a timeout; this late end only frees it. */
        dns_result_clear(r);
        dns_query_free(q);
        return;
    }
    dns_ql_remove(&dns->active, q);
    dns_result_move(&q->result, r);
    q->result.type = q->type;
    q->state = Q_READY;
    dns_ql_push(&dns->ready, q);
}

#define DNS_PACE_BURST 64.0

static void dns_refill(struct dns *dns, int64_t now)
{
    if (now > dns->tokens_at) {
        dns->tokens += (double)(now - dns->tokens_at) * dns->rate_per_ms;
        if (dns->tokens > DNS_PACE_BURST)
            dns->tokens = DNS_PACE_BURST;
        dns->tokens_at = now;
    }
}

static void dns_start_waiting(struct dns *dns)
{
    if (dns->waiting.head)
        dns_refill(dns, dns_now_ms());
    while (!dns->closing && dns->waiting.head && dns->active.n < dns->max_inflight &&
           dns->tokens >= 1.0) {
        struct dns_query *q = dns->waiting.head;
        dns->tokens -= 1.0;
        dns_ql_remove(&dns->waiting, q);
        q->state = Q_ACTIVE;
        q->deadline = dns_now_ms() + dns->timeout_ms;
        dns_ql_push(&dns->active, q);
        if (dns->ops->start(dns->impl, q) != IPW_OK) {
            dns_ql_remove(&dns->active, q);
            dns_make_ready(dns, q, DNS_ERROR, "out of memory");
        }
    }
}

/* Runs the callback of the first ready query and frees it. */
static void dns_deliver_one(struct dns *dns)
{
    struct dns_query *q = dns->ready.head;
    dns_ql_remove(&dns->ready, q);
    if (!q->result.name) {
        q->result.name = q->name;
        q->name = NULL;
        if (q->result.name)
            dns_strip_dot(q->result.name);
    }
    q->cb(q->arg, &q->result);
    dns_query_free(q);
}

/* Abandons the active queries whose deadline has passed: their callers see a timeout now,
 * and the backend's own end of them, later, only frees them. */
static void dns_expire(struct dns *dns)
{
    int64_t now = dns_now_ms();
    while (dns->active.head && dns->active.head->deadline <= now) {
        struct dns_query *q = dns->active.head;
        dns_ql_remove(&dns->active, q);
        q->state = Q_ABANDONED;
        struct dns_result r = {.status = DNS_TIMEOUT, .type = q->type, .rcode = -1};
        r.name = q->name ? strdup(q->name) : NULL;
        if (r.name)
            dns_strip_dot(r.name);
        q->cb(q->arg, &r);
        dns_result_clear(&r);
        q->cb = NULL;
    }
}

struct dns *dns_new_backend(const struct dns_backend *ops, void *impl, const struct dns_config *cfg,
                            struct err *e)
{
    struct dns *dns = calloc(1, sizeof *dns);
    if (!dns) {
        ops->free(impl);
        err_set(e, IPW_ENOMEM, "out of memory starting the resolver");
        return NULL;
    }
    dns->ops = ops;
    dns->impl = impl;
    dns->timeout_ms = cfg && cfg->timeout_ms > 0 ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
    dns->max_inflight = cfg && cfg->max_inflight > 0 ? cfg->max_inflight : DNS_DEFAULT_MAX_INFLIGHT;
    dns->rate_per_ms =
        (cfg && cfg->rate_per_sec > 0 ? (double)cfg->rate_per_sec : DNS_DEFAULT_RATE_PER_SEC) /
        1000.0;
    dns->tokens = DNS_PACE_BURST;
    dns->tokens_at = dns_now_ms();
    return dns;
}

void dns_free(struct dns *dns)
{
    if (!dns)
        return;
    dns->closing = true;
    /* The backend ends what it holds with DNS_CANCELLED (active queries become ready, the
     * abandoned ones are freed); the waiting ones never started. */
    dns->ops->free(dns->impl);
    while (dns->active.head) {
        struct dns_query *q = dns->active.head; /* a backend that forgot some */
        dns_ql_remove(&dns->active, q);
        dns_make_ready(dns, q, DNS_CANCELLED, NULL);
    }
    while (dns->waiting.head) {
        struct dns_query *q = dns->waiting.head;
        dns_ql_remove(&dns->waiting, q);
        dns_make_ready(dns, q, DNS_CANCELLED, NULL);
    }
    while (dns->ready.head)
        dns_deliver_one(dns);
    free(dns->fds);
    free(dns);
}

ipw_status dns_submit(struct dns *dns, const char *name, enum dns_type type, dns_callback *cb,
                      void *arg)
{
    if (dns->closing)
        return IPW_EUSAGE;
    struct dns_query *q = calloc(1, sizeof *q);
    if (!q)
        return IPW_ENOMEM;
    q->dns = dns;
    q->name = strdup(name ? name : "");
    if (!q->name) {
        free(q);
        return IPW_ENOMEM;
    }
    q->type = type;
    q->cb = cb;
    q->arg = arg;
    if (!dns_name_valid(q->name)) {
        dns_make_ready(dns, q, DNS_ERROR, "not a valid domain name");
        return IPW_OK;
    }
    q->state = Q_WAITING;
    dns_ql_push(&dns->waiting, q);
    dns_start_waiting(dns);
    return IPW_OK;
}

size_t dns_pending(const struct dns *dns)
{
    return dns->waiting.n + dns->active.n + dns->ready.n;
}

size_t dns_pollfds(struct dns *dns, struct pollfd *fds, size_t max)
{
    return dns->ops->pollfds(dns->impl, fds, max);
}

int64_t dns_timeout(struct dns *dns)
{
    if (dns->ready.n)
        return 0;
    if (!dns->active.n && !dns->waiting.n)
        return -1;
    int64_t t = dns->ops->timeout(dns->impl);
    if (dns->waiting.head && dns->active.n < dns->max_inflight) {
        /* Held back by the pacing only: come back when the next token is due. */
        dns_refill(dns, dns_now_ms());
        int64_t due =
            dns->tokens >= 1.0 ? 0 : (int64_t)((1.0 - dns->tokens) / dns->rate_per_ms) + 1;
        if (t < 0 || due < t)
            t = due;
    }
    if (dns->active.head) {
        int64_t d = dns->active.head->deadline - dns_now_ms();
        if (d < 0)
            d = 0;
        if (t < 0 || d < t)
            t = d;
    }
    return t;
}

void dns_process(struct dns *dns, const struct pollfd *fds, size_t n)
{
    dns->ops->process(dns->impl, fds, n);
    for (;;) {
        dns_expire(dns);
        dns_start_waiting(dns);
        if (!dns->ready.head)
            break;
        /* Callbacks may submit more; they are started and delivered in this same pass. */
        while (dns->ready.head)
            dns_deliver_one(dns);
    }
}

/* Runs the loop until *done (or, done NULL, nothing is pending) or max_ms has passed. */
static ipw_status dns_loop(struct dns *dns, const bool *done, int64_t max_ms, struct err *e)
{
    int64_t end = max_ms >= 0 ? dns_now_ms() + max_ms : -1;
    for (;;) {
        if (done ? *done : dns_pending(dns) == 0)
            return IPW_OK;
        if (dns_pending(dns) == 0)
            return err_set(e, IPW_ESOFTWARE, "the resolver stopped with a query unanswered");
        int64_t t = dns_timeout(dns);
        if (end >= 0) {
            int64_t left = end - dns_now_ms();
            if (left <= 0)
                return err_set(e, IPW_ETEMP, "%zu DNS queries still unanswered", dns_pending(dns));
            if (t < 0 || left < t)
                t = left;
        }
        size_t need = dns_pollfds(dns, dns->fds, dns->fds_cap);
        if (need > dns->fds_cap) {
            struct pollfd *nf = realloc(dns->fds, need * sizeof *nf);
            if (!nf)
                return err_set(e, IPW_ENOMEM, "out of memory waiting for DNS answers");
            dns->fds = nf;
            dns->fds_cap = need;
            need = dns_pollfds(dns, dns->fds, dns->fds_cap);
        }
        if (t > 1000 * 1000)
            t = 1000 * 1000;
        int rc = poll(dns->fds, need, t < 0 ? -1 : (int)t);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return err_set(e, IPW_EIO, "waiting for DNS answers: poll: %s", strerror(errno));
        }
        dns_process(dns, dns->fds, rc > 0 ? need : 0);
    }
}

ipw_status dns_run(struct dns *dns, int64_t max_ms, struct err *e)
{
    return dns_loop(dns, NULL, max_ms, e);
}

/* Points the callbacks cb (of arg, or of any arg when arg is NULL) of every query not yet
 * delivered at a no-op, for a caller that must return before its queries end. */
static void dns_ignore_result(void *arg, struct dns_result *r)
{
    (void)arg;
    (void)r;
}

void dns_detach(struct dns *dns, dns_callback *cb, const void *arg)
{
    struct qlist *lists[3] = {&dns->waiting, &dns->active, &dns->ready};
    for (int l = 0; l < 3; l++)
        for (struct dns_query *q = lists[l]->head; q; q = q->next)
            if (q->cb == cb && (!arg || q->arg == arg))
                q->cb = dns_ignore_result;
}

struct sync_wait {
    bool done;
    struct dns_result r;
};

static void dns_sync_cb(void *arg, struct dns_result *r)
{
    struct sync_wait *w = arg;
    dns_result_move(&w->r, r);
    w->done = true;
}

ipw_status dns_query(struct dns *dns, const char *name, enum dns_type type, struct dns_result *out,
                     struct err *e)
{
    struct sync_wait w = {0};
    memset(out, 0, sizeof *out);
    ipw_status st = dns_submit(dns, name, type, dns_sync_cb, &w);
    if (st != IPW_OK)
        return err_set(e, st, "cannot start the DNS query for %s", name);
    st = dns_loop(dns, &w.done, -1, e);
    if (st != IPW_OK) {
        dns_detach(dns, dns_sync_cb, &w); /* w lives on this stack frame only */
        dns_result_clear(&w.r);
        return st;
    }
    dns_result_move(out, &w.r);
    return IPW_OK;
}

/* ---- host addresses ---- */

ipw_status dns_host_addresses(struct dns *dns, const char *host, char ***out, size_t *n_out,
                              struct err *e)
{
    *out = NULL;
    *n_out = 0;
    unsigned char bin[16];
    /* RFC 6761 6.3: "localhost" and names under it are the loopback, answered here without
     * asking DNS (a relay on this machine, written smtp://localhost, is common, and resolvers
     * such as dnsmasq with no-hosts refuse the name). */
    size_t hl = strlen(host);
    if (hl && host[hl - 1] == '.')
        hl--;
    bool loop = (hl == 9 && strncasecmp(host, "localhost", 9) == 0) ||
                (hl > 10 && strncasecmp(host + hl - 10, ".localhost", 10) == 0);
    if (loop || inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1) {
        char **a = calloc(1, sizeof *a);
        if (a)
            a[0] = strdup(loop ? "127.0.0.1" : host);
        if (!a || !a[0]) {
            free(a);
            return err_set(e, IPW_ENOMEM, "out of memory");
        }
        *out = a;
        *n_out = 1;
        return IPW_OK;
    }
    struct dns_result r[2];
    static const enum dns_type types[2] = {DNS_T_A, DNS_T_AAAA};
    bool temporary = false;
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        ipw_status st = dns_query(dns, host, types[k], &r[k], e);
        if (st != IPW_OK) {
            if (k == 1)
                dns_result_clear(&r[0]);
            return st;
        }
        if (r[k].status == DNS_OK)
            n += r[k].n_rrs;
        else if (dns_status_is_temporary(r[k].status))
            temporary = true;
    }
    char **a = n ? calloc(n, sizeof *a) : NULL;
    size_t k = 0;
    for (int t = 0; t < 2 && (a || !n); t++)
        for (size_t i = 0; r[t].status == DNS_OK && i < r[t].n_rrs && a; i++)
            if ((a[k] = strdup(r[t].rrs[i].data)) != NULL)
                k++;
    enum dns_status st4 = r[0].status, st6 = r[1].status;
    dns_result_clear(&r[0]);
    dns_result_clear(&r[1]);
    if (n && k < n) {
        dns_addresses_free(a, k);
        return err_set(e, IPW_ENOMEM, "out of memory");
    }
    if (n == 0)
        return err_set(e, temporary ? IPW_ETEMP : IPW_ENOTFOUND,
                       "%s has no address in DNS (A: %s, AAAA: %s)", host, dns_status_name(st4),
                       dns_status_name(st6));
    *out = a;
    *n_out = n;
    return IPW_OK;
}

void dns_addresses_free(char **a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i]);
    free(a);
}

bool dns_name_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}
