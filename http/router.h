/* router.h - the route table compiled for matching (internal to http/).
 *
 * Patterns are split into segments once; a request path, already split and
 * percent-decoded by the caller, is matched segment by segment. Among the
 * patterns that match, the most specific wins (a literal beats a {param} at
 * the first position where two patterns differ); then the method picks the
 * route among those with that shape, HEAD falling back to GET, and when none
 * fits the answer is 405 with the shape's methods for Allow. A route flagged
 * HTTP_ROUTE_TAIL matches paths of its length or longer; the caller joins
 * the segments from its last {param} on (router_param gives the position). */
#ifndef FENTA_HTTP_ROUTER_H
#define FENTA_HTTP_ROUTER_H
#include "http/server.h"
#include <stddef.h>

#define ROUTER_MAX_SEGS 32 /* segments of a pattern; a deeper path matches only a tail route */

typedef struct router router_t;

typedef struct {
    int status;      /* 0 matched, 404 no pattern, 405 no method */
    size_t index;    /* the matched route (status 0) */
    char allow[256]; /* status 405: "GET, HEAD, POST" */
} router_match_t;

/* An empty table; NULL when out of memory. */
router_t *router_new(void);
/* NULL-safe; NULLs *r_p. */
void router_destroy(router_t **r_p);
/* Appends n routes (copied), all or nothing: 0, FENTA_EINVAL (bad method,
 * pattern or NULL handler), FENTA_EEXIST (method+pattern present),
 * FENTA_ENOMEM. */
int router_add(router_t *r, const http_route_t *routes, size_t n);
size_t router_count(const router_t *r);
/* The i-th route as stored (pattern and strings owned by the router). */
const http_route_t *router_route(const router_t *r, size_t i);
/* Matches method and the decoded segments of a path. Returns out->status. */
int router_match(const router_t *r, const char *method, const char *const *segs, size_t nsegs,
                 router_match_t *out);
/* The k-th {param} of route i: its name, and its segment index in *pos. */
size_t router_nparams(const router_t *r, size_t i);
const char *router_param(const router_t *r, size_t i, size_t k, size_t *pos);

#endif
