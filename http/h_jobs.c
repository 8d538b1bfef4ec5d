/* h_jobs.c - jobs as clients see them: direct renders, the list with its
 * filters, one job with presigned artifact URLs (their lifetime shortened
 * with ?expires_in, bound to the caller's address with ?bind_ip=true),
 * cancel and retry (both messages to the job's actor: actors/jobs/job.h). */
#include "actors/jobs/job.h"
#include "actors/render/render_spec.h"
#include "http/app_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOB_COLS                                                                                   \
    "id, org_id, kind, workflow_id, workflow_version, status, priority, progress, current_node, "  \
    "nodes::text AS nodes, artifacts::text AS artifacts, error::text AS error, credits, "          \
    "attempts, inputs::text AS inputs, " APP_TS("created_at") " AS created_at, " APP_TS(           \
        "started_at") " AS started_at, " APP_TS("finished_at") " AS finished_at, " APP_TS("update" \
                                                                                          "d_at") " AS updated_at, created_at AS raw_created"

/* The presign options of the answer this worker thread is building, for
 * job_row_json: row functions get no request (app_row_fn), and a list's
 * rows are made inside app__list_page. Set only around the GET handlers'
 * answers, on their own thread; NULL = the application's defaults. */
static _Thread_local const app_presign_t *tl_presign;

json_t *app__artifact_urls(app_t *app, json_t *artifacts, const app_presign_t *o)
{
    if (!app->objects)
        return artifacts;
    int ttl = o && o->ttl_s > 0 ? o->ttl_s : app->presign_ttl_s;
    const char *ip = o ? o->ip : NULL;
    int64_t exp = clock_now_ms() / 1000 + ttl;
    char when[32];
    time_t t = (time_t)exp;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t i;
    json_t *a;
    json_array_foreach(artifacts, i, a)
    {
        const char *key = json_string_value(json_object_get(a, "key"));
        char url[OBJECTS_URL_MAX];
        if (key &&
            objects_presign_ip(app->objects, "GET", key, exp, ip, url, sizeof url, NULL, 0) == 0) {
            json_object_set_new(a, "url", json_string(url));
            json_object_set_new(a, "expires_at", json_string(when));
            if (ip)
                json_object_set_new(a, "ip", json_string(ip));
        }
    }
    return artifacts;
}

/* ?expires_in (whole seconds, 1 up to the platform's lifetime: a client may
 * shorten its URLs, never lengthen them) and ?bind_ip (true or false: bind
 * the URLs to the address asking) into *o. False after answering 400
 * naming the parameter. o->ip is the request's string. */
static bool presign_query(http_req_t *req, app_presign_t *o)
{
    app_t *app = app__of(req);
    *o = (app_presign_t){0};
    const char *e = http_query(req, "expires_in");
    if (e) {
        long long v = 0;
        size_t n = strlen(e);
        bool ok = n >= 1 && n <= 9 && strspn(e, "0123456789") == n;
        if (ok) {
            v = strtoll(e, NULL, 10);
            ok = v >= 1 && v <= app->presign_ttl_s;
        }
        if (!ok) {
            char msg[128];
            snprintf(msg, sizeof msg, "expires_in must be whole seconds from 1 to %d",
                     app->presign_ttl_s);
            app__fail(req, "invalid_expires_in", msg,
                      json_pack("[{ss ss}]", "path", "$query.expires_in", "message", msg));
            return false;
        }
        o->ttl_s = (int)v;
    }
    const char *b = http_query(req, "bind_ip");
    if (b && strcmp(b, "true") != 0 && strcmp(b, "false") != 0) {
        app__fail(req, "invalid_bind_ip", "bind_ip must be true or false",
                  json_pack("[{ss ss}]", "path", "$query.bind_ip", "message", "true or false"));
        return false;
    }
    if (b && strcmp(b, "true") == 0) {
        const char *ip = http_client_ip(req);
        if (!ip || strcmp(ip, "-") == 0) {
            app__fail(
                req, "invalid_bind_ip",
                "the client's address is unknown: bind_ip cannot be honoured",
                json_pack("[{ss ss}]", "path", "$query.bind_ip", "message", "no client address"));
            return false;
        }
        o->ip = ip;
    }
    return true;
}

static json_t *opt_json(const char *text, json_t *dflt)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (!v)
        return dflt;
    json_decref(dflt);
    return v;
}

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *job_row_json(app_t *app, const pg_result_t *r, int row)
{
    const char *wv = pg_getn(r, row, "workflow_version");
    json_t *o = json_pack(
        "{ss ss ss so so ss ss sf so so so so sf si so ss so so ss}", "id", pg_getn(r, row, "id"),
        "org_id", pg_getn(r, row, "org_id"), "kind", pg_getn(r, row, "kind"), "workflow_id",
        opt_str(pg_getn(r, row, "workflow_id")), "workflow_version",
        wv ? json_integer(atoi(wv)) : json_null(), "status", pg_getn(r, row, "status"), "priority",
        pg_getn(r, row, "priority"), "progress", atof(pg_getn(r, row, "progress")), "current_node",
        opt_str(pg_getn(r, row, "current_node")), "nodes",
        opt_json(pg_getn(r, row, "nodes"), json_object()), "artifacts",
        app__artifact_urls(app, opt_json(pg_getn(r, row, "artifacts"), json_array()), tl_presign),
        "error", opt_json(pg_getn(r, row, "error"), json_null()), "credits",
        atof(pg_getn(r, row, "credits")), "attempts", atoi(pg_getn(r, row, "attempts")), "inputs",
        opt_json(pg_getn(r, row, "inputs"), json_object()), "created_at",
        pg_getn(r, row, "created_at"), "started_at", opt_str(pg_getn(r, row, "started_at")),
        "finished_at", opt_str(pg_getn(r, row, "finished_at")), "updated_at",
        pg_getn(r, row, "updated_at"));
    return o;
}

/* Answers with the job's row as the API shows it (404 when not the caller's). */
static void reply_job(http_req_t *req, pg_conn_t *c, const char *id, int status)
{
    caller_t *cl = app__caller(req);
    const char *p[] = {id, cl->org_id};
    int err = 0;
    pg_result_t *r =
        app__is_uuid(id)
            ? pg_query(c, "SELECT " JOB_COLS " FROM jobs WHERE id = $1 AND org_id = $2", 2, p, &err)
            : NULL;
    if (!r && !err) {
        app__fail(req, "not_found", "no such job", NULL);
        return;
    }
    app__reply_row(req, c, &r, err, status, job_row_json, "no such job");
}

void app__job_started(http_req_t *req, pg_conn_t *c, const char *job_id)
{
    app_t *app = app__of(req);
    int rc = job_start(app->rt, job_id);
    if (rc) {
        /* No actor: no row either, so nothing waits for ever. */
        const char *p[] = {job_id};
        pg_exec(c, "DELETE FROM jobs WHERE id = $1", 1, p);
        http_add_header(req, "retry-after", "1");
        app__fail(req, "unavailable", "the job runtime is not accepting work; retry shortly", NULL);
        return;
    }
    http_log_field(req, "job_id", job_id);
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/jobs/%s", job_id);
    http_add_header(req, "location", loc);
    reply_job(req, c, job_id, 202);
}

bool app__sources_ok(http_req_t *req, const json_t *doc, const char *root, const char *code)
{
    json_t *problems = NULL;
    int rc = render_sources_check(doc, root, &problems);
    if (rc == 0)
        return true;
    if (rc == FENTA_ENOMEM) {
        app__fail(req, "internal", "out of memory", NULL);
        return false;
    }
    json_t *first = json_array_get(problems, 0);
    char msg[1200];
    snprintf(msg, sizeof msg, "%s: %s", json_string_value(json_object_get(first, "path")),
             json_string_value(json_object_get(first, "message")));
    app__fail(req, code, msg, problems);
    return false;
}

void h_renders_create(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    app_t *app = app__of(req);
    json_t *b = http_json_body(req, NULL);
    json_t *spec = json_object_get(b, "spec");
    /* Keys are checked against the organisation when the job runs, where a
     * missing object is found too: answering another's key here would tell
     * it exists. */
    if (!app__sources_ok(req, spec, "$.spec", "invalid_spec"))
        return;
    char err[1024] = "";
    render_spec_t parsed;
    render_spec_opts_t o = {
        .base_dir = "/nonexistent", .objects_dir = "/nonexistent", .schemas_dir = app->schemas_dir};
    if (render_spec_parse(spec, &o, &parsed, err, sizeof err) != 0) {
        app__fail(req, "invalid_spec", err, NULL);
        return;
    }
    render_spec_free(&parsed);
    if (!app->rt) {
        app__fail(req, "unavailable", "this node runs no jobs", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    const char *prio = json_string_value(json_object_get(b, "priority"));
    prio = prio ? prio : "normal";
    char *s = json_dumps(spec, JSON_COMPACT);
    const char *p[] = {cl->org_id, prio, s, cl->user_id};
    int perr = 0;
    pg_result_t *r = pg_query(c,
                              "INSERT INTO jobs (org_id, kind, priority, priority_rank, graph, "
                              "created_by) VALUES ($1, 'render', $2, CASE $2 WHEN 'high' THEN 0 "
                              "WHEN 'low' THEN 2 ELSE 1 END, $3::jsonb, $4) RETURNING id",
                              4, p, &perr);
    free(s);
    if (!r)
        app__db_error(req, perr, c);
    else
        app__job_started(req, c, pg_get(r, 0, 0));
    pg_result_free(&r);
    app__db_done(req, &c);
}

static bool valid_time(const char *s)
{
    struct tm tm;
    return s && strlen(s) >= 10 && strlen(s) < 64 &&
           (strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) || strptime(s, "%Y-%m-%d", &tm));
}

void h_jobs_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *status = http_query(req, "status"), *wf = http_query(req, "workflow_id");
    const char *after = http_query(req, "created_after"),
               *before = http_query(req, "created_before");
    static const char *const statuses[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    bool ok = !status;
    for (size_t i = 0; status && i < 5; i++)
        ok |= strcmp(status, statuses[i]) == 0;
    if (!ok || (wf && !app__is_uuid(wf)) || (after && !valid_time(after)) ||
        (before && !valid_time(before))) {
        app__fail(req, "invalid_filter",
                  "status must be queued, running, succeeded, failed or cancelled; workflow_id "
                  "a uuid; created_after and created_before RFC 3339 times",
                  NULL);
        return;
    }
    app_presign_t o;
    if (!presign_query(req, &o))
        return;
    const char *p[] = {cl->org_id, status, wf, after, before};
    tl_presign = &o;
    app__list_page(req,
                   "SELECT " JOB_COLS " FROM jobs WHERE org_id = $1 AND ($2::text IS NULL OR "
                   "status = $2) AND ($3::uuid IS NULL OR workflow_id = $3::uuid) AND "
                   "($4::timestamptz IS NULL OR created_at > $4::timestamptz) AND ($5::timestamptz "
                   "IS NULL OR created_at < $5::timestamptz) AND ($7::timestamptz IS NULL OR "
                   "(created_at, id) {cmp} ($7::timestamptz, $8::uuid)) ORDER BY created_at {dir}, "
                   "id {dir} LIMIT $6::int",
                   p, 5, job_row_json, "id");
    tl_presign = NULL;
}

void h_jobs_get(http_req_t *req)
{
    app_presign_t o;
    if (!presign_query(req, &o))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    tl_presign = &o;
    reply_job(req, c, http_param(req, "id"), 200);
    tl_presign = NULL;
    app__db_done(req, &c);
}

/* cancel and retry: the job must be in a state that allows it (409
 * otherwise); the actor does the work, the answer shows the job as it is. */
/* Checks the job may make the transition (409 if not), then tells its actor.
 * With claim, the row takes that status at once, in the statement that
 * checks (so of two concurrent requests one wins) and before the actor has
 * read its message: a client polling after a 202 retry must not see the
 * old "failed" and think the retry is already over. */
static void steer(http_req_t *req, const char *const *allowed,
                  int (*send)(runtime_t *, const char *), const char *what, const char *claim)
{
    caller_t *cl = app__caller(req);
    app_t *app = app__of(req);
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        app__fail(req, "not_found", "no such job", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    const char *p[] = {id, cl->org_id, claim ? claim : "", allowed[0], allowed[1]};
    int err = 0;
    /* The old status is the row's as locked, whether or not it was claimed. */
    pg_result_t *r = pg_query(
        c,
        "WITH old AS (SELECT status FROM jobs WHERE id = $1 AND org_id = $2 FOR UPDATE), "
        "claimed AS (UPDATE jobs SET status = $3, updated_at = now() WHERE id = $1 AND $3 <> '' "
        "AND status IN ($4, $5) RETURNING 1) SELECT old.status, (SELECT count(*) FROM claimed) "
        "FROM old",
        5, p, &err);
    if (!r) {
        app__db_error(req, err, c);
    } else if (pg_nrows(r) != 1) {
        app__fail(req, "not_found", "no such job", NULL);
    } else {
        const char *st = pg_get(r, 0, 0);
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(st, allowed[i]) == 0;
        if (!ok) {
            char msg[128];
            snprintf(msg, sizeof msg, "a %s job cannot be %s", st, what);
            app__fail(req, "invalid_state", msg, json_pack("{ss}", "status", st));
        } else if (!app->rt || send(app->rt, id) != 0) {
            if (strcmp(pg_get(r, 0, 1), "1") == 0) {
                const char *undo[] = {id, st};
                pg_exec(c, "UPDATE jobs SET status = $2 WHERE id = $1", 2, undo);
            }
            http_add_header(req, "retry-after", "1");
            app__fail(req, "unavailable", "the job runtime is not accepting work", NULL);
        } else {
            reply_job(req, c, id, 202);
        }
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

void h_jobs_cancel(http_req_t *req)
{
    static const char *const allowed[] = {"queued", "running", NULL};
    steer(req, allowed, job_cancel, "cancelled", NULL);
}

void h_jobs_retry(http_req_t *req)
{
    static const char *const allowed[] = {"failed", "cancelled", NULL};
    steer(req, allowed, job_retry, "retried", "queued");
}
