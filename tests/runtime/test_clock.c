/* test_clock.c - the one clock: the fake clock stays where a test puts it,
 * condition-variable deadlines are real time, and the test skew of the real
 * binary (a file, FENTA_TEST_HOOKS builds only) pushes the clock ahead and
 * never back. */
#include "runtime/clock.h"
#include "runtime/error.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define T0 1700000000000LL /* fake clock start, Unix ms */

/* The real wall clock, read apart from the module under test. */
static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(clock, the_fake_clock_moves_only_when_told)
{
    clock_fake_set(T0);
    cr_assert_eq(clock_now_ms(), T0);
    usleep(20000);
    cr_assert_eq(clock_now_ms(), T0, "a fake clock does not run");
    clock_fake_advance(60000);
    cr_assert_eq(clock_now_ms(), T0 + 60000);
    clock_fake_clear();
    int64_t d = clock_now_ms() - real_ms();
    cr_assert(d >= -5 && d <= 5, "back to the real clock (%lld ms off)", (long long)d);
}

Test(clock, a_deadline_is_real_time_even_on_a_fake_clock)
{
    clock_fake_set(T0);
    struct timespec ts;
    clock_deadline(1500, &ts);
    int64_t at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t d = at - real_ms();
    cr_assert(d >= 1490 && d <= 1500, "deadline %lld ms ahead", (long long)d);
    cr_assert(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
    clock_fake_clear();
}

#ifdef FENTA_TEST_HOOKS
static void write_skew(const char *path, long long ms)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f, "%lld\n", ms);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, path), 0);
}

Test(clock, the_test_skew_file_pushes_the_clock_ahead_and_never_back)
{
    char *dir = fx_tmpdir("clock");
    char path[512];
    snprintf(path, sizeof path, "%s/skew", dir);
    /* No file yet: no skew. */
    cr_assert_eq(clock_test_skew_file(path), 0);
    cr_assert_eq(clock_test_skew_ms(), 0);
    write_skew(path, 60000);
    usleep((CLOCK_SKEW_POLL_MS + 5) * 1000);
    int64_t d = clock_now_ms() - real_ms();
    cr_assert(d >= 59995 && d <= 60005, "60 s ahead, not %lld ms", (long long)d);
    /* A smaller number (a test's mistake, a torn write) never moves it back. */
    write_skew(path, 1000);
    usleep((CLOCK_SKEW_POLL_MS + 5) * 1000);
    cr_assert_eq(clock_test_skew_ms(), 60000);
    write_skew(path, 120000);
    usleep((CLOCK_SKEW_POLL_MS + 5) * 1000);
    cr_assert_eq(clock_test_skew_ms(), 120000);
    /* A fake clock still wins: unit tests pin time whatever the skew. */
    clock_fake_set(T0);
    cr_assert_eq(clock_now_ms(), T0);
    clock_fake_clear();
    fx_rmdir(dir);
}
#else
Test(clock, without_test_hooks_there_is_no_test_skew)
{
    cr_assert_eq(clock_test_skew_file("/tmp/fenta-no-such-skew"), FENTA_EUNAVAILABLE);
    cr_assert_eq(clock_test_skew_ms(), 0);
}
#endif

Test(clock, an_empty_skew_path_is_refused)
{
    cr_assert_eq(clock_test_skew_file(""), FENTA_EINVAL);
    cr_assert_eq(clock_test_skew_file(NULL), FENTA_EINVAL);
}
