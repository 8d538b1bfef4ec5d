/* actor_ctx.c - the handler context API (runtime.h's actor_* functions):
 * what a handler reads (its address, state, user pointers) and the effects
 * it stages (new state, sends, timers, dead letters, spawns), all held in
 * its context until runtime.c commits them with the message's ack, or drops
 * them when the handler fails. Spawning from outside a handler
 * (runtime_spawn) shares the spawn helpers, so it lives here too. */
#include "runtime/runtime_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/vec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the context ---------------------------------------------------------- */

void runtime__ctx_reset(actor_ctx_t *c)
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
    int rc = runtime__batch_message(ctx->rt, ctx->batch, env, &local);
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
        metric_inc(runtime__metrics_of(ctx->rt, ctx->actor)->dead);
        runtime__log_message(LOG_ERROR, ctx->actor, env, "message dead-lettered", why);
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
    actor_t *a = runtime__actor_get(rt, addr);
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
    actor_t *a = runtime__actor_find(rt, addr);
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
    actor_t *a = runtime__actor_find(rt, addr);
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
    actor_t *a = runtime__actor_find(rt, addr);
    if (!a || !a->running) {
        /* Resident but not yet loaded (mail came first), or absent: either
         * way the committed record is the truth; load it on first message. */
        if (a) {
            a->loaded = false;
            a->missing = false;
        }
        a = make_resident(rt, addr, sup, &sid, state, state_len);
        if (a && !a->qlen && !a->uncommitted)
            runtime__idle_push(rt, a);
    }
    if (a)
        runtime__schedule(rt, a);
    pthread_mutex_unlock(&rt->lock);
    return 0;
}
