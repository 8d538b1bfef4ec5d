/* crypto.h - the small cryptography every layer needs, written once: SHA-256,
 * HMAC-SHA256, SHA-1 (name-based UUIDs only), random bytes, base64 in its
 * three spellings, hex, constant-time comparison and wiping.
 *
 * This is the only includer of OpenSSL's headers apart from the TLS setup of
 * the HTTP server (http/listen.c), which needs libssl itself. Everything here
 * returns 0 or a negative FENTA_E* code; OpenSSL's 1/0 returns stop here.
 * Buffers are the caller's; nothing is allocated. */
#ifndef FENTA_CRYPTO_H
#define FENTA_CRYPTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_SHA1_LEN 20

/* SHA-256 of len bytes into out. FENTA_EIO when OpenSSL refuses (never seen,
 * but a digest that was not computed must not be used). */
int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN]);

/* SHA-256 of a || b, for digests over two pieces (a request's path and body)
 * without copying them together. Either piece may be NULL when its length is 0. */
int crypto_sha256_2(const void *a, size_t alen, const void *b, size_t blen,
                    uint8_t out[CRYPTO_SHA256_LEN]);

/* SHA-1, for RFC 4122 name-based (version 5) UUIDs, which are defined with
 * it; never for anything that must resist forgery. */
int crypto_sha1(const void *data, size_t len, uint8_t out[CRYPTO_SHA1_LEN]);

/* HMAC-SHA256(key, msg) into out. A NULL key or msg is allowed with length 0. */
int crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                       uint8_t out[CRYPTO_SHA256_LEN]);

/* len bytes from the operating system's CSPRNG (through OpenSSL's DRBG).
 * FENTA_EIO when no randomness could be had: the caller must not go on with
 * what is in out. */
int crypto_random(void *out, size_t len);

/* Whether a and b hold the same n bytes, in time that depends on n only. */
bool crypto_equal(const void *a, const void *b, size_t n);

/* Zeroes n bytes in a way the compiler may not drop (keys, secrets). */
void crypto_wipe(void *p, size_t n);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes, NUL-terminated). */
void crypto_hex(const void *in, size_t len, char *out);

/* Decodes exactly 2 * len hex digits (either case) into out[len], without
 * branching on the digit values. FENTA_EINVAL on any other character. */
int crypto_unhex(const char *hex, void *out, size_t len);

/* The spellings of base64 (RFC 4648). */
typedef enum {
    CRYPTO_B64_STD, /* "+/", '=' padding: encode pads; decode wants len % 4 == 0 */
    CRYPTO_B64_URL, /* "-_", no padding; decode is strict: no padding, no other
                       character, never len % 4 == 1, zero trailing bits, so each
                       byte string has exactly one accepted spelling (signatures) */
    CRYPTO_B64_ANY, /* decode only: either alphabet, white space skipped, padding
                       optional, trailing bits ignored (other services' answers) */
} crypto_b64_t;

/* Characters the encoder writes for n bytes, without the NUL. */
#define CRYPTO_B64_LEN(n) ((((n) + 2) / 3) * 4)
#define CRYPTO_B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Base64 of len bytes into out, NUL-terminated; CRYPTO_B64_STD or _URL.
 * Returns the characters written, FENTA_ETOOBIG (nothing usable written) when
 * out_size cannot hold them and the NUL, FENTA_EINVAL for NULL buffers or
 * CRYPTO_B64_ANY. */
int crypto_b64_encode(crypto_b64_t kind, const void *in, size_t len, char *out, size_t out_size);

/* Decodes len characters into out, storing the byte count in *out_len.
 * FENTA_EINVAL for input the spelling refuses, FENTA_ETOOBIG when out_size
 * is too small (then out holds nothing usable). */
int crypto_b64_decode(crypto_b64_t kind, const char *in, size_t len, void *out, size_t out_size,
                      size_t *out_len);

#endif
