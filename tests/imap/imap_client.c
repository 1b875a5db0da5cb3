/*
 * imap_client: drives the imap module (imap.h) for tests/cli/test_imap.sh against a real IMAP
 * server on loopback. Not installed; ipwarm itself has no such command.
 *
 *   imap_client [--ca FILE] [--tls none] [--connect-ms N] [--command-ms N] [--session-ms N]
 *               URL USER OP...
 * The password comes from $IMAP_TEST_PASSWORD (imap_password_read). OPs, in order, on one
 * session:
 *   examine FOLDER         prints "examine uidvalidity=V uidnext=N exists=E"
 *   after N                prints "uids U1 U2 ..." (UIDs greater than N)
 *   search FIELD VALUE     prints "uids ..." (UID SEARCH HEADER)
 *   fetch UID FILE         writes the message to FILE; prints "fetch UID bytes=B size=S flags=F"
 *   flags UID              prints "flags UID F" (F: seen,flagged,... or "-")
 *   list                   prints "folder NAME attrs=A" per folder and "junk NAME" or "junk -"
 * Exits 0; on an error prints "error: SENTENCE" on stderr and exits 69 (IPW_EUNAVAIL), 66
 * (IPW_ENOTFOUND) or 64 (anything else).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/imap.h"

static void print_flags(unsigned f)
{
    const char *sep = "";
    if (!f)
        fputs("-", stdout);
    if (f & IMAP_FLAG_SEEN)
        printf("%sseen", sep), sep = ",";
    if (f & IMAP_FLAG_ANSWERED)
        printf("%sanswered", sep), sep = ",";
    if (f & IMAP_FLAG_FLAGGED)
        printf("%sflagged", sep), sep = ",";
    if (f & IMAP_FLAG_DELETED)
        printf("%sdeleted", sep), sep = ",";
    if (f & IMAP_FLAG_DRAFT)
        printf("%sdraft", sep);
}

static int fail(ipw_status st, const struct err *e)
{
    fprintf(stderr, "error: %s\n", e->msg);
    return st == IPW_EUNAVAIL ? 69 : st == IPW_ENOTFOUND ? 66 : 64;
}

int main(int argc, char **argv)
{
    struct imap_config cfg = {0};
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--ca") == 0)
            cfg.ca_file = argv[i + 1];
        else if (strcmp(argv[i], "--tls") == 0)
            cfg.tls = strcmp(argv[i + 1], "none") == 0 ? IMAP_TLS_NONE : IMAP_TLS_REQUIRED;
        else if (strcmp(argv[i], "--connect-ms") == 0)
            cfg.connect_timeout_ms = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--command-ms") == 0)
            cfg.command_timeout_ms = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--session-ms") == 0)
            cfg.session_timeout_ms = strtoll(argv[i + 1], NULL, 10);
        else
            return 64;
    }
    if (argc - i < 2) {
        fputs("usage: imap_client [options] URL USER OP...\n", stderr);
        return 64;
    }
    cfg.url = argv[i++];
    cfg.username = argv[i++];
    struct err e = {0};
    char *password = NULL;
    ipw_status st = imap_password_read("IMAP_TEST_PASSWORD", NULL, "test", &password, &e);
    if (st)
        return fail(st, &e);
    cfg.password = password;
    cfg.password_source = "$IMAP_TEST_PASSWORD";
    struct imap *s = NULL;
    st = imap_open(&cfg, &s, &e);
    imap_password_free(password);
    if (st)
        return fail(st, &e);
    int rc = 0;
    while (i < argc && rc == 0) {
        const char *op = argv[i++];
        if (strcmp(op, "examine") == 0 && i < argc) {
            struct imap_folder f;
            st = imap_examine(s, argv[i++], &f, &e);
            if (!st)
                printf("examine uidvalidity=%lu uidnext=%lu exists=%lu\n",
                       (unsigned long)f.uidvalidity, (unsigned long)f.uidnext,
                       (unsigned long)f.exists);
        } else if ((strcmp(op, "after") == 0 && i < argc) ||
                   (strcmp(op, "search") == 0 && i + 1 < argc)) {
            struct imap_uids u;
            if (op[0] == 'a') {
                st = imap_uids_after(s, (uint32_t)strtoul(argv[i++], NULL, 10), &u, &e);
            } else {
                st = imap_search_header(s, argv[i], argv[i + 1], &u, &e);
                i += 2;
            }
            if (!st) {
                fputs("uids", stdout);
                for (size_t k = 0; k < u.n; k++)
                    printf(" %lu", (unsigned long)u.uid[k]);
                fputc('\n', stdout);
                imap_uids_free(&u);
            }
        } else if (strcmp(op, "fetch") == 0 && i + 1 < argc) {
            struct imap_message m;
            uint32_t uid = (uint32_t)strtoul(argv[i], NULL, 10);
            st = imap_fetch(s, uid, &m, &e);
            if (!st) {
                FILE *f = fopen(argv[i + 1], "wb");
                if (f) {
                    fwrite(m.data, 1, m.len, f);
                    fclose(f);
                }
                printf("fetch %lu bytes=%zu size=%llu flags=", (unsigned long)uid, m.len,
                       (unsigned long long)m.size);
                print_flags(m.flags);
                fputc('\n', stdout);
                imap_message_free(&m);
            }
            i += 2;
        } else if (strcmp(op, "flags") == 0 && i < argc) {
            unsigned fl;
            uint32_t uid = (uint32_t)strtoul(argv[i++], NULL, 10);
            st = imap_flags(s, uid, &fl, &e);
            if (!st) {
                printf("flags %lu ", (unsigned long)uid);
                print_flags(fl);
                fputc('\n', stdout);
            }
        } else if (strcmp(op, "list") == 0) {
            struct imap_mailbox *l;
            size_t n;
            st = imap_list(s, &l, &n, &e);
            if (!st) {
                for (size_t k = 0; k < n; k++)
                    printf("folder %s attrs=%s%s\n", l[k].name_utf8,
                           l[k].attrs & IMAP_MBOX_JUNK ? "junk" : "-",
                           l[k].attrs & IMAP_MBOX_NOSELECT ? ",noselect" : "");
                const struct imap_mailbox *j = imap_list_junk(l, n);
                printf("junk %s\n", j ? j->name : "-");
                imap_list_free(l, n);
            }
        } else {
            fprintf(stderr, "imap_client: bad operation %s\n", op);
            rc = 64;
            break;
        }
        if (st)
            rc = fail(st, &e);
        fflush(stdout);
    }
    imap_close(s);
    return rc;
}
