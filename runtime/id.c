/* id.c - ULID-style ids: generation under one process-wide lock, and the
 * Crockford base32 text form.
 *
 * Monotonicity is per process, not per clock reading: the id's time is
 * max(now, last time used), so a clock stepping backwards (NTP, a test moving
 * the fake clock) never makes an id sort before an earlier one. Within one
 * millisecond the 80-bit part is a big-endian counter that starts at a random
 * value; if it would wrap, the id borrows the next millisecond instead. */
#include "runtime/id.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define ID_TIME_BYTES 6
#define ID_RAND_BYTES (ID_BYTES - ID_TIME_BYTES)
#define ID_TIME_MAX ((INT64_C(1) << 48) - 1)

static struct {
    pthread_mutex_t lock;       /* guards every field below */
    int64_t last_ms;            /* time part of the last id made; -1 before the first */
    uint8_t rnd[ID_RAND_BYTES]; /* 80-bit part of the last id made */
    bool reseed;                /* a fork happened: draw fresh randomness next time */
} gen = {.lock = PTHREAD_MUTEX_INITIALIZER, .last_ms = -1};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A child of fork() inherits last_ms and rnd; if parent and child both went on
 * counting from there in the same millisecond they would make the same ids.
 * Holding the lock across fork also keeps the child from inheriting it held. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&gen.lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&gen.lock);
}

static void atfork_child(void)
{
    gen.reseed = true;
    pthread_mutex_unlock(&gen.lock);
}

static void atfork_install(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Add one to the 80-bit big-endian counter; false when it wrapped to zero. */
static bool rnd_increment(uint8_t rnd[ID_RAND_BYTES])
{
    for (int i = ID_RAND_BYTES - 1; i >= 0; i--) {
        if (++rnd[i] != 0)
            return true;
    }
    return false;
}

/* Fresh randomness for a new millisecond. crypto_random only fails when the
 * system has no entropy source at all; counting on from the previous value
 * keeps ids unique and ordered within this process, which is the part of the
 * contract that a void id_new can still keep. */
static void rnd_fresh(uint8_t rnd[ID_RAND_BYTES])
{
    uint8_t fresh[ID_RAND_BYTES];
    if (crypto_random(fresh, sizeof fresh) == 0)
        memcpy(rnd, fresh, sizeof fresh);
    else
        rnd_increment(rnd);
}

void id_new(fenta_id_t *out)
{
    pthread_once(&atfork_once, atfork_install);

    int64_t now = clock_now_ms();
    if (now < 0)
        now = 0;
    if (now > ID_TIME_MAX)
        now = ID_TIME_MAX;

    pthread_mutex_lock(&gen.lock);
    if (now > gen.last_ms || gen.reseed) {
        if (now > gen.last_ms)
            gen.last_ms = now;
        rnd_fresh(gen.rnd);
        gen.reseed = false;
    } else if (!rnd_increment(gen.rnd)) {
        /* 2^80 ids in one millisecond cannot happen by counting, but a random
         * start near the top can wrap; borrowing the next millisecond keeps the
         * order. At the end of the 48-bit range there is nothing left to borrow. */
        if (gen.last_ms < ID_TIME_MAX)
            gen.last_ms++;
        rnd_fresh(gen.rnd);
    }
    uint64_t t = (uint64_t)gen.last_ms;
    for (int i = 0; i < ID_TIME_BYTES; i++)
        out->b[i] = (uint8_t)(t >> (8 * (ID_TIME_BYTES - 1 - i)));
    memcpy(out->b + ID_TIME_BYTES, gen.rnd, ID_RAND_BYTES);
    pthread_mutex_unlock(&gen.lock);
}

int64_t id_time_ms(const fenta_id_t *id)
{
    int64_t t = 0;
    for (int i = 0; i < ID_TIME_BYTES; i++)
        t = (t << 8) | id->b[i];
    return t;
}

int id_cmp(const fenta_id_t *a, const fenta_id_t *b)
{
    return memcmp(a->b, b->b, ID_BYTES);
}

/* Crockford's alphabet: digits and letters without I, L, O and U. */
static const char b32_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* 26 characters carry 130 bits; the text is the 128-bit number with two zero
 * bits in front, so the first character is at most '7'. */
void id_to_str(const fenta_id_t *id, char out[ID_STR_LEN + 1])
{
    /* Bit position, counted from the top of the 130-bit number, of each char. */
    for (int c = 0; c < ID_STR_LEN; c++) {
        unsigned v = 0;
        for (int k = 0; k < 5; k++) {
            int bit = c * 5 + k - 2; /* index into the 128 bits; <0 is padding */
            v <<= 1;
            if (bit >= 0)
                v |= (id->b[bit / 8] >> (7 - bit % 8)) & 1u;
        }
        out[c] = b32_alphabet[v];
    }
    out[ID_STR_LEN] = '\0';
}

/* Value of one character, or -1. Lower case is accepted; Crockford's
 * look-alikes (I, L -> 1, O -> 0) are not, so that one id has one spelling
 * that can be compared as text. */
static int b32_value(char ch)
{
    if (ch >= 'a' && ch <= 'z')
        ch = (char)(ch - 'a' + 'A');
    const char *p = ch ? strchr(b32_alphabet, ch) : NULL;
    return p ? (int)(p - b32_alphabet) : -1;
}

int id_from_str(const char *s, fenta_id_t *out)
{
    if (s == NULL || out == NULL)
        return FENTA_EINVAL;
    fenta_id_t id = {{0}};
    for (int c = 0; c < ID_STR_LEN; c++) {
        int v = b32_value(s[c]); /* stops at the NUL of a short string */
        if (v < 0)
            return FENTA_EINVAL;
        if (c == 0 && v > 7) /* would need more than 128 bits */
            return FENTA_EINVAL;
        for (int k = 0; k < 5; k++) {
            int bit = c * 5 + k - 2;
            if (bit >= 0 && ((unsigned)v >> (4 - k)) & 1u)
                id.b[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
        }
    }
    if (s[ID_STR_LEN] != '\0')
        return FENTA_EINVAL;
    *out = id;
    return 0;
}
