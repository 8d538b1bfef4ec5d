/* test_workflow.c - workflow graphs over node types that are data: every
 * node file loads, a full pipeline validates and plans with its independent
 * branches, every kind of mistake is named with its node and port (all of
 * them in one call), credits add up, a broken node file is refused by name,
 * and a new node type is just a new file. */
#include "actors/workflow/workflow.h"
#include "runtime/error.h"
#include "tests/support/fixtures.h"
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FENTA_SOURCE_SCHEMAS
#define FENTA_SOURCE_SCHEMAS "schemas"
#endif

static workflow_types_t *types;

static void setup(void)
{
    char err[1024] = "";
    types = workflow_types_load(FENTA_SOURCE_SCHEMAS, err, sizeof err);
    cr_assert_not_null(types, "load: %s", err);
}

static void teardown(void)
{
    workflow_types_free(&types);
    cr_assert_null(types);
}

TestSuite(workflow, .init = setup, .fini = teardown);

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    cr_assert_not_null(j, "%s: %s", je.text, text);
    return j;
}

/* The problems of an invalid document (asserts it is refused). */
static json_t *problems_of(const workflow_types_t *t, const char *text)
{
    json_t *doc = parse(text), *ps = NULL;
    int rc = workflow_validate(t, doc, &ps);
    json_decref(doc);
    cr_assert_eq(rc, FENTA_EINVAL, "accepted: %s", text);
    cr_assert(json_array_size(ps) > 0);
    return ps;
}

/* The problem with this code (and node and port, when not NULL), or NULL. */
static json_t *find(const json_t *ps, const char *code, const char *node, const char *port)
{
    size_t i;
    json_t *p;
    json_array_foreach(ps, i, p)
    {
        const char *c = json_string_value(json_object_get(p, "code"));
        const char *n = json_string_value(json_object_get(p, "node"));
        const char *pt = json_string_value(json_object_get(p, "port"));
        if (strcmp(c, code) == 0 && (!node || (n && strcmp(n, node) == 0)) &&
            (!port || (pt && strcmp(pt, port) == 0)))
            return p;
    }
    return NULL;
}

static json_t *must_find(const json_t *ps, const char *code, const char *node, const char *port)
{
    json_t *p = find(ps, code, node, port);
    char *dump = json_dumps(ps, JSON_INDENT(1));
    cr_assert_not_null(p, "no %s at %s.%s in %s", code, node ? node : "*", port ? port : "*", dump);
    free(dump);
    cr_assert(strlen(json_string_value(json_object_get(p, "message"))) > 0);
    return p;
}

static const char *const ALL_TYPES[] = {
    "input.text", "input.asset",  "script.generate", "script.transform", "tts",    "asr",
    "captions",   "stock.search", "montage",         "export",           "deliver"};
#define NTYPES (sizeof ALL_TYPES / sizeof *ALL_TYPES)

/* input.text -> script.transform -> tts -> captions -> montage (+ stock.search,
 * listed last in the document) -> export -> deliver. */
static const char *PIPELINE =
    "{\"nodes\": ["
    " {\"id\": \"notes\", \"type\": \"input.text\", \"params\": {\"text\": \"Octopuses have three "
    "hearts. Why?\"}},"
    " {\"id\": \"script\", \"type\": \"script.transform\", \"params\": {\"op\": \"hook_first\"}},"
    " {\"id\": \"voice\", \"type\": \"tts\", \"params\": {\"voice\": \"en-us\", \"speed\": 1.1}},"
    " {\"id\": \"subs\", \"type\": \"captions\", \"params\": {\"template\": \"bold\"}},"
    " {\"id\": \"edit\", \"type\": \"montage\", \"params\": {\"template\": \"bold\", \"profile\": "
    "\"1080p\", \"duration_s\": 40}},"
    " {\"id\": \"render\", \"type\": \"export\"},"
    " {\"id\": \"out\", \"type\": \"deliver\", \"params\": {}},"
    " {\"id\": \"stock\", \"type\": \"stock.search\", \"params\": {\"query\": \"octopus\", "
    "\"count\": 4}}],"
    " \"edges\": ["
    " {\"from\": \"notes.text\", \"to\": \"script.text\"},"
    " {\"from\": \"script.text\", \"to\": \"voice.text\"},"
    " {\"from\": \"voice.words\", \"to\": \"subs.words\"},"
    " {\"from\": \"voice.audio\", \"to\": \"edit.audio\"},"
    " {\"from\": \"voice.words\", \"to\": \"edit.words\"},"
    " {\"from\": \"subs.captions\", \"to\": \"edit.captions\"},"
    " {\"from\": \"stock.media\", \"to\": \"edit.media\"},"
    " {\"from\": \"script.text\", \"to\": \"edit.text\"},"
    " {\"from\": \"edit.timeline\", \"to\": \"render.timeline\"},"
    " {\"from\": \"render.artifacts\", \"to\": \"out.artifacts\"}]}";

Test(workflow, every_node_file_loads_and_declares_typed_ports)
{
    json_t *list = workflow_types_list(types);
    cr_assert_eq(json_array_size(list), NTYPES, "types: %zu", json_array_size(list));
    for (size_t i = 0; i < NTYPES; i++) {
        const json_t *def = workflow_type_get(types, ALL_TYPES[i]);
        cr_assert_not_null(def, "%s did not load", ALL_TYPES[i]);
        cr_assert_str_eq(json_string_value(json_object_get(def, "type")), ALL_TYPES[i]);
        cr_assert(json_is_object(json_object_get(def, "params")));
        cr_assert(json_is_number(json_object_get(json_object_get(def, "credits"), "base")));
    }
    /* The listing is sorted by name, for the API. */
    for (size_t i = 1; i < json_array_size(list); i++)
        cr_assert(strcmp(json_string_value(json_object_get(json_array_get(list, i - 1), "type")),
                         json_string_value(json_object_get(json_array_get(list, i), "type"))) < 0);
    json_decref(list);
    cr_assert_null(workflow_type_get(types, "node-type"));
    cr_assert_null(workflow_type_get(types, "magic.wand"));
    /* Each file on disk is a loaded type (so none is silently skipped). */
    DIR *d = opendir(FENTA_SOURCE_SCHEMAS "/nodes");
    cr_assert_not_null(d);
    struct dirent *e;
    size_t files = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") || !strcmp(e->d_name, "node-type.json"))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 5), e->d_name);
        cr_assert_not_null(workflow_type_get(types, name), "%s", e->d_name);
        files++;
    }
    closedir(d);
    cr_assert_eq(files, NTYPES);
    /* A few port types the pipeline depends on. */
    const json_t *tts = workflow_type_get(types, "tts");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(tts, "outputs"), "words"), "type")),
                     "words");
    cr_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(json_object_get(workflow_type_get(types, "export"), "outputs"),
                            "artifacts"),
            "type")),
        "artifacts");
}

Test(workflow, a_full_pipeline_validates_and_plans_with_independent_branches)
{
    json_t *doc = parse(PIPELINE), *ps = NULL;
    int rc = workflow_validate(types, doc, &ps);
    char *dump = ps ? json_dumps(ps, 0) : NULL;
    cr_assert_eq(rc, 0, "%s", dump ? dump : "");
    cr_assert_null(ps);
    free(dump);

    char **ids;
    size_t n;
    cr_assert_eq(workflow_order(types, doc, &ids, &n), 0);
    /* Stable: document order wherever dependencies allow; stock is listed
     * last but must come before the montage that uses it. */
    const char *want[] = {"notes", "script", "voice", "subs", "stock", "edit", "render", "out"};
    cr_assert_eq(n, 8);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(ids[i], want[i], "order[%zu]", i);
        free(ids[i]);
    }
    free(ids);

    workflow_plan_t p;
    cr_assert_eq(workflow_plan(types, doc, &p, NULL), 0);
    cr_assert_eq(p.n, 8);
    size_t roots = 0;
    for (size_t i = 0; i < p.n; i++) {
        for (size_t k = 0; k < p.steps[i].ndeps; k++)
            cr_assert_lt(p.steps[i].deps[k], i, "%s depends on a later step", p.steps[i].id);
        roots += p.steps[i].ndeps == 0;
    }
    /* Two branches start at once: the notes and the stock search. */
    cr_assert_eq(roots, 2);
    cr_assert_str_eq(p.steps[0].id, "notes");
    cr_assert_str_eq(p.steps[4].id, "stock");
    cr_assert_eq(p.steps[4].ndeps, 0);
    cr_assert_eq(p.steps[4].level, 0);
    cr_assert_str_eq(p.steps[4].dispatcher, "io");
    cr_assert_eq(json_integer_value(json_object_get(p.steps[4].params, "count")), 4);
    /* The montage waits for script, voice, subs and stock, and knows which
     * output feeds each of its inputs. */
    workflow_step_t *edit = &p.steps[5];
    cr_assert_str_eq(edit->id, "edit");
    cr_assert_str_eq(edit->type, "montage");
    cr_assert_str_eq(edit->dispatcher, "render");
    size_t want_deps[] = {1, 2, 3, 4};
    cr_assert_eq(edit->ndeps, 4);
    for (size_t k = 0; k < 4; k++)
        cr_assert_eq(edit->deps[k], want_deps[k]);
    cr_assert_eq(edit->level, 4);
    cr_assert_eq(edit->ninputs, 5);
    bool media = false;
    for (size_t k = 0; k < edit->ninputs; k++)
        if (strcmp(edit->inputs[k].port, "media") == 0) {
            media = true;
            cr_assert_eq(edit->inputs[k].from, 4);
            cr_assert_str_eq(edit->inputs[k].from_port, "media");
        }
    cr_assert(media);
    /* voice feeds subs and edit through one output: a dep is listed once. */
    cr_assert_eq(p.steps[3].ndeps, 1);
    cr_assert_eq(p.steps[3].deps[0], 2);
    cr_assert_str_eq(p.steps[7].id, "out");
    cr_assert_eq(p.steps[7].level, 6);
    /* A node without params gets {} to run with. */
    cr_assert(json_is_object(p.steps[6].params));
    workflow_plan_free(&p);
    cr_assert_null(p.steps);
    workflow_plan_free(&p);
    json_decref(doc);
}

Test(workflow, a_cycle_names_its_nodes_in_order)
{
    json_t *ps = problems_of(
        types,
        "{\"nodes\": ["
        " {\"id\": \"c\", \"type\": \"script.transform\", \"params\": {\"op\": \"trim\"}},"
        " {\"id\": \"a\", \"type\": \"script.transform\", \"params\": {\"op\": \"trim\"}},"
        " {\"id\": \"b\", \"type\": \"script.transform\", \"params\": {\"op\": \"trim\"}},"
        " {\"id\": \"solo\", \"type\": \"script.transform\", \"params\": {\"op\": \"trim\"}}],"
        " \"edges\": [{\"from\": \"a.text\", \"to\": \"b.text\"},"
        " {\"from\": \"b.text\", \"to\": \"c.text\"},"
        " {\"from\": \"c.text\", \"to\": \"a.text\"},"
        " {\"from\": \"solo.text\", \"to\": \"solo.text\"}]}");
    cr_assert_eq(json_array_size(ps), 2, "%s", json_dumps(ps, 0));
    json_t *p = must_find(ps, "cycle", "c", NULL);
    json_t *nodes = json_object_get(p, "nodes");
    cr_assert_eq(json_array_size(nodes), 3);
    const char *want[] = {"c", "a", "b"};
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(json_string_value(json_array_get(nodes, i)), want[i]);
    cr_assert(strstr(json_string_value(json_object_get(p, "message")), "c -> a -> b -> c"));
    /* A node feeding itself is a cycle of one. */
    p = must_find(ps, "cycle", "solo", NULL);
    cr_assert_eq(json_array_size(json_object_get(p, "nodes")), 1);
    json_decref(ps);

    char **ids = (char **)1;
    size_t n = 9;
    json_t *doc = parse("{\"nodes\": [{\"id\": \"x\", \"type\": \"script.transform\", \"params\": "
                        "{\"op\": \"trim\"}}], \"edges\": [{\"from\": \"x.text\", \"to\": "
                        "\"x.text\"}]}");
    cr_assert_eq(workflow_order(types, doc, &ids, &n), FENTA_EINVAL);
    cr_assert_null(ids);
    cr_assert_eq(n, 0);
    json_decref(doc);
}

Test(workflow, a_type_mismatch_names_the_input_node_and_port)
{
    json_t *ps = problems_of(
        types, "{\"nodes\": ["
               " {\"id\": \"in\", \"type\": \"input.text\", \"params\": {\"text\": \"hi\"}},"
               " {\"id\": \"voice\", \"type\": \"tts\"},"
               " {\"id\": \"subs\", \"type\": \"captions\"}],"
               " \"edges\": [{\"from\": \"in.text\", \"to\": \"voice.text\"},"
               " {\"from\": \"voice.audio\", \"to\": \"subs.words\"}]}");
    cr_assert_eq(json_array_size(ps), 1, "%s", json_dumps(ps, 0));
    json_t *p = must_find(ps, "type_mismatch", "subs", "words");
    const char *msg = json_string_value(json_object_get(p, "message"));
    cr_assert(strstr(msg, "words") && strstr(msg, "audio"), "%s", msg);
    cr_assert_eq(json_integer_value(json_object_get(p, "edge")), 1);
    json_decref(ps);
}

Test(workflow, an_output_typed_by_a_param_follows_the_param)
{
    /* input.asset gives audio when kind is audio, media otherwise. */
    const char *audio = "{\"nodes\": ["
                        " {\"id\": \"rec\", \"type\": \"input.asset\", \"params\": {\"kind\": "
                        "\"%s\", \"keys\": [\"u/1/voice.wav\"]}},"
                        " {\"id\": \"ears\", \"type\": \"asr\"}],"
                        " \"edges\": [{\"from\": \"rec.asset\", \"to\": \"ears.audio\"}]}";
    char text[512];
    snprintf(text, sizeof text, audio, "audio");
    json_t *doc = parse(text);
    cr_assert_eq(workflow_validate(types, doc, NULL), 0);
    json_decref(doc);
    snprintf(text, sizeof text, audio, "media");
    json_t *ps = problems_of(types, text);
    must_find(ps, "type_mismatch", "ears", "audio");
    json_decref(ps);
    /* Without kind, the param's default and the port's declared type: media. */
    ps = problems_of(types, "{\"nodes\": [{\"id\": \"rec\", \"type\": \"input.asset\", \"params\": "
                            "{\"keys\": [\"a.mp4\"]}}, {\"id\": \"ears\", \"type\": \"asr\"}],"
                            " \"edges\": [{\"from\": \"rec.asset\", \"to\": \"ears.audio\"}]}");
    must_find(ps, "type_mismatch", "ears", "audio");
    json_decref(ps);
}

Test(workflow, missing_inputs_and_params_are_named)
{
    json_t *ps = problems_of(types, "{\"nodes\": ["
                                    " {\"id\": \"script\", \"type\": \"script.generate\", "
                                    "\"params\": {\"genre\": \"facts\"}},"
                                    " {\"id\": \"voice\", \"type\": \"tts\", \"params\": "
                                    "{\"speed\": 5}}]}");
    json_t *p = must_find(ps, "missing_param", "script", NULL);
    cr_assert_str_eq(json_string_value(json_object_get(p, "path")), "$.nodes[0].params.topic");
    p = must_find(ps, "invalid_param", "voice", NULL);
    cr_assert_str_eq(json_string_value(json_object_get(p, "path")), "$.nodes[1].params.speed");
    must_find(ps, "missing_input", "voice", "text");
    cr_assert_eq(json_array_size(ps), 3, "%s", json_dumps(ps, 0));
    json_decref(ps);
    /* An optional input may stay unfed: asr without its text transcribes. */
    json_t *doc = parse("{\"nodes\": [{\"id\": \"rec\", \"type\": \"input.asset\", \"params\": "
                        "{\"kind\": \"audio\", \"keys\": [\"v.wav\"]}}, {\"id\": \"ears\", "
                        "\"type\": \"asr\"}], \"edges\": [{\"from\": \"rec.asset\", \"to\": "
                        "\"ears.audio\"}]}");
    cr_assert_eq(workflow_validate(types, doc, NULL), 0);
    json_decref(doc);
}

Test(workflow, an_unknown_type_is_named_without_noise_about_its_ports)
{
    json_t *ps = problems_of(types, "{\"nodes\": ["
                                    " {\"id\": \"wand\", \"type\": \"magic.wand\"},"
                                    " {\"id\": \"voice\", \"type\": \"tts\"}],"
                                    " \"edges\": [{\"from\": \"wand.spell\", \"to\": "
                                    "\"voice.text\"}]}");
    cr_assert_eq(json_array_size(ps), 1, "%s", json_dumps(ps, 0));
    json_t *p = must_find(ps, "unknown_type", "wand", NULL);
    cr_assert(strstr(json_string_value(json_object_get(p, "message")), "magic.wand"));
    json_decref(ps);
}

Test(workflow, a_dangling_edge_names_the_missing_node)
{
    json_t *ps = problems_of(types, "{\"nodes\": [{\"id\": \"voice\", \"type\": \"tts\"}],"
                                    " \"edges\": [{\"from\": \"ghost.text\", \"to\": "
                                    "\"voice.text\"}, {\"from\": \"voice.audio\", \"to\": "
                                    "\"nowhere.audio\"}]}");
    /* The dangling edge still counts as feeding voice.text: no missing_input. */
    cr_assert_eq(json_array_size(ps), 2, "%s", json_dumps(ps, 0));
    json_t *p = must_find(ps, "dangling_edge", "ghost", NULL);
    cr_assert_eq(json_integer_value(json_object_get(p, "edge")), 0);
    p = must_find(ps, "dangling_edge", "nowhere", NULL);
    cr_assert_eq(json_integer_value(json_object_get(p, "edge")), 1);
    json_decref(ps);
}

Test(workflow, an_unknown_port_names_node_and_port)
{
    json_t *ps = problems_of(
        types, "{\"nodes\": ["
               " {\"id\": \"in\", \"type\": \"input.text\", \"params\": {\"text\": \"hi\"}},"
               " {\"id\": \"voice\", \"type\": \"tts\"}],"
               " \"edges\": [{\"from\": \"in.txt\", \"to\": \"voice.text\"},"
               " {\"from\": \"in.text\", \"to\": \"voice.script\"}]}");
    cr_assert_eq(json_array_size(ps), 2, "%s", json_dumps(ps, 0));
    json_t *p = must_find(ps, "unknown_port", "in", "txt");
    cr_assert(strstr(json_string_value(json_object_get(p, "message")), "output"));
    p = must_find(ps, "unknown_port", "voice", "script");
    cr_assert(strstr(json_string_value(json_object_get(p, "message")), "input"));
    json_decref(ps);
}

Test(workflow, two_edges_into_one_input_are_refused_once)
{
    json_t *ps = problems_of(
        types, "{\"nodes\": ["
               " {\"id\": \"a\", \"type\": \"input.text\", \"params\": {\"text\": \"one\"}},"
               " {\"id\": \"b\", \"type\": \"input.text\", \"params\": {\"text\": \"two\"}},"
               " {\"id\": \"c\", \"type\": \"input.text\", \"params\": {\"text\": \"three\"}},"
               " {\"id\": \"voice\", \"type\": \"tts\"}],"
               " \"edges\": [{\"from\": \"a.text\", \"to\": \"voice.text\"},"
               " {\"from\": \"b.text\", \"to\": \"voice.text\"},"
               " {\"from\": \"c.text\", \"to\": \"voice.text\"}]}");
    cr_assert_eq(json_array_size(ps), 1, "%s", json_dumps(ps, 0));
    must_find(ps, "multiple_inputs", "voice", "text");
    json_decref(ps);
}

Test(workflow, every_problem_is_reported_in_one_call)
{
    json_t *ps = problems_of(
        types, "{\"nodes\": ["
               " {\"id\": \"gen\", \"type\": \"script.generate\", \"params\": {\"genre\": "
               "\"rant\"}},"
               " {\"id\": \"gen\", \"type\": \"input.text\", \"params\": {\"text\": \"x\"}},"
               " {\"id\": \"wand\", \"type\": \"magic.wand\"},"
               " {\"id\": \"voice\", \"type\": \"tts\"},"
               " {\"id\": \"subs\", \"type\": \"captions\"},"
               " {\"id\": \"p\", \"type\": \"script.transform\", \"params\": {\"op\": \"trim\"}},"
               " {\"id\": \"q\", \"type\": \"script.transform\", \"params\": {\"op\": \"trim\"}},"
               " {\"id\": \"edit\", \"type\": \"montage\"}],"
               " \"edges\": [{\"from\": \"gen.text\", \"to\": \"voice.text\"},"
               " {\"from\": \"voice.audio\", \"to\": \"subs.words\"},"
               " {\"from\": \"ghost.text\", \"to\": \"p.text\"},"
               " {\"from\": \"p.text\", \"to\": \"q.text\"},"
               " {\"from\": \"q.text\", \"to\": \"p.text\"},"
               " {\"from\": \"voice.sound\", \"to\": \"edit.audio\"}]}");
    must_find(ps, "duplicate_node", "gen", NULL);
    must_find(ps, "missing_param", "gen", NULL);
    must_find(ps, "invalid_param", "gen", NULL);
    must_find(ps, "unknown_type", "wand", NULL);
    must_find(ps, "type_mismatch", "subs", "words");
    must_find(ps, "dangling_edge", "ghost", NULL);
    must_find(ps, "multiple_inputs", "p", "text");
    must_find(ps, "unknown_port", "voice", "sound");
    must_find(ps, "missing_input", "edit", "words");
    json_t *c = must_find(ps, "cycle", "p", NULL);
    cr_assert_eq(json_array_size(json_object_get(c, "nodes")), 2);
    json_decref(ps);
}

Test(workflow, a_malformed_document_is_named_by_path)
{
    json_t *ps = problems_of(types, "{\"nodes\": [{\"id\": \"Bad Id\", \"type\": \"tts\"}],"
                                    " \"edges\": [{\"from\": \"nodot\", \"to\": \"x.y\"}], "
                                    "\"extra\": 1}");
    must_find(ps, "invalid_document", NULL, NULL);
    json_t *p;
    bool id = false, ref = false, extra = false;
    size_t i;
    json_array_foreach(ps, i, p)
    {
        const char *path = json_string_value(json_object_get(p, "path"));
        id |= path && strcmp(path, "$.nodes[0].id") == 0;
        ref |= path && strcmp(path, "$.edges[0].from") == 0;
        extra |= path && strcmp(path, "$.extra") == 0;
    }
    cr_assert(id && ref && extra, "%s", json_dumps(ps, 0));
    json_decref(ps);
    ps = problems_of(types, "[]");
    must_find(ps, "invalid_document", NULL, NULL);
    json_decref(ps);
    ps = problems_of(types, "{\"nodes\": []}");
    must_find(ps, "invalid_document", NULL, NULL);
    json_decref(ps);
}

static double credits_of(const json_t *est, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(est, "nodes"), i,
                       n) if (strcmp(json_string_value(json_object_get(n, "id")), id) ==
                              0) return json_number_value(json_object_get(n, "credits"));
    cr_assert_fail("no estimate for %s", id);
    return -1;
}

Test(workflow, the_estimate_follows_the_credit_rules)
{
    json_t *doc = parse(PIPELINE), *est = NULL;
    cr_assert_eq(workflow_estimate(types, doc, &est), 0);
    json_decref(doc);
    /* S = 40 s (the montage's duration_s). tts 0.5 + 0.05*40, captions 0.1,
     * montage 1 + 0.1*40, export 1 + 0.2*40, stock 0.5 + 0.1*4, inputs free. */
    cr_assert_eq(json_array_size(json_object_get(est, "nodes")), 8);
    cr_assert_float_eq(json_number_value(json_object_get(est, "video_seconds")), 40, 1e-9);
    cr_assert_float_eq(credits_of(est, "notes"), 0, 1e-9);
    cr_assert_float_eq(credits_of(est, "voice"), 2.5, 1e-9);
    cr_assert_float_eq(credits_of(est, "subs"), 0.1, 1e-9);
    cr_assert_float_eq(credits_of(est, "edit"), 5, 1e-9);
    cr_assert_float_eq(credits_of(est, "render"), 9, 1e-9);
    cr_assert_float_eq(credits_of(est, "stock"), 0.9, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(est, "total")), 17.5, 1e-9);
    json_decref(est);

    /* Defaults count: script.generate's 30 s loses to montage's default
     * 60 s, a 90 s script wins; stock.search's count defaults to 5. */
    const char *fmt = "{\"nodes\": ["
                      " {\"id\": \"gen\", \"type\": \"script.generate\", \"params\": {\"topic\": "
                      "\"tides\"%s}},"
                      " {\"id\": \"voice\", \"type\": \"tts\"},"
                      " {\"id\": \"stock\", \"type\": \"stock.search\", \"params\": {\"query\": "
                      "\"sea\"}},"
                      " {\"id\": \"edit\", \"type\": \"montage\"}],"
                      " \"edges\": [{\"from\": \"gen.text\", \"to\": \"voice.text\"},"
                      " {\"from\": \"voice.audio\", \"to\": \"edit.audio\"},"
                      " {\"from\": \"voice.words\", \"to\": \"edit.words\"},"
                      " {\"from\": \"stock.media\", \"to\": \"edit.media\"}]}";
    char text[1024];
    snprintf(text, sizeof text, fmt, "");
    doc = parse(text);
    cr_assert_eq(workflow_estimate(types, doc, &est), 0);
    json_decref(doc);
    cr_assert_float_eq(json_number_value(json_object_get(est, "video_seconds")), 60, 1e-9);
    cr_assert_float_eq(credits_of(est, "gen"), 3.2, 1e-9);
    cr_assert_float_eq(credits_of(est, "stock"), 1.0, 1e-9);
    /* 3.2 + 3.5 + 1.0 + 7 */
    cr_assert_float_eq(json_number_value(json_object_get(est, "total")), 14.7, 1e-9);
    json_decref(est);
    snprintf(text, sizeof text, fmt, ", \"duration_s\": 90");
    doc = parse(text);
    cr_assert_eq(workflow_estimate(types, doc, &est), 0);
    cr_assert_float_eq(json_number_value(json_object_get(est, "video_seconds")), 90, 1e-9);
    cr_assert_float_eq(credits_of(est, "edit"), 10, 1e-9);
    json_decref(est);
    json_decref(doc);

    /* An invalid workflow has no estimate. */
    doc = parse("{\"nodes\": [{\"id\": \"voice\", \"type\": \"tts\"}]}");
    est = (json_t *)1;
    cr_assert_eq(workflow_estimate(types, doc, &est), FENTA_EINVAL);
    cr_assert_null(est);
    json_decref(doc);
}

/* ---- node files in a copy of the schemas folder ---------------------------- */

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    cr_assert(in && out, "copy %s -> %s", from, to);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    cr_assert_eq(fclose(out), 0);
}

/* A temp schemas folder holding workflow.json and every nodes/ file. */
static char *copy_schemas(void)
{
    char *dir = fx_tmpdir("workflow");
    char from[1024], to[1024];
    snprintf(from, sizeof from, "%s/workflow.json", FENTA_SOURCE_SCHEMAS);
    snprintf(to, sizeof to, "%s/workflow.json", dir);
    copy_file(from, to);
    snprintf(to, sizeof to, "%s/nodes", dir);
    cr_assert_eq(mkdir(to, 0700), 0);
    DIR *d = opendir(FENTA_SOURCE_SCHEMAS "/nodes");
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(from, sizeof from, "%s/nodes/%s", FENTA_SOURCE_SCHEMAS, e->d_name);
        snprintf(to, sizeof to, "%s/nodes/%s", dir, e->d_name);
        copy_file(from, to);
    }
    closedir(d);
    return dir;
}

static void write_node(const char *dir, const char *file, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/nodes/%s", dir, file);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* A node file with a params schema, output port type and name of our own. */
static char *node_file(const char *type, const char *params, const char *out_type)
{
    char *s = NULL;
    cr_assert(asprintf(&s,
                       "{\"type\": \"%s\", \"title\": \"T\", \"description\": \"D\", \"inputs\": "
                       "{}, \"outputs\": {\"media\": {\"type\": \"%s\"}}, \"params\": %s, "
                       "\"credits\": {\"base\": 3}, \"dispatcher\": \"io\"}",
                       type, out_type, params) > 0);
    return s;
}

static void refused_at_load(const char *file, const char *text, const char *want)
{
    char *dir = copy_schemas();
    write_node(dir, file, text);
    char err[1024] = "";
    workflow_types_t *t = workflow_types_load(dir, err, sizeof err);
    cr_assert_null(t, "%s was accepted", file);
    cr_assert(strstr(err, file), "error does not name %s: %s", file, err);
    cr_assert(strstr(err, want), "expected '%s' in: %s", want, err);
    fx_rmdir(dir);
}

Test(workflow, a_node_file_with_a_bad_params_schema_is_refused_by_name)
{
    char *s = node_file("bad", "{\"type\": \"object\", \"properties\": {\"x\": {\"allOf\": []}}}",
                        "media");
    refused_at_load("bad.json", s, "allOf");
    free(s);
    /* A port type outside the vocabulary. */
    s = node_file("smelly", "{\"type\": \"object\", \"properties\": {}}", "smell");
    refused_at_load("smelly.json", s, "$.outputs.media.type");
    free(s);
    /* A params schema that is not for an object. */
    s = node_file("listy", "{\"type\": \"array\", \"properties\": {}}", "media");
    refused_at_load("listy.json", s, "$.params.type");
    free(s);
    /* A file not named after its type. */
    s = node_file("image.generate", "{\"type\": \"object\", \"properties\": {}}", "media");
    refused_at_load("image.json", s, "image.generate.json");
    free(s);
    refused_at_load("broken.json", "{\"type\": ", "line");
}

Test(workflow, a_new_node_type_is_a_new_file)
{
    char *dir = copy_schemas();
    char *s = node_file("image.generate",
                        "{\"type\": \"object\", \"additionalProperties\": false, \"required\": "
                        "[\"prompt\"], \"properties\": {\"prompt\": {\"type\": \"string\", "
                        "\"minLength\": 1}}}",
                        "media");
    write_node(dir, "image.generate.json", s);
    free(s);
    char err[1024] = "";
    workflow_types_t *t = workflow_types_load(dir, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    cr_assert_not_null(workflow_type_get(t, "image.generate"));
    cr_assert_null(workflow_type_get(types, "image.generate"));
    json_t *list = workflow_types_list(t);
    cr_assert_eq(json_array_size(list), NTYPES + 1);
    json_decref(list);

    const char *text = "{\"nodes\": ["
                       " {\"id\": \"gen\", \"type\": \"script.generate\", \"params\": {\"topic\": "
                       "\"volcanoes\"}},"
                       " {\"id\": \"voice\", \"type\": \"tts\"},"
                       " {\"id\": \"art\", \"type\": \"image.generate\", \"params\": {\"prompt\": "
                       "\"lava\"}},"
                       " {\"id\": \"edit\", \"type\": \"montage\"}],"
                       " \"edges\": [{\"from\": \"gen.text\", \"to\": \"voice.text\"},"
                       " {\"from\": \"voice.audio\", \"to\": \"edit.audio\"},"
                       " {\"from\": \"voice.words\", \"to\": \"edit.words\"},"
                       " {\"from\": \"art.media\", \"to\": \"edit.media\"}]}";
    json_t *doc = parse(text), *est = NULL;
    cr_assert_eq(workflow_validate(t, doc, NULL), 0);
    cr_assert_eq(workflow_estimate(t, doc, &est), 0);
    cr_assert_float_eq(credits_of(est, "art"), 3, 1e-9);
    json_decref(est);
    json_decref(doc);
    json_t *ps = problems_of(types, text);
    must_find(ps, "unknown_type", "art", NULL);
    json_decref(ps);
    /* Its params schema is enforced like any other's. */
    ps = problems_of(t, "{\"nodes\": [{\"id\": \"art\", \"type\": \"image.generate\"}]}");
    must_find(ps, "missing_param", "art", NULL);
    json_decref(ps);
    workflow_types_free(&t);
    fx_rmdir(dir);
}
