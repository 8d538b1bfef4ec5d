/* transport.c - ZeroMQ between nodes: the outbox sender and the inbox receiver.
 *
 * A send to an actor of a routed kind is committed to the OUTBOX database with
 * the sender's other effects (runtime.c), so it is durable on the sender. This
 * thread sends outbox entries over a DEALER socket per peer node, resends any
 * entry not acknowledged within RESEND_MS (peer down, restarted, message lost)
 * and deletes an entry once the peer acknowledges it. The receiver (a ROUTER
 * bound at opts.listen) takes a burst of messages, drops the ids it has seen
 * (DEDUP database), commits the rest to mailboxes together with their dedup
 * records in one batch, and only then acknowledges: at-least-once on the wire,
 * exactly once into the receiver's mailboxes.
 *
 * The committer wakes this thread over an inproc PAIR socket when a commit
 * added to the outbox. All sockets but the poke end live on this thread.
 *
 * This is the runtime's one ZeroMQ module, so it also owns the context and
 * the wakers that dispatcher threads sleep on (inproc PAIR pairs). */
#include "runtime/runtime_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/vec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define RESEND_MS 1000
#define SEND_PER_ROUND 2000
#define RECV_BURST 1024
#define TRANSPORT_MAX_FRAME (16LL << 20) /* largest envelope taken from the wire */

typedef struct {
    fenta_id_t id; /* outbox entry */
    int64_t sent;  /* when last sent, ms */
} inflight_t;

typedef struct {
    char *node;     /* peer node name */
    void *sock;     /* DEALER connected to the peer */
    inflight_t *fl; /* entries sent and not acked, sorted by id */
    size_t nfl;
} peer_t;

typedef struct {
    void *ctx;                 /* the runtime's ZeroMQ context (not owned) */
    void *router;              /* bound at opts.listen, or NULL */
    void *poke_rx;             /* this thread's end of the poke pair */
    void *poke_tx;             /* the committer's end */
    pthread_mutex_t poke_lock; /* poke_tx is used by whichever thread pokes */
    peer_t *peers;
    size_t npeers;
    pthread_t thread;
    _Atomic bool stop;
} transport_t;

/* ---- the context and the dispatchers' wakers ---------------------------- */

struct waker {
    void *rx; /* the sleeping thread's end */
    void *tx; /* the waking end, used under the runtime lock */
};

int runtime__zmq_init(runtime_t *rt)
{
    rt->zctx = zmq_ctx_new();
    return rt->zctx ? 0 : FENTA_ETRANSPORT;
}

void runtime__zmq_term(runtime_t *rt)
{
    if (rt->zctx)
        zmq_ctx_term(rt->zctx);
    rt->zctx = NULL;
}

waker_t *runtime__waker_new(runtime_t *rt)
{
    waker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://fenta-wake-%p", (void *)w);
    int zero = 0;
    w->rx = zmq_socket(rt->zctx, ZMQ_PAIR);
    w->tx = zmq_socket(rt->zctx, ZMQ_PAIR);
    if (!w->rx || !w->tx || zmq_bind(w->rx, ep) || zmq_connect(w->tx, ep)) {
        runtime__waker_free(&w);
        return NULL;
    }
    zmq_setsockopt(w->rx, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(w->tx, ZMQ_LINGER, &zero, sizeof zero);
    return w;
}

void runtime__waker_free(waker_t **w_p)
{
    if (!w_p || !*w_p)
        return;
    if ((*w_p)->rx)
        zmq_close((*w_p)->rx);
    if ((*w_p)->tx)
        zmq_close((*w_p)->tx);
    free(*w_p);
    *w_p = NULL;
}

void runtime__waker_wait(waker_t *w)
{
    char b;
    while (zmq_recv(w->rx, &b, sizeof b, 0) < 0 && zmq_errno() == EINTR)
        ;
}

void runtime__waker_signal(waker_t *w)
{
    /* At most one token is ever outstanding per waker (the thread is popped
     * from the idle stack when signalled), so this never blocks. */
    zmq_send(w->tx, "", 0, ZMQ_DONTWAIT);
}

/* ---- sending -------------------------------------------------------------- */

typedef struct {
    transport_t *t;
    peer_t *p;
    int64_t now;
    inflight_t *next; /* the new in-flight list */
    size_t n, cap;
    size_t sent;
} scan_t;

static int64_t prev_sent(const peer_t *p, const fenta_id_t *id)
{
    size_t lo = 0, hi = p->nfl;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = id_cmp(&p->fl[mid].id, id);
        if (c == 0)
            return p->fl[mid].sent;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int outbox_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    scan_t *s = arg;
    fenta_id_t id;
    memcpy(id.b, (const uint8_t *)k + kl - ID_BYTES, ID_BYTES);
    int64_t sent = prev_sent(s->p, &id);
    if ((!sent || s->now - sent >= RESEND_MS) && s->sent < SEND_PER_ROUND) {
        if (zmq_send(s->p->sock, "M", 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 1 &&
            zmq_send(s->p->sock, v, vl, ZMQ_DONTWAIT) == (int)vl) {
            sent = s->now;
            s->sent++;
        }
    }
    if (!sent)
        return 0; /* not sent (peer unreachable): next round */
    if (vec_reserve(s->next, s->cap, s->n + 1) != 0)
        return 0;
    s->next[s->n++] = (inflight_t){id, sent};
    return 0;
}

static int outbox_fn(store_txn_t *txn, void *arg)
{
    scan_t *s = arg;
    char prefix[80];
    size_t pl = (size_t)snprintf(prefix, sizeof prefix, "%s", s->p->node) + 1; /* with NUL */
    return store_scan(txn, STORE_OUTBOX, prefix, pl, NULL, 0, outbox_cb, s);
}

static void send_pending(runtime_t *rt, transport_t *t)
{
    for (size_t i = 0; i < t->npeers; i++) {
        scan_t s = {.t = t, .p = &t->peers[i], .now = clock_now_ms()};
        store_read(rt->store, outbox_fn, &s);
        free(t->peers[i].fl);
        t->peers[i].fl = s.next;
        t->peers[i].nfl = s.n;
    }
}

/* Acknowledged ids: delete them from the outbox (no need to wait: a resend
 * before the delete commits is deduplicated by the peer). */
static void take_acks(runtime_t *rt, peer_t *p, const uint8_t *ids, size_t len)
{
    batch_t *b = runtime__batch_new();
    if (!b)
        return;
    uint8_t key[80 + ID_BYTES];
    size_t nl = strlen(p->node);
    memcpy(key, p->node, nl);
    key[nl] = 0;
    for (size_t off = 0; off + ID_BYTES <= len; off += ID_BYTES) {
        memcpy(key + nl + 1, ids + off, ID_BYTES);
        runtime__batch_op(b, OP_DEL, STORE_OUTBOX, key, nl + 1 + ID_BYTES, NULL, 0);
    }
    runtime__commit_submit(rt, b);
}

/* ---- receiving -------------------------------------------------------------- */

typedef struct {
    zmq_msg_t ident; /* the sender's routing id */
    envelope_t *env; /* decoded, NULL if not */
    fenta_id_t id;   /* to acknowledge */
    bool dup;        /* seen before */
    uint8_t *raw;    /* a well-framed body that did not decode (owned) */
    size_t raw_len;  /* bytes in raw */
    char why[160];   /* why it did not decode */
} inbound_t;

typedef struct {
    inbound_t *in;
    size_t n;
} dedup_t;

static int dedup_fn(store_txn_t *txn, void *arg)
{
    dedup_t *d = arg;
    for (size_t i = 0; i < d->n; i++) {
        if (!d->in[i].env)
            continue;
        const void *v;
        size_t vl;
        d->in[i].dup = store_get(txn, STORE_DEDUP, d->in[i].id.b, ID_BYTES, &v, &vl) == 0;
        for (size_t j = 0; j < i && !d->in[i].dup; j++)
            d->in[i].dup = d->in[j].env && id_cmp(&d->in[j].id, &d->in[i].id) == 0;
    }
    return 0;
}

/* Reads one [ident, "M", wire] message; false when none is waiting. */
static bool recv_one(transport_t *t, inbound_t *in, int flags)
{
    zmq_msg_init(&in->ident);
    if (zmq_msg_recv(&in->ident, t->router, flags) < 0) {
        zmq_msg_close(&in->ident);
        return false;
    }
    zmq_msg_t part;
    int nparts = 0;
    in->env = NULL;
    bool ok = false;
    zmq_msg_init(&part);
    /* Read every remaining frame; only the [ "M", wire ] shape is accepted. */
    while (zmq_msg_more(nparts ? &part : &in->ident)) {
        zmq_msg_close(&part);
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, t->router, 0) < 0)
            break;
        nparts++;
        if (nparts == 1)
            ok = zmq_msg_size(&part) == 1 && *(char *)zmq_msg_data(&part) == 'M';
        else if (nparts == 2 && ok) {
            const char *reason = NULL;
            if (envelope_decode(zmq_msg_data(&part), zmq_msg_size(&part), &in->env, &reason)) {
                /* Kept for the dead-letter queue, with the reason. */
                in->env = NULL;
                in->raw_len = zmq_msg_size(&part);
                in->raw = malloc(in->raw_len ? in->raw_len : 1);
                if (in->raw)
                    memcpy(in->raw, zmq_msg_data(&part), in->raw_len);
                snprintf(in->why, sizeof in->why, "undecodable message from another node: %s",
                         reason);
            }
        }
    }
    zmq_msg_close(&part);
    if (nparts != 2 || !ok) {
        /* Not our framing at all: nothing to keep, nothing to acknowledge. */
        log_msg(LOG_ERROR, NULL, "transport: dropped message of %d frames", nparts + 1);
        envelope_destroy(&in->env);
        free(in->raw);
        in->raw = NULL;
    }
    if (in->env)
        in->id = in->env->id;
    return true;
}

/* Takes a burst of messages: the new ones are committed (mailbox, or timers
 * when their not-before is still ahead) with their dedup records in one
 * batch; then new ones are delivered and every stored or already-known id is
 * acknowledged. A message that could not be stored is not acknowledged, so
 * the sender sends it again. */
static void receive_burst(runtime_t *rt, transport_t *t)
{
    inbound_t *in = calloc(RECV_BURST, sizeof *in);
    bool *stored = calloc(RECV_BURST, sizeof *stored);
    if (!in || !stored) {
        free(in);
        free(stored);
        return;
    }
    size_t n = 0;
    while (n < RECV_BURST && recv_one(t, &in[n], ZMQ_DONTWAIT))
        n++;
    dedup_t d = {in, n};
    if (n)
        store_read(rt->store, dedup_fn, &d);
    batch_t *b = n ? runtime__batch_new() : NULL;
    int64_t now = clock_now_ms();
    uint8_t nowb[8];
    for (int i = 7, x = 0; i >= 0; i--, x++)
        nowb[i] = (uint8_t)((uint64_t)now >> (8 * x));
    bool later_any = false;
    for (size_t i = 0; b && i < n; i++) {
        if (in[i].raw) {
            /* No id to acknowledge or deduplicate by: dead-letter it once. */
            fenta_id_t id;
            id_new(&id);
            log_msg(LOG_ERROR, NULL, "transport: %s", in[i].why);
            runtime__dlq_add(b, NULL, in[i].raw, in[i].raw_len, &id, in[i].why);
            atomic_fetch_add(&rt->dead, 1);
            continue;
        }
        if (!in[i].env || in[i].dup)
            continue;
        uint8_t *wire;
        size_t wl;
        if (envelope_encode(in[i].env, &wire, &wl))
            continue;
        uint8_t key[ENVELOPE_ADDR_MAX + 1 + ID_BYTES];
        bool later = in[i].env->not_before_ms > now;
        size_t kl = ID_BYTES + 8;
        if (later)
            runtime__timer_key(key, in[i].env->not_before_ms, &in[i].id);
        else
            kl = runtime__mbox_key(key, in[i].env->to, &in[i].id);
        stored[i] =
            runtime__batch_op(b, OP_PUT, later ? STORE_TIMERS : STORE_MBOX, key, kl, wire, wl) ==
                0 &&
            runtime__batch_op(b, OP_PUT, STORE_DEDUP, in[i].id.b, ID_BYTES, nowb, sizeof nowb) == 0;
        if (stored[i] && later) {
            envelope_destroy(&in[i].env); /* the timer thread delivers it when due */
            later_any = true;
        }
        free(wire);
    }
    if (b && b->nops)
        runtime__commit_wait(rt, runtime__commit_submit(rt, b));
    else
        runtime__batch_free(b);
    if (later_any)
        runtime__timers_poke(rt);
    for (size_t i = 0; i < n; i++) {
        if (stored[i] && in[i].env) {
            runtime__deliver(rt, in[i].env);
            in[i].env = NULL;
        }
        /* Duplicates are acknowledged too: the sender's copy must go. An
         * undecodable message has no id and is dropped (logged). */
        if (stored[i] || in[i].dup) {
            zmq_msg_send(&in[i].ident, t->router, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(t->router, "A", 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(t->router, in[i].id.b, ID_BYTES, ZMQ_DONTWAIT);
        }
        envelope_destroy(&in[i].env);
        free(in[i].raw);
        zmq_msg_close(&in[i].ident);
    }
    free(stored);
    free(in);
}

/* Dedup records older than the retention are dropped, a slice at a time.
 * A sender that resends a message older than that (its peer was away for
 * longer) could have it taken twice: the retention must exceed any outage. */
#define DEDUP_RETENTION_MS (7LL * 24 * 3600 * 1000)
#define DEDUP_PRUNE_SLICE 10000

typedef struct {
    int64_t cutoff;
    batch_t *b;
    size_t n;
} prune_t;

static int prune_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    (void)v, (void)vl;
    prune_t *p = arg;
    if (kl != ID_BYTES || id_time_ms((const fenta_id_t *)k) >= p->cutoff ||
        p->n >= DEDUP_PRUNE_SLICE)
        return 1; /* ids sort by time: everything after is newer */
    if (runtime__batch_op(p->b, OP_DEL, STORE_DEDUP, k, kl, NULL, 0))
        return 1;
    p->n++;
    return 0;
}

static int prune_fn(store_txn_t *txn, void *arg)
{
    int rc = store_scan(txn, STORE_DEDUP, NULL, 0, NULL, 0, prune_cb, arg);
    return rc > 0 ? 0 : rc;
}

static void prune_dedup(runtime_t *rt)
{
    prune_t p = {.cutoff = clock_now_ms() - DEDUP_RETENTION_MS, .b = runtime__batch_new()};
    if (!p.b)
        return;
    store_read(rt->store, prune_fn, &p);
    if (p.n)
        runtime__commit_submit(rt, p.b);
    else
        runtime__batch_free(p.b);
}

/* ---- the thread ------------------------------------------------------------ */

static void drain(void *sock)
{
    char buf[16];
    while (zmq_recv(sock, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        ;
}

static void read_acks(runtime_t *rt, peer_t *p)
{
    for (;;) {
        zmq_msg_t a, ids;
        zmq_msg_init(&a);
        if (zmq_msg_recv(&a, p->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&a);
            return;
        }
        bool is_ack = zmq_msg_size(&a) == 1 && *(char *)zmq_msg_data(&a) == 'A';
        bool more = zmq_msg_more(&a);
        zmq_msg_close(&a);
        if (!more)
            continue;
        zmq_msg_init(&ids);
        if (zmq_msg_recv(&ids, p->sock, 0) >= 0 && is_ack)
            take_acks(rt, p, zmq_msg_data(&ids), zmq_msg_size(&ids));
        while (zmq_msg_more(&ids)) { /* skip anything unexpected */
            zmq_msg_close(&ids);
            zmq_msg_init(&ids);
            if (zmq_msg_recv(&ids, p->sock, 0) < 0)
                break;
        }
        zmq_msg_close(&ids);
    }
}

static void *transport_main(void *arg)
{
    runtime_t *rt = arg;
    transport_t *t = rt->transport;
    size_t np = t->npeers + 2;
    zmq_pollitem_t *items = calloc(np, sizeof *items);
    if (!items)
        return NULL;
    items[0] = (zmq_pollitem_t){.socket = t->poke_rx, .events = ZMQ_POLLIN};
    items[1] = (zmq_pollitem_t){.socket = t->router, .events = t->router ? ZMQ_POLLIN : 0};
    for (size_t i = 0; i < t->npeers; i++)
        items[2 + i] = (zmq_pollitem_t){.socket = t->peers[i].sock, .events = ZMQ_POLLIN};
    int64_t last_scan = 0, last_prune = 0;
    send_pending(rt, t); /* whatever the last run left unacknowledged */
    while (!atomic_load(&t->stop)) {
        int n = zmq_poll(items, (int)np, 100);
        if (n < 0)
            continue;
        bool scan = false;
        if (items[0].revents & ZMQ_POLLIN) {
            drain(t->poke_rx);
            scan = true;
        }
        if (t->router && (items[1].revents & ZMQ_POLLIN))
            receive_burst(rt, t);
        for (size_t i = 0; i < t->npeers; i++)
            if (items[2 + i].revents & ZMQ_POLLIN)
                read_acks(rt, &t->peers[i]);
        int64_t now = clock_now_ms();
        if (t->npeers && (scan || now - last_scan >= RESEND_MS / 4)) {
            send_pending(rt, t);
            last_scan = now;
        }
        if (t->router && now - last_prune >= 60000) {
            prune_dedup(rt);
            last_prune = now;
        }
    }
    free(items);
    return NULL;
}

int runtime__transport_start(runtime_t *rt)
{
    if (!rt->listen && !rt->nroutes)
        return 0;
    transport_t *t = calloc(1, sizeof *t);
    if (!t)
        return FENTA_ENOMEM;
    pthread_mutex_init(&t->poke_lock, NULL);
    t->ctx = rt->zctx;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://fenta-poke-%p", (void *)t);
    t->poke_rx = zmq_socket(t->ctx, ZMQ_PAIR);
    t->poke_tx = zmq_socket(t->ctx, ZMQ_PAIR);
    int zero = 0;
    if (!t->ctx || !t->poke_rx || !t->poke_tx || zmq_bind(t->poke_rx, ep) ||
        zmq_connect(t->poke_tx, ep))
        goto fail;
    zmq_setsockopt(t->poke_tx, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(t->poke_rx, ZMQ_LINGER, &zero, sizeof zero);
    if (rt->listen) {
        t->router = zmq_socket(t->ctx, ZMQ_ROUTER);
        if (!t->router)
            goto fail;
        zmq_setsockopt(t->router, ZMQ_LINGER, &zero, sizeof zero);
        /* A peer announcing a huge frame is disconnected before libzmq
         * allocates it: the wire is not trusted. */
        int64_t maxmsg = TRANSPORT_MAX_FRAME;
        zmq_setsockopt(t->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
        if (zmq_bind(t->router, rt->listen) != 0) {
            log_msg(LOG_ERROR, NULL, "transport: cannot listen on %s: %s", rt->listen,
                    zmq_strerror(zmq_errno()));
            goto fail;
        }
    }
    /* One DEALER per distinct peer node. */
    t->peers = calloc(rt->nroutes ? rt->nroutes : 1, sizeof *t->peers);
    if (!t->peers)
        goto fail;
    for (size_t i = 0; i < rt->nroutes; i++) {
        bool seen = false;
        for (size_t j = 0; j < t->npeers; j++)
            seen |= strcmp(t->peers[j].node, rt->routes[i].node) == 0;
        if (seen)
            continue;
        peer_t *p = &t->peers[t->npeers];
        p->node = strdup(rt->routes[i].node);
        p->sock = zmq_socket(t->ctx, ZMQ_DEALER);
        int one = 1, hwm = 100000;
        if (!p->node || !p->sock)
            goto fail;
        t->npeers++;
        zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(p->sock, ZMQ_IMMEDIATE, &one, sizeof one);
        zmq_setsockopt(p->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (zmq_connect(p->sock, rt->routes[i].endpoint) != 0) {
            log_msg(LOG_ERROR, NULL, "transport: bad endpoint %s: %s", rt->routes[i].endpoint,
                    zmq_strerror(zmq_errno()));
            goto fail;
        }
    }
    rt->transport = t;
    if (pthread_create(&t->thread, NULL, transport_main, rt) != 0) {
        rt->transport = NULL;
        goto fail;
    }
    return 0;
fail:
    for (size_t i = 0; i < t->npeers; i++) {
        if (t->peers[i].sock)
            zmq_close(t->peers[i].sock);
        free(t->peers[i].node);
    }
    free(t->peers);
    if (t->router)
        zmq_close(t->router);
    if (t->poke_rx)
        zmq_close(t->poke_rx);
    if (t->poke_tx)
        zmq_close(t->poke_tx);
    free(t);
    return FENTA_ETRANSPORT;
}

void runtime__transport_poke(runtime_t *rt)
{
    transport_t *t = rt->transport;
    if (!t)
        return;
    pthread_mutex_lock(&t->poke_lock);
    zmq_send(t->poke_tx, "", 0, ZMQ_DONTWAIT);
    pthread_mutex_unlock(&t->poke_lock);
}

void runtime__transport_stop(runtime_t *rt)
{
    transport_t *t = rt->transport;
    if (!t)
        return;
    atomic_store(&t->stop, true);
    runtime__transport_poke(rt);
    pthread_join(t->thread, NULL);
    for (size_t i = 0; i < t->npeers; i++) {
        zmq_close(t->peers[i].sock);
        free(t->peers[i].node);
        free(t->peers[i].fl);
    }
    free(t->peers);
    if (t->router)
        zmq_close(t->router);
    zmq_close(t->poke_rx);
    zmq_close(t->poke_tx);
    pthread_mutex_destroy(&t->poke_lock);
    free(t);
    rt->transport = NULL;
}
