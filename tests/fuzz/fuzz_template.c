/*
 * fuzz_template: the {{placeholder}} checker and expander (template.h) on arbitrary templates
 * and column values.
 *
 * Input: one byte of flags (TEMPLATE_HEADER, _HTML, _URL), then the template, then up to two
 * column values, separated by NUL bytes. Checks what template.h promises: template_check and
 * template_expand agree on the syntax (a template that checks expands, except a header value
 * with a line break; one that does not check does not expand); on success *out_len is the
 * length of *out; on failure *out is NULL; a header expansion holds no CR or LF that was not in
 * the template; an HTML one holds no '<' from a value; a URL one no byte outside the
 * template's own that is not unreserved or a percent escape.
 */
#include <stdbool.h>
#include <string.h>

#include "ipwarm/template.h"

#include "fuzz.h"

static const char *const cols[] = {"first_name", "company"};

/* True when no byte of s is one of set that t does not hold too. */
static bool only_from_template(const char *s, const char *t, const char *set)
{
    for (const char *c = set; *c; c++)
        if (strchr(s, *c) && !strchr(t, *c))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    unsigned flags = data[0] & (TEMPLATE_HEADER | TEMPLATE_HTML | TEMPLATE_URL);
    char *buf = malloc(size + 3);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = buf[size] = buf[size + 1] = '\0';
    /* Split at NUL bytes: template, value 1, value 2 (missing parts are ""). */
    const char *text = buf;
    const char *v1 = text + strlen(text) + 1;
    if (v1 > buf + size - 1)
        v1 = buf + size - 1;
    const char *v2 = v1 + strlen(v1) + 1;
    if (v2 > buf + size)
        v2 = buf + size;
    const char *values[] = {v1, v2};

    struct err e;
    ipw_status chk = template_check(text, cols, 2, "fuzz", &e);
    FUZZ_CHECK(chk == IPW_OK || chk == IPW_EDATA);
    ipw_status chk_at = template_check_at(text, cols, 2, "fuzz", 0, &e);
    FUZZ_CHECK(chk_at == chk);

    struct template_vars v = {
        .recipient = "bob@example.org",
        .seq = 42,
        .date = "Tue, 01 Dec 2026 09:00:00 +0900",
        .campaign = "camp<&>",
        .token = "tok/en+1",
        .names = cols,
        .values = values,
        .n = 2,
        .src = "seeds.csv",
        .src_line = 7,
    };
    char *out = (char *)1;
    size_t out_len = 0;
    ipw_status st = template_expand(text, &v, flags, "fuzz", &out, &out_len, &e);
    if (st == IPW_OK) {
        FUZZ_CHECK(chk == IPW_OK);
        FUZZ_CHECK(out != NULL && out_len == strlen(out));
        if (flags & TEMPLATE_HEADER)
            FUZZ_CHECK(only_from_template(out, text, "\r\n"));
        if (flags & TEMPLATE_HTML)
            FUZZ_CHECK(only_from_template(out, text, "<>\""));
        if (flags & TEMPLATE_URL)
            FUZZ_CHECK(only_from_template(out, text, " <>\"\r\n@/"));
        free(out);
    } else {
        FUZZ_CHECK(out == NULL);
        if (chk == IPW_OK)
            FUZZ_CHECK(st == IPW_EDATA && (flags & TEMPLATE_HEADER));
    }
    free(buf);
    return 0;
}
