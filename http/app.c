/* app.c - the API application: route table from schemas/api.json, the
 * `before` hook (rate limits, authentication, permission, validation,
 * idempotency) and the helpers handlers share. See app.h. */
#include "http/app_internal.h"
#include "http/token.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Operation names of api.json -> handlers. */
static const struct {
    const char *operation;
    http_handler_fn fn;
} handlers[] = {
    {"auth_register", h_auth_register},
    {"auth_login", h_auth_login},
    {"auth_refresh", h_auth_refresh},
    {"auth_logout", h_auth_logout},
    {"me_get", h_me_get},
    {"tokens_create", h_tokens_create},
    {"tokens_list", h_tokens_list},
    {"tokens_delete", h_tokens_delete},
    {"orgs_create", h_orgs_create},
    {"orgs_list", h_orgs_list},
    {"orgs_get", h_orgs_get},
    {"members_list", h_members_list},
    {"members_invite", h_members_invite},
    {"members_update", h_members_update},
    {"members_remove", h_members_remove},
    {"invitations_accept", h_invitations_accept},
    {"node_types_list", h_node_types_list},
    {"workflows_create", h_workflows_create},
    {"workflows_list", h_workflows_list},
    {"workflows_get", h_workflows_get},
    {"workflows_update", h_workflows_update},
    {"workflows_delete", h_workflows_delete},
    {"workflow_versions_list", h_workflow_versions_list},
    {"workflows_validate", h_workflows_validate},
    {"workflows_estimate", h_workflows_estimate},
    {"workflows_run", h_workflows_run},
    {"templates_list", h_templates_list},
    {"templates_create", h_templates_create},
    {"templates_get", h_templates_get},
    {"templates_update", h_templates_update},
    {"templates_delete", h_templates_delete},
    {"renders_create", h_renders_create},
    {"jobs_list", h_jobs_list},
    {"jobs_get", h_jobs_get},
    {"jobs_cancel", h_jobs_cancel},
    {"jobs_retry", h_jobs_retry},
    {"jobs_events", h_jobs_events},
    {"events_stream", h_events_stream},
    {"schedules_create", h_schedules_create},
    {"schedules_list", h_schedules_list},
    {"schedules_get", h_schedules_get},
    {"schedules_update", h_schedules_update},
    {"schedules_delete", h_schedules_delete},
    {"schedules_pause", h_schedules_pause},
    {"schedules_resume", h_schedules_resume},
    {"schedules_preview", h_schedules_preview},
    {"schedule_runs_list", h_schedule_runs_list},
    {"webhook_event_types", h_webhook_event_types},
    {"webhooks_create", h_webhooks_create},
    {"webhooks_list", h_webhooks_list},
    {"webhooks_get", h_webhooks_get},
    {"webhooks_update", h_webhooks_update},
    {"webhooks_delete", h_webhooks_delete},
    {"webhooks_rotate", h_webhooks_rotate},
    {"webhooks_test", h_webhooks_test},
    {"webhook_deliveries_list", h_webhook_deliveries_list},
    {"webhook_redeliver", h_webhook_redeliver},
};

static const char *const role_names[] = {"owner", "admin", "editor", "viewer"};
static const char *const scope_names[] = {"read", "write", "admin"};

unsigned app__role_bit(const char *name)
{
    for (unsigned i = 0; name && i < 4; i++)
        if (strcmp(name, role_names[i]) == 0)
            return 1u << i;
    return 0;
}

const char *app__role_name(unsigned bit)
{
    for (unsigned i = 0; i < 4; i++)
        if (bit == 1u << i)
            return role_names[i];
    return "none";
}

unsigned app__scope_bit(const char *name)
{
    for (unsigned i = 0; name && i < 3; i++)
        if (strcmp(name, scope_names[i]) == 0)
            return 1u << i;
    return 0;
}

bool app__is_uuid(const char *s)
{
    return db_is_uuid(s);
}

/* ---- building ------------------------------------------------------------- */

static int load_perms(app_t *app, const json_t *perms, char *errbuf, size_t errlen)
{
    app->nperms = json_object_size(perms);
    app->perms = calloc(app->nperms ? app->nperms : 1, sizeof *app->perms);
    if (!app->perms)
        return FENTA_ENOMEM;
    size_t i = 0;
    const char *name;
    json_t *p;
    json_object_foreach((json_t *)perms, name, p)
    {
        perm_t *d = &app->perms[i++];
        snprintf(d->name, sizeof d->name, "%s", name);
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(p, "roles"), k, r)
        {
            unsigned b = app__role_bit(json_string_value(r));
            if (!b) {
                snprintf(errbuf, errlen, "permission %s: unknown role", name);
                return FENTA_EINVAL;
            }
            d->roles |= b;
        }
        d->scope = app__scope_bit(json_string_value(json_object_get(p, "scope")));
        if (!d->scope) {
            snprintf(errbuf, errlen, "permission %s: scope must be read, write or admin", name);
            return FENTA_EINVAL;
        }
    }
    return 0;
}

static int perm_index(const app_t *app, const char *name)
{
    for (size_t i = 0; name && i < app->nperms; i++)
        if (strcmp(app->perms[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void dispatch(http_req_t *req);

/* The listener's callback: a user changed (drop their entries), or
 * notifications may have been missed (drop all; serve only while listening). */
void app__on_identity(const char *payload, void *arg)
{
    app_t *app = arg;
    authcache_forget(app->cache, payload);
    authcache_set_enabled(app->cache, pg_listen_connected(app->listener));
}

/* The error table: the caller's errors.json, else the schemas folder's. */
static bool load_errors(app_t *app, const json_t *doc, char *errbuf, size_t errlen)
{
    json_t *own = NULL;
    if (!doc) {
        char path[4096];
        snprintf(path, sizeof path, "%s/errors.json", fsutil_schemas_dir(app->schemas_dir));
        json_error_t e;
        if (!(doc = own = json_load_file(path, JSON_REJECT_DUPLICATES, &e))) {
            snprintf(errbuf, errlen, "%s:%d: %s", path, e.line, e.text);
            return false;
        }
    }
    app->errors = errcodes_new(doc, errbuf, errlen);
    json_decref(own);
    return app->errors != NULL;
}

app_t *app_new(const app_config_t *cfg, char *errbuf, size_t errlen)
{
    app_t *app = calloc(1, sizeof *app);
    if (!app) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    app->pool = cfg->pool;
    app->rt = cfg->rt;
    app->objects = cfg->objects;
    app->presign_ttl_s = cfg->presign_ttl_s > 0 ? cfg->presign_ttl_s : APP_PRESIGN_TTL_S;
    app->sse_heartbeat_ms = cfg->sse_heartbeat_ms;
    app->webhooks = cfg->webhooks;
    app->types = cfg->types;
    if (cfg->schemas_dir && !(app->schemas_dir = strdup(cfg->schemas_dir))) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    if (!load_errors(app, cfg->errors, errbuf, errlen))
        goto fail;
    if (!app->types) {
        app->owned_types = workflow_types_load(app->schemas_dir, errbuf, errlen);
        if (!app->owned_types)
            goto fail;
        app->types = app->owned_types;
    }
    app->insecure_cookies = cfg->insecure_cookies;
    if (cfg->pw)
        app->pw = *cfg->pw;
    else
        password_params_default(&app->pw);
    jwts_config_t jc;
    jwts_config_init(&jc);
    jc.key = cfg->secret;
    jc.key_len = cfg->secret_len;
    jc.issuer = cfg->issuer ? cfg->issuer : "fenta";
    jc.audience = cfg->audience ? cfg->audience : "fenta-api";
    if (!(app->jwt = jwts_new(&jc))) {
        snprintf(errbuf, errlen, "the JWT secret must be at least %d bytes", JWTS_KEY_MIN);
        goto fail;
    }
    /* The cursor key is derived from the secret with its own label. */
    if (crypto_hmac_sha256(cfg->secret, cfg->secret_len, "fenta-cursor", 12, app->cursor_key)) {
        snprintf(errbuf, errlen, "could not derive the cursor key");
        goto fail;
    }

    json_t *deflimits = NULL;
    const json_t *limits = cfg->limits;
    if (!limits)
        limits = deflimits = json_pack(
            "{s:{s:f,s:f}, s:{s:f,s:f}, s:{s:{s:f,s:f}, s:{s:f,s:f}}}", "ip", "rate", 100.0,
            "burst", 200.0, "user", "rate", 50.0, "burst", 100.0, "routes", "POST /v1/auth/login",
            "rate", 1.0, "burst", 10.0, "POST /v1/auth/register", "rate", 0.5, "burst", 10.0);
    int rc = ratelimit_config_parse(limits, &app->limits, errbuf, errlen);
    json_decref(deflimits);
    if (rc)
        goto fail;
    if (!(app->rl = ratelimit_new(app->limits->max_entries))) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    if (load_perms(app, json_object_get(cfg->api, "permissions"), errbuf, errlen))
        goto fail;
    if (!(app->cache = authcache_new())) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    if (cfg->listen_conninfo) {
        int lerr = 0;
        app->listener =
            pg_listen_start(cfg->listen_conninfo, "fenta_identity", app__on_identity, app, &lerr);
        if (!app->listener) {
            snprintf(errbuf, errlen, "cannot listen for identity changes: %s",
                     fenta_strerror(lerr));
            goto fail;
        }
        if (!(app->hub = app__hub_new(app, cfg->listen_conninfo))) {
            snprintf(errbuf, errlen, "cannot listen for job events");
            goto fail;
        }
    }

    const json_t *routes = json_object_get(cfg->api, "routes");
    const json_t *defs = json_object_get(cfg->models, "$defs");
    app->nroutes = json_array_size(routes);
    app->routes = calloc(app->nroutes ? app->nroutes : 1, sizeof *app->routes);
    app->hroutes = calloc(app->nroutes ? app->nroutes : 1, sizeof *app->hroutes);
    if (!app->routes || !app->hroutes) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
    /* Request body limits are data: api.json's max_body_bytes, which a
     * route may override with its own (an upload route, say). */
    json_int_t def_body = json_integer_value(json_object_get(cfg->api, "max_body_bytes"));
    if (def_body <= 0)
        def_body = APP_DEFAULT_MAX_BODY;
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        route_info_t *ri = &app->routes[i];
        const char *method = json_string_value(json_object_get(r, "method"));
        const char *path = json_string_value(json_object_get(r, "path"));
        const char *op = json_string_value(json_object_get(r, "operation"));
        const char *auth = json_string_value(json_object_get(r, "auth"));
        if (!method || !path || !op || !auth) {
            snprintf(errbuf, errlen, "api.json route %zu: method, path, operation, auth", i);
            goto fail;
        }
        if (strlen(method) >= sizeof ri->method || strlen(path) >= sizeof ri->path) {
            snprintf(errbuf, errlen, "api.json route %zu: method or path too long", i);
            goto fail;
        }
        snprintf(ri->key, sizeof ri->key, "%s %s", method, path);
        snprintf(ri->method, sizeof ri->method, "%s", method);
        snprintf(ri->path, sizeof ri->path, "%s", path);
        snprintf(ri->operation, sizeof ri->operation, "%s", op);
        ri->auth = strcmp(auth, "none") != 0;
        ri->perm = perm_index(app, json_string_value(json_object_get(r, "permission")));
        if (ri->auth && ri->perm < 0) {
            snprintf(errbuf, errlen, "%s: an authenticated route needs a known permission",
                     ri->key);
            goto fail;
        }
        const char *orgp = json_string_value(json_object_get(r, "org_param"));
        snprintf(ri->org_param, sizeof ri->org_param, "%s", orgp ? orgp : "");
        ri->status = (int)json_integer_value(json_object_get(r, "status"));
        ri->idempotent = json_is_true(json_object_get(r, "idempotent"));
        const char *reqm = json_string_value(json_object_get(r, "request"));
        if (reqm) {
            json_t *wrap = json_pack("{s:s+, s:O}", "$ref", "#/$defs/", reqm, "$defs", defs);
            char e[256] = "";
            ri->request = wrap ? jsonschema_compile(wrap, e, sizeof e) : NULL;
            json_decref(wrap);
            if (!ri->request) {
                snprintf(errbuf, errlen, "%s: schema %s: %s", ri->key, reqm, e);
                goto fail;
            }
        }
        http_handler_fn fn = NULL;
        for (size_t h = 0; h < sizeof handlers / sizeof handlers[0]; h++)
            if (strcmp(handlers[h].operation, op) == 0)
                fn = handlers[h].fn;
        if (!fn) {
            snprintf(errbuf, errlen, "%s: no handler for operation %s", ri->key, op);
            goto fail;
        }
        const json_t *mb = json_object_get(r, "max_body_bytes");
        if (mb && (!json_is_integer(mb) || json_integer_value(mb) <= 0)) {
            snprintf(errbuf, errlen, "%s: max_body_bytes must be a positive integer", ri->key);
            goto fail;
        }
        ri->max_body = (size_t)(mb ? json_integer_value(mb) : def_body);
        /* Our own copies: api.json is only borrowed while app_new runs. */
        ri->fn = fn;
        app->hroutes[i] = (http_route_t){.method = ri->method,
                                         .pattern = ri->path,
                                         .handler = dispatch,
                                         .flags = reqm ? HTTP_ROUTE_JSON : 0,
                                         .name = ri->operation,
                                         .data = ri,
                                         .max_body = ri->max_body};
    }
    return app;
fail:
    app_destroy(&app);
    return NULL;
}

void app_destroy(app_t **app_p)
{
    if (!app_p || !*app_p)
        return;
    app_t *app = *app_p;
    for (size_t i = 0; app->routes && i < app->nroutes; i++)
        jsonschema_free(&app->routes[i].request);
    free(app->routes);
    free(app->hroutes);
    free(app->perms);
    pg_listen_stop(&app->listener); /* before the cache it writes to */
    sse_hub_destroy(&app->hub);
    workflow_types_free(&app->owned_types);
    free(app->schemas_dir);
    authcache_destroy(&app->cache);
    ratelimit_destroy(&app->rl);
    ratelimit_config_destroy(&app->limits);
    jwts_destroy(&app->jwt);
    errcodes_destroy(&app->errors);
    free(app);
    *app_p = NULL;
}

static bool ready(void *arg)
{
    return pg_ping(((app_t *)arg)->pool) == 0;
}

void app_bind(app_t *app, http_config_t *cfg)
{
    cfg->app = app;
    cfg->before = app__before;
    cfg->ready = ready;
}

int app_install(app_t *app, http_server_t *server)
{
    int rc = http_server_route(server, app->hroutes, app->nroutes);
    return rc ? rc : http_server_route_builtins(server);
}

/* ---- request helpers ---------------------------------------------------------- */

app_t *app__of(const http_req_t *req)
{
    return http_app(req);
}

const route_info_t *app__route(const http_req_t *req)
{
    const http_route_t *r = http_route(req);
    return r ? r->data : NULL;
}

static void caller_free(void *p)
{
    caller_t *c = p;
    json_decref(c->list_prefix);
    free(c);
}

caller_t *app__caller(http_req_t *req)
{
    caller_t *c = http_data(req);
    if (!c && (c = calloc(1, sizeof *c)))
        http_set_data(req, c, caller_free);
    return c;
}

pg_conn_t *app__db(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    if (cl && cl->conn)
        return cl->conn;
    int err = 0;
    pg_conn_t *c = pg_acquire(app__of(req)->pool, 3000, &err);
    if (!c) {
        http_add_header(req, "retry-after", "1");
        app__fail(req, "unavailable", "the database is unavailable; retry shortly", NULL);
    } else if (cl) {
        cl->conn = c;
    }
    return c;
}

/* Gives the request's connection back to the pool. */
void app__release_conn(http_req_t *req)
{
    caller_t *cl = http_data(req);
    if (cl && cl->conn)
        pg_release(app__of(req)->pool, &cl->conn);
}

/* Every API route runs through here: the operation, then the connection
 * goes back to the pool on this worker (never on an event loop). */
static void dispatch(http_req_t *req)
{
    const route_info_t *ri = app__route(req);
    ri->fn(req);
    app__release_conn(req);
}

void app__db_done(http_req_t *req, pg_conn_t **conn)
{
    caller_t *cl = http_data(req);
    if (cl && cl->conn == *conn)
        *conn = NULL; /* kept for the request; released by dispatch() */
    else
        pg_release(app__of(req)->pool, conn);
}

void app__db_error(http_req_t *req, int rc, pg_conn_t *conn)
{
    if (rc == FENTA_EUNAVAILABLE || rc == FENTA_ETIMEOUT) {
        http_add_header(req, "retry-after", "1");
        app__fail(req, "unavailable", "the database is unavailable; retry shortly", NULL);
        return;
    }
    if (rc == FENTA_EEXIST || rc == FENTA_ECONFLICT) {
        app__fail(req, "conflict", "the request conflicts with the current state", NULL);
        return;
    }
    log_kv(LOG_ERROR, NULL, "database error",
           (const char *const[]){"request_id", http_request_id(req), "code", fenta_strerror(rc),
                                 "sqlstate", conn && pg_sqlstate(conn) ? pg_sqlstate(conn) : "",
                                 "error", conn ? pg_error_message(conn) : "", NULL});
    app__fail(req, "internal", "internal error", NULL);
}

void app__reply(http_req_t *req, int status, json_t *body)
{
    caller_t *c = http_data(req);
    if (c && c->idem)
        app__idempotency_end(req, c, status, body);
    if (status == 204 || !body) {
        json_decref(body);
        http_respond_raw(req, status, NULL, "", 0);
    } else {
        http_respond_json(req, status, body);
    }
}

/* The one place an error is answered: the status is the table's, never
 * the caller's (app__fail). */
static void answer(http_req_t *req, int status, const char *code, const char *message,
                   json_t *details)
{
    caller_t *c = http_data(req);
    if (c && c->idem) {
        json_t *doc = json_pack("{s:{s:s, s:s, s:O?}}", "error", "code", code, "message", message,
                                "details", details);
        app__idempotency_end(req, c, status, doc);
        json_decref(doc);
    }
    http_respond_error(req, status, code, message, details);
}

void app__fail(http_req_t *req, const char *code, const char *message, json_t *details)
{
    int status = errcodes_status(app__of(req)->errors, code);
    if (!status) {
        /* A code missing from schemas/errors.json is our bug (test_errcodes
         * looks for them in the sources); the client gets a plain 500. */
        log_kv(LOG_ERROR, NULL, "unknown API error code",
               (const char *const[]){"request_id", http_request_id(req), "code",
                                     code ? code : "(null)", NULL});
        json_decref(details);
        details = NULL;
        status = 500;
        code = "internal";
        message = "internal error";
    }
    answer(req, status, code, message, details);
}

void app__no_content(http_req_t *req)
{
    app__reply(req, 204, NULL);
}

/* ---- rows ------------------------------------------------------------------------- */

void app__reply_owned(http_req_t *req, pg_conn_t *c, int rc, int status, json_t *body,
                      const char *missing)
{
    if (rc == FENTA_ENOTFOUND)
        app__fail(req, "not_found", missing, NULL);
    else if (rc)
        app__db_error(req, rc, c);
    else if (body)
        app__reply(req, status, json_incref(body));
    else
        app__no_content(req);
    json_decref(body);
}
