/* runtime_inspect.c - looking at a runtime from outside: an actor's
 * committed state, counters, the node name, and waiting until it is quiet
 * (runtime_quiesce, for tests and orderly shutdowns). Reads only: nothing
 * here changes what the runtime does. */
#include "runtime/runtime_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *addr;
    void *state;
    size_t len;
    int rc;
} state_read_t;

static int state_fn(store_txn_t *txn, void *arg)
{
    state_read_t *s = arg;
    const void *v;
    size_t vl;
    record_view_t rec;
    if ((s->rc = store_get(txn, STORE_ACTORS, s->addr, strlen(s->addr), &v, &vl)))
        return 0;
    if ((s->rc = runtime__record_parse(v, vl, &rec)))
        return 0;
    if (rec.state_len) {
        if (!(s->state = malloc(rec.state_len)))
            s->rc = FENTA_ENOMEM;
        else
            memcpy(s->state, rec.state, rec.state_len);
    }
    s->len = rec.state_len;
    return 0;
}

int runtime_actor_state(runtime_t *rt, const char *addr, void **state, size_t *len)
{
    state_read_t s = {.addr = addr};
    int rc = store_read(rt->store, state_fn, &s);
    if (rc)
        return rc;
    *state = s.state;
    *len = s.len;
    return s.rc;
}

void runtime_stats(runtime_t *rt, runtime_stats_t *out)
{
    out->processed = atomic_load(&rt->processed);
    out->failed = atomic_load(&rt->failed);
    out->retried = atomic_load(&rt->retried);
    out->dead_lettered = atomic_load(&rt->dead);
    out->quarantined = atomic_load(&rt->quarantined);
    out->commits = atomic_load(&rt->commits);
    out->pending = atomic_load(&rt->pending);
    pthread_mutex_lock(&rt->lock);
    out->resident = rt->nactors;
    pthread_mutex_unlock(&rt->lock);
    out->timers = atomic_load(&rt->timers_count);
}

const char *runtime_node(const runtime_t *rt)
{
    return rt->node;
}

typedef struct {
    int64_t horizon; /* a timer due before this counts as work */
    bool busy;       /* found one */
    size_t outbox;   /* entries not yet acked by other nodes */
} quiet_t;

static int first_timer_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    (void)kl, (void)v, (void)vl;
    quiet_t *q = arg;
    q->busy = runtime__timer_key_due(k) <= q->horizon;
    return 1;
}

static int quiet_fn(store_txn_t *txn, void *arg)
{
    quiet_t *q = arg;
    store_scan(txn, STORE_TIMERS, NULL, 0, NULL, 0, first_timer_cb, q);
    q->outbox = store_count(txn, STORE_OUTBOX);
    return 0;
}

int runtime_quiesce(runtime_t *rt, int64_t horizon_ms, int timeout_ms)
{
    int64_t deadline = clock_mono_us() + (int64_t)timeout_ms * 1000;
    int calm = 0;
    while (clock_mono_us() < deadline) {
        /* `firing` before `pending`: a timer whose store entry is gone but
         * whose message is not yet delivered shows as one or the other
         * (this look, or the next one), never as calm twice. */
        bool busy = atomic_load(&rt->firing);
        busy |= atomic_load(&rt->pending) > 0;
        pthread_mutex_lock(&rt->lock);
        for (size_t i = 0; i < rt->ndisps; i++)
            busy |= rt->disps[i].running > 0 || rt->disps[i].head != NULL;
        pthread_mutex_unlock(&rt->lock);
        pthread_mutex_lock(&rt->clock_);
        busy |= rt->done_seq != rt->next_seq;
        pthread_mutex_unlock(&rt->clock_);
        if (!busy) {
            quiet_t q = {.horizon = clock_now_ms() + horizon_ms};
            store_read(rt->store, quiet_fn, &q);
            busy = q.busy || q.outbox > 0;
        }
        /* Two calm looks in a row: a timer firing between them shows up. */
        calm = busy ? 0 : calm + 1;
        if (calm >= 2)
            return 0;
        usleep(1000);
    }
    return FENTA_ETIMEOUT;
}
