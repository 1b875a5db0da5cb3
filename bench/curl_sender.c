/*
 * curl_sender: the ceiling for a libcurl-based SMTP sender, for bench/throughput.sh.
 *
 * Sends N messages of a given size to one SMTP server (RFC 5321) over C connections with
 * libcurl's multi interface, and nothing else: no scheduling, no recording, no reply parsing,
 * no per-message allocation. Each of the C easy handles is reused for its next message, so
 * libcurl keeps its connection open and sends RSET/MAIL/RCPT/DATA on it. Whatever ipwarm does
 * on top of the same library (pacing, store writes, composition) shows as the gap between its
 * rate and this one.
 *
 * Usage: curl_sender HOST PORT COUNT CONNECTIONS SIZE
 * Prints "sent N ok M seconds S rate R/s" on stdout; exits 1 when a message failed.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    CURL *easy;
    size_t off;
};

static const char *body;
static size_t body_len;

static size_t read_cb(char *buf, size_t size, size_t n, void *arg)
{
    struct slot *s = arg;
    size_t left = body_len - s->off, want = size * n;
    if (want > left)
        want = left;
    memcpy(buf, body + s->off, want);
    s->off += want;
    return want;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: curl_sender HOST PORT COUNT CONNECTIONS SIZE\n");
        return 64;
    }
    long count = strtol(argv[3], NULL, 10), conns = strtol(argv[4], NULL, 10);
    long size = strtol(argv[5], NULL, 10);
    if (count < 1 || conns < 1 || size < 64)
        return 64;
    /* A plain RFC 5322 message of exactly size bytes, lines of 76 characters. */
    char *msg = malloc((size_t)size + 1);
    if (!msg)
        return 70;
    int hl = snprintf(msg, (size_t)size + 1,
                      "From: bench@example.com\r\nTo: rcpt@example.com\r\nSubject: bench\r\n\r\n");
    for (long i = hl; i < size; i++)
        msg[i] = (i - hl) % 78 == 76 ? '\r' : (i - hl) % 78 == 77 ? '\n' : 'x';
    msg[size - 2] = '\r';
    msg[size - 1] = '\n';
    body = msg;
    body_len = (size_t)size;

    char url[512];
    snprintf(url, sizeof url, "smtp://%s:%s/bench.example.com", argv[1], argv[2]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    struct curl_slist *rcpt = curl_slist_append(NULL, "<rcpt@example.com>");
    struct slot *slots = calloc((size_t)conns, sizeof *slots);
    if (!m || !rcpt || !slots)
        return 70;
    long started = 0, done = 0, ok = 0;
    for (long i = 0; i < conns && started < count; i++, started++) {
        CURL *c = curl_easy_init();
        slots[i].easy = c;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, "<bench@example.com>");
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(c, CURLOPT_READDATA, &slots[i]);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c, CURLOPT_PRIVATE, &slots[i]);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_multi_add_handle(m, c);
    }
    double t0 = now_s();
    while (done < count) {
        int running = 0, numfds = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msgp;
        int left;
        while ((msgp = curl_multi_info_read(m, &left))) {
            if (msgp->msg != CURLMSG_DONE)
                continue;
            struct slot *s = NULL;
            curl_easy_getinfo(msgp->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            done++;
            if (msgp->data.result == CURLE_OK)
                ok++;
            curl_multi_remove_handle(m, s->easy);
            if (started < count) {
                s->off = 0;
                started++;
                curl_multi_add_handle(m, s->easy);
            }
        }
        if (done < count)
            curl_multi_poll(m, NULL, 0, 1000, &numfds);
    }
    double secs = now_s() - t0;
    printf("sent %ld ok %ld seconds %.3f rate %.1f/s\n", done, ok, secs, (double)done / secs);
    for (long i = 0; i < conns; i++)
        if (slots[i].easy)
            curl_easy_cleanup(slots[i].easy);
    curl_multi_cleanup(m);
    curl_slist_free_all(rcpt);
    curl_global_cleanup();
    free(slots);
    free(msg);
    return ok == count ? 0 : 1;
}
