/*
 * imap: a small IMAP client (RFC 3501 IMAP4rev1, RFC 6154 special-use folders) for reading a
 * bounce mailbox and looking up seed copies, without ever changing the mailbox.
 *
 * libcurl makes the connection: TCP, TLS from the start for imaps:// (RFC 8314) or STARTTLS
 * required on imap:// (RFC 2595; CURLUSESSL_ALL), plain only when the caller says tls none,
 * the server's certificate checked (a private CA with ca_file), and the login (SASL or LOGIN,
 * whichever the server offers, with a password; AUTHENTICATE XOAUTH2 only, with an OAuth 2.0
 * access token). It stops there (CURLOPT_CONNECT_ONLY) and this module speaks
 * IMAP over that connection itself, because libcurl's own IMAP commands cannot read a mailbox
 * unchanged: a URL fetch asks BODY[] (which sets \Seen) after a read-write SELECT, and a
 * custom FETCH loses its literal. Here a folder is opened with EXAMINE (read-only) and
 * messages are read with BODY.PEEK[]: nothing is marked, moved or deleted.
 *
 * One session is one connection, used for every command of a poll. Every step has a deadline:
 * connect and login within connect_timeout_ms, each command with its whole response within
 * command_timeout_ms, and the whole session within session_timeout_ms; a server that stalls or
 * sends an endless line is cut off, and the session is then unusable (every later command
 * fails at once). Errors are IPW_EUNAVAIL with a sentence naming the mailbox URL and the user,
 * never the password or the token.
 */
#ifndef IPWARM_IMAP_H
#define IPWARM_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/err.h"

enum imap_tls { IMAP_TLS_REQUIRED = 0, IMAP_TLS_NONE };

struct imap_config {
    const char *url;             /* imaps://HOST[:PORT][/...] or imap://...; the path is not
                                    used here (folders are named to imap_examine) */
    const char *username;        /* the login */
    const char *password;        /* the password itself (imap_password_read) */
    const char *oauth2_token;    /* or an OAuth 2.0 access token (imap_token_read): log in with
                                    AUTHENTICATE XOAUTH2 only, never a password */
    const char *password_source; /* where the password or token came from, for messages
                                    ("$IPWARM_IMAP_PASSWORD" or a file name), or NULL */
    const char *ca_file;         /* CA certificates to trust, or NULL: the system's */
    enum imap_tls tls;           /* none: plain imap:// allowed (STARTTLS not required) */
    int64_t connect_timeout_ms;  /* connect, TLS and login; 0: 30 s */
    int64_t command_timeout_ms;  /* one command and its whole response; 0: 60 s */
    int64_t session_timeout_ms;  /* the whole session; 0: no bound beyond the steps' */
    size_t max_message_bytes;    /* largest part of a message fetched; 0: 4 MiB */
};

struct imap;

/* Message flags (RFC 3501 2.3.2). */
enum {
    IMAP_FLAG_SEEN = 1u << 0,
    IMAP_FLAG_ANSWERED = 1u << 1,
    IMAP_FLAG_FLAGGED = 1u << 2,
    IMAP_FLAG_DELETED = 1u << 3,
    IMAP_FLAG_DRAFT = 1u << 4,
};

/* Mailbox attributes of LIST (RFC 3501 7.2.2, RFC 6154 2). */
enum {
    IMAP_MBOX_NOSELECT = 1u << 0,
    IMAP_MBOX_JUNK = 1u << 1,
    IMAP_MBOX_TRASH = 1u << 2,
    IMAP_MBOX_SENT = 1u << 3,
    IMAP_MBOX_DRAFTS = 1u << 4,
    IMAP_MBOX_ARCHIVE = 1u << 5,
    IMAP_MBOX_ALL = 1u << 6,
    IMAP_MBOX_FLAGGED = 1u << 7,
};

/* What EXAMINE tells of a folder (RFC 3501 6.3.2). */
struct imap_folder {
    uint32_t uidvalidity; /* 0 when the server did not say */
    uint32_t uidnext;     /* 0 when the server did not say */
    uint32_t exists;
};

struct imap_uids {
    uint32_t *uid; /* ascending */
    size_t n;
};

struct imap_message {
    char *data; /* the raw RFC 5322 message, at most max_message_bytes */
    size_t len;
    uint64_t size;  /* RFC822.SIZE: the whole message's size */
    bool truncated; /* size > len */
    unsigned flags; /* IMAP_FLAG_*, as they were (reading changed none) */
};

struct imap_mailbox {
    char *name;      /* as the server spells it (modified UTF-7): give it back to imap_examine */
    char *name_utf8; /* decoded for people */
    unsigned attrs;  /* IMAP_MBOX_* */
    char delimiter;  /* hierarchy delimiter, or 0 */
};

/*
 * Reads a mailbox password from the environment variable env or else from the file (its first
 * line). key names the plan key for messages ("feedback.mailbox.password_env"). Returns IPW_OK
 * with *out malloc'd (free with imap_password_free); IPW_ECONFIG when the variable is unset or
 * empty, or the file cannot be read or is empty; IPW_ENOMEM.
 */
ipw_status imap_password_read(const char *env, const char *file, const char *key, char **out,
                              struct err *e);
/*
 * Reads an OAuth 2.0 bearer access token the same way (the first line of the file, without its
 * line end and trailing blanks; at most 16 KiB), for an XOAUTH2 login. The operator's tooling
 * refreshes it; the file is read at each login. IPW_ECONFIG also for a token with a space or a
 * character that is not printable ASCII. Free it with imap_password_free.
 */
ipw_status imap_token_read(const char *env, const char *file, const char *key, char **out,
                           struct err *e);
/* Wipes and frees a password (or a token). */
void imap_password_free(char *password);

/*
 * Connects, logs in and asks the server's capabilities. Returns IPW_OK with *out set (close it
 * with imap_close); IPW_EUSAGE for a URL that is not imap:// or imaps://; IPW_EUNAVAIL when the
 * server cannot be reached, does not answer in time, fails TLS (certificate, handshake), does
 * not offer STARTTLS while TLS is required, or refuses the login; IPW_ENOMEM.
 */
ipw_status imap_open(const struct imap_config *cfg, struct imap **out, struct err *e);

/* Logs out (briefly) and closes the connection; s may be NULL. */
void imap_close(struct imap *s);

/* "imaps://imap.example.com:993 (user bounces@example.com)": how messages name the mailbox. */
const char *imap_name(const struct imap *s);

/* True when the server announced the capability (e.g. "SPECIAL-USE"), case-insensitive. */
bool imap_has_capability(const struct imap *s, const char *cap);

/*
 * Opens folder (UTF-8; sent in modified UTF-7, RFC 3501 5.1.3) read-only with EXAMINE and
 * fills *info. Returns IPW_OK; IPW_ENOTFOUND when the server refuses it (no such folder);
 * IPW_EUSAGE for a name with CR, LF or NUL; IPW_EUNAVAIL when the connection fails.
 */
ipw_status imap_examine(struct imap *s, const char *folder, struct imap_folder *info,
                        struct err *e);

/* The UIDs greater than after in the examined folder (UID SEARCH UID after+1:*, without the
 * last message that "*" names when nothing is newer). IPW_OK; IPW_EUNAVAIL; IPW_ENOMEM. */
ipw_status imap_uids_after(struct imap *s, uint32_t after, struct imap_uids *out, struct err *e);

/* The UIDs of the messages whose header field contains value (UID SEARCH HEADER, RFC 3501
 * 6.4.4), e.g. ("X-Ipwarm-Id", id). field and value must be printable ASCII (IPW_EUSAGE). */
ipw_status imap_search_header(struct imap *s, const char *field, const char *value,
                              struct imap_uids *out, struct err *e);

void imap_uids_free(struct imap_uids *u);

/* Fetches message uid of the examined folder with BODY.PEEK[] (at most max_message_bytes) and
 * its flags and size. IPW_OK; IPW_ENOTFOUND when there is no such message; IPW_EUNAVAIL. */
ipw_status imap_fetch(struct imap *s, uint32_t uid, struct imap_message *m, struct err *e);
void imap_message_free(struct imap_message *m);

/* The flags of message uid (IMAP_FLAG_*). IPW_OK; IPW_ENOTFOUND; IPW_EUNAVAIL. */
ipw_status imap_flags(struct imap *s, uint32_t uid, unsigned *flags, struct err *e);

/* Every folder with its attributes (LIST "" "*", with RETURN (SPECIAL-USE) where the server
 * supports it). IPW_OK; IPW_EUNAVAIL; IPW_ENOMEM. */
ipw_status imap_list(struct imap *s, struct imap_mailbox **list, size_t *n, struct err *e);
void imap_list_free(struct imap_mailbox *list, size_t n);
/* The first folder marked \Junk (RFC 6154), or NULL. */
const struct imap_mailbox *imap_list_junk(const struct imap_mailbox *list, size_t n);

/* Modified UTF-7 for folder names (RFC 3501 5.1.3): new strings, or NULL when the input is
 * not valid (UTF-8, or modified UTF-7) or memory runs out. */
char *imap_utf7_encode(const char *utf8);
char *imap_utf7_decode(const char *mutf7);

#endif
