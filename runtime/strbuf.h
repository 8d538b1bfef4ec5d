/* strbuf.h - a growable string (or byte) builder, the one every module uses
 * instead of growing its own.
 *
 * A strbuf_t is a value on the caller's stack, not an opaque object: builders
 * live for one function call, and a heap handle per builder would add an
 * allocation and a failure path to every one of them. Start it with
 * STRBUF_INIT (all zero); free it with strbuf_free, or hand the text over
 * with strbuf_take.
 *
 * Allocation failure is sticky: the first failed append marks the buffer
 * failed, every later append does nothing, and the failure is reported once,
 * where the text is used (strbuf_take returns NULL, strbuf_failed is true),
 * so a builder needs no check after each append. The text is always
 * NUL-terminated after the bytes used; bytes may include NULs (binary data:
 * msgpack), then strbuf_len is the only length. */
#ifndef FENTA_STRBUF_H
#define FENTA_STRBUF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *p;    /* the bytes and a NUL after them; NULL until something is added */
    size_t len; /* bytes used, the NUL excluded */
    size_t cap; /* bytes allocated */
    bool oom;   /* an allocation failed: the contents are incomplete (sticky) */
} strbuf_t;

#define STRBUF_INIT                                                                                \
    {                                                                                              \
        0                                                                                          \
    }

/* Makes room for n more bytes (and the NUL) at once; false when it failed
 * (then the buffer is failed). Only an optimisation: appends grow anyway. */
bool strbuf_reserve(strbuf_t *b, size_t n);

void strbuf_append_len(strbuf_t *b, const void *s, size_t n);
void strbuf_append(strbuf_t *b, const char *s); /* NUL-terminated s */
void strbuf_appendc(strbuf_t *b, char c);
void strbuf_appendf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vappendf(strbuf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Drops everything after len bytes (len > strbuf_len does nothing). */
void strbuf_truncate(strbuf_t *b, size_t len);

/* Empties the buffer and clears a failure, keeping the memory for reuse. */
void strbuf_reset(strbuf_t *b);

/* The text so far, borrowed until the next append, take or free; "" when
 * nothing was added. */
const char *strbuf_str(const strbuf_t *b);
size_t strbuf_len(const strbuf_t *b);
bool strbuf_failed(const strbuf_t *b);

/* Hands the text over to the caller (free() it) and leaves b empty. NULL,
 * with nothing leaked, when an append failed; "" (allocated) when nothing was
 * added. *len, when len is not NULL, gets the byte count. */
char *strbuf_take(strbuf_t *b, size_t *len);

/* Frees the memory and leaves b as STRBUF_INIT. NULL is accepted. */
void strbuf_free(strbuf_t *b);

#endif
