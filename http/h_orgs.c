/* h_orgs.c - organisations, their members and invitations.
 *
 * Membership is the access boundary: the before hook has already answered
 * 404 to anyone who is not a member of the organisation in the path, and 403
 * to a role the permission table does not allow. What is checked here is
 * what the table cannot say: an admin does not touch owners, and an
 * organisation always keeps one owner. */
#include "http/app_internal.h"
#include "http/token.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORG_COLS "o.id, o.name, o.personal, " APP_TS("o.created_at") " AS created_at"
#define MEMBER_COLS                                                                                \
    "u.id AS user_id, u.email, u.name, m.role, " APP_TS(                                           \
        "m.created_at") " AS created_at, "                                                         \
                        "m.created_at AS raw_created"
#define INVITE_DAYS "7"

static json_t *member_json(app_t *app, const pg_result_t *r, int row)
{
    (void)app;
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "user_id", pg_getn(r, row, "user_id"), "email",
                     pg_getn(r, row, "email"), "name", pg_getn(r, row, "name"), "role",
                     pg_getn(r, row, "role"), "created_at", pg_getn(r, row, "created_at"));
}

void h_orgs_create(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *name = json_string_value(json_object_get(http_json_body(req, NULL), "name"));
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int err = 0;
    const char *p[] = {name, cl->user_id};
    pg_result_t *r = pg_query(
        c,
        "WITH o AS (INSERT INTO orgs (name, created_by) VALUES ($1, $2) RETURNING *), "
        "m AS (INSERT INTO memberships (org_id, user_id, role) SELECT id, $2, 'owner' FROM o) "
        "SELECT " ORG_COLS ", 'owner' AS role FROM o",
        2, p, &err);
    if (!r) {
        app__db_error(req, err, c);
    } else {
        authcache_forget(app__of(req)->cache, cl->user_id);
        app__reply(req, 201, app__org_json(app__of(req), r, 0));
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

void h_orgs_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    /* ?q= filters by name (case-insensitive substring); a PAT sees its org only. */
    const char *q = http_query(req, "q");
    const char *p[] = {cl->user_id, q && *q ? q : NULL, cl->pat_id[0] ? cl->token_org : NULL};
    app__list_page(
        req,
        "SELECT " ORG_COLS ", m.role, o.created_at AS raw_created FROM orgs o JOIN "
        "memberships m ON m.org_id = o.id WHERE m.user_id = $1 AND ($2::text IS NULL OR "
        "strpos(lower(o.name), lower($2)) > 0) AND ($3::uuid IS NULL OR o.id = $3::uuid) "
        "AND ($5::timestamptz IS NULL OR (o.created_at, o.id) {cmp} ($5::timestamptz, "
        "$6::uuid)) ORDER BY o.created_at {dir}, o.id {dir} LIMIT $4::int",
        p, 3, app__org_json, "id");
}

void h_orgs_get(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int err = 0;
    const char *p[] = {cl->org_id, cl->user_id};
    pg_result_t *r = pg_query(c,
                              "SELECT " ORG_COLS ", m.role FROM orgs o JOIN memberships m ON "
                              "m.org_id = o.id WHERE o.id = $1 AND m.user_id = $2",
                              2, p, &err);
    if (!r)
        app__db_error(req, err, c);
    else if (pg_nrows(r) != 1)
        app__fail(req, "not_found", "no such organisation", NULL);
    else
        app__reply(req, 200, app__org_json(app__of(req), r, 0));
    pg_result_free(&r);
    app__db_done(req, &c);
}

void h_members_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *role = http_query(req, "role");
    if (role && *role && !app__role_bit(role)) {
        app__fail(req, "invalid_request", "role must be owner, admin, editor or viewer", NULL);
        return;
    }
    const char *p[] = {cl->org_id, role && *role ? role : NULL};
    app__list_page(
        req,
        "SELECT " MEMBER_COLS " FROM memberships m JOIN users u ON u.id = m.user_id WHERE "
        "m.org_id = $1 AND ($2::text IS NULL OR m.role = $2) AND ($4::timestamptz IS NULL "
        "OR (m.created_at, u.id) {cmp} ($4::timestamptz, $5::uuid)) ORDER BY m.created_at {dir}, "
        "u.id {dir} "
        "LIMIT $3::int",
        p, 2, member_json, "user_id");
}

void h_members_invite(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    json_t *b = http_json_body(req, NULL);
    const char *email = json_string_value(json_object_get(b, "email"));
    const char *role = json_string_value(json_object_get(b, "role"));
    if (app__role_bit(role) == ROLE_ADMIN && !(cl->role & ROLE_OWNER)) {
        app__fail(req, "forbidden", "only an owner can invite an admin", NULL);
        return;
    }
    char pat[TOKEN_SECRET_MAX + 1], secret[TOKEN_SECRET_MAX + 8], hash[TOKEN_HASH_HEX_LEN + 1];
    if (token_generate(TOKEN_KIND_PAT, pat, sizeof pat) != 0) {
        app__fail(req, "internal", "could not make an invitation", NULL);
        return;
    }
    snprintf(secret, sizeof secret, "fenta_inv_%s", pat + strlen(TOKEN_PAT_PREFIX));
    token_hash(secret, strlen(secret), hash, sizeof hash);
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int err = 0;
    const char *p[] = {cl->org_id, email, role, hash, cl->user_id};
    pg_result_t *r = pg_query(
        c,
        "INSERT INTO invitations (org_id, email, role, token_hash, invited_by, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, now() + interval '" INVITE_DAYS " days') RETURNING id, "
        "email, role, " APP_TS("expires_at") " AS expires_at",
        5, p, &err);
    if (!r) {
        app__db_error(req, err, c);
    } else {
        http_add_header(req, "cache-control", "no-store");
        app__reply(req, 201,
                   json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", pg_get(r, 0, 0), "email",
                             pg_get(r, 0, 1), "role", pg_get(r, 0, 2), "token", secret,
                             "expires_at", pg_get(r, 0, 3)));
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}

typedef struct {
    const char *org, *user, *role; /* the change (role NULL: removal) */
    unsigned actor_role;           /* who asks */
    int outcome;                   /* 0 done, 404, 403, 409 */
    const char *why;               /* for 403/409 */
} member_change_t;

/* Serialised per organisation (FOR UPDATE on its owners) so two concurrent
 * changes cannot both remove the last owner. */
static int member_change_tx(pg_conn_t *c, void *arg)
{
    member_change_t *m = arg;
    int err = 0;
    const char *p[] = {m->org};
    pg_result_t *owners = pg_query(c,
                                   "SELECT user_id FROM memberships WHERE org_id = $1 AND role = "
                                   "'owner' FOR UPDATE",
                                   1, p, &err);
    if (!owners)
        return err;
    int nowners = pg_nrows(owners);
    pg_result_free(&owners);
    const char *pt[] = {m->org, m->user};
    pg_result_t *t =
        pg_query(c, "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2 FOR UPDATE", 2,
                 pt, &err);
    if (!t)
        return err;
    if (pg_nrows(t) != 1) {
        m->outcome = 404;
        pg_result_free(&t);
        return 0;
    }
    unsigned target = app__role_bit(pg_get(t, 0, 0));
    pg_result_free(&t);
    unsigned wanted = m->role ? app__role_bit(m->role) : 0;
    if (!(m->actor_role & ROLE_OWNER) && ((target & ROLE_OWNER) || (wanted & ROLE_OWNER))) {
        m->outcome = 403;
        m->why = "only an owner can change or remove an owner";
        return 0;
    }
    if ((target & ROLE_OWNER) && !(wanted & ROLE_OWNER) && nowners <= 1) {
        m->outcome = 409;
        m->why = "an organisation keeps at least one owner";
        return 0;
    }
    if (m->role) {
        const char *pu[] = {m->org, m->user, m->role};
        err = app__exec(c, "UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2", 3,
                        pu);
    } else {
        err = app__exec(c, "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2", 2, pt);
    }
    m->outcome = 0;
    return err;
}

static void member_change(http_req_t *req, const char *role)
{
    caller_t *cl = app__caller(req);
    const char *user = http_param(req, "user_id");
    if (!app__is_uuid(user)) {
        app__fail(req, "not_found", "no such member", NULL);
        return;
    }
    member_change_t m = {.org = cl->org_id, .user = user, .role = role, .actor_role = cl->role};
    int rc = pg_tx(app__of(req)->pool, member_change_tx, &m);
    authcache_forget(app__of(req)->cache, user);
    if (rc) {
        app__db_error(req, rc, NULL);
        return;
    }
    if (m.outcome == 404) {
        app__fail(req, "not_found", "no such member", NULL);
    } else if (m.outcome == 403) {
        app__fail(req, "forbidden", m.why, NULL);
    } else if (m.outcome == 409) {
        app__fail(req, "last_owner", m.why, NULL);
    } else if (!role) {
        app__no_content(req);
    } else {
        pg_conn_t *c = app__db(req);
        if (!c)
            return;
        int err = 0;
        const char *p[] = {cl->org_id, user};
        pg_result_t *r = pg_query(c,
                                  "SELECT " MEMBER_COLS " FROM memberships m JOIN users u ON "
                                  "u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2",
                                  2, p, &err);
        if (r && pg_nrows(r) == 1)
            app__reply(req, 200, member_json(app__of(req), r, 0));
        else
            app__db_error(req, err ? err : FENTA_ECONFLICT, c);
        pg_result_free(&r);
        app__db_done(req, &c);
    }
}

void h_members_update(http_req_t *req)
{
    member_change(req, json_string_value(json_object_get(http_json_body(req, NULL), "role")));
}

void h_members_remove(http_req_t *req)
{
    member_change(req, NULL);
}

void h_invitations_accept(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *tok = json_string_value(json_object_get(http_json_body(req, NULL), "token"));
    char hash[TOKEN_HASH_HEX_LEN + 1];
    if (token_hash(tok, strlen(tok), hash, sizeof hash) != 0) {
        app__fail(req, "not_found", "no such invitation", NULL);
        return;
    }
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    int err = 0;
    /* The invitation is for one email: the caller's. Accepting twice or
     * after expiry finds nothing. */
    const char *p[] = {hash, cl->user_id};
    pg_result_t *r = pg_query(
        c,
        "WITH i AS (UPDATE invitations SET accepted_at = now() WHERE token_hash = $1 AND "
        "accepted_at IS NULL AND expires_at > now() AND lower(email) = (SELECT lower(email) "
        "FROM users WHERE id = $2) RETURNING org_id, role) INSERT INTO memberships (org_id, "
        "user_id, role) SELECT org_id, $2, role FROM i RETURNING org_id",
        2, p, &err);
    if (!r) {
        if (err == FENTA_EEXIST)
            app__fail(req, "already_member", "you are already a member", NULL);
        else
            app__db_error(req, err, c);
    } else if (pg_nrows(r) != 1) {
        app__fail(req, "not_found",
                  "no such invitation (or it expired, or is for "
                  "another email)",
                  NULL);
    } else {
        authcache_forget(app__of(req)->cache, cl->user_id);
        const char *pm[] = {pg_get(r, 0, 0), cl->user_id};
        pg_result_t *m = pg_query(c,
                                  "SELECT " MEMBER_COLS " FROM memberships m JOIN users u ON "
                                  "u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2",
                                  2, pm, &err);
        if (m && pg_nrows(m) == 1)
            app__reply(req, 200, member_json(app__of(req), m, 0));
        else
            app__db_error(req, err ? err : FENTA_ECONFLICT, c);
        pg_result_free(&m);
    }
    pg_result_free(&r);
    app__db_done(req, &c);
}
