/* test_webhooks_db.c - the owner of webhooks and webhook_deliveries against
 * a private PostgreSQL: FENTA_E* codes only (another organisation's
 * endpoint or delivery, a deleted one, a malformed id and a missing one all
 * FENTA_ENOTFOUND), secrets that never leave through the API's object,
 * rotation with overlap, pending rows written once, and the one-statement
 * result batch: a newer write wins, failures set failing_since and an
 * endpoint failing too long is disabled. */
#include "runtime/error.h"
#include "storage/pg.h"
#include "storage/webhooks_db.h"
#include "tests/support/pg_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MISSING "00000000-0000-4000-8000-000000000000"
#define DID "11111111-1111-4111-8111-111111111111"

static pg_pool_t *pool;
static pg_conn_t *c;
static char org[37], other[37];

static void setup(void)
{
    c = fx_pg_fresh_conn(2, &pool);
    fx_pg_org(pool, "o", org);
    fx_pg_org(pool, "p", other);
}

static void teardown(void)
{
    fx_pg_fresh_conn_end(&pool, &c);
}

TestSuite(webhooks_db, .init = setup, .fini = teardown, .timeout = 60);

/* An enabled endpoint of org for job events; its id into id. */
static void make(char id[37])
{
    webhooks_db_def_t d = {.org_id = org,
                           .secret = "whsec_first",
                           .url = "https://example.test/hook",
                           .event_types = "[\"job.succeeded\",\"job.failed\"]",
                           .enabled = -1};
    json_t *o = NULL;
    cr_assert_eq(webhooks_db_create(c, &d, &o), 0);
    snprintf(id, 37, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
}

Test(webhooks_db, the_api_object_shows_no_secret)
{
    char id[37];
    make(id);
    json_t *o = NULL;
    cr_assert_eq(webhooks_db_get(c, id, org, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "url")), "https://example.test/hook");
    cr_assert_str_eq(json_string_value(json_object_get(o, "description")), "");
    cr_assert(json_is_true(json_object_get(o, "enabled")));
    cr_assert_eq(json_array_size(json_object_get(o, "event_types")), 2);
    json_t *secrets = json_object_get(o, "secrets");
    cr_assert_eq(json_array_size(secrets), 1);
    cr_assert_null(json_object_get(json_array_get(secrets, 0), "secret"));
    cr_assert_not_null(json_object_get(json_array_get(secrets, 0), "created_at"));
    char *text = json_dumps(o, 0);
    cr_assert_null(strstr(text, "whsec_first"), "%s", text);
    free(text);
    json_decref(o);
}

Test(webhooks_db, another_orgs_deleted_missing_and_malformed_are_not_found)
{
    char id[37];
    make(id);
    json_t *o = (json_t *)1;
    cr_assert_eq(webhooks_db_get(c, id, other, &o), FENTA_ENOTFOUND);
    cr_assert_null(o);
    cr_assert_eq(webhooks_db_get(c, MISSING, org, NULL), FENTA_ENOTFOUND);
    cr_assert_eq(webhooks_db_get(c, "x", org, NULL), FENTA_ENOTFOUND);
    webhooks_db_def_t d = {.url = "https://evil.test/", .enabled = 0};
    cr_assert_eq(webhooks_db_update(c, id, other, &d, &o), FENTA_ENOTFOUND);
    char *exp = (char *)1;
    cr_assert_eq(webhooks_db_rotate(c, id, other, "whsec_x", 60, &exp), FENTA_ENOTFOUND);
    cr_assert_null(exp);
    cr_assert_eq(webhooks_db_delete(c, id, other), FENTA_ENOTFOUND);
    db_page_rows_t l;
    cr_assert_eq(webhooks_db_list(c, other, &(db_page_t){.limit = 10}, &l), 0);
    cr_assert_eq(json_array_size(l.rows), 0);
    db_page_rows_free(&l);
    json_t *eps = NULL;
    cr_assert_eq(webhooks_db_endpoints(c, other, &eps), 0);
    cr_assert_eq(json_array_size(eps), 0);
    json_decref(eps);
    /* None of that touched it. */
    cr_assert_eq(webhooks_db_get(c, id, org, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "url")), "https://example.test/hook");
    cr_assert(json_is_true(json_object_get(o, "enabled")));
    json_decref(o);

    cr_assert_eq(webhooks_db_delete(c, id, org), 0);
    cr_assert_eq(webhooks_db_delete(c, id, org), FENTA_ENOTFOUND);
    cr_assert_eq(webhooks_db_get(c, id, org, NULL), FENTA_ENOTFOUND);
    cr_assert_eq(webhooks_db_update(c, id, org, &d, NULL), FENTA_ENOTFOUND);
    cr_assert_eq(webhooks_db_endpoints(c, org, &eps), 0);
    cr_assert_eq(json_array_size(eps), 0, "a deleted endpoint receives nothing");
    json_decref(eps);
}

Test(webhooks_db, update_changes_what_it_is_given_and_rotation_keeps_both_secrets)
{
    char id[37];
    make(id);
    webhooks_db_def_t d = {.description = "ci", .event_types = "[\"*\"]", .enabled = -1};
    json_t *o = NULL;
    cr_assert_eq(webhooks_db_update(c, id, org, &d, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "url")), "https://example.test/hook");
    cr_assert_str_eq(json_string_value(json_object_get(o, "description")), "ci");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "event_types"), 0)), "*");
    json_decref(o);

    char *exp = NULL;
    cr_assert_eq(webhooks_db_rotate(c, id, org, "whsec_second", 3600, &exp), 0);
    cr_assert_not_null(exp);
    cr_assert_eq(strlen(exp), strlen("2027-01-01T00:00:00.000000Z"), "%s", exp);
    free(exp);
    json_t *eps = NULL;
    cr_assert_eq(webhooks_db_endpoints(c, org, &eps), 0);
    cr_assert_eq(json_array_size(eps), 1);
    json_t *secrets = json_object_get(json_array_get(eps, 0), "secrets");
    cr_assert_eq(json_array_size(secrets), 2);
    /* The newest signs first; the old one signs until the overlap ends. */
    cr_assert_str_eq(json_string_value(json_array_get(secrets, 0)), "whsec_second");
    cr_assert_str_eq(json_string_value(json_array_get(secrets, 1)), "whsec_first");
    json_decref(eps);
    /* A zero overlap retires the old ones at once. */
    cr_assert_eq(webhooks_db_rotate(c, id, org, "whsec_third", 0, &exp), 0);
    free(exp);
    cr_assert_eq(webhooks_db_endpoints(c, org, &eps), 0);
    secrets = json_object_get(json_array_get(eps, 0), "secrets");
    cr_assert_eq(json_array_size(secrets), 1);
    cr_assert_str_eq(json_string_value(json_array_get(secrets, 0)), "whsec_third");
    json_decref(eps);
}

/* A pending row of delivery DID to webhook wid, as a fan-out writes it. */
static void pending(const char *wid)
{
    char rows[512];
    snprintf(rows, sizeof rows,
             "[{\"id\":\"%s\",\"webhook_id\":\"%s\",\"org_id\":\"%s\",\"event_id\":\"evt_1\","
             "\"event_type\":\"job.succeeded\"}]",
             DID, wid, org);
    cr_assert_eq(webhooks_db_insert_pending(c, rows), 0);
}

/* One result row of DID to wid at rev. */
static char *result(const char *wid, const char *status, int attempts, int rev, bool delivered)
{
    char *s = NULL;
    cr_assert(asprintf(&s,
                       "[{\"id\":\"%s\",\"webhook_id\":\"%s\",\"org_id\":\"%s\",\"event_id\":"
                       "\"evt_1\",\"event_type\":\"job.succeeded\",\"status\":\"%s\",\"attempts\":"
                       "%d,\"response_status\":500,\"response_body\":\"no\",\"latency_ms\":12,"
                       "\"error\":null,\"next_at\":null,\"rev\":%d,\"delivered\":%s}]",
                       DID, wid, org, status, attempts, rev, delivered ? "true" : "false") > 0);
    return s;
}

Test(webhooks_db, deliveries_are_written_once_and_a_newer_write_wins)
{
    char wid[37];
    make(wid);
    pending(wid);
    pending(wid); /* a replayed fan-out */
    json_t *ids = NULL;
    cr_assert_eq(webhooks_db_pending_ids(c, &ids), 0);
    cr_assert_eq(json_array_size(ids), 1);
    cr_assert_str_eq(json_string_value(json_array_get(ids, 0)), DID);
    json_decref(ids);

    json_t *o = NULL;
    cr_assert_eq(webhooks_db_delivery_get(c, DID, wid, org, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")), "pending");
    cr_assert_eq(json_integer_value(json_object_get(o, "attempts")), 0);
    cr_assert(json_is_null(json_object_get(o, "response_status")));
    json_decref(o);
    cr_assert_eq(webhooks_db_delivery_get(c, DID, wid, other, NULL), FENTA_ENOTFOUND);
    cr_assert_eq(webhooks_db_delivery_get(c, DID, MISSING, org, NULL), FENTA_ENOTFOUND);
    cr_assert_eq(webhooks_db_delivery_get(c, "bad", wid, org, NULL), FENTA_ENOTFOUND);

    char fail[64];
    snprintf(fail, sizeof fail, "[\"%s\"]", wid);
    char *r2 = result(wid, "retrying", 1, 2, false), *r4 = result(wid, "retrying", 2, 4, false);
    cr_assert_eq(webhooks_db_record_results(c, r4, fail, "[]", 86400000, NULL), 0);
    /* A late write of an older attempt changes nothing. */
    cr_assert_eq(webhooks_db_record_results(c, r2, fail, "[]", 86400000, NULL), 0);
    free(r2);
    free(r4);
    cr_assert_eq(webhooks_db_delivery_get(c, DID, wid, org, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")), "retrying");
    cr_assert_eq(json_integer_value(json_object_get(o, "attempts")), 2);
    cr_assert_eq(json_integer_value(json_object_get(o, "response_status")), 500);
    json_decref(o);
    cr_assert_eq(webhooks_db_get(c, wid, org, &o), 0);
    cr_assert(!json_is_null(json_object_get(o, "failing_since")), "a failure sets failing_since");
    json_decref(o);

    /* Settling at an older rev is refused too; at a newer one it lands. */
    cr_assert_eq(webhooks_db_settle(c, DID, "cancelled", "gone", 3), 0);
    cr_assert_eq(webhooks_db_delivery_get(c, DID, wid, org, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")), "retrying");
    json_decref(o);
    cr_assert_eq(webhooks_db_settle(c, DID, "cancelled", "gone", 5), 0);

    db_page_rows_t l;
    cr_assert_eq(
        webhooks_db_deliveries_list(c, wid, org, "cancelled", &(db_page_t){.limit = 10}, &l), 0);
    cr_assert_eq(json_array_size(l.rows), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l.rows, 0), "error")),
                     "gone");
    db_page_rows_free(&l);
    cr_assert_eq(
        webhooks_db_deliveries_list(c, wid, org, "succeeded", &(db_page_t){.limit = 10}, &l), 0);
    cr_assert_eq(json_array_size(l.rows), 0);
    db_page_rows_free(&l);
    cr_assert_eq(webhooks_db_deliveries_list(c, wid, other, NULL, &(db_page_t){.limit = 10}, &l),
                 0);
    cr_assert_eq(json_array_size(l.rows), 0, "another organisation reads no deliveries");
    db_page_rows_free(&l);
    cr_assert_eq(webhooks_db_pending_ids(c, &ids), 0);
    cr_assert_eq(json_array_size(ids), 0);
    json_decref(ids);
}

Test(webhooks_db, an_endpoint_failing_too_long_is_disabled_and_a_success_clears_the_streak)
{
    char wid[37], ok[37];
    make(wid);
    make(ok);
    char fail[64], good[64];
    snprintf(fail, sizeof fail, "[\"%s\"]", wid);
    snprintf(good, sizeof good, "[\"%s\"]", ok);
    json_t *dis = NULL;
    /* The first failure starts the streak: nothing is disabled yet. */
    cr_assert_eq(webhooks_db_record_results(c, "[]", fail, "[]", 0, &dis), 0);
    cr_assert_eq(json_array_size(dis), 0);
    json_decref(dis);
    /* Failing again past the limit (0 ms here) disables it, once. */
    cr_assert_eq(webhooks_db_record_results(c, "[]", fail, "[]", 0, &dis), 0);
    cr_assert_eq(json_array_size(dis), 1);
    json_t *d = json_array_get(dis, 0);
    cr_assert_str_eq(json_string_value(json_object_get(d, "webhook_id")), wid);
    cr_assert_str_eq(json_string_value(json_object_get(d, "org_id")), org);
    cr_assert_str_eq(json_string_value(json_object_get(d, "url")), "https://example.test/hook");
    cr_assert_not_null(strstr(json_string_value(json_object_get(d, "reason")), "failing since"));
    cr_assert_gt(json_integer_value(json_object_get(d, "disabled_at")), 0);
    json_decref(dis);
    cr_assert_eq(webhooks_db_record_results(c, "[]", fail, "[]", 0, &dis), 0);
    cr_assert_eq(json_array_size(dis), 0, "a disabled endpoint is not disabled again");
    json_decref(dis);
    json_t *o = NULL;
    cr_assert_eq(webhooks_db_get(c, wid, org, &o), 0);
    cr_assert(!json_is_true(json_object_get(o, "enabled")));
    cr_assert(json_is_string(json_object_get(o, "disabled_reason")));
    json_decref(o);

    /* A success in the same batch as a failure wins. */
    char both[128];
    snprintf(both, sizeof both, "[\"%s\"]", ok);
    cr_assert_eq(webhooks_db_record_results(c, "[]", both, good, 0, NULL), 0);
    cr_assert_eq(webhooks_db_get(c, ok, org, &o), 0);
    cr_assert(json_is_null(json_object_get(o, "failing_since")));
    cr_assert(json_is_true(json_object_get(o, "enabled")));
    json_decref(o);

    /* Enabling again clears the disable and the streak. */
    webhooks_db_def_t e = {.enabled = 1};
    cr_assert_eq(webhooks_db_update(c, wid, org, &e, &o), 0);
    cr_assert(json_is_true(json_object_get(o, "enabled")));
    cr_assert(json_is_null(json_object_get(o, "disabled_at")));
    cr_assert(json_is_null(json_object_get(o, "failing_since")));
    json_decref(o);
}
