/* test_strutil.c - the one method check accepts what the router and the
 * object store both serve and refuses the rest. */
#include "runtime/strutil.h"
#include <criterion/criterion.h>

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
