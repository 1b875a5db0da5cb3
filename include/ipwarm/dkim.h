/*
 * dkim: DomainKeys Identified Mail signatures (RFC 6376) with rsa-sha256 and ed25519-sha256
 * (RFC 8463), relaxed/relaxed canonicalisation, on OpenSSL's EVP interface; key generation and
 * the DNS TXT record to publish; and the public key of a private key, for the pre-flight check
 * that the published record matches the configured key.
 */
#ifndef IPWARM_DKIM_H
#define IPWARM_DKIM_H

#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"

enum dkim_key_type { DKIM_RSA = 0, DKIM_ED25519 };

struct dkim_key; /* a loaded private key (load once, sign many) */

/* Loads a PEM private key (RSA >= 1024 bits, or Ed25519). Returns IPW_OK, IPW_ENOINPUT when the
 * file cannot be read, IPW_EDATA when it is not a usable private key (the sentence names the
 * file), IPW_ENOMEM. */
ipw_status dkim_key_load(const char *path, struct dkim_key **out, struct err *e);
void dkim_key_free(struct dkim_key *k);
enum dkim_key_type dkim_key_type(const struct dkim_key *k);

/* The base64 public key as it appears in the p= tag of the DNS record (RSA: the
 * SubjectPublicKeyInfo DER; Ed25519: the raw 32 bytes, RFC 8463). Returns a malloc'd string or
 * NULL (then e is set). */
char *dkim_key_public_b64(const struct dkim_key *k, struct err *e);

#endif
