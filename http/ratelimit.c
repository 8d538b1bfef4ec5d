/* ratelimit.c - token buckets in a sharded hash table with per-shard LRU
 * eviction, and the parser for the rate-limit configuration.
 *
 * Each of NSHARDS shards has its own mutex, chained hash table and LRU list,
 * so worker threads only contend when their keys land in the same shard. The
 * hash is SipHash-1-3 under a per-process random key: keys come from clients
 * (addresses, user ids), and a predictable hash would let one client pile
 * every bucket into one chain. */
#include "http/ratelimit.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSHARDS 64
#define SHARD_BITS 6     /* log2(NSHARDS): the shard is the hash's top bits */
#define MIN_SLOTS 16     /* initial chain heads per shard */
#define SWEEP_PER_TAKE 2 /* oldest buckets checked for fullness on each take */

typedef struct entry {
    struct entry *next;  /* next in this hash chain */
    struct entry *older; /* LRU neighbour toward the oldest */
    struct entry *newer; /* LRU neighbour toward the newest */
    uint64_t hash;       /* full hash of key */
    double tokens;       /* tokens at last_us, 0..burst */
    int64_t last_us;     /* when tokens was last brought up to date */
    double rate;         /* tokens per second, as of the last take */
    double burst;        /* bucket size, as of the last take */
    size_t keylen;       /* bytes in key */
    char key[];          /* the key, NUL-terminated */
} entry_t;

typedef struct {
    pthread_mutex_t lock;  /* guards everything below */
    entry_t **slots;       /* chain heads; nslots is a power of two */
    size_t nslots;         /* entries in slots */
    size_t count;          /* buckets held */
    size_t cap;            /* most buckets this shard may hold */
    entry_t *oldest;       /* LRU head: least recently taken from */
    entry_t *newest;       /* LRU tail */
    uint64_t evicted_idle; /* full buckets dropped */
    uint64_t evicted_cap;  /* non-full buckets dropped at the cap */
    char pad[64];          /* keeps neighbouring shards' locks off one cache line */
} shard_t;

struct ratelimit {
    uint64_t seed[2];        /* SipHash key */
    size_t max_entries;      /* the bound, as rounded to shards */
    shard_t shards[NSHARDS]; /* selected by the hash's top SHARD_BITS bits */
};

/* ---- SipHash-1-3 (Aumasson & Bernstein; the variant Rust's HashMap uses) -- */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = rotl(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = rotl(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = rotl(v2, 32);                                                                         \
    } while (0)

static uint64_t siphash13(const uint64_t k[2], const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k[0], v1 = 0x646f72616e646f6dULL ^ k[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ k[0], v3 = 0x7465646279746573ULL ^ k[1];
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = 0;
        for (int j = 7; j >= 0; j--)
            m = (m << 8) | in[i + (size_t)j];
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t j = 0; j < len % 8; j++)
        b |= (uint64_t)in[whole + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- buckets -------------------------------------------------------------- */

/* Tokens the bucket would hold at now (never more than burst). */
static double tokens_at(const entry_t *e, int64_t now_us)
{
    double t = e->tokens;
    if (now_us > e->last_us)
        t += (double)(now_us - e->last_us) * e->rate / 1e6;
    return t < e->burst ? t : e->burst;
}

static void lru_unlink(shard_t *s, entry_t *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    e->older = e->newer = NULL;
}

static void lru_push(shard_t *s, entry_t *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest)
        s->newest->newer = e;
    else
        s->oldest = e;
    s->newest = e;
}

static void evict(shard_t *s, entry_t *e, bool idle)
{
    entry_t **pp = &s->slots[e->hash & (s->nslots - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    lru_unlink(s, e);
    s->count--;
    if (idle)
        s->evicted_idle++;
    else
        s->evicted_cap++;
    free(e);
}

/* Doubles the chain heads while the shard holds more buckets than heads.
 * Failing to grow only makes chains longer, so it is not an error. */
static void maybe_grow(shard_t *s)
{
    if (s->count <= s->nslots || s->nslots >= s->cap)
        return;
    size_t n = s->nslots * 2;
    entry_t **slots = calloc(n, sizeof *slots);
    if (!slots)
        return;
    for (size_t i = 0; i < s->nslots; i++) {
        entry_t *e = s->slots[i];
        while (e) {
            entry_t *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->slots);
    s->slots = slots;
    s->nslots = n;
}

ratelimit_t *ratelimit_new(size_t max_entries)
{
    ratelimit_t *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    if (crypto_random(rl->seed, sizeof rl->seed) != 0) {
        /* No entropy (very early boot, seccomp): a clock-derived key still
         * differs per process, which is most of the protection. */
        rl->seed[0] = (uint64_t)clock_now_ms() * 0x9e3779b97f4a7c15ULL;
        rl->seed[1] = (uint64_t)clock_mono_us() * 0xbf58476d1ce4e5b9ULL ^ (uint64_t)(uintptr_t)rl;
    }
    if (max_entries == 0)
        max_entries = RATELIMIT_DEFAULT_ENTRIES;
    size_t per_shard = max_entries / NSHARDS;
    if (per_shard == 0)
        per_shard = 1;
    rl->max_entries = per_shard * NSHARDS;
    for (size_t i = 0; i < NSHARDS; i++) {
        shard_t *s = &rl->shards[i];
        s->cap = per_shard;
        s->nslots = MIN_SLOTS;
        s->slots = calloc(s->nslots, sizeof *s->slots);
        if (!s->slots || pthread_mutex_init(&s->lock, NULL) != 0) {
            free(s->slots);
            s->slots = NULL;
            for (size_t k = 0; k < i; k++) {
                pthread_mutex_destroy(&rl->shards[k].lock);
                free(rl->shards[k].slots);
            }
            free(rl);
            return NULL;
        }
    }
    return rl;
}

void ratelimit_destroy(ratelimit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ratelimit_t *rl = *self_p;
    for (size_t i = 0; i < NSHARDS; i++) {
        shard_t *s = &rl->shards[i];
        entry_t *e = s->oldest;
        while (e) {
            entry_t *next = e->newer;
            free(e);
            e = next;
        }
        free(s->slots);
        pthread_mutex_destroy(&s->lock);
    }
    free(rl);
    *self_p = NULL;
}

static long ceil_seconds(double s)
{
    if (s <= 0)
        return 0;
    double c = ceil(s);
    return c > 1e15 ? (long)1e15 : (long)c;
}

int ratelimit_take_at(ratelimit_t *rl, const char *key, double rate, double burst, int64_t now_us,
                      ratelimit_result_t *out)
{
    if (!rl || !key || !out || !isfinite(rate) || !isfinite(burst) || rate <= 0 || burst < 1)
        return FENTA_EINVAL;
    size_t keylen = strnlen(key, RATELIMIT_MAX_KEY + 1);
    if (keylen > RATELIMIT_MAX_KEY)
        return FENTA_EINVAL;
    uint64_t h = siphash13(rl->seed, (const unsigned char *)key, keylen);
    shard_t *s = &rl->shards[h >> (64 - SHARD_BITS)];

    pthread_mutex_lock(&s->lock);
    /* Drop the oldest buckets while they have refilled: they carry no state. */
    for (int i = 0; i < SWEEP_PER_TAKE && s->oldest; i++) {
        entry_t *o = s->oldest;
        if (tokens_at(o, now_us) < o->burst)
            break;
        evict(s, o, true);
    }
    entry_t *e = s->slots[h & (s->nslots - 1)];
    while (e && !(e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0))
        e = e->next;
    if (e) {
        e->rate = rate;
        e->burst = burst;
        e->tokens = tokens_at(e, now_us);
        if (now_us > e->last_us)
            e->last_us = now_us;
        lru_unlink(s, e);
        lru_push(s, e);
    } else {
        if (s->count >= s->cap) {
            entry_t *o = s->oldest;
            evict(s, o, tokens_at(o, now_us) >= o->burst);
        }
        e = malloc(sizeof *e + keylen + 1);
        if (!e) {
            pthread_mutex_unlock(&s->lock);
            return FENTA_ENOMEM;
        }
        *e = (entry_t){.hash = h,
                       .tokens = burst,
                       .last_us = now_us,
                       .rate = rate,
                       .burst = burst,
                       .keylen = keylen};
        memcpy(e->key, key, keylen + 1);
        size_t slot = h & (s->nslots - 1);
        e->next = s->slots[slot];
        s->slots[slot] = e;
        lru_push(s, e);
        s->count++;
        maybe_grow(s);
    }
    bool allowed = e->tokens >= 1.0;
    if (allowed)
        e->tokens -= 1.0;
    double tokens = e->tokens;
    pthread_mutex_unlock(&s->lock);

    out->allowed = allowed;
    out->limit = (long)burst;
    out->remaining = (long)floor(tokens);
    out->reset = ceil_seconds((burst - tokens) / rate);
    out->retry_after = 0;
    if (!allowed) {
        out->retry_after = ceil_seconds((1.0 - tokens) / rate);
        if (out->retry_after < 1)
            out->retry_after = 1;
    }
    return 0;
}

int ratelimit_take(ratelimit_t *rl, const char *key, double rate, double burst,
                   ratelimit_result_t *out)
{
    return ratelimit_take_at(rl, key, rate, burst, clock_mono_us(), out);
}

size_t ratelimit_sweep(ratelimit_t *rl, int64_t now_us)
{
    size_t dropped = 0;
    for (size_t i = 0; rl && i < NSHARDS; i++) {
        shard_t *s = &rl->shards[i];
        pthread_mutex_lock(&s->lock);
        entry_t *e = s->oldest;
        while (e) {
            entry_t *next = e->newer;
            if (tokens_at(e, now_us) >= e->burst) {
                evict(s, e, true);
                dropped++;
            }
            e = next;
        }
        pthread_mutex_unlock(&s->lock);
    }
    return dropped;
}

void ratelimit_stats(ratelimit_t *rl, ratelimit_stats_t *out)
{
    *out = (ratelimit_stats_t){.max_entries = rl ? rl->max_entries : 0};
    for (size_t i = 0; rl && i < NSHARDS; i++) {
        shard_t *s = &rl->shards[i];
        pthread_mutex_lock(&s->lock);
        out->entries += s->count;
        out->evicted_idle += s->evicted_idle;
        out->evicted_cap += s->evicted_cap;
        pthread_mutex_unlock(&s->lock);
    }
}

void ratelimit_result_merge(ratelimit_result_t *acc, const ratelimit_result_t *r)
{
    if (acc->allowed != r->allowed) {
        if (!r->allowed)
            *acc = *r;
        return;
    }
    if (!r->allowed) {
        if (r->retry_after > acc->retry_after)
            *acc = *r;
        return;
    }
    if (r->remaining < acc->remaining || (r->remaining == acc->remaining && r->reset > acc->reset))
        *acc = *r;
}

void ratelimit_headers(const ratelimit_result_t *r, ratelimit_headers_t *out)
{
    snprintf(out->limit, sizeof out->limit, "%ld", r->limit);
    snprintf(out->remaining, sizeof out->remaining, "%ld", r->remaining);
    snprintf(out->reset, sizeof out->reset, "%ld", r->reset);
    if (r->allowed)
        out->retry_after[0] = '\0';
    else
        snprintf(out->retry_after, sizeof out->retry_after, "%ld", r->retry_after);
}

/* ---- configuration -------------------------------------------------------- */

static int parse_limit(const json_t *v, const char *where, ratelimit_limit_t *out, char *errbuf,
                       size_t errlen)
{
    if (!json_is_object(v))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "%s: must be an object {\"rate\": ..., \"burst\": ...}", where);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value)
    {
        if (strcmp(key, "rate") != 0 && strcmp(key, "burst") != 0)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "%s: unknown member \"%s\" (expected rate, burst)", where, key);
    }
    const json_t *rate = json_object_get(v, "rate"), *burst = json_object_get(v, "burst");
    if (!rate || !burst)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%s: needs both rate and burst", where);
    double r = json_number_value(rate), b = json_number_value(burst);
    if (!json_is_number(rate) || !(r > 0) || !isfinite(r) || r > 1e9)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "%s.rate: must be a number of tokens per second > 0", where);
    if (!json_is_number(burst) || !(b >= 1) || b > 1e9 || b != floor(b))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%s.burst: must be a whole number >= 1",
                          where);
    *out = (ratelimit_limit_t){.rate = r, .burst = b};
    return 0;
}

/* "METHOD /path": an upper-case HTTP method, one space, a path starting
 * with "/" and holding no spaces or control characters. */
static bool route_ok(const char *route)
{
    static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};
    const char *sp = strchr(route, ' ');
    if (!sp)
        return false;
    bool known = false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i]) == (size_t)(sp - route) &&
            memcmp(route, methods[i], (size_t)(sp - route)) == 0)
            known = true;
    if (!known || sp[1] != '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)sp + 1; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

void ratelimit_config_destroy(ratelimit_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ratelimit_config_t *c = *self_p;
    for (size_t i = 0; i < c->nroutes; i++)
        free(c->routes[i].route);
    free(c->routes);
    free(c);
    *self_p = NULL;
}

static int parse_config(const json_t *config, ratelimit_config_t *c, char *errbuf, size_t errlen)
{
    if (!json_is_object(config))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "rate limits: must be an object");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)config, key, value)
    {
        int rc = 0;
        if (strcmp(key, "ip") == 0) {
            rc = parse_limit(value, "ip", &c->ip, errbuf, errlen);
            c->has_ip = rc == 0;
        } else if (strcmp(key, "user") == 0) {
            rc = parse_limit(value, "user", &c->user, errbuf, errlen);
            c->has_user = rc == 0;
        } else if (strcmp(key, "max_keys") == 0) {
            json_int_t n = json_integer_value(value);
            if (!json_is_integer(value) || n < 1 || n > 1000000000)
                return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                                  "max_keys: must be a whole number >= 1");
            c->max_entries = (size_t)n;
        } else if (strcmp(key, "routes") == 0) {
            if (!json_is_object(value))
                return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                                  "routes: must be an object of \"METHOD /path\": "
                                  "{\"rate\": ..., \"burst\": ...}");
            c->routes = calloc(json_object_size(value) + 1, sizeof *c->routes);
            if (!c->routes)
                return FENTA_ENOMEM;
            const char *route;
            json_t *limit;
            json_object_foreach(value, route, limit)
            {
                char where[320];
                snprintf(where, sizeof where, "routes[\"%.256s\"]", route);
                if (!route_ok(route))
                    return fenta_fail(
                        errbuf, errlen, FENTA_EINVAL,
                        "%s: a route is \"METHOD /path\" (GET, HEAD, POST, PUT, PATCH, "
                        "DELETE or OPTIONS, one space, a path from \"/\")",
                        where);
                ratelimit_route_t *r = &c->routes[c->nroutes];
                if ((rc = parse_limit(limit, where, &r->limit, errbuf, errlen)) < 0)
                    return rc;
                if (!(r->route = strdup(route)))
                    return FENTA_ENOMEM;
                c->nroutes++;
            }
        } else {
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "unknown member \"%s\" (expected ip, user, routes, max_keys)", key);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ratelimit_config_parse(const json_t *config, ratelimit_config_t **out, char *errbuf,
                           size_t errlen)
{
    *out = NULL;
    if (errbuf && errlen)
        errbuf[0] = '\0';
    ratelimit_config_t *c = calloc(1, sizeof *c);
    if (!c)
        return FENTA_ENOMEM;
    int rc = parse_config(config, c, errbuf, errlen);
    if (rc < 0) {
        if (rc == FENTA_ENOMEM)
            fenta_fail(errbuf, errlen, FENTA_EINVAL, "out of memory");
        ratelimit_config_destroy(&c);
        return rc;
    }
    *out = c;
    return 0;
}

const ratelimit_limit_t *ratelimit_config_route(const ratelimit_config_t *cfg, const char *route)
{
    for (size_t i = 0; cfg && route && i < cfg->nroutes; i++)
        if (strcmp(cfg->routes[i].route, route) == 0)
            return &cfg->routes[i].limit;
    return NULL;
}
