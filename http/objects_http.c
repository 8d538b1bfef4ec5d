/* objects_http.c - GET/HEAD /v1/objects/{key...}: presigned downloads from
 * the local object store, with byte ranges, streamed from the file. See
 * objects_http.h.
 *
 * Besides the server (server.c and its parts) this is the one module that
 * includes <h2o.h>: streaming a response needs an h2o generator, which the
 * route table's in-memory responses cannot express.
 *
 * Streaming: the file is opened and fstat'ed once (so the size, ETag and
 * bytes sent all belong to one inode, even if a put replaces the object
 * mid-download); a generator on the request's pool preads one chunk into a
 * pool buffer and hands it to h2o_send; h2o calls proceed when the chunk has
 * been written to the socket, and only then is the buffer reused. So a
 * download holds one chunk of memory whatever the file size, and a slow
 * client stalls only its own stream. The fd is closed by the generator's
 * dispose, which h2o runs when it frees the request (also when the client
 * went away mid-stream). */
#include "http/objects_http.h"
#include "http/server_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/id.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#include <h2o.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MOUNT_PATH "/v1/objects"
#define PREFIX "/v1/objects/"
#define ROUTE_LABEL "/v1/objects/{key}"
#define CHUNK 65536

/* The server's default body limit (http_config_t.max_body's default). */
#define OBJECTS_HTTP_MAX_BODY (1024 * 1024)

typedef struct {
    h2o_handler_t super;
    objects_t *objects; /* borrowed; outlives the server */
} handler_t;

typedef struct {
    h2o_logger_t super;
} logger_t;

/* A download in progress; on the request's pool. */
typedef struct {
    h2o_generator_t super;
    int fd;        /* the object, or -1 once closed */
    off_t off;     /* next byte to read */
    uint64_t left; /* bytes still to send */
    char *buf;     /* CHUNK bytes on the request's pool */
} stream_t;

static h2o_generator_t empty_generator = {NULL, NULL};

/* ---- small helpers ------------------------------------------------------------------ */

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, v.base, v.len);
}

/* The value of a request header, or NULL; NUL-terminated on the pool. */
static const char *req_header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i == -1)
        return NULL;
    const h2o_iovec_t *v = &req->headers.entries[i].value;
    return h2o_strdup(&req->pool, v->base, v->len).base;
}

/* X-Request-Id on every answer: the client's when sane, else a new ULID. */
static void set_request_id(h2o_req_t *req)
{
    char id[129];
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    const h2o_iovec_t *v = i != -1 ? &req->headers.entries[i].value : NULL;
    if (v && http__request_id_ok(v->base, v->len)) {
        memcpy(id, v->base, v->len);
        id[v->len] = '\0';
    } else {
        fenta_id_t fid;
        id_new(&fid);
        id_to_str(&fid, id);
    }
    h2o_iovec_t val = h2o_strdup(&req->pool, id, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          val.base, val.len);
}

static bool is_head(h2o_req_t *req)
{
    return h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
}

static const char *head_or_get(h2o_req_t *req)
{
    return is_head(req)                                                                  ? "HEAD"
           : h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("GET")) ? "GET"
                                                                                         : "OTHER";
}

/* {"error":{"code","message","details":null}} with status. */
static int send_error(h2o_req_t *req, int status, const char *code, const char *message)
{
    json_t *j =
        json_pack("{s:{s:s,s:s,s:n}}", "error", "code", code, "message", message, "details");
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    req->res.status = status;
    req->res.reason = http__reason(status);
    add_header(req, H2O_TOKEN_CONTENT_TYPE, "application/json");
    if (h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) == -1)
        add_header(req, H2O_TOKEN_CACHE_CONTROL, "no-store"); /* a 416 keeps the object's */
    const char *b = body ? body : "{\"error\":{\"code\":\"internal\",\"message\":\"\"}}";
    req->res.content_length = strlen(b);
    h2o_send_inline(req, b, strlen(b)); /* copies; sends no body for HEAD */
    free(body);
    return 0;
}

/* Parses canonical decimal digits (no sign, no leading zero) into *out. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Digits (leading zeros allowed, as in Range) into *out; false on overflow. */
static bool parse_pos(const char *s, size_t n, uint64_t *out)
{
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* The first query parameter called name, decoded on the pool; NULL if absent
 * or badly encoded. */
static const char *query_param(h2o_req_t *req, const char *q, size_t qlen, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i <= qlen;) {
        size_t j = i;
        while (j < qlen && q[j] != '&')
            j++;
        const char *eq = memchr(q + i, '=', j - i);
        size_t klen = eq ? (size_t)(eq - (q + i)) : j - i;
        if (klen == nlen && memcmp(q + i, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : q + j;
            size_t vlen = (size_t)(q + j - v);
            char *out = h2o_mem_alloc_pool(&req->pool, vlen + 1);
            return http__decode(v, vlen, out, true, true) < 0 ? NULL : out;
        }
        i = j + 1;
    }
    return NULL;
}

enum range_kind { RANGE_NONE, RANGE_ONE, RANGE_UNSATISFIABLE };

/* One byte range of a Range header against size: RANGE_ONE with [*first,
 * *last]; RANGE_UNSATISFIABLE; RANGE_NONE to serve the whole object (no or
 * unparsable header, another unit, several ranges). */
static enum range_kind parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!h)
        return RANGE_NONE;
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "bytes=", 6) != 0)
        return RANGE_NONE;
    h += 6;
    if (strchr(h, ','))
        return RANGE_NONE; /* several ranges: a multipart answer is not worth it */
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    while (n && (*h == ' ' || *h == '\t'))
        h++, n--;
    const char *dash = memchr(h, '-', n);
    if (!dash)
        return RANGE_NONE;
    size_t alen = (size_t)(dash - h), blen = n - alen - 1;
    uint64_t a, b;
    if (alen == 0) { /* bytes=-n: the last n bytes */
        if (!parse_pos(dash + 1, blen, &b))
            return RANGE_NONE;
        if (b == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return RANGE_ONE;
    }
    if (!parse_pos(h, alen, &a))
        return RANGE_NONE;
    if (blen == 0) {
        b = UINT64_MAX;
    } else if (!parse_pos(dash + 1, blen, &b) || b < a) {
        return RANGE_NONE; /* invalid: ignored, per RFC 9110 14.1.1 */
    }
    if (a >= size)
        return RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return RANGE_ONE;
}

/* True when an If-None-Match list names etag (or is "*"); weak comparison. */
static bool etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        const char *t = p;
        if (n >= 2 && t[0] == 'W' && t[1] == '/')
            t += 2, n -= 2;
        if ((n == 1 && *t == '*') || (n == elen && memcmp(t, etag, elen) == 0))
            return true;
        p = end ? end + 1 : p + strlen(p);
    }
    return false;
}

/* ---- streaming ---------------------------------------------------------------------- */

static void stream_close(stream_t *s)
{
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static void stream_dispose(void *p)
{
    stream_close(p);
}

static void stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    stream_t *s = (stream_t *)g;
    size_t want = s->left < CHUNK ? (size_t)s->left : CHUNK;
    ssize_t n;
    do
        n = s->fd >= 0 ? pread(s->fd, s->buf, want, s->off) : -1;
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        /* a read error, or the file shrank under us (only if someone wrote
         * into it in place, which puts never do): the headers are gone, so
         * all we can do is cut the response short */
        log_msg(LOG_ERROR, NULL, "objects: cannot read at %lld: %s", (long long)s->off,
                n < 0 ? strerror(errno) : "unexpected end of file");
        stream_close(s);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    s->off += n;
    s->left -= (uint64_t)n;
    h2o_iovec_t v = h2o_iovec_init(s->buf, (size_t)n);
    bool last = s->left == 0;
    if (last)
        stream_close(s);
    h2o_send(req, &v, 1, last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
    stream_close((stream_t *)g);
}

/* ---- the handler -------------------------------------------------------------------- */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    objects_t *objects = ((handler_t *)self)->objects;
    set_request_id(req);
    bool head = is_head(req);
    /* h2o reads bodies up to the server's max_upload_part, so the limit of
     * the server's routes without their own applies here too: a download
     * takes no body, and a large one is refused first, as server.c does */
    if (req->entity.len > OBJECTS_HTTP_MAX_BODY)
        return send_error(req, 413, "payload_too_large", "request body is too large");
    if (!head && !h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("GET"))) {
        add_header(req, H2O_TOKEN_ALLOW, "GET, HEAD");
        return send_error(req, 405, "method_not_allowed", "objects are read with GET or HEAD");
    }

    /* the key: the raw path after the prefix, percent-decoded */
    const char *raw = req->input.path.base;
    size_t rawlen = req->input.path.len;
    const char *qmark = raw ? memchr(raw, '?', rawlen) : NULL;
    size_t plen = qmark ? (size_t)(qmark - raw) : rawlen;
    if (!raw || plen <= strlen(PREFIX) || memcmp(raw, PREFIX, strlen(PREFIX)) != 0)
        return send_error(req, 404, "not_found", "no such route");
    size_t klen = plen - strlen(PREFIX);
    if (klen > OBJECTS_KEY_MAX * 3)
        return send_error(req, 400, "invalid_key", "object key is too long");
    char *key = h2o_mem_alloc_pool(&req->pool, klen + 1);
    char msg[256];
    if (http__decode(raw + strlen(PREFIX), klen, key, false, true) < 0)
        return send_error(req, 400, "invalid_key", "object key is not valid percent-encoding");
    if (objects_key_check(key, msg, sizeof(msg)) != 0)
        return send_error(req, 400, "invalid_key", msg);

    /* the signature before anything about the object: an unsigned probe
     * learns nothing, not even whether the key exists */
    const char *q = qmark ? qmark + 1 : "";
    size_t qlen = qmark ? rawlen - plen - 1 : 0;
    const char *exp_s = query_param(req, q, qlen, "expires");
    const char *sig = query_param(req, q, qlen, "sig");
    const char *bound_ip = query_param(req, q, qlen, "ip"); /* NULL: an unbound URL */
    if (!exp_s || !sig)
        return send_error(req, 403, "forbidden", "the URL signature is missing (expires and sig)");
    uint64_t expires;
    if (!parse_u64(exp_s, strlen(exp_s), &expires) || expires > INT64_MAX)
        return send_error(req, 403, "forbidden", "the URL signature is invalid");
    int64_t now = clock_now_ms() / 1000; /* the clock the URL was signed on */
    char ip[NI_MAXHOST];
    http__peer_ip(req->conn, ip, sizeof(ip));
    int rc = objects_verify_ip(objects, "GET", key, (int64_t)expires, bound_ip, sig, ip, now, msg,
                               sizeof(msg));
    if (rc == FENTA_ETIMEOUT)
        return send_error(req, 403, "forbidden", msg); /* "the URL expired ..." */
    /* Another address gets the forged URL's answer: saying "bound to
     * another address" would tell a stranger holding a leaked URL why. */
    if (rc != 0)
        return send_error(req, 403, "forbidden", "the URL signature is invalid");

    char path[PATH_MAX];
    if (objects_path(objects, key, path, sizeof(path), msg, sizeof(msg)) != 0)
        return send_error(req, 400, "invalid_key", msg);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        bool missing = fd >= 0 || e == ENOENT || e == ENOTDIR || e == ELOOP;
        if (fd >= 0)
            close(fd);
        if (missing)
            return send_error(req, 404, "not_found", "no such object");
        log_msg(LOG_ERROR, NULL, "objects: cannot open %s: %s", key, strerror(e));
        return send_error(req, 500, "internal", "cannot read the object");
    }
    uint64_t size = (uint64_t)st.st_size;
    char etag[48];
    objects_etag(size, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, etag);

    /* the validators and caching every answer about the object carries */
    char buf[64];
    snprintf(buf, sizeof(buf), "private, max-age=%lld", (long long)((int64_t)expires - now));
    add_header(req, H2O_TOKEN_CACHE_CONTROL, buf);
    add_header(req, H2O_TOKEN_ETAG, etag);
    struct tm gmt;
    char lm[H2O_TIMESTR_RFC1123_LEN + 1];
    gmtime_r(&st.st_mtim.tv_sec, &gmt);
    h2o_time2str_rfc1123(lm, &gmt);
    add_header(req, H2O_TOKEN_LAST_MODIFIED, lm);
    add_header(req, H2O_TOKEN_ACCEPT_RANGES, "bytes");

    const char *inm = req_header(req, H2O_TOKEN_IF_NONE_MATCH);
    if (inm && etag_listed(inm, etag)) {
        close(fd);
        req->res.status = 304;
        req->res.reason = http__reason(304);
        req->res.content_length = SIZE_MAX; /* 304 has no Content-Length of its own */
        h2o_start_response(req, &empty_generator);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return 0;
    }

    uint64_t first = 0, last = size ? size - 1 : 0;
    const char *range = req_header(req, H2O_TOKEN_RANGE);
    const char *if_range = req_header(req, H2O_TOKEN_IF_RANGE);
    if (range && if_range && strcmp(if_range, etag) != 0)
        range = NULL; /* changed since the client's copy (or a date): send it all */
    enum range_kind rk = parse_range(range, size, &first, &last);
    if (rk == RANGE_UNSATISFIABLE) {
        close(fd);
        snprintf(buf, sizeof(buf), "bytes */%" PRIu64, size);
        add_header(req, H2O_TOKEN_CONTENT_RANGE, buf);
        return send_error(req, 416, "range_not_satisfiable",
                          "the requested range is outside the object");
    }
    add_header(req, H2O_TOKEN_CONTENT_TYPE, objects_content_type(key));
    uint64_t len = rk == RANGE_ONE ? last - first + 1 : size;
    if (rk == RANGE_ONE) {
        snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        add_header(req, H2O_TOKEN_CONTENT_RANGE, buf);
    }
    req->res.status = rk == RANGE_ONE ? 206 : 200;
    req->res.reason = http__reason(req->res.status);
    req->res.content_length = (size_t)len;

    if (head || len == 0) {
        close(fd);
        h2o_start_response(req, &empty_generator);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return 0;
    }
    stream_t *s = h2o_mem_alloc_shared(&req->pool, sizeof(*s), stream_dispose);
    s->super.proceed = stream_proceed;
    s->super.stop = stream_stop;
    s->fd = fd;
    s->off = (off_t)first;
    s->left = len;
    s->buf = h2o_mem_alloc_pool(&req->pool, CHUNK);
    h2o_start_response(req, &s->super);
    stream_proceed(&s->super, req);
    return 0;
}

/* ---- access log and metrics ----------------------------------------------------------- */

/* The same line and counter http/access_log.c writes for routed requests. */
static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    int status = req->res.status ? req->res.status : 499; /* 499: the client went away first */
    const char *method = head_or_get(req);
    char labels[160];
    snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",status=\"%d\"", ROUTE_LABEL,
             method, status);
    metric_inc(metrics_counter("fenta_http_requests_total",
                               "HTTP requests by route, method and status", labels));
    if (!log_enabled(LOG_INFO))
        return;

    /* h2o stamps requests with gettimeofday, so the access log's latency is
     * measured on that clock; a log line, never a decision. */
    struct timeval now, begin = req->timestamps.request_begin_at;
    gettimeofday(&now, NULL);
    double ms =
        (double)(now.tv_sec - begin.tv_sec) * 1e3 + (double)(now.tv_usec - begin.tv_usec) / 1e3;
    char path[1025], stat_s[8], bytes[24], lat[32], proto[32], ip[NI_MAXHOST], rid[130] = "-";
    size_t pl = req->input.path.len;
    const char *q = req->input.path.base ? memchr(req->input.path.base, '?', pl) : NULL;
    if (q) /* never the query: it is the credential */
        pl = (size_t)(q - req->input.path.base);
    snprintf(path, sizeof(path), "%.*s", (int)(pl < 1024 ? pl : 1024),
             req->input.path.base ? req->input.path.base : "");
    snprintf(stat_s, sizeof(stat_s), "%d", status);
    snprintf(bytes, sizeof(bytes), "%zu", req->bytes_sent);
    snprintf(lat, sizeof(lat), "%.3f", ms < 0 ? 0 : ms);
    size_t n = h2o_stringify_protocol_version(proto, req->version);
    proto[n < sizeof(proto) ? n : 0] = '\0';
    http__peer_ip(req->conn, ip, sizeof(ip));
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    if (i != -1)
        snprintf(rid, sizeof(rid), "%.*s", (int)req->res.headers.entries[i].value.len,
                 req->res.headers.entries[i].value.base);
    const char *kv[] = {"method",     method,     "path",       path,    "route",
                        ROUTE_LABEL,  "status",   stat_s,       "bytes", bytes,
                        "latency_ms", lat,        "request_id", rid,     "ip",
                        ip,           "protocol", proto,        NULL};
    log_kv(LOG_INFO, NULL, "request", kv);
}

/* ---- mounting ----------------------------------------------------------------------- */

int objects_http_mount_host(struct st_h2o_hostconf_t *host, objects_t *o)
{
    if (!host || !o)
        return FENTA_EINVAL;
    h2o_pathconf_t *pc = h2o_config_register_path(host, MOUNT_PATH, 0);
    if (!pc)
        return FENTA_ENOMEM;
    handler_t *h = (handler_t *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = on_req;
    h->objects = o;
    logger_t *l = (logger_t *)h2o_create_logger(pc, sizeof(*l));
    l->super.log_access = log_access;
    return 0;
}

int objects_http_mount(http_server_t *server, objects_t *o)
{
    if (!server || !o)
        return FENTA_EINVAL;
    return objects_http_mount_host(http__server_hostconf(server), o);
}
