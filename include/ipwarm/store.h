/*
 * store: the state file of a campaign, an SQLite database that survives crashes and restarts.
 *
 * It holds every SMTP attempt (written before the command that could deliver a message is sent,
 * and completed with its outcome after), the recipient queue, each provider's ramp and pause
 * state, active rule actions, the MX cache, pre-flight results, per provider/hour summary
 * counters for fast statistics, and the run lock that keeps a second runner away. The schema is
 * versioned with PRAGMA user_version and migrated forward on open; docs/schema.md describes every
 * table and column.
 *
 * Conventions of this interface:
 * - Every time is an int64_t count of milliseconds since the Unix epoch, UTC, passed in by the
 *   caller (the injected clock); the store never reads the clock for its decisions. In structs,
 *   an optional time of 0 means "none" and is stored as SQL NULL.
 * - Strings passed in are owned by the caller and only read during the call. Strings handed to a
 *   callback are valid only until the callback returns. Structs filled by a *_get / *_load /
 *   *_latest function own their strings (malloc'd): release them with the matching *_clear.
 * - Every write runs in its own short transaction (BEGIN IMMEDIATE ... COMMIT), so a crash
 *   leaves either the whole change or none of it.
 * - Callbacks return 0 to go on or non-zero to stop early (the function then returns IPW_OK).
 *   A callback must not write to the same store (finish reading first, then write).
 * - Failures return a status and fill e with a sentence naming the state file: IPW_ETEMP when
 *   another program kept the database locked past the busy timeout, IPW_EIO on I/O errors, a
 *   full disk or a damaged file, IPW_ENOMEM when out of memory, IPW_EUSAGE when the caller passed
 *   a value outside the documented sets, IPW_ESOFTWARE on unexpected SQL errors.
 */
#ifndef IPWARM_STORE_H
#define IPWARM_STORE_H

#include <stdint.h>

#include "ipwarm/err.h"

struct store;
struct sqlite3;

/* Default time to wait for another connection's write lock before giving up with IPW_ETEMP. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* ---- opening, versions ---- */

struct store_options {
    int busy_timeout_ms; /* 0: STORE_BUSY_TIMEOUT_MS */
    int must_exist;      /* non-zero: refuse to create a missing file (IPW_ENOINPUT) */
};

/* The newest schema version this build knows (the number of migrations). */
int store_schema_version(void);

/*
 * Opens (creating if missing) the state file at path, sets WAL journal, synchronous=NORMAL,
 * foreign keys and the busy timeout, and applies every missing migration, each in its own
 * transaction. On success *out is a handle to release with store_close().
 * Fails with IPW_ECANTCREAT when the file cannot be created or opened, IPW_ENOINPUT when it is
 * missing and opt->must_exist is set, IPW_EIO when it is not an SQLite database, is another
 * program's database, or has a schema version newer than this build knows (the sentence names
 * both versions), IPW_ETEMP when another program held it locked past the busy timeout.
 */
ipw_status store_open(const char *path, struct store **out, struct err *e);
/* store_open() with options (opt may be NULL for the defaults). */
ipw_status store_open_opts(const char *path, const struct store_options *opt, struct store **out,
                           struct err *e);
/*
 * For tests: like store_open() but migrates only up to version (0 = an empty database), so a
 * test can build a state file as an earlier release left it. Fails with IPW_EUSAGE when version
 * is outside 0..store_schema_version(), IPW_EIO when the file is already newer than version.
 */
ipw_status store_open_at_version(const char *path, int version, struct store **out, struct err *e);
/* Releases the run lock if this handle holds it, and closes the database. NULL is fine. */
void store_close(struct store *st);
/* The schema version of the open file (PRAGMA user_version), or -1 on error. */
int store_version(struct store *st);
/* Changes the busy timeout of an open handle (ms; <= 0 restores the default). */
void store_set_busy_timeout(struct store *st, int ms);
/* The path the store was opened with. */
const char *store_path(const struct store *st);
/*
 * The underlying SQLite connection, for read-only queries that have no function here yet
 * (reports). Writing through it bypasses the transactions and counters of this module: don't.
 */
struct sqlite3 *store_db(struct store *st);

/* ---- run lock: one runner per state file ---- */

struct store_lock_holder {
    long pid;
    char host[256];
    int64_t acquired_ms;
};

/*
 * Takes the run lock of the state file: flock(LOCK_EX|LOCK_NB) on "<path>.lock", held until
 * store_lock_release() or store_close() (or the process dies: the kernel drops it, even on
 * kill -9), and records this process (pid, host name, now_ms) in the run_lock table for display.
 * Returns IPW_OK (also when this handle already holds it), IPW_ELOCKED at once when another
 * runner holds it (the sentence names its pid, host and since when, as recorded),
 * IPW_ECANTCREAT when the lock file cannot be created, or a database status.
 * The lock belongs to the open file description: a child forked while it is held shares it.
 */
ipw_status store_lock_acquire(struct store *st, int64_t now_ms, struct err *e);
/* Clears this handle's run_lock row and drops the lock; does nothing when not held. */
void store_lock_release(struct store *st);
/* Non-zero when this handle holds the run lock. */
int store_lock_held(const struct store *st);
/*
 * Who holds the run lock now: fills *out and returns IPW_OK when a runner (possibly this handle)
 * holds it (pid 0 when the holder has not recorded itself yet), IPW_ENOTFOUND when nobody
 * does (a row left by a killed runner is ignored), or a database status. Probing takes a shared
 * lock for an instant when this handle is not the holder.
 */
ipw_status store_lock_holder(struct store *st, struct store_lock_holder *out, struct err *e);

/* ---- attempts ---- */

/*
 * One SMTP attempt, as `trace` shows it. phase is one of connect, ehlo, starttls, auth, mail,
 * rcpt, data, quit (NULL = not known yet). outcome is one of delivered, deferred, bounced,
 * failed, expired, blocked (refused because of the sender, our IP or domain, not the
 * recipient), or in-flight (recorded, outcome not yet known) and unknown (the run stopped
 * while it was in flight). code 0 = no SMTP reply; enhanced/text NULL = none. recipient is
 * compared without regard to case (store_attempts_for_recipient finds any spelling).
 */
struct store_attempt {
    int64_t id;
    int64_t started_ms;
    int64_t finished_ms; /* 0 while in flight */
    const char *recipient;
    const char *domain;
    const char *provider;
    const char *mx;
    const char *source_ip;
    const char *message_id;
    const char *phase;
    int code;
    const char *enhanced;
    const char *text;
    const char *outcome;
    int retry_no;          /* 0 for the first attempt of this recipient (in this cycle) */
    int dry_run;           /* non-zero: decided and recorded, nothing sent */
    const char *mail_from; /* the envelope sender (MAIL FROM) used; NULL = not recorded */
    int64_t rcpt_id;       /* the recipient's row (store_recipient.id) when known; 0 = look up */
};

/* How an attempt ended (input of store_attempt_finish_ex). */
struct store_outcome {
    int64_t finished_ms;
    const char *phase;    /* where it ended; NULL keeps the phase recorded at begin */
    int code;             /* 0 = no SMTP reply */
    const char *enhanced; /* NULL = none */
    const char *text;     /* the full reply text, or why there was none; NULL = none */
    const char *outcome;  /* delivered, deferred, bounced, failed, expired or blocked */
};

/* What to do with the attempt's recipient in the queue, in the same transaction. */
enum store_recipient_step {
    STORE_RCPT_KEEP = 0,   /* leave the queue alone */
    STORE_RCPT_RETRY,      /* pending again at next_at_ms, retries + 1 */
    STORE_RCPT_DONE,       /* state done (delivered, or given up in `once` mode) */
    STORE_RCPT_SUPPRESS,   /* state suppressed for good, with reason */
    STORE_RCPT_EXPIRE,     /* state expired (retries gave up), with reason */
    STORE_RCPT_NEXT_CYCLE, /* `cycle` mode: pending at next_at_ms, cycle + 1, retries 0 */
    /* Pending again at next_at_ms with retries and first_attempt_ms unchanged: not the
     * recipient's fault (the sender was refused, the run's set-up failed). last_outcome is the
     * outcome given (unchanged when NULL), reason is u->reason (why it waits; NULL clears),
     * and a recipient removed from the list meanwhile stays removed. */
    STORE_RCPT_REQUEUE,
    /* State skipped with reason: set aside for a local reason (its list line cannot make a
     * message, its domain cannot receive mail), nobody's reply; its last attempt and outcome
     * stay as they were. Queued again when its list line changes (store_recipient_seen) or by
     * store_recipient_release. */
    STORE_RCPT_SKIP,
    STORE_RCPT_HOLD, /* state held, with reason: the message may have been delivered
                        (its final dot went out, no reply came), so it is not sent again
                        without an operator (`ipwarm release`) */
};

struct store_recipient_update {
    enum store_recipient_step step;
    int64_t next_at_ms; /* RETRY, NEXT_CYCLE and REQUEUE */
    const char *reason; /* SUPPRESS, EXPIRE, REQUEUE and SKIP; NULL = none */
    int64_t rcpt_id;    /* the recipient's row (store_recipient.id) when known; 0 = look up */
};

/*
 * Records an attempt before anything that could deliver it is sent: inserts a with outcome
 * in-flight (a->outcome, code, enhanced, text and finished_ms are ignored) and sets *id.
 * a->recipient, a->provider and a->started_ms are required; a->domain NULL takes the part of
 * the recipient after the last '@'. Also stamps the recipient's last attempt time in the queue
 * when it is there. Returns IPW_OK, IPW_EUSAGE on a missing field or unknown phase, or a
 * database status.
 */
ipw_status store_attempt_begin(struct store *st, const struct store_attempt *a, int64_t *id,
                               struct err *e);
/*
 * Records the outcome of in-flight attempt id and adds it to the summary_hourly counters of its
 * provider and start hour, and (deferred, bounced, failed, blocked) its reply to summary_reasons
 * (dry-run attempts are not counted), in one transaction.
 * Returns IPW_OK, IPW_EUSAGE on an unknown outcome/phase or a code outside 100..599,
 * IPW_ENOTFOUND when id is not an in-flight attempt (unknown id or already finished), or a
 * database status.
 */
ipw_status store_attempt_finish(struct store *st, int64_t id, int64_t finished_ms,
                                const char *phase, int code, const char *enhanced, const char *text,
                                const char *outcome, struct err *e);
/*
 * store_attempt_finish() that also applies u (NULL = none) to the attempt's recipient in the
 * same transaction, so a crash can never leave a delivered recipient queued for a resend.
 * u needs the recipient in the queue (IPW_ENOTFOUND otherwise, and nothing is written).
 */
ipw_status store_attempt_finish_ex(struct store *st, int64_t id, const struct store_outcome *o,
                                   const struct store_recipient_update *u, struct err *e);
/*
 * At start, before sending: marks every in-flight attempt (left by a run that crashed or was
 * killed) as unknown with finished_ms = now_ms, counts them in summary_hourly, and sets *count
 * (may be NULL). The recipients of those attempts are held (state held, see struct
 * store_recipient) unless the attempt was a dry run, which sent nothing. Needs nothing else to
 * run concurrently; call it while holding the run lock. Dry-run attempts never stamp the queue
 * (store_attempt_begin), so a dry run leaves it as a real run will find it.
 */
ipw_status store_attempts_recover(struct store *st, int64_t now_ms, int64_t *count, struct err *e);
typedef int (*store_attempt_cb)(const struct store_attempt *a, void *ctx);
/* Calls cb for every attempt of recipient, oldest first (start time, then id). */
ipw_status store_attempts_for_recipient(struct store *st, const char *recipient,
                                        store_attempt_cb cb, void *ctx, struct err *e);
/* Loads one attempt by id into *out (owned strings: store_attempt_clear); IPW_ENOTFOUND. */
ipw_status store_attempt_get(struct store *st, int64_t id, struct store_attempt *out,
                             struct err *e);
void store_attempt_clear(struct store_attempt *a);
/* Sets *n to the number of attempts with outcome (NULL: all attempts). */
ipw_status store_attempts_count(struct store *st, const char *outcome, int64_t *n, struct err *e);

/* ---- summary counters (stats) ---- */

struct store_summary_row {
    const char *provider;
    int64_t hour_ms; /* start of the UTC hour */
    int64_t attempts, delivered, deferred, bounced, failed, expired, unknown, blocked;
    int64_t late_bounces; /* of bounced: bounces read from the mailbox after a 250 */
    int64_t complaints;   /* complaints about the attempts of this hour (not attempts) */
};
typedef int (*store_summary_cb)(const struct store_summary_row *r, void *ctx);
/*
 * Calls cb for each provider/hour row with since_ms <= hour_ms < until_ms (0: unbounded),
 * of provider (NULL: every provider), ordered by hour then provider.
 */
ipw_status store_summary_each(struct store *st, const char *provider, int64_t since_ms,
                              int64_t until_ms, store_summary_cb cb, void *ctx, struct err *e);

/*
 * The replies of deferred, bounced, failed and blocked attempts, counted per provider, UTC hour,
 * outcome, code, enhanced code and masked text (stats_mask_reason()), maintained with the
 * hourly counters in the outcome's transaction (dry-run attempts are not counted).
 */
struct store_reason_row {
    const char *provider;
    int64_t hour_ms;
    const char *outcome;  /* deferred, bounced, failed or blocked */
    int code;             /* 0 = no SMTP reply */
    const char *enhanced; /* NULL = none */
    const char *text;     /* the masked reply text ("" when there was none) */
    int64_t count;
};
typedef int (*store_reason_cb)(const struct store_reason_row *r, void *ctx);
/*
 * Calls cb for each reason row with since_ms <= hour_ms < until_ms (0: unbounded), of provider
 * (NULL: every provider), ordered by hour then provider (order within one provider/hour is
 * unspecified). The cost follows the number of rows in the range, never the attempts.
 */
ipw_status store_reasons_each(struct store *st, const char *provider, int64_t since_ms,
                              int64_t until_ms, store_reason_cb cb, void *ctx, struct err *e);

/* ---- recipient queue ---- */

/* state: pending, done, suppressed, expired, held (its last attempt was in flight when a run
 * stopped, so it may have been delivered: not sent again without an operator), removed (no
 * longer in the recipient list: not sent; back in its earlier state if it reappears) or skipped
 * (set aside for a local reason, such as a list value that cannot make a message: not sent, and
 * never counted against a provider). Addresses are compared without regard to case: one
 * recipient per address, spelled as first queued. */
struct store_recipient {
    int64_t id;
    const char *address;
    const char *domain;
    const char *provider; /* NULL until known */
    const char *state;
    int64_t next_at_ms;
    int retries;
    const char *reason;       /* why it is not pending, or why it waits; NULL = none */
    int64_t first_attempt_ms; /* of this cycle, whose outcome counted (not blocked); 0 = none */
    int64_t last_attempt_ms;  /* 0 = none */
    const char *last_outcome; /* NULL = none */
    int cycle;
    int64_t added_ms;
    int64_t list_offset; /* byte offset of its record in the recipient list; -1 = unknown */
    int64_t list_line;   /* its line there (for messages and template columns); 0 = unknown */
    int64_t list_scan;   /* the last reading of the list that found it (see below); 0 = none */
    int64_t list_digest; /* recipients_rec.digest of its record then; 0 = none */
};

/*
 * Queues address (pending at next_at_ms) unless it is already queued, in which case nothing
 * changes, so re-reading the recipient list each tick keeps every recipient's progress.
 * domain NULL takes the part after the last '@'; provider may be NULL. *added (may be NULL)
 * is 1 when a row was inserted, else 0.
 */
ipw_status store_recipient_add(struct store *st, const char *address, const char *domain,
                               const char *provider, int64_t next_at_ms, int64_t now_ms, int *added,
                               struct err *e);
/* Inserts or replaces every field of r (keyed by r->address; r->id is ignored). */
ipw_status store_recipient_save(struct store *st, const struct store_recipient *r, struct err *e);
/* Loads the recipient address into *out (owned strings: store_recipient_clear); IPW_ENOTFOUND. */
ipw_status store_recipient_get(struct store *st, const char *address, struct store_recipient *out,
                               struct err *e);
void store_recipient_clear(struct store_recipient *r);
/*
 * Applies u to recipient address after an attempt at attempt_ms that ended with outcome
 * (stored as last_outcome; may be NULL). IPW_ENOTFOUND when address is not queued.
 */
ipw_status store_recipient_update(struct store *st, const char *address, int64_t attempt_ms,
                                  const char *outcome, const struct store_recipient_update *u,
                                  struct err *e);
typedef int (*store_recipient_cb)(const struct store_recipient *r, void *ctx);
/*
 * Calls cb for at most limit (<= 0: no limit) pending recipients with next_at_ms <= now_ms, of
 * provider (NULL: any), earliest first (then by id). Uses a partial index over pending rows only,
 * so the cost follows the number due, not the size of the list.
 */
ipw_status store_recipients_due(struct store *st, int64_t now_ms, const char *provider, int limit,
                                store_recipient_cb cb, void *ctx, struct err *e);
/* Sets *n to the number of recipients in state (NULL: all). */
ipw_status store_recipients_count(struct store *st, const char *state, int64_t *n, struct err *e);

/* ---- provider state ---- */

/*
 * One lane's ramp and pause state: a provider, or with an IP pool one source IP at a provider
 * (keyed by name and ip). Dates are the plan's local dates "YYYY-MM-DD" (NULL = none yet).
 * paused_until_ms 0 = not paused; pause_manual non-zero: held by `ipwarm pause`.
 */
struct store_provider {
    const char *name;
    const char *ip; /* the source IP of a pool's lane; NULL or "" = the provider's only lane */
    int stage;
    int sending_day;
    const char *sending_day_date;
    double rate_per_min;
    int64_t sent_today;
    const char *sent_today_date;
    int64_t paused_until_ms;
    const char *pause_reason;
    int pause_level; /* how many times the pause doubled while deferrals repeated */
    int pause_manual;
    int64_t last_deferral_ms;
    int64_t rate_changed_ms; /* last cut or recovery step, for recover_after */
    const char *last_reply;
    int64_t last_reply_ms;
    int64_t next_send_ms; /* when the even sequence sends next; 0 = as soon as allowed */
    int64_t updated_ms;
    int64_t pace_anchor_ms; /* the even sequence (pace.h struct pace_seq): planned time of its */
    int64_t pace_n;         /* message 0, messages committed since, */
    double pace_rate;       /* and the rate it is spaced at */
};

/* Loads provider name's only lane (ip "") into *out (owned strings: store_provider_clear);
 * IPW_ENOTFOUND. */
ipw_status store_provider_load(struct store *st, const char *name, struct store_provider *out,
                               struct err *e);
/* Loads the lane of provider name from source IP ip (NULL or "": its only lane) into *out, as
 * store_provider_load. */
ipw_status store_lane_load(struct store *st, const char *name, const char *ip,
                           struct store_provider *out, struct err *e);
/* Inserts or replaces every field of p (keyed by p->name and p->ip). IPW_EUSAGE on a malformed
 * date. */
ipw_status store_provider_save(struct store *st, const struct store_provider *p, struct err *e);
void store_provider_clear(struct store_provider *p);
typedef int (*store_provider_cb)(const struct store_provider *p, void *ctx);
/* Calls cb for every stored lane, by name then ip. */
ipw_status store_providers_each(struct store *st, store_provider_cb cb, void *ctx, struct err *e);
typedef int (*store_name_cb)(const char *name, void *ctx);
/* Calls cb with the name of every stored provider, by name, once each. */
ipw_status store_provider_names(struct store *st, store_name_cb cb, void *ctx, struct err *e);

/* Lifts the backoff pauses and holds of every IP lane of provider name (a pool's rows; the
 * provider's own row is the caller's), for `resume`; *count (may be NULL) says how many. */
ipw_status store_lanes_resume(struct store *st, const char *name, int64_t now_ms, int64_t *count,
                              struct err *e);

/* One source IP's finished attempts at a provider (dry runs left out). deferred counts the
 * deferred, failed and blocked ones. */
struct store_attempt_counts {
    int64_t attempts, delivered, deferred, bounced;
};
/* Counts the attempts of provider from source_ip that started in [since_ms, until_ms). */
ipw_status store_attempt_counts(struct store *st, const char *provider, const char *source_ip,
                                int64_t since_ms, int64_t until_ms,
                                struct store_attempt_counts *out, struct err *e);

/* ---- rule actions (automatic and manual) ---- */

/* action: throttle (rate_per_min), suspend, bounce or pause. expires_ms 0 = until ended. */
struct store_rule_action {
    int64_t id;
    const char *provider;
    const char *ip;   /* the source IP it acts on; NULL or "" = the provider, every IP */
    const char *rule; /* the rule's name or pattern; "manual" for `ipwarm pause` */
    const char *action;
    double rate_per_min; /* throttle: the rate; else 0 */
    const char *reason;  /* the reply that triggered it, or the operator's note */
    int64_t started_ms;
    int64_t expires_ms;
    int manual;
};

/* Records an action and sets *id (may be NULL). IPW_EUSAGE on an unknown action. */
ipw_status store_rule_add(struct store *st, const struct store_rule_action *a, int64_t *id,
                          struct err *e);
typedef int (*store_rule_cb)(const struct store_rule_action *a, void *ctx);
/*
 * Calls cb for every action active at now_ms (started, and expires_ms unset or > now_ms) of
 * provider (NULL: all), oldest first.
 */
ipw_status store_rules_active(struct store *st, int64_t now_ms, const char *provider,
                              store_rule_cb cb, void *ctx, struct err *e);
/*
 * Calls cb for every action (active or not) of provider (NULL: all) that started at
 * since_ms <= started_ms < until_ms (0: unbounded), oldest first: the history `stats` shows.
 */
ipw_status store_rules_each(struct store *st, const char *provider, int64_t since_ms,
                            int64_t until_ms, store_rule_cb cb, void *ctx, struct err *e);
/*
 * Ends the active actions of provider at now_ms (sets expires_ms; history is kept), only
 * manual ones when manual_only; *count (may be NULL) says how many. For `resume`.
 */
ipw_status store_rules_end(struct store *st, const char *provider, int64_t now_ms, int manual_only,
                           int64_t *count, struct err *e);
/* Deletes actions that expired at or before before_ms; *count (may be NULL) says how many. */
ipw_status store_rules_purge(struct store *st, int64_t before_ms, int64_t *count, struct err *e);

/* ---- MX cache ---- */

/* status as in `mx --json`; hosts_json the "hosts" array of that document. */
struct store_mx {
    const char *domain;
    const char *status;
    const char *provider; /* NULL = none matched */
    const char *hosts_json;
    int64_t fetched_ms;
    int64_t expires_ms;
};

/* Inserts or replaces the entry of m->domain (case-insensitive). */
ipw_status store_mx_put(struct store *st, const struct store_mx *m, struct err *e);
/*
 * Loads the entry of domain into *out (owned strings: store_mx_clear) when it is still valid at
 * now_ms (expires_ms > now_ms); IPW_ENOTFOUND when absent or expired.
 */
ipw_status store_mx_get(struct store *st, const char *domain, int64_t now_ms, struct store_mx *out,
                        struct err *e);
void store_mx_clear(struct store_mx *m);

/* ---- pre-flight results ---- */

struct store_preflight {
    int64_t id;
    int64_t run_ms;
    int ok;
    const char *json; /* the `check --json` document */
};

/* Records a pre-flight run; *id (may be NULL) is its id. */
ipw_status store_preflight_add(struct store *st, int64_t run_ms, int ok, const char *json,
                               int64_t *id, struct err *e);
/* Loads the latest run (by run_ms, then id) into *out (store_preflight_clear); IPW_ENOTFOUND. */
ipw_status store_preflight_latest(struct store *st, struct store_preflight *out, struct err *e);
void store_preflight_clear(struct store_preflight *p);

/* ---- batches, queueing from the list, recent replies, settings ---- */

/*
 * Opens one transaction that the following writes join (each keeps its own statement), so a
 * tick can queue thousands of recipients at the cost of one commit. store_batch_end() commits
 * when r is IPW_OK, else rolls everything back, and returns the final status.
 */
ipw_status store_batch_begin(struct store *st, struct err *e);
ipw_status store_batch_end(struct store *st, ipw_status r, struct err *e);
/*
 * Leaves the open batch uncommitted for the next batch to join, so that two batches that follow
 * each other in a loop (the outcomes of one round and the records of the next) cost one commit.
 * Only store_batch_join() joins it: store_batch_begin(), store_batch_release() and every other
 * write (each store function's own transaction) commit it first. Nothing that must be durable
 * before something else happens may be left held: the caller releases before it waits or acts
 * outside the store.
 */
void store_batch_hold(struct store *st);
/* Joins a held batch, or begins one. What the joiner writes comes after a savepoint: if its
 * store_batch_end() is given an error, only the joiner's writes are rolled back and the held
 * batch's are still committed. */
ipw_status store_batch_join(struct store *st, struct err *e);
/* Commits a held batch, if any. */
ipw_status store_batch_release(struct store *st, struct err *e);
/*
 * Queues r (address, domain, provider, state, next_at_ms, reason, added_ms, list_offset,
 * list_line, cycle, list_scan, list_digest) unless the address is already queued in any case;
 * *added (may be NULL) is 1 when a row was inserted.
 */
ipw_status store_recipient_queue(struct store *st, const struct store_recipient *r, int *added,
                                 struct err *e);

/*
 * Reading the recipient list. Each reading of the list from its start is a scan with a number
 * (kept by the engine in meta); every record it reads marks its recipient with the scan, its
 * place and its digest, and when a scan has read the whole list, pending and held recipients
 * it did not find are no longer in the list: removed, and not sent.
 *
 * store_recipient_seen: the list's record r (address, list_offset, list_line, list_scan,
 * list_digest) names a queued recipient: its place, scan and digest are refreshed, a removed
 * recipient gets its earlier state back (pending, or held with the hold's reason), and a skipped
 * one whose digest changed (its line was edited) is pending again, due at now_ms. *known is 1
 * when the address (in any case) is queued and was not seen by this scan yet; 0 when it is not
 * queued (queue it with store_recipient_queue) or this scan already saw it (a second line with
 * the same address: the first one counts).
 */
ipw_status store_recipient_seen(struct store *st, const struct store_recipient *r, int64_t now_ms,
                                int *known, struct err *e);
/* Scan `scan` read the whole list: every pending or held recipient it did not see becomes
 * removed with reason (its state kept in removed_state), and *removed (may be NULL) counts
 * them. One transaction (joins an open batch). */
ipw_status store_recipients_sweep(struct store *st, int64_t scan, const char *reason,
                                  int64_t *removed, struct err *e);

/* *any = 1 when a pending or held recipient has not been found by scan `scan` (nor by any
 * scan since version 2): sending must wait until the scan has read the whole list. */
ipw_status store_recipients_unconfirmed(struct store *st, int64_t scan, int *any, struct err *e);

/*
 * `ipwarm release ADDRESS`: in one transaction, loads the recipient into *out (its state before,
 * owned strings: store_recipient_clear) and, when it is held or skipped, makes it pending,
 * due at now_ms, with no reason. IPW_ENOTFOUND when the address (in any case) is not queued.
 * The caller tells from out->state whether it was released.
 */
ipw_status store_recipient_release(struct store *st, const char *address, int64_t now_ms,
                                   struct store_recipient *out, struct err *e);
typedef void (*store_release_cb)(const char *address, const char *provider, void *ctx);
/* `ipwarm release --all`: every held recipient (of provider; NULL: any) becomes pending, due
 * at now_ms; cb (may be NULL) is called with each one, *count (may be NULL) says how many. */
ipw_status store_recipients_release_held(struct store *st, const char *provider, int64_t now_ms,
                                         store_release_cb cb, void *ctx, int64_t *count,
                                         struct err *e);

/* The providers (NULL for none) of the recipients not finished yet (pending, held, removed,
 * skipped), each once: to find those of a provider the plan no longer has. */
ipw_status store_recipient_providers(struct store *st, store_name_cb cb, void *ctx, struct err *e);
/* The domains of the unfinished recipients of provider (NULL: those without one), each once. */
ipw_status store_recipient_domains(struct store *st, const char *provider, store_name_cb cb,
                                   void *ctx, struct err *e);
/* Gives the unfinished recipients of provider from (NULL: none) at domain the provider to;
 * *count (may be NULL) says how many. */
ipw_status store_recipients_set_provider(struct store *st, const char *from, const char *domain,
                                         const char *to, int64_t *count, struct err *e);

/*
 * The campaign the state file belongs to: recorded (meta "campaign") by the first command that
 * opens it with a plan and can write it. Returns IPW_OK when campaign is the recorded one (or
 * none is recorded yet, or campaign is NULL); IPW_ECONFIG when the file belongs to another
 * campaign, with a sentence naming the file and both campaigns; or a status of reading it.
 */
ipw_status store_campaign_check(struct store *st, const char *campaign, struct err *e);
/* Calls cb for every attempt of provider started at or after since_ms that got a 4xx or 5xx
 * reply, oldest first (rebuilds the rule trigger counts at start). */
ipw_status store_attempts_since(struct store *st, const char *provider, int64_t since_ms,
                                store_attempt_cb cb, void *ctx, struct err *e);
/* A small key/value setting (the recipient list's read position, ...). store_meta_get: *value
 * is malloc'd; IPW_ENOTFOUND when unset. */
ipw_status store_meta_get(struct store *st, const char *key, char **value, struct err *e);
ipw_status store_meta_set(struct store *st, const char *key, const char *value, struct err *e);

/* ---- feedback read from mailboxes (late bounces, complaint reports) ---- */

/* Sets the envelope sender of attempt id (a VERP address needs the id first). */
ipw_status store_attempt_set_mail_from(struct store *st, int64_t id, const char *mail_from,
                                       struct err *e);
/* Sets *id to the attempt that sent Message-ID message_id ("<...>"): the one that got a 250,
 * else the latest (dry runs never). IPW_ENOTFOUND when none did. */
ipw_status store_attempt_by_message_id(struct store *st, const char *message_id, int64_t *id,
                                       struct err *e);

/* Where the last poll of mailbox (a name such as its URL) stopped: its UIDVALIDITY, the
 * highest UID read and when (polled_ms may be NULL). IPW_ENOTFOUND when it was never polled. */
ipw_status store_checkpoint_get(struct store *st, const char *mailbox, int64_t *uidvalidity,
                                int64_t *last_uid, int64_t *polled_ms, struct err *e);
ipw_status store_checkpoint_set(struct store *st, const char *mailbox, int64_t uidvalidity,
                                int64_t last_uid, int64_t now_ms, struct err *e);
typedef int (*store_checkpoint_cb)(const char *mailbox, int64_t uidvalidity, int64_t last_uid,
                                   int64_t polled_ms, void *ctx);
/* Calls cb for every mailbox ever polled, by name; a non-zero return stops the walk. */
ipw_status store_checkpoint_each(struct store *st, store_checkpoint_cb cb, void *ctx,
                                 struct err *e);

/* One message read from a mailbox (a row of feedback_reports). */
struct store_report {
    int64_t read_ms;
    const char *mailbox;
    int64_t uidvalidity, uid;  /* 0 = unknown */
    const char *digest;        /* what makes it the same message when read again: its Message-ID,
                                  else a SHA-256 of its bytes */
    const char *kind;          /* bounce (a failed recipient), delay, complaint or other */
    const char *format;        /* feedback_report.format, e.g. "rfc3464", "arf", "exim" */
    const char *matched_by;    /* verp, message-id or header; NULL = unmatched */
    int64_t attempt_id;        /* the attempt it answers; 0 = none */
    const char *recipient;     /* the recipient it names (the attempt's when matched) */
    const char *provider;      /* out: the attempt's provider (malloc'd, caller frees), or NULL */
    const char *status;        /* "5.1.1", or NULL */
    const char *feedback_type; /* ARF Feedback-Type, or NULL */
    const char *text;          /* the diagnostic; for an unmatched report its text */
    int late;                  /* out: the report turned a delivered attempt into bounced */
};

/*
 * Records report rep once and acts on it, in one transaction. *added is 0 when a report with
 * the same digest was recorded before (then nothing changes: reading is idempotent). When
 * rep->attempt_id names an attempt of this file (else the report is recorded unmatched):
 *  - bounce: a delivered attempt becomes bounced (its 250 kept; summary_hourly of its hour
 *    moves one from delivered to bounced and counts a late bounce; rep->late set), and its
 *    recipient is suppressed;
 *  - complaint: the recipient is suppressed and summary_hourly counts a complaint against the
 *    attempt's provider in the attempt's hour;
 *  - delay and other: recorded only.
 * On IPW_OK rep->provider is the attempt's provider (malloc'd: free it), or NULL.
 */
ipw_status store_report_add(struct store *st, struct store_report *rep, int *added, struct err *e);
/* The id of the latest report recorded (0: none yet): a running engine compares it to notice
 * that a poll, its own or another process's, may have suppressed recipients. */
ipw_status store_report_last_id(struct store *st, int64_t *id, struct err *e);
typedef int (*store_report_cb)(const struct store_report *r, void *ctx);
/* Calls cb for every report naming recipient, oldest first. */
ipw_status store_reports_for_recipient(struct store *st, const char *recipient, store_report_cb cb,
                                       void *ctx, struct err *e);

/* ---- inbox placement (schema 4) ----
 * A copy sent to a seed is a delivered attempt to the seed's address; where it landed is a row
 * of placements once a poll found it (inbox, junk) or gave up on it (missing). */
struct store_placement {
    int64_t attempt_id;
    const char *seed;       /* the attempt's recipient */
    const char *message_id; /* "<...>", or NULL */
    int64_t sent_ms;        /* the attempt's start */
    const char *provider;
    const char *ip;     /* source IP, or NULL */
    const char *result; /* "inbox", "junk", "missing", or NULL: not known yet */
    const char *folder; /* where it was found, or NULL */
    int64_t found_ms;   /* when it was found (or given up on); 0 when unknown */
};
/* Return non-zero to stop. */
typedef int (*store_placement_cb)(const struct store_placement *c, void *ctx);
/*
 * Calls cb for the delivered attempts to seed (NULL: to any address; the caller keeps those of
 * its seeds) started at or after since_ms, oldest first, with their placement; pending_only:
 * only those without one.
 */
ipw_status store_placement_copies(struct store *st, const char *seed, int pending_only,
                                  int64_t since_ms, store_placement_cb cb, void *ctx,
                                  struct err *e);
/* A seed is sent a copy every sending day: recipient address, done with its last attempt
 * before before_ms (today's local midnight), becomes pending again, due at now_ms. *requeued
 * (may be NULL) is 1 when it did. Nothing changes for any other state (suppressed stays). */
ipw_status store_recipient_requeue(struct store *st, const char *address, int64_t before_ms,
                                   int64_t now_ms, int *requeued, struct err *e);
/* Records where copy attempt_id landed (result inbox, junk or missing; folder may be NULL).
 * The first record of a copy stays: a second is ignored. */
ipw_status store_placement_set(struct store *st, int64_t attempt_id, const char *seed,
                               const char *result, const char *folder, int64_t found_ms,
                               struct err *e);

#endif
