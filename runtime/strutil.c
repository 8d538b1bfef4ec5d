/* strutil.c - see strutil.h. */
#include "runtime/strutil.h"
#include <string.h>

bool strutil_is_method(const char *m)
{
    size_t n = m ? strlen(m) : 0;
    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return false;
    return true;
}
