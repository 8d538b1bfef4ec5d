/* token.c - opaque bearer secrets (generate, hash, verify, classify). See
 * token.h for the formats. */
#include "http/token.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SECRET_BYTES 32

static const char BASE62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static bool is_base62(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The 32 bytes as a fixed-width 43-digit base62 number, most significant digit
 * first. Fixed width (leading '0's kept) so every secret has the same length
 * and a length check is a complete shape check. 62^43 > 2^256, so 43 digits
 * always suffice. */
static void base62_encode32(const unsigned char in[SECRET_BYTES], char out[TOKEN_BODY_LEN])
{
    unsigned char num[SECRET_BYTES];
    memcpy(num, in, sizeof num);
    for (int i = TOKEN_BODY_LEN - 1; i >= 0; i--) {
        unsigned rem = 0;
        for (size_t k = 0; k < sizeof num; k++) { /* num /= 62, rem = num % 62 */
            unsigned cur = (rem << 8) | num[k];
            num[k] = (unsigned char)(cur / 62);
            rem = cur % 62;
        }
        out[i] = BASE62[rem];
    }
    crypto_wipe(num, sizeof num);
}

static const char *kind_prefix(token_kind_t kind, size_t *len)
{
    switch (kind) {
    case TOKEN_KIND_PAT:
        *len = sizeof(TOKEN_PAT_PREFIX) - 1;
        return TOKEN_PAT_PREFIX;
    case TOKEN_KIND_REFRESH:
        *len = sizeof(TOKEN_REFRESH_PREFIX) - 1;
        return TOKEN_REFRESH_PREFIX;
    default:
        *len = 0;
        return NULL;
    }
}

int token_generate(token_kind_t kind, char *out, size_t out_size)
{
    size_t plen;
    const char *prefix = kind_prefix(kind, &plen);
    if (!prefix || !out || out_size < plen + TOKEN_BODY_LEN + 1)
        return FENTA_EINVAL;
    unsigned char raw[SECRET_BYTES];
    if (crypto_random(raw, sizeof raw) != 0)
        return FENTA_EIO;
    memcpy(out, prefix, plen);
    base62_encode32(raw, out + plen);
    out[plen + TOKEN_BODY_LEN] = '\0';
    crypto_wipe(raw, sizeof raw);
    return 0;
}

int token_hash(const char *secret, size_t len, char *out, size_t out_size)
{
    uint8_t md[CRYPTO_SHA256_LEN];
    if ((!secret && len) || !out || out_size < TOKEN_HASH_HEX_LEN + 1)
        return FENTA_EINVAL;
    int rc = crypto_sha256(secret, len, md);
    if (rc)
        return rc;
    crypto_hex(md, sizeof md, out);
    return 0;
}

int token_verify(const char *presented, size_t len, const char *stored_hex)
{
    uint8_t got[CRYPTO_SHA256_LEN], want[CRYPTO_SHA256_LEN];
    if (!presented || !stored_hex || strnlen(stored_hex, 65) != TOKEN_HASH_HEX_LEN)
        return FENTA_EAUTH;
    if (crypto_unhex(stored_hex, want, sizeof want) != 0)
        return FENTA_EAUTH;
    if (crypto_sha256(presented, len, got))
        return FENTA_EAUTH;
    return crypto_equal(got, want, sizeof got) ? 0 : FENTA_EAUTH;
}

/* Kind of s when it is a well-formed PAT or refresh token, else INVALID; sets
 * *body to the 43 base62 characters. */
static token_kind_t opaque_kind(const char *s, size_t len, const char **body)
{
    static const token_kind_t kinds[] = {TOKEN_KIND_PAT, TOKEN_KIND_REFRESH};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t plen;
        const char *prefix = kind_prefix(kinds[k], &plen);
        if (len != plen + TOKEN_BODY_LEN || memcmp(s, prefix, plen) != 0)
            continue;
        for (size_t i = plen; i < len; i++)
            if (!is_base62((unsigned char)s[i]))
                return TOKEN_KIND_INVALID;
        *body = s + plen;
        return kinds[k];
    }
    return TOKEN_KIND_INVALID;
}

int token_public_id(const char *secret, size_t len, char *out, size_t out_size)
{
    const char *body = NULL;
    if (!secret || !out || out_size < TOKEN_PUBLIC_ID_LEN + 1)
        return FENTA_EINVAL;
    if (opaque_kind(secret, len, &body) == TOKEN_KIND_INVALID)
        return FENTA_EINVAL;
    memcpy(out, body, TOKEN_PUBLIC_ID_LEN);
    out[TOKEN_PUBLIC_ID_LEN] = '\0';
    return 0;
}

/* Three non-empty base64url segments whose header begins "eyJ" (base64 of
 * '{"'). Only the shape: jwts_verify does the real checks. */
static bool looks_like_jwt(const char *s, size_t len)
{
    if (len < 5 || len > TOKEN_JWT_MAX || memcmp(s, "eyJ", 3) != 0)
        return false;
    size_t dots = 0, seg = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (seg == 0)
                return false;
            dots++;
            seg = 0;
        } else if (!is_base62((unsigned char)s[i]) && s[i] != '-' && s[i] != '_') {
            return false;
        } else {
            seg++;
        }
    }
    return dots == 2 && seg > 0;
}

token_kind_t token_classify(const char *s, size_t len)
{
    const char *body;
    if (!s)
        return TOKEN_KIND_INVALID;
    token_kind_t k = opaque_kind(s, len, &body);
    if (k != TOKEN_KIND_INVALID)
        return k;
    return looks_like_jwt(s, len) ? TOKEN_KIND_JWT : TOKEN_KIND_INVALID;
}
