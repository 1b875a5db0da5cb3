/*
 * fuzz_feedback: the bounce and complaint report parser (feedback.h: GMime for MIME, fields.c,
 * dsn.c, arf.c, bounce.c) on arbitrary bytes, as anyone can mail them to the bounce mailbox.
 *
 * Besides memory safety and GMime's own limits, it checks what feedback.h promises of any
 * input: a report always comes back; kind and action in range; at most FEEDBACK_MAX_RECIPIENTS
 * recipients, each with an address; statuses empty or valid RFC 3463 codes, and for a dsn each
 * recipient has both a status and an action; strings without control characters and
 * within their limits; an original Message-ID in angle brackets; a VERP token of the VERP
 * shape; a 64-digit fingerprint; and the same input parsed twice gives the same report.
 */
#include <string.h>

#include "ipwarm/dsn.h"
#include "ipwarm/feedback.h"
#include "ipwarm/verp.h"

#include "fuzz.h"

static void fuzz_text(const char *s, size_t max)
{
    if (!s)
        return;
    size_t n = strlen(s);
    FUZZ_CHECK(n > 0 && n <= max);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

static bool fuzz_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct feedback_report *r = NULL, *again = NULL;
    struct err e;
    FUZZ_CHECK(feedback_parse((const char *)data, size, &r, &e) == IPW_OK && r);
    FUZZ_CHECK(r->kind >= FEEDBACK_OTHER && r->kind <= FEEDBACK_ARF);
    FUZZ_CHECK(r->format && r->format[0]);
    FUZZ_CHECK(r->n_recipients <= FEEDBACK_MAX_RECIPIENTS);
    if (r->kind == FEEDBACK_DSN)
        FUZZ_CHECK(r->n_recipients > 0);
    for (size_t i = 0; i < r->n_recipients; i++) {
        const struct feedback_recipient *rc = &r->recipients[i];
        FUZZ_CHECK(rc->address);
        fuzz_text(rc->address, FEEDBACK_MAX_TEXT);
        fuzz_text(rc->diagnostic, FEEDBACK_MAX_TEXT);
        fuzz_text(rc->original, FEEDBACK_MAX_TEXT);
        fuzz_text(rc->remote_mta, FEEDBACK_MAX_TEXT);
        FUZZ_CHECK(rc->action >= FEEDBACK_ACTION_NONE && rc->action <= FEEDBACK_ACTION_EXPANDED);
        size_t sl = strnlen(rc->status, sizeof rc->status);
        FUZZ_CHECK(sl < sizeof rc->status);
        if (sl)
            FUZZ_CHECK(dsn_status_valid(rc->status, sl));
        if (r->kind == FEEDBACK_DSN) /* a dsn names a status for each recipient */
            FUZZ_CHECK(sl > 0 && rc->action != FEEDBACK_ACTION_NONE);
    }
    fuzz_text(r->feedback_type, FEEDBACK_MAX_TEXT);
    fuzz_text(r->ipwarm_id, FEEDBACK_MAX_TEXT);
    fuzz_text(r->subject, FEEDBACK_MAX_TEXT);
    fuzz_text(r->from, FEEDBACK_MAX_TEXT);
    fuzz_text(r->envelope_id, FEEDBACK_MAX_TEXT);
    if (r->original_message_id) {
        size_t n = strlen(r->original_message_id);
        FUZZ_CHECK(n >= 3 && r->original_message_id[0] == '<' &&
                   r->original_message_id[n - 1] == '>');
    }
    if (r->verp_token)
        FUZZ_CHECK(verp_token_shaped(r->verp_token, strlen(r->verp_token)));
    if (r->original_headers)
        FUZZ_CHECK(strlen(r->original_headers) <= FEEDBACK_MAX_HEADERS);
    FUZZ_CHECK(strlen(r->fingerprint) == 64);
    FUZZ_CHECK(feedback_kind_name(r->kind)[0]);
    if (r->kind != FEEDBACK_OTHER)
        FUZZ_CHECK(!r->auto_reply);

    /* deterministic: the same bytes give the same report */
    FUZZ_CHECK(feedback_parse((const char *)data, size, &again, &e) == IPW_OK && again);
    FUZZ_CHECK(again->kind == r->kind && again->n_recipients == r->n_recipients);
    FUZZ_CHECK(fuzz_same(again->original_message_id, r->original_message_id));
    FUZZ_CHECK(fuzz_same(again->ipwarm_id, r->ipwarm_id));
    FUZZ_CHECK(strcmp(again->fingerprint, r->fingerprint) == 0);
    feedback_report_free(again);
    feedback_report_free(r);
    return 0;
}
