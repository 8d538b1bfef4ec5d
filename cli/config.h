/* config.h - every setting of the fenta binary in one structure, filled in
 * one place: defaults < config file (FENTA_CONFIG, --config) < environment
 * < flags.
 *
 * The settings are declared once, in the table in config.c: flag,
 * environment variable, config-file key, type, default, help and the
 * commands that use it. Loading, checking, `fenta serve --help` and the
 * table in docs/operations.md (`fenta serve --help-config`) all walk that
 * table, so a setting cannot be accepted by one command and unknown to
 * another, or documented under a name the code does not read.
 *
 * Modules below cli/ never read the environment: a command loads this
 * structure and passes each module the fields it needs, at creation (the
 * ASR model folder to the render engine, the SSE heartbeat to the API
 * application, the PostgreSQL tools and time zone to the embedded
 * cluster, the log level to log_set_level, the schemas folder to
 * everything that reads schemas/). */
#ifndef FENTA_CONFIG_H
#define FENTA_CONFIG_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The commands a setting belongs to (a bit mask). A command accepts the
 * flags of its own settings only; the config file and the environment may
 * hold any known setting (one file serves every command). */
enum {
    CONFIG_SERVE = 1 << 0,
    CONFIG_MIGRATE = 1 << 1,
    CONFIG_RENDER = 1 << 2,
    CONFIG_DEMO = 1 << 3,
    CONFIG_OPENAPI = 1 << 4,
};

/* Where a setting's value came from. */
typedef enum {
    CONFIG_FROM_DEFAULT = 0,
    CONFIG_FROM_FILE,
    CONFIG_FROM_ENV,
    CONFIG_FROM_FLAG,
} config_source_t;

/* Every setting. Strings are owned by the structure (NULL: not set and no
 * default); JSON objects hold a reference. fenta_config_free releases them. */
typedef struct fenta_config {
    char *config;                   /* the JSON config file read; NULL = none */
    char *listen;                   /* host:port of the API */
    char *data_dir;                 /* embedded database, mailboxes, objects, secrets */
    char *database_url;             /* external PostgreSQL; NULL = the embedded cluster */
    char *jwt_secret;               /* token secret; NULL = generated into DATA_DIR/jwt_secret */
    char *tls_cert, *tls_key;       /* PEM files; NULL = plain HTTP */
    int loops;                      /* event-loop threads; 0 = one per core */
    int workers;                    /* handler threads */
    int crash_quarantine_after;     /* process crashes before a message is quarantined */
    size_t max_upload_part_bytes;   /* the largest body h2o reads at all */
    size_t max_connections;         /* open client connections */
    int presign_ttl_s;              /* lifetime of presigned download URLs */
    int max_running_jobs_per_org;   /* running-jobs cap of an organisation */
    int schedule_misfire_grace_s;   /* a schedule firing later than this is a misfire */
    json_t *rate_limits;            /* rate limits (http/ratelimit.h format); NULL = defaults */
    json_t *webhooks;               /* the outbound webhook client's options; NULL = defaults */
    bool insecure_cookies;          /* cookies without Secure (plain-HTTP development) */
    bool cheap_passwords_for_tests; /* cheap argon2 parameters (tests only) */
    int bench_constant_bytes;       /* GET /bench/constant's body size; 0 = no such route */
    char *test_clock_file;          /* test builds: the clock skew file (runtime/clock.h) */
    int log_level;                  /* log_level_t: the lowest level written */
    char *schemas_dir;              /* migrations, JSON Schemas, node types, templates */
    char *kokoro_url;               /* Kokoro TTS base URL; NULL = espeak-ng offline */
    char *kokoro_voice;             /* Kokoro voice; NULL = the TTS module's default */
    char *kokoro_api_key;           /* bearer token for Kokoro; NULL = none */
    char *asr_model_dir;            /* pocketsphinx model folder (asr.h layout) */
    int sse_heartbeat_ms;           /* comment line on every SSE stream this often */
    char *pg_bindir;                /* PostgreSQL 15 tools for the embedded cluster */
    char *pg_timezone;              /* TZ of the embedded cluster's tools; NULL = theirs */
    unsigned char source[40];       /* config_source_t of each table row, in table order */
} fenta_config_t;

/* Fills cfg (overwritten whole) for the command cmd (a CONFIG_* bit) from
 * the defaults, then the config file, the environment, and the flags in
 * argv[1..*argc-1]. The flags of cmd's settings (`--name VALUE` or
 * `--name=VALUE`, the last one winning) are taken out of argv, which keeps
 * argv[0] and the command's own arguments in order; *argc becomes their
 * count. 0, or FENTA_EINVAL (or FENTA_ENOMEM) with one line in why naming
 * the setting, the value and where it came from: an unreadable config
 * file, an unknown key in it, a value of the wrong type or out of range, a
 * flag without its value. cfg needs fenta_config_free either way. */
int fenta_config_load(fenta_config_t *cfg, unsigned cmd, int *argc, char **argv, char *why,
                      size_t cap);
/* Releases what cfg owns and zeroes it; NULL is a no-op. */
void fenta_config_free(fenta_config_t *cfg);
/* Where the setting with config-file key key (or "config") came from;
 * CONFIG_FROM_DEFAULT for an unknown key. */
config_source_t fenta_config_source(const fenta_config_t *cfg, const char *key);


/* Prints the settings of cmd as `--help` lists them: flag, environment
 * variable, help and default, one setting a line. */
void fenta_config_usage(FILE *out, unsigned cmd);
/* Prints the Markdown table of every setting (key, flag, environment,
 * default, commands, meaning) that docs/operations.md holds. */
void fenta_config_doc_table(FILE *out);

#endif
