/*
 * verp: VERP return paths LOCAL+TOKEN@domain whose token names an attempt (see verp.h).
 *
 * Follows RFC 5321 (4.5.3.1.1: a local part is at most 64 octets; 4.5.5: bounces go to the
 * envelope sender), RFC 4648 6 (base32, here in lower case and without padding: 15 bytes are
 * exactly 24 characters) and RFC 2104 (HMAC-SHA256 through token_mac(), truncated to 72 bits:
 * a forger who can only send mail to the bounce mailbox gets one guess per message).
 */
#include "ipwarm/verp.h"

#include "ipwarm/chars.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#define VERP_ID_BYTES  6
#define VERP_MAC_BYTES 9
#define VERP_RAW_BYTES (VERP_ID_BYTES + VERP_MAC_BYTES)

/* A label no campaign can be (campaigns have no control characters): token.h. */
static const char verp_label[] = "\001ipwarm-verp";
static const char verp_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

static bool verp_mac(const struct token_secret *s, const unsigned char id[VERP_ID_BYTES],
                     unsigned char mac[VERP_MAC_BYTES])
{
    unsigned char full[TOKEN_MAC_LEN];
    bool ok = token_mac(s, verp_label, id, VERP_ID_BYTES, full);
    memcpy(mac, full, VERP_MAC_BYTES);
    OPENSSL_cleanse(full, sizeof full);
    return ok;
}

static int verp_value(char ch)
{
    ch = (char)chars_lower((unsigned char)ch);
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a';
    if (ch >= '2' && ch <= '7')
        return ch - '2' + 26;
    return -1;
}

bool verp_token_shaped(const char *token, size_t len)
{
    if (len != VERP_TOKEN_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (verp_value(token[i]) < 0)
            return false;
    return true;
}

ipw_status verp_token(const struct token_secret *s, int64_t id, char out[VERP_TOKEN_LEN + 1],
                      struct err *e)
{
    out[0] = '\0';
    if (id < 1 || id > VERP_ID_MAX)
        return err_set(e, IPW_EUSAGE, "verp: attempt id %lld is outside 1..%lld", (long long)id,
                       (long long)VERP_ID_MAX);
    unsigned char raw[VERP_RAW_BYTES];
    for (int i = 0; i < VERP_ID_BYTES; i++)
        raw[i] = (unsigned char)((uint64_t)id >> (8 * (VERP_ID_BYTES - 1 - i)));
    if (!verp_mac(s, raw, raw + VERP_ID_BYTES))
        return err_set(e, IPW_ESOFTWARE, "verp: HMAC-SHA256 failed");
    /* 15 bytes = three groups of 5 bytes = 40 bits = 8 characters each */
    size_t o = 0;
    for (size_t g = 0; g < VERP_RAW_BYTES; g += 5) {
        uint64_t v = 0;
        for (size_t k = 0; k < 5; k++)
            v = v << 8 | raw[g + k];
        for (int k = 7; k >= 0; k--)
            out[o++] = verp_alphabet[(v >> (5 * k)) & 31];
    }
    out[o] = '\0';
    return IPW_OK;
}

ipw_status verp_token_check(const struct token_secret *s, const char *token, int64_t *id,
                            struct err *e)
{
    *id = 0;
    size_t len = strlen(token);
    if (!verp_token_shaped(token, len))
        return err_set(e, IPW_EDATA, "verp: \"%.40s\" is not a token (%d base32 characters)", token,
                       VERP_TOKEN_LEN);
    unsigned char raw[VERP_RAW_BYTES];
    for (size_t g = 0, o = 0; g < VERP_TOKEN_LEN; g += 8) {
        uint64_t v = 0;
        for (size_t k = 0; k < 8; k++)
            v = v << 5 | (uint64_t)verp_value(token[g + k]);
        for (int k = 4; k >= 0; k--)
            raw[o++] = (unsigned char)(v >> (8 * k));
    }
    unsigned char mac[VERP_MAC_BYTES];
    if (!verp_mac(s, raw, mac))
        return err_set(e, IPW_ESOFTWARE, "verp: HMAC-SHA256 failed");
    if (CRYPTO_memcmp(mac, raw + VERP_ID_BYTES, VERP_MAC_BYTES) != 0)
        return err_set(e, IPW_EDATA,
                       "verp: the token %s does not authenticate (forged, altered, or made with "
                       "another secret)",
                       token);
    int64_t v = 0;
    for (int i = 0; i < VERP_ID_BYTES; i++)
        v = v << 8 | raw[i];
    if (v < 1)
        return err_set(e, IPW_EDATA, "verp: the token %s names no attempt", token);
    *id = v;
    return IPW_OK;
}

ipw_status verp_make(const struct token_secret *s, const char *return_path, int64_t id, char *out,
                     size_t size, struct err *e)
{
    if (size)
        out[0] = '\0';
    const char *at = strrchr(return_path, '@');
    if (!at || at == return_path || return_path[0] == '"')
        return err_set(e, IPW_EUSAGE,
                       "verp: the return path %s has no dot-atom local part to add a token to",
                       return_path);
    size_t local = (size_t)(at - return_path);
    if (local + 1 + VERP_TOKEN_LEN > 64)
        return err_set(e, IPW_EUSAGE,
                       "verp: the local part of %s is longer than %d octets: with +TOKEN it would "
                       "pass RFC 5321's 64",
                       return_path, 64 - 1 - VERP_TOKEN_LEN);
    char token[VERP_TOKEN_LEN + 1];
    ipw_status st = verp_token(s, id, token, e);
    if (st)
        return st;
    size_t need = local + 1 + VERP_TOKEN_LEN + strlen(at) + 1;
    if (size < need)
        return err_set(e, IPW_ENOMEM, "verp: %zu bytes are too few for the address", size);
    memcpy(out, return_path, local);
    out[local] = VERP_SEPARATOR;
    memcpy(out + local + 1, token, VERP_TOKEN_LEN);
    memcpy(out + local + 1 + VERP_TOKEN_LEN, at, strlen(at) + 1);
    return IPW_OK;
}

ipw_status verp_parse(const struct token_secret *s, const char *return_path, const char *address,
                      int64_t *id, struct err *e)
{
    *id = 0;
    const char *rat = strrchr(return_path, '@'), *aat = strrchr(address, '@');
    if (!rat || !aat || strcasecmp(rat, aat) != 0)
        return IPW_ENOTFOUND;
    size_t rlocal = (size_t)(rat - return_path), alocal = (size_t)(aat - address);
    if (alocal != rlocal + 1 + VERP_TOKEN_LEN || strncasecmp(address, return_path, rlocal) != 0 ||
        address[rlocal] != VERP_SEPARATOR)
        return IPW_ENOTFOUND;
    char token[VERP_TOKEN_LEN + 1];
    memcpy(token, address + rlocal + 1, VERP_TOKEN_LEN);
    token[VERP_TOKEN_LEN] = '\0';
    return verp_token_check(s, token, id, e);
}
