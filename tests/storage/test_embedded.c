/* test_embedded.c - the embedded cluster: creation, reuse, stop, restart after
 * a killed postmaster, concurrent starts, permission errors. Each test has its
 * own data directory; the fini stops whatever a failed test left running. */
#include "runtime/clock.h"
#include "runtime/error.h"
#include "storage/embedded.h"
#include "storage/pg.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir; /* this test's data directory */

static void setup(void)
{
    dir = fx_tmpdir("emb");
    cr_assert_eq(chmod(dir, 0711), 0);
}

static void teardown(void)
{
    embedded_pg_stop_dir(dir);
    fx_rmdir(dir);
    dir = NULL;
}

TestSuite(embedded, .init = setup, .fini = teardown, .timeout = 60);

static char *path(const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static bool exists(const char *name)
{
    char *p = path(name);
    struct stat st;
    bool ok = stat(p, &st) == 0;
    free(p);
    return ok;
}

/* Tests other than the first run without fsync: initdb is most of their time. */
static embedded_pg_t *start_with(bool no_sync)
{
    int err = 0;
    embedded_pg_t *e =
        no_sync ? embedded_pg_start_opts(dir, &(embedded_pg_opts_t){.no_sync = true}, &err)
                : embedded_pg_start(dir, &err);
    cr_assert_not_null(e, "embedded_pg_start: %s", fenta_strerror(err));
    return e;
}

static embedded_pg_t *start(void)
{
    return start_with(true);
}

/* One value from a query on the embedded server ("" on failure, to compare). */
static char *scalar(const char *conninfo, const char *sql)
{
    int err = 0;
    pg_pool_t *p = pg_pool_new(conninfo, 1, &err);
    cr_assert_not_null(p);
    pg_conn_t *c = pg_acquire(p, 5000, &err);
    char *out = NULL;
    if (c) {
        pg_result_t *r = pg_query(c, sql, 0, NULL, &err);
        out = strdup(r && pg_get(r, 0, 0) ? pg_get(r, 0, 0) : "");
        if (!r)
            fprintf(stderr, "%s: %s\n", sql, pg_error_message(c));
        pg_result_free(&r);
        pg_release(p, &c);
    } else {
        out = strdup("");
    }
    pg_pool_destroy(&p);
    return out;
}

static void expect_scalar(const char *conninfo, const char *sql, const char *want)
{
    char *got = scalar(conninfo, sql);
    cr_expect_str_eq(got, want, "%s", sql);
    free(got);
}

static pid_t postmaster_pid(void)
{
    char *p = path("pg/postmaster.pid");
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

static bool unreachable(const char *conninfo)
{
    int err = 0;
    pg_pool_t *p = pg_pool_new(conninfo, 1, &err);
    cr_assert_not_null(p);
    int rc = pg_ping(p);
    pg_pool_destroy(&p);
    return rc == FENTA_EUNAVAILABLE;
}

Test(embedded, start_creates_a_private_cluster)
{
    embedded_pg_t *e = start_with(false); /* the production defaults */
    cr_expect_not(embedded_pg_reused(e));
    const char *ci = embedded_pg_conninfo(e);
    cr_assert_not_null(ci);
    cr_expect_not_null(strstr(ci, "dbname=fenta"), "%s", ci);
    cr_expect(exists("pg/PG_VERSION"));
    cr_expect(exists("pg-run/.s.PGSQL.5432"), "socket in the data directory");
    cr_expect(exists("pg.log"));
    cr_expect_not(exists("pg.init"), "the temporary initdb directory is gone");

    expect_scalar(ci, "SELECT current_database()", "fenta");
    expect_scalar(ci, "SHOW listen_addresses", "");
    expect_scalar(ci, "SHOW server_encoding", "UTF8");
    expect_scalar(ci, "SHOW fsync", "on");
    expect_scalar(ci, "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user", "true");

    /* Only the server's user (and root) may reach the socket: trust auth. */
    struct stat st;
    char *run = path("pg-run");
    cr_assert_eq(stat(run, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700);
    free(run);
    char *pgdata = path("pg");
    cr_assert_eq(stat(pgdata, &st), 0);
    free(pgdata);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        cr_assert_not_null(pw);
        cr_expect_eq(st.st_uid, pw->pw_uid, "as root the cluster belongs to postgres");
    } else {
        cr_expect_eq(st.st_uid, geteuid());
    }
    char *ci_copy = strdup(ci);
    embedded_pg_stop(&e);
    cr_expect_null(e);
    cr_expect(unreachable(ci_copy));
    cr_expect_not(exists("pg/postmaster.pid"));
    free(ci_copy);
}

Test(embedded, second_start_reuses_the_running_server)
{
    embedded_pg_t *a = start();
    pid_t pid = postmaster_pid();
    cr_assert_gt(pid, 0);
    embedded_pg_t *b = start();
    cr_expect(embedded_pg_reused(b));
    cr_expect_str_eq(embedded_pg_conninfo(b), embedded_pg_conninfo(a));
    cr_expect_eq(postmaster_pid(), pid, "still the one postmaster");
    expect_scalar(embedded_pg_conninfo(b), "SELECT 41 + 1", "42");
    embedded_pg_release(&b);
    cr_expect_null(b);
    expect_scalar(embedded_pg_conninfo(a), "SELECT 'still up'", "still up");
    embedded_pg_stop(&a);
}

Test(embedded, stop_then_start_keeps_the_data)
{
    embedded_pg_t *e = start();
    char *ci = strdup(embedded_pg_conninfo(e));
    free(scalar(ci, "CREATE TABLE kept AS SELECT 'yes'::text AS v"));
    expect_scalar(ci, "SELECT v FROM kept", "yes");
    embedded_pg_stop(&e);
    cr_expect(unreachable(ci));

    e = start();
    cr_expect_not(embedded_pg_reused(e));
    cr_expect_str_eq(embedded_pg_conninfo(e), ci);
    expect_scalar(ci, "SELECT v FROM kept", "yes");
    cr_expect_eq(embedded_pg_stop_dir(dir), 0);
    cr_expect(unreachable(ci));
    cr_expect_eq(embedded_pg_stop_dir(dir), 0, "stopping a stopped server is fine");
    embedded_pg_release(&e);
    free(ci);
}

static bool gone(pid_t pid)
{
    char p[64], buf[512] = "";
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *close = strrchr(buf, ')');
    return close && (close[2] == 'Z' || close[2] == 'X');
}

Test(embedded, restarts_after_the_postmaster_was_killed)
{
    embedded_pg_t *e = start();
    char *ci = strdup(embedded_pg_conninfo(e));
    free(scalar(ci, "CREATE TABLE kept AS SELECT 'durable'::text AS v"));
    embedded_pg_release(&e);
    pid_t pid = postmaster_pid();
    cr_assert_gt(pid, 0);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int64_t end = clock_mono_us() + 10 * 1000000;
    while (!gone(pid) && clock_mono_us() < end)
        usleep(10 * 1000);
    cr_assert(gone(pid), "postmaster %d survived SIGKILL", (int)pid);
    cr_expect(exists("pg/postmaster.pid"), "a killed postmaster leaves its pid file");

    e = start();
    cr_expect_not(embedded_pg_reused(e), "a dead (or zombie) postmaster is not reused");
    cr_expect_neq(postmaster_pid(), pid);
    expect_scalar(ci, "SELECT v FROM kept", "durable");
    embedded_pg_stop(&e);
    free(ci);
}

typedef struct {
    embedded_pg_t *e;
    int err;
} starter_t;

static void *starter(void *arg)
{
    starter_t *s = arg;
    s->e = embedded_pg_start_opts(dir, &(embedded_pg_opts_t){.no_sync = true}, &s->err);
    return NULL;
}

Test(embedded, concurrent_starts_make_one_server)
{
    starter_t s[3] = {0};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, starter, &s[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    int fresh = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_not_null(s[i].e, "start %d: %s", i, fenta_strerror(s[i].err));
        fresh += !embedded_pg_reused(s[i].e);
    }
    cr_expect_eq(fresh, 1, "one start started the server, the others reused it");
    expect_scalar(embedded_pg_conninfo(s[2].e),
                  "SELECT count(*)::text FROM pg_database WHERE "
                  "datname = 'fenta'",
                  "1");
    embedded_pg_release(&s[1].e);
    embedded_pg_release(&s[2].e);
    embedded_pg_stop(&s[0].e);
}

Test(embedded, half_created_cluster_is_redone)
{
    /* What initdb leaves when the machine dies under it. */
    char *init = path("pg.init");
    cr_assert_eq(mkdir(init, 0700), 0);
    char *junk = path("pg.init/PG_VERSION");
    FILE *f = fopen(junk, "w");
    cr_assert_not_null(f);
    fputs("15\n", f);
    fclose(f);
    embedded_pg_t *e = start();
    expect_scalar(embedded_pg_conninfo(e), "SELECT 1", "1");
    embedded_pg_stop(&e);
    free(junk);
    free(init);
}

Test(embedded, refuses_what_is_not_a_cluster)
{
    char *pgdata = path("pg");
    cr_assert_eq(mkdir(pgdata, 0700), 0);
    char *file = path("pg/precious.txt");
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs("not a database", f);
    fclose(f);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        cr_assert_not_null(pw);
        cr_assert_eq(chown(pgdata, pw->pw_uid, pw->pw_gid), 0);
    }
    int err = 0;
    cr_expect_null(embedded_pg_start(dir, &err));
    cr_expect_eq(err, FENTA_EINVAL);
    cr_expect(exists("pg/precious.txt"), "nothing was deleted");
    free(file);
    free(pgdata);
}

Test(embedded, root_needs_a_reachable_directory)
{
    if (geteuid() != 0)
        cr_skip_test("only root drops to the postgres user");
    char *locked = path("locked");
    cr_assert_eq(mkdir(locked, 0700), 0);
    char *inner = path("locked/data");
    int err = 0;
    cr_expect_null(embedded_pg_start(inner, &err));
    cr_expect_eq(err, FENTA_EDENIED);
    cr_expect_eq(embedded_pg_stop_dir(inner), 0);
    free(inner);
    free(locked);
}

/* The tools' folder and time zone come from the options (the pg_bindir and
 * pg_timezone settings, FENTA_PG_BINDIR and TZ), not from the environment. */
Test(embedded, tools_are_run_from_the_configured_folder)
{
    setenv("FENTA_PG_BINDIR", "/usr/lib/postgresql/15/bin", 1); /* not ours to read */
    int err = 0;
    embedded_pg_t *e = embedded_pg_start_opts(
        dir, &(embedded_pg_opts_t){.no_sync = true, .bindir = "/nonexistent/pg/bin"}, &err);
    cr_expect_null(e);
    cr_expect_eq(err, FENTA_EIO, "%s", fenta_strerror(err));
    embedded_pg_stop(&e);
    unsetenv("FENTA_PG_BINDIR");
}

Test(embedded, cluster_takes_the_configured_time_zone)
{
    setenv("TZ", "Asia/Tokyo", 1); /* not ours to read */
    int err = 0;
    embedded_pg_t *e = embedded_pg_start_opts(
        dir, &(embedded_pg_opts_t){.no_sync = true, .timezone = "Pacific/Chatham"}, &err);
    cr_assert_not_null(e, "%s", fenta_strerror(err));
    expect_scalar(embedded_pg_conninfo(e), "SHOW TimeZone", "Pacific/Chatham");
    embedded_pg_stop(&e);
    unsetenv("TZ");
}
