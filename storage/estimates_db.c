/* estimates_db.c - the estimates table; see estimates_db.h. */
#include "storage/estimates_db.h"
#include "runtime/error.h"
#include "storage/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int estimates_db_create(pg_conn_t *c, const char *org_id, const char *workflow_id, int version,
                        double credits, const json_t *detail, char id[37], char expires_at[40])
{
    id[0] = expires_at[0] = 0;
    char *d = json_dumps(detail, JSON_COMPACT);
    if (!d)
        return FENTA_ENOMEM;
    char ver[16], cr[32];
    snprintf(ver, sizeof ver, "%d", version);
    snprintf(cr, sizeof cr, "%.2f", credits);
    const char *p[] = {org_id, workflow_id, ver, cr, d};
    pg_result_t *r = NULL;
    int err = db_insert_row(
        c,
        "INSERT INTO estimates (org_id, workflow_id, version, credits, "
        "detail, expires_at) VALUES ($1, $2, $3::int, $4::numeric, "
        "$5::jsonb, now() + interval '1 hour') RETURNING id, " DB_TS("expires_at") " AS expires_at",
        5, p, &r);
    free(d);
    if (err)
        return err;
    snprintf(id, 37, "%s", pg_get(r, 0, 0));
    snprintf(expires_at, 40, "%s", pg_get(r, 0, 1));
    pg_result_free(&r);
    return 0;
}

int estimates_db_get(pg_conn_t *c, const char *id, const char *workflow_id, const char *org_id,
                     estimates_db_row_t *out)
{
    *out = (estimates_db_row_t){0};
    const char *p[] = {id, workflow_id, org_id};
    pg_result_t *r = NULL;
    int err = db_query_row(c,
                           "SELECT version, credits, expires_at < now(), detail->'inputs' FROM "
                           "estimates WHERE id = $1 AND workflow_id = $2 AND org_id = $3",
                           3, p, &r);
    if (err)
        return err;
    out->version = atoi(pg_get(r, 0, 0));
    out->credits = atof(pg_get(r, 0, 1));
    out->expired = strcmp(pg_get(r, 0, 2), "t") == 0;
    out->inputs = db_json(pg_get(r, 0, 3), NULL);
    pg_result_free(&r);
    return 0;
}

void estimates_db_row_free(estimates_db_row_t *row)
{
    if (!row)
        return;
    json_decref(row->inputs);
    row->inputs = NULL;
}
