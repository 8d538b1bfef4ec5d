/* orgs_db.c - statements on orgs and their row mapping. See orgs_db.h. */
#include "storage/orgs_db.h"
#include "runtime/error.h"

#include <string.h>

#define ORG_COLS "o.id, o.name, o.personal, " DB_TS("o.created_at") " AS created_at"

/* The API object of a row with ORG_COLS and, optionally, a role column. */
static json_t *org_json(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    json_t *o = json_pack("{s:s, s:s, s:b, s:s}", "id", pg_getn(r, row, "id"), "name",
                          pg_getn(r, row, "name"), "personal",
                          strcmp(pg_getn(r, row, "personal"), "t") == 0, "created_at",
                          pg_getn(r, row, "created_at"));
    const char *role = pg_getn(r, row, "role");
    if (o && role)
        json_object_set_new(o, "role", json_string(role));
    return o;
}

int orgs_db_insert(pg_conn_t *c, const char *name, bool personal, const char *created_by,
                   json_t **org)
{
    const char *p[] = {name, personal ? "true" : "false", created_by};
    return db_insert_one(c,
                         "INSERT INTO orgs AS o (name, personal, created_by) VALUES ($1, "
                         "$2::boolean, $3) RETURNING " ORG_COLS,
                         3, p, org_json, org);
}

int orgs_db_get_for_user(pg_conn_t *c, const char *org_id, const char *user_id, json_t **org)
{
    const char *p[] = {org_id, user_id};
    return db_one_row(c,
                      "SELECT " ORG_COLS ", m.role FROM orgs o JOIN memberships m ON "
                      "m.org_id = o.id WHERE o.id = $1 AND m.user_id = $2",
                      2, p, org_json, org);
}

int orgs_db_list_for_user(pg_conn_t *c, const char *user_id, const char *name_like,
                          const char *only_org, const db_page_t *page, db_page_rows_t *out)
{
    const char *p[] = {user_id, name_like, only_org};
    return db_page_run(
        c,
        "SELECT " ORG_COLS ", m.role, o.created_at AS raw_created FROM orgs o JOIN "
        "memberships m ON m.org_id = o.id WHERE m.user_id = $1 AND ($2::text IS NULL OR "
        "strpos(lower(o.name), lower($2)) > 0) AND ($3::uuid IS NULL OR o.id = $3::uuid) "
        "AND ($5::timestamptz IS NULL OR (o.created_at, o.id) {cmp} ($5::timestamptz, "
        "$6::uuid)) ORDER BY o.created_at {dir}, o.id {dir} LIMIT $4::int",
        p, 3, page, org_json, NULL, "id", out);
}
