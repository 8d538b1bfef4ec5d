/* timers.c - the timer thread: moves due delayed messages (retries,
 * schedules, polling) from the timers database into mailboxes.
 *
 * Timers live only in LMDB, keyed by due time, so they survive restarts and
 * cost no memory while they wait. The thread reads the earliest key, sleeps
 * until it is due (or until a commit that set a timer pokes it), then moves
 * every due timer in one batch and waits for that batch to commit before
 * looking again, so it never fires the same timer twice. */
#include "runtime/runtime_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMERS_PER_BATCH 1024
#define TIMER_MAX_SLEEP_MS 100 /* also how soon a fake clock's advance is seen */

typedef struct {
    int64_t now;      /* fire what is due at or before this */
    int64_t next_due; /* earliest not yet due, or INT64_MAX */
    size_t n;         /* collected */
    uint8_t *keys[TIMERS_PER_BATCH];
    uint8_t *vals[TIMERS_PER_BATCH];
    size_t vlens[TIMERS_PER_BATCH];
} due_t;

static int due_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    due_t *d = arg;
    if (kl != 8 + ID_BYTES)
        return 0; /* not one of ours; leave it */
    int64_t due = runtime__timer_key_due(k);
    if (due > d->now) {
        d->next_due = due;
        return 1;
    }
    if (d->n == TIMERS_PER_BATCH) {
        d->next_due = due; /* more are due: come back at once */
        return 1;
    }
    uint8_t *kc = malloc(kl), *vc = malloc(vl ? vl : 1);
    if (!kc || !vc) {
        free(kc);
        free(vc);
        d->next_due = due;
        return 1;
    }
    memcpy(kc, k, kl);
    memcpy(vc, v, vl);
    d->keys[d->n] = kc;
    d->vals[d->n] = vc;
    d->vlens[d->n] = vl;
    d->n++;
    return 0;
}

static int due_fn(store_txn_t *txn, void *arg)
{
    return store_scan(txn, STORE_TIMERS, NULL, 0, NULL, 0, due_cb, arg);
}

void runtime__timers_poke(runtime_t *rt)
{
    pthread_mutex_lock(&rt->tlock);
    rt->tpoke = true;
    pthread_cond_signal(&rt->tcond);
    pthread_mutex_unlock(&rt->tlock);
}

/* Moves the collected timers into mailboxes (or the DLQ when undecodable). */
static void fire(runtime_t *rt, due_t *d)
{
    batch_t *b = runtime__batch_new();
    envelope_t **envs = calloc(d->n, sizeof *envs);
    if (!b || !envs) {
        runtime__batch_free(b);
        free(envs);
        return; /* retried on the next pass */
    }
    for (size_t i = 0; i < d->n; i++) {
        runtime__batch_op(b, OP_DEL, STORE_TIMERS, d->keys[i], 8 + ID_BYTES, NULL, 0);
        const char *reason = NULL;
        envelope_t *env = NULL;
        if (envelope_decode(d->vals[i], d->vlens[i], &env, &reason) != 0) {
            fenta_id_t id;
            memcpy(id.b, d->keys[i] + 8, ID_BYTES);
            char why[256];
            snprintf(why, sizeof why, "undecodable timer: %s", reason);
            runtime__dlq_add(b, NULL, d->vals[i], d->vlens[i], &id, why);
            log_msg(LOG_ERROR, NULL, "%s", why);
            continue;
        }
        /* Routed kinds go to the outbox; the rest to their mailbox. */
        bool local;
        runtime__batch_due(rt, b, env, d->vals[i], d->vlens[i], &local);
        if (local)
            envs[i] = env;
        else
            envelope_destroy(&env);
    }
    runtime__commit_wait(rt, runtime__commit_submit(rt, b));
    atomic_fetch_sub(&rt->timers_count, d->n <= atomic_load(&rt->timers_count)
                                            ? d->n
                                            : atomic_load(&rt->timers_count));
    for (size_t i = 0; i < d->n; i++) {
        if (envs[i])
            runtime__deliver(rt, envs[i]);
        free(d->keys[i]);
        free(d->vals[i]);
    }
    free(envs);
}

void *runtime__timer_main(void *arg)
{
    runtime_t *rt = arg;
    due_t *d = malloc(sizeof *d);
    if (!d) {
        log_msg(LOG_ERROR, NULL, "timer thread: out of memory");
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&rt->tlock);
        bool stop = rt->tstop;
        rt->tpoke = false;
        pthread_mutex_unlock(&rt->tlock);
        if (stop)
            break;
        d->now = clock_now_ms();
        d->next_due = INT64_MAX;
        d->n = 0;
        if (store_read(rt->store, due_fn, d) != 0)
            d->next_due = d->now + TIMER_MAX_SLEEP_MS;
        if (d->n) {
            if (atomic_load(&rt->stopping)) {
                for (size_t i = 0; i < d->n; i++) {
                    free(d->keys[i]);
                    free(d->vals[i]);
                }
                break; /* stopping: they fire on the next start */
            }
            atomic_store(&rt->firing, true);
            fire(rt, d);
            atomic_store(&rt->firing, false);
            continue;
        }
        int64_t wait = d->next_due == INT64_MAX ? TIMER_MAX_SLEEP_MS : d->next_due - d->now;
        if (wait > TIMER_MAX_SLEEP_MS)
            wait = TIMER_MAX_SLEEP_MS;
        if (wait <= 0)
            continue;
        /* Never longer than TIMER_MAX_SLEEP_MS: a test clock that jumps
         * ahead (runtime/clock.h) is seen within that, with no poke. */
        struct timespec ts;
        clock_deadline(wait, &ts);
        pthread_mutex_lock(&rt->tlock);
        while (!rt->tpoke && !rt->tstop)
            if (pthread_cond_timedwait(&rt->tcond, &rt->tlock, &ts) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&rt->tlock);
    }
    free(d);
    return NULL;
}
