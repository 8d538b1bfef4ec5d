/* test_log.c - runtime/log: every line is one valid JSON object with the
 * right fields, escaping, level filtering, truncation, and whole lines from
 * concurrent writers.
 *
 * Lines are checked with a small strict parser below (flat objects of
 * strings, true, false and null; strict UTF-8; duplicate names refused)
 * rather than a JSON library, so the suite links against nothing but the
 * runtime. It is written independently of log.c's escaper. Criterion runs
 * every test in a fresh process, which the log_env test relies on. */
#include "runtime/clock.h"
#include "runtime/log.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- a strict parser for flat JSON objects --------------------------------- */

#define MAX_FIELDS 32

typedef struct {
    size_t n;              /* fields parsed */
    char *key[MAX_FIELDS]; /* decoded names */
    char *val[MAX_FIELDS]; /* decoded string values; NULL for true/false/null */
    char kind[MAX_FIELDS]; /* 's' string, 't' true, 'f' false, 'n' null */
} jobj_t;

/* Length of the valid UTF-8 sequence at p, or 0: decodes the code point and
 * rejects overlongs, surrogates and values past U+10FFFF. */
static size_t utf8_seq(const unsigned char *p)
{
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t cp;
    size_t n;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Decodes the JSON string at *pp (its opening quote) into a new string and
 * moves *pp past it; NULL if it is not a valid JSON string. */
static char *parse_string(const char **pp)
{
    const unsigned char *p = (const unsigned char *)*pp;
    if (*p++ != '"')
        return NULL;
    char *out = malloc(strlen((const char *)p) + 1); /* decoding never grows */
    char *o = out;
    while (*p != '"') {
        if (*p < 0x20)
            goto bad; /* raw control character, or the end of the line */
        if (*p != '\\') {
            size_t n = utf8_seq(p);
            if (n == 0)
                goto bad;
            memcpy(o, p, n);
            o += n;
            p += n;
            continue;
        }
        p++;
        const char *simple = strchr("\"\\/bfnrt", *p);
        if (*p && simple) {
            *o++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            p++;
            continue;
        }
        if (*p != 'u')
            goto bad;
        int cp = hex4(p + 1);
        if (cp < 0)
            goto bad;
        p += 5;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            int lo = p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                goto bad;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            goto bad;
        }
        o = put_utf8(o, (uint32_t)cp);
    }
    *o = '\0';
    *pp = (const char *)p + 1;
    return out;
bad:
    free(out);
    return NULL;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static void jobj_free(jobj_t *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->key[i]);
        free(o->val[i]);
    }
    o->n = 0;
}

/* Parses line (no newline) as one flat JSON object; false if it is not one. */
static bool parse_object(const char *line, jobj_t *o)
{
    memset(o, 0, sizeof *o);
    const char *p = skip_ws(line);
    if (*p++ != '{')
        return false;
    p = skip_ws(p);
    if (*p == '}')
        return *skip_ws(p + 1) == '\0';
    for (;;) {
        if (o->n == MAX_FIELDS)
            goto bad;
        char *key = parse_string(&p);
        if (!key)
            goto bad;
        for (size_t i = 0; i < o->n; i++)
            if (strcmp(o->key[i], key) == 0) {
                free(key);
                goto bad; /* log promises its names are never shadowed */
            }
        o->key[o->n] = key;
        o->val[o->n] = NULL;
        p = skip_ws(p);
        if (*p++ != ':')
            goto bad_field;
        p = skip_ws(p);
        if (*p == '"') {
            o->kind[o->n] = 's';
            o->val[o->n] = parse_string(&p);
            if (!o->val[o->n])
                goto bad_field;
        } else if (strncmp(p, "true", 4) == 0) {
            o->kind[o->n] = 't';
            p += 4;
        } else if (strncmp(p, "false", 5) == 0) {
            o->kind[o->n] = 'f';
            p += 5;
        } else if (strncmp(p, "null", 4) == 0) {
            o->kind[o->n] = 'n';
            p += 4;
        } else {
            goto bad_field;
        }
        o->n++;
        p = skip_ws(p);
        if (*p == '}')
            break;
        if (*p++ != ',')
            goto bad;
        p = skip_ws(p);
    }
    if (*skip_ws(p + 1) == '\0')
        return true;
    goto bad;
bad_field:
    o->n++; /* so jobj_free releases the half-made field */
bad:
    jobj_free(o);
    return false;
}

static int jfind(const jobj_t *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->key[i], key) == 0)
            return (int)i;
    return -1;
}

/* The string value of key, or NULL if key is missing or not a string. */
static const char *jstr(const jobj_t *o, const char *key)
{
    int i = jfind(o, key);
    return i >= 0 && o->kind[i] == 's' ? o->val[i] : NULL;
}

static bool jtrue(const jobj_t *o, const char *key)
{
    int i = jfind(o, key);
    return i >= 0 && o->kind[i] == 't';
}

/* ---- capturing the log --------------------------------------------------- */

static FILE *capture;

static void setup(void)
{
    capture = tmpfile();
    cr_assert_not_null(capture);
    log_set_fd(fileno(capture));
    log_set_level(LOG_DEBUG);
}

static void teardown(void)
{
    log_set_fd(2);
    fclose(capture);
    clock_fake_clear();
}

/* Everything written so far, NUL-terminated; the caller frees it. */
static char *captured(size_t *len)
{
    int fd = fileno(capture);
    off_t size = lseek(fd, 0, SEEK_END);
    cr_assert_geq(size, 0);
    char *buf = malloc((size_t)size + 1);
    cr_assert_eq(pread(fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    *len = (size_t)size;
    return buf;
}

/* Splits buf into lines in place; each must end in '\n'. Returns the count. */
static size_t split_lines(char *buf, size_t len, char **lines, size_t max)
{
    size_t n = 0;
    char *p = buf;
    while (p < buf + len) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        cr_assert_not_null(nl, "output does not end in a newline");
        cr_assert_lt(n, max);
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

/* The one line logged so far, parsed into o; its raw text (without the
 * newline) into *raw, which the caller frees. */
static void only_line(jobj_t *o, char **raw)
{
    size_t len;
    char *buf = captured(&len);
    char *lines[2];
    cr_assert_eq(split_lines(buf, len, lines, 2), 1, "expected exactly one line");
    cr_assert_leq(len, LOG_LINE_MAX);
    cr_assert(parse_object(lines[0], o), "not a JSON object: %s", lines[0]);
    *raw = buf;
}

TestSuite(log, .init = setup, .fini = teardown);

/* ---- fields ------------------------------------------------------------------ */

Test(log, writes_all_fields_in_order)
{
    clock_fake_set(1795468073123); /* 2026-11-23T21:07:53.123Z */
    log_ctx_t ctx = {.actor = "job/01JX", .msg_id = "01JY", .corr = "c-7"};
    log_msg(LOG_INFO, &ctx, "job %d %s", 42, "started");

    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_str_eq(raw,
                     "{\"ts\":\"2026-11-23T21:07:53.123Z\",\"level\":\"info\",\"msg\":\"job 42 "
                     "started\",\"actor\":\"job/01JX\",\"msg_id\":\"01JY\",\"corr\":\"c-7\"}");
    jobj_free(&o);
    free(raw);
}

Test(log, timestamp_keeps_leading_zero_millis)
{
    clock_fake_set(5); /* 1970-01-01T00:00:00.005Z */
    log_msg(LOG_ERROR, NULL, "x");
    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_str_eq(jstr(&o, "ts"), "1970-01-01T00:00:00.005Z");
    cr_assert_str_eq(jstr(&o, "level"), "error");
    jobj_free(&o);
    free(raw);
}

/* The timestamp is computed without gmtime_r (log_format runs in signal
 * handlers): checked against glibc's gmtime_r over leap days, century and
 * year ends, and four centuries of one instant a day. */
Test(log, timestamp_agrees_with_gmtime)
{
    static const int64_t at[] = {
        951782400000,    /* 2000-02-29T00:00:00Z: a leap day of a 400-year */
        4107542399999,   /* 2100-02-28T23:59:59.999Z: 2100 is not leap */
        1704067199999,   /* 2023-12-31T23:59:59.999Z */
        253402300799999, /* 9999-12-31T23:59:59.999Z */
    };
    char line[LOG_FORMAT_MIN];
    for (size_t i = 0; i < sizeof at / sizeof at[0] + 146097; i++) {
        int64_t ms = i < 4 ? at[i] : (int64_t)(i - 4) * 86400000 + 45296789; /* 12:34:56.789 */
        clock_fake_set(ms);
        size_t n = log_format(line, sizeof line, LOG_INFO, NULL, "x", NULL);
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        char want[40];
        cr_assert_not_null(gmtime_r(&t, &tm));
        strftime(want, sizeof want, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + strlen(want), sizeof want - strlen(want), ".%03dZ\"", (int)(ms % 1000));
        cr_assert_gt(n, strlen(want));
        cr_assert_eq(strncmp(line, want, strlen(want)), 0, "%lld ms: %.40s, want %s", (long long)ms,
                     line, want);
    }
}

Test(log, format_builds_the_line_log_kv_writes)
{
    clock_fake_set(1795468073123);
    log_ctx_t ctx = {.actor = "worker/7", .msg_id = "01JY", .corr = NULL};
    const char *const kv[] = {"signal", "SIGSEGV", "type", "wo\"rk", NULL};
    log_kv(LOG_ERROR, &ctx, "fatal signal", kv);
    size_t len;
    char *buf = captured(&len);
    char line[LOG_FORMAT_MIN];
    size_t n = log_format(line, sizeof line, LOG_ERROR, &ctx, "fatal signal", kv);
    cr_assert_eq(n, len);
    cr_assert_eq(memcmp(line, buf, n), 0, "%.*s", (int)n, line);
    cr_assert_eq(log_format(line, LOG_FORMAT_MIN - 1, LOG_ERROR, &ctx, "x", kv), 0,
                 "a buffer below LOG_FORMAT_MIN is refused");
    free(buf);
}

Test(log, omits_null_context_fields)
{
    log_msg(LOG_WARN, NULL, "no context");
    log_ctx_t ctx = {.actor = NULL, .msg_id = "m1", .corr = NULL};
    log_msg(LOG_WARN, &ctx, "some context");

    size_t len;
    char *buf = captured(&len);
    char *lines[3];
    cr_assert_eq(split_lines(buf, len, lines, 3), 2);
    jobj_t o;
    cr_assert(parse_object(lines[0], &o));
    cr_assert_eq(o.n, 3, "ts, level, msg only: %s", lines[0]);
    cr_assert_str_eq(jstr(&o, "msg"), "no context");
    cr_assert_str_eq(jstr(&o, "level"), "warn");
    jobj_free(&o);
    cr_assert(parse_object(lines[1], &o));
    cr_assert_eq(o.n, 4, "%s", lines[1]);
    cr_assert_str_eq(jstr(&o, "msg_id"), "m1");
    cr_assert_eq(jfind(&o, "actor"), -1);
    cr_assert_eq(jfind(&o, "corr"), -1);
    jobj_free(&o);
    free(buf);
}

/* ---- escaping -------------------------------------------------------------- */

Test(log, escapes_quotes_backslashes_and_controls)
{
    const char *msg = "say \"hi\" to C:\\tmp\nnext\tline\r\x01\x1f\x7f end";
    log_ctx_t ctx = {.actor = "a\"b", .msg_id = "\\", .corr = "\n"};
    log_msg(LOG_INFO, &ctx, "%s", msg);

    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_str_eq(jstr(&o, "msg"), msg);
    cr_assert_str_eq(jstr(&o, "actor"), "a\"b");
    cr_assert_str_eq(jstr(&o, "msg_id"), "\\");
    cr_assert_str_eq(jstr(&o, "corr"), "\n");
    cr_assert_not_null(strstr(raw, "say \\\"hi\\\" to C:\\\\tmp\\u000anext\\u0009line\\u000d"
                                   "\\u0001\\u001f\\u007f end"),
                       "%s", raw);
    for (const char *p = raw; *p; p++)
        cr_assert_geq((unsigned char)*p, 0x20, "raw control byte in %s", raw);
    jobj_free(&o);
    free(raw);
}

Test(log, keeps_valid_utf8)
{
    const char *msg =
        "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"; /* é € 😀 U+10FFFF */
    log_msg(LOG_INFO, NULL, "%s", msg);
    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_str_eq(jstr(&o, "msg"), msg);
    jobj_free(&o);
    free(raw);
}

#define FFFD "\xef\xbf\xbd"

Test(log, replaces_invalid_utf8)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"a\xff"
         "b",
         "a" FFFD "b"},                                    /* never a lead byte */
        {"\x80x", FFFD "x"},                               /* stray continuation */
        {"\xc0\xaf", FFFD FFFD},                           /* overlong '/' */
        {"\xe0\x80\xaf", FFFD FFFD FFFD},                  /* overlong, 3 bytes */
        {"\xed\xa0\x80", FFFD FFFD FFFD},                  /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD},         /* past U+10FFFF */
        {"\xe2\x82", FFFD},                                /* cut at end of string */
        {"\xe2\x82z", FFFD "z"},                           /* cut, then ASCII survives */
        {"\xf0\x9f\x98\xe2\x82\xac", FFFD "\xe2\x82\xac"}, /* cut, then a valid € */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        log_kv(LOG_INFO, NULL, cases[i].in, (const char *const[]){"k", cases[i].in, NULL});

    size_t len;
    char *buf = captured(&len);
    char *lines[16];
    size_t n = split_lines(buf, len, lines, 16);
    cr_assert_eq(n, sizeof cases / sizeof cases[0]);
    for (size_t i = 0; i < n; i++) {
        jobj_t o;
        cr_assert(parse_object(lines[i], &o), "case %zu: %s", i, lines[i]);
        cr_assert_str_eq(jstr(&o, "msg"), cases[i].want, "case %zu", i);
        cr_assert_str_eq(jstr(&o, "k"), cases[i].want, "case %zu", i);
        jobj_free(&o);
    }
    free(buf);
}

/* ---- levels ---------------------------------------------------------------- */

Test(log, filters_below_level)
{
    log_set_level(LOG_WARN);
    cr_assert_not(log_enabled(LOG_DEBUG));
    cr_assert_not(log_enabled(LOG_INFO));
    cr_assert(log_enabled(LOG_WARN));
    cr_assert(log_enabled(LOG_ERROR));
    log_msg(LOG_DEBUG, NULL, "d");
    log_msg(LOG_INFO, NULL, "i");
    log_msg(LOG_WARN, NULL, "w");
    log_kv(LOG_INFO, NULL, "i2", NULL);
    log_kv(LOG_ERROR, NULL, "e", NULL);

    size_t len;
    char *buf = captured(&len);
    char *lines[8];
    cr_assert_eq(split_lines(buf, len, lines, 8), 2);
    jobj_t o;
    cr_assert(parse_object(lines[0], &o));
    cr_assert_str_eq(jstr(&o, "level"), "warn");
    cr_assert_str_eq(jstr(&o, "msg"), "w");
    jobj_free(&o);
    cr_assert(parse_object(lines[1], &o));
    cr_assert_str_eq(jstr(&o, "level"), "error");
    cr_assert_str_eq(jstr(&o, "msg"), "e");
    jobj_free(&o);
    free(buf);
}

Test(log, debug_level_lets_everything_through)
{
    log_msg(LOG_DEBUG, NULL, "d");
    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_str_eq(jstr(&o, "level"), "debug");
    jobj_free(&o);
    free(raw);
}

/* The level is the configured one (log_level, FENTA_LOG_LEVEL), which the
 * commands read through cli/config.c and hand to log_set_level: the
 * environment is no longer read here (tests/cli/test_config.c has the
 * assertions on FENTA_LOG_LEVEL). */
Test(log_env, environment_is_not_read)
{
    setenv("FENTA_LOG_LEVEL", "error", 1);
    cr_assert_not(log_enabled(LOG_DEBUG));
    cr_assert(log_enabled(LOG_INFO), "info until log_set_level, whatever the environment");
}

/* ---- key/values ------------------------------------------------------------- */

Test(log, kv_appended_after_context)
{
    log_ctx_t ctx = {.actor = "job/1"};
    const char *kv[] = {"file", "a \"b\".mp4", "bytes", "1024", NULL};
    log_kv(LOG_INFO, &ctx, "uploaded", kv);

    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_eq(o.n, 6, "%s", raw);
    cr_assert_str_eq(o.key[3], "actor");
    cr_assert_str_eq(o.key[4], "file");
    cr_assert_str_eq(o.key[5], "bytes");
    cr_assert_str_eq(jstr(&o, "file"), "a \"b\".mp4");
    cr_assert_str_eq(jstr(&o, "bytes"), "1024");
    cr_assert_str_eq(jstr(&o, "msg"), "uploaded");
    jobj_free(&o);
    free(raw);
}

Test(log, kv_cannot_shadow_fixed_fields)
{
    const char *kv[] = {"msg", "spoof", "level", "debug", "truncated", "no", NULL};
    log_kv(LOG_WARN, NULL, "real", kv);

    jobj_t o;
    char *raw;
    only_line(&o, &raw); /* parse_object refuses duplicate names */
    cr_assert_str_eq(jstr(&o, "msg"), "real");
    cr_assert_str_eq(jstr(&o, "level"), "warn");
    cr_assert_str_eq(jstr(&o, "kv.msg"), "spoof");
    cr_assert_str_eq(jstr(&o, "kv.level"), "debug");
    cr_assert_str_eq(jstr(&o, "kv.truncated"), "no");
    cr_assert_eq(jfind(&o, "truncated"), -1);
    jobj_free(&o);
    free(raw);
}

Test(log, kv_null_value_is_null_and_ends_list)
{
    const char *kv[] = {"a", "1", "b", NULL, "c", "3", NULL};
    log_kv(LOG_INFO, NULL, "m", kv);

    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_str_eq(jstr(&o, "a"), "1");
    int b = jfind(&o, "b");
    cr_assert_geq(b, 0);
    cr_assert_eq(o.kind[b], 'n');
    cr_assert_eq(jfind(&o, "c"), -1);
    jobj_free(&o);
    free(raw);
}

/* ---- truncation -------------------------------------------------------------- */

static char *repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = malloc(n * times + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = '\0';
    return s;
}

/* Logs msg with full context and checks the line: one valid object within
 * LOG_LINE_MAX, context intact, msg a prefix of the original made of whole
 * units, marked truncated exactly when it was cut. */
static void check_cut(const char *msg, const char *unit)
{
    cr_assert_eq(ftruncate(fileno(capture), 0), 0);
    cr_assert_eq(lseek(fileno(capture), 0, SEEK_SET), 0);
    log_ctx_t ctx = {.actor = "job/01J", .msg_id = "m", .corr = "c"};
    log_kv(LOG_INFO, &ctx, msg, NULL);

    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_str_eq(jstr(&o, "actor"), "job/01J");
    cr_assert_str_eq(jstr(&o, "corr"), "c");
    const char *got = jstr(&o, "msg");
    cr_assert_not_null(got);
    size_t glen = strlen(got), ulen = strlen(unit);
    cr_assert_eq(strncmp(got, msg, glen), 0, "msg is not a prefix of the original");
    cr_assert_eq(glen % ulen, 0, "a character or escape was split");
    if (glen < strlen(msg)) {
        cr_assert(jtrue(&o, "truncated"), "cut but not marked: %zu of %zu", glen, strlen(msg));
        cr_assert_gt(strlen(raw), LOG_LINE_MAX - 64, "cut far too early: %zu", strlen(raw));
    } else {
        cr_assert_eq(jfind(&o, "truncated"), -1, "marked truncated but whole");
    }
    jobj_free(&o);
    free(raw);
}

Test(log, long_lines_are_cut_to_valid_json)
{
    static const char *const units[] = {"x", "\x01", "\"", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        char *msg = repeat(units[u], 20000);
        check_cut(msg, units[u]);
        free(msg);
    }
}

Test(log, cut_is_exact_around_the_limit)
{
    /* Every length across the boundary, so an off-by-one anywhere shows. */
    for (size_t n = 8040; n < 8220; n++) {
        char *msg = repeat("a", n);
        check_cut(msg, "a");
        free(msg);
    }
}

Test(log, printf_message_longer_than_line)
{
    char *big = repeat("y", 3 * LOG_LINE_MAX);
    log_msg(LOG_INFO, NULL, "%s", big);
    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert(jtrue(&o, "truncated"));
    cr_assert_gt(strlen(jstr(&o, "msg")), LOG_LINE_MAX - 128);
    jobj_free(&o);
    free(raw);
    free(big);
}

Test(log, long_kv_value_is_cut_and_earlier_fields_kept)
{
    char *big = repeat("\\", 10000);
    const char *kv[] = {"small", "s", "big", big, "after", "lost", NULL};
    log_ctx_t ctx = {.corr = "c1"};
    log_kv(LOG_INFO, &ctx, "m", kv);

    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_str_eq(jstr(&o, "msg"), "m");
    cr_assert_str_eq(jstr(&o, "corr"), "c1");
    cr_assert_str_eq(jstr(&o, "small"), "s");
    cr_assert_gt(strlen(jstr(&o, "big")), 3000);
    cr_assert(jtrue(&o, "truncated"));
    jobj_free(&o);
    free(raw);
    free(big);
}

Test(log, huge_context_value_is_capped)
{
    char *huge = repeat("z", 20000);
    log_ctx_t ctx = {.actor = huge, .msg_id = huge, .corr = huge};
    log_msg(LOG_INFO, &ctx, "still here");
    jobj_t o;
    char *raw;
    only_line(&o, &raw);
    cr_assert_str_eq(jstr(&o, "msg"), "still here");
    cr_assert_gt(strlen(jstr(&o, "corr")), 0);
    cr_assert(jtrue(&o, "truncated"));
    jobj_free(&o);
    free(raw);
    free(huge);
}

/* ---- behaviour around the call ---------------------------------------------- */

Test(log, preserves_errno)
{
    errno = ENOENT;
    log_msg(LOG_ERROR, NULL, "open failed");
    cr_assert_eq(errno, ENOENT);
    log_set_fd(-1); /* a failed write is dropped, and does not leak EBADF */
    errno = EACCES;
    log_kv(LOG_ERROR, NULL, "m", NULL);
    cr_assert_eq(errno, EACCES);
}

/* ---- concurrent writers --------------------------------------------------------- */

#define WRITERS 4
#define LINES_PER_WRITER 500
#define PAD 5000 /* above PIPE_BUF, where the kernel may split a write */

typedef struct {
    int rfd;    /* read end of the pipe */
    char *buf;  /* everything read */
    size_t len; /* bytes in buf */
} reader_t;

static void *read_all(void *arg)
{
    reader_t *r = arg;
    size_t cap = 1 << 20;
    r->buf = malloc(cap + 1);
    for (;;) {
        if (cap - r->len < 65536) {
            cap *= 2;
            r->buf = realloc(r->buf, cap + 1);
        }
        ssize_t n = read(r->rfd, r->buf + r->len, cap - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        r->len += (size_t)n;
    }
    r->buf[r->len] = '\0';
    return NULL;
}

static void *write_lines(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[PAD + 1];
    memset(pad, 'a' + id, PAD);
    pad[PAD] = '\0';
    char actor[16];
    snprintf(actor, sizeof actor, "w/%d", id);
    log_ctx_t ctx = {.actor = actor};
    for (int i = 0; i < LINES_PER_WRITER; i++)
        log_msg(LOG_INFO, &ctx, "%d %d %s", id, i, pad);
    return NULL;
}

Test(log, concurrent_writers_produce_whole_lines)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    log_set_fd(fds[1]);
    reader_t r = {.rfd = fds[0]};
    pthread_t reader, writers[WRITERS];
    cr_assert_eq(pthread_create(&reader, NULL, read_all, &r), 0);
    for (intptr_t i = 0; i < WRITERS; i++)
        cr_assert_eq(pthread_create(&writers[i], NULL, write_lines, (void *)i), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(writers[i], NULL);
    close(fds[1]);
    pthread_join(reader, NULL);
    close(fds[0]);

    static char *lines[WRITERS * LINES_PER_WRITER + 1];
    size_t n = split_lines(r.buf, r.len, lines, WRITERS * LINES_PER_WRITER + 1);
    cr_assert_eq(n, WRITERS * LINES_PER_WRITER);
    int next[WRITERS] = {0};
    for (size_t i = 0; i < n; i++) {
        jobj_t o;
        cr_assert(parse_object(lines[i], &o), "line %zu is not whole JSON", i);
        const char *msg = jstr(&o, "msg");
        int id, seq, off;
        cr_assert_eq(sscanf(msg, "%d %d %n", &id, &seq, &off), 2);
        cr_assert(id >= 0 && id < WRITERS);
        cr_assert_eq(seq, next[id], "writer %d: line %d after %d", id, seq, next[id] - 1);
        next[id]++;
        cr_assert_eq(strlen(msg + off), PAD);
        cr_assert_eq(strspn(msg + off, (char[]){(char)('a' + id), '\0'}), PAD,
                     "writer %d's line holds another writer's bytes", id);
        char actor[16];
        snprintf(actor, sizeof actor, "w/%d", id);
        cr_assert_str_eq(jstr(&o, "actor"), actor);
        jobj_free(&o);
    }
    free(r.buf);
}
