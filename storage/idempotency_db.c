/* idempotency_db.c - statements on idempotency_keys. See idempotency_db.h. */
#include "storage/idempotency_db.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int idempotency_db_claim(pg_conn_t *c, const char *user_id, const char *route, const char *key,
                         const char *request_hash)
{
    const char *p[] = {user_id, route, key, request_hash};
    /* One statement claims a free key or takes over an expired (24 h) or
     * abandoned (running for 5 minutes) one; a live record makes it return
     * no row: the key is taken. */
    int err = db_one_row(
        c,
        "INSERT INTO idempotency_keys (user_id, route, key, request_hash) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (user_id, route, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
        "status = 0, response = NULL, created_at = now() WHERE idempotency_keys.created_at < "
        "now() - interval '24 hours' OR (idempotency_keys.status = 0 AND "
        "idempotency_keys.created_at < now() - interval '5 minutes') RETURNING 1",
        4, p, NULL, NULL);
    return err == FENTA_ENOTFOUND ? FENTA_EEXIST : err;
}

int idempotency_db_get(pg_conn_t *c, const char *user_id, const char *route, const char *key,
                       idempotency_db_record_t *out)
{
    *out = (idempotency_db_record_t){.status = 0};
    const char *p[] = {user_id, route, key};
    pg_result_t *r = NULL;
    int err = db_query_row(c,
                           "SELECT request_hash, status, response FROM idempotency_keys "
                           "WHERE user_id = $1 AND route = $2 AND key = $3",
                           3, p, &r);
    if (err)
        return err;
    snprintf(out->request_hash, sizeof out->request_hash, "%s", pg_get(r, 0, 0));
    out->status = atoi(pg_get(r, 0, 1));
    const char *resp = pg_get(r, 0, 2);
    if (resp && !(out->response = strdup(resp)))
        err = FENTA_ENOMEM;
    pg_result_free(&r);
    return err;
}

void idempotency_db_record_clear(idempotency_db_record_t *rec)
{
    free(rec->response);
    *rec = (idempotency_db_record_t){.status = 0};
}

int idempotency_db_finish(pg_conn_t *c, const char *user_id, const char *route, const char *key,
                          int status, const char *response)
{
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    const char *p[] = {user_id, route, key, st, response};
    return db_exec(c,
                   "UPDATE idempotency_keys SET status = $4, response = $5 "
                   "WHERE user_id = $1 AND route = $2 AND key = $3",
                   5, p);
}

int idempotency_db_forget(pg_conn_t *c, const char *user_id, const char *route, const char *key)
{
    const char *p[] = {user_id, route, key};
    return db_exec(c, "DELETE FROM idempotency_keys WHERE user_id = $1 AND route = $2 AND key = $3",
                   3, p);
}

int idempotency_db_purge(pg_conn_t *c, int max)
{
    char n[16];
    snprintf(n, sizeof n, "%d", max);
    const char *p[] = {n};
    return db_exec(c,
                   "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
                   "WHERE created_at < now() - interval '24 hours' LIMIT $1::int)",
                   1, p);
}
