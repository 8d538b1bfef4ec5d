/* signals.h - orderly shutdown on SIGTERM/SIGINT.
 *
 * A long-running command blocks the termination signals before it starts any
 * thread (so no runtime thread is interrupted by them), then waits for one
 * with signals_wait_term() and calls runtime_stop(): no new messages are
 * taken, running handlers finish up to a timeout, their effects commit, and
 * the process exits 0. SIGKILL needs no handling: nothing committed is lost
 * and nothing uncommitted was acknowledged. */
#ifndef FENTA_SIGNALS_H
#define FENTA_SIGNALS_H

/* Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread; threads created
 * after this inherit the mask. 0 or FENTA_EINVAL. */
int signals_block_term(void);
/* Waits for SIGTERM or SIGINT (blocked by signals_block_term); returns it. */
int signals_wait_term(void);

#endif
