/* invitations_db.h - the owner of table invitations: an organisation's
 * invitation of an email address to a role, accepted once with its secret
 * token (stored only as its SHA-256, which the caller computes).
 *
 * 0 or a negative FENTA_E* code: FENTA_ENOTFOUND for no invitation that can
 * be accepted, else the pg.h code of the failed query. */
#ifndef FENTA_INVITATIONS_DB_H
#define FENTA_INVITATIONS_DB_H
#include "storage/db.h"

/* A new invitation of email to org_id with role, by invited_by, valid for
 * 7 days; *inv (the caller's) is {"id", "email", "role",
 * "expires_at"}. */
int invitations_db_create(pg_conn_t *c, const char *org_id, const char *email, const char *role,
                          const char *token_hash, const char *invited_by, json_t **inv);

/* Accepts the invitation whose token hashes to token_hash, if it is for
 * email (any case), not accepted yet and not expired: marks it accepted and
 * gives its organisation and role (for the caller's memberships_db_insert,
 * in the same transaction, so a refused membership leaves it unaccepted).
 * FENTA_ENOTFOUND otherwise: accepting twice, late or as another email
 * finds nothing. */
int invitations_db_accept(pg_conn_t *c, const char *token_hash, const char *email,
                          char org_id[DB_ID_LEN + 1], char *role, size_t role_cap);

#endif
