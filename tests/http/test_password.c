/* test_password.c - argon2id hashes round-trip, carry their parameters and a
 * fresh salt, refuse wrong passwords and corrupt or hostile hash strings; the
 * dummy verify costs about what a real one does; the policy accepts what NIST
 * says to accept and refuses the rest with a message.
 *
 * Cheap parameters (m = 256 KiB, t = 1) keep the suite fast; the defaults are
 * exercised once. Timing is asserted only loosely (medians, a factor of 0.3)
 * and on CPU time, not wall time, so a busy machine (other suites beside this
 * one) does not make the suite flaky. */
#include "http/password.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const password_params_t CHEAP = {.t_cost = 1, .m_cost_kib = 256, .parallelism = 1};

#define PW "correct horse battery staple"

static void hash_ok(const password_params_t *p, const char *pw, char out[PASSWORD_HASH_MAX])
{
    cr_assert_eq(password_hash(p, pw, strlen(pw), out, PASSWORD_HASH_MAX), 0);
}

Test(password, round_trip)
{
    char h[PASSWORD_HASH_MAX];
    hash_ok(&CHEAP, PW, h);
    cr_assert_eq(strncmp(h, "$argon2id$v=19$", 15), 0, "%s", h);
    cr_assert_eq(password_verify(h, PW, strlen(PW)), 0);
    /* Non-ASCII and embedded NUL bytes are hashed as bytes, by length. */
    const char odd[] = "p\xc3\xa4ss\0w\xf0\x9f\x94\x91rd";
    cr_assert_eq(password_hash(&CHEAP, odd, sizeof odd - 1, h, sizeof h), 0);
    cr_assert_eq(password_verify(h, odd, sizeof odd - 1), 0);
    cr_assert_eq(password_verify(h, odd, 6), FENTA_EAUTH, "stops at the NUL: different password");
}

Test(password, wrong_password_refused)
{
    char h[PASSWORD_HASH_MAX];
    hash_ok(&CHEAP, PW, h);
    cr_assert_eq(password_verify(h, "correct horse battery stapler", 29), FENTA_EAUTH);
    cr_assert_eq(password_verify(h, "Correct horse battery staple", 28), FENTA_EAUTH);
    cr_assert_eq(password_verify(h, PW, strlen(PW) - 1), FENTA_EAUTH, "a prefix");
    cr_assert_eq(password_verify(h, "", 0), FENTA_EAUTH);
    cr_assert_eq(password_verify(h, NULL, 0), FENTA_EAUTH);
    char big[PASSWORD_MAX_BYTES + 1];
    memset(big, 'a', sizeof big);
    cr_assert_eq(password_verify(h, big, sizeof big), FENTA_EAUTH);
}

Test(password, each_hash_has_its_own_salt)
{
    char a[PASSWORD_HASH_MAX], b[PASSWORD_HASH_MAX];
    hash_ok(&CHEAP, PW, a);
    hash_ok(&CHEAP, PW, b);
    cr_assert_str_neq(a, b);
    /* Same params prefix, different salt field. */
    const char *sa = strrchr(a, '$'), *sb = strrchr(b, '$');
    cr_assert_eq(sa - a, sb - b);
    cr_assert_eq(password_verify(a, PW, strlen(PW)), 0);
    cr_assert_eq(password_verify(b, PW, strlen(PW)), 0);
}

Test(password, parameters_travel_in_the_encoded_string)
{
    password_params_t p = {.t_cost = 3, .m_cost_kib = 512, .parallelism = 2}, got;
    char h[PASSWORD_HASH_MAX];
    hash_ok(&p, PW, h);
    cr_assert_eq(strncmp(h, "$argon2id$v=19$m=512,t=3,p=2$", 29), 0, "%s", h);
    cr_assert_eq(password_params_of(h, &got), 0);
    cr_assert_eq(got.t_cost, 3);
    cr_assert_eq(got.m_cost_kib, 512);
    cr_assert_eq(got.parallelism, 2);
    cr_assert_eq(password_verify(h, PW, strlen(PW)), 0, "verify reads them back");
    cr_assert_not(password_needs_rehash(h, &p));
    cr_assert(password_needs_rehash(h, &CHEAP));
    cr_assert(password_needs_rehash(h, NULL));
    cr_assert(password_needs_rehash("garbage", &p));
    cr_assert_eq(password_params_of("$argon2i$v=19$m=512,t=3,p=2$x$y", &got), FENTA_EINVAL);
    cr_assert_eq(password_params_of("$argon2id$v=19$m=0512,t=3,p=2$x$y", &got), FENTA_EINVAL);
    cr_assert_eq(password_params_of("$argon2id$v=19$m=99999999999,t=3,p=2$x$y", &got),
                 FENTA_EINVAL);
}

Test(password, defaults_are_owasp)
{
    password_params_t p;
    password_params_default(&p);
    cr_assert_eq(p.m_cost_kib, 19456);
    cr_assert_eq(p.t_cost, 2);
    cr_assert_eq(p.parallelism, 1);
    char h[PASSWORD_HASH_MAX];
    hash_ok(NULL, PW, h);
    cr_assert_eq(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0, "%s", h);
    cr_assert_eq(password_verify(h, PW, strlen(PW)), 0);
    cr_assert_not(password_needs_rehash(h, NULL));
}

Test(password, bad_params_refused)
{
    char h[PASSWORD_HASH_MAX];
    password_params_t bad[] = {
        {.t_cost = 0, .m_cost_kib = 256, .parallelism = 1},
        {.t_cost = 1, .m_cost_kib = 4, .parallelism = 1},  /* < 8 KiB per lane */
        {.t_cost = 1, .m_cost_kib = 16, .parallelism = 4}, /* < 8 KiB per lane */
        {.t_cost = 1, .m_cost_kib = 256, .parallelism = 0},
        {.t_cost = 1, .m_cost_kib = 4u << 20, .parallelism = 1}, /* 4 GiB */
        {.t_cost = 100, .m_cost_kib = 256, .parallelism = 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(password_hash(&bad[i], PW, strlen(PW), h, sizeof h), FENTA_EINVAL, "%zu", i);
    cr_assert_eq(password_hash(&CHEAP, NULL, 0, h, sizeof h), FENTA_EINVAL);
    cr_assert_eq(password_hash(&CHEAP, PW, strlen(PW), h, 20), FENTA_EINVAL, "small buffer");
    char big[PASSWORD_MAX_BYTES + 1];
    memset(big, 'a', sizeof big);
    cr_assert_eq(password_hash(&CHEAP, big, sizeof big, h, sizeof h), FENTA_EINVAL);
}

Test(password, corrupted_hash_strings_refused)
{
    char h[PASSWORD_HASH_MAX], t[PASSWORD_HASH_MAX * 2];
    hash_ok(&CHEAP, PW, h);
    size_t n = strlen(h);

    /* Structure broken: not an argon2id hash we can read. */
    const char *corrupt[] = {
        "",
        "garbage",
        "$argon2id$",
        "$argon2id$v=19$m=256,t=1,p=1$",
        "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$", /* no hash */
        "$argon2id$v=16$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        /* Hostile parameters: must be refused before anything is allocated. */
        "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=256,t=4000000000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=256,t=1,p=255$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    };
    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++)
        cr_assert_eq(password_verify(corrupt[i], PW, strlen(PW)), FENTA_EINVAL, "%s", corrupt[i]);
    cr_assert_eq(password_verify(NULL, PW, strlen(PW)), FENTA_EINVAL);

    /* Another argon2 variant (argon2i) is refused even if it would verify. */
    snprintf(t, sizeof t, "$argon2i$%s", h + strlen("$argon2id$"));
    cr_assert_eq(password_verify(t, PW, strlen(PW)), FENTA_EINVAL);

    /* Truncated. */
    memcpy(t, h, n - 5);
    t[n - 5] = '\0';
    cr_assert_neq(password_verify(t, PW, strlen(PW)), 0);
    /* Characters outside base64 in the hash field. */
    memcpy(t, h, n + 1);
    t[n - 3] = '!';
    cr_assert_eq(password_verify(t, PW, strlen(PW)), FENTA_EINVAL);

    /* Well-formed but altered: one character of the hash, of the salt, a
     * changed cost. All mismatches. */
    memcpy(t, h, n + 1);
    t[n - 3] = t[n - 3] == 'A' ? 'B' : 'A';
    cr_assert_eq(password_verify(t, PW, strlen(PW)), FENTA_EAUTH);
    memcpy(t, h, n + 1);
    char *s = strstr(t, "p=1$") + 4; /* first salt character */
    *s = *s == 'A' ? 'B' : 'A';
    cr_assert_eq(password_verify(t, PW, strlen(PW)), FENTA_EAUTH);
    memcpy(t, h, n + 1);
    t[strlen("$argon2id$v=19$m=256,t=")] = '2';
    cr_assert_eq(password_verify(t, PW, strlen(PW)), FENTA_EAUTH);
}

/* --- dummy verify --------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

#define RUNS 7

/* Microseconds of CPU this process has used. The timing tests compare the
 * work argon2 does (what skipping it would save an attacker), and wall time
 * also counts every moment the scheduler gave the core to someone else: on a
 * loaded machine one preempted verify was enough to move a median past the
 * bound. Criterion runs each test in its own process and argon2 runs in the
 * caller's thread at parallelism 1, so this counts exactly the verifies. */
static int64_t cpu_us(void)
{
    struct timespec ts;
    cr_assert_eq(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Median CPU microseconds of RUNS real verifies (wrong password: the login path
 * that matters) and RUNS dummies, with the same parameters. */
static void time_both(const password_params_t *p, int64_t *real_us, int64_t *dummy_us)
{
    char h[PASSWORD_HASH_MAX];
    hash_ok(p, PW, h);
    int64_t r[RUNS], d[RUNS];
    for (int i = 0; i < RUNS; i++) {
        int64_t t0 = cpu_us();
        cr_assert_eq(password_verify(h, "not the password", 16), FENTA_EAUTH);
        int64_t t1 = cpu_us();
        cr_assert_eq(password_verify_dummy(p, "not the password", 16), FENTA_EAUTH);
        int64_t t2 = cpu_us();
        r[i] = t1 - t0;
        d[i] = t2 - t1;
    }
    qsort(r, RUNS, sizeof r[0], cmp_i64);
    qsort(d, RUNS, sizeof d[0], cmp_i64);
    *real_us = r[RUNS / 2];
    *dummy_us = d[RUNS / 2];
}

Test(password, dummy_verify_costs_about_a_real_one)
{
    /* Big enough (about 4 MiB of memory traffic) that argon2 dominates and a
     * dummy that skipped the work would show, small enough to stay quick. */
    password_params_t p = {.t_cost = 1, .m_cost_kib = 4096, .parallelism = 1};
    int64_t real_us, dummy_us;
    time_both(&p, &real_us, &dummy_us);
    cr_log_info("verify median %lld us, dummy median %lld us", (long long)real_us,
                (long long)dummy_us);
    cr_assert_geq(dummy_us * 10, real_us * 3, "dummy %lld us vs real %lld us", (long long)dummy_us,
                  (long long)real_us);
    cr_assert_leq(dummy_us * 3, real_us * 10, "dummy %lld us vs real %lld us", (long long)dummy_us,
                  (long long)real_us);
}

Test(password, dummy_cost_follows_the_parameters)
{
    /* 16x the memory must cost clearly more: the dummy really runs argon2
     * with the configured parameters rather than failing early. */
    password_params_t small = {.t_cost = 1, .m_cost_kib = 256, .parallelism = 1};
    password_params_t large = {.t_cost = 1, .m_cost_kib = 4096, .parallelism = 1};
    int64_t ts[RUNS], tl[RUNS];
    for (int i = 0; i < RUNS; i++) {
        int64_t t0 = cpu_us();
        password_verify_dummy(&small, PW, strlen(PW));
        int64_t t1 = cpu_us();
        password_verify_dummy(&large, PW, strlen(PW));
        int64_t t2 = cpu_us();
        ts[i] = t1 - t0;
        tl[i] = t2 - t1;
    }
    qsort(ts, RUNS, sizeof ts[0], cmp_i64);
    qsort(tl, RUNS, sizeof tl[0], cmp_i64);
    cr_assert_gt(tl[RUNS / 2], 3 * ts[RUNS / 2], "large %lld us vs small %lld us",
                 (long long)tl[RUNS / 2], (long long)ts[RUNS / 2]);
}

Test(password, dummy_always_refuses)
{
    cr_assert_eq(password_verify_dummy(&CHEAP, PW, strlen(PW)), FENTA_EAUTH);
    cr_assert_eq(password_verify_dummy(&CHEAP, "", 0), FENTA_EAUTH);
    cr_assert_eq(password_verify_dummy(&CHEAP, NULL, 0), FENTA_EAUTH);
    password_params_t bad = {0};
    cr_assert_eq(password_verify_dummy(&bad, PW, strlen(PW)), FENTA_EAUTH);
}

/* --- policy --------------------------------------------------------------- */

static void policy_ok(const char *pw)
{
    const char *msg = "unset";
    cr_assert_eq(password_policy_check(pw, strlen(pw), &msg), 0, "'%s' refused: %s", pw, msg);
    cr_assert_null(msg);
}

static void policy_refuses(const char *pw, size_t len, const char *want)
{
    const char *msg = NULL;
    cr_assert_eq(password_policy_check(pw, len, &msg), FENTA_EINVAL, "accepted");
    cr_assert_str_eq(msg, want);
}

Test(password, policy_accepts_nist_style_passwords)
{
    policy_ok("abcdefgh");                                                  /* exactly 8 */
    policy_ok(PW);                                                          /* spaces are fine */
    policy_ok("  leading and trailing spaces  ");                           /* kept as typed */
    policy_ok("\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c\xd1\x8b!"); /* 8 Cyrillic */
    policy_ok("\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91"
              "\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91"); /* 8 emoji */
    char max[PASSWORD_MAX_CHARS + 1];
    memset(max, 'x', PASSWORD_MAX_CHARS);
    max[PASSWORD_MAX_CHARS] = '\0';
    policy_ok(max);
    /* 256 four-byte characters: 1024 bytes, still within the limits. */
    char *wide = malloc(PASSWORD_MAX_CHARS * 4 + 1);
    for (int i = 0; i < PASSWORD_MAX_CHARS; i++)
        memcpy(wide + 4 * i, "\xf0\x9f\x94\x91", 4);
    wide[PASSWORD_MAX_CHARS * 4] = '\0';
    policy_ok(wide);
    free(wide);
}

Test(password, policy_refuses_with_a_message)
{
    policy_refuses("abcdefg", 7, "password must be at least 8 characters");
    policy_refuses("", 0, "password must be at least 8 characters");
    /* 7 Cyrillic letters are 14 bytes but 7 characters. */
    policy_refuses("\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c\xd1\x8b", 14,
                   "password must be at least 8 characters");
    char over[PASSWORD_MAX_CHARS + 2];
    memset(over, 'x', sizeof over);
    policy_refuses(over, PASSWORD_MAX_CHARS + 1, "password must be at most 256 characters");
    policy_refuses("          ", 10, "password must not be only whitespace");
    /* Eight no-break / ideographic spaces. */
    policy_refuses(
        "\xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0\xe3\x80\x80\xe3\x80\x80\xe3\x80\x80\xe3\x80\x80", 20,
        "password must not be only whitespace");
    policy_refuses("tab\there-ok", 11, "password must not contain control characters");
    policy_refuses("nul\0inside!", 11, "password must not contain control characters");
    policy_refuses("bell\x07-bell", 10, "password must not contain control characters");
    policy_refuses("\xff\xfe-not-utf8", 11, "password must be valid UTF-8");
    policy_refuses("overlong\xc0\xaf", 10, "password must be valid UTF-8");
    policy_refuses("surrogate\xed\xa0\x80", 12, "password must be valid UTF-8");
    policy_refuses("truncated\xe2\x82", 11, "password must be valid UTF-8");
    policy_refuses("too-high\xf4\x90\x80\x80", 12, "password must be valid UTF-8");
    policy_refuses("password", 8, "password is too common");
    policy_refuses("Password123", 11, "password is too common");
    policy_refuses("12345678", 8, "password is too common");
    const char *msg = NULL;
    cr_assert_eq(password_policy_check(NULL, 0, &msg), FENTA_EINVAL);
    cr_assert_eq(password_policy_check("short", 5, NULL), FENTA_EINVAL, "message is optional");
}
