/* test_jsonschema.c - the request-body validator: every keyword accepts what
 * it should and refuses what it should, every problem is reported with its
 * JSONPath in a stable order, $ref works (recursion included), formats hold at
 * their edges, lengths count code points, and schemas outside the subset are
 * refused at compile time with a message naming the place. */
#include "json/jsonschema.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    cr_assert_not_null(v, "bad test JSON %s: %s", text, e.text);
    return v;
}

static jsonschema_t *compile(const char *schema_text)
{
    json_t *s = parse(schema_text);
    char err[256];
    jsonschema_t *js = jsonschema_compile(s, err, sizeof err);
    json_decref(s);
    cr_assert_not_null(js, "schema %s refused: %s", schema_text, err);
    return js;
}

/* The compile error message for a schema that must be refused. */
static void refused(const char *schema_text, const char *expect_in_message)
{
    json_t *s = parse(schema_text);
    char err[256] = "";
    jsonschema_t *js = jsonschema_compile(s, err, sizeof err);
    json_decref(s);
    cr_assert_null(js, "schema %s was accepted", schema_text);
    cr_assert(strstr(err, expect_in_message), "schema %s: message \"%s\" lacks \"%s\"", schema_text,
              err, expect_in_message);
}

static bool valid(const jsonschema_t *js, const char *instance_text)
{
    json_t *inst = parse(instance_text);
    json_t *problems = NULL;
    int rc = jsonschema_validate(js, inst, &problems);
    json_decref(inst);
    cr_assert(rc == 0 || rc == FENTA_EINVAL, "validate returned %d", rc);
    if (rc == 0)
        cr_assert_null(problems, "valid instance came with problems");
    else
        cr_assert(json_array_size(problems) > 0, "invalid instance came with no problems");
    /* the stop-at-first mode must agree */
    json_t *again = parse(instance_text);
    cr_assert_eq(jsonschema_validate(js, again, NULL), rc);
    json_decref(again);
    json_decref(problems);
    return rc == 0;
}

/* Validates instance_text and checks the problems equal expect_text exactly
 * (an array of {path, keyword, message}, in order). */
static void problems_are(const jsonschema_t *js, const char *instance_text, const char *expect_text)
{
    json_t *inst = parse(instance_text);
    json_t *expect = parse(expect_text);
    json_t *problems = NULL;
    int rc = jsonschema_validate(js, inst, &problems);
    cr_assert_eq(rc, FENTA_EINVAL, "instance %s: rc %d", instance_text, rc);
    char *got = json_dumps(problems, JSON_COMPACT);
    char *want = json_dumps(expect, JSON_COMPACT);
    cr_assert(json_equal(problems, expect), "instance %s:\n got  %s\n want %s", instance_text, got,
              want);
    free(got);
    free(want);
    json_decref(problems);
    json_decref(expect);
    json_decref(inst);
}

/* Just the keyword of the single problem. */
static void one_problem(const jsonschema_t *js, const char *instance_text, const char *path,
                        const char *keyword)
{
    json_t *inst = parse(instance_text);
    json_t *problems = NULL;
    cr_assert_eq(jsonschema_validate(js, inst, &problems), FENTA_EINVAL, "%s was accepted",
                 instance_text);
    cr_assert_eq(json_array_size(problems), 1, "%s: %zu problems", instance_text,
                 json_array_size(problems));
    json_t *p = json_array_get(problems, 0);
    cr_assert_str_eq(json_string_value(json_object_get(p, "path")), path, "%s", instance_text);
    cr_assert_str_eq(json_string_value(json_object_get(p, "keyword")), keyword, "%s",
                     instance_text);
    cr_assert_not_null(json_string_value(json_object_get(p, "message")));
    json_decref(problems);
    json_decref(inst);
}

Test(jsonschema, type_single_and_union)
{
    jsonschema_t *js = compile("{\"type\":\"string\"}");
    cr_assert(valid(js, "\"x\""));
    problems_are(js, "12",
                 "[{\"path\":\"$\",\"keyword\":\"type\",\"message\":\"must be a string\"}]");
    cr_assert_not(valid(js, "null"));
    jsonschema_free(&js);
    cr_assert_null(js, "free must NULL the pointer");
    jsonschema_free(&js); /* and accept NULL */

    js = compile("{\"type\":[\"string\",\"null\"]}");
    cr_assert(valid(js, "\"x\""));
    cr_assert(valid(js, "null"));
    problems_are(
        js, "true",
        "[{\"path\":\"$\",\"keyword\":\"type\",\"message\":\"must be a string or null\"}]");
    jsonschema_free(&js);

    const char *types[] = {"null", "boolean", "object", "array", "number", "string"};
    const char *samples[] = {"null", "true", "{}", "[]", "1.5", "\"s\""};
    for (size_t t = 0; t < 6; t++) {
        char schema[64];
        snprintf(schema, sizeof schema, "{\"type\":\"%s\"}", types[t]);
        js = compile(schema);
        for (size_t s = 0; s < 6; s++)
            cr_assert_eq(valid(js, samples[s]), s == t, "type %s, instance %s", types[t],
                         samples[s]);
        jsonschema_free(&js);
    }
}

Test(jsonschema, integer_is_a_number_without_fraction)
{
    jsonschema_t *js = compile("{\"type\":\"integer\"}");
    cr_assert(valid(js, "3"));
    cr_assert(valid(js, "-7"));
    cr_assert(valid(js, "3.0"), "a real with no fraction is an integer");
    cr_assert(valid(js, "1e3"));
    cr_assert_not(valid(js, "3.5"));
    cr_assert_not(valid(js, "\"3\""));
    one_problem(js, "0.1", "$", "type");
    jsonschema_free(&js);

    js = compile("{\"type\":\"number\"}");
    cr_assert(valid(js, "3"), "an integer is a number");
    cr_assert(valid(js, "3.25"));
    jsonschema_free(&js);
}

Test(jsonschema, properties_required_additional)
{
    jsonschema_t *js =
        compile("{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
                "\"age\":{\"type\":\"integer\"}},\"required\":[\"name\",\"age\"],"
                "\"additionalProperties\":false}");
    cr_assert(valid(js, "{\"name\":\"a\",\"age\":3}"));
    problems_are(js, "{}",
                 "[{\"path\":\"$.name\",\"keyword\":\"required\",\"message\":\"is required\"},"
                 "{\"path\":\"$.age\",\"keyword\":\"required\",\"message\":\"is required\"}]");
    problems_are(js, "{\"name\":\"a\",\"age\":3,\"x\":1,\"odd key\":2}",
                 "[{\"path\":\"$.x\",\"keyword\":\"additionalProperties\",\"message\":\"is not "
                 "allowed\"},{\"path\":\"$['odd key']\",\"keyword\":\"additionalProperties\","
                 "\"message\":\"is not allowed\"}]");
    problems_are(js, "{\"age\":\"old\"}",
                 "[{\"path\":\"$.name\",\"keyword\":\"required\",\"message\":\"is required\"},"
                 "{\"path\":\"$.age\",\"keyword\":\"type\",\"message\":\"must be an integer\"}]");
    one_problem(js, "[]", "$", "type");
    jsonschema_free(&js);

    /* additionalProperties as a schema; absent means anything goes */
    js = compile("{\"properties\":{\"a\":{}},\"additionalProperties\":{\"type\":\"integer\"}}");
    cr_assert(valid(js, "{\"a\":\"free\",\"b\":1,\"c\":2}"));
    one_problem(js, "{\"a\":1,\"b\":\"no\"}", "$.b", "type");
    cr_assert(valid(js, "\"not an object: object keywords do not apply\""));
    jsonschema_free(&js);

    js = compile("{\"properties\":{\"a\":{\"type\":\"string\"}}}");
    cr_assert(valid(js, "{\"a\":\"x\",\"anything\":[1,2]}"));
    jsonschema_free(&js);
}

Test(jsonschema, odd_member_names_are_quoted_in_paths)
{
    jsonschema_t *js = compile("{\"additionalProperties\":{\"type\":\"string\"}}");
    problems_are(js, "{\"it's\":1,\"a.b\":2,\"_ok9\":3,\"9x\":4,\"\":5}",
                 "[{\"path\":\"$['it\\\\'s']\",\"keyword\":\"type\",\"message\":\"must be a "
                 "string\"},"
                 "{\"path\":\"$['a.b']\",\"keyword\":\"type\",\"message\":\"must be a string\"},"
                 "{\"path\":\"$._ok9\",\"keyword\":\"type\",\"message\":\"must be a string\"},"
                 "{\"path\":\"$['9x']\",\"keyword\":\"type\",\"message\":\"must be a string\"},"
                 "{\"path\":\"$['']\",\"keyword\":\"type\",\"message\":\"must be a string\"}]");
    jsonschema_free(&js);
}

Test(jsonschema, enum_and_const)
{
    jsonschema_t *js = compile("{\"enum\":[\"owner\",\"admin\",1,null,{\"a\":[1,2]}]}");
    cr_assert(valid(js, "\"owner\""));
    cr_assert(valid(js, "1"));
    cr_assert(valid(js, "1.0"), "numbers compare by value");
    cr_assert(valid(js, "null"));
    cr_assert(valid(js, "{\"a\":[1,2.0]}"));
    cr_assert_not(valid(js, "{\"a\":[2,1]}"));
    cr_assert_not(valid(js, "\"Owner\""));
    cr_assert_not(valid(js, "true"));
    problems_are(
        js, "\"root\"",
        "[{\"path\":\"$\",\"keyword\":\"enum\",\"message\":\"must be one of: \\\"owner\\\", "
        "\\\"admin\\\", 1, null, {\\\"a\\\":[1,2]}\"}]");
    jsonschema_free(&js);

    js = compile("{\"const\":{\"x\":1,\"y\":\"z\"}}");
    cr_assert(valid(js, "{\"y\":\"z\",\"x\":1}"), "member order does not matter");
    cr_assert_not(valid(js, "{\"x\":1}"));
    cr_assert_not(valid(js, "{\"x\":1,\"y\":\"z\",\"w\":0}"));
    one_problem(js, "1", "$", "const");
    jsonschema_free(&js);

    /* strings with quotes and NULs cannot masquerade as other values */
    js = compile("{\"const\":\"a\\\"b\"}");
    cr_assert(valid(js, "\"a\\\"b\""));
    cr_assert_not(valid(js, "\"a\\u0000b\""));
    cr_assert_not(valid(js, "\"ab\""));
    jsonschema_free(&js);
}

Test(jsonschema, numeric_bounds)
{
    jsonschema_t *js = compile("{\"minimum\":1,\"maximum\":10}");
    cr_assert(valid(js, "1"));
    cr_assert(valid(js, "10"));
    cr_assert(valid(js, "10.0"));
    cr_assert(valid(js, "\"bounds apply to numbers only\""));
    problems_are(js, "0",
                 "[{\"path\":\"$\",\"keyword\":\"minimum\",\"message\":\"must be >= 1\"}]");
    problems_are(js, "10.5",
                 "[{\"path\":\"$\",\"keyword\":\"maximum\",\"message\":\"must be <= 10\"}]");
    cr_assert_not(valid(js, "0.999999"));
    jsonschema_free(&js);

    js = compile("{\"exclusiveMinimum\":0,\"exclusiveMaximum\":1.5}");
    cr_assert(valid(js, "0.0001"));
    cr_assert(valid(js, "1"));
    one_problem(js, "0", "$", "exclusiveMinimum");
    one_problem(js, "0.0", "$", "exclusiveMinimum");
    one_problem(js, "1.5", "$", "exclusiveMaximum");
    one_problem(js, "-3", "$", "exclusiveMinimum");
    jsonschema_free(&js);

    /* draft-04 / OpenAPI 3.0 boolean form */
    js = compile("{\"minimum\":5,\"exclusiveMinimum\":true}");
    cr_assert_not(valid(js, "5"));
    cr_assert(valid(js, "6"));
    jsonschema_free(&js);

    /* integers beyond 2^53 are compared exactly, not through doubles */
    js = compile("{\"maximum\":9007199254740992}");
    cr_assert(valid(js, "9007199254740992"));
    one_problem(js, "9007199254740993", "$", "maximum");
    jsonschema_free(&js);
    js = compile("{\"maximum\":9007199254740992.0}");
    one_problem(js, "9007199254740993", "$", "maximum");
    jsonschema_free(&js);
}

Test(jsonschema, string_lengths_count_code_points)
{
    jsonschema_t *js = compile("{\"minLength\":2,\"maxLength\":3}");
    cr_assert(valid(js, "\"ab\""));
    cr_assert(valid(js, "\"\u00e9\u00e9\u00e9\""), "3 code points, 6 bytes");
    cr_assert(valid(js, "\"\U0001F600\U0001F600\""), "2 emoji, 8 bytes");
    cr_assert(valid(js, "\"\\ud83d\\ude00\\ud83d\\ude00\""), "escaped surrogate pairs");
    problems_are(
        js, "\"a\"",
        "[{\"path\":\"$\",\"keyword\":\"minLength\",\"message\":\"must be at least 2 characters "
        "long\"}]");
    problems_are(js, "\"abcd\"",
                 "[{\"path\":\"$\",\"keyword\":\"maxLength\",\"message\":\"must be at most 3 "
                 "characters long\"}]");
    one_problem(js, "\"\u00e9\u00e9\u00e9\u00e9\"", "$", "maxLength");
    one_problem(js, "\"\U0001F600\"", "$", "minLength");
    cr_assert(valid(js, "[\"lengths apply to strings only\"]"));
    jsonschema_free(&js);
}

Test(jsonschema, invalid_utf8_is_not_a_string)
{
    jsonschema_t *js = compile("{\"type\":\"string\"}");
    /* jansson refuses these when parsing; build them past its check */
    const char *bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *s = json_stringn_nocheck(bad[i], strlen(bad[i]));
        json_t *problems = NULL;
        cr_assert_eq(jsonschema_validate(js, s, &problems), FENTA_EINVAL, "bad UTF-8 #%zu", i);
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(problems, 0), "message")),
                         "must be a valid UTF-8 string");
        json_decref(problems);
        json_decref(s);
    }
    json_t *ok = json_string("h\u00e9llo");
    cr_assert_eq(jsonschema_validate(js, ok, NULL), 0);
    json_decref(ok);
    jsonschema_free(&js);
}

Test(jsonschema, pattern_is_posix_ere_unanchored)
{
    jsonschema_t *js = compile("{\"pattern\":\"^[a-z][a-z0-9-]{2,9}$\"}");
    cr_assert(valid(js, "\"my-org\""));
    problems_are(js, "\"My-Org\"",
                 "[{\"path\":\"$\",\"keyword\":\"pattern\",\"message\":\"must match the pattern "
                 "^[a-z][a-z0-9-]{2,9}$\"}]");
    cr_assert_not(valid(js, "\"ab\""));
    cr_assert(valid(js, "3"), "pattern applies to strings only");
    jsonschema_free(&js);

    js = compile("{\"pattern\":\"b+\"}");
    cr_assert(valid(js, "\"abbbc\""), "unanchored: a match anywhere is enough");
    cr_assert_not(valid(js, "\"ac\""));
    jsonschema_free(&js);

    /* the whole string is matched, even past an embedded NUL */
    js = compile("{\"pattern\":\"^[a-z]*$\"}");
    cr_assert_not(valid(js, "\"ab\\u0000CD\""));
    jsonschema_free(&js);
}

Test(jsonschema, items_and_array_sizes)
{
    jsonschema_t *js = compile("{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0},"
                               "\"minItems\":1,\"maxItems\":3}");
    cr_assert(valid(js, "[0,1,2]"));
    problems_are(js, "[]",
                 "[{\"path\":\"$\",\"keyword\":\"minItems\",\"message\":\"must have at least 1 "
                 "item\"}]");
    problems_are(js, "[1,-1,\"x\",4]",
                 "[{\"path\":\"$\",\"keyword\":\"maxItems\",\"message\":\"must have at most 3 "
                 "items\"},"
                 "{\"path\":\"$[1]\",\"keyword\":\"minimum\",\"message\":\"must be >= 0\"},"
                 "{\"path\":\"$[2]\",\"keyword\":\"type\",\"message\":\"must be an integer\"}]");
    jsonschema_free(&js);

    refused("{\"items\":[{\"type\":\"string\"}]}", "tuple form");
}

Test(jsonschema, unique_items)
{
    jsonschema_t *js = compile("{\"uniqueItems\":true}");
    cr_assert(valid(js, "[1,2,\"1\",[1],{\"a\":1},{\"a\":2},true,false,null]"));
    problems_are(js, "[5,1,2,1,5]",
                 "[{\"path\":\"$\",\"keyword\":\"uniqueItems\",\"message\":\"must not contain "
                 "duplicates (items 1 and 3 are equal)\"}]");
    cr_assert_not(valid(js, "[1,1.0]"), "1 and 1.0 are the same number");
    cr_assert_not(valid(js, "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]"));
    cr_assert_not(valid(js, "[[1,[2]],[1,[2]]]"));
    cr_assert(valid(js, "[[1,2],[2,1]]"));
    jsonschema_free(&js);

    js = compile("{\"uniqueItems\":false}");
    cr_assert(valid(js, "[1,1]"));
    jsonschema_free(&js);

    /* big arrays are checked by sorting, not by comparing every pair */
    js = compile("{\"uniqueItems\":true}");
    json_t *big = json_array();
    for (int i = 0; i < 200000; i++)
        json_array_append_new(big, json_integer(i));
    cr_assert_eq(jsonschema_validate(js, big, NULL), 0);
    json_array_append_new(big, json_real(777.0));
    json_t *problems = NULL;
    cr_assert_eq(jsonschema_validate(js, big, &problems), FENTA_EINVAL);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(problems, 0), "message")),
                     "must not contain duplicates (items 777 and 200000 are equal)");
    json_decref(problems);
    json_decref(big);
    jsonschema_free(&js);
}

Test(jsonschema, every_problem_in_nested_documents)
{
    jsonschema_t *js = compile(
        "{\"type\":\"object\",\"required\":[\"name\",\"members\"],\"additionalProperties\":false,"
        "\"properties\":{"
        "\"name\":{\"type\":\"string\",\"minLength\":1},"
        "\"members\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
        "\"required\":[\"email\",\"role\"],\"properties\":{"
        "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
        "\"role\":{\"enum\":[\"owner\",\"admin\",\"editor\",\"viewer\"]},"
        "\"since\":{\"type\":\"string\",\"format\":\"date-time\"}}}}}}");
    cr_assert(valid(js, "{\"name\":\"acme\",\"members\":[{\"email\":\"a@b.io\",\"role\":\"owner\","
                        "\"since\":\"2026-11-23T21:00:00Z\"}]}"));
    problems_are(js,
                 "{\"name\":\"\",\"members\":[{\"email\":\"a@b.io\",\"role\":\"owner\"},"
                 "{\"role\":\"boss\"},{\"email\":\"nope\",\"role\":\"viewer\","
                 "\"since\":\"2026-02-30T00:00:00Z\"}],\"extra\":true}",
                 "[{\"path\":\"$.name\",\"keyword\":\"minLength\",\"message\":\"must be at least 1 "
                 "character long\"},"
                 "{\"path\":\"$.members[1].email\",\"keyword\":\"required\",\"message\":\"is "
                 "required\"},"
                 "{\"path\":\"$.members[1].role\",\"keyword\":\"enum\",\"message\":\"must be one "
                 "of: \\\"owner\\\", \\\"admin\\\", \\\"editor\\\", \\\"viewer\\\"\"},"
                 "{\"path\":\"$.members[2].email\",\"keyword\":\"format\",\"message\":\"must be an "
                 "email address\"},"
                 "{\"path\":\"$.members[2].since\",\"keyword\":\"format\",\"message\":\"must be an "
                 "RFC 3339 date-time\"},"
                 "{\"path\":\"$.extra\",\"keyword\":\"additionalProperties\",\"message\":\"is not "
                 "allowed\"}]");
    jsonschema_free(&js);
}

Test(jsonschema, refs_to_defs_and_definitions_and_recursion)
{
    jsonschema_t *js =
        compile("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"x\","
                "\"title\":\"t\",\"description\":\"d\",\"$defs\":{\"id\":{\"type\":\"string\","
                "\"format\":\"uuid\"},\"a/b\":{\"type\":\"integer\"}},"
                "\"definitions\":{\"node\":{\"type\":\"object\",\"properties\":{"
                "\"id\":{\"$ref\":\"#/$defs/id\"},\"children\":{\"type\":\"array\","
                "\"items\":{\"$ref\":\"#/definitions/node\"}}}}},"
                "\"type\":\"object\",\"properties\":{\"tree\":{\"$ref\":\"#/definitions/node\"},"
                "\"n\":{\"$ref\":\"#/$defs/a~1b\",\"minimum\":3}}}");
    cr_assert(valid(js, "{\"tree\":{\"id\":\"123e4567-e89b-12d3-a456-426614174000\","
                        "\"children\":[{\"children\":[]}]},\"n\":4}"));
    problems_are(
        js, "{\"tree\":{\"children\":[{\"children\":[{\"id\":\"zz\"}]},{\"id\":7}]},\"n\":2.5}",
        "[{\"path\":\"$.tree.children[0].children[0].id\",\"keyword\":\"format\","
        "\"message\":\"must be a UUID\"},"
        "{\"path\":\"$.tree.children[1].id\",\"keyword\":\"type\",\"message\":\"must be a "
        "string\"},"
        "{\"path\":\"$.n\",\"keyword\":\"minimum\",\"message\":\"must be >= 3\"},"
        "{\"path\":\"$.n\",\"keyword\":\"type\",\"message\":\"must be an integer\"}]");
    jsonschema_free(&js);

    /* "#" is the whole schema */
    js = compile("{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#\"},"
                 "\"v\":{\"type\":\"integer\"}}}");
    cr_assert(valid(js, "{\"next\":{\"next\":{\"v\":1}}}"));
    one_problem(js, "{\"next\":{\"next\":{\"v\":\"x\"}}}", "$.next.next.v", "type");
    jsonschema_free(&js);

    refused("{\"$ref\":\"#/$defs/missing\"}", "does not resolve");
    refused("{\"properties\":{\"a\":{\"$ref\":\"other.json#/x\"}}}", "#/properties/a/$ref");
    refused("{\"$defs\":{\"a\":{\"properties\":{\"b\":{}}}},\"$ref\":\"#/$defs/a/properties/b\"}",
            "one level");
    refused("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
            "\"$ref\":\"#/$defs/a\"}",
            "cycle");
    refused("{\"$ref\":\"#\"}", "cycle");
    refused("{\"properties\":{\"a\":{\"$defs\":{\"x\":{}}}}}", "root of the schema only");
}

Test(jsonschema, boolean_schemas)
{
    jsonschema_t *js = compile("{\"properties\":{\"gone\":false,\"any\":true}}");
    cr_assert(valid(js, "{\"any\":[1,{}]}"));
    one_problem(js, "{\"gone\":1}", "$.gone", "false");
    jsonschema_free(&js);
    js = compile("true");
    cr_assert(valid(js, "{\"x\":1}"));
    jsonschema_free(&js);
}

Test(jsonschema, format_uuid)
{
    jsonschema_t *js = compile("{\"format\":\"uuid\"}");
    cr_assert(valid(js, "\"123e4567-e89b-12d3-a456-426614174000\""));
    cr_assert(valid(js, "\"123E4567-E89B-12D3-A456-426614174000\""), "upper case is accepted");
    cr_assert(valid(js, "\"00000000-0000-0000-0000-000000000000\""), "the nil UUID");
    cr_assert_not(valid(js, "\"123e4567e89b12d3a456426614174000\""), "no dashes");
    cr_assert_not(valid(js, "\"123e4567-e89b-12d3-a456-42661417400\""), "short");
    cr_assert_not(valid(js, "\"123e4567-e89b-12d3-a456-4266141740000\""), "long");
    cr_assert_not(valid(js, "\"123e4567-e89b-12d3-a456-42661417400g\""), "not hex");
    cr_assert_not(valid(js, "\"{123e4567-e89b-12d3-a456-426614174000}\""), "braces");
    cr_assert_not(valid(js, "\"123e4567-e89b-12d3a-456-426614174000\""), "dash misplaced");
    cr_assert(valid(js, "42"), "formats apply to strings only");
    jsonschema_free(&js);
}

Test(jsonschema, format_email)
{
    jsonschema_t *js = compile("{\"format\":\"email\"}");
    const char *good[] = {"a@b.io", "first.last+tag@sub.example.com", "x_y-z@ex-ample.org",
                          "O'Brien@example.ie", "user@xn--bcher-kva.example"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[300];
        snprintf(text, sizeof text, "\"%s\"", good[i]);
        cr_assert(valid(js, text), "%s should be an email", good[i]);
    }
    const char *bad[] = {
        "plain",    "@example.com", "a@",        "a@b",           "a@@b.io",
        "a b@c.io", ".a@b.io",      "a.@b.io",   "a..b@c.io",     "a@-b.io",
        "a@b-.io",  "a@b..io",      "a@b.io.",   "a@b.123",       "a@[1.2.3.4]",
        "a@b_c.io", "\\u00e9@b.io", "a@b.io\\n", "a\\u0000@b.io", "a\\\"b\\\"@example.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[300];
        snprintf(text, sizeof text, "\"%s\"", bad[i]);
        cr_assert_not(valid(js, text), "%s should not be an email", bad[i]);
    }
    /* length limits: 64 for the local part */
    char text[400];
    snprintf(text, sizeof text, "\"%0*d@b.io\"", 64, 0);
    cr_assert(valid(js, text));
    snprintf(text, sizeof text, "\"%0*d@b.io\"", 65, 0);
    cr_assert_not(valid(js, text));
    jsonschema_free(&js);
}

Test(jsonschema, format_uri)
{
    jsonschema_t *js = compile("{\"format\":\"uri\"}");
    const char *good[] = {"https://example.com",         "https://example.com/a/b?c=d&e=%20f#frag",
                          "http://[2001:db8::1]:8080/x", "mailto:a@b.io",
                          "urn:isbn:0451450523",         "file:///etc/hosts",
                          "s3+custom.x-y://bucket/key"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[300];
        snprintf(text, sizeof text, "\"%s\"", good[i]);
        cr_assert(valid(js, text), "%s should be a URI", good[i]);
    }
    const char *bad[] = {"/relative/path",        "example.com",
                         "//host/path",           "https://exa mple.com",
                         "https://a.com/%zz",     "https://a.com/%2",
                         "1http://a.com",         "http:",
                         "https://a.com/#a#b",    "http://a.com/[x]",
                         "https://a.com/\\u00e9", "ht tp://a.com",
                         "https://a.com/<x>",     ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[300];
        snprintf(text, sizeof text, "\"%s\"", bad[i]);
        cr_assert_not(valid(js, text), "%s should not be a URI", bad[i]);
    }
    jsonschema_free(&js);
}

Test(jsonschema, format_date_time)
{
    jsonschema_t *js = compile("{\"format\":\"date-time\"}");
    const char *good[] = {"2026-11-23T21:00:00Z",
                          "2026-11-23t21:00:00z",
                          "2026-11-23T21:00:00.123456+05:30",
                          "2024-02-29T00:00:00Z",
                          "2000-02-29T12:00:00-00:00",
                          "1998-12-31T23:59:60Z",
                          "1998-12-31T15:59:60.123-08:00",
                          "1999-01-01T05:29:60+05:30",
                          "0000-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[100];
        snprintf(text, sizeof text, "\"%s\"", good[i]);
        cr_assert(valid(js, text), "%s should be a date-time", good[i]);
    }
    const char *bad[] = {"2026-02-30T00:00:00Z",       "2023-02-29T00:00:00Z",
                         "1900-02-29T00:00:00Z",       "2026-04-31T00:00:00Z",
                         "2026-13-01T00:00:00Z",       "2026-00-10T00:00:00Z",
                         "2026-01-00T00:00:00Z",       "2026-01-01T24:00:00Z",
                         "2026-01-01T23:60:00Z",       "1998-12-31T22:59:60Z",
                         "1998-12-31T23:58:60Z",       "1998-12-31T23:59:61Z",
                         "1998-12-31T23:59:60+01:00",  "2026-01-01T00:00:00",
                         "2026-01-01 00:00:00Z",       "2026-01-01",
                         "2026-01-01T00:00Z",          "2026-01-01T00:00:00.Z",
                         "2026-01-01T00:00:00+24:00",  "2026-01-01T00:00:00+05:60",
                         "2026-01-01T00:00:00+0530",   "2026-01-01T00:00:00Zjunk",
                         "26-01-01T00:00:00Z",         "2026-1-01T00:00:00Z",
                         "2026-01-01T00:00:00\\u0000Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[100];
        snprintf(text, sizeof text, "\"%s\"", bad[i]);
        cr_assert_not(valid(js, text), "%s should not be a date-time", bad[i]);
    }
    jsonschema_free(&js);
}

Test(jsonschema, annotations_are_ignored)
{
    jsonschema_t *js = compile(
        "{\"title\":\"T\",\"description\":\"D\",\"default\":1,\"examples\":[1],\"readOnly\":true,"
        "\"writeOnly\":false,\"$comment\":\"c\",\"deprecated\":false,\"type\":\"integer\"}");
    cr_assert(valid(js, "5"));
    cr_assert_not(valid(js, "\"5\""));
    jsonschema_free(&js);
}

Test(jsonschema, schemas_outside_the_subset_are_refused)
{
    refused("{\"allOf\":[{}]}", "unsupported keyword \"allOf\"");
    refused("{\"properties\":{\"a\":{\"oneOf\":[]}}}",
            "#/properties/a: unsupported keyword \"oneOf\"");
    refused("{\"items\":{\"if\":{}}}", "#/items: unsupported keyword \"if\"");
    refused("{\"type\":\"string\",\"nullable\":true}", "nullable");
    refused("{\"format\":\"hostname\"}", "unsupported format \"hostname\"");
    refused("{\"type\":\"text\"}", "unknown type \"text\"");
    refused("{\"type\":[]}", "#/type");
    refused("{\"type\":[\"string\",\"string\"]}", "twice");
    refused("{\"minLength\":-1}", "#/minLength: must be a non-negative integer");
    refused("{\"maxItems\":1.5}", "#/maxItems");
    refused("{\"minimum\":\"1\"}", "#/minimum: must be a number");
    refused("{\"required\":\"a\"}", "#/required");
    refused("{\"required\":[\"a\",\"a\"]}", "twice");
    refused("{\"enum\":[]}", "#/enum");
    refused("{\"properties\":[]}", "#/properties");
    refused("{\"properties\":{\"a\":3}}", "#/properties/a: a schema must be an object");
    refused("{\"uniqueItems\":1}", "#/uniqueItems");
    refused("{\"exclusiveMinimum\":true}", "needs minimum");
    refused("[1]", "a schema must be an object or a boolean");
}

Test(jsonschema, bad_pattern_is_refused_at_compile)
{
    refused("{\"properties\":{\"slug\":{\"pattern\":\"[a-z\"}}}",
            "#/properties/slug/pattern: invalid POSIX extended regular expression");
    refused("{\"pattern\":\"a{2,1}\"}", "invalid POSIX extended regular expression");
    refused("{\"pattern\":5}", "#/pattern: must be a string");
}

Test(jsonschema, load_file)
{
    char path[] = "/tmp/fenta-jsonschema-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *doc = "{\"type\":\"object\",\"required\":[\"email\"],"
                      "\"properties\":{\"email\":{\"type\":\"string\",\"format\":\"email\"}}}";
    cr_assert_eq(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    char err[256];
    jsonschema_t *js = jsonschema_load_file(path, err, sizeof err);
    cr_assert_not_null(js, "%s", err);
    cr_assert(valid(js, "{\"email\":\"a@b.io\"}"));
    one_problem(js, "{\"email\":\"a@\"}", "$.email", "format");
    jsonschema_free(&js);

    /* duplicate keys in a schema file are a mistake, not a choice */
    FILE *f = fopen(path, "w");
    fputs("{\"type\":\"string\",\"type\":\"integer\"}", f);
    fclose(f);
    cr_assert_null(jsonschema_load_file(path, err, sizeof err));
    cr_assert(strstr(err, path), "message names the file: %s", err);

    f = fopen(path, "w");
    fputs("{\"type\":\"string\",\"anyOf\":[]}", f);
    fclose(f);
    cr_assert_null(jsonschema_load_file(path, err, sizeof err));
    cr_assert(strstr(err, "anyOf"), "%s", err);
    unlink(path);

    cr_assert_null(jsonschema_load_file("/nonexistent/schema.json", err, sizeof err));
    cr_assert(strstr(err, "/nonexistent/schema.json"), "%s", err);
}

Test(jsonschema, problems_order_is_stable)
{
    jsonschema_t *js = compile("{\"required\":[\"z\",\"a\"],\"properties\":{\"m\":{\"type\":"
                               "\"string\"},\"b\":{\"type\":\"string\"}}}");
    const char *inst = "{\"m\":1,\"b\":2}";
    const char *want = "[{\"path\":\"$.z\",\"keyword\":\"required\",\"message\":\"is required\"},"
                       "{\"path\":\"$.a\",\"keyword\":\"required\",\"message\":\"is required\"},"
                       "{\"path\":\"$.m\",\"keyword\":\"type\",\"message\":\"must be a string\"},"
                       "{\"path\":\"$.b\",\"keyword\":\"type\",\"message\":\"must be a string\"}]";
    for (int i = 0; i < 20; i++)
        problems_are(js, inst, want);
    jsonschema_free(&js);
}

Test(jsonschema, deep_instances_do_not_crash)
{
    jsonschema_t *js = compile("{\"items\":{\"$ref\":\"#\"}}");
    json_t *root = json_array();
    json_t *cur = root;
    for (int i = 0; i < 5000; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    json_t *problems = NULL;
    cr_assert_eq(jsonschema_validate(js, root, &problems), FENTA_EINVAL);
    cr_assert(strstr(json_string_value(json_object_get(json_array_get(problems, 0), "message")),
                     "nests deeper"));
    json_decref(problems);
    json_decref(root);
    jsonschema_free(&js);
}

Test(jsonschema, long_enum_messages_are_cut_short)
{
    json_t *vals = json_array();
    for (int i = 0; i < 50; i++)
        json_array_append_new(vals, json_sprintf("caf\u00e9-value-number-%d", i));
    json_t *schema = json_pack("{s:o}", "enum", vals);
    jsonschema_t *js = jsonschema_compile(schema, NULL, 0);
    json_decref(schema);
    cr_assert_not_null(js);
    json_t *inst = json_string("other");
    json_t *problems = NULL;
    cr_assert_eq(jsonschema_validate(js, inst, &problems), FENTA_EINVAL);
    const char *msg = json_string_value(json_object_get(json_array_get(problems, 0), "message"));
    cr_assert_not_null(msg);
    cr_assert_lt(strlen(msg), 240, "%s", msg);
    cr_assert(strstr(msg, "\"caf\u00e9-value-number-0\""), "%s", msg);
    cr_assert_str_eq(msg + strlen(msg) - 3, "...");
    json_decref(problems);
    json_decref(inst);
    jsonschema_free(&js);
}

/* One compiled schema, many threads validating at once (the server's case). */
static void *validate_many(void *arg)
{
    const jsonschema_t *js = arg;
    json_t *good =
        json_loads("{\"slug\":\"abc\",\"kind\":{\"k\":[1]},\"tags\":[\"a\",\"b\"]}", 0, NULL);
    json_t *bad =
        json_loads("{\"slug\":\"ABC\",\"kind\":{\"k\":[2]},\"tags\":[\"a\",\"a\"]}", 0, NULL);
    long wrong = 0;
    for (int i = 0; i < 3000; i++) {
        json_t *problems = NULL;
        if (jsonschema_validate(js, good, NULL) != 0)
            wrong++;
        if (jsonschema_validate(js, bad, &problems) != FENTA_EINVAL ||
            json_array_size(problems) != 3)
            wrong++;
        json_decref(problems);
    }
    json_decref(good);
    json_decref(bad);
    return (void *)wrong;
}

Test(jsonschema, one_schema_many_threads)
{
    jsonschema_t *js = compile("{\"properties\":{\"slug\":{\"pattern\":\"^[a-z]+$\"},"
                               "\"kind\":{\"enum\":[{\"k\":[1]},{\"k\":[3]}]},"
                               "\"tags\":{\"uniqueItems\":true}}}");
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, validate_many, js), 0);
    for (int i = 0; i < 4; i++) {
        void *wrong;
        pthread_join(th[i], &wrong);
        cr_assert_null(wrong, "thread %d saw %ld wrong results", i, (long)wrong);
    }
    jsonschema_free(&js);
}
