/* test_jwt.c - access tokens: the happy path, and every attack refused for the
 * right reason (expired, not yet valid, alg none / HS384 / HS512 / RS256 /
 * ES256, wrong key, any one-character tamper, missing and mistyped claims,
 * wrong iss/aud, segment counts, size, garbage); CSRF tokens.
 *
 * Attack tokens are crafted by hand (base64url + OpenSSL HMAC) so each one is
 * correctly signed except for the single thing under test; a control test
 * shows a hand-crafted token with all claims right is accepted, so a refusal
 * is never an artefact of the crafting. */
#include "http/jwt.h"
#include "http/token.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_S 1700000000LL
#define KEY "test-key-0123456789-abcdefghijklmnopqrstuvwxyz"
#define ISS "https://fenta.test"
#define AUD "fenta-api"

static jwts_t *J;

static jwts_t *make(const char *key, int64_t ttl, int64_t leeway)
{
    jwts_config_t cfg;
    jwts_config_init(&cfg);
    cfg.key = (const unsigned char *)key;
    cfg.key_len = strlen(key);
    cfg.issuer = ISS;
    cfg.audience = AUD;
    cfg.ttl_s = ttl;
    cfg.leeway_s = leeway;
    return jwts_new(&cfg);
}

static void setup(void)
{
    clock_fake_set(NOW_S * 1000);
    J = make(KEY, 900, 30);
    cr_assert_not_null(J);
}

static void teardown(void)
{
    jwts_destroy(&J);
    cr_assert_null(J);
    clock_fake_clear();
}

TestSuite(jwt, .init = setup, .fini = teardown);

/* --- crafting ----------------------------------------------------------- */

static void b64(const void *in, size_t len, char *out, size_t cap)
{
    cr_assert_geq(crypto_b64_encode(CRYPTO_B64_URL, in, len, out, cap), 0);
}

/* header.payload.signature with the signature made by md under key (md NULL:
 * empty signature). Returns a malloc'd string. */
static char *craft(const char *header, const char *payload, const EVP_MD *md, const char *key)
{
    char h[2048], p[16384];
    b64(header, strlen(header), h, sizeof h);
    b64(payload, strlen(payload), p, sizeof p);
    size_t cap = strlen(h) + strlen(p) + 200;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    snprintf(t, cap, "%s.%s", h, p);
    if (md) {
        unsigned char mac[64];
        unsigned int n = 0;
        cr_assert_not_null(HMAC(md, key, (int)strlen(key), (unsigned char *)t, strlen(t), mac, &n));
        char s[128];
        b64(mac, n, s, sizeof s);
        strcat(t, ".");
        strcat(t, s);
    } else {
        strcat(t, ".");
    }
    return t;
}

/* A payload with every claim right, then `extra` spliced in before the
 * closing brace and claims named in `drop` ("exp,sub") left out. */
static char *payload(const char *drop, const char *extra)
{
    static char buf[8192];
    struct {
        const char *name;
        char json[128];
    } c[] = {
        {"sub", "\"sub\":\"user-1\""},
        {"org", "\"org\":\"org-1\""},
        {"sid", "\"sid\":\"sess-1\""},
        {"jti", "\"jti\":\"jti-1\""},
        {"iat", ""},
        {"nbf", ""},
        {"exp", ""},
        {"iss", "\"iss\":\"" ISS "\""},
        {"aud", "\"aud\":\"" AUD "\""},
    };
    snprintf(c[4].json, sizeof c[4].json, "\"iat\":%lld", NOW_S);
    snprintf(c[5].json, sizeof c[5].json, "\"nbf\":%lld", NOW_S);
    snprintf(c[6].json, sizeof c[6].json, "\"exp\":%lld", NOW_S + 900);
    strcpy(buf, "{");
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        if (drop && strstr(drop, c[i].name))
            continue;
        if (buf[1])
            strcat(buf, ",");
        strcat(buf, c[i].json);
    }
    if (extra) {
        if (buf[1])
            strcat(buf, ",");
        strcat(buf, extra);
    }
    strcat(buf, "}");
    return buf;
}

static const char *HS256_HDR = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* Verifies t and asserts it is refused with the given reason. */
static void refused(const char *t, size_t len, const char *why)
{
    jwts_claims_t c;
    memset(&c, 0xa5, sizeof c);
    const char *reason = NULL;
    cr_assert_eq(jwts_verify(J, t, len, &c, &reason), FENTA_EAUTH, "accepted (wanted %s)", why);
    cr_assert_str_eq(reason, why);
    cr_assert_eq(c.sub[0], '\0', "claims must be zeroed on refusal");
    cr_assert_eq(c.exp, 0);
}

static void refused_s(const char *t, const char *why)
{
    refused(t, strlen(t), why);
}

/* A crafted HS256 token with the given payload, signed with the real key. */
static void refused_payload(const char *p, const char *why)
{
    char *t = craft(HS256_HDR, p, EVP_sha256(), KEY);
    refused_s(t, why);
    free(t);
}

/* --- happy path --------------------------------------------------------- */

Test(jwt, sign_then_verify_round_trips_claims)
{
    char tok[JWTS_TOKEN_MAX + 1];
    jwts_claims_t issued, got;
    cr_assert_eq(jwts_sign(J, "user-42", "org-7", "sess-9", tok, sizeof tok, &issued), 0);
    cr_assert_eq(token_classify(tok, strlen(tok)), TOKEN_KIND_JWT);
    const char *reason = "unset";
    cr_assert_eq(jwts_verify(J, tok, strlen(tok), &got, &reason), 0);
    cr_assert_null(reason);
    cr_assert_str_eq(got.sub, "user-42");
    cr_assert_str_eq(got.org, "org-7");
    cr_assert_str_eq(got.sid, "sess-9");
    cr_assert_eq(got.iat, NOW_S);
    cr_assert_eq(got.nbf, NOW_S);
    cr_assert_eq(got.exp, NOW_S + 900);
    cr_assert_eq(strlen(got.jti), 22);
    cr_assert_str_eq(got.jti, issued.jti);
    cr_assert_eq(issued.exp, got.exp);
}

Test(jwt, org_is_optional)
{
    char tok[JWTS_TOKEN_MAX + 1];
    jwts_claims_t got;
    cr_assert_eq(jwts_sign(J, "user-1", NULL, "sess-1", tok, sizeof tok, NULL), 0);
    cr_assert_eq(jwts_verify(J, tok, strlen(tok), &got, NULL), 0);
    cr_assert_str_eq(got.org, "");
    cr_assert_eq(jwts_sign(J, "user-1", "", "sess-1", tok, sizeof tok, NULL), 0);
    cr_assert_eq(jwts_verify(J, tok, strlen(tok), &got, NULL), 0);
    cr_assert_str_eq(got.org, "");
}

Test(jwt, jti_is_unique_per_token)
{
    char a[JWTS_TOKEN_MAX + 1], b[JWTS_TOKEN_MAX + 1];
    jwts_claims_t ca, cb;
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", a, sizeof a, &ca), 0);
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", b, sizeof b, &cb), 0);
    cr_assert_str_neq(ca.jti, cb.jti);
    cr_assert_str_neq(a, b);
}

Test(jwt, length_bounds_the_token_not_a_nul)
{
    char tok[JWTS_TOKEN_MAX + 1];
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", tok, sizeof tok, NULL), 0);
    size_t n = strlen(tok);
    char *hdr = malloc(n + 16);
    memcpy(hdr, tok, n);
    memcpy(hdr + n, ", junk", 7); /* as if the rest of a header line followed */
    jwts_claims_t c;
    cr_assert_eq(jwts_verify(J, hdr, n, &c, NULL), 0);
    cr_assert_str_eq(c.sub, "u");
    free(hdr);
}

Test(jwt, hand_crafted_control_token_is_accepted)
{
    char *t = craft(HS256_HDR, payload(NULL, NULL), EVP_sha256(), KEY);
    jwts_claims_t c;
    const char *why = NULL;
    cr_assert_eq(jwts_verify(J, t, strlen(t), &c, &why), 0, "%s", why);
    cr_assert_str_eq(c.sub, "user-1");
    cr_assert_str_eq(c.org, "org-1");
    free(t);
    /* typ is optional; unknown claims are ignored (RFC 7519 §4). */
    t = craft("{\"alg\":\"HS256\"}", payload(NULL, "\"role\":\"admin\""), EVP_sha256(), KEY);
    cr_assert_eq(jwts_verify(J, t, strlen(t), &c, &why), 0, "%s", why);
    free(t);
}

/* --- time --------------------------------------------------------------- */

Test(jwt, expired_token_refused_after_leeway)
{
    char tok[JWTS_TOKEN_MAX + 1];
    jwts_claims_t c;
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", tok, sizeof tok, NULL), 0);
    clock_fake_set((NOW_S + 900 + 29) * 1000 + 999); /* inside the 30 s leeway */
    cr_assert_eq(jwts_verify(J, tok, strlen(tok), &c, NULL), 0);
    clock_fake_set((NOW_S + 900 + 30) * 1000);
    refused_s(tok, "expired");
    clock_fake_set((NOW_S + 86400) * 1000);
    refused_s(tok, "expired");
}

Test(jwt, expiry_without_leeway_is_exact)
{
    jwts_destroy(&J);
    J = make(KEY, 60, 0);
    cr_assert_not_null(J);
    char tok[JWTS_TOKEN_MAX + 1];
    jwts_claims_t c;
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", tok, sizeof tok, NULL), 0);
    clock_fake_set((NOW_S + 59) * 1000 + 999);
    cr_assert_eq(jwts_verify(J, tok, strlen(tok), &c, NULL), 0);
    clock_fake_set((NOW_S + 60) * 1000);
    refused_s(tok, "expired");
}

Test(jwt, ttl_is_configurable)
{
    jwts_destroy(&J);
    J = make(KEY, 120, 0);
    char tok[JWTS_TOKEN_MAX + 1];
    jwts_claims_t c;
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", tok, sizeof tok, &c), 0);
    cr_assert_eq(c.exp - c.iat, 120);
}

Test(jwt, not_yet_valid_refused)
{
    char extra[64];
    /* nbf two minutes ahead: refused. */
    snprintf(extra, sizeof extra, "\"nbf\":%lld", NOW_S + 120);
    refused_payload(payload("nbf", extra), "not yet valid");
    /* nbf 10 s ahead: within the 30 s leeway, accepted. */
    snprintf(extra, sizeof extra, "\"nbf\":%lld", NOW_S + 10);
    char *t = craft(HS256_HDR, payload("nbf", extra), EVP_sha256(), KEY);
    jwts_claims_t c;
    cr_assert_eq(jwts_verify(J, t, strlen(t), &c, NULL), 0);
    free(t);
    /* Issued in the future (iat beyond the leeway): refused too. */
    snprintf(extra, sizeof extra, "\"iat\":%lld", NOW_S + 3600);
    refused_payload(payload("iat", extra), "not yet valid");
}

Test(jwt, token_signed_in_the_future_is_not_yet_valid)
{
    char tok[JWTS_TOKEN_MAX + 1];
    clock_fake_set((NOW_S + 600) * 1000); /* a server with a fast clock */
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", tok, sizeof tok, NULL), 0);
    clock_fake_set(NOW_S * 1000);
    refused_s(tok, "not yet valid");
}

/* --- algorithm and header ------------------------------------------------ */

Test(jwt, alg_none_refused)
{
    const char *p = payload(NULL, NULL);
    const char *hdrs[] = {"{\"alg\":\"none\"}", "{\"alg\":\"none\",\"typ\":\"JWT\"}",
                          "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}", "{\"alg\":\"nOnE\"}"};
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        char *t = craft(hdrs[i], p, NULL, NULL); /* header.payload. */
        cr_assert_eq(t[strlen(t) - 1], '.');
        refused_s(t, "unsupported header");
        free(t);
        /* With a (valid HS256) signature attached: still refused. */
        t = craft(hdrs[i], p, EVP_sha256(), KEY);
        refused_s(t, "unsupported header");
        free(t);
    }
    /* The same token with no trailing dot is the 2-segment shape. */
    char *t = craft("{\"alg\":\"none\"}", p, NULL, NULL);
    t[strlen(t) - 1] = '\0';
    refused_s(t, "malformed");
    free(t);
}

Test(jwt, other_algorithms_refused_even_with_the_right_key)
{
    const char *p = payload(NULL, NULL);
    /* HS384/HS512 made with our key are genuinely valid MACs: libjwt alone
     * would accept them. */
    char *t = craft("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", p, EVP_sha512(), KEY);
    refused_s(t, "unsupported header");
    free(t);
    t = craft("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", p, EVP_sha384(), KEY);
    refused_s(t, "unsupported header");
    free(t);
    /* Algorithm confusion: RS256/ES256 header, HMAC'd with the secret. */
    const char *asym[] = {"RS256", "RS512", "ES256", "PS256", "EdDSA", "hs256", "HS256 ", ""};
    for (size_t i = 0; i < sizeof asym / sizeof asym[0]; i++) {
        char h[64];
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", asym[i]);
        t = craft(h, p, EVP_sha256(), KEY);
        refused_s(t, "unsupported header");
        free(t);
    }
}

Test(jwt, odd_headers_refused)
{
    const char *p = payload(NULL, NULL);
    const char *bad_hdr[] = {
        "{\"typ\":\"JWT\"}",                                /* no alg */
        "{\"alg\":256}",                                    /* alg not a string */
        "{\"alg\":\"HS256\",\"typ\":\"JWE\"}",              /* wrong typ */
        "{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}", /* fields we do not use */
        "{\"alg\":\"HS256\",\"jku\":\"https://evil/\"}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
    };
    for (size_t i = 0; i < sizeof bad_hdr / sizeof bad_hdr[0]; i++) {
        char *t = craft(bad_hdr[i], p, EVP_sha256(), KEY);
        refused_s(t, "unsupported header");
        free(t);
    }
    /* A duplicated alg could mean HS256 to one parser and none to another. */
    char *t = craft("{\"alg\":\"none\",\"alg\":\"HS256\"}", p, EVP_sha256(), KEY);
    refused_s(t, "malformed");
    free(t);
    t = craft("[\"HS256\"]", p, EVP_sha256(), KEY);
    refused_s(t, "malformed");
    free(t);
}

/* --- signature and tampering -------------------------------------------- */

Test(jwt, wrong_key_refused)
{
    jwts_t *other = make("another-key-that-is-long-enough-0123456789", 900, 30);
    cr_assert_not_null(other);
    char tok[JWTS_TOKEN_MAX + 1];
    cr_assert_eq(jwts_sign(other, "u", NULL, "s", tok, sizeof tok, NULL), 0);
    refused_s(tok, "bad signature");
    jwts_destroy(&other);
    /* Same claims crafted with a key one character off. */
    char *t = craft(HS256_HDR, payload(NULL, NULL), EVP_sha256(), KEY "x");
    refused_s(t, "bad signature");
    free(t);
}

Test(jwt, tampered_payload_refused)
{
    char tok[JWTS_TOKEN_MAX + 1];
    cr_assert_eq(jwts_sign(J, "user-1", "org-1", "s", tok, sizeof tok, NULL), 0);
    /* Re-encode the payload with another org (privilege escalation attempt)
     * and keep the original signature. */
    char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    unsigned char p[2048];
    size_t n = 0;
    cr_assert_eq(
        crypto_b64_decode(CRYPTO_B64_URL, d1 + 1, (size_t)(d2 - d1 - 1), p, sizeof p - 1, &n), 0);
    p[n] = '\0';
    char *o = strstr((char *)p, "org-1");
    cr_assert_not_null(o);
    o[4] = '2';
    char forged[JWTS_TOKEN_MAX + 1], pb[2048];
    b64(p, n, pb, sizeof pb);
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(d1 - tok), tok, pb, d2);
    refused_s(forged, "bad signature");
}

/* Flipping any single character anywhere in a valid token gets it refused:
 * header, payload, signature, the dots, and the last signature character
 * whose low bits are unused (a non-canonical spelling of the same MAC). */
Test(jwt, every_one_character_tamper_refused)
{
    char tok[JWTS_TOKEN_MAX + 1];
    cr_assert_eq(jwts_sign(J, "user-1", "org-1", "sess-1", tok, sizeof tok, NULL), 0);
    size_t n = strlen(tok);
    const char alts[] = "AQgw-_.=";
    int sig_refusals = 0;
    for (size_t i = 0; i < n; i++) {
        for (const char *a = alts; *a; a++) {
            if (tok[i] == *a)
                continue;
            char t[JWTS_TOKEN_MAX + 1];
            memcpy(t, tok, n + 1);
            t[i] = *a;
            jwts_claims_t c;
            const char *why = NULL;
            cr_assert_eq(jwts_verify(J, t, n, &c, &why), FENTA_EAUTH,
                         "flip at %zu to '%c' accepted", i, *a);
            if (strcmp(why, "bad signature") == 0)
                sig_refusals++;
        }
        /* One bit in the character, too: the smallest possible change. */
        char t[JWTS_TOKEN_MAX + 1];
        memcpy(t, tok, n + 1);
        t[i] ^= 1;
        jwts_claims_t c;
        cr_assert_eq(jwts_verify(J, t, n, &c, NULL), FENTA_EAUTH, "bit flip at %zu accepted", i);
    }
    cr_assert_gt(sig_refusals, 0, "the signature check itself must be exercised");
}

Test(jwt, tampered_signature_refused)
{
    char tok[JWTS_TOKEN_MAX + 1];
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", tok, sizeof tok, NULL), 0);
    char *sig = strrchr(tok, '.') + 1;
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
    refused_s(tok, "bad signature");
    /* Truncated and empty signatures. */
    sig[40] = '\0';
    refused_s(tok, "bad signature");
    sig[0] = '\0';
    refused_s(tok, "bad signature");
}

/* --- claims -------------------------------------------------------------- */

Test(jwt, missing_required_claims_refused)
{
    const char *required[] = {"sub", "sid", "jti", "iat", "nbf", "exp", "iss", "aud"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        refused_payload(payload(required[i], NULL), "missing claim");
    refused_payload("{}", "missing claim");
}

Test(jwt, mistyped_claims_refused)
{
    struct {
        const char *drop, *extra;
    } cases[] = {
        {"exp", "\"exp\":\"9999999999\""}, /* string, would pass a strtol */
        {"exp", "\"exp\":1.7e12"},         /* real */
        {"exp", "\"exp\":null"},
        {"exp", "\"exp\":-1"},
        {"nbf", "\"nbf\":true"},
        {"iat", "\"iat\":[1]"},
        {"sub", "\"sub\":42"},
        {"sub", "\"sub\":\"\""},
        {"sub", "\"sub\":\"has space\""},
        {"sub", "\"sub\":\"x\\n\""},
        {"sub", "\"sub\":\"0123456789012345678901234567890123456789012345678901234567890123X\""},
        {"sid", "\"sid\":{}"},
        {"org", "\"org\":7"},
        {"org", "\"org\":null"},
        {"jti", "\"jti\":false"},
        {"iss", "\"iss\":1"},
        {"aud", "\"aud\":[\"" AUD "\"]"}, /* we sign a string; arrays are refused */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        refused_payload(payload(cases[i].drop, cases[i].extra), "bad claim");
    /* An escaped NUL could cut "fenta-api\u0000x" to our audience in C;
     * the JSON parser refuses NUL in strings outright. */
    refused_payload(payload("aud", "\"aud\":\"fenta-api\\u0000x\""), "malformed");
    refused_payload(payload("sub", "\"sub\":\"a\\u0000b\""), "malformed");
    /* A window that closes before it opens. */
    char extra[80];
    snprintf(extra, sizeof extra, "\"exp\":%lld", NOW_S);
    refused_payload(payload("exp", extra), "bad claim");
}

Test(jwt, wrong_issuer_refused)
{
    refused_payload(payload("iss", "\"iss\":\"https://evil.test\""), "wrong issuer");
    refused_payload(payload("iss", "\"iss\":\"https://fenta.test/\""), "wrong issuer");
    refused_payload(payload("iss", "\"iss\":\"\""), "wrong issuer");
    /* A token from a server configured with another issuer. */
    jwts_config_t cfg;
    jwts_config_init(&cfg);
    cfg.key = (const unsigned char *)KEY;
    cfg.key_len = strlen(KEY);
    cfg.issuer = "other";
    cfg.audience = AUD;
    jwts_t *other = jwts_new(&cfg);
    char tok[JWTS_TOKEN_MAX + 1];
    cr_assert_eq(jwts_sign(other, "u", NULL, "s", tok, sizeof tok, NULL), 0);
    refused_s(tok, "wrong issuer");
    jwts_destroy(&other);
}

Test(jwt, wrong_audience_refused)
{
    refused_payload(payload("aud", "\"aud\":\"other-api\""), "wrong audience");
    refused_payload(payload("aud", "\"aud\":\"fenta-api2\""), "wrong audience");
    refused_payload(payload("aud", "\"aud\":\"fenta-ap\""), "wrong audience");
}

/* --- shape --------------------------------------------------------------- */

Test(jwt, wrong_segment_counts_refused)
{
    char tok[JWTS_TOKEN_MAX + 1], t[JWTS_TOKEN_MAX + 16];
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", tok, sizeof tok, NULL), 0);
    snprintf(t, sizeof t, "%s.%s", tok, strrchr(tok, '.') + 1); /* 4 segments */
    refused_s(t, "malformed");
    snprintf(t, sizeof t, "%s.", tok); /* 4th segment empty */
    refused_s(t, "malformed");
    memcpy(t, tok, strlen(tok) + 1);
    *strrchr(t, '.') = '\0'; /* 2 segments */
    refused_s(t, "malformed");
    refused_s(strchr(tok, '.') + 1, "malformed");       /* payload.signature */
    snprintf(t, sizeof t, ".%s", strchr(tok, '.') + 1); /* empty header */
    refused_s(t, "malformed");
}

Test(jwt, huge_token_refused)
{
    size_t n = 64 * 1024;
    char *t = malloc(n + 1);
    memset(t, 'A', n);
    t[n] = '\0';
    t[10] = '.';
    t[n - 10] = '.';
    refused(t, n, "too large");
    refused(t, JWTS_TOKEN_MAX + 1, "too large");
    free(t);
    /* A validly signed token just over the cap, with a big claim. */
    char big[JWTS_TOKEN_MAX];
    memset(big, 'x', sizeof big);
    memcpy(big, "\"pad\":\"", 7);
    big[sizeof big - 2] = '"';
    big[sizeof big - 1] = '\0';
    t = craft(HS256_HDR, payload(NULL, big), EVP_sha256(), KEY);
    refused_s(t, "too large");
    free(t);
}

Test(jwt, garbage_refused)
{
    const char *garbage[] = {
        "",
        ".",
        "..",
        "...",
        "abc",
        "eyJ",
        "Bearer abc.def.ghi",
        "a.b.c",
        "eyJ.eyJ.eyJ",
        "!!!.###.$$$",
        "eyJhbGciOiJIUzI1NiJ9.e30=.AAAA",            /* padding */
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.+/+/", /* standard base64 alphabet */
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.AAAA",     /* payload "not json" */
        "eyJhbGciOiJIUzI1NiJ9.WzFd.AAAA",            /* payload [1] */
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.A",    /* 1 mod 4 */
        "fenta_pat_0000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        refused_s(garbage[i], "malformed");
    /* Embedded NUL and high bytes inside the length. */
    char tok[JWTS_TOKEN_MAX + 1];
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", tok, sizeof tok, NULL), 0);
    size_t n = strlen(tok);
    tok[3] = '\0';
    refused(tok, n, "malformed");
    tok[3] = (char)0xc3;
    refused(tok, n, "malformed");
    jwts_claims_t c;
    cr_assert_eq(jwts_verify(J, NULL, 0, &c, NULL), FENTA_EAUTH);
    cr_assert_eq(jwts_verify(J, NULL, 10, &c, NULL), FENTA_EAUTH);
    cr_assert_eq(jwts_verify(NULL, "a.b.c", 5, &c, NULL), FENTA_EINVAL);
}

/* --- configuration and signing input -------------------------------------- */

Test(jwt, config_is_validated)
{
    jwts_config_t cfg;
    jwts_config_init(&cfg);
    cr_assert_eq(cfg.ttl_s, 900);
    cr_assert_eq(cfg.leeway_s, 30);
    cr_assert_null(jwts_new(&cfg), "no key");
    cfg.key = (const unsigned char *)"short-key";
    cfg.key_len = 9;
    cfg.issuer = ISS;
    cfg.audience = AUD;
    cr_assert_null(jwts_new(&cfg), "key shorter than 32 bytes");
    cfg.key = (const unsigned char *)KEY;
    cfg.key_len = strlen(KEY);
    jwts_t *ok = jwts_new(&cfg);
    cr_assert_not_null(ok);
    jwts_destroy(&ok);
    jwts_destroy(&ok); /* NULL is fine */
    jwts_destroy(NULL);
    cfg.issuer = "";
    cr_assert_null(jwts_new(&cfg));
    cfg.issuer = ISS;
    cfg.audience = NULL;
    cr_assert_null(jwts_new(&cfg));
    cfg.audience = AUD;
    cfg.ttl_s = 0;
    cr_assert_null(jwts_new(&cfg));
    cfg.ttl_s = 900;
    cfg.leeway_s = -1;
    cr_assert_null(jwts_new(&cfg));
    cr_assert_null(jwts_new(NULL));
}

Test(jwt, signing_refuses_bad_ids)
{
    char tok[JWTS_TOKEN_MAX + 1];
    char long_id[JWTS_ID_MAX + 2];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    cr_assert_eq(jwts_sign(J, NULL, NULL, "s", tok, sizeof tok, NULL), FENTA_EINVAL);
    cr_assert_eq(jwts_sign(J, "", NULL, "s", tok, sizeof tok, NULL), FENTA_EINVAL);
    cr_assert_eq(jwts_sign(J, "u", NULL, NULL, tok, sizeof tok, NULL), FENTA_EINVAL);
    cr_assert_eq(jwts_sign(J, "a b", NULL, "s", tok, sizeof tok, NULL), FENTA_EINVAL);
    cr_assert_eq(jwts_sign(J, "u", "o\n", "s", tok, sizeof tok, NULL), FENTA_EINVAL);
    cr_assert_eq(jwts_sign(J, long_id, NULL, "s", tok, sizeof tok, NULL), FENTA_EINVAL);
    long_id[JWTS_ID_MAX] = '\0'; /* exactly the maximum: fine */
    cr_assert_eq(jwts_sign(J, long_id, NULL, "s", tok, sizeof tok, NULL), 0);
    cr_assert_eq(jwts_sign(J, "u", NULL, "s", tok, 16, NULL), FENTA_ETOOBIG);
}

/* --- CSRF ---------------------------------------------------------------- */

Test(jwt, csrf_token_bound_to_session_and_key)
{
    char a[JWTS_CSRF_LEN + 1], b[JWTS_CSRF_LEN + 1];
    cr_assert_eq(jwts_csrf_make(J, "sess-1", a, sizeof a), 0);
    cr_assert_eq(strlen(a), JWTS_CSRF_LEN);
    cr_assert_eq(jwts_csrf_make(J, "sess-1", b, sizeof b), 0);
    cr_assert_str_eq(a, b, "stateless: same session, same token");
    cr_assert_eq(jwts_csrf_check(J, "sess-1", a, strlen(a)), 0);

    cr_assert_eq(jwts_csrf_check(J, "sess-2", a, strlen(a)), FENTA_EAUTH, "other session");
    cr_assert_eq(jwts_csrf_make(J, "sess-2", b, sizeof b), 0);
    cr_assert_str_neq(a, b);

    char t[JWTS_CSRF_LEN + 2];
    memcpy(t, a, sizeof a);
    t[0] = t[0] == 'A' ? 'B' : 'A';
    cr_assert_eq(jwts_csrf_check(J, "sess-1", t, strlen(t)), FENTA_EAUTH, "tampered");
    cr_assert_eq(jwts_csrf_check(J, "sess-1", a, strlen(a) - 1), FENTA_EAUTH, "truncated");
    memcpy(t, a, sizeof a);
    t[JWTS_CSRF_LEN] = 'A';
    t[JWTS_CSRF_LEN + 1] = '\0';
    cr_assert_eq(jwts_csrf_check(J, "sess-1", t, strlen(t)), FENTA_EAUTH, "extended");
    cr_assert_eq(jwts_csrf_check(J, "sess-1", "", 0), FENTA_EAUTH);
    cr_assert_eq(jwts_csrf_check(J, "sess-1", NULL, 0), FENTA_EAUTH);

    jwts_t *other = make("another-key-that-is-long-enough-0123456789", 900, 30);
    cr_assert_eq(jwts_csrf_check(other, "sess-1", a, strlen(a)), FENTA_EAUTH, "other key");
    jwts_destroy(&other);

    /* The CSRF token is not the session's access-token signature or anything
     * else we MAC with the raw key: HMAC(KEY, sid) must differ. */
    unsigned char mac[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), KEY, (int)strlen(KEY), (const unsigned char *)"sess-1", 6, mac, &n);
    char raw[64];
    b64(mac, n, raw, sizeof raw);
    cr_assert_str_neq(raw, a);
    cr_assert_eq(jwts_csrf_check(J, "sess-1", raw, strlen(raw)), FENTA_EAUTH);
}
