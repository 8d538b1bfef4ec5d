/* vec.c - see vec.h. */
#include "runtime/vec.h"
#include "runtime/error.h"
#include <stdint.h>
#include <stdlib.h>

int vec__reserve(void **items, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return FENTA_ENOMEM;
        n *= 2;
    }
    if (elem && n > SIZE_MAX / elem)
        return FENTA_ENOMEM;
    void *p = realloc(*items, n * elem);
    if (!p)
        return FENTA_ENOMEM;
    *items = p;
    *cap = n;
    return 0;
}
