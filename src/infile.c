/*
 * infile: the files a plan names, opened without hanging on a FIFO or a device (see infile.h).
 *
 * O_NONBLOCK matters only for the open itself: a FIFO opened read-only with it returns at once
 * instead of waiting for a writer, and is then refused. For a regular file the flag changes
 * nothing (reads of regular files never block in that sense), and it is cleared anyway so that
 * the descriptor behaves as any other. O_NOCTTY keeps a terminal device named by mistake from
 * becoming the controlling terminal before it is refused.
 */
#include "ipwarm/infile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *infile_kind(mode_t m)
{
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

int infile_open_fd(const char *path, const char **kind)
{
    if (kind)
        *kind = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (kind)
            *kind = infile_kind(st.st_mode);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

ipw_status infile_open(const char *path, const char *what, int *fd, struct err *e)
{
    const char *kind;
    *fd = infile_open_fd(path, &kind);
    if (*fd >= 0)
        return IPW_OK;
    if (kind)
        return err_set(e, IPW_ENOINPUT, "%s: %s is %s, not a regular file", what, path, kind);
    return err_set(e, IPW_ENOINPUT, "%s: cannot open %s: %s", what, path, strerror(errno));
}

int infile_read_fd(int fd, size_t max, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    size_t cap = max + 2; /* one byte more than max tells a larger file, one for the NUL */
    char *buf = malloc(cap);
    if (!buf)
        return ENOMEM;
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int saved = errno;
            explicit_bzero(buf, n); /* it may be a key or a password */
            free(buf);
            return saved;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

ipw_status infile_read(const char *path, const char *what, size_t max, char **text, size_t *len,
                       struct err *e)
{
    *text = NULL;
    *len = 0;
    int fd;
    ipw_status s = infile_open(path, what, &fd, e);
    if (s != IPW_OK)
        return s;
    char *buf;
    size_t n;
    int rc = infile_read_fd(fd, max, &buf, &n);
    close(fd);
    if (rc == ENOMEM)
        return err_set(e, IPW_ENOMEM, "%s: out of memory reading %s", what, path);
    if (rc != 0)
        return err_set(e, IPW_EIO, "%s: cannot read %s: %s", what, path, strerror(rc));
    if (n > max) {
        explicit_bzero(buf, n);
        free(buf);
        return err_set(e, IPW_EDATA, "%s: %s is larger than %zu bytes", what, path, max);
    }
    *text = buf;
    *len = n;
    return IPW_OK;
}
