/* app_internal.h - what the API application's files share (app__ prefix):
 * the compiled route table, the caller of a request, and the helpers every
 * handler uses to reach the database and to answer. Only http/app*.c and
 * http/h_*.c include it. */
#ifndef FENTA_APP_INTERNAL_H
#define FENTA_APP_INTERNAL_H
#include "http/app.h"
#include "http/authcache.h"
#include "http/cursor.h"
#include "http/errcodes.h"
#include "json/jsonschema.h"
#include "http/jwt.h"
#include "http/ratelimit.h"
#include "http/request.h"
#include "http/sse_hub.h"
#include "storage/db.h"
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>

#define UUID_LEN 36
#define ID_FIELD 65 /* an id from a token: up to JWTS_ID_MAX characters */
/* A route's request body limit when api.json names none. */
#define APP_DEFAULT_MAX_BODY (1024 * 1024)

/* Roles and scopes as bits; their names live in schemas/api.json. */
enum { ROLE_OWNER = 1, ROLE_ADMIN = 2, ROLE_EDITOR = 4, ROLE_VIEWER = 8 };
enum { SCOPE_READ = 1, SCOPE_WRITE = 2, SCOPE_ADMIN = 4, SCOPE_ALL = 7 };

typedef struct {
    char name[48];  /* "members.invite" */
    unsigned roles; /* ROLE_* allowed in the route's organisation (0: no organisation) */
    unsigned scope; /* the SCOPE_* a personal access token needs */
} perm_t;

typedef struct {
    char key[160];         /* "POST /v1/orgs/{id}/members": limits and logs */
    char method[8];        /* "POST" */
    char path[150];        /* "/v1/orgs/{id}/members" */
    char operation[48];    /* handler name from api.json */
    bool auth;             /* a caller is required */
    int perm;              /* index in app->perms, -1 for public routes */
    char org_param[32];    /* the path parameter naming the organisation, "" if none */
    jsonschema_t *request; /* body schema, NULL when the route takes no body */
    int status;            /* the success status */
    bool idempotent;       /* honours Idempotency-Key */
    size_t max_body;       /* request body bytes (api.json max_body_bytes); larger -> 413 */
    http_handler_fn fn;    /* the operation's handler */
} route_info_t;

struct app {
    pg_pool_t *pool;                            /* the database (borrowed) */
    jwts_t *jwt;                                /* access tokens and CSRF tokens */
    ratelimit_t *rl;                            /* buckets */
    ratelimit_config_t *limits;                 /* limits */
    unsigned char cursor_key[CURSOR_KEY_BYTES]; /* signs pagination cursors */
    password_params_t pw;                       /* argon2id cost */
    bool insecure_cookies;                      /* no Secure attribute */
    perm_t *perms;                              /* the permission table */
    size_t nperms;
    authcache_t *cache;            /* live sessions and identity documents */
    pg_listener_t *listener;       /* keeps the cache honest; NULL = cache off */
    runtime_t *rt;                 /* starts and steers job actors (borrowed) */
    const workflow_types_t *types; /* node types (borrowed or owned_types) */
    workflow_types_t *owned_types; /* loaded here when the config gave none */
    objects_t *objects;            /* presigns artifact URLs (borrowed) */
    int presign_ttl_s;             /* their lifetime and the longest ?expires_in */
    char *schemas_dir;             /* NULL = default */
    sse_hub_t *hub;                /* live job events for SSE streams; NULL = none */
    int sse_heartbeat_ms;          /* the hub's heartbeat (app_config_t) */
    webhooks_t *webhooks;          /* webhook deliveries (borrowed); NULL = none */
    errcodes_t *errors;            /* schemas/errors.json: each error code's status */
    route_info_t *routes;          /* one per route of api.json */
    http_route_t *hroutes;         /* the same, as the server's table */
    size_t nroutes;
};

/* The caller of a request (http_data), filled by the before hook. */
typedef struct {
    pg_conn_t *conn;           /* the request's database connection, once taken */
    char user_id[ID_FIELD];    /* "" for public routes */
    char session_id[ID_FIELD]; /* the session (JWT sid), "" for a PAT */
    char pat_id[UUID_LEN + 1]; /* the PAT, "" for a session */
    char token_org[ID_FIELD];  /* the PAT's organisation, or the JWT's org claim */
    unsigned scopes;           /* SCOPE_* granted (all for sessions) */
    const char *via;           /* "jwt", "pat", "cookie" */
    char org_id[UUID_LEN + 1]; /* the route's organisation, once authorised */
    unsigned role;             /* the caller's ROLE_* there */
    bool idem;                 /* an idempotency record is held for this request */
    char idem_key[256];        /* its key */
    char idem_user[ID_FIELD];  /* its owner (the nil uuid for public routes) */
    json_t *list_prefix;       /* rows app__reply_page puts before the first page (owned) */
} caller_t;

app_t *app__of(const http_req_t *req);
caller_t *app__caller(http_req_t *req);
const route_info_t *app__route(const http_req_t *req);

/* The request's database connection (taken on first use, kept for the rest of
 * the request: the before hook and the handler share it), or NULL after
 * answering 503. app__db_done only forgets the caller's pointer; the
 * connection goes back to the pool when the request's handler returns. */
pg_conn_t *app__db(http_req_t *req);
void app__db_done(http_req_t *req, pg_conn_t **conn);
/* Answers for a failed database call: 503 (down), 409 (conflict), 500. */
void app__db_error(http_req_t *req, int rc, pg_conn_t *conn);

/* Answers (and records the answer under the request's idempotency key). */
void app__reply(http_req_t *req, int status, json_t *body);
/* Answers the error code (schemas/errors.json gives its status) with
 * message and details (stolen, may be NULL). A code the table lacks is our
 * bug: it is logged and answered as 500 internal. */
void app__fail(http_req_t *req, const char *code, const char *message, json_t *details);
void app__no_content(http_req_t *req);

/* Pagination: ?limit and ?cursor. 0 and *after (NULL for the first page, else
 * the caller's [created_at, id] array); or the request was answered 400. */
int app__page(http_req_t *req, int *limit, json_t **after);
/* The next_cursor value for a page that ended at (created_at, id). */
json_t *app__next_cursor(http_req_t *req, const char *created_at, const char *id);

/* ?limit, ?sort and ?cursor as a storage page (storage/db.h), or
 * FENTA_EINVAL after answering 400. The page's strings are borrowed from
 * *hold, which the caller frees with json_decref once the page is read. */
int app__page_of(http_req_t *req, db_page_t *page, json_t **hold);
/* Answers 200 {"data", "next_cursor"} with the rows read for page (taken:
 * *rows is emptied), after the request's list_prefix on a first page. */
void app__reply_page(http_req_t *req, const db_page_t *page, db_page_rows_t *rows);
/* Reads one page through list (a table owner's list call with the
 * handler's filters in arg) and answers it, or answers the error: the
 * page parameters' 400, the database's 503/409/500. */
typedef int (*app_list_fn)(http_req_t *req, pg_conn_t *c, void *arg, const db_page_t *page,
                           db_page_rows_t *out);
void app__list(http_req_t *req, app_list_fn list, void *arg);
/* A storage owner's list of an organisation's rows (schedules_db_list...). */
typedef int (*app_org_list_fn)(pg_conn_t *c, const char *org_id, const db_page_t *page,
                               db_page_rows_t *out);
/* app__list of the caller's organisation's rows, read by list_fn. */
void app__list_org(http_req_t *req, app_org_list_fn list_fn);
/* Answers what a storage owner's page read gave (rc its result, c the
 * connection it used): the database's error, else app__reply_page. */
void app__reply_list(http_req_t *req, pg_conn_t *c, int rc, const db_page_t *page,
                     db_page_rows_t *rows);
/* Answers the outcome rc of a table owner's call (storage/<table>_db.h):
 * 404 {"not_found", missing} for FENTA_ENOTFOUND, the database's error for
 * another code, else status with body, or 204 when body is NULL. body is
 * taken in every case. */
void app__reply_owned(http_req_t *req, pg_conn_t *c, int rc, int status, json_t *body,
                      const char *missing);
/* The value of cookie name (copied into buf), NULL when absent or longer than cap. */
const char *app__cookie(http_req_t *req, const char *name, char *buf, size_t cap);
/* Role names <-> bits. */
unsigned app__role_bit(const char *name);
const char *app__role_name(unsigned bit);
/* A token scope name ("read", "write", "admin") -> its bit; 0 when unknown. */
unsigned app__scope_bit(const char *name);
bool app__is_uuid(const char *s);

/* The before hook (app_before.c): http_config_t.before of every API route.
 * 0: run the handler; 1: the request was answered (and its connection
 * released). */
int app__before(http_req_t *req, const http_route_t *route);
/* Gives the request's connection back to the pool (app.c). */
void app__release_conn(http_req_t *req);
/* Idempotency keys (app_idempotency.c). _begin claims the request's
 * Idempotency-Key, or answers with the recorded response (or 400, 409,
 * 422): 0 go on, 1 answered. _end records the final answer, or forgets the
 * key after a server error so a retry can run again; app__reply and
 * app__fail call it. */
int app__idempotency_begin(http_req_t *req, caller_t *c, const route_info_t *ri);
void app__idempotency_end(http_req_t *req, caller_t *c, int status, const json_t *body);

/* Whether doc, a spec, template, graph or inputs a client wrote at JSON
 * path root ("$.spec"), names no server path and no malformed key
 * (render_sources_check); if it does, answers 400 with code, every problem
 * in details ({"path", "keyword", "message"}), and returns false. Whose
 * keys they are is checked when a job reads them (actors/jobs/job_internal.h),
 * where a missing object gets the same answer. */
bool app__sources_ok(http_req_t *req, const json_t *doc, const char *root, const char *code);

/* pg_listen callback for the identity channel (app.c). */
void app__on_identity(const char *payload, void *arg);

/* Handlers (h_auth.c, h_tokens.c, h_orgs.c). */
void h_auth_register(http_req_t *req);
void h_auth_login(http_req_t *req);
void h_auth_refresh(http_req_t *req);
void h_auth_logout(http_req_t *req);
void h_me_get(http_req_t *req);
void h_tokens_create(http_req_t *req);
void h_tokens_list(http_req_t *req);
void h_tokens_delete(http_req_t *req);
void h_orgs_create(http_req_t *req);
void h_orgs_list(http_req_t *req);
void h_orgs_get(http_req_t *req);
void h_members_list(http_req_t *req);
void h_members_invite(http_req_t *req);
void h_members_update(http_req_t *req);
void h_members_remove(http_req_t *req);
void h_invitations_accept(http_req_t *req);
void h_node_types_list(http_req_t *req);
void h_workflows_create(http_req_t *req);
void h_workflows_list(http_req_t *req);
void h_workflows_get(http_req_t *req);
void h_workflows_update(http_req_t *req);
void h_workflows_delete(http_req_t *req);
void h_workflow_versions_list(http_req_t *req);
void h_workflows_validate(http_req_t *req);
void h_workflows_estimate(http_req_t *req);
void h_workflows_run(http_req_t *req);
void h_templates_list(http_req_t *req);
void h_templates_create(http_req_t *req);
void h_templates_get(http_req_t *req);
void h_templates_update(http_req_t *req);
void h_templates_delete(http_req_t *req);
void h_schedules_create(http_req_t *req);
void h_schedules_list(http_req_t *req);
void h_schedules_get(http_req_t *req);
void h_schedules_update(http_req_t *req);
void h_schedules_delete(http_req_t *req);
void h_schedules_pause(http_req_t *req);
void h_schedules_resume(http_req_t *req);
void h_schedules_preview(http_req_t *req);
void h_schedule_runs_list(http_req_t *req);
void h_webhook_event_types(http_req_t *req);
void h_webhooks_create(http_req_t *req);
void h_webhooks_list(http_req_t *req);
void h_webhooks_get(http_req_t *req);
void h_webhooks_update(http_req_t *req);
void h_webhooks_delete(http_req_t *req);
void h_webhooks_rotate(http_req_t *req);
void h_webhooks_test(http_req_t *req);
void h_webhook_deliveries_list(http_req_t *req);
void h_webhook_redeliver(http_req_t *req);
void h_renders_create(http_req_t *req);
void h_jobs_list(http_req_t *req);
void h_jobs_get(http_req_t *req);
void h_jobs_cancel(http_req_t *req);
void h_jobs_retry(http_req_t *req);
void h_jobs_events(http_req_t *req);
void h_events_stream(http_req_t *req);

/* Jobs (h_jobs.c): after a job's row is inserted, starts its actor and
 * answers 202 with the job (or removes the row and answers 503). */
void app__job_started(http_req_t *req, pg_conn_t *c, const char *job_id);
/* How the artifact URLs of one answer are signed. */
typedef struct {
    int ttl_s;      /* lifetime; 0 = the application's presign_ttl_s */
    const char *ip; /* the client address they are bound to; NULL = any */
} app_presign_t;
/* Adds presigned "url" and "expires_at" to each artifact (in place), signed
 * as o says (NULL: the application's lifetime, unbound); an IP-bound one
 * also gets "ip". */
json_t *app__artifact_urls(app_t *app, json_t *artifacts, const app_presign_t *o);
/* The hub that feeds this application's SSE streams (h_events.c). */
sse_hub_t *app__hub_new(app_t *app, const char *conninfo);

#endif
