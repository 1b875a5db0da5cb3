/*
 * cli: the argument parser, the status-to-exit-code map and the helpers commands share
 * (see cli.h; the contract is docs/cli.md, the manual docs/man/ipwarm.1). The tables it
 * parses against and the help texts printed from them are in cli_help.c.
 */
#include "ipwarm/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "ipwarm/chars.h"
#include "ipwarm/clock.h"
#include "ipwarm/preflight.h"
#include "ipwarm/stats.h"
#include "ipwarm/units.h"

/* ------------------------------------------------------------------------------------------ */
/* Exit codes.                                                                                */

int cli_exit_code(ipw_status s)
{
    switch (s) {
    case IPW_OK:
        return EX_OK;
    case IPW_EUSAGE:
        return EX_USAGE;
    case IPW_EDATA:
        return EX_DATAERR;
    case IPW_ENOINPUT:
        return EX_NOINPUT;
    case IPW_EUNAVAIL:
        return EX_UNAVAILABLE;
    case IPW_ESOFTWARE:
        return EX_SOFTWARE;
    case IPW_ENOTIMPL:
        return EX_SOFTWARE;
    case IPW_ENOMEM:
        return EX_OSERR;
    case IPW_ECANTCREAT:
        return EX_CANTCREAT;
    case IPW_EIO:
        return EX_IOERR;
    case IPW_ETEMP:
        return EX_TEMPFAIL;
    case IPW_ELOCKED:
        return EX_TEMPFAIL;
    case IPW_ECONFIG:
        return EX_CONFIG;
    /* A thing the user named (a provider, a recipient) does not exist: a bad parameter. */
    case IPW_ENOTFOUND:
        return EX_USAGE;
    /* cli.md: `check` exits 1 when a required check failed, and so does `run` refusing to
     * start because of it. */
    case IPW_ECHECK:
        return 1;
    }
    return EX_SOFTWARE;
}

/* ------------------------------------------------------------------------------------------ */
/* Context and arguments.                                                                     */

void cli_ctx_init(struct cli_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    const char *env = getenv("IPWARM_PLAN");
    if (env && *env) {
        ctx->plan_path = env;
        ctx->plan_given = true;
    } else {
        ctx->plan_path = "ipwarm.yaml";
    }
    ctx->dns_timeout_ms = -1;
    ctx->out = stdout;
    ctx->diag = stderr;
}

void cli_ctx_free(struct cli_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_dns; i++)
        free(ctx->dns[i].host);
    free(ctx->dns);
    ctx->dns = NULL;
    ctx->n_dns = 0;
}

void cli_args_free(struct cli_args *args)
{
    free(args->values);
    free(args->argv);
    args->values = NULL;
    args->argv = NULL;
    args->n_values = 0;
    args->argc = 0;
}

const struct cli_command *cli_command_find(const char *name)
{
    for (const struct cli_command *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* True if some command's name is word followed by a space: word is a command group. */
static bool cli_is_group(const char *word)
{
    size_t n = strlen(word);
    for (const struct cli_command *c = cli_commands; c->name; c++)
        if (strncmp(c->name, word, n) == 0 && c->name[n] == ' ')
            return true;
    return false;
}

/* The subcommands of a group as "keygen, x", for messages. */
static void cli_group_members(const char *group, char *buf, size_t n)
{
    size_t gl = strlen(group), len = 0;
    buf[0] = '\0';
    for (const struct cli_command *c = cli_commands; c->name; c++) {
        if (strncmp(c->name, group, gl) != 0 || c->name[gl] != ' ')
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? ", " : "", c->name + gl + 1);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
}

/* Edit distance (Levenshtein) of two short words, for "did you mean". */
static size_t cli_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return SIZE_MAX;
    size_t row[33];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The commands (or groups) nearest to word as "'a'" or "'a' or 'b'" in buf; false if none
 * is near enough to be what the user meant. */
static bool cli_suggest(const char *word, char *buf, size_t n)
{
    size_t best = SIZE_MAX;
    size_t wl = strlen(word);
    size_t dist[64];
    size_t k = 0;
    for (const struct cli_command *c = cli_commands; c->name && k < 64; c++, k++) {
        char first[32];
        size_t fl = strcspn(c->name, " ");
        dist[k] = SIZE_MAX;
        if (fl >= sizeof first)
            continue;
        memcpy(first, c->name, fl);
        first[fl] = '\0';
        dist[k] = cli_distance(word, first);
        /* A prefix of three letters or more ("val") also counts as meant. */
        if (wl >= 3 && strncmp(first, word, wl) == 0)
            dist[k] = 1;
        if (dist[k] < best)
            best = dist[k];
    }
    /* Two edits at most, and fewer than half the word, so that "foo" suggests nothing. */
    if (!(best <= 2 && best * 2 < wl + 1))
        return false;
    size_t len = 0;
    buf[0] = '\0';
    k = 0;
    for (const struct cli_command *c = cli_commands; c->name && k < 64; c++, k++) {
        int fl = (int)strcspn(c->name, " ");
        if (dist[k] != best)
            continue;
        /* A group appears once even if it has several subcommands. */
        char quoted[40];
        snprintf(quoted, sizeof quoted, "'%.*s'", fl, c->name);
        if (strstr(buf, quoted))
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? " or " : "", quoted);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
    return true;
}

static const struct cli_option *cli_option_long(const struct cli_option *opts, const char *name,
                                                size_t len)
{
    for (const struct cli_option *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static const struct cli_option *cli_option_short(const struct cli_option *opts, char c)
{
    for (const struct cli_option *o = opts; o && o->name; o++)
        if (o->short_name && o->short_name == c)
            return o;
    return NULL;
}

/* "(see ipwarm --help)" or "(see ipwarm stats --help)". */
static const char *cli_see(const struct cli_command *cmd, char *buf, size_t n)
{
    snprintf(buf, n, "(see ipwarm %s%s--help)", cmd ? cmd->name : "", cmd ? " " : "");
    return buf;
}

static bool cli_is_domain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (const char *p = s; *p; p++)
        if (!chars_is_alnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

static bool cli_choice_ok(const char *choices, const char *v)
{
    size_t vl = strlen(v);
    const char *p = choices;
    while (*p) {
        size_t l = strcspn(p, "|");
        if (l == vl && strncmp(p, v, l) == 0)
            return true;
        p += l;
        if (*p == '|')
            p++;
    }
    return false;
}

static bool cli_parse_long(const char *s, long *v)
{
    if (!chars_is_digit((unsigned char)s[0]) &&
        !(s[0] == '-' && chars_is_digit((unsigned char)s[1])))
        return false;
    errno = 0;
    char *end;
    long x = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *v = x;
    return true;
}

/* Checks one value against its option's kind; where names the command for the message. */
static ipw_status cli_check_value(const struct cli_command *cmd, const struct cli_option *o,
                                  const char *label, const char *v, struct err *e)
{
    char see[64], prefix[80];
    snprintf(prefix, sizeof prefix, "%s%s%s", cmd ? cmd->name : "", cmd ? ": " : "", label);
    struct err sub;
    err_clear(&sub);
    switch (o->kind) {
    case CLI_FLAG:
    case CLI_STRING:
        return IPW_OK;
    case CLI_NONEMPTY:
        if (*v)
            return IPW_OK;
        return err_set(e, IPW_EUSAGE, "%s: expected %s, found an empty string %s", prefix, o->value,
                       cli_see(cmd, see, sizeof see));
    case CLI_IP: {
        unsigned char buf[16];
        if (inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1)
            return IPW_OK;
        return err_set(e, IPW_EUSAGE, "%s: expected an IPv4 or IPv6 address, found \"%s\"", prefix,
                       v);
    }
    case CLI_DOMAIN:
        if (cli_is_domain(v))
            return IPW_OK;
        return err_set(e, IPW_EUSAGE, "%s: expected a domain name, found \"%s\"", prefix, v);
    case CLI_DURATION: {
        int64_t ms;
        if (units_parse_duration(v, &ms, &sub) == IPW_OK && ms > 0)
            return IPW_OK;
        return err_set(e, IPW_EUSAGE,
                       "%s: expected a duration such as 30s, 15m, 2h or 3d, found \"%s\"", prefix,
                       v);
    }
    case CLI_TIME: {
        int64_t ms;
        if (clock_parse_rfc3339(v, &ms, e) == IPW_OK)
            return IPW_OK;
        return err_prefix(e, IPW_EUSAGE, "%s: ", prefix);
    }
    case CLI_CHOICE: {
        if (cli_choice_ok(o->choices, v))
            return IPW_OK;
        /* "hour|day" reads as "hour or day" in a sentence. */
        char words[128];
        size_t len = 0;
        const char *p = o->choices;
        words[0] = '\0';
        while (*p && len < sizeof words) {
            size_t l = strcspn(p, "|");
            bool last = p[l] == '\0';
            int w = snprintf(words + len, sizeof words - len, "%s%.*s",
                             len == 0 ? "" : (last ? " or " : ", "), (int)l, p);
            if (w < 0)
                break;
            len += (size_t)w;
            p += l;
            if (*p == '|')
                p++;
        }
        return err_set(e, IPW_EUSAGE, "%s: expected %s, found \"%s\"", prefix, words, v);
    }
    case CLI_INT: {
        long x;
        if (cli_parse_long(v, &x) && x >= o->min && x <= o->max)
            return IPW_OK;
        return err_set(e, IPW_EUSAGE, "%s: expected a whole number from %ld to %ld, found \"%s\"",
                       prefix, o->min, o->max, v);
    }
    }
    return IPW_OK;
}

/* Parses --dns HOST[:PORT]: an IPv4 address with an optional port, an IPv6 address bare or as
 * [ADDR]:PORT. */
static ipw_status cli_parse_dns(const char *arg, struct dns_server *out, struct err *e)
{
    char host[INET6_ADDRSTRLEN + 1];
    int port = 53;
    if (dns_server_parse(arg, host, sizeof host, &port, e) != IPW_OK)
        return err_set(e, IPW_EUSAGE,
                       "--dns: expected an IP address with an optional port (192.0.2.53, "
                       "127.0.0.1:5353, [::1]:53), found \"%s\"",
                       arg);
    out->host = strdup(host);
    if (!out->host)
        return err_set(e, IPW_ENOMEM, "out of memory");
    out->port = port;
    return IPW_OK;
}

/* Applies one global option to ctx (the value checked already). */
static ipw_status cli_apply_global(struct cli_ctx *ctx, struct cli_args *args,
                                   const struct cli_option *o, const char *v, struct err *e)
{
    const char *n = o->name;
    if (strcmp(n, "plan") == 0) {
        ctx->plan_path = v;
        ctx->plan_given = true;
    } else if (strcmp(n, "db") == 0) {
        ctx->db_path = v;
    } else if (strcmp(n, "dns") == 0) {
        struct dns_server *d = realloc(ctx->dns, (ctx->n_dns + 1) * sizeof *d);
        if (!d)
            return err_set(e, IPW_ENOMEM, "out of memory");
        ctx->dns = d;
        ipw_status s = cli_parse_dns(v, &ctx->dns[ctx->n_dns], e);
        if (s)
            return s;
        ctx->n_dns++;
    } else if (strcmp(n, "dns-timeout") == 0) {
        long x = 0;
        cli_parse_long(v, &x);
        ctx->dns_timeout_ms = x;
    } else if (strcmp(n, "now") == 0) {
        ctx->has_now = true;
        clock_parse_rfc3339(v, &ctx->now_ms, NULL);
    } else if (strcmp(n, "json") == 0) {
        ctx->json = true;
    } else if (strcmp(n, "quiet") == 0) {
        ctx->verbosity--;
    } else if (strcmp(n, "verbose") == 0) {
        ctx->verbosity++;
    } else if (strcmp(n, "help") == 0) {
        args->action = CLI_HELP;
    } else if (strcmp(n, "version") == 0) {
        if (args->action != CLI_HELP)
            args->action = CLI_VERSION;
    }
    return IPW_OK;
}

/* One option occurrence found while scanning; checked after the scan so that --help wins. */
struct cli_seen {
    const struct cli_option *opt;
    const char *value;
    bool global;
};

ipw_status cli_parse(struct cli_ctx *ctx, struct cli_args *args, int argc, char **argv,
                     struct err *e)
{
    ipw_status s = IPW_OK;
    char see[64];
    memset(args, 0, sizeof *args);
    /* Every option occurrence uses at least one character of argv ("-qv" is two), so the
     * total length bounds their number. */
    size_t cap = 1;
    for (int i = 0; i < argc; i++)
        cap += strlen(argv[i]) + 1;
    struct cli_seen *seen = calloc(cap, sizeof *seen);
    args->values = calloc(cap, sizeof *args->values);
    args->argv = calloc(cap + 1, sizeof *args->argv);
    if (!seen || !args->values || !args->argv) {
        s = err_set(e, IPW_ENOMEM, "out of memory");
        goto done;
    }
    size_t n_seen = 0;
    const char *group = NULL; /* a command group word ("dkim") waiting for its subcommand */
    bool only_args = false;   /* after "--" */

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == '\0') {
            if (args->cmd) {
                args->argv[args->argc++] = argv[i];
            } else if (group) {
                char name[64];
                snprintf(name, sizeof name, "%s %s", group, a);
                args->cmd = cli_command_find(name);
                if (!args->cmd) {
                    char members[128];
                    cli_group_members(group, members, sizeof members);
                    s = err_set(e, IPW_EUSAGE, "%s: unknown subcommand '%s'; expected %s %s", group,
                                a, members, cli_see(NULL, see, sizeof see));
                    goto done;
                }
                group = NULL;
            } else if ((args->cmd = cli_command_find(a)) != NULL) {
                /* found */
            } else if (cli_is_group(a)) {
                group = a;
            } else {
                char near[128];
                if (cli_suggest(a, near, sizeof near))
                    s = err_set(e, IPW_EUSAGE, "unknown command '%s'; did you mean %s? %s", a, near,
                                cli_see(NULL, see, sizeof see));
                else
                    s = err_set(e, IPW_EUSAGE, "unknown command '%s' %s", a,
                                cli_see(NULL, see, sizeof see));
                goto done;
            }
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = true;
            continue;
        }
        const struct cli_option *cmd_opts = args->cmd ? args->cmd->options : NULL;
        if (a[1] == '-') {
            /* --name or --name=value */
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const struct cli_option *o = cli_option_long(cmd_opts, name, len);
            bool global = false;
            if (!o) {
                o = cli_option_long(cli_global_options, name, len);
                global = o != NULL;
            }
            if (!o) {
                s = err_set(e, IPW_EUSAGE, "unknown option '%.*s' %s", (int)(len + 2), a,
                            cli_see(args->cmd, see, sizeof see));
                goto done;
            }
            const char *v = NULL;
            if (o->kind == CLI_FLAG) {
                if (eq) {
                    s = err_set(e, IPW_EUSAGE, "option '--%s' takes no value %s", o->name,
                                cli_see(args->cmd, see, sizeof see));
                    goto done;
                }
            } else if (eq) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                s = err_set(e, IPW_EUSAGE, "option '--%s' needs a value: %s %s", o->name, o->value,
                            cli_see(args->cmd, see, sizeof see));
                goto done;
            }
            seen[n_seen++] = (struct cli_seen){o, v, global};
            continue;
        }
        /* Short options: -q, -v, -qv bundled; -p FILE or -pFILE. */
        for (const char *p = a + 1; *p; p++) {
            const struct cli_option *o = cli_option_short(cmd_opts, *p);
            bool global = false;
            if (!o) {
                o = cli_option_short(cli_global_options, *p);
                global = o != NULL;
            }
            if (!o) {
                s = err_set(e, IPW_EUSAGE, "unknown option '-%c' %s", *p,
                            cli_see(args->cmd, see, sizeof see));
                goto done;
            }
            const char *v = NULL;
            if (o->kind != CLI_FLAG) {
                if (p[1]) {
                    v = p + 1;
                } else if (i + 1 < argc) {
                    v = argv[++i];
                } else {
                    s = err_set(e, IPW_EUSAGE, "option '-%c' needs a value: %s %s", *p, o->value,
                                cli_see(args->cmd, see, sizeof see));
                    goto done;
                }
            }
            seen[n_seen++] = (struct cli_seen){o, v, global};
            if (v)
                break;
        }
    }

    /* Help comes before any check of the values, so that it always works. */
    for (size_t k = 0; k < n_seen; k++) {
        if (seen[k].global && strcmp(seen[k].opt->name, "help") == 0) {
            args->action = CLI_HELP;
            if (!args->cmd && group) {
                /* `ipwarm dkim --help`: the help of its first subcommand. */
                size_t gl = strlen(group);
                for (const struct cli_command *c = cli_commands; c->name && !args->cmd; c++)
                    if (strncmp(c->name, group, gl) == 0 && c->name[gl] == ' ')
                        args->cmd = c;
            }
            goto done;
        }
    }
    for (size_t k = 0; k < n_seen; k++) {
        if (seen[k].global && strcmp(seen[k].opt->name, "version") == 0) {
            args->action = CLI_VERSION;
            goto done;
        }
    }

    for (size_t k = 0; k < n_seen; k++) {
        const struct cli_option *o = seen[k].opt;
        if (seen[k].value) {
            /* Named by the long name in messages even if typed as -o: always right. */
            char label[64];
            snprintf(label, sizeof label, "--%s", o->name);
            s = cli_check_value(seen[k].global ? NULL : args->cmd, o, label, seen[k].value, e);
            if (s)
                goto done;
        }
        if (seen[k].global) {
            s = cli_apply_global(ctx, args, o, seen[k].value, e);
            if (s)
                goto done;
        } else {
            args->values[args->n_values++] = (struct cli_value){o, seen[k].value};
        }
    }

    if (group) {
        char members[128];
        cli_group_members(group, members, sizeof members);
        s = err_set(e, IPW_EUSAGE, "%s: expected a subcommand: %s %s", group, members,
                    cli_see(NULL, see, sizeof see));
        goto done;
    }
    if (!args->cmd) {
        args->show_usage = true;
        s = err_set(e, IPW_EUSAGE, "no command given");
        goto done;
    }

    const struct cli_command *cmd = args->cmd;
    cli_see(cmd, see, sizeof see);
    for (const struct cli_option *o = cmd->options; o->name; o++) {
        if (o->required && !cli_args_has(args, o->name)) {
            s = err_set(e, IPW_EUSAGE, "%s: --%s %s is required %s", cmd->name, o->name,
                        o->value ? o->value : "", see);
            goto done;
        }
        if (o->excludes && cli_args_has(args, o->name) && cli_args_has(args, o->excludes)) {
            s = err_set(e, IPW_EUSAGE, "%s: --%s and --%s exclude each other %s", cmd->name,
                        o->name, o->excludes, see);
            goto done;
        }
    }
    /* "DOMAIN..." and "[FILE]" name one argument as DOMAIN and FILE in sentences. */
    char what[64];
    const char *aname = cmd->args ? cmd->args : "";
    aname += strspn(aname, "[");
    snprintf(what, sizeof what, "%.*s", (int)strcspn(aname, "].\0"), aname);
    if (args->argc < cmd->min_args) {
        if (cmd->max_args < 0)
            s = err_set(e, IPW_EUSAGE, "%s: expected one %s or more %s", cmd->name, what, see);
        else
            s = err_set(e, IPW_EUSAGE, "%s: expected one %s %s", cmd->name, what, see);
        goto done;
    }
    if (cmd->max_args >= 0 && args->argc > cmd->max_args) {
        s = err_set(e, IPW_EUSAGE, "%s: unexpected argument '%s' %s", cmd->name,
                    args->argv[cmd->max_args], see);
        goto done;
    }
    for (int k = 0; k < args->argc; k++) {
        if (args->argv[k][0] == '\0') {
            s = err_set(e, IPW_EUSAGE, "%s: expected %s, found an empty argument %s", cmd->name,
                        what, see);
            goto done;
        }
        if (cmd->arg_kind != CLI_FLAG) {
            struct cli_option as_opt = {.name = what, .value = what, .kind = cmd->arg_kind};
            s = cli_check_value(cmd, &as_opt, what, args->argv[k], e);
            if (s)
                goto done;
        }
    }
done:
    free(seen);
    return s;
}

ipw_status cli_run(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    if (!args->cmd)
        return err_set(e, IPW_EUSAGE, "no command given");
    if (!args->cmd->run)
        return err_set(e, IPW_ENOTIMPL, "%s: not implemented yet", args->cmd->name);
    return args->cmd->run(ctx, args, e);
}

/* ------------------------------------------------------------------------------------------ */
/* Option accessors.                                                                          */

bool cli_args_has(const struct cli_args *a, const char *name)
{
    return cli_args_count(a, name) > 0;
}

const char *cli_args_get(const struct cli_args *a, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->n_values; i++)
        if (strcmp(a->values[i].opt->name, name) == 0)
            v = a->values[i].value;
    return v;
}

const char *cli_args_get_nth(const struct cli_args *a, const char *name, size_t n)
{
    for (size_t i = 0; i < a->n_values; i++)
        if (strcmp(a->values[i].opt->name, name) == 0 && n-- == 0)
            return a->values[i].value;
    return NULL;
}

size_t cli_args_count(const struct cli_args *a, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n_values; i++)
        if (strcmp(a->values[i].opt->name, name) == 0)
            n++;
    return n;
}

int64_t cli_args_duration_ms(const struct cli_args *a, const char *name, int64_t def)
{
    const char *v = cli_args_get(a, name);
    int64_t ms;
    if (v && units_parse_duration(v, &ms, NULL) == IPW_OK)
        return ms;
    return def;
}

int64_t cli_args_time_ms(const struct cli_args *a, const char *name, int64_t def)
{
    const char *v = cli_args_get(a, name);
    int64_t ms;
    if (v && clock_parse_rfc3339(v, &ms, NULL) == IPW_OK)
        return ms;
    return def;
}

long cli_args_int(const struct cli_args *a, const char *name, long def)
{
    const char *v = cli_args_get(a, name);
    long x;
    if (v && cli_parse_long(v, &x))
        return x;
    return def;
}

/* ------------------------------------------------------------------------------------------ */
/* Plan and effective settings.                                                               */

ipw_status cli_load_plan(const struct cli_ctx *ctx, struct plan **out, struct err *e)
{
    struct stat st;
    if (stat(ctx->plan_path, &st) != 0 && errno == ENOENT) {
        return err_set(e, IPW_ENOINPUT,
                       "plan %s: no such file (write an example with `ipwarm init %s`, or name "
                       "another with -p FILE)",
                       ctx->plan_path, ctx->plan_path);
    }
    ipw_status r = plan_load(ctx->plan_path, out, e);
    for (size_t i = 0; r == IPW_OK && i < (*out)->n_warnings; i++)
        cli_warn(ctx, "%s", (*out)->warnings[i]);
    return r;
}

ipw_status cli_load_plan_if_any(const struct cli_ctx *ctx, struct plan **out, struct err *e)
{
    struct stat st;
    *out = NULL;
    if (!ctx->plan_given && stat(ctx->plan_path, &st) != 0 && errno == ENOENT)
        return IPW_OK;
    return cli_load_plan(ctx, out, e);
}

ipw_status cli_load_plan_or_builtin(const struct cli_ctx *ctx, struct plan **out, const char *note,
                                    struct err *e)
{
    ipw_status s = cli_load_plan_if_any(ctx, out, e);
    if (s == IPW_ENOINPUT) {
        /* A look-up needs no plan: a missing one only costs what the plan would have added. */
        if (note)
            cli_info(ctx, "%s; %s", e->msg, note);
        *out = NULL;
        s = IPW_OK;
    }
    if (s != IPW_OK || *out)
        return s;
    return preflight_builtin_plan(out, e);
}

const char *cli_state_path(const struct cli_ctx *ctx, const struct plan *p)
{
    return ctx->db_path ? ctx->db_path : p->state;
}

ipw_status cli_store_campaign(const struct plan *p, struct store *st, struct err *e)
{
    ipw_status r = store_campaign_check(st, p->campaign, e);
    if (r == IPW_ECONFIG) {
        err_prefix(e, r, "%s: campaign: ", p->name ? p->name : p->path);
        size_t n = strnlen(e->msg, sizeof e->msg);
        snprintf(e->msg + n, sizeof e->msg - n,
                 "; a state file keeps one campaign: give this plan its own "
                 "(`state:` in the plan, or --db)");
    }
    return r;
}

ipw_status cli_load_plan_store(const struct cli_ctx *ctx, struct plan **p, struct store **st,
                               struct err *e)
{
    *p = NULL;
    *st = NULL;
    ipw_status r = cli_load_plan(ctx, p, e);
    if (r == IPW_OK)
        r = cli_store_read(ctx, *p, st, e);
    if (r != IPW_OK) {
        store_close(*st);
        plan_free(*p);
        *st = NULL;
        *p = NULL;
    }
    return r;
}

const struct dns_server *cli_dns_servers(const struct cli_ctx *ctx, const struct plan *p, size_t *n)
{
    if (ctx->n_dns > 0) {
        *n = ctx->n_dns;
        return ctx->dns;
    }
    *n = p->n_dns_servers;
    return p->dns_servers;
}

int64_t cli_dns_timeout_ms(const struct cli_ctx *ctx, const struct plan *p)
{
    if (ctx->dns_timeout_ms > 0)
        return ctx->dns_timeout_ms;
    return p && p->dns_timeout_ms > 0 ? p->dns_timeout_ms : 5000;
}

ipw_status cli_find_provider(const struct plan *p, const char *name, size_t *index, struct err *e)
{
    int i = plan_provider_find(p, name);
    if (i >= 0) {
        *index = (size_t)i;
        return IPW_OK;
    }
    char known[1024];
    size_t len = 0;
    known[0] = '\0';
    for (size_t k = 0; k < p->n_providers; k++) {
        int w =
            snprintf(known + len, sizeof known - len, "%s%s", k ? ", " : "", p->providers[k].name);
        if (w < 0 || (size_t)w >= sizeof known - len)
            break;
        len += (size_t)w;
    }
    return err_set(e, IPW_EUSAGE, "unknown provider '%s' (known: %s)", name, known);
}

ipw_status cli_load_plan_provider(const struct cli_ctx *ctx, const char *name, struct plan **out,
                                  const struct plan_provider **pp, struct err *e)
{
    struct plan *p = NULL;
    size_t index = 0;
    *out = NULL;
    *pp = NULL;
    ipw_status r = cli_load_plan(ctx, &p, e);
    if (r == IPW_OK)
        r = cli_find_provider(p, name, &index, e);
    if (r != IPW_OK) {
        plan_free(p);
        return r;
    }
    *out = p;
    *pp = &p->providers[index];
    return IPW_OK;
}

void cli_dns_config(const struct cli_ctx *ctx, const struct plan *p, struct dns_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    if (ctx->n_dns > 0 || p)
        cfg->servers = cli_dns_servers(ctx, p, &cfg->n_servers);
    cfg->timeout_ms = cli_dns_timeout_ms(ctx, p);
}

ipw_status cli_store_read(const struct cli_ctx *ctx, const struct plan *p, struct store **out,
                          struct err *e)
{
    ipw_status r = stats_store_open(cli_state_path(ctx, p), out, NULL, e);
    if (r == IPW_OK)
        r = cli_store_campaign(p, *out, e);
    return r;
}

struct dns *cli_dns_open(const struct cli_ctx *ctx, const struct plan *p, struct err *e)
{
    struct dns_config cfg;
    cli_dns_config(ctx, p, &cfg);
    struct dns *d = dns_new(&cfg, e);
    if (!d && e->status == IPW_OK)
        err_set(e, IPW_ETEMP, "the DNS resolver could not be set up");
    return d;
}

ipw_status cli_dns_open_lookup(const struct cli_ctx *ctx, const struct plan *p, struct dns **out,
                               struct err *e)
{
    struct dns_config cfg;
    cli_dns_config(ctx, p, &cfg);
    *out = preflight_dns_new(&cfg, e);
    return *out ? IPW_OK : e->status;
}

/* One diagnostic line on ctx->diag: "ipwarm: " and prefix, then the message. */
__attribute__((format(printf, 3, 0))) static void
cli_say(const struct cli_ctx *ctx, const char *prefix, const char *fmt, va_list ap)
{
    fprintf(ctx->diag, "ipwarm: %s", prefix);
    vfprintf(ctx->diag, fmt, ap);
    fputc('\n', ctx->diag);
}

void cli_info(const struct cli_ctx *ctx, const char *fmt, ...)
{
    if (ctx->verbosity < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    cli_say(ctx, "", fmt, ap);
    va_end(ap);
}

void cli_warn(const struct cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_say(ctx, "warning: ", fmt, ap);
    va_end(ap);
}

void cli_verbose(const struct cli_ctx *ctx, const char *fmt, ...)
{
    if (ctx->verbosity < 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    cli_say(ctx, "", fmt, ap);
    va_end(ap);
}
