/* test_accounts_db.c - the owners of the account tables (users_db, orgs_db,
 * memberships_db, invitations_db, sessions_db, tokens_db, idempotency_db)
 * and the keyset page they share (db.h), against a real PostgreSQL: the
 * rows they write and read, and the FENTA_E* code of each refusal.
 *
 * One suite for the seven modules rather than one each: the tables refer to
 * one another (every fixture needs a user and an organisation), and each
 * suite binary starts a PostgreSQL cluster of its own. */
#include "runtime/error.h"
#include "storage/db.h"
#include "storage/idempotency_db.h"
#include "storage/invitations_db.h"
#include "storage/memberships_db.h"
#include "storage/migrate.h"
#include "storage/orgs_db.h"
#include "storage/pg.h"
#include "storage/sessions_db.h"
#include "storage/tokens_db.h"
#include "storage/users_db.h"
#include "tests/support/pg_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *ci;        /* this test's database */
static pg_pool_t *pool; /* on it */
static pg_conn_t *c;    /* the connection every call uses */

static void setup(void)
{
    ci = fx_pg_fresh_db();
    int err = 0;
    pool = pg_pool_new(ci, 2, &err);
    cr_assert_not_null(pool);
    int applied = 0;
    cr_assert_eq(migrate_apply(pool, FENTA_SOURCE_SCHEMAS "/sql", &applied), 0);
    c = pg_acquire(pool, 10000, &err);
    cr_assert_not_null(c, "%s", fenta_strerror(err));
}

static void teardown(void)
{
    pg_release(pool, &c);
    pg_pool_destroy(&pool);
    free(ci);
}

TestSuite(accounts_db, .init = setup, .fini = teardown, .timeout = 60);

/* Runs sql with one parameter (the tests' way to age rows and to look at
 * them): the rows it touched or returned. */
static int sql1(const char *sql, const char *p1)
{
    const char *p[] = {p1};
    int n = pg_exec(c, sql, 1, p);
    cr_assert_geq(n, 0, "%s: %s", sql, pg_error_message(c));
    return n;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    cr_assert_not_null(s, "no string %s", key);
    return s;
}

/* A user with a personal organisation they own: what registration makes. */
static void account(const char *email, char user[DB_ID_LEN + 1], char org[DB_ID_LEN + 1])
{
    cr_assert_eq(users_db_insert(c, email, "Ana", "hash", user), 0, "%s", pg_error_message(c));
    json_t *o = NULL;
    cr_assert_eq(orgs_db_insert(c, "Ana's workspace", true, user, &o), 0);
    snprintf(org, DB_ID_LEN + 1, "%s", str(o, "id"));
    json_decref(o);
    cr_assert_eq(memberships_db_insert(c, org, user, "owner"), 0);
}

/* Another organisation created by user, who owns it. */
static void team(const char *name, const char *user, char org[DB_ID_LEN + 1])
{
    json_t *o = NULL;
    cr_assert_eq(orgs_db_insert(c, name, false, user, &o), 0);
    snprintf(org, DB_ID_LEN + 1, "%s", str(o, "id"));
    cr_assert(json_is_false(json_object_get(o, "personal")));
    cr_assert_null(json_object_get(o, "role"), "a new organisation has no role yet");
    json_decref(o);
    cr_assert_eq(memberships_db_insert(c, org, user, "owner"), 0);
}

#define NOBODY "00000000-0000-0000-0000-00000000abcd"

/* ---- users ----------------------------------------------------------------------- */

Test(accounts_db, users_insert_get_and_a_taken_email_in_any_case)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], other[DB_ID_LEN + 1];
    account("Ana@Example.com", u, org);
    json_t *user = NULL;
    cr_assert_eq(users_db_get(c, u, &user), 0);
    cr_assert_str_eq(str(user, "id"), u);
    cr_assert_str_eq(str(user, "email"), "Ana@Example.com");
    cr_assert_str_eq(str(user, "name"), "Ana");
    cr_assert_eq(strlen(str(user, "created_at")), strlen("2026-01-02T03:04:05.123456Z"));
    cr_assert_eq(json_object_size(user), 4, "the password hash never leaves the module");
    json_decref(user);

    cr_assert_eq(users_db_insert(c, "ana@EXAMPLE.com", "Other", "h", other), FENTA_EEXIST);
    cr_assert_eq(users_db_get(c, NOBODY, &user), FENTA_ENOTFOUND);
    cr_assert_null(user);
}

Test(accounts_db, credentials_by_email_in_any_case_and_unknown_is_not_found)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], id[DB_ID_LEN + 1];
    account("bo@example.com", u, org);
    char *hash = NULL;
    cr_assert_eq(users_db_credentials(c, "BO@example.COM", id, &hash), 0);
    cr_assert_str_eq(id, u);
    cr_assert_str_eq(hash, "hash");
    free(hash);
    cr_assert_eq(users_db_credentials(c, "nobody@example.com", id, &hash), FENTA_ENOTFOUND);
    cr_assert_null(hash);
}

Test(accounts_db, identity_is_the_user_and_their_organisations_with_roles)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], t[DB_ID_LEN + 1], v[DB_ID_LEN + 1],
        vorg[DB_ID_LEN + 1];
    account("cy@example.com", u, org);
    account("dee@example.com", v, vorg);
    team("Team", v, t);
    cr_assert_eq(memberships_db_insert(c, t, u, "viewer"), 0);
    json_t *doc = NULL;
    cr_assert_eq(users_db_identity(c, u, &doc), 0);
    cr_assert_str_eq(str(json_object_get(doc, "user"), "id"), u);
    json_t *orgs = json_object_get(doc, "orgs");
    cr_assert_eq(json_array_size(orgs), 2, "not dee's personal organisation");
    cr_assert_str_eq(str(json_array_get(orgs, 0), "id"), org, "oldest first");
    cr_assert_str_eq(str(json_array_get(orgs, 0), "role"), "owner");
    cr_assert(json_is_true(json_object_get(json_array_get(orgs, 0), "personal")));
    cr_assert_str_eq(str(json_array_get(orgs, 1), "id"), t);
    cr_assert_str_eq(str(json_array_get(orgs, 1), "role"), "viewer");
    json_decref(doc);
    cr_assert_eq(users_db_identity(c, NOBODY, &doc), FENTA_ENOTFOUND);
}

/* ---- registration: three owners in one transaction --------------------------------- */

typedef struct {
    const char *email, *role;
    char user[DB_ID_LEN + 1];
} signup_t;

static int signup_tx(pg_conn_t *tc, void *arg)
{
    signup_t *s = arg;
    json_t *o = NULL;
    int err = users_db_insert(tc, s->email, "Eve", "h", s->user);
    if (!err)
        err = orgs_db_insert(tc, "Eve's workspace", true, s->user, &o);
    if (!err)
        err = memberships_db_insert(tc, str(o, "id"), s->user, s->role);
    json_decref(o);
    return err;
}

Test(accounts_db, callers_compose_owners_in_one_transaction)
{
    /* A membership the database refuses (no such role) takes the user and
     * the organisation with it. */
    signup_t bad = {.email = "eve@example.com", .role = "emperor"};
    cr_assert_eq(pg_tx(pool, signup_tx, &bad), FENTA_EINVAL);
    char id[DB_ID_LEN + 1], *hash = NULL;
    cr_assert_eq(users_db_credentials(c, "eve@example.com", id, &hash), FENTA_ENOTFOUND);

    signup_t ok = {.email = "eve@example.com", .role = "owner"};
    cr_assert_eq(pg_tx(pool, signup_tx, &ok), 0);
    char org[DB_ID_LEN + 1];
    cr_assert_eq(memberships_db_pick_org(c, ok.user, NULL, NULL, org), 0);
    char role[MEMBERSHIPS_DB_ROLE_MAX];
    cr_assert_eq(memberships_db_role(c, org, ok.user, role), 0);
    cr_assert_str_eq(role, "owner");
}

/* ---- organisations and memberships --------------------------------------------------- */

Test(accounts_db, an_organisation_is_read_only_by_its_members)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], v[DB_ID_LEN + 1], vorg[DB_ID_LEN + 1];
    account("fay@example.com", u, org);
    account("gus@example.com", v, vorg);
    json_t *o = NULL;
    cr_assert_eq(orgs_db_get_for_user(c, org, u, &o), 0);
    cr_assert_str_eq(str(o, "id"), org);
    cr_assert_str_eq(str(o, "name"), "Ana's workspace");
    cr_assert_str_eq(str(o, "role"), "owner");
    json_decref(o);
    cr_assert_eq(orgs_db_get_for_user(c, org, v, &o), FENTA_ENOTFOUND);
    cr_assert_eq(orgs_db_get_for_user(c, NOBODY, u, &o), FENTA_ENOTFOUND);
}

Test(accounts_db, membership_codes)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], v[DB_ID_LEN + 1], vorg[DB_ID_LEN + 1];
    account("hal@example.com", u, org);
    account("ida@example.com", v, vorg);
    char role[MEMBERSHIPS_DB_ROLE_MAX];
    cr_assert_eq(memberships_db_insert(c, org, u, "viewer"), FENTA_EEXIST, "already a member");
    cr_assert_eq(memberships_db_insert(c, NOBODY, u, "viewer"), FENTA_ECONFLICT, "no such org");
    cr_assert_eq(memberships_db_role(c, org, v, role), FENTA_ENOTFOUND);
    cr_assert_eq(memberships_db_set_role(c, org, v, "admin"), FENTA_ENOTFOUND);
    cr_assert_eq(memberships_db_delete(c, org, v), FENTA_ENOTFOUND);
    json_t *m = NULL;
    cr_assert_eq(memberships_db_get(c, org, v, &m), FENTA_ENOTFOUND);

    cr_assert_eq(memberships_db_insert(c, org, v, "editor"), 0);
    cr_assert_eq(memberships_db_set_role(c, org, v, "admin"), 0);
    cr_assert_eq(memberships_db_role(c, org, v, role), 0);
    cr_assert_str_eq(role, "admin");
    cr_assert_eq(memberships_db_get(c, org, v, &m), 0);
    cr_assert_str_eq(str(m, "user_id"), v);
    cr_assert_str_eq(str(m, "email"), "ida@example.com");
    cr_assert_str_eq(str(m, "role"), "admin");
    json_decref(m);

    int owners = 0;
    cr_assert_eq(memberships_db_lock_owners(c, org, &owners), 0);
    cr_assert_eq(owners, 1);
    cr_assert_eq(memberships_db_role_for_update(c, org, v, role), 0);
    cr_assert_eq(memberships_db_delete(c, org, v), 0);
    cr_assert_eq(memberships_db_role_for_update(c, org, v, role), FENTA_ENOTFOUND);
}

Test(accounts_db, pick_org_prefers_the_personal_one_within_the_limits_given)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], t[DB_ID_LEN + 1], v[DB_ID_LEN + 1],
        vorg[DB_ID_LEN + 1], got[DB_ID_LEN + 1];
    account("jo@example.com", u, org);
    team("Team", u, t);
    account("kit@example.com", v, vorg);
    cr_assert_eq(memberships_db_pick_org(c, u, NULL, NULL, got), 0);
    cr_assert_str_eq(got, org);
    cr_assert_eq(memberships_db_pick_org(c, u, t, NULL, got), 0);
    cr_assert_str_eq(got, t);
    cr_assert_eq(memberships_db_pick_org(c, u, NULL, t, got), 0);
    cr_assert_str_eq(got, t);
    cr_assert_eq(memberships_db_pick_org(c, u, org, t, got), FENTA_ENOTFOUND, "two limits");
    cr_assert_eq(memberships_db_pick_org(c, u, vorg, NULL, got), FENTA_ENOTFOUND, "not a member");
    cr_assert_eq(memberships_db_pick_org(c, NOBODY, NULL, NULL, got), FENTA_ENOTFOUND);
}

/* Every item of every page of a list, in order, following next_at/next_id. */
typedef int (*list_fn)(const db_page_t *page, const void *arg, db_page_rows_t *out);

static json_t *walk(list_fn fn, const void *arg, int limit, bool desc, int *pages)
{
    json_t *all = json_array();
    char *at = NULL, *id = NULL;
    for (*pages = 0;; ++*pages) {
        db_page_t page = {.limit = limit, .after_at = at, .after_id = id, .desc = desc};
        db_page_rows_t rows;
        cr_assert_eq(fn(&page, arg, &rows), 0, "%s", pg_error_message(c));
        cr_assert_leq(json_array_size(rows.rows), (size_t)limit);
        json_array_extend(all, rows.rows);
        free(at);
        free(id);
        at = rows.next_at ? strdup(rows.next_at) : NULL;
        id = rows.next_id ? strdup(rows.next_id) : NULL;
        db_page_rows_free(&rows);
        cr_assert_null(rows.rows);
        if (!at) {
            ++*pages;
            return all;
        }
        cr_assert_eq(json_array_size(all) % limit, 0, "only a full page has a next one");
    }
}

static int orgs_of(const db_page_t *page, const void *arg, db_page_rows_t *out)
{
    const char *const *a = arg; /* user, name_like, only_org */
    return orgs_db_list_for_user(c, a[0], a[1], a[2], page, out);
}

Test(accounts_db, orgs_list_in_keyset_pages_both_ways_with_filters)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], t[4][DB_ID_LEN + 1];
    account("lu@example.com", u, org);
    const char *names[] = {"Alpha", "Beta", "alphabet", "Gamma"};
    for (int i = 0; i < 4; i++)
        team(names[i], u, t[i]);
    int pages = 0;
    const char *all_args[] = {u, NULL, NULL};
    json_t *all = walk(orgs_of, all_args, 2, false, &pages);
    cr_assert_eq(json_array_size(all), 5);
    cr_assert_eq(pages, 3);
    cr_assert_str_eq(str(json_array_get(all, 0), "id"), org, "oldest first");
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(str(json_array_get(all, i + 1), "id"), t[i]);
        cr_assert_str_eq(str(json_array_get(all, i + 1), "role"), "owner");
    }
    json_decref(all);

    all = walk(orgs_of, all_args, 2, true, &pages);
    cr_assert_eq(json_array_size(all), 5);
    cr_assert_str_eq(str(json_array_get(all, 0), "id"), t[3], "newest first");
    cr_assert_str_eq(str(json_array_get(all, 4), "id"), org);
    json_decref(all);

    const char *like[] = {u, "ALPHA", NULL};
    all = walk(orgs_of, like, 10, false, &pages);
    cr_assert_eq(json_array_size(all), 2);
    cr_assert_eq(pages, 1);
    cr_assert_str_eq(str(json_array_get(all, 1), "name"), "alphabet");
    json_decref(all);

    const char *only[] = {u, NULL, t[2]};
    all = walk(orgs_of, only, 10, false, &pages);
    cr_assert_eq(json_array_size(all), 1);
    cr_assert_str_eq(str(json_array_get(all, 0), "id"), t[2]);
    json_decref(all);
}

static int members_of(const db_page_t *page, const void *arg, db_page_rows_t *out)
{
    const char *const *a = arg; /* org, role */
    return memberships_db_list(c, a[0], a[1], page, out);
}

Test(accounts_db, members_list_in_pages_filtered_by_role)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1];
    account("max@example.com", u, org);
    for (int i = 0; i < 4; i++) {
        char e[32], v[DB_ID_LEN + 1], vorg[DB_ID_LEN + 1];
        snprintf(e, sizeof e, "m%d@example.com", i);
        account(e, v, vorg);
        cr_assert_eq(memberships_db_insert(c, org, v, i % 2 ? "viewer" : "editor"), 0);
    }
    int pages = 0;
    const char *a[] = {org, NULL};
    json_t *all = walk(members_of, a, 3, false, &pages);
    cr_assert_eq(json_array_size(all), 5);
    cr_assert_eq(pages, 2);
    cr_assert_str_eq(str(json_array_get(all, 0), "user_id"), u);
    json_decref(all);
    const char *viewers[] = {org, "viewer"};
    all = walk(members_of, viewers, 3, true, &pages);
    cr_assert_eq(json_array_size(all), 2);
    cr_assert_str_eq(str(json_array_get(all, 0), "email"), "m3@example.com", "newest first");
    json_decref(all);
}

/* ---- invitations ---------------------------------------------------------------------- */

Test(accounts_db, an_invitation_is_accepted_once_by_its_email_before_it_expires)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], got[DB_ID_LEN + 1], role[16];
    account("ned@example.com", u, org);
    json_t *inv = NULL;
    cr_assert_eq(invitations_db_create(c, org, "Olga@Example.com", "editor", "h1", u, &inv), 0);
    cr_assert_str_eq(str(inv, "email"), "Olga@Example.com");
    cr_assert_str_eq(str(inv, "role"), "editor");
    cr_assert_not_null(json_object_get(inv, "expires_at"));
    json_decref(inv);
    cr_assert_eq(invitations_db_accept(c, "h1", "eve@example.com", got, role, sizeof role),
                 FENTA_ENOTFOUND, "another email");
    cr_assert_eq(invitations_db_accept(c, "h2", "olga@example.com", got, role, sizeof role),
                 FENTA_ENOTFOUND, "another token");
    cr_assert_eq(invitations_db_accept(c, "h1", "olga@example.com", got, role, sizeof role), 0);
    cr_assert_str_eq(got, org);
    cr_assert_str_eq(role, "editor");
    cr_assert_eq(invitations_db_accept(c, "h1", "olga@example.com", got, role, sizeof role),
                 FENTA_ENOTFOUND, "twice");

    cr_assert_eq(invitations_db_create(c, org, "pat@example.com", "viewer", "h3", u, &inv), 0);
    json_decref(inv);
    sql1("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
         "h3");
    cr_assert_eq(invitations_db_accept(c, "h3", "pat@example.com", got, role, sizeof role),
                 FENTA_ENOTFOUND, "expired");
}

/* ---- sessions and refresh tokens ----------------------------------------------------- */

Test(accounts_db, a_session_is_live_until_revoked_once)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], v[DB_ID_LEN + 1], vorg[DB_ID_LEN + 1];
    char sid[DB_ID_LEN + 1];
    account("quinn@example.com", u, org);
    account("ray@example.com", v, vorg);
    cr_assert_eq(sessions_db_create(c, u, sid), 0);
    cr_assert_eq(sessions_db_live(c, sid, u), 0);
    cr_assert_eq(sessions_db_live(c, sid, v), FENTA_ENOTFOUND, "another user's");
    cr_assert_eq(sessions_db_live(c, NOBODY, u), FENTA_ENOTFOUND);
    cr_assert_eq(sessions_db_revoke(c, sid, "logout"), 0);
    cr_assert_eq(sessions_db_live(c, sid, u), FENTA_ENOTFOUND, "revoked");
    cr_assert_eq(sessions_db_revoke(c, sid, "logout"), FENTA_ENOTFOUND, "already revoked");
    cr_assert_eq(sessions_db_create(c, NOBODY, sid), FENTA_ECONFLICT, "no such user");
}

Test(accounts_db, a_refresh_token_is_found_locked_with_its_state)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], sid[DB_ID_LEN + 1];
    account("sam@example.com", u, org);
    cr_assert_eq(sessions_db_create(c, u, sid), 0);
    cr_assert_eq(sessions_db_add_refresh(c, sid, "r1"), 0);
    cr_assert_eq(sessions_db_add_refresh(c, sid, "r2"), 0);
    sessions_db_refresh_t t;
    cr_assert_eq(sessions_db_refresh_lock(c, "nope", &t), FENTA_ENOTFOUND);
    cr_assert_eq(sessions_db_refresh_lock(c, "r1", &t), 0);
    cr_assert_str_eq(t.sid, sid);
    cr_assert_str_eq(t.user_id, u);
    cr_assert(!t.rotated && !t.expired && !t.revoked);

    cr_assert_eq(sessions_db_refresh_rotate(c, "r1"), 0);
    cr_assert_eq(sessions_db_refresh_rotate(c, "nope"), FENTA_ENOTFOUND);
    cr_assert_eq(sessions_db_refresh_lock(c, "r1", &t), 0);
    cr_assert(t.rotated && !t.expired && !t.revoked);

    sql1("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = "
         "$1",
         "r2");
    cr_assert_eq(sessions_db_refresh_lock(c, "r2", &t), 0);
    cr_assert(!t.rotated && t.expired && !t.revoked);

    cr_assert_eq(sessions_db_revoke(c, sid, "refresh token reuse"), 0);
    cr_assert_eq(sessions_db_refresh_lock(c, "r1", &t), 0);
    cr_assert(t.revoked);
    /* A token's lifetime is the header's (the cookie's Max-Age). */
    int err = 0;
    const char *p[] = {"r1"};
    pg_result_t *r = pg_query(c,
                              "SELECT extract(epoch FROM expires_at - created_at)::int FROM "
                              "refresh_tokens WHERE token_hash = $1",
                              1, p, &err);
    cr_assert_not_null(r);
    cr_assert_eq(atoi(pg_get(r, 0, 0)), SESSIONS_DB_REFRESH_TTL_S);
    pg_result_free(&r);
}

/* ---- personal access tokens ------------------------------------------------------------ */

static void new_token(const char *user, const char *org, const char *hash, const char *expires,
                      char id[DB_ID_LEN + 1])
{
    json_t *scopes = json_pack("[s,s]", "read", "write"), *tok = NULL;
    cr_assert_eq(tokens_db_insert(c, user, org, "ci", scopes, hash, "fenta_pat_abc", expires, &tok),
                 0, "%s", pg_error_message(c));
    cr_assert(json_equal(json_object_get(tok, "scopes"), scopes));
    cr_assert_str_eq(str(tok, "org_id"), org);
    cr_assert_str_eq(str(tok, "prefix"), "fenta_pat_abc");
    cr_assert(json_is_null(json_object_get(tok, "last_used_at")));
    cr_assert(expires ? json_is_string(json_object_get(tok, "expires_at"))
                      : json_is_null(json_object_get(tok, "expires_at")));
    snprintf(id, DB_ID_LEN + 1, "%s", str(tok, "id"));
    json_decref(scopes);
    json_decref(tok);
}

Test(accounts_db, a_token_authenticates_until_revoked_or_expired)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], v[DB_ID_LEN + 1], vorg[DB_ID_LEN + 1];
    char id[DB_ID_LEN + 1], old[DB_ID_LEN + 1];
    account("tia@example.com", u, org);
    account("uma@example.com", v, vorg);
    new_token(u, org, "t1", NULL, id);
    tokens_db_auth_t a;
    cr_assert_eq(tokens_db_authenticate(c, "t1", &a), 0);
    cr_assert_str_eq(a.id, id);
    cr_assert_str_eq(a.user_id, u);
    cr_assert_str_eq(a.org_id, org);
    cr_assert_str_eq(a.scopes, "read,write");
    cr_assert_eq(sql1("SELECT 1 FROM personal_access_tokens WHERE token_hash = $1 AND "
                      "last_used_at IS NOT NULL",
                      "t1"),
                 1, "its use is recorded");
    cr_assert_eq(tokens_db_authenticate(c, "t9", &a), FENTA_ENOTFOUND);

    cr_assert_eq(tokens_db_revoke(c, id, v), FENTA_ENOTFOUND, "another user's");
    cr_assert_eq(tokens_db_revoke(c, id, u), 0);
    cr_assert_eq(tokens_db_authenticate(c, "t1", &a), FENTA_ENOTFOUND, "revoked");
    cr_assert_eq(tokens_db_revoke(c, id, u), FENTA_ENOTFOUND, "already revoked");

    new_token(u, org, "t2", "2001-01-01T00:00:00Z", old);
    cr_assert_eq(tokens_db_authenticate(c, "t2", &a), FENTA_ENOTFOUND, "expired");
    new_token(u, org, "t3", "2999-01-01T00:00:00Z", id);
    cr_assert_eq(tokens_db_authenticate(c, "t3", &a), 0);

    json_t *tok = NULL, *scopes = json_pack("[s]", "read");
    cr_assert_eq(tokens_db_insert(c, u, org, "dup", scopes, "t3", "p", NULL, &tok), FENTA_EEXIST);
    json_decref(scopes);
}

static int tokens_of(const db_page_t *page, const void *arg, db_page_rows_t *out)
{
    return tokens_db_list(c, arg, page, out);
}

Test(accounts_db, tokens_list_the_users_live_ones_in_pages)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1], id[5][DB_ID_LEN + 1];
    account("val@example.com", u, org);
    char h[8];
    for (int i = 0; i < 5; i++) {
        snprintf(h, sizeof h, "h%d", i);
        new_token(u, org, h, NULL, id[i]);
    }
    cr_assert_eq(tokens_db_revoke(c, id[1], u), 0);
    int pages = 0;
    json_t *all = walk(tokens_of, u, 2, false, &pages);
    cr_assert_eq(json_array_size(all), 4);
    cr_assert_eq(pages, 2);
    const int live[] = {0, 2, 3, 4};
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq(str(json_array_get(all, i), "id"), id[live[i]]);
    json_decref(all);
    /* Newest first, the pages continue downwards (as every list's do). */
    all = walk(tokens_of, u, 3, true, &pages);
    cr_assert_eq(json_array_size(all), 4);
    cr_assert_eq(pages, 2);
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq(str(json_array_get(all, i), "id"), id[live[3 - i]]);
    json_decref(all);
}

/* ---- idempotency keys ------------------------------------------------------------------ */

#define ROUTE "POST /v1/orgs"

Test(accounts_db, an_idempotency_key_is_claimed_once_and_replays_its_answer)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1];
    account("wes@example.com", u, org);
    idempotency_db_record_t rec;
    cr_assert_eq(idempotency_db_get(c, u, ROUTE, "k1", &rec), FENTA_ENOTFOUND);
    cr_assert_eq(idempotency_db_claim(c, u, ROUTE, "k1", "hash-a"), 0);
    cr_assert_eq(idempotency_db_claim(c, u, ROUTE, "k1", "hash-a"), FENTA_EEXIST);
    cr_assert_eq(idempotency_db_claim(c, u, "POST /v1/tokens", "k1", "hash-a"), 0,
                 "keys are per route");
    cr_assert_eq(idempotency_db_get(c, u, ROUTE, "k1", &rec), 0);
    cr_assert_str_eq(rec.request_hash, "hash-a");
    cr_assert_eq(rec.status, 0, "still running");
    cr_assert_null(rec.response);
    idempotency_db_record_clear(&rec);

    cr_assert_eq(idempotency_db_finish(c, u, ROUTE, "k1", 201, "{\"id\":\"x\"}"), 0);
    cr_assert_eq(idempotency_db_claim(c, u, ROUTE, "k1", "hash-b"), FENTA_EEXIST);
    cr_assert_eq(idempotency_db_get(c, u, ROUTE, "k1", &rec), 0);
    cr_assert_str_eq(rec.request_hash, "hash-a", "a replay with another body is told apart");
    cr_assert_eq(rec.status, 201);
    cr_assert_str_eq(rec.response, "{\"id\":\"x\"}");
    idempotency_db_record_clear(&rec);

    cr_assert_eq(idempotency_db_forget(c, u, ROUTE, "k1"), 0);
    cr_assert_eq(idempotency_db_get(c, u, ROUTE, "k1", &rec), FENTA_ENOTFOUND);
    cr_assert_eq(idempotency_db_claim(c, u, ROUTE, "k1", "hash-b"), 0, "free again");
}

Test(accounts_db, abandoned_and_expired_idempotency_keys_are_taken_over_and_purged)
{
    char u[DB_ID_LEN + 1], org[DB_ID_LEN + 1];
    account("xia@example.com", u, org);
    idempotency_db_record_t rec;
    /* Running for 6 minutes: its process died; a retry takes it over. */
    cr_assert_eq(idempotency_db_claim(c, u, ROUTE, "run", "h"), 0);
    sql1("UPDATE idempotency_keys SET created_at = now() - interval '6 minutes' WHERE key = $1",
         "run");
    cr_assert_eq(idempotency_db_claim(c, u, ROUTE, "run", "h2"), 0);
    /* Finished 6 minutes ago: still replayed. */
    cr_assert_eq(idempotency_db_claim(c, u, ROUTE, "done", "h"), 0);
    cr_assert_eq(idempotency_db_finish(c, u, ROUTE, "done", 204, NULL), 0);
    sql1("UPDATE idempotency_keys SET created_at = now() - interval '6 minutes' WHERE key = $1",
         "done");
    cr_assert_eq(idempotency_db_claim(c, u, ROUTE, "done", "h"), FENTA_EEXIST);
    /* Past 24 hours: free, and purged. */
    sql1("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1",
         "done");
    cr_assert_eq(idempotency_db_claim(c, u, ROUTE, "done", "h3"), 0);
    cr_assert_eq(idempotency_db_get(c, u, ROUTE, "done", &rec), 0);
    cr_assert_str_eq(rec.request_hash, "h3");
    cr_assert_eq(rec.status, 0);
    idempotency_db_record_clear(&rec);
    sql1("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1",
         "run");
    cr_assert_eq(idempotency_db_purge(c, 1000), 0);
    cr_assert_eq(idempotency_db_get(c, u, ROUTE, "run", &rec), FENTA_ENOTFOUND);
    cr_assert_eq(idempotency_db_get(c, u, ROUTE, "done", &rec), 0);
    idempotency_db_record_clear(&rec);
}

/* ---- the shared page ------------------------------------------------------------------- */

Test(accounts_db, page_sql_fills_in_the_order)
{
    char *s = db_page_sql("x {cmp} y ORDER BY a {dir}, b {dir}", false);
    cr_assert_str_eq(s, "x > y ORDER BY a ASC, b ASC");
    free(s);
    s = db_page_sql("x {cmp} y ORDER BY a {dir}, b {dir}", true);
    cr_assert_str_eq(s, "x < y ORDER BY a DESC, b DESC");
    free(s);
    /* Longer than its first guess at the size. */
    char tmpl[400] = "";
    for (int i = 0; i < 40; i++)
        strcat(tmpl, "{dir}");
    s = db_page_sql(tmpl, true);
    cr_assert_eq(strlen(s), 160);
    free(s);
}
