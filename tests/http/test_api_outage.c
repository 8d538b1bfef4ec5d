/* test_api_outage.c - PostgreSQL going away under a running `fenta serve`:
 * requests that need it answer 503 with Retry-After (never hang, never
 * crash), /readyz says not ready, /healthz stays up, and when the database
 * comes back the same process serves again without a restart. Its own
 * binary, because it stops the server's database. */
#include "storage/embedded.h"
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

FX_API_SERVER(NULL)

Test(api_outage, database_stopped_then_started, .timeout = 120)
{
    json_t *s = fx_register("olga");
    fx_resp_t r = fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.bearer = fx_token(s)});
    cr_assert_eq(r.status, 200);
    fx_resp_free(&r);

    cr_assert_eq(embedded_pg_stop_dir(fx_api_data_dir()), 0, "stop the server's PostgreSQL");
    for (int i = 0; i < 3; i++) {
        r = fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.bearer = fx_token(s), .http2 = i == 1});
        cr_assert_eq(r.status, 503, "database down: %ld %s", r.status, r.body);
        char v[32];
        cr_assert_not_null(fx_header(&r, "retry-after", v, sizeof v));
        cr_assert(json_is_object(json_object_get(r.json, "error")));
        fx_resp_free(&r);
    }
    r = fx_req("POST", "/v1/auth/login",
               "{\"email\":\"a@example.com\",\"password\":\"whatever12\"}", NULL);
    cr_assert_eq(r.status, 503, "%ld %s", r.status, r.body);
    fx_resp_free(&r);
    r = fx_req("GET", "/readyz", NULL, NULL);
    cr_assert_eq(r.status, 503);
    fx_resp_free(&r);
    r = fx_req("GET", "/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200, "the process is alive");
    fx_resp_free(&r);

    int err = 0;
    embedded_pg_t *pg = embedded_pg_start(fx_api_data_dir(), &err);
    cr_assert_not_null(pg, "restart PostgreSQL: %d", err);
    embedded_pg_release(&pg); /* leave it running for the server */
    long st = 0;
    for (int i = 0; i < 100 && st != 200; i++) {
        r = fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.bearer = fx_token(s)});
        st = r.status;
        cr_assert(st == 200 || st == 503, "%ld %s", st, r.body);
        fx_resp_free(&r);
        if (st != 200)
            usleep(100000);
    }
    cr_assert_eq(st, 200, "serving again without a restart");
    r = fx_req("GET", "/readyz", NULL, NULL);
    cr_assert_eq(r.status, 200);
    fx_resp_free(&r);
    json_decref(s);
}
