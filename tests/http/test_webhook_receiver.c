/* test_webhook_receiver.c - the webhook receiver fixture itself
 * (tests/support/webhook_receiver.c and webhook_receiver.mjs),
 * without the Fenta server: deliveries are signed here in C the Standard
 * Webhooks way (HMAC-SHA256 over "<id>.<timestamp>.<body>" keyed with the
 * base64-decoded secret after "whsec_"), so the tests also pin down that
 * signing against the `standardwebhooks` package's verification. */
#include "tests/support/webhook_receiver.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The test vector of the standard-webhooks JavaScript library's own tests
 * ("sign function works" in libraries/javascript/src/webhook.test.ts). */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS 1614265330L
#define SPEC_BODY "{\"test\": 2432232314}"
#define SPEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* Two secrets of a rotation (32-byte keys, padded base64) and one the
 * receiver never hears of. */
#define SECRET_A SPEC_SECRET
#define SECRET_B "whsec_ZmVudGEtcm90YXRpb24tc2VjcmV0LTItMzJieXRlcyE="
#define SECRET_C "whsec_ZmVudGEtdW5rbm93bi1zZWNyZXQtMy0zMmJ5dGVzISE="

/* "v1,<base64 HMAC-SHA256>" of a delivery, into sig (at least 48 bytes). */
static void sign(const char *secret, const char *id, long ts, const char *body, char *sig,
                 size_t cap)
{
    const char *b64 = secret;
    if (strncmp(b64, "whsec_", 6) == 0)
        b64 += 6;
    size_t blen = strlen(b64);
    cr_assert(blen > 0 && blen % 4 == 0 && blen < 256, "bad test secret %s", secret);
    unsigned char key[192];
    int klen = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)blen);
    cr_assert(klen > 0, "bad test secret %s", secret);
    /* EVP_DecodeBlock counts the padding's zero bytes in its length. */
    for (size_t i = blen; i > 0 && b64[i - 1] == '='; i--)
        klen--;

    size_t mlen = strlen(id) + strlen(body) + 32;
    char *msg = malloc(mlen);
    cr_assert_not_null(msg);
    int n = snprintf(msg, mlen, "%s.%ld.%s", id, ts, body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    cr_assert_not_null(
        HMAC(EVP_sha256(), key, klen, (const unsigned char *)msg, (size_t)n, mac, &maclen));
    free(msg);
    cr_assert(cap >= 3 + 4 * ((maclen + 2) / 3) + 1);
    memcpy(sig, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)sig + 3, mac, (int)maclen);
}

/* A Fenta-style delivery body of the given type. */
static char *delivery_body(const char *type, const char *job)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *j = json_pack("{s:s, s:s, s:{s:s, s:i}}", "type", type, "timestamp", when, "data",
                          "job_id", job, "attempt", 1);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

typedef struct {
    CURLcode rc;          /* CURLE_OK when an answer came */
    long status;          /* its status */
    char *body;           /* its body (NUL-terminated, never NULL) */
    char retry_after[32]; /* its Retry-After header, "" when none */
    long elapsed_ms;      /* from sending to the answer (or the timeout) */
} resp_t;

typedef struct {
    char *p;
    size_t n;
} buf_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    buf_t *b = arg;
    size_t n = size * nmemb;
    char *q = realloc(b->p, b->n + n + 1);
    if (!q)
        return 0;
    b->p = q;
    memcpy(b->p + b->n, ptr, n);
    b->n += n;
    b->p[b->n] = 0;
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
    resp_t *r = arg;
    size_t n = size * nmemb;
    const char *name = "retry-after:";
    size_t nl = strlen(name);
    if (n > nl && strncasecmp(ptr, name, nl) == 0) {
        const char *v = ptr + nl;
        size_t vl = n - nl;
        while (vl > 0 && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)vl, v);
    }
    return n;
}

/* One request to the receiver (url is complete); headers is a
 * NULL-terminated list of "name: value" lines or NULL. */
static resp_t request(const char *method, const char *url, const char *const *headers,
                      const char *body, long timeout_ms)
{
    resp_t r = {0};
    buf_t b = {0};
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r.rc = curl_easy_perform(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r.elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r.body = b.p ? b.p : strdup("");
    return r;
}

/* POSTs body to endpoint name with the three Standard Webhooks headers; a
 * NULL sig sends no signature header. */
static resp_t deliver_raw(receiver_t *rc, const char *name, const char *id, long ts,
                          const char *sig, const char *body, long timeout_ms)
{
    char url[256], hid[160], hts[64], hsig[512];
    snprintf(hid, sizeof hid, "webhook-id: %s", id);
    snprintf(hts, sizeof hts, "webhook-timestamp: %ld", ts);
    snprintf(hsig, sizeof hsig, "webhook-signature: %s", sig ? sig : "");
    const char *headers[] = {hid, hts, sig ? hsig : NULL, NULL};
    return request("POST", receiver_url(rc, name, url, sizeof url), headers, body, timeout_ms);
}

/* POSTs body signed with secret, now. */
static resp_t deliver(receiver_t *rc, const char *name, const char *secret, const char *id,
                      const char *body)
{
    char sig[128];
    long ts = (long)time(NULL);
    sign(secret, id, ts, body, sig, sizeof sig);
    return deliver_raw(rc, name, id, ts, sig, body, 10000);
}

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

static json_t *record(json_t *log, size_t i)
{
    json_t *rec = json_array_get(log, i);
    cr_assert(json_is_object(rec), "no record %zu in the log", i);
    return rec;
}

static const char *field_str(json_t *rec, const char *k)
{
    return json_string_value(json_object_get(rec, k));
}

static bool verified(json_t *rec)
{
    json_t *v = json_object_get(rec, "verified");
    cr_assert(json_is_boolean(v), "record without a boolean verified");
    return json_is_true(v);
}

static long answered(json_t *rec)
{
    json_t *a = json_object_get(rec, "answered");
    return json_is_null(a) ? -1 : (long)json_integer_value(a);
}

Test(webhook_receiver, signs_the_standard_webhooks_test_vector)
{
    char sig[128];
    sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, sig, sizeof sig);
    cr_assert_str_eq(sig, SPEC_SIG);

    /* The package checks the signature and then the age: this one, from
     * 2021, is past the 5-minute tolerance, which the receiver keeps. */
    receiver_t *rc = receiver_start();
    receiver_config(rc, "spec", "{\"secrets\": [\"" SPEC_SECRET "\"]}");
    resp_t r = deliver_raw(rc, "spec", SPEC_ID, SPEC_TS, SPEC_SIG, SPEC_BODY, 10000);
    cr_assert_eq(r.status, 200);
    json_t *log = receiver_log(rc, "spec");
    cr_assert_eq(json_array_size(log), 1);
    json_t *rec = record(log, 0);
    cr_assert_not(verified(rec));
    cr_assert_not_null(strstr(field_str(rec, "verify_error"), "too old"), "verify_error: %s",
                       field_str(rec, "verify_error"));
    json_decref(log);
    resp_free(&r);
    receiver_stop(&rc);
    cr_assert_null(rc);
}

Test(webhook_receiver, verifies_a_signed_delivery)
{
    receiver_t *rc = receiver_start();
    receiver_config(rc, "jobs", "{\"secrets\": [\"" SECRET_A "\"]}");
    char *body = delivery_body("job.succeeded", "job_1");
    resp_t r = deliver(rc, "jobs", SECRET_A, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", body);
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"ok\":true}");

    json_t *log = receiver_wait(rc, "jobs", 1, 5);
    cr_assert_eq(json_array_size(log), 1);
    json_t *rec = record(log, 0);
    cr_assert(verified(rec), "verify_error: %s", field_str(rec, "verify_error"));
    cr_assert(json_is_null(json_object_get(rec, "verify_error")));
    cr_assert_str_eq(field_str(rec, "type"), "job.succeeded");
    cr_assert_str_eq(field_str(rec, "webhook_id"), "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W");
    cr_assert_str_eq(field_str(rec, "raw"), body);
    cr_assert_str_eq(field_str(json_object_get(json_object_get(rec, "body"), "data"), "job_id"),
                     "job_1");
    cr_assert_eq(answered(rec), 200);
    cr_assert(json_integer_value(json_object_get(rec, "received_at_ms")) > 0);
    json_decref(log);
    resp_free(&r);
    free(body);
    receiver_stop(&rc);
}

Test(webhook_receiver, rejects_tampered_deliveries)
{
    receiver_t *rc = receiver_start();
    receiver_config(rc, "t", "{\"secrets\": [\"" SECRET_A "\"]}");
    char sig[128];
    long ts = (long)time(NULL);
    const char *good = "{\"type\":\"job.failed\",\"data\":{\"job_id\":\"j1\"}}";
    const char *evil = "{\"type\":\"job.failed\",\"data\":{\"job_id\":\"j2\"}}";
    sign(SECRET_A, "msg_t1", ts, good, sig, sizeof sig);

    resp_t r[5];
    r[0] = deliver_raw(rc, "t", "msg_t1", ts, sig, evil, 10000);     /* another body */
    r[1] = deliver_raw(rc, "t", "msg_t2", ts, sig, good, 10000);     /* another id */
    r[2] = deliver_raw(rc, "t", "msg_t1", ts + 1, sig, good, 10000); /* another time */
    r[3] = deliver_raw(rc, "t", "msg_t1", ts, NULL, good, 10000);    /* no signature */
    r[4] = deliver_raw(rc, "t", "msg_t1", ts, sig, good, 10000);     /* the genuine one */
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(r[i].status, 200, "delivery %d answered %ld", i, r[i].status);
        resp_free(&r[i]);
    }
    json_t *log = receiver_log(rc, "t");
    cr_assert_eq(json_array_size(log), 5);
    for (size_t i = 0; i < 4; i++) {
        json_t *rec = record(log, i);
        cr_assert_not(verified(rec), "tampered delivery %zu verified", i);
        const char *err = field_str(rec, "verify_error");
        cr_assert(err && *err, "tampered delivery %zu without verify_error", i);
    }
    cr_assert(verified(record(log, 4)), "verify_error: %s",
              field_str(record(log, 4), "verify_error"));
    cr_assert_str_eq(field_str(record(log, 0), "type"), "job.failed"); /* parsed all the same */
    json_decref(log);

    /* An endpoint with no secret verifies nothing. */
    resp_t n = deliver(rc, "nosecret", SECRET_A, "msg_n", good);
    cr_assert_eq(n.status, 200);
    resp_free(&n);
    log = receiver_log(rc, "nosecret");
    cr_assert_not(verified(record(log, 0)));
    cr_assert_str_eq(field_str(record(log, 0), "verify_error"), "no secret");
    json_decref(log);
    receiver_stop(&rc);
}

Test(webhook_receiver, any_of_the_rotated_secrets_verifies)
{
    receiver_t *rc = receiver_start();
    receiver_config(rc, "rot", "{\"secrets\": [\"" SECRET_A "\", \"" SECRET_B "\"]}");
    const char *body = "{\"type\":\"ping\",\"data\":{}}";
    resp_t r1 = deliver(rc, "rot", SECRET_B, "msg_b", body);
    resp_t r2 = deliver(rc, "rot", SECRET_A, "msg_a", body);
    resp_t r3 = deliver(rc, "rot", SECRET_C, "msg_c", body);
    cr_assert(r1.status == 200 && r2.status == 200 && r3.status == 200);
    json_t *log = receiver_log(rc, "rot");
    cr_assert_eq(json_array_size(log), 3);
    cr_assert(verified(record(log, 0)), "signed by the second secret: %s",
              field_str(record(log, 0), "verify_error"));
    cr_assert(verified(record(log, 1)), "signed by the first secret");
    cr_assert_not(verified(record(log, 2)), "signed by a secret not configured");
    json_decref(log);
    resp_free(&r1), resp_free(&r2), resp_free(&r3);
    receiver_stop(&rc);
}

Test(webhook_receiver, fail_mode_fails_the_first_deliveries)
{
    receiver_t *rc = receiver_start();
    receiver_config(rc, "f",
                    "{\"secrets\": [\"" SECRET_A "\"], \"mode\": \"fail\", "
                    "\"fail_times\": 2}");
    long want[] = {500, 500, 200};
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "msg_f%d", i);
        resp_t r = deliver(rc, "f", SECRET_A, id, "{\"type\":\"x\"}");
        cr_assert_eq(r.status, want[i], "delivery %d answered %ld", i, r.status);
        if (want[i] == 500)
            cr_assert_str_eq(r.body, "{\"error\":\"configured to fail\"}");
        resp_free(&r);
    }
    json_t *log = receiver_log(rc, "f");
    cr_assert_eq(json_array_size(log), 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(answered(record(log, i)), want[i]);
    json_decref(log);

    /* A new config starts counting again; a status of its own. */
    receiver_config(rc, "f", "{\"mode\": \"fail\", \"fail_times\": 1, \"status\": 502}");
    resp_t r = deliver(rc, "f", SECRET_A, "msg_f3", "{}");
    cr_assert_eq(r.status, 502);
    resp_free(&r);
    r = deliver(rc, "f", SECRET_A, "msg_f4", "{}");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    receiver_stop(&rc);
}

Test(webhook_receiver, retry_after_mode_sends_the_header)
{
    receiver_t *rc = receiver_start();
    receiver_config(rc, "ra", "{\"mode\": \"retry_after\", \"retry_after\": \"2\"}");
    resp_t r = deliver(rc, "ra", SECRET_A, "msg_r1", "{}");
    cr_assert_eq(r.status, 429);
    cr_assert_str_eq(r.retry_after, "2");
    resp_free(&r);
    r = deliver(rc, "ra", SECRET_A, "msg_r2", "{}");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.retry_after, "");
    resp_free(&r);

    receiver_config(rc, "ra",
                    "{\"mode\": \"retry_after\", \"status\": 503, \"retry_after\": \"7\", "
                    "\"fail_times\": 2}");
    for (int i = 0; i < 2; i++) {
        r = deliver(rc, "ra", SECRET_A, "msg_r3", "{}");
        cr_assert_eq(r.status, 503);
        cr_assert_str_eq(r.retry_after, "7");
        resp_free(&r);
    }
    r = deliver(rc, "ra", SECRET_A, "msg_r3", "{}");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    receiver_stop(&rc);
}

Test(webhook_receiver, hang_mode_records_and_never_answers)
{
    receiver_t *rc = receiver_start();
    receiver_config(rc, "h", "{\"secrets\": [\"" SECRET_A "\"], \"mode\": \"hang\"}");
    char sig[128];
    long ts = (long)time(NULL);
    const char *body = "{\"type\":\"job.succeeded\"}";
    sign(SECRET_A, "msg_h", ts, body, sig, sizeof sig);
    resp_t r = deliver_raw(rc, "h", "msg_h", ts, sig, body, 1000);
    cr_assert_eq(r.rc, CURLE_OPERATION_TIMEDOUT, "curl: %s", curl_easy_strerror(r.rc));
    cr_assert(r.elapsed_ms >= 900, "gave up after %ld ms", r.elapsed_ms);
    resp_free(&r);
    json_t *log = receiver_wait(rc, "h", 1, 5);
    cr_assert_eq(json_array_size(log), 1);
    cr_assert(verified(record(log, 0)));
    cr_assert(json_is_null(json_object_get(record(log, 0), "answered")));
    json_decref(log);
    receiver_stop(&rc);
}

Test(webhook_receiver, delay_and_patch)
{
    receiver_t *rc = receiver_start();
    receiver_config(rc, "d", "{\"secrets\": [\"" SECRET_A "\"], \"mode\": \"fail\"}");
    resp_t r = deliver(rc, "d", SECRET_A, "msg_d1", "{}");
    cr_assert_eq(r.status, 500, "fail_times defaults to forever");
    resp_free(&r);

    /* PATCH keeps the secrets and changes the rest. */
    char url[256];
    snprintf(url, sizeof url, "%s/_config/d", receiver_base(rc));
    r = request("PATCH", url, NULL, "{\"mode\": \"ok\", \"delay_ms\": 300}", 5000);
    cr_assert_eq(r.status, 204);
    resp_free(&r);
    r = deliver(rc, "d", SECRET_A, "msg_d2", "{}");
    cr_assert_eq(r.status, 200);
    cr_assert(r.elapsed_ms >= 280, "answered after %ld ms", r.elapsed_ms);
    resp_free(&r);
    json_t *log = receiver_log(rc, "d");
    cr_assert(verified(record(log, 1)));
    json_decref(log);

    /* A config a test most likely mistyped is refused. */
    r = request("PUT", url, NULL, "{\"mode\": \"okay\"}", 5000);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
    r = request("PUT", url, NULL, "{\"secrets\": [\"whsec_not base64!\"]}", 5000);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
    receiver_stop(&rc);
}

Test(webhook_receiver, stats_count_duplicate_ids)
{
    receiver_t *rc = receiver_start();
    receiver_config(rc, "s", "{\"secrets\": [\"" SECRET_A "\"]}");
    const char *ids[] = {"msg_s1", "msg_s2", "msg_s1"};
    for (int i = 0; i < 3; i++) {
        resp_t r = deliver(rc, "s", SECRET_A, ids[i], "{\"type\":\"x\"}");
        cr_assert_eq(r.status, 200);
        resp_free(&r);
    }
    json_t *st = receiver_stats(rc);
    json_t *s = json_object_get(st, "s");
    cr_assert(json_is_object(s), "no stats for s");
    cr_assert_eq(json_integer_value(json_object_get(s, "received")), 3);
    cr_assert_eq(json_integer_value(json_object_get(s, "unique_ids")), 2);
    cr_assert_eq(json_integer_value(json_object_get(s, "duplicates")), 1);
    json_decref(st);

    /* ?since=K pages the log; DELETE clears it and its counts. */
    char url[256];
    snprintf(url, sizeof url, "%s/_log/s?since=2", receiver_base(rc));
    resp_t r = request("GET", url, NULL, NULL, 5000);
    json_t *tail = json_loads(r.body, 0, NULL);
    cr_assert_eq(json_array_size(tail), 1);
    cr_assert_str_eq(field_str(record(tail, 0), "webhook_id"), "msg_s1");
    json_decref(tail);
    resp_free(&r);
    snprintf(url, sizeof url, "%s/_log/s", receiver_base(rc));
    r = request("DELETE", url, NULL, NULL, 5000);
    cr_assert_eq(r.status, 204);
    resp_free(&r);
    json_t *log = receiver_log(rc, "s");
    cr_assert_eq(json_array_size(log), 0);
    json_decref(log);
    st = receiver_stats(rc);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(st, "s"), "received")), 0);
    json_decref(st);
    receiver_stop(&rc);
}
