/*
 * returns: reading what comes back to the return path after the 250, and acting on it.
 *
 * returns_poll() reads the new messages of the plan's feedback.mailbox over IMAP (imap.h:
 * EXAMINE and BODY.PEEK, so nothing in the mailbox changes), from where the last poll stopped
 * (the folder's UIDVALIDITY and the last UID read, kept in the store). Each message is parsed
 * (feedback.h), classified (a bounce: a recipient failed; a delay notice; a complaint report;
 * other), matched to the attempt it answers and recorded with store_report_add(), which acts on
 * it: a late bounce turns the delivered attempt into bounced and suppresses its recipient, a
 * complaint suppresses its recipient and counts against its provider, a delay is recorded only.
 *
 * Matching, first that works: the VERP token of the address the report was delivered to
 * (verp.h; refused unless its MAC checks with the state's secret, so it cannot be forged),
 * the original message's Message-ID, its X-Ipwarm-Id header. A report that matches nothing is
 * kept, unmatched, with its text.
 *
 * Reading is idempotent: a message is recorded once (by its own Message-ID, else a SHA-256 of
 * its bytes), so a UIDVALIDITY change (the folder recreated: read again from the start) or a
 * poll that stopped half-way never counts a message twice.
 */
#ifndef IPWARM_RETURNS_H
#define IPWARM_RETURNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"

/* What one poll of one mailbox found (the counts of `feedback poll --json`). */
struct returns_mailbox {
    char name[512]; /* the mailbox's URL as the plan gives it */
    int64_t new_;   /* messages read for the first time */
    int64_t bounces, delays, complaints, placements, unmatched, other;
    int64_t late_bounces; /* of bounces: delivered attempts turned into bounced */
    int64_t suppressed;   /* recipients suppressed */
    char error[1024];     /* why the mailbox could not be read, "" when it was */
    char acted[512];      /* providers feedback.complaints acted on in this poll ("gmail,
                             yahoo"), "" when none */
};

/* The window over which feedback.complaints judges a provider's complaint rate: complaints
 * read in the last 7 days over the messages delivered in them. A day is too short early in a
 * warm-up (min_delivered is never reached); a week still forgets an old bad day. */
#define RETURNS_COMPLAINT_WINDOW_MS (7 * 24 * 3600 * 1000LL)
/* The rule name of the action feedback.complaints records. */
#define RETURNS_RULE_COMPLAINTS "complaint-rate"

/*
 * Whether complaints over delivered cross feedback.complaints (f): rate_above, once delivered
 * reaches min_delivered. Sets *rate_pct (may be NULL) to the rate in percent. Pure.
 */
bool returns_complaints_cross(const struct plan_feedback *f, int64_t delivered, int64_t complaints,
                              double *rate_pct);

/*
 * Applies feedback.complaints at now_ms: every provider whose complaint rate over the last
 * RETURNS_COMPLAINT_WINDOW_MS crosses the line, and that has no such action active, gets one
 * (suspend, or throttle to complaints.rate) for complaints.for, recorded as a rule action
 * named RETURNS_RULE_COMPLAINTS with the rate in its reason; `run` picks it up like any other.
 * Their names are appended to acted (size bytes, comma-separated; may be NULL).
 */
ipw_status returns_complaints_act(const struct plan *p, struct store *st, int64_t now_ms,
                                  char *acted, size_t size, struct err *e);

/* When p's feedback mailbox was last polled (*ms 0: never). */
ipw_status returns_last_poll(const struct plan *p, struct store *st, int64_t *ms, struct err *e);

/* Per-poll settings. */
struct returns_opts {
    int64_t now_ms;             /* the caller's clock: read_ms of the reports */
    int64_t session_timeout_ms; /* the whole IMAP session; 0: no bound beyond the steps' */
};

struct imap;
/*
 * Reads mb's password or OAuth 2.0 access token (from its env variable or file, afresh at each
 * call; key names the plan key for messages, "feedback.mailbox" or "seeds[2]") and logs in
 * (imap_open: LOGIN or SASL with a password, XOAUTH2 with a token) with the mailbox's TLS rules
 * and CA. The secret is wiped once the login is done. IPW_OK with *out set (imap_close);
 * IPW_ECONFIG (password or token); IPW_EUNAVAIL (connection, TLS, login); IPW_EUSAGE;
 * IPW_ENOMEM.
 */
ipw_status returns_mailbox_open(const struct plan_mailbox *mb, const char *key,
                                int64_t session_timeout_ms, struct imap **out, struct err *e);

/*
 * Polls p's feedback mailbox into *out (zeroed first). Returns IPW_OK when it was read;
 * IPW_EUNAVAIL when it could not be reached, refused the login or failed mid-way (out->error
 * says so too; what was read before is recorded); IPW_ECONFIG when the plan has no feedback
 * section or the password cannot be read; a store status.
 */
ipw_status returns_poll(const struct plan *p, struct store *st, const struct returns_opts *o,
                        struct returns_mailbox *out, struct err *e);

#endif
