/* Unit tests of reply.c: parsing raw SMTP replies (RFC 5321 4.2, RFC 2034, RFC 3463) and
 * classifying them into outcome and scope. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/reply.h"

/* The shipped patterns, copied from config/providers.yaml. */
#define GMAIL_UNUSUAL_RATE    "4\\.7\\.28.*unusual rate"
#define MICROSOFT_SERVER_BUSY "4\\.7\\.500.*server busy"
#define YAHOO_TSS04           "\\[TSS04\\]"

static struct reply R; /* 4 KiB: keep it off the stack */

static int parse_str(const char *s)
{
    return reply_parse(s, strlen(s), &R);
}

static bool matches(const char *pattern, const char *text)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_ICASE | REG_NOSUB), 0);
    bool m = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

/* True if s is valid UTF-8 without control characters: what the text promises. */
static bool clean_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7F)
            return false;
        if (*p < 0x80) {
            p++;
            continue;
        }
        int need = *p >= 0xF0 ? 3 : *p >= 0xE0 ? 2 : *p >= 0xC2 ? 1 : -1;
        if (need < 0)
            return false;
        p++;
        for (int i = 0; i < need; i++, p++)
            if ((*p & 0xC0) != 0x80)
                return false;
    }
    return true;
}

static void test_reply_parse_gmail_multiline(void **state)
{
    (void)state;
    /* "unusual rate" sits on the second line: only the joined text matches the rule. */
    const char *raw = "421-4.7.28 [192.0.2.10      15] Our system has detected an\r\n"
                      "421-4.7.28 unusual rate of unsolicited mail originating from your IP\r\n"
                      "421-4.7.28 address. To protect our users from spam, mail sent from your\r\n"
                      "421-4.7.28 IP address has been temporarily rate limited. Please visit\r\n"
                      "421-4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError\r\n"
                      "421 4.7.28 to review our Bulk Email Senders Guidelines. a1si - gsmtp\r\n";
    assert_int_equal(parse_str(raw), 421);
    assert_int_equal(R.code, 421);
    assert_string_equal(R.enhanced, "4.7.28");
    assert_string_equal(
        R.text, "4.7.28 [192.0.2.10      15] Our system has detected an unusual rate of "
                "unsolicited mail originating from your IP address. To protect our users from "
                "spam, mail sent from your IP address has been temporarily rate limited. Please "
                "visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review "
                "our Bulk Email Senders Guidelines. a1si - gsmtp");
    assert_int_equal(R.lines, 6);
    assert_int_equal(R.dropped, 0);
    assert_true(R.complete);
    assert_false(R.truncated);

    char whole[REPLY_TEXT_MAX + 16];
    reply_format(&R, whole, sizeof whole);
    assert_memory_equal(whole, "421 4.7.28 [192.0.2.10 ", 23);
    assert_true(matches(GMAIL_UNUSUAL_RATE, whole));
    /* Line by line, no line holds both parts of the pattern. */
    assert_false(matches(GMAIL_UNUSUAL_RATE, "421-4.7.28 [192.0.2.10      15] Our system has "
                                             "detected an"));
    assert_false(matches(GMAIL_UNUSUAL_RATE, "unusual rate of unsolicited mail"));

    struct reply_class c = reply_classify(REPLY_PHASE_RCPT, R.code, R.enhanced, R.text);
    assert_int_equal(c.outcome, REPLY_DEFERRED);
    assert_int_equal(c.scope, REPLY_SCOPE_PROVIDER);
    assert_true(c.throttle);
    assert_true(c.retry);
    assert_false(c.suppress);
}

static void test_reply_parse_microsoft_server_busy(void **state)
{
    (void)state;
    assert_int_equal(parse_str("451 4.7.500 Server busy. Please try again later from "
                               "[192.0.2.10]. (S77714) [BN1NAM02FT012.eop-nam02.prod."
                               "protection.outlook.com]\r\n"),
                     451);
    assert_string_equal(R.enhanced, "4.7.500");
    assert_true(matches(MICROSOFT_SERVER_BUSY, R.text));
    struct reply_class c = reply_classify(REPLY_PHASE_RCPT, R.code, R.enhanced, R.text);
    assert_int_equal(c.outcome, REPLY_DEFERRED);
    assert_int_equal(c.scope, REPLY_SCOPE_PROVIDER);
    assert_true(c.throttle);
    /* The same at DATA and without the enhanced code: the text still says throttling. */
    c = reply_classify(REPLY_PHASE_DATA, 451, "", "Server busy. Please try again later");
    assert_true(c.throttle);
    c = reply_classify(REPLY_PHASE_RCPT, 451, NULL, "Server busy. Please try again later");
    assert_true(c.throttle);
}

static void test_reply_classify_mailbox_full(void **state)
{
    (void)state;
    assert_int_equal(
        parse_str("452-4.2.2 The recipient's inbox is out of storage space and inbound mail\r\n"
                  "452-4.2.2 cannot be delivered. Please try again later.\r\n"
                  "452 4.2.2  https://support.google.com/mail/?p=OverQuotaTemp x1si - gsmtp"),
        452);
    assert_string_equal(R.enhanced, "4.2.2");
    assert_string_equal(R.text, "4.2.2 The recipient's inbox is out of storage space and "
                                "inbound mail cannot be delivered. Please try again later. "
                                "https://support.google.com/mail/?p=OverQuotaTemp x1si - gsmtp");
    struct reply_class c = reply_classify(REPLY_PHASE_RCPT, R.code, R.enhanced, R.text);
    assert_int_equal(c.outcome, REPLY_DEFERRED);
    assert_int_equal(c.scope, REPLY_SCOPE_RECIPIENT);
    assert_false(c.throttle); /* a full mailbox is not a rate limit */
    assert_true(c.retry);
    assert_false(c.suppress);
    /* Without an enhanced code the words decide, ahead of "try again later". */
    c = reply_classify(REPLY_PHASE_RCPT, 452, "", "Mailbox full, try again later");
    assert_int_equal(c.scope, REPLY_SCOPE_RECIPIENT);
    assert_false(c.throttle);
    /* 552 5.2.2 at RCPT is a permanent full mailbox: bounced and suppressed. */
    c = reply_classify(REPLY_PHASE_RCPT, 552, "5.2.2", "5.2.2 Mailbox full");
    assert_int_equal(c.outcome, REPLY_BOUNCED);
    assert_true(c.suppress);
    /* Gmail's per-recipient rate: the recipient's problem too. */
    c = reply_classify(REPLY_PHASE_RCPT, 450, "4.2.1",
                       "4.2.1 The user you are trying to contact is receiving mail at a rate "
                       "that prevents additional messages from being delivered.");
    assert_int_equal(c.scope, REPLY_SCOPE_RECIPIENT);
    assert_false(c.throttle);
}

static void test_reply_classify_user_unknown(void **state)
{
    (void)state;
    assert_int_equal(
        parse_str("550-5.1.1 The email account that you tried to reach does not exist. Please\r\n"
                  "550-5.1.1 try double-checking the recipient's email address for typos or\r\n"
                  "550 5.1.1 unnecessary spaces. x1si - gsmtp\r\n"),
        550);
    struct reply_class c = reply_classify(REPLY_PHASE_RCPT, R.code, R.enhanced, R.text);
    assert_int_equal(c.outcome, REPLY_BOUNCED);
    assert_int_equal(c.scope, REPLY_SCOPE_RECIPIENT);
    assert_true(c.suppress);
    assert_false(c.retry);
    assert_false(c.throttle);
    /* Without an enhanced code: the words, then RFC 5321's meaning of 550 at RCPT. */
    c = reply_classify(REPLY_PHASE_RCPT, 550, "", "No such user here");
    assert_true(c.suppress);
    c = reply_classify(REPLY_PHASE_RCPT, 550, "", "Requested action not taken");
    assert_true(c.suppress);
    /* One recipient per transaction: a 5.1.1 after DATA is about that recipient. */
    c = reply_classify(REPLY_PHASE_DATA, 550, "5.1.1", "5.1.1 User unknown");
    assert_true(c.suppress);
    /* Policy codes on RCPT are about us, not the recipient: bounced, not suppressed. */
    c = reply_classify(REPLY_PHASE_RCPT, 550, "5.7.1",
                       "5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please "
                       "contact your Internet service provider since part of their network is "
                       "on our block list (S3150).");
    assert_int_equal(c.outcome, REPLY_BOUNCED);
    assert_int_equal(c.scope, REPLY_SCOPE_PROVIDER);
    assert_false(c.suppress);
    assert_false(c.throttle); /* not a deferral; the block-list rule suspends instead */
    c = reply_classify(REPLY_PHASE_RCPT, 554, "", "Your IP 192.0.2.10 is listed at Spamhaus");
    assert_int_equal(c.scope, REPLY_SCOPE_PROVIDER);
    assert_false(c.suppress);
}

static void test_reply_classify_table(void **state)
{
    (void)state;
    static const struct {
        enum reply_phase phase;
        int code;
        const char *enhanced;
        const char *text;
        enum reply_outcome outcome;
        enum reply_scope scope;
        bool throttle, suppress, retry;
    } t[] = {
        /* No reply: failed, a provider deferral, retried. */
        {REPLY_PHASE_CONNECT, 0, "", "connection refused", REPLY_FAILED, REPLY_SCOPE_PROVIDER, true,
         false, true},
        {REPLY_PHASE_DATA, 0, NULL, NULL, REPLY_FAILED, REPLY_SCOPE_PROVIDER, true, false, true},
        {REPLY_PHASE_RCPT, 199, "", "nonsense", REPLY_FAILED, REPLY_SCOPE_PROVIDER, true, false,
         true},
        /* Positive replies. */
        {REPLY_PHASE_DATA, 250, "2.0.0", "2.0.0 OK queued", REPLY_DELIVERED, REPLY_SCOPE_NONE,
         false, false, false},
        {REPLY_PHASE_RCPT, 250, "2.1.5", "2.1.5 OK", REPLY_PENDING, REPLY_SCOPE_NONE, false, false,
         false},
        {REPLY_PHASE_DATA, 354, "", "Go ahead", REPLY_PENDING, REPLY_SCOPE_NONE, false, false,
         false},
        {REPLY_PHASE_QUIT, 421, "", "bye", REPLY_PENDING, REPLY_SCOPE_NONE, false, false, false},
        /* 421 is the provider whatever it says. */
        {REPLY_PHASE_CONNECT, 421, "", "Too many connections", REPLY_DEFERRED, REPLY_SCOPE_PROVIDER,
         true, false, true},
        {REPLY_PHASE_RCPT, 421, "4.2.2", "4.2.2 odd", REPLY_DEFERRED, REPLY_SCOPE_PROVIDER, true,
         false, true},
        /* Yahoo. */
        {REPLY_PHASE_MAIL, 421, "4.7.0",
         "4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume "
         "or user complaints",
         REPLY_DEFERRED, REPLY_SCOPE_PROVIDER, true, false, true},
        {REPLY_PHASE_MAIL, 553, "5.7.1", "5.7.1 [BL21] Connections will not be accepted",
         REPLY_BOUNCED, REPLY_SCOPE_PROVIDER, false, false, false},
        /* Microsoft reputation. */
        {REPLY_PHASE_RCPT, 451, "4.7.650",
         "4.7.650 The mail server [192.0.2.10] has been temporarily rate limited due to IP "
         "reputation.",
         REPLY_DEFERRED, REPLY_SCOPE_PROVIDER, true, false, true},
        /* Gmail authentication: permanent, about us. */
        {REPLY_PHASE_DATA, 550, "5.7.26", "5.7.26 This mail is unauthenticated", REPLY_BOUNCED,
         REPLY_SCOPE_PROVIDER, false, false, false},
        /* Greylisting is per recipient even as 4.7.1. */
        {REPLY_PHASE_RCPT, 451, "4.7.1", "4.7.1 Greylisting in action, please come back later",
         REPLY_DEFERRED, REPLY_SCOPE_RECIPIENT, false, false, true},
        {REPLY_PHASE_RCPT, 450, "4.2.0",
         "4.2.0 <a@b.example>: Recipient address rejected: "
         "Greylisted",
         REPLY_DEFERRED, REPLY_SCOPE_RECIPIENT, false, false, true},
        /* Message scope. */
        {REPLY_PHASE_DATA, 552, "5.3.4", "5.3.4 Message size exceeds fixed limit", REPLY_BOUNCED,
         REPLY_SCOPE_MESSAGE, false, false, false},
        {REPLY_PHASE_DATA, 554, "5.7.1", "5.7.1 Message content rejected: virus found",
         REPLY_BOUNCED, REPLY_SCOPE_MESSAGE, false, false, false},
        {REPLY_PHASE_DATA, 554, "5.6.0", "5.6.0 Invalid headers", REPLY_BOUNCED,
         REPLY_SCOPE_MESSAGE, false, false, false},
        {REPLY_PHASE_MAIL, 451, "4.1.8", "4.1.8 Sender address rejected: Domain not found",
         REPLY_DEFERRED, REPLY_SCOPE_MESSAGE, false, false, true},
        {REPLY_PHASE_DATA, 554, "", "Transaction failed", REPLY_BOUNCED, REPLY_SCOPE_MESSAGE, false,
         false, false},
        /* Defaults by code and phase. */
        {REPLY_PHASE_RCPT, 450, "", "Requested mail action not taken", REPLY_DEFERRED,
         REPLY_SCOPE_RECIPIENT, false, false, true},
        {REPLY_PHASE_RCPT, 451, "", "Local error in processing", REPLY_DEFERRED,
         REPLY_SCOPE_PROVIDER, true, false, true},
        {REPLY_PHASE_CONNECT, 554, "", "No SMTP service here", REPLY_BOUNCED, REPLY_SCOPE_PROVIDER,
         false, false, false},
        {REPLY_PHASE_DATA, 451, "4.3.0", "4.3.0 Temporary system problem", REPLY_DEFERRED,
         REPLY_SCOPE_PROVIDER, true, false, true},
        {REPLY_PHASE_RCPT, 452, "4.5.3", "4.5.3 Too many recipients", REPLY_DEFERRED,
         REPLY_SCOPE_PROVIDER, true, false, true},
        /* A recipient code before RCPT is the server's. */
        {REPLY_PHASE_MAIL, 452, "4.2.2", "4.2.2 Mailbox full", REPLY_DEFERRED, REPLY_SCOPE_PROVIDER,
         true, false, true},
        /* x.0.0 says nothing: the words decide. */
        {REPLY_PHASE_RCPT, 550, "5.0.0", "5.0.0 User unknown", REPLY_BOUNCED, REPLY_SCOPE_RECIPIENT,
         false, true, false},
        {REPLY_PHASE_RCPT, 450, "4.0.0", "4.0.0 You are sending too fast, slow down",
         REPLY_DEFERRED, REPLY_SCOPE_PROVIDER, true, false, true},
        /* An invalid enhanced code is ignored. */
        {REPLY_PHASE_RCPT, 550, "5.01.1", "rate limited", REPLY_BOUNCED, REPLY_SCOPE_PROVIDER,
         false, false, false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct reply_class c = reply_classify(t[i].phase, t[i].code, t[i].enhanced, t[i].text);
        if (c.outcome != t[i].outcome || c.scope != t[i].scope || c.throttle != t[i].throttle ||
            c.suppress != t[i].suppress || c.retry != t[i].retry)
            fail_msg("case %zu (%s %d %s): got %s/%s throttle=%d suppress=%d retry=%d", i,
                     reply_phase_name(t[i].phase), t[i].code, t[i].text ? t[i].text : "(null)",
                     reply_outcome_name(c.outcome), reply_scope_name(c.scope), c.throttle,
                     c.suppress, c.retry);
    }
}

static void test_reply_parse_garbage(void **state)
{
    (void)state;
    assert_int_equal(reply_parse(NULL, 0, &R), 0);
    assert_string_equal(R.text, "");
    assert_string_equal(R.enhanced, "");
    assert_int_equal(parse_str(""), 0);
    assert_int_equal(parse_str("hello\r\nworld"), 0);
    assert_int_equal(R.dropped, 2);
    assert_string_equal(R.text, "");
    const char *bad[] = {"42",     "4211 x", "621 too high", "121 too low",  "42a x",
                         " 250 x", "250x",   "\r\n\r\n",     "\x00\x01\x02", "-250 x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(reply_parse(bad[i], strlen(bad[i]) + (i == 8 ? 3 : 0), &R), 0);
        assert_int_equal(R.lines, 0);
    }
    /* The bare code is a complete reply (RFC 5321: the text is optional). */
    assert_int_equal(parse_str("250"), 250);
    assert_string_equal(R.text, "");
    assert_true(R.complete);
    /* Missing CRLF, bare LF, CR inside a line. */
    assert_int_equal(parse_str("250 OK"), 250);
    assert_string_equal(R.text, "OK");
    assert_int_equal(parse_str("250-a\n250 b\n"), 250);
    assert_string_equal(R.text, "a b");
    assert_int_equal(parse_str("550 a\rb\r\n"), 550);
    assert_string_equal(R.text, "a?b");
    /* Garbage around and inside a reply is dropped. */
    assert_int_equal(parse_str("* junk\r\n421-4.7.28 a\r\nxx junk\r\n421 4.7.28 b\r\ntrailer"),
                     421);
    assert_string_equal(R.text, "4.7.28 a b");
    assert_int_equal(R.lines, 2);
    assert_int_equal(R.dropped, 3);
}

static void test_reply_parse_several_replies(void **state)
{
    (void)state;
    /* Two replies: the last one counts. */
    assert_int_equal(parse_str("250 2.1.0 OK\r\n550 5.1.1 <a@b.example> unknown\r\n"), 550);
    assert_string_equal(R.enhanced, "5.1.1");
    assert_string_equal(R.text, "5.1.1 <a@b.example> unknown");
    assert_int_equal(R.lines, 1);
    assert_int_equal(R.dropped, 1);
    /* Mixed codes: the last line's code, as libcurl reads it. */
    assert_int_equal(parse_str("250-first\r\n550 second"), 550);
    assert_string_equal(R.text, "second");
    /* A continuation left hanging (the connection dropped): taken, marked incomplete. */
    assert_int_equal(parse_str("250 OK\r\n421-4.7.0 a\r\n421-4.7.0 b"), 421);
    assert_string_equal(R.text, "4.7.0 a b");
    assert_false(R.complete);
    assert_int_equal(R.lines, 2);
    /* The same code after a final line starts a new reply. */
    assert_int_equal(parse_str("451 4.7.500 first\r\n451 4.7.500 second\r\n"), 451);
    assert_string_equal(R.text, "4.7.500 second");
}

static void test_reply_parse_text_cleanup(void **state)
{
    (void)state;
    /* Tabs to spaces, other controls to '?', ends trimmed, empty lines skipped. */
    const char raw[] = "550-5.1.1   a\tb\x01"
                       "c\x7f  \r\n550-5.1.1\r\n550-\r\n550 5.1.1 \x00z";
    assert_int_equal(reply_parse(raw, sizeof raw - 1, &R), 550);
    assert_string_equal(R.text, "5.1.1   a b?c? ?z");
    /* Bytes that are not UTF-8 become '?', valid sequences stay. */
    assert_int_equal(parse_str("550 caf\xc3\xa9 \xff\xc3 \xe2\x82\xac \xed\xa0\x80 \xc0\xaf"), 550);
    assert_string_equal(R.text, "caf\xc3\xa9 ?? \xe2\x82\xac ??? ??");
    assert_true(clean_utf8(R.text));
    /* A different enhanced code on a later line is kept, an equal one dropped. */
    assert_int_equal(parse_str("550-5.7.1 a\r\n550-5.7.1 b\r\n550 5.7.26 c"), 550);
    assert_string_equal(R.enhanced, "5.7.1");
    assert_string_equal(R.text, "5.7.1 a b 5.7.26 c");
    /* An enhanced code whose class disagrees with the reply code is only text. */
    assert_int_equal(parse_str("550 4.1.1 x"), 550);
    assert_string_equal(R.enhanced, "");
    assert_string_equal(R.text, "4.1.1 x");
    assert_int_equal(parse_str("550 5.1.1x y"), 550);
    assert_string_equal(R.enhanced, "");
    assert_int_equal(parse_str("250 2.0.0"), 250);
    assert_string_equal(R.enhanced, "2.0.0");
    assert_string_equal(R.text, "2.0.0");
}

static void test_reply_parse_bounded(void **state)
{
    (void)state;
    /* 10,000 continuation lines: the text stops at REPLY_TEXT_MAX - 1 with the marker. */
    size_t cap = 10001 * 40;
    char *raw = malloc(cap);
    assert_non_null(raw);
    size_t len = 0;
    for (int i = 0; i < 10000; i++)
        len += (size_t)snprintf(raw + len, cap - len, "421-4.7.0 line %05d of a long reply\r\n", i);
    len += (size_t)snprintf(raw + len, cap - len, "421 4.7.0 the end\r\n");
    assert_int_equal(reply_parse(raw, len, &R), 421);
    assert_int_equal(R.lines, 10001);
    assert_true(R.truncated);
    size_t tl = strlen(R.text);
    assert_true(tl <= REPLY_TEXT_MAX - 1);
    assert_true(tl >= REPLY_TEXT_MAX - 1 - 30);
    assert_string_equal(R.text + tl - 3, "...");
    assert_memory_equal(R.text, "4.7.0 line 00000 of a long reply line 00001 of", 46);

    /* 10,000 garbage lines before a reply: all dropped. */
    len = 0;
    for (int i = 0; i < 10000; i++)
        len += (size_t)snprintf(raw + len, cap - len, "garbage %d\r\n", i);
    len += (size_t)snprintf(raw + len, cap - len, "550 5.1.1 unknown");
    assert_int_equal(reply_parse(raw, len, &R), 550);
    assert_int_equal(R.dropped, 10000);
    assert_string_equal(R.text, "5.1.1 unknown");
    free(raw);

    /* One line of 100,000 bytes. */
    size_t big = 100000;
    raw = malloc(big);
    assert_non_null(raw);
    memcpy(raw, "550 ", 4);
    memset(raw + 4, 'a', big - 4);
    assert_int_equal(reply_parse(raw, big, &R), 550);
    assert_int_equal(strlen(R.text), REPLY_TEXT_MAX - 1);
    assert_true(R.truncated);
    assert_string_equal(R.text + REPLY_TEXT_MAX - 4, "...");

    /* Two-byte characters: the cut never splits one. */
    for (size_t i = 4; i + 1 < big; i += 2) {
        raw[i] = (char)0xC3;
        raw[i + 1] = (char)0xA9;
    }
    for (size_t shift = 0; shift < 4; shift++) {
        raw[4] = shift % 2 ? 'x' : (char)0xC3; /* moves the character boundaries */
        assert_int_equal(reply_parse(raw, big - shift, &R), 550);
        assert_true(strlen(R.text) <= REPLY_TEXT_MAX - 1);
        assert_true(clean_utf8(R.text));
        assert_string_equal(R.text + strlen(R.text) - 3, "...");
    }
    free(raw);

    /* reply_format cuts to any buffer, on a character boundary. */
    parse_str("550 5.1.1 caf\xc3\xa9");
    char small[8];
    assert_string_equal(reply_format(&R, small, sizeof small), "550 5.1");
    char mid[32];
    /* "550 5.1.1 caf\xc3\xa9" is 15 bytes: 14 would split the last character. */
    assert_string_equal(reply_format(&R, mid, 15), "550 5.1.1 caf");
    assert_string_equal(reply_format(&R, mid, 16), "550 5.1.1 caf\xc3\xa9");
    R.code = 0;
    assert_string_equal(reply_format(&R, mid, sizeof mid), "5.1.1 caf\xc3\xa9");
    R.code = 421;
    R.text[0] = '\0';
    assert_string_equal(reply_format(&R, mid, sizeof mid), "421");
}

static void test_reply_enhanced_valid(void **state)
{
    (void)state;
    const char *good[] = {"2.0.0", "4.7.28", "5.7.26", "4.7.500", "5.999.999", "5.0.10", "4.10.0"};
    const char *bad[] = {"",       "4",      "4.7",      "4.7.",     "6.1.1", "3.0.0",
                         "4.07.1", "4.7.01", "4.1234.1", "4.1.1234", "4..1",  "4.a.1",
                         " 4.1.1", "4.1.1 ", "44.1.1",   "4-1-1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(reply_enhanced_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (reply_enhanced_valid(bad[i], strlen(bad[i])))
            fail_msg("\"%s\" accepted", bad[i]);
    assert_false(reply_enhanced_valid(NULL, 0));
    /* Lengths are honoured: a prefix of a longer string. */
    assert_true(reply_enhanced_valid("4.7.28 rest", 6));
    assert_false(reply_enhanced_valid("4.7.28 rest", 7));
}

/* Random bytes and random reply-like lines: never a crash, always the promised shape. */
static void test_reply_parse_random(void **state)
{
    (void)state;
    static const char alphabet[] = "245 -.\r\n\t0123456789abcXYZ\x01\x80\xc3\xa9\xff[]";
    uint32_t x = 12345;
    char buf[6000];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = 0;
        x = x * 1103515245u + 12345u;
        size_t want = (x >> 8) % sizeof buf;
        while (len < want) {
            x = x * 1103515245u + 12345u;
            buf[len++] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        int code = reply_parse(buf, len, &R);
        assert_true(code == 0 || (code >= 200 && code <= 599));
        assert_int_equal(code, R.code);
        assert_true(strlen(R.text) < REPLY_TEXT_MAX);
        assert_true(R.enhanced[0] == '\0' || reply_enhanced_valid(R.enhanced, strlen(R.enhanced)));
        assert_true(clean_utf8(R.text));
        struct reply_class c = reply_classify((enum reply_phase)(x % 8), code, R.enhanced, R.text);
        assert_true(!c.suppress || c.outcome == REPLY_BOUNCED);
        assert_true(!c.throttle || c.scope == REPLY_SCOPE_PROVIDER);
    }
}

static void test_reply_names(void **state)
{
    (void)state;
    assert_string_equal(reply_phase_name(REPLY_PHASE_CONNECT), "connect");
    assert_string_equal(reply_phase_name(REPLY_PHASE_RCPT), "rcpt");
    assert_string_equal(reply_phase_name(REPLY_PHASE_QUIT), "quit");
    assert_string_equal(reply_phase_name((enum reply_phase)99), "?");
    assert_string_equal(reply_outcome_name(REPLY_DELIVERED), "delivered");
    assert_string_equal(reply_outcome_name(REPLY_EXPIRED), "expired");
    assert_string_equal(reply_outcome_name((enum reply_outcome) - 1), "?");
    assert_string_equal(reply_scope_name(REPLY_SCOPE_RECIPIENT), "recipient");
    assert_string_equal(reply_scope_name(REPLY_SCOPE_MESSAGE), "message");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_parse_gmail_multiline),
        cmocka_unit_test(test_reply_parse_microsoft_server_busy),
        cmocka_unit_test(test_reply_classify_mailbox_full),
        cmocka_unit_test(test_reply_classify_user_unknown),
        cmocka_unit_test(test_reply_classify_table),
        cmocka_unit_test(test_reply_parse_garbage),
        cmocka_unit_test(test_reply_parse_several_replies),
        cmocka_unit_test(test_reply_parse_text_cleanup),
        cmocka_unit_test(test_reply_parse_bounded),
        cmocka_unit_test(test_reply_enhanced_valid),
        cmocka_unit_test(test_reply_parse_random),
        cmocka_unit_test(test_reply_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
