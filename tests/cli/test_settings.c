/* test_settings.c - each setting a module takes reaches that module through
 * the real binary, by flag and by environment variable: the PostgreSQL
 * tools' folder (the embedded cluster), the schemas folder, the log level,
 * the ASR model folder (the render engine). The modules read no
 * environment themselves (cli/config.h), so a value that is not passed down
 * would leave the module on its default and these checks would fail. The
 * SSE heartbeat's test drives a server: tests/http/test_sse_heartbeat.c.
 * Every run is bounded by timeout(1). */
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *dir;

static void setup(void)
{
    dir = fx_tmpdir("settings");
    /* as root the cluster's tools run as postgres, who must reach it */
    cr_assert_eq(chmod(dir, 0711), 0);
}

static void teardown(void)
{
    fx_rmdir(dir);
}

TestSuite(settings, .init = setup, .fini = teardown, .timeout = 180);

/* Runs `ENV fenta ARGS` in dir (no config file, nothing of the runner's
 * environment that names a setting); its exit status, its output in dir/out. */
static int fenta(const char *env, const char *args)
{
    int st = fx_sh(dir,
                   "env -u FENTA_CONFIG -u FENTA_LOG_LEVEL -u FENTA_PG_BINDIR -u FENTA_SCHEMAS_DIR "
                   "-u FENTA_ASR_MODEL_DIR %s timeout 120 '%s' %s >out 2>&1",
                   env, FENTA_BINARY, args);
    cr_assert(WIFEXITED(st), "fenta did not exit");
    return WEXITSTATUS(st);
}

static char *output(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/out", dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

Test(settings, pg_bindir_reaches_the_embedded_cluster)
{
    cr_assert_eq(fenta("", "migrate --data-dir d1 --pg-bindir /nonexistent/flag/bin"), 1);
    cr_expect(strstr(output(), "/nonexistent/flag/bin/initdb not found"), "%s", output());
    cr_assert_eq(fenta("FENTA_PG_BINDIR=/nonexistent/env/bin", "migrate --data-dir d2"), 1);
    cr_expect(strstr(output(), "/nonexistent/env/bin/initdb not found"), "%s", output());
    /* serve takes the same setting the same way */
    cr_assert_eq(fenta("FENTA_DATA_DIR=d3 FENTA_PG_BINDIR=/nonexistent/serve/bin",
                       "serve --listen 127.0.0.1:0"),
                 1);
    cr_expect(strstr(output(), "/nonexistent/serve/bin/initdb not found"), "%s", output());
}

Test(settings, schemas_dir_reaches_what_reads_schemas)
{
    cr_assert_eq(fenta("", "openapi --schemas-dir /nonexistent/flag/schemas"), 1);
    cr_expect(strstr(output(), "/nonexistent/flag/schemas/api.json"), "%s", output());
    cr_assert_eq(fenta("FENTA_SCHEMAS_DIR=/nonexistent/env/schemas", "openapi"), 1);
    cr_expect(strstr(output(), "/nonexistent/env/schemas/api.json"), "%s", output());
    cr_assert_eq(fenta("", "openapi --check ../../nonexistent.json"), 1, "%s", output());
    cr_expect(strstr(output(), "is out of date"), "the default folder is read: %s", output());
}

/* The embedded cluster logs "creating cluster" at info before it finds no
 * initdb (an error): the level decides which of the two lines are written. */
Test(settings, log_level_reaches_the_log)
{
    cr_assert_eq(fenta("", "migrate --data-dir d1 --pg-bindir /nonexistent --log-level debug"), 1);
    cr_expect(strstr(output(), "\"level\":\"info\""), "%s", output());
    cr_assert_eq(fenta("FENTA_LOG_LEVEL=error", "migrate --data-dir d2 --pg-bindir /nonexistent"),
                 1);
    cr_expect(!strstr(output(), "\"level\":\"info\""), "%s", output());
    cr_expect(strstr(output(), "\"level\":\"error\""), "%s", output());
    /* the flag wins over the environment */
    cr_assert_eq(fenta("FENTA_LOG_LEVEL=error",
                       "migrate --data-dir d3 --pg-bindir /nonexistent --log-level=info"),
                 1);
    cr_expect(strstr(output(), "\"level\":\"info\""), "%s", output());
}

/* A recording without its script is transcribed with the configured model:
 * a missing one fails the render naming the folder. (The stage retries a
 * missing model as a transient failure, hence the longer run.) */
Test(settings, asr_model_dir_reaches_the_render_engine)
{
    cr_assert_eq(fx_sh(dir, "espeak-ng -w voice.wav 'the quick brown fox jumps over the lazy dog' "
                            "&& echo '{\"voice\": {\"source\": {\"path\": \"voice.wav\"}}, "
                            "\"music\": null, \"profile\": \"720p\"}' > spec.json"),
                 0);
    cr_assert_eq(fenta("FENTA_ASR_MODEL_DIR=/nonexistent/env-model",
                       "render spec.json --out o1 --progress none --asr-model-dir "
                       "/nonexistent/flag-model"),
                 1);
    cr_expect(strstr(output(), "/nonexistent/flag-model/en-us"), "%s", output());
    cr_expect(!strstr(output(), "/nonexistent/env-model"), "the flag wins: %s", output());
}
