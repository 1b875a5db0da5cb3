/*
 * smtp: one-recipient SMTP transactions over libcurl, many at once (see smtp.h).
 *
 * RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 1870 (SIZE), RFC 2034 and
 * RFC 3463 (enhanced status codes). libcurl runs the dialogue; its debug callback shows every
 * command we send (CURLINFO_HEADER_OUT) and every reply line we receive (CURLINFO_HEADER_IN).
 * From those we keep the phase (the last command sent decides which phase a reply answers) and
 * the text of the last complete reply, which is the one that decided the transaction's fate.
 * The message body (CURLINFO_DATA_OUT) is only counted, never copied, and nothing we send after
 * AUTH is kept.
 *
 * Threads. A connection is a worker thread with one easy handle (struct smtp_conn); it runs one
 * transaction at a time with curl_easy_perform() and keeps the connection for the next message
 * with the same destination (host, address, port, source address, TLS and login). The caller's
 * thread owns the queue: it hands jobs to idle connections (or starts new ones, up to the
 * limit), collects results, closes connections that stayed idle, and enforces deadlines. One
 * mutex guards everything the two sides share; a pipe wakes the caller when a result is ready.
 * Threads, not libcurl's multi interface on one thread: libcurl 7.88 waits for the reply to
 * the final dot in a blocking call even there (smtp_done), so one provider slow to accept a
 * message would hold up every other connection. The price is a thread wake-up per reply
 * (docs/benchmarks.md, part 2).
 *
 * Deadlines. The reply to each command must arrive within the command timeout counted from when
 * the command went out (or the last piece of the message did); a reply that trickles in line by
 * line does not buy more time. When a deadline passes, the caller's thread shuts the
 * connection's socket down: whatever libcurl is waiting for (including the reply to the final
 * dot, which libcurl 7.88 waits for in a blocking call) fails at once.
 */
#include "ipwarm/smtp.h"

#include "ipwarm/chars.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A reply longer than this is cut (a hostile or broken server may send 10,000 lines). */
#define SMTP_REPLY_MAX 16384
/* Connections open at once when the caller sets no lower limit. */
#define SMTP_CONNECTIONS_MAX 256
/* An idle connection is kept this long for the next message to the same destination. */
#define SMTP_IDLE_MS 60000
/* Closing a connection (QUIT and its reply) may take this long. */
#define SMTP_QUIT_MS 5000
/* libcurl's own reply timeout is set this much later than ours, as a backstop only. */
#define SMTP_CURL_TIMEOUT_SLACK_S 30

enum smtp_conn_state {
    SMTP_CONN_IDLE = 0, /* connected (or not yet), waiting for a job */
    SMTP_CONN_BUSY,     /* running a transaction */
    SMTP_CONN_CLOSING,  /* told to close: QUIT under way */
    SMTP_CONN_DEAD,     /* the thread has ended: join and free it */
};

struct smtp_conn;

struct smtp_xfer {
    /* The job, copied. */
    char *key; /* the destination: jobs with equal keys may share a connection */
    char *url, *mail_from, *interface, *username, *password, *ca_file;
    struct curl_slist *rcpts;
    struct curl_slist *connect_to;
    bool implicit_tls;
    enum plan_tls tls;
    enum plan_tls_version tls_min;
    bool verify_peer;
    int64_t connect_ms, command_ms;
    const char *data;
    size_t len, off;
    void *user;
    /* What the worker captures during the transfer. */
    struct smtp_conn *conn;
    enum smtp_phase phase;     /* phase of the last command sent */
    enum smtp_phase cmd_phase; /* phase of the last command sent other than QUIT */
    bool saw_354;              /* DATA was accepted: the next reply is the final one */
    size_t body_out;           /* bytes of the message libcurl wrote to the socket */
    bool any_reply;            /* a reply line arrived in this transaction */
    char *cur;                 /* reply being received */
    size_t cur_len;
    enum smtp_phase last_phase; /* phase and text of the last complete reply */
    int last_code;
    char *last;
    bool delivered;
    bool tls_on;
    char tls_version[16];
    char errbuf[CURL_ERROR_SIZE];
    CURLcode rc;
    int64_t started_ms, finished_ms;
    /* Set by the caller's thread under the mutex. */
    bool timed_out, aborted;
    struct smtp_xfer *next; /* in the queue or the done list */
};

struct smtp_conn {
    struct smtp *pool;
    pthread_t thread;
    pthread_cond_t cv;
    enum smtp_conn_state state;
    char *key;
    CURL *easy;
    struct smtp_xfer *job;       /* BUSY: the transaction it runs */
    curl_socket_t fd;            /* the open socket, under the mutex */
    _Atomic int64_t deadline_ms; /* when the awaited reply must have come; 0: none */
    int64_t idle_since_ms;
    bool quit; /* told to close and end */
    struct smtp_conn *next;
};

struct smtp {
    pthread_mutex_t mu;
    int wake[2]; /* a worker writes a byte when a result is ready or a thread ended */
    struct smtp_conn *conns;
    int n_conns, max_conns;
    struct smtp_xfer *queue, **queue_tail; /* submitted, waiting for a connection */
    struct smtp_xfer *done, **done_tail;   /* finished, to report */
    int running;
    bool waiting; /* the caller's thread sleeps in smtp_perform's poll (under the mutex) */
    smtp_mask_fn mask;
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

static void smtp_wake(struct smtp *s)
{
    char b = 1;
    /* The pipe is non-blocking: when it is full the caller is woken anyway. */
    if (write(s->wake[1], &b, 1) < 0 && errno != EAGAIN)
        return;
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
    if (pipe(s->wake) != 0) {
        err_set(e, IPW_ESOFTWARE, "cannot create the SMTP pool's wake-up pipe: %s",
                strerror(errno));
        free(s);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(s->wake[i], F_SETFL, fcntl(s->wake[i], F_GETFL) | O_NONBLOCK);
        fcntl(s->wake[i], F_SETFD, FD_CLOEXEC);
    }
    pthread_mutex_init(&s->mu, NULL);
    s->max_conns = max_connections > 0 && max_connections < SMTP_CONNECTIONS_MAX
                       ? max_connections
                       : SMTP_CONNECTIONS_MAX;
    s->queue_tail = &s->queue;
    s->done_tail = &s->done;
    return s;
}

void smtp_set_masker(struct smtp *s, smtp_mask_fn fn)
{
    s->mask = fn;
}

static void smtp_wipe_free(char *p)
{
    if (!p)
        return;
    /* The relay password must not linger in freed memory. */
    volatile char *v = p;
    while (*v)
        *v++ = '\0';
    free(p);
}

static void smtp_xfer_free(struct smtp_xfer *x)
{
    if (!x)
        return;
    curl_slist_free_all(x->rcpts);
    curl_slist_free_all(x->connect_to);
    free(x->key);
    free(x->url);
    free(x->mail_from);
    free(x->interface);
    free(x->username);
    smtp_wipe_free(x->password);
    free(x->ca_file);
    free(x->cur);
    free(x->last);
    free(x);
}

/* The phase a command we sent starts. */
static enum smtp_phase smtp_command_phase(const char *cmd, size_t n, enum smtp_phase cur)
{
    static const struct {
        const char *verb;
        enum smtp_phase phase;
    } verbs[] = {
        {"EHLO", SMTP_PHASE_EHLO}, {"HELO", SMTP_PHASE_EHLO}, {"STARTTLS", SMTP_PHASE_STARTTLS},
        {"AUTH", SMTP_PHASE_AUTH}, {"MAIL", SMTP_PHASE_MAIL}, {"RCPT", SMTP_PHASE_RCPT},
        {"DATA", SMTP_PHASE_DATA}, {"QUIT", SMTP_PHASE_QUIT}, {"RSET", SMTP_PHASE_MAIL},
    };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        size_t vl = strlen(verbs[i].verb);
        if (n >= vl && strncasecmp(cmd, verbs[i].verb, vl) == 0)
            return verbs[i].phase;
    }
    return cur; /* AUTH continuation lines and the like keep the phase */
}

static bool smtp_line_has_code(const char *line, size_t n)
{
    return n >= 3 && chars_is_digit((unsigned char)line[0]) &&
           chars_is_digit((unsigned char)line[1]) && chars_is_digit((unsigned char)line[2]);
}

/* Appends one received line (without CRLF) to the reply being built; when the line ends the
 * reply (no '-' after the code), the reply becomes the last complete one. */
static void smtp_reply_line(struct smtp_xfer *x, const char *line, size_t n)
{
    x->any_reply = true;
    if (x->cur_len + n + 2 <= SMTP_REPLY_MAX) {
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
    if (smtp_line_has_code(line, n) && n >= 4 && line[3] == '-')
        return;
    int code = smtp_line_has_code(line, n)
                   ? (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0')
                   : 0;
    /* The reply that decided the transaction is the last one before QUIT, and the first
     * failure: once a reply has refused something, curl's RSET or QUIT replies do not count. */
    if (x->phase == SMTP_PHASE_QUIT || x->last_code >= 400) {
        free(x->cur);
        x->cur = NULL;
        x->cur_len = 0;
        return;
    }
    free(x->last);
    x->last = x->cur ? x->cur : strdup("");
    x->cur = NULL;
    x->cur_len = 0;
    x->last_code = code;
    x->last_phase = x->phase;
    if (x->phase == SMTP_PHASE_DATA) {
        if (code == 354)
            x->saw_354 = true;
        else if (x->saw_354 && code >= 200 && code < 300)
            x->delivered = true;
    }
}

static void smtp_deadline_from_now(struct smtp_xfer *x)
{
    if (x->command_ms > 0)
        atomic_store(&x->conn->deadline_ms, smtp_wall_ms() + x->command_ms);
}

static int smtp_debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *arg)
{
    (void)easy;
    struct smtp_xfer *x = arg;
    switch (type) {
    case CURLINFO_HEADER_OUT:
        /* A command went out: its reply is due within the command timeout. */
        smtp_deadline_from_now(x);
        x->phase = smtp_command_phase(data, size, x->phase);
        if (x->phase != SMTP_PHASE_QUIT)
            x->cmd_phase = x->phase;
        break;
    case CURLINFO_DATA_OUT:
        /* The message is moving: the final reply is due a command timeout after the last of
         * it went out. */
        smtp_deadline_from_now(x);
        x->body_out += size;
        break;
    case CURLINFO_HEADER_IN: {
        /* One call usually holds one line, but split defensively. */
        size_t start = 0;
        for (size_t i = 0; i <= size; i++) {
            if (i == size || data[i] == '\n') {
                size_t end = i;
                while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n'))
                    end--;
                if (end > start || i < size)
                    smtp_reply_line(x, data + start, end - start);
                start = i + 1;
            }
        }
        break;
    }
    case CURLINFO_TEXT: {
        /* libcurl announces the TLS handshake's outcome as text:
         * "SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384". */
        static const char tag[] = "SSL connection using ";
        if (size > sizeof tag - 1 && memcmp(data, tag, sizeof tag - 1) == 0) {
            x->tls_on = true;
            size_t i = 0;
            const char *v = data + sizeof tag - 1;
            size_t vmax = size - (sizeof tag - 1);
            while (i < vmax && i + 1 < sizeof x->tls_version && v[i] != ' ' && v[i] != '\n')
                i++;
            memcpy(x->tls_version, v, i);
            x->tls_version[i] = '\0';
        }
        break;
    }
    default:
        break;
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

/* Socket bookkeeping: the caller's thread shuts a connection's socket down on a deadline, so
 * the worker records it under the mutex, and closes it under the mutex too, so that a number
 * the kernel gives to a new socket is never shut down by mistake. */
static curl_socket_t smtp_open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct smtp_conn *c = arg;
    struct smtp *s = c->pool;
    (void)purpose;
    pthread_mutex_lock(&s->mu);
    bool stop = c->job && (c->job->aborted || c->job->timed_out);
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (!stop) {
        fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
        if (fd != CURL_SOCKET_BAD)
            c->fd = fd;
    }
    pthread_mutex_unlock(&s->mu);
    return fd;
}

static int smtp_close_cb(void *arg, curl_socket_t fd)
{
    struct smtp_conn *c = arg;
    struct smtp *s = c->pool;
    pthread_mutex_lock(&s->mu);
    if (c->fd == fd)
        c->fd = CURL_SOCKET_BAD;
    int r = close(fd);
    pthread_mutex_unlock(&s->mu);
    return r;
}

static char *smtp_strdup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The strings parts[0..n) joined, NULL ones as "", in one new allocation. A job's URL and
 * connection key are built for every message, and snprintf was most of submitting it. */
static char *smtp_join(const char *const *parts, size_t n)
{
    size_t len[16], total = 1;
    if (n > sizeof len / sizeof len[0])
        return NULL;
    for (size_t i = 0; i < n; i++)
        total += len[i] = parts[i] ? strlen(parts[i]) : 0;
    char *out = malloc(total), *w = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (len[i])
            memcpy(w, parts[i], len[i]);
        w += len[i];
    }
    *w = '\0';
    return out;
}

static char *smtp_bracket(const char *addr)
{
    const char *p[] = {"<", addr, ">"};
    return smtp_join(p, 3);
}

/* A small non-negative number as decimal, into buf[12]. */
static const char *smtp_decimal(char buf[12], int v)
{
    char *p = buf + 11;
    unsigned u = v < 0 ? 0u : (unsigned)v;
    *p = '\0';
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    return p;
}

ipw_status smtp_submit(struct smtp *s, const struct smtp_job *job, struct err *e)
{
    struct smtp_xfer *x = calloc(1, sizeof *x);
    if (!x)
        return err_set(e, IPW_ENOMEM, "out of memory");
    x->user = job->user;
    x->data = job->data;
    x->len = job->len;
    x->implicit_tls = job->implicit_tls;
    x->tls = job->tls;
    x->tls_min = job->tls_min;
    x->verify_peer = job->verify_peer;
    x->connect_ms = job->connect_timeout_ms;
    x->command_ms = job->command_timeout_ms;
    /* The EHLO name travels as the URL path: smtp://host:port/helo.name. */
    bool v6 = strchr(job->host, ':') != NULL;
    char port[12];
    const char *ports = smtp_decimal(port, job->port);
    const char *url[] = {job->implicit_tls ? "smtps://" : "smtp://",
                         v6 ? "[" : "",
                         job->host,
                         v6 ? "]" : "",
                         ":",
                         ports,
                         "/",
                         job->helo};
    x->url = smtp_join(url, sizeof url / sizeof url[0]);
    x->mail_from = smtp_bracket(job->mail_from ? job->mail_from : "");
    char *rcpt = smtp_bracket(job->rcpt);
    if (rcpt) {
        x->rcpts = curl_slist_append(NULL, rcpt);
        free(rcpt);
    }
    if (job->connect_ip) {
        /* Pin the address we resolved ourselves (MX order, address family) while keeping the
         * host name for the TLS SNI and the certificate check: HOST:PORT:ADDRESS:PORT. */
        bool ip6 = strchr(job->connect_ip, ':') != NULL;
        const char *ct[] = {v6 ? "[" : "",  job->host,       v6 ? "]" : "",  ":", ports, ":",
                            ip6 ? "[" : "", job->connect_ip, ip6 ? "]" : "", ":", ports};
        char *c = smtp_join(ct, sizeof ct / sizeof ct[0]);
        if (c)
            x->connect_to = curl_slist_append(NULL, c);
        free(c);
    }
    if (job->source_ip) {
        const char *in[] = {"host!", job->source_ip};
        x->interface = smtp_join(in, 2);
    }
    x->username = smtp_strdup_or_null(job->username);
    x->password = smtp_strdup_or_null(job->password);
    x->ca_file = smtp_strdup_or_null(job->ca_file);
    /* What makes two jobs able to share a connection: everything libcurl matches a cached
     * connection on, and what we set per connection. */
    char tls[12], tls_min[12];
    const char *key[] = {x->url,
                         "|",
                         job->connect_ip,
                         "|",
                         job->source_ip,
                         "|",
                         smtp_decimal(tls, (int)job->tls),
                         "|",
                         smtp_decimal(tls_min, (int)job->tls_min),
                         "|",
                         job->verify_peer ? "1" : "0",
                         "|",
                         job->ca_file,
                         "|",
                         job->username};
    x->key = x->url ? smtp_join(key, sizeof key / sizeof key[0]) : NULL;
    if (!x->url || !x->mail_from || !x->rcpts || !x->key || (job->connect_ip && !x->connect_to) ||
        (job->source_ip && !x->interface) || (job->username && !x->username) ||
        (job->password && !x->password) || (job->ca_file && !x->ca_file)) {
        smtp_xfer_free(x);
        return err_set(e, IPW_ENOMEM, "out of memory");
    }
    x->started_ms = smtp_wall_ms();
    pthread_mutex_lock(&s->mu);
    *s->queue_tail = x;
    s->queue_tail = &x->next;
    s->running++;
    pthread_mutex_unlock(&s->mu);
    /* The caller's next smtp_perform() hands it to a connection before it waits for anything:
     * no wake-up needed (this is the caller's thread). */
    return IPW_OK;
}

/* Sets the options of one transaction on the connection's easy handle. */
static void smtp_xfer_options(struct smtp_conn *c, struct smtp_xfer *x)
{
    CURL *h = c->easy;
    curl_easy_setopt(h, CURLOPT_URL, x->url);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, x->mail_from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, x->rcpts);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, smtp_read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, x);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, smtp_debug_cb);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (x->connect_to)
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, x->connect_to);
    if (x->interface)
        curl_easy_setopt(h, CURLOPT_INTERFACE, x->interface);
    if (x->connect_ms > 0)
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)x->connect_ms);
    if (x->command_ms > 0) {
        /* The deadlines are ours (see the top of this file); libcurl's own timer is only a
         * backstop. */
        long secs = (long)((x->command_ms + 999) / 1000) + SMTP_CURL_TIMEOUT_SLACK_S;
        curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, secs);
    }
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, smtp_open_cb);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, smtp_close_cb);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, c);
    /* A password never goes out in clear: with a login, STARTTLS is required whatever the
     * plan's tls says for plain delivery. */
    if (!x->implicit_tls)
        curl_easy_setopt(h, CURLOPT_USE_SSL,
                         x->tls == PLAN_TLS_REQUIRED || x->username ? (long)CURLUSESSL_ALL
                                                                    : (long)CURLUSESSL_TRY);
    long ver = CURL_SSLVERSION_TLSv1_2;
    switch (x->tls_min) {
    case PLAN_TLS_1_0:
        ver = CURL_SSLVERSION_TLSv1_0;
        break;
    case PLAN_TLS_1_1:
        ver = CURL_SSLVERSION_TLSv1_1;
        break;
    case PLAN_TLS_1_2:
        ver = CURL_SSLVERSION_TLSv1_2;
        break;
    case PLAN_TLS_1_3:
        ver = CURL_SSLVERSION_TLSv1_3;
        break;
    }
    curl_easy_setopt(h, CURLOPT_SSLVERSION, ver);
    /* MX hosts are reached with opportunistic TLS (RFC 3207 says a public MX's certificate is
     * not checked); a relay is a known host whose certificate must verify. */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, x->verify_peer ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, x->verify_peer ? 2L : 0L);
    if (x->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, x->ca_file);
    if (x->username)
        curl_easy_setopt(h, CURLOPT_USERNAME, x->username);
    if (x->password)
        curl_easy_setopt(h, CURLOPT_PASSWORD, x->password);
}

/* Forgets what a failed try captured, for a second try on a new connection. */
static void smtp_xfer_restart(struct smtp_xfer *x)
{
    free(x->cur);
    free(x->last);
    x->cur = x->last = NULL;
    x->cur_len = 0;
    x->off = 0;
    x->body_out = 0;
    x->phase = x->cmd_phase = x->last_phase = SMTP_PHASE_CONNECT;
    x->last_code = 0;
    x->saw_354 = x->delivered = x->any_reply = x->tls_on = false;
    x->tls_version[0] = '\0';
    x->errbuf[0] = '\0';
}

static bool smtp_xfer_stopped(struct smtp *s, const struct smtp_xfer *x)
{
    pthread_mutex_lock(&s->mu);
    bool stopped = x->aborted || x->timed_out;
    pthread_mutex_unlock(&s->mu);
    return stopped;
}

/* Runs one transaction on the worker's thread. */
static void smtp_xfer_run(struct smtp_conn *c, struct smtp_xfer *x)
{
    struct smtp *s = c->pool;
    /* Until the greeting, the connect timeout comes on top of the reply timeout. */
    if (x->command_ms > 0)
        atomic_store(&c->deadline_ms,
                     smtp_wall_ms() + x->command_ms + (x->connect_ms > 0 ? x->connect_ms : 300000));
    smtp_xfer_options(c, x);
    x->rc = curl_easy_perform(c->easy);
    long fresh = -1;
    curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &fresh);
    if (x->rc != CURLE_OK && fresh == 0 && !x->any_reply && !x->saw_354 &&
        !smtp_xfer_stopped(s, x)) {
        /* The connection kept from the previous message had been closed by the server while
         * it was idle, which servers may do at any time: that says nothing about this message
         * or the provider. Once more on a new connection. */
        smtp_xfer_restart(x);
        curl_easy_setopt(c->easy, CURLOPT_FRESH_CONNECT, 1L);
        x->rc = curl_easy_perform(c->easy);
    }
    /* The handle keeps the connection but must not keep pointers into x, which is freed once
     * reported: a later QUIT would call the debug callback with it. */
    curl_easy_reset(c->easy);
    if (s->mask && (x->username || x->password)) {
        if (x->last)
            s->mask(x->last, x->username, x->password);
        if (x->cur)
            s->mask(x->cur, x->username, x->password);
    }
    x->finished_ms = smtp_wall_ms();
}

static void *smtp_conn_main(void *arg)
{
    struct smtp_conn *c = arg;
    struct smtp *s = c->pool;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!c->job && !c->quit)
            pthread_cond_wait(&c->cv, &s->mu);
        if (!c->job)
            break;
        struct smtp_xfer *x = c->job;
        pthread_mutex_unlock(&s->mu);
        smtp_xfer_run(c, x);
        pthread_mutex_lock(&s->mu);
        c->job = NULL;
        atomic_store(&c->deadline_ms, 0);
        c->state = c->quit ? SMTP_CONN_CLOSING : SMTP_CONN_IDLE;
        c->idle_since_ms = smtp_wall_ms();
        x->next = NULL;
        *s->done_tail = x;
        s->done_tail = &x->next;
        /* A caller busy elsewhere finds the result when it next looks, without a system call;
         * only one asleep in smtp_perform needs the byte. */
        if (s->waiting)
            smtp_wake(s);
    }
    c->state = SMTP_CONN_CLOSING;
    atomic_store(&c->deadline_ms, smtp_wall_ms() + SMTP_QUIT_MS);
    pthread_mutex_unlock(&s->mu);
    /* QUIT and its reply, bounded by the deadline above. */
    curl_easy_cleanup(c->easy);
    pthread_mutex_lock(&s->mu);
    c->easy = NULL;
    c->state = SMTP_CONN_DEAD;
    smtp_wake(s);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Starts a connection thread for x's destination, with x as its first job. Under the mutex. */
static bool smtp_conn_start(struct smtp *s, struct smtp_xfer *x)
{
    struct smtp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return false;
    c->pool = s;
    c->fd = CURL_SOCKET_BAD;
    c->key = strdup(x->key);
    c->easy = curl_easy_init();
    if (!c->key || !c->easy || pthread_cond_init(&c->cv, NULL) != 0) {
        if (c->easy)
            curl_easy_cleanup(c->easy);
        free(c->key);
        free(c);
        return false;
    }
    c->job = x;
    x->conn = c;
    c->state = SMTP_CONN_BUSY;
    if (pthread_create(&c->thread, NULL, smtp_conn_main, c) != 0) {
        x->conn = NULL;
        pthread_cond_destroy(&c->cv);
        curl_easy_cleanup(c->easy);
        free(c->key);
        free(c);
        return false;
    }
    c->next = s->conns;
    s->conns = c;
    s->n_conns++;
    return true;
}

/* Moves x to the done list as ended without contact. Under the mutex. */
static void smtp_xfer_fail_now(struct smtp *s, struct smtp_xfer *x, CURLcode rc, const char *why)
{
    x->rc = rc;
    snprintf(x->errbuf, sizeof x->errbuf, "%s", why);
    x->finished_ms = smtp_wall_ms();
    x->next = NULL;
    *s->done_tail = x;
    s->done_tail = &x->next;
}

/* Everything the caller's thread looks after, under the mutex: ended threads, idle
 * connections, deadlines, and the queue. Returns the earliest time it needs to look again. */
static int64_t smtp_housekeep(struct smtp *s, int64_t now)
{
    int64_t next = INT64_MAX;
    for (struct smtp_conn **pc = &s->conns; *pc;) {
        struct smtp_conn *c = *pc;
        if (c->state == SMTP_CONN_DEAD) {
            *pc = c->next;
            pthread_mutex_unlock(&s->mu);
            pthread_join(c->thread, NULL);
            pthread_mutex_lock(&s->mu);
            pthread_cond_destroy(&c->cv);
            free(c->key);
            free(c);
            s->n_conns--;
            continue;
        }
        if (c->state == SMTP_CONN_IDLE && now - c->idle_since_ms >= SMTP_IDLE_MS) {
            c->quit = true;
            c->state = SMTP_CONN_CLOSING;
            pthread_cond_signal(&c->cv);
        } else if (c->state == SMTP_CONN_IDLE && c->idle_since_ms + SMTP_IDLE_MS < next) {
            next = c->idle_since_ms + SMTP_IDLE_MS;
        }
        int64_t d = atomic_load(&c->deadline_ms);
        if (d > 0 && now >= d) {
            /* The awaited reply is late: end the wait (see the top of this file). */
            if (c->job)
                c->job->timed_out = true;
            if (c->fd != CURL_SOCKET_BAD)
                shutdown(c->fd, SHUT_RDWR);
            /* Look again soon: the socket may not be open yet. */
            if (now + 100 < next)
                next = now + 100;
        } else if (d > 0 && d < next) {
            next = d;
        }
        pc = &c->next;
    }
    /* Hand queued jobs to idle connections with the same destination, or to new ones. */
    int waiting = 0;
    for (struct smtp_xfer **px = &s->queue; *px;) {
        struct smtp_xfer *x = *px;
        struct smtp_conn *idle = NULL;
        for (struct smtp_conn *c = s->conns; c && !idle; c = c->next)
            if (c->state == SMTP_CONN_IDLE && !c->quit && strcmp(c->key, x->key) == 0)
                idle = c;
        bool taken = false;
        if (idle) {
            idle->job = x;
            x->conn = idle;
            idle->state = SMTP_CONN_BUSY;
            pthread_cond_signal(&idle->cv);
            taken = true;
        } else if (s->n_conns < s->max_conns) {
            taken = smtp_conn_start(s, x);
            if (!taken) {
                *px = x->next;
                if (!*px)
                    s->queue_tail = px;
                smtp_xfer_fail_now(s, x, CURLE_OUT_OF_MEMORY,
                                   "could not start a connection thread");
                continue;
            }
        }
        if (taken) {
            *px = x->next;
            if (!*px)
                s->queue_tail = px;
            continue;
        }
        waiting++;
        px = &x->next;
    }
    /* At the limit with jobs waiting: close idle connections to other destinations. */
    for (struct smtp_conn *c = s->conns; c && waiting > 0; c = c->next) {
        if (c->state == SMTP_CONN_IDLE && !c->quit) {
            c->quit = true;
            c->state = SMTP_CONN_CLOSING;
            pthread_cond_signal(&c->cv);
            waiting--;
        }
    }
    return next;
}

/* Fills the result of a finished transaction. */
static void smtp_result_fill(const struct smtp_xfer *x, struct smtp_result *r)
{
    memset(r, 0, sizeof *r);
    r->user = x->user;
    r->curl_code = (int)x->rc;
    r->started_ms = x->started_ms;
    r->finished_ms = x->finished_ms;
    r->delivered = x->delivered;
    r->aborted = x->aborted;
    r->tls_unavailable = x->rc == CURLE_USE_SSL_FAILED;
    r->tls = x->tls_on;
    snprintf(r->tls_version, sizeof r->tls_version, "%s", x->tls_version);
    /* The whole message went out after the 354 and no final reply came: the server may have
     * taken it (RFC 5321 section 6.1: the transaction's fate is decided by that reply). */
    r->unknown =
        !x->delivered && x->saw_354 && x->off >= x->len && x->body_out > 0 && x->last_code == 354;
    enum smtp_phase phase = x->phase;
    /* A failure after curl sent QUIT belongs to the command that was waiting, not to QUIT. */
    if (phase == SMTP_PHASE_QUIT && x->cmd_phase != SMTP_PHASE_QUIT && !x->delivered)
        phase = x->cmd_phase;
    r->reply = x->last;
    r->code = x->last_code;
    r->phase = x->last ? x->last_phase : phase;
    if (!x->last && x->cur && x->cur_len > 0) {
        /* The server closed in the middle of a multi-line reply: keep what arrived. */
        r->reply = x->cur;
        r->phase = phase;
    }
    if (x->rc != CURLE_OK && !x->delivered) {
        /* When the last reply was positive, no reply decided the failure: the connection broke,
         * a reply never came (timeout) or the TLS handshake failed. The attempt then has no
         * code and belongs to the phase of the command that was pending. */
        if (x->last_code < 400) {
            r->code = 0;
            r->reply = NULL;
            r->phase = phase == SMTP_PHASE_QUIT ? x->last_phase : phase;
            if (x->rc == CURLE_USE_SSL_FAILED ||
                (x->rc == CURLE_SSL_CONNECT_ERROR && !x->implicit_tls))
                r->phase = SMTP_PHASE_STARTTLS;
        }
        if (x->aborted)
            snprintf(r->error, sizeof r->error, "the run was stopped during the transaction");
        else if (x->timed_out)
            snprintf(r->error, sizeof r->error, "no reply within the command timeout (%lld ms)",
                     (long long)x->command_ms);
        else if (x->rc == CURLE_USE_SSL_FAILED && x->username)
            snprintf(r->error, sizeof r->error,
                     "the server offers no STARTTLS, and the login is never sent in clear");
        else if (x->rc == CURLE_USE_SSL_FAILED)
            snprintf(r->error, sizeof r->error,
                     "the server offers no STARTTLS and the plan requires TLS");
        else
            smtp_error_say(r->error, sizeof r->error,
                           x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->rc), r->phase);
    }
}

int smtp_perform(struct smtp *s, int timeout_ms, smtp_done_fn done, void *arg)
{
    int64_t until = smtp_wall_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int64_t now = smtp_wall_ms();
        pthread_mutex_lock(&s->mu);
        int64_t next = smtp_housekeep(s, now);
        struct smtp_xfer *list = s->done;
        s->done = NULL;
        s->done_tail = &s->done;
        /* Set with the look at the done list, under the mutex: a result that arrives after
         * the look finds it set and writes to the pipe. Cleared by the look that returns. */
        s->waiting = !list && now < until;
        pthread_mutex_unlock(&s->mu);
        if (list) {
            while (list) {
                struct smtp_xfer *x = list;
                list = x->next;
                struct smtp_result r;
                smtp_result_fill(x, &r);
                pthread_mutex_lock(&s->mu);
                s->running--;
                pthread_mutex_unlock(&s->mu);
                done(&r, arg);
                smtp_xfer_free(x);
            }
            return s->running;
        }
        if (now >= until)
            return s->running;
        int64_t wait = (next < until ? next : until) - now;
        if (wait < 1)
            wait = 1;
        struct pollfd p = {.fd = s->wake[0], .events = POLLIN};
        if (poll(&p, 1, (int)wait) > 0) {
            char buf[64];
            while (read(s->wake[0], buf, sizeof buf) > 0)
                ;
        }
    }
}

void smtp_abort(struct smtp *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->queue) {
        struct smtp_xfer *x = s->queue;
        s->queue = x->next;
        x->aborted = true;
        smtp_xfer_fail_now(s, x, CURLE_ABORTED_BY_CALLBACK, "the run was stopped");
    }
    s->queue_tail = &s->queue;
    for (struct smtp_conn *c = s->conns; c; c = c->next) {
        if (!c->job)
            continue;
        c->job->aborted = true;
        if (c->fd != CURL_SOCKET_BAD)
            shutdown(c->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&s->mu);
    smtp_wake(s);
}

void smtp_free(struct smtp *s)
{
    if (!s)
        return;
    smtp_abort(s);
    pthread_mutex_lock(&s->mu);
    for (struct smtp_conn *c = s->conns; c; c = c->next) {
        c->quit = true;
        pthread_cond_signal(&c->cv);
    }
    /* Wait for every thread, still enforcing the deadlines of their QUITs. */
    while (s->conns) {
        int64_t next = smtp_housekeep(s, smtp_wall_ms());
        if (!s->conns)
            break;
        pthread_mutex_unlock(&s->mu);
        int64_t wait = next - smtp_wall_ms();
        struct pollfd p = {.fd = s->wake[0], .events = POLLIN};
        if (poll(&p, 1, (int)(wait < 1 ? 1 : wait > 100 ? 100 : wait)) > 0) {
            char buf[64];
            while (read(s->wake[0], buf, sizeof buf) > 0)
                ;
        }
        pthread_mutex_lock(&s->mu);
    }
    while (s->done) {
        struct smtp_xfer *x = s->done;
        s->done = x->next;
        smtp_xfer_free(x);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_destroy(&s->mu);
    close(s->wake[0]);
    close(s->wake[1]);
    free(s);
}

int smtp_running(const struct smtp *s)
{
    return s->running;
}
