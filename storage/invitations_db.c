/* invitations_db.c - statements on invitations and their row mapping. See
 * invitations_db.h. */
#include "storage/invitations_db.h"
#include "runtime/error.h"

#include <stdio.h>

/* How long an invitation can be accepted. */
#define TTL "7 days"

int invitations_db_create(pg_conn_t *c, const char *org_id, const char *email, const char *role,
                          const char *token_hash, const char *invited_by, json_t **inv)
{
    *inv = NULL;
    const char *p[] = {org_id, email, role, token_hash, invited_by};
    pg_result_t *r = NULL;
    int err = db_insert_row(
        c,
        "INSERT INTO invitations (org_id, email, role, token_hash, invited_by, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, now() + interval '" TTL "') "
        "RETURNING id, email, role, " DB_TS("expires_at") " AS expires_at",
        5, p, &r);
    if (err)
        return err;
    if (!(*inv = json_pack("{s:s, s:s, s:s, s:s}", "id", pg_get(r, 0, 0), "email", pg_get(r, 0, 1),
                           "role", pg_get(r, 0, 2), "expires_at", pg_get(r, 0, 3))))
        err = FENTA_ENOMEM;
    pg_result_free(&r);
    return err;
}

int invitations_db_accept(pg_conn_t *c, const char *token_hash, const char *email,
                          char org_id[DB_ID_LEN + 1], char *role, size_t role_cap)
{
    const char *p[] = {token_hash, email};
    pg_result_t *r = NULL;
    int err = db_query_row(c,
                           "UPDATE invitations SET accepted_at = now() WHERE token_hash = $1 "
                           "AND accepted_at IS NULL AND expires_at > now() AND lower(email) = "
                           "lower($2) RETURNING org_id, role",
                           2, p, &r);
    if (err)
        return err;
    if (snprintf(org_id, DB_ID_LEN + 1, "%s", pg_get(r, 0, 0)) > DB_ID_LEN ||
        snprintf(role, role_cap, "%s", pg_get(r, 0, 1)) >= (int)role_cap)
        err = FENTA_EINVAL;
    pg_result_free(&r);
    return err;
}
