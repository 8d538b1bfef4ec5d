/* cursor.c - pagination cursors: compact JSON sealed with a truncated
 * HMAC-SHA256 in strict base64url, and the ?limit= parser.
 *
 * Wire format (before base64url): version (1 byte) || JSON || tag (16 bytes),
 * tag = HMAC-SHA256(key, DOMAIN || version || JSON)[0..16).
 *
 * The decoder is strict on purpose: base64url has several spellings of the
 * same bytes (padding, non-zero bits in the last character), and accepting
 * them would mean a changed cursor could still decode. Here every character
 * of a valid cursor matters. */
#include "http/cursor.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define VERSION 1
#define TAG_BYTES 16 /* 128 bits: forging needs 2^128 tries, online */
/* Separates this MAC from any other made with the same key (JWTs, CSRF). */
static const char DOMAIN[] = "fenta/cursor/v1";
/* The raw bytes that fit in CURSOR_MAX_LEN base64url characters. */
#define MAX_RAW (CURSOR_MAX_LEN / 4 * 3)

static bool tag(const uint8_t key[CURSOR_KEY_BYTES], const unsigned char *msg, size_t len,
                unsigned char out[TAG_BYTES])
{
    /* DOMAIN || msg, MACed in one call */
    size_t dlen = sizeof DOMAIN; /* the NUL too: no domain is a prefix of another */
    unsigned char *buf = malloc(dlen + len);
    if (!buf)
        return false;
    memcpy(buf, DOMAIN, dlen);
    memcpy(buf + dlen, msg, len);
    uint8_t full[CRYPTO_SHA256_LEN];
    bool ok = crypto_hmac_sha256(key, CURSOR_KEY_BYTES, buf, dlen + len, full) == 0;
    free(buf);
    if (ok)
        memcpy(out, full, TAG_BYTES);
    crypto_wipe(full, sizeof full);
    return ok;
}

/* Strict base64url: one accepted spelling per byte string. */
static char *b64url_encode(const unsigned char *in, size_t n)
{
    size_t cap = CRYPTO_B64URL_LEN(n) + 1;
    char *out = malloc(cap);
    if (out && crypto_b64_encode(CRYPTO_B64_URL, in, n, out, cap) < 0) {
        free(out);
        out = NULL;
    }
    return out;
}

static long b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    size_t len = 0;
    return crypto_b64_decode(CRYPTO_B64_URL, s, n, out, cap, &len) == 0 ? (long)len : -1;
}

char *cursor_encode(const uint8_t key[CURSOR_KEY_BYTES], const json_t *position)
{
    if (!key || !json_is_object(position))
        return NULL;
    char *json = json_dumps(position, JSON_COMPACT | JSON_SORT_KEYS);
    if (!json)
        return NULL;
    size_t jlen = strlen(json);
    size_t raw_len = 1 + jlen + TAG_BYTES;
    if (raw_len > MAX_RAW) {
        free(json);
        return NULL;
    }
    unsigned char *raw = malloc(raw_len);
    if (!raw) {
        free(json);
        return NULL;
    }
    raw[0] = VERSION;
    memcpy(raw + 1, json, jlen);
    free(json);
    char *out = NULL;
    if (tag(key, raw, 1 + jlen, raw + 1 + jlen))
        out = b64url_encode(raw, raw_len);
    free(raw);
    return out;
}

static json_t *decode_fail(int *err, int code)
{
    if (err)
        *err = code;
    return NULL;
}

json_t *cursor_decode(const uint8_t key[CURSOR_KEY_BYTES], const char *cursor, int *err)
{
    if (err)
        *err = 0;
    if (!key || !cursor)
        return decode_fail(err, FENTA_EINVAL);
    /* strnlen: a hostile cursor is never read past the cap */
    size_t n = strnlen(cursor, CURSOR_MAX_LEN + 1);
    if (n == 0 || n > CURSOR_MAX_LEN)
        return decode_fail(err, FENTA_EINVAL);
    unsigned char raw[MAX_RAW + 2];
    long raw_len = b64url_decode(cursor, n, raw, sizeof raw);
    /* the smallest real cursor holds "{}" */
    if (raw_len < 1 + 2 + TAG_BYTES || raw[0] != VERSION)
        return decode_fail(err, FENTA_EINVAL);
    size_t body = (size_t)raw_len - TAG_BYTES;
    unsigned char want[TAG_BYTES];
    if (!tag(key, raw, body, want))
        return decode_fail(err, FENTA_ENOMEM);
    if (!crypto_equal(want, raw + body, TAG_BYTES))
        return decode_fail(err, FENTA_EINVAL);
    /* Only our own output gets this far; the checks stay for a key that
     * leaked or a future encoder bug. */
    json_error_t je;
    json_t *pos = json_loadb((const char *)raw + 1, body - 1, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(pos)) {
        json_decref(pos);
        return decode_fail(err, FENTA_EINVAL);
    }
    return pos;
}

int cursor_limit(const char *limit_param, int dflt, int max, int *out)
{
    if (max < 1 || dflt < 1 || dflt > max)
        return FENTA_EINVAL;
    if (!limit_param) {
        *out = dflt;
        return 0;
    }
    if (!*limit_param)
        return FENTA_EINVAL;
    long v = 0;
    for (const char *p = limit_param; *p; p++) {
        if (*p < '0' || *p > '9')
            return FENTA_EINVAL;
        v = v * 10 + (*p - '0');
        if (v > max) /* also stops any overflow */
            return FENTA_EINVAL;
    }
    if (v < 1)
        return FENTA_EINVAL;
    *out = (int)v;
    return 0;
}
