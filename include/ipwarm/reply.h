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
 * The judgement (reply_judge) decides whose fault a refusal is, and from that what the engine
 * does with the recipient and the provider: delivered; deferred (retry); bounced (no retry; the
 * recipient is suppressed for good only when the reply proves its mailbox bad); blocked (the
 * receiver refuses us: suspend the provider, keep the recipient pending); or failed (no reply
 * at all, or our own set-up is wrong). A refusal that is not about the recipient never burns
 * the recipient: a block list at MAIL does not suppress a whole provider's list, and a wrong
 * relay password stops the run instead of bouncing every address. A full mailbox is the
 * recipient's problem, not a rate limit. The codes it knows beyond RFC 3463 are RFC 4954
 * (AUTH), RFC 7372 and RFC 7505 (authentication and null MX, x.7.20-x.7.27), and what the large
 * providers document (Gmail's x.7.26-x.7.40, Microsoft's 4.7.5xx-8xx throttling and 5.7.5xx,
 * 5.7.606-649 and 5.7.7xx refusals).
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
    REPLY_FAILED,      /* no SMTP reply: refused, timeout, TLS failure; retry later. Also our
                          own set-up refused (stop): the recipient stays pending */
    REPLY_EXPIRED,     /* retries gave up (decided by backoff_retry_next, not by a reply) */
    REPLY_BLOCKED,     /* refused because of the sender; the recipient stays pending */
};

enum reply_scope {
    REPLY_SCOPE_NONE = 0,  /* pending and delivered replies */
    REPLY_SCOPE_RECIPIENT, /* the recipient's own mailbox: unknown, full, disabled, greylisted */
    REPLY_SCOPE_PROVIDER,  /* the receiving system or its view of us: throttling, reputation,
                              block lists, authentication policy, the server's own trouble */
    REPLY_SCOPE_MESSAGE,   /* this message: size, content, syntax; a sender address refused
                              for now (4.1.8) */
};

/* Whose fault a refusal is: decides what the engine does with the recipient and the provider. */
enum reply_fault {
    REPLY_FAULT_NONE = 0,  /* delivered, or a positive step */
    REPLY_FAULT_RECIPIENT, /* the recipient's mailbox: unknown, disabled, full, greylisted */
    REPLY_FAULT_MESSAGE,   /* this message: size, content, the syntax of what we sent */
    REPLY_FAULT_PROVIDER,  /* the receiving system is busy or rate-limits us: slow down, retry */
    REPLY_FAULT_SENDER,    /* the receiver refuses our IP or domain: block list, reputation
                              block, authentication policy (SPF/DKIM/DMARC, PTR) */
    REPLY_FAULT_SETUP,     /* our own set-up: AUTH refused, TLS required and not possible,
                              relay access denied through our relay, a bad return path */
    REPLY_FAULT_NETWORK,   /* no SMTP reply at all: refused, reset, timed out, TLS failed */
};

/*
 * What to do after a reply. outcome, scope, throttle, suppress and retry are what the engine
 * acted on before the fault existed; fault, suspend, stop and requeue say more. In
 * reply_judge's answer, by fault:
 *   NONE       pending or delivered, nothing set.
 *   NETWORK    failed, provider scope, throttle, retry (a failed connection counts as a
 *              deferral for the provider: plan.md, "Recipients").
 *   PROVIDER   deferred, throttle, retry; a 5xx at RCPT or DATA with no word of throttling
 *              is bounced instead (no retry, no suppress, no throttle).
 *   SENDER     blocked: suspend, requeue; no throttle, no retry, no suppress.
 *   SETUP      failed: stop, requeue; no throttle, no retry.
 *   MESSAGE    4xx deferred with retry, 5xx bounced; never throttle or suppress.
 *   RECIPIENT  4xx deferred with retry (greylisting, a full mailbox, a busy mailbox), never
 *              throttle; 5xx bounced, and suppressed unless the reply leaves room for doubt.
 * scope: recipient and message as the fault, provider for everything else that refused.
 */
struct reply_class {
    enum reply_outcome outcome;
    enum reply_scope scope;
    bool throttle; /* cut the provider's rate and pause it: backoff_on_deferral() */
    bool suppress; /* never send to this recipient again */
    bool retry;    /* schedule another attempt: backoff_retry_next() */
    enum reply_fault fault;
    bool suspend; /* the sender was refused: suspend the provider (with IP pools, the IP) and
                     keep the recipient pending, not charging it a retry */
    bool stop;    /* a set-up failure: stop the run with a clear error; the recipient stays
                     pending */
    bool requeue; /* keep the recipient pending without counting a retry */
};

/* One reply to judge. */
struct reply_input {
    enum reply_phase phase;
    int code;             /* 200..599, or 0: no reply (connection failed, timed out, TLS) */
    const char *enhanced; /* RFC 3463 code as reply_parse found it, or NULL / "" */
    const char *text;     /* the reply's text (reply_parse), or NULL / ""; any bytes but NUL */
    bool relay;           /* sent through a smarthost with AUTH, not to the recipient's MX */
};

/*
 * Judges a reply received in in->phase: whose fault it is and what follows (struct
 * reply_class above). Pure: no I/O, no clock. Any text is safe: a server may echo anything.
 *
 * The text is searched for phrases (case-insensitive, a table in reply.c) that are clues: a
 * block list, authentication policy, reputation, throttling, greylisting, an unknown or full
 * mailbox, content, size, relaying, TLS or authentication required, our sender address. The
 * decision, first rule that applies:
 *  1. code 0 (or outside 200..599): NETWORK. 2xx after DATA: NONE, delivered; other 2xx and
 *     3xx, and any reply to QUIT: NONE, pending.
 *  2. TLS required ("must issue a STARTTLS command first", 538, x.7.10, x.7.11): SETUP.
 *  3. Block-list wording (block list, blacklist, denylist, "blocked using", Spamhaus, SpamCop,
 *     Barracuda, SORBS, Cloudmark, DNSBL, RBL, Yahoo's [BL2x], Microsoft's (S3150)/(S3140),
 *     "banned sending IP", "IP ... blocked"), 4xx or 5xx, in any phase: SENDER.
 *  4. 4xx greylisting: RECIPIENT at RCPT or DATA (per sender, recipient and IP, often sent
 *     as 4.7.1 and as "Client host rejected: Greylisted": retrying the recipient cures it,
 *     slowing the provider not), else PROVIDER.
 *  5. Policy codes (x.7.DDD): x.7.20-26, 30-32, 40 (RFC 7372 and Gmail: SPF, DKIM, DMARC,
 *     PTR) and x.7.27 (Gmail: SPF) SENDER, but x.7.27 that speaks of a null MX (RFC 7505: our
 *     return path's domain takes no mail) SETUP; x.7.28 (mail flood, Gmail's unusual rate)
 *     PROVIDER; Microsoft: 4.7.500-899 PROVIDER (server busy, rate limited), 5.7.501-503, 506,
 *     508-511, 513, 515, 606-649, 700-749 SENDER (spam abuse, banned sender or IP, bad HELO,
 *     DMARC, block list, authentication level, tenant over threshold), 5.7.504, 505, 507 and
 *     703 RECIPIENT without suppress (that recipient refuses us), 5.7.512 MESSAGE (From
 *     header), x.7.57 and x.7.60 (not authenticated, send-as denied) and 5.7.750 SETUP when
 *     relay, else SENDER.
 *  6. Authentication-policy wording (unauthenticated, SPF/DKIM failed, DMARC, reverse DNS,
 *     PTR, "cannot find your hostname", "Helo command rejected"), 4xx or 5xx: SENDER.
 *  7. AUTH: 5xx, 432 and x.7.12 SETUP (credentials refused, mechanism, encryption required);
 *     other 4xx PROVIDER (a temporary authentication failure).
 *  8. Relaying or authentication refused (relay access denied, relaying denied,
 *     authentication required, 530 after AUTH): SETUP when relay (our smarthost refuses us);
 *     in direct mode at RCPT or DATA the domain is not hosted there: RECIPIENT without
 *     suppress; earlier SENDER (the MX refuses anonymous mail).
 *  9. Our return path: x.1.7, x.1.8, x.1.3 at MAIL, or "Sender address rejected", "Domain of
 *     sender address", "sender verify failed" (Postfix and Exim refuse the sender at RCPT
 *     too): 5xx SETUP, 4xx MESSAGE (deferred: a DNS lookup of our domain failed for now);
 *     with an x.7.x code it is a policy on our sender: SETUP when relay, else SENDER.
 * 10. 421 (the server closes the channel): PROVIDER.
 * 11. Before MAIL (greeting, EHLO, STARTTLS): 4xx PROVIDER; 5xx SENDER (the receiver will not
 *     talk to us), but 5xx to STARTTLS SETUP when relay, else PROVIDER.
 * 12. x.3.4 and x.2.3 (too big): MESSAGE.
 * 13. At RCPT or DATA (ipwarm sends one recipient per transaction, so a DATA reply may be
 *     about it): x.1.x and x.2.x RECIPIENT; then unknown, disabled or full mailbox wording
 *     RECIPIENT; a recipient receiving too fast RECIPIENT without suppress; at RCPT, a 5xx
 *     whose only words are RFC 5321's "mailbox unavailable" or "requested action not taken"
 *     (with no code, x.0.x or x.5.x) RECIPIENT.
 * 14. Content, header syntax or size wording: MESSAGE.
 * 15. Reputation wording (reputation, unsolicited, suspected spam sender): 5xx SENDER; 4xx
 *     PROVIDER (the documented reaction to Gmail's low reputation and Microsoft's 4.7.650 is
 *     to slow down). Weaker block wording ("listed in", "blocked", "banned", "Client host
 *     rejected"): SENDER, or PROVIDER for a 4xx that also speaks of throttling.
 * 16. Throttling wording (rate limit, try again later, temporarily deferred, server busy, too
 *     many, [TSS04]): PROVIDER.
 * 17. At RCPT or DATA, "Recipient address rejected" and the like: RECIPIENT without suppress.
 * 18. The enhanced code's subject (RFC 3463 section 3): x.3.x, x.4.x and x.5.3 PROVIDER;
 *     other x.5.x and x.6.x MESSAGE; x.7.x at MAIL 5xx SENDER, at RCPT 5xx RECIPIENT without
 *     suppress, at DATA 5xx MESSAGE, 4xx PROVIDER.
 * 19. The code and phase (RFC 5321 4.2.2, 4.2.3): at MAIL 4xx PROVIDER, 552 MESSAGE, other
 *     5xx SENDER; at RCPT 450 RECIPIENT, 550, 551, 552 and 553 RECIPIENT (suppressed only
 *     when the text gives no other clue than RFC 5321's "mailbox unavailable"), 554 RECIPIENT
 *     without suppress, other 4xx PROVIDER; at DATA 4xx PROVIDER, 5xx MESSAGE.
 * A recipient or message fault cannot arise before the recipient or the message is named
 * (before RCPT, before MAIL): such a judgement reads 4xx as PROVIDER, 5xx as SENDER.
 * A RECIPIENT 5xx is suppressed when the code or the words prove the mailbox bad (x.1.1,
 * x.1.2, x.1.3, x.1.6, x.1.10, x.2.1, x.2.2, unknown, disabled, full), never when they also
 * speak of a rate, and never on a bare recipient refusal: when unsure, do not suppress.
 *
 * in must not be NULL.
 */
struct reply_class reply_judge(const struct reply_input *in);

/*
 * reply_judge in direct mode (relay false), as seen by a caller that knows only outcome,
 * throttle, suppress and retry: a SENDER or SETUP judgement reads as a provider deferral
 * (blocked becomes deferred; throttle and retry set), so such a caller backs the provider off
 * and keeps the recipient instead of bouncing it. fault, suspend, stop and requeue are as
 * reply_judge says. The outcome is never REPLY_BLOCKED.
 */
struct reply_class reply_classify(enum reply_phase phase, int code, const char *enhanced,
                                  const char *text);

/* "connect", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "quit"; "?" if unknown. */
const char *reply_phase_name(enum reply_phase p);
/* "pending", "delivered", "deferred", "bounced", "failed", "expired", "blocked"; "?" if
 * unknown. */
const char *reply_outcome_name(enum reply_outcome o);
/* "none", "recipient", "provider", "message"; "?" if unknown. */
const char *reply_scope_name(enum reply_scope s);
/* "none", "recipient", "message", "provider", "sender", "setup", "network"; "?" if unknown. */
const char *reply_fault_name(enum reply_fault f);

#endif
