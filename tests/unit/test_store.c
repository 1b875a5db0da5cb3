/*
 * test_store: the SQLite state file.
 *
 * Migrations from an empty file and from each earlier schema version (rows written at the
 * earlier version must survive), refusal of newer, foreign and non-SQLite files, the connection
 * options, the attempt/outcome records and their hourly counters, crash recovery, the recipient
 * queue, provider state, rule actions, the MX cache, pre-flight records, and the run lock
 * between handles, processes, and after a holder is killed with SIGKILL. Processes that take
 * the lock are this binary re-executed (see main), so that no SQLite connection crosses a fork.
 * Every file lives in a mkdtemp directory removed at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipwarm/store.h"

/* 2026-01-01T00:00:00Z in ms: 1767225600 s (2025-01-01 is 1735689600, plus 365 days). */
#define T0   INT64_C(1767225600000)
#define HOUR INT64_C(3600000)

static char tmpdir[64];
static char self_exe[4096];

/* A fresh path in the temporary directory for one test. */
static const char *db_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s/%s.db", tmpdir, name);
    return buf;
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ipwarm-store-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
        unlink(p);
    }
    closedir(d);
    return rmdir(tmpdir);
}

static struct store *open_ok(const char *path)
{
    struct store *st = NULL;
    struct err e;
    err_clear(&e);
    ipw_status s = store_open(path, &st, &e);
    if (s != IPW_OK)
        print_error("store_open: %s\n", e.msg);
    assert_int_equal(s, IPW_OK);
    assert_non_null(st);
    return st;
}

static int64_t query_i64(struct store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void exec_ok(struct store *st, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(store_db(st), sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        print_error("%s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
}

static int table_exists(struct store *st, const char *name)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(st),
                                        "SELECT count(*) FROM sqlite_master "
                                        "WHERE type = 'table' AND name = ?1",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
}

/* ---- migrations ---- */

static const char *const TABLES[] = {
    "attempts",     "summary_hourly", "summary_reasons", "recipients", "providers",
    "rule_actions", "mx_cache",       "preflight_runs",  "meta",       "run_lock"};

static void test_migrate_from_empty(void **state)
{
    (void)state;
    const char *path = db_path("empty");
    struct store *st = open_ok(path);
    assert_int_equal(store_schema_version(), 6);
    assert_int_equal(store_version(st), 6);
    assert_int_equal(query_i64(st, "PRAGMA user_version"), 6);
    assert_int_equal(query_i64(st, "PRAGMA application_id"), 0x49505741);
    for (size_t i = 0; i < sizeof TABLES / sizeof TABLES[0]; i++)
        assert_int_equal(table_exists(st, TABLES[i]), 1);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                   "AND name IN ('attempts_recipient', 'attempts_started', "
                                   "'attempts_in_flight', 'recipients_due')"),
                     4);
    store_close(st);

    /* Opening again changes nothing. */
    st = open_ok(path);
    assert_int_equal(store_version(st), 6);
    store_close(st);
}

/*
 * Rows written at each earlier version, in that version's schema, and a query that finds them
 * after migrating to the newest. Entry v is for a file left at version v; a new migration adds
 * an entry here (the count is checked, so forgetting fails the test).
 */
static const struct {
    const char *seed;  /* NULL: nothing to seed (version 0 has no tables) */
    const char *check; /* counts the seeded rows at the newest version */
    int64_t expect;
} EARLIER[] = {
    {NULL, "SELECT count(*) FROM attempts", 0},
    /* Version 1: one attempt and one queued recipient (test_migrate_v1_rows checks more). */
    {"INSERT INTO attempts (started_ms, recipient, domain, provider, outcome) "
     "VALUES (1, 'a@example.org', 'example.org', 'other', 'delivered');"
     "INSERT INTO recipients (address, domain, provider, state, next_at_ms, added_ms) "
     "VALUES ('a@example.org', 'example.org', 'other', 'done', 0, 1);",
     "SELECT count(*) FROM attempts a JOIN recipients r ON r.address = a.recipient "
     "WHERE r.state = 'done' AND a.outcome = 'delivered'",
     1},
    /* Version 2: an attempt and its hourly counters (version 3 adds columns to both). */
    {"INSERT INTO attempts (started_ms, recipient, domain, provider, message_id, outcome) "
     "VALUES (3600000, 'b@example.org', 'example.org', 'other', '<x.1.2@example.com>', "
     "'delivered');"
     "INSERT INTO summary_hourly (provider, hour_ms, attempts, delivered, blocked) "
     "VALUES ('other', 3600000, 1, 1, 0);",
     "SELECT count(*) FROM attempts a JOIN summary_hourly h ON h.provider = a.provider "
     "WHERE a.message_id = '<x.1.2@example.com>' AND a.mail_from IS NULL "
     "AND h.delivered = 1 AND h.late_bounces = 0 AND h.complaints = 0",
     1},
    /* Version 3: a report read from the feedback mailbox (version 4 adds placements beside). */
    {"INSERT INTO attempts (started_ms, recipient, domain, provider, message_id, outcome) "
     "VALUES (7200000, 's@gmail.com', 'gmail.com', 'gmail', '<s.1.2@example.com>', "
     "'delivered');"
     "INSERT INTO feedback_reports (read_ms, mailbox, digest, kind) "
     "VALUES (7300000, 'imap://x/INBOX', 'sha256:00', 'other');",
     "SELECT count(*) FROM feedback_reports f, attempts a WHERE a.recipient = 's@gmail.com' "
     "AND NOT EXISTS (SELECT 1 FROM placements p WHERE p.attempt_id = a.id)",
     1},
    /* Version 4: a provider mid-ramp and a rule's suspension (version 5 keys providers by
     * (name, ip) and gives rule_actions an ip; test_migrate_v4_lane checks more). */
    {"INSERT INTO providers (name, stage, sending_day, sending_day_date, rate_per_min, "
     "updated_ms, pace_n, pace_rate) VALUES ('gmail', 3, 4, '2026-12-01', 16.875, 1, 7, 16.875);"
     "INSERT INTO rule_actions (provider, rule, action, reason, started_ms, expires_ms) "
     "VALUES ('gmail', 'gmail-rate', 'suspend', '421 4.7.28', 1, 99);",
     "SELECT count(*) FROM providers p JOIN rule_actions r ON r.provider = p.name "
     "WHERE p.ip = '' AND r.ip = '' AND p.stage = 3 AND p.sending_day = 4 AND p.pace_n = 7",
     1},
    /* Version 5: a value of every set that version 6 rewrites the CHECK of (only the text of
     * the schema changes: the rows are the same rows). */
    {"INSERT INTO attempts (id, started_ms, recipient, domain, provider, phase, outcome) "
     "VALUES (41, 1, 'q@gmail.com', 'gmail.com', 'gmail', 'quit', 'blocked');"
     "INSERT INTO recipients (address, domain, provider, state, next_at_ms, added_ms, "
     "last_outcome) VALUES ('q@gmail.com', 'gmail.com', 'gmail', 'skipped', 0, 1, 'blocked');"
     "INSERT INTO summary_reasons (provider, hour_ms, outcome, count) "
     "VALUES ('gmail', 0, 'blocked', 2);"
     "INSERT INTO rule_actions (provider, rule, action, started_ms) "
     "VALUES ('gmail', 'r', 'throttle', 1);"
     "INSERT INTO feedback_reports (read_ms, mailbox, digest, kind, matched_by, attempt_id) "
     "VALUES (2, 'imap://x/INBOX', 'sha256:01', 'complaint', 'header', 41);"
     "INSERT INTO placements (attempt_id, seed, result, found_ms) "
     "VALUES (41, 'seed@gmail.com', 'junk', 3);",
     "SELECT count(*) FROM attempts a JOIN recipients r ON r.address = a.recipient "
     "JOIN summary_reasons s ON s.outcome = a.outcome JOIN rule_actions x ON x.rule = 'r' "
     "JOIN feedback_reports f ON f.attempt_id = a.id JOIN placements p ON p.attempt_id = a.id "
     "WHERE a.phase = 'quit' AND r.state = 'skipped' AND r.last_outcome = 'blocked' "
     "AND s.count = 2 AND x.action = 'throttle' AND f.kind = 'complaint' "
     "AND f.matched_by = 'header' AND p.result = 'junk'",
     1},
};

/* Tables whose text still has a CHECK with an IN list of three or more values (version 6). */
static const char CHECK_LISTS[] = "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                  "AND sql LIKE '% IN (''%'',''%'',''%'')%'";

static void test_migrate_from_each_earlier(void **state)
{
    (void)state;
    int n = (int)(sizeof EARLIER / sizeof EARLIER[0]);
    assert_int_equal(n, store_schema_version());
    for (int v = 0; v < n; v++) {
        char name[32];
        snprintf(name, sizeof name, "from-v%d", v);
        const char *path = db_path(name);
        struct store *st = NULL;
        struct err e;
        assert_int_equal(store_open_at_version(path, v, &st, &e), IPW_OK);
        assert_int_equal(store_version(st), v);
        if (v == 0)
            assert_int_equal(query_i64(st, "SELECT count(*) FROM sqlite_master"), 0);
        if (EARLIER[v].seed)
            exec_ok(st, EARLIER[v].seed);
        store_close(st);

        st = open_ok(path);
        assert_int_equal(store_version(st), store_schema_version());
        for (size_t i = 0; i < sizeof TABLES / sizeof TABLES[0]; i++)
            assert_int_equal(table_exists(st, TABLES[i]), 1);
        assert_int_equal(query_i64(st, EARLIER[v].check), EARLIER[v].expect);
        assert_int_equal(query_i64(st, CHECK_LISTS), 0);
        store_close(st);
    }
}

/* How many instructions named op the statement sql compiles to, on st's connection. */
static int count_opcode(struct store *st, const char *sql, const char *op)
{
    char explain[1024];
    snprintf(explain, sizeof explain, "EXPLAIN %s", sql);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(st), explain, -1, &s, NULL), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(s) == SQLITE_ROW)
        if (strcmp((const char *)sqlite3_column_text(s, 1), op) == 0)
            n++;
    sqlite3_finalize(s);
    return n;
}

/* Version 6: the CHECKs refuse what they refused before, and writing a checked column builds
 * no temporary B-tree, on the connection that migrated (it read the new schema) and on a new
 * one. */
static void test_migrate_v6_checks(void **state)
{
    (void)state;
    static const char *const writes[] = {
        ("INSERT INTO attempts (started_ms, recipient, domain, provider, phase, outcome) "
         "VALUES (1, 'a@b.c', 'b.c', 'p', 'data', 'in-flight')"),
        "UPDATE attempts SET phase = 'data', outcome = 'delivered' WHERE id = 1",
        "UPDATE recipients SET state = 'done', last_outcome = 'delivered' WHERE id = 1",
        "INSERT INTO summary_reasons (provider, hour_ms, outcome) VALUES ('p', 0, 'deferred')",
    };
    static const char *const refused[] = {
        ("INSERT INTO attempts (started_ms, recipient, domain, provider, phase) "
         "VALUES (1, 'a@b.c', 'b.c', 'p', 'bogus')"),
        ("INSERT INTO attempts (started_ms, recipient, domain, provider, outcome) "
         "VALUES (1, 'a@b.c', 'b.c', 'p', 'Delivered')"),
        ("INSERT INTO recipients (address, domain, state, next_at_ms, added_ms) "
         "VALUES ('a@b.c', 'b.c', 'gone', 0, 0)"),
        ("INSERT INTO recipients (address, domain, next_at_ms, added_ms, last_outcome) "
         "VALUES ('a@b.c', 'b.c', 0, 0, 'bogus')"),
        "INSERT INTO summary_reasons (provider, hour_ms, outcome) VALUES ('p', 0, 'delivered')",
        ("INSERT INTO rule_actions (provider, rule, action, started_ms) "
         "VALUES ('p', 'r', 'stop', 1)"),
        ("INSERT INTO feedback_reports (read_ms, mailbox, digest, kind) "
         "VALUES (1, 'm', 'd', 'spam')"),
        ("INSERT INTO feedback_reports (read_ms, mailbox, digest, kind, matched_by) "
         "VALUES (1, 'm', 'd', 'other', 'guess')"),
        "INSERT INTO placements (attempt_id, seed, result, found_ms) VALUES (1, 's', 'spam', 1)",
    };
    const char *path = db_path("v6-checks");
    struct store *st = NULL;
    struct err e;
    assert_int_equal(store_open_at_version(path, 5, &st, &e), IPW_OK);
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        assert_int_not_equal(count_opcode(st, writes[i], "OpenEphemeral"), 0);
    store_close(st);
    for (int round = 0; round < 2; round++) {
        /* Round 0 migrates to the newest version; round 1 opens the migrated file anew. */
        st = open_ok(path);
        assert_int_equal(store_version(st), store_schema_version());
        for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
            assert_int_equal(count_opcode(st, writes[i], "OpenEphemeral"), 0);
        for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
            char *msg = NULL;
            int rc = sqlite3_exec(store_db(st), refused[i], NULL, NULL, &msg);
            if (rc != SQLITE_CONSTRAINT || !msg || !strstr(msg, "CHECK constraint failed"))
                print_error("%s: %d %s\n", refused[i], rc, msg ? msg : "?");
            assert_int_equal(rc, SQLITE_CONSTRAINT);
            /* The constraint that refused is the rewritten one. */
            if (i == 0)
                assert_non_null(strstr(msg, "(phase = 'connect' OR phase = 'ehlo' OR "));
            sqlite3_free(msg);
        }
        store_close(st);
    }
}

/* A file at the newest version keeps its rows through a reopen (migration is a no-op). */
static void test_reopen_keeps_rows(void **state)
{
    (void)state;
    const char *path = db_path("reopen");
    struct store *st = open_ok(path);
    struct err e;
    struct store_attempt a = {.started_ms = T0, .recipient = "a@example.org", .provider = "p"};
    int64_t id = 0;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    store_close(st);
    st = open_ok(path);
    int64_t n = 0;
    assert_int_equal(store_attempts_count(st, NULL, &n, &e), IPW_OK);
    assert_int_equal(n, 1);
    store_close(st);
}

/* Attempts another connection to path sees committed. */
static int64_t committed_attempts(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM attempts", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void attempt_add(struct store *st, const char *rcpt)
{
    struct err e;
    struct store_attempt a = {.started_ms = T0, .recipient = rcpt, .provider = "p"};
    int64_t id = 0;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
}

/* A held batch is committed with the batch that joins it, or alone before any other batch
 * begins or when released; a joiner that fails takes only its own writes back. */
static void test_batch_hold_join(void **state)
{
    (void)state;
    const char *path = db_path("hold");
    struct store *st = open_ok(path);
    struct err e;

    /* Held, then joined: nothing is visible until the joiner's end, then both are. */
    assert_int_equal(store_batch_begin(st, &e), IPW_OK);
    attempt_add(st, "a@example.org");
    store_batch_hold(st);
    assert_int_equal(committed_attempts(path), 0);
    assert_int_equal(store_batch_join(st, &e), IPW_OK);
    attempt_add(st, "b@example.org");
    assert_int_equal(committed_attempts(path), 0);
    assert_int_equal(store_batch_end(st, IPW_OK, &e), IPW_OK);
    assert_int_equal(committed_attempts(path), 2);

    /* The joiner fails: its end returns its error, the held write is committed, its own is
     * not. */
    assert_int_equal(store_batch_begin(st, &e), IPW_OK);
    attempt_add(st, "c@example.org");
    store_batch_hold(st);
    assert_int_equal(store_batch_join(st, &e), IPW_OK);
    attempt_add(st, "d@example.org");
    assert_int_equal(store_batch_end(st, IPW_EIO, &e), IPW_EIO);
    assert_int_equal(committed_attempts(path), 3);
    assert_int_equal(
        query_i64(st, "SELECT count(*) FROM attempts WHERE recipient = 'd@example.org'"), 0);

    /* Another batch begins: the held one is committed first, on its own. */
    assert_int_equal(store_batch_begin(st, &e), IPW_OK);
    attempt_add(st, "e@example.org");
    store_batch_hold(st);
    assert_int_equal(store_batch_begin(st, &e), IPW_OK);
    assert_int_equal(committed_attempts(path), 4);
    attempt_add(st, "f@example.org");
    assert_int_equal(store_batch_end(st, IPW_EIO, &e), IPW_EIO);
    assert_int_equal(committed_attempts(path), 4);

    /* A write of its own (not a join) commits the held batch first, then itself. */
    assert_int_equal(store_batch_begin(st, &e), IPW_OK);
    attempt_add(st, "i@example.org");
    store_batch_hold(st);
    attempt_add(st, "j@example.org");
    assert_int_equal(committed_attempts(path), 6);

    /* Released: committed; releasing again, or with nothing held, does nothing. */
    assert_int_equal(store_batch_begin(st, &e), IPW_OK);
    attempt_add(st, "g@example.org");
    store_batch_hold(st);
    assert_int_equal(store_batch_release(st, &e), IPW_OK);
    assert_int_equal(committed_attempts(path), 7);
    assert_int_equal(store_batch_release(st, &e), IPW_OK);

    /* Joining with nothing held begins a batch of its own. */
    assert_int_equal(store_batch_join(st, &e), IPW_OK);
    attempt_add(st, "h@example.org");
    assert_int_equal(committed_attempts(path), 7);
    assert_int_equal(store_batch_end(st, IPW_OK, &e), IPW_OK);
    assert_int_equal(committed_attempts(path), 8);
    store_close(st);
}

static void test_at_version_bounds(void **state)
{
    (void)state;
    struct store *st = (struct store *)1;
    struct err e;
    assert_int_equal(store_open_at_version(db_path("bounds"), store_schema_version() + 1, &st, &e),
                     IPW_EUSAGE);
    assert_null(st);
    assert_int_equal(store_open_at_version(db_path("bounds"), -1, &st, &e), IPW_EUSAGE);
}

static void test_refuse_newer_version(void **state)
{
    (void)state;
    const char *path = db_path("newer");
    struct store *st = open_ok(path);
    int newer = store_schema_version() + 1;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", newer);
    exec_ok(st, sql);
    store_close(st);

    struct err e;
    err_clear(&e);
    st = (struct store *)1;
    assert_int_equal(store_open(path, &st, &e), IPW_EIO);
    assert_null(st);
    assert_int_equal(e.status, IPW_EIO);
    char want[128];
    snprintf(want, sizeof want, "has schema version %d", newer);
    assert_non_null(strstr(e.msg, want));
    snprintf(want, sizeof want, "knows versions up to %d", newer - 1);
    assert_non_null(strstr(e.msg, want));
    assert_non_null(strstr(e.msg, path));
}

static void test_refuse_not_sqlite(void **state)
{
    (void)state;
    const char *path = db_path("text");
    char content[2048];
    size_t len = 0;
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(content + len, sizeof content - len,
                                "line %02d: this is a plan, not a database\n", i);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    fclose(f);

    struct store *st = (struct store *)1;
    struct err e;
    err_clear(&e);
    assert_int_equal(store_open(path, &st, &e), IPW_EIO);
    assert_null(st);
    assert_non_null(strstr(e.msg, "is not an SQLite database"));
    assert_non_null(strstr(e.msg, path));

    /* Refused before anything was written: same bytes, no WAL file beside it. */
    char back[2048];
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fread(back, 1, sizeof back, f), len);
    fclose(f);
    assert_memory_equal(back, content, len);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(access(wal, F_OK), -1);

    /* Shorter than an SQLite header. */
    path = db_path("tiny");
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("hello\n", f);
    fclose(f);
    err_clear(&e);
    assert_int_equal(store_open(path, &st, &e), IPW_EIO);
    assert_non_null(strstr(e.msg, "is not an SQLite database"));
}

static void test_refuse_foreign_sqlite(void **state)
{
    (void)state;
    const char *path = db_path("foreign");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE notes (t TEXT)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct store *st = NULL;
    struct err e;
    assert_int_equal(store_open(path, &st, &e), IPW_EIO);
    assert_non_null(strstr(e.msg, "another program"));
}

static void test_cannot_create(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/no-such-dir/x.db", tmpdir);
    struct store *st = NULL;
    struct err e;
    assert_int_equal(store_open(path, &st, &e), IPW_ECANTCREAT);
    assert_non_null(strstr(e.msg, path));

    struct store_options opt = {.must_exist = 1};
    assert_int_equal(store_open_opts(db_path("missing"), &opt, &st, &e), IPW_ENOINPUT);
    assert_int_equal(access(db_path("missing"), F_OK), -1);
}

static void test_connection_options(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("options"));
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(st), "PRAGMA journal_mode", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(query_i64(st, "PRAGMA foreign_keys"), 1);
    assert_int_equal(query_i64(st, "PRAGMA synchronous"), 1); /* NORMAL */
    assert_int_equal(query_i64(st, "PRAGMA busy_timeout"), 5000);
    store_set_busy_timeout(st, 250);
    assert_int_equal(query_i64(st, "PRAGMA busy_timeout"), 250);
    store_close(st);

    struct store_options opt = {.busy_timeout_ms = 1234};
    struct err e;
    assert_int_equal(store_open_opts(db_path("options"), &opt, &st, &e), IPW_OK);
    assert_int_equal(query_i64(st, "PRAGMA busy_timeout"), 1234);
    store_close(st);
}

/* Another connection holding the write lock past the busy timeout gives IPW_ETEMP. */
static void test_busy_is_temporary(void **state)
{
    (void)state;
    const char *path = db_path("busy");
    struct store *st = open_ok(path);
    store_set_busy_timeout(st, 100);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    struct store_attempt a = {.started_ms = T0, .recipient = "b@example.org", .provider = "p"};
    struct err e;
    int64_t id;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_ETEMP);
    assert_non_null(strstr(e.msg, "database is locked by another program (tried for 100 ms)"));
    assert_non_null(strstr(e.msg, path));

    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    store_close(st);
}

/* ---- attempts ---- */

static void test_attempt_round_trip(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("attempt"));
    struct err e;
    struct store_attempt in = {
        .started_ms = T0 + 1234,
        .recipient = "alice@example.jp",
        .provider = "gmail",
        .mx = "alt1.gmail-smtp-in.l.google.com",
        .source_ip = "192.0.2.10",
        .message_id = "<1.abc@example.com>",
        .phase = "connect",
        .retry_no = 2,
        .code = 999,          /* ignored by begin */
        .outcome = "bounced", /* ignored by begin */
    };
    int64_t id = 0;
    assert_int_equal(store_attempt_begin(st, &in, &id, &e), IPW_OK);
    assert_true(id > 0);

    struct store_attempt a;
    assert_int_equal(store_attempt_get(st, id, &a, &e), IPW_OK);
    assert_int_equal(a.id, id);
    assert_int_equal(a.started_ms, T0 + 1234);
    assert_int_equal(a.finished_ms, 0);
    assert_string_equal(a.recipient, "alice@example.jp");
    assert_string_equal(a.domain, "example.jp");
    assert_string_equal(a.provider, "gmail");
    assert_string_equal(a.mx, "alt1.gmail-smtp-in.l.google.com");
    assert_string_equal(a.source_ip, "192.0.2.10");
    assert_string_equal(a.message_id, "<1.abc@example.com>");
    assert_string_equal(a.phase, "connect");
    assert_int_equal(a.code, 0);
    assert_null(a.enhanced);
    assert_null(a.text);
    assert_string_equal(a.outcome, "in-flight");
    assert_int_equal(a.retry_no, 2);
    assert_int_equal(a.dry_run, 0);
    store_attempt_clear(&a);

    const char *reply = "Service unavailable, Client host [192.0.2.10] blocked using "
                        "Spamhaus.\r\nSecond line of the reply";
    assert_int_equal(
        store_attempt_finish(st, id, T0 + 5678, "rcpt", 451, "4.7.500", reply, "deferred", &e),
        IPW_OK);
    assert_int_equal(store_attempt_get(st, id, &a, &e), IPW_OK);
    assert_int_equal(a.finished_ms, T0 + 5678);
    assert_string_equal(a.phase, "rcpt");
    assert_int_equal(a.code, 451);
    assert_string_equal(a.enhanced, "4.7.500");
    assert_string_equal(a.text, reply);
    assert_string_equal(a.outcome, "deferred");
    store_attempt_clear(&a);

    /* An outcome is recorded once; unknown ids and values are refused. */
    assert_int_equal(store_attempt_finish(st, id, T0, NULL, 250, NULL, NULL, "delivered", &e),
                     IPW_ENOTFOUND);
    assert_int_equal(store_attempt_finish(st, id + 100, T0, NULL, 0, NULL, NULL, "failed", &e),
                     IPW_ENOTFOUND);
    assert_int_equal(store_attempt_finish(st, id, T0, NULL, 0, NULL, NULL, "lost", &e), IPW_EUSAGE);
    assert_int_equal(store_attempt_finish(st, id, T0, "helo", 0, NULL, NULL, "failed", &e),
                     IPW_EUSAGE);
    assert_int_equal(store_attempt_finish(st, id, T0, NULL, 99, NULL, NULL, "failed", &e),
                     IPW_EUSAGE);
    struct store_attempt bad = {
        .started_ms = T0, .recipient = "x@y", .provider = "p", .phase = "hello"};
    assert_int_equal(store_attempt_begin(st, &bad, &id, &e), IPW_EUSAGE);
    bad.phase = NULL;
    bad.recipient = "no-domain";
    assert_int_equal(store_attempt_begin(st, &bad, &id, &e), IPW_EUSAGE);

    /* Failure without a reply: code NULL, phase kept from begin when NULL is given. */
    struct store_attempt in2 = {.started_ms = T0 + 10,
                                .recipient = "bob@example.jp",
                                .provider = "other",
                                .phase = "connect",
                                .dry_run = 1};
    int64_t id2 = 0;
    assert_int_equal(store_attempt_begin(st, &in2, &id2, &e), IPW_OK);
    assert_int_equal(store_attempt_finish(st, id2, T0 + 30010, NULL, 0, NULL,
                                          "connect to 203.0.113.5:25: Connection refused", "failed",
                                          &e),
                     IPW_OK);
    assert_int_equal(store_attempt_get(st, id2, &a, &e), IPW_OK);
    assert_string_equal(a.phase, "connect");
    assert_int_equal(a.code, 0);
    assert_int_equal(a.dry_run, 1);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM attempts WHERE code IS NULL"), 1);
    store_attempt_clear(&a);
    store_close(st);
}

struct seen {
    int n;
    int64_t started[8];
    char outcome[8][16];
};

static int collect_attempt(const struct store_attempt *a, void *ctx)
{
    struct seen *s = ctx;
    if (s->n < 8) {
        s->started[s->n] = a->started_ms;
        snprintf(s->outcome[s->n], sizeof s->outcome[0], "%s", a->outcome);
    }
    s->n++;
    return 0;
}

static void test_attempts_for_recipient(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("trace"));
    struct err e;
    /* Recorded out of order; trace lists by start time. */
    const int64_t starts[] = {T0 + 3000, T0 + 1000, T0 + 2000};
    for (int i = 0; i < 3; i++) {
        struct store_attempt a = {
            .started_ms = starts[i], .recipient = "c@example.net", .provider = "p"};
        int64_t id;
        assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    }
    struct store_attempt other = {.started_ms = T0, .recipient = "d@example.net", .provider = "p"};
    int64_t id;
    assert_int_equal(store_attempt_begin(st, &other, &id, &e), IPW_OK);

    struct seen s = {0};
    assert_int_equal(store_attempts_for_recipient(st, "c@example.net", collect_attempt, &s, &e),
                     IPW_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.started[0], T0 + 1000);
    assert_int_equal(s.started[1], T0 + 2000);
    assert_int_equal(s.started[2], T0 + 3000);
    assert_string_equal(s.outcome[0], "in-flight");
    store_close(st);
}

static void test_recover_in_flight(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("recover"));
    struct err e;
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        struct store_attempt a = {.started_ms = T0 + i * HOUR,
                                  .recipient = "e@example.com",
                                  .provider = "microsoft",
                                  .phase = "data"};
        assert_int_equal(store_attempt_begin(st, &a, &ids[i], &e), IPW_OK);
    }
    assert_int_equal(store_attempt_finish(st, ids[0], T0 + 500, "quit", 250, "2.0.0", "OK queued",
                                          "delivered", &e),
                     IPW_OK);
    store_close(st);

    /* The "next run" after a crash. */
    st = open_ok(db_path("recover"));
    int64_t n = -1;
    assert_int_equal(store_attempts_recover(st, T0 + 10 * HOUR, &n, &e), IPW_OK);
    assert_int_equal(n, 2);
    int64_t c = -1;
    assert_int_equal(store_attempts_count(st, "in-flight", &c, &e), IPW_OK);
    assert_int_equal(c, 0);
    assert_int_equal(store_attempts_count(st, "unknown", &c, &e), IPW_OK);
    assert_int_equal(c, 2);
    assert_int_equal(store_attempts_count(st, "delivered", &c, &e), IPW_OK);
    assert_int_equal(c, 1);

    struct store_attempt a;
    assert_int_equal(store_attempt_get(st, ids[0], &a, &e), IPW_OK);
    assert_string_equal(a.outcome, "delivered");
    assert_int_equal(a.finished_ms, T0 + 500);
    store_attempt_clear(&a);
    assert_int_equal(store_attempt_get(st, ids[2], &a, &e), IPW_OK);
    assert_string_equal(a.outcome, "unknown");
    assert_int_equal(a.finished_ms, T0 + 10 * HOUR);
    assert_string_equal(a.phase, "data");
    assert_non_null(strstr(a.text, "in flight"));
    store_attempt_clear(&a);

    /* An unknown attempt cannot be finished later, and a second recovery finds nothing. */
    assert_int_equal(store_attempt_finish(st, ids[1], T0, NULL, 250, NULL, NULL, "delivered", &e),
                     IPW_ENOTFOUND);
    assert_int_equal(store_attempts_recover(st, T0 + 11 * HOUR, &n, &e), IPW_OK);
    assert_int_equal(n, 0);
    /* Hours T0, T0+1h, T0+2h: one delivered, one unknown, one unknown. */
    assert_int_equal(query_i64(st, "SELECT sum(unknown) FROM summary_hourly"), 2);
    assert_int_equal(query_i64(st, "SELECT sum(attempts) FROM summary_hourly"), 3);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM summary_hourly"), 3);
    store_close(st);
}

/* Every row of a query, columns joined by '|' and rows by '\n', into a malloc'd string. */
static char *dump(struct store *st, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    while (sqlite3_step(s) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(s); i++) {
            const char *v = (const char *)sqlite3_column_text(s, i);
            size_t need = len + (v ? strlen(v) : 4) + 3;
            if (need > cap) {
                cap = need * 2;
                out = realloc(out, cap);
                assert_non_null(out);
            }
            len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "|" : "", v ? v : "NULL");
        }
        out[len++] = '\n';
        out[len] = '\0';
    }
    sqlite3_finalize(s);
    return out;
}

/* The tables version 2 copies unchanged, with version 1's columns, in a fixed order. */
static const char *const V1_UNCHANGED[] = {
    "SELECT id, started_ms, finished_ms, recipient, domain, provider, mx, source_ip, message_id, "
    "phase, code, enhanced, text, outcome, retry_no, dry_run FROM attempts ORDER BY id",
    "SELECT provider, hour_ms, attempts, delivered, deferred, bounced, failed, expired, unknown "
    "FROM summary_hourly ORDER BY provider, hour_ms",
    "SELECT provider, hour_ms, outcome, code, enhanced, text, count FROM summary_reasons "
    "ORDER BY provider, hour_ms, outcome, code, enhanced, text",
    "SELECT name, stage, sending_day, sending_day_date, rate_per_min, sent_today, "
    "sent_today_date, paused_until_ms, pause_reason, pause_level, pause_manual, "
    "last_deferral_ms, rate_changed_ms, last_reply, last_reply_ms, next_send_ms, updated_ms, "
    "pace_anchor_ms, pace_n, pace_rate FROM providers ORDER BY name",
    "SELECT id, provider, rule, action, rate_per_min, reason, started_ms, expires_ms, manual "
    "FROM rule_actions ORDER BY id",
    "SELECT * FROM mx_cache ORDER BY domain",
    "SELECT * FROM preflight_runs ORDER BY id",
    "SELECT * FROM meta ORDER BY key",
    "SELECT * FROM run_lock",
};

/* Rows in every table of a version 1 file survive version 2's table rebuilds; the recipients
 * version 1 got wrong are repaired, and addresses differing only in case are merged. */
static void test_migrate_v1_rows(void **state)
{
    (void)state;
    const char *path = db_path("v1-rows");
    struct store *st = NULL;
    struct err e;
    assert_int_equal(store_open_at_version(path, 1, &st, &e), IPW_OK);
    exec_ok(st,
            /* attempts: a delivery, a 550, a dry run, a local "bounce" (no MX host, no code),
             * a real deferral then a dry run, an attempt the run lost */
            "INSERT INTO attempts VALUES (1, 1000, 1100, 'Mixed@Example.org', 'example.org', "
            "'gmail', 'mx.google.com', '192.0.2.1', '<1@x>', 'data', 250, '2.0.0', 'OK', "
            "'delivered', 0, 0);"
            "INSERT INTO attempts VALUES (2, 2000, 2100, 'bounce@example.org', 'example.org', "
            "'gmail', 'mx.google.com', '192.0.2.1', '<2@x>', 'rcpt', 550, '5.1.1', 'no such user',"
            " 'bounced', 0, 0);"
            "INSERT INTO attempts VALUES (3, 3000, 3000, 'dry@example.org', 'example.org', "
            "'gmail', NULL, '192.0.2.1', '<3@x>', 'data', 250, NULL, 'dry run', 'unknown', 0, 1);"
            "INSERT INTO attempts VALUES (4, 4000, 4000, 'local@example.org', 'example.org', "
            "'gmail', NULL, '192.0.2.1', '<4@x>', 'connect', NULL, NULL, 'list changed', "
            "'bounced', 0, 0);"
            "INSERT INTO attempts VALUES (5, 5000, 5100, 'dry2@example.org', 'example.org', "
            "'gmail', 'mx.google.com', '192.0.2.1', '<5@x>', 'rcpt', 451, '4.7.0', 'later', "
            "'deferred', 0, 0);"
            "INSERT INTO attempts VALUES (6, 6000, 6000, 'dry2@example.org', 'example.org', "
            "'gmail', NULL, '192.0.2.1', '<6@x>', 'data', 250, NULL, 'dry run', 'delivered', 1, "
            "1);"
            "INSERT INTO attempts VALUES (7, 7000, 7500, 'held@example.org', 'example.org', "
            "'gmail', 'mx.google.com', '192.0.2.1', '<7@x>', 'data', NULL, NULL, 'lost', "
            "'unknown', 0, 0);"
            "INSERT INTO summary_hourly VALUES ('gmail', 0, 5, 1, 1, 2, 0, 0, 1);"
            "INSERT INTO summary_reasons VALUES ('gmail', 0, 'bounced', 550, '5.1.1', "
            "'no such user', 1);"
            /* recipients (id, address, domain, provider, state, next_at_ms, retries, reason,
             * first_attempt_ms, last_attempt_ms, last_outcome, cycle, added_ms, list_offset,
             * list_line) */
            "INSERT INTO recipients VALUES (1, 'mixed@example.org', 'example.org', 'gmail', "
            "'pending', 0, 0, NULL, NULL, NULL, NULL, 0, 10, 6, 2);"
            "INSERT INTO recipients VALUES (2, 'Mixed@Example.org', 'example.org', 'gmail', "
            "'done', 0, 0, NULL, 1000, 1000, 'delivered', 0, 10, 30, 3);"
            "INSERT INTO recipients VALUES (3, 'bounce@example.org', 'example.org', 'gmail', "
            "'suppressed', 0, 0, '550 5.1.1 no such user', 2000, 2000, 'bounced', 0, 10, 50, 4);"
            "INSERT INTO recipients VALUES (4, 'dry@example.org', 'example.org', 'gmail', "
            "'held', 0, 0, 'the run stopped', 3000, 3000, 'unknown', 0, 10, 70, 5);"
            "INSERT INTO recipients VALUES (5, 'local@example.org', 'example.org', 'gmail', "
            "'suppressed', 0, 0, 'list changed', 4000, 4000, 'bounced', 0, 10, 90, 6);"
            "INSERT INTO recipients VALUES (6, 'dry2@example.org', 'example.org', 'gmail', "
            "'pending', 9000, 1, NULL, 5000, 6000, 'in-flight', 0, 10, 110, 7);"
            "INSERT INTO recipients VALUES (7, 'held@example.org', 'example.org', 'gmail', "
            "'held', 0, 0, 'the run stopped', 7000, 7000, 'unknown', 0, 10, 130, 8);"
            "INSERT INTO recipients VALUES (8, 'x@null.example', 'null.example', 'other', "
            "'suppressed', 0, 0, 'null.example cannot receive mail: it publishes a null MX', "
            "NULL, NULL, NULL, 0, 10, 150, 9);"
            "INSERT INTO recipients VALUES (9, 'p@example.org', 'example.org', 'gmail', "
            "'pending', 123, 2, NULL, 50, 60, 'deferred', 3, 10, 170, 10);"
            "INSERT INTO providers VALUES ('gmail', 2, 3, '2026-01-02', 7.5, 40, '2026-01-02', "
            "99, 'busy', 1, 0, 98, 97, '451 busy', 96, 95, 94, 93, 4, 7.5);"
            "INSERT INTO rule_actions VALUES (1, 'gmail', 'busy', 'throttle', 1.0, '451 busy', "
            "10, 20, 0);"
            "INSERT INTO mx_cache VALUES ('example.org', 'ok', 'gmail', '[]', 1, 2);"
            "INSERT INTO preflight_runs VALUES (1, 5, 1, '{\"ok\": true}');"
            "INSERT INTO meta VALUES ('list.offset', '190');"
            "INSERT INTO run_lock VALUES (1, 4242, 'mx1', 77);");
    size_t n_tables = sizeof V1_UNCHANGED / sizeof V1_UNCHANGED[0];
    char *before[sizeof V1_UNCHANGED / sizeof V1_UNCHANGED[0]];
    for (size_t i = 0; i < n_tables; i++)
        before[i] = dump(st, V1_UNCHANGED[i]);
    store_close(st);

    st = open_ok(path);
    assert_int_equal(store_version(st), store_schema_version());
    for (size_t i = 0; i < n_tables; i++) {
        char *after = dump(st, V1_UNCHANGED[i]);
        assert_true(strchr(before[i], '\n') != NULL); /* every table had a row */
        assert_string_equal(after, before[i]);
        free(after);
        free(before[i]);
    }
    assert_int_equal(query_i64(st, "SELECT blocked FROM summary_hourly"), 0);

    /* Recipients: the case duplicates became the one row with progress, spelled as it was
     * sent; the others as described in the migration. */
    char *rows = dump(st, "SELECT id, address, state, coalesce(reason, '-'), retries, "
                          "next_at_ms, coalesce(first_attempt_ms, '-'), "
                          "coalesce(last_attempt_ms, '-'), coalesce(last_outcome, '-'), cycle, "
                          "added_ms, list_offset, list_line, coalesce(list_scan, '-') "
                          "FROM recipients ORDER BY id");
    assert_string_equal(rows,
                        "2|Mixed@Example.org|done|-|0|0|1000|1000|delivered|0|10|30|3|-\n"
                        "3|bounce@example.org|suppressed|550 5.1.1 no such user|0|0|2000|2000|"
                        "bounced|0|10|50|4|-\n"
                        "4|dry@example.org|pending|-|0|0|-|-|-|0|10|70|5|-\n"
                        "5|local@example.org|skipped|list changed|0|0|4000|4000|bounced|0|10|90|"
                        "6|-\n"
                        "6|dry2@example.org|pending|-|1|9000|5000|5000|deferred|0|10|110|7|-\n"
                        "7|held@example.org|held|the run stopped|0|0|7000|7000|unknown|0|10|130|"
                        "8|-\n"
                        "8|x@null.example|skipped|null.example cannot receive mail: it publishes "
                        "a null MX|0|0|-|-|-|0|10|150|9|-\n"
                        "9|p@example.org|pending|-|2|123|50|60|deferred|3|10|170|10|-\n");
    free(rows);

    /* One row per address in any case from now on, and trace's query finds any spelling. */
    int added = -1;
    assert_int_equal(store_recipient_add(st, "MIXED@example.ORG", NULL, "gmail", 0, 20, &added, &e),
                     IPW_OK);
    assert_int_equal(added, 0);
    struct seen sn = {0};
    assert_int_equal(
        store_attempts_for_recipient(st, "mixed@EXAMPLE.org", collect_attempt, &sn, &e), IPW_OK);
    assert_int_equal(sn.n, 1);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                                   "name IN ('attempts_recipient', 'attempts_started', "
                                   "'attempts_in_flight', 'attempts_provider', "
                                   "'summary_reasons_hour', 'summary_hourly_hour', "
                                   "'recipients_due', 'recipients_due_provider')"),
                     8);
    char *ok = dump(st, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok\n");
    free(ok);
    store_close(st);
}

/* ---- summary counters ---- */

#define NPROV  3
#define NHOURS 10
static const char *const PROVIDERS[NPROV] = {"gmail", "microsoft", "yahoo"};
static const char *const OUTS[7] = {"delivered", "deferred", "bounced", "failed",
                                    "expired",   "unknown",  "blocked"};

struct summary_check {
    int64_t expect[NPROV][NHOURS][8]; /* attempts, then each outcome in OUTS order */
    int rows;
    int mismatches;
};

static int check_summary_row(const struct store_summary_row *r, void *ctx)
{
    struct summary_check *c = ctx;
    int p = -1;
    for (int i = 0; i < NPROV; i++)
        if (strcmp(r->provider, PROVIDERS[i]) == 0)
            p = i;
    int64_t h = (r->hour_ms - T0) / HOUR;
    if (p < 0 || h < 0 || h >= NHOURS || (r->hour_ms - T0) % HOUR != 0) {
        c->mismatches++;
        return 0;
    }
    const int64_t got[8] = {r->attempts, r->delivered, r->deferred, r->bounced,
                            r->failed,   r->expired,   r->unknown,  r->blocked};
    for (int k = 0; k < 8; k++)
        if (got[k] != c->expect[p][h][k])
            c->mismatches++;
    c->rows++;
    return 0;
}

/* One reply counter row, as store_reasons_each gives it. */
struct reason_seen {
    int rows;
    int64_t total;
    int64_t busy; /* the Server busy row's count */
    int no_reply; /* rows with code 0 and no enhanced code */
};

static int count_reason(const struct store_reason_row *r, void *ctx)
{
    struct reason_seen *c = ctx;
    c->rows++;
    c->total += r->count;
    if (r->code == 451 && r->enhanced && strcmp(r->enhanced, "4.7.500") == 0 &&
        strcmp(r->text, "Server busy. Please try again later from [<ip>]. (S77714)") == 0 &&
        strcmp(r->outcome, "deferred") == 0)
        c->busy = r->count;
    if (r->code == 0 && !r->enhanced)
        c->no_reply++;
    return 0;
}

/* Replies of deferred, bounced and failed attempts are counted masked, in the outcome's
 * transaction; deliveries and dry runs are not. */
static void test_summary_reasons(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("reasons"));
    struct err e;
    static const char *const busy[] = {
        "451 4.7.500 Server busy. Please try again later from [1.2.3.4]. (S77714)",
        "451 4.7.500 Server busy. Please try again later from [203.0.113.9]. (S77714)",
        "451 4.7.500 Server busy. Please try again later from [198.51.100.20]. (S77714)",
    };
    for (int i = 0; i < 7; i++) {
        struct store_attempt a = {.started_ms = T0 + i * 60000,
                                  .recipient = "r@outlook.example",
                                  .provider = "microsoft",
                                  .dry_run = i == 6};
        int64_t id;
        assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
        assert_int_equal(store_attempt_finish(st, id, T0 + i * 60000 + 10, "rcpt", 451, "4.7.500",
                                              busy[i % 3], "deferred", &e),
                         IPW_OK);
    }
    struct store_attempt a = {
        .started_ms = T0 + HOUR, .recipient = "r@outlook.example", .provider = "microsoft"};
    int64_t id;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    assert_int_equal(store_attempt_finish(st, id, T0 + HOUR + 5, "connect", 0, NULL,
                                          "connect to 192.0.2.1:25: timed out", "failed", &e),
                     IPW_OK);
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    assert_int_equal(store_attempt_finish(st, id, T0 + HOUR + 9, "data", 250, "2.0.0", "250 OK",
                                          "delivered", &e),
                     IPW_OK);

    struct reason_seen c = {0};
    assert_int_equal(store_reasons_each(st, NULL, 0, 0, count_reason, &c, &e), IPW_OK);
    assert_int_equal(c.rows, 2);     /* one masked Server busy row, one failure */
    assert_int_equal(c.busy, 6);     /* the dry run is not counted */
    assert_int_equal(c.total, 7);    /* the delivery is not a reason */
    assert_int_equal(c.no_reply, 1); /* no code: stored as 0 and "", given back as 0 and NULL */

    /* The hour filter and the provider filter. */
    memset(&c, 0, sizeof c);
    assert_int_equal(store_reasons_each(st, "microsoft", T0 + HOUR, 0, count_reason, &c, &e),
                     IPW_OK);
    assert_int_equal(c.rows, 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_reasons_each(st, "gmail", 0, 0, count_reason, &c, &e), IPW_OK);
    assert_int_equal(c.rows, 0);
    store_close(st);
}

static int count_rule(const struct store_rule_action *a, void *ctx)
{
    (void)a;
    (*(int *)ctx)++;
    return 0;
}

/* store_rules_each: the history in a time range, ended and active alike. */
static void test_rules_each(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("rules-each"));
    struct err e;
    for (int i = 0; i < 4; i++) {
        struct store_rule_action ra = {.provider = i < 3 ? "microsoft" : "gmail",
                                       .rule = "busy",
                                       .action = "throttle",
                                       .rate_per_min = 1,
                                       .started_ms = T0 + i * HOUR,
                                       .expires_ms = T0 + i * HOUR + 60000};
        assert_int_equal(store_rule_add(st, &ra, NULL, &e), IPW_OK);
    }
    int n = 0;
    assert_int_equal(store_rules_each(st, NULL, 0, 0, count_rule, &n, &e), IPW_OK);
    assert_int_equal(n, 4);
    n = 0;
    assert_int_equal(
        store_rules_each(st, "microsoft", T0 + HOUR, T0 + 3 * HOUR, count_rule, &n, &e), IPW_OK);
    assert_int_equal(n, 2);
    store_close(st);
}

static void test_summary_counters(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("summary"));
    struct err e;
    static struct summary_check c;
    memset(&c, 0, sizeof c);
    int64_t per_outcome[7] = {0};
    int64_t dry = 0;
    uint32_t x = 12345; /* a fixed LCG: the same mix every run */
    for (int i = 0; i < 600; i++) {
        x = x * 1103515245u + 12345u;
        int p = (int)((x >> 8) % NPROV);
        int h = (int)((x >> 12) % NHOURS);
        int o = (int)((x >> 20) % 6); /* unknown (5) comes from recovery only */
        if (o == 5)
            o = 6;
        int is_dry = ((x >> 28) % 10) == 0;
        int64_t start = T0 + h * HOUR + (int64_t)((x >> 4) % HOUR);
        struct store_attempt a = {.started_ms = start,
                                  .recipient = "f@example.com",
                                  .provider = PROVIDERS[p],
                                  .dry_run = is_dry};
        int64_t id;
        assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
        assert_int_equal(
            store_attempt_finish(st, id, start + 1000, "data", 0, NULL, NULL, OUTS[o], &e), IPW_OK);
        per_outcome[o]++;
        if (is_dry) {
            dry++;
            continue;
        }
        c.expect[p][h][0]++;
        c.expect[p][h][1 + o]++;
    }
    assert_true(dry > 0);
    int expected_rows = 0;
    for (int p = 0; p < NPROV; p++)
        for (int h = 0; h < NHOURS; h++)
            expected_rows += c.expect[p][h][0] > 0;

    assert_int_equal(store_summary_each(st, NULL, 0, 0, check_summary_row, &c, &e), IPW_OK);
    assert_int_equal(c.mismatches, 0);
    assert_int_equal(c.rows, expected_rows);

    /* Counters agree with counting the attempts themselves. */
    for (int o = 0; o < 7; o++) {
        int64_t n;
        assert_int_equal(store_attempts_count(st, OUTS[o], &n, &e), IPW_OK);
        assert_int_equal(n, per_outcome[o]);
    }
    assert_int_equal(query_i64(st, "SELECT sum(attempts) FROM summary_hourly"), 600 - dry);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM attempts WHERE dry_run = 0"), 600 - dry);

    /* Filters: one provider, hours [T0+2h, T0+5h). */
    c.rows = 0;
    assert_int_equal(store_summary_each(st, "microsoft", T0 + 2 * HOUR, T0 + 5 * HOUR,
                                        check_summary_row, &c, &e),
                     IPW_OK);
    int want = 0;
    for (int h = 2; h < 5; h++)
        want += c.expect[1][h][0] > 0;
    assert_int_equal(c.rows, want);
    assert_int_equal(c.mismatches, 0);
    store_close(st);
}

/* ---- recipient queue ---- */

struct due {
    int n;
    char addr[8][64];
};

static int collect_due(const struct store_recipient *r, void *ctx)
{
    struct due *d = ctx;
    if (d->n < 8)
        snprintf(d->addr[d->n], sizeof d->addr[0], "%s", r->address);
    d->n++;
    return 0;
}

static void test_recipients_due(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("queue"));
    struct err e;
    int added = -1;
    /* next_at: r1 +3s, r2 +1s, r3 +2s, r4 +1h (not due), r5 +1s but suppressed */
    assert_int_equal(
        store_recipient_add(st, "r1@gmail.com", NULL, "gmail", T0 + 3000, T0, &added, &e), IPW_OK);
    assert_int_equal(added, 1);
    assert_int_equal(
        store_recipient_add(st, "r2@outlook.com", NULL, "microsoft", T0 + 1000, T0, &added, &e),
        IPW_OK);
    assert_int_equal(
        store_recipient_add(st, "r3@gmail.com", NULL, "gmail", T0 + 2000, T0, &added, &e), IPW_OK);
    assert_int_equal(
        store_recipient_add(st, "r4@gmail.com", NULL, "gmail", T0 + HOUR, T0, &added, &e), IPW_OK);
    assert_int_equal(
        store_recipient_add(st, "r5@gmail.com", NULL, "gmail", T0 + 1000, T0, &added, &e), IPW_OK);
    struct store_recipient_update sup = {.step = STORE_RCPT_SUPPRESS,
                                         .reason = "550 5.1.1 no such user"};
    assert_int_equal(store_recipient_update(st, "r5@gmail.com", T0 + 500, "bounced", &sup, &e),
                     IPW_OK);

    /* Adding again keeps the progress. */
    assert_int_equal(store_recipient_add(st, "r5@gmail.com", NULL, "gmail", T0, T0, &added, &e),
                     IPW_OK);
    assert_int_equal(added, 0);
    struct store_recipient r;
    assert_int_equal(store_recipient_get(st, "r5@gmail.com", &r, &e), IPW_OK);
    assert_string_equal(r.state, "suppressed");
    assert_string_equal(r.reason, "550 5.1.1 no such user");
    assert_string_equal(r.domain, "gmail.com");
    assert_string_equal(r.last_outcome, "bounced");
    assert_int_equal(r.last_attempt_ms, T0 + 500);
    assert_int_equal(r.next_at_ms, T0 + 1000);
    store_recipient_clear(&r);

    struct due d = {0};
    assert_int_equal(store_recipients_due(st, T0 + 5000, NULL, 10, collect_due, &d, &e), IPW_OK);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.addr[0], "r2@outlook.com");
    assert_string_equal(d.addr[1], "r3@gmail.com");
    assert_string_equal(d.addr[2], "r1@gmail.com");

    memset(&d, 0, sizeof d);
    assert_int_equal(store_recipients_due(st, T0 + 5000, "gmail", 1, collect_due, &d, &e), IPW_OK);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.addr[0], "r3@gmail.com");

    memset(&d, 0, sizeof d);
    assert_int_equal(store_recipients_due(st, T0 + 999, NULL, 0, collect_due, &d, &e), IPW_OK);
    assert_int_equal(d.n, 0);

    /* An attempt deferred: retry in an hour, in the same transaction as the outcome. */
    struct store_attempt a = {
        .started_ms = T0 + 2000, .recipient = "r3@gmail.com", .provider = "gmail"};
    int64_t id;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    assert_int_equal(store_recipient_get(st, "r3@gmail.com", &r, &e), IPW_OK);
    assert_string_equal(r.last_outcome, "in-flight");
    assert_int_equal(r.last_attempt_ms, T0 + 2000);
    /* The give-up clock starts with the first outcome that counts, not at begin. */
    assert_int_equal(r.first_attempt_ms, 0);
    store_recipient_clear(&r);
    struct store_outcome o = {.finished_ms = T0 + 2500,
                              .phase = "rcpt",
                              .code = 421,
                              .enhanced = "4.7.0",
                              .text = "Try again later",
                              .outcome = "deferred"};
    struct store_recipient_update retry = {.step = STORE_RCPT_RETRY, .next_at_ms = T0 + 2 * HOUR};
    assert_int_equal(store_attempt_finish_ex(st, id, &o, &retry, &e), IPW_OK);
    assert_int_equal(store_recipient_get(st, "r3@gmail.com", &r, &e), IPW_OK);
    assert_string_equal(r.state, "pending");
    assert_int_equal(r.retries, 1);
    assert_int_equal(r.next_at_ms, T0 + 2 * HOUR);
    assert_string_equal(r.last_outcome, "deferred");
    assert_int_equal(r.first_attempt_ms, T0 + 2000);
    store_recipient_clear(&r);

    memset(&d, 0, sizeof d);
    assert_int_equal(store_recipients_due(st, T0 + 5000, NULL, 10, collect_due, &d, &e), IPW_OK);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.addr[0], "r2@outlook.com");
    assert_string_equal(d.addr[1], "r1@gmail.com");

    /* Delivered: done, and never due again. */
    a.recipient = "r2@outlook.com";
    a.provider = "microsoft";
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    o.code = 250;
    o.enhanced = "2.6.0";
    o.text = "Queued mail for delivery";
    o.outcome = "delivered";
    struct store_recipient_update done = {.step = STORE_RCPT_DONE};
    assert_int_equal(store_attempt_finish_ex(st, id, &o, &done, &e), IPW_OK);
    int64_t n;
    assert_int_equal(store_recipients_count(st, "done", &n, &e), IPW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_recipients_count(st, "pending", &n, &e), IPW_OK);
    assert_int_equal(n, 3);
    assert_int_equal(store_recipients_count(st, NULL, &n, &e), IPW_OK);
    assert_int_equal(n, 5);

    /* A recipient update for an address not queued fails and rolls back the outcome too. */
    a.recipient = "stranger@example.com";
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    assert_int_equal(store_attempt_finish_ex(st, id, &o, &done, &e), IPW_ENOTFOUND);
    struct store_attempt back;
    assert_int_equal(store_attempt_get(st, id, &back, &e), IPW_OK);
    assert_string_equal(back.outcome, "in-flight");
    store_attempt_clear(&back);

    /* The due query walks the partial index, not the table. */
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(store_db(st),
                                        "EXPLAIN QUERY PLAN SELECT id FROM recipients WHERE "
                                        "state = 'pending' AND next_at_ms <= 1 "
                                        "ORDER BY next_at_ms, id LIMIT 10",
                                        -1, &s, NULL),
                     SQLITE_OK);
    int uses_index = 0;
    while (sqlite3_step(s) == SQLITE_ROW)
        if (strstr((const char *)sqlite3_column_text(s, 3), "recipients_due"))
            uses_index = 1;
    sqlite3_finalize(s);
    assert_true(uses_index);
    store_close(st);
}

static int sum_blocked(const struct store_summary_row *r, void *ctx)
{
    int64_t *v = ctx; /* attempts, blocked, deferred */
    v[0] += r->attempts;
    v[1] += r->blocked;
    v[2] += r->deferred;
    return 0;
}

static int find_blocked_reason(const struct store_reason_row *r, void *ctx)
{
    int64_t *n = ctx;
    if (strcmp(r->outcome, "blocked") == 0 && r->code == 554 && r->enhanced &&
        strcmp(r->enhanced, "5.7.1") == 0 &&
        strncmp(r->text, "Client host [<ip>] blocked using ", 33) == 0)
        *n += r->count;
    return 0;
}

/* An attempt refused because of the sender: outcome blocked, counted on its own, and the
 * recipient requeued without a retry or a start of its give-up clock. */
static void test_blocked_requeue(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("blocked"));
    struct err e;
    assert_int_equal(store_recipient_add(st, "r@example.net", NULL, "other", 0, T0, NULL, &e),
                     IPW_OK);
    struct store_attempt a = {.started_ms = T0, .recipient = "r@example.net", .provider = "other"};
    int64_t id;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    struct store_outcome o = {.finished_ms = T0 + 100,
                              .phase = "rcpt",
                              .code = 554,
                              .enhanced = "5.7.1",
                              .text = "Client host [192.0.2.1] blocked using zen.spamhaus.org",
                              .outcome = "blocked"};
    struct store_recipient_update rq = {
        .step = STORE_RCPT_REQUEUE, .next_at_ms = T0 + HOUR, .reason = "our IP is listed"};
    assert_int_equal(store_attempt_finish_ex(st, id, &o, &rq, &e), IPW_OK);

    struct store_attempt back;
    assert_int_equal(store_attempt_get(st, id, &back, &e), IPW_OK);
    assert_string_equal(back.outcome, "blocked");
    store_attempt_clear(&back);
    struct store_recipient r;
    assert_int_equal(store_recipient_get(st, "r@example.net", &r, &e), IPW_OK);
    assert_string_equal(r.state, "pending");
    assert_int_equal(r.retries, 0);
    assert_int_equal(r.next_at_ms, T0 + HOUR);
    assert_int_equal(r.first_attempt_ms, 0);
    assert_int_equal(r.last_attempt_ms, T0);
    assert_string_equal(r.last_outcome, "blocked");
    assert_string_equal(r.reason, "our IP is listed");
    store_recipient_clear(&r);

    /* A deferral counts: retries 1, and the give-up clock starts at its attempt. */
    a.started_ms = T0 + HOUR;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    struct store_outcome d = {
        .finished_ms = T0 + HOUR + 5, .code = 451, .text = "later", .outcome = "deferred"};
    struct store_recipient_update rt = {.step = STORE_RCPT_RETRY, .next_at_ms = T0 + 2 * HOUR};
    assert_int_equal(store_attempt_finish_ex(st, id, &d, &rt, &e), IPW_OK);
    /* Blocked again: retries and first attempt stay. */
    a.started_ms = T0 + 2 * HOUR;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    o.finished_ms = T0 + 2 * HOUR + 5;
    rq.next_at_ms = T0 + 3 * HOUR;
    assert_int_equal(store_attempt_finish_ex(st, id, &o, &rq, &e), IPW_OK);
    assert_int_equal(store_recipient_get(st, "r@example.net", &r, &e), IPW_OK);
    assert_int_equal(r.retries, 1);
    assert_int_equal(r.first_attempt_ms, T0 + HOUR);
    assert_int_equal(r.last_attempt_ms, T0 + 2 * HOUR);
    assert_int_equal(r.next_at_ms, T0 + 3 * HOUR);
    store_recipient_clear(&r);

    /* A requeue without an attempt (a local failure) keeps the last attempt and outcome. */
    struct store_recipient_update local = {.step = STORE_RCPT_REQUEUE, .next_at_ms = T0 + 4 * HOUR};
    assert_int_equal(store_recipient_update(st, "r@example.net", 0, NULL, &local, &e), IPW_OK);
    assert_int_equal(store_recipient_get(st, "r@example.net", &r, &e), IPW_OK);
    assert_string_equal(r.state, "pending");
    assert_int_equal(r.next_at_ms, T0 + 4 * HOUR);
    assert_int_equal(r.last_attempt_ms, T0 + 2 * HOUR);
    assert_string_equal(r.last_outcome, "blocked");
    assert_null(r.reason);
    assert_int_equal(r.retries, 1);
    store_recipient_clear(&r);

    /* A blocked dry run is not counted. */
    a.started_ms = T0 + 3 * HOUR;
    a.dry_run = 1;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    assert_int_equal(store_attempt_finish_ex(st, id, &o, NULL, &e), IPW_OK);

    int64_t v[3] = {0, 0, 0};
    assert_int_equal(store_summary_each(st, "other", 0, 0, sum_blocked, v, &e), IPW_OK);
    assert_int_equal(v[0], 3);
    assert_int_equal(v[1], 2);
    assert_int_equal(v[2], 1);
    int64_t reasons = 0;
    assert_int_equal(store_reasons_each(st, NULL, 0, 0, find_blocked_reason, &reasons, &e), IPW_OK);
    assert_int_equal(reasons, 2);
    int64_t n = 0;
    assert_int_equal(store_attempts_count(st, "blocked", &n, &e), IPW_OK);
    assert_int_equal(n, 3);
    store_close(st);
}

static void test_recipient_save_and_cycle(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("save"));
    struct err e;
    struct store_recipient in = {.address = "seed@example.org",
                                 .provider = "other",
                                 .state = "done",
                                 .next_at_ms = T0,
                                 .retries = 3,
                                 .first_attempt_ms = T0 - 5000,
                                 .last_attempt_ms = T0 - 1000,
                                 .last_outcome = "delivered",
                                 .cycle = 4,
                                 .added_ms = T0 - HOUR};
    assert_int_equal(store_recipient_save(st, &in, &e), IPW_OK);
    struct store_recipient r;
    assert_int_equal(store_recipient_get(st, "seed@example.org", &r, &e), IPW_OK);
    assert_string_equal(r.domain, "example.org");
    assert_string_equal(r.provider, "other");
    assert_string_equal(r.state, "done");
    assert_int_equal(r.next_at_ms, T0);
    assert_int_equal(r.retries, 3);
    assert_null(r.reason);
    assert_int_equal(r.first_attempt_ms, T0 - 5000);
    assert_int_equal(r.last_attempt_ms, T0 - 1000);
    assert_int_equal(r.cycle, 4);
    assert_int_equal(r.added_ms, T0 - HOUR);
    store_recipient_clear(&r);

    struct store_recipient_update next = {.step = STORE_RCPT_NEXT_CYCLE, .next_at_ms = T0 + HOUR};
    assert_int_equal(store_recipient_update(st, "seed@example.org", T0, "delivered", &next, &e),
                     IPW_OK);
    assert_int_equal(store_recipient_get(st, "seed@example.org", &r, &e), IPW_OK);
    assert_string_equal(r.state, "pending");
    assert_int_equal(r.cycle, 5);
    assert_int_equal(r.retries, 0);
    assert_int_equal(r.first_attempt_ms, 0);
    assert_int_equal(r.next_at_ms, T0 + HOUR);
    store_recipient_clear(&r);

    in.state = "lost";
    assert_int_equal(store_recipient_save(st, &in, &e), IPW_EUSAGE);
    assert_int_equal(store_recipient_get(st, "nobody@example.org", &r, &e), IPW_ENOTFOUND);
    struct store_recipient_update expire = {.step = STORE_RCPT_EXPIRE, .reason = "gave up"};
    assert_int_equal(store_recipient_update(st, "nobody@example.org", T0, NULL, &expire, &e),
                     IPW_ENOTFOUND);
    store_close(st);
}

/* The run names a recipient by its row id as well as its address: the row changes only when
 * both agree, and an id of 0 looks the address up, as before. */
static void test_recipient_by_id(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("byid"));
    struct err e;
    struct store_recipient a = {
        .address = "a@example.org", .provider = "other", .state = "pending", .added_ms = T0};
    struct store_recipient b = a;
    b.address = "b@example.org";
    assert_int_equal(store_recipient_save(st, &a, &e), IPW_OK);
    assert_int_equal(store_recipient_save(st, &b, &e), IPW_OK);
    struct store_recipient ra, rb;
    assert_int_equal(store_recipient_get(st, "a@example.org", &ra, &e), IPW_OK);
    assert_int_equal(store_recipient_get(st, "b@example.org", &rb, &e), IPW_OK);
    int64_t id_a = ra.id, id_b = rb.id;
    assert_true(id_a > 0 && id_b > 0 && id_a != id_b);
    store_recipient_clear(&ra);
    store_recipient_clear(&rb);

    /* The stamp of a begun attempt, by id (the address written in another case). */
    struct store_attempt at = {
        .started_ms = T0 + 10, .recipient = "A@Example.org", .provider = "other", .rcpt_id = id_a};
    int64_t aid = 0;
    assert_int_equal(store_attempt_begin(st, &at, &aid, &e), IPW_OK);
    assert_int_equal(store_recipient_get(st, "a@example.org", &ra, &e), IPW_OK);
    assert_int_equal(ra.last_attempt_ms, T0 + 10);
    assert_string_equal(ra.last_outcome, "in-flight");
    store_recipient_clear(&ra);

    /* An id that is another recipient's changes neither. */
    struct store_recipient_update done = {.step = STORE_RCPT_DONE, .rcpt_id = id_b};
    assert_int_equal(store_recipient_update(st, "a@example.org", T0 + 20, "delivered", &done, &e),
                     IPW_ENOTFOUND);
    assert_non_null(strstr(e.msg, "recipient a@example.org is not in the queue"));
    assert_int_equal(store_recipient_get(st, "a@example.org", &ra, &e), IPW_OK);
    assert_int_equal(store_recipient_get(st, "b@example.org", &rb, &e), IPW_OK);
    assert_string_equal(ra.state, "pending");
    assert_string_equal(rb.state, "pending");
    assert_null(rb.last_outcome);
    store_recipient_clear(&ra);
    store_recipient_clear(&rb);

    /* The right id, and then no id at all (by address). */
    done.rcpt_id = id_a;
    assert_int_equal(store_recipient_update(st, "a@example.org", T0 + 20, "delivered", &done, &e),
                     IPW_OK);
    done.rcpt_id = 0;
    assert_int_equal(store_recipient_update(st, "B@example.org", T0 + 30, "delivered", &done, &e),
                     IPW_OK);
    assert_int_equal(store_recipient_get(st, "a@example.org", &ra, &e), IPW_OK);
    assert_int_equal(store_recipient_get(st, "b@example.org", &rb, &e), IPW_OK);
    assert_string_equal(ra.state, "done");
    assert_int_equal(ra.last_attempt_ms, T0 + 20);
    assert_string_equal(rb.state, "done");
    assert_int_equal(rb.last_attempt_ms, T0 + 30);
    store_recipient_clear(&ra);
    store_recipient_clear(&rb);
    store_close(st);
}

/* ---- the recipient list: scans, removals, skips, releases ---- */

static void rcpt_expect(struct store *st, const char *address, const char *state,
                        const char *reason_part)
{
    struct store_recipient r;
    struct err e;
    assert_int_equal(store_recipient_get(st, address, &r, &e), IPW_OK);
    if (strcmp(r.state, state) != 0)
        fail_msg("%s: state %s, expected %s", address, r.state, state);
    if (reason_part && (!r.reason || !strstr(r.reason, reason_part)))
        fail_msg("%s: reason %s, expected it to contain %s", address, r.reason ? r.reason : "NULL",
                 reason_part);
    if (!reason_part && r.reason)
        fail_msg("%s: reason %s, expected none", address, r.reason);
    store_recipient_clear(&r);
}

static void queue_from_list(struct store *st, const char *address, int64_t scan, int64_t digest)
{
    struct store_recipient q = {.address = address,
                                .provider = "other",
                                .state = "pending",
                                .added_ms = T0,
                                .list_offset = 10,
                                .list_line = 2,
                                .list_scan = scan,
                                .list_digest = digest};
    int added = 0;
    struct err e;
    assert_int_equal(store_recipient_queue(st, &q, &added, &e), IPW_OK);
    assert_int_equal(added, 1);
}

static int seen(struct store *st, const char *address, int64_t scan, int64_t digest, int64_t offset)
{
    struct store_recipient q = {.address = address,
                                .list_offset = offset,
                                .list_line = offset / 10,
                                .list_scan = scan,
                                .list_digest = digest};
    int known = -1;
    struct err e;
    assert_int_equal(store_recipient_seen(st, &q, T0 + HOUR, &known, &e), IPW_OK);
    return known;
}

/* A scan marks what it finds; at its end the pending and held recipients it did not find are
 * removed, keeping their progress, and come back as they were if a later scan finds them. */
static void test_list_scan_and_sweep(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("scan"));
    struct err e;
    queue_from_list(st, "a@example.org", 1, 11);
    queue_from_list(st, "b@example.org", 1, 12);
    queue_from_list(st, "c@example.org", 1, 13);
    queue_from_list(st, "d@example.org", 1, 14);
    /* c was held by a crash, d is done; b was deferred twice. */
    exec_ok(st, "UPDATE recipients SET state = 'held', reason = 'crash' "
                "WHERE address = 'c@example.org';"
                "UPDATE recipients SET state = 'done' WHERE address = 'd@example.org';"
                "UPDATE recipients SET retries = 2, next_at_ms = 777, last_outcome = 'deferred' "
                "WHERE address = 'b@example.org';");
    int any = -1;
    assert_int_equal(store_recipients_unconfirmed(st, 1, &any, &e), IPW_OK);
    assert_int_equal(any, 0);
    assert_int_equal(store_recipients_unconfirmed(st, 2, &any, &e), IPW_OK);
    assert_int_equal(any, 1);

    /* Scan 2 finds only A (in another case, at another place) and d. */
    assert_int_equal(seen(st, "A@EXAMPLE.org", 2, 11, 40), 1);
    assert_int_equal(seen(st, "d@example.org", 2, 14, 50), 1);
    /* A second line with the same address in the same scan: the first one counts. */
    assert_int_equal(seen(st, "a@example.org", 2, 99, 90), 0);
    assert_int_equal(seen(st, "new@example.org", 2, 1, 60), 0);
    int64_t removed = -1;
    assert_int_equal(
        store_recipients_sweep(st, 2, "no longer in the recipient list L", &removed, &e), IPW_OK);
    assert_int_equal(removed, 2);
    rcpt_expect(st, "a@example.org", "pending", NULL);
    rcpt_expect(st, "b@example.org", "removed", "no longer in the recipient list L");
    rcpt_expect(st, "c@example.org", "removed", "no longer in the recipient list L");
    rcpt_expect(st, "d@example.org", "done", NULL);
    assert_int_equal(query_i64(st, "SELECT list_offset FROM recipients "
                                   "WHERE address = 'a@example.org'"),
                     40);
    assert_int_equal(query_i64(st, "SELECT list_digest FROM recipients "
                                   "WHERE address = 'a@example.org'"),
                     11);
    struct due d = {0};
    assert_int_equal(store_recipients_due(st, T0 + 10 * HOUR, NULL, 0, collect_due, &d, &e),
                     IPW_OK);
    assert_int_equal(d.n, 1); /* only a */

    /* A requeue or retry of an attempt that was in flight when b was removed keeps it out. */
    struct store_recipient_update rq = {.step = STORE_RCPT_RETRY, .next_at_ms = T0};
    assert_int_equal(store_recipient_update(st, "b@example.org", T0, "deferred", &rq, &e), IPW_OK);
    rcpt_expect(st, "b@example.org", "removed", "no longer");
    rq.step = STORE_RCPT_REQUEUE;
    assert_int_equal(store_recipient_update(st, "b@example.org", T0, "blocked", &rq, &e), IPW_OK);
    rcpt_expect(st, "b@example.org", "removed", NULL);

    /* Scan 3 finds b and c again: b pending with its retries and due time, c held again. */
    assert_int_equal(seen(st, "b@example.org", 3, 12, 20), 1);
    assert_int_equal(seen(st, "c@example.org", 3, 13, 30), 1);
    rcpt_expect(st, "b@example.org", "pending", NULL);
    rcpt_expect(st, "c@example.org", "held", "not sent again until released");
    assert_int_equal(query_i64(st, "SELECT retries FROM recipients "
                                   "WHERE address = 'b@example.org'"),
                     3); /* two deferrals, and the retry recorded while removed */
    store_close(st);
}

/* Skipped for a local reason: no attempt fields touched; back in the queue when its line
 * changes, not when it is merely found again. */
static void test_skip_and_line_change(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("skip"));
    struct err e;
    queue_from_list(st, "s@example.org", 1, 500);
    exec_ok(st, "UPDATE recipients SET last_attempt_ms = 5, last_outcome = 'deferred', "
                "retries = 1, next_at_ms = 9 WHERE address = 's@example.org'");
    struct store_recipient_update sk = {.step = STORE_RCPT_SKIP,
                                        .reason = "L:2: a line break in column name"};
    assert_int_equal(store_recipient_update(st, "s@example.org", 0, NULL, &sk, &e), IPW_OK);
    rcpt_expect(st, "s@example.org", "skipped", "line break");
    assert_int_equal(query_i64(st, "SELECT last_attempt_ms FROM recipients"), 5);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM attempts"), 0);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM summary_hourly"), 0);
    /* Found again with the same line: still skipped (and not removed by the sweep). */
    assert_int_equal(seen(st, "s@example.org", 2, 500, 10), 1);
    int64_t removed = -1;
    assert_int_equal(store_recipients_sweep(st, 2, "gone", &removed, &e), IPW_OK);
    assert_int_equal(removed, 0);
    rcpt_expect(st, "s@example.org", "skipped", "line break");
    /* Its line was fixed: pending, due now, retries kept. */
    assert_int_equal(seen(st, "s@example.org", 3, 501, 10), 1);
    rcpt_expect(st, "s@example.org", "pending", NULL);
    assert_int_equal(query_i64(st, "SELECT next_at_ms FROM recipients"), T0 + HOUR);
    assert_int_equal(query_i64(st, "SELECT retries FROM recipients"), 1);
    store_close(st);
}

/* Dry-run attempts never touch the queue, and recovery never holds for one. */
static void test_dry_run_leaves_queue(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("dry"));
    struct err e;
    queue_from_list(st, "dry@example.org", 1, 1);
    queue_from_list(st, "real@example.org", 1, 2);
    char *before = dump(st, "SELECT * FROM recipients WHERE address = 'dry@example.org'");
    struct store_attempt a = {
        .started_ms = T0, .recipient = "dry@example.org", .provider = "other", .dry_run = 1};
    int64_t id;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    char *after = dump(st, "SELECT * FROM recipients WHERE address = 'dry@example.org'");
    assert_string_equal(after, before);
    free(after);
    a.recipient = "real@example.org";
    a.dry_run = 0;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    /* Both left in flight by a killed run. */
    int64_t n = 0;
    assert_int_equal(store_attempts_recover(st, T0 + HOUR, &n, &e), IPW_OK);
    assert_int_equal(n, 2);
    after = dump(st, "SELECT * FROM recipients WHERE address = 'dry@example.org'");
    assert_string_equal(after, before);
    free(after);
    free(before);
    rcpt_expect(st, "real@example.org", "held", "may have been delivered");
    store_close(st);
}

struct released {
    int n;
    char addr[4][64];
};

static void collect_released(const char *address, const char *provider, void *ctx)
{
    struct released *rl = ctx;
    (void)provider;
    if (rl->n < 4)
        snprintf(rl->addr[rl->n], sizeof rl->addr[0], "%s", address);
    rl->n++;
}

static void test_release(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("release"));
    struct err e;
    queue_from_list(st, "h1@example.org", 1, 1);
    queue_from_list(st, "h2@example.org", 1, 2);
    queue_from_list(st, "h3@example.org", 1, 3);
    queue_from_list(st, "p@example.org", 1, 4);
    queue_from_list(st, "sk@example.org", 1, 5);
    exec_ok(st, "UPDATE recipients SET state = 'held', reason = 'crash', next_at_ms = 5 "
                "WHERE address LIKE 'h%';"
                "UPDATE recipients SET provider = 'gmail' WHERE address = 'h3@example.org';"
                "UPDATE recipients SET state = 'skipped', reason = 'bad' "
                "WHERE address = 'sk@example.org'");
    struct store_recipient was;
    assert_int_equal(store_recipient_release(st, "H1@example.org", T0, &was, &e), IPW_OK);
    assert_string_equal(was.state, "held");
    assert_string_equal(was.address, "h1@example.org");
    store_recipient_clear(&was);
    rcpt_expect(st, "h1@example.org", "pending", NULL);
    assert_int_equal(query_i64(st, "SELECT next_at_ms FROM recipients "
                                   "WHERE address = 'h1@example.org'"),
                     T0);
    /* Not held: nothing changes, the state says why. */
    assert_int_equal(store_recipient_release(st, "p@example.org", T0, &was, &e), IPW_OK);
    assert_string_equal(was.state, "pending");
    store_recipient_clear(&was);
    assert_int_equal(store_recipient_release(st, "sk@example.org", T0, &was, &e), IPW_OK);
    assert_string_equal(was.state, "skipped");
    store_recipient_clear(&was);
    rcpt_expect(st, "sk@example.org", "pending", NULL);
    assert_int_equal(store_recipient_release(st, "nobody@example.org", T0, &was, &e),
                     IPW_ENOTFOUND);
    /* --all --provider gmail, then --all. */
    struct released rl = {0};
    int64_t n = -1;
    assert_int_equal(
        store_recipients_release_held(st, "gmail", T0 + 1, collect_released, &rl, &n, &e), IPW_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rl.addr[0], "h3@example.org");
    memset(&rl, 0, sizeof rl);
    assert_int_equal(store_recipients_release_held(st, NULL, T0 + 2, collect_released, &rl, &n, &e),
                     IPW_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rl.addr[0], "h2@example.org");
    assert_int_equal(store_recipients_count(st, "held", &n, &e), IPW_OK);
    assert_int_equal(n, 0);
    store_close(st);
}

static int collect_name(const char *name, void *ctx)
{
    char *buf = ctx; /* 128 bytes */
    size_t len = strlen(buf);
    snprintf(buf + len, 128 - len, "%s,", name ? name : "(null)");
    return 0;
}

/* Recipients of a provider the plan no longer has are found and moved, domain by domain. */
static void test_provider_moves(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("moves"));
    struct err e;
    queue_from_list(st, "a@old.example", 1, 1);
    queue_from_list(st, "b@old.example", 1, 2);
    queue_from_list(st, "c@other.example", 1, 3);
    queue_from_list(st, "d@old.example", 1, 4);
    exec_ok(st, "UPDATE recipients SET provider = 'gone' WHERE domain = 'old.example';"
                "UPDATE recipients SET state = 'done' WHERE address = 'd@old.example';");
    char names[128] = "";
    assert_int_equal(store_recipient_providers(st, collect_name, names, &e), IPW_OK);
    assert_true(strstr(names, "gone,") && strstr(names, "other,"));
    char doms[128] = "";
    assert_int_equal(store_recipient_domains(st, "gone", collect_name, doms, &e), IPW_OK);
    assert_string_equal(doms, "old.example,");
    int64_t n = -1;
    assert_int_equal(store_recipients_set_provider(st, "gone", "old.example", "gmail", &n, &e),
                     IPW_OK);
    assert_int_equal(n, 2); /* the done one keeps its history */
    assert_int_equal(query_i64(st, "SELECT count(*) FROM recipients WHERE provider = 'gone'"), 1);
    store_close(st);
}

/* The first plan to use a state file names its campaign; another campaign is refused. */
static void test_campaign(void **state)
{
    (void)state;
    const char *path = db_path("campaign");
    struct store *st = open_ok(path);
    struct err e;
    /* A command that cannot write (here: another holds the write lock) only looks. */
    store_set_busy_timeout(st, 50);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(store_campaign_check(st, "autumn", &e), IPW_OK);
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM meta WHERE key = 'campaign'"), 0);
    store_set_busy_timeout(st, 0);
    assert_int_equal(store_campaign_check(st, "spring", &e), IPW_OK);
    assert_int_equal(store_campaign_check(st, "spring", &e), IPW_OK);
    assert_int_equal(store_campaign_check(st, NULL, &e), IPW_OK);
    store_close(st);
    st = open_ok(path);
    err_clear(&e);
    assert_int_equal(store_campaign_check(st, "autumn", &e), IPW_ECONFIG);
    char want[512];
    snprintf(want, sizeof want,
             "state file %s belongs to campaign \"spring\" (recorded when it was first used), "
             "not to campaign \"autumn\"",
             path);
    assert_string_equal(e.msg, want);
    store_close(st);
}

/* ---- provider state ---- */

static int join_names(const char *name, void *ctx)
{
    char *buf = ctx; /* 64 bytes */
    size_t len = strlen(buf);
    snprintf(buf + len, 64 - len, "%s,", name);
    return 0;
}

static void test_provider_round_trip(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("provider"));
    struct err e;
    struct store_provider in = {
        .name = "microsoft",
        .stage = 3,
        .sending_day = 4,
        .sending_day_date = "2026-01-05",
        .rate_per_min = 7.5,
        .sent_today = 812,
        .sent_today_date = "2026-01-05",
        .paused_until_ms = T0 + 15 * 60000,
        .pause_reason = "451 4.7.500 Server busy. Please try again later [S3114]",
        .pause_level = 2,
        .pause_manual = 0,
        .last_deferral_ms = T0 - 1000,
        .rate_changed_ms = T0 - 2000,
        .last_reply = "451 4.7.500 Server busy. Please try again later [S3114]",
        .last_reply_ms = T0 - 1000,
        .next_send_ms = T0 + 8000,
        .updated_ms = T0,
    };
    assert_int_equal(store_provider_save(st, &in, &e), IPW_OK);
    struct store_provider p;
    assert_int_equal(store_provider_load(st, "microsoft", &p, &e), IPW_OK);
    assert_string_equal(p.name, "microsoft");
    assert_int_equal(p.stage, 3);
    assert_int_equal(p.sending_day, 4);
    assert_string_equal(p.sending_day_date, "2026-01-05");
    assert_true(p.rate_per_min == 7.5);
    assert_int_equal(p.sent_today, 812);
    assert_string_equal(p.sent_today_date, "2026-01-05");
    assert_int_equal(p.paused_until_ms, T0 + 900000);
    assert_string_equal(p.pause_reason, in.pause_reason);
    assert_int_equal(p.pause_level, 2);
    assert_int_equal(p.pause_manual, 0);
    assert_int_equal(p.last_deferral_ms, T0 - 1000);
    assert_int_equal(p.rate_changed_ms, T0 - 2000);
    assert_string_equal(p.last_reply, in.last_reply);
    assert_int_equal(p.last_reply_ms, T0 - 1000);
    assert_int_equal(p.next_send_ms, T0 + 8000);
    assert_int_equal(p.updated_ms, T0);
    store_provider_clear(&p);

    /* Saving again replaces; unset optional fields read back as none. */
    struct store_provider cleared = {
        .name = "microsoft", .stage = 3, .rate_per_min = 5, .updated_ms = T0 + 1};
    assert_int_equal(store_provider_save(st, &cleared, &e), IPW_OK);
    struct store_provider g = {.name = "gmail", .updated_ms = T0};
    assert_int_equal(store_provider_save(st, &g, &e), IPW_OK);
    assert_int_equal(store_provider_load(st, "microsoft", &p, &e), IPW_OK);
    assert_int_equal(p.paused_until_ms, 0);
    assert_null(p.pause_reason);
    assert_null(p.sending_day_date);
    assert_true(p.rate_per_min == 5.0);
    store_provider_clear(&p);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM providers WHERE paused_until_ms IS NULL"),
                     2);

    char names[64] = "";
    assert_int_equal(store_provider_names(st, join_names, names, &e), IPW_OK);
    assert_string_equal(names, "gmail,microsoft,");

    assert_int_equal(store_provider_load(st, "yahoo", &p, &e), IPW_ENOTFOUND);
    struct store_provider bad = {.name = "x", .sending_day_date = "5 Jan 2026"};
    assert_int_equal(store_provider_save(st, &bad, &e), IPW_EUSAGE);
    store_close(st);
}

/* ---- rule actions ---- */

/* A pool's lanes: one row per (provider, ip) beside the provider's own (ip ""), rule actions
 * with their ip, resume of every IP, and one IP's counts of a day. */
static void test_lanes_of_a_pool(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("lanes"));
    struct err e;
    struct store_provider own = {.name = "gmail", .stage = 2, .updated_ms = T0};
    struct store_provider a = {.name = "gmail", .ip = "192.0.2.10", .stage = 5, .updated_ms = T0};
    struct store_provider b = {.name = "gmail",
                               .ip = "192.0.2.11",
                               .stage = 0,
                               .paused_until_ms = T0 + 60000,
                               .pause_reason = "451 4.7.500 busy",
                               .updated_ms = T0};
    assert_int_equal(store_provider_save(st, &own, &e), IPW_OK);
    assert_int_equal(store_provider_save(st, &a, &e), IPW_OK);
    assert_int_equal(store_provider_save(st, &b, &e), IPW_OK);
    struct store_provider p;
    assert_int_equal(store_provider_load(st, "gmail", &p, &e), IPW_OK);
    assert_int_equal(p.stage, 2);
    assert_string_equal(p.ip, "");
    store_provider_clear(&p);
    assert_int_equal(store_lane_load(st, "gmail", "192.0.2.10", &p, &e), IPW_OK);
    assert_int_equal(p.stage, 5);
    assert_string_equal(p.ip, "192.0.2.10");
    store_provider_clear(&p);
    assert_int_equal(store_lane_load(st, "gmail", "192.0.2.12", &p, &e), IPW_ENOTFOUND);
    assert_non_null(strstr(e.msg, "from 192.0.2.12"));
    char names[64] = "";
    assert_int_equal(store_provider_names(st, join_names, names, &e), IPW_OK);
    assert_string_equal(names, "gmail,"); /* once, however many lanes */

    /* resume lifts every IP's pause; the provider's own row is the caller's */
    int64_t n = 0;
    assert_int_equal(store_lanes_resume(st, "gmail", T0 + 1, &n, &e), IPW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM providers WHERE paused_until_ms IS NULL "
                                   "AND pause_reason IS NULL"),
                     3);

    /* rule actions keep their ip; "" (or none given) is the whole provider */
    struct store_rule_action ra = {.provider = "gmail",
                                   .ip = "192.0.2.11",
                                   .rule = "r",
                                   .action = "suspend",
                                   .started_ms = T0,
                                   .expires_ms = T0 + 60000};
    struct store_rule_action rw = {
        .provider = "gmail", .rule = "w", .action = "suspend", .started_ms = T0};
    assert_int_equal(store_rule_add(st, &ra, NULL, &e), IPW_OK);
    assert_int_equal(store_rule_add(st, &rw, NULL, &e), IPW_OK);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM rule_actions WHERE rule = 'r' AND ip = "
                                   "'192.0.2.11'"),
                     1);
    assert_int_equal(
        query_i64(st, "SELECT count(*) FROM rule_actions WHERE rule = 'w' AND ip = ''"), 1);

    /* one IP's attempts of a time range */
    const char *ips[] = {"192.0.2.10", "192.0.2.11", "192.0.2.11", "192.0.2.11"};
    const char *outs[] = {"delivered", "delivered", "deferred", "bounced"};
    for (int i = 0; i < 4; i++) {
        struct store_attempt at = {.started_ms = T0 + i,
                                   .recipient = "x@gmail.com",
                                   .domain = "gmail.com",
                                   .provider = "gmail",
                                   .source_ip = ips[i]};
        int64_t id = 0;
        assert_int_equal(store_attempt_begin(st, &at, &id, &e), IPW_OK);
        assert_int_equal(store_attempt_finish(st, id, T0 + 10, "data", 250, NULL, "x", outs[i], &e),
                         IPW_OK);
    }
    struct store_attempt_counts c;
    assert_int_equal(store_attempt_counts(st, "gmail", "192.0.2.11", T0, T0 + 100, &c, &e), IPW_OK);
    assert_int_equal(c.attempts, 3);
    assert_int_equal(c.delivered, 1);
    assert_int_equal(c.deferred, 1);
    assert_int_equal(c.bounced, 1);
    assert_int_equal(store_attempt_counts(st, "gmail", "192.0.2.11", T0 + 2, T0 + 100, &c, &e),
                     IPW_OK);
    assert_int_equal(c.attempts, 2);
    store_close(st);
}

struct rules_seen {
    int n;
    int64_t ids[8];
};

static int collect_rule(const struct store_rule_action *a, void *ctx)
{
    struct rules_seen *r = ctx;
    if (r->n < 8)
        r->ids[r->n] = a->id;
    r->n++;
    return 0;
}

static void test_rule_actions(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("rules"));
    struct err e;
    struct store_rule_action throttle = {.provider = "microsoft",
                                         .rule = "S3114",
                                         .action = "throttle",
                                         .rate_per_min = 1,
                                         .reason = "451 4.7.500 [S3114]",
                                         .started_ms = T0,
                                         .expires_ms = T0 + 2 * HOUR};
    struct store_rule_action suspend = {.provider = "gmail",
                                        .rule = "TSS04",
                                        .action = "suspend",
                                        .started_ms = T0 + 1000,
                                        .expires_ms = T0 + HOUR};
    struct store_rule_action manual = {.provider = "gmail",
                                       .rule = "manual",
                                       .action = "pause",
                                       .reason = "operator",
                                       .started_ms = T0 + 2000,
                                       .manual = 1};
    int64_t id_t, id_s, id_m;
    assert_int_equal(store_rule_add(st, &throttle, &id_t, &e), IPW_OK);
    assert_int_equal(store_rule_add(st, &suspend, &id_s, &e), IPW_OK);
    assert_int_equal(store_rule_add(st, &manual, &id_m, &e), IPW_OK);
    struct store_rule_action bad = suspend;
    bad.action = "explode";
    assert_int_equal(store_rule_add(st, &bad, NULL, &e), IPW_EUSAGE);

    struct rules_seen r = {0};
    assert_int_equal(store_rules_active(st, T0 + 5000, NULL, collect_rule, &r, &e), IPW_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.ids[0], id_t);
    assert_int_equal(r.ids[1], id_s);
    assert_int_equal(r.ids[2], id_m);

    /* At exactly expires_ms the action is over. */
    memset(&r, 0, sizeof r);
    assert_int_equal(store_rules_active(st, T0 + HOUR, "gmail", collect_rule, &r, &e), IPW_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ids[0], id_m);
    memset(&r, 0, sizeof r);
    assert_int_equal(store_rules_active(st, T0 + HOUR - 1, "gmail", collect_rule, &r, &e), IPW_OK);
    assert_int_equal(r.n, 2);

    /* `resume gmail` ends the manual hold only. */
    int64_t n = -1;
    assert_int_equal(store_rules_end(st, "gmail", T0 + 3000, 1, &n, &e), IPW_OK);
    assert_int_equal(n, 1);
    memset(&r, 0, sizeof r);
    assert_int_equal(store_rules_active(st, T0 + 4000, "gmail", collect_rule, &r, &e), IPW_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ids[0], id_s);

    /* Purge: what expired by T0 + 1h goes (the suspend at T0+1h, the manual at T0+3s). */
    assert_int_equal(store_rules_purge(st, T0 + HOUR, &n, &e), IPW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM rule_actions"), 1);
    store_close(st);
}

/* ---- MX cache, pre-flight ---- */

static void test_mx_cache(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("mx"));
    struct err e;
    const char *hosts = "[{\"preference\": 5, \"host\": \"gmail-smtp-in.l.google.com\", "
                        "\"addresses\": [\"192.0.2.1\"]}]";
    struct store_mx in = {.domain = "Gmail.com",
                          .status = "ok",
                          .provider = "gmail",
                          .hosts_json = hosts,
                          .fetched_ms = T0,
                          .expires_ms = T0 + 300000};
    assert_int_equal(store_mx_put(st, &in, &e), IPW_OK);
    struct store_mx m;
    assert_int_equal(store_mx_get(st, "gmail.com", T0 + 299999, &m, &e), IPW_OK);
    assert_string_equal(m.status, "ok");
    assert_string_equal(m.provider, "gmail");
    assert_string_equal(m.hosts_json, hosts);
    assert_int_equal(m.fetched_ms, T0);
    assert_int_equal(m.expires_ms, T0 + 300000);
    store_mx_clear(&m);
    assert_int_equal(store_mx_get(st, "gmail.com", T0 + 300000, &m, &e), IPW_ENOTFOUND);
    assert_int_equal(store_mx_get(st, "example.net", T0, &m, &e), IPW_ENOTFOUND);

    in.domain = "gmail.com";
    in.status = "temperror";
    in.provider = NULL;
    in.expires_ms = T0 + 400000;
    assert_int_equal(store_mx_put(st, &in, &e), IPW_OK);
    assert_int_equal(store_mx_get(st, "GMAIL.COM", T0 + 350000, &m, &e), IPW_OK);
    assert_string_equal(m.status, "temperror");
    assert_null(m.provider);
    store_mx_clear(&m);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM mx_cache"), 1);
    store_close(st);
}

static void test_preflight(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("preflight"));
    struct err e;
    struct store_preflight p;
    assert_int_equal(store_preflight_latest(st, &p, &e), IPW_ENOTFOUND);
    int64_t id1, id2;
    assert_int_equal(store_preflight_add(st, T0 + 10, 0, "{\"ok\": false}", &id1, &e), IPW_OK);
    assert_int_equal(store_preflight_add(st, T0 + 20, 1, "{\"ok\": true}", &id2, &e), IPW_OK);
    assert_int_equal(store_preflight_latest(st, &p, &e), IPW_OK);
    assert_int_equal(p.id, id2);
    assert_int_equal(p.run_ms, T0 + 20);
    assert_int_equal(p.ok, 1);
    assert_string_equal(p.json, "{\"ok\": true}");
    store_preflight_clear(&p);
    store_close(st);
}

/* ---- run lock ---- */

static void test_lock_two_handles(void **state)
{
    (void)state;
    const char *path = db_path("lock");
    struct store *a = open_ok(path);
    struct store *b = open_ok(path);
    struct err e;
    struct store_lock_holder h;
    assert_int_equal(store_lock_holder(b, &h, &e), IPW_ENOTFOUND);

    assert_int_equal(store_lock_acquire(a, T0, &e), IPW_OK);
    assert_true(store_lock_held(a));
    assert_int_equal(store_lock_acquire(a, T0, &e), IPW_OK); /* already ours */

    err_clear(&e);
    assert_int_equal(store_lock_acquire(b, T0 + 1000, &e), IPW_ELOCKED);
    assert_false(store_lock_held(b));
    char want[128];
    snprintf(want, sizeof want, "pid %ld on host ", (long)getpid());
    assert_non_null(strstr(e.msg, want));
    assert_non_null(strstr(e.msg, "since 2026-01-01T00:00:00Z"));
    assert_non_null(strstr(e.msg, path));

    assert_int_equal(store_lock_holder(b, &h, &e), IPW_OK);
    assert_int_equal(h.pid, (long)getpid());
    assert_int_equal(h.acquired_ms, T0);
    char host[256];
    assert_int_equal(gethostname(host, sizeof host), 0);
    host[255] = '\0';
    assert_string_equal(h.host, host);
    assert_int_equal(store_lock_holder(a, &h, &e), IPW_OK);
    assert_int_equal(h.pid, (long)getpid());

    store_lock_release(a);
    assert_false(store_lock_held(a));
    assert_int_equal(query_i64(b, "SELECT count(*) FROM run_lock"), 0);
    assert_int_equal(store_lock_acquire(b, T0 + 2000, &e), IPW_OK);
    assert_int_equal(store_lock_acquire(a, T0 + 3000, &e), IPW_ELOCKED);
    assert_int_equal(store_lock_holder(a, &h, &e), IPW_OK);
    assert_int_equal(h.acquired_ms, T0 + 2000);

    /* Closing the holder releases the lock and its row. */
    store_close(b);
    assert_int_equal(store_lock_holder(a, &h, &e), IPW_ENOTFOUND);
    assert_int_equal(query_i64(a, "SELECT count(*) FROM run_lock"), 0);
    assert_int_equal(store_lock_acquire(a, T0 + 4000, &e), IPW_OK);
    store_close(a);
}

/*
 * Starts this binary again as `test_store MODE PATH` with its stdout on a pipe; returns the pid
 * and sets *out_fd to the read end.
 */
static pid_t spawn_child(const char *mode, const char *path, int *out_fd)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* If a failed assertion ends this test early, the child must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(self_exe, self_exe, mode, path, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    *out_fd = fds[0];
    return pid;
}

static size_t read_all(int fd, char *buf, size_t n)
{
    size_t len = 0;
    ssize_t r;
    while (len + 1 < n && (r = read(fd, buf + len, n - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    return len;
}

static void test_lock_other_process_refused(void **state)
{
    (void)state;
    const char *path = db_path("lock-proc");
    struct store *st = open_ok(path);
    struct err e;
    assert_int_equal(store_lock_acquire(st, T0, &e), IPW_OK);

    int fd;
    pid_t pid = spawn_child("--try-lock", path, &fd);
    char out[1024];
    read_all(fd, out, sizeof out);
    close(fd);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 75); /* refused */
    char want[64];
    snprintf(want, sizeof want, "pid %ld on host", (long)getpid());
    assert_non_null(strstr(out, want));

    store_lock_release(st);
    pid = spawn_child("--try-lock", path, &fd);
    read_all(fd, out, sizeof out);
    close(fd);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* acquired */
    store_close(st);
}

static void test_lock_released_on_sigkill(void **state)
{
    (void)state;
    const char *path = db_path("lock-kill");
    struct store *st = open_ok(path);
    int fd;
    pid_t pid = spawn_child("--hold-lock", path, &fd);
    char line[64];
    size_t n = 0;
    /* The child writes "locked\n" once it holds the lock. */
    while (n + 1 < sizeof line && read(fd, line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = '\0';
    assert_string_equal(line, "locked");

    struct err e;
    err_clear(&e);
    assert_int_equal(store_lock_acquire(st, T0, &e), IPW_ELOCKED);
    char want[64];
    snprintf(want, sizeof want, "pid %ld on host", (long)pid);
    assert_non_null(strstr(e.msg, want));
    struct store_lock_holder h;
    assert_int_equal(store_lock_holder(st, &h, &e), IPW_OK);
    assert_int_equal(h.pid, (long)pid);

    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    close(fd);

    /* The row the killed runner left is not taken for a live holder. */
    assert_int_equal(query_i64(st, "SELECT count(*) FROM run_lock"), 1);
    assert_int_equal(store_lock_holder(st, &h, &e), IPW_ENOTFOUND);
    assert_int_equal(store_lock_acquire(st, T0 + 1000, &e), IPW_OK);
    assert_int_equal(store_lock_holder(st, &h, &e), IPW_OK);
    assert_int_equal(h.pid, (long)getpid());
    assert_int_equal(h.acquired_ms, T0 + 1000);
    store_close(st);
}

/* Child modes: exit 0 when the lock was taken, 75 when refused, 1 on anything else. */
static int child_main(const char *mode, const char *path)
{
    struct store *st = NULL;
    struct err e;
    err_clear(&e);
    if (store_open(path, &st, &e) != IPW_OK) {
        printf("%s\n", e.msg);
        return 1;
    }
    ipw_status s = store_lock_acquire(st, T0 + 500, &e);
    if (strcmp(mode, "--hold-lock") == 0 && s == IPW_OK) {
        printf("locked\n");
        fflush(stdout);
        alarm(120); /* a safety net: the test kills it long before */
        for (;;)
            pause(); /* until SIGKILL */
    }
    printf("%s\n", s == IPW_OK ? "locked" : e.msg);
    store_close(st);
    return s == IPW_OK ? 0 : s == IPW_ELOCKED ? 75 : 1;
}

/* ---- reports read from the feedback mailbox ---- */

/* One delivered attempt of recipient (queued, done) at T0 + 30 min; returns its id. */
static int64_t delivered_attempt(struct store *st, const char *rcpt, const char *mid)
{
    struct err e;
    assert_int_equal(store_recipient_add(st, rcpt, NULL, "yahoo", T0, T0, NULL, &e), IPW_OK);
    struct store_attempt a = {.started_ms = T0 + 30 * 60000,
                              .recipient = rcpt,
                              .provider = "yahoo",
                              .message_id = mid,
                              .phase = "connect",
                              .mail_from = "bounces@example.com"};
    int64_t id = 0;
    assert_int_equal(store_attempt_begin(st, &a, &id, &e), IPW_OK);
    struct store_outcome o = {.finished_ms = T0 + 30 * 60000 + 500,
                              .phase = "data",
                              .code = 250,
                              .text = "250 2.0.0 OK queued",
                              .outcome = "delivered"};
    struct store_recipient_update u = {.step = STORE_RCPT_DONE};
    assert_int_equal(store_attempt_finish_ex(st, id, &o, &u, &e), IPW_OK);
    return id;
}

static void test_report_late_bounce_once(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("reports"));
    struct err e;
    int64_t id = delivered_attempt(st, "late@yahoo.test", "<c.1.ab@example.com>");
    int64_t other = delivered_attempt(st, "fine@yahoo.test", "<c.2.cd@example.com>");
    int64_t found = 0;
    assert_int_equal(store_attempt_by_message_id(st, "<c.1.ab@example.com>", &found, &e), IPW_OK);
    assert_int_equal(found, id);
    assert_int_equal(store_attempt_by_message_id(st, "<nope@example.com>", &found, &e),
                     IPW_ENOTFOUND);

    struct store_report rep = {.read_ms = T0 + 5 * HOUR,
                               .mailbox = "imap://h/INBOX",
                               .uidvalidity = 7,
                               .uid = 1,
                               .digest = "mid:<r1@mx>",
                               .kind = "bounce",
                               .format = "rfc3464",
                               .matched_by = "message-id",
                               .attempt_id = id,
                               .status = "5.1.1",
                               .text = "550 5.1.1 no such user"};
    int added = -1;
    assert_int_equal(store_report_add(st, &rep, &added, &e), IPW_OK);
    assert_int_equal(added, 1);
    assert_int_equal(rep.late, 1);
    assert_string_equal(rep.provider, "yahoo");
    free((char *)rep.provider);
    /* The attempt keeps its 250; the counters of its hour move it; the recipient is out. */
    assert_int_equal(query_i64(st, "SELECT count(*) FROM attempts WHERE outcome = 'bounced' "
                                   "AND code = 250 AND recipient = 'late@yahoo.test'"),
                     1);
    assert_int_equal(query_i64(st, "SELECT delivered * 100 + bounced * 10 + late_bounces FROM "
                                   "summary_hourly WHERE provider = 'yahoo'"),
                     111);
    assert_int_equal(
        query_i64(st,
                  "SELECT state = 'suppressed' FROM recipients WHERE address = 'late@yahoo.test'"),
        1);
    assert_int_equal(
        query_i64(st, "SELECT state = 'done' FROM recipients WHERE address = 'fine@yahoo.test'"),
        1);

    /* The same message again (a UIDVALIDITY change): nothing changes. */
    rep.uidvalidity = 8;
    rep.provider = NULL;
    assert_int_equal(store_report_add(st, &rep, &added, &e), IPW_OK);
    assert_int_equal(added, 0);
    assert_int_equal(rep.late, 0);
    free((char *)rep.provider);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM feedback_reports"), 1);
    assert_int_equal(query_i64(st, "SELECT sum(late_bounces) FROM summary_hourly"), 1);

    /* A complaint counts in the hour its message went out; an id of no attempt is unmatched. */
    struct store_report c = {.read_ms = T0 + 30 * HOUR,
                             .mailbox = "imap://h/INBOX",
                             .digest = "mid:<r2@mx>",
                             .kind = "complaint",
                             .matched_by = "verp",
                             .attempt_id = other};
    assert_int_equal(store_report_add(st, &c, &added, &e), IPW_OK);
    free((char *)c.provider);
    assert_int_equal(query_i64(st, "SELECT complaints FROM summary_hourly WHERE provider = "
                                   "'yahoo' AND hour_ms = "
                                   "1767225600000"),
                     1);
    struct store_report u = {.read_ms = T0,
                             .mailbox = "imap://h/INBOX",
                             .digest = "sha256:00",
                             .kind = "bounce",
                             .matched_by = "verp",
                             .attempt_id = 999,
                             .recipient = "x@y.test",
                             .text = "the whole text"};
    assert_int_equal(store_report_add(st, &u, &added, &e), IPW_OK);
    assert_null(u.provider);
    assert_null(u.matched_by);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM feedback_reports WHERE digest = "
                                   "'sha256:00' AND attempt_id IS NULL AND matched_by IS NULL "
                                   "AND recipient = 'x@y.test'"),
                     1);

    /* The checkpoint. */
    int64_t v = 0, last = 0, polled = 0;
    assert_int_equal(store_checkpoint_get(st, "m", &v, &last, &polled, &e), IPW_ENOTFOUND);
    assert_int_equal(store_checkpoint_set(st, "m", 7, 12, T0, &e), IPW_OK);
    assert_int_equal(store_checkpoint_set(st, "m", 8, 3, T0 + 1, &e), IPW_OK);
    assert_int_equal(store_checkpoint_get(st, "m", &v, &last, &polled, &e), IPW_OK);
    assert_int_equal(v * 100 + last, 803);
    assert_int_equal(polled, T0 + 1);
    store_close(st);
}

/* A recipient suppressed by a report while another attempt of it is in flight (cycle mode)
 * stays suppressed whatever that attempt's step. */
static void test_report_suppression_sticks(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("sticks"));
    struct err e;
    int64_t id = delivered_attempt(st, "c@yahoo.test", "<c.1.ef@example.com>");
    struct store_attempt a = {
        .started_ms = T0 + HOUR, .recipient = "c@yahoo.test", .provider = "yahoo"};
    int64_t next = 0;
    assert_int_equal(store_attempt_begin(st, &a, &next, &e), IPW_OK);
    struct store_report c = {.read_ms = T0 + HOUR,
                             .mailbox = "m",
                             .digest = "mid:<c@x>",
                             .kind = "complaint",
                             .matched_by = "verp",
                             .attempt_id = id};
    int added = 0;
    assert_int_equal(store_report_add(st, &c, &added, &e), IPW_OK);
    free((char *)c.provider);
    struct store_outcome o = {
        .finished_ms = T0 + HOUR + 1, .phase = "data", .code = 250, .outcome = "delivered"};
    struct store_recipient_update u = {.step = STORE_RCPT_NEXT_CYCLE, .next_at_ms = T0 + HOUR};
    assert_int_equal(store_attempt_finish_ex(st, next, &o, &u, &e), IPW_OK);
    assert_int_equal(
        query_i64(st, "SELECT state = 'suppressed' FROM recipients WHERE address = 'c@yahoo.test'"),
        1);
    store_close(st);
}

/* Seeds: a done seed from an earlier date is queued again; one done today, a suppressed one and
 * another address are not. Placements: unknown until recorded, the first record stays. */
static void test_placement_rows(void **state)
{
    (void)state;
    struct store *st = open_ok(db_path("placement"));
    struct err e;
    exec_ok(st, "INSERT INTO recipients (address, domain, provider, state, next_at_ms, added_ms, "
                "last_attempt_ms) VALUES ('Seed@Gmail.com', 'gmail.com', 'gmail', 'done', 0, 1, "
                "500), ('late@gmail.com', 'gmail.com', 'gmail', 'done', 0, 1, 1500), "
                "('gone@gmail.com', 'gmail.com', 'gmail', 'suppressed', 0, 1, 500);"
                "INSERT INTO attempts (id, started_ms, recipient, domain, provider, message_id, "
                "outcome) VALUES (7, 500, 'Seed@Gmail.com', 'gmail.com', 'gmail', '<a@x>', "
                "'delivered'), (8, 600, 'Seed@Gmail.com', 'gmail.com', 'gmail', '<b@x>', "
                "'deferred');");
    int rq = -1;
    assert_int_equal(store_recipient_requeue(st, "seed@gmail.com", 1000, 2000, &rq, &e), IPW_OK);
    assert_int_equal(rq, 1);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM recipients WHERE state = 'pending' AND "
                                   "next_at_ms = 2000 AND address = 'Seed@Gmail.com'"),
                     1);
    assert_int_equal(store_recipient_requeue(st, "late@gmail.com", 1000, 2000, &rq, &e), IPW_OK);
    assert_int_equal(rq, 0);
    assert_int_equal(store_recipient_requeue(st, "gone@gmail.com", 1000, 2000, &rq, &e), IPW_OK);
    assert_int_equal(rq, 0);

    /* Only the delivered attempt is a copy; pending until placed. */
    assert_int_equal(store_placement_set(st, 7, "seed@gmail.com", "inbox", "INBOX", 900, &e),
                     IPW_OK);
    assert_int_equal(store_placement_set(st, 7, "seed@gmail.com", "junk", "Junk", 950, &e), IPW_OK);
    assert_int_equal(query_i64(st, "SELECT count(*) FROM placements WHERE attempt_id = 7 AND "
                                   "result = 'inbox' AND found_ms = 900"),
                     1);
    assert_int_not_equal(store_placement_set(st, 7, "seed@gmail.com", "lost", NULL, 1, &e), IPW_OK);
    store_close(st);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strncmp(argv[1], "--", 2) == 0)
        return child_main(argv[1], argv[2]);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_from_empty),
        cmocka_unit_test(test_placement_rows),
        cmocka_unit_test(test_migrate_from_each_earlier),
        cmocka_unit_test(test_migrate_v6_checks),
        cmocka_unit_test(test_batch_hold_join),
        cmocka_unit_test(test_migrate_v1_rows),
        cmocka_unit_test(test_report_late_bounce_once),
        cmocka_unit_test(test_report_suppression_sticks),
        cmocka_unit_test(test_reopen_keeps_rows),
        cmocka_unit_test(test_at_version_bounds),
        cmocka_unit_test(test_refuse_newer_version),
        cmocka_unit_test(test_refuse_not_sqlite),
        cmocka_unit_test(test_refuse_foreign_sqlite),
        cmocka_unit_test(test_cannot_create),
        cmocka_unit_test(test_connection_options),
        cmocka_unit_test(test_busy_is_temporary),
        cmocka_unit_test(test_attempt_round_trip),
        cmocka_unit_test(test_attempts_for_recipient),
        cmocka_unit_test(test_recover_in_flight),
        cmocka_unit_test(test_summary_counters),
        cmocka_unit_test(test_summary_reasons),
        cmocka_unit_test(test_rules_each),
        cmocka_unit_test(test_recipients_due),
        cmocka_unit_test(test_blocked_requeue),
        cmocka_unit_test(test_recipient_save_and_cycle),
        cmocka_unit_test(test_recipient_by_id),
        cmocka_unit_test(test_list_scan_and_sweep),
        cmocka_unit_test(test_skip_and_line_change),
        cmocka_unit_test(test_dry_run_leaves_queue),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_provider_moves),
        cmocka_unit_test(test_campaign),
        cmocka_unit_test(test_provider_round_trip),
        cmocka_unit_test(test_lanes_of_a_pool),
        cmocka_unit_test(test_rule_actions),
        cmocka_unit_test(test_mx_cache),
        cmocka_unit_test(test_preflight),
        cmocka_unit_test(test_lock_two_handles),
        cmocka_unit_test(test_lock_other_process_refused),
        cmocka_unit_test(test_lock_released_on_sigkill),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
