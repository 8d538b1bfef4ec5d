/* test_fsutil.c - the schemas folder is decided in one place: a configured
 * folder wins, else the source tree's schemas/ (where schemas/api.json is).
 * FENTA_SCHEMAS_DIR is the schemas_dir setting, read by cli/config.c with
 * every other setting (tests/cli/test_config.c), never here. */
#include "runtime/fsutil.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

Test(fsutil, schemas_dir_order)
{
    unsetenv("FENTA_SCHEMAS_DIR");
    const char *src = fsutil_schemas_dir(NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/api.json", src);
    cr_assert_eq(access(path, R_OK), 0, "%s", path);
    cr_assert_str_eq(fsutil_schemas_dir("/etc/fenta/schemas"), "/etc/fenta/schemas");
    setenv("FENTA_SCHEMAS_DIR", "/srv/schemas", 1);
    cr_assert_str_eq(fsutil_schemas_dir(NULL), src, "the environment is the config's to read");
    cr_assert_str_eq(fsutil_schemas_dir("/etc/fenta/schemas"), "/etc/fenta/schemas");
    unsetenv("FENTA_SCHEMAS_DIR");
}
