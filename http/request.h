/* request.h - what a handler sees: the request, read through an opaque
 * handle, and the calls that build its response.
 *
 * The handle is a private copy of the request made on the event loop (path,
 * decoded path and query parameters, headers, body), so a handler on a worker
 * may block for as long as it needs and never races the connection. It is
 * used by one thread at a time: the worker (or loop, for INLINE routes) that
 * runs the route. Every `const char *` returned is borrowed from the request
 * and lives until the response is sent; copy what must outlive it.
 *
 * A response is set once: status, body and headers are kept in the handle and
 * sent by the request's event loop after the handler returns. A second
 * http_respond_* is refused (FENTA_EEXIST) and logged. */
#ifndef FENTA_HTTP_REQUEST_H
#define FENTA_HTTP_REQUEST_H
#include "http/server.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- the request ----------------------------------------------------------- */

const char *http_method(const http_req_t *req); /* "GET", ... */
/* The path as sent, without the query string (still percent-encoded). */
const char *http_path(const http_req_t *req);
/* The {name} segment of the matched pattern, percent-decoded; NULL if the
 * pattern has no such parameter. Always valid UTF-8 without control bytes. */
const char *http_param(const http_req_t *req, const char *name);
/* The first query parameter called name, decoded ('+' and %XX); "" for
 * `?flag` or `?flag=`; NULL when absent. Always valid UTF-8 without NUL. */
const char *http_query(const http_req_t *req, const char *name);
/* The first request header called name (case-insensitive); NULL if absent. */
const char *http_header(const http_req_t *req, const char *name);
/* The body (NULL and 0 when empty); never larger than the configured limit. */
const void *http_body(const http_req_t *req, size_t *len);
/* The body parsed as JSON (an object or array; duplicate keys refused),
 * parsed once and kept: the reference is borrowed from the request (incref
 * what you keep). NULL when the body is empty or malformed, with *err (may be
 * NULL) set to a message for the client. */
json_t *http_json_body(http_req_t *req, const char **err);
/* 0 when Content-Type is application/json (parameters allowed, also
 * application/<x>+json); otherwise responds 415 and returns FENTA_EINVAL. */
int http_require_json(http_req_t *req);
/* http_require_json + http_json_body, answering 415 or 400 itself: the body
 * (borrowed), or NULL when the response has been sent. */
json_t *http_read_json(http_req_t *req);
const char *http_client_ip(const http_req_t *req); /* "127.0.0.1", "::1" */
const char *http_request_id(const http_req_t *req);
const char *http_protocol(const http_req_t *req); /* "HTTP/1.1", "HTTP/2" */
bool http_is_tls(const http_req_t *req);
void *http_app(const http_req_t *req); /* http_config_t.app */
const http_route_t *http_route(const http_req_t *req);

/* Per-request data for the integrator (the authenticated user, ...): kept
 * until the request ends, then free_fn(data) if free_fn is not NULL. Setting
 * it again frees the previous value first. */
void http_set_data(http_req_t *req, void *data, void (*free_fn)(void *));
void *http_data(const http_req_t *req);
/* Adds key=value (copied) to this request's access-log line, e.g. org_id,
 * user_id, job_id. At most 8 per request; FENTA_ETOOBIG beyond. */
int http_log_field(http_req_t *req, const char *key, const char *value);

/* ---- the response ------------------------------------------------------------ */

/* JSON body (stolen, even on failure) with Content-Type: application/json.
 * 0; FENTA_EEXIST if already responded; FENTA_EINVAL for a status outside
 * 200..599 (1xx are the protocol's) or a NULL body (a 500 is sent instead); FENTA_ENOMEM. */
int http_respond_json(http_req_t *req, int status, json_t *body);
/* {"error":{"code":code,"message":message,"details":details|null}};
 * details is stolen and may be NULL. */
int http_respond_error(http_req_t *req, int status, const char *code, const char *message,
                       json_t *details);
/* Raw bytes (copied) with the given Content-Type (may be NULL: none). */
int http_respond_raw(http_req_t *req, int status, const char *content_type, const void *bytes,
                     size_t len);
/* A response header (name lower-cased, both copied); may be called before or
 * after respond. FENTA_EINVAL for a name that is not an HTTP token or a value
 * with CR, LF or NUL (no response splitting); FENTA_ETOOBIG past 64 headers. */
int http_add_header(http_req_t *req, const char *name, const char *value);
bool http_responded(const http_req_t *req);
int http_status(const http_req_t *req); /* the response status, 0 until responded */

#endif
