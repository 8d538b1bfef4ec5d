/* jsonformat.h - string formats: uuid (8-4-4-4-12 hex, either case), email
 * (pragmatic: WHATWG's ASCII form, dotted domain, no empty or doubled dots),
 * uri (absolute: scheme ":" then RFC 3986 characters), date-time (RFC 3339
 * with real calendar ranges; second 60 only at 23:59 UTC). Each checks the
 * n bytes at s (no NUL needed). */
#ifndef FENTA_JSONFORMAT_H
#define FENTA_JSONFORMAT_H
#include <stdbool.h>
#include <stddef.h>

bool jsonformat_uuid(const char *s, size_t n);
bool jsonformat_email(const char *s, size_t n);
bool jsonformat_uri(const char *s, size_t n);
bool jsonformat_date_time(const char *s, size_t n);

#endif
