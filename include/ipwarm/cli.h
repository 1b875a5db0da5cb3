/*
 * cli: the command line of ipwarm (docs/cli.md is the contract).
 *
 *     ipwarm [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]
 *
 * One table (cli_commands[] in cli_help.c) describes every command: its name, a summary for
 * `ipwarm --help`, a description, its options with the kind of value each takes, how many
 * arguments it accepts, and the function that runs it. The parser reads global options
 * before or after the command, the command's own options (`--opt value` and `--opt=value`),
 * checks every value against its kind, required options and argument counts, and only then
 * calls the command; a command whose run pointer is still NULL answers "not implemented yet"
 * (exit 70) after its options parsed. So adding a command is filling one table entry, and
 * implementing one is writing its cmd_<name>() (cmd.h) and pointing the entry at it.
 *
 * Nothing here prints an error: parsing fills a struct err and main.c prints it and exits
 * with cli_exit_code(), the one map from ipw_status to sysexits(3).
 */
#ifndef IPWARM_CLI_H
#define IPWARM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ipwarm/dns.h"
#include "ipwarm/err.h"
#include "ipwarm/plan.h"
#include "ipwarm/store.h"

/* The global options, parsed; shared by every command. Strings point into argv. */
struct cli_ctx {
    const char *plan_path;  /* -p/--plan, else $IPWARM_PLAN, else "ipwarm.yaml" */
    bool plan_given;        /* the path came from -p or $IPWARM_PLAN, not the default */
    const char *db_path;    /* --db, or NULL: the plan's `state` */
    struct dns_server *dns; /* --dns, in order given (hosts allocated); NULL if none */
    size_t n_dns;
    int64_t dns_timeout_ms; /* --dns-timeout, or -1: the plan's dns.timeout */
    bool has_now;           /* --now given; also set as the clock override by main */
    int64_t now_ms;
    bool json;     /* --json: one JSON document on stdout */
    int verbosity; /* 0 normal; -1 per -q, +1 per -v */
    FILE *out;     /* results: stdout */
    FILE *diag;    /* informational lines: stderr */
};

/* What kind of value an option takes; the parser refuses a value of the wrong kind. */
enum cli_value_kind {
    CLI_FLAG = 0, /* no value */
    CLI_STRING,   /* any text, even empty */
    CLI_NONEMPTY, /* any text but "" */
    CLI_IP,       /* an IPv4 or IPv6 address literal */
    CLI_DOMAIN,   /* a DNS name: letters, digits, '-', '_', '.' */
    CLI_DURATION, /* units_parse_duration(), more than 0: "30s", "2h", "3d" */
    CLI_TIME,     /* clock_parse_rfc3339() */
    CLI_CHOICE,   /* one of the '|'-separated words in choices */
    CLI_INT,      /* a decimal integer from min to max */
};

struct cli_option {
    const char *name;  /* long name without "--", e.g. "ip" */
    char short_name;   /* e.g. 'o' for -o, or 0 */
    const char *value; /* the value's placeholder in help ("IP"), NULL for a flag */
    enum cli_value_kind kind;
    const char *choices; /* CLI_CHOICE: "hour|day" */
    long min, max;       /* CLI_INT bounds */
    bool required;
    bool repeatable;      /* may be given more than once; else the last one counts */
    const char *excludes; /* the long name of an option that may not be given with this one */
    const char *help;     /* one line for --help and ipwarm(1) */
};

struct cli_args;

struct cli_command {
    const char *name;             /* "validate"; two words for a subcommand: "dkim keygen" */
    const char *args;             /* the arguments in usage, e.g. "[FILE]", "DOMAIN...", or NULL */
    int min_args, max_args;       /* argument counts; max_args -1: no limit */
    enum cli_value_kind arg_kind; /* what each argument must be; CLI_FLAG: anything non-empty */
    const char *summary;          /* one line for `ipwarm --help` */
    const char *description;      /* a few sentences for `ipwarm COMMAND --help` */
    const struct cli_option *options; /* ends with an entry whose name is NULL */
    /* Runs the command; NULL: not implemented yet. Returns IPW_OK or a status with e set. */
    ipw_status (*run)(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);
};

/* The table, in the order `ipwarm --help` lists it; ends with an entry whose name is NULL. */
extern const struct cli_command cli_commands[];
/* The global options (help and value kinds); ends with an entry whose name is NULL. */
extern const struct cli_option cli_global_options[];

enum cli_action {
    CLI_RUN = 0, /* run args.cmd */
    CLI_HELP,    /* print help of args.cmd (or the global help if cmd is NULL) on stdout */
    CLI_VERSION, /* print the version */
};

struct cli_value {
    const struct cli_option *opt;
    const char *value; /* NULL for a flag */
};

/* One command line, parsed. Values point into argv. */
struct cli_args {
    enum cli_action action;
    const struct cli_command *cmd; /* NULL when no command was given */
    struct cli_value *values;      /* the command's options in the order given */
    size_t n_values;
    char **argv; /* the command's arguments (not options), NULL-terminated */
    int argc;
    bool show_usage; /* on a parse error: main should print the usage to stderr too */
};

/* Sets ctx to the defaults (reads $IPWARM_PLAN) and args to empty. */
void cli_ctx_init(struct cli_ctx *ctx);
void cli_ctx_free(struct cli_ctx *ctx);
void cli_args_free(struct cli_args *args);

/*
 * Parses argv into ctx and args. Returns IPW_OK (then see args->action); IPW_EUSAGE with a
 * sentence for an unknown option or command, a missing or bad value, a missing required
 * option or a wrong number of arguments; IPW_ENOMEM. With --help anywhere, value errors
 * are not reported: help wins so that `ipwarm stats --help` always works.
 */
ipw_status cli_parse(struct cli_ctx *ctx, struct cli_args *args, int argc, char **argv,
                     struct err *e);

/* Runs args->cmd, or returns IPW_ENOTIMPL ("COMMAND: not implemented yet") if it has no run
 * function yet. */
ipw_status cli_run(struct cli_ctx *ctx, const struct cli_args *args, struct err *e);

/* The help of cmd, or the global help if cmd is NULL, written to f. */
void cli_help(FILE *f, const struct cli_command *cmd);
/* "ipwarm 0.1.0" and the versions of the libraries linked in, written to f. */
void cli_version(FILE *f);

/* The command called name ("validate", "dkim keygen"), or NULL. */
const struct cli_command *cli_command_find(const char *name);

/* The sysexits(3) code of a status; the one place where statuses become exit codes. */
int cli_exit_code(ipw_status s);

/* Accessors for a command's options, by long name. */
/* True if the option was given. */
bool cli_args_has(const struct cli_args *a, const char *name);
/* The value of the option (the last one given), or NULL if it was not given. */
const char *cli_args_get(const struct cli_args *a, const char *name);
/* The i-th value (from 0) of a repeatable option, or NULL past the last one. */
const char *cli_args_get_nth(const struct cli_args *a, const char *name, size_t i);
/* How many times the option was given. */
size_t cli_args_count(const struct cli_args *a, const char *name);
/* Typed values; the parser checked them, so these cannot fail. def if not given. */
int64_t cli_args_duration_ms(const struct cli_args *a, const char *name, int64_t def);
int64_t cli_args_time_ms(const struct cli_args *a, const char *name, int64_t def);
long cli_args_int(const struct cli_args *a, const char *name, long def);

/*
 * Loads the plan at ctx->plan_path and prints its warnings (plan.warnings) with cli_warn.
 * Returns what plan_load() returns; for a plan file that does not exist IPW_ENOINPUT with a
 * sentence that names the path and `ipwarm init`.
 */
ipw_status cli_load_plan(const struct cli_ctx *ctx, struct plan **out, struct err *e);
/* For the look-up commands (spf, mx, dnsbl), which need no plan: cli_load_plan when a plan
 * was named or ctx->plan_path exists, else IPW_OK with *out NULL. */
ipw_status cli_load_plan_if_any(const struct cli_ctx *ctx, struct plan **out, struct err *e);
/* The same, but never without a plan: when there is none, or the one named does not exist
 * (then, when note is not NULL, "WHY; NOTE" goes to cli_info), the built-in one with the
 * shipped providers and the default block lists (preflight_builtin_plan). */
ipw_status cli_load_plan_or_builtin(const struct cli_ctx *ctx, struct plan **out, const char *note,
                                    struct err *e);

/* The effective settings: the command line's over the plan's. */
const char *cli_state_path(const struct cli_ctx *ctx, const struct plan *p);
/*
 * Checks that the state file st belongs to the campaign of p (store_campaign_check: the first
 * plan to use a state file records its campaign). Every command that opens a state file with a
 * plan calls it, so that two plans pointing at one file never mix their campaigns. Returns
 * IPW_OK; IPW_ECONFIG (exit 78) with "PLAN: campaign: state file X belongs to campaign "a" ...,
 * not to campaign "b"; ..."; or a database status.
 */
ipw_status cli_store_campaign(const struct plan *p, struct store *st, struct err *e);
/* For the commands that only read the state (report, trace, stats, simulate, metrics): the
 * plan's state file (or --db) through stats_store_open (an empty store when there is none yet),
 * checked with cli_store_campaign. Whatever the status, *out (a store, or NULL) goes to
 * store_close after. */
ipw_status cli_store_read(const struct cli_ctx *ctx, const struct plan *p, struct store **out,
                          struct err *e);
/* cli_load_plan, then cli_store_read, for the commands that read the plan and its state
 * (report, trace); on failure both are NULL and nothing is left to free. */
ipw_status cli_load_plan_store(const struct cli_ctx *ctx, struct plan **p, struct store **st,
                               struct err *e);
const struct dns_server *cli_dns_servers(const struct cli_ctx *ctx, const struct plan *p,
                                         size_t *n);
int64_t cli_dns_timeout_ms(const struct cli_ctx *ctx, const struct plan *p);
/* The resolver set-up of every command: the --dns servers, else the plan's dns.servers (p may
 * be NULL), else none (/etc/resolv.conf), and the effective time limit of a query. cfg points
 * into ctx and p, which must outlive it. */
void cli_dns_config(const struct cli_ctx *ctx, const struct plan *p, struct dns_config *cfg);
/* The index of the plan's provider called name: IPW_OK, or IPW_EUSAGE with "unknown provider
 * 'x' (known: ...)" (exit 64), for commands that take a provider name. */
ipw_status cli_find_provider(const struct plan *p, const char *name, size_t *index, struct err *e);
/* cli_load_plan, then cli_find_provider of name, for the commands that act on one provider
 * (pause, resume): *pp is that provider in *out (its name as the plan spells it). On failure
 * nothing is left to free. */
ipw_status cli_load_plan_provider(const struct cli_ctx *ctx, const char *name, struct plan **out,
                                  const struct plan_provider **pp, struct err *e);
/* A resolver for the command: --dns servers, else the plan's dns.servers (p may be NULL),
 * else /etc/resolv.conf, with the effective timeout. Returns NULL with e set on failure. */
struct dns *cli_dns_open(const struct cli_ctx *ctx, const struct plan *p, struct err *e);
/* The same for the look-up commands (check, mx, dnsbl), through preflight_dns_new, into *out.
 * Returns IPW_OK, or with *out NULL preflight_dns_new's failure: IPW_EUSAGE for a bad server,
 * IPW_ETEMP (exit 75) for a resolver that cannot start, IPW_ENOMEM. */
ipw_status cli_dns_open_lookup(const struct cli_ctx *ctx, const struct plan *p, struct dns **out,
                               struct err *e);

/* An informational line "ipwarm: ..." on ctx->diag, unless --quiet. */
void cli_info(const struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A warning "ipwarm: warning: ..." on ctx->diag, even with --quiet: something is wrong that
 * does not stop the command (under cron it becomes a mail, which is the point). */
void cli_warn(const struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A line for --verbose only. */
void cli_verbose(const struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
