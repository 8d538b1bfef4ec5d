/* schedule.h - cron schedules of workflow runs: each schedule is a durable
 * actor "schedule/<id>" whose timer, kept in the node's mailbox store,
 * survives restarts.
 *
 * The schedules table is what clients read and change; after every change
 * the API calls schedule_sync, and the actor reads the row, computes the
 * next due time (actors/schedules/cron.h, in the schedule's IANA zone) and arms a
 * timer for it, tagged with the row's generation so a timer armed for an
 * older definition is ignored when it goes off.
 *
 * A firing at due time T:
 *  - claims (schedule, T) in schedule_runs: the first to insert it owns the
 *    firing, so a replayed message, or a second node holding the same
 *    actor, does nothing twice;
 *  - creates a job whose id is derived from the schedule and T (job_insert
 *    with that id), spawns its actor and sends it job.start, all with the
 *    message's ack;
 *  - records the outcome (the job, or why none) on the schedule's row and
 *    emits "schedule.fired" to the organisation's webhooks.
 * Misfires: a timer that goes off more than misfire_grace_s after its due
 * time (the node was down) is skipped (misfire "skip": recorded as skipped)
 * or run once for all the missed times (misfire "run_once"), and the next
 * timer is armed after now. */
#ifndef FENTA_SCHEDULE_H
#define FENTA_SCHEDULE_H
#include "actors/workflow/workflow.h"
#include "runtime/runtime.h"
#include "storage/pg.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct schedule_engine schedule_engine_t;

typedef struct {
    pg_pool_t *pool;               /* the system of record (borrowed) */
    const workflow_types_t *types; /* node types, to price and check runs (borrowed) */
    int misfire_grace_s;           /* a firing later than this is a misfire; 0 = 60 */
    bool webhooks;                 /* emit schedule.fired (actors/webhooks/webhooks.h registered) */
} schedule_config_t;

schedule_engine_t *schedule_engine_new(const schedule_config_t *cfg);
void schedule_engine_destroy(schedule_engine_t **self_p);
/* Registers the kind "schedule" (before runtime_start). */
int schedule_engine_register(schedule_engine_t *e, runtime_t *rt);
/* Tells schedule/<id> that its row changed (created, edited, paused,
 * resumed, deleted); spawns it when needed. Durable when it returns 0. */
int schedule_sync(runtime_t *rt, const char *schedule_id);
/* Spawns and syncs every live schedule whose actor this node lacks (a fresh
 * mailbox store, or a crash between a row's insert and its sync). After
 * runtime_start; *started (may be NULL) counts them. */
int schedule_engine_recover(schedule_engine_t *e, runtime_t *rt, int *started);

/* Checks a definition for the API: 0, or FENTA_EINVAL with field
 * ("cron.minute", "cron.hour", "cron.day_of_month", "cron.month",
 * "cron.day_of_week", "cron.expression" or "timezone") and message (a
 * sentence starting with the field at fault) filled. */
int schedule_check(const char *cron, const char *timezone, char *field, size_t field_cap,
                   char *message, size_t message_cap);
/* The next count (<= 1000) fire times strictly after after_utc (Unix
 * seconds) into out; *n how many there are (fewer when the expression
 * stops firing). FENTA_EINVAL for a bad definition. */
int schedule_preview(const char *cron, const char *timezone, int64_t after_utc, int count,
                     int64_t *out, int *n);
/* utc as wall time in zone with its offset ("2026-03-29T03:00:00+02:00")
 * into buf; FENTA_EINVAL for an unknown zone. */
int schedule_local_time(const char *zone, int64_t utc, char *buf, size_t cap);
/* The job id a firing of schedule_id at due_utc creates (a name-based
 * UUID, the same on every node and replay), into id[37]. */
void schedule_job_id(const char *schedule_id, int64_t due_utc, char id[37]);

#endif
