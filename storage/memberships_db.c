/* memberships_db.c - statements on memberships and their row mapping. See
 * memberships_db.h. */
#include "storage/memberships_db.h"
#include "runtime/error.h"

#include <stdio.h>

#define MEMBER_COLS                                                                                \
    "u.id AS user_id, u.email, u.name, m.role, " DB_TS(                                            \
        "m.created_at") " AS created_at, "                                                         \
                        "m.created_at AS raw_created"

static json_t *member_json(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "user_id", pg_getn(r, row, "user_id"), "email",
                     pg_getn(r, row, "email"), "name", pg_getn(r, row, "name"), "role",
                     pg_getn(r, row, "role"), "created_at", pg_getn(r, row, "created_at"));
}

/* The one-column text of sql's one row into out: FENTA_ENOTFOUND without one. */
static int one_text(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                    char *out, size_t cap)
{
    pg_result_t *r = NULL;
    int err = db_query_row(c, sql, nparams, params, &r);
    if (!err && snprintf(out, cap, "%s", pg_get(r, 0, 0)) >= (int)cap)
        err = FENTA_EINVAL; /* not one of our roles or ids */
    pg_result_free(&r);
    return err;
}

int memberships_db_insert(pg_conn_t *c, const char *org_id, const char *user_id, const char *role)
{
    const char *p[] = {org_id, user_id, role};
    return db_exec(c, "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)", 3, p);
}

int memberships_db_role(pg_conn_t *c, const char *org_id, const char *user_id,
                        char role[MEMBERSHIPS_DB_ROLE_MAX])
{
    const char *p[] = {org_id, user_id};
    return one_text(c, "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2", 2, p,
                    role, MEMBERSHIPS_DB_ROLE_MAX);
}

int memberships_db_lock_owners(pg_conn_t *c, const char *org_id, int *owners)
{
    *owners = 0;
    int err = 0;
    const char *p[] = {org_id};
    pg_result_t *r = pg_query(
        c, "SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'owner' FOR UPDATE", 1, p,
        &err);
    if (!r)
        return err;
    *owners = pg_nrows(r);
    pg_result_free(&r);
    return 0;
}

int memberships_db_role_for_update(pg_conn_t *c, const char *org_id, const char *user_id,
                                   char role[MEMBERSHIPS_DB_ROLE_MAX])
{
    const char *p[] = {org_id, user_id};
    return one_text(c, "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2 FOR UPDATE",
                    2, p, role, MEMBERSHIPS_DB_ROLE_MAX);
}

int memberships_db_set_role(pg_conn_t *c, const char *org_id, const char *user_id, const char *role)
{
    const char *p[] = {org_id, user_id, role};
    return db_exec_some(c, "UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2", 3,
                        p);
}

int memberships_db_delete(pg_conn_t *c, const char *org_id, const char *user_id)
{
    const char *p[] = {org_id, user_id};
    return db_exec_some(c, "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2", 2, p);
}

int memberships_db_get(pg_conn_t *c, const char *org_id, const char *user_id, json_t **member)
{
    const char *p[] = {org_id, user_id};
    return db_one_row(c,
                      "SELECT " MEMBER_COLS " FROM memberships m JOIN users u ON "
                      "u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2",
                      2, p, member_json, member);
}

int memberships_db_list(pg_conn_t *c, const char *org_id, const char *role, const db_page_t *page,
                        db_page_rows_t *out)
{
    const char *p[] = {org_id, role};
    return db_page_run(
        c,
        "SELECT " MEMBER_COLS " FROM memberships m JOIN users u ON u.id = m.user_id WHERE "
        "m.org_id = $1 AND ($2::text IS NULL OR m.role = $2) AND ($4::timestamptz IS NULL "
        "OR (m.created_at, u.id) {cmp} ($4::timestamptz, $5::uuid)) ORDER BY m.created_at {dir}, "
        "u.id {dir} LIMIT $3::int",
        p, 2, page, member_json, NULL, "user_id", out);
}

int memberships_db_pick_org(pg_conn_t *c, const char *user_id, const char *org, const char *within,
                            char org_id[DB_ID_LEN + 1])
{
    const char *p[] = {user_id, org, within};
    return one_text(c,
                    "SELECT m.org_id FROM memberships m JOIN orgs o ON o.id = m.org_id "
                    "WHERE m.user_id = $1 AND ($2::uuid IS NULL OR m.org_id = $2::uuid) "
                    "AND ($3::uuid IS NULL OR m.org_id = $3::uuid) "
                    "ORDER BY o.personal DESC, m.created_at LIMIT 1",
                    3, p, org_id, DB_ID_LEN + 1);
}
