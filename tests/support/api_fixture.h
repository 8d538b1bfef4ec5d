/* api_fixture.h - integration tests against the real `fenta serve`: one
 * server per test binary on its own data directory (embedded PostgreSQL),
 * started by the Criterion runner before the tests and stopped after them,
 * and a small libcurl client speaking HTTP/1.1 or HTTP/2 (prior knowledge). */
#ifndef FENTA_TEST_API_FIXTURE_H
#define FENTA_TEST_API_FIXTURE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Declare the server in a test file with FX_API_SERVER(config_json): the JSON
 * config (a string literal) it runs with; NULL for the default test config
 * (plain-HTTP cookies, cheap password hashing, generous rate limits). */
#define FX_API_SERVER(config)                                                                      \
    ReportHook(PRE_ALL)(struct criterion_test_set * set)                                           \
    {                                                                                              \
        (void)set;                                                                                 \
        fx_api_start(config);                                                                      \
    }

/* Starts the server (in the runner process) and arranges for the runner's
 * exit to stop it and remove its data. */
void fx_api_start(const char *config_json);
/* "http://127.0.0.1:PORT" of this binary's server. */
const char *fx_api_url(void);
/* Its data directory (the JWT secret is in DIR/jwt_secret). */
const char *fx_api_data_dir(void);
/* Kills the server with SIGKILL (no shutdown of any kind: its embedded
 * PostgreSQL keeps running, as after a crash) and starts it again on the same
 * data directory; fx_api_url() then names the new one (in the calling
 * process). The runner still stops it at exit. False when it did not come
 * back. */
bool fx_api_kill_and_restart(void);
/* The same with the server down for down_ms of its clock before it starts
 * again (a timer due meanwhile fires late): the test clock (below) is
 * advanced by down_ms while the server is down, nobody sleeps. */
bool fx_api_kill_and_restart_after(int down_ms);

/* The test clock: the server's wall clock (runtime/clock.h) runs ahead of
 * the real one by a skew kept in DATA_ROOT/clock_skew_ms, which survives a
 * restart. Tests of schedules, timers and retries advance it instead of
 * sleeping. That takes a build with -DFENTA_TEST_HOOKS=ON (ops/test's);
 * in one without, fx_clock_advance sleeps for real (the skew stays 0), so
 * the same tests pass, slowly. The clock only moves forward, and
 * PostgreSQL's now() stays real. */
/* The server's clock now, in Unix milliseconds and seconds. */
int64_t fx_clock_now_ms(void);
int64_t fx_clock_now_s(void);
/* How far ahead of the real clock the server's is, ms. */
int64_t fx_clock_skew_ms(void);
/* Moves the server's clock ahead by ms (>= 0); returns once the server
 * has seen it (its timers due by then are firing). */
void fx_clock_advance(int64_t ms);
/* Moves it ahead to at_ms (nothing when that is not in the future). */
void fx_clock_advance_to(int64_t at_ms);

typedef struct {
    long status;  /* HTTP status, 0 when the request failed */
    json_t *json; /* parsed body, NULL when not JSON */
    char *body;   /* raw body (NUL-terminated) */
    size_t body_len;
    char *headers;     /* raw response headers, lower-cased names */
    long http_version; /* 11 or 20 */
} fx_resp_t;

typedef struct {
    const char *bearer;         /* Authorization: Bearer ... */
    const char *const *headers; /* extra "name: value" lines, NULL-terminated */
    bool http2;                 /* h2c with prior knowledge */
    const char *content_type;   /* default application/json when there is a body */
    size_t body_len;            /* when body is not a C string (0 = strlen) */
    long timeout_s;             /* the whole request; 0 = 30 */
    const char *source_ip;      /* the local address to send from ("127.0.0.2":
                                   CURLOPT_INTERFACE); NULL = the kernel's choice */
    bool direct;                /* never through prism (FENTA_TEST_PRISM, below): a test
                                   of the protocol itself, which must reach the server
                                   as sent (HTTP/2, exact bytes) */
} fx_opts_t;

/* One request; the response is the caller's (fx_resp_free). body may be
 * NULL. path is under fx_api_url(), or a whole URL ("http://...") for
 * another local server (a test receiver).
 *
 * With FENTA_TEST_PRISM=1 (ops/test's plain pass) the JSON API traffic
 * goes through `prism proxy schemas/openapi.json`, over HTTP/1.1 even when
 * http2 asks for HTTP/2, and an answer that breaks the document fails the
 * test; what is not JSON API traffic goes straight to the server (see
 * via_prism in api_fixture.c), as does a request marked direct. */
fx_resp_t fx_req(const char *method, const char *path, const char *body, const fx_opts_t *o);
void fx_resp_free(fx_resp_t *r);
/* The value of a response header (case-insensitive), copied into buf; NULL if absent. */
const char *fx_header(const fx_resp_t *r, const char *name, char *buf, size_t cap);
/* Registers a fresh user; returns the session document (the caller's). */
json_t *fx_register(const char *name);
/* Polls GET /v1/jobs/{id} as who (HTTP/2) until its status is one of want
 * (space separated) and returns that document (the caller's); fails the
 * test after seconds. */
json_t *fx_wait_job(const json_t *who, const char *id, const char *want, int seconds);
/* One request as who (the session's access token) over HTTP/2: what most
 * tests send. The response is the caller's (fx_resp_free). */
fx_resp_t fx_call(const char *method, const char *path, const char *body, const json_t *who);
/* fx_call that asserts the answer's status and frees it: for the steps of
 * a test whose answer is only its status. The failure names the request,
 * the test's file and line, and shows the body. */
#define fx_expect(method, path, body, who, status)                                                 \
    fx_expect_at(__FILE__, __LINE__, method, path, body, who, status)
void fx_expect_at(const char *file, int line, const char *method, const char *path,
                  const char *body, const json_t *who, long status);

/* A small workflow most job tests run, as a POST /v1/workflows body: "t"
 * (input.text "Hello there.") feeds "u" (script.transform uppercase). */
extern const char FX_TEXT_WORKFLOW[];
/* The edges of the usual render chain, as members of a workflow's "edges"
 * array (a string literal, no trailing comma): "voice" (tts) feeds "subs"
 * (captions) and "edit" (montage), which "out" (export) and "send"
 * (deliver) finish. */
#define FX_RENDER_CHAIN_EDGES                                                                      \
    "{\"from\":\"voice.words\",\"to\":\"subs.words\"},"                                            \
    "{\"from\":\"voice.audio\",\"to\":\"edit.audio\"},"                                            \
    "{\"from\":\"voice.words\",\"to\":\"edit.words\"},"                                            \
    "{\"from\":\"subs.captions\",\"to\":\"edit.captions\"},"                                       \
    "{\"from\":\"edit.timeline\",\"to\":\"out.timeline\"},"                                        \
    "{\"from\":\"out.artifacts\",\"to\":\"send.artifacts\"}"
/* Saves doc (a POST /v1/workflows body) as who's workflow; asserts it was
 * created (201) valid, so it can run. Its id into id[64]. */
void fx_save_workflow(const json_t *who, const char *doc, char id[64]);
/* Runs who's workflow: POST /v1/workflows/{id}/run with body (NULL = {});
 * asserts 202 and a status a new job can have (queued or running, or
 * failed already when its first node failed at once). The job's id into
 * job[64]. */
void fx_start_run(const json_t *who, const char *workflow_id, const char *body, char job[64]);
/* Create, run, wait: saves doc, runs it with run_body (NULL = {}) and
 * waits up to seconds for the job to end (succeeded, failed or cancelled);
 * returns the job document (the caller's); its id into job[64] when not
 * NULL. */
json_t *fx_run_workflow(const json_t *who, const char *doc, const char *run_body, char job[64],
                        int seconds);

/* Shorthands into a session document. */
const char *fx_token(const json_t *session);
const char *fx_org(const json_t *session);
const char *fx_user(const json_t *session);
/* Runs stmt with one text parameter ($1) on the server's database as its
 * superuser, for a test that sets up what no API call can (an expired key,
 * a row a crash left behind). Asserts success. */
void fx_sql(const char *stmt, const char *param);

#endif
