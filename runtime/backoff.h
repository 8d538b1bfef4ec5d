/* backoff.h - retry policy: exponential backoff with full jitter.
 *
 * delay(attempt) = uniform(0, min(cap, base * factor^attempt)) ms, the "full
 * jitter" of the AWS architecture blog: retries of many failed messages spread
 * out instead of arriving together. */
#ifndef FENTA_BACKOFF_H
#define FENTA_BACKOFF_H
#include <stdint.h>

typedef struct {
    int64_t base_ms;       /* ceiling of the first retry's delay */
    double factor;         /* growth of the ceiling per attempt (>= 1) */
    int64_t cap_ms;        /* largest ceiling */
    uint32_t max_attempts; /* deliveries before the message is dead-lettered (>= 1) */
} backoff_policy_t;

/* The runtime's default: 100 ms, x2, 60 s cap, 5 attempts. */
extern const backoff_policy_t BACKOFF_DEFAULT;

/* Ceiling for a retry after `attempt` failed deliveries (attempt >= 1). */
int64_t backoff_ceiling_ms(const backoff_policy_t *p, uint32_t attempt);
/* A delay in [0, ceiling]; r is a uniform random 64-bit value (callers pass
 * their own so tests can pin it). */
int64_t backoff_delay_ms(const backoff_policy_t *p, uint32_t attempt, uint64_t r);
/* A random 64-bit value for backoff_delay_ms (thread-safe, not for secrets). */
uint64_t backoff_random(void);

#endif
