/* commit.c - effect batches and the committer thread (group commit).
 *
 * Every LMDB write of the runtime is a batch handed to the committer. The
 * committer takes every batch queued since its last commit, applies them in
 * queue order in ONE write transaction and commits (one fsync), so the cost
 * of an fsync is shared by all actors and threads that produced work
 * meanwhile: the busier the node, the larger the groups. Queue order is
 * commit order; runtime.h explains why that keeps speculation safe. */
#include "runtime/runtime_internal.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/clock.h"
#include "runtime/vec.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Spent batches are kept (with their arrays) for reuse: a handled message
 * would otherwise cost four allocations and as many reallocs just for its
 * effect set. Process-wide, bounded, and only for batches of ordinary size. */
#define BATCH_POOL_MAX 4096
#define BATCH_KEEP_BYTES (64u << 10)

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static batch_t *pool;    /* linked through next */
static size_t pool_size; /* batches in pool */

static void batch_release(batch_t *b)
{
    free(b->ops);
    free(b->buf);
    free(b->actors);
    free(b);
}

static bool keepable(const batch_t *b)
{
    return b->cap <= BATCH_KEEP_BYTES && b->capops <= 1024 && b->capactors <= 64;
}

batch_t *runtime__batch_new(void)
{
    pthread_mutex_lock(&pool_lock);
    batch_t *b = pool;
    if (b) {
        pool = b->next;
        pool_size--;
    }
    pthread_mutex_unlock(&pool_lock);
    if (!b)
        return calloc(1, sizeof(batch_t));
    b->next = NULL;
    return b;
}

/* Returns a chain of batches (linked through next) to the pool or frees them. */
static void batch_free_chain(batch_t *chain)
{
    batch_t *keep = NULL, *keep_tail = NULL;
    size_t nkeep = 0;
    while (chain) {
        batch_t *next = chain->next;
        if (keepable(chain)) {
            uint8_t *buf = chain->buf;
            op_t *ops = chain->ops;
            actor_t **actors = chain->actors;
            size_t cap = chain->cap, capops = chain->capops, capactors = chain->capactors;
            *chain = (batch_t){.buf = buf,
                               .ops = ops,
                               .actors = actors,
                               .cap = cap,
                               .capops = capops,
                               .capactors = capactors};
            chain->next = keep;
            keep = chain;
            if (!keep_tail)
                keep_tail = chain;
            nkeep++;
        } else {
            batch_release(chain);
        }
        chain = next;
    }
    if (!keep)
        return;
    pthread_mutex_lock(&pool_lock);
    if (pool_size + nkeep <= BATCH_POOL_MAX) {
        keep_tail->next = pool;
        pool = keep;
        pool_size += nkeep;
        keep = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    while (keep) {
        batch_t *next = keep->next;
        batch_release(keep);
        keep = next;
    }
}

void runtime__batch_free(batch_t *b)
{
    if (!b)
        return;
    b->next = NULL;
    batch_free_chain(b);
}

/* An op of no known kind is a bug of the runtime, never bad input: every
 * caller passes a constant. It must never reach the committer, which keeps
 * retrying a failed write (it cannot drop a group without losing messages):
 * the op would fail every retry, stalling every commit of the node behind an
 * error that reads like a broken disk. So the process ends at once, on the
 * thread that made the op: inside a handler, the crash journal names that
 * handler's message, which is quarantined after a few crashes instead of
 * crashing every start. abort(), not assert(): release builds
 * (RelWithDebInfo) define NDEBUG and would compile an assert away. */
_Noreturn static void bad_op(unsigned kind, const char *where)
{
    log_msg(LOG_ERROR, NULL, "%s: effect op of unknown kind %u (a runtime bug); aborting", where,
            kind);
    abort();
}

int runtime__batch_op(batch_t *b, op_kind_t kind, store_db_t db, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    if ((unsigned)kind >= OP_KINDS)
        bad_op((unsigned)kind, "runtime__batch_op");
    if (vec_reserve(b->ops, b->capops, b->nops + 1) ||
        vec_reserve(b->buf, b->cap, b->len + klen + vlen))
        return FENTA_ENOMEM;
    op_t *op = &b->ops[b->nops++];
    *op = (op_t){.kind = (uint8_t)kind,
                 .db = (uint8_t)db,
                 .klen = (uint32_t)klen,
                 .vlen = (uint32_t)vlen,
                 .off = b->len};
    memcpy(b->buf + b->len, key, klen);
    if (vlen)
        memcpy(b->buf + b->len + klen, val, vlen);
    b->len += klen + vlen;
    if (db == STORE_TIMERS && kind == OP_PUT)
        b->timers = true;
    if (db == STORE_OUTBOX && kind == OP_PUT)
        b->outbox = true;
    return 0;
}

int runtime__batch_hold(runtime_t *rt, batch_t *b, actor_t *a)
{
    (void)rt;
    if (vec_reserve(b->actors, b->capactors, b->nactors + 1))
        return FENTA_ENOMEM;
    b->actors[b->nactors++] = a;
    a->uncommitted++;
    return 0;
}

uint64_t runtime__commit_submit(runtime_t *rt, batch_t *b)
{
    pthread_mutex_lock(&rt->clock_);
    /* Read the sequence before unlocking: from then on the committer may
     * commit and free the batch. */
    uint64_t seq = b->seq = ++rt->next_seq;
    b->next = NULL;
    if (rt->ctail)
        rt->ctail->next = b;
    else
        rt->chead = b;
    rt->ctail = b;
    pthread_cond_signal(&rt->ccond);
    pthread_mutex_unlock(&rt->clock_);
    return seq;
}

void runtime__commit_wait(runtime_t *rt, uint64_t seq)
{
    pthread_mutex_lock(&rt->clock_);
    while (rt->done_seq < seq)
        pthread_cond_wait(&rt->cdone, &rt->clock_);
    pthread_mutex_unlock(&rt->clock_);
}

/* Applies a chain of batches inside one write transaction. Runs again from
 * the start if the map had to grow, so it only reads the batches. */
static int apply(store_txn_t *txn, void *arg)
{
    for (batch_t *b = arg; b; b = b->next) {
        for (size_t i = 0; i < b->nops; i++) {
            op_t *op = &b->ops[i];
            const uint8_t *k = b->buf + op->off, *v = k + op->klen;
            int rc;
            switch (op->kind) {
            case OP_PUT:
                rc = store_put(txn, op->db, k, op->klen, v, op->vlen);
                break;
            case OP_DEL:
                rc = store_del(txn, op->db, k, op->klen);
                break;
            case OP_SPAWN: {
                /* An actors op followed by its children op: the children
                 * entry is only written when the actor is new. */
                const void *old;
                size_t oldlen;
                if (op->db == STORE_ACTORS) {
                    op->result = store_get(txn, STORE_ACTORS, k, op->klen, &old, &oldlen) == 0
                                     ? FENTA_EEXIST
                                     : 0;
                    rc = op->result ? 0 : store_put(txn, op->db, k, op->klen, v, op->vlen);
                } else {
                    rc = (i > 0 && b->ops[i - 1].result == 0)
                             ? store_put(txn, op->db, k, op->klen, v, op->vlen)
                             : 0;
                }
                break;
            }
            default:
                /* runtime__batch_op refuses such a kind, so the batch's
                 * memory was overwritten: bad_op says why this is no error
                 * code to retry. */
                bad_op(op->kind, "commit");
            }
            if (rc)
                return rc;
        }
    }
    return 0;
}

void *runtime__committer_main(void *arg)
{
    runtime_t *rt = arg;
    metric_t *m_commits = metrics_counter("fenta_commits_total", "LMDB write transactions", NULL);
    metric_t *m_batch = metrics_histogram("fenta_commit_batches", "Effect sets per commit", NULL,
                                          (const double[]){1, 4, 16, 64, 256, 1024, 4096}, 7);
    metric_t *m_lat = metrics_histogram("fenta_commit_seconds", "Commit latency", NULL, NULL, 0);
    pthread_mutex_lock(&rt->clock_);
    for (;;) {
        while (!rt->chead && !rt->cstop)
            pthread_cond_wait(&rt->ccond, &rt->clock_);
        if (!rt->chead && rt->cstop)
            break;
        if (rt->opts.commit_window_us > 0 && !rt->cstop) {
            /* Optional extra grouping; bounded so latency stays low. */
            pthread_mutex_unlock(&rt->clock_);
            usleep((useconds_t)rt->opts.commit_window_us);
            pthread_mutex_lock(&rt->clock_);
        }
        batch_t *chain = rt->chead;
        uint64_t last = rt->ctail->seq;
        rt->chead = rt->ctail = NULL;
        pthread_mutex_unlock(&rt->clock_);

        size_t nb = 0;
        for (batch_t *b = chain; b; b = b->next)
            nb++;
        int64_t t0 = clock_mono_us();
        int rc;
        /* A store error that is not a full map (disk full, I/O error) cannot
         * be skipped without losing messages: keep trying, loudly. */
        while ((rc = store_write(rt->store, apply, chain)) != 0) {
            log_msg(LOG_ERROR, NULL, "commit of %zu effect sets failed: %s; retrying", nb,
                    fenta_strerror(rc));
            usleep(100000);
        }
        metric_observe(m_lat, (double)(clock_mono_us() - t0) / 1e6);
        metric_inc(m_commits);
        metric_observe(m_batch, (double)nb);
        atomic_fetch_add(&rt->commits, 1);

        bool timers = false, outbox = false;
        pthread_mutex_lock(&rt->lock);
        /* One lock for the whole group: per-batch locking here would hand
         * the lock back and forth with the dispatchers thousands of times. */
        for (batch_t *b = chain; b; b = b->next) {
            for (size_t i = 0; i < b->nactors; i++)
                runtime__actor_committed(rt, b->actors[i]);
            timers |= b->timers;
            outbox |= b->outbox;
        }
        pthread_mutex_unlock(&rt->lock);
        for (batch_t *b = chain; b; b = b->next)
            if (b->after)
                b->after(rt, b, b->after_arg);
        batch_free_chain(chain);
        if (timers)
            runtime__timers_poke(rt);
        if (outbox)
            runtime__transport_poke(rt);

        pthread_mutex_lock(&rt->clock_);
        rt->done_seq = last;
        pthread_cond_broadcast(&rt->cdone);
    }
    pthread_mutex_unlock(&rt->clock_);
    return NULL;
}
