/*
 * cli_help: the command table, the option tables and the help and version texts (see cli.h;
 * the contract is docs/cli.md, the manual docs/man/ipwarm.1). The parser that reads these
 * tables is in cli.c.
 *
 * The help texts live in the table next to the options they describe, so `ipwarm --help`,
 * `ipwarm COMMAND --help` and the parser cannot disagree; tests/cli/test_cli.sh checks that
 * every command and long option printed here also appears in ipwarm(1). Change one, change
 * the other.
 */
#include "ipwarm/cli.h"

#include <stdio.h>
#include <string.h>

#include <ares.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <yaml.h>

#include "ipwarm/cmd.h"

/* The option and command tables read best one entry per line group; the formatter would put
 * every designator on a line of its own. */
// clang-format off
#define CLI_END {.name = NULL}

/* ------------------------------------------------------------------------------------------ */
/* The global options and the command table.                                                 */

const struct cli_option cli_global_options[] = {
    {.name = "plan", .short_name = 'p', .value = "FILE", .kind = CLI_NONEMPTY,
     .help = "the warm-up plan (default $IPWARM_PLAN, else ./ipwarm.yaml)"},
    {.name = "db", .value = "FILE", .kind = CLI_NONEMPTY,
     .help = "the SQLite state file (default: the plan's state)"},
    {.name = "dns", .value = "HOST[:PORT]", .kind = CLI_NONEMPTY, .repeatable = true,
     .help = "a DNS server to ask instead of the plan's or /etc/resolv.conf"},
    {.name = "dns-timeout", .value = "MS", .kind = CLI_INT, .min = 1, .max = 600000,
     .help = "time limit of one DNS query, retries included (default 5000)"},
    {.name = "now", .value = "TIME", .kind = CLI_TIME,
     .help = "the scheduler's clock as RFC 3339, e.g. 2026-12-01T09:00:00+09:00"},
    {.name = "json", .kind = CLI_FLAG,
     .help = "one JSON document on stdout instead of the human table"},
    {.name = "quiet", .short_name = 'q', .kind = CLI_FLAG, .repeatable = true,
     .help = "less on stderr: errors only"},
    {.name = "verbose", .short_name = 'v', .kind = CLI_FLAG, .repeatable = true,
     .help = "more on stderr"},
    {.name = "help", .short_name = 'h', .kind = CLI_FLAG,
     .help = "show the help (of the command, after one)"},
    {.name = "version", .kind = CLI_FLAG, .help = "show the version and the libraries' versions"},
    CLI_END,
};

static const struct cli_option cli_opts_none[] = {CLI_END};

static const struct cli_option cli_opts_spf[] = {
    {.name = "ip", .value = "IP", .kind = CLI_IP, .required = true,
     .help = "the client IP address to evaluate"},
    {.name = "sender", .value = "ADDR", .kind = CLI_STRING, .required = true,
     .help = "the MAIL FROM address; \"\" checks postmaster@HELO"},
    {.name = "helo", .value = "NAME", .kind = CLI_NONEMPTY,
     .help = "the HELO/EHLO argument, a name or [192.0.2.1] (default: the plan's source.helo)"},
    CLI_END,
};

static const struct cli_option cli_opts_dnsbl[] = {
    {.name = "ip", .value = "IP", .kind = CLI_IP, .required = true,
     .help = "the IP address to look up"},
    {.name = "zone", .value = "ZONE", .kind = CLI_DOMAIN, .repeatable = true,
     .help = "a block list zone to ask instead of the plan's preflight.dnsbl"},
    CLI_END,
};

static const struct cli_option cli_opts_run[] = {
    {.name = "once", .kind = CLI_FLAG, .excludes = "for",
     .help = "one cron tick: send what is due, paced, and return within 60 s"},
    {.name = "for", .value = "DURATION", .kind = CLI_DURATION,
     .help = "run this long (30m, 8h, 3d), then finish the message in flight"},
    {.name = "dry-run", .kind = CLI_FLAG, .help = "decide and record, but send nothing"},
    {.name = "force", .kind = CLI_FLAG, .help = "send even though a pre-flight check failed"},
    CLI_END,
};

static const struct cli_option cli_opts_stats[] = {
    {.name = "by", .value = "hour|day|ip", .kind = CLI_CHOICE, .choices = "hour|day|ip",
     .help = "one row per provider and hour or day (default day), or per source IP and "
             "provider"},
    {.name = "provider", .value = "NAME", .kind = CLI_NONEMPTY,
     .help = "only this provider"},
    {.name = "since", .value = "TIME", .kind = CLI_TIME,
     .help = "only attempts at or after this RFC 3339 time"},
    {.name = "until", .value = "TIME", .kind = CLI_TIME,
     .help = "only attempts before this RFC 3339 time"},
    {.name = "format", .value = "table|csv|json", .kind = CLI_CHOICE,
     .choices = "table|csv|json", .help = "the output format (default table; json as --json)"},
    CLI_END,
};

static const struct cli_option cli_opts_placement[] = {
    {.name = "by", .value = "day|provider|ip", .kind = CLI_CHOICE, .choices = "day|provider|ip",
     .help = "one row per local day and provider, per provider, or per provider and source IP "
             "(default day)"},
    {.name = "since", .value = "TIME", .kind = CLI_TIME,
     .help = "only copies sent at or after this RFC 3339 time"},
    {.name = "format", .value = "table|csv|json", .kind = CLI_CHOICE,
     .choices = "table|csv|json", .help = "the output format (default table; json as --json)"},
    CLI_END,
};

static const struct cli_option cli_opts_output_required[] = {
    {.name = "output", .short_name = 'o', .value = "FILE", .kind = CLI_NONEMPTY,
     .required = true, .help = "the HTML file to write"},
    CLI_END,
};

static const struct cli_option cli_opts_simulate[] = {
    {.name = "days", .value = "N", .kind = CLI_INT, .min = 1, .max = 3650,
     .help = "how many sending days to project (default 30)"},
    CLI_END,
};

static const struct cli_option cli_opts_pause[] = {
    {.name = "for", .value = "DURATION", .kind = CLI_DURATION,
     .help = "hold this long (15m, 2h, 3d); default until `ipwarm resume`"},
    CLI_END,
};

static const struct cli_option cli_opts_release[] = {
    {.name = "all", .kind = CLI_FLAG, .help = "release every held recipient"},
    {.name = "provider", .value = "NAME", .kind = CLI_NONEMPTY,
     .help = "with --all: only the held recipients of this provider"},
    CLI_END,
};

static const struct cli_option cli_opts_metrics[] = {
    {.name = "output", .short_name = 'o', .value = "FILE", .kind = CLI_NONEMPTY,
     .help = "write to FILE atomically instead of stdout (for a textfile collector)"},
    CLI_END,
};

static const struct cli_option cli_opts_dkim_keygen[] = {
    {.name = "selector", .value = "S", .kind = CLI_DOMAIN, .required = true,
     .help = "the DKIM selector, e.g. s2026"},
    {.name = "domain", .value = "D", .kind = CLI_DOMAIN, .required = true,
     .help = "the signing domain (d=), e.g. example.com"},
    {.name = "type", .value = "rsa|ed25519", .kind = CLI_CHOICE, .choices = "rsa|ed25519",
     .help = "the key type (default rsa, 2048 bits)"},
    {.name = "output", .short_name = 'o', .value = "FILE", .kind = CLI_NONEMPTY,
     .help = "the private key file, mode 0600, never overwritten (default S.D.pem)"},
    CLI_END,
};

const struct cli_command cli_commands[] = {
    {.name = "init", .args = "[FILE]", .min_args = 0, .max_args = 1,
     .summary = "write an annotated example plan (refuses to overwrite)",
     .description =
         "Writes the annotated example plan to FILE (default: the --plan path, else\n"
         "./ipwarm.yaml), and message.txt and seeds.csv beside it unless they exist.\n"
         "An existing FILE is never overwritten: then nothing is written and the exit\n"
         "code is 73. Check the result with `ipwarm -p FILE validate`.",
     .options = cli_opts_none, .run = cmd_init},
    {.name = "validate", .max_args = 0,
     .summary = "load and check the plan; print the normalised plan",
     .description =
         "Loads the plan, checks every key, and prints it normalised: the providers in\n"
         "matching order with their MX suffixes, ramps and daily caps, the backoff, the\n"
         "reply rules (shipped and the plan's) and the pre-flight checks. An invalid plan\n"
         "is refused with FILE:LINE:COLUMN for each problem (exit 78).",
     .options = cli_opts_none, .run = cmd_validate},
    {.name = "check", .max_args = 0,
     .summary = "run every pre-flight check the plan asks for",
     .description =
         "Runs the pre-flight checks of preflight.require: SPF, PTR/FCrDNS, HELO, MX,\n"
         "DNSBL, DKIM, DMARC, SMTP reachability, TLS, AUTH and SIZE. Exits 0 when every\n"
         "required check passed, 1 when one failed.",
     .options = cli_opts_none, .run = cmd_check},
    {.name = "spf", .max_args = 0, .summary = "one SPF evaluation (RFC 7208)",
     .description =
         "Evaluates the SPF policy of the sender's domain for the IP (RFC 7208) and prints\n"
         "the result, its explanation and the number of DNS lookups. An empty --sender \"\"\n"
         "checks postmaster@HELO. Exits 0 whatever the result.",
     .options = cli_opts_spf, .run = cmd_spf},
    {.name = "dnsbl", .max_args = 0, .summary = "look the IP up in DNS block lists",
     .description =
         "Looks the IP up in each DNS block list zone (the plan's preflight.dnsbl, or\n"
         "the --zone options) and prints whether it is listed, the answers and the TXT\n"
         "reason. Exits 0 whatever the result.",
     .options = cli_opts_dnsbl, .run = cmd_dnsbl},
    {.name = "mx", .args = "DOMAIN...", .min_args = 1, .max_args = -1, .arg_kind = CLI_DOMAIN,
     .summary = "where mail for each domain goes, and which provider that is",
     .description =
         "Resolves the MX hosts of each domain (with implicit MX and null MX, RFC 5321\n"
         "and RFC 7505), their addresses, and the plan's provider they match. Exits 0\n"
         "whatever the result.",
     .options = cli_opts_none, .run = cmd_mx},
    {.name = "run", .max_args = 0, .summary = "send the warm-up",
     .description =
         "Sends the warm-up. --once: one cron tick (sends what is due, paced, and returns\n"
         "within 60 s). --for: runs that long. Neither: runs until SIGTERM or SIGINT, then\n"
         "finishes the message in flight and exits 0. Refuses to start (exit 1) when a\n"
         "required pre-flight check fails, unless --force.",
     .options = cli_opts_run, .run = cmd_run},
    {.name = "status", .max_args = 0, .summary = "per provider: stage, rate, today's count and cap",
     .description =
         "Shows per provider the ramp stage, the rate now, messages sent today and today's\n"
         "cap, a pause and its reason, and the last reply.",
     .options = cli_opts_none, .run = cmd_status},
    {.name = "stats", .max_args = 0, .summary = "deferral statistics",
     .description =
         "Counts attempts, deliveries, deferrals and bounces per provider and hour or day,\n"
         "with the deferral and bounce rates and the most frequent replies.",
     .options = cli_opts_stats, .run = cmd_stats},
    {.name = "trace", .args = "ADDRESS", .min_args = 1, .max_args = 1,
     .summary = "every attempt for one recipient",
     .description =
         "Lists every attempt for one recipient with its exact time, MX, source IP, SMTP\n"
         "phase and the full reply.",
     .options = cli_opts_none, .run = cmd_trace},
    {.name = "report", .max_args = 0, .summary = "write an HTML report with charts",
     .description =
         "Writes one self-contained HTML file with charts of sends, deferrals and bounces\n"
         "per provider over time.",
     .options = cli_opts_output_required, .run = cmd_report},
    {.name = "simulate", .max_args = 0, .summary = "the projected ramp, day by day",
     .description =
         "Projects the ramp day by day per provider from the plan (and the state, if any):\n"
         "rate, cap and planned messages, and the day each provider reaches its target.",
     .options = cli_opts_simulate, .run = cmd_simulate},
    {.name = "pause", .args = "PROVIDER", .min_args = 1, .max_args = 1,
     .summary = "hold a provider by hand",
     .description =
         "Stops sending to PROVIDER until `ipwarm resume` or for the --for duration. The\n"
         "hold is recorded like an automatic one.",
     .options = cli_opts_pause, .run = cmd_pause},
    {.name = "resume", .args = "PROVIDER", .min_args = 1, .max_args = 1,
     .summary = "end a hold of a provider",
     .description =
         "Ends a manual or automatic hold of PROVIDER; its rate recovers as after a pause.",
     .options = cli_opts_none, .run = cmd_resume},
    {.name = "release", .args = "ADDRESS...", .min_args = 0, .max_args = -1,
     .summary = "send held recipients again",
     .description =
         "Puts held recipients (their message was in flight when a run stopped, so it may\n"
         "have arrived) back in the queue, due at once, after you checked the receiving\n"
         "server's log. Give their addresses, or --all. A skipped recipient can be released\n"
         "by address too. Works while a run is going.",
     .options = cli_opts_release, .run = cmd_release},
    {.name = "metrics", .max_args = 0, .summary = "counters and provider state for Prometheus",
     .description =
         "Prints the current counters and provider state in the Prometheus text format,\n"
         "or writes them to FILE atomically.",
     .options = cli_opts_metrics, .run = cmd_metrics},
    {.name = "dkim keygen", .max_args = 0,
     .summary = "write a DKIM private key and print its DNS record",
     .description =
         "Writes a new DKIM private key (mode 0600) and prints the DNS TXT record to\n"
         "publish at S._domainkey.D.",
     .options = cli_opts_dkim_keygen, .run = cmd_dkim_keygen},
    {.name = "feedback poll", .max_args = 0,
     .summary = "read new bounces and complaint reports over IMAP and record them",
     .description =
         "Reads the new mail in the plan's feedback.mailbox and seeds over IMAP (from\n"
         "where the last poll stopped), classifies it, matches it to the attempts it\n"
         "answers and records it; looks up the copies sent to seeds (inbox, junk or\n"
         "missing); prints what it found. Nothing in a mailbox is changed.\n"
         "Exits 69 when a mailbox does not answer or refuses the login.",
     .options = cli_opts_none, .run = cmd_feedback_poll},
    {.name = "placement", .max_args = 0,
     .summary = "where the copies sent to seed mailboxes landed: inbox, junk or missing",
     .description =
         "Counts the copies sent to the plan's seeds per day and provider (or per provider,\n"
         "or per provider and source IP): sent, found in the inbox, in junk, missing after\n"
         "24 h, and the inbox rate over those placed. `feedback poll` and `run` look them up.",
     .options = cli_opts_placement, .run = cmd_placement},
    {.name = "feedback parse", .args = "FILE...", .min_args = 1, .max_args = -1,
     .summary = "classify message files: a bounce, a complaint report, or other",
     .description =
         "Reads each FILE (an RFC 5322 message; - for standard input) and prints what it\n"
         "is: a bounce (kind dsn: RFC 3464 or a provider's own format) with each\n"
         "recipient's action, status and diagnostic, a complaint report (kind arf, RFC\n"
         "5965) with its feedback type, or other; and the original Message-ID and\n"
         "X-Ipwarm-Id. Reads no plan and no state. Exits 0 when every file was read,\n"
         "whatever it turned out to be; 66 when one could not be opened.",
     .options = cli_opts_none, .run = cmd_feedback_parse},
    {.name = NULL},
};
// clang-format on

/* ------------------------------------------------------------------------------------------ */
/* Help and version.                                                                          */

/* "-o, --output FILE" or "    --ip IP" into buf. */
static void cli_option_synopsis(const struct cli_option *o, char *buf, size_t n)
{
    char sh[8] = "    ";
    if (o->short_name)
        snprintf(sh, sizeof sh, "-%c, ", o->short_name);
    snprintf(buf, n, "%s--%s%s%s", sh, o->name, o->value ? " " : "", o->value ? o->value : "");
}

static void cli_print_options(FILE *f, const struct cli_option *opts, bool add_help)
{
    static const struct cli_option help = {
        .name = "help", .short_name = 'h', .kind = CLI_FLAG, .help = "show this help"};
    int width = 0;
    char syn[96];
    for (const struct cli_option *o = opts; o->name; o++) {
        cli_option_synopsis(o, syn, sizeof syn);
        if ((int)strlen(syn) > width)
            width = (int)strlen(syn);
    }
    if (add_help && width < 14)
        width = 14;
    for (const struct cli_option *o = opts; o->name; o++) {
        cli_option_synopsis(o, syn, sizeof syn);
        fprintf(f, "  %-*s  %s%s%s\n", width, syn, o->help, o->required ? " (required)" : "",
                o->repeatable && o->value ? " (repeatable)" : "");
    }
    if (add_help) {
        cli_option_synopsis(&help, syn, sizeof syn);
        fprintf(f, "  %-*s  %s\n", width, syn, help.help);
    }
}

/* The usage line of a command: name, arguments, then the options as in cli.md, wrapped
 * before 90 columns. */
static void cli_print_usage(FILE *f, const struct cli_command *c)
{
    int col = fprintf(f, "usage: ipwarm [GLOBAL OPTIONS] %s", c->name);
    if (c->args)
        col += fprintf(f, " %s", c->args);
    for (const struct cli_option *o = c->options; o->name; o++) {
        char form[96], item[128];
        if (o->short_name)
            snprintf(form, sizeof form, "-%c%s%s", o->short_name, o->value ? " " : "",
                     o->value ? o->value : "");
        else
            snprintf(form, sizeof form, "--%s%s%s", o->name, o->value ? " " : "",
                     o->value ? o->value : "");
        if (o->required)
            snprintf(item, sizeof item, "%s", form);
        else
            snprintf(item, sizeof item, "[%s]%s", form, o->repeatable ? "..." : "");
        if (col + 1 + (int)strlen(item) > 90)
            col = fprintf(f, "\n       ") - 1;
        col += fprintf(f, " %s", item);
    }
    fputc('\n', f);
}

void cli_help(FILE *f, const struct cli_command *cmd)
{
    if (cmd) {
        cli_print_usage(f, cmd);
        fprintf(f, "\n%s\n", cmd->description);
        fputs("\nOptions:\n", f);
        cli_print_options(f, cmd->options, true);
        /* The global options in brief, from their table, wrapped before 90 columns. */
        int col = fprintf(f, "\nGlobal options (see ipwarm --help):") - 1;
        for (const struct cli_option *o = cli_global_options; o->name; o++) {
            if (strcmp(o->name, "help") == 0)
                continue;
            char name[40], item[64];
            if (o->short_name)
                snprintf(name, sizeof name, "-%c/--%s", o->short_name, o->name);
            else
                snprintf(name, sizeof name, "--%s", o->name);
            int n = snprintf(item, sizeof item, "%s%s%s", name, o->value ? " " : "",
                             o->value ? o->value : "");
            if (col + n + 2 > 90)
                col = fprintf(f, "\n") - 1;
            col += fprintf(f, "%s%s%s", col > 0 ? " " : "", item, o[1].name ? "," : ".\n");
        }
        return;
    }
    fputs("usage: ipwarm [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
          "\n"
          "Warms up a new sending IP address: sends to a seed list at a rate that grows per\n"
          "mailbox provider, backs off when a provider defers, and records every attempt.\n"
          "\n"
          "Commands:\n",
          f);
    for (const struct cli_command *c = cli_commands; c->name; c++) {
        char head[64];
        snprintf(head, sizeof head, "%s%s%s", c->name, c->args ? " " : "", c->args ? c->args : "");
        if (strlen(head) > 18)
            fprintf(f, "  %s\n  %-18s  %s\n", head, "", c->summary);
        else
            fprintf(f, "  %-18s  %s\n", head, c->summary);
    }
    fputs("\nGlobal options (before or after the command):\n", f);
    cli_print_options(f, cli_global_options, false);
    fputs("\n"
          "Run `ipwarm COMMAND --help` for the options of a command; ipwarm(1) and\n"
          "ipwarm-plan(5) tell more.\n"
          "\n"
          "Exit codes: 0 done; 1 a check failed; 64 usage; 65 bad data; 66 no input;\n"
          "69 service unavailable; 70 internal error; 71 out of memory;\n"
          "73 cannot create a file; 74 read/write error; 75 try again later (locked, DNS);\n"
          "78 invalid plan.\n",
          f);
}

void cli_version(FILE *f)
{
    fprintf(f, "ipwarm %s\n", IPWARM_VERSION);
    fprintf(f, "  %s\n", curl_version());
    fprintf(f, "  SQLite %s\n", sqlite3_libversion());
    fprintf(f, "  libyaml %s\n", yaml_get_version_string());
    fprintf(f, "  c-ares %s\n", ares_version(NULL));
    fprintf(f, "  %s\n", OpenSSL_version(OPENSSL_VERSION));
}
