/*
 * token: the per-recipient unsubscribe token ({{token}} in templates and List-Unsubscribe,
 * RFC 8058).
 *
 * A token is HMAC-SHA256 (RFC 2104) over the campaign and the recipient address, keyed with a
 * secret, truncated to 128 bits and written in base64url without padding (RFC 4648 5): 22
 * characters that need no escaping in a URI or a header. The same recipient of the same
 * campaign always gets the same token, so the user's unsubscribe endpoint can check a token
 * by computing it again (token_check) from the address it stores, without a table of tokens.
 *
 * The secret never comes from the plan (plans are shared and committed) and is never logged.
 * token_secret_load() takes, in this order: the environment variable
 * IPWARM_UNSUBSCRIBE_SECRET (the secret itself, at least TOKEN_SECRET_MIN bytes); the file
 * named by IPWARM_UNSUBSCRIBE_SECRET_FILE; else the caller's default file (the engine uses
 * token_secret_default_path(): beside the state file), which is created with 32 random bytes
 * (hex, mode 0600) the first time, so tokens stay stable from one run to the next.
 */
#ifndef IPWARM_TOKEN_H
#define IPWARM_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/err.h"

/* 16 bytes of HMAC in base64url without padding. */
#define TOKEN_LEN 22
/* The shortest secret accepted: 128 bits of a random secret, as bytes of text. */
#define TOKEN_SECRET_MIN 16
#define TOKEN_SECRET_MAX 256
#define TOKEN_ENV        "IPWARM_UNSUBSCRIBE_SECRET"
#define TOKEN_ENV_FILE   "IPWARM_UNSUBSCRIBE_SECRET_FILE"

struct token_secret {
    unsigned char key[TOKEN_SECRET_MAX];
    size_t len;
    char source[64]; /* where it came from, for messages: "IPWARM_UNSUBSCRIBE_SECRET", a path
                        is not kept here (it may be long); never the secret itself */
};

/*
 * Fills s from the environment or the files (see above); default_path may be NULL (then
 * one of the environment variables must be set). A secret file holds the secret as text; its
 * final line break is ignored. Returns IPW_OK; IPW_EUSAGE when no source is available or the
 * secret is shorter than TOKEN_SECRET_MIN or longer than TOKEN_SECRET_MAX bytes; IPW_ENOINPUT
 * when a named file cannot be read; IPW_ECANTCREAT when the default file cannot be created;
 * IPW_ESOFTWARE when no random bytes are available.
 */
ipw_status token_secret_load(const char *default_path, struct token_secret *s, struct err *e);

/* Wipes the secret from memory. */
void token_secret_clear(struct token_secret *s);

/* "STATE.unsubscribe-secret" for the state file path; malloc'd, or NULL when out of memory. */
char *token_secret_default_path(const char *state_path);

/* Writes the token of (campaign, recipient) into out (TOKEN_LEN + 1 bytes, NUL-terminated).
 * campaign may be NULL (treated as ""). Returns out. */
char *token_make(const struct token_secret *s, const char *campaign, const char *recipient,
                 char out[TOKEN_LEN + 1]);

/* The length of token_mac()'s output: HMAC-SHA256. */
#define TOKEN_MAC_LEN 32

/*
 * HMAC-SHA256 (RFC 2104) keyed with the secret over label, a NUL byte and len bytes of data,
 * into mac. The unsubscribe token is token_mac(s, campaign, recipient); other values
 * authenticated with the same secret (verp.h) use a label that no campaign can be (one with a
 * control character), so that no two uses ever share an input. label may be NULL ("").
 * Returns false when OpenSSL fails.
 */
bool token_mac(const struct token_secret *s, const char *label, const void *data, size_t len,
               unsigned char mac[TOKEN_MAC_LEN]);

/* True if token is the token of (campaign, recipient); compares in constant time. */
bool token_check(const struct token_secret *s, const char *campaign, const char *recipient,
                 const char *token);

#endif
