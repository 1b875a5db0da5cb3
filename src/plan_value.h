/*
 * plan_value: what the files of the plan loader share: the walk's context, problems, key
 * paths and typed readers of plan_value.c and the string validators of plan_valid.c, which plan.c
 * and the sections kept in files of their own (plan_sections.c, plan_rules.c, plan_feedback.c, ...)
 * build on. Not a public interface: only src/plan*.c include it. The section files' own entry
 * points are in their headers (plan_sections.h, plan_rules.h, plan_feedback.h), so that the
 * dependencies run one way: sections -> plan_value, plan -> sections.
 *
 * A section walker receives the context of the walk (struct plan_ctx), reads the YAML nodes
 * with plan_get(), checks values with the typed readers (plan_str, plan_duration, ...), which
 * report a problem themselves and return false, and reports other problems with plan_fail().
 * Every problem is one line FILE:LINE:COLUMN: key.path: expected ..., found ... (plan.h).
 */
#ifndef IPWARM_PLAN_VALUE_H
#define IPWARM_PLAN_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/plan.h"
#include "ipwarm/plan_yaml.h"

#define PLAN_PATH_MAX  256 /* bytes of a key path in a message */
#define PLAN_MAX_SHOWN 50  /* problem lines printed; the rest are counted */
#define PLAN_MAX_KEPT  200 /* problem lines kept in memory for sorting */
#define PLAN_ZONEINFO  "/usr/share/zoneinfo"
#define PLAN_SHOW_MAX  60 /* bytes of a value quoted in a message */

typedef struct plan_yaml_node plan_node;

struct plan_problem {
    int rank; /* 0: the plan, 1: the provider table; the plan's own problems print first */
    int line;
    int column;
    size_t seq; /* keeps the walk order among problems at one position */
    char *text;
};

struct plan_ctx {
    struct plan *p;
    const char *file; /* label of the file being walked: the plan path as given, or the table */
    int rank;
    const char *dir; /* relative file names are resolved against it */
    struct plan_problem *problems;
    size_t n_problems;
    size_t cap_problems;
    size_t n_total;
    bool oom;
};

/* Memory: a failed allocation sets c->oom and returns NULL. */
void *plan_alloc(struct plan_ctx *c, size_t size);
char *plan_strndup(struct plan_ctx *c, const char *s, size_t n);
char *plan_strdup(struct plan_ctx *c, const char *s);
void plan_strv_free(char **v, size_t n);

/* A value quoted for a message (controls escaped, long values cut). */
const char *plan_show(const plan_node *v, char *buf, size_t size);
#define PLAN_SHOW(v) plan_show((v), (char[PLAN_SHOW_MAX * 4 + 16]){0}, PLAN_SHOW_MAX * 4 + 16)

/* Records one problem at node at (NULL: line 1) under the key path. */
void plan_fail(struct plan_ctx *c, const plan_node *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Key paths: buf (PLAN_PATH_MAX bytes) = parent.key, or parent[i]. buf may be parent. */
void plan_path(char *buf, const char *parent, const char *key);
void plan_path_index(char *buf, const char *parent, size_t i);

/* Mappings: plan_get() is the value of key name in m, or NULL (plan_get2 also gives the key
 * node). plan_mapping() reports v when it is not a mapping, and unknown or duplicate keys. */
bool plan_key_is(const plan_node *k, const char *name);
const plan_node *plan_get2(const plan_node *m, const char *name, const plan_node **key_out);
const plan_node *plan_get(const plan_node *m, const char *name);
bool plan_mapping(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
                  const char *const *known);
const char *plan_nearest(const char *s, size_t len, const char *const *known);

/* Typed readers: each reports a problem and returns false when v does not fit. */
bool plan_scalar(struct plan_ctx *c, const plan_node *v, const char *path, const char *what);
bool plan_clean(struct plan_ctx *c, const plan_node *v, const char *path, bool multiline);
bool plan_str(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
              char **out);
bool plan_int(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
              int64_t min, int64_t max, int64_t *out);
bool plan_number(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
                 double lo, bool lo_open, double hi, bool hi_open, double *out);
bool plan_bool(struct plan_ctx *c, const plan_node *v, const char *path, bool *out);
bool plan_enum(struct plan_ctx *c, const plan_node *v, const char *path, const char *const *names,
               int *out);
bool plan_rate(struct plan_ctx *c, const plan_node *v, const char *path, double *out);
bool plan_duration(struct plan_ctx *c, const plan_node *v, const char *path, bool positive,
                   int64_t *out);
bool plan_percent(struct plan_ctx *c, const plan_node *v, const char *path, double *out);
bool plan_items(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
                plan_node *const **items, size_t *n);
/* A file name resolved against the plan's directory; readable: it must exist now. */
bool plan_file(struct plan_ctx *c, const plan_node *v, const char *path, bool readable, char **out);
/* Records a warning when the secret file path (plan key key) may be read by other users. */
void plan_warn_secret_file(struct plan_ctx *c, const char *path, const char *key);
/* An addr-spec, written bare or as <addr-spec>. */
bool plan_addr(struct plan_ctx *c, const plan_node *v, const char *path, char **out);

/* Validators of plain strings (plan_valid.c). */
bool plan_ip_valid(const char *s);
bool plan_domain_valid(const char *s, size_t len, int min_labels, bool alpha_tld);
bool plan_addr_spec_valid(const char *s, size_t len);
bool plan_env_name_valid(const char *s, size_t len);
bool plan_port_text_valid(const char *s, size_t len);
bool plan_host_valid(const char *s, size_t len);
/* The HOST[:PORT] of a URL, s[0..len): a host as plan_host_valid takes it ("[v6]" for an IPv6
 * literal) and an optional port 1-65535; *host_len is the length of the HOST part. */
bool plan_authority_valid(const char *s, size_t len, size_t *host_len);

/* Used by plan.c, plan_sections.c and plan_rules.c (the ones above serve every section file). */
/* Joins two strings with a separator into a new string. */
char *plan_concat(struct plan_ctx *c, const char *a, const char *sep, const char *b);
/* plan_fail for a node of another file (the provider table) or rank. */
void plan_fail_in(struct plan_ctx *c, const char *file, int rank, const plan_node *at,
                  const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Records a problem whose text is already made (text is taken over; NULL: out of memory). */
void plan_note(struct plan_ctx *c, int rank, int line, int column, char *text);
/* Moves the collected problems into e, in file order, and frees them. */
ipw_status plan_report(struct plan_ctx *c, struct err *e);
/* Writes parent, sep (only when parent is not empty) and len bytes of tail into buf, cut at
 * PLAN_PATH_MAX; bytes that would break the message's single line become '?'. */
void plan_path_join(char *buf, const char *parent, const char *sep, const char *tail, size_t len);
/* Moves *s and *len past leading and trailing blanks. */
void plan_trim(const char **s, size_t *len);
/* Splits "Display Name <addr-spec>", "<addr-spec>" or a bare addr-spec into a display name
 * (unquoted, NULL if none) and the address; false when it is none of these. */
bool plan_mailbox_split(struct plan_ctx *c, const char *s, size_t len, char **name, char **addr);
/* An IANA zone name that is a file under the zoneinfo tree ($TZDIR honoured). */
bool plan_timezone_valid(const char *name, size_t len);
/* smtp://HOST[:PORT][/] or smtps://...; *why says what is wrong. */
bool plan_url_valid(const char *s, const char **why);
/* A domain name and an IP address, each reported when it does not fit. */
bool plan_domain(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
                 char **out);
bool plan_ip(struct plan_ctx *c, const plan_node *v, const char *path, char **out);
/* Collects a list of strings (or one string when single) with check() judging each item. */
bool plan_strv(struct plan_ctx *c, const plan_node *v, const char *path, const char *what,
               bool single, bool (*check)(const char *, size_t), bool lower, char ***out,
               size_t *n_out);
/* Checks for plan_strv: a domain, an IP address, a provider name, an MX suffix. */
bool plan_check_domain(const char *s, size_t len);
bool plan_check_ip(const char *s, size_t len);
bool plan_check_provider_name(const char *s, size_t len);
bool plan_check_mx_suffix(const char *s, size_t len);

#endif
