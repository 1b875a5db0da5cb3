/*
 * secret: reading a password, judging its file's mode, and masking credentials that a server
 * echoes back (see secret.h).
 *
 * SASL (RFC 4422) carries credentials base64-encoded (RFC 4648 section 4) on the AUTH command
 * line or in the lines after a 334 (RFC 4954): AUTH PLAIN sends base64("authzid\0user\0pass")
 * (RFC 4616), AUTH LOGIN base64(user) then base64(pass). A server that repeats a command or a
 * line in its reply therefore repeats them in that form. The masker looks for three things: the
 * argument after "AUTH <mechanism>", every run of base64 characters that decodes (from any of
 * its four possible alignments, in case a letter sticks to its front) to bytes containing the
 * username or the password, and the password as it is. Masking more than needed costs a few
 * characters of a reply; missing one leaks a password into the state file for good.
 */
#include "ipwarm/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ipwarm/base64.h"
#include "ipwarm/chars.h"
#include "ipwarm/infile.h"

/* A password file holds a line, not a document. */
#define SECRET_FILE_MAX 4096

ipw_status secret_password_read(const char *env_name, const char *file, const char *key, char **out,
                                struct err *e)
{
    *out = NULL;
    if (env_name) {
        const char *pw = getenv(env_name);
        if (!pw || !*pw)
            return err_set(e, IPW_ECONFIG,
                           "%s: the environment variable %s is not set; export the password in it",
                           key, env_name);
        *out = strdup(pw);
        return *out ? IPW_OK : err_set(e, IPW_ENOMEM, "out of memory");
    }
    if (!file)
        return err_set(e, IPW_ECONFIG, "%s: no password configured", key);
    char *text;
    size_t len;
    ipw_status s = infile_read(file, key, SECRET_FILE_MAX, &text, &len, e);
    if (s != IPW_OK)
        return s;
    size_t line = strcspn(text, "\r\n");
    if (line == 0 || memchr(text, '\0', line)) {
        explicit_bzero(text, len);
        free(text);
        return err_set(e, IPW_EDATA, "%s: %s holds no password (%s)", key, file,
                       line == 0 ? "its first line is empty" : "its first line holds a NUL byte");
    }
    /* The rest of the buffer (later lines) is wiped with it: secret_free wipes to the NUL. */
    explicit_bzero(text + line, len - line);
    *out = text;
    return IPW_OK;
}

void secret_free(char *password)
{
    if (!password)
        return;
    explicit_bzero(password, strlen(password));
    free(password);
}

bool secret_file_warning(const char *path, const char *key, char *warn, size_t n)
{
    if (n > 0)
        warn[0] = '\0';
    struct stat st;
    if (!path || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    mode_t m = st.st_mode & 07777;
    if (!(m & (S_IROTH | S_IWOTH)))
        return false;
    snprintf(warn, n,
             "%s: %s is %s by every user (mode %04o): chmod 0600 it (or 0640 with the sending "
             "user's group)",
             key, path,
             (m & S_IROTH) && (m & S_IWOTH) ? "readable and writable"
             : (m & S_IROTH)                ? "readable"
                                            : "writable",
             (unsigned)m);
    return true;
}

/* ---- masking ---- */

static bool secret_contains(const unsigned char *hay, size_t n, const char *needle)
{
    size_t k = needle ? strlen(needle) : 0;
    if (k == 0 || k > n)
        return false;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

/* Does the base64 run s[0..len) decode, from one of its first four offsets, to bytes that
 * contain the username or the password? */
static bool secret_b64_reveals(const char *s, size_t len, const char *user, const char *pw)
{
    if (len < 4)
        return false;
    size_t room = BASE64_DECODED_MAX(len);
    unsigned char *buf = malloc(room);
    if (!buf)
        return true; /* cannot tell: mask it */
    bool hit = false;
    for (size_t off = 0; off < 4 && off + 4 <= len && !hit; off++) {
        size_t n = 0;
        /* an unpadded tail of 2 or 3 characters gives 1 or 2 more bytes, as padding would */
        if (!base64_decode(s + off, len - off, buf, &n))
            hit = true; /* not base64 after all: cannot happen for a run, mask it */
        else
            hit = secret_contains(buf, n, user) || secret_contains(buf, n, pw);
    }
    explicit_bzero(buf, room);
    free(buf);
    return hit;
}

/* Marks text[from..to) for masking in mark[]. */
static void secret_mark(bool *mark, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        mark[i] = true;
}

static bool secret_is_word_char(unsigned char c)
{
    return chars_is_alnum(c) || c == '-' || c == '_';
}

/* One round of secret_mask: marks every span, then replaces each. Returns the spans. */
static size_t secret_mask_once(char *text, const char *username, const char *password)
{
    if (!text || !*text)
        return 0;
    const char *user = username && *username ? username : NULL;
    const char *pw = password && *password ? password : NULL;
    size_t len = strlen(text);
    bool *mark = calloc(len, sizeof *mark);
    if (!mark) {
        /* No room to be careful: say nothing rather than risk the password. */
        explicit_bzero(text, len);
        if (len >= strlen(SECRET_MASK))
            memcpy(text, SECRET_MASK, strlen(SECRET_MASK));
        return 1;
    }

    /* "AUTH <mechanism> <argument>": whatever follows the mechanism is a credential. */
    for (size_t i = 0; i + 4 <= len; i++) {
        if (strncasecmp(text + i, "AUTH", 4) != 0 ||
            (i > 0 && secret_is_word_char((unsigned char)text[i - 1])))
            continue;
        size_t j = i + 4;
        if (j >= len || (text[j] != ' ' && text[j] != '\t'))
            continue;
        while (j < len && (text[j] == ' ' || text[j] == '\t'))
            j++;
        size_t mech = j;
        while (j < len && secret_is_word_char((unsigned char)text[j]))
            j++;
        if (j == mech || j >= len || (text[j] != ' ' && text[j] != '\t'))
            continue;
        while (j < len && (text[j] == ' ' || text[j] == '\t'))
            j++;
        /* An argument that starts with '*' is a mask already (or SASL's "*" that cancels an
         * exchange): nothing to hide, and masking it again would eat what follows it. */
        if (j >= len || text[j] == '*')
            continue;
        size_t arg = j;
        while (j < len && !chars_is_space((unsigned char)text[j]))
            j++;
        secret_mark(mark, arg, j);
    }

    /* Base64 runs that decode to the username or the password. */
    if (user || pw) {
        for (size_t i = 0; i < len;) {
            if (!base64_is_char(text[i])) {
                i++;
                continue;
            }
            size_t j = i;
            while (j < len && base64_is_char(text[j]))
                j++;
            size_t end = j;
            while (end < len && text[end] == '=')
                end++;
            if (secret_b64_reveals(text + i, j - i, user, pw))
                secret_mark(mark, i, end);
            i = end;
        }
    }

    /* The password as it is. */
    if (pw) {
        size_t k = strlen(pw);
        for (size_t i = 0; i + k <= len; i++)
            if (memcmp(text + i, pw, k) == 0)
                secret_mark(mark, i, i + k);
    }

    /* Each marked span becomes SECRET_MASK (or as many '*' as it is long, if shorter). */
    size_t o = 0, spans = 0, ml = strlen(SECRET_MASK);
    for (size_t i = 0; i < len;) {
        if (!mark[i]) {
            text[o++] = text[i++];
            continue;
        }
        size_t j = i;
        while (j < len && mark[j])
            j++;
        size_t w = j - i < ml ? j - i : ml;
        for (size_t k = 0; k < w; k++)
            text[o++] = w == ml ? SECRET_MASK[k] : '*';
        spans++;
        i = j;
    }
    explicit_bzero(text + o, len - o);
    text[o] = '\0';
    free(mark);
    return spans;
}

size_t secret_mask(char *text, const char *username, const char *password)
{
    /* A mask can make a new match (a word that now starts after "***" reads as a fresh "AUTH"),
     * so rounds go on until the text no longer changes: masking the result again is a no-op.
     * Each round that changes the text shortens it or adds a '*', so this ends; the bound is
     * a guard. */
    size_t spans = secret_mask_once(text, username, password);
    size_t len = text ? strlen(text) : 0, cap = len + 1;
    char *before = spans ? malloc(cap) : NULL;
    for (int round = 0; before && round < 16; round++) {
        memcpy(before, text, len + 1);
        size_t more = secret_mask_once(text, username, password);
        if (strcmp(before, text) == 0)
            break;
        spans += more;
        len = strlen(text);
    }
    if (before) {
        explicit_bzero(before, cap);
        free(before);
    }
    return spans;
}
