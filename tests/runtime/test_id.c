/* test_id.c - ids are unique, strictly increasing within a process (across
 * threads, within one millisecond and when the clock steps back), carry their
 * time, and survive the text form; malformed text is refused. */
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/id.h"
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define PER_THREAD 25000

typedef struct {
    fenta_id_t ids[PER_THREAD]; /* in the order this thread made them */
} batch_t;
_Static_assert(sizeof(batch_t) == PER_THREAD * sizeof(fenta_id_t), "batches are read as one array");

static void *make_batch(void *arg)
{
    batch_t *b = arg;
    for (int i = 0; i < PER_THREAD; i++)
        id_new(&b->ids[i]);
    return NULL;
}

static int cmp_ids(const void *a, const void *b)
{
    return id_cmp(a, b);
}

/* 100k ids from 4 threads: each thread sees them increase, and no two of all
 * of them are equal. */
static void check_threads(void)
{
    batch_t *batches = calloc(THREADS, sizeof *batches);
    cr_assert_not_null(batches);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, make_batch, &batches[t]), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);

    for (int t = 0; t < THREADS; t++) {
        for (int i = 1; i < PER_THREAD; i++)
            cr_assert_lt(id_cmp(&batches[t].ids[i - 1], &batches[t].ids[i]), 0,
                         "thread %d: id %d does not sort after id %d", t, i, i - 1);
    }
    fenta_id_t *all = (fenta_id_t *)batches; /* batch_t is exactly an array of ids */
    qsort(all, THREADS * PER_THREAD, sizeof *all, cmp_ids);
    for (int i = 1; i < THREADS * PER_THREAD; i++)
        cr_assert_neq(id_cmp(&all[i - 1], &all[i]), 0, "duplicate id at %d", i);
    free(batches);
}

Test(id, unique_and_ordered_across_threads)
{
    check_threads();
}

/* A frozen clock puts all 100k ids in one millisecond: only the 80-bit
 * counter keeps them apart and in order. */
Test(id, unique_and_ordered_within_one_millisecond)
{
    clock_fake_set(1700000000000);
    check_threads();
    fenta_id_t id;
    id_new(&id);
    cr_expect_eq(id_time_ms(&id), 1700000000000);
    clock_fake_clear();
}

Test(id, clock_going_backwards_keeps_order)
{
    fenta_id_t a, b, c;
    clock_fake_set(1700000005000);
    id_new(&a);
    clock_fake_set(1700000001000); /* NTP stepped the clock back */
    id_new(&b);
    cr_expect_lt(id_cmp(&a, &b), 0);
    cr_expect_eq(id_time_ms(&b), 1700000005000, "the id keeps the latest time it has used");
    clock_fake_set(1700000009000);
    id_new(&c);
    cr_expect_lt(id_cmp(&b, &c), 0);
    cr_expect_eq(id_time_ms(&c), 1700000009000);
    clock_fake_clear();
}

/* Times rise through the list: the generator never goes back in time, so a
 * lower one after a higher one would (rightly) come out as the higher. */
Test(id, time_comes_from_the_fake_clock)
{
    const int64_t times[] = {0, 1, 1469922850259, 1700000000123, (INT64_C(1) << 48) - 1};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        clock_fake_set(times[i]);
        fenta_id_t id;
        id_new(&id);
        cr_expect_eq(id_time_ms(&id), times[i], "time %lld", (long long)times[i]);
    }
    clock_fake_clear();
}

Test(id, time_comes_from_the_real_clock)
{
    int64_t before = clock_now_ms();
    fenta_id_t id;
    id_new(&id);
    int64_t after = clock_now_ms();
    cr_expect(id_time_ms(&id) >= before && id_time_ms(&id) <= after, "%lld not in [%lld, %lld]",
              (long long)id_time_ms(&id), (long long)before, (long long)after);
}

Test(id, random_part_differs_between_milliseconds)
{
    /* Each millisecond starts from fresh randomness, not from the previous
     * counter, so two nodes started together do not walk the same sequence. */
    fenta_id_t a, b;
    clock_fake_set(1700000000000);
    id_new(&a);
    clock_fake_advance(1);
    id_new(&b);
    clock_fake_clear();
    cr_expect_neq(memcmp(a.b + 6, b.b + 6, 10), 0);
}

/* A forked child inherits the generator's state; counting on from it in the
 * same millisecond would give parent and child the same next id. */
Test(id, fork_does_not_repeat_ids)
{
    clock_fake_set(1700000000000); /* parent and child in one millisecond */
    fenta_id_t before, parent_next, child_next;
    id_new(&before);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        id_new(&child_next);
        ssize_t n = write(fds[1], &child_next, sizeof child_next);
        _exit(n == sizeof child_next ? 0 : 1);
    }
    id_new(&parent_next);
    cr_assert_eq(read(fds[0], &child_next, sizeof child_next), (ssize_t)sizeof child_next);
    int status;
    waitpid(pid, &status, 0);
    close(fds[0]);
    close(fds[1]);
    clock_fake_clear();
    cr_expect_lt(id_cmp(&before, &parent_next), 0);
    cr_expect_neq(id_cmp(&parent_next, &child_next), 0, "child repeated the parent's next id");
    cr_expect_eq(id_time_ms(&child_next), 1700000000000);
}

Test(id, known_text_form)
{
    /* The example from the ULID specification. */
    static const uint8_t bytes[ID_BYTES] = {0x01, 0x56, 0x3e, 0x3a, 0xb5, 0xd3, 0xd6, 0x76,
                                            0x4c, 0x61, 0xef, 0xb9, 0x93, 0x02, 0xbd, 0x5b};
    fenta_id_t id;
    memcpy(id.b, bytes, ID_BYTES);
    char s[ID_STR_LEN + 1];
    id_to_str(&id, s);
    cr_expect_str_eq(s, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
    cr_expect_eq(id_time_ms(&id), 1469922850259);

    fenta_id_t back;
    cr_assert_eq(id_from_str("01arz3ndektsv4rrffq69g5fav", &back), 0);
    cr_expect_eq(id_cmp(&id, &back), 0);

    fenta_id_t zero = {{0}}, max;
    memset(max.b, 0xff, ID_BYTES);
    id_to_str(&zero, s);
    cr_expect_str_eq(s, "00000000000000000000000000");
    id_to_str(&max, s);
    cr_expect_str_eq(s, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    cr_assert_eq(id_from_str("7zzzzzzzzzzzzzzzzzzzzzzzzz", &back), 0);
    cr_expect_eq(id_cmp(&max, &back), 0);
}

Test(id, text_round_trip_and_order)
{
    enum { N = 2000 };
    static fenta_id_t ids[N];
    static char text[N][ID_STR_LEN + 1];
    for (int i = 0; i < N; i++) {
        id_new(&ids[i]);
        id_to_str(&ids[i], text[i]);
        cr_assert_eq(strlen(text[i]), ID_STR_LEN);
        fenta_id_t back;
        cr_assert_eq(id_from_str(text[i], &back), 0, "%s", text[i]);
        cr_assert_eq(id_cmp(&ids[i], &back), 0, "%s", text[i]);
        if (i > 0) /* the text sorts like the bytes */
            cr_assert_lt(strcmp(text[i - 1], text[i]), 0, "%s !< %s", text[i - 1], text[i]);
    }
    /* Random bytes too, not only ids with a current timestamp. */
    srand(42);
    for (int i = 0; i < N; i++) {
        fenta_id_t id, back;
        for (int k = 0; k < ID_BYTES; k++)
            id.b[k] = (uint8_t)rand();
        char s[ID_STR_LEN + 1];
        id_to_str(&id, s);
        cr_assert_eq(id_from_str(s, &back), 0, "%s", s);
        cr_assert_eq(id_cmp(&id, &back), 0, "%s", s);
    }
}

Test(id, invalid_text_is_rejected)
{
    const char *bad[] = {
        "",
        "01ARZ3NDEKTSV4RRFFQ69G5FA",   /* 25 characters */
        "01ARZ3NDEKTSV4RRFFQ69G5FAVX", /* 27 characters */
        "81ARZ3NDEKTSV4RRFFQ69G5FAV",  /* more than 128 bits */
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZ",  /* more than 128 bits */
        "01ARZ3NDEKTSV4RRFFQ69G5FAI",  /* I, L, O and U are not in the alphabet */
        "01ARZ3NDEKTSV4RRFFQ69G5FAL",
        "01ARZ3NDEKTSV4RRFFQ69G5FAO",
        "01ARZ3NDEKTSV4RRFFQ69G5FAU",
        "01ARZ3NDEKTSV4RRFFQ69G5FA-",
        "01ARZ3NDEK SV4RRFFQ69G5FAV",
        "01ARZ3NDEKTSV4RRFFQ69G5FA\xc3",
        " 01ARZ3NDEKTSV4RRFFQ69G5FA",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fenta_id_t id;
        memset(id.b, 0xAA, ID_BYTES);
        cr_expect_eq(id_from_str(bad[i], &id), FENTA_EINVAL, "accepted \"%s\"", bad[i]);
        cr_expect_eq(id.b[0], 0xAA, "\"%s\" changed the output", bad[i]);
    }
    fenta_id_t id;
    cr_expect_eq(id_from_str(NULL, &id), FENTA_EINVAL);
    cr_expect_eq(id_from_str("01ARZ3NDEKTSV4RRFFQ69G5FAV", NULL), FENTA_EINVAL);
}
