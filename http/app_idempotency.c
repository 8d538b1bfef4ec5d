/* app_idempotency.c - idempotency keys on creating POSTs: the first request
 * with a key claims it in PostgreSQL and its final answer is recorded; a
 * retry with the same key and request replays that answer, one with another
 * request is refused (422), and one while the first still runs gets 409. */
#include "http/app_internal.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "storage/idempotency_db.h"

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
    int err = idempotency_db_claim(conn, c->idem_user, ri->key, key, hash);
    /* Now and then, clear a slice of expired keys. */
    static _Atomic unsigned calls;
    if ((!err || err == FENTA_EEXIST) && atomic_fetch_add(&calls, 1) % 1000 == 999)
        idempotency_db_purge(conn, 1000);
    int done = 0;
    if (!err) {
        c->idem = true;
        snprintf(c->idem_key, sizeof c->idem_key, "%s", key);
    } else if (err != FENTA_EEXIST) {
        app__db_error(req, err, conn);
        done = 1;
    } else {
        idempotency_db_record_t old;
        done = 1;
        err = idempotency_db_get(conn, c->idem_user, ri->key, key, &old);
        if (err) {
            /* Gone since the claim (taken over, or forgotten after a
             * failure): the client may retry. */
            app__db_error(req, err == FENTA_ENOTFOUND ? FENTA_ECONFLICT : err, conn);
        } else if (strcmp(old.request_hash, hash) != 0) {
            app__fail(req, "idempotency_key_reused",
                      "this Idempotency-Key was used with a different request", NULL);
        } else if (old.status == 0) {
            http_add_header(req, "retry-after", "1");
            app__fail(req, "idempotency_in_progress",
                      "a request with this Idempotency-Key is still being processed", NULL);
        } else {
            json_t *body = json_loads(old.response ? old.response : "null", JSON_DECODE_ANY, NULL);
            http_add_header(req, "idempotent-replayed", "true");
            if (old.status == 204 || !body) {
                json_decref(body);
                http_respond_raw(req, old.status, NULL, "", 0);
            } else {
                http_respond_json(req, old.status, body);
            }
        }
        idempotency_db_record_clear(&old);
    }
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
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (status >= 500)
        idempotency_db_forget(conn, c->idem_user, ri->key, c->idem_key);
    else
        idempotency_db_finish(conn, c->idem_user, ri->key, c->idem_key, status, text);
    free(text);
}
