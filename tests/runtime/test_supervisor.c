/* test_supervisor.c - the supervision tree: which children each strategy
 * restarts, the intensity limit, escalation to the parent, root giving up
 * until an operator restarts it, and supervisor_add's errors.
 *
 * Restarts happen before a child's NEXT message, so every test sends
 * follow-up pings and counts on_start(ACTOR_RESTARTED) per worker. Failing
 * messages use max_attempts 1 (straight to the DLQ) so no retry adds a
 * failure or a restart of its own. The tests that count restarts against a
 * period freeze the fake clock so a slow machine cannot leave the window. */
#include "runtime/clock.h"
#include "runtime/dlq.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NW 8                      /* workers "w/0" .. "w/7" */
#define T0 1700000000000LL        /* fake clock start, Unix ms */
#define GATE_MAX_US (3 * 1000000) /* a gated handler never waits longer */

static _Atomic int starts[NW][3]; /* on_start calls per worker and actor_start_t */
static _Atomic int stops[NW];     /* on_stop calls per worker */
static _Atomic int entered;       /* gated handlers that started waiting */
static _Atomic int fail_gate;     /* "slowfail" proceeds once set */
static _Atomic int block_gate;    /* "block" proceeds once set */

/* The worker's index from its address; out-of-range addresses count in slot 0
 * (handlers run on dispatcher threads, where Criterion asserts do not belong). */
static int widx(const char *addr)
{
    const char *s = strchr(addr, '/');
    int i = s ? atoi(s + 1) : 0;
    return i >= 0 && i < NW ? i : 0;
}

static int w_start(actor_ctx_t *ctx, actor_start_t why)
{
    atomic_fetch_add(&starts[widx(actor_self(ctx))][why], 1);
    return 0;
}

static void w_stop(actor_ctx_t *ctx)
{
    atomic_fetch_add(&stops[widx(actor_self(ctx))], 1);
}

static void wait_gate(_Atomic int *gate)
{
    atomic_fetch_add(&entered, 1);
    int64_t end = clock_mono_us() + GATE_MAX_US;
    while (!atomic_load(gate) && clock_mono_us() < end)
        usleep(1000);
}

/* State: an 8-byte counter of messages handled (read with fx_counter). */
static int w_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    size_t len;
    const void *s = actor_state(ctx, &len);
    uint64_t n = 0;
    if (len == sizeof n)
        memcpy(&n, s, sizeof n);
    if (strcmp(m->type, "fail") == 0 || strcmp(m->type, "slowfail") == 0) {
        if (m->type[0] == 's')
            wait_gate(&fail_gate);
        uint64_t junk = 999; /* must not survive the failure */
        actor_set_state(ctx, &junk, sizeof junk);
        return actor_fail(ctx, "told to fail");
    }
    if (strcmp(m->type, "block") == 0)
        wait_gate(&block_gate);
    n++;
    return actor_set_state(ctx, &n, sizeof n);
}

static const behaviour_t worker = {
    .kind = "w",
    .on_start = w_start,
    .on_message = w_msg,
    .on_stop = w_stop,
    .retry = {.base_ms = 1, .factor = 1, .cap_ms = 1, .max_attempts = 1},
};

static char *dir;
static runtime_t *rt;

static void setup(void)
{
    memset(starts, 0, sizeof starts);
    memset(stops, 0, sizeof stops);
    atomic_store(&entered, 0);
    atomic_store(&fail_gate, 0);
    atomic_store(&block_gate, 0);
    dir = fx_tmpdir("sup");
    rt = fx_runtime(dir, true);
    cr_assert_eq(runtime_register(rt, &worker), 0);
    cr_assert_eq(runtime_start(rt), 0);
}

static void teardown(void)
{
    atomic_store(&fail_gate, 1);
    atomic_store(&block_gate, 1);
    runtime_destroy(&rt);
    fx_rmdir(dir);
    dir = NULL;
    clock_fake_clear();
}

TestSuite(supervisor, .init = setup, .fini = teardown);

static const char *waddr(int i)
{
    static const char *const names[NW] = {"w/0", "w/1", "w/2", "w/3", "w/4", "w/5", "w/6", "w/7"};
    return names[i];
}

static void spawn_w(int i, const char *sup)
{
    cr_assert_eq(runtime_spawn(rt, waddr(i), sup, NULL, 0), 0, "spawn %s", waddr(i));
}

static void tell(int i, const char *type)
{
    cr_assert_eq(runtime_send(rt, waddr(i), type, NULL, NULL, 0), 0, "send %s to %s", type,
                 waddr(i));
}

static void settle(void)
{
    cr_assert_eq(runtime_quiesce(rt, 0, 5000), 0, "runtime did not settle");
}

static void add_sup(const char *name, const char *parent, sup_strategy_t st, int intensity,
                    int64_t period_ms)
{
    supervisor_spec_t spec = {.name = name,
                              .parent = parent,
                              .strategy = st,
                              .intensity = intensity,
                              .period_ms = period_ms};
    cr_assert_eq(supervisor_add(rt, &spec), 0, "supervisor_add %s", name);
}

static supervisor_info_t info(const char *name)
{
    supervisor_info_t in;
    cr_assert_eq(supervisor_info(rt, name, &in), 0, "supervisor_info %s", name);
    return in;
}

static int restarted(int i)
{
    return atomic_load(&starts[i][ACTOR_RESTARTED]);
}

/* Mail sent to a stopped subtree stays: quiesce cannot finish while it waits. */
static void assert_mail_waits(uint64_t pending)
{
    cr_assert_eq(runtime_quiesce(rt, 0, 300), FENTA_ETIMEOUT, "mail was handled");
    runtime_stats_t st;
    runtime_stats(rt, &st);
    cr_assert_eq(st.pending, pending, "pending %lu, expected %lu", (unsigned long)st.pending,
                 (unsigned long)pending);
}

Test(supervisor, one_for_one_restarts_only_the_failed_child)
{
    add_sup("s", NULL, SUP_ONE_FOR_ONE, 10, 60000);
    for (int i = 0; i < 3; i++)
        spawn_w(i, "s");
    for (int i = 0; i < 3; i++)
        tell(i, "ping");
    settle();
    for (int i = 0; i < 3; i++)
        cr_assert_eq(atomic_load(&starts[i][ACTOR_SPAWNED]), 1, "w/%d started once", i);

    tell(1, "fail");
    settle();
    for (int i = 0; i < 3; i++)
        tell(i, "ping");
    settle();

    cr_assert_eq(restarted(1), 1, "the failed child restarted");
    cr_assert_eq(atomic_load(&stops[1]), 1, "on_stop ran before the restart");
    cr_assert_eq(restarted(0), 0, "w/0 untouched");
    cr_assert_eq(restarted(2), 0, "w/2 untouched");
    cr_assert_eq(atomic_load(&stops[0]) + atomic_load(&stops[2]), 0);
    cr_assert_eq(fx_counter(rt, "w/1"), 2, "state is the last committed one, not the failed one");
    cr_assert_eq(fx_counter(rt, "w/0"), 2);
    supervisor_info_t s = info("s");
    cr_assert_eq(s.restarts, 1);
    cr_assert_eq(s.escalations, 0);
    cr_assert(s.running);
    cr_assert_eq(dlq_count(rt), 1, "the failed message went straight to the DLQ");
}

Test(supervisor, one_for_all_restarts_every_started_sibling)
{
    add_sup("s", NULL, SUP_ONE_FOR_ALL, 10, 60000);
    for (int i = 0; i < 4; i++)
        spawn_w(i, "s");
    spawn_w(4, NULL); /* under root: not a sibling */
    for (int i = 0; i < 3; i++)
        tell(i, "ping");
    tell(4, "ping");
    settle(); /* w/3 has not started yet */

    tell(1, "fail");
    settle();
    for (int i = 0; i < 5; i++)
        tell(i, "ping");
    settle();

    for (int i = 0; i < 3; i++)
        cr_assert_eq(restarted(i), 1, "started sibling w/%d restarted", i);
    cr_assert_eq(restarted(3), 0, "a sibling that never started is not restarted");
    cr_assert_eq(atomic_load(&starts[3][ACTOR_SPAWNED]), 1, "it starts normally instead");
    cr_assert_eq(restarted(4), 0, "an actor under another supervisor is untouched");
    cr_assert_eq(info("s").restarts, 1, "one failure, one restart of the group");
    cr_assert_eq(info("root").restarts, 0);
}

Test(supervisor, rest_for_one_restarts_the_failed_and_later_children)
{
    add_sup("s", NULL, SUP_REST_FOR_ONE, 10, 60000);
    for (int i = 0; i < 4; i++)
        spawn_w(i, "s"); /* spawn order is w/0, w/1, w/2, w/3 */
    for (int i = 0; i < 4; i++)
        tell(i, "ping");
    settle();

    tell(1, "fail");
    settle();
    for (int i = 0; i < 4; i++)
        tell(i, "ping");
    settle();
    cr_assert_eq(restarted(0), 0, "spawned before the failed one: untouched");
    cr_assert_eq(restarted(1), 1, "the failed one");
    cr_assert_eq(restarted(2), 1, "spawned after it");
    cr_assert_eq(restarted(3), 1, "spawned after it");

    /* The last one failing restarts only itself. */
    tell(3, "fail");
    settle();
    for (int i = 0; i < 4; i++)
        tell(i, "ping");
    settle();
    cr_assert_eq(restarted(0), 0);
    cr_assert_eq(restarted(1), 1);
    cr_assert_eq(restarted(2), 1);
    cr_assert_eq(restarted(3), 2);
    cr_assert_eq(info("s").restarts, 2);
}

Test(supervisor, exceeding_intensity_escalates_and_the_parent_restarts_it)
{
    clock_fake_set(T0);
    add_sup("s", NULL, SUP_ONE_FOR_ONE, 2, 60000);
    spawn_w(0, "s");
    spawn_w(1, "s");
    tell(0, "ping");
    tell(1, "ping");
    settle();

    tell(0, "fail");
    tell(0, "fail");
    settle();
    supervisor_info_t s = info("s");
    cr_assert_eq(s.restarts, 2, "two restarts are within an intensity of 2");
    cr_assert_eq(s.escalations, 0);
    cr_assert(s.running);

    tell(0, "fail"); /* the third within the period: s gives up */
    settle();
    s = info("s");
    cr_assert_eq(s.escalations, 1, "s gave up once");
    cr_assert_eq(s.restarts, 2, "the restart over the limit is not s's own");
    cr_assert(s.running, "root restarted s as one of its children");
    cr_assert_eq(info("root").restarts, 1);
    cr_assert_eq(info("root").escalations, 0);

    tell(0, "ping");
    tell(1, "ping");
    settle();
    cr_assert_eq(fx_counter(rt, "w/0"), 2, "children take messages again");
    cr_assert_eq(fx_counter(rt, "w/1"), 2);
    /* w/0: before failures 2 and 3, then with the whole of s. */
    cr_assert_eq(restarted(0), 3);
    cr_assert_eq(restarted(1), 1, "restarting s restarts all its children");
}

Test(supervisor, restarts_older_than_the_period_do_not_count)
{
    clock_fake_set(T0);
    add_sup("s", NULL, SUP_ONE_FOR_ONE, 1, 1000);
    spawn_w(0, "s");
    tell(0, "ping");
    settle();
    for (int i = 0; i < 4; i++) {
        tell(0, "fail");
        settle();
        clock_fake_advance(1001);
    }
    supervisor_info_t s = info("s");
    cr_assert_eq(s.restarts, 4, "one restart per period is within an intensity of 1");
    cr_assert_eq(s.escalations, 0);

    tell(0, "fail");
    tell(0, "fail"); /* two within the same period */
    settle();
    cr_assert_eq(info("s").escalations, 1);
}

Test(supervisor, root_exceeding_intensity_stops_the_tree_until_restarted)
{
    clock_fake_set(T0);
    add_sup("s", NULL, SUP_ONE_FOR_ONE, 10, 60000);
    spawn_w(0, NULL);
    spawn_w(1, "s");
    tell(0, "ping");
    tell(1, "ping");
    settle();

    for (int i = 0; i < 11; i++) /* root allows 10 within its period */
        tell(0, "fail");
    settle();
    supervisor_info_t r = info("root");
    cr_assert_not(r.running, "root gave up");
    cr_assert_eq(r.escalations, 1);
    cr_assert_eq(r.restarts, 10);
    cr_assert_not(info("s").running, "a subtree of a stopped root is stopped");

    tell(0, "ping");
    tell(1, "ping");
    assert_mail_waits(2);
    cr_assert_eq(fx_counter(rt, "w/0"), 1);
    cr_assert_eq(fx_counter(rt, "w/1"), 1);

    cr_assert_eq(supervisor_restart(rt, "root"), 0);
    settle();
    cr_assert(info("root").running);
    cr_assert(info("s").running);
    cr_assert_eq(fx_counter(rt, "w/0"), 2, "pending mail handled after the operator's restart");
    cr_assert_eq(fx_counter(rt, "w/1"), 2);
    cr_assert_eq(restarted(0), 11, "10 restarts between failures, 1 by the operator");
    cr_assert_eq(restarted(1), 1, "the whole tree restarted");
}

Test(supervisor, child_supervisor_giving_up_is_restarted_by_its_parent)
{
    clock_fake_set(T0);
    add_sup("p", NULL, SUP_ONE_FOR_ONE, 10, 60000);
    add_sup("c", "p", SUP_ONE_FOR_ONE, 1, 60000);
    spawn_w(0, "c");
    spawn_w(1, "p");
    spawn_w(2, NULL);
    for (int i = 0; i < 3; i++)
        tell(i, "ping");
    settle();

    tell(0, "fail");
    tell(0, "fail");
    settle();
    supervisor_info_t c = info("c");
    cr_assert_str_eq(c.parent, "p");
    cr_assert_eq(c.escalations, 1, "c gave up");
    cr_assert(c.running, "p restarted it");
    supervisor_info_t p = info("p");
    cr_assert_eq(p.restarts, 1, "restarting c counts as a restart of p's");
    cr_assert_eq(p.escalations, 0);
    cr_assert(p.running);
    cr_assert_eq(info("root").restarts, 0, "the failure went no higher");

    for (int i = 0; i < 3; i++)
        tell(i, "ping");
    settle();
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fx_counter(rt, waddr(i)), 2, "w/%d took its message", i);
    cr_assert_eq(restarted(0), 2, "before the second failure, and with c");
    cr_assert_eq(restarted(1), 0, "p is one_for_one: its other child is untouched");
    cr_assert_eq(restarted(2), 0);
}

Test(supervisor, one_for_all_parent_restarts_siblings_of_a_child_supervisor)
{
    clock_fake_set(T0);
    add_sup("p", NULL, SUP_ONE_FOR_ALL, 10, 60000);
    add_sup("c", "p", SUP_ONE_FOR_ONE, 1, 60000);
    spawn_w(0, "c");
    spawn_w(1, "p");
    tell(0, "ping");
    tell(1, "ping");
    settle();
    tell(0, "fail");
    tell(0, "fail");
    settle();
    tell(0, "ping");
    tell(1, "ping");
    settle();
    cr_assert_eq(info("c").escalations, 1);
    cr_assert_eq(info("p").restarts, 1);
    cr_assert_eq(restarted(1), 1, "p's actor child restarted with c");
    cr_assert_eq(fx_counter(rt, "w/1"), 2);
}

Test(supervisor, escalation_reaching_root_stops_the_tree_until_restarted)
{
    clock_fake_set(T0);
    add_sup("c", NULL, SUP_ONE_FOR_ONE, 1, 60000);
    spawn_w(0, "c");
    spawn_w(1, NULL);
    tell(0, "ping");
    tell(1, "ping");
    settle();
    for (int i = 0; i < 10; i++) /* root's budget, spent by its own child */
        tell(1, "fail");
    settle();
    cr_assert(info("root").running);

    tell(0, "fail");
    tell(0, "fail"); /* c gives up; root restarting it would be its 11th */
    settle();
    supervisor_info_t r = info("root"), c = info("c");
    cr_assert_eq(c.escalations, 1);
    cr_assert_eq(r.escalations, 1, "the escalation made root give up");
    cr_assert_not(r.running);
    cr_assert_not(c.running, "root did not restart c");

    tell(0, "ping");
    tell(1, "ping");
    assert_mail_waits(2);

    cr_assert_eq(supervisor_restart(rt, "root"), 0);
    settle();
    cr_assert(info("root").running);
    cr_assert(info("c").running, "restarting root restarts its descendants");
    cr_assert_eq(fx_counter(rt, "w/0"), 2);
    cr_assert_eq(fx_counter(rt, "w/1"), 2);
}

static bool entered_at_least(void *arg)
{
    return atomic_load(&entered) >= *(int *)arg;
}

static bool root_stopped(void *arg)
{
    (void)arg;
    supervisor_info_t in;
    return supervisor_info(rt, "root", &in) == 0 && !in.running;
}

/* An actor already waiting in its dispatcher's run queue when its supervisor
 * gives up must not take that message either: "its children take no
 * messages". Two default threads: one held by w/1, one by w/0's failure.
 * (dispatcher_main checks the supervisor when it takes an actor off the run
 * queue, not only schedule() when it puts one on.) */
Test(supervisor, queued_child_takes_no_message_once_its_supervisor_gave_up)
{
    clock_fake_set(T0);
    for (int i = 0; i < 3; i++)
        spawn_w(i, NULL);
    for (int i = 0; i < 3; i++)
        tell(i, "ping");
    settle();
    for (int i = 0; i < 10; i++)
        tell(0, "fail");
    settle();

    tell(1, "block");
    tell(0, "slowfail");
    int two = 2;
    cr_assert(fx_wait(entered_at_least, &two, 2000), "both default threads are busy");
    tell(2, "ping"); /* waits in the run queue: no thread is free */
    atomic_store(&fail_gate, 1);
    cr_assert(fx_wait(root_stopped, NULL, 2000), "root gave up at the 11th failure");
    usleep(200000);
    cr_assert_eq(fx_counter(rt, "w/2"), 1, "w/2 handled mail after its supervisor gave up");
    atomic_store(&block_gate, 1);
    assert_mail_waits(1);
    cr_assert_eq(supervisor_restart(rt, "root"), 0);
    settle();
    cr_assert_eq(fx_counter(rt, "w/2"), 2);
}

static void collect_names(const supervisor_info_t *in, void *arg)
{
    char *out = arg;
    strcat(out, in->name);
    strcat(out, ",");
}

Test(supervisor, add_validates_and_reports_errors)
{
    cr_assert_eq(supervisor_add(rt, &(supervisor_spec_t){.name = "s"}), 0);
    cr_assert_eq(supervisor_add(rt, &(supervisor_spec_t){.name = "s"}), FENTA_EEXIST);
    cr_assert_eq(supervisor_add(rt, &(supervisor_spec_t){.name = "root"}), FENTA_EEXIST);
    cr_assert_eq(supervisor_add(rt, &(supervisor_spec_t){.name = "x", .parent = "nope"}),
                 FENTA_ENOTFOUND);
    supervisor_info_t in;
    cr_assert_eq(supervisor_info(rt, "x", &in), FENTA_ENOTFOUND, "a refused add leaves nothing");
    cr_assert_eq(supervisor_add(rt, &(supervisor_spec_t){.name = ""}), FENTA_EINVAL);
    cr_assert_eq(supervisor_add(rt, &(supervisor_spec_t){.name = NULL}), FENTA_EINVAL);
    cr_assert_eq(supervisor_add(rt, &(supervisor_spec_t){.name = "y", .strategy = 7}),
                 FENTA_EINVAL);
    char longname[80];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    cr_assert_eq(supervisor_add(rt, &(supervisor_spec_t){.name = longname}), FENTA_EINVAL);
    cr_assert_eq(supervisor_add(rt, NULL), FENTA_EINVAL);

    cr_assert_eq(
        supervisor_add(
            rt, &(supervisor_spec_t){.name = "x", .parent = "s", .strategy = SUP_REST_FOR_ONE}),
        0);
    in = info("x");
    cr_assert_str_eq(in.parent, "s");
    cr_assert_eq(in.strategy, SUP_REST_FOR_ONE);
    cr_assert_eq(in.intensity, 10, "default intensity");
    cr_assert_eq(in.period_ms, 5000, "default period");
    cr_assert(in.running);
    cr_assert_str_eq(info("root").parent, "");
    cr_assert_str_eq(info("s").parent, "root", "NULL parent means root");

    cr_assert_eq(supervisor_info(rt, "nope", &in), FENTA_ENOTFOUND);
    cr_assert_eq(supervisor_restart(rt, "nope"), FENTA_ENOTFOUND);
    char names[64] = "";
    supervisor_each(rt, collect_names, names);
    cr_assert_str_eq(names, "root,s,x,", "root first, then in declaration order");
    cr_assert_str_eq(supervisor_strategy_name(SUP_ONE_FOR_ONE), "one_for_one");
    cr_assert_str_eq(supervisor_strategy_name(SUP_ONE_FOR_ALL), "one_for_all");
    cr_assert_str_eq(supervisor_strategy_name(SUP_REST_FOR_ONE), "rest_for_one");
}
