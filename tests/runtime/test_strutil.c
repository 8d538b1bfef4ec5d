/* test_strutil.c - the one method check accepts what the router and the
 * object store both serve and refuses the rest; the one percent-decoder
 * decodes what the HTTP server and the crash journal read, and refuses
 * broken escapes and NULs (control bytes when asked). */
#include "runtime/strutil.h"
#include <criterion/criterion.h>
#include <string.h>

Test(strutil, methods)
{
    cr_assert(strutil_is_method("GET"));
    cr_assert(strutil_is_method("DELETE"));
    cr_assert(strutil_is_method("ABCDEFGHIJKLMNOP")); /* 16 letters */
    cr_assert_not(strutil_is_method("ABCDEFGHIJKLMNOPQ"));
    cr_assert_not(strutil_is_method(""));
    cr_assert_not(strutil_is_method(NULL));
    cr_assert_not(strutil_is_method("get"));
    cr_assert_not(strutil_is_method("GET "));
    cr_assert_not(strutil_is_method("GET\nX"));
}

/* Decodes with flags; the decoded text, or NULL when refused. */
static const char *dec(const char *s, size_t n, unsigned flags)
{
    static char out[256];
    long len = strutil_pct_decode(s, n, out, flags);
    if (len < 0)
        return NULL;
    cr_assert_eq((size_t)len, strlen(out), "the length is the text's: %s", s);
    return out;
}

#define DEC(s, flags) dec(s, strlen(s), flags)

Test(strutil, percent_decoding)
{
    cr_assert_str_eq(DEC("a%20b", 0), "a b");
    cr_assert_str_eq(DEC("%41%62%7e%7E", 0), "Ab~~", "either case");
    cr_assert_str_eq(DEC("", 0), "");
    cr_assert_str_eq(DEC("renders%2Fjob-1", 0), "renders/job-1");
    cr_assert_str_eq(DEC("%C3%A9", 0), "\xc3\xa9");
    cr_assert_str_eq(DEC("%FF", 0), "\xff", "UTF-8 is the caller's to check");
    cr_assert_str_eq(DEC("a+b", 0), "a+b", "'+' is itself in a path");
    cr_assert_str_eq(DEC("a+b%2B", STRUTIL_PCT_PLUS_SPACE), "a b+", "and a space in a query");
    cr_assert_str_eq(dec("abcdef", 3, 0), "abc", "n bytes, no NUL needed");

    /* bad escapes */
    static const char *const bad[] = {"%", "%4", "abc%", "%zz", "%4g", "%g4", "a%2", "% 20"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_null(DEC(bad[i], 0), "%s", bad[i]);
    cr_assert_null(dec("a%20", 3, 0), "an escape cut by n is broken");

    /* NUL, raw or escaped, never passes: "a%00b" would read as "a" */
    cr_assert_null(DEC("a%00b", 0));
    cr_assert_null(DEC("a%00b", STRUTIL_PCT_PLUS_SPACE | STRUTIL_PCT_NO_CTL));
    cr_assert_null(dec("a\0b", 3, 0));

    /* control bytes: kept (the crash journal), or refused (HTTP paths) */
    cr_assert_str_eq(DEC("a%0Ab%09%7F", 0), "a\nb\t\x7f");
    cr_assert_null(DEC("a%0Ab", STRUTIL_PCT_NO_CTL));
    cr_assert_null(DEC("%7f", STRUTIL_PCT_NO_CTL));
    cr_assert_null(DEC("a\tb", STRUTIL_PCT_NO_CTL), "raw ones too");
    cr_assert_str_eq(DEC("%20%7E", STRUTIL_PCT_NO_CTL), " ~");

    /* in place: the crash journal decodes the line's own copy */
    char buf[] = "job%2F01J%20x";
    cr_assert_eq(strutil_pct_decode(buf, strlen(buf), buf, 0), 9);
    cr_assert_str_eq(buf, "job/01J x");
}

Test(strutil, uuids)
{
    const char *ok = "0190b6a2-7c1e-7d3a-9f00-ABCDEF012345";
    cr_assert(strutil_is_uuid(ok, strlen(ok)));
    cr_assert_not(strutil_is_uuid(ok, 35), "a uuid cut short");
    cr_assert_not(strutil_is_uuid(NULL, 36));
    const char *bad[] = {"0190b6a27c1e-7d3a-9f00-abcdef0123456", /* a dash moved */
                         "0190b6a2-7c1e-7d3a-9f00-abcdef01234g", /* not hex */
                         "0190b6a2-7c1e-7d3a-9f00-abcdef01234",  /* 35 */
                         "bold"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_not(strutil_is_uuid(bad[i], strlen(bad[i])), "%s", bad[i]);
}
