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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFRESH_TTL "7 days"
#define USER_COLS "id, email, name, " APP_TS("created_at") " AS created_at"
#define ORG_COLS "o.id, o.name, o.personal, " APP_TS("o.created_at") " AS created_at, m.role"

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
             "fenta_refresh=%s; Path=/v1/auth; Max-Age=604800; HttpOnly; SameSite=Strict%s",
             refresh, secure);
    http_add_header(req, "set-cookie", v);
    /* Readable by the page's script, which echoes it in X-CSRF-Token. */
    snprintf(v, sizeof v, "fenta_csrf=%s; Path=/; Max-Age=604800; SameSite=Strict%s", csrf, secure);
    http_add_header(req, "set-cookie", v);
}

/* Issues tokens for an existing session and answers with the session
 * document: user, org, access and refresh tokens, csrf token. */
static void answer_session(http_req_t *req, pg_conn_t *c, const char *user_id, const char *org_id,
                           const char *sid, const char *refresh, int status)
{
    app_t *app = app__of(req);
    int err = 0;
    const char *pu[] = {user_id};
    pg_result_t *u = pg_query(c, "SELECT " USER_COLS " FROM users WHERE id = $1", 1, pu, &err);
    const char *po[] = {org_id, user_id};
    pg_result_t *o =
        u ? pg_query(c,
                     "SELECT " ORG_COLS " FROM orgs o JOIN memberships m ON m.org_id = o.id "
                     "WHERE o.id = $1 AND m.user_id = $2",
                     2, po, &err)
          : NULL;
    char access[JWTS_TOKEN_MAX + 1], csrf[JWTS_CSRF_LEN + 1];
    jwts_claims_t issued;
    if (!u || !o || pg_nrows(u) != 1 || pg_nrows(o) != 1 ||
        jwts_sign(app->jwt, user_id, org_id, sid, access, sizeof access, &issued) != 0 ||
        jwts_csrf_make(app->jwt, sid, csrf, sizeof csrf) != 0) {
        app__db_error(req, err ? err : FENTA_EIO, c);
    } else {
        long ttl = (long)(issued.exp - issued.iat);
        json_t *doc =
            json_pack("{s:o, s:o, s:s, s:s, s:s, s:I, s:s}", "user", app__user_json(u, 0), "org",
                      app__org_json(app, o, 0), "access_token", access, "refresh_token", refresh,
                      "token_type", "Bearer", "expires_in", (json_int_t)ttl, "csrf_token", csrf);
        set_cookies(req, access, ttl, refresh, csrf);
        http_add_header(req, "cache-control", "no-store");
        app__reply(req, status, doc);
    }
    pg_result_free(&u);
    pg_result_free(&o);
}

/* Adds a fresh refresh token to session sid; its secret into out. */
static int new_refresh(pg_conn_t *c, const char *sid, char out[TOKEN_SECRET_MAX + 1])
{
    char hash[TOKEN_HASH_HEX_LEN + 1];
    if (token_generate(TOKEN_KIND_REFRESH, out, TOKEN_SECRET_MAX + 1) != 0 ||
        token_hash(out, strlen(out), hash, sizeof hash) != 0)
        return FENTA_EIO;
    const char *p[] = {hash, sid};
    return app__exec(c,
                     "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) "
                     "VALUES ($1, $2, now() + interval '" REFRESH_TTL "')",
                     2, p);
}

void app__issue_session(http_req_t *req, pg_conn_t *c, const char *user_id, const char *org_id,
                        int status)
{
    int err = 0;
    const char *p[] = {user_id};
    pg_result_t *s =
        pg_query(c, "INSERT INTO sessions (user_id) VALUES ($1) RETURNING id", 1, p, &err);
    char refresh[TOKEN_SECRET_MAX + 1];
    if (!s || pg_nrows(s) != 1 || (err = new_refresh(c, pg_get(s, 0, 0), refresh)) != 0)
        app__db_error(req, err ? err : FENTA_EIO, c);
    else
        answer_session(req, c, user_id, org_id, pg_get(s, 0, 0), refresh, status);
    pg_result_free(&s);
}

/* The personal organisation of a user (their first owned, personal one). */
static char *personal_org(pg_conn_t *c, const char *user_id)
{
    int err = 0;
    const char *p[] = {user_id};
    pg_result_t *r = pg_query(c,
                              "SELECT o.id FROM orgs o JOIN memberships m ON m.org_id = o.id "
                              "WHERE m.user_id = $1 ORDER BY o.personal DESC, m.created_at "
                              "LIMIT 1",
                              1, p, &err);
    char *id = r && pg_nrows(r) == 1 ? strdup(pg_get(r, 0, 0)) : NULL;
    pg_result_free(&r);
    return id;
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
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int err = 0;
    /* One statement: the user, their personal organisation and the owner
     * membership exist together or not at all. */
    const char *p[] = {email, name, hash};
    pg_result_t *r = pg_query(
        c,
        "WITH u AS (INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) "
        "RETURNING id), o AS (INSERT INTO orgs (name, personal, created_by) "
        "SELECT $2 || '''s workspace', true, id FROM u RETURNING id, created_by) "
        "INSERT INTO memberships (org_id, user_id, role) SELECT id, created_by, 'owner' FROM o "
        "RETURNING user_id, org_id",
        3, p, &err);
    if (!r) {
        if (err == FENTA_EEXIST)
            app__fail(req, "email_taken", "an account with this email already exists", NULL);
        else
            app__db_error(req, err, c);
    } else {
        app__issue_session(req, c, pg_get(r, 0, 0), pg_get(r, 0, 1), 201);
    }
    pg_result_free(&r);
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
    int err = 0;
    const char *p[] = {email};
    pg_result_t *r = pg_query(
        c, "SELECT id, password_hash FROM users WHERE lower(email) = lower($1)", 1, p, &err);
    if (!r) {
        app__db_error(req, err, c);
        app__db_done(req, &c);
        return;
    }
    bool ok = false;
    if (pg_nrows(r) == 1) {
        ok = password_verify(pg_get(r, 0, 1), password, strlen(password)) == 0;
    } else {
        /* Unknown email: spend what a real verification costs, so timing
         * does not tell which emails have accounts. */
        password_verify_dummy(&app__of(req)->pw, password, strlen(password));
    }
    if (!ok) {
        app__fail(req, "invalid_credentials", "wrong email or password", NULL);
    } else {
        char *org = personal_org(c, pg_get(r, 0, 0));
        if (org)
            app__issue_session(req, c, pg_get(r, 0, 0), org, 200);
        else
            app__fail(req, "internal", "the account has no organisation", NULL);
        free(org);
    }
    pg_result_free(&r);
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
    int err = 0;
    const char *p[] = {rf->hash};
    pg_result_t *r = pg_query(
        c,
        "SELECT t.session_id, s.user_id, t.rotated_at IS NOT NULL, t.expires_at <= now(), "
        "s.revoked_at IS NOT NULL FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "
        "WHERE t.token_hash = $1 FOR UPDATE OF t, s",
        1, p, &err);
    if (!r)
        return err;
    rf->outcome = 1;
    if (pg_nrows(r) == 1) {
        snprintf(rf->sid, sizeof rf->sid, "%s", pg_get(r, 0, 0));
        snprintf(rf->user_id, sizeof rf->user_id, "%s", pg_get(r, 0, 1));
        bool rotated = pg_get(r, 0, 2)[0] == 't', expired = pg_get(r, 0, 3)[0] == 't',
             revoked = pg_get(r, 0, 4)[0] == 't';
        const char *ps[] = {rf->sid};
        if (rotated && !revoked) {
            rf->outcome = 2;
            err = app__exec(c,
                            "UPDATE sessions SET revoked_at = now(), revoked_why = 'refresh token "
                            "reuse' WHERE id = $1",
                            1, ps);
        } else if (!rotated && !expired && !revoked) {
            err = app__exec(c, "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1",
                            1, p);
            if (!err)
                err = new_refresh(c, rf->sid, rf->fresh);
            if (!err)
                rf->outcome = 0;
        }
    }
    pg_result_free(&r);
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
    char *org = personal_org(c, rf.user_id);
    if (org)
        answer_session(req, c, rf.user_id, org, rf.sid, rf.fresh, 200);
    else
        app__fail(req, "invalid_refresh_token", "the account has no organisation", NULL);
    free(org);
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
    const char *p[] = {cl->session_id};
    int rc = app__exec(c,
                       "UPDATE sessions SET revoked_at = now(), revoked_why = 'logout' "
                       "WHERE id = $1 AND revoked_at IS NULL",
                       1, p);
    if (rc) {
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
        int err = 0;
        const char *p[] = {cl->user_id};
        /* One round trip: the user and their organisations with roles. */
        pg_result_t *u = pg_query(
            c,
            "SELECT " USER_COLS ", (SELECT coalesce(json_agg(json_build_object('id', o.id, "
            "'name', o.name, 'personal', o.personal, 'created_at', " APP_TS(
                "o.created_at") ", 'role', m.role) ORDER BY o.created_at, o.id), '[]') FROM "
                                "orgs o JOIN memberships m ON m.org_id = o.id WHERE m.user_id = "
                                "u.id)::text AS orgs FROM users u WHERE u.id = $1",
            1, p, &err);
        json_t *orgs = u && pg_nrows(u) == 1 ? json_loads(pg_getn(u, 0, "orgs"), 0, NULL) : NULL;
        if (orgs) {
            doc = json_pack("{s:o, s:o}", "user", app__user_json(u, 0), "orgs", orgs);
            authcache_identity_put(app->cache, seq, cl->user_id, doc);
        } else {
            app__db_error(req, err ? err : FENTA_EIO, c);
        }
        pg_result_free(&u);
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
