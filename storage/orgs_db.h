/* orgs_db.h - the owner of table orgs: organisations, the tenants every
 * resource belongs to. Every statement on orgs is here, except the
 * running-jobs cap the job engine reads (actors/jobs/job.c).
 *
 * An organisation as an API object is {"id", "name", "personal",
 * "created_at"}, plus "role" (the caller's, from memberships) where it is
 * read for a user. Who belongs to an organisation is memberships_db's; the
 * reads here that join memberships answer "the organisations of this user".
 * 0 or a negative FENTA_E* code: FENTA_ENOTFOUND for no such organisation
 * (or the user is not a member), else the pg.h code of the failed query. */
#ifndef FENTA_ORGS_DB_H
#define FENTA_ORGS_DB_H
#include "storage/db.h"

/* A new organisation created by user created_by; *org (the caller's) is it
 * as an API object, without a role: its creator's membership is a separate
 * memberships_db_insert, in the same transaction. */
int orgs_db_insert(pg_conn_t *c, const char *name, bool personal, const char *created_by,
                   json_t **org);

/* Organisation org_id as user_id sees it, with their "role". FENTA_ENOTFOUND
 * when there is none or the user is not a member. */
int orgs_db_get_for_user(pg_conn_t *c, const char *org_id, const char *user_id, json_t **org);

/* One page of user_id's organisations, each with their "role": name_like,
 * when not NULL, keeps those whose name contains it (any case); only_org,
 * when not NULL, keeps that one (a personal access token sees its own
 * organisation only). */
int orgs_db_list_for_user(pg_conn_t *c, const char *user_id, const char *name_like,
                          const char *only_org, const db_page_t *page, db_page_rows_t *out);

#endif
