/* password.h - password hashing (argon2id, libargon2), verification, the
 * dummy verify that keeps login constant-time for unknown emails, and the
 * password policy.
 *
 * Stored form: the PHC string libargon2 encodes,
 *     $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt b64>$<hash b64>
 * with a 16-byte random salt (crypto_random) and a 32-byte hash, so the parameters travel
 * with each hash and can be raised later (password_needs_rehash).
 *
 * Parameters are explicit (a password_params_t, NULL meaning the defaults):
 * the server keeps one in its config, tests pass cheap ones. Defaults are
 * OWASP's first argon2id choice: m = 19456 KiB (19 MiB), t = 2, p = 1.
 *
 * <argon2.h> is included by password.c alone. All functions are thread-safe;
 * a hash or verify blocks for the argon2 cost (tens of ms with the defaults),
 * so the server calls them off its event loops. */
#ifndef FENTA_HTTP_PASSWORD_H
#define FENTA_HTTP_PASSWORD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Buffer size that always holds an encoded hash (with its NUL). */
#define PASSWORD_HASH_MAX 128
/* Policy bounds, in Unicode code points (NIST SP 800-63B §5.1.1.2). */
#define PASSWORD_MIN_CHARS 8
#define PASSWORD_MAX_CHARS 256
/* Byte cap on what is hashed or verified: 256 code points of 4 bytes. */
#define PASSWORD_MAX_BYTES 1024

/* Bounds accepted for hashing and for stored hashes on verify; a stored hash
 * outside them is treated as corrupt rather than allowed to allocate 4 TiB. */
#define PASSWORD_T_MAX 16
#define PASSWORD_M_MAX_KIB (1024u * 1024u) /* 1 GiB */
#define PASSWORD_P_MAX 16

typedef struct password_params {
    uint32_t t_cost;      /* passes over memory, 1..PASSWORD_T_MAX */
    uint32_t m_cost_kib;  /* memory in KiB, 8 * parallelism..PASSWORD_M_MAX_KIB */
    uint32_t parallelism; /* lanes, 1..PASSWORD_P_MAX */
} password_params_t;

/* OWASP defaults: t = 2, m = 19456 KiB, p = 1. */
void password_params_default(password_params_t *p);

/* Hashes the len bytes of pw with params (NULL for the defaults) and a fresh
 * random salt; writes the NUL-terminated encoded string to out (out_size >=
 * PASSWORD_HASH_MAX). Does not apply the policy: call password_policy_check
 * first. FENTA_EINVAL for bad params, a NULL pw, len > PASSWORD_MAX_BYTES or
 * a short out;
 * FENTA_EIO when the RNG fails; FENTA_ENOMEM. */
int password_hash(const password_params_t *params, const char *pw, size_t len, char *out,
                  size_t out_size);

/* 0 when pw matches the encoded hash; FENTA_EAUTH when it does not (also for
 * len > PASSWORD_MAX_BYTES, which no stored hash can match); FENTA_EINVAL when
 * encoded is not an argon2id v19 hash within the bounds above (corrupt row:
 * log it, and still refuse the login); FENTA_ENOMEM. */
int password_verify(const char *encoded, const char *pw, size_t len);

/* Costs what password_verify costs for a hash made with params (NULL for the
 * defaults) and always returns FENTA_EAUTH. Login calls it when the email is
 * unknown so the response time does not say whether an account exists. It
 * verifies pw against a fixed hash built with those params, so it stays
 * matched to the configured cost without any start-up work. */
int password_verify_dummy(const password_params_t *params, const char *pw, size_t len);

/* The parameters recorded in an encoded argon2id hash; FENTA_EINVAL when the
 * string does not start "$argon2id$v=19$m=..,t=..,p=..$". */
int password_params_of(const char *encoded, password_params_t *out);

/* True when encoded was made with parameters other than params (NULL for the
 * defaults) or cannot be read: rehash on the next successful login. */
bool password_needs_rehash(const char *encoded, const password_params_t *params);

/* NIST-style policy for a new password: valid UTF-8; 8..256 code points; not
 * only whitespace; no control characters; not one of a few of the most
 * common passwords. All other characters (spaces, emoji, any script) are
 * allowed and no composition rules apply. Returns 0, or FENTA_EINVAL with
 * *message (when message is not NULL) a static, user-facing sentence. */
int password_policy_check(const char *pw, size_t len, const char **message);

#endif
