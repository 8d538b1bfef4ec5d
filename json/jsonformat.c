/* jsonformat.c - the string formats JSON Schema's "format" checks (and the
 * API reuses): uuid, email, uri, date-time. See jsonformat.h. */
#include "json/jsonformat.h"
#include "runtime/strutil.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_hex(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* 8-4-4-4-12 hex digits; RFC 9562 makes input case-insensitive. */
bool jsonformat_uuid(const char *s, size_t n)
{
    return strutil_is_uuid(s, n);
}

/* WHATWG's "valid e-mail address" (what browsers accept), tightened where it
 * lets through addresses no mail server takes: no leading, trailing or
 * doubled dots in the local part, at most 64 + 1 + 253 characters, a dotted
 * domain and a top-level label that is not all digits. ASCII only. */
bool jsonformat_email(const char *s, size_t n)
{
    static const char atext[] = "!#$%&'*+/=?^_`{|}~-";
    const char *at = memchr(s, '@', n);
    if (!at || n > 254)
        return false;
    size_t local = (size_t)(at - s), dom = n - local - 1;
    if (local == 0 || local > 64 || dom == 0 || dom > 253)
        return false;
    for (size_t i = 0; i < local; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (i == 0 || i == local - 1 || s[i - 1] == '.')
                return false;
        } else if (!is_alpha(ch) && !is_digit(ch) && !(ch && strchr(atext, ch))) {
            return false;
        }
    }
    const char *d = at + 1;
    size_t labels = 0, start = 0;
    bool all_digits = true;
    for (size_t i = 0; i <= dom; i++) {
        if (i == dom || d[i] == '.') {
            size_t len = i - start;
            if (len == 0 || len > 63 || d[start] == '-' || d[i - 1] == '-')
                return false;
            labels++;
            if (i == dom && all_digits)
                return false;
            start = i + 1;
            all_digits = true;
            continue;
        }
        if (!is_alpha(d[i]) && !is_digit(d[i]) && d[i] != '-')
            return false;
        if (!is_digit(d[i]))
            all_digits = false;
    }
    return labels >= 2;
}

/* An absolute URI (RFC 3986 section 4.3 plus a fragment): a scheme, ":", and
 * then only URI characters, "%" always followed by two hex digits, at most
 * one "#", and "[" "]" only inside the authority (IPv6 literals). */
bool jsonformat_uri(const char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0]))
        return false;
    size_t i = 1;
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i >= n || s[i] != ':' || i + 1 == n)
        return false;
    i++;
    size_t auth_end = i;
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        auth_end = i + 2;
        while (auth_end < n && s[auth_end] != '/' && s[auth_end] != '?' && s[auth_end] != '#')
            auth_end++;
    }
    static const char allowed[] = "-._~!$&'()*+,;=:@/?";
    bool fragment = false;
    for (; i < n; i++) {
        char ch = s[i];
        if (is_alpha(ch) || is_digit(ch) || (ch && strchr(allowed, ch)))
            continue;
        if (ch == '%') {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
            continue;
        }
        if (ch == '#' && !fragment) {
            fragment = true;
            continue;
        }
        if ((ch == '[' || ch == ']') && i < auth_end)
            continue;
        return false;
    }
    return true;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 section 5.6 date-time, ranges included: month 1-12, the day
 * within its month (leap years by the Gregorian rule), hour 0-23, minute
 * 0-59, second 0-59 or 60 when the instant is 23:59:60 in UTC (section 5.7:
 * a leap second is always inserted at the end of a UTC day), offsets up to
 * 23:59. "T" and "Z" may be lower case (section 5.6, NOTE). */
bool jsonformat_date_time(const char *s, size_t n)
{
    int y, mo, d, h, mi, sec;
    if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == start)
            return false;
    }
    int off = 0; /* minutes east of UTC */
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (n - i < 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
        i += 6;
    } else {
        return false;
    }
    if (i != n)
        return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1)
        return false;
    if (d > mdays[mo - 1] + (mo == 2 && leap ? 1 : 0))
        return false;
    if (h > 23 || mi > 59 || sec > 60)
        return false;
    if (sec == 60) {
        int utc = ((h * 60 + mi - off) % 1440 + 1440) % 1440;
        if (utc != 23 * 60 + 59)
            return false;
    }
    return true;
}
