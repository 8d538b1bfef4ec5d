/* server.c - the core request path of the h2o server: event loops, the
 * worker pool, dispatch of requests to routes, sending responses back on the
 * right loop, the server's configuration and lifecycle. Its other
 * responsibilities live beside it and share its structures through
 * server_h2o_internal.h: streamed responses (server_stream.c), the access
 * log and request metrics (access_log.c), listening sockets, TLS and
 * connections (listen.c), and h2o's own error responses (server_errors.c).
 * What is left (about 980 lines) is one path, a request from on_req to
 * send_response with the loops and workers it runs on; it stays one file
 * because all of it shares the job and guard lifetimes described below.
 *
 * These files are the one module that includes <h2o.h>. h2o is libh2o-evloop 2.2: it buffers
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
 * the worker never reads h2o memory, so there is nothing to race on. */
#include "http/server.h"
#include "http/request.h"
#include "http/router.h"
#include "http/server_h2o_internal.h"
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

req_state_t *http__state_get(h2o_req_t *req)
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

req_state_t *http__state_new(h2o_req_t *req)
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
        http__stream_start(req, r);
        return;
    }
    if (r->has_file) {
        req->res.content_length = (size_t)r->file_len;
        http__file_start(req, r);
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
    req_state_t *st = http__state_new(req);

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
    /* as many segments as the path has: a tail route takes any depth */
    size_t maxsegs = 1;
    for (size_t i = 1; i < plen; i++)
        maxsegs += raw[i] == '/';
    const char **segs = http__alloc(r, maxsegs * sizeof(*segs));
    size_t nsegs = 0;
    if (!r->path || !segs)
        return reply_error(req, st, job, 503, "unavailable", "out of memory");
    for (size_t i = 1; plen > 1 && i <= plen;) {
        size_t j = i;
        while (j < plen && raw[j] != '/')
            j++;
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
        char msg[300];
        snprintf(msg, sizeof(msg), "method not allowed on this route (it takes %s)", m.allow);
        http_add_header(r, "allow", m.allow);
        return reply_error(req, st, job, 405, "method_not_allowed", msg);
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
        if (r->route->flags & HTTP_ROUTE_TAIL) { /* the last one takes the rest */
            size_t pos = 0, len = 0;
            router_param(s->router, m.index, np - 1, &pos);
            for (size_t k = pos; k < nsegs; k++)
                len += strlen(segs[k]) + 1;
            char *rest = http__alloc(r, len);
            if (!rest)
                return reply_error(req, st, job, 503, "unavailable", "out of memory");
            for (size_t k = pos, o = 0; k < nsegs; k++) {
                size_t n = strlen(segs[k]);
                memcpy(rest + o, segs[k], n);
                o += n;
                rest[o++] = k + 1 < nsegs ? '/' : '\0';
            }
            r->params[np - 1].value = rest;
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

/* ---- loops ----------------------------------------------------------------------------- */

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
            http__loop_end_streams(loop, false);
        } else {
            loop->exiting = true;
            /* wake every connection: h2o sees EOF or an error and closes it
             * through its own paths, freeing what it owns */
            for (h2o_linklist_t *n = loop->conns.next; n != &loop->conns; n = n->next) {
                conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, n);
                shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
            }
            while (!h2o_linklist_is_empty(&loop->lingers))
                http__linger_close(H2O_STRUCT_FROM_MEMBER(linger_t, link, loop->lingers.next));
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
            http__linger_close(H2O_STRUCT_FROM_MEMBER(linger_t, link, loop->lingers.next));
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
            http__on_stream_wake(&loop->stream_rx, &left);
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
    h2o_multithread_register_receiver(loop->ctx.queue, &loop->stream_rx, http__on_stream_wake);
    loop->accept_ctx.ctx = &loop->ctx;
    loop->accept_ctx.hosts = s->globalconf.hosts;
    loop->accept_ctx.ssl_ctx = s->ssl;
    int fd = fcntl(s->listen_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return FENTA_EIO;
    loop->listener = h2o_evloop_socket_create(loop->evloop, fd, H2O_SOCKET_FLAG_DONT_READ);
    loop->listener->data = loop;
    h2o_socket_read_start(loop->listener, http__on_accept);
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
        http__loop_end_streams(loop, true);
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
        s->ssl = http__tls_context(s->tls_cert, s->tls_key);
        if (!s->ssl) {
            rc = FENTA_EIO;
            goto fail;
        }
    }
    rc = http__open_listener(s->listen, &s->listen_fd, &s->port);
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
    f->super.on_setup_ostream = http__err_setup_ostream;
    f->server = s;
    access_logger_t *l = (access_logger_t *)h2o_create_logger(pc, sizeof(*l));
    l->super.log_access = http__log_access;
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
