/* app.c - the API application: route table from schemas/api.json, the
 * `before` hook (rate limits, authentication, permission, validation,
 * idempotency) and the helpers handlers share. See app.h. */
#include "http/app_internal.h"
#include "json/jsonformat.h"
#include "http/token.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
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

static unsigned scope_bit(const char *name)
{
    for (unsigned i = 0; name && i < 3; i++)
        if (strcmp(name, scope_names[i]) == 0)
            return 1u << i;
    return 0;
}

bool app__is_uuid(const char *s)
{
    return s && jsonformat_uuid(s, strlen(s));
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
        d->scope = scope_bit(json_string_value(json_object_get(p, "scope")));
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

static int before(http_req_t *req, const http_route_t *route);
static void dispatch(http_req_t *req);

/* The listener's callback: a user changed (drop their entries), or
 * notifications may have been missed (drop all; serve only while listening). */
void app__on_identity(const char *payload, void *arg)
{
    app_t *app = arg;
    authcache_forget(app->cache, payload);
    authcache_set_enabled(app->cache, pg_listen_connected(app->listener));
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
    app->webhooks = cfg->webhooks;
    app->types = cfg->types;
    if (cfg->schemas_dir && !(app->schemas_dir = strdup(cfg->schemas_dir))) {
        snprintf(errbuf, errlen, "out of memory");
        goto fail;
    }
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
    cfg->before = before;
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
        app__error(req, 503, "unavailable", "the database is unavailable; retry shortly", NULL);
    } else if (cl) {
        cl->conn = c;
    }
    return c;
}

/* Gives the request's connection back to the pool. */
static void release_conn(http_req_t *req)
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
    release_conn(req);
}

int app__exec(pg_conn_t *conn, const char *sql, int nparams, const char *const *params)
{
    int rc = pg_exec(conn, sql, nparams, params);
    return rc < 0 ? rc : 0;
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
        app__error(req, 503, "unavailable", "the database is unavailable; retry shortly", NULL);
        return;
    }
    if (rc == FENTA_EEXIST || rc == FENTA_ECONFLICT) {
        app__error(req, 409, "conflict", "the request conflicts with the current state", NULL);
        return;
    }
    log_kv(LOG_ERROR, NULL, "database error",
           (const char *const[]){"request_id", http_request_id(req), "code", fenta_strerror(rc),
                                 "sqlstate", conn && pg_sqlstate(conn) ? pg_sqlstate(conn) : "",
                                 "error", conn ? pg_error_message(conn) : "", NULL});
    app__error(req, 500, "internal", "internal error", NULL);
}

/* ---- idempotency ---------------------------------------------------------------- */

static void request_hash(http_req_t *req, char out[65])
{
    size_t len = 0;
    const void *body = http_body(req, &len);
    uint8_t md[CRYPTO_SHA256_LEN] = {0};
    crypto_sha256_2(http_path(req), strlen(http_path(req)), body, body ? len : 0, md);
    crypto_hex(md, sizeof md, out);
}

/* Claims the key, or answers with the recorded response. 0: go on. */
static int idempotency_begin(http_req_t *req, caller_t *c, const route_info_t *ri)
{
    const char *key = http_header(req, "idempotency-key");
    if (!key)
        return 0;
    if (!*key || strlen(key) > 255) {
        app__error(req, 400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 characters",
                   NULL);
        return 1;
    }
    snprintf(c->idem_user, sizeof c->idem_user, "%s",
             c->user_id[0] ? c->user_id : "00000000-0000-0000-0000-000000000000");
    char hash[65];
    request_hash(req, hash);
    pg_conn_t *conn = app__db(req);
    if (!conn)
        return 1;
    int err = 0;
    const char *p[] = {c->idem_user, ri->key, key, hash};
    /* Keys live 24 h; a request that never finished (its process died) holds
     * its key for 5 minutes, then a retry takes it over. */
    pg_result_t *res = pg_query(
        conn,
        "INSERT INTO idempotency_keys (user_id, route, key, request_hash) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (user_id, route, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
        "status = 0, response = NULL, created_at = now() WHERE idempotency_keys.created_at < "
        "now() - interval '24 hours' OR (idempotency_keys.status = 0 AND "
        "idempotency_keys.created_at < now() - interval '5 minutes') RETURNING 1",
        4, p, &err);
    /* Now and then, clear a slice of expired keys. */
    static _Atomic unsigned calls;
    if (res && atomic_fetch_add(&calls, 1) % 1000 == 999)
        pg_exec(conn,
                "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
                "WHERE created_at < now() - interval '24 hours' LIMIT 1000)",
                0, NULL);
    int done = 0;
    if (!res) {
        app__db_error(req, err, conn);
        done = 1;
    } else if (pg_nrows(res) == 1) {
        c->idem = true;
        snprintf(c->idem_key, sizeof c->idem_key, "%s", key);
    } else {
        pg_result_t *old = pg_query(conn,
                                    "SELECT request_hash, status, response FROM idempotency_keys "
                                    "WHERE user_id = $1 AND route = $2 AND key = $3",
                                    3, p, &err);
        done = 1;
        if (!old || pg_nrows(old) != 1) {
            app__db_error(req, old ? FENTA_ECONFLICT : err, conn);
        } else if (strcmp(pg_get(old, 0, 0), hash) != 0) {
            app__error(req, 422, "idempotency_key_reused",
                       "this Idempotency-Key was used with a different request", NULL);
        } else if (atoi(pg_get(old, 0, 1)) == 0) {
            http_add_header(req, "retry-after", "1");
            app__error(req, 409, "idempotency_in_progress",
                       "a request with this Idempotency-Key is still being processed", NULL);
        } else {
            json_t *body =
                json_loads(pg_get(old, 0, 2) ? pg_get(old, 0, 2) : "null", JSON_DECODE_ANY, NULL);
            http_add_header(req, "idempotent-replayed", "true");
            int st = atoi(pg_get(old, 0, 1));
            if (st == 204 || !body) {
                json_decref(body);
                http_respond_raw(req, st, NULL, "", 0);
            } else {
                http_respond_json(req, st, body);
            }
        }
        pg_result_free(&old);
    }
    pg_result_free(&res);
    app__db_done(req, &conn);
    return done;
}

/* Records the final answer (or forgets the key after a server error, so a
 * retry can run again). */
static void idempotency_end(http_req_t *req, caller_t *c, int status, const json_t *body)
{
    c->idem = false;
    pg_conn_t *conn = c->conn;
    int err = 0;
    if (!conn && !(conn = c->conn = pg_acquire(app__of(req)->pool, 3000, &err)))
        return; /* the row stays "in progress": a retry with the key gets 409 */
    const route_info_t *ri = app__route(req);
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *p[] = {c->idem_user, ri->key, c->idem_key, st, text};
    if (status >= 500)
        pg_exec(conn, "DELETE FROM idempotency_keys WHERE user_id = $1 AND route = $2 AND key = $3",
                3, p);
    else
        pg_exec(conn,
                "UPDATE idempotency_keys SET status = $4, response = $5 "
                "WHERE user_id = $1 AND route = $2 AND key = $3",
                5, p);
    free(text);
}

void app__reply(http_req_t *req, int status, json_t *body)
{
    caller_t *c = http_data(req);
    if (c && c->idem)
        idempotency_end(req, c, status, body);
    if (status == 204 || !body) {
        json_decref(body);
        http_respond_raw(req, status, NULL, "", 0);
    } else {
        http_respond_json(req, status, body);
    }
}

void app__error(http_req_t *req, int status, const char *code, const char *message, json_t *details)
{
    caller_t *c = http_data(req);
    if (c && c->idem) {
        json_t *doc = json_pack("{s:{s:s, s:s, s:O?}}", "error", "code", code, "message", message,
                                "details", details);
        idempotency_end(req, c, status, doc);
        json_decref(doc);
    }
    http_respond_error(req, status, code, message, details);
}

void app__no_content(http_req_t *req)
{
    app__reply(req, 204, NULL);
}

/* ---- pagination ------------------------------------------------------------------ */

/* ?sort: "created_at" (oldest first, the default) or "-created_at". */
static int page_sort(http_req_t *req, bool *desc)
{
    const char *sort = http_query(req, "sort");
    *desc = sort && strcmp(sort, "-created_at") == 0;
    if (sort && *sort && strcmp(sort, "created_at") != 0 && !*desc) {
        app__error(req, 400, "invalid_sort", "sort must be created_at or -created_at",
                   json_pack("[{s:s, s:s}]", "path", "$query.sort", "message",
                             "must be created_at or -created_at"));
        return FENTA_EINVAL;
    }
    return 0;
}

int app__page(http_req_t *req, int *limit, json_t **after)
{
    *after = NULL;
    bool desc;
    if (page_sort(req, &desc))
        return FENTA_EINVAL;
    if (cursor_limit(http_query(req, "limit"), 20, CURSOR_LIMIT_MAX, limit) != 0) {
        app__error(req, 400, "invalid_limit", "limit must be a whole number from 1 to 100",
                   json_pack("[{s:s, s:s}]", "path", "$query.limit", "message", "must be 1..100"));
        return FENTA_EINVAL;
    }
    const char *cur = http_query(req, "cursor");
    if (cur && *cur) {
        int err = 0;
        json_t *pos = cursor_decode(app__of(req)->cursor_key, cur, &err);
        json_t *route = pos ? json_object_get(pos, "r") : NULL;
        json_t *last = pos ? json_object_get(pos, "a") : NULL;
        /* A cursor belongs to one list, in one order. */
        if (!pos || !json_is_string(route) ||
            strcmp(json_string_value(route), app__route(req)->key) != 0 ||
            json_is_true(json_object_get(pos, "d")) != desc || json_array_size(last) != 2) {
            json_decref(pos);
            app__error(req, 400, "invalid_cursor",
                       "the cursor is not one this list gave out in this order (or was altered)",
                       NULL);
            return FENTA_EINVAL;
        }
        *after = json_incref(last);
        json_decref(pos);
    }
    return 0;
}

json_t *app__next_cursor(http_req_t *req, const char *created_at, const char *id)
{
    bool desc = false;
    const char *sort = http_query(req, "sort");
    desc = sort && strcmp(sort, "-created_at") == 0;
    json_t *pos =
        json_pack("{s:s, s:[s,s], s:b}", "r", app__route(req)->key, "a", created_at, id, "d", desc);
    char *c = pos ? cursor_encode(app__of(req)->cursor_key, pos) : NULL;
    json_decref(pos);
    json_t *v = c ? json_string(c) : json_null();
    free(c);
    return v;
}

/* Expands a list query template: {cmp} is the keyset comparison and {dir}
 * the order for the chosen sort. The templates are our own constants. */
static char *expand(const char *tmpl, bool desc)
{
    size_t cap = strlen(tmpl) + 64;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *p = tmpl; *p;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "{cmp}", 5) == 0)
            rep = desc ? "<" : ">", skip = 5;
        else if (strncmp(p, "{dir}", 5) == 0)
            rep = desc ? "DESC" : "ASC", skip = 5;
        if (rep) {
            size_t rl = strlen(rep);
            if (o + rl + 1 >= cap && !(out = realloc(out, cap *= 2)))
                return NULL;
            memcpy(out + o, rep, rl);
            o += rl;
            p += skip;
        } else {
            if (o + 2 >= cap && !(out = realloc(out, cap *= 2)))
                return NULL;
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return out;
}

/* Keyset pages over (created_at, id), ascending: rows inserted meanwhile
 * land after the cursor, so no page repeats or skips a row. */
void app__list_page(http_req_t *req, const char *sql, const char *const *params, int nparams,
                    app_row_fn row_json, const char *idcol)
{
    int limit;
    json_t *after;
    if (app__page(req, &limit, &after))
        return;
    pg_conn_t *c = app__db(req);
    if (!c) {
        json_decref(after);
        return;
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *p[8];
    for (int i = 0; i < nparams; i++)
        p[i] = params[i];
    p[nparams] = lim;
    p[nparams + 1] = after ? json_string_value(json_array_get(after, 0)) : NULL;
    p[nparams + 2] = after ? json_string_value(json_array_get(after, 1)) : NULL;
    int err = 0;
    const char *sort = http_query(req, "sort");
    char *q = expand(sql, sort && strcmp(sort, "-created_at") == 0);
    pg_result_t *r = q ? pg_query(c, q, nparams + 3, p, &err) : NULL;
    free(q);
    json_decref(after);
    if (!r) {
        app__db_error(req, err, c);
    } else {
        caller_t *cl = app__caller(req);
        json_t *data =
            cl && cl->list_prefix && !p[nparams + 1] ? json_incref(cl->list_prefix) : json_array();
        int n = pg_nrows(r) < limit ? pg_nrows(r) : limit;
        for (int i = 0; i < n; i++)
            json_array_append_new(data, row_json(app__of(req), r, i));
        json_t *next = pg_nrows(r) > limit ? app__next_cursor(req, pg_getn(r, n - 1, "raw_created"),
                                                              pg_getn(r, n - 1, idcol))
                                           : json_null();
        app__reply(req, 200, json_pack("{s:o, s:o}", "data", data, "next_cursor", next));
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

void app__list_page_under(http_req_t *req, const char *parent_table, const char *missing,
                          const char *sql, const char *const *params, int nparams,
                          app_row_fn row_json, const char *idcol)
{
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char q[160];
    snprintf(q, sizeof q, "SELECT id FROM %s WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
             parent_table);
    pg_result_t *parent = app__load(req, c, q, missing);
    app__db_done(req, &c);
    if (!parent)
        return; /* answered: 404 or the database's error */
    pg_result_free(&parent);
    app__list_page(req, sql, params, nparams, row_json, idcol);
}

/* ---- rows ------------------------------------------------------------------------- */

json_t *app__user_json(const pg_result_t *r, int row)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", pg_getn(r, row, "id"), "email",
                     pg_getn(r, row, "email"), "name", pg_getn(r, row, "name"), "created_at",
                     pg_getn(r, row, "created_at"));
}

void app__reply_row(http_req_t *req, pg_conn_t *c, pg_result_t **r, int err, int status,
                    app_row_fn row_json, const char *missing)
{
    if (!*r)
        app__db_error(req, err, c);
    else if (pg_nrows(*r) != 1)
        app__error(req, 404, "not_found", missing, NULL);
    else if (row_json)
        app__reply(req, status, row_json(app__of(req), *r, 0));
    else
        app__no_content(req);
    pg_result_free(r);
}

void app__soft_delete(http_req_t *req, const char *table, const char *id, const char *missing)
{
    if (!app__is_uuid(id)) {
        app__error(req, 404, "not_found", missing, NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char sql[160];
    snprintf(sql, sizeof sql,
             "UPDATE %s SET deleted_at = now() WHERE id = $1 AND org_id = $2 AND deleted_at IS "
             "NULL RETURNING id",
             table);
    const char *p[] = {id, app__caller(req)->org_id};
    int err = 0;
    pg_result_t *r = pg_query(c, sql, 2, p, &err);
    app__reply_row(req, c, &r, err, 204, NULL, missing);
    app__db_done(req, &c);
}

pg_result_t *app__load(http_req_t *req, pg_conn_t *c, const char *sql, const char *missing)
{
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        app__error(req, 404, "not_found", missing, NULL);
        return NULL;
    }
    const char *p[] = {id, app__caller(req)->org_id};
    int err = 0;
    pg_result_t *r = pg_query(c, sql, 2, p, &err);
    if (!r) {
        app__db_error(req, err, c);
    } else if (pg_nrows(r) != 1) {
        pg_result_free(&r);
        app__error(req, 404, "not_found", missing, NULL);
    }
    return r;
}

json_t *app__org_json(app_t *app, const pg_result_t *r, int row)
{
    (void)app;
    json_t *o = json_pack("{s:s, s:s, s:b, s:s}", "id", pg_getn(r, row, "id"), "name",
                          pg_getn(r, row, "name"), "personal",
                          strcmp(pg_getn(r, row, "personal"), "t") == 0, "created_at",
                          pg_getn(r, row, "created_at"));
    const char *role = pg_getn(r, row, "role");
    if (o && role)
        json_object_set_new(o, "role", json_string(role));
    return o;
}

/* ---- the before hook ------------------------------------------------------------ */

static int limited(http_req_t *req, const ratelimit_result_t *res)
{
    ratelimit_headers_t h;
    ratelimit_headers(res, &h);
    http_add_header(req, "ratelimit-limit", h.limit);
    http_add_header(req, "ratelimit-remaining", h.remaining);
    http_add_header(req, "ratelimit-reset", h.reset);
    if (res->allowed)
        return 0;
    http_add_header(req, "retry-after", h.retry_after);
    http_respond_error(req, 429, "rate_limited", "too many requests; see Retry-After", NULL);
    return 1;
}

static int unauthorized(http_req_t *req, const char *why)
{
    http_add_header(req, "www-authenticate", "Bearer realm=\"fenta\"");
    http_respond_error(req, 401, "unauthorized", why, NULL);
    return 1;
}

const char *app__cookie(http_req_t *req, const char *name, char *buf, size_t cap)
{
    const char *h = http_header(req, "cookie");
    size_t nl = strlen(name);
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= cap)
                return NULL;
            memcpy(buf, p + nl + 1, vl);
            buf[vl] = 0;
            return buf;
        }
        p = end;
    }
    return NULL;
}

/* Who is calling: a session JWT (header or cookie) or a personal access
 * token. 0 with the caller filled, or 1 after answering 401. */
static int authenticate(http_req_t *req, caller_t *c)
{
    app_t *app = app__of(req);
    const char *authz = http_header(req, "authorization");
    char cookiebuf[JWTS_TOKEN_MAX + 1];
    const char *tok = NULL;
    bool from_cookie = false;
    if (authz) {
        if (strncasecmp(authz, "Bearer ", 7) != 0)
            return unauthorized(req, "use 'Authorization: Bearer <token>'");
        tok = authz + 7;
    } else if ((tok = app__cookie(req, "fenta_access", cookiebuf, sizeof cookiebuf))) {
        from_cookie = true;
    } else {
        return unauthorized(req, "authentication required");
    }
    size_t tl = strlen(tok);
    token_kind_t kind = token_classify(tok, tl);
    pg_conn_t *conn = NULL;
    int err = 0;
    if (kind == TOKEN_KIND_PAT && !from_cookie) {
        char hash[TOKEN_HASH_HEX_LEN + 1];
        if (token_hash(tok, tl, hash, sizeof hash) != 0)
            return unauthorized(req, "invalid token");
        if (!(conn = app__db(req)))
            return 1;
        const char *p[] = {hash};
        pg_result_t *r =
            /* last_used_at is kept to the minute: one write a minute per
             * token, not one per request. */
            pg_query(conn,
                     "WITH t AS (SELECT id, user_id, org_id, scopes, last_used_at FROM "
                     "personal_access_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND "
                     "(expires_at IS NULL OR expires_at > now())), u AS (UPDATE "
                     "personal_access_tokens p SET last_used_at = now() FROM t WHERE p.id = t.id "
                     "AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 "
                     "minute')) SELECT id, user_id, org_id, array_to_string(scopes, ',') AS "
                     "scopes FROM t",
                     1, p, &err);
        if (!r) {
            app__db_error(req, err, conn);
            app__db_done(req, &conn);
            return 1;
        }
        int n = pg_nrows(r);
        if (n == 1) {
            snprintf(c->pat_id, sizeof c->pat_id, "%s", pg_get(r, 0, 0));
            snprintf(c->user_id, sizeof c->user_id, "%s", pg_get(r, 0, 1));
            snprintf(c->token_org, sizeof c->token_org, "%s", pg_get(r, 0, 2));
            char scopes[64];
            snprintf(scopes, sizeof scopes, "%s", pg_get(r, 0, 3));
            for (char *s = strtok(scopes, ","); s; s = strtok(NULL, ","))
                c->scopes |= scope_bit(s);
            c->via = "pat";
        }
        pg_result_free(&r);
        app__db_done(req, &conn);
        return n == 1 ? 0 : unauthorized(req, "invalid, expired or revoked token");
    }
    if (kind != TOKEN_KIND_JWT)
        return unauthorized(req, "invalid token");
    jwts_claims_t cl;
    const char *why = NULL;
    if (jwts_verify(app->jwt, tok, tl, &cl, &why) != 0)
        return unauthorized(req, "invalid or expired access token");
    if (from_cookie && strcmp(http_method(req), "GET") != 0 &&
        strcmp(http_method(req), "HEAD") != 0) {
        const char *csrf = http_header(req, "x-csrf-token");
        if (!csrf || jwts_csrf_check(app->jwt, cl.sid, csrf, strlen(csrf)) != 0) {
            http_respond_error(req, 403, "csrf", "missing or wrong X-CSRF-Token", NULL);
            return 1;
        }
    }
    /* A revoked session (logout, refresh-token reuse) ends its access tokens at
     * once: known-live sessions come from the cache, which every revocation
     * clears (authcache.h); anything else is read from the database. */
    if (authcache_session_live(app->cache, cl.sid, cl.sub))
        goto live;
    uint64_t seq = authcache_seq(app->cache);
    if (!(conn = app__db(req)))
        return 1;
    const char *p[] = {cl.sid, cl.sub};
    pg_result_t *r = app__is_uuid(cl.sid) && app__is_uuid(cl.sub)
                         ? pg_query(conn,
                                    "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 "
                                    "AND revoked_at IS NULL",
                                    2, p, &err)
                         : NULL;
    if (!r && err) {
        app__db_error(req, err, conn);
        app__db_done(req, &conn);
        return 1;
    }
    int n = r ? pg_nrows(r) : 0;
    pg_result_free(&r);
    app__db_done(req, &conn);
    if (n != 1)
        return unauthorized(req, "the session has ended");
    authcache_session_put(app->cache, seq, cl.sid, cl.sub);
live:
    snprintf(c->user_id, sizeof c->user_id, "%s", cl.sub);
    snprintf(c->session_id, sizeof c->session_id, "%s", cl.sid);
    snprintf(c->token_org, sizeof c->token_org, "%s", cl.org);
    c->scopes = SCOPE_ALL;
    c->via = from_cookie ? "cookie" : "jwt";
    return 0;
}

/* The permission table decides: the token's scope, then, on organisation
 * routes, membership (none: 404, as if the organisation did not exist) and
 * the role. 0, or 1 after answering. */
static int authorize(http_req_t *req, caller_t *c, const route_info_t *ri)
{
    const perm_t *perm = &app__of(req)->perms[ri->perm];
    if (!(c->scopes & perm->scope)) {
        http_respond_error(req, 403, "insufficient_scope",
                           "this token's scopes do not allow this request",
                           json_pack("{s:s}", "required_scope",
                                     perm->scope == SCOPE_READ    ? "read"
                                     : perm->scope == SCOPE_WRITE ? "write"
                                                                  : "admin"));
        return 1;
    }
    /* Organisation routes without the organisation in their path act in
     * the one X-Org-Id names, else the token's own. */
    const char *org = NULL;
    if (ri->org_param[0])
        org = http_param(req, ri->org_param);
    else if (perm->roles == 0)
        return 0;
    else if (!(org = http_header(req, "x-org-id")) || !*org)
        org = c->token_org;
    if (!app__is_uuid(org) || (c->pat_id[0] && strcasecmp(org, c->token_org) != 0)) {
        http_respond_error(req, 404, "not_found", "no such organisation", NULL);
        return 1;
    }
    pg_conn_t *conn = app__db(req);
    if (!conn)
        return 1;
    int err = 0;
    const char *p[] = {org, c->user_id};
    pg_result_t *r = pg_query(
        conn, "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2", 2, p, &err);
    int rc = 0;
    if (!r) {
        app__db_error(req, err, conn);
        rc = 1;
    } else if (pg_nrows(r) != 1) {
        http_respond_error(req, 404, "not_found", "no such organisation", NULL);
        rc = 1;
    } else {
        c->role = app__role_bit(pg_get(r, 0, 0));
        snprintf(c->org_id, sizeof c->org_id, "%s", org);
        if (!(c->role & perm->roles)) {
            http_respond_error(req, 403, "forbidden",
                               "your role in this organisation does not allow this",
                               json_pack("{s:s}", "role", app__role_name(c->role)));
            rc = 1;
        }
    }
    pg_result_free(&r);
    app__db_done(req, &conn);
    if (!rc)
        http_log_field(req, "org_id", c->org_id);
    return rc;
}

static int validate(http_req_t *req, const route_info_t *ri)
{
    if (!ri->request)
        return 0;
    json_t *body = http_read_json(req);
    if (!body)
        return 1; /* 400/415 answered */
    json_t *problems = NULL;
    if (jsonschema_validate(ri->request, body, &problems) != 0) {
        http_respond_error(req, 400, "invalid_request", "the request body is not valid", problems);
        return 1;
    }
    return 0;
}

static int checks(http_req_t *req, const http_route_t *route);

static int before(http_req_t *req, const http_route_t *route)
{
    int rc = checks(req, route);
    if (rc)
        release_conn(req); /* answered: the handler will not run */
    return rc;
}

static int checks(http_req_t *req, const http_route_t *route)
{
    app_t *app = app__of(req);
    const route_info_t *ri = route->data;
    caller_t *c = app__caller(req);
    if (!c) {
        http_respond_error(req, 503, "unavailable", "out of memory", NULL);
        return 1;
    }
    ratelimit_result_t acc = {.allowed = true, .limit = -1}, r;
    char key[RATELIMIT_MAX_KEY];
    const char *ip = http_client_ip(req);
    if (app->limits->has_ip) {
        snprintf(key, sizeof key, "ip:%s", ip);
        if (ratelimit_take(app->rl, key, app->limits->ip.rate, app->limits->ip.burst, &r) == 0)
            ratelimit_result_merge(&acc, &r);
    }
    const ratelimit_limit_t *rl = ratelimit_config_route(app->limits, ri->key);
    if (rl) {
        snprintf(key, sizeof key, "route:%s|ip:%s", ri->key, ip);
        if (ratelimit_take(app->rl, key, rl->rate, rl->burst, &r) == 0)
            ratelimit_result_merge(&acc, &r);
    }
    if (acc.limit >= 0 && limited(req, &acc))
        return 1;
    if (ri->auth) {
        if (authenticate(req, c))
            return 1;
        http_log_field(req, "user_id", c->user_id);
        if (app->limits->has_user) {
            snprintf(key, sizeof key, "user:%s", c->user_id);
            if (ratelimit_take(app->rl, key, app->limits->user.rate, app->limits->user.burst, &r) ==
                    0 &&
                limited(req, &r))
                return 1;
        }
        if (authorize(req, c, ri))
            return 1;
    }
    if (validate(req, ri))
        return 1;
    if (ri->idempotent && idempotency_begin(req, c, ri))
        return 1;
    return 0;
}
