/* test_runtime.c - actors, mailboxes and dispatchers: order, durability of
 * state and mail across restarts, failure discarding effects, dispatcher
 * isolation, fairness, idempotent spawn and passivation of idle actors. */
#include "runtime/clock.h"
#include "runtime/dlq.h"
#include "runtime/error.h"
#include "runtime/metrics.h"
#include "runtime/runtime.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* counter: state = {count, last seq}; fails the test's expectation if a seq
 * arrives out of order (recorded in `disorder`). */
typedef struct {
    uint64_t count;
    int64_t last;
} ctr_t;

static _Atomic int disorder;

static int counter_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    size_t len;
    const void *s = actor_state(ctx, &len);
    ctr_t c = {0, -1};
    if (len == sizeof c)
        memcpy(&c, s, sizeof c);
    int64_t seq = -1;
    if (m->body_len == sizeof seq)
        memcpy(&seq, m->body, sizeof seq);
    if (seq >= 0 && seq <= c.last)
        atomic_fetch_add(&disorder, 1);
    if (seq >= 0)
        c.last = seq;
    c.count++;
    return actor_set_state(ctx, &c, sizeof c);
}

static const behaviour_t counter = {.kind = "counter", .on_message = counter_msg};

static ctr_t read_ctr(runtime_t *rt, const char *addr)
{
    void *s = NULL;
    size_t len = 0;
    ctr_t c = {0, -1};
    if (runtime_actor_state(rt, addr, &s, &len) == 0 && len == sizeof c)
        memcpy(&c, s, sizeof c);
    free(s);
    return c;
}

Test(runtime, mailbox_is_fifo_and_durable_state)
{
    char *dir = fx_tmpdir("rt");
    runtime_t *rt = fx_runtime(dir, false);
    cr_assert_eq(runtime_register(rt, &counter), 0);
    cr_assert_eq(runtime_start(rt), 0);
    cr_assert_eq(runtime_spawn(rt, "counter/a", NULL, NULL, 0), 0);
    atomic_store(&disorder, 0);
    enum { N = 2000 };
    envelope_t *envs[100];
    for (int64_t i = 0; i < N; i += 100) {
        for (int64_t j = 0; j < 100; j++) {
            int64_t seq = i + j;
            envs[j] = envelope_new("counter/a", NULL, "inc", NULL, &seq, sizeof seq);
        }
        cr_assert_eq(runtime_send_many(rt, envs, 100), 0);
        cr_assert_null(envs[0], "ownership taken");
    }
    cr_assert_eq(runtime_quiesce(rt, 0, 10000), 0);
    cr_assert_eq(atomic_load(&disorder), 0, "messages to one actor arrive in order");
    ctr_t c = read_ctr(rt, "counter/a");
    cr_assert_eq(c.count, N);
    cr_assert_eq(c.last, N - 1);
    runtime_destroy(&rt);

    /* A new runtime on the same directory sees the committed state. */
    rt = fx_runtime(dir, false);
    runtime_register(rt, &counter);
    cr_assert_eq(runtime_start(rt), 0);
    int64_t seq = N;
    cr_assert_eq(runtime_send(rt, "counter/a", "inc", NULL, &seq, sizeof seq), 0);
    cr_assert_eq(runtime_quiesce(rt, 0, 5000), 0);
    cr_assert_eq(read_ctr(rt, "counter/a").count, N + 1);
    runtime_destroy(&rt);
    fx_rmdir(dir);
}

/* gate: blocks in its handler until released; used to hold mail in place. */
static _Atomic int gate_open, gate_entered;

static int gate_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    (void)m;
    atomic_fetch_add(&gate_entered, 1);
    while (!atomic_load(&gate_open))
        usleep(1000);
    return counter_msg(ctx, m);
}

static const behaviour_t gate = {.kind = "gate", .dispatcher = "io", .on_message = gate_msg};

static bool entered(void *arg)
{
    return atomic_load(&gate_entered) >= *(int *)arg;
}

Test(runtime, pending_mail_survives_stop)
{
    char *dir = fx_tmpdir("rt");
    runtime_t *rt = fx_runtime(dir, false);
    runtime_register(rt, &gate);
    runtime_register(rt, &counter);
    cr_assert_eq(runtime_start(rt), 0);
    runtime_spawn(rt, "gate/1", NULL, NULL, 0);
    atomic_store(&gate_open, 0);
    atomic_store(&gate_entered, 0);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(runtime_send(rt, "gate/1", "x", NULL, NULL, 0), 0);
    int one = 1;
    cr_assert(fx_wait(entered, &one, 2000));
    /* The running handler finishes within the stop timeout; the other 9 stay. */
    atomic_store(&gate_open, 1);
    cr_assert_eq(runtime_stop(rt, 5000), 0);
    cr_assert_eq(runtime_send(rt, "gate/1", "x", NULL, NULL, 0), FENTA_ESTOPPED);
    uint64_t done = read_ctr(rt, "gate/1").count;
    cr_assert_geq(done, 1);
    cr_assert_lt(done, 10, "stop must not drain the mailbox");
    runtime_destroy(&rt);

    rt = fx_runtime(dir, false);
    runtime_register(rt, &gate);
    runtime_register(rt, &counter);
    cr_assert_eq(runtime_start(rt), 0);
    cr_assert_eq(runtime_quiesce(rt, 0, 5000), 0);
    cr_assert_eq(read_ctr(rt, "gate/1").count, 10, "every message handled exactly once");
    runtime_destroy(&rt);
    fx_rmdir(dir);
}

/* A busy actor's pending mail waits in a ring that grows: with its first
 * message taken off (the ring's head moved on) and its handler held, the
 * mail that follows fills the ring, wraps around its end and makes it grow
 * several times, and must still be handled in the order it was sent. */
Test(runtime, pending_mail_keeps_its_order_as_the_queue_grows)
{
    char *dir = fx_tmpdir("rt");
    runtime_t *rt = fx_runtime(dir, false);
    cr_assert_eq(runtime_register(rt, &gate), 0);
    cr_assert_eq(runtime_start(rt), 0);
    cr_assert_eq(runtime_spawn(rt, "gate/q", NULL, NULL, 0), 0);
    atomic_store(&gate_open, 0);
    atomic_store(&gate_entered, 0);
    atomic_store(&disorder, 0);
    enum { N = 100 };
    int64_t seq = 0;
    cr_assert_eq(runtime_send(rt, "gate/q", "inc", NULL, &seq, sizeof seq), 0);
    int one = 1;
    cr_assert(fx_wait(entered, &one, 2000));
    for (seq = 1; seq < N; seq++)
        cr_assert_eq(runtime_send(rt, "gate/q", "inc", NULL, &seq, sizeof seq), 0);
    atomic_store(&gate_open, 1);
    cr_assert_eq(runtime_quiesce(rt, 0, 10000), 0);
    cr_assert_eq(atomic_load(&disorder), 0, "mail to a busy actor is handled in send order");
    ctr_t c = read_ctr(rt, "gate/q");
    cr_assert_eq(c.count, N, "every message handled once");
    cr_assert_eq(c.last, N - 1);
    runtime_destroy(&rt);
    fx_rmdir(dir);
}

/* A failing handler's state change and sends are discarded. */
static int sloppy_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    (void)m;
    ctr_t c = {999, 999};
    actor_set_state(ctx, &c, sizeof c);
    actor_send(ctx, "counter/witness", "inc", NULL, 0);
    actor_send_after(ctx, "counter/witness", "inc", NULL, 0, 10);
    actor_spawn(ctx, "counter/ghost", NULL, NULL, 0);
    return actor_fail(ctx, "boom %d", 42);
}

static const behaviour_t sloppy = {
    .kind = "sloppy",
    .on_message = sloppy_msg,
    .retry = {.base_ms = 1, .factor = 1, .cap_ms = 1, .max_attempts = 1},
};

Test(runtime, failure_discards_effects)
{
    char *dir = fx_tmpdir("rt");
    runtime_t *rt = fx_runtime(dir, true);
    runtime_register(rt, &sloppy);
    runtime_register(rt, &counter);
    cr_assert_eq(runtime_start(rt), 0);
    runtime_spawn(rt, "sloppy/1", NULL, NULL, 0);
    runtime_spawn(rt, "counter/witness", NULL, NULL, 0);
    cr_assert_eq(runtime_send(rt, "sloppy/1", "go", NULL, NULL, 0), 0);
    cr_assert_eq(runtime_quiesce(rt, 1000, 5000), 0);
    void *s = NULL;
    size_t len = 99;
    cr_assert_eq(runtime_actor_state(rt, "sloppy/1", &s, &len), 0);
    cr_assert_eq(len, 0, "state unchanged by a failed handler");
    free(s);
    cr_assert_eq(read_ctr(rt, "counter/witness").count, 0, "sends of a failed handler dropped");
    cr_assert_eq(runtime_actor_state(rt, "counter/ghost", &s, &len), FENTA_ENOTFOUND,
                 "spawns of a failed handler dropped");
    cr_assert_eq(dlq_count(rt), 1);
    runtime_stats_t st;
    runtime_stats(rt, &st);
    cr_assert_eq(st.failed, 1);
    cr_assert_eq(st.dead_lettered, 1);
    runtime_destroy(&rt);
    fx_rmdir(dir);
}

Test(runtime, spawn_is_idempotent_and_validated)
{
    char *dir = fx_tmpdir("rt");
    runtime_t *rt = fx_runtime(dir, true);
    runtime_register(rt, &counter);
    cr_assert_eq(runtime_start(rt), 0);
    ctr_t init = {7, -1};
    cr_assert_eq(runtime_spawn(rt, "counter/x", NULL, &init, sizeof init), 0);
    ctr_t other = {100, -1};
    cr_assert_eq(runtime_spawn(rt, "counter/x", NULL, &other, sizeof other), FENTA_EEXIST);
    cr_assert_eq(read_ctr(rt, "counter/x").count, 7, "existing state untouched");
    cr_assert_eq(runtime_spawn(rt, "no-slash", NULL, NULL, 0), FENTA_EINVAL);
    char longaddr[400];
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = 0;
    longaddr[3] = '/';
    cr_assert_eq(runtime_spawn(rt, longaddr, NULL, NULL, 0), FENTA_EINVAL);
    cr_assert_eq(runtime_send(rt, NULL, "x", NULL, NULL, 0), FENTA_EINVAL);
    runtime_destroy(&rt);
    fx_rmdir(dir);
}

/* A handler blocked on "io" must not hold up "default". */
Test(runtime, dispatchers_are_isolated)
{
    char *dir = fx_tmpdir("rt");
    runtime_t *rt = fx_runtime(dir, true);
    runtime_register(rt, &gate);
    runtime_register(rt, &counter);
    cr_assert_eq(runtime_start(rt), 0);
    atomic_store(&gate_open, 0);
    atomic_store(&gate_entered, 0);
    runtime_spawn(rt, "gate/a", NULL, NULL, 0);
    runtime_spawn(rt, "gate/b", NULL, NULL, 0);
    runtime_spawn(rt, "counter/c", NULL, NULL, 0);
    runtime_send(rt, "gate/a", "x", NULL, NULL, 0);
    runtime_send(rt, "gate/b", "x", NULL, NULL, 0);
    int two = 2;
    cr_assert(fx_wait(entered, &two, 2000), "both io threads are busy");
    for (int i = 0; i < 50; i++)
        runtime_send(rt, "counter/c", "inc", NULL, NULL, 0);
    int64_t t0 = clock_mono_us();
    while (read_ctr(rt, "counter/c").count < 50 && clock_mono_us() - t0 < 3000000)
        usleep(1000);
    cr_assert_eq(read_ctr(rt, "counter/c").count, 50, "default dispatcher kept going");
    atomic_store(&gate_open, 1);
    cr_assert_eq(runtime_quiesce(rt, 0, 5000), 0);
    runtime_destroy(&rt);
    fx_rmdir(dir);
}

/* One message per turn: an actor with a long queue does not starve another. */
static _Atomic int order_seq, first_b_at, a_done;

static int order_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    (void)m;
    int at = atomic_fetch_add(&order_seq, 1);
    if (strcmp(actor_self(ctx), "order/b") == 0 && atomic_load(&first_b_at) < 0)
        atomic_store(&first_b_at, at);
    if (strcmp(actor_self(ctx), "order/a") == 0)
        atomic_fetch_add(&a_done, 1);
    usleep(100);
    return 0;
}

static const behaviour_t order = {.kind = "order", .on_message = order_msg};

Test(runtime, fair_across_actors)
{
    char *dir = fx_tmpdir("rt");
    static const dispatcher_spec_t one[] = {{"default", 1}};
    runtime_t *rt = runtime_new(
        &(runtime_opts_t){.data_dir = dir, .dispatchers = one, .ndispatchers = 1, .no_sync = 1},
        NULL);
    cr_assert_not_null(rt);
    runtime_register(rt, &order);
    cr_assert_eq(runtime_start(rt), 0);
    runtime_spawn(rt, "order/a", NULL, NULL, 0);
    runtime_spawn(rt, "order/b", NULL, NULL, 0);
    atomic_store(&first_b_at, -1);
    envelope_t *envs[500];
    for (int i = 0; i < 500; i++)
        envs[i] = envelope_new("order/a", NULL, "x", NULL, NULL, 0);
    runtime_send_many(rt, envs, 500);
    runtime_send(rt, "order/b", "x", NULL, NULL, 0);
    cr_assert_eq(runtime_quiesce(rt, 0, 10000), 0);
    cr_assert_eq(atomic_load(&a_done), 500);
    cr_assert_geq(atomic_load(&first_b_at), 0);
    cr_assert_lt(atomic_load(&first_b_at), 100, "b waited behind %d of a's messages",
                 atomic_load(&first_b_at));
    runtime_destroy(&rt);
    fx_rmdir(dir);
}

/* factory: spawns 1000 counters per message; 100k idle actors must stay in
 * the store, not in memory. */
static int factory_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    int32_t base;
    memcpy(&base, m->body, sizeof base);
    for (int i = 0; i < 1000; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "counter/%d", base + i);
        int rc = actor_spawn(ctx, addr, NULL, NULL, 0);
        if (rc)
            return rc;
    }
    return 0;
}

static const behaviour_t factory = {.kind = "factory", .on_message = factory_msg};

Test(runtime, idle_actors_are_passivated, .timeout = 60)
{
    char *dir = fx_tmpdir("rt");
    static const dispatcher_spec_t disps[] = {{"default", 2}};
    runtime_t *rt = runtime_new(&(runtime_opts_t){.data_dir = dir,
                                                  .dispatchers = disps,
                                                  .ndispatchers = 1,
                                                  .no_sync = 1,
                                                  .max_resident_idle = 500},
                                NULL);
    runtime_register(rt, &factory);
    runtime_register(rt, &counter);
    cr_assert_eq(runtime_start(rt), 0);
    runtime_spawn(rt, "factory/1", NULL, NULL, 0);
    for (int32_t b = 0; b < 100000; b += 1000)
        runtime_send(rt, "factory/1", "make", NULL, &b, sizeof b);
    cr_assert_eq(runtime_quiesce(rt, 0, 50000), 0);
    /* Touch a few so they go through load + passivation too. */
    for (int i = 0; i < 2000; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "counter/%d", i * 50);
        runtime_send(rt, addr, "inc", NULL, NULL, 0);
    }
    cr_assert_eq(runtime_quiesce(rt, 0, 20000), 0);
    runtime_stats_t st;
    runtime_stats(rt, &st);
    cr_assert_leq(st.resident, 600, "resident actors: %llu", (unsigned long long)st.resident);
    cr_assert_eq(read_ctr(rt, "counter/99950").count, 1);
    cr_assert_eq(read_ctr(rt, "counter/99999").count, 0);
    void *s;
    size_t len;
    cr_assert_eq(runtime_actor_state(rt, "counter/99999", &s, &len), 0, "spawned and stored");
    free(s);
    runtime_destroy(&rt);
    fx_rmdir(dir);
}

/* Handler API misuse is an error, not a crash. */
static int fails_outside(actor_ctx_t *ctx, actor_start_t why)
{
    (void)why;
    /* on_start has no message: effects are refused */
    cr_assert_eq(actor_send(ctx, "counter/a", "x", NULL, 0), FENTA_EINVAL);
    cr_assert_eq(actor_set_state(ctx, "x", 1), FENTA_EINVAL);
    return 0;
}

static int echo_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    (void)m;
    /* Sending to an invalid address records an error: the handler fails. */
    actor_send(ctx, NULL, "x", NULL, 0);
    return 0;
}

static const behaviour_t misuse = {
    .kind = "misuse",
    .on_start = fails_outside,
    .on_message = echo_msg,
    .retry = {.base_ms = 1, .factor = 1, .cap_ms = 1, .max_attempts = 1}};

Test(runtime, effect_errors_fail_the_handler)
{
    char *dir = fx_tmpdir("rt");
    runtime_t *rt = fx_runtime(dir, true);
    runtime_register(rt, &misuse);
    cr_assert_eq(runtime_register(rt, &misuse), FENTA_EEXIST);
    cr_assert_eq(runtime_register(rt, &(behaviour_t){.kind = "x"}), FENTA_EINVAL);
    cr_assert_eq(runtime_start(rt), 0);
    runtime_spawn(rt, "misuse/1", NULL, NULL, 0);
    runtime_send(rt, "misuse/1", "x", NULL, NULL, 0);
    cr_assert_eq(runtime_quiesce(rt, 0, 5000), 0);
    cr_assert_eq(dlq_count(rt), 1);
    runtime_destroy(&rt);
    fx_rmdir(dir);
}

/* What the runtime did shows up in the metrics registry, per kind. */
Test(runtime, metrics_count_per_kind)
{
    char *dir = fx_tmpdir("rt");
    runtime_t *rt = fx_runtime(dir, true);
    runtime_register(rt, &counter);
    runtime_register(rt, &sloppy);
    cr_assert_eq(runtime_start(rt), 0);
    runtime_spawn(rt, "counter/m", NULL, NULL, 0);
    runtime_spawn(rt, "sloppy/m", NULL, NULL, 0);
    for (int i = 0; i < 7; i++)
        runtime_send(rt, "counter/m", "inc", NULL, NULL, 0);
    runtime_send(rt, "sloppy/m", "go", NULL, NULL, 0);
    cr_assert_eq(runtime_quiesce(rt, 1000, 5000), 0);
    char *text = metrics_render();
    cr_assert_not_null(text);
    cr_assert_not_null(strstr(text, "fenta_messages_processed_total{kind=\"counter\"} 7\n"), "%s",
                       text);
    cr_assert_not_null(strstr(text, "fenta_messages_failed_total{kind=\"sloppy\"} 1\n"));
    cr_assert_not_null(strstr(text, "fenta_messages_dead_lettered_total{kind=\"sloppy\"} 1\n"));
    cr_assert_not_null(strstr(text, "fenta_mailbox_pending 0\n"));
    cr_assert_not_null(strstr(text, "fenta_handler_seconds_count{kind=\"counter\"} 7\n"));
    free(text);
    runtime_destroy(&rt);
    fx_rmdir(dir);
}
