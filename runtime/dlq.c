/* dlq.c - dead-letter records and the operator's list/inspect/replay/drop.
 *
 * Record: version(1) decodable(1) dead_at(8, big-endian) error_len(2) error
 * payload, where the payload is the encoded envelope (decodable) or the raw
 * bytes that failed to decode. Keyed by message id, so listing is in message
 * order and a message that dies twice has one entry. Replays and drops go
 * through the committer like every other write. */
#include "runtime/dlq.h"
#include "runtime/runtime_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/vec.h"

#include <stdlib.h>
#include <string.h>

#define DLQ_VERSION 1
#define DLQ_HDR 12

int runtime__dlq_add(batch_t *b, const envelope_t *env, const void *raw, size_t raw_len,
                     const fenta_id_t *id, const char *error)
{
    uint8_t *wire = NULL;
    size_t wl = 0;
    if (env) {
        int rc = envelope_encode(env, &wire, &wl);
        if (rc)
            return rc;
    } else {
        wire = (uint8_t *)raw;
        wl = raw_len;
    }
    size_t el = strlen(error);
    if (el > 1024)
        el = 1024;
    size_t n = DLQ_HDR + el + wl;
    uint8_t *r = malloc(n);
    if (!r) {
        if (env)
            free(wire);
        return FENTA_ENOMEM;
    }
    uint64_t at = (uint64_t)clock_now_ms();
    r[0] = DLQ_VERSION;
    r[1] = env ? 1 : 0;
    for (int i = 9; i >= 2; i--, at >>= 8)
        r[i] = (uint8_t)at;
    r[10] = (uint8_t)(el >> 8);
    r[11] = (uint8_t)el;
    memcpy(r + DLQ_HDR, error, el);
    if (wl)
        memcpy(r + DLQ_HDR + el, wire, wl);
    int rc = runtime__batch_op(b, OP_PUT, STORE_DLQ, id->b, ID_BYTES, r, n);
    free(r);
    if (env)
        free(wire);
    return rc;
}

/* Parses a record into an entry (the caller's). */
static int entry_parse(const void *key, const void *val, size_t len, dlq_entry_t **out)
{
    const uint8_t *r = val;
    if (len < DLQ_HDR || r[0] != DLQ_VERSION)
        return FENTA_EDECODE;
    size_t el = ((size_t)r[10] << 8) | r[11];
    if (len < DLQ_HDR + el)
        return FENTA_EDECODE;
    dlq_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return FENTA_ENOMEM;
    memcpy(e->id.b, key, ID_BYTES);
    uint64_t at = 0;
    for (int i = 2; i <= 9; i++)
        at = (at << 8) | r[i];
    e->dead_at_ms = (int64_t)at;
    e->error = strndup((const char *)r + DLQ_HDR, el);
    const uint8_t *p = r + DLQ_HDR + el;
    size_t pl = len - DLQ_HDR - el;
    int rc = e->error ? 0 : FENTA_ENOMEM;
    if (!rc && r[1]) {
        rc = envelope_decode(p, pl, &e->env, NULL);
    } else if (!rc) {
        e->raw = malloc(pl ? pl : 1);
        if (!e->raw)
            rc = FENTA_ENOMEM;
        else if (pl)
            memcpy(e->raw, p, pl);
        e->raw_len = pl;
    }
    if (rc) {
        dlq_entry_destroy(&e);
        return rc;
    }
    *out = e;
    return 0;
}

void dlq_entry_destroy(dlq_entry_t **entry_p)
{
    if (!entry_p || !*entry_p)
        return;
    dlq_entry_t *e = *entry_p;
    envelope_destroy(&e->env);
    free(e->raw);
    free(e->error);
    free(e);
    *entry_p = NULL;
}

static bool matches(const dlq_filter_t *f, const dlq_entry_t *e)
{
    if (!f)
        return true;
    if (f->to_prefix && (!e->env || strncmp(e->env->to, f->to_prefix, strlen(f->to_prefix)) != 0))
        return false;
    if (f->type && (!e->env || strcmp(e->env->type, f->type) != 0))
        return false;
    if (f->since_ms && e->dead_at_ms < f->since_ms)
        return false;
    if (f->until_ms && e->dead_at_ms >= f->until_ms)
        return false;
    return true;
}

typedef struct {
    const dlq_filter_t *f;
    const fenta_id_t *after;
    size_t limit, given;
    int (*cb)(const dlq_entry_t *e, void *arg);
    void *arg;
} list_t;

static int list_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    list_t *l = arg;
    if (kl != ID_BYTES)
        return 0;
    if (l->after && memcmp(k, l->after->b, ID_BYTES) <= 0)
        return 0;
    dlq_entry_t *e = NULL;
    if (entry_parse(k, v, vl, &e) != 0)
        return 0; /* a record we cannot read is skipped, not fatal */
    int rc = 0;
    if (matches(l->f, e)) {
        rc = l->cb(e, l->arg);
        l->given++;
        if (!rc && l->limit && l->given >= l->limit)
            rc = 1;
    }
    dlq_entry_destroy(&e);
    return rc;
}

static int list_fn(store_txn_t *txn, void *arg)
{
    list_t *l = arg;
    int rc = store_scan(txn, STORE_DLQ, NULL, 0, l->after ? l->after->b : NULL,
                        l->after ? ID_BYTES : 0, list_cb, l);
    return rc > 0 ? 0 : rc;
}

int dlq_list(runtime_t *rt, const dlq_filter_t *f, const fenta_id_t *after, size_t limit,
             int (*cb)(const dlq_entry_t *e, void *arg), void *arg)
{
    list_t l = {.f = f, .after = after, .limit = limit, .cb = cb, .arg = arg};
    return store_read(rt->store, list_fn, &l);
}

typedef struct {
    const fenta_id_t *id;
    dlq_entry_t *e;
    int rc;
} get_t;

static int get_fn(store_txn_t *txn, void *arg)
{
    get_t *g = arg;
    const void *v;
    size_t vl;
    g->rc = store_get(txn, STORE_DLQ, g->id->b, ID_BYTES, &v, &vl);
    if (!g->rc)
        g->rc = entry_parse(g->id->b, v, vl, &g->e);
    return 0;
}

int dlq_get(runtime_t *rt, const fenta_id_t *id, dlq_entry_t **out)
{
    get_t g = {.id = id};
    int rc = store_read(rt->store, get_fn, &g);
    if (rc)
        return rc;
    if (!g.rc)
        *out = g.e;
    return g.rc;
}

static int count_fn(store_txn_t *txn, void *arg)
{
    *(size_t *)arg = store_count(txn, STORE_DLQ);
    return 0;
}

size_t dlq_count(runtime_t *rt)
{
    size_t n = 0;
    store_read(rt->store, count_fn, &n);
    return n;
}

/* Collects matching entries, then replays or drops them in one batch. */
typedef struct {
    dlq_entry_t **v;
    size_t n, cap;
    bool decodable_only;
} collect_t;

static int collect_cb(const dlq_entry_t *e, void *arg)
{
    collect_t *c = arg;
    if (c->decodable_only && !e->env)
        return 0;
    if (vec_reserve(c->v, c->cap, c->n + 1) != 0)
        return FENTA_ENOMEM;
    dlq_entry_t *copy = calloc(1, sizeof *copy);
    if (!copy)
        return FENTA_ENOMEM;
    copy->id = e->id;
    copy->env = e->env ? envelope_dup(e->env) : NULL;
    if (e->env && !copy->env) {
        free(copy);
        return FENTA_ENOMEM;
    }
    c->v[c->n++] = copy;
    return 0;
}

static void collect_free(collect_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        dlq_entry_destroy(&c->v[i]);
    free(c->v);
}

/* Replays or drops the collected entries in one batch; frees them. */
static int apply_set(runtime_t *rt, collect_t *c, bool replay, size_t *count)
{
    int rc = 0;
    batch_t *b = runtime__batch_new();
    if (!b)
        rc = FENTA_ENOMEM;
    for (size_t i = 0; i < c->n && !rc; i++) {
        rc = runtime__batch_op(b, OP_DEL, STORE_DLQ, c->v[i]->id.b, ID_BYTES, NULL, 0);
        if (rc || !replay)
            continue;
        envelope_t *env = c->v[i]->env;
        env->attempt = 0;
        env->not_before_ms = 0;
        uint8_t *wire;
        size_t wl;
        if ((rc = envelope_encode(env, &wire, &wl)))
            break;
        bool local;
        rc = runtime__batch_due(rt, b, env, wire, wl, &local);
        free(wire);
    }
    if (!rc) {
        runtime__commit_wait(rt, runtime__commit_submit(rt, b));
        b = NULL;
        for (size_t i = 0; replay && i < c->n; i++) {
            if (!runtime__route_of(rt, c->v[i]->env->to, NULL)) {
                runtime__deliver(rt, c->v[i]->env);
                c->v[i]->env = NULL;
            }
        }
        if (c->n)
            log_msg(LOG_INFO, NULL, "dead letters %s: %zu", replay ? "replayed" : "dropped", c->n);
    }
    runtime__batch_free(b);
    if (count)
        *count = rc ? 0 : c->n;
    collect_free(c);
    return rc;
}

static int apply_where(runtime_t *rt, const dlq_filter_t *f, bool replay, size_t *count)
{
    collect_t c = {.decodable_only = replay};
    int rc = dlq_list(rt, f, NULL, 0, collect_cb, &c);
    if (rc) {
        collect_free(&c);
        return rc;
    }
    return apply_set(rt, &c, replay, count);
}

int dlq_replay_where(runtime_t *rt, const dlq_filter_t *f, size_t *count)
{
    return apply_where(rt, f, true, count);
}

int dlq_drop_where(runtime_t *rt, const dlq_filter_t *f, size_t *count)
{
    return apply_where(rt, f, false, count);
}

static int one(runtime_t *rt, const fenta_id_t *id, bool replay)
{
    dlq_entry_t *e = NULL;
    int rc = dlq_get(rt, id, &e);
    if (rc)
        return rc;
    if (replay && !e->env) {
        dlq_entry_destroy(&e);
        return FENTA_EDECODE;
    }
    collect_t c = {.v = &e, .n = 1, .cap = 1};
    dlq_entry_t **v = malloc(sizeof *v);
    if (!v) {
        dlq_entry_destroy(&e);
        return FENTA_ENOMEM;
    }
    v[0] = e;
    c.v = v;
    return apply_set(rt, &c, replay, NULL);
}

int dlq_replay(runtime_t *rt, const fenta_id_t *id)
{
    return one(rt, id, true);
}

int dlq_drop(runtime_t *rt, const fenta_id_t *id)
{
    return one(rt, id, false);
}
