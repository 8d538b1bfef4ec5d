/* clock.h - wall and monotonic time, with a fake clock for tests.
 *
 * The runtime never calls clock_gettime directly: timers, backoff and
 * supervision intensity read time through here so tests can move it. */
#ifndef FENTA_CLOCK_H
#define FENTA_CLOCK_H
#include <stdint.h>

/* Milliseconds since the Unix epoch (fake when a fake clock is set). */
int64_t clock_now_ms(void);
/* Microseconds since an arbitrary start, monotonic; never faked (latency). */
int64_t clock_mono_us(void);
/* Install a fake wall clock starting at ms; clock_now_ms returns it until cleared. */
void clock_fake_set(int64_t ms);
/* Move the fake wall clock forward by delta ms. */
void clock_fake_advance(int64_t delta_ms);
/* Back to the real clock. */
void clock_fake_clear(void);

#endif
