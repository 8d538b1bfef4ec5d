/* webhooks_internal.h - what webhooks.c (signing, the fan-out and delivery
 * actors, the engine) and webhooks_results.c (the writer thread: pending
 * rows, attempt results, the sets of ids) share; webhooks__ prefix. */
#ifndef FENTA_WEBHOOKS_INTERNAL_H
#define FENTA_WEBHOOKS_INTERNAL_H
#include "actors/webhooks/webhooks.h"
#include "runtime/clock.h"
#include "runtime/metrics.h"
#include "runtime/outbound.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define CACHE_TTL_MS 1000       /* how long the fan-out trusts what it read of an org's webhooks */
#define ORDER_KEYS_MAX 2000     /* subjects whose order a fan-out remembers per org */
#define WATCHDOG_SLACK_MS 10000 /* past the request's timeout before a lost attempt is resent */
#define INFLIGHT_BUCKETS 4096

/* What the fan-out knows of one organisation's webhooks. */
typedef struct {
    char org[37];
    int64_t loaded_ms;
    json_t *eps; /* [{"id","url","types":[..],"enabled","secrets":[..]}], immutable once cached */
} org_cache_t;

struct webhooks {
    webhooks_config_t cfg;
    json_t *types; /* the "types" of webhook_events.json */
    behaviour_t org_beh, del_beh;
    runtime_t *rt;
    outbound_t *client;
    metric_t *m_ok, *m_retry, *m_dead; /* attempts by what came of them */
    metric_t *m_latency;               /* seconds from the POST to its answer */
    metric_t *m_pending;               /* requests in the outbound client */
    pthread_mutex_t lock;              /* guards cache and inflight */
    /* Deliveries whose attempt is in the outbound client now, by id: a
     * watchdog finding its delivery here waits on; one not here was lost
     * with a previous process and is sent again. */
    struct setnode *inflight[INFLIGHT_BUCKETS];
    /* Organisations whose fan-out actor this process has spawned (or found):
     * an event from outside then costs one commit, not two. */
    struct setnode *fanouts[INFLIGHT_BUCKETS];
    /* Pending rows from the fan-outs, written in batches by their own
     * thread so no fan-out waits for a PostgreSQL commit. */
    pthread_t writer;
    bool writer_started, writer_stop;
    pthread_mutex_t wlock;
    pthread_cond_t wcond;
    json_t *wrows; /* pending rows waiting to be written */
    /* Results waiting to be recorded and sent (from the client's thread). */
    json_t *rrows, *rfailed, *rok;
    envelope_t **renvs;      /* result messages to send; the writer takes the array whole */
    size_t nrenvs, caprenvs; /* entries in renvs, and its room (vec_reserve) */
    org_cache_t *cache;      /* endpoints by organisation, guarded by lock */
    size_t ncache, capcache; /* entries in cache, and its room (vec_reserve) */
};

/* A member of a set of ids (deliveries in flight, organisations with a fan-out). */
struct setnode {
    struct setnode *next;
    char did[37];
};

/* One attempt in flight: what the result needs to find its actor and row. */
typedef struct {
    char did[37], wid[37], org[37];
    char *event_id, *type;
    int attempt; /* in this run of the delivery (a redelivery starts again at 1) */
    int sends;   /* every attempt ever: orders the row's writes */
} attempt_t;

static inline int64_t webhooks__now_ms(void)
{
    return clock_now_ms();
}

/* Sets of ids (w->inflight, w->fanouts), guarded by w->lock. */
int webhooks__set_add(webhooks_t *w, struct setnode **set, const char *id);
/* Whether id is in the set; with remove, takes one entry of it out. */
bool webhooks__set_take(webhooks_t *w, struct setnode **set, const char *id, bool remove);
/* Queues a fan-out's pending rows for the writer (or writes them at once
 * when it is not running); rows stay the caller's. */
void webhooks__queue_pending(webhooks_t *w, json_t *rows);
/* The writer thread: pending rows, then results and their messages. */
void *webhooks__writer_main(void *arg);
/* The outbound client's done callback (arg = the webhooks_t). */
void webhooks__on_results(void *arg, const outbound_result_t *res, size_t n);

#endif
