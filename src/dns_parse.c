/*
 * dns_parse: the reading of raw DNS answer messages (dns_parse in dns.h), the code the fuzzer
 * targets (tests/fuzz/fuzz_dns.c).
 *
 * Answers are read as RFC 1035 section 4 lays them out: header, question, answer, authority.
 * The rcode and the records tell NXDOMAIN (rcode 3) from NODATA (rcode 0 without records of
 * the type), whose negative TTL is min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5); a TTL with
 * the top bit set counts as zero (RFC 2181 section 8).
 */
#include "ipwarm/dns.h"
#include "dns_internal.h"

#include <arpa/inet.h>
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static uint16_t dns_parse_rd16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t dns_parse_rd32(const unsigned char *p)
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
static bool dns_parse_name_has_nul(const unsigned char *buf, size_t len, size_t off)
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
static size_t dns_parse_expand_at(const unsigned char *buf, size_t len, size_t off, char **out)
{
    long enclen = 0;
    *out = NULL;
    if (off >= len)
        return 0;
    if (ares_expand_name(buf + off, buf, (int)len, out, &enclen) != ARES_SUCCESS || enclen <= 0 ||
        dns_parse_name_has_nul(buf, len, off)) {
        if (*out)
            ares_free_string(*out);
        *out = NULL;
        return 0;
    }
    return (size_t)enclen;
}

/* Like dns_parse_expand_at, into a malloc'd string; 0 also on ENOMEM (with *enomem set). */
static size_t dns_parse_expand_dup(const unsigned char *buf, size_t len, size_t off, char **out,
                                   bool *enomem)
{
    char *s;
    size_t n = dns_parse_expand_at(buf, len, off, &s);
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
static bool dns_parse_read_rr(const unsigned char *buf, size_t len, size_t *off, struct raw_rr *rr,
                              bool want_owner, bool *enomem)
{
    size_t n;
    memset(rr, 0, sizeof *rr);
    if (want_owner)
        n = dns_parse_expand_dup(buf, len, *off, &rr->owner, enomem);
    else {
        char *s;
        n = dns_parse_expand_at(buf, len, *off, &s);
        if (s)
            ares_free_string(s);
    }
    if (!n || *off + n + 10 > len)
        return false;
    const unsigned char *p = buf + *off + n;
    rr->type = dns_parse_rd16(p);
    rr->klass = dns_parse_rd16(p + 2);
    rr->ttl = dns_parse_rd32(p + 4);
    if (rr->ttl & 0x80000000u)
        rr->ttl = 0; /* RFC 2181 8: a TTL with the top bit set is read as zero */
    rr->rdlen = dns_parse_rd16(p + 8);
    rr->rdoff = *off + n + 10;
    if (rr->rdoff + rr->rdlen > len)
        return false;
    *off = rr->rdoff + rr->rdlen;
    return true;
}

/* Decodes the rdata of rr into out; false when it is malformed. */
static bool dns_parse_decode_rdata(const unsigned char *buf, size_t len, const struct raw_rr *rr,
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
        out->preference = dns_parse_rd16(rd);
        n = dns_parse_expand_dup(buf, len, rr->rdoff + 2, &out->data, enomem);
        if (!n || n > rr->rdlen - 2)
            return false;
        break;
    case DNS_T_PTR:
    case DNS_T_CNAME:
    case DNS_T_NS:
        n = dns_parse_expand_dup(buf, len, rr->rdoff, &out->data, enomem);
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

static void dns_parse_set_error(struct dns_result *out, const char *detail)
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
        dns_parse_set_error(out, "an answer of impossible length");
        return IPW_OK;
    }
    if (!(buf[2] & 0x80)) {
        dns_parse_set_error(out, "a message that is not an answer");
        return IPW_OK;
    }
    out->rcode = buf[3] & 0x0f;
    if (buf[2] & 0x02) {
        /* TC: the server cut the answer short. c-ares asks again over TCP when a UDP answer is
         * truncated, so one that still arrives here (over TCP) is incomplete: its missing
         * records must not read as NODATA ("no MX" would suppress the domain's recipients).
         * Found by tests/cli/test_faults_dns.sh. */
        dns_parse_set_error(out, "a truncated answer (TC set) even over TCP");
        return IPW_OK;
    }
    size_t qd = dns_parse_rd16(buf + 4), an = dns_parse_rd16(buf + 6), ns = dns_parse_rd16(buf + 8);

    for (size_t i = 0; i < qd; i++) {
        char *s;
        size_t n = dns_parse_expand_at(buf, len, off, &s);
        if (s)
            ares_free_string(s);
        if (!n || off + n + 4 > len) {
            dns_parse_set_error(out, "a malformed question section");
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
        if (!dns_parse_read_rr(buf, len, &off, &ans[n_ans], true, &enomem)) {
            free(ans[n_ans].owner);
            if (enomem) {
                st = IPW_ENOMEM;
                goto done;
            }
            dns_parse_set_error(out, "a malformed answer section");
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
        dns_parse_set_error(out, "an unexpected rcode");
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
    dns_strip_dot(cur);
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
            if (!dns_parse_decode_rdata(buf, len, &ans[i], &target, &enomem)) {
                free(target.data);
                if (enomem) {
                    st = IPW_ENOMEM;
                    goto done;
                }
                dns_parse_set_error(out, "a malformed CNAME record");
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
                if (!dns_parse_decode_rdata(buf, len, &ans[i], rr, &enomem)) {
                    if (enomem) {
                        st = IPW_ENOMEM;
                        goto done;
                    }
                    dns_parse_set_error(out, "a malformed record");
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
        if (!dns_parse_read_rr(buf, len, &off, &rr, false, &enomem))
            break; /* a broken authority section costs only the negative TTL */
        if (rr.type != DNS_T_SOA)
            continue;
        char *s;
        size_t m1 = dns_parse_expand_at(buf, len, rr.rdoff, &s);
        if (s)
            ares_free_string(s);
        if (!m1)
            break;
        size_t m2 = dns_parse_expand_at(buf, len, rr.rdoff + m1, &s);
        if (s)
            ares_free_string(s);
        if (!m2 || m1 + m2 + 20 > rr.rdlen)
            break;
        uint32_t minimum = dns_parse_rd32(buf + rr.rdoff + m1 + m2 + 16);
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
