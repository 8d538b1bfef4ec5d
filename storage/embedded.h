/* embedded.h - the embedded default database: a private PostgreSQL 15
 * cluster inside Fenta's data directory, reachable only on a unix socket.
 *
 * Layout under DATA_DIR (all created on the first start):
 *   pg/        the cluster (PGDATA); pg/fenta.conf is rewritten at each start
 *   pg-run/    the socket directory (mode 0700: with trust auth, reaching
 *              the socket is the access control)
 *   pg.log     server log, and the output of initdb/pg_ctl
 *   pg.lock    serialises concurrent starts and stops
 *
 * The server listens on no TCP address, trusts local connections (only the
 * socket directory's owner, and root, can reach them), uses UTF8 with the C
 * locale, and has database "fenta" whose superuser is named after the OS user
 * that created the cluster.
 *
 * As root: initdb and postgres refuse to run as root, so the server runs as
 * the owner of DATA_DIR/pg when that is not root, else as the `postgres`
 * system user (Debian's postgresql-15 package creates it); pg/, pg-run/ and
 * pg.log are chowned to it. DATA_DIR itself gets search permission for
 * others (o+x: enter, not list) when it lacks it; every directory above
 * DATA_DIR must already be searchable by that user, else start fails with
 * FENTA_EDENIED naming the directory.
 *
 * The tools are EMBEDDED_PG_BINDIR unless the options name another folder
 * (the pg_bindir setting, cli/config.h). They are run with fork/exec (never a shell), in a session
 * of their own, so a terminal's Ctrl-C reaches Fenta, which then stops the server in order. */
#ifndef FENTA_EMBEDDED_H
#define FENTA_EMBEDDED_H
#include <stdbool.h>

/* Where Debian's postgresql-15 package puts initdb, pg_ctl and postgres. */
#define EMBEDDED_PG_BINDIR "/usr/lib/postgresql/15/bin"

typedef struct embedded_pg embedded_pg_t;

/* Options of embedded_pg_start_opts; zero is the default. Strings are
 * copied. */
typedef struct {
    bool no_sync;         /* throwaway cluster (tests): initdb --no-sync, fsync and
                             full_page_writes off. Survives a crash of the server, not
                             of the machine. */
    const char *bindir;   /* the PostgreSQL tools; NULL or "" = EMBEDDED_PG_BINDIR */
    const char *timezone; /* TZ of the tools (initdb writes it as the cluster's
                             timezone); NULL or "" = none given, theirs */
} embedded_pg_opts_t;

/* Creates the cluster under data_dir (once; data_dir is created if missing)
 * and starts it (pg_ctl -w), creating database "fenta" if missing; returns
 * once it accepts connections. If a server is already running on that
 * cluster (another process started it, or a Fenta that crashed left it),
 * it is reused, not started twice (see embedded_pg_reused). A postmaster.pid
 * left by a server that died (killed, machine crash) is recognised as stale
 * and removed. NULL with *err: FENTA_EINVAL (bad path, not a cluster, wrong
 * version), FENTA_EDENIED (permissions, or root without a postgres user),
 * FENTA_EIO (initdb or the server failed: the reason is logged with the tail
 * of DATA_DIR/pg.log), FENTA_EUNAVAILABLE (started but never answered),
 * FENTA_ENOMEM. */
embedded_pg_t *embedded_pg_start(const char *data_dir, int *err);
/* The same with options (opts may be NULL). Options apply when this call
 * starts the server, not when it reuses one already running. */
embedded_pg_t *embedded_pg_start_opts(const char *data_dir, const embedded_pg_opts_t *opts,
                                      int *err);
/* libpq conninfo for database "fenta" (host=<socket dir> dbname=fenta
 * user=<superuser>); borrowed, valid until the handle is freed. */
const char *embedded_pg_conninfo(const embedded_pg_t *self);
/* The same for another database of the cluster; the caller frees it. */
char *embedded_pg_conninfo_db(const embedded_pg_t *self, const char *dbname);
/* True when start found the server already running and reused it. */
bool embedded_pg_reused(const embedded_pg_t *self);
/* Stops the server (pg_ctl stop -m fast: sessions are disconnected, data is
 * flushed), even if this handle reused it, then frees the handle and NULLs
 * *self_p. Accepts NULL. */
void embedded_pg_stop(embedded_pg_t **self_p);
/* Frees the handle and NULLs *self_p, leaving the server running. */
void embedded_pg_release(embedded_pg_t **self_p);
/* Stops the server of data_dir's cluster if one is running (no handle
 * needed; for cleanup of clusters other processes started). 0 when it is
 * stopped or was not running; FENTA_EIO if pg_ctl failed. */
int embedded_pg_stop_dir(const char *data_dir);

#endif
