/*
 * token: per-recipient unsubscribe tokens (see token.h).
 *
 * Follows RFC 2104 (HMAC, here with SHA-256 through OpenSSL's EVP_MAC), RFC 4648 5 (base64url
 * without padding) and RFC 8058 (the token goes into the one-click List-Unsubscribe URI). The
 * campaign and the address are joined with a NUL byte, which neither can hold, so that
 * ("ab", "c@x") and ("a", "bc@x") never share a token.
 */
#include "ipwarm/token.h"

#include "ipwarm/afile.h"
#include "ipwarm/base64.h"
#include "ipwarm/infile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

void token_secret_clear(struct token_secret *s)
{
    OPENSSL_cleanse(s->key, sizeof s->key);
    s->len = 0;
}

static ipw_status token_secret_set(struct token_secret *s, const char *text, size_t n,
                                   const char *where, struct err *e)
{
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    if (n < TOKEN_SECRET_MIN)
        return err_set(e, IPW_EUSAGE,
                       "the unsubscribe secret from %s is shorter than %d bytes; use a long "
                       "random string (e.g. openssl rand -hex 32)",
                       where, TOKEN_SECRET_MIN);
    if (n > TOKEN_SECRET_MAX)
        return err_set(e, IPW_EUSAGE, "the unsubscribe secret from %s is longer than %d bytes",
                       where, TOKEN_SECRET_MAX);
    memcpy(s->key, text, n);
    s->len = n;
    return IPW_OK;
}

/* Reads a secret file (small: at most TOKEN_SECRET_MAX bytes and a line break). A FIFO or a
 * device is refused, not waited on (infile.h). */
static ipw_status token_secret_read(const char *path, struct token_secret *s, struct err *e)
{
    const char *kind;
    int fd = infile_open_fd(path, &kind);
    if (fd < 0 && kind)
        return err_set(e, IPW_ENOINPUT, "the unsubscribe secret file %s is %s, not a regular file",
                       path, kind);
    if (fd < 0)
        return err_set(e, IPW_ENOINPUT, "cannot open the unsubscribe secret file %s: %s", path,
                       strerror(errno));
    char buf[TOKEN_SECRET_MAX + 4];
    size_t n = 0;
    while (n < sizeof buf) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int saved = errno;
            close(fd);
            OPENSSL_cleanse(buf, sizeof buf);
            return err_set(e, IPW_ENOINPUT, "cannot read the unsubscribe secret file %s: %s", path,
                           strerror(saved));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    ipw_status st = token_secret_set(s, buf, n, path, e);
    OPENSSL_cleanse(buf, sizeof buf);
    return st;
}

/* Creates the default secret file with 32 random bytes in hex; when another process made it
 * first (EEXIST), reads that one, so that concurrent first runs agree on one secret. */
static ipw_status token_secret_create(const char *path, struct token_secret *s, struct err *e)
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return err_set(e, IPW_ESOFTWARE, "no random bytes for the unsubscribe secret");
    char hex[sizeof raw * 2 + 2];
    for (size_t i = 0; i < sizeof raw; i++) {
        hex[2 * i] = "0123456789abcdef"[raw[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[raw[i] & 15];
    }
    hex[sizeof raw * 2] = '\n';
    OPENSSL_cleanse(raw, sizeof raw);
    size_t len = sizeof raw * 2 + 1;

    /* Created whole or not at all (afile.h), so that a concurrent first run never reads half
     * a secret; when another process made it first, its secret is the one. */
    bool exists;
    ipw_status st = afile_write(path, 0600, AFILE_NOREPLACE, hex, len, &exists, e);
    if (st == IPW_OK)
        st = token_secret_set(s, hex, len, path, e);
    else if (exists)
        st = token_secret_read(path, s, e);
    else
        err_prefix(e, st, "cannot create the unsubscribe secret file: ");
    OPENSSL_cleanse(hex, sizeof hex);
    return st;
}

ipw_status token_secret_load(const char *default_path, struct token_secret *s, struct err *e)
{
    memset(s, 0, sizeof *s);
    const char *env = getenv(TOKEN_ENV);
    if (env && *env) {
        snprintf(s->source, sizeof s->source, "%s", TOKEN_ENV);
        return token_secret_set(s, env, strlen(env), TOKEN_ENV, e);
    }
    const char *file = getenv(TOKEN_ENV_FILE);
    if (file && *file) {
        snprintf(s->source, sizeof s->source, "%s", TOKEN_ENV_FILE);
        return token_secret_read(file, s, e);
    }
    if (!default_path)
        return err_set(e, IPW_EUSAGE, "no unsubscribe secret: set %s or %s", TOKEN_ENV,
                       TOKEN_ENV_FILE);
    snprintf(s->source, sizeof s->source, "the secret file");
    if (access(default_path, F_OK) == 0)
        return token_secret_read(default_path, s, e);
    return token_secret_create(default_path, s, e);
}

char *token_secret_default_path(const char *state_path)
{
    static const char suffix[] = ".unsubscribe-secret";
    size_t n = strlen(state_path);
    char *p = malloc(n + sizeof suffix);
    if (!p)
        return NULL;
    memcpy(p, state_path, n);
    memcpy(p + n, suffix, sizeof suffix);
    return p;
}

bool token_mac(const struct token_secret *s, const char *label, const void *data, size_t len,
               unsigned char mac[TOKEN_MAC_LEN])
{
    bool ok = false;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    if (ctx) {
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
            OSSL_PARAM_construct_end(),
        };
        size_t out = 0;
        const char *l = label ? label : "";
        ok = EVP_MAC_init(ctx, s->key, s->len, params) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)l, strlen(l)) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)"", 1) == 1 &&
             EVP_MAC_update(ctx, data, len) == 1 &&
             EVP_MAC_final(ctx, mac, &out, TOKEN_MAC_LEN) == 1 && out == TOKEN_MAC_LEN;
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return ok;
}

char *token_make(const struct token_secret *s, const char *campaign, const char *recipient,
                 char out[TOKEN_LEN + 1])
{
    unsigned char mac[32];
    out[0] = '\0';
    if (!token_mac(s, campaign, recipient, strlen(recipient), mac))
        return out;
    /* 16 bytes of the MAC: 22 characters unpadded (the encoder wants room for the padding) */
    char enc[BASE64_LEN(16) + 1];
    base64_encode_url(mac, 16, enc);
    memcpy(out, enc, TOKEN_LEN);
    out[TOKEN_LEN] = '\0';
    return out;
}

bool token_check(const struct token_secret *s, const char *campaign, const char *recipient,
                 const char *token)
{
    char want[TOKEN_LEN + 1];
    token_make(s, campaign, recipient, want);
    if (want[0] == '\0' || strlen(token) != TOKEN_LEN)
        return false;
    return CRYPTO_memcmp(want, token, TOKEN_LEN) == 0;
}
