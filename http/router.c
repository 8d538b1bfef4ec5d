/* router.c - compiles route patterns into segments and matches paths
 * against them. Linear over the table: an API has tens of routes, and a
 * compare is a few short strcmps, cheaper than any structure to maintain. */
#include "http/router.h"
#include "runtime/error.h"
#include "runtime/strutil.h"
#include "runtime/vec.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    http_route_t route;          /* method/pattern/name strings owned here */
    char *segs[ROUTER_MAX_SEGS]; /* literal text, or the parameter's name */
    uint32_t is_param;           /* bit i: segs[i] is a {param} */
    size_t nsegs;
    bool tail; /* HTTP_ROUTE_TAIL: the last {param} takes the rest of the path */
} entry_t;

struct router {
    entry_t **entries; /* pointers stay put when the array grows */
    size_t n, cap;     /* entries in use, and room (vec_reserve) */
};

router_t *router_new(void)
{
    return calloc(1, sizeof(router_t));
}

static void entry_free(entry_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nsegs; i++)
        free(e->segs[i]);
    free((char *)e->route.method);
    free((char *)e->route.pattern);
    free((char *)e->route.name);
    free(e);
}

void router_destroy(router_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    router_t *r = *r_p;
    for (size_t i = 0; i < r->n; i++)
        entry_free(r->entries[i]);
    free(r->entries);
    free(r);
    *r_p = NULL;
}

size_t router_count(const router_t *r)
{
    return r ? r->n : 0;
}

const http_route_t *router_route(const router_t *r, size_t i)
{
    return r && i < r->n ? &r->entries[i]->route : NULL;
}

/* Literal characters: RFC 3986 pchar without '%' (a literal is compared with
 * the decoded path, so it must not itself be encoded) and nothing a metric
 * label would need escaped. */
static bool literal_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

static bool param_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A compiled copy of route, or NULL (with *err) when it is malformed. */
static entry_t *compile(const http_route_t *route, int *err)
{
    *err = FENTA_EINVAL;
    if (!route || !route->handler || !strutil_is_method(route->method) || !route->pattern ||
        route->pattern[0] != '/')
        return NULL;
    entry_t *e = calloc(1, sizeof(*e));
    if (!e) {
        *err = FENTA_ENOMEM;
        return NULL;
    }
    const char *p = route->pattern + 1;
    if (*p != '\0') { /* "/" alone has no segments */
        for (;;) {
            const char *end = strchr(p, '/');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len == 0 || e->nsegs == ROUTER_MAX_SEGS)
                goto bad;
            bool param = p[0] == '{';
            if (param) {
                if (len < 3 || p[len - 1] != '}' || !param_name_ok(p + 1, len - 2))
                    goto bad;
                for (size_t i = 0; i < e->nsegs; i++) /* names are unique */
                    if ((e->is_param >> i & 1) && strlen(e->segs[i]) == len - 2 &&
                        memcmp(e->segs[i], p + 1, len - 2) == 0)
                        goto bad;
                e->segs[e->nsegs] = strndup(p + 1, len - 2);
                e->is_param |= 1u << e->nsegs;
            } else {
                for (size_t i = 0; i < len; i++)
                    if (!literal_char(p[i]))
                        goto bad;
                e->segs[e->nsegs] = strndup(p, len);
            }
            if (!e->segs[e->nsegs++])
                goto nomem;
            if (!end)
                break;
            p = end + 1;
        }
    }
    e->tail = (route->flags & HTTP_ROUTE_TAIL) != 0;
    if (e->tail && (e->nsegs == 0 || !(e->is_param >> (e->nsegs - 1) & 1)))
        goto bad; /* only a {param} can take the rest */
    e->route = *route;
    e->route.method = strdup(route->method);
    e->route.pattern = strdup(route->pattern);
    e->route.name = dup_or_null(route->name);
    if (!e->route.method || !e->route.pattern || (route->name && !e->route.name))
        goto nomem;
    *err = 0;
    return e;
nomem:
    *err = FENTA_ENOMEM;
bad:
    entry_free(e); /* route strings are NULL or owned copies here */
    return NULL;
}

/* Same shape: same segment count, same literal positions and literals, both
 * taking the rest of the path or neither. */
static bool same_shape(const entry_t *a, const entry_t *b)
{
    if (a->nsegs != b->nsegs || a->is_param != b->is_param || a->tail != b->tail)
        return false;
    for (size_t i = 0; i < a->nsegs; i++)
        if (!(a->is_param >> i & 1) && strcmp(a->segs[i], b->segs[i]) != 0)
            return false;
    return true;
}

int router_add(router_t *r, const http_route_t *routes, size_t n)
{
    if (!r || (!routes && n))
        return FENTA_EINVAL;
    entry_t **fresh = calloc(n ? n : 1, sizeof(*fresh));
    if (!fresh)
        return FENTA_ENOMEM;
    int rc = 0;
    size_t made = 0;
    for (; made < n; made++) {
        fresh[made] = compile(&routes[made], &rc);
        if (!fresh[made])
            break;
        /* a duplicate of an existing route or of one earlier in this batch */
        for (size_t j = 0; j < r->n + made && rc == 0; j++) {
            const entry_t *o = j < r->n ? r->entries[j] : fresh[j - r->n];
            if (same_shape(o, fresh[made]) &&
                strcmp(o->route.method, fresh[made]->route.method) == 0)
                rc = FENTA_EEXIST;
        }
        if (rc != 0) {
            made++;
            break;
        }
    }
    if (rc == 0)
        rc = vec_reserve(r->entries, r->cap, r->n + n);
    if (rc != 0) {
        for (size_t i = 0; i < made; i++)
            entry_free(fresh[i]);
        free(fresh);
        return rc;
    }
    memcpy(r->entries + r->n, fresh, n * sizeof(*fresh));
    r->n += n;
    free(fresh);
    return 0;
}

/* A tail route's last {param} needs its first segment; the ones after it
 * may be empty ("a//b"), so the handler, not the router, judges the name. */
static bool matches(const entry_t *e, const char *const *segs, size_t nsegs)
{
    if (e->tail ? nsegs < e->nsegs : e->nsegs != nsegs)
        return false;
    for (size_t i = 0; i < e->nsegs; i++) {
        if (e->is_param >> i & 1) {
            if (segs[i][0] == '\0')
                return false;
        } else if (strcmp(e->segs[i], segs[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* More specific: a literal where the other has a parameter, first position
 * that differs among the segments both patterns have; with none, the one
 * that does not take the rest of the path, then the longer tail route. */
static bool more_specific(const entry_t *a, const entry_t *b)
{
    size_t n = a->nsegs < b->nsegs ? a->nsegs : b->nsegs;
    uint32_t mask = n >= 32 ? UINT32_MAX : (1u << n) - 1;
    uint32_t diff = (a->is_param ^ b->is_param) & mask;
    if (diff) {
        uint32_t first = diff & -diff;
        return (b->is_param & first) != 0;
    }
    if (a->tail != b->tail)
        return !a->tail;
    return a->nsegs > b->nsegs;
}

static void allow_add(char *buf, size_t cap, const char *m)
{
    size_t len = strlen(buf);
    size_t mlen = strlen(m);
    /* skip duplicates ("GET" twice when HEAD is implied and explicit) */
    for (const char *p = buf; (p = strstr(p, m)) != NULL; p += mlen)
        if ((p == buf || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
            return;
    if (len + mlen + 3 > cap)
        return;
    if (len) {
        memcpy(buf + len, ", ", 2);
        len += 2;
    }
    memcpy(buf + len, m, mlen + 1);
}

int router_match(const router_t *r, const char *method, const char *const *segs, size_t nsegs,
                 router_match_t *out)
{
    out->status = 404;
    out->index = 0;
    out->allow[0] = '\0';
    if (!r || !method)
        return out->status;
    const entry_t *best = NULL;
    for (size_t i = 0; i < r->n; i++) {
        const entry_t *e = r->entries[i];
        if (matches(e, segs, nsegs) && (!best || more_specific(e, best)))
            best = e;
    }
    if (!best)
        return out->status;
    /* the method, among the routes of the winning shape */
    bool head = strcmp(method, "HEAD") == 0;
    long get_index = -1;
    for (size_t i = 0; i < r->n; i++) {
        const entry_t *e = r->entries[i];
        if (!same_shape(e, best))
            continue;
        if (strcmp(e->route.method, method) == 0) {
            out->status = 0;
            out->index = i;
            return 0;
        }
        if (head && strcmp(e->route.method, "GET") == 0)
            get_index = (long)i;
    }
    if (get_index >= 0) {
        out->status = 0;
        out->index = (size_t)get_index;
        return 0;
    }
    for (size_t i = 0; i < r->n; i++) {
        const entry_t *e = r->entries[i];
        if (!same_shape(e, best))
            continue;
        allow_add(out->allow, sizeof(out->allow), e->route.method);
        if (strcmp(e->route.method, "GET") == 0)
            allow_add(out->allow, sizeof(out->allow), "HEAD");
    }
    out->status = 405;
    return out->status;
}

size_t router_nparams(const router_t *r, size_t i)
{
    if (!r || i >= r->n)
        return 0;
    return (size_t)__builtin_popcount(r->entries[i]->is_param);
}

const char *router_param(const router_t *r, size_t i, size_t k, size_t *pos)
{
    if (!r || i >= r->n)
        return NULL;
    const entry_t *e = r->entries[i];
    for (size_t s = 0; s < e->nsegs; s++) {
        if (!(e->is_param >> s & 1))
            continue;
        if (k-- == 0) {
            if (pos)
                *pos = s;
            return e->segs[s];
        }
    }
    return NULL;
}
