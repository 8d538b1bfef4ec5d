/* clock.c - real and fake time. The fake clock and the test skew are atomics
 * so dispatcher and timer threads see a test's advance without locks. This
 * is the one file that reads the system's clocks. */
#include "runtime/clock.h"
#include "runtime/error.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int64_t fake_ms = -1;

#ifdef FENTA_TEST_HOOKS
static char skew_path[4096];                     /* set once, before threads start */
static _Atomic bool skew_on;                     /* skew_path is set */
static _Atomic int64_t skew_ms;                  /* the largest skew read so far */
static _Atomic int64_t skew_read_us = INT64_MIN; /* clock_mono_us of the last read; MIN: none */

/* Re-reads the skew file when the last read is older than the poll period.
 * One thread reads at a time (the compare-exchange elects it); the others
 * use the value read before, at most CLOCK_SKEW_POLL_MS old. */
static int64_t skew_now(void)
{
    if (!atomic_load(&skew_on))
        return 0;
    int64_t now = clock_mono_us(), last = atomic_load(&skew_read_us);
    if ((last == INT64_MIN || now - last >= CLOCK_SKEW_POLL_MS * 1000) &&
        atomic_compare_exchange_strong(&skew_read_us, &last, now)) {
        FILE *f = fopen(skew_path, "r");
        long long v = 0;
        if (f && fscanf(f, "%lld", &v) == 1) {
            /* Forward only: a torn or older file never moves time back. */
            int64_t cur = atomic_load(&skew_ms);
            while (v > cur && !atomic_compare_exchange_weak(&skew_ms, &cur, (int64_t)v))
                ;
        }
        if (f)
            fclose(f);
    }
    return atomic_load(&skew_ms);
}
#else
static int64_t skew_now(void)
{
    return 0;
}
#endif

int clock_test_skew_file(const char *path)
{
    if (!path || !*path)
        return FENTA_EINVAL;
#ifdef FENTA_TEST_HOOKS
    snprintf(skew_path, sizeof skew_path, "%s", path);
    atomic_store(&skew_read_us, INT64_MIN);
    atomic_store(&skew_on, true);
    (void)skew_now();
    return 0;
#else
    return FENTA_EUNAVAILABLE;
#endif
}

int64_t clock_test_skew_ms(void)
{
    return skew_now();
}

int64_t clock_now_ms(void)
{
    int64_t f = atomic_load(&fake_ms);
    if (f >= 0)
        return f;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + skew_now();
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void clock_deadline(int64_t wait_ms, struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
    if (wait_ms < 0)
        wait_ms = 0;
    ts->tv_sec += (time_t)(wait_ms / 1000);
    ts->tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void clock_fake_set(int64_t ms)
{
    atomic_store(&fake_ms, ms);
}

void clock_fake_advance(int64_t delta_ms)
{
    atomic_fetch_add(&fake_ms, delta_ms);
}

void clock_fake_clear(void)
{
    atomic_store(&fake_ms, -1);
}
