/* serve.c - `fenta serve` and `fenta migrate`: configuration, the embedded
 * PostgreSQL default, migrations, the actor runtime and the HTTP API, and an
 * orderly stop on SIGTERM/SIGINT. */
#include "cli/commands.h"
#include "cli/config.h"
#include "actors/jobs/job.h"
#include "actors/render/render.h"
#include "actors/schedules/schedule.h"
#include "actors/text/script_gen.h"
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

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void serve_usage(void)
{
    printf("usage: fenta serve [--config FILE] [options]\n\n"
           "Runs the API. Each option can also come from the environment or from the JSON\n"
           "config file (FENTA_CONFIG or --config) under its key (fenta serve --help-config\n"
           "lists them); flags win over the environment, which wins over the file.\n\n");
    fenta_config_usage(stdout, CONFIG_SERVE);
    printf("\nSIGTERM or Ctrl-C stops it in order: in-flight requests finish.\n");
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

/* Opens the database the configuration names (or starts the embedded one)
 * and applies the migrations it lacks. */
static int open_db(const fenta_config_t *c, int size, db_t *db)
{
    int err = 0;
    const char *conninfo = c->database_url;
    if (!conninfo) {
        embedded_pg_opts_t eo = {.bindir = c->pg_bindir, .timezone = c->pg_timezone};
        db->embedded = embedded_pg_start_opts(c->data_dir, &eo, &err);
        if (!db->embedded) {
            fprintf(stderr,
                    "fenta: cannot start the embedded PostgreSQL in %s: %s (see %s/pg.log)\n",
                    c->data_dir, fenta_strerror(err), c->data_dir);
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
    snprintf(dir, sizeof dir, "%s/sql", c->schemas_dir);
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

/* Fills c for cmd from argv and the environment (cli/config.h), refuses
 * arguments that are no setting of cmd, and sets the log level. 0, or the
 * exit status (2) after saying why on stderr. */
static int configure(fenta_config_t *c, unsigned cmd, int argc, char **argv)
{
    char why[1024];
    if (fenta_config_load(c, cmd, &argc, argv, why, sizeof why) != 0) {
        fprintf(stderr, "fenta: %s\n", why);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "fenta %s: unknown option '%s' (fenta %s --help lists them)\n", argv[0],
                argv[1], argv[0]);
        return 2;
    }
    log_set_level((log_level_t)c->log_level);
    return 0;
}

int cmd_migrate(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: fenta migrate [--config FILE] [options]\n\n"
               "Applies the SQL migrations of schemas/sql that the database lacks, each in\n"
               "its own transaction, and exits (fenta serve does the same at start-up).\n\n");
        fenta_config_usage(stdout, CONFIG_MIGRATE);
        return 0;
    }
    fenta_config_t c;
    int rc = configure(&c, CONFIG_MIGRATE, argc, argv);
    if (rc) {
        fenta_config_free(&c);
        return rc;
    }
    if (fsutil_mkdirs(c.data_dir, 0755) != 0) {
        fprintf(stderr, "fenta: cannot create %s: %s\n", c.data_dir, strerror(errno));
        fenta_config_free(&c);
        return 1;
    }
    db_t db = {0};
    rc = open_db(&c, 2, &db);
    close_db(&db);
    fenta_config_free(&c);
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
    if (argc > 1 && strcmp(argv[1], "--help-config") == 0) {
        fenta_config_doc_table(stdout);
        return 0;
    }
    /* Every setting is read and checked here, before anything starts. */
    fenta_config_t o;
    int rc = configure(&o, CONFIG_SERVE, argc, argv);
    if (rc) {
        fenta_config_free(&o);
        return rc;
    }
#ifdef FENTA_TEST_HOOKS
    /* Before any thread reads the clock: the skew is read from here on. */
    if (o.test_clock_file && clock_test_skew_file(o.test_clock_file) == 0)
        fprintf(stderr, "fenta: test clock: %s (now %lld ms ahead)\n", o.test_clock_file,
                (long long)clock_test_skew_ms());
#endif
    if (fsutil_mkdirs(o.data_dir, 0755) != 0) {
        fprintf(stderr, "fenta: cannot create the data directory %s: %s\n", o.data_dir,
                strerror(errno));
        fenta_config_free(&o);
        return 1;
    }
    char secret[256];
    if (o.jwt_secret) {
        snprintf(secret, sizeof secret, "%s", o.jwt_secret);
    } else if (read_secret(o.data_dir, "jwt_secret", secret, sizeof secret) != 0) {
        fprintf(stderr, "fenta: cannot read or create %s/jwt_secret\n", o.data_dir);
        fenta_config_free(&o);
        return 1;
    }

    rc = 1;
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
    if (open_db(&o, 2 * o.workers + 2, &db) != 0)
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
    if (!(types = workflow_types_load(o.schemas_dir, errbuf, sizeof errbuf))) {
        fprintf(stderr, "fenta: node types: %s\n", errbuf);
        goto out;
    }
    if (script_gen_load(o.schemas_dir, errbuf, sizeof errbuf) != 0) {
        fprintf(stderr, "fenta: script phrasing: %s\n", errbuf);
        goto out;
    }
    webhooks_config_t whc = {.pool = db.pool, .schemas_dir = o.schemas_dir};
    if (webhook_options(o.webhooks, &whc, errbuf, sizeof errbuf) != 0) {
        fprintf(stderr, "fenta: config \"webhooks\": %s\n", errbuf);
        goto out;
    }
    if (!(hooks = webhooks_new(&whc, errbuf, sizeof errbuf))) {
        fprintf(stderr, "fenta: webhooks: %s\n", errbuf);
        goto out;
    }
    /* The job engine drives renders and hears their stage events. */
    render = render_new(&(render_config_t){.tts = {.kokoro_url = o.kokoro_url,
                                                   .kokoro_voice = o.kokoro_voice,
                                                   .kokoro_api_key = o.kokoro_api_key},
                                           .objects_dir = objects_dir,
                                           .schemas_dir = o.schemas_dir,
                                           .asr_model_dir = o.asr_model_dir,
                                           .on_event = job_engine_on_render_event});
    jobs = render
               ? job_engine_new(&(job_config_t){.pool = db.pool,
                                                .render = render,
                                                .types = types,
                                                .objects_dir = objects_dir,
                                                .work_dir = work_dir,
                                                .schemas_dir = o.schemas_dir,
                                                .max_running_per_org = o.max_running_jobs_per_org,
                                                .webhooks = true,
                                                .webhooks_wanted = webhooks_wanted,
                                                .webhooks_arg = hooks})
               : NULL;
    if (!jobs) {
        fprintf(stderr, "fenta: out of memory\n");
        goto out;
    }
    render_set_event_arg(render, jobs);
    if (!(schedules = schedule_engine_new(
              &(schedule_config_t){.pool = db.pool,
                                   .types = types,
                                   .misfire_grace_s = o.schedule_misfire_grace_s,
                                   .webhooks = true}))) {
        fprintf(stderr, "fenta: out of memory\n");
        goto out;
    }

    char mbox[4096];
    snprintf(mbox, sizeof mbox, "%s/mailboxes", o.data_dir);
    rt = runtime_new(
        &(runtime_opts_t){.data_dir = mbox, .crash_quarantine_after = o.crash_quarantine_after},
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

    json_t *api = cli_load_json(o.schemas_dir, "api.json"),
           *models = cli_load_json(o.schemas_dir, "models.json");
    if (!api || !models) {
        json_decref(api);
        json_decref(models);
        goto out;
    }
    password_params_t pw;
    password_params_default(&pw);
    if (o.cheap_passwords_for_tests) {
        pw.t_cost = 1;
        pw.m_cost_kib = 64;
    }
    app = app_new(&(app_config_t){.pool = db.pool,
                                  .secret = (const unsigned char *)secret,
                                  .secret_len = strlen(secret),
                                  .api = api,
                                  .models = models,
                                  .limits = o.rate_limits,
                                  .pw = &pw,
                                  .insecure_cookies = o.insecure_cookies,
                                  .listen_conninfo = db.embedded ? embedded_pg_conninfo(db.embedded)
                                                                 : o.database_url,
                                  .rt = rt,
                                  .types = types,
                                  .objects = objects,
                                  .presign_ttl_s = o.presign_ttl_s,
                                  .schemas_dir = o.schemas_dir,
                                  .webhooks = hooks,
                                  .sse_heartbeat_ms = o.sse_heartbeat_ms},
                  errbuf, sizeof errbuf);
    json_decref(api);
    json_decref(models);
    if (!app) {
        fprintf(stderr, "fenta: %s\n", errbuf);
        goto out;
    }
    char openapi[4096];
    snprintf(openapi, sizeof openapi, "%s/openapi.json", o.schemas_dir);
    http_config_t hc = {.listen = o.listen,
                        .loops = o.loops,
                        .workers = o.workers,
                        .max_upload_part = o.max_upload_part_bytes,
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
    int cb = o.bench_constant_bytes;
    if (cb > 2 && (bench_body = malloc((size_t)cb))) {
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
    /* Renders in progress stop at their stage's end or carry on after the
     * next start (their stage is replayed). Order: the runtime stops, then
     * the webhook client and writer (results they still hand over find a
     * stopped runtime and are retried after a start, never a freed one),
     * then the runtime is freed (stopping its resident actors reads the
     * webhook engine's behaviours), then the engine. */
    if (rt)
        runtime_stop(rt, 10000);
    webhooks_stop(hooks);
    runtime_destroy(&rt);
    webhooks_destroy(&hooks);
    job_engine_destroy(&jobs);
    schedule_engine_destroy(&schedules);
    render_destroy(&render);
    workflow_types_free(&types);
    objects_close(&objects);
    close_db(&db);
    free(bench_body);
    if (!rc)
        log_msg(LOG_INFO, NULL, "stopped");
    fenta_config_free(&o);
    return rc;
}
