/* jwt.c - HS256 access tokens (libjwt for the HMAC, everything libjwt 1.10
 * does not check done here) and session-bound CSRF tokens. The only file that
 * includes <jwt.h>. See jwt.h for the claim set and the refusals. */
#include "http/jwt.h"
#include "http/token.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include <jansson.h>
#include <jwt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 1024
#define TTL_MAX 86400
#define LEEWAY_MAX 300
#define JTI_BYTES 16
/* Largest decoded header/payload: 3/4 of the token cap. */
#define DECODED_MAX (JWTS_TOKEN_MAX / 4 * 3)

_Static_assert(JWTS_TOKEN_MAX == TOKEN_JWT_MAX, "token_classify and jwts_verify agree on size");

/* Label that derives the CSRF key from the JWT key (domain separation). */
static const char CSRF_LABEL[] = "fenta/csrf/v1";

struct jwts {
    unsigned char key[KEY_MAX]; /* HS256 secret, wiped on destroy */
    size_t key_len;             /* bytes used in key */
    unsigned char csrf_key[32]; /* HMAC(key, CSRF_LABEL), wiped on destroy */
    char *issuer;               /* required iss */
    char *audience;             /* required aud */
    int64_t ttl_s;              /* lifetime of signed tokens */
    int64_t leeway_s;           /* skew tolerance on exp, nbf, iat */
};

void jwts_config_init(jwts_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->ttl_s = JWTS_DEFAULT_TTL_S;
    cfg->leeway_s = JWTS_DEFAULT_LEEWAY_S;
}

jwts_t *jwts_new(const jwts_config_t *cfg)
{
    if (!cfg || !cfg->key || cfg->key_len < JWTS_KEY_MIN || cfg->key_len > KEY_MAX)
        return NULL;
    if (!cfg->issuer || !*cfg->issuer || !cfg->audience || !*cfg->audience)
        return NULL;
    if (cfg->ttl_s < 1 || cfg->ttl_s > TTL_MAX || cfg->leeway_s < 0 || cfg->leeway_s > LEEWAY_MAX)
        return NULL;
    jwts_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    memcpy(j->key, cfg->key, cfg->key_len);
    j->key_len = cfg->key_len;
    j->issuer = strdup(cfg->issuer);
    j->audience = strdup(cfg->audience);
    j->ttl_s = cfg->ttl_s;
    j->leeway_s = cfg->leeway_s;
    if (!j->issuer || !j->audience ||
        crypto_hmac_sha256(j->key, j->key_len, CSRF_LABEL, sizeof CSRF_LABEL - 1, j->csrf_key) !=
            0) {
        jwts_destroy(&j);
        return NULL;
    }
    return j;
}

void jwts_destroy(jwts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jwts_t *j = *self_p;
    crypto_wipe(j->key, sizeof j->key);
    crypto_wipe(j->csrf_key, sizeof j->csrf_key);
    free(j->issuer);
    free(j->audience);
    free(j);
    *self_p = NULL;
}

/* 1..JWTS_ID_MAX bytes of printable ASCII without space: ids end up in logs
 * and SQL parameters, so no control characters or quotes-with-spaces games. */
static bool valid_id(const char *s, size_t len)
{
    if (len < 1 || len > JWTS_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static bool valid_id_str(const char *s)
{
    return s && valid_id(s, strnlen(s, JWTS_ID_MAX + 1));
}

static int64_t now_s(void)
{
    int64_t ms = clock_now_ms();
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000); /* floor, even before 1970 */
}

int jwts_sign(const jwts_t *j, const char *sub, const char *org, const char *sid, char *out,
              size_t out_size, jwts_claims_t *issued)
{
    if (!j || !out || !valid_id_str(sub) || !valid_id_str(sid))
        return FENTA_EINVAL;
    if (org && *org && !valid_id_str(org))
        return FENTA_EINVAL;
    if (org && !*org)
        org = NULL;

    jwts_claims_t c;
    memset(&c, 0, sizeof c);
    unsigned char raw[JTI_BYTES];
    if (crypto_random(raw, sizeof raw) != 0)
        return FENTA_EIO;
    crypto_b64_encode(CRYPTO_B64_URL, raw, sizeof raw, c.jti, sizeof c.jti);
    strcpy(c.sub, sub); /* lengths checked by valid_id_str */
    strcpy(c.sid, sid);
    if (org)
        strcpy(c.org, org);
    c.iat = c.nbf = now_s();
    c.exp = c.iat + j->ttl_s;

    json_t *claims =
        json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s}", "sub", c.sub, "sid", c.sid, "iat",
                  (json_int_t)c.iat, "nbf", (json_int_t)c.nbf, "exp", (json_int_t)c.exp, "iss",
                  j->issuer, "aud", j->audience, "jti", c.jti);
    if (!claims)
        return FENTA_ENOMEM;
    if (org && json_object_set_new(claims, "org", json_string(c.org)) != 0) {
        json_decref(claims);
        return FENTA_ENOMEM;
    }
    char *claims_json = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    if (!claims_json)
        return FENTA_ENOMEM;

    int rc = FENTA_EIO;
    jwt_t *jw = NULL;
    char *tok = NULL;
    if (jwt_new(&jw) != 0) {
        rc = FENTA_ENOMEM;
        goto done;
    }
    if (jwt_set_alg(jw, JWT_ALG_HS256, j->key, (int)j->key_len) != 0 ||
        jwt_add_grants_json(jw, claims_json) != 0)
        goto done;
    tok = jwt_encode_str(jw);
    if (!tok)
        goto done;
    size_t n = strlen(tok);
    if (n > JWTS_TOKEN_MAX || n + 1 > out_size) {
        rc = FENTA_ETOOBIG;
        goto done;
    }
    memcpy(out, tok, n + 1);
    if (issued)
        *issued = c;
    rc = 0;
done:
    free(tok); /* libjwt 1.10 allocates with malloc; no jwt_free_str yet */
    jwt_free(jw);
    free(claims_json);
    return rc;
}

/* Decodes one strict-base64url segment and parses it as a JSON object,
 * refusing duplicate keys (so {"alg":"HS256","alg":"none"} cannot mean one
 * thing to us and another to libjwt). NULL when it is not one. */
static json_t *segment_object(const char *seg, size_t len)
{
    unsigned char buf[DECODED_MAX];
    size_t n = 0;
    if (crypto_b64_decode(CRYPTO_B64_URL, seg, len, buf, sizeof buf, &n) != 0)
        return NULL;
    json_t *v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* The header must say HS256 and nothing we do not understand: no "none",
 * no HS384/HS512 (libjwt would happily verify those with the same key), no
 * RS/ES (algorithm confusion), no kid/jku/x5u/crit. */
static bool header_ok(const json_t *h)
{
    const char *key;
    json_t *val;
    bool alg = false;
    json_object_foreach((json_t *)h, key, val)
    {
        if (strcmp(key, "alg") == 0 && json_is_string(val) &&
            strcmp(json_string_value(val), "HS256") == 0)
            alg = true;
        else if (strcmp(key, "typ") == 0 && json_is_string(val) &&
                 strcmp(json_string_value(val), "JWT") == 0)
            continue;
        else
            return false;
    }
    return alg;
}

/* Copies a required string id claim; "missing claim" / "bad claim". */
static const char *take_id(const json_t *payload, const char *name, char *dst, bool required)
{
    json_t *v = json_object_get(payload, name);
    if (!v)
        return required ? "missing claim" : NULL;
    if (!json_is_string(v))
        return "bad claim";
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (!valid_id(s, n)) /* also refuses an embedded NUL */
        return "bad claim";
    memcpy(dst, s, n);
    dst[n] = '\0';
    return NULL;
}

/* A required integer time claim, seconds since the epoch. JSON reals and
 * strings are refused: "exp":"9999999999" must not slip through a strtol. */
static const char *take_time(const json_t *payload, const char *name, int64_t *dst)
{
    json_t *v = json_object_get(payload, name);
    if (!v)
        return "missing claim";
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return "bad claim";
    *dst = (int64_t)json_integer_value(v);
    return NULL;
}

static const char *match_str(const json_t *payload, const char *name, const char *want,
                             const char *mismatch)
{
    json_t *v = json_object_get(payload, name);
    if (!v)
        return "missing claim";
    if (!json_is_string(v))
        return "bad claim";
    size_t n = json_string_length(v);
    if (n != strlen(want) || memcmp(json_string_value(v), want, n) != 0)
        return mismatch;
    return NULL;
}

/* Everything after the signature has been checked. */
static const char *check_claims(const jwts_t *j, const json_t *p, jwts_claims_t *c)
{
    const char *why;
    if ((why = take_id(p, "sub", c->sub, true)) || (why = take_id(p, "sid", c->sid, true)) ||
        (why = take_id(p, "jti", c->jti, true)) || (why = take_id(p, "org", c->org, false)) ||
        (why = take_time(p, "iat", &c->iat)) || (why = take_time(p, "nbf", &c->nbf)) ||
        (why = take_time(p, "exp", &c->exp)) ||
        (why = match_str(p, "iss", j->issuer, "wrong issuer")) ||
        (why = match_str(p, "aud", j->audience, "wrong audience")))
        return why;
    /* A window that closes before it opens is nobody's token. Times are
     * >= 0 and now/leeway are small, so none of the sums below overflow. */
    int64_t now = now_s(), lw = j->leeway_s;
    if (c->exp <= c->nbf)
        return "bad claim";
    if (now - lw >= c->exp)
        return "expired";
    if (now + lw < c->nbf || now + lw < c->iat)
        return "not yet valid";
    return NULL;
}

int jwts_verify(const jwts_t *j, const char *token, size_t len, jwts_claims_t *claims,
                const char **reason)
{
    const char *why_local;
    const char **why = reason ? reason : &why_local;
    *why = NULL;
    if (!j || !claims)
        return FENTA_EINVAL;
    memset(claims, 0, sizeof *claims);
    if (!token || len == 0) {
        *why = "malformed";
        return FENTA_EAUTH;
    }
    if (len > JWTS_TOKEN_MAX) {
        *why = "too large";
        return FENTA_EAUTH;
    }

    /* Exactly three segments, header and payload non-empty. An empty
     * signature (the alg "none" shape) gets past this split so that the
     * header check below names the real problem. The alphabet is checked by
     * the strict decoder; a '\0' inside len is not in it. */
    const char *end = token + len;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) || d1 == token || d2 == d1 + 1) {
        *why = "malformed";
        return FENTA_EAUTH;
    }
    int rc = FENTA_EAUTH;
    jwt_t *jw = NULL;
    json_t *header = segment_object(token, (size_t)(d1 - token));
    json_t *payload = header ? segment_object(d1 + 1, (size_t)(d2 - d1 - 1)) : NULL;
    unsigned char sig[DECODED_MAX];
    size_t sig_len = 0;
    if (!header || !payload ||
        crypto_b64_decode(CRYPTO_B64_URL, d2 + 1, (size_t)(end - d2 - 1), sig, sizeof sig,
                          &sig_len) != 0) {
        *why = "malformed";
        goto done;
    }
    if (!header_ok(header)) {
        *why = "unsupported header";
        goto done;
    }
    /* HS256 signatures are exactly 32 bytes (this also refuses an empty one). */
    if (sig_len != 32) {
        *why = "bad signature";
        goto done;
    }

    /* libjwt wants a NUL-terminated string; the key is ALWAYS passed (with
     * NULL it would skip the signature check). */
    char copy[JWTS_TOKEN_MAX + 1];
    memcpy(copy, token, len);
    copy[len] = '\0';
    int jrc = jwt_decode(&jw, copy, j->key, (int)j->key_len);
    if (jrc == ENOMEM) {
        rc = FENTA_ENOMEM;
        *why = "out of memory";
        goto done;
    }
    /* Belt and braces: whatever libjwt parsed, it must have verified HS256. */
    if (jrc != 0 || !jw || jwt_get_alg(jw) != JWT_ALG_HS256) {
        *why = "bad signature";
        goto done;
    }
    /* The claims come from our own strict parse of the very bytes libjwt has
     * just authenticated, not from libjwt's lenient one. */
    *why = check_claims(j, payload, claims);
    rc = *why ? FENTA_EAUTH : 0;
done:
    if (rc != 0)
        memset(claims, 0, sizeof *claims);
    jwt_free(jw);
    json_decref(header);
    json_decref(payload);
    return rc;
}

static int csrf_mac(const jwts_t *j, const char *sid, unsigned char mac[32])
{
    if (!j || !valid_id_str(sid))
        return FENTA_EINVAL;
    return crypto_hmac_sha256(j->csrf_key, sizeof j->csrf_key, sid, strlen(sid), mac);
}

int jwts_csrf_make(const jwts_t *j, const char *sid, char *out, size_t out_size)
{
    unsigned char mac[32];
    if (!out || out_size < JWTS_CSRF_LEN + 1)
        return FENTA_EINVAL;
    int rc = csrf_mac(j, sid, mac);
    if (rc)
        return rc;
    crypto_b64_encode(CRYPTO_B64_URL, mac, sizeof mac, out, out_size);
    return 0;
}

int jwts_csrf_check(const jwts_t *j, const char *sid, const char *presented, size_t len)
{
    unsigned char want[32];
    char want_s[JWTS_CSRF_LEN + 1];
    /* The length is public (every CSRF token has 43 characters), so an early
     * return on it leaks nothing; the content comparison is constant-time. */
    if (!presented || len != JWTS_CSRF_LEN || csrf_mac(j, sid, want) != 0)
        return FENTA_EAUTH;
    crypto_b64_encode(CRYPTO_B64_URL, want, sizeof want, want_s, sizeof want_s);
    return crypto_equal(want_s, presented, JWTS_CSRF_LEN) ? 0 : FENTA_EAUTH;
}
