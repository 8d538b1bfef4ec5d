/* test_config.c - cli/config: every setting is filled in one place, the
 * config file < the environment < flags; a bad value or an unknown key is an
 * error naming the setting and where the value came from; the flags of a
 * setting are taken out of argv and the command's own arguments stay; the
 * log level and the schemas folder, which the runtime's modules no longer
 * read from the environment themselves, still follow FENTA_LOG_LEVEL and
 * FENTA_SCHEMAS_DIR; and docs/operations.md lists every setting as the
 * table says. Criterion runs every test in a fresh process, so setenv here
 * never leaks into another test. */
#include "cli/config.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/log.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;
static char cfg_path[1024];

/* Every variable the table names: the runner's environment (ops/test sets
 * FENTA_LOG_LEVEL) must not decide a test. */
static const char *const vars[] = {"FENTA_CONFIG",
                                   "FENTA_LISTEN",
                                   "FENTA_DATA_DIR",
                                   "DATABASE_URL",
                                   "JWT_SECRET",
                                   "FENTA_WORKERS",
                                   "FENTA_LOOPS",
                                   "FENTA_CRASH_QUARANTINE_AFTER",
                                   "FENTA_LOG_LEVEL",
                                   "FENTA_SCHEMAS_DIR",
                                   "KOKORO_URL",
                                   "KOKORO_VOICE",
                                   "KOKORO_API_KEY",
                                   "FENTA_ASR_MODEL_DIR",
                                   "FENTA_SSE_HEARTBEAT_MS",
                                   "FENTA_PG_BINDIR",
                                   "TZ",
                                   "FENTA_TEST_CLOCK_FILE"};

static void setup(void)
{
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    dir = fx_tmpdir("config");
    snprintf(cfg_path, sizeof cfg_path, "%s/cfg.json", dir);
}

static void teardown(void)
{
    fx_rmdir(dir);
}

TestSuite(config, .init = setup, .fini = teardown);
TestSuite(log_level, .init = setup, .fini = teardown);
TestSuite(schemas_dir, .init = setup, .fini = teardown);

static void write_cfg(const char *json)
{
    FILE *f = fopen(cfg_path, "w");
    cr_assert_not_null(f);
    fputs(json, f);
    fclose(f);
    setenv("FENTA_CONFIG", cfg_path, 1);
}

/* Loads for cmd from a NULL-terminated argument list (argv[0] is the
 * command); the status, with why and the arguments left in *left. */
static int load_argv(fenta_config_t *c, unsigned cmd, char **args, int *left, char *why, size_t cap)
{
    int argc = 0;
    while (args[argc])
        argc++;
    why[0] = 0;
    int rc = fenta_config_load(c, cmd, &argc, args, why, cap);
    if (left)
        *left = argc;
    return rc;
}

#define LOAD(c, cmd, why, ...)                                                                     \
    load_argv((c), (cmd), (char *[]){"serve", __VA_ARGS__, NULL}, NULL, (why), sizeof(why))

Test(config, defaults_are_the_table_s)
{
    fenta_config_t c;
    char why[512];
    cr_assert_eq(load_argv(&c, CONFIG_SERVE, (char *[]){"serve", NULL}, NULL, why, sizeof why), 0,
                 "%s", why);
    cr_expect_str_eq(c.listen, "127.0.0.1:8080");
    cr_expect_str_eq(c.data_dir, "data");
    cr_expect_null(c.database_url);
    cr_expect_eq(c.workers, 16);
    cr_expect_eq(c.loops, 0);
    cr_expect_eq(c.crash_quarantine_after, 2);
    cr_expect_eq(c.max_upload_part_bytes, 67174400);
    cr_expect_eq(c.max_connections, 4096);
    cr_expect_eq(c.presign_ttl_s, 3600);
    cr_expect_eq(c.max_running_jobs_per_org, 4);
    cr_expect_eq(c.schedule_misfire_grace_s, 60);
    cr_expect_eq(c.sse_heartbeat_ms, 15000);
    cr_expect_eq(c.log_level, LOG_INFO);
    cr_expect_str_eq(c.asr_model_dir, "/usr/share/pocketsphinx/model/en-us");
    cr_expect_str_eq(c.pg_bindir, "/usr/lib/postgresql/15/bin");
    cr_expect_null(c.pg_timezone);
    cr_expect_null(c.kokoro_url);
    cr_expect_null(c.rate_limits);
    cr_expect_not(c.insecure_cookies);
    cr_expect_str_eq(c.schemas_dir, fsutil_schemas_dir(NULL));
    cr_expect_eq(fenta_config_source(&c, "workers"), CONFIG_FROM_DEFAULT);
    fenta_config_free(&c);
}

/* Three settings of three types, each given by the file, then also by the
 * environment, then also by a flag: the later source wins every time. */
Test(config, file_then_environment_then_flag)
{
    write_cfg("{\"workers\": 3, \"listen\": \"127.0.0.1:1001\", \"sse_heartbeat_ms\": 100,"
              " \"pg_timezone\": \"Europe/Paris\"}");
    fenta_config_t c;
    char why[512];
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--log-level", "warn"), 0, "%s", why);
    cr_expect_eq(c.workers, 3);
    cr_expect_str_eq(c.listen, "127.0.0.1:1001");
    cr_expect_eq(c.sse_heartbeat_ms, 100);
    cr_expect_str_eq(c.pg_timezone, "Europe/Paris");
    cr_expect_str_eq(c.config, cfg_path);
    cr_expect_eq(fenta_config_source(&c, "workers"), CONFIG_FROM_FILE);
    fenta_config_free(&c);

    setenv("FENTA_WORKERS", "5", 1);
    setenv("FENTA_LISTEN", "127.0.0.1:1002", 1);
    setenv("FENTA_SSE_HEARTBEAT_MS", "200", 1);
    setenv("TZ", "Asia/Tokyo", 1);
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--log-level", "warn"), 0, "%s", why);
    cr_expect_eq(c.workers, 5);
    cr_expect_str_eq(c.listen, "127.0.0.1:1002");
    cr_expect_eq(c.sse_heartbeat_ms, 200);
    cr_expect_str_eq(c.pg_timezone, "Asia/Tokyo");
    cr_expect_eq(fenta_config_source(&c, "workers"), CONFIG_FROM_ENV);
    fenta_config_free(&c);

    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--workers", "7", "--listen=127.0.0.1:1003",
                      "--sse-heartbeat-ms", "300", "--pg-timezone", "UTC"),
                 0, "%s", why);
    cr_expect_eq(c.workers, 7);
    cr_expect_str_eq(c.listen, "127.0.0.1:1003");
    cr_expect_eq(c.sse_heartbeat_ms, 300);
    cr_expect_str_eq(c.pg_timezone, "UTC");
    cr_expect_eq(fenta_config_source(&c, "workers"), CONFIG_FROM_FLAG);
    fenta_config_free(&c);
}

Test(config, last_flag_wins_and_an_empty_variable_is_unset)
{
    setenv("FENTA_WORKERS", "", 1);
    setenv("KOKORO_URL", "", 1);
    fenta_config_t c;
    char why[512];
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--workers", "2", "--workers", "9"), 0, "%s", why);
    cr_expect_eq(c.workers, 9);
    cr_expect_null(c.kokoro_url, "KOKORO_URL= means espeak-ng, as before");
    fenta_config_free(&c);
}

Test(config, the_module_settings_come_from_their_variables)
{
    setenv("FENTA_ASR_MODEL_DIR", "/models/asr", 1);
    setenv("FENTA_PG_BINDIR", "/opt/pg/bin", 1);
    setenv("KOKORO_URL", "http://127.0.0.1:8880", 1);
    setenv("KOKORO_VOICE", "bf_emma", 1);
    setenv("KOKORO_API_KEY", "sk-1", 1);
    fenta_config_t c;
    char why[512];
    cr_assert_eq(load_argv(&c, CONFIG_RENDER, (char *[]){"render", NULL}, NULL, why, sizeof why), 0,
                 "%s", why);
    cr_expect_str_eq(c.asr_model_dir, "/models/asr");
    cr_expect_str_eq(c.pg_bindir, "/opt/pg/bin");
    cr_expect_str_eq(c.kokoro_url, "http://127.0.0.1:8880");
    cr_expect_str_eq(c.kokoro_voice, "bf_emma");
    cr_expect_str_eq(c.kokoro_api_key, "sk-1");
    fenta_config_free(&c);
}

/* The Kokoro key is a setting like any other: the commands pass it to the
 * speech engine (tts_config_t.kokoro_api_key), which reads no environment. */
Test(config, kokoro_api_key_from_a_flag)
{
    fenta_config_t c;
    char why[512];
    cr_assert_eq(load_argv(&c, CONFIG_RENDER,
                           (char *[]){"render", "--kokoro-api-key", "sk-flag", NULL}, NULL, why,
                           sizeof why),
                 0, "%s", why);
    cr_expect_str_eq(c.kokoro_api_key, "sk-flag");
    fenta_config_free(&c);
}

Test(config, unknown_key_in_the_file_is_named)
{
    write_cfg("{\"workers\": 3, \"wokers\": 4}");
    fenta_config_t c;
    char why[512];
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--workers", "2"), FENTA_EINVAL);
    cr_expect(strstr(why, "unknown setting \"wokers\""), "%s", why);
    cr_expect(strstr(why, cfg_path), "%s", why);
    fenta_config_free(&c);
    /* "config" names the file; it cannot be set from inside it */
    write_cfg("{\"config\": \"other.json\"}");
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--workers", "2"), FENTA_EINVAL);
    cr_expect(strstr(why, "unknown setting \"config\""), "%s", why);
    fenta_config_free(&c);
}

Test(config, a_bad_value_names_the_setting_and_its_source)
{
    fenta_config_t c;
    char why[512];
    write_cfg("{\"workers\": \"many\"}");
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--listen", "127.0.0.1:1"), FENTA_EINVAL);
    cr_expect(strstr(why, "--workers must be 1..1024"), "%s", why);
    cr_expect(strstr(why, "\"many\""), "%s", why);
    cr_expect(strstr(why, "key \"workers\""), "%s", why);
    fenta_config_free(&c);

    write_cfg("{}");
    setenv("FENTA_SSE_HEARTBEAT_MS", "5", 1);
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--listen", "127.0.0.1:1"), FENTA_EINVAL);
    cr_expect(strstr(why, "--sse-heartbeat-ms must be 10..3600000"), "%s", why);
    cr_expect(strstr(why, "from FENTA_SSE_HEARTBEAT_MS"), "%s", why);
    fenta_config_free(&c);
    unsetenv("FENTA_SSE_HEARTBEAT_MS");

    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--max-connections", "12x"), FENTA_EINVAL);
    cr_expect(strstr(why, "--max-connections must be >= 1"), "%s", why);
    cr_expect(strstr(why, "from the flag"), "%s", why);
    fenta_config_free(&c);

    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--jwt-secret", "short"), FENTA_EINVAL);
    cr_expect(strstr(why, "--jwt-secret must be at least 32 bytes"), "%s", why);
    cr_expect(!strstr(why, "short"), "a secret is never echoed: %s", why);
    fenta_config_free(&c);

    write_cfg("{\"rate_limits\": \"fast\"}");
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--listen", "127.0.0.1:1"), FENTA_EINVAL);
    cr_expect(strstr(why, "rate_limits must be an object"), "%s", why);
    fenta_config_free(&c);

    write_cfg("{\"insecure_cookies\": \"maybe\"}");
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--listen", "127.0.0.1:1"), FENTA_EINVAL);
    cr_expect(strstr(why, "insecure_cookies must be true or false"), "%s", why);
    fenta_config_free(&c);

    write_cfg("{\"listen\": 8080}");
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--workers", "2"), FENTA_EINVAL);
    cr_expect(strstr(why, "--listen must be a string"), "%s", why);
    fenta_config_free(&c);
}

Test(config, unreadable_file_and_missing_flag_value)
{
    fenta_config_t c;
    char why[512];
    write_cfg("{\"workers\": 3,");
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--listen", "127.0.0.1:1"), FENTA_EINVAL);
    cr_expect(strstr(why, cfg_path), "%s", why);
    fenta_config_free(&c);
    unsetenv("FENTA_CONFIG");
    cr_assert_eq(LOAD(&c, CONFIG_SERVE, why, "--listen", "127.0.0.1:1", "--workers"), FENTA_EINVAL);
    cr_expect(strstr(why, "--workers needs a value"), "%s", why);
    fenta_config_free(&c);
}

/* A command's own arguments, and flags of settings it does not use, stay in
 * argv for the command to read or refuse. */
Test(config, the_command_keeps_its_own_arguments)
{
    char *args[] = {"render",          "spec.json", "--out",    "dir",
                    "--kokoro-voice",  "bf_emma",   "--listen", "127.0.0.1:1",
                    "--progress=json", NULL};
    fenta_config_t c;
    char why[512];
    int left = 0;
    cr_assert_eq(load_argv(&c, CONFIG_RENDER, args, &left, why, sizeof why), 0, "%s", why);
    cr_expect_str_eq(c.kokoro_voice, "bf_emma");
    cr_expect_str_eq(c.listen, "127.0.0.1:8080", "--listen is not a setting of render");
    cr_assert_eq(left, 7);
    const char *want[] = {"render",   "spec.json",   "--out",          "dir",
                          "--listen", "127.0.0.1:1", "--progress=json"};
    for (int i = 0; i < left; i++)
        cr_expect_str_eq(args[i], want[i]);
    cr_expect_null(args[left]);
    fenta_config_free(&c);
}

/* ---- the log level (these assertions were test_log's, when runtime/log.c
 * read FENTA_LOG_LEVEL itself) ---------------------------------------------- */

/* What a command does: load, then hand the level to log. */
static void configure_log(void)
{
    fenta_config_t c;
    char why[512];
    cr_assert_eq(load_argv(&c, CONFIG_SERVE, (char *[]){"serve", NULL}, NULL, why, sizeof why), 0,
                 "%s", why);
    log_set_level((log_level_t)c.log_level);
    fenta_config_free(&c);
}

Test(log_level, level_from_environment)
{
    setenv("FENTA_LOG_LEVEL", "error", 1);
    configure_log();
    cr_assert_not(log_enabled(LOG_WARN));
    cr_assert(log_enabled(LOG_ERROR));
}

Test(log_level, level_from_environment_ignores_case)
{
    setenv("FENTA_LOG_LEVEL", "DEBUG", 1);
    configure_log();
    cr_assert(log_enabled(LOG_DEBUG));
}

Test(log_level, default_is_info)
{
    unsetenv("FENTA_LOG_LEVEL");
    configure_log();
    cr_assert_not(log_enabled(LOG_DEBUG));
    cr_assert(log_enabled(LOG_INFO));
}

Test(log_level, unknown_value_means_info)
{
    setenv("FENTA_LOG_LEVEL", "verbose", 1);
    configure_log();
    cr_assert_not(log_enabled(LOG_DEBUG));
    cr_assert(log_enabled(LOG_INFO));
}

Test(log_level, set_level_overrides_environment)
{
    setenv("FENTA_LOG_LEVEL", "error", 1);
    configure_log();
    log_set_level(LOG_DEBUG);
    cr_assert(log_enabled(LOG_DEBUG));
}

Test(log_level, flag_beats_environment)
{
    setenv("FENTA_LOG_LEVEL", "error", 1);
    fenta_config_t c;
    char why[512];
    cr_assert_eq(LOAD(&c, CONFIG_DEMO, why, "--log-level", "debug"), 0, "%s", why);
    cr_expect_eq(c.log_level, LOG_DEBUG);
    cr_expect_eq(fenta_config_source(&c, "log_level"), CONFIG_FROM_FLAG);
    fenta_config_free(&c);
}

/* ---- the schemas folder (test_fsutil's assertions on FENTA_SCHEMAS_DIR) --- */

Test(schemas_dir, environment_then_flag)
{
    const char *src = fsutil_schemas_dir(NULL);
    fenta_config_t c;
    char why[512];
    setenv("FENTA_SCHEMAS_DIR", "", 1);
    cr_assert_eq(LOAD(&c, CONFIG_OPENAPI, why, "--log-level", "info"), 0, "%s", why);
    cr_expect_str_eq(c.schemas_dir, src);
    fenta_config_free(&c);
    setenv("FENTA_SCHEMAS_DIR", "/srv/schemas", 1);
    cr_assert_eq(LOAD(&c, CONFIG_OPENAPI, why, "--log-level", "info"), 0, "%s", why);
    cr_expect_str_eq(c.schemas_dir, "/srv/schemas");
    cr_expect_str_eq(fsutil_schemas_dir(c.schemas_dir), "/srv/schemas");
    fenta_config_free(&c);
    cr_assert_eq(LOAD(&c, CONFIG_OPENAPI, why, "--schemas-dir", "/etc/fenta/schemas"), 0, "%s",
                 why);
    cr_expect_str_eq(c.schemas_dir, "/etc/fenta/schemas");
    fenta_config_free(&c);
}

/* ---- the documentation ------------------------------------------------------ */

/* docs/operations.md holds the table `fenta serve --help-config` prints,
 * row for row: a setting added, renamed or given another default fails
 * here until the page says so. */
Test(config, operations_md_lists_every_setting)
{
    char *table = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&table, &len);
    fenta_config_doc_table(m);
    fclose(m);
    char path[4096];
    snprintf(path, sizeof path, "%s/../docs/operations.md", FENTA_SOURCE_SCHEMAS);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = 0;
    int rows = 0;
    for (char *line = strtok(table, "\n"); line; line = strtok(NULL, "\n")) {
        char want[2048];
        snprintf(want, sizeof want, "\n%s\n", line);
        cr_expect(strstr(doc, want),
                  "docs/operations.md lacks the row:\n%s\n"
                  "(paste the output of 'build/fenta serve --help-config')",
                  line);
        rows++;
    }
    /* ... and nothing else: rows of settings that no longer exist are
     * found by counting the table's rows in the page. */
    const char *start = strstr(doc, "\n| key | flag | environment |");
    cr_assert_not_null(start);
    int doc_rows = 0;
    for (const char *p = start + 1; *p == '|'; p = strchr(p, '\n') + 1) {
        doc_rows++;
        if (!strchr(p, '\n'))
            break;
    }
#ifdef FENTA_TEST_HOOKS
    int hooks = 0;
#else
    int hooks = 1; /* the page also lists test_clock_file, which this build lacks */
#endif
    cr_expect_eq(doc_rows, rows + hooks, "the page's table has %d rows, the settings %d", doc_rows,
                 rows + hooks);
    free(table);
}
