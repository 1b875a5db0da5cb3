/*
 * simulate_pool: the projection of a pool of source IPs, each IP at each provider on its own
 * ramp (see simulate_pool.h). Dates are local "YYYY-MM-DD" strings of the plan's zone, which
 * sort as they read, so the days of two projections are matched by comparing the dates.
 */
#include "ipwarm/simulate_pool.h"

#include <stdlib.h>
#include <string.h>

bool simulate_pool_active(const struct plan *p)
{
    if (p->n_source_ips > 1)
        return true;
    for (size_t i = 0; p->source_start_dates && i < p->n_source_ips; i++)
        if (p->source_start_dates[i])
            return true;
    return false;
}

/* The IP's start date, or NULL without one. */
static const char *simulate_pool_start(const struct plan *p, size_t ip)
{
    return p->source_start_dates ? p->source_start_dates[ip] : NULL;
}

ipw_status simulate_pool_project(const struct plan *p, size_t provider, const char *start_date,
                                 int days, struct ramp_sim_day *provider_days,
                                 struct simulate_pool_ip *out, struct err *e)
{
    if (days <= 0)
        return IPW_OK;
    struct ramp_sim_day *own = calloc((size_t)days, sizeof *own);
    if (!own)
        return err_set(e, IPW_ENOMEM, "out of memory");
    ipw_status r = IPW_OK;
    for (size_t k = 0; r == IPW_OK && k < p->n_source_ips; k++) {
        /* An IP that joins later begins its own sending day 1 on its date (or the first date
         * after it with a window); one whose date has passed is projected from the start. */
        const char *from = simulate_pool_start(p, k);
        if (!from || strcmp(from, start_date) < 0)
            from = start_date;
        memset(own, 0, (size_t)days * sizeof *own);
        r = ramp_simulate(p, provider, from, days, own, e);
        int j = 0;
        for (int d = 0; r == IPW_OK && d < days; d++) {
            struct simulate_pool_ip *o = &out[k * (size_t)days + (size_t)d];
            memset(o, 0, sizeof *o);
            const char *date = provider_days[d].date;
            o->joined = strcmp(date, from) >= 0;
            while (j < days && strcmp(own[j].date, date) < 0)
                j++;
            if (!o->joined || j >= days || strcmp(own[j].date, date) != 0)
                continue;
            o->stage = own[j].stage;
            o->rate_per_min = own[j].rate_per_min;
            o->cap = own[j].cap;
            o->planned = own[j].planned;
            o->at_max = own[j].at_max;
        }
    }
    free(own);
    if (r != IPW_OK)
        return r;
    /* The provider's day is the pool's: what it receives from the IPs that send. */
    for (int d = 0; d < days; d++) {
        struct ramp_sim_day *s = &provider_days[d];
        double rate = 0;
        int64_t cap = 0, planned = 0;
        int stage = 0;
        bool any = false, all_max = true;
        for (size_t k = 0; k < p->n_source_ips; k++) {
            const struct simulate_pool_ip *o = &out[k * (size_t)days + (size_t)d];
            /* The pool is at its max once every IP is: one that has not joined is not. */
            all_max = all_max && o->joined && o->at_max;
            if (!o->joined || o->planned == 0)
                continue;
            any = true;
            rate += o->rate_per_min;
            planned += o->planned;
            cap = cap < 0 || o->cap < 0 ? -1 : cap + o->cap;
            if (o->stage > stage)
                stage = o->stage;
        }
        s->rate_per_min = rate;
        s->planned = planned;
        s->cap = any ? cap : 0;
        s->stage = stage;
        s->at_max = any && all_max;
    }
    return IPW_OK;
}

void simulate_pool_json(struct json *j, const struct plan *p, const struct simulate_pool_ip *ips,
                        int d, int days)
{
    json_key(j, "ips");
    json_array_begin(j);
    for (size_t k = 0; k < p->n_source_ips; k++) {
        const struct simulate_pool_ip *o = &ips[k * (size_t)days + (size_t)d];
        json_object_begin(j);
        json_kv_string(j, "ip", p->source_ips[k]);
        json_kv_double(j, "rate_per_min", o->rate_per_min);
        json_kv_int_or_null(j, "cap", o->cap, o->cap >= 0);
        json_kv_int(j, "planned", o->planned);
        json_kv_bool(j, "joined", o->joined);
        json_kv_int(j, "stage", o->stage);
        json_kv_string(j, "start", simulate_pool_start(p, k));
        json_object_end(j);
    }
    json_array_end(j);
}

void simulate_pool_human(FILE *f, const struct plan *p, const struct simulate_pool_ip *ips, int d,
                         int days)
{
    for (size_t k = 0; k < p->n_source_ips; k++) {
        const struct simulate_pool_ip *o = &ips[k * (size_t)days + (size_t)d];
        /* Under the provider column, two spaces in: the columns of the provider's row. */
        fprintf(f, "%4s  %-10s    %-12s", "", "", p->source_ips[k]);
        if (!o->joined) {
            fprintf(f, " joins %s\n", simulate_pool_start(p, k));
            continue;
        }
        char cap[24] = "-";
        if (o->cap >= 0)
            snprintf(cap, sizeof cap, "%lld", (long long)o->cap);
        fprintf(f, " %8.1f %8s %10lld\n", o->rate_per_min, cap, (long long)o->planned);
    }
}

void simulate_pool_human_intro(FILE *f, const struct plan *p)
{
    fprintf(f,
            "A pool of %zu IP%s, each projected on its own at each provider (a provider's row is\n"
            "the pool's sum)",
            p->n_source_ips, p->n_source_ips == 1 ? "" : "s");
    const char *sep = "; ";
    for (size_t k = 0; k < p->n_source_ips; k++) {
        const char *start = simulate_pool_start(p, k);
        if (!start)
            continue;
        fprintf(f, "%s%s joins on %s at the first stage", sep, p->source_ips[k], start);
        sep = ", ";
    }
    fputs(".\n\n", f);
}
