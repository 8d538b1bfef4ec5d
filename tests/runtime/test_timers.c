/* test_timers.c - delayed messages and retry backoff: actor_send_after and
 * runtime_send_at deliver no earlier than due (with a fake clock the timer
 * thread only fires what the fake time says is due), timers survive a
 * restart, a timer that fell due while the node was down fires at start,
 * due order is kept, and backoff ceilings and delays stay in their bounds. */
#include "runtime/backoff.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1700000000000LL /* fake clock start, Unix ms */
#define MAXTICKS 16

static _Atomic int ticks;                    /* messages the sink handled */
static _Atomic int64_t tags[MAXTICKS];       /* their bodies (int64), in handling order */
static _Atomic int64_t handled_at[MAXTICKS]; /* clock_now_ms() when each was handled */
static _Atomic int64_t armed_at;             /* clock_now_ms() when "arm" set its timer */

/* sink: records each message's int64 body and when it arrived. */
static int sink_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    (void)ctx;
    int i = atomic_fetch_add(&ticks, 1);
    int64_t tag = -1;
    if (m->body_len == sizeof tag)
        memcpy(&tag, m->body, sizeof tag);
    if (i < MAXTICKS) {
        atomic_store(&tags[i], tag);
        atomic_store(&handled_at[i], clock_now_ms());
    }
    return 0;
}

/* arm: body = int64 delay; sends that body to sink/a after that delay. */
static int arm_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    int64_t delay = 0;
    if (m->body_len != sizeof delay)
        return actor_fail(ctx, "arm needs an int64 delay");
    memcpy(&delay, m->body, sizeof delay);
    atomic_store(&armed_at, clock_now_ms());
    return actor_send_after(ctx, "sink/a", "tick", &delay, sizeof delay, delay);
}

static const behaviour_t sink = {.kind = "sink", .on_message = sink_msg};
static const behaviour_t arm = {.kind = "arm", .on_message = arm_msg};

static char *dir;
static runtime_t *rt;

static runtime_t *open_rt(bool no_sync)
{
    runtime_t *r = fx_runtime(dir, no_sync);
    cr_assert_eq(runtime_register(r, &sink), 0);
    cr_assert_eq(runtime_register(r, &arm), 0);
    cr_assert_eq(runtime_start(r), 0);
    return r;
}

static void setup(void)
{
    atomic_store(&ticks, 0);
    atomic_store(&armed_at, 0);
    for (int i = 0; i < MAXTICKS; i++) {
        atomic_store(&tags[i], -1);
        atomic_store(&handled_at[i], 0);
    }
    dir = fx_tmpdir("timers");
}

static void teardown(void)
{
    runtime_destroy(&rt);
    fx_rmdir(dir);
    dir = NULL;
    clock_fake_clear();
}

TestSuite(timers, .init = setup, .fini = teardown);

static void spawn_both(void)
{
    cr_assert_eq(runtime_spawn(rt, "sink/a", NULL, NULL, 0), 0);
    cr_assert_eq(runtime_spawn(rt, "arm/a", NULL, NULL, 0), 0);
}

static void arm_after(int64_t delay_ms)
{
    cr_assert_eq(runtime_send(rt, "arm/a", "arm", NULL, &delay_ms, sizeof delay_ms), 0);
}

static void send_at(int64_t tag, int64_t due_ms)
{
    cr_assert_eq(runtime_send_at(rt, "sink/a", "tick", NULL, &tag, sizeof tag, due_ms), 0);
}

/* Handlers done and nothing due now (timers further out may wait). */
static void settle(void)
{
    cr_assert_eq(runtime_quiesce(rt, 0, 5000), 0, "runtime did not settle");
}

static bool ticks_reach(void *arg)
{
    return atomic_load(&ticks) >= *(int *)arg;
}

static void wait_ticks(int n, int timeout_ms)
{
    cr_assert(fx_wait(ticks_reach, &n, timeout_ms), "%d of %d delivered", atomic_load(&ticks), n);
    cr_assert_eq(atomic_load(&ticks), n, "no more than expected");
}

/* Several passes of the timer thread (it re-checks at least every 100 ms)
 * must leave a timer that is not due alone. */
static void assert_not_fired(const char *when)
{
    usleep(300000);
    cr_assert_eq(atomic_load(&ticks), 0, "fired early: %s", when);
}

static uint64_t timers_now(void)
{
    runtime_stats_t st;
    runtime_stats(rt, &st);
    return st.timers;
}

Test(timers, send_after_waits_for_the_fake_clock)
{
    clock_fake_set(T0);
    rt = open_rt(true);
    spawn_both();
    arm_after(60000);
    settle();
    cr_assert_eq(timers_now(), 1, "the timer is stored, not delivered");
    assert_not_fired("no fake time passed");
    clock_fake_advance(59999);
    assert_not_fired("1 ms before due");
    clock_fake_advance(1);
    wait_ticks(1, 2000);
    cr_assert_eq(atomic_load(&tags[0]), 60000);
    cr_assert_geq(atomic_load(&handled_at[0]), T0 + 60000, "delivered no earlier than due");
    settle();
    cr_assert_eq(timers_now(), 0);
}

Test(timers, send_at_waits_for_the_fake_clock)
{
    clock_fake_set(T0);
    rt = open_rt(true);
    spawn_both();
    send_at(1, T0 + 60000);
    cr_assert_eq(timers_now(), 1);
    assert_not_fired("no fake time passed");
    clock_fake_advance(30000);
    assert_not_fired("half way");
    clock_fake_advance(30000);
    wait_ticks(1, 2000);
    cr_assert_geq(atomic_load(&handled_at[0]), T0 + 60000);

    /* Already due (now or in the past): delivered at once, no timer. */
    int64_t now = clock_now_ms();
    send_at(2, now);
    send_at(3, now - 5000);
    wait_ticks(3, 2000);
    cr_assert_eq(timers_now(), 0);
}

Test(timers, send_after_on_the_real_clock_is_not_early)
{
    rt = open_rt(true);
    spawn_both();
    arm_after(150);
    wait_ticks(1, 2000);
    int64_t armed = atomic_load(&armed_at);
    cr_assert_gt(armed, 0);
    cr_assert_geq(atomic_load(&handled_at[0]) - armed, 150, "delivered %ld ms after arming",
                  (long)(atomic_load(&handled_at[0]) - armed));
}

Test(timers, timers_survive_a_restart)
{
    clock_fake_set(T0);
    rt = open_rt(false); /* durability is the point: keep fsync */
    spawn_both();
    arm_after(30000);
    send_at(7, T0 + 30000);
    settle();
    cr_assert_eq(timers_now(), 2);
    cr_assert_eq(runtime_stop(rt, 5000), 0);
    runtime_destroy(&rt);
    cr_assert_eq(atomic_load(&ticks), 0);

    rt = open_rt(false);
    cr_assert_eq(timers_now(), 2, "both timers found in the store");
    assert_not_fired("after restart, before due");
    clock_fake_advance(30000);
    wait_ticks(2, 2000);
    int64_t a = atomic_load(&tags[0]), b = atomic_load(&tags[1]);
    cr_assert((a == 30000 && b == 7) || (a == 7 && b == 30000), "tags %ld %ld", (long)a, (long)b);
}

Test(timers, a_timer_due_while_stopped_fires_at_start)
{
    clock_fake_set(T0);
    rt = open_rt(false);
    spawn_both();
    send_at(1, T0 + 5000);
    cr_assert_eq(runtime_stop(rt, 5000), 0);
    runtime_destroy(&rt);

    clock_fake_advance(10000); /* it fell due while the node was down */
    rt = open_rt(false);
    wait_ticks(1, 1000);
    cr_assert_eq(atomic_load(&tags[0]), 1);
    settle();
    cr_assert_eq(timers_now(), 0);
}

Test(timers, timers_fire_in_due_order)
{
    clock_fake_set(T0);
    rt = open_rt(true);
    spawn_both();
    /* Sent out of due order; two share a due time (then send order holds). */
    send_at(300, T0 + 300);
    send_at(100, T0 + 100);
    send_at(200, T0 + 200);
    send_at(101, T0 + 100);
    assert_not_fired("nothing due yet");

    clock_fake_advance(150);
    wait_ticks(2, 2000);
    cr_assert_eq(atomic_load(&tags[0]), 100);
    cr_assert_eq(atomic_load(&tags[1]), 101);

    clock_fake_advance(1000); /* both remaining fall due in the same pass */
    wait_ticks(4, 2000);
    cr_assert_eq(atomic_load(&tags[2]), 200);
    cr_assert_eq(atomic_load(&tags[3]), 300);
}

Test(timers, backoff_ceiling_grows_by_factor_and_caps)
{
    backoff_policy_t p = {.base_ms = 100, .factor = 2, .cap_ms = 1000, .max_attempts = 5};
    cr_assert_eq(backoff_ceiling_ms(&p, 1), 100, "the first retry's ceiling is the base");
    cr_assert_eq(backoff_ceiling_ms(&p, 2), 200);
    cr_assert_eq(backoff_ceiling_ms(&p, 3), 400);
    cr_assert_eq(backoff_ceiling_ms(&p, 4), 800);
    cr_assert_eq(backoff_ceiling_ms(&p, 5), 1000, "capped");
    cr_assert_eq(backoff_ceiling_ms(&p, 6), 1000);
    cr_assert_eq(backoff_ceiling_ms(&p, 1000), 1000);
    cr_assert_eq(backoff_ceiling_ms(&p, UINT32_MAX), 1000, "no overflow for huge attempts");
    for (uint32_t a = 1; a < 64; a++)
        cr_assert_leq(backoff_ceiling_ms(&p, a), backoff_ceiling_ms(&p, a + 1), "monotonic");

    p.factor = 3;
    cr_assert_eq(backoff_ceiling_ms(&p, 2), 300);
    cr_assert_eq(backoff_ceiling_ms(&p, 3), 900);
    cr_assert_eq(backoff_ceiling_ms(&p, 4), 1000);

    cr_assert_eq(backoff_ceiling_ms(&BACKOFF_DEFAULT, 1), 100);
    cr_assert_eq(backoff_ceiling_ms(&BACKOFF_DEFAULT, 10), 51200);
    cr_assert_eq(backoff_ceiling_ms(&BACKOFF_DEFAULT, 11), 60000);
    cr_assert_eq(BACKOFF_DEFAULT.max_attempts, 5);
}

Test(timers, backoff_factor_one_keeps_the_base)
{
    backoff_policy_t p = {.base_ms = 250, .factor = 1, .cap_ms = 1000, .max_attempts = 3};
    for (uint32_t a = 1; a <= 50; a++)
        cr_assert_eq(backoff_ceiling_ms(&p, a), 250, "attempt %u", a);
    for (int i = 0; i < 1000; i++)
        cr_assert_leq(backoff_delay_ms(&p, 7, backoff_random()), 250);
}

Test(timers, backoff_delay_is_full_jitter_within_the_ceiling)
{
    backoff_policy_t p = {.base_ms = 100, .factor = 2, .cap_ms = 5000, .max_attempts = 9};
    for (uint32_t a = 1; a <= 8; a++) {
        int64_t ceil = backoff_ceiling_ms(&p, a), lo = INT64_MAX, hi = -1;
        for (int i = 0; i < 20000; i++) {
            int64_t d = backoff_delay_ms(&p, a, backoff_random());
            cr_assert(d >= 0 && d <= ceil, "attempt %u: %ld outside [0, %ld]", a, (long)d,
                      (long)ceil);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* Full jitter spreads over the whole range, not just near the ceiling. */
        cr_assert_leq(lo, ceil / 10, "attempt %u: smallest %ld", a, (long)lo);
        cr_assert_geq(hi, ceil - ceil / 10, "attempt %u: largest %ld", a, (long)hi);
    }
    /* Pinned random values: r mod (ceiling + 1). */
    cr_assert_eq(backoff_delay_ms(&p, 1, 0), 0);
    cr_assert_eq(backoff_delay_ms(&p, 1, 100), 100);
    cr_assert_eq(backoff_delay_ms(&p, 1, 101), 0);
    cr_assert_leq(backoff_delay_ms(&p, 30, UINT64_MAX), 5000);
    cr_assert_neq(backoff_random(), backoff_random(), "fresh values");
}

#ifdef FENTA_TEST_HOOKS
/* The real binary's test clock (a skew file, as `fenta serve` reads it under
 * integration tests): a timer due in 60 s fires right after the clock jumps
 * 60 s ahead, without a poke; the timer thread's bounded sleep notices. */
Test(timers, a_timer_fires_right_after_the_test_skew_jumps_past_it)
{
    char path[512];
    snprintf(path, sizeof path, "%s/skew", dir);
    cr_assert_eq(clock_test_skew_file(path), 0);
    rt = open_rt(true);
    spawn_both();
    arm_after(60000);
    settle();
    assert_not_fired("the clock has not moved");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "60000\n");
    cr_assert_eq(fclose(f), 0);
    int64_t t0 = clock_mono_us();
    wait_ticks(1, 2000);
    int64_t took_ms = (clock_mono_us() - t0) / 1000;
    cr_assert_lt(took_ms, 1000, "fired %lld ms after the jump", (long long)took_ms);
    cr_assert_geq(atomic_load(&handled_at[0]) - atomic_load(&armed_at), 60000,
                  "not before its (skewed) due time");
}
#endif
