/* builtin.c - the operational endpoints every deployment gets: /healthz,
 * /readyz, /metrics and /openapi.json, as an ordinary route table. Only
 * /healthz runs on the event loop; the others may call the integrator's
 * readiness check or read a file, so they take a worker. */
#include "http/request.h"
#include "http/server.h"
#include "http/server_internal.h"
#include "runtime/metrics.h"
#include "runtime/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPENAPI_MAX (16 * 1024 * 1024) /* larger is refused: a document, not a dump */

static void h_healthz(http_req_t *r)
{
    http_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(http_req_t *r)
{
    const http_config_t *cfg = http__server_config(r->server);
    bool ready = !http__server_stopping(r->server) && (!cfg->ready || cfg->ready(cfg->app));
    if (ready) {
        http_respond_json(r, 200, json_pack("{s:s}", "status", "ready"));
        return;
    }
    http_add_header(r, "retry-after", "1");
    http_respond_error(r, 503, "not_ready", "the service is not ready", NULL);
}

static void h_metrics(http_req_t *r)
{
    char *text = metrics_render();
    if (!text) {
        http_respond_error(r, 500, "internal", "cannot render metrics", NULL);
        return;
    }
    http_respond_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
}

/* Read on every request: the file is small, and a deploy that replaces it
 * is served without a restart. */
static void h_openapi(http_req_t *r)
{
    const char *path = http__server_config(r->server)->openapi;
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        http_respond_error(r, 404, "not_found", "no OpenAPI document is available", NULL);
        return;
    }
    strbuf_t doc = STRBUF_INIT;
    char chunk[16384];
    bool bad = false;
    for (;;) {
        size_t got = fread(chunk, 1, sizeof chunk, f);
        strbuf_append_len(&doc, chunk, got);
        if (strbuf_failed(&doc) || strbuf_len(&doc) > OPENAPI_MAX) {
            bad = true;
            break;
        }
        if (got < sizeof chunk) { /* the end, or an error */
            bad = ferror(f) != 0;
            break;
        }
    }
    fclose(f);
    if (bad)
        http_respond_error(r, 500, "internal", "cannot read the OpenAPI document", NULL);
    else
        http_respond_raw(r, 200, "application/json", strbuf_str(&doc), strbuf_len(&doc));
    strbuf_free(&doc);
}

int http_server_route_builtins(http_server_t *s)
{
    static const http_route_t builtins[] = {
        {"GET", "/healthz", h_healthz, HTTP_ROUTE_INLINE | HTTP_ROUTE_NO_HOOK, "healthz", NULL, 0},
        {"GET", "/readyz", h_readyz, HTTP_ROUTE_NO_HOOK, "readyz", NULL, 0},
        {"GET", "/metrics", h_metrics, HTTP_ROUTE_NO_HOOK, "metrics", NULL, 0},
        {"GET", "/openapi.json", h_openapi, HTTP_ROUTE_NO_HOOK, "openapi", NULL, 0},
    };
    return http_server_route(s, builtins, sizeof(builtins) / sizeof(builtins[0]));
}
