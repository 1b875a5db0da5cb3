/*
 * fuzz_dns: dns_parse(), the reading of raw DNS answer messages (RFC 1035 4.1: header,
 * question, resource records, compressed names; RFC 3596 AAAA; RFC 2308 negative TTLs from
 * the SOA), on arbitrary bytes as a hostile or broken server could send them.
 *
 * The first input byte picks the question type, the rest is the message; the question name is
 * fixed ("example.com"), since a real answer is matched to the question the client asked.
 * Checks what dns.h promises: a status in range, records only with DNS_OK and then at least
 * one, every record of the asked type with its data set, len == strlen(data) except TXT, and
 * A/AAAA text that is an address of the family.
 */
#include <arpa/inet.h>
#include <string.h>

#include "ipwarm/dns.h"

#include "fuzz.h"

static const enum dns_type qtypes[] = {DNS_T_A,   DNS_T_AAAA, DNS_T_MX,    DNS_T_TXT,
                                       DNS_T_PTR, DNS_T_NS,   DNS_T_CNAME, DNS_T_SOA};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum dns_type qtype = qtypes[data[0] % (sizeof qtypes / sizeof qtypes[0])];
    struct dns_result r;
    memset(&r, 0, sizeof r);
    if (dns_parse(data + 1, size - 1, "example.com", qtype, &r) != IPW_OK) {
        dns_result_clear(&r);
        return 0;
    }
    FUZZ_CHECK(r.status >= DNS_OK && r.status <= DNS_CANCELLED);
    FUZZ_CHECK(strcmp(dns_status_name(r.status), "") != 0);
    if (r.status == DNS_OK)
        FUZZ_CHECK(r.n_rrs > 0 && r.rrs != NULL);
    else
        FUZZ_CHECK(r.n_rrs == 0);
    if (r.status == DNS_ERROR)
        FUZZ_CHECK(r.detail != NULL);
    for (size_t i = 0; i < r.n_rrs; i++) {
        const struct dns_rr *rr = &r.rrs[i];
        FUZZ_CHECK(rr->type == qtype);
        FUZZ_CHECK(rr->data != NULL);
        /* Names and addresses are text; TXT may hold NUL bytes; other types (SOA) are kept as
         * raw rdata of len bytes, which dns.c NUL-terminates. */
        if (rr->type == DNS_T_A || rr->type == DNS_T_AAAA || rr->type == DNS_T_MX ||
            rr->type == DNS_T_PTR || rr->type == DNS_T_CNAME || rr->type == DNS_T_NS)
            FUZZ_CHECK(rr->len == strlen(rr->data));
        else
            FUZZ_CHECK(rr->data[rr->len] == '\0');
        unsigned char bin[16];
        if (rr->type == DNS_T_A)
            FUZZ_CHECK(inet_pton(AF_INET, rr->data, bin) == 1 && memcmp(bin, rr->addr, 4) == 0);
        if (rr->type == DNS_T_AAAA)
            FUZZ_CHECK(inet_pton(AF_INET6, rr->data, bin) == 1 && memcmp(bin, rr->addr, 16) == 0);
        if (rr->type == DNS_T_MX || rr->type == DNS_T_PTR || rr->type == DNS_T_CNAME ||
            rr->type == DNS_T_NS)
            /* no trailing dot: a final '.' is only a dot inside a label, escaped "\." */
            FUZZ_CHECK(rr->len == 0 || rr->data[rr->len - 1] != '.' ||
                       (rr->len >= 2 && rr->data[rr->len - 2] == '\\'));
    }
    /* Moving leaves the source empty and clearing twice is harmless. */
    struct dns_result moved;
    memset(&moved, 0, sizeof moved);
    dns_result_move(&moved, &r);
    FUZZ_CHECK(r.n_rrs == 0 && r.rrs == NULL);
    dns_result_clear(&r);
    dns_result_clear(&moved);
    dns_result_clear(&moved);
    return 0;
}
