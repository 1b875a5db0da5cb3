/*
 * preflight_smtp: the SMTP reachability probe of the pre-flight checks, which sends no mail.
 *
 * One probe walks the start of a session and stops before MAIL: TCP connect within the plan's
 * connect timeout (bound to the source IP in direct mode, so a missing address or a blocked
 * outbound port shows up now and not at the first send), the greeting, EHLO (RFC 5321 4.1.1.1),
 * STARTTLS (RFC 3207) or TLS from the start for smtps://, the negotiated TLS version compared
 * with the plan's tls_min, EHLO again over TLS (RFC 3207 4.2: the first one is forgotten),
 * AUTH PLAIN (RFC 4954, RFC 4616) with the relay credentials, never sent in clear, the SIZE
 * the server declares (RFC 1870) against the largest message the plan produces, then QUIT.
 * A plain socket and OpenSSL keep every step observable; the sending path (libcurl) would hide
 * which step failed. The probe offers TLS 1.0 and up on purpose, so that a server stuck at
 * TLS 1.1 is named as such rather than as an anonymous handshake failure.
 */
#include "ipwarm/preflight.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* A probe waits at most this long for one reply, whatever transport.timeouts.command says
 * (5 minutes by default is meant for DATA, not for a greeting). */
#define PREFLIGHT_SMTP_REPLY_MAX_MS 60000

struct pf_conn {
    int fd;
    SSL *ssl;
    char buf[4096];
    size_t len;
};

static void pf_set_timeouts(int fd, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static bool pf_send(struct pf_conn *c, const char *line)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s\r\n", line);
    if (n < 0 || (size_t)n >= sizeof buf)
        return false;
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = c->ssl ? SSL_write(c->ssl, buf + off, n - (int)off)
                           : send(c->fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        off += (size_t)w;
    }
    return true;
}

/* Reads one reply (all its lines, joined by '\n') into out; returns its code, 0 on a broken
 * or timed-out connection (*timed_out then says which). */
static int pf_reply(struct pf_conn *c, char *out, size_t n, bool *timed_out)
{
    size_t k = 0;
    out[0] = '\0';
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (!nl) {
            if (c->len == sizeof c->buf)
                c->len = 0; /* an endless line: drop it */
            ssize_t r = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len))
                               : recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
            if (r <= 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    *timed_out = true;
                return 0;
            }
            c->len += (size_t)r;
            continue;
        }
        size_t ll = (size_t)(nl - c->buf);
        size_t tl = ll > 0 && c->buf[ll - 1] == '\r' ? ll - 1 : ll;
        char line[1024];
        size_t cl = tl < sizeof line ? tl : sizeof line - 1;
        memcpy(line, c->buf, cl);
        line[cl] = '\0';
        memmove(c->buf, nl + 1, c->len - ll - 1);
        c->len -= ll + 1;
        if (k < n) {
            int w = snprintf(out + k, n - k, "%s%s", k ? "\n" : "", line);
            if (w > 0)
                k += (size_t)w < n - k ? (size_t)w : n - k - 1;
        }
        if (cl < 3 || line[0] < '2' || line[0] > '5')
            return 0; /* not a reply line */
        if (cl == 3 || line[3] == ' ')
            return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    }
}

/* Reads the extensions of an EHLO reply. */
static void pf_ehlo_parse(const char *reply, struct preflight_smtp_probe *out)
{
    out->starttls_offered = out->auth_offered = out->size_advertised = false;
    const char *s = reply;
    bool first = true;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (!first && l > 4) {
            const char *kw = s + 4;
            size_t kl = l - 4;
            if (kl >= 8 && strncasecmp(kw, "STARTTLS", 8) == 0)
                out->starttls_offered = true;
            else if (kl >= 4 && strncasecmp(kw, "AUTH", 4) == 0 &&
                     (kl == 4 || kw[4] == ' ' || kw[4] == '='))
                out->auth_offered = true;
            else if (kl >= 4 && strncasecmp(kw, "SIZE", 4) == 0 && (kl == 4 || kw[4] == ' ')) {
                out->size_advertised = true;
                out->size = kl > 5 ? strtoull(kw + 5, NULL, 10) : 0;
            }
        }
        first = false;
        s += l;
        if (*s == '\n')
            s++;
    }
}

/* Connects within timeout_ms; returns the socket or -1 with out->error set. */
static int pf_connect(const struct sockaddr *sa, socklen_t salen, const char *source_ip,
                      int64_t timeout_ms, struct preflight_smtp_probe *out)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(out->error, sizeof out->error, "socket: %s", strerror(errno));
        return -1;
    }
    if (source_ip) {
        struct sockaddr_storage src;
        memset(&src, 0, sizeof src);
        socklen_t sl;
        if (sa->sa_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src;
            s6->sin6_family = AF_INET6;
            inet_pton(AF_INET6, source_ip, &s6->sin6_addr);
            sl = sizeof *s6;
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
            s4->sin_family = AF_INET;
            inet_pton(AF_INET, source_ip, &s4->sin_addr);
            sl = sizeof *s4;
        }
        if (bind(fd, (struct sockaddr *)&src, sl) != 0) {
            out->bind_failed = true;
            snprintf(out->error, sizeof out->error, "cannot bind the source IP %s: %s", source_ip,
                     strerror(errno));
            close(fd);
            return -1;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int rc = connect(fd, sa, salen);
    if (rc != 0 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr = poll(&pfd, 1, (int)timeout_ms);
        if (pr == 0) {
            out->timed_out = true;
            snprintf(out->error, sizeof out->error, "no answer within %lld ms",
                     (long long)timeout_ms);
            close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t el = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el);
        rc = soerr ? -1 : 0;
        errno = soerr;
    }
    if (rc != 0) {
        snprintf(out->error, sizeof out->error, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

static int pf_tls_number(int v)
{
    switch (v) {
    case TLS1_VERSION:
        return 10;
    case TLS1_1_VERSION:
        return 11;
    case TLS1_2_VERSION:
        return 12;
    case TLS1_3_VERSION:
        return 13;
    default:
        return 0;
    }
}

/* The handshake on c->fd; fills the TLS fields of out. Returns true when TLS is up. */
static bool pf_tls(struct pf_conn *c, SSL_CTX *ctx, const struct preflight_smtp_target *t,
                   struct preflight_smtp_probe *out)
{
    c->ssl = SSL_new(ctx);
    if (!c->ssl) {
        snprintf(out->tls_error, sizeof out->tls_error, "SSL_new failed");
        return false;
    }
    SSL_set_fd(c->ssl, c->fd);
    unsigned char b[16];
    bool literal = inet_pton(AF_INET, t->host, b) == 1 || inet_pton(AF_INET6, t->host, b) == 1;
    if (!literal)
        SSL_set_tlsext_host_name(c->ssl, t->host);
    if (t->verify) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (literal)
            X509_VERIFY_PARAM_set1_ip_asc(vp, t->host);
        else
            X509_VERIFY_PARAM_set1_host(vp, t->host, 0);
    }
    ERR_clear_error();
    if (SSL_connect(c->ssl) != 1) {
        unsigned long ec = ERR_get_error();
        char eb[200];
        if (ec)
            ERR_error_string_n(ec, eb, sizeof eb);
        else
            snprintf(eb, sizeof eb, "%s", errno ? strerror(errno) : "connection closed");
        snprintf(out->tls_error, sizeof out->tls_error, "TLS handshake failed: %s", eb);
        SSL_free(c->ssl);
        c->ssl = NULL;
        return false;
    }
    out->tls_ok = true;
    out->tls_version = pf_tls_number(SSL_version(c->ssl));
    snprintf(out->tls_version_name, sizeof out->tls_version_name, "%s", SSL_get_version(c->ssl));
    if (t->verify) {
        long vr = SSL_get_verify_result(c->ssl);
        out->cert_ok = vr == X509_V_OK && SSL_get0_peer_certificate(c->ssl) != NULL;
        if (!out->cert_ok)
            snprintf(out->tls_error, sizeof out->tls_error, "certificate not trusted: %s",
                     X509_verify_cert_error_string(vr));
    }
    return true;
}

/* AUTH PLAIN with the credentials (RFC 4616: authzid empty). */
static void pf_auth(struct pf_conn *c, const struct preflight_smtp_target *t,
                    struct preflight_smtp_probe *out, bool *timed_out)
{
    size_t ul = strlen(t->username), pl = strlen(t->password);
    size_t rawn = ul + pl + 2;
    unsigned char *raw = malloc(rawn);
    char *b64 = malloc(4 * ((rawn + 2) / 3) + 1);
    char *line = malloc(4 * ((rawn + 2) / 3) + 16);
    if (raw && b64 && line) {
        raw[0] = '\0';
        memcpy(raw + 1, t->username, ul);
        raw[1 + ul] = '\0';
        memcpy(raw + 2 + ul, t->password, pl);
        EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawn);
        snprintf(line, 4 * ((rawn + 2) / 3) + 16, "AUTH PLAIN %s", b64);
        if (pf_send(c, line)) {
            int code = pf_reply(c, out->auth_reply, sizeof out->auth_reply, timed_out);
            out->auth = code == 235 ? 1 : 0;
            if (code == 0)
                snprintf(out->auth_reply, sizeof out->auth_reply, "no reply to AUTH");
        }
    }
    /* The password must not linger in memory that is freed. */
    if (raw)
        OPENSSL_cleanse(raw, rawn);
    if (b64)
        OPENSSL_cleanse(b64, strlen(b64));
    if (line)
        OPENSSL_cleanse(line, strlen(line));
    free(raw);
    free(b64);
    free(line);
}

ipw_status preflight_smtp_probe(const struct preflight_smtp_target *t,
                                struct preflight_smtp_probe *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    out->auth = -1;
    struct pf_conn c = {.fd = -1};
    SSL_CTX *ctx = NULL;
    int64_t reply_ms =
        t->command_timeout_ms > 0 && t->command_timeout_ms < PREFLIGHT_SMTP_REPLY_MAX_MS
            ? t->command_timeout_ms
            : PREFLIGHT_SMTP_REPLY_MAX_MS;
    int64_t conn_ms = t->connect_timeout_ms > 0 ? t->connect_timeout_ms : 30000;

    /* Resolve: the address families of the source IP only, when one is bound. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    unsigned char b[16];
    if (t->source_ip)
        hints.ai_family = inet_pton(AF_INET, t->source_ip, b) == 1 ? AF_INET : AF_INET6;
    if (inet_pton(AF_INET, t->host, b) == 1 || inet_pton(AF_INET6, t->host, b) == 1)
        hints.ai_flags = AI_NUMERICHOST;
    char port[16];
    snprintf(port, sizeof port, "%d", t->port);
    struct addrinfo *ai = NULL;
    int gr = getaddrinfo(t->host, port, &hints, &ai);
    if (gr != 0 || !ai) {
        snprintf(out->error, sizeof out->error, "%s does not resolve%s: %s", t->host,
                 t->source_ip ? " to an address of the source IP's family" : "", gai_strerror(gr));
        if (ai)
            freeaddrinfo(ai);
        return IPW_OK;
    }
    out->resolved = true;
    getnameinfo(ai->ai_addr, ai->ai_addrlen, out->address, sizeof out->address, NULL, 0,
                NI_NUMERICHOST);
    c.fd = pf_connect(ai->ai_addr, ai->ai_addrlen, t->source_ip, conn_ms, out);
    freeaddrinfo(ai);
    if (c.fd < 0)
        return IPW_OK;
    out->connected = true;
    pf_set_timeouts(c.fd, reply_ms);

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        close(c.fd);
        return err_set(e, IPW_ESOFTWARE, "preflight: OpenSSL cannot start");
    }
    /* Offer every version from 1.0 so that an old server is named by its version. */
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* verified after, to report versions too */
    if (t->verify) {
        if (t->ca_file)
            SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL);
        else
            SSL_CTX_set_default_verify_paths(ctx);
    }

    char reply[1024];
    bool to = false;
    if (t->implicit_tls && !pf_tls(&c, ctx, t, out))
        goto done;
    out->greeting_code = pf_reply(&c, reply, sizeof reply, &to);
    if (out->greeting_code != 220) {
        snprintf(out->error, sizeof out->error, "%.250s",
                 out->greeting_code ? reply
                 : to               ? "no greeting within the command timeout"
                                    : "the connection closed before a greeting");
        goto done;
    }
    char ehlo[300];
    snprintf(ehlo, sizeof ehlo, "EHLO %s", t->helo ? t->helo : "localhost");
    if (!pf_send(&c, ehlo) || pf_reply(&c, out->ehlo_reply, sizeof out->ehlo_reply, &to) != 250) {
        snprintf(out->error, sizeof out->error, "EHLO refused: %.200s",
                 out->ehlo_reply[0] ? out->ehlo_reply : "no reply");
        goto done;
    }
    out->ehlo_ok = true;
    pf_ehlo_parse(out->ehlo_reply, out);
    if (!c.ssl && out->starttls_offered) {
        bool starttls = true;
        if (!pf_send(&c, "STARTTLS") || pf_reply(&c, reply, sizeof reply, &to) != 220) {
            snprintf(out->tls_error, sizeof out->tls_error, "STARTTLS refused: %.200s", reply);
            starttls = false;
        }
        if (!starttls || !pf_tls(&c, ctx, t, out))
            goto done;
        /* RFC 3207 4.2: forget what the server said before TLS, and ask again. */
        char again[512];
        if (!pf_send(&c, ehlo) || pf_reply(&c, again, sizeof again, &to) != 250) {
            snprintf(out->error, sizeof out->error, "EHLO over TLS refused: %.200s", again);
            goto done;
        }
        bool had = out->starttls_offered;
        snprintf(out->ehlo_reply, sizeof out->ehlo_reply, "%s", again);
        pf_ehlo_parse(out->ehlo_reply, out);
        out->starttls_offered = had;
    }
    if (t->username && t->password) {
        if (!out->auth_offered)
            snprintf(out->auth_reply, sizeof out->auth_reply, "the server offers no AUTH");
        else if (!c.ssl)
            snprintf(out->auth_reply, sizeof out->auth_reply,
                     "not tried: without TLS the password would go in clear");
        else
            pf_auth(&c, t, out, &to);
    }
    if (pf_send(&c, "QUIT"))
        pf_reply(&c, reply, sizeof reply, &to);
done:
    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    SSL_CTX_free(ctx);
    close(c.fd);
    return IPW_OK;
}

/* Bytes of a file, and whether it holds a byte outside ASCII. */
static uint64_t pf_file_size(const char *path, bool *non_ascii)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint64_t n = 0;
    unsigned char buf[8192];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < r; i++)
            if (buf[i] & 0x80)
                *non_ascii = true;
        n += r;
    }
    fclose(f);
    return n;
}

/* A body part as sent: base64 (4/3, in lines of 76 plus CRLF) when it is not ASCII. */
static uint64_t pf_encoded(uint64_t n, bool non_ascii)
{
    if (!non_ascii)
        return n;
    uint64_t b64 = (n + 2) / 3 * 4;
    return b64 + (b64 + 75) / 76 * 2;
}

uint64_t preflight_message_size(const struct plan *p)
{
    uint64_t total = 2048; /* headers, MIME boundaries, DKIM-Signature */
    bool na = false;
    if (p->text) {
        for (const char *s = p->text; *s; s++)
            if (*s & 0x80)
                na = true;
        total += pf_encoded(strlen(p->text), na);
    } else if (p->text_file) {
        uint64_t n = pf_file_size(p->text_file, &na);
        total += pf_encoded(n, na);
    }
    if (p->html_file) {
        na = false;
        uint64_t n = pf_file_size(p->html_file, &na);
        total += pf_encoded(n, na);
    }
    return total;
}

/* ---- the checks ---- */

/* Reads the relay password (never printed). Returns a malloc'd string, or NULL with why. */
static char *pf_password(const struct plan *p, char *why, size_t n)
{
    if (p->relay_password_env) {
        const char *pw = getenv(p->relay_password_env);
        if (!pw || !*pw) {
            snprintf(why, n,
                     "the environment variable %s (transport.relay.password_env) is not set",
                     p->relay_password_env);
            return NULL;
        }
        return strdup(pw);
    }
    if (p->relay_password_file) {
        FILE *f = fopen(p->relay_password_file, "r");
        if (!f) {
            snprintf(why, n, "cannot read %s (transport.relay.password_file): %s",
                     p->relay_password_file, strerror(errno));
            return NULL;
        }
        char buf[1024];
        size_t r = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[r] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        char *pw = strdup(buf);
        OPENSSL_cleanse(buf, sizeof buf);
        return pw;
    }
    snprintf(why, n, "no password configured (transport.relay.password_env or password_file)");
    return NULL;
}

static const char *pf_tls_name(int v)
{
    switch (v) {
    case 10:
        return "1.0";
    case 11:
        return "1.1";
    case 12:
        return "1.2";
    case 13:
        return "1.3";
    default:
        return "?";
    }
}

/* Appends smtp, tls, auth (relay) and size for one probe. */
static ipw_status pf_report(struct preflight_report *r, const struct plan *p, const char *subject,
                            const char *label, const struct preflight_smtp_target *t,
                            const struct preflight_smtp_probe *pr, bool relay, const char *pw_why,
                            struct err *e)
{
    ipw_status s;
    char where[400], fix[512], lookup[400];
    const char *addr = pr->address[0] ? pr->address : t->host;
    bool v6 = strchr(addr, ':') != NULL;
    /* "mx.example.com [192.0.2.25]:25" for a sampled MX, "smtp.example.net:587" for a relay. */
    if (label && strcmp(label, addr) != 0)
        snprintf(where, sizeof where, "%s [%s]:%d", label, addr, t->port);
    else
        snprintf(where, sizeof where, "%s%s%s:%d", v6 ? "[" : "", addr, v6 ? "]" : "", t->port);
    snprintf(lookup, sizeof lookup, "nc -vz -w 10 %s %d", addr, t->port);
    bool reached = pr->ehlo_ok;
    /* smtp */
    if (!pr->resolved) {
        snprintf(lookup, sizeof lookup, "getent ahosts %s", t->host);
        s = preflight_add(r, p, "smtp", PREFLIGHT_FAIL, subject,
                          relay ? "correct the host in transport.relay.url"
                                : "check the MX host's DNS",
                          lookup, "%s", pr->error);
    } else if (pr->bind_failed) {
        snprintf(fix, sizeof fix,
                 "add the IP %s to an interface of this machine (ip addr add %s dev IFACE)",
                 t->source_ip, t->source_ip);
        snprintf(lookup, sizeof lookup, "ip -brief addr | grep -F %s", t->source_ip);
        s = preflight_add(r, p, "smtp", PREFLIGHT_FAIL, subject, fix, lookup,
                          "%s: the source IP is not on this machine", pr->error);
    } else if (!pr->connected) {
        snprintf(fix, sizeof fix,
                 pr->timed_out ? "open outbound TCP port %d (cloud providers often block 25: ask "
                                 "them, or send through a relay on 587 or 465)"
                               : "check that the server listens on port %d",
                 t->port);
        s = preflight_add(r, p, "smtp", PREFLIGHT_FAIL, subject, fix, lookup,
                          "cannot connect to %s: %s%s", where, pr->error,
                          pr->timed_out ? ": the port is blocked or filtered" : "");
    } else if (!reached) {
        s = preflight_add(r, p, "smtp", PREFLIGHT_FAIL, subject,
                          "ask the server's operator why it refuses the session", lookup,
                          "%s answered, but %s", where, pr->error);
    } else {
        s = preflight_add(r, p, "smtp", PREFLIGHT_PASS, subject, NULL, NULL,
                          "%s answers: greeting 220, EHLO accepted", where);
    }
    if (s != IPW_OK)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");

    /* tls */
    const char *tmin = pf_tls_name(p->tls_min);
    snprintf(lookup, sizeof lookup,
             "openssl s_client %s-connect %s:%d </dev/null 2>/dev/null | grep -E 'Protocol|Verify'",
             t->implicit_tls ? "" : "-starttls smtp ", pr->address[0] ? pr->address : t->host,
             t->port);
    if (v6)
        snprintf(lookup, sizeof lookup,
                 "openssl s_client %s-connect [%s]:%d </dev/null 2>/dev/null | grep -E "
                 "'Protocol|Verify'",
                 t->implicit_tls ? "" : "-starttls smtp ", pr->address[0] ? pr->address : t->host,
                 t->port);
    if (!reached && !t->implicit_tls) {
        s = preflight_add(r, p, "tls", PREFLIGHT_SKIP, subject, NULL, NULL,
                          "not checked: the SMTP session did not get that far");
    } else if (!t->implicit_tls && !pr->starttls_offered) {
        s = preflight_add(r, p, "tls", PREFLIGHT_FAIL, subject,
                          relay ? "enable STARTTLS on the relay, or use its smtps:// port 465"
                                : "this MX takes mail only in clear; set transport.tls: "
                                  "opportunistic, or leave this provider out",
                          lookup, "%s does not offer STARTTLS", where);
    } else if (!pr->tls_ok) {
        s = preflight_add(r, p, "tls", PREFLIGHT_FAIL, subject,
                          "ask the server's operator to enable TLS 1.2 or later", lookup, "%s: %s",
                          where, pr->tls_error[0] ? pr->tls_error : pr->error);
    } else if (pr->tls_version < (int)p->tls_min) {
        snprintf(fix, sizeof fix,
                 "ask the server's operator to enable TLS %s or later, or lower transport.tls_min",
                 tmin);
        s = preflight_add(r, p, "tls", PREFLIGHT_FAIL, subject, fix, lookup,
                          "%s negotiated %s, below tls_min %s", where, pr->tls_version_name, tmin);
    } else if (t->verify && !pr->cert_ok) {
        s = preflight_add(r, p, "tls", PREFLIGHT_FAIL, subject,
                          "set transport.relay.ca_file to the CA that signed the relay's "
                          "certificate, or use the name the certificate is for",
                          lookup, "%s negotiated %s, but its %s", where, pr->tls_version_name,
                          pr->tls_error);
    } else {
        s = preflight_add(r, p, "tls", PREFLIGHT_PASS, subject, NULL, NULL,
                          "%s negotiated %s (tls_min %s)%s", where, pr->tls_version_name, tmin,
                          t->verify ? ", certificate verified" : "");
    }
    if (s != IPW_OK)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");

    /* auth */
    if (relay) {
        if (pw_why && pw_why[0]) {
            s = preflight_add(r, p, "auth", PREFLIGHT_FAIL, subject,
                              "give the relay password through transport.relay.password_env or "
                              "password_file",
                              NULL, "AUTH not tried: %s", pw_why);
        } else if (!t->username) {
            s = preflight_add(r, p, "auth", pr->auth_offered ? PREFLIGHT_WARN : PREFLIGHT_PASS,
                              subject, "set transport.relay.username if the relay wants AUTH", NULL,
                              "no relay username configured: AUTH not used%s",
                              pr->auth_offered ? ", though the relay offers it" : "");
        } else if (!reached) {
            s = preflight_add(r, p, "auth", PREFLIGHT_SKIP, subject, NULL, NULL,
                              "not checked: the SMTP session did not get that far");
        } else if (pr->auth == 1) {
            s = preflight_add(r, p, "auth", PREFLIGHT_PASS, subject, NULL, NULL,
                              "%s accepted AUTH PLAIN for %s", where, t->username);
        } else if (pr->auth == 0) {
            s = preflight_add(r, p, "auth", PREFLIGHT_FAIL, subject,
                              "correct transport.relay.username or the password", NULL,
                              "%s refused the credentials of %s: %s", where, t->username,
                              pr->auth_reply);
        } else {
            s = preflight_add(r, p, "auth", PREFLIGHT_FAIL, subject,
                              pr->auth_offered ? "enable STARTTLS on the relay so that the "
                                                 "password does not go in clear"
                                               : "enable AUTH on the relay for this user",
                              NULL, "%s: %s", where,
                              pr->auth_reply[0] ? pr->auth_reply : "AUTH was not tried");
        }
    } else {
        s = preflight_add(r, p, "auth", PREFLIGHT_SKIP, subject, NULL, NULL,
                          "direct mode: MX hosts take mail without AUTH");
    }
    if (s != IPW_OK)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");

    /* size */
    uint64_t need = preflight_message_size(p);
    if (!reached)
        s = preflight_add(r, p, "size", PREFLIGHT_SKIP, subject, NULL, NULL,
                          "not checked: the SMTP session did not get that far");
    else if (!pr->size_advertised || pr->size == 0)
        s = preflight_add(r, p, "size", PREFLIGHT_PASS, subject, NULL, NULL,
                          "%s declares no SIZE limit; the largest message is about %llu bytes",
                          where, (unsigned long long)need);
    else if (need > pr->size)
        s = preflight_add(r, p, "size", PREFLIGHT_FAIL, subject,
                          "make the message smaller (base64 grows non-ASCII parts by 4/3)", NULL,
                          "the largest message, about %llu bytes, exceeds the SIZE %llu of %s",
                          (unsigned long long)need, (unsigned long long)pr->size, where);
    else
        s = preflight_add(r, p, "size", PREFLIGHT_PASS, subject, NULL, NULL,
                          "the largest message, about %llu bytes, is under the SIZE %llu of %s",
                          (unsigned long long)need, (unsigned long long)pr->size, where);
    if (s != IPW_OK)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    return IPW_OK;
}

static ipw_status pf_relay(struct preflight_report *r, const struct plan *p, struct err *e)
{
    const char *url = p->relay_url ? p->relay_url : "";
    struct preflight_smtp_target t = {.helo = p->helo,
                                      .verify = true,
                                      .ca_file = p->relay_ca_file,
                                      .connect_timeout_ms = p->connect_timeout_ms,
                                      .command_timeout_ms = p->command_timeout_ms,
                                      .username = p->relay_username};
    const char *rest = url;
    /* The same reading of the URL as the engine's: smtps:// is TLS from the start on 465,
     * smtp:// uses STARTTLS on 587 unless a port is given. */
    if (strncasecmp(url, "smtps://", 8) == 0) {
        t.implicit_tls = true;
        t.port = 465;
        rest = url + 8;
    } else {
        t.port = 587;
        rest = strncasecmp(url, "smtp://", 7) == 0 ? url + 7 : url;
    }
    char host[256];
    size_t hl = strcspn(rest, ":/");
    const char *h = rest;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        h = rest + 1;
        hl = close ? (size_t)(close - rest) - 1 : strlen(rest + 1);
        rest = close ? close + 1 : rest + strlen(rest);
    } else {
        rest += hl;
    }
    snprintf(host, sizeof host, "%.*s", (int)(hl < sizeof host ? hl : sizeof host - 1), h);
    if (*rest == ':')
        t.port = (int)strtol(rest + 1, NULL, 10);
    t.host = host;
    char why[300] = "";
    char *pw = NULL;
    if (p->relay_username) {
        pw = pf_password(p, why, sizeof why);
        if (!pw && !why[0])
            return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    t.password = pw;
    struct preflight_smtp_probe pr;
    ipw_status s = preflight_smtp_probe(&t, &pr, e);
    if (pw) {
        OPENSSL_cleanse(pw, strlen(pw));
        free(pw);
    }
    if (s != IPW_OK)
        return s;
    char subject[300];
    snprintf(subject, sizeof subject, "relay %s", host);
    return pf_report(r, p, subject, host, &t, &pr, true, why, e);
}

/* The first address of the source IP's family among an MX host's addresses, or NULL. */
static const char *pf_pick_address(const struct dns_mx_host *h, const char *source_ip)
{
    bool want6 = source_ip && strchr(source_ip, ':');
    for (size_t i = 0; i < h->n_addresses; i++)
        if ((strchr(h->addresses[i], ':') != NULL) == want6)
            return h->addresses[i];
    return NULL;
}

static ipw_status pf_direct(struct preflight_report *r, const struct plan *p,
                            const struct preflight_domains *d, struct err *e)
{
    const char *src = p->n_source_ips ? p->source_ips[0] : NULL;
    bool any = false;
    for (size_t pv = 0; pv < p->n_providers; pv++) {
        /* The first domain of this provider that has an MX host with a usable address. */
        const struct dns_mx_host *host = NULL;
        const char *addr = NULL, *domain = NULL;
        bool has_domain = false;
        for (size_t i = 0; d && i < d->n && !addr; i++) {
            if (d->provider[i] != pv)
                continue;
            has_domain = true;
            const struct dns_mx_result *mx = &d->mx[i];
            if (mx->status != DNS_MX_OK && mx->status != DNS_MX_IMPLICIT)
                continue;
            for (size_t h = 0; h < mx->n_hosts && !addr; h++) {
                addr = pf_pick_address(&mx->hosts[h], src);
                host = &mx->hosts[h];
                domain = d->domains[i];
            }
        }
        if (!has_domain)
            continue;
        any = true;
        char subject[300];
        snprintf(subject, sizeof subject, "%s", p->providers[pv].name);
        if (!addr) {
            const char *names[] = {"smtp", "tls", "auth", "size"};
            for (size_t k = 0; k < 4; k++)
                if (preflight_add(r, p, names[k], PREFLIGHT_SKIP, subject, NULL, NULL,
                                  "no MX host of this provider's domains has an address of the "
                                  "source IP's family") != IPW_OK)
                    return err_set(e, IPW_ENOMEM, "preflight: out of memory");
            continue;
        }
        struct preflight_smtp_target t = {.host = addr,
                                          .port = p->port,
                                          .source_ip = src,
                                          .helo = p->helo,
                                          .connect_timeout_ms = p->connect_timeout_ms,
                                          .command_timeout_ms = p->command_timeout_ms};
        struct preflight_smtp_probe pr;
        ipw_status s = preflight_smtp_probe(&t, &pr, e);
        if (s != IPW_OK)
            return s;
        snprintf(subject, sizeof subject, "%s (%s of %s)", p->providers[pv].name, host->host,
                 domain);
        if ((s = pf_report(r, p, subject, host->host, &t, &pr, false, NULL, e)) != IPW_OK)
            return s;
    }
    if (!any) {
        const char *names[] = {"smtp", "tls", "auth", "size"};
        for (size_t k = 0; k < 4; k++)
            if (preflight_add(r, p, names[k], PREFLIGHT_SKIP, NULL, NULL, NULL,
                              "no recipient domain to sample an MX from") != IPW_OK)
                return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    /* The other addresses of a pool: each must be on this machine to be bound. */
    for (size_t i = 1; i < p->n_source_ips; i++) {
        unsigned char b[16];
        bool v6 = inet_pton(AF_INET6, p->source_ips[i], b) == 1;
        int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        socklen_t sl;
        if (v6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            memcpy(&s6->sin6_addr, b, 16);
            sl = sizeof *s6;
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            inet_pton(AF_INET, p->source_ips[i], &s4->sin_addr);
            sl = sizeof *s4;
        }
        if (fd >= 0 && bind(fd, (struct sockaddr *)&ss, sl) != 0) {
            char fix[200], lookup[200];
            snprintf(fix, sizeof fix, "add the IP %s to an interface of this machine",
                     p->source_ips[i]);
            snprintf(lookup, sizeof lookup, "ip -brief addr | grep -F %s", p->source_ips[i]);
            if (preflight_add(r, p, "smtp", PREFLIGHT_FAIL, p->source_ips[i], fix, lookup,
                              "cannot bind the source IP %s: %s", p->source_ips[i],
                              strerror(errno)) != IPW_OK) {
                close(fd);
                return err_set(e, IPW_ENOMEM, "preflight: out of memory");
            }
        }
        if (fd >= 0)
            close(fd);
    }
    return IPW_OK;
}

ipw_status preflight_smtp(struct preflight_report *r, const struct plan *p,
                          const struct preflight_domains *d, struct err *e)
{
    if (p->mode == PLAN_RELAY)
        return pf_relay(r, p, e);
    return pf_direct(r, p, d, e);
}
