/*
 * gen_store: fills an ipwarm state file with a long history, for bench/scale.sh.
 *
 * The file must exist with ipwarm's schema (bench/scale.sh creates it with `ipwarm status`), so
 * the tables are exactly the ones store_schema.c migrates to (docs/schema.md); this program only
 * adds rows, in one transaction, with the indexes dropped during the load and rebuilt afterwards
 * from their own CREATE statements (sorting once is far faster than ten million B-tree
 * inserts). What it writes is consistent the way the engine keeps it:
 *   - ATTEMPTS attempts spread evenly over DAYS days before NOW_MS, over the plan's providers,
 *     to RECIPIENTS recipients (u<i>@s<k>.test, provider p<k>): mostly delivered, some deferred
 *     (451 4.7.500 Server busy), bounced (550 5.1.1) and failed (connection refused);
 *   - summary_hourly and summary_reasons: the exact per-hour counts of those attempts;
 *   - recipients: every recipient done (its last attempt in the past), none due, and the list
 *     read to its end by scan 1 (meta list.*, with the list's SHA-256 and file state given by
 *     the caller: docs/schema.md), so a tick has nothing to do;
 *   - providers: one row each, stage 3, as a warm campaign would have.
 * Usage: gen_store DB LIST_PATH LIST_BYTES LIST_LINES ATTEMPTS RECIPIENTS PROVIDERS DAYS NOW_MS
 *                  LIST_SHA256 LIST_STAT
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS  3600000LL
#define MAX_PROV 16

static sqlite3 *db;

static void die(const char *what)
{
    fprintf(stderr, "gen_store: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static void exec(const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "gen_store: %s: %s\n", sql, msg);
        exit(1);
    }
}

static sqlite3_stmt *prep(const char *sql)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        die(sql);
    return s;
}

static void step(sqlite3_stmt *s, const char *what)
{
    if (sqlite3_step(s) != SQLITE_DONE)
        die(what);
    sqlite3_reset(s);
}

/* Counts of one provider-hour, flushed when the hour changes (attempts come in time order). */
struct hour {
    int64_t hour_ms;
    int64_t n[4]; /* delivered, deferred, bounced, failed */
};

static const char *const OUTCOMES[4] = {"delivered", "deferred", "bounced", "failed"};
static const int CODES[4] = {250, 451, 550, 0};
static const char *const ENH[4] = {"2.0.0", "4.7.500", "5.1.1", ""};
static const char *const TEXTS[4] = {
    "2.0.0 OK queued as 4F2A9C1B", "4.7.500 Server busy. Please try again later from [192.0.2.10].",
    "5.1.1 <u@s.test>: Recipient address rejected: User unknown", "Connection refused"};
static const char *const MASKED[4] = {
    "", "4.7.500 Server busy. Please try again later from [<ip>].",
    "5.1.1 <<addr>>: Recipient address rejected: User unknown", "Connection refused"};

static sqlite3_stmt *s_sum, *s_reason;

static void flush(const char *prov, struct hour *h)
{
    int64_t total = h->n[0] + h->n[1] + h->n[2] + h->n[3];
    if (total == 0)
        return;
    sqlite3_bind_text(s_sum, 1, prov, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s_sum, 2, h->hour_ms);
    sqlite3_bind_int64(s_sum, 3, total);
    for (int i = 0; i < 4; i++)
        sqlite3_bind_int64(s_sum, 4 + i, h->n[i]);
    step(s_sum, "summary_hourly");
    for (int i = 1; i < 4; i++) {
        if (!h->n[i])
            continue;
        sqlite3_bind_text(s_reason, 1, prov, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s_reason, 2, h->hour_ms);
        sqlite3_bind_text(s_reason, 3, OUTCOMES[i], -1, SQLITE_STATIC);
        sqlite3_bind_int(s_reason, 4, CODES[i]);
        sqlite3_bind_text(s_reason, 5, ENH[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s_reason, 6, MASKED[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s_reason, 7, h->n[i]);
        step(s_reason, "summary_reasons");
    }
    memset(h->n, 0, sizeof h->n);
}

int main(int argc, char **argv)
{
    if (argc != 12) {
        fprintf(stderr, "usage: gen_store DB LIST_PATH LIST_BYTES LIST_LINES ATTEMPTS "
                        "RECIPIENTS PROVIDERS DAYS NOW_MS LIST_SHA256 LIST_STAT\n");
        return 64;
    }
    const char *list = argv[2], *list_bytes = argv[3], *list_lines = argv[4];
    int64_t n_att = strtoll(argv[5], NULL, 10), n_rcpt = strtoll(argv[6], NULL, 10);
    int n_prov = (int)strtol(argv[7], NULL, 10);
    int64_t days = strtoll(argv[8], NULL, 10), now = strtoll(argv[9], NULL, 10);
    if (n_att < 1 || n_rcpt < 1 || n_prov < 1 || n_prov > MAX_PROV || days < 1)
        return 64;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK)
        die("open");
    /* No journal while loading (a failed load is simply generated again): the WAL would
     * otherwise hold every page once more before the checkpoint copies it. */
    exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;"
         "PRAGMA temp_store=MEMORY");
    /* The indexes of the big tables, to rebuild after the load. */
    char *idx_sql[16];
    int n_idx = 0;
    sqlite3_stmt *q = prep("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS "
                           "NOT NULL AND tbl_name IN ('attempts', 'recipients')");
    char drop[16][256];
    while (sqlite3_step(q) == SQLITE_ROW && n_idx < 16) {
        snprintf(drop[n_idx], sizeof drop[n_idx], "DROP INDEX \"%s\"",
                 (const char *)sqlite3_column_text(q, 0));
        idx_sql[n_idx++] = strdup((const char *)sqlite3_column_text(q, 1));
    }
    sqlite3_finalize(q);
    for (int i = 0; i < n_idx; i++)
        exec(drop[i]);
    exec("BEGIN");

    int64_t start = now - days * 24 * HOUR_MS;
    int64_t span = now - start - HOUR_MS; /* the last hour stays empty: nothing in flight */
    sqlite3_stmt *ins = prep(
        "INSERT INTO attempts (id, started_ms, finished_ms, recipient, domain, provider, mx, "
        "source_ip, message_id, phase, code, enhanced, text, outcome, retry_no, dry_run) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '192.0.2.10', ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0)");
    s_sum = prep("INSERT INTO summary_hourly (provider, hour_ms, attempts, delivered, deferred, "
                 "bounced, failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    s_reason = prep("INSERT INTO summary_reasons (provider, hour_ms, outcome, code, enhanced, "
                    "text, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    struct hour hours[MAX_PROV];
    memset(hours, 0, sizeof hours);
    char prov[MAX_PROV][16], dom[MAX_PROV][32], mx[MAX_PROV][48];
    for (int k = 0; k < n_prov; k++) {
        snprintf(prov[k], sizeof prov[k], "p%d", k);
        snprintf(dom[k], sizeof dom[k], "s%d.test", k);
        snprintf(mx[k], sizeof mx[k], "mx.s%d.test", k);
        hours[k].hour_ms = -1;
    }
    uint64_t rng = 88172645463325252ULL;
    for (int64_t i = 0; i < n_att; i++) {
        int64_t t = start + (int64_t)((double)span * (double)i / (double)n_att);
        int64_t r = i % n_rcpt;
        int k = (int)(r % n_prov);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned roll = (unsigned)(rng % 1000);
        int o = roll < 950 ? 0 : roll < 980 ? 1 : roll < 990 ? 2 : 3;
        int64_t h = t - t % HOUR_MS;
        if (hours[k].hour_ms != h) {
            flush(prov[k], &hours[k]);
            hours[k].hour_ms = h;
        }
        hours[k].n[o]++;
        char addr[64], mid[96];
        snprintf(addr, sizeof addr, "u%lld@%s", (long long)r, dom[k]);
        snprintf(mid, sizeof mid, "<bench.%lld.%016llx@example.com>", (long long)i + 1,
                 (unsigned long long)rng);
        sqlite3_bind_int64(ins, 1, i + 1);
        sqlite3_bind_int64(ins, 2, t);
        sqlite3_bind_int64(ins, 3, t + 150);
        sqlite3_bind_text(ins, 4, addr, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 5, dom[k], -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 6, prov[k], -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 7, mx[k], -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 8, mid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 9,
                          o == 3   ? "connect"
                          : o == 2 ? "rcpt"
                          : o == 1 ? "mail"
                                   : "data",
                          -1, SQLITE_STATIC);
        if (CODES[o])
            sqlite3_bind_int(ins, 10, CODES[o]);
        else
            sqlite3_bind_null(ins, 10);
        if (ENH[o][0])
            sqlite3_bind_text(ins, 11, ENH[o], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 11);
        sqlite3_bind_text(ins, 12, TEXTS[o], -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 13, OUTCOMES[o], -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 14, (int)(i / n_rcpt) % 3);
        step(ins, "attempts");
    }
    for (int k = 0; k < n_prov; k++)
        flush(prov[k], &hours[k]);

    /* The queue: everyone done, the list read to its end. */
    sqlite3_stmt *rc = prep("INSERT INTO recipients (id, address, domain, provider, state, "
                            "next_at_ms, retries, first_attempt_ms, last_attempt_ms, "
                            "last_outcome, cycle, added_ms, list_offset, list_line, list_scan) "
                            "VALUES (?1, ?2, ?3, ?4, 'done', ?5, 0, ?5, ?5, 'delivered', 0, ?6, "
                            "?7, ?8, 1)");
    int64_t off = 0;
    for (int64_t r = 0; r < n_rcpt; r++) {
        int k = (int)(r % n_prov);
        char addr[64];
        int len = snprintf(addr, sizeof addr, "u%lld@%s", (long long)r, dom[k]);
        int64_t last =
            start + (int64_t)((double)span * (double)(n_att - n_rcpt + r) / (double)n_att);
        sqlite3_bind_int64(rc, 1, r + 1);
        sqlite3_bind_text(rc, 2, addr, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(rc, 3, dom[k], -1, SQLITE_STATIC);
        sqlite3_bind_text(rc, 4, prov[k], -1, SQLITE_STATIC);
        sqlite3_bind_int64(rc, 5, last);
        sqlite3_bind_int64(rc, 6, start);
        sqlite3_bind_int64(rc, 7, off);
        sqlite3_bind_int64(rc, 8, r + 1);
        step(rc, "recipients");
        off += len + 1;
    }
    sqlite3_stmt *m = prep("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)");
    const char *kv[7][2] = {{"list.path", list},       {"list.offset", list_bytes},
                            {"list.line", list_lines}, {"list.scan", "1"},
                            {"list.swept", "1"},       {"list.sha256", argv[10]},
                            {"list.stat", argv[11]}};
    for (int i = 0; i < 7; i++) {
        sqlite3_bind_text(m, 1, kv[i][0], -1, SQLITE_STATIC);
        sqlite3_bind_text(m, 2, kv[i][1], -1, SQLITE_STATIC);
        step(m, "meta");
    }
    sqlite3_stmt *p = prep("INSERT OR REPLACE INTO providers (name, stage, sending_day, "
                           "rate_per_min, updated_ms) VALUES (?1, 3, 40, 600, ?2)");
    for (int k = 0; k < n_prov; k++) {
        sqlite3_bind_text(p, 1, prov[k], -1, SQLITE_STATIC);
        sqlite3_bind_int64(p, 2, now - HOUR_MS);
        step(p, "providers");
    }
    exec("COMMIT");
    for (int i = 0; i < n_idx; i++) {
        exec(idx_sql[i]);
        free(idx_sql[i]);
    }
    exec("PRAGMA journal_mode=WAL");
    sqlite3_finalize(ins);
    sqlite3_finalize(s_sum);
    sqlite3_finalize(s_reason);
    sqlite3_finalize(rc);
    sqlite3_finalize(m);
    sqlite3_finalize(p);
    sqlite3_close(db);
    return 0;
}
