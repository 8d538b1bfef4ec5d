/* runtime_bench.c - measurements behind ops/bench/runtime. Each mode prints
 * one JSON object on stdout; the script runs each mode in its own process so
 * memory figures are not mixed.
 *
 *   throughput DIR ACTORS TOKENS HOPS  durable hops through ACTORS actors, 2 threads
 *   lmdb DIR BATCH MSGS                raw put+delete in store_write groups of BATCH
 *   jobs DIR JOBS CONCURRENCY          JOBS no-op messages sent in bulk, CONCURRENCY threads
 *   rss DIR ACTORS                     RSS idle, then after ACTORS idle actors */
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/runtime.h"
#include "runtime/store.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- hop latency samples ---- */
#define MAX_SAMPLES (1 << 22)
static float *samples;
static _Atomic size_t nsamples;
static _Atomic uint64_t handled;
static int nactors;
static int with_state; /* FENTA_BENCH_STATE=1: write state on every hop */

typedef struct {
    int64_t sent_us;  /* when the previous hop sent it */
    uint32_t left;    /* hops to go */
    uint32_t at;      /* actor index */
} token_t;

static int hop_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    token_t t;
    memcpy(&t, m->body, sizeof t);
    int64_t now = clock_mono_us();
    size_t i = atomic_fetch_add(&nsamples, 1);
    if (i < MAX_SAMPLES)
        samples[i] = (float)(now - t.sent_us) / 1000.0f;
    atomic_fetch_add(&handled, 1);
    /* Optionally a state write per message, as a stateful actor makes. The
     * headline figure leaves it out: the limit it is compared with is raw
     * put+delete, the two writes a message costs (its send and its ack). */
    if (with_state) {
        size_t len;
        const void *s = actor_state(ctx, &len);
        uint64_t n = 0;
        if (len == sizeof n)
            memcpy(&n, s, sizeof n);
        n++;
        actor_set_state(ctx, &n, sizeof n);
    }
    if (t.left == 0)
        return 0;
    t.left--;
    t.at = (t.at + 1) % (uint32_t)nactors;
    t.sent_us = clock_mono_us();
    char to[32];
    snprintf(to, sizeof to, "hop/%u", t.at);
    return actor_send(ctx, to, "hop", &t, sizeof t);
}

static int noop_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    (void)ctx, (void)m;
    atomic_fetch_add(&handled, 1);
    return 0;
}

static int spawn_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    int32_t base;
    memcpy(&base, m->body, sizeof base);
    for (int i = 0; i < 1000; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "idle/%d", base + i);
        if (actor_spawn(ctx, addr, NULL, NULL, 0))
            return actor_fail(ctx, "spawn failed");
    }
    return 0;
}

static const behaviour_t hop = {.kind = "hop", .on_message = hop_msg};
static const behaviour_t noop = {.kind = "job", .on_message = noop_msg};
static const behaviour_t spawner = {.kind = "spawner", .on_message = spawn_msg};
static const behaviour_t idle = {.kind = "idle", .on_message = noop_msg};

static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static runtime_t *open_rt(const char *dir, int threads, size_t resident)
{
    dispatcher_spec_t d[] = {{"default", threads}};
    int err = 0;
    runtime_t *rt = runtime_new(&(runtime_opts_t){.data_dir = dir, .dispatchers = d,
                                                  .ndispatchers = 1,
                                                  .max_resident_idle = resident},
                                &err);
    if (!rt) {
        fprintf(stderr, "bench: runtime_new: %s\n", fenta_strerror(err));
        exit(1);
    }
    return rt;
}

static int throughput(const char *dir, int actors, int tokens, int hops)
{
    nactors = actors;
    with_state = getenv("FENTA_BENCH_STATE") && atoi(getenv("FENTA_BENCH_STATE"));
    samples = malloc(sizeof(float) * MAX_SAMPLES);
    runtime_t *rt = open_rt(dir, 2, (size_t)actors * 2);
    runtime_register(rt, &hop);
    runtime_start(rt);
    for (int i = 0; i < actors; i++) {
        char a[32];
        snprintf(a, sizeof a, "hop/%d", i);
        runtime_spawn(rt, a, NULL, NULL, 0);
    }
    runtime_stats_t s0;
    runtime_stats(rt, &s0);
    int64_t t0 = clock_mono_us();
    envelope_t **envs = calloc((size_t)tokens, sizeof *envs);
    for (int i = 0; i < tokens; i++) {
        token_t t = {clock_mono_us(), (uint32_t)hops - 1, (uint32_t)(i % actors)};
        char to[32];
        snprintf(to, sizeof to, "hop/%u", t.at);
        envs[i] = envelope_new(to, NULL, "hop", NULL, &t, sizeof t);
    }
    runtime_send_many(rt, envs, (size_t)tokens);
    if (runtime_quiesce(rt, 0, 600000)) {
        fprintf(stderr, "bench: did not finish\n");
        return 1;
    }
    double secs = (double)(clock_mono_us() - t0) / 1e6;
    runtime_stats_t s1;
    runtime_stats(rt, &s1);
    size_t n = atomic_load(&nsamples);
    if (n > MAX_SAMPLES)
        n = MAX_SAMPLES;
    qsort(samples, n, sizeof(float), cmpf);
    uint64_t msgs = atomic_load(&handled);
    uint64_t commits = s1.commits - s0.commits;
    printf("{\"msgs\":%llu,\"seconds\":%.3f,\"msgs_per_s\":%.0f,\"p50_hop_ms\":%.3f,"
           "\"p99_hop_ms\":%.3f,\"commits\":%llu,\"msgs_per_commit\":%.1f}\n",
           (unsigned long long)msgs, secs, (double)msgs / secs, n ? samples[n / 2] : 0.0,
           n ? samples[(size_t)((double)n * 0.99)] : 0.0, (unsigned long long)commits,
           commits ? (double)msgs / (double)commits : 0.0);
    runtime_destroy(&rt);
    free(envs);
    free(samples);
    return 0;
}

/* ---- the LMDB limit: put this batch, delete the previous one ---- */
typedef struct {
    int batch;
    uint64_t round;
} raw_t;

static int raw_fn(store_txn_t *txn, void *arg)
{
    raw_t *r = arg;
    uint8_t val[96];
    memset(val, 0x5a, sizeof val);
    for (int i = 0; i < r->batch; i++) {
        char k[40];
        int kl = snprintf(k, sizeof k, "hop/%06d%016llu", i, (unsigned long long)r->round);
        if (store_put(txn, STORE_MBOX, k, (size_t)kl, val, sizeof val))
            return FENTA_ESTORE;
        if (r->round) {
            kl = snprintf(k, sizeof k, "hop/%06d%016llu", i, (unsigned long long)r->round - 1);
            store_del(txn, STORE_MBOX, k, (size_t)kl);
        }
    }
    return 0;
}

static int lmdb_limit(const char *dir, int batch, int msgs)
{
    store_t *s = store_open(dir, NULL, NULL);
    if (!s)
        return 1;
    raw_t r = {batch < 1 ? 1 : batch, 0};
    int64_t t0 = clock_mono_us();
    uint64_t done = 0;
    while (done < (uint64_t)msgs) {
        if (store_write(s, raw_fn, &r))
            return 1;
        r.round++;
        done += (uint64_t)r.batch;
    }
    double secs = (double)(clock_mono_us() - t0) / 1e6;
    printf("{\"batch\":%d,\"msgs\":%llu,\"seconds\":%.3f,\"msgs_per_s\":%.0f}\n", r.batch,
           (unsigned long long)done, secs, (double)done / secs);
    store_close(&s);
    return 0;
}

/* ---- 50,000 no-op jobs, like BullMQ's addBulk + Worker(concurrency) ---- */
static int jobs(const char *dir, int njobs, int conc)
{
    runtime_t *rt = open_rt(dir, conc, 0);
    runtime_register(rt, &noop);
    runtime_start(rt);
    /* Jobs are spread over actors like BullMQ's jobs: independent, any order. */
    enum { WORKERS = 64 };
    for (int i = 0; i < WORKERS; i++) {
        char a[32];
        snprintf(a, sizeof a, "job/%d", i);
        runtime_spawn(rt, a, NULL, NULL, 0);
    }
    int64_t t0 = clock_mono_us();
    enum { CHUNK = 1000 };
    envelope_t *envs[CHUNK];
    for (int i = 0; i < njobs; i += CHUNK) {
        int n = njobs - i < CHUNK ? njobs - i : CHUNK;
        for (int k = 0; k < n; k++) {
            char to[32];
            snprintf(to, sizeof to, "job/%d", (i + k) % WORKERS);
            envs[k] = envelope_new(to, NULL, "noop", NULL, "{}", 2);
        }
        runtime_send_many(rt, envs, (size_t)n);
    }
    while (atomic_load(&handled) < (uint64_t)njobs)
        usleep(200);
    /* Completed means acked durably, as BullMQ's completion is in Redis. */
    runtime_quiesce(rt, 0, 60000);
    double secs = (double)(clock_mono_us() - t0) / 1e6;
    printf("{\"jobs\":%d,\"concurrency\":%d,\"seconds\":%.3f,\"jobs_per_s\":%.0f}\n", njobs, conc,
           secs, (double)njobs / secs);
    runtime_destroy(&rt);
    return 0;
}

static double rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb / 1024.0;
}

static int rss(const char *dir, int actors)
{
    runtime_t *rt = open_rt(dir, 2, 0);
    runtime_register(rt, &spawner);
    runtime_register(rt, &idle);
    runtime_start(rt);
    runtime_spawn(rt, "spawner/1", NULL, NULL, 0);
    runtime_quiesce(rt, 0, 10000);
    double idle_mb = rss_mb();
    for (int32_t b = 0; b < actors; b += 1000)
        runtime_send(rt, "spawner/1", "spawn", NULL, &b, sizeof b);
    runtime_quiesce(rt, 0, 600000);
    runtime_stats_t st;
    runtime_stats(rt, &st);
    double after = rss_mb();
    printf("{\"idle_rss_mb\":%.1f,\"actors\":%d,\"rss_after_mb\":%.1f,\"rss_added_mb\":%.1f,"
           "\"resident_actors\":%llu}\n",
           idle_mb, actors, after, after - idle_mb, (unsigned long long)st.resident);
    runtime_destroy(&rt);
    return 0;
}

int main(int argc, char **argv)
{
    log_set_level(LOG_WARN);
    if (argc >= 6 && strcmp(argv[1], "throughput") == 0)
        return throughput(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc >= 5 && strcmp(argv[1], "lmdb") == 0)
        return lmdb_limit(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc >= 5 && strcmp(argv[1], "jobs") == 0)
        return jobs(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc >= 4 && strcmp(argv[1], "rss") == 0)
        return rss(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: see the comment at the top of ops/bench/runtime_bench.c\n");
    return 2;
}
