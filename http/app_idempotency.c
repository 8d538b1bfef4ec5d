/* app_idempotency.c - idempotency keys on creating POSTs: the first request
 * with a key claims it in PostgreSQL and its final answer is recorded; a
 * retry with the same key and request replays that answer, one with another
 * request is refused (422), and one while the first still runs gets 409. */
#include "http/app_internal.h"
#include "runtime/crypto.h"
#include "runtime/error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void request_hash(http_req_t *req, char out[65])
{
    size_t len = 0;
    const void *body = http_body(req, &len);
    uint8_t md[CRYPTO_SHA256_LEN] = {0};
    crypto_sha256_2(http_path(req), strlen(http_path(req)), body, body ? len : 0, md);
    crypto_hex(md, sizeof md, out);
}

/* Claims the key, or answers with the recorded response. 0: go on. */
int app__idempotency_begin(http_req_t *req, caller_t *c, const route_info_t *ri)
{
    const char *key = http_header(req, "idempotency-key");
    if (!key)
        return 0;
    if (!*key || strlen(key) > 255) {
        app__fail(req, "invalid_idempotency_key", "Idempotency-Key must be 1-255 characters", NULL);
        return 1;
    }
    snprintf(c->idem_user, sizeof c->idem_user, "%s",
             c->user_id[0] ? c->user_id : "00000000-0000-0000-0000-000000000000");
    char hash[65];
    request_hash(req, hash);
    pg_conn_t *conn = app__db(req);
    if (!conn)
        return 1;
    int err = 0;
    const char *p[] = {c->idem_user, ri->key, key, hash};
    /* Keys live 24 h; a request that never finished (its process died) holds
     * its key for 5 minutes, then a retry takes it over. */
    pg_result_t *res = pg_query(
        conn,
        "INSERT INTO idempotency_keys (user_id, route, key, request_hash) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (user_id, route, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
        "status = 0, response = NULL, created_at = now() WHERE idempotency_keys.created_at < "
        "now() - interval '24 hours' OR (idempotency_keys.status = 0 AND "
        "idempotency_keys.created_at < now() - interval '5 minutes') RETURNING 1",
        4, p, &err);
    /* Now and then, clear a slice of expired keys. */
    static _Atomic unsigned calls;
    if (res && atomic_fetch_add(&calls, 1) % 1000 == 999)
        pg_exec(conn,
                "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
                "WHERE created_at < now() - interval '24 hours' LIMIT 1000)",
                0, NULL);
    int done = 0;
    if (!res) {
        app__db_error(req, err, conn);
        done = 1;
    } else if (pg_nrows(res) == 1) {
        c->idem = true;
        snprintf(c->idem_key, sizeof c->idem_key, "%s", key);
    } else {
        pg_result_t *old = pg_query(conn,
                                    "SELECT request_hash, status, response FROM idempotency_keys "
                                    "WHERE user_id = $1 AND route = $2 AND key = $3",
                                    3, p, &err);
        done = 1;
        if (!old || pg_nrows(old) != 1) {
            app__db_error(req, old ? FENTA_ECONFLICT : err, conn);
        } else if (strcmp(pg_get(old, 0, 0), hash) != 0) {
            app__fail(req, "idempotency_key_reused",
                      "this Idempotency-Key was used with a different request", NULL);
        } else if (atoi(pg_get(old, 0, 1)) == 0) {
            http_add_header(req, "retry-after", "1");
            app__fail(req, "idempotency_in_progress",
                      "a request with this Idempotency-Key is still being processed", NULL);
        } else {
            json_t *body =
                json_loads(pg_get(old, 0, 2) ? pg_get(old, 0, 2) : "null", JSON_DECODE_ANY, NULL);
            http_add_header(req, "idempotent-replayed", "true");
            int st = atoi(pg_get(old, 0, 1));
            if (st == 204 || !body) {
                json_decref(body);
                http_respond_raw(req, st, NULL, "", 0);
            } else {
                http_respond_json(req, st, body);
            }
        }
        pg_result_free(&old);
    }
    pg_result_free(&res);
    app__db_done(req, &conn);
    return done;
}

/* Records the final answer (or forgets the key after a server error, so a
 * retry can run again). */
void app__idempotency_end(http_req_t *req, caller_t *c, int status, const json_t *body)
{
    c->idem = false;
    pg_conn_t *conn = c->conn;
    int err = 0;
    if (!conn && !(conn = c->conn = pg_acquire(app__of(req)->pool, 3000, &err)))
        return; /* the row stays "in progress": a retry with the key gets 409 */
    const route_info_t *ri = app__route(req);
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *p[] = {c->idem_user, ri->key, c->idem_key, st, text};
    if (status >= 500)
        pg_exec(conn, "DELETE FROM idempotency_keys WHERE user_id = $1 AND route = $2 AND key = $3",
                3, p);
    else
        pg_exec(conn,
                "UPDATE idempotency_keys SET status = $4, response = $5 "
                "WHERE user_id = $1 AND route = $2 AND key = $3",
                5, p);
    free(text);
}
