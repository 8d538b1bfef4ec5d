/* job.c - the job actor: admission under the organisation's cap, the walk
 * over the workflow's plan, node and render bookkeeping, cancel and retry,
 * and the job's row and events in PostgreSQL. See job.h.
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
#include "actors/webhooks/webhooks.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define NODE_KIND "job.node"
/* Render jobs (POST /v1/renders) have one node of this name. */
#define RENDER_NODE "render"

static const backoff_policy_t JOB_RETRY = {
    .base_ms = 500, .factor = 2, .cap_ms = 30000, .max_attempts = 12};
static const backoff_policy_t NODE_RETRY = {
    .base_ms = 1000, .factor = 4, .cap_ms = 60000, .max_attempts = 4};

static int64_t now_ms(void)
{
    return clock_now_ms();
}

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

/* ---- one message's work ------------------------------------------------------- */

typedef struct {
    job_engine_t *e;
    actor_ctx_t *ctx;
    const char *id; /* the job id */
    json_t *st;     /* the state being changed (owned) */
    json_t *events; /* [{"seq","type","data"}] to append */
    workflow_plan_t plan;
    job_group_t *groups;
    size_t ngroups;
    bool planned;
    pg_conn_t *conn; /* taken on first need */
    bool wake_queue; /* a slot came free: the next queued jobs should try now */
} jx_t;

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char *status(jx_t *x)
{
    return sget(x->st, "status");
}

static json_t *nodes(jx_t *x)
{
    return json_object_get(x->st, "nodes");
}

static json_t *node(jx_t *x, const char *id)
{
    return json_object_get(nodes(x), id);
}

static void event(jx_t *x, const char *type, json_t *data)
{
    json_int_t seq = json_integer_value(json_object_get(x->st, "seq")) + 1;
    json_object_set_new(x->st, "seq", json_integer(seq));
    json_object_set_new(data, "job_id", json_string(x->id));
    json_array_append_new(x->events,
                          json_pack("{sI ss so}", "seq", seq, "type", type, "data", data));
}

static void set_status(jx_t *x, const char *s, json_t *error)
{
    json_object_set_new(x->st, "status", json_string(s));
    json_t *d = json_pack("{ss}", "status", s);
    if (error) {
        json_object_set(x->st, "error", error);
        json_object_set(d, "error", error);
        json_decref(error);
    }
    if (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0) {
        json_object_set_new(x->st, "finished_ms", json_integer(now_ms()));
        x->wake_queue = true;
    }
    event(x, "status", d);
}

static pg_conn_t *db(jx_t *x, int *err)
{
    if (!x->conn)
        x->conn = pg_acquire(x->e->cfg.pool, 5000, err);
    return x->conn;
}

static int plan(jx_t *x, char *errbuf, size_t errlen)
{
    if (x->planned)
        return 0;
    if (strcmp(sget(x->st, "kind"), "render") == 0) {
        /* A direct render: one montage step whose spec is given whole. */
        x->plan.steps = calloc(1, sizeof *x->plan.steps);
        if (!x->plan.steps)
            return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        x->plan.n = 1;
        workflow_step_t *s = &x->plan.steps[0];
        s->id = strdup(RENDER_NODE);
        s->type = strdup("montage");
        s->dispatcher = strdup("render");
        s->params = json_object();
        if (!s->id || !s->type || !s->dispatcher || !s->params)
            return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    } else {
        json_t *problems = NULL;
        int rc =
            workflow_plan(x->e->cfg.types, json_object_get(x->st, "graph"), &x->plan, &problems);
        if (rc) {
            char *p = problems ? json_dumps(problems, JSON_COMPACT) : NULL;
            fenta_fail(errbuf, errlen, rc, "the workflow is not valid: %s",
                       p ? p : fenta_strerror(rc));
            free(p);
            json_decref(problems);
            return rc;
        }
    }
    int rc = job__groups(x->e, &x->plan, &x->groups, &x->ngroups, errbuf, errlen);
    if (rc)
        return rc;
    x->planned = true;
    return 0;
}

static void render_id(char *buf, size_t cap, const char *job, size_t montage)
{
    snprintf(buf, cap, "%s_%zu", job, montage);
}

static void render_job(jx_t *x, const job_group_t *g, render_job_t *rj, char *rid, char *work,
                       char *out, size_t cap)
{
    const char *mid = x->plan.steps[g->montage].id;
    render_id(rid, 80, x->id, g->montage);
    snprintf(work, cap, "%s/%s/%s", x->e->work_dir, x->id, mid);
    snprintf(out, cap, "%s/jobs/%s/%s", x->e->objects_dir, x->id, mid);
    static __thread char notify[ENVELOPE_ADDR_MAX + 1];
    snprintf(notify, sizeof notify, "job/%s", x->id);
    *rj = (render_job_t){.id = rid, .work_dir = work, .out_dir = out, .notify = notify};
}

/* The group containing plan step i, or NULL. */
static const job_group_t *group_of(jx_t *x, size_t i)
{
    for (size_t g = 0; g < x->ngroups; g++)
        for (size_t k = 0; k < x->groups[g].n; k++)
            if (x->groups[g].members[k] == i)
                return &x->groups[g];
    return NULL;
}

static bool node_is(jx_t *x, const char *id, const char *s)
{
    const char *v = sget(node(x, id), "status");
    return v && strcmp(v, s) == 0;
}

static void node_set(jx_t *x, const char *id, const char *s)
{
    json_t *n = node(x, id);
    json_object_set_new(n, "status", json_string(s));
    if (strcmp(s, "running") == 0) {
        json_object_set_new(n, "started_ms", json_integer(now_ms()));
        json_object_del(n, "finished_ms");
        json_object_del(n, "error");
    } else if (strcmp(s, "pending") != 0) {
        json_object_set_new(n, "finished_ms", json_integer(now_ms()));
    }
}

/* ---- starting what is ready ------------------------------------------------------ */

static int start_node(jx_t *x, size_t i)
{
    const workflow_step_t *s = &x->plan.steps[i];
    json_t *n = node(x, s->id);
    json_int_t attempt = json_integer_value(json_object_get(n, "attempt")) + 1;
    json_object_set_new(n, "attempt", json_integer(attempt));
    node_set(x, s->id, "running");
    json_t *inputs = json_object();
    for (size_t k = 0; k < s->ninputs; k++) {
        const workflow_step_t *from = &x->plan.steps[s->inputs[k].from];
        json_t *v =
            json_object_get(json_object_get(node(x, from->id), "outputs"), s->inputs[k].from_port);
        if (v)
            json_object_set(inputs, s->inputs[k].port, v);
    }
    json_t *body =
        json_pack("{ss ss ss ss sO so sI}", "job", x->id, "org", sget(x->st, "org"), "node", s->id,
                  "type", s->type, "params", s->params, "inputs", inputs, "attempt", attempt);
    char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    char addr[ENVELOPE_ADDR_MAX + 1];
    const char *disp =
        s->dispatcher && strcmp(s->dispatcher, "default") != 0 ? s->dispatcher : NULL;
    snprintf(addr, sizeof addr, "%s%s%s/%s:%zu:%lld", NODE_KIND, disp ? "." : "", disp ? disp : "",
             x->id, i, (long long)attempt);
    int rc = b ? actor_spawn(x->ctx, addr, NULL, NULL, 0) : FENTA_ENOMEM;
    if (rc == 0)
        rc = actor_send(x->ctx, addr, "node.run", b, strlen(b));
    free(b);
    event(x, "node.started",
          json_pack("{ss ss sI}", "node", s->id, "type", s->type, "attempt", attempt));
    return rc;
}

static bool deps_done(jx_t *x, size_t i)
{
    const workflow_step_t *s = &x->plan.steps[i];
    for (size_t d = 0; d < s->ndeps; d++)
        if (!node_is(x, x->plan.steps[s->deps[d]].id, "succeeded"))
            return false;
    return true;
}

/* A render can start when every step feeding it from outside is done. */
static bool group_ready(jx_t *x, const job_group_t *g)
{
    for (size_t k = 0; k < g->n; k++) {
        const workflow_step_t *s = &x->plan.steps[g->members[k]];
        for (size_t d = 0; d < s->ndeps; d++) {
            const job_group_t *dg = group_of(x, s->deps[d]);
            if (dg != g && !node_is(x, x->plan.steps[s->deps[d]].id, "succeeded"))
                return false;
        }
    }
    return true;
}

static json_t *error_obj(const char *code, const char *message, const char *node, const char *stage)
{
    json_t *e = json_pack("{ss ss}", "code", code, "message", message);
    if (node)
        json_object_set_new(e, "node", json_string(node));
    if (stage)
        json_object_set_new(e, "stage", json_string(stage));
    return e;
}

static int fail_job(jx_t *x, json_t *error);

static int start_group(jx_t *x, const job_group_t *g)
{
    char rid[80], work[4096], out[4096], err[1024] = "";
    render_job_t rj;
    render_job(x, g, &rj, rid, work, out, sizeof work);
    json_t *r = json_object_get(json_object_get(x->st, "renders"), rid);
    if (!r) {
        r = json_object();
        json_object_set_new(json_object_get(x->st, "renders"), rid, r);
    }
    int rc;
    if (json_is_true(json_object_get(r, "submitted"))) {
        rc = render_retry(x->e->cfg.render, actor_runtime(x->ctx), &rj, err, sizeof err);
    } else {
        json_t *spec;
        if (strcmp(sget(x->st, "kind"), "render") == 0) {
            spec = json_incref(json_object_get(x->st, "spec"));
        } else {
            json_t *outs = json_object();
            const char *k;
            json_t *n;
            json_object_foreach(nodes(x), k, n) if (json_object_get(n, "outputs"))
                json_object_set(outs, k, json_object_get(n, "outputs"));
            int perr = 0;
            spec = job__render_spec(x->e, db(x, &perr), sget(x->st, "org"), &x->plan, g, outs, err,
                                    sizeof err);
            json_decref(outs);
        }
        /* The spec is the organisation's: its keys are checked here, when
         * the objects are about to be read, whatever route made the job
         * (a direct render, a workflow run, a schedule). */
        int perr = 0;
        rc = spec ? job__check_spec(x->e, db(x, &perr), sget(x->st, "org"), spec, err, sizeof err)
                  : FENTA_EINVAL;
        if (rc == 0)
            rc = render_submit(x->e->cfg.render, actor_runtime(x->ctx), &rj, spec,
                               x->e->objects_dir, err, sizeof err);
        json_decref(spec);
        if (rc == FENTA_EEXIST)
            rc = 0;
    }
    const char *mid = x->plan.steps[g->montage].id;
    if (rc == FENTA_EINVAL || rc == FENTA_ENOTFOUND) {
        /* Bad input: the render cannot start; the job fails at its montage. */
        node_set(x, mid, "failed");
        json_t *e = error_obj("invalid_input", err[0] ? err : fenta_strerror(rc), mid, "ingest");
        json_object_set(node(x, mid), "error", e);
        return fail_job(x, e);
    }
    if (rc)
        return rc; /* passing: the message is retried */
    json_object_set_new(r, "submitted", json_true());
    json_object_set_new(r, "status", json_string("running"));
    json_object_set_new(r, "montage", json_string(mid));
    for (size_t k = 0; k < g->n; k++) {
        const char *id = x->plan.steps[g->members[k]].id;
        if (!node_is(x, id, "succeeded"))
            node_set(x, id, "queued");
    }
    event(x, "render.started", json_pack("{ss ss}", "render", rid, "node", mid));
    return 0;
}

/* Starts every ready node and render; settles the job when all are done. */
static int advance(jx_t *x, char *errbuf, size_t errlen)
{
    if (strcmp(status(x), "running") != 0)
        return 0;
    int rc = plan(x, errbuf, errlen);
    if (rc == FENTA_EINVAL)
        return fail_job(x, error_obj("invalid_workflow", errbuf, NULL, NULL));
    if (rc)
        return rc;
    bool all_done = true, any_failed = false;
    for (size_t i = 0; i < x->plan.n; i++) {
        const char *id = x->plan.steps[i].id;
        if (!node_is(x, id, "succeeded"))
            all_done = false;
        if (node_is(x, id, "failed"))
            any_failed = true;
    }
    if (any_failed)
        return 0; /* fail_job already settled it */
    if (all_done) {
        set_status(x, "succeeded", NULL);
        json_object_set_new(x->st, "progress", json_real(100));
        event(x, "completed", json_pack("{sO}", "artifacts", json_object_get(x->st, "artifacts")));
        return 0;
    }
    for (size_t i = 0; i < x->plan.n && rc == 0; i++) {
        const char *id = x->plan.steps[i].id;
        if (!node_is(x, id, "pending") || !deps_done(x, i) || group_of(x, i))
            continue;
        rc = start_node(x, i);
    }
    for (size_t g = 0; g < x->ngroups && rc == 0 && strcmp(status(x), "running") == 0; g++) {
        const job_group_t *grp = &x->groups[g];
        if (node_is(x, x->plan.steps[grp->montage].id, "pending") && group_ready(x, grp))
            rc = start_group(x, grp);
    }
    return rc;
}

/* Progress: each node counts 1, a render node 10; a running render node
 * counts the share of its stages done. */
static void progress(jx_t *x)
{
    if (!x->planned)
        return;
    double total = 0, done = 0;
    const char *current = NULL;
    for (size_t i = 0; i < x->plan.n; i++) {
        const workflow_step_t *s = &x->plan.steps[i];
        json_t *n = node(x, s->id);
        double w = group_of(x, i) ? 10 : 1;
        total += w;
        const char *st = sget(n, "status");
        if (strcmp(st, "succeeded") == 0) {
            done += w;
        } else if (strcmp(st, "running") == 0) {
            json_t *f = json_object_get(n, "fraction");
            done += w * (json_is_number(f) ? json_number_value(f) : 0);
            if (!current)
                current = s->id;
        }
    }
    double p = total > 0 ? floor(1000.0 * done / total) / 10 : 0;
    if (strcmp(status(x), "succeeded") == 0)
        p = 100;
    double old = json_number_value(json_object_get(x->st, "progress"));
    json_object_set_new(x->st, "progress", json_real(p));
    json_object_set_new(x->st, "current_node", current ? json_string(current) : json_null());
    /* An event per whole percent at most: a stream, not a flood. */
    if (floor(p) != floor(old) && strcmp(status(x), "running") == 0)
        event(x, "progress", json_pack("{sf ss?}", "progress", p, "node", current));
}

/* Stops the job's renders that are queued or running (the plan is made). */
static int cancel_renders(jx_t *x)
{
    int rc = 0;
    for (size_t g = 0; g < x->ngroups; g++) {
        const char *mid = x->plan.steps[x->groups[g].montage].id;
        if (node_is(x, mid, "queued") || node_is(x, mid, "running")) {
            char rid[80], work[4096], out[4096];
            render_job_t rj;
            render_job(x, &x->groups[g], &rj, rid, work, out, sizeof work);
            int c = render_cancel(x->e->cfg.render, &rj);
            rc = rc ? rc : c;
        }
    }
    return rc;
}

static int fail_job(jx_t *x, json_t *error)
{
    /* Renders still running for this job are stopped (at best: the job has
     * failed either way); nodes already done keep their outputs, so a retry
     * starts at the failed node. */
    if (x->planned)
        (void)cancel_renders(x);
    set_status(x, "failed", error);
    return 0;
}

/* ---- messages ------------------------------------------------------------------------ */

/* The job's row into the state, on the first message. */
static int load_row(jx_t *x, char *errbuf, size_t errlen)
{
    int err = 0;
    pg_conn_t *c = db(x, &err);
    if (!c)
        return fenta_fail(errbuf, errlen, err, "database: %s", fenta_strerror(err));
    const char *p[] = {x->id};
    pg_result_t *r = pg_query(c,
                              "SELECT org_id, kind, status, graph::text, attempts "
                              "FROM jobs WHERE id = $1",
                              1, p, &err);
    if (!r)
        return fenta_fail(errbuf, errlen, err, "database: %s", fenta_strerror(err));
    if (pg_nrows(r) != 1) {
        pg_result_free(&r);
        return FENTA_ENOTFOUND;
    }
    json_t *graph = json_loads(pg_get(r, 0, 3), 0, NULL);
    json_object_set_new(x->st, "org", json_string(pg_get(r, 0, 0)));
    json_object_set_new(x->st, "kind", json_string(pg_get(r, 0, 1)));
    json_object_set_new(x->st, "status", json_string(pg_get(r, 0, 2)));
    json_object_set_new(x->st, "graph", graph ? graph : json_object());
    json_object_set_new(x->st, "attempts", json_integer(atoi(pg_get(r, 0, 4))));
    json_object_set_new(x->st, "seq", json_integer(0));
    json_object_set_new(x->st, "progress", json_real(0));
    json_object_set_new(x->st, "artifacts", json_array());
    json_object_set_new(x->st, "renders", json_object());
    json_t *ns = json_object();
    if (strcmp(pg_get(r, 0, 1), "render") == 0) {
        /* A direct render is one montage: the graph column holds its spec.
         * The spec takes its own reference before "graph" is replaced, since
         * replacing it drops the state's reference (the last one when the
         * spec took none: it was read after being freed). */
        json_object_set(x->st, "spec", json_object_get(x->st, "graph"));
        json_object_set_new(
            x->st, "graph",
            json_pack("{s[{ss ss}]}", "nodes", "id", RENDER_NODE, "type", "montage"));
    }
    pg_result_free(&r);
    json_t *g = json_object_get(x->st, "graph");
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(g, "nodes"), i, n)
        json_object_set_new(ns, sget(n, "id"),
                            json_pack("{ss ss sI}", "type", sget(n, "type"), "status", "pending",
                                      "attempt", (json_int_t)0));
    json_object_set_new(x->st, "nodes", ns);
    return 0;
}

/* Takes a running slot: at most the cap of the organisation's jobs run, and
 * while slots are scarce queued jobs go in order of priority, then age, then
 * id (a strict order: two jobs created in the same instant must not each wait
 * for the other). A job is admitted when the free slots outnumber the queued
 * jobs ahead of it, so plenty of room admits at once, in any order, and a
 * full organisation admits strictly in turn. One transaction under the
 * organisation's advisory lock, so two jobs never take the last slot.
 * FENTA_ELIMIT when there is no slot for it now. */
static int admit_tx(pg_conn_t *c, void *arg)
{
    jx_t *x = arg;
    char cap[16];
    snprintf(cap, sizeof cap, "%d",
             x->e->cfg.max_running_per_org > 0 ? x->e->cfg.max_running_per_org : 4);
    const char *p[] = {x->id, sget(x->st, "org"), cap};
    int err = 0;
    if (pg_exec(c, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, (const char *[]){p[1]}) < 0)
        return FENTA_EUNAVAILABLE;
    pg_result_t *r = pg_query(
        c,
        "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, now()), "
        "updated_at = now() WHERE id = $1 AND status = 'queued' AND "
        "COALESCE((SELECT max_running_jobs FROM orgs WHERE id = $2), $3::int) - "
        "(SELECT count(*) FROM jobs WHERE org_id = $2 AND status = 'running') > "
        "(SELECT count(*) FROM jobs q, jobs me WHERE me.id = $1 AND q.org_id = $2 AND "
        "q.status = 'queued' AND (q.priority_rank, q.created_at, q.id) < (me.priority_rank, "
        "me.created_at, me.id)) RETURNING 1",
        3, p, &err);
    if (!r)
        return err;
    int n = pg_nrows(r);
    pg_result_free(&r);
    return n == 1 ? 0 : FENTA_ELIMIT;
}

static int admit(jx_t *x)
{
    if (strcmp(status(x), "queued") != 0)
        return 0;
    int rc = pg_tx(x->e->cfg.pool, admit_tx, x);
    if (rc == FENTA_ELIMIT) {
        /* Full: try again later (a finishing job also wakes us). */
        json_int_t tries = json_integer_value(json_object_get(x->st, "admit_tries"));
        json_object_set_new(x->st, "admit_tries", json_integer(tries + 1));
        int64_t delay = 250LL << (tries < 4 ? tries : 4);
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "job/%s", x->id);
        return actor_send_after(x->ctx, to, "job.admit", NULL, 0, delay);
    }
    if (rc)
        return rc;
    json_object_set_new(x->st, "admit_tries", json_integer(0));
    json_object_set_new(x->st, "started_ms", json_integer(now_ms()));
    set_status(x, "running", NULL);
    return 0;
}

static int on_node_reply(jx_t *x, const json_t *b, bool ok)
{
    const char *id = sget(b, "node");
    json_t *n = node(x, id);
    if (!n ||
        json_integer_value(json_object_get(b, "attempt")) !=
            json_integer_value(json_object_get(n, "attempt")) ||
        !node_is(x, id, "running"))
        return 0; /* a reply from an attempt that no longer counts */
    double secs = json_number_value(json_object_get(b, "seconds"));
    json_object_set_new(n, "seconds", json_real(secs));
    if (ok) {
        json_object_set(n, "outputs", json_object_get(b, "outputs"));
        node_set(x, id, "succeeded");
        event(x, "node.finished",
              json_pack("{ss ss sf}", "node", id, "status", "succeeded", "seconds", secs));
        return 0;
    }
    json_t *e = error_obj(sget(b, "code") ? sget(b, "code") : "failed", sget(b, "error"), id, NULL);
    json_object_set(n, "error", e);
    node_set(x, id, "failed");
    event(x, "node.finished",
          json_pack("{ss ss sf sO}", "node", id, "status", "failed", "seconds", secs, "error", e));
    if (strcmp(status(x), "running") == 0)
        return fail_job(x, e);
    json_decref(e);
    return 0;
}

/* The member of the render that owns stage; the montage when none claims it. */
static const char *stage_node(jx_t *x, const job_group_t *g, const char *stage)
{
    for (size_t k = 0; k < g->n; k++) {
        const workflow_step_t *s = &x->plan.steps[g->members[k]];
        const json_t *st = job__type_stages(x->e, s->type);
        size_t i;
        json_t *v;
        json_array_foreach(st, i, v) if (strcmp(json_string_value(v), stage) == 0) return s->id;
    }
    return x->plan.steps[g->montage].id;
}

/* Of a node's render stages: how many finished, and their seconds. */
static size_t stages_done(const json_t *stages)
{
    size_t fin = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)stages, k, v) fin += strcmp(sget(v, "status"), "succeeded") == 0;
    return fin;
}

static double stages_seconds(const json_t *stages)
{
    double total = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)stages, k, v) total +=
        json_number_value(json_object_get(v, "seconds"));
    return total;
}

static const job_group_t *group_by_render(jx_t *x, const char *rid)
{
    const char *us = rid ? strrchr(rid, '_') : NULL;
    if (!us)
        return NULL;
    size_t m = strtoul(us + 1, NULL, 10);
    for (size_t g = 0; g < x->ngroups; g++)
        if (x->groups[g].montage == m)
            return &x->groups[g];
    return NULL;
}

static void artifacts(jx_t *x, const job_group_t *g)
{
    static const struct {
        const char *name, *type;
    } FILES[] = {{"video.mp4", "video/mp4"},
                 {"captions.srt", "application/x-subrip"},
                 {"thumbnail.jpg", "image/jpeg"},
                 {"render.json", "application/json"}};
    const char *mid = x->plan.steps[g->montage].id;
    json_t *list = json_object_get(x->st, "artifacts");
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        char key[1024], path[4096];
        snprintf(key, sizeof key, "jobs/%s/%s/%s", x->id, mid, FILES[i].name);
        snprintf(path, sizeof path, "%s/%s", x->e->objects_dir, key);
        struct stat sb;
        if (stat(path, &sb) != 0)
            continue;
        json_array_append_new(list, json_pack("{ss ss ss ss sI}", "name", FILES[i].name, "node",
                                              mid, "key", key, "content_type", FILES[i].type,
                                              "bytes", (json_int_t)sb.st_size));
    }
}

static int on_render(jx_t *x, const char *type, const json_t *b, char *errbuf, size_t errlen)
{
    int rc = plan(x, errbuf, errlen);
    if (rc)
        return rc == FENTA_EINVAL ? 0 : rc;
    const char *rid = sget(b, "id") ? sget(b, "id") : sget(b, "render");
    const job_group_t *g = group_by_render(x, rid);
    if (!g)
        return 0;
    json_t *r = json_object_get(json_object_get(x->st, "renders"), rid);
    if (strcmp(type, "render.event") == 0) {
        const char *stage = sget(b, "stage"), *kind = sget(b, "kind");
        const char *nid = stage_node(x, g, stage);
        json_t *n = node(x, nid);
        if (!n || !stage || (!node_is(x, nid, "queued") && !node_is(x, nid, "running")))
            return 0;
        json_t *stages = json_object_get(n, "stages");
        if (!stages)
            json_object_set_new(n, "stages", stages = json_object());
        /* The stages this node answers for: its own, and for the montage
         * every stage no other node of the render claims. */
        size_t nst = 0;
        for (int si = 0; si < RENDER_NSTAGES; si++)
            nst += strcmp(stage_node(x, g, render_stage_name(si)), nid) == 0;
        nst = nst ? nst : 1;
        if (strcmp(kind, "started") == 0) {
            if (node_is(x, nid, "queued"))
                node_set(x, nid, "running");
            json_object_set_new(stages, stage, json_pack("{ss}", "status", "running"));
            event(x, "stage.started", json_pack("{ss ss}", "node", nid, "stage", stage));
        } else if (strcmp(kind, "progress") == 0) {
            json_object_set_new(n, "fraction",
                                json_real((stages_done(stages) +
                                           json_number_value(json_object_get(b, "fraction"))) /
                                          (double)nst));
        } else if (strcmp(kind, "finished") == 0) {
            if (node_is(x, nid, "queued"))
                node_set(x, nid, "running");
            double secs = json_number_value(json_object_get(b, "seconds"));
            json_object_set_new(stages, stage,
                                json_pack("{ss sf sb}", "status", "succeeded", "seconds", secs,
                                          "skipped", json_is_true(json_object_get(b, "skipped"))));
            event(x, "stage.finished",
                  json_pack("{ss ss sf}", "node", nid, "stage", stage, "seconds", secs));
            size_t fin = stages_done(stages);
            json_object_set_new(n, "fraction", json_real(fin / (double)nst));
            if (fin >= nst && strcmp(nid, x->plan.steps[g->montage].id) != 0) {
                double total = stages_seconds(stages);
                json_object_set_new(n, "seconds", json_real(total));
                node_set(x, nid, "succeeded");
                event(
                    x, "node.finished",
                    json_pack("{ss ss sf}", "node", nid, "status", "succeeded", "seconds", total));
            }
        }
        return 0;
    }
    if (r)
        json_object_set_new(
            r, "status",
            json_string(strcmp(type, "render.succeeded") == 0 ? "succeeded" : "failed"));
    if (strcmp(type, "render.succeeded") == 0) {
        for (size_t k = 0; k < g->n; k++) {
            const char *id = x->plan.steps[g->members[k]].id;
            if (node_is(x, id, "succeeded"))
                continue;
            json_t *n = node(x, id);
            double total = stages_seconds(json_object_get(n, "stages"));
            json_object_set_new(n, "seconds", json_real(total));
            json_object_set_new(n, "outputs", json_pack("{ss}", "render", rid));
            node_set(x, id, "succeeded");
            event(x, "node.finished",
                  json_pack("{ss ss sf}", "node", id, "status", "succeeded", "seconds", total));
        }
        artifacts(x, g);
        return 0;
    }
    /* render.failed: the node owning the stage failed, with the render's
     * reason; the others of the render stop where they are. */
    const char *stage = sget(b, "stage"), *code = sget(b, "code");
    bool cancelled = code && strcmp(code, "cancelled") == 0;
    const char *nid = stage_node(x, g, stage ? stage : "edit");
    for (size_t k = 0; k < g->n; k++) {
        const char *id = x->plan.steps[g->members[k]].id;
        if (!node_is(x, id, "succeeded"))
            node_set(x, id, cancelled ? "cancelled" : strcmp(id, nid) == 0 ? "failed" : "pending");
    }
    if (cancelled)
        return 0;
    json_t *e = error_obj(code ? code : "render_failed",
                          sget(b, "error") ? sget(b, "error") : "render failed", nid, stage);
    json_object_set(node(x, nid), "error", e);
    event(x, "node.finished", json_pack("{ss ss sO}", "node", nid, "status", "failed", "error", e));
    if (strcmp(status(x), "running") == 0)
        return fail_job(x, e);
    json_decref(e);
    return 0;
}

static int on_cancel(jx_t *x, char *errbuf, size_t errlen)
{
    const char *s = status(x);
    if (strcmp(s, "queued") != 0 && strcmp(s, "running") != 0)
        return 0;
    if (plan(x, errbuf, errlen) == 0) {
        int rc = cancel_renders(x);
        if (rc)
            return rc;
    }
    const char *k;
    json_t *n;
    json_object_foreach(nodes(x), k, n) if (!node_is(x, k, "succeeded"))
        node_set(x, k, "cancelled");
    set_status(x, "cancelled", NULL);
    return 0;
}

static int on_retry(jx_t *x)
{
    const char *s = status(x);
    if (strcmp(s, "failed") != 0 && strcmp(s, "cancelled") != 0)
        return 0;
    const char *k;
    json_t *n;
    json_object_foreach(nodes(x), k, n) if (!node_is(x, k, "succeeded")) node_set(x, k, "pending");
    json_object_set_new(x->st, "attempts",
                        json_integer(json_integer_value(json_object_get(x->st, "attempts")) + 1));
    json_object_del(x->st, "error");
    json_object_del(x->st, "finished_ms");
    set_status(x, "queued", NULL);
    return admit(x);
}

/* ---- the row ------------------------------------------------------------------- */

/* The nodes as the API shows them (timestamps as RFC 3339). */
static json_t *nodes_doc(jx_t *x)
{
    json_t *out = json_object();
    const char *k;
    json_t *n;
    json_object_foreach(nodes(x), k, n)
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

/* Writes the job's row and its new events in one statement (atomic on its
 * own: one round trip where BEGIN, two statements and COMMIT took four).
 * Events already there (a replayed message) are skipped by their seq. */
static int write_row(jx_t *x)
{
    int rc = 0;
    pg_conn_t *c = db(x, &rc);
    if (!c)
        return rc;
    char prog[32], attempts[16];
    snprintf(prog, sizeof prog, "%.1f", json_number_value(json_object_get(x->st, "progress")));
    snprintf(attempts, sizeof attempts, "%lld",
             (long long)json_integer_value(json_object_get(x->st, "attempts")));
    json_t *nd = nodes_doc(x);
    char *ns = json_dumps(nd, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(nd);
    char *arts =
        json_dumps(json_object_get(x->st, "artifacts"), JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_t *err = json_object_get(x->st, "error");
    char *es = err ? json_dumps(err, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    char *ev = json_dumps(x->events, JSON_COMPACT | JSON_REAL_PRECISION(15));
    const char *p[] = {x->id, status(x), prog,     sget(x->st, "current_node"), ns,
                       arts,  es,        attempts, sget(x->st, "org"),          ev};
    rc = ns && arts && ev ? 0 : FENTA_ENOMEM;
    if (rc == 0) {
        int n = pg_exec(
            c,
            "WITH u AS (UPDATE jobs SET status = $2, progress = $3::real, current_node = $4, "
            "nodes = $5::jsonb, artifacts = $6::jsonb, error = $7::jsonb, attempts = $8::int, "
            "started_at = CASE WHEN $2 = 'running' THEN COALESCE(started_at, now()) ELSE "
            "started_at END, finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') "
            "THEN COALESCE(finished_at, now()) ELSE NULL END, updated_at = now() WHERE id = $1 "
            "RETURNING 1), e AS (INSERT INTO job_events (job_id, org_id, seq, type, data) SELECT "
            "$1, $9, v.seq, v.type, v.data FROM jsonb_to_recordset($10::jsonb) AS v(seq int, "
            "type text, data jsonb) ON CONFLICT (job_id, seq) DO NOTHING RETURNING 1) SELECT "
            "(SELECT count(*) FROM u), (SELECT count(*) FROM e)",
            10, p);
        rc = n < 0 ? n : 0;
    }
    free(ns);
    free(arts);
    free(es);
    free(ev);
    return rc;
}

/* After a job settles: the next queued jobs of its organisation are told to
 * try for the slot now rather than at their next timer. */
static void wake_queued(jx_t *x)
{
    int err = 0;
    pg_conn_t *c = db(x, &err);
    if (!c)
        return;
    /* Never ourselves: a job refused for an earlier one would spin. */
    const char *p[] = {sget(x->st, "org"), x->id};
    pg_result_t *r = pg_query(c,
                              "SELECT id FROM jobs WHERE org_id = $1 AND status = 'queued' "
                              "AND id <> $2 ORDER BY priority_rank, created_at, id LIMIT 2",
                              2, p, &err);
    for (int i = 0; r && i < pg_nrows(r); i++) {
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "job/%s", pg_get(r, i, 0));
        /* A queued row whose actor is not spawned yet (the API commits the
         * row, then spawns) gets its own job.start after the spawn; a nudge
         * now would only be a dead letter. */
        if (actor_exists(x->ctx, to))
            actor_send(x->ctx, to, "job.admit", NULL, 0);
    }
    pg_result_free(&r);
}

/* When each of this message's events was stored, ms since the epoch, into
 * at (indexed as x->events): the job_events rows' created_at. write_row has
 * committed them, and a replayed message finds the rows its first run wrote
 * (ON CONFLICT kept them), so the times are the same on every run. */
static int stored_times(jx_t *x, int64_t *at)
{
    size_t n = json_array_size(x->events);
    int rc = 0;
    pg_conn_t *c = db(x, &rc);
    if (!c)
        return rc;
    char lo[24], hi[24];
    snprintf(lo, sizeof lo, "%lld",
             (long long)json_integer_value(json_object_get(json_array_get(x->events, 0), "seq")));
    snprintf(
        hi, sizeof hi, "%lld",
        (long long)json_integer_value(json_object_get(json_array_get(x->events, n - 1), "seq")));
    const char *p[] = {x->id, lo, hi};
    pg_result_t *r = pg_query(c,
                              "SELECT seq, floor(extract(epoch FROM created_at) * 1000)::bigint "
                              "FROM job_events WHERE job_id = $1 AND seq BETWEEN $2::int AND "
                              "$3::int",
                              3, p, &rc);
    if (!r)
        return rc;
    for (size_t i = 0; i < n; i++) {
        long long seq =
            (long long)json_integer_value(json_object_get(json_array_get(x->events, i), "seq"));
        at[i] = 0;
        for (int k = 0; k < pg_nrows(r) && !at[i]; k++)
            if (atoll(pg_get(r, k, 0)) == seq)
                at[i] = atoll(pg_get(r, k, 1));
        if (!at[i])
            rc = FENTA_ENOTFOUND; /* written just before: retry rather than invent a time */
    }
    pg_result_free(&r);
    return rc;
}

/* The webhook events among the job's new ones, with the ack: job.started,
 * job.progress and the final job.succeeded / job.failed / job.cancelled.
 * The event id comes from the job and the event's seq, and its time from
 * the event's stored row, so a replayed message (after a crash lost its
 * ack, maybe after a delivery already went out) emits the same ids with
 * the same bodies: a consumer deduplicating by webhook-id never has to
 * pick between two payloads. */
static int emit_webhooks(jx_t *x)
{
    size_t i;
    json_t *ev;
    int64_t *at = NULL;
    int rc = 0;
    json_array_foreach(x->events, i, ev)
    {
        const char *type = sget(ev, "type");
        const json_t *d = json_object_get(ev, "data");
        char wtype[32] = "";
        if (strcmp(type, "status") == 0) {
            const char *s = sget(d, "status");
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
             !x->e->cfg.webhooks_wanted(x->e->cfg.webhooks_arg, sget(x->st, "org"), wtype)))
            continue;
        /* read once, and only when some event is wanted */
        if (!at) {
            at = calloc(json_array_size(x->events), sizeof *at);
            rc = at ? stored_times(x, at) : FENTA_ENOMEM;
            if (rc)
                break;
        }
        json_t *data = json_pack("{ss ss sO sO* sO*}", "job_id", x->id, "status", status(x),
                                 "progress", json_object_get(x->st, "progress"), "current_node",
                                 json_object_get(x->st, "current_node"), "error",
                                 json_object_get(x->st, "error"));
        if (data && strcmp(wtype, "job.succeeded") == 0)
            json_object_set(data, "artifacts", json_object_get(x->st, "artifacts"));
        char eid[96];
        snprintf(eid, sizeof eid, "evt_job_%s_%lld", x->id,
                 (long long)json_integer_value(json_object_get(ev, "seq")));
        rc = data ? webhooks_emit(x->ctx, sget(x->st, "org"), eid, wtype, data, at[i])
                  : FENTA_ENOMEM;
        json_decref(data);
        if (rc)
            break;
    }
    free(at);
    return rc;
}

static int job_message(actor_ctx_t *ctx, const envelope_t *msg)
{
    job_engine_t *e = actor_kind_user(ctx);
    const char *self = actor_self(ctx);
    jx_t x = {.e = e, .ctx = ctx, .id = strchr(self, '/') + 1, .events = json_array()};
    size_t len = 0;
    const char *st = actor_state(ctx, &len);
    x.st = st && len ? json_loadb(st, len, 0, NULL) : NULL;
    char err[1024] = "";
    int rc = 0;
    if (!x.st) {
        x.st = json_object();
        rc = load_row(&x, err, sizeof err);
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
            rc = admit(&x);
        else if (strcmp(type, "node.done") == 0)
            rc = on_node_reply(&x, b, true);
        else if (strcmp(type, "node.failed") == 0)
            rc = on_node_reply(&x, b, false);
        else if (strncmp(type, "render.", 7) == 0)
            rc = on_render(&x, type, b, err, sizeof err);
        else if (strcmp(type, "job.cancel") == 0)
            rc = on_cancel(&x, err, sizeof err);
        else if (strcmp(type, "job.retry") == 0)
            rc = on_retry(&x);
    }
    if (rc == 0)
        rc = advance(&x, err, sizeof err);
    char *s = NULL;
    if (rc == 0) {
        progress(&x);
        s = json_dumps(x.st, JSON_COMPACT);
        rc = s ? 0 : FENTA_ENOMEM;
    }
    /* A message that changed nothing (a nudge to a job already admitted, a
     * duplicate reply) writes nothing: no row, no state. */
    bool same =
        s && st && json_array_size(x.events) == 0 && strlen(s) == len && memcmp(s, st, len) == 0;
    if (rc == 0 && !same) {
        rc = write_row(&x);
        if (rc)
            snprintf(err, sizeof err, "cannot record the job: %s", fenta_strerror(rc));
    }
    if (rc == 0 && !same && e->cfg.webhooks)
        rc = emit_webhooks(&x);
    if (rc == 0 && x.wake_queue)
        wake_queued(&x);
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
    const char *job = sget(b, "job");
    if (!b || !job)
        return actor_fail(ctx, "malformed node message");
    job_node_args_t a = {.e = e,
                         .job_id = job,
                         .org_id = sget(b, "org"),
                         .node_id = sget(b, "node"),
                         .type = sget(b, "type"),
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
        .kind = NODE_KIND, .on_message = node_message, .retry = NODE_RETRY, .user = e};
    e->beh[2] = (behaviour_t){.kind = NODE_KIND ".io",
                              .dispatcher = "io",
                              .on_message = node_message,
                              .retry = NODE_RETRY,
                              .user = e};
    e->beh[3] = (behaviour_t){.kind = NODE_KIND ".render",
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
    pg_result_t *r = pg_query(
        c, "SELECT id, status FROM jobs WHERE status IN ('queued', 'running')", 0, NULL, &err);
    pg_release(e->cfg.pool, &c);
    if (!r)
        return err;
    int rc = 0;
    for (int i = 0; i < pg_nrows(r) && rc == 0; i++) {
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "job/%s", pg_get(r, i, 0));
        int s = runtime_spawn(rt, to, NULL, NULL, 0);
        /* A new actor, or a queued job whose start may never have been
         * sent: job.start is a no-op for a job past it. */
        if (s == 0 || strcmp(pg_get(r, i, 1), "queued") == 0) {
            rc = send_to(rt, pg_get(r, i, 0), "job.start");
            if (rc == 0 && started && s == 0)
                (*started)++;
        } else if (s != FENTA_EEXIST) {
            rc = s;
        }
    }
    pg_result_free(&r);
    return rc;
}
