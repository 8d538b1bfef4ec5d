/* runtime.h - the actor runtime: durable actors, dispatchers, group commit.
 *
 * An actor is an address "kind/id" with a behaviour (the callbacks registered
 * for its kind), a persistent state (bytes) and a persistent mailbox in the
 * node's LMDB environment. Dispatchers (thread pools named "default", "io",
 * "render") run actors that have mail, one message at a time per actor, one
 * message per turn so busy actors do not starve the others.
 *
 * Durability: a send from outside returns once it is committed. Handling a
 * message produces an effect set (the ack, the new state, the messages sent,
 * the timers set, the actors spawned) that the committer thread writes in one
 * LMDB transaction, grouping the effect sets of every actor and thread that
 * arrived meanwhile into a single fsync. Effects become visible in memory at
 * once (an actor may take its next message before its previous one commits):
 * the committer applies effect sets in the order they were made, so any
 * effect that a later one depends on commits in the same or an earlier
 * transaction, and a crash rolls both back together. A crash therefore
 * replays messages, never loses them, and never applies runtime effects twice.
 *
 * A handler that fails has its effects discarded; the message is retried
 * after a backoff (runtime/backoff.h, per kind) and, after the kind's last
 * attempt, moved to the dead-letter queue (runtime/dlq.h) with its history.
 * Its supervisor (runtime/supervisor.h) restarts it. A handler that kills the
 * whole process with a fatal signal is named in a crash journal; once a
 * message has done so crash_quarantine_after times, the next start moves it
 * to the dead-letter queue instead of running it (runtime/crashlog.h). */
#ifndef FENTA_RUNTIME_H
#define FENTA_RUNTIME_H
#include "runtime/backoff.h"
#include "runtime/envelope.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct runtime runtime_t;
typedef struct actor_ctx actor_ctx_t;

typedef enum {
    ACTOR_SPAWNED,   /* first start after runtime_spawn / actor_spawn */
    ACTOR_ACTIVATED, /* loaded from the store (after a restart of the node, or after passivation) */
    ACTOR_RESTARTED, /* restarted by its supervisor after a failure */
} actor_start_t;

/* The callbacks of one kind of actor. Handlers run on the kind's dispatcher
 * and must not block a dispatcher they do not own (outbound I/O belongs on
 * "io", media work on "render"). */
typedef struct {
    const char *kind;       /* the address prefix before '/' */
    const char *dispatcher; /* "default" (NULL), "io", "render" */
    /* Optional. Set up transient resources (actor_set_user); may read the state. */
    int (*on_start)(actor_ctx_t *ctx, actor_start_t why);
    /* Required. 0 = handled; non-zero = failed (say why with actor_fail). */
    int (*on_message)(actor_ctx_t *ctx, const envelope_t *msg);
    /* Optional. Release transient resources; the persistent state stays. */
    void (*on_stop)(actor_ctx_t *ctx);
    backoff_policy_t retry; /* zero = BACKOFF_DEFAULT */
    void *user;             /* the kind's context (settings, hooks), for actor_kind_user */
} behaviour_t;

typedef struct {
    const char *name; /* "default", "io", "render" or any other */
    int threads;      /* >= 1 */
} dispatcher_spec_t;

typedef struct {
    const char *data_dir;                 /* directory of the LMDB environment (created) */
    const char *node;                     /* this node's name; NULL = "local" */
    const dispatcher_spec_t *dispatchers; /* NULL = default 2, io 4, render = cores */
    size_t ndispatchers;
    size_t initial_map_bytes; /* 0 = 64 MiB */
    int no_sync;              /* tests only: skip fsync */
    int commit_window_us;     /* extra wait to group commits; 0 = none, max 2000 */
    size_t max_resident_idle; /* idle actors kept in memory; 0 = 10000 */
    /* Times a message may crash the whole process (a fatal signal in its
     * handler, runtime/crashlog.h) before the next start moves it to the
     * dead-letter queue instead of replaying it; 0 = 2. */
    int crash_quarantine_after;
    const char
        *listen; /* ZeroMQ endpoint for other nodes, e.g. "tcp://127.0.0.1:7101"; NULL = none */
} runtime_opts_t;

/* Creates the runtime and opens its store; nothing runs until runtime_start.
 * NULL on failure (*err says why when not NULL). */
runtime_t *runtime_new(const runtime_opts_t *opts, int *err);
/* Registers a kind; before runtime_start. The table must outlive the runtime. */
int runtime_register(runtime_t *rt, const behaviour_t *beh);
/* Routes every address of `kind` to another node, reached at endpoint
 * (ZeroMQ, e.g. "tcp://127.0.0.1:7102"); before runtime_start. */
int runtime_route(runtime_t *rt, const char *kind, const char *node, const char *endpoint);
/* Recovers (mailboxes, timers, outbox) and starts the threads. */
int runtime_start(runtime_t *rt);
/* Stops taking new messages, lets running handlers finish for up to
 * timeout_ms, commits what they did and stops the threads. Messages not yet
 * handled stay in their mailboxes for the next start. */
int runtime_stop(runtime_t *rt, int timeout_ms);
/* Stops (if running) and frees; NULLs *rt_p; accepts NULL. */
void runtime_destroy(runtime_t **rt_p);

/* Spawns an actor durably under supervisor `sup` (NULL = "root") with an
 * initial state. FENTA_EEXIST if it already exists (its state is untouched),
 * so start-up code may spawn the same actors every time. */
int runtime_spawn(runtime_t *rt, const char *addr, const char *sup, const void *state,
                  size_t state_len);
/* Sends from outside any actor; returns once the message is durable. */
int runtime_send(runtime_t *rt, const char *to, const char *type, const char *corr,
                 const void *body, size_t body_len);
/* Takes ownership of n envelopes (the array itself stays the caller's) and
 * makes them durable in one commit; the caller's pointers are NULLed. */
int runtime_send_many(runtime_t *rt, envelope_t **envs, size_t n);
/* Like runtime_send, delivered no earlier than not_before_ms (Unix ms). */
int runtime_send_at(runtime_t *rt, const char *to, const char *type, const char *corr,
                    const void *body, size_t body_len, int64_t not_before_ms);

/* Reads an actor's committed state into a malloc'd copy (*state is the
 * caller's; NULL with len 0 for an empty state). FENTA_ENOTFOUND if absent. */
int runtime_actor_state(runtime_t *rt, const char *addr, void **state, size_t *len);
/* Waits until every mailbox is empty, nothing is being handled and no timer
 * is due within horizon_ms; FENTA_ETIMEOUT after timeout_ms. For tests,
 * benches and orderly batch runs. */
int runtime_quiesce(runtime_t *rt, int64_t horizon_ms, int timeout_ms);

typedef struct {
    uint64_t processed;     /* messages handled successfully */
    uint64_t failed;        /* handler failures */
    uint64_t retried;       /* retries scheduled */
    uint64_t dead_lettered; /* moved to the dead-letter queue */
    uint64_t quarantined;   /* of which: crashed the process too often, never run again */
    uint64_t commits;       /* LMDB write transactions committed */
    uint64_t pending;       /* messages in mailboxes now */
    uint64_t resident;      /* actors in memory now */
    uint64_t timers;        /* timers in the store now (approximate) */
} runtime_stats_t;
void runtime_stats(runtime_t *rt, runtime_stats_t *out);
/* The node name. */
const char *runtime_node(const runtime_t *rt);

/* ---- inside a handler (ctx is valid only during the callback) ---------- */

/* This actor's address. */
const char *actor_self(const actor_ctx_t *ctx);
runtime_t *actor_runtime(const actor_ctx_t *ctx);
/* The current state (borrowed; NULL/0 when empty). */
const void *actor_state(const actor_ctx_t *ctx, size_t *len);
/* Replaces the state (copied); committed with the ack. */
int actor_set_state(actor_ctx_t *ctx, const void *state, size_t len);
/* Sends with the ack (correlation id inherited from the message being handled). */
int actor_send(actor_ctx_t *ctx, const char *to, const char *type, const void *body,
               size_t body_len);
/* Sends after delay_ms (a durable timer set with the ack). */
int actor_send_after(actor_ctx_t *ctx, const char *to, const char *type, const void *body,
                     size_t body_len, int64_t delay_ms);
/* Spawns with the ack; EEXIST is not an error at commit (the existing actor stays). */
int actor_spawn(actor_ctx_t *ctx, const char *addr, const char *sup, const void *state,
                size_t state_len);
/* Whether addr names an actor spawned on this node: its record committed,
 * or resident and loaded. For a nudge that matters only to an actor already
 * there (a message to one not yet spawned is dead-lettered as "no such
 * actor", which an operator would have to look at for nothing). */
bool actor_exists(actor_ctx_t *ctx, const char *addr);
/* Puts a message for `to` straight into the dead-letter queue, with the ack
 * and the reason why: for an actor that gave up on its own terms (a
 * webhook delivery after its last attempt). An operator's replay delivers
 * it to `to` like any dead letter. */
int actor_dead_letter(actor_ctx_t *ctx, const char *to, const char *type, const void *body,
                      size_t body_len, const char *why);
/* Records why the handler failed (printf-style); returns FENTA_EHANDLER for `return
 * actor_fail(...)`. */
int actor_fail(actor_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The user pointer of this actor's behaviour: what every actor of the kind
 * shares (the module's settings and hooks), not persisted. */
void *actor_kind_user(const actor_ctx_t *ctx);
/* Transient per-actor pointer (not persisted); set it in on_start, free it in on_stop. */
void *actor_user(const actor_ctx_t *ctx);
void actor_set_user(actor_ctx_t *ctx, void *user);

#endif
