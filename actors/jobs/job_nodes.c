/* job_nodes.c - the work of the nodes that run outside renders: inputs,
 * scripts and the offline stock search. Each is pure or reads the object
 * store only, so running one again after a crash changes nothing. */
#include "actors/jobs/job_internal.h"
#include "actors/text/script_gen.h"
#include "runtime/error.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef int (*node_fn)(const job_node_args_t *a, json_t *out, char *errbuf, size_t errlen);

static const char *param_str(const job_node_args_t *a, const char *name, const char *dflt)
{
    const char *s = json_string_value(json_object_get(a->params, name));
    return s ? s : dflt;
}

static double param_num(const job_node_args_t *a, const char *name, double dflt)
{
    json_t *v = json_object_get(a->params, name);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static int run_input_text(const job_node_args_t *a, json_t *out, char *errbuf, size_t errlen)
{
    const char *t = param_str(a, "text", NULL);
    if (!t || !*t)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "params.text is empty");
    json_object_set_new(out, "text", json_string(t));
    return 0;
}

/* Every key must name a file of the organisation's (render_key_resolve:
 * another's key is answered like a missing one): a missing upload fails the
 * node (a retry after the upload resumes here). */
static int run_input_asset(const job_node_args_t *a, json_t *out, char *errbuf, size_t errlen)
{
    json_t *list = json_array();
    job_tenant_t jt;
    job__tenant(&jt, a->e, NULL, a->org_id);
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(a->params, "keys"), i, k)
    {
        const char *key = json_string_value(k);
        char path[4096], why[1400];
        struct stat sb;
        int rc =
            render_key_resolve(&jt.t, a->e->objects_dir, key, path, sizeof path, why, sizeof why);
        if (rc == 0 && stat(path, &sb) != 0)
            rc = FENTA_ENOTFOUND; /* removed meanwhile */
        if (rc) {
            json_decref(list);
            if (rc != FENTA_ENOTFOUND && rc != FENTA_EINVAL)
                return fenta_fail(errbuf, errlen, rc, "%s", why); /* passing: retried */
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "object '%s' does not exist (upload it, then retry the job)",
                              key ? key : "");
        }
        json_array_append_new(list,
                              json_pack("{ss sI}", "key", key, "bytes", (json_int_t)sb.st_size));
    }
    json_object_set_new(out, "asset", list);
    return 0;
}

static int run_script_generate(const job_node_args_t *a, json_t *out, char *errbuf, size_t errlen)
{
    char *text = NULL;
    int rc = script_gen_generate(param_str(a, "topic", ""), param_str(a, "genre", "facts"),
                                 param_num(a, "duration_s", 30), &text, errbuf, errlen);
    if (rc == 0)
        json_object_set_new(out, "text", json_string(text));
    free(text);
    return rc;
}

static int run_script_transform(const job_node_args_t *a, json_t *out, char *errbuf, size_t errlen)
{
    const char *in = json_string_value(json_object_get(a->inputs, "text"));
    if (!in)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "input 'text' is missing");
    char *text = NULL;
    int rc = script_gen_transform(in, param_str(a, "op", ""), (int)param_num(a, "max_words", 150),
                                  &text, errbuf, errlen);
    if (rc == 0)
        json_object_set_new(out, "text", json_string(text));
    free(text);
    return rc;
}

static bool has_ext(const char *name, const char *const *exts)
{
    const char *dot = strrchr(name, '.');
    for (; dot && *exts; exts++)
        if (strcasecmp(dot + 1, *exts) == 0)
            return true;
    return false;
}

/* Offline stock search: the organisation's own uploads (objects under
 * uploads/<org id>/) whose names share a word with the query, in name
 * order; none found means the montage draws procedural backgrounds. */
static int run_stock_search(const job_node_args_t *a, json_t *out, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    static const char *const video[] = {"mp4", "mov", "webm", "mkv", NULL};
    static const char *const photo[] = {"jpg", "jpeg", "png", "webp", NULL};
    const char *kind = param_str(a, "kind", "any");
    int count = (int)param_num(a, "count", 5);
    char dir[4096], query[256];
    snprintf(dir, sizeof dir, "%s/uploads/%s", a->e->objects_dir, a->org_id);
    snprintf(query, sizeof query, "%s", param_str(a, "query", ""));
    for (char *c = query; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    json_t *found = json_array();
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        bool is_video = has_ext(name, video), is_photo = has_ext(name, photo);
        bool kind_ok = strcmp(kind, "video") == 0   ? is_video
                       : strcmp(kind, "photo") == 0 ? is_photo
                                                    : is_video || is_photo;
        char lower[256];
        snprintf(lower, sizeof lower, "%s", name);
        for (char *c = lower; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        bool match = false;
        char words[256];
        snprintf(words, sizeof words, "%s", query);
        char *save = NULL;
        for (char *w = strtok_r(words, " \t,.;", &save); w && !match;
             w = strtok_r(NULL, " \t,.;", &save))
            match = strlen(w) >= 3 && strstr(lower, w) != NULL;
        if (name[0] != '.' && kind_ok && match && (int)json_array_size(found) < count) {
            char key[1024];
            snprintf(key, sizeof key, "uploads/%s/%s", a->org_id, name);
            json_array_append_new(found, json_pack("{ss}", "key", key));
        }
        free(names[i]);
    }
    free(names);
    json_object_set_new(out, "media", found);
    return 0;
}

/* Node types -> their work. A type with render_stages is done by a render
 * and never reaches this table. */
static const struct {
    const char *type;
    node_fn run;
} NODES[] = {
    {"input.text", run_input_text},           {"input.asset", run_input_asset},
    {"script.generate", run_script_generate}, {"script.transform", run_script_transform},
    {"stock.search", run_stock_search},
};

int job__run_node(const job_node_args_t *a, json_t **outputs, char *errbuf, size_t errlen)
{
    *outputs = NULL;
    for (size_t i = 0; i < sizeof NODES / sizeof NODES[0]; i++) {
        if (strcmp(NODES[i].type, a->type) != 0)
            continue;
        json_t *out = json_object();
        if (!out)
            return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        int rc = NODES[i].run(a, out, errbuf, errlen);
        if (rc) {
            json_decref(out);
            return rc;
        }
        *outputs = out;
        return 0;
    }
    return fenta_fail(errbuf, errlen, FENTA_EINVAL, "node type '%s' cannot run here", a->type);
}
