/*
 * plan_valid: the validators of plain strings that the plan loader and the commands share (see
 * plan_value.h): IP addresses, domains, addr-specs (RFC 5321 section 4.1.2, RFC 5322 section
 * 3.4.1), IANA zone names, environment variable names, hosts, URL authorities and URLs, and the
 * plan_check_* forms the list commands use. They take text and answer yes or no: no walk
 * context, no problem reported (the typed readers of plan_value.c do that), no I/O beyond the
 * zoneinfo lookup of a zone name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipwarm/chars.h"
#include "plan_value.h"

bool plan_ip_valid(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A host name of LDH labels (RFC 1123): 1-63 bytes each, no leading or trailing hyphen, at
 * most 253 bytes, at least min_labels labels; alpha_tld keeps "192.0.2.1" from passing as a
 * name. No trailing dot, no underscores: these are names mail servers will see. */
bool plan_domain_valid(const char *s, size_t len, int min_labels, bool alpha_tld)
{
    if (len == 0 || len > 253)
        return false;
    int labels = 0;
    size_t i = 0;
    bool tld_alpha = false;
    while (i <= len) {
        size_t start = i;
        bool alpha = false;
        while (i < len && s[i] != '.') {
            unsigned char ch = (unsigned char)s[i];
            if (!chars_is_alnum(ch) && ch != '-')
                return false;
            if (chars_is_alpha(ch))
                alpha = true;
            i++;
        }
        size_t l = i - start;
        if (l == 0 || l > 63 || s[start] == '-' || s[i - 1] == '-')
            return false;
        labels++;
        tld_alpha = alpha;
        i++; /* past the dot, or past the end */
    }
    return labels >= min_labels && (!alpha_tld || tld_alpha);
}

/* RFC 5322 addr-spec: a dot-atom or quoted-string local part, '@', a domain name. ASCII only:
 * an SMTPUTF8 sender is not worth the deliverability risk during a warm-up. */
bool plan_addr_spec_valid(const char *s, size_t len)
{
    const char *at = NULL;
    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == '@') {
            at = s + i - 1;
            break;
        }
    }
    if (!at || len > 254)
        return false;
    size_t ll = (size_t)(at - s);
    if (ll == 0 || ll > 64)
        return false;
    if (s[0] == '"') {
        if (ll < 2 || s[ll - 1] != '"')
            return false;
        for (size_t i = 1; i + 1 < ll; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == '\\') {
                i++;
                if (i + 1 >= ll || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
                    return false;
            } else if (ch < 0x20 || ch > 0x7e || ch == '"') {
                return false;
            }
        }
    } else {
        if (s[0] == '.' || s[ll - 1] == '.')
            return false;
        for (size_t i = 0; i < ll; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == '.' ? s[i + 1] == '.' : !chars_is_atext(ch))
                return false;
        }
    }
    return plan_domain_valid(at + 1, len - ll - 1, 2, true);
}

void plan_trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* An IANA zone name is a file under the zoneinfo tree; refusing "..", absolute names and odd
 * bytes keeps the name from pointing anywhere else. TZDIR is honoured as the C library does. */
bool plan_timezone_valid(const char *name, size_t len)
{
    if (len == 0 || len > 100 || name[0] == '/' || strstr(name, "..") ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") != len)
        return false;
    if (strcmp(name, "UTC") == 0)
        return true; /* the C library knows UTC without any zone file */
    const char *dir = getenv("TZDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir && dir[0] ? dir : PLAN_ZONEINFO, name);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* An environment variable name as POSIX shells accept it. */
bool plan_env_name_valid(const char *s, size_t len)
{
    if (len == 0 || chars_is_digit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!chars_is_alnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

bool plan_port_text_valid(const char *s, size_t len)
{
    if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
        return false;
    long port = strtol(s, NULL, 10);
    return port >= 1 && port <= 65535;
}

/* A relay host: an IP literal ("[v6]" in URLs) or a host name; a single label such as
 * "localhost" is fine for a smarthost. */
bool plan_host_valid(const char *s, size_t len)
{
    char buf[256];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (buf[0] == '[') {
        if (buf[len - 1] != ']')
            return false;
        buf[len - 1] = '\0';
        unsigned char a[sizeof(struct in6_addr)];
        return inet_pton(AF_INET6, buf + 1, a) == 1;
    }
    return plan_ip_valid(buf) || plan_domain_valid(buf, len, 1, true);
}

bool plan_authority_valid(const char *s, size_t len, size_t *host_len)
{
    const char *colon = NULL;
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb)
            return false;
        if ((size_t)(rb - s) + 1 < len) {
            if (rb[1] != ':')
                return false;
            colon = rb + 1;
        }
    } else {
        colon = memchr(s, ':', len);
    }
    *host_len = colon ? (size_t)(colon - s) : len;
    if (!plan_host_valid(s, *host_len))
        return false;
    return !colon || plan_port_text_valid(colon + 1, len - *host_len - 1);
}

/* smtp://HOST[:PORT][/] or smtps://...; *why says what is wrong. Credentials in the URL are
 * refused: they would be a password written into the plan. */
bool plan_url_valid(const char *s, const char **why)
{
    *why = NULL;
    const char *rest;
    if (strncasecmp(s, "smtp://", 7) == 0)
        rest = s + 7;
    else if (strncasecmp(s, "smtps://", 8) == 0)
        rest = s + 8;
    else
        return false;
    size_t alen = strcspn(rest, "/?#");
    if (rest[alen] && strcmp(rest + alen, "/") != 0)
        return false;
    const char *at = memchr(rest, '@', alen);
    if (at) {
        *why = memchr(rest, ':', (size_t)(at - rest))
                   ? "inline passwords are not allowed: use password_env or password_file"
                   : "put the user name in transport.relay.username, not in the URL";
        return false;
    }
    size_t hlen;
    return plan_authority_valid(rest, alen, &hlen);
}

bool plan_check_domain(const char *s, size_t len)
{
    return plan_domain_valid(s, len, 2, true);
}

bool plan_check_ip(const char *s, size_t len)
{
    (void)len;
    return plan_ip_valid(s);
}

bool plan_check_provider_name(const char *s, size_t len)
{
    return len >= 1 && len <= 63 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

/* An MX suffix as written (".google.com" or "google.com"). */
bool plan_check_mx_suffix(const char *s, size_t len)
{
    if (len && s[0] == '.') {
        s++;
        len--;
    }
    return plan_domain_valid(s, len, 2, true);
}
