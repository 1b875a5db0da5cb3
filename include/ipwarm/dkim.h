/*
 * dkim: DomainKeys Identified Mail signatures (RFC 6376) with rsa-sha256 and ed25519-sha256
 * (RFC 8463), relaxed/relaxed canonicalisation, on OpenSSL's EVP interface; key generation and
 * the DNS TXT record to publish; and the public key of a private key, for the pre-flight check
 * that the published record matches the configured key.
 *
 * How the engine signs (the key is loaded once, not per message):
 *
 *     struct dkim_key *key;                      // at start, when plan->dkim
 *     s = dkim_key_load(plan->dkim_key_file, &key, e);
 *     struct dkim_sign_opts o = {.domain = plan->dkim_domain,
 *                                .selector = plan->dkim_selector};
 *     ...for each attempt:
 *     s = message_compose(tmpl, &vars, &args, &msg, e);   // unique Message-ID per attempt
 *     s = dkim_sign(key, &o, &msg, clock_now_ms(), e);    // prepends DKIM-Signature
 *     job.data = msg.data; job.len = msg.len;             // libcurl dot-stuffs on the wire
 *     ...
 *     dkim_key_free(key);                        // at exit
 *
 * The signature covers the bytes of struct message as they are (not dot-stuffed: RFC 6376 3.7
 * hashes the message before SMTP transparency). Nothing may change the message after
 * dkim_sign; a second signature (another domain) is a second dkim_sign call.
 */
#ifndef IPWARM_DKIM_H
#define IPWARM_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"
#include "ipwarm/message.h"

enum dkim_key_type { DKIM_RSA = 0, DKIM_ED25519 };

/* RSA keys dkim keygen makes (RFC 8301 3.2: at least 1024, 2048 recommended), and the
 * smallest one dkim_key_load accepts (RFC 8301: verifiers MUST NOT accept less than 1024). */
#define DKIM_RSA_BITS     2048
#define DKIM_RSA_MIN_BITS 1024
/* RFC 1035 3.3: one character-string of a TXT record holds at most 255 octets. */
#define DKIM_TXT_STRING_MAX 255
/* The base64 of a SHA-256 digest: 44 characters. */
#define DKIM_BH_LEN 44

struct dkim_key; /* a loaded private key (load once, sign many) */

/* Loads a PEM private key (RSA >= 1024 bits, or Ed25519). Returns IPW_OK, IPW_ENOINPUT when the
 * file cannot be read, IPW_EDATA when it is not a usable private key (the sentence names the
 * file), IPW_ENOMEM. */
ipw_status dkim_key_load(const char *path, struct dkim_key **out, struct err *e);
/* The same from PEM text in memory (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY");
 * what names it in messages. An encrypted key is refused (IPW_EDATA), never prompted for. */
ipw_status dkim_key_parse(const char *pem, size_t len, const char *what, struct dkim_key **out,
                          struct err *e);
void dkim_key_free(struct dkim_key *k);
enum dkim_key_type dkim_key_type(const struct dkim_key *k);
/* "rsa" or "ed25519": the k= tag and the --type word. */
const char *dkim_key_type_name(enum dkim_key_type t);

/* The base64 public key as it appears in the p= tag of the DNS record (RSA: the
 * SubjectPublicKeyInfo DER; Ed25519: the raw 32 bytes, RFC 8463). Returns a malloc'd string or
 * NULL (then e is set). */
char *dkim_key_public_b64(const struct dkim_key *k, struct err *e);

/* Makes a new key: RSA of DKIM_RSA_BITS bits, or Ed25519. Returns IPW_OK, IPW_ESOFTWARE when
 * OpenSSL fails (its reason in the sentence), IPW_ENOMEM. */
ipw_status dkim_key_generate(enum dkim_key_type t, struct dkim_key **out, struct err *e);

/* Writes k as an unencrypted PKCS#8 PEM to a new file at path with mode 0600 (exactly, whatever
 * the umask). An existing file is never overwritten. Returns IPW_OK; IPW_ECANTCREAT when the
 * file exists or cannot be created; IPW_EIO when writing fails (the partial file is removed);
 * IPW_ENOMEM. */
ipw_status dkim_key_write(const struct dkim_key *k, const char *path, struct err *e);

/*
 * The TXT record to publish at SELECTOR._domainkey.DOMAIN: "v=DKIM1; k=rsa; p=BASE64" (k=ed25519
 * for an Ed25519 key). Returns IPW_OK with *txt malloc'd; IPW_ESOFTWARE or IPW_ENOMEM.
 */
ipw_status dkim_record(const struct dkim_key *k, char **txt, struct err *e);

/*
 * Splits a record into the character-strings of a zone file (RFC 1035 3.3, at most
 * DKIM_TXT_STRING_MAX octets each): the tags before "p=" as one string ("v=DKIM1; k=rsa; "),
 * then the p= tag in pieces of 255 octets. Concatenated they give txt back (RFC 7208 3.3 and
 * RFC 6376 3.6.2.2: a verifier joins the strings without spaces). Returns IPW_OK with
 * *strings (a malloc'd array of *n malloc'd strings; free with dkim_strings_free) or
 * IPW_ENOMEM.
 */
ipw_status dkim_record_split(const char *txt, char ***strings, size_t *n, struct err *e);
void dkim_strings_free(char **strings, size_t n);

/* The header fields dkim_sign signs by default (when present) and over-signs (lists once more
 * than they occur, so that none can be added after signing, RFC 6376 8.15). NULL-terminated. */
extern const char *const dkim_default_headers[];

/* What one signature says about its signer. */
struct dkim_sign_opts {
    const char *domain;   /* d=: the signing domain, e.g. "example.com" */
    const char *selector; /* s=: e.g. "s2026" */
    /* Header names to sign (NULL-terminated), or NULL for dkim_default_headers. Each name is
     * signed once per occurrence and once more (over-signing). */
    const char *const *headers;
    int64_t expire_s; /* x= is t= plus this many seconds; 0: no x= */
};

/*
 * Signs m: computes the relaxed body hash over m->data + m->body_off, selects the header fields
 * of opts->headers (bottom-up, RFC 6376 5.4.2), signs them and the new field with rsa-sha256 or
 * ed25519-sha256 (as the key is), and prepends "DKIM-Signature: v=1; a=...; c=relaxed/relaxed;
 * d=; s=; t=; [x=;] h=; bh=; b=" folded within 78 columns, b= last. t= is now_ms in seconds.
 * Returns IPW_OK; IPW_EUSAGE for a missing or malformed domain or selector, or a message
 * without a From field (RFC 6376 5.4: From MUST be signed); IPW_ESOFTWARE when OpenSSL fails;
 * IPW_ENOMEM. On failure m is unchanged.
 */
ipw_status dkim_sign(const struct dkim_key *k, const struct dkim_sign_opts *opts, struct message *m,
                     int64_t now_ms, struct err *e);

/* ---- the building blocks, for tests and for the pre-flight check ---- */

/*
 * RFC 6376 3.4.2 relaxed header canonicalisation of one field ("Name: value", folds and a final
 * CRLF allowed): the name lower-cased, continuation lines unfolded, runs of WSP made one space,
 * WSP around the colon and at the end removed. The result has no final CRLF. Returns a malloc'd
 * string (*out_len bytes; out_len may be NULL) or NULL when out of memory.
 */
char *dkim_canon_header(const char *field, size_t len, size_t *out_len);

/*
 * RFC 6376 3.4.4 relaxed body canonicalisation: WSP runs made one space, WSP at line ends
 * removed, empty lines at the end removed, a final CRLF added to a non-empty body that lacks
 * it; an empty body stays empty. Returns a malloc'd string (*out_len bytes) or NULL when out of
 * memory.
 */
char *dkim_canon_body(const char *body, size_t len, size_t *out_len);

/* The bh= value: the base64 of the SHA-256 of the relaxed body, into out (DKIM_BH_LEN + 1
 * bytes). Returns IPW_OK, or IPW_ESOFTWARE when OpenSSL fails. */
ipw_status dkim_body_hash(const char *body, size_t len, char out[DKIM_BH_LEN + 1], struct err *e);

/*
 * Signs canonical header data as the key's algorithm says: rsa-sha256 (RSASSA-PKCS1-v1_5 over
 * SHA-256, RFC 6376 3.3.1) or ed25519-sha256 (PureEdDSA over the SHA-256 of the data, RFC 8463
 * 3). Returns IPW_OK with *b64 (malloc'd base64 of the signature); IPW_ESOFTWARE; IPW_ENOMEM.
 */
ipw_status dkim_sign_data(const struct dkim_key *k, const void *data, size_t len, char **b64,
                          struct err *e);

/* The value of tag in a tag=value list (RFC 6376 3.2, also DMARC's, RFC 7489 6.4) with every
 * space removed, into out (cut to n - 1 bytes); false when the tag is absent. */
bool dkim_tag(const char *txt, const char *tag, char *out, size_t n);

#endif
