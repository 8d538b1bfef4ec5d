/* api_fixture.c - see api_fixture.h. The runner process starts the server
 * and publishes its URL in the environment (FENTA_TEST_API_URL), which the
 * test worker processes inherit. */
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t server_pid;
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

static void fx_api_stop(void)
{
    if (getpid() != runner_pid)
        return; /* a test worker forked from the runner */
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        int st = 0;
        for (int i = 0; i < 300 && waitpid(server_pid, &st, WNOHANG) != server_pid; i++)
            usleep(100000);
        kill(server_pid, SIGKILL);
        waitpid(server_pid, &st, 0);
    }
    if (data_root[0] && !getenv("FENTA_TEST_KEEP"))
        nftw(data_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
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
    char cfg[600], log[600], data[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", data_root);
    snprintf(log, sizeof log, "%s/server.log", data_root);
    snprintf(data, sizeof data, "%s/data", data_root);
    FILE *f = fopen(cfg, "w");
    fputs(config_json ? config_json : DEFAULT_CONFIG, f);
    fclose(f);
    server_pid = fork();
    if (server_pid == 0) {
        FILE *o = freopen(log, "w", stderr);
        (void)o;
        setenv("FENTA_CONFIG", cfg, 1);
        setenv("FENTA_DATA_DIR", data, 1);
        setenv("FENTA_LISTEN", "127.0.0.1:0", 1);
        setenv("FENTA_LOOPS", "2", 1);
        setenv("FENTA_LOG_LEVEL", "info", 1); /* the ready line is at info */
        execl(FENTA_BINARY, "fenta", "serve", (char *)NULL);
        _exit(127);
    }
    /* Wait for the ready line and read the port from it. */
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
                fclose(l);
                runner_pid = getpid();
                atexit(fx_api_stop);
                return;
            }
        }
        if (l)
            fclose(l);
        int st;
        if (waitpid(server_pid, &st, WNOHANG) == server_pid) {
            fprintf(stderr, "fx_api_start: fenta serve exited; its log:\n");
            char cmd[700];
            snprintf(cmd, sizeof cmd, "tail -30 '%s' >&2", log);
            (void)!system(cmd);
            exit(1);
        }
    }
    fprintf(stderr, "fx_api_start: fenta serve did not become ready in 60 s\n");
    kill(server_pid, SIGKILL);
    exit(1);
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

fx_resp_t fx_req(const char *method, const char *path, const char *body, const fx_opts_t *o)
{
    static const fx_opts_t none = {0};
    if (!o)
        o = &none;
    fx_resp_t r = {0};
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    char url[1024];
    snprintf(url, sizeof url, "%s%s", fx_api_url(), path);
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
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
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
