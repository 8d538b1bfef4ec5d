/* test_cursor.c - pagination cursors round-trip, and every change a client
 * could make (any character replaced, cut short, extended, another key,
 * padding, non-base64, oversize, a forged tag, another version) is refused;
 * ?limit= accepts exactly 1..max in plain digits. */
#include "http/cursor.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void test_key(uint8_t key[32], uint8_t salt)
{
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + salt);
}

static json_t *sample_position(void)
{
    return json_pack("{s:s, s:s, s:[s, s]}", "sort", "created_at", "dir", "desc", "last",
                     "2026-11-23T21:00:00Z", "0b6d3c9e-2f1a-4c55-9e8b-7a1d2c3b4e5f");
}

static void refused(const uint8_t key[32], const char *cursor, const char *why)
{
    int err = 12345;
    json_t *pos = cursor_decode(key, cursor, &err);
    cr_assert_null(pos, "%s: cursor \"%s\" was accepted", why, cursor);
    cr_assert_eq(err, FENTA_EINVAL, "%s: err %d", why, err);
}

Test(cursor, round_trip)
{
    uint8_t key[32];
    test_key(key, 1);
    json_t *pos = sample_position();
    char *c = cursor_encode(key, pos);
    cr_assert_not_null(c);
    cr_assert_leq(strlen(c), CURSOR_MAX_LEN);
    cr_assert_eq(strspn(c, B64), strlen(c), "only base64url characters, no padding: %s", c);
    cr_assert_null(strstr(c, "created_at"), "the position is not readable as is");
    int err = -99;
    json_t *back = cursor_decode(key, c, &err);
    cr_assert_not_null(back);
    cr_assert_eq(err, 0);
    cr_assert(json_equal(pos, back));
    json_decref(back);
    /* err may be NULL */
    back = cursor_decode(key, c, NULL);
    cr_assert(json_equal(pos, back));
    json_decref(back);
    /* the same position always gives the same cursor (stable links) */
    char *c2 = cursor_encode(key, pos);
    cr_assert_str_eq(c, c2);
    free(c2);
    free(c);
    json_decref(pos);

    /* numbers, unicode, nulls and nesting survive */
    pos = json_loads("{\"last\":[42,-1.5,null,true,\"\\u00e9\\u4e2d\\ud83d\\ude00\"],"
                     "\"f\":{\"org\":\"a\",\"q\":\"x y\"},\"n\":9007199254740993}",
                     0, NULL);
    cr_assert_not_null(pos);
    c = cursor_encode(key, pos);
    back = cursor_decode(key, c, &err);
    cr_assert(json_equal(pos, back));
    json_decref(back);
    free(c);
    json_decref(pos);

    /* the smallest position */
    pos = json_object();
    c = cursor_encode(key, pos);
    back = cursor_decode(key, c, &err);
    cr_assert(json_equal(pos, back));
    json_decref(back);
    free(c);
    json_decref(pos);
}

Test(cursor, only_objects_are_positions)
{
    uint8_t key[32];
    test_key(key, 1);
    json_t *arr = json_pack("[s]", "x");
    cr_assert_null(cursor_encode(key, arr));
    json_decref(arr);
    cr_assert_null(cursor_encode(key, NULL));
}

Test(cursor, every_character_changed_is_refused)
{
    uint8_t key[32];
    test_key(key, 2);
    json_t *pos = sample_position();
    char *c = cursor_encode(key, pos);
    size_t n = strlen(c);
    char *t = strdup(c);
    long tried = 0;
    for (size_t i = 0; i < n; i++) {
        for (const char *r = B64; *r; r++) {
            if (*r == c[i])
                continue;
            t[i] = *r;
            int err = 0;
            json_t *got = cursor_decode(key, t, &err);
            cr_assert_null(got, "changing character %zu to '%c' was accepted", i, *r);
            cr_assert_eq(err, FENTA_EINVAL);
            tried++;
        }
        t[i] = c[i];
    }
    cr_assert_eq(tried, (long)n * 63);
    /* sanity: the untouched copy still decodes */
    json_t *back = cursor_decode(key, t, NULL);
    cr_assert(json_equal(back, pos));
    json_decref(back);
    free(t);
    free(c);
    json_decref(pos);
}

Test(cursor, truncated_and_extended_are_refused)
{
    uint8_t key[32];
    test_key(key, 3);
    json_t *pos = sample_position();
    char *c = cursor_encode(key, pos);
    size_t n = strlen(c);
    char *t = malloc(n + 8);
    for (size_t len = 0; len < n; len++) {
        memcpy(t, c, len);
        t[len] = '\0';
        refused(key, t, "truncated");
    }
    for (const char *extra = "AAAA"; *extra; extra++) {
        strcpy(t, c);
        strcat(t, extra);
        refused(key, t, "extended");
    }
    strcpy(t, c);
    strcat(t, "=");
    refused(key, t, "padded");
    strcpy(t, c);
    strcat(t, "==");
    refused(key, t, "padded");
    free(t);
    free(c);
    json_decref(pos);
}

Test(cursor, another_key_is_refused)
{
    uint8_t key[32], other[32];
    test_key(key, 4);
    json_t *pos = sample_position();
    char *c = cursor_encode(key, pos);
    for (int bit = 0; bit < 256; bit += 37) {
        memcpy(other, key, 32);
        other[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        refused(other, c, "another key");
    }
    free(c);
    json_decref(pos);
}

Test(cursor, garbage_is_refused)
{
    uint8_t key[32];
    test_key(key, 5);
    const char *bad[] = {"",
                         "!!!!",
                         "abc=",
                         "a",
                         "AAAAA",
                         "eyJzb3J0IjoiaWQifQ", /* {"sort":"id"} with no tag */
                         "AXsic29ydCI6ImlkIn0AAAAAAAAAAAAAAAAAAAAAAA", /* a zero tag */
                         "abc def",
                         "ab+/cdef",
                         "abc\ndef",
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        refused(key, bad[i], "garbage");
    cr_assert_null(cursor_decode(key, NULL, NULL));
}

Test(cursor, oversized_is_refused)
{
    uint8_t key[32];
    test_key(key, 6);
    /* too long to produce */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_t *pos = json_pack("{s:s}", "last", big);
    cr_assert_null(cursor_encode(key, pos), "a cursor over 1 KiB was produced");
    json_decref(pos);

    /* too long to read, even as plausible base64url */
    char *huge = malloc(1 << 20);
    memset(huge, 'A', (1 << 20) - 1);
    huge[(1 << 20) - 1] = '\0';
    refused(key, huge, "1 MiB");
    huge[CURSOR_MAX_LEN + 1] = '\0';
    refused(key, huge, "1025 characters");
    free(huge);

    /* the largest position that fits comes back; one byte more is refused */
    size_t fits = 0;
    for (size_t len = 600; len < 1000; len++) {
        big[len] = '\0';
        pos = json_pack("{s:s}", "last", big);
        char *c = cursor_encode(key, pos);
        big[len] = 'x';
        if (!c) {
            json_decref(pos);
            break;
        }
        cr_assert_leq(strlen(c), CURSOR_MAX_LEN);
        json_t *back = cursor_decode(key, c, NULL);
        cr_assert(json_equal(back, pos), "a %zu-character cursor did not round-trip", strlen(c));
        json_decref(back);
        fits = len;
        free(c);
        json_decref(pos);
    }
    cr_assert_gt(fits, 700, "only %zu bytes of position fit", fits);
    cr_assert_lt(fits, 999, "no limit was met");
}

/* Builds a cursor the way cursor.c does, so the test can vary one part. */
static char *forge(const uint8_t key[32], uint8_t version, const char *json, const char *domain,
                   size_t domain_len)
{
    size_t jlen = strlen(json);
    unsigned char msg[1024];
    memcpy(msg, domain, domain_len);
    msg[domain_len] = version;
    memcpy(msg + domain_len + 1, json, jlen);
    unsigned char mac[32];
    unsigned int mlen;
    HMAC(EVP_sha256(), key, 32, msg, domain_len + 1 + jlen, mac, &mlen);
    unsigned char raw[1024];
    raw[0] = version;
    memcpy(raw + 1, json, jlen);
    memcpy(raw + 1 + jlen, mac, 16);
    size_t n = 1 + jlen + 16;
    char *out = malloc(n * 2 + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = B64[acc >> bits & 63];
        }
    }
    if (bits)
        out[o++] = B64[acc << (6 - bits) & 63];
    out[o] = '\0';
    return out;
}

Test(cursor, version_and_domain_are_bound)
{
    uint8_t key[32];
    test_key(key, 7);
    static const char domain[] = "fenta/cursor/v1"; /* with its NUL */
    /* control: the forger reproduces real cursors, so its refusals below mean something */
    char *ok = forge(key, 1, "{\"dir\":\"asc\"}", domain, sizeof domain);
    json_t *back = cursor_decode(key, ok, NULL);
    cr_assert_not_null(back, "the test's encoder disagrees with cursor.c");
    json_t *want = json_pack("{s:s}", "dir", "asc");
    cr_assert(json_equal(back, want));
    json_t *pos = json_pack("{s:s}", "dir", "asc");
    char *real = cursor_encode(key, pos);
    cr_assert_str_eq(ok, real);
    free(real);
    json_decref(pos);
    json_decref(want);
    json_decref(back);
    free(ok);

    char *v2 = forge(key, 2, "{\"dir\":\"asc\"}", domain, sizeof domain);
    refused(key, v2, "version 2");
    free(v2);
    /* a plain HMAC of the same bytes under the same key (e.g. another
     * feature's signature) is not a cursor tag */
    char *plain = forge(key, 1, "{\"dir\":\"asc\"}", "", 0);
    refused(key, plain, "no domain");
    free(plain);
    /* a correctly tagged non-object is still refused */
    char *arr = forge(key, 1, "[1,2]", domain, sizeof domain);
    refused(key, arr, "array position");
    free(arr);
    char *dup = forge(key, 1, "{\"a\":1,\"a\":2}", domain, sizeof domain);
    refused(key, dup, "duplicate members");
    free(dup);
}

Test(cursor, limit_parsing)
{
    int v = -1;
    cr_assert_eq(cursor_limit(NULL, 20, 100, &v), 0);
    cr_assert_eq(v, 20, "absent means the default");
    cr_assert_eq(cursor_limit("1", 20, 100, &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(cursor_limit("100", 20, 100, &v), 0);
    cr_assert_eq(v, 100);
    cr_assert_eq(cursor_limit("050", 20, 100, &v), 0);
    cr_assert_eq(v, 50);
    const char *bad[] = {"",   "0",   "000", "101",  "-1",  "+5",    " 5",
                         "5 ", "5.0", "1e2", "0x10", "abc", "10abc", "99999999999999999999999999",
                         "½"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = -7;
        cr_assert_eq(cursor_limit(bad[i], 20, 100, &v), FENTA_EINVAL, "\"%s\" was accepted",
                     bad[i]);
        cr_assert_eq(v, -7, "\"%s\" changed *out", bad[i]);
    }
    cr_assert_eq(cursor_limit("10", 20, 5, &v), FENTA_EINVAL, "default above max");
    cr_assert_eq(cursor_limit("10", 0, 100, &v), FENTA_EINVAL, "default 0");
    cr_assert_eq(cursor_limit("6", 5, 5, &v), FENTA_EINVAL);
    cr_assert_eq(cursor_limit("5", 5, 5, &v), 0);
    cr_assert_eq(v, 5);
    cr_assert_eq(cursor_limit("100", 20, CURSOR_LIMIT_MAX, &v), 0);
    cr_assert_eq(cursor_limit("101", 20, CURSOR_LIMIT_MAX, &v), FENTA_EINVAL);
}
