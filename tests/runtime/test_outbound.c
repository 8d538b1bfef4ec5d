/* test_outbound.c - the outbound HTTP client against a tiny
 * keep-alive HTTP/1.1 server in this file (one thread per connection,
 * behaviour chosen by path): successes carry the caller's headers and body,
 * answers are truncated, hangs time out, refused and blocked addresses say
 * so without a byte sent, Retry-After is read, redirects are not followed,
 * a hanging endpoint does not hold up another key, one key's requests start
 * in order, batches form under load, and destroy cancels what is left;
 * every method goes as asked, asked-for response headers come back, bodies
 * stream up from a reader and down to a sink (or are cut, or refused whole),
 * outbound_do waits, times out and is cancelled by destroy, and retries
 * honour Retry-After, back off, happen only when safe and asked for, and
 * keep their key's place.
 *
 * Why one file of ~1,100 lines: about a third of it is the test server
 * (connection threads, the behaviour of each path), which every case uses;
 * the client has one contract, and its cases read best beside that server. */
#include "runtime/outbound.h"
#include "runtime/error.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* --- the server ------------------------------------------------------------------ */

#define MAX_CONNS 2048
#define MAX_SEQ 64

typedef struct {
    int fd;       /* -1 once closed */
    pthread_t th; /* its thread */
} conn_t;

static struct {
    int lfd, port;           /* the listening socket and its port */
    pthread_t acceptor;      /* the accept loop */
    pthread_mutex_t mu;      /* guards everything below */
    bool stop;               /* the test is over */
    conn_t conns[MAX_CONNS]; /* accepted connections */
    int nconns;              /* how many */
    int accepts, ok, hang;   /* connections accepted, /ok and /hang requests */
    char ok_headers[4096];   /* the last /ok request's header block */
    char ok_body[4096];      /* and its body */
    size_t ok_body_len;      /* its length */
    int seq[MAX_SEQ], nseq;  /* "seq=N" bodies of /ok, in arrival order */
    int echo, flaky;         /* /echo and /flaky... requests */
    char echo_method[16];    /* the last /echo request's method */
    char echo_headers[4096]; /* its header block */
    size_t echo_len;         /* its body's length */
    unsigned echo_sum;       /* and a checksum of that body */
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Head and body in one write: two small writes would wait on Nagle and the
 * client's delayed ACK, 40 ms per request. */
static bool answer(int fd, int status, const char *extra, const char *body, size_t len)
{
    char *msg = NULL;
    int n = asprintf(&msg, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n%.*s", status, len, extra,
                     (int)len, body);
    bool ok = n > 0 && send_all(fd, msg, (size_t)n);
    free(msg);
    return ok;
}

/* The Content-Length in a header block, or 0. */
static size_t content_length(const char *h, size_t hlen)
{
    for (const char *p = h, *nl; (nl = memmem(p, (size_t)(h + hlen - p), "\r\n", 2)); p = nl + 2)
        if (strncasecmp(p, "content-length:", 15) == 0)
            return strtoul(p + 15, NULL, 10);
    return 0;
}

static bool handle(int fd, const char *path, const char *head, size_t hlen, const char *body,
                   size_t blen)
{
    if (strcmp(path, "/ok") == 0) {
        pthread_mutex_lock(&srv.mu);
        srv.ok++;
        snprintf(srv.ok_headers, sizeof srv.ok_headers, "%.*s", (int)hlen, head);
        srv.ok_body_len = blen < sizeof srv.ok_body ? blen : sizeof srv.ok_body;
        memcpy(srv.ok_body, body, srv.ok_body_len);
        if (blen > 4 && strncmp(body, "seq=", 4) == 0 && srv.nseq < MAX_SEQ)
            srv.seq[srv.nseq++] = atoi(body + 4);
        pthread_mutex_unlock(&srv.mu);
        return answer(fd, 200, "", "fine", 4);
    }
    if (strcmp(path, "/fail") == 0) {
        static char big[5000];
        memset(big, 'x', sizeof big);
        return answer(fd, 500, "", big, sizeof big);
    }
    if (strcmp(path, "/hang") == 0) {
        pthread_mutex_lock(&srv.mu);
        srv.hang++;
        pthread_mutex_unlock(&srv.mu);
        return true; /* never answers; the connection stays open */
    }
    if (strcmp(path, "/ra429") == 0)
        return answer(fd, 429, "Retry-After: 3\r\n", "", 0);
    if (strcmp(path, "/ra503date") == 0) {
        char extra[128];
        time_t t = time(NULL) + 5;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(extra, sizeof extra, "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        return answer(fd, 503, extra, "", 0);
    }
    if (strcmp(path, "/echo") == 0) {
        /* Answers the method and body length, with two headers to ask for. */
        char method[16] = "", text[64];
        sscanf(head, "%15s", method);
        unsigned sum = 0;
        for (size_t i = 0; i < blen; i++)
            sum = sum * 31 + (unsigned char)body[i];
        pthread_mutex_lock(&srv.mu);
        srv.echo++;
        snprintf(srv.echo_method, sizeof srv.echo_method, "%s", method);
        snprintf(srv.echo_headers, sizeof srv.echo_headers, "%.*s", (int)hlen, head);
        srv.echo_len = blen;
        srv.echo_sum = sum;
        pthread_mutex_unlock(&srv.mu);
        int n = snprintf(text, sizeof text, "%s %zu", method, blen);
        const char *extra = "ETag: \"v1\"\r\nContent-Type: text/plain\r\n";
        if (strcmp(method, "HEAD") == 0) { /* the length of the body a GET would get */
            char *msg = NULL;
            int m = asprintf(&msg, "HTTP/1.1 200 X\r\nContent-Length: %d\r\n%s\r\n", n, extra);
            bool ok = m > 0 && send_all(fd, msg, (size_t)m);
            free(msg);
            return ok;
        }
        return answer(fd, 200, extra, text, (size_t)n);
    }
    if (strcmp(path, "/big") == 0) {
        static char big[20000];
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (char)('a' + i % 26);
        return answer(fd, 200, "", big, sizeof big);
    }
    if (strncmp(path, "/flaky", 6) == 0) {
        /* /flaky429-N and /flaky503-N refuse the first N requests: 429 with
         * Retry-After: 1, or 503 without one; then 200. */
        int refuse = atoi(path + 10);
        pthread_mutex_lock(&srv.mu);
        int seen = ++srv.flaky;
        pthread_mutex_unlock(&srv.mu);
        if (seen > refuse)
            return answer(fd, 200, "", "fine", 4);
        if (strncmp(path, "/flaky429", 9) == 0)
            return answer(fd, 429, "Retry-After: 1\r\n", "", 0);
        return answer(fd, 503, "", "", 0);
    }
    if (strcmp(path, "/redirect") == 0)
        return answer(fd, 302, "Location: /ok\r\n", "", 0);
    if (strcmp(path, "/slow") == 0) {
        nanosleep(&(struct timespec){1, 500000000}, NULL);
        return answer(fd, 200, "", "late", 4);
    }
    return answer(fd, 404, "", "", 0);
}

/* One connection: requests one after another (keep-alive) until the client
 * closes it or the test ends. */
static void *serve(void *arg)
{
    conn_t *cn = arg;
    int fd = cn->fd;
    enum { CAP = 65536 };
    char *buf = malloc(CAP);
    size_t have = 0;
    if (!buf)
        goto out;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t n = have < CAP ? recv(fd, buf + have, CAP - have, 0) : 0;
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        size_t hlen = (size_t)(end - buf) + 4, blen = content_length(buf, hlen);
        if (hlen + blen > CAP)
            goto out;
        while (have < hlen + blen) {
            ssize_t n = recv(fd, buf + have, CAP - have, 0);
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        char path[256] = "";
        sscanf(buf, "%*s %255s", path);
        if (!handle(fd, path, buf, hlen, buf + hlen, blen))
            goto out;
        memmove(buf, buf + hlen + blen, have - hlen - blen);
        have -= hlen + blen;
    }
out:
    free(buf);
    pthread_mutex_lock(&srv.mu);
    close(fd);
    cn->fd = -1;
    pthread_mutex_unlock(&srv.mu);
    return NULL;
}

static void *accept_loop(void *arg)
{
    for (;;) {
        int fd = accept(srv.lfd, NULL, NULL);
        pthread_mutex_lock(&srv.mu);
        bool stop = srv.stop;
        if (fd >= 0 && !stop) {
            srv.accepts++;
            if (srv.nconns < MAX_CONNS) {
                conn_t *cn = &srv.conns[srv.nconns];
                cn->fd = fd;
                if (pthread_create(&cn->th, NULL, serve, cn) == 0)
                    srv.nconns++;
                else
                    close(fd);
            } else {
                close(fd);
            }
        } else if (fd >= 0) {
            close(fd);
        }
        pthread_mutex_unlock(&srv.mu);
        if (stop || (fd < 0 && errno != EINTR && errno != ECONNABORTED))
            return NULL;
    }
}

static void srv_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(srv.lfd, 0);
    cr_assert_eq(bind(srv.lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(srv.lfd, 1024), 0);
    cr_assert_eq(getsockname(srv.lfd, (struct sockaddr *)&a, &len), 0);
    srv.port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&srv.acceptor, NULL, accept_loop, NULL), 0);
}

static void srv_stop(void)
{
    pthread_mutex_lock(&srv.mu);
    srv.stop = true;
    shutdown(srv.lfd, SHUT_RDWR); /* wakes accept */
    pthread_mutex_unlock(&srv.mu);
    pthread_join(srv.acceptor, NULL);
    close(srv.lfd);
    pthread_mutex_lock(&srv.mu);
    for (int i = 0; i < srv.nconns; i++)
        if (srv.conns[i].fd >= 0)
            shutdown(srv.conns[i].fd, SHUT_RDWR);
    int n = srv.nconns;
    pthread_mutex_unlock(&srv.mu);
    for (int i = 0; i < n; i++)
        pthread_join(srv.conns[i].th, NULL);
}

static int srv_get(const int *field)
{
    pthread_mutex_lock(&srv.mu);
    int v = *field;
    pthread_mutex_unlock(&srv.mu);
    return v;
}

/* --- what the callback saw ---------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;     /* guards the rest */
    pthread_cond_t cv;      /* signalled on every batch */
    outbound_result_t *res; /* every result, in completion order (bodies copied) */
    size_t n, cap;          /* how many */
    size_t batches, widest; /* calls, and the largest n in one */
    size_t fast;            /* results whose arg is below SLOW */
} got = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

#define SLOW 100000

static void on_done(void *cb_arg, const outbound_result_t *res, size_t n)
{
    cr_assert_eq(cb_arg, &got);
    cr_assert_geq(n, 1);
    pthread_mutex_lock(&got.mu);
    if (got.n + n > got.cap) {
        got.cap = (got.n + n) * 2;
        got.res = realloc(got.res, got.cap * sizeof *got.res);
        cr_assert_not_null(got.res);
    }
    for (size_t i = 0; i < n; i++) {
        outbound_result_t *r = &got.res[got.n++];
        *r = res[i];
        char *b = malloc(res[i].body_len + 1);
        memcpy(b, res[i].body ? res[i].body : "", res[i].body_len);
        b[res[i].body_len] = 0;
        r->body = b;
        got.fast += (intptr_t)res[i].arg < SLOW;
    }
    got.batches++;
    got.widest = n > got.widest ? n : got.widest;
    pthread_cond_broadcast(&got.cv);
    pthread_mutex_unlock(&got.mu);
}

/* Waits until *counter reaches n; false after the given seconds. */
static bool wait_for(const size_t *counter, size_t n, int seconds)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += seconds;
    pthread_mutex_lock(&got.mu);
    while (*counter < n && pthread_cond_timedwait(&got.cv, &got.mu, &dl) == 0)
        ;
    bool ok = *counter >= n;
    pthread_mutex_unlock(&got.mu);
    return ok;
}

static const outbound_result_t *result_of(intptr_t arg)
{
    for (size_t i = 0; i < got.n; i++)
        if ((intptr_t)got.res[i].arg == arg)
            return &got.res[i];
    cr_assert_fail("no result for request %ld", (long)arg);
    return NULL;
}

static void setup(void)
{
    srv_start();
}

static void teardown(void)
{
    srv_stop();
    for (size_t i = 0; i < got.n; i++)
        free((char *)got.res[i].body);
    free(got.res);
}

/* One timeout for the whole suite: Criterion 2.4 leaks a timer entry in its
 * runner when one test overrides the suite's and runs beside others. */
TestSuite(outbound, .init = setup, .fini = teardown, .timeout = 120);

static outbound_t *client(outbound_opts_t o)
{
    int err = 0;
    outbound_t *c = outbound_new(&o, on_done, &got, &err);
    cr_assert_not_null(c, "outbound_new: %s", fenta_strerror(err));
    return c;
}

static char *url(const char *path)
{
    static __thread char buf[8][128];
    static __thread int i;
    char *u = buf[i++ % 8];
    snprintf(u, 128, "http://127.0.0.1:%d%s", srv.port, path);
    return u;
}

static void post(outbound_t *c, const char *key, const char *u, intptr_t arg)
{
    outbound_request_t r = {.key = key, .url = u, .body = "{}", .body_len = 2, .arg = (void *)arg};
    cr_assert_eq(outbound_submit(c, &r), 0);
}

/* One request, its result (the client is destroyed, so nothing is pending). */
static const outbound_result_t *one(outbound_opts_t o, const outbound_request_t *r)
{
    outbound_t *c = client(o);
    cr_assert_eq(outbound_submit(c, r), 0);
    cr_assert(wait_for(&got.n, 1, 30));
    outbound_destroy(&c);
    cr_assert_null(c);
    cr_assert_eq(got.n, 1);
    return &got.res[0];
}

/* --- the cases ------------------------------------------------------------------ */

Test(outbound, ok_sends_headers_and_body)
{
    const char *h[] = {"webhook-id: x", NULL};
    const char body[] = "{\"type\":\"job.done\",\"n\":1}";
    outbound_request_t r = {.key = "e1",
                            .url = url("/ok"),
                            .headers = h,
                            .body = body,
                            .body_len = strlen(body),
                            .arg = (void *)7};
    /* The user agent webhooks_start gives (the client's own is "Fenta/1"). */
    const outbound_result_t *res =
        one((outbound_opts_t){.allow_loopback = true, .user_agent = "Fenta-Webhooks/1"}, &r);
    cr_assert_eq(res->outcome, OUTBOUND_OK, "%s", res->error);
    cr_assert_eq(res->status, 200);
    cr_assert_eq(res->arg, (void *)7);
    cr_assert_str_eq(res->body, "fine");
    cr_assert_eq(res->body_len, 4);
    cr_assert_str_eq(res->error, "");
    cr_assert_eq(res->retry_after_ms, -1);
    cr_assert_geq(res->latency_ms, 0);
    cr_assert_str_eq(res->ip, "127.0.0.1");
    cr_assert_eq(srv_get(&srv.ok), 1);
    cr_assert_eq(srv.ok_body_len, strlen(body));
    cr_assert_eq(memcmp(srv.ok_body, body, strlen(body)), 0);
    cr_assert(strncmp(srv.ok_headers, "POST /ok HTTP/1.1\r\n", 19) == 0, "%s", srv.ok_headers);
    cr_assert_not_null(strcasestr(srv.ok_headers, "\r\nwebhook-id: x\r\n"), "%s", srv.ok_headers);
    cr_assert_not_null(strcasestr(srv.ok_headers, "\r\nContent-Type: application/json\r\n"));
    cr_assert_not_null(strcasestr(srv.ok_headers, "\r\nUser-Agent: Fenta-Webhooks/1\r\n"));
    cr_assert_null(strcasestr(srv.ok_headers, "\r\nExpect:"), "%s", srv.ok_headers);
}

Test(outbound, callers_content_type_wins)
{
    const char *h[] = {"Content-Type: text/plain", NULL};
    outbound_request_t r = {
        .key = "e1", .url = url("/ok"), .headers = h, .body = "hi", .body_len = 2};
    const outbound_result_t *res =
        one((outbound_opts_t){.allow_loopback = true, .user_agent = "ua/2"}, &r);
    cr_assert_eq(res->outcome, OUTBOUND_OK, "%s", res->error);
    cr_assert_not_null(strcasestr(srv.ok_headers, "\r\nContent-Type: text/plain\r\n"));
    cr_assert_null(strcasestr(srv.ok_headers, "application/json"), "%s", srv.ok_headers);
    cr_assert_not_null(strcasestr(srv.ok_headers, "\r\nUser-Agent: ua/2\r\n"));
}

Test(outbound, error_body_truncated)
{
    outbound_request_t r = {.key = "e1", .url = url("/fail"), .body = "{}", .body_len = 2};
    const outbound_result_t *res =
        one((outbound_opts_t){.allow_loopback = true, .max_body_kept = 100}, &r);
    cr_assert_eq(res->outcome, OUTBOUND_HTTP_ERROR);
    cr_assert_eq(res->status, 500);
    cr_assert_eq(res->body_len, 100);
    cr_assert_eq(strspn(res->body, "x"), 100);
    cr_assert_neq(res->error[0], 0);
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

Test(outbound, hang_times_out)
{
    outbound_request_t r = {.key = "e1", .url = url("/hang"), .body = "{}", .body_len = 2};
    int64_t t0 = now_ms();
    const outbound_result_t *res =
        one((outbound_opts_t){.allow_loopback = true, .total_timeout_ms = 800}, &r);
    cr_assert_eq(res->outcome, OUTBOUND_TIMEOUT, "%d %s", res->outcome, res->error);
    cr_assert_lt(now_ms() - t0, 5000);
    cr_assert_not_null(strstr(res->error, "800 ms"), "%s", res->error);
    cr_assert_eq(res->status, 0);
    cr_assert_eq(srv_get(&srv.hang), 1);
}

Test(outbound, request_timeout_overrides_the_clients)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true, .total_timeout_ms = 500});
    outbound_request_t r[2] = {
        {.key = "a", .url = url("/slow"), .body = "", .arg = (void *)1},
        {.key = "b", .url = url("/slow"), .body = "", .total_timeout_ms = 10000, .arg = (void *)2},
    };
    cr_assert_eq(outbound_submit_many(c, r, 2), 0);
    cr_assert(wait_for(&got.n, 2, 30));
    outbound_destroy(&c);
    cr_assert_eq(result_of(1)->outcome, OUTBOUND_TIMEOUT);
    cr_assert_eq(result_of(2)->outcome, OUTBOUND_OK, "%s", result_of(2)->error);
    cr_assert_str_eq(result_of(2)->body, "late");
}

Test(outbound, refused_is_connect)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd); /* bound, never listened: nothing answers there now */
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/ok", ntohs(a.sin_port));
    outbound_request_t r = {.key = "e1", .url = u, .body = "{}", .body_len = 2};
    const outbound_result_t *res = one((outbound_opts_t){.allow_loopback = true}, &r);
    cr_assert_eq(res->outcome, OUTBOUND_CONNECT, "%d %s", res->outcome, res->error);
    cr_assert_not_null(strstr(res->error, "refused"), "%s", res->error);
    char where[32];
    snprintf(where, sizeof where, "127.0.0.1:%d", ntohs(a.sin_port));
    cr_assert_not_null(strstr(res->error, where), "%s", res->error);
    cr_assert_eq(res->status, 0);
}

Test(outbound, retry_after)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    post(c, "e1", url("/ra429"), 1);
    post(c, "e2", url("/ra503date"), 2);
    post(c, "e3", url("/fail"), 3);
    cr_assert(wait_for(&got.n, 3, 30));
    outbound_destroy(&c);
    cr_assert_eq(result_of(1)->status, 429);
    cr_assert_eq(result_of(1)->outcome, OUTBOUND_HTTP_ERROR);
    cr_assert_eq(result_of(1)->retry_after_ms, 3000);
    cr_assert_eq(result_of(2)->status, 503);
    cr_assert_geq(result_of(2)->retry_after_ms, 3000);
    cr_assert_leq(result_of(2)->retry_after_ms, 6000);
    cr_assert_eq(result_of(3)->retry_after_ms, -1);
}

Test(outbound, redirect_not_followed)
{
    outbound_request_t r = {.key = "e1", .url = url("/redirect"), .body = "{}", .body_len = 2};
    const outbound_result_t *res = one((outbound_opts_t){.allow_loopback = true}, &r);
    cr_assert_eq(res->outcome, OUTBOUND_HTTP_ERROR);
    cr_assert_eq(res->status, 302);
    cr_assert_not_null(strstr(res->error, "not followed"), "%s", res->error);
    cr_assert_eq(srv_get(&srv.ok), 0);
}

Test(outbound, blocked_addresses_get_nothing)
{
    char u[3][80];
    snprintf(u[0], sizeof u[0], "http://127.0.0.1:%d/ok", srv.port);
    snprintf(u[1], sizeof u[1], "http://localhost:%d/ok", srv.port);
    snprintf(u[2], sizeof u[2], "http://[::1]:%d/ok", srv.port);
    outbound_t *c = client((outbound_opts_t){.allow_private = true});
    for (int i = 0; i < 3; i++)
        post(c, "e1", u[i], i);
    cr_assert(wait_for(&got.n, 3, 30));
    outbound_destroy(&c);
    for (int i = 0; i < 3; i++) {
        const outbound_result_t *res = result_of(i);
        cr_assert_eq(res->outcome, OUTBOUND_BLOCKED, "%s: %d %s", u[i], res->outcome, res->error);
        cr_assert_not_null(strstr(res->error, "loopback"), "%s", res->error);
        cr_assert_str_eq(res->ip, "");
    }
    cr_assert_eq(srv_get(&srv.accepts), 0);
}

Test(outbound, address_rule)
{
    static const struct {
        const char *ip;
        int plain, loopback, private_, both; /* 1 = allowed under those flags */
    } t[] = {
        {"10.1.2.3", 0, 0, 1, 1},
        {"172.16.0.1", 0, 0, 1, 1},
        {"172.32.0.1", 1, 1, 1, 1},
        {"192.168.1.1", 0, 0, 1, 1},
        {"169.254.169.254", 0, 0, 0, 0},
        {"100.64.0.1", 0, 0, 1, 1},
        {"100.100.100.200", 0, 0, 0, 0},
        {"127.0.0.1", 0, 1, 0, 1},
        {"127.9.9.9", 0, 1, 0, 1},
        {"::1", 0, 1, 0, 1},
        {"fe80::1", 0, 0, 0, 0},
        {"::ffff:127.0.0.1", 0, 1, 0, 1},
        {"::ffff:169.254.169.254", 0, 0, 0, 0},
        {"::ffff:8.8.8.8", 1, 1, 1, 1},
        {"fd12::1", 0, 0, 1, 1},
        {"fd00:ec2::254", 0, 0, 0, 0},
        {"8.8.8.8", 1, 1, 1, 1},
        {"2001:4860::8888", 1, 1, 1, 1},
        {"0.0.0.0", 0, 0, 0, 0},
        {"::", 0, 0, 0, 0},
        {"224.0.0.1", 0, 0, 0, 0},
        {"ff02::1", 0, 0, 0, 0},
        {"255.255.255.255", 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int want[4] = {t[i].plain, t[i].loopback, t[i].private_, t[i].both};
        for (int f = 0; f < 4; f++) {
            char why[128] = "unset";
            int rc = outbound_check_address(t[i].ip, f & 1, f & 2, why, sizeof why);
            cr_assert_eq(rc, want[f] ? 0 : FENTA_EDENIED, "%s flags %d: %d (%s)", t[i].ip, f, rc,
                         why);
            if (want[f])
                cr_assert_str_eq(why, "");
            else
                cr_assert_not_null(strstr(why, t[i].ip), "%s", why);
        }
    }
    char why[128];
    cr_assert_eq(outbound_check_address("10.0.0.5", false, false, why, sizeof why), FENTA_EDENIED);
    cr_assert_not_null(strstr(why, "private"), "%s", why);
    cr_assert_eq(outbound_check_address("example.com", true, true, why, sizeof why), FENTA_EINVAL);
}

Test(outbound, bad_urls_and_bad_requests)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    post(c, "e1", "ftp://x/", 1);
    post(c, "e1", "not a url", 2);
    const char *crlf[] = {"X-A: b\r\nX-Injected: 1", NULL}, *nocolon[] = {"X-A", NULL};
    outbound_request_t bad[] = {
        {.key = "e1", .url = NULL},
        {.key = NULL, .url = url("/ok")},
        {.key = "e1", .url = url("/ok"), .body = NULL, .body_len = 3},
        {.key = "e1", .url = url("/ok"), .headers = crlf},
        {.key = "e1", .url = url("/ok"), .headers = nocolon},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(outbound_submit(c, &bad[i]), FENTA_EINVAL, "case %zu", i);
    /* All or none: a bad request among good ones queues nothing. */
    outbound_request_t mix[2] = {{.key = "e1", .url = url("/ok"), .body = ""}, bad[0]};
    cr_assert_eq(outbound_submit_many(c, mix, 2), FENTA_EINVAL);
    cr_assert(wait_for(&got.n, 2, 30));
    outbound_destroy(&c);
    cr_assert_eq(got.n, 2);
    for (int i = 1; i <= 2; i++) {
        cr_assert_eq(result_of(i)->outcome, OUTBOUND_BAD_URL, "%d", result_of(i)->outcome);
        cr_assert_neq(result_of(i)->error[0], 0);
    }
    cr_assert_eq(srv_get(&srv.accepts), 0);
}

Test(outbound, hanging_key_does_not_hold_up_others)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true, .max_per_key = 4});
    for (int i = 0; i < 40; i++) {
        outbound_request_t r = {.key = "slow",
                                .url = url("/hang"),
                                .body = "",
                                .total_timeout_ms = 3000,
                                .arg = (void *)(intptr_t)(SLOW + i)};
        cr_assert_eq(outbound_submit(c, &r), 0);
    }
    for (int i = 0; i < 200; i++)
        post(c, "fast", url("/ok"), i);
    cr_assert(wait_for(&got.fast, 200, 30));
    /* The slow key never had more than its share in flight. */
    cr_assert_leq(srv_get(&srv.hang), 4);
    outbound_destroy(&c);
    for (size_t i = 0; i < 200; i++) {
        cr_assert_lt((intptr_t)got.res[i].arg, SLOW, "a slow request completed at %zu", i);
        cr_assert_eq(got.res[i].outcome, OUTBOUND_OK, "%s", got.res[i].error);
    }
    cr_assert_eq(got.n, 240);
}

Test(outbound, one_key_starts_in_submit_order)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true, .max_per_key = 1});
    char bodies[20][16];
    outbound_request_t r[20];
    for (int i = 0; i < 20; i++) {
        snprintf(bodies[i], sizeof bodies[i], "seq=%d", i);
        r[i] = (outbound_request_t){.key = "e1",
                                    .url = url("/ok"),
                                    .body = bodies[i],
                                    .body_len = strlen(bodies[i]),
                                    .arg = (void *)(intptr_t)i};
        cr_assert_eq(outbound_submit(c, &r[i]), 0);
    }
    cr_assert(wait_for(&got.n, 20, 30));
    outbound_destroy(&c);
    cr_assert_eq(srv_get(&srv.nseq), 20);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(srv.seq[i], i, "arrival %d was seq %d", i, srv.seq[i]);
}

Test(outbound, many_requests_in_batches)
{
    enum { N = 5000, CHUNK = 500 };
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    static outbound_request_t r[N];
    static char keys[8][8];
    for (int i = 0; i < 8; i++)
        snprintf(keys[i], sizeof keys[i], "k%d", i);
    const char *u = url("/ok");
    int64_t t0 = now_ms();
    for (int i = 0; i < N; i++)
        r[i] = (outbound_request_t){.key = keys[i % 8],
                                    .url = u,
                                    .body = "{\"n\":1}",
                                    .body_len = 7,
                                    .arg = (void *)(intptr_t)i};
    for (int i = 0; i < N; i += CHUNK)
        cr_assert_eq(outbound_submit_many(c, r + i, CHUNK), 0);
    cr_assert(wait_for(&got.n, N, 100));
    int64_t ms = now_ms() - t0;
    /* pending drops once done has returned, just after the last wakeup. */
    for (int t = 0; t < 1000 && outbound_pending(c) > 0; t++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    cr_assert_eq(outbound_pending(c), 0);
    outbound_destroy(&c);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(got.res[i].outcome, OUTBOUND_OK, "%zu: %s", i, got.res[i].error);
    cr_assert_eq(srv_get(&srv.ok), N);
    cr_assert_gt(got.widest, 1);
    /* Keep-alive: connections are reused, not opened per request. */
    cr_assert_lt(srv_get(&srv.accepts), N / 5, "%d connections", srv_get(&srv.accepts));
    cr_log_info("%d requests in %lld ms (%.0f/s), %zu batches, widest %zu, %d connections", N,
                (long long)ms, N * 1000.0 / (double)(ms ? ms : 1), got.batches, got.widest,
                srv_get(&srv.accepts));
}

Test(outbound, destroy_cancels_in_flight_once)
{
    enum { N = 10 };
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    for (int i = 0; i < N; i++)
        post(c, "e1", url("/hang"), i);
    cr_assert_eq(outbound_pending(c), N);
    /* Wait until all of them are really in flight (the server has them). */
    for (int t = 0; t < 3000 && srv_get(&srv.hang) < N; t++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    cr_assert_eq(srv_get(&srv.hang), N);
    cr_assert_eq(got.n, 0);
    outbound_destroy(&c);
    cr_assert_null(c);
    outbound_destroy(&c); /* NULL is a no-op */
    outbound_destroy(NULL);
    cr_assert_eq(got.n, N);
    int seen[N] = {0};
    for (size_t i = 0; i < got.n; i++) {
        cr_assert_eq(got.res[i].outcome, OUTBOUND_CANCELLED);
        seen[(intptr_t)got.res[i].arg]++;
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(seen[i], 1, "request %d completed %d times", i, seen[i]);
}

Test(outbound, new_rejects_bad_options)
{
    int err = 0;
    cr_assert_null(outbound_new(&(outbound_opts_t){.max_total = -1}, on_done, &got, &err));
    cr_assert_eq(err, FENTA_EINVAL);
    err = 0;
    cr_assert_null(outbound_new(&(outbound_opts_t){.connect_timeout_ms = -1}, NULL, NULL, &err));
    cr_assert_eq(err, FENTA_EINVAL);
    /* Without done a client serves outbound_do only: submit is refused. */
    outbound_t *c = outbound_new(NULL, NULL, NULL, &err);
    cr_assert_not_null(c);
    outbound_request_t r = {.key = "e1", .url = url("/ok"), .body = ""};
    cr_assert_eq(outbound_submit(c, &r), FENTA_EINVAL);
    outbound_destroy(&c);
}

/* --- the general client: methods, headers, streams, the sync call, retries ------------ */

/* What /echo saw last, read under the server's lock. */
static void echo_seen(char *method, size_t mcap, char *headers, size_t hcap, size_t *len,
                      unsigned *sum)
{
    pthread_mutex_lock(&srv.mu);
    snprintf(method, mcap, "%s", srv.echo_method);
    snprintf(headers, hcap, "%s", srv.echo_headers);
    *len = srv.echo_len;
    *sum = srv.echo_sum;
    pthread_mutex_unlock(&srv.mu);
}

Test(outbound, methods_are_sent_as_asked)
{
    static const struct {
        const char *method, *body, *seen, *answer;
    } t[] = {
        {NULL, NULL, "GET", "GET 0"},         {"GET", NULL, "GET", "GET 0"},
        {"PUT", "{\"a\":1}", "PUT", "PUT 7"}, {"DELETE", NULL, "DELETE", "DELETE 0"},
        {"PATCH", "xy", "PATCH", "PATCH 2"},  {NULL, "abc", "POST", "POST 3"},
        {"HEAD", NULL, "HEAD", ""},           {"OPTIONS", NULL, "OPTIONS", "OPTIONS 0"},
    };
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        outbound_request_t q = {.key = "e1",
                                .method = t[i].method,
                                .url = url("/echo"),
                                .body = t[i].body,
                                .body_len = t[i].body ? strlen(t[i].body) : 0};
        outbound_result_t r;
        cr_assert_eq(outbound_do(c, &q, &r), 0);
        cr_assert_eq(r.outcome, OUTBOUND_OK, "%s: %s", t[i].seen, r.error);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.attempts, 1);
        char method[16], head[4096];
        size_t len;
        unsigned sum;
        echo_seen(method, sizeof method, head, sizeof head, &len, &sum);
        cr_assert_str_eq(method, t[i].seen);
        cr_assert_eq(len, t[i].body ? strlen(t[i].body) : 0, "%s", t[i].seen);
        cr_assert_eq(r.body_len, strlen(t[i].answer), "%s", t[i].seen);
        if (r.body_len)
            cr_assert_str_eq(r.body, t[i].answer);
        /* A body without a type goes as JSON; no body, no Content-Type. */
        cr_assert_eq(strcasestr(head, "\r\nContent-Type: application/json\r\n") != NULL,
                     t[i].body != NULL, "%s: %s", t[i].seen, head);
        cr_assert_not_null(strcasestr(head, "\r\nUser-Agent: Fenta/1\r\n"), "%s", head);
        outbound_result_free(&r);
        cr_assert_null(r.body);
    }
    outbound_destroy(&c);
    cr_assert_eq(got.n, 0, "outbound_do results never reach done");
}

Test(outbound, asked_headers_are_returned)
{
    const char *want[] = {"ETag", "content-type", "X-Missing", NULL};
    outbound_request_t q = {.key = "e1", .url = url("/echo"), .want_headers = want};
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    outbound_result_t r;
    cr_assert_eq(outbound_do(c, &q, &r), 0);
    outbound_destroy(&c); /* the result is the caller's: it outlives the client */
    cr_assert_eq(r.outcome, OUTBOUND_OK, "%s", r.error);
    cr_assert_eq(r.nheaders, 3);
    cr_assert_str_eq(r.headers[0].name, "ETag");
    cr_assert_str_eq(outbound_result_header(&r, "etag"), "\"v1\"");
    cr_assert_str_eq(outbound_result_header(&r, "Content-Type"), "text/plain");
    cr_assert_null(outbound_result_header(&r, "X-Missing"));
    cr_assert_null(outbound_result_header(&r, "Content-Length"), "only the names asked for");
    outbound_result_free(&r);
    outbound_result_free(NULL);
    const char *bad[] = {"X-A: b", NULL};
    c = client((outbound_opts_t){.allow_loopback = true});
    q.want_headers = bad;
    cr_assert_eq(outbound_do(c, &q, &r), FENTA_EINVAL);
    outbound_destroy(&c);
}

/* S3 calls made by the server sign with SigV4 in the header (libcurl's
 * CURLOPT_AWS_SIGV4); the next request on the same pooled handle carries no
 * credentials. The signature's value is checked against a real verifier by
 * the S3 tests of the object store. */
Test(outbound, sigv4_signs_and_the_next_request_does_not)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    outbound_request_t q = {.key = "s3",
                            .method = "PUT",
                            .url = url("/echo"),
                            .body = "hello",
                            .body_len = 5,
                            .headers = (const char *[]){"Content-Type: text/plain", NULL},
                            .aws_sigv4 = "aws:amz:us-east-1:s3",
                            .aws_key_id = "AKIDEXAMPLE",
                            .aws_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
    outbound_result_t r;
    cr_assert_eq(outbound_do(c, &q, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_OK, "%s", r.error);
    outbound_result_free(&r);
    char method[16], head[4096];
    size_t len;
    unsigned sum;
    echo_seen(method, sizeof method, head, sizeof head, &len, &sum);
    const char *auth =
        strcasestr(head, "\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/");
    cr_assert_not_null(auth, "%s", head);
    cr_assert_not_null(strstr(auth, "/us-east-1/s3/aws4_request, SignedHeaders="), "%s", head);
    const char *sig = strstr(auth, "Signature=");
    cr_assert_not_null(sig, "%s", head);
    size_t hex = strspn(sig + 10, "0123456789abcdef");
    cr_assert_eq(hex, 64, "%s", head);
    cr_assert_not_null(strcasestr(head, "\r\nX-Amz-Date: "), "%s", head);
    cr_assert_null(strstr(head, "wJalrXUtnFEMI"), "the secret never travels");

    outbound_request_t plain = {.key = "s3", .url = url("/echo")};
    cr_assert_eq(outbound_do(c, &plain, &r), 0);
    outbound_result_free(&r);
    echo_seen(method, sizeof method, head, sizeof head, &len, &sum);
    cr_assert_null(strcasestr(head, "\r\nAuthorization:"), "%s", head);

    q.aws_secret = NULL;
    cr_assert_eq(outbound_do(c, &q, &r), FENTA_EINVAL);
    q.aws_secret = "s";
    q.aws_key_id = "a:b";
    cr_assert_eq(outbound_do(c, &q, &r), FENTA_EINVAL);
    outbound_destroy(&c);
}

static ssize_t read_pattern(void *arg, int64_t off, void *buf, size_t cap)
{
    int64_t total = *(int64_t *)arg;
    size_t n = off >= total ? 0 : (size_t)(total - off) < cap ? (size_t)(total - off) : cap;
    for (size_t i = 0; i < n; i++)
        ((char *)buf)[i] = (char)('A' + (off + (int64_t)i) % 23);
    return (ssize_t)n;
}

typedef struct {
    char *p;   /* what came */
    size_t n;  /* its length */
    bool fail; /* refuse the first piece */
} sink_t;

static int write_sink(void *arg, const void *data, size_t len)
{
    sink_t *s = arg;
    if (s->fail)
        return -1;
    s->p = realloc(s->p, s->n + len);
    cr_assert_not_null(s->p);
    memcpy(s->p + s->n, data, len);
    s->n += len;
    return 0;
}

Test(outbound, streamed_upload_and_download)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    int64_t total = 40000;
    outbound_request_t up = {.key = "s3",
                             .method = "PUT",
                             .url = url("/echo"),
                             .headers = (const char *[]){"Content-Type: video/mp4", NULL},
                             .body_read = read_pattern,
                             .body_arg = &total,
                             .body_size = total};
    outbound_result_t r;
    cr_assert_eq(outbound_do(c, &up, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_OK, "%s", r.error);
    cr_assert_str_eq(r.body, "PUT 40000");
    outbound_result_free(&r);
    char method[16], head[4096];
    size_t len;
    unsigned sum, want = 0;
    echo_seen(method, sizeof method, head, sizeof head, &len, &sum);
    for (int64_t i = 0; i < total; i++)
        want = want * 31 + (unsigned char)('A' + i % 23);
    cr_assert_eq(len, (size_t)total);
    cr_assert_eq(sum, want, "the server got the bytes read, in order");
    cr_assert_not_null(strcasestr(head, "\r\nContent-Type: video/mp4\r\n"), "%s", head);
    cr_assert_not_null(strcasestr(head, "\r\nContent-Length: 40000\r\n"), "%s", head);

    /* A download goes to the caller's sink, not to memory. */
    sink_t s = {0};
    outbound_request_t down = {
        .key = "s3", .url = url("/big"), .body_write = write_sink, .write_arg = &s};
    cr_assert_eq(outbound_do(c, &down, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_OK, "%s", r.error);
    cr_assert_eq(r.body_len, 0);
    cr_assert_eq(s.n, 20000);
    for (size_t i = 0; i < s.n; i++)
        cr_assert_eq(s.p[i], (char)('a' + i % 26), "byte %zu", i);
    outbound_result_free(&r);
    free(s.p);
    s = (sink_t){.fail = true};
    cr_assert_eq(outbound_do(c, &down, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_ABORTED, "%d %s", r.outcome, r.error);
    cr_assert_not_null(strstr(r.error, "body_write"), "%s", r.error);
    outbound_result_free(&r);

    /* In memory: cut at max_body, or refused whole when asked. */
    outbound_request_t mem = {.key = "s3", .url = url("/big"), .max_body = 100};
    cr_assert_eq(outbound_do(c, &mem, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_OK, "%s", r.error);
    cr_assert_eq(r.body_len, 100);
    cr_assert(r.body_cut);
    cr_assert_eq(strlen(r.body), 100, "NUL-terminated");
    outbound_result_free(&r);
    mem.whole_body = true;
    cr_assert_eq(outbound_do(c, &mem, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_TOO_BIG, "%d %s", r.outcome, r.error);
    cr_assert_not_null(strstr(r.error, "100 bytes"), "%s", r.error);
    outbound_result_free(&r);
    mem.max_body = 20000;
    cr_assert_eq(outbound_do(c, &mem, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_OK, "%s", r.error);
    cr_assert_eq(r.body_len, 20000);
    cr_assert_not(r.body_cut);
    outbound_result_free(&r);

    outbound_request_t both = {
        .key = "s3", .url = url("/echo"), .body = "x", .body_read = read_pattern};
    cr_assert_eq(outbound_do(c, &both, &r), FENTA_EINVAL);
    outbound_request_t head_body = {
        .key = "s3", .method = "HEAD", .url = url("/echo"), .body = "x"};
    cr_assert_eq(outbound_do(c, &head_body, &r), FENTA_EINVAL);
    outbound_request_t bad_method = {.key = "s3", .method = "GE T", .url = url("/echo")};
    cr_assert_eq(outbound_do(c, &bad_method, &r), FENTA_EINVAL);
    outbound_destroy(&c);
}

typedef struct {
    outbound_t *c;        /* the client */
    outbound_request_t q; /* the request */
    outbound_result_t r;  /* its result */
    int rc;               /* outbound_do's return */
} sync_job_t;

static void *run_do(void *arg)
{
    sync_job_t *j = arg;
    j->rc = outbound_do(j->c, &j->q, &j->r);
    return NULL;
}

static struct {
    outbound_t *c; /* the client whose done calls outbound_do */
    int rc;        /* what that call returned */
} inside;

static void do_in_done(void *cb_arg, const outbound_result_t *res, size_t n)
{
    (void)cb_arg, (void)res, (void)n;
    outbound_result_t r;
    outbound_request_t q = {.key = "e1", .url = url("/ok")};
    inside.rc = outbound_do(inside.c, &q, &r);
    on_done(&got, res, n);
}

Test(outbound, sync_calls_wait_time_out_and_are_cancelled)
{
    /* Several threads at once, each with its own answer. */
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    sync_job_t j[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (sync_job_t){.c = c,
                            .q = {.key = i % 2 ? "a" : "b",
                                  .url = url(i == 3 ? "/hang" : "/ok"),
                                  .body = "{}",
                                  .body_len = 2,
                                  .total_timeout_ms = i == 3 ? 300 : 0}};
        cr_assert_eq(pthread_create(&t[i], NULL, run_do, &j[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(j[i].rc, 0);
        cr_assert_eq(j[i].r.outcome, i == 3 ? OUTBOUND_TIMEOUT : OUTBOUND_OK, "%d: %s", i,
                     j[i].r.error);
        if (i < 3)
            cr_assert_str_eq(j[i].r.body, "fine");
        outbound_result_free(&j[i].r);
    }
    cr_assert_eq(srv_get(&srv.ok), 3);

    /* Destroy answers a waiting caller: cancelled, not left hanging. */
    sync_job_t h = {.c = c, .q = {.key = "h", .url = url("/hang"), .total_timeout_ms = 20000}};
    cr_assert_eq(pthread_create(&t[0], NULL, run_do, &h), 0);
    for (int i = 0; i < 3000 && srv_get(&srv.hang) < 2; i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    cr_assert_eq(srv_get(&srv.hang), 2);
    int64_t t0 = now_ms();
    outbound_destroy(&c);
    pthread_join(t[0], NULL);
    cr_assert_lt(now_ms() - t0, 5000);
    cr_assert_eq(h.rc, 0);
    cr_assert_eq(h.r.outcome, OUTBOUND_CANCELLED);
    outbound_result_free(&h.r);

    /* From done (the client's own thread) the wait would never end. */
    int err = 0;
    inside.c = outbound_new(&(outbound_opts_t){.allow_loopback = true}, do_in_done, &got, &err);
    cr_assert_not_null(inside.c);
    inside.rc = 1;
    post(inside.c, "e1", url("/ok"), 1);
    cr_assert(wait_for(&got.n, 1, 30));
    outbound_destroy(&inside.c);
    cr_assert_eq(inside.rc, FENTA_EINVAL);
}

Test(outbound, retries_honour_retry_after)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    outbound_request_t q = {.key = "p", .url = url("/flaky429-2"), .max_retries = 3};
    outbound_result_t r;
    int64_t t0 = now_ms();
    cr_assert_eq(outbound_do(c, &q, &r), 0);
    int64_t took = now_ms() - t0;
    cr_assert_eq(r.outcome, OUTBOUND_OK, "%s", r.error);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.attempts, 3);
    cr_assert_eq(srv_get(&srv.flaky), 3);
    /* Two waits of Retry-After: 1, and not much more. */
    cr_assert_geq(took, 1900, "retried after %lld ms", (long long)took);
    cr_assert_lt(took, 10000);
    outbound_result_free(&r);
    outbound_destroy(&c);
}

Test(outbound, retries_back_off_on_503_and_failed_connections)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    outbound_request_t q = {
        .key = "p", .url = url("/flaky503-2"), .max_retries = 2, .retry_base_ms = 50};
    outbound_result_t r;
    cr_assert_eq(outbound_do(c, &q, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_OK, "%s", r.error);
    cr_assert_eq(r.attempts, 3);
    outbound_result_free(&r);

    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/ok", ntohs(a.sin_port));
    outbound_request_t refused = {.key = "p", .url = u, .max_retries = 2, .retry_base_ms = 20};
    cr_assert_eq(outbound_do(c, &refused, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_CONNECT, "%d %s", r.outcome, r.error);
    cr_assert_eq(r.attempts, 3);
    cr_assert_not_null(strstr(r.error, "refused"), "%s", r.error);
    outbound_result_free(&r);
    outbound_destroy(&c);
}

Test(outbound, retries_only_when_safe_and_asked)
{
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true});
    outbound_result_t r;
    /* Off by default: the caller (webhooks) schedules its own. */
    outbound_request_t q = {.key = "p", .url = url("/flaky429-4")};
    cr_assert_eq(outbound_do(c, &q, &r), 0);
    cr_assert_eq(r.status, 429);
    cr_assert_eq(r.attempts, 1);
    cr_assert_eq(r.retry_after_ms, 1000);
    outbound_result_free(&r);
    /* A POST is not sent twice unless the caller says it is safe. */
    outbound_request_t post_q = {
        .key = "p", .url = url("/flaky429-4"), .body = "{}", .body_len = 2, .max_retries = 3};
    cr_assert_eq(outbound_do(c, &post_q, &r), 0);
    cr_assert_eq(r.status, 429);
    cr_assert_eq(r.attempts, 1);
    outbound_result_free(&r);
    cr_assert_eq(srv_get(&srv.flaky), 2);
    /* A Retry-After beyond what the caller waits ends the retries with it. */
    outbound_request_t impatient = {
        .key = "p", .url = url("/flaky429-4"), .max_retries = 3, .retry_max_wait_ms = 500};
    cr_assert_eq(outbound_do(c, &impatient, &r), 0);
    cr_assert_eq(r.status, 429);
    cr_assert_eq(r.attempts, 1);
    cr_assert_eq(r.retry_after_ms, 1000);
    outbound_result_free(&r);
    cr_assert_eq(srv_get(&srv.flaky), 3);
    post_q.idempotent = true;
    cr_assert_eq(outbound_do(c, &post_q, &r), 0);
    cr_assert_eq(r.outcome, OUTBOUND_OK, "%s", r.error);
    cr_assert_eq(r.attempts, 2, "refused once more, then answered");
    cr_assert_eq(srv_get(&srv.flaky), 5);
    outbound_result_free(&r);
    outbound_destroy(&c);
}

Test(outbound, a_retry_keeps_its_keys_place)
{
    /* One at a time per key: the key's next request waits for the retry
     * rather than overtaking it while the host asked to slow down. */
    outbound_t *c = client((outbound_opts_t){.allow_loopback = true, .max_per_key = 1});
    outbound_request_t r[3] = {
        {.key = "k", .url = url("/flaky429-1"), .max_retries = 1, .arg = (void *)1},
        {.key = "k", .url = url("/ok"), .body = "{}", .body_len = 2, .arg = (void *)2},
        {.key = "other", .url = url("/ok"), .body = "{}", .body_len = 2, .arg = (void *)3},
    };
    cr_assert_eq(outbound_submit_many(c, r, 3), 0);
    cr_assert(wait_for(&got.n, 3, 30));
    outbound_destroy(&c);
    cr_assert_eq(result_of(1)->outcome, OUTBOUND_OK, "%s", result_of(1)->error);
    cr_assert_eq(result_of(1)->attempts, 2);
    cr_assert_eq(result_of(2)->outcome, OUTBOUND_OK, "%s", result_of(2)->error);
    cr_assert_eq(got.res[0].arg, (void *)3, "another key is not held up by the wait");
    cr_assert_eq(got.res[1].arg, (void *)1, "the retry completes before its key's next");
    cr_assert_eq(got.res[2].arg, (void *)2);
}
