/*
 * fuzz_reply: the SMTP reply parser and classifier (reply.h; RFC 5321 4.2, RFC 2034, RFC 3463)
 * on arbitrary bytes, as a server or a broken transport could send them.
 *
 * Besides memory safety it checks what reply.h promises of any input: a code of 0 or 200..599,
 * an enhanced code that is empty or valid and of the reply's class, text that fits, holds no
 * control characters and is valid UTF-8, ends in "..." when truncated; reply_format() always
 * NUL-terminates within its buffer; reply_classify() gives an outcome in range (never blocked)
 * for every phase, with suppress only for a recipient-scope bounce and throttle only for a
 * provider-scope deferral or failure; and reply_judge(), in every phase and both modes, keeps
 * the promises of struct reply_class: suspend exactly for the sender's fault, stop exactly for
 * the set-up's, requeue for both and then neither retry nor throttle nor suppress, suppress only
 * for a recipient bounce, a recipient only at RCPT or DATA, a message never before MAIL.
 */
#include <string.h>

#include "ipwarm/reply.h"

#include "fuzz.h"

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned min;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* What reply.h promises of every judgement. */
static void judge_check(const struct reply_class *c, enum reply_phase ph, int code)
{
    FUZZ_CHECK(c->fault >= REPLY_FAULT_NONE && c->fault <= REPLY_FAULT_NETWORK);
    FUZZ_CHECK(c->outcome >= REPLY_PENDING && c->outcome <= REPLY_BLOCKED);
    FUZZ_CHECK(c->outcome != REPLY_EXPIRED);
    FUZZ_CHECK(c->suspend == (c->fault == REPLY_FAULT_SENDER));
    FUZZ_CHECK(c->stop == (c->fault == REPLY_FAULT_SETUP));
    FUZZ_CHECK(c->requeue == (c->suspend || c->stop));
    FUZZ_CHECK((c->outcome == REPLY_BLOCKED) == c->suspend);
    if (c->requeue)
        FUZZ_CHECK(!c->retry && !c->throttle && !c->suppress);
    if (c->suppress)
        FUZZ_CHECK(c->fault == REPLY_FAULT_RECIPIENT && c->outcome == REPLY_BOUNCED);
    if (c->throttle)
        FUZZ_CHECK(c->fault == REPLY_FAULT_PROVIDER || c->fault == REPLY_FAULT_NETWORK);
    FUZZ_CHECK((c->fault == REPLY_FAULT_NETWORK) == (code < 200 || code > 599));
    if (c->fault == REPLY_FAULT_RECIPIENT)
        FUZZ_CHECK(ph == REPLY_PHASE_RCPT || ph == REPLY_PHASE_DATA);
    if (c->fault == REPLY_FAULT_MESSAGE)
        FUZZ_CHECK(ph >= REPLY_PHASE_MAIL && ph != REPLY_PHASE_QUIT);
    if (c->fault == REPLY_FAULT_NONE)
        FUZZ_CHECK(c->outcome == REPLY_PENDING || c->outcome == REPLY_DELIVERED);
    FUZZ_CHECK(strcmp(reply_fault_name(c->fault), "?") != 0);
    FUZZ_CHECK(strcmp(reply_outcome_name(c->outcome), "?") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reply r;
    int code = reply_parse((const char *)data, size, &r);
    FUZZ_CHECK(code == r.code);
    FUZZ_CHECK(code == 0 || (code >= 200 && code <= 599));

    size_t elen = strnlen(r.enhanced, sizeof r.enhanced);
    FUZZ_CHECK(elen < sizeof r.enhanced);
    if (elen) {
        FUZZ_CHECK(reply_enhanced_valid(r.enhanced, elen));
        FUZZ_CHECK(r.enhanced[0] == '0' + code / 100);
    }

    size_t tlen = strnlen(r.text, sizeof r.text);
    FUZZ_CHECK(tlen < REPLY_TEXT_MAX);
    if (code == 0)
        FUZZ_CHECK(tlen == 0);
    for (size_t i = 0; i < tlen; i++)
        FUZZ_CHECK((unsigned char)r.text[i] >= 0x20);
    FUZZ_CHECK(utf8_valid((const unsigned char *)r.text, tlen));
    if (r.truncated) {
        size_t m = strlen(REPLY_TRUNCATED_MARK);
        FUZZ_CHECK(tlen >= m && memcmp(r.text + tlen - m, REPLY_TRUNCATED_MARK, m) == 0);
    }
    if (code != 0)
        FUZZ_CHECK(r.lines >= 1);

    /* reply_format into buffers of every awkward size: the exact fit, one short, tiny. */
    char buf[REPLY_TEXT_MAX + 16];
    char small[8];
    memset(small, 'x', sizeof small);
    reply_format(&r, small, 1);
    FUZZ_CHECK(small[0] == '\0' && small[1] == 'x');
    reply_format(&r, small, sizeof small);
    FUZZ_CHECK(strnlen(small, sizeof small) < sizeof small);
    reply_format(&r, buf, sizeof buf);
    size_t flen = strnlen(buf, sizeof buf);
    FUZZ_CHECK(flen < sizeof buf);
    if (code != 0) {
        char digits[4] = {(char)('0' + code / 100), (char)('0' + code / 10 % 10),
                          (char)('0' + code % 10), '\0'};
        FUZZ_CHECK(flen >= 3 && memcmp(buf, digits, 3) == 0);
    } else {
        FUZZ_CHECK(strcmp(buf, r.text) == 0);
    }

    for (int ph = REPLY_PHASE_CONNECT; ph <= REPLY_PHASE_QUIT; ph++) {
        struct reply_class c = reply_classify((enum reply_phase)ph, code, r.enhanced, r.text);
        FUZZ_CHECK(c.outcome >= REPLY_PENDING && c.outcome <= REPLY_EXPIRED);
        FUZZ_CHECK(c.scope >= REPLY_SCOPE_NONE && c.scope <= REPLY_SCOPE_MESSAGE);
        if (c.suppress)
            FUZZ_CHECK(c.outcome == REPLY_BOUNCED && c.scope == REPLY_SCOPE_RECIPIENT);
        if (c.throttle)
            FUZZ_CHECK(c.scope == REPLY_SCOPE_PROVIDER &&
                       (c.outcome == REPLY_DEFERRED || c.outcome == REPLY_FAILED));
        if (c.scope == REPLY_SCOPE_RECIPIENT)
            FUZZ_CHECK(ph >= REPLY_PHASE_RCPT);
        FUZZ_CHECK(strcmp(reply_phase_name((enum reply_phase)ph), "?") != 0);
        FUZZ_CHECK(strcmp(reply_outcome_name(c.outcome), "?") != 0);
        FUZZ_CHECK(strcmp(reply_scope_name(c.scope), "?") != 0);
    }
    for (int ph = REPLY_PHASE_CONNECT; ph <= REPLY_PHASE_QUIT; ph++)
        for (int relay = 0; relay < 2; relay++) {
            struct reply_input in = {(enum reply_phase)ph, code, r.enhanced, r.text, relay != 0};
            struct reply_class c = reply_judge(&in);
            judge_check(&c, (enum reply_phase)ph, code);
        }
    /* The classifier on the raw bytes as text (NUL-terminated copy), not only parsed text. */
    if (size < 1024) {
        char raw[1024];
        memcpy(raw, data, size);
        raw[size] = '\0';
        struct reply_class c = reply_classify(REPLY_PHASE_RCPT, code, raw, raw);
        FUZZ_CHECK(c.outcome >= REPLY_PENDING && c.outcome <= REPLY_EXPIRED);
        for (int ph = REPLY_PHASE_CONNECT; ph <= REPLY_PHASE_QUIT; ph++) {
            /* Any code, not only parsed ones: the first bytes pick it. */
            int any = size >= 2 ? (data[0] << 8 | data[1]) % 700 : code;
            struct reply_input in = {(enum reply_phase)ph, any, raw, raw, (size & 1) != 0};
            struct reply_class j = reply_judge(&in);
            judge_check(&j, (enum reply_phase)ph, any);
        }
    }
    (void)reply_enhanced_valid((const char *)data, size);
    return 0;
}
