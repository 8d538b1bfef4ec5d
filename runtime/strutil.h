/* strutil.h - small checks on strings that more than one layer makes. */
#ifndef FENTA_STRUTIL_H
#define FENTA_STRUTIL_H
#include <stdbool.h>

/* Whether m is an HTTP method as Fenta spells one: 1 to 16 upper-case ASCII
 * letters ("GET", "PUT"). The router declares routes with it and the object
 * store signs URLs for it: the two must accept the same methods, or a URL
 * could be signed for a method no route answers. NULL is not one. */
bool strutil_is_method(const char *m);

#endif
