/* errcodes.c - schemas/errors.json as a sorted table (see errcodes.h).
 *
 * One code, one status: the file is an object keyed by code, so a code
 * cannot be given two statuses (the loader rejects duplicate keys), and a
 * client can branch on the code alone. */
#include "http/errcodes.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *code;    /* "invalid_workflow" */
    int status;    /* 400..599 */
    char *meaning; /* one sentence, for the OpenAPI document */
} entry_t;

struct errcodes {
    entry_t *e; /* sorted by code, for bsearch */
    size_t n;
};

static int by_code(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->code, ((const entry_t *)b)->code);
}

static bool code_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
            return false;
    return true;
}

errcodes_t *errcodes_new(const json_t *doc, char *errbuf, size_t errlen)
{
    const json_t *errors = json_object_get(doc, "errors");
    if (!json_is_object(errors) || json_object_size(errors) == 0) {
        snprintf(errbuf, errlen, "errors.json needs an \"errors\" object of codes");
        return NULL;
    }
    errcodes_t *t = calloc(1, sizeof *t);
    if (!t || !(t->e = calloc(json_object_size(errors), sizeof *t->e))) {
        free(t);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)errors, k, v)
    {
        json_int_t st = json_integer_value(json_object_get(v, "status"));
        const char *m = json_string_value(json_object_get(v, "meaning"));
        if (!code_ok(k) || st < 400 || st > 599 || !m || !*m) {
            snprintf(errbuf, errlen,
                     "errors.json: \"%s\" needs a code of [a-z_], a status from 400 to 599 and a "
                     "meaning",
                     k);
            errcodes_destroy(&t);
            return NULL;
        }
        entry_t *e = &t->e[t->n];
        if (!(e->code = strdup(k)) || !(e->meaning = strdup(m))) {
            free(e->code);
            snprintf(errbuf, errlen, "out of memory");
            errcodes_destroy(&t);
            return NULL;
        }
        e->status = (int)st;
        t->n++;
    }
    qsort(t->e, t->n, sizeof *t->e, by_code);
    return t;
}

void errcodes_destroy(errcodes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    errcodes_t *t = *self_p;
    for (size_t i = 0; i < t->n; i++) {
        free(t->e[i].code);
        free(t->e[i].meaning);
    }
    free(t->e);
    free(t);
    *self_p = NULL;
}

static const entry_t *find(const errcodes_t *t, const char *code)
{
    if (!t || !code)
        return NULL;
    entry_t key = {.code = (char *)code};
    return bsearch(&key, t->e, t->n, sizeof *t->e, by_code);
}

int errcodes_status(const errcodes_t *self, const char *code)
{
    const entry_t *e = find(self, code);
    return e ? e->status : 0;
}

const char *errcodes_meaning(const errcodes_t *self, const char *code)
{
    const entry_t *e = find(self, code);
    return e ? e->meaning : NULL;
}

size_t errcodes_count(const errcodes_t *self)
{
    return self ? self->n : 0;
}

const char *errcodes_code(const errcodes_t *self, size_t i)
{
    return self && i < self->n ? self->e[i].code : NULL;
}
