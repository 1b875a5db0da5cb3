/*
 * placement: where the copies sent to seed mailboxes landed (inbox, junk, or missing).
 *
 * A seed is a mailbox the operator owns at a provider (plan `seeds`). A copy sent to it is a
 * delivered attempt to its address; every message ipwarm sends carries X-Ipwarm-Id with its
 * Message-ID's contents (engine.c), so placement_poll() finds each copy not placed yet by that
 * header with UID SEARCH HEADER (RFC 3501 6.4.4) in the seed's inbox folder, then in its junk
 * folder, both opened with EXAMINE: the mailbox is never changed (no flag set, nothing moved).
 * A copy found is recorded with its folder and the time; one in neither folder 24 h after it
 * was sent is missing. Provider tabs (Gmail Promotions) are labels on the inbox, so they count
 * as inbox.
 *
 * The junk folder: the seed's folders.junk, else the provider's usual name (Gmail
 * "[Gmail]/Spam", Outlook "Junk Email", Yahoo "Bulk"), else the folder marked \Junk (RFC 6154).
 */
#ifndef IPWARM_PLACEMENT_H
#define IPWARM_PLACEMENT_H

#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"

/* After this long unfound in either folder, a copy is missing. */
#define PLACEMENT_MISSING_AFTER_MS (24 * 3600 * 1000LL)

/* What one poll of one seed found. */
struct placement_seed_result {
    char name[512];               /* the seed's address */
    int64_t inbox, junk, missing; /* copies placed by this poll */
    int64_t pending;              /* copies still unknown after it */
    char error[1024];             /* why the seed could not be read, "" when it was */
};

/* The usual junk folder of a provider by its plan name (gmail, microsoft/outlook/hotmail,
 * yahoo/aol), or NULL. Pure. */
const char *placement_junk_default(const char *provider);

/*
 * Polls every seed of p at now_ms (results: p->n_seeds entries, filled in plan order). A seed
 * that cannot be read (password, login, connection) has its error set and the others are still
 * read. Returns IPW_OK when every seed was read; IPW_EUNAVAIL when one could not be (e names
 * the first); a store status (then it stops).
 */
ipw_status placement_poll(const struct plan *p, struct store *st, int64_t now_ms,
                          int64_t session_timeout_ms, struct placement_seed_result *results,
                          struct err *e);

/* Whether address is one of p's seeds (case-insensitive). */
int placement_is_seed(const struct plan *p, const char *address);

/* ---- the figures ---- */

enum placement_by { PLACEMENT_BY_DAY = 0, PLACEMENT_BY_PROVIDER, PLACEMENT_BY_IP };

/* One row of `placement`: the copies sent to seeds in a period (a local date with --by day,
 * "all" otherwise) for a provider (and source IP with --by ip). inbox + junk + missing <=
 * sent: the rest is not known yet. */
struct placement_row {
    char period[16];
    char provider[64];
    char ip[64]; /* "" unless by ip */
    int64_t sent, inbox, junk, missing;
};

struct placement_result {
    struct placement_row *rows; /* by period, then provider, then IP */
    size_t n;
};

/* Inbox rate of a row in percent: inbox over the copies placed (inbox, junk, missing); -1
 * when none is placed yet. Pure. */
double placement_inbox_rate(const struct placement_row *r);

/*
 * Counts the copies sent to p's seeds at or after since_ms (0: all), in p's time zone. Returns
 * IPW_OK (free out with placement_result_free); a store status; IPW_ENOMEM.
 */
ipw_status placement_collect(const struct plan *p, struct store *st, enum placement_by by,
                             int64_t since_ms, struct placement_result *out, struct err *e);
void placement_result_free(struct placement_result *r);

/*
 * Adds to out (seed_sent, seed_placed, seed_inbox) the copies sent to p's seeds through
 * provider on the local date (p's zone), for the inbox_rate_above gate (ramp.h).
 */
struct ramp_day_counts;
ipw_status placement_day_counts(const struct plan *p, struct store *st, const char *provider,
                                const char *date, struct ramp_day_counts *out, struct err *e);

#endif
