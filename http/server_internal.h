/* server_internal.h - what server.c, request.c and router.c share: the
 * request handle's layout, its arena, and the decoding helpers the event loop
 * uses to build it. Nothing here is for handlers. */
#ifndef FENTA_HTTP_SERVER_INTERNAL_H
#define FENTA_HTTP_SERVER_INTERNAL_H
#include "http/request.h"
#include "http/server.h"
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_h2o_conn_t; /* h2o_conn_t, without <h2o.h> here */

/* The peer's address as text into buf: numeric, an IPv4-mapped IPv6 address
 * as IPv4, "-" when unknown. The access log and IP-bound object URLs both
 * use this form, so a URL signed for the address the log shows matches. */
void http__peer_ip(struct st_h2o_conn_t *conn, char *buf, size_t cap);

#define HTTP_LOG_FIELDS_MAX 8
#define HTTP_RES_HEADERS_MAX 64

typedef struct {
    const char *name;  /* NUL-terminated */
    const char *value; /* NUL-terminated */
} http__kv_t;

/* A bump allocator: everything a request copies lives in its chunks and goes
 * in one free at the end, so building the handle costs a few mallocs. */
typedef struct http__chunk http__chunk_t;
typedef struct {
    http__chunk_t *head; /* newest chunk first */
} http__arena_t;

struct http_req {
    /* input: filled on the event loop, read-only once the handler runs */
    http_server_t *server;     /* for the built-in endpoints */
    const http_route_t *route; /* the matched route (the server's copy) */
    void *app;                 /* config app pointer */
    const char *method;
    const char *path;       /* raw, without the query */
    const char *request_id; /* sane client value or generated */
    const char *ip;
    const char *protocol;
    bool tls;
    http__kv_t *headers; /* names lower-case as h2o gives them */
    size_t nheaders;
    http__kv_t *params; /* path parameters, decoded */
    size_t nparams;
    http__kv_t *query; /* query parameters, decoded */
    size_t nquery;
    const char *body; /* NUL-terminated copy, or NULL */
    size_t body_len;

    /* lazily parsed JSON body */
    bool json_done;       /* parse attempted */
    json_t *json;         /* owned by the request */
    const char *json_err; /* arena string when json == NULL */

    /* the integrator's per-request values */
    void *data;
    void (*data_free)(void *);
    http__kv_t log_fields[HTTP_LOG_FIELDS_MAX];
    size_t nlog_fields;

    /* the response */
    int status;               /* 0 until responded */
    const char *content_type; /* static or arena; NULL for none */
    char *res_body;           /* malloc'd; NULL when empty */
    size_t res_body_len;
    http__kv_t res_headers[HTTP_RES_HEADERS_MAX];
    size_t nres_headers;
    http_stream_t *stream; /* a streamed response: the handle's reference until the loop takes it */
    bool has_file;         /* a body sent from file_fd (http_respond_file) */
    int file_fd;           /* owned while has_file: the loop takes it, or the release closes it */
    uint64_t file_off;     /* the body's first byte in the file */
    uint64_t file_len;     /* the body's length: Content-Length */

    /* set by the loop when the client went away; a worker that sees it
     * before starting skips the handler (nothing will read the answer) */
    atomic_bool abandoned;

    http__arena_t arena;
};

/* For the built-in endpoints (builtin.c): the server's effective config
 * (defaults filled in) and whether http_server_stop has begun. */
const http_config_t *http__server_config(const http_server_t *s);
bool http__server_stopping(const http_server_t *s);

/* Arena allocation for req; NULL when out of memory. */
void *http__alloc(http_req_t *req, size_t n);
/* A NUL-terminated copy of s[0..n) in the arena; NULL when out of memory. */
char *http__strndup(http_req_t *req, const char *s, size_t n);
/* Frees what the request owns (JSON, data, response body, arena); the
 * struct itself is the caller's. */
void http__req_release(http_req_t *req);

/* Percent-decodes s[0..n) into out (room for n + 1 bytes, NUL-terminated);
 * plus_is_space for query strings. Returns the decoded length, or -1 for a
 * broken escape, invalid UTF-8, a NUL, or (when no_ctl) any control byte. */
long http__decode(const char *s, size_t n, char *out, bool plus_is_space, bool no_ctl);
/* Parses a raw query string (without '?') into req->query. 0, FENTA_EINVAL
 * (bad encoding: the client's fault), FENTA_ETOOBIG (over 64 parameters),
 * FENTA_ENOMEM. */
int http__parse_query(http_req_t *req, const char *q, size_t n);
/* True for a sane client X-Request-Id: 1..128 of [A-Za-z0-9._-]. */
bool http__request_id_ok(const char *s, size_t n);
/* True when the Content-Type value names JSON. */
bool http__is_json_type(const char *v, size_t n);
/* The reason phrase for status ("Unknown" when unlisted). */
const char *http__reason(int status);
/* Sets a 500 when the handler left no response (logs loudly). */
void http__ensure_response(http_req_t *req);

/* A new open stream with one reference (http_respond_stream gives it to the
 * request handle and takes a second one for the producer), or NULL. */
http_stream_t *http__stream_new(void);
/* Another reference to s; returns s. */
http_stream_t *http__stream_ref(http_stream_t *s);
/* Drops the request handle's reference of a stream that never reached its
 * loop (client gone before the handler returned, or out of memory): closes
 * it, runs its on_close, unrefs. NULL-safe; NULLs *s_p. Loop thread. */
void http__stream_drop(http_stream_t **s_p);

#endif
