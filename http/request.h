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
 * http_respond_* is refused (FENTA_EEXIST) and logged.
 *
 * A body that lives in a file (object downloads) is declared with
 * http_respond_file and read by the loop as the client takes it.
 *
 * A streamed response (Server-Sent Events, long polls) is declared the same
 * way, but its body is pushed afterwards by a producer that holds an
 * http_stream_t, from any thread, long after the handler returned (the
 * handler must not keep the worker: it hands the stream to whatever
 * publishes the events and returns). */
#ifndef FENTA_HTTP_REQUEST_H
#define FENTA_HTTP_REQUEST_H
#include "http/server.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* A body read from a file: length bytes of fd from offset, with
 * Content-Length: length and the given Content-Type (copied; may be NULL).
 * The request's event loop reads it one 64 KiB chunk at a time, each when
 * the client has taken the last (h2o's proceed), so a download of any size
 * holds one chunk of memory and a slow client stalls only itself. A HEAD
 * request gets the headers alone. fd is the request's from this call on,
 * also on failure: the server closes it when the response is over or was
 * never sent (client gone), so open the file before and hand it over; keep
 * no copy. A file that ends before offset + length cuts the response short
 * (logged): the headers are gone by then. status 200..599 but 204 and 304.
 * 0; FENTA_EEXIST (already responded), FENTA_EINVAL (bad status or fd: a 500
 * is sent instead), FENTA_ENOMEM (500). */
int http_respond_file(http_req_t *req, int status, const char *content_type, int fd,
                      uint64_t offset, uint64_t length);

/* ---- streamed responses ------------------------------------------------------ */

typedef struct http_stream http_stream_t; /* opaque, reference counted, thread-safe */

/* Declares a streamed response: status (200..599 but 204 and 304) and
 * Content-Type (copied; may be NULL), no Content-Length (HTTP/1.1 chunked,
 * HTTP/2 DATA frames). Headers added with http_add_header before or after
 * still go out (until the handler returns); `cache-control: no-cache` and
 * `x-accel-buffering: no` are added unless the handler set them. The
 * headers leave when the handler has returned, with whatever was written by
 * then. Returns the producer's reference (release it with
 * http_stream_release), or NULL: already responded (FENTA_EEXIST, logged),
 * a bad status (a 500 is sent instead), out of memory (500). After the
 * handler returns the producer must not touch req, only the stream. */
http_stream_t *http_respond_stream(http_req_t *req, int status, const char *content_type);
/* Queues a copy of data[0..len) and wakes the request's loop to send it;
 * never blocks on the network (writes made while the loop is still sending
 * are coalesced). 0; FENTA_ESTOPPED once the stream is closed (the client
 * went away, it was ended, the server is stopping); FENTA_ETOOBIG when more
 * than 1 MiB would be queued unsent: the client reads too slowly, and the
 * stream is closed so memory stays bounded (what was queued still goes
 * out); FENTA_ENOMEM (nothing queued, the stream stays open); FENTA_EINVAL.
 * Over HTTP/1.1 a client that left is only noticed when a write reaches its
 * socket: send heartbeats (an SSE comment line) to find out. */
int http_stream_write(http_stream_t *s, const void *data, size_t len);
/* True once the stream is closed (see http_stream_write); NULL counts as closed. */
bool http_stream_closed(http_stream_t *s);
/* Ends the response once what is queued has been sent; later writes fail.
 * Idempotent; NULL-safe. */
void http_stream_end(http_stream_t *s);
/* Drops the producer's reference, ending the stream if it was not; NULL-safe,
 * NULLs *s_p. The stream's memory goes with its last reference (the loop
 * holds one while it sends), so this is safe at any time, also after the
 * server was destroyed. */
void http_stream_release(http_stream_t **s_p);
/* cb(arg) is called once when the server is done with the stream for any
 * reason (the final chunk went out, the client went away, the server
 * stopped, the request never got its response), on the request's event-loop
 * thread: keep it short, never block, never wait for the producer. It may
 * call http_stream_* (release included). Set it right after
 * http_respond_stream; if the stream is already done, cb runs at once on the
 * calling thread. A second call replaces the first. */
void http_stream_on_close(http_stream_t *s, void (*cb)(void *arg), void *arg);

#endif
