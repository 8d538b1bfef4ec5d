/* crypto.c - see crypto.h. OpenSSL for the digests, the MAC, the random
 * bytes and the comparison; base64 and hex by hand, because OpenSSL's
 * EVP_EncodeBlock knows neither the URL alphabet nor the strictness that
 * signatures need, and its decoder counts padding into the length. */
#include "runtime/crypto.h"
#include "runtime/error.h"
#include <ctype.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

static int digest(const EVP_MD *md, const void *a, size_t alen, const void *b, size_t blen,
                  uint8_t *out, unsigned want)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned n = 0;
    int ok = c && EVP_DigestInit_ex(c, md, NULL) == 1 &&
             (alen == 0 || EVP_DigestUpdate(c, a, alen) == 1) &&
             (blen == 0 || EVP_DigestUpdate(c, b, blen) == 1) &&
             EVP_DigestFinal_ex(c, out, &n) == 1 && n == want;
    EVP_MD_CTX_free(c);
    return ok ? 0 : FENTA_EIO;
}

int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
    return digest(EVP_sha256(), data, len, NULL, 0, out, CRYPTO_SHA256_LEN);
}

int crypto_sha256_2(const void *a, size_t alen, const void *b, size_t blen,
                    uint8_t out[CRYPTO_SHA256_LEN])
{
    return digest(EVP_sha256(), a, alen, b, blen, out, CRYPTO_SHA256_LEN);
}

int crypto_sha1(const void *data, size_t len, uint8_t out[CRYPTO_SHA1_LEN])
{
    return digest(EVP_sha1(), data, len, NULL, 0, out, CRYPTO_SHA1_LEN);
}

int crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                       uint8_t out[CRYPTO_SHA256_LEN])
{
    static const uint8_t none = 0; /* HMAC() wants a non-NULL pointer even for 0 bytes */
    unsigned n = 0;
    if (keylen > INT_MAX)
        return FENTA_EINVAL;
    if (!HMAC(EVP_sha256(), keylen ? key : &none, (int)keylen, len ? msg : &none, len, out, &n) ||
        n != CRYPTO_SHA256_LEN)
        return FENTA_EIO;
    return 0;
}

int crypto_random(void *out, size_t len)
{
    /* RAND_bytes takes an int: draw in pieces so any size works. */
    uint8_t *p = out;
    while (len > 0) {
        int n = len > (size_t)INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, n) != 1)
            return FENTA_EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

bool crypto_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void crypto_wipe(void *p, size_t n)
{
    if (p)
        OPENSSL_cleanse(p, n);
}

/* ---- hex ------------------------------------------------------------------------ */

void crypto_hex(const void *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = in;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Without branching on the digit values: a stored token hash is not secret in
 * itself, but keeping the whole comparison flat costs nothing. */
int crypto_unhex(const char *hex, void *out, size_t len)
{
    uint8_t *o = out;
    unsigned bad = 0;
    for (size_t i = 0; i < 2 * len; i++) {
        unsigned c = (unsigned char)hex[i];
        unsigned d = c - '0';          /* 0..9 when a digit, huge otherwise */
        unsigned l = (c | 0x20) - 'a'; /* 0..5 when a-f/A-F */
        unsigned is_d = (d < 10), is_l = (l < 6);
        unsigned v = (d & -is_d) | ((l + 10) & -is_l);
        bad |= !(is_d | is_l);
        if (i & 1)
            o[i / 2] |= (uint8_t)v;
        else
            o[i / 2] = (uint8_t)(v << 4);
    }
    return bad == 0 ? 0 : FENTA_EINVAL;
}

/* ---- base64 --------------------------------------------------------------------- */

static const char B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int crypto_b64_encode(crypto_b64_t kind, const void *in, size_t len, char *out, size_t out_size)
{
    if (!out || (!in && len) || kind == CRYPTO_B64_ANY)
        return FENTA_EINVAL;
    const bool pad = kind == CRYPTO_B64_STD;
    const char *abc = pad ? B64_STD : B64_URL;
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return FENTA_ETOOBIG;
    size_t need = pad ? CRYPTO_B64_LEN(len) : CRYPTO_B64URL_LEN(len);
    if (out_size < need + 1)
        return FENTA_ETOOBIG;
    const uint8_t *b = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (len - i > 0) {
        uint32_t v = (uint32_t)b[i] << 16 | (len - i == 2 ? (uint32_t)b[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        if (len - i == 2)
            out[o++] = abc[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return (int)o;
}

/* Value of c in the alphabets kind accepts, or -1. Branchy only on the
 * character class, which is public (the shape of a token), never on secret
 * bits beyond what the caller already holds. */
static int b64_value(crypto_b64_t kind, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if ((c == '+' && kind != CRYPTO_B64_URL) || (c == '-' && kind != CRYPTO_B64_STD))
        return 62;
    if ((c == '/' && kind != CRYPTO_B64_URL) || (c == '_' && kind != CRYPTO_B64_STD))
        return 63;
    return -1;
}

int crypto_b64_decode(crypto_b64_t kind, const char *in, size_t len, void *out, size_t out_size,
                      size_t *out_len)
{
    if ((!in && len) || !out_len)
        return FENTA_EINVAL;
    size_t pad = 0; /* '=' seen at the end */
    if (kind == CRYPTO_B64_STD) {
        if (len % 4)
            return FENTA_EINVAL;
        while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
            pad++;
    } else if (kind == CRYPTO_B64_URL && len % 4 == 1) {
        return FENTA_EINVAL;
    }
    /* An upper bound for ANY (white space and padding make it shorter), the
     * exact size otherwise. */
    size_t data = len - pad;
    size_t need = data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0);
    if (kind != CRYPTO_B64_ANY && (need > out_size || (!out && need)))
        return FENTA_ETOOBIG;
    uint8_t *o = out;
    size_t n = 0, tail = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < data; i++) {
        unsigned char c = (unsigned char)in[i];
        if (kind == CRYPTO_B64_ANY && isspace(c))
            continue;
        if (kind == CRYPTO_B64_ANY && c == '=') {
            tail++;
            continue;
        }
        int v = b64_value(kind, c);
        if (v < 0 || tail > 0) /* garbage, or data after padding */
            return FENTA_EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= out_size)
                return FENTA_ETOOBIG;
            o[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero in the strict spelling: otherwise "AB" and
     * "AC" would both decode to the same byte and a signature could be
     * re-spelt. */
    if (kind == CRYPTO_B64_URL && acc != 0)
        return FENTA_EINVAL;
    *out_len = n;
    return 0;
}
