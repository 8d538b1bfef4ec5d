/* schedules_db.h - the owner of the schedules and schedule_runs tables:
 * every statement on them and the mapping of their rows (API objects for
 * the handlers, schedules_db_row_t for the schedule actor).
 *
 * Each call takes the caller's connection (pg.h), so a caller composes
 * several calls, and other owners' calls, in one transaction of its own.
 * 0 or a negative FENTA_E* code, never an HTTP status: FENTA_ENOTFOUND is
 * no such live schedule in that organisation (another organisation's, a
 * deleted one and a malformed id all read as missing); the rest are pg.h's.
 * Objects given back through json_t ** are the caller's. */
#ifndef FENTA_SCHEDULES_DB_H
#define FENTA_SCHEDULES_DB_H
#include "storage/db.h"
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* A schedule's definition as written by create and update (every pointer
 * borrowed for the call). On update a NULL "keep" field leaves the row's. */
typedef struct {
    const char *org_id;      /* create: the organisation */
    const char *workflow_id; /* create: the workflow it runs */
    const char *created_by;  /* create: the user, NULL for none */
    const char *name;        /* NULL: "" on create, keep on update */
    bool set_version;        /* update: version below replaces the row's (create always) */
    const char *version;     /* decimal workflow version; NULL = the latest at each firing */
    const char *inputs;      /* inputs as JSON text; NULL: {} on create, keep on update */
    const char *cron;        /* the cron expression (checked by the caller) */
    const char *timezone;    /* its IANA zone (checked by the caller) */
    const char *misfire;     /* "skip" or "run_once"; NULL: "skip" on create, keep on update */
    bool paused;             /* no firing until resumed */
    const char *priority;    /* of the jobs; NULL: "normal" on create, keep on update */
    bool set_max_credits;    /* update: max_credits below replaces the row's (create always) */
    const char *max_credits; /* decimal cap of a job's price; NULL = none */
    int64_t next_fire;       /* Unix seconds shown as next_fire_at; 0 = none (paused, never) */
} schedules_db_def_t;

/* ---- the API's reads and writes (objects in the API's schedule shape) ---- */

/* Inserts a schedule; *out is the new row. */
int schedules_db_create(pg_conn_t *c, const schedules_db_def_t *def, json_t **out);
/* The live schedule id of org. */
int schedules_db_get(pg_conn_t *c, const char *id, const char *org_id, json_t **out);
/* One page of org's live schedules. */
int schedules_db_list(pg_conn_t *c, const char *org_id, const db_page_t *page, db_page_rows_t *out);
/* Rewrites the live schedule id of org from def and bumps its generation
 * (its actor re-arms from the row); *out is the row after. */
int schedules_db_update(pg_conn_t *c, const char *id, const char *org_id,
                        const schedules_db_def_t *def, json_t **out);
/* Pauses or resumes, with the next firing to show (0: none), and bumps the
 * generation; *out is the row after. */
int schedules_db_set_paused(pg_conn_t *c, const char *id, const char *org_id, bool paused,
                            int64_t next_fire, json_t **out);
/* Soft-deletes the live schedule id of org and bumps its generation. */
int schedules_db_delete(pg_conn_t *c, const char *id, const char *org_id);
/* One page of the firings of schedule id (newest first with page->desc):
 * objects {due_at, outcome, job_id, detail, created_at}; a page's keys are
 * the due times (unique per schedule) and the schedule id. The caller checks
 * the schedule is org's first (schedules_db_get); another organisation's
 * schedule gives an empty page here. */
int schedules_db_runs_list(pg_conn_t *c, const char *id, const char *org_id, const db_page_t *page,
                           db_page_rows_t *out);

/* ---- the schedule actor -------------------------------------------------- */

/* The row as the actor reads it (every string owned; clear with
 * schedules_db_row_clear). */
typedef struct {
    char *org_id;           /* the organisation */
    char *workflow_id;      /* the workflow the jobs run */
    char *workflow_version; /* decimal, NULL = the latest at each firing */
    char *inputs;           /* JSON text */
    char *priority;         /* of the jobs */
    char *max_credits;      /* decimal, NULL = no cap */
    char *cron;             /* the expression */
    char *timezone;         /* its zone */
    char *misfire;          /* "skip" or "run_once" */
    bool paused;            /* no timer while paused */
    bool deleted;           /* soft-deleted: no timer ever again */
    int generation;         /* bumped by every change; a timer of an older one is stale */
} schedules_db_row_t;

/* Schedule id, deleted or not (FENTA_ENOTFOUND when there is no row). */
int schedules_db_load(pg_conn_t *c, const char *id, schedules_db_row_t *row);
void schedules_db_row_clear(schedules_db_row_t *row);
/* Records the armed due time as next_fire_at (0: none). */
int schedules_db_set_next(pg_conn_t *c, const char *id, int64_t due);
/* Claims the firing of id at due (Unix seconds) for node, at now_ms (the
 * clock of the caller, the event's time): the first node to claim a due
 * time owns it, and a replay of the claim on that node finds it again.
 * *mine: whether node owns it; *claimed_ms: the first claim's time. */
int schedules_db_claim_run(pg_conn_t *c, const char *id, int64_t due, const char *org_id,
                           const char *node, int64_t now_ms, bool *mine, int64_t *claimed_ms);
/* Writes a firing's outcome ("started", "skipped", "failed") on its run
 * and on the schedule (last firing, job, outcome document, fire count):
 * job may be NULL, outcome_doc is JSON text. One statement. */
int schedules_db_record_run(pg_conn_t *c, const char *id, int64_t due, const char *outcome,
                            const char *job_id, const char *outcome_doc);
/* *ids: an array of the ids of every live, unpaused schedule (recovery). */
int schedules_db_live_ids(pg_conn_t *c, json_t **ids);

#endif
