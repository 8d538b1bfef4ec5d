/* server.c - the h2o side of the HTTP server: listening, event loops, the
 * worker pool, dispatch of requests to routes, sending responses back on the
 * right loop, the access log, metrics, and the built-in endpoints.
 *
 * The one module that includes <h2o.h>. h2o is libh2o-evloop 2.2: it buffers
 * a whole request body (up to globalconf.max_request_entity_size, set to
 * max_upload_part) before a handler runs, and all its objects belong to the
 * loop thread that created them. A route's own, smaller body limit is
 * enforced by on_req once the route is known: h2o's limit cannot be it,
 * because over HTTP/2 h2o answers a body past its limit with
 * RST_STREAM(REFUSED_STREAM), which clients take as "retry", so curl sent a
 * 2 MiB JSON body six times and never saw the 413 HTTP/1.1 clients get.
 *
 * Lifetime of a request that goes to a worker:
 *   loop: route, copy the request into a job (http_req_t + arena), put a
 *         guard on h2o's request pool, queue the job
 *   worker: before hook, handler; post the job to its loop's receiver
 *   loop: if the guard still points at the job, send the response; free job
 * If the client goes away first, h2o clears the request's pool, the guard's
 * dispose callback (on the loop thread) detaches the job, and the response is
 * dropped when it returns. The job is never freed by anyone but its loop, and
 * the worker never reads h2o memory, so there is nothing to race on.
 *
 * Streamed responses (http_respond_stream) outlive their job: producers on
 * any thread push bytes long after the handler returned, while h2o may free
 * the request at any moment (client gone). So a stream has two halves:
 *   http_stream_t (shared, malloc'd, refcounted, mutex): queued bytes, the
 *         closed/done flags, on_close, and the loop to wake. References: the
 *         producer's, the request handle's until the loop takes it over, the
 *         loop side's, and one per wake message in flight.
 *   port_t (loop side, on h2o's request pool): the h2o generator, the bytes
 *         h2o is sending. Never seen by another thread; its pool dispose
 *         detaches it from the stream (client gone or response finished).
 * A write appends under the mutex and, when the stream is attached to a
 * loop and no wake is pending, posts the stream's one wake message to that
 * loop's stream_rx; the send happens under the mutex so it never targets a
 * loop that detached (a loop detaches every stream before it exits). The
 * loop takes everything queued in one h2o_send and sends again only from
 * proceed (h2o allows one send in flight per request): what is written
 * meanwhile is coalesced. Bytes queued unsent are bounded (STREAM_MAX_QUEUED);
 * past it the stream is closed. On drain every loop closes its streams, so
 * they end (final chunk / END_STREAM): http_server_stop waits at most
 * STREAM_GRACE_MS for those last bytes, never for a producer. h2o writes the access-log line when
 * it frees the request, which for a stream is when it ended. */
#include "http/server.h"
#include "http/request.h"
#include "http/router.h"
#include "http/server_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/id.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#include <h2o.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

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

/* ---- small helpers --------------------------------------------------------------- */

static int64_t mono_us(void)
{
    return clock_mono_us();
}

static int64_t mono_ms(void)
{
    return mono_us() / 1000;
}

static char *dup_opt(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

static const char *method_label(const char *m, size_t n)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i]) == n && memcmp(known[i], m, n) == 0)
            return known[i];
    return "OTHER";
}

static size_t method_index(const char *label)
{
    static const char *const known[] = {"GET",   "HEAD",   "POST",    "PUT",
                                        "PATCH", "DELETE", "OPTIONS", "OTHER"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(known[i], label) == 0)
            return i;
    return 7;
}

void http__peer_ip(h2o_conn_t *conn, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = conn->callbacks->get_peername(conn, (struct sockaddr *)&ss);
    char tmp[NI_MAXHOST];
    size_t n = sl ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, tmp) : SIZE_MAX;
    if (n == SIZE_MAX || n >= sizeof(tmp)) {
        snprintf(buf, cap, "-");
        return;
    }
    tmp[n] = '\0';
    const char *p = tmp;
    if (strncmp(p, "::ffff:", 7) == 0 && strchr(p + 7, '.'))
        p += 7;
    snprintf(buf, cap, "%s", p);
}

static req_state_t *state_get(h2o_req_t *req)
{
    h2o_iovec_t *v = h2o_req_getenv(req, H2O_STRLIT(STATE_ENV), 0);
    return v ? (req_state_t *)v->base : NULL;
}

/* The request id: the client's X-Request-Id when sane, else a new ULID. */
static void make_request_id(h2o_req_t *req, char out[129])
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i != -1) {
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        if (http__request_id_ok(v->base, v->len)) {
            memcpy(out, v->base, v->len);
            out[v->len] = '\0';
            return;
        }
    }
    fenta_id_t id;
    id_new(&id);
    id_to_str(&id, out);
}

static req_state_t *state_new(h2o_req_t *req)
{
    req_state_t *st = h2o_mem_alloc_pool(&req->pool, sizeof(*st));
    memset(st, 0, sizeof(*st));
    st->start_us = mono_us();
    st->route = SIZE_MAX;
    make_request_id(req, st->request_id);
    char ip[NI_MAXHOST];
    http__peer_ip(req->conn, ip, sizeof(ip));
    st->ip = h2o_strdup(&req->pool, ip, SIZE_MAX).base;
    h2o_iovec_t *slot = h2o_req_getenv(req, H2O_STRLIT(STATE_ENV), 1);
    slot->base = (char *)st;
    slot->len = 0;
    return st;
}

/* ---- jobs ------------------------------------------------------------------------- */

static void job_free(job_t *job)
{
    if (!job)
        return;
    http__req_release(&job->req);
    free(job);
}

static void guard_dispose(void *p)
{
    guard_t *g = p;
    if (g->job) {
        g->job->h2o = NULL;
        atomic_store(&g->job->req.abandoned, true);
        g->job = NULL;
    }
}

/* ---- streamed responses ------------------------------------------------------------ */

struct http_stream {
    pthread_mutex_t lock;          /* guards every field below but msg's link */
    int refs;                      /* see the top of the file */
    char *buf;                     /* queued bytes the loop has not taken; malloc'd */
    size_t len, cap;               /* of buf */
    bool closed;                   /* writes refused: ended, overflowed, client gone, stopping */
    bool done;                     /* the loop is through with it; on_close has run */
    void (*on_close)(void *);      /* the producer's, may be NULL */
    void *on_close_arg;            /* for on_close */
    loop_t *loop;                  /* the loop to wake; NULL before attach and after detach */
    port_t *port;                  /* the loop side, read and written on that loop only */
    bool wake_pending;             /* msg is on its way to loop->stream_rx */
    h2o_multithread_message_t msg; /* the one wake message; holds a reference in flight */
};

/* The loop side of a stream, on the h2o request's pool. */
struct port {
    h2o_generator_t super; /* first: h2o hands it back to proceed/stop */
    h2o_req_t *req;        /* NULL once detached (h2o is freeing the request) */
    loop_t *loop;          /* the request's loop */
    http_stream_t *s;      /* our reference, dropped when the pool is disposed */
    h2o_linklist_t link;   /* in loop->streams while attached */
    char *inflight;        /* the bytes of the last h2o_send; h2o reads them until proceed */
    bool sending;          /* an h2o_send is in flight: wait for proceed */
    bool started;          /* the headers have gone out */
    bool final_sent;       /* the last h2o_send was FINAL: touch nothing of h2o's any more */
    bool head;             /* a HEAD request: headers only */
};

http_stream_t *http__stream_new(void)
{
    http_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->refs = 1;
    return s;
}

http_stream_t *http__stream_ref(http_stream_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->refs++;
    pthread_mutex_unlock(&s->lock);
    return s;
}

static void stream_unref(http_stream_t *s)
{
    pthread_mutex_lock(&s->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (!last)
        return;
    free(s->buf);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Lock held. Posts the wake message unless one is in flight or the stream
 * has no loop. Sending under the lock is what keeps the target alive: a
 * loop clears s->loop under this lock before it exits. */
static void stream_wake_locked(http_stream_t *s)
{
    if (!s->loop || s->wake_pending)
        return;
    s->wake_pending = true;
    s->refs++; /* the message's */
    h2o_multithread_send_message(&s->loop->stream_rx, &s->msg);
}

/* Closes for good (the loop will not send any more): drops what is queued
 * and runs on_close the first time, outside the lock (it may call us). */
static void stream_finish(http_stream_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->closed = true;
    s->loop = NULL;
    s->port = NULL;
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    bool first = !s->done;
    s->done = true;
    void (*cb)(void *) = first ? s->on_close : NULL;
    void *arg = s->on_close_arg;
    pthread_mutex_unlock(&s->lock);
    if (cb)
        cb(arg);
}

void http__stream_drop(http_stream_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    stream_finish(*s_p);
    stream_unref(*s_p);
    *s_p = NULL;
}

int http_stream_write(http_stream_t *s, const void *data, size_t len)
{
    if (!s || (len && !data))
        return FENTA_EINVAL;
    pthread_mutex_lock(&s->lock);
    if (s->closed) {
        pthread_mutex_unlock(&s->lock);
        return FENTA_ESTOPPED;
    }
    if (len > STREAM_MAX_QUEUED - s->len) {
        /* the client does not keep up; closing lets the loop end the
         * response after what is queued, instead of buffering without end */
        s->closed = true;
        stream_wake_locked(s);
        pthread_mutex_unlock(&s->lock);
        log_msg(LOG_WARN, NULL, "http: stream closed: over %u bytes queued for a slow client",
                STREAM_MAX_QUEUED);
        return FENTA_ETOOBIG;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len)
            cap *= 2;
        char *grown = realloc(s->buf, cap);
        if (!grown) {
            pthread_mutex_unlock(&s->lock);
            return FENTA_ENOMEM;
        }
        s->buf = grown;
        s->cap = cap;
    }
    if (len) {
        memcpy(s->buf + s->len, data, len);
        s->len += len;
        stream_wake_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

bool http_stream_closed(http_stream_t *s)
{
    if (!s)
        return true;
    pthread_mutex_lock(&s->lock);
    bool closed = s->closed;
    pthread_mutex_unlock(&s->lock);
    return closed;
}

void http_stream_end(http_stream_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    if (!s->closed) {
        s->closed = true;
        stream_wake_locked(s);
    }
    pthread_mutex_unlock(&s->lock);
}

void http_stream_release(http_stream_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    http_stream_end(*s_p);
    stream_unref(*s_p);
    *s_p = NULL;
}

void http_stream_on_close(http_stream_t *s, void (*cb)(void *arg), void *arg)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    bool done = s->done;
    if (!done) {
        s->on_close = cb;
        s->on_close_arg = arg;
    }
    pthread_mutex_unlock(&s->lock);
    if (done && cb)
        cb(arg);
}

/* Loop thread. Hands h2o everything queued, unless a send is in flight.
 * Never an empty IN_PROGRESS send once the headers are out: h2o 2.2's
 * HTTP/1 takes a send with no bytes for the end of the response. After a
 * FINAL send h2o may free the request (and p with its pool) before
 * h2o_send returns, so nothing is touched after it. */
static void port_flush(port_t *p)
{
    if (!p->req || p->sending || p->final_sent)
        return;
    http_stream_t *s = p->s;
    pthread_mutex_lock(&s->lock);
    char *buf = s->buf;
    size_t len = s->len;
    bool final = s->closed;
    s->buf = NULL;
    s->len = s->cap = 0;
    pthread_mutex_unlock(&s->lock);
    if (p->head) {
        free(buf);
        buf = NULL;
        len = 0;
    }
    if (!len && !final && p->started) {
        free(buf);
        return;
    }
    p->started = true;
    free(p->inflight); /* NULL here: proceed freed the last one */
    p->inflight = buf;
    h2o_iovec_t v = h2o_iovec_init(buf, len);
    if (final) {
        p->final_sent = true;
        h2o_send(p->req, &v, len ? 1 : 0, H2O_SEND_STATE_FINAL);
        return;
    }
    p->sending = true;
    h2o_send(p->req, &v, len ? 1 : 0, H2O_SEND_STATE_IN_PROGRESS);
}

static void port_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    port_t *p = (port_t *)gen;
    free(p->inflight);
    p->inflight = NULL;
    p->sending = false;
    port_flush(p);
}

/* h2o is done with the request (the client left, or after the final send):
 * producers see the stream closed from now on and the loop forgets it. */
static void port_detach(port_t *p)
{
    if (!p->req)
        return;
    p->req = NULL;
    h2o_linklist_unlink(&p->link);
    atomic_fetch_sub(&p->loop->server->open_streams, 1);
    stream_finish(p->s);
}

static void port_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    port_detach((port_t *)gen);
}

static void port_dispose(void *mem)
{
    port_t *p = mem;
    port_detach(p);
    free(p->inflight);
    p->inflight = NULL;
    stream_unref(p->s);
}

/* Loop thread: streams that have something to send (or to end). */
static void on_stream_wake(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        http_stream_t *s = H2O_STRUCT_FROM_MEMBER(http_stream_t, msg, msg);
        pthread_mutex_lock(&s->lock);
        s->wake_pending = false; /* after the unlink: the message may be posted again */
        port_t *p = s->port;
        pthread_mutex_unlock(&s->lock);
        if (p)
            port_flush(p); /* may free p (final send), never s: the message's reference */
        stream_unref(s);
    }
}

/* Loop thread: the job's stream becomes this request's response body. The
 * headers are already on req. */
static void start_stream(h2o_req_t *req, http_req_t *r)
{
    loop_t *loop = H2O_STRUCT_FROM_MEMBER(loop_t, ctx, req->conn->ctx);
    http_stream_t *s = r->stream;
    r->stream = NULL; /* its reference is the port's now */
    port_t *p = h2o_mem_alloc_shared(&req->pool, sizeof(*p), port_dispose);
    memset(p, 0, sizeof(*p));
    p->super.proceed = port_proceed;
    p->super.stop = port_stop;
    p->req = req;
    p->loop = loop;
    p->s = s;
    p->head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    h2o_linklist_insert(&loop->streams, &p->link);
    atomic_fetch_add(&loop->server->open_streams, 1);
    pthread_mutex_lock(&s->lock);
    s->loop = loop;
    s->port = p;
    if (loop->draining || p->head)
        s->closed = true;
    pthread_mutex_unlock(&s->lock);
    req->res.content_length = SIZE_MAX;
    h2o_start_response(req, &p->super);
    port_flush(p);
}

/* Loop thread. On CTRL_DRAIN (forget = false): every stream ends after what
 * is queued. Before the loop exits (forget = true): streams whose connection
 * outlived the grace period are detached too, so no producer can wake a
 * loop that is gone. */
static void loop_end_streams(loop_t *loop, bool forget)
{
    for (h2o_linklist_t *n = loop->streams.next; n != &loop->streams; n = n->next) {
        port_t *p = H2O_STRUCT_FROM_MEMBER(port_t, link, n);
        pthread_mutex_lock(&p->s->lock);
        p->s->closed = true;
        pthread_mutex_unlock(&p->s->lock);
    }
    while (forget && !h2o_linklist_is_empty(&loop->streams))
        port_detach(H2O_STRUCT_FROM_MEMBER(port_t, link, loop->streams.next));
    /* a flush may free its own port (never another one), so step first */
    for (h2o_linklist_t *n = loop->streams.next, *next; n != &loop->streams; n = next) {
        next = n->next;
        port_flush(H2O_STRUCT_FROM_MEMBER(port_t, link, n));
    }
}

static h2o_generator_t empty_generator = {NULL, NULL};

/* Sends the job's response on its h2o request (loop thread). */
static void send_response(h2o_req_t *req, req_state_t *st, http_req_t *r)
{
    http__ensure_response(r);
    req->res.status = r->status;
    req->res.reason = http__reason(r->status);
    bool has_ct = false, has_cc = false, has_xab = false;
    for (size_t i = 0; i < r->nres_headers; i++) {
        const http__kv_t *h = &r->res_headers[i];
        h2o_iovec_t n = h2o_strdup(&req->pool, h->name, SIZE_MAX);
        h2o_iovec_t v = h2o_strdup(&req->pool, h->value, SIZE_MAX);
        if (strcmp(h->name, "content-type") == 0)
            has_ct = true;
        has_cc |= strcmp(h->name, "cache-control") == 0;
        has_xab |= strcmp(h->name, "x-accel-buffering") == 0;
        h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
    }
    /* a stream must reach the client as it is written: no cache, and no
     * buffering by a proxy in front (nginx honours x-accel-buffering) */
    if (r->stream && !has_cc)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                       H2O_STRLIT("no-cache"));
    if (r->stream && !has_xab)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0,
                              NULL, H2O_STRLIT("no"));
    if (r->content_type && !has_ct) {
        h2o_iovec_t ct = h2o_strdup(&req->pool, r->content_type, SIZE_MAX);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct.base,
                       ct.len);
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          st->request_id, strlen(st->request_id));
    for (size_t i = 0; i < r->nlog_fields; i++) {
        st->log_fields[2 * i] = h2o_strdup(&req->pool, r->log_fields[i].name, SIZE_MAX);
        st->log_fields[2 * i + 1] = h2o_strdup(&req->pool, r->log_fields[i].value, SIZE_MAX);
    }
    st->nlog_fields = r->nlog_fields;
    if (r->stream) {
        start_stream(req, r);
        return;
    }
    /* 204 and 304 carry no body and, per RFC 9110, no Content-Length */
    bool bodiless = r->status == 204 || r->status == 304;
    req->res.content_length = bodiless ? SIZE_MAX : r->res_body_len;
    if (bodiless) {
        h2o_start_response(req, &empty_generator);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    h2o_send_inline(req, r->res_body ? r->res_body : "", r->res_body_len);
}

/* ---- the worker pool ----------------------------------------------------------- */

static void run_route(http_server_t *s, http_req_t *r, bool on_loop)
{
    const http_route_t *rt = r->route;
    if (!on_loop && !(rt->flags & HTTP_ROUTE_NO_HOOK) && s->cfg.before) {
        int rc = s->cfg.before(r, rt);
        if (r->status)
            return;
        if (rc != 0) {
            log_msg(LOG_ERROR, NULL, "http: before hook failed (%d) without responding for %s %s",
                    rc, r->method, rt->pattern);
            http_respond_error(r, 500, "internal", "internal error", NULL);
            return;
        }
    }
    rt->handler(r);
    http__ensure_response(r);
}

static void *worker_main(void *arg)
{
    http_server_t *s = arg;
    pthread_setname_np(pthread_self(), "http-worker");
    for (;;) {
        pthread_mutex_lock(&s->qlock);
        while (!s->qhead && !s->qstop)
            pthread_cond_wait(&s->qcond, &s->qlock);
        job_t *job = s->qhead;
        if (!job) {
            pthread_mutex_unlock(&s->qlock);
            break;
        }
        s->qhead = job->next;
        if (!s->qhead)
            s->qtail = NULL;
        s->qlen--;
        bool reject = s->qreject;
        pthread_mutex_unlock(&s->qlock);

        http_req_t *r = &job->req;
        if (atomic_load(&r->abandoned)) {
            /* the client is gone: nobody would read the answer */
        } else if (reject) {
            http_add_header(r, "retry-after", "1");
            http_respond_error(r, 503, "shutting_down", "the server is shutting down", NULL);
        } else {
            run_route(s, r, false);
        }
        h2o_multithread_send_message(&job->loop->done_rx, &job->msg);
    }
    return NULL;
}

/* Loop thread: jobs back from workers. */
static void on_done(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    loop_t *loop = H2O_STRUCT_FROM_MEMBER(loop_t, done_rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        job_t *job = H2O_STRUCT_FROM_MEMBER(job_t, msg, msg);
        if (job->h2o) {
            job->guard->job = NULL; /* the request may be freed during the send */
            send_response(job->h2o, job->state, &job->req);
        }
        job_free(job);
        atomic_fetch_sub(&loop->server->in_flight, 1);
    }
}

/* ---- routing a request (loop thread) ---------------------------------------------- */

/* Answers r's response right here and frees the job. */
static void finish_on_loop(h2o_req_t *req, req_state_t *st, job_t *job)
{
    send_response(req, st, &job->req);
    job_free(job);
}

static int reply_error(h2o_req_t *req, req_state_t *st, job_t *job, int status, const char *code,
                       const char *message)
{
    http_respond_error(&job->req, status, code, message, NULL);
    finish_on_loop(req, st, job);
    return 0;
}

/* Copies what a handler may read out of h2o's request. */
static int copy_request(http_server_t *s, h2o_req_t *req, req_state_t *st, http_req_t *r)
{
    char proto[32];
    size_t plen = h2o_stringify_protocol_version(proto, req->version);
    r->server = s;
    r->app = s->cfg.app;
    r->tls = req->scheme == &H2O_URL_SCHEME_HTTPS;
    r->method = http__strndup(r, req->input.method.base, req->input.method.len);
    r->request_id = http__strndup(r, st->request_id, strlen(st->request_id));
    r->ip = http__strndup(r, st->ip, strlen(st->ip));
    r->protocol = http__strndup(r, proto, plen < sizeof(proto) ? plen : 0);
    size_t n = req->headers.size + (req->input.authority.base ? 1 : 0);
    r->headers = http__alloc(r, (n ? n : 1) * sizeof(http__kv_t));
    if (!r->method || !r->request_id || !r->ip || !r->protocol || !r->headers)
        return FENTA_ENOMEM;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        r->headers[i].name = http__strndup(r, h->name->base, h->name->len);
        r->headers[i].value = http__strndup(r, h->value.base, h->value.len);
        if (!r->headers[i].name || !r->headers[i].value)
            return FENTA_ENOMEM;
    }
    r->nheaders = req->headers.size;
    if (req->input.authority.base) { /* h2o moves Host (or :authority) out of the list */
        r->headers[r->nheaders].name = "host";
        r->headers[r->nheaders].value =
            http__strndup(r, req->input.authority.base, req->input.authority.len);
        if (!r->headers[r->nheaders++].value)
            return FENTA_ENOMEM;
    }
    return 0;
}

/* The body limit of the matched route (index), or the server's default
 * when none matched (SIZE_MAX). */
static size_t body_limit(http_server_t *s, size_t route)
{
    const http_route_t *rt = route != SIZE_MAX ? router_route(s->router, route) : NULL;
    return rt && rt->max_body ? rt->max_body : s->cfg.max_body;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    http_server_t *s = ((app_handler_t *)self)->server;
    loop_t *loop = H2O_STRUCT_FROM_MEMBER(loop_t, ctx, req->conn->ctx);
    req_state_t *st = state_new(req);

    job_t *job = calloc(1, sizeof(*job));
    if (!job) {
        h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
        return 0;
    }
    job->loop = loop;
    http_req_t *r = &job->req;
    atomic_init(&r->abandoned, false);
    if (copy_request(s, req, st, r) != 0) {
        job_free(job);
        h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
        return 0;
    }
    if (atomic_load(&s->stopping)) {
        http_add_header(r, "retry-after", "1");
        return reply_error(req, st, job, 503, "shutting_down", "the server is shutting down");
    }

    size_t hbytes = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        hbytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    if (hbytes > s->cfg.max_headers)
        return reply_error(req, st, job, 431, "headers_too_large", "request headers are too large");

    /* split and decode the path */
    const char *raw = req->input.path.base;
    size_t rawlen = req->input.path.len;
    const char *qmark = raw ? memchr(raw, '?', rawlen) : NULL;
    size_t plen = qmark ? (size_t)(qmark - raw) : rawlen;
    if (!raw || plen == 0 || raw[0] != '/')
        return reply_error(req, st, job, 400, "invalid_path", "the request path must start with /");
    r->path = http__strndup(r, raw, plen);
    const char *segs[ROUTER_MAX_SEGS + 1];
    size_t nsegs = 0;
    bool too_deep = false;
    if (!r->path)
        return reply_error(req, st, job, 503, "unavailable", "out of memory");
    for (size_t i = 1; plen > 1 && i <= plen;) {
        size_t j = i;
        while (j < plen && raw[j] != '/')
            j++;
        if (nsegs == ROUTER_MAX_SEGS) {
            too_deep = true;
            break;
        }
        char *seg = http__alloc(r, j - i + 1);
        if (!seg)
            return reply_error(req, st, job, 503, "unavailable", "out of memory");
        if (http__decode(raw + i, j - i, seg, false, true) < 0)
            return reply_error(req, st, job, 400, "invalid_path",
                               "the request path is not valid percent-encoded UTF-8");
        segs[nsegs++] = seg;
        i = j + 1;
    }

    router_match_t m;
    if (too_deep)
        m.status = 404;
    else
        router_match(s->router, r->method, segs, nsegs, &m);
    /* The body is checked before a 404 or 405, as h2o did when it held the
     * only limit: an oversized body is refused whatever it was sent to. It
     * is copied only once routed, so a refused one is never copied. */
    bool routed = m.status != 404 && m.status != 405;
    if (routed) { /* the access log and metrics name the route of a 413 too */
        st->route = m.index;
        r->route = router_route(s->router, m.index);
    }
    size_t limit = body_limit(s, routed ? m.index : SIZE_MAX);
    if (req->entity.len > limit) {
        http_respond_error(&job->req, 413, "payload_too_large", "request body is too large",
                           json_pack("{s:I}", "max_bytes", (json_int_t)limit));
        finish_on_loop(req, st, job);
        return 0;
    }
    if (m.status == 404)
        return reply_error(req, st, job, 404, "not_found", "no such route");
    if (m.status == 405) {
        http_add_header(r, "allow", m.allow);
        return reply_error(req, st, job, 405, "method_not_allowed",
                           "method not allowed on this route");
    }
    if (req->entity.base && req->entity.len) {
        r->body = http__strndup(r, req->entity.base, req->entity.len);
        if (!r->body)
            return reply_error(req, st, job, 503, "unavailable", "out of memory");
        r->body_len = req->entity.len;
    }

    size_t np = router_nparams(s->router, m.index);
    if (np) {
        r->params = http__alloc(r, np * sizeof(http__kv_t));
        if (!r->params)
            return reply_error(req, st, job, 503, "unavailable", "out of memory");
        for (size_t k = 0; k < np; k++) {
            size_t pos = 0;
            r->params[k].name = router_param(s->router, m.index, k, &pos);
            r->params[k].value = segs[pos];
        }
        r->nparams = np;
    }
    if (qmark) {
        int rc = http__parse_query(r, qmark + 1, rawlen - plen - 1);
        if (rc == FENTA_EINVAL)
            return reply_error(req, st, job, 400, "invalid_query",
                               "the query string is not valid percent-encoded UTF-8");
        if (rc == FENTA_ETOOBIG)
            return reply_error(req, st, job, 400, "invalid_query", "too many query parameters");
        if (rc != 0)
            return reply_error(req, st, job, 503, "unavailable", "out of memory");
    }
    if (r->route->flags & HTTP_ROUTE_JSON) {
        const char *ct = http_header(r, "content-type");
        if (!ct || !http__is_json_type(ct, strlen(ct)))
            return reply_error(req, st, job, 415, "unsupported_media_type",
                               "Content-Type must be application/json");
    }

    if (r->route->flags & HTTP_ROUTE_INLINE) {
        run_route(s, r, true);
        finish_on_loop(req, st, job);
        return 0;
    }

    pthread_mutex_lock(&s->qlock);
    bool full = s->qlen >= s->cfg.max_queue;
    if (!full) {
        guard_t *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), guard_dispose);
        g->job = job;
        job->guard = g;
        job->h2o = req;
        job->state = st;
        if (s->qtail)
            s->qtail->next = job;
        else
            s->qhead = job;
        s->qtail = job;
        s->qlen++;
        atomic_fetch_add(&s->in_flight, 1);
        pthread_cond_signal(&s->qcond);
    }
    pthread_mutex_unlock(&s->qlock);
    if (full) {
        http_add_header(r, "retry-after", "1");
        return reply_error(req, st, job, 503, "overloaded", "too many requests in progress");
    }
    return 0;
}

/* ---- h2o's own errors, in our shape ------------------------------------------------ */

static const char *code_for(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 413:
        return "payload_too_large";
    case 417:
        return "expectation_failed";
    case 431:
        return "headers_too_large";
    case 503:
        return "unavailable";
    default:
        return status < 500 ? "bad_request" : "internal";
    }
}

static void err_ostream_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n,
                             h2o_send_state_t state)
{
    err_ostream_t *o = (err_ostream_t *)self;
    bool head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    if (!o->sent && !head) {
        o->sent = true;
        h2o_ostream_send_next(self, req, &o->body, 1, state);
    } else {
        h2o_ostream_send_next(self, req, NULL, 0, state);
    }
}

static void on_conn_close(void *data);

/* h2o will close this HTTP/1 connection after the error, maybe with the
 * request body unread: keep a dup of the socket for a lingering close. */
static void want_linger(h2o_req_t *req)
{
    h2o_socket_t *sock =
        req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (!sock || sock->on_close.cb != on_conn_close)
        return;
    conn_t *c = sock->on_close.data;
    if (c->linger_fd < 0)
        c->linger_fd = fcntl(h2o_socket_get_fd(sock), F_DUPFD_CLOEXEC, 0);
}

/* Every response we build carries x-request-id; one without it was made by
 * h2o itself (413 while reading a body, 400 for a broken chunked encoding,
 * 417, ...): give it our error body, content type and request id. */
static void err_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    if (req->res.status >= 400 &&
        h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1) == -1) {
        req_state_t *st = state_get(req);
        if (!st)
            st = state_new(req);
        http_server_t *s = ((err_filter_t *)self)->server;
        char json[256], details[64] = "null";
        if (req->res.status == 413) /* past max_upload_part: the same shape as a route's 413 */
            snprintf(details, sizeof(details), "{\"max_bytes\":%zu}", s->cfg.max_upload_part);
        int len = snprintf(json, sizeof(json),
                           "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":%s}}",
                           code_for(req->res.status),
                           req->res.status == 413 ? "request body is too large"
                                                  : "the request could not be processed",
                           details);
        ssize_t i;
        while ((i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1)) != -1)
            h2o_delete_header(&req->res.headers, i);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/json"));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                              st->request_id, strlen(st->request_id));
        err_ostream_t *o = (err_ostream_t *)h2o_add_ostream(req, sizeof(*o), slot);
        o->super.do_send = err_ostream_send;
        o->body = h2o_strdup(&req->pool, json, (size_t)len);
        o->sent = false;
        req->res.content_length = o->body.len;
        slot = &o->super.next;
        if (req->version < 0x200 && !req->http1_is_persistent)
            want_linger(req);
    }
    h2o_setup_next_ostream(req, slot);
}

/* ---- access log and metrics (loop thread, when h2o frees a request) ----------------- */

static metric_t *request_counter(loop_t *loop, size_t route, const char *route_label,
                                 const char *method, int status)
{
    uint64_t key = ((uint64_t)(route + 1) << 24 | (uint64_t)method_index(method) << 12 |
                    (uint64_t)(status & 0xfff)) +
                   1;
    size_t h = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 54) & (METRIC_CACHE - 1);
    for (size_t probe = 0; probe < METRIC_CACHE; probe++) {
        size_t i = (h + probe) & (METRIC_CACHE - 1);
        if (loop->mcache[i].key == key)
            return loop->mcache[i].m;
        if (loop->mcache[i].key == 0) {
            char labels[512];
            snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",status=\"%d\"",
                     route_label, method, status);
            metric_t *m = metrics_counter("fenta_http_requests_total",
                                          "HTTP requests by route, method and status", labels);
            if (m) {
                loop->mcache[i].key = key;
                loop->mcache[i].m = m;
            }
            return m;
        }
    }
    return NULL; /* the cache is full: one label set per request would be unbounded anyway */
}

static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    http_server_t *s = ((access_logger_t *)self)->server;
    loop_t *loop = H2O_STRUCT_FROM_MEMBER(loop_t, ctx, req->conn->ctx);
    req_state_t *st = state_get(req);

    /* Latency from our own clock: h2o's request timestamps come from a
     * per-iteration cache that is stale by however long the loop slept. For
     * requests h2o refused before routing (no state) it is all we have. */
    double secs = 0;
    if (st) {
        secs = (double)(mono_us() - st->start_us) / 1e6;
    } else if (req->timestamps.request_begin_at.tv_sec) {
        /* h2o stamps requests with gettimeofday, so the latency is measured
         * on that clock; a metric, never a decision. */
        struct timeval now, begin = req->timestamps.request_begin_at;
        gettimeofday(&now, NULL);
        secs = (double)(now.tv_sec - begin.tv_sec) + (double)(now.tv_usec - begin.tv_usec) / 1e6;
    }
    if (secs < 0)
        secs = 0;

    int status = req->res.status ? req->res.status : 499; /* 499: client went away first */
    size_t route = st ? st->route : SIZE_MAX;
    const char *route_label = route != SIZE_MAX ? router_route(s->router, route)->pattern : "none";
    const char *method = method_label(req->input.method.base, req->input.method.len);

    metric_inc(request_counter(loop, route, route_label, method, status));
    metric_observe(s->hist[route != SIZE_MAX ? route : router_count(s->router)], secs);

    if (!log_enabled(LOG_INFO))
        return;
    char m[33], path[1025], stat[8], bytes[24], lat[32], proto[32], ip[NI_MAXHOST];
    snprintf(m, sizeof(m), "%.*s", (int)(req->input.method.len < 32 ? req->input.method.len : 32),
             req->input.method.base ? req->input.method.base : "");
    size_t pl = req->input.path.len;
    if (req->input.path.base) {
        const char *q = memchr(req->input.path.base, '?', pl);
        if (q) /* no query strings in logs: they may carry secrets */
            pl = (size_t)(q - req->input.path.base);
    }
    snprintf(path, sizeof(path), "%.*s", (int)(pl < 1024 ? pl : 1024),
             req->input.path.base ? req->input.path.base : "");
    snprintf(stat, sizeof(stat), "%d", status);
    snprintf(bytes, sizeof(bytes), "%zu", req->bytes_sent);
    snprintf(lat, sizeof(lat), "%.3f", secs * 1000);
    size_t n = h2o_stringify_protocol_version(proto, req->version);
    proto[n < sizeof(proto) ? n : 0] = '\0';
    if (st)
        snprintf(ip, sizeof(ip), "%s", st->ip);
    else
        http__peer_ip(req->conn, ip, sizeof(ip));

    const char *kv[2 * (10 + HTTP_LOG_FIELDS_MAX) + 1];
    size_t k = 0;
    kv[k++] = "method", kv[k++] = m;
    kv[k++] = "path", kv[k++] = path;
    kv[k++] = "route", kv[k++] = route_label;
    kv[k++] = "status", kv[k++] = stat;
    kv[k++] = "bytes", kv[k++] = bytes;
    kv[k++] = "latency_ms", kv[k++] = lat;
    kv[k++] = "request_id", kv[k++] = st ? st->request_id : "-";
    kv[k++] = "ip", kv[k++] = ip;
    kv[k++] = "protocol", kv[k++] = proto;
    for (size_t i = 0; st && i < st->nlog_fields; i++) {
        kv[k++] = st->log_fields[2 * i].base;
        kv[k++] = st->log_fields[2 * i + 1].base;
    }
    kv[k] = NULL;
    log_kv(LOG_INFO, NULL, "request", kv);
}

/* ---- connections and loops ----------------------------------------------------------- */

static void linger_close(linger_t *l)
{
    if (h2o_timeout_is_linked(&l->timer))
        h2o_timeout_unlink(&l->timer);
    h2o_linklist_unlink(&l->link);
    h2o_socket_close(l->sock);
    free(l);
}

static void on_linger_timeout(h2o_timeout_entry_t *entry)
{
    linger_close(H2O_STRUCT_FROM_MEMBER(linger_t, timer, entry));
}

static void on_linger_read(h2o_socket_t *sock, const char *err)
{
    linger_t *l = sock->data;
    if (!err) {
        l->discarded += sock->input->size;
        h2o_buffer_consume(&sock->input, sock->input->size);
    }
    if (err || l->discarded > LINGER_MAX)
        linger_close(l);
}

static void start_linger(loop_t *loop, int fd)
{
    linger_t *l = loop->exiting ? NULL : calloc(1, sizeof(*l));
    if (!l) {
        close(fd);
        return;
    }
    shutdown(fd, SHUT_WR); /* FIN after the error response h2o queued */
    l->loop = loop;
    l->sock = h2o_evloop_socket_create(loop->evloop, fd, 0);
    l->sock->data = l;
    l->timer.cb = on_linger_timeout;
    h2o_timeout_link(loop->evloop, &loop->linger_timeout, &l->timer);
    h2o_linklist_insert(&loop->lingers, &l->link);
    h2o_socket_read_start(l->sock, on_linger_read);
}

static void on_conn_close(void *data)
{
    conn_t *c = data;
    h2o_linklist_unlink(&c->link);
    c->loop->nconns--;
    atomic_fetch_sub(&c->loop->server->nconns, 1);
    if (c->linger_fd >= 0)
        start_linger(c->loop, c->linger_fd);
    if (c->prev_cb)
        c->prev_cb(c->prev_data);
    free(c);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    loop_t *loop = listener->data;
    if (err)
        return;
    for (int i = 0; i < 64; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock)
            break;
        /* each connection may hold bodies h2o is reading (see server.h):
         * the cap is what bounds them server-wide */
        if (atomic_load(&loop->server->nconns) >= loop->server->cfg.max_connections) {
            h2o_socket_close(sock);
            continue;
        }
        conn_t *c = calloc(1, sizeof(*c)); /* links must start unlinked (NULL) */
        if (!c) {                          /* refuse rather than lose track of it */
            h2o_socket_close(sock);
            continue;
        }
        c->loop = loop;
        c->sock = sock;
        c->linger_fd = -1;
        c->prev_cb = sock->on_close.cb;
        c->prev_data = sock->on_close.data;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_linklist_insert(&loop->conns, &c->link);
        loop->nconns++;
        atomic_fetch_add(&loop->server->nconns, 1);
        h2o_accept(&loop->accept_ctx, sock);
    }
}

static void on_ctrl(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    loop_t *loop = H2O_STRUCT_FROM_MEMBER(loop_t, ctrl_rx, rx);
    while (!h2o_linklist_is_empty(messages)) {
        ctrl_msg_t *msg = H2O_STRUCT_FROM_MEMBER(ctrl_msg_t, super.link, messages->next);
        h2o_linklist_unlink(&msg->super.link);
        if (msg->cmd == CTRL_DRAIN) {
            if (loop->listener) {
                h2o_socket_read_stop(loop->listener);
                h2o_socket_close(loop->listener);
                loop->listener = NULL;
            }
            /* HTTP/2 connections get GOAWAY, HTTP/1 ones close after their
             * current response */
            h2o_context_request_shutdown(&loop->ctx);
            /* streams would hold their connections (and the stop) for as
             * long as their producers like: end them now */
            loop->draining = true;
            loop_end_streams(loop, false);
        } else {
            loop->exiting = true;
            /* wake every connection: h2o sees EOF or an error and closes it
             * through its own paths, freeing what it owns */
            for (h2o_linklist_t *n = loop->conns.next; n != &loop->conns; n = n->next) {
                conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, n);
                shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
            }
            while (!h2o_linklist_is_empty(&loop->lingers))
                linger_close(H2O_STRUCT_FROM_MEMBER(linger_t, link, loop->lingers.next));
        }
    }
}

/* Frees what loop_setup made, also after a partial setup; on the loop's
 * own thread, as its last act (see loop_main). */
static void loop_teardown(loop_t *loop)
{
    if (loop->ctx_inited) {
        if (loop->nconns) {
            /* disposing the context under live connections would free memory
             * they use; leaking a few at exit is the lesser harm */
            log_msg(LOG_ERROR, NULL, "http: loop %zu exits with %zu connections still open",
                    loop->index, loop->nconns);
            return;
        }
        if (loop->listener) {
            h2o_socket_read_stop(loop->listener);
            h2o_socket_close(loop->listener);
            loop->listener = NULL;
        }
        while (!h2o_linklist_is_empty(&loop->lingers))
            linger_close(H2O_STRUCT_FROM_MEMBER(linger_t, link, loop->lingers.next));
        if (loop->linger_timeout_inited) {
            h2o_timeout_dispose(loop->evloop, &loop->linger_timeout);
            loop->linger_timeout_inited = false;
        }
        if (h2o_timeout_is_linked(&loop->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&loop->ctx.http2._graceful_shutdown_timeout);
        h2o_multithread_queue_t *queue = loop->ctx.queue;
        /* wake messages posted just before their streams were detached
         * still hold references; nobody can post any more */
        if (!h2o_linklist_is_empty(&loop->stream_rx._messages)) {
            h2o_linklist_t left;
            h2o_linklist_init_anchor(&left);
            h2o_linklist_insert_list(&left, &loop->stream_rx._messages);
            on_stream_wake(&loop->stream_rx, &left);
        }
        h2o_multithread_unregister_receiver(queue, &loop->done_rx);
        h2o_multithread_unregister_receiver(queue, &loop->ctrl_rx);
        h2o_multithread_unregister_receiver(queue, &loop->stream_rx);
        h2o_context_dispose(&loop->ctx);
#if H2O_LIBRARY_VERSION_MAJOR == 0 && H2O_LIBRARY_VERSION_MINOR <= 13
        /* libh2o 0.13 (h2o 2.2) closes the queue's pipe but never frees it */
        free(queue);
#endif
        loop->ctx_inited = false;
    }
    if (loop->evloop) {
        h2o_evloop_destroy(loop->evloop);
        loop->evloop = NULL;
    }
}

static int loop_setup(loop_t *loop)
{
    http_server_t *s = loop->server;
    h2o_linklist_init_anchor(&loop->conns);
    h2o_linklist_init_anchor(&loop->lingers);
    h2o_linklist_init_anchor(&loop->streams);
    loop->evloop = h2o_evloop_create();
    if (!loop->evloop)
        return FENTA_ENOMEM;
    h2o_timeout_init(loop->evloop, &loop->linger_timeout, LINGER_MS);
    loop->linger_timeout_inited = true;
    h2o_context_init(&loop->ctx, loop->evloop, &s->globalconf);
    loop->ctx_inited = true;
    h2o_multithread_register_receiver(loop->ctx.queue, &loop->done_rx, on_done);
    h2o_multithread_register_receiver(loop->ctx.queue, &loop->ctrl_rx, on_ctrl);
    h2o_multithread_register_receiver(loop->ctx.queue, &loop->stream_rx, on_stream_wake);
    loop->accept_ctx.ctx = &loop->ctx;
    loop->accept_ctx.hosts = s->globalconf.hosts;
    loop->accept_ctx.ssl_ctx = s->ssl;
    int fd = fcntl(s->listen_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return FENTA_EIO;
    loop->listener = h2o_evloop_socket_create(loop->evloop, fd, H2O_SOCKET_FLAG_DONT_READ);
    loop->listener->data = loop;
    h2o_socket_read_start(loop->listener, on_accept);
    return 0;
}

/* One event loop's thread. Its h2o side is made and freed here, never on
 * the controlling thread: h2o objects keep the per-thread caches of the
 * thread that made them (a socket's input buffer recycles through the
 * creator's TLS h2o_socket_buffer_prototype, without locks). With the
 * contexts made by http_server_start, both loops recycled the buffers of
 * their wake pipes through the controlling thread's cache at once, which
 * corrupted the heap (glibc aborting in tcache_thread_shutdown as a loop
 * thread exited); and a context freed after its thread ended would hand
 * buffers back to that thread's dead TLS. */
static void *loop_main(void *arg)
{
    loop_t *loop = arg;
    http_server_t *s = loop->server;
    pthread_setname_np(pthread_self(), "http-loop");
    int rc = loop_setup(loop);
    pthread_mutex_lock(&s->qlock);
    loop->setup_rc = rc;
    loop->setup_done = true;
    pthread_cond_broadcast(&s->setup_cond);
    pthread_mutex_unlock(&s->qlock);
    if (rc == 0) {
        while (!loop->exiting)
            h2o_evloop_run(loop->evloop, INT32_MAX);
        int64_t deadline = mono_ms() + CLOSE_GRACE_MS;
        while (loop->nconns && mono_ms() < deadline)
            h2o_evloop_run(loop->evloop, 10);
        h2o_evloop_run(loop->evloop, 0); /* whatever is still queued for the receivers */
        /* from here on no producer can wake this loop; wakes already posted
         * are dropped by loop_teardown */
        loop_end_streams(loop, true);
        /* The exit message may have been taken before its sender was done:
         * h2o_multithread_send_message links the message under the queue's
         * lock but writes the wake-up byte to the queue's pipe after
         * unlocking, and a loop woken by an earlier byte takes the message
         * meanwhile. Tearing down then would free the queue and close the
         * pipe under that write. So wait until the sender is out. */
        pthread_mutex_lock(&s->qlock);
        while (!loop->exit_posted)
            pthread_cond_wait(&s->setup_cond, &s->qlock);
        pthread_mutex_unlock(&s->qlock);
    }
    loop_teardown(loop);
    /* h2o caches freed socket buffers per thread; hand them back before the
     * thread (and its TLS) goes. Other such caches are private to h2o. */
    h2o_mem_recycle_t *cache = &h2o_socket_buffer_prototype.allocator;
    while (cache->cnt)
        free(h2o_mem_alloc_recycle(cache, 1));
    return NULL;
}

/* ---- configuration ------------------------------------------------------------------ */

/* What http_server_new may have made, whether or not it finished: the
 * router, TLS context, listening socket, copied strings and queue sync. */
static void free_server(http_server_t *s)
{
    router_destroy(&s->router);
    if (s->ssl)
        SSL_CTX_free(s->ssl);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s->loops);
    free(s->workers);
    free(s->hist);
    free(s->listen);
    free(s->tls_cert);
    free(s->tls_key);
    free(s->openapi);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_cond_destroy(&s->setup_cond);
    free(s);
}

/* "host:port" or "[v6]:port" -> a listening, non-blocking socket. */
static int open_listener(const char *spec, int *fd_out, uint16_t *port_out)
{
    char host[256];
    const char *port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
            return FENTA_EINVAL;
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof(host) ||
            memchr(spec, ':', (size_t)(colon - spec)))
            return FENTA_EINVAL;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        return FENTA_EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res)
        return FENTA_EINVAL;
    int rc = FENTA_EIO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* accepted sockets inherit it: small responses leave at once */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
        *fd_out = fd;
        rc = 0;
        break;
    }
    freeaddrinfo(res);
    return rc;
}

static SSL_CTX *tls_context(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_get_error();
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        log_msg(LOG_ERROR, NULL, "http: cannot load TLS certificate %s / key %s: %s", cert, key,
                buf);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols); /* h2, then http/1.1 */
    return ctx;
}

http_server_t *http_server_new(const http_config_t *cfg, int *err)
{
    int rc = FENTA_EINVAL;
    http_server_t *s = NULL;
    if (!cfg || (!cfg->tls_cert) != (!cfg->tls_key) || cfg->loops < 0 || cfg->workers < 0 ||
        cfg->stop_timeout_ms < 0)
        goto fail;
    rc = FENTA_ENOMEM;
    s = calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    s->listen_fd = -1;
    bool nomem = false;
    s->cfg = *cfg;
    s->listen = dup_opt(cfg->listen ? cfg->listen : DEFAULT_LISTEN, &nomem);
    s->tls_cert = dup_opt(cfg->tls_cert, &nomem);
    s->tls_key = dup_opt(cfg->tls_key, &nomem);
    s->openapi = dup_opt(cfg->openapi, &nomem);
    s->router = router_new();
    if (nomem || !s->router)
        goto fail;
    s->cfg.listen = s->listen;
    s->cfg.tls_cert = s->tls_cert;
    s->cfg.tls_key = s->tls_key;
    s->cfg.openapi = s->openapi;
    if (!s->cfg.loops) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.loops = cores < 1 ? 1 : cores > 64 ? 64 : (int)cores;
    }
    if (!s->cfg.workers)
        s->cfg.workers = DEFAULT_WORKERS;
    if (!s->cfg.max_body)
        s->cfg.max_body = DEFAULT_MAX_BODY;
    if (!s->cfg.max_upload_part)
        s->cfg.max_upload_part = HTTP_DEFAULT_MAX_UPLOAD_PART;
    if (!s->cfg.max_connections)
        s->cfg.max_connections = DEFAULT_MAX_CONNECTIONS;
    if (s->cfg.max_body > s->cfg.max_upload_part) {
        rc = FENTA_EINVAL;
        goto fail;
    }
    if (!s->cfg.max_headers)
        s->cfg.max_headers = DEFAULT_MAX_HEADERS;
    if (!s->cfg.max_queue)
        s->cfg.max_queue = DEFAULT_MAX_QUEUE;
    if (!s->cfg.stop_timeout_ms)
        s->cfg.stop_timeout_ms = DEFAULT_STOP_TIMEOUT_MS;
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_cond_init(&s->setup_cond, NULL);
    atomic_init(&s->nconns, 0);
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->open_streams, 0);
    atomic_init(&s->stopping, false);

    if (s->tls_cert) {
        s->ssl = tls_context(s->tls_cert, s->tls_key);
        if (!s->ssl) {
            rc = FENTA_EIO;
            goto fail;
        }
    }
    rc = open_listener(s->listen, &s->listen_fd, &s->port);
    if (rc != 0) {
        log_msg(LOG_ERROR, NULL, "http: cannot listen on %s: %s", s->listen,
                rc == FENTA_EINVAL ? "bad address" : strerror(errno));
        goto fail;
    }

    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("")); /* no Server header */
    s->globalconf.max_request_entity_size = s->cfg.max_upload_part;
    /* libh2o's one setting for every socket buffer of the process (not per
     * server): a body past it is read into an unlinked temporary file, so
     * the bodies h2o holds cost heap only up to half of it each (buffers
     * double) however large they are. h2o's default, 32 MiB, let each
     * 60 MiB body hold 16 MiB of heap. */
    h2o_socket_buffer_mmap_settings.threshold = HTTP_BODY_SPILL_BYTES;
    s->hostconf =
        h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    /* Everything hangs on the fallback path: it is where h2o binds requests
     * that fail before routing (413 while reading), so the error filter and
     * the access log see those too. */
    h2o_pathconf_t *pc = &s->hostconf->fallback_path;
    app_handler_t *h = (app_handler_t *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = on_req;
    h->server = s;
    err_filter_t *f = (err_filter_t *)h2o_create_filter(pc, sizeof(*f));
    f->super.on_setup_ostream = err_setup_ostream;
    f->server = s;
    access_logger_t *l = (access_logger_t *)h2o_create_logger(pc, sizeof(*l));
    l->super.log_access = log_access;
    l->server = s;
    s->state = ST_NEW;
    if (err)
        *err = 0;
    return s;
fail:
    if (s)
        free_server(s);
    if (err)
        *err = rc;
    return NULL;
}

int http_server_route(http_server_t *s, const http_route_t *routes, size_t n)
{
    if (!s)
        return FENTA_EINVAL;
    if (s->state != ST_NEW)
        return FENTA_ESTOPPED;
    for (size_t i = 0; routes && i < n; i++)
        if (routes[i].max_body > s->cfg.max_upload_part) /* h2o would refuse it first */
            return FENTA_EINVAL;
    return router_add(s->router, routes, n);
}

struct st_h2o_hostconf_t *http__server_hostconf(http_server_t *s)
{
    return s->hostconf;
}

uint16_t http_server_port(const http_server_t *s)
{
    return s ? s->port : 0;
}

bool http__server_stopping(const http_server_t *s)
{
    return atomic_load(&s->stopping);
}

const http_config_t *http__server_config(const http_server_t *s)
{
    return &s->cfg;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int http_server_start(http_server_t *s)
{
    if (!s)
        return FENTA_EINVAL;
    if (s->state != ST_NEW)
        return FENTA_ESTOPPED;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);

    size_t nroutes = router_count(s->router);
    s->hist = calloc(nroutes + 1, sizeof(*s->hist));
    s->nloops = (size_t)s->cfg.loops;
    s->nworkers = (size_t)s->cfg.workers;
    s->loops = calloc(s->nloops, sizeof(*s->loops));
    s->workers = calloc(s->nworkers, sizeof(*s->workers));
    if (!s->hist || !s->loops || !s->workers)
        goto fail;
    for (size_t i = 0; i <= nroutes; i++) {
        char labels[300];
        snprintf(labels, sizeof(labels), "route=\"%s\"",
                 i < nroutes ? router_route(s->router, i)->pattern : "none");
        s->hist[i] = metrics_histogram("fenta_http_request_seconds",
                                       "HTTP request latency by route", labels, NULL, 0);
    }
    s->state = ST_STARTED;
    int rc = 0;
    for (; s->workers_started < s->nworkers; s->workers_started++)
        if (pthread_create(&s->workers[s->workers_started], NULL, worker_main, s) != 0) {
            rc = FENTA_EIO;
            break;
        }
    for (size_t i = 0; i < s->nloops && rc == 0; i++) {
        s->loops[i].server = s;
        s->loops[i].index = i;
        if (pthread_create(&s->loops[i].thread, NULL, loop_main, &s->loops[i]) != 0)
            rc = FENTA_EIO;
        else
            s->loops[i].thread_started = true;
    }
    /* every started loop must be set up (holding its dup of the listening
     * socket, its receivers registered) before anyone may stop it */
    pthread_mutex_lock(&s->qlock);
    for (size_t i = 0; i < s->nloops; i++) {
        while (s->loops[i].thread_started && !s->loops[i].setup_done)
            pthread_cond_wait(&s->setup_cond, &s->qlock);
        if (rc == 0 && s->loops[i].thread_started)
            rc = s->loops[i].setup_rc;
    }
    pthread_mutex_unlock(&s->qlock);
    if (rc != 0) {
        http_server_stop(s);
        return rc;
    }
    /* the loops hold dups; the original would keep the socket listening
     * (queueing connections nobody accepts) after they close theirs */
    close(s->listen_fd);
    s->listen_fd = -1;
    return 0;
fail:
    free(s->loops);
    free(s->workers);
    free(s->hist);
    s->loops = NULL;
    s->workers = NULL;
    s->hist = NULL;
    s->nloops = s->nworkers = 0;
    return FENTA_ENOMEM;
}

static void send_ctrl(http_server_t *s, int cmd)
{
    for (size_t i = 0; i < s->nloops; i++) {
        loop_t *loop = &s->loops[i];
        if (!loop->thread_started || loop->setup_rc != 0) /* no receivers to post to */
            continue;
        loop->ctrl[cmd].cmd = cmd;
        loop->ctrl[cmd].super.link = (h2o_linklist_t){NULL, NULL}; /* unlinked */
        h2o_multithread_send_message(&loop->ctrl_rx, &loop->ctrl[cmd].super);
        if (cmd == CTRL_EXIT) { /* the loop may free its queue now: see loop_main */
            pthread_mutex_lock(&s->qlock);
            loop->exit_posted = true;
            pthread_cond_broadcast(&s->setup_cond);
            pthread_mutex_unlock(&s->qlock);
        }
    }
}

void http_server_stop(http_server_t *s)
{
    if (!s || s->state != ST_STARTED)
        return;
    s->state = ST_STOPPED;
    atomic_store(&s->stopping, true);
    send_ctrl(s, CTRL_DRAIN);

    int64_t deadline = mono_ms() + s->cfg.stop_timeout_ms;
    while (atomic_load(&s->in_flight) > 0 && mono_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&s->in_flight) > 0)
        log_msg(LOG_WARN, NULL, "http: stopping with %zu requests still in progress",
                atomic_load(&s->in_flight));

    pthread_mutex_lock(&s->qlock);
    s->qstop = true;
    s->qreject = true;
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    for (size_t i = 0; i < s->workers_started; i++)
        pthread_join(s->workers[i], NULL);
    s->workers_started = 0;

    /* the drain ended every stream, but their last bytes (HTTP/2 frames
     * above all) are written on a later loop turn: closing the sockets now
     * would cut them off. A client that does not read is not waited for. */
    deadline = mono_ms() + STREAM_GRACE_MS;
    while (atomic_load(&s->open_streams) > 0 && mono_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }

    /* every job has been posted back: the loops answer or drop them, then
     * close their connections and return */
    send_ctrl(s, CTRL_EXIT);
    for (size_t i = 0; i < s->nloops; i++) {
        if (s->loops[i].thread_started) /* each tears its loop down before it returns */
            pthread_join(s->loops[i].thread, NULL);
        s->loops[i].thread_started = false;
    }
}

void http_server_destroy(http_server_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    http_server_t *s = *s_p;
    http_server_stop(s);
    h2o_config_dispose(&s->globalconf);
    free_server(s);
    *s_p = NULL;
}
