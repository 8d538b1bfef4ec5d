/* h_auth.c - register, login, refresh (rotation with reuse detection),
 * logout and /v1/me.
 *
 * A session is a refresh-token family (table sessions). Every refresh
 * rotates the token; presenting a token that was already rotated means it
 * was copied, so the whole session is revoked, and with it every access
 * token of the session (authenticate() checks the session on each request). */
#include "http/app_internal.h"
#include "http/token.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "storage/memberships_db.h"
#include "storage/orgs_db.h"
#include "storage/sessions_db.h"
#include "storage/users_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sets the access, refresh and CSRF cookies for browser clients. */
static void set_cookies(http_req_t *req, const char *access, long access_ttl, const char *refresh,
                        const char *csrf)
{
    const char *secure = app__of(req)->insecure_cookies ? "" : "; Secure";
    char v[JWTS_TOKEN_MAX + 256];
    snprintf(v, sizeof v, "fenta_access=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Strict%s",
             access, access_ttl, secure);
    http_add_header(req, "set-cookie", v);
    snprintf(v, sizeof v,
             "fenta_refresh=%s; Path=/v1/auth; Max-Age=%d; HttpOnly; SameSite=Strict%s", refresh,
             SESSIONS_DB_REFRESH_TTL_S, secure);
    http_add_header(req, "set-cookie", v);
    /* Readable by the page's script, which echoes it in X-CSRF-Token. */
    snprintf(v, sizeof v, "fenta_csrf=%s; Path=/; Max-Age=%d; SameSite=Strict%s", csrf,
             SESSIONS_DB_REFRESH_TTL_S, secure);
    http_add_header(req, "set-cookie", v);
}

/* Issues tokens for an existing session and answers with the session
 * document: user, org, access and refresh tokens, csrf token. */
static void answer_session(http_req_t *req, pg_conn_t *c, const char *user_id, const char *org_id,
                           const char *sid, const char *refresh, int status)
{
    app_t *app = app__of(req);
    json_t *user = NULL, *org = NULL;
    int err = users_db_get(c, user_id, &user);
    if (!err)
        err = orgs_db_get_for_user(c, org_id, user_id, &org);
    char access[JWTS_TOKEN_MAX + 1], csrf[JWTS_CSRF_LEN + 1];
    jwts_claims_t issued;
    if (err || jwts_sign(app->jwt, user_id, org_id, sid, access, sizeof access, &issued) != 0 ||
        jwts_csrf_make(app->jwt, sid, csrf, sizeof csrf) != 0) {
        /* A user or membership that vanished meanwhile is our failure to
         * answer, not the client's: 500 as for any other error. */
        app__db_error(req, err && err != FENTA_ENOTFOUND ? err : FENTA_EIO, c);
    } else {
        long ttl = (long)(issued.exp - issued.iat);
        json_t *doc = json_pack("{s:O, s:O, s:s, s:s, s:s, s:I, s:s}", "user", user, "org", org,
                                "access_token", access, "refresh_token", refresh, "token_type",
                                "Bearer", "expires_in", (json_int_t)ttl, "csrf_token", csrf);
        set_cookies(req, access, ttl, refresh, csrf);
        http_add_header(req, "cache-control", "no-store");
        app__reply(req, status, doc);
    }
    json_decref(user);
    json_decref(org);
}

/* Adds a fresh refresh token to session sid; its secret into out. */
static int new_refresh(pg_conn_t *c, const char *sid, char out[TOKEN_SECRET_MAX + 1])
{
    char hash[TOKEN_HASH_HEX_LEN + 1];
    if (token_generate(TOKEN_KIND_REFRESH, out, TOKEN_SECRET_MAX + 1) != 0 ||
        token_hash(out, strlen(out), hash, sizeof hash) != 0)
        return FENTA_EIO;
    return sessions_db_add_refresh(c, sid, hash);
}

/* A new session for user_id with its first refresh token, answered as the
 * session document with cookies. */
static void issue_session(http_req_t *req, pg_conn_t *c, const char *user_id, const char *org_id,
                          int status)
{
    char sid[DB_ID_LEN + 1], refresh[TOKEN_SECRET_MAX + 1];
    int err = sessions_db_create(c, user_id, sid);
    if (!err)
        err = new_refresh(c, sid, refresh);
    if (err)
        app__db_error(req, err, c);
    else
        answer_session(req, c, user_id, org_id, sid, refresh, status);
}

typedef struct {
    const char *email, *name, *hash; /* the account */
    char user_id[DB_ID_LEN + 1];     /* made */
    char org_id[DB_ID_LEN + 1];      /* its personal organisation */
} signup_t;

/* One transaction: the user, their personal organisation and the owner
 * membership exist together or not at all. */
static int signup_tx(pg_conn_t *c, void *arg)
{
    signup_t *s = arg;
    char *workspace = NULL;
    json_t *org = NULL;
    int err = users_db_insert(c, s->email, s->name, s->hash, s->user_id);
    if (!err && asprintf(&workspace, "%s's workspace", s->name) < 0) {
        workspace = NULL;
        err = FENTA_ENOMEM;
    }
    if (!err)
        err = orgs_db_insert(c, workspace, true, s->user_id, &org);
    if (!err)
        snprintf(s->org_id, sizeof s->org_id, "%s", json_string_value(json_object_get(org, "id")));
    if (!err)
        err = memberships_db_insert(c, s->org_id, s->user_id, "owner");
    free(workspace);
    json_decref(org);
    return err;
}

void h_auth_register(http_req_t *req)
{
    json_t *b = http_json_body(req, NULL);
    const char *email = json_string_value(json_object_get(b, "email"));
    const char *password = json_string_value(json_object_get(b, "password"));
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *why = NULL;
    if (password_policy_check(password, strlen(password), &why) != 0) {
        app__fail(req, "invalid_request", "the request body is not valid",
                  json_pack("[{s:s, s:s, s:s}]", "path", "$.password", "keyword", "policy",
                            "message", why ? why : "password too weak"));
        return;
    }
    char hash[PASSWORD_HASH_MAX];
    if (password_hash(&app__of(req)->pw, password, strlen(password), hash, sizeof hash) != 0) {
        app__fail(req, "internal", "could not hash the password", NULL);
        return;
    }
    signup_t su = {.email = email, .name = name, .hash = hash};
    int err = pg_tx(app__of(req)->pool, signup_tx, &su);
    if (err == FENTA_EEXIST) {
        app__fail(req, "email_taken", "an account with this email already exists", NULL);
        return;
    }
    if (err) {
        app__db_error(req, err, NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    issue_session(req, c, su.user_id, su.org_id, 201);
    app__db_done(req, &c);
}

void h_auth_login(http_req_t *req)
{
    json_t *b = http_json_body(req, NULL);
    const char *email = json_string_value(json_object_get(b, "email"));
    const char *password = json_string_value(json_object_get(b, "password"));
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char user_id[DB_ID_LEN + 1], *pwhash = NULL;
    int err = users_db_credentials(c, email, user_id, &pwhash);
    if (err && err != FENTA_ENOTFOUND) {
        app__db_error(req, err, c);
        app__db_done(req, &c);
        return;
    }
    bool ok = false;
    if (!err) {
        ok = password_verify(pwhash, password, strlen(password)) == 0;
    } else {
        /* Unknown email: spend what a real verification costs, so timing
         * does not tell which emails have accounts. */
        password_verify_dummy(&app__of(req)->pw, password, strlen(password));
    }
    free(pwhash);
    char org[DB_ID_LEN + 1];
    if (!ok) {
        app__fail(req, "invalid_credentials", "wrong email or password", NULL);
    } else if ((err = memberships_db_pick_org(c, user_id, NULL, NULL, org)) == 0) {
        issue_session(req, c, user_id, org, 200);
    } else {
        /* Registration gives every account one: its absence, or a failure
         * to read it, is ours. */
        app__fail(req, "internal", "the account has no organisation", NULL);
    }
    app__db_done(req, &c);
}

typedef struct {
    const char *hash; /* the presented token's hash */
    char user_id[UUID_LEN + 1];
    char sid[UUID_LEN + 1];
    char fresh[TOKEN_SECRET_MAX + 1];
    int outcome; /* 0 rotated, 1 unknown/expired, 2 reuse detected */
} refresh_t;

/* One transaction: lock the token's row; a rotated one revokes the session. */
static int refresh_tx(pg_conn_t *c, void *arg)
{
    refresh_t *rf = arg;
    sessions_db_refresh_t t;
    int err = sessions_db_refresh_lock(c, rf->hash, &t);
    rf->outcome = 1;
    if (err)
        return err == FENTA_ENOTFOUND ? 0 : err;
    snprintf(rf->sid, sizeof rf->sid, "%s", t.sid);
    snprintf(rf->user_id, sizeof rf->user_id, "%s", t.user_id);
    if (t.rotated && !t.revoked) {
        rf->outcome = 2;
        err = sessions_db_revoke(c, rf->sid, "refresh token reuse");
    } else if (!t.rotated && !t.expired && !t.revoked) {
        err = sessions_db_refresh_rotate(c, rf->hash);
        if (!err)
            err = new_refresh(c, rf->sid, rf->fresh);
        if (!err)
            rf->outcome = 0;
    }
    return err;
}

void h_auth_refresh(http_req_t *req)
{
    json_t *b = http_json_body(req, NULL);
    const char *tok = json_string_value(json_object_get(b, "refresh_token"));
    char cookiebuf[TOKEN_SECRET_MAX + 2];
    if (!tok) /* browser clients: the HttpOnly cookie */
        tok = app__cookie(req, "fenta_refresh", cookiebuf, sizeof cookiebuf);
    char hash[TOKEN_HASH_HEX_LEN + 1];
    if (!tok || token_classify(tok, strlen(tok)) != TOKEN_KIND_REFRESH ||
        token_hash(tok, strlen(tok), hash, sizeof hash) != 0) {
        app__fail(req, "invalid_refresh_token", "invalid refresh token", NULL);
        return;
    }
    refresh_t rf = {.hash = hash};
    int rc = pg_tx(app__of(req)->pool, refresh_tx, &rf);
    if (rc) {
        app__db_error(req, rc, NULL);
        return;
    }
    if (rf.outcome == 2) {
        authcache_forget(app__of(req)->cache, rf.user_id);
        log_kv(LOG_WARN, NULL, "refresh token reused; session revoked",
               (const char *const[]){"session_id", rf.sid, "user_id", rf.user_id, NULL});
        app__fail(req, "refresh_token_reused",
                  "this refresh token was already used; the session has been revoked", NULL);
        return;
    }
    if (rf.outcome != 0) {
        app__fail(req, "invalid_refresh_token", "invalid or expired refresh token", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    char org[DB_ID_LEN + 1];
    if (memberships_db_pick_org(c, rf.user_id, NULL, NULL, org) == 0)
        answer_session(req, c, rf.user_id, org, rf.sid, rf.fresh, 200);
    else
        app__fail(req, "invalid_refresh_token", "the account has no organisation", NULL);
    app__db_done(req, &c);
}

void h_auth_logout(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    if (!cl->session_id[0]) {
        app__fail(req, "not_a_session",
                  "a personal access token has no session to end; "
                  "revoke it with DELETE /v1/tokens/{id}",
                  NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    /* Ending a session already ended is no error: the access token that
     * asked was live a moment ago. */
    int rc = sessions_db_revoke(c, cl->session_id, "logout");
    if (rc && rc != FENTA_ENOTFOUND) {
        app__db_error(req, rc, c);
    } else {
        authcache_forget(app__of(req)->cache, cl->user_id); /* this node: at once */
        const char *secure = app__of(req)->insecure_cookies ? "" : "; Secure";
        char v[160];
        snprintf(v, sizeof v, "fenta_access=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
                 secure);
        http_add_header(req, "set-cookie", v);
        snprintf(v, sizeof v,
                 "fenta_refresh=; Path=/v1/auth; Max-Age=0; HttpOnly; SameSite=Strict%s", secure);
        http_add_header(req, "set-cookie", v);
        app__no_content(req);
    }
    app__db_done(req, &c);
}

void h_me_get(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    app_t *app = app__of(req);
    json_t *doc = authcache_identity_get(app->cache, cl->user_id);
    if (!doc) {
        uint64_t seq = authcache_seq(app->cache);
        pg_conn_t *c = app__db(req);
        if (!c)
            return;
        int err = users_db_identity(c, cl->user_id, &doc);
        if (!err)
            authcache_identity_put(app->cache, seq, cl->user_id, doc);
        else
            app__db_error(req, err == FENTA_ENOTFOUND ? FENTA_EIO : err, c);
        app__db_done(req, &c);
        if (!doc)
            return;
    }
    /* The cached document is shared: answer with a copy plus how we were called. */
    json_t *body = json_pack("{s:O, s:O, s:s}", "user", json_object_get(doc, "user"), "orgs",
                             json_object_get(doc, "orgs"), "auth", cl->via);
    json_decref(doc);
    app__reply(req, 200, body);
}
