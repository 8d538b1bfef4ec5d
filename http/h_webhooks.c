/* h_webhooks.c - webhook endpoints: CRUD, secret rotation with overlap,
 * the declared event types, a test ping, the list of deliveries and
 * redelivery. The deliveries themselves are actors (actors/webhooks/webhooks.h). */
#include "actors/webhooks/webhooks.h"
#include "http/app_internal.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WH_COLS                                                                                    \
    "id, url, description, array_to_json(event_types)::text AS event_types, enabled, " APP_TS(     \
        "fa"                                                                                       \
        "il"                                                                                       \
        "in"                                                                                       \
        "g_"                                                                                       \
        "si"                                                                                       \
        "nc"                                                                                       \
        "e") " AS failing_since, " APP_TS("disabled_at") " AS disabled_at, "                       \
                                                         "disabled_reason, (SELECT "               \
                                                         "COALESCE(json_agg(json_build_object("    \
                                                         "'created_at', s->'created_at', "         \
                                                         "'expires_at', s->'expires_at')), "       \
                                                         "'[]') FROM "                             \
                                                         "jsonb_array_elements(secrets) s)::text " \
                                                         "AS secrets, "                            \
                                                         "org_id, " APP_TS(                        \
                                                             "created_at") " AS "                  \
                                                                           "created"               \
                                                                           "_at,"                  \
                                                                           " " APP_TS(             \
                                                                               "upd"               \
                                                                               "ate"               \
                                                                               "d_"                \
                                                                               "at") " AS "        \
                                                                                     "updated_at," \
                                                                                     " created_"   \
                                                                                     "at AS "      \
                                                                                     "raw_created"

#define DL_COLS                                                                                    \
    "id, webhook_id, event_id, event_type, status, attempts, response_status, response_body, "     \
    "latency_ms, error, " APP_TS("next_attempt_at") " AS next_attempt_at, " APP_TS(                \
        "delivered_at") " AS delivered_at, " APP_TS("created_at") " AS created_at, " APP_TS("upda" \
                                                                                            "ted_" \
                                                                                            "at") " AS updated_at, created_at AS raw_created"

static json_t *text_json(const char *s)
{
    json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *int_or_null(const char *s)
{
    return s ? json_integer(atoll(s)) : json_null();
}

static json_t *wh_json(app_t *app, const pg_result_t *r, int row)
{
    (void)app;
    return json_pack("{ss ss ss so sb so so so so ss ss}", "id", pg_getn(r, row, "id"), "url",
                     pg_getn(r, row, "url"), "description", pg_getn(r, row, "description"),
                     "event_types", text_json(pg_getn(r, row, "event_types")), "enabled",
                     strcmp(pg_getn(r, row, "enabled"), "t") == 0, "failing_since",
                     str_or_null(pg_getn(r, row, "failing_since")), "disabled_at",
                     str_or_null(pg_getn(r, row, "disabled_at")), "disabled_reason",
                     str_or_null(pg_getn(r, row, "disabled_reason")), "secrets",
                     text_json(pg_getn(r, row, "secrets")), "created_at",
                     pg_getn(r, row, "created_at"), "updated_at", pg_getn(r, row, "updated_at"));
}

static json_t *dl_json(app_t *app, const pg_result_t *r, int row)
{
    (void)app;
    return json_pack(
        "{ss ss ss ss ss si so so so so so so ss ss}", "id", pg_getn(r, row, "id"), "webhook_id",
        pg_getn(r, row, "webhook_id"), "event_id", pg_getn(r, row, "event_id"), "event_type",
        pg_getn(r, row, "event_type"), "status", pg_getn(r, row, "status"), "attempts",
        atoi(pg_getn(r, row, "attempts")), "response_status",
        int_or_null(pg_getn(r, row, "response_status")), "response_body",
        str_or_null(pg_getn(r, row, "response_body")), "latency_ms",
        int_or_null(pg_getn(r, row, "latency_ms")), "error", str_or_null(pg_getn(r, row, "error")),
        "next_attempt_at", str_or_null(pg_getn(r, row, "next_attempt_at")), "delivered_at",
        str_or_null(pg_getn(r, row, "delivered_at")), "created_at", pg_getn(r, row, "created_at"),
        "updated_at", pg_getn(r, row, "updated_at"));
}

static bool ready(http_req_t *req)
{
    if (app__of(req)->webhooks && app__of(req)->rt)
        return true;
    app__fail(req, "unavailable", "this node delivers no webhooks", NULL);
    return false;
}

/* url and event_types of a body (either may be absent on PATCH); 0 or
 * answered 400. *types_json (the caller frees it) is event_types as JSON text,
 * NULL when the body has none. */
static int check_body(http_req_t *req, const json_t *b, char **types_json)
{
    app_t *app = app__of(req);
    *types_json = NULL;
    const char *url = json_string_value(json_object_get(b, "url"));
    char why[256];
    if (url && webhooks_check_url(app->webhooks, url, why, sizeof why) != 0) {
        app__fail(req, "invalid_url", why, json_pack("[{ss ss}]", "path", "$.url", "message", why));
        return FENTA_EINVAL;
    }
    const json_t *types = json_object_get(b, "event_types");
    if (!types)
        return 0;
    const json_t *known = webhooks_event_types(app->webhooks);
    json_t *bad = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        const char *s = json_string_value(t);
        if (!s || (strcmp(s, "*") != 0 && !json_object_get(known, s))) {
            char path[48];
            snprintf(path, sizeof path, "$.event_types[%zu]", i);
            json_array_append_new(bad,
                                  json_pack("{ss ss}", "path", path, "message",
                                            "not an event type; see GET /v1/webhook-event-types"));
        }
    }
    if (json_array_size(bad)) {
        app__fail(req, "invalid_event_types", "unknown event types", bad);
        return FENTA_EINVAL;
    }
    json_decref(bad);
    *types_json = json_dumps(types, JSON_COMPACT);
    return 0;
}

void h_webhook_event_types(http_req_t *req)
{
    if (!ready(req))
        return;
    json_t *list = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)webhooks_event_types(app__of(req)->webhooks), k, v)
        json_array_append_new(list, json_pack("{ss sO}", "type", k, "description",
                                              json_object_get(v, "description")));
    app__reply(req, 200, json_pack("{so}", "data", list));
}

void h_webhooks_create(http_req_t *req)
{
    if (!ready(req))
        return;
    caller_t *cl = app__caller(req);
    json_t *b = http_json_body(req, NULL);
    char *types = NULL;
    if (check_body(req, b, &types))
        return;
    pg_conn_t *c = app__db(req);
    if (!c) {
        free(types);
        return;
    }
    char secret[64];
    if (webhooks_new_secret(secret) != 0) {
        free(types);
        app__fail(req, "internal", "no randomness for a secret", NULL);
        app__db_done(req, &c);
        return;
    }
    const char *desc = json_string_value(json_object_get(b, "description"));
    const json_t *en = json_object_get(b, "enabled");
    const char *p[] = {cl->org_id, json_string_value(json_object_get(b, "url")), desc ? desc : "",
                       types,      en && !json_is_true(en) ? "f" : "t",          secret,
                       cl->user_id};
    int err = 0;
    pg_result_t *r = pg_query(
        c,
        "INSERT INTO webhooks (org_id, url, description, event_types, enabled, secrets, "
        "created_by) SELECT $1, $2, $3, ARRAY(SELECT jsonb_array_elements_text($4::jsonb)), "
        "$5::boolean, jsonb_build_array(jsonb_build_object('secret', $6::text, 'created_at', "
        "now(), 'expires_at', NULL)), $7 RETURNING " WH_COLS,
        7, p, &err);
    free(types);
    if (r && pg_nrows(r) == 1) {
        webhooks_invalidate(app__of(req)->webhooks, cl->org_id);
        /* The secret is in this answer and nowhere else the API shows. */
        json_t *o = wh_json(app__of(req), r, 0);
        json_object_set_new(o, "secret", json_string(secret));
        char loc[80];
        snprintf(loc, sizeof loc, "/v1/webhooks/%s", pg_getn(r, 0, "id"));
        http_add_header(req, "location", loc);
        app__reply(req, 201, o);
        pg_result_free(&r);
    } else {
        app__reply_row(req, c, &r, err, 201, wh_json, "no such webhook");
    }
    app__db_done(req, &c);
}

void h_webhooks_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *p[] = {cl->org_id};
    app__list_page(req,
                   "SELECT " WH_COLS " FROM webhooks WHERE org_id = $1 AND deleted_at IS NULL "
                   "AND ($3::timestamptz IS NULL OR (created_at, id) {cmp} ($3::timestamptz, "
                   "$4::uuid)) ORDER BY created_at {dir}, id {dir} LIMIT $2::int",
                   p, 1, wh_json, "id");
}

/* The caller's webhook {id} (WH_COLS), or NULL after answering. */
static pg_result_t *load(http_req_t *req, pg_conn_t *c)
{
    return app__load(req, c,
                     "SELECT " WH_COLS
                     " FROM webhooks WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
                     "no such webhook");
}

void h_webhooks_get(http_req_t *req)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    pg_result_t *r = load(req, c);
    if (r)
        app__reply(req, 200, wh_json(app__of(req), r, 0));
    pg_result_free(&r);
    app__db_done(req, &c);
}

void h_webhooks_update(http_req_t *req)
{
    if (!ready(req))
        return;
    caller_t *cl = app__caller(req);
    json_t *b = http_json_body(req, NULL);
    char *types = NULL;
    if (check_body(req, b, &types))
        return;
    pg_conn_t *c = app__db(req);
    if (!c) {
        free(types);
        return;
    }
    const json_t *en = json_object_get(b, "enabled");
    const char *id = http_param(req, "id");
    const char *p[] = {id,
                       cl->org_id,
                       json_string_value(json_object_get(b, "url")),
                       json_string_value(json_object_get(b, "description")),
                       types,
                       en ? (json_is_true(en) ? "t" : "f") : NULL};
    int err = 0;
    /* Enabling clears an automatic disable and the failure streak. */
    pg_result_t *r =
        app__is_uuid(id)
            ? pg_query(
                  c,
                  "UPDATE webhooks SET url = COALESCE($3, url), description = COALESCE($4, "
                  "description), event_types = CASE WHEN $5::jsonb IS NULL THEN event_types ELSE "
                  "ARRAY(SELECT jsonb_array_elements_text($5::jsonb)) END, enabled = "
                  "COALESCE($6::boolean, enabled), disabled_at = CASE WHEN $6::boolean THEN "
                  "NULL ELSE disabled_at END, disabled_reason = CASE WHEN $6::boolean THEN "
                  "NULL ELSE disabled_reason END, failing_since = CASE WHEN $6::boolean THEN "
                  "NULL ELSE failing_since END, updated_at = now() WHERE id = $1 AND org_id "
                  "= $2 AND deleted_at IS NULL RETURNING " WH_COLS,
                  6, p, &err)
            : NULL;
    free(types);
    webhooks_invalidate(app__of(req)->webhooks, cl->org_id);
    if (!r && !err)
        app__fail(req, "not_found", "no such webhook", NULL);
    else
        app__reply_row(req, c, &r, err, 200, wh_json, "no such webhook");
    app__db_done(req, &c);
}

void h_webhooks_delete(http_req_t *req)
{
    app_t *app = app__of(req);
    app__soft_delete(req, "webhooks", http_param(req, "id"), "no such webhook");
    if (app->webhooks)
        webhooks_invalidate(app->webhooks, app__caller(req)->org_id);
}

void h_webhooks_rotate(http_req_t *req)
{
    if (!ready(req))
        return;
    json_t *b = http_json_body(req, NULL);
    const json_t *ov = json_object_get(b, "overlap_seconds");
    char overlap[32], secret[64];
    snprintf(overlap, sizeof overlap, "%lld", (long long)(ov ? json_integer_value(ov) : 86400));
    if (webhooks_new_secret(secret) != 0) {
        app__fail(req, "internal", "no randomness for a secret", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    const char *id = http_param(req, "id");
    const char *p[] = {id, app__caller(req)->org_id, secret, overlap};
    int err = 0;
    /* The new secret first; every secret still in force expires at the end
     * of the overlap at the latest, and those already expired are dropped. */
    pg_result_t *r =
        app__is_uuid(id)
            ? pg_query(
                  c,
                  "UPDATE webhooks SET secrets = jsonb_build_array(jsonb_build_object('secret', "
                  "$3::text, 'created_at', now(), 'expires_at', NULL)) || COALESCE((SELECT "
                  "jsonb_agg(jsonb_set(s, '{expires_at}', to_jsonb(LEAST(COALESCE((s->>"
                  "'expires_at')::timestamptz, 'infinity'), now() + make_interval(secs => "
                  "$4::int))))) FROM jsonb_array_elements(secrets) s WHERE s->>'expires_at' IS "
                  "NULL OR (s->>'expires_at')::timestamptz > now()), '[]'), updated_at = now() "
                  "WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL RETURNING " APP_TS(
                      "(now() + make_interval(secs => $4::int))"),
                  4, p, &err)
            : NULL;
    if (!r && err)
        app__db_error(req, err, c);
    else if (!r || pg_nrows(r) != 1)
        app__fail(req, "not_found", "no such webhook", NULL);
    else {
        webhooks_invalidate(app__of(req)->webhooks, app__caller(req)->org_id);
        app__reply(req, 200,
                   json_pack("{ss ss}", "secret", secret, "previous_expires_at", pg_get(r, 0, 0)));
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

void h_webhooks_test(http_req_t *req)
{
    if (!ready(req))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    pg_result_t *r = load(req, c);
    if (r) {
        app_t *app = app__of(req);
        char eid[64], did[37];
        int got = webhooks_new_event_id("evt_test_", eid, sizeof eid);
        const char *wid = pg_getn(r, 0, "id");
        webhooks_delivery_id(eid, wid, did);
        json_t *data = json_pack("{ss ss ss}", "webhook_id", wid, "message",
                                 "This is a test ping from Fenta.", "url", pg_getn(r, 0, "url"));
        int rc = got == 0 ? webhooks_emit_now(app->webhooks, app__caller(req)->org_id, eid,
                                              "webhook.test", data, wid)
                          : FENTA_EIO;
        json_decref(data);
        if (rc) {
            http_add_header(req, "retry-after", "1");
            app__fail(req, "unavailable", "the ping could not be queued; retry shortly", NULL);
        } else {
            app__reply(req, 202, json_pack("{ss ss}", "event_id", eid, "delivery_id", did));
        }
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

void h_webhook_deliveries_list(http_req_t *req)
{
    const char *status = http_query(req, "status");
    const char *p[] = {http_param(req, "id"), app__caller(req)->org_id,
                       status && *status ? status : NULL};
    /* $1..$3 are ours; app__list_page numbers its own from $4 on. */
    app__list_page_under(req, "webhooks", "no such webhook",
                         "SELECT " DL_COLS
                         " FROM webhook_deliveries WHERE webhook_id = $1 AND org_id = "
                         "$2 AND ($3::text IS NULL OR status = $3) AND ($5::timestamptz IS NULL OR "
                         "(created_at, id) {cmp} ($5::timestamptz, $6::uuid)) ORDER BY created_at "
                         "{dir}, id {dir} LIMIT $4::int",
                         p, 3, dl_json, "id");
}

void h_webhook_redeliver(http_req_t *req)
{
    if (!ready(req))
        return;
    const char *wid = http_param(req, "id"), *did = http_param(req, "delivery_id");
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    const char *p[] = {did, wid, app__caller(req)->org_id};
    int err = 0;
    pg_result_t *r = app__is_uuid(did) && app__is_uuid(wid)
                         ? pg_query(c,
                                    "SELECT " DL_COLS " FROM webhook_deliveries WHERE id = $1 "
                                    "AND webhook_id = $2 AND org_id = $3",
                                    3, p, &err)
                         : NULL;
    if (!r && err) {
        app__db_error(req, err, c);
    } else if (!r || pg_nrows(r) != 1) {
        app__fail(req, "not_found", "no such delivery", NULL);
    } else {
        int rc = webhooks_redeliver(app__of(req)->rt, did);
        if (rc == FENTA_ENOTFOUND)
            app__fail(req, "not_here",
                      "this delivery's actor is not on this node; ask the node that made it", NULL);
        else if (rc)
            app__fail(req, "unavailable", "the redelivery could not be queued", NULL);
        else
            app__reply(req, 202, dl_json(app__of(req), r, 0));
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}
