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
 * Two options turn it into a floor for libcurl senders that keep ipwarm's two rules, so
 * that the gap between ipwarm and the ceiling splits into what the rules cost and what ipwarm
 * adds on top of them (docs/benchmarks.md, "The floor"):
 *   --record DB  every attempt is committed to SQLite (WAL, synchronous=NORMAL, as ipwarm's
 *                store) before the transfer that could deliver it starts, and its outcome after
 *                it ended, in the cheapest form we know: one table with no index, a row per
 *                attempt, and group commit (a commit carries every start and outcome waiting at
 *                that moment);
 *   --threads    a thread per connection, each with curl_easy_perform. libcurl 7.88 waits for
 *                the reply to the final dot inside curl_multi_perform (smtp_done ->
 *                smtp_block_statemach), so a sender on one thread is stalled by any server that
 *                answers the dot slowly, as providers do; a thread per connection is how ipwarm
 *                avoids that.
 * Both together are the floor; each alone shows its own share.
 *
 * Usage: curl_sender [--record DB] [--threads] HOST PORT COUNT CONNECTIONS SIZE
 * Prints "sent N ok M seconds S rate R/s" on stdout; exits 1 when a message failed.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    CURL *easy;
    size_t off;
    sqlite3_int64 id; /* the attempt's row with --record */
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

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --record: the attempts table and its two statements. */
static sqlite3 *db;
static sqlite3_stmt *ins, *upd;

static int sql(const char *q)
{
    char *msg = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    fprintf(stderr, "curl_sender: %s: %s\n", q, msg ? msg : "?");
    sqlite3_free(msg);
    return -1;
}

static int record_open(const char *path)
{
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    if (sql("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
            "CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY, recipient TEXT NOT NULL,"
            " started_ms INTEGER NOT NULL, finished_ms INTEGER, code INTEGER,"
            " outcome TEXT NOT NULL DEFAULT 'in-flight')"))
        return -1;
    if (sqlite3_prepare_v3(db, "INSERT INTO attempts (recipient, started_ms) VALUES (?1, ?2)", -1,
                           SQLITE_PREPARE_PERSISTENT, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db,
                           "UPDATE attempts SET outcome = ?2, code = ?3, finished_ms = ?4"
                           " WHERE id = ?1 AND outcome = 'in-flight'",
                           -1, SQLITE_PREPARE_PERSISTENT, &upd, NULL) != SQLITE_OK) {
        fprintf(stderr, "curl_sender: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* Inserts the attempt for message n (its recipient as ipwarm's bench list names it). */
static int record_start(struct slot *s, long n)
{
    char rcpt[64];
    snprintf(rcpt, sizeof rcpt, "r%ld@sink.test", n + 1);
    sqlite3_bind_text(ins, 1, rcpt, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(ins, 2, now_ms());
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    s->id = sqlite3_last_insert_rowid(db);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int record_outcome(struct slot *s, CURLcode result)
{
    long code = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    sqlite3_bind_int64(upd, 1, s->id);
    sqlite3_bind_text(upd, 2, result == CURLE_OK ? "delivered" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(upd, 3, code);
    sqlite3_bind_int64(upd, 4, now_ms());
    int rc = sqlite3_step(upd);
    sqlite3_reset(upd);
    return rc == SQLITE_DONE && sqlite3_changes(db) == 1 ? 0 : -1;
}

static void slot_setup(struct slot *s, const char *url, struct curl_slist *rcpt)
{
    CURL *c = s->easy;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, "<bench@example.com>");
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, s);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(c, CURLOPT_PRIVATE, s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
}

/* --threads: each thread sends on its own handle until COUNT messages have been taken. With
 * --record, a thread hands its previous outcome and its next start to the store as one request
 * and waits until they are committed; whichever thread finds the store idle commits every request
 * waiting at that moment in one transaction (group commit), so a commit serves several threads. */
struct req {
    struct slot *s;
    long n;       /* the message to start, or -1 */
    int finished; /* an outcome to record first */
    CURLcode result;
    int done, failed;
};

static long t_count, t_next, t_ok, t_failed_records;
static pthread_mutex_t t_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t t_cv = PTHREAD_COND_INITIALIZER;
static struct req **t_wait;
static int t_n_wait, t_busy;

static void store_submit(struct req *r)
{
    struct req *batch[256];
    pthread_mutex_lock(&t_mu);
    t_wait[t_n_wait++] = r;
    while (!r->done) {
        if (t_busy) {
            pthread_cond_wait(&t_cv, &t_mu);
            continue;
        }
        t_busy = 1;
        int n = t_n_wait;
        memcpy(batch, t_wait, (size_t)n * sizeof *batch);
        t_n_wait = 0;
        pthread_mutex_unlock(&t_mu);
        sql("BEGIN");
        for (int i = 0; i < n; i++) {
            if (batch[i]->finished && record_outcome(batch[i]->s, batch[i]->result))
                batch[i]->failed = 1;
            if (batch[i]->n >= 0 && record_start(batch[i]->s, batch[i]->n))
                batch[i]->failed = 1;
        }
        int bad = sql("COMMIT");
        pthread_mutex_lock(&t_mu);
        for (int i = 0; i < n; i++) {
            batch[i]->failed |= bad;
            batch[i]->done = 1;
        }
        t_busy = 0;
        pthread_cond_broadcast(&t_cv);
    }
    pthread_mutex_unlock(&t_mu);
}

static void *thread_main(void *arg)
{
    struct slot *s = arg;
    struct req r = {.s = s};
    for (;;) {
        long n = __atomic_fetch_add(&t_next, 1, __ATOMIC_RELAXED);
        if (db) {
            r.n = n < t_count ? n : -1;
            r.done = r.failed = 0;
            store_submit(&r);
            if (r.failed)
                __atomic_fetch_add(&t_failed_records, 1, __ATOMIC_RELAXED);
        }
        if (n >= t_count)
            break;
        s->off = 0;
        r.result = curl_easy_perform(s->easy);
        r.finished = 1;
        if (r.result == CURLE_OK)
            __atomic_fetch_add(&t_ok, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *record = NULL;
    int threads = 0;
    while (argc > 1 && argv[1][0] == '-') {
        if (!strcmp(argv[1], "--threads"))
            threads = 1;
        else if (!strcmp(argv[1], "--record") && argc > 2)
            record = argv[2], argc--, argv++;
        else
            argc = 0;
        argc--, argv++;
    }
    if (argc != 6) {
        fprintf(stderr,
                "usage: curl_sender [--record DB] [--threads] HOST PORT COUNT CONNECTIONS SIZE\n");
        return 64;
    }
    long count = strtol(argv[3], NULL, 10), conns = strtol(argv[4], NULL, 10);
    long size = strtol(argv[5], NULL, 10);
    if (count < 1 || conns < 1 || size < 64)
        return 64;
    if (threads && record && conns > 256) {
        /* store_submit gathers at most one request per connection into a batch of 256. */
        fprintf(stderr, "curl_sender: --threads --record takes at most 256 connections\n");
        return 64;
    }
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
    if (record && record_open(record))
        return 70;
    CURLM *m = curl_multi_init();
    struct curl_slist *rcpt = curl_slist_append(NULL, "<rcpt@example.com>");
    struct slot *slots = calloc((size_t)conns, sizeof *slots);
    pthread_t *tids = calloc((size_t)conns, sizeof *tids);
    if (!m || !rcpt || !slots || !tids)
        return 70;
    long started = 0, done = 0, ok = 0, failed_records = 0;
    double t0 = now_s();
    if (threads) {
        t_count = count;
        t_wait = calloc((size_t)conns, sizeof *t_wait);
        if (!t_wait)
            return 70;
        for (long i = 0; i < conns; i++) {
            slots[i].easy = curl_easy_init();
            slot_setup(&slots[i], url, rcpt);
            if (pthread_create(&tids[i], NULL, thread_main, &slots[i]))
                return 70;
        }
        for (long i = 0; i < conns; i++)
            pthread_join(tids[i], NULL);
        done = count;
        ok = t_ok;
        failed_records = t_failed_records;
        free(t_wait);
    } else {
        if (record)
            sql("BEGIN");
        for (long i = 0; i < conns && started < count; i++, started++) {
            slots[i].easy = curl_easy_init();
            slot_setup(&slots[i], url, rcpt);
            if (record && record_start(&slots[i], started))
                failed_records++;
        }
        if (record)
            sql("COMMIT");
        for (long i = 0; i < conns && i < count; i++)
            curl_multi_add_handle(m, slots[i].easy);
        /* With --record, the turn's outcomes and starts are committed together before any
         * handle of the turn is added back (and so before its MAIL FROM). */
        struct slot **again = calloc((size_t)conns, sizeof *again);
        if (!again)
            return 70;
        while (done < count) {
            int running = 0, numfds = 0, n_again = 0;
            curl_multi_perform(m, &running);
            CURLMsg *msgp;
            int left;
            while ((msgp = curl_multi_info_read(m, &left))) {
                if (msgp->msg != CURLMSG_DONE)
                    continue;
                struct slot *s = NULL;
                curl_easy_getinfo(msgp->easy_handle, CURLINFO_PRIVATE, (char **)&s);
                if (record && sqlite3_get_autocommit(db))
                    sql("BEGIN");
                done++;
                if (msgp->data.result == CURLE_OK)
                    ok++;
                if (record && record_outcome(s, msgp->data.result))
                    failed_records++;
                curl_multi_remove_handle(m, s->easy);
                if (started < count) {
                    s->off = 0;
                    if (record && record_start(s, started))
                        failed_records++;
                    started++;
                    again[n_again++] = s;
                }
            }
            if (record && sqlite3_get_autocommit(db) == 0)
                sql("COMMIT");
            for (int i = 0; i < n_again; i++)
                curl_multi_add_handle(m, again[i]->easy);
            if (done < count)
                curl_multi_poll(m, NULL, 0, 1000, &numfds);
        }
        free(again);
    }
    double secs = now_s() - t0;
    printf("sent %ld ok %ld seconds %.3f rate %.1f/s\n", done, ok, secs, (double)done / secs);
    for (long i = 0; i < conns; i++)
        if (slots[i].easy)
            curl_easy_cleanup(slots[i].easy);
    curl_multi_cleanup(m);
    curl_slist_free_all(rcpt);
    curl_global_cleanup();
    if (record) {
        sqlite3_finalize(ins);
        sqlite3_finalize(upd);
        sqlite3_close(db);
        if (failed_records)
            fprintf(stderr, "curl_sender: %ld attempts not recorded\n", failed_records);
    }
    free(tids);
    free(slots);
    free(msg);
    return ok == count && failed_records == 0 ? 0 : 1;
}
