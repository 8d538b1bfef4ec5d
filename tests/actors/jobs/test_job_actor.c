/* test_job_actor.c - the job actor inside a real runtime, on the fake clock,
 * against a private PostgreSQL, with no HTTP server: it runs a workflow's
 * nodes in the order of their edges and records every step as an event; a
 * message whose handling fails (the database refuses the job's write) is
 * retried after its backoff, and only once the clock passes it; a job
 * cancelled while its reply waits for that retry stays cancelled; a node
 * that fails fails the job with its error, and job.retry runs only what did
 * not succeed; a write refused on every attempt dead-letters the message
 * and keeps the events already written.
 *
 * The job is driven through job.h only (job_insert, job_start, job_cancel,
 * job_retry) and read where a client reads it: the jobs row and job_events.
 * Failures are injected by a trigger on job_events, so the tests do not
 * depend on where the actor's SQL lives. No test sleeps for a due time: each
 * moves the fake clock and waits for the runtime to settle. */
#include "actors/jobs/job.h"
#include "actors/workflow/workflow.h"
#include "runtime/clock.h"
#include "runtime/dlq.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "storage/pg.h"
#include "tests/support/fixtures.h"
#include "tests/support/pg_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define T0_MS 1798761600000LL /* 2027-01-01T00:00:00Z */
/* The job actor's retry policy (actors/jobs/job.c): the ceiling of the
 * first retry's delay, and the last ceiling; 12 deliveries in all. */
#define JOB_RETRY_FIRST_MS 500
#define JOB_RETRY_CAP_MS 30000
#define JOB_RETRY_ATTEMPTS 12
/* A job refused a running slot asks again after this (then longer). */
#define JOB_ADMIT_RETRY_MS 250

/* t (text) -> u (uppercase) -> v (trim): three nodes, each fed by the one
 * before. */
static const char CHAIN[] =
    "{\"nodes\":[{\"id\":\"t\",\"type\":\"input.text\",\"params\":{\"text\":\"  hello there.  "
    "\"}},{\"id\":\"u\",\"type\":\"script.transform\",\"params\":{\"op\":\"uppercase\"}},"
    "{\"id\":\"v\",\"type\":\"script.transform\",\"params\":{\"op\":\"trim\"}}],"
    "\"edges\":[{\"from\":\"t.text\",\"to\":\"u.text\"},{\"from\":\"u.text\",\"to\":\"v.text\"}]}";

static char *dir;
static pg_pool_t *pool;
static workflow_types_t *types;
static job_engine_t *engine;
static runtime_t *rt;
static char org[37];

static char *cell(const char *sql, const char *p1, const char *p2)
{
    return fx_pg_cell(pool, sql, p1, p2, NULL);
}

static long long num(const char *sql, const char *p1, const char *p2)
{
    return fx_pg_int(pool, sql, p1, p2, NULL);
}

static void setup(void)
{
    clock_fake_set(T0_MS);
    dir = fx_tmpdir("job-actor");
    pool = fx_pg_fresh_pool(4);
    char why[256] = "";
    types = workflow_types_load(FENTA_SOURCE_SCHEMAS, why, sizeof why);
    cr_assert_not_null(types, "%s", why);
    fx_pg_org(pool, "o", org);
    char objects[4096], work[4096];
    snprintf(objects, sizeof objects, "%s/objects", dir);
    snprintf(work, sizeof work, "%s/work", dir);
    /* No montage in these graphs: no render is ever submitted. */
    engine = job_engine_new(&(job_config_t){.pool = pool,
                                            .render = NULL,
                                            .types = types,
                                            .objects_dir = objects,
                                            .work_dir = work,
                                            .webhooks = false});
    cr_assert_not_null(engine);
    rt = fx_runtime(dir, true);
    cr_assert_eq(job_engine_register(engine, rt), 0);
    cr_assert_eq(runtime_start(rt), 0);
}

static void teardown(void)
{
    runtime_destroy(&rt);
    job_engine_destroy(&engine);
    workflow_types_free(&types);
    pg_pool_destroy(&pool);
    fx_rmdir(dir);
    dir = NULL;
    clock_fake_clear();
}

TestSuite(job_actor, .init = setup, .fini = teardown);

/* A workflow of graph and a queued job of it (job_insert), id into id[37];
 * nothing runs until job_start. */
static void make_job(const char *graph, char id[37])
{
    char *wf =
        cell("INSERT INTO workflows (org_id, name) VALUES ($1, 'w') RETURNING id", org, NULL);
    free(cell("INSERT INTO workflow_versions (workflow_id, version, graph) VALUES ($1, 1, "
              "$2::jsonb) RETURNING 1",
              wf, graph));
    int err = 0;
    pg_conn_t *c = pg_acquire(pool, 10000, &err);
    cr_assert_not_null(c);
    json_t *problem = NULL;
    /* Inputs given, even empty: job_insert leaks the {} it makes for NULL
     * inputs (actors/jobs/job_create.c, json_dumps of a new json_object()). */
    json_t *inputs = json_object();
    int rc = job_insert(
        c, types,
        &(job_new_t){.org_id = org, .workflow_id = wf, .inputs = inputs, .max_credits = -1}, id,
        &problem);
    json_decref(inputs);
    char *p = problem ? json_dumps(problem, JSON_COMPACT) : NULL;
    cr_assert_eq(rc, 0, "job_insert: %s %s", fenta_strerror(rc), p ? p : "");
    free(p);
    json_decref(problem);
    pg_release(pool, &c);
    free(wf);
}

static char *job_status(const char *id)
{
    return cell("SELECT status FROM jobs WHERE id = $1", id, NULL);
}

static void assert_status(const char *id, const char *want, const char *why)
{
    char *s = job_status(id);
    cr_assert_str_eq(s ? s : "(none)", want, "%s (the job is %s)", why, s ? s : "(none)");
    free(s);
}

/* A node's field in the job's row (what GET /v1/jobs/{id} shows). */
static char *node_field(const char *id, const char *node, const char *field)
{
    char path[128];
    snprintf(path, sizeof path, "{%s,%s}", node, field);
    return cell("SELECT nodes #>> $2::text[] FROM jobs WHERE id = $1", id, path);
}

/* The job's events of these types as "type:node:status", in seq order. */
static char *event_trail(const char *id)
{
    char *s = cell("SELECT string_agg(type || ':' || coalesce(data->>'node', '') || ':' || "
                   "coalesce(data->>'status', ''), ' ' ORDER BY seq) FROM job_events WHERE "
                   "job_id = $1 AND type IN ('status', 'node.started', 'node.finished')",
                   id, NULL);
    return s ? s : strdup("");
}

static long long events(const char *id)
{
    return num("SELECT count(*) FROM job_events WHERE job_id = $1", id, NULL);
}

/* From now on the job's writes that record a node.finished event fail,
 * the first `times` of them (-1: all), as a database that goes away would
 * make them: the whole write (row and events) is one statement and rolls
 * back. A sequence counts the attempts, since the failing transaction rolls
 * back anything else it would write. */
static void fail_node_finished_writes(int times)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE SEQUENCE fault_attempts;"
             "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
             "IF NEW.type = 'node.finished' AND nextval('fault_attempts') <= %d "
             "THEN RAISE EXCEPTION 'injected: the database refused the write'; END IF; "
             "RETURN NEW; END $$;"
             "CREATE TRIGGER fault BEFORE INSERT ON job_events FOR EACH ROW EXECUTE "
             "FUNCTION fault();",
             times < 0 ? 1000000000 : times);
    fx_pg_exec(pool, sql);
}

/* Attempts the trigger has seen so far. */
static long long fault_attempts(void)
{
    return num("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM fault_attempts", NULL,
               NULL);
}

static uint64_t retried(void)
{
    runtime_stats_t s;
    runtime_stats(rt, &s);
    return s.retried;
}

Test(job_actor, runs_its_nodes_in_order_and_records_each_step)
{
    char id[37];
    make_job(CHAIN, id);
    assert_status(id, "queued", "nothing runs before job_start");
    cr_assert_eq(job_start(rt, id), 0);
    fx_settle(rt);
    assert_status(id, "succeeded", "every node ran");
    char *out = node_field(id, "v", "outputs");
    cr_assert_not_null(out);
    cr_assert(strstr(out, "\"HELLO THERE.\""), "each node was fed its predecessor's output: %s",
              out);
    free(out);
    char *trail = event_trail(id);
    cr_assert_str_eq(trail,
                     "status::running node.started:t: node.finished:t:succeeded "
                     "node.started:u: node.finished:u:succeeded node.started:v: "
                     "node.finished:v:succeeded status::succeeded",
                     "a node starts only after the one feeding it finished");
    free(trail);
    cr_assert_eq(
        num("SELECT count(*) FROM job_events WHERE job_id = $1 AND type = 'completed'", id, NULL),
        1);
    char *gapless = cell("SELECT (min(seq) = 1 AND max(seq) = count(*))::text FROM job_events "
                         "WHERE job_id = $1",
                         id, NULL);
    cr_assert_str_eq(gapless, "true", "events are numbered 1, 2, ... without gaps");
    free(gapless);
    /* A duplicate start (a replay after a crash) changes nothing. */
    long long n = events(id);
    cr_assert_eq(job_start(rt, id), 0);
    fx_settle(rt);
    cr_assert_eq(events(id), n, "a second job.start adds no event");
    assert_status(id, "succeeded", "and leaves the job as it was");
}

/* The fake clock waits on the retry of a failed write: the job does not move
 * while the clock stands before the retry's due time, moves when it gets
 * there, and the retry is due within the policy's ceiling. Returns the due
 * delay (0 when the jitter drew no delay: the retry already ran). */
static int64_t step_to_retry(const char *id, int64_t ceiling_ms, long long *attempts)
{
    int64_t due = fx_next_due_ms(rt, ceiling_ms);
    if (due < 0) {
        /* The jitter may draw a delay of 0 (1 in ceiling + 1): the retry
         * has run already, and failed again or not. */
        cr_assert_gt(fault_attempts(), *attempts, "no retry within the ceiling of %lld ms",
                     (long long)ceiling_ms);
        *attempts = fault_attempts();
        return 0;
    }
    char *before = event_trail(id);
    clock_fake_advance(due - 1);
    fx_settle(rt);
    cr_assert_eq(fault_attempts(), *attempts, "retried before its due time");
    char *still = event_trail(id);
    cr_assert_str_eq(still, before, "the job moved before its retry was due");
    free(still);
    free(before);
    clock_fake_advance(1);
    fx_settle(rt);
    /* Once a write goes through, the nodes after it record their ends too. */
    cr_assert_gt(fault_attempts(), *attempts, "the retry ran when the clock reached it");
    *attempts = fault_attempts();
    return due;
}

Test(job_actor, a_failed_write_is_retried_after_its_backoff_only_when_the_clock_passes_it)
{
    char id[37];
    make_job(CHAIN, id);
    fail_node_finished_writes(2);
    cr_assert_eq(job_start(rt, id), 0);
    fx_settle(rt);
    /* t answered, but recording its end failed: the job still shows t
     * running, and the reply waits in a timer. */
    long long attempts = fault_attempts();
    cr_assert_eq(attempts, 1, "t's reply was handled once");
    cr_assert_geq(retried(), 1);
    char *st = node_field(id, "t", "status");
    cr_assert_str_eq(st, "running", "a failed write leaves no trace in the row");
    free(st);
    assert_status(id, "running", "the job waits for the retry");
    /* Retry 1 (ceiling 500 ms) fails again; retry 2 (ceiling 1 s) succeeds. */
    int64_t d1 = step_to_retry(id, JOB_RETRY_FIRST_MS, &attempts);
    int64_t d2 = step_to_retry(id, 2 * JOB_RETRY_FIRST_MS, &attempts);
    cr_assert(d1 > 0 || d2 > 0, "both retries drew a delay of 0 (1 in 500,000): run again");
    fx_settle(rt);
    assert_status(id, "succeeded", "the job went on once its write went through");
    char *trail = event_trail(id);
    cr_assert(strstr(trail, "node.finished:t:succeeded node.started:u:"),
              "t's end is recorded once, then u starts: %s", trail);
    free(trail);
    cr_assert_eq(num("SELECT count(*) FROM job_events WHERE job_id = $1 AND type = "
                     "'node.finished' AND data->>'node' = 't'",
                     id, NULL),
                 1, "the retried write recorded t's end once");
}

Test(job_actor, a_job_cancelled_while_a_reply_waits_for_its_retry_stays_cancelled)
{
    char id[37];
    make_job(CHAIN, id);
    fail_node_finished_writes(1);
    cr_assert_eq(job_start(rt, id), 0);
    fx_settle(rt);
    cr_assert_eq(fault_attempts(), 1);
    assert_status(id, "running", "t's reply waits for its retry");
    /* The retry is a timer: the mailbox is free for the cancel meanwhile. */
    cr_assert_eq(job_cancel(rt, id), 0);
    fx_settle(rt);
    assert_status(id, "cancelled", "cancel does not wait for the retry");
    char *st = node_field(id, "t", "status");
    cr_assert_str_eq(st, "cancelled");
    free(st);
    long long n = events(id);
    /* Past any delay the retry may have drawn: t's late reply is ignored. */
    clock_fake_advance(JOB_RETRY_FIRST_MS + 1);
    fx_settle(rt);
    assert_status(id, "cancelled", "a reply arriving after the cancel changes nothing");
    cr_assert_eq(events(id), n, "and records nothing");
    char *u = node_field(id, "u", "status");
    cr_assert_str_eq(u, "cancelled", "u never started");
    free(u);
    /* Cancelling again is harmless. */
    cr_assert_eq(job_cancel(rt, id), 0);
    fx_settle(rt);
    cr_assert_eq(events(id), n);
}

Test(job_actor, a_failed_node_fails_the_job_and_retry_runs_only_what_did_not_succeed)
{
    char key[128];
    snprintf(key, sizeof key, "uploads/%s/clip.mp4", org);
    char graph[1024];
    snprintf(graph, sizeof graph,
             "{\"nodes\":[{\"id\":\"t\",\"type\":\"input.text\",\"params\":{\"text\":\"Hi.\"}},"
             "{\"id\":\"a\",\"type\":\"input.asset\",\"params\":{\"keys\":[\"%s\"]}}],"
             "\"edges\":[]}",
             key);
    char id[37];
    make_job(graph, id);
    cr_assert_eq(job_start(rt, id), 0);
    fx_settle(rt);
    assert_status(id, "failed", "the upload is missing");
    char *code =
        cell("SELECT error->>'code' || ':' || (error->>'node') FROM jobs WHERE id = $1", id, NULL);
    cr_assert_str_eq(code, "invalid_input:a", "the job's error names the node and why");
    free(code);
    char *trail = event_trail(id);
    cr_assert(strstr(trail, "node.finished:a:failed"), "%s", trail);
    cr_assert(strstr(trail, "status::failed"), "%s", trail);
    free(trail);
    long long before = events(id);
    /* Upload it, then retry: only a runs again. */
    char path[4096];
    snprintf(path, sizeof path, "%s/objects", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/objects/uploads", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/objects/uploads/%s", dir, org);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/objects/%s", dir, key);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("not a real clip; input.asset only checks it is there", f);
    fclose(f);
    char *t_attempt = node_field(id, "t", "attempt");
    long long runs = num("SELECT attempts FROM jobs WHERE id = $1", id, NULL);
    cr_assert_eq(job_retry(rt, id), 0);
    fx_settle(rt);
    /* job.retry re-queues the job and asks for a running slot; the API claims
     * the row (failed -> queued) before sending it, job_retry alone does not,
     * so the slot comes at the next admission try, a timer 250 ms on. */
    clock_fake_advance(JOB_ADMIT_RETRY_MS);
    fx_settle(rt);
    assert_status(id, "succeeded", "the retried node found its upload");
    char *t_again = node_field(id, "t", "attempt");
    cr_assert_str_eq(t_again, t_attempt, "t had succeeded and did not run again");
    free(t_again);
    free(t_attempt);
    char *a_attempt = node_field(id, "a", "attempt");
    cr_assert_str_eq(a_attempt, "2", "a ran a second time");
    free(a_attempt);
    cr_assert_eq(num("SELECT attempts FROM jobs WHERE id = $1", id, NULL), runs + 1,
                 "the row counts the retry");
    char n[24];
    snprintf(n, sizeof n, "%lld", before);
    cr_assert_eq(num("SELECT count(*) FROM job_events WHERE job_id = $1 AND seq <= $2::int", id, n),
                 before, "the failed run's events are kept");
    cr_assert_gt(events(id), before, "and the retry's follow them");
}

Test(job_actor, a_write_refused_on_every_attempt_is_dead_lettered_and_the_events_stay)
{
    char id[37];
    make_job(CHAIN, id);
    fail_node_finished_writes(-1);
    cr_assert_eq(job_start(rt, id), 0);
    fx_settle(rt);
    long long kept = events(id);
    cr_assert_geq(kept, 2, "the start and t's start were recorded");
    /* Each retry is due within the policy's cap: moving the clock by the
     * cap runs exactly one more attempt each time. */
    for (int i = 1; i < JOB_RETRY_ATTEMPTS; i++) {
        cr_assert_eq(dlq_count(rt), 0, "dead after %d attempts of %d", i, JOB_RETRY_ATTEMPTS);
        clock_fake_advance(JOB_RETRY_CAP_MS);
        fx_settle(rt);
    }
    cr_assert_eq(fault_attempts(), JOB_RETRY_ATTEMPTS, "every attempt was made (%lld)",
                 fault_attempts());
    cr_assert_eq(dlq_count(rt), 1, "then the reply went to the dead-letter queue");
    cr_assert_eq(fx_next_due_ms(rt, 24LL * 3600 * 1000), -1, "and nothing is retried any more");
    cr_assert_eq(events(id), kept, "the events written before are kept");
    char *st = node_field(id, "t", "status");
    cr_assert_str_eq(st, "running", "the row shows the last state that was written");
    free(st);
}
