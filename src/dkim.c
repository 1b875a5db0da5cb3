/*
 * dkim: DKIM signing (see dkim.h).
 *
 * Implements RFC 6376 (DomainKeys Identified Mail: 3.4.2 and 3.4.4 relaxed canonicalisation,
 * 3.5 the DKIM-Signature tags, 3.7 the hashes, 5.4.2 header selection bottom-up, 8.15
 * over-signing), RFC 8301 (rsa-sha256 only, RSA keys of at least 1024 bits) and RFC 8463
 * (ed25519-sha256: PureEdDSA over the SHA-256 of the header data, and the raw 32-byte public
 * key in p=). Keys come from PEM files through OpenSSL's EVP interface; the private key is
 * parsed once and reused for every message.
 *
 * The signature field is built up to "b=" with its final folding, canonicalised and signed as
 * it is, and only then is the signature appended: a verifier removes the b= value (with the
 * folding whitespace inside it) and must find the same bytes that were signed.
 */
#include "ipwarm/dkim.h"

#include "ipwarm/afile.h"
#include "ipwarm/base64.h"
#include "ipwarm/buf.h"
#include "ipwarm/chars.h"
#include "ipwarm/infile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

struct dkim_key {
    EVP_PKEY *pkey;
    enum dkim_key_type type;
};

const char *const dkim_default_headers[] = {
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    NULL,
};

/* OpenSSL's last reason, for a sentence; clears its error queue. */
static const char *dkim_ossl_reason(char *buf, size_t n)
{
    unsigned long code = ERR_get_error();
    if (code == 0)
        snprintf(buf, n, "unknown OpenSSL error");
    else
        ERR_error_string_n(code, buf, n);
    ERR_clear_error();
    return buf;
}

/* ---- keys ---- */

const char *dkim_key_type_name(enum dkim_key_type t)
{
    return t == DKIM_ED25519 ? "ed25519" : "rsa";
}

enum dkim_key_type dkim_key_type(const struct dkim_key *k)
{
    return k->type;
}

void dkim_key_free(struct dkim_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

/* True if needle occurs in s[0..n). */
static bool dkim_contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return true;
    return false;
}

/* A passphrase callback that gives none: an encrypted key fails instead of OpenSSL prompting
 * on the terminal of a cron job. */
static int dkim_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Wraps pkey (taking it) after checking that DKIM can sign with it. */
static ipw_status dkim_key_wrap(EVP_PKEY *pkey, const char *what, struct dkim_key **out,
                                struct err *e)
{
    enum dkim_key_type type;
    int id = EVP_PKEY_get_base_id(pkey);
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < DKIM_RSA_MIN_BITS) {
            EVP_PKEY_free(pkey);
            return err_set(e, IPW_EDATA,
                           "%s: an RSA key of %d bits; DKIM needs at least %d (RFC 8301 3.2)", what,
                           bits, DKIM_RSA_MIN_BITS);
        }
        type = DKIM_RSA;
    } else if (id == EVP_PKEY_ED25519) {
        type = DKIM_ED25519;
    } else {
        EVP_PKEY_free(pkey);
        return err_set(e, IPW_EDATA,
                       "%s: a %s key; DKIM signs with RSA (rsa-sha256) or Ed25519 "
                       "(ed25519-sha256, RFC 8463)",
                       what, OBJ_nid2sn(id) ? OBJ_nid2sn(id) : "unknown");
    }
    struct dkim_key *k = calloc(1, sizeof *k);
    if (!k) {
        EVP_PKEY_free(pkey);
        return err_set(e, IPW_ENOMEM, "out of memory loading %s", what);
    }
    k->pkey = pkey;
    k->type = type;
    *out = k;
    return IPW_OK;
}

ipw_status dkim_key_parse(const char *pem, size_t len, const char *what, struct dkim_key **out,
                          struct err *e)
{
    *out = NULL;
    if (len > INT32_MAX)
        return err_set(e, IPW_EDATA, "%s: too large for a key", what);
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return err_set(e, IPW_ENOMEM, "out of memory loading %s", what);
    ERR_clear_error();
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, dkim_no_passphrase, NULL);
    BIO_free(bio);
    if (!pkey) {
        char why[256];
        dkim_ossl_reason(why, sizeof why);
        if (dkim_contains(pem, len, "ENCRYPTED"))
            return err_set(e, IPW_EDATA,
                           "%s: the private key is encrypted; DKIM signing needs it without a "
                           "passphrase (keep the file mode 0600)",
                           what);
        return err_set(e, IPW_EDATA, "%s: not a PEM private key (%s)", what, why);
    }
    return dkim_key_wrap(pkey, what, out, e);
}

ipw_status dkim_key_load(const char *path, struct dkim_key **out, struct err *e)
{
    *out = NULL;
    /* A PEM key is a few kilobytes; 64 KiB is surely not a key. A FIFO or a device is refused,
     * not read (infile.h). */
    char *pem;
    size_t n;
    ipw_status s = infile_read(path, "the DKIM key (sender.dkim.key_file)", 65535, &pem, &n, e);
    if (s != IPW_OK)
        return s;
    s = dkim_key_parse(pem, n, path, out, e);
    OPENSSL_cleanse(pem, n);
    free(pem);
    return s;
}

char *dkim_key_public_b64(const struct dkim_key *k, struct err *e)
{
    char why[256];
    if (k->type == DKIM_ED25519) {
        unsigned char raw[32];
        size_t n = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &n) != 1 || n != sizeof raw) {
            err_set(e, IPW_ESOFTWARE, "cannot get the Ed25519 public key: %s",
                    dkim_ossl_reason(why, sizeof why));
            return NULL;
        }
        char *b = base64_encode_alloc(raw, n);
        if (!b)
            err_set(e, IPW_ENOMEM, "out of memory");
        return b;
    }
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k->pkey, &der);
    if (n <= 0) {
        err_set(e, IPW_ESOFTWARE, "cannot encode the RSA public key: %s",
                dkim_ossl_reason(why, sizeof why));
        return NULL;
    }
    char *b = base64_encode_alloc(der, (size_t)n);
    OPENSSL_free(der);
    if (!b)
        err_set(e, IPW_ENOMEM, "out of memory");
    return b;
}

ipw_status dkim_key_generate(enum dkim_key_type t, struct dkim_key **out, struct err *e)
{
    *out = NULL;
    ERR_clear_error();
    EVP_PKEY *pkey = t == DKIM_ED25519
                         ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                         : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIM_RSA_BITS);
    if (!pkey) {
        char why[256];
        return err_set(e, IPW_ESOFTWARE, "cannot generate an %s key: %s", dkim_key_type_name(t),
                       dkim_ossl_reason(why, sizeof why));
    }
    return dkim_key_wrap(pkey, "the new key", out, e);
}

ipw_status dkim_key_write(const struct dkim_key *k, const char *path, struct err *e)
{
    char why[256];
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return err_set(e, IPW_ENOMEM, "out of memory writing %s", path);
    if (PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(bio);
        return err_set(e, IPW_ESOFTWARE, "cannot encode the private key: %s",
                       dkim_ossl_reason(why, sizeof why));
    }
    char *pem = NULL;
    long len = BIO_get_mem_data(bio, &pem);

    /* Never replace a key: one already published in DNS must not change by accident. The file
     * appears whole, with mode 0600 from its creation, or not at all. */
    bool exists;
    ipw_status s =
        afile_write(path, 0600, AFILE_NOREPLACE, pem, len > 0 ? (size_t)len : 0, &exists, e);
    if (s != IPW_OK && exists)
        err_set(e, s, "%s exists; not overwriting a key", path);
    if (len > 0)
        OPENSSL_cleanse(pem, (size_t)len);
    BIO_free(bio);
    return s;
}

/* ---- the DNS record ---- */

ipw_status dkim_record(const struct dkim_key *k, char **txt, struct err *e)
{
    *txt = NULL;
    char *p = dkim_key_public_b64(k, e);
    if (!p)
        return e ? e->status : IPW_ESOFTWARE;
    struct buf b = {0};
    buf_str(&b, "v=DKIM1; k=");
    buf_str(&b, dkim_key_type_name(k->type));
    buf_str(&b, "; p=");
    buf_str(&b, p);
    free(p);
    *txt = buf_take(&b, NULL);
    return *txt ? IPW_OK : err_set(e, IPW_ENOMEM, "out of memory");
}

void dkim_strings_free(char **strings, size_t n)
{
    if (!strings)
        return;
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

ipw_status dkim_record_split(const char *txt, char ***strings, size_t *n, struct err *e)
{
    *strings = NULL;
    *n = 0;
    size_t len = strlen(txt);
    const char *p = strstr(txt, "p=");
    /* The tags before p= (short) stay together, so the record reads well in a zone file. */
    size_t head = p ? (size_t)(p - txt) : 0;
    if (head > DKIM_TXT_STRING_MAX)
        head = 0;
    size_t max = 2 + (len - head) / DKIM_TXT_STRING_MAX + 1;
    char **v = calloc(max, sizeof *v);
    if (!v)
        return err_set(e, IPW_ENOMEM, "out of memory");
    size_t count = 0, off = 0;
    while (off < len || count == 0) {
        size_t take;
        if (count == 0 && head > 0)
            take = head;
        else
            take = len - off < DKIM_TXT_STRING_MAX ? len - off : DKIM_TXT_STRING_MAX;
        char *s = malloc(take + 1);
        if (!s) {
            dkim_strings_free(v, count);
            return err_set(e, IPW_ENOMEM, "out of memory");
        }
        memcpy(s, txt + off, take);
        s[take] = '\0';
        v[count++] = s;
        off += take;
    }
    *strings = v;
    *n = count;
    return IPW_OK;
}

/* ---- canonicalisation (RFC 6376 3.4.2, 3.4.4) ---- */

static bool dkim_wsp(char c)
{
    return c == ' ' || c == '\t';
}

char *dkim_canon_header(const char *field, size_t len, size_t *out_len)
{
    struct buf b = {0};
    size_t colon = 0;
    while (colon < len && field[colon] != ':')
        colon++;
    size_t name_end = colon;
    while (name_end > 0 && dkim_wsp(field[name_end - 1]))
        name_end--;
    for (size_t i = 0; i < name_end; i++) {
        char c = (char)chars_lower(field[i]);
        buf_put(&b, &c, 1);
    }
    buf_put(&b, ":", 1);
    /* The value: drop the CRLF of each fold, make WSP runs one space, drop the WSP after the
     * colon and at the end. A pending space is written only before the next other byte. */
    bool space = false, started = false;
    for (size_t i = colon + 1; i < len; i++) {
        char c = field[i];
        if (c == '\r' && i + 1 < len && field[i + 1] == '\n') {
            i++;
            continue;
        }
        if (dkim_wsp(c)) {
            space = true;
            continue;
        }
        if (space && started)
            buf_put(&b, " ", 1);
        space = false;
        started = true;
        buf_put(&b, &c, 1);
    }
    return buf_take(&b, out_len);
}

/* The body canonicaliser writes through a sink: to a buffer for dkim_canon_body, into a digest
 * for dkim_body_hash, so that hashing a large body needs no copy of it. */
struct dkim_sink {
    struct buf *buf;
    EVP_MD_CTX *md;
    bool failed;
};

static void dkim_sink_put(struct dkim_sink *s, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (s->buf)
        buf_put(s->buf, p, n);
    if (s->md && EVP_DigestUpdate(s->md, p, n) != 1)
        s->failed = true;
}

static void dkim_canon_body_to(const char *body, size_t len, struct dkim_sink *s)
{
    size_t empty = 0; /* empty lines seen and not yet written: dropped if nothing follows */
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && !(body[end] == '\r' && end + 1 < len && body[end + 1] == '\n'))
            end++;
        /* The line i..end without its WSP at the end; inner WSP runs become one space. */
        size_t last = end;
        while (last > i && dkim_wsp(body[last - 1]))
            last--;
        if (last == i) {
            empty++;
        } else {
            for (; empty > 0; empty--)
                dkim_sink_put(s, "\r\n", 2);
            size_t run = i;
            for (size_t k = i; k < last; k++) {
                if (dkim_wsp(body[k])) {
                    dkim_sink_put(s, body + run, k - run);
                    dkim_sink_put(s, " ", 1);
                    while (k + 1 < last && dkim_wsp(body[k + 1]))
                        k++;
                    run = k + 1;
                }
            }
            dkim_sink_put(s, body + run, last - run);
            dkim_sink_put(s, "\r\n", 2);
        }
        i = end < len ? end + 2 : len;
    }
}

char *dkim_canon_body(const char *body, size_t len, size_t *out_len)
{
    struct buf b = {0};
    struct dkim_sink s = {.buf = &b};
    dkim_canon_body_to(body, len, &s);
    return buf_take(&b, out_len);
}

ipw_status dkim_body_hash(const char *body, size_t len, char out[DKIM_BH_LEN + 1], struct err *e)
{
    out[0] = '\0';
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md)
        return err_set(e, IPW_ENOMEM, "out of memory");
    struct dkim_sink s = {.md = md};
    unsigned char digest[32];
    unsigned int dn = 0;
    bool ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    if (ok) {
        dkim_canon_body_to(body, len, &s);
        ok = !s.failed && EVP_DigestFinal_ex(md, digest, &dn) == 1 && dn == sizeof digest;
    }
    EVP_MD_CTX_free(md);
    if (!ok) {
        char why[256];
        return err_set(e, IPW_ESOFTWARE, "cannot hash the body: %s",
                       dkim_ossl_reason(why, sizeof why));
    }
    base64_encode(digest, sizeof digest, out);
    return IPW_OK;
}

/* ---- signing ---- */

ipw_status dkim_sign_data(const struct dkim_key *k, const void *data, size_t len, char **b64,
                          struct err *e)
{
    *b64 = NULL;
    char why[256];
    unsigned char hash[32];
    const void *in = data;
    size_t in_len = len;
    const EVP_MD *md = EVP_sha256();
    if (k->type == DKIM_ED25519) {
        /* RFC 8463 3: Ed25519 signs the SHA-256 hash of the data, not the data. */
        unsigned int hn = 0;
        if (EVP_Digest(data, len, hash, &hn, EVP_sha256(), NULL) != 1)
            return err_set(e, IPW_ESOFTWARE, "cannot hash the header: %s",
                           dkim_ossl_reason(why, sizeof why));
        in = hash;
        in_len = sizeof hash;
        md = NULL; /* PureEdDSA takes no digest of its own */
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return err_set(e, IPW_ENOMEM, "out of memory signing");
    ipw_status s = IPW_OK;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    if (EVP_DigestSignInit(ctx, NULL, md, NULL, k->pkey) != 1 ||
        EVP_DigestSign(ctx, NULL, &sig_len, in, in_len) != 1) {
        s = err_set(e, IPW_ESOFTWARE, "cannot sign: %s", dkim_ossl_reason(why, sizeof why));
        goto done;
    }
    sig = malloc(sig_len);
    if (!sig) {
        s = err_set(e, IPW_ENOMEM, "out of memory signing");
        goto done;
    }
    if (EVP_DigestSign(ctx, sig, &sig_len, in, in_len) != 1) {
        s = err_set(e, IPW_ESOFTWARE, "cannot sign: %s", dkim_ossl_reason(why, sizeof why));
        goto done;
    }
    *b64 = base64_encode_alloc(sig, sig_len);
    if (!*b64)
        s = err_set(e, IPW_ENOMEM, "out of memory signing");
done:
    free(sig);
    EVP_MD_CTX_free(ctx);
    return s;
}

/* A domain or selector as the tag grammar allows (RFC 6376 3.5 domain-name, selector:
 * sub-domains of letters, digits and '-', here also '_'), so that it cannot add a tag. */
static bool dkim_name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 253 || *s == '.')
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = chars_is_ldh(c) || c == '_' || (c == '.' && p[1] != '.' && p[1] != '\0');
        if (!ok)
            return false;
    }
    return true;
}

/* The field writer: appends words separated by sep, folding (CRLF SP) before a word that would
 * pass the 78th column. A fold is only ever put where the grammar allows FWS. */
struct dkim_fw {
    struct buf *b;
    size_t line_off;
};

static void dkim_fw_add(struct dkim_fw *w, const char *sep, const char *word, size_t n)
{
    size_t col = w->b->len - w->line_off;
    size_t seplen = strlen(sep);
    if (col + seplen + n > MESSAGE_FOLD_COLUMN && col > 0) {
        /* Keep the separator's non-space part on this line ("; " -> ";") when it fits there,
         * else carry it to the next line: h='s ":" may have FWS on either side (RFC 6376
         * 3.5), so the fold may go before it. Then fold and indent. */
        size_t keep = seplen;
        while (keep > 0 && sep[keep - 1] == ' ')
            keep--;
        bool carry = col + keep > MESSAGE_FOLD_COLUMN && sep[0] == ':';
        if (!carry)
            buf_put(w->b, sep, keep);
        buf_put(w->b, "\r\n ", 3);
        w->line_off = w->b->len - 1;
        if (carry)
            buf_put(w->b, sep, keep);
    } else {
        buf_put(w->b, sep, seplen);
    }
    buf_put(w->b, word, n);
}

/* Lower-cases an ASCII header name into buf (for h=; RFC 6376 3.5: names are compared without
 * regard to case, and lower case is what every signer writes). */
static void dkim_lower(const char *s, char *buf, size_t n)
{
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++)
        buf[i] = (char)chars_lower(s[i]);
    buf[i] = '\0';
}

/* The h= tag is written one name behind, so that the last name can carry the ";" that ends
 * the tag and a fold never leaves that ";" alone past the 78th column. */
struct dkim_hw {
    struct dkim_fw *w;
    char pending[140];
    bool first;
};

static void dkim_hw_flush(struct dkim_hw *hw, bool last)
{
    if (!hw->pending[0])
        return;
    char word[150];
    snprintf(word, sizeof word, "%s%s%s", hw->first ? "h=" : "", hw->pending, last ? ";" : "");
    dkim_fw_add(hw->w, hw->first ? " " : ":", word, strlen(word));
    hw->first = false;
    hw->pending[0] = '\0';
}

static void dkim_hw_add(struct dkim_hw *hw, const char *lower)
{
    dkim_hw_flush(hw, false);
    snprintf(hw->pending, sizeof hw->pending, "%s", lower);
}

ipw_status dkim_sign(const struct dkim_key *k, const struct dkim_sign_opts *opts, struct message *m,
                     int64_t now_ms, struct err *e)
{
    if (!dkim_name_ok(opts->domain))
        return err_set(e, IPW_EUSAGE, "the DKIM domain \"%s\" is not a domain name",
                       opts->domain ? opts->domain : "");
    if (!dkim_name_ok(opts->selector))
        return err_set(e, IPW_EUSAGE, "the DKIM selector \"%s\" is not a selector",
                       opts->selector ? opts->selector : "");
    if (message_field_find(m, "From") < 0)
        return err_set(e, IPW_EUSAGE, "the message has no From field to sign (RFC 6376 5.4)");
    const char *const *names = opts->headers ? opts->headers : dkim_default_headers;

    char bh[DKIM_BH_LEN + 1];
    ipw_status s = dkim_body_hash(m->data + m->body_off, m->len - m->body_off, bh, e);
    if (s)
        return s;

    struct buf field = {0}, data = {0};
    bool *used = calloc(m->n_fields + 1, sizeof *used);
    char *sig = NULL, *canon = NULL;
    if (!used) {
        s = err_set(e, IPW_ENOMEM, "out of memory signing");
        goto done;
    }

    /* The tags, in the order most signers use; b= last so that folding it is simple. */
    int64_t t = now_ms / 1000 - (now_ms % 1000 < 0 ? 1 : 0);
    char num[32];
    buf_str(&field, "DKIM-Signature:");
    struct dkim_fw w = {.b = &field, .line_off = 0};
    dkim_fw_add(&w, " ", "v=1;", 4);
    const char *alg = k->type == DKIM_ED25519 ? "a=ed25519-sha256;" : "a=rsa-sha256;";
    dkim_fw_add(&w, " ", alg, strlen(alg));
    dkim_fw_add(&w, " ", "c=relaxed/relaxed;", strlen("c=relaxed/relaxed;"));
    struct buf tag = {0};
    buf_str(&tag, "d=");
    buf_str(&tag, opts->domain);
    buf_str(&tag, ";");
    if (!tag.oom)
        dkim_fw_add(&w, " ", tag.p, tag.len);
    tag.len = 0;
    buf_str(&tag, "s=");
    buf_str(&tag, opts->selector);
    buf_str(&tag, ";");
    if (!tag.oom)
        dkim_fw_add(&w, " ", tag.p, tag.len);
    if (tag.oom)
        field.oom = true;
    free(tag.p);
    snprintf(num, sizeof num, "t=%" PRId64 ";", t);
    dkim_fw_add(&w, " ", num, strlen(num));
    if (opts->expire_s > 0) {
        snprintf(num, sizeof num, "x=%" PRId64 ";", t + opts->expire_s);
        dkim_fw_add(&w, " ", num, strlen(num));
    }

    /* h=: every occurrence of each name, taken from the bottom up (RFC 6376 5.4.2), then the
     * name once more to over-sign it; the selected fields go into the header hash in the
     * same order. */
    struct dkim_hw hw = {.w = &w, .first = true};
    for (size_t i = 0; names[i]; i++) {
        char lower[128];
        dkim_lower(names[i], lower, sizeof lower);
        size_t nl = strlen(names[i]);
        for (size_t f = m->n_fields; f-- > 0;) {
            const struct message_field *mf = &m->fields[f];
            if (used[f] || mf->name_len != nl || strncasecmp(m->data + mf->off, names[i], nl))
                continue;
            used[f] = true;
            size_t clen;
            char *c = dkim_canon_header(m->data + mf->off, mf->len, &clen);
            if (!c) {
                s = err_set(e, IPW_ENOMEM, "out of memory signing");
                goto done;
            }
            buf_put(&data, c, clen);
            buf_put(&data, "\r\n", 2);
            free(c);
            dkim_hw_add(&hw, lower);
        }
        /* The over-signing entry: no field left to match, so it hashes nothing (5.4.2) and a
         * field of this name added later breaks the signature. */
        dkim_hw_add(&hw, lower);
    }
    dkim_hw_flush(&hw, true);
    char bhtag[DKIM_BH_LEN + 5];
    snprintf(bhtag, sizeof bhtag, "bh=%s;", bh);
    dkim_fw_add(&w, " ", bhtag, strlen(bhtag));
    dkim_fw_add(&w, " ", "b=", 2);
    if (field.oom || data.oom) {
        s = err_set(e, IPW_ENOMEM, "out of memory signing");
        goto done;
    }

    /* RFC 6376 3.7: the signature field itself, with an empty b= and without its CRLF, ends
     * the header data. */
    size_t clen;
    canon = dkim_canon_header(field.p, field.len, &clen);
    if (!canon) {
        s = err_set(e, IPW_ENOMEM, "out of memory signing");
        goto done;
    }
    buf_put(&data, canon, clen);
    if (data.oom) {
        s = err_set(e, IPW_ENOMEM, "out of memory signing");
        goto done;
    }
    s = dkim_sign_data(k, data.p, data.len, &sig, e);
    if (s)
        goto done;

    /* b=: base64 may hold FWS anywhere (RFC 6376 2.4), so fill each line to the column. */
    size_t sl = strlen(sig);
    for (size_t off = 0; off < sl;) {
        size_t col = field.len - w.line_off;
        size_t room = col < MESSAGE_FOLD_COLUMN ? MESSAGE_FOLD_COLUMN - col : 0;
        if (room < 8) {
            buf_put(&field, "\r\n ", 3);
            w.line_off = field.len - 1;
            continue;
        }
        size_t take = sl - off < room ? sl - off : room;
        buf_put(&field, sig + off, take);
        off += take;
    }
    buf_put(&field, "\r\n", 2);
    if (field.oom) {
        s = err_set(e, IPW_ENOMEM, "out of memory signing");
        goto done;
    }
    s = message_prepend_field(m, field.p, field.len, e);
done:
    free(used);
    free(sig);
    free(canon);
    free(field.p);
    free(data.p);
    return s;
}

/* ---- tag=value lists ---- */

/* The value of tag in a tag=value list (RFC 6376 3.2; DMARC uses the same syntax) with every space
 * removed, into out; false when the tag is absent. */
bool dkim_tag(const char *txt, const char *tag, char *out, size_t n)
{
    size_t tl = strlen(tag);
    const char *s = txt;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ';' || *s == '\r' || *s == '\n')
            s++;
        const char *end = strchr(s, ';');
        if (!end)
            end = s + strlen(s);
        const char *eq = memchr(s, '=', (size_t)(end - s));
        if (eq) {
            const char *ke = eq;
            while (ke > s && (ke[-1] == ' ' || ke[-1] == '\t'))
                ke--;
            if ((size_t)(ke - s) == tl && strncasecmp(s, tag, tl) == 0) {
                size_t k = 0;
                for (const char *v = eq + 1; v < end; v++)
                    if (!chars_is_space((unsigned char)*v) && k + 1 < n)
                        out[k++] = *v;
                out[k] = '\0';
                return true;
            }
        }
        s = end;
    }
    return false;
}
