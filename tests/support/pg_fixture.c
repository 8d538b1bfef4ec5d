/* pg_fixture.c - a private PostgreSQL for tests (see pg_fixture.h).
 *
 * Who does what: the Criterion runner (hooks below) names the shared cluster
 * after its pid and removes it at the end; test processes start it lazily.
 * The runner never starts a server itself, so a binary whose tests do not
 * touch PostgreSQL (or that runs a filtered subset) pays nothing. */
#include "tests/support/pg_fixture.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "storage/embedded.h"
#include "storage/migrate.h"
#include "storage/pg.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FX_ENV_RUNNER "FENTA_FX_PG_RUNNER" /* the runner's pid, for its children */
#define FX_SHARED "fenta-test-pg-"         /* + runner pid: the shared cluster */
#define FX_PRIVATE "fenta-test-pgp-"       /* + test pid: a private cluster */

static embedded_pg_t *fx_emb;  /* this process's cluster handle */
static char *fx_dir;           /* its data directory */
static bool fx_private;        /* a private cluster (fx_pg_use_private_server) */
static pid_t fx_owner;         /* process that must clean up what it owns */
static unsigned fx_db_counter; /* for unique database names */

static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void remove_cluster(const char *dir)
{
    embedded_pg_stop_dir(dir);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether pid is gone (or a zombie nobody reaped). */
static bool pid_dead(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
    char buf[512] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *close = strrchr(buf, ')');
    return close && close[1] == ' ' && (close[2] == 'Z' || close[2] == 'X');
}

/* Stops and removes clusters whose owning process is gone (a runner or a
 * test killed before it could clean up). Only ours: our prefix, our uid. */
static void sweep_stale(void)
{
    DIR *d = opendir(tmp_root());
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *rest = NULL;
        if (!strncmp(de->d_name, FX_PRIVATE, strlen(FX_PRIVATE)))
            rest = de->d_name + strlen(FX_PRIVATE);
        else if (!strncmp(de->d_name, FX_SHARED, strlen(FX_SHARED)))
            rest = de->d_name + strlen(FX_SHARED);
        if (!rest)
            continue;
        char *end;
        long pid = strtol(rest, &end, 10);
        if (pid <= 0 || *end != '\0' || pid == (long)getpid() || !pid_dead(pid))
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", tmp_root(), de->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
            remove_cluster(path);
    }
    closedir(d);
}

/* ---- the runner ----------------------------------------------------------- */

static pid_t fx_runner;

static void runner_cleanup(void)
{
    if (fx_runner != getpid())
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/" FX_SHARED "%d", tmp_root(), (int)fx_runner);
    struct stat st;
    if (stat(path, &st) == 0)
        remove_cluster(path);
    sweep_stale(); /* private clusters of tests that crashed */
    fx_runner = 0;
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv(FX_ENV_RUNNER, pid, 1);
    fx_runner = getpid();
    sweep_stale();
    atexit(runner_cleanup); /* in case POST_ALL is never reached */
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    runner_cleanup();
}

/* ---- test processes ------------------------------------------------------- */

static void private_cleanup(void)
{
    /* atexit handlers are inherited by fork: only the owner cleans up. */
    if (!fx_private || fx_owner != getpid() || !fx_dir)
        return;
    embedded_pg_release(&fx_emb);
    remove_cluster(fx_dir);
}

static void start_cluster(void)
{
    int err = 0;
    /* A throwaway cluster: no fsync (tests do not survive power cuts). */
    embedded_pg_t *e = embedded_pg_start_opts(fx_dir, &(embedded_pg_opts_t){.no_sync = true}, &err);
    cr_assert_not_null(e, "embedded_pg_start(%s): %s (see %s/pg.log and the log lines above)",
                       fx_dir, fenta_strerror(err), fx_dir);
    embedded_pg_release(&fx_emb);
    fx_emb = e;
}

static void ensure_cluster(void)
{
    if (fx_emb)
        return;
    const char *runner = getenv(FX_ENV_RUNNER);
    int rc;
    free(fx_dir);
    fx_dir = NULL;
    if (fx_private)
        rc = asprintf(&fx_dir, "%s/" FX_PRIVATE "%d", tmp_root(), (int)getpid());
    else if (runner && *runner)
        rc = asprintf(&fx_dir, "%s/" FX_SHARED "%s", tmp_root(), runner);
    else {
        /* Not under a Criterion runner that ran our hook: own it ourselves. */
        fx_private = true;
        rc = asprintf(&fx_dir, "%s/" FX_PRIVATE "%d", tmp_root(), (int)getpid());
    }
    cr_assert(rc > 0);
    /* 0711: the server's user (postgres, when we are root) must get through. */
    if (mkdir(fx_dir, 0711) != 0)
        cr_assert_eq(errno, EEXIST, "mkdir %s: %s", fx_dir, strerror(errno));
    chmod(fx_dir, 0711);
    if (fx_private && fx_owner != getpid()) {
        fx_owner = getpid();
        atexit(private_cleanup);
    }
    start_cluster();
}

const char *fx_pg_conninfo(void)
{
    ensure_cluster();
    return embedded_pg_conninfo(fx_emb);
}

const char *fx_pg_data_dir(void)
{
    ensure_cluster();
    return fx_dir;
}

char *fx_pg_fresh_db(void)
{
    ensure_cluster();
    char *admin = embedded_pg_conninfo_db(fx_emb, "postgres");
    int err = 0;
    pg_pool_t *pool = pg_pool_new(admin, 1, &err);
    free(admin);
    cr_assert_not_null(pool, "pg_pool_new: %s", fenta_strerror(err));
    pg_conn_t *c = pg_acquire(pool, 10000, &err);
    cr_assert_not_null(c, "connect to the test cluster: %s", fenta_strerror(err));
    char name[64];
    for (int attempt = 0;; attempt++) {
        /* A generated identifier (digits and letters only): CREATE DATABASE
         * takes no parameters. */
        snprintf(name, sizeof name, "fx_%d_%u_%lld", (int)getpid(), fx_db_counter++,
                 (long long)(clock_mono_us() % 1000000000));
        char sql[128];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
        int rc = pg_exec_script(c, sql);
        if (rc == 0)
            break;
        /* 55006: template1 briefly busy because another test is copying it. */
        cr_assert(attempt < 50 &&
                      (!strcmp(pg_sqlstate(c), "42P04") || !strcmp(pg_sqlstate(c), "55006")),
                  "CREATE DATABASE %s: %s", name, pg_error_message(c));
        usleep(50 * 1000);
    }
    pg_release(pool, &c);
    pg_pool_destroy(&pool);
    char *ci = embedded_pg_conninfo_db(fx_emb, name);
    cr_assert_not_null(ci);
    return ci;
}

void fx_pg_use_private_server(void)
{
    cr_assert_null(fx_emb, "fx_pg_use_private_server must come before other fx_pg_ calls");
    fx_private = true;
}

void fx_pg_stop_server(void)
{
    cr_assert(fx_private, "stopping the shared cluster would break tests running beside this "
                          "one: call fx_pg_use_private_server() first");
    ensure_cluster();
    cr_assert_eq(embedded_pg_stop_dir(fx_dir), 0, "stopping the server in %s", fx_dir);
}

void fx_pg_start_server(void)
{
    cr_assert(fx_private, "call fx_pg_use_private_server() first");
    ensure_cluster();
    start_cluster();
}

char *fx_pg_cell(pg_pool_t *pool, const char *sql, const char *p1, const char *p2, const char *p3)
{
    int err = 0;
    pg_conn_t *c = pg_acquire(pool, 10000, &err);
    cr_assert_not_null(c, "%s", fenta_strerror(err));
    const char *p[] = {p1, p2, p3};
    int n = p1 ? p2 ? p3 ? 3 : 2 : 1 : 0;
    pg_result_t *r = pg_query(c, sql, n, p, &err);
    cr_assert_not_null(r, "%s: %s (%s)", sql, fenta_strerror(err), pg_error_message(c));
    const char *v = pg_nrows(r) > 0 ? pg_get(r, 0, 0) : NULL;
    char *out = v ? strdup(v) : NULL;
    pg_result_free(&r);
    pg_release(pool, &c);
    return out;
}

long long fx_pg_int(pg_pool_t *pool, const char *sql, const char *p1, const char *p2,
                    const char *p3)
{
    char *v = fx_pg_cell(pool, sql, p1, p2, p3);
    long long n = v ? atoll(v) : -1;
    free(v);
    return n;
}

void fx_pg_exec(pg_pool_t *pool, const char *sql)
{
    int err = 0;
    pg_conn_t *c = pg_acquire(pool, 10000, &err);
    cr_assert_not_null(c, "%s", fenta_strerror(err));
    int rc = pg_exec_script(c, sql);
    cr_assert_eq(rc, 0, "%s: %s", sql, pg_error_message(c));
    pg_release(pool, &c);
}

pg_pool_t *fx_pg_fresh_pool(int n)
{
    char *conninfo = fx_pg_fresh_db();
    int err = 0;
    pg_pool_t *pool = pg_pool_new(conninfo, n, &err);
    free(conninfo);
    cr_assert_not_null(pool, "pg_pool_new: %s", fenta_strerror(err));
    int applied = 0;
    int rc = migrate_apply(pool, FENTA_SOURCE_SCHEMAS "/sql", &applied);
    cr_assert_eq(rc, 0, "migrations: %s", fenta_strerror(rc));
    return pool;
}

pg_conn_t *fx_pg_fresh_conn(int n, pg_pool_t **pool)
{
    *pool = fx_pg_fresh_pool(n);
    int err = 0;
    pg_conn_t *c = pg_acquire(*pool, 10000, &err);
    cr_assert_not_null(c, "pg_acquire: %s", fenta_strerror(err));
    return c;
}

void fx_pg_fresh_conn_end(pg_pool_t **pool, pg_conn_t **c)
{
    pg_release(*pool, c);
    pg_pool_destroy(pool);
}

void fx_pg_row(pg_conn_t *c, const char *sql, const char *p1, const char *p2, char *out, size_t cap)
{
    const char *p[] = {p1, p2};
    int err = 0;
    pg_result_t *r = pg_query(c, sql, p1 ? p2 ? 2 : 1 : 0, p, &err);
    cr_assert_not_null(r, "%s: %s (%s)", sql, fenta_strerror(err), pg_error_message(c));
    cr_assert_eq(pg_nrows(r), 1, "%s", sql);
    snprintf(out, cap, "%s", pg_get(r, 0, 0) ? pg_get(r, 0, 0) : "");
    pg_result_free(&r);
}

void fx_pg_org(pg_pool_t *pool, const char *name, char id[37])
{
    char *o =
        fx_pg_cell(pool, "INSERT INTO orgs (name) VALUES ($1) RETURNING id", name, NULL, NULL);
    cr_assert_not_null(o);
    snprintf(id, 37, "%s", o);
    free(o);
}
