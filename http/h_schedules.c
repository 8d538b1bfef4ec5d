/* h_schedules.c - schedules of workflow runs: CRUD, pause and resume, and a
 * preview of the next fire times. Every change bumps the row's generation
 * and tells the schedule's actor (actors/schedules/schedule.h), which re-arms its
 * timer from the row. */
#include "actors/schedules/schedule.h"
#include "http/app_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHED_COLS                                                                                 \
    "id, name, workflow_id, workflow_version, inputs::text AS inputs, cron, timezone, misfire, "   \
    "paused, priority, max_credits, " APP_TS("next_fire_at") " AS next_fire_at, " APP_TS(          \
        "last_fired_at") " AS last_fired_at, last_job_id, last_outcome::text AS last_outcome, "    \
                         "fire_count, " APP_TS("created_at") " AS created_at, " APP_TS(            \
                             "updated_at") " AS updated_at, created_at AS raw_created"

static json_t *text_json(const char *s)
{
    json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *sched_json(app_t *app, const pg_result_t *r, int row)
{
    (void)app;
    const char *v = pg_getn(r, row, "workflow_version"), *mc = pg_getn(r, row, "max_credits");
    return json_pack(
        "{ss ss ss so so ss ss ss sb ss so so so so so si ss ss}", "id", pg_getn(r, row, "id"),
        "name", pg_getn(r, row, "name"), "workflow_id", pg_getn(r, row, "workflow_id"), "version",
        v ? json_integer(atoi(v)) : json_string("latest"), "inputs",
        text_json(pg_getn(r, row, "inputs")), "cron", pg_getn(r, row, "cron"), "timezone",
        pg_getn(r, row, "timezone"), "misfire", pg_getn(r, row, "misfire"), "paused",
        strcmp(pg_getn(r, row, "paused"), "t") == 0, "priority", pg_getn(r, row, "priority"),
        "max_credits", mc ? json_real(atof(mc)) : json_null(), "next_fire_at",
        str_or_null(pg_getn(r, row, "next_fire_at")), "last_fired_at",
        str_or_null(pg_getn(r, row, "last_fired_at")), "last_job_id",
        str_or_null(pg_getn(r, row, "last_job_id")), "last_outcome",
        text_json(pg_getn(r, row, "last_outcome")), "fire_count",
        atoi(pg_getn(r, row, "fire_count")), "created_at", pg_getn(r, row, "created_at"),
        "updated_at", pg_getn(r, row, "updated_at"));
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

/* "version": an integer, "latest" or absent; NULL for the latest, else
 * the decimal in buf (the schema refuses anything else). */
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
    int err = 0;
    const char *p[] = {wid, cl->org_id, version};
    pg_result_t *r =
        app__is_uuid(wid)
            ? pg_query(c,
                       "SELECT v.graph::text FROM workflows w JOIN workflow_versions v ON "
                       "v.workflow_id = w.id AND v.version = COALESCE($3::int, w.version) WHERE "
                       "w.id = $1 AND w.org_id = $2 AND w.deleted_at IS NULL",
                       3, p, &err)
            : NULL;
    if (!r && err) {
        app__db_error(req, err, c);
        return err;
    }
    if (!r || pg_nrows(r) != 1) {
        pg_result_free(&r);
        app__fail(req, "unknown_workflow",
                  version ? "no such workflow version in this organisation"
                          : "no such workflow in this organisation",
                  json_pack("[{ss ss}]", "path", version ? "$.version" : "$.workflow_id", "message",
                            "not found"));
        return FENTA_ENOTFOUND;
    }
    json_t *graph = json_loads(pg_get(r, 0, 0), 0, NULL), *unknown = NULL;
    pg_result_free(&r);
    int rc = graph ? workflow_apply_inputs(graph, inputs, &unknown) : 0;
    json_decref(graph);
    if (rc) {
        app__fail(req, "invalid_inputs", "inputs name nodes the workflow does not have", unknown);
        return rc;
    }
    return 0;
}

/* The next fire time after now as decimal Unix seconds (the statements
 * take it through to_timestamp), "" when it never fires again. */
static void next_fire(const char *cron, const char *zone, char *buf, size_t cap)
{
    int64_t t;
    int n = 0;
    buf[0] = 0;
    if (schedule_preview(cron, zone, clock_now_ms() / 1000, 1, &t, &n) == 0 && n == 1)
        snprintf(buf, cap, "%lld", (long long)t);
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

/* Answers the schedule row r (freed here) after telling its actor. */
static void reply_synced(http_req_t *req, pg_conn_t *c, pg_result_t **r, int err, int status)
{
    if (*r && pg_nrows(*r) == 1 && !synced(req, pg_getn(*r, 0, "id"))) {
        pg_result_free(r);
        return;
    }
    app__reply_row(req, c, r, err, status, sched_json, "no such schedule");
}

void h_schedules_create(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    if (!app__of(req)->rt) {
        app__fail(req, "unavailable", "this node runs no schedules", NULL);
        return;
    }
    json_t *b = http_json_body(req, NULL);
    const char *cron = json_string_value(json_object_get(b, "cron"));
    const char *zone = json_string_value(json_object_get(b, "timezone"));
    zone = zone ? zone : "UTC";
    if (check_def(req, cron, zone) ||
        !app__sources_ok(req, json_object_get(b, "inputs"), "$.inputs", "invalid_inputs"))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char vb[24], next[32];
    const char *version = version_of(b, vb, sizeof vb);
    const char *wid = json_string_value(json_object_get(b, "workflow_id"));
    const json_t *inputs = json_object_get(b, "inputs");
    if (check_workflow(req, c, wid, version, inputs) == 0) {
        bool paused = json_is_true(json_object_get(b, "paused"));
        next_fire(cron, zone, next, sizeof next);
        char *in = json_dumps(inputs ? inputs : json_object(), JSON_COMPACT);
        const char *name = json_string_value(json_object_get(b, "name"));
        const char *misfire = json_string_value(json_object_get(b, "misfire"));
        const char *prio = json_string_value(json_object_get(b, "priority"));
        const json_t *mc = json_object_get(b, "max_credits");
        char mcb[32];
        snprintf(mcb, sizeof mcb, "%.2f", json_number_value(mc));
        const char *p[] = {cl->org_id,
                           name ? name : "",
                           wid,
                           version,
                           in,
                           cron,
                           zone,
                           misfire ? misfire : "skip",
                           paused ? "t" : "f",
                           prio ? prio : "normal",
                           json_is_number(mc) ? mcb : NULL,
                           paused || !next[0] ? NULL : next,
                           cl->user_id};
        int err = 0;
        pg_result_t *r = pg_query(
            c,
            "INSERT INTO schedules (org_id, name, workflow_id, workflow_version, inputs, cron, "
            "timezone, misfire, paused, priority, max_credits, next_fire_at, created_by) VALUES "
            "($1, $2, $3, $4::int, $5::jsonb, $6, $7, $8, $9::boolean, $10, $11::numeric, "
            "to_timestamp($12::bigint), $13) RETURNING " SCHED_COLS,
            13, p, &err);
        free(in);
        reply_synced(req, c, &r, err, 201);
    }
    app__db_done(req, &c);
}

void h_schedules_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *p[] = {cl->org_id};
    app__list_page(req,
                   "SELECT " SCHED_COLS " FROM schedules WHERE org_id = $1 AND deleted_at IS NULL "
                   "AND ($3::timestamptz IS NULL OR (created_at, id) {cmp} ($3::timestamptz, "
                   "$4::uuid)) ORDER BY created_at {dir}, id {dir} LIMIT $2::int",
                   p, 1, sched_json, "id");
}

/* The caller's live schedule {id}, or NULL after answering. */
static pg_result_t *load(http_req_t *req, pg_conn_t *c)
{
    return app__load(req, c,
                     "SELECT " SCHED_COLS
                     " FROM schedules WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
                     "no such schedule");
}

void h_schedules_get(http_req_t *req)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    pg_result_t *r = load(req, c);
    if (r)
        app__reply(req, 200, sched_json(app__of(req), r, 0));
    pg_result_free(&r);
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
    pg_result_t *cur = load(req, c);
    if (!cur) {
        app__db_done(req, &c);
        return;
    }
    /* The definition after the change, checked whole. */
    const char *cron = json_string_value(json_object_get(b, "cron"));
    const char *zone = json_string_value(json_object_get(b, "timezone"));
    cron = cron ? cron : pg_getn(cur, 0, "cron");
    zone = zone ? zone : pg_getn(cur, 0, "timezone");
    char vb[24], next[32];
    const json_t *jv = json_object_get(b, "version");
    const char *version = jv ? version_of(b, vb, sizeof vb) : pg_getn(cur, 0, "workflow_version");
    const json_t *inputs = json_object_get(b, "inputs");
    json_t *old_inputs = text_json(pg_getn(cur, 0, "inputs"));
    bool paused = json_object_get(b, "paused") ? json_is_true(json_object_get(b, "paused"))
                                               : strcmp(pg_getn(cur, 0, "paused"), "t") == 0;
    if (check_def(req, cron, zone) == 0 &&
        check_workflow(req, c, pg_getn(cur, 0, "workflow_id"), version,
                       inputs ? inputs : old_inputs) == 0) {
        next_fire(cron, zone, next, sizeof next);
        char *in = inputs ? json_dumps(inputs, JSON_COMPACT) : NULL;
        const json_t *mc = json_object_get(b, "max_credits");
        char mcb[32];
        snprintf(mcb, sizeof mcb, "%.2f", json_number_value(mc));
        const char *p[] = {pg_getn(cur, 0, "id"),
                           json_string_value(json_object_get(b, "name")),
                           jv ? "t" : "f",
                           version,
                           in,
                           cron,
                           zone,
                           json_string_value(json_object_get(b, "misfire")),
                           paused ? "t" : "f",
                           json_string_value(json_object_get(b, "priority")),
                           mc ? "t" : "f",
                           json_is_number(mc) ? mcb : NULL,
                           paused || !next[0] ? NULL : next};
        int err = 0;
        pg_result_t *r = pg_query(
            c,
            "UPDATE schedules SET name = COALESCE($2, name), workflow_version = CASE WHEN $3 THEN "
            "$4::int ELSE workflow_version END, inputs = COALESCE($5::jsonb, inputs), cron = $6, "
            "timezone = $7, misfire = COALESCE($8, misfire), paused = $9::boolean, priority = "
            "COALESCE($10, priority), max_credits = CASE WHEN $11 THEN $12::numeric ELSE "
            "max_credits END, next_fire_at = to_timestamp($13::bigint), generation = generation "
            "+ 1, updated_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING " SCHED_COLS,
            13, p, &err);
        free(in);
        reply_synced(req, c, &r, err, 200);
    }
    json_decref(old_inputs);
    pg_result_free(&cur);
    app__db_done(req, &c);
}

static void set_paused(http_req_t *req, bool paused)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    pg_result_t *cur = load(req, c);
    if (cur) {
        char next[32];
        next_fire(pg_getn(cur, 0, "cron"), pg_getn(cur, 0, "timezone"), next, sizeof next);
        const char *p[] = {pg_getn(cur, 0, "id"), paused ? "t" : "f",
                           paused || !next[0] ? NULL : next};
        int err = 0;
        pg_result_t *r = pg_query(c,
                                  "UPDATE schedules SET paused = $2::boolean, next_fire_at = "
                                  "to_timestamp($3::bigint), generation = generation + 1, "
                                  "updated_at = now() WHERE id = $1 RETURNING " SCHED_COLS,
                                  3, p, &err);
        reply_synced(req, c, &r, err, 200);
    }
    pg_result_free(&cur);
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
    const char *p[] = {id, app__caller(req)->org_id};
    int n = app__is_uuid(id) ? pg_exec(c,
                                       "UPDATE schedules SET deleted_at = now(), next_fire_at = "
                                       "NULL, generation = generation + 1 WHERE id = $1 AND "
                                       "org_id = $2 AND deleted_at IS NULL",
                                       2, p)
                             : 0;
    if (n < 0)
        app__db_error(req, n, c);
    else if (n == 0)
        app__fail(req, "not_found", "no such schedule", NULL);
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
    pg_result_t *r = load(req, c);
    if (r) {
        const char *zone = pg_getn(r, 0, "timezone");
        int64_t times[100];
        int n = 0;
        schedule_preview(pg_getn(r, 0, "cron"), zone, clock_now_ms() / 1000, count, times, &n);
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
                   json_pack("{ss ss so}", "schedule_id", pg_getn(r, 0, "id"), "timezone", zone,
                             "fire_times", list));
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

static json_t *run_json(app_t *app, const pg_result_t *r, int row)
{
    (void)app;
    return json_pack("{ss ss so so ss}", "due_at", pg_getn(r, row, "due"), "outcome",
                     pg_getn(r, row, "outcome"), "job_id", str_or_null(pg_getn(r, row, "job_id")),
                     "detail", text_json(pg_getn(r, row, "detail")), "created_at",
                     pg_getn(r, row, "created_at"));
}

void h_schedule_runs_list(http_req_t *req)
{
    /* The list's "created_at" order is the due times' (keyset on due_at and
     * the schedule id: due times are unique per schedule); ?sort=-created_at
     * gives the newest first. */
    const char *p[] = {http_param(req, "id"), app__caller(req)->org_id};
    app__list_page_under(
        req, "schedules", "no such schedule",
        "SELECT " APP_TS("r.due_at") " AS due, r.outcome, r.job_id, r.detail::text AS "
                                     "detail, " APP_TS(
                                         "r.created_at") " AS created_at, r.due_at AS raw_created, "
                                                         "r.schedule_id FROM schedule_runs r JOIN "
                                                         "schedules s ON s.id = r.schedule_id "
                                                         "WHERE r.schedule_id = $1 AND s.org_id = "
                                                         "$2 AND s.deleted_at IS NULL AND "
                                                         "($4::timestamptz IS NULL OR (r.due_at, "
                                                         "r.schedule_id) {cmp} "
                                                         "($4::timestamptz, $5::uuid)) ORDER BY "
                                                         "r.due_at {dir}, r.schedule_id {dir} "
                                                         "LIMIT $3::int",
        p, 2, run_json, "schedule_id");
}
