/* estimates_db.h - the owner of the estimates table: what a run of one
 * workflow version will cost, kept an hour so a run can name it and be
 * charged no more than its client saw. FENTA_E* codes only. */
#ifndef FENTA_ESTIMATES_DB_H
#define FENTA_ESTIMATES_DB_H
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>

/* An estimate as a run reads it. */
typedef struct {
    int version;    /* the workflow version it priced */
    double credits; /* what the client agreed to */
    bool expired;   /* past its hour */
    json_t *inputs; /* the inputs it priced (owned; NULL when none were kept) */
} estimates_db_row_t;

/* Records an estimate of credits for workflow_id at version, with detail
 * (the estimate as answered, with the inputs it priced); its id and
 * expiry (RFC 3339) into id and expires_at. */
int estimates_db_create(pg_conn_t *c, const char *org_id, const char *workflow_id, int version,
                        double credits, const json_t *detail, char id[37], char expires_at[40]);
/* Estimate id of workflow_id in org_id into *out (free with
 * estimates_db_row_free), expired ones included; FENTA_ENOTFOUND. */
int estimates_db_get(pg_conn_t *c, const char *id, const char *workflow_id, const char *org_id,
                     estimates_db_row_t *out);
void estimates_db_row_free(estimates_db_row_t *row);

#endif
