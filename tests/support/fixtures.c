/* fixtures.c - shared test fixtures (see fixtures.h). */
#include "tests/support/fixtures.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Suites log at the level ops/test asks for (FENTA_LOG_LEVEL=warn keeps
 * their logs short), as `fenta` does through cli/config.c: runtime/log.c
 * reads no environment. Runs in every suite that links this file, before
 * Criterion forks its tests; a test may still call log_set_level. */
__attribute__((constructor)) static void fx_log_level(void)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    const char *want = getenv("FENTA_LOG_LEVEL");
    for (int l = LOG_DEBUG; want && l <= LOG_ERROR; l++)
        if (strcasecmp(want, names[l]) == 0)
            log_set_level((log_level_t)l);
}

char *fx_tmpdir(const char *tag)
{
    const char *root = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/fenta-test-%s-XXXXXX", root, tag) > 0);
    cr_assert_not_null(mkdtemp(path), "mkdtemp %s", path);
    return path;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

void fx_rmdir(char *dir)
{
    if (dir && strstr(dir, "/fenta-test-"))
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

runtime_t *fx_runtime(const char *dir, bool no_sync)
{
    static const dispatcher_spec_t disps[] = {{"default", 2}, {"io", 2}, {"render", 1}};
    int err = 0;
    runtime_t *rt = runtime_new(
        &(runtime_opts_t){
            .data_dir = dir, .dispatchers = disps, .ndispatchers = 3, .no_sync = no_sync},
        &err);
    cr_assert_not_null(rt, "runtime_new: %d", err);
    return rt;
}

void fx_settle(runtime_t *rt)
{
    cr_assert_eq(runtime_quiesce(rt, 0, 20000), 0, "the runtime did not settle in 20 s");
}

/* Whether a timer of rt is due within h ms: quiesce cannot finish then. The
 * 100 ms it is given are plenty for a settled runtime to show it is calm
 * (two looks a millisecond apart). */
static bool due_within(runtime_t *rt, int64_t h)
{
    int rc = runtime_quiesce(rt, h, 100);
    cr_assert(rc == 0 || rc == FENTA_ETIMEOUT, "runtime_quiesce: %s", fenta_strerror(rc));
    return rc == FENTA_ETIMEOUT;
}

int64_t fx_next_due_ms(runtime_t *rt, int64_t max_ms)
{
    fx_settle(rt);
    if (!due_within(rt, max_ms))
        return -1;
    /* due_within(lo) is false (fx_settle: nothing is due now), hi true. */
    int64_t lo = 0, hi = max_ms;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (due_within(rt, mid))
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

bool fx_wait(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t end = clock_mono_us() + (int64_t)timeout_ms * 1000;
    while (clock_mono_us() < end) {
        if (cond(arg))
            return true;
        usleep(1000);
    }
    return cond(arg);
}

uint64_t fx_counter(runtime_t *rt, const char *addr)
{
    void *s = NULL;
    size_t len = 0;
    uint64_t n = 0;
    if (runtime_actor_state(rt, addr, &s, &len) == 0 && len == sizeof n)
        memcpy(&n, s, sizeof n);
    free(s);
    return n;
}

int fx_count(actor_ctx_t *ctx)
{
    size_t len;
    const void *s = actor_state(ctx, &len);
    uint64_t n = 0;
    if (len == sizeof n)
        memcpy(&n, s, sizeof n);
    n++;
    return actor_set_state(ctx, &n, sizeof n);
}

static char *shared_dir;
static pid_t shared_owner;

const char *fx_shared_dir_make(const char *env, const char *tag)
{
    shared_dir = fx_tmpdir(tag);
    shared_owner = getpid();
    if (setenv(env, shared_dir, 1) != 0)
        exit(1);
    return shared_dir;
}

void fx_shared_dir_remove(void)
{
    if (shared_dir && shared_owner == getpid()) {
        fx_rmdir(shared_dir);
        shared_dir = NULL;
    }
}

const char *fx_shared_path(const char *env, const char *name)
{
    static char path[8][1024];
    static int k;
    const char *dir = getenv(env);
    cr_assert_not_null(dir, "fixtures were not made");
    k = (k + 1) % 8;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

int fx_sh(const char *dir, const char *fmt, ...)
{
    char inner[8192], cmd[9216];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(inner, sizeof inner, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", dir, inner);
    return system(cmd);
}

int64_t fx_utc(const char *iso)
{
    struct tm tm = {0};
    cr_assert_eq(sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                        &tm.tm_min, &tm.tm_sec),
                 6, "bad time %s", iso);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}
