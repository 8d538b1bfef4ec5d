/* error.c - text for Fenta's error codes, generated from the table in error.h. */
#include "runtime/error.h"
#include <stdarg.h>
#include <stdio.h>

const char *fenta_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define FENTA_ERR_CASE(name, num, text)                                                            \
    case num:                                                                                      \
        return text;
        FENTA_ERRORS(FENTA_ERR_CASE)
#undef FENTA_ERR_CASE
    }
    return "unknown error";
}

int fenta_fail(char *errbuf, size_t errlen, int code, const char *fmt, ...)
{
    if (errbuf && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
