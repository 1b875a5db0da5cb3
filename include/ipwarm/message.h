/*
 * message: one RFC 5322 message for one recipient, MIME-encoded, ready for SMTP DATA.
 *
 * Follows RFC 5322 (header fields, folding at 78 columns, 998-octet lines), RFC 2045 and
 * RFC 2046 (MIME-Version, Content-Type, quoted-printable 6.7, base64 6.8,
 * multipart/alternative), RFC 2047 (encoded-words for a UTF-8 Subject and display name) and
 * RFC 5321 4.5.2/4.5.3.1.6 (CRLF line ends, no line over 998 octets). Every line ends in CRLF.
 * The encodings and the folding themselves are mime.h's; this module composes.
 *
 * The bytes built here are the message as it is signed and as the recipient reads it. They
 * are NOT dot-stuffed: RFC 5321 4.5.2 transparency is a property of the SMTP session, and
 * libcurl's SMTP upload applies it on the wire (lib/smtp.c turns CRLF "." into CRLF ".."
 * and sends the final CRLF "." CRLF itself; curl tests 901 and 1520). A transport other
 * than libcurl must stuff itself; none may stuff twice. Keeping the stuffing out of these
 * bytes is also what DKIM needs: RFC 6376 3.7 hashes the body as sent, before transparency.
 *
 * Two steps: message_tmpl_load() reads and checks the plan's templates once per run;
 * message_compose() expands them for one recipient and calls message_build(), which is pure
 * (no clock, no randomness, no files): the date, the Message-ID's unique part and the seed of
 * the multipart boundary are arguments, so tests compare exact bytes.
 *
 * For the DKIM signer (a later issue): struct message lists every top-level header field
 * with its exact bytes, and the body starts at body_off; the signer walks fields[], hashes
 * data + body_off, and adds its DKIM-Signature field with message_prepend_field(). More
 * header fields (List-Unsubscribe, RFC 8058) go in through message_build's extra headers.
 */
#ifndef IPWARM_MESSAGE_H
#define IPWARM_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/mime.h"
#include "ipwarm/plan.h"
#include "ipwarm/template.h"

/* The line limits of mime.h, under the names the DKIM signer and the tests use. */
#define MESSAGE_FOLD_COLUMN      MIME_FOLD_COLUMN
#define MESSAGE_LINE_MAX         MIME_LINE_MAX
#define MESSAGE_ENCODED_LINE_MAX MIME_ENCODED_LINE_MAX
#define MESSAGE_EWORD_MAX        MIME_EWORD_MAX
/* Largest body file message_tmpl_load reads; more is surely a mistake for a warm-up. */
#define MESSAGE_BODY_FILE_MAX (10u * 1024 * 1024)
/* Room for message_format_date's "Tue, 01 Dec 2026 09:00:00 +0900". */
#define MESSAGE_DATE_MAX 40

/* One top-level header field: data[off .. off+len) is "Name: value" with its folds and its
 * final CRLF; the name is data[off .. off+name_len). */
struct message_field {
    size_t off;
    size_t len;
    size_t name_len;
};

struct message {
    char *data; /* the whole message, CRLF lines, not NUL-terminated inside (NUL after len) */
    size_t len;
    size_t body_off; /* the body starts here, after the empty line that ends the header */
    struct message_field *fields; /* in order of appearance */
    size_t n_fields;
    char boundary[48]; /* the multipart boundary, "" for a single text/plain part */
};

/* An extra header field for message_build: a name (RFC 5322 ftext) and an ASCII value
 * (folded at its spaces when long; CR, LF and other control characters are refused). */
struct message_header {
    const char *name;
    const char *value;
};

/* Everything one message is made of, already expanded. */
struct message_parts {
    const char *from_name; /* display name, UTF-8, or NULL */
    const char *from_addr; /* addr-spec */
    const char *to_addr;   /* addr-spec */
    const char *subject;   /* UTF-8 without CR or LF */
    const char *date;      /* RFC 5322 date-time, e.g. from message_format_date() */
    const char *id_left;   /* unique left part of the Message-ID: RFC 5322 dot-atom-text */
    const char *id_domain; /* its right part; NULL: the domain of from_addr */
    const char *text;      /* text/plain body, UTF-8, any line ends (made CRLF) */
    size_t text_len;
    const char *html; /* text/html body, or NULL for a single text/plain part */
    size_t html_len;
    uint64_t boundary_seed;             /* random bits for the multipart boundary */
    const struct message_header *extra; /* added after MIME-Version, in order */
    size_t n_extra;
    struct mime_memo *text_memo, *html_memo; /* or NULL: see mime_body_make_memo() */
};

/*
 * Builds the message of p into *out (free with message_free). Header fields, in order: Date,
 * From, To, Subject, Message-ID, MIME-Version, the extra fields, Content-Type,
 * Content-Transfer-Encoding. A body is sent 7bit when it is ASCII with lines of at most 78
 * octets, else quoted-printable, or base64 when more than a third of its bytes would need
 * quoted-printable escapes (mostly non-Latin text, where base64 is the smaller).
 * Returns IPW_OK; IPW_EDATA for bad content (invalid UTF-8 or a NUL byte in a body, with the
 * byte offset; CR or LF in the subject; an address that is not an addr-spec; a header line
 * that cannot be kept within 998 octets); IPW_EUSAGE for a missing or malformed argument
 * (Message-ID part, date, extra header); IPW_ENOMEM. On failure *out is empty.
 */
ipw_status message_build(const struct message_parts *p, struct message *out, struct err *e);

/*
 * Adds a ready-made header field at the top of m (for DKIM-Signature, RFC 6376 5.6), exactly
 * as given: field is "Name: value" with the signer's own folding (CRLF followed by WSP);
 * a final CRLF is added when missing. Offsets in m->fields move accordingly and the new
 * field becomes fields[0]. Returns IPW_OK; IPW_EUSAGE when field is not one well-formed field
 * or a line exceeds 998 octets; IPW_ENOMEM.
 */
ipw_status message_prepend_field(struct message *m, const char *field, size_t len, struct err *e);

void message_free(struct message *m);

/* Index in m->fields of the first field called name (ASCII case-insensitive), or -1. */
long message_field_find(const struct message *m, const char *name);

/*
 * Writes utc_ms as an RFC 5322 3.3 date-time in the zone offset_sec east of UTC, e.g.
 * "Tue, 01 Dec 2026 09:00:00 +0900" (English names whatever the locale; seconds, no
 * milliseconds). offset_sec comes from clock_utc_offset(utc_ms, plan->timezone). Returns buf;
 * an empty string when n < MESSAGE_DATE_MAX, the offset is not within +-24 h, or the year is
 * not within 1900..9999.
 */
char *message_format_date(int64_t utc_ms, int offset_sec, char *buf, size_t n);

/* The plan's templates, read and checked; built once per run. */
struct message_tmpl {
    char *from_name; /* copies of the plan's sender */
    char *from_addr;
    char *subject;
    char *subject_where; /* "PLAN: message.subject" */
    char *text;          /* body template, BOM removed */
    char *text_where;    /* its file, or "PLAN: message.text" */
    char *html;          /* or NULL */
    char *html_where;
    char *list_unsubscribe;        /* https URI template ({{token}} etc.), or NULL */
    char *list_unsubscribe_mailto; /* addr-spec for a mailto: unsubscribe, or NULL */
};

/*
 * Reads p's message: subject, text (message.text_file or message.text), html_file, and
 * list_unsubscribe, and checks each template's placeholders against the recipient list's
 * columns[0..n) (recipients_columns()). Body files must be UTF-8 (a BOM is dropped) without
 * NUL bytes. Returns IPW_OK with *out (free with message_tmpl_free); IPW_ENOINPUT when a file
 * cannot be read; IPW_EDATA for bad content, naming FILE:LINE and the byte offset
 * ("message.txt:3: invalid UTF-8 at byte offset 57") or the placeholder (template_check);
 * IPW_EUSAGE when the plan has no subject, no text or no sender; IPW_ENOMEM.
 */
ipw_status message_tmpl_load(const struct plan *p, const char *const *columns, size_t n,
                             struct message_tmpl **out, struct err *e);
void message_tmpl_free(struct message_tmpl *t);

/* Per-message arguments of message_compose that are not template values. */
struct message_args {
    const char *id_left;    /* unique part of the Message-ID, e.g. "mx1-new-ip.42.9f3a07c1" */
    uint64_t boundary_seed; /* random bits */
    const struct message_header *extra;
    size_t n_extra;
    struct message_memo *memo; /* or NULL: the bodies last encoded, for the next message */
};

/* The bodies a run encoded last (mime_body_make_memo), kept by the caller of
 * message_compose() from one message to the next. Zero it before use. */
struct message_memo {
    struct mime_memo text, html;
};
void message_memo_free(struct message_memo *m);

/*
 * Expands t for the recipient of v (v->recipient is the To address, v->date the Date header)
 * and builds the message into *out. The subject is expanded with TEMPLATE_HEADER, the HTML
 * body with TEMPLATE_HTML.
 *
 * RFC 8058 one-click unsubscribe: when t->list_unsubscribe is set, it is expanded with
 * TEMPLATE_URL | TEMPLATE_HEADER (v->token is the recipient's token, token.h) and the message
 * gets, before a->extra,
 *     List-Unsubscribe: <https://...>, <mailto:ADDR?subject=unsubscribe%20TOKEN>
 *     List-Unsubscribe-Post: List-Unsubscribe=One-Click
 * (the mailto only with t->list_unsubscribe_mailto; its subject only when v->token is set).
 * A mailto without an https URI gives List-Unsubscribe alone: RFC 8058 3.1 defines the Post
 * field only for an HTTPS URI. The DKIM signer must sign both fields (RFC 8058 4); dkim_sign
 * does by default. Returns what template_expand() and message_build() return.
 */
ipw_status message_compose(const struct message_tmpl *t, const struct template_vars *v,
                           const struct message_args *a, struct message *out, struct err *e);

/*
 * Expands a Feedback-ID template (feedback.feedback_id: "{{campaign}}:{{ip}}:{{provider}}:x",
 * Gmail's feedback loop aggregates complaints by its colon-separated fields) into out (size
 * bytes). A placeholder's value keeps letters, digits, '.', '-' and '_'; any other byte
 * becomes '-', so a value can never add a field (an IPv6 address's colons) or break the
 * header. Returns IPW_OK; IPW_EUSAGE for an unknown or unterminated placeholder; IPW_ENOMEM
 * when out is too small.
 */
ipw_status message_feedback_id(const char *tmpl, const char *campaign, const char *ip,
                               const char *provider, char *out, size_t size, struct err *e);

/* Makes a Message-ID left part "CAMPAIGN.SEQ.RANDOM" into buf (campaign characters outside
 * RFC 5322 atext become '-'; RANDOM is rnd in hex). Returns buf, "" if n is too small. */
char *message_id_left(const char *campaign, int64_t seq, uint64_t rnd, char *buf, size_t n);

#endif
