/* migrate.c - apply numbered SQL files in order, once each (see migrate.h).
 *
 * Two phases. First one transaction checks every recorded migration against
 * its file (a changed file stops everything before anything is applied).
 * Then each pending file gets its own transaction: advisory lock, re-check
 * (another migrator may have applied it while we waited), the file, its row.
 * The lock is transaction-scoped so a migrator that dies releases it. */
#include "storage/migrate.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/strbuf.h"
#include "runtime/vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIG_MAX_BYTES (16 << 20) /* largest migration file */
/* Key of the advisory lock all migrators take (hashed to int4 by the server). */
#define MIG_LOCK_KEY "fenta.schema_migrations"

/* One migration file. */
typedef struct {
    int version;       /* NNN */
    char *file;        /* file name, for messages */
    char *name;        /* the name part */
    char *sql;         /* contents */
    char checksum[65]; /* SHA-256 of contents, hex */
    bool applied;      /* recorded in schema_migrations */
} mig_t;

/* What the transactions of one migrate_apply share. */
typedef struct {
    mig_t *migs;  /* sorted by version */
    int n;        /* entries in migs */
    mig_t *cur;   /* the file being applied (phase two) */
    bool skipped; /* cur turned out to be applied by someone else */
} mig_run_t;

static const char *const SQL_LOCK = "SELECT pg_advisory_xact_lock(hashtext($1))";
static const char *const SQL_TABLE =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version int PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(), checksum text NOT NULL)";

/* ---- files -------------------------------------------------------------------- */

/* Parses NNN_name.sql; 1 if it has that form, 0 if not. */
static int parse_name(const char *fname, int *version, char **name)
{
    const char *p = fname;
    long v = 0;
    if (*p < '0' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > INT_MAX)
            return 0;
    }
    if (*p++ != '_')
        return 0;
    size_t len = strlen(p);
    if (len <= 4 || strcmp(p + len - 4, ".sql") != 0)
        return 0;
    for (size_t i = 0; i < len - 4; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    *version = (int)v;
    *name = strndup(p, len - 4);
    return *name ? 1 : 0;
}

static int read_file(const char *path, char **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FENTA_EIO;
    strbuf_t text = STRBUF_INIT;
    char chunk[4096];
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = FENTA_EIO;
            break;
        }
        strbuf_append_len(&text, chunk, (size_t)n);
        if (strbuf_failed(&text)) {
            rc = FENTA_ENOMEM;
            break;
        }
        if (strbuf_len(&text) >= MIG_MAX_BYTES) {
            rc = FENTA_ETOOBIG;
            break;
        }
    }
    close(fd);
    if (rc == 0 && memchr(strbuf_str(&text), '\0', strbuf_len(&text)))
        rc = FENTA_EINVAL; /* the simple protocol would cut the text there */
    if (rc != 0) {
        strbuf_free(&text);
        return rc;
    }
    *out = strbuf_take(&text, NULL);
    return *out ? 0 : FENTA_ENOMEM;
}

static void sha256_hex(const char *data, char out[65])
{
    uint8_t md[CRYPTO_SHA256_LEN] = {0};
    crypto_sha256(data, strlen(data), md);
    crypto_hex(md, sizeof md, out);
}

static int cmp_version(const void *a, const void *b)
{
    const mig_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static void migs_free(mig_t *migs, int n)
{
    for (int i = 0; i < n; i++) {
        free(migs[i].file);
        free(migs[i].name);
        free(migs[i].sql);
    }
    free(migs);
}

/* Reads dir's migrations, sorted; 0 or an error (logged). */
static int load_dir(const char *dir, mig_t **out, int *nout)
{
    DIR *d = opendir(dir);
    if (!d) {
        log_msg(LOG_ERROR, NULL, "migrate: cannot open %s: %s", dir, strerror(errno));
        return FENTA_EIO;
    }
    mig_t *migs = NULL;
    int n = 0, rc = 0;
    size_t cap = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 4, ".sql") != 0)
            continue; /* READMEs and the like */
        mig_t m = {0};
        if (!parse_name(de->d_name, &m.version, &m.name)) {
            log_kv(LOG_ERROR, NULL, "migrate: file not named NNN_name.sql",
                   (const char *[]){"file", de->d_name, NULL});
            rc = FENTA_EINVAL;
            break;
        }
        char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0 || !(m.file = strdup(de->d_name))) {
            free(path);
            free(m.name);
            rc = FENTA_ENOMEM;
            break;
        }
        rc = read_file(path, &m.sql);
        if (rc != 0)
            log_kv(LOG_ERROR, NULL, "migrate: cannot read migration",
                   (const char *[]){"file", path, "error", fenta_strerror(rc), NULL});
        free(path);
        if (rc == 0)
            rc = vec_reserve(migs, cap, (size_t)n + 1);
        if (rc != 0) {
            free(m.file);
            free(m.name);
            free(m.sql);
            break;
        }
        sha256_hex(m.sql, m.checksum);
        migs[n++] = m;
    }
    closedir(d);
    if (rc == 0 && n > 1) {
        qsort(migs, (size_t)n, sizeof *migs, cmp_version);
        for (int i = 1; i < n && rc == 0; i++)
            if (migs[i].version == migs[i - 1].version) {
                log_kv(LOG_ERROR, NULL, "migrate: two files with one version",
                       (const char *[]){"file", migs[i - 1].file, "other", migs[i].file, NULL});
                rc = FENTA_EINVAL;
            }
    }
    if (rc != 0) {
        migs_free(migs, n);
        return rc;
    }
    *out = migs;
    *nout = n;
    return 0;
}

/* ---- transactions ---------------------------------------------------------------- */

static int lock_and_table(pg_conn_t *c)
{
    const char *key[] = {MIG_LOCK_KEY};
    int rc = pg_exec(c, SQL_LOCK, 1, key);
    if (rc >= 0)
        rc = pg_exec_script(c, SQL_TABLE);
    if (rc < 0)
        log_msg(LOG_ERROR, NULL, "migrate: cannot prepare schema_migrations: %s",
                pg_error_message(c));
    return rc < 0 ? rc : 0;
}

static mig_t *find(mig_run_t *run, int version)
{
    mig_t key = {.version = version};
    return bsearch(&key, run->migs, (size_t)run->n, sizeof key, cmp_version);
}

static int checksum_mismatch(const mig_t *m, const char *recorded)
{
    log_kv(LOG_ERROR, NULL,
           "migrate: an applied migration was changed; restore the file and add a new migration",
           (const char *[]){"file", m->file, "recorded_checksum", recorded, "file_checksum",
                            m->checksum, NULL});
    return FENTA_ECONFLICT;
}

/* Phase one: every recorded migration still matches its file. */
static int tx_check(pg_conn_t *c, void *arg)
{
    mig_run_t *run = arg;
    int rc = lock_and_table(c);
    if (rc != 0)
        return rc;
    pg_result_t *r = pg_query(c, "SELECT version, checksum FROM schema_migrations ORDER BY version",
                              0, NULL, &rc);
    if (!r)
        return rc;
    for (int i = 0; i < run->n; i++)
        run->migs[i].applied = false;
    for (int row = 0; row < pg_nrows(r) && rc == 0; row++) {
        const char *v = pg_get(r, row, 0), *sum = pg_get(r, row, 1);
        mig_t *m = v ? find(run, atoi(v)) : NULL;
        if (!m) {
            log_kv(LOG_WARN, NULL, "migrate: database has a migration this build does not know",
                   (const char *[]){"version", v ? v : "?", NULL});
            continue;
        }
        if (!sum || strcmp(sum, m->checksum) != 0)
            rc = checksum_mismatch(m, sum ? sum : "");
        m->applied = true;
    }
    pg_result_free(&r);
    return rc;
}

/* Phase two: one pending file, unless another migrator got there first. */
static int tx_apply(pg_conn_t *c, void *arg)
{
    mig_run_t *run = arg;
    mig_t *m = run->cur;
    run->skipped = false;
    int rc = lock_and_table(c);
    if (rc != 0)
        return rc;
    char ver[16];
    snprintf(ver, sizeof ver, "%d", m->version);
    const char *p1[] = {ver};
    pg_result_t *r =
        pg_query(c, "SELECT checksum FROM schema_migrations WHERE version = $1", 1, p1, &rc);
    if (!r)
        return rc;
    if (pg_nrows(r) > 0) {
        const char *sum = pg_get(r, 0, 0);
        rc = sum && !strcmp(sum, m->checksum) ? 0 : checksum_mismatch(m, sum ? sum : "");
        run->skipped = true;
        pg_result_free(&r);
        return rc;
    }
    pg_result_free(&r);

    /* The transaction id before and after tells whether the file ended our
     * transaction (BEGIN/COMMIT/ROLLBACK inside it), which would break the
     * one-transaction guarantee. */
    static const char *const SQL_XID = "SELECT pg_current_xact_id()::text";
    char before[32] = "";
    if ((r = pg_query(c, SQL_XID, 0, NULL, &rc)))
        snprintf(before, sizeof before, "%s", pg_get(r, 0, 0) ? pg_get(r, 0, 0) : "");
    pg_result_free(&r);
    if (rc != 0)
        return rc;
    rc = pg_exec_script(c, m->sql);
    if (rc != 0) {
        const char *sqlstate = pg_sqlstate(c);
        log_kv(LOG_ERROR, NULL, "migrate: migration failed; rolled back",
               (const char *[]){"file", m->file, "error", pg_error_message(c), "sqlstate",
                                *sqlstate ? sqlstate : "-", NULL});
        return rc;
    }
    if (!(r = pg_query(c, SQL_XID, 0, NULL, &rc)))
        return rc;
    const char *after = pg_get(r, 0, 0);
    if (!after || strcmp(after, before) != 0) {
        log_kv(LOG_ERROR, NULL,
               "migrate: migration ends its transaction (BEGIN/COMMIT/ROLLBACK); remove them",
               (const char *[]){"file", m->file, NULL});
        rc = FENTA_EINVAL;
    }
    pg_result_free(&r);
    if (rc != 0)
        return rc;
    const char *p3[] = {ver, m->name, m->checksum};
    rc = pg_exec(c, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                 3, p3);
    if (rc < 0)
        log_kv(LOG_ERROR, NULL, "migrate: cannot record migration",
               (const char *[]){"file", m->file, "error", pg_error_message(c), NULL});
    return rc < 0 ? rc : 0;
}

int migrate_apply(pg_pool_t *pool, const char *dir, int *applied)
{
    int dummy;
    applied = applied ? applied : &dummy;
    *applied = 0;
    if (!pool || !dir)
        return FENTA_EINVAL;
    mig_run_t run = {0};
    int rc = load_dir(dir, &run.migs, &run.n);
    if (rc != 0)
        return rc;
    rc = pg_tx(pool, tx_check, &run);
    for (int i = 0; rc == 0 && i < run.n; i++) {
        if (run.migs[i].applied)
            continue;
        run.cur = &run.migs[i];
        rc = pg_tx(pool, tx_apply, &run);
        if (rc == 0 && !run.skipped) {
            (*applied)++;
            log_kv(LOG_INFO, NULL, "migrate: applied",
                   (const char *[]){"file", run.cur->file, NULL});
        }
    }
    migs_free(run.migs, run.n);
    return rc;
}
