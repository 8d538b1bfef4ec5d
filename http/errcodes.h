/* errcodes.h - the API's error codes: schemas/errors.json, each code with
 * its one HTTP status and a sentence of meaning, loaded once at start and
 * read-only afterwards (so any thread may look a code up without a lock).
 * The API application answers errors by code (app__fail) and takes the
 * status from here; the OpenAPI document lists the codes per operation. */
#ifndef FENTA_ERRCODES_H
#define FENTA_ERRCODES_H
#include <jansson.h>

typedef struct errcodes errcodes_t;

/* The table of doc (errors.json, borrowed during the call: everything is
 * copied). NULL with a message in errbuf when doc is not a table of codes
 * ([a-z_]+) each with a status from 400 to 599 and a meaning. */
errcodes_t *errcodes_new(const json_t *doc, char *errbuf, size_t errlen);
void errcodes_destroy(errcodes_t **self_p);
/* The status of code; 0 when the table does not have it (a bug of ours:
 * tests/http/test_errcodes.c checks every code the sources name). */
int errcodes_status(const errcodes_t *self, const char *code);
/* The meaning of code (borrowed for the table's lifetime); NULL when unknown. */
const char *errcodes_meaning(const errcodes_t *self, const char *code);
/* The number of codes, and the i-th in code order (borrowed). */
size_t errcodes_count(const errcodes_t *self);
const char *errcodes_code(const errcodes_t *self, size_t i);

#endif
