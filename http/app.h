/* app.h - the Fenta API application: the routes of schemas/api.json bound to
 * their handlers, with authentication (JWT, personal access tokens, cookies
 * with CSRF), one permission table for every role and token scope, request
 * validation against schemas/models.json, rate limits and idempotency keys,
 * all run in the server's `before` hook on worker threads. */
#ifndef FENTA_APP_H
#define FENTA_APP_H
#include "http/password.h"
#include "http/server.h"
#include "actors/workflow/workflow.h"
#include "runtime/runtime.h"
#include "storage/objects.h"
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct app app_t;

/* The default lifetime of presigned artifact URLs: one hour. */
#define APP_PRESIGN_TTL_S 3600
typedef struct webhooks webhooks_t;

typedef struct {
    pg_pool_t *pool;               /* the database (borrowed) */
    const unsigned char *secret;   /* JWT and cursor key material (copied), >= 32 bytes */
    size_t secret_len;             /* bytes in secret */
    const char *issuer;            /* JWT iss; NULL = "fenta" */
    const char *audience;          /* JWT aud; NULL = "fenta-api" */
    const json_t *api;             /* schemas/api.json (borrowed during app_new) */
    const json_t *models;          /* schemas/models.json (borrowed during app_new) */
    const json_t *errors;          /* schemas/errors.json (borrowed during app_new); NULL =
                                      read from schemas_dir */
    const json_t *limits;          /* rate limits (ratelimit.h format); NULL = defaults */
    const password_params_t *pw;   /* argon2id cost; NULL = OWASP defaults */
    bool insecure_cookies;         /* omit Secure on cookies (plain-HTTP development only) */
    const char *listen_conninfo;   /* LISTEN for identity changes there (the database); NULL =
                                      no authentication cache, no live job events */
    runtime_t *rt;                 /* jobs are started and steered through it; NULL = the job
                                      routes answer 503 */
    const workflow_types_t *types; /* node types (borrowed); NULL = loaded from schemas_dir */
    objects_t *objects;            /* presigns artifact URLs (borrowed); NULL = no URLs */
    int presign_ttl_s;             /* how long artifact URLs work, and the longest a client may
                                      ask for with ?expires_in; 0 = APP_PRESIGN_TTL_S */
    const char *schemas_dir;       /* templates and render schemas; NULL = the default */
    webhooks_t *webhooks;          /* webhook deliveries (borrowed); NULL = the webhook routes
                                      answer 503 */
    int sse_heartbeat_ms;          /* a comment line on every event stream this often; 0 = 15 s */
} app_config_t;

/* Compiles the route table, schemas and limits. NULL with a message. */
app_t *app_new(const app_config_t *cfg, char *errbuf, size_t errlen);
void app_destroy(app_t **app_p);
/* Fills an http_config_t's app, before and ready members. */
void app_bind(app_t *app, http_config_t *cfg);
/* Adds the API's routes and the built-in endpoints to the server. */
int app_install(app_t *app, http_server_t *server);

#endif
