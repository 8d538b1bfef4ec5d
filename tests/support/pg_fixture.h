/* pg_fixture.h - a private PostgreSQL for tests, on the embedded cluster.
 *
 * One cluster per test binary run, shared by its tests: Criterion runs each
 * test in a child of the runner process (several at once), so the first test
 * to ask starts it under $TMPDIR/fenta-test-pg-<runner pid> (embedded_pg's
 * lock makes concurrent first calls safe: one starts, the others reuse), and
 * the runner stops it and removes the directory after the last test (a
 * Criterion POST_ALL hook, backed by atexit). Clusters left by a runner that
 * was killed are stopped and removed by the next run. Two binaries running at
 * once have two clusters.
 *
 * Tests isolate their data with fx_pg_fresh_db. A test that stops the server
 * must not do it to the shared one (tests running beside it would fail): it
 * calls fx_pg_use_private_server() first and gets a cluster of its own,
 * removed when its process exits.
 *
 * All of these run inside a test (they fail it with cr_assert on error). */
#ifndef FENTA_TEST_PG_FIXTURE_H
#define FENTA_TEST_PG_FIXTURE_H
#include "storage/pg.h"

#include <stddef.h>

/* conninfo of database "fenta" on this process's cluster, starting the
 * cluster if needed. Borrowed, valid for the process. */
const char *fx_pg_conninfo(void);
/* A new empty database with a unique name on that cluster; returns its
 * conninfo, which the caller frees. */
char *fx_pg_fresh_db(void);
/* From now on this process uses a cluster of its own (call it before any
 * other fx_pg_ function), so it may stop and start it. */
void fx_pg_use_private_server(void);
/* Stops (pg_ctl stop -m fast) / starts again this process's private cluster;
 * conninfos stay valid. Fails the test without fx_pg_use_private_server. */
void fx_pg_stop_server(void);
void fx_pg_start_server(void);
/* The data directory of this process's cluster (DATA_DIR of embedded.h). */
const char *fx_pg_data_dir(void);

/* A pool of n connections to a new database (fx_pg_fresh_db) with every
 * migration of schemas/sql applied: what a suite of an actor or a storage
 * module starts from. Destroy it with pg_pool_destroy. */
pg_pool_t *fx_pg_fresh_pool(int n);
/* A connection of a new fx_pg_fresh_pool(n), which goes into *pool: what a
 * storage module's suite runs its statements on. Release it to *pool before
 * destroying the pool. */
pg_conn_t *fx_pg_fresh_conn(int n, pg_pool_t **pool);
/* The end of fx_pg_fresh_conn: releases *c to *pool, destroys the pool and
 * NULLs both. */
void fx_pg_fresh_conn_end(pg_pool_t **pool, pg_conn_t **c);
/* The first cell of the one row sql returns on c, with up to two text
 * parameters (the first NULL ends them), into out ("" for SQL NULL). Runs on
 * the caller's connection, so it sees the caller's open transaction; asserts
 * the query runs and returns exactly one row. */
void fx_pg_row(pg_conn_t *c, const char *sql, const char *p1, const char *p2, char *out,
               size_t cap);
/* A new organisation (a row of orgs named name); its id into id[37]. */
void fx_pg_org(pg_pool_t *pool, const char *name, char id[37]);
/* The first cell of the first row of sql, run on a connection of pool with
 * up to three text parameters (the first NULL ends them), as a string the
 * caller frees; NULL for SQL NULL or no row. Asserts the query runs. */
char *fx_pg_cell(pg_pool_t *pool, const char *sql, const char *p1, const char *p2, const char *p3);
/* The same read as a number: -1 for SQL NULL or no row. */
long long fx_pg_int(pg_pool_t *pool, const char *sql, const char *p1, const char *p2,
                    const char *p3);
/* Runs sql (no parameters, one or more statements); asserts it succeeds. */
void fx_pg_exec(pg_pool_t *pool, const char *sql);

#endif
