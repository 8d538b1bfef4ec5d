/* test_commit.c - the committer's contract with the runtime's own code: an
 * effect op of no known kind is a runtime bug that ends the process, never a
 * write error the committer retries forever (which stalled every commit of
 * the node). The ops are forged here, so this suite includes
 * runtime_internal.h, which no other file outside runtime/ does. */
#include "runtime/runtime_internal.h"
#include "runtime/store.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>

#define NO_SUCH_KIND ((op_kind_t)0x7f)

/* The op is refused where it is made: on a dispatcher that is the handler's
 * thread, so the crash journal names the message that produced it. */
Test(commit, unknown_op_kind_aborts_where_it_is_made, .signal = SIGABRT, .timeout = 20)
{
    batch_t *b = runtime__batch_new();
    cr_assert_not_null(b);
    runtime__batch_op(b, NO_SUCH_KIND, STORE_MBOX, "k", 1, "v", 1);
    runtime__batch_free(b);
}

/* An op whose kind went bad after it was made (nothing else can reach the
 * committer) stops the process instead of failing every retry of its group:
 * before, runtime__commit_wait never returned and no later commit happened. */
Test(commit, unknown_op_kind_aborts_the_committer, .signal = SIGABRT, .timeout = 20)
{
    char *dir = fx_tmpdir("commit");
    runtime_t *rt = fx_runtime(dir, true);
    cr_assert_eq(runtime_start(rt), 0);
    batch_t *b = runtime__batch_new();
    cr_assert_not_null(b);
    cr_assert_eq(runtime__batch_op(b, OP_PUT, STORE_MBOX, "k", 1, "v", 1), 0);
    b->ops[0].kind = (uint8_t)NO_SUCH_KIND;
    runtime__commit_wait(rt, runtime__commit_submit(rt, b));
    cr_assert_fail("the committer took an op of no known kind");
}
