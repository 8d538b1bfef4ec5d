/* token.h - opaque bearer secrets: personal access tokens and refresh tokens.
 *
 * A secret is a type prefix followed by 43 base62 characters that encode 32
 * random bytes (crypto_random, 256 bits):
 *     fenta_pat_<43 base62>   personal access token
 *     fenta_rt_<43 base62>    refresh token
 * The server stores only token_hash() of a secret (hex SHA-256 of the whole
 * string, prefix included): a database dump reveals no usable token. No salt
 * or slow hash is needed because the secret itself carries 256 random bits.
 * token_public_id() is the part safe to show in lists and logs.
 *
 * token_classify() tells a presented bearer string apart (PAT, refresh, JWT)
 * from its public shape alone, before any secret is looked at.
 *
 * All functions are thread-safe and allocate nothing; outputs go to caller
 * buffers of the documented sizes. */
#ifndef FENTA_HTTP_TOKEN_H
#define FENTA_HTTP_TOKEN_H
#include <stddef.h>

/* What a presented bearer string looks like. */
typedef enum token_kind {
    TOKEN_KIND_INVALID = 0, /* none of the shapes below */
    TOKEN_KIND_PAT,         /* fenta_pat_ + 43 base62 */
    TOKEN_KIND_REFRESH,     /* fenta_rt_ + 43 base62 */
    TOKEN_KIND_JWT,         /* three base64url segments, header starting "{", <= 4 KiB */
} token_kind_t;

#define TOKEN_PAT_PREFIX "fenta_pat_"
#define TOKEN_REFRESH_PREFIX "fenta_rt_"
/* Base62 characters after the type prefix: ceil(256 / log2(62)). */
#define TOKEN_BODY_LEN 43
/* Longest secret (PAT), without the NUL. Buffers are TOKEN_SECRET_MAX + 1. */
#define TOKEN_SECRET_MAX (sizeof(TOKEN_PAT_PREFIX) - 1 + TOKEN_BODY_LEN)
/* Hex SHA-256, without the NUL. Buffers are TOKEN_HASH_HEX_LEN + 1. */
#define TOKEN_HASH_HEX_LEN 64
/* Display id: the first 8 body characters. Buffers are TOKEN_PUBLIC_ID_LEN + 1. */
#define TOKEN_PUBLIC_ID_LEN 8
/* Largest JWT token_classify() accepts as TOKEN_KIND_JWT (same cap as jwt.h). */
#define TOKEN_JWT_MAX 4096

/* A fresh secret of kind PAT or REFRESH, NUL-terminated, into out (at least
 * TOKEN_SECRET_MAX + 1 bytes). FENTA_EINVAL for another kind, FENTA_EIO when
 * the OpenSSL RNG fails (never falls back to a weaker source). */
int token_generate(token_kind_t kind, char *out, size_t out_size);

/* Storage form of a presented secret: lowercase hex SHA-256 of the len bytes,
 * NUL-terminated into out (at least TOKEN_HASH_HEX_LEN + 1 bytes). Hashes any
 * bytes; classify first if the shape matters. */
int token_hash(const char *secret, size_t len, char *out, size_t out_size);

/* 0 when the presented secret hashes to stored_hex (a token_hash() output),
 * FENTA_EAUTH otherwise. The comparison is CRYPTO_memcmp over the digests, so
 * its time says nothing about how close a guess was. */
int token_verify(const char *presented, size_t len, const char *stored_hex);

/* The display id of a PAT or refresh token (first 8 characters after the type
 * prefix) into out (at least TOKEN_PUBLIC_ID_LEN + 1 bytes); FENTA_EINVAL when
 * secret is not a well-formed PAT or refresh token. */
int token_public_id(const char *secret, size_t len, char *out, size_t out_size);

/* The kind of a presented bearer string, from its shape only (a JWT is not
 * verified here: use jwts_verify). Never reads past len. */
token_kind_t token_classify(const char *s, size_t len);

#endif
