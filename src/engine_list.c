/*
 * engine_list: the recipient list (the operator's CSV file) read into the store's queue while
 * the run goes on, with its changes noticed (see the comment below on scans), and the
 * per-provider queues of due recipients that the lanes draw from. Also reads a recipient's
 * columns from its line just before its message is composed.
 */
#include "ipwarm/engine.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipwarm/provider.h"
#include "ipwarm/recipients.h"
#include "ipwarm/strmap.h"

#include "engine_state.h"

/* ---- importing the recipient list into the queue ---- */

/*
 * The list is the operator's file, and it changes while a warm-up goes on: addresses added
 * anywhere, unsubscribed ones taken out, the file replaced, a line appended while a run reads.
 * What the runs have read is kept in meta:
 *   list.path           the list read
 *   list.scan           the number of the current scan (one reading of the list from its start)
 *   list.offset, .line  how far it has read (a record boundary)
 *   list.sha256         the SHA-256 of the bytes it parsed before list.offset
 *   list.stat           the file's size, times and inode before it read them
 *   list.swept          the last scan that read the whole list
 * A run goes on where the last one stopped when the file is as it was (same state) or only
 * grew (same SHA-256 of the part read: lines were appended). Otherwise it starts a new scan
 * from the start: every recipient found gets its place refreshed (template columns are read
 * from its line at send time), addresses not queued yet are added wherever they are, and at
 * the end the pending and held recipients the scan did not find are removed (not sent; they
 * come back if they reappear). While a new scan of a list read before goes on, nothing more is
 * sent: a recipient taken out of the list could otherwise go out before the scan reached the
 * end. Only complete lines are read; a last line without its line end waits until it gets one
 * or the file has not changed for RECIPIENTS_SETTLE_MS.
 */

/* The import's reads stop when the run is asked to stop or its sending time is over. */
static bool engine_list_interrupt(void *arg)
{
    struct engine *g = arg;
    if (g->o->stop && *g->o->stop)
        return true;
    return g->list_until_real_ms && clock_real_ms() >= g->list_until_real_ms;
}

/* Opens (again) the list's two readers: one that reads on, one for a recipient's columns. */
static ipw_status engine_list_readers(struct engine *g, struct err *e)
{
    if (g->list)
        recipients_close(g->list);
    if (g->list_lookup)
        recipients_close(g->list_lookup);
    g->list = g->list_lookup = NULL;
    g->columns = NULL;
    g->n_columns = 0;
    ipw_status r = recipients_open(g->p->recipients_file, g->p->recipients_column, &g->list, e);
    if (r == IPW_OK)
        r = recipients_open(g->p->recipients_file, g->p->recipients_column, &g->list_lookup, e);
    if (r != IPW_OK)
        return r;
    recipients_wait_for_line_end(g->list, true);
    recipients_set_interrupt(g->list, engine_list_interrupt, g);
    g->columns = recipients_columns(g->list, &g->n_columns);
    return IPW_OK;
}

static ipw_status engine_list_seek(struct engine *g, struct err *e)
{
    int64_t data = recipients_data_offset(g->list);
    if (g->list_offset < data) {
        g->list_offset = data;
        g->list_line = recipients_data_line(g->list);
    }
    return recipients_seek(g->list, g->list_offset, g->list_line, e);
}

/*
 * Decides where reading goes on: at the stored place when the file is unchanged or only grew,
 * else from the start in a new scan (readers opened again: the header may have changed).
 */
static ipw_status engine_list_sync(struct engine *g, struct err *e)
{
    const char *path = g->p->recipients_file;
    struct recipients_file_state now_fs, open_fs;
    ipw_status r = recipients_stat(path, &now_fs, e);
    if (r == IPW_OK)
        r = recipients_fstat(g->list, &open_fs, e);
    if (r != IPW_OK)
        return r;
    char cur[sizeof g->list_stat];
    recipients_file_state_format(&now_fs, cur, sizeof cur);
    bool same_file = now_fs.dev == open_fs.dev && now_fs.ino == open_fs.ino;
    if (g->list_scan > 0 && same_file && strcmp(cur, g->list_stat) == 0)
        return engine_list_seek(g, e);
    if (!same_file) {
        r = engine_list_readers(g, e);
        if (r != IPW_OK)
            return r;
    }
    if (g->list_scan > 0 && g->list_sha[0]) {
        /* The file as it is now: the reader's own hash is of what it parsed before. */
        char hex[RECIPIENTS_SHA256_HEX];
        r = recipients_file_sha256(g->list, g->list_offset, hex, e);
        if (r == IPW_OK && strcmp(hex, g->list_sha) == 0) {
            /* Only grown: what was read is still there. */
            snprintf(g->list_stat, sizeof g->list_stat, "%s", cur);
            g->list_dirty = true;
            return engine_list_seek(g, e);
        }
        if (r != IPW_OK && r != IPW_ENOTFOUND)
            return r;
        err_clear(e);
    }
    /* A new scan from the start. */
    if (same_file) {
        r = engine_list_readers(g, e);
        if (r != IPW_OK)
            return r;
    }
    if (g->list_scan > 0 && g->o->log)
        fprintf(g->o->log,
                "ipwarm: the recipient list %s changed: reading it again from the "
                "start\n",
                path);
    g->list_scan++;
    g->list_offset = recipients_data_offset(g->list);
    g->list_line = recipients_data_line(g->list);
    g->list_swept = false;
    g->list_sha[0] = '\0';
    snprintf(g->list_stat, sizeof g->list_stat, "%s", cur);
    g->list_dirty = true;
    int any = 0;
    r = store_recipients_unconfirmed(g->st, g->list_scan, &any, e);
    if (r != IPW_OK)
        return r;
    g->list_confirm = any != 0;
    return engine_list_seek(g, e);
}

static ipw_status engine_list_meta_int(struct engine *g, const char *key, int64_t *v)
{
    char *s = NULL;
    ipw_status r = store_meta_get(g->st, key, &s, NULL);
    if (r == IPW_OK)
        *v = strtoll(s, NULL, 10);
    free(s);
    return r;
}

/* Writes what the list's reading has reached; part of the caller's batch. */
static ipw_status engine_list_save(struct engine *g, struct err *e)
{
    char off[32], line[32], scan[32], swept[32];
    snprintf(off, sizeof off, "%lld", (long long)g->list_offset);
    snprintf(line, sizeof line, "%ld", g->list_line);
    snprintf(scan, sizeof scan, "%lld", (long long)g->list_scan);
    snprintf(swept, sizeof swept, "%lld", (long long)(g->list_swept ? g->list_scan : 0));
    const char *const kv[][2] = {
        {"list.path", g->p->recipients_file},
        {"list.scan", scan},
        {"list.offset", off},
        {"list.line", line},
        {"list.sha256", g->list_sha},
        {"list.stat", g->list_stat},
        {"list.swept", swept},
    };
    ipw_status r = IPW_OK;
    for (size_t i = 0; r == IPW_OK && i < sizeof kv / sizeof kv[0]; i++)
        r = store_meta_set(g->st, kv[i][0], kv[i][1], e);
    return r;
}

static void engine_list_forget_queued(struct engine *g);
static ipw_status engine_list_reassign(struct engine *g, int64_t now, struct err *e);

ipw_status engine_list_open(struct engine *g, struct err *e)
{
    ipw_status r = engine_list_readers(g, e);
    if (r != IPW_OK)
        return r;
    int64_t real = clock_real_ms();
    if (g->o->once)
        g->list_until_real_ms = real + ENGINE_TICK_SEND_MS;
    else if (g->o->for_ms > 0)
        g->list_until_real_ms = real + g->o->for_ms;
    /* Where the runs before this one got to; nothing recorded (a new state file, or one from
     * before list scans) starts scan 1 from the start. */
    char *path = NULL, *sha = NULL, *stat = NULL;
    int64_t scan = 0, off = 0, line = 0, swept = 0;
    if (store_meta_get(g->st, "list.path", &path, NULL) == IPW_OK &&
        strcmp(path, g->p->recipients_file) == 0 &&
        engine_list_meta_int(g, "list.scan", &scan) == IPW_OK &&
        engine_list_meta_int(g, "list.offset", &off) == IPW_OK &&
        engine_list_meta_int(g, "list.line", &line) == IPW_OK &&
        store_meta_get(g->st, "list.sha256", &sha, NULL) == IPW_OK &&
        store_meta_get(g->st, "list.stat", &stat, NULL) == IPW_OK) {
        engine_list_meta_int(g, "list.swept", &swept);
        g->list_offset = off;
        g->list_line = (long)line;
        snprintf(g->list_sha, sizeof g->list_sha, "%s", sha);
        snprintf(g->list_stat, sizeof g->list_stat, "%s", stat);
        g->list_swept = swept == scan;
    } else if (engine_list_meta_int(g, "list.scan", &scan) != IPW_OK) {
        scan = 0;
    }
    /* A scan number is never used twice, even when the list's path changed (no place is then
     * kept, so a new scan starts): the recipients of the old list are not found by it, and
     * are removed at its end. */
    g->list_scan = scan;
    free(path);
    free(sha);
    free(stat);
    r = engine_list_sync(g, e);
    if (r == IPW_OK && !g->list_swept && !g->list_confirm) {
        /* Going on with a scan that an earlier run started. */
        int any = 0;
        r = store_recipients_unconfirmed(g->st, g->list_scan, &any, e);
        g->list_confirm = any != 0;
    }
    if (r == IPW_OK)
        r = engine_list_reassign(g, clock_now_ms(), e);
    return r;
}

/* One record read from the list, on its way to the queue. */
struct engine_import_rec {
    char *address, *domain;
    int64_t offset;
    long line;
    uint64_t digest;
    bool known;
};

/*
 * Reads up to max records (good or bad) of the list into the queue: the recipients already
 * queued are marked as found, the new ones' MX resolved and queued. *end is set when the
 * complete lines are all read; a scan that reached the end marks what it did not find removed.
 */
static ipw_status engine_import_chunk(struct engine *g, size_t max, int64_t now, bool *end,
                                      struct err *e)
{
    *end = false;
    struct engine_import_rec *batch = calloc(max, sizeof *batch);
    const char **domains = calloc(max, sizeof *domains);
    if (!batch || !domains) {
        free(batch);
        free(domains);
        return err_set(e, IPW_ENOMEM, "out of memory");
    }
    size_t n = 0, n_new = 0;
    ipw_status r = IPW_OK;
    bool stopped = false;
    for (size_t read = 0; read < max; read++) {
        struct recipients_rec rec;
        struct err le;
        ipw_status lr = recipients_next(g->list, &rec, &le);
        if (lr == IPW_ENOTFOUND) {
            *end = true;
            break;
        }
        if (lr == IPW_ETEMP) {
            stopped = true;
            break;
        }
        if (lr == IPW_EDATA) {
            /* A bad line is reported and skipped: the rest of the list still goes out. */
            if (g->o->log)
                fprintf(g->o->log, "ipwarm: skipping a bad recipient: %s\n", le.msg);
            continue;
        }
        if (lr != IPW_OK) {
            r = err_set(e, lr, "%s", le.msg);
            break;
        }
        struct engine_import_rec *b = &batch[n];
        b->address = strdup(rec.address);
        b->domain = strdup(rec.domain);
        b->offset = rec.offset;
        b->line = rec.line;
        b->digest = rec.digest;
        n++;
        if (!b->address || !b->domain) {
            r = err_set(e, IPW_ENOMEM, "out of memory");
            break;
        }
    }
    /* Where the reader is now (after the last record, or before a line that is not complete)
     * and the hash of exactly the bytes it parsed to get there. */
    long end_line = 0;
    int64_t end_offset = recipients_tell(g->list, &end_line);
    char sha[RECIPIENTS_SHA256_HEX] = "";
    if (r == IPW_OK && end_offset == g->list_offset) {
        /* Nothing new (an idle tick): no hashing at all. */
        memcpy(sha, g->list_sha, sizeof sha);
    } else if (r == IPW_OK) {
        ipw_status hr = recipients_prefix_sha256(g->list, end_offset, sha, e);
        if (hr == IPW_ETEMP) {
            /* Stopped while hashing (a rare second pass): this chunk is read again next time. */
            err_clear(e);
            stopped = true;
            for (size_t i = 0; i < n; i++) {
                free(batch[i].address);
                free(batch[i].domain);
            }
            n = 0;
            end_offset = g->list_offset;
            end_line = g->list_line;
            memcpy(sha, g->list_sha, sizeof sha);
        } else if (hr != IPW_OK) {
            r = hr;
        }
    }
    if (stopped)
        *end = false;

    /* Found in the list: the queued ones are marked, in one transaction. */
    if (r == IPW_OK && n > 0) {
        r = store_batch_begin(g->st, e);
        for (size_t i = 0; r == IPW_OK && i < n; i++) {
            struct store_recipient q = {.address = batch[i].address,
                                        .list_offset = batch[i].offset,
                                        .list_line = batch[i].line,
                                        .list_scan = g->list_scan,
                                        .list_digest = (int64_t)batch[i].digest};
            int known = 0;
            r = store_recipient_seen(g->st, &q, now, &known, e);
            batch[i].known = known != 0;
            if (!known)
                domains[n_new++] = batch[i].domain;
        }
        r = store_batch_end(g->st, r, e);
    }
    /* The MX lookups of the new ones outside any transaction: holding the write lock through
     * a DNS timeout would make `pause` and `resume` wait for it. Then one transaction for their
     * queue rows, the end of the scan and the place reached. A dry run queues too: queued
     * recipients are only pending, and the real run would queue them the same way. */
    if (r == IPW_OK && n_new > 0)
        r = engine_mx_prefetch(g, domains, n_new, now, e);
    int64_t removed = 0;
    bool swept_before = g->list_swept;
    bool progress = n > 0 || end_offset != g->list_offset || (*end && !g->list_swept);
    if (r == IPW_OK && (progress || g->list_dirty)) {
        r = store_batch_begin(g->st, e);
        for (size_t i = 0; r == IPW_OK && i < n; i++) {
            if (batch[i].known)
                continue;
            struct dns_mx_result *m = engine_mx(g, batch[i].domain, now, e);
            if (!m) {
                r = e->status;
                break;
            }
            size_t pi = provider_for_mx(g->p, m);
            char reason[512] = "";
            struct store_recipient q = {
                .address = batch[i].address,
                .domain = batch[i].domain,
                .provider = g->p->providers[pi].name,
                .state = "pending",
                .next_at_ms = 0,
                .added_ms = now,
                .list_offset = batch[i].offset,
                .list_line = batch[i].line,
                .list_scan = g->list_scan,
                .list_digest = (int64_t)batch[i].digest,
            };
            if (engine_mx_undeliverable(m->status)) {
                /* Domains that cannot receive are set aside before any mail is queued: a
                 * local reason (nobody replied), so skipped, not suppressed. */
                snprintf(reason, sizeof reason, "%s cannot receive mail: %s", batch[i].domain,
                         engine_mx_why(m));
                q.state = "skipped";
                q.reason = reason;
            }
            int added = 0;
            r = store_recipient_queue(g->st, &q, &added, e);
            if (added) {
                g->sum->queued++;
                if (engine_mx_undeliverable(m->status))
                    g->sum->undeliverable++;
            }
        }
        bool sweep = r == IPW_OK && *end && !g->list_swept;
        if (sweep) {
            char reason[600];
            snprintf(reason, sizeof reason, "no longer in the recipient list %s",
                     g->p->recipients_file);
            r = store_recipients_sweep(g->st, g->list_scan, reason, &removed, e);
        }
        int64_t old_offset = g->list_offset;
        long old_line = g->list_line;
        char old_sha[RECIPIENTS_SHA256_HEX];
        memcpy(old_sha, g->list_sha, sizeof old_sha);
        if (r == IPW_OK) {
            g->list_offset = end_offset;
            g->list_line = end_line;
            memcpy(g->list_sha, sha, sizeof sha);
            g->list_swept = g->list_swept || sweep;
            r = engine_list_save(g, e);
        }
        r = store_batch_end(g->st, r, e);
        if (r == IPW_OK) {
            g->list_dirty = false;
        } else {
            g->list_offset = old_offset;
            g->list_line = old_line;
            memcpy(g->list_sha, old_sha, sizeof old_sha);
            if (sweep)
                g->list_swept = false;
        }
    }
    if (r == IPW_OK && g->list_swept && !swept_before) {
        /* Recipients taken into the providers' queues before the scan ended may have been
         * removed, and their places in the list have changed: take them again from the store. */
        engine_list_forget_queued(g);
    }
    if (r == IPW_OK && removed > 0) {
        if (g->o->log)
            fprintf(g->o->log, "ipwarm: %lld recipients are no longer in the list %s: not sent\n",
                    (long long)removed, g->p->recipients_file);
    }
    for (size_t i = 0; i < n; i++) {
        free(batch[i].address);
        free(batch[i].domain);
    }
    free(batch);
    free(domains);
    return r;
}

/*
 * Reads the next records of the list into the queue (up to max, or the whole rest during a
 * scan that must end before anything more is sent), after checking whether the file changed.
 * Ends with the complete lines read (list_eof), or with a last line that waits for its line
 * end (list_tail), or when the run is asked to stop (the read goes on in the next run).
 */
ipw_status engine_import(struct engine *g, size_t max, int64_t now, struct err *e)
{
    if (g->list_eof || max == 0)
        return IPW_OK;
    ipw_status r = engine_list_sync(g, e);
    if (r == IPW_ETEMP && engine_list_interrupt(g))
        return IPW_OK; /* stopping: the next run reads on */
    if (r == IPW_ENOINPUT && g->list_read) {
        /* Gone during a run (being replaced by `rm` and `cp`, say): what was queued goes on,
         * and the list is looked at again at the next call. A run cannot start without it. */
        if (g->o->log)
            fprintf(g->o->log, "ipwarm: %s\n", e->msg);
        err_clear(e);
        return IPW_OK;
    }
    if (r != IPW_OK)
        return r;
    g->list_read = true;
    if (g->list_tail) {
        /* A last line without its line end is taken as it is once the file has settled. */
        struct recipients_file_state fs;
        if (recipients_stat(g->p->recipients_file, &fs, NULL) == IPW_OK &&
            recipients_settled(&fs, clock_real_ms()))
            recipients_wait_for_line_end(g->list, false);
    }
    bool end = false;
    do {
        r = engine_import_chunk(g, max, now, &end, e);
    } while (r == IPW_OK && !end && g->list_confirm && !engine_list_interrupt(g));
    recipients_wait_for_line_end(g->list, true);
    if (r != IPW_OK)
        return r;
    if (end)
        g->list_confirm = false;
    g->list_tail = end && recipients_unterminated(g->list) > 0;
    g->list_eof = end && !g->list_tail;
    return IPW_OK;
}

/*
 * Called at every refresh of the loop: while the list is read to its end, looks (once a
 * second, one stat) whether the file changed, and reads it again when it did, or when a last
 * line waits to be complete, so that a long run notices an edited list within a second.
 */
ipw_status engine_list_poll(struct engine *g, int64_t now, struct err *e)
{
    int64_t real = clock_real_ms();
    if (real < g->list_poll_real_ms)
        return IPW_OK;
    g->list_poll_real_ms = real + ENGINE_REFRESH_MS;
    bool look = g->list_tail || g->list_resync;
    if (!look && g->list_eof) {
        struct recipients_file_state fs;
        char cur[sizeof g->list_stat];
        if (recipients_stat(g->p->recipients_file, &fs, NULL) != IPW_OK)
            return IPW_OK; /* gone for a moment (being replaced): look again later */
        recipients_file_state_format(&fs, cur, sizeof cur);
        look = strcmp(cur, g->list_stat) != 0;
    }
    if (!look)
        return IPW_OK;
    g->list_resync = false;
    g->list_eof = false;
    return engine_import(g, ENGINE_IMPORT_CHUNK, now, e);
}

/*
 * Recipients queued for a provider the plan no longer has would never be sent (and a `once`
 * run would never end): at start, when the plan's providers changed, they go to the provider
 * the plan's matching gives their domain now.
 */
struct engine_names {
    char **v;
    size_t n, cap;
    bool with_null; /* NULL was among the names */
    bool oom;
};

static int engine_names_add(const char *name, void *arg)
{
    struct engine_names *l = arg;
    if (!name) {
        l->with_null = true;
        return 0;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv) {
            l->oom = true;
            return 1;
        }
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n] = strdup(name);
    if (!l->v[l->n]) {
        l->oom = true;
        return 1;
    }
    l->n++;
    return 0;
}

static void engine_names_free(struct engine_names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Moves the unfinished recipients of provider from (NULL: none) to their provider now. */
static ipw_status engine_list_move(struct engine *g, const char *from, int64_t now, int64_t *moved,
                                   struct err *e)
{
    struct engine_names doms = {0};
    ipw_status r = store_recipient_domains(g->st, from, engine_names_add, &doms, e);
    if (r == IPW_OK && doms.oom)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    for (size_t at = 0; r == IPW_OK && at < doms.n; at += ENGINE_IMPORT_CHUNK) {
        size_t k = doms.n - at < ENGINE_IMPORT_CHUNK ? doms.n - at : ENGINE_IMPORT_CHUNK;
        r = engine_mx_prefetch(g, (const char **)doms.v + at, k, now, e);
        if (r == IPW_OK)
            r = store_batch_begin(g->st, e);
        for (size_t i = at; r == IPW_OK && i < at + k; i++) {
            struct dns_mx_result *m = engine_mx(g, doms.v[i], now, e);
            if (!m) {
                r = e->status;
                break;
            }
            int64_t c = 0;
            r = store_recipients_set_provider(
                g->st, from, doms.v[i], g->p->providers[provider_for_mx(g->p, m)].name, &c, e);
            *moved += c;
        }
        r = store_batch_end(g->st, r, e);
    }
    engine_names_free(&doms);
    return r;
}

static ipw_status engine_list_reassign(struct engine *g, int64_t now, struct err *e)
{
    char key[4096];
    size_t len = 0;
    key[0] = '\0';
    for (size_t i = 0; i < g->p->n_providers && len < sizeof key; i++) {
        int w =
            snprintf(key + len, sizeof key - len, "%s%s", i ? "," : "", g->p->providers[i].name);
        if (w > 0)
            len += (size_t)w;
    }
    char *was = NULL;
    bool same =
        store_meta_get(g->st, "list.providers", &was, NULL) == IPW_OK && strcmp(was, key) == 0;
    free(was);
    if (same)
        return IPW_OK;
    struct engine_names provs = {0};
    ipw_status r = store_recipient_providers(g->st, engine_names_add, &provs, e);
    if (r == IPW_OK && provs.oom)
        r = err_set(e, IPW_ENOMEM, "out of memory");
    int64_t moved = 0;
    if (r == IPW_OK && provs.with_null)
        r = engine_list_move(g, NULL, now, &moved, e);
    for (size_t i = 0; r == IPW_OK && i < provs.n; i++)
        if (plan_provider_find(g->p, provs.v[i]) < 0)
            r = engine_list_move(g, provs.v[i], now, &moved, e);
    engine_names_free(&provs);
    if (r == IPW_OK)
        r = store_meta_set(g->st, "list.providers", key, e);
    if (r == IPW_OK && moved > 0 && g->o->log)
        fprintf(g->o->log,
                "ipwarm: %lld queued recipients of providers the plan no longer has "
                "moved to the plan's providers\n",
                (long long)moved);
    return r;
}

/* ---- the per-provider queues of due recipients ---- */

void engine_qrec_free(struct engine_qrec *q)
{
    free(q->address);
    free(q->domain);
    memset(q, 0, sizeof *q);
}

struct engine_fill_ctx {
    struct engine *g;
    struct engine_lane *v;
    size_t added;
    int oom;
};

static int engine_fill_cb(const struct store_recipient *r, void *arg)
{
    struct engine_fill_ctx *c = arg;
    struct engine_lane *v = c->v;
    if (strmap_find(&c->g->claimed, r->address))
        return 0;
    if (v->qu->q_n == v->qu->q_cap) {
        size_t ncap = v->qu->q_cap ? v->qu->q_cap * 2 : ENGINE_QUEUE_BATCH;
        struct engine_qrec *nq = calloc(ncap, sizeof *nq);
        if (!nq) {
            c->oom = 1;
            return 1;
        }
        for (size_t i = 0; i < v->qu->q_n; i++)
            nq[i] = v->qu->q[(v->qu->q_head + i) % v->qu->q_cap];
        free(v->qu->q);
        v->qu->q = nq;
        v->qu->q_head = 0;
        v->qu->q_cap = ncap;
    }
    struct engine_qrec *q = &v->qu->q[(v->qu->q_head + v->qu->q_n) % v->qu->q_cap];
    q->address = strdup(r->address);
    q->domain = strdup(r->domain);
    if (!q->address || !q->domain) {
        engine_qrec_free(q);
        c->oom = 1;
        return 1;
    }
    q->id = r->id;
    q->retries = r->retries;
    q->first_attempt_ms = r->first_attempt_ms;
    q->list_offset = r->list_offset;
    q->list_line = r->list_line;
    q->cycle = r->cycle;
    /* Claimed from now on, so that the next refill does not take it twice. */
    if (strmap_put(&c->g->claimed, r->address, 1) != 0) {
        engine_qrec_free(q);
        c->oom = 1;
        return 1;
    }
    v->qu->q_n++;
    c->added++;
    return 0;
}

ipw_status engine_fill(struct engine *g, struct engine_lane *v, int64_t now, struct err *e)
{
    if (v->qu->q_n > 0 || now < v->qu->refill_after_ms)
        return IPW_OK;
    struct engine_fill_ctx c = {.g = g, .v = v};
    /* Ask for more than a batch: recipients already claimed in this run are skipped. */
    int limit = ENGINE_QUEUE_BATCH + (int)(g->claimed.n < 100000 ? g->claimed.n : 100000);
    ipw_status r = store_recipients_due(g->st, now, v->pp->name, limit, engine_fill_cb, &c, e);
    if (r != IPW_OK)
        return r;
    if (c.oom)
        return err_set(e, IPW_ENOMEM, "out of memory");
    if (c.added == 0)
        v->qu->refill_after_ms = now + ENGINE_REFRESH_MS;
    return IPW_OK;
}

/* Drops the recipients taken into the providers' queues (not in flight): after recipients
 * were removed from the list, the queues are filled again from the store, which has only
 * those still pending. */
static void engine_list_forget_queued(struct engine *g)
{
    for (size_t i = 0; i < g->n_lanes; i++) {
        struct engine_lane *v = &g->lanes[i];
        for (size_t k = 0; k < v->qu->q_n; k++) {
            struct engine_qrec *q = &v->qu->q[(v->qu->q_head + k) % v->qu->q_cap];
            strmap_del(&g->claimed, q->address);
            engine_qrec_free(q);
        }
        v->qu->q_n = 0;
        v->qu->q_head = 0;
        v->qu->refill_after_ms = 0;
    }
}

ipw_status engine_queues_recheck(struct engine *g, struct err *e)
{
    int64_t id = 0;
    ipw_status r = store_report_last_id(g->st, &id, e);
    if (r == IPW_OK && id != g->report_seen_id) {
        engine_list_forget_queued(g);
        g->report_seen_id = id;
    }
    return r;
}

/* ---- a recipient's columns, just before its message ---- */

/*
 * Just before a message is composed: when the list changed since it was last looked at (one
 * stat), it is read again now, and the recipient's row with it. IPW_ENOTFOUND (e says why) when
 * the recipient is no longer to be sent (taken out of the list): the window between an edit and
 * the next look at the file is closed for every message.
 */
static ipw_status engine_list_current(struct engine *g, struct engine_qrec *q, struct err *e)
{
    struct recipients_file_state fs;
    if (recipients_stat(g->p->recipients_file, &fs, NULL) != IPW_OK)
        return IPW_OK; /* gone for a moment: engine_import says so when it reads */
    if (!g->memo_fs_text[0] || memcmp(&fs, &g->memo_fs, sizeof fs) != 0) {
        recipients_file_state_format(&fs, g->memo_fs_text, sizeof g->memo_fs_text);
        g->memo_fs = fs;
    }
    if (strcmp(g->memo_fs_text, g->list_stat) == 0)
        return IPW_OK;
    g->list_eof = false;
    ipw_status r = engine_import(g, ENGINE_IMPORT_CHUNK, clock_now_ms(), e);
    if (r != IPW_OK)
        return r;
    struct store_recipient row;
    r = store_recipient_get(g->st, q->address, &row, e);
    if (r != IPW_OK)
        return r;
    if (strcmp(row.state, "pending") != 0) {
        r = err_set(e, IPW_ENOTFOUND, "%s, found just before sending: not sent",
                    row.reason ? row.reason : row.state);
    } else {
        q->list_offset = row.list_offset;
        q->list_line = (long)row.list_line;
    }
    store_recipient_clear(&row);
    return r;
}

/*
 * The recipient's CSV columns, read from its line in the list (its place is refreshed by every
 * scan, and a changed file is read again before anything is sent, so it is where recorded).
 * IPW_ENOTFOUND when the list changed and no longer has the recipient; IPW_ETEMP when the line
 * there is not the recipient's after all: not the recipient's fault, so it waits while the list
 * is read again; another status when reading the list failed.
 */
ipw_status engine_columns(struct engine *g, struct engine_qrec *q, const char *const **values,
                          size_t *n, struct err *e)
{
    *values = NULL;
    *n = 0;
    ipw_status r = engine_list_current(g, q, e);
    if (r != IPW_OK || g->n_columns == 0)
        return r;
    r = IPW_ENOTFOUND;
    struct recipients_rec rec;
    if (q->list_offset >= recipients_data_offset(g->list_lookup) && q->list_line > 0 &&
        recipients_seek(g->list_lookup, q->list_offset, q->list_line, NULL) == IPW_OK)
        r = recipients_next(g->list_lookup, &rec, NULL);
    if (r != IPW_OK || !rec.address || strcasecmp(rec.address, q->address) != 0) {
        /* Forget what the file looked like, so that engine_list_poll reads it again from the
         * start and every recipient's place is found afresh. */
        g->list_sha[0] = '\0';
        g->list_stat[0] = '\0';
        g->list_resync = true;
        return err_set(e, IPW_ETEMP,
                       "%s:%ld: the recipient list changed since %s was read there; reading "
                       "the list again",
                       g->p->recipients_file, q->list_line, q->address);
    }
    *values = rec.values;
    *n = rec.n_values;
    return IPW_OK;
}
