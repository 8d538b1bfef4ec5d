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
#include "storage/invitations_db.h"
#include "storage/memberships_db.h"
#include "storage/orgs_db.h"
#include "storage/users_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name, *user_id; /* the organisation and its creator */
    json_t *org;                /* made (owned) */
} new_org_t;

/* One transaction: the organisation and its owner exist together. */
static int org_create_tx(pg_conn_t *c, void *arg)
{
    new_org_t *n = arg;
    json_decref(n->org); /* a retried transaction starts again */
    n->org = NULL;
    int err = orgs_db_insert(c, n->name, false, n->user_id, &n->org);
    if (!err)
        err = memberships_db_insert(c, json_string_value(json_object_get(n->org, "id")), n->user_id,
                                    "owner");
    return err;
}

void h_orgs_create(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *name = json_string_value(json_object_get(http_json_body(req, NULL), "name"));
    new_org_t n = {.name = name, .user_id = cl->user_id};
    int err = pg_tx(app__of(req)->pool, org_create_tx, &n);
    if (err) {
        app__db_error(req, err, NULL);
    } else {
        authcache_forget(app__of(req)->cache, cl->user_id);
        json_object_set_new(n.org, "role", json_string("owner"));
        app__reply(req, 201, json_incref(n.org));
    }
    json_decref(n.org);
}

typedef struct {
    const char *user_id, *name_like, *only_org;
} orgs_list_t;

static int orgs_list_read(http_req_t *req, pg_conn_t *c, void *arg, const db_page_t *page,
                          db_page_rows_t *out)
{
    (void)req;
    const orgs_list_t *l = arg;
    return orgs_db_list_for_user(c, l->user_id, l->name_like, l->only_org, page, out);
}

void h_orgs_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    /* ?q= filters by name (case-insensitive substring); a PAT sees its org only. */
    const char *q = http_query(req, "q");
    orgs_list_t l = {cl->user_id, q && *q ? q : NULL, cl->pat_id[0] ? cl->token_org : NULL};
    app__list(req, orgs_list_read, &l);
}

void h_orgs_get(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *org = NULL;
    int err = orgs_db_get_for_user(c, cl->org_id, cl->user_id, &org);
    if (err == FENTA_ENOTFOUND)
        app__fail(req, "not_found", "no such organisation", NULL);
    else if (err)
        app__db_error(req, err, c);
    else
        app__reply(req, 200, org);
    app__db_done(req, &c);
}

typedef struct {
    const char *org_id, *role;
} members_list_t;

static int members_list_read(http_req_t *req, pg_conn_t *c, void *arg, const db_page_t *page,
                             db_page_rows_t *out)
{
    (void)req;
    const members_list_t *l = arg;
    return memberships_db_list(c, l->org_id, l->role, page, out);
}

void h_members_list(http_req_t *req)
{
    caller_t *cl = app__caller(req);
    const char *role = http_query(req, "role");
    if (role && *role && !app__role_bit(role)) {
        app__fail(req, "invalid_request", "role must be owner, admin, editor or viewer", NULL);
        return;
    }
    members_list_t l = {cl->org_id, role && *role ? role : NULL};
    app__list(req, members_list_read, &l);
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
    json_t *inv = NULL;
    int err = invitations_db_create(c, cl->org_id, email, role, hash, cl->user_id, &inv);
    if (err) {
        app__db_error(req, err, c);
    } else {
        http_add_header(req, "cache-control", "no-store");
        app__reply(req, 201,
                   json_pack("{s:O, s:O, s:O, s:s, s:O}", "id", json_object_get(inv, "id"), "email",
                             json_object_get(inv, "email"), "role", json_object_get(inv, "role"),
                             "token", secret, "expires_at", json_object_get(inv, "expires_at")));
    }
    json_decref(inv);
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
    int nowners = 0;
    char role[MEMBERSHIPS_DB_ROLE_MAX];
    int err = memberships_db_lock_owners(c, m->org, &nowners);
    if (!err)
        err = memberships_db_role_for_update(c, m->org, m->user, role);
    if (err == FENTA_ENOTFOUND) {
        m->outcome = 404;
        return 0;
    }
    if (err)
        return err;
    unsigned target = app__role_bit(role);
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
    /* The row is locked: it is there to change. */
    if (m->role)
        err = memberships_db_set_role(c, m->org, m->user, m->role);
    else
        err = memberships_db_delete(c, m->org, m->user);
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
        json_t *member = NULL;
        int err = memberships_db_get(c, cl->org_id, user, &member);
        if (!err)
            app__reply(req, 200, member);
        else /* removed again meanwhile */
            app__db_error(req, err == FENTA_ENOTFOUND ? FENTA_ECONFLICT : err, c);
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

typedef struct {
    const char *hash, *user_id; /* the presented invitation, who accepts */
    char org_id[DB_ID_LEN + 1]; /* the organisation joined */
} accept_t;

/* One transaction: the invitation is accepted only if the membership is
 * made (an existing member leaves it unaccepted). The invitation is for one
 * email: the caller's. */
static int accept_tx(pg_conn_t *c, void *arg)
{
    accept_t *a = arg;
    json_t *user = NULL;
    char role[MEMBERSHIPS_DB_ROLE_MAX];
    int err = users_db_get(c, a->user_id, &user);
    if (!err)
        err = invitations_db_accept(c, a->hash, json_string_value(json_object_get(user, "email")),
                                    a->org_id, role, sizeof role);
    if (!err)
        err = memberships_db_insert(c, a->org_id, a->user_id, role);
    json_decref(user);
    return err;
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
    accept_t a = {.hash = hash, .user_id = cl->user_id};
    int err = pg_tx(app__of(req)->pool, accept_tx, &a);
    if (err == FENTA_EEXIST) {
        app__fail(req, "already_member", "you are already a member", NULL);
        return;
    }
    if (err == FENTA_ENOTFOUND) {
        app__fail(req, "not_found",
                  "no such invitation (or it expired, or is for "
                  "another email)",
                  NULL);
        return;
    }
    if (err) {
        app__db_error(req, err, NULL);
        return;
    }
    authcache_forget(app__of(req)->cache, cl->user_id);
    pg_conn_t *c = app__db(req);
    if (!c)
        return;
    json_t *member = NULL;
    err = memberships_db_get(c, a.org_id, cl->user_id, &member);
    if (!err)
        app__reply(req, 200, member);
    else /* removed again meanwhile */
        app__db_error(req, err == FENTA_ENOTFOUND ? FENTA_ECONFLICT : err, c);
    app__db_done(req, &c);
}
