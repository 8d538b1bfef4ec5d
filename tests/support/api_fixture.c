/* api_fixture.c - see api_fixture.h. The runner process starts the server
 * and publishes its URL in the environment (FENTA_TEST_API_URL), which the
 * test worker processes inherit. */
#include "tests/support/api_fixture.h"
#include "storage/pg.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t runner_pid; /* only the runner stops the server */
static char data_root[512];

#define DEFAULT_CONFIG                                                                             \
    "{\"insecure_cookies\": true, \"cheap_passwords_for_tests\": true, \"rate_limits\": "          \
    "{\"ip\": {\"rate\": 10000, \"burst\": 20000}, \"user\": {\"rate\": 10000, \"burst\": "        \
    "20000}, \"routes\": {\"DELETE /v1/tokens/{id}\": {\"rate\": 0.01, \"burst\": 3}}}}"

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* The server's pid lives in DATA_ROOT/server.pid, not only in a variable:
 * a test worker that restarts the server (fx_api_kill_and_restart) must
 * leave the runner able to stop the new one. */
static pid_t read_server_pid(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/server.pid", data_root);
    FILE *f = fopen(p, "r");
    int pid = 0;
    if (f && fscanf(f, "%d", &pid) != 1)
        pid = 0;
    if (f)
        fclose(f);
    return (pid_t)pid;
}

static void write_server_pid(pid_t pid)
{
    char p[600];
    snprintf(p, sizeof p, "%s/server.pid", data_root);
    FILE *f = fopen(p, "w");
    if (f) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
}

/* Whether pid has exited and awaits its reaper (init, for the server). */
static bool proc_is_zombie(pid_t pid)
{
    char p[64], state = 0;
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    bool z = !f || fscanf(f, "%*d %*s %c", &state) != 1 || state == 'Z';
    if (f)
        fclose(f);
    return z;
}

/* Waits up to tenths/10 s for pid (not our child) to be gone. */
static void wait_gone(pid_t pid, int tenths)
{
    for (int i = 0; i < tenths && kill(pid, 0) == 0 && !proc_is_zombie(pid); i++)
        usleep(100000);
}

/* ---- prism: the OpenAPI document checked against real traffic ---------- */

/* With FENTA_TEST_PRISM=1 (ops/test's plain pass) the runner also starts
 * `prism proxy schemas/openapi.json <server> --errors` (@stoplight/prism-cli,
 * installed in ops/node by ops/setup) and fx_req sends the JSON API traffic
 * of HTTP/1.1 requests through it: prism checks each request and the
 * server's answer against the document, and with --errors answers a
 * response that breaks it with its own 500 (type ...#VIOLATIONS), which
 * fails the test. Its pid is in DATA_ROOT/prism.pid, its log in
 * DATA_ROOT/prism.log, its URL in FENTA_TEST_PRISM_URL. */
#define PRISM_BIN FENTA_SOURCE_SCHEMAS "/../ops/node/node_modules/.bin/prism"
#define PRISM_ERRORS "https://stoplight.io/prism/errors#"

static bool prism_wanted(void)
{
    const char *v = getenv("FENTA_TEST_PRISM");
    return v && strcmp(v, "1") == 0;
}

static void pid_file(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", data_root, name);
}

/* A port nobody listens on now, for prism to take (it binds it itself). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Whether prism answers on port: a path the document does not have gets
 * prism's own problem+json. Not merely an open port: between free_port and
 * prism's bind, a suite running alongside may have taken it. */
static bool prism_answers(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    char buf[4096] = "";
    size_t got = 0;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
        connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        static const char probe[] = "GET /fenta-prism-probe HTTP/1.0\r\n\r\n";
        if (write(fd, probe, sizeof probe - 1) == (ssize_t)(sizeof probe - 1)) {
            ssize_t n;
            while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
                got += (size_t)n;
        }
    }
    if (fd >= 0)
        close(fd);
    buf[got] = 0;
    return strstr(buf, PRISM_ERRORS) != NULL;
}

static void prism_stop(void)
{
    char p[600];
    pid_file("prism.pid", p, sizeof p);
    FILE *f = fopen(p, "r");
    int pid = 0;
    if (f && fscanf(f, "%d", &pid) != 1)
        pid = 0;
    if (f)
        fclose(f);
    if (pid > 0) {
        kill(pid, SIGTERM);
        wait_gone(pid, 50);
        kill(pid, SIGKILL);
    }
    remove(p);
}

/* Starts prism in front of the server at FENTA_TEST_API_URL (a grandchild
 * handed to init, as the server is) and publishes its URL; false with its
 * log's tail when it does not listen within 60 s. */
/* Runs child(arg) in a grandchild handed to init by an intermediate
 * process that exits at once, and returns the grandchild's pid (or -1).
 * Criterion's runner reaps (and waits on) every child of its own, and must
 * not meet one it did not start (it spins on the zombie of a server killed
 * with SIGKILL). child execs or _exits; it never returns. */
static pid_t spawn_orphan(void (*child)(void *), void *arg)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t mid = fork();
    if (mid == 0) {
        close(fds[0]);
        pid_t pid = fork();
        if (pid == 0) {
            child(arg);
            _exit(127);
        }
        ssize_t w = write(fds[1], &pid, sizeof pid);
        _exit(w == (ssize_t)sizeof pid ? 0 : 1);
    }
    close(fds[1]);
    pid_t pid = -1;
    if (mid < 0 || read(fds[0], &pid, sizeof pid) != (ssize_t)sizeof pid)
        pid = -1;
    close(fds[0]);
    if (mid > 0)
        waitpid(mid, NULL, 0);
    return pid;
}

/* What the proxy's child needs: its log, the server it fronts, its port. */
typedef struct {
    const char *log, *upstream, *port;
} prism_child_t;

static void prism_exec(void *arg)
{
    const prism_child_t *a = arg;
    if (!freopen(a->log, "w", stdout) || dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        _exit(127);
    closefrom(3);
    execl(PRISM_BIN, "prism", "proxy", FENTA_SOURCE_SCHEMAS "/openapi.json", a->upstream,
          "--errors", "--host", "127.0.0.1", "--port", a->port,
          /* its log keeps what went wrong, not a line per request */
          "--verboseLevel", "warn", (char *)NULL);
}

/* What the server's child needs: its config file, log and data folder. */
typedef struct {
    const char *cfg, *log, *data;
} server_child_t;

static void server_exec(void *arg)
{
    const server_child_t *a = arg;
    FILE *o = freopen(a->log, "w", stderr);
    (void)o;
    /* Nothing of the test runner's (its pipes to the workers) may stay
     * open in the server, which outlives the process that started it. */
    closefrom(3);
    setenv("FENTA_CONFIG", a->cfg, 1);
    setenv("FENTA_DATA_DIR", a->data, 1);
    setenv("FENTA_LISTEN", "127.0.0.1:0", 1);
    setenv("FENTA_LOOPS", "2", 1);
    setenv("FENTA_LOG_LEVEL", "info", 1); /* the ready line is at info */
    char clk[620];
    snprintf(clk, sizeof clk, "%s/clock_skew_ms", data_root);
    setenv("FENTA_TEST_CLOCK_FILE", clk, 1); /* fx_clock_advance; kept across restarts */
    execl(FENTA_BINARY, "fenta", "serve", (char *)NULL);
}

static bool prism_try(void);

static bool prism_start(void)
{
    if (!prism_wanted())
        return true;
    /* A port taken from under it makes prism exit: take another. */
    for (int attempt = 0; attempt < 3; attempt++)
        if (prism_try())
            return true;
    char log[600];
    pid_file("prism.log", log, sizeof log);
    fprintf(stderr, "prism proxy did not start (is it installed? run ops/setup); its log:\n");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "tail -20 '%s' >&2", log);
    (void)!system(cmd);
    return false;
}

/* One start on a fresh port; false (and prism stopped) when it does not
 * answer there within 60 s. */
static bool prism_try(void)
{
    int port = free_port();
    const char *upstream = getenv("FENTA_TEST_API_URL");
    if (port <= 0 || !upstream)
        return false;
    char log[600], pidp[600], ports[16];
    pid_file("prism.log", log, sizeof log);
    pid_file("prism.pid", pidp, sizeof pidp);
    snprintf(ports, sizeof ports, "%d", port);
    /* The proxy is handed to init, like the server (spawn_orphan). */
    prism_child_t pc = {log, upstream, ports};
    pid_t pid = spawn_orphan(prism_exec, &pc);
    if (pid <= 0)
        return false;
    FILE *f = fopen(pidp, "w");
    if (f) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
    for (int i = 0; i < 600; i++) {
        if (kill(pid, 0) != 0 || proc_is_zombie(pid))
            break;
        if (prism_answers(port)) {
            char url[64];
            snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
            setenv("FENTA_TEST_PRISM_URL", url, 1);
            return true;
        }
        usleep(100000);
    }
    prism_stop();
    return false;
}

static void fx_api_stop(void)
{
    if (getpid() != runner_pid)
        return; /* a test worker forked from the runner */
    prism_stop();
    pid_t pid = read_server_pid();
    if (pid > 0) {
        kill(pid, SIGTERM);
        wait_gone(pid, 300);
        kill(pid, SIGKILL);
        wait_gone(pid, 50);
    }
    if (data_root[0] && !getenv("FENTA_TEST_KEEP"))
        nftw(data_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Starts `fenta serve` on DATA_ROOT/data with DATA_ROOT/config.json, its
 * log (stderr) truncated into DATA_ROOT/server.log; returns its pid. The
 * server is handed to init (spawn_orphan). */
static pid_t spawn_server(void)
{
    char cfg[600], log[600], data[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", data_root);
    snprintf(log, sizeof log, "%s/server.log", data_root);
    snprintf(data, sizeof data, "%s/data", data_root);
    server_child_t sc = {cfg, log, data};
    pid_t pid = spawn_orphan(server_exec, &sc);
    if (pid > 0)
        write_server_pid(pid);
    return pid;
}

/* Waits for the ready line and publishes the URL from it; false (with the
 * log's tail on stderr) when the server exits or never gets ready. */
static bool wait_ready(pid_t pid)
{
    char log[600], data[600];
    snprintf(log, sizeof log, "%s/server.log", data_root);
    snprintf(data, sizeof data, "%s/data", data_root);
    for (int i = 0; i < 600; i++) {
        usleep(100000);
        FILE *l = fopen(log, "r");
        char line[2048];
        while (l && fgets(line, sizeof line, l)) {
            const char *at = strstr(line, "\"msg\":\"ready\"");
            const char *url = at ? strstr(line, "\"url\":\"") : NULL;
            if (url) {
                char u[256];
                snprintf(u, sizeof u, "%.*s", (int)strcspn(url + 7, "\""), url + 7);
                setenv("FENTA_TEST_API_URL", u, 1);
                setenv("FENTA_TEST_API_DATA", data, 1);
                setenv("FENTA_TEST_API_ROOT", data_root, 1);
                fclose(l);
                return true;
            }
        }
        if (l)
            fclose(l);
        if (kill(pid, 0) != 0 || proc_is_zombie(pid)) {
            fprintf(stderr, "fenta serve exited; its log:\n");
            char cmd[700];
            snprintf(cmd, sizeof cmd, "tail -30 '%s' >&2", log);
            (void)!system(cmd);
            return false;
        }
    }
    fprintf(stderr, "fenta serve did not become ready in 60 s\n");
    kill(pid, SIGKILL);
    return false;
}

void fx_api_start(const char *config_json)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(data_root, sizeof data_root, "%s/fenta-test-api-XXXXXX", tmp);
    if (!mkdtemp(data_root)) {
        perror("fx_api_start: mkdtemp");
        exit(1);
    }
    /* As root the embedded PostgreSQL runs as `postgres`, which must be able
     * to pass through this directory (not list it). */
    chmod(data_root, 0711);
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", data_root);
    FILE *f = fopen(cfg, "w");
    fputs(config_json ? config_json : DEFAULT_CONFIG, f);
    fclose(f);
    pid_t pid = spawn_server();
    if (pid <= 0 || !wait_ready(pid))
        exit(1);
    runner_pid = getpid();
    atexit(fx_api_stop);
    if (!prism_start())
        exit(1);
}

bool fx_api_kill_and_restart(void)
{
    return fx_api_kill_and_restart_after(0);
}

bool fx_api_kill_and_restart_after(int down_ms)
{
    /* A test worker is a fork of the runner: data_root came with it, and
     * the environment names the root too when it did not. */
    if (!data_root[0] && getenv("FENTA_TEST_API_ROOT"))
        snprintf(data_root, sizeof data_root, "%s", getenv("FENTA_TEST_API_ROOT"));
    pid_t old = read_server_pid();
    if (old <= 0 || kill(old, SIGKILL) != 0)
        return false;
    wait_gone(old, 100);
    /* Keep the killed server's log for whoever debugs a failure. */
    char log[600], prev[620];
    snprintf(log, sizeof log, "%s/server.log", data_root);
    snprintf(prev, sizeof prev, "%s/server.killed.log", data_root);
    rename(log, prev);
    /* Down for down_ms of the server's clock: the test clock moves on while
     * nothing runs, so nobody sleeps through the outage. */
    if (down_ms > 0)
        fx_clock_advance(down_ms);
    pid_t pid = spawn_server();
    if (pid <= 0 || !wait_ready(pid))
        return false;
    /* The server came back on another port: prism follows it. */
    if (prism_wanted()) {
        prism_stop();
        return prism_start();
    }
    return true;
}

/* DATA_ROOT/clock_skew_ms, the test clock `fenta serve` reads
 * (runtime/clock.h); a test worker finds the root in the environment. */
static void clock_file(char *out, size_t cap)
{
    if (!data_root[0] && getenv("FENTA_TEST_API_ROOT"))
        snprintf(data_root, sizeof data_root, "%s", getenv("FENTA_TEST_API_ROOT"));
    cr_assert(data_root[0], "the API server did not start (FX_API_SERVER missing?)");
    snprintf(out, cap, "%s/clock_skew_ms", data_root);
}

int64_t fx_clock_skew_ms(void)
{
    char p[620];
    clock_file(p, sizeof p);
    FILE *f = fopen(p, "r");
    long long v = 0;
    if (f && fscanf(f, "%lld", &v) != 1)
        v = 0;
    if (f)
        fclose(f);
    return (int64_t)v;
}

int64_t fx_clock_now_ms(void)
{
    /* The real clock plus the skew: what the server's clock_now_ms reads
     * (this process installs no test clock of its own). */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + fx_clock_skew_ms();
}

int64_t fx_clock_now_s(void)
{
    return fx_clock_now_ms() / 1000;
}

void fx_clock_advance(int64_t ms)
{
    cr_assert_geq(ms, 0, "the test clock only moves forward");
#ifndef FENTA_TEST_HOOKS
    /* A build without the test hooks (a plain ops/build): `fenta serve`
     * ignores the skew, so the same tests pass by waiting for the real
     * clock instead, as slowly as they used to. */
    static bool told;
    if (!told)
        fprintf(stderr, "fx_clock_advance: no FENTA_TEST_HOOKS in this build; sleeping instead\n");
    told = true;
    usleep((useconds_t)(ms * 1000));
    return;
#endif
    char p[620], tmp[640];
    clock_file(p, sizeof p);
    snprintf(tmp, sizeof tmp, "%s.%d", p, (int)getpid());
    int64_t skew = fx_clock_skew_ms() + ms;
    /* Renamed into place so the server never reads half a number. */
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f, "cannot write %s", tmp);
    fprintf(f, "%lld\n", (long long)skew);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, p), 0, "cannot rename %s", tmp);
    /* The server re-reads the file every CLOCK_SKEW_POLL_MS (10 ms) and its
     * timer thread looks at the clock every 100 ms: after this the jump is
     * seen by both. */
    usleep(150000);
}

void fx_clock_advance_to(int64_t at_ms)
{
    int64_t now = fx_clock_now_ms();
    if (at_ms > now)
        fx_clock_advance(at_ms - now);
}

const char *fx_api_url(void)
{
    const char *u = getenv("FENTA_TEST_API_URL");
    cr_assert_not_null(u, "the API server did not start (FX_API_SERVER missing?)");
    return u;
}

const char *fx_api_data_dir(void)
{
    return getenv("FENTA_TEST_API_DATA");
}

typedef struct {
    char *p;
    size_t n;
} buf_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    buf_t *b = arg;
    size_t n = size * nmemb;
    char *q = realloc(b->p, b->n + n + 1);
    if (!q)
        return 0;
    b->p = q;
    memcpy(b->p + b->n, ptr, n);
    b->n += n;
    b->p[b->n] = 0;
    return n;
}

/* One request to base + path (base "" when path is a whole URL). */
static fx_resp_t perform(const char *base, const char *method, const char *path, const char *body,
                         const fx_opts_t *o)
{
    fx_resp_t r = {0};
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base, path);
    buf_t b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    char line[8192];
    if (o->bearer) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", o->bearer);
        hl = curl_slist_append(hl, line);
    }
    if (body) {
        snprintf(line, sizeof line, "Content-Type: %s",
                 o->content_type ? o->content_type : "application/json");
        hl = curl_slist_append(hl, line);
    }
    for (size_t i = 0; o->headers && o->headers[i]; i++)
        hl = curl_slist_append(hl, o->headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s > 0 ? o->timeout_s : 30L);
    if (o->source_ip) {
        /* "host!" makes libcurl take it as an address, never an interface name */
        snprintf(line, sizeof line, "host!%s", o->source_ip);
        curl_easy_setopt(c, CURLOPT_INTERFACE, line);
    }
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
                     o->http2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE,
                         (long)(o->body_len ? o->body_len : strlen(body)));
    }
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        long v = 0;
        curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &v);
        r.http_version = v == CURL_HTTP_VERSION_2_0 ? 20 : 11;
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r.body = b.p ? b.p : strdup("");
    r.body_len = b.n;
    r.headers = h.p ? h.p : strdup("");
    r.json = json_loadb(r.body, r.body_len, JSON_DECODE_ANY, NULL);
    return r;
}

/* Whether a request goes through prism: JSON API traffic, sent to prism
 * over HTTP/1.1 (the one protocol it speaks) whatever the test asked for.
 * Not through it: requests marked direct (tests of HTTP/2 itself), requests from a chosen
 * source address (the server would see prism's), other servers, object
 * downloads (bytes, and a key's slashes match no OpenAPI path template),
 * event streams (prism would wait for the stream's end), bodies that are
 * not one strict JSON document or are over 1 MiB (uploads, malformed and
 * hostile bodies, size limits), HEAD, and percent-encoded paths (one that
 * is not UTF-8 kills prism). */
static bool via_prism(const char *method, const char *path, const char *body, const fx_opts_t *o)
{
    if (!getenv("FENTA_TEST_PRISM_URL") || o->direct || o->source_ip ||
        strncmp(path, "/", 1) != 0 || strncmp(path, "/v1/objects/", 12) == 0 ||
        strcmp(method, "HEAD") == 0 || strchr(path, '%'))
        return false; /* '%': a path prism's decoder throws on ends prism itself */
    if (body && o->content_type && strncmp(o->content_type, "application/json", 16) != 0)
        return false;
    /* prism parses a JSON body and sends it on re-serialised: only a body
     * that reads as one JSON document, strictly (UTF-8, no NUL, no repeated
     * key), reaches the server unchanged in meaning; and the size-limit
     * tests need their bytes as they are. */
    if (body) {
        size_t len = o->body_len ? o->body_len : strlen(body);
        json_t *j = len <= 1024 * 1024
                        ? json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL)
                        : NULL;
        if (!j)
            return false;
        json_decref(j);
    }
    size_t n = strcspn(path, "?");
    if (n >= 7 && strncmp(path + n - 7, "/events", 7) == 0)
        return false;
    for (size_t i = 0; o->headers && o->headers[i]; i++)
        if (strcasestr(o->headers[i], "text/event-stream") ||
            strncasecmp(o->headers[i], "content-type:", 13) == 0)
            return false;
    return true;
}

fx_resp_t fx_req(const char *method, const char *path, const char *body, const fx_opts_t *o)
{
    static const fx_opts_t none = {0};
    if (!o)
        o = &none;
    bool whole = strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0;
    if (whole || !via_prism(method, path, body, o))
        return perform(whole ? "" : fx_api_url(), method, path, body, o);
    fx_opts_t h1 = *o;
    h1.http2 = false;
    fx_resp_t r = perform(getenv("FENTA_TEST_PRISM_URL"), method, path, body, &h1);
    char ct[128] = "", vio[8192];
    /* prism's own answers are problem+json, which the server never sends. */
    if (fx_header(&r, "content-type", ct, sizeof ct) && strstr(ct, "problem+json")) {
        const char *type = json_string_value(json_object_get(r.json, "type"));
        cr_assert_not_null(type, "prism: %s %s: %s", method, path, r.body);
        if (strcmp(type, PRISM_ERRORS "VIOLATIONS") == 0)
            cr_assert_fail("prism: %s %s: the server's answer breaks schemas/openapi.json: %s",
                           method, path, r.body);
        /* prism refused the request itself (a body, parameter or credential
         * the document does not allow, a path or method it does not have)
         * without sending it on: a test of the server's own refusals. The
         * server answers it directly; if it accepts what the document
         * refuses, the document is wrong. */
        fx_resp_t d = perform(fx_api_url(), method, path, body, o);
        cr_assert(d.status < 200 || d.status >= 300,
                  "prism: %s %s: the server answered %ld to a request schemas/openapi.json "
                  "refuses (%s): %s",
                  method, path, d.status, r.body, d.body);
        fx_resp_free(&r);
        return d;
    }
    if (fx_header(&r, "sl-violations", vio, sizeof vio))
        cr_assert_fail("prism: %s %s -> %ld: violations of schemas/openapi.json: %s", method, path,
                       r.status, vio);
    return r;
}

void fx_resp_free(fx_resp_t *r)
{
    json_decref(r->json);
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

const char *fx_header(const fx_resp_t *r, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(buf, cap, "%.*s", (int)(len - (size_t)(v - p)), v);
            return buf;
        }
        p = eol ? eol + 2 : NULL;
    }
    return NULL;
}

json_t *fx_register(const char *name)
{
    static _Atomic unsigned seq;
    char body[512];
    snprintf(body, sizeof body,
             "{\"email\":\"%s-%d-%u-%ld@example.com\",\"password\":\"correct horse battery\","
             "\"name\":\"%s\"}",
             name, (int)getpid(), atomic_fetch_add(&seq, 1), (long)time(NULL), name);
    fx_resp_t r = fx_req("POST", "/v1/auth/register", body, NULL);
    cr_assert_eq(r.status, 201, "register: %ld %s", r.status, r.body);
    json_t *s = json_incref(r.json);
    fx_resp_free(&r);
    return s;
}

const char *fx_token(const json_t *s)
{
    return json_string_value(json_object_get(s, "access_token"));
}

const char *fx_org(const json_t *s)
{
    return json_string_value(json_object_get(json_object_get(s, "org"), "id"));
}

const char *fx_user(const json_t *s)
{
    return json_string_value(json_object_get(json_object_get(s, "user"), "id"));
}

json_t *fx_wait_job(const json_t *who, const char *id, const char *want, int seconds)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    for (int i = 0; i < seconds * 10; i++) {
        fx_resp_t r =
            fx_req("GET", path, NULL, &(fx_opts_t){.bearer = fx_token(who), .http2 = true});
        cr_assert_eq(r.status, 200, "%s", r.body);
        const char *st = json_string_value(json_object_get(r.json, "status"));
        if (st && strstr(want, st)) {
            json_t *j = json_incref(r.json);
            fx_resp_free(&r);
            return j;
        }
        fx_resp_free(&r);
        usleep(100000);
    }
    cr_assert_fail("job %s never reached %s", id, want);
    return NULL;
}

void fx_sql(const char *stmt, const char *param)
{
    /* The cluster's superuser is recorded in its data directory. */
    char path[700], user[64] = "";
    snprintf(path, sizeof path, "%s/pg/fenta_superuser", fx_api_data_dir());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    cr_assert(fgets(user, sizeof user, f));
    fclose(f);
    user[strcspn(user, "\n")] = 0;
    char conninfo[800];
    snprintf(conninfo, sizeof conninfo, "host=%s/pg-run dbname=fenta user=%s", fx_api_data_dir(),
             user);
    int err = 0;
    pg_pool_t *pool = pg_pool_new(conninfo, 1, &err);
    cr_assert_not_null(pool);
    pg_conn_t *c = pg_acquire(pool, 5000, &err);
    cr_assert_not_null(c, "connect: %d", err);
    const char *p[] = {param};
    cr_assert_geq(pg_exec(c, stmt, 1, p), 0, "%s", pg_error_message(c));
    pg_release(pool, &c);
    pg_pool_destroy(&pool);
}

fx_resp_t fx_call(const char *method, const char *path, const char *body, const json_t *who)
{
    return fx_req(method, path, body, &(fx_opts_t){.bearer = fx_token(who), .http2 = true});
}

void fx_expect_at(const char *file, int line, const char *method, const char *path,
                  const char *body, const json_t *who, long status)
{
    fx_resp_t r = fx_call(method, path, body, who);
    cr_assert_eq(r.status, status, "%s:%d: %s %s answered %ld, not %ld: %s", file, line, method,
                 path, r.status, status, r.body);
    fx_resp_free(&r);
}

const char FX_TEXT_WORKFLOW[] =
    "{\"name\":\"text\",\"graph\":{\"nodes\":[{\"id\":\"t\",\"type\":"
    "\"input.text\",\"params\":{\"text\":\"Hello there.\"}},{\"id\":\"u\","
    "\"type\":\"script.transform\",\"params\":{\"op\":\"uppercase\"}}],"
    "\"edges\":[{\"from\":\"t.text\",\"to\":\"u.text\"}]}}";

void fx_save_workflow(const json_t *who, const char *doc, char id[64])
{
    fx_resp_t r = fx_call("POST", "/v1/workflows", doc, who);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert(json_is_true(json_object_get(r.json, "valid")), "%s", r.body);
    snprintf(id, 64, "%s", json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
}

void fx_start_run(const json_t *who, const char *workflow_id, const char *body, char job[64])
{
    char path[160];
    snprintf(path, sizeof path, "/v1/workflows/%s/run", workflow_id);
    fx_resp_t r = fx_call("POST", path, body ? body : "{}", who);
    cr_assert_eq(r.status, 202, "%s", r.body);
    /* The 202 shows the job as it is when answered: a short job may already
     * have ended by then (a text workflow succeeded, a missing upload
     * failed), on a machine busy with other suites. */
    const char *st = json_string_value(json_object_get(r.json, "status"));
    cr_assert(st && strstr("queued running succeeded failed", st), "%s", r.body);
    snprintf(job, 64, "%s", json_string_value(json_object_get(r.json, "id")));
    fx_resp_free(&r);
}

json_t *fx_run_workflow(const json_t *who, const char *doc, const char *run_body, char job[64],
                        int seconds)
{
    char wid[64], id[64];
    fx_save_workflow(who, doc, wid);
    fx_start_run(who, wid, run_body, id);
    if (job)
        snprintf(job, 64, "%s", id);
    return fx_wait_job(who, id, "succeeded failed cancelled", seconds);
}
