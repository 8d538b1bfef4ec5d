/* fsutil.h - the file-system steps durable code repeats: folders made with
 * their parents, and files replaced whole or not at all (temporary file,
 * fsync, rename, fsync of the folder), so a crash never leaves half a file
 * under the final name; folders removed whole; and where the schemas
 * folder is. */
#ifndef FENTA_FSUTIL_H
#define FENTA_FSUTIL_H
#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: creates path and its missing parents (parents 0755, path
 * mode). 0, or -1 with errno. */
int fsutil_mkdirs(const char *path, mode_t mode);

/* rm -rf: removes path and everything below it, not following links.
 * Best effort: stops at the first entry it cannot remove. */
void fsutil_remove_tree(const char *path);

/* fsyncs the folder holding path, so a rename or a new name in it is
 * durable. 0, or -1 with errno. */
int fsutil_sync_dir_of(const char *path);

/* Writes len bytes to path.part, fsyncs it, renames it to path and fsyncs
 * the folder. 0, or -1 with errno (path.part removed). */
int fsutil_write_file(const char *path, const void *data, size_t len, mode_t mode);

/* The schemas folder (migrations, JSON Schemas, node types, templates, the
 * OpenAPI document): configured when not NULL (the commands pass the
 * schemas_dir setting, cli/config.h: --schemas-dir, FENTA_SCHEMAS_DIR),
 * else the source tree's schemas/ (FENTA_SOURCE_SCHEMAS, fixed at build
 * time). Borrowed: configured or a constant. The one place this is
 * decided, so the server, the renderer and the CLI never disagree about
 * which files they read. */
const char *fsutil_schemas_dir(const char *configured);

#endif
