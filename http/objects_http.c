/* objects_http.c - GET/HEAD /v1/objects/{key}: presigned downloads from the
 * local object store, with byte ranges. See objects_http.h.
 *
 * An ordinary route of the server: the handler runs on a worker, checks the
 * signature, opens the object and decides the answer (status, validators,
 * range), then hands the open file to the server (http_respond_file), whose
 * event loop reads it a chunk at a time as the client takes it. So no h2o
 * here: the server's one access log and request metrics count downloads
 * like every other request, and <h2o.h> stays the server's.
 *
 * The file is opened and fstat'ed once, and the fd is what the server
 * reads, so the size, ETag and bytes sent all belong to one inode even when
 * a put replaces the object mid-download. */
#include "http/objects_http.h"
#include "http/request.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------------------ */

/* {"error":{"code","message","details":null}}, never cached: an answer that
 * is about the object (a 416) already carries the object's Cache-Control. */
static int send_error(http_req_t *req, bool cached, int status, const char *code,
                      const char *message)
{
    if (!cached)
        http_add_header(req, "cache-control", "no-store");
    http_respond_error(req, status, code, message, NULL);
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

/* An IMF-fixdate (RFC 9110 5.6.7) into out[64]: spelt out here because
 * strftime's day and month names follow the process locale. */
static void http_date(time_t t, char out[64])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm g;
    gmtime_r(&t, &g);
    snprintf(out, 64, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[g.tm_wday % 7], g.tm_mday,
             months[g.tm_mon % 12], g.tm_year + 1900, g.tm_hour, g.tm_min, g.tm_sec);
}

/* ---- the handler -------------------------------------------------------------------- */

/* Answers req; returns 0 (an int so each answer can end the function). */
static int get_object(http_req_t *req)
{
    /* the store rides on the route (http_route_t.data); it outlives the server */
    objects_t *objects = (objects_t *)http_route(req)->data;
    /* the key: every segment after /v1/objects/, decoded (HTTP_ROUTE_TAIL) */
    const char *key = http_param(req, "key");
    char msg[256] = "object key is missing";
    if (!key || objects_key_check(key, msg, sizeof(msg)) != 0)
        return send_error(req, false, 400, "invalid_key", msg);

    /* the signature before anything about the object: an unsigned probe
     * learns nothing, not even whether the key exists */
    const char *exp_s = http_query(req, "expires");
    const char *sig = http_query(req, "sig");
    const char *bound_ip = http_query(req, "ip"); /* NULL: an unbound URL */
    if (!exp_s || !sig)
        return send_error(req, false, 403, "forbidden",
                          "the URL signature is missing (expires and sig)");
    uint64_t expires;
    if (!parse_u64(exp_s, strlen(exp_s), &expires) || expires > INT64_MAX)
        return send_error(req, false, 403, "forbidden", "the URL signature is invalid");
    int64_t now = clock_now_ms() / 1000; /* the clock the URL was signed on */
    int rc = objects_verify_ip(objects, "GET", key, (int64_t)expires, bound_ip, sig,
                               http_client_ip(req), now, msg, sizeof(msg));
    if (rc == FENTA_ETIMEOUT)
        return send_error(req, false, 403, "forbidden", msg); /* "the URL expired ..." */
    /* Another address gets the forged URL's answer: saying "bound to
     * another address" would tell a stranger holding a leaked URL why. */
    if (rc != 0)
        return send_error(req, false, 403, "forbidden", "the URL signature is invalid");

    char path[PATH_MAX];
    if (objects_path(objects, key, path, sizeof(path), msg, sizeof(msg)) != 0)
        return send_error(req, false, 400, "invalid_key", msg);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        bool missing = fd >= 0 || e == ENOENT || e == ENOTDIR || e == ELOOP;
        if (fd >= 0)
            close(fd);
        if (missing)
            return send_error(req, false, 404, "not_found", "no such object");
        log_msg(LOG_ERROR, NULL, "objects: cannot open %s: %s", key, strerror(e));
        return send_error(req, false, 500, "internal", "cannot read the object");
    }
    uint64_t size = (uint64_t)st.st_size;
    char etag[48];
    objects_etag(size, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, etag);

    /* the validators and caching every answer about the object carries */
    char buf[64];
    snprintf(buf, sizeof(buf), "private, max-age=%lld", (long long)((int64_t)expires - now));
    http_add_header(req, "cache-control", buf);
    http_add_header(req, "etag", etag);
    http_date(st.st_mtim.tv_sec, buf);
    http_add_header(req, "last-modified", buf);
    http_add_header(req, "accept-ranges", "bytes");

    const char *inm = http_header(req, "if-none-match");
    if (inm && etag_listed(inm, etag)) {
        close(fd);
        return http_respond_raw(req, 304, NULL, NULL, 0); /* no body, no Content-Length */
    }

    uint64_t first = 0, last = size ? size - 1 : 0;
    const char *range = http_header(req, "range");
    const char *if_range = http_header(req, "if-range");
    if (range && if_range && strcmp(if_range, etag) != 0)
        range = NULL; /* changed since the client's copy (or a date): send it all */
    enum range_kind rk = parse_range(range, size, &first, &last);
    if (rk == RANGE_UNSATISFIABLE) {
        close(fd);
        snprintf(buf, sizeof(buf), "bytes */%" PRIu64, size);
        http_add_header(req, "content-range", buf);
        return send_error(req, true, 416, "range_not_satisfiable",
                          "the requested range is outside the object");
    }
    uint64_t len = rk == RANGE_ONE ? last - first + 1 : size;
    if (rk == RANGE_ONE) {
        snprintf(buf, sizeof(buf), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        http_add_header(req, "content-range", buf);
    }
    http_respond_file(req, rk == RANGE_ONE ? 206 : 200, objects_content_type(key), fd, first, len);
    return 0;
}

static void on_get(http_req_t *req)
{
    get_object(req);
}

/* ---- mounting ----------------------------------------------------------------------- */

int objects_http_mount(http_server_t *server, objects_t *o)
{
    if (!server || !o)
        return FENTA_EINVAL;
    /* NO_HOOK: the signed URL is the credential, so the API's before hook
     * (tokens, rate limits) is not run; a download takes no body, so the
     * server's default body limit answers a large one with 413. */
    const http_route_t route = {.method = "GET",
                                .pattern = OBJECTS_HTTP_ROUTE,
                                .handler = on_get,
                                .flags = HTTP_ROUTE_NO_HOOK | HTTP_ROUTE_TAIL,
                                .name = "objects_get",
                                .data = o};
    return http_server_route(server, &route, 1);
}
