/* test_vec.c - vec_reserve grows a typed array keeping what it holds, only
 * when it must, and refuses a size that would overflow leaving the array as
 * it was. */
#include "runtime/error.h"
#include "runtime/vec.h"
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    int a;
    double b;
} item_t;

Test(vec, grows_and_keeps_items)
{
    item_t *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(vec_reserve(v, cap, n + 1), 0);
        cr_assert_geq(cap, n + 1);
        v[n++] = (item_t){i, i * 0.5};
    }
    for (int i = 0; i < 1000; i++)
        cr_assert(v[i].a == i && v[i].b == i * 0.5);
    item_t *before = v;
    size_t cap_before = cap;
    cr_assert_eq(vec_reserve(v, cap, 10), 0); /* already room: nothing moves */
    cr_assert_eq(v, before);
    cr_assert_eq(cap, cap_before);
    free(v);
}

Test(vec, overflow_is_refused_and_the_array_kept)
{
    item_t *v = NULL;
    size_t cap = 0;
    cr_assert_eq(vec_reserve(v, cap, 3), 0);
    v[2].a = 7;
    item_t *before = v;
    cr_assert_eq(vec_reserve(v, cap, SIZE_MAX / 4), FENTA_ENOMEM);
    cr_assert_eq(v, before);
    cr_assert_eq(cap, 8);
    cr_assert_eq(v[2].a, 7);
    free(v);
}
