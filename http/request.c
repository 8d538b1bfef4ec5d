/* request.c - the request handle: reading the request a handler was given
 * and building its response, plus the decoding the event loop does before a
 * handler ever sees the request (percent-decoding, UTF-8, query strings).
 * No h2o here: the handle is a plain copy, which is what lets workers block. */
#include "http/server_internal.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/strutil.h"

#include <ctype.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- arena ----------------------------------------------------------------- */

#define CHUNK_MIN 4096

struct http__chunk {
    http__chunk_t *next;
    size_t cap, used;
    max_align_t data[]; /* max_align_t keeps every block aligned */
};

void *http__alloc(http_req_t *req, size_t n)
{
    const size_t align = alignof(max_align_t);
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    http__chunk_t *c = req->arena.head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN / 2 ? n : CHUNK_MIN;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        /* a big block gets its own chunk behind the current one, so the
         * current chunk's free space stays in use */
        if (cap == n && req->arena.head) {
            c->next = req->arena.head->next;
            req->arena.head->next = c;
        } else {
            c->next = req->arena.head;
            req->arena.head = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

char *http__strndup(http_req_t *req, const char *s, size_t n)
{
    char *p = http__alloc(req, n + 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void http__req_release(http_req_t *req)
{
    if (!req)
        return;
    if (req->data_free && req->data)
        req->data_free(req->data);
    req->data = NULL;
    json_decref(req->json);
    req->json = NULL;
    free(req->res_body);
    req->res_body = NULL;
    http__stream_drop(&req->stream); /* still here: the loop never sent it */
    if (req->has_file) {             /* likewise */
        close(req->file_fd);
        req->has_file = false;
    }
    http__chunk_t *c = req->arena.head;
    while (c) {
        http__chunk_t *next = c->next;
        free(c);
        c = next;
    }
    req->arena.head = NULL;
}

/* ---- decoding ---------------------------------------------------------------- */

/* Strict UTF-8: no overlongs, surrogates or code points past U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

long http__decode(const char *s, size_t n, char *out, bool plus_is_space, bool no_ctl)
{
    long o = strutil_pct_decode(s, n, out,
                                (plus_is_space ? STRUTIL_PCT_PLUS_SPACE : 0u) |
                                    (no_ctl ? STRUTIL_PCT_NO_CTL : 0u));
    if (o < 0 || !utf8_valid((const unsigned char *)out, (size_t)o))
        return -1;
    return o;
}

#define QUERY_MAX 64

int http__parse_query(http_req_t *req, const char *q, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += q[i] == '&';
    if (count + 1 > QUERY_MAX)
        return FENTA_ETOOBIG;
    req->query = http__alloc(req, (count + 1) * sizeof(http__kv_t));
    if (!req->query)
        return FENTA_ENOMEM;
    size_t start = 0;
    while (start <= n) {
        const char *amp = memchr(q + start, '&', n - start);
        size_t end = amp ? (size_t)(amp - q) : n;
        if (end > start) {
            const char *piece = q + start;
            size_t plen = end - start;
            const char *eq = memchr(piece, '=', plen);
            size_t klen = eq ? (size_t)(eq - piece) : plen;
            size_t vlen = eq ? plen - klen - 1 : 0;
            char *k = http__alloc(req, klen + 1);
            char *v = http__alloc(req, vlen + 1);
            if (!k || !v)
                return FENTA_ENOMEM;
            if (http__decode(piece, klen, k, true, false) < 0 ||
                http__decode(eq ? eq + 1 : "", vlen, v, true, false) < 0)
                return FENTA_EINVAL;
            req->query[req->nquery].name = k;
            req->query[req->nquery].value = v;
            req->nquery++;
        }
        if (!amp)
            break;
        start = end + 1;
    }
    return 0;
}

bool http__request_id_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool http__is_json_type(const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    size_t len = 0;
    while (len < n && v[len] != ';' && v[len] != ' ' && v[len] != '\t')
        len++;
    static const char app[] = "application/";
    if (len < sizeof(app) - 1 || strncasecmp(v, app, sizeof(app) - 1) != 0)
        return false;
    const char *sub = v + sizeof(app) - 1;
    size_t sublen = len - (sizeof(app) - 1);
    if (sublen == 4 && strncasecmp(sub, "json", 4) == 0)
        return true;
    return sublen > 5 && strncasecmp(sub + sublen - 5, "+json", 5) == 0;
}

const char *http__reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* ---- reading the request ----------------------------------------------------- */

static const char *kv_find(const http__kv_t *kv, size_t n, const char *name, bool nocase)
{
    if (!kv || !name)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((nocase ? strcasecmp(kv[i].name, name) : strcmp(kv[i].name, name)) == 0)
            return kv[i].value;
    return NULL;
}

const char *http_method(const http_req_t *req)
{
    return req ? req->method : NULL;
}

const char *http_path(const http_req_t *req)
{
    return req ? req->path : NULL;
}

const char *http_param(const http_req_t *req, const char *name)
{
    return req ? kv_find(req->params, req->nparams, name, false) : NULL;
}

const char *http_query(const http_req_t *req, const char *name)
{
    return req ? kv_find(req->query, req->nquery, name, false) : NULL;
}

const char *http_header(const http_req_t *req, const char *name)
{
    return req ? kv_find(req->headers, req->nheaders, name, true) : NULL;
}

const void *http_body(const http_req_t *req, size_t *len)
{
    if (len)
        *len = req ? req->body_len : 0;
    return req && req->body_len ? req->body : NULL;
}

json_t *http_json_body(http_req_t *req, const char **err)
{
    if (!req) {
        if (err)
            *err = "no request";
        return NULL;
    }
    if (!req->json_done) {
        req->json_done = true;
        if (req->body_len == 0) {
            req->json_err = "request body is empty";
        } else {
            json_error_t je;
            req->json = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
            if (!req->json) {
                char buf[256];
                /* je.text is jansson's own ASCII text; no client bytes */
                snprintf(buf, sizeof(buf), "malformed JSON at line %d, column %d: %s", je.line,
                         je.column, je.text);
                req->json_err = http__strndup(req, buf, strlen(buf));
                if (!req->json_err)
                    req->json_err = "malformed JSON";
            }
        }
    }
    if (err)
        *err = req->json ? NULL : req->json_err;
    return req->json;
}

int http_require_json(http_req_t *req)
{
    const char *ct = http_header(req, "content-type");
    if (ct && http__is_json_type(ct, strlen(ct)))
        return 0;
    http_respond_error(req, 415, "unsupported_media_type", "Content-Type must be application/json",
                       NULL);
    return FENTA_EINVAL;
}

json_t *http_read_json(http_req_t *req)
{
    if (http_require_json(req) != 0)
        return NULL;
    const char *err = NULL;
    json_t *body = http_json_body(req, &err);
    if (!body)
        http_respond_error(req, 400, "malformed_json", err ? err : "malformed JSON", NULL);
    return body;
}

const char *http_client_ip(const http_req_t *req)
{
    return req ? req->ip : NULL;
}

const char *http_request_id(const http_req_t *req)
{
    return req ? req->request_id : NULL;
}

const char *http_protocol(const http_req_t *req)
{
    return req ? req->protocol : NULL;
}

bool http_is_tls(const http_req_t *req)
{
    return req && req->tls;
}

void *http_app(const http_req_t *req)
{
    return req ? req->app : NULL;
}

const http_route_t *http_route(const http_req_t *req)
{
    return req ? req->route : NULL;
}

void http_set_data(http_req_t *req, void *data, void (*free_fn)(void *))
{
    if (!req)
        return;
    if (req->data && req->data_free && req->data != data)
        req->data_free(req->data);
    req->data = data;
    req->data_free = free_fn;
}

void *http_data(const http_req_t *req)
{
    return req ? req->data : NULL;
}

int http_log_field(http_req_t *req, const char *key, const char *value)
{
    if (!req || !key || !value)
        return FENTA_EINVAL;
    if (req->nlog_fields == HTTP_LOG_FIELDS_MAX)
        return FENTA_ETOOBIG;
    char *k = http__strndup(req, key, strlen(key));
    char *v = http__strndup(req, value, strlen(value));
    if (!k || !v)
        return FENTA_ENOMEM;
    req->log_fields[req->nlog_fields].name = k;
    req->log_fields[req->nlog_fields].value = v;
    req->nlog_fields++;
    return 0;
}

/* ---- building the response ------------------------------------------------------ */

static int already(http_req_t *req, int status)
{
    log_msg(LOG_WARN, NULL, "http: second response %d for request %s ignored (first %d)", status,
            req->request_id ? req->request_id : "-", req->status);
    return FENTA_EEXIST;
}

/* The last-resort answer when even building an error fails: an empty 500. */
static void set_bare_500(http_req_t *req)
{
    free(req->res_body);
    req->res_body = NULL;
    req->res_body_len = 0;
    req->content_type = NULL;
    req->status = 500;
}

int http_respond_json(http_req_t *req, int status, json_t *body)
{
    if (!req) {
        json_decref(body);
        return FENTA_EINVAL;
    }
    if (req->status) {
        json_decref(body);
        return already(req, status);
    }
    if (!body || status < 200 || status > 599) {
        json_decref(body);
        log_msg(LOG_ERROR, NULL, "http: invalid JSON response (status %d, body %s) for %s %s",
                status, body ? "set" : "NULL", req->method, req->route ? req->route->pattern : "");
        http_respond_error(req, 500, "internal", "internal error", NULL);
        return FENTA_EINVAL;
    }
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    json_decref(body);
    if (!text) {
        set_bare_500(req);
        return FENTA_ENOMEM;
    }
    req->status = status;
    req->res_body = text;
    req->res_body_len = strlen(text);
    req->content_type = "application/json";
    return 0;
}

int http_respond_error(http_req_t *req, int status, const char *code, const char *message,
                       json_t *details)
{
    if (!req) {
        json_decref(details);
        return FENTA_EINVAL;
    }
    if (req->status) {
        json_decref(details);
        return already(req, status);
    }
    json_t *c = json_string(code ? code : "internal");
    json_t *m = json_string(message ? message : "");
    if (!c)
        c = json_string("internal");
    if (!m) /* not UTF-8: never echo such bytes back */
        m = json_string("(message withheld: not valid UTF-8)");
    json_t *err = json_object();
    json_t *root = json_object();
    if (!c || !m || !err || !root) {
        json_decref(c);
        json_decref(m);
        json_decref(details);
        json_decref(err);
        json_decref(root);
        set_bare_500(req);
        return FENTA_ENOMEM;
    }
    /* set_new steals the value even when it fails, so after this point root
     * owns (or has freed) everything */
    int bad = json_object_set_new(err, "code", c);
    bad |= json_object_set_new(err, "message", m);
    bad |= json_object_set_new(err, "details", details ? details : json_null());
    bad |= json_object_set_new(root, "error", err);
    if (bad) {
        json_decref(root);
        set_bare_500(req);
        return FENTA_ENOMEM;
    }
    if (status < 400 || status > 599)
        status = 500;
    return http_respond_json(req, status, root);
}

/* Sets status and a copy of content_type (NULL: none): 0, or FENTA_ENOMEM
 * with a bare 500 set instead. */
static int set_head(http_req_t *req, int status, const char *content_type)
{
    const char *ct = content_type ? http__strndup(req, content_type, strlen(content_type)) : NULL;
    if (content_type && !ct) {
        set_bare_500(req);
        return FENTA_ENOMEM;
    }
    req->status = status;
    req->content_type = ct;
    return 0;
}

/* Whether status may carry a body that is not in memory: 200..599 but 204
 * and 304 (no body) and 1xx (the protocol's). Otherwise logs our caller's
 * bug and answers 500. */
static bool body_status_ok(http_req_t *req, int status, const char *what)
{
    if (status >= 200 && status <= 599 && status != 204 && status != 304)
        return true;
    log_msg(LOG_ERROR, NULL, "http: invalid %s status %d for %s %s", what, status, req->method,
            req->route ? req->route->pattern : "");
    http_respond_error(req, 500, "internal", "internal error", NULL);
    return false;
}

int http_respond_raw(http_req_t *req, int status, const char *content_type, const void *bytes,
                     size_t len)
{
    if (!req)
        return FENTA_EINVAL;
    if (req->status)
        return already(req, status);
    if (status < 200 || status > 599 || (len && !bytes)) {
        http_respond_error(req, 500, "internal", "internal error", NULL);
        return FENTA_EINVAL;
    }
    char *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            set_bare_500(req);
            return FENTA_ENOMEM;
        }
        memcpy(copy, bytes, len);
    }
    if (set_head(req, status, content_type) != 0) {
        free(copy);
        return FENTA_ENOMEM;
    }
    req->res_body = copy;
    req->res_body_len = len;
    return 0;
}

http_stream_t *http_respond_stream(http_req_t *req, int status, const char *content_type)
{
    if (!req)
        return NULL;
    if (req->status) {
        already(req, status);
        return NULL;
    }
    if (!body_status_ok(req, status, "stream"))
        return NULL;
    http_stream_t *s = http__stream_new();
    if (!s) {
        set_bare_500(req);
        return NULL;
    }
    if (set_head(req, status, content_type) != 0) {
        http__stream_drop(&s);
        return NULL;
    }
    req->stream = s; /* the handle's reference, taken over by the loop */
    return http__stream_ref(s);
}

int http_respond_file(http_req_t *req, int status, const char *content_type, int fd,
                      uint64_t offset, uint64_t length)
{
    int rc = 0;
    if (!req || fd < 0 || offset > INT64_MAX || length > INT64_MAX - offset)
        rc = FENTA_EINVAL;
    else if (req->status)
        rc = already(req, status);
    else if (!body_status_ok(req, status, "file"))
        rc = FENTA_EINVAL;
    else
        rc = set_head(req, status, content_type);
    if (rc != 0) {
        if (fd >= 0) /* ours from the call on, also on failure */
            close(fd);
        if (rc == FENTA_EINVAL && req && !req->status)
            http_respond_error(req, 500, "internal", "internal error", NULL);
        return rc;
    }
    req->has_file = true;
    req->file_fd = fd;
    req->file_off = offset;
    req->file_len = length;
    return 0;
}

static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int http_add_header(http_req_t *req, const char *name, const char *value)
{
    if (!req || !name || !value || !name[0])
        return FENTA_EINVAL;
    size_t nlen = strlen(name), vlen = strlen(value);
    for (size_t i = 0; i < nlen; i++)
        if (!token_char((unsigned char)name[i]))
            return FENTA_EINVAL;
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return FENTA_EINVAL;
    }
    /* framing and hop-by-hop headers belong to the server (and are illegal
     * in HTTP/2) */
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                           "keep-alive",     "upgrade",           "x-request-id"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return FENTA_EINVAL;
    if (req->nres_headers == HTTP_RES_HEADERS_MAX)
        return FENTA_ETOOBIG;
    char *n = http__strndup(req, name, nlen);
    char *v = http__strndup(req, value, vlen);
    if (!n || !v)
        return FENTA_ENOMEM;
    for (char *p = n; *p; p++) /* HTTP/2 requires lower-case names */
        *p = (char)tolower((unsigned char)*p);
    req->res_headers[req->nres_headers].name = n;
    req->res_headers[req->nres_headers].value = v;
    req->nres_headers++;
    return 0;
}

bool http_responded(const http_req_t *req)
{
    return req && req->status != 0;
}

int http_status(const http_req_t *req)
{
    return req ? req->status : 0;
}

void http__ensure_response(http_req_t *req)
{
    if (req->status || req->stream) /* a declared stream is a response */
        return;
    log_msg(LOG_ERROR, NULL, "http: handler for %s %s returned without responding (request %s)",
            req->method, req->route ? req->route->pattern : "?", req->request_id);
    http_respond_error(req, 500, "internal", "the handler did not respond", NULL);
}
