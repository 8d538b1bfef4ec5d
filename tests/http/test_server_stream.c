/* test_server_stream.c - streamed responses (http_respond_stream and
 * http_stream_*): a real server on an ephemeral port whose handlers hand
 * their streams to the test, which writes them from its own thread while
 * libcurl clients (HTTP/1.1, h2c) or raw sockets read.
 *
 * The handler never writes the body itself: it parks the stream in `parked`
 * and returns, as an SSE endpoint hands its stream to a publisher. The test
 * decides when each event is written, so it can check that a client sees
 * event 1 before event 2 exists. Criterion runs each test in its own
 * process: every test gets a fresh server (2 loops, 4 workers). Bodies read
 * from a file (http_respond_file) are the other kind not held in memory. */
#include "http/request.h"
#include "http/server.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* h2o keeps freed buffers in per-thread caches private to the library (see
 * test_server.c); everything else must be leak-free. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}

#define MAX_PARKED 128

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_ts(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* ---- streams parked by the handler ------------------------------------------------ */

typedef struct {
    http_stream_t *s;           /* the producer's reference, the test's to release */
    char id[32];                /* the client's ?id= */
    atomic_int closes;          /* on_close calls */
    atomic_bool closed_on_loop; /* on_close ran on a loop thread */
} parked_t;

static parked_t parked[MAX_PARKED];
static int nparked;
static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;

static void on_closed(void *arg)
{
    parked_t *p = arg;
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof(name));
    atomic_store(&p->closed_on_loop, strncmp(name, "http-loop", 9) == 0);
    atomic_fetch_add(&p->closes, 1);
}

static void h_events(http_req_t *r)
{
    http_stream_t *s = http_respond_stream(r, 200, "text/event-stream");
    cr_assert_not_null(s);
    pthread_mutex_lock(&park_mu);
    cr_assert_lt(nparked, MAX_PARKED);
    parked_t *p = &parked[nparked];
    snprintf(p->id, sizeof(p->id), "%s", http_query(r, "id") ? http_query(r, "id") : "-");
    p->s = s;
    http_stream_on_close(s, on_closed, p);
    nparked++;
    pthread_cond_broadcast(&park_cv);
    pthread_mutex_unlock(&park_mu);
}

/* Writes before returning, adds headers after declaring the stream, and
 * tries a second response: all of it must come out as one stream. */
static void h_prewritten(http_req_t *r)
{
    http_stream_t *s = http_respond_stream(r, 200, "text/plain");
    cr_assert_not_null(s);
    cr_assert_eq(http_stream_write(s, "a", 1), 0);
    cr_assert_eq(http_stream_write(s, "b", 1), 0);
    http_add_header(r, "x-after", "yes");
    int rc = http_respond_json(r, 500, json_pack("{s:i}", "n", 2));
    http_add_header(r, "x-second", rc == FENTA_EEXIST ? "eexist" : "other");
    http_add_header(r, "x-again", http_respond_stream(r, 200, NULL) ? "stream" : "null");
    http_stream_release(&s);
    cr_assert_null(s);
    http_stream_release(&s); /* NULL-safe */
}

static void h_custom_cache(http_req_t *r)
{
    http_add_header(r, "cache-control", "no-store");
    http_stream_t *s = http_respond_stream(r, 200, "text/event-stream");
    http_stream_write(s, "data: x\n\n", 9);
    http_stream_end(s);
    http_stream_end(s); /* idempotent */
    cr_assert_eq(http_stream_write(s, "y", 1), FENTA_ESTOPPED, "no write after the end");
    cr_assert(http_stream_closed(s));
    http_stream_release(&s);
}

static void h_bad_status(http_req_t *r)
{
    http_stream_t *s = http_respond_stream(r, 204, "text/event-stream");
    http_add_header(r, "x-got", s ? "stream" : "null");
}

/* A body from a file (http_respond_file): bytes 3..12 of a file of 26
 * letters, from an fd the handler opens and hands over. */
static void h_file(http_req_t *r)
{
    char path[] = "/tmp/fenta-file-body-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path); /* the open fd is all the server needs */
    cr_assert_eq(write(fd, "abcdefghijklmnopqrstuvwxyz", 26), 26);
    http_add_header(r, "etag", "\"v1\"");
    cr_assert_eq(http_respond_file(r, 206, "text/plain", fd, 3, 10), 0);
}

/* A refused file response closes the fd it was given, at once. */
static void h_file_refused(http_req_t *r)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = http_respond_file(r, 304, "text/plain", fd, 0, 0);
    bool closed = fcntl(fd, F_GETFD) == -1;
    http_add_header(r, "x-refused", rc == FENTA_EINVAL && closed ? "closed" : "leaked");
}

static const http_route_t routes[] = {
    {"GET", "/file", h_file, 0, "file", NULL, 0},
    {"GET", "/file-refused", h_file_refused, 0, "file_refused", NULL, 0},
    {"GET", "/events", h_events, 0, "events", NULL, 0},
    {"GET", "/prewritten", h_prewritten, 0, "prewritten", NULL, 0},
    {"GET", "/custom", h_custom_cache, 0, "custom", NULL, 0},
    {"GET", "/bad", h_bad_status, 0, "bad", NULL, 0},
};

static http_server_t *srv;
static int port;
static char base[64];

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    log_set_level(LOG_WARN);
    http_config_t cfg = {
        .listen = "127.0.0.1:0",
        .loops = 2,
        .workers = 4,
        .stop_timeout_ms = 3000,
    };
    int err = 1;
    srv = http_server_new(&cfg, &err);
    cr_assert_not_null(srv, "http_server_new: %s", fenta_strerror(err));
    cr_assert_eq(http_server_route(srv, routes, sizeof(routes) / sizeof(routes[0])), 0);
    cr_assert_eq(http_server_start(srv), 0);
    port = http_server_port(srv);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
}

static void teardown(void)
{
    http_server_destroy(&srv);
    for (int i = 0; i < nparked; i++)
        http_stream_release(&parked[i].s);
    curl_global_cleanup();
}

TestSuite(stream, .init = setup, .fini = teardown, .timeout = 30);

/* Waits until n streams are parked; returns the first of them. */
static parked_t *wait_parked(int n, int timeout_ms)
{
    struct timespec ts;
    deadline_ts(&ts, timeout_ms);
    pthread_mutex_lock(&park_mu);
    while (nparked < n)
        if (pthread_cond_timedwait(&park_cv, &park_mu, &ts) != 0)
            break;
    int got = nparked;
    pthread_mutex_unlock(&park_mu);
    cr_assert_geq(got, n, "%d streams parked, want %d", got, n);
    return &parked[n - 1];
}

static bool wait_closes(parked_t *p, int n, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (atomic_load(&p->closes) < n && now_ms() < end)
        usleep(5000);
    return atomic_load(&p->closes) == n;
}

static void write_str(parked_t *p, const char *text)
{
    int rc = http_stream_write(p->s, text, strlen(text));
    cr_assert_eq(rc, 0, "write %s: %s", text, fenta_strerror(rc));
}

/* ---- a curl client on its own thread ------------------------------------------------ */

typedef struct {
    char path[128];
    long version;         /* CURL_HTTP_VERSION_* */
    const char *abort_at; /* abort the transfer once the body contains this */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char body[65536];
    size_t len;
    char headers[8192];
    size_t hlen;
    CURLcode rc;
    long status;
    long http_version;
    bool done;
} client_t;

static size_t client_body(char *data, size_t sz, size_t n, void *ud)
{
    client_t *c = ud;
    pthread_mutex_lock(&c->mu);
    size_t take = sz * n < sizeof(c->body) - 1 - c->len ? sz * n : sizeof(c->body) - 1 - c->len;
    memcpy(c->body + c->len, data, take);
    c->len += take;
    c->body[c->len] = '\0';
    bool stop = c->abort_at && strstr(c->body, c->abort_at);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return stop ? 0 : sz * n;
}

static size_t client_header(char *data, size_t sz, size_t n, void *ud)
{
    client_t *c = ud;
    size_t take =
        sz * n < sizeof(c->headers) - 1 - c->hlen ? sz * n : sizeof(c->headers) - 1 - c->hlen;
    memcpy(c->headers + c->hlen, data, take);
    c->hlen += take;
    c->headers[c->hlen] = '\0';
    return sz * n;
}

static CURL *client_easy(client_t *c)
{
    CURL *e = curl_easy_init();
    cr_assert_not_null(e);
    bool head = strncmp(c->path, "HEAD ", 5) == 0; /* path "HEAD /x": a HEAD request */
    char url[256];
    snprintf(url, sizeof(url), "%s%s", base, head ? c->path + 5 : c->path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (head)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, client_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, client_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, c->version ? c->version : CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 15000L);
    return e;
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    CURL *e = client_easy(c);
    CURLcode rc = curl_easy_perform(e);
    long status = 0, version = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    curl_easy_cleanup(e); /* closes the connection: nothing else uses it */
    pthread_mutex_lock(&c->mu);
    c->rc = rc;
    c->status = status;
    c->http_version = version;
    c->done = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static client_t *client_start(const char *path, long version)
{
    client_t *c = calloc(1, sizeof(*c));
    cr_assert_not_null(c);
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->version = version;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    cr_assert_eq(pthread_create(&c->thread, NULL, client_main, c), 0);
    return c;
}

/* True when the body contains needle within timeout_ms. */
static bool client_wait_body(client_t *c, const char *needle, int timeout_ms)
{
    struct timespec ts;
    deadline_ts(&ts, timeout_ms);
    pthread_mutex_lock(&c->mu);
    while (!strstr(c->body, needle) && !c->done)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) != 0)
            break;
    bool found = strstr(c->body, needle) != NULL;
    pthread_mutex_unlock(&c->mu);
    return found;
}

static bool client_done(client_t *c)
{
    pthread_mutex_lock(&c->mu);
    bool done = c->done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

static void client_join(client_t *c)
{
    pthread_join(c->thread, NULL);
}

static void client_free(client_t *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

/* The value of header name in the client's response headers, or NULL
 * (a static buffer). */
static const char *client_header_value(const client_t *c, const char *name)
{
    static char out[256];
    size_t nlen = strlen(name);
    for (const char *line = c->headers; *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            snprintf(out, sizeof(out), "%.*s", (int)(line + len - v), v);
            return out;
        }
        line += len + (eol ? 2 : 0);
    }
    return NULL;
}

/* ---- raw sockets --------------------------------------------------------------------- */

static int raw_connect(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    if (rcvbuf) /* before connect, so the window is small from the start */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void raw_send(int fd, const char *text)
{
    size_t n = strlen(text);
    cr_assert_eq(send(fd, text, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads until the received bytes contain needle (true) or timeout. */
static bool raw_wait(int fd, const char *needle, int timeout_ms)
{
    char buf[8192];
    size_t len = 0;
    struct timeval tv = {0, 50 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end && len < sizeof(buf) - 1) {
        ssize_t got = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (got == 0)
            break;
        if (got > 0) {
            len += (size_t)got;
            buf[len] = '\0';
            if (strstr(buf, needle))
                return true;
        }
    }
    return false;
}

/* ---- tests ---------------------------------------------------------------------------- */

/* Event 1 reaches the client while event 2 is not written yet; the
 * response carries the stream headers and ends cleanly. */
static void incremental(long version, long want_version)
{
    client_t *c = client_start("/events?id=inc", version);
    parked_t *p = wait_parked(1, 5000);
    cr_assert_str_eq(p->id, "inc");

    write_str(p, "data: 1\n\n");
    cr_assert(client_wait_body(c, "data: 1\n\n", 3000), "event 1 arrived before event 2 exists");
    pthread_mutex_lock(&c->mu);
    cr_assert_str_eq(c->body, "data: 1\n\n", "exactly event 1 so far");
    pthread_mutex_unlock(&c->mu);
    cr_assert_not(client_done(c), "the response is still open");
    cr_assert_not(http_stream_closed(p->s));

    usleep(100 * 1000); /* idle: nothing is sent and the request stays open */
    cr_assert_not(client_done(c));
    write_str(p, "data: 2\n\n");
    write_str(p, "data: 3\n\n");
    cr_assert(client_wait_body(c, "data: 3\n\n", 3000));
    cr_assert_not(client_done(c));
    http_stream_end(p->s);
    client_join(c);

    cr_assert_eq(c->rc, CURLE_OK, "curl: %s", curl_easy_strerror(c->rc));
    cr_assert_eq(c->status, 200);
    cr_assert_eq(c->http_version, want_version);
    cr_assert_str_eq(c->body, "data: 1\n\ndata: 2\n\ndata: 3\n\n", "in order, nothing else");
    cr_assert_str_eq(client_header_value(c, "content-type"), "text/event-stream");
    cr_assert_str_eq(client_header_value(c, "cache-control"), "no-cache");
    cr_assert_str_eq(client_header_value(c, "x-accel-buffering"), "no");
    cr_assert_not_null(client_header_value(c, "x-request-id"));
    cr_assert_null(client_header_value(c, "content-length"), "%s", c->headers);
    if (want_version == CURL_HTTP_VERSION_1_1)
        cr_assert_str_eq(client_header_value(c, "transfer-encoding"), "chunked");

    cr_assert(wait_closes(p, 1, 2000), "on_close ran once at the end (%d)",
              atomic_load(&p->closes));
    cr_assert(atomic_load(&p->closed_on_loop), "on_close runs on the loop thread");
    cr_assert(http_stream_closed(p->s));
    cr_assert_eq(http_stream_write(p->s, "x", 1), FENTA_ESTOPPED);
    usleep(50 * 1000);
    cr_assert_eq(atomic_load(&p->closes), 1, "only once");
    client_free(c);
}

Test(stream, events_arrive_as_written_over_http1)
{
    incremental(CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_1_1);
}

Test(stream, events_arrive_as_written_over_http2)
{
    incremental(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, CURL_HTTP_VERSION_2_0);
}

Test(stream, written_before_the_handler_returns_and_headers_after_respond)
{
    client_t *c = client_start("/prewritten", CURL_HTTP_VERSION_1_1);
    client_join(c);
    cr_assert_eq(c->rc, CURLE_OK, "curl: %s", curl_easy_strerror(c->rc));
    cr_assert_eq(c->status, 200, "a stream is a response: no 500");
    cr_assert_str_eq(c->body, "ab");
    cr_assert_str_eq(client_header_value(c, "content-type"), "text/plain");
    cr_assert_str_eq(client_header_value(c, "x-after"), "yes");
    cr_assert_str_eq(client_header_value(c, "x-second"), "eexist");
    cr_assert_str_eq(client_header_value(c, "x-again"), "null");
    client_free(c);

    c = client_start("HEAD /prewritten", CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    client_join(c);
    cr_assert_eq(c->rc, CURLE_OK, "curl: %s", curl_easy_strerror(c->rc));
    cr_assert_eq(c->status, 200);
    cr_assert_eq(c->len, 0, "HEAD has no body: %s", c->body);
    client_free(c);
}

Test(stream, handler_cache_control_wins_and_bad_status_is_refused)
{
    client_t *c = client_start("/custom", CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    client_join(c);
    cr_assert_eq(c->rc, CURLE_OK);
    cr_assert_str_eq(c->body, "data: x\n\n");
    cr_assert_str_eq(client_header_value(c, "cache-control"), "no-store", "%s", c->headers);
    cr_assert_str_eq(client_header_value(c, "x-accel-buffering"), "no");
    client_free(c);

    c = client_start("/bad", CURL_HTTP_VERSION_1_1);
    client_join(c);
    cr_assert_eq(c->status, 500);
    cr_assert_str_eq(client_header_value(c, "x-got"), "null");
    cr_assert_not_null(strstr(c->body, "\"code\":\"internal\""), "%s", c->body);
    client_free(c);
}

Test(stream, file_bodies_are_a_slice_of_the_file)
{
    static const long versions[] = {CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE};
    for (size_t v = 0; v < 2; v++) {
        client_t *c = client_start("/file", versions[v]);
        client_join(c);
        cr_assert_eq(c->rc, CURLE_OK);
        cr_assert_eq(c->status, 206);
        cr_assert_str_eq(c->body, "defghijklm");
        cr_assert_str_eq(client_header_value(c, "content-length"), "10", "%s", c->headers);
        cr_assert_str_eq(client_header_value(c, "content-type"), "text/plain");
        cr_assert_str_eq(client_header_value(c, "etag"), "\"v1\"");
        cr_assert_null(client_header_value(c, "x-accel-buffering"), "a file is no live stream");
        client_free(c);

        c = client_start("HEAD /file", versions[v]);
        client_join(c);
        cr_assert_eq(c->status, 206);
        cr_assert_eq(c->len, 0, "HEAD has no body: %s", c->body);
        cr_assert_str_eq(client_header_value(c, "content-length"), "10", "%s", c->headers);
        client_free(c);
    }
    client_t *c = client_start("/file-refused", CURL_HTTP_VERSION_1_1);
    client_join(c);
    cr_assert_eq(c->status, 500);
    cr_assert_str_eq(client_header_value(c, "x-refused"), "closed");
    client_free(c);
}

/* The access-log line of a stream is written when it ends, not when the
 * handler returns. */
Test(stream, access_log_line_when_the_stream_ends)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    log_set_level(LOG_INFO);
    log_set_fd(fds[1]);
    client_t *c = client_start("/events?id=log", CURL_HTTP_VERSION_1_1);
    parked_t *p = wait_parked(1, 5000);
    write_str(p, "data: 1\n\n");
    cr_assert(client_wait_body(c, "data: 1\n\n", 3000));
    usleep(50 * 1000);
    char buf[8192];
    ssize_t got = read(fds[0], buf, sizeof(buf) - 1);
    buf[got > 0 ? got : 0] = '\0';
    cr_assert_null(strstr(buf, "/events"), "no access line while streaming: %s", buf);

    http_stream_end(p->s);
    client_join(c);
    size_t len = 0;
    int64_t end = now_ms() + 2000;
    while (now_ms() < end && !strstr(buf, "\"route\":\"/events\"")) {
        got = read(fds[0], buf + len, sizeof(buf) - 1 - len);
        if (got > 0)
            len += (size_t)got;
        buf[len] = '\0';
        usleep(5000);
    }
    log_set_fd(2);
    close(fds[0]);
    close(fds[1]);
    cr_assert_not_null(strstr(buf, "\"route\":\"/events\""), "the line came at the end: %s", buf);
    cr_assert_not_null(strstr(buf, "\"status\":\"200\""), "%s", buf);
    client_free(c);
}

/* 50 streams multiplexed on one HTTP/2 connection, written round by round
 * from this thread while the client reads them all. */
typedef struct {
    CURLM *multi;
    atomic_bool finished;
} multi_run_t;

static void *multi_main(void *arg)
{
    multi_run_t *m = arg;
    int running = 1;
    while (running) {
        curl_multi_perform(m->multi, &running);
        if (running)
            curl_multi_poll(m->multi, NULL, 0, 50, NULL);
    }
    atomic_store(&m->finished, true);
    return NULL;
}

Test(stream, fifty_streams_multiplexed_on_one_h2_connection)
{
    enum { N = 50, ROUNDS = 4 };
    static client_t cs[N];
    CURL *es[N];
    multi_run_t m = {.multi = curl_multi_init()};
    curl_multi_setopt(m.multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(m.multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
    for (int i = 0; i < N; i++) {
        memset(&cs[i], 0, sizeof(cs[i]));
        pthread_mutex_init(&cs[i].mu, NULL);
        pthread_cond_init(&cs[i].cv, NULL);
        snprintf(cs[i].path, sizeof(cs[i].path), "/events?id=s%d", i);
        /* h2c by Upgrade: libcurl 7.88 cannot put a second stream on a
         * prior-knowledge connection (curl issue 10634, fixed in 8.0) */
        cs[i].version = CURL_HTTP_VERSION_2_0;
        es[i] = client_easy(&cs[i]);
        curl_easy_setopt(es[i], CURLOPT_PIPEWAIT, 1L);
        curl_multi_add_handle(m.multi, es[i]);
    }
    pthread_t t;
    pthread_create(&t, NULL, multi_main, &m);
    wait_parked(N, 10000);
    char line[64];
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < N; i++) {
            snprintf(line, sizeof(line), "data: %s-%d\n\n", parked[i].id, r);
            write_str(&parked[i], line);
        }
    for (int i = 0; i < N; i++)
        http_stream_end(parked[i].s);
    pthread_join(t, NULL);

    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m.multi, &left)))
        if (msg->msg == CURLMSG_DONE)
            for (int i = 0; i < N; i++)
                if (es[i] == msg->easy_handle)
                    cs[i].rc = msg->data.result;
    long local_port0 = 0;
    for (int i = 0; i < N; i++) {
        long status = 0, version = 0, lport = 0;
        curl_easy_getinfo(es[i], CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(es[i], CURLINFO_HTTP_VERSION, &version);
        curl_easy_getinfo(es[i], CURLINFO_LOCAL_PORT, &lport);
        cr_assert_eq(cs[i].rc, CURLE_OK, "stream %d: %s", i, curl_easy_strerror(cs[i].rc));
        cr_assert_eq(status, 200);
        cr_assert_eq(version, CURL_HTTP_VERSION_2_0, "stream %d over HTTP/2", i);
        if (i == 0)
            local_port0 = lport;
        cr_assert_eq(lport, local_port0, "stream %d on the same connection", i);
        /* every stream got its own events, all of them, in order */
        const char *id = strchr(cs[i].path, '=') + 1;
        char want[512] = "";
        for (int r = 0; r < ROUNDS; r++) {
            snprintf(line, sizeof(line), "data: %s-%d\n\n", id, r);
            strcat(want, line);
        }
        cr_assert_str_eq(cs[i].body, want, "stream %d", i);
        curl_multi_remove_handle(m.multi, es[i]);
        curl_easy_cleanup(es[i]);
        pthread_mutex_destroy(&cs[i].mu);
        pthread_cond_destroy(&cs[i].cv);
    }
    curl_multi_cleanup(m.multi);
    for (int i = 0; i < N; i++)
        cr_assert(wait_closes(&parked[i], 1, 2000), "stream %d closed once", i);
}

/* HTTP/1.1: h2o does not read the socket while it responds, so the client's
 * departure shows when a write reaches it (heartbeats find it). */
Test(stream, client_that_disconnects_over_http1_fails_writes)
{
    int fd = raw_connect(0);
    raw_send(fd, "GET /events?id=gone HTTP/1.1\r\nHost: x\r\n\r\n");
    parked_t *p = wait_parked(1, 5000);
    write_str(p, "data: hi\n\n");
    cr_assert(raw_wait(fd, "data: hi", 3000), "the event arrived");
    close(fd);
    int64_t t0 = now_ms();
    int rc = 0;
    while (rc == 0 && now_ms() - t0 < 3000) {
        usleep(20 * 1000);
        rc = http_stream_write(p->s, ": ping\n\n", 8);
    }
    cr_assert_eq(rc, FENTA_ESTOPPED, "a write fails once the client is gone: %s",
                 fenta_strerror(rc));
    cr_assert(http_stream_closed(p->s));
    cr_assert(wait_closes(p, 1, 1000), "on_close ran once (%d)", atomic_load(&p->closes));
    cr_assert(atomic_load(&p->closed_on_loop));
    cr_assert_lt(now_ms() - t0, 2000, "noticed quickly");
}

/* HTTP/2: h2o reads the connection all along and sees the client reset the
 * stream at once, without any write. */
Test(stream, client_that_disconnects_over_http2_closes_the_stream)
{
    client_t *c = calloc(1, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "/events?id=gone2");
    c->version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    c->abort_at = "data: hi\n\n";
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_create(&c->thread, NULL, client_main, c);
    parked_t *p = wait_parked(1, 5000);
    write_str(p, "data: hi\n\n");
    client_join(c);
    cr_assert_eq(c->rc, CURLE_WRITE_ERROR, "the client aborted: %s", curl_easy_strerror(c->rc));
    cr_assert(wait_closes(p, 1, 2000), "on_close without any write (%d)", atomic_load(&p->closes));
    cr_assert(http_stream_closed(p->s));
    cr_assert_eq(http_stream_write(p->s, "data: late\n\n", 12), FENTA_ESTOPPED);
    client_free(c);
}

/* Stop ends every open stream: clients see a complete response, stop does
 * not wait for the producers, and their writes fail afterwards. */
Test(stream, stop_with_ten_open_streams_is_prompt)
{
    enum { N = 10 };
    client_t *cs[N];
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/events?id=stop%d", i);
        cs[i] =
            client_start(path, i % 2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1);
    }
    wait_parked(N, 5000);
    for (int i = 0; i < N; i++)
        write_str(&parked[i], "data: before-stop\n\n");
    for (int i = 0; i < N; i++)
        cr_assert(client_wait_body(cs[i], "data: before-stop\n\n", 3000), "client %d", i);

    int64_t t0 = now_ms();
    http_server_stop(srv);
    int64_t took = now_ms() - t0;
    cr_assert_lt(took, 2000, "stop took %lld ms", (long long)took);

    for (int i = 0; i < N; i++) {
        client_join(cs[i]);
        cr_assert_eq(cs[i]->rc, CURLE_OK, "client %d saw the end of the response: %s", i,
                     curl_easy_strerror(cs[i]->rc));
        cr_assert_eq(cs[i]->status, 200);
        cr_assert_str_eq(cs[i]->body, "data: before-stop\n\n", "client %d", i);
        client_free(cs[i]);
    }
    for (int i = 0; i < N; i++) {
        cr_assert(http_stream_closed(parked[i].s));
        cr_assert_eq(http_stream_write(parked[i].s, "x", 1), FENTA_ESTOPPED);
        cr_assert_eq(atomic_load(&parked[i].closes), 1, "stream %d closed once", i);
    }
    /* producers may hold their references past the server's life */
    http_server_destroy(&srv);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(http_stream_write(parked[i].s, "x", 1), FENTA_ESTOPPED);
        http_stream_release(&parked[i].s);
    }
}

/* A client that stops reading: the producer gets FENTA_ETOOBIG after about
 * the bound (plus what the kernel and h2o hold), not unbounded memory. */
Test(stream, slow_consumer_makes_write_fail_too_big)
{
    int fd = raw_connect(4096);
    raw_send(fd, "GET /events?id=slow HTTP/1.1\r\nHost: x\r\n\r\n");
    parked_t *p = wait_parked(1, 5000);
    static char chunk[16384];
    memset(chunk, 'x', sizeof(chunk));
    chunk[sizeof(chunk) - 1] = '\n';
    size_t total = 0;
    int rc = 0;
    while (total < (64u << 20)) {
        rc = http_stream_write(p->s, chunk, sizeof(chunk));
        if (rc != 0)
            break;
        total += sizeof(chunk);
        if (total % (1u << 20) == 0)
            usleep(10 * 1000); /* let the loop hand what it can to the kernel */
    }
    cr_assert_eq(rc, FENTA_ETOOBIG, "write refused: %s after %zu bytes", fenta_strerror(rc), total);
    cr_assert_geq(total, (1u << 20) - sizeof(chunk), "not before the bound (%zu)", total);
    cr_assert_lt(total, 32u << 20, "the bound holds (%zu bytes accepted)", total);
    cr_assert(http_stream_closed(p->s));
    cr_assert_eq(http_stream_write(p->s, "x", 1), FENTA_ESTOPPED, "closed after overflow");
    close(fd); /* the pending send fails: the request goes */
    cr_assert(wait_closes(p, 1, 3000), "on_close after the client left (%d)",
              atomic_load(&p->closes));
}
