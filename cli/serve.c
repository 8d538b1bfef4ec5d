/* serve.c - `fenta serve` and `fenta migrate`: configuration, the embedded
 * PostgreSQL default, migrations, the actor runtime and the HTTP API, and an
 * orderly stop on SIGTERM/SIGINT. */
#include "cli/commands.h"
#include "actors/jobs/job.h"
#include "actors/render/render.h"
#include "actors/schedules/schedule.h"
#include "actors/webhooks/webhooks.h"
#include "actors/workflow/workflow.h"
#include "http/app.h"
#include "http/objects_http.h"
#include "http/request.h"
#include "http/server.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/log.h"
#include "runtime/runtime.h"
#include "runtime/signals.h"
#include "storage/embedded.h"
#include "storage/migrate.h"
#include "storage/objects.h"
#include "storage/pg.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The options, as data: name, environment variable, config-file key, help. */
typedef struct {
    const char *listen;     /* host:port */
    const char *data_dir;   /* everything on disk */
    const char *database;   /* DATABASE_URL, NULL = embedded */
    const char *jwt_secret; /* NULL = generated and kept in the data directory */
    const char *tls_cert, *tls_key;
    int loops, workers;     /* threads */
    int crash_after;        /* crashes of the process before a message is quarantined */
    size_t max_upload_part; /* h2o's own body limit; 0 = the server's default */
    size_t max_connections; /* 0 = the server's default */
    json_t *limits;         /* rate limits (borrowed from the config document) */
    int insecure_cookies;   /* plain-HTTP development */
    int pw_cheap;           /* tests: cheap argon2 parameters */
    int presign_ttl_s;      /* lifetime of presigned URLs, seconds */
} serve_opts_t;

static const struct {
    const char *flag, *env, *key, *help;
} options[] = {
    {"--listen", "FENTA_LISTEN", "listen", "address to listen on (default 127.0.0.1:8080)"},
    {"--data-dir", "FENTA_DATA_DIR", "data_dir",
     "data directory: embedded database, mailboxes, secrets (default ./data)"},
    {"--database-url", "DATABASE_URL", "database_url",
     "PostgreSQL connection string; unset: a private cluster in the data directory"},
    {"--jwt-secret", "JWT_SECRET", "jwt_secret",
     "token signing secret (>= 32 bytes); unset: generated once, kept in DATA_DIR/jwt_secret"},
    {"--tls-cert", "FENTA_TLS_CERT", "tls_cert", "PEM certificate chain: enables TLS with ALPN h2"},
    {"--tls-key", "FENTA_TLS_KEY", "tls_key", "PEM private key for --tls-cert"},
    {"--loops", "FENTA_LOOPS", "loops", "event-loop threads (default: cores)"},
    {"--workers", "FENTA_WORKERS", "workers", "handler threads (default 16)"},
    {"--crash-quarantine-after", "FENTA_CRASH_QUARANTINE_AFTER", "crash_quarantine_after",
     "times a message may crash the process before it goes to the dead-letter queue (default 2)"},
    {"--max-upload-part-bytes", "FENTA_MAX_UPLOAD_PART_BYTES", "max_upload_part_bytes",
     "largest request body read at all (default 67174400: a 64 MiB upload part and 64 KiB); "
     "each route's own limit (schemas/api.json) answers 413 below it"},
    {"--max-connections", "FENTA_MAX_CONNECTIONS", "max_connections",
     "open client connections (default 4096); more are closed on accept"},
    {"--presign-ttl-s", "FENTA_PRESIGN_TTL_S", "presign_ttl_s",
     "lifetime of presigned download URLs, the most ?expires_in may ask (default 3600)"},
#ifdef FENTA_TEST_HOOKS
    /* Only in a build with -DFENTA_TEST_HOOKS=ON (ops/test): a shipped binary
     * has no way to move its clock. */
    {"--test-clock-file", "FENTA_TEST_CLOCK_FILE", "test_clock_file",
     "tests only: a file holding milliseconds the clock runs ahead by (runtime/clock.h)"},
#endif
};

static void serve_usage(void)
{
    printf("usage: fenta serve [--config FILE] [options]\n\n"
           "Runs the API. Each option can also come from the environment or from the JSON\n"
           "config file (FENTA_CONFIG or --config); flags win over the environment, which\n"
           "wins over the file.\n\n");
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
        printf("  %-24s %-28s %s\n", options[i].flag, options[i].env, options[i].help);
    printf("\nThe config file may also hold \"rate_limits\" ({\"ip\":{\"rate\":R,\"burst\":B},"
           " \"user\":{...},\n\"routes\":{\"POST /v1/auth/login\":{...}}}) and "
           "\"insecure_cookies\": true (plain-HTTP\ndevelopment only). SIGTERM or Ctrl-C stops "
           "it in order: in-flight requests finish.\n");
}

/* GET /bench/constant: a constant body of bench_constant_bytes bytes, no auth,
 * no database, on the workers like every API route: the API benchmark's limit.
 * Only routed when the config asks for it. */
static char *bench_body;
static size_t bench_len;

static void bench_constant(http_req_t *req)
{
    http_respond_raw(req, 200, "application/json", bench_body, bench_len);
}

/* flag > environment > config file. */
/* The value of the option whose config key is key: the flag, else the
 * environment, else the config file; NULL when none gives it. Options are
 * named, not numbered, so adding one cannot shift another's source. */
static const char *pick(int argc, char **argv, const char *key, const json_t *cfg)
{
    size_t i = 0, n = sizeof options / sizeof options[0];
    while (i < n && strcmp(options[i].key, key) != 0)
        i++;
    assert(i < n); /* a key missing from options[] is our bug */
    for (int a = 1; a + 1 < argc; a++)
        if (strcmp(argv[a], options[i].flag) == 0)
            return argv[a + 1];
    const char *e = getenv(options[i].env);
    if (e && *e)
        return e;
    const json_t *v = json_object_get(cfg, options[i].key);
    if (json_is_integer(v)) {
        static char buf[sizeof options / sizeof options[0]][32]; /* one per option */
        snprintf(buf[i], sizeof buf[0], "%lld", (long long)json_integer_value(v));
        return buf[i];
    }
    return json_string_value(v);
}

/* Reads DIR/NAME, or generates 32 random bytes as hex into it once. */
static int read_secret(const char *dir, const char *name, char *out, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(out, 1, cap - 1, f);
        fclose(f);
        out[n] = 0;
        out[strcspn(out, "\r\n")] = 0;
        return strlen(out) >= 32 ? 0 : FENTA_EINVAL;
    }
    unsigned char raw[32];
    if (crypto_random(raw, sizeof raw) != 0)
        return FENTA_EIO;
    crypto_hex(raw, sizeof raw, out);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, out, strlen(out)) != (ssize_t)strlen(out) || fsync(fd) != 0) {
        if (fd >= 0)
            close(fd);
        return FENTA_EIO;
    }
    close(fd);
    log_msg(LOG_INFO, NULL, "generated a secret in %s", path);
    return 0;
}

typedef struct {
    embedded_pg_t *embedded;
    pg_pool_t *pool;
} db_t;

static int open_db(const char *data_dir, const char *url, int size, db_t *db)
{
    int err = 0;
    const char *conninfo = url;
    if (!url) {
        db->embedded = embedded_pg_start(data_dir, &err);
        if (!db->embedded) {
            fprintf(stderr,
                    "fenta: cannot start the embedded PostgreSQL in %s: %s (see %s/pg.log)\n",
                    data_dir, fenta_strerror(err), data_dir);
            return err;
        }
        conninfo = embedded_pg_conninfo(db->embedded);
    }
    db->pool = pg_pool_new(conninfo, size, &err);
    if (!db->pool) {
        fprintf(stderr, "fenta: bad database connection string: %s\n", fenta_strerror(err));
        return err;
    }
    int applied = 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sql", fsutil_schemas_dir(NULL));
    /* The database may still be starting (an external one): retry a while. */
    for (int attempt = 0;; attempt++) {
        err = migrate_apply(db->pool, dir, &applied);
        if (err != FENTA_EUNAVAILABLE || attempt >= 30)
            break;
        sleep(1);
    }
    if (err) {
        fprintf(stderr, "fenta: migrations in %s failed: %s\n", dir, fenta_strerror(err));
        return err;
    }
    if (applied)
        log_msg(LOG_INFO, NULL, "applied %d migrations", applied);
    return 0;
}

static void close_db(db_t *db)
{
    pg_pool_destroy(&db->pool);
    embedded_pg_stop(&db->embedded);
}

static json_t *load_config(int argc, char **argv)
{
    const char *path = getenv("FENTA_CONFIG");
    for (int a = 1; a + 1 < argc; a++)
        if (strcmp(argv[a], "--config") == 0)
            path = argv[a + 1];
    if (!path)
        return json_object();
    json_error_t e;
    json_t *cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!cfg || !json_is_object(cfg)) {
        fprintf(stderr, "fenta: %s:%d: %s\n", path, e.line, cfg ? "not an object" : e.text);
        json_decref(cfg);
        return NULL;
    }
    return cfg;
}

int cmd_migrate(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: fenta migrate [--config FILE] [--data-dir DIR] [--database-url URL]\n\n"
               "Applies the SQL migrations of schemas/sql that the database lacks, each in\n"
               "its own transaction, and exits (fenta serve does the same at start-up).\n");
        return 0;
    }
    json_t *cfg = load_config(argc, argv);
    if (!cfg)
        return 2;
    const char *dir = pick(argc, argv, "data_dir", cfg);
    dir = dir ? dir : "data";
    if (fsutil_mkdirs(dir, 0755) != 0) {
        fprintf(stderr, "fenta: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    db_t db = {0};
    int rc = open_db(dir, pick(argc, argv, "database_url", cfg), 2, &db);
    close_db(&db);
    json_decref(cfg);
    free(bench_body);
    if (!rc)
        printf("migrations up to date\n");
    return rc ? 1 : 0;
}

/* The config file's "webhooks" object: retry_ms (a list of delays),
 * connect_timeout_ms, timeout_ms, allow_loopback, allow_private,
 * disable_after_ms, max_per_endpoint. 0 or FENTA_EINVAL with why. */
static int webhook_options(const json_t *o, webhooks_config_t *w, char *why, size_t cap)
{
    if (!o)
        return 0;
    if (!json_is_object(o))
        return fenta_fail(why, cap, FENTA_EINVAL, "must be an object");
    const json_t *r = json_object_get(o, "retry_ms");
    if (r && (!json_is_array(r) || json_array_size(r) > WEBHOOKS_MAX_RETRIES))
        return fenta_fail(why, cap, FENTA_EINVAL, "retry_ms must be a list of at most %d delays",
                          WEBHOOKS_MAX_RETRIES);
    size_t i;
    json_t *v;
    json_array_foreach(r, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return fenta_fail(why, cap, FENTA_EINVAL, "retry_ms[%zu] must be ms >= 0", i);
        w->retry_ms[i] = json_integer_value(v);
        w->nretry = (int)i + 1;
    }
    w->connect_timeout_ms = (long)json_integer_value(json_object_get(o, "connect_timeout_ms"));
    w->timeout_ms = (long)json_integer_value(json_object_get(o, "timeout_ms"));
    w->allow_loopback = json_is_true(json_object_get(o, "allow_loopback"));
    w->allow_private = json_is_true(json_object_get(o, "allow_private"));
    w->disable_after_ms = json_integer_value(json_object_get(o, "disable_after_ms"));
    w->max_per_endpoint = (int)json_integer_value(json_object_get(o, "max_per_endpoint"));
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        serve_usage();
        return 0;
    }
    /* Before any thread exists: only signals_wait_term takes these. */
    signals_block_term();
    json_t *cfg = load_config(argc, argv);
    if (!cfg)
        return 2;
    serve_opts_t o = {0};
    o.listen = pick(argc, argv, "listen", cfg);
    o.data_dir = pick(argc, argv, "data_dir", cfg);
    o.database = pick(argc, argv, "database_url", cfg);
    o.jwt_secret = pick(argc, argv, "jwt_secret", cfg);
    o.tls_cert = pick(argc, argv, "tls_cert", cfg);
    o.tls_key = pick(argc, argv, "tls_key", cfg);
    o.loops = pick(argc, argv, "loops", cfg) ? atoi(pick(argc, argv, "loops", cfg)) : 0;
    o.workers = pick(argc, argv, "workers", cfg) ? atoi(pick(argc, argv, "workers", cfg)) : 16;
    o.crash_after = pick(argc, argv, "crash_quarantine_after", cfg)
                        ? atoi(pick(argc, argv, "crash_quarantine_after", cfg))
                        : 2;
    const char *ttl = pick(argc, argv, "presign_ttl_s", cfg);
    o.presign_ttl_s = APP_PRESIGN_TTL_S;
    if (ttl) {
        /* a week at most: a download link is not a share link */
        size_t n = strlen(ttl);
        long long v = n >= 1 && n <= 7 && strspn(ttl, "0123456789") == n ? atoll(ttl) : 0;
        if (v < 1 || v > 7 * 86400) {
            fprintf(stderr, "fenta: --presign-ttl-s must be whole seconds from 1 to 604800\n");
            json_decref(cfg);
            return 2;
        }
        o.presign_ttl_s = (int)v;
    }
#ifdef FENTA_TEST_HOOKS
    /* Before any thread reads the clock: the skew is read from here on. */
    const char *clock_file = pick(argc, argv, "test_clock_file", cfg);
    if (clock_file && clock_test_skew_file(clock_file) == 0)
        fprintf(stderr, "fenta: test clock: %s (now %lld ms ahead)\n", clock_file,
                (long long)clock_test_skew_ms());
#endif
    o.limits = json_object_get(cfg, "rate_limits");
    o.insecure_cookies = json_is_true(json_object_get(cfg, "insecure_cookies"));
    o.pw_cheap = json_is_true(json_object_get(cfg, "cheap_passwords_for_tests"));
    if (!o.data_dir)
        o.data_dir = "data";
    if (o.workers < 1 || o.workers > 1024 || o.loops < 0 || o.loops > 256) {
        fprintf(stderr, "fenta: --workers must be 1..1024 and --loops 0..256\n");
        json_decref(cfg);
        return 2;
    }
    if (o.crash_after < 1 || o.crash_after > 1000) {
        fprintf(stderr, "fenta: --crash-quarantine-after must be 1..1000\n");
        json_decref(cfg);
        return 2;
    }
    const char *mup = pick(argc, argv, "max_upload_part_bytes", cfg),
               *mc = pick(argc, argv, "max_connections", cfg);
    char *end = NULL;
    /* every route's own limit (1 MiB for JSON) must fit under it */
    if (mup && ((o.max_upload_part = strtoull(mup, &end, 10)) < 1024 * 1024 || *end)) {
        fprintf(stderr, "fenta: --max-upload-part-bytes must be a number of bytes >= 1048576\n");
        json_decref(cfg);
        return 2;
    }
    if (mc && ((o.max_connections = strtoull(mc, &end, 10)) < 1 || *end)) {
        fprintf(stderr, "fenta: --max-connections must be a positive number\n");
        json_decref(cfg);
        return 2;
    }
    if (fsutil_mkdirs(o.data_dir, 0755) != 0) {
        fprintf(stderr, "fenta: cannot create the data directory %s: %s\n", o.data_dir,
                strerror(errno));
        return 1;
    }
    char secret[256];
    if (o.jwt_secret) {
        if (strlen(o.jwt_secret) < 32) {
            fprintf(stderr, "fenta: JWT_SECRET must be at least 32 bytes\n");
            return 2;
        }
        snprintf(secret, sizeof secret, "%s", o.jwt_secret);
    } else if (read_secret(o.data_dir, "jwt_secret", secret, sizeof secret) != 0) {
        fprintf(stderr, "fenta: cannot read or create %s/jwt_secret\n", o.data_dir);
        return 1;
    }

    int rc = 1;
    db_t db = {0};
    runtime_t *rt = NULL;
    app_t *app = NULL;
    http_server_t *srv = NULL;
    objects_t *objects = NULL;
    workflow_types_t *types = NULL;
    render_t *render = NULL;
    job_engine_t *jobs = NULL;
    schedule_engine_t *schedules = NULL;
    webhooks_t *hooks = NULL;
    /* A worker may hold the request's connection and take a second for a
     * transaction: two per worker. */
    if (open_db(o.data_dir, o.database, 2 * o.workers + 2, &db) != 0)
        goto out;

    /* Render outputs and uploads live in the object store, downloaded
     * through presigned URLs signed with a secret of their own (not the
     * token secret). */
    char objects_dir[4096], osecret[128], work_dir[4096];
    snprintf(objects_dir, sizeof objects_dir, "%s/objects", o.data_dir);
    snprintf(work_dir, sizeof work_dir, "%s/work", o.data_dir);
    int err = 0;
    if (read_secret(o.data_dir, "objects_secret", osecret, sizeof osecret) != 0 ||
        !(objects = objects_open(objects_dir, (const uint8_t *)osecret, strlen(osecret), &err))) {
        fprintf(stderr, "fenta: cannot open the object store in %s\n", objects_dir);
        goto out;
    }
    char errbuf[512] = "";
    if (!(types = workflow_types_load(fsutil_schemas_dir(NULL), errbuf, sizeof errbuf))) {
        fprintf(stderr, "fenta: node types: %s\n", errbuf);
        goto out;
    }
    webhooks_config_t whc = {.pool = db.pool, .schemas_dir = fsutil_schemas_dir(NULL)};
    if (webhook_options(json_object_get(cfg, "webhooks"), &whc, errbuf, sizeof errbuf) != 0) {
        fprintf(stderr, "fenta: config \"webhooks\": %s\n", errbuf);
        goto out;
    }
    if (!(hooks = webhooks_new(&whc, errbuf, sizeof errbuf))) {
        fprintf(stderr, "fenta: webhooks: %s\n", errbuf);
        goto out;
    }
    /* The job engine drives renders and hears their stage events. */
    const char *kokoro = getenv("KOKORO_URL");
    render = render_new(&(render_config_t){.tts = {.kokoro_url = kokoro && *kokoro ? kokoro : NULL,
                                                   .kokoro_voice = getenv("KOKORO_VOICE"),
                                                   .kokoro_api_key = getenv("KOKORO_API_KEY")},
                                           .objects_dir = objects_dir,
                                           .schemas_dir = fsutil_schemas_dir(NULL),
                                           .on_event = job_engine_on_render_event});
    json_int_t cap = json_integer_value(json_object_get(cfg, "max_running_jobs_per_org"));
    jobs = render ? job_engine_new(&(job_config_t){.pool = db.pool,
                                                   .render = render,
                                                   .types = types,
                                                   .objects_dir = objects_dir,
                                                   .work_dir = work_dir,
                                                   .schemas_dir = fsutil_schemas_dir(NULL),
                                                   .max_running_per_org = cap > 0 ? (int)cap : 4,
                                                   .webhooks = true,
                                                   .webhooks_wanted = webhooks_wanted,
                                                   .webhooks_arg = hooks})
                  : NULL;
    if (!jobs) {
        fprintf(stderr, "fenta: out of memory\n");
        goto out;
    }
    render_set_event_arg(render, jobs);
    json_int_t grace = json_integer_value(json_object_get(cfg, "schedule_misfire_grace_s"));
    if (!(schedules = schedule_engine_new(&(schedule_config_t){
              .pool = db.pool, .types = types, .misfire_grace_s = (int)grace, .webhooks = true}))) {
        fprintf(stderr, "fenta: out of memory\n");
        goto out;
    }

    char mbox[4096];
    snprintf(mbox, sizeof mbox, "%s/mailboxes", o.data_dir);
    rt = runtime_new(&(runtime_opts_t){.data_dir = mbox, .crash_quarantine_after = o.crash_after},
                     &err);
    if (!rt || (err = render_register(render, rt)) != 0 ||
        (err = job_engine_register(jobs, rt)) != 0 ||
        (err = schedule_engine_register(schedules, rt)) != 0 ||
        (err = webhooks_register(hooks, rt)) != 0 || (err = runtime_start(rt)) != 0 ||
        (err = webhooks_start(hooks, rt)) != 0) {
        fprintf(stderr, "fenta: cannot start the actor runtime in %s: %s\n", mbox,
                fenta_strerror(err));
        goto out;
    }
    int recovered = 0;
    if ((err = job_engine_recover(jobs, rt, &recovered)) != 0)
        log_msg(LOG_WARN, NULL, "could not recover jobs: %s", fenta_strerror(err));
    else if (recovered)
        log_msg(LOG_INFO, NULL, "started %d jobs that had no actor", recovered);
    if ((err = schedule_engine_recover(schedules, rt, &recovered)) != 0)
        log_msg(LOG_WARN, NULL, "could not recover schedules: %s", fenta_strerror(err));
    else if (recovered)
        log_msg(LOG_INFO, NULL, "armed %d schedules that had no actor", recovered);
    if ((err = webhooks_recover(hooks, rt, &recovered)) != 0)
        log_msg(LOG_WARN, NULL, "could not resume webhook deliveries: %s", fenta_strerror(err));
    else if (recovered)
        log_msg(LOG_INFO, NULL, "resumed %d webhook deliveries", recovered);

    json_t *api = cli_load_json("api.json"), *models = cli_load_json("models.json");
    if (!api || !models) {
        json_decref(api);
        json_decref(models);
        goto out;
    }
    password_params_t pw;
    password_params_default(&pw);
    if (o.pw_cheap) {
        pw.t_cost = 1;
        pw.m_cost_kib = 64;
    }
    app = app_new(&(app_config_t){.pool = db.pool,
                                  .secret = (const unsigned char *)secret,
                                  .secret_len = strlen(secret),
                                  .api = api,
                                  .models = models,
                                  .limits = o.limits,
                                  .pw = &pw,
                                  .insecure_cookies = o.insecure_cookies,
                                  .listen_conninfo =
                                      db.embedded ? embedded_pg_conninfo(db.embedded) : o.database,
                                  .rt = rt,
                                  .types = types,
                                  .objects = objects,
                                  .presign_ttl_s = o.presign_ttl_s,
                                  .schemas_dir = fsutil_schemas_dir(NULL),
                                  .webhooks = hooks},
                  errbuf, sizeof errbuf);
    json_decref(api);
    json_decref(models);
    if (!app) {
        fprintf(stderr, "fenta: %s\n", errbuf);
        goto out;
    }
    char openapi[4096];
    snprintf(openapi, sizeof openapi, "%s/openapi.json", fsutil_schemas_dir(NULL));
    http_config_t hc = {.listen = o.listen ? o.listen : "127.0.0.1:8080",
                        .loops = o.loops,
                        .workers = o.workers,
                        .max_upload_part = o.max_upload_part,
                        .max_connections = o.max_connections,
                        .tls_cert = o.tls_cert,
                        .tls_key = o.tls_key,
                        .openapi = openapi};
    app_bind(app, &hc);
    srv = http_server_new(&hc, &err);
    if (!srv) {
        fprintf(stderr, "fenta: cannot listen on %s: %s\n", hc.listen, fenta_strerror(err));
        goto out;
    }
    json_int_t cb = json_integer_value(json_object_get(cfg, "bench_constant_bytes"));
    if (cb > 2 && cb < (1 << 20) && (bench_body = malloc((size_t)cb))) {
        bench_len = (size_t)cb;
        memset(bench_body, ' ', bench_len);
        bench_body[0] = '{';
        bench_body[bench_len - 1] = '}';
        http_route_t r = {.method = "GET",
                          .pattern = "/bench/constant",
                          .handler = bench_constant,
                          .flags = HTTP_ROUTE_NO_HOOK,
                          .name = "bench_constant"};
        http_server_route(srv, &r, 1);
    }
    if ((err = objects_http_mount(srv, objects)) != 0) {
        fprintf(stderr, "fenta: cannot serve the object store: %s\n", fenta_strerror(err));
        goto out;
    }
    if ((err = app_install(app, srv)) != 0 || (err = http_server_start(srv)) != 0) {
        fprintf(stderr, "fenta: cannot start the HTTP server: %s\n", fenta_strerror(err));
        goto out;
    }
    char port[16], url[300];
    snprintf(port, sizeof port, "%u", http_server_port(srv));
    snprintf(url, sizeof url, "%s://%.*s:%s", o.tls_cert ? "https" : "http",
             (int)(strrchr(hc.listen, ':') ? strrchr(hc.listen, ':') - hc.listen : 9), hc.listen,
             port);
    log_kv(LOG_INFO, NULL, "ready",
           (const char *const[]){"url", url, "port", port, "data_dir", o.data_dir, "database",
                                 db.embedded ? "embedded" : "external", NULL});
    int sig = signals_wait_term();
    log_msg(LOG_INFO, NULL, "signal %d: stopping", sig);
    rc = 0;
out:
    http_server_destroy(&srv); /* stops: in-flight requests finish first */
    app_destroy(&app);
    webhooks_destroy(&hooks); /* its client first: results in flight are retried after a start */
    if (rt) {
        /* Renders in progress stop at their stage's end or carry on after
         * the next start (their stage is replayed). */
        runtime_stop(rt, 10000);
        runtime_destroy(&rt);
    }
    job_engine_destroy(&jobs);
    schedule_engine_destroy(&schedules);
    render_destroy(&render);
    workflow_types_free(&types);
    objects_close(&objects);
    close_db(&db);
    json_decref(cfg);
    free(bench_body);
    if (!rc)
        log_msg(LOG_INFO, NULL, "stopped");
    return rc;
}
