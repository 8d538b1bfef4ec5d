/* render_spec.h - a render spec and its montage template, checked and
 * resolved into plain C values before any stage runs.
 *
 * A spec names what is said (script and/or voice recording), what is shown
 * (clips and stills), the music, the template and the output profile
 * (schemas/render/spec.json). A template is a built-in name
 * (schemas/templates/NAME.json) or an inline object; either is merged member
 * by member over the built-in "clean" template, so a user names only what
 * they change, and the merged whole is validated against
 * schemas/render/template.json, where every member is required: the C code
 * below holds no defaults of its own.
 *
 * Sources are local paths (relative to the spec's folder) or object-store
 * keys (under the objects folder); both are resolved to absolute paths here,
 * and a key that tries to leave the store is refused. Pixel sizes are scaled
 * from the template's canvas to the profile's output size.
 *
 * Tenancy: a spec an organisation wrote (through the API, a workflow, a
 * template or a schedule) is parsed with a render_tenant_t. It then names
 * no paths (the server's files are not the tenant's) and only keys of the
 * tenant's own namespace: its uploads (uploads/<org id>/...) and its own
 * jobs' outputs (jobs/<job id>/...). Any other key gets the answer of a key
 * naming nothing, from one function (render_key_resolve), so no tenant can
 * learn whether another's object exists. Only `fenta render` on the command
 * line parses without a tenant. */
#ifndef FENTA_RENDER_SPEC_H
#define FENTA_RENDER_SPEC_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct render_media {
    char *path;     /* absolute path; owned */
    double start_s; /* where in a video clip to start */
} render_media_t;

typedef enum { RENDER_MUSIC_NONE, RENDER_MUSIC_GENERATED, RENDER_MUSIC_FILE } render_music_t;

typedef struct render_caption_style {
    char font[101];
    int size; /* px at the output size */
    bool bold;
    uint32_t primary, highlight, outline; /* 0xRRGGBBAA */
    int outline_width, shadow;            /* px at the output size */
    char position[8];                     /* "bottom", "center", "top" */
    int max_words, max_chars;
    int64_t min_display_ms;
    bool uppercase;
    char effect[12]; /* "karaoke", "highlight", "pop", "none" */
} render_caption_style_t;

typedef struct render_template {
    char name[81];
    int canvas_w, canvas_h, fps;                      /* the design canvas */
    int safe_top, safe_bottom, safe_left, safe_right; /* px at the output size */
    render_caption_style_t captions;
    struct {
        double min_s, max_s;
        bool ken_burns;
        double ken_burns_zoom;
        char transition[16]; /* an xfade transition name, or "none" */
        double transition_s;
    } clips;
    struct {
        char style[12];     /* "gradient", "plasma", "solid" */
        uint32_t colors[6]; /* 0xRRGGBBAA */
        int ncolors;
    } background;
    struct {
        double voice_db, music_db, duck_db, duck_attack_ms, duck_release_ms, music_fade_s;
        double loudness_lufs, true_peak_db;
    } audio;
    struct {
        char *logo_path; /* absolute; NULL = no logo; owned */
        char logo_position[16];
        double logo_opacity;
        int logo_width; /* px at the output size */
        int title_size; /* px at the output size */
        double title_duration_s;
        uint32_t title_color;
    } overlays;
} render_template_t;

typedef struct render_spec {
    char *script;       /* NULL when the voice recording is to be transcribed; owned */
    char *voice_path;   /* a voice recording, absolute; NULL = synthesise; owned */
    char tts_voice[65]; /* "" = the engine's default */
    double tts_speed;   /* 1.0 when not given */
    render_media_t *media;
    size_t nmedia;
    render_music_t music;
    char *music_path; /* absolute, for RENDER_MUSIC_FILE; owned */
    char *title;      /* NULL = none; owned */
    uint32_t seed;
    char profile[8];        /* "720p" or "1080p" */
    int width, height, fps; /* output */
    int crf, audio_kbps;
    char preset[12];
    render_template_t tpl;
    json_t *resolved; /* the whole spec with the merged template and absolute paths; owned */
} render_spec_t;

/* Whose objects a tenant's spec may name. */
typedef struct render_tenant {
    const char *org_id; /* the organisation: its uploads are uploads/<org_id>/... */
    /* Whether job_id is one of org_id's jobs (whose outputs are under
     * jobs/<job id>/): 1 yes, 0 no (or no such job), or a negative FENTA_E*
     * when it cannot be told now (a retry may). NULL = no job's outputs. */
    int (*owns_job)(void *arg, const char *org_id, const char *job_id);
    void *arg; /* for owns_job */
} render_tenant_t;

typedef struct render_spec_opts {
    const char *base_dir;    /* relative paths resolve here; NULL = the current directory */
    const char *objects_dir; /* object-store keys resolve here; NULL = keys are refused */
    /* A tenant's spec: paths are refused and every key must be an existing
     * object of the tenant's (render_key_resolve); NULL = trusted (the CLI). */
    const render_tenant_t *tenant;
    const char *schemas_dir; /* holds render/ and templates/; NULL = the source tree's */
} render_spec_opts_t;

/* Checks and resolves spec (borrowed) into *out. Returns 0; or FENTA_EINVAL
 * with errbuf saying what is wrong and where ("$.media[2].source: give
 * either path or key, not both", "template 'neon' does not exist", the
 * schema's own problems joined by "; "); FENTA_ENOMEM. With o->tenant, also
 * FENTA_ENOTFOUND ("$.media[0].source: object 'KEY' does not exist") for a
 * key that is not one of the tenant's existing objects, or the error of
 * its owns_job. Files are not opened here (the ingest stage probes them;
 * with a tenant they are only looked up). On failure *out owns nothing. */
int render_spec_parse(const json_t *spec, const render_spec_opts_t *o, render_spec_t *out,
                      char *errbuf, size_t errlen);

/* Reads a JSON file and parses it with base_dir = the file's folder (when
 * o->base_dir is NULL). */
int render_spec_load(const char *path, const render_spec_opts_t *o, render_spec_t *out,
                     char *errbuf, size_t errlen);

/* Loads a built-in template merged over "clean" as JSON (a new reference),
 * or NULL with errbuf. For the API's template listing and for tests. */
json_t *render_template_builtin(const char *name, const char *schemas_dir, char *errbuf,
                                size_t errlen);

/* A template object (borrowed) merged over "clean" and validated: the whole
 * template (a new reference), or NULL with errbuf saying what is wrong
 * ("invalid template: $.captions.size: ..."). For the API's template store. */
json_t *render_template_merge(const json_t *overlay, const char *schemas_dir, char *errbuf,
                              size_t errlen);

/* Whether key is a well-formed object-store key: parts of [A-Za-z0-9_.-]
 * joined by single '/', none empty, "." or ".." (so no leading or trailing
 * '/', no '\\' and no NUL); len is the key's length in bytes, which must
 * be strlen(key) (a NUL inside is refused). */
bool render_key_valid(const char *key, size_t len);

/* Resolves key for tenant t in the store at objects_dir: 0 with the file's
 * absolute path in path[cap]. FENTA_ENOTFOUND with errbuf "object 'KEY'
 * does not exist" when key is not a regular file of t's own namespace: a
 * key of another organisation (or of a job that is not t's) gets exactly
 * the answer of a key naming nothing, and is never looked up, so existence
 * leaks nothing. FENTA_EINVAL for a malformed key (render_key_valid), or
 * the negative error of t->owns_job. */
int render_key_resolve(const render_tenant_t *t, const char *objects_dir, const char *key,
                       char *path, size_t cap, char *errbuf, size_t errlen);

/* The problems of a document a client wrote (a render spec, a template, a
 * workflow graph, run or schedule inputs): every server path (a "path"
 * member holding a string, such as {"source": {"path": ...}}) and every
 * malformed key (a "key" string or an item of a "keys" array that fails
 * render_key_valid). Returns 0 when there are none; else FENTA_EINVAL with
 * *problems a new array of {"path": ROOT + the JSON path ("$.spec.media[0]
 * .source.path"), "keyword": "path" or "key", "message"} in document
 * order; FENTA_ENOMEM. root is the document's own JSON path ("$.spec"). */
int render_sources_check(const json_t *doc, const char *root, json_t **problems);

/* Frees what *s owns and zeroes it; a zeroed struct is a no-op. */
void render_spec_free(render_spec_t *s);

#endif
