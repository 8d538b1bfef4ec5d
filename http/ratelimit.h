/* ratelimit.h - token buckets keyed by string, shared by all worker threads,
 * and the rate-limit configuration read from data.
 *
 * A bucket holds up to burst tokens and gains rate tokens per second; a
 * request takes one or is refused. Keys are whatever the caller composes
 * ("ip:1.2.3.4", "user:<id>", "route:POST /v1/auth/login|ip:1.2.3.4"); the
 * rate and burst come with every take, so a configuration reload applies on
 * the next request.
 *
 * Memory is bounded: a bucket that has refilled to full is indistinguishable
 * from a missing one, so idle full buckets are dropped as they are met (and
 * all at once by ratelimit_sweep); past max_entries the least recently used
 * bucket is dropped, which hands that key a fresh, full bucket - the price
 * of the bound, visible in ratelimit_stats. */
#ifndef FENTA_RATELIMIT_H
#define FENTA_RATELIMIT_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit_t;

/* What a take decided, enough for the response headers. */
typedef struct {
    bool allowed;     /* the request may proceed (a token was taken) */
    long limit;       /* the burst: RateLimit-Limit */
    long remaining;   /* whole tokens left after this take: RateLimit-Remaining */
    long reset;       /* seconds until the bucket is full again, rounded up: RateLimit-Reset */
    long retry_after; /* seconds until a token is available, rounded up, >= 1 when refused;
                         0 when allowed: Retry-After */
} ratelimit_result_t;

/* Default max_entries when 0 is given. */
#define RATELIMIT_DEFAULT_ENTRIES 100000
/* Keys longer than this are refused (FENTA_EINVAL). */
#define RATELIMIT_MAX_KEY 1024

/* A limiter holding at most max_entries buckets (0: the default). The bound
 * is split evenly over 64 internal shards, so it is rounded down to a
 * multiple of 64 (and is at least 64); ratelimit_stats reports the value in
 * force. NULL on failure. */
ratelimit_t *ratelimit_new(size_t max_entries);
/* Frees the limiter and NULLs *self_p; accepts NULL. */
void ratelimit_destroy(ratelimit_t **self_p);

/* Takes one token from key's bucket (rate tokens/s, up to burst) at
 * now_us (microseconds, clock_mono_us's scale). Time that runs backwards
 * (threads that read the clock in one order and lock in another) counts as
 * no time. 0 and *out filled, or FENTA_EINVAL (key NULL or longer than
 * RATELIMIT_MAX_KEY, rate <= 0, burst < 1, non-finite values) or
 * FENTA_ENOMEM; a refusal is 0 with out->allowed false. Thread-safe. */
int ratelimit_take_at(ratelimit_t *rl, const char *key, double rate, double burst, int64_t now_us,
                      ratelimit_result_t *out);
/* ratelimit_take_at at clock_mono_us(). */
int ratelimit_take(ratelimit_t *rl, const char *key, double rate, double burst,
                   ratelimit_result_t *out);

/* Drops every bucket that is full at now_us; returns how many. For a
 * periodic timer; takes never need it for correctness. */
size_t ratelimit_sweep(ratelimit_t *rl, int64_t now_us);

typedef struct {
    size_t entries;        /* buckets held now */
    size_t max_entries;    /* the bound */
    uint64_t evicted_idle; /* full buckets dropped (harmless) */
    uint64_t evicted_cap; /* buckets dropped at the bound while not full (key got a fresh bucket) */
} ratelimit_stats_t;
void ratelimit_stats(ratelimit_t *rl, ratelimit_stats_t *out);

/* Folds r into acc when one request passes several limits (IP, user,
 * route): refused if either is, and the headers then describe the binding
 * limit (the refusal with the longest wait, else the least remaining). */
void ratelimit_result_merge(ratelimit_result_t *acc, const ratelimit_result_t *r);

/* Header values as decimal text; retry_after is "" when the request was
 * allowed (send no Retry-After then). */
typedef struct {
    char limit[24];       /* RateLimit-Limit */
    char remaining[24];   /* RateLimit-Remaining */
    char reset[24];       /* RateLimit-Reset */
    char retry_after[24]; /* Retry-After, or "" */
} ratelimit_headers_t;
void ratelimit_headers(const ratelimit_result_t *r, ratelimit_headers_t *out);

/* ---- configuration -------------------------------------------------------- */

/* One limit: rate > 0 tokens per second, burst >= 1 tokens. */
typedef struct {
    double rate;  /* tokens per second */
    double burst; /* bucket size (a whole number) */
} ratelimit_limit_t;

typedef struct {
    char *route;             /* "METHOD /path" as declared in the route table */
    ratelimit_limit_t limit; /* its limit */
} ratelimit_route_t;

/* The limits, as read from the config file. A limit that is absent is off. */
typedef struct {
    bool has_ip;               /* ip is set */
    ratelimit_limit_t ip;      /* per client address */
    bool has_user;             /* user is set */
    ratelimit_limit_t user;    /* per authenticated user */
    ratelimit_route_t *routes; /* per route (and client address) */
    size_t nroutes;            /* entries in routes */
    size_t max_entries;        /* "max_keys", or 0 for the default */
} ratelimit_config_t;

/* Parses {"ip": {"rate": 20, "burst": 40}, "user": {...},
 *         "routes": {"POST /v1/auth/login": {"rate": 0.2, "burst": 5}},
 *         "max_keys": 100000}
 * (every member optional; unknown members are errors, so a typo is never a
 * silently missing limit). 0 and a new config in *out (the caller's; free
 * with ratelimit_config_destroy), or FENTA_EINVAL with a message naming the
 * member in errbuf, or FENTA_ENOMEM. */
int ratelimit_config_parse(const json_t *config, ratelimit_config_t **out, char *errbuf,
                           size_t errlen);
/* Frees the config and NULLs *self_p; accepts NULL. */
void ratelimit_config_destroy(ratelimit_config_t **self_p);
/* The limit declared for route ("POST /v1/auth/login"), or NULL; borrowed. */
const ratelimit_limit_t *ratelimit_config_route(const ratelimit_config_t *cfg, const char *route);

#endif
