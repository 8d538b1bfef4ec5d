/* jwt.h - HS256 access tokens and session-bound CSRF tokens.
 *
 * Prefix jwts_ ("JWT service"), not jwt_: libjwt exports jwt_* symbols
 * (jwt_new, jwt_decode, jwt_b64_decode, ...) and a clash would only show at
 * link time. <jwt.h> from libjwt is included by jwt.c alone.
 *
 * Access token claims: sub (user id), org (current organisation, optional),
 * sid (session = refresh-token family id), iat, nbf, exp, iss, aud, jti.
 *
 * Why verification does so much itself: Debian 12's libjwt 1.10 does not
 * check exp/nbf/iss/aud at all, and with a NULL key accepts any token with no
 * signature check. jwts_verify therefore always hands libjwt the key, requires
 * the header to be exactly {"alg":"HS256"} (optionally "typ":"JWT") before
 * libjwt sees it, re-checks the algorithm libjwt reports, and then checks
 * every claim's presence, type and value against the config and the clock
 * (clock_now_ms, so tests drive it with clock_fake_set).
 *
 * A jwts_t is immutable after jwts_new: share one among all event-loop
 * threads. Nothing here allocates per call except inside libjwt/jansson. */
#ifndef FENTA_HTTP_JWT_H
#define FENTA_HTTP_JWT_H
#include <stddef.h>
#include <stdint.h>

/* Largest token accepted or produced, in bytes (without the NUL). */
#define JWTS_TOKEN_MAX 4096
/* Longest sub/org/sid/jti value; longer ones are refused. */
#define JWTS_ID_MAX 64
/* Shortest HMAC key accepted (RFC 7518 §3.2: at least the hash size). */
#define JWTS_KEY_MIN 32
/* Defaults written by jwts_config_init. */
#define JWTS_DEFAULT_TTL_S 900   /* 15 minutes */
#define JWTS_DEFAULT_LEEWAY_S 30 /* clock skew tolerated on exp, nbf and iat */
/* Length of a CSRF token (base64url of an HMAC-SHA256), without the NUL. */
#define JWTS_CSRF_LEN 43

typedef struct jwts jwts_t;

typedef struct jwts_config {
    const unsigned char *key; /* HMAC-SHA256 secret, JWTS_KEY_MIN..1024 bytes; copied */
    size_t key_len;           /* bytes in key */
    const char *issuer;       /* iss written and required on verify; copied */
    const char *audience;     /* aud written and required on verify (a string); copied */
    int64_t ttl_s;            /* access-token lifetime, 1..86400 s */
    int64_t leeway_s;         /* skew tolerance, 0..300 s */
} jwts_config_t;

/* The claims of a token, signed or verified. Fixed buffers: no free. */
typedef struct jwts_claims {
    char sub[JWTS_ID_MAX + 1]; /* user id */
    char org[JWTS_ID_MAX + 1]; /* current organisation id; "" when the token has none */
    char sid[JWTS_ID_MAX + 1]; /* session (refresh family) id, for revocation checks */
    char jti[JWTS_ID_MAX + 1]; /* unique token id (22 base64url chars when we sign) */
    int64_t iat;               /* issued at, Unix seconds */
    int64_t nbf;               /* not before, Unix seconds */
    int64_t exp;               /* expiry, Unix seconds */
} jwts_claims_t;

/* Defaults: no key, issuer or audience; ttl 15 min; leeway 30 s. */
void jwts_config_init(jwts_config_t *cfg);

/* A signer/verifier for cfg (copied; cfg may be freed afterwards). NULL when
 * the key is shorter than JWTS_KEY_MIN or longer than 1024 bytes, issuer or
 * audience is missing or empty, ttl or leeway is out of range, or on OOM. */
jwts_t *jwts_new(const jwts_config_t *cfg);

/* Wipes the key copies and frees; accepts NULL and *self_p == NULL. */
void jwts_destroy(jwts_t **self_p);

/* Signs an access token for sub (required), org (NULL or "" for none) and sid
 * (required), each 1..JWTS_ID_MAX printable ASCII characters without spaces.
 * iat = nbf = now, exp = now + ttl, a fresh random jti. Writes the
 * NUL-terminated token to out (out_size >= JWTS_TOKEN_MAX + 1 is always
 * enough) and, when issued is not NULL, the claims written (exp for the
 * client's expires_in). FENTA_EINVAL for bad ids, FENTA_ETOOBIG for a small
 * out, FENTA_EIO when the RNG or libjwt fails, FENTA_ENOMEM. */
int jwts_sign(const jwts_t *j, const char *sub, const char *org, const char *sid, char *out,
              size_t out_size, jwts_claims_t *issued);

/* Verifies the len bytes of token (need not be NUL-terminated, e.g. straight
 * from an Authorization header) and fills *claims. Returns 0, or FENTA_EAUTH
 * for every kind of refusal; then, when reason is not NULL, *reason is a
 * static string for logs (not for clients), one of:
 *   "malformed"          not three strict-base64url segments (header and
 *                        payload non-empty), or header/payload not a JSON
 *                        object, or a duplicated key in either
 *   "too large"          more than JWTS_TOKEN_MAX bytes
 *   "unsupported header" alg other than exactly "HS256" (none, HS512, RS256,
 *                        ...), typ other than "JWT", or any other header field
 *   "bad signature"      the HMAC does not match the key (or is not 32 bytes)
 *   "missing claim"      sub, sid, iat, nbf, exp, iss, aud or jti absent
 *   "bad claim"          a claim of the wrong type or out of range
 *   "wrong issuer" / "wrong audience"
 *   "expired"            now >= exp + leeway
 *   "not yet valid"      now + leeway < nbf, or iat in the future
 * Claims are only examined after the signature has passed. On failure
 * *claims is zeroed. FENTA_EINVAL only when j or claims is NULL; FENTA_ENOMEM
 * when libjwt runs out of memory (answer 503, not 401). */
int jwts_verify(const jwts_t *j, const char *token, size_t len, jwts_claims_t *claims,
                const char **reason);

/* The CSRF token for session sid: base64url(HMAC-SHA256(k, sid)) where k is
 * derived from the JWT key with a separate label, so a CSRF token can never
 * pass as any other MAC we make. Written NUL-terminated to out (at least
 * JWTS_CSRF_LEN + 1 bytes). Stateless: the server recomputes it per request
 * from the session id in the (cookie) access token. FENTA_EINVAL for a bad
 * sid or buffer. */
int jwts_csrf_make(const jwts_t *j, const char *sid, char *out, size_t out_size);

/* 0 when the len bytes presented are the CSRF token of sid, FENTA_EAUTH
 * otherwise. Compared with CRYPTO_memcmp: time does not depend on how many
 * characters of a guess were right. */
int jwts_csrf_check(const jwts_t *j, const char *sid, const char *presented, size_t len);

#endif
