/*
 * imap: an IMAP4rev1 client over a libcurl connection (see imap.h).
 *
 * Follows RFC 3501 (commands CAPABILITY, EXAMINE, UID SEARCH, UID FETCH, LIST, LOGOUT;
 * responses with literals "{n}\r\n"; modified UTF-7 folder names, 5.1.3), RFC 6154 (special-use
 * attributes, LIST RETURN (SPECIAL-USE) where LIST-EXTENDED is offered, RFC 5258), RFC 2595 and
 * RFC 8314 (STARTTLS required, or TLS from the start; done by libcurl).
 *
 * libcurl connects, secures and logs in (CURLOPT_CONNECT_ONLY), then this file sends tagged
 * commands with curl_easy_send() and reads responses with curl_easy_recv(), polling the socket
 * with the time left before the command's deadline. A response is its lines and literals
 * joined as the server sent them; a small tokenizer reads atoms, quoted strings, literals and
 * lists from it. Every read is bounded: IMAP_MAX_RESPONSE bytes of lines per response, the
 * literal of a message at most max_message_bytes (asked as a partial fetch, <0.max>), and the
 * command deadline. A timeout or a broken response marks the session broken: the server's
 * state is then unknown, so nothing more is sent on that connection.
 */
#include "ipwarm/imap.h"

#include "ipwarm/base64.h"
#include "ipwarm/buf.h"
#include "ipwarm/chars.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#define IMAP_DEFAULT_CONNECT_MS 30000
#define IMAP_DEFAULT_COMMAND_MS 60000
#define IMAP_DEFAULT_MAX_BYTES  (4u * 1024 * 1024)
#define IMAP_MAX_RESPONSE       (8u * 1024 * 1024) /* bytes of lines in one response */
#define IMAP_LOGOUT_MS          2000
#define IMAP_PASSWORD_MAX       1024
#define IMAP_TOKEN_MAX          16384 /* access tokens are JWTs of a few KiB */

struct imap {
    CURL *curl;
    curl_socket_t sock;
    char name[512]; /* "imaps://host:993 (user u)" */
    char *caps;     /* the CAPABILITY response, upper case */
    /* during the login (XOAUTH2 only): whether the server listed its capabilities, and whether
     * the last list offered AUTH=XOAUTH2 */
    bool login_caps_seen, login_offers_xoauth2;
    int64_t command_ms;
    int64_t session_deadline; /* monotonic ms, 0 = none */
    size_t max_bytes;
    unsigned tag;
    bool broken;
    /* receive buffer: bytes [start, end) not yet consumed */
    char *buf;
    size_t start, end, cap;
    /* the response being read */
    struct buf resp;
};

static int64_t imap_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------------------- */
/* Passwords */

void imap_password_free(char *password)
{
    if (password) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
}

/*
 * Reads a secret (what: "password" or "OAuth 2.0 access token") from the environment variable
 * env, or else from the first line of file, at most max bytes, without its line end. A token
 * file is read again at each login, so the operator's tooling may rewrite it between polls;
 * with token, trailing blanks a helper may leave are dropped too (a password keeps them: a
 * blank may be part of it, a token never has one).
 */
static ipw_status imap_secret_read(const char *env, const char *file, const char *key,
                                   const char *what, const char *keys, size_t max, bool token,
                                   char **out, struct err *e)
{
    *out = NULL;
    if (env) {
        const char *v = getenv(env);
        if (!v)
            return err_set(e, IPW_ECONFIG,
                           "%s: the environment variable %s is not set; export the mailbox %s "
                           "in it",
                           key, env, what);
        if (!*v)
            return err_set(e, IPW_ECONFIG,
                           "%s: the environment variable %s is empty: expected the mailbox %s", key,
                           env, what);
        *out = strdup(v);
        return *out ? IPW_OK : err_set(e, IPW_ENOMEM, "out of memory reading a %s", what);
    }
    if (!file)
        return err_set(e, IPW_ECONFIG, "%s: no %s", key, keys);
    FILE *f = fopen(file, "r");
    if (!f)
        return err_set(e, IPW_ECONFIG, "%s: cannot read %s: %s", key, file, strerror(errno));
    char *buf = malloc(max + 2);
    if (!buf) {
        fclose(f);
        return err_set(e, IPW_ENOMEM, "out of memory reading a %s", what);
    }
    size_t n = fread(buf, 1, max + 1, f);
    fclose(f);
    buf[n] = '\0';
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    while (token && n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    ipw_status st = IPW_OK;
    if (!buf[0])
        st = err_set(e, IPW_ECONFIG, "%s: %s is empty: expected the %s on its first line", key,
                     file, what);
    else if (n > max)
        st = err_set(e, IPW_ECONFIG, "%s: the first line of %s is longer than %zu bytes", key, file,
                     max);
    else if (!(*out = strdup(buf)))
        st = err_set(e, IPW_ENOMEM, "out of memory reading a %s", what);
    OPENSSL_cleanse(buf, max + 2);
    free(buf);
    return st;
}

ipw_status imap_password_read(const char *env, const char *file, const char *key, char **out,
                              struct err *e)
{
    return imap_secret_read(env, file, key, "password", "password_env or password_file",
                            IMAP_PASSWORD_MAX, false, out, e);
}

ipw_status imap_token_read(const char *env, const char *file, const char *key, char **out,
                           struct err *e)
{
    ipw_status st =
        imap_secret_read(env, file, key, "OAuth 2.0 access token",
                         "oauth2_token_env or oauth2_token_file", IMAP_TOKEN_MAX, true, out, e);
    /* the token goes into a SASL message (user=...^Aauth=Bearer TOKEN^A^A): only printable
     * ASCII without spaces belongs in a bearer token (RFC 6750 2.1) */
    for (const char *q = st == IPW_OK ? *out : ""; *q; q++) {
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q > 0x7e) {
            imap_password_free(*out);
            *out = NULL;
            return err_set(e, IPW_ECONFIG,
                           "%s: the token holds a space or a character that is not printable "
                           "ASCII: expected a bearer access token (RFC 6750)",
                           key);
        }
    }
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Modified UTF-7 (RFC 3501 5.1.3): "&" + base64 of UTF-16BE with "," for "/" + "-". */

/* Appends the modified base64 of the UTF-16BE bytes u[0..n) at out + *o: base64 without
 * padding, with "," for "/". */
static void imap_utf7_b64(const unsigned char *u, size_t n, char *out, size_t *o)
{
    size_t w = base64_encode(u, n, out + *o);
    while (w > 0 && out[*o + w - 1] == '=')
        w--;
    for (size_t k = 0; k < w; k++)
        if (out[*o + k] == '/')
            out[*o + k] = ',';
    *o += w;
}

char *imap_utf7_encode(const char *s)
{
    size_t n = strlen(s);
    /* room for "&", the padded base64 of two UTF-16 bytes per input byte, "-" and the NUL */
    char *out = malloc(n * 6 + 8);
    unsigned char *u16 = malloc(n * 2 + 1);
    if (!out || !u16) {
        free(u16);
        free(out);
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
            if (c == '&')
                out[o++] = '-';
            i++;
            continue;
        }
        /* a run of non-ASCII characters, as UTF-16BE in modified base64 */
        size_t nu = 0;
        out[o++] = '&';
        while (i < n && ((unsigned char)s[i] >= 0x80 || (unsigned char)s[i] < 0x20)) {
            unsigned char b = (unsigned char)s[i];
            uint32_t cp;
            size_t len;
            if (b < 0x80)
                cp = b, len = 1;
            else if ((b & 0xe0) == 0xc0)
                cp = b & 0x1f, len = 2;
            else if ((b & 0xf0) == 0xe0)
                cp = b & 0x0f, len = 3;
            else if ((b & 0xf8) == 0xf0)
                cp = b & 0x07, len = 4;
            else
                goto bad;
            if (i + len > n)
                goto bad;
            for (size_t k = 1; k < len; k++) {
                if (((unsigned char)s[i + k] & 0xc0) != 0x80)
                    goto bad;
                cp = cp << 6 | ((unsigned char)s[i + k] & 0x3f);
            }
            i += len;
            uint16_t units[2];
            int nunits = 1;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[0] = (uint16_t)(0xd800 | (cp >> 10));
                units[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
                nunits = 2;
            } else {
                units[0] = (uint16_t)cp;
            }
            for (int k = 0; k < nunits; k++) {
                u16[nu++] = (unsigned char)(units[k] >> 8);
                u16[nu++] = (unsigned char)(units[k] & 0xff);
            }
        }
        imap_utf7_b64(u16, nu, out, &o);
        out[o++] = '-';
    }
    out[o] = '\0';
    free(u16);
    return out;
bad:
    free(u16);
    free(out);
    return NULL;
}

static void imap_utf8_put(char *out, size_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xc0 | cp >> 6);
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xe0 | cp >> 12);
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*o)++] = (char)(0xf0 | cp >> 18);
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    }
}

char *imap_utf7_decode(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 2 + 1);
    char *run = malloc(n + 1);
    unsigned char *u16 = malloc(n + 1);
    if (!out || !run || !u16)
        goto bad;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '&') {
            out[o++] = s[i++];
            continue;
        }
        i++;
        if (i < n && s[i] == '-') {
            out[o++] = '&';
            i++;
            continue;
        }
        /* the modified base64 up to "-", back to plain base64 ("," for "/"); padding, white
         * space and "/" itself are not part of the modified alphabet */
        size_t nr = 0;
        for (; i < n && s[i] != '-'; i++) {
            char c = s[i];
            if (c == '/' || c == '=' || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
                c == '\v' || c == '\f')
                goto bad;
            run[nr++] = c == ',' ? '/' : c;
        }
        if (i >= n)
            goto bad;
        i++; /* '-' */
        size_t nb = 0;
        if (!base64_decode(run, nr, u16, &nb))
            goto bad;
        uint32_t high = 0;
        for (size_t k = 0; k + 1 < nb; k += 2) { /* an odd last byte is a partial unit */
            uint32_t u = (uint32_t)u16[k] << 8 | u16[k + 1];
            if (u >= 0xd800 && u < 0xdc00) {
                high = u;
            } else if (u >= 0xdc00 && u < 0xe000) {
                if (!high)
                    goto bad;
                imap_utf8_put(out, &o, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
                high = 0;
            } else {
                imap_utf8_put(out, &o, u);
            }
        }
        if (high)
            goto bad;
    }
    out[o] = '\0';
    free(u16);
    free(run);
    return out;
bad:
    free(u16);
    free(run);
    free(out);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Errors */

const char *imap_name(const struct imap *s)
{
    return s ? s->name : "";
}

/* Marks the session broken and says why. */
static ipw_status imap_fail(struct imap *s, struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ipw_status imap_fail(struct imap *s, struct err *e, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    s->broken = true;
    return err_set(e, IPW_EUNAVAIL, "IMAP mailbox %s: %s", s->name, what);
}

/* ---------------------------------------------------------------------------------------- */
/* Sending and receiving */

static int64_t imap_deadline(const struct imap *s, int64_t step_ms)
{
    int64_t d = imap_now_ms() + step_ms;
    if (s->session_deadline && s->session_deadline < d)
        d = s->session_deadline;
    return d;
}

static ipw_status imap_wait(struct imap *s, short events, int64_t deadline, const char *doing,
                            struct err *e)
{
    for (;;) {
        int64_t left = deadline - imap_now_ms();
        if (left <= 0)
            return imap_fail(s, e, "no answer within the time limit while %s", doing);
        struct pollfd p = {.fd = s->sock, .events = events};
        int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r > 0)
            return IPW_OK;
        if (r < 0 && errno != EINTR)
            return imap_fail(s, e, "poll failed while %s: %s", doing, strerror(errno));
    }
}

/* Sends out[0..len) or receives into in[0..len) (the other is NULL), waiting on the socket
 * while libcurl says it would block; *n is the count moved (0 on a receive: the peer closed). */
static ipw_status imap_transfer(struct imap *s, const char *out, char *in, size_t len, size_t *n,
                                int64_t deadline, const char *doing, struct err *e)
{
    for (;;) {
        *n = 0;
        CURLcode rc =
            out ? curl_easy_send(s->curl, out, len, n) : curl_easy_recv(s->curl, in, len, n);
        if (rc == CURLE_OK)
            return IPW_OK;
        if (rc != CURLE_AGAIN)
            return imap_fail(s, e, "the connection failed while %s: %s", doing,
                             curl_easy_strerror(rc));
        ipw_status st = imap_wait(s, out ? POLLOUT : POLLIN, deadline, doing, e);
        if (st)
            return st;
    }
}

static ipw_status imap_send(struct imap *s, const char *data, size_t len, int64_t deadline,
                            const char *doing, struct err *e)
{
    size_t done = 0;
    while (done < len) {
        size_t n;
        ipw_status st = imap_transfer(s, data + done, NULL, len - done, &n, deadline, doing, e);
        if (st)
            return st;
        done += n;
    }
    return IPW_OK;
}

/* Reads more bytes into the receive buffer. */
static ipw_status imap_fill(struct imap *s, int64_t deadline, const char *doing, struct err *e)
{
    if (s->start > 0 && s->start == s->end)
        s->start = s->end = 0;
    if (s->cap - s->end < 16384) {
        if (s->start > 0) {
            memmove(s->buf, s->buf + s->start, s->end - s->start);
            s->end -= s->start;
            s->start = 0;
        }
        if (s->cap - s->end < 16384) {
            size_t cap = s->cap ? s->cap * 2 : 65536;
            char *b = realloc(s->buf, cap);
            if (!b)
                return imap_fail(s, e, "out of memory while %s", doing);
            s->buf = b;
            s->cap = cap;
        }
    }
    size_t n;
    ipw_status st =
        imap_transfer(s, NULL, s->buf + s->end, s->cap - s->end, &n, deadline, doing, e);
    if (st)
        return st;
    if (n == 0)
        return imap_fail(s, e, "the server closed the connection while %s", doing);
    s->end += n;
    return IPW_OK;
}

static ipw_status imap_resp_add(struct imap *s, const char *p, size_t n, const char *doing,
                                struct err *e)
{
    buf_put(&s->resp, p, n);
    if (s->resp.oom)
        return imap_fail(s, e, "out of memory while %s", doing);
    return IPW_OK;
}

/* Reads one whole response (lines and their literals) into s->resp. */
static ipw_status imap_read_response(struct imap *s, int64_t deadline, const char *doing,
                                     struct err *e)
{
    s->resp.len = 0;
    size_t lines = 0; /* bytes of lines (not literals) */
    for (;;) {
        char *nl = s->end > s->start ? memchr(s->buf + s->start, '\n', s->end - s->start) : NULL;
        if (!nl) {
            if (lines + (s->end - s->start) > IMAP_MAX_RESPONSE)
                return imap_fail(s, e, "a response line longer than %u bytes while %s",
                                 IMAP_MAX_RESPONSE, doing);
            ipw_status st = imap_fill(s, deadline, doing, e);
            if (st)
                return st;
            continue;
        }
        size_t n = (size_t)(nl - (s->buf + s->start)) + 1;
        lines += n;
        if (lines > IMAP_MAX_RESPONSE)
            return imap_fail(s, e, "a response longer than %u bytes while %s", IMAP_MAX_RESPONSE,
                             doing);
        ipw_status st = imap_resp_add(s, s->buf + s->start, n, doing, e);
        if (st)
            return st;
        s->start += n;
        /* a line ending in {N} announces N bytes of literal, then the line goes on */
        size_t l = s->resp.len;
        size_t end = l - 1;
        if (end > 0 && s->resp.p[end - 1] == '\r')
            end--;
        if (end == 0 || s->resp.p[end - 1] != '}')
            return IPW_OK;
        size_t k = end - 1;
        while (k > 0 && chars_is_digit((unsigned char)s->resp.p[k - 1]))
            k--;
        if (k == 0 || s->resp.p[k - 1] != '{' || k == end - 1)
            return IPW_OK;
        char *stop = NULL;
        unsigned long long lit = strtoull(s->resp.p + k, &stop, 10);
        if (lit > s->max_bytes + 65536u)
            return imap_fail(s, e, "a literal of %llu bytes, more than asked for, while %s", lit,
                             doing);
        size_t want = (size_t)lit;
        while (want > 0) {
            if (s->end == s->start) {
                st = imap_fill(s, deadline, doing, e);
                if (st)
                    return st;
            }
            size_t take = s->end - s->start < want ? s->end - s->start : want;
            st = imap_resp_add(s, s->buf + s->start, take, doing, e);
            if (st)
                return st;
            s->start += take;
            want -= take;
        }
    }
}

typedef ipw_status (*imap_untagged_fn)(struct imap *s, const char *resp, size_t len, void *arg,
                                       struct err *e);

/*
 * Sends "TAG command" and reads the responses up to the tagged one, handing each untagged
 * response to fn. Returns IPW_OK for OK; IPW_ENOTFOUND for NO (the server's text in e);
 * IPW_EUNAVAIL for BAD, BYE, a broken connection or the deadline.
 */
static ipw_status imap_command(struct imap *s, const char *command, imap_untagged_fn fn, void *arg,
                               struct err *e)
{
    if (s->broken)
        return err_set(e, IPW_EUNAVAIL, "IMAP mailbox %s: the connection was lost earlier",
                       s->name);
    char tag[16];
    snprintf(tag, sizeof tag, "W%u", ++s->tag);
    size_t cl = strlen(command);
    char *line = malloc(strlen(tag) + cl + 4);
    if (!line)
        return imap_fail(s, e, "out of memory");
    int n = snprintf(line, strlen(tag) + cl + 4, "%s %s\r\n", tag, command);
    /* name the command in messages by its first words only (never a long argument) */
    char doing[64];
    snprintf(doing, sizeof doing, "waiting for %.40s", command);
    int64_t deadline = imap_deadline(s, s->command_ms);
    ipw_status st = imap_send(s, line, (size_t)n, deadline, doing, e);
    free(line);
    if (st)
        return st;
    size_t tl = strlen(tag);
    for (;;) {
        st = imap_read_response(s, deadline, doing, e);
        if (st)
            return st;
        const char *r = s->resp.p;
        size_t len = s->resp.len;
        if (len > tl && strncmp(r, tag, tl) == 0 && r[tl] == ' ') {
            const char *status = r + tl + 1;
            if (strncasecmp(status, "OK", 2) == 0)
                return IPW_OK;
            char text[200];
            size_t tlen = strcspn(status, "\r\n");
            snprintf(text, sizeof text, "%.*s", (int)(tlen > 190 ? 190 : tlen), status);
            for (char *q = text; *q; q++)
                if ((unsigned char)*q < 0x20)
                    *q = ' ';
            if (strncasecmp(status, "NO", 2) == 0)
                return err_set(e, IPW_ENOTFOUND, "IMAP mailbox %s: %s: %s", s->name, command, text);
            return imap_fail(s, e, "%.40s: %s", command, text);
        }
        if (len >= 5 && strncasecmp(r, "* BYE", 5) == 0)
            return imap_fail(s, e, "the server said goodbye: %.*s", (int)strcspn(r, "\r\n"), r);
        if (len >= 2 && r[0] == '*' && r[1] == ' ' && fn) {
            st = fn(s, r + 2, len - 2, arg, e);
            if (st)
                return st;
        }
        /* anything else (a continuation we did not ask for) is skipped */
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Reading responses */

struct imap_tok {
    const char *p, *end;
};

static void imap_skip_sp(struct imap_tok *t)
{
    while (t->p < t->end && *t->p == ' ')
        t->p++;
}

/* An unsigned number (at most 2^32-1 unless wide). */
static bool imap_number(struct imap_tok *t, uint64_t *v, uint64_t max)
{
    imap_skip_sp(t);
    if (t->p >= t->end || !chars_is_digit((unsigned char)*t->p))
        return false;
    uint64_t x = 0;
    while (t->p < t->end && chars_is_digit((unsigned char)*t->p)) {
        x = x * 10 + (uint64_t)(*t->p - '0');
        if (x > max)
            return false;
        t->p++;
    }
    *v = x;
    return true;
}

/* An atom, quoted string, literal or NIL: *s and *n point at its bytes (a quoted string's
 * escapes are left in place: callers compare names, and IMAP names seldom hold them).
 * Returns false at a list, the end, or a malformed item. */
static bool imap_string(struct imap_tok *t, const char **s, size_t *n, bool *nil)
{
    imap_skip_sp(t);
    *nil = false;
    if (t->p >= t->end)
        return false;
    if (*t->p == '"') {
        const char *q = ++t->p;
        while (t->p < t->end && *t->p != '"') {
            if (*t->p == '\\' && t->p + 1 < t->end)
                t->p++;
            t->p++;
        }
        if (t->p >= t->end)
            return false;
        *s = q;
        *n = (size_t)(t->p - q);
        t->p++;
        return true;
    }
    if (*t->p == '{') {
        char *stop = NULL;
        unsigned long long lit = strtoull(t->p + 1, &stop, 10);
        if (!stop || *stop != '}' || stop + 1 >= t->end)
            return false;
        const char *q = stop + 1;
        if (*q == '\r')
            q++;
        if (q >= t->end || *q != '\n' || lit > (unsigned long long)(t->end - q - 1))
            return false;
        *s = q + 1;
        *n = (size_t)lit;
        t->p = q + 1 + lit;
        return true;
    }
    if (*t->p == '(' || *t->p == ')')
        return false;
    const char *q = t->p;
    while (t->p < t->end && !strchr(" ()\r\n", *t->p)) {
        if (*t->p == '[') { /* BODY[...]<0>: brackets belong to the atom */
            while (t->p < t->end && *t->p != ']' && *t->p != '\n')
                t->p++;
            if (t->p < t->end && *t->p == ']')
                t->p++;
            continue;
        }
        t->p++;
    }
    *s = q;
    *n = (size_t)(t->p - q);
    *nil = *n == 3 && strncasecmp(q, "NIL", 3) == 0;
    return *n > 0;
}

/* Inside a parenthesized list: 1 when an item follows (spaces skipped), 0 at the closing
 * parenthesis (consumed), -1 when the text ends first. */
static int imap_list_next(struct imap_tok *t)
{
    imap_skip_sp(t);
    if (t->p >= t->end)
        return -1;
    if (*t->p != ')')
        return 1;
    t->p++;
    return 0;
}

/* Skips one item: a string of any form, or a parenthesized list (nested). */
static bool imap_skip_item(struct imap_tok *t, int depth)
{
    imap_skip_sp(t);
    if (t->p >= t->end || depth > 16)
        return false;
    if (*t->p == '(') {
        t->p++;
        for (;;) {
            int more = imap_list_next(t);
            if (more <= 0)
                return more == 0;
            if (!imap_skip_item(t, depth + 1))
                return false;
        }
    }
    const char *s;
    size_t n;
    bool nil;
    return imap_string(t, &s, &n, &nil);
}

static bool imap_word_is(const char *s, size_t n, const char *w)
{
    return n == strlen(w) && strncasecmp(s, w, n) == 0;
}

/* Reads "(\Flag \Flag ...)" into IMAP_FLAG_* or IMAP_MBOX_* bits (mbox selects which). */
static bool imap_flag_list(struct imap_tok *t, bool mbox, unsigned *bits)
{
    static const struct {
        const char *name;
        unsigned bit;
    } flags[] = {{"\\Seen", IMAP_FLAG_SEEN},
                 {"\\Answered", IMAP_FLAG_ANSWERED},
                 {"\\Flagged", IMAP_FLAG_FLAGGED},
                 {"\\Deleted", IMAP_FLAG_DELETED},
                 {"\\Draft", IMAP_FLAG_DRAFT}},
      attrs[] = {{"\\Noselect", IMAP_MBOX_NOSELECT}, {"\\NonExistent", IMAP_MBOX_NOSELECT},
                 {"\\Junk", IMAP_MBOX_JUNK},         {"\\Trash", IMAP_MBOX_TRASH},
                 {"\\Sent", IMAP_MBOX_SENT},         {"\\Drafts", IMAP_MBOX_DRAFTS},
                 {"\\Archive", IMAP_MBOX_ARCHIVE},   {"\\All", IMAP_MBOX_ALL},
                 {"\\Flagged", IMAP_MBOX_FLAGGED}};
    *bits = 0;
    imap_skip_sp(t);
    if (t->p >= t->end || *t->p != '(')
        return false;
    t->p++;
    for (;;) {
        int more = imap_list_next(t);
        if (more <= 0)
            return more == 0;
        const char *s;
        size_t n;
        bool nil;
        if (!imap_string(t, &s, &n, &nil))
            return false;
        size_t count = mbox ? sizeof attrs / sizeof *attrs : sizeof flags / sizeof *flags;
        for (size_t i = 0; i < count; i++)
            if (imap_word_is(s, n, mbox ? attrs[i].name : flags[i].name))
                *bits |= mbox ? attrs[i].bit : flags[i].bit;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Connecting */

static ipw_status imap_caps_cb(struct imap *s, const char *r, size_t len, void *arg, struct err *e)
{
    (void)arg;
    (void)e;
    if (len >= 11 && strncasecmp(r, "CAPABILITY ", 11) == 0) {
        free(s->caps);
        size_t n = strcspn(r + 11, "\r\n");
        s->caps = malloc(n + 3);
        if (s->caps) {
            s->caps[0] = ' ';
            for (size_t i = 0; i < n; i++)
                s->caps[i + 1] = (char)chars_upper((unsigned char)r[11 + i]);
            s->caps[n + 1] = ' ';
            s->caps[n + 2] = '\0';
        }
    }
    return IPW_OK;
}

bool imap_has_capability(const struct imap *s, const char *cap)
{
    if (!s || !s->caps)
        return false;
    char want[64];
    int n = snprintf(want, sizeof want, " %s ", cap);
    if (n <= 0 || (size_t)n >= sizeof want)
        return false;
    for (char *q = want; *q; q++)
        *q = (char)chars_upper((unsigned char)*q);
    return strstr(s->caps, want) != NULL;
}

/*
 * libcurl's debug callback during an XOAUTH2 login: watches the lines the server sends for its
 * capabilities, so that a login refused because the server offers no XOAUTH2 can say so (libcurl
 * only says "login denied"). Only incoming lines are read: outgoing ones carry the token.
 */
static int imap_login_watch(CURL *c, curl_infotype type, char *data, size_t size, void *arg)
{
    (void)c;
    struct imap *s = arg;
    if (type != CURLINFO_HEADER_IN)
        return 0;
    char line[4096];
    size_t n = size < sizeof line - 1 ? size : sizeof line - 1;
    for (size_t i = 0; i < n; i++)
        line[i] = (char)chars_upper((unsigned char)data[i]);
    line[n] = '\0';
    if (strstr(line, "CAPABILITY ")) {
        s->login_caps_seen = true;
        s->login_offers_xoauth2 = strstr(line, " AUTH=XOAUTH2") != NULL;
    }
    return 0;
}

/* The scheme and authority of url ("imaps://host:993"), and whether it is imaps. */
static bool imap_base_url(const char *url, char *out, size_t size, bool *implicit_tls)
{
    const char *rest;
    if (strncasecmp(url, "imaps://", 8) == 0) {
        *implicit_tls = true;
        rest = url + 8;
    } else if (strncasecmp(url, "imap://", 7) == 0) {
        *implicit_tls = false;
        rest = url + 7;
    } else {
        return false;
    }
    size_t alen = strcspn(rest, "/?#;");
    if (alen == 0 || memchr(rest, '@', alen))
        return false;
    int n = snprintf(out, size, "%.*s%.*s/", (int)(rest - url), url, (int)alen, rest);
    return n > 0 && (size_t)n < size;
}

ipw_status imap_open(const struct imap_config *cfg, struct imap **out, struct err *e)
{
    *out = NULL;
    char base[300];
    bool implicit_tls = false;
    if (!cfg->url || !imap_base_url(cfg->url, base, sizeof base, &implicit_tls))
        return err_set(e, IPW_EUSAGE, "IMAP: %s is not an imap:// or imaps:// URL with a host",
                       cfg->url ? cfg->url : "(no URL)");
    struct imap *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, IPW_ENOMEM, "out of memory opening an IMAP session");
    snprintf(s->name, sizeof s->name, "%.*s (user %s)", (int)strlen(base) - 1, base,
             cfg->username ? cfg->username : "");
    int64_t connect_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : IMAP_DEFAULT_CONNECT_MS;
    s->command_ms = cfg->command_timeout_ms > 0 ? cfg->command_timeout_ms : IMAP_DEFAULT_COMMAND_MS;
    s->max_bytes = cfg->max_message_bytes ? cfg->max_message_bytes : IMAP_DEFAULT_MAX_BYTES;
    if (cfg->session_timeout_ms > 0) {
        s->session_deadline = imap_now_ms() + cfg->session_timeout_ms;
        if (cfg->session_timeout_ms < connect_ms)
            connect_ms = cfg->session_timeout_ms;
    }
    s->sock = CURL_SOCKET_BAD;
    s->curl = curl_easy_init();
    if (!s->curl) {
        free(s);
        return err_set(e, IPW_ENOMEM, "out of memory opening an IMAP session");
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *c = s->curl;
    curl_easy_setopt(c, CURLOPT_URL, base);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "imap,imaps");
    curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)connect_ms);
    /* each reply of the login may take the whole connect time (servers delay a failed login) */
    curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)((connect_ms + 999) / 1000));
    curl_easy_setopt(c, CURLOPT_USERNAME, cfg->username ? cfg->username : "");
    if (cfg->oauth2_token) {
        /* AUTHENTICATE XOAUTH2 with the initial response base64("user=U^Aauth=Bearer T^A^A")
         * (SASL-IR, RFC 4959, where offered); AUTH=XOAUTH2 keeps libcurl from falling back to
         * another mechanism or to LOGIN when the server does not offer it */
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, cfg->oauth2_token);
        curl_easy_setopt(c, CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
        curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, imap_login_watch);
        curl_easy_setopt(c, CURLOPT_DEBUGDATA, s);
        curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
    }
    if (!implicit_tls)
        curl_easy_setopt(c, CURLOPT_USE_SSL,
                         (long)(cfg->tls == IMAP_TLS_NONE ? CURLUSESSL_NONE : CURLUSESSL_ALL));
    if (cfg->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    CURLcode rc = curl_easy_perform(c);
    /* libcurl keeps its own copy of the password for the connection; drop the handle's */
    curl_easy_setopt(c, CURLOPT_PASSWORD, "");
    if (cfg->oauth2_token) {
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, NULL);
        curl_easy_setopt(c, CURLOPT_VERBOSE, 0L);
        curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, NULL);
    }
    ipw_status st = IPW_OK;
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OK:
        break;
    case CURLE_LOGIN_DENIED:
        if (cfg->oauth2_token && s->login_caps_seen && !s->login_offers_xoauth2)
            st = err_set(e, IPW_EUNAVAIL,
                         "IMAP mailbox %s: the server does not offer XOAUTH2 logins (its "
                         "capabilities list no AUTH=XOAUTH2): use a password for this mailbox, or "
                         "a server that accepts OAuth 2.0",
                         s->name);
        else if (cfg->oauth2_token)
            st = err_set(e, IPW_EUNAVAIL,
                         "IMAP mailbox %s: the server refused the XOAUTH2 login (check the OAuth "
                         "2.0 access token%s%s: it may have expired, or not be for this user)",
                         s->name, cfg->password_source ? " in " : "",
                         cfg->password_source ? cfg->password_source : "");
        else
            st = err_set(e, IPW_EUNAVAIL,
                         "IMAP mailbox %s: the server refused the login (check the password%s%s)",
                         s->name, cfg->password_source ? " in " : "",
                         cfg->password_source ? cfg->password_source : "");
        break;
    case CURLE_USE_SSL_FAILED:
        st = err_set(e, IPW_EUNAVAIL,
                     "IMAP mailbox %s: the server does not offer STARTTLS, and tls: required "
                     "keeps the password from being sent in clear (use imaps://)",
                     s->name);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
        st = err_set(e, IPW_EUNAVAIL, "IMAP mailbox %s: TLS failed: %s", s->name, detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        st = err_set(e, IPW_EUNAVAIL,
                     "IMAP mailbox %s: no answer within %lld ms (connect, TLS and login): %s",
                     s->name, (long long)connect_ms, detail);
        break;
    default:
        st = err_set(e, IPW_EUNAVAIL, "IMAP mailbox %s: cannot connect and log in: %s", s->name,
                     detail);
        break;
    }
    if (st == IPW_OK && curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &s->sock) != CURLE_OK)
        st = err_set(e, IPW_EUNAVAIL, "IMAP mailbox %s: no connection after the login", s->name);
    if (st == IPW_OK)
        st = imap_command(s, "CAPABILITY", imap_caps_cb, NULL, e);
    if (st) {
        s->broken = true;
        imap_close(s);
        return st == IPW_ENOTFOUND ? IPW_EUNAVAIL : st;
    }
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    *out = s;
    return IPW_OK;
}

void imap_close(struct imap *s)
{
    if (!s)
        return;
    if (s->curl && s->sock != CURL_SOCKET_BAD) {
        if (!s->broken) {
            /* a polite LOGOUT with a short deadline (the answer is a BYE, then OK) */
            s->command_ms = IMAP_LOGOUT_MS;
            struct err e;
            imap_command(s, "LOGOUT", NULL, NULL, &e);
        }
        /* libcurl would send a LOGOUT of its own and wait for the reply: after ours (or on a
         * stalled server) that is pointless, so the socket is shut first and it fails fast */
        shutdown(s->sock, SHUT_RDWR);
    }
    if (s->curl)
        curl_easy_cleanup(s->curl);
    free(s->caps);
    free(s->buf);
    buf_free(&s->resp);
    free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Commands */

/* A folder name for a command: modified UTF-7 in a quoted string. */
static ipw_status imap_quote_folder(struct imap *s, const char *folder, char **out, struct err *e)
{
    *out = NULL;
    if (!folder || !*folder || strpbrk(folder, "\r\n"))
        return err_set(e, IPW_EUSAGE, "IMAP mailbox %s: a folder name must be one line of text",
                       s->name);
    char *u7 = imap_utf7_encode(folder);
    if (!u7)
        return err_set(e, IPW_EUSAGE, "IMAP mailbox %s: the folder name is not valid UTF-8",
                       s->name);
    char *q = malloc(strlen(u7) * 2 + 3);
    if (!q) {
        free(u7);
        return err_set(e, IPW_ENOMEM, "out of memory");
    }
    size_t o = 0;
    q[o++] = '"';
    for (const char *p = u7; *p; p++) {
        if (*p == '"' || *p == '\\')
            q[o++] = '\\';
        q[o++] = *p;
    }
    q[o++] = '"';
    q[o] = '\0';
    free(u7);
    *out = q;
    return IPW_OK;
}

static ipw_status imap_examine_cb(struct imap *s, const char *r, size_t len, void *arg,
                                  struct err *e)
{
    (void)s;
    (void)e;
    struct imap_folder *f = arg;
    struct imap_tok t = {r, r + len};
    uint64_t v;
    if (imap_number(&t, &v, UINT32_MAX)) {
        imap_skip_sp(&t);
        if ((size_t)(t.end - t.p) >= 6 && strncasecmp(t.p, "EXISTS", 6) == 0)
            f->exists = (uint32_t)v;
        return IPW_OK;
    }
    if (len > 4 && strncasecmp(r, "OK [", 4) == 0) {
        struct imap_tok c = {r + 4, r + len};
        if ((size_t)(c.end - c.p) > 12 && strncasecmp(c.p, "UIDVALIDITY ", 12) == 0) {
            c.p += 12;
            if (imap_number(&c, &v, UINT32_MAX))
                f->uidvalidity = (uint32_t)v;
        } else if ((size_t)(c.end - c.p) > 8 && strncasecmp(c.p, "UIDNEXT ", 8) == 0) {
            c.p += 8;
            if (imap_number(&c, &v, UINT32_MAX))
                f->uidnext = (uint32_t)v;
        }
    }
    return IPW_OK;
}

ipw_status imap_examine(struct imap *s, const char *folder, struct imap_folder *info, struct err *e)
{
    memset(info, 0, sizeof *info);
    char *q = NULL;
    ipw_status st = imap_quote_folder(s, folder, &q, e);
    if (st)
        return st;
    char *cmd = malloc(strlen(q) + 16);
    if (!cmd) {
        free(q);
        return err_set(e, IPW_ENOMEM, "out of memory");
    }
    snprintf(cmd, strlen(q) + 16, "EXAMINE %s", q);
    free(q);
    st = imap_command(s, cmd, imap_examine_cb, info, e);
    free(cmd);
    if (st == IPW_ENOTFOUND)
        err_set(e, IPW_ENOTFOUND,
                "IMAP mailbox %s: cannot open the folder \"%s\" (no such folder?)", s->name,
                folder);
    return st;
}

struct imap_search {
    struct imap_uids *u;
    size_t cap;
    uint32_t above;
};

static ipw_status imap_search_cb(struct imap *s, const char *r, size_t len, void *arg,
                                 struct err *e)
{
    struct imap_search *sr = arg;
    if (len < 6 || strncasecmp(r, "SEARCH", 6) != 0)
        return IPW_OK;
    struct imap_tok t = {r + 6, r + len};
    uint64_t v;
    while (imap_number(&t, &v, UINT32_MAX)) {
        if (v <= sr->above)
            continue;
        uint32_t *n = buf_grow(sr->u->uid, &sr->cap, sr->u->n + 1, sizeof *n, 64);
        if (!n)
            return imap_fail(s, e, "out of memory reading a search result");
        sr->u->uid = n;
        sr->u->uid[sr->u->n++] = (uint32_t)v;
    }
    return IPW_OK;
}

static int imap_uid_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static ipw_status imap_search(struct imap *s, const char *cmd, uint32_t above,
                              struct imap_uids *out, struct err *e)
{
    out->uid = NULL;
    out->n = 0;
    struct imap_search sr = {.u = out, .above = above};
    ipw_status st = imap_command(s, cmd, imap_search_cb, &sr, e);
    if (st) {
        imap_uids_free(out);
        return st == IPW_ENOTFOUND ? imap_fail(s, e, "the server refused %s", cmd) : st;
    }
    if (out->n > 1)
        qsort(out->uid, out->n, sizeof *out->uid, imap_uid_cmp);
    return IPW_OK;
}

ipw_status imap_uids_after(struct imap *s, uint32_t after, struct imap_uids *out, struct err *e)
{
    out->uid = NULL;
    out->n = 0;
    if (after == UINT32_MAX)
        return IPW_OK;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "UID SEARCH UID %lu:*", (unsigned long)after + 1);
    /* "N:*" always includes the last message, even when its UID is below N */
    return imap_search(s, cmd, after, out, e);
}

/* A quoted IMAP string of printable ASCII; NULL for anything else. */
static char *imap_quote_ascii(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 900)
        return NULL;
    char *q = malloc(n * 2 + 3);
    if (!q)
        return NULL;
    size_t o = 0;
    q[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e) {
            free(q);
            return NULL;
        }
        if (c == '"' || c == '\\')
            q[o++] = '\\';
        q[o++] = (char)c;
    }
    q[o++] = '"';
    q[o] = '\0';
    return q;
}

ipw_status imap_search_header(struct imap *s, const char *field, const char *value,
                              struct imap_uids *out, struct err *e)
{
    out->uid = NULL;
    out->n = 0;
    char *f = imap_quote_ascii(field), *v = imap_quote_ascii(value);
    if (!f || !v) {
        free(f);
        free(v);
        return err_set(e, IPW_EUSAGE, "IMAP mailbox %s: a header search takes printable ASCII only",
                       s->name);
    }
    size_t n = strlen(f) + strlen(v) + 32;
    char *cmd = malloc(n);
    ipw_status st;
    if (!cmd) {
        st = err_set(e, IPW_ENOMEM, "out of memory");
    } else {
        snprintf(cmd, n, "UID SEARCH HEADER %s %s", f, v);
        st = imap_search(s, cmd, 0, out, e);
    }
    free(cmd);
    free(f);
    free(v);
    return st;
}

void imap_uids_free(struct imap_uids *u)
{
    free(u->uid);
    u->uid = NULL;
    u->n = 0;
}

struct imap_fetch {
    uint32_t uid;
    bool found;
    struct imap_message *m;
    bool want_body;
};

/* "N FETCH (UID u FLAGS (...) RFC822.SIZE n BODY[]<0> {len}...)" */
static ipw_status imap_fetch_cb(struct imap *s, const char *r, size_t len, void *arg, struct err *e)
{
    struct imap_fetch *f = arg;
    struct imap_tok t = {r, r + len};
    uint64_t seq;
    if (!imap_number(&t, &seq, UINT32_MAX))
        return IPW_OK;
    imap_skip_sp(&t);
    if ((size_t)(t.end - t.p) < 6 || strncasecmp(t.p, "FETCH ", 6) != 0)
        return IPW_OK;
    t.p += 6;
    imap_skip_sp(&t);
    if (t.p >= t.end || *t.p != '(')
        return IPW_OK;
    t.p++;
    uint64_t uid = 0, size = 0;
    unsigned flags = 0;
    bool has_flags = false;
    const char *body = NULL;
    size_t body_len = 0;
    for (;;) {
        imap_skip_sp(&t);
        if (t.p >= t.end || *t.p == ')')
            break;
        const char *k;
        size_t kl;
        bool nil;
        if (!imap_string(&t, &k, &kl, &nil))
            return imap_fail(s, e, "a FETCH response it cannot read");
        if (imap_word_is(k, kl, "UID")) {
            if (!imap_number(&t, &uid, UINT32_MAX))
                return imap_fail(s, e, "a FETCH response with a bad UID");
        } else if (imap_word_is(k, kl, "FLAGS")) {
            if (!imap_flag_list(&t, false, &flags))
                return imap_fail(s, e, "a FETCH response with bad FLAGS");
            has_flags = true;
        } else if (imap_word_is(k, kl, "RFC822.SIZE")) {
            if (!imap_number(&t, &size, UINT64_MAX / 16))
                return imap_fail(s, e, "a FETCH response with a bad RFC822.SIZE");
        } else if (kl >= 6 && strncasecmp(k, "BODY[]", 6) == 0) {
            if (!imap_string(&t, &body, &body_len, &nil))
                return imap_fail(s, e, "a FETCH response with a bad body");
            if (nil)
                body = NULL, body_len = 0;
        } else if (!imap_skip_item(&t, 0)) {
            return imap_fail(s, e, "a FETCH response it cannot read");
        }
    }
    if (uid != f->uid)
        return IPW_OK; /* an unsolicited update of another message */
    f->found = true;
    if (has_flags)
        f->m->flags = flags;
    if (size)
        f->m->size = size;
    if (f->want_body && body) {
        if (body_len > s->max_bytes)
            body_len = s->max_bytes;
        free(f->m->data);
        f->m->data = malloc(body_len + 1);
        if (!f->m->data)
            return imap_fail(s, e, "out of memory reading a message");
        memcpy(f->m->data, body, body_len);
        f->m->data[body_len] = '\0';
        f->m->len = body_len;
    }
    return IPW_OK;
}

ipw_status imap_fetch(struct imap *s, uint32_t uid, struct imap_message *m, struct err *e)
{
    memset(m, 0, sizeof *m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "UID FETCH %lu (UID FLAGS RFC822.SIZE BODY.PEEK[]<0.%zu>)",
             (unsigned long)uid, s->max_bytes);
    struct imap_fetch f = {.uid = uid, .m = m, .want_body = true};
    ipw_status st = imap_command(s, cmd, imap_fetch_cb, &f, e);
    if (st == IPW_OK && (!f.found || !m->data)) {
        imap_message_free(m);
        return err_set(e, IPW_ENOTFOUND, "IMAP mailbox %s: no message with UID %lu", s->name,
                       (unsigned long)uid);
    }
    if (st) {
        imap_message_free(m);
        return st;
    }
    if (m->size < m->len)
        m->size = m->len;
    m->truncated = m->size > m->len;
    return IPW_OK;
}

void imap_message_free(struct imap_message *m)
{
    free(m->data);
    memset(m, 0, sizeof *m);
}

ipw_status imap_flags(struct imap *s, uint32_t uid, unsigned *flags, struct err *e)
{
    *flags = 0;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "UID FETCH %lu (UID FLAGS)", (unsigned long)uid);
    struct imap_message m = {0};
    struct imap_fetch f = {.uid = uid, .m = &m};
    ipw_status st = imap_command(s, cmd, imap_fetch_cb, &f, e);
    if (st)
        return st;
    if (!f.found)
        return err_set(e, IPW_ENOTFOUND, "IMAP mailbox %s: no message with UID %lu", s->name,
                       (unsigned long)uid);
    *flags = m.flags;
    return IPW_OK;
}

struct imap_listing {
    struct imap_mailbox *list;
    size_t n, cap;
};

/* "LIST (\HasNoChildren \Junk) "/" Junk" */
static ipw_status imap_list_cb(struct imap *s, const char *r, size_t len, void *arg, struct err *e)
{
    struct imap_listing *l = arg;
    if (len < 5 || strncasecmp(r, "LIST ", 5) != 0)
        return IPW_OK;
    struct imap_tok t = {r + 5, r + len};
    unsigned attrs = 0;
    const char *d, *name;
    size_t dl, nl;
    bool dnil, nnil;
    if (!imap_flag_list(&t, true, &attrs) || !imap_string(&t, &d, &dl, &dnil) ||
        !imap_string(&t, &name, &nl, &nnil) || nnil)
        return IPW_OK; /* a line it cannot read names no folder it could use */
    struct imap_mailbox *list = buf_grow(l->list, &l->cap, l->n + 1, sizeof *list, 16);
    if (!list)
        return imap_fail(s, e, "out of memory reading the folder list");
    l->list = list;
    struct imap_mailbox *m = &l->list[l->n];
    memset(m, 0, sizeof *m);
    m->attrs = attrs;
    if (!dnil && dl == 1)
        m->delimiter = d[0];
    else if (!dnil && dl == 2 && d[0] == '\\')
        m->delimiter = d[1];
    m->name = malloc(nl + 1);
    if (!m->name)
        return imap_fail(s, e, "out of memory reading the folder list");
    /* a quoted name's escapes removed */
    size_t o = 0;
    for (size_t i = 0; i < nl; i++) {
        if (name[i] == '\\' && i + 1 < nl && name > r && name[-1] == '"')
            i++;
        m->name[o++] = name[i];
    }
    m->name[o] = '\0';
    m->name_utf8 = imap_utf7_decode(m->name);
    if (!m->name_utf8)
        m->name_utf8 = strdup(m->name);
    l->n++;
    return IPW_OK;
}

ipw_status imap_list(struct imap *s, struct imap_mailbox **list, size_t *n, struct err *e)
{
    *list = NULL;
    *n = 0;
    struct imap_listing l = {0};
    const char *cmd =
        imap_has_capability(s, "SPECIAL-USE") && imap_has_capability(s, "LIST-EXTENDED")
            ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
            : "LIST \"\" \"*\"";
    ipw_status st = imap_command(s, cmd, imap_list_cb, &l, e);
    if (st) {
        imap_list_free(l.list, l.n);
        return st == IPW_ENOTFOUND ? imap_fail(s, e, "the server refused LIST") : st;
    }
    *list = l.list;
    *n = l.n;
    return IPW_OK;
}

void imap_list_free(struct imap_mailbox *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        free(list[i].name);
        free(list[i].name_utf8);
    }
    free(list);
}

const struct imap_mailbox *imap_list_junk(const struct imap_mailbox *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((list[i].attrs & IMAP_MBOX_JUNK) && !(list[i].attrs & IMAP_MBOX_NOSELECT))
            return &list[i];
    return NULL;
}
