/* openapi.h - the OpenAPI 3.1 document, built from schemas/api.json (routes,
 * permissions, the error codes of each route), schemas/models.json (the
 * JSON Schemas requests are validated with) and schemas/errors.json (each
 * code's status and meaning), so the document and the server cannot drift
 * apart. */
#ifndef FENTA_OPENAPI_H
#define FENTA_OPENAPI_H
#include <jansson.h>

/* Builds the document; the result is the caller's. NULL (and a message in
 * errbuf) when api, models or errors is malformed, or a route names a
 * model or an error code they do not have. */
json_t *openapi_build(const json_t *api, const json_t *models, const json_t *errors, char *errbuf,
                      size_t errlen);

#endif
