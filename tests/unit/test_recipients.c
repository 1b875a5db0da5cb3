/*
 * Unit tests of recipients.c: recipients_open/next/seek/rewind/close on plain and CSV lists,
 * the error sentences for bad lines and headers, resuming at a stored offset, bounded memory
 * on a 1,000,000-line list, recipients_address, and a list that changes: a last line still
 * being written, files that are not regular, a read stopped by its callback, record digests,
 * the prefix SHA-256 and the file state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipwarm/recipients.h"

static char test_dir[64];
static char test_path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(test_dir, sizeof test_dir, "/tmp/ipwarm-rcpt-XXXXXX");
    if (!mkdtemp(test_dir))
        return -1;
    snprintf(test_path, sizeof test_path, "%s/list", test_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(test_path);
    rmdir(test_dir);
    return 0;
}

static const char *write_list(const char *content, size_t n)
{
    FILE *f = fopen(test_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, n, f), n);
    fclose(f);
    return test_path;
}

#define WRITE_LIST(s) write_list((s), sizeof(s) - 1)

static struct recipients *open_ok(const char *path, const char *column)
{
    struct recipients *r = NULL;
    struct err e;
    ipw_status s = recipients_open(path, column, &r, &e);
    if (s != IPW_OK)
        fail_msg("recipients_open: %s", e.msg);
    return r;
}

static void next_ok(struct recipients *r, struct recipients_rec *rec)
{
    struct err e;
    ipw_status s = recipients_next(r, rec, &e);
    if (s != IPW_OK)
        fail_msg("recipients_next: %s (status %d)", e.msg, (int)s);
}

static void next_end(struct recipients *r)
{
    struct recipients_rec rec;
    struct err e;
    assert_int_equal(recipients_next(r, &rec, &e), IPW_ENOTFOUND);
    /* and it stays at the end */
    assert_int_equal(recipients_next(r, &rec, &e), IPW_ENOTFOUND);
}

/* Expects a bad record with exactly the sentence PATH + suffix. */
static void next_bad(struct recipients *r, const char *suffix)
{
    struct recipients_rec rec;
    struct err e;
    assert_int_equal(recipients_next(r, &rec, &e), IPW_EDATA);
    char expect[1024];
    snprintf(expect, sizeof expect, "%s%s", test_path, suffix);
    assert_string_equal(e.msg, expect);
    assert_null(rec.address);
    assert_true(rec.next_offset > rec.offset);
}

static void test_recipients_plain_text(void **state)
{
    (void)state;
    struct recipients *r = open_ok(WRITE_LIST("# seed list\n\n  alice@Example.COM  \n"
                                              "# another comment\r\n"
                                              "Bob.Smith+tag@MAIL.example.org\r\n"
                                              "\t\n"
                                              "last@example.net"),
                                   NULL);
    assert_false(recipients_is_csv(r));
    size_t n = 99;
    assert_null(recipients_columns(r, &n));
    assert_int_equal(n, 0);
    struct recipients_rec rec;
    next_ok(r, &rec);
    assert_string_equal(rec.address, "alice@example.com");
    assert_string_equal(rec.domain, "example.com");
    assert_int_equal(rec.line, 3);
    assert_int_equal(rec.offset, strlen("# seed list\n\n"));
    assert_null(rec.values);
    assert_int_equal(rec.n_values, 0);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "Bob.Smith+tag@mail.example.org"); /* local part kept */
    assert_int_equal(rec.line, 5);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "last@example.net");
    assert_int_equal(rec.line, 7);
    next_end(r);
    recipients_close(r);
    /* A list that starts with an empty line (this once read a NULL record buffer). */
    r = open_ok(WRITE_LIST("\n\r\nx@example.com\n"), NULL);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "x@example.com");
    assert_int_equal(rec.line, 3);
    next_end(r);
    recipients_close(r);
}

static void test_recipients_csv_rfc4180(void **state)
{
    (void)state;
    /* BOM, CRLF, quoted commas, "" escapes, a line break inside quotes, a blank record. */
    struct recipients *r = open_ok(
        WRITE_LIST("\xEF\xBB\xBF"
                   "Email, first_name ,note\r\n"
                   "\"carol@Example.com\",\"Carol, the \"\"boss\"\"\",\"line1\r\nline2\"\r\n"
                   ",,\r\n"
                   "dave@EXAMPLE.net,Dave,\r\n"
                   "  erin@example.org ,Érin,\"\"\n"),
        NULL);
    assert_true(recipients_is_csv(r));
    size_t n = 0;
    const char *const *cols = recipients_columns(r, &n);
    assert_int_equal(n, 3);
    assert_string_equal(cols[0], "Email");
    assert_string_equal(cols[1], "first_name");
    assert_string_equal(cols[2], "note");
    assert_int_equal(recipients_data_line(r), 2);
    assert_int_equal(recipients_data_offset(r), 3 + strlen("Email, first_name ,note\r\n"));

    struct recipients_rec rec;
    next_ok(r, &rec);
    assert_string_equal(rec.address, "carol@example.com");
    assert_int_equal(rec.line, 2);
    assert_int_equal(rec.n_values, 3);
    assert_string_equal(rec.values[0], "carol@Example.com"); /* the column as written */
    assert_string_equal(rec.values[1], "Carol, the \"boss\"");
    assert_string_equal(rec.values[2], "line1\r\nline2");
    assert_int_equal(rec.next_line, 4);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "dave@example.net");
    assert_int_equal(rec.line, 5);
    assert_string_equal(rec.values[1], "Dave");
    assert_string_equal(rec.values[2], "");
    next_ok(r, &rec);
    assert_string_equal(rec.address, "erin@example.org");
    assert_string_equal(rec.values[0], "erin@example.org");
    assert_string_equal(rec.values[1], "Érin");
    assert_int_equal(rec.line, 6);
    next_end(r);
    recipients_close(r);
}

static void test_recipients_csv_column_option_and_one_column(void **state)
{
    (void)state;
    struct recipients *r = open_ok(WRITE_LIST("name,MAIL\nAnn,ann@example.com\n"), "mail");
    struct recipients_rec rec;
    next_ok(r, &rec);
    assert_string_equal(rec.address, "ann@example.com");
    assert_string_equal(rec.values[0], "Ann");
    recipients_close(r);
    /* A one-column CSV is told from a plain list by its header being the column name. */
    r = open_ok(WRITE_LIST("email\nann@example.com\n"), NULL);
    assert_true(recipients_is_csv(r));
    next_ok(r, &rec);
    assert_string_equal(rec.address, "ann@example.com");
    assert_int_equal(rec.line, 2);
    next_end(r);
    recipients_close(r);
}

static void test_recipients_header_errors(void **state)
{
    (void)state;
    struct recipients *r = (struct recipients *)1;
    struct err e;
    char expect[512];
    WRITE_LIST("# exported 2026-12-01\nmail,name\nann@example.com,Ann\n");
    assert_int_equal(recipients_open(test_path, NULL, &r, &e), IPW_EDATA);
    assert_null(r);
    snprintf(expect, sizeof expect,
             "%s:2: the CSV header has no column \"email\" (columns: mail, name)", test_path);
    assert_string_equal(e.msg, expect);

    WRITE_LIST("email,name,EMAIL\n");
    assert_int_equal(recipients_open(test_path, NULL, &r, &e), IPW_EDATA);
    snprintf(expect, sizeof expect, "%s:1: CSV header names column \"EMAIL\" twice", test_path);
    assert_string_equal(e.msg, expect);

    WRITE_LIST("email,\"name\n");
    assert_int_equal(recipients_open(test_path, NULL, &r, &e), IPW_EDATA);
    snprintf(expect, sizeof expect, "%s:1: CSV header: unterminated quoted field", test_path);
    assert_string_equal(e.msg, expect);

    char missing[200];
    snprintf(missing, sizeof missing, "%s/none.csv", test_dir);
    assert_int_equal(recipients_open(missing, NULL, &r, &e), IPW_ENOINPUT);
    assert_non_null(strstr(e.msg, "none.csv"));

    /* An empty list, or one of comments only, has no records and is not an error. */
    r = open_ok(WRITE_LIST(""), NULL);
    next_end(r);
    recipients_close(r);
    r = open_ok(WRITE_LIST("# nothing yet\n\n"), NULL);
    next_end(r);
    recipients_close(r);
}

static void test_recipients_bad_lines_are_reported_and_skipped(void **state)
{
    (void)state;
    struct recipients *r =
        open_ok(WRITE_LIST("email,first_name\n"
                           "ok1@example.com,A\n"
                           "bob@@example.com,B\n"
                           "ok2@example.com,C,extra\n"
                           "ok3@example.com\n"
                           "\"ok4@example.com\"x,D\n"
                           "Bob <bob@example.com>,E\n"
                           "ok5@example.com,\"\xFF\"\n"
                           "ok6@example.com,F\n"
                           "ok7@example.com,\"never closed\nok8@example.com,G\n"),
                NULL);
    struct recipients_rec rec;
    next_ok(r, &rec);
    assert_string_equal(rec.address, "ok1@example.com");
    next_bad(r, ":3: \"bob@@example.com\" is not an e-mail address: more than one @");
    next_bad(r, ":4: 3 fields, but the header has 2 (a comma inside a value needs quotes)");
    next_bad(r, ":5: 1 field, but the header has 2");
    next_bad(r, ":6: a character after a closing quote (write \"\" for a quote inside a quoted "
                "field)");
    next_bad(r, ":7: \"Bob <bob@example.com>\" is not an e-mail address: write the bare "
                "address, without a display name or angle brackets");
    next_bad(r, ":8: invalid UTF-8 in column \"first_name\"");
    next_ok(r, &rec);
    assert_string_equal(rec.address, "ok6@example.com");
    assert_int_equal(rec.line, 9);
    next_bad(r, ":10: unterminated quoted field");
    next_end(r);
    recipients_close(r);

    r = open_ok(WRITE_LIST("ok@example.com\nnot an address\nx@localhost\nok2@example.com\n"), NULL);
    next_ok(r, &rec);
    next_bad(r, ":2: \"not an address\" is not an e-mail address: it contains a space");
    next_bad(r, ":3: \"x@localhost\" is not an e-mail address: the domain has no dot");
    next_ok(r, &rec);
    assert_string_equal(rec.address, "ok2@example.com");
    next_end(r);
    recipients_close(r);
}

static void test_recipients_resume_from_offset(void **state)
{
    (void)state;
    const char *path = WRITE_LIST("email,n\r\na@example.com,1\r\n\"b@example.com\",\"x\r\ny\"\r\n"
                                  "c@example.com,3\r\nd@example.com,4\r\n");
    struct recipients *r = open_ok(path, NULL);
    struct recipients_rec rec;
    next_ok(r, &rec);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "b@example.com");
    int64_t off = rec.next_offset;
    long line = rec.next_line;
    assert_int_equal(line, 5);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "c@example.com");
    assert_int_equal(rec.offset, off);
    recipients_close(r);

    /* A later tick opens the list again and continues where the last one stopped. */
    r = open_ok(path, NULL);
    struct err e;
    assert_int_equal(recipients_seek(r, off, line, &e), IPW_OK);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "c@example.com");
    assert_int_equal(rec.line, 5);
    assert_string_equal(rec.values[1], "3");
    next_ok(r, &rec);
    assert_string_equal(rec.address, "d@example.com");
    next_end(r);
    assert_int_equal(recipients_seek(r, 3, 1, &e), IPW_EUSAGE);
    assert_non_null(strstr(e.msg, "before the first record"));
    assert_int_equal(recipients_seek(r, 100000, 99, &e), IPW_OK);
    next_end(r);
    assert_int_equal(recipients_rewind(r, &e), IPW_OK);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "a@example.com");
    assert_int_equal(rec.line, 2);
    recipients_close(r);
}

static void test_recipients_long_record_is_bounded(void **state)
{
    (void)state;
    size_t big = 3 * RECIPIENTS_RECORD_MAX;
    char *content = malloc(big + 100);
    size_t n = 0;
    n += (size_t)snprintf(content, 100, "a@example.com\n");
    memset(content + n, 'x', big);
    n += big;
    n += (size_t)snprintf(content + n, 100, "\nb@example.com\n");
    struct recipients *r = open_ok(write_list(content, n), NULL);
    free(content);
    struct recipients_rec rec;
    next_ok(r, &rec);
    next_bad(r, ":2: record longer than 65536 bytes");
    assert_true(recipients_memory(r) <= RECIPIENTS_MEMORY_MAX);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "b@example.com");
    assert_int_equal(rec.line, 3);
    next_end(r);
    recipients_close(r);
}

static void test_recipients_million_lines_constant_memory(void **state)
{
    (void)state;
    const long lines = 1000000;
    FILE *f = fopen(test_path, "wb");
    assert_non_null(f);
    fputs("email,first_name,city\n", f);
    for (long i = 0; i < lines; i++)
        fprintf(f, "user%ld@example%ld.com,\"Name %ld\",City\r\n", i, i % 97, i);
    fclose(f);

    struct recipients *r = open_ok(test_path, NULL);
    struct recipients_rec rec;
    struct err e;
    long count = 0;
    size_t first_mem = 0, max_mem = 0;
    ipw_status s;
    while ((s = recipients_next(r, &rec, &e)) == IPW_OK) {
        size_t mem = recipients_memory(r);
        if (count == 0)
            first_mem = mem;
        if (mem > max_mem)
            max_mem = mem;
        if (count == 123456) {
            char expect[64];
            snprintf(expect, sizeof expect, "user%ld@example%ld.com", count, count % 97);
            assert_string_equal(rec.address, expect);
            assert_int_equal(rec.line, count + 2);
        }
        count++;
    }
    assert_int_equal(s, IPW_ENOTFOUND);
    assert_int_equal(count, lines);
    /* The reader's buffers never grow with the list: the same after a million records as
     * after the first, and under the documented bound. */
    assert_int_equal(max_mem, first_mem);
    assert_true(max_mem <= RECIPIENTS_MEMORY_MAX);
    recipients_close(r);
}

static void append_list(const char *text)
{
    FILE *f = fopen(test_path, "ab");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A last line without its line end may still be being written: held back while the reader
 * waits for line ends, read once it is complete, or as it is once the caller stops waiting. */
static void test_recipients_unterminated_last_line(void **state)
{
    (void)state;
    struct recipients *r = open_ok(WRITE_LIST("a@example.com\np2@good.evil.te"), NULL);
    recipients_wait_for_line_end(r, true);
    struct recipients_rec rec;
    struct err e;
    next_ok(r, &rec);
    assert_string_equal(rec.address, "a@example.com");
    assert_int_equal(recipients_next(r, &rec, &e), IPW_ENOTFOUND);
    assert_int_equal(recipients_unterminated(r), strlen("p2@good.evil.te"));
    /* Asked again: still held back, nothing skipped. */
    assert_int_equal(recipients_next(r, &rec, &e), IPW_ENOTFOUND);
    append_list("st\nq@example.com");
    next_ok(r, &rec);
    assert_string_equal(rec.address, "p2@good.evil.test");
    assert_int_equal(rec.line, 2);
    assert_int_equal(recipients_next(r, &rec, &e), IPW_ENOTFOUND);
    assert_int_equal(recipients_unterminated(r), strlen("q@example.com"));
    /* The file has settled: the last line is taken as it is. */
    recipients_wait_for_line_end(r, false);
    next_ok(r, &rec);
    assert_string_equal(rec.address, "q@example.com");
    assert_int_equal(recipients_unterminated(r), 0);
    next_end(r);
    recipients_close(r);

    /* CSV too, and a quoted field still open at the end is not "unterminated" yet. */
    r = open_ok(WRITE_LIST("email,n\r\nb@example.com,\"two\r\nlines"), NULL);
    recipients_wait_for_line_end(r, true);
    assert_int_equal(recipients_next(r, &rec, &e), IPW_ENOTFOUND);
    assert_true(recipients_unterminated(r) > 0);
    append_list("\"\r\n");
    next_ok(r, &rec);
    assert_string_equal(rec.values[1], "two\r\nlines");
    next_end(r);
    recipients_close(r);
}

/* Only a regular file is a list: a device or a pipe is refused at once, naming what it is. */
static void test_recipients_not_a_regular_file(void **state)
{
    (void)state;
    struct recipients *r = (struct recipients *)1;
    struct err e;
    assert_int_equal(recipients_open("/dev/zero", NULL, &r, &e), IPW_ENOINPUT);
    assert_null(r);
    assert_string_equal(e.msg, "/dev/zero is a character device, not a regular file: the "
                               "recipient list must be a file");
    char fifo[200];
    snprintf(fifo, sizeof fifo, "%s/fifo", test_dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* No writer: opening must not wait for one. */
    assert_int_equal(recipients_open(fifo, NULL, &r, &e), IPW_ENOINPUT);
    assert_non_null(strstr(e.msg, "is a FIFO (named pipe), not a regular file"));
    struct recipients_file_state fs;
    assert_int_equal(recipients_stat(fifo, &fs, &e), IPW_ENOINPUT);
    unlink(fifo);
    assert_int_equal(recipients_open(test_dir, NULL, &r, &e), IPW_ENOINPUT);
    assert_non_null(strstr(e.msg, "is a directory"));
}

static int stop_after;
static bool stop_cb(void *arg)
{
    (void)arg;
    return stop_after-- <= 0;
}

/* The callback stops a read inside one enormous line; the record is read whole later. */
static void test_recipients_interrupted_read(void **state)
{
    (void)state;
    size_t big = 40 * RECIPIENTS_IOBUF;
    char *content = malloc(big + 100);
    assert_non_null(content);
    size_t n = (size_t)snprintf(content, 100, "a@example.com\n");
    memset(content + n, 'x', big);
    n += big;
    n += (size_t)snprintf(content + n, 100, "\nb@example.com\n");
    struct recipients *r = open_ok(write_list(content, n), NULL);
    free(content);
    struct recipients_rec rec;
    struct err e;
    next_ok(r, &rec);
    stop_after = 5;
    recipients_set_interrupt(r, stop_cb, NULL);
    assert_int_equal(recipients_next(r, &rec, &e), IPW_ETEMP);
    assert_non_null(strstr(e.msg, ":2: reading stopped"));
    char hex[RECIPIENTS_SHA256_HEX];
    assert_int_equal(recipients_prefix_sha256(r, (int64_t)n, hex, &e), IPW_ETEMP);
    recipients_set_interrupt(r, NULL, NULL);
    next_bad(r, ":2: record longer than 65536 bytes");
    next_ok(r, &rec);
    assert_string_equal(rec.address, "b@example.com");
    recipients_close(r);

    /* A list that is one enormous line from its first byte (8 GiB of NUL bytes, sparse):
     * opening it reads no more than the record limit, and reading it can be stopped. */
    FILE *f = fopen(test_path, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)8 << 30), 0);
    fclose(f);
    time_t t0 = time(NULL);
    r = open_ok(test_path, NULL);
    assert_false(recipients_is_csv(r));
    assert_int_equal(recipients_data_offset(r), 0);
    stop_after = 100;
    recipients_set_interrupt(r, stop_cb, NULL);
    assert_int_equal(recipients_next(r, &rec, &e), IPW_ETEMP);
    assert_true(time(NULL) - t0 < 60); /* a bound wide enough for a loaded machine */
    assert_int_equal(recipients_tell(r, NULL), 0);
    recipients_close(r);
}

/* A record's digest follows its values and the header, not its place in the file. */
static void test_recipients_digest(void **state)
{
    (void)state;
    uint64_t d[4];
    struct recipients_rec rec;
    struct recipients *r = open_ok(WRITE_LIST("email,n\na@example.com,1\nb@example.com,1\n"), NULL);
    next_ok(r, &rec);
    d[0] = rec.digest;
    next_ok(r, &rec);
    assert_true(rec.digest != d[0]);
    recipients_close(r);
    r = open_ok(WRITE_LIST("email,n\nnew@example.com,0\na@example.com,1\n"), NULL);
    next_ok(r, &rec);
    next_ok(r, &rec);
    assert_int_equal(rec.line, 3);
    assert_true(rec.digest == d[0]); /* moved down a line, same values */
    recipients_close(r);
    r = open_ok(WRITE_LIST("email,n\na@example.com,2\n"), NULL);
    next_ok(r, &rec);
    d[1] = rec.digest;
    recipients_close(r);
    r = open_ok(WRITE_LIST("email,m\na@example.com,1\n"), NULL);
    next_ok(r, &rec);
    d[2] = rec.digest;
    recipients_close(r);
    r = open_ok(WRITE_LIST("a@example.com\n"), NULL);
    next_ok(r, &rec);
    d[3] = rec.digest;
    recipients_close(r);
    assert_true(d[1] != d[0] && d[2] != d[0] && d[3] != d[0] && d[1] != d[2]);
}

/* The SHA-256 of a prefix, carried on from one call to the next, and the file's state. */
static void test_recipients_prefix_sha256_and_state(void **state)
{
    (void)state;
    struct recipients *r = open_ok(WRITE_LIST("abc\nx@example.com\n"), NULL);
    FILE *f = NULL;
    char hex[RECIPIENTS_SHA256_HEX];
    struct err e;
    /* SHA-256("abc") and SHA-256("") (FIPS 180-2 examples). */
    assert_int_equal(recipients_prefix_sha256(r, 3, hex, &e), IPW_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(recipients_prefix_sha256(r, 0, hex, &e), IPW_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char again[RECIPIENTS_SHA256_HEX];
    assert_int_equal(recipients_prefix_sha256(r, 3, again, &e), IPW_OK);
    assert_string_equal(again, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(recipients_prefix_sha256(r, 18, hex, &e), IPW_OK);
    assert_int_equal(recipients_prefix_sha256(r, 19, hex, &e), IPW_ENOTFOUND);
    assert_non_null(strstr(e.msg, "shorter than 19 bytes"));

    /* Hashed while reading: the same as reading the prefix again, at the reader's place and
     * at the start of a held-back last line. */
    recipients_close(r);
    r = open_ok(WRITE_LIST("# c\nx@example.com\n\ny@example.com\nz@exa"), NULL);
    recipients_wait_for_line_end(r, true);
    struct recipients_rec rec;
    next_ok(r, &rec);
    long line = 0;
    int64_t at = recipients_tell(r, &line);
    assert_int_equal(at, strlen("# c\nx@example.com\n"));
    assert_int_equal(line, 3);
    assert_int_equal(recipients_prefix_sha256(r, at, hex, &e), IPW_OK);
    struct recipients *r2 = open_ok(test_path, NULL);
    assert_int_equal(recipients_prefix_sha256(r2, at, again, &e), IPW_OK);
    assert_string_equal(hex, again);
    next_ok(r, &rec);
    assert_int_equal(recipients_next(r, &rec, &e), IPW_ENOTFOUND);
    at = recipients_tell(r, NULL);
    assert_int_equal(at, strlen("# c\nx@example.com\n\ny@example.com\n"));
    assert_int_equal(recipients_prefix_sha256(r, at, hex, &e), IPW_OK);
    assert_int_equal(recipients_prefix_sha256(r2, at, again, &e), IPW_OK);
    assert_string_equal(hex, again);
    /* ... and it goes on from there once the line is complete. */
    append_list("mple.com\n");
    next_ok(r, &rec);
    at = recipients_tell(r, NULL);
    assert_int_equal(recipients_prefix_sha256(r, at, hex, &e), IPW_OK);
    assert_int_equal(recipients_prefix_sha256(r2, at, again, &e), IPW_OK);
    assert_string_equal(hex, again);
    recipients_close(r2);
    /* Rewritten in place since it was read: the hash of what was parsed stays, the file's is
     * the new one's. */
    at = recipients_tell(r, NULL);
    assert_int_equal(recipients_prefix_sha256(r, at, hex, &e), IPW_OK);
    f = fopen(test_path, "r+b");
    assert_non_null(f);
    fputs("# C", f);
    fclose(f);
    assert_int_equal(recipients_prefix_sha256(r, at, again, &e), IPW_OK);
    assert_string_equal(again, hex);
    assert_int_equal(recipients_file_sha256(r, at, again, &e), IPW_OK);
    assert_string_not_equal(again, hex);
    recipients_close(r);

    /* Across many I/O buffers. */
    f = fopen(test_path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "user%d@example%d.com\n", i, i % 7);
    fclose(f);
    r = open_ok(test_path, NULL);
    for (int i = 0; i < 3000; i++)
        next_ok(r, &rec);
    at = recipients_tell(r, NULL);
    assert_true(at > 3 * RECIPIENTS_IOBUF);
    assert_int_equal(recipients_prefix_sha256(r, at, hex, &e), IPW_OK);
    r2 = open_ok(test_path, NULL);
    assert_int_equal(recipients_prefix_sha256(r2, at, again, &e), IPW_OK);
    assert_string_equal(hex, again);
    recipients_close(r2);
    recipients_close(r);
    r = open_ok(WRITE_LIST("# c\nx@example.com\n\ny@example.com\nz@example.com\n"), NULL);

    struct recipients_file_state a, b;
    assert_int_equal(recipients_stat(test_path, &a, &e), IPW_OK);
    assert_int_equal(recipients_fstat(r, &b, &e), IPW_OK);
    char ta[128], tb[128];
    recipients_file_state_format(&a, ta, sizeof ta);
    recipients_file_state_format(&b, tb, sizeof tb);
    assert_string_equal(ta, tb);
    assert_int_equal(a.size, strlen("# c\nx@example.com\n\ny@example.com\nz@example.com\n"));
    append_list("y@example.com\n");
    assert_int_equal(recipients_stat(test_path, &b, &e), IPW_OK);
    recipients_file_state_format(&b, tb, sizeof tb);
    assert_string_not_equal(ta, tb);
    recipients_close(r);

    /* Settled: the file's last change RECIPIENTS_SETTLE_MS or more ago. */
    struct recipients_file_state s = {.mtime_ns = INT64_C(1000000000000) * 1000000};
    assert_false(recipients_settled(&s, INT64_C(1000000000000) + RECIPIENTS_SETTLE_MS - 1));
    assert_true(recipients_settled(&s, INT64_C(1000000000000) + RECIPIENTS_SETTLE_MS));
}

static void test_recipients_address(void **state)
{
    (void)state;
    char out[RECIPIENTS_ADDR_MAX + 1];
    const char *why = NULL;
    assert_true(recipients_address("O'Brien.x+y@Sub-1.Example.CO.uk", out, &why));
    assert_string_equal(out, "O'Brien.x+y@sub-1.example.co.uk");
    struct {
        const char *in;
        const char *why;
    } bad[] = {
        {"", "empty"},
        {"plain", "no @"},
        {"@example.com", "the local part before @ is empty"},
        {"a@", "the domain after @ is empty"},
        {"a.@example.com", "the local part starts or ends with a dot or has two in a row"},
        {"a..b@example.com", "the local part starts or ends with a dot or has two in a row"},
        {"a(b)@example.com", "the local part has a character that would need quoting"},
        {"\"a b\"@example.com", "it contains a space"},
        {"\"ab\"@example.com", "quoted local parts are not supported"},
        {"a@[192.0.2.1]", "address literals are not supported"},
        {"a@example.com.", "the domain ends with a dot"},
        {"a@example..com", "the domain has an empty label"},
        {"a@-example.com", "a domain label starts or ends with '-'"},
        {"a@example-.com", "a domain label starts or ends with '-'"},
        {"a@exa_mple.com", "the domain has a character other than letters, digits, '-' and '.'"},
        {"a@192.0.2.1", "the domain's last label is all digits"},
        {"jörg@example.com", "non-ASCII addresses need SMTPUTF8, which ipwarm does not use"},
        {"a@b@example.com", "more than one @"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (recipients_address(bad[i].in, out, &why))
            fail_msg("accepted %s", bad[i].in);
        assert_string_equal(why, bad[i].why);
    }
    char local[80];
    memset(local, 'a', 65);
    memcpy(local + 65, "@example.com", 13);
    assert_false(recipients_address(local, out, &why));
    assert_string_equal(why, "the local part is longer than 64 octets");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recipients_plain_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipients_csv_rfc4180, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipients_csv_column_option_and_one_column, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recipients_header_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipients_bad_lines_are_reported_and_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recipients_resume_from_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipients_long_record_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipients_million_lines_constant_memory, setup,
                                        teardown),
        cmocka_unit_test(test_recipients_address),
        cmocka_unit_test_setup_teardown(test_recipients_unterminated_last_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipients_not_a_regular_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipients_interrupted_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipients_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipients_prefix_sha256_and_state, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
