/* vec.h - room in a growable array, the step ~25 loops wrote by hand
 * (double the capacity, realloc, keep the old block when it fails).
 *
 *     item_t *v = NULL; size_t n = 0, cap = 0;
 *     if (vec_reserve(v, cap, n + 1) != 0)
 *         return FENTA_ENOMEM;
 *     v[n++] = item;
 *
 * The array stays a plain pointer with its count and capacity beside it, so
 * the structs that hold one keep their fields and their readers. */
#ifndef FENTA_VEC_H
#define FENTA_VEC_H
#include <stddef.h>

/* Makes *items hold at least need elements of elem bytes, *cap of which it
 * holds now: doubles (from 8) until it does. 0, or FENTA_ENOMEM with *items
 * and *cap unchanged (the old block is still the caller's). */
int vec__reserve(void **items, size_t *cap, size_t need, size_t elem);

/* Typed front of vec__reserve: items is an lvalue T *, cap an lvalue size_t.
 * Evaluates to 0 or FENTA_ENOMEM. */
#define vec_reserve(items, cap, need)                                                              \
    ({                                                                                             \
        void *vec_p_ = (items);                                                                    \
        int vec_rc_ = vec__reserve(&vec_p_, &(cap), (need), sizeof *(items));                      \
        (items) = vec_p_;                                                                          \
        vec_rc_;                                                                                   \
    })

#endif
