/* workflow_types.c - loads the node types from schemas/nodes/<type>.json and the
 * workflow document schema; lookups over them. See workflow.h. */
#include "actors/workflow/workflow_internal.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The schema every node file is checked against; it is not a node type. */
#define NODE_TYPE_FILE "node-type.json"

/* Port names are what follows the first '.' of a port ref, so they are held
 * to the ref pattern of schemas/workflow.json; the node-type schema cannot say
 * so (the subset has no propertyNames). */
static bool port_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool in_array(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) &&
                                      strcmp(json_string_value(v), s) == 0) return true;
    return false;
}

/* The checks the node-type schema cannot express: the file's name, port
 * names, and that params named by type_from_param and per_unit exist. */
static int check_def(const char *file, const json_t *def, const json_t *port_types, char *errbuf,
                     size_t errlen)
{
    const char *type = json_string_value(json_object_get(def, "type"));
    size_t tl = strlen(type);
    if (strncmp(file, type, tl) != 0 || strcmp(file + tl, ".json") != 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "nodes/%s: declares type \"%s\"; the file must be nodes/%s.json", file,
                          type, type);
    const json_t *props = json_object_get(json_object_get(def, "params"), "properties");
    static const char *const dirs[] = {"inputs", "outputs"};
    for (int d = 0; d < 2; d++) {
        const char *port;
        json_t *spec;
        json_object_foreach((json_t *)json_object_get(def, dirs[d]), port, spec)
        {
            if (!port_name_ok(port))
                return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                                  "nodes/%s: %s: port name \"%s\" must match [a-z][a-z0-9_]{0,63}",
                                  file, dirs[d], port);
            const char *from = json_string_value(json_object_get(spec, "type_from_param"));
            if (!from)
                continue;
            const json_t *en = json_object_get(json_object_get(props, from), "enum");
            bool ok = json_is_array(en) && json_array_size(en) > 0;
            size_t i;
            json_t *v;
            json_array_foreach(en, i, v) if (!json_is_string(v) ||
                                             !in_array(port_types, json_string_value(v))) ok =
                false;
            if (!ok)
                return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                                  "nodes/%s: outputs.%s: type_from_param \"%s\" must name a param "
                                  "whose enum holds only port types",
                                  file, port, from);
        }
    }
    const char *unit = json_string_value(
        json_object_get(json_object_get(json_object_get(def, "credits"), "per_unit"), "param"));
    if (unit && !json_object_get(props, unit))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "nodes/%s: credits.per_unit.param \"%s\" is not a param", file, unit);
    return 0;
}

/* Loads, checks and compiles one node file into *out. */
static int load_type(const char *dir, const char *file, const jsonschema_t *node_schema,
                     const json_t *port_types, workflow__type_t *out, char *errbuf, size_t errlen)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/nodes/%s", dir, file) >= sizeof path)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "nodes/%s: path too long", file);
    json_error_t je;
    json_t *def = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!def)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "nodes/%s: line %d: %s", file, je.line,
                          je.text);
    json_t *problems = NULL;
    int rc = jsonschema_validate(node_schema, def, &problems);
    if (rc == FENTA_ENOMEM || (rc && !problems)) {
        json_decref(def);
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "nodes/%s: out of memory", file);
    }
    if (rc) {
        char prefix[NAME_MAX + 32];
        snprintf(prefix, sizeof prefix, "nodes/%s: ", file);
        jsonschema_describe(problems, prefix, errbuf, errlen);
        json_decref(problems);
        json_decref(def);
        return FENTA_EINVAL;
    }
    rc = check_def(file, def, port_types, errbuf, errlen);
    if (rc) {
        json_decref(def);
        return rc;
    }
    char err[512];
    jsonschema_t *params = jsonschema_compile(json_object_get(def, "params"), err, sizeof err);
    if (!params) {
        json_decref(def);
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "nodes/%s: params: %s", file, err);
    }
    *out = (workflow__type_t){
        .name = json_string_value(json_object_get(def, "type")), .def = def, .params = params};
    return 0;
}

static int is_node_file(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 5 && strcmp(e->d_name + n - 5, ".json") == 0 &&
           strcmp(e->d_name, NODE_TYPE_FILE) != 0;
}

static size_t max_items(const json_t *doc, const char *member)
{
    json_int_t m = json_integer_value(
        json_object_get(json_object_get(json_object_get(doc, "properties"), member), "maxItems"));
    return m > 0 ? (size_t)m : 1000;
}

/* The workflow document schema, and its limits the graph pass relies on. */
static int load_doc_schema(const char *dir, workflow_types_t *t, char *errbuf, size_t errlen)
{
    char path[PATH_MAX], err[512];
    snprintf(path, sizeof path, "%s/workflow.json", dir);
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return fenta_fail(errbuf, errlen, FENTA_EIO, "workflow.json: %s", je.text);
    t->doc_schema = jsonschema_compile(doc, err, sizeof err);
    t->max_nodes = max_items(doc, "nodes");
    t->max_edges = max_items(doc, "edges");
    json_decref(doc);
    if (!t->doc_schema)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "workflow.json: %s", err);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const workflow__type_t *)a)->name, ((const workflow__type_t *)b)->name);
}

workflow_types_t *workflow_types_load(const char *schemas_dir, char *errbuf, size_t errlen)
{
    const char *dir = fsutil_schemas_dir(schemas_dir);
    char path[PATH_MAX], err[512];
    snprintf(path, sizeof path, "%s/nodes/%s", dir, NODE_TYPE_FILE);
    json_error_t je;
    json_t *meta = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!meta) {
        fenta_fail(errbuf, errlen, FENTA_EIO, "nodes/%s: %s", NODE_TYPE_FILE, je.text);
        return NULL;
    }
    jsonschema_t *node_schema = jsonschema_compile(meta, err, sizeof err);
    /* The port types are declared once, in the node-type schema. */
    const json_t *port_types =
        json_object_get(json_object_get(json_object_get(meta, "$defs"), "port_type"), "enum");
    workflow_types_t *t = calloc(1, sizeof *t);
    struct dirent **names = NULL;
    int nn = -1;
    if (!node_schema) {
        fenta_fail(errbuf, errlen, FENTA_EINVAL, "nodes/%s: %s", NODE_TYPE_FILE, err);
        goto fail;
    }
    if (!t) {
        fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        goto fail;
    }
    if (load_doc_schema(dir, t, errbuf, errlen))
        goto fail;
    snprintf(path, sizeof path, "%s/nodes", dir);
    nn = scandir(path, &names, is_node_file, alphasort);
    if (nn < 0) {
        fenta_fail(errbuf, errlen, FENTA_EIO, "%s: cannot list the node types", path);
        goto fail;
    }
    t->v = calloc(nn ? (size_t)nn : 1, sizeof *t->v);
    if (!t->v) {
        fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < nn; i++) {
        if (load_type(dir, names[i]->d_name, node_schema, port_types, &t->v[t->n], errbuf, errlen))
            goto fail;
        t->n++;
    }
    /* Files are named after their types, so names are unique already. */
    qsort(t->v, t->n, sizeof *t->v, by_name);
    for (int i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    jsonschema_free(&node_schema);
    json_decref(meta);
    return t;
fail:
    for (int i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    jsonschema_free(&node_schema);
    json_decref(meta);
    workflow_types_free(&t);
    return NULL;
}

void workflow_types_free(workflow_types_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    workflow_types_t *t = *self_p;
    for (size_t i = 0; i < t->n; i++) {
        jsonschema_free(&t->v[i].params);
        json_decref(t->v[i].def);
    }
    free(t->v);
    jsonschema_free(&t->doc_schema);
    free(t);
    *self_p = NULL;
}

const workflow__type_t *workflow__type_find(const workflow_types_t *t, const char *name)
{
    if (!t || !name)
        return NULL;
    workflow__type_t key = {.name = name};
    return bsearch(&key, t->v, t->n, sizeof *t->v, by_name);
}

const json_t *workflow_type_get(const workflow_types_t *t, const char *name)
{
    const workflow__type_t *ty = workflow__type_find(t, name);
    return ty ? ty->def : NULL;
}

json_t *workflow_types_list(const workflow_types_t *t)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < t->n; i++)
        if (json_array_append(arr, t->v[i].def)) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}

const char *workflow__port_type(const workflow__type_t *ty, const char *dir, const char *port,
                                const json_t *params)
{
    const json_t *spec = json_object_get(json_object_get(ty->def, dir), port);
    if (!spec)
        return NULL;
    const char *from = json_string_value(json_object_get(spec, "type_from_param"));
    const char *v = from ? json_string_value(json_object_get(params, from)) : NULL;
    /* The param's enum was checked at load to hold only port types; a value
     * outside it is an invalid_param already, so the declared type stands. */
    const json_t *props = json_object_get(json_object_get(ty->def, "params"), "properties");
    if (v && in_array(json_object_get(json_object_get(props, from), "enum"), v))
        return v;
    return json_string_value(json_object_get(spec, "type"));
}
