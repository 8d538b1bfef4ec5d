/* config.c - the one table of fenta's settings, and the one function that
 * fills fenta_config_t from it: defaults < config file < environment <
 * flags (see config.h). */
#include "cli/config.h"
#include "actors/speech/asr.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/log.h"
#include "storage/embedded.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    T_STR,    /* char *; from a file: a string */
    T_INT,    /* int in [min, max] */
    T_SIZE,   /* size_t in [min, max] */
    T_BOOL,   /* bool: true/false (also 1/0, yes/no, on/off outside the file) */
    T_OBJECT, /* json_t * object; the config file only */
    T_LEVEL,  /* int log level: debug, info, warn, error (any case) */
} type_t;

#define ALL (CONFIG_SERVE | CONFIG_MIGRATE | CONFIG_RENDER | CONFIG_DEMO | CONFIG_OPENAPI)
#define NOMAX LLONG_MAX

typedef struct {
    const char *key;     /* config-file key; also the name fenta_config_source takes */
    const char *flag;    /* --flag; NULL = none (config file only) */
    const char *env;     /* environment variable; NULL = none */
    type_t type;         /* how the value is read and stored */
    size_t off;          /* the field in fenta_config_t */
    const char *def;     /* the default, read like any other value; NULL = unset */
    const char *def_doc; /* the default as help and docs say it; NULL = def */
    long long min, max;  /* T_INT, T_SIZE: range; T_STR: min = least length */
    unsigned cmds;       /* CONFIG_* commands that use it */
    const char *help;    /* one line */
} setting_t;

#define F(field) offsetof(fenta_config_t, field)

/* Every setting, once. Row 0 names the config file itself (it cannot be
 * set from the file). The order is the order of --help and of the docs. */
static const setting_t settings[] = {
    {"config", "--config", "FENTA_CONFIG", T_STR, F(config), NULL, "none", 0, 0, ALL,
     "JSON file holding any of these settings by key"},
    {"listen", "--listen", "FENTA_LISTEN", T_STR, F(listen), "127.0.0.1:8080", NULL, 0, 0,
     CONFIG_SERVE, "address to listen on"},
    {"data_dir", "--data-dir", "FENTA_DATA_DIR", T_STR, F(data_dir), "data", "./data", 0, 0,
     CONFIG_SERVE | CONFIG_MIGRATE,
     "data directory: embedded database, mailboxes, objects, secrets"},
    {"database_url", "--database-url", "DATABASE_URL", T_STR, F(database_url), NULL,
     "embedded cluster", 0, 0, CONFIG_SERVE | CONFIG_MIGRATE,
     "PostgreSQL connection string; unset: a private cluster in the data directory"},
    {"jwt_secret", "--jwt-secret", "JWT_SECRET", T_STR, F(jwt_secret), NULL,
     "generated once into DATA_DIR/jwt_secret", 32, 0, CONFIG_SERVE,
     "token signing secret (at least 32 bytes)"},
    {"tls_cert", "--tls-cert", "FENTA_TLS_CERT", T_STR, F(tls_cert), NULL, "plain HTTP (h2c)", 0, 0,
     CONFIG_SERVE, "PEM certificate chain: enables TLS with ALPN h2"},
    {"tls_key", "--tls-key", "FENTA_TLS_KEY", T_STR, F(tls_key), NULL, "none", 0, 0, CONFIG_SERVE,
     "PEM private key for --tls-cert"},
    {"loops", "--loops", "FENTA_LOOPS", T_INT, F(loops), "0", "0: one per core", 0, 256,
     CONFIG_SERVE, "event-loop threads"},
    {"workers", "--workers", "FENTA_WORKERS", T_INT, F(workers), "16", NULL, 1, 1024, CONFIG_SERVE,
     "handler threads"},
    {"crash_quarantine_after", "--crash-quarantine-after", "FENTA_CRASH_QUARANTINE_AFTER", T_INT,
     F(crash_quarantine_after), "2", NULL, 1, 1000, CONFIG_SERVE,
     "times a message may crash the process before it goes to the dead-letter queue"},
    {"max_upload_part_bytes", "--max-upload-part-bytes", "FENTA_MAX_UPLOAD_PART_BYTES", T_SIZE,
     F(max_upload_part_bytes), "67174400", "67174400 (64 MiB + 64 KiB)", 1024 * 1024, NOMAX,
     CONFIG_SERVE,
     "largest request body read at all; each route's own limit (schemas/api.json) answers 413 "
     "below it"},
    {"max_connections", "--max-connections", "FENTA_MAX_CONNECTIONS", T_SIZE, F(max_connections),
     "4096", NULL, 1, NOMAX, CONFIG_SERVE, "open client connections; more are closed on accept"},
    {"presign_ttl_s", "--presign-ttl-s", "FENTA_PRESIGN_TTL_S", T_INT, F(presign_ttl_s), "3600",
     NULL, 1, 7 * 86400, CONFIG_SERVE,
     /* a week at most: a download link is not a share link */
     "lifetime of presigned download URLs, the most ?expires_in may ask"},
    {"max_running_jobs_per_org", "--max-running-jobs-per-org", "FENTA_MAX_RUNNING_JOBS_PER_ORG",
     T_INT, F(max_running_jobs_per_org), "4", NULL, 1, 100000, CONFIG_SERVE,
     "jobs of one organisation running at once; the rest wait queued"},
    {"schedule_misfire_grace_s", "--schedule-misfire-grace-s", "FENTA_SCHEDULE_MISFIRE_GRACE_S",
     T_INT, F(schedule_misfire_grace_s), "60", NULL, 1, 7 * 86400, CONFIG_SERVE,
     "a schedule firing later than this after its due time is a misfire"},
    {"rate_limits", NULL, NULL, T_OBJECT, F(rate_limits), NULL, "built in", 0, 0, CONFIG_SERVE,
     "{\"ip\":{\"rate\":R,\"burst\":B},\"user\":{...},\"routes\":{\"POST /v1/auth/login\":{...}}}"},
    {"webhooks", NULL, NULL, T_OBJECT, F(webhooks), NULL, "built in", 0, 0, CONFIG_SERVE,
     "outbound webhooks: retry_ms, connect_timeout_ms, timeout_ms, allow_loopback, "
     "allow_private, disable_after_ms, max_per_endpoint"},
    {"insecure_cookies", NULL, NULL, T_BOOL, F(insecure_cookies), "false", NULL, 0, 0, CONFIG_SERVE,
     "cookies without Secure: plain-HTTP development only"},
    {"cheap_passwords_for_tests", NULL, NULL, T_BOOL, F(cheap_passwords_for_tests), "false", NULL,
     0, 0, CONFIG_SERVE, "tests only: cheap argon2 parameters"},
    {"bench_constant_bytes", NULL, NULL, T_INT, F(bench_constant_bytes), "0", "0: no such route", 0,
     (1 << 20) - 1, CONFIG_SERVE,
     "benchmarks only: GET /bench/constant answers a body of this many bytes"},
#ifdef FENTA_TEST_HOOKS
    /* Only in a build with -DFENTA_TEST_HOOKS=ON (ops/test): a shipped binary
     * has no way to move its clock. */
    {"test_clock_file", "--test-clock-file", "FENTA_TEST_CLOCK_FILE", T_STR, F(test_clock_file),
     NULL, "none", 0, 0, CONFIG_SERVE,
     "tests only: a file holding milliseconds the clock runs ahead by (runtime/clock.h)"},
#endif
    {"log_level", "--log-level", "FENTA_LOG_LEVEL", T_LEVEL, F(log_level), "info",
     "info (render: warn, demo: error)", 0, 0, ALL,
     "lowest level logged: debug, info, warn or error"},
    {"schemas_dir", "--schemas-dir", "FENTA_SCHEMAS_DIR", T_STR, F(schemas_dir), NULL,
     "the source tree's schemas/", 0, 0,
     CONFIG_SERVE | CONFIG_MIGRATE | CONFIG_RENDER | CONFIG_OPENAPI,
     "migrations, JSON Schemas, node types, templates, the OpenAPI document"},
    {"kokoro_url", "--kokoro-url", "KOKORO_URL", T_STR, F(kokoro_url), NULL, "espeak-ng offline", 0,
     0, CONFIG_SERVE | CONFIG_RENDER, "Kokoro TTS server (its OpenAI-style speech API)"},
    {"kokoro_voice", "--kokoro-voice", "KOKORO_VOICE", T_STR, F(kokoro_voice), NULL, "af_heart", 0,
     0, CONFIG_SERVE | CONFIG_RENDER, "Kokoro voice"},
    {"kokoro_api_key", "--kokoro-api-key", "KOKORO_API_KEY", T_STR, F(kokoro_api_key), NULL, "none",
     0, 0, CONFIG_SERVE | CONFIG_RENDER, "sent to Kokoro as a bearer token"},
    {"asr_model_dir", "--asr-model-dir", "FENTA_ASR_MODEL_DIR", T_STR, F(asr_model_dir),
     ASR_DEFAULT_MODEL_DIR, NULL, 0, 0, CONFIG_SERVE | CONFIG_RENDER,
     "pocketsphinx model: en-us/, en-us.lm.bin, cmudict-en-us.dict"},
    {"sse_heartbeat_ms", "--sse-heartbeat-ms", "FENTA_SSE_HEARTBEAT_MS", T_INT, F(sse_heartbeat_ms),
     "15000", NULL, 10, 3600 * 1000, CONFIG_SERVE,
     "a comment line on every event stream this often (finds closed streams)"},
    {"pg_bindir", "--pg-bindir", "FENTA_PG_BINDIR", T_STR, F(pg_bindir), EMBEDDED_PG_BINDIR, NULL,
     0, 0, CONFIG_SERVE | CONFIG_MIGRATE, "PostgreSQL 15 tools for the embedded cluster"},
    {"pg_timezone", "--pg-timezone", "TZ", T_STR, F(pg_timezone), NULL, "the system's", 0, 0,
     CONFIG_SERVE | CONFIG_MIGRATE, "time zone given to the embedded cluster's tools"},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])
_Static_assert(NSETTINGS <= sizeof((fenta_config_t *)0)->source, "source[] too small");

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* ---- one value ------------------------------------------------------------- */

/* Where a value came from, for messages: `FENTA_WORKERS`, `cfg.json key
 * "workers"`, `the flag`. */
static void origin(const fenta_config_t *cfg, const setting_t *s, config_source_t src, char *out,
                   size_t cap)
{
    if (src == CONFIG_FROM_ENV)
        snprintf(out, cap, "%s", s->env);
    else if (src == CONFIG_FROM_FILE)
        snprintf(out, cap, "%s key \"%s\"", cfg->config, s->key);
    else if (src == CONFIG_FROM_FLAG)
        snprintf(out, cap, "the flag");
    else
        snprintf(out, cap, "the default");
}

static const char *name_of(const setting_t *s)
{
    return s->flag ? s->flag : s->key;
}

static int bad(const fenta_config_t *cfg, const setting_t *s, config_source_t src, const char *text,
               char *why, size_t cap, const char *rule)
{
    char from[600];
    origin(cfg, s, src, from, sizeof from);
    return fenta_fail(why, cap, FENTA_EINVAL, "%s must be %s (got \"%.200s\" from %s)", name_of(s),
                      rule, text, from);
}

/* Strict decimal: digits only, with an optional minus sign; no spaces. */
static bool parse_ll(const char *text, long long *v)
{
    if (!text || !*text ||
        strspn(text + (*text == '-'), "0123456789") != strlen(text) - (*text == '-'))
        return false;
    errno = 0;
    *v = strtoll(text, NULL, 10);
    return errno == 0 && strlen(text) > (size_t)(*text == '-');
}

static bool parse_bool(const char *text, bool *v)
{
    static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0", "no",
                                                                                "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *v = true, true;
        if (strcasecmp(text, no[i]) == 0)
            return *v = false, true;
    }
    return false;
}

/* Sets s's field from text (any source) or, for objects and booleans of
 * the file, from j. */
static int set_value(fenta_config_t *cfg, const setting_t *s, config_source_t src, const char *text,
                     const json_t *j, char *why, size_t cap)
{
    void *field = (char *)cfg + s->off;
    char rule[96];
    switch (s->type) {
    case T_STR: {
        if (!text)
            return bad(cfg, s, src, "(not a string)", why, cap, "a string");
        if ((long long)strlen(text) < s->min) {
            snprintf(rule, sizeof rule, "at least %lld bytes", s->min);
            return bad(cfg, s, src, "(hidden)", why, cap, rule);
        }
        char *copy = strdup(text);
        if (!copy)
            return fenta_fail(why, cap, FENTA_ENOMEM, "out of memory");
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case T_INT:
    case T_SIZE: {
        if (s->max == NOMAX)
            snprintf(rule, sizeof rule, ">= %lld", s->min);
        else
            snprintf(rule, sizeof rule, "%lld..%lld", s->min, s->max);
        long long v;
        if (!text || !parse_ll(text, &v) || v < s->min || v > s->max)
            return bad(cfg, s, src, text ? text : "(not a number)", why, cap, rule);
        if (s->type == T_INT)
            *(int *)field = (int)v;
        else
            *(size_t *)field = (size_t)v;
        return 0;
    }
    case T_BOOL: {
        bool v;
        if (j && json_is_boolean(j))
            v = json_is_true(j);
        else if (!text || !parse_bool(text, &v))
            return bad(cfg, s, src, text ? text : "(not a boolean)", why, cap, "true or false");
        *(bool *)field = v;
        return 0;
    }
    case T_OBJECT:
        if (!json_is_object(j))
            return bad(cfg, s, src, "(not an object)", why, cap, "an object");
        json_decref(*(json_t **)field);
        *(json_t **)field = json_incref((json_t *)j);
        return 0;
    case T_LEVEL:
        if (!text)
            return bad(cfg, s, src, "(not a string)", why, cap, "debug, info, warn or error");
        for (int l = 0; l < 4; l++)
            if (strcasecmp(text, level_names[l]) == 0)
                return *(int *)field = l, 0;
        /* An unknown level logs at info, as it always has: a typo in how
         * much to log must not keep a server down. It is said, though. */
        char from[600];
        origin(cfg, s, src, from, sizeof from);
        fprintf(stderr, "fenta: %s \"%.100s\" from %s is not debug, info, warn or error: info\n",
                name_of(s), text, from);
        *(int *)field = LOG_INFO;
        return 0;
    }
    return FENTA_EINVAL; /* not reached: every type is handled */
}

/* ---- the sources ----------------------------------------------------------- */

static const setting_t *by_key(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

/* Takes the flags of cmd's settings out of argv, keeping the last value of
 * each in flags[]. */
static int take_flags(unsigned cmd, int *argc, char **argv, const char *flags[], char *why,
                      size_t cap)
{
    int out = 1;
    for (int a = 1; a < *argc; a++) {
        const char *arg = argv[a], *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
        size_t i = 0;
        if (strncmp(arg, "--", 2) == 0)
            for (; i < NSETTINGS; i++)
                if ((settings[i].cmds & cmd) && settings[i].flag && strlen(settings[i].flag) == n &&
                    strncmp(settings[i].flag, arg, n) == 0)
                    break;
        if (strncmp(arg, "--", 2) != 0 || i == NSETTINGS) {
            argv[out++] = argv[a]; /* the command's own */
            continue;
        }
        if (eq) {
            flags[i] = eq + 1;
        } else if (a + 1 < *argc) {
            flags[i] = argv[++a];
        } else {
            return fenta_fail(why, cap, FENTA_EINVAL, "%s needs a value", settings[i].flag);
        }
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

static const char *env_value(const setting_t *s)
{
    /* An empty variable counts as unset, so `X= fenta ...` restores the default. */
    const char *e = s->env ? getenv(s->env) : NULL;
    return e && *e ? e : NULL;
}

/* Reads the config file named by cfg->config into *doc, checking that every
 * key is a setting. */
static int read_file(const fenta_config_t *cfg, json_t **doc, char *why, size_t cap)
{
    json_error_t e;
    *doc = json_load_file(cfg->config, JSON_REJECT_DUPLICATES, &e);
    if (!*doc)
        return fenta_fail(why, cap, FENTA_EINVAL, "%s:%d: %s", cfg->config, e.line, e.text);
    if (!json_is_object(*doc))
        return fenta_fail(why, cap, FENTA_EINVAL, "%s: not a JSON object", cfg->config);
    const char *key;
    json_t *v;
    json_object_foreach(*doc, key, v)
    {
        const setting_t *s = by_key(key);
        if (!s || s == &settings[0])
            return fenta_fail(why, cap, FENTA_EINVAL,
                              "%s: unknown setting \"%.100s\" (fenta serve --help lists them)",
                              cfg->config, key);
    }
    return 0;
}

int fenta_config_load(fenta_config_t *cfg, unsigned cmd, int *argc, char **argv, char *why,
                      size_t cap)
{
    memset(cfg, 0, sizeof *cfg);
    const char *flags[NSETTINGS] = {0};
    int rc = take_flags(cmd, argc, argv, flags, why, cap);
    json_t *doc = NULL;
    for (size_t i = 0; rc == 0 && i < NSETTINGS; i++) {
        const setting_t *s = &settings[i];
        config_source_t src = CONFIG_FROM_DEFAULT;
        const char *text = s->def;
        const json_t *j = NULL;
        char num[32];
        if (doc && (j = json_object_get(doc, s->key))) {
            src = CONFIG_FROM_FILE;
            if (json_is_integer(j)) {
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(j));
                text = s->type == T_STR ? NULL : num; /* a number is no path or URL */
            } else {
                text = json_string_value(j); /* NULL for a boolean or an object */
            }
        }
        if (env_value(s)) {
            src = CONFIG_FROM_ENV;
            text = env_value(s);
            j = NULL;
        }
        if (flags[i]) {
            src = CONFIG_FROM_FLAG;
            text = flags[i];
            j = NULL;
        }
        if (src != CONFIG_FROM_DEFAULT || text)
            rc = set_value(cfg, s, src, text, j, why, cap);
        cfg->source[i] = (unsigned char)src;
        /* The file is read once its own name is known (row 0), before any
         * setting it may hold. */
        if (rc == 0 && i == 0 && cfg->config)
            rc = read_file(cfg, &doc, why, cap);
    }
    json_decref(doc);
    if (rc == 0 && !cfg->schemas_dir && !(cfg->schemas_dir = strdup(fsutil_schemas_dir(NULL))))
        rc = fenta_fail(why, cap, FENTA_ENOMEM, "out of memory");
    return rc;
}

void fenta_config_free(fenta_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NSETTINGS; i++) {
        void *field = (char *)cfg + settings[i].off;
        if (settings[i].type == T_STR)
            free(*(char **)field);
        else if (settings[i].type == T_OBJECT)
            json_decref(*(json_t **)field);
    }
    memset(cfg, 0, sizeof *cfg);
}

config_source_t fenta_config_source(const fenta_config_t *cfg, const char *key)
{
    const setting_t *s = by_key(key);
    return s ? (config_source_t)cfg->source[s - settings] : CONFIG_FROM_DEFAULT;
}

/* ---- help and docs --------------------------------------------------------- */

static const char *default_of(const setting_t *s)
{
    return s->def_doc ? s->def_doc : s->def ? s->def : "none";
}

void fenta_config_usage(FILE *out, unsigned cmd)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if ((settings[i].cmds & cmd) && settings[i].flag)
            fprintf(out, "  %-27s %-31s %s (default: %s)\n", settings[i].flag, settings[i].env,
                    settings[i].help, default_of(&settings[i]));
    bool head = false;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (!(settings[i].cmds & cmd) || settings[i].flag)
            continue;
        if (!head)
            fprintf(out, "\nOnly in the config file:\n");
        head = true;
        fprintf(out, "  %-27s %s (default: %s)\n", settings[i].key, settings[i].help,
                default_of(&settings[i]));
    }
}

/* `a`, with pipes escaped for a Markdown table cell. */
static void cell(FILE *out, const char *a, bool code)
{
    if (!a) {
        fputs(" - |", out);
        return;
    }
    fputs(code ? " `" : " ", out);
    for (; *a; a++)
        fputs(*a == '|' ? "\\|" : (char[]){*a, 0}, out);
    fputs(code ? "` |" : " |", out);
}

void fenta_config_doc_table(FILE *out)
{
    static const char *const cmd_names[] = {"serve", "migrate", "render", "demo", "openapi"};
    fprintf(out, "| key | flag | environment | default | commands | what |\n"
                 "| --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting_t *s = &settings[i];
        fputc('|', out);
        cell(out, s == &settings[0] ? NULL : s->key, true);
        cell(out, s->flag, true);
        cell(out, s->env, true);
        cell(out, default_of(s), false);
        char cmds[64] = "";
        for (size_t c = 0; c < 5; c++)
            if (s->cmds & (1u << c))
                snprintf(cmds + strlen(cmds), sizeof cmds - strlen(cmds), "%s%s",
                         cmds[0] ? ", " : "", cmd_names[c]);
        cell(out, s->cmds == ALL ? "all" : cmds, false);
        cell(out, s->help, false);
        fputc('\n', out);
    }
}
