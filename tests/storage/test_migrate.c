/* test_migrate.c - migrations: order, once only, changed files refused, a
 * failing file rolled back alone, concurrent migrators, bad file names. */
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "storage/migrate.h"
#include "storage/pg.h"
#include "tests/support/fixtures.h"
#include "tests/support/pg_fixture.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;       /* this test's migrations */
static char *ci;        /* this test's database */
static pg_pool_t *pool; /* on it */
static char *logfile;   /* where log lines go during the test */
static int logfd = -1;  /* open on logfile */

static void setup(void)
{
    dir = fx_tmpdir("mig");
    ci = fx_pg_fresh_db();
    int err = 0;
    pool = pg_pool_new(ci, 2, &err);
    cr_assert_not_null(pool);
    cr_assert(asprintf(&logfile, "%s.log", dir) > 0);
    logfd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(logfd, 0);
    log_set_fd(logfd);
}

static void teardown(void)
{
    log_set_fd(2);
    close(logfd);
    pg_pool_destroy(&pool);
    unlink(logfile);
    free(logfile);
    free(ci);
    fx_rmdir(dir);
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 60);

static void put(const char *name, const char *sql)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs(sql, f);
    fclose(f);
    free(p);
}

static bool logged(const char *needle)
{
    FILE *f = fopen(logfile, "r");
    cr_assert_not_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* All values of column 0 of sql, joined with ','. */
static char *column(const char *sql)
{
    int err = 0;
    pg_conn_t *c = pg_acquire(pool, 5000, &err);
    cr_assert_not_null(c);
    pg_result_t *r = pg_query(c, sql, 0, NULL, &err);
    cr_assert_not_null(r, "%s: %s", sql, pg_error_message(c));
    size_t cap = 4096;
    char *out = calloc(1, cap);
    for (int i = 0; i < pg_nrows(r); i++) {
        const char *v = pg_get(r, i, 0);
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", v ? v : "NULL");
    }
    pg_result_free(&r);
    pg_release(pool, &c);
    return out;
}

static void expect_column(const char *sql, const char *want)
{
    char *got = column(sql);
    cr_expect_str_eq(got, want, "%s", sql);
    free(got);
}

static bool table_exists(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_tables WHERE tablename = '%s'", name);
    char *got = column(sql);
    bool yes = !strcmp(got, "1");
    free(got);
    return yes;
}

Test(migrate, applies_in_numeric_order_once)
{
    put("010_third.sql", "INSERT INTO trail (step) VALUES ('ten');");
    put("2_second.sql", "INSERT INTO trail (step) VALUES ('two');");
    put("001_first.sql", "CREATE TABLE trail (id serial PRIMARY KEY, step text);\n"
                         "-- a comment; and a second statement\n"
                         "INSERT INTO trail (step) VALUES ('one');");
    put("README.md", "not a migration");
    int applied = -1;
    cr_assert_eq(migrate_apply(pool, dir, &applied), 0);
    cr_expect_eq(applied, 3);
    expect_column("SELECT step FROM trail ORDER BY id", "one,two,ten");
    expect_column("SELECT version || ':' || name FROM schema_migrations ORDER BY version",
                  "1:first,2:second,10:third");
    expect_column("SELECT count(*) FROM schema_migrations WHERE checksum ~ '^[0-9a-f]{64}$' "
                  "AND applied_at <= now()",
                  "3");

    cr_assert_eq(migrate_apply(pool, dir, &applied), 0);
    cr_expect_eq(applied, 0, "nothing is applied twice");
    expect_column("SELECT count(*) FROM trail", "3");

    put("011_fourth.sql", "INSERT INTO trail (step) VALUES ('eleven');");
    cr_assert_eq(migrate_apply(pool, dir, &applied), 0);
    cr_expect_eq(applied, 1, "only the new file");
    expect_column("SELECT step FROM trail ORDER BY id", "one,two,ten,eleven");
}

Test(migrate, changed_file_is_refused)
{
    put("001_a.sql", "CREATE TABLE a (x int);");
    put("002_b.sql", "CREATE TABLE b (x int);");
    int applied = 0;
    cr_assert_eq(migrate_apply(pool, dir, &applied), 0);
    put("002_b.sql", "CREATE TABLE b (x int, y int);");
    put("003_c.sql", "CREATE TABLE c (x int);");
    cr_expect_eq(migrate_apply(pool, dir, &applied), FENTA_ECONFLICT);
    cr_expect_eq(applied, 0);
    cr_expect_not(table_exists("c"), "nothing applied after a changed file");
    cr_expect(logged("002_b.sql"), "the log names the changed file");
    put("002_b.sql", "CREATE TABLE b (x int);");
    cr_expect_eq(migrate_apply(pool, dir, &applied), 0);
    cr_expect_eq(applied, 1);
    cr_expect(table_exists("c"));
}

Test(migrate, failing_file_rolls_back_alone)
{
    put("001_ok.sql", "CREATE TABLE ok (x int);");
    put("002_bad.sql", "CREATE TABLE half (x int);\nINSERT INTO ok VALUES (1);\n"
                       "CREATE TABLE broken (x int,);");
    put("003_later.sql", "CREATE TABLE later (x int);");
    int applied = -1;
    int rc = migrate_apply(pool, dir, &applied);
    cr_expect_eq(rc, FENTA_EINVAL, "a syntax error: %s", fenta_strerror(rc));
    cr_expect_eq(applied, 1);
    cr_expect(table_exists("ok"), "the file before it stays applied");
    cr_expect_not(table_exists("half"), "the failing file left nothing");
    expect_column("SELECT count(*) FROM ok", "0");
    cr_expect_not(table_exists("later"), "files after it wait");
    expect_column("SELECT version FROM schema_migrations", "1");
    cr_expect(logged("002_bad.sql"), "the log names the failing file");
    cr_expect(logged("syntax error"), "and says why");

    put("002_bad.sql", "CREATE TABLE half (x int);");
    cr_expect_eq(migrate_apply(pool, dir, &applied), 0);
    cr_expect_eq(applied, 2);
    cr_expect(table_exists("later"));
}

Test(migrate, transaction_control_in_a_file_is_refused)
{
    put("001_sneaky.sql", "CREATE TABLE s1 (x int); COMMIT; BEGIN; CREATE TABLE s2 (x int);");
    int applied = -1;
    cr_expect_eq(migrate_apply(pool, dir, &applied), FENTA_EINVAL);
    cr_expect_eq(applied, 0);
    cr_expect(logged("001_sneaky.sql"));
    expect_column("SELECT count(*) FROM schema_migrations", "0");
}

Test(migrate, bad_names_and_duplicates)
{
    put("abc.sql", "SELECT 1;");
    int applied = -1;
    cr_expect_eq(migrate_apply(pool, dir, &applied), FENTA_EINVAL);
    cr_expect(logged("abc.sql"));
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/abc.sql", dir) > 0);
    unlink(p);
    free(p);
    put("001_a.sql", "CREATE TABLE a (x int);");
    put("1_b.sql", "CREATE TABLE b (x int);");
    cr_expect_eq(migrate_apply(pool, dir, &applied), FENTA_EINVAL);
    cr_expect_eq(applied, 0);
    cr_expect_not(table_exists("a"));
    cr_expect_eq(migrate_apply(pool, "/nonexistent-fenta-migrations", &applied), FENTA_EIO);
}

/* A file is read whole, however many reads it takes (its checksum is of
 * every byte); one with a NUL byte or of 16 MiB is refused, not cut. */
Test(migrate, files_are_read_whole_or_refused)
{
    enum { ROWS = 4000 };
    size_t cap = 64 + ROWS * 48, len = 0;
    char *sql = malloc(cap);
    cr_assert_not_null(sql);
    len += (size_t)snprintf(sql + len, cap - len, "CREATE TABLE big (n int);\n");
    for (int i = 0; i < ROWS; i++)
        len += (size_t)snprintf(sql + len, cap - len, "INSERT INTO big (n) VALUES (%d);\n", i);
    put("001_big.sql", sql);
    int applied = -1;
    cr_assert_eq(migrate_apply(pool, dir, &applied), 0);
    cr_expect_eq(applied, 1);
    expect_column("SELECT count(*) || ':' || max(n) FROM big", "4000:3999");
    uint8_t md[CRYPTO_SHA256_LEN];
    char hex[2 * CRYPTO_SHA256_LEN + 1];
    crypto_sha256(sql, len, md);
    crypto_hex(md, sizeof md, hex);
    expect_column("SELECT checksum FROM schema_migrations WHERE version = 1", hex);
    free(sql);

    char *p = NULL;
    cr_assert(asprintf(&p, "%s/002_nul.sql", dir) > 0);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fwrite("CREATE TABLE nul (x int);\0--", 1, 28, f);
    fclose(f);
    cr_expect_eq(migrate_apply(pool, dir, &applied), FENTA_EINVAL);
    cr_expect_not(table_exists("nul"));
    unlink(p);
    free(p);

    cr_assert(asprintf(&p, "%s/002_huge.sql", dir) > 0);
    f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("CREATE TABLE huge (x int); --", f);
    cr_assert_eq(ftruncate(fileno(f), 16 << 20), 0); /* the rest: NULs, never read */
    fclose(f);
    cr_expect_eq(migrate_apply(pool, dir, &applied), FENTA_ETOOBIG);
    cr_expect_not(table_exists("huge"));
    unlink(p);
    free(p);
}

typedef struct {
    int applied;
    int rc;
} migrator_t;

static void *migrator(void *arg)
{
    migrator_t *m = arg;
    int err = 0;
    pg_pool_t *own = pg_pool_new(ci, 1, &err); /* a separate client, as another process */
    m->rc = own ? migrate_apply(own, dir, &m->applied) : err;
    pg_pool_destroy(&own);
    return NULL;
}

Test(migrate, concurrent_migrators_apply_once)
{
    /* Not idempotent on purpose: applying any file twice fails. */
    put("001_a.sql", "CREATE TABLE a (x int); SELECT pg_sleep(0.1);");
    put("002_b.sql", "CREATE TABLE b (x int); INSERT INTO a VALUES (2);");
    put("003_c.sql", "CREATE TABLE c (x int); SELECT pg_sleep(0.1);");
    put("004_d.sql", "CREATE TABLE d (x int); INSERT INTO a VALUES (4);");
    put("005_e.sql", "CREATE TABLE e (x int);");
    migrator_t m[4] = {0};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, migrator, &m[i]);
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(m[i].rc, 0, "migrator %d: %s", i, fenta_strerror(m[i].rc));
        total += m[i].applied;
    }
    cr_expect_eq(total, 5, "five files, five applications in all");
    expect_column("SELECT version FROM schema_migrations ORDER BY version", "1,2,3,4,5");
    expect_column("SELECT x FROM a ORDER BY x", "2,4");
}
