/* pg.h - PostgreSQL access: a synchronous connection pool, parameterised
 * queries through per-connection prepared statements, transactions with retry.
 *
 * The only module that includes <libpq-fe.h>; nothing above it sees a PGconn,
 * a PGresult or an SQLSTATE-derived code other than the Fenta codes below.
 *
 * Threading: the pool is thread-safe; a pg_conn_t belongs to the thread that
 * acquired it until it is released, and must not be shared meanwhile. Calls
 * block (they are meant for worker threads, never an event loop).
 *
 * Lazy connections: pg_pool_new does not connect. pg_acquire connects (or
 * reconnects a connection found broken) within its timeout, so a pool
 * outlives the server going away: while the server is down, calls fail fast
 * with FENTA_EUNAVAILABLE; when it is back, the next acquire reconnects.
 *
 * Error codes (SQLSTATE -> Fenta), the one table is pg_errmap in pg.c:
 *   23505 unique_violation                -> FENTA_EEXIST
 *   23503 foreign_key_violation           -> FENTA_ECONFLICT (the row refers to a
 *         missing row, or is still referred to; which one is a caller's
 *         question: look at pg_constraint())
 *   40001 serialization_failure,
 *   40P01 deadlock_detected               -> FENTA_ECONFLICT, and pg_retryable()
 *         is true (pg_tx retries these itself)
 *   23502 not_null, 23514 check, class 22 (bad value: invalid uuid, too long),
 *   class 42 (syntax, undefined table: our bug) -> FENTA_EINVAL
 *   42501 insufficient_privilege          -> FENTA_EDENIED
 *   57014 query_canceled (statement_timeout), 55P03 lock_not_available
 *                                         -> FENTA_ETIMEOUT
 *   08P01 protocol_violation (e.g. more parameters than $n) -> FENTA_EINVAL
 *   class 08, 57P01-57P03 (shutdown, starting), class 53 (too many
 *   connections, out of disk), a broken connection, a failed connect
 *                                         -> FENTA_EUNAVAILABLE
 *   anything else                         -> FENTA_EIO
 */
#ifndef FENTA_PG_H
#define FENTA_PG_H
#include <stdbool.h>

typedef struct pg_pool pg_pool_t;
typedef struct pg_conn pg_conn_t;
typedef struct pg_result pg_result_t;

/* ---- pool ----------------------------------------------------------------- */

/* A pool of at most size (>= 1) connections to conninfo (a libpq keyword/value
 * string or a postgresql:// URI; copied). Does not connect. NULL with *err =
 * FENTA_EINVAL for a conninfo libpq cannot parse or a bad size, FENTA_ENOMEM.
 * Unless conninfo says otherwise, connections get connect_timeout=5 and TCP
 * keepalives (idle 5 s, 3 probes 2 s apart). */
pg_pool_t *pg_pool_new(const char *conninfo, int size, int *err);
/* Closes every connection; all must have been released. Accepts NULL. */
void pg_pool_destroy(pg_pool_t **self_p);
/* Acquire timeout of pg_tx (default 5000 ms). */
void pg_pool_set_acquire_timeout(pg_pool_t *self, int timeout_ms);
/* Client-side limit on each query (pg_query, pg_exec, and pg_tx's BEGIN/
 * COMMIT), default 0 = none: a worker never waits longer than this on a hung
 * server. A query past it fails with FENTA_ETIMEOUT and its connection is
 * closed (reconnected by the next acquire); the server is not sent a cancel
 * (that would wait on the server too), so also set statement_timeout below
 * this to stop the server's work. pg_exec_script (migrations) is not limited. */
void pg_pool_set_query_timeout(pg_pool_t *self, int timeout_ms);

/* A connection for the calling thread, waiting up to timeout_ms for a free one.
 * A connection that is not connected, or whose server end went away while it
 * sat idle, is (re)connected first, within the same deadline. NULL with *err:
 * FENTA_ETIMEOUT (all busy until the deadline), FENTA_EUNAVAILABLE (server
 * unreachable or refused us), FENTA_ENOMEM. Never waits past the deadline. */
pg_conn_t *pg_acquire(pg_pool_t *self, int timeout_ms, int *err);
/* Gives the connection back and NULLs *conn_p. A connection left inside a
 * transaction is rolled back; a broken one is closed and reconnected by the
 * next acquire (so it is reset before reuse). Accepts NULL and *conn_p NULL. */
void pg_release(pg_pool_t *self, pg_conn_t **conn_p);

/* ---- queries --------------------------------------------------------------- */

/* Runs sql with nparams text parameters ($1..$n; a NULL entry is SQL NULL),
 * prepared once per connection (keyed by the SQL text) and executed with
 * PQexecPrepared after. Returns the result (the caller's: pg_result_free), or
 * NULL with *err set (see the table above; details in pg_error_message). */
pg_result_t *pg_query(pg_conn_t *conn, const char *sql, int nparams, const char *const *params,
                      int *err);
/* Like pg_query for a statement whose rows are not wanted: the number of rows
 * it affected (>= 0) or a negative error code. */
int pg_exec(pg_conn_t *conn, const char *sql, int nparams, const char *const *params);
/* Runs a script of one or more statements with no parameters through the
 * simple query protocol (not prepared). For trusted SQL only: migration files
 * and DDL whose identifiers the caller made itself. 0 or a negative code. */
int pg_exec_script(pg_conn_t *conn, const char *sql);

/* Rows and columns of a result (0 for NULL). */
int pg_nrows(const pg_result_t *res);
int pg_ncols(const pg_result_t *res);
/* Borrowed text of a cell, valid until pg_result_free; NULL for SQL NULL and
 * for a row or column out of range. */
const char *pg_get(const pg_result_t *res, int row, int col);
/* Same by column name (as PQfnumber: unquoted names fold to lower case); NULL
 * too when no such column. */
const char *pg_getn(const pg_result_t *res, int row, const char *colname);
/* Rows affected by an INSERT/UPDATE/DELETE/MERGE (also SELECT, CREATE AS...):
 * the count in the command tag, 0 when it has none. */
int pg_affected(const pg_result_t *res);
/* Accepts NULL and *res_p NULL; NULLs *res_p. */
void pg_result_free(pg_result_t **res_p);

/* Details of the last failed call on conn, borrowed until the next call on it:
 * the server's (or libpq's) message, "" when the last call succeeded. */
const char *pg_error_message(const pg_conn_t *conn);
/* Its SQLSTATE (5 characters), "" when none (success, or a failure with no
 * server error such as a lost connection). */
const char *pg_sqlstate(const pg_conn_t *conn);
/* The constraint named by the last error (unique, foreign key, check), "" if none. */
const char *pg_constraint(const pg_conn_t *conn);
/* True if the last error was a serialization failure or a deadlock: the whole
 * transaction may succeed if run again. */
bool pg_retryable(const pg_conn_t *conn);

/* ---- transactions and health ---------------------------------------------- */

/* Acquires a connection (the pool's acquire timeout), runs BEGIN, fn(conn,
 * arg), then COMMIT when fn returned 0 or ROLLBACK when it did not. Retries
 * the whole transaction (up to 3 retries, 4 runs in all, with a short
 * jittered pause between) when fn or COMMIT failed with a serialization failure or deadlock,
 * so fn must be safe to run again and must keep its effects in the database
 * until it returns 0. fn may choose the isolation level with its first
 * statement (SET TRANSACTION ISOLATION LEVEL SERIALIZABLE). fn must not
 * acquire a second connection from the same pool (it could wait on itself).
 * Returns 0, fn's non-zero value, or the error of BEGIN/COMMIT/acquire.
 * A query that failed inside fn aborts the transaction even if fn returns 0:
 * pg_tx then rolls back and returns that query's error. */
int pg_tx(pg_pool_t *self, int (*fn)(pg_conn_t *conn, void *arg), void *arg);

/* 0 when a connection can be had and SELECT 1 answers within about a second
 * (for /readyz); FENTA_EUNAVAILABLE or FENTA_ETIMEOUT otherwise. */
int pg_ping(pg_pool_t *self);

/* ---- notifications (pg_listen.c) ------------------------------------------- */

typedef struct pg_listener pg_listener_t;

/* Listens on channel with a connection of its own, on a thread of its own.
 * cb(payload, arg) runs on that thread for each notification; cb(NULL, arg)
 * whenever notifications may have been missed (on every (re)connection and
 * when the connection is lost), so a subscriber that caches must then drop
 * everything. Reconnects by itself. NULL with *err on a bad argument. */
pg_listener_t *pg_listen_start(const char *conninfo, const char *channel,
                               void (*cb)(const char *payload, void *arg), void *arg, int *err);
/* True while listening (notifications are being delivered). */
bool pg_listen_connected(const pg_listener_t *self);
/* Stops the thread, closes the connection, frees; NULLs *self_p; accepts NULL. */
void pg_listen_stop(pg_listener_t **self_p);

#endif
