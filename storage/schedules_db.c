/* schedules_db.c - every statement on schedules and schedule_runs, and the
 * mapping of their rows (see schedules_db.h). */
#include "storage/schedules_db.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format splits a string next to a macro call mid-word; the column
 * lists are kept by hand. */
/* clang-format off */
/* The API's columns of a schedule (raw_created is the keyset key). */
#define SCHED_COLS                                                                                 \
    "id, name, workflow_id, workflow_version, inputs::text AS inputs, cron, timezone, misfire, "   \
    "paused, priority, max_credits, " DB_TS("next_fire_at") " AS next_fire_at, "                   \
    DB_TS("last_fired_at") " AS last_fired_at, last_job_id, last_outcome::text AS last_outcome, "  \
    "fire_count, " DB_TS("created_at") " AS created_at, " DB_TS("updated_at") " AS updated_at, "   \
    "created_at AS raw_created"

/* The API's columns of a run (raw_created is the due time: a schedule's
 * runs are listed in due order). */
#define RUN_COLS                                                                                   \
    DB_TS("r.due_at") " AS due, r.outcome, r.job_id, r.detail::text AS detail, "                   \
    DB_TS("r.created_at") " AS created_at, r.due_at AS raw_created, r.schedule_id"
/* clang-format on */

static json_t *sched_json(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    const char *v = pg_getn(r, row, "workflow_version"), *mc = pg_getn(r, row, "max_credits");
    return json_pack(
        "{ss ss ss so so ss ss ss sb ss so so so so so si ss ss}", "id", pg_getn(r, row, "id"),
        "name", pg_getn(r, row, "name"), "workflow_id", pg_getn(r, row, "workflow_id"), "version",
        v ? json_integer(atoi(v)) : json_string("latest"), "inputs",
        db_json(pg_getn(r, row, "inputs"), json_null()), "cron", pg_getn(r, row, "cron"),
        "timezone", pg_getn(r, row, "timezone"), "misfire", pg_getn(r, row, "misfire"), "paused",
        strcmp(pg_getn(r, row, "paused"), "t") == 0, "priority", pg_getn(r, row, "priority"),
        "max_credits", mc ? json_real(atof(mc)) : json_null(), "next_fire_at",
        db_str(pg_getn(r, row, "next_fire_at")), "last_fired_at",
        db_str(pg_getn(r, row, "last_fired_at")), "last_job_id",
        db_str(pg_getn(r, row, "last_job_id")), "last_outcome",
        db_json(pg_getn(r, row, "last_outcome"), json_null()), "fire_count",
        atoi(pg_getn(r, row, "fire_count")), "created_at", pg_getn(r, row, "created_at"),
        "updated_at", pg_getn(r, row, "updated_at"));
}

static json_t *run_json(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    return json_pack("{ss ss so so ss}", "due_at", pg_getn(r, row, "due"), "outcome",
                     pg_getn(r, row, "outcome"), "job_id", db_str(pg_getn(r, row, "job_id")),
                     "detail", db_json(pg_getn(r, row, "detail"), json_null()), "created_at",
                     pg_getn(r, row, "created_at"));
}

/* Unix seconds as the statements take them (to_timestamp), NULL for 0. */
static const char *secs(int64_t s, char *buf, size_t cap)
{
    if (s <= 0)
        return NULL;
    snprintf(buf, cap, "%lld", (long long)s);
    return buf;
}

int schedules_db_create(pg_conn_t *c, const schedules_db_def_t *d, json_t **out)
{
    char next[24];
    const char *p[] = {d->org_id,
                       d->name ? d->name : "",
                       d->workflow_id,
                       d->version,
                       d->inputs ? d->inputs : "{}",
                       d->cron,
                       d->timezone,
                       d->misfire ? d->misfire : "skip",
                       d->paused ? "t" : "f",
                       d->priority ? d->priority : "normal",
                       d->max_credits,
                       secs(d->next_fire, next, sizeof next),
                       d->created_by};
    if (out)
        *out = NULL;
    if (!db_is_uuid(d->org_id) || !db_is_uuid(d->workflow_id))
        return FENTA_ENOTFOUND;
    return db_one_row(
        c,
        "INSERT INTO schedules (org_id, name, workflow_id, workflow_version, inputs, cron, "
        "timezone, misfire, paused, priority, max_credits, next_fire_at, created_by) VALUES "
        "($1, $2, $3, $4::int, $5::jsonb, $6, $7, $8, $9::boolean, $10, $11::numeric, "
        "to_timestamp($12::bigint), $13) RETURNING " SCHED_COLS,
        13, p, sched_json, out);
}

int schedules_db_get(pg_conn_t *c, const char *id, const char *org_id, json_t **out)
{
    if (out)
        *out = NULL;
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    const char *p[] = {id, org_id};
    return db_one_row(c,
                      "SELECT " SCHED_COLS
                      " FROM schedules WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
                      2, p, sched_json, out);
}

int schedules_db_list(pg_conn_t *c, const char *org_id, const db_page_t *page, db_page_rows_t *out)
{
    const char *p[] = {org_id};
    return db_page_run(c,
                       "SELECT " SCHED_COLS
                       " FROM schedules WHERE org_id = $1 AND deleted_at IS NULL "
                       "AND ($3::timestamptz IS NULL OR (created_at, id) {cmp} ($3::timestamptz, "
                       "$4::uuid)) ORDER BY created_at {dir}, id {dir} LIMIT $2::int",
                       p, 1, page, sched_json, NULL, "id", out);
}

int schedules_db_update(pg_conn_t *c, const char *id, const char *org_id,
                        const schedules_db_def_t *d, json_t **out)
{
    if (out)
        *out = NULL;
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    char next[24];
    const char *p[] = {id,
                       d->name,
                       d->set_version ? "t" : "f",
                       d->version,
                       d->inputs,
                       d->cron,
                       d->timezone,
                       d->misfire,
                       d->paused ? "t" : "f",
                       d->priority,
                       d->set_max_credits ? "t" : "f",
                       d->max_credits,
                       secs(d->next_fire, next, sizeof next),
                       org_id};
    return db_one_row(
        c,
        "UPDATE schedules SET name = COALESCE($2, name), workflow_version = CASE WHEN $3 THEN "
        "$4::int ELSE workflow_version END, inputs = COALESCE($5::jsonb, inputs), cron = $6, "
        "timezone = $7, misfire = COALESCE($8, misfire), paused = $9::boolean, priority = "
        "COALESCE($10, priority), max_credits = CASE WHEN $11 THEN $12::numeric ELSE "
        "max_credits END, next_fire_at = to_timestamp($13::bigint), generation = generation "
        "+ 1, updated_at = now() WHERE id = $1 AND org_id = $14 AND deleted_at IS NULL "
        "RETURNING " SCHED_COLS,
        14, p, sched_json, out);
}

int schedules_db_set_paused(pg_conn_t *c, const char *id, const char *org_id, bool paused,
                            int64_t next_fire, json_t **out)
{
    if (out)
        *out = NULL;
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    char next[24];
    const char *p[] = {id, paused ? "t" : "f", secs(next_fire, next, sizeof next), org_id};
    return db_one_row(c,
                      "UPDATE schedules SET paused = $2::boolean, next_fire_at = "
                      "to_timestamp($3::bigint), generation = generation + 1, updated_at = now() "
                      "WHERE id = $1 AND org_id = $4 AND deleted_at IS NULL RETURNING " SCHED_COLS,
                      4, p, sched_json, out);
}

int schedules_db_delete(pg_conn_t *c, const char *id, const char *org_id)
{
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    const char *p[] = {id, org_id};
    return db_exec_some(
        c,
        "UPDATE schedules SET deleted_at = now(), next_fire_at = NULL, generation = "
        "generation + 1 WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
        2, p);
}

int schedules_db_runs_list(pg_conn_t *c, const char *id, const char *org_id, const db_page_t *page,
                           db_page_rows_t *out)
{
    *out = (db_page_rows_t){0};
    if (!db_is_uuid(id) || !db_is_uuid(org_id))
        return FENTA_ENOTFOUND;
    const char *p[] = {id, org_id};
    return db_page_run(c,
                       "SELECT " RUN_COLS " FROM schedule_runs r JOIN schedules s ON s.id = "
                       "r.schedule_id WHERE r.schedule_id = $1 AND s.org_id = $2 AND "
                       "s.deleted_at IS NULL AND ($4::timestamptz IS NULL OR (r.due_at, "
                       "r.schedule_id) {cmp} ($4::timestamptz, $5::uuid)) ORDER BY r.due_at "
                       "{dir}, r.schedule_id {dir} LIMIT $3::int",
                       p, 2, page, run_json, NULL, "schedule_id", out);
}

/* ---- the schedule actor ------------------------------------------------------ */

static int dup(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? FENTA_ENOMEM : 0;
}

int schedules_db_load(pg_conn_t *c, const char *id, schedules_db_row_t *row)
{
    *row = (schedules_db_row_t){0};
    if (!db_is_uuid(id))
        return FENTA_ENOTFOUND;
    const char *p[] = {id};
    pg_result_t *r = NULL;
    int rc = db_query_row(c,
                          "SELECT org_id, workflow_id, workflow_version, inputs::text AS "
                          "inputs, priority, max_credits, cron, timezone, misfire, paused, "
                          "generation, deleted_at IS NOT NULL AS deleted FROM schedules "
                          "WHERE id = $1",
                          1, p, &r);
    if (rc == 0) {
        int e = dup(&row->org_id, pg_getn(r, 0, "org_id")) |
                dup(&row->workflow_id, pg_getn(r, 0, "workflow_id")) |
                dup(&row->workflow_version, pg_getn(r, 0, "workflow_version")) |
                dup(&row->inputs, pg_getn(r, 0, "inputs")) |
                dup(&row->priority, pg_getn(r, 0, "priority")) |
                dup(&row->max_credits, pg_getn(r, 0, "max_credits")) |
                dup(&row->cron, pg_getn(r, 0, "cron")) |
                dup(&row->timezone, pg_getn(r, 0, "timezone")) |
                dup(&row->misfire, pg_getn(r, 0, "misfire"));
        row->paused = strcmp(pg_getn(r, 0, "paused"), "t") == 0;
        row->deleted = strcmp(pg_getn(r, 0, "deleted"), "t") == 0;
        row->generation = atoi(pg_getn(r, 0, "generation"));
        if (e) {
            schedules_db_row_clear(row);
            rc = FENTA_ENOMEM;
        }
    }
    pg_result_free(&r);
    return rc;
}

void schedules_db_row_clear(schedules_db_row_t *row)
{
    free(row->org_id);
    free(row->workflow_id);
    free(row->workflow_version);
    free(row->inputs);
    free(row->priority);
    free(row->max_credits);
    free(row->cron);
    free(row->timezone);
    free(row->misfire);
    *row = (schedules_db_row_t){0};
}

int schedules_db_set_next(pg_conn_t *c, const char *id, int64_t due)
{
    char dbuf[24];
    const char *p[] = {id, secs(due, dbuf, sizeof dbuf)};
    int n = pg_exec(c, "UPDATE schedules SET next_fire_at = to_timestamp($2::bigint) WHERE id = $1",
                    2, p);
    return n < 0 ? n : 0;
}

int schedules_db_claim_run(pg_conn_t *c, const char *id, int64_t due, const char *org_id,
                           const char *node, int64_t now_ms, bool *mine, int64_t *claimed_ms)
{
    char dbuf[24], nowbuf[24];
    snprintf(dbuf, sizeof dbuf, "%lld", (long long)due);
    snprintf(nowbuf, sizeof nowbuf, "%lld", (long long)now_ms);
    const char *p[] = {id, dbuf, org_id, node, nowbuf};
    int err = 0;
    /* The claim's time is the caller's clock, not PostgreSQL's now(): it is
     * the schedule.fired event's time and must agree with due_at under a
     * test clock. A replay keeps the first claim's (ON CONFLICT leaves it,
     * and the no-op update makes RETURNING give the existing row). */
    pg_result_t *r = pg_query(
        c,
        "INSERT INTO schedule_runs (schedule_id, due_at, org_id, node, outcome, created_at) "
        "VALUES ($1, to_timestamp($2::bigint), $3, $4, 'started', to_timestamp($5::bigint / "
        "1000.0)) ON CONFLICT (schedule_id, due_at) DO UPDATE SET node = schedule_runs.node "
        "RETURNING node, floor(extract(epoch FROM created_at) * 1000)::bigint",
        5, p, &err);
    if (!r)
        return err ? err : FENTA_ENOMEM;
    *mine = strcmp(pg_get(r, 0, 0), node) == 0;
    *claimed_ms = atoll(pg_get(r, 0, 1));
    pg_result_free(&r);
    return 0;
}

int schedules_db_record_run(pg_conn_t *c, const char *id, int64_t due, const char *outcome,
                            const char *job_id, const char *outcome_doc)
{
    char dbuf[24];
    snprintf(dbuf, sizeof dbuf, "%lld", (long long)due);
    const char *p[] = {id, dbuf, outcome, job_id, outcome_doc};
    int n = pg_exec(c,
                    /* A data-modifying WITH runs whether or not it is read. */
                    "WITH r AS (UPDATE schedule_runs SET outcome = $3, job_id = $4::uuid, "
                    "detail = $5::jsonb WHERE schedule_id = $1 AND due_at = "
                    "to_timestamp($2::bigint)) UPDATE schedules SET "
                    "last_fired_at = to_timestamp($2::bigint), last_job_id = $4::uuid, "
                    "last_outcome = $5::jsonb, fire_count = (SELECT count(*) FROM "
                    "schedule_runs WHERE schedule_id = $1 AND outcome = 'started' AND due_at <> "
                    "to_timestamp($2::bigint)) + CASE WHEN $3 = 'started' THEN 1 ELSE 0 END "
                    "WHERE id = $1",
                    5, p);
    return n < 0 ? n : 0;
}

int schedules_db_live_ids(pg_conn_t *c, json_t **ids)
{
    return db_column(c, "SELECT id FROM schedules WHERE deleted_at IS NULL AND NOT paused", ids);
}
