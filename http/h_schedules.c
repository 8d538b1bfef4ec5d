/* h_schedules.c - schedules of workflow runs: CRUD, pause and resume, and a
 * preview of the next fire times. The rows are storage/schedules_db.h's;
 * here are the checks, the statuses and the answers. Every change bumps the
 * row's generation and tells the schedule's actor
 * (actors/schedules/schedule.h), which re-arms its timer from the row. */
#include "actors/schedules/schedule.h"
#include "http/app_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "storage/schedules_db.h"
#include "storage/workflows_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The next fire time after now (Unix seconds), 0 when it never fires again. */
static int64_t next_fire(const char *cron, const char *zone)
{
    int64_t t;
    int n = 0;
    return schedule_preview(cron, zone, clock_now_ms() / 1000, 1, &t, &n) == 0 && n == 1 ? t : 0;
}

/* The definition a create or update writes into d: the body's fields as
 * they are, and the version, inputs (JSON text), cron, zone and pause the
 * caller worked out (a field the body lacks is kept on update, defaulted on
 * create). mcb holds the max_credits text d points to. */
static void def_of(const json_t *b, const char *version, const char *inputs, const char *cron,
                   const char *zone, bool paused, schedules_db_def_t *d, char mcb[32])
{
    const json_t *mc = json_object_get(b, "max_credits");
    snprintf(mcb, 32, "%.2f", json_number_value(mc));
    d->name = str(b, "name");
    d->misfire = str(b, "misfire");
    d->priority = str(b, "priority");
    d->set_version = json_object_get(b, "version") != NULL;
    d->version = version;
    d->inputs = inputs;
    d->cron = cron;
    d->timezone = zone;
    d->paused = paused;
    d->set_max_credits = mc != NULL;
    d->max_credits = json_is_number(mc) ? mcb : NULL;
    d->next_fire = paused ? 0 : next_fire(cron, zone);
}

/* Checks cron and zone; 0, or answered 400 naming the field. */
static int check_def(http_req_t *req, const char *cron, const char *zone)
{
    char field[32] = "", msg[256] = "";
    if (schedule_check(cron, zone, field, sizeof field, msg, sizeof msg) == 0)
        return 0;
    const char *sub = strncmp(field, "cron.", 5) == 0 ? field + 5 : NULL;
    app__fail(req, "invalid_schedule", msg,
              json_pack("[{ss ss* ss}]", "path", sub ? "$.cron" : "$.timezone", "field", sub,
                        "message", msg));
    return FENTA_EINVAL;
}

/* "version" of a body or a schedule: an integer, "latest" or absent; NULL
 * for the latest, else the decimal in buf (the schema refuses anything
 * else). */
static const char *version_of(const json_t *b, char *buf, size_t cap)
{
    const json_t *v = json_object_get(b, "version");
    if (!json_is_integer(v))
        return NULL;
    snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    return buf;
}

/* The workflow (and version) exist in the caller's organisation and the
 * inputs name its nodes; 0 or answered. */
static int check_workflow(http_req_t *req, pg_conn_t *c, const char *wid, const char *version,
                          const json_t *inputs)
{
    caller_t *cl = app__caller(req);
    json_t *w = NULL;
    int err =
        app__is_uuid(wid) ? workflows_db_get(c, wid, cl->org_id, version, &w) : FENTA_ENOTFOUND;
    if (err && err != FENTA_ENOTFOUND) {
        app__db_error(req, err, c);
        return err;
    }
    if (err) {
        app__fail(req, "unknown_workflow",
                  version ? "no such workflow version in this organisation"
                          : "no such workflow in this organisation",
                  json_pack("[{ss ss}]", "path", version ? "$.version" : "$.workflow_id", "message",
                            "not found"));
        return FENTA_ENOTFOUND;
    }
    json_t *graph = json_deep_copy(json_object_get(w, "graph")), *unknown = NULL;
    json_decref(w);
    int rc = graph ? workflow_apply_inputs(graph, inputs, &unknown) : 0;
    json_decref(graph);
    if (rc) {
        app__fail(req, "invalid_inputs", "inputs name nodes the workflow does not have", unknown);
        return rc;
    }
    return 0;
}

/* Tells the actor; when that fails, the change is still in the row and the
 * next start-up's recovery syncs it, but the caller hears 503. */
static bool synced(http_req_t *req, const char *id)
{
    app_t *app = app__of(req);
    if (app->rt && schedule_sync(app->rt, id) == 0)
        return true;
    http_add_header(req, "retry-after", "1");
    app__fail(req, "unavailable",
              "the schedule is saved but its timer could not be armed; retry the request", NULL);
    return false;
}

/* Answers what the owner gave back for a schedule (obj taken) after
 * telling its actor. */
static void reply_synced(http_req_t *req, pg_conn_t *c, int rc, json_t *obj, int status)
{
    if (rc == 0 && !synced(req, str(obj, "id"))) {
        json_decref(obj);
        return;
    }
    app__reply_owned(req, c, rc, status, obj, "no such schedule");
}

void h_schedules_create(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    if (!app__of(req)->rt) {
        app__fail(req, "unavailable", "this node runs no schedules", NULL);
        return;
    }
    json_t *b = http_json_body(req, NULL);
    const char *cron = str(b, "cron");
    const char *zone = str(b, "timezone");
    zone = zone ? zone : "UTC";
    if (check_def(req, cron, zone) ||
        !app__sources_ok(req, json_object_get(b, "inputs"), "$.inputs", "invalid_inputs"))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char vb[24];
    const char *version = version_of(b, vb, sizeof vb);
    const char *wid = str(b, "workflow_id");
    const json_t *inputs = json_object_get(b, "inputs");
    if (check_workflow(req, c, wid, version, inputs) == 0) {
        bool paused = json_is_true(json_object_get(b, "paused"));
        char *in = inputs ? json_dumps(inputs, JSON_COMPACT) : strdup("{}");
        schedules_db_def_t d = {
            .org_id = cl->org_id, .workflow_id = wid, .created_by = cl->user_id};
        char mcb[32];
        def_of(b, version, in, cron, zone, paused, &d, mcb);
        json_t *o = NULL;
        int rc = in ? schedules_db_create(c, &d, &o) : FENTA_ENOMEM;
        free(in);
        reply_synced(req, c, rc, o, 201);
    }
    app__db_done(req, &c);
}

void h_schedules_list(http_req_t *req)
{
    app__list_org(req, schedules_db_list);
}

/* The caller's live schedule {id}, or NULL after answering. */
static json_t *load(http_req_t *req, pg_conn_t *c)
{
    json_t *o = NULL;
    int rc = schedules_db_get(c, http_param(req, "id"), app__caller(req)->org_id, &o);
    if (rc)
        app__reply_owned(req, c, rc, 0, NULL, "no such schedule");
    return o;
}

void h_schedules_get(http_req_t *req)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *o = load(req, c);
    if (o)
        app__reply(req, 200, o);
    app__db_done(req, &c);
}

void h_schedules_update(http_req_t *req)
{
    json_t *b = http_json_body(req, NULL);
    if (!app__sources_ok(req, json_object_get(b, "inputs"), "$.inputs", "invalid_inputs"))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *cur = load(req, c);
    if (!cur) {
        app__db_done(req, &c);
        return;
    }
    /* The definition after the change, checked whole. */
    const char *cron = str(b, "cron");
    const char *zone = str(b, "timezone");
    cron = cron ? cron : str(cur, "cron");
    zone = zone ? zone : str(cur, "timezone");
    char vb[24];
    const json_t *jv = json_object_get(b, "version");
    const char *version = jv ? version_of(b, vb, sizeof vb) : version_of(cur, vb, sizeof vb);
    const json_t *inputs = json_object_get(b, "inputs");
    bool paused = json_object_get(b, "paused") ? json_is_true(json_object_get(b, "paused"))
                                               : json_is_true(json_object_get(cur, "paused"));
    if (check_def(req, cron, zone) == 0 &&
        check_workflow(req, c, str(cur, "workflow_id"), version,
                       inputs ? inputs : json_object_get(cur, "inputs")) == 0) {
        char *in = inputs ? json_dumps(inputs, JSON_COMPACT) : NULL;
        schedules_db_def_t d = {0};
        char mcb[32];
        def_of(b, version, in, cron, zone, paused, &d, mcb);
        json_t *o = NULL;
        int rc = schedules_db_update(c, str(cur, "id"), app__caller(req)->org_id, &d, &o);
        free(in);
        reply_synced(req, c, rc, o, 200);
    }
    json_decref(cur);
    app__db_done(req, &c);
}

static void set_paused(http_req_t *req, bool paused)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *cur = load(req, c);
    if (cur) {
        int64_t next = paused ? 0 : next_fire(str(cur, "cron"), str(cur, "timezone"));
        json_t *o = NULL;
        int rc =
            schedules_db_set_paused(c, str(cur, "id"), app__caller(req)->org_id, paused, next, &o);
        reply_synced(req, c, rc, o, 200);
    }
    json_decref(cur);
    app__db_done(req, &c);
}

void h_schedules_pause(http_req_t *req)
{
    set_paused(req, true);
}

void h_schedules_resume(http_req_t *req)
{
    set_paused(req, false);
}

void h_schedules_delete(http_req_t *req)
{
    const char *id = http_param(req, "id");
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int rc = schedules_db_delete(c, id, app__caller(req)->org_id);
    if (rc)
        app__reply_owned(req, c, rc, 0, NULL, "no such schedule");
    else if (synced(req, id))
        app__no_content(req);
    app__db_done(req, &c);
}

void h_schedules_preview(http_req_t *req)
{
    const char *cs = http_query(req, "count");
    int count = cs && *cs ? atoi(cs) : 5;
    if (count < 1 || count > 100) {
        app__fail(req, "invalid_count", "count must be 1-100",
                  json_pack("[{ss ss}]", "path", "count", "message", "1-100"));
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *o = load(req, c);
    if (o) {
        const char *zone = str(o, "timezone");
        int64_t times[100];
        int n = 0;
        schedule_preview(str(o, "cron"), zone, clock_now_ms() / 1000, count, times, &n);
        json_t *list = json_array();
        for (int i = 0; i < n; i++) {
            char at[40], local[48];
            time_t t = (time_t)times[i];
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
            schedule_local_time(zone, times[i], local, sizeof local);
            json_array_append_new(list, json_pack("{ss ss}", "at", at, "local", local));
        }
        app__reply(req, 200,
                   json_pack("{ss ss so}", "schedule_id", str(o, "id"), "timezone", zone,
                             "fire_times", list));
    }
    json_decref(o);
    app__db_done(req, &c);
}

void h_schedule_runs_list(http_req_t *req)
{
    /* The list's "created_at" order is the due times' (?sort=-created_at
     * gives the newest first). The schedule is looked up first, so
     * another organisation's, a deleted one and a missing one answer the
     * 404 a GET of it gives, never an empty page that says the id exists. */
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    const char *id = http_param(req, "id"), *org = app__caller(req)->org_id;
    int rc = schedules_db_get(c, id, org, NULL);
    db_page_t page;
    json_t *keep = NULL;
    if (rc) {
        app__reply_owned(req, c, rc, 0, NULL, "no such schedule");
    } else if (app__page_of(req, &page, &keep) == 0) {
        db_page_rows_t list;
        rc = schedules_db_runs_list(c, id, org, &page, &list);
        app__reply_list(req, c, rc, &page, &list);
    }
    json_decref(keep);
    app__db_done(req, &c);
}
