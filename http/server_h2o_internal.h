/* server_h2o_internal.h - the h2o side of the server, shared by its files
 * (server.c, server_stream.c, server_errors.c, access_log.c, listen.c) and
 * by nothing else: the server, loop, job and request-state structures and
 * the functions one of those files calls in another. It includes <h2o.h>,
 * so only the server's own files may include it. */
#ifndef FENTA_HTTP_SERVER_H2O_INTERNAL_H
#define FENTA_HTTP_SERVER_H2O_INTERNAL_H
#include "http/router.h"
#include "http/server.h"
#include "http/server_internal.h"
#include "runtime/metrics.h"

#include <h2o.h>

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_WORKERS 8
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_CONNECTIONS 4096
#define DEFAULT_MAX_HEADERS (32 * 1024)
#define DEFAULT_MAX_QUEUE 4096
#define DEFAULT_STOP_TIMEOUT_MS 10000
#define CLOSE_GRACE_MS 2000   /* how long a stopping loop waits for its connections to close */
#define LINGER_MS 2000        /* lingering close: how long to drain a refused request's body */
#define LINGER_MAX (4u << 20) /* ... and how much of it */
#define METRIC_CACHE 1024     /* per-loop request-counter cache slots (power of two) */
#define STREAM_MAX_QUEUED (1u << 20) /* bytes a stream may hold unsent before it is closed */
#define STREAM_GRACE_MS 1000         /* how long a stop lets ended streams reach their clients */
#define STATE_ENV "fenta.state"

typedef struct loop loop_t;
typedef struct job job_t;
typedef struct port port_t;

/* What h2o's side of a request remembers, on the request's pool (so it
 * lives exactly as long as the request): found again through req->env,
 * which is h2o's only per-request slot that survives to the logger. */
typedef struct {
    char request_id[129];
    int64_t start_us; /* monotonic, when the request reached us (head and body read) */
    size_t route;     /* router index, or SIZE_MAX when no route matched */
    const char *ip;   /* pool string */
    h2o_iovec_t log_fields[2 * HTTP_LOG_FIELDS_MAX];
    size_t nlog_fields;
} req_state_t;

/* On the request's pool; its dispose runs when h2o frees the request. */
typedef struct {
    job_t *job; /* NULL once the job came back (or never went) */
} guard_t;

struct job {
    h2o_multithread_message_t msg; /* link while travelling back to the loop */
    job_t *next;                   /* link in the worker queue */
    loop_t *loop;
    h2o_req_t *h2o;     /* NULL once the client went away; loop thread only */
    guard_t *guard;     /* valid while h2o is */
    req_state_t *state; /* valid while h2o is */
    http_req_t req;
};

typedef struct {
    h2o_linklist_t link;
    loop_t *loop;
    h2o_socket_t *sock;
    void (*prev_cb)(void *);
    void *prev_data;
    int linger_fd; /* a dup kept for a lingering close, or -1 */
} conn_t;

/* A connection h2o has closed after refusing a request whose body it did not
 * read (413, broken chunking): we hold the socket open through a dup, send
 * FIN and discard input for a while, so the client reads the error instead
 * of losing it to the RST a close with unread data would send. */
typedef struct {
    h2o_linklist_t link;
    loop_t *loop;
    h2o_socket_t *sock;
    h2o_timeout_entry_t timer;
    size_t discarded;
} linger_t;

typedef struct {
    h2o_multithread_message_t super;
    int cmd;
} ctrl_msg_t;

enum { CTRL_DRAIN, CTRL_EXIT };

struct loop {
    http_server_t *server;
    size_t index;
    pthread_t thread;
    bool thread_started;
    bool setup_done; /* loop_setup has run on the thread (under server->qlock) */
    int setup_rc;    /* its result; the loop runs (and takes messages) only when 0 */
    h2o_evloop_t *evloop;
    h2o_context_t ctx;
    bool ctx_inited;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_multithread_receiver_t done_rx;   /* jobs coming back from workers */
    h2o_multithread_receiver_t ctrl_rx;   /* drain / exit from http_server_stop */
    h2o_multithread_receiver_t stream_rx; /* streams with bytes to send (their wake message) */
    ctrl_msg_t ctrl[2];
    h2o_linklist_t streams; /* port_t: the streamed responses this loop is sending */
    bool draining;          /* CTRL_DRAIN seen: streams that arrive now are closed at once */
    h2o_linklist_t conns;   /* conn_t: every accepted socket, to close them at exit */
    size_t nconns;
    h2o_linklist_t lingers; /* linger_t */
    h2o_timeout_t linger_timeout;
    bool linger_timeout_inited;
    bool exiting;
    bool exit_posted; /* send_ctrl(CTRL_EXIT) is through with ctrl_rx (under server->qlock) */
    struct {
        uint64_t key;
        metric_t *m;
    } mcache[METRIC_CACHE];
};

typedef struct {
    h2o_handler_t super;
    http_server_t *server;
} app_handler_t;

typedef struct {
    h2o_filter_t super;
    http_server_t *server;
} err_filter_t;

typedef struct {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
} err_ostream_t;

typedef struct {
    h2o_logger_t super;
    http_server_t *server;
} access_logger_t;

enum { ST_NEW, ST_STARTED, ST_STOPPED };

struct http_server {
    http_config_t cfg; /* strings point at the owned copies below */
    char *listen, *tls_cert, *tls_key, *openapi;
    int listen_fd;
    uint16_t port;
    SSL_CTX *ssl;
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;
    router_t *router;
    metric_t **hist; /* per route, then one for unmatched requests */
    int state;

    loop_t *loops;
    size_t nloops;
    pthread_t *workers;
    size_t nworkers, workers_started;

    /* the worker queue */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    pthread_cond_t setup_cond; /* a loop finished loop_setup, or its exit was posted (qlock) */
    job_t *qhead, *qtail;
    size_t qlen;
    bool qstop;   /* workers exit when the queue is empty */
    bool qreject; /* queued jobs are answered 503 without running */

    atomic_size_t nconns;       /* accepted connections not yet closed, every loop */
    atomic_size_t in_flight;    /* jobs handed to workers and not yet back on their loop */
    atomic_size_t open_streams; /* streamed responses whose h2o request still lives */
    atomic_bool stopping;
};

/* ---- server.c ---- */

/* The request's state (req->env), or NULL when h2o refused it before
 * routing; http__state_new makes it on the request's pool. */
req_state_t *http__state_get(h2o_req_t *req);
req_state_t *http__state_new(h2o_req_t *req);

/* ---- server_stream.c (loop thread) ---- */

/* The job's stream becomes req's response body; the headers are on req. */
void http__stream_start(h2o_req_t *req, http_req_t *r);
/* The job's file (http_respond_file) becomes req's response body, read a
 * chunk at a time as h2o sends; the headers and Content-Length are on req. */
void http__file_start(h2o_req_t *req, http_req_t *r);
/* Ends every stream of the loop after what is queued; forget also detaches
 * them, so no producer can wake a loop that is gone. */
void http__loop_end_streams(loop_t *loop, bool forget);
/* loop->stream_rx's receiver: flushes the streams that were woken. */
void http__on_stream_wake(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages);

/* ---- server_errors.c ---- */

/* The output filter that gives h2o's own error responses our shape. */
void http__err_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot);

/* ---- access_log.c ---- */

/* h2o's logger callback: metrics and the access-log line of one request. */
void http__log_access(h2o_logger_t *self, h2o_req_t *req);

/* ---- listen.c ---- */

/* "host:port" or "[v6]:port" -> a listening, non-blocking socket. 0 or
 * FENTA_EINVAL (bad spec), FENTA_EIO. */
int http__open_listener(const char *spec, int *fd_out, uint16_t *port_out);
/* A TLS server context offering h2 then http/1.1, or NULL (logged). */
SSL_CTX *http__tls_context(const char *cert, const char *key);
/* The listener's read callback: accepts up to 64 connections. */
void http__on_accept(h2o_socket_t *listener, const char *err);
/* Keeps a dup of req's HTTP/1 socket for a lingering close. */
void http__want_linger(h2o_req_t *req);
/* Ends a lingering close now. */
void http__linger_close(linger_t *l);

#endif
