/*
 * test_spf_suite: the OpenSPF RFC 7208 conformance suite (release 2014.04, 203 tests), as
 * Debian's python3-spf installs it, run through spf_check_opts() over the in-memory zone.
 *
 * Each YAML document is a scenario: zone data and tests (helo, host, mailfrom, the expected
 * result or a list of acceptable ones, and sometimes the explanation). The zone is loaded as
 * the suite's own driver (testspf.py in the same package) loads it: an "SPF" record stands
 * for both an SPF (type 99) and a TXT record unless the name lists TXT records of its own
 * ("Selecting records" tests that the evaluator asks TXT only); "NONE" adds no record but
 * keeps the name in existence; TIMEOUT makes every query for the name time out, except for
 * the types listed before it; TXT strings given as a list are one record, joined. The
 * default explanation is "DEFAULT", as the driver sets it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <yaml.h>

#include "ipwarm/dns.h"
#include "ipwarm/spf.h"

#define SUITE_PATH  "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"
#define SUITE_TESTS 203
#define T_SPF       ((enum dns_type)99)

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static enum dns_type type_of(const char *t)
{
    static const struct {
        const char *name;
        enum dns_type type;
    } types[] = {{"A", DNS_T_A},     {"AAAA", DNS_T_AAAA},   {"MX", DNS_T_MX}, {"TXT", DNS_T_TXT},
                 {"PTR", DNS_T_PTR}, {"CNAME", DNS_T_CNAME}, {"SPF", T_SPF}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(t, types[i].name) == 0)
            return types[i].type;
    fail_msg("zone data: unknown record type %s", t);
    return DNS_T_ANY;
}

/* The strings of a TXT/SPF value (a scalar or a list of them) joined, in a malloc'ed buffer. */
static char *txt_join(yaml_document_t *d, yaml_node_t *v, size_t *len)
{
    size_t cap = 1, n = 0;
    char *buf;
    if (v->type == YAML_SCALAR_NODE) {
        *len = v->data.scalar.length;
        buf = malloc(*len + 1);
        assert_non_null(buf);
        memcpy(buf, v->data.scalar.value, *len);
        buf[*len] = '\0';
        return buf;
    }
    assert_int_equal(v->type, YAML_SEQUENCE_NODE);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
        cap += yaml_document_get_node(d, *it)->data.scalar.length;
    buf = malloc(cap);
    assert_non_null(buf);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *s = yaml_document_get_node(d, *it);
        memcpy(buf + n, s->data.scalar.value, s->data.scalar.length);
        n += s->data.scalar.length;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Loads one name's records into z, as testspf.py's getrdata() and DNSLookup() read them. */
static void load_name(struct dns_zone *z, yaml_document_t *d, const char *name, yaml_node_t *rrs)
{
    struct err e;
    bool has_txt = false, seen[256] = {false};
    assert_int_equal(rrs->type, YAML_SEQUENCE_NODE);
    for (yaml_node_item_t *it = rrs->data.sequence.items.start; it < rrs->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(d, *it);
        yaml_node_t *k = item->type == YAML_MAPPING_NODE
                             ? yaml_document_get_node(d, item->data.mapping.pairs.start->key)
                             : NULL;
        if (k && strcmp(scalar(k), "TXT") == 0)
            has_txt = true;
    }
    for (yaml_node_item_t *it = rrs->data.sequence.items.start; it < rrs->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(d, *it);
        if (item->type == YAML_SCALAR_NODE) {
            assert_string_equal(scalar(item), "TIMEOUT");
            /* Types listed before TIMEOUT answer; everything else times out. */
            static const enum dns_type all[] = {DNS_T_A,   DNS_T_AAAA,  DNS_T_MX, DNS_T_TXT,
                                                DNS_T_PTR, DNS_T_CNAME, T_SPF};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                if (!seen[all[i]])
                    assert_int_equal(dns_zone_fail(z, name, all[i], DNS_TIMEOUT, &e), IPW_OK);
            continue;
        }
        yaml_node_pair_t *p = item->data.mapping.pairs.start;
        const char *tname = scalar(yaml_document_get_node(d, p->key));
        yaml_node_t *v = yaml_document_get_node(d, p->value);
        enum dns_type t = type_of(tname);
        if (v->type == YAML_SCALAR_NODE && strcmp(scalar(v), "NONE") == 0)
            continue; /* no record, but the name exists */
        seen[t] = true;
        if (t == DNS_T_TXT || t == T_SPF) {
            size_t len;
            char *txt = txt_join(d, v, &len);
            if (t == DNS_T_TXT)
                assert_int_equal(dns_zone_add_txt(z, name, 300, txt, len, &e), IPW_OK);
            else
                assert_int_equal(dns_zone_add(z, name, T_SPF, 300, txt, &e), IPW_OK);
            free(txt);
        } else if (t == DNS_T_MX) {
            char mx[300];
            const char *host = scalar(yaml_document_get_node(d, v->data.sequence.items.start[1]));
            snprintf(mx, sizeof mx, "%s %s",
                     scalar(yaml_document_get_node(d, v->data.sequence.items.start[0])),
                     *host ? host : ".");
            assert_int_equal(dns_zone_add(z, name, DNS_T_MX, 300, mx, &e), IPW_OK);
        } else {
            assert_int_equal(dns_zone_add(z, name, t, 300, scalar(v), &e), IPW_OK);
        }
    }
    if (has_txt)
        return;
    /* The driver's generated TXT records: a copy of each SPF one, after the others. */
    for (yaml_node_item_t *it = rrs->data.sequence.items.start; it < rrs->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(d, *it);
        if (item->type != YAML_MAPPING_NODE)
            continue;
        yaml_node_pair_t *p = item->data.mapping.pairs.start;
        yaml_node_t *v = yaml_document_get_node(d, p->value);
        if (strcmp(scalar(yaml_document_get_node(d, p->key)), "SPF") != 0 ||
            (v->type == YAML_SCALAR_NODE && strcmp(scalar(v), "NONE") == 0))
            continue;
        size_t len;
        char *txt = txt_join(d, v, &len);
        assert_int_equal(dns_zone_add_txt(z, name, 300, txt, len, &e), IPW_OK);
        free(txt);
    }
}

struct tally {
    int run, passed;
};

static bool result_ok(yaml_document_t *d, yaml_node_t *want, const char *got)
{
    if (want->type == YAML_SCALAR_NODE)
        return strcmp(scalar(want), got) == 0;
    for (yaml_node_item_t *it = want->data.sequence.items.start; it < want->data.sequence.items.top;
         it++)
        if (strcmp(scalar(yaml_document_get_node(d, *it)), got) == 0)
            return true;
    return false;
}

static void run_scenario(yaml_document_t *d, struct tally *tally)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    yaml_node_t *zone = map_get(d, root, "zonedata"), *tests = map_get(d, root, "tests");
    struct err e;
    struct dns_zone *z = dns_zone_new();
    assert_non_null(z);
    assert_non_null(tests);
    if (zone)
        for (yaml_node_pair_t *p = zone->data.mapping.pairs.start; p < zone->data.mapping.pairs.top;
             p++)
            load_name(z, d, scalar(yaml_document_get_node(d, p->key)),
                      yaml_document_get_node(d, p->value));
    struct dns *dns = dns_new_zone(z, NULL, &e);
    assert_non_null(dns);
    const struct spf_options opt = {.default_explanation = "DEFAULT"};

    for (yaml_node_pair_t *p = tests->data.mapping.pairs.start; p < tests->data.mapping.pairs.top;
         p++) {
        const char *id = scalar(yaml_document_get_node(d, p->key));
        yaml_node_t *t = yaml_document_get_node(d, p->value);
        const char *helo = scalar(map_get(d, t, "helo")), *host = scalar(map_get(d, t, "host"));
        const char *from = scalar(map_get(d, t, "mailfrom"));
        const char *exp = scalar(map_get(d, t, "explanation"));
        yaml_node_t *want = map_get(d, t, "result");
        struct spf_result r;
        ipw_status st = spf_check_opts(dns, host, from, helo, &opt, &r, &e);
        bool ok = st == IPW_OK && result_ok(d, want, spf_result_name(r.result)) &&
                  (!exp || strcmp(exp, r.explanation) == 0);
        tally->run++;
        if (ok) {
            tally->passed++;
        } else {
            printf("FAIL %s: host %s, mailfrom '%s', helo '%s': got %s%s%s, explanation '%s' "
                   "(lookups %d, void %d)%s%s\n",
                   id, host, from, helo, st == IPW_OK ? spf_result_name(r.result) : "error ",
                   st == IPW_OK ? "" : e.msg, "", r.explanation, r.lookups, r.void_lookups,
                   exp ? "; expected explanation: " : "", exp ? exp : "");
            if (want->type == YAML_SCALAR_NODE)
                printf("     expected %s\n", scalar(want));
        }
    }
    dns_free(dns);
    dns_zone_free(z);
}

static void test_rfc7208_suite(void **state)
{
    (void)state;
    if (access(SUITE_PATH, R_OK) != 0)
        fail_msg("%s is missing: install the Debian package python3-spf (scripts/deps test)",
                 SUITE_PATH);
    FILE *f = popen("gzip -dc " SUITE_PATH, "r");
    assert_non_null(f);
    yaml_parser_t parser;
    assert_true(yaml_parser_initialize(&parser));
    yaml_parser_set_input_file(&parser, f);
    struct tally tally = {0};
    int scenarios = 0;
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc))
            fail_msg("the suite is not valid YAML: %s at line %zu", parser.problem,
                     parser.problem_mark.line + 1);
        if (!yaml_document_get_root_node(&doc)) {
            yaml_document_delete(&doc);
            break;
        }
        run_scenario(&doc, &tally);
        scenarios++;
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    assert_int_equal(pclose(f), 0);
    printf("RFC 7208 suite: %d/%d passed (%d scenarios)\n", tally.passed, SUITE_TESTS, scenarios);
    assert_int_equal(tally.run, SUITE_TESTS);
    assert_int_equal(tally.passed, SUITE_TESTS);
}

int main(void)
{
    /* Without the suite's file there is nothing to run: 77 is ctest's "skipped". */
    if (access(SUITE_PATH, R_OK) != 0) {
        fprintf(stderr,
                "skip: %s is missing: install the Debian package python3-spf "
                "(scripts/deps test)\n",
                SUITE_PATH);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7208_suite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
