/*
 * preflight_report: the report the pre-flight checks fill (see preflight.h): a list of checks,
 * each pass / warn / fail / skip with a detail sentence, for a problem the fix and the shell
 * look-up that shows it, required when the plan's preflight.require names it; and its JSON.
 */
#ifndef IPWARM_PREFLIGHT_REPORT_H
#define IPWARM_PREFLIGHT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/dns.h"
#include "ipwarm/err.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"

enum preflight_status { PREFLIGHT_PASS = 0, PREFLIGHT_WARN, PREFLIGHT_FAIL, PREFLIGHT_SKIP };

/* "pass", "warn", "fail", "skip". */
const char *preflight_status_name(enum preflight_status s);

struct preflight_check {
    const char *name; /* "spf", "ptr", ... "size" (static) */
    enum preflight_status status;
    bool required;
    char *subject; /* what it is about: a source IP, a domain, a provider; or NULL */
    char *ip;      /* the source IP it is about (its subject starts with it), or NULL */
    char *detail;  /* one sentence (several for mx: the domains that cannot receive) */
    char *fix;     /* warn/fail: what to do, one sentence; else NULL */
    char *lookup;  /* the shell command that shows the problem (dig +short TXT ...), or NULL */
};

struct preflight_report {
    struct preflight_check *checks;
    size_t n_checks, cap;
    bool ok;                  /* no required check failed (set by preflight_report_finish) */
    unsigned required_failed; /* how many */
};

void preflight_report_init(struct preflight_report *r);
void preflight_report_clear(struct preflight_report *r);

/*
 * Appends a check; required comes from p->preflight_require (p may be NULL: not required).
 * subject, fix and lookup may be NULL; detail is printf-style. Returns IPW_OK or IPW_ENOMEM.
 */
ipw_status preflight_add(struct preflight_report *r, const struct plan *p, const char *name,
                         enum preflight_status status, const char *subject, const char *fix,
                         const char *lookup, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* The distinct source IPs the checks are about (preflight_check.ip), in the order they first
 * appear: up to max of them into out (pointers into r); returns how many there are. */
size_t preflight_report_ips(const struct preflight_report *r, const char **out, size_t max);
/* Whether no required check about ip failed; the names of its failed and of its warned checks,
 * comma-separated, into failed and warned (either may be NULL with size 0). */
bool preflight_report_ip(const struct preflight_report *r, const char *ip, char *failed,
                         size_t failed_n, char *warned, size_t warned_n);

/* Sets r->ok and r->required_failed from the checks. */
void preflight_report_finish(struct preflight_report *r);

/* Writes the `check --json` document: {"ok", "checks": [{"name", "status", "required",
 * "detail", "subject", "fix", "lookup", "ip"}], "ips": [{"ip", "ok", "failed": [names],
 * "warned": [names]}]}. */
void preflight_report_json(const struct preflight_report *r, struct json *j);
/* The same document as a compact malloc'd string (for the store), or NULL on IPW_ENOMEM. */
char *preflight_report_json_string(const struct preflight_report *r);

/* In a check function (with struct err *e in scope): returns from it when expr, usually a
 * preflight_add, failed, giving out of memory its sentence. */
#define PREFLIGHT_TRY(expr)                                                                        \
    do {                                                                                           \
        ipw_status preflight_try_s_ = (expr);                                                      \
        if (preflight_try_s_ != IPW_OK)                                                            \
            return preflight_try_s_ == IPW_ENOMEM                                                  \
                       ? err_set(e, IPW_ENOMEM, "preflight: out of memory")                        \
                       : preflight_try_s_;                                                         \
    } while (0)

#endif
