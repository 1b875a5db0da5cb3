/*
 * err: status values and human error sentences (see err.h).
 */
#include "ipwarm/err.h"

#include <stdio.h>
#include <string.h>

ipw_status err_vset(struct err *e, ipw_status s, const char *fmt, va_list ap)
{
    if (e) {
        e->status = s;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    }
    return s;
}

ipw_status err_set(struct err *e, ipw_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, s, fmt, ap);
    va_end(ap);
    return s;
}

ipw_status err_append(struct err *e, ipw_status s, const char *fmt, ...)
{
    if (!e)
        return s;
    size_t len = strnlen(e->msg, sizeof e->msg);
    if (e->status == IPW_OK) {
        e->status = s;
        len = 0;
        e->msg[0] = '\0';
    }
    if (len > 0 && len + 1 < sizeof e->msg)
        e->msg[len++] = '\n';
    if (len < sizeof e->msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg + len, sizeof e->msg - len, fmt, ap);
        va_end(ap);
    }
    return e->status;
}

ipw_status err_prefix(struct err *e, ipw_status s, const char *fmt, ...)
{
    if (!e)
        return s;
    /* Formatted apart first: an argument may point into e->msg itself. */
    char pre[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    size_t pl = n < 0 ? 0 : (size_t)n < sizeof pre ? (size_t)n : sizeof pre - 1;
    size_t ml = strnlen(e->msg, sizeof e->msg - 1);
    if (ml > sizeof e->msg - 1 - pl)
        ml = sizeof e->msg - 1 - pl;
    memmove(e->msg + pl, e->msg, ml);
    memcpy(e->msg, pre, pl);
    e->msg[pl + ml] = '\0';
    e->status = s;
    return s;
}

void err_clear(struct err *e)
{
    if (e) {
        e->status = IPW_OK;
        e->msg[0] = '\0';
    }
}

const char *err_status_name(ipw_status s)
{
    switch (s) {
    case IPW_OK:
        return "ok";
    case IPW_EUSAGE:
        return "usage error";
    case IPW_EDATA:
        return "bad input data";
    case IPW_ENOINPUT:
        return "cannot open input";
    case IPW_EUNAVAIL:
        return "service unavailable";
    case IPW_ESOFTWARE:
        return "internal error";
    case IPW_ENOTIMPL:
        return "not implemented yet";
    case IPW_ENOMEM:
        return "out of memory";
    case IPW_ECANTCREAT:
        return "cannot create file";
    case IPW_EIO:
        return "input/output error";
    case IPW_ETEMP:
        return "temporary failure";
    case IPW_ELOCKED:
        return "locked by another run";
    case IPW_ECONFIG:
        return "invalid plan";
    case IPW_ENOTFOUND:
        return "not found";
    case IPW_ECHECK:
        return "a required check failed";
    }
    return "unknown status";
}
