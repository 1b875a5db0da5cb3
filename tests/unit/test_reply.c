/* Unit tests of reply.c: parsing raw SMTP replies (RFC 5321 4.2, RFC 2034, RFC 3463) and
 * judging whose fault a refusal is (reply_judge, and reply_classify that wraps it) on the
 * real-world replies of reply_cases.h and on hostile text. */
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

#include "reply_cases.h"

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
    /* A block list on RCPT is about us, not the recipient: never suppressed. reply_judge
     * says blocked (suspend the provider, keep the recipient); reply_classify, for callers
     * that know no suspension, a deferral that backs the provider off. */
    const char *s3150 = "5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please "
                        "contact your Internet service provider since part of their network is "
                        "on our block list (S3150).";
    struct reply_input in = {REPLY_PHASE_RCPT, 550, "5.7.1", s3150, false};
    c = reply_judge(&in);
    assert_int_equal(c.fault, REPLY_FAULT_SENDER);
    assert_int_equal(c.outcome, REPLY_BLOCKED);
    assert_true(c.suspend && c.requeue);
    assert_false(c.suppress || c.throttle || c.retry || c.stop);
    c = reply_classify(REPLY_PHASE_RCPT, 550, "5.7.1", s3150);
    assert_int_equal(c.outcome, REPLY_DEFERRED);
    assert_int_equal(c.scope, REPLY_SCOPE_PROVIDER);
    assert_int_equal(c.fault, REPLY_FAULT_SENDER);
    assert_false(c.suppress);
    assert_true(c.throttle && c.retry);
    c = reply_classify(REPLY_PHASE_RCPT, 554, "", "Your IP 192.0.2.10 is listed at Spamhaus");
    assert_int_equal(c.scope, REPLY_SCOPE_PROVIDER);
    assert_int_equal(c.fault, REPLY_FAULT_SENDER);
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
        /* Block lists and authentication: a provider deferral for reply_classify's callers. */
        {REPLY_PHASE_MAIL, 553, "5.7.1", "5.7.1 [BL21] Connections will not be accepted",
         REPLY_DEFERRED, REPLY_SCOPE_PROVIDER, true, false, true},
        /* Microsoft reputation. */
        {REPLY_PHASE_RCPT, 451, "4.7.650",
         "4.7.650 The mail server [192.0.2.10] has been temporarily rate limited due to IP "
         "reputation.",
         REPLY_DEFERRED, REPLY_SCOPE_PROVIDER, true, false, true},
        /* Gmail authentication: permanent, about us. */
        {REPLY_PHASE_DATA, 550, "5.7.26", "5.7.26 This mail is unauthenticated", REPLY_DEFERRED,
         REPLY_SCOPE_PROVIDER, true, false, true},
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
        {REPLY_PHASE_CONNECT, 554, "", "No SMTP service here", REPLY_DEFERRED, REPLY_SCOPE_PROVIDER,
         true, false, true},
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
        /* An invalid enhanced code is ignored; a 5xx that speaks of a rate limit is one. */
        {REPLY_PHASE_RCPT, 550, "5.01.1", "rate limited", REPLY_DEFERRED, REPLY_SCOPE_PROVIDER,
         true, false, true},
        /* An enhanced code of another class than the reply's is ignored too. */
        {REPLY_PHASE_RCPT, 550, "4.1.1", "Requested action not taken: mailbox unavailable",
         REPLY_BOUNCED, REPLY_SCOPE_RECIPIENT, false, true, false},
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

/* What every judgement promises, whatever the input (reply.h, struct reply_class). */
static void check_class_invariants(const struct reply_class *c, enum reply_phase phase, int code)
{
    assert_true(c->fault >= REPLY_FAULT_NONE && c->fault <= REPLY_FAULT_NETWORK);
    assert_true(c->outcome >= REPLY_PENDING && c->outcome <= REPLY_BLOCKED);
    assert_true(c->outcome != REPLY_EXPIRED);
    assert_int_equal(c->suspend, c->fault == REPLY_FAULT_SENDER);
    assert_int_equal(c->stop, c->fault == REPLY_FAULT_SETUP);
    assert_int_equal(c->requeue, c->suspend || c->stop);
    assert_int_equal(c->outcome == REPLY_BLOCKED, c->suspend);
    if (c->requeue)
        assert_false(c->retry || c->throttle || c->suppress);
    if (c->suppress)
        assert_true(c->fault == REPLY_FAULT_RECIPIENT && c->outcome == REPLY_BOUNCED);
    if (c->throttle)
        assert_true(c->fault == REPLY_FAULT_PROVIDER || c->fault == REPLY_FAULT_NETWORK);
    assert_int_equal(c->fault == REPLY_FAULT_NETWORK, code < 200 || code > 599);
    if (c->fault == REPLY_FAULT_RECIPIENT)
        assert_true(phase == REPLY_PHASE_RCPT || phase == REPLY_PHASE_DATA);
    if (c->fault == REPLY_FAULT_MESSAGE)
        assert_true(phase >= REPLY_PHASE_MAIL && phase != REPLY_PHASE_QUIT);
    if (c->fault == REPLY_FAULT_NONE)
        assert_true(c->outcome == REPLY_PENDING || c->outcome == REPLY_DELIVERED);
    else
        assert_true(c->outcome != REPLY_PENDING && c->outcome != REPLY_DELIVERED);
    if (c->outcome == REPLY_DEFERRED)
        assert_true(c->retry);
}

static void test_reply_judge_real_world(void **state)
{
    (void)state;
    size_t n = sizeof reply_cases / sizeof reply_cases[0];
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const struct reply_case *t = &reply_cases[i];
        int code = reply_parse(t->raw, strlen(t->raw), &R);
        if (code < 400 || !R.complete)
            fail_msg("case %s: the raw reply did not parse (%d)", t->name, code);
        struct reply_input in = {t->phase, R.code, R.enhanced, R.text, t->relay};
        struct reply_class c = reply_judge(&in);
        if (c.fault != t->fault || c.outcome != t->outcome || c.suppress != t->suppress ||
            c.suspend != t->suspend || c.stop != t->stop)
            fail_msg("case %s (%s%s): got %s/%s suppress=%d suspend=%d stop=%d, expected "
                     "%s/%s suppress=%d suspend=%d stop=%d",
                     t->name, reply_phase_name(t->phase), t->relay ? ", relay" : "",
                     reply_fault_name(c.fault), reply_outcome_name(c.outcome), c.suppress,
                     c.suspend, c.stop, reply_fault_name(t->fault), reply_outcome_name(t->outcome),
                     t->suppress, t->suspend, t->stop);
        check_class_invariants(&c, t->phase, R.code);
        /* The legacy view never blocks and never suppresses what the judgement keeps. */
        struct reply_class old = reply_classify(t->phase, R.code, R.enhanced, R.text);
        assert_true(old.outcome <= REPLY_EXPIRED);
        assert_true(!old.suppress || c.suppress || t->relay);
        if (c.suspend || (c.stop && !t->relay))
            assert_true(old.throttle && old.retry && !old.suppress);
    }
}

static void test_reply_judge_relay(void **state)
{
    (void)state;
    /* Only relaying, authentication-required and sender-policy refusals differ by mode. */
    const char *relay_denied = "5.7.1 <someone@example.org>: Relay access denied";
    struct reply_input in = {REPLY_PHASE_RCPT, 554, "5.7.1", relay_denied, true};
    struct reply_class c = reply_judge(&in);
    assert_int_equal(c.fault, REPLY_FAULT_SETUP);
    assert_true(c.stop && c.requeue);
    assert_int_equal(c.outcome, REPLY_FAILED);
    in.relay = false;
    c = reply_judge(&in);
    assert_int_equal(c.fault, REPLY_FAULT_RECIPIENT);
    assert_int_equal(c.outcome, REPLY_BOUNCED);
    assert_false(c.suppress || c.stop);
    /* A relay denial at MAIL from an MX is a refusal of us, not of a recipient. */
    in.phase = REPLY_PHASE_MAIL;
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_SENDER);
    /* Postfix reject_sender_login_mismatch: our relay account may not use that sender. */
    struct reply_input mism = {REPLY_PHASE_MAIL, 553, "5.7.1",
                               "5.7.1 <news@example.com>: Sender address rejected: not owned by "
                               "user relay-user",
                               true};
    assert_int_equal(reply_judge(&mism).fault, REPLY_FAULT_SETUP);
    mism.relay = false;
    assert_int_equal(reply_judge(&mism).fault, REPLY_FAULT_SENDER);
    /* Everything else is the same in both modes. */
    for (size_t i = 0; i < sizeof reply_cases / sizeof reply_cases[0]; i++) {
        const struct reply_case *t = &reply_cases[i];
        reply_parse(t->raw, strlen(t->raw), &R);
        struct reply_input a = {t->phase, R.code, R.enhanced, R.text, false};
        struct reply_input b = a;
        b.relay = true;
        struct reply_class ca = reply_judge(&a), cb = reply_judge(&b);
        bool differs = strstr(t->name, "relay") || strstr(t->name, "5.7.57");
        if (!differs && ca.fault != cb.fault)
            fail_msg("case %s: %s direct, %s through a relay", t->name, reply_fault_name(ca.fault),
                     reply_fault_name(cb.fault));
    }
    /* A 5xx to STARTTLS: our relay cannot give the TLS the plan asks for; an MX's trouble. */
    struct reply_input tls = {REPLY_PHASE_STARTTLS, 554, "5.7.3",
                              "5.7.3 Unable to initialize "
                              "security subsystem",
                              true};
    assert_int_equal(reply_judge(&tls).fault, REPLY_FAULT_SETUP);
    tls.relay = false;
    c = reply_judge(&tls);
    assert_int_equal(c.fault, REPLY_FAULT_PROVIDER);
    assert_int_equal(c.outcome, REPLY_DEFERRED);
}

static void test_reply_judge_phases(void **state)
{
    (void)state;
    /* Before RCPT nothing names the recipient: a recipient code there is not the mailbox's. */
    struct reply_input in = {REPLY_PHASE_MAIL, 550, "5.1.1", "5.1.1 User unknown", false};
    struct reply_class c = reply_judge(&in);
    assert_int_equal(c.fault, REPLY_FAULT_SENDER);
    assert_false(c.suppress);
    in.phase = REPLY_PHASE_CONNECT;
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_SENDER);
    in.phase = REPLY_PHASE_EHLO;
    in.code = 451;
    in.enhanced = "4.2.2";
    in.text = "4.2.2 Mailbox full";
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_PROVIDER);
    /* Nor the message before MAIL: a "virus" greeting is a refusal of us. */
    struct reply_input v = {REPLY_PHASE_CONNECT, 554, "", "virus detected, attachment content",
                            false};
    assert_int_equal(reply_judge(&v).fault, REPLY_FAULT_SENDER);
    /* Replies to QUIT and positive replies: nothing to judge. */
    struct reply_input q = {REPLY_PHASE_QUIT, 554, "5.7.1", "blocked using spamhaus", false};
    c = reply_judge(&q);
    assert_int_equal(c.fault, REPLY_FAULT_NONE);
    assert_int_equal(c.outcome, REPLY_PENDING);
    struct reply_input ok = {REPLY_PHASE_DATA, 250, "2.0.0", "2.0.0 OK queued", false};
    assert_int_equal(reply_judge(&ok).outcome, REPLY_DELIVERED);
    ok.phase = REPLY_PHASE_RCPT;
    assert_int_equal(reply_judge(&ok).outcome, REPLY_PENDING);
    /* No reply at all, whatever the phase: the network. */
    for (int ph = REPLY_PHASE_CONNECT; ph <= REPLY_PHASE_QUIT; ph++) {
        struct reply_input none = {(enum reply_phase)ph, 0, NULL, NULL, ph % 2 == 0};
        c = reply_judge(&none);
        assert_int_equal(c.fault, REPLY_FAULT_NETWORK);
        assert_int_equal(c.outcome, REPLY_FAILED);
        assert_true(c.throttle && c.retry);
        assert_false(c.requeue || c.stop || c.suspend);
    }
    /* A phase that is not one reads as the greeting: nothing named yet. */
    struct reply_input odd = {(enum reply_phase)42, 550, "5.1.1", "5.1.1 User unknown", false};
    c = reply_judge(&odd);
    check_class_invariants(&c, REPLY_PHASE_CONNECT, 550);
    assert_false(c.suppress);
    /* AUTH: any 5xx is our set-up; a temporary failure the server's; 432 a password change. */
    struct reply_input a = {REPLY_PHASE_AUTH, 504, "5.5.4",
                            "5.5.4 Unrecognized authentication "
                            "type",
                            true};
    assert_int_equal(reply_judge(&a).fault, REPLY_FAULT_SETUP);
    a.code = 432;
    a.enhanced = "4.7.12";
    a.text = "4.7.12 A password transition is needed";
    assert_int_equal(reply_judge(&a).fault, REPLY_FAULT_SETUP);
    a.code = 421;
    a.enhanced = "4.7.0";
    a.text = "4.7.0 Too many login attempts, please try again later";
    c = reply_judge(&a);
    assert_int_equal(c.fault, REPLY_FAULT_PROVIDER);
    assert_true(c.throttle);
    /* TLS we must provide: RFC 4954's 538 and x.7.11, x.7.10, Gmail's "TLS required". */
    struct reply_input t = {REPLY_PHASE_AUTH, 538, "5.7.11",
                            "5.7.11 Encryption required for requested authentication mechanism",
                            true};
    assert_int_equal(reply_judge(&t).fault, REPLY_FAULT_SETUP);
    t.phase = REPLY_PHASE_MAIL;
    t.code = 550;
    t.enhanced = "5.7.10";
    t.text = "5.7.10 Encryption needed";
    assert_int_equal(reply_judge(&t).fault, REPLY_FAULT_SETUP);
    t.phase = REPLY_PHASE_RCPT;
    t.code = 421;
    t.enhanced = "4.7.0";
    t.text = "4.7.0 TLS required for RCPT domain, closing connection. - gsmtp";
    t.relay = false;
    assert_int_equal(reply_judge(&t).fault, REPLY_FAULT_SETUP);
    /* RFC 7505 null MX of our return path (5.7.27 with those words) is ours to fix; Gmail's
     * 5.7.27 (SPF did not pass) is the receiver refusing our authentication. */
    struct reply_input nm = {REPLY_PHASE_MAIL, 550, "5.7.27", "5.7.27 Sender address has null MX",
                             false};
    assert_int_equal(reply_judge(&nm).fault, REPLY_FAULT_SETUP);
    nm.text = "5.7.27 This mail has been blocked because SPF authentication didn't pass";
    assert_int_equal(reply_judge(&nm).fault, REPLY_FAULT_SENDER);
}

/* Text a server echoes may be anything: no crash, no read past the NUL, words on bounds. */
static void test_reply_judge_hostile(void **state)
{
    (void)state;
    /* A phrase at the very end, and one cut short by the end. */
    struct reply_input in = {REPLY_PHASE_RCPT, 550, "", "listed on rbl", false};
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_SENDER);
    in.text = "rb";
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_RECIPIENT);
    in.text = "blocked usin";
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_SENDER); /* "blocked", weaker */
    in.code = 450;
    in.text = "blocked usin, try again later";
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_PROVIDER);
    /* Short words only on word bounds: "garbled" is no RBL, "SPTR" no PTR record. */
    in.code = 550;
    in.text = "Message garbled";
    struct reply_class c = reply_judge(&in);
    assert_int_equal(c.fault, REPLY_FAULT_RECIPIENT); /* not SENDER: no RBL in it */
    assert_true(c.suppress); /* no clue at all: 550 at RCPT as RFC 5321 reads it */
    in.phase = REPLY_PHASE_MAIL;
    in.text = "SPTRX unknown";
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_SENDER); /* 5xx at MAIL, by code */
    in.phase = REPLY_PHASE_DATA;
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_MESSAGE);
    in.text = "[PTR] missing";
    assert_int_equal(reply_judge(&in).fault, REPLY_FAULT_SENDER);
    /* "greylisted" is not "listed"; upper case and bytes above 0x7F do not confuse matching. */
    in.phase = REPLY_PHASE_RCPT;
    in.code = 451;
    in.text = "\xc3\xa9\xff GREYLISTED \xf0\x9f\x98\x80";
    c = reply_judge(&in);
    assert_int_equal(c.fault, REPLY_FAULT_RECIPIENT);
    assert_false(c.throttle);
    /* Odd enhanced codes are ignored, never read past. */
    const char *bad[] = {"",      "5",      "5.",      "5.7.",       "5.7.1234", "5.07.1",
                         "9.9.9", "5.7.1x", "5.7.1.1", "5.7.515515", "4.7.26"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct reply_input e = {REPLY_PHASE_RCPT, 550, bad[i], "User unknown", false};
        c = reply_judge(&e);
        assert_int_equal(c.fault, REPLY_FAULT_RECIPIENT);
        assert_true(c.suppress);
    }
    /* The largest text the parser gives, the phrase at its last bytes. */
    static char big[REPLY_TEXT_MAX];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big + sizeof big - 1 - strlen("spamhaus"), "spamhaus", strlen("spamhaus"));
    struct reply_input b = {REPLY_PHASE_RCPT, 550, "", big, false};
    assert_int_equal(reply_judge(&b).fault, REPLY_FAULT_SENDER);
    /* Longer than any parsed text (a caller's own): searched in place, same answers. */
    static char huge[3 * REPLY_TEXT_MAX];
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    memcpy(huge + sizeof huge - 1 - strlen(" RBL"), " RBL", strlen(" RBL"));
    b.text = huge;
    assert_int_equal(reply_judge(&b).fault, REPLY_FAULT_SENDER);
    huge[sizeof huge - 5] = 'x'; /* "xRBL": not on a word bound */
    assert_int_equal(reply_judge(&b).fault, REPLY_FAULT_RECIPIENT);
    memcpy(huge + 10, "Greylisted", 10);
    b.code = 450;
    c = reply_judge(&b);
    assert_int_equal(c.fault, REPLY_FAULT_RECIPIENT);
    assert_false(c.throttle);
    /* Random printable and unprintable bytes in every phase, both modes: invariants hold. */
    uint32_t x = 2463534242u;
    static char buf[600];
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t want = x % (sizeof buf - 1);
        while (len < want) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            char ch = (char)(x % 255 + 1);
            /* Sometimes a whole phrase, to reach the decisions deep in the order. */
            static const char *const words[] = {"spamhaus",
                                                "greylist",
                                                "user unknown",
                                                "relay access denied",
                                                "rate limit",
                                                "dmarc",
                                                "over quota",
                                                "virus",
                                                "blocked",
                                                " ptr ",
                                                "sender address rejected",
                                                "reputation"};
            if (x % 7 == 0) {
                const char *w = words[(x >> 8) % (sizeof words / sizeof words[0])];
                size_t wl = strlen(w);
                if (len + wl < want) {
                    memcpy(buf + len, w, wl);
                    len += wl;
                    continue;
                }
            }
            buf[len++] = ch;
        }
        buf[len] = '\0';
        static const int codes[] = {0,   199, 250, 354, 421, 450, 451, 452, 454,
                                    530, 535, 550, 551, 552, 553, 554, 600};
        static const char *const enh[] = {"",       "5.7.1",  "4.7.1",  "5.1.1",   "5.7.26",
                                          "4.7.28", "5.1.8",  "5.3.4",  "5.7.606", "4.7.650",
                                          "5.2.2",  "5.7.27", "5.7.703"};
        int code = codes[x % (sizeof codes / sizeof codes[0])];
        const char *e = enh[(x >> 5) % (sizeof enh / sizeof enh[0])];
        for (int ph = REPLY_PHASE_CONNECT; ph <= REPLY_PHASE_QUIT; ph++)
            for (int relay = 0; relay < 2; relay++) {
                struct reply_input r = {(enum reply_phase)ph, code, e, buf, relay != 0};
                c = reply_judge(&r);
                check_class_invariants(&c, (enum reply_phase)ph, code);
            }
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
    assert_string_equal(reply_outcome_name(REPLY_BLOCKED), "blocked");
    assert_int_equal(REPLY_BLOCKED, REPLY_EXPIRED + 1); /* appended: the old values stand */
    assert_string_equal(reply_fault_name(REPLY_FAULT_NONE), "none");
    assert_string_equal(reply_fault_name(REPLY_FAULT_RECIPIENT), "recipient");
    assert_string_equal(reply_fault_name(REPLY_FAULT_MESSAGE), "message");
    assert_string_equal(reply_fault_name(REPLY_FAULT_PROVIDER), "provider");
    assert_string_equal(reply_fault_name(REPLY_FAULT_SENDER), "sender");
    assert_string_equal(reply_fault_name(REPLY_FAULT_SETUP), "setup");
    assert_string_equal(reply_fault_name(REPLY_FAULT_NETWORK), "network");
    assert_string_equal(reply_fault_name((enum reply_fault)99), "?");
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
        cmocka_unit_test(test_reply_judge_real_world),
        cmocka_unit_test(test_reply_judge_relay),
        cmocka_unit_test(test_reply_judge_phases),
        cmocka_unit_test(test_reply_judge_hostile),
        cmocka_unit_test(test_reply_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
