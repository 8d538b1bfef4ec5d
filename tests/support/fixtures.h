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
/* A runtime on dir with small dispatchers (default 2, io 2, render 1); fsync
 * stays on unless no_sync. Not started. Asserts success. */
runtime_t *fx_runtime(const char *dir, bool no_sync);
/* Polls cond(arg) every ms until it is true or timeout_ms passes. */
bool fx_wait(bool (*cond)(void *arg), void *arg, int timeout_ms);
/* Inside a handler: adds one to the actor's 8-byte counter state (the
 * state fx_counter reads); returns actor_set_state's result. */
int fx_count(actor_ctx_t *ctx);
/* The 8-byte counter state of addr (0 when absent or empty). */
uint64_t fx_counter(runtime_t *rt, const char *addr);

#endif
