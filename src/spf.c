/*
 * spf: spf_check_host() of RFC 7208, the Sender Policy Framework. The sender's domain publishes one
 * TXT record "v=spf1 ..." (section 4.5; the SPF RR type 99 is never asked, 3.1); its terms
 * are parsed in full before any is evaluated, so that a syntax error anywhere is a permerror
 * (4.6), then the mechanisms (section 5: all, include, a, mx, ptr, ip4, ip6, exists) are
 * tried left to right until one matches, and only then the redirect= modifier (6.1). Domain
 * specifications and explanations are expanded with the macros of section 7. A fail carries
 * the explanation of exp= (6.2), looked up once after the result is known, so that it never
 * counts against the limits of 4.6.4: 10 DNS-querying terms, 2 void lookups, 10 MX or PTR
 * names. IPv4-mapped IPv6 clients are IPv4 clients (section 5, "ip6").
 *
 * Where RFC 7208 leaves a choice, this file follows the OpenSPF conformance suite: a target
 * name that cannot be asked in DNS (an empty or over-long label after expansion) matches
 * nothing; %{i} of an IPv6 client is its 32 nibbles upper-case (DNS compares names without
 * case); an MX name list longer than 10 is a permerror and a PTR list is cut at 10.
 */
#include "ipwarm/spf.h"

#include "ipwarm/buf.h"
#include "ipwarm/chars.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/clock.h"

const char *spf_result_name(enum spf_outcome r)
{
    switch (r) {
    case SPF_NONE:
        return "none";
    case SPF_NEUTRAL:
        return "neutral";
    case SPF_PASS:
        return "pass";
    case SPF_FAIL:
        return "fail";
    case SPF_SOFTFAIL:
        return "softfail";
    case SPF_TEMPERROR:
        return "temperror";
    case SPF_PERMERROR:
        return "permerror";
    }
    return "unknown";
}

/* ---- evaluation state ---- */

struct spf_eval {
    struct dns *dns;
    struct err *e;
    const struct spf_options *opt;
    int family;             /* AF_INET (IPv4-mapped included) or AF_INET6 */
    unsigned char ip[16];   /* 4 bytes for AF_INET */
    char ip_text[48];       /* %{c}: dotted quad or RFC 5952 text */
    char ip_dotted[80];     /* %{i}: dotted quad or 32 dotted nibbles */
    char reverse_name[80];  /* the PTR name: in-addr.arpa or ip6.arpa */
    const char *sender;     /* %{s}: local@domain */
    const char *local;      /* %{l} */
    const char *sender_dom; /* %{o} */
    const char *helo;       /* %{h} */
    int lookups, voids;
    ipw_status fatal; /* IPW_ENOMEM once memory ran out; the evaluation then stops */
};

/* What one spf_check_host() level decided. */
struct spf_level {
    enum spf_outcome result;
    char why[512];    /* the sentence for results other than fail by a mechanism */
    char mech[256];   /* the deciding term, as written */
    char domain[256]; /* whose record held it */
    char *exp;        /* fail by a mechanism: the record's exp= domain-spec, else NULL */
    char exp_domain[256];
};

static void spf_level_clear(struct spf_level *l)
{
    free(l->exp);
    l->exp = NULL;
}

/* Sets an error result with its sentence; returns the result. */
__attribute__((format(printf, 3, 4))) static enum spf_outcome
level_set(struct spf_level *l, enum spf_outcome r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->why, sizeof l->why, fmt, ap);
    va_end(ap);
    l->result = r;
    return r;
}

static void spf_copy_n(char *dst, size_t size, const char *src, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- names ---- */

/* True when name can be asked in DNS: labels of 1 to 63 octets, 253 in all, no trailing dot. */
static bool spf_query_name_ok(const char *name)
{
    size_t n = strlen(name), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || name[i] == '.') {
            if (label == 0 || label > 63)
                return false;
            label = 0;
        } else {
            label++;
        }
    }
    return true;
}

/* RFC 7208 4.3: the domain to check must be a multi-label domain name (not a literal). */
static bool spf_initial_domain_ok(const char *d)
{
    return d[0] != '[' && strchr(d, '.') && spf_query_name_ok(d);
}

/* True when name is sfx or ends with "." sfx, without case. */
static bool spf_name_within(const char *name, const char *sfx)
{
    size_t n = strlen(name), s = strlen(sfx);
    if (n == s)
        return strcasecmp(name, sfx) == 0;
    return n > s && name[n - s - 1] == '.' && strcasecmp(name + n - s, sfx) == 0;
}

/* RFC 7208 7.3 after expansion for a DNS query: a trailing dot goes, and a name over 253
 * octets loses labels from the left until it fits. Works in place. */
static void spf_domain_finish(char *s)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        s[--n] = '\0';
    while (n > 253) {
        char *dot = strchr(s, '.');
        if (!dot) {
            break; /* one over-long label: spf_query_name_ok refuses it */
        }
        memmove(s, dot + 1, strlen(dot + 1) + 1);
        n = strlen(s);
    }
}

/* ---- macros (RFC 7208 section 7) ---- */

enum macro_ctx {
    MACRO_DOMAIN,  /* domain-spec: letters s l o d i p v h */
    MACRO_ANY,     /* unknown-modifier values: every macro letter */
    MACRO_EXPLAIN, /* explanation text: every letter, and spaces */
};

static bool spf_macro_letter_ok(char c, enum macro_ctx ctx)
{
    c = (char)chars_lower((unsigned char)c);
    if (strchr("slodipvh", c))
        return true;
    return ctx != MACRO_DOMAIN && strchr("crt", c);
}

static bool spf_is_delimiter(char c)
{
    return c && strchr(".-+,/_=", c);
}

/*
 * Checks the macro-string syntax of s[0..len). *ends_macro (may be NULL) tells whether the
 * last token is a macro-expand, which RFC 7208 7.1 accepts as a domain-end.
 */
static bool spf_macro_syntax_ok(const char *s, size_t len, enum macro_ctx ctx, bool *ends_macro)
{
    bool last_macro = false;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c != '%') {
            if (!((c >= 0x21 && c <= 0x7e) || (c == ' ' && ctx == MACRO_EXPLAIN)))
                return false;
            last_macro = false;
            i++;
            continue;
        }
        if (i + 1 >= len)
            return false;
        char n = s[i + 1];
        if (n == '%' || n == '_' || n == '-') {
            last_macro = true;
            i += 2;
            continue;
        }
        if (n != '{' || i + 2 >= len || !spf_macro_letter_ok(s[i + 2], ctx))
            return false;
        size_t j = i + 3;
        if (j < len && s[j] == '0')
            return false; /* "If a DIGIT is specified, the value MUST be nonzero" */
        while (j < len && chars_is_digit((unsigned char)s[j]))
            j++;
        if (j < len && (s[j] == 'r' || s[j] == 'R'))
            j++;
        while (j < len && spf_is_delimiter(s[j]))
            j++;
        if (j >= len || s[j] != '}')
            return false;
        last_macro = true;
        i = j + 1;
    }
    if (ends_macro)
        *ends_macro = last_macro;
    return true;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool spf_toplabel_ok(const char *s, size_t n)
{
    bool alpha = false, dash = false;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (chars_is_alpha(c))
            alpha = true;
        else if (c == '-')
            dash = true;
        else if (!chars_is_digit(c))
            return false;
    }
    if (dash)
        return s[0] != '-' && s[n - 1] != '-';
    return alpha;
}

/* domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static bool spf_domain_spec_ok(const char *s, size_t len)
{
    bool ends_macro = false;
    if (len == 0 || !spf_macro_syntax_ok(s, len, MACRO_DOMAIN, &ends_macro))
        return false;
    if (ends_macro)
        return true;
    size_t n = len;
    if (s[n - 1] == '.')
        n--;
    size_t dot = n;
    while (dot > 0 && s[dot - 1] != '.')
        dot--;
    if (dot == 0)
        return false; /* no "." before the top label */
    return spf_toplabel_ok(s + dot, n - dot);
}

/* %{p}: a validated name of the client IP, preferring domain itself, then a subdomain of it
 * (RFC 7208 7.3); "unknown" when none. Its lookups count against no limit. */
static void spf_macro_p(struct spf_eval *ev, const char *domain, struct buf *out);

/* Appends value transformed per RFC 7208 7.3: split on delims (default "."), reversed if
 * asked, the rightmost keep parts (0: all), joined with "."; URL-escaped for upper case. */
static void spf_macro_transform(struct buf *out, const char *value, long keep, bool reverse,
                                const char *delims, size_t n_delims, bool escape)
{
    const char *parts[256];
    size_t lens[256], n = 0;
    const char *p = value;
    for (;;) {
        const char *q = p;
        while (*q && !(n_delims ? memchr(delims, *q, n_delims) != NULL : *q == '.'))
            q++;
        if (n < 256) {
            parts[n] = p;
            lens[n] = (size_t)(q - p);
            n++;
        }
        if (!*q)
            break;
        p = q + 1;
    }
    if (reverse) {
        for (size_t i = 0; i < n / 2; i++) {
            const char *tp = parts[i];
            size_t tl = lens[i];
            parts[i] = parts[n - 1 - i];
            lens[i] = lens[n - 1 - i];
            parts[n - 1 - i] = tp;
            lens[n - 1 - i] = tl;
        }
    }
    size_t first = keep > 0 && (size_t)keep < n ? n - (size_t)keep : 0;
    struct buf joined = {0};
    for (size_t i = first; i < n; i++) {
        if (i > first)
            buf_put(&joined, ".", 1);
        buf_put(&joined, parts[i], lens[i]);
    }
    if (joined.oom) {
        out->oom = true;
    } else if (!escape) {
        buf_put(out, joined.p ? joined.p : "", joined.len);
    } else {
        /* RFC 3986 unreserved characters stay; every other octet becomes %XX. */
        for (size_t i = 0; i < joined.len; i++) {
            unsigned char c = (unsigned char)joined.p[i];
            if (chars_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
                buf_put(out, (const char *)&c, 1);
            } else {
                char hex[4];
                snprintf(hex, sizeof hex, "%%%02X", c);
                buf_put(out, hex, 3);
            }
        }
    }
    buf_free(&joined);
}

/* Expands s[0..len), whose syntax was checked for ctx, with domain as %{d}. Returns false
 * only when memory ran out (ev->fatal is then set). */
static bool spf_macro_expand(struct spf_eval *ev, const char *s, size_t len, const char *domain,
                             struct buf *out)
{
    for (size_t i = 0; i < len;) {
        if (s[i] != '%') {
            size_t j = i;
            while (j < len && s[j] != '%')
                j++;
            buf_put(out, s + i, j - i);
            i = j;
            continue;
        }
        char n = s[i + 1];
        if (n == '%' || n == '_' || n == '-') {
            buf_put(out, n == '%' ? "%" : n == '_' ? " " : "%20", n == '-' ? 3 : 1);
            i += 2;
            continue;
        }
        char letter = s[i + 2];
        size_t j = i + 3;
        long keep = 0;
        while (chars_is_digit((unsigned char)s[j])) {
            if (keep < 1000)
                keep = keep * 10 + (s[j] - '0');
            j++;
        }
        bool reverse = false;
        if (s[j] == 'r' || s[j] == 'R') {
            reverse = true;
            j++;
        }
        const char *delims = s + j;
        while (s[j] != '}')
            j++;
        size_t n_delims = (size_t)(s + j - delims);
        i = j + 1;

        char tbuf[32];
        const char *value = "";
        struct buf pv = {0};
        switch (chars_lower((unsigned char)letter)) {
        case 's':
            value = ev->sender;
            break;
        case 'l':
            value = ev->local;
            break;
        case 'o':
            value = ev->sender_dom;
            break;
        case 'd':
            value = domain;
            break;
        case 'i':
            value = ev->ip_dotted;
            break;
        case 'v':
            value = ev->family == AF_INET ? "in-addr" : "ip6";
            break;
        case 'h':
            value = ev->helo;
            break;
        case 'c':
            value = ev->ip_text;
            break;
        case 'r':
            value = ev->opt && ev->opt->receiver ? ev->opt->receiver : "unknown";
            break;
        case 't':
            snprintf(tbuf, sizeof tbuf, "%lld", (long long)(clock_now_ms() / 1000));
            value = tbuf;
            break;
        case 'p':
            spf_macro_p(ev, domain, &pv);
            if (pv.oom) {
                buf_free(&pv);
                out->oom = true;
                break;
            }
            value = pv.p ? pv.p : "unknown";
            break;
        }
        spf_macro_transform(out, value, keep, reverse, delims, n_delims,
                            chars_is_upper((unsigned char)letter) != 0);
        buf_free(&pv);
    }
    if (out->oom) {
        ev->fatal = err_set(ev->e, IPW_ENOMEM, "spf: out of memory expanding a macro");
        return false;
    }
    if (!out->p)
        buf_put(out, "", 0);
    if (out->oom) {
        ev->fatal = err_set(ev->e, IPW_ENOMEM, "spf: out of memory expanding a macro");
        return false;
    }
    return true;
}

/* ---- DNS ---- */

static bool spf_status_temporary(enum dns_status s)
{
    return s != DNS_OK && s != DNS_NXDOMAIN && s != DNS_NODATA;
}

/* One query. Returns false when memory ran out (ev->fatal set); any other failure to ask is
 * reported in r->status as a temporary error. */
static bool spf_query(struct spf_eval *ev, const char *name, enum dns_type type,
                      struct dns_result *r)
{
    memset(r, 0, sizeof *r);
    ipw_status st = dns_query(ev->dns, name, type, r, ev->e);
    if (st == IPW_ENOMEM) {
        ev->fatal = IPW_ENOMEM;
        return false;
    }
    if (st != IPW_OK) {
        dns_result_clear(r);
        memset(r, 0, sizeof *r);
        r->status = DNS_ERROR;
    }
    return true;
}

static bool spf_addr_in(const unsigned char *a, const unsigned char *net, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (net[whole] & mask);
}

/* True when one of r's A/AAAA records is within cidr bits of the client. */
static bool spf_rrs_match(const struct spf_eval *ev, const struct dns_result *r, int cidr)
{
    for (size_t i = 0; i < r->n_rrs; i++)
        if (spf_addr_in(ev->ip, r->rrs[i].addr, cidr))
            return true;
    return false;
}

static enum dns_type spf_addr_type(const struct spf_eval *ev)
{
    return ev->family == AF_INET ? DNS_T_A : DNS_T_AAAA;
}

/* The names of the client's PTR records whose addresses include it (RFC 7208 5.5), at most
 * SPF_MAX_NAMES of the PTR names examined. Returns how many were stored in names (each
 * malloc'ed), -1 after a PTR lookup failure or none found, -2 when memory ran out. *ptr_status
 * (may be NULL) gets the PTR lookup's status. */
static int spf_validated_names(struct spf_eval *ev, char **names, enum dns_status *ptr_status)
{
    struct dns_result ptr;
    int n = 0;
    if (!spf_query(ev, ev->reverse_name, DNS_T_PTR, &ptr))
        return -2;
    if (ptr_status)
        *ptr_status = ptr.status;
    if (ptr.status != DNS_OK) {
        dns_result_clear(&ptr);
        return -1;
    }
    for (size_t i = 0; i < ptr.n_rrs && i < SPF_MAX_NAMES; i++) {
        const char *name = ptr.rrs[i].data;
        struct dns_result a;
        if (!spf_query_name_ok(name))
            continue;
        if (!spf_query(ev, name, spf_addr_type(ev), &a)) {
            n = -2;
            break;
        }
        /* "If a DNS error occurs while doing an A RR lookup, then that domain name is
         * skipped and the search continues." */
        bool ok = a.status == DNS_OK && spf_rrs_match(ev, &a, ev->family == AF_INET ? 32 : 128);
        dns_result_clear(&a);
        if (ok) {
            if (!(names[n] = strdup(name))) {
                ev->fatal = err_set(ev->e, IPW_ENOMEM, "spf: out of memory");
                n = -2;
                break;
            }
            n++;
        }
    }
    dns_result_clear(&ptr);
    if (n == -2)
        return -2;
    return n;
}

static void spf_free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
}

static void spf_macro_p(struct spf_eval *ev, const char *domain, struct buf *out)
{
    char *names[SPF_MAX_NAMES];
    int n = spf_validated_names(ev, names, NULL);
    if (n == -2) {
        out->oom = true;
        return;
    }
    const char *best = NULL;
    for (int i = 0; i < n && !best; i++)
        if (strcasecmp(names[i], domain) == 0)
            best = names[i];
    for (int i = 0; i < n && !best; i++)
        if (spf_name_within(names[i], domain))
            best = names[i];
    if (!best && n > 0)
        best = names[0];
    buf_put(out, best ? best : "unknown", strlen(best ? best : "unknown"));
    spf_free_names(names, n > 0 ? n : 0);
}

/* ---- records ---- */

enum mech_kind { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

struct spf_term {
    enum mech_kind kind;
    char qualifier;   /* '+', '-', '~', '?' */
    const char *text; /* the term as written */
    size_t text_len;
    const char *spec; /* domain-spec, or NULL for the current domain */
    size_t spec_len;
    int cidr4, cidr6;
    unsigned char net[16];
};

struct spf_record {
    char *text; /* the record, NUL-terminated; terms point into it */
    struct spf_term *terms;
    size_t n_terms;
    const char *redirect, *exp;
    size_t redirect_len, exp_len;
};

static void spf_record_free(struct spf_record *r)
{
    free(r->text);
    free(r->terms);
    memset(r, 0, sizeof *r);
}

/* A CIDR length: 1*DIGIT without a leading zero, at most max. Returns -1 when invalid. */
static int spf_parse_cidr(const char *s, size_t n, int max)
{
    int v = 0;
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!chars_is_digit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

/* ip4-network: four qnum without leading zeros (RFC 7208 5.6). */
static bool spf_parse_ip4(const char *s, size_t n, unsigned char *out)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        int v = 0;
        while (i < n && chars_is_digit((unsigned char)s[i]) && i - start < 3)
            v = v * 10 + (s[i++] - '0');
        if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
            return false;
        out[part] = (unsigned char)v;
        if (part < 3) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == n;
}

static bool spf_mech_named(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Strips a dual-cidr-length ("/N", "//N", "/N//N") from the end of s[0..*n). Returns false
 * for a CIDR length out of range or with a leading zero. */
static bool spf_strip_dual_cidr(const char *s, size_t *n, int *c4, int *c6)
{
    size_t end = *n, d = end;
    *c4 = 32;
    *c6 = 128;
    while (d > 0 && chars_is_digit((unsigned char)s[d - 1]))
        d--;
    if (d < end && d >= 2 && s[d - 1] == '/' && s[d - 2] == '/') {
        if ((*c6 = spf_parse_cidr(s + d, end - d, 128)) < 0)
            return false;
        end = d - 2;
        d = end;
        while (d > 0 && chars_is_digit((unsigned char)s[d - 1]))
            d--;
    }
    if (d < end && d >= 1 && s[d - 1] == '/' && !(d >= 2 && s[d - 2] == '/')) {
        if ((*c4 = spf_parse_cidr(s + d, end - d, 32)) < 0)
            return false;
        end = d - 1;
    }
    *n = end;
    return true;
}

/*
 * Parses one term s[0..n) into rec. Returns true, or false with a sentence in why saying what
 * is wrong (a permerror; "out of memory" when it ran out).
 */
static bool spf_parse_term(struct spf_record *rec, const char *s, size_t n, char *why,
                           size_t why_size)
{
    size_t i = 0;
    char qualifier = '+';
    bool has_q = false;
    if (n > 0 && strchr("+-~?", s[0])) {
        qualifier = s[0];
        has_q = true;
        i = 1;
    }
    size_t name_start = i;
    while (i < n &&
           (chars_is_alnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
        i++;
    const char *name = s + name_start;
    size_t name_len = i - name_start;

    if (!has_q && i < n && s[i] == '=') {
        /* modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
        const char *val = s + i + 1;
        size_t val_len = n - i - 1;
        if (name_len == 0 || !chars_is_alpha((unsigned char)name[0])) {
            snprintf(why, why_size, "'%.*s' is not a valid modifier", (int)n, s);
            return false;
        }
        bool is_redirect = spf_mech_named(name, name_len, "redirect");
        bool is_exp = spf_mech_named(name, name_len, "exp");
        if (is_redirect || is_exp) {
            if ((is_redirect && rec->redirect) || (is_exp && rec->exp)) {
                snprintf(why, why_size, "%s= appears more than once", is_exp ? "exp" : "redirect");
                return false;
            }
            if (!spf_domain_spec_ok(val, val_len)) {
                snprintf(why, why_size, "'%.*s' is not a valid domain-spec", (int)n, s);
                return false;
            }
            if (is_redirect) {
                rec->redirect = val;
                rec->redirect_len = val_len;
            } else {
                rec->exp = val;
                rec->exp_len = val_len;
            }
        } else if (!spf_macro_syntax_ok(val, val_len, MACRO_ANY, NULL)) {
            snprintf(why, why_size, "modifier '%.*s' has a bad macro", (int)n, s);
            return false;
        }
        return true;
    }

    struct spf_term t = {
        .qualifier = qualifier, .text = s, .text_len = n, .cidr4 = 32, .cidr6 = 128};
    const char *rest = s + i;
    size_t rest_len = n - i;
    if (rest_len > 0 && rest[0] != ':' && rest[0] != '/')
        goto unknown;
    if (spf_mech_named(name, name_len, "all")) {
        t.kind = M_ALL;
        if (rest_len)
            goto bad;
    } else if (spf_mech_named(name, name_len, "include") ||
               spf_mech_named(name, name_len, "exists")) {
        t.kind = spf_mech_named(name, name_len, "include") ? M_INCLUDE : M_EXISTS;
        if (rest_len < 1 || rest[0] != ':' || !spf_domain_spec_ok(rest + 1, rest_len - 1))
            goto bad;
        t.spec = rest + 1;
        t.spec_len = rest_len - 1;
    } else if (spf_mech_named(name, name_len, "a") || spf_mech_named(name, name_len, "mx")) {
        t.kind = spf_mech_named(name, name_len, "a") ? M_A : M_MX;
        size_t len = rest_len;
        if (!spf_strip_dual_cidr(rest, &len, &t.cidr4, &t.cidr6))
            goto bad;
        if (len > 0) {
            if (rest[0] != ':' || !spf_domain_spec_ok(rest + 1, len - 1))
                goto bad;
            t.spec = rest + 1;
            t.spec_len = len - 1;
        }
    } else if (spf_mech_named(name, name_len, "ptr")) {
        t.kind = M_PTR;
        if (rest_len > 0) {
            if (rest[0] != ':' || !spf_domain_spec_ok(rest + 1, rest_len - 1))
                goto bad;
            t.spec = rest + 1;
            t.spec_len = rest_len - 1;
        }
    } else if (spf_mech_named(name, name_len, "ip4") || spf_mech_named(name, name_len, "ip6")) {
        bool v4 = spf_mech_named(name, name_len, "ip4");
        t.kind = v4 ? M_IP4 : M_IP6;
        if (rest_len < 2 || rest[0] != ':')
            goto bad;
        const char *net = rest + 1;
        size_t net_len = rest_len - 1;
        const char *slash = memchr(net, '/', net_len);
        size_t addr_len = slash ? (size_t)(slash - net) : net_len;
        if (slash) {
            int c = spf_parse_cidr(slash + 1, net_len - addr_len - 1, v4 ? 32 : 128);
            if (c < 0)
                goto bad;
            if (v4)
                t.cidr4 = c;
            else
                t.cidr6 = c;
        }
        if (v4) {
            if (!spf_parse_ip4(net, addr_len, t.net))
                goto bad;
        } else {
            char buf[64];
            if (addr_len == 0 || addr_len >= sizeof buf)
                goto bad;
            memcpy(buf, net, addr_len);
            buf[addr_len] = '\0';
            if (inet_pton(AF_INET6, buf, t.net) != 1)
                goto bad;
        }
    } else {
        goto unknown;
    }
    if (rec->n_terms % 16 == 0) {
        struct spf_term *nt = realloc(rec->terms, (rec->n_terms + 16) * sizeof *nt);
        if (!nt) {
            snprintf(why, why_size, "out of memory");
            return false;
        }
        rec->terms = nt;
    }
    rec->terms[rec->n_terms++] = t;
    return true;
bad:
    snprintf(why, why_size, "'%.*s' is not a valid %.*s mechanism", (int)n, s, (int)name_len, name);
    return false;
unknown:
    snprintf(why, why_size, "'%.*s' is neither a known mechanism nor a modifier", (int)n, s);
    return false;
}

/* Parses the record txt[0..len) (which starts with "v=spf1"). Returns true, or false with a
 * sentence in why (a permerror; ENOMEM sets ev->fatal too). */
static bool spf_parse_record(struct spf_eval *ev, const char *txt, size_t len,
                             struct spf_record *rec, char *why, size_t why_size)
{
    memset(rec, 0, sizeof *rec);
    /* Only printable US-ASCII and spaces: terms are separated by spaces alone (4.6.1), and a
     * record outside 7-bit ASCII is a permerror (3.1). */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)txt[i];
        if (c < 0x20 || c > 0x7e) {
            snprintf(why, why_size, "the record holds a %s (octet 0x%02x)",
                     c > 0x7e ? "non-ASCII character" : "control character", c);
            return false;
        }
    }
    if (!(rec->text = malloc(len + 1))) {
        ev->fatal = err_set(ev->e, IPW_ENOMEM, "spf: out of memory");
        snprintf(why, why_size, "out of memory");
        return false;
    }
    memcpy(rec->text, txt, len);
    rec->text[len] = '\0';
    for (size_t i = 6; i < len;) {
        while (i < len && rec->text[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && rec->text[i] != ' ')
            i++;
        if (i > start && !spf_parse_term(rec, rec->text + start, i - start, why, why_size)) {
            if (strcmp(why, "out of memory") == 0)
                ev->fatal = err_set(ev->e, IPW_ENOMEM, "spf: out of memory");
            spf_record_free(rec);
            return false;
        }
    }
    return true;
}

static bool spf_is_spf_record(const char *s, size_t n)
{
    return n >= 6 && strncasecmp(s, "v=spf1", 6) == 0 && (n == 6 || s[6] == ' ');
}

/* ---- spf_check_host() ---- */

static enum spf_outcome spf_check_host(struct spf_eval *ev, const char *domain, int depth,
                                       struct spf_level *out);

enum match { MATCH, NO_MATCH, MATCH_ERROR };

/* Counts one DNS-querying term; false (with a permerror in out) past the limit. */
static bool spf_count_lookup(struct spf_eval *ev, struct spf_level *out, const char *domain)
{
    if (++ev->lookups > SPF_MAX_LOOKUPS) {
        level_set(out, SPF_PERMERROR,
                  "%s: more than %d DNS-querying terms (include, a, mx, ptr, exists, redirect)",
                  domain, SPF_MAX_LOOKUPS);
        return false;
    }
    return true;
}

/* Counts a void lookup; false (with a permerror in out) past the limit. */
static bool spf_count_void(struct spf_eval *ev, struct spf_level *out, const char *domain,
                           const char *name)
{
    if (++ev->voids > SPF_MAX_VOID) {
        level_set(out, SPF_PERMERROR,
                  "%s: more than %d void lookups (the last for %s found nothing)", domain,
                  SPF_MAX_VOID, name);
        return false;
    }
    return true;
}

/* The target of a term: its domain-spec expanded, or the current domain. Returns false when
 * memory ran out. *ok tells whether the name can be asked in DNS. */
static bool spf_term_target(struct spf_eval *ev, const char *spec, size_t spec_len,
                            const char *domain, char *target, size_t size, bool *ok)
{
    if (!spec) {
        spf_copy_n(target, size, domain, strlen(domain));
        *ok = true;
        return true;
    }
    struct buf b = {0};
    if (!spf_macro_expand(ev, spec, spec_len, domain, &b)) {
        buf_free(&b);
        return false;
    }
    spf_domain_finish(b.p);
    *ok = strlen(b.p) < size && spf_query_name_ok(b.p);
    spf_copy_n(target, size, b.p, strlen(b.p));
    buf_free(&b);
    return true;
}

static enum match spf_temp_error(struct spf_level *out, const char *domain, const char *what,
                                 const char *name, const struct dns_result *r)
{
    level_set(out, SPF_TEMPERROR, "%s: the %s lookup of %s failed (%s)", domain, what, name,
              dns_status_name(r->status));
    return MATCH_ERROR;
}

static enum match spf_eval_term(struct spf_eval *ev, const struct spf_term *t, const char *domain,
                                int depth, struct spf_level *out)
{
    char target[256];
    bool ok = true;
    struct dns_result r;

    switch (t->kind) {
    case M_ALL:
        return MATCH;
    case M_IP4:
        return ev->family == AF_INET && spf_addr_in(ev->ip, t->net, t->cidr4) ? MATCH : NO_MATCH;
    case M_IP6:
        return ev->family == AF_INET6 && spf_addr_in(ev->ip, t->net, t->cidr6) ? MATCH : NO_MATCH;
    default:
        break;
    }
    if (!spf_count_lookup(ev, out, domain))
        return MATCH_ERROR;
    if (!spf_term_target(ev, t->spec, t->spec_len, domain, target, sizeof target, &ok))
        return MATCH_ERROR;

    if (t->kind == M_INCLUDE) {
        struct spf_level sub = {0};
        enum spf_outcome res =
            ok ? spf_check_host(ev, target, depth + 1, &sub)
               : level_set(&sub, SPF_NONE, "'%s' is not a valid domain name", target);
        spf_level_clear(&sub);
        if (ev->fatal)
            return MATCH_ERROR;
        switch (res) {
        case SPF_PASS:
            return MATCH;
        case SPF_FAIL:
        case SPF_SOFTFAIL:
        case SPF_NEUTRAL:
            return NO_MATCH;
        case SPF_TEMPERROR:
            level_set(out, SPF_TEMPERROR, "%s: include:%s: %s", domain, target, sub.why);
            return MATCH_ERROR;
        case SPF_NONE:
            level_set(out, SPF_PERMERROR, "%s: include:%s: %s", domain, target, sub.why);
            return MATCH_ERROR;
        case SPF_PERMERROR:
            level_set(out, SPF_PERMERROR, "%s: include:%s: %s", domain, target, sub.why);
            return MATCH_ERROR;
        }
        return MATCH_ERROR;
    }

    /* A name that cannot be asked (an empty or over-long label, perhaps from a macro) does
     * not exist: the mechanism matches nothing (RFC 7208 4.3, 4.8). */
    if (!ok)
        return NO_MATCH;

    if (t->kind == M_PTR) {
        char *names[SPF_MAX_NAMES];
        enum dns_status ps = DNS_OK;
        int n = spf_validated_names(ev, names, &ps);
        if (n == -2)
            return MATCH_ERROR;
        if (n == -1 && (ps == DNS_NXDOMAIN || ps == DNS_NODATA) &&
            !spf_count_void(ev, out, domain, ev->reverse_name))
            return MATCH_ERROR;
        /* A failed PTR lookup makes ptr match nothing (RFC 7208 5.5). */
        bool match = false;
        for (int i = 0; i < n && !match; i++)
            match = spf_name_within(names[i], target);
        spf_free_names(names, n > 0 ? n : 0);
        return match ? MATCH : NO_MATCH;
    }

    enum dns_type qtype = t->kind == M_MX       ? DNS_T_MX
                          : t->kind == M_EXISTS ? DNS_T_A
                                                : spf_addr_type(ev);
    if (!spf_query(ev, target, qtype, &r))
        return MATCH_ERROR;
    enum match m = NO_MATCH;
    if (spf_status_temporary(r.status)) {
        m = spf_temp_error(out, domain, dns_type_name(qtype), target, &r);
    } else if (r.status != DNS_OK || r.n_rrs == 0) {
        if (!spf_count_void(ev, out, domain, target))
            m = MATCH_ERROR;
    } else if (t->kind == M_EXISTS) {
        m = MATCH;
    } else if (t->kind == M_A) {
        m = spf_rrs_match(ev, &r, ev->family == AF_INET ? t->cidr4 : t->cidr6) ? MATCH : NO_MATCH;
    } else if (r.n_rrs > SPF_MAX_NAMES) {
        level_set(out, SPF_PERMERROR, "%s: %s has %zu MX records, more than %d", domain, target,
                  r.n_rrs, SPF_MAX_NAMES);
        m = MATCH_ERROR;
    } else {
        for (size_t i = 0; i < r.n_rrs && m == NO_MATCH; i++) {
            const char *host = r.rrs[i].data;
            struct dns_result a;
            if (!spf_query_name_ok(host))
                continue; /* the null MX "." (RFC 7505), or a name that cannot be asked */
            if (!spf_query(ev, host, spf_addr_type(ev), &a)) {
                m = MATCH_ERROR;
                break;
            }
            if (spf_status_temporary(a.status))
                m = spf_temp_error(out, domain, dns_type_name(spf_addr_type(ev)), host, &a);
            else if (a.status == DNS_OK &&
                     spf_rrs_match(ev, &a, ev->family == AF_INET ? t->cidr4 : t->cidr6))
                m = MATCH;
            dns_result_clear(&a);
        }
    }
    dns_result_clear(&r);
    return m;
}

static enum spf_outcome spf_qualifier_result(char q)
{
    switch (q) {
    case '-':
        return SPF_FAIL;
    case '~':
        return SPF_SOFTFAIL;
    case '?':
        return SPF_NEUTRAL;
    default:
        return SPF_PASS;
    }
}

static const char *spf_result_phrase(enum spf_outcome r)
{
    switch (r) {
    case SPF_PASS:
        return "is permitted by";
    case SPF_FAIL:
        return "is not permitted by";
    case SPF_SOFTFAIL:
        return "is probably not permitted by";
    default:
        return "is neither permitted nor denied by";
    }
}

static enum spf_outcome spf_check_host(struct spf_eval *ev, const char *domain, int depth,
                                       struct spf_level *out)
{
    struct dns_result txt;
    struct spf_record rec;
    const char *found = NULL;
    size_t found_len = 0, n_found = 0;

    spf_copy_n(out->domain, sizeof out->domain, domain, strlen(domain));
    if (!spf_query(ev, domain, DNS_T_TXT, &txt))
        return level_set(out, SPF_TEMPERROR, "out of memory");
    if (spf_status_temporary(txt.status)) {
        level_set(out, SPF_TEMPERROR, "the TXT lookup of %s failed (%s)", domain,
                  dns_status_name(txt.status));
        dns_result_clear(&txt);
        return SPF_TEMPERROR;
    }
    if (txt.status == DNS_NXDOMAIN) {
        dns_result_clear(&txt);
        return level_set(out, SPF_NONE, "%s does not exist", domain);
    }
    for (size_t i = 0; i < txt.n_rrs; i++)
        if (spf_is_spf_record(txt.rrs[i].data, txt.rrs[i].len)) {
            found = txt.rrs[i].data;
            found_len = txt.rrs[i].len;
            n_found++;
        }
    if (n_found != 1) {
        dns_result_clear(&txt);
        if (n_found == 0)
            return level_set(out, SPF_NONE, "%s has no SPF record", domain);
        return level_set(out, SPF_PERMERROR, "%s has %zu SPF records; it must have one", domain,
                         n_found);
    }
    char why[400];
    bool parsed = spf_parse_record(ev, found, found_len, &rec, why, sizeof why);
    dns_result_clear(&txt);
    if (!parsed)
        return level_set(out, SPF_PERMERROR, "the SPF record of %s is invalid: %s", domain, why);

    enum spf_outcome res = SPF_NEUTRAL;
    bool decided = false;
    for (size_t i = 0; i < rec.n_terms && !decided; i++) {
        const struct spf_term *t = &rec.terms[i];
        enum match m = spf_eval_term(ev, t, domain, depth, out);
        if (ev->fatal) {
            res = level_set(out, SPF_TEMPERROR, "out of memory");
            decided = true;
        } else if (m == MATCH_ERROR) {
            res = out->result;
            decided = true;
        } else if (m == MATCH) {
            res = out->result = spf_qualifier_result(t->qualifier);
            spf_copy_n(out->mech, sizeof out->mech, t->text, t->text_len);
            snprintf(out->why, sizeof out->why, "%s %s %s in %s", ev->ip_text,
                     spf_result_phrase(res), out->mech, domain);
            if (res == SPF_FAIL && rec.exp) {
                out->exp = strndup(rec.exp, rec.exp_len);
                spf_copy_n(out->exp_domain, sizeof out->exp_domain, domain, strlen(domain));
                if (!out->exp)
                    ev->fatal = err_set(ev->e, IPW_ENOMEM, "spf: out of memory");
            }
            decided = true;
        }
    }
    if (!decided && rec.redirect) {
        char target[256];
        bool ok = true;
        if (!spf_count_lookup(ev, out, domain)) {
            res = SPF_PERMERROR;
        } else if (!spf_term_target(ev, rec.redirect, rec.redirect_len, domain, target,
                                    sizeof target, &ok)) {
            res = level_set(out, SPF_TEMPERROR, "out of memory");
        } else if (!ok) {
            res = level_set(out, SPF_PERMERROR, "%s: redirect=%s is not a valid domain name",
                            domain, target);
        } else {
            /* The redirect's record takes over entirely: its result, its exp= (6.1, 6.2). */
            struct spf_level sub = {0};
            res = spf_check_host(ev, target, depth + 1, &sub);
            if (res == SPF_NONE) {
                res = level_set(out, SPF_PERMERROR, "%s: redirect=%s: %s", domain, target, sub.why);
                spf_level_clear(&sub);
            } else {
                *out = sub;
            }
        }
    } else if (!decided) {
        level_set(out, SPF_NEUTRAL, "no mechanism of %s matched %s (the default is neutral)",
                  domain, ev->ip_text);
    }
    out->result = res;
    spf_record_free(&rec);
    return res;
}

/* The exp= explanation of a fail (RFC 7208 6.2): one TXT record, ASCII, valid macros. Any
 * problem leaves the explanation as it is. Returns false when memory ran out. */
static bool spf_explain(struct spf_eval *ev, const struct spf_level *lv, char *dst, size_t size)
{
    struct buf name = {0}, text = {0};
    struct dns_result r = {0};
    bool ok = true;
    if (!spf_macro_expand(ev, lv->exp, strlen(lv->exp), lv->exp_domain, &name)) {
        ok = false;
        goto done;
    }
    spf_domain_finish(name.p);
    if (!spf_query_name_ok(name.p))
        goto done;
    if (!spf_query(ev, name.p, DNS_T_TXT, &r)) {
        ok = false;
        goto done;
    }
    if (r.status != DNS_OK || r.n_rrs != 1)
        goto done;
    if (r.rrs[0].len != strlen(r.rrs[0].data) ||
        !spf_macro_syntax_ok(r.rrs[0].data, r.rrs[0].len, MACRO_EXPLAIN, NULL))
        goto done;
    if (!spf_macro_expand(ev, r.rrs[0].data, r.rrs[0].len, lv->exp_domain, &text)) {
        ok = false;
        goto done;
    }
    spf_copy_n(dst, size, text.p, text.len);
done:
    dns_result_clear(&r);
    buf_free(&name);
    buf_free(&text);
    return ok;
}

/* Fills the client address fields of ev from ip; false when ip is no address literal. */
static bool spf_client_ip(struct spf_eval *ev, const char *ip)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, ip, a) == 1) {
        ev->family = AF_INET;
        memcpy(ev->ip, a, 4);
    } else if (inet_pton(AF_INET6, ip, a) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            ev->family = AF_INET;
            memcpy(ev->ip, a + 12, 4);
        } else {
            ev->family = AF_INET6;
            memcpy(ev->ip, a, 16);
        }
    } else {
        return false;
    }
    inet_ntop(ev->family, ev->ip, ev->ip_text, sizeof ev->ip_text);
    if (ev->family == AF_INET) {
        spf_copy_n(ev->ip_dotted, sizeof ev->ip_dotted, ev->ip_text, strlen(ev->ip_text));
        snprintf(ev->reverse_name, sizeof ev->reverse_name, "%u.%u.%u.%u.in-addr.arpa", ev->ip[3],
                 ev->ip[2], ev->ip[1], ev->ip[0]);
    } else {
        static const char hex_uc[] = "0123456789ABCDEF", hex_lc[] = "0123456789abcdef";
        char *d = ev->ip_dotted, *r = ev->reverse_name;
        for (int i = 0; i < 32; i++) {
            unsigned nib = (ev->ip[i / 2] >> (i % 2 ? 0 : 4)) & 0xf;
            *d++ = hex_uc[nib];
            *d++ = i < 31 ? '.' : '\0';
            unsigned rnib = (ev->ip[(31 - i) / 2] >> ((31 - i) % 2 ? 0 : 4)) & 0xf;
            *r++ = hex_lc[rnib];
            *r++ = '.';
        }
        memcpy(r, "ip6.arpa", sizeof "ip6.arpa");
    }
    return true;
}

ipw_status spf_check_opts(struct dns *dns, const char *ip, const char *sender, const char *helo,
                          const struct spf_options *opt, struct spf_result *out, struct err *e)
{
    struct spf_eval ev = {.dns = dns, .e = e, .opt = opt};
    struct spf_level lv = {0};
    char *sender_buf = NULL, *local_buf = NULL;
    ipw_status st = IPW_OK;

    memset(out, 0, sizeof *out);
    if (!ip || !spf_client_ip(&ev, ip))
        return err_set(e, IPW_EUSAGE, "spf: '%s' is not an IP address", ip ? ip : "");
    ev.helo = helo ? helo : "";

    /* RFC 7208 2.4: the null sender is postmaster@HELO; 4.3: no local-part is postmaster. */
    const char *s = sender && *sender ? sender : NULL;
    const char *at = s ? strrchr(s, '@') : NULL;
    const char *dom = s ? (at ? at + 1 : s) : ev.helo;
    if (!*dom)
        return err_set(e, IPW_EUSAGE,
                       s ? "spf: the sender '%s' has no domain"
                         : "spf: the null sender needs a HELO name to check%s",
                       s ? s : "");
    if (s && at && at > s) {
        local_buf = strndup(s, (size_t)(at - s));
        sender_buf = strdup(s);
    } else {
        local_buf = strdup("postmaster");
        size_t n = strlen(dom) + sizeof "postmaster@";
        if ((sender_buf = malloc(n)))
            snprintf(sender_buf, n, "postmaster@%s", dom);
    }
    if (!local_buf || !sender_buf) {
        st = err_set(e, IPW_ENOMEM, "spf: out of memory");
        goto done;
    }
    ev.local = local_buf;
    ev.sender = sender_buf;
    ev.sender_dom = dom;

    if (!spf_initial_domain_ok(dom)) {
        /* RFC 7208 4.3: a malformed or single-label domain gives "none" at once. */
        level_set(&lv, SPF_NONE, "'%s' is not a multi-label domain name", dom);
        spf_copy_n(lv.domain, sizeof lv.domain, dom, strlen(dom));
    } else {
        spf_check_host(&ev, dom, 0, &lv);
    }
    if (ev.fatal) {
        st = ev.fatal;
        goto done;
    }
    out->result = lv.result;
    spf_copy_n(out->explanation, sizeof out->explanation, lv.why, strlen(lv.why));
    spf_copy_n(out->mechanism, sizeof out->mechanism, lv.mech, strlen(lv.mech));
    spf_copy_n(out->domain, sizeof out->domain, lv.domain, strlen(lv.domain));
    if (lv.result == SPF_FAIL) {
        if (opt && opt->default_explanation)
            spf_copy_n(out->explanation, sizeof out->explanation, opt->default_explanation,
                       strlen(opt->default_explanation));
        if (lv.exp && !spf_explain(&ev, &lv, out->explanation, sizeof out->explanation)) {
            st = ev.fatal ? ev.fatal : IPW_ENOMEM;
            goto done;
        }
    }
    out->lookups = ev.lookups;
    out->void_lookups = ev.voids;
done:
    spf_level_clear(&lv);
    free(local_buf);
    free(sender_buf);
    return st;
}

ipw_status spf_check(struct dns *dns, const char *ip, const char *sender, const char *helo,
                     struct spf_result *out, struct err *e)
{
    return spf_check_opts(dns, ip, sender, helo, NULL, out, e);
}
