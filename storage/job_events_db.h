/* job_events_db.h - the owner of reading the job_events table: a job's
 * events, in order, for replays of Server-Sent Event streams, catching a
 * stream up after a lost notification, and the time each was stored (the
 * timestamp of a webhook event's body). Events are appended with their
 * job's row in one statement, jobs_db_record (storage/jobs_db.h), so that
 * one write is atomic; every other statement on the table is here.
 *
 * id (bigserial) orders events across jobs and is the SSE event id; seq is
 * the job's own count. FENTA_E* codes only. */
#ifndef FENTA_JOB_EVENTS_DB_H
#define FENTA_JOB_EVENTS_DB_H
#include "storage/pg.h"

#include <stddef.h>
#include <stdint.h>

/* One stored event. */
typedef struct {
    long long id; /* job_events.id */
    char *type;   /* "status", "progress", "node.started", ... (owned) */
    char *data;   /* its data as JSON text (owned) */
} job_events_db_row_t;

/* Events read, in id order. */
typedef struct {
    job_events_db_row_t *v; /* n events (owned) */
    size_t n;
} job_events_db_rows_t;

/* Up to limit events of org_id (of job_id only unless NULL) with ids after
 * after_id, oldest first, into *out (free with job_events_db_free). */
int job_events_db_after(pg_conn_t *c, const char *org_id, const char *job_id, long long after_id,
                        int limit, job_events_db_rows_t *out);
/* Event id into *out (one event: free with job_events_db_free); FENTA_ENOTFOUND. */
int job_events_db_get(pg_conn_t *c, long long id, job_events_db_rows_t *out);
/* The newest event id of all (0 when there is none): where a stream that
 * wants only what happens next starts. */
int job_events_db_last_id(pg_conn_t *c, long long *id);
/* When job_id's events seqs[0..n) were stored, ms since the epoch, into
 * at[]. FENTA_ENOTFOUND when one of them is not stored (yet). */
int job_events_db_stored_at(pg_conn_t *c, const char *job_id, const long long *seqs, size_t n,
                            int64_t *at);
void job_events_db_free(job_events_db_rows_t *events);

#endif
