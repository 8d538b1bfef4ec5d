/* jobs_db.h - the owner of the jobs table: every statement on it and the
 * mapping of its rows, for the API (creating, reading, listing, steering
 * jobs) and for the job actor (its row loaded on its first message,
 * admission under the organisation's cap, the row and its new events
 * written after each message).
 *
 * A job as an object (jobs_db_get, jobs_db_list): {"id", "org_id", "kind",
 * "workflow_id", "workflow_version", "status", "priority", "progress",
 * "current_node", "nodes", "artifacts", "error", "credits", "attempts",
 * "inputs", "created_at", "started_at", "finished_at", "updated_at"}, the
 * artifacts without URLs (signing them is the API's business). A row of
 * another organisation is not found; ids are uuids (a malformed one is
 * FENTA_EINVAL: callers check the shape first). FENTA_E* codes only, never
 * an HTTP status. Statements that read another table for a job (orgs for
 * its cap, job_events written with the row) are here because they are
 * about the job; job_events_db.h owns reading events. */
#ifndef FENTA_JOBS_DB_H
#define FENTA_JOBS_DB_H
#include "storage/db.h"
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>

/* ---- creating ---------------------------------------------------------------- */

/* A run of a workflow to insert, queued. */
typedef struct {
    const char *id;          /* the job's id; NULL = a random one */
    const char *org_id;      /* the organisation */
    const char *workflow_id; /* the workflow run */
    int workflow_version;    /* its version */
    const char *priority;    /* "high", "normal" or "low"; NULL = "normal" */
    const json_t *graph;     /* the version's graph with the run's inputs merged */
    const json_t *inputs;    /* the run's inputs as given; NULL = {} */
    double credits;          /* its price */
    const char *estimate_id; /* NULL = none */
    const char *created_by;  /* the user; NULL = nobody (a schedule) */
    const char *schedule_id; /* NULL = none */
} jobs_db_new_t;

/* Inserts the row; its id into id. FENTA_EEXIST (id filled) when j->id is
 * given and that job exists already (a replayed creation inserts nothing). */
int jobs_db_insert_workflow(pg_conn_t *c, const jobs_db_new_t *j, char id[37]);
/* Inserts a direct render of spec (its graph column holds the spec), queued. */
int jobs_db_insert_render(pg_conn_t *c, const char *org_id, const char *priority,
                          const json_t *spec, const char *created_by, char id[37]);
/* 0 when job id exists (and is org_id's; org_id NULL = anyone's), else
 * FENTA_ENOTFOUND. */
int jobs_db_exists(pg_conn_t *c, const char *id, const char *org_id);
/* Removes a job whose actor could not be started (nothing else knows it). */
int jobs_db_delete(pg_conn_t *c, const char *id);

/* ---- reading and steering (the API) -------------------------------------------- */

/* Job id of org_id into *job; FENTA_ENOTFOUND. */
int jobs_db_get(pg_conn_t *c, const char *id, const char *org_id, json_t **job);
/* The status of job id of org_id into status; FENTA_ENOTFOUND. */
int jobs_db_status(pg_conn_t *c, const char *id, const char *org_id, char status[16]);

/* Filters of a list; NULL = any. */
typedef struct {
    const char *status;         /* one status */
    const char *workflow_id;    /* a uuid */
    const char *created_after;  /* a timestamp PostgreSQL reads */
    const char *created_before; /* a timestamp PostgreSQL reads */
} jobs_db_filter_t;
/* One page of org_id's jobs matching f. */
int jobs_db_list(pg_conn_t *c, const char *org_id, const jobs_db_filter_t *f, const db_page_t *page,
                 db_page_rows_t *out);

/* Locks job id of org_id and reads its status into old; when claim is not
 * NULL and the status is one of allowed[0], allowed[1], sets it to claim
 * in the same statement (so of two concurrent requests one wins) and sets
 * *claimed. FENTA_ENOTFOUND. */
int jobs_db_claim(pg_conn_t *c, const char *id, const char *org_id, const char *const allowed[2],
                  const char *claim, char old[16], bool *claimed);
/* Sets the status (undoing a claim whose message could not be sent). */
int jobs_db_set_status(pg_conn_t *c, const char *id, const char *status);

/* ---- the job actor ---------------------------------------------------------------- */

/* What the actor reads of its row on its first message. */
typedef struct {
    char org_id[37]; /* the organisation */
    char kind[16];   /* "workflow" or "render" */
    char status[16]; /* as stored */
    json_t *graph;   /* the merged graph, or a render's spec (owned) */
    int attempts;    /* runs so far */
} jobs_db_run_t;
/* Job id's row into *out (free with jobs_db_run_free); FENTA_ENOTFOUND. */
int jobs_db_load(pg_conn_t *c, const char *id, jobs_db_run_t *out);
void jobs_db_run_free(jobs_db_run_t *run);

/* Moves queued job id of org_id to running when the organisation has a
 * free slot for it: at most its max_running_jobs (default_cap when it has
 * none) run, and it is admitted when the free slots outnumber the queued
 * jobs ahead of it (priority, then age, then id: a strict order, so two
 * jobs created in the same instant never each wait for the other). Takes
 * the organisation's advisory lock for the rest of the transaction, so two
 * jobs never take the last slot: call it inside pg_tx. 0, FENTA_ELIMIT
 * when there is no slot for it now (or it is not queued). */
int jobs_db_admit(pg_conn_t *c, const char *id, const char *org_id, int default_cap);

/* What the actor writes of its row after a message. */
typedef struct {
    const char *org_id;       /* the organisation (events carry it) */
    const char *status;       /* the job's status */
    double progress;          /* percent */
    const char *current_node; /* NULL = none */
    const json_t *nodes;      /* {"<id>": node as the API shows it} */
    const json_t *artifacts;  /* [artifact] */
    const json_t *error;      /* NULL = none */
    int attempts;             /* runs so far */
} jobs_db_record_t;
/* Writes the row and appends events ([{"seq", "type", "data"}]) to
 * job_events in ONE statement (atomic on its own: one round trip where
 * BEGIN, two statements and COMMIT took four). Events already there (a
 * replayed message) are skipped by their seq. started_at and finished_at
 * follow the status. */
int jobs_db_record(pg_conn_t *c, const char *id, const jobs_db_record_t *r, const json_t *events);

/* The ids of up to max queued jobs of org_id, other than except_id, in
 * admission order, into ids; their count into *n. */
int jobs_db_next_queued(pg_conn_t *c, const char *org_id, const char *except_id, char (*ids)[37],
                        int max, int *n);
/* Every queued or running job as a new array of {"id", "status"} (for the
 * actors a restart must give them). */
int jobs_db_unfinished(pg_conn_t *c, json_t **jobs);

#endif
