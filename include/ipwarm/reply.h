/*
 * reply: SMTP server replies, parsed from the raw lines a server sent and classified into an
 * outcome and a scope (whose problem the reply describes).
 *
 * Parsing follows RFC 5321 section 4.2 (reply lines "CODE-text" continued, "CODE text" or
 * "CODE" last), RFC 2034 (an enhanced status code opening the text of each line when the
 * server announces ENHANCEDSTATUSCODES) and RFC 3463 (the enhanced code's syntax and meaning).
 * The input is whatever the transport captured, typically the lines libcurl's debug callback
 * hands over (CURLINFO_HEADER_IN): possibly several lines, possibly garbage, over-long lines,
 * a missing CRLF, or more than one reply. The parser never fails and never reads or writes
 * outside the buffers it is given.
 *
 * Classification decides what the engine does with an attempt: delivered, deferred (retry),
 * bounced (no retry; the recipient is suppressed for good only when the reply is about the
 * recipient's own mailbox), or failed (no reply at all); and whether the reply is the provider
 * pushing back, which is what cuts the provider's rate (see backoff.h). A full mailbox is the
 * recipient's problem, not a rate limit.
 */
#ifndef IPWARM_REPLY_H
#define IPWARM_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* Room for the joined text, NUL included. Longer text ends in REPLY_TRUNCATED_MARK. */
#define REPLY_TEXT_MAX       4096
#define REPLY_TRUNCATED_MARK "..."
/* Room for the longest valid enhanced code, "5.999.999", NUL included. */
#define REPLY_ENHANCED_MAX 12

/*
 * One parsed reply.
 *
 * code:     the reply code 200..599 of the reply's lines, or 0 when no line has one.
 * enhanced: the RFC 3463 code that opens the first line's text ("4.7.28"), or "" when there
 *           is none, it is malformed, or its class differs from the reply code's first digit.
 * text:     the lines' text joined by single spaces, without the 3-digit reply code. The first
 *           line keeps its enhanced code (so a rule written as '4\.7\.28.*unusual rate' matches
 *           the way it reads in the server's reply); later lines drop an enhanced code equal to
 *           the first line's, since servers repeat it on every line, and keep a different one.
 *           A tab becomes a space, other control characters and bytes that are not valid UTF-8
 *           become '?', spaces at either end of a line are trimmed. Never longer than
 *           REPLY_TEXT_MAX - 1 bytes; a cut text ends in "..." (and truncated is set).
 * lines:    how many lines make up the reply; dropped: lines of the input that were not part
 *           of it (garbage, an earlier reply). complete: the reply's last line was a final line
 *           ("CODE text" or "CODE"), not a continuation left hanging.
 */
struct reply {
    int code;
    char enhanced[REPLY_ENHANCED_MAX];
    char text[REPLY_TEXT_MAX];
    size_t lines;
    size_t dropped;
    bool complete;
    bool truncated;
};

/*
 * Parses raw (len bytes; need not be NUL-terminated, may contain NUL bytes) into *out.
 *
 * Lines end at LF; a CR before the LF is dropped; the last line needs no line end. A line
 * belongs to a reply when it opens with three digits, the first 2..5, followed by '-'
 * (continuation), ' ' or the end of the line (final). RFC 5321 wants a second digit of 0..5;
 * codes such as 571 exist in the wild and are accepted. Lines that do not open with a code are
 * dropped. When the input holds more than one reply the last one counts (what the client acted
 * on): the last line with a code, and the continuation lines with the same code before it, back
 * to the previous final line or a line with another code. Mixed codes therefore resolve to the
 * code of the last line, as libcurl does.
 *
 * Returns out->code (0 when the input holds no reply line; text is then "").
 * out must not be NULL; raw may be NULL when len is 0.
 */
int reply_parse(const char *raw, size_t len, struct reply *out);

/*
 * True if s[0..len) is an RFC 3463 status code: class "2", "4" or "5", then "." subject "."
 * detail, each 1 to 3 digits without leading zeros ("4.7.28", "5.0.0"; not "4.07.1", "6.1.1",
 * "4.1234.1").
 */
bool reply_enhanced_valid(const char *s, size_t len);

/*
 * Writes the whole reply the way it reads on the wire, "CODE TEXT" ("421 4.7.28 Our system
 * ..."), or TEXT alone when code is 0: the form the plan's rules are matched against and pause
 * reasons quote. Truncates to fit n (NUL-terminated whenever n > 0). Returns buf.
 */
char *reply_format(const struct reply *r, char *buf, size_t n);

/* Where in the SMTP dialogue a reply (or the lack of one) came. Names as the store keeps them. */
enum reply_phase {
    REPLY_PHASE_CONNECT = 0, /* the greeting, or no connection */
    REPLY_PHASE_EHLO,
    REPLY_PHASE_STARTTLS,
    REPLY_PHASE_AUTH,
    REPLY_PHASE_MAIL,
    REPLY_PHASE_RCPT,
    REPLY_PHASE_DATA, /* the reply after the end of the message (the 354 is only a step) */
    REPLY_PHASE_QUIT,
};

enum reply_outcome {
    REPLY_PENDING = 0, /* a positive step (250 to EHLO, MAIL, RCPT; 354; 334): go on */
    REPLY_DELIVERED,   /* 2xx after DATA */
    REPLY_DEFERRED,    /* 4xx: retry later */
    REPLY_BOUNCED,     /* 5xx: no retry */
    REPLY_FAILED,      /* no SMTP reply: refused, timeout, TLS failure; retry later */
    REPLY_EXPIRED,     /* retries gave up (decided by backoff_retry_next, not by a reply) */
};

enum reply_scope {
    REPLY_SCOPE_NONE = 0,  /* pending and delivered replies */
    REPLY_SCOPE_RECIPIENT, /* the recipient's own mailbox: unknown, full, disabled, greylisted */
    REPLY_SCOPE_PROVIDER,  /* the receiving system or its view of us: throttling, reputation,
                              block lists, authentication policy, the server's own trouble */
    REPLY_SCOPE_MESSAGE,   /* this message or its sender address: size, content, syntax */
};

struct reply_class {
    enum reply_outcome outcome;
    enum reply_scope scope;
    bool throttle; /* cut the provider's rate and pause it: backoff_on_deferral() */
    bool suppress; /* never send to this recipient again */
    bool retry;    /* schedule another attempt: backoff_retry_next() */
};

/*
 * Classifies a reply received in phase. code is the reply code (0 = no reply: the connection
 * failed, timed out or TLS failed); enhanced and text may be NULL or "".
 *
 * The decision, first rule that applies:
 * - code 0 (or outside 200..599): failed, provider scope, throttle, retry. A failed
 *   connection counts as a deferral for the provider (plan.md, "Recipients").
 * - 2xx after DATA: delivered; other 2xx and 3xx: pending. Any reply to QUIT: pending (the
 *   message's fate was decided by the DATA reply).
 * - 4xx is deferred (retry), 5xx bounced (no retry). The scope comes from, in order:
 *   421 (the server closes the channel): provider;
 *   a 4xx whose text speaks of greylisting: recipient (greylisting is per sender, recipient
 *   and IP, often sent as 4.7.1; retrying the recipient cures it, slowing the provider not);
 *   a valid enhanced code with a subject other than 0 (RFC 3463 section 3): x.1.7 and x.1.8
 *   (our sender address) message, other x.1.x recipient; x.2.3 message, other x.2.x
 *   recipient; x.3.4 message, other x.3.x provider; x.4.x provider; x.5.3 provider, other
 *   x.5.x message; x.6.x message; x.7.x provider, unless the text speaks of content (virus,
 *   spam content, attachment) when it is message;
 *   the text (no enhanced code, or x.0.x): greylisting and the recipient's mailbox (full, over
 *   quota, user unknown, does not exist) recipient; throttling, reputation and block lists
 *   (rate limit, try again later, temporarily deferred, unusual rate, server busy, too many,
 *   reputation, blocked, block list, spamhaus) provider; size and content message;
 *   else the code and phase (RFC 5321 4.2.2/4.2.3): in RCPT, 450, 550, 551, 552 and 553
 *   recipient, other codes provider; in DATA, 4xx provider and 5xx message; in MAIL, 552
 *   message, others provider; before MAIL, provider.
 *   A recipient scope cannot arise before RCPT: such a code there is read as provider.
 * - throttle: a deferral of provider scope. suppress: a bounce of recipient scope (in RCPT, or
 *   in DATA since ipwarm sends one recipient per transaction).
 */
struct reply_class reply_classify(enum reply_phase phase, int code, const char *enhanced,
                                  const char *text);

/* "connect", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "quit"; "?" if unknown. */
const char *reply_phase_name(enum reply_phase p);
/* "pending", "delivered", "deferred", "bounced", "failed", "expired"; "?" if unknown. */
const char *reply_outcome_name(enum reply_outcome o);
/* "none", "recipient", "provider", "message"; "?" if unknown. */
const char *reply_scope_name(enum reply_scope s);

#endif
