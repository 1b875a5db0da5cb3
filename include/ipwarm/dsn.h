/*
 * dsn: the machine-readable part of a delivery status notification (RFC 3464: the body of a
 * message/delivery-status part, RFC 6533: message/global-delivery-status), and status codes
 * (RFC 3463) read from a remote server's reply text.
 *
 * dsn_parse() reads the per-message fields (Reporting-MTA, Original-Envelope-Id, Arrival-Date)
 * and one recipient per following group: Final-Recipient (else Original-Recipient) with its
 * address type ("rfc822;") removed, Action, Status, Diagnostic-Code (type removed), Remote-MTA.
 * Reports in the wild bend the syntax; the reader is lenient where the meaning is clear:
 * a missing or malformed Status is taken from the Diagnostic-Code ("550 5.1.1 ..." gives
 * 5.1.1, a bare "550" gives 5.0.0); a missing Action from the status class (5 failed,
 * 4 delayed, 2 delivered), a missing status from the Action (failed 5.0.0, delayed 4.0.0,
 * else 2.0.0); a group without a recipient address, or with neither, is skipped.
 */
#ifndef IPWARM_DSN_H
#define IPWARM_DSN_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/err.h"
#include "ipwarm/feedback.h"

struct dsn {
    char *reporting_mta; /* without "dns;" */
    char *envelope_id;   /* Original-Envelope-Id */
    struct feedback_recipient *recipients;
    size_t n;
};

/* Parses a message/delivery-status body into out (dsn_free it; at most
 * FEEDBACK_MAX_RECIPIENTS recipients). Returns IPW_OK (out->n may be 0) or IPW_ENOMEM. */
ipw_status dsn_parse(const char *text, size_t len, struct dsn *out);
void dsn_free(struct dsn *d);

/* Frees the strings of a recipient. */
void dsn_recipient_clear(struct feedback_recipient *r);

/* True when s[0..len) is an RFC 3463 status code: class 2, 4 or 5, "." 1-3 digits "." 1-3
 * digits. */
bool dsn_status_valid(const char *s, size_t len);

/*
 * The status a reply text states, into out (FEEDBACK_STATUS_MAX bytes): the enhanced code
 * after a reply code ("550 5.1.1", "550-5.1.1", "550: 5.1.1", "#550 5.1.1"), else a lone
 * enhanced code of class 4 or 5 that is not part of a longer dotted number (an IP address),
 * else "C.0.0" for the first reply code C00-C99 of class 4 or 5. Returns false (out = "") when
 * the text states none.
 */
bool dsn_status_from_text(const char *text, size_t len, char out[FEEDBACK_STATUS_MAX]);

/* The action of a status class: '5' failed, '4' delayed, '2' delivered, else NONE. */
enum feedback_action dsn_action_of_status(const char *status);

#endif
