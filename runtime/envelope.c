/* envelope.c - the envelope's life cycle and its msgpack wire form.
 *
 * The wire form is declared once, in the fields[] table below; encode and
 * decode both walk it. Encoding uses msgpack-c's packer. Decoding does not use
 * msgpack_unpack: it preallocates n objects from a container's header before
 * it has seen any of them, so five bytes ("\xdf\x7f\xff\xff\xff") make it ask
 * for 128 GiB (ASan aborts; without it the allocator may hand out a few GiB of
 * overcommitted memory). Every message here comes from another process, so
 * the decoder below reads the bytes in place, checks each length against what
 * is left of the buffer before trusting it, allocates only the envelope's own
 * strings, and skips unknown values iteratively, so nesting depth is no issue. */
#include "runtime/envelope.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"
#include "runtime/vec.h"
#include <msgpack.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ENVELOPE_ERROR_MAX 1024 /* longest error text kept in the history, bytes */

/* ---- the wire form ---------------------------------------------------------- */

typedef enum {
    FK_ID,     /* bin(16) into envelope_t.id */
    FK_STR,    /* str into the char * at off */
    FK_U32,    /* non-negative int that fits in the uint32_t at off */
    FK_I64,    /* int that fits in the int64_t at off */
    FK_BODY,   /* bin into body/body_len */
    FK_HISTORY /* array of [attempt, at_ms, error] into history/history_len */
} field_kind_t;

typedef struct {
    const char *key;     /* wire key, two characters */
    field_kind_t kind;   /* how the value is written and read */
    size_t off;          /* where an FK_STR/FK_U32/FK_I64 value lives in envelope_t */
    size_t max;          /* FK_STR: longest accepted, bytes; 0 = only the buffer bounds it */
    bool required;       /* decoding fails without it */
    const char *bad;     /* reason when the value has the wrong type or range */
    const char *toolong; /* reason when an FK_STR value is longer than max */
    const char *missing; /* reason when a required key is absent */
} field_t;

static const field_t fields[] = {
    {"id", FK_ID, 0, 0, true, "\"id\" is not bin(16)", NULL, "missing \"id\""},
    {"to", FK_STR, offsetof(envelope_t, to), ENVELOPE_ADDR_MAX, true, "\"to\" is not a string",
     "\"to\" is longer than ENVELOPE_ADDR_MAX", "missing \"to\""},
    {"fr", FK_STR, offsetof(envelope_t, from), ENVELOPE_ADDR_MAX, false, "\"fr\" is not a string",
     "\"fr\" is longer than ENVELOPE_ADDR_MAX", NULL},
    {"ty", FK_STR, offsetof(envelope_t, type), ENVELOPE_ADDR_MAX, true, "\"ty\" is not a string",
     "\"ty\" is longer than ENVELOPE_ADDR_MAX", "missing \"ty\""},
    {"co", FK_STR, offsetof(envelope_t, corr), 0, false, "\"co\" is not a string", NULL, NULL},
    {"at", FK_U32, offsetof(envelope_t, attempt), 0, false, "\"at\" is not a uint32", NULL, NULL},
    {"nb", FK_I64, offsetof(envelope_t, not_before_ms), 0, false, "\"nb\" is not an int64", NULL,
     NULL},
    {"bd", FK_BODY, 0, 0, false, "\"bd\" is not bin", NULL, NULL},
    {"er", FK_HISTORY, 0, 0, false, "\"er\" is not an array of [uint32, int64, str]", NULL, NULL},
};

#define FIELD_COUNT (sizeof fields / sizeof fields[0])
_Static_assert(FIELD_COUNT <= 32, "decode tracks the fields seen in a uint32_t");

static char **field_str(envelope_t *e, const field_t *f)
{
    return (char **)((char *)e + f->off);
}

static const char *field_cstr(const envelope_t *e, const field_t *f)
{
    const char *s = *(char *const *)((const char *)e + f->off);
    return s ? s : "";
}

/* ---- life cycle ----------------------------------------------------------------- */

static char *copy_bytes_z(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static char *copy_str(const char *s)
{
    return copy_bytes_z(s ? s : "", s ? strlen(s) : 0);
}

/* Would decode accept this string for field f? Keeps new and encode honest:
 * an envelope we can build is one we can read back. */
static bool str_fits(const field_t *f, const char *s)
{
    return f->max == 0 || s == NULL || strlen(s) <= f->max;
}

static const field_t *field_by_key(const char *key, size_t len)
{
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (strlen(fields[i].key) == len && memcmp(fields[i].key, key, len) == 0)
            return &fields[i];
    }
    return NULL;
}

/* An envelope holding copies of the strings and body, no id yet; NULL when an
 * allocation fails. Shared by new (which checks its input) and dup. */
static envelope_t *alloc_copy(const char *to, const char *from, const char *type, const char *corr,
                              const void *body, size_t body_len)
{
    envelope_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->to = copy_str(to);
    e->from = copy_str(from);
    e->type = copy_str(type);
    e->corr = copy_str(corr);
    if (body_len > 0) {
        e->body = malloc(body_len);
        if (e->body != NULL) {
            memcpy(e->body, body, body_len);
            e->body_len = body_len;
        }
    }
    if (!e->to || !e->from || !e->type || !e->corr || (body_len > 0 && !e->body))
        envelope_destroy(&e);
    return e;
}

envelope_t *envelope_new(const char *to, const char *from, const char *type, const char *corr,
                         const void *body, size_t body_len)
{
    if (to == NULL || type == NULL || (body == NULL && body_len > 0))
        return NULL;
    if (!str_fits(field_by_key("to", 2), to) || !str_fits(field_by_key("fr", 2), from) ||
        !str_fits(field_by_key("ty", 2), type))
        return NULL;
    envelope_t *e = alloc_copy(to, from, type, corr, body, body_len);
    if (e != NULL)
        id_new(&e->id);
    return e;
}

envelope_t *envelope_dup(const envelope_t *self)
{
    if (self == NULL)
        return NULL;
    envelope_t *e =
        alloc_copy(self->to, self->from, self->type, self->corr, self->body, self->body_len);
    if (e == NULL)
        return NULL;
    e->id = self->id;
    e->attempt = self->attempt;
    e->not_before_ms = self->not_before_ms;
    if (self->history_len > 0) {
        e->history = calloc(self->history_len, sizeof *e->history);
        if (e->history == NULL) {
            envelope_destroy(&e);
            return NULL;
        }
        e->history_cap = self->history_len;
        for (size_t i = 0; i < self->history_len; i++) {
            const envelope_error_t *h = &self->history[i];
            e->history[i] = (envelope_error_t){h->attempt, h->at_ms, copy_str(h->error)};
            e->history_len = i + 1; /* so destroy frees what was copied so far */
            if (e->history[i].error == NULL) {
                envelope_destroy(&e);
                return NULL;
            }
        }
    }
    return e;
}

void envelope_destroy(envelope_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    envelope_t *e = *self_p;
    free(e->to);
    free(e->from);
    free(e->type);
    free(e->corr);
    free(e->body);
    for (size_t i = 0; i < e->history_len; i++)
        free(e->history[i].error);
    free(e->history);
    free(e);
    *self_p = NULL;
}

/* Cut at max bytes, backing off to a UTF-8 character boundary so a handler's
 * message in any language stays valid text. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

int envelope_add_error(envelope_t *self, uint32_t attempt, int64_t at_ms, const char *error)
{
    if (self == NULL)
        return FENTA_EINVAL;
    if (error == NULL)
        error = "";
    size_t len = utf8_cut(error, strlen(error), ENVELOPE_ERROR_MAX);
    char *text = copy_bytes_z(error, len);
    if (text == NULL)
        return FENTA_ENOMEM;
    if (vec_reserve(self->history, self->history_cap, self->history_len + 1) != 0) {
        free(text);
        return FENTA_ENOMEM;
    }
    self->history[self->history_len++] = (envelope_error_t){attempt, at_ms, text};
    return 0;
}

/* ---- encode ----------------------------------------------------------------------- */

/* msgpack-c's write callback: 0 or -1, which the packer passes back up. */
static int wbuf_write(void *data, const char *p, size_t n)
{
    strbuf_t *w = data;
    strbuf_append_len(w, p, n);
    return strbuf_failed(w) ? -1 : 0;
}

static int pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    return msgpack_pack_str(pk, len) | msgpack_pack_str_body(pk, s, len);
}

/* Refuse what decode would refuse, so every encoded envelope reads back. */
static int check_encodable(const envelope_t *self)
{
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const field_t *f = &fields[i];
        if (f->kind != FK_STR)
            continue;
        const char *s = *(char *const *)((const char *)self + f->off);
        if ((f->required && s == NULL) || !str_fits(f, s))
            return FENTA_EINVAL;
        if (s != NULL && strlen(s) > UINT32_MAX)
            return FENTA_ETOOBIG;
    }
    if (self->body == NULL && self->body_len > 0)
        return FENTA_EINVAL;
    if (self->body_len > UINT32_MAX || self->history_len > UINT32_MAX)
        return FENTA_ETOOBIG;
    if (self->history == NULL && self->history_len > 0)
        return FENTA_EINVAL;
    for (size_t i = 0; i < self->history_len; i++) {
        const char *err = self->history[i].error;
        if (err != NULL && strlen(err) > ENVELOPE_ERROR_MAX)
            return FENTA_EINVAL;
    }
    return 0;
}

/* Enough for everything but the variable parts; only a first allocation size,
 * the buffer grows past it if it is ever wrong. */
static size_t encoded_size_hint(const envelope_t *self)
{
    size_t n = 128 + self->body_len;
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (fields[i].kind == FK_STR)
            n += strlen(field_cstr(self, &fields[i]));
    }
    for (size_t i = 0; i < self->history_len; i++)
        n += 24 + (self->history[i].error ? strlen(self->history[i].error) : 0);
    return n;
}

static int pack_field(msgpack_packer *pk, const envelope_t *self, const field_t *f)
{
    int bad = pack_str(pk, f->key, strlen(f->key));
    switch (f->kind) {
    case FK_ID:
        bad |= msgpack_pack_bin_with_body(pk, self->id.b, ID_BYTES);
        break;
    case FK_STR: {
        const char *s = field_cstr(self, f);
        bad |= pack_str(pk, s, strlen(s));
        break;
    }
    case FK_U32:
        bad |= msgpack_pack_uint32(pk, *(const uint32_t *)((const char *)self + f->off));
        break;
    case FK_I64:
        bad |= msgpack_pack_int64(pk, *(const int64_t *)((const char *)self + f->off));
        break;
    case FK_BODY:
        bad |= msgpack_pack_bin_with_body(pk, self->body_len ? self->body : (const void *)"",
                                          self->body_len);
        break;
    case FK_HISTORY:
        bad |= msgpack_pack_array(pk, self->history_len);
        for (size_t i = 0; i < self->history_len; i++) {
            const envelope_error_t *h = &self->history[i];
            const char *err = h->error ? h->error : "";
            bad |= msgpack_pack_array(pk, 3);
            bad |= msgpack_pack_uint32(pk, h->attempt);
            bad |= msgpack_pack_int64(pk, h->at_ms);
            bad |= pack_str(pk, err, strlen(err));
        }
        break;
    }
    return bad;
}

int envelope_encode(const envelope_t *self, uint8_t **out, size_t *out_len)
{
    if (self == NULL || out == NULL || out_len == NULL)
        return FENTA_EINVAL;
    int rc = check_encodable(self);
    if (rc != 0)
        return rc;
    strbuf_t w = STRBUF_INIT;
    if (!strbuf_reserve(&w, encoded_size_hint(self)))
        return FENTA_ENOMEM;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, wbuf_write);
    /* Every field is written, defaults included: the form stays fixed and a
     * reader never has to guess whether a key was left out or lost. */
    int bad = msgpack_pack_map(&pk, FIELD_COUNT);
    for (size_t i = 0; i < FIELD_COUNT; i++)
        bad |= pack_field(&pk, self, &fields[i]);
    size_t len = 0;
    uint8_t *data = (uint8_t *)strbuf_take(&w, &len); /* NULL when an append failed */
    if (bad || data == NULL) {
        free(data);
        return FENTA_ENOMEM; /* the only way our write callback fails */
    }
    *out = data;
    *out_len = len;
    return 0;
}

/* ---- decode ------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last byte */
    const char *why;    /* first reason reading stopped (static), NULL while fine */
} reader_t;

typedef enum {
    MP_NIL,
    MP_BOOL,
    MP_INT,
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_EXT,
    MP_ARRAY,
    MP_MAP
} mp_kind_t;

/* One msgpack header. Payloads (str, bin, ext, float) are consumed with it;
 * a container's entries are not. */
typedef struct {
    mp_kind_t kind;      /* what the header says follows */
    int64_t i;           /* MP_INT value (when !i_big), MP_BOOL 0/1 */
    bool i_big;          /* MP_INT above INT64_MAX */
    const uint8_t *data; /* MP_STR/MP_BIN payload, in the buffer */
    size_t len;          /* MP_STR/MP_BIN payload bytes; MP_ARRAY/MP_MAP entries */
} mp_head_t;

static int rd_fail(reader_t *r, const char *why)
{
    if (r->why == NULL)
        r->why = why;
    return FENTA_EDECODE;
}

static size_t rd_left(const reader_t *r)
{
    return (size_t)(r->end - r->p);
}

/* A big-endian unsigned of n (1, 2, 4 or 8) bytes. */
static int rd_be(reader_t *r, size_t n, uint64_t *v)
{
    if (n > rd_left(r))
        return rd_fail(r, "truncated");
    *v = 0;
    for (size_t k = 0; k < n; k++)
        *v = (*v << 8) | *r->p++;
    return 0;
}

/* Payload of n bytes (a length read from the buffer: trusted only after this). */
static int rd_payload(reader_t *r, mp_head_t *h, mp_kind_t kind, uint64_t n)
{
    if (n > rd_left(r))
        return rd_fail(r, "truncated (a length runs past the end)");
    h->kind = kind;
    h->data = r->p;
    h->len = (size_t)n;
    r->p += n;
    return 0;
}

/* A container of n entries, each at least per bytes long: a count the rest
 * of the buffer cannot hold is refused before anyone sizes memory by it. */
static int rd_container(reader_t *r, mp_head_t *h, mp_kind_t kind, uint64_t n, unsigned per)
{
    if (n > rd_left(r) / per)
        return rd_fail(r, "truncated (a count runs past the end)");
    h->kind = kind;
    h->len = (size_t)n;
    return 0;
}

static int64_t sign_extend(uint64_t v, unsigned bits)
{
    uint64_t top = UINT64_C(1) << (bits - 1);
    uint64_t mask = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    if (v < top)
        return (int64_t)v;
    return -(int64_t)(~v & mask) - 1; /* two's complement without a signed overflow */
}

/* A length of width bytes, then that many plus extra bytes of payload. */
static int rd_sized(reader_t *r, mp_head_t *h, mp_kind_t kind, unsigned width, unsigned extra)
{
    uint64_t n;
    if (rd_be(r, width, &n))
        return FENTA_EDECODE;
    return rd_payload(r, h, kind, n + extra);
}

/* A count of width bytes, then that many entries of at least per bytes each. */
static int rd_counted(reader_t *r, mp_head_t *h, mp_kind_t kind, unsigned width, unsigned per)
{
    uint64_t n;
    if (rd_be(r, width, &n))
        return FENTA_EDECODE;
    return rd_container(r, h, kind, n, per);
}

static int rd_head(reader_t *r, mp_head_t *h)
{
    memset(h, 0, sizeof *h);
    if (rd_left(r) == 0)
        return rd_fail(r, "truncated");
    uint8_t t = *r->p++;
    if (t <= 0x7f || t >= 0xe0) { /* positive and negative fixint */
        h->kind = MP_INT;
        h->i = t <= 0x7f ? t : (int64_t)t - 256;
        return 0;
    }
    if (t <= 0x8f)
        return rd_container(r, h, MP_MAP, t & 0x0fu, 2);
    if (t <= 0x9f)
        return rd_container(r, h, MP_ARRAY, t & 0x0fu, 1);
    if (t <= 0xbf)
        return rd_payload(r, h, MP_STR, t & 0x1fu);
    uint64_t v;
    switch (t) {
    case 0xc0:
        h->kind = MP_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        h->kind = MP_BOOL;
        h->i = t & 1;
        return 0;
    case 0xc4: /* bin 8, 16, 32 */
    case 0xc5:
    case 0xc6:
        return rd_sized(r, h, MP_BIN, 1u << (t - 0xc4), 0);
    case 0xc7: /* ext 8, 16, 32: the length leaves out the type byte */
    case 0xc8:
    case 0xc9:
        return rd_sized(r, h, MP_EXT, 1u << (t - 0xc7), 1);
    case 0xca:
        return rd_payload(r, h, MP_FLOAT, 4);
    case 0xcb:
        return rd_payload(r, h, MP_FLOAT, 8);
    case 0xcc: /* uint 8, 16, 32, 64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (rd_be(r, 1u << (t - 0xcc), &v))
            return FENTA_EDECODE;
        h->kind = MP_INT;
        h->i_big = v > INT64_MAX;
        h->i = h->i_big ? 0 : (int64_t)v;
        return 0;
    case 0xd0: /* int 8, 16, 32, 64 */
    case 0xd1:
    case 0xd2:
    case 0xd3:
        if (rd_be(r, 1u << (t - 0xd0), &v))
            return FENTA_EDECODE;
        h->kind = MP_INT;
        h->i = sign_extend(v, 8u << (t - 0xd0));
        return 0;
    case 0xd4: /* fixext 1, 2, 4, 8, 16: a type byte and the data */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return rd_payload(r, h, MP_EXT, 1 + (1u << (t - 0xd4)));
    case 0xd9: /* str 8, 16, 32 */
    case 0xda:
    case 0xdb:
        return rd_sized(r, h, MP_STR, 1u << (t - 0xd9), 0);
    case 0xdc: /* array 16, 32 */
    case 0xdd:
        return rd_counted(r, h, MP_ARRAY, t == 0xdc ? 2 : 4, 1);
    case 0xde: /* map 16, 32: a key and a value per entry */
    case 0xdf:
        return rd_counted(r, h, MP_MAP, t == 0xde ? 2 : 4, 2);
    default: /* 0xc1 is never used */
        return rd_fail(r, "invalid msgpack type byte");
    }
}

/* Skip one whole value. Iterative: a count of values still owed instead of
 * recursion, so a deeply nested value cannot exhaust the stack. Every header
 * consumes a byte and counts are bounded by the bytes left, so it ends. */
static int rd_skip(reader_t *r)
{
    uint64_t owed = 1;
    while (owed > 0) {
        mp_head_t h;
        if (rd_head(r, &h))
            return FENTA_EDECODE;
        owed--;
        if (h.kind == MP_ARRAY)
            owed += h.len;
        else if (h.kind == MP_MAP)
            owed += 2 * (uint64_t)h.len;
    }
    return 0;
}

/* A str value checked as text we can hold in a C string: the right type,
 * within max (0 = any) and without a NUL that would silently cut it short. */
static int rd_text(reader_t *r, size_t max, const char *bad, const char *toolong, const uint8_t **s,
                   size_t *len)
{
    mp_head_t h;
    if (rd_head(r, &h))
        return FENTA_EDECODE;
    if (h.kind != MP_STR)
        return rd_fail(r, bad);
    if (max > 0 && h.len > max)
        return rd_fail(r, toolong);
    if (memchr(h.data, '\0', h.len) != NULL)
        return rd_fail(r, "a string contains a NUL byte");
    *s = h.data;
    *len = h.len;
    return 0;
}

static int rd_int(reader_t *r, int64_t min, int64_t max, const char *bad, int64_t *v)
{
    mp_head_t h;
    if (rd_head(r, &h))
        return FENTA_EDECODE;
    if (h.kind != MP_INT || h.i_big || h.i < min || h.i > max)
        return rd_fail(r, bad);
    *v = h.i;
    return 0;
}

static int decode_history(reader_t *r, envelope_t *e, const field_t *f)
{
    mp_head_t h;
    if (rd_head(r, &h))
        return FENTA_EDECODE;
    if (h.kind != MP_ARRAY)
        return rd_fail(r, f->bad);
    if (h.len == 0)
        return 0;
    /* h.len is bounded by the bytes left, so this is at most a few times the input. */
    e->history = calloc(h.len, sizeof *e->history);
    if (e->history == NULL)
        return FENTA_ENOMEM;
    e->history_cap = h.len;
    for (size_t i = 0; i < h.len; i++) {
        mp_head_t entry;
        int64_t attempt, at_ms;
        const uint8_t *s;
        size_t len;
        if (rd_head(r, &entry))
            return FENTA_EDECODE;
        if (entry.kind != MP_ARRAY || entry.len != 3)
            return rd_fail(r, f->bad);
        if (rd_int(r, 0, UINT32_MAX, f->bad, &attempt) ||
            rd_int(r, INT64_MIN, INT64_MAX, f->bad, &at_ms) ||
            rd_text(r, ENVELOPE_ERROR_MAX, f->bad, "an \"er\" error is longer than 1 KiB", &s,
                    &len))
            return FENTA_EDECODE;
        char *text = copy_bytes_z(s, len);
        if (text == NULL)
            return FENTA_ENOMEM;
        e->history[i] = (envelope_error_t){(uint32_t)attempt, at_ms, text};
        e->history_len = i + 1;
    }
    return 0;
}

static int decode_field(reader_t *r, envelope_t *e, const field_t *f)
{
    mp_head_t h;
    int64_t v;
    switch (f->kind) {
    case FK_ID:
        if (rd_head(r, &h))
            return FENTA_EDECODE;
        if (h.kind != MP_BIN || h.len != ID_BYTES)
            return rd_fail(r, f->bad);
        memcpy(e->id.b, h.data, ID_BYTES);
        return 0;
    case FK_STR: {
        const uint8_t *s;
        size_t len;
        if (rd_text(r, f->max, f->bad, f->toolong, &s, &len))
            return FENTA_EDECODE;
        char **slot = field_str(e, f);
        *slot = copy_bytes_z(s, len);
        return *slot ? 0 : FENTA_ENOMEM;
    }
    case FK_U32:
        if (rd_int(r, 0, UINT32_MAX, f->bad, &v))
            return FENTA_EDECODE;
        *(uint32_t *)((char *)e + f->off) = (uint32_t)v;
        return 0;
    case FK_I64:
        if (rd_int(r, INT64_MIN, INT64_MAX, f->bad, &v))
            return FENTA_EDECODE;
        *(int64_t *)((char *)e + f->off) = v;
        return 0;
    case FK_BODY:
        if (rd_head(r, &h))
            return FENTA_EDECODE;
        if (h.kind != MP_BIN)
            return rd_fail(r, f->bad);
        if (h.len > 0) {
            e->body = malloc(h.len);
            if (e->body == NULL)
                return FENTA_ENOMEM;
            memcpy(e->body, h.data, h.len);
            e->body_len = h.len;
        }
        return 0;
    case FK_HISTORY:
        return decode_history(r, e, f);
    }
    return rd_fail(r, "unknown field kind"); /* unreachable: every kind is handled */
}

/* The top-level map header, then each key; *key is NULL for a key that is a
 * string but not one of ours. */
static int rd_key(reader_t *r, const field_t **key)
{
    mp_head_t h;
    if (rd_head(r, &h))
        return FENTA_EDECODE;
    if (h.kind != MP_STR)
        return rd_fail(r, "a map key is not a string");
    *key = field_by_key((const char *)h.data, h.len);
    return 0;
}

static int rd_envelope_map(reader_t *r, size_t *n)
{
    mp_head_t h;
    if (rd_head(r, &h))
        return FENTA_EDECODE;
    if (h.kind != MP_MAP)
        return rd_fail(r, "envelope is not a map");
    *n = h.len;
    return 0;
}

static int decode_envelope(reader_t *r, envelope_t *e)
{
    size_t n;
    uint32_t seen = 0; /* bit i: fields[i] was read */
    if (rd_envelope_map(r, &n))
        return FENTA_EDECODE;
    for (size_t i = 0; i < n; i++) {
        const field_t *f;
        if (rd_key(r, &f))
            return FENTA_EDECODE;
        if (f == NULL) { /* a newer sender's field */
            if (rd_skip(r))
                return FENTA_EDECODE;
            continue;
        }
        uint32_t bit = UINT32_C(1) << (f - fields);
        if (seen & bit) /* two values for one field: which one is meant is unknowable */
            return rd_fail(r, "duplicate key");
        seen |= bit;
        int rc = decode_field(r, e, f);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (fields[i].required && !(seen & (UINT32_C(1) << i)))
            return rd_fail(r, fields[i].missing);
    }
    if (r->p != r->end)
        return rd_fail(r, "trailing bytes after the envelope");
    /* Optional strings are "" when absent, as the struct promises. */
    if ((e->from == NULL && (e->from = copy_str("")) == NULL) ||
        (e->corr == NULL && (e->corr = copy_str("")) == NULL))
        return FENTA_ENOMEM;
    return 0;
}

int envelope_decode(const void *buf, size_t len, envelope_t **out, const char **reason)
{
    if (reason != NULL)
        *reason = NULL;
    if (out == NULL || (buf == NULL && len > 0))
        return FENTA_EINVAL;
    *out = NULL;
    if (len == 0) {
        if (reason != NULL)
            *reason = "empty buffer";
        return FENTA_EDECODE;
    }
    reader_t r = {buf, (const uint8_t *)buf + len, NULL};
    envelope_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return FENTA_ENOMEM;
    int rc = decode_envelope(&r, e);
    if (rc != 0) {
        envelope_destroy(&e);
        if (rc == FENTA_EDECODE && reason != NULL)
            *reason = r.why;
        return rc;
    }
    *out = e;
    return 0;
}

int envelope_peek_to(const void *buf, size_t len, char *to, size_t cap)
{
    if (to == NULL || cap == 0 || (buf == NULL && len > 0))
        return FENTA_EINVAL;
    to[0] = '\0';
    if (len == 0)
        return FENTA_EDECODE;
    const field_t *want = field_by_key("to", 2);
    reader_t r = {buf, (const uint8_t *)buf + len, NULL};
    size_t n;
    if (rd_envelope_map(&r, &n))
        return FENTA_EDECODE;
    for (size_t i = 0; i < n; i++) {
        const field_t *f;
        if (rd_key(&r, &f))
            return FENTA_EDECODE;
        if (f != want) {
            if (rd_skip(&r))
                return FENTA_EDECODE;
            continue;
        }
        const uint8_t *s;
        size_t slen;
        if (rd_text(&r, f->max, f->bad, f->toolong, &s, &slen))
            return FENTA_EDECODE;
        if (slen >= cap)
            return FENTA_ETOOBIG;
        memcpy(to, s, slen);
        to[slen] = '\0';
        return 0;
    }
    return FENTA_EDECODE;
}
