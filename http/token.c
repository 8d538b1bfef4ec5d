/* token.c - opaque bearer secrets (generate, hash, verify, classify) and the
 * strict base64url codec. See token.h for the formats. */
#include "http/token.h"
#include "runtime/error.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SECRET_BYTES 32

static const char BASE62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static bool is_base62(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Value of a base64url character, or -1. A table would be faster, but this is
 * branchy only on the character class, which is public (the shape of a token),
 * never on secret bits beyond what the caller already holds. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
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
    OPENSSL_cleanse(num, sizeof num);
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
    if (RAND_bytes(raw, sizeof raw) != 1)
        return FENTA_EIO;
    memcpy(out, prefix, plen);
    base62_encode32(raw, out + plen);
    out[plen + TOKEN_BODY_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

static int sha256(const char *data, size_t len, unsigned char md[32])
{
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return FENTA_EIO;
    return 0;
}

int token_hash(const char *secret, size_t len, char *out, size_t out_size)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    if ((!secret && len) || !out || out_size < TOKEN_HASH_HEX_LEN + 1)
        return FENTA_EINVAL;
    int rc = sha256(secret ? secret : "", len, md);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof md; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[TOKEN_HASH_HEX_LEN] = '\0';
    return 0;
}

/* Hex to bytes, without branching on the digit values (the stored hash is not
 * secret in itself, but it is cheap to keep the whole comparison flat). */
static bool unhex32(const char *hex, unsigned char out[32])
{
    unsigned bad = 0;
    for (size_t i = 0; i < 64; i++) {
        unsigned c = (unsigned char)hex[i];
        unsigned d = c - '0';          /* 0..9 when a digit, huge otherwise */
        unsigned l = (c | 0x20) - 'a'; /* 0..5 when a-f/A-F */
        unsigned is_d = (d < 10), is_l = (l < 6);
        unsigned v = (d & -is_d) | ((l + 10) & -is_l);
        bad |= !(is_d | is_l);
        if (i & 1)
            out[i / 2] |= (unsigned char)v;
        else
            out[i / 2] = (unsigned char)(v << 4);
    }
    return bad == 0;
}

int token_verify(const char *presented, size_t len, const char *stored_hex)
{
    unsigned char got[32], want[32];
    if (!presented || !stored_hex || strnlen(stored_hex, 65) != TOKEN_HASH_HEX_LEN)
        return FENTA_EAUTH;
    if (!unhex32(stored_hex, want))
        return FENTA_EAUTH;
    if (sha256(presented, len, got))
        return FENTA_EAUTH;
    return CRYPTO_memcmp(got, want, sizeof got) == 0 ? 0 : FENTA_EAUTH;
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
        } else if (b64url_value((unsigned char)s[i]) < 0) {
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

int token_b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_size)
{
    if (!out || (!in && len))
        return FENTA_EINVAL;
    size_t need = TOKEN_B64URL_LEN(len);
    if (out_size < need + 1 || need > INT32_MAX)
        return FENTA_ETOOBIG;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64URL[v >> 18];
        out[o++] = B64URL[(v >> 12) & 63];
        out[o++] = B64URL[(v >> 6) & 63];
        out[o++] = B64URL[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = B64URL[v >> 18];
        out[o++] = B64URL[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = B64URL[v >> 18];
        out[o++] = B64URL[(v >> 12) & 63];
        out[o++] = B64URL[(v >> 6) & 63];
    }
    out[o] = '\0';
    return (int)o;
}

int token_b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_size,
                        size_t *out_len)
{
    if ((!in && len) || !out_len || len % 4 == 1)
        return FENTA_EINVAL;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > out_size || (!out && need))
        return FENTA_ETOOBIG;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return FENTA_EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero: otherwise "AB" and "AC" would both decode
     * to the same byte and a signature could be re-spelt. */
    if (acc != 0)
        return FENTA_EINVAL;
    *out_len = o;
    return 0;
}
