/* Unit tests of template.c: template_check, template_check_at and template_expand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/template.h"

static const char *const cols[] = {"email", "first_name", "Company Name"};

static struct template_vars vars_for(const char *const *values)
{
    struct template_vars v = {
        .recipient = "bob@example.org",
        .seq = 42,
        .date = "Tue, 01 Dec 2026 09:00:00 +0900",
        .campaign = "mx1-new-ip",
        .token = "tok/en+1",
        .names = cols,
        .values = values,
        .n = 3,
        .src = "seeds.csv",
        .src_line = 7,
    };
    return v;
}

static char *expand_ok(const char *text, const struct template_vars *v, unsigned flags)
{
    struct err e;
    char *out = NULL;
    size_t len = 0;
    ipw_status s = template_expand(text, v, flags, "t", &out, &len, &e);
    if (s != IPW_OK)
        fail_msg("template_expand: %s", e.msg);
    assert_int_equal(len, strlen(out));
    return out;
}

static void test_template_expand_builtins_and_columns(void **state)
{
    (void)state;
    const char *values[] = {"bob@example.org", "Bob", "ACME"};
    struct template_vars v = vars_for(values);
    char *out = expand_ok("Hi {{first_name}} <{{recipient}}> #{{seq}} of {{campaign}} on "
                          "{{date}} from {{ Company Name }}/{{FIRST_NAME}}/{{token}}",
                          &v, 0);
    assert_string_equal(out, "Hi Bob <bob@example.org> #42 of mx1-new-ip on Tue, 01 Dec 2026 "
                             "09:00:00 +0900 from ACME/Bob/tok/en+1");
    free(out);
    out = expand_ok("", &v, 0);
    assert_string_equal(out, "");
    free(out);
    out = expand_ok("no placeholders } here }}", &v, 0);
    assert_string_equal(out, "no placeholders } here }}");
    free(out);
    out = expand_ok("{a}\n{ {{seq}}{\n{{{{x}{", &v, 0);
    assert_string_equal(out, "{a}\n{ 42{\n{{x}{");
    free(out);
}

static void test_template_literal_braces(void **state)
{
    (void)state;
    struct template_vars v = vars_for((const char *[]){"a@b.cd", "Bob", ""});
    char *out = expand_ok("{{{{first_name}} is {{first_name}}, {{{{ alone", &v, 0);
    assert_string_equal(out, "{{first_name}} is Bob, {{ alone");
    free(out);
    struct err e;
    assert_int_equal(template_check("{{{{not checked}}", cols, 3, "t", &e), IPW_OK);
}

static void test_template_check_unknown_placeholder(void **state)
{
    (void)state;
    struct err e;
    const char *text = "Hello {{first_name}},\n\nline two\nsee {{frist_name}} here\n";
    assert_int_equal(template_check(text, cols, 3, "message.txt", &e), IPW_EDATA);
    assert_string_equal(e.msg, "message.txt:4: unknown placeholder {{frist_name}} (known: "
                               "recipient, seq, date, campaign, token, email, first_name, "
                               "Company Name)");
    /* A plain-text list has no columns: only built-ins are known. */
    assert_int_equal(template_check("{{email}}", NULL, 0, "m.txt", &e), IPW_EDATA);
    assert_string_equal(e.msg, "m.txt:1: unknown placeholder {{email}} (known: recipient, seq, "
                               "date, campaign, token)");
    /* One-line values written in the plan are named by key, without a line. */
    assert_int_equal(template_check_at("Hi {{nope}}", cols, 3, "plan.yaml: message.subject", 0, &e),
                     IPW_EDATA);
    assert_non_null(strstr(e.msg, "plan.yaml: message.subject: unknown placeholder {{nope}}"));
    assert_int_equal(template_check("ok {{ recipient }} {{Seq}} {{EMAIL}}", cols, 3, "t", &e),
                     IPW_OK);
}

static void test_template_check_syntax_errors(void **state)
{
    (void)state;
    struct err e;
    assert_int_equal(template_check("line 1\nHi {{first_name\n}}", cols, 3, "m.txt", &e),
                     IPW_EDATA);
    assert_non_null(strstr(e.msg, "m.txt:2: unterminated placeholder \"{{first_name\""));
    assert_int_equal(template_check("Hi {{", cols, 3, "m.txt", &e), IPW_EDATA);
    assert_non_null(strstr(e.msg, "m.txt:1: unterminated placeholder"));
    assert_int_equal(template_check("a\nb\nc {{  }}", cols, 3, "m.txt", &e), IPW_EDATA);
    assert_string_equal(e.msg, "m.txt:3: empty placeholder {{  }}");
    /* Single braces are text, and the lines they are on are counted. */
    assert_int_equal(template_check("{a}\n{ b {\n}{\n x{ {{}}", cols, 3, "m.txt", &e), IPW_EDATA);
    assert_string_equal(e.msg, "m.txt:4: empty placeholder {{}}");
    /* Expansion refuses the same text the same way. */
    struct template_vars v = vars_for((const char *[]){"a@b.cd", "Bob", ""});
    char *out = (char *)1;
    assert_int_equal(template_expand("x {{seq", &v, 0, "m.txt", &out, NULL, &e), IPW_EDATA);
    assert_null(out);
}

static void test_template_header_refuses_line_breaks(void **state)
{
    (void)state;
    const char *values[] = {"bob@example.org", "Bob\r\nBcc: victim@example.net", "ACME"};
    struct template_vars v = vars_for(values);
    struct err e;
    char *out = (char *)1;
    assert_int_equal(
        template_expand("Hello {{first_name}}", &v, TEMPLATE_HEADER, "subject", &out, NULL, &e),
        IPW_EDATA);
    assert_null(out);
    assert_string_equal(e.msg, "seeds.csv:7: the value of {{first_name}} contains a line break, "
                               "refused in a header");
    values[1] = "Bob\nX";
    assert_int_equal(template_expand("{{first_name}}", &v, TEMPLATE_HEADER, "s", &out, NULL, &e),
                     IPW_EDATA);
    /* In a body a line break in a value is only text. */
    out = expand_ok("Hello {{first_name}}", &v, 0);
    assert_string_equal(out, "Hello Bob\nX");
    free(out);
}

static void test_template_html_and_url_escaping(void **state)
{
    (void)state;
    const char *values[] = {"bob@example.org", "<b>Tom & \"Jerry\"</b> 'x'", "A/B"};
    struct template_vars v = vars_for(values);
    char *out = expand_ok("<p>{{first_name}}</p>", &v, TEMPLATE_HTML);
    assert_string_equal(out, "<p>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt; &#39;x&#39;</p>");
    free(out);
    out = expand_ok("https://example.com/u/{{token}}?c={{company name}}&r={{recipient}}", &v,
                    TEMPLATE_URL);
    assert_string_equal(out, "https://example.com/u/tok%2Fen%2B1?c=A%2FB&r=bob%40example.org");
    free(out);
}

static void test_template_missing_builtin_is_usage_error(void **state)
{
    (void)state;
    struct template_vars v = vars_for((const char *[]){"a@b.cd", "Bob", ""});
    v.token = NULL;
    struct err e;
    char *out;
    assert_int_equal(
        template_expand("u/{{token}}", &v, TEMPLATE_URL, "list_unsubscribe", &out, NULL, &e),
        IPW_EUSAGE);
    assert_string_equal(e.msg, "list_unsubscribe: no value given for {{token}}");
    /* A column value left NULL is empty, not an error. */
    v.values = (const char *[]){"a@b.cd", NULL, ""};
    out = expand_ok("[{{first_name}}]", &v, 0);
    assert_string_equal(out, "[]");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_expand_builtins_and_columns),
        cmocka_unit_test(test_template_literal_braces),
        cmocka_unit_test(test_template_check_unknown_placeholder),
        cmocka_unit_test(test_template_check_syntax_errors),
        cmocka_unit_test(test_template_header_refuses_line_breaks),
        cmocka_unit_test(test_template_html_and_url_escaping),
        cmocka_unit_test(test_template_missing_builtin_is_usage_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
