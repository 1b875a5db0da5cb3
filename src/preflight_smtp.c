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
 *
 * `check` must always end, whatever the server does, since `run` checks first while it holds
 * the run lock. So the socket is non-blocking and every step of the dialogue (connect, the
 * greeting, EHLO, STARTTLS and its handshake, AUTH, QUIT) has one deadline for the whole step,
 * not per line or per read: a server that trickles an endless "250-" continuation, a byte at a
 * time, or never finishes a handshake, is cut off when the step's time is up. A reply is also
 * bounded in size (PREFLIGHT_SMTP_REPLY_MAX_LINES lines, PREFLIGHT_SMTP_REPLY_MAX_BYTES bytes).
 * Replies are parsed by reply_parse() (reply.c, fuzzed), and the reply to AUTH is masked
 * (secret_mask) before it is kept, since a broken server may echo the credentials.
 */
#include "ipwarm/preflight_smtp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <time.h>
#include <unistd.h>

#include "ipwarm/base64.h"
#include "ipwarm/chars.h"
#include "ipwarm/infile.h"
#include "ipwarm/reply.h"
#include "ipwarm/secret.h"

/* A probe waits at most this long for one step, whatever transport.timeouts.command says
 * (5 minutes by default is meant for DATA, not for a greeting). */
#define PREFLIGHT_SMTP_REPLY_MAX_MS 60000
/* QUIT is a courtesy: it gets a short step of its own. */
#define PREFLIGHT_SMTP_QUIT_MAX_MS 5000
/* The largest reply the probe reads. An EHLO reply has a line per extension, a dozen or two;
 * a greeting or an AUTH reply a few lines. Anything far beyond is a broken or hostile server. */
#define PREFLIGHT_SMTP_REPLY_MAX_LINES 256
#define PREFLIGHT_SMTP_REPLY_MAX_BYTES 65536

struct preflight_smtp_conn {
    int fd;
    SSL *ssl;
    int64_t deadline; /* monotonic ms by which the current step must be over */
    int64_t step_ms;  /* how long the current step was given, for the sentences */
    size_t used;      /* bytes of in[] that the last reply took, dropped by the next read */
    size_t len;       /* bytes in in[] */
    char in[PREFLIGHT_SMTP_REPLY_MAX_BYTES + 1];
};

/* Why a read or a write of a step failed. */
enum preflight_smtp_fail {
    PREFLIGHT_SMTP_OK = 0,
    PREFLIGHT_SMTP_TIMEOUT, /* the step's deadline passed */
    PREFLIGHT_SMTP_CLOSED,  /* the server closed the connection */
    PREFLIGHT_SMTP_TOOLONG, /* the reply exceeded the line or byte bound */
    PREFLIGHT_SMTP_ERROR,   /* a socket or TLS error */
};

static int64_t preflight_smtp_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts a step of ms milliseconds. */
static void preflight_smtp_step(struct preflight_smtp_conn *c, int64_t ms)
{
    c->step_ms = ms;
    c->deadline = preflight_smtp_mono_ms() + ms;
}

/* Waits until fd is ready for events, or the step's deadline. */
static enum preflight_smtp_fail preflight_smtp_wait(struct preflight_smtp_conn *c, short events)
{
    for (;;) {
        int64_t left = c->deadline - preflight_smtp_mono_ms();
        if (left <= 0)
            return PREFLIGHT_SMTP_TIMEOUT;
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0)
            return PREFLIGHT_SMTP_OK;
        if (r == 0)
            return PREFLIGHT_SMTP_TIMEOUT;
        if (errno != EINTR)
            return PREFLIGHT_SMTP_ERROR;
    }
}

/* What an SSL call that did not succeed asks for: PREFLIGHT_SMTP_OK with *events to wait for, or a
 * failure. */
static enum preflight_smtp_fail preflight_smtp_ssl_want(SSL *ssl, int rc, short *events)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        *events = POLLIN;
        return PREFLIGHT_SMTP_OK;
    case SSL_ERROR_WANT_WRITE:
        *events = POLLOUT;
        return PREFLIGHT_SMTP_OK;
    case SSL_ERROR_ZERO_RETURN:
        return PREFLIGHT_SMTP_CLOSED;
    case SSL_ERROR_SYSCALL:
        return errno == 0 || errno == ECONNRESET ? PREFLIGHT_SMTP_CLOSED : PREFLIGHT_SMTP_ERROR;
    default:
        return PREFLIGHT_SMTP_ERROR;
    }
}

/* Sends the line and CRLF within the step's deadline. */
static enum preflight_smtp_fail preflight_smtp_send(struct preflight_smtp_conn *c, const char *line)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s\r\n", line);
    if (n < 0 || (size_t)n >= sizeof buf)
        return PREFLIGHT_SMTP_ERROR;
    size_t off = 0;
    enum preflight_smtp_fail f = PREFLIGHT_SMTP_OK;
    while (off < (size_t)n && f == PREFLIGHT_SMTP_OK) {
        short events = POLLOUT;
        if (c->ssl) {
            int w = SSL_write(c->ssl, buf + off, n - (int)off);
            if (w > 0) {
                off += (size_t)w;
                continue;
            }
            f = preflight_smtp_ssl_want(c->ssl, w, &events);
        } else {
            ssize_t w = send(c->fd, buf + off, (size_t)n - off, MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
                continue;
            }
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                f = errno == EPIPE || errno == ECONNRESET ? PREFLIGHT_SMTP_CLOSED
                                                          : PREFLIGHT_SMTP_ERROR;
        }
        if (f == PREFLIGHT_SMTP_OK)
            f = preflight_smtp_wait(c, events);
    }
    OPENSSL_cleanse(buf, sizeof buf); /* it may have been the AUTH line */
    return f;
}

/* Reads more bytes into in[] within the step's deadline. */
static enum preflight_smtp_fail preflight_smtp_read(struct preflight_smtp_conn *c)
{
    char *dst = c->in + c->len;
    size_t room = PREFLIGHT_SMTP_REPLY_MAX_BYTES - c->len;
    for (;;) {
        short events = POLLIN;
        enum preflight_smtp_fail f = PREFLIGHT_SMTP_OK;
        if (c->ssl) {
            int r = SSL_read(c->ssl, dst, room > INT_MAX ? INT_MAX : (int)room);
            if (r > 0) {
                c->len += (size_t)r;
                return PREFLIGHT_SMTP_OK;
            }
            f = preflight_smtp_ssl_want(c->ssl, r, &events);
        } else {
            ssize_t r = recv(c->fd, dst, room, 0);
            if (r > 0) {
                c->len += (size_t)r;
                return PREFLIGHT_SMTP_OK;
            }
            if (r == 0)
                return PREFLIGHT_SMTP_CLOSED;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return errno == ECONNRESET ? PREFLIGHT_SMTP_CLOSED : PREFLIGHT_SMTP_ERROR;
        }
        if (f == PREFLIGHT_SMTP_OK)
            f = preflight_smtp_wait(c, events);
        if (f != PREFLIGHT_SMTP_OK)
            return f;
    }
}

/*
 * Reads one reply within the step's deadline: lines up to the first one that is not a
 * continuation ("CODE-"), parsed by reply_parse() into *out. *raw and *raw_len (may be NULL)
 * give its bytes, valid until the next read. Returns PREFLIGHT_SMTP_OK, or why there is no reply.
 */
static enum preflight_smtp_fail preflight_smtp_reply(struct preflight_smtp_conn *c,
                                                     struct reply *out, const char **raw,
                                                     size_t *raw_len)
{
    memset(out, 0, sizeof *out);
    /* Drop what the previous reply took; bytes after it stay (they belong to this one). */
    memmove(c->in, c->in + c->used, c->len - c->used);
    c->len -= c->used;
    c->used = 0;
    size_t pos = 0, lines = 0;
    for (;;) {
        char *nl = memchr(c->in + pos, '\n', c->len - pos);
        if (!nl) {
            if (c->len >= PREFLIGHT_SMTP_REPLY_MAX_BYTES)
                return PREFLIGHT_SMTP_TOOLONG;
            enum preflight_smtp_fail f = preflight_smtp_read(c);
            if (f != PREFLIGHT_SMTP_OK)
                return f;
            continue;
        }
        const char *line = c->in + pos;
        size_t ll = (size_t)(nl - line);
        pos += ll + 1;
        lines++;
        bool more = ll >= 4 && chars_is_digit(line[0]) && chars_is_digit(line[1]) &&
                    chars_is_digit(line[2]) && line[3] == '-';
        if (!more) {
            reply_parse(c->in, pos, out);
            c->used = pos;
            if (raw)
                *raw = c->in;
            if (raw_len)
                *raw_len = pos;
            return PREFLIGHT_SMTP_OK;
        }
        if (lines >= PREFLIGHT_SMTP_REPLY_MAX_LINES)
            return PREFLIGHT_SMTP_TOOLONG;
    }
}

/* A sentence for a step that got no reply: "no complete greeting within 2000 ms". */
static void preflight_smtp_why(const struct preflight_smtp_conn *c, enum preflight_smtp_fail f,
                               const char *what, char *buf, size_t n)
{
    switch (f) {
    case PREFLIGHT_SMTP_TIMEOUT:
        snprintf(buf, n, "no complete %s within %lld ms (transport.timeouts.command)", what,
                 (long long)c->step_ms);
        break;
    case PREFLIGHT_SMTP_CLOSED:
        snprintf(buf, n, "the connection closed before a complete %s", what);
        break;
    case PREFLIGHT_SMTP_TOOLONG:
        snprintf(buf, n, "the %s did not end within %d lines or %d bytes", what,
                 PREFLIGHT_SMTP_REPLY_MAX_LINES, PREFLIGHT_SMTP_REPLY_MAX_BYTES);
        break;
    case PREFLIGHT_SMTP_ERROR:
        snprintf(buf, n, "the connection failed while waiting for the %s: %s", what,
                 errno ? strerror(errno) : "TLS error");
        break;
    case PREFLIGHT_SMTP_OK:
        snprintf(buf, n, "no %s", what);
        break;
    }
}

/* Sends line and reads its reply within one step of ms; fills *out, or why (n bytes). */
static bool preflight_smtp_command(struct preflight_smtp_conn *c, const char *line, int64_t ms,
                                   const char *what, struct reply *out, const char **raw,
                                   size_t *raw_len, char *why, size_t n, bool *timed_out)
{
    preflight_smtp_step(c, ms);
    enum preflight_smtp_fail f = preflight_smtp_send(c, line);
    if (f == PREFLIGHT_SMTP_OK)
        f = preflight_smtp_reply(c, out, raw, raw_len);
    if (f == PREFLIGHT_SMTP_OK)
        return true;
    if (f == PREFLIGHT_SMTP_TIMEOUT)
        *timed_out = true;
    preflight_smtp_why(c, f, what, why, n);
    return false;
}

/* Reads the extensions of an EHLO reply (its raw lines, "250-STARTTLS\r\n" ...). */
static void preflight_smtp_ehlo_parse(const char *raw, size_t len, struct preflight_smtp_probe *out)
{
    out->starttls_offered = out->auth_offered = out->size_advertised = false;
    size_t i = 0;
    bool first = true;
    while (i < len) {
        const char *s = raw + i;
        const char *nl = memchr(s, '\n', len - i);
        size_t l = nl ? (size_t)(nl - s) : len - i;
        i += l + (nl ? 1 : 0);
        if (l > 0 && s[l - 1] == '\r')
            l--;
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
                char num[24];
                size_t nl2 = kl > 5 ? kl - 5 : 0;
                snprintf(num, sizeof num, "%.*s", (int)(nl2 < sizeof num ? nl2 : sizeof num - 1),
                         kw + 5);
                out->size = nl2 ? strtoull(num, NULL, 10) : 0;
            }
        }
        first = false;
    }
}

/* Connects within timeout_ms; returns the socket (non-blocking) or -1 with out->error set. */
static int preflight_smtp_connect(const struct sockaddr *sa, socklen_t salen, const char *source_ip,
                                  int64_t timeout_ms, struct preflight_smtp_probe *out)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(out->error, sizeof out->error, "cannot make a socket: %s", strerror(errno));
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
    int rc = connect(fd, sa, salen);
    if (rc != 0 && errno == EINPROGRESS) {
        struct preflight_smtp_conn w = {.fd = fd};
        preflight_smtp_step(&w, timeout_ms);
        enum preflight_smtp_fail f = preflight_smtp_wait(&w, POLLOUT);
        if (f == PREFLIGHT_SMTP_TIMEOUT) {
            out->timed_out = true;
            snprintf(out->error, sizeof out->error,
                     "no answer to the TCP connection within %lld ms (transport.timeouts.connect)",
                     (long long)timeout_ms);
            close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t el = sizeof soerr;
        if (f != PREFLIGHT_SMTP_OK || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0)
            soerr = errno ? errno : EIO;
        rc = soerr ? -1 : 0;
        errno = soerr;
    }
    if (rc != 0) {
        /* preflight_smtp_report says where: "cannot connect to HOST:PORT: Connection refused". */
        snprintf(out->error, sizeof out->error, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int preflight_smtp_tls_number(int v)
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

/* The handshake on c->fd within one step of ms; fills the TLS fields of out. Returns true
 * when TLS is up. */
static bool preflight_smtp_tls(struct preflight_smtp_conn *c, SSL_CTX *ctx,
                               const struct preflight_smtp_target *t, int64_t ms,
                               struct preflight_smtp_probe *out)
{
    /* RFC 3207 section 6: nothing the server sent before the handshake may be taken as said
     * over TLS; a server (or a man in the middle) that sends more after its 220 is ignored. */
    c->len = c->used = 0;
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
    preflight_smtp_step(c, ms);
    enum preflight_smtp_fail f = PREFLIGHT_SMTP_OK;
    for (;;) {
        errno = 0;
        int rc = SSL_connect(c->ssl);
        if (rc == 1)
            break;
        short events = POLLIN;
        f = preflight_smtp_ssl_want(c->ssl, rc, &events);
        if (f == PREFLIGHT_SMTP_OK)
            f = preflight_smtp_wait(c, events);
        if (f != PREFLIGHT_SMTP_OK)
            break;
    }
    if (f != PREFLIGHT_SMTP_OK) {
        unsigned long ec = ERR_get_error();
        char eb[200];
        if (f == PREFLIGHT_SMTP_TIMEOUT) {
            out->timed_out = true;
            snprintf(eb, sizeof eb, "not complete within %lld ms (transport.timeouts.command)",
                     (long long)ms);
        } else if (ec) {
            ERR_error_string_n(ec, eb, sizeof eb);
        } else {
            snprintf(eb, sizeof eb, "%s",
                     f == PREFLIGHT_SMTP_CLOSED ? "the server closed the connection"
                     : errno                    ? strerror(errno)
                                                : "connection closed");
        }
        snprintf(out->tls_error, sizeof out->tls_error, "TLS handshake failed: %s", eb);
        SSL_free(c->ssl);
        c->ssl = NULL;
        return false;
    }
    out->tls_ok = true;
    out->tls_version = preflight_smtp_tls_number(SSL_version(c->ssl));
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

/* AUTH PLAIN with the credentials (RFC 4616: authzid empty), within one step of ms. The reply
 * is kept masked: a server that echoes the command would otherwise hand the password to the
 * pre-flight record. */
static void preflight_smtp_auth(struct preflight_smtp_conn *c,
                                const struct preflight_smtp_target *t, int64_t ms,
                                struct preflight_smtp_probe *out, bool *timed_out)
{
    size_t ul = strlen(t->username), pl = strlen(t->password);
    size_t rawn = ul + pl + 2;
    unsigned char *raw = malloc(rawn);
    char *b64 = malloc(BASE64_LEN(rawn) + 1);
    char *line = malloc(BASE64_LEN(rawn) + 16);
    if (raw && b64 && line) {
        raw[0] = '\0';
        memcpy(raw + 1, t->username, ul);
        raw[1 + ul] = '\0';
        memcpy(raw + 2 + ul, t->password, pl);
        base64_encode(raw, rawn, b64);
        snprintf(line, BASE64_LEN(rawn) + 16, "AUTH PLAIN %s", b64);
        struct reply rp;
        char why[200];
        if (preflight_smtp_command(c, line, ms, "reply to AUTH", &rp, NULL, NULL, why, sizeof why,
                                   timed_out)) {
            out->auth = rp.code == 235 ? 1 : 0;
            reply_format(&rp, out->auth_reply, sizeof out->auth_reply);
        } else {
            snprintf(out->auth_reply, sizeof out->auth_reply, "%s", why);
        }
        secret_mask(out->auth_reply, t->username, t->password);
    } else {
        snprintf(out->auth_reply, sizeof out->auth_reply, "not tried: out of memory");
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
    bool auth_wanted = t->username && t->password;
    if (auth_wanted)
        snprintf(out->auth_reply, sizeof out->auth_reply,
                 "not tried: the session ended before AUTH");
    SSL_CTX *ctx = NULL;
    int64_t reply_ms =
        t->command_timeout_ms > 0 && t->command_timeout_ms < PREFLIGHT_SMTP_REPLY_MAX_MS
            ? t->command_timeout_ms
            : PREFLIGHT_SMTP_REPLY_MAX_MS;
    int64_t quit_ms = reply_ms < PREFLIGHT_SMTP_QUIT_MAX_MS ? reply_ms : PREFLIGHT_SMTP_QUIT_MAX_MS;
    int64_t conn_ms = t->connect_timeout_ms > 0 ? t->connect_timeout_ms : 30000;

    /* Resolve: the address families of the source IP only, when one is bound. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    unsigned char b[16];
    if (t->source_ip)
        hints.ai_family = inet_pton(AF_INET, t->source_ip, b) == 1 ? AF_INET : AF_INET6;
    const char *target = t->address ? t->address : t->host;
    if (inet_pton(AF_INET, target, b) == 1 || inet_pton(AF_INET6, target, b) == 1)
        hints.ai_flags = AI_NUMERICHOST;
    char port[16];
    snprintf(port, sizeof port, "%d", t->port);
    struct addrinfo *ai = NULL;
    int gr = getaddrinfo(target, port, &hints, &ai);
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
    struct preflight_smtp_conn *c = calloc(1, sizeof *c);
    if (!c) {
        freeaddrinfo(ai);
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    c->fd = preflight_smtp_connect(ai->ai_addr, ai->ai_addrlen, t->source_ip, conn_ms, out);
    freeaddrinfo(ai);
    if (c->fd < 0) {
        free(c);
        return IPW_OK;
    }
    out->connected = true;

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        close(c->fd);
        free(c);
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

    struct reply rp;
    const char *raw;
    size_t raw_len;
    char why[256];
    bool to = false;
    if (t->implicit_tls && !preflight_smtp_tls(c, ctx, t, reply_ms, out))
        goto done;
    preflight_smtp_step(c, reply_ms);
    enum preflight_smtp_fail f = preflight_smtp_reply(c, &rp, NULL, NULL);
    if (f != PREFLIGHT_SMTP_OK || rp.code != 220) {
        out->greeting_code = f == PREFLIGHT_SMTP_OK ? rp.code : 0;
        out->timed_out = f == PREFLIGHT_SMTP_TIMEOUT;
        if (f == PREFLIGHT_SMTP_OK)
            reply_format(&rp, why, sizeof why);
        else
            preflight_smtp_why(c, f, "greeting", why, sizeof why);
        snprintf(out->error, sizeof out->error, "%s%.200s",
                 f == PREFLIGHT_SMTP_OK ? "the greeting is not 220: " : "", why);
        goto done;
    }
    out->greeting_code = 220;
    char ehlo[300];
    snprintf(ehlo, sizeof ehlo, "EHLO %s", t->helo ? t->helo : "localhost");
    if (!preflight_smtp_command(c, ehlo, reply_ms, "reply to EHLO", &rp, &raw, &raw_len, why,
                                sizeof why, &to)) {
        out->timed_out = to;
        snprintf(out->error, sizeof out->error, "EHLO failed: %.200s", why);
        goto done;
    }
    reply_format(&rp, out->ehlo_reply, sizeof out->ehlo_reply);
    if (rp.code != 250) {
        snprintf(out->error, sizeof out->error, "EHLO refused: %.200s", out->ehlo_reply);
        goto done;
    }
    out->ehlo_ok = true;
    preflight_smtp_ehlo_parse(raw, raw_len, out);
    if (!c->ssl && out->starttls_offered) {
        if (!preflight_smtp_command(c, "STARTTLS", reply_ms, "reply to STARTTLS", &rp, NULL, NULL,
                                    why, sizeof why, &to)) {
            out->timed_out = to;
            snprintf(out->tls_error, sizeof out->tls_error, "STARTTLS failed: %.200s", why);
            goto done;
        }
        if (rp.code != 220) {
            reply_format(&rp, why, sizeof why);
            snprintf(out->tls_error, sizeof out->tls_error, "STARTTLS refused: %.200s", why);
            goto done;
        }
        if (!preflight_smtp_tls(c, ctx, t, reply_ms, out))
            goto done;
        /* RFC 3207 4.2: forget what the server said before TLS, and ask again. */
        if (!preflight_smtp_command(c, ehlo, reply_ms, "reply to EHLO over TLS", &rp, &raw,
                                    &raw_len, why, sizeof why, &to)) {
            out->timed_out = to;
            snprintf(out->error, sizeof out->error, "EHLO over TLS failed: %.200s", why);
            goto done;
        }
        reply_format(&rp, out->ehlo_reply, sizeof out->ehlo_reply);
        if (rp.code != 250) {
            snprintf(out->error, sizeof out->error, "EHLO over TLS refused: %.200s",
                     out->ehlo_reply);
            goto done;
        }
        bool had = out->starttls_offered;
        preflight_smtp_ehlo_parse(raw, raw_len, out);
        out->starttls_offered = had;
    }
    if (auth_wanted) {
        if (!c->ssl)
            snprintf(out->auth_reply, sizeof out->auth_reply,
                     "not tried: the server offers no TLS, and the password never goes in "
                     "clear");
        else if (!out->auth_offered)
            snprintf(out->auth_reply, sizeof out->auth_reply, "the server offers no AUTH");
        else
            preflight_smtp_auth(c, t, reply_ms, out, &to);
    }
    if (preflight_smtp_command(c, "QUIT", quit_ms, "reply to QUIT", &rp, NULL, NULL, why,
                               sizeof why, &to)) {
        /* the reply does not matter */
    }
done:
    if (c->ssl) {
        /* A close_notify without waiting for the server's: the probe is over. */
        SSL_set_quiet_shutdown(c->ssl, 1);
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    SSL_CTX_free(ctx);
    close(c->fd);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
    return IPW_OK;
}

/* Bytes of a file, and whether it holds a byte outside ASCII; 0 when it cannot be read (the
 * plan loader refused it already). A FIFO is not waited on. */
static uint64_t preflight_smtp_file_size(const char *path, bool *non_ascii)
{
    int fd = infile_open_fd(path, NULL);
    if (fd < 0)
        return 0;
    uint64_t n = 0;
    unsigned char buf[8192];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR)) {
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] & 0x80)
                *non_ascii = true;
        n += r > 0 ? (uint64_t)r : 0;
    }
    close(fd);
    return n;
}

/* A body part as sent: base64 (4/3, in lines of 76 plus CRLF) when it is not ASCII. */
static uint64_t preflight_smtp_encoded(uint64_t n, bool non_ascii)
{
    if (!non_ascii)
        return n;
    uint64_t b64 = BASE64_LEN(n);
    return b64 + (b64 + BASE64_MIME_LINE - 1) / BASE64_MIME_LINE * 2;
}

uint64_t preflight_message_size(const struct plan *p)
{
    uint64_t total = 2048; /* headers, MIME boundaries, DKIM-Signature */
    bool na = false;
    if (p->text) {
        for (const char *s = p->text; *s; s++)
            if (*s & 0x80)
                na = true;
        total += preflight_smtp_encoded(strlen(p->text), na);
    } else if (p->text_file) {
        uint64_t n = preflight_smtp_file_size(p->text_file, &na);
        total += preflight_smtp_encoded(n, na);
    }
    if (p->html_file) {
        na = false;
        uint64_t n = preflight_smtp_file_size(p->html_file, &na);
        total += preflight_smtp_encoded(n, na);
    }
    return total;
}

/* ---- the checks ---- */

/* Reads the relay password (never printed) with secret_password_read. Returns a malloc'd
 * string, or NULL with why (empty only when out of memory). */
static char *preflight_smtp_password(const struct plan *p, char *why, size_t n)
{
    if (!p->relay_password_env && !p->relay_password_file) {
        snprintf(why, n, "no password configured (transport.relay.password_env or password_file)");
        return NULL;
    }
    char *pw = NULL;
    struct err e;
    ipw_status s = secret_password_read(p->relay_password_env, p->relay_password_file,
                                        p->relay_password_env ? "transport.relay.password_env"
                                                              : "transport.relay.password_file",
                                        &pw, &e);
    if (s != IPW_OK && s != IPW_ENOMEM && n > 0) {
        size_t l = strnlen(e.msg, n - 1);
        memcpy(why, e.msg, l);
        why[l] = '\0';
    }
    return pw;
}

static const char *preflight_smtp_tls_name(int v)
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
static ipw_status preflight_smtp_report(struct preflight_report *r, const struct plan *p,
                                        const char *subject, const char *label,
                                        const struct preflight_smtp_target *t,
                                        const struct preflight_smtp_probe *pr, bool relay,
                                        const char *pw_why, struct err *e)
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
    const char *tmin = preflight_smtp_tls_name(p->tls_min);
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

static ipw_status preflight_smtp_relay(struct preflight_report *r, const struct plan *p,
                                       struct dns *dns, struct err *e)
{
    struct preflight_smtp_target t = {.helo = p->helo,
                                      .verify = true,
                                      .ca_file = p->relay_ca_file,
                                      .connect_timeout_ms = p->connect_timeout_ms,
                                      .command_timeout_ms = p->command_timeout_ms,
                                      .username = p->relay_username};
    /* The plan read the URL once (plan.c); the engine connects where these say. */
    const char *host = p->relay_host ? p->relay_host : "";
    t.host = host;
    t.port = p->relay_port;
    t.implicit_tls = p->relay_implicit_tls;
    struct preflight_smtp_probe pr;
    memset(&pr, 0, sizeof pr);
    char **addrs = NULL;
    size_t n_addrs = 0;
    struct err de;
    ipw_status rs = dns_host_addresses(dns, host, &addrs, &n_addrs, &de);
    if (rs == IPW_ENOMEM)
        return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    if (rs != IPW_OK) {
        /* preflight_smtp_report names it as a host that does not resolve, with the look-up to try.
         */
        snprintf(pr.error, sizeof pr.error, "%.80s does not resolve: %.150s", host, de.msg);
        char subject[300];
        snprintf(subject, sizeof subject, "relay %s", host);
        return preflight_smtp_report(r, p, subject, host, &t, &pr, true, "", e);
    }
    char address[64];
    snprintf(address, sizeof address, "%s", addrs[0]);
    dns_addresses_free(addrs, n_addrs);
    t.address = address;
    char why[300] = "";
    char *pw = NULL;
    if (p->relay_username) {
        pw = preflight_smtp_password(p, why, sizeof why);
        if (!pw && !why[0])
            return err_set(e, IPW_ENOMEM, "preflight: out of memory");
    }
    t.password = pw;
    ipw_status s = preflight_smtp_probe(&t, &pr, e);
    secret_free(pw);
    if (s != IPW_OK)
        return s;
    char subject[300];
    snprintf(subject, sizeof subject, "relay %s", host);
    return preflight_smtp_report(r, p, subject, host, &t, &pr, true, why, e);
}

/* The first address of the source IP's family among an MX host's addresses, or NULL. */
static const char *preflight_smtp_pick_address(const struct dns_mx_host *h, const char *source_ip)
{
    bool want6 = source_ip && strchr(source_ip, ':');
    for (size_t i = 0; i < h->n_addresses; i++)
        if ((strchr(h->addresses[i], ':') != NULL) == want6)
            return h->addresses[i];
    return NULL;
}

static ipw_status preflight_smtp_direct(struct preflight_report *r, const struct plan *p,
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
                addr = preflight_smtp_pick_address(&mx->hosts[h], src);
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
        if ((s = preflight_smtp_report(r, p, subject, host->host, &t, &pr, false, NULL, e)) !=
            IPW_OK)
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

ipw_status preflight_smtp(struct preflight_report *r, const struct plan *p, struct dns *dns,
                          const struct preflight_domains *d, struct err *e)
{
    if (p->mode == PLAN_RELAY)
        return preflight_smtp_relay(r, p, dns, e);
    return preflight_smtp_direct(r, p, d, e);
}
