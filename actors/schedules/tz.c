/* tz.c - reads TZif files and their POSIX TZ footers and answers offset and
 * local-to-instant questions from them; the format notes are in the header
 * and in RFC 8536. */
#include "actors/schedules/tz.h"
#include "runtime/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DIR "/usr/share/zoneinfo"
#define TZ_NAME_MAX 255
/* Largest TZif file read; the biggest in tzdata are well under 10 KiB. */
#define TZ_FILE_MAX (1024 * 1024)
/* RFC 8536 bounds on a UT offset (-25:59:59 .. +25:59:59), which bound the
 * window of instants that can show a given wall time. */
#define TZ_OFF_MIN (-93599)
#define TZ_OFF_MAX 93599
#define DAY 86400
/* Instants beyond +-10^13 s (about 317,000 years) are answered as if at the
 * limit, which keeps every calculation below far from int64_t overflow. */
#define TZ_T_LIMIT 10000000000000LL

/* One end of a daylight-saving period in a POSIX TZ string. */
typedef struct tz_date {
    char kind;   /* 'J' Julian day 1-365 without Feb 29, 'N' zero-based day 0-365, 'M' month rule */
    int a, b, c; /* J/N: a = day; M: a = month 1-12, b = week 1-5 (5 = last), c = weekday 0-6 */
    int32_t time; /* seconds after local midnight, -167h..167h */
} tz_date_t;

/* The POSIX TZ rule of a footer: a fixed offset or a yearly DST pair. */
typedef struct tz_rule {
    int32_t std_off; /* standard offset, seconds east of UTC */
    int32_t dst_off; /* daylight offset, seconds east of UTC */
    bool has_dst;    /* false: std_off all year */
    tz_date_t start; /* DST starts, in standard local time */
    tz_date_t end;   /* DST ends, in daylight local time */
} tz_rule_t;

struct tz {
    char *name;     /* as given to tz_load; owned */
    size_t n;       /* number of transitions */
    int64_t *at;    /* transition instants, strictly ascending; owned */
    int32_t *off;   /* off[i] is in force from at[i] on; owned */
    int32_t off0;   /* in force before at[0] (time type 0), and always when n == 0 and no rule */
    bool has_rule;  /* a non-empty footer: rule governs from at[n-1] on (all time if n == 0) */
    tz_rule_t rule; /* the footer's rule when has_rule */
};

/* fenta_fail for the functions that answer a tz_t: the message, and NULL. */
#define fail(err, errlen, ...)                                                                     \
    ((void)fenta_fail(err, errlen, FENTA_EINVAL, __VA_ARGS__), (tz_t *)NULL)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- civil calendar (H. Hinnant's days_from_civil / civil_from_days) -------- */

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t z, int64_t *year, int *month, int *day)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = m;
    *year = yoe + era * 400 + (m <= 2);
}

int64_t tz_civil_to_seconds(const tz_civil_t *c)
{
    int64_t months = (int64_t)c->year * 12 + (c->month - 1);
    int64_t y = floor_div(months, 12);
    int m = (int)(months - y * 12) + 1;
    int64_t days = tz_days_from_civil(y, m, 1) + (c->day - 1);
    return days * DAY + (int64_t)c->hour * 3600 + (int64_t)c->minute * 60 + c->second;
}

void tz_civil_from_seconds(int64_t s, tz_civil_t *c)
{
    int64_t days = floor_div(s, DAY);
    int64_t sod = s - days * DAY;
    int64_t y;
    tz_civil_from_days(days, &y, &c->month, &c->day);
    c->year = (int)y;
    c->hour = (int)(sod / 3600);
    c->minute = (int)(sod % 3600 / 60);
    c->second = (int)(sod % 60);
    c->weekday = (int)((days + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ---- POSIX TZ strings ------------------------------------------------------ */

/* A zone abbreviation: three or more letters, or <...> of letters, digits, + and -. */
static bool parse_abbr(const char **p)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '<') {
        s++;
        while (s[n] && s[n] != '>') {
            char ch = s[n];
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '-'))
                return false;
            n++;
        }
        if (s[n] != '>' || n < 3)
            return false;
        *p = s + n + 1;
        return true;
    }
    while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
        n++;
    if (n < 3)
        return false;
    *p = s + n;
    return true;
}

/* [+-]hh[:mm[:ss]] with hours up to max_h; the value keeps the written sign. */
static bool parse_hms(const char **p, int max_h, int32_t *out)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int part[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        if (*s < '0' || *s > '9')
            return false;
        int v = 0, digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3)
            v = v * 10 + (*s++ - '0'), digits++;
        if (*s >= '0' && *s <= '9')
            return false;
        part[i] = v;
    }
    if (part[0] > max_h || part[1] > 59 || part[2] > 59)
        return false;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return true;
}

static bool parse_num(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4)
        v = v * 10 + (*s++ - '0'), digits++;
    if (digits == 0 || v < lo || v > hi)
        return false;
    *out = v;
    *p = s;
    return true;
}

/* ,date[/time] */
static bool parse_date(const char **p, tz_date_t *d)
{
    const char *s = *p;
    if (*s++ != ',')
        return false;
    if (*s == 'J') {
        s++;
        d->kind = 'J';
        if (!parse_num(&s, 1, 365, &d->a))
            return false;
    } else if (*s == 'M') {
        s++;
        d->kind = 'M';
        if (!parse_num(&s, 1, 12, &d->a) || *s++ != '.' || !parse_num(&s, 1, 5, &d->b) ||
            *s++ != '.' || !parse_num(&s, 0, 6, &d->c))
            return false;
    } else {
        d->kind = 'N';
        if (!parse_num(&s, 0, 365, &d->a))
            return false;
    }
    d->time = 7200;
    if (*s == '/') {
        s++;
        if (!parse_hms(&s, 167, &d->time))
            return false;
    }
    *p = s;
    return true;
}

/* std offset [dst [offset] [,start[/time],end[/time]]]; POSIX offsets count
 * west of UTC, so they are negated into our seconds-east. */
static bool parse_rule(const char *s, tz_rule_t *r)
{
    memset(r, 0, sizeof *r);
    int32_t v;
    if (!parse_abbr(&s) || !parse_hms(&s, 24, &v))
        return false;
    r->std_off = -v;
    if (*s == '\0')
        return true;
    if (!parse_abbr(&s))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!parse_hms(&s, 24, &v))
            return false;
        r->dst_off = -v;
    }
    if (*s == '\0') {
        /* POSIX leaves the default rule to the implementation; tzcode and
         * glibc use the US one. */
        r->start = (tz_date_t){'M', 3, 2, 0, 7200};
        r->end = (tz_date_t){'M', 11, 1, 0, 7200};
        return true;
    }
    return parse_date(&s, &r->start) && parse_date(&s, &r->end) && *s == '\0';
}

/* The local midnight starting the day a rule date names in year y, in days since 1970. */
static int64_t rule_day(const tz_date_t *d, int64_t y)
{
    int64_t jan1 = tz_days_from_civil(y, 1, 1);
    if (d->kind == 'J')
        return jan1 + d->a - 1 + (is_leap(y) && d->a >= 60);
    if (d->kind == 'N')
        return jan1 + d->a;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t first = tz_days_from_civil(y, d->a, 1);
    int wd = (int)((first + 4) % 7 + 7) % 7;
    int64_t day = first + (d->c - wd + 7) % 7 + (int64_t)(d->b - 1) * 7;
    int len = mdays[d->a - 1] + (d->a == 2 && is_leap(y));
    while (day >= first + len)
        day -= 7;
    return day;
}

/* The instants DST starts and ends in year y. */
static void rule_year(const tz_rule_t *r, int64_t y, int64_t *start, int64_t *end)
{
    *start = rule_day(&r->start, y) * DAY + r->start.time - r->std_off;
    *end = rule_day(&r->end, y) * DAY + r->end.time - r->dst_off;
}

static int64_t utc_year(int64_t t)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(floor_div(t, DAY), &y, &m, &d);
    return y;
}

static int64_t clamp(int64_t t)
{
    return t < -TZ_T_LIMIT ? -TZ_T_LIMIT : t > TZ_T_LIMIT ? TZ_T_LIMIT : t;
}

static int32_t rule_offset(const tz_rule_t *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    t = clamp(t);
    /* The latest start or end at or before t decides; three years around t
     * cover rules whose dates spill over New Year (all-year DST is written
     * as an end at the very instant of the next start; a tie goes to DST). */
    int64_t y = utc_year(t), best = INT64_MIN;
    int32_t off = r->std_off;
    for (int64_t k = y - 1; k <= y + 1; k++) {
        int64_t s, e;
        rule_year(r, k, &s, &e);
        if (e <= t && e > best)
            best = e, off = r->std_off;
        if (s <= t && s >= best)
            best = s, off = r->dst_off;
    }
    return off;
}

/* The first start or end strictly after t, or INT64_MAX. */
static int64_t rule_next(const tz_rule_t *r, int64_t t)
{
    if (!r->has_dst || t >= TZ_T_LIMIT)
        return INT64_MAX;
    t = clamp(t);
    int64_t y = utc_year(t), best = INT64_MAX;
    for (int64_t k = y - 1; k <= y + 2; k++) {
        int64_t s, e;
        rule_year(r, k, &s, &e);
        if (s > t && s < best)
            best = s;
        if (e > t && e < best)
            best = e;
    }
    return best;
}

/* ---- queries ------------------------------------------------------------------ */

/* Index of the last transition at or before t, or -1. */
static ptrdiff_t last_at_or_before(const tz_t *z, int64_t t)
{
    size_t lo = 0, hi = z->n; /* answer index + 1 lies in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

int64_t tz_offset_at(const tz_t *z, int64_t utc)
{
    if (!z)
        return 0;
    if (z->n == 0)
        return z->has_rule ? rule_offset(&z->rule, utc) : z->off0;
    ptrdiff_t i = last_at_or_before(z, utc);
    if (i < 0)
        return z->off0;
    if ((size_t)i == z->n - 1 && z->has_rule)
        return rule_offset(&z->rule, utc);
    return z->off[i];
}

/* The first instant after t at which the offset may change, or INT64_MAX. */
static int64_t next_transition(const tz_t *z, int64_t t)
{
    ptrdiff_t i = last_at_or_before(z, t);
    if ((size_t)(i + 1) < z->n)
        return z->at[i + 1];
    return z->has_rule ? rule_next(&z->rule, t) : INT64_MAX;
}

int tz_local_to_utc(const tz_t *z, int64_t local, int64_t out[2])
{
    if (!z || local < -TZ_T_LIMIT || local > TZ_T_LIMIT) {
        out[0] = clamp(local) - tz_offset_at(z, clamp(local));
        return 1;
    }
    /* Walk the stretches of constant offset across every instant that could
     * show this wall time; in each, at most one instant does. */
    int64_t lo = local - TZ_OFF_MAX - 1, hi = local - TZ_OFF_MIN + 1;
    int count = 0;
    int64_t gap_end = INT64_MIN;
    int64_t a = lo;
    int64_t off = tz_offset_at(z, a);
    while (a <= hi && count < 2) {
        int64_t b = next_transition(z, a);
        int64_t u = local - off;
        if (u >= a && u < b)
            out[count++] = u;
        if (b > hi)
            break;
        int64_t off2 = tz_offset_at(z, b);
        if (count == 0 && gap_end == INT64_MIN && off2 > off && local >= b + off &&
            local < b + off2)
            gap_end = b;
        a = b;
        off = off2;
    }
    if (count == 0)
        out[0] = gap_end != INT64_MIN ? gap_end : local - off;
    return count;
}

const char *tz_name(const tz_t *z)
{
    return z ? z->name : "UTC";
}

void tz_destroy(tz_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tz_t *z = *self_p;
    free(z->name);
    free(z->at);
    free(z->off);
    free(z);
    *self_p = NULL;
}

/* ---- TZif ------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_header {
    char version;                                                   /* 0, '2', '3', '4' */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt; /* RFC 8536 counts */
} tzif_header_t;

static bool read_header(const unsigned char *p, size_t len, tzif_header_t *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return false;
    h->version = (char)p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    /* Bounds keep the size arithmetic below far from overflow. */
    return h->timecnt <= 1000000 && h->typecnt <= 256 && h->charcnt <= 65536 &&
           h->leapcnt <= 100000 && h->isutcnt <= 256 && h->isstdcnt <= 256;
}

static size_t block_size(const tzif_header_t *h, size_t tsize)
{
    return h->timecnt * tsize + h->timecnt + h->typecnt * 6 + h->charcnt +
           h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static tz_t *zone_new(const char *name)
{
    tz_t *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    z->name = strdup(name);
    if (!z->name) {
        free(z);
        return NULL;
    }
    return z;
}

tz_t *tz_parse(const char *name, const unsigned char *data, size_t len, char *err, size_t errlen)
{
    tzif_header_t h;
    if (!name)
        name = "(unnamed)";
    if (!data || !read_header(data, len, &h))
        return fail(err, errlen, "time zone %s: not a TZif file", name);
    size_t tsize = 4;
    const unsigned char *p = data + 44;
    size_t left = len - 44;
    if (h.version >= '2') {
        /* Skip the 32-bit block; the 64-bit one after it covers all time. */
        size_t skip = block_size(&h, 4);
        if (left < skip || !read_header(p + skip, left - skip, &h))
            return fail(err, errlen, "time zone %s: truncated TZif file", name);
        p += skip + 44;
        left -= skip + 44;
        tsize = 8;
    }
    size_t need = block_size(&h, tsize);
    if (left < need)
        return fail(err, errlen, "time zone %s: truncated TZif file", name);
    if (h.leapcnt > 0)
        return fail(err, errlen, "time zone %s has leap seconds, which are not supported", name);
    if (h.typecnt == 0 || h.charcnt == 0 || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt) ||
        (h.isutcnt != 0 && h.isutcnt != h.typecnt))
        return fail(err, errlen, "time zone %s: malformed TZif counts", name);
    const unsigned char *times = p, *idx = p + h.timecnt * tsize, *types = idx + h.timecnt;
    for (uint32_t i = 0; i < h.typecnt; i++) {
        int32_t off = (int32_t)be32(types + i * 6);
        if (off < TZ_OFF_MIN || off > TZ_OFF_MAX || types[i * 6 + 5] >= h.charcnt)
            return fail(err, errlen, "time zone %s: malformed local time type", name);
    }

    tz_rule_t rule;
    bool has_rule = false;
    if (tsize == 8) {
        /* Footer: "\n" TZ string "\n"; an empty string means no rule. */
        const char *f = (const char *)p + need;
        size_t flen = left - need;
        char buf[128];
        if (flen < 2 || f[0] != '\n')
            return fail(err, errlen, "time zone %s: missing TZif footer", name);
        const char *nl = memchr(f + 1, '\n', flen - 1);
        size_t slen = nl ? (size_t)(nl - f - 1) : sizeof buf;
        if (slen >= sizeof buf)
            return fail(err, errlen, "time zone %s: malformed TZif footer", name);
        memcpy(buf, f + 1, slen);
        buf[slen] = '\0';
        if (slen > 0) {
            if (!parse_rule(buf, &rule))
                return fail(err, errlen, "time zone %s: unsupported TZ rule \"%s\"", name, buf);
            has_rule = true;
        }
    }

    tz_t *z = zone_new(name);
    if (!z)
        return fail(err, errlen, "out of memory");
    z->off0 = (int32_t)be32(types);
    z->has_rule = has_rule;
    if (has_rule)
        z->rule = rule;
    if (h.timecnt > 0) {
        z->at = malloc(h.timecnt * sizeof *z->at);
        z->off = malloc(h.timecnt * sizeof *z->off);
        if (!z->at || !z->off) {
            tz_destroy(&z);
            return fail(err, errlen, "out of memory");
        }
    }
    for (uint32_t i = 0; i < h.timecnt; i++) {
        int64_t t = tsize == 8 ? be64(times + i * 8) : (int32_t)be32(times + i * 4);
        if (idx[i] >= h.typecnt || (i > 0 && t <= z->at[i - 1])) {
            tz_destroy(&z);
            return fail(err, errlen, "time zone %s: malformed transitions", name);
        }
        z->at[i] = t;
        z->off[i] = (int32_t)be32(types + idx[i] * 6);
    }
    z->n = h.timecnt;
    return z;
}

/* ---- loading by name ------------------------------------------------------------ */

static bool name_ok(const char *name, char *err, size_t errlen)
{
    size_t len = strlen(name);
    if (len == 0) {
        (void)fenta_fail(err, errlen, FENTA_EINVAL, "time zone name is empty");
        return false;
    }
    if (len > TZ_NAME_MAX) {
        (void)fenta_fail(err, errlen, FENTA_EINVAL, "time zone name is longer than %d characters",
                         TZ_NAME_MAX);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '/' || ch == '_' || ch == '-' || ch == '+' || ch == '.')) {
            (void)fenta_fail(
                err, errlen, FENTA_EINVAL,
                "time zone name \"%s\" has a character other than letters, digits and / _ - + .",
                name);
            return false;
        }
    }
    /* Every component must be non-empty and must not start with '.': no
     * "..", no absolute paths, no hidden files, nothing outside the tree. */
    for (const char *c = name;; c++) {
        if (*c == '/' || *c == '.' || *c == '\0') {
            (void)fenta_fail(
                err, errlen, FENTA_EINVAL,
                "time zone name \"%s\" is not a zone name (empty component or one starting with "
                "\".\")",
                name);
            return false;
        }
        c = strchr(c, '/');
        if (!c)
            return true;
    }
}

static bool is_utc_name(const char *name)
{
    return strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0;
}

tz_t *tz_load(const char *name, char *err, size_t errlen)
{
    if (!name)
        return fail(err, errlen, "time zone name is missing");
    if (!name_ok(name, err, errlen))
        return NULL;
    if (is_utc_name(name)) {
        tz_t *z = zone_new(name);
        return z ? z : fail(err, errlen, "out of memory");
    }
    char path[sizeof TZ_DIR + TZ_NAME_MAX + 1];
    snprintf(path, sizeof path, "%s/%s", TZ_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return fail(err, errlen, "unknown time zone \"%s\"", name);
        return fail(err, errlen, "time zone %s: cannot open %s: %s", name, path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, "unknown time zone \"%s\"", name);
    }
    if (st.st_size > TZ_FILE_MAX) {
        close(fd);
        return fail(err, errlen, "time zone %s: not a TZif file", name);
    }
    size_t size = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return fail(err, errlen, "out of memory");
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    tz_t *z = tz_parse(name, buf, got, err, errlen);
    free(buf);
    return z;
}
