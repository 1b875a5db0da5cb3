/*
 * dmarc: the DMARC policy record (RFC 7489 6.3, 6.4), its discovery at _dmarc.<domain> and at
 * the organisational domain's (6.6.3), and identifier alignment (3.1). The record uses DKIM's
 * tag=value syntax (RFC 6376 3.2), read with dkim_tag. The organisational domain is the last
 * two labels, without the Public Suffix List: under a public suffix of two labels ("co.uk")
 * two different organisations look aligned to this check, which receivers would not accept.
 */
#include "ipwarm/dmarc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/chars.h"
#include "ipwarm/dkim.h"

const char *dmarc_org_domain(const char *name)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    int dots = 0;
    for (size_t i = n; i-- > 0;) {
        if (name[i] == '.' && ++dots == 2)
            return name + i + 1;
    }
    return name;
}

bool dmarc_parse(const char *txt, struct dmarc_record *out, const char **why)
{
    memset(out, 0, sizeof *out);
    const char *dummy;
    if (!why)
        why = &dummy;
    /* RFC 7489 6.4: "v=DMARC1" must come first. */
    const char *s = txt;
    while (*s == ' ' || *s == '\t')
        s++;
    if (strncmp(s, "v", 1) != 0) {
        *why = "the record does not start with v=DMARC1";
        return false;
    }
    const char *semi = strchr(s, ';');
    char first[32];
    size_t fl = semi ? (size_t)(semi - s) : strlen(s);
    if (fl >= sizeof first) {
        *why = "the record does not start with v=DMARC1";
        return false;
    }
    memcpy(first, s, fl);
    first[fl] = '\0';
    char v[16];
    if (!dkim_tag(first, "v", v, sizeof v) || strcmp(v, "DMARC1") != 0) {
        *why = "the record does not start with v=DMARC1";
        return false;
    }
    char val[64];
    if (!dkim_tag(txt, "p", val, sizeof val)) {
        *why = "the record has no p= policy";
        return false;
    }
    if (strcasecmp(val, "none") && strcasecmp(val, "quarantine") && strcasecmp(val, "reject")) {
        *why = "p= is not none, quarantine or reject";
        return false;
    }
    for (size_t i = 0; val[i] && i + 1 < sizeof out->policy; i++)
        out->policy[i] = (char)chars_lower((unsigned char)val[i]);
    const char *tags[] = {"adkim", "aspf"};
    bool *strict[] = {&out->adkim_strict, &out->aspf_strict};
    for (int t = 0; t < 2; t++) {
        if (!dkim_tag(txt, tags[t], val, sizeof val))
            continue;
        if (strcasecmp(val, "s") == 0)
            *strict[t] = true;
        else if (strcasecmp(val, "r") != 0) {
            *why = t == 0 ? "adkim= is not r or s" : "aspf= is not r or s";
            return false;
        }
    }
    *why = NULL;
    return true;
}

bool dmarc_aligned(const char *id, const char *from, bool strict)
{
    if (strict)
        return dns_name_equal(id, from);
    return dns_name_equal(dmarc_org_domain(id), dmarc_org_domain(from));
}

ipw_status dmarc_lookup(struct dns *dns, const char *domain, enum dns_status *st, size_t *count,
                        char **rec, struct err *e)
{
    char name[300];
    snprintf(name, sizeof name, "_dmarc.%s", domain);
    struct dns_result txt;
    ipw_status s = dns_query(dns, name, DNS_T_TXT, &txt, e);
    if (s != IPW_OK)
        return s;
    *st = txt.status;
    *count = 0;
    *rec = NULL;
    for (size_t i = 0; txt.status == DNS_OK && i < txt.n_rrs; i++) {
        const char *d = txt.rrs[i].data;
        while (*d == ' ')
            d++;
        if (strncasecmp(d, "v=DMARC1", 8) != 0 && strncasecmp(d, "v = DMARC1", 10) != 0)
            continue; /* RFC 7489 6.6.3: records that do not start so are discarded */
        if ((*count)++ == 0 && !(*rec = strdup(txt.rrs[i].data))) {
            dns_result_clear(&txt);
            return err_set(e, IPW_ENOMEM, "dmarc: out of memory");
        }
    }
    if (*st == DNS_OK && *count == 0)
        *st = DNS_NODATA;
    dns_result_clear(&txt);
    return IPW_OK;
}
