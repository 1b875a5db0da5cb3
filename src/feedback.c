/*
 * feedback: classifies a message of the bounce mailbox (see feedback.h).
 *
 * GMime (RFC 2045-2049, RFC 2047, RFC 5322) takes the message apart: the multipart tree,
 * transfer encodings, charsets, header decoding and address lists. This file walks the tree it
 * builds, at most FEEDBACK_MAX_PARTS parts and FEEDBACK_MAX_DEPTH levels deep, without going
 * into an attached message (that is the original, not part of the report), and collects:
 *   the report part: message/delivery-status or message/global-delivery-status (RFC 3464,
 *     RFC 6533) read by dsn.c, or message/feedback-report (RFC 5965) read by arf.c;
 *   the original: message/rfc822 or message/global (the returned message), text/rfc822-headers
 *     or message/global-headers (its headers; RFC 6522 3, RFC 6533), or else a copy quoted in the
 *     text after a marker line ("--- Below this line is a copy of the message.");
 *   the human-readable text (text/plain, or text/html made plain when there is no text/plain),
 *     for the non-standard bounces (bounce.c).
 * The order of decisions: a report part with recipients makes a dsn, a feedback report an arf
 * (as does Microsoft's older JMRP forward, the complained-about message attached by
 * staff@hotmail.com); then a text bounce notice with recipients makes a dsn; everything else is
 * other, marked auto_reply for RFC 3834 auto-replies and out-of-office notes.
 */
#include "ipwarm/feedback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include "ipwarm/arf.h"
#include "ipwarm/bounce.h"
#include "ipwarm/chars.h"
#include "ipwarm/dsn.h"
#include "ipwarm/fields.h"
#include "ipwarm/verp.h"

#define FEEDBACK_MAX_TEXT_BYTES (512u * 1024) /* human-readable text gathered for bounce.c */

/* What the walk of the MIME tree found; GMime objects are borrowed from the message. */
struct feedback_walk {
    size_t parts;
    GMimeObject *status;   /* message/delivery-status */
    GMimeObject *arf;      /* message/feedback-report */
    GMimeObject *original; /* message/rfc822, text/rfc822-headers, ... */
    char *text;            /* text/plain parts, joined */
    size_t text_len;
    char *html; /* text/html parts made plain, used when there is no text/plain */
    size_t html_len;
    bool oom;
};

const char *feedback_kind_name(enum feedback_kind k)
{
    switch (k) {
    case FEEDBACK_DSN:
        return "dsn";
    case FEEDBACK_ARF:
        return "arf";
    case FEEDBACK_OTHER:
        break;
    }
    return "other";
}

const char *feedback_action_name(enum feedback_action a)
{
    switch (a) {
    case FEEDBACK_ACTION_FAILED:
        return "failed";
    case FEEDBACK_ACTION_DELAYED:
        return "delayed";
    case FEEDBACK_ACTION_DELIVERED:
        return "delivered";
    case FEEDBACK_ACTION_RELAYED:
        return "relayed";
    case FEEDBACK_ACTION_EXPANDED:
        return "expanded";
    case FEEDBACK_ACTION_NONE:
        break;
    }
    return NULL;
}

void feedback_report_free(struct feedback_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->recipients && i < r->n_recipients; i++)
        dsn_recipient_clear(&r->recipients[i]);
    free(r->recipients);
    free(r->feedback_type);
    free(r->original_message_id);
    free(r->ipwarm_id);
    free(r->verp_token);
    free(r->envelope_id);
    free(r->reporting_mta);
    free(r->original_mail_from);
    free(r->source_ip);
    free(r->original_headers);
    free(r->subject);
    free(r->from);
    free(r->message_id);
    free(r);
}

/* ---------------------------------------------------------------------------------------- */
/* Small helpers */

/* A copy of s[0..n) cut at FEEDBACK_MAX_TEXT with controls made spaces; NULL when empty. */
static char *feedback_clean(const char *s, size_t n)
{
    if (!s)
        return NULL;
    while (n && chars_is_space((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && chars_is_space((unsigned char)s[n - 1]))
        n--;
    return fields_value_copy(s, n, FEEDBACK_MAX_TEXT, FIELDS_COPY_PRINTABLE);
}

static char *feedback_dup(const char *s)
{
    return s ? feedback_clean(s, strlen(s)) : NULL;
}

/* "<id@host>" from a Message-ID header value; brackets added when the value has none. */
static char *feedback_msgid(const char *v)
{
    if (!v)
        return NULL;
    const char *lt = strchr(v, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt && gt > lt + 1)
        return feedback_clean(lt, (size_t)(gt - lt) + 1);
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, " \t\r\n");
    if (n == 0 || n > FEEDBACK_MAX_TEXT - 2 || !memchr(v, '@', n))
        return NULL;
    char *d = malloc(n + 3);
    if (d) {
        d[0] = '<';
        memcpy(d + 1, v, n);
        d[n + 1] = '>';
        d[n + 2] = '\0';
    }
    return d;
}

/* The X-Ipwarm-Id value: one token of printable ASCII. */
static char *feedback_token_value(const char *v)
{
    if (!v)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = 0;
    while (v[n] && (unsigned char)v[n] > 0x20 && (unsigned char)v[n] < 0x7f && n < 200)
        n++;
    return n ? feedback_clean(v, n) : NULL;
}

/* Appends text to a growing buffer, up to FEEDBACK_MAX_TEXT_BYTES. */
static void feedback_append(struct feedback_walk *w, char **buf, size_t *len, const char *s,
                            size_t n)
{
    if (*len >= FEEDBACK_MAX_TEXT_BYTES)
        return;
    if (n > FEEDBACK_MAX_TEXT_BYTES - *len)
        n = FEEDBACK_MAX_TEXT_BYTES - *len;
    char *b = realloc(*buf, *len + n + 2);
    if (!b) {
        w->oom = true;
        return;
    }
    memcpy(b + *len, s, n);
    *len += n;
    b[(*len)++] = '\n';
    b[*len] = '\0';
    *buf = b;
}

/* HTML made readable enough for bounce.c: tags dropped (a line break for block tags), a few
 * entities decoded. Not a renderer; NDRs' HTML is simple. */
static void feedback_html_text(struct feedback_walk *w, const char *s, size_t n)
{
    char *t = malloc(n + 1);
    if (!t) {
        w->oom = true;
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '<') {
            size_t j = i + 1;
            while (j < n && s[j] != '>')
                j++;
            bool block =
                j > i + 1 &&
                (strncasecmp(s + i + 1, "br", 2) == 0 || strncasecmp(s + i + 1, "p", 1) == 0 ||
                 strncasecmp(s + i + 1, "/p", 2) == 0 || strncasecmp(s + i + 1, "div", 3) == 0 ||
                 strncasecmp(s + i + 1, "/div", 4) == 0 || strncasecmp(s + i + 1, "tr", 2) == 0 ||
                 strncasecmp(s + i + 1, "li", 2) == 0);
            if (block)
                t[o++] = '\n';
            i = j;
            continue;
        }
        if (s[i] == '&') {
            static const struct {
                const char *e;
                char c;
            } ents[] = {{"&lt;", '<'},   {"&gt;", '>'},   {"&amp;", '&'},
                        {"&quot;", '"'}, {"&#39;", '\''}, {"&nbsp;", ' '}};
            bool done = false;
            for (size_t k = 0; k < sizeof ents / sizeof *ents && !done; k++) {
                size_t el = strlen(ents[k].e);
                if (i + el <= n && strncasecmp(s + i, ents[k].e, el) == 0) {
                    t[o++] = ents[k].c;
                    i += el - 1;
                    done = true;
                }
            }
            if (done)
                continue;
        }
        t[o++] = s[i];
    }
    feedback_append(w, &w->html, &w->html_len, t, o);
    free(t);
}

/* The decoded content of a leaf part, malloc'd and NUL-terminated. */
static char *feedback_part_bytes(GMimePart *part, size_t *len)
{
    *len = 0;
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    if (!content)
        return NULL;
    GMimeStream *mem = g_mime_stream_mem_new();
    if (!mem)
        return NULL;
    g_mime_data_wrapper_write_to_stream(content, mem);
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    char *d = NULL;
    if (bytes) {
        size_t n = bytes->len > FEEDBACK_MAX_BYTES ? FEEDBACK_MAX_BYTES : bytes->len;
        d = malloc(n + 1);
        if (d) {
            if (n) /* an empty GByteArray may have no data at all */
                memcpy(d, bytes->data, n);
            d[n] = '\0';
            *len = n;
        }
    }
    g_object_unref(mem);
    return d;
}

static bool feedback_type_is(GMimeObject *o, const char *type, const char *subtype)
{
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    return ct && g_mime_content_type_is_type(ct, type, subtype);
}

/* ---------------------------------------------------------------------------------------- */
/* The walk */

static void feedback_walk_object(struct feedback_walk *w, GMimeObject *o, int depth)
{
    if (!o || w->oom || depth > FEEDBACK_MAX_DEPTH || ++w->parts > FEEDBACK_MAX_PARTS)
        return;
    if (GMIME_IS_MULTIPART(o)) {
        GMimeMultipart *mp = GMIME_MULTIPART(o);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && w->parts <= FEEDBACK_MAX_PARTS; i++)
            feedback_walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(o)) {
        if (!w->original)
            w->original = o; /* the returned message; never walked into */
        return;
    }
    if (!GMIME_IS_PART(o))
        return;
    if (feedback_type_is(o, "message", "delivery-status") ||
        feedback_type_is(o, "message", "global-delivery-status")) {
        if (!w->status)
            w->status = o;
    } else if (feedback_type_is(o, "message", "feedback-report")) {
        if (!w->arf)
            w->arf = o;
    } else if (feedback_type_is(o, "text", "rfc822-headers") ||
               feedback_type_is(o, "message", "global-headers")) {
        if (!w->original)
            w->original = o;
    } else if (GMIME_IS_TEXT_PART(o) &&
               (feedback_type_is(o, "text", "plain") || feedback_type_is(o, "text", "html"))) {
        GMimeContentDisposition *disp = g_mime_object_get_content_disposition(o);
        if (disp && g_mime_content_disposition_is_attachment(disp))
            return;
        char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
        if (!t)
            return;
        if (feedback_type_is(o, "text", "plain"))
            feedback_append(w, &w->text, &w->text_len, t, strlen(t));
        else
            feedback_html_text(w, t, strlen(t));
        g_free(t);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The original message */

/* Parses bytes as a message (headers, maybe a body). NULL when GMime makes nothing of it. */
static GMimeMessage *feedback_message_from(const char *data, size_t len)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    if (!stream)
        return NULL;
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *m = parser ? g_mime_parser_construct_message(parser, NULL) : NULL;
    if (parser)
        g_object_unref(parser);
    g_object_unref(stream);
    return m;
}

/* Takes Message-ID, X-Ipwarm-Id, Return-Path and the header block from the original. */
static void feedback_original_headers(struct feedback_report *r, GMimeObject *msg)
{
    if (!msg)
        return;
    GMimeHeaderList *hl = g_mime_object_get_header_list(msg);
    if (!hl || g_mime_header_list_get_count(hl) == 0)
        return;
    if (!r->original_message_id)
        r->original_message_id = feedback_msgid(g_mime_object_get_header(msg, "Message-ID"));
    if (!r->ipwarm_id)
        r->ipwarm_id = feedback_token_value(g_mime_object_get_header(msg, FEEDBACK_ID_HEADER));
    if (!r->original_mail_from) {
        const char *rp = g_mime_object_get_header(msg, "Return-Path");
        if (rp) {
            const char *lt = strchr(rp, '<');
            r->original_mail_from =
                lt ? feedback_clean(lt + 1, strcspn(lt + 1, ">")) : feedback_token_value(rp);
        }
    }
    if (!r->original_headers) {
        char *h = g_mime_object_get_headers(msg, NULL);
        if (h) {
            size_t n = strlen(h);
            if (n > FEEDBACK_MAX_HEADERS)
                n = FEEDBACK_MAX_HEADERS;
            r->original_headers = malloc(n + 1);
            if (r->original_headers) {
                memcpy(r->original_headers, h, n);
                r->original_headers[n] = '\0';
            }
            g_free(h);
        }
    }
}

/* The original from a message/rfc822 part, or from a headers-only part. */
static void feedback_original(struct feedback_report *r, GMimeObject *o)
{
    if (!o)
        return;
    if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        feedback_original_headers(r, m ? GMIME_OBJECT(m) : NULL);
        return;
    }
    if (!GMIME_IS_PART(o))
        return;
    size_t len;
    char *bytes = feedback_part_bytes(GMIME_PART(o), &len);
    if (!bytes)
        return;
    GMimeMessage *m = feedback_message_from(bytes, len);
    if (m) {
        feedback_original_headers(r, GMIME_OBJECT(m));
        g_object_unref(m);
    }
    free(bytes);
}

/* Header lines of an original quoted in the text ("X-Ipwarm-Id: ...", "Message-ID: <...>"),
 * for notices that quote the original in a way the marker search did not find. */
static void feedback_quoted_fields(struct feedback_report *r, const char *text, size_t len)
{
    size_t pos = 0;
    while (pos < len && (!r->ipwarm_id || !r->original_message_id)) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + 1;
        while (ll && (*line == ' ' || *line == '\t' || *line == '>')) {
            line++;
            ll--;
        }
        size_t hl = strlen(FEEDBACK_ID_HEADER);
        char buf[FEEDBACK_MAX_TEXT + 1];
        if (ll > hl && strncasecmp(line, FEEDBACK_ID_HEADER, hl) == 0 && line[hl] == ':' &&
            !r->ipwarm_id) {
            size_t n = ll - hl - 1 < FEEDBACK_MAX_TEXT ? ll - hl - 1 : FEEDBACK_MAX_TEXT;
            memcpy(buf, line + hl + 1, n);
            buf[n] = '\0';
            r->ipwarm_id = feedback_token_value(buf);
        } else if (ll > 11 && strncasecmp(line, "Message-ID:", 11) == 0 &&
                   !r->original_message_id) {
            size_t n = ll - 11 < FEEDBACK_MAX_TEXT ? ll - 11 : FEEDBACK_MAX_TEXT;
            memcpy(buf, line + 11, n);
            buf[n] = '\0';
            r->original_message_id = feedback_msgid(buf);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The report's own headers */

/* The first VERP-shaped token in the local part of an address of the header's values. */
static void feedback_verp_from(struct feedback_report *r, GMimeObject *msg, const char *name)
{
    GMimeHeaderList *hl = msg ? g_mime_object_get_header_list(msg) : NULL;
    int n = hl ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < n && !r->verp_token; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        if (!h || strcasecmp(g_mime_header_get_name(h), name) != 0)
            continue;
        const char *v = g_mime_header_get_value(h);
        InternetAddressList *list = v ? internet_address_list_parse(NULL, v) : NULL;
        int m = list ? internet_address_list_length(list) : 0;
        for (int k = 0; k < m && !r->verp_token; k++) {
            InternetAddress *ia = internet_address_list_get_address(list, k);
            if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
                continue;
            const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            const char *at = addr ? strrchr(addr, '@') : NULL;
            if (!at)
                continue;
            const char *plus = NULL;
            for (const char *q = addr; q < at; q++)
                if (*q == VERP_SEPARATOR)
                    plus = q;
            if (plus && verp_token_shaped(plus + 1, (size_t)(at - plus - 1)))
                r->verp_token = feedback_clean(plus + 1, VERP_TOKEN_LEN);
        }
        if (list)
            g_object_unref(list);
    }
}

/* True when needle occurs in s, ASCII case-insensitive. */
static bool feedback_has(const char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *q = s; *q; q++)
        if (strncasecmp(q, needle, n) == 0)
            return true;
    return false;
}

static bool feedback_auto_reply(GMimeObject *msg, const char *subject)
{
    const char *as = g_mime_object_get_header(msg, "Auto-Submitted");
    if (as && strncasecmp(as, "no", 2) != 0)
        return true;
    if (g_mime_object_get_header(msg, "X-Autoreply") ||
        g_mime_object_get_header(msg, "X-Autorespond") ||
        g_mime_object_get_header(msg, "X-Autoresponder"))
        return true;
    const char *prec = g_mime_object_get_header(msg, "Precedence");
    if (prec && strncasecmp(prec, "auto_reply", 10) == 0)
        return true;
    static const char *const subjects[] = {
        "out of office", "automatic reply",     "auto:",     "autoreply", "auto-reply",
        "abwesenheit",   "réponse automatique", "away from", NULL};
    for (size_t i = 0; subject && subjects[i]; i++)
        if (feedback_has(subject, subjects[i]))
            return true;
    return false;
}

/* ---------------------------------------------------------------------------------------- */
/* Classification */

static void feedback_take_recipients(struct feedback_report *r, struct feedback_recipient *rs,
                                     size_t n)
{
    r->recipients = rs;
    r->n_recipients = n;
}

static ipw_status feedback_arf(struct feedback_report *r, struct feedback_walk *w)
{
    size_t len = 0;
    char *bytes = w->arf ? feedback_part_bytes(GMIME_PART(w->arf), &len) : NULL;
    struct arf a;
    ipw_status st = arf_parse(bytes ? bytes : "", len, &a);
    free(bytes);
    if (st)
        return st;
    r->kind = FEEDBACK_ARF;
    r->format = "arf";
    r->feedback_type = a.feedback_type;
    a.feedback_type = NULL;
    r->source_ip = a.source_ip;
    a.source_ip = NULL;
    r->reporting_mta = a.user_agent;
    a.user_agent = NULL;
    if (a.original_mail_from) {
        r->original_mail_from = a.original_mail_from;
        a.original_mail_from = NULL;
    }
    if (a.n_rcpt) {
        r->recipients = calloc(a.n_rcpt, sizeof *r->recipients);
        if (!r->recipients) {
            arf_free(&a);
            return IPW_ENOMEM;
        }
        for (size_t i = 0; i < a.n_rcpt; i++) {
            r->recipients[i].address = a.rcpt_to[i];
            a.rcpt_to[i] = NULL;
        }
        r->n_recipients = a.n_rcpt;
        a.n_rcpt = 0;
    }
    arf_free(&a);
    return IPW_OK;
}

/* An ARF report without Original-Rcpt-To, or a JMRP forward: the recipient from the original
 * (Microsoft's X-HmXmrOriginalRecipient, else a single To address). */
static ipw_status feedback_arf_recipient(struct feedback_report *r, GMimeObject *original)
{
    if (r->n_recipients || !original || !GMIME_IS_MESSAGE_PART(original))
        return IPW_OK;
    GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(original));
    if (!m)
        return IPW_OK;
    const char *v = g_mime_object_get_header(GMIME_OBJECT(m), "X-HmXmrOriginalRecipient");
    char *addr = NULL;
    if (v) {
        addr = feedback_token_value(v[0] == '<' ? v + 1 : v);
        if (addr)
            addr[strcspn(addr, ">")] = '\0';
    } else {
        InternetAddressList *to = g_mime_message_get_to(m);
        if (to && internet_address_list_length(to) == 1) {
            InternetAddress *ia = internet_address_list_get_address(to, 0);
            if (INTERNET_ADDRESS_IS_MAILBOX(ia))
                addr =
                    feedback_dup(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
        }
    }
    if (!addr || !strchr(addr, '@')) {
        free(addr);
        return IPW_OK;
    }
    r->recipients = calloc(1, sizeof *r->recipients);
    if (!r->recipients) {
        free(addr);
        return IPW_ENOMEM;
    }
    r->recipients[0].address = addr;
    r->n_recipients = 1;
    return IPW_OK;
}

static ipw_status feedback_classify(struct feedback_report *r, GMimeMessage *msg)
{
    GMimeObject *top = GMIME_OBJECT(msg);
    struct feedback_walk w = {0};
    ipw_status st = IPW_OK;
    GMimeHeaderList *hl = g_mime_object_get_header_list(top);
    if (!hl || g_mime_header_list_get_count(hl) == 0) {
        r->format = "none";
        return IPW_OK;
    }
    r->format = "message";
    r->subject = feedback_dup(g_mime_message_get_subject(msg));
    r->from = feedback_dup(g_mime_object_get_header(top, "From"));
    r->message_id = feedback_msgid(g_mime_object_get_header(top, "Message-ID"));
    const char *rp = g_mime_object_get_header(top, "Return-Path");
    bool null_sender = rp && strspn(rp, " \t<>") == strlen(rp) && strchr(rp, '<');
    static const char *const envelope[] = {
        "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", NULL};
    for (size_t i = 0; envelope[i] && !r->verp_token; i++)
        feedback_verp_from(r, top, envelope[i]);

    feedback_walk_object(&w, g_mime_message_get_mime_part(msg), 0);
    if (w.oom) {
        st = IPW_ENOMEM;
        goto done;
    }
    const char *text = w.text_len ? w.text : w.html;
    size_t text_len = w.text_len ? w.text_len : w.html_len;

    if (w.status) {
        size_t len = 0;
        char *bytes = feedback_part_bytes(GMIME_PART(w.status), &len);
        struct dsn d;
        st = dsn_parse(bytes ? bytes : "", len, &d);
        free(bytes);
        if (st)
            goto done;
        if (d.n) {
            r->kind = FEEDBACK_DSN;
            r->format = "rfc3464";
            feedback_take_recipients(r, d.recipients, d.n);
            d.recipients = NULL;
            d.n = 0;
            r->reporting_mta = d.reporting_mta;
            r->envelope_id = d.envelope_id;
            d.reporting_mta = d.envelope_id = NULL;
        }
        dsn_free(&d);
    }
    const char *from = r->from;
    bool jmrp =
        !w.status && !w.arf && w.original && from && feedback_has(from, "staff@hotmail.com");
    if (r->kind == FEEDBACK_OTHER && (w.arf || jmrp)) {
        st = feedback_arf(r, &w);
        if (st)
            goto done;
        if (jmrp)
            r->format = "jmrp";
        st = feedback_arf_recipient(r, w.original);
        if (st)
            goto done;
    }
    if (r->kind == FEEDBACK_OTHER && text &&
        bounce_is_notice(r->from, r->subject, null_sender, text, text_len)) {
        struct bounce b;
        st = bounce_scan(text, text_len, r->subject, &b);
        if (st)
            goto done;
        if (b.n) {
            r->kind = FEEDBACK_DSN;
            r->format = b.format;
            feedback_take_recipients(r, b.recipients, b.n);
            b.recipients = NULL;
            b.n = 0;
        }
        bounce_free(&b);
    }

    feedback_original(r, w.original);
    if (text && r->kind != FEEDBACK_OTHER && (!r->original_message_id || !r->ipwarm_id)) {
        /* an original quoted in the notice's text, after its marker line */
        size_t copy_at = text_len;
        bounce_notice_end(text, text_len, &copy_at);
        if (copy_at < text_len) {
            GMimeMessage *q = feedback_message_from(text + copy_at, text_len - copy_at);
            if (q) {
                feedback_original_headers(r, GMIME_OBJECT(q));
                g_object_unref(q);
            }
        }
        feedback_quoted_fields(r, text, text_len);
    }
    if (!r->verp_token && r->original_headers) {
        /* the original's Return-Path is the VERP address itself */
        GMimeMessage *q = feedback_message_from(r->original_headers, strlen(r->original_headers));
        if (q) {
            feedback_verp_from(r, GMIME_OBJECT(q), "Return-Path");
            g_object_unref(q);
        }
    }
    if (r->kind == FEEDBACK_OTHER) {
        r->auto_reply = feedback_auto_reply(top, r->subject);
        if (r->auto_reply)
            r->format = "auto-reply";
    }
done:
    free(w.text);
    free(w.html);
    return st;
}

static void feedback_fingerprint(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return;
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = "0123456789abcdef"[md[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
    }
    out[64] = '\0';
}

ipw_status feedback_parse(const char *data, size_t len, struct feedback_report **out, struct err *e)
{
    static bool gmime_ready;
    if (!gmime_ready) {
        g_mime_init();
        gmime_ready = true;
    }
    *out = NULL;
    struct feedback_report *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, IPW_ENOMEM, "out of memory reading a report");
    r->kind = FEEDBACK_OTHER;
    r->format = "none";
    if (len > FEEDBACK_MAX_BYTES) {
        len = FEEDBACK_MAX_BYTES;
        r->truncated = true;
    }
    feedback_fingerprint(data, len, r->fingerprint);
    ipw_status st = IPW_OK;
    GMimeMessage *msg = len ? feedback_message_from(data, len) : NULL;
    if (msg) {
        st = feedback_classify(r, msg);
        g_object_unref(msg);
    }
    if (st) {
        feedback_report_free(r);
        return err_set(e, st, "out of memory reading a report");
    }
    *out = r;
    return IPW_OK;
}
