/*
 * dns_ares: the resolver backend that asks real servers, through c-ares (1.18 or later).
 *
 * Queries go out as RFC 1035 messages over UDP; an answer with the TC bit set is asked again
 * over TCP (RFC 1035 4.2.2, RFC 7766), which c-ares does by itself. c-ares would read a
 * SERVFAIL or REFUSED as "try the next server" and end with ARES_ECONNREFUSED, losing the
 * rcode; ARES_FLAG_NOCHECKRESP makes it hand every answer over, and dns_parse() reads the
 * rcode from the header, so SERVFAIL, REFUSED and NXDOMAIN stay apart (RFC 2308). The cost:
 * a server that fails is not followed by the next one for that query.
 *
 * The sockets c-ares opens are tracked through its socket-state callback, so that the front
 * end can poll them itself or hand them to another event loop.
 */
#include "ipwarm/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* c-ares keeps one UDP and at most one TCP socket per server; the servers are limited so
 * that a fixed table always suffices (the socket-state callback cannot report a failure). */
#define DNS_ARES_MAX_SERVERS 16
#define DNS_ARES_MAX_SOCKS   (4 * DNS_ARES_MAX_SERVERS)

struct dns_ares_sock {
    int fd;
    bool r, w;
};

struct dns_ares {
    ares_channel ch;
    bool have_channel;
    struct dns_ares_sock socks[DNS_ARES_MAX_SOCKS];
    size_t n_socks;
};

static void dns_ares_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_ares *a = data;
    size_t i;
    for (i = 0; i < a->n_socks; i++)
        if (a->socks[i].fd == fd)
            break;
    if (!readable && !writable) {
        if (i < a->n_socks)
            a->socks[i] = a->socks[--a->n_socks];
        return;
    }
    if (i == a->n_socks) {
        if (a->n_socks == DNS_ARES_MAX_SOCKS)
            return; /* cannot happen within DNS_ARES_MAX_SERVERS; the query then times out */
        a->n_socks++;
        a->socks[i].fd = fd;
    }
    a->socks[i].r = readable != 0;
    a->socks[i].w = writable != 0;
}

static enum dns_status dns_ares_status(int status)
{
    switch (status) {
    case ARES_ETIMEOUT:
        return DNS_TIMEOUT;
    case ARES_ECONNREFUSED:
        return DNS_UNREACHABLE;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        return DNS_CANCELLED;
    case ARES_ENOTFOUND:
        return DNS_NXDOMAIN;
    case ARES_ENODATA:
        return DNS_NODATA;
    case ARES_ESERVFAIL:
        return DNS_SERVFAIL;
    case ARES_EREFUSED:
        return DNS_REFUSED;
    default:
        return DNS_ERROR;
    }
}

static void dns_ares_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_query *q = arg;
    struct dns_result r;
    (void)timeouts;

    if (abuf && alen > 0 && status != ARES_EDESTRUCTION && status != ARES_ECANCELLED) {
        /* Whatever c-ares concluded from the rcode, the answer itself says it best. */
        if (dns_parse(abuf, (size_t)alen, dns_query_name(q), dns_query_type(q), &r) != IPW_OK) {
            memset(&r, 0, sizeof r);
            r.status = DNS_ERROR;
            r.rcode = -1;
            r.detail = "out of memory";
        }
    } else {
        memset(&r, 0, sizeof r);
        r.status = dns_ares_status(status);
        r.rcode = -1;
        if (r.status == DNS_ERROR)
            r.detail = ares_strerror(status); /* static strings in c-ares */
    }
    dns_query_done(q, &r);
}

static ipw_status dns_ares_start(void *impl, struct dns_query *q)
{
    struct dns_ares *a = impl;
    ares_query(a->ch, dns_query_name(q), 1 /* C_IN */, (int)dns_query_type(q), dns_ares_on_answer,
               q);
    return IPW_OK;
}

static size_t dns_ares_pollfds(void *impl, struct pollfd *fds, size_t max)
{
    struct dns_ares *a = impl;
    for (size_t i = 0; i < a->n_socks && i < max; i++) {
        fds[i].fd = a->socks[i].fd;
        fds[i].events = (short)((a->socks[i].r ? POLLIN : 0) | (a->socks[i].w ? POLLOUT : 0));
        fds[i].revents = 0;
    }
    return a->n_socks;
}

static int64_t dns_ares_timeout_ms(void *impl)
{
    struct dns_ares *a = impl;
    struct timeval tv, *t = ares_timeout(a->ch, NULL, &tv);
    if (!t)
        return -1;
    /* Rounded up: waking a millisecond early would only spin. */
    return (int64_t)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
}

static void dns_ares_process(void *impl, const struct pollfd *fds, size_t n)
{
    struct dns_ares *a = impl;
    for (size_t i = 0; i < n; i++) {
        if (!fds[i].revents)
            continue;
        ares_socket_t rfd =
            (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
        ares_socket_t wfd = (fds[i].revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
        ares_process_fd(a->ch, rfd, wfd);
    }
    /* With no socket ready this only runs the timers: retries and timeouts. */
    ares_process_fd(a->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static void dns_ares_free(void *impl)
{
    struct dns_ares *a = impl;
    if (!a)
        return;
    if (a->have_channel)
        ares_destroy(a->ch); /* ends every query with ARES_EDESTRUCTION */
    ares_library_cleanup();
    free(a);
}

static const struct dns_backend dns_ares_backend = {
    .name = "c-ares",
    .start = dns_ares_start,
    .pollfds = dns_ares_pollfds,
    .timeout = dns_ares_timeout_ms,
    .process = dns_ares_process,
    .free = dns_ares_free,
};

/* Frees a list made by ares_get_servers_ports or by hand (the hand-made one with free). */
static void dns_ares_free_nodes(struct ares_addr_port_node *n)
{
    while (n) {
        struct ares_addr_port_node *next = n->next;
        free(n);
        n = next;
    }
}

struct dns *dns_new(const struct dns_config *cfg, struct err *e)
{
    struct dns_config def = {0};
    struct ares_addr_port_node *head = NULL, **tail = &head;
    size_t n_servers = cfg ? cfg->n_servers : 0;
    int rc;

    if (!cfg)
        cfg = &def;
    if (n_servers > DNS_ARES_MAX_SERVERS) {
        err_set(e, IPW_EUSAGE, "too many DNS servers: %zu (at most %d)", n_servers,
                DNS_ARES_MAX_SERVERS);
        return NULL;
    }
    for (size_t i = 0; i < n_servers; i++) {
        const char *ip = cfg->servers[i].host ? cfg->servers[i].host : "";
        int port = cfg->servers[i].port ? cfg->servers[i].port : 53;
        unsigned char bin[16];
        if (inet_pton(AF_INET, ip, bin) != 1 && inet_pton(AF_INET6, ip, bin) != 1) {
            dns_ares_free_nodes(head);
            err_set(e, IPW_EUSAGE,
                    "DNS server '%s' is not an IP address (host names cannot be used)", ip);
            return NULL;
        }
        if (port < 1 || port > 65535) {
            dns_ares_free_nodes(head);
            err_set(e, IPW_EUSAGE, "DNS server %s: port %d is not 1-65535", ip, port);
            return NULL;
        }
        struct ares_addr_port_node *node = calloc(1, sizeof *node);
        if (!node) {
            dns_ares_free_nodes(head);
            err_set(e, IPW_ENOMEM, "out of memory starting the resolver");
            return NULL;
        }
        if (inet_pton(AF_INET, ip, &node->addr.addr4) == 1) {
            node->family = AF_INET;
        } else {
            node->family = AF_INET6;
            inet_pton(AF_INET6, ip, &node->addr.addr6);
        }
        node->udp_port = port;
        node->tcp_port = port;
        *tail = node;
        tail = &node->next;
    }

    struct dns_ares *a = calloc(1, sizeof *a);
    if (!a) {
        dns_ares_free_nodes(head);
        err_set(e, IPW_ENOMEM, "out of memory starting the resolver");
        return NULL;
    }
    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        free(a);
        dns_ares_free_nodes(head);
        err_set(e, IPW_EUNAVAIL, "cannot start c-ares: %s", ares_strerror(rc));
        return NULL;
    }

    int tries = cfg->tries > 0 ? cfg->tries : DNS_DEFAULT_TRIES;
    if (tries > 8)
        tries = 8;
    int64_t budget = cfg->timeout_ms > 0 ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;

    /* c-ares gives each attempt its own timeout, doubling it after each round of the servers
     * (timeout << (try / servers)), so n servers and t tries take about
     * per_try * n * (2^t - 1) in all: per_try is chosen so that this is the budget. The front
     * end enforces the budget exactly in any case. Without --dns the servers come from
     * /etc/resolv.conf, counted on a first channel. */
    size_t n = n_servers;
    if (n == 0) {
        ares_channel probe;
        struct ares_addr_port_node *list = NULL;
        if (ares_init(&probe) == ARES_SUCCESS) {
            if (ares_get_servers_ports(probe, &list) == ARES_SUCCESS) {
                for (struct ares_addr_port_node *p = list; p; p = p->next)
                    n++;
                ares_free_data(list);
            }
            ares_destroy(probe);
        }
        if (n == 0)
            n = 1;
    }
    int64_t per_try = budget / ((int64_t)n * ((1 << tries) - 1));
    if (per_try < 1)
        per_try = 1;

    struct ares_options opt;
    memset(&opt, 0, sizeof opt);
    /* NOCHECKRESP: see the top of the file. No EDNS: plain 512-byte UDP, TCP beyond. */
    opt.flags = ARES_FLAG_NOCHECKRESP;
    opt.tries = tries;
    opt.timeout = (int)per_try;
    opt.sock_state_cb = dns_ares_sock_state;
    opt.sock_state_cb_data = a;
    /* Thousands of answers can arrive at once on the one UDP socket per server. */
    opt.socket_receive_buffer_size = 1 << 20;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TRIES | ARES_OPT_TIMEOUTMS | ARES_OPT_SOCK_STATE_CB |
               ARES_OPT_SOCK_RCVBUF;
    rc = ares_init_options(&a->ch, &opt, mask);
    if (rc != ARES_SUCCESS) {
        ares_library_cleanup();
        free(a);
        dns_ares_free_nodes(head);
        err_set(e, IPW_EUNAVAIL, "cannot start c-ares: %s", ares_strerror(rc));
        return NULL;
    }
    a->have_channel = true;
    if (head) {
        rc = ares_set_servers_ports(a->ch, head);
        dns_ares_free_nodes(head);
        if (rc != ARES_SUCCESS) {
            dns_ares_free(a);
            err_set(e, IPW_EUSAGE, "cannot use the DNS servers given: %s", ares_strerror(rc));
            return NULL;
        }
    }

    struct dns_config eff = *cfg;
    eff.timeout_ms = budget;
    return dns_new_backend(&dns_ares_backend, a, &eff, e);
}
