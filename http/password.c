/* password.c - argon2id hashing and verification over libargon2, the dummy
 * verify and the password policy. The only file that includes <argon2.h>. */
#include "http/password.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include <argon2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SALT_BYTES 16
#define HASH_BYTES 32

/* A fixed salt and hash (base64 without padding, as libargon2 encodes them)
 * for password_verify_dummy. Their values do not matter: only that verifying
 * against them does the full argon2 work and then fails. */
static const char DUMMY_SALT_B64[] = "ZmVudGEtZHVtbXktc2FsdA";                      /* 16 B */
static const char DUMMY_HASH_B64[] = "ZmVudGEgZHVtbXkgaGFzaCwgbmV2ZXIgYSBtYXRjaCE"; /* 32 B */

void password_params_default(password_params_t *p)
{
    p->t_cost = 2;
    p->m_cost_kib = 19456;
    p->parallelism = 1;
}

static const password_params_t *or_default(const password_params_t *p, password_params_t *tmp)
{
    if (p)
        return p;
    password_params_default(tmp);
    return tmp;
}

static bool params_ok(const password_params_t *p)
{
    return p->t_cost >= 1 && p->t_cost <= PASSWORD_T_MAX && p->parallelism >= 1 &&
           p->parallelism <= PASSWORD_P_MAX && p->m_cost_kib >= 8 * p->parallelism &&
           p->m_cost_kib <= PASSWORD_M_MAX_KIB;
}

static int from_argon2(int rc)
{
    switch (rc) {
    case ARGON2_OK:
        return 0;
    case ARGON2_VERIFY_MISMATCH:
        return FENTA_EAUTH;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
        return FENTA_ENOMEM;
    default:
        return FENTA_EINVAL;
    }
}

int password_hash(const password_params_t *params, const char *pw, size_t len, char *out,
                  size_t out_size)
{
    password_params_t tmp;
    const password_params_t *p = or_default(params, &tmp);
    if (!params_ok(p) || !pw || len > PASSWORD_MAX_BYTES || !out)
        return FENTA_EINVAL;
    size_t need = argon2_encodedlen(p->t_cost, p->m_cost_kib, p->parallelism, SALT_BYTES,
                                    HASH_BYTES, Argon2_id);
    if (out_size < need || out_size < 1)
        return FENTA_EINVAL;
    unsigned char salt[SALT_BYTES];
    if (crypto_random(salt, sizeof salt) != 0)
        return FENTA_EIO;
    int rc = argon2id_hash_encoded(p->t_cost, p->m_cost_kib, p->parallelism, pw, len, salt,
                                   sizeof salt, HASH_BYTES, out, out_size);
    return from_argon2(rc);
}

/* Reads one decimal uint32 at *s, advancing it; false on no digits, a leading
 * zero (libargon2 refuses those too) or overflow. */
static bool read_u32(const char **s, uint32_t *out)
{
    const char *c = *s;
    uint64_t v = 0;
    if (*c < '0' || *c > '9' || (c[0] == '0' && c[1] >= '0' && c[1] <= '9'))
        return false;
    for (; *c >= '0' && *c <= '9'; c++) {
        v = v * 10 + (uint64_t)(*c - '0');
        if (v > UINT32_MAX)
            return false;
    }
    *out = (uint32_t)v;
    *s = c;
    return true;
}

static bool expect(const char **s, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*s, lit, n) != 0)
        return false;
    *s += n;
    return true;
}

int password_params_of(const char *encoded, password_params_t *out)
{
    const char *s = encoded;
    password_params_t p;
    if (!s || !out || !expect(&s, "$argon2id$v=19$m=") || !read_u32(&s, &p.m_cost_kib) ||
        !expect(&s, ",t=") || !read_u32(&s, &p.t_cost) || !expect(&s, ",p=") ||
        !read_u32(&s, &p.parallelism) || *s != '$')
        return FENTA_EINVAL;
    *out = p;
    return 0;
}

bool password_needs_rehash(const char *encoded, const password_params_t *params)
{
    password_params_t tmp, have;
    const password_params_t *want = or_default(params, &tmp);
    if (password_params_of(encoded, &have) != 0)
        return true;
    return have.t_cost != want->t_cost || have.m_cost_kib != want->m_cost_kib ||
           have.parallelism != want->parallelism;
}

int password_verify(const char *encoded, const char *pw, size_t len)
{
    password_params_t p;
    /* Parameters are checked before libargon2 sees them: a corrupt or
     * hostile row must not make us allocate gigabytes. */
    if (password_params_of(encoded, &p) != 0 || !params_ok(&p) ||
        strnlen(encoded, PASSWORD_HASH_MAX) >= PASSWORD_HASH_MAX)
        return FENTA_EINVAL;
    /* Too long to have been hashed by us: cannot match. The dummy refuses
     * the same way, so this early exit says nothing about the account. */
    if (!pw || len > PASSWORD_MAX_BYTES)
        return FENTA_EAUTH;
    return from_argon2(argon2id_verify(encoded, pw, len));
}

int password_verify_dummy(const password_params_t *params, const char *pw, size_t len)
{
    password_params_t tmp;
    const password_params_t *p = or_default(params, &tmp);
    char encoded[PASSWORD_HASH_MAX];
    if (!params_ok(p) || !pw || len > PASSWORD_MAX_BYTES)
        return FENTA_EAUTH;
    snprintf(encoded, sizeof encoded, "$argon2id$v=19$m=%u,t=%u,p=%u$%s$%s", p->m_cost_kib,
             p->t_cost, p->parallelism, DUMMY_SALT_B64, DUMMY_HASH_B64);
    /* Same path as a real verify: parse, full argon2id, constant-time compare.
     * The result is ignored; a 2^-256 "match" must not log anyone in. */
    (void)password_verify(encoded, pw, len);
    return FENTA_EAUTH;
}

/* --- policy ------------------------------------------------------------- */

/* A handful of the most common passwords that pass the length rule (from the
 * public top-100 breach lists). Not a breach corpus: rate limits do the real
 * work against guessing; this only stops the worst choices at sign-up. */
static const char *const COMMON[] = {
    "password",   "password1", "password123", "12345678", "123456789", "1234567890",
    "qwertyuiop", "qwerty123", "iloveyou",    "11111111", "00000000",  "abcd1234",
    "1q2w3e4r",   "1qaz2wsx",  "sunshine",    "football", "baseball",  "welcome1",
    "letmein1",   "princess",  "passw0rd",    "trustno1", "superman",  "87654321",
    "qwertyui",   "asdfghjk",  "zaq12wsx",    "q1w2e3r4", "password!", "changeme",
};

/* Decodes one UTF-8 code point at s[*i] (len bytes total), advancing *i;
 * -1 for an invalid sequence (overlong, surrogate, > U+10FFFF, truncated). */
static long utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned c = s[*i];
    size_t n;
    long cp, min;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if ((c & 0xe0) == 0xc0) {
        n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (n >= len - *i) /* truncated: the n continuation bytes are not all there */
        return -1;
    for (size_t k = 1; k <= n; k++) {
        unsigned cc = s[*i + k];
        if ((cc & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += n + 1;
    return cp;
}

static bool is_space(long cp)
{
    return cp == ' ' || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200b) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

static bool is_control(long cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

int password_policy_check(const char *pw, size_t len, const char **message)
{
    const char *dummy;
    const char **msg = message ? message : &dummy;
    *msg = NULL;
    if (!pw) {
        *msg = "password is required";
        return FENTA_EINVAL;
    }
    if (len > PASSWORD_MAX_BYTES) {
        *msg = "password must be at most 256 characters";
        return FENTA_EINVAL;
    }
    size_t chars = 0, i = 0;
    bool all_space = true;
    while (i < len) {
        long cp = utf8_next((const unsigned char *)pw, len, &i);
        if (cp < 0) {
            *msg = "password must be valid UTF-8";
            return FENTA_EINVAL;
        }
        /* NEL (U+0085) is both a C1 control and Unicode whitespace; the
         * control rule wins. */
        if (is_control(cp)) {
            *msg = "password must not contain control characters";
            return FENTA_EINVAL;
        }
        if (!is_space(cp))
            all_space = false;
        chars++;
    }
    if (chars < PASSWORD_MIN_CHARS) {
        *msg = "password must be at least 8 characters";
        return FENTA_EINVAL;
    }
    if (chars > PASSWORD_MAX_CHARS) {
        *msg = "password must be at most 256 characters";
        return FENTA_EINVAL;
    }
    if (all_space) {
        *msg = "password must not be only whitespace";
        return FENTA_EINVAL;
    }
    for (size_t k = 0; k < sizeof COMMON / sizeof COMMON[0]; k++) {
        if (strlen(COMMON[k]) == len && strncasecmp(COMMON[k], pw, len) == 0) {
            *msg = "password is too common";
            return FENTA_EINVAL;
        }
    }
    return 0;
}
