/* strutil.h - small checks and decodings of strings that more than one
 * layer makes. */
#ifndef FENTA_STRUTIL_H
#define FENTA_STRUTIL_H
#include <stdbool.h>
#include <stddef.h>

/* Whether m is an HTTP method as Fenta spells one: 1 to 16 upper-case ASCII
 * letters ("GET", "PUT"). The router declares routes with it and the object
 * store signs URLs for it: the two must accept the same methods, or a URL
 * could be signed for a method no route answers. NULL is not one. */
bool strutil_is_method(const char *m);

/* Whether s[0..n) is a uuid in its text form (8-4-4-4-12 hex digits,
 * either case). Ids in paths, JSON formats and table owners are checked
 * with it, so a malformed id reads as "no such row" everywhere alike. */
bool strutil_is_uuid(const char *s, size_t n);

enum {
    STRUTIL_PCT_PLUS_SPACE = 1u << 0, /* '+' decodes to a space (query strings, forms) */
    STRUTIL_PCT_NO_CTL = 1u << 1,     /* a decoded control byte (0x01-0x1f, 0x7f) is refused */
};

/* Percent-decodes s[0..n) (RFC 3986: %XX, either case) into out, which has
 * room for n + 1 bytes and is NUL-terminated; out may be s itself, as the
 * decoded text is never longer. Refused, returning -1 (out then holds
 * anything): a '%' without two hex digits after it, and a NUL byte, raw or
 * %00 (a C string would end there: "a%00b" must not pass as "a"); with
 * STRUTIL_PCT_NO_CTL, any other control byte. Everything else is copied as
 * it decodes, including bytes that are not UTF-8: checking the text is the
 * caller's. Returns the decoded length. The HTTP server decodes paths and
 * queries with it, the crash journal its actor and type fields. */
long strutil_pct_decode(const char *s, size_t n, char *out, unsigned flags);

#endif
