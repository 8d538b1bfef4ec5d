/* jsonschema.c - compiles a JSON Schema (Fenta's subset) into a tree of
 * nodes once, and frees it; the validator that walks the tree, collecting
 * every problem with its JSONPath, is jsonschema_validate.c. Both share the
 * tree and the canonical form of values (for enum, const, uniqueItems)
 * through jsonschema_internal.h.
 *
 * Compilation does all the checking of the schema itself (keyword allow-list,
 * value shapes, regex compilation, $ref resolution and $ref cycles), so the
 * validator never meets a malformed schema and never fails except on memory. */
#include "json/jsonschema.h"
#include "json/jsonschema_internal.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"
#include "runtime/vec.h"
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Schemas are written by us, but a runaway nesting still gets a message. */
#define MAX_SCHEMA_DEPTH 256

/* ---- canonical form: one notion of equality for enum, const, uniqueItems --
 *
 * Two values are equal exactly when their canonical forms are byte-equal:
 * object members sorted by key, strings length-prefixed (so the encoding is
 * injective even with embedded quotes or NULs), and numbers by value (a real
 * with no fraction that fits int64 is written as that integer, so 1 == 1.0
 * and -0.0 == 0 as JSON Schema requires). Sorting these strings also makes
 * uniqueItems O(n log n) instead of comparing every pair. */

typedef struct {
    const char *key; /* borrowed from the object */
    size_t len;      /* key length in bytes (keys may hold NULs) */
    json_t *value;   /* borrowed */
} member_t;

static int cmp_members(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

bool jsonschema__real_as_int(double d, long long *out)
{
    /* [-2^63, 2^63) is exactly the range a double converts to int64 without UB. */
    if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
        return false;
    *out = (long long)d;
    return true;
}

/* 0, or -1 when the value nests deeper than MAX_DEPTH (b->oom on memory). */
int jsonschema__canon(strbuf_t *b, const json_t *v, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    long long ll;
    switch (json_typeof(v)) {
    case JSON_NULL:
        strbuf_appendc(b, 'N');
        return 0;
    case JSON_TRUE:
        strbuf_appendc(b, 'T');
        return 0;
    case JSON_FALSE:
        strbuf_appendc(b, 'F');
        return 0;
    case JSON_INTEGER:
        strbuf_appendf(b, "i%lld", (long long)json_integer_value(v));
        return 0;
    case JSON_REAL:
        if (jsonschema__real_as_int(json_real_value(v), &ll))
            strbuf_appendf(b, "i%lld", ll);
        else
            strbuf_appendf(b, "r%.17g", json_real_value(v));
        return 0;
    case JSON_STRING:
        strbuf_appendf(b, "s%zu:", json_string_length(v));
        strbuf_append_len(b, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_ARRAY: {
        strbuf_appendf(b, "a%zu[", json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            if (jsonschema__canon(b, json_array_get(v, i), depth + 1) < 0)
                return -1;
        strbuf_appendc(b, ']');
        return 0;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        member_t *m = n ? malloc(n * sizeof *m) : NULL;
        if (n && !m) {
            b->oom = true;
            return 0;
        }
        size_t k = 0;
        for (void *it = json_object_iter((json_t *)v); it && k < n;
             it = json_object_iter_next((json_t *)v, it), k++) {
            m[k].key = json_object_iter_key(it);
            m[k].len = json_object_iter_key_len(it);
            m[k].value = json_object_iter_value(it);
        }
        qsort(m, k, sizeof *m, cmp_members);
        strbuf_appendf(b, "o%zu{", k);
        int rc = 0;
        for (size_t i = 0; i < k && rc == 0; i++) {
            strbuf_appendf(b, "s%zu:", m[i].len);
            strbuf_append_len(b, m[i].key, m[i].len);
            rc = jsonschema__canon(b, m[i].value, depth + 1);
        }
        strbuf_appendc(b, '}');
        free(m);
        return rc;
    }
    }
    return 0;
}

/* ---- the compiled tree ---------------------------------------------------- */

const jsonschema__type_t jsonschema__types[NTYPES] = {
    /* in the order messages list them: "must be a string or null" */
    {"string", "a string", T_STRING},
    {"number", "a number", T_NUMBER},
    {"integer", "an integer", T_INTEGER},
    {"boolean", "a boolean", T_BOOLEAN},
    {"object", "an object", T_OBJECT},
    {"array", "an array", T_ARRAY},
    {"null", "null", T_NULL},
};

const jsonschema__format_t jsonschema__formats[NFORMATS] = {
    [FMT_NONE] = {NULL, NULL},
    [FMT_UUID] = {"uuid", "must be a UUID"},
    [FMT_EMAIL] = {"email", "must be an email address"},
    [FMT_URI] = {"uri", "must be an absolute URI"},
    [FMT_DATE_TIME] = {"date-time", "must be an RFC 3339 date-time"},
};

static void literal_free(literal_t *l)
{
    free(l->canon);
}

static void node_free(node_t *n)
{
    json_decref(n->prop_index);
    free(n->props);
    json_decref(n->required);
    for (size_t i = 0; i < n->nenums; i++)
        literal_free(&n->enums[i]);
    free(n->enums);
    free(n->enum_text);
    free(n->const_text);
    if (n->konst) {
        literal_free(n->konst);
        free(n->konst);
    }
    json_decref(n->minimum);
    json_decref(n->maximum);
    json_decref(n->xminimum);
    json_decref(n->xmaximum);
    if (n->has_pattern)
        regfree(&n->re);
    free(n->pattern);
    free(n->ref);
    free(n->ref_at);
    free(n);
}

void jsonschema_free(jsonschema_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jsonschema_t *s = *self_p;
    for (size_t i = 0; i < s->nnodes; i++)
        node_free(s->nodes[i]);
    free(s->nodes);
    for (size_t i = 0; i < s->ndefs; i++)
        free(s->defs[i].name);
    free(s->defs);
    free(s);
    *self_p = NULL;
}

/* ---- compilation ---------------------------------------------------------- */

typedef struct {
    jsonschema_t *s; /* being built */
    char *err;       /* caller's error buffer, may be NULL */
    size_t errlen;   /* its size */
    strbuf_t at;     /* JSON Pointer of the schema being compiled */
    int depth;       /* schema nesting */
} cc_t;

/* "#POINTER: " + message into the caller's buffer; -1. fmt is a literal. */
#define fail(c, fmt, ...)                                                                          \
    fenta_fail((c)->err, (c)->errlen, -1, "#%s: " fmt, strbuf_str(&(c)->at), ##__VA_ARGS__)

static int fail_oom(cc_t *c)
{
    return fail(c, "out of memory");
}

/* Appends "/" and key escaped as a JSON Pointer token (~ -> ~0, / -> ~1). */
static void at_push(strbuf_t *b, const char *key)
{
    strbuf_appendc(b, '/');
    for (const char *p = key; *p; p++) {
        if (*p == '~')
            strbuf_append(b, "~0");
        else if (*p == '/')
            strbuf_append(b, "~1");
        else
            strbuf_appendc(b, *p);
    }
}

static node_t *new_node(cc_t *c)
{
    jsonschema_t *s = c->s;
    if (vec_reserve(s->nodes, s->capnodes, s->nnodes + 1) != 0)
        return NULL;
    node_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->min_len = n->max_len = n->min_items = n->max_items = -1;
    n->xmin_bool = n->xmax_bool = -1;
    s->nodes[s->nnodes++] = n;
    return n;
}

static node_t *compile_node(cc_t *c, const json_t *schema);

/* Compiles the sub-schema under keyword (and optional name), keeping the
 * pointer right for messages. */
static node_t *compile_sub(cc_t *c, const json_t *schema, const char *name)
{
    size_t mark = c->at.len;
    if (name)
        at_push(&c->at, name);
    node_t *n = compile_node(c, schema);
    strbuf_truncate(&c->at, mark);
    return n;
}

static bool is_count(const json_t *v, long long *out)
{
    long long ll;
    if (json_is_integer(v))
        ll = json_integer_value(v);
    else if (!json_is_real(v) || !jsonschema__real_as_int(json_real_value(v), &ll))
        return false;
    if (ll < 0)
        return false;
    *out = ll;
    return true;
}

static int kw_ignore(cc_t *c, node_t *n, const json_t *v)
{
    return 0;
}

static int kw_type(cc_t *c, node_t *n, const json_t *v)
{
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && !(json_is_array(v) && count > 0))
        return fail(c, "must be a type name or a non-empty array of them");
    for (size_t i = 0; i < count; i++) {
        const json_t *t = json_is_array(v) ? json_array_get(v, i) : v;
        const char *name = json_string_value(t);
        unsigned bit = 0;
        for (size_t k = 0; name && k < NTYPES; k++)
            if (strcmp(name, jsonschema__types[k].name) == 0)
                bit = jsonschema__types[k].bit;
        if (!bit)
            return fail(c, "unknown type %s%s%s", name ? "\"" : "", name ? name : "(not a string)",
                        name ? "\"" : "");
        if (n->types & bit)
            return fail(c, "type \"%s\" is listed twice", name);
        n->types |= bit;
    }
    return 0;
}

static int kw_properties(cc_t *c, node_t *n, const json_t *v)
{
    if (!json_is_object(v))
        return fail(c, "must be an object of schemas");
    size_t count = json_object_size(v);
    n->prop_index = json_object();
    n->props = count ? calloc(count, sizeof *n->props) : NULL;
    if (!n->prop_index || (count && !n->props))
        return fail_oom(c);
    for (void *it = json_object_iter((json_t *)v); it;
         it = json_object_iter_next((json_t *)v, it)) {
        const char *key = json_object_iter_key(it);
        size_t keylen = json_object_iter_key_len(it);
        node_t *p = compile_sub(c, json_object_iter_value(it), key);
        if (!p)
            return -1;
        if (json_object_setn_new(n->prop_index, key, keylen, json_integer((json_int_t)n->nprops)))
            return fail_oom(c);
        n->props[n->nprops++] = p;
    }
    return 0;
}

static int kw_required(cc_t *c, node_t *n, const json_t *v)
{
    if (!json_is_array(v))
        return fail(c, "must be an array of member names");
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *name = json_array_get(v, i);
        if (!json_is_string(name))
            return fail(c, "item %zu is not a string", i);
        for (size_t k = 0; k < i; k++)
            if (json_equal(json_array_get(v, k), (json_t *)name))
                return fail(c, "\"%s\" is listed twice", json_string_value(name));
    }
    n->required = json_deep_copy(v);
    return n->required ? 0 : fail_oom(c);
}

static int kw_additional(cc_t *c, node_t *n, const json_t *v)
{
    if (json_is_false(v)) {
        n->addl = ADDL_NONE;
        return 0;
    }
    if (json_is_true(v)) {
        n->addl = ADDL_ANY;
        return 0;
    }
    n->addl_schema = compile_sub(c, v, NULL);
    if (!n->addl_schema)
        return -1;
    n->addl = ADDL_SCHEMA;
    return 0;
}

/* Fills l (zeroed by the caller, freed by literal_free even half-filled). */
static int literal_init(cc_t *c, literal_t *l, const json_t *v)
{
    strbuf_t b = STRBUF_INIT;
    if (jsonschema__canon(&b, v, 0) < 0) {
        strbuf_free(&b);
        return fail(c, "value nests too deeply");
    }
    if (b.oom) {
        strbuf_free(&b);
        return fail_oom(c);
    }
    l->canon = b.p;
    l->len = b.len;
    return 0;
}

/* The values of array (or the one value) as compact JSON joined by ", ",
 * cut short with "..." past 200 bytes. Made at compile time: dumping
 * containers from many validating threads at once is not jansson's promise. */
static char *literals_text(const json_t *v, bool array)
{
    char out[208];
    size_t len = 0, count = array ? json_array_size(v) : 1;
    out[0] = '\0';
    for (size_t i = 0; i < count && len < 200; i++) {
        char *s = json_dumps(array ? json_array_get(v, i) : v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s)
            return NULL;
        int w = snprintf(out + len, 201 - len, "%s%s", i ? ", " : "", s);
        free(s);
        if (w < 0)
            return NULL;
        len += (size_t)w;
    }
    if (len >= 200) {
        /* do not leave half a UTF-8 character before the ellipsis */
        size_t cut = 200;
        while (cut > 0 && ((unsigned char)out[cut] & 0xC0) == 0x80)
            cut--;
        memcpy(out + cut, "...", 4);
    }
    return strdup(out);
}

static int kw_enum(cc_t *c, node_t *n, const json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(c, "must be a non-empty array");
    n->enums = calloc(json_array_size(v), sizeof *n->enums);
    if (!n->enums)
        return fail_oom(c);
    for (size_t i = 0; i < json_array_size(v); i++) {
        n->nenums++; /* counted first so a half-filled entry is still freed */
        if (literal_init(c, &n->enums[i], json_array_get(v, i)) < 0)
            return -1;
    }
    n->enum_text = literals_text(v, true);
    return n->enum_text ? 0 : fail_oom(c);
}

static int kw_const(cc_t *c, node_t *n, const json_t *v)
{
    n->konst = calloc(1, sizeof *n->konst);
    if (!n->konst)
        return fail_oom(c);
    if (literal_init(c, n->konst, v) < 0)
        return -1;
    n->const_text = literals_text(v, false);
    return n->const_text ? 0 : fail_oom(c);
}

static int bound(cc_t *c, json_t **slot, const json_t *v)
{
    if (!json_is_number(v))
        return fail(c, "must be a number");
    *slot = json_deep_copy(v);
    return *slot ? 0 : fail_oom(c);
}

static int kw_minimum(cc_t *c, node_t *n, const json_t *v)
{
    return bound(c, &n->minimum, v);
}

static int kw_maximum(cc_t *c, node_t *n, const json_t *v)
{
    return bound(c, &n->maximum, v);
}

static int kw_xminimum(cc_t *c, node_t *n, const json_t *v)
{
    /* draft-04 / OpenAPI 3.0 spell it as a flag on minimum */
    if (json_is_boolean(v)) {
        n->xmin_bool = json_is_true(v);
        return 0;
    }
    return bound(c, &n->xminimum, v);
}

static int kw_xmaximum(cc_t *c, node_t *n, const json_t *v)
{
    if (json_is_boolean(v)) {
        n->xmax_bool = json_is_true(v);
        return 0;
    }
    return bound(c, &n->xmaximum, v);
}

static int count_kw(cc_t *c, long long *slot, const json_t *v)
{
    if (!is_count(v, slot))
        return fail(c, "must be a non-negative integer");
    return 0;
}

static int kw_min_length(cc_t *c, node_t *n, const json_t *v)
{
    return count_kw(c, &n->min_len, v);
}

static int kw_max_length(cc_t *c, node_t *n, const json_t *v)
{
    return count_kw(c, &n->max_len, v);
}

static int kw_min_items(cc_t *c, node_t *n, const json_t *v)
{
    return count_kw(c, &n->min_items, v);
}

static int kw_max_items(cc_t *c, node_t *n, const json_t *v)
{
    return count_kw(c, &n->max_items, v);
}

static int kw_pattern(cc_t *c, node_t *n, const json_t *v)
{
    if (!json_is_string(v))
        return fail(c, "must be a string");
    const char *src = json_string_value(v);
    if (strlen(src) != json_string_length(v))
        return fail(c, "must not contain NUL");
    int rc = regcomp(&n->re, src, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, &n->re, why, sizeof why);
        return fail(c, "invalid POSIX extended regular expression \"%s\": %s", src, why);
    }
    n->has_pattern = true;
    n->pattern = strdup(src);
    return n->pattern ? 0 : fail_oom(c);
}

static int kw_items(cc_t *c, node_t *n, const json_t *v)
{
    if (json_is_array(v))
        return fail(c, "must be one schema (the tuple form is not supported)");
    n->items = compile_sub(c, v, NULL);
    return n->items ? 0 : -1;
}

static int kw_unique(cc_t *c, node_t *n, const json_t *v)
{
    if (!json_is_boolean(v))
        return fail(c, "must be a boolean");
    n->unique = json_is_true(v);
    return 0;
}

static int kw_format(cc_t *c, node_t *n, const json_t *v)
{
    const char *name = json_string_value(v);
    if (!name)
        return fail(c, "must be a string");
    for (size_t i = 1; i < NFORMATS; i++) {
        if (strcmp(name, jsonschema__formats[i].name) == 0) {
            n->format = (enum format)i;
            return 0;
        }
    }
    return fail(c, "unsupported format \"%s\" (supported: uuid, email, uri, date-time)", name);
}

static int kw_ref(cc_t *c, node_t *n, const json_t *v)
{
    if (!json_is_string(v))
        return fail(c, "must be a string");
    n->ref = strdup(json_string_value(v));
    n->ref_at = strdup(strbuf_str(&c->at));
    return n->ref && n->ref_at ? 0 : fail_oom(c);
}

static int defs(cc_t *c, int kind, const json_t *v)
{
    if (c->depth != 1)
        return fail(c, "is supported at the root of the schema only");
    if (!json_is_object(v))
        return fail(c, "must be an object of schemas");
    jsonschema_t *s = c->s;
    size_t more = json_object_size(v);
    if (vec_reserve(s->defs, s->capdefs, s->ndefs + more) != 0)
        return fail_oom(c);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value)
    {
        node_t *dn = compile_sub(c, value, key);
        if (!dn)
            return -1;
        char *name = strdup(key);
        if (!name)
            return fail_oom(c);
        s->defs[s->ndefs++] = (def_t){.kind = kind, .name = name, .node = dn};
    }
    return 0;
}

static int kw_defs(cc_t *c, node_t *n, const json_t *v)
{
    return defs(c, 0, v);
}

static int kw_definitions(cc_t *c, node_t *n, const json_t *v)
{
    return defs(c, 1, v);
}

static int kw_nullable(cc_t *c, node_t *n, const json_t *v)
{
    return fail(c, "unsupported keyword \"nullable\": write \"type\": [\"<type>\", \"null\"]");
}

/* The subset, as data: a keyword not in this table is refused. */
static const struct {
    const char *name;
    int (*compile)(cc_t *c, node_t *n, const json_t *v);
} KEYWORDS[] = {
    {"type", kw_type},
    {"properties", kw_properties},
    {"required", kw_required},
    {"additionalProperties", kw_additional},
    {"enum", kw_enum},
    {"const", kw_const},
    {"minimum", kw_minimum},
    {"maximum", kw_maximum},
    {"exclusiveMinimum", kw_xminimum},
    {"exclusiveMaximum", kw_xmaximum},
    {"minLength", kw_min_length},
    {"maxLength", kw_max_length},
    {"pattern", kw_pattern},
    {"items", kw_items},
    {"minItems", kw_min_items},
    {"maxItems", kw_max_items},
    {"uniqueItems", kw_unique},
    {"format", kw_format},
    {"$ref", kw_ref},
    {"$defs", kw_defs},
    {"definitions", kw_definitions},
    {"nullable", kw_nullable},
    {"title", kw_ignore},
    {"description", kw_ignore},
    {"default", kw_ignore},
    {"examples", kw_ignore},
    {"$schema", kw_ignore},
    {"$id", kw_ignore},
    {"$comment", kw_ignore},
    {"readOnly", kw_ignore},
    {"writeOnly", kw_ignore},
    {"deprecated", kw_ignore},
};
#define NKEYWORDS (sizeof KEYWORDS / sizeof KEYWORDS[0])

static node_t *compile_node(cc_t *c, const json_t *schema)
{
    node_t *n = new_node(c);
    if (!n) {
        fail_oom(c);
        return NULL;
    }
    if (json_is_boolean(schema)) {
        n->always = json_is_true(schema) ? 1 : -1;
        return n;
    }
    if (!json_is_object(schema)) {
        fail(c, "a schema must be an object or a boolean");
        return NULL;
    }
    if (c->depth >= MAX_SCHEMA_DEPTH) {
        fail(c, "schema nests deeper than %d", MAX_SCHEMA_DEPTH);
        return NULL;
    }
    c->depth++;
    int rc = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)schema, key, value)
    {
        size_t k = 0;
        while (k < NKEYWORDS && strcmp(KEYWORDS[k].name, key) != 0)
            k++;
        if (k == NKEYWORDS) {
            rc = fail(c, "unsupported keyword \"%s\"", key);
            break;
        }
        size_t mark = c->at.len;
        at_push(&c->at, key);
        rc = KEYWORDS[k].compile(c, n, value);
        if (rc == 0)
            strbuf_truncate(&c->at, mark);
        if (rc < 0)
            break;
    }
    c->depth--;
    if (rc < 0)
        return NULL;
    /* The draft-04 flag form turns minimum/maximum exclusive. */
    if (n->xmin_bool == 1) {
        if (!n->minimum) {
            fail(c, "exclusiveMinimum: true needs minimum");
            return NULL;
        }
        n->xminimum = n->minimum;
        n->minimum = NULL;
    }
    if (n->xmax_bool == 1) {
        if (!n->maximum) {
            fail(c, "exclusiveMaximum: true needs maximum");
            return NULL;
        }
        n->xmaximum = n->maximum;
        n->maximum = NULL;
    }
    return n;
}

/* Resolves "#", "#/$defs/<name>" and "#/definitions/<name>" (JSON Pointer
 * escapes ~0 and ~1 in name). */
static node_t *resolve(cc_t *c, const char *ref)
{
    jsonschema_t *s = c->s;
    if (strcmp(ref, "#") == 0)
        return s->root;
    int kind;
    const char *rest;
    if (strncmp(ref, "#/$defs/", 8) == 0) {
        kind = 0;
        rest = ref + 8;
    } else if (strncmp(ref, "#/definitions/", 14) == 0) {
        kind = 1;
        rest = ref + 14;
    } else {
        fail(c,
             "$ref \"%s\" is not supported: only \"#\", \"#/$defs/<name>\" and "
             "\"#/definitions/<name>\"",
             ref);
        return NULL;
    }
    char *name = malloc(strlen(rest) + 1);
    if (!name) {
        fail_oom(c);
        return NULL;
    }
    size_t k = 0;
    for (const char *p = rest; *p; p++) {
        if (*p == '/' || (*p == '~' && p[1] != '0' && p[1] != '1')) {
            free(name);
            fail(c, "$ref \"%s\" is not supported: only \"#/$defs/<name>\" (one level)", ref);
            return NULL;
        }
        if (*p == '~') {
            name[k++] = p[1] == '0' ? '~' : '/';
            p++;
        } else {
            name[k++] = *p;
        }
    }
    name[k] = '\0';
    node_t *found = NULL;
    for (size_t i = 0; i < s->ndefs && !found; i++)
        if (s->defs[i].kind == kind && strcmp(s->defs[i].name, name) == 0)
            found = s->defs[i].node;
    free(name);
    if (!found)
        fail(c, "$ref \"%s\" does not resolve", ref);
    return found;
}

static int link_refs(cc_t *c)
{
    jsonschema_t *s = c->s;
    for (size_t i = 0; i < s->nnodes; i++) {
        node_t *n = s->nodes[i];
        if (!n->ref)
            continue;
        strbuf_truncate(&c->at, 0);
        strbuf_append(&c->at, n->ref_at);
        n->ref_target = resolve(c, n->ref);
        if (!n->ref_target)
            return -1;
    }
    /* A chain of $refs that comes back to itself without descending into the
     * instance would recurse forever at validation: refuse it now. Each node
     * has at most one $ref, so a walk longer than the node count is a cycle. */
    for (size_t i = 0; i < s->nnodes; i++) {
        node_t *n = s->nodes[i];
        size_t steps = 0;
        for (node_t *p = n->ref_target; p; p = p->ref_target) {
            if (p == n || ++steps > s->nnodes) {
                strbuf_truncate(&c->at, 0);
                strbuf_append(&c->at, n->ref_at);
                return fail(c, "$ref \"%s\" is part of a cycle that never descends", n->ref);
            }
        }
    }
    return 0;
}

jsonschema_t *jsonschema_compile(const json_t *schema, char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        errbuf[0] = '\0';
    cc_t c = {.err = errbuf, .errlen = errlen};
    c.s = calloc(1, sizeof *c.s);
    if (!c.s) {
        fail_oom(&c);
        return NULL;
    }
    if (!schema) {
        fail(&c, "no schema");
        jsonschema_free(&c.s);
        return NULL;
    }
    /* defs() compiles root-level definitions while the root node is being
     * built; refs are linked once everything exists, so order does not matter. */
    c.s->root = compile_node(&c, schema);
    if (!c.s->root || link_refs(&c) < 0 || c.at.oom) {
        if (c.at.oom)
            fail_oom(&c);
        strbuf_free(&c.at);
        jsonschema_free(&c.s);
        return NULL;
    }
    strbuf_free(&c.at);
    return c.s;
}

jsonschema_t *jsonschema_load_file(const char *path, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    char inner[512] = "";
    jsonschema_t *s = jsonschema_compile(doc, inner, sizeof inner);
    json_decref(doc);
    if (!s && errbuf && errlen)
        snprintf(errbuf, errlen, "%s: %s", path, inner);
    return s;
}
