/* server.h - the HTTP server: h2o event loops, a worker pool for handlers,
 * routes declared once as a table, and the built-in operational endpoints.
 *
 * Protocols: HTTP/1.1 with keep-alive, HTTP/2 cleartext (prior knowledge and
 * `Upgrade: h2c`), and TLS with ALPN h2 and http/1.1 when a certificate and
 * key are configured.
 *
 * Execution model. Each event-loop thread runs its own h2o loop and accepts
 * from one shared listening socket (each loop holds a dup of it, the way the
 * h2o server does: no SO_REUSEPORT port races, any loop takes any
 * connection). A request is routed on its loop; a route flagged
 * HTTP_ROUTE_INLINE runs its handler right there (only for trivial, never
 * blocking handlers), every other one is handed, with a private copy of the
 * request, to the worker pool where the `before` hook and then the handler
 * run and MAY BLOCK (database calls). The response they build goes back to
 * the request's own loop, which sends it. A client that disconnects while
 * its handler runs only marks the job abandoned: the worker never touches
 * h2o's memory, and the response is dropped when it comes back.
 *
 * Request bodies. h2o 2.2 reads a whole body before any of our code runs
 * and has no streaming API, so it is given one generous limit,
 * max_upload_part (a request above it never reaches us: see "Bodies above
 * max_upload_part" below), and each route's own limit (http_route_t
 * max_body, else the config's max_body) is enforced here once the route is
 * known: 413 {"error":{"code":"payload_too_large",...}} over HTTP/1.1 and
 * HTTP/2 alike, before the body is copied or any hook runs.
 *
 * What bodies cost. A body h2o is still reading lives in a buffer of its
 * own: in memory up to 2 MiB, and in an unlinked temporary file under /tmp
 * (mmapped, so page cache that the kernel may write back, not heap) beyond
 * that (HTTP_BODY_SPILL_BYTES, set process-wide for libh2o). An HTTP/1.1
 * connection reads one body at a time; an HTTP/2 connection may read up to
 * 100 at once (h2o 2.2 advertises SETTINGS_MAX_CONCURRENT_STREAMS 100 and
 * resets streams beyond it), each up to max_upload_part. The server holds at
 * most max_connections connections (more are closed on accept), so at most
 * max_connections x 100 bodies at once, each holding at most 2 MiB of heap.
 *
 * Bodies above max_upload_part are refused by h2o itself. HTTP/1.1: with a
 * Content-Length above it, 413 (in our JSON shape) before the body is read,
 * then the connection closes; chunked, 413 once the limit is passed.
 * HTTP/2: the stream is reset with RST_STREAM(REFUSED_STREAM) once its DATA
 * passes the limit; no response, and clients such as curl take
 * REFUSED_STREAM as "not processed, retry" and send the body again (curl:
 * up to 5 more times).
 *
 * Every response carries X-Request-Id; errors are always
 * {"error":{"code","message","details"}} (h2o's own protocol errors such as
 * 413 are rewritten into that shape too). One JSON access-log line per
 * request; metrics fenta_http_requests_total{route,method,status} and
 * fenta_http_request_seconds{route}, route being the pattern.
 *
 * Threads: http_server_new/route/start/stop/destroy are called from one
 * controlling thread. Handlers run on workers (or loops for INLINE). */
#ifndef FENTA_HTTP_SERVER_H
#define FENTA_HTTP_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 64 MiB, the largest upload part, plus room for a part's envelope. */
#define HTTP_DEFAULT_MAX_UPLOAD_PART ((size_t)64 * 1024 * 1024 + 64 * 1024)
/* A body h2o reads spills from the heap to a temporary file past this. */
#define HTTP_BODY_SPILL_BYTES ((size_t)4 * 1024 * 1024)

typedef struct http_server http_server_t; /* opaque */
typedef struct http_req http_req_t;       /* opaque; see http/request.h */
typedef struct http_route http_route_t;

/* A handler builds the response with http_respond_* (http/request.h). One
 * that returns without responding gets a 500 and an error log line. */
typedef void (*http_handler_fn)(http_req_t *req);

enum {
    /* Run on the event loop, never on a worker: only for handlers that
     * cannot block (no I/O, no locks held long). The `before` hook is not
     * run for INLINE routes. */
    HTTP_ROUTE_INLINE = 1u << 0,
    /* The body must be JSON: a request whose Content-Type is not
     * application/json (or +json) gets 415 before any code of the route runs. */
    HTTP_ROUTE_JSON = 1u << 1,
    /* Skip the config's `before` hook (public endpoints). */
    HTTP_ROUTE_NO_HOOK = 1u << 2,
    /* The pattern's last segment, a {param}, takes the rest of the path: one
     * or more segments (the first not empty), each percent-decoded, joined
     * with '/'. For names that hold slashes (object keys); the pattern stays
     * what the API document says ("/v1/objects/{key}"). A route of the same
     * pattern without the flag is more specific. */
    HTTP_ROUTE_TAIL = 1u << 3,
};

/* One row of the route table. pattern: "/v1/orgs/{id}/members/{uid}":
 * literal segments match exactly (after percent-decoding the request path),
 * {name} segments match any one non-empty segment and are read with
 * http_param(req, "name"). When several patterns match a path the most
 * specific wins (a literal beats a parameter at the first segment where they
 * differ); then the method decides, 405 with Allow if none fits. HEAD is
 * served by the GET route when there is no HEAD route. A path deeper than
 * every pattern matches none (404), unless a HTTP_ROUTE_TAIL route takes it. */
struct http_route {
    const char *method;      /* "GET", "POST", ...: case-sensitive */
    const char *pattern;     /* see above; copied by http_server_route */
    http_handler_fn handler; /* never NULL */
    unsigned flags;          /* HTTP_ROUTE_* */
    const char *name;        /* operation name for logs (may be NULL) */
    const void *data;        /* the integrator's (auth, limits, schema), borrowed */
    size_t max_body;         /* request body bytes; 0 = the config's max_body; larger -> 413 */
};

typedef struct {
    const char *listen; /* "host:port", "[::1]:port"; port 0 = ephemeral; NULL = 127.0.0.1:8080 */
    int loops;          /* event-loop threads; 0 = online cores */
    int workers;        /* handler threads; 0 = 8 */
    size_t max_body;    /* request body bytes of a route without its own; 0 = 1 MiB; -> 413 */
    size_t max_upload_part; /* h2o's own body limit, the largest any route may take;
                             * 0 = HTTP_DEFAULT_MAX_UPLOAD_PART; see "Bodies above" */
    size_t max_connections; /* open connections; 0 = 4096; more are closed on accept */
    size_t max_headers;     /* bytes of all request header names+values; 0 = 32 KiB; -> 431 */
    size_t max_queue;       /* requests waiting for a worker; 0 = 4096; beyond -> 503 */
    int stop_timeout_ms;    /* http_server_stop waits this long for in-flight work; 0 = 10000 */
    const char *tls_cert;   /* PEM certificate chain path; with tls_key enables TLS */
    const char *tls_key;    /* PEM private key path */
    const char *openapi;    /* file served at GET /openapi.json; NULL or missing -> 404 */
    void *app;              /* handed to handlers through http_app(req) */
    /* Runs on the worker before every non-INLINE, non-NO_HOOK handler (auth,
     * rate limits, validation). If it responded, or returns nonzero, the
     * handler is skipped (nonzero without a response gives a 500). */
    int (*before)(http_req_t *req, const http_route_t *route);
    /* GET /readyz answers 200 while this returns true (503 otherwise); runs on
     * a worker. NULL: ready while the server runs. */
    bool (*ready)(void *app);
} http_config_t;

/* A server bound (and listening) on cfg->listen; loops and workers start in
 * http_server_start. cfg is copied (strings too); cfg->app is borrowed. NULL
 * on failure with *err (may be NULL) set: FENTA_EINVAL for a bad address or
 * config (max_body above max_upload_part too), FENTA_EIO when the address cannot be bound or TLS
 * files do not load, FENTA_ENOMEM. */
http_server_t *http_server_new(const http_config_t *cfg, int *err);
/* Adds n routes (copied) before http_server_start. 0, FENTA_EINVAL for a
 * malformed route (bad method or pattern, NULL handler, a max_body above the
 * config's max_upload_part; nothing is added),
 * FENTA_EEXIST for a method+pattern already routed, FENTA_ESTOPPED after start. */
int http_server_route(http_server_t *server, const http_route_t *routes, size_t n);
/* Adds GET /healthz (INLINE, always 200 {"status":"ok"}), GET /readyz,
 * GET /metrics (Prometheus text 0.0.4) and GET /openapi.json; all NO_HOOK. */
int http_server_route_builtins(http_server_t *server);
/* The bound TCP port (useful with port 0). */
uint16_t http_server_port(const http_server_t *server);
/* Starts the loops and workers; the server accepts when this returns 0.
 * FENTA_ENOMEM / FENTA_EIO, or FENTA_ESTOPPED if already started. Ignores
 * SIGPIPE process-wide if it still has its default action (h2o writes to
 * sockets that peers may have closed). */
int http_server_start(http_server_t *server);
/* Stops accepting, answers new requests 503, waits up to stop_timeout_ms
 * for in-flight handlers, closes connections and joins every thread. A
 * handler that never returns blocks this (threads cannot be killed). Safe to
 * call twice or on a server never started. */
void http_server_stop(http_server_t *server);
/* Stops if needed and frees; NULL-safe; NULLs *server_p. */
void http_server_destroy(http_server_t **server_p);

#endif
