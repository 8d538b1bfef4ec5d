/* jsonschema_internal.h - what the schema compiler (jsonschema.c) and the
 * validator (jsonschema_validate.c) share (jsonschema__ prefix): the
 * compiled tree and the canonical form of values. Nothing else includes it. */
#ifndef FENTA_JSONSCHEMA_INTERNAL_H
#define FENTA_JSONSCHEMA_INTERNAL_H
#include "json/jsonschema.h"
#include "runtime/strbuf.h"

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

/* Deeper instances than this are refused rather than risk the stack; jansson's
 * own parser stops at 2048, so only hand-built values can get here. */
#define MAX_DEPTH 2048

/* ---- the compiled tree ---------------------------------------------------- */

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_NUMBER = 1 << 4,
    T_STRING = 1 << 5,
    T_INTEGER = 1 << 6,
};

/* The names of "type", in the order messages list them ("must be a string
 * or null"), with their articles for messages. */
typedef struct {
    const char *name;    /* as written in "type" */
    const char *article; /* for messages: "must be an integer" */
    unsigned bit;
} jsonschema__type_t;
#define NTYPES 7
extern const jsonschema__type_t jsonschema__types[NTYPES];

enum format { FMT_NONE, FMT_UUID, FMT_EMAIL, FMT_URI, FMT_DATE_TIME };

/* The names of "format" and the problem text of each, by enum format. */
typedef struct {
    const char *name;    /* as written in "format" */
    const char *message; /* the problem's text */
} jsonschema__format_t;
#define NFORMATS 5
extern const jsonschema__format_t jsonschema__formats[NFORMATS];

enum addl { ADDL_ANY, ADDL_NONE, ADDL_SCHEMA };

typedef struct node node_t;

typedef struct {
    char *canon; /* canonical form (see canon()) */
    size_t len;  /* its length */
} literal_t;

struct node {
    int always;          /* boolean schema: 1 true, -1 false, 0 keyword schema */
    unsigned types;      /* T_* mask; 0 means any type */
    json_t *prop_index;  /* property name -> JSON integer index into props */
    node_t **props;      /* the property schemas, in schema order */
    size_t nprops;       /* entries in props */
    json_t *required;    /* array of member names (strings), or NULL */
    enum addl addl;      /* what members outside properties get */
    node_t *addl_schema; /* the schema for them when addl == ADDL_SCHEMA */
    literal_t *enums;    /* enum values */
    size_t nenums;       /* entries in enums (0: no enum keyword) */
    char *enum_text;     /* the enum values as JSON, for messages */
    literal_t *konst;    /* const value, or NULL */
    char *const_text;    /* the const value as JSON, for messages */
    json_t *minimum;     /* inclusive lower bound, or NULL */
    json_t *maximum;     /* inclusive upper bound, or NULL */
    json_t *xminimum;    /* exclusive lower bound, or NULL */
    json_t *xmaximum;    /* exclusive upper bound, or NULL */
    int xmin_bool;       /* draft-04 exclusiveMinimum: -1 unset, 0 false, 1 true */
    int xmax_bool;       /* draft-04 exclusiveMaximum: -1 unset, 0 false, 1 true */
    long long min_len;   /* minLength in code points, -1 unset */
    long long max_len;   /* maxLength in code points, -1 unset */
    bool has_pattern;    /* re is compiled */
    regex_t re;          /* pattern, POSIX ERE, REG_NOSUB */
    char *pattern;       /* pattern source, for messages */
    enum format format;  /* format keyword */
    node_t *items;       /* schema for every item, or NULL */
    long long min_items; /* -1 unset */
    long long max_items; /* -1 unset */
    bool unique;         /* uniqueItems: true */
    char *ref;           /* $ref as written, or NULL */
    char *ref_at;        /* JSON Pointer of this node, for $ref errors */
    node_t *ref_target;  /* resolved $ref */
};

typedef struct {
    int kind;     /* 0 "$defs", 1 "definitions" */
    char *name;   /* the definition's name (unescaped) */
    node_t *node; /* its compiled schema */
} def_t;

struct jsonschema {
    node_t *root;    /* the schema */
    node_t **nodes;  /* every node, for freeing */
    size_t nnodes;   /* entries in nodes */
    size_t capnodes; /* slots in nodes */
    def_t *defs;     /* root-level $defs and definitions */
    size_t ndefs;    /* entries in defs */
    size_t capdefs;  /* room in defs (vec_reserve) */
};

/* ---- canonical form (jsonschema.c) ------------------------------------------ */

/* True when d has no fraction and fits int64 (*out is then that integer). */
bool jsonschema__real_as_int(double d, long long *out);
/* Appends v's canonical form to b: two values are equal exactly when their
 * canonical forms are byte-equal. 0, or -1 when v nests deeper than
 * MAX_DEPTH (b->oom on memory). */
int jsonschema__canon(strbuf_t *b, const json_t *v, int depth);

#endif
