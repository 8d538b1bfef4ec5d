/* test_objects_http.c - http/objects_http: presigned downloads over real
 * sockets with libcurl, HTTP/1.1 and HTTP/2 (h2c prior knowledge): whole
 * files and byte ranges of a 3 MB object, HEAD, 304, 416, signatures and
 * expiry (403 JSON), missing objects (404) and content types, served by the
 * Fenta server (http_server_t) as one of its routes, logged by its access
 * log and counted by its metrics. Criterion runs each test in its own
 * process, so each gets a fresh store and server. */
#include "http/objects_http.h"
#include "http/request.h"
#include "http/server.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "storage/objects.h"
#include "tests/support/fixtures.h"
#include "tests/support/log_capture.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* h2o keeps freed buffers in per-thread caches it never frees when a thread
 * exits (see test_server.c). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

#define BIG_SIZE (3 * 1024 * 1024)
#define BIG_KEY "renders/job-1/out.mp4"

static char *tmp;
static objects_t *store;
static unsigned char *big; /* the 3 MB object's content */
static const uint8_t secret[] = "objects-http-test-secret-0123456789";

/* ---- the server ------------------------------------------------------------------------ */

static http_server_t *srv;
static char base[64];

static void start_server(void)
{
    http_config_t cfg = {
        .listen = "127.0.0.1:0", .loops = 2, .workers = 2, .stop_timeout_ms = 2000};
    int err = 0;
    srv = http_server_new(&cfg, &err);
    cr_assert_not_null(srv, "%s", fenta_strerror(err));
    cr_assert_eq(objects_http_mount(srv, store), 0);
    cr_assert_eq(objects_http_mount(srv, store), FENTA_EEXIST, "one route per server");
    cr_assert_eq(objects_http_mount(NULL, store), FENTA_EINVAL);
    cr_assert_eq(objects_http_mount(srv, NULL), FENTA_EINVAL);
    cr_assert_eq(http_server_route_builtins(srv), 0);
    cr_assert_eq(http_server_start(srv), 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", http_server_port(srv));
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    log_set_level(LOG_WARN);
    tmp = fx_tmpdir("objhttp");
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/objects", tmp);
    store = objects_open(root, secret, sizeof(secret) - 1, NULL);
    cr_assert_not_null(store);

    big = malloc(BIG_SIZE);
    uint32_t x = 2463534242u; /* xorshift: no run or repeat a wrong offset could hide in */
    for (size_t i = 0; i < BIG_SIZE; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        big[i] = (unsigned char)x;
    }
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/src.mp4", tmp);
    FILE *f = fopen(src, "wb");
    cr_assert_eq(fwrite(big, 1, BIG_SIZE, f), BIG_SIZE);
    fclose(f);
    char err[256] = "";
    cr_assert_eq(objects_put_file(store, BIG_KEY, src, err, sizeof(err)), 0, "%s", err);
    start_server();
}

static void teardown(void)
{
    http_server_destroy(&srv);
    objects_close(&store);
    free(big);
    fx_rmdir(tmp);
    curl_global_cleanup();
}

TestSuite(objects_http, .init = setup, .fini = teardown, .timeout = 60);

/* ---- a small client ------------------------------------------------------------------ */

typedef struct {
    long status;
    long version; /* 11 or 20 */
    unsigned char *body;
    size_t len;
    char *headers; /* raw */
    json_t *json;  /* the body parsed, when JSON */
} resp_t;

typedef struct {
    char *p;
    size_t n;
} buf_t;

static size_t on_data(char *d, size_t sz, size_t nm, void *u)
{
    buf_t *b = u;
    size_t add = sz * nm;
    b->p = realloc(b->p, b->n + add + 1);
    memcpy(b->p + b->n, d, add);
    b->n += add;
    b->p[b->n] = '\0';
    return add;
}

/* method GET or HEAD on base+path; hdr: one extra "Name: value" or NULL. */
static resp_t fetch(const char *method, const char *base_url, const char *path, const char *hdr,
                    bool http2)
{
    CURL *c = curl_easy_init();
    char url[4096];
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    buf_t b = {0}, h = {0};
    struct curl_slist *hl = hdr ? curl_slist_append(NULL, hdr) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
                     http2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1);
    resp_t r = {0};
    CURLcode cc = curl_easy_perform(c);
    cr_assert_eq(cc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    long v = 0;
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &v);
    r.version = v == CURL_HTTP_VERSION_2_0 ? 20 : 11;
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r.body = (unsigned char *)b.p;
    r.len = b.n;
    r.headers = h.p ? h.p : strdup("");
    r.json = b.p ? json_loadb(b.p, b.n, 0, NULL) : NULL;
    return r;
}

static void resp_free(resp_t *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
}

/* A response header's value (case-insensitive name), in buf; NULL if absent. */
static const char *header(const resp_t *r, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (ll > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(line + ll - v);
            snprintf(buf, cap, "%.*s", (int)vl, v);
            return buf;
        }
        line = end ? end + 2 : NULL;
    }
    return NULL;
}

static char *presign(const char *key, int64_t ttl)
{
    static char url[OBJECTS_URL_MAX];
    char err[256] = "";
    cr_assert_eq(objects_presign(store, "GET", key, (int64_t)time(NULL) + ttl, url, sizeof(url),
                                 err, sizeof(err)),
                 0, "%s", err);
    return url;
}

static void assert_error(const resp_t *r, long status, const char *code, const char *fragment)
{
    char buf[256];
    cr_assert_eq(r->status, status, "status %ld, body %s", r->status,
                 r->body ? (char *)r->body : "");
    cr_assert_not_null(header(r, "content-type", buf, sizeof(buf)));
    cr_assert_str_eq(buf, "application/json");
    cr_assert_not_null(header(r, "x-request-id", buf, sizeof(buf)), "every answer has an id");
    cr_assert_not_null(r->json, "a JSON body: %s", r->body ? (char *)r->body : "");
    json_t *e = json_object_get(r->json, "error");
    cr_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    cr_assert(msg && strstr(msg, fragment), "message '%s' lacks '%s'", msg ? msg : "", fragment);
    cr_assert(json_object_get(e, "details") && json_is_null(json_object_get(e, "details")));
}

/* ---- whole downloads ----------------------------------------------------------------- */

static void whole_download(bool http2)
{
    resp_t r = fetch("GET", base, presign(BIG_KEY, 600), NULL, http2);
    char buf[256];
    cr_assert_eq(r.status, 200, "%ld", r.status);
    cr_assert_eq(r.version, http2 ? 20 : 11);
    cr_assert_eq(r.len, BIG_SIZE);
    cr_assert_eq(memcmp(r.body, big, BIG_SIZE), 0, "the bytes are the object's");
    cr_assert_str_eq(header(&r, "content-type", buf, sizeof(buf)), "video/mp4");
    cr_assert_str_eq(header(&r, "content-length", buf, sizeof(buf)), "3145728");
    cr_assert_str_eq(header(&r, "accept-ranges", buf, sizeof(buf)), "bytes");
    cr_assert_not_null(header(&r, "etag", buf, sizeof(buf)));
    cr_assert_eq(buf[0], '"', "a strong ETag: %s", buf);
    cr_assert_not_null(header(&r, "last-modified", buf, sizeof(buf)));
    cr_assert_null(header(&r, "content-range", buf, sizeof(buf)));
    cr_assert_not_null(header(&r, "cache-control", buf, sizeof(buf)));
    int age = -1;
    cr_assert_eq(sscanf(buf, "private, max-age=%d", &age), 1, "%s", buf);
    cr_assert(age >= 595 && age <= 600, "max-age runs to the expiry: %d", age);
    resp_free(&r);
}

Test(objects_http, whole_file_over_http1)
{
    whole_download(false);
}

Test(objects_http, whole_file_over_http2)
{
    whole_download(true);
}

/* ---- ranges -------------------------------------------------------------------------- */

static void range_case(bool http2, const char *range, size_t first, size_t last)
{
    char hdr[128], buf[256], want[128];
    snprintf(hdr, sizeof(hdr), "Range: %s", range);
    resp_t r = fetch("GET", base, presign(BIG_KEY, 600), hdr, http2);
    cr_assert_eq(r.status, 206, "%s: %ld", range, r.status);
    size_t n = last - first + 1;
    cr_assert_eq(r.len, n, "%s: %zu bytes", range, r.len);
    cr_assert_eq(memcmp(r.body, big + first, n), 0, "%s: the right bytes", range);
    snprintf(want, sizeof(want), "bytes %zu-%zu/%d", first, last, BIG_SIZE);
    cr_assert_str_eq(header(&r, "content-range", buf, sizeof(buf)), want);
    snprintf(want, sizeof(want), "%zu", n);
    cr_assert_str_eq(header(&r, "content-length", buf, sizeof(buf)), want);
    cr_assert_str_eq(header(&r, "content-type", buf, sizeof(buf)), "video/mp4");
    cr_assert_str_eq(header(&r, "accept-ranges", buf, sizeof(buf)), "bytes");
    resp_free(&r);
}

static void ranges(bool http2)
{
    range_case(http2, "bytes=0-99", 0, 99);
    range_case(http2, "bytes=0-0", 0, 0);
    range_case(http2, "bytes=1000000-2000000", 1000000, 2000000); /* spans many chunks */
    range_case(http2, "bytes=65535-65536", 65535, 65536);         /* across a chunk edge */
    range_case(http2, "bytes=3000000-", 3000000, BIG_SIZE - 1);
    range_case(http2, "bytes=3000000-99999999", 3000000, BIG_SIZE - 1); /* end clamped */
    range_case(http2, "bytes=-500", BIG_SIZE - 500, BIG_SIZE - 1);
    range_case(http2, "bytes=-99999999", 0, BIG_SIZE - 1); /* suffix longer than the file */
    range_case(http2, "bytes=3145727-", BIG_SIZE - 1, BIG_SIZE - 1);
}

Test(objects_http, ranges_over_http1)
{
    ranges(false);
}

Test(objects_http, ranges_over_http2)
{
    ranges(true);
}

static void unsatisfiable(bool http2, const char *range)
{
    char hdr[128], buf[128];
    snprintf(hdr, sizeof(hdr), "Range: %s", range);
    resp_t r = fetch("GET", base, presign(BIG_KEY, 600), hdr, http2);
    assert_error(&r, 416, "range_not_satisfiable", "range");
    cr_assert_str_eq(header(&r, "content-range", buf, sizeof(buf)), "bytes */3145728", "%s", range);
    size_t cc = 0;
    for (const char *p = r.headers; (p = strcasestr(p, "\ncache-control:")); p++)
        cc++;
    cr_assert_eq(cc, 1, "one Cache-Control header:\n%s", r.headers);
    resp_free(&r);
}

Test(objects_http, unsatisfiable_ranges_are_416)
{
    for (int h2 = 0; h2 < 2; h2++) {
        unsatisfiable(h2, "bytes=3145728-");
        unsatisfiable(h2, "bytes=9999999-10000000");
        unsatisfiable(h2, "bytes=-0");
    }
}

Test(objects_http, ranges_served_whole_when_ignored)
{
    /* several ranges, another unit, nonsense, or an If-Range for another
     * version: all answered with the full 200 */
    static const char *const hdrs[] = {
        "Range: bytes=0-1,5-6", "Range: items=0-5", "Range: bytes=5-2", "Range: bytes=abc", NULL,
    };
    for (int h2 = 0; h2 < 2; h2++)
        for (size_t i = 0; hdrs[i]; i++) {
            resp_t r = fetch("GET", base, presign(BIG_KEY, 600), hdrs[i], h2);
            cr_assert_eq(r.status, 200, "%s: %ld", hdrs[i], r.status);
            cr_assert_eq(r.len, BIG_SIZE, "%s", hdrs[i]);
            resp_free(&r);
        }
}

Test(objects_http, if_range_and_if_none_match)
{
    char etag[64], hdr[128], buf[64];
    resp_t r = fetch("HEAD", base, presign(BIG_KEY, 600), NULL, false);
    cr_assert_not_null(header(&r, "etag", etag, sizeof(etag)));
    resp_free(&r);

    /* a player resuming its copy: If-Range with the current ETag keeps the
     * range; with another one the whole object comes back */
    CURL *c = curl_easy_init();
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", base, presign(BIG_KEY, 600));
    struct curl_slist *hl = NULL;
    snprintf(hdr, sizeof(hdr), "If-Range: %s", etag);
    hl = curl_slist_append(hl, hdr);
    hl = curl_slist_append(hl, "Range: bytes=10-19");
    buf_t b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    cr_assert_eq(status, 206);
    cr_assert_eq(b.n, 10);
    cr_assert_eq(memcmp(b.p, big + 10, 10), 0);
    free(b.p);
    b = (buf_t){0};
    curl_slist_free_all(hl);
    hl = curl_slist_append(NULL, "If-Range: \"stale-etag\"");
    hl = curl_slist_append(hl, "Range: bytes=10-19");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    cr_assert_eq(status, 200, "the object changed since: all of it");
    cr_assert_eq(b.n, BIG_SIZE);
    free(b.p);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);

    snprintf(hdr, sizeof(hdr), "If-None-Match: \"other\", %s", etag);
    r = fetch("GET", base, presign(BIG_KEY, 600), hdr, true);
    cr_assert_eq(r.status, 304);
    cr_assert_eq(r.len, 0);
    cr_assert_str_eq(header(&r, "etag", buf, sizeof(buf)), etag);
    resp_free(&r);
}

/* ---- HEAD ------------------------------------------------------------------------------ */

Test(objects_http, head_has_headers_and_no_body)
{
    for (int h2 = 0; h2 < 2; h2++) {
        char buf[256];
        resp_t r = fetch("HEAD", base, presign(BIG_KEY, 600), NULL, h2);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.len, 0);
        cr_assert_str_eq(header(&r, "content-length", buf, sizeof(buf)), "3145728");
        cr_assert_str_eq(header(&r, "content-type", buf, sizeof(buf)), "video/mp4");
        cr_assert_str_eq(header(&r, "accept-ranges", buf, sizeof(buf)), "bytes");
        resp_free(&r);

        r = fetch("HEAD", base, presign(BIG_KEY, 600), "Range: bytes=-10", h2);
        cr_assert_eq(r.status, 206);
        cr_assert_str_eq(header(&r, "content-range", buf, sizeof(buf)),
                         "bytes 3145718-3145727/3145728");
        cr_assert_str_eq(header(&r, "content-length", buf, sizeof(buf)), "10");
        resp_free(&r);

        /* a connection reused after HEAD still works (no body was expected) */
        r = fetch("HEAD", base, "/v1/objects/" BIG_KEY "?expires=1&sig=x", NULL, h2);
        cr_assert_eq(r.status, 403);
        cr_assert_eq(r.len, 0);
        resp_free(&r);
    }
}

/* ---- signatures, expiry, missing objects --------------------------------------------------- */

Test(objects_http, bad_signatures_are_403_json)
{
    char url[OBJECTS_URL_MAX + 64];
    for (int h2 = 0; h2 < 2; h2++) {
        snprintf(url, sizeof(url), "%s", presign(BIG_KEY, 600));
        char *sig = strstr(url, "sig=") + 4;
        sig[0] = sig[0] == 'A' ? 'B' : 'A';
        resp_t r = fetch("GET", base, url, NULL, h2);
        assert_error(&r, 403, "forbidden", "signature");
        cr_assert_lt(r.len, 1000, "no object bytes leak");
        resp_free(&r);

        /* the signature of one key does not open another */
        snprintf(url, sizeof(url), "%s", presign(BIG_KEY, 600));
        char *q = strchr(url, '?');
        char other[OBJECTS_URL_MAX + 64];
        snprintf(other, sizeof(other), "/v1/objects/renders/job-2/out.mp4%s", q);
        r = fetch("GET", base, other, NULL, h2);
        assert_error(&r, 403, "forbidden", "signature");
        resp_free(&r);

        /* nor does pushing the expiry out */
        snprintf(url, sizeof(url), "%s", presign(BIG_KEY, 600));
        char *e = strstr(url, "expires=") + 8;
        e[0] = e[0] == '9' ? '8' : (char)(e[0] + 1);
        r = fetch("GET", base, url, NULL, h2);
        assert_error(&r, 403, "forbidden", "signature");
        resp_free(&r);

        r = fetch("GET", base, "/v1/objects/" BIG_KEY, NULL, h2);
        assert_error(&r, 403, "forbidden", "missing");
        resp_free(&r);
        r = fetch("GET", base, "/v1/objects/" BIG_KEY "?expires=abc&sig=x", NULL, h2);
        assert_error(&r, 403, "forbidden", "signature");
        resp_free(&r);
    }
}

Test(objects_http, expired_urls_are_403_with_their_own_message)
{
    for (int h2 = 0; h2 < 2; h2++) {
        resp_t r = fetch("GET", base, presign(BIG_KEY, -30), NULL, h2);
        assert_error(&r, 403, "forbidden", "expired");
        resp_free(&r);
    }
}

Test(objects_http, missing_objects_are_404_after_the_signature)
{
    for (int h2 = 0; h2 < 2; h2++) {
        resp_t r = fetch("GET", base, presign("renders/none.mp4", 600), NULL, h2);
        assert_error(&r, 404, "not_found", "no such object");
        resp_free(&r);
        /* a key naming a folder is not an object either */
        r = fetch("GET", base, presign("renders/job-1", 600), NULL, h2);
        assert_error(&r, 404, "not_found", "no such object");
        resp_free(&r);
        /* unsigned: the existence of the object is not revealed */
        r = fetch("GET", base, "/v1/objects/renders/none.mp4?expires=1&sig=x", NULL, h2);
        assert_error(&r, 403, "forbidden", "signature");
        resp_free(&r);
    }
}

Test(objects_http, bad_keys_and_methods)
{
    resp_t r = fetch("GET", base, "/v1/objects/.hidden?expires=1&sig=x", NULL, false);
    assert_error(&r, 400, "invalid_key", "segment starting with .");
    resp_free(&r);
    r = fetch("GET", base, "/v1/objects/a%20b?expires=1&sig=x", NULL, true);
    assert_error(&r, 400, "invalid_key", "outside");
    resp_free(&r);
    r = fetch("GET", base, "/v1/objects/?expires=1&sig=x", NULL, false);
    assert_error(&r, 404, "not_found", "route");
    resp_free(&r);
    r = fetch("DELETE", base, presign(BIG_KEY, 600), NULL, false);
    assert_error(&r, 405, "method_not_allowed", "GET");
    char buf[64];
    cr_assert_str_eq(header(&r, "allow", buf, sizeof(buf)), "GET, HEAD");
    resp_free(&r);
    char err[256];
    cr_assert_eq(objects_stat(store, BIG_KEY, &(objects_stat_t){0}, err, sizeof(err)), 0,
                 "DELETE did nothing");
}

Test(objects_http, percent_encoded_keys_verify_decoded)
{
    char url[OBJECTS_URL_MAX + 64];
    snprintf(url, sizeof(url), "%s", presign(BIG_KEY, 600));
    /* renders%2Fjob-1%2Fout.mp4 is the same key */
    char enc[OBJECTS_URL_MAX + 64];
    snprintf(enc, sizeof(enc), "/v1/objects/renders%%2Fjob-1%%2Fout%%2Emp4%s", strchr(url, '?'));
    resp_t r = fetch("GET", base, enc, "Range: bytes=0-9", false);
    cr_assert_eq(r.status, 206, "%ld %s", r.status, r.body ? (char *)r.body : "");
    cr_assert_eq(memcmp(r.body, big, 10), 0);
    resp_free(&r);
}

/* ---- content types and small objects ------------------------------------------------------ */

Test(objects_http, content_types_and_small_objects)
{
    static const struct {
        const char *key, *type, *data;
    } cases[] = {
        {"j/out.srt", "application/x-subrip", "1\n00:00:00,000 --> 00:00:01,000\nhello\n"},
        {"j/thumb.jpg", "image/jpeg", "\xff\xd8\xff\xe0jpeg"},
        {"j/frame.png", "image/png", "\x89PNG\r\n"},
        {"j/voice.wav", "audio/wav", "RIFF....WAVE"},
        {"j/music.mp3", "audio/mpeg", "ID3"},
        {"j/voice.m4a", "audio/mp4", "....ftypM4A "},
        {"j/meta.json", "application/json", "{\"ok\":true}"},
        {"j/blob", "application/octet-stream", "raw"},
        {"j/empty.bin", "application/octet-stream", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].data);
        cr_assert_eq(objects_put(store, cases[i].key, cases[i].data, n, NULL, 0), 0);
        for (int h2 = 0; h2 < 2; h2++) {
            char buf[128], len[24];
            resp_t r = fetch("GET", base, presign(cases[i].key, 60), NULL, h2);
            cr_assert_eq(r.status, 200, "%s: %ld", cases[i].key, r.status);
            cr_assert_str_eq(header(&r, "content-type", buf, sizeof(buf)), cases[i].type, "%s",
                             cases[i].key);
            snprintf(len, sizeof(len), "%zu", n);
            cr_assert_str_eq(header(&r, "content-length", buf, sizeof(buf)), len, "%s",
                             cases[i].key);
            cr_assert_eq(r.len, n);
            cr_assert(n == 0 || memcmp(r.body, cases[i].data, n) == 0, "%s", cases[i].key);
            resp_free(&r);
        }
    }
    /* an empty object has no byte to range over */
    resp_t r = fetch("GET", base, presign("j/empty.bin", 60), "Range: bytes=0-", false);
    cr_assert_eq(r.status, 416);
    resp_free(&r);
}

/* ---- the object replaced mid-download ------------------------------------------------------- */

Test(objects_http, replacement_does_not_corrupt_a_download_in_flight)
{
    /* many parallel downloads race a stream of replacements: each body is
     * one whole version (old or new), never a mix */
    unsigned char *alt = malloc(BIG_SIZE);
    for (size_t i = 0; i < BIG_SIZE; i++)
        alt[i] = (unsigned char)~big[i];
    CURLM *m = curl_multi_init();
    enum { N = 6 };
    CURL *e[N];
    buf_t b[N] = {{0}};
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", base, presign(BIG_KEY, 600));
    for (int i = 0; i < N; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &b[i]);
        curl_easy_setopt(e[i], CURLOPT_HTTP_VERSION,
                         i % 2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(e[i], CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)(8 * 1024 * 1024));
        curl_multi_add_handle(m, e[i]);
    }
    int running = 1, flip = 0;
    while (running) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 5, NULL);
        if (flip++ % 10 == 0)
            cr_assert_eq(objects_put(store, BIG_KEY, flip % 20 ? alt : big, BIG_SIZE, NULL, 0), 0);
    }
    for (int i = 0; i < N; i++) {
        long status = 0;
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &status);
        cr_assert_eq(status, 200);
        cr_assert_eq(b[i].n, BIG_SIZE, "download %d: %zu bytes", i, b[i].n);
        bool is_old = memcmp(b[i].p, big, BIG_SIZE) == 0;
        bool is_new = memcmp(b[i].p, alt, BIG_SIZE) == 0;
        cr_assert(is_old || is_new, "download %d is one version, whole", i);
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
        free(b[i].p);
    }
    curl_multi_cleanup(m);
    free(alt);
}

/* ---- the real server ---------------------------------------------------------------------- */

Test(objects_http, mounts_on_the_fenta_server)
{
    http_config_t cfg = {
        .listen = "127.0.0.1:0", .loops = 1, .workers = 1, .stop_timeout_ms = 2000};
    int err = 0;
    http_server_t *s = http_server_new(&cfg, &err);
    cr_assert_not_null(s, "%s", fenta_strerror(err));
    cr_assert_eq(objects_http_mount(NULL, store), FENTA_EINVAL);
    cr_assert_eq(objects_http_mount(s, store), 0);
    cr_assert_eq(http_server_route_builtins(s), 0);
    cr_assert_eq(http_server_start(s), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", http_server_port(s));
    for (int h2 = 0; h2 < 2; h2++) {
        resp_t r = fetch("GET", url, presign(BIG_KEY, 600), "Range: bytes=-100", h2);
        cr_assert_eq(r.status, 206);
        cr_assert_eq(memcmp(r.body, big + BIG_SIZE - 100, 100), 0);
        resp_free(&r);
        r = fetch("GET", url, "/healthz", NULL, h2);
        cr_assert_eq(r.status, 200, "the routed endpoints still answer");
        resp_free(&r);
        r = fetch("GET", url, presign("nope.mp4", 600), NULL, h2);
        assert_error(&r, 404, "not_found", "no such object");
        resp_free(&r);
        /* the server lets h2o read up to its upload part size: a large
         * body here gets the 413 the routed endpoints give, not h2o's reset */
        CURL *c = curl_easy_init();
        char u[4096];
        snprintf(u, sizeof(u), "%s%s", url, presign(BIG_KEY, 600));
        size_t n = 2 * 1024 * 1024;
        char *body = calloc(1, n);
        buf_t b = {0};
        curl_easy_setopt(c, CURLOPT_URL, u);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
                         h2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1);
        cr_assert_eq(curl_easy_perform(c), CURLE_OK);
        long status = 0, connects = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        cr_assert_eq(status, 413, "h2 %d: %ld %s", h2, status, b.p);
        cr_assert_not_null(strstr(b.p, "\"payload_too_large\""), "%s", b.p);
        cr_assert_eq(connects, 1, "one attempt");
        curl_easy_cleanup(c);
        free(b.p);
        free(body);
    }
    http_server_destroy(&s);
}

/* ---- one server: deep keys, its access log and its metrics ------------------------------- */

Test(objects_http, keys_deeper_than_any_route_pattern)
{
    /* 40 segments: more than a route pattern may have (ROUTER_MAX_SEGS) */
    char key[256] = "deep";
    for (int i = 0; i < 39; i++)
        strcat(key, "/d");
    strcat(key, ".txt");
    cr_assert_eq(objects_put(store, key, "deep", 4, NULL, 0), 0);
    for (int h2 = 0; h2 < 2; h2++) {
        resp_t r = fetch("GET", base, presign(key, 60), NULL, h2);
        cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body ? (char *)r.body : "");
        cr_assert_eq(r.len, 4);
        cr_assert_eq(memcmp(r.body, "deep", 4), 0);
        resp_free(&r);
    }
    /* an empty segment inside a key is the key's problem, not a missing route */
    resp_t r = fetch("GET", base, "/v1/objects/a//b?expires=1&sig=x", NULL, false);
    assert_error(&r, 400, "invalid_key", "");
    resp_free(&r);
}

Test(objects_http, logged_and_counted_like_every_request)
{
    fx_log_capture_start();
    for (int h2 = 0; h2 < 2; h2++) {
        char url[OBJECTS_URL_MAX + 64];
        snprintf(url, sizeof(url), "%s", presign(BIG_KEY, 600));
        resp_t r = fetch("GET", base, url,
                         h2 ? "X-Request-Id: obj-trace-2" : "X-Request-Id: obj-trace-1", h2);
        resp_free(&r);
    }
    resp_t m = fetch("GET", base, "/metrics", NULL, false);
    cr_assert_eq(m.status, 200);
    cr_assert_not_null(strstr((char *)m.body,
                              "fenta_http_requests_total{route=\"/v1/objects/{key}\","
                              "method=\"GET\",status=\"200\"} 2"),
                       "%s", (char *)m.body);
    cr_assert_not_null(
        strstr((char *)m.body, "fenta_http_request_seconds_count{route=\"/v1/objects/{key}\"} 2"),
        "latency is observed per route, objects too");
    resp_free(&m);
    http_server_destroy(&srv); /* every request is logged by the time it stops */
    char *log = fx_log_capture_end();
    cr_assert_null(strstr(log, "sig="), "the signed query stays out of the log");
    for (int h2 = 0; h2 < 2; h2++) {
        json_t *j = fx_log_line(log, h2 ? "\"request_id\":\"obj-trace-2\""
                                        : "\"request_id\":\"obj-trace-1\"");
        cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "request");
        cr_assert_str_eq(json_string_value(json_object_get(j, "method")), "GET");
        cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "/v1/objects/" BIG_KEY);
        cr_assert_str_eq(json_string_value(json_object_get(j, "route")), "/v1/objects/{key}");
        cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "200");
        cr_assert_str_eq(json_string_value(json_object_get(j, "ip")), "127.0.0.1");
        cr_assert_str_eq(json_string_value(json_object_get(j, "protocol")),
                         h2 ? "HTTP/2" : "HTTP/1.1");
        cr_assert_geq(atol(json_string_value(json_object_get(j, "bytes"))), BIG_SIZE);
        cr_assert_not_null(json_object_get(j, "latency_ms"));
        json_decref(j);
    }
    free(log);
}
