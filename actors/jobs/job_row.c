/* job_row.c - a job's row: the state its actor starts from (loaded from
 * the jobs row on its first message), and what leaves the job after each
 * message: the row and its new events (one statement), the webhook events
 * among them with the times they were stored, and a nudge to the next
 * queued jobs when a slot came free. Every statement goes through
 * storage/jobs_db.h and storage/job_events_db.h. */
#include "actors/jobs/job_internal.h"
#include "actors/webhooks/webhooks.h"
#include "runtime/error.h"
#include "storage/job_events_db.h"
#include "storage/jobs_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *iso(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(buf);
}

pg_conn_t *job__db(job_msg_t *x, int *err)
{
    if (!x->conn)
        x->conn = pg_acquire(x->e->cfg.pool, 5000, err);
    return x->conn;
}

/* The job's row into the state, on the first message. */
int job__row_load(job_msg_t *x, char *errbuf, size_t errlen)
{
    int err = 0;
    pg_conn_t *c = job__db(x, &err);
    if (!c)
        return fenta_fail(errbuf, errlen, err, "database: %s", fenta_strerror(err));
    jobs_db_run_t run;
    err = jobs_db_load(c, x->id, &run);
    if (err == FENTA_ENOTFOUND)
        return err;
    if (err)
        return fenta_fail(errbuf, errlen, err, "database: %s", fenta_strerror(err));
    json_object_set_new(x->st, "org", json_string(run.org_id));
    json_object_set_new(x->st, "kind", json_string(run.kind));
    json_object_set_new(x->st, "status", json_string(run.status));
    json_object_set_new(x->st, "graph", run.graph);
    run.graph = NULL; /* the state's now */
    json_object_set_new(x->st, "attempts", json_integer(run.attempts));
    json_object_set_new(x->st, "seq", json_integer(0));
    json_object_set_new(x->st, "progress", json_real(0));
    json_object_set_new(x->st, "artifacts", json_array());
    json_object_set_new(x->st, "renders", json_object());
    json_t *ns = json_object();
    if (strcmp(run.kind, "render") == 0) {
        /* A direct render is one montage: the graph column holds its spec.
         * The spec takes its own reference before "graph" is replaced, since
         * replacing it drops the state's reference (the last one when the
         * spec took none: it was read after being freed). */
        json_object_set(x->st, "spec", json_object_get(x->st, "graph"));
        json_object_set_new(
            x->st, "graph",
            json_pack("{s[{ss ss}]}", "nodes", "id", JOB_RENDER_NODE, "type", "montage"));
    }
    json_t *g = json_object_get(x->st, "graph");
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(g, "nodes"), i, n)
        json_object_set_new(ns, job__str(n, "id"),
                            json_pack("{ss ss sI}", "type", job__str(n, "type"), "status",
                                      "pending", "attempt", (json_int_t)0));
    json_object_set_new(x->st, "nodes", ns);
    return 0;
}

/* The nodes as the API shows them (timestamps as RFC 3339). */
static json_t *nodes_doc(job_msg_t *x)
{
    json_t *out = json_object();
    const char *k;
    json_t *n;
    json_object_foreach(job__nodes(x), k, n)
    {
        json_t *d = json_deep_copy(n);
        json_object_del(d, "fraction");
        json_object_set_new(d, "started_at",
                            iso(json_integer_value(json_object_get(n, "started_ms"))));
        json_object_set_new(d, "finished_at",
                            iso(json_integer_value(json_object_get(n, "finished_ms"))));
        json_object_del(d, "started_ms");
        json_object_del(d, "finished_ms");
        json_object_set_new(out, k, d);
    }
    return out;
}

/* Writes the job's row and its new events (jobs_db_record: one statement;
 * events already there, from a replayed message, are skipped by their seq). */
int job__row_write(job_msg_t *x)
{
    int rc = 0;
    pg_conn_t *c = job__db(x, &rc);
    if (!c)
        return rc;
    json_t *nd = nodes_doc(x);
    jobs_db_record_t r = {.org_id = job__str(x->st, "org"),
                          .status = job__status(x),
                          .progress = json_number_value(json_object_get(x->st, "progress")),
                          .current_node = job__str(x->st, "current_node"),
                          .nodes = nd,
                          .artifacts = json_object_get(x->st, "artifacts"),
                          .error = json_object_get(x->st, "error"),
                          .attempts = (int)json_integer_value(json_object_get(x->st, "attempts"))};
    rc = nd ? jobs_db_record(c, x->id, &r, x->events) : FENTA_ENOMEM;
    json_decref(nd);
    return rc;
}

/* After a job settles: the next queued jobs of its organisation are told to
 * try for the slot now rather than at their next timer. */
void job__wake_queued(job_msg_t *x)
{
    int err = 0;
    pg_conn_t *c = job__db(x, &err);
    if (!c)
        return;
    /* Never ourselves: a job refused for an earlier one would spin. */
    char ids[2][37];
    int n = 0;
    if (jobs_db_next_queued(c, job__str(x->st, "org"), x->id, ids, 2, &n) != 0)
        return;
    for (int i = 0; i < n; i++) {
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "job/%s", ids[i]);
        /* A queued row whose actor is not spawned yet (the API commits the
         * row, then spawns) gets its own job.start after the spawn; a nudge
         * now would only be a dead letter. */
        if (actor_exists(x->ctx, to))
            actor_send(x->ctx, to, "job.admit", NULL, 0);
    }
}

/* When each of this message's events was stored, ms since the epoch, into
 * at (indexed as x->events): the job_events rows' created_at. The row write
 * has committed them, and a replayed message finds the rows its first run
 * wrote (ON CONFLICT kept them), so the times are the same on every run. */
static int stored_times(job_msg_t *x, int64_t *at)
{
    size_t n = json_array_size(x->events);
    int rc = 0;
    pg_conn_t *c = job__db(x, &rc);
    if (!c)
        return rc;
    long long *seqs = calloc(n ? n : 1, sizeof *seqs);
    if (!seqs)
        return FENTA_ENOMEM;
    for (size_t i = 0; i < n; i++)
        seqs[i] =
            (long long)json_integer_value(json_object_get(json_array_get(x->events, i), "seq"));
    /* ENOTFOUND: written just before, so retry rather than invent a time. */
    rc = job_events_db_stored_at(c, x->id, seqs, n, at);
    free(seqs);
    return rc;
}

/* The webhook events among the job's new ones, with the ack: job.started,
 * job.progress and the final job.succeeded / job.failed / job.cancelled.
 * The event id comes from the job and the event's seq, and its time from
 * the event's stored row, so a replayed message (after a crash lost its
 * ack, maybe after a delivery already went out) emits the same ids with
 * the same bodies: a consumer deduplicating by webhook-id never has to
 * pick between two payloads. */
int job__emit_webhooks(job_msg_t *x)
{
    size_t i;
    json_t *ev;
    int64_t *at = NULL;
    int rc = 0;
    json_array_foreach(x->events, i, ev)
    {
        const char *type = job__str(ev, "type");
        const json_t *d = json_object_get(ev, "data");
        char wtype[32] = "";
        if (strcmp(type, "status") == 0) {
            const char *s = job__str(d, "status");
            if (s && (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 ||
                      strcmp(s, "cancelled") == 0))
                snprintf(wtype, sizeof wtype, "job.%s", s);
            else if (s && strcmp(s, "running") == 0)
                snprintf(wtype, sizeof wtype, "job.started");
        } else if (strcmp(type, "progress") == 0) {
            snprintf(wtype, sizeof wtype, "job.progress");
        }
        if (!wtype[0] ||
            (x->e->cfg.webhooks_wanted &&
             !x->e->cfg.webhooks_wanted(x->e->cfg.webhooks_arg, job__str(x->st, "org"), wtype)))
            continue;
        /* read once, and only when some event is wanted */
        if (!at) {
            at = calloc(json_array_size(x->events), sizeof *at);
            rc = at ? stored_times(x, at) : FENTA_ENOMEM;
            if (rc)
                break;
        }
        json_t *data = json_pack("{ss ss sO sO* sO*}", "job_id", x->id, "status", job__status(x),
                                 "progress", json_object_get(x->st, "progress"), "current_node",
                                 json_object_get(x->st, "current_node"), "error",
                                 json_object_get(x->st, "error"));
        if (data && strcmp(wtype, "job.succeeded") == 0)
            json_object_set(data, "artifacts", json_object_get(x->st, "artifacts"));
        char eid[96];
        snprintf(eid, sizeof eid, "evt_job_%s_%lld", x->id,
                 (long long)json_integer_value(json_object_get(ev, "seq")));
        rc = data ? webhooks_emit(x->ctx, job__str(x->st, "org"), eid, wtype, data, at[i])
                  : FENTA_ENOMEM;
        json_decref(data);
        if (rc)
            break;
    }
    free(at);
    return rc;
}
