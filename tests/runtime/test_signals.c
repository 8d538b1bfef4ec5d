/* test_signals.c - SIGTERM stops a runtime in order: the running handler
 * finishes and commits, nothing else starts, the process exits 0, and the
 * mail it did not handle is there for the next start. */
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "runtime/signals.h"
#include "runtime/store.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int ready_fd = -1;

/* Slow: tells the parent it started, then takes 300 ms. */
static int slow_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    (void)m;
    if (ready_fd >= 0 && write(ready_fd, "x", 1) != 1)
        return actor_fail(ctx, "pipe");
    usleep(300000);
    return fx_count(ctx);
}

static const behaviour_t slow = {.kind = "slow", .on_message = slow_msg};

static int mbox_fn(store_txn_t *txn, void *arg)
{
    *(size_t *)arg = store_count(txn, STORE_MBOX);
    return 0;
}

Test(signals, sigterm_finishes_running_handler_and_exits_zero)
{
    char *dir = fx_tmpdir("sig");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        ready_fd = fds[1];
        signals_block_term();
        static const dispatcher_spec_t one[] = {{"default", 1}};
        runtime_t *rt = runtime_new(
            &(runtime_opts_t){.data_dir = dir, .dispatchers = one, .ndispatchers = 1}, NULL);
        if (!rt || runtime_register(rt, &slow) || runtime_start(rt) ||
            runtime_spawn(rt, "slow/1", NULL, NULL, 0))
            _exit(3);
        for (int i = 0; i < 5; i++)
            if (runtime_send(rt, "slow/1", "x", NULL, NULL, 0))
                _exit(4);
        signals_wait_term();
        int rc = runtime_stop(rt, 5000);
        runtime_destroy(&rt);
        _exit(rc == 0 ? 0 : 5);
    }
    close(fds[1]);
    char c;
    cr_assert_eq(read(fds[0], &c, 1), 1, "the first handler started");
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status), "exited, not killed");
    cr_assert_eq(WEXITSTATUS(status), 0);
    close(fds[0]);

    store_t *st = store_open(dir, NULL, NULL);
    size_t pending = 0;
    store_read(st, mbox_fn, &pending);
    store_close(&st);
    cr_assert_eq(pending, 4, "the running message was committed, the other 4 wait");

    runtime_t *rt = fx_runtime(dir, false);
    runtime_register(rt, &slow);
    cr_assert_eq(runtime_start(rt), 0);
    cr_assert_eq(runtime_quiesce(rt, 0, 10000), 0);
    cr_assert_eq(fx_counter(rt, "slow/1"), 5, "every message handled exactly once");
    runtime_destroy(&rt);
    fx_rmdir(dir);
}
