/*
 * err: the one status type of ipwarm and the error record that carries a human sentence.
 *
 * Library functions return an ipw_status and, on failure, fill a struct err with a sentence
 * that says where and what. They never print and never exit: only main.c turns a status into
 * a message on stderr and a sysexits(3) code (see cli_exit_code()).
 */
#ifndef IPWARM_ERR_H
#define IPWARM_ERR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum ipw_status {
    IPW_OK = 0,
    IPW_EUSAGE,     /* the caller asked for something that makes no sense (exit 64) */
    IPW_EDATA,      /* bad input data: recipient list, template, reply (exit 65) */
    IPW_ENOINPUT,   /* an input file does not exist or cannot be opened (exit 66) */
    IPW_EUNAVAIL,   /* a needed service is unavailable (exit 69) */
    IPW_ESOFTWARE,  /* an internal error (exit 70) */
    IPW_ENOTIMPL,   /* the command is not implemented yet (exit 70) */
    IPW_ENOMEM,     /* out of memory (exit 71) */
    IPW_ECANTCREAT, /* cannot create a file (exit 73) */
    IPW_EIO,        /* cannot read or write a file (exit 74) */
    IPW_ETEMP,      /* temporary failure: try again later (exit 75) */
    IPW_ELOCKED,    /* another runner holds the state lock (exit 75) */
    IPW_ECONFIG,    /* the plan is invalid (exit 78) */
    IPW_ENOTFOUND,  /* a looked-up thing does not exist (not an error for every caller) */
    IPW_ECHECK,     /* a required pre-flight check failed: check, or run without --force (exit 1) */
} ipw_status;

/* Long enough for a plan refusal that lists many problems, one per line. */
#define ERR_MSG_MAX 8192

struct err {
    ipw_status status;
    char msg[ERR_MSG_MAX];
};

/* Sets e (if not NULL) to status s and the printf-style sentence; returns s. */
ipw_status err_set(struct err *e, ipw_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ipw_status err_vset(struct err *e, ipw_status s, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Appends a line to e->msg (separated by '\n'), keeping e->status unless it is IPW_OK. */
ipw_status err_append(struct err *e, ipw_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Puts the printf-style prefix before e's message and sets e->status to s; returns s. For a
 * caller that adds where to a callee's sentence ("relay x: " + what failed) without a second
 * struct err. What does not fit in ERR_MSG_MAX is cut from the end of the old message. */
ipw_status err_prefix(struct err *e, ipw_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clears e to IPW_OK with an empty message. */
void err_clear(struct err *e);
/* A short lower-case name of the status, e.g. "invalid plan". */
const char *err_status_name(ipw_status s);

#endif
