/* store.c - LMDB environment wrapper: named databases, write transactions that
 * survive a full map by growing it, and conversion of MDB_* codes into Fenta's.
 *
 * Growing the map (mdb_env_set_mapsize) is only allowed while no transaction
 * is open in this process, so every transaction holds a shared rwlock for its
 * life and the grower takes it exclusively. The lock prefers writers so a
 * steady stream of readers cannot starve a resize. */
#include "runtime/store.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STORE_DEFAULT_MAP (64u << 20)

static const char *const db_names[STORE__COUNT] = {
    [STORE_MBOX] = "mbox",         [STORE_ACTORS] = "actors", [STORE_TIMERS] = "timers",
    [STORE_DLQ] = "dlq",           [STORE_OUTBOX] = "outbox", [STORE_DEDUP] = "dedup",
    [STORE_CHILDREN] = "children", [STORE_META] = "meta",     [STORE_CRASHES] = "crashes",
};

struct store {
    MDB_env *env;                 /* the environment */
    MDB_dbi dbi[STORE__COUNT];    /* one handle per named database */
    pthread_rwlock_t resize_lock; /* shared by transactions, exclusive to resize */
    _Atomic size_t map_bytes;     /* current map size */
    _Atomic unsigned grows;       /* times the map grew */
};

struct store_txn {
    store_t *store; /* owner */
    MDB_txn *txn;   /* the LMDB transaction */
};

static int from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return FENTA_ENOTFOUND;
    case MDB_KEYEXIST:
        return FENTA_EEXIST;
    case ENOMEM:
        return FENTA_ENOMEM;
    case MDB_BAD_VALSIZE:
        return FENTA_ETOOBIG;
    default:
        return FENTA_ESTORE;
    }
}

store_t *store_open(const char *dir, const store_opts_t *opts, int *err)
{
    int rc = 0;
    store_t *self = calloc(1, sizeof *self);
    if (!self) {
        rc = FENTA_ENOMEM;
        goto fail;
    }
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&self->resize_lock, &attr);
    pthread_rwlockattr_destroy(&attr);

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_msg(LOG_ERROR, NULL, "store: cannot create %s: %s", dir, strerror(errno));
        rc = FENTA_EIO;
        goto fail;
    }
    size_t map = opts && opts->initial_map_bytes ? opts->initial_map_bytes : STORE_DEFAULT_MAP;
    unsigned flags = MDB_NOTLS | (opts && opts->no_sync ? MDB_NOSYNC : 0);
    int mrc;
    if ((mrc = mdb_env_create(&self->env)) || (mrc = mdb_env_set_maxdbs(self->env, STORE__COUNT)) ||
        (mrc = mdb_env_set_mapsize(self->env, map)) ||
        (mrc = mdb_env_open(self->env, dir, flags, 0600))) {
        log_msg(LOG_ERROR, NULL, "store: cannot open %s: %s", dir, mdb_strerror(mrc));
        rc = from_mdb(mrc);
        goto fail;
    }
    /* An existing file larger than the requested map keeps its size. */
    MDB_envinfo info;
    mdb_env_info(self->env, &info);
    self->map_bytes = info.me_mapsize;

    MDB_txn *txn;
    if ((mrc = mdb_txn_begin(self->env, NULL, 0, &txn))) {
        rc = from_mdb(mrc);
        goto fail;
    }
    for (int i = 0; i < STORE__COUNT; i++) {
        if ((mrc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &self->dbi[i]))) {
            mdb_txn_abort(txn);
            rc = from_mdb(mrc);
            goto fail;
        }
    }
    if ((mrc = mdb_txn_commit(txn))) {
        rc = from_mdb(mrc);
        goto fail;
    }
    return self;
fail:
    if (err)
        *err = rc;
    store_close(&self);
    return NULL;
}

void store_close(store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    store_t *self = *self_p;
    if (self->env)
        mdb_env_close(self->env);
    pthread_rwlock_destroy(&self->resize_lock);
    free(self);
    *self_p = NULL;
}

/* Doubles the map. Called with no transaction of ours open. */
static int grow(store_t *self, size_t seen_map)
{
    pthread_rwlock_wrlock(&self->resize_lock);
    int rc = 0;
    /* Another writer may already have grown it since we saw MAP_FULL. */
    if (self->map_bytes == seen_map) {
        size_t next = seen_map * 2;
        int mrc = mdb_env_set_mapsize(self->env, next);
        if (mrc) {
            rc = from_mdb(mrc);
        } else {
            self->map_bytes = next;
            self->grows++;
            log_msg(LOG_INFO, NULL, "store: map grown to %zu MiB", next >> 20);
        }
    }
    pthread_rwlock_unlock(&self->resize_lock);
    return rc;
}

/* A full map shows up as MDB_MAP_FULL from a put or from the commit; puts
 * record it here so store_write can tell it from the callback's own errors. */
static _Thread_local int txn_map_full;

int store_write(store_t *self, int (*fn)(store_txn_t *txn, void *arg), void *arg)
{
    for (;;) {
        pthread_rwlock_rdlock(&self->resize_lock);
        size_t seen_map = self->map_bytes;
        store_txn_t t = {.store = self};
        int mrc = mdb_txn_begin(self->env, NULL, 0, &t.txn);
        if (mrc) {
            pthread_rwlock_unlock(&self->resize_lock);
            if (mrc == MDB_MAP_RESIZED) {
                mdb_env_set_mapsize(self->env, 0);
                continue;
            }
            return from_mdb(mrc);
        }
        txn_map_full = 0;
        int rc = fn(&t, arg);
        int full = txn_map_full;
        if (rc == 0 && !full) {
            mrc = mdb_txn_commit(t.txn);
            pthread_rwlock_unlock(&self->resize_lock);
            if (mrc == MDB_SUCCESS)
                return 0;
            if (mrc != MDB_MAP_FULL)
                return from_mdb(mrc);
        } else {
            mdb_txn_abort(t.txn);
            pthread_rwlock_unlock(&self->resize_lock);
            if (!full)
                return rc;
        }
        if ((rc = grow(self, seen_map)))
            return rc;
    }
}

int store_read(store_t *self, int (*fn)(store_txn_t *txn, void *arg), void *arg)
{
    pthread_rwlock_rdlock(&self->resize_lock);
    store_txn_t t = {.store = self};
    int mrc = mdb_txn_begin(self->env, NULL, MDB_RDONLY, &t.txn);
    if (mrc) {
        pthread_rwlock_unlock(&self->resize_lock);
        return from_mdb(mrc);
    }
    int rc = fn(&t, arg);
    mdb_txn_abort(t.txn);
    pthread_rwlock_unlock(&self->resize_lock);
    return rc;
}

int store_put(store_txn_t *txn, store_db_t db, const void *key, size_t klen, const void *val,
              size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int mrc = mdb_put(txn->txn, txn->store->dbi[db], &k, &v, 0);
    if (mrc == MDB_MAP_FULL || mrc == MDB_TXN_FULL)
        txn_map_full = 1;
    return from_mdb(mrc);
}

int store_get(store_txn_t *txn, store_db_t db, const void *key, size_t klen, const void **val,
              size_t *vlen)
{
    MDB_val k = {klen, (void *)key}, v;
    int mrc = mdb_get(txn->txn, txn->store->dbi[db], &k, &v);
    if (mrc)
        return from_mdb(mrc);
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

int store_del(store_txn_t *txn, store_db_t db, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};
    int mrc = mdb_del(txn->txn, txn->store->dbi[db], &k, NULL);
    if (mrc == MDB_NOTFOUND)
        return 0;
    if (mrc == MDB_MAP_FULL || mrc == MDB_TXN_FULL)
        txn_map_full = 1;
    return from_mdb(mrc);
}

int store_scan(store_txn_t *txn, store_db_t db, const void *prefix, size_t plen, const void *start,
               size_t slen, store_scan_fn cb, void *arg)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn->txn, txn->store->dbi[db], &cur);
    if (mrc)
        return from_mdb(mrc);
    MDB_val k, v;
    if (start || plen) {
        k.mv_data = (void *)(start ? start : prefix);
        k.mv_size = start ? slen : plen;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    int rc = 0;
    while (mrc == MDB_SUCCESS) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        if ((rc = cb(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg)))
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc)
        return rc;
    return mrc == MDB_NOTFOUND || mrc == MDB_SUCCESS ? 0 : from_mdb(mrc);
}

size_t store_count(store_txn_t *txn, store_db_t db)
{
    MDB_stat st;
    if (mdb_stat(txn->txn, txn->store->dbi[db], &st))
        return 0;
    return st.ms_entries;
}

size_t store_map_bytes(const store_t *self)
{
    return self->map_bytes;
}

unsigned store_grow_count(const store_t *self)
{
    return self->grows;
}
