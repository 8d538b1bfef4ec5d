/* supervisor.h - supervision tree in the manner of Erlang/OTP.
 *
 * Every actor is spawned under a supervisor (default "root"). When an actor's
 * handler fails, the message goes to retry (runtime.h) and the supervisor
 * restarts children according to its strategy: the failed one
 * (one_for_one), all of them (one_for_all) or the failed one and those
 * spawned after it (rest_for_one). A restart runs the behaviour's on_stop and
 * then on_start(ACTOR_RESTARTED) before the child's next message; the
 * persistent state is the last committed one, so the failed message's
 * effects are gone. More than `intensity` restarts within `period_ms` stop the
 * supervisor: its children take no messages (their mail stays durable) and
 * the failure escalates to the parent, which restarts the supervisor as one of
 * its children. When root gives up, the tree stays stopped until an operator
 * calls supervisor_restart. */
#ifndef FENTA_SUPERVISOR_H
#define FENTA_SUPERVISOR_H
#include <stdbool.h>
#include <stdint.h>

typedef struct runtime runtime_t;

typedef enum {
    SUP_ONE_FOR_ONE,
    SUP_ONE_FOR_ALL,
    SUP_REST_FOR_ONE,
} sup_strategy_t;

typedef struct {
    const char *name;        /* unique */
    const char *parent;      /* NULL = "root" */
    sup_strategy_t strategy; /* which children restart together */
    int intensity;           /* restarts allowed within period_ms; 0 = 10 */
    int64_t period_ms;       /* 0 = 5000 */
} supervisor_spec_t;

typedef struct {
    char name[64];           /* its name */
    char parent[64];         /* its parent ("" for root) */
    sup_strategy_t strategy; /* its strategy */
    int intensity;           /* its limit */
    int64_t period_ms;       /* its window */
    bool running;            /* false once it gave up, until restarted */
    uint64_t restarts;       /* children restarted, all time */
    uint64_t escalations;    /* times it gave up */
} supervisor_info_t;

/* Declares a supervisor (any time). FENTA_EEXIST for a taken name,
 * FENTA_ENOTFOUND for an unknown parent. */
int supervisor_add(runtime_t *rt, const supervisor_spec_t *spec);
/* Restarts a supervisor that gave up, and all its descendants. */
int supervisor_restart(runtime_t *rt, const char *name);
/* A snapshot of one supervisor. */
int supervisor_info(runtime_t *rt, const char *name, supervisor_info_t *out);
/* Calls cb for every supervisor, root first. */
void supervisor_each(runtime_t *rt, void (*cb)(const supervisor_info_t *info, void *arg),
                     void *arg);
/* Name of a strategy ("one_for_one"...). */
const char *supervisor_strategy_name(sup_strategy_t s);

#endif
