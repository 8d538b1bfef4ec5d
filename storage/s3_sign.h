/* s3_sign.h - AWS Signature Version 4 for S3-compatible stores: presigned
 * URLs (query-string signing, which libcurl does not do; server-side calls
 * sign with CURLOPT_AWS_SIGV4 through runtime/outbound.h instead).
 *
 * The first piece of issue 15's object-store interface: a client uploads
 * to and downloads from the store directly with a URL Fenta signed, so the
 * bytes never pass through the API. Checked against the known answer in
 * AWS's "Authenticating Requests: Using Query Parameters" (the presigned GET
 * of examplebucket/test.txt). */
#ifndef FENTA_S3_SIGN_H
#define FENTA_S3_SIGN_H
#include <stdint.h>

typedef struct {
    const char *access_key; /* AWS_ACCESS_KEY_ID */
    const char *secret_key; /* AWS_SECRET_ACCESS_KEY */
    const char *region;     /* "us-east-1" */
    const char *service;    /* NULL = "s3" */
} s3_creds_t;

typedef struct {
    const char *method; /* "GET", "PUT", "HEAD", "DELETE" */
    const char *scheme; /* "https" or "http" */
    const char *host;   /* the Host header as sent: "bucket.s3.amazonaws.com", "127.0.0.1:4569" */
    const char *path;   /* the object's path, not encoded: "/test.txt", "/bucket/a b.mp4" */
    const char *query;  /* extra query parameters, already "k=v&k2=v2" encoded, or NULL
                         * (multipart: "partNumber=1&uploadId=...") */
    int64_t now_s;      /* signing time, Unix seconds (clock_now_ms() / 1000) */
    int expires_s;      /* 1..604800 (S3's limit: 7 days) */
} s3_presign_t;

/* The presigned URL of r, a new string the caller frees; NULL with *err
 * (when not NULL) set to FENTA_EINVAL (a missing field, expires out of
 * range, a path not starting with '/', a host with a character a Host
 * header cannot hold) or FENTA_ENOMEM. The payload is UNSIGNED-PAYLOAD and
 * only host is signed, as S3 expects of presigned URLs. */
char *s3_presign_url(const s3_creds_t *c, const s3_presign_t *r, int *err);

#endif
