/* dlq.h - the dead-letter queue: messages whose handler failed on every
 * attempt, messages that crashed the whole process too often (error
 * "crashed the process (SIGSEGV)", runtime/crashlog.h), and messages that
 * did not decode, kept with their last error and the history of attempts
 * (in the envelope) until an operator replays or drops them. Replay puts the
 * message back in its mailbox with its attempt count reset (the history
 * stays, so a second death shows both); a quarantined message's crash count
 * starts again from zero. */
#ifndef FENTA_DLQ_H
#define FENTA_DLQ_H
#include "runtime/envelope.h"
#include "runtime/runtime.h"
#include <stdbool.h>

typedef struct {
    fenta_id_t id;      /* the message id */
    envelope_t *env;    /* the message, NULL when it did not decode (owned) */
    uint8_t *raw;       /* the bytes as received when env is NULL (owned) */
    size_t raw_len;     /* bytes in raw */
    char *error;        /* why it died (owned) */
    int64_t dead_at_ms; /* when */
} dlq_entry_t;

typedef struct {
    const char *to_prefix; /* only messages to addresses starting with this (NULL = any) */
    const char *type;      /* only this message type (NULL = any) */
    int64_t since_ms;      /* only those dead at or after (0 = any) */
    int64_t until_ms;      /* only those dead before (0 = any) */
} dlq_filter_t;

void dlq_entry_destroy(dlq_entry_t **entry_p);

/* Calls cb for each entry matching f (NULL = all), oldest message first,
 * starting after `after` (NULL = from the start) until cb returns non-zero
 * or limit entries were given (0 = no limit). The entry is borrowed. */
int dlq_list(runtime_t *rt, const dlq_filter_t *f, const fenta_id_t *after, size_t limit,
             int (*cb)(const dlq_entry_t *e, void *arg), void *arg);
/* One entry (the caller's); FENTA_ENOTFOUND if absent. */
int dlq_get(runtime_t *rt, const fenta_id_t *id, dlq_entry_t **out);
/* Entries in the queue now. */
size_t dlq_count(runtime_t *rt);
/* Back to the mailbox with attempt 0. FENTA_ENOTFOUND if absent,
 * FENTA_EDECODE for an entry that never decoded (it can only be dropped). */
int dlq_replay(runtime_t *rt, const fenta_id_t *id);
/* Replays every decodable entry matching f (NULL = all); *count = how many. */
int dlq_replay_where(runtime_t *rt, const dlq_filter_t *f, size_t *count);
/* Deletes one entry. */
int dlq_drop(runtime_t *rt, const fenta_id_t *id);
/* Deletes every entry matching f (NULL = all); *count = how many. */
int dlq_drop_where(runtime_t *rt, const dlq_filter_t *f, size_t *count);

#endif
