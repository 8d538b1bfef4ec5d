/* s3_sign.c - SigV4 query-string signing (see s3_sign.h). */
#include "storage/s3_sign.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* RFC 3986 unreserved characters pass; every other byte is %XX in upper
 * case, as SigV4 requires. keep_slash leaves '/' alone (object paths). */
static void uri_encode(strbuf_t *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
                     (keep_slash && *p == '/');
        if (plain) {
            strbuf_appendc(b, (char)*p);
        } else {
            strbuf_appendc(b, '%');
            strbuf_appendc(b, hex[*p >> 4]);
            strbuf_appendc(b, hex[*p & 15]);
        }
    }
}

static bool host_ok(const char *h)
{
    if (!*h)
        return false;
    for (; *h; h++)
        if (*h <= ' ' || *h == '/' || *h == '?' || *h == '#' || *h == '@' || *h == 0x7f)
            return false;
    return true;
}

/* The query the signature covers, parameters sorted by name: the X-Amz-*
 * ones sort before any lower-case S3 parameter, so the caller's extra
 * query (already sorted and encoded) goes after them. */
static void signed_query(strbuf_t *q, const s3_creds_t *c, const char *scope, const char *amzdate,
                         int expires_s, const char *extra)
{
    strbuf_append(q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    strbuf_t cred = STRBUF_INIT;
    strbuf_appendf(&cred, "%s/%s", c->access_key, scope);
    uri_encode(q, strbuf_str(&cred), false);
    strbuf_free(&cred);
    strbuf_appendf(q, "&X-Amz-Date=%s&X-Amz-Expires=%d&X-Amz-SignedHeaders=host", amzdate,
                   expires_s);
    if (extra && *extra)
        strbuf_appendf(q, "&%s", extra);
}

char *s3_presign_url(const s3_creds_t *c, const s3_presign_t *r, int *err)
{
    int rc = FENTA_EINVAL;
    char *url = NULL;
    if (!c || !r || !c->access_key || !c->secret_key || !c->region || !r->method || !r->scheme ||
        !r->host || !r->path || r->path[0] != '/' || !host_ok(r->host) || r->expires_s < 1 ||
        r->expires_s > 604800 || r->now_s < 0)
        goto out;
    const char *service = c->service ? c->service : "s3";
    char amzdate[17], day[9];
    time_t t = (time_t)r->now_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(amzdate, sizeof amzdate, "%Y%m%dT%H%M%SZ", &tm) != 16)
        goto out;
    memcpy(day, amzdate, 8);
    day[8] = 0;
    char scope[160];
    if (snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", day, c->region, service) >=
        (int)sizeof scope)
        goto out;

    strbuf_t path = STRBUF_INIT, query = STRBUF_INIT, creq = STRBUF_INIT;
    uri_encode(&path, r->path, true);
    signed_query(&query, c, scope, amzdate, r->expires_s, r->query);
    /* The canonical request: method, path, query, the one signed header,
     * the list of signed headers, and the payload's hash (not known). */
    strbuf_appendf(&creq, "%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", r->method,
                   strbuf_str(&path), strbuf_str(&query), r->host);
    uint8_t h[CRYPTO_SHA256_LEN], k[CRYPTO_SHA256_LEN];
    char hhex[2 * CRYPTO_SHA256_LEN + 1], sig[2 * CRYPTO_SHA256_LEN + 1];
    rc = FENTA_ENOMEM;
    if (strbuf_failed(&path) || strbuf_failed(&query) || strbuf_failed(&creq) ||
        crypto_sha256(strbuf_str(&creq), strbuf_len(&creq), h) != 0)
        goto done;
    crypto_hex(h, sizeof h, hhex);
    char sts[512];
    if (snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amzdate, scope, hhex) >=
        (int)sizeof sts)
        goto done;
    /* The signing key: "AWS4" + secret, then the scope's parts in turn. */
    char k0[256];
    if (snprintf(k0, sizeof k0, "AWS4%s", c->secret_key) >= (int)sizeof k0) {
        rc = FENTA_EINVAL;
        goto done;
    }
    const char *parts[] = {day, c->region, service, "aws4_request"};
    if (crypto_hmac_sha256(k0, strlen(k0), parts[0], strlen(parts[0]), k) != 0)
        goto wipe;
    for (int i = 1; i < 4; i++) {
        uint8_t next[CRYPTO_SHA256_LEN];
        if (crypto_hmac_sha256(k, sizeof k, parts[i], strlen(parts[i]), next) != 0)
            goto wipe;
        memcpy(k, next, sizeof k);
        crypto_wipe(next, sizeof next);
    }
    if (crypto_hmac_sha256(k, sizeof k, sts, strlen(sts), h) != 0)
        goto wipe;
    crypto_hex(h, sizeof h, sig);
    strbuf_t u = STRBUF_INIT;
    strbuf_appendf(&u, "%s://%s%s?%s&X-Amz-Signature=%s", r->scheme, r->host, strbuf_str(&path),
                   strbuf_str(&query), sig);
    url = strbuf_take(&u, NULL);
    rc = url ? 0 : FENTA_ENOMEM;
wipe:
    crypto_wipe(k0, sizeof k0);
    crypto_wipe(k, sizeof k);
done:
    strbuf_free(&path);
    strbuf_free(&query);
    strbuf_free(&creq);
out:
    if (err)
        *err = rc;
    return url;
}
