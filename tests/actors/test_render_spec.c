/* test_render_spec.c - render specs and montage templates: the built-in
 * templates are complete and distinct, a user's template names only what it
 * changes, sizes follow the output profile, sources resolve (and never
 * escape the object store), and every mistake is named with its place. */
#include "actors/render_spec.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

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
            "must not contain '..'");
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
