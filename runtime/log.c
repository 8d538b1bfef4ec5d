/* log.c - JSON log lines: building, escaping and bounding one line, and
 * writing it whole.
 *
 * A line is built in a stack buffer of LOG_LINE_MAX bytes (plus one of the
 * same size for a printf message), so logging never allocates and works when
 * malloc does not. Room for the closing `,"truncated":true}\n` is always kept
 * back, which is what lets any cut still end in valid JSON. */
#include "runtime/log.h"
#include "runtime/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEVEL_UNSET (-1)
#define CTX_VALUE_MAX 256 /* escaped bytes kept of one context field */

static const char TRUNC_TAIL[] = ",\"truncated\":true}\n";
#define TAIL_LEN (sizeof TRUNC_TAIL - 1)

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Names a kv key may not take; such a key is written as "kv.<key>". */
static const char *const fixed_fields[] = {"ts",     "level", "msg",      "actor",
                                           "msg_id", "corr",  "truncated"};

static _Atomic int min_level = LEVEL_UNSET; /* LEVEL_UNSET (info) until log_set_level */
static _Atomic int out_fd = 2;              /* where lines go */
/* Lines can be longer than PIPE_BUF, and above it the kernel may interleave
 * two writers on a pipe; holding this across the write keeps lines whole. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    char *buf;  /* the line (the caller's buffer); not NUL-terminated */
    size_t len; /* bytes used */
    size_t lim; /* bytes that may be used now; below LOG_LINE_MAX to keep the tail */
    bool cut;   /* something was left out: the line gets "truncated":true */
} line_t;

/* ---- levels --------------------------------------------------------------- */

static int clamp_level(int l)
{
    return l < LOG_DEBUG ? LOG_DEBUG : l > LOG_ERROR ? LOG_ERROR : l;
}

static int current_level(void)
{
    /* Unset until log_set_level: the commands set the configured level
     * (log_level, FENTA_LOG_LEVEL: cli/config.h) before they start anything. */
    int lv = atomic_load_explicit(&min_level, memory_order_relaxed);
    return lv != LEVEL_UNSET ? lv : LOG_INFO;
}

void log_set_level(log_level_t level)
{
    atomic_store(&min_level, clamp_level((int)level));
}

void log_set_fd(int fd)
{
    atomic_store(&out_fd, fd);
}

int log_enabled(log_level_t level)
{
    return clamp_level((int)level) >= current_level();
}

/* ---- escaping ------------------------------------------------------------- */

/* Escapes the character at s into out and returns the bytes written (1..6);
 * *used gets the bytes of s consumed. Bytes that are not valid UTF-8 become
 * U+FFFD, one per maximal invalid subpart (Unicode ch. 3.9): a stray byte costs
 * one replacement and the valid text after it survives. Overlongs, surrogates
 * and code points past U+10FFFF are invalid by the range of the second byte.
 * s is NUL-terminated and NUL is never a continuation byte, so reading ahead
 * stops at the end of the string. */
static size_t esc_char(const unsigned char *s, size_t *used, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    *used = 1;
    if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = (char)c;
        return 2;
    }
    if (c < 0x20 || c == 0x7f) { /* DEL is legal JSON but no nicer on a terminal */
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 0xf];
        return 6;
    }
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    size_t n = 0;                       /* length of the sequence c starts; 0: c starts none */
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the next byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlongs */
        hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80; /* no overlongs */
        hi = c == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
    }
    size_t i = 1;
    for (; i < n; i++) {
        if (s[i] < lo || s[i] > hi)
            break;
        lo = 0x80;
        hi = 0xbf;
    }
    *used = i;
    if (n > 0 && i == n) {
        memcpy(out, s, n);
        return n;
    }
    memcpy(out, "\xef\xbf\xbd", 3);
    return 3;
}

/* Bytes put_esc would write for s with at most cap bytes of room. */
static size_t esc_len(const char *s, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t total = 0;
    while (*p) {
        char e[6];
        size_t used, n = esc_char(p, &used, e);
        if (total + n > cap)
            break;
        total += n;
        p += used;
    }
    return total;
}

/* ---- building a line ------------------------------------------------------ */

static bool put_raw(line_t *l, const char *s, size_t n)
{
    if (l->len + n > l->lim) {
        l->cut = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

/* Appends s escaped, whole characters only, as much as fits. */
static bool put_esc(line_t *l, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char e[6];
        size_t used, n = esc_char(p, &used, e);
        if (!put_raw(l, e, n))
            return false;
        p += used;
    }
    return true;
}

/* Appends ,"<prefix><key>":"<val>" with at most cap escaped bytes of val, or
 * ,"<prefix><key>":null when val is NULL. A value that does not fit is cut and
 * still closed with its quote; a field whose key does not fit is left out. */
static void put_field(line_t *l, const char *prefix, const char *key, const char *val, size_t cap)
{
    size_t start = l->len, lim = l->lim;
    l->lim = lim - 1; /* the closing quote always fits, whatever gets cut */
    bool ok = put_raw(l, ",\"", 2) && put_raw(l, prefix, strlen(prefix)) && put_esc(l, key) &&
              (val ? put_raw(l, "\":\"", 3) : put_raw(l, "\":null", 6));
    if (!ok) {
        l->len = start;
    } else if (val) {
        if (cap < l->lim - l->len)
            l->lim = l->len + cap;
        put_esc(l, val); /* stopped by cap or by the line, it marks l->cut */
        l->buf[l->len++] = '"';
    }
    l->lim = lim;
}

/* Exactly what put_field writes for a context field. */
static size_t ctx_field_len(const char *key, const char *val)
{
    return 2 + strlen(key) + 3 + esc_len(val, CTX_VALUE_MAX) + 1;
}

static bool is_fixed_field(const char *key)
{
    for (size_t i = 0; i < sizeof fixed_fields / sizeof fixed_fields[0]; i++)
        if (strcmp(key, fixed_fields[i]) == 0)
            return true;
    return false;
}

/* Days since 1970-01-01 -> civil date (H. Hinnant's days_from_civil inverse):
 * integer arithmetic only, because gmtime_r and strftime are not
 * async-signal-safe and a crash handler formats its line with this code. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Writes v as exactly n decimal digits at p. */
static void put_digits(char *p, int64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
}

static void put_ts(line_t *l, int64_t ms)
{
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (y < 0 || y > 9999) { /* four digits, as ISO 8601 wants without a sign */
        y = 1970;
        mo = d = 1;
        rem = frac = 0;
    }
    char ts[24] = "0000-00-00T00:00:00.000Z";
    put_digits(ts, y, 4);
    put_digits(ts + 5, mo, 2);
    put_digits(ts + 8, d, 2);
    put_digits(ts + 11, rem / 3600, 2);
    put_digits(ts + 14, rem / 60 % 60, 2);
    put_digits(ts + 17, rem % 60, 2);
    put_digits(ts + 20, frac, 3);
    put_raw(l, ts, sizeof ts);
}

/* ---- writing -------------------------------------------------------------- */

static void write_line(const char *buf, size_t len)
{
    int fd = atomic_load_explicit(&out_fd, memory_order_relaxed);
    pthread_mutex_lock(&write_lock);
    /* One write in practice; a short write (signal, full pipe) is finished
     * under the lock so the line still arrives whole. */
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* nowhere to report it; the line is lost */
        buf += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&write_lock);
}

/* Builds the line into l. Space goes first to ts and level, then the
 * context fields (reserved before msg is written, so a huge message cannot
 * push out the ids needed to find it), then msg, then kv in order. Uses
 * neither locks, nor the heap, nor stdio: log_format runs in signal handlers. */
static void build(line_t *l, char *buf, size_t cap, int level, const log_ctx_t *ctx,
                  const char *msg, bool msg_cut, const char *const *kv)
{
    static const char *const ctx_keys[] = {"actor", "msg_id", "corr"};
    const char *ctx_vals[] = {ctx ? ctx->actor : NULL, ctx ? ctx->msg_id : NULL,
                              ctx ? ctx->corr : NULL};
    *l = (line_t){.buf = buf, .len = 0, .lim = cap - TAIL_LEN, .cut = msg_cut};
    put_raw(l, "{\"ts\":\"", 7);
    put_ts(l, clock_now_ms());
    put_raw(l, "\",\"level\":\"", 11);
    put_raw(l, level_names[level], strlen(level_names[level]));
    put_raw(l, "\"", 1);

    size_t reserve = 0; /* at most 3 * 268 bytes, inside any cap >= LOG_FORMAT_MIN */
    for (size_t i = 0; i < 3; i++)
        if (ctx_vals[i])
            reserve += ctx_field_len(ctx_keys[i], ctx_vals[i]);
    l->lim -= reserve;
    put_field(l, "", "msg", msg ? msg : "", SIZE_MAX);
    l->lim += reserve;
    for (size_t i = 0; i < 3; i++)
        if (ctx_vals[i])
            put_field(l, "", ctx_keys[i], ctx_vals[i], CTX_VALUE_MAX);

    for (size_t i = 0; kv && kv[i]; i += 2) {
        put_field(l, is_fixed_field(kv[i]) ? "kv." : "", kv[i], kv[i + 1], SIZE_MAX);
        if (!kv[i + 1])
            break; /* NULL is also the terminator: nothing after it is ours to read */
    }

    /* lim kept TAIL_LEN bytes back, so either ending fits. */
    if (l->cut) {
        memcpy(l->buf + l->len, TRUNC_TAIL, TAIL_LEN);
        l->len += TAIL_LEN;
    } else {
        memcpy(l->buf + l->len, "}\n", 2);
        l->len += 2;
    }
}

static void emit(int level, const log_ctx_t *ctx, const char *msg, bool msg_cut,
                 const char *const *kv)
{
    char buf[LOG_LINE_MAX];
    line_t l;
    build(&l, buf, sizeof buf, level, ctx, msg, msg_cut, kv);
    write_line(l.buf, l.len);
}

size_t log_format(char *out, size_t cap, log_level_t level, const log_ctx_t *ctx, const char *msg,
                  const char *const *kv)
{
    if (cap < LOG_FORMAT_MIN)
        return 0;
    if (cap > LOG_LINE_MAX)
        cap = LOG_LINE_MAX;
    line_t l;
    build(&l, out, cap, clamp_level((int)level), ctx, msg ? msg : "", false, kv);
    return l.len;
}

int log_fd(void)
{
    return atomic_load_explicit(&out_fd, memory_order_relaxed);
}

void log_msg(log_level_t level, const log_ctx_t *ctx, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    int saved_errno = errno; /* callers log between a failed call and reading errno */
    char msg[LOG_LINE_MAX];  /* longer would be cut from the line anyway */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    emit(clamp_level((int)level), ctx, msg, n >= (int)sizeof msg, NULL);
    errno = saved_errno;
}

void log_kv(log_level_t level, const log_ctx_t *ctx, const char *msg, const char *const *kv)
{
    if (!log_enabled(level))
        return;
    int saved_errno = errno;
    emit(clamp_level((int)level), ctx, msg, false, kv);
    errno = saved_errno;
}
