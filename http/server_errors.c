/* server_errors.c - h2o's own error responses (413 while reading a body,
 * 400 for broken chunking, 417, ...) rewritten in our error shape, with our
 * content type and request id, by an output filter on every response. */
#include "http/server_h2o_internal.h"
#include "http/server_internal.h"

#include <h2o.h>

#include <stdio.h>
#include <string.h>

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

/* Every response we build carries x-request-id; one without it was made by
 * h2o itself (413 while reading a body, 400 for a broken chunked encoding,
 * 417, ...): give it our error body, content type and request id. */
void http__err_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    if (req->res.status >= 400 &&
        h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1) == -1) {
        req_state_t *st = http__state_get(req);
        if (!st)
            st = http__state_new(req);
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
            http__want_linger(req);
    }
    h2o_setup_next_ostream(req, slot);
}
