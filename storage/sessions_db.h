/* sessions_db.h - the owner of tables sessions and refresh_tokens.
 *
 * One module for both because neither means anything alone: a session is a
 * refresh-token family, a refresh token exists only inside its session, and
 * the rotation that keeps them honest locks a token and its session in one
 * statement. Every refresh rotates the token; presenting a rotated one again
 * means it was copied, and the caller then revokes the whole session (and
 * with it every access token of the session, which authentication checks
 * through sessions_db_live).
 *
 * Refresh tokens are stored only as their SHA-256 (hex), which the caller
 * computes. 0 or a negative FENTA_E* code: FENTA_ENOTFOUND for no such
 * (live) session or token, else the pg.h code of the failed query. */
#ifndef FENTA_SESSIONS_DB_H
#define FENTA_SESSIONS_DB_H
#include "storage/db.h"

/* How long a refresh token can be used (7 days), in seconds. */
#define SESSIONS_DB_REFRESH_TTL_S 604800

/* A new session of user_id; sid gets its id. */
int sessions_db_create(pg_conn_t *c, const char *user_id, char sid[DB_ID_LEN + 1]);

/* Session sid of user_id is live (0) or not (FENTA_ENOTFOUND: unknown,
 * another user's, or revoked). Authentication asks this on every request
 * the session cache misses: one indexed read. */
int sessions_db_live(pg_conn_t *c, const char *sid, const char *user_id);

/* Revokes live session sid, saying why ("logout", "refresh token reuse").
 * FENTA_ENOTFOUND when there is no such live session (already revoked). */
int sessions_db_revoke(pg_conn_t *c, const char *sid, const char *why);

/* Adds a refresh token (its hash) to session sid, valid for
 * SESSIONS_DB_REFRESH_TTL_S. */
int sessions_db_add_refresh(pg_conn_t *c, const char *sid, const char *token_hash);

/* A presented refresh token, as sessions_db_refresh_lock found it. */
typedef struct {
    char sid[DB_ID_LEN + 1];     /* its session */
    char user_id[DB_ID_LEN + 1]; /* the session's user */
    bool rotated;                /* already exchanged for a newer token */
    bool expired;                /* past its expiry */
    bool revoked;                /* its session is revoked */
} sessions_db_refresh_t;

/* Finds the refresh token with this hash and locks it and its session until
 * the transaction ends (call it inside pg_tx), so two refreshes with one
 * token cannot both rotate it. FENTA_ENOTFOUND when unknown. */
int sessions_db_refresh_lock(pg_conn_t *c, const char *token_hash, sessions_db_refresh_t *out);

/* Marks the refresh token with this hash rotated. FENTA_ENOTFOUND when unknown. */
int sessions_db_refresh_rotate(pg_conn_t *c, const char *token_hash);

#endif
