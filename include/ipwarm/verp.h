/*
 * verp: variable envelope return paths that name the attempt a bounce answers.
 *
 * For a return path LOCAL@domain, the attempt with id N is sent with MAIL FROM
 * LOCAL+TOKEN@domain, so a bounce (which goes to the envelope sender, RFC 5321 4.5.5 and
 * RFC 3464) comes back addressed to the attempt itself, whatever the bounce looks like inside.
 * TOKEN is 24 characters of lower-case base32 (RFC 4648 6, alphabet a-z 2-7, no padding) over
 * 15 bytes: the attempt id in 6 bytes, big-endian, then the first 9 bytes of an HMAC-SHA256
 * keyed with the state's secret (token.h: the unsubscribe secret; token_mac() with a label of
 * its own). So:
 *  - a token cannot be forged or altered without the secret (72 bits of MAC), and verp_parse()
 *    refuses one whose MAC does not match;
 *  - it survives MTAs that lower-case or upper-case local parts (base32 is read either way);
 *  - it is short: LOCAL may have up to 39 octets and LOCAL+TOKEN stays within RFC 5321's 64.
 * The bounce mailbox must deliver LOCAL+anything@domain to LOCAL (sub-addressing: Postfix
 * recipient_delimiter = +, Dovecot, Gmail and Microsoft 365 do it by default).
 */
#ifndef IPWARM_VERP_H
#define IPWARM_VERP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/token.h"

#define VERP_TOKEN_LEN 24
/* The largest attempt id a token carries: 6 bytes. */
#define VERP_ID_MAX ((INT64_C(1) << 48) - 1)
/* The separator between LOCAL and TOKEN. */
#define VERP_SEPARATOR '+'

/*
 * Writes the token of attempt id into out (VERP_TOKEN_LEN + 1 bytes, NUL-terminated).
 * Returns IPW_OK; IPW_EUSAGE when id is not 1..VERP_ID_MAX; IPW_ESOFTWARE when the HMAC fails.
 */
ipw_status verp_token(const struct token_secret *s, int64_t id, char out[VERP_TOKEN_LEN + 1],
                      struct err *e);

/*
 * Writes LOCAL+TOKEN@domain for return_path LOCAL@domain and attempt id into out (size bytes).
 * Returns IPW_OK; IPW_EUSAGE when return_path has no '@', a quoted local part, or a local part
 * that leaves no room for the token (more than 64 - 1 - VERP_TOKEN_LEN octets), or when id is
 * out of range; IPW_ENOMEM when out is too small; IPW_ESOFTWARE when the HMAC fails.
 */
ipw_status verp_make(const struct token_secret *s, const char *return_path, int64_t id, char *out,
                     size_t size, struct err *e);

/*
 * Reads the attempt id from a token (any case). Returns IPW_OK with *id set; IPW_EDATA when
 * token is not VERP_TOKEN_LEN base32 characters, or its MAC does not match (forged, altered,
 * or made with another secret); IPW_ESOFTWARE when the HMAC fails.
 */
ipw_status verp_token_check(const struct token_secret *s, const char *token, int64_t *id,
                            struct err *e);

/*
 * Reads the attempt id from an address a bounce was sent to: LOCAL+TOKEN@domain where
 * LOCAL@domain is return_path (compared without regard to case: MTAs change it). Returns
 * IPW_OK with *id set; IPW_ENOTFOUND when address is not a VERP address of return_path;
 * IPW_EDATA when it is, but the token is refused (verp_token_check).
 */
ipw_status verp_parse(const struct token_secret *s, const char *return_path, const char *address,
                      int64_t *id, struct err *e);

/* True when token has the form of a VERP token (length and alphabet, either case), before any
 * check of its MAC: how the report parser picks the token out of an envelope address. */
bool verp_token_shaped(const char *token, size_t len);

#endif
