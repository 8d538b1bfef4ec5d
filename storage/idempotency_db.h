/* idempotency_db.h - the owner of table idempotency_keys: the record of a
 * creating request sent with an Idempotency-Key, so that a retry with the
 * same key gets the first answer instead of doing the work twice.
 *
 * A key is claimed (per user, route and key) before the work and holds the
 * request's hash; the final answer is recorded after it. A claim lives 24
 * hours; one whose request never finished (its process died) is taken over
 * by a retry after 5 minutes. Status 0 means "still running".
 * 0 or a negative FENTA_E* code: FENTA_EEXIST when the key is held,
 * FENTA_ENOTFOUND when there is no record, else the pg.h code. */
#ifndef FENTA_IDEMPOTENCY_DB_H
#define FENTA_IDEMPOTENCY_DB_H
#include "storage/db.h"

/* Claims key for user_id's request on route, whose hash is request_hash: 0
 * when the key was free (or its record expired, or was abandoned);
 * FENTA_EEXIST when a live record holds it (read it with idempotency_db_get). */
int idempotency_db_claim(pg_conn_t *c, const char *user_id, const char *route, const char *key,
                         const char *request_hash);

/* A key's record. */
typedef struct {
    char request_hash[65]; /* SHA-256 hex of the request that claimed it */
    int status;            /* its answer's HTTP status; 0 while it runs */
    char *response;        /* its answer's body (JSON text, owned), NULL when none */
} idempotency_db_record_t;

/* The record of key (free it with idempotency_db_record_clear).
 * FENTA_ENOTFOUND when there is none. */
int idempotency_db_get(pg_conn_t *c, const char *user_id, const char *route, const char *key,
                       idempotency_db_record_t *out);
void idempotency_db_record_clear(idempotency_db_record_t *rec);

/* Records the final answer of the request holding key: status and response
 * (JSON text, or NULL for none). */
int idempotency_db_finish(pg_conn_t *c, const char *user_id, const char *route, const char *key,
                          int status, const char *response);
/* Forgets key (its request failed on our side, so a retry may run again). */
int idempotency_db_forget(pg_conn_t *c, const char *user_id, const char *route, const char *key);

/* Deletes up to max expired records (older than 24 hours): a slice at a
 * time, so no call holds the table for long. */
int idempotency_db_purge(pg_conn_t *c, int max);

#endif
