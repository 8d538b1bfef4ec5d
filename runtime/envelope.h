/* envelope.h - the msgpack envelope every actor message travels in.
 *
 * Wire form: a msgpack map with short string keys
 *   "id"  bin(16)   sortable unique message id (runtime/id.h)
 *   "to"  str       destination address "kind/id"
 *   "fr"  str       sender address ("" from outside the runtime)
 *   "ty"  str       message type
 *   "co"  str       correlation id (the job id), may be ""
 *   "at"  uint      attempt, 0 for the first delivery
 *   "nb"  int       not-before, Unix ms (0 = now)
 *   "bd"  bin       body: opaque bytes (msgpack by convention)
 *   "er"  array     history of failed attempts: [ [attempt, at_ms, "error"], ... ]
 * Unknown keys are skipped so newer senders can add fields. A buffer that
 * does not decode yields FENTA_EDECODE and a reason; it never crashes. */
#ifndef FENTA_ENVELOPE_H
#define FENTA_ENVELOPE_H
#include "runtime/id.h"
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_ADDR_MAX 255 /* longest address accepted, bytes */

typedef struct {
    uint32_t attempt; /* which attempt failed */
    int64_t at_ms;    /* when, Unix ms */
    char *error;      /* what the handler said (owned) */
} envelope_error_t;

typedef struct {
    fenta_id_t id;             /* unique, sortable */
    char *to;                  /* destination address (owned, never NULL) */
    char *from;                /* sender address (owned, "" when none) */
    char *type;                /* message type (owned, never NULL) */
    char *corr;                /* correlation id (owned, "" when none) */
    uint32_t attempt;          /* 0 on first delivery */
    int64_t not_before_ms;     /* deliver no earlier than this; 0 = now */
    uint8_t *body;             /* opaque body (owned, may be NULL when body_len 0) */
    size_t body_len;           /* bytes in body */
    envelope_error_t *history; /* failed attempts, oldest first (owned) */
    size_t history_len;        /* entries in history */
    size_t history_cap;        /* room in history (vec_reserve); 0 = as many as history_len */
} envelope_t;

/* A new envelope with a fresh id; strings and body are copied. from/corr may
 * be NULL (stored as ""). NULL on allocation failure or when to/type is NULL
 * or longer than ENVELOPE_ADDR_MAX (from too: decode refuses longer ones). */
envelope_t *envelope_new(const char *to, const char *from, const char *type, const char *corr,
                         const void *body, size_t body_len);
/* Deep copy; NULL on allocation failure. */
envelope_t *envelope_dup(const envelope_t *self);
/* Frees and NULLs *self_p; accepts NULL. */
void envelope_destroy(envelope_t **self_p);

/* Append one failure to the history (error copied, truncated to 1 KiB). */
int envelope_add_error(envelope_t *self, uint32_t attempt, int64_t at_ms, const char *error);

/* Encode into a malloc'd buffer the caller frees. FENTA_EINVAL for an
 * envelope decode would refuse (to/type NULL, an address past
 * ENVELOPE_ADDR_MAX, an error text past 1 KiB), FENTA_ETOOBIG for a body of
 * 4 GiB or more, FENTA_ENOMEM. */
int envelope_encode(const envelope_t *self, uint8_t **out, size_t *out_len);
/* Decode; on success *out is the caller's. On FENTA_EDECODE, if reason is not
 * NULL it points to a static string saying what was wrong. Also refused: a
 * duplicate or non-string key, a string holding a NUL byte, trailing bytes.
 * FENTA_ENOMEM if allocation fails. */
int envelope_decode(const void *buf, size_t len, envelope_t **out, const char **reason);
/* Decode only the destination address without allocating the whole envelope:
 * copies "to" into buf (size cap); FENTA_EDECODE if absent or malformed,
 * FENTA_ETOOBIG if it does not fit in cap (ENVELOPE_ADDR_MAX + 1 always does).
 * It reads no further than "to", so a buffer it accepts may still fail
 * envelope_decode. */
int envelope_peek_to(const void *buf, size_t len, char *to, size_t cap);

#endif
