/* test_pg.c - the PostgreSQL layer against a real server: pool, parameters,
 * prepared statements, results, error mapping, transactions, outages. */
#include "runtime/clock.h"
#include "runtime/error.h"
#include "storage/pg.h"
#include "tests/support/pg_fixture.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pg_pool_t *pool_on(const char *conninfo, int size)
{
    int err = 0;
    pg_pool_t *p = pg_pool_new(conninfo, size, &err);
    cr_assert_not_null(p, "pg_pool_new: %s", fenta_strerror(err));
    return p;
}

static pg_conn_t *get(pg_pool_t *p)
{
    int err = 0;
    pg_conn_t *c = pg_acquire(p, 10000, &err);
    cr_assert_not_null(c, "pg_acquire: %s", fenta_strerror(err));
    return c;
}

static void script(pg_conn_t *c, const char *sql)
{
    cr_assert_eq(pg_exec_script(c, sql), 0, "%s: %s", sql, pg_error_message(c));
}

static long long count_rows(pg_conn_t *c, const char *sql)
{
    int err = 0;
    pg_result_t *r = pg_query(c, sql, 0, NULL, &err);
    cr_assert_not_null(r, "%s: %s", sql, pg_error_message(c));
    long long n = atoll(pg_get(r, 0, 0));
    pg_result_free(&r);
    return n;
}

/* ---- pool ------------------------------------------------------------------- */

typedef struct {
    pg_pool_t *pool;
    atomic_int in_use;   /* connections held right now */
    atomic_int max_seen; /* most held at once */
    atomic_int failures;
} pool_test_t;

static void *pool_worker(void *arg)
{
    pool_test_t *t = arg;
    for (int i = 0; i < 40; i++) {
        int err = 0;
        pg_conn_t *c = pg_acquire(t->pool, 20000, &err);
        if (!c) {
            atomic_fetch_add(&t->failures, 1);
            continue;
        }
        int now = atomic_fetch_add(&t->in_use, 1) + 1;
        int seen = atomic_load(&t->max_seen);
        while (now > seen && !atomic_compare_exchange_weak(&t->max_seen, &seen, now))
            ;
        char n[16];
        snprintf(n, sizeof n, "%d", i);
        const char *params[] = {n};
        pg_result_t *r = pg_query(c, "SELECT $1::int + 1 AS next", 1, params, &err);
        if (!r || atoi(pg_getn(r, 0, "next")) != i + 1)
            atomic_fetch_add(&t->failures, 1);
        pg_result_free(&r);
        if (pg_exec(c, "INSERT INTO hits (n) VALUES ($1)", 1, params) != 1)
            atomic_fetch_add(&t->failures, 1);
        atomic_fetch_sub(&t->in_use, 1);
        pg_release(t->pool, &c);
        if (c)
            atomic_fetch_add(&t->failures, 1); /* release must NULL the pointer */
    }
    return NULL;
}

Test(pg, pool_shares_four_connections_among_eight_threads, .timeout = 60)
{
    char *ci = fx_pg_fresh_db();
    pool_test_t t = {.pool = pool_on(ci, 4)};
    pg_conn_t *c = get(t.pool);
    script(c, "CREATE TABLE hits (n int)");
    pg_release(t.pool, &c);

    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, pool_worker, &t);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);

    cr_expect_eq(atomic_load(&t.failures), 0);
    cr_expect_leq(atomic_load(&t.max_seen), 4, "pool handed out %d connections at once",
                  atomic_load(&t.max_seen));
    c = get(t.pool);
    cr_expect_eq(count_rows(c, "SELECT count(*) FROM hits"), 8 * 40);
    /* Four backends at most served all this: the pool really reuses. */
    cr_expect_leq(count_rows(c, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                "current_database() AND application_name = 'fenta'"),
                  4);
    pg_release(t.pool, &c);
    pg_pool_destroy(&t.pool);
    cr_expect_null(t.pool);
    free(ci);
}

Test(pg, acquire_times_out_when_all_busy)
{
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 1);
    pg_conn_t *a = get(p);
    int err = 0;
    int64_t t0 = clock_mono_us();
    pg_conn_t *b = pg_acquire(p, 150, &err);
    int64_t waited_ms = (clock_mono_us() - t0) / 1000;
    cr_expect_null(b);
    cr_expect_eq(err, FENTA_ETIMEOUT);
    cr_expect_geq(waited_ms, 140, "gave up after %lld ms", (long long)waited_ms);
    pg_release(p, &a);
    b = pg_acquire(p, 150, &err);
    cr_expect_not_null(b, "a released connection is free again");
    pg_release(p, &b);
    pg_pool_destroy(&p);
    free(ci);
}

Test(pg, bad_conninfo_and_unreachable_server)
{
    int err = 0;
    cr_expect_null(pg_pool_new("host=", 0, &err));
    cr_expect_eq(err, FENTA_EINVAL);
    cr_expect_null(pg_pool_new("this is = not 'valid", 2, &err));
    cr_expect_eq(err, FENTA_EINVAL);

    /* No server behind that socket directory: fails at once, never crashes. */
    pg_pool_t *p = pool_on("host=/nonexistent-fenta dbname=x", 2);
    int64_t t0 = clock_mono_us();
    cr_expect_null(pg_acquire(p, 3000, &err));
    cr_expect_eq(err, FENTA_EUNAVAILABLE);
    cr_expect_eq(pg_ping(p), FENTA_EUNAVAILABLE);
    cr_expect_lt(clock_mono_us() - t0, 2000 * 1000);
    pg_pool_destroy(&p);

    /* A TCP address that does not answer: the acquire deadline holds even
     * though connect_timeout says 10 s. */
    p = pool_on("host=10.255.255.1 port=5432 dbname=x connect_timeout=10", 1);
    t0 = clock_mono_us();
    cr_expect_null(pg_acquire(p, 300, &err));
    cr_expect_eq(err, FENTA_EUNAVAILABLE);
    cr_expect_lt(clock_mono_us() - t0, 1500 * 1000, "acquire outlived its deadline");
    pg_pool_destroy(&p);
}

/* ---- parameters and results ---------------------------------------------------- */

Test(pg, hostile_strings_stay_data)
{
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 1);
    pg_conn_t *c = get(p);
    script(c, "CREATE TABLE t (id serial PRIMARY KEY, v text)");
    static char big[100001];
    memset(big, 'x', sizeof big - 1);
    big[5000] = '\'';
    const char *hostile[] = {
        "'; DROP TABLE t; --",
        "Robert'); DROP TABLE t;--",
        "' OR '1'='1",
        "\\'; SELECT pg_sleep(10); --",
        "$1 $2 ? %s %n",
        "\"double\" 'single' `back`",
        "ünïcødé — 日本語 — 🎉 — \u202e",
        "E'\\x41'",
        "",
        "\t\n\r\x01\x7f",
        "$$; DROP TABLE t; $$",
        big,
    };
    int n = sizeof hostile / sizeof hostile[0];
    for (int i = 0; i < n; i++) {
        const char *params[] = {hostile[i]};
        cr_assert_eq(pg_exec(c, "INSERT INTO t (v) VALUES ($1)", 1, params), 1, "%s",
                     pg_error_message(c));
    }
    const char *nullp[] = {NULL};
    cr_assert_eq(pg_exec(c, "INSERT INTO t (v) VALUES ($1)", 1, nullp), 1);

    int err = 0;
    pg_result_t *r = pg_query(c, "SELECT id, v FROM t ORDER BY id", 0, NULL, &err);
    cr_assert_not_null(r);
    cr_assert_eq(pg_nrows(r), n + 1, "the table is intact and holds every string");
    for (int i = 0; i < n; i++)
        cr_expect_str_eq(pg_get(r, i, 1), hostile[i], "row %d", i);
    cr_expect_null(pg_get(r, n, 1), "NULL parameter is SQL NULL");
    pg_result_free(&r);

    /* A tautology as a parameter matches nothing. */
    const char *taut[] = {"x' OR '1'='1"};
    r = pg_query(c, "SELECT id FROM t WHERE v = $1", 1, taut, &err);
    cr_assert_not_null(r);
    cr_expect_eq(pg_nrows(r), 0);
    pg_result_free(&r);
    pg_release(p, &c);
    pg_pool_destroy(&p);
    free(ci);
}

Test(pg, result_accessors)
{
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 1);
    pg_conn_t *c = get(p);
    script(c, "CREATE TABLE kv (k text PRIMARY KEY, v text, n int)");
    const char *rows[][3] = {{"a", "1", "10"}, {"b", "", "20"}, {"c", NULL, "30"}};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pg_exec(c, "INSERT INTO kv VALUES ($1, $2, $3::int)", 3, rows[i]), 1);

    int err = 0;
    pg_result_t *r = pg_query(c, "SELECT k, v, n AS \"Num\" FROM kv ORDER BY k", 0, NULL, &err);
    cr_assert_not_null(r);
    cr_expect_eq(pg_nrows(r), 3);
    cr_expect_eq(pg_ncols(r), 3);
    cr_expect_str_eq(pg_get(r, 0, 0), "a");
    cr_expect_str_eq(pg_getn(r, 1, "v"), "", "empty string is not NULL");
    cr_expect_null(pg_getn(r, 2, "v"), "SQL NULL is NULL");
    cr_expect_str_eq(pg_getn(r, 2, "\"Num\""), "30", "quoted names keep their case");
    cr_expect_null(pg_getn(r, 0, "nope"));
    cr_expect_null(pg_get(r, 3, 0));
    cr_expect_null(pg_get(r, 0, 3));
    cr_expect_null(pg_get(r, -1, 0));
    cr_expect_eq(pg_affected(r), 3, "SELECT reports its row count");
    pg_result_free(&r);
    cr_expect_null(r);
    pg_result_free(&r); /* NULL is fine */
    pg_result_free(NULL);

    const char *nothing[] = {"nope"};
    cr_expect_eq(pg_exec(c, "UPDATE kv SET n = n + 1 WHERE k <> $1", 1, nothing), 3);
    cr_expect_eq(pg_exec(c, "DELETE FROM kv WHERE k = $1", 1, nothing), 0);
    r = pg_query(c, "UPDATE kv SET n = 0 WHERE k = 'a' RETURNING n", 0, NULL, &err);
    cr_assert_not_null(r);
    cr_expect_eq(pg_affected(r), 1);
    cr_expect_str_eq(pg_get(r, 0, 0), "0");
    pg_result_free(&r);
    cr_expect_eq(pg_nrows(NULL), 0);
    pg_release(p, &c);
    pg_pool_destroy(&p);
    free(ci);
}

Test(pg, statements_are_prepared_once_per_connection)
{
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 1);
    pg_conn_t *c = get(p);
    const char *sql = "SELECT $1::int * 2";
    const char *count_sql = "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1";
    for (int i = 0; i < 5; i++) {
        char n[8];
        snprintf(n, sizeof n, "%d", i);
        const char *params[] = {n};
        int err = 0;
        pg_result_t *r = pg_query(c, sql, 1, params, &err);
        cr_assert_not_null(r);
        cr_expect_eq(atoi(pg_get(r, 0, 0)), 2 * i);
        pg_result_free(&r);
    }
    const char *params[] = {sql};
    int err = 0;
    pg_result_t *r = pg_query(c, count_sql, 1, params, &err);
    cr_assert_not_null(r);
    cr_expect_str_eq(pg_get(r, 0, 0), "1", "five runs, one prepared statement");
    pg_result_free(&r);
    r = pg_query(c, "SELECT count(*) FROM pg_prepared_statements", 0, NULL, &err);
    cr_assert_not_null(r);
    cr_expect_str_eq(pg_get(r, 0, 0), "3", "three distinct statements so far");
    pg_result_free(&r);

    /* The server forgets them (DISCARD ALL by someone): we re-prepare. */
    script(c, "DEALLOCATE ALL");
    const char *seven[] = {"7"};
    r = pg_query(c, sql, 1, seven, &err);
    cr_assert_not_null(r, "after DEALLOCATE ALL: %s", pg_error_message(c));
    cr_expect_str_eq(pg_get(r, 0, 0), "14");
    pg_result_free(&r);

    /* A statement that fails to prepare is not cached: fixed later, it runs. */
    cr_expect_lt(pg_exec(c, "SELECT * FROM later", 0, NULL), 0);
    script(c, "CREATE TABLE later (x int)");
    cr_expect_eq(pg_exec(c, "SELECT * FROM later", 0, NULL), 0, "%s", pg_error_message(c));
    pg_release(p, &c);
    pg_pool_destroy(&p);
    free(ci);
}

Test(pg, errors_map_by_sqlstate)
{
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 1);
    pg_conn_t *c = get(p);
    script(c, "CREATE TABLE users (id int PRIMARY KEY, email text CONSTRAINT users_email_key "
              "UNIQUE, age int CHECK (age >= 0));"
              "CREATE TABLE posts (id int PRIMARY KEY, user_id int NOT NULL "
              "CONSTRAINT posts_user_fk REFERENCES users)");
    const char *u1[] = {"1", "a@example.com"};
    const char *u2[] = {"2", "a@example.com"};
    const char *ins = "INSERT INTO users (id, email) VALUES ($1, $2)";
    cr_assert_eq(pg_exec(c, ins, 2, u1), 1);
    cr_assert_eq(pg_error_message(c)[0], '\0', "no error after a success");

    cr_expect_eq(pg_exec(c, ins, 2, u2), FENTA_EEXIST);
    cr_expect_str_eq(pg_sqlstate(c), "23505");
    cr_expect_str_eq(pg_constraint(c), "users_email_key");
    cr_expect_neq(pg_error_message(c)[0], '\0');
    cr_expect_not(pg_retryable(c));

    const char *post[] = {"1", "99"};
    cr_expect_eq(pg_exec(c, "INSERT INTO posts VALUES ($1, $2)", 2, post), FENTA_ECONFLICT);
    cr_expect_str_eq(pg_sqlstate(c), "23503");
    cr_expect_str_eq(pg_constraint(c), "posts_user_fk");

    const char *nul[] = {"3", NULL};
    cr_expect_eq(pg_exec(c, "INSERT INTO posts VALUES ($1, $2)", 2, nul), FENTA_EINVAL);
    cr_expect_str_eq(pg_sqlstate(c), "23502");
    cr_expect_eq(pg_exec(c, "UPDATE users SET age = -1", 0, NULL), FENTA_EINVAL);
    cr_expect_str_eq(pg_sqlstate(c), "23514");
    const char *notuuid[] = {"not-a-uuid"};
    cr_expect_eq(pg_exec(c, "SELECT $1::uuid", 1, notuuid), FENTA_EINVAL);
    cr_expect_str_eq(pg_sqlstate(c), "22P02");
    cr_expect_eq(pg_exec(c, "SELEC 1", 0, NULL), FENTA_EINVAL);
    cr_expect_str_eq(pg_sqlstate(c), "42601");
    cr_expect_eq(pg_exec(c, "SELECT 1/0", 0, NULL), FENTA_EINVAL);
    cr_expect_str_eq(pg_sqlstate(c), "22012");
    cr_expect_eq(pg_exec_script(c, "SET statement_timeout = 50; SELECT pg_sleep(5)"),
                 FENTA_ETIMEOUT);
    cr_expect_str_eq(pg_sqlstate(c), "57014");
    script(c, "RESET statement_timeout");
    cr_expect_eq(pg_exec_script(c, "DO $$BEGIN RAISE EXCEPTION 'x' USING ERRCODE = "
                                   "'serialization_failure'; END$$"),
                 FENTA_ECONFLICT);
    cr_expect(pg_retryable(c));

    const char *two[] = {"1", "2"};
    cr_expect_eq(pg_exec(c, "SELECT $1::int", 2, two), FENTA_EINVAL, "more parameters than $n");
    cr_expect_str_eq(pg_sqlstate(c), "08P01");

    /* The connection is still good after all of that. */
    cr_expect_eq(pg_exec(c, "SELECT 1", 0, NULL), 1);
    cr_expect_str_eq(pg_sqlstate(c), "");
    pg_release(p, &c);
    pg_pool_destroy(&p);
    free(ci);
}

/* ---- transactions --------------------------------------------------------------- */

typedef struct {
    const char *value; /* inserted into t */
    int ret;           /* what fn returns */
    bool fail_query;   /* also run a failing query and ignore it */
    int runs;          /* times fn ran */
    int fail_runs;     /* raise a serialization failure in this many runs */
} tx_test_t;

static int tx_fn(pg_conn_t *c, void *arg)
{
    tx_test_t *t = arg;
    t->runs++;
    const char *params[] = {t->value};
    if (pg_exec(c, "INSERT INTO t (v) VALUES ($1)", 1, params) != 1)
        return -100;
    if (t->fail_query)
        (void)pg_exec(c, "INSERT INTO t (v) VALUES ($1)", 1, params); /* duplicate */
    if (t->runs <= t->fail_runs)
        return pg_exec_script(c, "DO $$BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = "
                                 "'serialization_failure'; END$$");
    return t->ret;
}

static long long count_value(pg_pool_t *p, const char *v)
{
    pg_conn_t *c = get(p);
    const char *params[] = {v};
    int err = 0;
    pg_result_t *r = pg_query(c, "SELECT count(*) FROM t WHERE v = $1", 1, params, &err);
    cr_assert_not_null(r);
    long long n = atoll(pg_get(r, 0, 0));
    pg_result_free(&r);
    pg_release(p, &c);
    return n;
}

Test(pg, tx_commits_rolls_back_and_retries)
{
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 2);
    pg_conn_t *c = get(p);
    script(c, "CREATE TABLE t (v text UNIQUE)");
    pg_release(p, &c);

    tx_test_t ok = {.value = "committed"};
    cr_expect_eq(pg_tx(p, tx_fn, &ok), 0);
    cr_expect_eq(count_value(p, "committed"), 1);

    tx_test_t no = {.value = "rolled back", .ret = FENTA_EINVAL};
    cr_expect_eq(pg_tx(p, tx_fn, &no), FENTA_EINVAL);
    cr_expect_eq(no.runs, 1, "an ordinary failure is not retried");
    cr_expect_eq(count_value(p, "rolled back"), 0);

    /* fn says 0 but a query of its failed: nothing may be committed. */
    tx_test_t sneaky = {.value = "ignored error", .fail_query = true};
    cr_expect_eq(pg_tx(p, tx_fn, &sneaky), FENTA_EEXIST);
    cr_expect_eq(count_value(p, "ignored error"), 0);

    tx_test_t once = {.value = "second run", .fail_runs = 1};
    cr_expect_eq(pg_tx(p, tx_fn, &once), 0);
    cr_expect_eq(once.runs, 2);
    cr_expect_eq(count_value(p, "second run"), 1, "the failed run left nothing behind");

    tx_test_t always = {.value = "never", .fail_runs = 100};
    cr_expect_eq(pg_tx(p, tx_fn, &always), FENTA_ECONFLICT);
    cr_expect_eq(always.runs, 4, "three retries, then the conflict is reported");
    cr_expect_eq(count_value(p, "never"), 0);
    pg_pool_destroy(&p);
    free(ci);
}

/* Write skew under SERIALIZABLE: both read the table, both insert; the
 * server must abort one, and pg_tx must run it again. */
typedef struct {
    pg_pool_t *pool;
    pthread_barrier_t *both_read;
    const char *who;
    int runs;
    int rc;
} skew_t;

static int skew_fn(pg_conn_t *c, void *arg)
{
    skew_t *s = arg;
    s->runs++;
    int rc = pg_exec_script(c, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
    if (rc != 0)
        return rc;
    if ((rc = pg_exec(c, "SELECT count(*) FROM oncall WHERE on_duty", 0, NULL)) < 0)
        return rc;
    if (s->runs == 1)
        pthread_barrier_wait(s->both_read);
    const char *params[] = {s->who};
    rc = pg_exec(c, "INSERT INTO oncall (who, on_duty) VALUES ($1, true)", 1, params);
    return rc < 0 ? rc : 0;
}

static void *skew_thread(void *arg)
{
    skew_t *s = arg;
    s->rc = pg_tx(s->pool, skew_fn, s);
    return NULL;
}

Test(pg, tx_retries_serialization_failures)
{
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 2);
    pg_conn_t *c = get(p);
    script(c, "CREATE TABLE oncall (who text, on_duty bool)");
    pg_release(p, &c);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    skew_t a = {.pool = p, .both_read = &barrier, .who = "alice"};
    skew_t b = {.pool = p, .both_read = &barrier, .who = "bob"};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, skew_thread, &a);
    pthread_create(&tb, NULL, skew_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_expect_eq(a.rc, 0);
    cr_expect_eq(b.rc, 0);
    cr_expect_eq(a.runs + b.runs, 3, "exactly one of the two ran again (runs %d + %d)", a.runs,
                 b.runs);
    c = get(p);
    cr_expect_eq(count_rows(c, "SELECT count(*) FROM oncall"), 2);
    pg_release(p, &c);
    pthread_barrier_destroy(&barrier);
    pg_pool_destroy(&p);
    free(ci);
}

Test(pg, release_rolls_back_an_open_transaction)
{
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 1);
    pg_conn_t *c = get(p);
    script(c, "CREATE TABLE t (v text)");
    script(c, "BEGIN; INSERT INTO t VALUES ('left open')");
    pg_release(p, &c);
    c = get(p);
    cr_expect_eq(count_rows(c, "SELECT count(*) FROM t"), 0);
    /* And the connection is back in autocommit: this insert stays. */
    script(c, "INSERT INTO t VALUES ('kept')");
    pg_release(p, &c);
    pg_pool_t *other = pool_on(ci, 1);
    c = get(other);
    cr_expect_eq(count_rows(c, "SELECT count(*) FROM t"), 1);
    pg_release(other, &c);
    pg_pool_destroy(&other);
    pg_pool_destroy(&p);
    free(ci);
}

Test(pg, query_timeout_bounds_a_query)
{
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 1);
    pg_pool_set_query_timeout(p, 200);
    pg_conn_t *c = get(p);
    int64_t t0 = clock_mono_us();
    cr_expect_eq(pg_exec(c, "SELECT pg_sleep(5)", 0, NULL), FENTA_ETIMEOUT);
    cr_expect_lt(clock_mono_us() - t0, 2000 * 1000, "the client gave up near its limit");
    pg_release(p, &c);
    c = get(p);
    cr_expect_eq(pg_exec(c, "SELECT 1", 0, NULL), 1, "a new connection replaced the stuck one");
    pg_release(p, &c);
    pg_pool_destroy(&p);
    free(ci);
}

/* ---- the server going away --------------------------------------------------------- */

typedef struct {
    pg_pool_t *pool;
    int rc;
    int64_t done_us;
} sleeper_t;

static void *sleeper(void *arg)
{
    sleeper_t *s = arg;
    pg_conn_t *c = get(s->pool);
    s->rc = pg_exec(c, "SELECT pg_sleep(60)", 0, NULL);
    s->done_us = clock_mono_us();
    pg_release(s->pool, &c);
    return NULL;
}

static bool sleeping(pg_pool_t *p)
{
    pg_conn_t *c = get(p);
    long long n = count_rows(c, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                                "'SELECT pg_sleep(60)%' AND state = 'active'");
    pg_release(p, &c);
    return n > 0;
}

Test(pg, survives_the_server_stopping_and_coming_back, .timeout = 60)
{
    fx_pg_use_private_server();
    char *ci = fx_pg_fresh_db();
    pg_pool_t *p = pool_on(ci, 4);
    pg_conn_t *c = get(p);
    script(c, "CREATE TABLE t (v text); INSERT INTO t VALUES ('before')");
    pg_release(p, &c);
    cr_expect_eq(pg_ping(p), 0);
    /* Connect all four, so idle connections go stale in the outage. */
    pg_conn_t *warm[4];
    for (int i = 0; i < 4; i++)
        warm[i] = get(p);
    for (int i = 0; i < 4; i++)
        pg_release(p, &warm[i]);

    /* A query in flight when the server stops. */
    sleeper_t s = {.pool = p};
    pthread_t th;
    pthread_create(&th, NULL, sleeper, &s);
    int64_t end = clock_mono_us() + 10 * 1000000;
    while (!sleeping(p) && clock_mono_us() < end)
        usleep(10 * 1000);
    pg_conn_t *held = get(p); /* a connection held across the outage */

    int64_t stop_at = clock_mono_us();
    fx_pg_stop_server();
    pthread_join(th, NULL);
    cr_expect_eq(s.rc, FENTA_EUNAVAILABLE, "in-flight query: %s", fenta_strerror(s.rc));
    cr_expect_lt(s.done_us - stop_at, 20 * 1000000, "the in-flight query was not left hanging");

    /* While it is down: every call fails fast with EUNAVAILABLE. */
    int err = 0;
    int64_t t0 = clock_mono_us();
    cr_expect_null(pg_query(held, "SELECT 1", 0, NULL, &err));
    cr_expect_eq(err, FENTA_EUNAVAILABLE);
    pg_release(p, &held);
    for (int i = 0; i < 5; i++) {
        cr_expect_null(pg_acquire(p, 5000, &err));
        cr_expect_eq(err, FENTA_EUNAVAILABLE);
    }
    cr_expect_eq(pg_ping(p), FENTA_EUNAVAILABLE);
    tx_test_t tx = {.value = "during"};
    cr_expect_eq(pg_tx(p, tx_fn, &tx), FENTA_EUNAVAILABLE);
    cr_expect_eq(tx.runs, 0, "fn is not called without a connection");
    int64_t down_ms = (clock_mono_us() - t0) / 1000;
    cr_expect_lt(down_ms, 2000, "failing took %lld ms", (long long)down_ms);

    /* Back: the next acquire reconnects; data is still there. */
    fx_pg_start_server();
    c = pg_acquire(p, 5000, &err);
    cr_assert_not_null(c, "after restart: %s", fenta_strerror(err));
    cr_expect_eq(count_rows(c, "SELECT count(*) FROM t WHERE v = 'before'"), 1);
    pg_release(p, &c);
    cr_expect_eq(pg_ping(p), 0);
    /* Every pooled connection works again, none returns a stale error. */
    pg_conn_t *all[4];
    for (int i = 0; i < 4; i++) {
        all[i] = get(p);
        cr_expect_eq(pg_exec(all[i], "SELECT 1", 0, NULL), 1, "conn %d: %s", i,
                     pg_error_message(all[i]));
    }
    for (int i = 0; i < 4; i++)
        pg_release(p, &all[i]);
    pg_pool_destroy(&p);
    free(ci);
}
