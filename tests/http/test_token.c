/* test_token.c - opaque secrets have their documented format, do not repeat
 * over 10k draws, hash stably to what `sha256sum` prints, verify only
 * themselves; bearer strings are classified by shape. (The base64url codec's
 * tests are in tests/runtime/test_crypto.c, with the codec.) */
#include "http/token.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool all_base62(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

Test(token, format)
{
    char pat[TOKEN_SECRET_MAX + 1], rt[TOKEN_SECRET_MAX + 1];
    cr_assert_eq(token_generate(TOKEN_KIND_PAT, pat, sizeof pat), 0);
    cr_assert_eq(token_generate(TOKEN_KIND_REFRESH, rt, sizeof rt), 0);
    cr_assert_eq(strncmp(pat, "fenta_pat_", 10), 0, "%s", pat);
    cr_assert_eq(strlen(pat), 10 + 43);
    cr_assert(all_base62(pat + 10, 43), "%s", pat);
    cr_assert_eq(strncmp(rt, "fenta_rt_", 9), 0, "%s", rt);
    cr_assert_eq(strlen(rt), 9 + 43);
    cr_assert(all_base62(rt + 9, 43), "%s", rt);
    cr_assert_eq(TOKEN_SECRET_MAX, 53);

    cr_assert_eq(token_generate(TOKEN_KIND_JWT, pat, sizeof pat), FENTA_EINVAL);
    cr_assert_eq(token_generate(TOKEN_KIND_INVALID, pat, sizeof pat), FENTA_EINVAL);
    cr_assert_eq(token_generate(TOKEN_KIND_PAT, pat, 53), FENTA_EINVAL, "no room for the NUL");
    cr_assert_eq(token_generate(TOKEN_KIND_REFRESH, rt, 53), 0, "refresh is one shorter");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

#define DRAWS 10000

/* 10k secrets are all different, and every position of the body takes many
 * values (a stuck character or a short random source would show). The first
 * character is the top of a 256-bit number in base 62, so it ranges over 0..60
 * only; the others over all 62. */
Test(token, unique_over_10k)
{
    char(*s)[TOKEN_SECRET_MAX + 1] = calloc(DRAWS, sizeof *s);
    cr_assert_not_null(s);
    bool seen[TOKEN_BODY_LEN][128] = {{false}};
    for (int i = 0; i < DRAWS; i++) {
        cr_assert_eq(token_generate(TOKEN_KIND_PAT, s[i], sizeof s[i]), 0);
        for (int k = 0; k < TOKEN_BODY_LEN; k++)
            seen[k][(unsigned char)s[i][10 + k]] = true;
    }
    qsort(s, DRAWS, sizeof *s, cmp_str);
    for (int i = 1; i < DRAWS; i++)
        cr_assert_str_neq(s[i - 1], s[i]);
    for (int k = 0; k < TOKEN_BODY_LEN; k++) {
        int distinct = 0;
        for (int c = 0; c < 128; c++)
            distinct += seen[k][c];
        cr_assert_geq(distinct, k == 0 ? 55 : 62, "position %d: %d values", k, distinct);
    }
    /* Public ids of distinct secrets collide rarely (47 bits each). */
    char id[TOKEN_PUBLIC_ID_LEN + 1], prev[TOKEN_PUBLIC_ID_LEN + 1] = "";
    int same = 0;
    for (int i = 0; i < DRAWS; i++) {
        cr_assert_eq(token_public_id(s[i], strlen(s[i]), id, sizeof id), 0);
        same += strcmp(id, prev) == 0;
        strcpy(prev, id);
    }
    cr_assert_eq(same, 0);
    free(s);
}

Test(token, hash_is_stable_hex_sha256)
{
    char h[TOKEN_HASH_HEX_LEN + 1], h2[TOKEN_HASH_HEX_LEN + 1];
    /* printf 'abc' | sha256sum */
    cr_assert_eq(token_hash("abc", 3, h, sizeof h), 0);
    cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_eq(token_hash("", 0, h, sizeof h), 0);
    cr_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* A fixed secret always hashes the same (what the database stores):
     * printf %s SECRET | sha256sum. */
    const char *secret = "fenta_pat_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg";
    cr_assert_eq(token_hash(secret, strlen(secret), h, sizeof h), 0);
    cr_assert_eq(token_hash(secret, strlen(secret), h2, sizeof h2), 0);
    cr_assert_str_eq(h, h2);
    cr_assert_str_eq(h, "2774f417c46bbccd78f7e1daee255f4ba4345116bf6321d30c968c31ae3b985f");
    cr_assert_eq(strlen(h), 64);
    cr_assert_eq(token_hash(secret, strlen(secret), h, 64), FENTA_EINVAL);
}

Test(token, verify_against_stored_hash)
{
    char s[TOKEN_SECRET_MAX + 1], other[TOKEN_SECRET_MAX + 1], h[TOKEN_HASH_HEX_LEN + 1];
    cr_assert_eq(token_generate(TOKEN_KIND_REFRESH, s, sizeof s), 0);
    cr_assert_eq(token_generate(TOKEN_KIND_REFRESH, other, sizeof other), 0);
    cr_assert_eq(token_hash(s, strlen(s), h, sizeof h), 0);
    cr_assert_eq(token_verify(s, strlen(s), h), 0);
    cr_assert_eq(token_verify(other, strlen(other), h), FENTA_EAUTH);
    cr_assert_eq(token_verify(s, strlen(s) - 1, h), FENTA_EAUTH);
    char t[TOKEN_SECRET_MAX + 1];
    strcpy(t, s);
    t[20] = t[20] == 'a' ? 'b' : 'a';
    cr_assert_eq(token_verify(t, strlen(t), h), FENTA_EAUTH);
    /* Uppercase hex is the same digest. */
    char up[TOKEN_HASH_HEX_LEN + 1];
    for (int i = 0; i <= TOKEN_HASH_HEX_LEN; i++)
        up[i] = (h[i] >= 'a' && h[i] <= 'f') ? (char)(h[i] - 32) : h[i];
    cr_assert_eq(token_verify(s, strlen(s), up), 0);
    /* Malformed stored hashes never match. */
    char bad[TOKEN_HASH_HEX_LEN + 2];
    strcpy(bad, h);
    bad[10] = 'g';
    cr_assert_eq(token_verify(s, strlen(s), bad), FENTA_EAUTH);
    strcpy(bad, h);
    bad[63] = '\0';
    cr_assert_eq(token_verify(s, strlen(s), bad), FENTA_EAUTH);
    strcpy(bad, h);
    strcat(bad, "0");
    cr_assert_eq(token_verify(s, strlen(s), bad), FENTA_EAUTH);
    cr_assert_eq(token_verify(s, strlen(s), ""), FENTA_EAUTH);
    cr_assert_eq(token_verify(s, strlen(s), NULL), FENTA_EAUTH);
    cr_assert_eq(token_verify(NULL, 0, h), FENTA_EAUTH);
}

Test(token, public_id_is_first_eight_body_chars)
{
    char id[TOKEN_PUBLIC_ID_LEN + 1];
    const char *pat = "fenta_pat_AbCdEfGh0123456789012345678901234567890123X";
    cr_assert_eq(strlen(pat), 53);
    cr_assert_eq(token_public_id(pat, strlen(pat), id, sizeof id), 0);
    cr_assert_str_eq(id, "AbCdEfGh");
    const char *rt = "fenta_rt_zyxwvuts0123456789012345678901234567890123X";
    cr_assert_eq(token_public_id(rt, strlen(rt), id, sizeof id), 0);
    cr_assert_str_eq(id, "zyxwvuts");
    cr_assert_eq(token_public_id("fenta_pat_short", 15, id, sizeof id), FENTA_EINVAL);
    cr_assert_eq(token_public_id(pat, strlen(pat), id, 8), FENTA_EINVAL);
}

Test(token, classify_by_shape)
{
    char pat[TOKEN_SECRET_MAX + 1], rt[TOKEN_SECRET_MAX + 1];
    token_generate(TOKEN_KIND_PAT, pat, sizeof pat);
    token_generate(TOKEN_KIND_REFRESH, rt, sizeof rt);
    cr_assert_eq(token_classify(pat, strlen(pat)), TOKEN_KIND_PAT);
    cr_assert_eq(token_classify(rt, strlen(rt)), TOKEN_KIND_REFRESH);
    const char *jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0."
                      "I-cBwS2A2-OD8vZJbn4w3M2ReN_bbgzRWWAxzpq0zYg";
    cr_assert_eq(token_classify(jwt, strlen(jwt)), TOKEN_KIND_JWT);

    /* Length is part of the shape; so is every body character. */
    cr_assert_eq(token_classify(pat, strlen(pat) - 1), TOKEN_KIND_INVALID);
    char t[TOKEN_SECRET_MAX + 2];
    snprintf(t, sizeof t, "%sA", pat);
    cr_assert_eq(token_classify(t, strlen(t)), TOKEN_KIND_INVALID);
    strcpy(t, pat);
    t[30] = '-';
    cr_assert_eq(token_classify(t, strlen(t)), TOKEN_KIND_INVALID);
    strcpy(t, pat);
    t[30] = '\0'; /* NUL inside the given length */
    cr_assert_eq(token_classify(t, strlen(pat)), TOKEN_KIND_INVALID);
    /* The prefix is part of the kind: the same body is a PAT or a refresh
     * token by its prefix alone, and the hash covers the prefix. */
    snprintf(t, sizeof t, "fenta_pat_%s", rt + 9);
    cr_assert_eq(token_classify(t, strlen(t)), TOKEN_KIND_PAT);
    char h1[TOKEN_HASH_HEX_LEN + 1];
    cr_assert_eq(token_hash(rt, strlen(rt), h1, sizeof h1), 0);
    cr_assert_eq(token_verify(t, strlen(t), h1), FENTA_EAUTH);
    snprintf(t, sizeof t, "FENTA_PAT_%s", pat + 10);
    cr_assert_eq(token_classify(t, strlen(t)), TOKEN_KIND_INVALID);

    const char *invalid[] = {
        "",
        "fenta_pat_",
        "fenta_rt_",
        "Bearer fenta_pat_",
        "eyJ",
        "eyJhbGciOiJIUzI1NiJ9.eyJ9",           /* 2 segments */
        "eyJhbGciOiJIUzI1NiJ9.eyJ9.AAAA.AAAA", /* 4 segments */
        "eyJhbGciOiJIUzI1NiJ9..AAAA",          /* empty payload */
        "eyJhbGciOiJIUzI1NiJ9.eyJ9.",          /* empty signature */
        "eyJhbGciOiJIUzI1NiJ9.eyJ9.AA=A",      /* padding */
        "abc.def.ghi",                         /* header is not '{"' */
        "ghp_0123456789abcdefghijklmnopqrstuvwxyz",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        cr_assert_eq(token_classify(invalid[i], strlen(invalid[i])), TOKEN_KIND_INVALID, "%s",
                     invalid[i]);
    cr_assert_eq(token_classify(NULL, 5), TOKEN_KIND_INVALID);
    /* Oversized JWT shape. */
    size_t n = TOKEN_JWT_MAX + 1;
    char *big = malloc(n + 1);
    memset(big, 'A', n);
    memcpy(big, "eyJ", 3);
    big[100] = big[200] = '.';
    big[n] = '\0';
    cr_assert_eq(token_classify(big, n), TOKEN_KIND_INVALID);
    cr_assert_eq(token_classify(big, n - 1), TOKEN_KIND_JWT);
    free(big);
}
