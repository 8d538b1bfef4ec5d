/* test_crypto.c - the ground layer's cryptography gives the published answers
 * (FIPS 180 SHA-256 and SHA-1, RFC 4231 HMAC-SHA256, RFC 4648 base64), the
 * strict base64url spelling refuses every other spelling, the standard and
 * lenient decoders read what other services send, hex round-trips and
 * refuses non-digits, and random draws do not repeat. */
#include "runtime/crypto.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static void hexeq(const uint8_t *md, size_t n, const char *want)
{
    char got[2 * 64 + 1];
    crypto_hex(md, n, got);
    cr_assert_str_eq(got, want);
}

Test(crypto, sha256_sha1_and_hmac_vectors)
{
    uint8_t md[CRYPTO_SHA256_LEN];
    cr_assert_eq(crypto_sha256("abc", 3, md), 0);
    hexeq(md, sizeof md, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_eq(crypto_sha256_2("a", 1, "bc", 2, md), 0);
    hexeq(md, sizeof md, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_eq(crypto_sha256_2("abc", 3, NULL, 0, md), 0);
    hexeq(md, sizeof md, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cr_assert_eq(crypto_sha256(NULL, 0, md), 0);
    hexeq(md, sizeof md, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    uint8_t s1[CRYPTO_SHA1_LEN];
    cr_assert_eq(crypto_sha1("abc", 3, s1), 0);
    hexeq(s1, sizeof s1, "a9993e364706816aba3e25717850c26c9cd0d89d");
    /* RFC 4231 test case 2. */
    const char *msg = "what do ya want for nothing?";
    cr_assert_eq(crypto_hmac_sha256("Jefe", 4, msg, strlen(msg), md), 0);
    hexeq(md, sizeof md, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

Test(crypto, base64_standard_pads_and_reads_back)
{
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char e[16];
        uint8_t d[16];
        size_t n = 99;
        cr_assert_eq(crypto_b64_encode(CRYPTO_B64_STD, in[i], strlen(in[i]), e, sizeof e),
                     (int)strlen(out[i]));
        cr_assert_str_eq(e, out[i]);
        cr_assert_eq(CRYPTO_B64_LEN(strlen(in[i])), strlen(out[i]));
        cr_assert_eq(crypto_b64_decode(CRYPTO_B64_STD, out[i], strlen(out[i]), d, sizeof d, &n), 0);
        cr_assert_eq(n, strlen(in[i]));
        cr_assert_eq(memcmp(d, in[i], n), 0);
    }
    uint8_t raw[] = {0xfb, 0xff}, d[8];
    char e[8];
    size_t n = 0;
    crypto_b64_encode(CRYPTO_B64_STD, raw, 2, e, sizeof e);
    cr_assert_str_eq(e, "+/8=");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_STD, "Zg=", 3, d, sizeof d, &n), FENTA_EINVAL);
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_STD, "-_8=", 4, d, sizeof d, &n), FENTA_EINVAL);
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_STD, "Zg=v", 4, d, sizeof d, &n), FENTA_EINVAL);
    cr_assert_eq(crypto_b64_encode(CRYPTO_B64_STD, raw, 2, e, 4), FENTA_ETOOBIG);
}

Test(crypto, base64_any_reads_either_alphabet_with_white_space)
{
    uint8_t d[16];
    size_t n = 0;
    const char *s = " +/8=\n";
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_ANY, s, strlen(s), d, sizeof d, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(d[0] == 0xfb && d[1] == 0xff);
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_ANY, "-_8", 3, d, sizeof d, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(d[0] == 0xfb && d[1] == 0xff);
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_ANY, "Zg==Zg", 6, d, sizeof d, &n), FENTA_EINVAL,
                 "data after padding");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_ANY, "Zm*v", 4, d, sizeof d, &n), FENTA_EINVAL);
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_ANY, "Zm9vYmFy", 8, d, 5, &n), FENTA_ETOOBIG);
}

Test(crypto, hex_equal_wipe_random)
{
    uint8_t in[] = {0x00, 0x7f, 0xab, 0xff}, back[4];
    char h[9];
    crypto_hex(in, 4, h);
    cr_assert_str_eq(h, "007fabff");
    cr_assert_eq(crypto_unhex("007FABff", back, 4), 0);
    cr_assert_eq(memcmp(in, back, 4), 0);
    cr_assert_eq(crypto_unhex("007fabfg", back, 4), FENTA_EINVAL);
    cr_assert_eq(crypto_unhex("0x7fabff", back, 4), FENTA_EINVAL);
    cr_assert(crypto_equal("abcd", "abcd", 4));
    cr_assert_not(crypto_equal("abcd", "abce", 4));
    cr_assert(crypto_equal("a", "b", 0));
    uint8_t k[8] = {1, 2, 3, 4, 5, 6, 7, 8}, zero[8] = {0};
    crypto_wipe(k, sizeof k);
    cr_assert_eq(memcmp(k, zero, 8), 0);
    /* 1,000 draws of 16 bytes: a repeat would mean the generator is broken. */
    static uint8_t draws[1000][16];
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(crypto_random(draws[i], 16), 0);
    for (int i = 0; i < 1000; i++)
        for (int j = i + 1; j < 1000; j++)
            cr_assert_neq(memcmp(draws[i], draws[j], 16), 0);
}

Test(crypto, b64url_round_trip_and_vectors)
{
    /* RFC 4648 §10 vectors, unpadded. */
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char e[16];
        unsigned char d[16];
        size_t n = 99;
        cr_assert_eq(crypto_b64_encode(CRYPTO_B64_URL, (const unsigned char *)in[i], strlen(in[i]),
                                       e, sizeof e),
                     (int)strlen(out[i]));
        cr_assert_str_eq(e, out[i]);
        cr_assert_eq(CRYPTO_B64URL_LEN(strlen(in[i])), strlen(out[i]));
        cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, out[i], strlen(out[i]), d, sizeof d, &n), 0);
        cr_assert_eq(n, strlen(in[i]));
        cr_assert_eq(memcmp(d, in[i], n), 0);
    }
    /* URL alphabet: 0xfb 0xff -> "-_8" (standard base64 would say "+/8"). */
    unsigned char raw[] = {0xfb, 0xff};
    char e[8];
    crypto_b64_encode(CRYPTO_B64_URL, raw, 2, e, sizeof e);
    cr_assert_str_eq(e, "-_8");
    /* Every byte value survives. */
    unsigned char all[256], back[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char enc[CRYPTO_B64URL_LEN(256) + 1];
    size_t n = 0;
    cr_assert_eq(crypto_b64_encode(CRYPTO_B64_URL, all, 256, enc, sizeof enc),
                 (int)CRYPTO_B64URL_LEN(256));
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, enc, strlen(enc), back, sizeof back, &n), 0);
    cr_assert_eq(n, 256);
    cr_assert_eq(memcmp(all, back, 256), 0);
    cr_assert_eq(crypto_b64_encode(CRYPTO_B64_URL, all, 256, enc, CRYPTO_B64URL_LEN(256)),
                 FENTA_ETOOBIG);
}

Test(crypto, b64url_decode_is_strict)
{
    unsigned char d[16];
    size_t n;
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zg==", 4, d, sizeof d, &n), FENTA_EINVAL,
                 "padding");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zm+v", 4, d, sizeof d, &n), FENTA_EINVAL,
                 "'+'");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zm/v", 4, d, sizeof d, &n), FENTA_EINVAL,
                 "'/'");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zm9 v", 5, d, sizeof d, &n), FENTA_EINVAL,
                 "space");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zm9vY", 5, d, sizeof d, &n), FENTA_EINVAL,
                 "1 mod 4");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zh", 2, d, sizeof d, &n), FENTA_EINVAL,
                 "trailing bits");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zm9", 3, d, sizeof d, &n), FENTA_EINVAL,
                 "trailing bits");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zm\0v", 4, d, sizeof d, &n), FENTA_EINVAL,
                 "NUL");
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zm9vYmFy", 8, d, 5, &n), FENTA_ETOOBIG);
    cr_assert_eq(crypto_b64_decode(CRYPTO_B64_URL, "Zm9vYmFy", 8, d, 6, &n), 0);
    cr_assert_eq(n, 6);
}
