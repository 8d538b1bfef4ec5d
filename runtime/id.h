/* id.h - sortable unique message and actor ids (ULID layout).
 *
 * 128 bits: 48-bit big-endian Unix milliseconds, then 80 bits that start
 * random for each millisecond and increase by one for every further id in the
 * same millisecond, so ids made by one process sort in creation order and ids
 * from different processes/nodes do not collide. Bytes compare with memcmp in
 * time order, which is why LMDB keys use the raw 16 bytes. Text form is the
 * 26-character Crockford base32 ULID. */
#ifndef FENTA_ID_H
#define FENTA_ID_H
#include <stdint.h>
#include <stddef.h>

#define ID_BYTES 16
#define ID_STR_LEN 26

typedef struct {
    uint8_t b[ID_BYTES]; /* big-endian: time then monotonic random */
} fenta_id_t;

/* A new id; thread-safe; monotonic within the process. */
void id_new(fenta_id_t *out);
/* Text form into out (27 bytes with the NUL). */
void id_to_str(const fenta_id_t *id, char out[ID_STR_LEN + 1]);
/* Parse the text form (case-insensitive); FENTA_EINVAL if it is not one. */
int id_from_str(const char *s, fenta_id_t *out);
/* The millisecond timestamp in the id. */
int64_t id_time_ms(const fenta_id_t *id);
/* memcmp order: <0, 0, >0. */
int id_cmp(const fenta_id_t *a, const fenta_id_t *b);

#endif
