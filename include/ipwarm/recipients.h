/*
 * recipients: the recipient list, streamed one record at a time in constant memory.
 *
 * Two formats, told apart by the first line that is neither blank nor a '#' comment: a CSV
 * header (RFC 4180) when that line holds a comma or is the address column's name, else plain
 * text. Plain text: one address per line; blank lines and lines starting with '#' are
 * skipped; spaces around an address are ignored. CSV: RFC 4180 with a header row naming the
 * columns; fields may be quoted ("a, b"), with "" for a quote and line breaks inside quotes;
 * records end in CRLF or LF; blank records (nothing but commas and spaces) are skipped; every
 * record has as many fields as the header. The address is in the column named by the plan's
 * recipients.column (default "email"), matched without regard to ASCII case; every column's
 * value is available to templates by its header name. A UTF-8 BOM at the start is skipped.
 *
 * Addresses are RFC 5321 4.1.2 Mailbox = Local-part "@" Domain, restricted to what can be
 * sent without SMTPUTF8: a dot-atom local part (kept as written: local parts may be case
 * sensitive) and a domain name of at least two labels (lower-cased). Quoted local parts,
 * address literals, display names and non-ASCII addresses are refused with a reason.
 *
 * Memory stays bounded whatever the list's size: the reader holds one I/O buffer and one
 * record of at most RECIPIENTS_RECORD_MAX bytes. A bad record is reported and skipped; the
 * reader carries on with the next one. After each record the reader gives the file offset and
 * line where the next one starts, so a `once` campaign can resume there on its next tick.
 *
 * The list is the operator's file and may change between two reads, or while one is going:
 * only a regular file is accepted (a pipe or a device cannot be read again, nor tell whether
 * it changed); its size and times (recipients_stat) and the SHA-256 of the part already read
 * (recipients_prefix_sha256) tell whether what was read is still there; each record carries a
 * digest that changes with its line; a last line without its line end can be held back until
 * it is complete (recipients_wait_for_line_end); and a callback can stop a long read.
 */
#ifndef IPWARM_RECIPIENTS_H
#define IPWARM_RECIPIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"

/* The longest record (a line, or a CSV record with its quoted line breaks) in bytes. */
#define RECIPIENTS_RECORD_MAX 65536
/* The most CSV columns a header may have. */
#define RECIPIENTS_COLUMNS_MAX 256
/* Bytes read from the file at a time. */
#define RECIPIENTS_IOBUF 16384
/* A last line still without its line end this long after the file last changed is taken as
 * it is: a program appending a line writes it in milliseconds, not half a minute. */
#define RECIPIENTS_SETTLE_MS 30000
/* A SHA-256 in hex, with its NUL. */
#define RECIPIENTS_SHA256_HEX 65
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its angle brackets. */
#define RECIPIENTS_ADDR_MAX 254
/* An upper bound of recipients_memory() for any list, whatever its number of records: the I/O
 * buffer, one record, the header's names, the per-column arrays, and 8 KiB for the reader's
 * own fields and its path (at most PATH_MAX). */
#define RECIPIENTS_MEMORY_MAX                                                                      \
    (RECIPIENTS_IOBUF + 2 * (RECIPIENTS_RECORD_MAX + 1) +                                          \
     (RECIPIENTS_COLUMNS_MAX + 1) * (sizeof(size_t) + 2 * sizeof(void *)) + 8192)

struct recipients;

/* One record; its strings belong to the reader and stay valid until the next call. */
struct recipients_rec {
    const char *address; /* normalised: local part as written, domain lower case; NULL if bad */
    const char *domain;  /* the domain, inside address */
    long line;           /* the record's first line in the file, 1-based */
    int64_t offset;      /* the record's byte offset in the file */
    int64_t next_offset; /* where the next record starts: give it to recipients_seek() */
    long next_line;      /* the line there */
    const char *const *values; /* CSV: the record's fields, parallel to recipients_columns() */
    size_t n_values;           /* CSV: the number of columns; plain text: 0 */
    uint64_t digest; /* a hash of the record's values and the CSV header: another value (or
                        header) gives another digest */
};

/*
 * Opens the list at path; column is the address column of a CSV list (NULL: "email"). Reads
 * as far as the header. Returns IPW_OK with *out (close with recipients_close);
 * IPW_ENOINPUT when the file cannot be opened or is not a regular file (a directory, a named
 * pipe, a device: "/dev/zero is a character device, not a regular file: ..."; a pipe is
 * refused without waiting for a writer); IPW_EDATA for a bad header, naming FILE:LINE:
 *     seeds.csv:1: the CSV header has no column "email" (columns: name, mail)
 * (also: a column named twice, too many columns, invalid UTF-8, a header over
 * RECIPIENTS_RECORD_MAX bytes); IPW_EIO; IPW_ENOMEM. An empty list is not an error.
 */
ipw_status recipients_open(const char *path, const char *column, struct recipients **out,
                           struct err *e);

/*
 * Reads the next record into *rec. Returns IPW_OK; IPW_ENOTFOUND at the end of the list;
 * IPW_EDATA for a bad record, with e->msg "FILE:LINE: what is wrong" and rec->line, offset,
 * next_offset and next_line set (address NULL): the reader has moved past the record and the
 * caller decides whether to skip it or stop. Bad records: an address that is not one
 * ("FILE:7: \"bob@@example.com\" is not an e-mail address: ..."), a field count different
 * from the header's, an unterminated quoted field, a character after a closing quote, invalid
 * UTF-8, a NUL byte, a record over RECIPIENTS_RECORD_MAX bytes. IPW_EIO when reading fails.
 * IPW_ETEMP when the interrupt callback (recipients_set_interrupt) asked to stop: the reader
 * is back at the start of the record it was reading, which the next call reads whole.
 * With recipients_wait_for_line_end(r, true), a last record that the end of the file cut off
 * before its line end gives IPW_ENOTFOUND, the reader stays before it, and
 * recipients_unterminated() says how many bytes it has so far.
 */
ipw_status recipients_next(struct recipients *r, struct recipients_rec *rec, struct err *e);

/*
 * Continues reading at a record boundary given by an earlier rec.next_offset and
 * rec.next_line of the same file (a stored position after a restart). Returns IPW_OK;
 * IPW_EUSAGE for an offset before the first record (inside the header); IPW_EIO when the file
 * cannot seek. An offset past the end makes the next read return IPW_ENOTFOUND.
 */
ipw_status recipients_seek(struct recipients *r, int64_t offset, long line, struct err *e);

/* Where the reader is: the offset of the next record it reads (always a record boundary
 * between calls), and its line in *line (may be NULL). */
int64_t recipients_tell(const struct recipients *r, long *line);

/* Goes back to the first record (mode: cycle). Returns as recipients_seek. */
ipw_status recipients_rewind(struct recipients *r, struct err *e);

/* CSV: the column names in header order (spaces around them removed), *n their number;
 * plain text: NULL and 0. */
const char *const *recipients_columns(const struct recipients *r, size_t *n);

bool recipients_is_csv(const struct recipients *r);

/* The offset and line of the first record (just after the header). */
int64_t recipients_data_offset(const struct recipients *r);
long recipients_data_line(const struct recipients *r);

/* Bytes the reader holds now: it never exceeds RECIPIENTS_MEMORY_MAX. */
size_t recipients_memory(const struct recipients *r);

void recipients_close(struct recipients *r);

/*
 * wait true: a last record without its line end (the file may still be being written) is not
 * read; see recipients_next. false (the default: a file's last line needs no line end): it is
 * read like any other, which is what a caller wants once the file has settled
 * (recipients_settled).
 */
void recipients_wait_for_line_end(struct recipients *r, bool wait);
/* The size in bytes of the unterminated last record the last recipients_next held back; 0 when
 * it held back none. */
int64_t recipients_unterminated(const struct recipients *r);
/* fn(arg) is asked before each block the reader reads (16 KiB); true stops the read
 * (recipients_next and recipients_prefix_sha256 return IPW_ETEMP). NULL: never stop. */
void recipients_set_interrupt(struct recipients *r, bool (*fn)(void *arg), void *arg);

/* What says cheaply whether a file changed: any write changes its size or times. */
struct recipients_file_state {
    int64_t dev, ino; /* which file (a list replaced by a new file has another inode) */
    int64_t size;
    int64_t mtime_ns, ctime_ns; /* last write, last change of the inode (not settable) */
};
/* The state of the file at path now: IPW_OK; IPW_ENOINPUT when it is gone or not a regular
 * file (the sentence of recipients_open). */
ipw_status recipients_stat(const char *path, struct recipients_file_state *out, struct err *e);
/* The state of the file the reader has open (which may no longer be the one at its path). */
ipw_status recipients_fstat(const struct recipients *r, struct recipients_file_state *out,
                            struct err *e);
/* "dev:ino:size:mtime_ns:ctime_ns" into out: two states are equal when their texts are. */
void recipients_file_state_format(const struct recipients_file_state *s, char *out, size_t n);
/* True when the file last changed RECIPIENTS_SETTLE_MS or longer before now_real_ms (the real
 * clock, which file times follow): its unterminated last line is then taken as it is. */
bool recipients_settled(const struct recipients_file_state *s, int64_t now_real_ms);
/*
 * The SHA-256 of the file's first upto bytes, in lower-case hex. When upto is where the reader
 * is (recipients_tell) or the start of the record it gave back, it is the hash of the very
 * bytes the reader parsed, kept as it reads (no second pass, and exact even if the file is
 * written meanwhile); otherwise the file's first upto bytes are read again. Returns IPW_OK;
 * IPW_ENOTFOUND when the file is shorter than upto; IPW_ETEMP when the interrupt callback
 * stopped it; IPW_EIO.
 */
ipw_status recipients_prefix_sha256(struct recipients *r, int64_t upto,
                                    char hex[RECIPIENTS_SHA256_HEX], struct err *e);
/* The SHA-256 of the file's first upto bytes as they are now, read again whatever the reader
 * parsed (to tell whether what was read is still there). Returns as recipients_prefix_sha256. */
ipw_status recipients_file_sha256(struct recipients *r, int64_t upto,
                                  char hex[RECIPIENTS_SHA256_HEX], struct err *e);

/*
 * Checks and normalises one address (see above) into out (RECIPIENTS_ADDR_MAX + 1 bytes).
 * Returns true, or false with *why (may be NULL) a static phrase such as "no @" or
 * "the domain has no dot".
 */
bool recipients_address(const char *s, char *out, const char **why);

#endif
