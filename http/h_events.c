/* h_events.c - job events as Server-Sent Events: GET /v1/jobs/{id}/events
 * and GET /v1/events (all of an organisation's jobs).
 *
 * A stream first replays the stored events after Last-Event-ID (the
 * job_events id; a job stream without it replays the job from its start, an
 * organisation stream starts with what happens next), then carries each new
 * event as it is committed: the job actor's inserts notify channel
 * fenta_job_events ("<id> <org> <job>"), the hub's listener thread reads the
 * row once and writes it to every stream that wants it. A stream that is
 * replaying holds its lock, so a live event waits for the replay and is sent
 * only if the replay did not already carry it. A job stream ends after the
 * job's final event; every stream gets a comment line every 15 s so dead
 * clients are noticed and proxies keep the connection. Workers are never
 * held: the handler hands the stream to the hub and returns. */
#include "http/app_internal.h"
#include "http/sse_hub.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "storage/job_events_db.h"
#include "storage/jobs_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Formats one event row (id, type, data text) as an SSE frame. */
static char *frame(app_t *app, const char *id, const char *type, const char *data)
{
    json_t *d = json_loads(data, 0, NULL);
    if (d && json_object_get(d, "artifacts"))
        app__artifact_urls(app, json_object_get(d, "artifacts"), NULL);
    json_object_set_new(d, "type", json_string(type));
    char *text = d ? json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(d);
    if (!text)
        return NULL;
    size_t cap = strlen(text) + strlen(type) + 64;
    char *f = malloc(cap);
    if (f)
        snprintf(f, cap, "id: %s\nevent: %s\ndata: %s\n\n", id, type, text);
    free(text);
    return f;
}

static bool final_event(const char *type, const char *data)
{
    if (strcmp(type, "completed") == 0)
        return true;
    return strcmp(type, "status") == 0 &&
           (strstr(data, "\"failed\"") || strstr(data, "\"cancelled\""));
}

/* The hub's callbacks: how a row becomes a frame, and whether it ends a
 * job's stream. */
static char *hub_frame(void *arg, const char *id, const char *type, const char *data, bool *final)
{
    *final = final_event(type, data);
    return frame(arg, id, type, data);
}

static void stream(http_req_t *req, const char *job_id)
{
    caller_t *cl = app__caller(req);
    app_t *app = app__of(req);
    const char *last = http_header(req, "last-event-id");
    if (last && (!*last || strspn(last, "0123456789") != strlen(last) || strlen(last) > 18)) {
        app__fail(req, "invalid_last_event_id", "Last-Event-ID must be an event id", NULL);
        return;
    }
    if (!app->hub) {
        app__fail(req, "unavailable", "live events need the database listener", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    if (job_id) {
        char status[16];
        int err =
            app__is_uuid(job_id) ? jobs_db_status(c, job_id, cl->org_id, status) : FENTA_ENOTFOUND;
        if (err) {
            app__reply_owned(req, c, err, 0, NULL, "no such job");
            app__db_done(req, &c);
            return;
        }
    }
    /* Where the replay starts: after Last-Event-ID; a job from its first
     * event; an organisation from now. */
    long long from = last ? atoll(last) : 0;
    if (!last && !job_id && job_events_db_last_id(c, &from) != 0)
        from = 0;
    http_stream_t *s = http_respond_stream(req, 200, "text/event-stream");
    if (!s) {
        app__db_done(req, &c);
        return;
    }
    http_stream_write(s, "retry: 3000\n\n", 13);
    sse_sub_t *sub = sse_hub_subscribe(app->hub, &s, cl->org_id, job_id);
    if (!sub) {
        app__db_done(req, &c);
        return; /* the hub ended the stream (full or stopping) */
    }
    job_events_db_rows_t rows = {0};
    (void)job_events_db_after(c, cl->org_id, job_id, from, SSE_REPLAY_MAX, &rows);
    sse_hub_replay(app->hub, sub, &rows);
    job_events_db_free(&rows);
    app__db_done(req, &c);
}

void h_jobs_events(http_req_t *req)
{
    stream(req, http_param(req, "id"));
}

void h_events_stream(http_req_t *req)
{
    stream(req, NULL);
}

sse_hub_t *app__hub_new(app_t *app, const char *conninfo)
{
    return sse_hub_new(app->pool, conninfo, app->sse_heartbeat_ms, hub_frame, app);
}
