/*
 * bounce: the bounces that are not RFC 3464 reports, read from their text.
 *
 * Many mail systems still send, or wrap around a report, a plain-text notice: Exim's "This
 * message was created automatically by mail delivery software", qmail's "Hi. This is the
 * qmail-send program" (and Yahoo's variant, "Sorry, we were unable to deliver your message"),
 * Postfix and sendmail without a report part, Microsoft's "Delivery has failed to these
 * recipients or groups" with "Remote Server returned '550 5.1.1 ...'", Gmail's "Address not
 * found" and "Delivery to the following recipient failed permanently". bounce_scan() knows
 * where each puts the failed address and the remote server's reply, and falls back to pairing
 * a reply code with the address next to it. It only looks at text before the copy of the
 * original message that such notices append, so the original's own addresses are never taken
 * for failed recipients.
 *
 * A text is a bounce only when something says so (bounce_is_notice): a null or MAILER-DAEMON /
 * postmaster sender, a bounce subject, or one of the notices' own sentences. A message from a
 * person that quotes "550 5.1.1" is not one.
 */
#ifndef IPWARM_BOUNCE_H
#define IPWARM_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/err.h"
#include "ipwarm/feedback.h"

struct bounce {
    const char *format; /* static: "exim", "qmail", "yahoo", "postfix", "sendmail",
                           "microsoft", "gmail" or "text" */
    struct feedback_recipient *recipients;
    size_t n;
};

/* True when the headers or the text mark the message as a delivery failure or delay notice.
 * from and subject may be NULL; null_sender: the Return-Path is <>. */
bool bounce_is_notice(const char *from, const char *subject, bool null_sender, const char *text,
                      size_t len);

/* Reads the failed or delayed recipients from text (UTF-8, len bytes) into out (bounce_free
 * it; at most FEEDBACK_MAX_RECIPIENTS). Returns IPW_OK (out->n may be 0) or IPW_ENOMEM. */
ipw_status bounce_scan(const char *text, size_t len, const char *subject, struct bounce *out);
void bounce_free(struct bounce *b);

/* The offset just past the end of the notice's own text: where a marker line introducing the
 * copy of the original message starts ("--- Below this line is a copy of the message."), or
 * len when there is none. *copy_at is where that copy begins (after the marker line), or len. */
size_t bounce_notice_end(const char *text, size_t len, size_t *copy_at);

#endif
