/*
 * feedback: what a message in the bounce mailbox says about mail ipwarm sent.
 *
 * feedback_parse() reads one RFC 5322 message (the raw bytes, as fetched over IMAP or read from
 * a file) and classifies it:
 *  - dsn: a bounce or delay notice from which at least one recipient and a status can be read:
 *    an RFC 3464 delivery status notification inside an RFC 6522 multipart/report (the
 *    per-recipient Action, Status, Diagnostic-Code, Final-/Original-Recipient, Remote-MTA), or
 *    the common non-standard bounces (Exim, qmail, Postfix/sendmail without a report part,
 *    Microsoft and Yahoo text bounces, Gmail's "Address not found"), see bounce.h;
 *  - arf: a complaint report in the Abuse Reporting Format (RFC 5965: Feedback-Type, the
 *    original message or its headers), as Yahoo's CFL and Microsoft's JMRP send them;
 *  - other: anything else, auto-replies (RFC 3834) and out-of-office notes included, and
 *    input that is not a message at all.
 * Whatever the kind, it also picks out what matches a report to the attempt it answers: the
 * original message's Message-ID and X-Ipwarm-Id header (from the returned message or headers,
 * or from a copy quoted in the text), a VERP token (verp.h) from the addresses the report was
 * delivered to (Delivered-To, X-Original-To, To, the original's Return-Path), and the DSN's
 * Original-Envelope-Id.
 *
 * MIME (RFC 2045-2049: multipart structure, transfer encodings, charsets) is GMime's job; the
 * field blocks of the report parts (fields.h), their meaning (dsn.h, arf.h) and the text
 * heuristics (bounce.h) are ipwarm's. The parser never fails on content: every input gives a
 * report (kind other when nothing can be read), within the limits below.
 */
#ifndef IPWARM_FEEDBACK_H
#define IPWARM_FEEDBACK_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/err.h"

/* Limits: input past FEEDBACK_MAX_BYTES is not read (report.truncated; a report's machine
 * readable part comes first), and so on. */
#define FEEDBACK_MAX_BYTES      (4u * 1024 * 1024)
#define FEEDBACK_MAX_RECIPIENTS 100
#define FEEDBACK_MAX_PARTS      256          /* MIME parts looked at */
#define FEEDBACK_MAX_DEPTH      8            /* multipart and message nesting looked into */
#define FEEDBACK_MAX_TEXT       998          /* bytes of a diagnostic or header value kept */
#define FEEDBACK_MAX_HEADERS    (64u * 1024) /* bytes of the original's headers kept */
/* "5.1.1", up to "5.999.999", NUL included. */
#define FEEDBACK_STATUS_MAX 12

/* The header ipwarm adds to every message it sends, carrying the attempt's id. */
#define FEEDBACK_ID_HEADER "X-Ipwarm-Id"

enum feedback_kind { FEEDBACK_OTHER = 0, FEEDBACK_DSN, FEEDBACK_ARF };

/* RFC 3464 2.3.3 Action; NONE when the report does not say (ARF). */
enum feedback_action {
    FEEDBACK_ACTION_NONE = 0,
    FEEDBACK_ACTION_FAILED,
    FEEDBACK_ACTION_DELAYED,
    FEEDBACK_ACTION_DELIVERED,
    FEEDBACK_ACTION_RELAYED,
    FEEDBACK_ACTION_EXPANDED,
};

struct feedback_recipient {
    char *address;  /* the recipient (Final-Recipient's address, else Original-Recipient's; for
                       ARF Original-Rcpt-To), as written, without <> */
    char *original; /* Original-Recipient's address when given, else NULL */
    enum feedback_action action;
    char status[FEEDBACK_STATUS_MAX]; /* "5.1.1"; "" when none can be read (ARF) */
    char *diagnostic; /* the remote server's reply (Diagnostic-Code without "smtp;"), or NULL */
    char *remote_mta; /* Remote-MTA's host, or NULL */
};

struct feedback_report {
    enum feedback_kind kind;
    const char *format; /* static: "rfc3464", "arf", "exim", "qmail", "postfix", "sendmail",
                           "microsoft", "yahoo", "gmail", "text" (another bounce), "auto-reply",
                           "message" (other), "none" (not a message) */
    struct feedback_recipient *recipients;
    size_t n_recipients;
    char *feedback_type;       /* ARF Feedback-Type, lower case (abuse, fraud, virus, other,
                                  not-spam, ...), else NULL */
    char *original_message_id; /* "<...>" of the message the report is about, or NULL */
    char *ipwarm_id;           /* its X-Ipwarm-Id, or NULL */
    char *verp_token;          /* a VERP-shaped token (not yet authenticated), or NULL */
    char *envelope_id;         /* the DSN's Original-Envelope-Id, or NULL */
    char *reporting_mta;       /* Reporting-MTA (DSN) or Reporting-MTA / User-Agent (ARF) */
    char *original_mail_from;  /* ARF Original-Mail-From, else the original's Return-Path */
    char *source_ip;           /* ARF Source-IP, or NULL */
    char *original_headers;    /* the returned original's header block, or NULL */
    char *subject;             /* the report's own Subject (decoded), or NULL */
    char *from;                /* the report's own From, or NULL */
    char *message_id;          /* the report's own Message-ID, or NULL */
    char fingerprint[65];      /* SHA-256 of the bytes read, in hex: the same message read
                                  twice (a UIDVALIDITY change) has the same fingerprint */
    bool auto_reply;           /* RFC 3834 Auto-Submitted: auto-replied, X-Autoreply, an
                                  out-of-office subject (only for kind other) */
    bool truncated;            /* the input was longer than FEEDBACK_MAX_BYTES */
};

/*
 * Reads len bytes of data into a new report (*out, free with feedback_report_free). Never
 * fails on content. Returns IPW_OK; IPW_ENOMEM (then *out is NULL).
 */
ipw_status feedback_parse(const char *data, size_t len, struct feedback_report **out,
                          struct err *e);

void feedback_report_free(struct feedback_report *r);

/* "dsn", "arf", "other". */
const char *feedback_kind_name(enum feedback_kind k);
/* "failed", "delayed", "delivered", "relayed", "expanded", or NULL for NONE. */
const char *feedback_action_name(enum feedback_action a);

#endif
