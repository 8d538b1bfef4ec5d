/* users_db.h - the owner of table users: accounts (email, name, password
 * hash). Every statement on users is here.
 *
 * A user as an API object is {"id", "email", "name", "created_at"}; the
 * password hash never leaves this module except to the login check.
 * Functions take the caller's connection (see storage/db.h) and return 0 or
 * a negative FENTA_E* code: FENTA_ENOTFOUND for no such user, FENTA_EEXIST
 * for an email already taken, else the pg.h code of the failed query. */
#ifndef FENTA_USERS_DB_H
#define FENTA_USERS_DB_H
#include "storage/db.h"

/* A new user; id gets its uuid. FENTA_EEXIST when the email is taken,
 * whatever its case (emails are matched case-insensitively). */
int users_db_insert(pg_conn_t *c, const char *email, const char *name, const char *password_hash,
                    char id[DB_ID_LEN + 1]);

/* The user with this email (case-insensitive), for the login check: id and
 * *password_hash (the caller's, free it). FENTA_ENOTFOUND when none. */
int users_db_credentials(pg_conn_t *c, const char *email, char id[DB_ID_LEN + 1],
                         char **password_hash);

/* The user as an API object (*user, the caller's). FENTA_ENOTFOUND when none. */
int users_db_get(pg_conn_t *c, const char *id, json_t **user);

/* The identity document of GET /v1/me, {"user": {...}, "orgs": [{"id",
 * "name", "personal", "created_at", "role"}, ...]} (organisations oldest
 * first), in one round trip: it reads the user's memberships and their
 * organisations too, because this is what a request of /v1/me costs when
 * the identity cache misses. *doc is the caller's. FENTA_ENOTFOUND when no
 * such user. */
int users_db_identity(pg_conn_t *c, const char *id, json_t **doc);

#endif
