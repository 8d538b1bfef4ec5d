/* cron.c - parses five-field cron expressions into bit sets and walks local
 * days, hours and minutes to the next fire time; syntax and DST rules are in
 * the header. */
#include "actors/schedules/cron.h"
#include "runtime/error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIELD_MAX 255 /* longest field text accepted */

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

/* What each field accepts; the parser reads only this table. */
typedef struct field_spec {
    const char *name;         /* field name in errors */
    int lo, hi;               /* accepted values */
    const char *const *names; /* three-letter names, names[0] meaning lo, or NULL */
    int nnames;               /* entries in names */
    const char *kind;         /* what a name is, for errors ("month", "day") */
} field_spec_t;

static const field_spec_t fields[F_COUNT] = {
    {"minute", 0, 59, NULL, 0, NULL},           {"hour", 0, 23, NULL, 0, NULL},
    {"day_of_month", 1, 31, NULL, 0, NULL},     {"month", 1, 12, month_names, 12, "month"},
    {"day_of_week", 0, 7, day_names, 7, "day"},
};

/* Macros and the expressions they stand for. */
static const struct {
    const char *name;
    const char *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

struct cron {
    uint64_t bits[F_COUNT]; /* bit v set when value v matches; day of week folded to 0-6 */
    bool dom_star;          /* day-of-month field started with '*' (Vixie DOM_STAR) */
    bool dow_star;          /* day-of-week field started with '*' (Vixie DOW_STAR) */
};

static cron_t *fail(cron_error_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static cron_t *fail(cron_error_t *err, const char *field, const char *fmt, ...)
{
    if (!err)
        return NULL;
    err->field = field;
    int n = snprintf(err->message, sizeof err->message, "%s: ", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message + n, sizeof err->message - (size_t)n, fmt, ap);
    va_end(ap);
    return NULL;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_letter(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* ---- parsing ------------------------------------------------------------------ */

/* Reads a number or (where the field has them) a name at *p into *v. */
static bool parse_value(const field_spec_t *f, const char **p, int *v, const char *item,
                        cron_error_t *err)
{
    const char *s = *p;
    if (is_digit(*s)) {
        long n = 0;
        size_t digits = 0;
        for (; is_digit(*s); s++, digits++)
            n = digits < 9 ? n * 10 + (*s - '0') : n;
        if (digits > 9 || n < f->lo || n > f->hi) {
            fail(err, f->name, "%.*s is out of range %d-%d", (int)(s - *p), *p, f->lo, f->hi);
            return false;
        }
        *v = (int)n;
        *p = s;
        return true;
    }
    if (is_letter(*s)) {
        while (is_letter(*s))
            s++;
        int len = (int)(s - *p);
        if (!f->names) {
            fail(err, f->name, "\"%.*s\" is not a number", len, *p);
            return false;
        }
        for (int i = 0; i < f->nnames && len == 3; i++) {
            if (strncasecmp(*p, f->names[i], 3) == 0) {
                *v = f->lo + i;
                *p = s;
                return true;
            }
        }
        fail(err, f->name, "\"%.*s\" is not a %s name (%s-%s)", len, *p, f->kind, f->names[0],
             f->names[f->nnames - 1]);
        return false;
    }
    if (*s == '\0')
        fail(err, f->name, "\"%s\" ends where a value was expected", item);
    else
        fail(err, f->name, "unexpected \"%s\" in \"%s\"", s, item);
    return false;
}

/* One list item: "*", "a" or "a-b", optionally followed by "/step". */
static bool parse_item(const field_spec_t *f, const char *item, uint64_t *bits, cron_error_t *err)
{
    const char *p = item;
    int lo, hi, step = 1;
    if (*p == '*') {
        p++;
        lo = f->lo, hi = f->hi;
    } else {
        if (!parse_value(f, &p, &lo, item, err))
            return false;
        hi = lo;
        if (*p == '-') {
            p++;
            if (!parse_value(f, &p, &hi, item, err))
                return false;
            if (hi < lo) {
                fail(err, f->name, "range %.*s is reversed; write the smaller end first",
                     (int)(p - item), item);
                return false;
            }
        } else if (*p == '/') {
            hi = f->hi; /* "a/n": from a to the end of the field */
        }
    }
    if (*p == '/') {
        p++;
        const char *s = p;
        long n = 0;
        size_t digits = 0;
        for (; is_digit(*p); p++, digits++)
            n = digits < 9 ? n * 10 + (*p - '0') : n;
        int span = f->hi - f->lo + 1;
        if (digits == 0) {
            const char *e = s;
            while (*e && *e != '/')
                e++;
            if (e == s)
                fail(err, f->name, "\"%s\" has no step after \"/\"", item);
            else
                fail(err, f->name, "step \"%.*s\" is not a number", (int)(e - s), s);
            return false;
        }
        if (digits > 9 || n < 1 || n > span) {
            fail(err, f->name, "step %.*s is out of range 1-%d", (int)(p - s), s, span);
            return false;
        }
        step = (int)n;
    }
    if (*p != '\0') {
        fail(err, f->name, "unexpected \"%s\" in \"%s\"", p, item);
        return false;
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << v;
    return true;
}

/* A whole field: a comma list of items. */
static bool parse_field(const field_spec_t *f, const char *text, uint64_t *bits, cron_error_t *err)
{
    char item[FIELD_MAX + 1];
    const char *s = text;
    *bits = 0;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len == 0) {
            fail(err, f->name, "empty item in list \"%s\"", text);
            return false;
        }
        memcpy(item, s, len);
        item[len] = '\0';
        if (!parse_item(f, item, bits, err))
            return false;
        if (!comma)
            return true;
        s = comma + 1;
    }
}

/* Splits s into at most max blank-separated tokens; returns how many there
 * were (which may exceed max). */
static int split(const char *s, const char **tok, size_t *len, int max)
{
    int n = 0;
    for (;;) {
        while (is_blank(*s))
            s++;
        if (*s == '\0')
            return n;
        const char *start = s;
        while (*s && !is_blank(*s))
            s++;
        if (n < max) {
            tok[n] = start;
            len[n] = (size_t)(s - start);
        }
        n++;
    }
}

static cron_t *parse_fields(const char *expr, cron_error_t *err)
{
    const char *tok[F_COUNT + 1];
    size_t len[F_COUNT + 1];
    int n = split(expr, tok, len, F_COUNT + 1);
    if (n == 0)
        return fail(err, "expression", "the expression is empty");
    if (tok[0][0] == '@') {
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
            if (len[0] == strlen(macros[i].name) &&
                strncasecmp(tok[0], macros[i].name, len[0]) == 0) {
                if (n > 1)
                    return fail(err, "expression", "%s takes no fields, found \"%.*s\" after it",
                                macros[i].name, (int)len[1], tok[1]);
                return parse_fields(macros[i].expr, err);
            }
        }
        return fail(err, "expression",
                    "unknown macro \"%.*s\" (known: @yearly, @annually, @monthly, @weekly, "
                    "@daily, @midnight, @hourly)",
                    (int)(len[0] > 40 ? 40 : len[0]), tok[0]);
    }
    if (n != F_COUNT)
        return fail(err, "expression",
                    "expected 5 fields (minute hour day_of_month month day_of_week), found %d", n);
    cron_t *c = calloc(1, sizeof *c);
    if (!c)
        return fail(err, "expression", "out of memory");
    for (int i = 0; i < F_COUNT; i++) {
        char text[FIELD_MAX + 1];
        if (len[i] > FIELD_MAX) {
            free(c);
            return fail(err, fields[i].name, "field is longer than %d characters", FIELD_MAX);
        }
        memcpy(text, tok[i], len[i]);
        text[len[i]] = '\0';
        if (!parse_field(&fields[i], text, &c->bits[i], err)) {
            free(c);
            return NULL;
        }
    }
    c->dom_star = tok[F_DOM][0] == '*';
    c->dow_star = tok[F_DOW][0] == '*';
    if (c->bits[F_DOW] & (1u << 7)) /* 7 is Sunday too */
        c->bits[F_DOW] = (c->bits[F_DOW] | 1u) & 0x7F;
    return c;
}

cron_t *cron_parse(const char *expr, cron_error_t *err)
{
    if (err) {
        err->field = NULL;
        err->message[0] = '\0';
    }
    if (!expr)
        return fail(err, "expression", "the expression is empty");
    return parse_fields(expr, err);
}

void cron_destroy(cron_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

/* ---- next fire time --------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool has(uint64_t bits, int v)
{
    return (bits >> v) & 1;
}

static bool day_matches(const cron_t *c, int64_t days)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(days, &y, &m, &d);
    if (!has(c->bits[F_MONTH], m))
        return false;
    int wd = (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    bool dom = has(c->bits[F_DOM], d), dow = has(c->bits[F_DOW], wd);
    return (c->dom_star || c->dow_star) ? dom && dow : dom || dow;
}

/* The instant a matching wall time fires at: its first occurrence, or for a
 * wall time in a gap the instant the gap ends (tz_local_to_utc gives both in
 * out[0]). Non-decreasing in wall, which is why the first wall time that
 * fires after after_utc is the answer. */
static int64_t fire_instant(const tz_t *zone, int64_t wall)
{
    int64_t out[2];
    tz_local_to_utc(zone, wall, out);
    return out[0];
}

int cron_next(const cron_t *c, const tz_t *zone, int64_t after_utc, int64_t *next_utc)
{
    const int64_t min_t = tz_days_from_civil(1, 1, 1) * 86400;
    const int64_t max_t = tz_days_from_civil(10000, 1, 1) * 86400 - 1;
    if (!c || !next_utc || after_utc < min_t || after_utc > max_t)
        return FENTA_EINVAL;
    /* No wall time at or before the one shown at after_utc can fire after
     * it, so the walk starts at the next whole local minute. Wall times past
     * it may still fire earlier (the repeated hour after clocks go back), so
     * each candidate is checked, not just the first. */
    int64_t local = after_utc + tz_offset_at(zone, after_utc);
    int64_t start = floor_div(local, 60) * 60 + 60;
    int64_t day = floor_div(start, 86400);
    int first_minute =
        (int)((start - day * 86400) / 60); /* minute of day to start at, first day only */
    for (int64_t i = 0; i < CRON_HORIZON_DAYS; i++, day++, first_minute = 0) {
        if (!day_matches(c, day))
            continue;
        for (int h = first_minute / 60; h < 24; h++) {
            if (!has(c->bits[F_HOUR], h))
                continue;
            int m0 = h == first_minute / 60 ? first_minute % 60 : 0;
            for (int m = m0; m < 60; m++) {
                if (!has(c->bits[F_MINUTE], m))
                    continue;
                int64_t t = fire_instant(zone, day * 86400 + h * 3600 + m * 60);
                if (t > after_utc) {
                    *next_utc = t;
                    return 0;
                }
            }
        }
    }
    return FENTA_ENOTFOUND;
}
