/* runtime.c - dispatch: delivering messages to actors' in-memory queues,
 * the dispatchers that run them, handling one message (its retry or dead
 * letter on failure), sending from outside, and the runtime's life cycle.
 * The actor table, loading and passivation live in actors_table.c, the
 * handler context API and spawning in actor_ctx.c, inspection (state, stats,
 * quiesce) in runtime_inspect.c; durability in commit.c (group commit),
 * delayed messages in timers.c, supervision in supervisor.c, dead letters in
 * dlq.c.
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- keys and routes ---------------------------------------------------- */

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

const kind_metrics_t *runtime__metrics_of(runtime_t *rt, const actor_t *a)
{
    return a->kind ? &a->kind->m : &rt->unknown_m;
}

/* One log line about a message, with its ids. */
void runtime__log_message(log_level_t lvl, const actor_t *a, const envelope_t *msg,
                          const char *text, const char *error)
{
    if (!log_enabled(lvl))
        return;
    char id[ID_STR_LEN + 1], attempt[16];
    id_to_str(&msg->id, id);
    snprintf(attempt, sizeof attempt, "%u", msg->attempt);
    log_kv(lvl, &(log_ctx_t){.actor = a->addr, .msg_id = id, .corr = msg->corr}, text,
           (const char *const[]){"type", msg->type, "attempt", attempt, "error", error, NULL});
}

static int queue_push(actor_t *a, envelope_t *env)
{
    if (a->qlen == a->qcap) {
        size_t old = a->qcap;
        if (vec_reserve(a->q, a->qcap, a->qlen + 1) != 0)
            return FENTA_ENOMEM;
        /* The full ring wrapped at the old end: its first qhead slots are
         * its tail, which goes after the old end (the room at least
         * doubled, so it fits) to keep the ring in one piece. */
        memcpy(a->q + old, a->q, a->qhead * sizeof *a->q);
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
void runtime__schedule(runtime_t *rt, actor_t *a)
{
    if (a->queued || a->running || !a->qlen || atomic_load(&rt->stopping))
        return;
    if (!runtime__sup_running(a->sup))
        return; /* its supervisor gave up; mail waits for an operator */
    dispatcher_t *d = &rt->disps[a->kind ? a->kind->disp : 0];
    runtime__idle_unlink(rt, a);
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
            runtime__schedule(rt, a);
}

static void deliver_locked(runtime_t *rt, envelope_t *env)
{
    actor_t *a = runtime__actor_get(rt, env->to);
    if (!a || queue_push(a, env) != 0) {
        /* Out of memory: the message is durable; it is picked up on the next start. */
        log_msg(LOG_ERROR, NULL, "out of memory delivering to %s; left in the store", env->to);
        envelope_destroy(&env);
        return;
    }
    atomic_fetch_add(&rt->pending, 1);
    metric_add(rt->m_pending, 1);
    runtime__schedule(rt, a);
}

void runtime__deliver(runtime_t *rt, envelope_t *env)
{
    pthread_mutex_lock(&rt->lock);
    deliver_locked(rt, env);
    pthread_mutex_unlock(&rt->lock);
}

/* ---- handling one message ------------------------------------------------ */

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
            metric_inc(runtime__metrics_of(rt, a)->retried);
            runtime__log_message(LOG_WARN, a, msg, "handler failed; retry scheduled", why);
        }
        return rc;
    }
    atomic_fetch_add(&rt->dead, 1);
    metric_inc(runtime__metrics_of(rt, a)->dead);
    runtime__log_message(LOG_ERROR, a, msg, "message dead-lettered", why);
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
        runtime__actor_load(rt, a);
    int rc = 0;
    const char *why = NULL;
    char whybuf[600];
    if (a->missing || !a->kind) {
        why = a->missing ? "no such actor" : "no behaviour registered for this kind";
        runtime__ctx_reset(&c);
        c.batch = runtime__batch_new();
        if (c.batch) {
            runtime__batch_op(c.batch, OP_DEL, STORE_MBOX, mk, mkl, NULL, 0);
            envelope_add_error(msg, msg->attempt, clock_now_ms(), why);
            runtime__dlq_add(c.batch, msg, NULL, 0, &msg->id, why);
            atomic_fetch_add(&rt->dead, 1);
            metric_inc(runtime__metrics_of(rt, a)->dead);
            runtime__log_message(LOG_ERROR, a, msg, "message dead-lettered", why);
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
        metric_inc(runtime__metrics_of(rt, a)->dead);
        metric_inc(runtime__metrics_of(rt, a)->quarantined);
        goto commit;
    }
    /* From here to the handler's return a fatal signal names this message
     * in the crash journal: on_start runs for it too (a state it cannot
     * load would crash every message; each then costs a few restarts and
     * lands in the dead-letter queue, where an operator sees it). */
    crashlog_begin(a->addr, &msg->id, msg->type, msg->corr, fp);
    if (a->restart_pending) {
        runtime__actor_stop(rt, a);
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
        runtime__ctx_reset(&c);
        c.batch = runtime__batch_new();
        if (c.batch) {
            runtime__batch_op(c.batch, OP_DEL, STORE_MBOX, mk, mkl, NULL, 0);
            fail_message(rt, a, c.batch, msg, whybuf);
        }
        atomic_fetch_add(&rt->failed, 1);
        metric_inc(runtime__metrics_of(rt, a)->failed);
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
        metric_inc(runtime__metrics_of(rt, a)->processed);
    }
commit:
    metric_observe(runtime__metrics_of(rt, a)->latency, (double)(clock_mono_us() - t0) / 1e6);
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
    runtime__ctx_reset(&c);
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
        /* Idle: sleep on this thread's ZeroMQ inproc waker. runtime__schedule() pops
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
            runtime__schedule(rt, a); /* one message per turn: back of the queue */
        else if (!a->uncommitted)
            runtime__idle_push(rt, a);
        bool over = rt->nidle > (rt->opts.max_resident_idle ? rt->opts.max_resident_idle : 10000);
        if (over) {
            pthread_mutex_unlock(&rt->lock);
            runtime__passivate(rt);
            pthread_mutex_lock(&rt->lock);
        }
    }
    pthread_mutex_unlock(&rt->lock);
    crashlog_thread_leave();
    return NULL;
}

int runtime__batch_message(runtime_t *rt, batch_t *b, const envelope_t *env, bool *local)
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
        rc = runtime__batch_message(rt, b, envs[i], &local[i]);
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
    if (vec_reserve(rt->kinds, rt->capkinds, rt->nkinds + 1) != 0)
        return FENTA_ENOMEM;
    kind_t *k = rt->kinds;
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
    if (vec_reserve(rt->routes, rt->caproutes, rt->nroutes + 1) != 0)
        return FENTA_ENOMEM;
    route_t *r = &rt->routes[rt->nroutes];
    *r = (route_t){strdup(kind), strdup(node), strdup(endpoint)};
    if (!r->kind || !r->node || !r->endpoint) {
        free(r->kind); /* not counted: runtime_destroy would not free them */
        free(r->node);
        free(r->endpoint);
        return FENTA_ENOMEM;
    }
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
                runtime__actor_stop(rt, a);
                runtime__actor_free(a);
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
