/* backoff.c - exponential backoff ceilings and full jitter. */
#include "runtime/clock.h"
#include "runtime/backoff.h"
#include <stdatomic.h>
#include <time.h>

const backoff_policy_t BACKOFF_DEFAULT = {
    .base_ms = 100, .factor = 2.0, .cap_ms = 60000, .max_attempts = 5};

int64_t backoff_ceiling_ms(const backoff_policy_t *p, uint32_t attempt)
{
    double c = (double)(p->base_ms > 0 ? p->base_ms : 1);
    double f = p->factor >= 1.0 ? p->factor : 1.0;
    /* Stop multiplying once past the cap: factor^attempt overflows for big attempts. */
    for (uint32_t i = 1; i < attempt && c < (double)p->cap_ms; i++)
        c *= f;
    if (p->cap_ms > 0 && c > (double)p->cap_ms)
        c = (double)p->cap_ms;
    return (int64_t)c;
}

int64_t backoff_delay_ms(const backoff_policy_t *p, uint32_t attempt, uint64_t r)
{
    int64_t ceil = backoff_ceiling_ms(p, attempt);
    return (int64_t)(r % (uint64_t)(ceil + 1));
}

uint64_t backoff_random(void)
{
    /* splitmix64 over an atomic counter seeded from the clock: cheap, lock-free. */
    static _Atomic uint64_t state;
    uint64_t s = atomic_load(&state);
    if (s == 0) {
        uint64_t us = (uint64_t)clock_mono_us();
        uint64_t seed = (us << 20) ^ us ^ 0x9e3779b97f4a7c15ull;
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&state, &zero, seed);
    }
    uint64_t z = atomic_fetch_add(&state, 0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
