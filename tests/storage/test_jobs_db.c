/* test_jobs_db.c - the owners of the jobs and job_events tables
 * (storage/jobs_db.h, storage/job_events_db.h) against a real PostgreSQL:
 * the rows they write read back as the API shows them, and every failure
 * is its FENTA_E* code: a missing row and another organisation's row are
 * both not found, a second insert of one id is EEXIST, a job without a
 * free slot is ELIMIT. */
#include "runtime/error.h"
#include "storage/job_events_db.h"
#include "storage/jobs_db.h"
#include "storage/pg.h"
#include "tests/support/pg_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pg_pool_t *pool;
static pg_conn_t *c;
static char org_a[37], org_b[37], wf[37];

#define NOBODY "00000000-0000-4000-8000-000000000000"

static void setup(void)
{
    c = fx_pg_fresh_conn(2, &pool);
    fx_pg_org(pool, "a", org_a);
    fx_pg_org(pool, "b", org_b);
    fx_pg_row(c, "INSERT INTO workflows (org_id, name) VALUES ($1, 'w') RETURNING id", org_a, NULL,
              wf, sizeof wf);
}

static void teardown(void)
{
    fx_pg_fresh_conn_end(&pool, &c);
}

TestSuite(jobs_db, .init = setup, .fini = teardown, .timeout = 60);

/* A workflow job of org_a at priority prio; its id into id. */
static void new_job(const char *fixed_id, const char *prio, char id[37])
{
    json_t *graph = json_pack("{s[{ss ss}]}", "nodes", "id", "a", "type", "script.generate");
    json_t *inputs = json_pack("{s{ss}}", "a", "topic", "sky");
    jobs_db_new_t j = {.id = fixed_id,
                       .org_id = org_a,
                       .workflow_id = wf,
                       .workflow_version = 1,
                       .priority = prio,
                       .graph = graph,
                       .inputs = inputs,
                       .credits = 2.5};
    cr_assert_eq(jobs_db_insert_workflow(c, &j, id), 0);
    json_decref(graph);
    json_decref(inputs);
}

Test(jobs_db, a_job_reads_back_as_the_api_shows_it)
{
    char id[37];
    new_job(NULL, "high", id);
    json_t *job = NULL;
    cr_assert_eq(jobs_db_get(c, id, org_a, &job), 0);
    cr_expect_str_eq(json_string_value(json_object_get(job, "id")), id);
    cr_expect_str_eq(json_string_value(json_object_get(job, "kind")), "workflow");
    cr_expect_str_eq(json_string_value(json_object_get(job, "status")), "queued");
    cr_expect_str_eq(json_string_value(json_object_get(job, "priority")), "high");
    cr_expect_str_eq(json_string_value(json_object_get(job, "workflow_id")), wf);
    cr_expect_eq(json_integer_value(json_object_get(job, "workflow_version")), 1);
    cr_expect_float_eq(json_number_value(json_object_get(job, "credits")), 2.5, 1e-9);
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(job, "inputs"), "a"), "topic")),
                     "sky");
    cr_expect(json_is_array(json_object_get(job, "artifacts")));
    cr_expect(json_is_null(json_object_get(job, "started_at")));
    const char *at = json_string_value(json_object_get(job, "created_at"));
    cr_expect(at && strlen(at) == 27 && at[10] == 'T' && at[26] == 'Z', "created_at %s", at);
    json_decref(job);
    char st[16];
    cr_expect_eq(jobs_db_status(c, id, org_a, st), 0);
    cr_expect_str_eq(st, "queued");
}

Test(jobs_db, another_organisations_job_is_not_found)
{
    char id[37], st[16];
    new_job(NULL, NULL, id);
    json_t *job = NULL;
    cr_expect_eq(jobs_db_get(c, id, org_b, &job), FENTA_ENOTFOUND);
    cr_expect_null(job);
    cr_expect_eq(jobs_db_status(c, id, org_b, st), FENTA_ENOTFOUND);
    cr_expect_eq(jobs_db_exists(c, id, org_b), FENTA_ENOTFOUND);
    cr_expect_eq(jobs_db_exists(c, id, org_a), 0);
    cr_expect_eq(jobs_db_exists(c, id, NULL), 0);
    bool claimed = true;
    const char *const allowed[2] = {"queued", "running"};
    cr_expect_eq(jobs_db_claim(c, id, org_b, allowed, "cancelled", st, &claimed), FENTA_ENOTFOUND);
    cr_expect_not(claimed);
    /* and nothing of it leaks into the other organisation's list */
    db_page_rows_t rows;
    jobs_db_filter_t f = {0};
    cr_assert_eq(jobs_db_list(c, org_b, &f, &(db_page_t){.limit = 10}, &rows), 0);
    cr_expect_eq(json_array_size(rows.rows), 0);
    db_page_rows_free(&rows);
}

Test(jobs_db, a_missing_job_is_not_found_and_a_malformed_id_is_invalid)
{
    json_t *job = NULL;
    char st[16];
    cr_expect_eq(jobs_db_get(c, NOBODY, org_a, &job), FENTA_ENOTFOUND);
    cr_expect_eq(jobs_db_exists(c, NOBODY, NULL), FENTA_ENOTFOUND);
    cr_expect_eq(jobs_db_delete(c, NOBODY), FENTA_ENOTFOUND);
    cr_expect_eq(jobs_db_set_status(c, NOBODY, "failed"), FENTA_ENOTFOUND);
    jobs_db_run_t run;
    cr_expect_eq(jobs_db_load(c, NOBODY, &run), FENTA_ENOTFOUND);
    cr_expect_eq(jobs_db_get(c, "not-a-uuid", org_a, &job), FENTA_EINVAL);
    cr_expect_eq(jobs_db_status(c, "not-a-uuid", org_a, st), FENTA_EINVAL);
}

Test(jobs_db, a_second_insert_of_one_id_is_eexist_and_changes_nothing)
{
    static const char *fixed = "11111111-2222-4333-8444-555555555555";
    char id[37], again[37];
    new_job(fixed, "low", id);
    cr_expect_str_eq(id, fixed);
    json_t *graph = json_object();
    jobs_db_new_t j = {.id = fixed,
                       .org_id = org_a,
                       .workflow_id = wf,
                       .workflow_version = 1,
                       .priority = "high",
                       .graph = graph};
    cr_expect_eq(jobs_db_insert_workflow(c, &j, again), FENTA_EEXIST);
    cr_expect_str_eq(again, fixed);
    json_decref(graph);
    json_t *job = NULL;
    cr_assert_eq(jobs_db_get(c, fixed, org_a, &job), 0);
    cr_expect_str_eq(json_string_value(json_object_get(job, "priority")), "low");
    json_decref(job);
}

Test(jobs_db, a_claim_takes_the_status_once_and_reports_the_old_one)
{
    char id[37], st[16];
    new_job(NULL, NULL, id);
    cr_assert_eq(jobs_db_set_status(c, id, "failed"), 0);
    const char *const allowed[2] = {"failed", "cancelled"};
    bool claimed = false;
    cr_expect_eq(jobs_db_claim(c, id, org_a, allowed, "queued", st, &claimed), 0);
    cr_expect_str_eq(st, "failed");
    cr_expect(claimed);
    /* the second request finds it queued: not claimed again */
    cr_expect_eq(jobs_db_claim(c, id, org_a, allowed, "queued", st, &claimed), 0);
    cr_expect_str_eq(st, "queued");
    cr_expect_not(claimed);
    /* without a claim, only the status is read */
    cr_expect_eq(jobs_db_claim(c, id, org_a, allowed, NULL, st, &claimed), 0);
    cr_expect_not(claimed);
}

Test(jobs_db, a_render_job_holds_its_spec_and_is_deleted_when_no_actor_starts)
{
    char id[37];
    json_t *spec = json_pack("{ss}", "script", "hello");
    cr_assert_eq(jobs_db_insert_render(c, org_a, NULL, spec, NULL, id), 0);
    json_decref(spec);
    jobs_db_run_t run;
    cr_assert_eq(jobs_db_load(c, id, &run), 0);
    cr_expect_str_eq(run.kind, "render");
    cr_expect_str_eq(run.status, "queued");
    cr_expect_str_eq(run.org_id, org_a);
    cr_expect_eq(run.attempts, 1);
    cr_expect_str_eq(json_string_value(json_object_get(run.graph, "script")), "hello");
    jobs_db_run_free(&run);
    cr_expect_eq(jobs_db_delete(c, id), 0);
    cr_expect_eq(jobs_db_exists(c, id, NULL), FENTA_ENOTFOUND);
}

static int admit_tx(pg_conn_t *tc, void *arg)
{
    const char *id = arg;
    return jobs_db_admit(tc, id, org_a, 1);
}

Test(jobs_db, admission_holds_the_cap_and_the_order)
{
    char first[37], second[37], urgent[37];
    new_job(NULL, NULL, first);
    new_job(NULL, NULL, second);
    /* the second job waits for the one ahead of it */
    cr_expect_eq(pg_tx(pool, admit_tx, second), FENTA_ELIMIT);
    cr_expect_eq(pg_tx(pool, admit_tx, first), 0);
    /* cap 1: nobody else runs now, whatever its priority */
    new_job(NULL, "high", urgent);
    cr_expect_eq(pg_tx(pool, admit_tx, second), FENTA_ELIMIT);
    cr_expect_eq(pg_tx(pool, admit_tx, urgent), FENTA_ELIMIT);
    /* a running job is not admitted twice */
    cr_expect_eq(pg_tx(pool, admit_tx, first), FENTA_ELIMIT);
    /* the queue, in admission order: priority first, then age */
    char ids[2][37];
    int n = 0;
    cr_assert_eq(jobs_db_next_queued(c, org_a, first, ids, 2, &n), 0);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(ids[0], urgent);
    cr_expect_str_eq(ids[1], second);
    json_t *open = NULL;
    cr_assert_eq(jobs_db_unfinished(c, &open), 0);
    cr_expect_eq(json_array_size(open), 3);
    json_decref(open);
    /* the organisation's own cap wins over the default */
    fx_pg_row(c, "UPDATE orgs SET max_running_jobs = 2 WHERE id = $1 RETURNING id", org_a, NULL,
              ids[0], sizeof ids[0]);
    cr_expect_eq(pg_tx(pool, admit_tx, urgent), 0);
}

Test(jobs_db, a_record_writes_the_row_and_its_events_once)
{
    char id[37];
    new_job(NULL, NULL, id);
    json_t *nodes = json_pack("{s{ss}}", "a", "status", "running");
    json_t *arts = json_array();
    json_t *events =
        json_pack("[{si ss s{ss}}, {si ss s{sf}}]", "seq", 1, "type", "status", "data", "status",
                  "running", "seq", 2, "type", "progress", "data", "progress", 12.5);
    jobs_db_record_t r = {.org_id = org_a,
                          .status = "running",
                          .progress = 12.5,
                          .current_node = "a",
                          .nodes = nodes,
                          .artifacts = arts,
                          .attempts = 1};
    cr_assert_eq(jobs_db_record(c, id, &r, events), 0);
    /* a replayed message writes the same events: none is added */
    cr_assert_eq(jobs_db_record(c, id, &r, events), 0);
    json_t *job = NULL;
    cr_assert_eq(jobs_db_get(c, id, org_a, &job), 0);
    cr_expect_str_eq(json_string_value(json_object_get(job, "status")), "running");
    cr_expect_str_eq(json_string_value(json_object_get(job, "current_node")), "a");
    cr_expect_float_eq(json_number_value(json_object_get(job, "progress")), 12.5, 1e-6);
    cr_expect_not(json_is_null(json_object_get(job, "started_at")));
    cr_expect(json_is_null(json_object_get(job, "finished_at")));
    json_decref(job);

    job_events_db_rows_t ev;
    cr_assert_eq(job_events_db_after(c, org_a, id, 0, 100, &ev), 0);
    cr_assert_eq(ev.n, 2);
    cr_expect_str_eq(ev.v[0].type, "status");
    cr_expect_str_eq(ev.v[1].type, "progress");
    cr_expect(ev.v[0].id < ev.v[1].id);
    cr_expect(strstr(ev.v[0].data, "\"running\""));
    long long first = ev.v[0].id, last = ev.v[1].id;
    job_events_db_free(&ev);
    /* resumed after the first: only the second */
    cr_assert_eq(job_events_db_after(c, org_a, NULL, first, 100, &ev), 0);
    cr_expect_eq(ev.n, 1);
    job_events_db_free(&ev);
    /* another organisation's stream sees none of them */
    cr_assert_eq(job_events_db_after(c, org_b, NULL, 0, 100, &ev), 0);
    cr_expect_eq(ev.n, 0);
    job_events_db_free(&ev);
    long long newest = 0;
    cr_assert_eq(job_events_db_last_id(c, &newest), 0);
    cr_expect_eq(newest, last);
    cr_assert_eq(job_events_db_get(c, last, &ev), 0);
    cr_expect_eq(ev.n, 1);
    cr_expect_str_eq(ev.v[0].type, "progress");
    job_events_db_free(&ev);
    cr_expect_eq(job_events_db_get(c, last + 100, &ev), FENTA_ENOTFOUND);
    cr_expect_eq(ev.n, 0);

    int64_t at[2];
    long long seqs[2] = {2, 1};
    cr_assert_eq(job_events_db_stored_at(c, id, seqs, 2, at), 0);
    cr_expect(at[0] > 0 && at[1] > 0 && at[0] >= at[1]);
    long long missing[1] = {3};
    cr_expect_eq(job_events_db_stored_at(c, id, missing, 1, at), FENTA_ENOTFOUND);

    /* settling sets finished_at */
    r.status = "succeeded";
    json_t *none = json_array();
    cr_assert_eq(jobs_db_record(c, id, &r, none), 0);
    json_decref(none);
    cr_assert_eq(jobs_db_get(c, id, org_a, &job), 0);
    cr_expect_not(json_is_null(json_object_get(job, "finished_at")));
    json_decref(job);
    json_decref(nodes);
    json_decref(arts);
    json_decref(events);
}

Test(jobs_db, lists_page_by_keyset_and_filter)
{
    char ids[5][37];
    for (int i = 0; i < 5; i++)
        new_job(NULL, NULL, ids[i]);
    cr_assert_eq(jobs_db_set_status(c, ids[2], "failed"), 0);
    jobs_db_filter_t f = {0};
    db_page_rows_t p1, p2, p3;
    cr_assert_eq(jobs_db_list(c, org_a, &f, &(db_page_t){.limit = 2}, &p1), 0);
    cr_expect_eq(json_array_size(p1.rows), 2);
    cr_assert_not_null(p1.next_id);
    cr_assert_eq(
        jobs_db_list(c, org_a, &f,
                     &(db_page_t){.limit = 2, .after_at = p1.next_at, .after_id = p1.next_id}, &p2),
        0);
    cr_expect_eq(json_array_size(p2.rows), 2);
    cr_assert_eq(
        jobs_db_list(c, org_a, &f,
                     &(db_page_t){.limit = 2, .after_at = p2.next_at, .after_id = p2.next_id}, &p3),
        0);
    cr_expect_eq(json_array_size(p3.rows), 1);
    cr_expect_null(p3.next_id, "the last page says so");
    /* five different jobs, each once */
    json_t *all = json_array();
    json_array_extend(all, p1.rows);
    json_array_extend(all, p2.rows);
    json_array_extend(all, p3.rows);
    for (int i = 0; i < 5; i++) {
        int seen = 0;
        size_t k;
        json_t *j;
        json_array_foreach(all, k, j) seen +=
            strcmp(json_string_value(json_object_get(j, "id")), ids[i]) == 0;
        cr_expect_eq(seen, 1, "job %d seen %d times", i, seen);
    }
    json_decref(all);
    db_page_rows_free(&p1);
    db_page_rows_free(&p2);
    db_page_rows_free(&p3);
    /* newest first, and a status filter */
    cr_assert_eq(jobs_db_list(c, org_a, &f, &(db_page_t){.limit = 1, .desc = true}, &p1), 0);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(p1.rows, 0), "id")), ids[4]);
    db_page_rows_free(&p1);
    f.status = "failed";
    cr_assert_eq(jobs_db_list(c, org_a, &f, &(db_page_t){.limit = 10}, &p1), 0);
    cr_assert_eq(json_array_size(p1.rows), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(p1.rows, 0), "id")), ids[2]);
    db_page_rows_free(&p1);
}
