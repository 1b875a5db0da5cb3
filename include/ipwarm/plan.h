/*
 * plan: the warm-up plan, loaded from YAML (libyaml) into one validated struct.
 *
 * The contract is docs/plan.md (and ipwarm-plan(5), the same reference as a manual page).
 * A plan that is not valid is refused as a whole: plan_load() returns IPW_ECONFIG and e->msg
 * holds one line per problem, each
 *     FILE:LINE:COLUMN: key.path: expected ..., found ...
 * Nothing of a refused plan is returned. Relative file names in the plan are resolved against
 * the plan's directory, so every path in a loaded struct plan is absolute.
 *
 * The shipped provider table and reply rules (config/providers.yaml, compiled into the binary)
 * are merged in: a plan provider with a shipped provider's name overrides the keys it gives,
 * new names are added, and plan rules are added to the shipped rules.
 */
#ifndef IPWARM_PLAN_H
#define IPWARM_PLAN_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipwarm/dns.h"
#include "ipwarm/err.h"

/* Where a value came from, for messages that later modules write about it. */
struct plan_pos {
    const char *file; /* the plan path, or "providers.yaml (shipped)"; owned by struct plan */
    int line;         /* 1-based */
    int column;       /* 1-based */
};

enum plan_transport_mode { PLAN_DIRECT = 0, PLAN_RELAY };
enum plan_tls { PLAN_TLS_OPPORTUNISTIC = 0, PLAN_TLS_REQUIRED };
/* TLS versions as 10 * major.minor: 10 = "1.0" ... 13 = "1.3". */
enum plan_tls_version {
    PLAN_TLS_1_0 = 10,
    PLAN_TLS_1_1 = 11,
    PLAN_TLS_1_2 = 12,
    PLAN_TLS_1_3 = 13
};
enum plan_recipients_mode { PLAN_RCPT_ONCE = 0, PLAN_RCPT_CYCLE };
enum plan_rule_action { PLAN_ACTION_THROTTLE = 0, PLAN_ACTION_SUSPEND, PLAN_ACTION_BOUNCE };

/* Bits of struct plan_ramp.set: which keys were written (for provider overrides). */
enum {
    PLAN_RAMP_START = 1u << 0,
    PLAN_RAMP_GROWTH = 1u << 1,
    PLAN_RAMP_MAX = 1u << 2,
    PLAN_RAMP_DAILY_CAP = 1u << 3,
    PLAN_RAMP_DEFERRAL_BELOW = 1u << 4,
    PLAN_RAMP_BOUNCE_BELOW = 1u << 5,
    PLAN_RAMP_COMPLAINT_BELOW = 1u << 6,
    PLAN_RAMP_INBOX_ABOVE = 1u << 7,
};

struct plan_ramp {
    double start_per_min; /* > 0; default 5/min */
    double growth;        /* >= 1; default 1.5 */
    double max_per_min;   /* >= start; default 600/min */
    int64_t *daily_cap;   /* per sending day, the last repeats; NULL/0 entries = no cap */
    size_t n_daily_cap;
    double deferral_below_pct;  /* advance_if.deferral_rate_below, 0..100; default 5 */
    double bounce_below_pct;    /* advance_if.bounce_rate_below, 0..100; default 2 */
    double complaint_below_pct; /* advance_if.complaint_rate_below, 0..100, when complaint_gate */
    bool complaint_gate;        /* complaint_rate_below was given (default: no such gate) */
    double inbox_above_pct;     /* advance_if.inbox_rate_above, 0..100, when inbox_gate */
    bool inbox_gate;            /* inbox_rate_above was given (default: no such gate) */
    unsigned set; /* PLAN_RAMP_* bits given in the file; for a provider's effective ramp, the
                     keys its own entries (plan or shipped table) override */
};

struct plan_provider {
    char *name;
    char **mx; /* MX host suffixes, lower case, each starting with '.', e.g. ".google.com" */
    size_t n_mx;
    char **domains; /* recipient domains, lower case, e.g. "gmail.com" */
    size_t n_domains;
    bool is_default;
    struct plan_ramp ramp; /* effective: the plan's ramp with this provider's keys over it */
    bool from_plan;        /* false: only the shipped table defines it */
    struct plan_pos pos;
};

struct plan_rule {
    char *name;       /* optional label, else NULL */
    char **providers; /* applies to these providers only; none = every provider */
    size_t n_providers;
    char *match;      /* the POSIX extended regex source, matched case-insensitively */
    regex_t re;       /* compiled (REG_EXTENDED | REG_ICASE | REG_NOSUB) */
    bool re_compiled; /* re holds a compiled regex (plan_free calls regfree only then) */
    enum plan_rule_action action;
    double rate_per_min; /* throttle: the rate to hold (default 1/min) */
    int64_t for_ms;      /* how long the action lasts; default 1h */
    int trigger_count;   /* 1 with period 0 = "immediately" */
    int64_t trigger_period_ms;
    bool from_plan;
    struct plan_pos pos;
};

struct plan_backoff {
    double factor;                /* deferral.factor, 0 < f < 1; default 0.5 */
    int64_t pause_ms;             /* deferral.pause; default 15m */
    int64_t pause_max_ms;         /* deferral.max_pause; default 4h */
    int64_t recover_after_ms;     /* deferral.recover_after; default 30m */
    double recover_step_pct;      /* deferral.recover_step, 0 < p <= 100; default 25 */
    int64_t retry_first_ms;       /* retry.first; default 5m */
    int64_t retry_max_ms;         /* retry.max; default 4h */
    int64_t retry_give_up_ms;     /* retry.give_up_after; default 3d */
    int64_t blocked_pause_ms;     /* blocked.pause: the receiver refuses us; default 1h */
    int64_t blocked_pause_max_ms; /* blocked.max_pause: it doubles up to this; default 24h */
};

struct plan_window {
    int start_min; /* minutes after local midnight, 0..1439 */
    int end_min;   /* 1..1440; end < start means the window crosses midnight */
};

struct plan_schedule {
    unsigned days;               /* bit 0 = Monday ... bit 6 = Sunday; default all seven */
    struct plan_window *windows; /* default one window 00:00-24:00 */
    size_t n_windows;
};

/* Bits of struct plan_preflight.require. */
enum {
    PLAN_CHECK_SPF = 1u << 0,
    PLAN_CHECK_PTR = 1u << 1,
    PLAN_CHECK_HELO = 1u << 2,
    PLAN_CHECK_MX = 1u << 3,
    PLAN_CHECK_DNSBL = 1u << 4,
    PLAN_CHECK_DKIM = 1u << 5,
    PLAN_CHECK_DMARC = 1u << 6,
    PLAN_CHECK_SMTP = 1u << 7,
    PLAN_CHECK_TLS = 1u << 8,
    PLAN_CHECK_AUTH = 1u << 9,
    PLAN_CHECK_SIZE = 1u << 10,
};

/* How a mailbox read over IMAP protects its connection: required (imaps://, or STARTTLS on
 * imap://), or none (plain IMAP; refused for a host that is not on this machine). */
enum plan_mailbox_tls { PLAN_MAILBOX_TLS_REQUIRED = 0, PLAN_MAILBOX_TLS_NONE };

/* A mailbox ipwarm reads over IMAP: feedback.mailbox, or a seed. */
struct plan_mailbox {
    char *url;               /* imaps://HOST[:PORT][/FOLDER] or imap://...; as written */
    char *folder;            /* the URL's folder, percent-decoded; NULL when the URL names none */
    char *username;          /* the IMAP login */
    char *password_env;      /* name of the environment variable holding the password, or NULL */
    char *password_file;     /* absolute path of a file holding it, or NULL */
    char *oauth2_token_env;  /* or: the environment variable holding an OAuth 2.0 access token
                                (XOAUTH2 login), or NULL */
    char *oauth2_token_file; /* absolute path of a file holding the token, or NULL (exactly one
                                of the four is set) */
    char *ca_file;           /* absolute path of CA certificates to trust, or NULL: the system's */
    enum plan_mailbox_tls tls; /* default required */
    struct plan_pos pos;       /* where the mailbox mapping starts */
};

/* feedback.complaints.action */
enum plan_complaint_action { PLAN_COMPLAINT_SUSPEND = 0, PLAN_COMPLAINT_THROTTLE };

struct plan_feedback {
    bool enabled;                    /* the plan has a feedback section (mailbox.url is set) */
    struct plan_mailbox mailbox;     /* where bounces and complaint reports arrive */
    bool verp;                       /* return path LOCAL+TOKEN@domain (verp.h); default false */
    int64_t poll_every_ms;           /* default 5m, at least 1m */
    double complaint_rate_above_pct; /* complaints.rate_above, 0..100; default 0.3 */
    int64_t complaint_min_delivered; /* complaints.min_delivered; default 300 */
    enum plan_complaint_action complaint_action; /* default suspend */
    double complaint_rate_per_min;               /* complaints.rate, with throttle; default 1/min */
    int64_t complaint_for_ms;                    /* complaints.for; default 24h */
    char *feedback_id; /* Feedback-ID header template ({{campaign}}, {{ip}}, {{provider}}), or
                          NULL: no header */
};

/* A seed: a mailbox of the operator's at a provider, to see where the copies sent to it land. */
struct plan_seed {
    char *address;               /* the seed's address, an addr-spec, as sent to */
    struct plan_mailbox mailbox; /* how to read it */
    char *inbox;                 /* folders.inbox; default "INBOX" */
    char *junk; /* folders.junk, or NULL: the provider's usual name or the \Junk special-use
                   folder (RFC 6154), found at poll time */
};

/* placement.fall: a day whose seed copies reach the inbox at under half of the provider's
 * advance_if.inbox_rate_above throttles the provider (placement.h). */
struct plan_placement {
    int64_t
        fall_min_placed; /* fall.min_placed: copies placed that day before it counts; default 5 */
    int64_t fall_for_ms; /* fall.for: how long the throttle lasts; default 24h */
};

struct plan {
    char *path;           /* absolute path of the plan file */
    char *dir;            /* its directory */
    char *name;           /* the plan path as given to plan_load: FILE in messages, plan_pos.file */
    char *providers_name; /* plan_pos.file of table entries: "providers.yaml (shipped)" or the
                             absolute path of providers_file */

    char *campaign;
    char *timezone; /* IANA name checked against /usr/share/zoneinfo; default "UTC" */
    char *state;    /* absolute path of the SQLite file; default ipwarm.db beside the plan */

    char **source_ips; /* source.ip, or source.ips (a pool); at least one */
    size_t n_source_ips;
    /* source.start: parallel to source_ips, the local date "YYYY-MM-DD" on which each IP joins
     * the pool, NULL for an IP that sends from the start; the array is NULL without the key. */
    char **source_start_dates;
    char *helo; /* source.helo: a domain name */

    char *from;        /* sender.from as written, e.g. "Example <news@example.com>" */
    char *from_name;   /* its display name (NULL if none), quotes removed */
    char *from_addr;   /* its addr-spec, e.g. "news@example.com" */
    char *return_path; /* addr-spec (written bare or as <addr-spec>); default from_addr */
    bool dkim;         /* sender.dkim given */
    char *dkim_domain;
    char *dkim_selector;
    char *dkim_key_file; /* absolute path */

    enum plan_transport_mode mode;
    int port;                      /* direct mode MX port; default 25 */
    enum plan_tls tls;             /* default opportunistic */
    enum plan_tls_version tls_min; /* default 1.2 */
    char *relay_url;               /* relay mode: smtp:// or smtps:// URL */
    char *relay_host;              /* its host (no brackets), port and TLS, read from the URL */
    int relay_port;                /* 587 for smtp://, 465 for smtps:// unless given */
    bool relay_implicit_tls;       /* smtps://: TLS from the start; else STARTTLS */
    char *relay_username;
    char *relay_password_env;     /* name of the environment variable holding the password */
    char *relay_password_file;    /* absolute path of a file holding it */
    char *relay_ca_file;          /* absolute path, or NULL */
    int64_t connect_timeout_ms;   /* transport.timeouts.connect; default 30s */
    int64_t command_timeout_ms;   /* transport.timeouts.command; default 5m */
    int connections_per_provider; /* default 2 */

    char *subject;
    char *text_file;        /* absolute path; message.text_file (required unless message.text) */
    char *text;             /* message.text inline body, or NULL */
    char *html_file;        /* absolute path, or NULL */
    char *list_unsubscribe; /* https URI template, or NULL */
    char *list_unsubscribe_mailto; /* an addr-spec (a leading "mailto:" is removed), or NULL */

    char *recipients_file;                     /* absolute path */
    enum plan_recipients_mode recipients_mode; /* default once */
    char *recipients_column;                   /* CSV column with the address; default "email" */

    struct plan_schedule schedule;
    struct plan_ramp ramp; /* the plan-wide ramp with defaults filled in */

    struct plan_provider *providers; /* plan providers in file order, then shipped ones */
    size_t n_providers;
    size_t default_provider; /* index of the default provider in providers[] */

    struct plan_backoff backoff;
    struct plan_rule *rules; /* shipped rules first, then the plan's, in file order */
    size_t n_rules;

    unsigned preflight_require; /* PLAN_CHECK_* bits; default spf|ptr|helo|mx|dnsbl */
    char **dnsbl_zones; /* default zen.spamhaus.org, bl.spamcop.net, b.barracudacentral.org */
    size_t n_dnsbl_zones;

    struct dns_server *dns_servers; /* empty: /etc/resolv.conf */
    size_t n_dns_servers;
    int64_t dns_timeout_ms; /* dns.timeout; default 5s */

    char *providers_source; /* "shipped" or the absolute path of providers_file */

    /* Sentences about a valid plan that its user should still hear of (a password file other
     * users may read); the command that loaded the plan prints them (cli_load_plan). */
    char **warnings;
    size_t n_warnings;
    struct plan_feedback feedback; /* feedback.enabled is false without a feedback section */
    struct plan_seed *seeds;       /* in file order; none without a seeds section */
    size_t n_seeds;
    struct plan_placement placement; /* defaults filled in without a placement section */
};

/*
 * Loads and validates the plan at path. On success *out is a new plan (free with plan_free).
 * Returns IPW_OK; IPW_ENOINPUT when the plan file cannot be read (sentence names the path and
 * the reason); IPW_ECONFIG when the plan is invalid (one line per problem, see above);
 * IPW_ENOMEM.
 */
ipw_status plan_load(const char *path, struct plan **out, struct err *e);

/* Like plan_load, from text in memory; name stands in for the path in messages and base_dir
 * resolves relative file names. Used by tests and the fuzzer. */
ipw_status plan_load_text(const char *text, size_t len, const char *name, const char *base_dir,
                          struct plan **out, struct err *e);

void plan_free(struct plan *p);

/* The local date ("YYYY-MM-DD") source.start gives ip, before which it sends nothing, or NULL
 * (it sends from the start). */
const char *plan_source_start(const struct plan *p, const char *ip);

/* Index of the provider called name, or -1. */
int plan_provider_find(const struct plan *p, const char *name);

/* The name of a preflight check bit ("spf"), or NULL. */
const char *plan_check_name(unsigned bit);

/* Shipped text compiled into the binary (cmake/embed.cmake). */
extern const char embedded_providers_yaml[];
extern const size_t embedded_providers_yaml_len;
extern const char embedded_example_plan[];
extern const size_t embedded_example_plan_len;
extern const char embedded_example_message[];
extern const size_t embedded_example_message_len;
extern const char embedded_example_seeds[];
extern const size_t embedded_example_seeds_len;

#endif
