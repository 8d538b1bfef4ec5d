/* actors_table.c - the actors in memory: the address table, the records
 * they are stored as, loading a record on an actor's first message, and
 * passivation (dropping idle actors past max_resident_idle, oldest first).
 * Dispatch (runtime.c) finds and schedules actors through it.
 *
 * Locking: rt->lock guards the table and the idle list (runtime.c says
 * more); loading and on_stop run without it, with the actor held running. */
#include "runtime/runtime_internal.h"
#include "runtime/error.h"
#include "runtime/metrics.h"

#include <stdlib.h>
#include <string.h>

#define RECORD_VERSION 1

/* ---- actor records ------------------------------------------------------- */

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

int runtime__record_parse(const void *buf, size_t len, record_view_t *out)
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

/* ---- actor table (rt->lock held) ----------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
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

actor_t *runtime__actor_find(runtime_t *rt, const char *addr)
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

actor_t *runtime__actor_get(runtime_t *rt, const char *addr)
{
    actor_t *a = runtime__actor_find(rt, addr);
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

void runtime__idle_unlink(runtime_t *rt, actor_t *a)
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

void runtime__idle_push(runtime_t *rt, actor_t *a)
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

void runtime__actor_free(actor_t *a)
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
    runtime__idle_unlink(rt, a);
    rt->nactors--;
    metric_set(rt->m_resident, (double)rt->nactors);
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
    if ((l->rc = runtime__record_parse(v, vl, &l->rec)))
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
void runtime__actor_load(runtime_t *rt, actor_t *a)
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

void runtime__actor_stop(runtime_t *rt, actor_t *a)
{
    if (a->started && a->kind && a->kind->beh->on_stop) {
        actor_ctx_t c = {.rt = rt, .actor = a};
        a->kind->beh->on_stop(&c);
    }
    a->started = false;
    a->user = NULL;
}

/* Drops idle resident actors beyond the cap. Called without the lock. */
void runtime__passivate(runtime_t *rt)
{
    size_t cap = rt->opts.max_resident_idle ? rt->opts.max_resident_idle : 10000;
    for (;;) {
        pthread_mutex_lock(&rt->lock);
        actor_t *a = rt->idle_head;
        if (rt->nidle <= cap || !a) {
            pthread_mutex_unlock(&rt->lock);
            return;
        }
        runtime__idle_unlink(rt, a);
        if (a->qlen || a->running || a->queued || a->uncommitted) {
            pthread_mutex_unlock(&rt->lock);
            continue; /* it became busy; it will be listed again when idle */
        }
        a->running = true; /* keep dispatchers off while on_stop runs */
        pthread_mutex_unlock(&rt->lock);
        runtime__actor_stop(rt, a);
        pthread_mutex_lock(&rt->lock);
        a->running = false;
        if (a->qlen) {
            runtime__schedule(rt, a); /* mail arrived meanwhile; keep it */
        } else {
            actor_unlink(rt, a);
            runtime__actor_free(a);
        }
        pthread_mutex_unlock(&rt->lock);
    }
}

void runtime__actor_committed(runtime_t *rt, actor_t *a)
{
    /* Only committed actors may leave memory: their store record is current. */
    if (--a->uncommitted == 0 && !a->qlen && !a->running && !a->queued)
        runtime__idle_push(rt, a);
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
