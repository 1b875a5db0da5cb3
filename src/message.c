/*
 * message: MIME message composition for one recipient (see message.h).
 *
 * Decides what the message holds: which header fields in which order (RFC 5322 3.6), the
 * checks on addresses, the Message-ID and extra fields, RFC 2046 5.1 multipart/alternative
 * with a boundary that does not occur in the parts, the templates of a plan, and the offsets
 * of every field for the DKIM signer. How each piece is encoded and folded (RFC 2045, 2047,
 * 5322 2.2.3) is mime.c's.
 *
 * Writing goes through a growable buffer with a sticky out-of-memory flag, checked once at
 * the end, so that the many small appends of a header writer do not each need a check.
 */
#include "ipwarm/message.h"

#include "ipwarm/buf.h"
#include "ipwarm/chars.h"
#include "ipwarm/infile.h"
#include "ipwarm/mime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static bool message_contains(const struct buf *b, const char *needle)
{
    size_t m = strlen(needle);
    if (b->len < m)
        return false;
    for (size_t i = 0; i + m <= b->len; i++)
        if (b->p[i] == needle[0] && memcmp(b->p + i, needle, m) == 0)
            return true;
    return false;
}

/* ---- argument checks ---- */

/* A plausible addr-spec for a header: printable ASCII, no specials that would need quoting
 * outside the local part, one '@' with text on both sides. recipients.c validates list
 * addresses fully; this guards the header against whatever else a caller passes. */
static bool message_addr_ok(const char *a)
{
    const char *at = a ? strrchr(a, '@') : NULL;
    if (!at || at == a || at[1] == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p <= 0x20 || *p >= 0x7F || strchr("<>()[],;:\\\"", *p))
            return false;
    return true;
}

/* RFC 5322 3.2.3 dot-atom-text. */
static bool message_dot_atom_ok(const char *s)
{
    if (!s || !*s || s[0] == '.')
        return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (p[1] == '.' || p[1] == '\0')
                return false;
        } else if (!chars_is_atext((unsigned char)*p)) {
            return false;
        }
    }
    return true;
}

/* RFC 5322 3.6.8 ftext: printable ASCII except ':'. */
static bool message_field_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 76)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126 || s[i] == ':')
            return false;
    return true;
}

static bool message_ascii_value_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p >= 0x7F)
            return false;
    return true;
}

static ipw_status message_check_parts(const struct message_parts *p, struct err *e)
{
    if (!message_addr_ok(p->from_addr))
        return err_set(e, IPW_EDATA, "From: \"%s\" is not an address (local@domain)",
                       p->from_addr ? p->from_addr : "");
    if (!message_addr_ok(p->to_addr))
        return err_set(e, IPW_EDATA, "To: \"%s\" is not an address (local@domain)",
                       p->to_addr ? p->to_addr : "");
    if (!p->date || !*p->date || !message_ascii_value_ok(p->date) || strchr(p->date, '\t'))
        return err_set(e, IPW_EUSAGE, "Date: expected an RFC 5322 date, found \"%s\"",
                       p->date ? p->date : "");
    if (!message_dot_atom_ok(p->id_left))
        return err_set(e, IPW_EUSAGE,
                       "Message-ID: the unique part \"%s\" is not RFC 5322 dot-atom-text",
                       p->id_left ? p->id_left : "");
    if (p->id_domain && !message_dot_atom_ok(p->id_domain))
        return err_set(e, IPW_EUSAGE, "Message-ID: \"%s\" is not a domain", p->id_domain);
    const char *subject = p->subject ? p->subject : "";
    size_t bad;
    if (!mime_utf8_valid(subject, strlen(subject), &bad))
        return err_set(e, IPW_EDATA, "Subject: invalid UTF-8 at byte offset %zu", bad);
    if (strpbrk(subject, "\r\n"))
        return err_set(e, IPW_EDATA, "Subject: contains a line break");
    if (p->from_name) {
        if (!mime_utf8_valid(p->from_name, strlen(p->from_name), &bad))
            return err_set(e, IPW_EDATA, "From: display name: invalid UTF-8 at byte offset %zu",
                           bad);
        if (strpbrk(p->from_name, "\r\n"))
            return err_set(e, IPW_EDATA, "From: the display name contains a line break");
    }
    for (size_t i = 0; i < p->n_extra; i++) {
        const struct message_header *x = &p->extra[i];
        if (!x->name || !message_field_name_ok(x->name, strlen(x->name)))
            return err_set(e, IPW_EUSAGE, "\"%s\" is not a header field name",
                           x->name ? x->name : "");
        if (!x->value || !message_ascii_value_ok(x->value))
            return err_set(e, IPW_EUSAGE,
                           "%s: the value must be printable ASCII without line breaks", x->name);
    }
    return IPW_OK;
}

/* ---- building ---- */

/* The header fields written so far, for struct message's fields[]. */
struct message_fields {
    struct message_field *v;
    size_t n, cap;
    bool oom;
};

/* Ends the field h is writing and records where it lies. */
static void message_field_end(struct mime_hw *h, struct message_fields *f)
{
    mime_hw_end(h);
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct message_field *nv = realloc(f->v, cap * sizeof *nv);
        if (!nv) {
            f->oom = true;
            return;
        }
        f->v = nv;
        f->cap = cap;
    }
    f->v[f->n++] = (struct message_field){
        .off = h->field_off, .len = h->b->len - h->field_off, .name_len = h->name_len};
}

void message_free(struct message *m)
{
    if (!m)
        return;
    free(m->data);
    free(m->fields);
    memset(m, 0, sizeof *m);
}

static void message_part_headers(struct buf *b, const char *type, enum mime_cte cte)
{
    buf_str(b, "Content-Type: ");
    buf_str(b, type);
    buf_str(b, "; charset=utf-8\r\nContent-Transfer-Encoding: ");
    buf_str(b, mime_cte_name(cte));
    buf_put(b, "\r\n", 2);
}

/* One part of a multipart body: its delimiter line, its headers, a blank line, the encoded body
 * and the CRLF that belongs to the next delimiter. */
static void message_part(struct buf *b, const char *boundary, const char *type,
                         const struct mime_body *part)
{
    buf_str(b, "--");
    buf_str(b, boundary);
    buf_put(b, "\r\n", 2);
    message_part_headers(b, type, part->cte);
    buf_put(b, "\r\n", 2);
    buf_put(b, part->enc.p, part->enc.len);
    buf_put(b, "\r\n", 2);
}

ipw_status message_build(const struct message_parts *p, struct message *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    ipw_status s = message_check_parts(p, e);
    if (s)
        return s;

    struct buf b = {0}, tmp = {0};
    struct mime_body text = {{0}, MIME_7BIT}, html = {{0}, MIME_7BIT};
    struct mime_hw h = {.b = &b};
    struct message_fields f = {0};
    char boundary[sizeof out->boundary] = "";

    s = mime_body_make_memo(p->text_memo, p->text ? p->text : "", p->text ? p->text_len : 0,
                            "text body", &text, e);
    if (s)
        goto done;
    if (p->html) {
        s = mime_body_make_memo(p->html_memo, p->html, p->html_len, "HTML body", &html, e);
        if (s)
            goto done;
        /* RFC 2046 5.1.1: the boundary must not occur in the parts. "=_" cannot occur in
         * quoted-printable or base64 output, so only a 7bit part can collide; on a collision
         * the seed is stepped (an LCG) and the boundary tried again. */
        uint64_t seed = p->boundary_seed;
        for (int tries = 0;; tries++) {
            snprintf(boundary, sizeof boundary, "=_ipwarm_%016" PRIx64, seed);
            if (!message_contains(&text.enc, boundary) && !message_contains(&html.enc, boundary))
                break;
            if (tries == 64) {
                s = err_set(e, IPW_ESOFTWARE, "no multipart boundary found outside the bodies");
                goto done;
            }
            seed = seed * 6364136223846793005u + 1442695040888963407u;
        }
    }

    mime_hw_begin(&h, "Date");
    mime_hw_text(&h, p->date, strlen(p->date));
    message_field_end(&h, &f);

    mime_hw_begin(&h, "From");
    mime_hw_mailbox(&h, p->from_name, p->from_addr, &tmp);
    message_field_end(&h, &f);

    mime_hw_begin(&h, "To");
    mime_hw_word(&h, p->to_addr, strlen(p->to_addr));
    message_field_end(&h, &f);

    mime_hw_begin(&h, "Subject");
    mime_hw_unstructured(&h, p->subject ? p->subject : "");
    message_field_end(&h, &f);

    mime_hw_begin(&h, "Message-ID");
    tmp.len = 0;
    buf_put(&tmp, "<", 1);
    buf_str(&tmp, p->id_left);
    buf_put(&tmp, "@", 1);
    buf_str(&tmp, p->id_domain ? p->id_domain : strrchr(p->from_addr, '@') + 1);
    buf_put(&tmp, ">", 1);
    if (!tmp.oom)
        mime_hw_word(&h, tmp.p, tmp.len);
    message_field_end(&h, &f);

    mime_hw_begin(&h, "MIME-Version");
    mime_hw_word(&h, "1.0", 3);
    message_field_end(&h, &f);

    for (size_t i = 0; i < p->n_extra; i++) {
        mime_hw_begin(&h, p->extra[i].name);
        mime_hw_text(&h, p->extra[i].value, strlen(p->extra[i].value));
        message_field_end(&h, &f);
    }

    mime_hw_begin(&h, "Content-Type");
    if (p->html) {
        mime_hw_word(&h, "multipart/alternative;", strlen("multipart/alternative;"));
        tmp.len = 0;
        buf_str(&tmp, "boundary=\"");
        buf_str(&tmp, boundary);
        buf_str(&tmp, "\"");
        if (!tmp.oom)
            mime_hw_word(&h, tmp.p, tmp.len);
        message_field_end(&h, &f);
    } else {
        mime_hw_text(&h, "text/plain; charset=utf-8", strlen("text/plain; charset=utf-8"));
        message_field_end(&h, &f);
        mime_hw_begin(&h, "Content-Transfer-Encoding");
        mime_hw_text(&h, mime_cte_name(text.cte), strlen(mime_cte_name(text.cte)));
        message_field_end(&h, &f);
    }

    buf_put(&b, "\r\n", 2);
    size_t body_off = b.len;
    if (p->html) {
        /* RFC 2046 5.1.1: the CRLF before a delimiter line belongs to the delimiter, so each
         * part (which ends in its own CRLF) gets one more; without it a part would decode
         * without its last line break. */
        message_part(&b, boundary, "text/plain", &text);
        message_part(&b, boundary, "text/html", &html);
        buf_str(&b, "--");
        buf_str(&b, boundary);
        buf_str(&b, "--\r\n");
    } else {
        buf_put(&b, text.enc.p, text.enc.len);
    }

    if (b.oom || tmp.oom || f.oom) {
        s = err_set(e, IPW_ENOMEM, "out of memory building a message");
        goto done;
    }
    if (h.too_long) {
        s = err_set(e, IPW_EDATA,
                    "a header line of the message to %s cannot be kept within %d octets "
                    "(RFC 5322 2.1.1)",
                    p->to_addr, MESSAGE_LINE_MAX);
        goto done;
    }
    out->data = b.p;
    out->len = b.len;
    out->body_off = body_off;
    out->fields = f.v;
    out->n_fields = f.n;
    snprintf(out->boundary, sizeof out->boundary, "%s", boundary);
    b.p = NULL;
    f.v = NULL;
done:
    buf_free(&b);
    buf_free(&tmp);
    buf_free(&text.enc);
    buf_free(&html.enc);
    free(f.v);
    return s;
}

ipw_status message_prepend_field(struct message *m, const char *field, size_t len, struct err *e)
{
    size_t name_len = 0;
    while (name_len < len && field[name_len] != ':')
        name_len++;
    if (name_len == len || !message_field_name_ok(field, name_len))
        return err_set(e, IPW_EUSAGE, "the field to add does not start with \"Name:\"");
    /* Every CR must start a CRLF, and every CRLF but a final one must be followed by WSP. */
    size_t line = 0;
    for (size_t i = 0; i < len; i++) {
        if (field[i] == '\n')
            return err_set(e, IPW_EUSAGE, "the field to add has a bare LF at offset %zu", i);
        if (field[i] == '\r') {
            if (i + 1 >= len || field[i + 1] != '\n')
                return err_set(e, IPW_EUSAGE, "the field to add has a bare CR at offset %zu", i);
            if (i + 2 < len && field[i + 2] != ' ' && field[i + 2] != '\t')
                return err_set(e, IPW_EUSAGE,
                               "the field to add continues without whitespace at offset %zu",
                               i + 2);
            i++;
            line = 0;
            continue;
        }
        if (++line > MESSAGE_LINE_MAX)
            return err_set(e, IPW_EUSAGE, "the field to add has a line over %d octets",
                           MESSAGE_LINE_MAX);
    }
    bool has_crlf = len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n';
    size_t add = len + (has_crlf ? 0 : 2);
    char *data = malloc(m->len + add + 1);
    struct message_field *fields = malloc((m->n_fields + 1) * sizeof *fields);
    if (!data || !fields) {
        free(data);
        free(fields);
        return err_set(e, IPW_ENOMEM, "out of memory adding a header field");
    }
    memcpy(data, field, len);
    if (!has_crlf)
        memcpy(data + len, "\r\n", 2);
    memcpy(data + add, m->data, m->len);
    data[m->len + add] = '\0';
    fields[0] = (struct message_field){.off = 0, .len = add, .name_len = name_len};
    for (size_t i = 0; i < m->n_fields; i++) {
        fields[i + 1] = m->fields[i];
        fields[i + 1].off += add;
    }
    free(m->data);
    free(m->fields);
    m->data = data;
    m->len += add;
    m->body_off += add;
    m->fields = fields;
    m->n_fields++;
    return IPW_OK;
}

long message_field_find(const struct message *m, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < m->n_fields; i++)
        if (m->fields[i].name_len == n && strncasecmp(m->data + m->fields[i].off, name, n) == 0)
            return (long)i;
    return -1;
}

char *message_format_date(int64_t utc_ms, int offset_sec, char *buf, size_t n)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (n < MESSAGE_DATE_MAX)
        return n ? (buf[0] = '\0', buf) : buf;
    buf[0] = '\0';
    if (offset_sec <= -86400 || offset_sec >= 86400)
        return buf;
    int64_t secs = utc_ms / 1000 - (utc_ms % 1000 < 0 ? 1 : 0) + offset_sec;
    time_t t = (time_t)secs;
    struct tm tm;
    if ((int64_t)t != secs || !gmtime_r(&t, &tm))
        return buf;
    if (tm.tm_year + 1900 < 1900 || tm.tm_year + 1900 > 9999)
        return buf;
    int off = offset_sec < 0 ? -offset_sec : offset_sec;
    snprintf(buf, n, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
             offset_sec < 0 ? '-' : '+', off / 3600, off % 3600 / 60);
    return buf;
}

char *message_id_left(const char *campaign, int64_t seq, uint64_t rnd, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    int w = snprintf(buf, n, "%s.%" PRId64 ".%016" PRIx64, campaign && *campaign ? campaign : "x",
                     seq, rnd);
    if (w < 0 || (size_t)w >= n) {
        buf[0] = '\0';
        return buf;
    }
    /* The campaign part is the user's name; make it atext so the ID stays dot-atom-text. */
    size_t camp = campaign && *campaign ? strlen(campaign) : 1;
    for (size_t i = 0; i < camp; i++)
        if (!chars_is_atext((unsigned char)buf[i]))
            buf[i] = '-';
    return buf;
}

/* ---- templates from the plan ---- */

void message_tmpl_free(struct message_tmpl *t)
{
    if (!t)
        return;
    free(t->from_name);
    free(t->from_addr);
    free(t->subject);
    free(t->subject_where);
    free(t->text);
    free(t->text_where);
    free(t->html);
    free(t->html_where);
    free(t->list_unsubscribe);
    free(t->list_unsubscribe_mailto);
    free(t);
}

static char *message_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *message_where(const char *plan, const char *key)
{
    size_t n = strlen(plan ? plan : "plan") + strlen(key) + 3;
    char *w = malloc(n);
    if (w)
        snprintf(w, n, "%s: %s", plan ? plan : "plan", key);
    return w;
}

/* The 1-based line of byte off in s. */
static long message_line_of(const char *s, size_t off)
{
    long line = 1;
    for (size_t i = 0; i < off; i++)
        if (s[i] == '\n')
            line++;
    return line;
}

/* Reads a body template file whole (they are small; bounded by MESSAGE_BODY_FILE_MAX), drops a
 * UTF-8 BOM and refuses NUL bytes and invalid UTF-8 with the line and the file offset. key is
 * the plan key that names the file, for the sentence when it cannot be read; a FIFO or a device
 * is refused, not read (infile.h). */
static ipw_status message_read_body(const char *path, const char *key, char **out, struct err *e)
{
    *out = NULL;
    char *text;
    size_t len;
    ipw_status s = infile_read(path, key, MESSAGE_BODY_FILE_MAX, &text, &len, e);
    if (s != IPW_OK)
        return s;
    size_t bom = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    const char *nul = memchr(text, '\0', len);
    size_t bad;
    if (nul) {
        size_t off = (size_t)(nul - text);
        s = err_set(e, IPW_EDATA, "%s:%ld: NUL byte at byte offset %zu", path,
                    message_line_of(text, off), off);
    } else if (!mime_utf8_valid(text + bom, len - bom, &bad)) {
        s = err_set(e, IPW_EDATA, "%s:%ld: invalid UTF-8 at byte offset %zu", path,
                    message_line_of(text, bom + bad), bom + bad);
    }
    if (s) {
        free(text);
        return s;
    }
    if (bom)
        memmove(text, text + bom, len - bom + 1);
    *out = text;
    return IPW_OK;
}

/* A text written in the plan itself (plan_path's key): copied to *text with the place errors
 * point at in *where, and checked: valid UTF-8, on one line for the subject, and its
 * placeholders known among columns. */
static ipw_status message_inline(const char *plan_path, const char *key, const char *value,
                                 bool subject, const char *const *columns, size_t n, char **where,
                                 char **text, struct err *e)
{
    *where = message_where(plan_path, key);
    *text = message_strdup(value);
    if (!*where || !*text)
        return err_set(e, IPW_ENOMEM, "out of memory loading the message");
    size_t bad;
    if (!mime_utf8_valid(*text, strlen(*text), &bad))
        return err_set(e, IPW_EDATA, "%s: invalid UTF-8 at byte offset %zu", *where, bad);
    if (subject && strpbrk(*text, "\r\n"))
        return err_set(e, IPW_EDATA, "%s: a subject cannot hold a line break", *where);
    return template_check_at(*text, columns, n, *where, 0, e);
}

/* A body from the file path (the plan key names it): read (message_read_body), the file's name
 * in *where for the errors that point into it, and its placeholders checked against columns. */
static ipw_status message_body_file(const char *path, const char *key, const char *const *columns,
                                    size_t n, char **where, char **body, struct err *e)
{
    *where = message_strdup(path);
    if (!*where)
        return err_set(e, IPW_ENOMEM, "out of memory loading the message");
    ipw_status s = message_read_body(path, key, body, e);
    if (s)
        return s;
    return template_check(*body, columns, n, *where, e);
}

ipw_status message_tmpl_load(const struct plan *p, const char *const *columns, size_t n,
                             struct message_tmpl **out, struct err *e)
{
    *out = NULL;
    if (!p->subject)
        return err_set(e, IPW_EUSAGE, "the plan has no message.subject");
    if (!p->text_file && !p->text)
        return err_set(e, IPW_EUSAGE, "the plan has neither message.text_file nor message.text");
    if (!p->from_addr)
        return err_set(e, IPW_EUSAGE, "the plan has no sender.from address");
    struct message_tmpl *t = calloc(1, sizeof *t);
    if (!t)
        return err_set(e, IPW_ENOMEM, "out of memory loading the message");
    ipw_status s = IPW_ENOMEM;
    t->from_name = message_strdup(p->from_name);
    t->from_addr = message_strdup(p->from_addr);
    if (!t->from_addr || (p->from_name && !t->from_name))
        goto nomem;
    s = message_inline(p->path, "message.subject", p->subject, true, columns, n, &t->subject_where,
                       &t->subject, e);
    if (s)
        goto fail;

    if (p->text_file)
        s = message_body_file(p->text_file, "message.text_file", columns, n, &t->text_where,
                              &t->text, e);
    else
        s = message_inline(p->path, "message.text", p->text, false, columns, n, &t->text_where,
                           &t->text, e);
    if (s)
        goto fail;

    if (p->html_file) {
        s = message_body_file(p->html_file, "message.html_file", columns, n, &t->html_where,
                              &t->html, e);
        if (s)
            goto fail;
    }

    if (p->list_unsubscribe) {
        char *where = message_where(p->path, "message.list_unsubscribe");
        t->list_unsubscribe = message_strdup(p->list_unsubscribe);
        if (!where || !t->list_unsubscribe) {
            free(where);
            goto nomem;
        }
        s = template_check_at(t->list_unsubscribe, columns, n, where, 0, e);
        free(where);
        if (s)
            goto fail;
    }
    if (p->list_unsubscribe_mailto) {
        t->list_unsubscribe_mailto = message_strdup(p->list_unsubscribe_mailto);
        if (!t->list_unsubscribe_mailto)
            goto nomem;
    }
    *out = t;
    return IPW_OK;
nomem:
    s = err_set(e, IPW_ENOMEM, "out of memory loading the message");
fail:
    message_tmpl_free(t);
    return s;
}

/* The RFC 8058 fields of one recipient into extra[0..*n) (values in *unsub, malloc'd), then
 * a->extra after them; *all is extra or a->extra. See message_compose in message.h. */
static ipw_status message_unsubscribe(const struct message_tmpl *t, const struct template_vars *v,
                                      const struct message_args *a, char **unsub,
                                      struct message_header **all, size_t *n_all, struct err *e)
{
    *unsub = NULL;
    *all = NULL;
    *n_all = 0;
    if (!t->list_unsubscribe && !t->list_unsubscribe_mailto)
        return IPW_OK;
    char *url = NULL;
    if (t->list_unsubscribe) {
        ipw_status s = template_expand(t->list_unsubscribe, v, TEMPLATE_URL | TEMPLATE_HEADER,
                                       "message.list_unsubscribe", &url, NULL, e);
        if (s)
            return s;
    }
    struct buf b = {0};
    if (url) {
        buf_put(&b, "<", 1);
        buf_str(&b, url);
        buf_put(&b, ">", 1);
    }
    if (t->list_unsubscribe_mailto) {
        if (url)
            buf_str(&b, ", ");
        buf_str(&b, "<mailto:");
        buf_str(&b, t->list_unsubscribe_mailto);
        /* The token in the subject tells the mailbox which recipient asked (RFC 6068: the
         * space is %20 in a mailto hfvalue). */
        if (v->token && *v->token) {
            buf_str(&b, "?subject=unsubscribe%20");
            buf_str(&b, v->token);
        }
        buf_put(&b, ">", 1);
    }
    free(url);
    size_t n = (t->list_unsubscribe ? 2 : 1) + a->n_extra;
    struct message_header *h = calloc(n, sizeof *h);
    if (b.oom || !h) {
        buf_free(&b);
        free(h);
        return err_set(e, IPW_ENOMEM, "out of memory building a message");
    }
    size_t k = 0;
    h[k++] = (struct message_header){"List-Unsubscribe", b.p};
    if (t->list_unsubscribe)
        h[k++] = (struct message_header){"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"};
    for (size_t i = 0; i < a->n_extra; i++)
        h[k++] = a->extra[i];
    *unsub = b.p;
    *all = h;
    *n_all = n;
    return IPW_OK;
}

void message_memo_free(struct message_memo *m)
{
    if (!m)
        return;
    mime_memo_free(&m->text);
    mime_memo_free(&m->html);
}

ipw_status message_compose(const struct message_tmpl *t, const struct template_vars *v,
                           const struct message_args *a, struct message *out, struct err *e)
{
    char *subject = NULL, *text = NULL, *html = NULL, *unsub = NULL;
    struct message_header *extra = NULL;
    size_t n_extra = 0;
    size_t text_len = 0, html_len = 0;
    memset(out, 0, sizeof *out);
    ipw_status s =
        template_expand(t->subject, v, TEMPLATE_HEADER, t->subject_where, &subject, NULL, e);
    if (s)
        goto done;
    s = message_unsubscribe(t, v, a, &unsub, &extra, &n_extra, e);
    if (s)
        goto done;
    s = template_expand(t->text, v, 0, t->text_where, &text, &text_len, e);
    if (s)
        goto done;
    if (t->html) {
        s = template_expand(t->html, v, TEMPLATE_HTML, t->html_where, &html, &html_len, e);
        if (s)
            goto done;
    }
    struct message_parts parts = {
        .from_name = t->from_name,
        .from_addr = t->from_addr,
        .to_addr = v->recipient,
        .subject = subject,
        .date = v->date,
        .id_left = a->id_left,
        .text = text,
        .text_len = text_len,
        .html = html,
        .html_len = html_len,
        .boundary_seed = a->boundary_seed,
        .extra = extra ? extra : a->extra,
        .n_extra = extra ? n_extra : a->n_extra,
        .text_memo = a->memo ? &a->memo->text : NULL,
        .html_memo = a->memo ? &a->memo->html : NULL,
    };
    s = message_build(&parts, out, e);
done:
    free(unsub);
    free(extra);
    free(subject);
    free(text);
    free(html);
    return s;
}

ipw_status message_feedback_id(const char *tmpl, const char *campaign, const char *ip,
                               const char *provider, char *out, size_t size, struct err *e)
{
    size_t n = 0;
    for (const char *q = tmpl; *q;) {
        const char *val = NULL;
        if (q[0] == '{' && q[1] == '{') {
            const char *end = strstr(q + 2, "}}");
            if (!end)
                return err_set(e, IPW_EUSAGE, "Feedback-ID: unterminated placeholder in \"%s\"",
                               tmpl);
            const char *nm = q + 2;
            size_t len = (size_t)(end - nm);
            while (len && (*nm == ' ' || *nm == '\t')) {
                nm++;
                len--;
            }
            while (len && (nm[len - 1] == ' ' || nm[len - 1] == '\t'))
                len--;
            if (len == 8 && strncmp(nm, "campaign", 8) == 0)
                val = campaign;
            else if (len == 2 && strncmp(nm, "ip", 2) == 0)
                val = ip;
            else if (len == 8 && strncmp(nm, "provider", 8) == 0)
                val = provider;
            else
                return err_set(e, IPW_EUSAGE, "Feedback-ID: unknown placeholder \"%.*s\"", (int)len,
                               nm);
            for (const char *v = val ? val : ""; *v; v++) {
                unsigned char ch = (unsigned char)*v;
                bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                            (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
                if (n + 1 >= size)
                    return err_set(e, IPW_ENOMEM, "Feedback-ID: longer than %zu bytes", size);
                out[n++] = keep ? (char)ch : '-';
            }
            q = end + 2;
            continue;
        }
        if (n + 1 >= size)
            return err_set(e, IPW_ENOMEM, "Feedback-ID: longer than %zu bytes", size);
        out[n++] = *q++;
    }
    if (size == 0)
        return err_set(e, IPW_ENOMEM, "Feedback-ID: no room");
    out[n] = '\0';
    return IPW_OK;
}
