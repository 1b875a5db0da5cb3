/*
 * afile: files ipwarm writes whole, replaced atomically (the HTML report, the metrics for a
 * textfile collector, the files `init` writes, a DKIM key, the unsubscribe secret).
 *
 * A reader of the target sees the old file or the new one, never half of one, and never a file
 * an attacker chose: the content goes to a new temporary file beside the target, created with
 * a unique name that no one can plant a symlink at (mkstemp(3): O_CREAT|O_EXCL, so a link there
 * is never followed), written through stdio, flushed, fsync(2)ed, renamed over the target (or,
 * with AFILE_NOREPLACE, linked to it only if it does not exist), and the directory is fsync(2)ed
 * so that the new name survives a power cut. On any failure the temporary file is removed and
 * the target is left as it was.
 *
 *     struct afile a;
 *     if (afile_open(&a, "report.html", 0644, 0, e) != IPW_OK) return e->status;
 *     fprintf(a.f, ...);
 *     return afile_commit(&a, e);        // or afile_abort(&a) to give up
 */
#ifndef IPWARM_AFILE_H
#define IPWARM_AFILE_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "ipwarm/err.h"

/* afile_commit leaves an existing target alone and fails (IPW_ECANTCREAT, exists set): for
 * files that must never be overwritten (a plan weeks into its warm-up, a published DKIM key). */
#define AFILE_NOREPLACE 0x1u

struct afile {
    FILE *f;    /* write the content through this */
    char *path; /* the target */
    char *tmp;  /* the temporary file beside it: "DIR/.NAME.XXXXXX" */
    unsigned flags;
    bool exists; /* after a failed AFILE_NOREPLACE commit: the target was there already */
};

/*
 * Creates the temporary file for path with mode (as the umask allows; 0600 stays 0600 whatever
 * the umask) and opens a->f on it. Returns IPW_OK; IPW_ECANTCREAT when the directory does not
 * allow it; IPW_ENOMEM. On failure *a holds nothing to release.
 */
ipw_status afile_open(struct afile *a, const char *path, mode_t mode, unsigned flags,
                      struct err *e);

/*
 * Flushes, syncs and closes the temporary file, puts it in place of the target and syncs the
 * directory. Always releases a (afile_abort need not follow). Returns IPW_OK; IPW_EIO when a
 * write failed (disk full, I/O error); IPW_ECANTCREAT when the target cannot be replaced, or,
 * with AFILE_NOREPLACE, exists (a->exists is then set). The target is unchanged on failure.
 */
ipw_status afile_commit(struct afile *a, struct err *e);

/* Closes and removes the temporary file; the target is unchanged. Safe on a released afile. */
void afile_abort(struct afile *a);

/*
 * The whole cycle for content already in memory: afile_open, the len bytes of data written
 * unbuffered (no copy of a key or a secret is left in a stdio buffer freed without wiping),
 * afile_commit. *exists (may be NULL) tells a failed AFILE_NOREPLACE write from the others.
 * Returns what afile_open or afile_commit returns.
 */
ipw_status afile_write(const char *path, mode_t mode, unsigned flags, const void *data, size_t len,
                       bool *exists, struct err *e);

#endif
