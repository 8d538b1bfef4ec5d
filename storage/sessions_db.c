/* sessions_db.c - statements on sessions and refresh_tokens. See sessions_db.h. */
#include "storage/sessions_db.h"
#include "runtime/error.h"

#include <stdio.h>

#define XSTR(x) #x
#define STR(x) XSTR(x)

int sessions_db_create(pg_conn_t *c, const char *user_id, char sid[DB_ID_LEN + 1])
{
    const char *p[] = {user_id};
    return db_insert_id(c, "INSERT INTO sessions (user_id) VALUES ($1) RETURNING id", 1, p, sid);
}

int sessions_db_live(pg_conn_t *c, const char *sid, const char *user_id)
{
    const char *p[] = {sid, user_id};
    return db_one_row(
        c, "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL", 2, p,
        NULL, NULL);
}

int sessions_db_revoke(pg_conn_t *c, const char *sid, const char *why)
{
    const char *p[] = {sid, why};
    return db_exec_some(c,
                        "UPDATE sessions SET revoked_at = now(), revoked_why = $2 "
                        "WHERE id = $1 AND revoked_at IS NULL",
                        2, p);
}

int sessions_db_add_refresh(pg_conn_t *c, const char *sid, const char *token_hash)
{
    const char *p[] = {token_hash, sid};
    return db_exec(
        c,
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, "
        "now() + interval '" STR(SESSIONS_DB_REFRESH_TTL_S) " seconds')",
        2, p);
}

int sessions_db_refresh_lock(pg_conn_t *c, const char *token_hash, sessions_db_refresh_t *out)
{
    *out = (sessions_db_refresh_t){.rotated = false};
    const char *p[] = {token_hash};
    pg_result_t *r = NULL;
    int err = db_query_row(
        c,
        "SELECT t.session_id, s.user_id, t.rotated_at IS NOT NULL, t.expires_at <= now(), "
        "s.revoked_at IS NOT NULL FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "
        "WHERE t.token_hash = $1 FOR UPDATE OF t, s",
        1, p, &r);
    if (err)
        return err;
    snprintf(out->sid, sizeof out->sid, "%s", pg_get(r, 0, 0));
    snprintf(out->user_id, sizeof out->user_id, "%s", pg_get(r, 0, 1));
    out->rotated = pg_get(r, 0, 2)[0] == 't';
    out->expired = pg_get(r, 0, 3)[0] == 't';
    out->revoked = pg_get(r, 0, 4)[0] == 't';
    pg_result_free(&r);
    return 0;
}

int sessions_db_refresh_rotate(pg_conn_t *c, const char *token_hash)
{
    const char *p[] = {token_hash};
    return db_exec_some(c, "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1", 1,
                        p);
}
