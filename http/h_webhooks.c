/* h_webhooks.c - webhook endpoints: CRUD, secret rotation with overlap,
 * the declared event types, a test ping, the list of deliveries and
 * redelivery. The rows are storage/webhooks_db.h's; here are the checks,
 * the statuses and the answers. The deliveries themselves are actors
 * (actors/webhooks/webhooks.h). */
#include "actors/webhooks/webhooks.h"
#include "http/app_internal.h"
#include "runtime/error.h"
#include "storage/webhooks_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* What create and update do first: the engine is here, the body's url and
 * event types are good (*types as for check_body), a connection is had.
 * The connection, or NULL after answering (with *types freed). */
static pg_conn_t *begin_write(http_req_t *req, json_t **b, char **types)
{
    *types = NULL;
    if (!ready(req))
        return NULL;
    *b = http_json_body(req, NULL);
    if (check_body(req, *b, types))
        return NULL;
    pg_conn_t *c = app__db(req);
    if (!c) {
        free(*types);
        *types = NULL;
    }
    return c;
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
    caller_t *cl = app__caller(req);
    json_t *b = NULL;
    char *types = NULL;
    pg_conn_t *c = begin_write(req, &b, &types);
    if (!c)
        return;
    char secret[64];
    if (webhooks_new_secret(secret) != 0) {
        free(types);
        app__fail(req, "internal", "no randomness for a secret", NULL);
        app__db_done(req, &c);
        return;
    }
    const json_t *en = json_object_get(b, "enabled");
    webhooks_db_def_t d = {.org_id = cl->org_id,
                           .created_by = cl->user_id,
                           .secret = secret,
                           .url = json_string_value(json_object_get(b, "url")),
                           .description = json_string_value(json_object_get(b, "description")),
                           .event_types = types,
                           .enabled = en && !json_is_true(en) ? 0 : 1};
    json_t *o = NULL;
    int rc = webhooks_db_create(c, &d, &o);
    free(types);
    if (rc == 0) {
        webhooks_invalidate(app__of(req)->webhooks, cl->org_id);
        /* The secret is in this answer and nowhere else the API shows. */
        json_object_set_new(o, "secret", json_string(secret));
        char loc[80];
        snprintf(loc, sizeof loc, "/v1/webhooks/%s", json_string_value(json_object_get(o, "id")));
        http_add_header(req, "location", loc);
    }
    app__reply_owned(req, c, rc, 201, o, "no such webhook");
    app__db_done(req, &c);
}

void h_webhooks_list(http_req_t *req)
{
    app__list_org(req, webhooks_db_list);
}

void h_webhooks_get(http_req_t *req)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *o = NULL;
    int rc = webhooks_db_get(c, http_param(req, "id"), app__caller(req)->org_id, &o);
    app__reply_owned(req, c, rc, 200, o, "no such webhook");
    app__db_done(req, &c);
}

void h_webhooks_update(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    json_t *b = NULL;
    char *types = NULL;
    pg_conn_t *c = begin_write(req, &b, &types);
    if (!c)
        return;
    const json_t *en = json_object_get(b, "enabled");
    webhooks_db_def_t d = {.url = json_string_value(json_object_get(b, "url")),
                           .description = json_string_value(json_object_get(b, "description")),
                           .event_types = types,
                           .enabled = en ? json_is_true(en) : -1};
    json_t *o = NULL;
    int rc = webhooks_db_update(c, http_param(req, "id"), cl->org_id, &d, &o);
    free(types);
    webhooks_invalidate(app__of(req)->webhooks, cl->org_id);
    app__reply_owned(req, c, rc, 200, o, "no such webhook");
    app__db_done(req, &c);
}

void h_webhooks_delete(http_req_t *req)
{
    app_t *app = app__of(req);
    const char *id = http_param(req, "id");
    /* A malformed id is answered before a connection is taken. */
    pg_conn_t *c = app__is_uuid(id) ? app__db(req) : NULL;
    if (c || !app__is_uuid(id)) {
        int rc = c ? webhooks_db_delete(c, id, app__caller(req)->org_id) : FENTA_ENOTFOUND;
        app__reply_owned(req, c, rc, 204, NULL, "no such webhook");
    }
    app__db_done(req, &c);
    if (app->webhooks)
        webhooks_invalidate(app->webhooks, app__caller(req)->org_id);
}

void h_webhooks_rotate(http_req_t *req)
{
    if (!ready(req))
        return;
    json_t *b = http_json_body(req, NULL);
    const json_t *ov = json_object_get(b, "overlap_seconds");
    char secret[64];
    if (webhooks_new_secret(secret) != 0) {
        app__fail(req, "internal", "no randomness for a secret", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char *expires = NULL;
    int rc = webhooks_db_rotate(c, http_param(req, "id"), app__caller(req)->org_id, secret,
                                ov ? json_integer_value(ov) : 86400, &expires);
    if (rc == 0)
        webhooks_invalidate(app__of(req)->webhooks, app__caller(req)->org_id);
    app__reply_owned(req, c, rc, 200,
                     rc ? NULL
                        : json_pack("{ss ss}", "secret", secret, "previous_expires_at", expires),
                     "no such webhook");
    free(expires);
    app__db_done(req, &c);
}

void h_webhooks_test(http_req_t *req)
{
    if (!ready(req))
        return;
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *wh = NULL;
    int rc = webhooks_db_get(c, http_param(req, "id"), app__caller(req)->org_id, &wh);
    if (rc) {
        app__reply_owned(req, c, rc, 0, NULL, "no such webhook");
    } else {
        app_t *app = app__of(req);
        char eid[64], did[37];
        int got = webhooks_new_event_id("evt_test_", eid, sizeof eid);
        const char *wid = json_string_value(json_object_get(wh, "id"));
        webhooks_delivery_id(eid, wid, did);
        json_t *data =
            json_pack("{ss ss ss}", "webhook_id", wid, "message", "This is a test ping from Fenta.",
                      "url", json_string_value(json_object_get(wh, "url")));
        rc = got == 0 ? webhooks_emit_now(app->webhooks, app__caller(req)->org_id, eid,
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
    json_decref(wh);
    app__db_done(req, &c);
}

void h_webhook_deliveries_list(http_req_t *req)
{
    /* The webhook is looked up first, so another organisation's, a deleted
     * one and a missing one answer the 404 a GET of it gives, never an
     * empty page that says the id exists. */
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    const char *id = http_param(req, "id"), *org = app__caller(req)->org_id;
    const char *status = http_query(req, "status");
    int rc = webhooks_db_get(c, id, org, NULL);
    db_page_t page;
    json_t *keep = NULL;
    if (rc) {
        app__reply_owned(req, c, rc, 0, NULL, "no such webhook");
    } else if (app__page_of(req, &page, &keep) == 0) {
        db_page_rows_t list;
        rc = webhooks_db_deliveries_list(c, id, org, status && *status ? status : NULL, &page,
                                         &list);
        app__reply_list(req, c, rc, &page, &list);
    }
    json_decref(keep);
    app__db_done(req, &c);
}

void h_webhook_redeliver(http_req_t *req)
{
    if (!ready(req))
        return;
    const char *wid = http_param(req, "id"), *did = http_param(req, "delivery_id");
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *o = NULL;
    int rc = webhooks_db_delivery_get(c, did, wid, app__caller(req)->org_id, &o);
    if (rc) {
        app__reply_owned(req, c, rc, 0, NULL, "no such delivery");
    } else {
        rc = webhooks_redeliver(app__of(req)->rt, did);
        if (rc == FENTA_ENOTFOUND)
            app__fail(req, "not_here",
                      "this delivery's actor is not on this node; ask the node that made it", NULL);
        else if (rc)
            app__fail(req, "unavailable", "the redelivery could not be queued", NULL);
        else
            app__reply(req, 202, json_incref(o));
    }
    json_decref(o);
    app__db_done(req, &c);
}
