/* h_tokens.c - personal access tokens: create (the secret is shown once and
 * stored only as its SHA-256), list (keyset pages), revoke (at once: every
 * request looks the token up). */
#include "http/app_internal.h"
#include "http/token.h"
#include "runtime/error.h"
#include "storage/memberships_db.h"
#include "storage/tokens_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    char secret[TOKEN_SECRET_MAX + 1], hash[TOKEN_HASH_HEX_LEN + 1], prefix[32];
    char pub[TOKEN_PUBLIC_ID_LEN + 1];
    if (token_generate(TOKEN_KIND_PAT, secret, sizeof secret) != 0 ||
        token_hash(secret, strlen(secret), hash, sizeof hash) != 0 ||
        token_public_id(secret, strlen(secret), pub, sizeof pub) != 0) {
        app__fail(req, "internal", "could not make a token", NULL);
        return;
    }
    snprintf(prefix, sizeof prefix, "%s%s", TOKEN_PAT_PREFIX, pub);
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    /* The organisation: the one named (the caller must belong to it; a PAT
     * stays inside its own), else the caller's personal one. */
    char org_id[DB_ID_LEN + 1];
    json_t *tok = NULL;
    int err =
        memberships_db_pick_org(c, cl->user_id, org, cl->pat_id[0] ? cl->token_org : NULL, org_id);
    if (!err)
        err = tokens_db_insert(c, cl->user_id, org_id, name, json_object_get(b, "scopes"), hash,
                               prefix, exp, &tok);
    if (err == FENTA_ENOTFOUND) {
        app__fail(req, "not_found", "no such organisation", NULL);
    } else if (err) {
        app__db_error(req, err, c);
    } else {
        http_add_header(req, "cache-control", "no-store");
        app__reply(req, 201, json_pack("{s:o, s:s}", "token", tok, "secret", secret));
    }
    app__db_done(req, &c);
}

static int tokens_list_read(http_req_t *req, pg_conn_t *c, void *arg, const db_page_t *page,
                            db_page_rows_t *out)
{
    (void)req;
    return tokens_db_list(c, arg, page, out);
}

void h_tokens_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    app__list(req, tokens_list_read, cl->user_id);
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
    int err = tokens_db_revoke(c, id, cl->user_id);
    if (err == FENTA_ENOTFOUND)
        app__fail(req, "not_found", "no such token", NULL);
    else if (err)
        app__db_error(req, err, c);
    else
        app__no_content(req);
    app__db_done(req, &c);
}
