/* tokens_db.c - statements on personal_access_tokens and their row mapping.
 * See tokens_db.h. */
#include "storage/tokens_db.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>

#define TOKEN_COLS                                                                                 \
    "id, name, array_to_json(scopes)::text AS scopes, prefix, org_id, " DB_TS(                     \
        "created_at") " AS created_at, " DB_TS("expires_at") " AS expires_at, " DB_TS("last_used_" \
                                                                                      "at") " AS " \
                                                                                            "last" \
                                                                                            "_use" \
                                                                                            "d_"   \
                                                                                            "at, " \
                                                                                            "crea" \
                                                                                            "ted_" \
                                                                                            "at "  \
                                                                                            "AS "  \
                                                                                            "raw_" \
                                                                                            "crea" \
                                                                                            "ted"

static json_t *token_json(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
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

int tokens_db_insert(pg_conn_t *c, const char *user_id, const char *org_id, const char *name,
                     const json_t *scopes, const char *token_hash, const char *prefix,
                     const char *expires_at, json_t **tok)
{
    *tok = NULL;
    char *sc = json_dumps(scopes, JSON_COMPACT);
    if (!sc)
        return FENTA_ENOMEM;
    const char *p[] = {user_id, org_id, name, sc, token_hash, prefix, expires_at};
    int err = db_insert_one(
        c,
        "INSERT INTO personal_access_tokens (user_id, org_id, name, scopes, token_hash, prefix, "
        "expires_at) VALUES ($1, $2, $3, ARRAY(SELECT json_array_elements_text($4::json)), $5, "
        "$6, $7::timestamptz) RETURNING " TOKEN_COLS,
        7, p, token_json, tok);
    free(sc);
    return err;
}

int tokens_db_authenticate(pg_conn_t *c, const char *token_hash, tokens_db_auth_t *out)
{
    *out = (tokens_db_auth_t){.id = ""};
    const char *p[] = {token_hash};
    /* The look-up and the use in one statement: the request pays one round
     * trip, and the write happens at most once a minute per token. */
    pg_result_t *r = NULL;
    int err =
        db_query_row(c,
                     "WITH t AS (SELECT id, user_id, org_id, scopes, last_used_at FROM "
                     "personal_access_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND "
                     "(expires_at IS NULL OR expires_at > now())), u AS (UPDATE "
                     "personal_access_tokens p SET last_used_at = now() FROM t WHERE p.id = t.id "
                     "AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 "
                     "minute')) SELECT id, user_id, org_id, array_to_string(scopes, ',') AS "
                     "scopes FROM t",
                     1, p, &r);
    if (err)
        return err;
    snprintf(out->id, sizeof out->id, "%s", pg_get(r, 0, 0));
    snprintf(out->user_id, sizeof out->user_id, "%s", pg_get(r, 0, 1));
    snprintf(out->org_id, sizeof out->org_id, "%s", pg_get(r, 0, 2));
    snprintf(out->scopes, sizeof out->scopes, "%s", pg_get(r, 0, 3));
    pg_result_free(&r);
    return 0;
}

int tokens_db_list(pg_conn_t *c, const char *user_id, const db_page_t *page, db_page_rows_t *out)
{
    const char *p[] = {user_id};
    return db_page_run(c,
                       "SELECT " TOKEN_COLS " FROM personal_access_tokens WHERE user_id = $1 AND "
                       "revoked_at IS NULL AND ($3::timestamptz IS NULL OR (created_at, id) {cmp} "
                       "($3::timestamptz, $4::uuid)) ORDER BY created_at {dir}, id {dir} LIMIT "
                       "$2::int",
                       p, 1, page, token_json, NULL, "id", out);
}

int tokens_db_revoke(pg_conn_t *c, const char *id, const char *user_id)
{
    const char *p[] = {id, user_id};
    return db_exec_some(c,
                        "UPDATE personal_access_tokens SET revoked_at = now() WHERE id = $1 AND "
                        "user_id = $2 AND revoked_at IS NULL",
                        2, p);
}
