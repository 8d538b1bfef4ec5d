/* job.c - the job engine: the job actor's message loop, the node actors,
 * and the engine's life cycle and public calls (job.h). The walk over the
 * plan is job_walk.c; the row, its events and webhooks are job_row.c.
 *
 * The actor's state is a JSON document (the job's memory between messages):
 *   {"org", "kind", "status", "graph", "seq", "attempts",
 *    "nodes": {"<id>": {"status", "attempt", "started_ms", "finished_ms",
 *                       "outputs", "error", "stages": {...}}},
 *    "renders": {"<render id>": {"status", "submitted"}},
 *    "progress", "artifacts", "error", "admit_tries"}
 * Each message: load the state, apply the message, start what became
 * ready, then write the row and the new events in one PostgreSQL
 * transaction, and only then set the new state (committed with the ack).
 * A failure to write leaves the old state: the message is retried and
 * recomputes the same events with the same seq (inserted at most once). */
#include "actors/jobs/job_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "storage/jobs_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const backoff_policy_t JOB_RETRY = {
    .base_ms = 500, .factor = 2, .cap_ms = 30000, .max_attempts = 12};
static const backoff_policy_t NODE_RETRY = {
    .base_ms = 1000, .factor = 4, .cap_ms = 60000, .max_attempts = 4};

/* ---- the job actor ------------------------------------------------------------------- */

static int job_message(actor_ctx_t *ctx, const envelope_t *msg)
{
    job_engine_t *e = actor_kind_user(ctx);
    const char *self = actor_self(ctx);
    job_msg_t x = {.e = e, .ctx = ctx, .id = strchr(self, '/') + 1, .events = json_array()};
    size_t len = 0;
    const char *st = actor_state(ctx, &len);
    x.st = st && len ? json_loadb(st, len, 0, NULL) : NULL;
    char err[1024] = "";
    int rc = 0;
    if (!x.st) {
        x.st = json_object();
        rc = job__row_load(&x, err, sizeof err);
        if (rc == FENTA_ENOTFOUND) {
            /* No row: the API never committed it. Nothing to run. */
            log_kv(LOG_WARN, NULL, "job without a row; ignored",
                   (const char *const[]){"job_id", x.id, NULL});
            json_decref(x.st);
            json_decref(x.events);
            pg_release(e->cfg.pool, &x.conn);
            return 0;
        }
    }
    json_t *b = msg->body_len ? json_loadb((const char *)msg->body, msg->body_len, 0, NULL) : NULL;
    const char *type = msg->type;
    if (rc == 0) {
        if (strcmp(type, "job.start") == 0 || strcmp(type, "job.admit") == 0)
            rc = job__admit(&x);
        else if (strcmp(type, "node.done") == 0)
            rc = job__on_node_reply(&x, b, true);
        else if (strcmp(type, "node.failed") == 0)
            rc = job__on_node_reply(&x, b, false);
        else if (strncmp(type, "render.", 7) == 0)
            rc = job__on_render(&x, type, b, err, sizeof err);
        else if (strcmp(type, "job.cancel") == 0)
            rc = job__on_cancel(&x, err, sizeof err);
        else if (strcmp(type, "job.retry") == 0)
            rc = job__on_retry(&x);
    }
    if (rc == 0)
        rc = job__advance(&x, err, sizeof err);
    char *s = NULL;
    if (rc == 0) {
        job__progress(&x);
        s = json_dumps(x.st, JSON_COMPACT);
        rc = s ? 0 : FENTA_ENOMEM;
    }
    /* A message that changed nothing (a nudge to a job already admitted, a
     * duplicate reply) writes nothing: no row, no state. */
    bool same =
        s && st && json_array_size(x.events) == 0 && strlen(s) == len && memcmp(s, st, len) == 0;
    if (rc == 0 && !same) {
        rc = job__row_write(&x);
        if (rc)
            snprintf(err, sizeof err, "cannot record the job: %s", fenta_strerror(rc));
    }
    if (rc == 0 && !same && e->cfg.webhooks)
        rc = job__emit_webhooks(&x);
    if (rc == 0 && x.wake_queue)
        job__wake_queued(&x);
    if (rc == 0 && !same)
        rc = actor_set_state(ctx, s, strlen(s));
    free(s);
    json_decref(b);
    json_decref(x.st);
    json_decref(x.events);
    workflow_plan_free(&x.plan);
    job__groups_free(x.groups, x.ngroups);
    pg_release(e->cfg.pool, &x.conn);
    if (rc)
        return actor_fail(ctx, "%s: %s", type, err[0] ? err : fenta_strerror(rc));
    return 0;
}

/* ---- node actors ------------------------------------------------------------------- */

static bool passing(int rc)
{
    return rc == FENTA_EIO || rc == FENTA_EUNAVAILABLE || rc == FENTA_ETIMEOUT ||
           rc == FENTA_ENOMEM || rc == FENTA_ELIMIT;
}

static int node_message(actor_ctx_t *ctx, const envelope_t *msg)
{
    job_engine_t *e = actor_kind_user(ctx);
    json_t *b = json_loadb((const char *)msg->body, msg->body_len, 0, NULL);
    const char *job = job__str(b, "job");
    if (!b || !job)
        return actor_fail(ctx, "malformed node message");
    job_node_args_t a = {.e = e,
                         .job_id = job,
                         .org_id = job__str(b, "org"),
                         .node_id = job__str(b, "node"),
                         .type = job__str(b, "type"),
                         .params = json_object_get(b, "params"),
                         .inputs = json_object_get(b, "inputs")};
    char err[1024] = "";
    json_t *out = NULL;
    int64_t t0 = clock_mono_us();
    int rc =
        a.type && a.node_id && a.org_id ? job__run_node(&a, &out, err, sizeof err) : FENTA_EINVAL;
    double secs = (double)(clock_mono_us() - t0) / 1e6;
    if (rc && passing(rc) && msg->attempt + 1 < NODE_RETRY.max_attempts) {
        json_decref(b);
        return actor_fail(ctx, "%s", err);
    }
    json_t *reply =
        rc == 0
            ? json_pack("{ss sO so sf}", "node", a.node_id, "attempt",
                        json_object_get(b, "attempt"), "outputs", out, "seconds", secs)
            : json_pack("{ss sO ss ss sf}", "node", a.node_id ? a.node_id : "", "attempt",
                        json_object_get(b, "attempt"), "error", err[0] ? err : fenta_strerror(rc),
                        "code", rc == FENTA_EINVAL ? "invalid_input" : fenta_strerror(rc),
                        "seconds", secs);
    char *s = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
    char to[ENVELOPE_ADDR_MAX + 1];
    snprintf(to, sizeof to, "job/%s", job);
    rc =
        s ? actor_send(ctx, to, rc == 0 ? "node.done" : "node.failed", s, strlen(s)) : FENTA_ENOMEM;
    free(s);
    json_decref(reply);
    json_decref(b);
    return rc;
}

/* ---- the engine ---------------------------------------------------------------------- */

job_engine_t *job_engine_new(const job_config_t *cfg)
{
    job_engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->cfg = *cfg;
    e->objects_dir = strdup(cfg->objects_dir ? cfg->objects_dir : "objects");
    e->work_dir = strdup(cfg->work_dir ? cfg->work_dir : "work");
    e->schemas_dir = cfg->schemas_dir ? strdup(cfg->schemas_dir) : NULL;
    if (!e->objects_dir || !e->work_dir || (cfg->schemas_dir && !e->schemas_dir)) {
        job_engine_destroy(&e);
        return NULL;
    }
    e->cfg.objects_dir = e->objects_dir;
    e->cfg.work_dir = e->work_dir;
    e->cfg.schemas_dir = e->schemas_dir;
    e->beh[0] = (behaviour_t){.kind = "job",
                              .dispatcher = "io",
                              .on_message = job_message,
                              .retry = JOB_RETRY,
                              .user = e};
    e->beh[1] = (behaviour_t){
        .kind = JOB_NODE_KIND, .on_message = node_message, .retry = NODE_RETRY, .user = e};
    e->beh[2] = (behaviour_t){.kind = JOB_NODE_KIND ".io",
                              .dispatcher = "io",
                              .on_message = node_message,
                              .retry = NODE_RETRY,
                              .user = e};
    e->beh[3] = (behaviour_t){.kind = JOB_NODE_KIND ".render",
                              .dispatcher = "render",
                              .on_message = node_message,
                              .retry = NODE_RETRY,
                              .user = e};
    return e;
}

void job_engine_destroy(job_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    job_engine_t *e = *self_p;
    free(e->objects_dir);
    free(e->work_dir);
    free(e->schemas_dir);
    free(e);
    *self_p = NULL;
}

int job_engine_register(job_engine_t *e, runtime_t *rt)
{
    e->rt = rt;
    for (size_t i = 0; i < sizeof e->beh / sizeof e->beh[0]; i++) {
        int rc = runtime_register(rt, &e->beh[i]);
        if (rc)
            return rc;
    }
    return 0;
}

void job_engine_on_render_event(void *arg, const render_event_t *ev)
{
    job_engine_t *e = arg;
    const char *kind = ev->kind == RENDER_EV_STAGE_STARTED    ? "started"
                       : ev->kind == RENDER_EV_STAGE_PROGRESS ? "progress"
                       : ev->kind == RENDER_EV_STAGE_FINISHED ? "finished"
                                                              : NULL;
    /* Job renders are "<job id>_<step>"; others (fenta render) are not ours. */
    const char *us = ev->render_id ? strrchr(ev->render_id, '_') : NULL;
    if (!kind || !e->rt || !us || us - ev->render_id != 36)
        return;
    char to[ENVELOPE_ADDR_MAX + 1];
    snprintf(to, sizeof to, "job/%.36s", ev->render_id);
    json_t *b =
        json_pack("{ss ss ss sf sf sb}", "render", ev->render_id, "kind", kind, "stage", ev->stage,
                  "fraction", ev->fraction, "seconds", ev->seconds, "skipped", ev->skipped);
    char *s = b ? json_dumps(b, JSON_COMPACT) : NULL;
    if (s && runtime_send(e->rt, to, "render.event", ev->render_id, s, strlen(s)) != 0)
        log_kv(LOG_WARN, NULL, "cannot pass a render event to its job",
               (const char *const[]){"render", ev->render_id, NULL});
    free(s);
    json_decref(b);
}

static int send_to(runtime_t *rt, const char *job_id, const char *type)
{
    char to[ENVELOPE_ADDR_MAX + 1];
    snprintf(to, sizeof to, "job/%s", job_id);
    return runtime_send(rt, to, type, job_id, NULL, 0);
}

int job_start(runtime_t *rt, const char *job_id)
{
    char to[ENVELOPE_ADDR_MAX + 1];
    snprintf(to, sizeof to, "job/%s", job_id);
    int rc = runtime_spawn(rt, to, NULL, NULL, 0);
    if (rc && rc != FENTA_EEXIST)
        return rc;
    return send_to(rt, job_id, "job.start");
}

int job_cancel(runtime_t *rt, const char *job_id)
{
    return send_to(rt, job_id, "job.cancel");
}

int job_retry(runtime_t *rt, const char *job_id)
{
    return send_to(rt, job_id, "job.retry");
}

int job_engine_recover(job_engine_t *e, runtime_t *rt, int *started)
{
    if (started)
        *started = 0;
    int err = 0;
    pg_conn_t *c = pg_acquire(e->cfg.pool, 10000, &err);
    if (!c)
        return err;
    json_t *jobs = NULL;
    err = jobs_db_unfinished(c, &jobs);
    pg_release(e->cfg.pool, &c);
    if (err)
        return err;
    int rc = 0;
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        const char *id = json_string_value(json_object_get(j, "id"));
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "job/%s", id);
        int s = runtime_spawn(rt, to, NULL, NULL, 0);
        /* A new actor, or a queued job whose start may never have been
         * sent: job.start is a no-op for a job past it. */
        if (s == 0 || strcmp(json_string_value(json_object_get(j, "status")), "queued") == 0) {
            rc = send_to(rt, id, "job.start");
            if (rc == 0 && started && s == 0)
                (*started)++;
        } else if (s != FENTA_EEXIST) {
            rc = s;
        }
        if (rc)
            break;
    }
    json_decref(jobs);
    return rc;
}
