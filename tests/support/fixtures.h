/* fixtures.h - shared test fixtures: temporary directories, a runtime with
 * test-friendly options, and polling helpers. */
#ifndef FENTA_TEST_FIXTURES_H
#define FENTA_TEST_FIXTURES_H
#include "runtime/runtime.h"
#include <stdbool.h>
#include <stdint.h>

/* A new empty directory under $TMPDIR (or /tmp); the caller frees the string. */
char *fx_tmpdir(const char *tag);
/* rm -rf dir (only below the temp root), then free(dir). */
void fx_rmdir(char *dir);
/* Fixtures made once by the Criterion runner before any test process
 * starts (in ReportHook(PRE_ALL)) and found by the tests through the
 * environment variable env, which they inherit. make creates the directory
 * (exits on failure), exports it and returns it; remove, called from
 * ReportHook(POST_ALL), deletes it in the process that made it only; path
 * gives NAME inside it (asserts it was made; a buffer reused every 8 calls). */
const char *fx_shared_dir_make(const char *env, const char *tag);
void fx_shared_dir_remove(void);
const char *fx_shared_path(const char *env, const char *name);
/* Runs `cd DIR && COMMAND` through the shell, COMMAND printf-style;
 * returns system()'s status. */
int fx_sh(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A runtime on dir with small dispatchers (default 2, io 2, render 1); fsync
 * stays on unless no_sync. Not started. Asserts success. */
runtime_t *fx_runtime(const char *dir, bool no_sync);
/* Polls cond(arg) every ms until it is true or timeout_ms passes. */
bool fx_wait(bool (*cond)(void *arg), void *arg, int timeout_ms);
/* "2026-03-29T01:00:00Z" (the Z optional) -> seconds since the epoch,
 * through glibc's timegm, so time tests do not check a module with its own
 * arithmetic; asserts the text is well formed. */
int64_t fx_utc(const char *iso);
/* Waits (up to 20 s) until rt's handlers are done, its mailboxes empty and
 * no timer is due at the fake clock's now: what a test on the fake clock
 * does after moving it, instead of sleeping. Asserts it settles. */
void fx_settle(runtime_t *rt);
/* After fx_settle: in how many ms of the (fake) clock rt's earliest timer is
 * due, at most max_ms; -1 when none is due that soon. Found by asking
 * runtime_quiesce whether a timer is due within h (it cannot settle while
 * one is, for nothing moves the fake clock to it), halving h: no sleep
 * waits for the timer and nothing of the runtime's is opened. */
int64_t fx_next_due_ms(runtime_t *rt, int64_t max_ms);
/* Inside a handler: adds one to the actor's 8-byte counter state (the
 * state fx_counter reads); returns actor_set_state's result. */
int fx_count(actor_ctx_t *ctx);
/* The 8-byte counter state of addr (0 when absent or empty). */
uint64_t fx_counter(runtime_t *rt, const char *addr);

#endif
