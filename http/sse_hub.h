/* sse_hub.h - fans job events out to Server-Sent Event streams.
 *
 * The hub listens on PostgreSQL channel fenta_job_events (payload
 * "<event id> <org id> <job id> <type> <data>", sent by job_events' insert
 * trigger; without type and data for an event too large for a notification,
 * which the hub then reads from the table) and writes each new event to
 * every subscribed stream of that
 * organisation (and job, for a job's stream). After a lost connection it
 * catches every stream up from the table. It also writes a comment line to
 * every stream every heartbeat_ms (15 s unless configured: the
 * sse_heartbeat_ms setting, cli/config.h), which is how closed streams are
 * found and dropped.
 *
 * Threads: subscribe and replay run on request workers; the hub's own
 * listener and heartbeat threads do the rest. Streams are never blocked on:
 * http_stream_write only queues. */
#ifndef FENTA_SSE_HUB_H
#define FENTA_SSE_HUB_H
#include "http/request.h"
#include "storage/job_events_db.h"
#include "storage/pg.h"
#include <stdbool.h>

typedef struct sse_hub sse_hub_t;
typedef struct sse_sub sse_sub_t;

/* Makes the SSE frame of an event row (a malloc'd string the hub frees) and
 * says whether it is the last of its job (the job's stream then ends). */
typedef char *(*sse_frame_fn)(void *arg, const char *id, const char *type, const char *data,
                              bool *final);

/* Starts listening (conninfo: the database); heartbeat_ms is how often
 * every stream gets a comment line (below 10: 15000). NULL on failure. */
sse_hub_t *sse_hub_new(pg_pool_t *pool, const char *conninfo, int heartbeat_ms, sse_frame_fn frame,
                       void *arg);
/* Ends every stream, stops the threads, frees; NULL-safe; NULLs *hub_p. */
void sse_hub_destroy(sse_hub_t **hub_p);

/* Takes the stream (*stream becomes NULL) and subscribes it to org's events
 * (job_id NULL: all of them). Live events wait until sse_hub_replay. NULL
 * when the hub is full (10000 streams): the stream is ended with a comment. */
sse_sub_t *sse_hub_subscribe(sse_hub_t *hub, http_stream_t **stream, const char *org_id,
                             const char *job_id);
/* The most stored events a replay or a catch-up writes at once. */
#define SSE_REPLAY_MAX 10000

/* Writes the stored events of rows (job_events_db_after's; may be NULL),
 * then lets live events through (those the replay carried are not sent
 * twice). Call once, right after sse_hub_subscribe. */
void sse_hub_replay(sse_hub_t *hub, sse_sub_t *sub, const job_events_db_rows_t *rows);

/* Streams open now. */
size_t sse_hub_count(sse_hub_t *hub);

#endif
