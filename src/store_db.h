/*
 * store_db: what the files of the store share (src/store*.c only; everyone else uses
 * include/ipwarm/store.h). The handle, the list of cached statements (their SQL is in store_db.c)
 * and the helpers that prepare, bind, step and end them and turn SQLite's errors into
 * sentences.
 */
#ifndef IPWARM_STORE_DB_H
#define IPWARM_STORE_DB_H

#include "ipwarm/store.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PRAGMA application_id of an ipwarm state file: "IPWA". Lets open refuse other programs' files. */
#define STORE_APP_ID 0x49505741

/* Whether s is one of the strings of the array set (a value set mirrored by a CHECK). */
#define IN_SET(s, set) store_in_set((s), (set), sizeof(set) / sizeof((set)[0]))

/* The statements each handle prepares once and keeps (QSQL in store_db.c holds their SQL). */
enum q {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT_JOINED,
    Q_USER_VERSION,
    Q_ATTEMPT_INSERT,
    Q_ATTEMPT_STAMP_RCPT,
    Q_ATTEMPT_FINISH,
    Q_ATTEMPT_FACTS,
    Q_SUMMARY_ADD,
    Q_RECOVER_SUMMARY,
    Q_RECOVER_MARK,
    Q_ATTEMPTS_OF_RCPT,
    Q_ATTEMPT_GET,
    Q_ATTEMPTS_COUNT_ALL,
    Q_ATTEMPTS_COUNT,
    Q_SUMMARY_EACH,
    Q_RCPT_ADD,
    Q_RCPT_SAVE,
    Q_RCPT_GET,
    Q_RCPT_RETRY,
    Q_RCPT_FINAL,
    Q_RCPT_NEXT_CYCLE,
    Q_RCPT_REQUEUE,
    Q_RCPT_DUE,
    Q_RCPT_DUE_PROVIDER,
    Q_RCPT_COUNT_ALL,
    Q_RCPT_COUNT,
    Q_PROV_SAVE,
    Q_PROV_LOAD,
    Q_PROV_EACH,
    Q_RULE_ADD,
    Q_RULES_ACTIVE,
    Q_RULES_ACTIVE_PROVIDER,
    Q_RULES_END,
    Q_RULES_PURGE,
    Q_MX_PUT,
    Q_MX_GET,
    Q_PREFLIGHT_ADD,
    Q_PREFLIGHT_LATEST,
    Q_LOCK_PUT,
    Q_LOCK_GET,
    Q_LOCK_CLEAR,
    Q_RCPT_QUEUE,
    Q_RECOVER_HOLD,
    Q_RCPT_SEEN,
    Q_RCPT_SWEEP,
    Q_RCPT_SKIP,
    Q_RCPT_RELEASE,
    Q_RCPT_RELEASE_HELD,
    Q_RCPT_PROVIDERS,
    Q_RCPT_DOMAINS,
    Q_RCPT_SET_PROVIDER,
    Q_RCPT_UNCONFIRMED,
    Q_ATTEMPTS_SINCE,
    Q_META_GET,
    Q_META_SET,
    Q_REASON_ADD,
    Q_REASONS_EACH,
    Q_RULES_EACH,
    Q_ATTEMPT_COUNTS,
    Q_LANES_RESUME,
    Q_COUNT
};

struct store {
    sqlite3 *db;
    char *path;
    char *lock_path;
    int busy_ms;
    int lock_fd; /* -1 unless this handle holds the run lock */
    long lock_pid;
    char lock_host[256];
    sqlite3_stmt *stmt[Q_COUNT];
    int batch;  /* inside store_batch_begin(): writes join its transaction */
    int held;   /* the open batch waits for the next one to join it (store_batch_hold) */
    int marked; /* a batch joined after a hold: its own writes are after a savepoint */
    /* Inside a batch: what its outcomes add to summary_hourly, written once per row at its end
     * (store_sums_write) instead of once per outcome. */
    struct store_sum *sums;
    size_t n_sums, cap_sums;
    int wal_pages; /* pages in the WAL after this handle's last commit (store_wal_hook) */
};

/* store_db.c: errors, statements, bindings, transactions */
ipw_status store_db_fail(struct store *st, int rc, const char *doing, struct err *e);
ipw_status store_stmt_get(struct store *st, enum q q, const char *doing, sqlite3_stmt **out,
                          struct err *e);
void store_stmt_done(sqlite3_stmt *s);
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
void store_bind_opt(sqlite3_stmt *s, int i, int64_t v);
void store_bind_range(sqlite3_stmt *s, const char *provider, int64_t since_ms, int64_t until_ms);
const char *store_col_text(sqlite3_stmt *s, int i);
ipw_status store_rows_end(struct store *st, sqlite3_stmt *s, int rc, const char *doing,
                          struct err *e);
ipw_status store_rows_end_once(struct store *st, sqlite3_stmt *s, int rc, const char *doing,
                               struct err *e);
ipw_status store_run(struct store *st, sqlite3_stmt *s, const char *doing, struct err *e);
ipw_status store_run_plain(struct store *st, enum q q, const char *doing, struct err *e);
ipw_status store_tx_begin(struct store *st, const char *doing, struct err *e);
void store_tx_rollback(struct store *st);
ipw_status store_tx_commit(struct store *st, const char *doing, struct err *e);
ipw_status store_tx_end(struct store *st, ipw_status r, const char *doing, struct err *e);
const char *store_dup_str(const char *s, int *oom);
void store_free_str(const char *s);
/*
 * A struct read from a row first points into the statement's memory; store_strs_dup replaces
 * each string field named in offs (offsetof values) by a copy the struct owns, and returns
 * nonzero when out of memory (the fields it could not copy are then NULL). store_strs_free
 * frees them again (the _clear functions).
 */
int store_strs_dup(void *obj, const size_t *offs, size_t n);
void store_strs_free(void *obj, const size_t *offs, size_t n);
#define STORE_STRS_DUP(obj, offs)  store_strs_dup((obj), (offs), sizeof(offs) / sizeof((offs)[0]))
#define STORE_STRS_FREE(obj, offs) store_strs_free((obj), (offs), sizeof(offs) / sizeof((offs)[0]))
ipw_status store_count_query(struct store *st, enum q q, const char *arg, int64_t *n,
                             const char *doing, struct err *e);
ipw_status store_prep(struct store *st, const char *sql, const char *doing, sqlite3_stmt **out,
                      struct err *e);
ipw_status store_tx_stmt(struct store *st, enum q q, const char *doing, sqlite3_stmt **out,
                         struct err *e);
ipw_status store_tx_prep(struct store *st, const char *sql, const char *doing, sqlite3_stmt **out,
                         struct err *e);
ipw_status store_run_once(struct store *st, sqlite3_stmt *s, const char *doing, struct err *e);
int store_in_set(const char *s, const char *const *set, size_t n);
ipw_status store_query_int(struct store *st, const char *sql, int64_t *v, const char *doing,
                           struct err *e);
ipw_status store_exec_sql(struct store *st, const char *sql, const char *doing, struct err *e);

/* One summary_hourly row's additions held by a batch (store_attempts.c). */
struct store_sum {
    char *provider;
    int64_t hour_ms;
    int64_t attempts;
    int64_t n[7]; /* per final outcome, in summary_hourly's column order */
};

/* store_attempts.c: writes the batch's held counter additions (in its transaction), and forgets
 * them (after a commit, or a rollback that undid nothing of theirs). */
/* The hourly counters (summary_hourly): put adds a's counts to their row now; hold, inside a
 * batch, adds them to the row the batch keeps, which store_batch_end writes once
 * (store_sums_write) and forgets (store_sums_drop). All in the caller's transaction. */
ipw_status store_sum_put(struct store *st, const struct store_sum *a, struct err *e);
ipw_status store_sum_hold(struct store *st, const struct store_sum *a, struct err *e);
ipw_status store_sums_write(struct store *st, struct err *e);
void store_sums_drop(struct store *st);

/* store_attempts.c: applies a queue step to one recipient, in the caller's transaction. */
ipw_status store_attempts_rcpt_apply(struct store *st, const char *address, int64_t attempt_ms,
                                     const char *outcome, const struct store_recipient_update *u,
                                     const char *doing, struct err *e);

/* store_schema.c */
ipw_status store_schema_migrate(struct store *st, int v, struct err *e);

#endif
