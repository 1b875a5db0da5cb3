/*
 * recipients: streaming reader of plain and CSV recipient lists (see recipients.h).
 *
 * Follows RFC 4180 (CSV: quoted fields, "" escapes, line breaks inside quotes, a header row),
 * RFC 5321 4.1.2 and 4.5.3.1 (Mailbox syntax and its length limits) and RFC 3629 (UTF-8, via
 * mime_utf8_valid, because column values end up in messages).
 *
 * The reader is a byte-at-a-time state machine over a fixed I/O buffer, writing one record
 * into a buffer that grows up to RECIPIENTS_RECORD_MAX and no further, so a list of a million
 * lines streams in the same memory as a list of ten. Positions are file offsets counted by the
 * reader itself (not ftello, which the read-ahead buffer makes useless), so the offset given
 * after a record is exactly where the next record starts. A bad record is always read to its
 * end before it is reported, which is what lets the caller skip it and go on.
 */
#include "ipwarm/recipients.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "ipwarm/chars.h"
#include "ipwarm/infile.h"
#include "ipwarm/mime.h"

struct recipients {
    FILE *f;
    char *path;
    unsigned char io[RECIPIENTS_IOBUF];
    size_t io_pos, io_len;
    bool io_eof, io_err;
    bool io_intr; /* the interrupt callback said stop: reads end as at end of file */
    int64_t pos;  /* file offset of the next byte to read */
    long line;    /* its line */

    bool opening;         /* in recipients_open: a line stops at the record limit (below) */
    bool wait_eol;        /* a last record without its line end is not read yet */
    int64_t unterminated; /* bytes of such a record met by the last recipients_next */
    bool (*interrupt)(void *arg);
    void *interrupt_arg;
    uint64_t hdr_digest; /* FNV-1a of the header's fields: part of every record's digest */
    /* The SHA-256 of the bytes the reader consumed: h covers [0, h_pos), where h_pos stays in
     * the I/O buffer's window [io_off, io_off + io_len] while h_ok; h_mark is a copy taken at
     * the start of the record being read (h_mark_pos), to go back to when that record is
     * given back (an unterminated last line, a stop). Hashing what was parsed, not the file
     * later, is what makes "the part read is unchanged" exact even when the file is written
     * while it is read. */
    EVP_MD_CTX *h, *h_mark;
    bool h_ok, h_mark_ok;
    int64_t h_pos, h_mark_pos;
    int64_t io_off; /* file offset of io[0] */

    bool csv;
    char *hdr; /* the header's fields, NUL-separated; cols point into it */
    size_t hdr_size;
    const char **cols;
    size_t n_cols;
    size_t addr_col;
    int64_t data_off;
    long data_line;

    char *rec; /* the current record, fields NUL-terminated */
    size_t rec_len, rec_cap;
    bool rec_overflow, oom;
    size_t *field_off;   /* RECIPIENTS_COLUMNS_MAX + 1 field starts in rec */
    const char **values; /* n_cols values of the current record */
    char addr[RECIPIENTS_ADDR_MAX + 1];
};

/* ---- bytes ---- */

/* Adds the buffered bytes [h_pos, upto) to the running hash; upto must lie in the buffer's
 * window. A hash that cannot follow (out of memory) is given up: it is computed again. */
static void recipients_hash_to(struct recipients *r, int64_t upto)
{
    if (!r->h_ok)
        return;
    if (r->h_pos < r->io_off || upto < r->h_pos || upto > r->io_off + (int64_t)r->io_len) {
        r->h_ok = false;
        return;
    }
    if (upto > r->h_pos &&
        EVP_DigestUpdate(r->h, r->io + (r->h_pos - r->io_off), (size_t)(upto - r->h_pos)) != 1)
        r->h_ok = false;
    r->h_pos = upto;
}

/* Marks the start of a record: the hash up to here is kept to come back to. */
static void recipients_hash_mark(struct recipients *r)
{
    recipients_hash_to(r, r->pos);
    r->h_mark_ok = r->h_ok && EVP_MD_CTX_copy_ex(r->h_mark, r->h) == 1;
    r->h_mark_pos = r->pos;
}

static bool recipients_fill(struct recipients *r)
{
    if (r->io_pos < r->io_len)
        return true;
    if (r->io_eof || r->io_err || r->io_intr)
        return false;
    /* Asked once per buffer, so that a stop request ends even a read through one enormous
     * line within 16 KiB. */
    if (r->interrupt && r->interrupt(r->interrupt_arg)) {
        r->io_intr = true;
        return false;
    }
    /* Every byte of the buffer was consumed: into the hash before it is overwritten. */
    recipients_hash_to(r, r->io_off + (int64_t)r->io_len);
    size_t got = fread(r->io, 1, sizeof r->io, r->f);
    if (got == 0) {
        if (ferror(r->f))
            r->io_err = true;
        else
            r->io_eof = true;
        return false;
    }
    r->io_off = r->pos;
    r->io_pos = 0;
    r->io_len = got;
    return true;
}

static int recipients_getc(struct recipients *r)
{
    if (!recipients_fill(r))
        return -1;
    int c = r->io[r->io_pos++];
    r->pos++;
    if (c == '\n')
        r->line++;
    return c;
}

static int recipients_peek(struct recipients *r)
{
    return recipients_fill(r) ? r->io[r->io_pos] : -1;
}

static ipw_status recipients_goto(struct recipients *r, int64_t off, long line, struct err *e)
{
    /* The hash follows when the reader goes back to the record it marked or forward within
     * its buffer; anywhere else it is computed again when asked for. */
    if (r->h_mark_ok && off == r->h_mark_pos) {
        r->h_ok = EVP_MD_CTX_copy_ex(r->h, r->h_mark) == 1;
        r->h_pos = off;
    } else if (r->h_ok && off >= r->h_pos && off <= r->io_off + (int64_t)r->io_len) {
        recipients_hash_to(r, off);
    } else {
        r->h_ok = false;
    }
    clearerr(r->f);
    if (fseeko(r->f, (off_t)off, SEEK_SET) != 0)
        return err_set(e, IPW_EIO, "%s: cannot seek to byte %lld: %s", r->path, (long long)off,
                       strerror(errno));
    r->io_pos = r->io_len = 0;
    r->io_off = off;
    r->io_eof = r->io_err = r->io_intr = false;
    r->pos = off;
    r->line = line;
    return IPW_OK;
}

/* FNV-1a, 64 bits: the digest of a record, to notice that its line changed (not a defence
 * against anyone: the list is the operator's own file). */
#define RECIPIENTS_FNV_BASIS 14695981039346656037ULL

static uint64_t recipients_fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* ---- the record buffer ---- */

/* Appends one byte of the record; past RECIPIENTS_RECORD_MAX the record is marked too long and
 * the rest is read but not kept. One more byte is always left for the final NUL. */
static void recipients_put(struct recipients *r, char c)
{
    if (r->rec_len >= RECIPIENTS_RECORD_MAX) {
        r->rec_overflow = true;
        return;
    }
    if (r->rec_len + 2 > r->rec_cap) {
        size_t cap = r->rec_cap ? r->rec_cap * 2 : 256;
        if (cap > RECIPIENTS_RECORD_MAX + 1)
            cap = RECIPIENTS_RECORD_MAX + 1;
        char *np = realloc(r->rec, cap);
        if (!np) {
            r->oom = true;
            r->rec_overflow = true;
            return;
        }
        r->rec = np;
        r->rec_cap = cap;
    }
    r->rec[r->rec_len++] = c;
    r->rec[r->rec_len] = '\0';
}

static void recipients_rec_reset(struct recipients *r)
{
    r->rec_len = 0;
    r->rec_overflow = false;
    r->rec[0] = '\0';
}

/* ---- parsing ---- */

/* Reads one physical line (to LF, CR before it dropped) as the record; *eol says whether it
 * ended with its LF. Returns false at end of file with nothing read. */
static bool recipients_read_line(struct recipients *r, const char **problem, bool *eol)
{
    int64_t start = r->pos;
    recipients_rec_reset(r);
    int c;
    while ((c = recipients_getc(r)) >= 0 && c != '\n') {
        if (c == '\0')
            *problem = "NUL byte in the line";
        recipients_put(r, (char)c);
        /* Opening reads the first line to decide the format and the header: past the limit
         * that is decided (and a header that long refused), and the rest, however long, is
         * left to recipients_next, which a caller can interrupt. */
        if (r->opening && r->rec_overflow)
            break;
    }
    *eol = c == '\n';
    if (r->rec_len > 0 && r->rec[r->rec_len - 1] == '\r')
        r->rec[--r->rec_len] = '\0';
    return r->pos != start;
}

enum recipients_csv_state { CSV_START, CSV_UNQUOTED, CSV_QUOTED, CSV_QUOTE, CSV_SKIP };

/*
 * Reads one CSV record (RFC 4180 2) as NUL-terminated fields in r->rec, their starts in
 * r->field_off, their number in *nf (which may pass RECIPIENTS_COLUMNS_MAX; later starts are
 * not kept). A malformed record is read to its end and *problem set; *problem_line is the
 * line a quote was opened on when it never closed. *ended is false when the end of the file
 * ended the record (no line end after it). Returns false at end of file with nothing read.
 */
static bool recipients_read_csv(struct recipients *r, size_t *nf, const char **problem,
                                long *problem_line, bool *ended)
{
    int64_t start = r->pos;
    enum recipients_csv_state st = CSV_START;
    long quote_line = 0;
    size_t fstart = 0;
    *nf = 0;
    *ended = true;
    recipients_rec_reset(r);
    for (;;) {
        if (r->opening && r->rec_overflow) {
            *ended = false; /* as in recipients_read_line */
            break;
        }
        int c = recipients_getc(r);
        bool eol = false;
        if (c < 0) {
            *ended = false;
            if (st == CSV_QUOTED && !*problem) {
                *problem = "unterminated quoted field";
                *problem_line = quote_line;
            }
            eol = true;
        } else if (st != CSV_QUOTED && c == '\n') {
            eol = true;
        } else if (st != CSV_QUOTED && c == '\r' && recipients_peek(r) == '\n') {
            recipients_getc(r);
            eol = true;
        } else if (c == '\0' && !*problem) {
            *problem = "NUL byte in the record";
            st = CSV_SKIP;
        }
        if (eol || (c == ',' && st != CSV_QUOTED && st != CSV_SKIP)) {
            if (st != CSV_SKIP) {
                recipients_put(r, '\0');
                if (*nf <= RECIPIENTS_COLUMNS_MAX)
                    r->field_off[*nf] = fstart;
                (*nf)++;
                fstart = r->rec_len;
                st = CSV_START;
            }
            if (eol)
                break;
            continue;
        }
        switch (st) {
        case CSV_START:
            if (c == '"') {
                st = CSV_QUOTED;
                quote_line = r->line;
            } else {
                recipients_put(r, (char)c);
                st = CSV_UNQUOTED;
            }
            break;
        case CSV_UNQUOTED:
            /* A quote inside an unquoted field is kept as it is (O"Brien): RFC 4180 does not
             * allow it, but refusing it would help nobody. */
            recipients_put(r, (char)c);
            break;
        case CSV_QUOTED:
            if (c == '"')
                st = CSV_QUOTE;
            else
                recipients_put(r, (char)c);
            break;
        case CSV_QUOTE:
            if (c == '"') {
                recipients_put(r, '"');
                st = CSV_QUOTED;
            } else {
                *problem = "a character after a closing quote (write \"\" for a quote inside "
                           "a quoted field)";
                st = CSV_SKIP;
            }
            break;
        case CSV_SKIP:
            break;
        }
    }
    return r->pos != start;
}

/* Trims spaces and tabs around s in place; returns the new start. */
static char *recipients_trim(char *s)
{
    while (chars_is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && chars_is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Writes s for a message: at most 80 bytes (whole UTF-8 characters), controls as \xNN. */
static void recipients_show(const char *s, char *out, size_t n)
{
    size_t o = 0, i = 0;
    for (; s[i] && o + 5 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 80 && (c & 0xC0) != 0x80) {
            break;
        } else if (c < 0x20 || c == 0x7F || c == '"' || c == '\\') {
            int w = c == '"' || c == '\\' ? snprintf(out + o, n - o, "\\%c", c)
                                          : snprintf(out + o, n - o, "\\x%02X", c);
            if (w > 0)
                o += (size_t)w;
        } else {
            out[o++] = (char)c;
        }
    }
    if (s[i] && o + 4 < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < n ? o : n - 1] = '\0';
}

/* ---- addresses ---- */

bool recipients_address(const char *s, char *out, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    size_t n = strlen(s);
    if (n == 0)
        return (*why = "empty"), false;
    /* The most helpful reason first: "Name <a@b>" is one mistake, not a space problem. */
    if (strpbrk(s, "<>"))
        return (*why = "write the bare address, without a display name or angle brackets"), false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            return (*why = "non-ASCII addresses need SMTPUTF8, which ipwarm does not use"), false;
        if (c == ' ' || c == '\t')
            return (*why = "it contains a space"), false;
        if (c < 0x20 || c == 0x7F)
            return (*why = "it contains a control character"), false;
    }
    if (n > RECIPIENTS_ADDR_MAX)
        return (*why = "longer than 254 octets"), false;
    const char *at = strrchr(s, '@');
    if (!at)
        return (*why = "no @"), false;
    size_t local_len = (size_t)(at - s);
    if (local_len == 0)
        return (*why = "the local part before @ is empty"), false;
    if (s[0] == '"')
        return (*why = "quoted local parts are not supported"), false;
    if (memchr(s, '@', local_len))
        return (*why = "more than one @"), false;
    if (local_len > 64)
        return (*why = "the local part is longer than 64 octets"), false;
    for (size_t i = 0; i < local_len; i++) {
        if (s[i] == '.') {
            if (i == 0 || i + 1 == local_len || s[i + 1] == '.')
                return (*why = "the local part starts or ends with a dot or has two in a row"),
                       false;
        } else if (!chars_is_atext((unsigned char)s[i])) {
            return (*why = "the local part has a character that would need quoting"), false;
        }
    }
    const char *d = at + 1;
    size_t dlen = strlen(d);
    if (dlen == 0)
        return (*why = "the domain after @ is empty"), false;
    if (d[0] == '[')
        return (*why = "address literals are not supported"), false;
    if (dlen > 253)
        return (*why = "the domain is longer than 253 octets"), false;
    if (d[dlen - 1] == '.')
        return (*why = "the domain ends with a dot"), false;
    size_t labels = 0, label_len = 0;
    bool all_digits = true;
    for (size_t i = 0; i <= dlen; i++) {
        char c = d[i];
        if (c == '.' || c == '\0') {
            if (label_len == 0)
                return (*why = "the domain has an empty label"), false;
            if (d[i - 1] == '-' || d[i - label_len] == '-')
                return (*why = "a domain label starts or ends with '-'"), false;
            labels++;
            if (c == '\0')
                break;
            label_len = 0;
            all_digits = true;
            continue;
        }
        bool digit = chars_is_digit(c);
        if (!chars_is_ldh(c))
            return (*why = "the domain has a character other than letters, digits, '-' and '.'"),
                   false;
        all_digits = all_digits && digit;
        if (++label_len > 63)
            return (*why = "a domain label is longer than 63 octets"), false;
    }
    if (labels < 2)
        return (*why = "the domain has no dot"), false;
    if (all_digits)
        return (*why = "the domain's last label is all digits"), false;
    memcpy(out, s, local_len + 1);
    for (size_t i = 0; i <= dlen; i++) {
        char c = d[i];
        out[local_len + 1 + i] = (char)chars_lower(c);
    }
    return true;
}

/* ---- opening ---- */

static ipw_status recipients_header(struct recipients *r, const char *column, struct err *e)
{
    long line = r->line;
    size_t nf = 0;
    const char *problem = NULL;
    long problem_line = 0;
    bool ended;
    recipients_read_csv(r, &nf, &problem, &problem_line, &ended);
    if (r->oom)
        return err_set(e, IPW_ENOMEM, "out of memory reading %s", r->path);
    if (r->io_err)
        return err_set(e, IPW_EIO, "%s: read error", r->path);
    if (problem)
        return err_set(e, IPW_EDATA, "%s:%ld: CSV header: %s", r->path,
                       problem_line ? problem_line : line, problem);
    if (r->rec_overflow)
        return err_set(e, IPW_EDATA, "%s:%ld: CSV header longer than %d bytes", r->path, line,
                       RECIPIENTS_RECORD_MAX);
    if (nf > RECIPIENTS_COLUMNS_MAX)
        return err_set(e, IPW_EDATA, "%s:%ld: CSV header has %zu columns, at most %d are read",
                       r->path, line, nf, RECIPIENTS_COLUMNS_MAX);
    size_t bad;
    if (!mime_utf8_valid(r->rec, r->rec_len, &bad))
        return err_set(e, IPW_EDATA, "%s:%ld: CSV header: invalid UTF-8", r->path, line);
    r->hdr = malloc(r->rec_len + 1);
    r->cols = calloc(nf, sizeof *r->cols);
    r->values = calloc(nf, sizeof *r->values);
    if (!r->hdr || !r->cols || !r->values)
        return err_set(e, IPW_ENOMEM, "out of memory reading %s", r->path);
    memcpy(r->hdr, r->rec, r->rec_len + 1);
    r->hdr_size = r->rec_len + 1;
    r->hdr_digest = recipients_fnv(RECIPIENTS_FNV_BASIS, r->hdr, r->rec_len);
    r->n_cols = nf;
    bool found = false;
    for (size_t i = 0; i < nf; i++) {
        r->cols[i] = recipients_trim(r->hdr + r->field_off[i]);
        for (size_t k = 0; k < i; k++)
            if (r->cols[i][0] && strcasecmp(r->cols[i], r->cols[k]) == 0)
                return err_set(e, IPW_EDATA, "%s:%ld: CSV header names column \"%s\" twice",
                               r->path, line, r->cols[i]);
        if (!found && strcasecmp(r->cols[i], column) == 0) {
            r->addr_col = i;
            found = true;
        }
    }
    if (!found) {
        char list[512];
        size_t used = 0;
        list[0] = '\0';
        for (size_t i = 0; i < nf; i++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", r->cols[i]);
            if (w < 0 || (size_t)w >= sizeof list - used)
                break;
            used += (size_t)w;
        }
        return err_set(e, IPW_EDATA, "%s:%ld: the CSV header has no column \"%s\" (columns: %s)",
                       r->path, line, column, list);
    }
    return IPW_OK;
}

/* Finds the first line that is neither blank nor a comment and decides the format: CSV when
 * it has a comma or is the address column's name (a one-column CSV), else plain text. */
static ipw_status recipients_detect(struct recipients *r, const char *column, struct err *e)
{
    for (;;) {
        int64_t off = r->pos;
        long line = r->line;
        const char *problem = NULL;
        bool eol;
        if (!recipients_read_line(r, &problem, &eol)) {
            r->data_off = r->pos; /* empty list */
            r->data_line = r->line;
            return r->io_err ? err_set(e, IPW_EIO, "%s: read error", r->path) : IPW_OK;
        }
        char *t = recipients_trim(r->rec);
        /* A line cut at the limit is not known to be blank or a comment (NUL bytes look
         * empty): the list starts there, as plain text, and reading it reports the line. */
        bool whole = !problem && !r->rec_overflow;
        if (whole && (*t == '\0' || *t == '#'))
            continue;
        size_t n = strlen(t);
        if (n >= 2 && t[0] == '"' && t[n - 1] == '"') {
            t[n - 1] = '\0';
            t++;
        }
        r->csv = whole && (strchr(t, ',') != NULL || strcasecmp(t, column) == 0);
        ipw_status s = recipients_goto(r, off, line, e);
        if (s)
            return s;
        if (r->csv) {
            s = recipients_header(r, column, e);
            if (s)
                return s;
        }
        r->data_off = r->pos;
        r->data_line = r->line;
        return IPW_OK;
    }
}

/*
 * Opens r->path for reading, refusing anything but a regular file (infile_open_fd): a list is
 * read again from its start whenever it changes and its size and times say whether it did,
 * which a pipe or a device cannot give (/dev/zero would be read for ever).
 */
static ipw_status recipients_open_file(struct recipients *r, struct err *e)
{
    const char *kind;
    int fd = infile_open_fd(r->path, &kind);
    if (fd < 0 && kind)
        return err_set(e, IPW_ENOINPUT,
                       "%s is %s, not a regular file: the recipient list must be a file", r->path,
                       kind);
    if (fd < 0)
        return err_set(e, IPW_ENOINPUT, "cannot open %s: %s", r->path, strerror(errno));
    r->f = fdopen(fd, "rb");
    if (!r->f) {
        int err = errno;
        close(fd);
        return err_set(e, IPW_ENOMEM, "cannot open %s: %s", r->path, strerror(err));
    }
    return IPW_OK;
}

ipw_status recipients_open(const char *path, const char *column, struct recipients **out,
                           struct err *e)
{
    *out = NULL;
    if (!column || !*column)
        column = "email";
    struct recipients *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, IPW_ENOMEM, "out of memory opening %s", path);
    size_t plen = strlen(path) + 1;
    r->path = malloc(plen);
    r->field_off = calloc(RECIPIENTS_COLUMNS_MAX + 1, sizeof *r->field_off);
    /* The record buffer exists from the start, so an empty line is "" and never NULL. */
    r->rec_cap = 256;
    r->rec = calloc(1, r->rec_cap);
    ipw_status s;
    if (!r->path || !r->field_off || !r->rec) {
        s = err_set(e, IPW_ENOMEM, "out of memory opening %s", path);
        goto fail;
    }
    memcpy(r->path, path, plen);
    r->line = 1;
    r->h = EVP_MD_CTX_new();
    r->h_mark = EVP_MD_CTX_new();
    if (!r->h || !r->h_mark) {
        s = err_set(e, IPW_ENOMEM, "out of memory opening %s", path);
        goto fail;
    }
    r->h_ok = EVP_DigestInit_ex(r->h, EVP_sha256(), NULL) == 1;
    s = recipients_open_file(r, e);
    if (s)
        goto fail;
    /* A UTF-8 BOM (spreadsheet exports write one) is not part of the first line. Offsets stay
     * file offsets, so a stored position still seeks right. */
    if (recipients_peek(r) == 0xEF && r->io_len - r->io_pos >= 3 &&
        memcmp(r->io + r->io_pos, "\xEF\xBB\xBF", 3) == 0) {
        r->io_pos += 3;
        r->pos += 3;
    }
    r->opening = true;
    s = recipients_detect(r, column, e);
    r->opening = false;
    if (s)
        goto fail;
    *out = r;
    return IPW_OK;
fail:
    recipients_close(r);
    return s;
}

void recipients_close(struct recipients *r)
{
    if (!r)
        return;
    if (r->f)
        fclose(r->f);
    EVP_MD_CTX_free(r->h);
    EVP_MD_CTX_free(r->h_mark);
    free(r->path);
    free(r->hdr);
    free(r->cols);
    free(r->values);
    free(r->rec);
    free(r->field_off);
    free(r);
}

/* ---- records ---- */

static bool recipients_blank_record(const struct recipients *r, size_t nf)
{
    for (size_t i = 0; i < nf && i <= RECIPIENTS_COLUMNS_MAX; i++)
        for (const char *p = r->rec + r->field_off[i]; *p; p++)
            if (!chars_is_blank(*p))
                return false;
    return true;
}

ipw_status recipients_next(struct recipients *r, struct recipients_rec *rec, struct err *e)
{
    r->unterminated = 0;
    for (;;) {
        memset(rec, 0, sizeof *rec);
        rec->offset = r->pos;
        rec->line = r->line;
        recipients_hash_mark(r);
        const char *problem = NULL;
        long problem_line = 0;
        size_t nf = 0;
        bool ended = true;
        bool got = r->csv ? recipients_read_csv(r, &nf, &problem, &problem_line, &ended)
                          : recipients_read_line(r, &problem, &ended);
        if (r->oom)
            return err_set(e, IPW_ENOMEM, "out of memory reading %s", r->path);
        if (r->io_err)
            return err_set(e, IPW_EIO, "%s:%ld: read error", r->path, r->line);
        if (r->io_intr) {
            /* Back to the record's start, so that a later call reads it whole. */
            ipw_status g = recipients_goto(r, rec->offset, rec->line, e);
            return g ? g : err_set(e, IPW_ETEMP, "%s:%ld: reading stopped", r->path, rec->line);
        }
        if (!got)
            return err_set(e, IPW_ENOTFOUND, "%s: end of the list", r->path);
        if (!ended && r->wait_eol && !r->rec_overflow) {
            /* The file may still be being written: "p2@good.evil.te" can be the first half of
             * "p2@good.evil.test". Not read until its line end comes or the caller says the
             * file has settled; a record over the limit is bad however it ends. */
            r->unterminated = r->pos - rec->offset;
            ipw_status g = recipients_goto(r, rec->offset, rec->line, e);
            return g ? g
                     : err_set(e, IPW_ENOTFOUND, "%s:%ld: the last line has no line end yet",
                               r->path, rec->line);
        }
        rec->next_offset = r->pos;
        rec->next_line = r->line;
        rec->digest = recipients_fnv(r->hdr_digest ^ RECIPIENTS_FNV_BASIS, r->rec, r->rec_len);
        if (problem)
            return err_set(e, IPW_EDATA, "%s:%ld: %s", r->path,
                           problem_line ? problem_line : rec->line, problem);
        if (r->rec_overflow)
            return err_set(e, IPW_EDATA, "%s:%ld: record longer than %d bytes", r->path, rec->line,
                           RECIPIENTS_RECORD_MAX);

        char *addr;
        if (r->csv) {
            if (recipients_blank_record(r, nf))
                continue;
            if (nf != r->n_cols)
                return err_set(e, IPW_EDATA, "%s:%ld: %zu field%s, but the header has %zu%s",
                               r->path, rec->line, nf, nf == 1 ? "" : "s", r->n_cols,
                               nf > r->n_cols ? " (a comma inside a value needs quotes)" : "");
            for (size_t i = 0; i < nf; i++) {
                const char *v = r->rec + r->field_off[i];
                if (!mime_utf8_valid(v, strlen(v), NULL))
                    return err_set(e, IPW_EDATA, "%s:%ld: invalid UTF-8 in column \"%s\"", r->path,
                                   rec->line, r->cols[i]);
            }
            addr = recipients_trim(r->rec + r->field_off[r->addr_col]);
            for (size_t i = 0; i < nf; i++)
                r->values[i] = i == r->addr_col ? addr : r->rec + r->field_off[i];
            rec->values = r->values;
            rec->n_values = r->n_cols;
        } else {
            addr = recipients_trim(r->rec);
            if (*addr == '\0' || *addr == '#')
                continue;
            size_t bad;
            if (!mime_utf8_valid(addr, strlen(addr), &bad))
                return err_set(e, IPW_EDATA, "%s:%ld: invalid UTF-8 at byte %zu of the line",
                               r->path, rec->line, bad + 1);
        }
        const char *why = NULL;
        if (!recipients_address(addr, r->addr, &why)) {
            char shown[400];
            recipients_show(addr, shown, sizeof shown);
            return err_set(e, IPW_EDATA, "%s:%ld: \"%s\" is not an e-mail address: %s", r->path,
                           rec->line, shown, why);
        }
        rec->address = r->addr;
        rec->domain = strchr(r->addr, '@') + 1;
        return IPW_OK;
    }
}

ipw_status recipients_seek(struct recipients *r, int64_t offset, long line, struct err *e)
{
    if (offset < r->data_off)
        return err_set(e, IPW_EUSAGE,
                       "%s: cannot resume at byte %lld, before the first record (byte %lld)",
                       r->path, (long long)offset, (long long)r->data_off);
    return recipients_goto(r, offset, line > 0 ? line : r->data_line, e);
}

ipw_status recipients_rewind(struct recipients *r, struct err *e)
{
    return recipients_goto(r, r->data_off, r->data_line, e);
}

const char *const *recipients_columns(const struct recipients *r, size_t *n)
{
    *n = r->csv ? r->n_cols : 0;
    return r->csv ? r->cols : NULL;
}

bool recipients_is_csv(const struct recipients *r)
{
    return r->csv;
}

int64_t recipients_data_offset(const struct recipients *r)
{
    return r->data_off;
}

long recipients_data_line(const struct recipients *r)
{
    return r->data_line;
}

size_t recipients_memory(const struct recipients *r)
{
    return sizeof *r + strlen(r->path) + 1 + r->rec_cap + r->hdr_size +
           (RECIPIENTS_COLUMNS_MAX + 1) * sizeof *r->field_off +
           r->n_cols * (sizeof *r->cols + sizeof *r->values);
}

/* ---- a changing file ---- */

void recipients_wait_for_line_end(struct recipients *r, bool wait)
{
    r->wait_eol = wait;
}

int64_t recipients_unterminated(const struct recipients *r)
{
    return r->unterminated;
}

void recipients_set_interrupt(struct recipients *r, bool (*fn)(void *arg), void *arg)
{
    r->interrupt = fn;
    r->interrupt_arg = arg;
}

static void recipients_state_from(const struct stat *sb, struct recipients_file_state *out)
{
    out->dev = (int64_t)sb->st_dev;
    out->ino = (int64_t)sb->st_ino;
    out->size = (int64_t)sb->st_size;
    out->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    out->ctime_ns = (int64_t)sb->st_ctim.tv_sec * 1000000000 + sb->st_ctim.tv_nsec;
}

ipw_status recipients_stat(const char *path, struct recipients_file_state *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return err_set(e, IPW_ENOINPUT, "cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return err_set(e, IPW_ENOINPUT,
                       "%s is %s, not a regular file: the recipient list must be a file", path,
                       infile_kind(sb.st_mode));
    recipients_state_from(&sb, out);
    return IPW_OK;
}

ipw_status recipients_fstat(const struct recipients *r, struct recipients_file_state *out,
                            struct err *e)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (fstat(fileno(r->f), &sb) != 0)
        return err_set(e, IPW_EIO, "%s: cannot stat: %s", r->path, strerror(errno));
    recipients_state_from(&sb, out);
    return IPW_OK;
}

void recipients_file_state_format(const struct recipients_file_state *s, char *out, size_t n)
{
    snprintf(out, n, "%lld:%lld:%lld:%lld:%lld", (long long)s->dev, (long long)s->ino,
             (long long)s->size, (long long)s->mtime_ns, (long long)s->ctime_ns);
}

bool recipients_settled(const struct recipients_file_state *s, int64_t now_real_ms)
{
    return now_real_ms - s->mtime_ns / 1000000 >= RECIPIENTS_SETTLE_MS;
}

/* Finishes a copy of ctx into hex. */
static ipw_status recipients_hex(const EVP_MD_CTX *ctx, char hex[RECIPIENTS_SHA256_HEX],
                                 struct err *e)
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!copy || EVP_MD_CTX_copy_ex(copy, ctx) != 1 || EVP_DigestFinal_ex(copy, md, &mdlen) != 1) {
        EVP_MD_CTX_free(copy);
        return err_set(e, IPW_ENOMEM, "out of memory");
    }
    EVP_MD_CTX_free(copy);
    for (unsigned int i = 0; i < mdlen && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return IPW_OK;
}

/* Hashes the file's current first upto bytes into ctx (initialised here), reading them with
 * pread: the reader's own position and buffer stay as they are. */
static ipw_status recipients_sha_file(struct recipients *r, int64_t upto, EVP_MD_CTX *ctx,
                                      struct err *e)
{
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        return err_set(e, IPW_ESOFTWARE, "%s: SHA-256 is not available", r->path);
    unsigned char buf[16384];
    int fd = fileno(r->f);
    int64_t at = 0;
    while (at < upto) {
        if (r->interrupt && r->interrupt(r->interrupt_arg))
            return err_set(e, IPW_ETEMP, "%s: reading stopped", r->path);
        size_t want = sizeof buf;
        if ((int64_t)want > upto - at)
            want = (size_t)(upto - at);
        ssize_t got = pread(fd, buf, want, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return err_set(e, IPW_EIO, "%s: read error: %s", r->path, strerror(errno));
        if (got == 0)
            return err_set(e, IPW_ENOTFOUND, "%s is shorter than %lld bytes", r->path,
                           (long long)upto);
        if (EVP_DigestUpdate(ctx, buf, (size_t)got) != 1)
            return err_set(e, IPW_ESOFTWARE, "%s: SHA-256 failed", r->path);
        at += got;
    }
    return IPW_OK;
}

ipw_status recipients_prefix_sha256(struct recipients *r, int64_t upto,
                                    char hex[RECIPIENTS_SHA256_HEX], struct err *e)
{
    hex[0] = '\0';
    if (r->h_mark_ok && upto == r->h_mark_pos)
        return recipients_hex(r->h_mark, hex, e);
    if (r->h_ok && upto >= r->h_pos && upto >= r->io_off &&
        upto <= r->io_off + (int64_t)r->io_len) {
        recipients_hash_to(r, upto);
        if (r->h_ok)
            return recipients_hex(r->h, hex, e);
    }
    /* Not where the reader is (a stored offset checked before reading on): the file's first
     * upto bytes, read again. The hash follows the reader from there if it is there now (or
     * seeks there next). */
    r->h_ok = r->h_mark_ok = false;
    ipw_status s = recipients_sha_file(r, upto, r->h, e);
    if (s != IPW_OK)
        return s;
    r->h_pos = upto;
    r->h_ok = true;
    if (!(upto >= r->io_off && upto <= r->io_off + (int64_t)r->io_len)) {
        r->h_mark_ok = EVP_MD_CTX_copy_ex(r->h_mark, r->h) == 1;
        r->h_mark_pos = upto;
        r->h_ok = false;
    }
    return recipients_hex(r->h_mark_ok && r->h_mark_pos == upto ? r->h_mark : r->h, hex, e);
}

ipw_status recipients_file_sha256(struct recipients *r, int64_t upto,
                                  char hex[RECIPIENTS_SHA256_HEX], struct err *e)
{
    hex[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return err_set(e, IPW_ENOMEM, "out of memory");
    ipw_status s = recipients_sha_file(r, upto, ctx, e);
    if (s == IPW_OK)
        s = recipients_hex(ctx, hex, e);
    EVP_MD_CTX_free(ctx);
    return s;
}

int64_t recipients_tell(const struct recipients *r, long *line)
{
    if (line)
        *line = r->line;
    return r->pos;
}
