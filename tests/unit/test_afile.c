/*
 * test_afile: atomic whole-file writes (afile.c): the content arrives whole with its mode, a
 * symlink planted where the old code wrote (FILE.tmp) is not followed, and every failure (an
 * abort, a write that fails, a target that cannot be replaced, AFILE_NOREPLACE on an existing
 * file, a missing directory) leaves the target as it was and no temporary file behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipwarm/afile.h"

/* A fresh directory per test, removed (with what is left in it) by teardown. */
static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_afile.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void in_dir(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* The whole content of path (at most 4 KiB), or "" when it cannot be read. */
static const char *get(const char *path)
{
    static char buf[4096];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* How many entries the test directory holds ("." and ".." not counted). */
static int entries(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* afile_open + afile_commit: the target holds the whole text, mode 0644 under umask 022, and
 * the temporary file is gone. */
static void test_afile_commit_writes_whole(void **state)
{
    (void)state;
    char path[128];
    in_dir(path, sizeof path, "out.prom");
    put(path, "old\n");
    mode_t old = umask(022);
    struct afile a;
    struct err e;
    assert_int_equal(afile_open(&a, path, 0644, 0, &e), IPW_OK);
    /* The temporary file sits beside the target, hidden, not matching *.prom. */
    assert_non_null(strstr(a.tmp, "/.out.prom."));
    char want[4096];
    size_t n = 0;
    for (int i = 0; i < 300; i++) {
        fprintf(a.f, "line %d\n", i);
        n += (size_t)snprintf(want + n, sizeof want - n, "line %d\n", i);
    }
    assert_int_equal(afile_commit(&a, &e), IPW_OK);
    umask(old);
    assert_string_equal(get(path), want);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(entries(), 1);
}

/* The old writers opened FILE.tmp and followed a symlink there: the new one writes elsewhere,
 * so the file the link points at is untouched and the link itself left alone. */
static void test_afile_symlink_at_old_temp_name_not_followed(void **state)
{
    (void)state;
    char path[128], tmp[160], victim[128];
    in_dir(path, sizeof path, "report.html");
    in_dir(victim, sizeof victim, "victim");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    put(victim, "precious\n");
    assert_int_equal(symlink(victim, tmp), 0);
    struct afile a;
    struct err e;
    assert_int_equal(afile_open(&a, path, 0644, 0, &e), IPW_OK);
    fputs("<html>report</html>\n", a.f);
    assert_int_equal(afile_commit(&a, &e), IPW_OK);
    assert_string_equal(get(victim), "precious\n");
    assert_string_equal(get(path), "<html>report</html>\n");
    struct stat st;
    assert_int_equal(lstat(tmp, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(entries(), 3); /* victim, the link, the report */
}

/* afile_abort: the target keeps its old content, no temporary file is left. */
static void test_afile_abort_keeps_target(void **state)
{
    (void)state;
    char path[128];
    in_dir(path, sizeof path, "metrics.prom");
    put(path, "old\n");
    struct afile a;
    struct err e;
    assert_int_equal(afile_open(&a, path, 0644, 0, &e), IPW_OK);
    fputs("half of a new fi", a.f);
    afile_abort(&a);
    afile_abort(&a); /* harmless twice */
    assert_string_equal(get(path), "old\n");
    assert_int_equal(entries(), 1);
}

/* A write that fails (the file size limit stands in for a full disk): IPW_EIO, the target
 * unchanged, nothing left behind. */
static void test_afile_write_failure_keeps_target(void **state)
{
    (void)state;
    char path[128];
    in_dir(path, sizeof path, "big.html");
    put(path, "old\n");
    struct rlimit was, small = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    small.rlim_max = was.rlim_max;
    void (*h)(int) = signal(SIGXFSZ, SIG_IGN);
    struct afile a;
    struct err e;
    assert_int_equal(afile_open(&a, path, 0644, 0, &e), IPW_OK);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    for (int i = 0; i < 10000; i++)
        fputs("0123456789", a.f);
    ipw_status r = afile_commit(&a, &e);
    setrlimit(RLIMIT_FSIZE, &was);
    signal(SIGXFSZ, h);
    assert_int_equal(r, IPW_EIO);
    assert_non_null(strstr(e.msg, "big.html"));
    assert_string_equal(get(path), "old\n");
    assert_int_equal(entries(), 1);
}

/* A target that cannot be replaced (a directory of that name): IPW_ECANTCREAT, a sentence
 * naming it, the directory still there, no temporary file. */
static void test_afile_rename_failure(void **state)
{
    (void)state;
    char path[128], inside[160];
    in_dir(path, sizeof path, "taken");
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(inside, sizeof inside, "%s/keep", path);
    put(inside, "x");
    struct afile a;
    struct err e;
    assert_int_equal(afile_open(&a, path, 0644, 0, &e), IPW_OK);
    fputs("new", a.f);
    assert_int_equal(afile_commit(&a, &e), IPW_ECANTCREAT);
    assert_non_null(strstr(e.msg, "cannot put the new"));
    assert_non_null(strstr(e.msg, "/taken"));
    assert_string_equal(get(inside), "x");
    assert_int_equal(entries(), 1);
}

/* AFILE_NOREPLACE: a new file appears with exactly mode 0600 even under umask 0; an existing one
 * is kept, exists is set, and no temporary file is left. */
static void test_afile_noreplace(void **state)
{
    (void)state;
    char path[128];
    in_dir(path, sizeof path, "key.pem");
    mode_t old = umask(0);
    struct afile a;
    struct err e;
    assert_int_equal(afile_open(&a, path, 0600, AFILE_NOREPLACE, &e), IPW_OK);
    fputs("first key\n", a.f);
    assert_int_equal(afile_commit(&a, &e), IPW_OK);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    assert_int_equal(afile_open(&a, path, 0600, AFILE_NOREPLACE, &e), IPW_OK);
    fputs("second key\n", a.f);
    assert_int_equal(afile_commit(&a, &e), IPW_ECANTCREAT);
    assert_true(a.exists);
    assert_non_null(strstr(e.msg, "key.pem exists; not overwriting it"));
    assert_string_equal(get(path), "first key\n");
    assert_int_equal(entries(), 1);
}

/* A directory that does not exist: the sentence names it and the target. */
static void test_afile_open_missing_directory(void **state)
{
    (void)state;
    char path[128];
    in_dir(path, sizeof path, "nowhere/out.html");
    struct afile a;
    struct err e;
    assert_int_equal(afile_open(&a, path, 0644, 0, &e), IPW_ECANTCREAT);
    assert_non_null(strstr(e.msg, "cannot create a temporary file in"));
    assert_non_null(strstr(e.msg, "/nowhere to write"));
    assert_non_null(strstr(e.msg, "No such file or directory"));
    assert_null(a.f);
    afile_abort(&a);
}

/* afile_write: the content whole with its mode; with AFILE_NOREPLACE an existing file is kept,
 * *exists says so, and no temporary file is left behind. */
static void test_afile_write_whole_buffer(void **state)
{
    (void)state;
    char path[128];
    in_dir(path, sizeof path, "key.pem");
    struct err e;
    bool exists = true;
    assert_int_equal(afile_write(path, 0600, AFILE_NOREPLACE, "secret\n", 7, &exists, &e), IPW_OK);
    assert_false(exists);
    assert_string_equal(get(path), "secret\n");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    assert_int_equal(afile_write(path, 0600, AFILE_NOREPLACE, "other\n", 6, &exists, &e),
                     IPW_ECANTCREAT);
    assert_true(exists);
    assert_string_equal(get(path), "secret\n");
    assert_int_equal(entries(), 1);

    /* without the flag it replaces; an empty buffer makes an empty file */
    assert_int_equal(afile_write(path, 0644, 0, "", 0, NULL, &e), IPW_OK);
    assert_string_equal(get(path), "");
    assert_int_equal(entries(), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_afile_commit_writes_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_afile_symlink_at_old_temp_name_not_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_afile_abort_keeps_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_afile_write_failure_keeps_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_afile_rename_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_afile_noreplace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_afile_open_missing_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_afile_write_whole_buffer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
