/* access_log.c - the access log and the request metrics: one JSON log line
 * and one counter and latency observation per request, written by h2o's
 * logger on the loop thread when h2o frees the request (for a streamed
 * response, when it ended). */
#include "http/server_h2o_internal.h"
#include "http/server_internal.h"
#include "http/router.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#include <h2o.h>

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

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

void http__log_access(h2o_logger_t *self, h2o_req_t *req)
{
    http_server_t *s = ((access_logger_t *)self)->server;
    loop_t *loop = H2O_STRUCT_FROM_MEMBER(loop_t, ctx, req->conn->ctx);
    req_state_t *st = http__state_get(req);

    /* Latency from our own clock: h2o's request timestamps come from a
     * per-iteration cache that is stale by however long the loop slept. For
     * requests h2o refused before routing (no state) it is all we have. */
    double secs = 0;
    if (st) {
        secs = (double)(clock_mono_us() - st->start_us) / 1e6;
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
