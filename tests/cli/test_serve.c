/* test_serve.c - `fenta serve` options that need no server: each one can
 * come from a flag, the environment or the JSON config file (the flag wins
 * over the environment, which wins over the file), and a bad value, an
 * unknown key in the file or an unknown flag stops the command before it
 * starts anything, naming the setting. Every run is bounded by timeout(1):
 * a value wrongly accepted would start a real server. */
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *dir;

static void setup(void)
{
    dir = fx_tmpdir("serve");
}

static void teardown(void)
{
    fx_rmdir(dir);
}

TestSuite(serve, .init = setup, .fini = teardown, .timeout = 120);

/* Runs `ENV fenta serve ARGS` in dir with its data directory there; the
 * exit status, and its output in dir/out. */
static int serve(const char *env, const char *args)
{
    int st = fx_sh(dir, "%s FENTA_DATA_DIR=./data timeout 20 '%s' serve %s >out 2>&1", env,
                   FENTA_BINARY, args);
    cr_assert(WIFEXITED(st), "fenta serve did not exit");
    return WEXITSTATUS(st);
}

static char *output(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/out", dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

Test(serve, help_lists_the_crash_quarantine_setting)
{
    cr_assert_eq(serve("", "--help"), 0);
    const char *out = output();
    cr_expect(strstr(out, "--crash-quarantine-after"), "%s", out);
    cr_expect(strstr(out, "FENTA_CRASH_QUARANTINE_AFTER"), "%s", out);
}

Test(serve, crash_quarantine_after_out_of_range_is_refused_from_each_source)
{
    cr_assert_eq(serve("", "--crash-quarantine-after 0"), 2, "flag");
    cr_expect(strstr(output(), "--crash-quarantine-after must be 1..1000"), "%s", output());
    cr_assert_eq(serve("FENTA_CRASH_QUARANTINE_AFTER=1001", ""), 2, "environment");
    cr_assert_eq(fx_sh(dir, "echo '{\"crash_quarantine_after\": -1}' > cfg.json"), 0);
    cr_assert_eq(serve("FENTA_CONFIG=cfg.json", ""), 2, "config file");
    cr_expect(strstr(output(), "--crash-quarantine-after must be 1..1000"), "%s", output());
}

/* Each option is read from its own flag: a valid value of one never trips
 * another's check (a value read from its neighbour's position refused
 * `--crash-quarantine-after 3` as a too-small upload part). */
Test(serve, each_option_is_read_from_its_own_flag)
{
    cr_assert_eq(serve("", "--crash-quarantine-after 3 --max-connections 0"), 2);
    cr_expect(strstr(output(), "--max-connections must be"), "%s", output());
    cr_expect(!strstr(output(), "--max-upload-part-bytes"), "%s", output());
    cr_assert_eq(serve("", "--max-connections 10 --max-upload-part-bytes 5"), 2);
    cr_expect(strstr(output(), "--max-upload-part-bytes must be"), "%s", output());
    cr_assert_eq(serve("", "--max-upload-part-bytes 67174400 --presign-ttl-s 0"), 2);
    cr_expect(strstr(output(), "--presign-ttl-s must be"), "%s", output());
    cr_assert_eq(serve("", "--presign-ttl-s 60 --crash-quarantine-after 0"), 2);
    cr_expect(strstr(output(), "--crash-quarantine-after must be 1..1000"), "%s", output());
}

/* The config file < the environment < the flag, through the binary: each
 * source in turn gives a refused value, and the refusal names the source
 * that won; a good flag then hides the bad file and environment values. */
Test(serve, file_then_environment_then_flag)
{
    cr_assert_eq(fx_sh(dir, "echo '{\"crash_quarantine_after\": 0}' > cfg.json"), 0);
    cr_assert_eq(serve("FENTA_CONFIG=cfg.json", ""), 2, "file");
    cr_expect(strstr(output(), "from cfg.json key \"crash_quarantine_after\""), "%s", output());
    cr_assert_eq(serve("FENTA_CONFIG=cfg.json FENTA_CRASH_QUARANTINE_AFTER=1001", ""), 2, "env");
    cr_expect(strstr(output(), "(got \"1001\" from FENTA_CRASH_QUARANTINE_AFTER)"), "%s", output());
    cr_assert_eq(serve("FENTA_CONFIG=cfg.json FENTA_CRASH_QUARANTINE_AFTER=1001",
                       "--crash-quarantine-after 5000"),
                 2, "flag");
    cr_expect(strstr(output(), "(got \"5000\" from the flag)"), "%s", output());
    /* --config names the file too, and wins over FENTA_CONFIG */
    cr_assert_eq(fx_sh(dir, "echo '{\"max_connections\": 0}' > other.json"), 0);
    cr_assert_eq(serve("FENTA_CONFIG=cfg.json FENTA_CRASH_QUARANTINE_AFTER=1001",
                       "--crash-quarantine-after 3 --config other.json"),
                 2);
    cr_expect(strstr(output(), "--max-connections must be >= 1 (got \"0\" from other.json"), "%s",
              output());
}

Test(serve, unknown_setting_in_the_file_is_refused)
{
    cr_assert_eq(fx_sh(dir, "echo '{\"workers\": 2, \"wokers\": 4}' > cfg.json"), 0);
    cr_assert_eq(serve("FENTA_CONFIG=cfg.json", ""), 2);
    cr_expect(strstr(output(), "cfg.json: unknown setting \"wokers\""), "%s", output());
}

Test(serve, bad_value_in_the_file_names_the_setting)
{
    cr_assert_eq(fx_sh(dir, "echo '{\"sse_heartbeat_ms\": \"often\"}' > cfg.json"), 0);
    cr_assert_eq(serve("FENTA_CONFIG=cfg.json", ""), 2);
    cr_expect(strstr(output(), "--sse-heartbeat-ms must be 10..3600000 (got \"often\" from "
                               "cfg.json key \"sse_heartbeat_ms\")"),
              "%s", output());
}

Test(serve, unknown_flag_is_refused)
{
    cr_assert_eq(serve("", "--wokers 4"), 2);
    cr_expect(strstr(output(), "unknown option '--wokers'"), "%s", output());
    cr_assert_eq(serve("", "--workers"), 2);
    cr_expect(strstr(output(), "--workers needs a value"), "%s", output());
}

Test(serve, help_lists_every_setting_from_the_table)
{
    cr_assert_eq(serve("", "--help"), 0);
    const char *out = output();
    const char *want[] = {"--sse-heartbeat-ms",
                          "FENTA_SSE_HEARTBEAT_MS",
                          "--pg-bindir",
                          "FENTA_PG_BINDIR",
                          "--asr-model-dir",
                          "--kokoro-url",
                          "KOKORO_API_KEY",
                          "rate_limits",
                          "webhooks"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(out, want[i]), "%s missing from:\n%s", want[i], out);
    cr_assert_eq(serve("", "--help-config"), 0);
    cr_expect(strstr(output(), "| `sse_heartbeat_ms` | `--sse-heartbeat-ms` | "
                               "`FENTA_SSE_HEARTBEAT_MS` | 15000 |"),
              "%s", output());
}
