/*
 * dns: the resolver front end shared by every backend, the parser of answers, and MX resolution.
 *
 * Answers are read as RFC 1035 section 4 lays them out: header, question, answer, authority.
 * The rcode and the records tell NXDOMAIN (rcode 3) from NODATA (rcode 0 without records of
 * the type), whose negative TTL is min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5); a TTL with
 * the top bit set counts as zero (RFC 2181 section 8). MX resolution follows RFC 5321 section
 * 5.1 (hosts by preference, the implicit MX of a domain with an address and no MX) and
 * RFC 7505 (a null MX means no mail is accepted). The front end keeps its own deadline per
 * query so that "the time limit of one query, retries included" holds whatever the backend
 * does, and bounds the queries in flight so that thousands of domains can be submitted at once.
 */
#include "ipwarm/dns.h"

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

/* ---- the answer parser ---- */

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* One record of the answer section located in the message, decoded later if it is wanted. */
struct raw_rr {
    char *owner;
    uint16_t type, klass;
    uint32_t ttl;
    size_t rdoff, rdlen;
};

/*
 * True when the name at buf+off has a label holding a NUL octet. ares_expand_name() (c-ares
 * 1.18) copies such an octet into its C string unescaped, which cuts the text there: the owner
 * "example.com<NUL>.evil.test" would read as "example.com" and match the question, an MX or
 * PTR target would name another host. Found by tests/fuzz/fuzz_dns.c. Such a name is read as
 * malformed. Follows compression pointers (at most as many as the message has octets, so a
 * loop ends); only called on a name c-ares has already expanded.
 */
static bool name_has_nul(const unsigned char *buf, size_t len, size_t off)
{
    for (size_t hops = 0; off < len && hops <= len;) {
        unsigned c = buf[off];
        if (c == 0)
            return false;
        if ((c & 0xc0) == 0xc0) {
            if (off + 1 >= len)
                return false;
            off = ((c & 0x3f) << 8) | buf[off + 1];
            hops++;
            continue;
        }
        if (off + 1 + c > len)
            return false;
        if (memchr(buf + off + 1, 0, c))
            return true;
        off += 1 + c;
    }
    return false;
}

/* Expands the name at buf+off; returns its encoded length, or 0 when malformed. */
static size_t expand_at(const unsigned char *buf, size_t len, size_t off, char **out)
{
    long enclen = 0;
    *out = NULL;
    if (off >= len)
        return 0;
    if (ares_expand_name(buf + off, buf, (int)len, out, &enclen) != ARES_SUCCESS || enclen <= 0 ||
        name_has_nul(buf, len, off)) {
        if (*out)
            ares_free_string(*out);
        *out = NULL;
        return 0;
    }
    return (size_t)enclen;
}

/* Like expand_at, into a malloc'd string; 0 also on ENOMEM (with *enomem set). */
static size_t expand_dup(const unsigned char *buf, size_t len, size_t off, char **out, bool *enomem)
{
    char *s;
    size_t n = expand_at(buf, len, off, &s);
    *out = NULL;
    if (!n)
        return 0;
    *out = strdup(s);
    ares_free_string(s);
    if (!*out) {
        *enomem = true;
        return 0;
    }
    return n;
}

/* Reads the fixed part of a resource record at *off; advances *off past it. */
static bool read_rr(const unsigned char *buf, size_t len, size_t *off, struct raw_rr *rr,
                    bool want_owner, bool *enomem)
{
    size_t n;
    memset(rr, 0, sizeof *rr);
    if (want_owner)
        n = expand_dup(buf, len, *off, &rr->owner, enomem);
    else {
        char *s;
        n = expand_at(buf, len, *off, &s);
        if (s)
            ares_free_string(s);
    }
    if (!n || *off + n + 10 > len)
        return false;
    const unsigned char *p = buf + *off + n;
    rr->type = rd16(p);
    rr->klass = rd16(p + 2);
    rr->ttl = rd32(p + 4);
    if (rr->ttl & 0x80000000u)
        rr->ttl = 0; /* RFC 2181 8: a TTL with the top bit set is read as zero */
    rr->rdlen = rd16(p + 8);
    rr->rdoff = *off + n + 10;
    if (rr->rdoff + rr->rdlen > len)
        return false;
    *off = rr->rdoff + rr->rdlen;
    return true;
}

static void strip_dot(char *s)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        s[n - 1] = '\0';
}

/* Decodes the rdata of rr into out; false when it is malformed. */
static bool decode_rdata(const unsigned char *buf, size_t len, const struct raw_rr *rr,
                         struct dns_rr *out, bool *enomem)
{
    const unsigned char *rd = buf + rr->rdoff;
    char text[INET6_ADDRSTRLEN];
    size_t n;

    out->type = (enum dns_type)rr->type;
    out->ttl = rr->ttl;
    switch (rr->type) {
    case DNS_T_A:
    case DNS_T_AAAA: {
        size_t want = rr->type == DNS_T_A ? 4 : 16;
        if (rr->rdlen != want)
            return false;
        memcpy(out->addr, rd, want);
        inet_ntop(rr->type == DNS_T_A ? AF_INET : AF_INET6, rd, text, sizeof text);
        out->data = strdup(text);
        break;
    }
    case DNS_T_MX:
        if (rr->rdlen < 3)
            return false;
        out->preference = rd16(rd);
        n = expand_dup(buf, len, rr->rdoff + 2, &out->data, enomem);
        if (!n || n > rr->rdlen - 2)
            return false;
        break;
    case DNS_T_PTR:
    case DNS_T_CNAME:
    case DNS_T_NS:
        n = expand_dup(buf, len, rr->rdoff, &out->data, enomem);
        if (!n || n > rr->rdlen)
            return false;
        break;
    case DNS_T_TXT: {
        /* One record is one or more <length><octets> strings; SPF, DKIM and DMARC read
         * them joined without separator (RFC 7208 3.3, RFC 6376 3.6.2.2). */
        out->data = malloc(rr->rdlen + 1);
        if (!out->data) {
            *enomem = true;
            return false;
        }
        size_t i = 0, o = 0;
        while (i < rr->rdlen) {
            size_t sl = rd[i++];
            if (i + sl > rr->rdlen)
                return false;
            memcpy(out->data + o, rd + i, sl);
            o += sl;
            i += sl;
        }
        out->data[o] = '\0';
        out->len = o;
        return true;
    }
    default:
        /* Other types are kept raw: the caller knows their layout. */
        out->data = malloc(rr->rdlen + 1);
        if (!out->data) {
            *enomem = true;
            return false;
        }
        memcpy(out->data, rd, rr->rdlen);
        out->data[rr->rdlen] = '\0';
        out->len = rr->rdlen;
        return true;
    }
    if (!out->data) {
        *enomem = true;
        return false;
    }
    out->len = strlen(out->data);
    return true;
}

static void set_error(struct dns_result *out, const char *detail)
{
    for (size_t i = 0; i < out->n_rrs; i++)
        free(out->rrs[i].data);
    free(out->rrs);
    out->rrs = NULL;
    out->n_rrs = 0;
    out->status = DNS_ERROR;
    out->ttl = 0;
    out->ttl_known = false;
    out->detail = detail;
}

ipw_status dns_parse(const unsigned char *buf, size_t len, const char *qname, enum dns_type qtype,
                     struct dns_result *out)
{
    struct raw_rr *ans = NULL;
    size_t n_ans = 0, off = 12;
    bool enomem = false;
    char *cur = NULL;
    ipw_status st = IPW_OK;

    memset(out, 0, sizeof *out);
    out->type = qtype;
    out->rcode = -1;
    if (len < 12 || len > 65535) {
        set_error(out, "an answer of impossible length");
        return IPW_OK;
    }
    if (!(buf[2] & 0x80)) {
        set_error(out, "a message that is not an answer");
        return IPW_OK;
    }
    out->rcode = buf[3] & 0x0f;
    if (buf[2] & 0x02) {
        /* TC: the server cut the answer short. c-ares asks again over TCP when a UDP answer is
         * truncated, so one that still arrives here (over TCP) is incomplete: its missing
         * records must not read as NODATA ("no MX" would suppress the domain's recipients).
         * Found by tests/cli/test_faults_dns.sh. */
        set_error(out, "a truncated answer (TC set) even over TCP");
        return IPW_OK;
    }
    size_t qd = rd16(buf + 4), an = rd16(buf + 6), ns = rd16(buf + 8);

    for (size_t i = 0; i < qd; i++) {
        char *s;
        size_t n = expand_at(buf, len, off, &s);
        if (s)
            ares_free_string(s);
        if (!n || off + n + 4 > len) {
            set_error(out, "a malformed question section");
            goto done;
        }
        off += n + 4;
    }
    ans = calloc(an ? an : 1, sizeof *ans);
    if (!ans) {
        st = IPW_ENOMEM;
        goto done;
    }
    for (; n_ans < an; n_ans++) {
        if (!read_rr(buf, len, &off, &ans[n_ans], true, &enomem)) {
            free(ans[n_ans].owner);
            if (enomem) {
                st = IPW_ENOMEM;
                goto done;
            }
            set_error(out, "a malformed answer section");
            goto done;
        }
    }

    switch (out->rcode) {
    case 0:
        break;
    case 2:
        out->status = DNS_SERVFAIL;
        goto done;
    case 3:
        out->status = DNS_NXDOMAIN;
        break;
    case 5:
        out->status = DNS_REFUSED;
        goto done;
    default:
        set_error(out, "an unexpected rcode");
        goto done;
    }

    /* Follow the CNAME chain from the question as the recursive server did (RFC 1034 3.6.2),
     * and take records of the type only from its end, so that a stray record for another
     * name is not mistaken for the answer. */
    cur = strdup(qname ? qname : "");
    if (!cur) {
        st = IPW_ENOMEM;
        goto done;
    }
    strip_dot(cur);
    uint32_t chain_ttl = UINT32_MAX;
    if (qtype != DNS_T_CNAME) {
        for (int hops = 0; hops < 16; hops++) {
            size_t i;
            for (i = 0; i < n_ans; i++)
                if (ans[i].type == DNS_T_CNAME && ans[i].klass == 1 &&
                    strcasecmp(ans[i].owner, cur) == 0)
                    break;
            if (i == n_ans)
                break;
            struct dns_rr target = {0};
            if (!decode_rdata(buf, len, &ans[i], &target, &enomem)) {
                free(target.data);
                if (enomem) {
                    st = IPW_ENOMEM;
                    goto done;
                }
                set_error(out, "a malformed CNAME record");
                goto done;
            }
            free(cur);
            cur = target.data;
            if (ans[i].ttl < chain_ttl)
                chain_ttl = ans[i].ttl;
            free(out->canonical);
            out->canonical = strdup(cur);
            if (!out->canonical) {
                st = IPW_ENOMEM;
                goto done;
            }
        }
    }

    if (out->status == DNS_OK) {
        size_t want = 0;
        for (size_t i = 0; i < n_ans; i++)
            if (ans[i].type == qtype && ans[i].klass == 1 && strcasecmp(ans[i].owner, cur) == 0)
                want++;
        if (want) {
            out->rrs = calloc(want, sizeof *out->rrs);
            if (!out->rrs) {
                st = IPW_ENOMEM;
                goto done;
            }
            uint32_t ttl = chain_ttl;
            for (size_t i = 0; i < n_ans; i++) {
                if (!(ans[i].type == qtype && ans[i].klass == 1 &&
                      strcasecmp(ans[i].owner, cur) == 0))
                    continue;
                struct dns_rr *rr = &out->rrs[out->n_rrs++];
                if (!decode_rdata(buf, len, &ans[i], rr, &enomem)) {
                    if (enomem) {
                        st = IPW_ENOMEM;
                        goto done;
                    }
                    set_error(out, "a malformed record");
                    goto done;
                }
                if (rr->ttl < ttl)
                    ttl = rr->ttl;
            }
            out->ttl = ttl;
            out->ttl_known = true;
            goto done;
        }
        out->status = DNS_NODATA;
    }

    /* NXDOMAIN or NODATA: the negative TTL from the SOA in the authority section. */
    for (size_t i = 0; i < ns; i++) {
        struct raw_rr rr;
        if (!read_rr(buf, len, &off, &rr, false, &enomem))
            break; /* a broken authority section costs only the negative TTL */
        if (rr.type != DNS_T_SOA)
            continue;
        char *s;
        size_t m1 = expand_at(buf, len, rr.rdoff, &s);
        if (s)
            ares_free_string(s);
        if (!m1)
            break;
        size_t m2 = expand_at(buf, len, rr.rdoff + m1, &s);
        if (s)
            ares_free_string(s);
        if (!m2 || m1 + m2 + 20 > rr.rdlen)
            break;
        uint32_t minimum = rd32(buf + rr.rdoff + m1 + m2 + 16);
        out->ttl = rr.ttl < minimum ? rr.ttl : minimum;
        out->ttl_known = true;
        break;
    }

done:
    if (st != IPW_OK)
        dns_result_clear(out);
    for (size_t i = 0; i < n_ans; i++)
        free(ans[i].owner);
    free(ans);
    free(cur);
    return st;
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

static void ql_push(struct qlist *l, struct dns_query *q)
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

static void ql_remove(struct qlist *l, struct dns_query *q)
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

static int64_t now_ms(void)
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

static void query_free(struct dns_query *q)
{
    dns_result_clear(&q->result);
    free(q->name);
    free(q);
}

/* Ends q with a result made here (not by the backend). */
static void make_ready(struct dns *dns, struct dns_query *q, enum dns_status s, const char *detail)
{
    memset(&q->result, 0, sizeof q->result);
    q->result.status = s;
    q->result.type = q->type;
    q->result.rcode = -1;
    q->result.detail = detail;
    q->state = Q_READY;
    ql_push(&dns->ready, q);
}

void dns_query_done(struct dns_query *q, struct dns_result *r)
{
    struct dns *dns = q->dns;
    if (q->state == Q_ABANDONED) {
        /* Its caller already saw a timeout; this late end only frees it. */
        dns_result_clear(r);
        query_free(q);
        return;
    }
    ql_remove(&dns->active, q);
    dns_result_move(&q->result, r);
    q->result.type = q->type;
    q->state = Q_READY;
    ql_push(&dns->ready, q);
}

#define DNS_PACE_BURST 64.0

static void refill(struct dns *dns, int64_t now)
{
    if (now > dns->tokens_at) {
        dns->tokens += (double)(now - dns->tokens_at) * dns->rate_per_ms;
        if (dns->tokens > DNS_PACE_BURST)
            dns->tokens = DNS_PACE_BURST;
        dns->tokens_at = now;
    }
}

static void start_waiting(struct dns *dns)
{
    if (dns->waiting.head)
        refill(dns, now_ms());
    while (!dns->closing && dns->waiting.head && dns->active.n < dns->max_inflight &&
           dns->tokens >= 1.0) {
        struct dns_query *q = dns->waiting.head;
        dns->tokens -= 1.0;
        ql_remove(&dns->waiting, q);
        q->state = Q_ACTIVE;
        q->deadline = now_ms() + dns->timeout_ms;
        ql_push(&dns->active, q);
        if (dns->ops->start(dns->impl, q) != IPW_OK) {
            ql_remove(&dns->active, q);
            make_ready(dns, q, DNS_ERROR, "out of memory");
        }
    }
}

/* Runs the callback of the first ready query and frees it. */
static void deliver_one(struct dns *dns)
{
    struct dns_query *q = dns->ready.head;
    ql_remove(&dns->ready, q);
    if (!q->result.name) {
        q->result.name = q->name;
        q->name = NULL;
        if (q->result.name)
            strip_dot(q->result.name);
    }
    q->cb(q->arg, &q->result);
    query_free(q);
}

/* Abandons the active queries whose deadline has passed: their callers see a timeout now,
 * and the backend's own end of them, later, only frees them. */
static void expire(struct dns *dns)
{
    int64_t now = now_ms();
    while (dns->active.head && dns->active.head->deadline <= now) {
        struct dns_query *q = dns->active.head;
        ql_remove(&dns->active, q);
        q->state = Q_ABANDONED;
        struct dns_result r = {.status = DNS_TIMEOUT, .type = q->type, .rcode = -1};
        r.name = q->name ? strdup(q->name) : NULL;
        if (r.name)
            strip_dot(r.name);
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
    dns->tokens_at = now_ms();
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
        ql_remove(&dns->active, q);
        make_ready(dns, q, DNS_CANCELLED, NULL);
    }
    while (dns->waiting.head) {
        struct dns_query *q = dns->waiting.head;
        ql_remove(&dns->waiting, q);
        make_ready(dns, q, DNS_CANCELLED, NULL);
    }
    while (dns->ready.head)
        deliver_one(dns);
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
        make_ready(dns, q, DNS_ERROR, "not a valid domain name");
        return IPW_OK;
    }
    q->state = Q_WAITING;
    ql_push(&dns->waiting, q);
    start_waiting(dns);
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
        refill(dns, now_ms());
        int64_t due =
            dns->tokens >= 1.0 ? 0 : (int64_t)((1.0 - dns->tokens) / dns->rate_per_ms) + 1;
        if (t < 0 || due < t)
            t = due;
    }
    if (dns->active.head) {
        int64_t d = dns->active.head->deadline - now_ms();
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
        expire(dns);
        start_waiting(dns);
        if (!dns->ready.head)
            break;
        /* Callbacks may submit more; they are started and delivered in this same pass. */
        while (dns->ready.head)
            deliver_one(dns);
    }
}

/* Runs the loop until *done (or, done NULL, nothing is pending) or max_ms has passed. */
static ipw_status dns_loop(struct dns *dns, const bool *done, int64_t max_ms, struct err *e)
{
    int64_t end = max_ms >= 0 ? now_ms() + max_ms : -1;
    for (;;) {
        if (done ? *done : dns_pending(dns) == 0)
            return IPW_OK;
        if (dns_pending(dns) == 0)
            return err_set(e, IPW_ESOFTWARE, "the resolver stopped with a query unanswered");
        int64_t t = dns_timeout(dns);
        if (end >= 0) {
            int64_t left = end - now_ms();
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
static void ignore_result(void *arg, struct dns_result *r)
{
    (void)arg;
    (void)r;
}

static void dns_detach(struct dns *dns, dns_callback *cb, const void *arg)
{
    struct qlist *lists[3] = {&dns->waiting, &dns->active, &dns->ready};
    for (int l = 0; l < 3; l++)
        for (struct dns_query *q = lists[l]->head; q; q = q->next)
            if (q->cb == cb && (!arg || q->arg == arg))
                q->cb = ignore_result;
}

struct sync_wait {
    bool done;
    struct dns_result r;
};

static void sync_cb(void *arg, struct dns_result *r)
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
    ipw_status st = dns_submit(dns, name, type, sync_cb, &w);
    if (st != IPW_OK)
        return err_set(e, st, "cannot start the DNS query for %s", name);
    st = dns_loop(dns, &w.done, -1, e);
    if (st != IPW_OK) {
        dns_detach(dns, sync_cb, &w); /* w lives on this stack frame only */
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

/* ---- MX resolution ---- */

/* The address lookups of one host name, shared by every domain whose MX names it. */
struct mx_waiter {
    size_t dom, host;
};

struct mx_entry {
    int outstanding;
    struct dns_result a, aaaa;
    struct mx_waiter *waiters;
    size_t n_waiters, cap_waiters;
    struct mx_ctx *ctx;
};

struct mx_dom {
    struct mx_ctx *ctx;
    size_t index;
    size_t hosts_left;
    bool implicit;
    uint32_t ttl;
    bool ttl_known;
};

struct mx_ctx {
    struct dns *dns;
    struct dns_mx_result *results;
    struct mx_dom *doms;
    struct strmap hosts; /* host name in lower case -> its struct mx_entry * */
    bool enomem;
};

static void dom_ttl(struct mx_dom *d, const struct dns_result *r)
{
    if (!r->ttl_known)
        return;
    if (!d->ttl_known || r->ttl < d->ttl)
        d->ttl = r->ttl;
    d->ttl_known = true;
}

static void mx_finish(struct mx_ctx *ctx, size_t i)
{
    struct dns_mx_result *res = &ctx->results[i];
    struct mx_dom *d = &ctx->doms[i];
    bool any_addr = false, any_nx = false;
    enum dns_status temp = DNS_OK;

    for (size_t h = 0; h < res->n_hosts; h++) {
        struct dns_mx_host *host = &res->hosts[h];
        if (host->n_addresses)
            any_addr = true;
        if (dns_status_is_temporary(host->a_status) || host->a_status == DNS_CANCELLED)
            temp = host->a_status;
        else if (dns_status_is_temporary(host->aaaa_status) || host->aaaa_status == DNS_CANCELLED)
            temp = host->aaaa_status;
        if (host->a_status == DNS_NXDOMAIN)
            any_nx = true;
    }
    if (any_addr) {
        res->status = d->implicit ? DNS_MX_IMPLICIT : DNS_MX_OK;
        res->detail = d->implicit ? "no MX; the domain's own address is used (RFC 5321 5.1)"
                                  : "MX hosts resolved";
    } else if (temp != DNS_OK) {
        res->status = DNS_MX_TEMPERROR;
        res->cause = temp;
        res->detail = "an MX host's address lookup failed temporarily";
    } else if (d->implicit && any_nx) {
        res->status = DNS_MX_NXDOMAIN; /* the domain vanished between the two lookups */
        res->cause = DNS_NXDOMAIN;
        res->detail = "the domain does not exist";
    } else {
        res->status = DNS_MX_NO_ADDRESS;
        res->detail =
            d->implicit ? "no MX and no address for the domain" : "no MX host has an address";
    }
    if (res->status == DNS_MX_NO_ADDRESS && d->implicit) {
        /* There was no MX: the domain itself without an address is no host to list. */
        for (size_t h = 0; h < res->n_hosts; h++)
            free(res->hosts[h].host);
        free(res->hosts);
        res->hosts = NULL;
        res->n_hosts = 0;
    }
    res->ttl = res->status != DNS_MX_TEMPERROR && d->ttl_known ? d->ttl : 0;
}

static void mx_fill(struct mx_ctx *ctx, struct mx_entry *en, struct mx_waiter w)
{
    struct dns_mx_result *res = &ctx->results[w.dom];
    struct dns_mx_host *host = &res->hosts[w.host];
    size_t n = 0;
    host->a_status = en->a.status;
    host->aaaa_status = en->aaaa.status;
    if (en->a.status == DNS_OK)
        n += en->a.n_rrs;
    if (en->aaaa.status == DNS_OK)
        n += en->aaaa.n_rrs;
    if (n) {
        host->addresses = calloc(n, sizeof *host->addresses);
        if (!host->addresses) {
            ctx->enomem = true;
        } else {
            const struct dns_result *rs[2] = {&en->a, &en->aaaa};
            for (int k = 0; k < 2; k++) {
                if (rs[k]->status != DNS_OK)
                    continue;
                for (size_t j = 0; j < rs[k]->n_rrs; j++) {
                    char *s = strdup(rs[k]->rrs[j].data ? rs[k]->rrs[j].data : "");
                    if (!s) {
                        ctx->enomem = true;
                        continue;
                    }
                    host->addresses[host->n_addresses++] = s;
                }
            }
        }
    }
    dom_ttl(&ctx->doms[w.dom], &en->a);
    dom_ttl(&ctx->doms[w.dom], &en->aaaa);
    if (--ctx->doms[w.dom].hosts_left == 0)
        mx_finish(ctx, w.dom);
}

static void mx_entry_done(struct mx_entry *en)
{
    for (size_t k = 0; k < en->n_waiters; k++)
        mx_fill(en->ctx, en, en->waiters[k]);
    en->n_waiters = 0;
}

static void mx_on_a(void *arg, struct dns_result *r)
{
    struct mx_entry *en = arg;
    dns_result_move(&en->a, r);
    if (--en->outstanding == 0)
        mx_entry_done(en);
}

static void mx_on_aaaa(void *arg, struct dns_result *r)
{
    struct mx_entry *en = arg;
    dns_result_move(&en->aaaa, r);
    if (--en->outstanding == 0)
        mx_entry_done(en);
}

/* Queues the address lookups of the host of results[dom].hosts[host], or takes them from a
 * lookup already made or under way for the same name. */
static void mx_want_host(struct mx_ctx *ctx, size_t dom, size_t host)
{
    const char *name = ctx->results[dom].hosts[host].host;
    char key[256];
    size_t len = strlen(name);
    if (len >= sizeof key)
        len = sizeof key - 1;
    for (size_t i = 0; i < len; i++)
        key[i] = (char)chars_lower((unsigned char)name[i]);
    key[len] = '\0';

    intptr_t *known = strmap_find(&ctx->hosts, key);
    struct mx_entry *en = known ? (struct mx_entry *)*known : NULL;
    bool fresh = false;
    if (!en) {
        en = calloc(1, sizeof *en);
        if (!en || strmap_put(&ctx->hosts, key, (intptr_t)en) != 0) {
            free(en);
            ctx->enomem = true;
            goto failed;
        }
        en->ctx = ctx;
        fresh = true;
    }
    struct mx_waiter w = {dom, host};
    if (!fresh && en->outstanding == 0) {
        mx_fill(ctx, en, w);
        return;
    }
    if (en->n_waiters == en->cap_waiters) {
        size_t cap = en->cap_waiters ? 2 * en->cap_waiters : 4;
        struct mx_waiter *nw = realloc(en->waiters, cap * sizeof *nw);
        if (!nw) {
            ctx->enomem = true;
            goto failed;
        }
        en->waiters = nw;
        en->cap_waiters = cap;
    }
    en->waiters[en->n_waiters++] = w;
    if (fresh) {
        en->outstanding = 2;
        if (dns_submit(ctx->dns, key, DNS_T_A, mx_on_a, en) != IPW_OK) {
            en->outstanding = 0;
            en->n_waiters = 0;
            ctx->enomem = true;
            goto failed;
        }
        if (dns_submit(ctx->dns, key, DNS_T_AAAA, mx_on_aaaa, en) != IPW_OK) {
            en->outstanding--; /* the A lookup still ends and finishes the entry */
            en->aaaa.status = DNS_ERROR;
            en->aaaa.detail = "out of memory";
            ctx->enomem = true;
        }
    }
    return;
failed:
    ctx->results[dom].hosts[host].a_status = DNS_ERROR;
    ctx->results[dom].hosts[host].aaaa_status = DNS_ERROR;
    if (--ctx->doms[dom].hosts_left == 0)
        mx_finish(ctx, dom);
}

struct mx_sort {
    uint16_t pref;
    size_t order;
    const char *host;
};

static int mx_cmp(const void *a, const void *b)
{
    const struct mx_sort *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void mx_on_mx(void *arg, struct dns_result *r)
{
    struct mx_dom *d = arg;
    struct mx_ctx *ctx = d->ctx;
    struct dns_mx_result *res = &ctx->results[d->index];

    res->cause = r->status;
    switch (r->status) {
    case DNS_OK:
        break;
    case DNS_NODATA:
        break;
    case DNS_NXDOMAIN:
        dom_ttl(d, r);
        res->status = DNS_MX_NXDOMAIN;
        res->detail = "the domain does not exist";
        res->ttl = d->ttl_known ? d->ttl : 0;
        return;
    case DNS_ERROR:
        if (r->detail && strcmp(r->detail, "not a valid domain name") == 0) {
            res->status = DNS_MX_NXDOMAIN;
            res->detail = "not a valid domain name";
            return;
        }
        /* fall through */
    default:
        res->status = DNS_MX_TEMPERROR;
        res->detail = "the MX lookup failed temporarily";
        return;
    }
    dom_ttl(d, r);

    size_t n = 0;
    struct mx_sort *sorted = NULL;
    if (r->status == DNS_OK) {
        sorted = calloc(r->n_rrs ? r->n_rrs : 1, sizeof *sorted);
        if (!sorted)
            goto enomem;
        for (size_t i = 0; i < r->n_rrs; i++) {
            const char *h = r->rrs[i].data ? r->rrs[i].data : "";
            /* RFC 7505: "." is no host. Alone it is a null MX; beside real hosts (which RFC
             * 7505 3 forbids) it is ignored so that the real ones are still tried. */
            if (h[0] == '\0' || strcmp(h, ".") == 0)
                continue;
            sorted[n++] = (struct mx_sort){r->rrs[i].preference, i, h};
        }
        if (n == 0) {
            free(sorted);
            res->status = DNS_MX_NULL;
            res->detail = "null MX: the domain accepts no mail (RFC 7505)";
            res->ttl = d->ttl_known ? d->ttl : 0;
            return;
        }
        qsort(sorted, n, sizeof *sorted, mx_cmp);
    } else {
        d->implicit = true; /* RFC 5321 5.1: no MX, the domain is its own host */
        n = 1;
    }
    res->hosts = calloc(n, sizeof *res->hosts);
    if (!res->hosts)
        goto enomem;
    for (size_t i = 0; i < n; i++) {
        const char *h = sorted ? sorted[i].host : res->domain;
        res->hosts[i].preference = sorted ? sorted[i].pref : 0;
        res->hosts[i].host = strdup(h);
        if (!res->hosts[i].host) {
            for (size_t j = 0; j < i; j++)
                free(res->hosts[j].host);
            free(res->hosts);
            res->hosts = NULL;
            goto enomem;
        }
        strip_dot(res->hosts[i].host);
    }
    res->n_hosts = n;
    free(sorted);
    sorted = NULL;
    d->hosts_left = n;
    for (size_t i = 0; i < n; i++)
        mx_want_host(ctx, d->index, i);
    return;
enomem:
    free(sorted);
    ctx->enomem = true;
    res->status = DNS_MX_TEMPERROR;
    res->cause = DNS_ERROR;
    res->detail = "out of memory";
}

void dns_mx_result_clear(struct dns_mx_result *r)
{
    if (!r)
        return;
    for (size_t h = 0; h < r->n_hosts; h++) {
        for (size_t a = 0; a < r->hosts[h].n_addresses; a++)
            free(r->hosts[h].addresses[a]);
        free(r->hosts[h].addresses);
        free(r->hosts[h].host);
    }
    free(r->hosts);
    free(r->domain);
    memset(r, 0, sizeof *r);
    r->detail = "";
}

ipw_status dns_mx_resolve(struct dns *dns, const char *const *domains, size_t n,
                          struct dns_mx_result *results, struct err *e)
{
    struct mx_ctx ctx = {.dns = dns, .results = results};
    ipw_status st = IPW_OK;

    for (size_t i = 0; i < n; i++) {
        memset(&results[i], 0, sizeof results[i]);
        results[i].status = DNS_MX_TEMPERROR;
        results[i].cause = DNS_CANCELLED;
        results[i].detail = "not resolved";
    }
    if (n == 0)
        return IPW_OK;
    ctx.doms = calloc(n, sizeof *ctx.doms);
    if (!ctx.doms) {
        st = err_set(e, IPW_ENOMEM, "out of memory resolving %zu domains", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        ctx.doms[i].ctx = &ctx;
        ctx.doms[i].index = i;
        results[i].domain = strdup(domains[i] ? domains[i] : "");
        if (!results[i].domain) {
            st = err_set(e, IPW_ENOMEM, "out of memory resolving %zu domains", n);
            goto done;
        }
        /* A domain that is not a valid name cannot exist; it is refused in dns_submit and
         * arrives in mx_on_mx as such. */
        if (dns_submit(dns, results[i].domain, DNS_T_MX, mx_on_mx, &ctx.doms[i]) != IPW_OK) {
            st = err_set(e, IPW_ENOMEM, "out of memory resolving %zu domains", n);
            goto done;
        }
    }
    st = dns_run(dns, -1, e);
    if (st == IPW_OK && ctx.enomem)
        st = err_set(e, IPW_ENOMEM, "out of memory resolving %zu domains", n);
done:
    if (st != IPW_OK) {
        /* Queries still pending point into ctx, which goes now. */
        dns_detach(dns, mx_on_mx, NULL);
        dns_detach(dns, mx_on_a, NULL);
        dns_detach(dns, mx_on_aaaa, NULL);
    }
    intptr_t v;
    for (size_t pos = 0; strmap_next(&ctx.hosts, &pos, NULL, &v);) {
        struct mx_entry *en = (struct mx_entry *)v;
        dns_result_clear(&en->a);
        dns_result_clear(&en->aaaa);
        free(en->waiters);
        free(en);
    }
    strmap_free(&ctx.hosts);
    free(ctx.doms);
    return st;
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
