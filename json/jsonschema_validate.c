/* jsonschema_validate.c - validates jansson values against a schema that
 * jsonschema.c compiled, collecting every problem with its JSONPath. The
 * compiler has checked the schema, so validating never fails except on
 * memory. */
#include "json/jsonformat.h"
#include "json/jsonschema_internal.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 -------------------------------------------------------------- */

/* Code points in s[0..n), or -1 if s is not valid UTF-8 (overlong forms,
 * surrogates and values past U+10FFFF are invalid, as in RFC 3629). */
static long long utf8_count(const unsigned char *s, size_t n)
{
    long long count = 0;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            count++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return -1;
        }
        if (n - i - 1 < need)
            return -1;
        for (size_t k = 1; k <= need; k++) {
            unsigned cc = s[i + k];
            if ((cc & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        i += need + 1;
        count++;
    }
    return count;
}

/* ---- formats (json/jsonformat.c) ---------------------------------------- */

static bool format_ok(enum format f, const char *s, size_t n)
{
    switch (f) {
    case FMT_UUID:
        return jsonformat_uuid(s, n);
    case FMT_EMAIL:
        return jsonformat_email(s, n);
    case FMT_URI:
        return jsonformat_uri(s, n);
    case FMT_DATE_TIME:
        return jsonformat_date_time(s, n);
    case FMT_NONE:
        break;
    }
    return true;
}

/* ---- validation ----------------------------------------------------------- */

typedef struct {
    json_t *problems; /* collected problems; NULL: stop at the first */
    strbuf_t path;    /* JSONPath of the value being validated */
    bool failed;      /* at least one problem */
    bool oom;         /* memory ran out; the result is FENTA_ENOMEM */
} vc_t;

static bool done(const vc_t *v)
{
    return v->oom || (v->failed && !v->problems);
}

static void problem(vc_t *v, const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(vc_t *v, const char *keyword, const char *fmt, ...)
{
    v->failed = true;
    if (!v->problems)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Truncation may have cut a multi-byte character; jansson wants UTF-8. */
    for (size_t len = strlen(msg); len && utf8_count((unsigned char *)msg, len) < 0;)
        msg[--len] = '\0';
    json_t *p = json_pack("{s:s, s:s, s:s}", "path", v->path.oom ? "$" : strbuf_str(&v->path),
                          "keyword", keyword, "message", msg);
    if (!p || json_array_append_new(v->problems, p) < 0)
        v->oom = true;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool plain_name(const char *k, size_t n)
{
    if (n == 0 || !(is_alpha(k[0]) || k[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alpha(k[i]) && !is_digit(k[i]) && k[i] != '_')
            return false;
    return true;
}

/* ".name" or "['any \'name\'']" (JSONPath normalized-path escaping). */
static void path_member(strbuf_t *b, const char *k, size_t n)
{
    if (plain_name(k, n)) {
        strbuf_appendc(b, '.');
        strbuf_append_len(b, k, n);
        return;
    }
    strbuf_append(b, "['");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)k[i];
        if (ch == '\'' || ch == '\\') {
            strbuf_appendc(b, '\\');
            strbuf_appendc(b, (char)ch);
        } else if (ch < 0x20) {
            strbuf_appendf(b, "\\u%04x", ch);
        } else {
            strbuf_appendc(b, (char)ch);
        }
    }
    strbuf_append(b, "']");
}

static bool types_match(unsigned types, const json_t *inst)
{
    long long ll;
    switch (json_typeof(inst)) {
    case JSON_NULL:
        return types & T_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
        return types & T_BOOLEAN;
    case JSON_OBJECT:
        return types & T_OBJECT;
    case JSON_ARRAY:
        return types & T_ARRAY;
    case JSON_STRING:
        return types & T_STRING;
    case JSON_INTEGER:
        return types & (T_NUMBER | T_INTEGER);
    case JSON_REAL:
        return (types & T_NUMBER) ||
               ((types & T_INTEGER) && jsonschema__real_as_int(json_real_value(inst), &ll));
    }
    return false;
}

static void type_problem(vc_t *v, unsigned types)
{
    char msg[160] = "must be ";
    size_t len = strlen(msg);
    bool first = true;
    for (size_t k = 0; k < NTYPES; k++) {
        if (!(types & jsonschema__types[k].bit))
            continue;
        /* "number" already covers "integer" in the sentence */
        if (jsonschema__types[k].bit == T_INTEGER && (types & T_NUMBER))
            continue;
        len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", first ? "" : " or ",
                                jsonschema__types[k].article);
        first = false;
    }
    problem(v, "type", "%s", msg);
}

/* Exact comparison of a JSON number with a bound: <0, 0, >0. Integers are
 * compared as integers and an integer against a real without rounding the
 * integer through a double (which would make 2^53+1 equal 2^53). */
static int cmp_int_real(long long i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    long long t = (long long)d; /* toward zero, in range */
    if (i != t)
        return i < t ? -1 : 1;
    double frac = d - (double)t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    if (json_is_integer(a))
        return cmp_int_real(json_integer_value(a), json_real_value(b));
    if (json_is_integer(b))
        return -cmp_int_real(json_integer_value(b), json_real_value(a));
    double x = json_real_value(a), y = json_real_value(b);
    return (x > y) - (x < y);
}

/* The bound as written, for messages ("must be >= 0.5"); a scalar, so
 * dumping it reads nothing shared but the value. */
static void bound_text(const json_t *b, char *out, size_t n)
{
    char *s = json_dumps(b, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    snprintf(out, n, "%s", s ? s : "?");
    free(s);
}

static void check_number(vc_t *v, const node_t *n, const json_t *inst)
{
    char t[64];
    if (n->minimum && num_cmp(inst, n->minimum) < 0) {
        bound_text(n->minimum, t, sizeof t);
        problem(v, "minimum", "must be >= %s", t);
    }
    if (n->xminimum && num_cmp(inst, n->xminimum) <= 0) {
        bound_text(n->xminimum, t, sizeof t);
        problem(v, "exclusiveMinimum", "must be > %s", t);
    }
    if (n->maximum && num_cmp(inst, n->maximum) > 0) {
        bound_text(n->maximum, t, sizeof t);
        problem(v, "maximum", "must be <= %s", t);
    }
    if (n->xmaximum && num_cmp(inst, n->xmaximum) >= 0) {
        bound_text(n->xmaximum, t, sizeof t);
        problem(v, "exclusiveMaximum", "must be < %s", t);
    }
}

static bool constrains_strings(const node_t *n)
{
    return (n->types & T_STRING) || n->min_len >= 0 || n->max_len >= 0 || n->has_pattern ||
           n->format != FMT_NONE;
}

/* Returns false when the string is not UTF-8 (reported, nothing else checked). */
static bool check_string(vc_t *v, const node_t *n, const json_t *inst)
{
    const char *s = json_string_value(inst);
    size_t len = json_string_length(inst);
    long long cps = utf8_count((const unsigned char *)s, len);
    if (cps < 0) {
        if (constrains_strings(n)) {
            problem(v, "type", "must be a valid UTF-8 string");
            return false;
        }
        return true;
    }
    if (n->min_len >= 0 && cps < n->min_len)
        problem(v, "minLength", "must be at least %lld character%s long", n->min_len,
                n->min_len == 1 ? "" : "s");
    if (n->max_len >= 0 && cps > n->max_len)
        problem(v, "maxLength", "must be at most %lld character%s long", n->max_len,
                n->max_len == 1 ? "" : "s");
    if (n->has_pattern) {
        /* REG_STARTEND: the whole string, even past an embedded NUL. */
        regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)len};
        if (regexec(&n->re, s, 1, &m, REG_STARTEND) != 0)
            problem(v, "pattern", "must match the pattern %s", n->pattern);
    }
    if (n->format != FMT_NONE && !format_ok(n->format, s, len))
        problem(v, "format", "%s", jsonschema__formats[n->format].message);
    return true;
}

static void check_literals(vc_t *v, const node_t *n, const json_t *inst)
{
    strbuf_t b = STRBUF_INIT;
    if (jsonschema__canon(&b, inst, 0) < 0) {
        strbuf_free(&b);
        problem(v, n->konst ? "const" : "enum", "nests too deeply to compare");
        return;
    }
    if (b.oom) {
        strbuf_free(&b);
        v->oom = true;
        return;
    }
    const char *c = strbuf_str(&b);
    if (n->konst && !(n->konst->len == b.len && memcmp(n->konst->canon, c, b.len) == 0))
        problem(v, "const", "must be equal to %s", n->const_text);
    if (n->nenums) {
        bool found = false;
        for (size_t i = 0; i < n->nenums && !found; i++)
            found = n->enums[i].len == b.len && memcmp(n->enums[i].canon, c, b.len) == 0;
        if (!found)
            problem(v, "enum", "must be one of: %s", n->enum_text);
    }
    strbuf_free(&b);
}

typedef struct {
    char *canon;  /* canonical form of one item */
    size_t len;   /* its length */
    size_t index; /* the item's index */
} keyed_t;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->canon, y->canon, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static void check_unique(vc_t *v, const json_t *inst)
{
    size_t n = json_array_size(inst);
    if (n < 2)
        return;
    keyed_t *k = calloc(n, sizeof *k);
    if (!k) {
        v->oom = true;
        return;
    }
    bool too_deep = false;
    for (size_t i = 0; i < n && !v->oom; i++) {
        strbuf_t b = STRBUF_INIT;
        if (jsonschema__canon(&b, json_array_get(inst, i), 0) < 0)
            too_deep = true;
        if (b.oom)
            v->oom = true;
        k[i] = (keyed_t){.canon = b.p, .len = b.len, .index = i};
    }
    if (!v->oom && too_deep) {
        problem(v, "uniqueItems", "items nest too deeply to compare");
    } else if (!v->oom) {
        qsort(k, n, sizeof *k, cmp_keyed);
        /* Report the duplicate that occurs first in the array: equal items sit
         * together sorted by index, so each run's second entry is a candidate. */
        size_t first = SIZE_MAX, dup = SIZE_MAX;
        for (size_t i = 1; i < n; i++) {
            if (k[i].len == k[i - 1].len && memcmp(k[i].canon, k[i - 1].canon, k[i].len) == 0 &&
                (i < 2 || k[i - 1].len != k[i - 2].len ||
                 memcmp(k[i - 1].canon, k[i - 2].canon, k[i].len) != 0) &&
                k[i].index < dup) {
                first = k[i - 1].index;
                dup = k[i].index;
            }
        }
        if (dup != SIZE_MAX)
            problem(v, "uniqueItems", "must not contain duplicates (items %zu and %zu are equal)",
                    first, dup);
    }
    for (size_t i = 0; i < n; i++)
        free(k[i].canon);
    free(k);
}

static void validate(vc_t *v, const node_t *n, const json_t *inst, int depth);

static void check_object(vc_t *v, const node_t *n, const json_t *inst, int depth)
{
    size_t mark = v->path.len;
    for (size_t i = 0; n->required && i < json_array_size(n->required) && !done(v); i++) {
        const json_t *name = json_array_get(n->required, i);
        const char *k = json_string_value(name);
        size_t klen = json_string_length(name);
        if (json_object_getn(inst, k, klen))
            continue;
        path_member(&v->path, k, klen);
        problem(v, "required", "is required");
        strbuf_truncate(&v->path, mark);
    }
    if (!n->prop_index && n->addl == ADDL_ANY)
        return;
    for (void *it = json_object_iter((json_t *)inst); it && !done(v);
         it = json_object_iter_next((json_t *)inst, it)) {
        const char *k = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        const json_t *idx = n->prop_index ? json_object_getn(n->prop_index, k, klen) : NULL;
        const node_t *sub = idx                      ? n->props[json_integer_value(idx)]
                            : n->addl == ADDL_SCHEMA ? n->addl_schema
                                                     : NULL;
        if (!sub && n->addl != ADDL_NONE)
            continue;
        path_member(&v->path, k, klen);
        if (sub)
            validate(v, sub, json_object_iter_value(it), depth + 1);
        else
            problem(v, "additionalProperties", "is not allowed");
        strbuf_truncate(&v->path, mark);
    }
}

static void check_array(vc_t *v, const node_t *n, const json_t *inst, int depth)
{
    size_t count = json_array_size(inst);
    if (n->min_items >= 0 && (long long)count < n->min_items)
        problem(v, "minItems", "must have at least %lld item%s", n->min_items,
                n->min_items == 1 ? "" : "s");
    if (n->max_items >= 0 && (long long)count > n->max_items)
        problem(v, "maxItems", "must have at most %lld item%s", n->max_items,
                n->max_items == 1 ? "" : "s");
    if (n->unique && !done(v))
        check_unique(v, inst);
    if (!n->items)
        return;
    size_t mark = v->path.len;
    for (size_t i = 0; i < count && !done(v); i++) {
        strbuf_appendf(&v->path, "[%zu]", i);
        validate(v, n->items, json_array_get(inst, i), depth + 1);
        strbuf_truncate(&v->path, mark);
    }
}

static void validate(vc_t *v, const node_t *n, const json_t *inst, int depth)
{
    if (done(v))
        return;
    if (n->always == 1)
        return;
    if (n->always == -1) {
        problem(v, "false", "is not allowed");
        return;
    }
    if (depth > MAX_DEPTH) {
        problem(v, "type", "nests deeper than %d levels", MAX_DEPTH);
        return;
    }
    /* A value of the wrong type gets one problem, not one per keyword that
     * then also fails: "must be a string" says all there is to say. */
    if (n->types && !types_match(n->types, inst)) {
        type_problem(v, n->types);
        return;
    }
    if (json_is_string(inst) && !check_string(v, n, inst))
        return;
    if (n->konst || n->nenums)
        check_literals(v, n, inst);
    if (json_is_number(inst))
        check_number(v, n, inst);
    if (json_is_object(inst))
        check_object(v, n, inst, depth);
    else if (json_is_array(inst))
        check_array(v, n, inst, depth);
    if (n->ref_target)
        validate(v, n->ref_target, inst, depth + 1);
}

int jsonschema_validate(const jsonschema_t *schema, const json_t *instance, json_t **problems)
{
    if (problems)
        *problems = NULL;
    if (!schema || !instance)
        return FENTA_EINVAL;
    vc_t v = {0};
    if (problems) {
        v.problems = json_array();
        if (!v.problems)
            return FENTA_ENOMEM;
    }
    strbuf_appendc(&v.path, '$');
    validate(&v, schema->root, instance, 0);
    if (v.path.oom)
        v.oom = true;
    strbuf_free(&v.path);
    if (v.oom) {
        json_decref(v.problems);
        return FENTA_ENOMEM;
    }
    if (!v.failed) {
        json_decref(v.problems);
        return 0;
    }
    if (problems)
        *problems = v.problems;
    return FENTA_EINVAL;
}

void jsonschema_describe(const json_t *problems, const char *prefix, char *errbuf, size_t errlen)
{
    if (!errbuf || errlen == 0)
        return;
    size_t len = (size_t)snprintf(errbuf, errlen, "%s", prefix ? prefix : "");
    size_t i;
    const json_t *p;
    json_array_foreach(problems, i, p)
    {
        if (len >= errlen)
            break;
        len += (size_t)snprintf(errbuf + len, errlen - len, "%s%s: %s", i ? "; " : "",
                                json_string_value(json_object_get(p, "path")),
                                json_string_value(json_object_get(p, "message")));
    }
}
