/* clock.c - real and fake time. The fake clock is an atomic so dispatcher and
 * timer threads see a test's advance without locks. */
#include "runtime/clock.h"
#include <stdatomic.h>
#include <time.h>

static _Atomic int64_t fake_ms = -1;

int64_t clock_now_ms(void)
{
    int64_t f = atomic_load(&fake_ms);
    if (f >= 0)
        return f;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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
