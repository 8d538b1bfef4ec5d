/* render_spec.c - render specs and templates: validate, merge, resolve.
 * See render_spec.h. */
#include "actors/render/render_spec.h"
#include "json/jsonschema.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *schemas_dir(const render_spec_opts_t *o)
{
    return fsutil_schemas_dir(o ? o->schemas_dir : NULL);
}

/* Validates instance against schemas/render/NAME.json; problems are joined
 * into errbuf as "$.path: message; ...". */
static int validate(const char *dir, const char *name, const json_t *instance, const char *what,
                    char *errbuf, size_t errlen)
{
    char path[PATH_MAX], err[256];
    snprintf(path, sizeof path, "%s/render/%s.json", dir, name);
    jsonschema_t *schema = jsonschema_load_file(path, err, sizeof err);
    if (!schema)
        return fenta_fail(errbuf, errlen, FENTA_EIO, "schema %s: %s", path, err);
    json_t *problems = NULL;
    int rc = jsonschema_validate(schema, instance, &problems);
    jsonschema_free(&schema);
    if (rc == 0)
        return 0;
    if (rc == FENTA_ENOMEM || !problems)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory validating the %s", what);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "invalid %s: ", what);
    jsonschema_describe(problems, prefix, errbuf, errlen);
    json_decref(problems);
    return FENTA_EINVAL;
}

static json_t *load_template_file(const char *dir, const char *name, char *errbuf, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/templates/%s.json", dir, name);
    json_error_t je;
    json_t *t = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!t) {
        if (strstr(je.text, "unable to open"))
            fenta_fail(errbuf, errlen, FENTA_EINVAL, "template '%s' does not exist", name);
        else
            fenta_fail(errbuf, errlen, FENTA_EINVAL, "template '%s': %s (line %d)", name, je.text,
                       je.line);
    }
    return t;
}

/* The "clean" base with overlay merged over it, member by member. */
static json_t *merged_template(const char *dir, const json_t *overlay, char *errbuf, size_t errlen)
{
    json_t *base = load_template_file(dir, "clean", errbuf, errlen);
    if (!base)
        return NULL;
    if (overlay && json_object_update_recursive(base, (json_t *)overlay) != 0) {
        json_decref(base);
        fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory merging the template");
        return NULL;
    }
    return base;
}

json_t *render_template_merge(const json_t *overlay, const char *dir, char *errbuf, size_t errlen)
{
    render_spec_opts_t o = {.schemas_dir = dir};
    dir = schemas_dir(&o);
    json_t *t = merged_template(dir, overlay, errbuf, errlen);
    if (t && validate(dir, "template", t, "template", errbuf, errlen) != 0) {
        json_decref(t);
        return NULL;
    }
    return t;
}

json_t *render_template_builtin(const char *name, const char *dir, char *errbuf, size_t errlen)
{
    render_spec_opts_t o = {.schemas_dir = dir};
    dir = schemas_dir(&o);
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-')) {
            fenta_fail(errbuf, errlen, FENTA_EINVAL, "template '%s' does not exist", name);
            return NULL;
        }
    json_t *own = load_template_file(dir, name, errbuf, errlen);
    if (!own)
        return NULL;
    json_t *t = merged_template(dir, own, errbuf, errlen);
    json_decref(own);
    if (t && validate(dir, "template", t, "template", errbuf, errlen) != 0) {
        json_decref(t);
        return NULL;
    }
    return t;
}

/* ---- value readers (the schema has already checked types and ranges) ---- */

static double num(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static int integer(const json_t *o, const char *k)
{
    return (int)json_number_value(json_object_get(o, k));
}

static void str(char *dst, size_t cap, const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    snprintf(dst, cap, "%s", v ? v : "");
}

static uint32_t colour(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    if (!v || v[0] != '#')
        return 0xffffffffu;
    unsigned long x = strtoul(v + 1, NULL, 16);
    return strlen(v) == 7 ? (uint32_t)(x << 8 | 0xff) : (uint32_t)x;
}

/* ---- keys and tenancy ---- */

bool render_key_valid(const char *key, size_t len)
{
    if (!key || len == 0 || strlen(key) != len)
        return false;
    const char *part = key;
    for (size_t i = 0; i <= len; i++) {
        char c = key[i];
        if (c == '/' || c == '\0') {
            size_t n = (size_t)(key + i - part);
            if (n == 0 || (n == 1 && part[0] == '.') ||
                (n == 2 && part[0] == '.' && part[1] == '.'))
                return false;
            part = key + i + 1;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* Whether key lies in t's own namespace, decided from the key's first two
 * parts alone: 1, 0, or owns_job's error. */
static int tenant_owns(const render_tenant_t *t, const char *key)
{
    const char *s1 = strchr(key, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    char owner[128];
    size_t n = s2 ? (size_t)(s2 - s1 - 1) : 0;
    if (!t || !t->org_id || !s2 || n >= sizeof owner)
        return 0;
    memcpy(owner, s1 + 1, n);
    owner[n] = '\0';
    if (s1 - key == 7 && strncmp(key, "uploads", 7) == 0)
        return strcmp(owner, t->org_id) == 0;
    if (s1 - key == 4 && strncmp(key, "jobs", 4) == 0 && t->owns_job) {
        int rc = t->owns_job(t->arg, t->org_id, owner);
        return rc < 0 ? rc : rc == 1;
    }
    return 0;
}

int render_key_resolve(const render_tenant_t *t, const char *objects_dir, const char *key,
                       char *path, size_t cap, char *errbuf, size_t errlen)
{
    if (!key || !render_key_valid(key, strlen(key)))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "key '%s' must be folder/name: parts of [A-Za-z0-9_.-], none empty, "
                          "'.' or '..'",
                          key ? key : "");
    int own = tenant_owns(t, key);
    if (own < 0)
        return fenta_fail(errbuf, errlen, own, "cannot look up object '%s' now: %s", key,
                          fenta_strerror(own));
    /* Another's key is not even looked up: stat would tell whether it
     * exists (by time, if not by answer). lstat: the store never makes
     * links, and one found there is no tenant's file. */
    struct stat sb;
    if (!own || !objects_dir || (size_t)snprintf(path, cap, "%s/%s", objects_dir, key) >= cap ||
        lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return fenta_fail(errbuf, errlen, FENTA_ENOTFOUND, "object '%s' does not exist", key);
    return 0;
}

/* Appends member name (".name", or "['name']" when it is not a plain
 * identifier) or item i (name NULL) to the JSON path at[0..len); returns
 * the new length (at is cut, never overrun). */
static size_t path_push(char *at, size_t len, size_t cap, const char *name, size_t i)
{
    bool plain = name && *name;
    for (const char *c = name; plain && *c; c++)
        plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
                (c > name && *c >= '0' && *c <= '9');
    int n = !name   ? snprintf(at + len, cap - len, "[%zu]", i)
            : plain ? snprintf(at + len, cap - len, ".%s", name)
                    : snprintf(at + len, cap - len, "['%s']", name);
    len += n > 0 ? (size_t)n : 0;
    return len < cap ? len : cap - 1;
}

static int add_problem(json_t *problems, const char *at, const char *keyword, const char *message)
{
    return json_array_append_new(problems, json_pack("{ss ss ss}", "path", at, "keyword", keyword,
                                                     "message", message))
               ? FENTA_ENOMEM
               : 0;
}

static const char PATH_REFUSED[] = "sources must be object-store keys (\"key\"), not server paths";
static const char KEY_REFUSED[] =
    "a key is folder/name: parts of [A-Za-z0-9_.-], none empty, '.' or '..'";

static int sources_walk(const json_t *v, char *at, size_t len, size_t cap, json_t *problems)
{
    int rc = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            size_t n = path_push(at, len, cap, k, 0);
            if (strcmp(k, "path") == 0 && json_is_string(x))
                rc = add_problem(problems, at, "path", PATH_REFUSED);
            else if (strcmp(k, "key") == 0 && json_is_string(x) &&
                     !render_key_valid(json_string_value(x), json_string_length(x)))
                rc = add_problem(problems, at, "key", KEY_REFUSED);
            else if (strcmp(k, "keys") == 0 && json_is_array(x)) {
                size_t i;
                json_t *item;
                json_array_foreach(x, i, item)
                {
                    path_push(at, n, cap, NULL, i);
                    if (json_is_string(item) &&
                        !render_key_valid(json_string_value(item), json_string_length(item)) &&
                        (rc = add_problem(problems, at, "key", KEY_REFUSED)))
                        break;
                    at[n] = '\0';
                }
            } else {
                rc = sources_walk(x, at, n, cap, problems);
            }
            at[len] = '\0';
            if (rc)
                return rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            size_t n = path_push(at, len, cap, NULL, i);
            rc = sources_walk(x, at, n, cap, problems);
            at[len] = '\0';
            if (rc)
                return rc;
        }
    }
    return 0;
}

int render_sources_check(const json_t *doc, const char *root, json_t **problems)
{
    *problems = json_array();
    char at[1024];
    snprintf(at, sizeof at, "%s", root ? root : "$");
    int rc = *problems ? sources_walk(doc, at, strlen(at), sizeof at, *problems) : FENTA_ENOMEM;
    if (rc == 0 && json_array_size(*problems) == 0) {
        json_decref(*problems);
        *problems = NULL;
        return 0;
    }
    if (rc) {
        json_decref(*problems);
        *problems = NULL;
        return rc;
    }
    return FENTA_EINVAL;
}

/* Resolves a {"path"} or {"key"} source to an absolute path (malloc'd) and
 * writes it back into the object as "resolved". */
static int resolve_source(json_t *src, const char *where, const render_spec_opts_t *o, char **out,
                          char *errbuf, size_t errlen)
{
    const char *path = json_string_value(json_object_get(src, "path"));
    const char *key = json_string_value(json_object_get(src, "key"));
    if ((path != NULL) == (key != NULL))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%s: give either \"path\" or \"key\", %s",
                          where, path ? "not both" : "one of them");
    char buf[PATH_MAX];
    if (o && o->tenant) {
        int rc = 0;
        char why[1400];
        if (path)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%s.path: %s", where, PATH_REFUSED);
        if ((rc = render_key_resolve(o->tenant, o->objects_dir, key, buf, sizeof buf, why,
                                     sizeof why)))
            return fenta_fail(errbuf, errlen, rc, "%s: %s", where, why);
    } else if (key) {
        if (!o || !o->objects_dir)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "%s: object-store keys need an object store (key '%s')", where, key);
        if (!render_key_valid(key, strlen(key)))
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%s.key: %s", where, KEY_REFUSED);
        if ((size_t)snprintf(buf, sizeof buf, "%s/%s", o->objects_dir, key) >= sizeof buf)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%s: key too long", where);
    } else if (path[0] == '/') {
        snprintf(buf, sizeof buf, "%s", path);
    } else {
        char cwd[PATH_MAX];
        const char *base = o && o->base_dir ? o->base_dir : getcwd(cwd, sizeof cwd);
        if (!base || (size_t)snprintf(buf, sizeof buf, "%s/%s", base, path) >= sizeof buf)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%s: path too long", where);
    }
    *out = strdup(buf);
    if (!*out || json_object_set_new(src, "resolved", json_string(buf)) != 0)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    return 0;
}

/* Scales a canvas pixel size to the output height. */
static int px(double v, double scale)
{
    return (int)lround(v * scale);
}

static int read_template(json_t *t, render_spec_t *s, const render_spec_opts_t *o, char *errbuf,
                         size_t errlen)
{
    render_template_t *p = &s->tpl;
    str(p->name, sizeof p->name, t, "name");
    json_t *canvas = json_object_get(t, "canvas");
    p->canvas_w = integer(canvas, "width");
    p->canvas_h = integer(canvas, "height");
    p->fps = integer(canvas, "fps");
    if ((p->canvas_w == 1080) != (p->canvas_h == 1920))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "template canvas must be 1080x1920 or 720x1280, not %dx%d", p->canvas_w,
                          p->canvas_h);
    double k = (double)s->height / p->canvas_h;
    json_t *safe = json_object_get(t, "safe_zone");
    p->safe_top = px(num(safe, "top"), k);
    p->safe_bottom = px(num(safe, "bottom"), k);
    p->safe_left = px(num(safe, "left"), k);
    p->safe_right = px(num(safe, "right"), k);

    json_t *c = json_object_get(t, "captions");
    render_caption_style_t *cs = &p->captions;
    str(cs->font, sizeof cs->font, c, "font");
    cs->size = px(num(c, "size"), k);
    cs->bold = json_is_true(json_object_get(c, "bold"));
    cs->primary = colour(c, "primary");
    cs->highlight = colour(c, "highlight");
    cs->outline = colour(c, "outline");
    cs->outline_width = px(num(c, "outline_width"), k);
    cs->shadow = px(num(c, "shadow"), k);
    str(cs->position, sizeof cs->position, c, "position");
    cs->max_words = integer(c, "max_words");
    cs->max_chars = integer(c, "max_chars");
    cs->min_display_ms = integer(c, "min_display_ms");
    cs->uppercase = json_is_true(json_object_get(c, "uppercase"));
    str(cs->effect, sizeof cs->effect, c, "effect");

    json_t *cl = json_object_get(t, "clips");
    p->clips.min_s = num(cl, "min_s");
    p->clips.max_s = num(cl, "max_s");
    if (p->clips.max_s < p->clips.min_s)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "template clips: max_s (%g) is shorter than min_s (%g)", p->clips.max_s,
                          p->clips.min_s);
    p->clips.ken_burns = json_is_true(json_object_get(cl, "ken_burns"));
    p->clips.ken_burns_zoom = num(cl, "ken_burns_zoom");
    str(p->clips.transition, sizeof p->clips.transition, cl, "transition");
    p->clips.transition_s = num(cl, "transition_s");
    if (p->clips.transition_s > p->clips.min_s / 2)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "template clips: transition_s (%g) must be at most half of min_s (%g)",
                          p->clips.transition_s, p->clips.min_s);

    json_t *bg = json_object_get(t, "background");
    str(p->background.style, sizeof p->background.style, bg, "style");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(bg, "colors"), i, v)
    {
        if (i >= 6)
            break;
        json_t *holder = json_pack("{sO}", "c", v);
        p->background.colors[i] = colour(holder, "c");
        json_decref(holder);
        p->background.ncolors = (int)i + 1;
    }

    json_t *a = json_object_get(t, "audio");
    p->audio.voice_db = num(a, "voice_db");
    p->audio.music_db = num(a, "music_db");
    p->audio.duck_db = num(a, "duck_db");
    p->audio.duck_attack_ms = num(a, "duck_attack_ms");
    p->audio.duck_release_ms = num(a, "duck_release_ms");
    p->audio.music_fade_s = num(a, "music_fade_s");
    p->audio.loudness_lufs = num(a, "loudness_lufs");
    p->audio.true_peak_db = num(a, "true_peak_db");

    json_t *ov = json_object_get(t, "overlays");
    json_t *logo = json_object_get(ov, "logo");
    if (json_is_object(logo)) {
        int rc = resolve_source(json_object_get(logo, "source"), "$.template.overlays.logo.source",
                                o, &p->overlays.logo_path, errbuf, errlen);
        if (rc)
            return rc;
        str(p->overlays.logo_position, sizeof p->overlays.logo_position, logo, "position");
        p->overlays.logo_opacity = num(logo, "opacity");
        p->overlays.logo_width = px(num(logo, "width"), k);
    }
    json_t *title = json_object_get(ov, "title");
    p->overlays.title_size = px(num(title, "size"), k);
    p->overlays.title_duration_s = num(title, "duration_s");
    p->overlays.title_color = colour(title, "color");

    json_t *prof = json_object_get(json_object_get(t, "profiles"), s->profile);
    s->crf = integer(prof, "crf");
    s->audio_kbps = integer(prof, "audio_kbps");
    str(s->preset, sizeof s->preset, prof, "preset");
    s->fps = p->fps;
    return 0;
}

/* FNV-1a of the script, so the same spec renders the same background. */
static uint32_t seed_of(const char *s)
{
    uint32_t h = 2166136261u;
    for (; s && *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

int render_spec_parse(const json_t *spec, const render_spec_opts_t *o, render_spec_t *out,
                      char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *dir = schemas_dir(o);
    int rc = validate(dir, "spec", spec, "render spec", errbuf, errlen);
    if (rc)
        return rc;
    json_t *r = json_deep_copy(spec);
    if (!r)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    out->resolved = r;

    json_t *voice = json_object_get(r, "voice");
    const char *script = json_string_value(json_object_get(r, "script"));
    if (!script && !voice) {
        rc = fenta_fail(errbuf, errlen, FENTA_EINVAL,
                        "$: give a \"script\", a \"voice\" recording, or both");
        goto out;
    }
    if (script && !(out->script = strdup(script)))
        goto oom;
    if (voice && (rc = resolve_source(json_object_get(voice, "source"), "$.voice.source", o,
                                      &out->voice_path, errbuf, errlen)))
        goto out;
    json_t *tts = json_object_get(r, "tts");
    str(out->tts_voice, sizeof out->tts_voice, tts, "voice");
    out->tts_speed = json_is_number(json_object_get(tts, "speed")) ? num(tts, "speed") : 1.0;

    json_t *media = json_object_get(r, "media");
    if (json_array_size(media) > 0) {
        out->media = calloc(json_array_size(media), sizeof *out->media);
        if (!out->media)
            goto oom;
        out->nmedia = json_array_size(media); /* zeroed entries free as no-ops */
        size_t i;
        json_t *m;
        json_array_foreach(media, i, m)
        {
            char where[48];
            snprintf(where, sizeof where, "$.media[%zu].source", i);
            if ((rc = resolve_source(json_object_get(m, "source"), where, o, &out->media[i].path,
                                     errbuf, errlen)))
                goto out;
            out->media[i].start_s = num(m, "start_s");
        }
    }

    json_t *music = json_object_get(r, "music");
    if (!music || json_is_string(music)) {
        out->music = RENDER_MUSIC_GENERATED;
    } else if (json_is_null(music)) {
        out->music = RENDER_MUSIC_NONE;
    } else {
        out->music = RENDER_MUSIC_FILE;
        if ((rc = resolve_source(json_object_get(music, "source"), "$.music.source", o,
                                 &out->music_path, errbuf, errlen)))
            goto out;
    }

    const char *title = json_string_value(json_object_get(r, "title"));
    if (title && !(out->title = strdup(title)))
        goto oom;
    json_t *seed = json_object_get(r, "seed");
    out->seed = json_is_integer(seed) ? (uint32_t)json_integer_value(seed)
                                      : seed_of(script ? script : out->voice_path);

    const char *profile = json_string_value(json_object_get(r, "profile"));
    snprintf(out->profile, sizeof out->profile, "%s", profile ? profile : "1080p");
    bool hd = strcmp(out->profile, "1080p") == 0;
    out->width = hd ? 1080 : 720;
    out->height = hd ? 1920 : 1280;

    json_t *tspec = json_object_get(r, "template");
    json_t *tpl = NULL;
    if (json_is_object(tspec)) {
        tpl = merged_template(dir, tspec, errbuf, errlen);
        if (tpl && (rc = validate(dir, "template", tpl, "template", errbuf, errlen))) {
            json_decref(tpl);
            goto out;
        }
    } else {
        tpl = render_template_builtin(tspec ? json_string_value(tspec) : "clean", dir, errbuf,
                                      errlen);
    }
    if (!tpl) {
        rc = FENTA_EINVAL;
        goto out;
    }
    json_object_set_new(r, "template", tpl);
    if ((rc = read_template(tpl, out, o, errbuf, errlen)))
        goto out;
    json_object_set_new(r, "profile", json_string(out->profile));
    json_object_set_new(r, "seed", json_integer(out->seed));
    return 0;
oom:
    rc = fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
out:
    render_spec_free(out);
    return rc;
}

int render_spec_load(const char *path, const render_spec_opts_t *o, render_spec_t *out,
                     char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "render spec '%s': %s (line %d)", path,
                          je.text, je.line);
    render_spec_opts_t local = o ? *o : (render_spec_opts_t){0};
    char base[PATH_MAX];
    if (!local.base_dir) {
        char abs[PATH_MAX];
        if (!realpath(path, abs))
            snprintf(abs, sizeof abs, "%s", path);
        snprintf(base, sizeof base, "%s", abs);
        char *slash = strrchr(base, '/');
        if (slash)
            *slash = '\0';
        local.base_dir = base;
    }
    int rc = render_spec_parse(j, &local, out, errbuf, errlen);
    json_decref(j);
    return rc;
}

void render_spec_free(render_spec_t *s)
{
    if (!s)
        return;
    free(s->script);
    free(s->voice_path);
    for (size_t i = 0; i < s->nmedia; i++)
        free(s->media[i].path);
    free(s->media);
    free(s->music_path);
    free(s->title);
    free(s->tpl.overlays.logo_path);
    json_decref(s->resolved);
    memset(s, 0, sizeof *s);
}
