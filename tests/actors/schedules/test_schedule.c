/* test_schedule.c - the schedule actor on the fake clock, against a private
 * PostgreSQL and a real runtime: it arms one timer for the next due time
 * and writes it to the row, fires on time and not a millisecond before,
 * once, into the job whose id is derived from the due time (the job kind
 * here is a stub that records job.start), skips or runs once a firing
 * missed by more than the grace, arms nothing while paused or deleted, and
 * re-arms for a changed expression (the old timer does nothing). No test
 * sleeps: each one moves the fake clock and waits for the runtime to settle
 * (fx_settle), and reads the armed timer's due time from the runtime
 * (fx_next_due_ms). */
#include "actors/schedules/schedule.h"
#include "actors/workflow/workflow.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "storage/pg.h"
#include "tests/support/fixtures.h"
#include "tests/support/pg_fixture.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0_S 1798761630LL /* 2027-01-01T00:00:30Z: 30 s before a minute turns */
#define GRACE_S 15

static const char GRAPH[] =
    "{\"nodes\":[{\"id\":\"t\",\"type\":\"input.text\",\"params\":{\"text\":\"Hello there.\"}},"
    "{\"id\":\"u\",\"type\":\"script.transform\",\"params\":{\"op\":\"uppercase\"}}],"
    "\"edges\":[{\"from\":\"t.text\",\"to\":\"u.text\"}]}";

static char *dir;
static pg_pool_t *pool;
static workflow_types_t *types;
static schedule_engine_t *engine;
static runtime_t *rt;
static char org[37], wf[37];

/* The stub job kind: every job.start it receives, by job id. */
static pthread_mutex_t started_lock = PTHREAD_MUTEX_INITIALIZER;
static char started[16][37];
static int nstarted;

static int job_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    if (strcmp(m->type, "job.start") == 0) {
        pthread_mutex_lock(&started_lock);
        if (nstarted < 16)
            snprintf(started[nstarted++], 37, "%s", strchr(actor_self(ctx), '/') + 1);
        pthread_mutex_unlock(&started_lock);
    }
    return 0;
}

static const behaviour_t job_stub = {.kind = "job", .on_message = job_msg};

static int starts(void)
{
    pthread_mutex_lock(&started_lock);
    int n = nstarted;
    pthread_mutex_unlock(&started_lock);
    return n;
}

static char *cell3(const char *sql, const char *p1, const char *p2, const char *p3)
{
    return fx_pg_cell(pool, sql, p1, p2, p3);
}

static char *cell(const char *sql, const char *p1, const char *p2)
{
    return fx_pg_cell(pool, sql, p1, p2, NULL);
}

static int64_t cell_int(const char *sql, const char *p1, const char *p2)
{
    return fx_pg_int(pool, sql, p1, p2, NULL);
}

static void setup(void)
{
    clock_fake_set(T0_S * 1000);
    nstarted = 0;
    dir = fx_tmpdir("schedule");
    pool = fx_pg_fresh_pool(4);
    char why[256] = "";
    types = workflow_types_load(FENTA_SOURCE_SCHEMAS, why, sizeof why);
    cr_assert_not_null(types, "%s", why);
    fx_pg_org(pool, "o", org);
    char *w = cell("INSERT INTO workflows (org_id, name) VALUES ($1, 'w') RETURNING id", org, NULL);
    snprintf(wf, sizeof wf, "%s", w);
    free(w);
    free(cell("INSERT INTO workflow_versions (workflow_id, version, graph) VALUES ($1, 1, "
              "$2::jsonb) RETURNING 1",
              wf, GRAPH));
    engine = schedule_engine_new(&(schedule_config_t){
        .pool = pool, .types = types, .misfire_grace_s = GRACE_S, .webhooks = false});
    cr_assert_not_null(engine);
    rt = fx_runtime(dir, true);
    cr_assert_eq(runtime_register(rt, &job_stub), 0);
    cr_assert_eq(schedule_engine_register(engine, rt), 0);
    cr_assert_eq(runtime_start(rt), 0);
}

static void teardown(void)
{
    runtime_destroy(&rt);
    schedule_engine_destroy(&engine);
    workflow_types_free(&types);
    pg_pool_destroy(&pool);
    fx_rmdir(dir);
    dir = NULL;
    clock_fake_clear();
}

TestSuite(schedule, .init = setup, .fini = teardown);

/* A schedule of the workflow every minute; its id into id[37]. */
static void make(const char *misfire, char id[37])
{
    char *s = cell3("INSERT INTO schedules (org_id, workflow_id, cron, misfire) VALUES ($1, $2, "
                    "'* * * * *', $3) RETURNING id",
                    org, wf, misfire);
    snprintf(id, 37, "%s", s);
    free(s);
    cr_assert_eq(schedule_sync(rt, id), 0);
}

/* Changes the schedule's row as the API does (set, e.g. "paused = true",
 * with a new generation), then tells its actor. */
static void change(const char *id, const char *set)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE schedules SET %s, generation = generation + 1 WHERE id = $1 RETURNING 1", set);
    free(cell(sql, id, NULL));
    cr_assert_eq(schedule_sync(rt, id), 0);
}

/* Handlers done and nothing due now on the fake clock. */
static void settle(void)
{
    fx_settle(rt);
}

static int64_t next_fire(const char *id)
{
    return cell_int("SELECT extract(epoch FROM next_fire_at)::bigint FROM schedules WHERE id = $1",
                    id, NULL);
}

static int runs(const char *id, const char *outcome)
{
    return (int)cell_int("SELECT count(*) FROM schedule_runs WHERE schedule_id = $1 AND "
                         "outcome = $2",
                         id, outcome);
}

/* Moves the fake clock to at_s and lets whatever is due run. */
static void clock_to(int64_t at_s)
{
    clock_fake_set(at_s * 1000);
    /* Settling waits for whatever the new time made due to run. */
    settle();
}

/* The minute after T0 (30 s ahead): the first due time of every test. */
#define DUE1 (T0_S + 30)

Test(schedule, arms_the_next_minute_and_fires_on_time_once_into_the_derived_job)
{
    char id[37];
    make("skip", id);
    settle();
    cr_assert_eq(next_fire(id), DUE1, "next_fire_at is the next minute of the fake clock");
    cr_assert_eq(fx_next_due_ms(rt, 60000), (DUE1 - T0_S) * 1000,
                 "one timer, armed for exactly that time");
    /* A millisecond before it is due: nothing. */
    clock_fake_set(DUE1 * 1000 - 1);
    settle();
    cr_assert_eq(starts(), 0, "fired before its time");
    cr_assert_eq(runs(id, "started"), 0);
    clock_to(DUE1);
    cr_assert_eq(starts(), 1, "fired once at its due time");
    char want[37];
    schedule_job_id(id, DUE1, want);
    cr_assert_str_eq(started[0], want, "the job id is derived from the schedule and due time");
    cr_assert_eq(runs(id, "started"), 1);
    cr_assert_eq(cell_int("SELECT floor(extract(epoch FROM created_at) * 1000)::bigint FROM "
                          "schedule_runs WHERE schedule_id = $1",
                          id, NULL),
                 DUE1 * 1000, "the run is stamped by the actor's clock, not PostgreSQL's");
    cr_assert_eq(cell_int("SELECT count(*) FROM jobs WHERE id = $1 AND schedule_id = $2", want, id),
                 1, "the job row exists, tied to its schedule");
    cr_assert_eq(cell_int("SELECT fire_count FROM schedules WHERE id = $1", id, NULL), 1);
    cr_assert_eq(next_fire(id), DUE1 + 60, "armed again for the minute after");
    /* A sync with nothing changed neither fires again nor re-arms. */
    cr_assert_eq(schedule_sync(rt, id), 0);
    clock_to(DUE1 + 30);
    cr_assert_eq(starts(), 1);
    clock_to(DUE1 + 60);
    cr_assert_eq(starts(), 2, "and fires at the next minute");
    cr_assert_eq(runs(id, "started"), 2);
}

Test(schedule, late_within_the_grace_still_fires_the_missed_time)
{
    char id[37];
    make("skip", id);
    settle();
    clock_to(DUE1 + GRACE_S);
    cr_assert_eq(starts(), 1, "late by the grace exactly: not a misfire");
    char want[37];
    schedule_job_id(id, DUE1, want);
    cr_assert_str_eq(started[0], want);
    cr_assert_eq(runs(id, "skipped"), 0);
}

Test(schedule, a_misfire_past_the_grace_is_skipped_and_the_next_time_is_after_now)
{
    char id[37];
    make("skip", id);
    settle();
    /* Three due times go by at once (the node was down). */
    clock_to(DUE1 + 150);
    cr_assert_eq(starts(), 0, "a skipped firing starts no job");
    cr_assert_eq(runs(id, "skipped"), 1, "the missed time is recorded once, as skipped");
    cr_assert_eq(runs(id, "started"), 0);
    cr_assert_eq(cell_int("SELECT extract(epoch FROM due_at)::bigint FROM schedule_runs WHERE "
                          "schedule_id = $1",
                          id, NULL),
                 DUE1);
    cr_assert_eq(next_fire(id), DUE1 + 180, "armed after now, not for the other missed times");
    clock_to(DUE1 + 180);
    cr_assert_eq(starts(), 1, "then fires on time again");
}

Test(schedule, a_misfire_with_run_once_runs_once_for_all_missed_times)
{
    char id[37];
    make("run_once", id);
    settle();
    clock_to(DUE1 + 150);
    cr_assert_eq(starts(), 1, "one run for all the missed times");
    char want[37];
    schedule_job_id(id, DUE1, want);
    cr_assert_str_eq(started[0], want, "named after the first missed due time");
    cr_assert_eq(runs(id, "started"), 1);
    cr_assert_eq(next_fire(id), DUE1 + 180);
}

Test(schedule, a_paused_schedule_arms_nothing_and_resumes_at_the_next_time)
{
    char id[37];
    make("skip", id);
    settle();
    change(id, "paused = true");
    settle();
    cr_assert_eq(next_fire(id), -1, "no next time while paused");
    clock_to(DUE1 + 10);
    cr_assert_eq(starts(), 0, "the timer armed before the pause does nothing");
    change(id, "paused = false");
    settle();
    cr_assert_eq(next_fire(id), DUE1 + 60, "resumed: the next time after now");
    clock_to(DUE1 + 60);
    cr_assert_eq(starts(), 1);
}

Test(schedule, a_changed_expression_re_arms_and_the_old_timer_does_nothing)
{
    char id[37];
    make("skip", id);
    settle();
    /* Every five minutes from now on: the timer armed for DUE1 belongs to
     * the old generation. */
    change(id, "cron = '*/5 * * * *'");
    settle();
    int64_t five = DUE1 + 4 * 60; /* 00:05:00, the next multiple of five minutes */
    cr_assert_eq(next_fire(id), five, "armed for the new expression");
    clock_to(DUE1);
    cr_assert_eq(starts(), 0, "the old generation's timer went off and did nothing");
    cr_assert_eq(runs(id, "started") + runs(id, "skipped"), 0);
    clock_to(five - 1);
    cr_assert_eq(starts(), 0);
    clock_to(five);
    cr_assert_eq(starts(), 1, "fires at the new time");
    char want[37];
    schedule_job_id(id, five, want);
    cr_assert_str_eq(started[0], want);
}

Test(schedule, a_deleted_schedule_never_fires_again)
{
    char id[37];
    make("skip", id);
    settle();
    clock_to(DUE1);
    cr_assert_eq(starts(), 1);
    change(id, "deleted_at = now()");
    settle();
    cr_assert_eq(next_fire(id), -1, "no next time once deleted");
    clock_to(DUE1 + 60);
    clock_to(DUE1 + 3600);
    cr_assert_eq(starts(), 1, "the timer armed before the delete does nothing");
    cr_assert_eq(runs(id, "started"), 1);
}
