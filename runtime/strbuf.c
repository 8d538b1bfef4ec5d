/* strbuf.c - see strbuf.h. */
#include "runtime/strbuf.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CAP 64 /* most builders write a short line; doubling does the rest */

bool strbuf_reserve(strbuf_t *b, size_t n)
{
    if (b->oom)
        return false;
    if (n < b->cap - b->len) /* the NUL needs one byte more than n */
        return true;
    if (n > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return false;
    }
    size_t want = b->len + n + 1;
    size_t cap = b->cap ? b->cap : FIRST_CAP;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void strbuf_append_len(strbuf_t *b, const void *s, size_t n)
{
    if (!strbuf_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void strbuf_append(strbuf_t *b, const char *s)
{
    strbuf_append_len(b, s, strlen(s));
}

void strbuf_appendc(strbuf_t *b, char c)
{
    strbuf_append_len(b, &c, 1);
}

void strbuf_vappendf(strbuf_t *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    /* Format straight into the spare room; only a piece longer than it is
     * formatted a second time, once the room is there. */
    va_list again;
    va_copy(again, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
    if (n < 0) {
        if (b->p)
            b->p[b->len] = '\0';
    } else if ((size_t)n < room) {
        b->len += (size_t)n;
    } else if (strbuf_reserve(b, (size_t)n)) {
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    } else if (b->p) {
        b->p[b->len] = '\0'; /* the failed attempt may have written a prefix */
    }
    va_end(again);
}

void strbuf_appendf(strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vappendf(b, fmt, ap);
    va_end(ap);
}

void strbuf_truncate(strbuf_t *b, size_t len)
{
    if (b->p && len <= b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

void strbuf_reset(strbuf_t *b)
{
    b->len = 0;
    b->oom = false;
    if (b->p)
        b->p[0] = '\0';
}

const char *strbuf_str(const strbuf_t *b)
{
    return b->p ? b->p : "";
}

size_t strbuf_len(const strbuf_t *b)
{
    return b->len;
}

bool strbuf_failed(const strbuf_t *b)
{
    return b->oom;
}

char *strbuf_take(strbuf_t *b, size_t *len)
{
    char *p = b->oom ? NULL : b->p ? b->p : calloc(1, 1);
    if (b->oom)
        free(b->p);
    if (len)
        *len = p ? b->len : 0;
    *b = (strbuf_t)STRBUF_INIT;
    return p;
}

void strbuf_free(strbuf_t *b)
{
    if (!b)
        return;
    free(b->p);
    *b = (strbuf_t)STRBUF_INIT;
}
