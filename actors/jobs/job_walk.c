/* job_walk.c - the walk over a job's plan, one message at a time: admission
 * under the organisation's cap, starting every node and render whose
 * inputs are done, their replies and render events, progress, failure,
 * cancel and retry. Everything here changes the job's state (job_msg_t,
 * job_internal.h) and queues its events; job.c dispatches the messages and
 * job_row.c writes what they changed. */
#include "actors/jobs/job_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "storage/jobs_db.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int64_t now_ms(void)
{
    return clock_now_ms();
}

static json_t *node(job_msg_t *x, const char *id)
{
    return json_object_get(job__nodes(x), id);
}

static void event(job_msg_t *x, const char *type, json_t *data)
{
    json_int_t seq = json_integer_value(json_object_get(x->st, "seq")) + 1;
    json_object_set_new(x->st, "seq", json_integer(seq));
    json_object_set_new(data, "job_id", json_string(x->id));
    json_array_append_new(x->events,
                          json_pack("{sI ss so}", "seq", seq, "type", type, "data", data));
}

static void set_status(job_msg_t *x, const char *s, json_t *error)
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

static int plan(job_msg_t *x, char *errbuf, size_t errlen)
{
    if (x->planned)
        return 0;
    if (strcmp(job__str(x->st, "kind"), "render") == 0) {
        /* A direct render: one montage step whose spec is given whole. */
        x->plan.steps = calloc(1, sizeof *x->plan.steps);
        if (!x->plan.steps)
            return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        x->plan.n = 1;
        workflow_step_t *s = &x->plan.steps[0];
        s->id = strdup(JOB_RENDER_NODE);
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

static void render_job(job_msg_t *x, const job_group_t *g, render_job_t *rj, char *rid, char *work,
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
static const job_group_t *group_of(job_msg_t *x, size_t i)
{
    for (size_t g = 0; g < x->ngroups; g++)
        for (size_t k = 0; k < x->groups[g].n; k++)
            if (x->groups[g].members[k] == i)
                return &x->groups[g];
    return NULL;
}

static bool node_is(job_msg_t *x, const char *id, const char *s)
{
    const char *v = job__str(node(x, id), "status");
    return v && strcmp(v, s) == 0;
}

static void node_set(job_msg_t *x, const char *id, const char *s)
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

static int start_node(job_msg_t *x, size_t i)
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
    json_t *body = json_pack("{ss ss ss ss sO so sI}", "job", x->id, "org", job__str(x->st, "org"),
                             "node", s->id, "type", s->type, "params", s->params, "inputs", inputs,
                             "attempt", attempt);
    char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    char addr[ENVELOPE_ADDR_MAX + 1];
    const char *disp =
        s->dispatcher && strcmp(s->dispatcher, "default") != 0 ? s->dispatcher : NULL;
    snprintf(addr, sizeof addr, "%s%s%s/%s:%zu:%lld", JOB_NODE_KIND, disp ? "." : "",
             disp ? disp : "", x->id, i, (long long)attempt);
    int rc = b ? actor_spawn(x->ctx, addr, NULL, NULL, 0) : FENTA_ENOMEM;
    if (rc == 0)
        rc = actor_send(x->ctx, addr, "node.run", b, strlen(b));
    free(b);
    event(x, "node.started",
          json_pack("{ss ss sI}", "node", s->id, "type", s->type, "attempt", attempt));
    return rc;
}

static bool deps_done(job_msg_t *x, size_t i)
{
    const workflow_step_t *s = &x->plan.steps[i];
    for (size_t d = 0; d < s->ndeps; d++)
        if (!node_is(x, x->plan.steps[s->deps[d]].id, "succeeded"))
            return false;
    return true;
}

/* A render can start when every step feeding it from outside is done. */
static bool group_ready(job_msg_t *x, const job_group_t *g)
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

static int fail_job(job_msg_t *x, json_t *error);

static int start_group(job_msg_t *x, const job_group_t *g)
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
        if (strcmp(job__str(x->st, "kind"), "render") == 0) {
            spec = json_incref(json_object_get(x->st, "spec"));
        } else {
            json_t *outs = json_object();
            const char *k;
            json_t *n;
            json_object_foreach(job__nodes(x), k, n) if (json_object_get(n, "outputs"))
                json_object_set(outs, k, json_object_get(n, "outputs"));
            int perr = 0;
            spec = job__render_spec(x->e, job__db(x, &perr), job__str(x->st, "org"), &x->plan, g,
                                    outs, err, sizeof err);
            json_decref(outs);
        }
        /* The spec is the organisation's: its keys are checked here, when
         * the objects are about to be read, whatever route made the job
         * (a direct render, a workflow run, a schedule). */
        int perr = 0;
        rc = spec ? job__check_spec(x->e, job__db(x, &perr), job__str(x->st, "org"), spec, err,
                                    sizeof err)
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
int job__advance(job_msg_t *x, char *errbuf, size_t errlen)
{
    if (strcmp(job__status(x), "running") != 0)
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
    for (size_t g = 0; g < x->ngroups && rc == 0 && strcmp(job__status(x), "running") == 0; g++) {
        const job_group_t *grp = &x->groups[g];
        if (node_is(x, x->plan.steps[grp->montage].id, "pending") && group_ready(x, grp))
            rc = start_group(x, grp);
    }
    return rc;
}

/* Progress: each node counts 1, a render node 10; a running render node
 * counts the share of its stages done. */
void job__progress(job_msg_t *x)
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
        const char *st = job__str(n, "status");
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
    if (strcmp(job__status(x), "succeeded") == 0)
        p = 100;
    double old = json_number_value(json_object_get(x->st, "progress"));
    json_object_set_new(x->st, "progress", json_real(p));
    json_object_set_new(x->st, "current_node", current ? json_string(current) : json_null());
    /* An event per whole percent at most: a stream, not a flood. */
    if (floor(p) != floor(old) && strcmp(job__status(x), "running") == 0)
        event(x, "progress", json_pack("{sf ss?}", "progress", p, "node", current));
}

/* Stops the job's renders that are queued or running (the plan is made). */
static int cancel_renders(job_msg_t *x)
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

static int fail_job(job_msg_t *x, json_t *error)
{
    /* Renders still running for this job are stopped (at best: the job has
     * failed either way); nodes already done keep their outputs, so a retry
     * starts at the failed node. */
    if (x->planned)
        (void)cancel_renders(x);
    set_status(x, "failed", error);
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
    job_msg_t *x = arg;
    return jobs_db_admit(c, x->id, job__str(x->st, "org"),
                         x->e->cfg.max_running_per_org > 0 ? x->e->cfg.max_running_per_org : 4);
}

int job__admit(job_msg_t *x)
{
    if (strcmp(job__status(x), "queued") != 0)
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

int job__on_node_reply(job_msg_t *x, const json_t *b, bool ok)
{
    const char *id = job__str(b, "node");
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
    json_t *e = error_obj(job__str(b, "code") ? job__str(b, "code") : "failed",
                          job__str(b, "error"), id, NULL);
    json_object_set(n, "error", e);
    node_set(x, id, "failed");
    event(x, "node.finished",
          json_pack("{ss ss sf sO}", "node", id, "status", "failed", "seconds", secs, "error", e));
    if (strcmp(job__status(x), "running") == 0)
        return fail_job(x, e);
    json_decref(e);
    return 0;
}

/* The member of the render that owns stage; the montage when none claims it. */
static const char *stage_node(job_msg_t *x, const job_group_t *g, const char *stage)
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
    json_object_foreach((json_t *)stages, k, v) fin +=
        strcmp(job__str(v, "status"), "succeeded") == 0;
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

static const job_group_t *group_by_render(job_msg_t *x, const char *rid)
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

static void artifacts(job_msg_t *x, const job_group_t *g)
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

int job__on_render(job_msg_t *x, const char *type, const json_t *b, char *errbuf, size_t errlen)
{
    int rc = plan(x, errbuf, errlen);
    if (rc)
        return rc == FENTA_EINVAL ? 0 : rc;
    const char *rid = job__str(b, "id") ? job__str(b, "id") : job__str(b, "render");
    const job_group_t *g = group_by_render(x, rid);
    if (!g)
        return 0;
    json_t *r = json_object_get(json_object_get(x->st, "renders"), rid);
    if (strcmp(type, "render.event") == 0) {
        const char *stage = job__str(b, "stage"), *kind = job__str(b, "kind");
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
    const char *stage = job__str(b, "stage"), *code = job__str(b, "code");
    bool cancelled = code && strcmp(code, "cancelled") == 0;
    const char *nid = stage_node(x, g, stage ? stage : "edit");
    for (size_t k = 0; k < g->n; k++) {
        const char *id = x->plan.steps[g->members[k]].id;
        if (!node_is(x, id, "succeeded"))
            node_set(x, id, cancelled ? "cancelled" : strcmp(id, nid) == 0 ? "failed" : "pending");
    }
    if (cancelled)
        return 0;
    json_t *e =
        error_obj(code ? code : "render_failed",
                  job__str(b, "error") ? job__str(b, "error") : "render failed", nid, stage);
    json_object_set(node(x, nid), "error", e);
    event(x, "node.finished", json_pack("{ss ss sO}", "node", nid, "status", "failed", "error", e));
    if (strcmp(job__status(x), "running") == 0)
        return fail_job(x, e);
    json_decref(e);
    return 0;
}

int job__on_cancel(job_msg_t *x, char *errbuf, size_t errlen)
{
    const char *s = job__status(x);
    if (strcmp(s, "queued") != 0 && strcmp(s, "running") != 0)
        return 0;
    if (plan(x, errbuf, errlen) == 0) {
        int rc = cancel_renders(x);
        if (rc)
            return rc;
    }
    const char *k;
    json_t *n;
    json_object_foreach(job__nodes(x), k, n) if (!node_is(x, k, "succeeded"))
        node_set(x, k, "cancelled");
    set_status(x, "cancelled", NULL);
    return 0;
}

int job__on_retry(job_msg_t *x)
{
    const char *s = job__status(x);
    if (strcmp(s, "failed") != 0 && strcmp(s, "cancelled") != 0)
        return 0;
    const char *k;
    json_t *n;
    json_object_foreach(job__nodes(x), k, n) if (!node_is(x, k, "succeeded"))
        node_set(x, k, "pending");
    json_object_set_new(x->st, "attempts",
                        json_integer(json_integer_value(json_object_get(x->st, "attempts")) + 1));
    json_object_del(x->st, "error");
    json_object_del(x->st, "finished_ms");
    set_status(x, "queued", NULL);
    return job__admit(x);
}
