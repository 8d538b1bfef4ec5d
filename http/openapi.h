/* openapi.h - the OpenAPI 3.1 document, built from schemas/api.json (routes,
 * permissions) and schemas/models.json (the JSON Schemas requests are
 * validated with), so the document and the server cannot drift apart. */
#ifndef FENTA_OPENAPI_H
#define FENTA_OPENAPI_H
#include <jansson.h>

/* Builds the document; the result is the caller's. NULL (and a message in
 * errbuf) when api or models is malformed. */
json_t *openapi_build(const json_t *api, const json_t *models, char *errbuf, size_t errlen);

#endif
