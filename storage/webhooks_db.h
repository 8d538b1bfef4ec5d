/* webhooks_db.h - the owner of the webhooks and webhook_deliveries tables:
 * every statement on them and the mapping of their rows (API objects for
 * the handlers; the endpoints, pending ids and result batches of the
 * webhook engine).
 *
 * Each call takes the caller's connection (pg.h), so a caller composes
 * calls in one transaction of its own. 0 or a negative FENTA_E* code, never
 * an HTTP status: FENTA_ENOTFOUND is no such live webhook (or delivery) in
 * that organisation (another organisation's, a deleted one and a malformed
 * id all read as missing); the rest are pg.h's. Objects given back through
 * json_t ** are the caller's. */
#ifndef FENTA_WEBHOOKS_DB_H
#define FENTA_WEBHOOKS_DB_H
#include "storage/db.h"
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* An endpoint as create and update write it (pointers borrowed for the
 * call); on update a NULL field, or enabled -1, leaves the row's. */
typedef struct {
    const char *org_id;      /* create: the organisation */
    const char *created_by;  /* create: the user, NULL for none */
    const char *secret;      /* create: the first signing secret */
    const char *url;         /* the endpoint (checked by the caller) */
    const char *description; /* NULL: "" on create */
    const char *event_types; /* a JSON array of type names (checked by the caller) */
    int enabled;             /* 1 or 0; -1: enabled on create, keep on update */
} webhooks_db_def_t;

/* ---- the API's reads and writes (objects in the API's webhook shape; the
 * secrets show only their times) ---- */

int webhooks_db_create(pg_conn_t *c, const webhooks_db_def_t *def, json_t **out);
/* The live webhook id of org. */
int webhooks_db_get(pg_conn_t *c, const char *id, const char *org_id, json_t **out);
/* One page of org's live webhooks. */
int webhooks_db_list(pg_conn_t *c, const char *org_id, const db_page_t *page, db_page_rows_t *out);
/* Changes the live webhook id of org; enabling clears an automatic disable
 * and the failure streak. *out is the row after. */
int webhooks_db_update(pg_conn_t *c, const char *id, const char *org_id,
                       const webhooks_db_def_t *def, json_t **out);
/* Soft-deletes the live webhook id of org. */
int webhooks_db_delete(pg_conn_t *c, const char *id, const char *org_id);
/* Puts secret first; every secret still in force expires overlap_s seconds
 * from now at the latest, and expired ones are dropped. *expires_at (the
 * caller's, RFC 3339) is the end of the overlap. */
int webhooks_db_rotate(pg_conn_t *c, const char *id, const char *org_id, const char *secret,
                       int64_t overlap_s, char **expires_at);
/* One page of the deliveries to webhook id of org, only those in status
 * when it is not NULL. The caller checks the webhook is org's first
 * (webhooks_db_get); another organisation's gives an empty page here. */
int webhooks_db_deliveries_list(pg_conn_t *c, const char *id, const char *org_id,
                                const char *status, const db_page_t *page, db_page_rows_t *out);
/* Delivery delivery_id of webhook webhook_id of org (API shape). */
int webhooks_db_delivery_get(pg_conn_t *c, const char *delivery_id, const char *webhook_id,
                             const char *org_id, json_t **out);

/* ---- the webhook engine ------------------------------------------------------- */

/* *eps: org's live endpoints, [{"id", "url", "types": [...], "enabled",
 * "secrets": [the secrets still in force, newest first]}]. An expired
 * secret is left out here, so rotation needs nothing to run at its expiry. */
int webhooks_db_endpoints(pg_conn_t *c, const char *org_id, json_t **eps);
/* Lists pending deliveries: rows_json is a JSON array of {id, webhook_id,
 * org_id, event_id, event_type}; a row already there is left alone (a
 * replayed fan-out). One statement. */
int webhooks_db_insert_pending(pg_conn_t *c, const char *rows_json);
/* Settles delivery id without an attempt (webhook gone or disabled) at
 * status with error why, unless a newer write (rev) is already there. */
int webhooks_db_settle(pg_conn_t *c, const char *id, const char *status, const char *why, int rev);
/* *ids: an array of the ids of the pending deliveries (recovery). */
int webhooks_db_pending_ids(pg_conn_t *c, json_t **ids);
/* Records a batch of attempt results and the endpoints' health in ONE
 * statement (the writer thread's whole batch: ops/bench/webhooks.mjs):
 *   rows_json    [{id, webhook_id, org_id, event_id, event_type, status,
 *                 attempts, response_status, response_body, latency_ms,
 *                 error, next_at (ms, or null), rev, delivered (bool)}],
 *                upserted unless the row has a newer rev
 *   failed_json  the ids of webhooks that failed an attempt
 *   ok_json      those that succeeded one (a success in the batch wins)
 * A success clears failing_since, the first failure sets it, and an
 * endpoint failing for longer than disable_after_ms is disabled:
 * *disabled (may be NULL) gets those [{webhook_id, org_id, url, reason,
 * disabled_at (Unix seconds)}]. */
int webhooks_db_record_results(pg_conn_t *c, const char *rows_json, const char *failed_json,
                               const char *ok_json, int64_t disable_after_ms, json_t **disabled);

#endif
