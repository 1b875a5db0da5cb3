/*
 * cmd_spf: `ipwarm spf --ip IP --sender ADDR [--helo NAME]` (see ipwarm(1)), one RFC 7208
 * evaluation through spf_check() over the c-ares resolver, printed for people or as the
 * `spf` JSON document. It needs no plan: one is read only when given (-p, $IPWARM_PLAN) or
 * present as ./ipwarm.yaml, for source.helo and the DNS settings. Without --helo the HELO
 * name is the plan's source.helo, else the sender's domain (an SMTP client that says HELO
 * with its mail domain); the null sender then needs --helo or a plan, as it checks
 * postmaster@HELO. --helo takes what a client may send, address literals included. Every SPF
 * result, temperror and permerror included, exits 0: the lookup completed; a resolver that cannot
 * start exits 75.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/cmd.h"
#include "ipwarm/dns.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/spf.h"

/* A resolver on the --dns servers, else the plan's, else /etc/resolv.conf. */
static struct dns *cmd_spf_dns(const struct cli_ctx *ctx, const struct plan *p, struct err *e)
{
    struct dns_config cfg;
    cli_dns_config(ctx, p, &cfg);
    struct dns *dns = dns_new(&cfg, e);
    if (!dns && e->status == IPW_EUNAVAIL)
        err_prefix(e, IPW_ETEMP, "spf: the DNS resolver could not start: ");
    return dns;
}

static void cmd_spf_print(const struct cli_ctx *ctx, const struct spf_result *r)
{
    FILE *f = ctx->out;
    fprintf(f, "%s: %s", spf_result_name(r->result), r->explanation);
    /* A fail shows the domain's own words; say which term gave it too. */
    if (r->result == SPF_FAIL && r->mechanism[0])
        fprintf(f, " [%s in %s]", r->mechanism, r->domain);
    fprintf(f, " (%d DNS lookup%s", r->lookups, r->lookups == 1 ? "" : "s");
    if (r->void_lookups)
        fprintf(f, ", %d void", r->void_lookups);
    fputs(")\n", f);
}

static ipw_status cmd_spf_json(const struct cli_ctx *ctx, const struct spf_result *r,
                               const char *ip, const char *sender, const char *helo, struct err *e)
{
    struct json j;
    json_init(&j, ctx->out, true);
    json_object_begin(&j);
    json_kv_string(&j, "result", spf_result_name(r->result));
    json_kv_string(&j, "explanation", r->explanation);
    json_kv_int(&j, "lookups", r->lookups);
    json_kv_int(&j, "void_lookups", r->void_lookups);
    json_kv_string(&j, "mechanism", r->mechanism[0] ? r->mechanism : NULL);
    json_kv_string(&j, "domain", r->domain);
    json_kv_string(&j, "ip", ip);
    json_kv_string(&j, "sender", sender);
    json_kv_string(&j, "helo", helo);
    json_object_end(&j);
    return json_finish(&j, e);
}

ipw_status cmd_spf(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    const char *ip = cli_args_get(args, "ip");
    const char *sender = cli_args_get(args, "sender");
    const char *helo = cli_args_get(args, "helo");
    struct plan *p = NULL;
    struct dns *dns = NULL;
    struct spf_result r;
    ipw_status st;

    /* A client may say HELO with anything: a name, an address literal "[192.0.2.1]", a word.
     * RFC 7208 evaluates it all the same (the HELO identity of a literal is "none", %{h}
     * expands to it as sent); only control characters, which no SMTP line carries, are
     * refused. */
    for (const char *c = helo; c && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return err_set(e, IPW_EUSAGE, "spf: --helo: a control character at offset %d",
                           (int)(c - helo));
    if ((st = cli_load_plan_if_any(ctx, &p, e)) != IPW_OK)
        return st;
    if (!helo && p)
        helo = p->helo;
    if (!helo || !*helo) {
        const char *at = strrchr(sender, '@');
        helo = at ? at + 1 : sender;
        if (!*helo) {
            st = err_set(e, IPW_EUSAGE,
                         "spf: the null sender (--sender \"\") checks postmaster@HELO: give "
                         "--helo NAME (or a plan with source.helo)");
            goto done;
        }
    }
    if (!(dns = cmd_spf_dns(ctx, p, e))) {
        st = e->status;
        goto done;
    }
    if ((st = spf_check(dns, ip, sender, helo, &r, e)) != IPW_OK)
        goto done;
    if (ctx->json) {
        st = cmd_spf_json(ctx, &r, ip, sender, helo, e);
    } else {
        cmd_spf_print(ctx, &r);
        if (fflush(ctx->out) != 0 || ferror(ctx->out))
            st = err_set(e, IPW_EIO, "spf: cannot write the result to standard output");
    }
done:
    dns_free(dns);
    plan_free(p);
    return st;
}
