/* test_render_spec.c - render specs and montage templates: the built-in
 * templates are complete and distinct, a user's template names only what it
 * changes, sizes follow the output profile, sources resolve (and never
 * escape the object store), a tenant's spec names only its own objects and
 * no paths, and every mistake is named with its place. */
#include "actors/render/render_spec.h"
#include "runtime/error.h"
#include "tests/support/fixtures.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse(const char *text, render_spec_t *s, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    cr_assert_not_null(j, "%s: %s", text, je.text);
    render_spec_opts_t o = {.base_dir = "/base", .objects_dir = "/objects"};
    int rc = render_spec_parse(j, &o, s, err, errlen);
    json_decref(j);
    return rc;
}

static void refused(const char *text, const char *want)
{
    render_spec_t s;
    char err[1024] = "";
    cr_assert_eq(parse(text, &s, err, sizeof err), FENTA_EINVAL, "accepted: %s", text);
    cr_assert(strstr(err, want), "for %s expected '%s' in: %s", text, want, err);
}

Test(render_spec, the_built_in_templates_are_complete_and_distinct)
{
    const char *names[] = {"clean", "bold", "pop"};
    char effects[3][16];
    for (int i = 0; i < 3; i++) {
        char text[128], err[512];
        snprintf(text, sizeof text, "{\"script\": \"hi\", \"template\": \"%s\"}", names[i]);
        render_spec_t s;
        cr_assert_eq(parse(text, &s, err, sizeof err), 0, "%s: %s", names[i], err);
        cr_assert_str_eq(s.tpl.name, names[i]);
        cr_assert_eq(s.width, 1080);
        cr_assert_eq(s.height, 1920);
        snprintf(effects[i], sizeof effects[i], "%s", s.tpl.captions.effect);
        render_spec_free(&s);
        char err2[256];
        json_t *t = render_template_builtin(names[i], NULL, err2, sizeof err2);
        cr_assert_not_null(t, "%s", err2);
        json_decref(t);
    }
    cr_assert_str_neq(effects[0], effects[1]);
    cr_assert_str_neq(effects[1], effects[2]);
    cr_assert_str_neq(effects[0], effects[2]);
}

Test(render_spec, a_user_template_changes_only_what_it_names_and_sizes_follow_the_profile)
{
    render_spec_t s;
    char err[512];
    cr_assert_eq(parse("{\"script\": \"hi\", \"profile\": \"720p\", \"template\": "
                       "{\"captions\": {\"primary\": \"#FF000080\", \"size\": 90}}}",
                       &s, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(s.width, 720);
    cr_assert_eq(s.height, 1280);
    cr_assert_eq(s.tpl.captions.primary, 0xFF000080u);
    cr_assert_eq(s.tpl.captions.size, 60);                /* 90 at 1920 is 60 at 1280 */
    cr_assert_str_eq(s.tpl.captions.effect, "highlight"); /* from clean */
    cr_assert_str_eq(s.preset, "veryfast");
    cr_assert_eq(s.music, RENDER_MUSIC_GENERATED);
    cr_assert_float_eq(s.tts_speed, 1.0, 1e-9);
    render_spec_free(&s);
}

Test(render_spec, sources_resolve_against_the_spec_folder_and_the_object_store)
{
    render_spec_t s;
    char err[512];
    cr_assert_eq(parse("{\"voice\": {\"source\": {\"key\": \"u/1/voice.m4a\"}},"
                       " \"media\": [{\"source\": {\"path\": \"a.mp4\"}, \"start_s\": 2},"
                       " {\"source\": {\"path\": \"/abs/b.jpg\"}}], \"music\": null, \"seed\": 7}",
                       &s, err, sizeof err),
                 0, "%s", err);
    cr_assert_null(s.script);
    cr_assert_str_eq(s.voice_path, "/objects/u/1/voice.m4a");
    cr_assert_eq(s.nmedia, 2);
    cr_assert_str_eq(s.media[0].path, "/base/a.mp4");
    cr_assert_float_eq(s.media[0].start_s, 2.0, 1e-9);
    cr_assert_str_eq(s.media[1].path, "/abs/b.jpg");
    cr_assert_eq(s.music, RENDER_MUSIC_NONE);
    cr_assert_eq(s.seed, 7);
    render_spec_free(&s);
}

Test(render_spec, every_mistake_is_named_with_its_place)
{
    refused("{}", "give a \"script\", a \"voice\"");
    refused("{\"script\": \"\"}", "$.script");
    refused("{\"script\": \"hi\", \"colour\": 1}", "$.colour");
    refused("{\"script\": \"hi\", \"media\": [{\"source\": {\"path\": \"a\", \"key\": \"b\"}}]}",
            "$.media[0].source: give either \"path\" or \"key\", not both");
    refused("{\"script\": \"hi\", \"media\": [{\"source\": {}}]}", "one of them");
    refused("{\"script\": \"hi\", \"media\": [{\"source\": {\"key\": \"a/../../etc/passwd\"}}]}",
            "$.media[0].source.key: a key is folder/name");
    refused("{\"script\": \"hi\", \"template\": \"neon\"}", "template 'neon' does not exist");
    refused("{\"script\": \"hi\", \"template\": \"../clean\"}", "$.template");
    refused("{\"script\": \"hi\", \"template\": {\"captions\": {\"primary\": \"red\"}}}",
            "$.captions.primary");
    refused("{\"script\": \"hi\", \"template\": {\"clips\": {\"transition_s\": 1.5}}}",
            "transition_s");
    refused("{\"script\": \"hi\", \"template\": {\"clips\": {\"min_s\": 5, \"max_s\": 2}}}",
            "max_s");
    refused("{\"script\": \"hi\", \"profile\": \"4k\"}", "$.profile");
    refused("{\"script\": \"hi\", \"music\": \"loud\"}", "$.music");
}

Test(render_spec, keys_are_folder_and_name_and_nothing_else)
{
    const char *good[] = {"uploads/o/clip.mp4", "jobs/j/render/video.mp4", "a", "a/..b/c..d",
                          "x/.hidden"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert(render_key_valid(good[i], strlen(good[i])), "%s", good[i]);
    const char *bad[] = {"",      "/etc/passwd", "a/../b", "../a", "a/..",          "a//b",
                         "a/./b", "a/",          "a\\b",   "a b",  "uploads/%2e%2e"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(render_key_valid(bad[i], strlen(bad[i])), "%s", bad[i]);
    cr_assert_not(render_key_valid("a\0/../b", 7), "a NUL inside");
    cr_assert_not(render_key_valid(NULL, 0));
}

/* owns_job for the tests: the one job "j1" belongs to org "o1". */
static int owns(void *arg, const char *org, const char *job)
{
    (void)arg;
    if (strcmp(job, "down") == 0)
        return FENTA_EUNAVAILABLE;
    return strcmp(org, "o1") == 0 && strcmp(job, "j1") == 0;
}

Test(render_spec, a_tenant_names_its_own_objects_and_others_are_missing)
{
    char *dir = fx_tmpdir("keys");
    cr_assert_eq(fx_sh(dir, "mkdir -p uploads/o1 uploads/o2 jobs/j1/r jobs/j2/r && touch "
                            "uploads/o1/a.mp4 uploads/o2/a.mp4 jobs/j1/r/v.mp4 jobs/j2/r/v.mp4 "
                            "&& ln -s ../o2/a.mp4 uploads/o1/link.mp4 && mkdir uploads/o1/d"),
                 0);
    render_tenant_t t = {.org_id = "o1", .owns_job = owns};
    char path[4096], err[512];
    cr_assert_eq(
        render_key_resolve(&t, dir, "uploads/o1/a.mp4", path, sizeof path, err, sizeof err), 0,
        "%s", err);
    char want[4096];
    snprintf(want, sizeof want, "%s/uploads/o1/a.mp4", dir);
    cr_assert_str_eq(path, want);
    cr_assert_eq(render_key_resolve(&t, dir, "jobs/j1/r/v.mp4", path, sizeof path, err, sizeof err),
                 0, "%s", err);
    /* Another's upload, another's job output, a missing one, a link, a
     * folder, a key outside both namespaces: one answer, the key aside. */
    const char *none[] = {"uploads/o2/a.mp4",    "jobs/j2/r/v.mp4", "uploads/o1/nope.mp4",
                          "uploads/o1/link.mp4", "uploads/o1/d",    "uploads/o1",
                          "other/o1/a.mp4"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        cr_assert_eq(render_key_resolve(&t, dir, none[i], path, sizeof path, err, sizeof err),
                     FENTA_ENOTFOUND, "%s", none[i]);
        snprintf(want, sizeof want, "object '%s' does not exist", none[i]);
        cr_assert_str_eq(err, want);
    }
    cr_assert_eq(
        render_key_resolve(&t, dir, "uploads/o1/../o2/a.mp4", path, sizeof path, err, sizeof err),
        FENTA_EINVAL);
    cr_assert_eq(
        render_key_resolve(&t, dir, "jobs/down/r/v.mp4", path, sizeof path, err, sizeof err),
        FENTA_EUNAVAILABLE);

    /* Through the spec: no paths, and keys resolved as above. */
    render_spec_opts_t o = {.objects_dir = dir, .tenant = &t};
    render_spec_t s;
    json_t *j =
        json_pack("{ss s[{s{ss}}]}", "script", "hi", "media", "source", "key", "uploads/o1/a.mp4");
    cr_assert_eq(render_spec_parse(j, &o, &s, err, sizeof err), 0, "%s", err);
    render_spec_free(&s);
    json_decref(j);
    j = json_pack("{ss s[{s{ss}}]}", "script", "hi", "media", "source", "key", "uploads/o2/a.mp4");
    cr_assert_eq(render_spec_parse(j, &o, &s, err, sizeof err), FENTA_ENOTFOUND);
    cr_assert_str_eq(err, "$.media[0].source: object 'uploads/o2/a.mp4' does not exist");
    json_decref(j);
    j = json_pack("{ss s{s{s{s{ss}ss si si}}}}", "script", "hi", "template", "overlays", "logo",
                  "source", "path", "/etc/hostname", "position", "top-right", "opacity", 1, "width",
                  100);
    cr_assert_eq(render_spec_parse(j, &o, &s, err, sizeof err), FENTA_EINVAL);
    cr_assert(strstr(err, "$.template.overlays.logo.source.path: sources must be object-store"),
              "%s", err);
    json_decref(j);
    fx_rmdir(dir);
}

Test(render_spec, every_server_path_and_bad_key_of_a_document_is_named)
{
    json_t *doc = json_loads("{\"nodes\": [{\"id\": \"a\", \"params\": {\"keys\": [\"u/o/x\", "
                             "\"u/../x\"]}}, {\"id\": \"b\", \"params\": {\"template\": "
                             "{\"overlays\": {\"logo\": {\"source\": {\"path\": \"/etc\"}}}}}}, "
                             "{\"odd key\": {\"source\": {\"key\": \"a//b\"}}}]}",
                             0, NULL);
    cr_assert_not_null(doc);
    json_t *problems = NULL;
    cr_assert_eq(render_sources_check(doc, "$.graph", &problems), FENTA_EINVAL);
    cr_assert_eq(json_array_size(problems), 3, "%s", json_dumps(problems, 0));
    const char *want[][2] = {{"$.graph.nodes[0].params.keys[1]", "key"},
                             {"$.graph.nodes[1].params.template.overlays.logo.source.path", "path"},
                             {"$.graph.nodes[2]['odd key'].source.key", "key"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *p = json_array_get(problems, i);
        cr_assert_str_eq(json_string_value(json_object_get(p, "path")), want[i][0]);
        cr_assert_str_eq(json_string_value(json_object_get(p, "keyword")), want[i][1]);
    }
    json_decref(problems);
    json_decref(doc);
    doc = json_pack("{s{s{ss}}}", "media", "source", "key", "uploads/o/x.mp4");
    cr_assert_eq(render_sources_check(doc, "$.spec", &problems), 0);
    cr_assert_null(problems);
    json_decref(doc);
}
