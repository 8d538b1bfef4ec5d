/* server_stream.c - the bodies that are not in memory: streamed responses
 * (http_stream_t, written by producers on any thread, and its loop side
 * that hands the bytes to h2o) and file bodies (http_respond_file, read
 * from the file a chunk at a time as h2o sends; at the end of the file).
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
#include "http/server_h2o_internal.h"
#include "http/server_internal.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/vec.h"

#include <h2o.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct http_stream {
    pthread_mutex_t lock;          /* guards every field below but msg's link */
    int refs;                      /* see the top of the file */
    char *buf;                     /* queued bytes the loop has not taken; malloc'd */
    size_t len, cap;               /* bytes in buf, and its room (vec_reserve) */
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
    /* Bytes, not text, and the loop takes buf itself (port_flush): a plain
     * growable array rather than a strbuf, whose failure would stick. */
    if (vec_reserve(s->buf, s->cap, s->len + len) != 0) {
        pthread_mutex_unlock(&s->lock);
        return FENTA_ENOMEM;
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
void http__on_stream_wake(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
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
void http__stream_start(h2o_req_t *req, http_req_t *r)
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
void http__loop_end_streams(loop_t *loop, bool forget)
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

/* ---- bodies read from a file (http_respond_file) ------------------------------------ */

#define FILE_CHUNK 65536

/* A file body being sent, on the h2o request's pool: its dispose closes the
 * fd whenever h2o frees the request (finished, or the client went away). */
typedef struct {
    h2o_generator_t super; /* first: h2o hands it back to proceed/stop */
    int fd;                /* the file, or -1 once closed */
    off_t off;             /* the next byte to read */
    uint64_t left;         /* bytes still to send */
    char *buf;             /* FILE_CHUNK bytes on the pool, reused once h2o is through */
} file_port_t;

static void file_close(file_port_t *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

static void file_dispose(void *mem)
{
    file_close(mem);
}

/* h2o calls this when the last chunk is written to the socket: only then is
 * buf free to take the next, which is what bounds a download to one chunk. */
static void file_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    file_port_t *f = (file_port_t *)gen;
    size_t want = f->left < FILE_CHUNK ? (size_t)f->left : FILE_CHUNK;
    ssize_t n;
    do
        n = f->fd >= 0 ? pread(f->fd, f->buf, want, f->off) : -1;
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        /* a read error, or the file shrank (written in place, which the
         * object store never does): the headers are gone, so all that is
         * left is to cut the response short */
        log_msg(LOG_ERROR, NULL, "http: cannot read a file body at %lld: %s", (long long)f->off,
                n < 0 ? strerror(errno) : "unexpected end of file");
        file_close(f);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    f->off += n;
    f->left -= (uint64_t)n;
    h2o_iovec_t v = h2o_iovec_init(f->buf, (size_t)n);
    bool last = f->left == 0;
    if (last)
        file_close(f);
    h2o_send(req, &v, 1, last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void file_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    file_close((file_port_t *)gen);
}

void http__file_start(h2o_req_t *req, http_req_t *r)
{
    int fd = r->file_fd;
    r->has_file = false; /* the fd is this function's now */
    bool head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    if (head || r->file_len == 0) {
        static h2o_generator_t no_body = {NULL, NULL};
        close(fd);
        h2o_start_response(req, &no_body);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    file_port_t *f = h2o_mem_alloc_shared(&req->pool, sizeof(*f), file_dispose);
    f->super.proceed = file_proceed;
    f->super.stop = file_stop;
    f->fd = fd;
    f->off = (off_t)r->file_off;
    f->left = r->file_len;
    f->buf = h2o_mem_alloc_pool(&req->pool, FILE_CHUNK);
    h2o_start_response(req, &f->super);
    file_proceed(&f->super, req);
}
