/* quarantine.c - messages that crash the process: durable crash counts and
 * quarantine in the dead-letter queue.
 *
 * A handler that kills the process with a fatal signal leaves its message
 * unacknowledged, so every start would replay it into the same crash. The
 * crash journal (runtime/crashlog.h) names the message each crash happened
 * in; this file counts those crashes and takes a message that crashed the
 * process crash_quarantine_after times out of circulation.
 *
 * Counted by fingerprint, not by message id: handlers take messages before
 * they commit (speculation, runtime.h), so a handler that crashes at once
 * often kills a message that was never durable, and the restart replays its
 * sender, which sends it again under a new id. Counted by id, such a message
 * would never reach the threshold. Its fingerprint (a hash of the address,
 * the type and the body) is the same whether the message itself is replayed
 * or sent again. Two messages with the same address, type and body count as
 * one: they would crash the same handler the same way.
 *
 * When: counts change only at start (the journal is written by processes
 * that die). runtime__quarantine_start folds the journal into STORE_CRASHES
 * in one commit, then empties the journal, then keeps in memory the
 * fingerprints whose count reached the threshold (the poison table). A
 * message with such a fingerprint, recovered from a mailbox or sent again
 * by a replayed sender, is moved to the dead-letter queue before its handler
 * runs, reason "crashed the process (SIGSEGV)" and one history entry per
 * crash. Its count is deleted in that commit and its table entry used up, so
 * a replay from the dead-letter queue starts from zero. The actor's other
 * messages go on.
 *
 * Folding twice: a crash between that commit and the truncation folds the
 * same lines again at the next start. Each crash is kept with the id of the
 * process run that wrote it (boot), and a line whose boot the record
 * already holds is skipped.
 *
 * Forgetting: a count that stops growing (the message was handled after all,
 * or dropped) is deleted at the first start QUAR_FORGET_MS after its last
 * crash; at most QUAR_MAX_RECORDS are kept, the most recent.
 *
 * Record: key fingerprint(8, big-endian); value version(1) count(4) n(1),
 * then n crashes of boot id(16) at ms(8) signal(1), oldest first: only the
 * latest QUAR_KEEP crashes are kept, the count goes on. Numbers big-endian. */
#include "runtime/runtime_internal.h"
#include "runtime/clock.h"
#include "runtime/crashlog.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUAR_VERSION 1
#define QUAR_KEEP 16
#define QUAR_HDR 6
#define QUAR_CRASH (ID_BYTES + 8 + 1)
#define QUAR_DEFAULT_AFTER 2
#define QUAR_FORGET_MS (7 * 24 * 3600 * 1000LL)
#define QUAR_MAX_RECORDS 10000

typedef struct {
    fenta_id_t boot; /* the process run that died */
    int64_t at_ms;   /* when */
    int signo;       /* of what */
} crash_t;

/* A count, as stored and as the poison table holds it. */
struct poison {
    uint64_t fp;                /* the fingerprint */
    uint32_t count;             /* crashes in all */
    crash_t crashes[QUAR_KEEP]; /* the latest ones, oldest first */
    size_t n;                   /* entries in crashes */
    bool dirty;                 /* start: the journal added to it */
    _Atomic bool used;          /* poison table: a message was quarantined for it */
};

/* ---- the fingerprint ------------------------------------------------------ */

/* MurmurHash64A (Austin Appleby, public domain): fast, well mixed, no
 * secret needed (nobody gains by making two messages collide but their
 * sender, who could as well send the crashing one). Reads words in host
 * order: a fingerprint is only compared on the node that computed it. */
static uint64_t murmur64a(const void *key, size_t len, uint64_t seed)
{
    const uint64_t m = 0xc6a4a7935bd1e995ull;
    const int r = 47;
    uint64_t h = seed ^ (len * m);
    const uint8_t *p = key;
    size_t nblocks = len / 8;
    for (size_t i = 0; i < nblocks; i++) {
        uint64_t k;
        memcpy(&k, p + 8 * i, 8);
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    const uint8_t *tail = p + nblocks * 8;
    switch (len & 7) {
    case 7:
        h ^= (uint64_t)tail[6] << 48; /* fall through */
    case 6:
        h ^= (uint64_t)tail[5] << 40; /* fall through */
    case 5:
        h ^= (uint64_t)tail[4] << 32; /* fall through */
    case 4:
        h ^= (uint64_t)tail[3] << 24; /* fall through */
    case 3:
        h ^= (uint64_t)tail[2] << 16; /* fall through */
    case 2:
        h ^= (uint64_t)tail[1] << 8; /* fall through */
    case 1:
        h ^= (uint64_t)tail[0];
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

uint64_t runtime__fingerprint(const envelope_t *env)
{
    /* Chained seeds keep the three fields apart ("a" + "bc" != "ab" + "c"). */
    uint64_t h = murmur64a(env->to, strlen(env->to), 0x66656e7461ull);
    h = murmur64a(env->type, strlen(env->type), h);
    return murmur64a(env->body_len ? env->body : (const void *)"", env->body_len, h);
}

/* ---- records -------------------------------------------------------------- */

typedef struct {
    runtime_t *rt;
    poison_t *v; /* every record: the store's, then the journal's */
    size_t n, cap;
    size_t lines; /* journal lines read: the journal is emptied when > 0 */
} fold_t;

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

static poison_t *find(poison_t *v, size_t n, uint64_t fp)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].fp == fp)
            return &v[i];
    return NULL;
}

static poison_t *add(fold_t *f, uint64_t fp)
{
    if (vec_reserve(f->v, f->cap, f->n + 1) != 0)
        return NULL;
    poison_t *p = &f->v[f->n++];
    memset(p, 0, sizeof *p);
    p->fp = fp;
    return p;
}

static void push_crash(poison_t *p, const crash_t *c)
{
    if (p->n == QUAR_KEEP) {
        memmove(p->crashes, p->crashes + 1, (QUAR_KEEP - 1) * sizeof *p->crashes);
        p->n--;
    }
    p->crashes[p->n++] = *c;
}

static int64_t last_crash(const poison_t *p)
{
    return p->n ? p->crashes[p->n - 1].at_ms : 0;
}

static int load_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    fold_t *f = arg;
    const uint8_t *r = v;
    if (kl != 8 || vl < QUAR_HDR || r[0] != QUAR_VERSION || r[5] > QUAR_KEEP ||
        vl != QUAR_HDR + (size_t)r[5] * QUAR_CRASH)
        return 0; /* unreadable: forgotten */
    poison_t *p = add(f, get_be(k, 8));
    if (!p)
        return FENTA_ENOMEM;
    p->count = (uint32_t)get_be(r + 1, 4);
    for (size_t i = 0; i < r[5]; i++) {
        const uint8_t *c = r + QUAR_HDR + i * QUAR_CRASH;
        crash_t cr = {.at_ms = (int64_t)get_be(c + ID_BYTES, 8), .signo = c[ID_BYTES + 8]};
        memcpy(cr.boot.b, c, ID_BYTES);
        push_crash(p, &cr);
    }
    return 0;
}

static int load_fn(store_txn_t *txn, void *arg)
{
    return store_scan(txn, STORE_CRASHES, NULL, 0, NULL, 0, load_cb, arg);
}

static const char *signame(int signo)
{
    const char *s = crashlog_signame(signo);
    return s ? s : "fatal signal";
}

static int fold_cb(const crashlog_entry_t *e, void *arg)
{
    fold_t *f = arg;
    f->lines++;
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)e->at_ms);
    if (!e->has_msg) {
        log_kv(LOG_WARN, NULL, "the process crashed outside any message handler",
               (const char *const[]){"signal", signame(e->signo), "crashed_at_ms", at, NULL});
        return 0;
    }
    poison_t *p = find(f->v, f->n, e->fp);
    for (size_t i = 0; p && i < p->n; i++)
        if (id_cmp(&p->crashes[i].boot, &e->boot) == 0)
            return 0; /* folded before, the journal was not emptied in time */
    if (!p && !(p = add(f, e->fp)))
        return FENTA_ENOMEM;
    push_crash(p, &(crash_t){.boot = e->boot, .at_ms = e->at_ms, .signo = e->signo});
    p->count++;
    p->dirty = true;
    char id[ID_STR_LEN + 1], count[16];
    id_to_str(&e->msg_id, id);
    snprintf(count, sizeof count, "%u", p->count);
    log_kv(LOG_WARN, &(log_ctx_t){.actor = e->actor, .msg_id = id}, "a message crashed the process",
           (const char *const[]){"type", e->type, "signal", signame(e->signo), "crashes", count,
                                 "crashed_at_ms", at, NULL});
    return 0;
}

static int by_last_crash_desc(const void *a, const void *b)
{
    int64_t x = last_crash(a), y = last_crash(b);
    return x < y ? 1 : x > y ? -1 : 0;
}

static int by_fp(const void *a, const void *b)
{
    uint64_t x = ((const poison_t *)a)->fp, y = ((const poison_t *)b)->fp;
    return x < y ? -1 : x > y;
}

/* Adds the writes of the new counts and the deletion of forgotten ones to
 * b, and keeps in f only the records that stay. */
static int write_records(fold_t *f, batch_t *b)
{
    if (f->n > 1) /* qsort's base may not be NULL, even for nothing */
        qsort(f->v, f->n, sizeof *f->v, by_last_crash_desc);
    int64_t now = clock_now_ms();
    size_t kept = 0;
    for (size_t i = 0; i < f->n; i++) {
        poison_t *p = &f->v[i];
        uint8_t key[8];
        put_be(key, p->fp, 8);
        int rc = 0;
        if (kept >= QUAR_MAX_RECORDS || (!p->dirty && now - last_crash(p) > QUAR_FORGET_MS)) {
            rc = runtime__batch_op(b, OP_DEL, STORE_CRASHES, key, 8, NULL, 0);
        } else {
            if (p->dirty) {
                uint8_t rec[QUAR_HDR + QUAR_KEEP * QUAR_CRASH];
                rec[0] = QUAR_VERSION;
                put_be(rec + 1, p->count, 4);
                rec[5] = (uint8_t)p->n;
                for (size_t j = 0; j < p->n; j++) {
                    uint8_t *c = rec + QUAR_HDR + j * QUAR_CRASH;
                    memcpy(c, p->crashes[j].boot.b, ID_BYTES);
                    put_be(c + ID_BYTES, (uint64_t)p->crashes[j].at_ms, 8);
                    c[ID_BYTES + 8] = (uint8_t)p->crashes[j].signo;
                }
                rc = runtime__batch_op(b, OP_PUT, STORE_CRASHES, key, 8, rec,
                                       QUAR_HDR + p->n * QUAR_CRASH);
            }
            f->v[kept++] = *p;
        }
        if (rc)
            return rc;
    }
    f->n = kept;
    return 0;
}

int runtime__quarantine_start(runtime_t *rt)
{
    runtime__quarantine_free(rt);
    fold_t f = {.rt = rt};
    batch_t *b = runtime__batch_new();
    int rc = b ? store_read(rt->store, load_fn, &f) : FENTA_ENOMEM;
    if (!rc && rt->crashlog)
        rc = crashlog_read(rt->crashlog, fold_cb, &f);
    if (!rc)
        rc = write_records(&f, b);
    if (rc) {
        runtime__batch_free(b);
        free(f.v);
        return rc;
    }
    if (b->nops)
        runtime__commit_wait(rt, runtime__commit_submit(rt, b));
    else
        runtime__batch_free(b);
    /* Only now are the lines in durable counts: emptying the journal before
     * could lose a crash, a crash before this folds them again harmlessly. */
    if (f.lines)
        crashlog_clear(rt->crashlog);

    uint32_t after = rt->opts.crash_quarantine_after > 0 ? (uint32_t)rt->opts.crash_quarantine_after
                                                         : QUAR_DEFAULT_AFTER;
    size_t np = 0;
    for (size_t i = 0; i < f.n; i++)
        if (f.v[i].count >= after && f.v[i].n > 0)
            f.v[np++] = f.v[i];
    if (np == 0) {
        free(f.v);
        return 0;
    }
    qsort(f.v, np, sizeof *f.v, by_fp);
    for (size_t i = 0; i < np; i++)
        atomic_init(&f.v[i].used, false);
    rt->poison = f.v;
    rt->npoison = np;
    log_msg(LOG_WARN, NULL,
            "%zu message fingerprint(s) crashed the process %u times or more: such messages "
            "go to the dead-letter queue",
            np, after);
    return 0;
}

/* ---- on sight ------------------------------------------------------------- */

bool runtime__quarantine_take(runtime_t *rt, uint64_t fp, envelope_t *msg, batch_t *b)
{
    if (!rt->npoison || !b)
        return false;
    poison_t key = {.fp = fp};
    poison_t *p = bsearch(&key, rt->poison, rt->npoison, sizeof key, by_fp);
    bool expected = false;
    if (!p || !atomic_compare_exchange_strong(&p->used, &expected, true))
        return false;
    char why[64];
    for (size_t i = 0; i < p->n; i++) {
        snprintf(why, sizeof why, "crashed the process (%s)", signame(p->crashes[i].signo));
        if (envelope_add_error(msg, msg->attempt, p->crashes[i].at_ms, why) != 0)
            goto undo;
    }
    uint8_t k[8];
    put_be(k, fp, 8);
    size_t nops = b->nops;
    if (runtime__dlq_add(b, msg, NULL, 0, &msg->id, why) != 0 ||
        runtime__batch_op(b, OP_DEL, STORE_CRASHES, k, 8, NULL, 0) != 0) {
        b->nops = nops; /* half of it would lose the message: handle it as usual */
        goto undo;
    }
    char id[ID_STR_LEN + 1], count[16];
    id_to_str(&msg->id, id);
    snprintf(count, sizeof count, "%u", p->count);
    log_kv(LOG_ERROR, &(log_ctx_t){.actor = msg->to, .msg_id = id, .corr = msg->corr},
           "message quarantined in the dead-letter queue",
           (const char *const[]){"type", msg->type, "error", why, "crashes", count, NULL});
    return true;
undo:
    atomic_store(&p->used, false);
    return false;
}

void runtime__quarantine_free(runtime_t *rt)
{
    free(rt->poison);
    rt->poison = NULL;
    rt->npoison = 0;
}
