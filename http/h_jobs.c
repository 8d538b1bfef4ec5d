/* h_jobs.c - jobs as clients see them: direct renders, the list with its
 * filters, one job with presigned artifact URLs (their lifetime shortened
 * with ?expires_in, bound to the caller's address with ?bind_ip=true),
 * cancel and retry (both messages to the job's actor: actors/jobs/job.h). */
#include "actors/jobs/job.h"
#include "actors/render/render_spec.h"
#include "http/app_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "storage/jobs_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Answers with the job as the API shows it, its artifact URLs signed as o
 * says (404 when not the caller's). */
static void reply_job(http_req_t *req, pg_conn_t *c, const char *id, int status,
                      const app_presign_t *o)
{
    json_t *job = NULL;
    int rc =
        app__is_uuid(id) ? jobs_db_get(c, id, app__caller(req)->org_id, &job) : FENTA_ENOTFOUND;
    if (job)
        app__artifact_urls(app__of(req), json_object_get(job, "artifacts"), o);
    app__reply_owned(req, c, rc, status, job, "no such job");
}

void app__job_started(http_req_t *req, pg_conn_t *c, const char *job_id)
{
    app_t *app = app__of(req);
    int rc = job_start(app->rt, job_id);
    if (rc) {
        /* No actor: no row either, so nothing waits for ever. */
        (void)jobs_db_delete(c, job_id);
        http_add_header(req, "retry-after", "1");
        app__fail(req, "unavailable", "the job runtime is not accepting work; retry shortly", NULL);
        return;
    }
    http_log_field(req, "job_id", job_id);
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/jobs/%s", job_id);
    http_add_header(req, "location", loc);
    reply_job(req, c, job_id, 202, NULL);
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
    char id[37];
    int rc = jobs_db_insert_render(c, cl->org_id, json_string_value(json_object_get(b, "priority")),
                                   spec, cl->user_id, id);
    if (rc)
        app__db_error(req, rc, c);
    else
        app__job_started(req, c, id);
    app__db_done(req, &c);
}

static bool valid_time(const char *s)
{
    struct tm tm;
    return s && strlen(s) >= 10 && strlen(s) < 64 &&
           (strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) || strptime(s, "%Y-%m-%d", &tm));
}

/* A list's filters and how its URLs are signed. */
typedef struct {
    const char *org_id;
    jobs_db_filter_t f;
    const app_presign_t *presign;
} list_jobs_t;

/* app_list_fn: a page of jobs with their artifact URLs signed. */
static int list_jobs(http_req_t *req, pg_conn_t *c, void *arg, const db_page_t *page,
                     db_page_rows_t *out)
{
    const list_jobs_t *q = arg;
    int rc = jobs_db_list(c, q->org_id, &q->f, page, out);
    size_t i;
    json_t *job;
    json_array_foreach(out->rows, i, job)
        app__artifact_urls(app__of(req), json_object_get(job, "artifacts"), q->presign);
    return rc;
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
    list_jobs_t q = {.org_id = cl->org_id,
                     .f = {.status = status,
                           .workflow_id = wf,
                           .created_after = after,
                           .created_before = before},
                     .presign = &o};
    app__list(req, list_jobs, &q);
}

void h_jobs_get(http_req_t *req)
{
    app_presign_t o;
    if (!presign_query(req, &o))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    reply_job(req, c, http_param(req, "id"), 200, &o);
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
    char st[16];
    bool claimed = false;
    int rc = jobs_db_claim(c, id, cl->org_id, allowed, claim, st, &claimed);
    if (rc) {
        app__reply_owned(req, c, rc, 0, NULL, "no such job");
    } else {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(st, allowed[i]) == 0;
        if (!ok) {
            char msg[128];
            snprintf(msg, sizeof msg, "a %s job cannot be %s", st, what);
            app__fail(req, "invalid_state", msg, json_pack("{ss}", "status", st));
        } else if (!app->rt || send(app->rt, id) != 0) {
            if (claimed)
                (void)jobs_db_set_status(c, id, st);
            http_add_header(req, "retry-after", "1");
            app__fail(req, "unavailable", "the job runtime is not accepting work", NULL);
        } else {
            reply_job(req, c, id, 202, NULL);
        }
    }
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
