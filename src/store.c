/*
 * store: the SQLite state file (see store.h and docs/schema.md): opening and closing it.
 *
 * Everything a run must not forget lives here, so that cron ticks continue where the previous
 * one stopped and a crash never loses a record. The file is opened in WAL mode (readers such as
 * `status` never block the runner), with synchronous=NORMAL (a commit is durable against a
 * process crash, and against power loss up to the last checkpoint), foreign keys on and a busy
 * timeout. The schema version is PRAGMA user_version; store_schema.c holds the ordered list of
 * forward scripts, and store_open applies each missing one in its own transaction.
 *
 * Reading order: store_db.h (the handle) and store_db.c (the SQL of the cached statements, the
 * helpers every part uses to prepare, bind, step and end them, transactions and batches), then
 * this file (open and close), store_schema.c (the tables, version by version), store_attempts.c
 * (attempts and the hourly and reason counters), store_queue.c (recipients), store_lanes.c
 * (providers, lanes and rule actions), store_cache.c (run lock, MX cache, pre-flight results,
 * meta) and store_feedback.c (mailboxes, reports, inbox placement).
 */
#include "store_db.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Before SQLite initialises (it refuses configuration after):
 *  - no allocator statistics, which ipwarm never reads and which take a global mutex on every
 *    allocation;
 *  - a savepoint's journal (store_batch_join) kept in memory up to 4 MB: at SQLite's default of
 *    64 KB, the records of one round spilled it to a temporary file several times a second.
 */
static pthread_once_t store_sqlite_once = PTHREAD_ONCE_INIT;

static void store_sqlite_setup(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 4 << 20);
}

/*
 * Checkpoints (copying the WAL into the database file) cost two fsyncs each, and bench/ showed
 * them on both hot paths:
 *  - the runner writes about 15 pages per message; at SQLite's default of a checkpoint every
 *    1,000 pages it spent a quarter of its time in them (bench/throughput.sh). A commit now
 *    checkpoints at STORE_WAL_CHECKPOINT_PAGES (a WAL of up to 32 MB);
 *  - by default the last connection to close checkpoints and deletes the WAL, and the next
 *    process creates it again: four fsyncs, half of an idle cron tick (bench/scale.sh). Now a
 *    small WAL stays as it is at close. A large one is still emptied then, because the first
 *    process to open the file rebuilds the WAL index by reading the whole WAL (18 ms for 24 MB).
 * Durability is the same either way: every commit is in the WAL (synchronous=NORMAL), and a
 * plain copy of the .db alone was never a backup (docs/operations.md: use .backup).
 */
#define STORE_WAL_CHECKPOINT_PAGES 8192
#define STORE_WAL_CLOSE_PAGES      1024

/* After every commit: remembers the WAL's size and checkpoints a large one, as SQLite's own
 * autocheckpoint (itself a WAL hook, which this one replaces) does at 1,000 pages. */
static int store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct store *st = arg;
    st->wal_pages = pages;
    if (pages >= STORE_WAL_CHECKPOINT_PAGES)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static ipw_status store_open_impl(const char *path, const struct store_options *opt, int target,
                                  struct store **out, struct err *e)
{
    *out = NULL;
    if (!path || !*path)
        return err_set(e, IPW_EUSAGE, "no state file name given");
    struct store *st = calloc(1, sizeof *st);
    size_t plen = strlen(path);
    if (st) {
        st->lock_fd = -1;
        st->busy_ms =
            opt && opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : STORE_BUSY_TIMEOUT_MS;
        st->path = strdup(path);
        st->lock_path = malloc(plen + sizeof ".lock");
    }
    if (!st || !st->path || !st->lock_path) {
        store_close(st);
        return err_set(e, IPW_ENOMEM, "state file %s: out of memory", path);
    }
    memcpy(st->lock_path, path, plen);
    memcpy(st->lock_path + plen, ".lock", sizeof ".lock");

    int must_exist = opt && opt->must_exist;
    /* A handle is used by one thread at a time (the run's connection threads never touch the
     * store), so SQLite need not lock a mutex of its own on every call, nor keep allocator
     * statistics (store_sqlite_setup): those locks were 5 % of bench/'s throughput samples. */
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_READWRITE | (must_exist ? 0 : SQLITE_OPEN_CREATE);
    /* The state holds recipient addresses: a new file is made 0600 whatever the umask (SQLite
     * would make it 0644), and SQLite gives its -wal and -shm files the database's mode. */
    if (!must_exist && strcmp(path, ":memory:") != 0) {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) { /* else it exists, or SQLite's open below says what is wrong */
            (void)fchmod(fd, 0600);
            close(fd);
        }
    }
    pthread_once(&store_sqlite_once, store_sqlite_setup);
    int rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    if (rc != SQLITE_OK) {
        int sys = st->db ? sqlite3_system_errno(st->db) : 0;
        ipw_status r;
        if (must_exist && access(path, F_OK) != 0 && errno == ENOENT)
            r = err_set(e, IPW_ENOINPUT, "state file %s does not exist (nothing recorded yet)",
                        path);
        else if ((rc & 0xff) == SQLITE_CANTOPEN)
            r = err_set(e, IPW_ECANTCREAT, "state file %s: cannot open or create it: %s", path,
                        sys ? strerror(sys) : sqlite3_errstr(rc));
        else
            r = store_db_fail(st, rc, "open it", e);
        store_close(st);
        return r;
    }
    sqlite3_busy_timeout(st->db, st->busy_ms);

    /*
     * Identify the file before changing anything: switching someone else's database to WAL
     * would already modify it. A new file has no tables and application_id 0.
     */
    int64_t app_id = 0, version = 0, tables = 0;
    /* One read transaction, so the three values come from one moment: two processes that open
     * a new file at once (two cron ticks) must not see the other's migration half done. */
    ipw_status r = store_exec_sql(st, "BEGIN", "read it", e);
    if (r == IPW_OK)
        r = store_query_int(st, "PRAGMA application_id", &app_id, "read it", e);
    if (r == IPW_OK)
        r = store_query_int(st, "PRAGMA user_version", &version, "read it", e);
    if (r == IPW_OK)
        r = store_query_int(st, "SELECT count(*) FROM sqlite_master", &tables, "read it", e);
    if (!sqlite3_get_autocommit(st->db))
        store_exec_sql(st, "COMMIT", "read it", NULL);
    if (r != IPW_OK) {
        /* r and e already say why */
    } else if (app_id != STORE_APP_ID && !(app_id == 0 && version == 0 && tables == 0)) {
        r = err_set(e, IPW_EIO,
                    "state file %s is an SQLite database of another program, not an ipwarm "
                    "state file (application_id %lld, user_version %lld)",
                    path, (long long)app_id, (long long)version);
    } else if (version > store_schema_version()) {
        r = err_set(e, IPW_EIO,
                    "state file %s has schema version %lld, but this ipwarm knows versions up "
                    "to %d: it was written by a newer ipwarm; use that version",
                    path, (long long)version, store_schema_version());
    } else if (version > target) {
        r = err_set(e, IPW_EIO,
                    "state file %s is at schema version %lld, newer than the requested %d", path,
                    (long long)version, target);
    }
    if (r != IPW_OK) {
        store_close(st);
        return r;
    }

    sqlite3_stmt *s = NULL;
    /* Switching a new file to WAL needs it to itself, and SQLite does not wait for that with
     * the busy handler: when another process opens the same new file at the same moment, try
     * again until the busy timeout. */
    for (int waited = 0;; waited += 20) {
        rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(s);
        if (((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) || waited >= st->busy_ms)
            break;
        sqlite3_finalize(s);
        s = NULL;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc == SQLITE_ROW) {
        const char *mode = store_col_text(s, 0);
        /* "memory" is what an in-memory database (":memory:") reports; fine for tools. */
        if (!mode || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0))
            r = err_set(e, IPW_EIO,
                        "state file %s: cannot use the WAL journal (the file system gave "
                        "journal mode %s)",
                        path, mode ? mode : "none");
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        r = store_db_fail(st, rc, "switch it to the WAL journal", e);
    sqlite3_finalize(s);
    if (r == IPW_OK)
        r = store_exec_sql(st, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
                           "set its options", e);
    /* Checkpoints: see store_wal_hook() and store_close(). The WAL is kept between processes (not
     * deleted and created again), and closing checkpoints only a large one. */
    if (r == IPW_OK) {
        int on = 1;
        sqlite3_file_control(st->db, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        sqlite3_wal_hook(st->db, store_wal_hook, st);
    }
    for (int v = (int)version + 1; r == IPW_OK && v <= target; v++)
        r = store_schema_migrate(st, v, e);
    if (r != IPW_OK) {
        store_close(st);
        return r;
    }
    *out = st;
    return IPW_OK;
}

ipw_status store_open_opts(const char *path, const struct store_options *opt, struct store **out,
                           struct err *e)
{
    return store_open_impl(path, opt, store_schema_version(), out, e);
}

ipw_status store_open(const char *path, struct store **out, struct err *e)
{
    return store_open_impl(path, NULL, store_schema_version(), out, e);
}

ipw_status store_open_at_version(const char *path, int version, struct store **out, struct err *e)
{
    if (version < 0 || version > store_schema_version()) {
        *out = NULL;
        return err_set(e, IPW_EUSAGE, "schema version %d does not exist (this build knows 0 to %d)",
                       version, store_schema_version());
    }
    return store_open_impl(path, NULL, version, out, e);
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (st->db)
        store_lock_release(st);
    if (st->db && st->wal_pages >= STORE_WAL_CLOSE_PAGES) {
        /* Emptied, not just copied: the next process would otherwise read all of it again.
         * Readers are not waited for long; the next close or commit tries again. */
        sqlite3_busy_timeout(st->db, 200);
        sqlite3_wal_checkpoint_v2(st->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    store_sums_drop(st);
    free(st->sums);
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    /* Every statement is finalized, so close cannot fail for statements left open. */
    sqlite3_close(st->db);
    free(st->path);
    free(st->lock_path);
    free(st);
}

int store_version(struct store *st)
{
    int64_t v = 0;
    if (store_count_query(st, Q_USER_VERSION, NULL, &v, "read the schema version", NULL) != IPW_OK)
        return -1;
    return (int)v;
}

void store_set_busy_timeout(struct store *st, int ms)
{
    st->busy_ms = ms > 0 ? ms : STORE_BUSY_TIMEOUT_MS;
    sqlite3_busy_timeout(st->db, st->busy_ms);
}

const char *store_path(const struct store *st)
{
    return st->path;
}
