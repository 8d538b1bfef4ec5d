/* test_workflows_db.c - the owners of what a job runs from, against a real
 * PostgreSQL: workflows and their versions (storage/workflows_db.h), their
 * estimates (estimates_db.h) and montage templates (templates_db.h). One
 * suite for the three, each a few tests, so the binary starts one cluster.
 * Every failure is its FENTA_E* code: a missing row, a deleted one and
 * another organisation's are all not found; a second live template of one
 * name is EEXIST. */
#include "runtime/error.h"
#include "storage/estimates_db.h"
#include "storage/pg.h"
#include "storage/templates_db.h"
#include "storage/workflows_db.h"
#include "tests/support/pg_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pg_pool_t *pool;
static pg_conn_t *c;
static char org_a[37], org_b[37];

#define NOBODY "00000000-0000-4000-8000-000000000000"

static void setup(void)
{
    c = fx_pg_fresh_conn(2, &pool);
    fx_pg_org(pool, "a", org_a);
    fx_pg_org(pool, "b", org_b);
}

static void teardown(void)
{
    fx_pg_fresh_conn_end(&pool, &c);
}

TestSuite(workflows_db, .init = setup, .fini = teardown, .timeout = 60);

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A workflow "w" of org_a with one node named node; its id into id. */
static void new_workflow(const char *node, char id[37])
{
    json_t *g = json_pack("{s[{ss ss}]}", "nodes", "id", node, "type", "script.generate");
    json_t *row = NULL;
    cr_assert_eq(workflows_db_create(c, org_a, "w", NULL, NULL, g, &row), 0);
    snprintf(id, 37, "%s", str(row, "id"));
    cr_expect_eq(json_integer_value(json_object_get(row, "version")), 1);
    cr_expect_str_eq(str(row, "description"), "");
    cr_expect_str_eq(str(row, "org_id"), org_a);
    json_decref(row);
    json_decref(g);
}

static const char *first_node(const json_t *row)
{
    return str(json_array_get(json_object_get(json_object_get(row, "graph"), "nodes"), 0), "id");
}

Test(workflows_db, every_saved_graph_is_a_new_version)
{
    char id[37];
    new_workflow("one", id);
    json_t *g2 = json_pack("{s[{ss ss}]}", "nodes", "id", "two", "type", "script.generate");
    cr_assert_eq(workflows_db_update(c, id, org_a, "renamed", NULL, g2, NULL), 0);
    /* a rename alone keeps the version */
    cr_assert_eq(workflows_db_update(c, id, org_a, NULL, "d", NULL, NULL), 0);
    json_decref(g2);
    json_t *row = NULL;
    cr_assert_eq(workflows_db_get(c, id, org_a, NULL, &row), 0);
    cr_expect_eq(json_integer_value(json_object_get(row, "version")), 2);
    cr_expect_str_eq(str(row, "name"), "renamed");
    cr_expect_str_eq(str(row, "description"), "d");
    cr_expect_str_eq(first_node(row), "two");
    json_decref(row);
    cr_assert_eq(workflows_db_get(c, id, org_a, "1", &row), 0);
    cr_expect_str_eq(first_node(row), "one");
    cr_expect_eq(json_integer_value(json_object_get(row, "version")), 1);
    json_decref(row);
    cr_expect_eq(workflows_db_get(c, id, org_a, "3", &row), FENTA_ENOTFOUND);
    db_page_rows_t page;
    cr_assert_eq(workflows_db_versions(c, id, org_a, &(db_page_t){.limit = 10}, &page), 0);
    cr_assert_eq(json_array_size(page.rows), 2);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(page.rows, 0), "version")), 1);
    cr_expect(json_is_null(json_object_get(json_array_get(page.rows, 0), "created_by")));
    db_page_rows_free(&page);
}

Test(workflows_db, another_organisations_or_a_deleted_workflow_is_not_found)
{
    char id[37];
    new_workflow("one", id);
    json_t *row = NULL;
    cr_expect_eq(workflows_db_get(c, id, org_b, NULL, &row), FENTA_ENOTFOUND);
    cr_expect_null(row);
    cr_expect_eq(workflows_db_exists(c, id, org_b), FENTA_ENOTFOUND);
    cr_expect_eq(workflows_db_update(c, id, org_b, "x", NULL, NULL, NULL), FENTA_ENOTFOUND);
    cr_expect_eq(workflows_db_delete(c, id, org_b), FENTA_ENOTFOUND);
    db_page_rows_t page;
    cr_assert_eq(workflows_db_versions(c, id, org_b, &(db_page_t){.limit = 10}, &page), 0);
    cr_expect_eq(json_array_size(page.rows), 0);
    db_page_rows_free(&page);
    cr_assert_eq(workflows_db_list(c, org_b, &(db_page_t){.limit = 10}, &page), 0);
    cr_expect_eq(json_array_size(page.rows), 0);
    db_page_rows_free(&page);

    cr_expect_eq(workflows_db_exists(c, id, org_a), 0);
    cr_expect_eq(workflows_db_delete(c, id, org_a), 0);
    cr_expect_eq(workflows_db_delete(c, id, org_a), FENTA_ENOTFOUND, "deleted once");
    cr_expect_eq(workflows_db_get(c, id, org_a, NULL, &row), FENTA_ENOTFOUND);
    cr_expect_eq(workflows_db_exists(c, id, org_a), FENTA_ENOTFOUND);
    cr_expect_eq(workflows_db_get(c, NOBODY, org_a, NULL, &row), FENTA_ENOTFOUND);
    cr_expect_eq(workflows_db_get(c, "nope", org_a, NULL, &row), FENTA_EINVAL);
    cr_assert_eq(workflows_db_list(c, org_a, &(db_page_t){.limit = 10}, &page), 0);
    cr_expect_eq(json_array_size(page.rows), 0);
    db_page_rows_free(&page);
}

Test(workflows_db, an_estimate_keeps_its_price_inputs_and_organisation)
{
    char id[37], est[37], expires[40];
    new_workflow("one", id);
    json_t *detail = json_pack("{sf s{s{ss}}}", "total", 3.0, "inputs", "one", "topic", "sky");
    cr_assert_eq(estimates_db_create(c, org_a, id, 1, 3.004, detail, est, expires), 0);
    json_decref(detail);
    cr_expect(strlen(expires) == 27 && expires[26] == 'Z', "expires_at %s", expires);
    estimates_db_row_t e;
    cr_assert_eq(estimates_db_get(c, est, id, org_a, &e), 0);
    cr_expect_eq(e.version, 1);
    cr_expect_float_eq(e.credits, 3.0, 1e-9);
    cr_expect_not(e.expired);
    cr_expect_str_eq(str(json_object_get(e.inputs, "one"), "topic"), "sky");
    estimates_db_row_free(&e);
    cr_expect_eq(estimates_db_get(c, est, id, org_b, &e), FENTA_ENOTFOUND);
    cr_expect_eq(estimates_db_get(c, est, NOBODY, org_a, &e), FENTA_ENOTFOUND);
    cr_expect_null(e.inputs);
}

Test(workflows_db, templates_are_per_organisation_and_named_once)
{
    json_t *doc = json_pack("{ss}", "base", "bold");
    json_t *row = NULL;
    cr_assert_eq(templates_db_create(c, org_a, "mine", "d", doc, NULL, &row), 0);
    char id[37];
    snprintf(id, sizeof id, "%s", str(row, "id"));
    cr_expect_str_eq(str(json_object_get(row, "template"), "base"), "bold");
    cr_expect_str_eq(str(row, "description"), "d");
    json_decref(row);
    cr_expect_eq(templates_db_create(c, org_a, "mine", NULL, doc, NULL, &row), FENTA_EEXIST);
    cr_expect_null(row);
    /* the name is the organisation's: another may use it */
    cr_assert_eq(templates_db_create(c, org_b, "mine", NULL, doc, NULL, &row), 0);
    json_decref(row);

    json_t *got = NULL;
    cr_assert_eq(templates_db_doc(c, org_a, "mine", &got), 0);
    cr_expect_str_eq(str(got, "base"), "bold");
    json_decref(got);
    cr_expect_eq(templates_db_doc(c, org_a, "other", &got), FENTA_ENOTFOUND);
    cr_expect_eq(templates_db_get(c, id, org_b, &row), FENTA_ENOTFOUND);
    cr_expect_eq(templates_db_update(c, id, org_b, "x", NULL, &row), FENTA_ENOTFOUND);
    cr_expect_eq(templates_db_delete(c, id, org_b), FENTA_ENOTFOUND);

    json_t *doc2 = json_pack("{ss}", "base", "pop");
    cr_assert_eq(templates_db_update(c, id, org_a, NULL, doc2, &row), 0);
    cr_expect_str_eq(str(json_object_get(row, "template"), "base"), "pop");
    cr_expect_str_eq(str(row, "description"), "d", "unchanged");
    json_decref(row);
    json_decref(doc2);

    cr_expect_eq(templates_db_delete(c, id, org_a), 0);
    cr_expect_eq(templates_db_get(c, id, org_a, &row), FENTA_ENOTFOUND);
    cr_expect_eq(templates_db_doc(c, org_a, "mine", &got), FENTA_ENOTFOUND);
    /* a deleted template frees its name */
    cr_assert_eq(templates_db_create(c, org_a, "mine", NULL, doc, NULL, &row), 0);
    json_decref(row);
    json_decref(doc);
}

Test(workflows_db, template_pages_run_both_ways_without_repeats)
{
    json_t *doc = json_object();
    char names[5][8];
    for (int i = 0; i < 5; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        json_t *row = NULL;
        cr_assert_eq(templates_db_create(c, org_a, names[i], NULL, doc, NULL, &row), 0);
        json_decref(row);
    }
    json_decref(doc);
    for (int desc = 0; desc < 2; desc++) {
        db_page_t page = {.limit = 2, .desc = desc};
        char at[64] = "", idb[40] = "";
        int seen = 0;
        for (int k = 0; k < 3; k++) {
            db_page_rows_t rows;
            cr_assert_eq(templates_db_list(c, org_a, &page, &rows), 0);
            size_t i;
            json_t *r;
            json_array_foreach(rows.rows, i, r)
            {
                int want = desc ? 4 - seen : seen;
                cr_expect_str_eq(str(r, "name"), names[want], "desc %d row %d", desc, seen);
                seen++;
            }
            cr_expect_eq(rows.next_id == NULL, k == 2);
            if (rows.next_id) {
                snprintf(at, sizeof at, "%s", rows.next_at);
                snprintf(idb, sizeof idb, "%s", rows.next_id);
                page.after_at = at;
                page.after_id = idb;
            }
            db_page_rows_free(&rows);
        }
        cr_expect_eq(seen, 5);
    }
}
