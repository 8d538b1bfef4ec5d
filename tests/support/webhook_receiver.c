/* webhook_receiver.c - the C fixture for webhook_receiver.mjs beside it (see
 * webhook_receiver.h): spawning node with pipes on its stdin and stdout,
 * reading its ready line, and its control endpoints (through fx_req). */
#include "tests/support/webhook_receiver.h"
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The receiver lives beside this file; the npm packages it loads are the
 * test tools ops/setup installs under ops/node (their manifest). */
#define RECEIVER_SCRIPT FENTA_SOURCE_SCHEMAS "/../tests/support/webhook_receiver.mjs"
#define TOOLS_DIR FENTA_SOURCE_SCHEMAS "/../ops/node"
#define READY_MS 20000 /* node starts in well under a second; leave room for a loaded CI */
#define CONTROL_TIMEOUT_S 10L

struct receiver {
    pid_t pid;     /* the node process, our child */
    int stdin_fd;  /* write end of its stdin: closing it (or dying) stops it */
    int port;      /* where it listens on 127.0.0.1 */
    char base[64]; /* "http://127.0.0.1:PORT" */
};

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Reads the ready line ("listening PORT\n") from fd; the port, or -1 when
 * the process closed its stdout (it exited) or took too long. */
static int read_ready(int fd)
{
    char line[128];
    size_t n = 0;
    long deadline = now_ms() + READY_MS;
    while (n < sizeof line - 1) {
        long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t got = read(fd, line + n, sizeof line - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        n += (size_t)got;
        line[n] = 0;
        if (strchr(line, '\n')) {
            int port = -1;
            return sscanf(line, "listening %d", &port) == 1 && port > 0 ? port : -1;
        }
    }
    return -1;
}

/* Waits up to tenths/10 s for our child pid to exit and reaps it. */
static bool reap(pid_t pid, int tenths)
{
    for (int i = 0; i <= tenths; i++) {
        pid_t w = waitpid(pid, NULL, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD))
            return true;
        usleep(100000);
    }
    return false;
}

receiver_t *receiver_start(void)
{
    const char *script = RECEIVER_SCRIPT;
    cr_assert(access(TOOLS_DIR "/node_modules/standardwebhooks/package.json", R_OK) == 0,
              "the webhook receiver needs the npm package standardwebhooks in %s/node_modules:"
              " run ops/setup (or, when that folder already exists, npm install in it)",
              TOOLS_DIR);
    cr_assert(access(script, R_OK) == 0, "%s is missing", script);

    /* O_CLOEXEC: no other process this test spawns may hold our end of the
     * receiver's stdin, or the receiver would outlive us through it. */
    int in[2], out[2];
    cr_assert(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0, "pipe2: %s",
              strerror(errno));
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* dup2 clears close-on-exec on 0 and 1; nothing else of the test's
         * (Criterion's pipes to the runner) may stay open in node. */
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
            _exit(126);
        closefrom(3);
        execlp("node", "node", script, "--port", "0", (char *)NULL);
        fprintf(stderr, "webhook receiver: cannot run node: %s (run ops/setup)\n", strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    int port = read_ready(out[0]);
    /* It prints nothing after the ready line (and ignores a closed stdout). */
    close(out[0]);
    if (port < 0) {
        kill(pid, SIGKILL);
        reap(pid, 50);
        close(in[1]);
        cr_assert_fail("the webhook receiver (node %s) did not start; its stderr is above", script);
    }

    receiver_t *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->pid = pid;
    r->stdin_fd = in[1];
    r->port = port;
    snprintf(r->base, sizeof r->base, "http://127.0.0.1:%d", port);
    return r;
}

const char *receiver_base(const receiver_t *r)
{
    return r->base;
}

const char *receiver_url(const receiver_t *r, const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/hooks/%s", r->base, name);
    cr_assert(n > 0 && (size_t)n < cap, "receiver_url: buffer of %zu too small", cap);
    return buf;
}

/* One control request; returns the status and the body (the caller's,
 * NUL-terminated, never NULL). Asserts the request went through. */
static long control(receiver_t *r, const char *method, const char *path, const char *body,
                    char **out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", r->base, path);
    fx_resp_t res = fx_req(method, url, body, &(fx_opts_t){.timeout_s = CONTROL_TIMEOUT_S});
    cr_assert(res.status != 0, "webhook receiver: %s %s: no answer", method, path);
    *out = res.body;
    res.body = NULL;
    long status = res.status;
    fx_resp_free(&res);
    return status;
}

/* GET path, asserting 200 and a JSON body of the given type. */
static json_t *get_json(receiver_t *r, const char *path, json_type type)
{
    char *body;
    long st = control(r, "GET", path, NULL, &body);
    cr_assert_eq(st, 200, "webhook receiver: GET %s answered %ld: %s", path, st, body);
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    cr_assert(j && json_typeof(j) == type, "webhook receiver: GET %s: unexpected body: %s", path,
              body);
    free(body);
    return j;
}

void receiver_config(receiver_t *r, const char *name, const char *config_json)
{
    char path[256], *body;
    snprintf(path, sizeof path, "/_config/%s", name);
    long st = control(r, "PUT", path, config_json, &body);
    cr_assert_eq(st, 204, "webhook receiver: PUT %s %s answered %ld: %s", path, config_json, st,
                 body);
    free(body);
}

json_t *receiver_log(receiver_t *r, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/_log/%s", name);
    return get_json(r, path, JSON_ARRAY);
}

json_t *receiver_wait(receiver_t *r, const char *name, size_t n, int seconds)
{
    long deadline = now_ms() + seconds * 1000L;
    for (;;) {
        json_t *log = receiver_log(r, name);
        if (json_array_size(log) >= n || now_ms() >= deadline)
            return log;
        json_decref(log);
        usleep(20000);
    }
}

json_t *receiver_stats(receiver_t *r)
{
    return get_json(r, "/_stats", JSON_OBJECT);
}

void receiver_stop(receiver_t **rp)
{
    if (!rp || !*rp)
        return;
    receiver_t *r = *rp;
    *rp = NULL;
    kill(r->pid, SIGTERM);
    if (!reap(r->pid, 50)) {
        kill(r->pid, SIGKILL);
        reap(r->pid, 50);
    }
    close(r->stdin_fd);
    free(r);
}

void receiver_hook(receiver_t *r, const json_t *who, const char *name, const char *types,
                   const char *extra, char id[64], char secret[80])
{
    char url[256], body[1024];
    receiver_url(r, name, url, sizeof url);
    snprintf(body, sizeof body, "{\"url\":\"%s\",\"event_types\":%s}", url, types);
    fx_resp_t res =
        fx_req("POST", "/v1/webhooks", body, &(fx_opts_t){.bearer = fx_token(who), .http2 = true});
    cr_assert_eq(res.status, 201, "POST /v1/webhooks: %s", res.body);
    snprintf(id, 64, "%s", json_string_value(json_object_get(res.json, "id")));
    snprintf(secret, 80, "%s", json_string_value(json_object_get(res.json, "secret")));
    fx_resp_free(&res);
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "{\"secrets\":[\"%s\"]%s%s}", secret, extra && *extra ? "," : "",
             extra ? extra : "");
    receiver_config(r, name, cfg);
}
