/*
 * afile: whole files replaced atomically (see afile.h).
 *
 * The temporary file lives in the target's directory, because rename(2) and link(2) are atomic
 * only within one file system. Its name starts with a dot and ends in six random characters, so
 * that a collector reading "*.prom" or a web server listing "*.html" never picks it up, and
 * mkstemp(3) creates it with O_EXCL: a symlink someone planted at a predictable name such as
 * FILE.tmp can no longer redirect the write. The order of the steps is the one that survives a
 * crash at any point: data on disk (fflush, then fsync) before the name points at it, and the
 * directory synced after, so that the rename itself is durable.
 */
#include "ipwarm/afile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory part of path ("." when it has none, "/" for "/x"). Returns a new string. */
static char *afile_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Syncs the directory of path so that a rename or link in it is on disk. A file system that
 * cannot sync a directory (EINVAL) has nothing more to do. */
static int afile_sync_dir(const char *path)
{
    char *dir = afile_dir(path);
    if (!dir)
        return ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
    close(fd);
    return rc;
}

static void afile_release(struct afile *a)
{
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    a->f = NULL;
}

ipw_status afile_open(struct afile *a, const char *path, mode_t mode, unsigned flags, struct err *e)
{
    memset(a, 0, sizeof *a);
    a->flags = flags;
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dl;
    if (!*base)
        return err_set(e, IPW_ECANTCREAT, "cannot write %s: the name is a directory", path);
    size_t n = dl + 1 + strlen(base) + sizeof ".XXXXXX";
    a->path = strdup(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        afile_release(a);
        return err_set(e, IPW_ENOMEM, "out of memory writing %s", path);
    }
    snprintf(a->tmp, n, "%.*s.%s.XXXXXX", (int)dl, path, base);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int saved = errno;
        char *dir = afile_dir(path);
        err_set(e, IPW_ECANTCREAT, "cannot create a temporary file in %s to write %s: %s",
                dir ? dir : "its directory", path, strerror(saved));
        free(dir);
        afile_release(a);
        return IPW_ECANTCREAT;
    }
    /* mkstemp makes 0600; give the file its mode as open(2) would, the umask applied. Reading
     * the umask sets it: put it straight back (ipwarm writes these files single-threaded). */
    mode_t um = umask(0077);
    umask(um);
    int fl = fcntl(fd, F_GETFD);
    if ((fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) != 0) || fchmod(fd, mode & ~um) != 0 ||
        !(a->f = fdopen(fd, "w"))) {
        int saved = errno;
        close(fd);
        unlink(a->tmp);
        err_set(e, IPW_ECANTCREAT, "cannot prepare the temporary file %s to write %s: %s", a->tmp,
                path, strerror(saved));
        afile_release(a);
        return IPW_ECANTCREAT;
    }
    return IPW_OK;
}

ipw_status afile_commit(struct afile *a, struct err *e)
{
    if (!a->f) {
        afile_release(a);
        return err_set(e, IPW_ESOFTWARE, "afile_commit: nothing open");
    }
    ipw_status r = IPW_OK;
    /* stdio's buffer first, then the kernel's: fsync before fflush would sync half a file. */
    if (fflush(a->f) != 0 || ferror(a->f))
        r = err_set(e, IPW_EIO, "cannot write %s (to replace %s): %s", a->tmp, a->path,
                    strerror(errno ? errno : EIO));
    else if (fsync(fileno(a->f)) != 0)
        r = err_set(e, IPW_EIO, "cannot flush %s to disk (to replace %s): %s", a->tmp, a->path,
                    strerror(errno));
    if (fclose(a->f) != 0 && r == IPW_OK)
        r = err_set(e, IPW_EIO, "cannot write %s (to replace %s): %s", a->tmp, a->path,
                    strerror(errno));
    a->f = NULL;
    if (r == IPW_OK && (a->flags & AFILE_NOREPLACE)) {
        /* link(2) fails with EEXIST instead of replacing: "create if absent", atomically. */
        if (link(a->tmp, a->path) != 0) {
            a->exists = errno == EEXIST;
            r = a->exists
                    ? err_set(e, IPW_ECANTCREAT, "%s exists; not overwriting it", a->path)
                    : err_set(e, IPW_ECANTCREAT, "cannot create %s: %s", a->path, strerror(errno));
        }
        unlink(a->tmp);
    } else if (r == IPW_OK && rename(a->tmp, a->path) != 0) {
        r = err_set(e, IPW_ECANTCREAT, "cannot put the new %s in place (rename from %s): %s",
                    a->path, a->tmp, strerror(errno));
    }
    if (r != IPW_OK) {
        unlink(a->tmp);
    } else {
        int rc = afile_sync_dir(a->path);
        if (rc != 0)
            r = err_set(e, IPW_EIO, "wrote %s, but cannot flush its directory to disk: %s", a->path,
                        strerror(rc));
    }
    afile_release(a);
    return r;
}

void afile_abort(struct afile *a)
{
    if (a->f) {
        fclose(a->f);
        a->f = NULL;
        unlink(a->tmp);
    }
    afile_release(a);
}

ipw_status afile_write(const char *path, mode_t mode, unsigned flags, const void *data, size_t len,
                       bool *exists, struct err *e)
{
    struct afile a;
    if (exists)
        *exists = false;
    ipw_status r = afile_open(&a, path, mode, flags, e);
    if (r != IPW_OK)
        return r;
    setvbuf(a.f, NULL, _IONBF, 0);
    if (len > 0)
        fwrite(data, 1, len, a.f);
    r = afile_commit(&a, e);
    if (exists)
        *exists = a.exists;
    return r;
}
