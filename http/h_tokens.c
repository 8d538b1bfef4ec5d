/* h_tokens.c - personal access tokens: create (the secret is shown once and
 * stored only as its SHA-256), list (keyset pages), revoke (at once: every
 * request looks the token up). */
#include "http/app_internal.h"
#include "http/token.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_COLS                                                                                 \
    "id, name, array_to_json(scopes)::text AS scopes, prefix, org_id, " APP_TS(                    \
        "created_at") " AS created_at, " APP_TS("expires_at") " AS expires_at, " APP_TS("last_"    \
                                                                                        "used_at") " AS last_used_at, created_at AS raw_created"

static json_t *token_json(app_t *app, const pg_result_t *r, int row)
{
    (void)app;
    json_t *o =
        json_pack("{s:s, s:s, s:o, s:s, s:s, s:s}", "id", pg_getn(r, row, "id"), "name",
                  pg_getn(r, row, "name"), "scopes", json_loads(pg_getn(r, row, "scopes"), 0, NULL),
                  "prefix", pg_getn(r, row, "prefix"), "org_id", pg_getn(r, row, "org_id"),
                  "created_at", pg_getn(r, row, "created_at"));
    const char *e = pg_getn(r, row, "expires_at"), *l = pg_getn(r, row, "last_used_at");
    json_object_set_new(o, "expires_at", e ? json_string(e) : json_null());
    json_object_set_new(o, "last_used_at", l ? json_string(l) : json_null());
    return o;
}

void h_tokens_create(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    json_t *b = http_json_body(req, NULL);
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *org = json_string_value(json_object_get(b, "org_id"));
    const char *exp = json_string_value(json_object_get(b, "expires_at"));
    /* A token made with a token cannot reach further than the token itself. */
    unsigned want = 0;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(b, "scopes"), i, s)
    {
        const char *n = json_string_value(s);
        want |= strcmp(n, "read") == 0    ? SCOPE_READ
                : strcmp(n, "write") == 0 ? SCOPE_WRITE
                                          : SCOPE_ADMIN;
    }
    if ((want & ~cl->scopes) != 0) {
        app__fail(req, "insufficient_scope", "a token cannot grant scopes it lacks", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int err = 0;
    char secret[TOKEN_SECRET_MAX + 1], hash[TOKEN_HASH_HEX_LEN + 1], prefix[32];
    char pub[TOKEN_PUBLIC_ID_LEN + 1];
    char *scopes = json_dumps(json_object_get(b, "scopes"), JSON_COMPACT);
    if (token_generate(TOKEN_KIND_PAT, secret, sizeof secret) != 0 ||
        token_hash(secret, strlen(secret), hash, sizeof hash) != 0 ||
        token_public_id(secret, strlen(secret), pub, sizeof pub) != 0 || !scopes) {
        free(scopes);
        app__fail(req, "internal", "could not make a token", NULL);
        app__db_done(req, &c);
        return;
    }
    snprintf(prefix, sizeof prefix, "%s%s", TOKEN_PAT_PREFIX, pub);
    /* The organisation: the one named (the caller must belong to it; a PAT
     * stays inside its own), else the caller's personal one. */
    const char *p[] = {cl->user_id, name, scopes, hash,
                       prefix,      org,  exp,    cl->pat_id[0] ? cl->token_org : NULL};
    pg_result_t *r = pg_query(
        c,
        "INSERT INTO personal_access_tokens (user_id, org_id, name, scopes, token_hash, prefix, "
        "expires_at) SELECT $1, m.org_id, $2, ARRAY(SELECT json_array_elements_text($3::json)), "
        "$4, $5, $7::timestamptz FROM memberships m JOIN orgs o ON o.id = m.org_id "
        "WHERE m.user_id = $1 AND ($6::uuid IS NULL OR m.org_id = $6::uuid) "
        "AND ($8::uuid IS NULL OR m.org_id = $8::uuid) "
        "ORDER BY (m.org_id = $6::uuid) DESC NULLS LAST, o.personal DESC, m.created_at LIMIT 1 "
        "RETURNING " TOKEN_COLS,
        8, p, &err);
    free(scopes);
    if (!r) {
        app__db_error(req, err, c);
    } else if (pg_nrows(r) != 1) {
        app__fail(req, "not_found", "no such organisation", NULL);
    } else {
        http_add_header(req, "cache-control", "no-store");
        app__reply(
            req, 201,
            json_pack("{s:o, s:s}", "token", token_json(app__of(req), r, 0), "secret", secret));
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

void h_tokens_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *p[] = {cl->user_id};
    app__list_page(req,
                   "SELECT " TOKEN_COLS " FROM personal_access_tokens WHERE user_id = $1 AND "
                   "revoked_at IS NULL AND ($3::timestamptz IS NULL OR (created_at, id) > "
                   "($3::timestamptz, $4::uuid)) ORDER BY created_at {dir}, id {dir} LIMIT $2::int",
                   p, 1, token_json, "id");
}

void h_tokens_delete(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *id = http_param(req, "id");
    if (!app__is_uuid(id)) {
        app__fail(req, "not_found", "no such token", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int err = 0;
    const char *p[] = {id, cl->user_id};
    pg_result_t *r = pg_query(c,
                              "UPDATE personal_access_tokens SET revoked_at = now() WHERE id = $1 "
                              "AND user_id = $2 AND revoked_at IS NULL RETURNING id",
                              2, p, &err);
    app__reply_row(req, c, &r, err, 204, NULL, "no such token");
    app__db_done(req, &c);
}
