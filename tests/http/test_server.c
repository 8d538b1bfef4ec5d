/* test_server.c - http/server: a real server on an ephemeral port, driven
 * over real sockets by libcurl (HTTP/1.1, h2c prior knowledge and upgrade,
 * TLS with ALPN h2) and by raw TCP for what curl will not send.
 *
 * Criterion runs each test in its own process, so every test gets a fresh
 * server (2 loops, 8 workers) and fresh metrics and log settings.
 *
 * Why one file of ~1,600 lines: every test here drives the same server
 * through the same handful of routes and curl helpers (the top third of the
 * file); split, each part would carry a copy of them or a fixture header of
 * its own that nothing else uses. The sections below (protocols, limits,
 * dispatch and workers, errors, teardown) keep it readable in one look. */
#include "http/request.h"
#include "http/server.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "tests/support/fixtures.h"
#include "tests/support/log_capture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* h2o keeps freed buffers in per-thread caches, some of them private to the
 * library (the HTTP/2 write buffers, the request-pool chunks), and never
 * frees them when a thread exits. They are bounded and reused while the
 * server runs; what stays behind after a loop thread ends is not ours to
 * free. Everything else must be leak-free. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

/* ---- the server under test --------------------------------------------------------- */

static http_server_t *srv;
static char base[64];
static char *tmpdir;
static char openapi_path[512];
static atomic_bool ready_flag;
static atomic_int sleeps_done;
static atomic_int hook_calls;

static bool is_ready(void *app)
{
    cr_assert_eq(app, &ready_flag, "the app pointer reaches callbacks");
    return atomic_load(&ready_flag);
}

static const char *thread_kind(void)
{
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof(name));
    return strncmp(name, "http-worker", 11) == 0 ? "worker"
           : strncmp(name, "http-loop", 9) == 0  ? "loop"
                                                 : "other";
}

static void h_member(http_req_t *r)
{
    http_log_field(r, "org_id", http_param(r, "id"));
    http_respond_json(r, 200,
                      json_pack("{s:s?,s:s?,s:s?,s:s?,s:s,s:b}", "id", http_param(r, "id"), "uid",
                                http_param(r, "uid"), "limit", http_query(r, "limit"), "q",
                                http_query(r, "q"), "thread", thread_kind(), "app",
                                http_app(r) == &ready_flag));
}

static void h_me(http_req_t *r)
{
    http_respond_json(r, 200, json_pack("{s:b}", "me", 1));
}

static void h_delete(http_req_t *r)
{
    http_respond_raw(r, 204, NULL, NULL, 0);
}

static void h_echo(http_req_t *r) /* a JSON route: 415 is the server's job */
{
    const char *err = NULL;
    json_t *body = http_json_body(r, &err);
    if (!body) {
        http_respond_error(r, 400, "malformed_json", err, NULL);
        return;
    }
    http_respond_json(r, 200, json_pack("{s:O,s:s}", "echo", body, "thread", thread_kind()));
}

static void h_parse(http_req_t *r) /* not flagged: uses the helper */
{
    json_t *body = http_read_json(r);
    if (body)
        http_respond_json(r, 201, json_pack("{s:O}", "parsed", body));
}

/* Counts what reached a handler and answers the body's size. */
static atomic_int sized_calls;

static void h_size(http_req_t *r)
{
    atomic_fetch_add(&sized_calls, 1);
    size_t len = 0;
    http_body(r, &len);
    http_respond_json(r, 200, json_pack("{s:I}", "bytes", (json_int_t)len));
}

static void h_sleep(http_req_t *r)
{
    const char *ms = http_query(r, "ms");
    usleep((useconds_t)(ms ? atoi(ms) : 20) * 1000);
    atomic_fetch_add(&sleeps_done, 1);
    http_respond_json(r, 200, json_pack("{s:b}", "slept", 1));
}

static void h_noresp(http_req_t *r)
{
    (void)r; /* forgets to answer */
}

static void h_twice(http_req_t *r)
{
    http_add_header(r, "x-custom", "yes");
    http_respond_json(r, 200, json_pack("{s:i}", "n", 1));
    int rc = http_respond_json(r, 500, json_pack("{s:i}", "n", 2));
    http_add_header(r, "x-second-rc", rc == FENTA_EEXIST ? "eexist" : "other");
    http_add_header(r, "x-bad", "a\r\nb"); /* refused: response splitting */
}

static void h_inline(http_req_t *r)
{
    http_respond_json(r, 200, json_pack("{s:s}", "thread", thread_kind()));
}

static void h_hooked(http_req_t *r)
{
    http_respond_json(r, 200, json_pack("{s:s?}", "user", (const char *)http_data(r)));
}

static void h_path(http_req_t *r)
{
    http_respond_json(r, 200, json_pack("{s:s}", "path", http_param(r, "path")));
}

/* The integrator's hook: denies with 401 unless x-user is present. */
static int before(http_req_t *r, const http_route_t *route)
{
    atomic_fetch_add(&hook_calls, 1);
    cr_assert_eq(route, http_route(r));
    if (route->data && strcmp(route->data, "auth") == 0) {
        const char *user = http_header(r, "x-user");
        if (!user) {
            http_add_header(r, "www-authenticate", "Bearer");
            http_respond_error(r, 401, "unauthorized", "who are you?", NULL);
            return 0;
        }
        http_set_data(r, strdup(user), free);
    }
    if (route->data && strcmp(route->data, "fail") == 0)
        return FENTA_EDENIED; /* fails without responding: 500 */
    return 0;
}

static const http_route_t routes[] = {
    {"GET", "/v1/orgs/{id}/members/{uid}", h_member, 0, "member", NULL, 0},
    {"PUT", "/v1/orgs/{id}/members/{uid}", h_member, 0, "member_put", NULL, 0},
    {"GET", "/v1/orgs/me", h_me, 0, "me", NULL, 0},
    {"DELETE", "/v1/orgs/{id}", h_delete, 0, "org_delete", NULL, 0},
    {"POST", "/echo", h_echo, HTTP_ROUTE_JSON, "echo", NULL, 0},
    {"POST", "/parse", h_parse, 0, "parse", NULL, 0},
    {"GET", "/sleep", h_sleep, 0, "sleep", NULL, 0},
    {"GET", "/noresp", h_noresp, 0, "noresp", NULL, 0},
    {"GET", "/twice", h_twice, 0, "twice", NULL, 0},
    {"GET", "/inline", h_inline, HTTP_ROUTE_INLINE, "inline", NULL, 0},
    {"GET", "/hooked", h_hooked, 0, "hooked", "auth", 0},
    {"GET", "/hookfail", h_hooked, 0, "hookfail", "fail", 0},
    {"POST", "/upload", h_size, 0, "upload", NULL, 3 * 1024 * 1024}, /* its own, larger limit */
    {"POST", "/small", h_size, 0, "small", NULL, 1024},              /* its own, smaller one */
    {"GET", "/files/{path}", h_path, HTTP_ROUTE_TAIL, "files", NULL, 0},
    {"GET", "/files/readme", h_me, 0, "readme", NULL, 0},
};

static http_server_t *start_server(const char *cert, const char *key, int *port)
{
    http_config_t cfg = {
        .listen = "127.0.0.1:0",
        .loops = 2,
        .workers = 8,
        .tls_cert = cert,
        .tls_key = key,
        .openapi = openapi_path,
        .app = &ready_flag,
        .before = before,
        .ready = is_ready,
        .stop_timeout_ms = 3000,
    };
    int err = 1;
    http_server_t *s = http_server_new(&cfg, &err);
    cr_assert_not_null(s, "http_server_new: %s", fenta_strerror(err));
    cr_assert_eq(err, 0);
    cr_assert_eq(http_server_route(s, routes, sizeof(routes) / sizeof(routes[0])), 0);
    cr_assert_eq(http_server_route_builtins(s), 0);
    cr_assert_eq(http_server_start(s), 0);
    *port = http_server_port(s);
    cr_assert_gt(*port, 0);
    return s;
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    log_set_level(LOG_WARN); /* access lines only where a test asks for them */
    tmpdir = fx_tmpdir("http");
    snprintf(openapi_path, sizeof(openapi_path), "%s/openapi.json", tmpdir);
    FILE *f = fopen(openapi_path, "w");
    cr_assert_not_null(f);
    fputs("{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"t\",\"version\":\"1\"}}", f);
    fclose(f);
    atomic_store(&ready_flag, true);
    int port;
    srv = start_server(NULL, NULL, &port);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
}

static void teardown(void)
{
    http_server_destroy(&srv);
    cr_assert_null(srv);
    fx_rmdir(tmpdir);
    curl_global_cleanup();
}

TestSuite(server, .init = setup, .fini = teardown, .timeout = 30);

/* ---- a small curl client ------------------------------------------------------------- */

typedef struct {
    CURLcode rc;
    long status;
    long version;  /* CURL_HTTP_VERSION_* */
    long connects; /* connections curl opened: more than one means it retried */
    char *body;
    size_t len;
    char headers[16384]; /* raw header lines of every response block */
    size_t hlen;
} resp_t;

typedef struct {
    const char *method;
    const char *url; /* absolute, or a path appended to base */
    const char *body;
    size_t body_len;
    const char *const *headers; /* NULL-terminated "name: value" */
    long version;               /* 0 = HTTP/1.1 */
    bool chunked;               /* send body with Transfer-Encoding: chunked */
    long timeout_ms;
} call_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    char *grown = realloc(r->body, r->len + sz * n + 1);
    cr_assert_not_null(grown);
    r->body = grown;
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t room = sizeof(r->headers) - 1 - r->hlen;
    size_t take = sz * n < room ? sz * n : room;
    memcpy(r->headers + r->hlen, p, take);
    r->hlen += take;
    r->headers[r->hlen] = '\0';
    return sz * n;
}

typedef struct {
    const char *data;
    size_t len, off;
} upload_t;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    upload_t *u = ud;
    size_t take = u->len - u->off < sz * n ? u->len - u->off : sz * n;
    memcpy(buf, u->data + u->off, take);
    u->off += take;
    return take;
}

static CURL *easy_for(const call_t *c, resp_t *r, struct curl_slist **hl, upload_t *up)
{
    CURL *e = curl_easy_init();
    cr_assert_not_null(e);
    char url[4096]; /* curl copies it */
    if (strncmp(c->url, "http", 4) == 0)
        snprintf(url, sizeof(url), "%s", c->url);
    else
        snprintf(url, sizeof(url), "%s%s", base, c->url);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, c->version ? c->version : CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms ? c->timeout_ms : 10000L);
    if (c->method)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
    if (c->method && strcmp(c->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    *hl = NULL;
    for (const char *const *h = c->headers; h && *h; h++)
        *hl = curl_slist_append(*hl, *h);
    if (c->body && c->chunked) {
        up->data = c->body;
        up->len = c->body_len;
        up->off = 0;
        *hl = curl_slist_append(*hl, "Transfer-Encoding: chunked");
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, up);
    } else if (c->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    }
    if (*hl)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hl);
    return e;
}

static void finish(CURL *e, resp_t *r)
{
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &r->version);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &r->connects);
}

static resp_t call(call_t c)
{
    resp_t r = {0};
    struct curl_slist *hl;
    upload_t up;
    CURL *e = easy_for(&c, &r, &hl, &up);
    r.rc = curl_easy_perform(e);
    finish(e, &r);
    curl_easy_cleanup(e);
    curl_slist_free_all(hl);
    return r;
}

static resp_t get(const char *path)
{
    return call((call_t){.url = path});
}

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* The value of the last header `name` received (the final response's). */
static bool header(const resp_t *r, const char *name, char *out, size_t cap)
{
    bool found = false;
    size_t nlen = strlen(name);
    for (const char *line = r->headers; *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = (size_t)(line + len - v);
            snprintf(out, cap, "%.*s", (int)vlen, v);
            found = true;
        }
        line += len + (eol ? 2 : 0);
    }
    return found;
}

static json_t *json_of(const resp_t *r)
{
    cr_assert_not_null(r->body, "a body (status %ld)", r->status);
    json_error_t je;
    json_t *j = json_loads(r->body, 0, &je);
    cr_assert_not_null(j, "JSON body: %s (%s)", r->body, je.text);
    return j;
}

/* Asserts the error shape and code; returns nothing, frees what it parsed. */
static void assert_error(const resp_t *r, long status, const char *code)
{
    cr_assert_eq(r->rc, CURLE_OK, "curl: %s", curl_easy_strerror(r->rc));
    cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status, status,
                 r->body ? r->body : "");
    char ct[128], rid[160];
    cr_assert(header(r, "content-type", ct, sizeof(ct)));
    cr_assert_str_eq(ct, "application/json");
    cr_assert(header(r, "x-request-id", rid, sizeof(rid)), "errors carry X-Request-Id");
    json_t *j = json_of(r);
    json_t *err = json_object_get(j, "error");
    cr_assert(json_is_object(err), "error object in %s", r->body);
    cr_assert_eq(json_object_size(err), 3, "exactly code, message, details: %s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")), code);
    cr_assert(json_is_string(json_object_get(err, "message")));
    cr_assert_not_null(json_object_get(err, "details"));
    json_decref(j);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A raw TCP exchange: sends req (n bytes), reads until close or timeout. */
static char *raw_exchange(int port, const char *req, size_t n, size_t *out_len, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        ssize_t got = recv(fd, buf + len, cap - len, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == cap)
            break;
    }
    buf[len] = '\0';
    close(fd);
    if (out_len)
        *out_len = len;
    return buf;
}

static int server_port(void)
{
    return atoi(strrchr(base, ':') + 1);
}

/* The server still answers, quickly. */
static void assert_alive(void)
{
    resp_t r = get("/healthz");
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}

/* ---- routing ---------------------------------------------------------------------------- */

Test(server, routes_params_and_query_on_a_worker)
{
    resp_t r = get("/v1/orgs/acme%20co/members/u%C3%A9?limit=10&q=a+b%26c&flag");
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char ct[64];
    cr_assert(header(&r, "content-type", ct, sizeof(ct)));
    cr_assert_str_eq(ct, "application/json");
    json_t *j = json_of(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "acme co");
    cr_assert_str_eq(json_string_value(json_object_get(j, "uid")), "u\xc3\xa9");
    cr_assert_str_eq(json_string_value(json_object_get(j, "limit")), "10");
    cr_assert_str_eq(json_string_value(json_object_get(j, "q")), "a b&c");
    cr_assert_str_eq(json_string_value(json_object_get(j, "thread")), "worker");
    cr_assert(json_is_true(json_object_get(j, "app")));
    json_decref(j);
    resp_free(&r);
}

Test(server, literal_segment_beats_parameter)
{
    /* GET /v1/orgs/me and DELETE /v1/orgs/{id} */
    resp_t r = get("/v1/orgs/me");
    cr_assert_eq(r.status, 200, "the literal wins: %s", r.body);
    cr_assert_str_eq(r.body, "{\"me\":true}");
    resp_free(&r);
    r = call((call_t){.method = "DELETE", .url = "/v1/orgs/me"});
    assert_error(&r, 405, "method_not_allowed");
    char allow[64];
    cr_assert(header(&r, "allow", allow, sizeof(allow)));
    cr_assert_str_eq(allow, "GET, HEAD");
    resp_free(&r);
    r = get("/v1/orgs/acme");
    assert_error(&r, 405, "method_not_allowed");
    cr_assert(header(&r, "allow", allow, sizeof(allow)));
    cr_assert_str_eq(allow, "DELETE");
    resp_free(&r);
}

Test(server, tail_parameter_takes_the_rest_of_the_path)
{
    resp_t r = get("/files/a/b%2Fc/d.txt");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.body, "{\"path\":\"a/b/c/d.txt\"}", "decoded, joined with /");
    resp_free(&r);
    r = get("/files/readme");
    cr_assert_str_eq(r.body, "{\"me\":true}", "the literal route is more specific");
    resp_free(&r);
    r = get("/files/readme/notes");
    cr_assert_str_eq(r.body, "{\"path\":\"readme/notes\"}");
    resp_free(&r);
    char deep[256] = "/files";
    for (int i = 0; i < 40; i++) /* deeper than any pattern may be */
        strcat(deep, "/x");
    r = get(deep);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "x/x/x"));
    resp_free(&r);
    r = get("/files/");
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    r = get("/files");
    assert_error(&r, 404, "not_found");
    resp_free(&r);
}

Test(server, unknown_path_is_404_json)
{
    resp_t r = get("/nope/nothing");
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    r = get("/v1/orgs/a/members/b/extra");
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    r = get("/v1/orgs/a/members/");
    assert_error(&r, 404, "not_found");
    resp_free(&r);
}

Test(server, wrong_method_is_405_with_allow)
{
    resp_t r =
        call((call_t){.method = "POST", .url = "/v1/orgs/a/members/b", .body = "x", .body_len = 1});
    assert_error(&r, 405, "method_not_allowed");
    char allow[128];
    cr_assert(header(&r, "allow", allow, sizeof(allow)));
    cr_assert_str_eq(allow, "GET, HEAD, PUT");
    json_t *j = json_of(&r);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    cr_assert(msg && strstr(msg, "GET, HEAD, PUT"), "the message names them too: %s", msg);
    json_decref(j);
    resp_free(&r);
}

Test(server, head_uses_the_get_route_without_a_body)
{
    resp_t r = call((call_t){.method = "HEAD", .url = "/v1/orgs/a/members/b"});
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0);
    resp_free(&r);
}

Test(server, no_content_has_no_body)
{
    resp_t r = call((call_t){.method = "DELETE", .url = "/v1/orgs/acme"});
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 204);
    cr_assert_eq(r.len, 0);
    resp_free(&r);
    assert_alive(); /* and the keep-alive connection still frames correctly */
}

Test(server, route_table_is_validated)
{
    http_config_t cfg = {.listen = "127.0.0.1:0", .loops = 1, .workers = 1};
    int err;
    http_server_t *s = http_server_new(&cfg, &err);
    cr_assert_not_null(s);
    const http_route_t bad[][1] = {
        {{"get", "/x", h_me, 0, NULL, NULL, 0}},
        {{"GET", "x", h_me, 0, NULL, NULL, 0}},
        {{"GET", "/x//y", h_me, 0, NULL, NULL, 0}},
        {{"GET", "/x/", h_me, 0, NULL, NULL, 0}},
        {{"GET", "/{a}/{a}", h_me, 0, NULL, NULL, 0}},
        {{"GET", "/{}", h_me, 0, NULL, NULL, 0}},
        {{"GET", "/a%20b", h_me, 0, NULL, NULL, 0}},
        {{"GET", "/x", NULL, 0, NULL, NULL, 0}},
        {{"GET", "/\"", h_me, 0, NULL, NULL, 0}},
        {{"GET", "/x", h_me, HTTP_ROUTE_TAIL, NULL, NULL, 0}}, /* only a {param} takes the rest */
        {{"GET", "/", h_me, HTTP_ROUTE_TAIL, NULL, NULL, 0}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(http_server_route(s, bad[i], 1), FENTA_EINVAL, "route %zu", i);
    const http_route_t ok[] = {{"GET", "/", h_me, 0, NULL, NULL, 0},
                               {"GET", "/a/{b}", h_me, 0, NULL, NULL, 0}};
    cr_assert_eq(http_server_route(s, ok, 2), 0);
    const http_route_t dup[] = {{"GET", "/a/{other}", h_me, 0, NULL, NULL, 0}};
    cr_assert_eq(http_server_route(s, dup, 1), FENTA_EEXIST);
    cr_assert_eq(http_server_start(s), 0);
    cr_assert_eq(http_server_route(s, ok, 1), FENTA_ESTOPPED, "no routes after start");
    http_server_destroy(&s);
    cr_assert_null(s);
    http_server_destroy(&s); /* NULL-safe */

    cfg.listen = "not-an-address";
    cr_assert_null(http_server_new(&cfg, &err));
    cr_assert_eq(err, FENTA_EINVAL);
    cfg.listen = "127.0.0.1:99999";
    cr_assert_null(http_server_new(&cfg, &err));
    cr_assert_eq(err, FENTA_EINVAL);
    cfg.listen = "127.0.0.1:0";
    cfg.tls_cert = "/nonexistent/cert.pem";
    cr_assert_null(http_server_new(&cfg, &err), "a cert without a key");
    cfg.tls_key = "/nonexistent/key.pem";
    cr_assert_null(http_server_new(&cfg, &err));
    cr_assert_eq(err, FENTA_EIO);
}

Test(server, listens_on_ipv6)
{
    http_config_t cfg = {.listen = "[::1]:0", .loops = 1, .workers = 1};
    int err;
    http_server_t *s = http_server_new(&cfg, &err);
    if (!s) {
        cr_log_warn("no IPv6 loopback here (%s); skipped", fenta_strerror(err));
        return;
    }
    cr_assert_eq(http_server_route_builtins(s), 0);
    cr_assert_eq(http_server_start(s), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://[::1]:%u/healthz", http_server_port(s));
    resp_t r = get(url);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    http_server_destroy(&s);
}

/* ---- bodies, JSON, request ids, error shape ------------------------------------------------- */

Test(server, json_echo_on_a_worker)
{
    const char *h[] = {"Content-Type: application/json; charset=utf-8", NULL};
    const char *body = "{\"name\":\"caf\xc3\xa9\",\"n\":[1,2,3]}";
    resp_t r = call((call_t){
        .method = "POST", .url = "/echo", .body = body, .body_len = strlen(body), .headers = h});
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = json_of(&r);
    json_t *want = json_loads(body, 0, NULL);
    cr_assert(json_equal(json_object_get(j, "echo"), want));
    cr_assert_str_eq(json_string_value(json_object_get(j, "thread")), "worker");
    json_decref(want);
    json_decref(j);
    resp_free(&r);
}

Test(server, wrong_content_type_is_415)
{
    const char *h[] = {"Content-Type: text/plain", NULL};
    resp_t r =
        call((call_t){.method = "POST", .url = "/echo", .body = "{}", .body_len = 2, .headers = h});
    assert_error(&r, 415, "unsupported_media_type");
    resp_free(&r);
    r = call(
        (call_t){.method = "POST", .url = "/parse", .body = "{}", .body_len = 2, .headers = h});
    assert_error(&r, 415, "unsupported_media_type");
    resp_free(&r);
    const char *vnd[] = {"Content-Type: application/vnd.fenta+json", NULL};
    r = call(
        (call_t){.method = "POST", .url = "/parse", .body = "[1]", .body_len = 3, .headers = vnd});
    cr_assert_eq(r.status, 201, "+json types are JSON");
    resp_free(&r);
}

Test(server, malformed_json_is_400)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    const char *bad[] = {"{\"a\":", "{\"a\":1,\"a\":2}", "[1] trailing", "\"\xff\"",
                         "{\"a\":\"\\u0000\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resp_t r = call((call_t){.method = "POST",
                                 .url = "/echo",
                                 .body = bad[i],
                                 .body_len = strlen(bad[i]),
                                 .headers = h});
        assert_error(&r, 400, "malformed_json");
        resp_free(&r);
        r = call((call_t){.method = "POST",
                          .url = "/parse",
                          .body = bad[i],
                          .body_len = strlen(bad[i]),
                          .headers = h});
        assert_error(&r, 400, "malformed_json");
        resp_free(&r);
    }
    resp_t r =
        call((call_t){.method = "POST", .url = "/echo", .body = "", .body_len = 0, .headers = h});
    assert_error(&r, 400, "malformed_json");
    resp_free(&r);
}

Test(server, request_id_passthrough_and_generation)
{
    const char *sane[] = {"X-Request-Id: abc-123_X.y", NULL};
    resp_t r = call((call_t){.url = "/healthz", .headers = sane});
    char rid[200];
    cr_assert(header(&r, "x-request-id", rid, sizeof(rid)));
    cr_assert_str_eq(rid, "abc-123_X.y");
    resp_free(&r);

    char longid[200];
    memset(longid, 'a', 129);
    longid[129] = '\0';
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", longid);
    const char *insane[][2] = {
        {"X-Request-Id: has space", NULL}, {"X-Request-Id: a/b", NULL}, {hdr, NULL}};
    for (size_t i = 0; i < 3; i++) {
        r = call((call_t){.url = "/v1/orgs/a/members/b", .headers = insane[i]});
        cr_assert(header(&r, "x-request-id", rid, sizeof(rid)));
        cr_assert_eq(strlen(rid), 26, "a generated ULID, got %s", rid);
        resp_free(&r);
    }
    /* two generated ids differ, errors carry them too */
    char a[64], b[64];
    r = get("/nope");
    cr_assert(header(&r, "x-request-id", a, sizeof(a)));
    resp_free(&r);
    r = get("/nope");
    cr_assert(header(&r, "x-request-id", b, sizeof(b)));
    resp_free(&r);
    cr_assert_str_neq(a, b);
}

Test(server, body_over_the_limit_is_413_with_content_length)
{
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    const char *h[] = {"Content-Type: application/json", NULL};
    /* curl sends Expect: 100-continue here: h2o answers before any body */
    resp_t r =
        call((call_t){.method = "POST", .url = "/echo", .body = big, .body_len = n, .headers = h});
    assert_error(&r, 413, "payload_too_large");
    resp_free(&r);
    const char *noexpect[] = {"Content-Type: application/json", "Expect:", NULL};
    r = call((call_t){
        .method = "POST", .url = "/echo", .body = big, .body_len = n, .headers = noexpect});
    assert_error(&r, 413, "payload_too_large");
    resp_free(&r);
    free(big);
    assert_alive();
}

Test(server, body_over_the_limit_is_413_when_chunked)
{
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    const char *h[] = {"Content-Type: application/json", NULL};
    resp_t r = call((call_t){.method = "POST",
                             .url = "/echo",
                             .body = big,
                             .body_len = n,
                             .headers = h,
                             .chunked = true});
    assert_error(&r, 413, "payload_too_large");
    resp_free(&r);
    free(big);
    assert_alive();
}

Test(server, body_at_the_limit_passes)
{
    size_t n = 1024 * 1024;
    char *body = malloc(n);
    memset(body, ' ', n);
    memcpy(body + n - 2, "{}", 2);
    const char *h[] = {"Content-Type: application/json", NULL};
    resp_t r =
        call((call_t){.method = "POST", .url = "/echo", .body = body, .body_len = n, .headers = h});
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    r = call((call_t){.method = "POST",
                      .url = "/echo",
                      .body = body,
                      .body_len = n,
                      .headers = h,
                      .version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
    cr_assert_eq(r.status, 200, "over HTTP/2 too");
    resp_free(&r);
    free(body);
}

/* The ways a client sends a body: HTTP/1.1 (curl adds Expect: 100-continue
 * past 1 MiB), without Expect, chunked, h2c with prior knowledge, h2c by
 * Upgrade from HTTP/1.1 (the body goes over HTTP/1.1, the answer over h2). */
static const struct {
    const char *name;
    long version;
    bool chunked, no_expect;
} ways[] = {
    {"HTTP/1.1", CURL_HTTP_VERSION_1_1, false, false},
    {"HTTP/1.1 without Expect", CURL_HTTP_VERSION_1_1, false, true},
    {"HTTP/1.1 chunked", CURL_HTTP_VERSION_1_1, true, false},
    {"h2c prior knowledge", CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, false, false},
    {"h2c upgrade", CURL_HTTP_VERSION_2_0, false, false},
};
#define NWAYS (sizeof(ways) / sizeof(ways[0]))

static resp_t post_way(size_t way, const char *url, const char *body, size_t len)
{
    const char *h[] = {"Content-Type: application/json", ways[way].no_expect ? "Expect:" : NULL,
                       NULL};
    return call((call_t){.method = "POST",
                         .url = url,
                         .body = body,
                         .body_len = len,
                         .headers = h,
                         .version = ways[way].version,
                         .chunked = ways[way].chunked,
                         .timeout_ms = 20000});
}

/* The value of one series of /metrics once it reaches want (metrics are
 * recorded when h2o lets a request go, just after its response), or
 * whatever it is after a second. */
static long metric_value(const char *series, long want)
{
    long v = 0;
    for (int tries = 0; tries < 50; tries++) {
        resp_t r = get("/metrics");
        const char *p = r.body ? strstr(r.body, series) : NULL;
        v = p ? atol(p + strlen(series)) : 0;
        resp_free(&r);
        if (v == want)
            break;
        usleep(20000);
    }
    return v;
}

/* A 413 of ours: the error shape, with the limit the client passed. */
static void assert_413(const resp_t *r, size_t max, const char *way)
{
    assert_error(r, 413, "payload_too_large");
    json_t *j = json_of(r);
    json_t *m =
        json_object_get(json_object_get(json_object_get(j, "error"), "details"), "max_bytes");
    cr_assert_eq(json_integer_value(m), (json_int_t)max, "%s: the limit in details: %s", way,
                 r->body);
    json_decref(j);
}

Test(server, json_body_over_its_route_limit_gets_one_413_on_every_protocol)
{
    /* h2o used to hold this limit: over HTTP/2 it reset the stream
     * (REFUSED_STREAM) and curl sent the whole body again five times */
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    for (size_t w = 0; w < NWAYS; w++) {
        resp_t r = post_way(w, "/echo", big, n);
        cr_assert_eq(r.rc, CURLE_OK, "%s: %s", ways[w].name, curl_easy_strerror(r.rc));
        assert_413(&r, 1024 * 1024, ways[w].name);
        cr_assert_eq(r.connects, 1, "%s: one attempt, no retry (%ld connections)", ways[w].name,
                     r.connects);
        if (ways[w].version != CURL_HTTP_VERSION_1_1)
            cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0, "%s answered over h2", ways[w].name);
        resp_free(&r);
    }
    /* the server saw each request exactly once */
    long seen = metric_value(
        "fenta_http_requests_total{route=\"/echo\",method=\"POST\",status=\"413\"} ", (long)NWAYS);
    cr_assert_eq(seen, (long)NWAYS, "one 413 per request on the server: %ld", seen);
    free(big);
    assert_alive();
}

Test(server, json_body_just_under_the_limit_passes_on_every_protocol)
{
    size_t n = 1024 * 1024 - 512;
    char *body = malloc(n);
    memset(body, ' ', n);
    memcpy(body + n - 8, "{\"a\":1}", 7);
    for (size_t w = 0; w < NWAYS; w++) {
        resp_t r = post_way(w, "/echo", body, n);
        cr_assert_eq(r.rc, CURLE_OK, "%s: %s", ways[w].name, curl_easy_strerror(r.rc));
        cr_assert_eq(r.status, 200, "%s: %ld %s", ways[w].name, r.status, r.body);
        json_t *j = json_of(&r);
        cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "echo"), "a")), 1);
        json_decref(j);
        resp_free(&r);
    }
    free(body);
}

Test(server, a_route_declares_its_own_body_limit)
{
    size_t n = 3 * 1024 * 1024 + 1;
    char *big = malloc(n);
    memset(big, 'x', n);
    for (size_t w = 0; w < NWAYS; w++) {
        /* up to its limit (past the server's 1 MiB default) it is read whole */
        resp_t r = post_way(w, "/upload", big, n - 1);
        cr_assert_eq(r.status, 200, "%s: %ld %s", ways[w].name, r.status, r.body);
        json_t *j = json_of(&r);
        cr_assert_eq(json_integer_value(json_object_get(j, "bytes")), (json_int_t)(n - 1));
        json_decref(j);
        resp_free(&r);
        r = post_way(w, "/upload", big, n);
        assert_413(&r, n - 1, ways[w].name);
        resp_free(&r);
        /* a limit below the default is the route's too */
        r = post_way(w, "/small", big, 1025);
        assert_413(&r, 1024, ways[w].name);
        resp_free(&r);
        r = post_way(w, "/small", big, 1024);
        cr_assert_eq(r.status, 200, "%s: %ld", ways[w].name, r.status);
        resp_free(&r);
    }
    cr_assert_eq(atomic_load(&sized_calls), 2 * (int)NWAYS, "no refused body reached a handler");
    /* no route, or the wrong method: the server's default limit, first */
    resp_t r = post_way(3, "/nope", big, 2 * 1024 * 1024);
    assert_413(&r, 1024 * 1024, "unrouted");
    resp_free(&r);
    r = post_way(0, "/v1/orgs/me", big, 2 * 1024 * 1024);
    assert_413(&r, 1024 * 1024, "wrong method");
    resp_free(&r);
    free(big);
}

Test(server, body_limits_are_checked_against_h2o_own)
{
    http_config_t cfg = {.listen = "127.0.0.1:0", .max_body = 2048, .max_upload_part = 1024};
    int err = 0;
    cr_assert_null(http_server_new(&cfg, &err), "a default above h2o's limit is refused");
    cr_assert_eq(err, FENTA_EINVAL);
    cfg.max_body = 0;
    cfg.max_upload_part = 4096;
    http_server_t *s = http_server_new(&cfg, &err);
    cr_assert_null(s, "max_body's 1 MiB default does not fit under 4096 either");
    cfg.max_body = 1024;
    s = http_server_new(&cfg, &err);
    cr_assert_not_null(s);
    const http_route_t too_big[] = {{"POST", "/u", h_size, 0, NULL, NULL, 4097}};
    cr_assert_eq(http_server_route(s, too_big, 1), FENTA_EINVAL, "a route past h2o's limit");
    const http_route_t fits[] = {{"POST", "/u", h_size, 0, NULL, NULL, 4096}};
    cr_assert_eq(http_server_route(s, fits, 1), 0);
    http_server_destroy(&s);
}

Test(server, body_above_h2o_own_limit_is_refused_by_h2o)
{
    /* A server whose largest upload part is 4 MiB: above it h2o answers
     * before our code runs. See "Bodies above max_upload_part" in server.h. */
    http_config_t cfg = {.listen = "127.0.0.1:0",
                         .loops = 1,
                         .workers = 1,
                         .max_upload_part = 4 * 1024 * 1024,
                         .max_body = 4 * 1024 * 1024};
    int err = 0;
    http_server_t *s = http_server_new(&cfg, &err);
    cr_assert_not_null(s);
    const http_route_t rt[] = {{"POST", "/echo", h_size, 0, NULL, NULL, 0}};
    cr_assert_eq(http_server_route(s, rt, 1), 0);
    cr_assert_eq(http_server_start(s), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", http_server_port(s));
    size_t n = 5 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    /* HTTP/1.1: h2o's 413 in our shape, once; the connection then closes */
    for (size_t w = 0; w < 3; w++) {
        resp_t r = post_way(w, url, big, n);
        cr_assert_eq(r.rc, CURLE_OK, "%s: %s", ways[w].name, curl_easy_strerror(r.rc));
        assert_413(&r, 4 * 1024 * 1024, ways[w].name);
        cr_assert_eq(r.connects, 1, "%s", ways[w].name);
        char conn[32];
        cr_assert(header(&r, "connection", conn, sizeof(conn)) && strcasecmp(conn, "close") == 0,
                  "%s: the connection closes", ways[w].name);
        resp_free(&r);
    }
    /* h2c upgrade: the body goes over HTTP/1.1, so the same 413 */
    resp_t r = post_way(4, url, big, n);
    assert_413(&r, 4 * 1024 * 1024, "h2c upgrade");
    resp_free(&r);
    /* HTTP/2: RST_STREAM(REFUSED_STREAM), no response at all; curl takes it
     * as "not processed" and tries again on fresh connections, then fails */
    r = post_way(3, url, big, n);
    cr_assert_neq(r.rc, CURLE_OK, "no response over h2");
    cr_assert_eq(r.status, 0);
    cr_assert_geq(r.connects, 1);
    cr_log_info("h2 past h2o's limit: curl %s after %ld connections", curl_easy_strerror(r.rc),
                r.connects);
    resp_free(&r);
    /* and the server is fine */
    r = post_way(3, url, big, 1024);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    free(big);
    http_server_destroy(&s);
}

Test(server, connections_past_max_connections_are_closed)
{
    http_config_t cfg = {.listen = "127.0.0.1:0", .loops = 1, .workers = 1, .max_connections = 2};
    http_server_t *s = http_server_new(&cfg, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(http_server_route_builtins(s), 0);
    cr_assert_eq(http_server_start(s), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(http_server_port(s))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_eq(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        usleep(50000); /* accepted in order */
    }
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        send(fds[i], req, sizeof(req) - 1, MSG_NOSIGNAL);
        struct timeval tv = {2, 0};
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char buf[512];
        ssize_t got = recv(fds[i], buf, sizeof(buf) - 1, 0);
        if (i < 2)
            cr_assert(got > 12 && strncmp(buf, "HTTP/1.1 200", 12) == 0, "connection %d served", i);
        else
            cr_assert_leq(got, 0, "the third is closed unanswered");
    }
    close(fds[0]);
    usleep(100000);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", http_server_port(s));
    resp_t r = get(url);
    cr_assert_eq(r.status, 200, "a closed connection frees its place");
    resp_free(&r);
    close(fds[1]);
    close(fds[2]);
    http_server_destroy(&s);
}

Test(server, body_over_the_limit_over_http2_is_refused)
{
    /* h2o 2.2 used to reset an HTTP/2 stream whose body passed the limit
     * (REFUSED_STREAM); the route's limit is ours now, so it is a 413. Never
     * a 5xx. */
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    const char *h[] = {"Content-Type: application/json", NULL};
    resp_t r = call((call_t){.method = "POST",
                             .url = "/echo",
                             .body = big,
                             .body_len = n,
                             .headers = h,
                             .version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
    cr_assert(r.rc != CURLE_OK || r.status == 413, "refused: rc %d status %ld", r.rc, r.status);
    cr_assert(r.status < 500);
    resp_free(&r);
    free(big);
    assert_alive();
}

Test(server, invalid_utf8_in_path_or_query_is_400)
{
    const char *paths[] = {"/v1/orgs/%ff/members/x", "/v1/orgs/%C3%28/members/x",
                           "/v1/orgs/a%00b/members/x", "/v1/orgs/%zz/members/x",
                           "/v1/orgs/%E0%80%80/members/x"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        resp_t r = get(paths[i]);
        assert_error(&r, 400, "invalid_path");
        resp_free(&r);
    }
    const char *queries[] = {"/v1/orgs/a/members/b?q=%ff", "/v1/orgs/a/members/b?q=%",
                             "/v1/orgs/a/members/b?%00=1"};
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        resp_t r = get(queries[i]);
        assert_error(&r, 400, "invalid_query");
        resp_free(&r);
    }
    /* raw bytes, which curl would not send */
    const char req[] =
        "GET /v1/orgs/\xff\xfe/members/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *got = raw_exchange(server_port(), req, sizeof(req) - 1, NULL, 2000);
    cr_assert(strncmp(got, "HTTP/1.1 400", 12) == 0, "raw bytes: %.60s", got);
    cr_assert_not_null(strstr(got, "\"invalid_path\""));
    free(got);
}

Test(server, handler_without_response_is_500)
{
    resp_t r = get("/noresp");
    assert_error(&r, 500, "internal");
    resp_free(&r);
}

Test(server, second_response_is_refused)
{
    resp_t r = get("/twice");
    cr_assert_eq(r.status, 200);
    char v[32];
    cr_assert(header(&r, "x-custom", v, sizeof(v)));
    cr_assert(header(&r, "x-second-rc", v, sizeof(v)));
    cr_assert_str_eq(v, "eexist");
    cr_assert_not(header(&r, "x-bad", v, sizeof(v)), "CR/LF in a value is refused");
    json_t *j = json_of(&r);
    cr_assert_eq(json_integer_value(json_object_get(j, "n")), 1);
    json_decref(j);
    resp_free(&r);
}

Test(server, before_hook_gates_routes)
{
    resp_t r = get("/hooked");
    assert_error(&r, 401, "unauthorized");
    char v[32];
    cr_assert(header(&r, "www-authenticate", v, sizeof(v)));
    resp_free(&r);
    const char *h[] = {"X-User: alice", NULL};
    r = call((call_t){.url = "/hooked", .headers = h});
    cr_assert_eq(r.status, 200);
    json_t *j = json_of(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "user")), "alice");
    json_decref(j);
    resp_free(&r);
    r = get("/hookfail");
    assert_error(&r, 500, "internal");
    resp_free(&r);
    int calls = atomic_load(&hook_calls);
    r = get("/healthz"); /* INLINE and NO_HOOK: the hook is not asked */
    resp_free(&r);
    r = get("/readyz"); /* NO_HOOK */
    resp_free(&r);
    cr_assert_eq(atomic_load(&hook_calls), calls);
}

/* ---- built-in endpoints ------------------------------------------------------------------ */

Test(server, healthz_and_readyz)
{
    resp_t r = get("/healthz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    resp_free(&r);
    r = get("/readyz");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    atomic_store(&ready_flag, false);
    r = get("/readyz");
    assert_error(&r, 503, "not_ready");
    char v[16];
    cr_assert(header(&r, "retry-after", v, sizeof(v)));
    cr_assert_str_eq(v, "1");
    resp_free(&r);
    r = get("/healthz");
    cr_assert_eq(r.status, 200, "health does not depend on readiness");
    resp_free(&r);
    atomic_store(&ready_flag, true);
    r = get("/readyz");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}

Test(server, metrics_count_by_route_pattern)
{
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/orgs/o%d/members/u%d", i, i);
        resp_t r = get(path);
        resp_free(&r);
    }
    resp_t r = get("/nope");
    resp_free(&r);
    /* a request's metrics are recorded when h2o lets it go, just after its
     * response: poll briefly */
    bool seen = false;
    for (int tries = 0; tries < 50 && !seen; tries++) {
        r = get("/metrics");
        cr_assert_eq(r.status, 200);
        char ct[128];
        cr_assert(header(&r, "content-type", ct, sizeof(ct)));
        cr_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
        seen =
            strstr(r.body,
                   "fenta_http_requests_total{route=\"/v1/orgs/{id}/members/{uid}\",method=\"GET\","
                   "status=\"200\"} 3") &&
            strstr(r.body,
                   "fenta_http_requests_total{route=\"none\",method=\"GET\",status=\"404\"} 1") &&
            strstr(r.body,
                   "fenta_http_request_seconds_count{route=\"/v1/orgs/{id}/members/{uid}\"} 3");
        if (!seen)
            usleep(20000);
        if (!seen && tries == 49)
            cr_log_error("%s", r.body);
        resp_free(&r);
    }
    cr_assert(seen, "per-pattern series, never per raw path");
    r = get("/metrics");
    cr_assert_null(strstr(r.body, "o1"), "raw paths never become labels");
    resp_free(&r);
}

Test(server, openapi_is_served_or_404)
{
    resp_t r = get("/openapi.json");
    cr_assert_eq(r.status, 200);
    char ct[64];
    cr_assert(header(&r, "content-type", ct, sizeof(ct)));
    cr_assert_str_eq(ct, "application/json");
    json_t *j = json_of(&r);
    cr_assert_str_eq(json_string_value(json_object_get(j, "openapi")), "3.1.0");
    json_decref(j);
    resp_free(&r);
    unlink(openapi_path);
    r = get("/openapi.json");
    assert_error(&r, 404, "not_found");
    resp_free(&r);
}

/* The document is read whole however many reads it takes, and one past
 * the 16 MiB limit is refused rather than held. */
Test(server, openapi_is_served_whole_up_to_its_limit)
{
    enum { PAD = 300 * 1000 };
    char *doc = malloc(PAD + 128);
    cr_assert_not_null(doc);
    int n = snprintf(doc, 64, "{\"openapi\":\"3.1.0\",\"x-pad\":\"");
    memset(doc + n, 'p', PAD);
    n += PAD;
    n += snprintf(doc + n, 64, "\",\"x-last\":\"end\"}");
    FILE *f = fopen(openapi_path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(doc, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    resp_t r = get("/openapi.json");
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, (size_t)n, "the whole document, %zu bytes of %d", r.len, n);
    cr_assert_arr_eq(r.body, doc, (size_t)n);
    resp_free(&r);
    free(doc);

    f = fopen(openapi_path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(ftruncate(fileno(f), 16 * 1024 * 1024 + 1), 0);
    fclose(f);
    r = get("/openapi.json");
    assert_error(&r, 500, "internal");
    resp_free(&r);
}

/* ---- protocols ------------------------------------------------------------------------------- */

Test(server, http2_prior_knowledge_and_upgrade)
{
    resp_t r = call(
        (call_t){.url = "/v1/orgs/a/members/b", .version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0, "h2c with prior knowledge");
    resp_free(&r);

    r = call((call_t){.url = "/v1/orgs/a/members/b", .version = CURL_HTTP_VERSION_2_0});
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0, "Upgrade: h2c");
    cr_assert_not_null(strstr(r.headers, "101"), "switched protocols: %s", r.headers);
    resp_free(&r);

    /* errors and JSON bodies over HTTP/2 too */
    const char *h[] = {"Content-Type: application/json", NULL};
    r = call((call_t){.method = "POST",
                      .url = "/echo",
                      .body = "{\"x\":1}",
                      .body_len = 7,
                      .headers = h,
                      .version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    r = call((call_t){.url = "/nope", .version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
    assert_error(&r, 404, "not_found");
    resp_free(&r);
}

Test(server, tls_with_alpn_h2)
{
    char cert[600], key[600], cmd[2048];
    snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
    snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 1 -subj /CN=localhost >/dev/null 2>&1",
             key, cert);
    cr_assert_eq(system(cmd), 0, "openssl makes a self-signed certificate");
    int port;
    http_server_t *tls = start_server(cert, key, &port);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/orgs/a/members/b", port);

    resp_t r = call((call_t){.url = url, .version = CURL_HTTP_VERSION_2TLS});
    cr_assert_eq(r.rc, CURLE_OK, "%s", curl_easy_strerror(r.rc));
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0, "ALPN chose h2");
    resp_free(&r);

    r = call((call_t){.url = url, .version = CURL_HTTP_VERSION_1_1});
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.version, CURL_HTTP_VERSION_1_1, "ALPN http/1.1");
    resp_free(&r);

    /* plain HTTP to the TLS port is refused, not answered, and nothing breaks */
    char plain[128];
    snprintf(plain, sizeof(plain), "http://127.0.0.1:%d/healthz", port);
    r = call((call_t){.url = plain, .timeout_ms = 3000});
    cr_assert(r.rc != CURLE_OK || r.status < 500);
    resp_free(&r);
    r = call((call_t){.url = url, .version = CURL_HTTP_VERSION_2TLS});
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    /* a body over the route's limit over TLS h2: the JSON 413, one attempt */
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, ' ', n);
    const char *h[] = {"Content-Type: application/json", NULL};
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/echo", port);
    r = call((call_t){.method = "POST",
                      .url = url,
                      .body = big,
                      .body_len = n,
                      .headers = h,
                      .version = CURL_HTTP_VERSION_2TLS});
    cr_assert_eq(r.version, CURL_HTTP_VERSION_2_0);
    assert_413(&r, 1024 * 1024, "TLS h2");
    cr_assert_eq(r.connects, 1, "no retry over TLS h2 either");
    resp_free(&r);
    free(big);
    http_server_destroy(&tls);
}

/* ---- concurrency, the loop stays free, disconnects
 * ----------------------------------------------- */

typedef struct {
    int64_t started, finished;
    long status;
    bool on_loop; /* the body says the INLINE handler ran on the loop */
    char body[256];
} probe_t;

static void *probe_healthz(void *arg)
{
    probe_t *p = arg;
    usleep(100 * 1000); /* let the batch fill the workers */
    p->started = now_ms();
    resp_t r = get("/inline");
    p->finished = now_ms();
    p->status = r.status;
    /* Asserted by the test's own thread: a Criterion assertion failing on
     * another thread aborts the test process ("crashed") instead of failing. */
    p->on_loop = r.body && strstr(r.body, "\"loop\"") != NULL;
    snprintf(p->body, sizeof p->body, "%s", r.body ? r.body : "");
    resp_free(&r);
    return NULL;
}

Test(server, two_hundred_multiplexed_requests_while_the_loop_stays_free)
{
    enum { N = 200 };
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 2L);
    /* The server allows 100 streams a connection: say so to curl too, so a
     * loaded machine where the server's SETTINGS come late does not open
     * streams the server then refuses. */
    curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 100L);
    static resp_t rs[N];
    struct curl_slist *hls[N];
    upload_t ups[N];
    CURL *es[N];
    for (int i = 0; i < N; i++) {
        memset(&rs[i], 0, sizeof(rs[i]));
        /* h2c by Upgrade: libcurl 7.88 cannot reuse a prior-knowledge
         * connection for a second stream (curl issue 10634, fixed in 8.0) */
        es[i] = easy_for(
            &(call_t){.url = "/sleep?ms=20", .version = CURL_HTTP_VERSION_2_0, .timeout_ms = 20000},
            &rs[i], &hls[i], &ups[i]);
        curl_easy_setopt(es[i], CURLOPT_PIPEWAIT, 1L);
        curl_easy_setopt(es[i], CURLOPT_PRIVATE, &rs[i]);
        curl_multi_add_handle(multi, es[i]);
    }
    probe_t probe = {0};
    pthread_t t;
    int64_t t0 = now_ms();
    pthread_create(&t, NULL, probe_healthz, &probe);
    int running = 1;
    while (running) {
        curl_multi_perform(multi, &running);
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    int64_t batch_done = now_ms();
    pthread_join(t, NULL);
    int ok = 0, h2 = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left)))
        if (msg->msg == CURLMSG_DONE) {
            resp_t *rr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rr);
            rr->rc = msg->data.result;
        }
    int logged = 0;
    for (int i = 0; i < N; i++) {
        finish(es[i], &rs[i]);
        if (rs[i].status != 200 && logged++ < 3)
            cr_log_error("request %d: status %ld, %s", i, rs[i].status,
                         curl_easy_strerror(rs[i].rc));
        ok += rs[i].status == 200;
        h2 += rs[i].version == CURL_HTTP_VERSION_2_0;
        curl_multi_remove_handle(multi, es[i]);
        curl_easy_cleanup(es[i]);
        curl_slist_free_all(hls[i]);
        resp_free(&rs[i]);
    }
    curl_multi_cleanup(multi);
    cr_assert_eq(ok, N, "all %d answered 200 (%d did)", N, ok);
    cr_assert_eq(h2, N, "all over HTTP/2");
    cr_assert_eq(atomic_load(&sleeps_done), N);
    /* 200 x 20 ms on 8 workers is >= 500 ms of work */
    cr_assert_geq(batch_done - t0, 450, "the batch was bounded by 8 workers");
    cr_assert_eq(probe.status, 200);
    cr_assert(probe.on_loop, "INLINE runs on the loop: %s", probe.body);
    cr_assert_lt(probe.finished, batch_done, "the INLINE request finished while workers were busy");
    cr_assert_lt(probe.finished - probe.started, 150, "and quickly: %lld ms",
                 (long long)(probe.finished - probe.started));
}

Test(server, client_that_disconnects_mid_handler)
{
    int fd_log[2];
    cr_assert_eq(pipe(fd_log), 0);
    log_set_level(LOG_INFO);
    log_set_fd(fd_log[1]);
    /* HTTP/2: curl gives up, its stream and connection go while the
     * handler sleeps; h2o frees the request under the worker's feet */
    for (int i = 0; i < 4; i++) {
        resp_t r = call((call_t){.url = "/sleep?ms=300",
                                 .version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
                                 .timeout_ms = 50});
        cr_assert_eq(r.rc, CURLE_OPERATION_TIMEDOUT);
        resp_free(&r);
    }
    /* HTTP/1.1: the socket closes while the handler sleeps */
    const char req[] = "GET /sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 4; i++) {
        char *got = raw_exchange(server_port(), req, sizeof(req) - 1, NULL, 30);
        free(got);
    }
    int64_t deadline = now_ms() + 5000;
    while (atomic_load(&sleeps_done) < 8 && now_ms() < deadline)
        usleep(10000);
    cr_assert_eq(atomic_load(&sleeps_done), 8, "every handler ran to its end");
    usleep(100000);
    assert_alive();
    log_set_fd(2);
    close(fd_log[1]);
    char buf[65536];
    size_t len = 0;
    ssize_t got;
    while ((got = read(fd_log[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)got;
    buf[len] = '\0';
    close(fd_log[0]);
    cr_assert_not_null(strstr(buf, "\"status\":\"499\""),
                       "abandoned requests are logged as 499: %s", buf);
}

Test(server, garbage_on_a_raw_socket)
{
    unsigned char junk[8192];
    srand(42);
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (unsigned char)rand();
        size_t len;
        char *got = raw_exchange(server_port(), (char *)junk, sizeof(junk), &len, 500);
        cr_assert(len == 0 || strncmp(got, "HTTP/1.1 4", 10) == 0,
                  "garbage gets 4xx or a close: %.40s", got);
        free(got);
    }
#define RAW(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    static const struct {
        const char *data;
        size_t len;
    } nasty[] = {
        RAW("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
        RAW("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/json\r\n\r\nzz\r\n"),
        RAW("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
        RAW("GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx"),
        RAW("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x01\x00\x00\x00\x00\x01garbage-frames"),
        RAW("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
            "\x00\x00\x05\x01\x05\x00\x00\x00\x01\xff\xff\xff\xff\xff"),
        RAW("GET * HTTP/1.1\r\nHost: x\r\n\r\n"),
        RAW("GET http://evil/x HTTP/1.1\r\nHost: x\r\n\r\n"),
        RAW("\r\n\r\n\r\n"),
    };
#undef RAW
    for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
        size_t len;
        char *got = raw_exchange(server_port(), nasty[i].data, nasty[i].len, &len, 500);
        cr_assert(len == 0 || strncmp(got, "HTTP/1.1 5", 10) != 0,
                  "never a 5xx for garbage #%zu: %.60s", i, got);
        if (strncmp(got, "HTTP/1.1 4", 10) == 0 && strstr(got, "application/json"))
            cr_assert_not_null(strstr(got, "{\"error\":{\"code\":"), "#%zu: %s", i, got);
        free(got);
    }
    assert_alive();
}

Test(server, huge_header_is_rejected)
{
    size_t n = 64 * 1024;
    char *h = malloc(n + 16);
    memcpy(h, "X-Big: ", 7);
    memset(h + 7, 'a', n);
    h[7 + n] = '\0';
    const char *hs[] = {h, NULL};
    resp_t r = call((call_t){.url = "/v1/orgs/a/members/b", .headers = hs});
    cr_assert(r.rc != CURLE_OK || (r.status >= 400 && r.status < 500), "4xx or closed: %ld",
              r.status);
    if (r.rc == CURLE_OK && r.status == 431)
        assert_error(&r, 431, "headers_too_large");
    resp_free(&r);
    r = call((call_t){.url = "/v1/orgs/a/members/b",
                      .headers = hs,
                      .version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE});
    cr_assert(r.rc != CURLE_OK || (r.status >= 400 && r.status < 500), "h2: 4xx or closed: %ld",
              r.status);
    resp_free(&r);
    /* far past h2o's own limit for a request head */
    size_t big = 600 * 1024;
    char *raw = malloc(big + 64);
    size_t off = (size_t)sprintf(raw, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(raw + off, 'b', big);
    off += big;
    memcpy(raw + off, "\r\n\r\n", 4);
    size_t len;
    char *got = raw_exchange(server_port(), raw, off + 4, &len, 2000);
    cr_assert(len == 0 || strncmp(got, "HTTP/1.1 4", 10) == 0, "%.40s", got);
    free(got);
    free(raw);
    free(h);
    assert_alive();
}

/* ---- logs and lifecycle -----------------------------------------------------------------------
 */

Test(server, one_access_log_line_per_request)
{
    fx_log_capture_start();
    const char *h[] = {"X-Request-Id: trace-me-1", NULL};
    resp_t r = call((call_t){.url = "/v1/orgs/acme/members/7?secret=s3cr3t", .headers = h});
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    http_server_destroy(&srv); /* every request is logged by the time it stops */
    char *log = fx_log_capture_end();
    json_t *j = fx_log_line(log, "\"request_id\":\"trace-me-1\"");
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "request");
    cr_assert_str_eq(json_string_value(json_object_get(j, "method")), "GET");
    cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "/v1/orgs/acme/members/7");
    cr_assert_str_eq(json_string_value(json_object_get(j, "route")), "/v1/orgs/{id}/members/{uid}");
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "200");
    cr_assert_str_eq(json_string_value(json_object_get(j, "ip")), "127.0.0.1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "protocol")), "HTTP/1.1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "org_id")), "acme");
    cr_assert_gt(atoi(json_string_value(json_object_get(j, "bytes"))), 0);
    cr_assert_not_null(json_object_get(j, "latency_ms"));
    cr_assert_null(strstr(log, "s3cr3t"), "query strings stay out of logs");
    json_decref(j);
    free(log);
}

typedef struct {
    long status;
} slow_t;

static void *slow_call(void *arg)
{
    slow_t *s = arg;
    resp_t r = get("/sleep?ms=400");
    s->status = r.status;
    resp_free(&r);
    return NULL;
}

Test(server, stop_finishes_in_flight_then_refuses)
{
    slow_t slow = {0};
    pthread_t t;
    pthread_create(&t, NULL, slow_call, &slow);
    int64_t deadline = now_ms() + 2000;
    usleep(100 * 1000); /* the request is on a worker */
    http_server_stop(srv);
    pthread_join(t, NULL);
    cr_assert_eq(slow.status, 200, "the in-flight request completed");
    cr_assert_lt(now_ms(), deadline);
    resp_t r = call((call_t){.url = "/healthz", .timeout_ms = 1000});
    cr_assert_eq(r.rc, CURLE_COULDNT_CONNECT, "no longer listening: %s", curl_easy_strerror(r.rc));
    resp_free(&r);
    http_server_stop(srv); /* twice is harmless */
}

Test(server, server_that_never_started_is_freed)
{
    http_config_t cfg = {.listen = "127.0.0.1:0"};
    http_server_t *s = http_server_new(&cfg, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(http_server_route_builtins(s), 0);
    http_server_stop(s);
    http_server_destroy(&s);
    cr_assert_null(s);
}
