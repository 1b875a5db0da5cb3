/*
 * smtp: one-recipient SMTP transactions over libcurl's multi interface (see smtp.h).
 *
 * RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 1870 (SIZE), RFC 2034 and
 * RFC 3463 (enhanced status codes). libcurl runs the dialogue; its debug callback shows every
 * command we send (CURLINFO_HEADER_OUT) and every reply line we receive (CURLINFO_HEADER_IN).
 * From those we keep the phase (the last command sent decides which phase a reply answers) and
 * the text of the last complete reply, which is the one that decided the transaction's fate.
 * The message body (CURLINFO_DATA_OUT) is never copied, and neither is anything after AUTH.
 */
#include "ipwarm/smtp.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A reply longer than this is cut (a hostile or broken server may send 10,000 lines). */
#define SMTP_REPLY_MAX 16384
/* Sockets libcurl has open at once that we keep track of (see struct smtp). */
#define SMTP_SOCKS_MAX 1024
/* libcurl's own reply timeout is set this much later than ours, as a backstop only. */
#define SMTP_CURL_TIMEOUT_SLACK_S 30

struct smtp_xfer {
    CURL *easy;
    struct curl_slist *rcpts;
    struct curl_slist *connect_to;
    char *url, *mail_from, *interface, *username, *password, *ca_file;
    const char *data;
    size_t len, off;
    void *user;
    enum smtp_phase phase;      /* phase of the last command sent */
    enum smtp_phase cmd_phase;  /* phase of the last command sent other than QUIT */
    int64_t command_ms;         /* the longest wait for one reply (0: none) */
    int64_t deadline_ms;        /* wall clock by which the server must say something */
    curl_socket_t fd;           /* the connection's socket, when known */
    char local_ip[64];          /* local end of a reused connection (CURLOPT_PREREQFUNCTION) */
    long local_port;
    bool saw_354;               /* DATA was accepted: the next reply is the final one */
    char *cur;                  /* reply being received */
    size_t cur_len;
    bool cur_cut;
    enum smtp_phase last_phase; /* phase and text of the last complete reply */
    int last_code;
    char *last;
    bool delivered;
    bool tls;
    bool job_implicit_tls;
    char tls_version[16];
    char errbuf[CURL_ERROR_SIZE];
    int64_t started_ms;
    struct smtp *pool;
    struct smtp_xfer *next;
};

/*
 * The sockets libcurl opened and has not closed yet. When a server stops answering, we end the
 * transaction ourselves (smtp_perform), and must first shut its socket down: libcurl 7.88, asked
 * to drop a transfer or to close a connection whose reply timed out, politely sends the end of
 * the message or QUIT and then waits, blocking every other transaction, for one more reply
 * timeout. A socket that is shut down makes that write fail at once.
 */
struct smtp {
    CURLM *multi;
    struct smtp_xfer *xfers;
    int running;
    curl_socket_t socks[SMTP_SOCKS_MAX];
    size_t n_socks;
};

static int64_t smtp_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

const char *smtp_phase_name(enum smtp_phase p)
{
    static const char *const names[] = {"connect", "ehlo", "starttls", "auth",
                                        "mail",    "rcpt", "data",     "quit"};
    if ((int)p < 0 || (size_t)p >= sizeof names / sizeof names[0])
        return "connect";
    return names[p];
}

/* libcurl's words for some failures are no sentence a mail operator can act on: "response
 * reading failed (errno: 115)" (a stale errno: the server closed the connection) or "bind failed
 * with errno 99: ...". Says what failed, and where in the dialogue, instead; other texts are
 * libcurl's own sentences and pass as they are. */
static void smtp_error_say(char *out, size_t n, const char *text, enum smtp_phase phase)
{
    static const char *const waiting[] = {
        "the greeting",      "the reply to EHLO", "the reply to STARTTLS",    "the reply to AUTH",
        "the reply to MAIL", "the reply to RCPT", "the reply to the message", "the reply to QUIT"};
    const char *w = (int)phase >= 0 && (size_t)phase < sizeof waiting / sizeof waiting[0]
                        ? waiting[phase]
                        : "a reply";
    const char *why;
    if (strncmp(text, "response reading failed", 23) == 0)
        snprintf(out, n, "the server closed the connection (or it broke) while waiting for %s", w);
    else if (strncmp(text, "bind failed with errno ", 23) == 0 && (why = strchr(text, ':')))
        snprintf(out, n, "cannot bind the source IP to connect from it:%s", why + 1);
    else
        snprintf(out, n, "%s", text);
}

struct smtp *smtp_new(int max_connections, struct err *e)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            err_set(e, IPW_ESOFTWARE, "libcurl could not be initialised");
            return NULL;
        }
        global_done = 1;
    }
    struct smtp *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, IPW_ENOMEM, "out of memory");
        return NULL;
    }
    s->multi = curl_multi_init();
    if (!s->multi) {
        free(s);
        err_set(e, IPW_ESOFTWARE, "libcurl could not create a multi handle");
        return NULL;
    }
    if (max_connections > 0)
        curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_connections);
    return s;
}

static void smtp_xfer_free(struct smtp_xfer *x)
{
    if (!x)
        return;
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->rcpts);
    curl_slist_free_all(x->connect_to);
    free(x->url);
    free(x->mail_from);
    free(x->interface);
    free(x->username);
    if (x->password) {
        /* The relay password must not linger in freed memory. */
        volatile char *p = x->password;
        while (*p)
            *p++ = '\0';
        free(x->password);
    }
    free(x->ca_file);
    free(x->cur);
    free(x->last);
    free(x);
}

void smtp_free(struct smtp *s)
{
    if (!s)
        return;
    struct smtp_xfer *x = s->xfers;
    while (x) {
        struct smtp_xfer *n = x->next;
        curl_multi_remove_handle(s->multi, x->easy);
        smtp_xfer_free(x);
        x = n;
    }
    /* Cleaning up the multi handle closes the cached connections (with QUIT). */
    curl_multi_cleanup(s->multi);
    free(s);
}

/* The phase a command we sent starts. */
static enum smtp_phase smtp_command_phase(const char *cmd, size_t n, enum smtp_phase cur)
{
    struct {
        const char *verb;
        enum smtp_phase phase;
    } verbs[] = {
        {"EHLO", SMTP_PHASE_EHLO},         {"HELO", SMTP_PHASE_EHLO},
        {"STARTTLS", SMTP_PHASE_STARTTLS}, {"AUTH", SMTP_PHASE_AUTH},
        {"MAIL", SMTP_PHASE_MAIL},         {"RCPT", SMTP_PHASE_RCPT},
        {"DATA", SMTP_PHASE_DATA},         {"QUIT", SMTP_PHASE_QUIT},
        {"RSET", SMTP_PHASE_MAIL},
    };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        size_t vl = strlen(verbs[i].verb);
        if (n >= vl && strncasecmp(cmd, verbs[i].verb, vl) == 0)
            return verbs[i].phase;
    }
    return cur; /* AUTH continuation lines and the like keep the phase */
}

/* Appends one received line (without CRLF) to the reply being built; when the line ends the
 * reply (no '-' after the code), the reply becomes the last complete one. */
static void smtp_reply_line(struct smtp_xfer *x, const char *line, size_t n)
{
    if (x->cur_len + n + 2 > SMTP_REPLY_MAX) {
        x->cur_cut = true;
    } else {
        char *grown = realloc(x->cur, x->cur_len + n + 2);
        if (!grown)
            return;
        x->cur = grown;
        if (x->cur_len > 0)
            x->cur[x->cur_len++] = '\n';
        /* A NUL byte in a reply would end the C string early and lose the lines after it
         * (the final one with the code): keep it as '?', which reply_parse shows anyway. */
        for (size_t i = 0; i < n; i++)
            x->cur[x->cur_len + i] = line[i] ? line[i] : '?';
        x->cur_len += n;
        x->cur[x->cur_len] = '\0';
    }
    bool continued = n >= 4 && isdigit((unsigned char)line[0]) &&
                     isdigit((unsigned char)line[1]) && isdigit((unsigned char)line[2]) &&
                     line[3] == '-';
    if (continued)
        return;
    int code = 0;
    if (n >= 3 && isdigit((unsigned char)line[0]) && isdigit((unsigned char)line[1]) &&
        isdigit((unsigned char)line[2]))
        code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    /* The reply that decided the transaction is the last one before QUIT, and the first
     * failure: once a reply has refused something, curl's RSET or QUIT replies do not count. */
    if (x->phase == SMTP_PHASE_QUIT || x->last_code >= 400) {
        free(x->cur);
        x->cur = NULL;
        x->cur_len = 0;
        x->cur_cut = false;
        return;
    }
    free(x->last);
    x->last = x->cur ? x->cur : strdup("");
    x->cur = NULL;
    x->cur_len = 0;
    x->cur_cut = false;
    x->last_code = code;
    x->last_phase = x->phase;
    if (x->phase == SMTP_PHASE_DATA) {
        if (code == 354)
            x->saw_354 = true;
        else if (x->saw_354 && code >= 200 && code < 300)
            x->delivered = true;
    }
}

static int smtp_debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
    (void)easy;
    struct smtp_xfer *x = arg;
    /* Anything sent or received proves the server is alive: the reply clock starts again. */
    if (x->command_ms > 0 && (type == CURLINFO_HEADER_OUT || type == CURLINFO_HEADER_IN ||
                              type == CURLINFO_DATA_OUT || type == CURLINFO_SSL_DATA_IN))
        x->deadline_ms = smtp_wall_ms() + x->command_ms;
    if (type == CURLINFO_HEADER_OUT) {
        x->phase = smtp_command_phase(data, size, x->phase);
        if (x->phase != SMTP_PHASE_QUIT)
            x->cmd_phase = x->phase;
    } else if (type == CURLINFO_HEADER_IN) {
        /* One call usually holds one line, but split defensively. */
        size_t start = 0;
        for (size_t i = 0; i <= size; i++) {
            if (i == size || data[i] == '\n') {
                size_t end = i;
                while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n'))
                    end--;
                if (end > start || (i < size))
                    smtp_reply_line(x, data + start, end - start);
                start = i + 1;
            }
        }
    } else if (type == CURLINFO_TEXT) {
        /* libcurl announces the TLS handshake's outcome as text:
         * "SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384". */
        static const char tag[] = "SSL connection using ";
        if (size > sizeof tag - 1 && memcmp(data, tag, sizeof tag - 1) == 0) {
            x->tls = true;
            size_t i = 0;
            const char *v = data + sizeof tag - 1;
            size_t vmax = size - (sizeof tag - 1);
            while (i < vmax && i + 1 < sizeof x->tls_version && v[i] != ' ' && v[i] != '\n')
                i++;
            memcpy(x->tls_version, v, i);
            x->tls_version[i] = '\0';
        }
    }
    return 0;
}

static size_t smtp_read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    struct smtp_xfer *x = arg;
    size_t room = size * nitems;
    size_t left = x->len - x->off;
    size_t n = left < room ? left : room;
    memcpy(buf, x->data + x->off, n);
    x->off += n;
    return n;
}

/* Socket bookkeeping (see struct smtp). */
static curl_socket_t smtp_open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct smtp_xfer *x = arg;
    struct smtp *s = x->pool;
    (void)purpose;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd == CURL_SOCKET_BAD)
        return fd;
    x->fd = fd;
    if (s->n_socks < SMTP_SOCKS_MAX)
        s->socks[s->n_socks++] = fd;
    return fd;
}

static int smtp_close_cb(void *arg, curl_socket_t fd)
{
    struct smtp *s = arg;
    for (size_t i = 0; i < s->n_socks; i++) {
        if (s->socks[i] == fd) {
            s->socks[i] = s->socks[--s->n_socks];
            break;
        }
    }
    for (struct smtp_xfer *x = s->xfers; x; x = x->next)
        if (x->fd == fd)
            x->fd = CURL_SOCKET_BAD;
    return close(fd);
}

/* Called once the connection is set up or reused: a reused one is found by its local end. */
static int smtp_prereq_cb(void *arg, char *primary_ip, char *local_ip, int primary_port,
                          int local_port)
{
    struct smtp_xfer *x = arg;
    (void)primary_ip;
    (void)primary_port;
    snprintf(x->local_ip, sizeof x->local_ip, "%s", local_ip ? local_ip : "");
    x->local_port = local_port;
    return CURL_PREREQFUNC_OK;
}

/* The socket of x's connection, or CURL_SOCKET_BAD. */
static curl_socket_t smtp_xfer_socket(struct smtp *s, const struct smtp_xfer *x)
{
    if (x->fd != CURL_SOCKET_BAD)
        return x->fd;
    if (x->local_port <= 0)
        return CURL_SOCKET_BAD;
    for (size_t i = 0; i < s->n_socks; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char ip[64] = "";
        int port = 0;
        if (getsockname(s->socks[i], (struct sockaddr *)&ss, &sl) != 0)
            continue;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
            port = ntohs(in6->sin6_port);
        }
        if (port == x->local_port && strcmp(ip, x->local_ip) == 0)
            return s->socks[i];
    }
    return CURL_SOCKET_BAD;
}

static char *smtp_bracket(const char *addr)
{
    size_t n = strlen(addr) + 3;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "<%s>", addr);
    return s;
}

ipw_status smtp_submit(struct smtp *s, const struct smtp_job *job, struct err *e)
{
    struct smtp_xfer *x = calloc(1, sizeof *x);
    if (!x)
        return err_set(e, IPW_ENOMEM, "out of memory");
    x->user = job->user;
    x->data = job->data;
    x->len = job->len;
    x->started_ms = smtp_wall_ms();
    x->job_implicit_tls = job->implicit_tls;
    x->pool = s;
    x->fd = CURL_SOCKET_BAD;
    x->command_ms = job->command_timeout_ms;
    /* Until the greeting, the connect timeout comes on top of the reply timeout. */
    if (x->command_ms > 0)
        x->deadline_ms = x->started_ms + x->command_ms +
                         (job->connect_timeout_ms > 0 ? job->connect_timeout_ms : 300000);
    x->easy = curl_easy_init();
    if (!x->easy) {
        smtp_xfer_free(x);
        return err_set(e, IPW_ESOFTWARE, "libcurl could not create a transfer");
    }
    /* The EHLO name travels as the URL path: smtp://host:port/helo.name. */
    bool v6 = strchr(job->host, ':') != NULL;
    size_t ul = strlen(job->host) + strlen(job->helo ? job->helo : "") + 32;
    x->url = malloc(ul);
    if (x->url)
        snprintf(x->url, ul, "%s://%s%s%s:%d/%s", job->implicit_tls ? "smtps" : "smtp",
                 v6 ? "[" : "", job->host, v6 ? "]" : "", job->port, job->helo ? job->helo : "");
    x->mail_from = smtp_bracket(job->mail_from ? job->mail_from : "");
    struct curl_slist *r = NULL;
    char *rcpt = smtp_bracket(job->rcpt);
    if (rcpt) {
        r = curl_slist_append(NULL, rcpt);
        free(rcpt);
    }
    x->rcpts = r;
    if (!x->url || !x->mail_from || !x->rcpts) {
        smtp_xfer_free(x);
        return err_set(e, IPW_ENOMEM, "out of memory");
    }
    if (job->connect_ip) {
        /* Pin the address we resolved ourselves (MX order, address family) while keeping the
         * host name for the TLS SNI and the certificate check. */
        char ct[512];
        bool ip6 = strchr(job->connect_ip, ':') != NULL;
        snprintf(ct, sizeof ct, "%s%s%s:%d:%s%s%s:%d", v6 ? "[" : "", job->host, v6 ? "]" : "",
                 job->port, ip6 ? "[" : "", job->connect_ip, ip6 ? "]" : "", job->port);
        x->connect_to = curl_slist_append(NULL, ct);
    }
    if (job->source_ip) {
        size_t il = strlen(job->source_ip) + 6;
        x->interface = malloc(il);
        if (x->interface)
            snprintf(x->interface, il, "host!%s", job->source_ip);
    }
    if (job->username)
        x->username = strdup(job->username);
    if (job->password)
        x->password = strdup(job->password);
    if (job->ca_file)
        x->ca_file = strdup(job->ca_file);

    CURL *c = x->easy;
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, x->mail_from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, x->rcpts);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, smtp_read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, x);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)job->len);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, smtp_debug_cb);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, x);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    if (x->connect_to)
        curl_easy_setopt(c, CURLOPT_CONNECT_TO, x->connect_to);
    if (x->interface)
        curl_easy_setopt(c, CURLOPT_INTERFACE, x->interface);
    if (job->connect_timeout_ms > 0)
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)job->connect_timeout_ms);
    if (job->command_timeout_ms > 0) {
        /* smtp_perform enforces the command timeout itself (see struct smtp); libcurl's own
         * timer is only a backstop, since when it fires libcurl blocks for another one. */
        long secs = (long)((job->command_timeout_ms + 999) / 1000) + SMTP_CURL_TIMEOUT_SLACK_S;
        curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, secs);
    }
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, smtp_open_cb);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, smtp_close_cb);
    curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, s);
    curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, smtp_prereq_cb);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, x);
    if (!job->implicit_tls)
        curl_easy_setopt(c, CURLOPT_USE_SSL,
                         job->tls == PLAN_TLS_REQUIRED ? (long)CURLUSESSL_ALL
                                                       : (long)CURLUSESSL_TRY);
    long ver = CURL_SSLVERSION_TLSv1_2;
    switch (job->tls_min) {
    case PLAN_TLS_1_0: ver = CURL_SSLVERSION_TLSv1_0; break;
    case PLAN_TLS_1_1: ver = CURL_SSLVERSION_TLSv1_1; break;
    case PLAN_TLS_1_2: ver = CURL_SSLVERSION_TLSv1_2; break;
    case PLAN_TLS_1_3: ver = CURL_SSLVERSION_TLSv1_3; break;
    }
    curl_easy_setopt(c, CURLOPT_SSLVERSION, ver);
    /* MX hosts are reached with opportunistic TLS (RFC 3207 says a public MX's certificate is
     * not checked); a relay is a known host whose certificate must verify. */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, job->verify_peer ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, job->verify_peer ? 2L : 0L);
    if (x->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, x->ca_file);
    if (x->username)
        curl_easy_setopt(c, CURLOPT_USERNAME, x->username);
    if (x->password)
        curl_easy_setopt(c, CURLOPT_PASSWORD, x->password);

    if (curl_multi_add_handle(s->multi, c) != CURLM_OK) {
        smtp_xfer_free(x);
        return err_set(e, IPW_ESOFTWARE, "libcurl refused a new transfer");
    }
    x->next = s->xfers;
    s->xfers = x;
    s->running++;
    return IPW_OK;
}

static void smtp_unlink(struct smtp *s, struct smtp_xfer *x)
{
    for (struct smtp_xfer **p = &s->xfers; *p; p = &(*p)->next) {
        if (*p == x) {
            *p = x->next;
            return;
        }
    }
}

static void smtp_finish(struct smtp *s, struct smtp_xfer *x, CURLcode rc, smtp_done_fn done,
                        void *arg)
{
    struct smtp_result r;
    memset(&r, 0, sizeof r);
    /* A failure after curl sent QUIT (it does so when a reply times out or is refused) belongs
     * to the command that was waiting, not to QUIT. */
    if (x->phase == SMTP_PHASE_QUIT && x->cmd_phase != SMTP_PHASE_QUIT && !x->delivered)
        x->phase = x->cmd_phase;
    r.user = x->user;
    r.curl_code = (int)rc;
    r.started_ms = x->started_ms;
    r.finished_ms = smtp_wall_ms();
    r.delivered = x->delivered && rc == CURLE_OK;
    r.tls = x->tls;
    if (x->cur && x->cur_len > 0 && x->last_code == 0) {
        /* The server closed in the middle of a multi-line reply: keep what arrived. */
        free(x->last);
        x->last = x->cur;
        x->cur = NULL;
    }
    r.reply = x->last;
    r.code = x->last_code;
    r.phase = x->last ? x->last_phase : x->phase;
    if (rc != CURLE_OK) {
        /* When the last reply was positive, no reply decided the failure: the connection broke,
         * a reply never came (timeout) or the TLS handshake failed. The attempt then has no
         * code and belongs to the phase of the command that was pending. */
        if (x->last_code < 400 && !r.delivered) {
            r.code = 0;
            r.reply = NULL;
            r.phase = x->phase == SMTP_PHASE_QUIT ? x->last_phase : x->phase;
            if (rc == CURLE_USE_SSL_FAILED ||
                (rc == CURLE_SSL_CONNECT_ERROR && !x->job_implicit_tls))
                r.phase = SMTP_PHASE_STARTTLS;
        }
        smtp_error_say(r.error, sizeof r.error, x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc),
                       r.phase);
    }
    snprintf(r.tls_version, sizeof r.tls_version, "%s", x->tls_version);
    done(&r, arg);
    curl_multi_remove_handle(s->multi, x->easy);
    smtp_unlink(s, x);
    smtp_xfer_free(x);
    s->running--;
}

int smtp_perform(struct smtp *s, int timeout_ms, smtp_done_fn done, void *arg)
{
    int still = 0;
    curl_multi_perform(s->multi, &still);
    if (still > 0 && timeout_ms > 0) {
        int numfds = 0;
        curl_multi_poll(s->multi, NULL, 0, timeout_ms, &numfds);
        curl_multi_perform(s->multi, &still);
    }
    CURLMsg *m;
    int left;
    /* Transactions whose server stopped answering: shut the socket down so that libcurl's
     * goodbye fails at once, then finish them as timed out. One at a time, since done() may
     * start a new transaction (the next MX) and change the list. */
    for (;;) {
        int64_t now = smtp_wall_ms();
        struct smtp_xfer *late = NULL;
        for (struct smtp_xfer *x = s->xfers; x && !late; x = x->next)
            if (x->command_ms > 0 && x->deadline_ms > 0 && now >= x->deadline_ms)
                late = x;
        if (!late)
            break;
        curl_socket_t fd = smtp_xfer_socket(s, late);
        if (fd != CURL_SOCKET_BAD)
            shutdown(fd, SHUT_RDWR);
        snprintf(late->errbuf, sizeof late->errbuf, "no reply within the command timeout (%lld ms)",
                 (long long)late->command_ms);
        smtp_finish(s, late, CURLE_OPERATION_TIMEDOUT, done, arg);
    }
    while ((m = curl_multi_info_read(s->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct smtp_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        if (x)
            smtp_finish(s, x, rc, done, arg);
    }
    return s->running;
}

int smtp_running(const struct smtp *s)
{
    return s->running;
}
