/*
 * cmd_mx: `ipwarm mx DOMAIN...` shows where mail for each domain goes and which provider of
 * the plan that is (RFC 5321 5.1 MX and implicit MX, RFC 7505 null MX).
 *
 * Every domain is resolved at once (dns_mx_resolve), so a list of thousands takes about as long
 * as one slow domain. The plan is optional: without -p, $IPWARM_PLAN or ./ipwarm.yaml the
 * shipped provider table names the providers. Whatever the statuses, the look-up completed and
 * the exit code is 0 (an unreachable server gives temperror, never "no MX"); 75 only when the
 * resolver cannot start at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/cmd.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/preflight.h"
#include "ipwarm/provider.h"

static void cmd_mx_human(FILE *f, const struct plan *p, const struct dns_mx_result *r)
{
    const char *prov = p->providers[provider_for_mx(p, r)].name;
    fprintf(f, "%s  %s  provider %s", r->domain, dns_mx_status_name(r->status), prov);
    if (r->status == DNS_MX_TEMPERROR || r->status == DNS_MX_NXDOMAIN)
        fprintf(f, " (%s: %s)", r->detail, dns_status_name(r->cause));
    else if (r->status != DNS_MX_OK)
        fprintf(f, " (%s)", r->detail);
    fputc('\n', f);
    for (size_t h = 0; h < r->n_hosts; h++) {
        const struct dns_mx_host *host = &r->hosts[h];
        fprintf(f, "    %5u %s", host->preference, host->host);
        for (size_t a = 0; a < host->n_addresses; a++)
            fprintf(f, "%s%s", a ? ", " : "  ", host->addresses[a]);
        if (host->n_addresses == 0)
            fprintf(f, "  (no address: A %s, AAAA %s)", dns_status_name(host->a_status),
                    dns_status_name(host->aaaa_status));
        fputc('\n', f);
    }
}

static void cmd_mx_json(struct json *j, const struct plan *p, const struct dns_mx_result *r)
{
    json_object_begin(j);
    json_kv_string(j, "domain", r->domain);
    json_kv_string(j, "status", dns_mx_status_name(r->status));
    json_kv_string(j, "provider", p->providers[provider_for_mx(p, r)].name);
    json_kv_string(j, "detail", r->detail);
    json_key(j, "hosts");
    json_array_begin(j);
    for (size_t h = 0; h < r->n_hosts; h++) {
        const struct dns_mx_host *host = &r->hosts[h];
        json_object_begin(j);
        json_kv_int(j, "preference", host->preference);
        json_kv_string(j, "host", host->host);
        json_key(j, "addresses");
        json_array_begin(j);
        for (size_t a = 0; a < host->n_addresses; a++)
            json_string(j, host->addresses[a]);
        json_array_end(j);
        json_object_end(j);
    }
    json_array_end(j);
    json_object_end(j);
}

ipw_status cmd_mx(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct plan *p = NULL;
    struct dns *dns = NULL;
    struct dns_mx_result *res = NULL;
    size_t n = (size_t)args->argc;
    ipw_status s = cli_load_plan_or_builtin(ctx, &p, "using the shipped provider table", e);
    if (s != IPW_OK)
        return s;
    s = cli_dns_open_lookup(ctx, p, &dns, e);
    if (s != IPW_OK)
        goto done;
    res = calloc(n + 1, sizeof *res);
    if (!res) {
        s = err_set(e, IPW_ENOMEM, "mx: out of memory");
        goto done;
    }
    s = dns_mx_resolve(dns, (const char *const *)args->argv, n, res, e);
    if (s != IPW_OK) {
        free(res);
        res = NULL;
        goto done;
    }
    if (ctx->json) {
        struct json j;
        json_init(&j, ctx->out, true);
        json_array_begin(&j);
        for (size_t i = 0; i < n; i++)
            cmd_mx_json(&j, p, &res[i]);
        json_array_end(&j);
        s = json_finish(&j, e);
    } else {
        for (size_t i = 0; i < n; i++)
            cmd_mx_human(ctx->out, p, &res[i]);
        if (fflush(ctx->out) != 0)
            s = err_set(e, IPW_EIO, "mx: cannot write the output");
    }
done:
    if (res)
        for (size_t i = 0; i < n; i++)
            dns_mx_result_clear(&res[i]);
    free(res);
    dns_free(dns);
    plan_free(p);
    return s;
}
