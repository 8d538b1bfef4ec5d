/* webhooks_db.c - every statement on webhooks and webhook_deliveries, and
 * the mapping of their rows (see webhooks_db.h). */
#include "storage/webhooks_db.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format splits a string next to a macro call mid-word; these two
 * column lists are kept by hand. */
/* clang-format off */
/* The API's columns of an endpoint: the secrets show only their times
 * (raw_created is the keyset key). */
#define WH_COLS                                                                                    \
    "id, url, description, array_to_json(event_types)::text AS event_types, enabled, "             \
    DB_TS("failing_since") " AS failing_since, " DB_TS("disabled_at") " AS disabled_at, "          \
    "disabled_reason, (SELECT COALESCE(json_agg(json_build_object('created_at', "                  \
    "s->'created_at', 'expires_at', s->'expires_at')), '[]') FROM "                                \
    "jsonb_array_elements(secrets) s)::text AS secrets, org_id, "                                  \
    DB_TS("created_at") " AS created_at, " DB_TS("updated_at") " AS updated_at, "                  \
    "created_at AS raw_created"

/* The API's columns of a delivery. */
#define DL_COLS                                                                                    \
    "id, webhook_id, event_id, event_type, status, attempts, response_status, response_body, "     \
    "latency_ms, error, " DB_TS("next_attempt_at") " AS next_attempt_at, "                         \
    DB_TS("delivered_at") " AS delivered_at, " DB_TS("created_at") " AS created_at, "              \
    DB_TS("updated_at") " AS updated_at, created_at AS raw_created"
/* clang-format on */

static json_t *wh_json(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    return json_pack("{ss ss ss so sb so so so so ss ss}", "id", pg_getn(r, row, "id"), "url",
                     pg_getn(r, row, "url"), "description", pg_getn(r, row, "description"),
                     "event_types", db_json(pg_getn(r, row, "event_types"), json_null()), "enabled",
                     strcmp(pg_getn(r, row, "enabled"), "t") == 0, "failing_since",
                     db_str(pg_getn(r, row, "failing_since")), "disabled_at",
                     db_str(pg_getn(r, row, "disabled_at")), "disabled_reason",
                     db_str(pg_getn(r, row, "disabled_reason")), "secrets",
                     db_json(pg_getn(r, row, "secrets"), json_null()), "created_at",
                     pg_getn(r, row, "created_at"), "updated_at", pg_getn(r, row, "updated_at"));
}

static json_t *dl_json(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    return json_pack(
        "{ss ss ss ss ss si so so so so so so ss ss}", "id", pg_getn(r, row, "id"), "webhook_id",
        pg_getn(r, row, "webhook_id"), "event_id", pg_getn(r, row, "event_id"), "event_type",
        pg_getn(r, row, "event_type"), "status", pg_getn(r, row, "status"), "attempts",
        atoi(pg_getn(r, row, "attempts")), "response_status",
        db_int(pg_getn(r, row, "response_status")), "response_body",
        db_str(pg_getn(r, row, "response_body")), "latency_ms",
        db_int(pg_getn(r, row, "latency_ms")), "error", db_str(pg_getn(r, row, "error")),
        "next_attempt_at", db_str(pg_getn(r, row, "next_attempt_at")), "delivered_at",
        db_str(pg_getn(r, row, "delivered_at")), "created_at", pg_getn(r, row, "created_at"),
        "updated_at", pg_getn(r, row, "updated_at"));
}

static const char *tristate(int v)
{
    return v < 0 ? NULL : v ? "t" : "f";
}

int webhooks_db_create(pg_conn_t *c, const webhooks_db_def_t *d, json_t **out)
{
    if (out)
        *out = NULL;
    if (!db_is_uuid(d->org_id))
        return FENTA_ENOTFOUND;
    const char *p[] = {d->org_id,
                       d->url,
                       d->description ? d->description : "",
                       d->event_types,
                       d->enabled == 0 ? "f" : "t",
                       d->secret,
                       d->created_by};
    return db_one_row(
        c,
        "INSERT INTO webhooks (org_id, url, description, event_types, enabled, secrets, "
        "created_by) SELECT $1, $2, $3, ARRAY(SELECT jsonb_array_elements_text($4::jsonb)), "
        "$5::boolean, jsonb_build_array(jsonb_build_object('secret', $6::text, 'created_at', "
        "now(), 'expires_at', NULL)), $7 RETURNING " WH_COLS,
        7, p, wh_json, out);
}

int webhooks_db_get(pg_conn_t *c, const char *id, const char *org_id, json_t **out)
{
    if (out)
        *out = NULL;
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    const char *p[] = {id, org_id};
    return db_one_row(
        c, "SELECT " WH_COLS " FROM webhooks WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
        2, p, wh_json, out);
}

int webhooks_db_list(pg_conn_t *c, const char *org_id, const db_page_t *page, db_page_rows_t *out)
{
    const char *p[] = {org_id};
    return db_page_run(c,
                       "SELECT " WH_COLS " FROM webhooks WHERE org_id = $1 AND deleted_at IS NULL "
                       "AND ($3::timestamptz IS NULL OR (created_at, id) {cmp} ($3::timestamptz, "
                       "$4::uuid)) ORDER BY created_at {dir}, id {dir} LIMIT $2::int",
                       p, 1, page, wh_json, NULL, "id", out);
}

int webhooks_db_update(pg_conn_t *c, const char *id, const char *org_id, const webhooks_db_def_t *d,
                       json_t **out)
{
    if (out)
        *out = NULL;
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    const char *p[] = {id, org_id, d->url, d->description, d->event_types, tristate(d->enabled)};
    /* Enabling clears an automatic disable and the failure streak. */
    return db_one_row(
        c,
        "UPDATE webhooks SET url = COALESCE($3, url), description = COALESCE($4, "
        "description), event_types = CASE WHEN $5::jsonb IS NULL THEN event_types ELSE "
        "ARRAY(SELECT jsonb_array_elements_text($5::jsonb)) END, enabled = "
        "COALESCE($6::boolean, enabled), disabled_at = CASE WHEN $6::boolean THEN "
        "NULL ELSE disabled_at END, disabled_reason = CASE WHEN $6::boolean THEN "
        "NULL ELSE disabled_reason END, failing_since = CASE WHEN $6::boolean THEN "
        "NULL ELSE failing_since END, updated_at = now() WHERE id = $1 AND org_id "
        "= $2 AND deleted_at IS NULL RETURNING " WH_COLS,
        6, p, wh_json, out);
}

int webhooks_db_delete(pg_conn_t *c, const char *id, const char *org_id)
{
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    const char *p[] = {id, org_id};
    return db_exec_some(c,
                        "UPDATE webhooks SET deleted_at = now() WHERE id = $1 AND org_id = $2 AND "
                        "deleted_at IS NULL",
                        2, p);
}

int webhooks_db_rotate(pg_conn_t *c, const char *id, const char *org_id, const char *secret,
                       int64_t overlap_s, char **expires_at)
{
    *expires_at = NULL;
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    char overlap[24];
    snprintf(overlap, sizeof overlap, "%lld", (long long)overlap_s);
    const char *p[] = {id, org_id, secret, overlap};
    /* The new secret first; every secret still in force expires at the end
     * of the overlap at the latest, and those already expired are dropped. */
    pg_result_t *r = NULL;
    int rc =
        db_query_row(c,
                     "UPDATE webhooks SET secrets = jsonb_build_array(jsonb_build_object('secret', "
                     "$3::text, 'created_at', now(), 'expires_at', NULL)) || COALESCE((SELECT "
                     "jsonb_agg(jsonb_set(s, '{expires_at}', to_jsonb(LEAST(COALESCE((s->>"
                     "'expires_at')::timestamptz, 'infinity'), now() + make_interval(secs => "
                     "$4::int))))) FROM jsonb_array_elements(secrets) s WHERE s->>'expires_at' IS "
                     "NULL OR (s->>'expires_at')::timestamptz > now()), '[]'), updated_at = now() "
                     "WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL RETURNING " DB_TS(
                         "(now() + make_interval(secs => $4::int))"),
                     4, p, &r);
    if (rc == 0 && !(*expires_at = strdup(pg_get(r, 0, 0))))
        rc = FENTA_ENOMEM;
    pg_result_free(&r);
    return rc;
}

int webhooks_db_deliveries_list(pg_conn_t *c, const char *id, const char *org_id,
                                const char *status, const db_page_t *page, db_page_rows_t *out)
{
    *out = (db_page_rows_t){0};
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    const char *p[] = {id, org_id, status};
    /* $1..$3 are ours; db_page_run numbers its own from $4 on. */
    return db_page_run(c,
                       "SELECT " DL_COLS
                       " FROM webhook_deliveries WHERE webhook_id = $1 AND org_id = $2 AND "
                       "($3::text IS NULL OR status = $3) AND ($5::timestamptz IS NULL OR "
                       "(created_at, id) {cmp} ($5::timestamptz, $6::uuid)) ORDER BY created_at "
                       "{dir}, id {dir} LIMIT $4::int",
                       p, 3, page, dl_json, NULL, "id", out);
}

int webhooks_db_delivery_get(pg_conn_t *c, const char *delivery_id, const char *webhook_id,
                             const char *org_id, json_t **out)
{
    if (out)
        *out = NULL;
    if (!db_is_uuid(delivery_id) || !db_is_uuid(webhook_id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    const char *p[] = {delivery_id, webhook_id, org_id};
    return db_one_row(c,
                      "SELECT " DL_COLS " FROM webhook_deliveries WHERE id = $1 AND webhook_id = "
                      "$2 AND org_id = $3",
                      3, p, dl_json, out);
}

/* ---- the webhook engine --------------------------------------------------------- */

int webhooks_db_endpoints(pg_conn_t *c, const char *org_id, json_t **eps)
{
    *eps = NULL;
    if (!db_is_uuid(org_id)) {
        *eps = json_array();
        return *eps ? 0 : FENTA_ENOMEM;
    }
    const char *p[] = {org_id};
    int err = 0;
    /* Only the secrets still in force sign: an expired one is left out here,
     * so rotation needs nothing to run at its expiry. */
    pg_result_t *r = pg_query(
        c,
        "SELECT COALESCE(json_agg(json_build_object('id', id, 'url', url, 'types', "
        "event_types, 'enabled', enabled, 'secrets', (SELECT COALESCE(json_agg(s->>'secret'), "
        "'[]') FROM jsonb_array_elements(secrets) s WHERE s->>'expires_at' IS NULL OR "
        "(s->>'expires_at')::timestamptz > now()))), '[]')::text FROM webhooks WHERE org_id = $1 "
        "AND deleted_at IS NULL",
        1, p, &err);
    if (!r)
        return err ? err : FENTA_ENOMEM;
    *eps = json_loads(pg_get(r, 0, 0) ? pg_get(r, 0, 0) : "", 0, NULL);
    pg_result_free(&r);
    return *eps ? 0 : FENTA_EDECODE;
}

int webhooks_db_insert_pending(pg_conn_t *c, const char *rows_json)
{
    const char *p[] = {rows_json};
    int n = pg_exec(c,
                    "INSERT INTO webhook_deliveries (id, webhook_id, org_id, event_id, "
                    "event_type) SELECT id, webhook_id, org_id, event_id, event_type FROM "
                    "jsonb_to_recordset($1::jsonb) AS r(id uuid, webhook_id uuid, org_id "
                    "uuid, event_id text, event_type text) ON CONFLICT (id) DO NOTHING",
                    1, p);
    return n < 0 ? n : 0;
}

int webhooks_db_settle(pg_conn_t *c, const char *id, const char *status, const char *why, int rev)
{
    char rb[16];
    snprintf(rb, sizeof rb, "%d", rev);
    const char *p[] = {id, status, why, rb};
    int n = pg_exec(c,
                    "UPDATE webhook_deliveries SET status = $2, error = $3, rev = $4::int, "
                    "next_attempt_at = NULL, updated_at = now() WHERE id = $1 AND rev <= $4::int",
                    4, p);
    return n < 0 ? n : 0;
}

int webhooks_db_pending_ids(pg_conn_t *c, json_t **ids)
{
    return db_column(c, "SELECT id FROM webhook_deliveries WHERE status = 'pending'", ids);
}

int webhooks_db_record_results(pg_conn_t *c, const char *rows_json, const char *failed_json,
                               const char *ok_json, int64_t disable_after_ms, json_t **disabled)
{
    if (disabled)
        *disabled = NULL;
    char after[24];
    snprintf(after, sizeof after, "%lld", (long long)disable_after_ms);
    const char *p[] = {rows_json, failed_json, ok_json, after};
    int err = 0;
    pg_result_t *r = pg_query(
        c,
        "WITH r AS (INSERT INTO webhook_deliveries AS d (id, webhook_id, org_id, event_id, "
        "event_type, status, attempts, response_status, response_body, latency_ms, error, "
        "next_attempt_at, rev, delivered_at, updated_at) SELECT id, webhook_id, org_id, "
        "event_id, event_type, status, attempts, response_status, response_body, latency_ms, "
        "error, to_timestamp(next_at / 1000.0), rev, CASE WHEN delivered THEN now() END, "
        "now() FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, webhook_id uuid, org_id uuid, "
        "event_id text, event_type text, status text, attempts int, response_status int, "
        "response_body text, latency_ms int, error text, next_at bigint, rev int, delivered "
        "bool) ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, attempts = "
        "EXCLUDED.attempts, response_status = EXCLUDED.response_status, response_body = "
        "EXCLUDED.response_body, latency_ms = EXCLUDED.latency_ms, error = EXCLUDED.error, "
        "next_attempt_at = EXCLUDED.next_attempt_at, rev = EXCLUDED.rev, delivered_at = "
        "COALESCE(EXCLUDED.delivered_at, d.delivered_at), updated_at = now() WHERE d.rev <= "
        "EXCLUDED.rev), "
        /* Health: a success clears failing_since, the first failure sets it;
         * the sets are disjoint (a success in the batch wins). */
        "okw AS (SELECT DISTINCT value::uuid AS id FROM jsonb_array_elements_text($3::jsonb)), "
        "badw AS (SELECT DISTINCT value::uuid AS id FROM jsonb_array_elements_text($2::jsonb) "
        "WHERE value::uuid NOT IN (SELECT id FROM okw)), "
        "s AS (UPDATE webhooks SET failing_since = NULL WHERE id IN (SELECT id FROM okw) AND "
        "failing_since IS NOT NULL), "
        "f AS (UPDATE webhooks SET failing_since = now() WHERE id IN (SELECT id FROM badw) AND "
        "failing_since IS NULL) "
        "UPDATE webhooks SET enabled = false, disabled_at = now(), disabled_reason = "
        "'failing since ' || to_char(failing_since AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || '; re-enable it with PATCH {\"enabled\": true}', "
        "updated_at = now() WHERE id IN (SELECT id FROM badw) AND enabled AND failing_since < "
        "now() - make_interval(secs => $4::bigint / 1000.0) RETURNING id, org_id, url, "
        "disabled_reason, extract(epoch FROM disabled_at)::bigint",
        4, p, &err);
    if (!r)
        return err ? err : FENTA_ENOMEM;
    json_t *a = disabled ? json_array() : NULL;
    for (int i = 0; a && i < pg_nrows(r); i++) {
        json_t *o = json_pack("{ss ss ss ss sI}", "webhook_id", pg_get(r, i, 0), "org_id",
                              pg_get(r, i, 1), "url", pg_get(r, i, 2), "reason", pg_get(r, i, 3),
                              "disabled_at", (json_int_t)atoll(pg_get(r, i, 4)));
        if (!o || json_array_append_new(a, o) != 0)
            json_decref(a), a = NULL;
    }
    int rc = disabled && !a ? FENTA_ENOMEM : 0;
    pg_result_free(&r);
    if (disabled)
        *disabled = a;
    return rc;
}
