/*
 * stats: deferral statistics of a campaign, from the store's summary counters.
 *
 * `stats`, `report` and `metrics` read the per provider/UTC hour counters (summary_hourly) and
 * reply counters (summary_reasons) that the store keeps with every outcome, never the attempts
 * themselves, so their cost follows the number of provider-hours in the range, not the number
 * of attempts. Hours are grouped into periods of the plan's time zone: an hour belongs to the
 * local day (or is the local hour) in which it starts. Replies are grouped by code, enhanced
 * code (RFC 3463) and text with its variable parts masked (stats_mask_reason), so that one
 * throttling reply that carried a thousand different IP addresses and queue IDs is one row.
 *
 * The outputs: an aligned table for people (80 columns), CSV (RFC 4180: a header row, CRLF line
 * ends, fields with commas, quotes or line breaks quoted) and JSON (RFC 8259; cli.md's keys).
 */
#ifndef IPWARM_STATS_H
#define IPWARM_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ipwarm/err.h"
#include "ipwarm/stats_mask.h"

struct store;

/* How many reasons each row keeps, most frequent first. */
#define STATS_TOP_REASONS 5

/* STATS_BY_IP: one row per source IP and provider over the whole range (period "all"),
 * counted from the attempts table (stats_ip.c), which records the IP of each attempt. */
enum stats_by { STATS_BY_DAY = 0, STATS_BY_HOUR, STATS_BY_IP };

struct stats_reason {
    char *outcome;  /* deferred, bounced, failed or blocked */
    int code;       /* 0 = no SMTP reply */
    char *enhanced; /* NULL = none */
    char *text;     /* masked */
    int64_t count;
};

/*
 * Adds count of (outcome, code, enhanced, text) to the reason list *list of *n: to the entry
 * with the same four, else as a new entry (strings copied; NULL text is ""). The one merge of
 * reply counters, used by stats_collect() per row and by the report per provider. Returns false
 * when out of memory (the list stays valid for stats_reasons_free()).
 */
bool stats_reason_add(struct stats_reason **list, size_t *n, const char *outcome, int code,
                      const char *enhanced, const char *text, int64_t count);
/*
 * Sorts the most frequent first; ties by reply code (0, no reply, first), then enhanced code,
 * outcome and masked text (absent before present, then byte order), so that the order never
 * depends on the store's.
 */
void stats_reasons_sort(struct stats_reason *list, size_t n);
void stats_reasons_free(struct stats_reason *list, size_t n);

/* One provider in one period (and, by IP, from one source IP). */
struct stats_row {
    char period[40];  /* "2026-12-01" (day), "2026-12-01T09:00:00+09:00" (hour) or "all" (ip) */
    int64_t start_ms; /* the period's first instant (UTC ms) */
    int64_t end_ms;   /* the next period's first instant */
    char *provider;
    char *ip; /* by IP: the source IP ("" when the attempts recorded none); else NULL */
    int64_t attempts, delivered, deferred, bounced, failed, expired, unknown;
    int64_t blocked;              /* refused because of the sender (verdict.h), not the recipient */
    int64_t late_bounces;         /* of bounced: bounces read from the mailbox after a 250 */
    int64_t complaints;           /* complaint reports about this period's messages */
    struct stats_reason *reasons; /* most frequent first, at most STATS_TOP_REASONS */
    size_t n_reasons;
};

/* A rule that acted in the range: how often, and the last time. */
struct stats_rule {
    char *provider;
    char *rule;
    char *action;
    int64_t count;
    int64_t last_ms;
};

/* A pause or suspension (automatic or manual) that started in the range. */
struct stats_pause {
    char *provider;
    char *rule;
    char *action; /* pause or suspend */
    char *reason; /* NULL = none recorded */
    int64_t started_ms;
    int64_t expires_ms; /* 0 = until resumed */
    bool manual;
};

struct stats_query {
    enum stats_by by;
    const char *zone;     /* the plan's IANA zone; NULL = UTC */
    const char *provider; /* NULL = every provider */
    int64_t since_ms;     /* hours starting at or after; 0 = unbounded */
    int64_t until_ms;     /* hours starting before; 0 = unbounded */
};

struct stats_result {
    bool by_ip;             /* the rows are per source IP (STATS_BY_IP) */
    struct stats_row *rows; /* by period, then provider name; by IP: by IP, then provider */
    size_t n_rows;
    struct stats_rule *rules; /* by provider, then count (most first) */
    size_t n_rules;
    struct stats_pause *pauses; /* oldest first */
    size_t n_pauses;
};

/*
 * Fills out from the store for q: one row per period and provider that has counts. Returns
 * IPW_OK; IPW_ECONFIG for an unknown zone; IPW_ENOMEM; or a store status. out is empty (and
 * needs no free) on failure. Rows by IP (STATS_BY_IP) come from stats_ip_collect() instead
 * (IPW_EUSAGE here).
 */
ipw_status stats_collect(struct store *st, const struct stats_query *q, struct stats_result *out,
                         struct err *e);
void stats_result_free(struct stats_result *r);

/*
 * What every kind of rows ends with: each row's reasons sorted and cut to STATS_TOP_REASONS, and
 * the rule actions of the range. Frees out on failure.
 */
ipw_status stats_finish(struct store *st, const struct stats_query *q, struct stats_result *out,
                        struct err *e);

/*
 * stats_collect() for STATS_BY_IP: the rows of stats_ip_rows(), then stats_finish(). The
 * summary counters have no IP, so these rows come from the attempts (stats_ip.c).
 */
ipw_status stats_ip_collect(struct store *st, const struct stats_query *q, struct stats_result *out,
                            struct err *e);

/*
 * The rows of STATS_BY_IP (stats_ip_collect calls it): one per source IP and provider with
 * attempts in [q->since_ms, q->until_ms), from the attempts table (stats_ip.c), sorted by IP
 * (numerically) then provider; reasons are all of them, unsorted. Returns IPW_OK, IPW_ENOMEM,
 * IPW_EIO when the store cannot be read.
 */
ipw_status stats_ip_rows(struct store *st, const struct stats_query *q, struct stats_result *out,
                         struct err *e);

/*
 * The period of the UTC hour hour_ms in zone: its label and its [start, end) in UTC ms. For
 * days, the local date on which the hour starts, and that date's first instant and the next
 * date's; for hours, the hour itself labelled with its local time and offset. The cache lets a
 * caller walking hours in order ask the time zone database once per local day; zero it first.
 * Returns IPW_OK, IPW_ECONFIG for an unknown zone.
 */
struct stats_day_cache {
    char zone[128];
    char date[16];
    int64_t start_ms, end_ms;
    int offset_start, offset_end; /* seconds east of UTC at the day's first and last instant */
    bool valid;
};
ipw_status stats_period_of(int64_t hour_ms, enum stats_by by, const char *zone,
                           struct stats_day_cache *cache, char label[40], int64_t *start_ms,
                           int64_t *end_ms, struct err *e);

/* The deferral and bounce rates of a row: deferred / attempts and bounced / attempts, 0..1
 * (0 when there were no attempts). */
double stats_deferral_rate(const struct stats_row *r);
double stats_bounce_rate(const struct stats_row *r);
/* complaints / delivered, 0..1 (0 when nothing was delivered): the rate Gmail and Yahoo judge. */
double stats_complaint_rate(const struct stats_row *r);

/*
 * Writers. Each returns IPW_OK, or IPW_EIO when writing to f fails. The table fits 80 columns
 * for counts below a million (columns widen beyond); reasons are cut at 80 columns.
 */
ipw_status stats_write_table(const struct stats_result *r, const char *zone, FILE *f,
                             struct err *e);
ipw_status stats_write_csv(const struct stats_result *r, FILE *f, struct err *e);
ipw_status stats_write_json(const struct stats_result *r, const struct stats_query *q, FILE *f,
                            bool pretty, struct err *e);

/*
 * Opens the state file at path for reading. When it does not exist, *out is an empty
 * in-memory store instead (nothing recorded yet is an empty answer, and a read command never
 * creates the file) and *missing (may be NULL) is set. Returns what store_open_opts() returns.
 */
ipw_status stats_store_open(const char *path, struct store **out, bool *missing, struct err *e);

#endif
