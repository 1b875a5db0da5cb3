/*
 * cmd_dkim_keygen: `ipwarm dkim keygen --selector S --domain D [--type rsa|ed25519] [-o FILE]`.
 *
 * Makes a DKIM key (RSA 2048 bits by default, or Ed25519 per RFC 8463), writes it as PKCS#8
 * PEM with mode 0600 to FILE (default S.D.pem, never overwritten: exit 73), and prints the TXT
 * record to publish at S._domainkey.D (RFC 6376 3.6.1) as one zone-file line whose
 * character-strings are at most 255 octets (RFC 1035 3.3):
 *
 *     s2026._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; " "p=MIIB..." "..." )
 *
 * With --json: {"selector", "domain", "type", "key_file", "name", "record", "strings"}, where
 * name has no final dot and record is the strings joined.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipwarm/cli.h"
#include "ipwarm/cmd.h"
#include "ipwarm/dkim.h"
#include "ipwarm/json.h"

ipw_status cmd_dkim_keygen(struct cli_ctx *ctx, const struct cli_args *args, struct err *e)
{
    const char *selector = cli_args_get(args, "selector");
    const char *domain = cli_args_get(args, "domain");
    const char *type_word = cli_args_get(args, "type");
    enum dkim_key_type type =
        type_word && strcmp(type_word, "ed25519") == 0 ? DKIM_ED25519 : DKIM_RSA;
    /* A name with a trailing dot is written without it in the file name and the JSON. */
    size_t dl = strlen(domain);
    while (dl > 0 && domain[dl - 1] == '.')
        dl--;
    if (dl == 0)
        return err_set(e, IPW_EUSAGE, "dkim keygen: --domain is empty");

    char *path = NULL, *name = NULL, *txt = NULL;
    char **strings = NULL;
    size_t n_strings = 0;
    struct dkim_key *key = NULL;
    ipw_status s = IPW_OK;

    const char *out = cli_args_get(args, "output");
    if (!out) {
        size_t n = strlen(selector) + dl + 6;
        path = malloc(n);
        if (!path)
            return err_set(e, IPW_ENOMEM, "out of memory");
        snprintf(path, n, "%s.%.*s.pem", selector, (int)dl, domain);
        out = path;
    }
    size_t nn = strlen(selector) + dl + 13;
    name = malloc(nn);
    if (!name) {
        s = err_set(e, IPW_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(name, nn, "%s._domainkey.%.*s", selector, (int)dl, domain);

    s = dkim_key_generate(type, &key, e);
    if (s)
        goto done;
    s = dkim_record(key, &txt, e);
    if (s)
        goto done;
    s = dkim_record_split(txt, &strings, &n_strings, e);
    if (s)
        goto done;
    /* The key file last: nothing is left on disk when an earlier step failed. */
    s = dkim_key_write(key, out, e);
    if (s)
        goto done;
    cli_info(ctx, "wrote the %s private key to %s (mode 0600); publish the record below",
             dkim_key_type_name(type), out);

    if (ctx->json) {
        struct json j;
        json_init(&j, ctx->out, true);
        json_object_begin(&j);
        json_kv_string(&j, "selector", selector);
        json_key(&j, "domain");
        json_string_n(&j, domain, dl);
        json_kv_string(&j, "type", dkim_key_type_name(type));
        json_kv_string(&j, "key_file", out);
        json_kv_string(&j, "name", name);
        json_kv_string(&j, "record", txt);
        json_key(&j, "strings");
        json_array_begin(&j);
        for (size_t i = 0; i < n_strings; i++)
            json_string(&j, strings[i]);
        json_array_end(&j);
        json_object_end(&j);
        s = json_finish(&j, e);
    } else {
        fprintf(ctx->out, "%s. IN TXT (", name);
        /* The record holds only base64, letters, digits, '=', ';' and spaces: nothing to
         * escape inside the quotes. */
        for (size_t i = 0; i < n_strings; i++)
            fprintf(ctx->out, " \"%s\"", strings[i]);
        fprintf(ctx->out, " )\n");
        if (fflush(ctx->out) != 0 || ferror(ctx->out))
            s = err_set(e, IPW_EIO, "dkim keygen: cannot write the record to stdout");
    }
done:
    dkim_strings_free(strings, n_strings);
    dkim_key_free(key);
    free(txt);
    free(name);
    free(path);
    return s;
}
