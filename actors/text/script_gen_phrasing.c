/* script_gen_phrasing.c - the generator's phrasing tables: read once from
 * schemas/script_phrasing.json, checked against script_phrasing.schema.json
 * and against what a schema cannot say (a spelt number for every listicle
 * item), then kept, unchanged, for the life of the process.
 *
 * Once, not per script: a script job must not read two files and compile a
 * schema each time, and every script of a process must come from one
 * version of the phrasing. Kept, not freed: generators on any thread read
 * the tables without a lock, which is safe only because nothing ever
 * changes or frees them after they are published. */
#include "actors/text/script_gen.h"
#include "actors/text/script_gen_internal.h"
#include "json/jsonschema.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define PHRASING_FILE "script_phrasing.json"
#define SCHEMA_FILE "script_phrasing.schema.json"

/* The tables and what their strings live in. */
typedef struct {
    script_gen__phrasing_t ph; /* first: what script_gen__phrasing hands out */
    json_t *doc;               /* owns every string the tables point at */
    const char **strs;         /* one block holding every table's pointer array */
} loaded_t;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER; /* one loader at a time */
static _Atomic(const loaded_t *) loaded;                      /* published once, then read-only */

static const struct {
    const char *genre; /* NULL: a top-level list */
    const char *key;
} pool_keys[SCRIPT_GEN__NPOOLS] = {
#define SCRIPT_GEN__POOL_KEY(id, genre, key) {genre, key},
    SCRIPT_GEN__POOLS(SCRIPT_GEN__POOL_KEY)
#undef SCRIPT_GEN__POOL_KEY
};

static const json_t *pool_json(const json_t *doc, size_t i)
{
    const json_t *in = pool_keys[i].genre
                           ? json_object_get(json_object_get(doc, "genres"), pool_keys[i].genre)
                           : doc;
    return json_object_get(in, pool_keys[i].key);
}

/* Points *p at the strings of arr (validated: an array of strings), using
 * the next slots of *next. */
static void take(script_gen__pool_t *p, const json_t *arr, const char ***next)
{
    const char **t = *next;
    size_t n = json_array_size(arr);
    for (size_t i = 0; i < n; i++)
        t[i] = json_string_value(json_array_get(arr, i));
    p->t = t;
    p->n = n;
    *next += n;
}

static void loaded_free(loaded_t *l)
{
    if (!l)
        return;
    json_decref(l->doc);
    free(l->strs);
    free(l);
}

/* Reads and checks the files in dir into *out. 0; FENTA_EIO (a file is
 * missing or not JSON), FENTA_EINVAL (the phrasing breaks its schema),
 * FENTA_ENOMEM. */
static int load(const char *dir, loaded_t **out, char *errbuf, size_t errlen)
{
    char path[PATH_MAX], err[512];
    *out = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, SCHEMA_FILE);
    jsonschema_t *schema = jsonschema_load_file(path, err, sizeof err);
    if (!schema)
        return fenta_fail(errbuf, errlen, FENTA_EIO, "%s: %s", path, err);
    snprintf(path, sizeof path, "%s/%s", dir, PHRASING_FILE);
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        jsonschema_free(&schema);
        return fenta_fail(errbuf, errlen, FENTA_EIO, "%s: %s", path, je.text);
    }
    json_t *problems = NULL;
    int rc = jsonschema_validate(schema, doc, &problems);
    jsonschema_free(&schema);
    if (rc) {
        jsonschema_describe(problems, PHRASING_FILE " breaks " SCHEMA_FILE ": ", errbuf, errlen);
        json_decref(problems);
        json_decref(doc);
        return rc;
    }
    const json_t *ords = json_object_get(doc, "ordinals"), *nums = json_object_get(doc, "numbers");
    const json_t *topic = json_object_get(doc, "topic");
    const json_t *spelt = json_object_get(nums, "spelt");
    size_t items = json_array_size(pool_json(doc, SCRIPT_GEN__P_LIST_ITEMS));
    if (items >= json_array_size(spelt)) {
        json_decref(doc);
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "%s: %zu listicle items, but numbers.spelt reaches only %zu", path, items,
                          json_array_size(spelt) - 1);
    }

    size_t n = json_array_size(json_object_get(ords, "first")) + json_array_size(spelt) +
               json_array_size(json_object_get(topic, "lead_words")) +
               json_array_size(json_object_get(topic, "dangling_words"));
    for (size_t i = 0; i < SCRIPT_GEN__NPOOLS; i++)
        n += json_array_size(pool_json(doc, i));
    loaded_t *l = calloc(1, sizeof *l);
    const char **next = l ? (l->strs = calloc(n, sizeof *l->strs)) : NULL;
    if (!next) {
        loaded_free(l);
        json_decref(doc);
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    }
    l->doc = doc;
    script_gen__phrasing_t *ph = &l->ph;
    for (size_t i = 0; i < SCRIPT_GEN__NPOOLS; i++)
        take(&ph->pool[i], pool_json(doc, i), &next);
    take(&ph->ordinals, json_object_get(ords, "first"), &next);
    ph->ordinal_last = json_string_value(json_object_get(ords, "last"));
    ph->ordinal_more[0] = json_string_value(json_array_get(json_object_get(ords, "more"), 0));
    ph->ordinal_more[1] = json_string_value(json_array_get(json_object_get(ords, "more"), 1));
    take(&ph->numbers, spelt, &next);
    ph->number_more = json_string_value(json_object_get(nums, "more"));
    take(&ph->leads, json_object_get(topic, "lead_words"), &next);
    take(&ph->dangling, json_object_get(topic, "dangling_words"), &next);
    *out = l;
    return 0;
}

int script_gen_load(const char *schemas_dir, char *errbuf, size_t errlen)
{
    if (atomic_load(&loaded))
        return 0;
    pthread_mutex_lock(&load_lock);
    int rc = 0;
    if (!atomic_load(&loaded)) {
        loaded_t *l = NULL;
        rc = load(fsutil_schemas_dir(schemas_dir), &l, errbuf, errlen);
        if (rc == 0)
            atomic_store(&loaded, l);
    }
    pthread_mutex_unlock(&load_lock);
    return rc;
}

int script_gen__phrasing(const script_gen__phrasing_t **out, char *errbuf, size_t errlen)
{
    const loaded_t *l = atomic_load(&loaded);
    if (!l) {
        int rc = script_gen_load(NULL, errbuf, errlen);
        if (rc) {
            *out = NULL;
            return rc;
        }
        l = atomic_load(&loaded);
    }
    *out = &l->ph;
    return 0;
}
