/* jobs_db.c - the jobs table; see jobs_db.h. */
#include "storage/jobs_db.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_COLS                                                                                   \
    "id, org_id, kind, workflow_id, workflow_version, status, priority, progress, current_node, "  \
    "nodes::text AS nodes, artifacts::text AS artifacts, error::text AS error, credits, "          \
    "attempts, inputs::text AS inputs, " DB_TS("created_at") " AS created_at, " DB_TS(             \
        "started_at") " AS started_at, " DB_TS("finished_at") " AS finished_at, " DB_TS("update"   \
                                                                                        "d_at") " AS updated_at, created_at AS raw_created"

static json_t *job_row(const pg_result_t *r, int row, void *arg)
{
    (void)arg;
    const char *wv = pg_getn(r, row, "workflow_version");
    return json_pack(
        "{ss ss ss so so ss ss sf so so so so sf si so ss so so ss}", "id", pg_getn(r, row, "id"),
        "org_id", pg_getn(r, row, "org_id"), "kind", pg_getn(r, row, "kind"), "workflow_id",
        db_str(pg_getn(r, row, "workflow_id")), "workflow_version",
        wv ? json_integer(atoi(wv)) : json_null(), "status", pg_getn(r, row, "status"), "priority",
        pg_getn(r, row, "priority"), "progress", atof(pg_getn(r, row, "progress")), "current_node",
        db_str(pg_getn(r, row, "current_node")), "nodes",
        db_json(pg_getn(r, row, "nodes"), json_object()), "artifacts",
        db_json(pg_getn(r, row, "artifacts"), json_array()), "error",
        db_json(pg_getn(r, row, "error"), json_null()), "credits", atof(pg_getn(r, row, "credits")),
        "attempts", atoi(pg_getn(r, row, "attempts")), "inputs",
        db_json(pg_getn(r, row, "inputs"), json_object()), "created_at",
        pg_getn(r, row, "created_at"), "started_at", db_str(pg_getn(r, row, "started_at")),
        "finished_at", db_str(pg_getn(r, row, "finished_at")), "updated_at",
        pg_getn(r, row, "updated_at"));
}

/* ---- creating ---------------------------------------------------------------- */

int jobs_db_insert_workflow(pg_conn_t *c, const jobs_db_new_t *j, char id[37])
{
    id[0] = 0;
    char *g = json_dumps(j->graph, JSON_COMPACT);
    char *in = j->inputs ? json_dumps(j->inputs, JSON_COMPACT) : strdup("{}");
    char ver[16], credits[32];
    snprintf(ver, sizeof ver, "%d", j->workflow_version);
    snprintf(credits, sizeof credits, "%.2f", j->credits);
    const char *p[] = {j->id,
                       j->org_id,
                       j->workflow_id,
                       ver,
                       j->priority ? j->priority : "normal",
                       g,
                       in,
                       credits,
                       j->estimate_id,
                       j->created_by,
                       j->schedule_id};
    pg_result_t *r = NULL;
    int err =
        !g || !in
            ? FENTA_ENOMEM
            : db_query_row(c,
                           "INSERT INTO jobs (id, org_id, kind, workflow_id, workflow_version, "
                           "priority, priority_rank, graph, inputs, credits, estimate_id, "
                           "created_by, schedule_id) VALUES (COALESCE($1::uuid, "
                           "gen_random_uuid()), $2, 'workflow', $3, $4::int, $5, CASE $5 "
                           "WHEN 'high' THEN 0 WHEN 'low' THEN 2 ELSE 1 END, $6::jsonb, "
                           "$7::jsonb, $8::numeric, $9::uuid, $10, $11) ON CONFLICT (id) DO "
                           "NOTHING RETURNING id",
                           11, p, &r);
    free(g);
    free(in);
    if (err == FENTA_ENOTFOUND) {
        /* No row back: ON CONFLICT skipped it, inserted meanwhile by another node. */
        snprintf(id, 37, "%s", j->id ? j->id : "");
        return FENTA_EEXIST;
    }
    if (err)
        return err;
    snprintf(id, 37, "%s", pg_get(r, 0, 0));
    pg_result_free(&r);
    return 0;
}

int jobs_db_insert_render(pg_conn_t *c, const char *org_id, const char *priority,
                          const json_t *spec, const char *created_by, char id[37])
{
    id[0] = 0;
    char *s = json_dumps(spec, JSON_COMPACT);
    if (!s)
        return FENTA_ENOMEM;
    const char *p[] = {org_id, priority ? priority : "normal", s, created_by};
    int err = db_insert_id(c,
                           "INSERT INTO jobs (org_id, kind, priority, priority_rank, graph, "
                           "created_by) VALUES ($1, 'render', $2, CASE $2 WHEN 'high' THEN 0 "
                           "WHEN 'low' THEN 2 ELSE 1 END, $3::jsonb, $4) RETURNING id",
                           4, p, id);
    free(s);
    return err;
}

int jobs_db_exists(pg_conn_t *c, const char *id, const char *org_id)
{
    const char *p[] = {id, org_id};
    return db_one_row(
        c, "SELECT 1 FROM jobs WHERE id = $1::uuid AND ($2::uuid IS NULL OR org_id = $2::uuid)", 2,
        p, NULL, NULL);
}

int jobs_db_delete(pg_conn_t *c, const char *id)
{
    const char *p[] = {id};
    return db_exec_some(c, "DELETE FROM jobs WHERE id = $1", 1, p);
}

/* ---- reading and steering (the API) -------------------------------------------- */

int jobs_db_get(pg_conn_t *c, const char *id, const char *org_id, json_t **job)
{
    const char *p[] = {id, org_id};
    return db_one_row(c, "SELECT " JOB_COLS " FROM jobs WHERE id = $1 AND org_id = $2", 2, p,
                      job_row, job);
}

int jobs_db_status(pg_conn_t *c, const char *id, const char *org_id, char status[16])
{
    status[0] = 0;
    const char *p[] = {id, org_id};
    pg_result_t *r = NULL;
    int err = db_query_row(c, "SELECT status FROM jobs WHERE id = $1 AND org_id = $2", 2, p, &r);
    if (err)
        return err;
    snprintf(status, 16, "%s", pg_get(r, 0, 0));
    pg_result_free(&r);
    return 0;
}

int jobs_db_list(pg_conn_t *c, const char *org_id, const jobs_db_filter_t *f, const db_page_t *page,
                 db_page_rows_t *out)
{
    const char *p[] = {org_id, f->status, f->workflow_id, f->created_after, f->created_before};
    return db_page_run(c,
                       "SELECT " JOB_COLS " FROM jobs WHERE org_id = $1 AND ($2::text IS NULL OR "
                       "status = $2) AND ($3::uuid IS NULL OR workflow_id = $3::uuid) AND "
                       "($4::timestamptz IS NULL OR created_at > $4::timestamptz) AND "
                       "($5::timestamptz IS NULL OR created_at < $5::timestamptz) AND "
                       "($7::timestamptz IS NULL OR (created_at, id) {cmp} ($7::timestamptz, "
                       "$8::uuid)) ORDER BY created_at {dir}, id {dir} LIMIT $6::int",
                       p, 5, page, job_row, NULL, "id", out);
}

int jobs_db_claim(pg_conn_t *c, const char *id, const char *org_id, const char *const allowed[2],
                  const char *claim, char old[16], bool *claimed)
{
    old[0] = 0;
    *claimed = false;
    const char *p[] = {id, org_id, claim ? claim : "", allowed[0], allowed[1]};
    /* The old status is the row's as locked, whether or not it was claimed. */
    pg_result_t *r = NULL;
    int err = db_query_row(
        c,
        "WITH old AS (SELECT status FROM jobs WHERE id = $1 AND org_id = $2 FOR UPDATE), "
        "claimed AS (UPDATE jobs SET status = $3, updated_at = now() WHERE id = $1 AND $3 <> '' "
        "AND status IN ($4, $5) RETURNING 1) SELECT old.status, (SELECT count(*) FROM claimed) "
        "FROM old",
        5, p, &r);
    if (err)
        return err;
    snprintf(old, 16, "%s", pg_get(r, 0, 0));
    *claimed = strcmp(pg_get(r, 0, 1), "1") == 0;
    pg_result_free(&r);
    return 0;
}

int jobs_db_set_status(pg_conn_t *c, const char *id, const char *status)
{
    const char *p[] = {id, status};
    return db_exec_some(c, "UPDATE jobs SET status = $2 WHERE id = $1", 2, p);
}

/* ---- the job actor ---------------------------------------------------------------- */

int jobs_db_load(pg_conn_t *c, const char *id, jobs_db_run_t *out)
{
    *out = (jobs_db_run_t){0};
    const char *p[] = {id};
    pg_result_t *r = NULL;
    int err = db_query_row(
        c, "SELECT org_id, kind, status, graph::text, attempts FROM jobs WHERE id = $1", 1, p, &r);
    if (err)
        return err;
    snprintf(out->org_id, sizeof out->org_id, "%s", pg_get(r, 0, 0));
    snprintf(out->kind, sizeof out->kind, "%s", pg_get(r, 0, 1));
    snprintf(out->status, sizeof out->status, "%s", pg_get(r, 0, 2));
    out->graph = db_json(pg_get(r, 0, 3), json_object());
    out->attempts = atoi(pg_get(r, 0, 4));
    pg_result_free(&r);
    return out->graph ? 0 : FENTA_ENOMEM;
}

void jobs_db_run_free(jobs_db_run_t *run)
{
    if (!run)
        return;
    json_decref(run->graph);
    run->graph = NULL;
}

int jobs_db_admit(pg_conn_t *c, const char *id, const char *org_id, int default_cap)
{
    char cap[16];
    snprintf(cap, sizeof cap, "%d", default_cap);
    const char *p[] = {id, org_id, cap};
    if (pg_exec(c, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, (const char *[]){org_id}) < 0)
        return FENTA_EUNAVAILABLE;
    /* No row back: the job is not queued, or its organisation is at its cap
     * or has jobs ahead of it. */
    int err = db_one_row(
        c,
        "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, now()), "
        "updated_at = now() WHERE id = $1 AND status = 'queued' AND "
        "COALESCE((SELECT max_running_jobs FROM orgs WHERE id = $2), $3::int) - "
        "(SELECT count(*) FROM jobs WHERE org_id = $2 AND status = 'running') > "
        "(SELECT count(*) FROM jobs q, jobs me WHERE me.id = $1 AND q.org_id = $2 AND "
        "q.status = 'queued' AND (q.priority_rank, q.created_at, q.id) < (me.priority_rank, "
        "me.created_at, me.id)) RETURNING 1",
        3, p, NULL, NULL);
    return err == FENTA_ENOTFOUND ? FENTA_ELIMIT : err;
}

int jobs_db_record(pg_conn_t *c, const char *id, const jobs_db_record_t *rec, const json_t *events)
{
    char prog[32], attempts[16];
    snprintf(prog, sizeof prog, "%.1f", rec->progress);
    snprintf(attempts, sizeof attempts, "%d", rec->attempts);
    /* 15 digits: the doubles of timings and progress read back as written. */
    size_t fl = JSON_COMPACT | JSON_REAL_PRECISION(15);
    char *ns = json_dumps(rec->nodes, fl);
    char *arts = json_dumps(rec->artifacts, fl);
    char *es = rec->error ? json_dumps(rec->error, fl) : NULL;
    char *ev = json_dumps(events, fl);
    const char *p[] = {id,   rec->status, prog,     rec->current_node, ns,
                       arts, es,          attempts, rec->org_id,       ev};
    int rc = ns && arts && ev && (es || !rec->error) ? 0 : FENTA_ENOMEM;
    if (rc == 0) {
        int n = pg_exec(
            c,
            "WITH u AS (UPDATE jobs SET status = $2, progress = $3::real, current_node = $4, "
            "nodes = $5::jsonb, artifacts = $6::jsonb, error = $7::jsonb, attempts = $8::int, "
            "started_at = CASE WHEN $2 = 'running' THEN COALESCE(started_at, now()) ELSE "
            "started_at END, finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') "
            "THEN COALESCE(finished_at, now()) ELSE NULL END, updated_at = now() WHERE id = $1 "
            "RETURNING 1), e AS (INSERT INTO job_events (job_id, org_id, seq, type, data) SELECT "
            "$1, $9, v.seq, v.type, v.data FROM jsonb_to_recordset($10::jsonb) AS v(seq int, "
            "type text, data jsonb) ON CONFLICT (job_id, seq) DO NOTHING RETURNING 1) SELECT "
            "(SELECT count(*) FROM u), (SELECT count(*) FROM e)",
            10, p);
        rc = n < 0 ? n : 0;
    }
    free(ns);
    free(arts);
    free(es);
    free(ev);
    return rc;
}

int jobs_db_next_queued(pg_conn_t *c, const char *org_id, const char *except_id, char (*ids)[37],
                        int max, int *n)
{
    *n = 0;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", max);
    const char *p[] = {org_id, except_id, lim};
    int err = 0;
    pg_result_t *r = pg_query(c,
                              "SELECT id FROM jobs WHERE org_id = $1 AND status = 'queued' "
                              "AND id <> $2 ORDER BY priority_rank, created_at, id LIMIT $3::int",
                              3, p, &err);
    if (!r)
        return err;
    for (int i = 0; i < pg_nrows(r) && i < max; i++)
        snprintf(ids[(*n)++], 37, "%s", pg_get(r, i, 0));
    pg_result_free(&r);
    return 0;
}

int jobs_db_unfinished(pg_conn_t *c, json_t **jobs)
{
    *jobs = NULL;
    int err = 0;
    pg_result_t *r = pg_query(
        c, "SELECT id, status FROM jobs WHERE status IN ('queued', 'running')", 0, NULL, &err);
    if (!r)
        return err;
    json_t *a = json_array();
    int rc = a ? 0 : FENTA_ENOMEM;
    for (int i = 0; i < pg_nrows(r) && rc == 0; i++)
        rc = json_array_append_new(
                 a, json_pack("{ss ss}", "id", pg_get(r, i, 0), "status", pg_get(r, i, 1))) == 0
                 ? 0
                 : FENTA_ENOMEM;
    pg_result_free(&r);
    if (rc)
        json_decref(a);
    else
        *jobs = a;
    return rc;
}
