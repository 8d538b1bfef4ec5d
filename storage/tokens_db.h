/* tokens_db.h - the owner of table personal_access_tokens: tokens a user
 * makes for scripts, each bound to one organisation with scopes (read,
 * write, admin). The secret is shown once and stored only as its SHA-256
 * (hex), which the caller computes; revocation is immediate because every
 * request looks the token up (tokens_db_authenticate).
 *
 * A token as an API object is {"id", "name", "scopes", "prefix", "org_id",
 * "created_at", "expires_at", "last_used_at"} (the last two null when
 * unset). 0 or a negative FENTA_E* code: FENTA_ENOTFOUND for no such
 * (usable) token, else the pg.h code of the failed query. */
#ifndef FENTA_TOKENS_DB_H
#define FENTA_TOKENS_DB_H
#include "storage/db.h"

/* A new token of user_id in org_id: scopes a JSON array of scope names,
 * prefix the public part shown in lists, expires_at an RFC 3339 time or
 * NULL for never. *tok (the caller's) is it as an API object. */
int tokens_db_insert(pg_conn_t *c, const char *user_id, const char *org_id, const char *name,
                     const json_t *scopes, const char *token_hash, const char *prefix,
                     const char *expires_at, json_t **tok);

/* A token presented by a request, as tokens_db_authenticate found it. */
typedef struct {
    char id[DB_ID_LEN + 1];      /* the token */
    char user_id[DB_ID_LEN + 1]; /* whose */
    char org_id[DB_ID_LEN + 1];  /* the one organisation it reaches */
    char scopes[64];             /* its scope names, comma-separated ("read,write") */
} tokens_db_auth_t;

/* The live token (not revoked, not expired) whose secret hashes to
 * token_hash, and records its use: last_used_at is kept to the minute, so
 * a token costs one write a minute rather than one per request. One round
 * trip, on every request a token makes. FENTA_ENOTFOUND when there is no
 * such live token. */
int tokens_db_authenticate(pg_conn_t *c, const char *token_hash, tokens_db_auth_t *out);

/* One page of user_id's live tokens. */
int tokens_db_list(pg_conn_t *c, const char *user_id, const db_page_t *page, db_page_rows_t *out);

/* Revokes token id of user_id. FENTA_ENOTFOUND when there is no such
 * unrevoked token of theirs. */
int tokens_db_revoke(pg_conn_t *c, const char *id, const char *user_id);

#endif
