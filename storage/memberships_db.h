/* memberships_db.h - the owner of table memberships: who belongs to which
 * organisation, with which role (owner, admin, editor, viewer). Every
 * statement on memberships is here, except the joins that read "the
 * organisations of a user" (orgs_db) and /v1/me (users_db_identity).
 *
 * A member as an API object is {"user_id", "email", "name", "role",
 * "created_at"} (the user's email and name, the membership's role and
 * date). What a role may do is the permission table's (schemas/api.json,
 * read in http/); this module stores and reads the role's name only.
 * 0 or a negative FENTA_E* code: FENTA_ENOTFOUND for no such membership,
 * FENTA_EEXIST when the user is already a member, FENTA_ECONFLICT when
 * the organisation or the user does not exist, else the pg.h code. */
#ifndef FENTA_MEMBERSHIPS_DB_H
#define FENTA_MEMBERSHIPS_DB_H
#include "storage/db.h"

/* Room for a role's name and its NUL. */
#define MEMBERSHIPS_DB_ROLE_MAX 16

/* Makes user_id a member of org_id with role. FENTA_EEXIST if they are one. */
int memberships_db_insert(pg_conn_t *c, const char *org_id, const char *user_id, const char *role);

/* user_id's role in org_id, for the permission check every organisation
 * route makes: one indexed read. FENTA_ENOTFOUND when not a member. */
int memberships_db_role(pg_conn_t *c, const char *org_id, const char *user_id,
                        char role[MEMBERSHIPS_DB_ROLE_MAX]);

/* For a change of members inside a transaction: locks org_id's owner rows
 * (so two concurrent changes cannot both remove the last owner) and counts
 * them into *owners. */
int memberships_db_lock_owners(pg_conn_t *c, const char *org_id, int *owners);
/* memberships_db_role, the row locked until the transaction ends. */
int memberships_db_role_for_update(pg_conn_t *c, const char *org_id, const char *user_id,
                                   char role[MEMBERSHIPS_DB_ROLE_MAX]);
/* Changes user_id's role in org_id. FENTA_ENOTFOUND when not a member. */
int memberships_db_set_role(pg_conn_t *c, const char *org_id, const char *user_id,
                            const char *role);
/* Ends user_id's membership of org_id. FENTA_ENOTFOUND when not a member. */
int memberships_db_delete(pg_conn_t *c, const char *org_id, const char *user_id);

/* user_id as a member of org_id (*member, the caller's). FENTA_ENOTFOUND
 * when not a member. */
int memberships_db_get(pg_conn_t *c, const char *org_id, const char *user_id, json_t **member);
/* One page of org_id's members; role, when not NULL, keeps those with it. */
int memberships_db_list(pg_conn_t *c, const char *org_id, const char *role, const db_page_t *page,
                        db_page_rows_t *out);

/* The organisation user_id acts in when none is named: among their
 * organisations (only org and within, each when not NULL), their personal
 * one first, then the one they joined first. FENTA_ENOTFOUND when they
 * belong to none of those. */
int memberships_db_pick_org(pg_conn_t *c, const char *user_id, const char *org, const char *within,
                            char org_id[DB_ID_LEN + 1]);

#endif
