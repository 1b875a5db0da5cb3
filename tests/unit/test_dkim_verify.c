/*
 * Integration test of dkim.c, message.c and token.c through smtp.c: messages with a Japanese
 * subject and display name, an HTML part, Latin text in quoted-printable, a line over 998
 * octets and body lines that begin with a dot are composed, signed with an RSA and an Ed25519
 * key made here by the openssl command line, and sent to tests/servers/smtpd.py on loopback.
 * Every message the server saved is then checked by tests/dkim/verify.py with Debian's
 * python3-dkim (an implementation independent of ours) and Python's email package: the
 * signature verifies, tampered copies do not, the headers decode back to the template's
 * text, List-Unsubscribe and List-Unsubscribe-Post are there and signed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipwarm/dkim.h"
#include "ipwarm/json.h"
#include "ipwarm/message.h"
#include "ipwarm/smtp.h"
#include "ipwarm/token.h"

struct fixture {
    char dir[64];
    pid_t pid;
    int port;
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/ipwarm-dkimv-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* Stops the server and removes everything, whatever happened in the test. */
static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static void server_start(struct fixture *f)
{
    char cfg[128], ready[128];
    snprintf(cfg, sizeof cfg, "%s/config.json", f->dir);
    snprintf(ready, sizeof ready, "%s/ready", f->dir);
    /* A port range apart from test_smtp's (20000-39999), varied per process. */
    f->port = 40000 + (int)(getpid() % 20000);
    FILE *c = fopen(cfg, "w");
    assert_non_null(c);
    fprintf(c,
            "{\"log\": \"%s/log.jsonl\", \"maildir\": \"%s/mail\", \"ready_file\": \"%s\",\n"
            " \"listeners\": [{\"name\": \"t\", \"host\": \"127.0.0.1\", \"port\": %d}]}\n",
            f->dir, f->dir, ready, f->port);
    fclose(c);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        char script[512];
        snprintf(script, sizeof script, "%s/tests/servers/smtpd.py", IPWARM_SOURCE_DIR);
        execl("/usr/bin/python3", "python3", script, cfg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        struct stat st;
        if (stat(ready, &st) == 0)
            return;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("smtpd.py did not start");
}

/* What one test message is made of: the template and the expanded texts verify.py expects. */
struct sample {
    const char *from_name;
    const char *subject_tmpl;
    const char *subject; /* expanded */
    const char *text_tmpl;
    const char *text; /* expanded */
    const char *html_tmpl;
    const char *html;
};

static char long_line_tmpl[1300];
static char long_line_text[1300];

static struct sample samples[3];

static void samples_init(void)
{
    /* A line of 1100 octets: over 998, so it must go out soft-broken (quoted-printable). */
    char xs[1101];
    memset(xs, 'x', 1100);
    xs[1100] = '\0';
    snprintf(long_line_tmpl, sizeof long_line_tmpl,
             "Grüße {{first_name}},\n.Zeile mit Punkt am Anfang\n.\nEnde mit Leerzeichen   \n%s\n",
             xs);
    snprintf(long_line_text, sizeof long_line_text,
             "Grüße Taro,\n.Zeile mit Punkt am Anfang\n.\nEnde mit Leerzeichen   \n%s\n", xs);
    samples[0] = (struct sample){
        .from_name = "山田 太郎",
        .subject_tmpl = "【お知らせ】{{first_name}}さん、配信テストです",
        .subject = "【お知らせ】Taroさん、配信テストです",
        .text_tmpl =
            "{{first_name}}さん、こんにちは。\n.この行はドットで始まります\n..二つのドット\n."
            "\n本文の終わり。\n",
        .text = "Taroさん、こんにちは。\n.この行はドットで始まります\n..二つのドット\n."
                "\n本文の終わり。\n",
        .html_tmpl = "<p>{{first_name}}さん、こんにちは。</p>\n.<p>ドット</p>\n",
        .html = "<p>Taroさん、こんにちは。</p>\n.<p>ドット</p>\n",
    };
    samples[1] = (struct sample){
        .from_name = "Warm-up Team",
        .subject_tmpl = "Hello {{first_name}}, a plain ASCII subject",
        .subject = "Hello Taro, a plain ASCII subject",
        .text_tmpl =
            "Hello {{first_name}},\n.a line that begins with a dot\n..two dots\n.\n\nend\n",
        .text = "Hello Taro,\n.a line that begins with a dot\n..two dots\n.\n\nend\n",
        .html_tmpl = "<p>Hello {{first_name}}</p>\n.<b>dot</b>\n",
        .html = "<p>Hello Taro</p>\n.<b>dot</b>\n",
    };
    samples[2] = (struct sample){
        .from_name = "Zoë Ångström",
        .subject_tmpl = "Grüße an {{first_name}} — café",
        .subject = "Grüße an Taro — café",
        .text_tmpl = long_line_tmpl,
        .text = long_line_text,
    };
}

static void make_key(struct fixture *f, const char *name, const char *genpkey_args,
                     struct dkim_key **k)
{
    char cmd[512], path[256];
    snprintf(path, sizeof path, "%s/%s.pem", f->dir, name);
    snprintf(cmd, sizeof cmd, "openssl genpkey %s -out %s 2>/dev/null", genpkey_args, path);
    assert_int_equal(system(cmd), 0);
    struct err e;
    assert_int_equal(dkim_key_load(path, k, &e), IPW_OK);
}

struct sent {
    int n, delivered;
};

static void on_done(const struct smtp_result *r, void *arg)
{
    struct sent *s = arg;
    s->n++;
    if (r->delivered)
        s->delivered++;
    else
        fprintf(stderr, "not delivered: %d %s %s\n", r->code, r->reply ? r->reply : "", r->error);
}

static void test_dkim_signed_messages_verify_with_python_dkim(void **state)
{
    struct fixture *f = *state;
    samples_init();
    server_start(f);

    struct dkim_key *keys[2];
    make_key(f, "rsa", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048", &keys[0]);
    make_key(f, "ed", "-algorithm ed25519", &keys[1]);
    const char *selectors[2] = {"s-rsa", "s-ed"};
    const char *algs[2] = {"rsa-sha256", "ed25519-sha256"};

    struct token_secret secret = {.len = 32};
    memcpy(secret.key, "0123456789abcdef0123456789abcdef", 32);

    char expect_path[128];
    snprintf(expect_path, sizeof expect_path, "%s/expect.json", f->dir);
    FILE *ef = fopen(expect_path, "w");
    assert_non_null(ef);
    struct json j;
    json_init(&j, ef, true);
    json_object_begin(&j);
    json_key(&j, "records");
    json_object_begin(&j);
    for (int k = 0; k < 2; k++) {
        char *txt = NULL, name[64];
        struct err e;
        assert_int_equal(dkim_record(keys[k], &txt, &e), IPW_OK);
        snprintf(name, sizeof name, "%s._domainkey.example.com.", selectors[k]);
        json_kv_string(&j, name, txt);
        free(txt);
    }
    json_object_end(&j);
    json_key(&j, "messages");
    json_object_begin(&j);

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    char date[MESSAGE_DATE_MAX];
    message_format_date(now_ms, 9 * 3600, date, sizeof date);

    enum { N = 6 };
    struct message msgs[N];
    char tokens[N][TOKEN_LEN + 1];
    char rcpts[N][64];
    struct err e;
    struct smtp *pool = smtp_new(2, &e);
    assert_non_null(pool);
    for (int i = 0; i < N; i++) {
        int k = i % 2;
        const struct sample *s = &samples[i / 2];
        struct message_tmpl t = {
            .from_name = (char *)s->from_name,
            .from_addr = "news@example.com",
            .subject = (char *)s->subject_tmpl,
            .subject_where = "plan: message.subject",
            .text = (char *)s->text_tmpl,
            .text_where = "message.txt",
            .html = (char *)s->html_tmpl,
            .html_where = "message.html",
            .list_unsubscribe = "https://example.com/u/{{token}}",
            .list_unsubscribe_mailto = "unsub@example.com",
        };
        snprintf(rcpts[i], sizeof rcpts[i], "taro%d@example.jp", i);
        token_make(&secret, "dkim-test", rcpts[i], tokens[i]);
        static const char *const names[] = {"email", "first_name"};
        const char *values[] = {rcpts[i], "Taro"};
        struct template_vars v = {.recipient = rcpts[i],
                                  .seq = i + 1,
                                  .date = date,
                                  .campaign = "dkim-test",
                                  .token = tokens[i],
                                  .names = names,
                                  .values = values,
                                  .n = 2};
        char id[96];
        message_id_left("dkim-test", i + 1, (uint64_t)now_ms * 7919u + (uint64_t)i, id, sizeof id);
        struct message_args a = {.id_left = id, .boundary_seed = (uint64_t)i * 0x9E3779B9u};
        assert_int_equal(message_compose(&t, &v, &a, &msgs[i], &e), IPW_OK);
        struct dkim_sign_opts o = {
            .domain = "example.com", .selector = selectors[k], .expire_s = 7 * 86400};
        assert_int_equal(dkim_sign(keys[k], &o, &msgs[i], now_ms, &e), IPW_OK);

        char mid[160], lu[512];
        snprintf(mid, sizeof mid, "<%s@example.com>", id);
        snprintf(lu, sizeof lu,
                 "<https://example.com/u/%s>, <mailto:unsub@example.com?subject=unsubscribe%%20%s>",
                 tokens[i], tokens[i]);
        json_key(&j, mid);
        json_object_begin(&j);
        json_kv_string(&j, "subject", s->subject);
        json_kv_string(&j, "from_name", s->from_name);
        json_kv_string(&j, "text", s->text);
        json_kv_string(&j, "html", s->html);
        json_kv_string(&j, "algorithm", algs[k]);
        json_kv_string(&j, "list_unsubscribe", lu);
        json_object_end(&j);

        struct smtp_job job = {
            .host = "localhost",
            .port = f->port,
            .connect_ip = "127.0.0.1",
            .helo = "mx1.example.com",
            .tls = PLAN_TLS_OPPORTUNISTIC,
            .tls_min = PLAN_TLS_1_2,
            .connect_timeout_ms = 5000,
            .command_timeout_ms = 5000,
            .mail_from = "bounces@example.com",
            .rcpt = rcpts[i],
            .data = msgs[i].data,
            .len = msgs[i].len,
        };
        assert_int_equal(smtp_submit(pool, &job, &e), IPW_OK);
    }
    json_object_end(&j);
    json_object_end(&j);
    assert_int_equal(json_finish(&j, &e), IPW_OK);
    fclose(ef);

    struct sent sent = {0};
    time_t t0 = time(NULL);
    while (smtp_perform(pool, 200, on_done, &sent) > 0 && time(NULL) - t0 < 30)
        ;
    smtp_free(pool);
    assert_int_equal(sent.n, N);
    assert_int_equal(sent.delivered, N);
    for (int i = 0; i < N; i++)
        message_free(&msgs[i]);
    dkim_key_free(keys[0]);
    dkim_key_free(keys[1]);
    token_secret_clear(&secret);

    char cmd[512], out_path[128];
    snprintf(out_path, sizeof out_path, "%s/verify.out", f->dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/dkim/verify.py %s %s/mail >%s 2>&1",
             IPWARM_SOURCE_DIR, expect_path, f->dir, out_path);
    int rc = system(cmd);
    FILE *o = fopen(out_path, "r");
    assert_non_null(o);
    char line[4096];
    int fails = 0, oks = 0;
    bool summary = false;
    while (fgets(line, sizeof line, o)) {
        if (strncmp(line, "FAIL", 4) == 0) {
            fails++;
            fprintf(stderr, "%s", line);
        } else if (strncmp(line, "ok ", 3) == 0) {
            oks++;
        } else if (strstr(line, " passed, 0 failed")) {
            summary = true;
        } else {
            fprintf(stderr, "verify.py: %s", line);
        }
    }
    fclose(o);
    assert_int_equal(fails, 0);
    assert_true(summary);
    assert_int_equal(rc, 0);
    /* Each message ran every per-message check (none skipped as unknown). */
    assert_true(oks >= N * 27);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dkim_signed_messages_verify_with_python_dkim,
                                        fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
