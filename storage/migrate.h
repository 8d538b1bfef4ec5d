/* migrate.h - schema migrations: numbered plain SQL files applied in order,
 * each once, each in its own transaction, recorded in schema_migrations.
 *
 * Files are DIR/NNN_name.sql (NNN: one or more digits, the version; name:
 * letters, digits, '_', '-', '.'), applied by increasing version. Each
 * pending file runs in one transaction together with its row in
 *   schema_migrations(version int primary key, name text,
 *                     applied_at timestamptz default now(), checksum text)
 * (checksum: SHA-256 of the file, hex), so a failing file leaves nothing of
 * itself behind and the ones before it stay applied. A file must not contain
 * BEGIN/COMMIT, nor statements that cannot run in a transaction (CREATE
 * INDEX CONCURRENTLY, VACUUM); COPY FROM STDIN is not supported.
 *
 * Several processes may migrate one database at once: each transaction first
 * takes a transaction-scoped advisory lock, then re-checks what is recorded,
 * so every file is applied exactly once. */
#ifndef FENTA_MIGRATE_H
#define FENTA_MIGRATE_H
#include "storage/pg.h"

/* Applies the pending migrations of dir; *applied (may be NULL) gets how many
 * this call applied, also on failure. 0, or:
 *   FENTA_ECONFLICT  an applied file changed (its checksum differs); nothing
 *                    is applied; the file is logged
 *   FENTA_EINVAL     a *.sql file not named NNN_name.sql, two files with one
 *                    version, or a file using BEGIN/COMMIT; nothing applied
 *   FENTA_EIO        dir or a file cannot be read
 *   a pg.h code      a file failed (logged with its file name and the
 *                    server's message): files before it stay applied
 * Versions recorded in the database with no file are logged as warnings (a
 * database migrated by a newer build). */
int migrate_apply(pg_pool_t *pool, const char *dir, int *applied);

#endif
