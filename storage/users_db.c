/* users_db.c - statements on users and their row mapping. See users_db.h. */
#include "storage/users_db.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_COLS "u.id, u.email, u.name, " DB_TS("u.created_at") " AS created_at"

static json_t *user_json(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    return json_pack("{s:s, s:s, s:s, s:s}", "id", pg_getn(r, row, "id"), "email",
                     pg_getn(r, row, "email"), "name", pg_getn(r, row, "name"), "created_at",
                     pg_getn(r, row, "created_at"));
}

int users_db_insert(pg_conn_t *c, const char *email, const char *name, const char *password_hash,
                    char id[DB_ID_LEN + 1])
{
    const char *p[] = {email, name, password_hash};
    /* users_email_key is unique on lower(email): a taken email in another
     * case is a unique violation, FENTA_EEXIST from pg.c. */
    return db_insert_id(
        c, "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id", 3, p,
        id);
}

int users_db_credentials(pg_conn_t *c, const char *email, char id[DB_ID_LEN + 1],
                         char **password_hash)
{
    *password_hash = NULL;
    const char *p[] = {email};
    pg_result_t *r = NULL;
    int err = db_query_row(c, "SELECT id, password_hash FROM users WHERE lower(email) = lower($1)",
                           1, p, &r);
    if (err)
        return err;
    snprintf(id, DB_ID_LEN + 1, "%s", pg_get(r, 0, 0));
    if (!(*password_hash = strdup(pg_get(r, 0, 1))))
        err = FENTA_ENOMEM;
    pg_result_free(&r);
    return err;
}

int users_db_get(pg_conn_t *c, const char *id, json_t **user)
{
    const char *p[] = {id};
    return db_one_row(c, "SELECT " USER_COLS " FROM users u WHERE u.id = $1", 1, p, user_json,
                      user);
}

int users_db_identity(pg_conn_t *c, const char *id, json_t **doc)
{
    *doc = NULL;
    const char *p[] = {id};
    /* One round trip: the user and their organisations with roles, which
     * PostgreSQL aggregates into one JSON text. */
    pg_result_t *r = NULL;
    int err = db_query_row(
        c,
        "SELECT " USER_COLS ", (SELECT coalesce(json_agg(json_build_object('id', o.id, "
        "'name', o.name, 'personal', o.personal, 'created_at', " DB_TS(
            "o.created_at") ", 'role', m.role) ORDER BY o.created_at, o.id), '[]') FROM "
                            "orgs o JOIN memberships m ON m.org_id = o.id WHERE m.user_id = "
                            "u.id)::text AS orgs FROM users u WHERE u.id = $1",
        1, p, &r);
    if (err)
        return err;
    json_t *orgs = json_loads(pg_getn(r, 0, "orgs"), 0, NULL);
    *doc = orgs ? json_pack("{s:o, s:o}", "user", user_json(r, 0, NULL), "orgs", orgs) : NULL;
    pg_result_free(&r);
    return *doc ? 0 : FENTA_EIO;
}
