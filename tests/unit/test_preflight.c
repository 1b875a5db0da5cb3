/*
 * Tests of preflight.c and preflight_smtp.c's pure parts on the in-memory DNS zone: FCrDNS
 * (pass, no PTR, PTR not confirmed, timeout), the HELO name, the DKIM key compared key for key
 * (match, another key, no record, revoked), DMARC (present, absent, unparsable, the
 * organisational domain's, strict alignment, temperror), SPF through spf_check, the MX check of
 * a recipient list (each status named, providers), the report's required flags and JSON, and
 * the message size estimate (the DMARC record itself: test_dmarc.c). The same checks against
 * dnsmasq and smtpd.py, with the SMTP probe, are in tests/cli/test_check.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipwarm/preflight.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ipwarm-preflight-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char cmd[512];
    /* Two DKIM keys: the configured one and another. */
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out %s/k1.pem "
             "2>/dev/null && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "
             "%s/k2.pem 2>/dev/null",
             dir, dir);
    if (system(cmd) != 0)
        return -1;
    FILE *f;
    char path[160];
    snprintf(path, sizeof path, "%s/message.txt", dir);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs("hello\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/seeds.txt", dir);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs("a@ok.test\nb@ok.test\nc@null.test\nd@nx.test\ne@noaddr.test\nf@slow.test\n"
          "g@gm.test\nnot an address\n",
          f);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The p= of a key file, as openssl itself computes it (RFC 6376 3.6.1: base64 of the DER
 * SubjectPublicKeyInfo). */
static char *openssl_p(const char *key)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "openssl pkey -in %s/%s -pubout -outform DER 2>/dev/null | base64 -w0", dir, key);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    static char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    pclose(f);
    buf[n] = '\0';
    assert_true(n > 100);
    return buf;
}

static struct plan *load(const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text,
             "campaign: t\n"
             "source: {ips: [192.0.2.10, 192.0.2.11, 192.0.2.12], helo: mx1.ex.test}\n"
             "sender:\n"
             "  from: \"T <news@ex.test>\"\n"
             "  return_path: bounces@ex.test\n"
             "  dkim: {domain: ex.test, selector: s1, key_file: k1.pem}\n"
             "message: {subject: Hi, text_file: message.txt}\n"
             "recipients: {file: seeds.txt}\n"
             "%s",
             extra ? extra : "");
    struct plan *p = NULL;
    struct err e;
    if (plan_load_text(text, strlen(text), "t.yaml", dir, &p, &e) != IPW_OK)
        fail_msg("plan: %s", e.msg);
    return p;
}

static void zadd(struct dns_zone *z, const char *name, enum dns_type t, const char *data)
{
    struct err e;
    if (dns_zone_add(z, name, t, 300, data, &e) != IPW_OK)
        fail_msg("zone: %s", e.msg);
}

static void zfail(struct dns_zone *z, const char *name, enum dns_type t, enum dns_status s)
{
    struct err e;
    assert_int_equal(dns_zone_fail(z, name, t, s, &e), IPW_OK);
}

static const struct preflight_check *nth(const struct preflight_report *r, const char *name,
                                         size_t n)
{
    for (size_t i = 0; i < r->n_checks; i++)
        if (strcmp(r->checks[i].name, name) == 0 && n-- == 0)
            return &r->checks[i];
    fail_msg("no check %s", name);
    return NULL;
}

static void test_preflight_ptr_and_helo(void **state)
{
    (void)state;
    struct err e;
    struct dns_zone *z = dns_zone_new();
    assert_non_null(z);
    /* .10: FCrDNS and HELO both right. .11: its PTR name resolves elsewhere. .12: the reverse
     * zone times out. */
    zadd(z, "10.2.0.192.in-addr.arpa", DNS_T_PTR, "mx1.ex.test");
    zadd(z, "mx1.ex.test", DNS_T_A, "192.0.2.10");
    zadd(z, "11.2.0.192.in-addr.arpa", DNS_T_PTR, "other.ex.test");
    zadd(z, "other.ex.test", DNS_T_A, "192.0.2.99");
    zfail(z, "12.2.0.192.in-addr.arpa", DNS_T_PTR, DNS_TIMEOUT);
    struct dns *dns = dns_new_zone(z, NULL, &e);
    struct plan *p = load("preflight: {require: [ptr]}\n");
    struct preflight_report r;
    preflight_report_init(&r);
    assert_int_equal(preflight_ptr(&r, p, dns, &e), IPW_OK);
    assert_int_equal(preflight_helo(&r, p, dns, &e), IPW_OK);
    preflight_report_finish(&r);

    const struct preflight_check *c = nth(&r, "ptr", 0);
    assert_int_equal(c->status, PREFLIGHT_PASS);
    assert_true(c->required);
    assert_string_equal(c->subject, "192.0.2.10");
    assert_null(c->fix);
    c = nth(&r, "ptr", 1);
    assert_int_equal(c->status, PREFLIGHT_FAIL);
    assert_non_null(strstr(c->detail, "other.ex.test"));
    assert_string_equal(c->lookup, "dig +short -x 192.0.2.11");
    assert_non_null(c->fix);
    c = nth(&r, "ptr", 2);
    assert_int_equal(c->status, PREFLIGHT_WARN); /* a timeout is never a verdict */

    c = nth(&r, "helo", 0);
    assert_int_equal(c->status, PREFLIGHT_PASS);
    assert_false(c->required);
    c = nth(&r, "helo", 1);
    assert_int_equal(c->status, PREFLIGHT_FAIL);
    assert_non_null(strstr(c->detail, "resolves to 192.0.2.10, not to 192.0.2.11"));
    assert_string_equal(c->lookup, "dig +short A mx1.ex.test");

    /* One required check failed (ptr of .11); the helo failure is not required. */
    assert_false(r.ok);
    assert_int_equal(r.required_failed, 1);
    preflight_report_clear(&r);

    /* No PTR at all. */
    struct dns_zone *z2 = dns_zone_new();
    zadd(z2, "mx1.ex.test", DNS_T_A, "192.0.2.10");
    struct dns *dns2 = dns_new_zone(z2, NULL, &e);
    preflight_report_init(&r);
    assert_int_equal(preflight_ptr(&r, p, dns2, &e), IPW_OK);
    c = nth(&r, "ptr", 0);
    assert_int_equal(c->status, PREFLIGHT_FAIL);
    assert_non_null(strstr(c->detail, "has no PTR record"));
    preflight_report_clear(&r);
    dns_free(dns2);
    dns_zone_free(z2);
    plan_free(p);
    dns_free(dns);
    dns_zone_free(z);
}

static void test_preflight_dkim_key(void **state)
{
    (void)state;
    struct err e;
    char rec[2200];
    struct dns_zone *z = dns_zone_new();
    snprintf(rec, sizeof rec, "v=DKIM1; k=rsa; p=%s", openssl_p("k1.pem"));
    zadd(z, "s1._domainkey.ex.test", DNS_T_TXT, rec);
    snprintf(rec, sizeof rec, "v=DKIM1; k=rsa; p=%s", openssl_p("k2.pem"));
    zadd(z, "s2._domainkey.ex.test", DNS_T_TXT, rec);
    zadd(z, "s3._domainkey.ex.test", DNS_T_TXT, "v=DKIM1; p=");
    struct dns *dns = dns_new_zone(z, NULL, &e);
    const char *sel[] = {"s1", "s2", "s3", "s4"};
    enum preflight_status want[] = {PREFLIGHT_PASS, PREFLIGHT_FAIL, PREFLIGHT_FAIL, PREFLIGHT_FAIL};
    const char *says[] = {"matches", "does not match", "revoked", "no DKIM record"};
    for (int i = 0; i < 4; i++) {
        char extra[200];
        snprintf(extra, sizeof extra, "preflight: {require: [dkim]}\n");
        struct plan *p = load(extra);
        free(p->dkim_selector);
        p->dkim_selector = strdup(sel[i]);
        struct preflight_report r;
        preflight_report_init(&r);
        assert_int_equal(preflight_dkim(&r, p, dns, &e), IPW_OK);
        const struct preflight_check *c = nth(&r, "dkim", 0);
        if (c->status != want[i] || !strstr(c->detail, says[i]))
            fail_msg("selector %s: %s: %s", sel[i], preflight_status_name(c->status), c->detail);
        if (want[i] == PREFLIGHT_FAIL) {
            /* The fix publishes the configured key's own p=. */
            assert_non_null(strstr(c->fix, openssl_p("k1.pem")));
            char lk[100];
            snprintf(lk, sizeof lk, "dig +short TXT %s._domainkey.ex.test", sel[i]);
            assert_string_equal(c->lookup, lk);
        }
        preflight_report_clear(&r);
        plan_free(p);
    }
    /* Not configured and not required: skip. */
    struct plan *p = load(NULL);
    p->dkim = false;
    struct preflight_report r;
    preflight_report_init(&r);
    assert_int_equal(preflight_dkim(&r, p, dns, &e), IPW_OK);
    assert_int_equal(nth(&r, "dkim", 0)->status, PREFLIGHT_SKIP);
    preflight_report_clear(&r);
    plan_free(p);
    dns_free(dns);
    dns_zone_free(z);
}

static enum preflight_status dmarc_status(struct dns_zone *z, const char *from, const char *rp,
                                          const char *dkim_domain, char *detail, size_t n)
{
    struct err e;
    struct dns *dns = dns_new_zone(z, NULL, &e);
    struct plan *p = load("preflight: {require: [dmarc]}\n");
    free(p->from_addr);
    p->from_addr = strdup(from);
    free(p->return_path);
    p->return_path = strdup(rp);
    if (dkim_domain) {
        free(p->dkim_domain);
        p->dkim_domain = strdup(dkim_domain);
    } else {
        p->dkim = false;
    }
    struct preflight_report r;
    preflight_report_init(&r);
    assert_int_equal(preflight_dmarc(&r, p, dns, &e), IPW_OK);
    const struct preflight_check *c = nth(&r, "dmarc", 0);
    enum preflight_status s = c->status;
    snprintf(detail, n, "%s", c->detail);
    preflight_report_clear(&r);
    plan_free(p);
    dns_free(dns);
    return s;
}

static void test_preflight_dmarc(void **state)
{
    (void)state;
    char d[512];
    struct dns_zone *z = dns_zone_new();
    zadd(z, "_dmarc.ex.test", DNS_T_TXT, "v=DMARC1; p=quarantine");
    zadd(z, "_dmarc.strict.test", DNS_T_TXT, "v=DMARC1; p=reject; aspf=s; adkim=s");
    zadd(z, "_dmarc.bad.test", DNS_T_TXT, "v=DMARC1; p=maybe");
    zadd(z, "_dmarc.two.test", DNS_T_TXT, "v=DMARC1; p=none");
    zadd(z, "_dmarc.two.test", DNS_T_TXT, "v=DMARC1; p=reject");
    zadd(z, "_dmarc.noise.test", DNS_T_TXT, "some-verification=abc");
    zfail(z, "_dmarc.slow.test", DNS_T_TXT, DNS_TIMEOUT);

    /* Present, SPF and DKIM aligned exactly. */
    assert_int_equal(dmarc_status(z, "news@ex.test", "b@ex.test", "ex.test", d, sizeof d),
                     PREFLIGHT_PASS);
    assert_non_null(strstr(d, "p=quarantine"));
    /* A subdomain of the From: the organisational domain's record, relaxed alignment. */
    assert_int_equal(dmarc_status(z, "news@mail.ex.test", "b@bounce.ex.test", NULL, d, sizeof d),
                     PREFLIGHT_PASS);
    assert_non_null(strstr(d, "_dmarc.ex.test"));
    /* Strict: a subdomain's return path and DKIM domain do not align. */
    assert_int_equal(
        dmarc_status(z, "n@strict.test", "b@x.strict.test", "y.strict.test", d, sizeof d),
        PREFLIGHT_FAIL);
    assert_non_null(strstr(d, "neither identifier aligns"));
    /* Relaxed, but both identifiers elsewhere. */
    assert_int_equal(dmarc_status(z, "news@ex.test", "b@esp.test", "esp.test", d, sizeof d),
                     PREFLIGHT_FAIL);
    /* Absent (a TXT that is no DMARC record does not count). */
    assert_int_equal(dmarc_status(z, "n@noise.test", "b@noise.test", NULL, d, sizeof d),
                     PREFLIGHT_FAIL);
    assert_non_null(strstr(d, "no DMARC record"));
    assert_int_equal(dmarc_status(z, "n@none.test", "b@none.test", NULL, d, sizeof d),
                     PREFLIGHT_FAIL);
    /* Unparsable and duplicated. */
    assert_int_equal(dmarc_status(z, "n@bad.test", "b@bad.test", NULL, d, sizeof d),
                     PREFLIGHT_FAIL);
    assert_non_null(strstr(d, "does not parse"));
    assert_int_equal(dmarc_status(z, "n@two.test", "b@two.test", NULL, d, sizeof d),
                     PREFLIGHT_FAIL);
    assert_non_null(strstr(d, "2 DMARC records"));
    /* A timeout: could not check. */
    assert_int_equal(dmarc_status(z, "n@slow.test", "b@slow.test", NULL, d, sizeof d),
                     PREFLIGHT_WARN);
    dns_zone_free(z);
}

static void test_preflight_spf(void **state)
{
    (void)state;
    struct err e;
    struct dns_zone *z = dns_zone_new();
    zadd(z, "ex.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 -all");
    zadd(z, "from.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.10 ~all");
    struct dns *dns = dns_new_zone(z, NULL, &e);
    struct plan *p = load("preflight: {require: [spf]}\n");
    free(p->from_addr);
    p->from_addr = strdup("news@from.test");
    struct preflight_report r;
    preflight_report_init(&r);
    assert_int_equal(preflight_spf(&r, p, dns, &e), IPW_OK);
    /* Three IPs, two domains each: return path ex.test, From from.test. */
    assert_int_equal(r.n_checks, 6);
    assert_int_equal(r.checks[0].status, PREFLIGHT_PASS); /* .10 ex.test */
    assert_int_equal(r.checks[1].status, PREFLIGHT_PASS); /* .10 from.test */
    assert_int_equal(r.checks[2].status, PREFLIGHT_PASS); /* .11 ex.test */
    assert_int_equal(r.checks[3].status, PREFLIGHT_FAIL); /* .11 from.test: softfail */
    assert_non_null(strstr(r.checks[3].detail, "softfail"));
    assert_non_null(strstr(r.checks[3].fix, "ip4:192.0.2.11"));
    assert_string_equal(r.checks[3].lookup, "dig +short TXT from.test");
    assert_int_equal(r.checks[4].status, PREFLIGHT_FAIL); /* .12 ex.test: fail */
    preflight_report_finish(&r);
    assert_false(r.ok);
    assert_int_equal(r.required_failed, 3);
    preflight_report_clear(&r);
    plan_free(p);
    dns_free(dns);
    dns_zone_free(z);
}

static void test_preflight_mx_of_the_list(void **state)
{
    (void)state;
    struct err e;
    struct dns_zone *z = dns_zone_new();
    zadd(z, "ok.test", DNS_T_MX, "10 mx.ok.test");
    zadd(z, "mx.ok.test", DNS_T_A, "192.0.2.25");
    zadd(z, "null.test", DNS_T_MX, "0 .");
    zadd(z, "noaddr.test", DNS_T_MX, "10 ghost.noaddr.test");
    zadd(z, "noaddr.test", DNS_T_TXT, "keep the name");
    zfail(z, "slow.test", DNS_T_MX, DNS_TIMEOUT);
    zadd(z, "gm.test", DNS_T_MX, "5 aspmx.l.google.com");
    zadd(z, "aspmx.l.google.com", DNS_T_A, "192.0.2.26");
    zadd(z, "elsewhere.test", DNS_T_A, "192.0.2.1"); /* makes nx.test a non-existent name */
    struct dns *dns = dns_new_zone(z, NULL, &e);
    struct plan *p = load(NULL);
    struct preflight_domains d;
    assert_int_equal(preflight_domains_resolve(p, dns, &d, &e), IPW_OK);
    assert_int_equal(d.n, 6); /* ok, null, nx, noaddr, slow, gm: distinct, in order */
    assert_string_equal(d.domains[0], "ok.test");
    assert_string_equal(d.domains[5], "gm.test");
    assert_int_equal(d.bad_records, 1);
    assert_int_equal(d.mx[0].status, DNS_MX_OK);
    assert_string_equal(p->providers[d.provider[5]].name, "gmail");
    struct preflight_report r;
    preflight_report_init(&r);
    assert_int_equal(preflight_mx(&r, p, &d, &e), IPW_OK);
    const struct preflight_check *c = nth(&r, "mx", 0);
    assert_int_equal(c->status, PREFLIGHT_FAIL);
    assert_true(c->required); /* mx is in the default preflight.require */
    assert_non_null(strstr(c->detail, "3 cannot receive mail: null.test (null-mx), nx.test "
                                      "(nxdomain), noaddr.test (no-address)"));
    assert_non_null(
        strstr(c->detail, "1 could not be resolved now (temperror): slow.test (timeout)"));
    assert_non_null(strstr(c->detail, "gmail 1"));
    assert_non_null(strstr(c->detail, "other 5"));
    assert_non_null(strstr(c->detail, "1 record of the list skipped"));
    assert_string_equal(c->lookup, "dig +short MX null.test");
    preflight_report_clear(&r);

    /* Only the temporary failure left: a warn, which does not fail the report. */
    preflight_report_init(&r);
    for (size_t i = 0; i < 4; i++)
        d.mx[i].status = DNS_MX_OK;
    assert_int_equal(preflight_mx(&r, p, &d, &e), IPW_OK);
    assert_int_equal(nth(&r, "mx", 0)->status, PREFLIGHT_WARN);
    preflight_report_finish(&r);
    assert_true(r.ok);
    preflight_report_clear(&r);
    preflight_domains_clear(&d);
    plan_free(p);
    dns_free(dns);
    dns_zone_free(z);
}

/* A check whose subject starts with a source IP is about that IP (and 192.0.2.100 is not
 * 192.0.2.10); the per-IP summary says which required checks failed for each. */
static void test_preflight_report_per_ip(void **state)
{
    (void)state;
    struct plan *p = load("preflight: {require: [ptr, dnsbl, spf]}\n");
    struct preflight_report r;
    preflight_report_init(&r);
    assert_int_equal(
        preflight_add(&r, p, "spf", PREFLIGHT_PASS, "192.0.2.10 ex.test", NULL, NULL, "pass"),
        IPW_OK);
    assert_int_equal(
        preflight_add(&r, p, "ptr", PREFLIGHT_FAIL, "192.0.2.11", "fix", "dig", "no PTR"), IPW_OK);
    assert_int_equal(preflight_add(&r, p, "spf", PREFLIGHT_WARN, "192.0.2.11 ex.test", "fix", "dig",
                                   "temperror"),
                     IPW_OK);
    assert_int_equal(
        preflight_add(&r, p, "dnsbl", PREFLIGHT_FAIL, "192.0.2.100", "fix", "dig", "listed"),
        IPW_OK);
    assert_int_equal(
        preflight_add(&r, p, "dnsbl", PREFLIGHT_FAIL, "192.0.2.12", "fix", "dig", "listed"),
        IPW_OK);
    assert_string_equal(r.checks[0].ip, "192.0.2.10");
    assert_string_equal(r.checks[2].ip, "192.0.2.11");
    assert_null(r.checks[3].ip);
    const char *ips[8];
    assert_int_equal(preflight_report_ips(&r, ips, 8), 3);
    assert_string_equal(ips[0], "192.0.2.10");
    assert_string_equal(ips[1], "192.0.2.11");
    assert_string_equal(ips[2], "192.0.2.12");
    assert_int_equal(preflight_report_ips(&r, NULL, 0), 3);
    char failed[64], warned[64];
    assert_true(
        preflight_report_ip(&r, "192.0.2.10", failed, sizeof failed, warned, sizeof warned));
    assert_string_equal(failed, "");
    assert_false(
        preflight_report_ip(&r, "192.0.2.11", failed, sizeof failed, warned, sizeof warned));
    assert_string_equal(failed, "ptr");
    assert_string_equal(warned, "spf");
    preflight_report_finish(&r);
    char *doc = preflight_report_json_string(&r);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"ips\":[{\"ip\":\"192.0.2.10\",\"ok\":true,\"failed\":[],"
                                "\"warned\":[]},{\"ip\":\"192.0.2.11\",\"ok\":false,\"failed\":"
                                "[\"ptr\"],\"warned\":[\"spf\"]},{\"ip\":\"192.0.2.12\",\"ok\":"
                                "false,\"failed\":[\"dnsbl\"],\"warned\":[]}]}"));
    free(doc);
    preflight_report_clear(&r);
    plan_free(p);
}

static void test_preflight_report_json_and_size(void **state)
{
    (void)state;
    struct plan *p = load("preflight: {require: [smtp]}\n");
    struct preflight_report r;
    preflight_report_init(&r);
    assert_int_equal(preflight_add(&r, p, "smtp", PREFLIGHT_FAIL, "relay", "open port 587",
                                   "nc -vz smtp.test 587", "cannot connect to %s:%d", "smtp.test",
                                   587),
                     IPW_OK);
    assert_int_equal(
        preflight_add(&r, p, "tls", PREFLIGHT_PASS, NULL, "ignored", "ignored", "fine"), IPW_OK);
    preflight_report_finish(&r);
    assert_false(r.ok);
    assert_null(r.checks[1].fix); /* a pass carries no fix */
    char *doc = preflight_report_json_string(&r);
    assert_non_null(doc);
    assert_string_equal(
        doc, "{\"ok\":false,\"checks\":[{\"name\":\"smtp\",\"status\":\"fail\",\"required\":true,"
             "\"detail\":\"cannot connect to smtp.test:587\",\"subject\":\"relay\",\"fix\":\"open "
             "port 587\",\"lookup\":\"nc -vz smtp.test 587\",\"ip\":null},{\"name\":\"tls\","
             "\"status\":\"pass\",\"required\":false,\"detail\":\"fine\",\"subject\":null,"
             "\"fix\":null,\"lookup\":null,\"ip\":null}],\"ips\":[]}");
    free(doc);
    preflight_report_clear(&r);

    /* 300 bytes of UTF-8 text: base64, 400 characters in 6 lines of CRLF = 412; an ASCII HTML
     * part of 100 bytes as it is; 2048 for the headers. */
    char text[301];
    for (int i = 0; i < 150; i++)
        memcpy(text + 2 * i, "\xc3\xa9", 2);
    text[300] = '\0';
    write_file("utf8.txt", text);
    char html[101];
    memset(html, 'x', 100);
    html[100] = '\0';
    write_file("part.html", html);
    char path[160];
    free(p->text_file);
    snprintf(path, sizeof path, "%s/utf8.txt", dir);
    p->text_file = strdup(path);
    free(p->html_file);
    snprintf(path, sizeof path, "%s/part.html", dir);
    p->html_file = strdup(path);
    assert_int_equal(preflight_message_size(p), 412 + 100 + 2048);
    plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preflight_ptr_and_helo),
        cmocka_unit_test(test_preflight_dkim_key),
        cmocka_unit_test(test_preflight_dmarc),
        cmocka_unit_test(test_preflight_spf),
        cmocka_unit_test(test_preflight_mx_of_the_list),
        cmocka_unit_test(test_preflight_report_json_and_size),
        cmocka_unit_test(test_preflight_report_per_ip),
    };
    return cmocka_run_group_tests_name("preflight", tests, setup, teardown);
}
