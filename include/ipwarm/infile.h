/*
 * infile: the files a plan names (the plan itself, the message templates, the DKIM key, a
 * password file, a CA file, the provider table), opened for reading without ever hanging.
 *
 * A plain open(2) of a FIFO blocks until someone writes to it, and /dev/zero or /dev/urandom
 * never end: given as message.text_file by mistake (or by someone who may edit the plan but
 * should not stop ipwarm), `validate` would hang, and a cron tick would hold the run lock for
 * good. So every such file is opened with O_NONBLOCK (a FIFO then opens at once), checked with
 * fstat(2), and refused unless it is a regular file, with a sentence naming the plan key and the
 * file. The recipient list is read by recipients.c.
 */
#ifndef IPWARM_INFILE_H
#define IPWARM_INFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "ipwarm/err.h"

/* A phrase for a file of mode m that is not regular ("a FIFO (named pipe)", "a character
 * device", "a directory", ...), for a refusal. */
const char *infile_kind(mode_t m);

/*
 * Opens path read-only (O_CLOEXEC), refusing what is not a regular file without reading it.
 * Returns the descriptor (blocking again, positioned at 0), or -1 with errno set: what open(2)
 * or fstat(2) said, or EINVAL for a file that is not regular, with *kind (may be NULL) then set
 * to a phrase for it ("a FIFO (named pipe)", "a character device", "a directory", ...); *kind
 * is NULL otherwise.
 */
int infile_open_fd(const char *path, const char **kind);

/*
 * infile_open_fd() with the failure as a sentence that says what the file is for: what is the
 * plan key or a description ("message.text_file", "the DKIM key"), and the sentence reads
 * "message.text_file: /etc/ipwarm/fifo is a FIFO (named pipe), not a regular file" or
 * "message.text_file: cannot open /etc/ipwarm/x.txt: No such file or directory".
 * Returns IPW_OK with *fd; IPW_ENOINPUT.
 */
ipw_status infile_open(const char *path, const char *what, int *fd, struct err *e);

/*
 * Reads the regular file path whole into a new NUL-terminated buffer (*text, its length in
 * *len; the file may hold NUL bytes). A file of more than max bytes is refused (IPW_EDATA,
 * "larger than max bytes"); nothing more than max + 1 bytes is read. Returns IPW_OK;
 * IPW_ENOINPUT (cannot open, not a regular file); IPW_EIO (a read failed); IPW_EDATA;
 * IPW_ENOMEM. Sentences as infile_open's.
 */
ipw_status infile_read(const char *path, const char *what, size_t max, char **text, size_t *len,
                       struct err *e);

/*
 * Reads open descriptor fd to its end, or up to max + 1 bytes (so that the caller sees a file
 * larger than max), into a new NUL-terminated buffer (*text, its length in *len). fd is left
 * open. Returns 0, or an errno value (ENOMEM, or read's) with nothing allocated; what was read
 * before a failure is wiped first, for it may be a key or a password.
 */
int infile_read_fd(int fd, size_t max, char **text, size_t *len);

#endif
