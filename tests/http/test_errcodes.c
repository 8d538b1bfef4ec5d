/* test_errcodes.c - schemas/errors.json and the code that answers from it
 * (http/errcodes.c): the table loads and refuses what is not a table, and
 * every error code the sources under http/ and actors/ answer is in it,
 * with the status the source gives where a source still names one (the
 * server's own answers: router, body reading, h2o, object downloads). A
 * code missing from the table would reach clients as 500 internal. */
#include "http/errcodes.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load_errors(void)
{
    json_error_t e;
    json_t *j = json_load_file(FENTA_SOURCE_SCHEMAS "/errors.json", JSON_REJECT_DUPLICATES, &e);
    cr_assert_not_null(j, "errors.json:%d: %s", e.line, e.text);
    return j;
}

static errcodes_t *table(void)
{
    json_t *doc = load_errors();
    char err[256] = "";
    errcodes_t *t = errcodes_new(doc, err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    json_decref(doc);
    return t;
}

Test(errcodes, the_table_gives_each_code_its_status_and_meaning)
{
    errcodes_t *t = table();
    cr_expect_eq(errcodes_status(t, "not_found"), 404);
    cr_expect_eq(errcodes_status(t, "invalid_workflow"), 422);
    cr_expect_eq(errcodes_status(t, "malformed_workflow"), 400);
    cr_expect_eq(errcodes_status(t, "rate_limited"), 429);
    cr_expect_eq(errcodes_status(t, "no_such_code"), 0);
    cr_expect_eq(errcodes_status(t, NULL), 0);
    cr_expect_null(errcodes_meaning(t, "no_such_code"));
    cr_expect_not_null(errcodes_meaning(t, "over_budget"));
    for (size_t i = 1; i < errcodes_count(t); i++)
        cr_expect_lt(strcmp(errcodes_code(t, i - 1), errcodes_code(t, i)), 0);
    errcodes_destroy(&t);
    cr_expect_null(t);
    errcodes_destroy(&t); /* NULL is fine */
}

Test(errcodes, what_is_not_a_table_of_codes_is_refused_with_a_message)
{
    const char *bad[] = {
        "{}",
        "{\"errors\": {}}",
        "{\"errors\": {\"Bad-Code\": {\"status\": 400, \"meaning\": \"x\"}}}",
        "{\"errors\": {\"ok\": {\"status\": 200, \"meaning\": \"x\"}}}",
        "{\"errors\": {\"ok\": {\"status\": 400}}}",
        "{\"errors\": {\"ok\": {\"status\": \"400\", \"meaning\": \"x\"}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *doc = json_loads(bad[i], 0, NULL);
        cr_assert_not_null(doc);
        char err[256] = "";
        errcodes_t *t = errcodes_new(doc, err, sizeof err);
        cr_expect_null(t, "%s was accepted", bad[i]);
        cr_expect_neq(err[0], 0, "%s: no message", bad[i]);
        errcodes_destroy(&t);
        json_decref(doc);
    }
}

/* ---- the sources ---------------------------------------------------------------- */

static errcodes_t *g_table;
static int g_found;      /* codes (with or without a status) found in the sources */
static json_t *g_used;   /* every code found, as a set */
static char g_bad[8192]; /* what is wrong, file:code */

static void bad(const char *path, const char *what)
{
    size_t n = strlen(g_bad);
    snprintf(g_bad + n, sizeof g_bad - n, "  %s: %s\n", path + strlen(FENTA_SOURCE_SCHEMAS "/../"),
             what);
}

/* The text of p with every run of white space made one space, so a call
 * clang-format broke over lines reads as one. */
static char *flat(const char *p)
{
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f, "%s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *raw = malloc((size_t)n + 1), *out = malloc((size_t)n + 1);
    cr_assert(raw && out);
    size_t got = fread(raw, 1, (size_t)n, f);
    fclose(f);
    raw[got] = 0;
    size_t o = 0;
    for (size_t i = 0; i < got; i++) {
        bool sp = raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\t' || raw[i] == '\r';
        if (sp && o > 0 && out[o - 1] == ' ')
            continue;
        out[o++] = sp ? ' ' : raw[i];
    }
    out[o] = 0;
    free(raw);
    return out;
}

/* Each match of re in text: group code_g is a code, group status_g (0 =
 * none) the status the source gives it. */
static void scan(const char *path, const char *text, const char *re, int status_g, int code_g)
{
    regex_t rx;
    cr_assert_eq(regcomp(&rx, re, REG_EXTENDED), 0, "%s", re);
    regmatch_t m[4];
    for (const char *p = text; regexec(&rx, p, 4, m, 0) == 0; p += m[0].rm_eo) {
        char code[64], status[8] = "", msg[160];
        snprintf(code, sizeof code, "%.*s", (int)(m[code_g].rm_eo - m[code_g].rm_so),
                 p + m[code_g].rm_so);
        if (status_g)
            snprintf(status, sizeof status, "%.*s", (int)(m[status_g].rm_eo - m[status_g].rm_so),
                     p + m[status_g].rm_so);
        g_found++;
        json_object_set_new(g_used, code, json_true());
        int want = errcodes_status(g_table, code);
        if (!want) {
            snprintf(msg, sizeof msg, "\"%s\" is not in schemas/errors.json", code);
            bad(path, msg);
        } else if (status[0] && atoi(status) != want) {
            snprintf(msg, sizeof msg, "\"%s\" answered with %s, errors.json says %d", code, status,
                     want);
            bad(path, msg);
        }
    }
    regfree(&rx);
}

static int visit(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    size_t n = strlen(path);
    if (flag != FTW_F || n < 2 || strcmp(path + n - 2, ".c") != 0)
        return 0;
    char *t = flat(path);
    const char *C = "\"([a-z_]+)\"";
    char re[256];
    /* The API application: by code alone. */
    snprintf(re, sizeof re, "app__fail\\( ?req, ?%s", C);
    scan(path, t, re, 0, 1);
    snprintf(re, sizeof re, "app__fail\\( ?req, ?[^,\"?]+\\? ?%s ?: ?%s", C, C);
    scan(path, t, re, 0, 1);
    scan(path, t, re, 0, 2);
    snprintf(re, sizeof re, "app__sources_ok\\([^;\"]*\"[^\"]*\", ?%s\\)", C);
    scan(path, t, re, 0, 1);
    /* The domain: codes a handler answers (job_insert's problem). */
    snprintf(re, sizeof re, "refuse\\( ?problem, ?(FENTA_[A-Z]+, ?)?%s", C);
    scan(path, t, re, 0, 2);
    /* The server's own answers still name their status. */
    snprintf(re, sizeof re, "(http_respond_error|send_error)\\( ?[a-z&>.-]+, ?([0-9]{3}), ?%s", C);
    scan(path, t, re, 2, 3);
    /* The object server's answers (HEAD or not, then the status). */
    snprintf(re, sizeof re, "send_error\\( ?req, ?[a-z]+, ?([0-9]{3}), ?%s", C);
    scan(path, t, re, 1, 2);
    snprintf(re, sizeof re, "reply_error\\( ?req, ?st, ?job, ?([0-9]{3}), ?%s", C);
    scan(path, t, re, 1, 2);
    snprintf(re, sizeof re, "case ([0-9]{3}): ?return %s;", C);
    scan(path, t, re, 1, 2);
    free(t);
    return 0;
}

Test(errcodes, every_code_the_sources_answer_is_in_the_table_with_its_status)
{
    g_table = table();
    g_used = json_object();
    g_bad[0] = 0;
    g_found = 0;
    cr_assert_eq(nftw(FENTA_SOURCE_SCHEMAS "/../http", visit, 16, FTW_PHYS), 0);
    cr_assert_eq(nftw(FENTA_SOURCE_SCHEMAS "/../actors", visit, 16, FTW_PHYS), 0);
    /* ~150 call sites today: a scan that finds few has stopped reading them. */
    cr_assert_gt(g_found, 100, "only %d error answers found: has the helper been renamed?",
                 g_found);
    cr_expect_eq(g_bad[0], 0, "error codes that disagree with schemas/errors.json:\n%s", g_bad);
    /* And the other way: a code no source answers is a stale promise to clients. */
    char unused[2048] = "";
    for (size_t i = 0; i < errcodes_count(g_table); i++) {
        const char *c = errcodes_code(g_table, i);
        if (!json_object_get(g_used, c) && strlen(unused) + strlen(c) + 2 < sizeof unused)
            strcat(strcat(unused, " "), c);
    }
    cr_expect_eq(unused[0], 0, "codes in errors.json that no source answers:%s", unused);
    json_decref(g_used);
    errcodes_destroy(&g_table);
}
