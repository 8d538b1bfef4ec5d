/* test_crash.c - crash consistency: a child process drives 10,000 messages
 * through 100 counter actors (each increments its counter and forwards the
 * message to the next actor while it has hops left) and is SIGKILLed at
 * random moments at least five times, restarted each time on the same data
 * directory. At the end every counter must equal exactly the number of
 * messages that visited it, and mailboxes, timers and the dead-letter queue
 * must be empty: nothing lost, nothing applied twice. fsync is on. */
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "runtime/store.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NCOUNTERS 100
#define NMSGS 10000
#define PER_TICK 40

/* Message j starts at counter j % 100 and makes (j % 7) + 1 hops. */
typedef struct {
    uint32_t j;
    uint32_t hops_left;
    uint32_t at;
} hop_t;

typedef struct {
    uint32_t started; /* the counters were spawned and the tick chain runs */
    uint32_t sent;    /* messages injected so far */
} driver_t;

static int counter_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    int rc = fx_count(ctx);
    hop_t h;
    if (m->body_len != sizeof h)
        return actor_fail(ctx, "bad hop body");
    memcpy(&h, m->body, sizeof h);
    if (!rc && h.hops_left > 1) {
        h.hops_left--;
        h.at = (h.at + 1) % NCOUNTERS;
        char to[32];
        snprintf(to, sizeof to, "counter/%u", h.at);
        rc = actor_send(ctx, to, "hop", &h, sizeof h);
    }
    return rc;
}

/* The driver injects messages from inside the runtime, so its progress and
 * its sends commit together: a crash can never inject a message twice. */
static int driver_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    size_t len;
    const void *s = actor_state(ctx, &len);
    driver_t d = {0, 0};
    if (len == sizeof d)
        memcpy(&d, s, sizeof d);
    int rc = 0;
    if (strcmp(m->type, "kick") == 0) {
        if (d.started)
            return 0; /* a restart's kick: the chain is already running */
        for (int i = 0; i < NCOUNTERS && !rc; i++) {
            char addr[32];
            snprintf(addr, sizeof addr, "counter/%d", i);
            rc = actor_spawn(ctx, addr, NULL, NULL, 0);
        }
        d.started = 1;
        if (!rc)
            rc = actor_send(ctx, actor_self(ctx), "tick", NULL, 0);
    } else {
        for (int k = 0; k < PER_TICK && d.sent < NMSGS && !rc; k++) {
            hop_t h = {d.sent, d.sent % 7 + 1, d.sent % NCOUNTERS};
            char to[32];
            snprintf(to, sizeof to, "counter/%u", h.at);
            rc = actor_send(ctx, to, "hop", &h, sizeof h);
            d.sent++;
        }
        if (!rc && d.sent < NMSGS)
            rc = actor_send(ctx, actor_self(ctx), "tick", NULL, 0);
    }
    return rc ? rc : actor_set_state(ctx, &d, sizeof d);
}

static const behaviour_t counter = {.kind = "counter", .on_message = counter_msg};
static const behaviour_t driver = {.kind = "driver", .on_message = driver_msg};

/* The child: start (or resume), kick, run until everything is done. */
static void child_main(const char *dir)
{
    runtime_t *rt = fx_runtime(dir, false);
    if (runtime_register(rt, &counter) || runtime_register(rt, &driver) || runtime_start(rt))
        _exit(3);
    int rc = runtime_spawn(rt, "driver/0", NULL, NULL, 0);
    if (rc && rc != FENTA_EEXIST)
        _exit(4);
    if (runtime_send(rt, "driver/0", "kick", NULL, NULL, 0))
        _exit(5);
    for (;;) {
        void *s = NULL;
        size_t len = 0;
        driver_t d = {0, 0};
        if (runtime_actor_state(rt, "driver/0", &s, &len) == 0 && len == sizeof d)
            memcpy(&d, s, sizeof d);
        free(s);
        if (d.sent == NMSGS && runtime_quiesce(rt, 60000, 1000) == 0)
            break;
        usleep(5000);
    }
    runtime_stop(rt, 5000);
    runtime_destroy(&rt);
    _exit(0);
}

typedef struct {
    size_t mbox, timers, dlq, outbox;
} counts_t;

static int count_fn(store_txn_t *txn, void *arg)
{
    counts_t *c = arg;
    c->mbox = store_count(txn, STORE_MBOX);
    c->timers = store_count(txn, STORE_TIMERS);
    c->dlq = store_count(txn, STORE_DLQ);
    c->outbox = store_count(txn, STORE_OUTBOX);
    return 0;
}

Test(crash, sigkill_loses_nothing_and_applies_nothing_twice, .timeout = 300)
{
    /* Calibrate: how long does an uninterrupted run take on this machine?
     * The kills then land at random moments inside a run, not after it. */
    char *dir = fx_tmpdir("crash");
    int64_t t0 = clock_mono_us();
    pid_t cal = fork();
    cr_assert_geq(cal, 0);
    if (cal == 0)
        child_main(dir);
    int status = 0;
    waitpid(cal, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "calibration run failed");
    int64_t span_us = clock_mono_us() - t0;
    fx_rmdir(dir);
    dir = fx_tmpdir("crash");

    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int kills = 0, runs = 0;
    for (;;) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
            child_main(dir);
        runs++;
        if (kills < 6) {
            /* A random moment in the first half of a run's span. */
            int64_t window = span_us / 2 > 2000 ? span_us / 2 : 2000;
            usleep((useconds_t)(1000 + rand() % window));
            if (waitpid(pid, &status, WNOHANG) == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                kills++;
                continue;
            }
        } else {
            waitpid(pid, &status, 0);
        }
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child run %d ended badly (status %d)", runs, status);
        if (kills >= 5)
            break;
        /* Finished before enough kills: start over, with kills sooner. */
        fx_rmdir(dir);
        dir = fx_tmpdir("crash");
        kills = 0;
        span_us /= 2;
        cr_assert_lt(runs, 200, "could not kill the child mid-run");
    }
    cr_assert_geq(kills, 5);

    uint64_t expected[NCOUNTERS] = {0};
    for (uint32_t j = 0; j < NMSGS; j++)
        for (uint32_t h = 0; h < j % 7 + 1; h++)
            expected[(j + h) % NCOUNTERS]++;
    runtime_t *rt = fx_runtime(dir, false);
    for (int i = 0; i < NCOUNTERS; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "counter/%d", i);
        cr_expect_eq(fx_counter(rt, addr), expected[i], "%s: %llu, expected %llu", addr,
                     (unsigned long long)fx_counter(rt, addr), (unsigned long long)expected[i]);
    }
    runtime_destroy(&rt);
    store_t *st = store_open(dir, NULL, NULL);
    cr_assert_not_null(st);
    counts_t c = {0};
    store_read(st, count_fn, &c);
    store_close(&st);
    cr_expect_eq(c.mbox, 0, "mailboxes empty");
    cr_expect_eq(c.timers, 0, "no timers left");
    cr_expect_eq(c.dlq, 0, "nothing dead-lettered");
    cr_expect_eq(c.outbox, 0, "outbox empty");
    cr_log_info("crash test: %d runs, %d SIGKILLs, run span %lld ms", runs, kills,
                (long long)(span_us / 1000));
    fx_rmdir(dir);
}
