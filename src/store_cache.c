/*
 * store_cache: the small tables beside the sending state: the run lock (run_lock, one row naming
 * the process that runs, with an flock(2) on a side file), the MX cache (mx_cache, each domain's
 * resolved hosts until they expire), pre-flight results (preflight_runs) and the key/value meta
 * table (including the campaign a file belongs to).
 */
#include "store_db.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

/* ---- run lock ---- */

/* "2026-12-01T00:00:00Z": how the store names times in its sentences. */
static const char *store_cache_fmt_utc(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "%lld ms", (long long)ms);
    return buf;
}

/* Reads the run_lock row; IPW_ENOTFOUND when there is none. */
static ipw_status store_cache_lock_row(struct store *st, struct store_lock_holder *h, struct err *e)
{
    const char *doing = "read the run lock";
    memset(h, 0, sizeof *h);
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_LOCK_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        h->pid = (long)sqlite3_column_int64(s, 0);
        const char *host = store_col_text(s, 1);
        snprintf(h->host, sizeof h->host, "%s", host ? host : "");
        h->acquired_ms = sqlite3_column_int64(s, 2);
    } else if (rc == SQLITE_DONE) {
        r = IPW_ENOTFOUND;
    } else {
        r = store_db_fail(st, rc, doing, e);
    }
    store_stmt_done(s);
    return r;
}

ipw_status store_lock_acquire(struct store *st, int64_t now_ms, struct err *e)
{
    if (st->lock_fd >= 0)
        return IPW_OK;
    int fd = open(st->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(e, IPW_ECANTCREAT, "cannot create the lock file %s: %s", st->lock_path,
                       strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        close(fd);
        if (err != EWOULDBLOCK)
            return err_set(e, IPW_EIO, "cannot lock %s: %s", st->lock_path, strerror(err));
        struct store_lock_holder h;
        struct err ignored;
        if (store_cache_lock_row(st, &h, &ignored) != IPW_OK || h.pid == 0)
            return err_set(e, IPW_ELOCKED,
                           "state file %s is in use by another ipwarm run (which has not "
                           "recorded its pid yet)",
                           st->path);
        char when[64];
        return err_set(e, IPW_ELOCKED,
                       "state file %s is in use by another ipwarm run: pid %ld on host %s, "
                       "since %s",
                       st->path, h.pid, h.host,
                       store_cache_fmt_utc(h.acquired_ms, when, sizeof when));
    }

    long pid = (long)getpid();
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';

    const char *doing = "record the run lock";
    ipw_status r = store_tx_begin(st, doing, e);
    if (r == IPW_OK) {
        sqlite3_stmt *s;
        r = store_stmt_get(st, Q_LOCK_PUT, doing, &s, e);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, pid);
            store_bind_text(s, 2, host);
            sqlite3_bind_int64(s, 3, now_ms);
            r = store_run(st, s, doing, e);
        }
        r = store_tx_end(st, r, doing, e);
    }
    if (r != IPW_OK) {
        close(fd);
        return r;
    }
    st->lock_fd = fd;
    st->lock_pid = pid;
    snprintf(st->lock_host, sizeof st->lock_host, "%s", host);
    return IPW_OK;
}

void store_lock_release(struct store *st)
{
    if (!st || st->lock_fd < 0)
        return;
    /* Clear the row while still holding the lock, so it can only be ours. */
    const char *doing = "clear the run lock";
    if (store_tx_begin(st, doing, NULL) == IPW_OK) {
        sqlite3_stmt *s;
        ipw_status r = store_stmt_get(st, Q_LOCK_CLEAR, doing, &s, NULL);
        if (r == IPW_OK) {
            sqlite3_bind_int64(s, 1, st->lock_pid);
            store_bind_text(s, 2, st->lock_host);
            r = store_run(st, s, doing, NULL);
        }
        store_tx_end(st, r, doing, NULL);
    }
    /* A row left behind (disk full) is harmless: store_lock_holder checks the flock. */
    close(st->lock_fd);
    st->lock_fd = -1;
}

int store_lock_held(const struct store *st)
{
    return st->lock_fd >= 0;
}

ipw_status store_lock_holder(struct store *st, struct store_lock_holder *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (st->lock_fd < 0) {
        int fd = open(st->lock_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                return IPW_ENOTFOUND;
            return err_set(e, IPW_EIO, "cannot open the lock file %s: %s", st->lock_path,
                           strerror(errno));
        }
        int free_now = flock(fd, LOCK_SH | LOCK_NB) == 0;
        int err = errno;
        close(fd); /* also drops the shared lock if we got it */
        if (free_now)
            return IPW_ENOTFOUND;
        if (err != EWOULDBLOCK)
            return err_set(e, IPW_EIO, "cannot test the lock %s: %s", st->lock_path, strerror(err));
    }
    ipw_status r = store_cache_lock_row(st, out, e);
    if (r == IPW_ENOTFOUND) {
        /* Held, but the holder has not written its row yet: pid 0 says "not known". */
        memset(out, 0, sizeof *out);
        return IPW_OK;
    }
    return r;
}

/* ---- MX cache ---- */

ipw_status store_mx_put(struct store *st, const struct store_mx *m, struct err *e)
{
    if (!m->domain || !*m->domain || !m->status || !*m->status)
        return err_set(e, IPW_EUSAGE, "an MX cache entry needs a domain and a status");
    const char *doing = "cache an MX lookup";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_MX_PUT, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, m->domain);
    store_bind_text(s, 2, m->status);
    store_bind_text(s, 3, m->provider);
    store_bind_text(s, 4, m->hosts_json ? m->hosts_json : "[]");
    sqlite3_bind_int64(s, 5, m->fetched_ms);
    sqlite3_bind_int64(s, 6, m->expires_ms);
    return store_run(st, s, doing, e);
}

/* The strings a struct store_mx owns. */
static const size_t MX_STRS[] = {
    offsetof(struct store_mx, domain),
    offsetof(struct store_mx, status),
    offsetof(struct store_mx, provider),
    offsetof(struct store_mx, hosts_json),
};

void store_mx_clear(struct store_mx *m)
{
    STORE_STRS_FREE(m, MX_STRS);
    memset(m, 0, sizeof *m);
}

ipw_status store_mx_get(struct store *st, const char *domain, int64_t now_ms, struct store_mx *out,
                        struct err *e)
{
    const char *doing = "read the MX cache";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_MX_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, domain);
    sqlite3_bind_int64(s, 2, now_ms);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        out->domain = store_col_text(s, 0);
        out->status = store_col_text(s, 1);
        out->provider = store_col_text(s, 2);
        out->hosts_json = store_col_text(s, 3);
        out->fetched_ms = sqlite3_column_int64(s, 4);
        out->expires_ms = sqlite3_column_int64(s, 5);
        if (STORE_STRS_DUP(out, MX_STRS)) {
            store_mx_clear(out);
            r = err_set(e, IPW_ENOMEM, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        r = IPW_ENOTFOUND; /* a cache miss is routine: no sentence */
    } else {
        r = store_db_fail(st, rc, doing, e);
    }
    store_stmt_done(s);
    return r;
}

/* ---- pre-flight results ---- */

ipw_status store_preflight_add(struct store *st, int64_t run_ms, int ok, const char *json,
                               int64_t *id, struct err *e)
{
    const char *doing = "record a pre-flight run";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_PREFLIGHT_ADD, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    sqlite3_bind_int64(s, 1, run_ms);
    sqlite3_bind_int(s, 2, ok ? 1 : 0);
    store_bind_text(s, 3, json ? json : "{}");
    ipw_status r = store_run(st, s, doing, e);
    if (r == IPW_OK && id)
        *id = sqlite3_last_insert_rowid(st->db);
    return r;
}

void store_preflight_clear(struct store_preflight *p)
{
    store_free_str(p->json);
    memset(p, 0, sizeof *p);
}

ipw_status store_preflight_latest(struct store *st, struct store_preflight *out, struct err *e)
{
    const char *doing = "read the latest pre-flight run";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_PREFLIGHT_LATEST, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        int oom = 0;
        out->id = sqlite3_column_int64(s, 0);
        out->run_ms = sqlite3_column_int64(s, 1);
        out->ok = sqlite3_column_int(s, 2);
        out->json = store_dup_str(store_col_text(s, 3), &oom);
        if (oom) {
            store_preflight_clear(out);
            r = err_set(e, IPW_ENOMEM, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "no pre-flight run recorded in %s", st->path);
    } else {
        r = store_db_fail(st, rc, doing, e);
    }
    store_stmt_done(s);
    return r;
}

/* ---- meta ---- */

ipw_status store_meta_get(struct store *st, const char *key, char **value, struct err *e)
{
    *value = NULL;
    const char *doing = "read a setting";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_META_GET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, key);
    int rc = sqlite3_step(s);
    ipw_status r = IPW_OK;
    if (rc == SQLITE_ROW) {
        const char *v = store_col_text(s, 0);
        *value = strdup(v ? v : "");
        if (!*value)
            r = err_set(e, IPW_ENOMEM, "out of memory");
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, IPW_ENOTFOUND, "no setting %s in %s", key, st->path);
    } else {
        r = store_db_fail(st, rc, doing, e);
    }
    store_stmt_done(s);
    return r;
}

ipw_status store_meta_set(struct store *st, const char *key, const char *value, struct err *e)
{
    const char *doing = "save a setting";
    sqlite3_stmt *s;
    ipw_status sr = store_stmt_get(st, Q_META_SET, doing, &s, e);
    if (sr != IPW_OK)
        return sr;
    store_bind_text(s, 1, key);
    store_bind_text(s, 2, value);
    return store_run(st, s, doing, e);
}

ipw_status store_campaign_check(struct store *st, const char *campaign, struct err *e)
{
    if (!campaign || !*campaign)
        return IPW_OK;
    char *have = NULL;
    ipw_status r = store_meta_get(st, "campaign", &have, e);
    if (r == IPW_ENOTFOUND) {
        /* First use (or a file from before campaigns were recorded): it is this campaign's. */
        err_clear(e);
        const char *doing = "record the campaign";
        r = store_tx_begin(st, doing, e);
        if (r == IPW_OK) {
            /* Read again under the write lock: another command may have claimed it. */
            free(have);
            have = NULL;
            r = store_meta_get(st, "campaign", &have, e);
            if (r == IPW_ENOTFOUND) {
                err_clear(e);
                r = store_meta_set(st, "campaign", campaign, e);
            }
            r = store_tx_end(st, r, doing, e);
        }
        if (r != IPW_OK && r != IPW_ENOMEM) {
            /* A reader that cannot write (a read-only file, a busy one) leaves the recording to
             * the next command that can: it only looks. */
            err_clear(e);
            r = IPW_OK;
        }
    }
    if (r == IPW_OK && have && strcmp(have, campaign) != 0)
        r = err_set(e, IPW_ECONFIG,
                    "state file %s belongs to campaign \"%s\" (recorded when it was first used), "
                    "not to campaign \"%s\"",
                    st->path, have, campaign);
    free(have);
    return r;
}
