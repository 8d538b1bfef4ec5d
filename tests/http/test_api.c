/* test_api.c - the API through the real `fenta serve` on its embedded
 * PostgreSQL, over real sockets, HTTP/1.1 and HTTP/2: auth flows, token
 * attacks, the permission table for every role, organisation isolation,
 * validation, limits, idempotency, pagination and hostile input. */
#include "http/jwt.h"
#include "runtime/clock.h"
#include "tests/support/api_fixture.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

FX_API_SERVER(NULL)

static char *str(const char *fmt, const char *a, const char *b)
{
    char *s = NULL;
    cr_assert(asprintf(&s, fmt, a, b) > 0);
    return s;
}

#define EXPECT_ERROR(r, st, code_)                                                                 \
    do {                                                                                           \
        cr_assert_eq((r).status, st, "status %ld, body %s", (r).status, (r).body);                 \
        json_t *e_ = json_object_get((r).json, "error");                                           \
        cr_assert(json_is_object(e_), "error body: %s", (r).body);                                 \
        cr_assert_str_eq(json_string_value(json_object_get(e_, "code")), code_, "%s", (r).body);   \
        cr_assert(json_is_string(json_object_get(e_, "message")));                                 \
    } while (0)

/* ---- auth flows ---------------------------------------------------------------- */

Test(api, register_login_me_refresh_logout)
{
    json_t *s = fx_register("ana");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(s, "org"), "role")),
                     "owner");
    cr_assert_str_eq(json_string_value(json_object_get(s, "token_type")), "Bearer");
    cr_assert_eq(json_integer_value(json_object_get(s, "expires_in")), 900);
    const char *email = json_string_value(json_object_get(json_object_get(s, "user"), "email"));

    fx_resp_t me = fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.bearer = fx_token(s)});
    cr_assert_eq(me.status, 200, "%s", me.body);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(me.json, "user"), "email")),
                     email);
    cr_assert_eq(json_array_size(json_object_get(me.json, "orgs")), 1);
    fx_resp_free(&me);

    char *login = str("{\"email\":\"%s\",\"password\":\"%s\"}", email, "correct horse battery");
    fx_resp_t l = fx_req("POST", "/v1/auth/login", login, NULL);
    cr_assert_eq(l.status, 200, "%s", l.body);
    fx_resp_free(&l);
    free(login);
    login = str("{\"email\":\"%s\",\"password\":\"%s\"}", email, "wrong password!!");
    l = fx_req("POST", "/v1/auth/login", login, NULL);
    EXPECT_ERROR(l, 401, "invalid_credentials");
    fx_resp_free(&l);
    free(login);
    l = fx_req("POST", "/v1/auth/login",
               "{\"email\":\"nobody-at-all@example.com\",\"password\":\"whatever123\"}", NULL);
    EXPECT_ERROR(l, 401, "invalid_credentials"); /* same answer as a wrong password */
    fx_resp_free(&l);

    /* Refresh rotates; the old refresh token presented again revokes the session. */
    const char *rt1 = json_string_value(json_object_get(s, "refresh_token"));
    char *body = str("{\"refresh_token\":\"%s\"%s}", rt1, "");
    fx_resp_t r1 = fx_req("POST", "/v1/auth/refresh", body, NULL);
    cr_assert_eq(r1.status, 200, "%s", r1.body);
    const char *rt2 = json_string_value(json_object_get(r1.json, "refresh_token"));
    const char *at2 = json_string_value(json_object_get(r1.json, "access_token"));
    cr_assert_str_neq(rt1, rt2);
    fx_resp_t again = fx_req("POST", "/v1/auth/refresh", body, NULL);
    EXPECT_ERROR(again, 401, "refresh_token_reused");
    fx_resp_free(&again);
    /* The whole family is gone: the newest refresh token and its access token too. */
    char *body2 = str("{\"refresh_token\":\"%s\"%s}", rt2, "");
    fx_resp_t r2 = fx_req("POST", "/v1/auth/refresh", body2, NULL);
    cr_assert_eq(r2.status, 401);
    fx_resp_free(&r2);
    me = fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.bearer = at2});
    cr_assert_eq(me.status, 401);
    fx_resp_free(&me);
    free(body);
    free(body2);
    fx_resp_free(&r1);

    /* Logout ends a session at once. */
    json_t *s2 = fx_register("ben");
    fx_resp_t lo = fx_req("POST", "/v1/auth/logout", NULL, &(fx_opts_t){.bearer = fx_token(s2)});
    cr_assert_eq(lo.status, 204, "%s", lo.body);
    fx_resp_free(&lo);
    me = fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.bearer = fx_token(s2)});
    EXPECT_ERROR(me, 401, "unauthorized");
    fx_resp_free(&me);
    json_decref(s);
    json_decref(s2);
}

Test(api, duplicate_email_is_a_conflict_case_insensitively)
{
    json_t *s = fx_register("cara");
    const char *email = json_string_value(json_object_get(json_object_get(s, "user"), "email"));
    char up[256];
    snprintf(up, sizeof up, "%s", email);
    up[0] = (char)(up[0] - 'a' + 'A');
    char *body = str("{\"email\":\"%s\",\"password\":\"correct horse battery\",\"name\":\"%s\"}",
                     up, "Cara");
    fx_resp_t r = fx_req("POST", "/v1/auth/register", body, NULL);
    EXPECT_ERROR(r, 409, "email_taken");
    fx_resp_free(&r);
    free(body);
    json_decref(s);
}

/* ---- token attacks --------------------------------------------------------------- */

static jwts_t *server_signer(void)
{
    char path[700], secret[256] = "";
    snprintf(path, sizeof path, "%s/jwt_secret", fx_api_data_dir());
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert(fgets(secret, sizeof secret, f));
    fclose(f);
    jwts_config_t c;
    jwts_config_init(&c);
    c.key = (const unsigned char *)secret;
    c.key_len = strlen(secret);
    c.issuer = "fenta";
    c.audience = "fenta-api";
    jwts_t *j = jwts_new(&c);
    cr_assert_not_null(j);
    return j;
}

static long me_status(const char *token)
{
    fx_resp_t r = fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.bearer = token});
    long st = r.status;
    fx_resp_free(&r);
    return st;
}

Test(api, forged_expired_and_tampered_tokens_are_refused)
{
    json_t *s = fx_register("dan");
    const char *good = fx_token(s);
    cr_assert_eq(me_status(good), 200);
    /* The session id of the real token, so only the flaw under test differs. */
    jwts_t *j = server_signer();
    jwts_claims_t cl;
    cr_assert_eq(jwts_verify(j, good, strlen(good), &cl, NULL), 0);
    char tok[JWTS_TOKEN_MAX + 1];

    clock_fake_set(clock_now_ms() - 3600 * 1000); /* signed an hour ago: expired */
    cr_assert_eq(jwts_sign(j, cl.sub, cl.org, cl.sid, tok, sizeof tok, NULL), 0);
    clock_fake_clear();
    cr_assert_eq(me_status(tok), 401, "expired");

    clock_fake_set(clock_now_ms() + 3600 * 1000); /* not valid for an hour */
    cr_assert_eq(jwts_sign(j, cl.sub, cl.org, cl.sid, tok, sizeof tok, NULL), 0);
    clock_fake_clear();
    cr_assert_eq(me_status(tok), 401, "not yet valid");

    /* alg none: header {"alg":"none","typ":"JWT"}, the real payload, no signature. */
    const char *dot = strchr(good, '.');
    const char *dot2 = strchr(dot + 1, '.');
    snprintf(tok, sizeof tok, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.%.*s.", (int)(dot2 - dot - 1),
             dot + 1);
    cr_assert_eq(me_status(tok), 401, "alg none");

    /* Tampered payload: one character changed. */
    snprintf(tok, sizeof tok, "%s", good);
    char *p = strchr(tok, '.') + 5;
    *p = *p == 'A' ? 'B' : 'A';
    cr_assert_eq(me_status(tok), 401, "tampered");

    /* Right claims, wrong key. */
    jwts_config_t c;
    jwts_config_init(&c);
    c.key = (const unsigned char *)"another-key-another-key-another-key!!";
    c.key_len = strlen((const char *)c.key);
    c.issuer = "fenta";
    c.audience = "fenta-api";
    jwts_t *other = jwts_new(&c);
    cr_assert_eq(jwts_sign(other, cl.sub, cl.org, cl.sid, tok, sizeof tok, NULL), 0);
    cr_assert_eq(me_status(tok), 401, "wrong key");
    jwts_destroy(&other);

    cr_assert_eq(me_status("garbage"), 401);
    cr_assert_eq(me_status(""), 401);
    fx_resp_t r = fx_req(
        "GET", "/v1/me", NULL,
        &(fx_opts_t){.headers = (const char *const[]){"Authorization: Basic dXNlcjpwYXNz", NULL}});
    EXPECT_ERROR(r, 401, "unauthorized");
    fx_resp_free(&r);
    jwts_destroy(&j);
    json_decref(s);
}

/* ---- personal access tokens ------------------------------------------------------- */

static json_t *make_pat(const json_t *s, const char *scopes)
{
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"ci\",\"scopes\":%s}", scopes);
    fx_resp_t r = fx_req("POST", "/v1/tokens", body, &(fx_opts_t){.bearer = fx_token(s)});
    cr_assert_eq(r.status, 201, "%s", r.body);
    json_t *t = json_incref(r.json);
    fx_resp_free(&r);
    return t;
}

Test(api, pats_scopes_revocation_and_listing)
{
    json_t *s = fx_register("eve");
    json_t *ro = make_pat(s, "[\"read\"]");
    const char *secret = json_string_value(json_object_get(ro, "secret"));
    cr_assert(strncmp(secret, "fenta_pat_", 10) == 0);
    /* read scope: reading works, creating an organisation does not. */
    cr_assert_eq(me_status(secret), 200);
    fx_resp_t r = fx_req("POST", "/v1/orgs", "{\"name\":\"x\"}", &(fx_opts_t){.bearer = secret});
    EXPECT_ERROR(r, 403, "insufficient_scope");
    fx_resp_free(&r);
    /* A read token cannot mint an admin token. */
    r = fx_req("POST", "/v1/tokens", "{\"name\":\"up\",\"scopes\":[\"admin\"]}",
               &(fx_opts_t){.bearer = secret});
    cr_assert_eq(r.status, 403, "%s", r.body);
    fx_resp_free(&r);

    /* Listed without the secret, with last_used_at set. */
    r = fx_req("GET", "/v1/tokens", NULL, &(fx_opts_t){.bearer = fx_token(s)});
    cr_assert_eq(r.status, 200);
    json_t *first = json_array_get(json_object_get(r.json, "data"), 0);
    cr_assert_null(strstr(r.body, secret), "the secret is never shown again");
    cr_assert(json_is_string(json_object_get(first, "last_used_at")));
    fx_resp_free(&r);

    /* Revoked: refused at once. */
    char path[128];
    snprintf(path, sizeof path, "/v1/tokens/%s",
             json_string_value(json_object_get(json_object_get(ro, "token"), "id")));
    r = fx_req("DELETE", path, NULL, &(fx_opts_t){.bearer = fx_token(s)});
    cr_assert_eq(r.status, 204, "%s", r.body);
    fx_resp_free(&r);
    cr_assert_eq(me_status(secret), 401);
    json_decref(ro);
    json_decref(s);
}

/* ---- organisations: isolation and the permission table ---------------------------- */

static long call(const char *method, const char *path, const char *body, const char *token)
{
    fx_resp_t r = fx_req(method, path, body, &(fx_opts_t){.bearer = token});
    long st = r.status;
    cr_assert(st > 0 && st < 500, "%s %s gave %ld: %s", method, path, st, r.body);
    fx_resp_free(&r);
    return st;
}

/* Invites `who` into org with role, and has them accept. */
static void add_member(const json_t *owner, const json_t *who, const char *role)
{
    char path[128], body[512];
    snprintf(path, sizeof path, "/v1/orgs/%s/members", fx_org(owner));
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"role\":\"%s\"}",
             json_string_value(json_object_get(json_object_get(who, "user"), "email")), role);
    fx_resp_t r = fx_req("POST", path, body, &(fx_opts_t){.bearer = fx_token(owner)});
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(body, sizeof body, "{\"token\":\"%s\"}",
             json_string_value(json_object_get(r.json, "token")));
    fx_resp_free(&r);
    r = fx_req("POST", "/v1/invitations/accept", body, &(fx_opts_t){.bearer = fx_token(who)});
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "role")), role);
    fx_resp_free(&r);
    /* An invitation works once. */
    r = fx_req("POST", "/v1/invitations/accept", body, &(fx_opts_t){.bearer = fx_token(who)});
    cr_assert_eq(r.status, 404);
    fx_resp_free(&r);
}

Test(api, another_organisation_is_not_found)
{
    json_t *a = fx_register("fay"), *b = fx_register("gus");
    char path[160];
    snprintf(path, sizeof path, "/v1/orgs/%s", fx_org(a));
    cr_assert_eq(call("GET", path, NULL, fx_token(a)), 200);
    fx_resp_t r = fx_req("GET", path, NULL, &(fx_opts_t){.bearer = fx_token(b)});
    EXPECT_ERROR(r, 404, "not_found");
    fx_resp_free(&r);
    snprintf(path, sizeof path, "/v1/orgs/%s/members", fx_org(a));
    cr_assert_eq(call("GET", path, NULL, fx_token(b)), 404);
    cr_assert_eq(
        call("POST", path, "{\"email\":\"x@example.com\",\"role\":\"viewer\"}", fx_token(b)), 404);
    cr_assert_eq(call("GET", "/v1/orgs/not-a-uuid", NULL, fx_token(a)), 404);
    /* A PAT of b's organisation does not reach a's either, nor a's org for a's own PAT of
     * another org. */
    json_t *pat = make_pat(b, "[\"read\",\"write\",\"admin\"]");
    snprintf(path, sizeof path, "/v1/orgs/%s", fx_org(a));
    cr_assert_eq(call("GET", path, NULL, json_string_value(json_object_get(pat, "secret"))), 404);
    json_decref(pat);
    json_decref(a);
    json_decref(b);
}

/* The permission table of schemas/api.json decides, for every role, every
 * organisation route: allowed routes answer 2xx/4xx-but-not-403, denied ones 403. */
Test(api, role_by_route_matrix_follows_the_permission_table, .timeout = 120)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/api.json", FENTA_SOURCE_SCHEMAS);
    json_t *api = json_load_file(path, 0, NULL);
    cr_assert_not_null(api);
    json_t *owner = fx_register("hal");
    const char *roles[] = {"admin", "editor", "viewer"};
    for (int ri = 0; ri < 3; ri++) {
        json_t *m = fx_register(roles[ri]);
        add_member(owner, m, roles[ri]);
        json_t *victim = fx_register("victim");
        add_member(owner, victim, "viewer");
        size_t i;
        json_t *route;
        json_array_foreach(json_object_get(api, "routes"), i, route)
        {
            const char *org_param = json_string_value(json_object_get(route, "org_param"));
            if (!org_param)
                continue;
            const char *perm = json_string_value(json_object_get(route, "permission"));
            json_t *allowed = json_object_get(
                json_object_get(json_object_get(api, "permissions"), perm), "roles");
            bool may = false;
            size_t k;
            json_t *rv;
            json_array_foreach(allowed, k, rv) may |= strcmp(json_string_value(rv), roles[ri]) == 0;
            /* Fill the path: {id} = the org, {user_id} = the victim. */
            char p[256] = "";
            const char *pat = json_string_value(json_object_get(route, "path"));
            for (const char *c = pat; *c;) {
                if (strncmp(c, "{id}", 4) == 0) {
                    strcat(p, fx_org(owner));
                    c += 4;
                } else if (strncmp(c, "{user_id}", 9) == 0) {
                    strcat(p, fx_user(victim));
                    c += 9;
                } else {
                    strncat(p, c++, 1);
                }
            }
            const char *method = json_string_value(json_object_get(route, "method"));
            const char *body = strcmp(method, "POST") == 0
                                   ? "{\"email\":\"new-member@example.com\",\"role\":\"viewer\"}"
                               : strcmp(method, "PATCH") == 0 ? "{\"role\":\"editor\"}"
                                                              : NULL;
            long st = call(method, p, body, fx_token(m));
            if (may)
                cr_assert_neq(st, 403, "%s may %s %s", roles[ri], method, pat);
            else
                cr_assert_eq(st, 403, "%s may not %s %s (got %ld)", roles[ri], method, pat, st);
        }
        json_decref(victim);
        json_decref(m);
    }
    json_decref(owner);
    json_decref(api);
}

Test(api, an_organisation_keeps_an_owner)
{
    json_t *o = fx_register("ian");
    char path[200];
    snprintf(path, sizeof path, "/v1/orgs/%s/members/%s", fx_org(o), fx_user(o));
    fx_resp_t r =
        fx_req("PATCH", path, "{\"role\":\"viewer\"}", &(fx_opts_t){.bearer = fx_token(o)});
    EXPECT_ERROR(r, 409, "last_owner");
    fx_resp_free(&r);
    r = fx_req("DELETE", path, NULL, &(fx_opts_t){.bearer = fx_token(o)});
    EXPECT_ERROR(r, 409, "last_owner");
    fx_resp_free(&r);
    json_decref(o);
}

/* ---- validation, hostile input ------------------------------------------------------ */

Test(api, validation_lists_every_problem_with_its_path)
{
    fx_resp_t r = fx_req("POST", "/v1/auth/register",
                         "{\"email\":\"not-an-email\",\"password\":\"short\",\"extra\":1}", NULL);
    EXPECT_ERROR(r, 400, "invalid_request");
    json_t *d = json_object_get(json_object_get(r.json, "error"), "details");
    cr_assert_geq(json_array_size(d), 4, "%s", r.body); /* email, password, name, extra */
    bool email = false, name = false, extra = false;
    size_t i;
    json_t *p;
    json_array_foreach(d, i, p)
    {
        const char *path = json_string_value(json_object_get(p, "path"));
        email |= strcmp(path, "$.email") == 0;
        name |= strcmp(path, "$.name") == 0;
        extra |= strcmp(path, "$.extra") == 0;
    }
    cr_assert(email && name && extra, "%s", r.body);
    fx_resp_free(&r);
}

Test(api, hostile_input_never_gets_a_5xx)
{
    json_t *s = fx_register("jo");
    struct {
        const char *method, *path, *body, *ctype;
        size_t len;
        long want;
    } cases[] = {
        {"POST", "/v1/orgs", "{\"name\":", NULL, 0, 400}, /* malformed JSON */
        {"POST", "/v1/orgs", "[1,2,3]", NULL, 0, 400},    /* not an object */
        {"POST", "/v1/orgs", "{\"name\":\"x\"}", "text/plain", 0, 415},
        {"POST", "/v1/orgs", "{\"name\":\"\xff\xfe\"}", NULL, 0, 400}, /* invalid UTF-8 */
        {"POST", "/v1/orgs", "{\"name\":\"a\\u0000b\"}", NULL, 0, 400},
        {"POST", "/v1/orgs", "{\"name\":\"x\",\"name\":\"y\"}", NULL, 0, 400},
        {"GET", "/v1/orgs?limit=0", NULL, NULL, 0, 400},
        {"GET", "/v1/orgs?limit=abc", NULL, NULL, 0, 400},
        {"GET", "/v1/orgs?cursor=forged", NULL, NULL, 0, 400},
        {"GET", "/v1/nowhere", NULL, NULL, 0, 404},
        {"PUT", "/v1/me", NULL, NULL, 0, 405},
        {"GET", "/v1/orgs/%ff%fe", NULL, NULL, 0, 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_resp_t r = fx_req(cases[i].method, cases[i].path, cases[i].body,
                             &(fx_opts_t){.bearer = fx_token(s), .content_type = cases[i].ctype});
        cr_assert_eq(r.status, cases[i].want, "case %zu (%s %s): %ld %s", i, cases[i].method,
                     cases[i].path, r.status, r.body);
        cr_assert(json_is_object(json_object_get(r.json, "error")), "case %zu: %s", i, r.body);
        fx_resp_free(&r);
    }
    /* 2 MiB body: 413. */
    size_t big = 2u << 20;
    char *body = malloc(big + 1);
    memset(body, 'a', big);
    memcpy(body, "{\"name\":\"", 9);
    memcpy(body + big - 2, "\"}", 2);
    body[big] = 0;
    fx_resp_t r = fx_req("POST", "/v1/orgs", body, &(fx_opts_t){.bearer = fx_token(s)});
    cr_assert_eq(r.status, 413, "%ld", r.status);
    fx_resp_free(&r);
    free(body);
    /* A 64 KiB header: a 4xx (or a closed connection), not a crash. */
    char *hdr = malloc(70000);
    strcpy(hdr, "X-Huge: ");
    memset(hdr + 8, 'h', 65536);
    hdr[8 + 65536] = 0;
    r = fx_req("GET", "/v1/me", NULL,
               &(fx_opts_t){.bearer = fx_token(s), .headers = (const char *const[]){hdr, NULL}});
    cr_assert(r.status == 0 || (r.status >= 400 && r.status < 500), "%ld", r.status);
    fx_resp_free(&r);
    free(hdr);
    cr_assert_eq(me_status(fx_token(s)), 200, "still serving");
    json_decref(s);
}

/* ---- limits, idempotency, pagination ---------------------------------------------------- */

/* The count of one series in /metrics (0 when absent). */
static long metric(const char *series)
{
    fx_resp_t r = fx_req("GET", "/metrics", NULL, NULL);
    const char *p = r.body ? strstr(r.body, series) : NULL;
    long v = p ? atol(p + strlen(series)) : 0;
    fx_resp_free(&r);
    return v;
}

Test(api, json_body_limit_is_1_mib_with_one_413_over_http1_and_http2)
{
    json_t *s = fx_register("big");
    const char *series =
        "fenta_http_requests_total{route=\"/v1/orgs\",method=\"POST\",status=\"413\"} ";
    long before = metric(series);
    size_t big = 2u << 20;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    memcpy(body, "{\"name\":\"big\"}", 14);
    body[big] = 0;
    for (int h2 = 0; h2 < 2; h2++) {
        /* h2o used to refuse this over HTTP/2 with RST_STREAM(REFUSED_STREAM),
         * and curl uploaded it six times without ever getting an answer */
        fx_resp_t r = fx_req(
            "POST", "/v1/orgs", body,
            &(fx_opts_t){.bearer = fx_token(s), .http2 = h2, .body_len = big, .direct = true});
        EXPECT_ERROR(r, 413, "payload_too_large");
        cr_assert_eq(r.http_version, h2 ? 20 : 11);
        cr_assert_eq(
            json_integer_value(json_object_get(
                json_object_get(json_object_get(r.json, "error"), "details"), "max_bytes")),
            1048576, "%s", r.body);
        fx_resp_free(&r);
    }
    /* each reached the API exactly once (metrics are counted as h2o lets a
     * request go, just after its answer) */
    long seen = 0;
    for (int tries = 0; tries < 50 && (seen = metric(series) - before) != 2; tries++)
        usleep(20000);
    cr_assert_eq(seen, 2, "one 413 per request, no retries: %ld", seen);
    /* just under the limit is read and served */
    size_t fits = (1u << 20) - 1024;
    for (int h2 = 0; h2 < 2; h2++) {
        fx_resp_t r = fx_req(
            "POST", "/v1/orgs", body,
            &(fx_opts_t){.bearer = fx_token(s), .http2 = h2, .body_len = fits, .direct = true});
        cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
        fx_resp_free(&r);
    }
    free(body);
    json_decref(s);
}

Test(api, rate_limited_route_answers_429_with_retry_after)
{
    json_t *s = fx_register("kim");
    /* DELETE /v1/tokens/{id} is limited to a burst of 3 in the test config. */
    long st = 0;
    int n = 0;
    fx_resp_t r = {0};
    for (n = 1; n <= 8; n++) {
        fx_resp_free(&r);
        r = fx_req("DELETE", "/v1/tokens/00000000-0000-0000-0000-000000000000", NULL,
                   &(fx_opts_t){.bearer = fx_token(s)});
        st = r.status;
        if (st == 429)
            break;
        cr_assert_eq(st, 404);
    }
    EXPECT_ERROR(r, 429, "rate_limited");
    char v[64];
    cr_assert_not_null(fx_header(&r, "retry-after", v, sizeof v));
    cr_assert_geq(atoi(v), 1);
    cr_assert_not_null(fx_header(&r, "ratelimit-limit", v, sizeof v));
    cr_assert_str_eq(v, "3");
    cr_assert_not_null(fx_header(&r, "ratelimit-remaining", v, sizeof v));
    cr_assert_str_eq(v, "0");
    fx_resp_free(&r);
    json_decref(s);
}

Test(api, idempotency_key_gives_the_same_response)
{
    json_t *s = fx_register("lou");
    const char *const h[] = {"Idempotency-Key: create-org-1", NULL};
    fx_opts_t o = {.bearer = fx_token(s), .headers = h};
    fx_resp_t a = fx_req("POST", "/v1/orgs", "{\"name\":\"Acme\"}", &o);
    fx_resp_t b = fx_req("POST", "/v1/orgs", "{\"name\":\"Acme\"}", &o);
    cr_assert_eq(a.status, 201, "%s", a.body);
    cr_assert_eq(b.status, 201, "%s", b.body);
    cr_assert_str_eq(json_string_value(json_object_get(a.json, "id")),
                     json_string_value(json_object_get(b.json, "id")), "one organisation");
    char v[16];
    cr_assert_not_null(fx_header(&b, "idempotent-replayed", v, sizeof v));
    fx_resp_t c = fx_req("POST", "/v1/orgs", "{\"name\":\"Other\"}", &o);
    EXPECT_ERROR(c, 422, "idempotency_key_reused");
    fx_resp_free(&a);
    fx_resp_free(&b);
    fx_resp_free(&c);
    fx_resp_t me = fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.bearer = fx_token(s)});
    cr_assert_eq(json_array_size(json_object_get(me.json, "orgs")), 2);
    fx_resp_free(&me);
    json_decref(s);
}

typedef struct {
    const char *token;
    int n;
} inserter_t;

static void *insert_orgs(void *arg)
{
    inserter_t *in = arg;
    for (int i = 0; i < in->n; i++) {
        fx_resp_t r = fx_req("POST", "/v1/orgs", "{\"name\":\"late\"}",
                             &(fx_opts_t){.bearer = in->token, .http2 = true});
        fx_resp_free(&r);
    }
    return NULL;
}

Test(api, pagination_is_stable_under_concurrent_inserts, .timeout = 120)
{
    json_t *s = fx_register("max");
    for (int i = 0; i < 24; i++)
        cr_assert_eq(call("POST", "/v1/orgs", "{\"name\":\"early\"}", fx_token(s)), 201);
    /* 25 before paging (with the personal one); more arrive while we page. */
    inserter_t in = {fx_token(s), 20};
    pthread_t t;
    pthread_create(&t, NULL, insert_orgs, &in);
    json_t *seen = json_object();
    char path[1200] = "/v1/orgs?limit=7";
    int pages = 0, early = 0;
    char last[64] = "";
    for (;;) {
        fx_resp_t r = fx_req("GET", path, NULL,
                             &(fx_opts_t){.bearer = fx_token(s), .http2 = true, .direct = true});
        cr_assert_eq(r.status, 200, "%s", r.body);
        cr_assert_eq(r.http_version, 20);
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(r.json, "data"), i, o)
        {
            const char *id = json_string_value(json_object_get(o, "id"));
            const char *at = json_string_value(json_object_get(o, "created_at"));
            cr_assert_null(json_object_get(seen, id), "org %s seen twice", id);
            cr_assert_geq(strcmp(at, last), 0, "pages come in creation order");
            snprintf(last, sizeof last, "%s", at);
            json_object_set_new(seen, id, json_true());
            early += strcmp(json_string_value(json_object_get(o, "name")), "late") != 0;
        }
        const char *next = json_string_value(json_object_get(r.json, "next_cursor"));
        pages++;
        if (!next) {
            fx_resp_free(&r);
            break;
        }
        snprintf(path, sizeof path, "/v1/orgs?limit=7&cursor=%s", next);
        fx_resp_free(&r);
    }
    pthread_join(t, NULL);
    cr_assert_eq(early, 25, "every organisation that existed before paging was seen once");
    cr_assert_geq(pages, 4);
    json_decref(seen);
    json_decref(s);
}

Test(api, builtins_and_openapi_are_served)
{
    fx_resp_t r = fx_req("GET", "/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200);
    char id[160];
    cr_assert_not_null(fx_header(&r, "x-request-id", id, sizeof id));
    fx_resp_free(&r);
    r = fx_req("GET", "/readyz", NULL, &(fx_opts_t){.http2 = true, .direct = true});
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.http_version, 20);
    fx_resp_free(&r);
    r = fx_req("GET", "/openapi.json", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "openapi")), "3.1.0");
    fx_resp_free(&r);
    r = fx_req("GET", "/metrics", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "fenta_http_requests_total"));
    cr_assert_not_null(strstr(r.body, "fenta_commits_total"), "runtime metrics too");
    fx_resp_free(&r);
    r = fx_req("GET", "/healthz", NULL,
               &(fx_opts_t){.headers = (const char *const[]){"X-Request-Id: trace-me-123", NULL}});
    cr_assert_str_eq(fx_header(&r, "x-request-id", id, sizeof id), "trace-me-123");
    fx_resp_free(&r);
}

/* Browser clients: HttpOnly cookies, and a CSRF token on state-changing requests. */
Test(api, cookie_sessions_need_the_csrf_token_to_change_state)
{
    json_t *s = fx_register("nia");
    const char *at = fx_token(s);
    const char *csrf = json_string_value(json_object_get(s, "csrf_token"));
    cr_assert_not_null(csrf);
    char cookie[8192], hcsrf[256];
    snprintf(cookie, sizeof cookie, "Cookie: fenta_access=%s", at);
    /* Reading with the cookie alone works. */
    fx_resp_t r =
        fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.headers = (const char *const[]){cookie, NULL}});
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "auth")), "cookie");
    fx_resp_free(&r);
    /* Changing state without the CSRF header is refused, with it allowed. */
    r = fx_req("POST", "/v1/orgs", "{\"name\":\"via cookie\"}",
               &(fx_opts_t){.headers = (const char *const[]){cookie, NULL}});
    EXPECT_ERROR(r, 403, "csrf");
    fx_resp_free(&r);
    snprintf(hcsrf, sizeof hcsrf, "X-CSRF-Token: %s", "forged-token-forged-token-forged-token-xx");
    r = fx_req("POST", "/v1/orgs", "{\"name\":\"via cookie\"}",
               &(fx_opts_t){.headers = (const char *const[]){cookie, hcsrf, NULL}});
    EXPECT_ERROR(r, 403, "csrf");
    fx_resp_free(&r);
    snprintf(hcsrf, sizeof hcsrf, "X-CSRF-Token: %s", csrf);
    r = fx_req("POST", "/v1/orgs", "{\"name\":\"via cookie\"}",
               &(fx_opts_t){.headers = (const char *const[]){cookie, hcsrf, NULL}});
    cr_assert_eq(r.status, 201, "%s", r.body);
    fx_resp_free(&r);
    /* Refresh with the HttpOnly cookie (the exact name, not a look-alike). */
    char rcookie[512];
    snprintf(rcookie, sizeof rcookie, "Cookie: xfenta_refresh=junk; fenta_refresh=%s",
             json_string_value(json_object_get(s, "refresh_token")));
    r = fx_req("POST", "/v1/auth/refresh", "{}",
               &(fx_opts_t){.headers = (const char *const[]){rcookie, NULL}});
    cr_assert_eq(r.status, 200, "%s", r.body);
    fx_resp_free(&r);
    /* The login response set the cookies, HttpOnly and SameSite. */
    const char *email = json_string_value(json_object_get(json_object_get(s, "user"), "email"));
    char *login = str("{\"email\":\"%s\",\"password\":\"%s\"}", email, "correct horse battery");
    r = fx_req("POST", "/v1/auth/login", login, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.headers, "fenta_access="));
    cr_assert_not_null(strstr(r.headers, "HttpOnly"));
    cr_assert_not_null(strstr(r.headers, "SameSite=Strict"));
    fx_resp_free(&r);
    free(login);
    json_decref(s);
}

Test(api, lists_sort_both_ways_and_cursors_keep_their_order)
{
    json_t *s = fx_register("ola");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(call("POST", "/v1/orgs", "{\"name\":\"sorted\"}", fx_token(s)), 201);
    fx_resp_t asc = fx_req("GET", "/v1/orgs?limit=3", NULL, &(fx_opts_t){.bearer = fx_token(s)});
    fx_resp_t desc = fx_req("GET", "/v1/orgs?limit=3&sort=-created_at", NULL,
                            &(fx_opts_t){.bearer = fx_token(s)});
    cr_assert_eq(asc.status, 200);
    cr_assert_eq(desc.status, 200, "%s", desc.body);
    json_t *a = json_object_get(asc.json, "data"), *d = json_object_get(desc.json, "data");
    const char *a0 = json_string_value(json_object_get(json_array_get(a, 0), "created_at"));
    const char *a1 = json_string_value(json_object_get(json_array_get(a, 1), "created_at"));
    const char *d0 = json_string_value(json_object_get(json_array_get(d, 0), "created_at"));
    const char *d1 = json_string_value(json_object_get(json_array_get(d, 1), "created_at"));
    cr_assert_lt(strcmp(a0, a1), 0, "oldest first");
    cr_assert_gt(strcmp(d0, d1), 0, "newest first");
    /* A cursor of the ascending list is refused by the descending one. */
    char path[1200];
    snprintf(path, sizeof path, "/v1/orgs?limit=3&sort=-created_at&cursor=%s",
             json_string_value(json_object_get(asc.json, "next_cursor")));
    fx_resp_t mix = fx_req("GET", path, NULL, &(fx_opts_t){.bearer = fx_token(s)});
    EXPECT_ERROR(mix, 400, "invalid_cursor");
    fx_resp_free(&mix);
    /* The descending pages continue downwards. */
    snprintf(path, sizeof path, "/v1/orgs?limit=3&sort=-created_at&cursor=%s",
             json_string_value(json_object_get(desc.json, "next_cursor")));
    fx_resp_t next = fx_req("GET", path, NULL, &(fx_opts_t){.bearer = fx_token(s)});
    cr_assert_eq(next.status, 200, "%s", next.body);
    const char *n0 = json_string_value(
        json_object_get(json_array_get(json_object_get(next.json, "data"), 0), "created_at"));
    const char *d2 = json_string_value(json_object_get(json_array_get(d, 2), "created_at"));
    cr_assert_gt(strcmp(d2, n0), 0);
    fx_resp_t bad = fx_req("GET", "/v1/orgs?sort=name", NULL, &(fx_opts_t){.bearer = fx_token(s)});
    EXPECT_ERROR(bad, 400, "invalid_sort");
    fx_resp_free(&bad);
    fx_resp_free(&next);
    fx_resp_free(&asc);
    fx_resp_free(&desc);
    json_decref(s);
}

/* Straight into the server's embedded database (superuser on its socket). */
Test(api, idempotency_keys_expire_and_abandoned_ones_are_taken_over)
{
    json_t *s = fx_register("pia");
    const char *const h[] = {"Idempotency-Key: expiring-key", NULL};
    fx_opts_t o = {.bearer = fx_token(s), .headers = h};
    fx_resp_t a = fx_req("POST", "/v1/orgs", "{\"name\":\"First\"}", &o);
    cr_assert_eq(a.status, 201);
    /* Older than 24 h: the key is free again, even for another body. */
    fx_sql("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = "
           "'expiring-key' AND user_id = $1",
           fx_user(s));
    fx_resp_t b = fx_req("POST", "/v1/orgs", "{\"name\":\"Second\"}", &o);
    cr_assert_eq(b.status, 201, "%s", b.body);
    cr_assert_str_neq(json_string_value(json_object_get(a.json, "id")),
                      json_string_value(json_object_get(b.json, "id")));
    /* In progress for 10 minutes (its process died): a retry takes it over. */
    fx_sql("UPDATE idempotency_keys SET status = 0, response = NULL, created_at = now() - interval "
           "'10 minutes' WHERE key = 'expiring-key' AND user_id = $1",
           fx_user(s));
    fx_resp_t c = fx_req("POST", "/v1/orgs", "{\"name\":\"Third\"}", &o);
    cr_assert_eq(c.status, 201, "%s", c.body);
    /* In progress and fresh: 409, try later. */
    fx_sql(
        "UPDATE idempotency_keys SET status = 0, response = NULL, created_at = now() WHERE key = "
        "'expiring-key' AND user_id = $1",
        fx_user(s));
    fx_resp_t d = fx_req("POST", "/v1/orgs", "{\"name\":\"Third\"}", &o);
    EXPECT_ERROR(d, 409, "idempotency_in_progress");
    fx_resp_free(&a);
    fx_resp_free(&b);
    fx_resp_free(&c);
    fx_resp_free(&d);
    json_decref(s);
}

/* Changes made elsewhere (another node, an operator's SQL) reach the
 * authentication cache through PostgreSQL notifications. */
Test(api, changes_made_elsewhere_end_cached_sessions_and_identities)
{
    json_t *s = fx_register("quin");
    cr_assert_eq(me_status(fx_token(s)), 200);
    cr_assert_eq(me_status(fx_token(s)), 200); /* now cached */
    fx_sql("UPDATE orgs SET name = 'renamed elsewhere' WHERE id = $1::uuid", fx_org(s));
    bool renamed = false;
    for (int i = 0; i < 100 && !renamed; i++) {
        fx_resp_t r = fx_req("GET", "/v1/me", NULL, &(fx_opts_t){.bearer = fx_token(s)});
        json_t *org = json_array_get(json_object_get(r.json, "orgs"), 0);
        renamed = strcmp(json_string_value(json_object_get(org, "name")), "renamed elsewhere") == 0;
        fx_resp_free(&r);
        if (!renamed)
            usleep(10000);
    }
    cr_assert(renamed, "the cached identity was dropped");
    fx_sql("UPDATE sessions SET revoked_at = now() WHERE user_id = $1::uuid", fx_user(s));
    long st = 200;
    for (int i = 0; i < 100 && st == 200; i++) {
        st = me_status(fx_token(s));
        if (st == 200)
            usleep(10000);
    }
    cr_assert_eq(st, 401, "a session revoked elsewhere ends within a second");
    json_decref(s);
}
