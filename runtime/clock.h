/* clock.h - wall and monotonic time, with a fake clock for tests.
 *
 * Nothing outside clock.c calls clock_gettime, time() or gettimeofday to
 * decide what to do: timers, schedule due times, misfire grace, backoff,
 * webhook retry times, job timestamps and presigned URL expiry read time
 * through here so tests can move it. The few direct reads left elsewhere
 * (log and metric timestamps, h2o's request timestamps, file mtimes) say
 * why in a comment.
 *
 * Two ways to move the wall clock:
 *  - in-process unit tests: clock_fake_set/advance/clear, a fixed clock;
 *  - the real binary under integration tests: clock_test_skew_file, a file
 *    holding milliseconds that the real clock is pushed ahead by, read
 *    again every few milliseconds (the test writes it, the server and the
 *    test both read it, and it survives a restart of the server). Compiled
 *    in only with -DFENTA_TEST_HOOKS=ON (ops/test turns it on); the skew
 *    only ever moves the clock forward. */
#ifndef FENTA_CLOCK_H
#define FENTA_CLOCK_H
#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (fake when a fake clock is set, pushed
 * ahead by the test skew when one is installed). */
int64_t clock_now_ms(void);
/* Microseconds since an arbitrary start, monotonic; never faked (latency). */
int64_t clock_mono_us(void);
/* An absolute CLOCK_REALTIME deadline wait_ms from now into *ts, for
 * pthread_cond_timedwait and pthread_mutex_timedlock (whose clock that is).
 * Real time, never faked: a thread waiting for a fake time waits with a
 * bounded sleep and reads clock_now_ms again. */
void clock_deadline(int64_t wait_ms, struct timespec *ts);
/* Install a fake wall clock starting at ms; clock_now_ms returns it until cleared. */
void clock_fake_set(int64_t ms);
/* Move the fake wall clock forward by delta ms. */
void clock_fake_advance(int64_t delta_ms);
/* Back to the real clock. */
void clock_fake_clear(void);

/* Tests of the real binary: from now on clock_now_ms is the real clock plus
 * the milliseconds written (decimal) in the file at path, re-read at most
 * every CLOCK_SKEW_POLL_MS; a missing or unreadable file is a skew of 0 and
 * a smaller number than one already seen is ignored (time never goes
 * back). path is copied. 0, or FENTA_EUNAVAILABLE in a build without
 * FENTA_TEST_HOOKS (nothing installed), FENTA_EINVAL for an empty path. */
int clock_test_skew_file(const char *path);
/* The current skew (0 without one). */
int64_t clock_test_skew_ms(void);
#define CLOCK_SKEW_POLL_MS 10

#endif
