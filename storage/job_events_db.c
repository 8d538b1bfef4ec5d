/* job_events_db.c - reading job_events; see job_events_db.h. */
#include "storage/job_events_db.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rows (id, type, data) of r into *out. */
static int events_of(const pg_result_t *r, job_events_db_rows_t *out)
{
    int n = pg_nrows(r);
    out->v = n ? calloc((size_t)n, sizeof *out->v) : NULL;
    if (n && !out->v)
        return FENTA_ENOMEM;
    for (int i = 0; i < n; i++) {
        job_events_db_row_t *e = &out->v[out->n++];
        e->id = atoll(pg_get(r, i, 0));
        e->type = strdup(pg_get(r, i, 1));
        e->data = strdup(pg_get(r, i, 2));
        if (!e->type || !e->data)
            return FENTA_ENOMEM;
    }
    return 0;
}

/* Runs a query of events (columns id, type, data) into *out. */
static int query_events(pg_conn_t *c, const char *sql, int nparams, const char *const *p,
                        job_events_db_rows_t *out)
{
    *out = (job_events_db_rows_t){0};
    int err = 0;
    pg_result_t *r = pg_query(c, sql, nparams, p, &err);
    if (!r)
        return err;
    int rc = events_of(r, out);
    pg_result_free(&r);
    if (rc)
        job_events_db_free(out);
    return rc;
}

int job_events_db_after(pg_conn_t *c, const char *org_id, const char *job_id, long long after_id,
                        int limit, job_events_db_rows_t *out)
{
    char after[24], lim[16];
    snprintf(after, sizeof after, "%lld", after_id);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {org_id, job_id, after, lim};
    return query_events(c,
                        "SELECT id, type, data::text FROM job_events WHERE org_id = $1 AND "
                        "($2::uuid IS NULL OR job_id = $2::uuid) AND id > $3::bigint ORDER BY id "
                        "LIMIT $4::int",
                        4, p, out);
}

int job_events_db_get(pg_conn_t *c, long long id, job_events_db_rows_t *out)
{
    char idt[24];
    snprintf(idt, sizeof idt, "%lld", id);
    const char *p[] = {idt};
    int rc =
        query_events(c, "SELECT id, type, data::text FROM job_events WHERE id = $1", 1, p, out);
    if (rc == 0 && out->n != 1) {
        job_events_db_free(out);
        rc = FENTA_ENOTFOUND;
    }
    return rc;
}

int job_events_db_last_id(pg_conn_t *c, long long *id)
{
    *id = 0;
    int err = 0;
    pg_result_t *r = pg_query(c, "SELECT COALESCE(max(id), 0) FROM job_events", 0, NULL, &err);
    if (!r)
        return err;
    if (pg_nrows(r) == 1)
        *id = atoll(pg_get(r, 0, 0));
    pg_result_free(&r);
    return 0;
}

int job_events_db_stored_at(pg_conn_t *c, const char *job_id, const long long *seqs, size_t n,
                            int64_t *at)
{
    if (n == 0)
        return 0;
    long long lo = seqs[0], hi = seqs[0];
    for (size_t i = 1; i < n; i++) {
        lo = seqs[i] < lo ? seqs[i] : lo;
        hi = seqs[i] > hi ? seqs[i] : hi;
    }
    char los[24], his[24];
    snprintf(los, sizeof los, "%lld", lo);
    snprintf(his, sizeof his, "%lld", hi);
    const char *p[] = {job_id, los, his};
    int rc = 0;
    pg_result_t *r = pg_query(c,
                              "SELECT seq, floor(extract(epoch FROM created_at) * 1000)::bigint "
                              "FROM job_events WHERE job_id = $1 AND seq BETWEEN $2::int AND "
                              "$3::int",
                              3, p, &rc);
    if (!r)
        return rc;
    for (size_t i = 0; i < n; i++) {
        at[i] = 0;
        for (int k = 0; k < pg_nrows(r) && !at[i]; k++)
            if (atoll(pg_get(r, k, 0)) == seqs[i])
                at[i] = atoll(pg_get(r, k, 1));
        if (!at[i])
            rc = FENTA_ENOTFOUND;
    }
    pg_result_free(&r);
    return rc;
}

void job_events_db_free(job_events_db_rows_t *events)
{
    if (!events)
        return;
    for (size_t i = 0; i < events->n; i++) {
        free(events->v[i].type);
        free(events->v[i].data);
    }
    free(events->v);
    *events = (job_events_db_rows_t){0};
}
