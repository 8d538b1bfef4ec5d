/* app_before.c - the `before` hook every API route runs through before its
 * handler: rate limits (per IP, route and user), authentication (session
 * JWT, cookie with CSRF check, or personal access token), authorisation
 * from the permission table, request-body validation, and claiming the
 * idempotency key. Each check answers the request itself when it stops it. */
#include "http/app_internal.h"
#include "http/token.h"
#include "runtime/error.h"
#include "storage/memberships_db.h"
#include "storage/sessions_db.h"
#include "storage/tokens_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    app__fail(req, "rate_limited", "too many requests; see Retry-After", NULL);
    return 1;
}

static int unauthorized(http_req_t *req, const char *why)
{
    http_add_header(req, "www-authenticate", "Bearer realm=\"fenta\"");
    app__fail(req, "unauthorized", why, NULL);
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
        tokens_db_auth_t t;
        err = tokens_db_authenticate(conn, hash, &t);
        if (err && err != FENTA_ENOTFOUND) {
            app__db_error(req, err, conn);
            app__db_done(req, &conn);
            return 1;
        }
        app__db_done(req, &conn);
        if (err)
            return unauthorized(req, "invalid, expired or revoked token");
        snprintf(c->pat_id, sizeof c->pat_id, "%s", t.id);
        snprintf(c->user_id, sizeof c->user_id, "%s", t.user_id);
        snprintf(c->token_org, sizeof c->token_org, "%s", t.org_id);
        char *save = NULL;
        for (char *s = strtok_r(t.scopes, ",", &save); s; s = strtok_r(NULL, ",", &save))
            c->scopes |= app__scope_bit(s);
        c->via = "pat";
        return 0;
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
            app__fail(req, "csrf", "missing or wrong X-CSRF-Token", NULL);
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
    /* Ids that are not uuids name no session; asking would be a 500. */
    err = app__is_uuid(cl.sid) && app__is_uuid(cl.sub) ? sessions_db_live(conn, cl.sid, cl.sub)
                                                       : FENTA_ENOTFOUND;
    if (err && err != FENTA_ENOTFOUND) {
        app__db_error(req, err, conn);
        app__db_done(req, &conn);
        return 1;
    }
    app__db_done(req, &conn);
    if (err)
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
        app__fail(req, "insufficient_scope", "this token's scopes do not allow this request",
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
        app__fail(req, "not_found", "no such organisation", NULL);
        return 1;
    }
    pg_conn_t *conn = app__db(req);
    if (!conn)
        return 1;
    char role[MEMBERSHIPS_DB_ROLE_MAX];
    int err = memberships_db_role(conn, org, c->user_id, role);
    int rc = 0;
    if (err == FENTA_ENOTFOUND) {
        app__fail(req, "not_found", "no such organisation", NULL);
        rc = 1;
    } else if (err) {
        app__db_error(req, err, conn);
        rc = 1;
    } else {
        c->role = app__role_bit(role);
        /* org passed app__is_uuid above, so it fits. The length is looked
         * at only because GCC, inlining differently in this file than in
         * app.c, warns that a token_org-sized string might not fit. */
        if (snprintf(c->org_id, sizeof c->org_id, "%s", org) >= (int)sizeof c->org_id)
            c->org_id[0] = '\0';
        if (!(c->role & perm->roles)) {
            app__fail(req, "forbidden", "your role in this organisation does not allow this",
                      json_pack("{s:s}", "role", app__role_name(c->role)));
            rc = 1;
        }
    }
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
        app__fail(req, "invalid_request", "the request body is not valid", problems);
        return 1;
    }
    return 0;
}

static int checks(http_req_t *req, const http_route_t *route);

int app__before(http_req_t *req, const http_route_t *route)
{
    int rc = checks(req, route);
    if (rc)
        app__release_conn(req); /* answered: the handler will not run */
    return rc;
}

static int checks(http_req_t *req, const http_route_t *route)
{
    app_t *app = app__of(req);
    const route_info_t *ri = route->data;
    caller_t *c = app__caller(req);
    if (!c) {
        app__fail(req, "unavailable", "out of memory", NULL);
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
    if (ri->idempotent && app__idempotency_begin(req, c, ri))
        return 1;
    return 0;
}
