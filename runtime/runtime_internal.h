/* runtime_internal.h - what the runtime's own files share (runtime__ prefix).
 * Nothing outside runtime/ includes this but tests/runtime/test_commit.c,
 * which forges effect ops that the public API cannot make. */
#ifndef FENTA_RUNTIME_INTERNAL_H
#define FENTA_RUNTIME_INTERNAL_H
#include "runtime/log.h"
#include "runtime/runtime.h"
#include "runtime/store.h"
#include "runtime/supervisor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct actor actor_t;
typedef struct supervisor supervisor_t;
typedef struct waker waker_t;

/* ---- batches: the effect sets the committer writes ---------------------- */

typedef enum {
    OP_PUT,   /* put key = val */
    OP_DEL,   /* delete key (absent is fine) */
    OP_SPAWN, /* actors: put only if absent; children: put when the actor was created */
    OP_KINDS, /* not a kind: how many there are (runtime__batch_op refuses the rest) */
} op_kind_t;

typedef struct {
    uint8_t kind;  /* op_kind_t */
    uint8_t db;    /* store_db_t */
    uint32_t klen; /* key bytes at buf + off */
    uint32_t vlen; /* value bytes right after the key */
    size_t off;    /* offset in the batch's buffer */
    int result;    /* OP_SPAWN: 0 created, FENTA_EEXIST existed (set by the committer) */
} op_t;

typedef struct batch batch_t;
struct batch {
    batch_t *next;       /* committer queue */
    op_t *ops;           /* in order */
    size_t nops, capops; /* used, allocated */
    uint8_t *buf;        /* keys and values of all ops */
    size_t len, cap;     /* used, allocated */
    actor_t **actors;    /* actors whose uncommitted count this batch holds */
    size_t nactors, capactors;
    bool timers;  /* sets timers: wake the timer thread after commit */
    bool outbox;  /* adds to the outbox: wake the transport after commit */
    uint64_t seq; /* position in commit order */
    /* Called by the committer after the commit, outside the runtime lock. */
    void (*after)(runtime_t *rt, batch_t *b, void *arg);
    void *after_arg;
};

batch_t *runtime__batch_new(void);
void runtime__batch_free(batch_t *b);
/* Appends an op: 0 or FENTA_ENOMEM. A kind that is no op_kind_t aborts the
 * process (commit.c says why). */
int runtime__batch_op(batch_t *b, op_kind_t kind, store_db_t db, const void *key, size_t klen,
                      const void *val, size_t vlen);
/* Adds a ref on a's uncommitted count (lock held). */
int runtime__batch_hold(runtime_t *rt, batch_t *b, actor_t *a);
/* A batch holding a committed (lock held): drops the hold; an actor with no
 * uncommitted work and no mail may now be passivated. */
void runtime__actor_committed(runtime_t *rt, actor_t *a);
/* Hands the batch to the committer; returns its sequence number. The
 * batch is the committer's from then on. */
uint64_t runtime__commit_submit(runtime_t *rt, batch_t *b);
/* Waits until the batch with sequence seq has been committed. */
void runtime__commit_wait(runtime_t *rt, uint64_t seq);
void *runtime__committer_main(void *arg);

/* ---- keys ---------------------------------------------------------------- */

/* mbox key: address, NUL, 16-byte id. Returns its length; buf must hold
 * ENVELOPE_ADDR_MAX + 1 + ID_BYTES. */
size_t runtime__mbox_key(uint8_t *buf, const char *to, const fenta_id_t *id);
/* timers key: 8-byte big-endian due ms, 16-byte id. */
void runtime__timer_key(uint8_t buf[8 + ID_BYTES], int64_t due_ms, const fenta_id_t *id);
int64_t runtime__timer_key_due(const void *key);

/* Adds the put of an encoded envelope that is due now: to the outbox when
 * its kind lives on another node, else to its mailbox (*local = true; the
 * caller then delivers it in memory after submitting the batch). */
int runtime__batch_due(runtime_t *rt, batch_t *b, const envelope_t *env, const void *wire,
                       size_t wl, bool *local);

/* ---- dead letters (dlq.c) -------------------------------------------------- */

/* Adds to b the op that stores a dead letter for env (or for raw bytes that
 * did not decode, when env is NULL) with the given error. */
int runtime__dlq_add(batch_t *b, const envelope_t *env, const void *raw, size_t raw_len,
                     const fenta_id_t *id, const char *error);

/* ---- crash quarantine (quarantine.c) ---------------------------------------- */

typedef struct poison poison_t;
/* The fingerprint crash counts are kept under: a hash of the address, the
 * type and the body, so a message that crashed before it was durable is
 * recognised when its sender's replay sends it again with a new id. */
uint64_t runtime__fingerprint(const envelope_t *env);
/* At start, before recovery: folds the crash journal into the durable
 * counts, commits them, empties the journal and loads the poison table
 * (fingerprints that reached crash_quarantine_after). */
int runtime__quarantine_start(runtime_t *rt);
/* Before a handler runs (any thread): true when fp is in the poison table;
 * then b holds the ops that move msg (its history grown by one entry per
 * crash) to the dead-letter queue and forget its count, and the entry is
 * used up, so a replay from the dead-letter queue starts afresh. */
bool runtime__quarantine_take(runtime_t *rt, uint64_t fp, envelope_t *msg, batch_t *b);
/* Frees the poison table. */
void runtime__quarantine_free(runtime_t *rt);

/* ---- delivery -------------------------------------------------------------- */

/* Puts env (owned) in its actor's in-memory queue and schedules the actor. */
void runtime__deliver(runtime_t *rt, envelope_t *env);
/* Remote node for an address, or NULL when the address is local. */
const char *runtime__route_of(runtime_t *rt, const char *addr, const char **endpoint);

/* ---- supervision (supervisor.c), all with rt->lock held ------------------- */
supervisor_t *runtime__sup_find(runtime_t *rt, const char *name);
supervisor_t *runtime__sup_root(runtime_t *rt);
/* An actor's handler failed: apply the strategy of its supervisor. */
void runtime__sup_child_failed(runtime_t *rt, actor_t *a);
/* True when the supervisor and all its ancestors are running. */
bool runtime__sup_running(const supervisor_t *s);
void runtime__sup_free_all(runtime_t *rt);
const char *runtime__sup_name(const supervisor_t *s);
/* True when s is from or below it. */
bool runtime__sup_descends(const supervisor_t *s, const supervisor_t *from);
/* Schedules every resident actor that has mail and may run (lock held). */
void runtime__schedule_all(runtime_t *rt);
/* Marks every resident child of s (and of its descendants) for restart, or only
 * those spawned after `after` when it is not NULL (lock held). */
void runtime__restart_children(runtime_t *rt, supervisor_t *s, const actor_t *after, bool deep);

/* ---- the runtime itself ---------------------------------------------------- */

/* Per-kind metrics, labelled kind="..." (metrics.h). */
typedef struct {
    struct metric *processed, *failed, *retried, *dead, *latency;
    struct metric *quarantined; /* dead letters because they crashed the process */
} kind_metrics_t;

typedef struct kind {
    const behaviour_t *beh; /* registered callbacks */
    int disp;               /* index of its dispatcher */
    backoff_policy_t retry; /* effective retry policy */
    kind_metrics_t m;       /* its metrics */
} kind_t;

typedef struct route {
    char *kind;     /* address kind routed away */
    char *node;     /* node name */
    char *endpoint; /* ZeroMQ endpoint */
} route_t;

typedef struct dispatcher {
    char *name;           /* "default", "io", "render"... */
    int nthreads;         /* threads it runs */
    pthread_t *threads;   /* its threads */
    actor_t *head, *tail; /* run queue of actors with mail, FIFO for fairness */
    waker_t **wakers;     /* one per thread: how an idle thread is woken */
    waker_t **idle;       /* stack of the wakers of idle threads */
    int nidle;            /* threads waiting for work */
    int running;          /* handlers running now */
} dispatcher_t;

struct actor {
    char *addr;               /* "kind/id" */
    const kind_t *kind;       /* NULL when no behaviour is registered for the kind */
    supervisor_t *sup;        /* resolved supervisor (root when unknown) */
    fenta_id_t spawn_id;      /* spawn order among siblings (rest_for_one) */
    uint8_t *state;           /* current state, speculative (owned) */
    size_t state_len;         /* bytes in state */
    void *user;               /* transient pointer of the behaviour */
    envelope_t **q;           /* ring of pending messages */
    size_t qhead, qlen, qcap; /* ring position, length, capacity */
    actor_t *hnext;           /* hash chain */
    actor_t *rnext;           /* run queue link */
    actor_t *iprev, *inext;   /* idle list links (passivation order) */
    uint32_t uncommitted;     /* batches holding this actor not yet committed */
    bool loaded;              /* record read from the store (or spawned here) */
    bool missing;             /* the store has no such actor */
    bool started;             /* on_start has run */
    bool running;             /* a dispatcher (or the passivator) holds it */
    bool queued;              /* in its dispatcher's run queue */
    bool idle_listed;         /* on the idle list */
    bool restart_pending;     /* restart before the next message */
    bool spawned_here;        /* on_start reason is SPAWNED */
};

struct runtime {
    runtime_opts_t opts;            /* copy of the options (strings below are owned copies) */
    char *data_dir, *node, *listen; /* owned strings of opts */
    store_t *store;                 /* the node's LMDB environment */
    struct crashlog *crashlog;      /* the crash journal in data_dir (runtime/crashlog.h) */
    poison_t *poison;               /* fingerprints quarantined on sight (quarantine.c) */
    size_t npoison;                 /* entries in poison; fixed once started */

    pthread_mutex_t lock;           /* actors, run queues, supervisors, idle list */
    actor_t **buckets;              /* address hash table */
    size_t nbuckets, nactors;       /* table size, actors resident */
    actor_t *idle_head, *idle_tail; /* idle resident actors, oldest first */
    size_t nidle;

    kind_t *kinds;             /* registered kinds */
    size_t nkinds, capkinds;   /* entries in kinds, and its room (vec_reserve) */
    route_t *routes;           /* kinds living on other nodes */
    size_t nroutes, caproutes; /* entries in routes, and its room (vec_reserve) */
    dispatcher_t *disps;       /* dispatchers */
    size_t ndisps;
    supervisor_t *sups; /* every supervisor, root first */

    /* committer */
    pthread_mutex_t clock_; /* committer queue and sequence */
    pthread_cond_t ccond;   /* queue gained a batch / stop */
    pthread_cond_t cdone;   /* a commit finished */
    batch_t *chead, *ctail; /* queue, FIFO = commit order */
    uint64_t next_seq;      /* last sequence handed out */
    uint64_t done_seq;      /* last sequence committed */
    bool cstop;             /* committer: finish the queue and exit */
    pthread_t committer;

    /* timers */
    pthread_mutex_t tlock;
    pthread_cond_t tcond;
    bool tpoke; /* something changed: rescan */
    bool tstop;
    pthread_t timer_thread;
    _Atomic uint64_t timers_count; /* timers in the store, approximately */
    /* The timer thread is moving due timers to mailboxes: set before their
     * store entries go, cleared once their messages count in `pending`, so
     * runtime_quiesce never sees a fired timer as neither timer nor mail. */
    _Atomic bool firing;

    /* ZeroMQ (transport.c): the context, the node transport */
    void *zctx;
    void *transport;

    kind_metrics_t unknown_m;  /* metrics of messages to unregistered kinds */
    struct metric *m_pending;  /* gauge: messages waiting in mailboxes */
    struct metric *m_resident; /* gauge: actors in memory */
    _Atomic bool stopping;     /* no new messages are taken */
    bool started;
    _Atomic uint64_t pending; /* messages in in-memory queues */
    _Atomic uint64_t processed, failed, retried, dead, commits;
    _Atomic uint64_t quarantined; /* dead letters because they crashed the process */
};

/* Timer thread (timers.c). */
void *runtime__timer_main(void *arg);
void runtime__timers_poke(runtime_t *rt);

/* Wakers (transport.c): an inproc PAIR per dispatcher thread. The thread
 * blocks in wait() for one token; signal() sends one. signal() may be called
 * from any thread as long as calls are serialised (rt->lock does it). */
int runtime__zmq_init(runtime_t *rt);
void runtime__zmq_term(runtime_t *rt);
waker_t *runtime__waker_new(runtime_t *rt);
void runtime__waker_free(waker_t **w_p);
void runtime__waker_wait(waker_t *w);
void runtime__waker_signal(waker_t *w);

/* Transport (transport.c): start after recovery, stop before the committer. */
int runtime__transport_start(runtime_t *rt);
void runtime__transport_stop(runtime_t *rt);
void runtime__transport_poke(runtime_t *rt);

/* ---- the actor table (actors_table.c) ---------------------------------------- */

/* Actor record: version(1) sup_len(2) sup spawn_id(16) state. */
int runtime__actor_record(uint8_t **out, size_t *len, const char *sup, const fenta_id_t *spawn_id,
                          const void *state, size_t state_len);
/* A parsed record, pointing into the buffer it was parsed from. */
typedef struct {
    char sup[256];        /* supervisor name */
    fenta_id_t spawn_id;  /* spawn order */
    const uint8_t *state; /* borrowed from the store */
    size_t state_len;
} record_view_t;

/* 0 or FENTA_EDECODE. */
int runtime__record_parse(const void *buf, size_t len, record_view_t *out);

/* With rt->lock held: the resident actor at addr, or NULL; _get makes it
 * resident (unloaded) when absent, NULL when out of memory. */
actor_t *runtime__actor_find(runtime_t *rt, const char *addr);
actor_t *runtime__actor_get(runtime_t *rt, const char *addr);
/* The idle list, oldest first, that passivation drains (lock held). */
void runtime__idle_unlink(runtime_t *rt, actor_t *a);
void runtime__idle_push(runtime_t *rt, actor_t *a);
/* Frees an actor no longer in the table, with its queued messages. */
void runtime__actor_free(actor_t *a);
/* Reads the actor's committed record (dispatcher thread, a held running,
 * lock not held). */
void runtime__actor_load(runtime_t *rt, actor_t *a);
/* Runs on_stop if on_start ran (lock not held, a held running). */
void runtime__actor_stop(runtime_t *rt, actor_t *a);
/* Drops idle resident actors beyond the cap (lock not held). */
void runtime__passivate(runtime_t *rt);

/* ---- dispatch (runtime.c) ------------------------------------------------------ */

/* Puts a on its dispatcher's run queue if it can run now (lock held). */
void runtime__schedule(runtime_t *rt, actor_t *a);
/* Adds a message to a batch: into the mailbox, a timer, or the outbox. The
 * envelope stays the caller's; *local as for runtime__batch_due. */
int runtime__batch_message(runtime_t *rt, batch_t *b, const envelope_t *env, bool *local);
/* The metrics of a's kind (the unknown kind's when it has none). */
const kind_metrics_t *runtime__metrics_of(runtime_t *rt, const actor_t *a);
/* One log line about a message, with its ids. */
void runtime__log_message(log_level_t lvl, const actor_t *a, const envelope_t *msg,
                          const char *text, const char *error);

/* ---- the handler context (actor_ctx.c) ----------------------------------------- */

/* A handler's context: on the dispatcher's stack for one message (or for
 * on_start / on_stop, with no batch, so no effects). */
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

/* Frees what the context staged and zeroes it. */
void runtime__ctx_reset(actor_ctx_t *c);

#endif
