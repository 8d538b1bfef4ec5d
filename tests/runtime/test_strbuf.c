/* test_strbuf.c - the string builder appends, formats (short and long
 * pieces), truncates, carries binary bytes, hands its text over, and a failed
 * allocation is sticky: later appends do nothing and take reports it once,
 * leaking nothing. */
#include "runtime/strbuf.h"
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

Test(strbuf, appends_and_formats)
{
    strbuf_t b = STRBUF_INIT;
    cr_assert_str_eq(strbuf_str(&b), "");
    strbuf_append(&b, "Dialogue: ");
    strbuf_appendf(&b, "%d:%02d", 0, 7);
    strbuf_appendc(&b, ',');
    strbuf_append_len(&b, "xyz", 2);
    cr_assert_str_eq(strbuf_str(&b), "Dialogue: 0:07,xy");
    cr_assert_eq(strbuf_len(&b), 17);
    /* A formatted piece far longer than the spare room is formatted whole. */
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    strbuf_appendf(&b, "[%s]", big);
    cr_assert_eq(strbuf_len(&b), 17 + 2 + 4999);
    cr_assert_eq(strbuf_str(&b)[17], '[');
    cr_assert_eq(strbuf_str(&b)[strbuf_len(&b) - 1], ']');
    cr_assert_eq(strbuf_str(&b)[strbuf_len(&b)], '\0');
    strbuf_truncate(&b, 8);
    cr_assert_str_eq(strbuf_str(&b), "Dialogue");
    strbuf_truncate(&b, 100); /* past the end: nothing */
    cr_assert_str_eq(strbuf_str(&b), "Dialogue");
    size_t n = 0;
    char *s = strbuf_take(&b, &n);
    cr_assert_str_eq(s, "Dialogue");
    cr_assert_eq(n, 8);
    cr_assert_null(b.p);
    cr_assert_eq(strbuf_len(&b), 0);
    free(s);
}

Test(strbuf, empty_take_is_an_empty_string)
{
    strbuf_t b = STRBUF_INIT;
    char *s = strbuf_take(&b, NULL);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "");
    free(s);
    strbuf_appendf(&b, "%s", "");
    cr_assert_str_eq(strbuf_str(&b), "");
    strbuf_free(&b);
    strbuf_free(&b); /* twice: the first left it empty */
    strbuf_free(NULL);
}

Test(strbuf, binary_bytes_survive)
{
    strbuf_t b = STRBUF_INIT;
    const uint8_t bytes[] = {0x82, 0x00, 0xa1, 0x00, 0xff};
    cr_assert(strbuf_reserve(&b, 1000));
    strbuf_append_len(&b, bytes, sizeof bytes);
    strbuf_append_len(&b, bytes, sizeof bytes);
    size_t n = 0;
    char *s = strbuf_take(&b, &n);
    cr_assert_eq(n, 10);
    cr_assert_eq(memcmp(s, bytes, 5), 0);
    cr_assert_eq(memcmp(s + 5, bytes, 5), 0);
    free(s);
}

Test(strbuf, a_failed_allocation_is_sticky_and_reported_once)
{
    strbuf_t b = STRBUF_INIT;
    strbuf_append(&b, "kept");
    cr_assert_not(strbuf_reserve(&b, SIZE_MAX - 2)); /* cannot be had */
    cr_assert(strbuf_failed(&b));
    strbuf_append(&b, " dropped");
    strbuf_appendf(&b, "%d", 42);
    cr_assert_str_eq(strbuf_str(&b), "kept");
    size_t n = 7;
    cr_assert_null(strbuf_take(&b, &n));
    cr_assert_eq(n, 0);
    cr_assert_not(strbuf_failed(&b)); /* take started it afresh */
    /* reset clears a failure and keeps the buffer usable */
    strbuf_append(&b, "a");
    cr_assert_not(strbuf_reserve(&b, SIZE_MAX));
    strbuf_reset(&b);
    cr_assert_not(strbuf_failed(&b));
    strbuf_append(&b, "b");
    cr_assert_str_eq(strbuf_str(&b), "b");
    strbuf_free(&b);
}
