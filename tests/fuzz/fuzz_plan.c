/*
 * fuzz_plan: the plan loader (plan.h: libyaml, then validation against the plan contract and
 * the merge with the shipped provider table) on arbitrary YAML text.
 *
 * Relative file names resolve against a private temporary directory holding the files a plan
 * usually names (the layout of tests/plans/: message, seeds, keys, a provider table), so
 * inputs get past the "readable file" checks and into the rest of the validation. It is
 * removed at exit. Checks what plan.h promises: IPW_OK with a plan, or a refusal with a
 * message and no plan.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipwarm/plan.h"

#include "fuzz.h"

static char top[64];  /* the temporary directory */
static char base[96]; /* top/plans: the plan's directory */

/* The files the seed plans name, relative to the plan's directory (tests/plans/good/ style:
 * "../message.txt") or inside it ("message.txt"). Contents only need to be readable. */
static const struct {
    const char *path;
    const char *text;
} files[] = {
    {"message.txt", "Hello {{first_name}},\nThis is {{campaign}}.\n"},
    {"message.html", "<p>Hello {{first_name}}</p>\n"},
    {"seeds.csv", "email,first_name\na@example.com,A\n"},
    {"providers-custom.yaml", "providers:\n  - name: acme\n    mx: [.mx.acme.example]\n"
                              "    domains: [acme.example]\n  - name: rest\n    default: true\n"
                              "rules:\n  - name: acme-busy\n    provider: acme\n"
                              "    match: 'busy'\n    action: suspend\n    for: 10m\n"},
    {"keys/ca.pem", "not a certificate\n"},
    {"keys/dkim.pem", "not a key\n"},
    {"keys/relay-password", "secret\n"},
    {"plans/message.txt", "Hi\n"},
    {"plans/seeds.csv", "email\nb@example.com\n"},
    {"plans/dkim.pem", "not a key\n"},
};

static void remove_tree(void)
{
    char path[192];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", top, files[i].path);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/keys", top);
    rmdir(path);
    rmdir(base);
    rmdir(top);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[192];
    snprintf(top, sizeof top, "%s/ipwarm-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(top) != NULL);
    atexit(remove_tree);
    snprintf(base, sizeof base, "%s/plans", top);
    FUZZ_CHECK(mkdir(base, 0700) == 0);
    snprintf(path, sizeof path, "%s/keys", top);
    FUZZ_CHECK(mkdir(path, 0700) == 0);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", top, files[i].path);
        FILE *f = fopen(path, "w");
        FUZZ_CHECK(f != NULL);
        fputs(files[i].text, f);
        fclose(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size > 65536)
        return 0;
    struct plan *p = NULL;
    struct err e;
    memset(&e, 0, sizeof e);
    ipw_status st = plan_load_text((const char *)data, size, "fuzz.yaml", base, &p, &e);
    if (st == IPW_OK) {
        FUZZ_CHECK(p != NULL);
        FUZZ_CHECK(plan_provider_find(p, "gmail") >= -1);
        plan_free(p);
    } else {
        FUZZ_CHECK(p == NULL);
        FUZZ_CHECK(st == IPW_ECONFIG || st == IPW_ENOMEM);
        FUZZ_CHECK(e.msg[0] != '\0');
    }
    return 0;
}
