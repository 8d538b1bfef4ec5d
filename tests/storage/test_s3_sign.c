/* test_s3_sign.c - SigV4 presigned URLs: AWS's own known answer, and the
 * encodings and refusals a real store depends on. */
#include "runtime/error.h"
#include "storage/s3_sign.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static const s3_creds_t AWS_EXAMPLE = {.access_key = "AKIAIOSFODNN7EXAMPLE",
                                       .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                       .region = "us-east-1"};

/* "Authenticating Requests: Using Query Parameters (AWS Signature Version
 * 4)", Amazon S3 API reference: GET examplebucket/test.txt, signed at
 * 2013-05-24T00:00:00Z for 86400 s. */
Test(s3_sign, the_aws_documentation_example)
{
    s3_presign_t r = {.method = "GET",
                      .scheme = "https",
                      .host = "examplebucket.s3.amazonaws.com",
                      .path = "/test.txt",
                      .now_s = 1369353600, /* 2013-05-24T00:00:00Z */
                      .expires_s = 86400};
    int err = -1;
    char *url = s3_presign_url(&AWS_EXAMPLE, &r, &err);
    cr_assert_eq(err, 0);
    cr_assert_str_eq(url, "https://examplebucket.s3.amazonaws.com/test.txt"
                          "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                          "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
                          "aws4_request"
                          "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
                          "&X-Amz-SignedHeaders=host"
                          "&X-Amz-Signature="
                          "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free(url);
}

Test(s3_sign, keys_are_encoded_and_anything_else_changes_the_signature)
{
    s3_presign_t r = {.method = "PUT",
                      .scheme = "http",
                      .host = "127.0.0.1:4569",
                      .path = "/fenta/uploads/org/a b+c\xc3\xa9.mp4",
                      .query = "partNumber=1&uploadId=abc",
                      .now_s = 1369353600,
                      .expires_s = 3600};
    char *a = s3_presign_url(&AWS_EXAMPLE, &r, NULL);
    cr_assert_not_null(a);
    cr_assert(strstr(a, "http://127.0.0.1:4569/fenta/uploads/org/a%20b%2Bc%C3%A9.mp4?"), "%s", a);
    cr_assert(strstr(a, "&X-Amz-SignedHeaders=host&partNumber=1&uploadId=abc&X-Amz-Signature="),
              "%s", a);
    const char *sig = strstr(a, "X-Amz-Signature=") + 16;
    cr_assert_eq(strlen(sig), 64);
    /* Each input is covered: a different method, time, part or secret
     * signs differently. */
    s3_presign_t other[] = {r, r, r};
    other[0].method = "GET";
    other[1].now_s += 1;
    other[2].query = "partNumber=2&uploadId=abc";
    for (size_t i = 0; i < 3; i++) {
        char *b = s3_presign_url(&AWS_EXAMPLE, &other[i], NULL);
        cr_assert_not_null(b);
        cr_assert_str_neq(strstr(b, "X-Amz-Signature=") + 16, sig, "input %zu not signed", i);
        free(b);
    }
    s3_creds_t c2 = AWS_EXAMPLE;
    c2.secret_key = "another";
    char *b = s3_presign_url(&c2, &r, NULL);
    cr_assert_str_neq(strstr(b, "X-Amz-Signature=") + 16, sig);
    free(b);
    free(a);
}

Test(s3_sign, bad_requests_are_refused)
{
    s3_presign_t ok = {.method = "GET",
                       .scheme = "https",
                       .host = "b.s3.amazonaws.com",
                       .path = "/k",
                       .now_s = 1369353600,
                       .expires_s = 60};
    s3_presign_t bad[] = {ok, ok, ok, ok, ok, ok};
    bad[0].expires_s = 0;
    bad[1].expires_s = 604801; /* S3 refuses more than 7 days */
    bad[2].path = "k";
    bad[3].host = "evil.com/x?";
    bad[4].host = "";
    bad[5].method = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int err = 0;
        cr_assert_null(s3_presign_url(&AWS_EXAMPLE, &bad[i], &err), "case %zu", i);
        cr_assert_eq(err, FENTA_EINVAL, "case %zu", i);
    }
    s3_creds_t nokey = AWS_EXAMPLE;
    nokey.secret_key = NULL;
    int err = 0;
    cr_assert_null(s3_presign_url(&nokey, &ok, &err));
    cr_assert_eq(err, FENTA_EINVAL);
}
