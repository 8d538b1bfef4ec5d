/* store.h - the node's LMDB environment: the only module that includes <lmdb.h>.
 *
 * One environment per node holds every durable runtime structure in named
 * databases (mailboxes, actors, timers, dead letters, outbox, dedup...). All
 * writes go through store_write(), which runs a caller's function inside one
 * write transaction and, when the map is full, aborts, grows the map and runs
 * the function again; so the function must only depend on what it reads in
 * the transaction and on its argument. LMDB allows one writer at a time; in
 * the runtime that writer is the committer thread, which is how commits are
 * grouped. Reads may run on any thread at the same time. */
#ifndef FENTA_STORE_H
#define FENTA_STORE_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    STORE_MBOX,     /* to "\0" msg id(16) -> envelope: pending messages, FIFO per actor */
    STORE_ACTORS,   /* address -> actor record (supervisor, status, state) */
    STORE_TIMERS,   /* due ms (8, big-endian) + msg id(16) -> envelope: delayed messages */
    STORE_DLQ,      /* msg id(16) -> dead letter record */
    STORE_OUTBOX,   /* node "\0" msg id(16) -> envelope: sends to other nodes not yet acked */
    STORE_DEDUP,    /* msg id(16) -> received ms: remote messages already taken in */
    STORE_CHILDREN, /* supervisor "\0" seq(8) -> address: spawn order per supervisor */
    STORE_META,     /* small named values (sequence counters, node identity) */
    STORE_CRASHES,  /* msg id(16) -> crash record: times the message crashed the process
                       (runtime/quarantine.c) */
    STORE__COUNT
} store_db_t;

typedef struct store store_t;
typedef struct store_txn store_txn_t;

typedef struct {
    size_t initial_map_bytes; /* first map size; 0 = 64 MiB (LMDB's own default is 1 MiB) */
    int no_sync;              /* 1 = skip fsync (never in production; some unit tests) */
} store_opts_t;

/* Opens (creating the directory and the databases) the environment in dir.
 * opts may be NULL. NULL on failure, with *err set when err is not NULL. */
store_t *store_open(const char *dir, const store_opts_t *opts, int *err);
/* Closes the environment and NULLs *self_p; accepts NULL. No transaction may be open. */
void store_close(store_t **self_p);

/* Runs fn(txn, arg) in one write transaction and commits (fsync) if it
 * returns 0; aborts if it returns non-zero and returns that. On a full map
 * the map is doubled and fn runs again from scratch. */
int store_write(store_t *self, int (*fn)(store_txn_t *txn, void *arg), void *arg);
/* Runs fn(txn, arg) in a read-only snapshot. */
int store_read(store_t *self, int (*fn)(store_txn_t *txn, void *arg), void *arg);

/* Inside a transaction. Values returned by get/scan are borrowed from the
 * map and valid until the transaction ends. */
int store_put(store_txn_t *txn, store_db_t db, const void *key, size_t klen, const void *val,
              size_t vlen);
/* FENTA_ENOTFOUND when absent. */
int store_get(store_txn_t *txn, store_db_t db, const void *key, size_t klen, const void **val,
              size_t *vlen);
/* Deleting an absent key is not an error (replays delete twice). */
int store_del(store_txn_t *txn, store_db_t db, const void *key, size_t klen);

/* Calls cb for each key >= start (or from the first when start is NULL) in key
 * order while the key begins with prefix (plen 0 = no prefix) and cb returns 0.
 * Returns 0, or cb's non-zero value, or a store error. */
typedef int (*store_scan_fn)(const void *key, size_t klen, const void *val, size_t vlen, void *arg);
int store_scan(store_txn_t *txn, store_db_t db, const void *prefix, size_t plen, const void *start,
               size_t slen, store_scan_fn cb, void *arg);
/* Number of entries in a database. */
size_t store_count(store_txn_t *txn, store_db_t db);

/* Current map size in bytes and number of times it has grown (metrics, tests). */
size_t store_map_bytes(const store_t *self);
unsigned store_grow_count(const store_t *self);

#endif
