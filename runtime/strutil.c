/* strutil.c - see strutil.h. */
#include "runtime/strutil.h"

#include <ctype.h>
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

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long strutil_pct_decode(const char *s, size_t n, char *out, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (n - i < 3 || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
                (lo = hexval((unsigned char)s[i + 2])) < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && (flags & STRUTIL_PCT_PLUS_SPACE)) {
            c = ' ';
        }
        if (c == 0 || ((flags & STRUTIL_PCT_NO_CTL) && (c < 0x20 || c == 0x7f)))
            return -1;
        out[o++] = (char)c; /* o <= i: in place, nothing unread is overwritten */
    }
    out[o] = '\0';
    return (long)o;
}

bool strutil_is_uuid(const char *s, size_t n)
{
    if (!s || n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}
