/*
 * cmd_dnsbl: `ipwarm dnsbl --ip IP [--zone ZONE]...` looks an address up in DNS block lists
 * (RFC 5782), every zone at once, and says for each: listed (with the answers and the TXT
 * reason), not listed, or could not check (the list refused the query with a 127.255.255.x
 * answer, a timeout, a server failure). The zones are the --zone options, else the plan's
 * preflight.dnsbl, else (no plan file) the plan's defaults. Exit 0 whatever the answers (an
 * unreachable server is "could not check"); 75 only when the resolver cannot start at all.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ipwarm/cli.h"
#include "ipwarm/cmd.h"
#include "ipwarm/dnsbl.h"
#include "ipwarm/json.h"
#include "ipwarm/plan.h"
#include "ipwarm/preflight.h"

static void cmd_dnsbl_human(FILE *f, const struct dnsbl_result *r)
{
    for (size_t i = 0; i < r->n_zones; i++) {
        const struct dnsbl_zone_result *z = &r->zones[i];
        if (z->listed) {
            fprintf(f, "%s  listed", z->zone);
            for (size_t a = 0; a < z->n_answers; a++)
                fprintf(f, "%s%s", a ? ", " : "  ", z->answers[a]);
            if (z->txt)
                fprintf(f, "  %s", z->txt);
        } else if (z->error) {
            fprintf(f, "%s  could not check (%s)", z->zone, z->error);
            for (size_t a = 0; a < z->n_answers; a++)
                fprintf(f, "%s%s", a ? ", " : "  ", z->answers[a]);
        } else {
            fprintf(f, "%s  not listed", z->zone);
        }
        fputc('\n', f);
    }
    fprintf(f, "%s: %s\n", r->ip,
            r->listed            ? "listed"
            : r->n_unchecked > 0 ? "not listed where checked; some lists could not be checked"
                                 : "not listed");
}

static void cmd_dnsbl_json(struct json *j, const struct dnsbl_result *r)
{
    json_object_begin(j);
    json_kv_string(j, "ip", r->ip);
    json_kv_bool(j, "listed", r->listed);
    json_key(j, "zones");
    json_array_begin(j);
    for (size_t i = 0; i < r->n_zones; i++) {
        const struct dnsbl_zone_result *z = &r->zones[i];
        json_object_begin(j);
        json_kv_string(j, "zone", z->zone);
        json_kv_bool(j, "listed", z->listed);
        json_key(j, "answers");
        json_array_begin(j);
        for (size_t a = 0; a < z->n_answers; a++)
            json_string(j, z->answers[a]);
        json_array_end(j);
        json_kv_string(j, "txt", z->txt);
        json_kv_string(j, "error", z->error);
        json_object_end(j);
    }
    json_array_end(j);
    json_object_end(j);
}

ipw_status cmd_dnsbl(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    struct plan *p = NULL;
    struct dns *dns = NULL;
    const char *ip = cli_args_get(args, "ip");
    size_t nz = cli_args_count(args, "zone");
    ipw_status s =
        cli_load_plan_or_builtin(ctx, &p, nz == 0 ? "using the default block lists" : NULL, e);
    if (s != IPW_OK)
        return s;
    const char **zones = NULL;
    if (nz > 0) {
        zones = calloc(nz, sizeof *zones);
        if (!zones) {
            s = err_set(e, IPW_ENOMEM, "dnsbl: out of memory");
            goto done;
        }
        for (size_t i = 0; i < nz; i++)
            zones[i] = cli_args_get_nth(args, "zone", i);
    }
    if (nz == 0 && p->n_dnsbl_zones == 0) {
        s = err_set(e, IPW_EUSAGE, "dnsbl: no zones: give --zone or preflight.dnsbl in the plan");
        goto done;
    }
    s = cli_dns_open_lookup(ctx, p, &dns, e);
    if (s != IPW_OK)
        goto done;
    struct dnsbl_result r;
    s = dnsbl_lookup(dns, &ip, 1, nz ? zones : (const char *const *)p->dnsbl_zones,
                     nz ? nz : p->n_dnsbl_zones, &r, e);
    if (s != IPW_OK)
        goto done;
    if (ctx->json) {
        struct json j;
        json_init(&j, ctx->out, true);
        cmd_dnsbl_json(&j, &r);
        s = json_finish(&j, e);
    } else {
        cmd_dnsbl_human(ctx->out, &r);
        if (fflush(ctx->out) != 0)
            s = err_set(e, IPW_EIO, "dnsbl: cannot write the output");
    }
    dnsbl_result_clear(&r);
done:
    free(zones);
    dns_free(dns);
    plan_free(p);
    return s;
}
