/* test_schedules_db.c - the owner of schedules and schedule_runs against a
 * private PostgreSQL: FENTA_E* codes only (another organisation's schedule,
 * a deleted one, a malformed id and a missing one all FENTA_ENOTFOUND), a
 * firing claimed once, its outcome on the run and the schedule, keyset
 * pages in both orders, and what the actor and the recovery read. */
#include "runtime/error.h"
#include "storage/pg.h"
#include "storage/schedules_db.h"
#include "tests/support/pg_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MISSING "00000000-0000-4000-8000-000000000000"

static pg_pool_t *pool;
static pg_conn_t *c;
static char org[37], other[37], wf[37];

static void setup(void)
{
    c = fx_pg_fresh_conn(2, &pool);
    fx_pg_org(pool, "o", org);
    fx_pg_org(pool, "p", other);
    fx_pg_row(c, "INSERT INTO workflows (org_id, name) VALUES ($1, 'w') RETURNING id", org, NULL,
              wf, sizeof wf);
}

static void teardown(void)
{
    fx_pg_fresh_conn_end(&pool, &c);
}

TestSuite(schedules_db, .init = setup, .fini = teardown, .timeout = 60);

/* A schedule of org's workflow every minute; its id into id. */
static void make(const char *name, bool paused, char id[37])
{
    schedules_db_def_t d = {.org_id = org,
                            .workflow_id = wf,
                            .name = name,
                            .set_version = true,
                            .version = "1",
                            .inputs = "{\"t\":{\"text\":\"hi\"}}",
                            .cron = "* * * * *",
                            .timezone = "Europe/Paris",
                            .paused = paused,
                            .set_max_credits = true,
                            .max_credits = "12.50",
                            .next_fire = paused ? 0 : 1798761660};
    json_t *o = NULL;
    cr_assert_eq(schedules_db_create(c, &d, &o), 0);
    snprintf(id, 37, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
}

Test(schedules_db, create_and_get_give_the_api_object)
{
    char id[37];
    make("nightly", false, id);
    json_t *o = NULL;
    cr_assert_eq(schedules_db_get(c, id, org, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "name")), "nightly");
    cr_assert_eq(json_integer_value(json_object_get(o, "version")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(o, "timezone")), "Europe/Paris");
    cr_assert_str_eq(json_string_value(json_object_get(o, "misfire")), "skip");
    cr_assert_str_eq(json_string_value(json_object_get(o, "priority")), "normal");
    cr_assert_float_eq(json_real_value(json_object_get(o, "max_credits")), 12.5, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(o, "next_fire_at")),
                     "2027-01-01T00:01:00.000000Z");
    cr_assert(json_is_object(json_object_get(o, "inputs")));
    cr_assert(json_is_null(json_object_get(o, "last_outcome")));
    cr_assert_eq(json_integer_value(json_object_get(o, "fire_count")), 0);
    json_decref(o);
    /* Existence alone. */
    cr_assert_eq(schedules_db_get(c, id, org, NULL), 0);
}

Test(schedules_db, another_orgs_deleted_missing_and_malformed_are_not_found)
{
    char id[37];
    make("s", false, id);
    json_t *o = (json_t *)1;
    cr_assert_eq(schedules_db_get(c, id, other, &o), FENTA_ENOTFOUND);
    cr_assert_null(o);
    cr_assert_eq(schedules_db_get(c, MISSING, org, NULL), FENTA_ENOTFOUND);
    cr_assert_eq(schedules_db_get(c, "not-a-uuid", org, NULL), FENTA_ENOTFOUND);
    cr_assert_eq(schedules_db_get(c, "'; DROP TABLE schedules; --", org, NULL), FENTA_ENOTFOUND);

    schedules_db_def_t d = {.cron = "0 * * * *", .timezone = "UTC"};
    cr_assert_eq(schedules_db_update(c, id, other, &d, &o), FENTA_ENOTFOUND);
    cr_assert_eq(schedules_db_set_paused(c, id, other, true, 0, &o), FENTA_ENOTFOUND);
    cr_assert_eq(schedules_db_delete(c, id, other), FENTA_ENOTFOUND);
    db_page_rows_t l;
    cr_assert_eq(schedules_db_list(c, other, &(db_page_t){.limit = 10}, &l), 0);
    cr_assert_eq(json_array_size(l.rows), 0);
    db_page_rows_free(&l);
    /* None of that touched it. */
    cr_assert_eq(schedules_db_get(c, id, org, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "cron")), "* * * * *");
    cr_assert(!json_is_true(json_object_get(o, "paused")));
    json_decref(o);

    cr_assert_eq(schedules_db_delete(c, id, org), 0);
    cr_assert_eq(schedules_db_delete(c, id, org), FENTA_ENOTFOUND);
    cr_assert_eq(schedules_db_get(c, id, org, NULL), FENTA_ENOTFOUND);
    cr_assert_eq(schedules_db_update(c, id, org, &d, NULL), FENTA_ENOTFOUND);
    cr_assert_eq(schedules_db_set_paused(c, id, org, false, 0, NULL), FENTA_ENOTFOUND);
}

Test(schedules_db, update_keeps_what_it_is_not_given_and_bumps_the_generation)
{
    char id[37];
    make("s", false, id);
    schedules_db_row_t row;
    cr_assert_eq(schedules_db_load(c, id, &row), 0);
    int gen = row.generation;
    schedules_db_row_clear(&row);
    schedules_db_def_t d = {.cron = "0 9 * * 1", .timezone = "UTC", .misfire = "run_once"};
    json_t *o = NULL;
    cr_assert_eq(schedules_db_update(c, id, org, &d, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "name")), "s");
    cr_assert_eq(json_integer_value(json_object_get(o, "version")), 1);
    cr_assert_float_eq(json_real_value(json_object_get(o, "max_credits")), 12.5, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(o, "misfire")), "run_once");
    cr_assert(json_is_null(json_object_get(o, "next_fire_at")));
    json_decref(o);
    /* "latest" and no cap, given explicitly. */
    d = (schedules_db_def_t){
        .cron = "0 9 * * 1", .timezone = "UTC", .set_version = true, .set_max_credits = true};
    cr_assert_eq(schedules_db_update(c, id, org, &d, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "version")), "latest");
    cr_assert(json_is_null(json_object_get(o, "max_credits")));
    json_decref(o);
    cr_assert_eq(schedules_db_set_paused(c, id, org, true, 0, &o), 0);
    cr_assert(json_is_true(json_object_get(o, "paused")));
    json_decref(o);
    cr_assert_eq(schedules_db_load(c, id, &row), 0);
    cr_assert_eq(row.generation, gen + 3);
    cr_assert(row.paused);
    cr_assert_null(row.workflow_version);
    cr_assert_null(row.max_credits);
    cr_assert_str_eq(row.cron, "0 9 * * 1");
    cr_assert_str_eq(row.org_id, org);
    schedules_db_row_clear(&row);
}

Test(schedules_db, a_firing_is_claimed_once)
{
    char id[37];
    make("s", false, id);
    bool mine = false;
    int64_t at = 0;
    int64_t due = 1798761660;
    cr_assert_eq(schedules_db_claim_run(c, id, due, org, "node-a", 1798761660123LL, &mine, &at), 0);
    cr_assert(mine);
    cr_assert_eq(at, 1798761660123LL);
    /* A replay on the same node finds its own claim, at the first time. */
    cr_assert_eq(schedules_db_claim_run(c, id, due, org, "node-a", 1798761665000LL, &mine, &at), 0);
    cr_assert(mine);
    cr_assert_eq(at, 1798761660123LL);
    /* Another node holding the same actor leaves it alone. */
    cr_assert_eq(schedules_db_claim_run(c, id, due, org, "node-b", 1798761666000LL, &mine, &at), 0);
    cr_assert(!mine);
    char n[8];
    fx_pg_row(c, "SELECT count(*) FROM schedule_runs WHERE schedule_id = $1", id, NULL, n,
              sizeof n);
    cr_assert_str_eq(n, "1");

    char job[37];
    fx_pg_row(c, "SELECT gen_random_uuid()", NULL, NULL, job, sizeof job);
    cr_assert_eq(schedules_db_record_run(c, id, due, "started", job,
                                         "{\"outcome\":\"started\",\"detail\":{}}"),
                 0);
    /* Recording the same firing again does not count it twice. */
    cr_assert_eq(schedules_db_record_run(c, id, due, "started", job,
                                         "{\"outcome\":\"started\",\"detail\":{}}"),
                 0);
    json_t *o = NULL;
    cr_assert_eq(schedules_db_get(c, id, org, &o), 0);
    cr_assert_eq(json_integer_value(json_object_get(o, "fire_count")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(o, "last_job_id")), job);
    cr_assert_str_eq(json_string_value(json_object_get(o, "last_fired_at")),
                     "2027-01-01T00:01:00.000000Z");
    json_decref(o);

    db_page_rows_t l;
    cr_assert_eq(schedules_db_runs_list(c, id, org, &(db_page_t){.limit = 10}, &l), 0);
    cr_assert_eq(json_array_size(l.rows), 1);
    json_t *run = json_array_get(l.rows, 0);
    cr_assert_str_eq(json_string_value(json_object_get(run, "outcome")), "started");
    cr_assert_str_eq(json_string_value(json_object_get(run, "job_id")), job);
    cr_assert_str_eq(json_string_value(json_object_get(run, "due_at")),
                     "2027-01-01T00:01:00.000000Z");
    cr_assert_null(l.next_at);
    db_page_rows_free(&l);
    /* Another organisation reads no runs of it. */
    cr_assert_eq(schedules_db_runs_list(c, id, other, &(db_page_t){.limit = 10}, &l), 0);
    cr_assert_eq(json_array_size(l.rows), 0);
    db_page_rows_free(&l);
}

Test(schedules_db, pages_cover_every_row_once_in_both_orders)
{
    char ids[5][37];
    for (int i = 0; i < 5; i++)
        make("s", false, ids[i]);
    for (int desc = 0; desc < 2; desc++) {
        json_t *seen = json_object();
        char *at = NULL, *aid = NULL;
        int pages = 0;
        do {
            db_page_rows_t l;
            db_page_t page = {.limit = 2, .desc = desc, .after_at = at, .after_id = aid};
            cr_assert_eq(schedules_db_list(c, org, &page, &l), 0);
            cr_assert_leq(json_array_size(l.rows), 2);
            size_t i;
            json_t *o;
            json_array_foreach(l.rows, i, o)
            {
                const char *id = json_string_value(json_object_get(o, "id"));
                cr_assert_null(json_object_get(seen, id), "%s twice", id);
                json_object_set_new(seen, id, json_true());
            }
            free(at);
            free(aid);
            at = l.next_at ? strdup(l.next_at) : NULL;
            aid = l.next_id ? strdup(l.next_id) : NULL;
            db_page_rows_free(&l);
            pages++;
        } while (at);
        cr_assert_eq(pages, 3);
        cr_assert_eq(json_object_size(seen), 5);
        json_decref(seen);
    }
}

Test(schedules_db, the_actor_reads_deleted_rows_and_recovery_skips_them)
{
    char live[37], paused[37], gone[37];
    make("live", false, live);
    make("paused", true, paused);
    make("gone", false, gone);
    cr_assert_eq(schedules_db_delete(c, gone, org), 0);
    schedules_db_row_t row;
    cr_assert_eq(schedules_db_load(c, gone, &row), 0);
    cr_assert(row.deleted);
    schedules_db_row_clear(&row);
    cr_assert_eq(schedules_db_load(c, MISSING, &row), FENTA_ENOTFOUND);
    cr_assert_null(row.cron);
    cr_assert_eq(schedules_db_load(c, "nope", &row), FENTA_ENOTFOUND);

    json_t *ids = NULL;
    cr_assert_eq(schedules_db_live_ids(c, &ids), 0);
    cr_assert_eq(json_array_size(ids), 1);
    cr_assert_str_eq(json_string_value(json_array_get(ids, 0)), live);
    json_decref(ids);

    cr_assert_eq(schedules_db_set_next(c, live, 1798761720), 0);
    json_t *o = NULL;
    cr_assert_eq(schedules_db_get(c, live, org, &o), 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "next_fire_at")),
                     "2027-01-01T00:02:00.000000Z");
    json_decref(o);
    cr_assert_eq(schedules_db_set_next(c, live, 0), 0);
    cr_assert_eq(schedules_db_get(c, live, org, &o), 0);
    cr_assert(json_is_null(json_object_get(o, "next_fire_at")));
    json_decref(o);
}
