/* test_webhooks_actor.c - the webhook fan-out and delivery actors inside a
 * real runtime, on the fake clock, against a private PostgreSQL and the
 * webhook receiver (tests/support/webhook_receiver.mjs, which verifies each
 * delivery the Standard Webhooks way), with no HTTP server of ours: a
 * delivery that fails is retried on the configured schedule, each retry
 * waiting in a timer until the clock reaches it; after its last attempt it
 * is dead (row, dead-letter queue) until redelivered; a webhook that keeps
 * failing past disable_after_ms is disabled and its pending retry sends
 * nothing more.
 *
 * Driven through webhooks.h only (webhooks_emit_now, webhooks_redeliver) and
 * read where a client reads it: the receiver, the webhook_deliveries and
 * webhooks rows. The requests themselves are real HTTP on the outbound
 * client's thread, so the tests wait for their results by polling the
 * receiver and the rows (bounded); no test sleeps for a due time. */
#include "actors/webhooks/webhooks.h"
#include "runtime/clock.h"
#include "runtime/dlq.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "storage/pg.h"
#include "tests/support/fixtures.h"
#include "tests/support/pg_fixture.h"
#include "tests/support/webhook_receiver.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_S 20 /* bound on every wait for a real HTTP round trip */

static char *dir;
static pg_pool_t *pool;
static webhooks_t *hooks;
static runtime_t *rt;
static receiver_t *rv;
static char org[37];

/* The engine with this retry schedule (ms) and disable rule, started on a
 * fresh runtime. The request timeout (its watchdog fires 10 s after it) is
 * far beyond every retry of these schedules, so the earliest timer is
 * always the retry. */
static void start(const int64_t *retry_ms, int nretry, int64_t disable_after_ms)
{
    webhooks_config_t cfg = {.pool = pool,
                             .nretry = nretry,
                             .timeout_ms = 60000,
                             .connect_timeout_ms = 5000,
                             .allow_loopback = true,
                             .disable_after_ms = disable_after_ms};
    for (int i = 0; i < nretry; i++)
        cfg.retry_ms[i] = retry_ms[i];
    char why[256] = "";
    hooks = webhooks_new(&cfg, why, sizeof why);
    cr_assert_not_null(hooks, "%s", why);
    rt = fx_runtime(dir, true);
    cr_assert_eq(webhooks_register(hooks, rt), 0);
    cr_assert_eq(runtime_start(rt), 0);
    cr_assert_eq(webhooks_start(hooks, rt), 0);
}

static void setup(void)
{
    /* Stopped at the real time: the receiver checks each signature's
     * timestamp against its own clock (within 5 minutes), as consumers do. */
    clock_fake_clear();
    clock_fake_set(clock_now_ms());
    dir = fx_tmpdir("webhooks-actor");
    pool = fx_pg_fresh_pool(4);
    fx_pg_org(pool, "o", org);
    rv = receiver_start();
}

static void teardown(void)
{
    /* The runtime first: its kinds borrow the engine's behaviours, which
     * runtime_destroy reads as it stops the resident actors (the engine
     * first was a use after free). Every test ends with no request in
     * flight, so the engine's threads have nothing left to send to it. */
    runtime_destroy(&rt);
    webhooks_destroy(&hooks);
    receiver_stop(&rv);
    pg_pool_destroy(&pool);
    fx_rmdir(dir);
    dir = NULL;
    clock_fake_clear();
}

TestSuite(webhooks_actor, .init = setup, .fini = teardown, .timeout = 120);

/* A webhook of the organisation to the receiver's endpoint name, for every
 * event type, the endpoint answering as extra says (config members); its
 * id into id[37]. */
static char secret[64]; /* the last hook's signing secret */

static void hook(const char *name, const char *extra, char id[37])
{
    cr_assert_eq(webhooks_new_secret(secret), 0);
    char url[256], secrets[160], config[512];
    receiver_url(rv, name, url, sizeof url);
    snprintf(secrets, sizeof secrets, "[{\"secret\":\"%s\"}]", secret);
    char *w = fx_pg_cell(pool,
                         "INSERT INTO webhooks (org_id, url, event_types, secrets) VALUES ($1, $2, "
                         "'{*}', $3::jsonb) RETURNING id",
                         org, url, secrets);
    snprintf(id, 37, "%s", w);
    free(w);
    snprintf(config, sizeof config, "{\"secrets\":[\"%s\"]%s%s}", secret, extra ? "," : "",
             extra ? extra : "");
    receiver_config(rv, name, config);
}

/* Emits one job.succeeded event; the delivery's id to webhook into did[37]. */
static void emit(const char *event_id, const char *webhook, char did[37])
{
    json_t *data = json_pack("{ss ss}", "job_id", "00000000-0000-4000-8000-000000000001", "status",
                             "succeeded");
    cr_assert_eq(webhooks_emit_now(hooks, org, event_id, "job.succeeded", data, NULL), 0);
    json_decref(data);
    webhooks_delivery_id(event_id, webhook, did);
}

static size_t received(const char *name)
{
    json_t *log = receiver_log(rv, name);
    size_t n = json_array_size(log);
    json_decref(log);
    return n;
}

/* The delivery's row as "status/attempts" ("" while it has none). */
static char *row(const char *did)
{
    char *s =
        fx_pg_cell(pool, "SELECT status || '/' || attempts FROM webhook_deliveries WHERE id = $1",
                   did, NULL, NULL);
    return s ? s : strdup("");
}

/* Polls until the delivery's row reads want (an attempt's result is written
 * by the engine's writer thread, then handed to the actor); then lets the
 * runtime settle. */
static void wait_row(const char *did, const char *want)
{
    char *got = NULL;
    for (int i = 0; i < WAIT_S * 100; i++) {
        free(got);
        got = row(did);
        if (strcmp(got, want) == 0)
            break;
        usleep(10000);
    }
    cr_assert_str_eq(got, want, "the delivery's row (status/attempts) is %s", got);
    free(got);
    fx_settle(rt);
}

/* Waits for the failed attempt's retry timer (the result reaches the actor
 * right after its row is written) and returns in how many ms it is due. */
static int64_t retry_due(int64_t max_ms)
{
    int64_t due = -1;
    for (int i = 0; i < WAIT_S * 100 && due < 0; i++)
        if ((due = fx_next_due_ms(rt, max_ms)) < 0)
            usleep(10000);
    cr_assert_geq(due, 0, "no retry due within %lld ms", (long long)max_ms);
    return due;
}

/* Moves the clock to one ms before the retry due in `due` ms: the retry
 * still waits and the receiver got nothing more; then to the due time:
 * the receiver gets the next attempt. */
static void cross(const char *name, int64_t due, size_t before)
{
    clock_fake_advance(due - 1);
    fx_settle(rt);
    cr_assert_eq(fx_next_due_ms(rt, 1), 1, "the retry still waits, due in 1 ms");
    cr_assert_eq(received(name), before, "nothing was sent before the retry was due");
    clock_fake_advance(1);
    json_t *log = receiver_wait(rv, name, before + 1, WAIT_S);
    cr_assert_eq(json_array_size(log), before + 1, "the retry was sent when it was due");
    json_decref(log);
}

Test(webhooks_actor, a_failed_delivery_is_retried_on_the_schedule_as_the_clock_moves)
{
    const int64_t sched[] = {1000, 4000, 16000};
    start(sched, 3, 0);
    char wid[37], did[37];
    hook("a", "\"mode\":\"fail\",\"fail_times\":2", wid);
    emit("evt_retry_1", wid, did);
    json_t *first = receiver_wait(rv, "a", 1, WAIT_S);
    cr_assert_eq(json_array_size(first), 1, "the first attempt goes out at once");
    json_decref(first);
    wait_row(did, "retrying/1");
    /* Each retry is due after its step of the schedule, +-10% jitter. */
    int64_t d1 = retry_due(1100);
    cr_assert(d1 >= 900 && d1 <= 1100, "retry 1 due in %lld ms, not 1 s +-10%%", (long long)d1);
    cross("a", d1, 1);
    wait_row(did, "retrying/2");
    int64_t d2 = retry_due(4400);
    cr_assert(d2 >= 3600 && d2 <= 4400, "retry 2 due in %lld ms, not 4 s +-10%%", (long long)d2);
    cross("a", d2, 2);
    wait_row(did, "succeeded/3");
    cr_assert_eq(fx_next_due_ms(rt, 30000), -1, "a delivered event is not retried");
    /* All three were the same event, signed so the receiver verified them. */
    json_t *log = receiver_log(rv, "a");
    size_t i;
    json_t *rec;
    json_array_foreach(log, i, rec)
    {
        cr_assert(json_is_true(json_object_get(rec, "verified")), "attempt %zu verified", i + 1);
        cr_assert_str_eq(json_string_value(json_object_get(rec, "webhook_id")), "evt_retry_1");
        cr_assert_str_eq(json_string_value(json_object_get(rec, "type")), "job.succeeded");
    }
    json_decref(log);
    cr_assert_eq(dlq_count(rt), 0);
}

Test(webhooks_actor, after_its_last_attempt_a_delivery_is_dead_until_redelivered)
{
    const int64_t sched[] = {1000, 2000};
    start(sched, 2, 0);
    char wid[37], did[37];
    hook("b", "\"mode\":\"fail\",\"fail_times\":-1", wid);
    emit("evt_dead_1", wid, did);
    wait_row(did, "retrying/1");
    cross("b", retry_due(1100), 1);
    wait_row(did, "retrying/2");
    cross("b", retry_due(2200), 2);
    wait_row(did, "dead/3");
    cr_assert_eq(dlq_count(rt), 1, "the dead delivery waits in the dead-letter queue");
    cr_assert_eq(fx_next_due_ms(rt, 30000), -1, "and is not retried any more");
    clock_fake_advance(30000);
    fx_settle(rt);
    cr_assert_eq(received("b"), 3, "no attempt after the last one");
    /* The endpoint is fixed; an operator redelivers. */
    char ok[160];
    snprintf(ok, sizeof ok, "{\"secrets\":[\"%s\"],\"mode\":\"ok\"}", secret);
    receiver_config(rv, "b", ok);
    cr_assert_eq(webhooks_redeliver(rt, did), 0);
    json_t *log = receiver_wait(rv, "b", 4, WAIT_S);
    cr_assert_eq(json_array_size(log), 4, "redelivery sends it again");
    json_decref(log);
    wait_row(did, "succeeded/4"); /* the row counts every request sent */
    cr_assert_eq(dlq_count(rt), 0, "and drops its dead letter");
}

Test(webhooks_actor, a_webhook_failing_past_the_limit_is_disabled_and_its_retry_sends_nothing)
{
    /* disable_after_ms is measured by PostgreSQL's now() from the webhook's
     * first failure (actors/webhooks/webhooks_results.c), not by the fake
     * clock: 1 ms has passed by the second failure. */
    const int64_t sched[] = {1000, 1000, 1000};
    start(sched, 3, 1);
    char wid[37], did[37];
    hook("c", "\"mode\":\"fail\",\"fail_times\":-1", wid);
    emit("evt_disable_1", wid, did);
    wait_row(did, "retrying/1");
    char *since =
        fx_pg_cell(pool, "SELECT (failing_since IS NOT NULL)::text FROM webhooks WHERE id = $1",
                   wid, NULL, NULL);
    cr_assert_str_eq(since, "true", "the first failure marks the webhook failing");
    free(since);
    cross("c", retry_due(1100), 1);
    wait_row(did, "retrying/2");
    char *state = fx_pg_cell(pool,
                             "SELECT enabled::text || ' ' || coalesce(disabled_reason, '') FROM "
                             "webhooks WHERE id = $1",
                             wid, NULL, NULL);
    cr_assert(strncmp(state, "false failing since ", 20) == 0,
              "failing past the limit disables the webhook: %s", state);
    free(state);
    /* Its retry finds it disabled: nothing is sent, the delivery is dead. */
    int64_t due = retry_due(1100);
    clock_fake_advance(due);
    wait_row(did, "dead/2");
    char *why =
        fx_pg_cell(pool, "SELECT error FROM webhook_deliveries WHERE id = $1", did, NULL, NULL);
    cr_assert_str_eq(why, "the webhook is disabled");
    free(why);
    cr_assert_eq(received("c"), 2, "the disabled webhook got no third request");
}
