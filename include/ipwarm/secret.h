/*
 * secret: credentials ipwarm holds (the relay password; any later mailbox password), read from
 * where the plan says, and kept out of everything ipwarm records or prints.
 *
 * A password comes from an environment variable or from the first line of a file, never from
 * the plan. A file that other users may read is worth a warning (the plan loader collects it;
 * the command prints it). And a server may echo what it was sent: a broken or hostile relay that
 * answers "535 5.7.8 AUTH PLAIN AGVtYWlsAHBhc3M= rejected" would otherwise put the credentials
 * into the state file, `trace`, `report` and the pre-flight record, so every reply captured
 * after AUTH goes through secret_mask() first.
 */
#ifndef IPWARM_SECRET_H
#define IPWARM_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#include "ipwarm/err.h"

/* What a masked credential is replaced with (or as many '*' as it had characters, if fewer). */
#define SECRET_MASK "***"

/*
 * Reads a password: from the environment variable env_name when it is not NULL, else from the
 * first line of file (without its line end; the file holds at most 4 KiB and must be a regular
 * file: a FIFO is refused, not waited on). key is the plan key of the file or variable, e.g.
 * "transport.relay.password_file", for the sentences. Returns IPW_OK with *out (free it with
 * secret_free); IPW_ECONFIG when the variable is not set or empty; IPW_ENOINPUT when the file
 * cannot be opened or is not a regular file; IPW_EIO; IPW_EDATA when it is larger than 4 KiB or
 * its first line is empty; IPW_ENOMEM. The password never appears in a sentence.
 */
ipw_status secret_password_read(const char *env_name, const char *file, const char *key, char **out,
                                struct err *e);

/* Wipes and frees a password from secret_password_read (NULL is fine). */
void secret_free(char *password);

/*
 * A warning when the file path (a password file, named by the plan key key) may be read or
 * written by users other than its owner and group: "transport.relay.password_file:
 * /etc/ipwarm/relay.pw is readable by every user (mode 0644): chmod 0600 it (or 0640 with the
 * sending user's group)". Returns true with the sentence in warn (n bytes) when there is
 * something to say; false (warn "") when the mode is fine or the file cannot be examined (its
 * reader says why).
 */
bool secret_file_warning(const char *path, const char *key, char *warn, size_t n);

/*
 * Masks credentials in text (NUL-terminated, changed in place; it never grows): the argument
 * of an "AUTH <mechanism> <argument>" echo (PLAIN, LOGIN, CRAM-MD5 or any other mechanism), any
 * base64 token that decodes to bytes holding the username or the password (an AUTH PLAIN
 * blob, an AUTH LOGIN answer), and the password in clear. Each is replaced by SECRET_MASK.
 * username and password may be NULL or "" (then not looked for). Returns how many spans were
 * masked. A pure function: the reply text in, the text out.
 */
size_t secret_mask(char *text, const char *username, const char *password);

#endif
