/* runtime.c - actors in memory, dispatchers, handler contexts and the
 * runtime's life cycle. Durability lives in commit.c (group commit), delayed
 * messages in timers.c, supervision in supervisor.c, dead letters in dlq.c.
 *
 * Locking: rt->lock guards the actor table, every actor's queue and flags,
 * the run queues, the idle list and the supervisors. Handlers run without it.
 * An actor is handled by at most one thread at a time (the `running` flag). */
#include "runtime/runtime_internal.h"
#include "runtime/clock.h"
#include "runtime/crashlog.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/vec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD_VERSION 1

struct actor_ctx {
    runtime_t *rt;         /* the runtime */
    actor_t *actor;        /* the actor being handled */
    const envelope_t *msg; /* the message being handled (NULL in on_start/on_stop) */
    batch_t *batch;        /* effects to commit with the ack */
    envelope_t **local;    /* local sends to deliver in memory once queued for commit */
    size_t nlocal, caplocal;
    actor_t **spawned; /* actors created here, made resident with the ack */
    size_t nspawned, capspawned;
    uint8_t *new_state; /* replacement state (owned) */
    size_t new_len;
    bool state_set; /* actor_set_state was called */
    int error;      /* first error of an effect call (ENOMEM...) */
    char why[512];  /* actor_fail's text */
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

size_t runtime__mbox_key(uint8_t *buf, const char *to, const fenta_id_t *id)
{
    size_t n = strlen(to);
    memcpy(buf, to, n);
    buf[n] = 0;
    memcpy(buf + n + 1, id->b, ID_BYTES);
    return n + 1 + ID_BYTES;
}

void runtime__timer_key(uint8_t buf[8 + ID_BYTES], int64_t due_ms, const fenta_id_t *id)
{
    uint64_t d = due_ms < 0 ? 0 : (uint64_t)due_ms;
    for (int i = 7; i >= 0; i--, d >>= 8)
        buf[i] = (uint8_t)d;
    memcpy(buf + 8, id->b, ID_BYTES);
}

int64_t runtime__timer_key_due(const void *key)
{
    const uint8_t *k = key;
    uint64_t d = 0;
    for (int i = 0; i < 8; i++)
        d = (d << 8) | k[i];
    return (int64_t)d;
}

static const kind_t *kind_of(runtime_t *rt, const char *addr)
{
    const char *slash = strchr(addr, '/');
    size_t n = slash ? (size_t)(slash - addr) : strlen(addr);
    for (size_t i = 0; i < rt->nkinds; i++)
        if (strlen(rt->kinds[i].beh->kind) == n && memcmp(rt->kinds[i].beh->kind, addr, n) == 0)
            return &rt->kinds[i];
    return NULL;
}

const char *runtime__route_of(runtime_t *rt, const char *addr, const char **endpoint)
{
    const char *slash = strchr(addr, '/');
    size_t n = slash ? (size_t)(slash - addr) : strlen(addr);
    for (size_t i = 0; i < rt->nroutes; i++)
        if (strlen(rt->routes[i].kind) == n && memcmp(rt->routes[i].kind, addr, n) == 0) {
            if (endpoint)
                *endpoint = rt->routes[i].endpoint;
            return rt->routes[i].node;
        }
    return NULL;
}

/* Actor record: version(1) sup_len(2) sup spawn_id(16) state. */
int runtime__actor_record(uint8_t **out, size_t *len, const char *sup, const fenta_id_t *spawn_id,
                          const void *state, size_t state_len)
{
    size_t sl = strlen(sup);
    size_t n = 1 + 2 + sl + ID_BYTES + state_len;
    uint8_t *r = malloc(n);
    if (!r)
        return FENTA_ENOMEM;
    r[0] = RECORD_VERSION;
    r[1] = (uint8_t)(sl >> 8);
    r[2] = (uint8_t)sl;
    memcpy(r + 3, sup, sl);
    memcpy(r + 3 + sl, spawn_id->b, ID_BYTES);
    if (state_len)
        memcpy(r + 3 + sl + ID_BYTES, state, state_len);
    *out = r;
    *len = n;
    return 0;
}

typedef struct {
    char sup[256];        /* supervisor name */
    fenta_id_t spawn_id;  /* spawn order */
    const uint8_t *state; /* borrowed from the store */
    size_t state_len;
} record_view_t;

static int record_parse(const void *buf, size_t len, record_view_t *out)
{
    const uint8_t *r = buf;
    if (len < 3 || r[0] != RECORD_VERSION)
        return FENTA_EDECODE;
    size_t sl = ((size_t)r[1] << 8) | r[2];
    if (sl >= sizeof out->sup || len < 3 + sl + ID_BYTES)
        return FENTA_EDECODE;
    memcpy(out->sup, r + 3, sl);
    out->sup[sl] = 0;
    memcpy(out->spawn_id.b, r + 3 + sl, ID_BYTES);
    out->state = r + 3 + sl + ID_BYTES;
    out->state_len = len - 3 - sl - ID_BYTES;
    return 0;
}

static void kind_metrics_init(kind_metrics_t *m, const char *kind)
{
    char labels[128];
    snprintf(labels, sizeof labels, "kind=\"%s\"", kind);
    m->processed = metrics_counter("fenta_messages_processed_total", "Messages handled", labels);
    m->failed = metrics_counter("fenta_messages_failed_total", "Handler failures", labels);
    m->retried = metrics_counter("fenta_messages_retried_total", "Retries scheduled", labels);
    m->dead = metrics_counter("fenta_messages_dead_lettered_total",
                              "Messages moved to the dead-letter queue", labels);
    m->latency = metrics_histogram("fenta_handler_seconds", "Handler latency", labels, NULL, 0);
    m->quarantined = metrics_counter("fenta_messages_quarantined_total",
                                     "Messages moved to the dead-letter queue because they "
                                     "crashed the process",
                                     labels);
}

static const kind_metrics_t *metrics_of(runtime_t *rt, const actor_t *a)
{
    return a->kind ? &a->kind->m : &rt->unknown_m;
}

/* One log line about a message, with its ids. */
static void log_message(log_level_t lvl, const actor_t *a, const envelope_t *msg, const char *text,
                        const char *error)
{
    if (!log_enabled(lvl))
        return;
    char id[ID_STR_LEN + 1], attempt[16];
    id_to_str(&msg->id, id);
    snprintf(attempt, sizeof attempt, "%u", msg->attempt);
    log_kv(lvl, &(log_ctx_t){.actor = a->addr, .msg_id = id, .corr = msg->corr}, text,
           (const char *const[]){"type", msg->type, "attempt", attempt, "error", error, NULL});
}

/* ---- actor table (rt->lock held) ----------------------------------------- */

static actor_t *actor_find(runtime_t *rt, const char *addr)
{
    for (actor_t *a = rt->buckets[hash_str(addr) & (rt->nbuckets - 1)]; a; a = a->hnext)
        if (strcmp(a->addr, addr) == 0)
            return a;
    return NULL;
}

static void table_grow(runtime_t *rt)
{
    size_t n = rt->nbuckets * 2;
    actor_t **nb = calloc(n, sizeof *nb);
    if (!nb)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < rt->nbuckets; i++) {
        actor_t *a = rt->buckets[i];
        while (a) {
            actor_t *next = a->hnext;
            size_t h = hash_str(a->addr) & (n - 1);
            a->hnext = nb[h];
            nb[h] = a;
            a = next;
        }
    }
    free(rt->buckets);
    rt->buckets = nb;
    rt->nbuckets = n;
}

static actor_t *actor_get(runtime_t *rt, const char *addr)
{
    actor_t *a = actor_find(rt, addr);
    if (a)
        return a;
    a = calloc(1, sizeof *a);
    if (!a || !(a->addr = strdup(addr))) {
        free(a);
        return NULL;
    }
    a->kind = kind_of(rt, addr);
    a->sup = runtime__sup_root(rt);
    if (rt->nactors + 1 > rt->nbuckets)
        table_grow(rt);
    size_t h = hash_str(addr) & (rt->nbuckets - 1);
    a->hnext = rt->buckets[h];
    rt->buckets[h] = a;
    rt->nactors++;
    metric_set(rt->m_resident, (double)rt->nactors);
    return a;
}

static void idle_unlink(runtime_t *rt, actor_t *a)
{
    if (!a->idle_listed)
        return;
    if (a->iprev)
        a->iprev->inext = a->inext;
    else
        rt->idle_head = a->inext;
    if (a->inext)
        a->inext->iprev = a->iprev;
    else
        rt->idle_tail = a->iprev;
    a->iprev = a->inext = NULL;
    a->idle_listed = false;
    rt->nidle--;
}

static void idle_push(runtime_t *rt, actor_t *a)
{
    if (a->idle_listed)
        return;
    a->iprev = rt->idle_tail;
    a->inext = NULL;
    if (rt->idle_tail)
        rt->idle_tail->inext = a;
    else
        rt->idle_head = a;
    rt->idle_tail = a;
    a->idle_listed = true;
    rt->nidle++;
}

static void actor_free(actor_t *a)
{
    for (size_t i = 0; i < a->qlen; i++)
        envelope_destroy(&a->q[(a->qhead + i) % a->qcap]);
    free(a->q);
    free(a->state);
    free(a->addr);
    free(a);
}

static void actor_unlink(runtime_t *rt, actor_t *a)
{
    actor_t **pp = &rt->buckets[hash_str(a->addr) & (rt->nbuckets - 1)];
    while (*pp && *pp != a)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = a->hnext;
    idle_unlink(rt, a);
    rt->nactors--;
    metric_set(rt->m_resident, (double)rt->nactors);
}

static int queue_push(actor_t *a, envelope_t *env)
{
    if (a->qlen == a->qcap) {
        size_t n = a->qcap ? a->qcap * 2 : 4;
        envelope_t **q = malloc(n * sizeof *q);
        if (!q)
            return FENTA_ENOMEM;
        for (size_t i = 0; i < a->qlen; i++)
            q[i] = a->q[(a->qhead + i) % a->qcap];
        free(a->q);
        a->q = q;
        a->qcap = n;
        a->qhead = 0;
    }
    a->q[(a->qhead + a->qlen) % a->qcap] = env;
    a->qlen++;
    return 0;
}

static envelope_t *queue_pop(actor_t *a)
{
    if (!a->qlen)
        return NULL;
    envelope_t *e = a->q[a->qhead];
    a->qhead = (a->qhead + 1) % a->qcap;
    a->qlen--;
    return e;
}

/* Puts a on its dispatcher's run queue if it can run now (lock held). */
static void schedule(runtime_t *rt, actor_t *a)
{
    if (a->queued || a->running || !a->qlen || atomic_load(&rt->stopping))
        return;
    if (!runtime__sup_running(a->sup))
        return; /* its supervisor gave up; mail waits for an operator */
    dispatcher_t *d = &rt->disps[a->kind ? a->kind->disp : 0];
    idle_unlink(rt, a);
    a->queued = true;
    a->rnext = NULL;
    if (d->tail)
        d->tail->rnext = a;
    else
        d->head = a;
    d->tail = a;
    if (d->nidle)
        runtime__waker_signal(d->idle[--d->nidle]);
}

void runtime__schedule_all(runtime_t *rt)
{
    for (size_t i = 0; i < rt->nbuckets; i++)
        for (actor_t *a = rt->buckets[i]; a; a = a->hnext)
            schedule(rt, a);
}

static void deliver_locked(runtime_t *rt, envelope_t *env)
{
    actor_t *a = actor_get(rt, env->to);
    if (!a || queue_push(a, env) != 0) {
        /* Out of memory: the message is durable; it is picked up on the next start. */
        log_msg(LOG_ERROR, NULL, "out of memory delivering to %s; left in the store", env->to);
        envelope_destroy(&env);
        return;
    }
    atomic_fetch_add(&rt->pending, 1);
    metric_add(rt->m_pending, 1);
    schedule(rt, a);
}

void runtime__deliver(runtime_t *rt, envelope_t *env)
{
    pthread_mutex_lock(&rt->lock);
    deliver_locked(rt, env);
    pthread_mutex_unlock(&rt->lock);
}

/* ---- loading and passivation ------------------------------------------------ */

typedef struct {
    const char *addr;  /* whose record */
    int rc;            /* 0 found, ENOTFOUND, EDECODE */
    record_view_t rec; /* parsed view */
    uint8_t *state;    /* copied state */
} load_t;

static int load_fn(store_txn_t *txn, void *arg)
{
    load_t *l = arg;
    const void *v;
    size_t vl;
    l->rc = store_get(txn, STORE_ACTORS, l->addr, strlen(l->addr), &v, &vl);
    if (l->rc)
        return 0;
    if ((l->rc = record_parse(v, vl, &l->rec)))
        return 0;
    if (l->rec.state_len) {
        l->state = malloc(l->rec.state_len);
        if (!l->state)
            l->rc = FENTA_ENOMEM;
        else
            memcpy(l->state, l->rec.state, l->rec.state_len);
    }
    return 0;
}

/* Reads the actor's committed record (dispatcher thread, a is held running). */
static void actor_load(runtime_t *rt, actor_t *a)
{
    load_t l = {.addr = a->addr};
    int rc = store_read(rt->store, load_fn, &l);
    pthread_mutex_lock(&rt->lock);
    if (rc == 0 && l.rc == 0) {
        free(a->state);
        a->state = l.state;
        a->state_len = l.rec.state_len;
        a->spawn_id = l.rec.spawn_id;
        supervisor_t *s = runtime__sup_find(rt, l.rec.sup);
        a->sup = s ? s : runtime__sup_root(rt);
        a->loaded = true;
        a->missing = false;
    } else {
        free(l.state);
        a->missing = true; /* re-checked on each message: a spawn may be on its way */
    }
    pthread_mutex_unlock(&rt->lock);
}

static void ctx_reset(actor_ctx_t *c);

static void call_stop(runtime_t *rt, actor_t *a)
{
    if (a->started && a->kind && a->kind->beh->on_stop) {
        actor_ctx_t c = {.rt = rt, .actor = a};
        a->kind->beh->on_stop(&c);
    }
    a->started = false;
    a->user = NULL;
}

/* Drops idle resident actors beyond the cap. Called without the lock. */
static void passivate(runtime_t *rt)
{
    size_t cap = rt->opts.max_resident_idle ? rt->opts.max_resident_idle : 10000;
    for (;;) {
        pthread_mutex_lock(&rt->lock);
        actor_t *a = rt->idle_head;
        if (rt->nidle <= cap || !a) {
            pthread_mutex_unlock(&rt->lock);
            return;
        }
        idle_unlink(rt, a);
        if (a->qlen || a->running || a->queued || a->uncommitted) {
            pthread_mutex_unlock(&rt->lock);
            continue; /* it became busy; it will be listed again when idle */
        }
        a->running = true; /* keep dispatchers off while on_stop runs */
        pthread_mutex_unlock(&rt->lock);
        call_stop(rt, a);
        pthread_mutex_lock(&rt->lock);
        a->running = false;
        if (a->qlen) {
            schedule(rt, a); /* mail arrived meanwhile; keep it */
        } else {
            actor_unlink(rt, a);
            actor_free(a);
        }
        pthread_mutex_unlock(&rt->lock);
    }
}

/* ---- handling one message ------------------------------------------------ */

static void ctx_reset(actor_ctx_t *c)
{
    for (size_t i = 0; i < c->nlocal; i++)
        envelope_destroy(&c->local[i]);
    free(c->local);
    free(c->spawned);
    free(c->new_state);
    runtime__batch_free(c->batch);
    memset(c, 0, sizeof *c);
}

static void record_error(actor_ctx_t *c, int rc)
{
    if (rc && !c->error)
        c->error = rc;
}

void runtime__actor_committed(runtime_t *rt, actor_t *a)
{
    /* Only committed actors may leave memory: their store record is current. */
    if (--a->uncommitted == 0 && !a->qlen && !a->running && !a->queued)
        idle_push(rt, a);
}

/* The failed message goes to a retry timer or, after its last attempt, to the
 * dead-letter queue, in the batch that acks it. */
static int fail_message(runtime_t *rt, actor_t *a, batch_t *b, envelope_t *msg, const char *why)
{
    const backoff_policy_t *p = a->kind ? &a->kind->retry : &BACKOFF_DEFAULT;
    int64_t now = clock_now_ms();
    envelope_add_error(msg, msg->attempt, now, why);
    uint32_t delivered = msg->attempt + 1;
    if (a->kind && delivered < p->max_attempts) {
        msg->attempt = delivered;
        msg->not_before_ms = now + backoff_delay_ms(p, delivered, backoff_random());
        uint8_t *wire;
        size_t wl;
        int rc = envelope_encode(msg, &wire, &wl);
        if (rc)
            return rc;
        uint8_t tk[8 + ID_BYTES];
        runtime__timer_key(tk, msg->not_before_ms, &msg->id);
        rc = runtime__batch_op(b, OP_PUT, STORE_TIMERS, tk, sizeof tk, wire, wl);
        free(wire);
        if (!rc) {
            atomic_fetch_add(&rt->retried, 1);
            atomic_fetch_add(&rt->timers_count, 1);
            metric_inc(metrics_of(rt, a)->retried);
            log_message(LOG_WARN, a, msg, "handler failed; retry scheduled", why);
        }
        return rc;
    }
    atomic_fetch_add(&rt->dead, 1);
    metric_inc(metrics_of(rt, a)->dead);
    log_message(LOG_ERROR, a, msg, "message dead-lettered", why);
    return runtime__dlq_add(b, msg, NULL, 0, &msg->id, why);
}

/* Handles msg for a (held running by the caller, lock not held); returns
 * with rt->lock held. */
static void handle_one(runtime_t *rt, actor_t *a, envelope_t *msg)
{
    actor_ctx_t c = {.rt = rt, .actor = a, .msg = msg};
    c.batch = runtime__batch_new();
    if (!c.batch) {
        /* Out of memory before anything happened: put the message back. */
        usleep(1000);
        pthread_mutex_lock(&rt->lock);
        if (queue_push(a, msg) == 0)
            atomic_fetch_add(&rt->pending, 1);
        else
            envelope_destroy(&msg); /* still in the store: back on the next start */
        return;
    }
    int64_t t0 = clock_mono_us();
    uint8_t mk[ENVELOPE_ADDR_MAX + 1 + ID_BYTES];
    size_t mkl = runtime__mbox_key(mk, msg->to, &msg->id);
    runtime__batch_op(c.batch, OP_DEL, STORE_MBOX, mk, mkl, NULL, 0);

    if (!a->loaded)
        actor_load(rt, a);
    int rc = 0;
    const char *why = NULL;
    char whybuf[600];
    if (a->missing || !a->kind) {
        why = a->missing ? "no such actor" : "no behaviour registered for this kind";
        ctx_reset(&c);
        c.batch = runtime__batch_new();
        if (c.batch) {
            runtime__batch_op(c.batch, OP_DEL, STORE_MBOX, mk, mkl, NULL, 0);
            envelope_add_error(msg, msg->attempt, clock_now_ms(), why);
            runtime__dlq_add(c.batch, msg, NULL, 0, &msg->id, why);
            atomic_fetch_add(&rt->dead, 1);
            metric_inc(metrics_of(rt, a)->dead);
            log_message(LOG_ERROR, a, msg, "message dead-lettered", why);
        }
        goto commit;
    }
    const behaviour_t *beh = a->kind->beh;
    uint64_t fp = runtime__fingerprint(msg);
    if (runtime__quarantine_take(rt, fp, msg, c.batch)) {
        /* It crashed the process too often: to the dead-letter queue with
         * the ack, without running it. */
        atomic_fetch_add(&rt->dead, 1);
        atomic_fetch_add(&rt->quarantined, 1);
        metric_inc(metrics_of(rt, a)->dead);
        metric_inc(metrics_of(rt, a)->quarantined);
        goto commit;
    }
    /* From here to the handler's return a fatal signal names this message
     * in the crash journal: on_start runs for it too (a state it cannot
     * load would crash every message; each then costs a few restarts and
     * lands in the dead-letter queue, where an operator sees it). */
    crashlog_begin(a->addr, &msg->id, msg->type, msg->corr, fp);
    if (a->restart_pending) {
        call_stop(rt, a);
        a->restart_pending = false;
        if (beh->on_start) {
            actor_ctx_t sc = {.rt = rt, .actor = a};
            beh->on_start(&sc, ACTOR_RESTARTED);
        }
        a->started = true;
    } else if (!a->started) {
        if (beh->on_start) {
            actor_ctx_t sc = {.rt = rt, .actor = a};
            beh->on_start(&sc, a->spawned_here ? ACTOR_SPAWNED : ACTOR_ACTIVATED);
        }
        a->started = true;
    }

    rc = beh->on_message(&c, msg);
    crashlog_end();
    if (rc == 0 && c.error) {
        rc = c.error;
        snprintf(c.why, sizeof c.why, "effect failed: %s", fenta_strerror(rc));
    }
    if (rc == 0) {
        if (c.state_set) {
            uint8_t *rec;
            size_t rl;
            const char *supname = runtime__sup_name(a->sup);
            if ((rc = runtime__actor_record(&rec, &rl, supname, &a->spawn_id, c.new_state,
                                            c.new_len)) == 0) {
                rc = runtime__batch_op(c.batch, OP_PUT, STORE_ACTORS, a->addr, strlen(a->addr), rec,
                                       rl);
                free(rec);
            }
            if (rc)
                snprintf(c.why, sizeof c.why, "could not record state: %s", fenta_strerror(rc));
        }
    }
    if (rc != 0) {
        /* Failure: every effect is dropped; only the ack and the retry remain.
         * Actors it spawned were resident on speculation: forget them so a
         * later message reads the store (which never got them). */
        snprintf(whybuf, sizeof whybuf, "%s", c.why[0] ? c.why : fenta_strerror(rc));
        pthread_mutex_lock(&rt->lock);
        for (size_t i = 0; i < c.nspawned; i++) {
            c.spawned[i]->loaded = false;
            c.spawned[i]->spawned_here = false;
        }
        pthread_mutex_unlock(&rt->lock);
        ctx_reset(&c);
        c.batch = runtime__batch_new();
        if (c.batch) {
            runtime__batch_op(c.batch, OP_DEL, STORE_MBOX, mk, mkl, NULL, 0);
            fail_message(rt, a, c.batch, msg, whybuf);
        }
        atomic_fetch_add(&rt->failed, 1);
        metric_inc(metrics_of(rt, a)->failed);
        pthread_mutex_lock(&rt->lock);
        runtime__sup_child_failed(rt, a);
        pthread_mutex_unlock(&rt->lock);
    } else {
        if (c.state_set) {
            free(a->state);
            a->state = c.new_state;
            a->state_len = c.new_len;
            c.new_state = NULL;
        }
        atomic_fetch_add(&rt->processed, 1);
        metric_inc(metrics_of(rt, a)->processed);
    }
commit:
    metric_observe(metrics_of(rt, a)->latency, (double)(clock_mono_us() - t0) / 1e6);
    envelope_destroy(&msg);
    /* One critical section for the hold, the hand-over to the committer and
     * the deliveries; the caller goes on under the same lock. Deliver after
     * queuing for commit: whatever the recipients do is queued after this
     * batch, hence committed with it or after it. */
    pthread_mutex_lock(&rt->lock);
    if (c.batch) {
        runtime__batch_hold(rt, c.batch, a);
        for (size_t i = 0; i < c.nspawned; i++)
            runtime__batch_hold(rt, c.batch, c.spawned[i]);
        runtime__commit_submit(rt, c.batch);
        c.batch = NULL;
    }
    for (size_t i = 0; i < c.nlocal; i++)
        deliver_locked(rt, c.local[i]);
    c.nlocal = 0;
    ctx_reset(&c);
}

/* Wakes every idle thread of every dispatcher (lock held). */
static void wake_all(runtime_t *rt)
{
    for (size_t i = 0; i < rt->ndisps; i++)
        while (rt->disps[i].nidle)
            runtime__waker_signal(rt->disps[i].idle[--rt->disps[i].nidle]);
}

static void *dispatcher_main(void *arg)
{
    runtime_t *rt = ((void **)arg)[0];
    dispatcher_t *d = ((void **)arg)[1];
    waker_t *w = ((void **)arg)[2];
    free(arg);
    if (crashlog_thread_enter(rt->crashlog) != 0)
        log_msg(LOG_WARN, NULL,
                "dispatcher %s: no signal stack: a stack overflow will not be "
                "named in the crash journal",
                d->name);
    pthread_mutex_lock(&rt->lock);
    for (;;) {
        /* Idle: sleep on this thread's ZeroMQ inproc waker. schedule() pops
         * one idle thread and sends it a token; a token sent before the
         * thread blocks waits in the pipe, so no wake-up is lost. */
        while (!d->head && !atomic_load(&rt->stopping)) {
            d->idle[d->nidle++] = w;
            pthread_mutex_unlock(&rt->lock);
            runtime__waker_wait(w);
            pthread_mutex_lock(&rt->lock);
        }
        if (atomic_load(&rt->stopping))
            break;
        actor_t *a = d->head;
        d->head = a->rnext;
        if (!d->head)
            d->tail = NULL;
        a->queued = false;
        if (!runtime__sup_running(a->sup))
            continue; /* its supervisor gave up after it was queued; revive() requeues it */
        a->running = true;
        envelope_t *msg = queue_pop(a);
        d->running++;
        pthread_mutex_unlock(&rt->lock);
        if (msg) {
            atomic_fetch_sub(&rt->pending, 1);
            metric_add(rt->m_pending, -1);
            handle_one(rt, a, msg); /* returns with the lock held */
        } else {
            pthread_mutex_lock(&rt->lock);
        }
        d->running--;
        a->running = false;
        if (a->qlen)
            schedule(rt, a); /* one message per turn: back of the queue */
        else if (!a->uncommitted)
            idle_push(rt, a);
        bool over = rt->nidle > (rt->opts.max_resident_idle ? rt->opts.max_resident_idle : 10000);
        if (over) {
            pthread_mutex_unlock(&rt->lock);
            passivate(rt);
            pthread_mutex_lock(&rt->lock);
        }
    }
    pthread_mutex_unlock(&rt->lock);
    crashlog_thread_leave();
    return NULL;
}

/* ---- handler API ---------------------------------------------------------- */

const char *actor_self(const actor_ctx_t *ctx)
{
    return ctx->actor->addr;
}

runtime_t *actor_runtime(const actor_ctx_t *ctx)
{
    return ctx->rt;
}

void *actor_kind_user(const actor_ctx_t *ctx)
{
    return ctx->actor->kind ? ctx->actor->kind->beh->user : NULL;
}

const void *actor_state(const actor_ctx_t *ctx, size_t *len)
{
    if (ctx->state_set) {
        *len = ctx->new_len;
        return ctx->new_state;
    }
    *len = ctx->actor->state_len;
    return ctx->actor->state;
}

int actor_set_state(actor_ctx_t *ctx, const void *state, size_t len)
{
    if (!ctx->batch)
        return FENTA_EINVAL; /* only while handling a message */
    uint8_t *s = NULL;
    if (len) {
        if (!(s = malloc(len))) {
            record_error(ctx, FENTA_ENOMEM);
            return FENTA_ENOMEM;
        }
        memcpy(s, state, len);
    }
    free(ctx->new_state);
    ctx->new_state = s;
    ctx->new_len = len;
    ctx->state_set = true;
    return 0;
}

/* Adds a message to a batch: into the mailbox, a timer, or the outbox. The
 * envelope stays the caller's. */
static int batch_message(runtime_t *rt, batch_t *b, const envelope_t *env, bool *local)
{
    uint8_t *wire;
    size_t wl;
    int rc = envelope_encode(env, &wire, &wl);
    if (rc)
        return rc;
    uint8_t key[8 + ID_BYTES];
    *local = false;
    /* Delayed messages wait in this node's timers whatever their
     * destination; the timer thread routes them (mailbox or outbox) when due. */
    if (env->not_before_ms > clock_now_ms()) {
        runtime__timer_key(key, env->not_before_ms, &env->id);
        rc = runtime__batch_op(b, OP_PUT, STORE_TIMERS, key, 8 + ID_BYTES, wire, wl);
        if (!rc)
            atomic_fetch_add(&rt->timers_count, 1);
    } else {
        rc = runtime__batch_due(rt, b, env, wire, wl, local);
    }
    free(wire);
    return rc;
}

int runtime__batch_due(runtime_t *rt, batch_t *b, const envelope_t *env, const void *wire,
                       size_t wl, bool *local)
{
    uint8_t key[ENVELOPE_ADDR_MAX + 1 + ID_BYTES];
    const char *node = runtime__route_of(rt, env->to, NULL);
    *local = node == NULL;
    if (node) {
        size_t nl = strlen(node);
        memcpy(key, node, nl);
        key[nl] = 0;
        memcpy(key + nl + 1, env->id.b, ID_BYTES);
        return runtime__batch_op(b, OP_PUT, STORE_OUTBOX, key, nl + 1 + ID_BYTES, wire, wl);
    }
    size_t kl = runtime__mbox_key(key, env->to, &env->id);
    return runtime__batch_op(b, OP_PUT, STORE_MBOX, key, kl, wire, wl);
}

static int ctx_send(actor_ctx_t *ctx, const char *to, const char *type, const void *body,
                    size_t len, int64_t delay_ms)
{
    if (!ctx->batch)
        return FENTA_EINVAL;
    const char *corr = ctx->msg ? ctx->msg->corr : NULL;
    envelope_t *env = envelope_new(to, ctx->actor->addr, type, corr, body, len);
    if (!env) {
        int rc = to && type ? FENTA_ENOMEM : FENTA_EINVAL;
        record_error(ctx, rc);
        return rc;
    }
    if (delay_ms > 0)
        env->not_before_ms = clock_now_ms() + delay_ms;
    bool local;
    int rc = batch_message(ctx->rt, ctx->batch, env, &local);
    if (!rc && local) {
        rc = vec_reserve(ctx->local, ctx->caplocal, ctx->nlocal + 1);
        if (!rc) {
            ctx->local[ctx->nlocal++] = env;
            return 0;
        }
    }
    envelope_destroy(&env);
    record_error(ctx, rc);
    return rc;
}

int actor_send(actor_ctx_t *ctx, const char *to, const char *type, const void *body,
               size_t body_len)
{
    return ctx_send(ctx, to, type, body, body_len, 0);
}

int actor_send_after(actor_ctx_t *ctx, const char *to, const char *type, const void *body,
                     size_t body_len, int64_t delay_ms)
{
    return ctx_send(ctx, to, type, body, body_len, delay_ms > 0 ? delay_ms : 0);
}

int actor_dead_letter(actor_ctx_t *ctx, const char *to, const char *type, const void *body,
                      size_t body_len, const char *why)
{
    if (!ctx->batch)
        return FENTA_EINVAL;
    const char *corr = ctx->msg ? ctx->msg->corr : NULL;
    envelope_t *env = envelope_new(to, ctx->actor->addr, type, corr, body, body_len);
    if (!env) {
        int rc = to && type ? FENTA_ENOMEM : FENTA_EINVAL;
        record_error(ctx, rc);
        return rc;
    }
    envelope_add_error(env, 0, clock_now_ms(), why ? why : "dead-lettered by its actor");
    int rc = runtime__dlq_add(ctx->batch, env, NULL, 0, &env->id,
                              why ? why : "dead-lettered by its actor");
    if (rc == 0) {
        atomic_fetch_add(&ctx->rt->dead, 1);
        metric_inc(metrics_of(ctx->rt, ctx->actor)->dead);
        log_message(LOG_ERROR, ctx->actor, env, "message dead-lettered", why);
    }
    envelope_destroy(&env);
    record_error(ctx, rc);
    return rc;
}

int actor_fail(actor_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->why, sizeof ctx->why, fmt, ap);
    va_end(ap);
    return FENTA_EHANDLER;
}

void *actor_user(const actor_ctx_t *ctx)
{
    return ctx->actor->user;
}

void actor_set_user(actor_ctx_t *ctx, void *user)
{
    ctx->actor->user = user;
}

/* ---- spawning ------------------------------------------------------------- */

typedef struct {
    const char *addr;
    bool exists;
} exists_t;

static int exists_fn(store_txn_t *txn, void *arg)
{
    exists_t *e = arg;
    const void *v;
    size_t vl;
    e->exists = store_get(txn, STORE_ACTORS, e->addr, strlen(e->addr), &v, &vl) == 0;
    return 0;
}

/* Adds the spawn ops of addr to b. */
static int batch_spawn(batch_t *b, const char *addr, const char *sup, const fenta_id_t *sid,
                       const void *state, size_t len)
{
    uint8_t *rec;
    size_t rl;
    int rc = runtime__actor_record(&rec, &rl, sup, sid, state, len);
    if (rc)
        return rc;
    rc = runtime__batch_op(b, OP_SPAWN, STORE_ACTORS, addr, strlen(addr), rec, rl);
    free(rec);
    if (rc)
        return rc;
    uint8_t ck[256 + 1 + ID_BYTES];
    size_t sl = strlen(sup);
    memcpy(ck, sup, sl);
    ck[sl] = 0;
    memcpy(ck + sl + 1, sid->b, ID_BYTES);
    return runtime__batch_op(b, OP_SPAWN, STORE_CHILDREN, ck, sl + 1 + ID_BYTES, addr,
                             strlen(addr));
}

static int check_spawn_args(runtime_t *rt, const char *addr, const char **sup)
{
    if (!addr || !strchr(addr, '/') || strlen(addr) > ENVELOPE_ADDR_MAX)
        return FENTA_EINVAL;
    if (!*sup)
        *sup = "root";
    if (strlen(*sup) > 255)
        return FENTA_EINVAL;
    (void)rt;
    return 0;
}

/* Makes a freshly spawned actor resident with its initial state (lock held). */
static actor_t *make_resident(runtime_t *rt, const char *addr, const char *sup,
                              const fenta_id_t *sid, const void *state, size_t len)
{
    actor_t *a = actor_get(rt, addr);
    if (!a)
        return NULL;
    if (a->loaded)
        return a;
    uint8_t *s = NULL;
    if (len && (s = malloc(len)))
        memcpy(s, state, len);
    free(a->state);
    a->state = s;
    a->state_len = s ? len : 0;
    a->spawn_id = *sid;
    supervisor_t *sp = runtime__sup_find(rt, sup);
    a->sup = sp ? sp : runtime__sup_root(rt);
    a->loaded = true;
    a->missing = false;
    a->spawned_here = true;
    return a;
}

bool actor_exists(actor_ctx_t *ctx, const char *addr)
{
    exists_t e = {.addr = addr};
    store_read(ctx->rt->store, exists_fn, &e);
    if (e.exists)
        return true;
    runtime_t *rt = ctx->rt;
    pthread_mutex_lock(&rt->lock);
    actor_t *a = actor_find(rt, addr);
    bool there = a && a->loaded && !a->missing;
    pthread_mutex_unlock(&rt->lock);
    return there;
}

int actor_spawn(actor_ctx_t *ctx, const char *addr, const char *sup, const void *state,
                size_t state_len)
{
    if (!ctx->batch)
        return FENTA_EINVAL;
    int rc = check_spawn_args(ctx->rt, addr, &sup);
    if (rc) {
        record_error(ctx, rc);
        return rc;
    }
    exists_t e = {.addr = addr};
    store_read(ctx->rt->store, exists_fn, &e);
    runtime_t *rt = ctx->rt;
    pthread_mutex_lock(&rt->lock);
    actor_t *a = actor_find(rt, addr);
    if (e.exists || (a && a->loaded && !a->missing)) {
        pthread_mutex_unlock(&rt->lock);
        return 0; /* already there: spawning is idempotent */
    }
    fenta_id_t sid;
    id_new(&sid);
    rc = batch_spawn(ctx->batch, addr, sup, &sid, state, state_len);
    if (!rc) {
        a = make_resident(rt, addr, sup, &sid, state, state_len);
        rc = a ? vec_reserve(ctx->spawned, ctx->capspawned, ctx->nspawned + 1) : FENTA_ENOMEM;
        if (!rc)
            ctx->spawned[ctx->nspawned++] = a;
    }
    pthread_mutex_unlock(&rt->lock);
    record_error(ctx, rc);
    return rc;
}

typedef struct {
    int result; /* OP_SPAWN result of the actors op */
} spawn_wait_t;

static void after_spawn(runtime_t *rt, batch_t *b, void *arg)
{
    (void)rt;
    ((spawn_wait_t *)arg)->result = b->ops[0].result;
}

int runtime_spawn(runtime_t *rt, const char *addr, const char *sup, const void *state,
                  size_t state_len)
{
    int rc = check_spawn_args(rt, addr, &sup);
    if (rc)
        return rc;
    batch_t *b = runtime__batch_new();
    if (!b)
        return FENTA_ENOMEM;
    fenta_id_t sid;
    id_new(&sid);
    if ((rc = batch_spawn(b, addr, sup, &sid, state, state_len))) {
        runtime__batch_free(b);
        return rc;
    }
    spawn_wait_t w = {0};
    b->after = after_spawn;
    b->after_arg = &w;
    runtime__commit_wait(rt, runtime__commit_submit(rt, b));
    if (w.result)
        return w.result;
    pthread_mutex_lock(&rt->lock);
    actor_t *a = actor_find(rt, addr);
    if (!a || !a->running) {
        /* Resident but not yet loaded (mail came first), or absent: either
         * way the committed record is the truth; load it on first message. */
        if (a) {
            a->loaded = false;
            a->missing = false;
        }
        a = make_resident(rt, addr, sup, &sid, state, state_len);
        if (a && !a->qlen && !a->uncommitted)
            idle_push(rt, a);
    }
    if (a)
        schedule(rt, a);
    pthread_mutex_unlock(&rt->lock);
    return 0;
}

/* ---- sending from outside -------------------------------------------------- */

int runtime_send_many(runtime_t *rt, envelope_t **envs, size_t n)
{
    if (atomic_load(&rt->stopping))
        return FENTA_ESTOPPED;
    batch_t *b = runtime__batch_new();
    if (!b)
        return FENTA_ENOMEM;
    bool *local = calloc(n ? n : 1, sizeof *local);
    if (!local) {
        runtime__batch_free(b);
        return FENTA_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = batch_message(rt, b, envs[i], &local[i]);
    if (rc) {
        runtime__batch_free(b);
        free(local);
        return rc;
    }
    uint64_t seq = runtime__commit_submit(rt, b);
    /* Delivered before the commit returns: handlers' batches queue after ours. */
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < n; i++) {
        if (local[i])
            deliver_locked(rt, envs[i]);
        else
            envelope_destroy(&envs[i]);
        envs[i] = NULL;
    }
    pthread_mutex_unlock(&rt->lock);
    free(local);
    runtime__commit_wait(rt, seq);
    return 0;
}

int runtime_send_at(runtime_t *rt, const char *to, const char *type, const char *corr,
                    const void *body, size_t body_len, int64_t not_before_ms)
{
    envelope_t *env = envelope_new(to, NULL, type, corr, body, body_len);
    if (!env)
        return to && type ? FENTA_ENOMEM : FENTA_EINVAL;
    env->not_before_ms = not_before_ms;
    int rc = runtime_send_many(rt, &env, 1);
    envelope_destroy(&env);
    return rc;
}

int runtime_send(runtime_t *rt, const char *to, const char *type, const char *corr,
                 const void *body, size_t body_len)
{
    return runtime_send_at(rt, to, type, corr, body, body_len, 0);
}

/* ---- reading --------------------------------------------------------------- */

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
    if ((s->rc = record_parse(v, vl, &rec)))
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
        bool busy = atomic_load(&rt->pending) > 0;
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

/* ---- life cycle ----------------------------------------------------------- */

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s ? s : dflt);
}

runtime_t *runtime_new(const runtime_opts_t *opts, int *err)
{
    int rc = FENTA_ENOMEM;
    runtime_t *rt = calloc(1, sizeof *rt);
    if (!rt || !opts || !opts->data_dir) {
        if (err)
            *err = rt ? FENTA_EINVAL : FENTA_ENOMEM;
        free(rt);
        return NULL;
    }
    rt->opts = *opts;
    if (rt->opts.commit_window_us > 2000)
        rt->opts.commit_window_us = 2000;
    rt->data_dir = strdup(opts->data_dir);
    rt->node = dup_or(opts->node, "local");
    rt->listen = opts->listen ? strdup(opts->listen) : NULL;
    rt->opts.data_dir = rt->data_dir;
    rt->opts.node = rt->node;
    rt->opts.listen = rt->listen;
    pthread_mutex_init(&rt->lock, NULL);
    pthread_mutex_init(&rt->clock_, NULL);
    pthread_cond_init(&rt->ccond, NULL);
    pthread_cond_init(&rt->cdone, NULL);
    pthread_mutex_init(&rt->tlock, NULL);
    pthread_cond_init(&rt->tcond, NULL);
    rt->nbuckets = 1024;
    rt->buckets = calloc(rt->nbuckets, sizeof *rt->buckets);
    if (!rt->data_dir || !rt->node || !rt->buckets)
        goto fail;

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    dispatcher_spec_t dflt[] = {{"default", 2}, {"io", 4}, {"render", cores > 0 ? (int)cores : 1}};
    const dispatcher_spec_t *ds = opts->dispatchers ? opts->dispatchers : dflt;
    size_t nd = opts->dispatchers ? opts->ndispatchers : 3;
    if (nd == 0) {
        rc = FENTA_EINVAL;
        goto fail;
    }
    rt->disps = calloc(nd, sizeof *rt->disps);
    if (!rt->disps)
        goto fail;
    rt->ndisps = nd;
    for (size_t i = 0; i < nd; i++) {
        rt->disps[i].name = strdup(ds[i].name);
        rt->disps[i].nthreads = ds[i].threads > 0 ? ds[i].threads : 1;
        rt->disps[i].wakers = calloc((size_t)rt->disps[i].nthreads, sizeof(waker_t *));
        rt->disps[i].idle = calloc((size_t)rt->disps[i].nthreads, sizeof(waker_t *));
        if (!rt->disps[i].wakers || !rt->disps[i].idle)
            goto fail;
        if (!rt->disps[i].name)
            goto fail;
    }
    if ((rc = supervisor_add(rt, &(supervisor_spec_t){.name = "root"})) != 0)
        goto fail;
    if ((rc = runtime__zmq_init(rt)) != 0)
        goto fail;
    for (size_t i = 0; i < nd; i++)
        for (int t = 0; t < rt->disps[i].nthreads; t++)
            if (!(rt->disps[i].wakers[t] = runtime__waker_new(rt))) {
                rc = FENTA_ETRANSPORT;
                goto fail;
            }

    store_opts_t so = {.initial_map_bytes = opts->initial_map_bytes, .no_sync = opts->no_sync};
    rt->store = store_open(rt->data_dir, &so, &rc);
    if (!rt->store)
        goto fail;
    /* Opened now, not at the crash: the handler may only write(2). */
    if (!(rt->crashlog = crashlog_open(rt->data_dir, &rc)))
        goto fail;
    kind_metrics_init(&rt->unknown_m, "");
    rt->m_pending = metrics_gauge("fenta_mailbox_pending", "Messages waiting in mailboxes", NULL);
    rt->m_resident = metrics_gauge("fenta_actors_resident", "Actors in memory", NULL);
    return rt;
fail:
    if (err)
        *err = rc;
    runtime_destroy(&rt);
    return NULL;
}

int runtime_register(runtime_t *rt, const behaviour_t *beh)
{
    if (rt->started || !beh || !beh->kind || !beh->on_message || strchr(beh->kind, '/'))
        return FENTA_EINVAL;
    for (size_t i = 0; i < rt->nkinds; i++)
        if (strcmp(rt->kinds[i].beh->kind, beh->kind) == 0)
            return FENTA_EEXIST;
    const char *dn = beh->dispatcher ? beh->dispatcher : "default";
    int disp = -1;
    for (size_t i = 0; i < rt->ndisps; i++)
        if (strcmp(rt->disps[i].name, dn) == 0)
            disp = (int)i;
    if (disp < 0)
        return FENTA_ENOTFOUND;
    kind_t *k = realloc(rt->kinds, (rt->nkinds + 1) * sizeof *k);
    if (!k)
        return FENTA_ENOMEM;
    rt->kinds = k;
    k[rt->nkinds].beh = beh;
    k[rt->nkinds].disp = disp;
    k[rt->nkinds].retry = beh->retry.max_attempts ? beh->retry : BACKOFF_DEFAULT;
    kind_metrics_init(&k[rt->nkinds].m, beh->kind);
    rt->nkinds++;
    return 0;
}

int runtime_route(runtime_t *rt, const char *kind, const char *node, const char *endpoint)
{
    if (rt->started || !kind || !node || !endpoint || strlen(node) > 64)
        return FENTA_EINVAL;
    route_t *r = realloc(rt->routes, (rt->nroutes + 1) * sizeof *r);
    if (!r)
        return FENTA_ENOMEM;
    rt->routes = r;
    r[rt->nroutes] = (route_t){strdup(kind), strdup(node), strdup(endpoint)};
    if (!r[rt->nroutes].kind || !r[rt->nroutes].node || !r[rt->nroutes].endpoint)
        return FENTA_ENOMEM;
    rt->nroutes++;
    return 0;
}

/* Recovery: every message left in a mailbox goes back to its actor's queue,
 * in id order (send order per sender); one that does not decode is moved to
 * the dead-letter queue with the reason. */
typedef struct {
    runtime_t *rt;
    batch_t *bad; /* dead letters for undecodable entries */
    size_t n;     /* messages recovered */
} recover_t;

static int recover_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    recover_t *r = arg;
    envelope_t *env = NULL;
    const char *reason = "malformed mailbox key";
    const uint8_t *key = k;
    int rc = kl > ID_BYTES + 1 && key[kl - ID_BYTES - 1] == 0
                 ? envelope_decode(v, vl, &env, &reason)
                 : FENTA_EDECODE;
    if (rc == 0 && strcmp(env->to, (const char *)k) != 0) {
        reason = "envelope address does not match its mailbox";
        envelope_destroy(&env);
        rc = FENTA_EDECODE;
    }
    if (rc) {
        fenta_id_t id;
        if (kl >= ID_BYTES)
            memcpy(id.b, key + kl - ID_BYTES, ID_BYTES);
        else
            id_new(&id);
        char why[256];
        snprintf(why, sizeof why, "undecodable message in mailbox: %s", reason);
        runtime__batch_op(r->bad, OP_DEL, STORE_MBOX, k, kl, NULL, 0);
        runtime__dlq_add(r->bad, NULL, v, vl, &id, why);
        log_msg(LOG_ERROR, NULL, "%s", why);
        atomic_fetch_add(&r->rt->dead, 1);
        return 0;
    }
    deliver_locked(r->rt, env);
    r->n++;
    return 0;
}

static int recover_fn(store_txn_t *txn, void *arg)
{
    recover_t *r = arg;
    atomic_store(&r->rt->timers_count, store_count(txn, STORE_TIMERS));
    return store_scan(txn, STORE_MBOX, NULL, 0, NULL, 0, recover_cb, r);
}

static int spawn_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    return pthread_create(t, NULL, fn, arg) == 0 ? 0 : FENTA_ENOMEM;
}

int runtime_start(runtime_t *rt)
{
    if (rt->started)
        return FENTA_EINVAL;
    atomic_store(&rt->stopping, false);
    rt->cstop = rt->tstop = false;
    int rc = spawn_thread(&rt->committer, runtime__committer_main, rt);
    if (rc)
        return rc;
    /* Crash counts before anything runs: the poison table must be in place
     * when the first message is handled. */
    if ((rc = runtime__quarantine_start(rt)) != 0)
        return rc;
    recover_t r = {.rt = rt, .bad = runtime__batch_new()};
    if (!r.bad)
        return FENTA_ENOMEM;
    pthread_mutex_lock(&rt->lock);
    rc = store_read(rt->store, recover_fn, &r);
    pthread_mutex_unlock(&rt->lock);
    if (r.bad->nops)
        runtime__commit_wait(rt, runtime__commit_submit(rt, r.bad));
    else
        runtime__batch_free(r.bad);
    if (rc)
        return rc;
    if (r.n)
        log_msg(LOG_INFO, NULL, "recovered %zu pending messages", r.n);
    rt->started = true;
    for (size_t i = 0; i < rt->ndisps; i++) {
        dispatcher_t *d = &rt->disps[i];
        d->threads = calloc((size_t)d->nthreads, sizeof(pthread_t));
        if (!d->threads)
            return FENTA_ENOMEM;
        for (int t = 0; t < d->nthreads; t++) {
            void **arg = malloc(3 * sizeof(void *));
            if (!arg)
                return FENTA_ENOMEM;
            arg[0] = rt;
            arg[1] = d;
            arg[2] = d->wakers[t];
            if ((rc = spawn_thread(&d->threads[t], dispatcher_main, arg))) {
                free(arg);
                return rc;
            }
        }
    }
    if ((rc = spawn_thread(&rt->timer_thread, runtime__timer_main, rt)))
        return rc;
    if ((rc = runtime__transport_start(rt)))
        return rc;
    pthread_mutex_lock(&rt->lock);
    runtime__schedule_all(rt);
    pthread_mutex_unlock(&rt->lock);
    return 0;
}

int runtime_stop(runtime_t *rt, int timeout_ms)
{
    if (!rt->started)
        return 0;
    int rc = 0;
    atomic_store(&rt->stopping, true);
    pthread_mutex_lock(&rt->lock);
    wake_all(rt);
    pthread_mutex_unlock(&rt->lock);
    /* Handlers that are running finish; none starts. */
    int64_t deadline = clock_mono_us() + (int64_t)timeout_ms * 1000;
    bool stuck = false;
    for (;;) {
        int running = 0;
        pthread_mutex_lock(&rt->lock);
        for (size_t i = 0; i < rt->ndisps; i++)
            running += rt->disps[i].running;
        pthread_mutex_unlock(&rt->lock);
        if (!running)
            break;
        if (clock_mono_us() > deadline) {
            stuck = true;
            rc = FENTA_ETIMEOUT;
            log_msg(LOG_WARN, NULL, "stop: %d handlers still running after %d ms", running,
                    timeout_ms);
            break;
        }
        usleep(1000);
    }
    if (!stuck)
        for (size_t i = 0; i < rt->ndisps; i++)
            for (int t = 0; t < rt->disps[i].nthreads && rt->disps[i].threads; t++)
                pthread_join(rt->disps[i].threads[t], NULL);
    runtime__transport_stop(rt);
    pthread_mutex_lock(&rt->tlock);
    rt->tstop = true;
    pthread_cond_broadcast(&rt->tcond);
    pthread_mutex_unlock(&rt->tlock);
    pthread_join(rt->timer_thread, NULL);
    pthread_mutex_lock(&rt->clock_);
    rt->cstop = true;
    pthread_cond_broadcast(&rt->ccond);
    pthread_mutex_unlock(&rt->clock_);
    pthread_join(rt->committer, NULL);
    rt->started = false;
    if (stuck) {
        /* A handler never returned: its thread still uses the actor table,
         * so this runtime cannot be freed safely. The caller should exit. */
        rt->opts.max_resident_idle = (size_t)-1;
    }
    for (size_t i = 0; i < rt->ndisps; i++) {
        free(rt->disps[i].threads);
        rt->disps[i].threads = NULL;
    }
    return rc;
}

void runtime_destroy(runtime_t **rt_p)
{
    if (!rt_p || !*rt_p)
        return;
    runtime_t *rt = *rt_p;
    if (rt->started)
        runtime_stop(rt, 5000);
    if (rt->buckets) {
        for (size_t i = 0; i < rt->nbuckets; i++) {
            actor_t *a = rt->buckets[i];
            while (a) {
                actor_t *next = a->hnext;
                call_stop(rt, a);
                actor_free(a);
                a = next;
            }
        }
    }
    free(rt->buckets);
    for (size_t i = 0; i < rt->nroutes; i++) {
        free(rt->routes[i].kind);
        free(rt->routes[i].node);
        free(rt->routes[i].endpoint);
    }
    free(rt->routes);
    for (size_t i = 0; rt->disps && i < rt->ndisps; i++) {
        free(rt->disps[i].name);
        for (int t = 0; rt->disps[i].wakers && t < rt->disps[i].nthreads; t++)
            runtime__waker_free(&rt->disps[i].wakers[t]);
        free(rt->disps[i].wakers);
        free(rt->disps[i].idle);
    }
    free(rt->disps);
    free(rt->kinds);
    runtime__sup_free_all(rt);
    runtime__zmq_term(rt);
    crashlog_destroy(&rt->crashlog);
    runtime__quarantine_free(rt);
    store_close(&rt->store);
    free(rt->data_dir);
    free(rt->node);
    free(rt->listen);
    free(rt);
    *rt_p = NULL;
}

void runtime__restart_children(runtime_t *rt, supervisor_t *s, const actor_t *after, bool deep)
{
    for (size_t i = 0; i < rt->nbuckets; i++)
        for (actor_t *a = rt->buckets[i]; a; a = a->hnext) {
            if (!a->started)
                continue;
            bool mine = deep ? (a->sup && runtime__sup_descends(a->sup, s)) : a->sup == s;
            if (mine && (!after || id_cmp(&a->spawn_id, &after->spawn_id) > 0))
                a->restart_pending = true;
        }
}
