/* test_envelope.c - envelopes survive encode/decode field for field, and no
 * byte string makes decode crash, leak or accept a malformed envelope.
 *
 * Hostile inputs are built with msgpack-c's own packer rather than with
 * envelope.c's encoder, so the decoder is checked against an independent
 * writer of the format; that is why msgpack.h appears here too. */
#include "runtime/envelope.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void) /* xorshift64: seeded, so a failure replays */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static envelope_t *sample(void)
{
    static const uint8_t body[] = {0x82, 0xa1, 'k', 0x01, 0xa1, 'z', 0xc0, 0x00, 0xff};
    envelope_t *e = envelope_new("job/01HZX3", "worker/7", "job.run", "01HZX3JOBID00000000000000",
                                 body, sizeof body);
    cr_assert_not_null(e);
    e->attempt = 3;
    e->not_before_ms = 1700000000123;
    cr_assert_eq(envelope_add_error(e, 1, 1699999999000, "timeout after 30s"), 0);
    cr_assert_eq(envelope_add_error(e, 2, -5, "échec: ünïcode"), 0);
    return e;
}

static void expect_same(const envelope_t *a, const envelope_t *b)
{
    cr_expect_eq(id_cmp(&a->id, &b->id), 0);
    cr_expect_str_eq(a->to, b->to);
    cr_expect_str_eq(a->from, b->from);
    cr_expect_str_eq(a->type, b->type);
    cr_expect_str_eq(a->corr, b->corr);
    cr_expect_eq(a->attempt, b->attempt);
    cr_expect_eq(a->not_before_ms, b->not_before_ms);
    cr_assert_eq(a->body_len, b->body_len);
    if (a->body_len > 0)
        cr_expect_arr_eq(a->body, b->body, a->body_len);
    cr_assert_eq(a->history_len, b->history_len);
    for (size_t i = 0; i < a->history_len; i++) {
        cr_expect_eq(a->history[i].attempt, b->history[i].attempt);
        cr_expect_eq(a->history[i].at_ms, b->history[i].at_ms);
        cr_expect_str_eq(a->history[i].error, b->history[i].error);
    }
}

/* Decode must refuse buf: FENTA_EDECODE, a reason, no envelope. */
static void expect_refused(const void *buf, size_t len, const char *what)
{
    envelope_t *e = (envelope_t *)&e; /* not NULL: decode must clear it */
    const char *why = NULL;
    int rc = envelope_decode(buf, len, &e, &why);
    cr_expect_eq(rc, FENTA_EDECODE, "%s: decode returned %d", what, rc);
    cr_expect_null(e, "%s: an envelope came back", what);
    cr_expect_not_null(why, "%s: no reason", what);
    if (rc == 0)
        envelope_destroy(&e);
}

/* A hostile map: every field valid, except that omit is left out and key (if
 * not NULL) gets the value bad writes. Fields are written in wire order. */
typedef void (*pack_fn)(msgpack_packer *pk);

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void pack_good(msgpack_packer *pk, const char *key)
{
    static const uint8_t id[ID_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    if (strcmp(key, "id") == 0) {
        msgpack_pack_bin_with_body(pk, id, sizeof id);
    } else if (strcmp(key, "at") == 0) {
        msgpack_pack_uint32(pk, 2);
    } else if (strcmp(key, "nb") == 0) {
        msgpack_pack_int64(pk, 1700000000000);
    } else if (strcmp(key, "bd") == 0) {
        msgpack_pack_bin_with_body(pk, "\x90", 1);
    } else if (strcmp(key, "er") == 0) {
        msgpack_pack_array(pk, 1);
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, 1);
        msgpack_pack_int64(pk, 1699999999000);
        pack_cstr(pk, "boom");
    } else {
        pack_cstr(pk, key[0] == 't' && key[1] == 'o' ? "job/1" : "x");
    }
}

static const char *const keys[] = {"id", "to", "fr", "ty", "co", "at", "nb", "bd", "er"};
#define NKEYS (sizeof keys / sizeof keys[0])

static msgpack_sbuffer build(const char *omit, const char *key, pack_fn bad)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, NKEYS - (omit ? 1 : 0));
    for (size_t i = 0; i < NKEYS; i++) {
        if (omit && strcmp(omit, keys[i]) == 0)
            continue;
        pack_cstr(&pk, keys[i]);
        if (key && strcmp(key, keys[i]) == 0)
            bad(&pk);
        else
            pack_good(&pk, keys[i]);
    }
    return sb;
}

/* ---- round trip ----------------------------------------------------------------- */

Test(envelope, round_trip_every_field)
{
    envelope_t *e = sample();
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(envelope_encode(e, &buf, &len), 0);
    cr_assert_gt(len, 0);

    envelope_t *d = NULL;
    const char *why = "unset";
    cr_assert_eq(envelope_decode(buf, len, &d, &why), 0, "%s", why);
    cr_expect_null(why);
    expect_same(e, d);
    cr_expect_str_eq(d->history[1].error, "échec: ünïcode");

    /* Encoding the decoded envelope gives the same bytes. */
    uint8_t *again = NULL;
    size_t again_len = 0;
    cr_assert_eq(envelope_encode(d, &again, &again_len), 0);
    cr_assert_eq(again_len, len);
    cr_expect_arr_eq(again, buf, len);

    free(again);
    free(buf);
    envelope_destroy(&d);
    envelope_destroy(&e);
    cr_expect_null(e);
    envelope_destroy(&e); /* NULL is fine */
    envelope_destroy(NULL);
}

Test(envelope, round_trip_defaults)
{
    envelope_t *e = envelope_new("a/b", NULL, "t", NULL, NULL, 0);
    cr_assert_not_null(e);
    cr_expect_str_eq(e->from, "");
    cr_expect_str_eq(e->corr, "");
    uint8_t *buf;
    size_t len;
    cr_assert_eq(envelope_encode(e, &buf, &len), 0);
    envelope_t *d;
    cr_assert_eq(envelope_decode(buf, len, &d, NULL), 0);
    expect_same(e, d);
    cr_expect_null(d->body);
    cr_expect_eq(d->body_len, 0);
    cr_expect_null(d->history);
    free(buf);
    envelope_destroy(&d);
    envelope_destroy(&e);
}

Test(envelope, optional_keys_may_be_absent)
{
    const char *optional[] = {"fr", "co", "at", "nb", "bd", "er"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        msgpack_sbuffer sb = build(optional[i], NULL, NULL);
        envelope_t *e = NULL;
        const char *why = NULL;
        cr_expect_eq(envelope_decode(sb.data, sb.size, &e, &why), 0, "without %s: %s", optional[i],
                     why);
        if (e) {
            cr_expect_not_null(e->from);
            cr_expect_not_null(e->corr);
        }
        envelope_destroy(&e);
        msgpack_sbuffer_destroy(&sb);
    }
}

Test(envelope, new_dup_and_error_history)
{
    cr_expect_null(envelope_new(NULL, "f", "t", NULL, NULL, 0));
    cr_expect_null(envelope_new("to", "f", NULL, NULL, NULL, 0));
    cr_expect_null(envelope_new("to", "f", "t", NULL, NULL, 3)); /* body_len without body */

    char addr[ENVELOPE_ADDR_MAX + 2];
    memset(addr, 'a', sizeof addr - 1);
    addr[sizeof addr - 1] = '\0';
    cr_expect_null(envelope_new(addr, NULL, "t", NULL, NULL, 0), "256-byte to accepted");
    cr_expect_null(envelope_new("to", addr, "t", NULL, NULL, 0), "256-byte from accepted");
    cr_expect_null(envelope_new("to", NULL, addr, NULL, NULL, 0), "256-byte type accepted");
    addr[ENVELOPE_ADDR_MAX] = '\0';
    envelope_t *max = envelope_new(addr, addr, addr, NULL, NULL, 0);
    cr_expect_not_null(max, "255-byte addresses refused");
    envelope_destroy(&max);

    envelope_t *e = sample();
    envelope_t *d = envelope_dup(e);
    cr_assert_not_null(d);
    expect_same(e, d);
    cr_expect_neq(e->to, d->to);
    cr_expect_neq(e->body, d->body);
    cr_expect_neq(e->history, d->history);
    cr_expect_neq(e->history[0].error, d->history[0].error);
    envelope_destroy(&d);

    /* Errors are cut to 1 KiB, and not inside a UTF-8 character. */
    char long_err[2000];
    memset(long_err, 'x', sizeof long_err);
    memcpy(long_err + 1023, "é", 2); /* straddles byte 1024 */
    long_err[sizeof long_err - 1] = '\0';
    cr_assert_eq(envelope_add_error(e, 3, 7, long_err), 0);
    cr_assert_eq(envelope_add_error(e, 4, 8, NULL), 0);
    cr_assert_eq(e->history_len, 4);
    cr_expect_eq(strlen(e->history[2].error), 1023);
    cr_expect_str_eq(e->history[3].error, "");
    cr_expect_eq(envelope_add_error(NULL, 1, 1, "x"), FENTA_EINVAL);

    uint8_t *buf;
    size_t len;
    cr_assert_eq(envelope_encode(e, &buf, &len), 0);
    envelope_t *back;
    cr_assert_eq(envelope_decode(buf, len, &back, NULL), 0);
    expect_same(e, back);
    free(buf);
    envelope_destroy(&back);
    envelope_destroy(&e);
}

/* A message retried many times keeps every failure, in order, past the
 * history's first room; and an envelope copied or decoded (its history
 * sized exactly) takes more failures without losing the ones it had. */
Test(envelope, long_history_grows_after_dup_and_decode)
{
    envelope_t *e = envelope_new("job/1", NULL, "job.run", NULL, NULL, 0);
    cr_assert_not_null(e);
    char why[32];
    for (uint32_t i = 0; i < 40; i++) {
        snprintf(why, sizeof why, "failure %u", i);
        cr_assert_eq(envelope_add_error(e, i, 1000 + i, why), 0);
    }
    envelope_t *d = envelope_dup(e);
    cr_assert_not_null(d);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(envelope_encode(e, &buf, &len), 0);
    envelope_t *back;
    cr_assert_eq(envelope_decode(buf, len, &back, NULL), 0);
    free(buf);
    for (uint32_t i = 40; i < 70; i++) {
        snprintf(why, sizeof why, "failure %u", i);
        cr_assert_eq(envelope_add_error(e, i, 1000 + i, why), 0);
        cr_assert_eq(envelope_add_error(d, i, 1000 + i, why), 0);
        cr_assert_eq(envelope_add_error(back, i, 1000 + i, why), 0);
    }
    cr_assert_eq(e->history_len, 70);
    for (uint32_t i = 0; i < 70; i++) {
        snprintf(why, sizeof why, "failure %u", i);
        cr_assert_eq(e->history[i].attempt, i);
        cr_assert_eq(e->history[i].at_ms, 1000 + (int64_t)i);
        cr_assert_str_eq(e->history[i].error, why);
    }
    expect_same(e, d);
    expect_same(e, back);
    envelope_destroy(&e);
    envelope_destroy(&d);
    envelope_destroy(&back);
}

Test(envelope, encode_refuses_what_decode_would)
{
    envelope_t *e = sample();
    uint8_t *buf = NULL;
    size_t len;
    char *to = e->to;
    char longer[ENVELOPE_ADDR_MAX + 2];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    e->to = longer;
    cr_expect_eq(envelope_encode(e, &buf, &len), FENTA_EINVAL);
    e->to = NULL;
    cr_expect_eq(envelope_encode(e, &buf, &len), FENTA_EINVAL);
    e->to = to;
    cr_expect_null(buf);
    cr_expect_eq(envelope_encode(NULL, &buf, &len), FENTA_EINVAL);
    envelope_destroy(&e);
}

/* ---- garbage in ---------------------------------------------------------------------- */

Test(envelope, random_bytes)
{
    uint8_t buf[96];
    for (int i = 0; i < 100000; i++) {
        size_t len = rng() % (sizeof buf + 1);
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rng();
        /* Half the time, start like an envelope so the decoder gets past the
         * first byte and into keys and values. */
        if (len > 0 && i % 2)
            buf[0] = 0x80 | (uint8_t)(rng() % 16);
        envelope_t *e = NULL;
        const char *why = NULL;
        int rc = envelope_decode(buf, len, &e, &why);
        cr_assert_eq(rc, FENTA_EDECODE, "buffer %d: rc %d", i, rc);
        cr_assert_not_null(why);
        cr_assert_null(e);
        char to[ENVELOPE_ADDR_MAX + 1];
        rc = envelope_peek_to(buf, len, to, sizeof to);
        cr_assert(rc == 0 || rc == FENTA_EDECODE, "buffer %d: peek rc %d", i, rc);
    }
}

/* Random damage to a real envelope reaches every branch of the decoder; some
 * damage leaves a valid envelope (a changed byte in the body), which must
 * then encode again. */
Test(envelope, mutated_envelopes)
{
    envelope_t *e = sample();
    uint8_t *good;
    size_t len;
    cr_assert_eq(envelope_encode(e, &good, &len), 0);
    envelope_destroy(&e);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    int accepted = 0;
    for (int i = 0; i < 100000; i++) {
        memcpy(buf, good, len);
        int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++)
            buf[rng() % len] = (uint8_t)rng();
        envelope_t *d = NULL;
        int rc = envelope_decode(buf, len, &d, NULL);
        cr_assert(rc == 0 || rc == FENTA_EDECODE, "mutation %d: rc %d", i, rc);
        if (rc == 0) {
            uint8_t *again;
            size_t again_len;
            cr_assert_eq(envelope_encode(d, &again, &again_len), 0, "mutation %d", i);
            free(again);
            envelope_destroy(&d);
            accepted++;
        }
    }
    cr_expect_gt(accepted, 0, "no mutation survived: the test reaches nothing past the header");
    free(buf);
    free(good);
}

Test(envelope, every_truncation)
{
    envelope_t *e = sample();
    uint8_t *buf;
    size_t len;
    cr_assert_eq(envelope_encode(e, &buf, &len), 0);
    for (size_t cut = 0; cut < len; cut++) {
        /* A copy of exactly cut bytes, so ASan sees any read past the end. */
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        char what[32];
        snprintf(what, sizeof what, "cut at %zu", cut);
        expect_refused(part, cut, what);
        free(part);
    }
    free(buf);
    envelope_destroy(&e);
}

Test(envelope, trailing_bytes)
{
    envelope_t *e = sample();
    uint8_t *buf;
    size_t len;
    cr_assert_eq(envelope_encode(e, &buf, &len), 0);
    uint8_t *more = malloc(len + 1);
    memcpy(more, buf, len);
    more[len] = 0xc0;
    expect_refused(more, len + 1, "one nil after the map");
    const char *why;
    envelope_t *d;
    envelope_decode(more, len + 1, &d, &why);
    cr_expect_not_null(strstr(why, "trailing"), "%s", why);
    free(more);
    free(buf);
    envelope_destroy(&e);
}

static void p_nil(msgpack_packer *pk)
{
    msgpack_pack_nil(pk);
}
static void p_true(msgpack_packer *pk)
{
    msgpack_pack_true(pk);
}
static void p_int5(msgpack_packer *pk)
{
    msgpack_pack_int(pk, 5);
}
static void p_neg1(msgpack_packer *pk)
{
    msgpack_pack_int(pk, -1);
}
static void p_u32_over(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, UINT64_C(1) << 32);
}
static void p_u64_max(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, UINT64_MAX);
}
static void p_float(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 1.0);
}
static void p_str(msgpack_packer *pk)
{
    pack_cstr(pk, "3");
}
static void p_str_nul(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "job\0x", 5);
}
static void p_str_256(msgpack_packer *pk)
{
    char s[ENVELOPE_ADDR_MAX + 1];
    memset(s, 'a', sizeof s);
    msgpack_pack_str_with_body(pk, s, sizeof s);
}
static void p_bin3(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "abc", 3);
}
static void p_bin15(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "0123456789abcde", 15);
}
static void p_bin17(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "0123456789abcdefg", 17);
}
static void p_ext16(msgpack_packer *pk)
{
    msgpack_pack_ext_with_body(pk, "0123456789abcdef", 16, 1);
}
static void p_array0(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}
static void p_map0(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0);
}
/* History entries, each wrong in one way. */
static void er_entry(msgpack_packer *pk, pack_fn attempt, pack_fn at, pack_fn error)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 3);
    attempt(pk);
    at(pk);
    error(pk);
}
static void p_err_text(msgpack_packer *pk)
{
    pack_cstr(pk, "boom");
}
static void p_er_two(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
}
static void p_er_four(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
    pack_cstr(pk, "x");
    msgpack_pack_nil(pk);
}
static void p_er_flat(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 1);
}
static void p_er_attempt_str(msgpack_packer *pk)
{
    er_entry(pk, p_str, p_int5, p_err_text);
}
static void p_er_attempt_neg(msgpack_packer *pk)
{
    er_entry(pk, p_neg1, p_int5, p_err_text);
}
static void p_er_at_big(msgpack_packer *pk)
{
    er_entry(pk, p_int5, p_u64_max, p_err_text);
}
static void p_er_error_int(msgpack_packer *pk)
{
    er_entry(pk, p_int5, p_int5, p_int5);
}
static void p_er_error_nul(msgpack_packer *pk)
{
    er_entry(pk, p_int5, p_int5, p_str_nul);
}
static void p_er_error_long(msgpack_packer *pk)
{
    char s[1025];
    memset(s, 'e', sizeof s);
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
    msgpack_pack_str_with_body(pk, s, sizeof s);
}

Test(envelope, wrong_types)
{
    static const struct {
        const char *key; /* the field given a wrong value */
        pack_fn bad;     /* writes it */
        const char *what;
    } cases[] = {
        {"id", p_nil, "nil"},
        {"id", p_str, "str"},
        {"id", p_int5, "int"},
        {"id", p_bin15, "bin(15)"},
        {"id", p_bin17, "bin(17)"},
        {"id", p_ext16, "ext(16)"},
        {"id", p_array0, "array"},
        {"to", p_nil, "nil"},
        {"to", p_int5, "int"},
        {"to", p_bin3, "bin"},
        {"to", p_map0, "map"},
        {"to", p_str_256, "256 bytes"},
        {"to", p_str_nul, "NUL inside"},
        {"fr", p_nil, "nil"},
        {"fr", p_true, "bool"},
        {"fr", p_bin3, "bin"},
        {"fr", p_str_256, "256 bytes"},
        {"ty", p_nil, "nil"},
        {"ty", p_float, "float"},
        {"ty", p_array0, "array"},
        {"ty", p_str_256, "256 bytes"},
        {"ty", p_str_nul, "NUL inside"},
        {"co", p_nil, "nil"},
        {"co", p_int5, "int"},
        {"co", p_bin3, "bin"},
        {"co", p_str_nul, "NUL inside"},
        {"at", p_neg1, "-1"},
        {"at", p_u32_over, "2^32"},
        {"at", p_u64_max, "2^64-1"},
        {"at", p_str, "str"},
        {"at", p_float, "float"},
        {"at", p_nil, "nil"},
        {"at", p_true, "bool"},
        {"nb", p_u64_max, "2^64-1"},
        {"nb", p_str, "str"},
        {"nb", p_float, "float"},
        {"nb", p_nil, "nil"},
        {"bd", p_str, "str"},
        {"bd", p_nil, "nil"},
        {"bd", p_int5, "int"},
        {"bd", p_array0, "array"},
        {"bd", p_ext16, "ext"},
        {"er", p_nil, "nil"},
        {"er", p_int5, "int"},
        {"er", p_map0, "map"},
        {"er", p_str, "str"},
        {"er", p_er_flat, "[1]"},
        {"er", p_er_two, "entry of 2"},
        {"er", p_er_four, "entry of 4"},
        {"er", p_er_attempt_str, "attempt str"},
        {"er", p_er_attempt_neg, "attempt -1"},
        {"er", p_er_at_big, "at_ms 2^64-1"},
        {"er", p_er_error_int, "error int"},
        {"er", p_er_error_nul, "error with NUL"},
        {"er", p_er_error_long, "error of 1025 bytes"},
    };
    /* The builder itself makes a good envelope, so each refusal below is
     * about the one bad value. */
    msgpack_sbuffer sb = build(NULL, NULL, NULL);
    envelope_t *e = NULL;
    cr_assert_eq(envelope_decode(sb.data, sb.size, &e, NULL), 0);
    cr_expect_str_eq(e->to, "job/1");
    cr_expect_eq(e->history_len, 1);
    envelope_destroy(&e);
    msgpack_sbuffer_destroy(&sb);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb = build(NULL, cases[i].key, cases[i].bad);
        char what[64];
        snprintf(what, sizeof what, "\"%s\" = %s", cases[i].key, cases[i].what);
        expect_refused(sb.data, sb.size, what);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void p_at_max(msgpack_packer *pk)
{
    msgpack_pack_uint32(pk, UINT32_MAX);
}
static void p_nb_min(msgpack_packer *pk)
{
    msgpack_pack_int64(pk, INT64_MIN);
}
static void p_str_255(msgpack_packer *pk)
{
    char s[ENVELOPE_ADDR_MAX];
    memset(s, 'a', sizeof s);
    msgpack_pack_str_with_body(pk, s, sizeof s);
}

Test(envelope, limits_are_accepted)
{
    static const struct {
        const char *key;
        pack_fn good;
    } cases[] = {{"at", p_at_max},  {"nb", p_nb_min},  {"to", p_str_255}, {"fr", p_str_255},
                 {"ty", p_str_255}, {"co", p_str_256}, {"nb", p_neg1},    {"bd", p_bin17}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer sb = build(NULL, cases[i].key, cases[i].good);
        envelope_t *e = NULL;
        const char *why = NULL;
        cr_expect_eq(envelope_decode(sb.data, sb.size, &e, &why), 0, "case %zu: %s", i, why);
        envelope_destroy(&e);
        msgpack_sbuffer_destroy(&sb);
    }
}

Test(envelope, missing_required_keys)
{
    const char *required[] = {"id", "to", "ty"};
    for (size_t i = 0; i < 3; i++) {
        msgpack_sbuffer sb = build(required[i], NULL, NULL);
        char what[32];
        snprintf(what, sizeof what, "without %s", required[i]);
        expect_refused(sb.data, sb.size, what);
        const char *why = NULL;
        envelope_t *e;
        envelope_decode(sb.data, sb.size, &e, &why);
        cr_expect(why && strstr(why, required[i]), "reason \"%s\" does not name %s", why,
                  required[i]);
        msgpack_sbuffer_destroy(&sb);
    }
}

Test(envelope, not_a_map)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\x90", 1},     /* [] */
        {"\x01", 1},     /* 1 */
        {"\xc0", 1},     /* nil */
        {"\xa2to", 3},   /* "to" */
        {"\xc4\x00", 2}, /* bin(0) */
        {"\xc1", 1},     /* the unused type byte */
        {"\x80", 1},     /* {} : a map, but without id/to/ty */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i].bytes, cases[i].len, cases[i].bytes);
    expect_refused("", 0, "empty");
    envelope_t *e;
    cr_expect_eq(envelope_decode(NULL, 0, &e, NULL), FENTA_EDECODE);
    cr_expect_eq(envelope_decode(NULL, 5, &e, NULL), FENTA_EINVAL);
    cr_expect_eq(envelope_decode("\x80", 1, NULL, NULL), FENTA_EINVAL);
}

/* Lengths and counts that promise far more than the buffer holds: refused
 * before anything is sized by them (msgpack_unpack would try to allocate
 * tens of GiB here). */
Test(envelope, huge_lengths, .timeout = 10)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\xdf\x7f\xff\xff\xff", 5},           /* map32 of 2^31-1 */
        {"\xdf\xff\xff\xff\xff\xa2id", 8},     /* map32 of 2^32-1 */
        {"\xde\xff\xff\xa2id", 6},             /* map16 */
        {"\x81\xa2to\xdb\xff\xff\xff\xff", 9}, /* "to": str32 of 4 GiB */
        {"\x81\xa2"
         "bd\xc6\xff\xff\xff\xff",
         9}, /* "bd": bin32 of 4 GiB */
        {"\x81\xa2"
         "er\xdd\xff\xff\xff\xff",
         9},                                                /* "er": array32 of 2^32-1 */
        {"\x81\xa2xx\xdd\xff\xff\xff\xff", 9},              /* unknown key, huge array */
        {"\x81\xa2xx\xc9\xff\xff\xff\xff\x01", 10},         /* unknown key, ext32 */
        {"\x81\xa2xx\x91\x91\x91\xdf\xff\xff\xff\xff", 12}, /* nested */
        {"\x81\xdb\xff\xff\xff\xff", 6},                    /* key of 4 GiB */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[32];
        snprintf(what, sizeof what, "case %zu", i);
        expect_refused(cases[i].bytes, cases[i].len, what);
        char to[64];
        cr_expect_eq(envelope_peek_to(cases[i].bytes, cases[i].len, to, sizeof to), FENTA_EDECODE,
                     "%s", what);
    }
}

Test(envelope, duplicate_and_non_string_keys)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, NKEYS + 1);
    for (size_t i = 0; i < NKEYS; i++) {
        pack_cstr(&pk, keys[i]);
        pack_good(&pk, keys[i]);
    }
    pack_cstr(&pk, "to");
    pack_cstr(&pk, "elsewhere/2");
    expect_refused(sb.data, sb.size, "two \"to\"");
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    msgpack_pack_map(&pk, NKEYS + 1);
    for (size_t i = 0; i < NKEYS; i++) {
        pack_cstr(&pk, keys[i]);
        pack_good(&pk, keys[i]);
    }
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    expect_refused(sb.data, sb.size, "an int key");
    msgpack_sbuffer_destroy(&sb);
}

/* A newer sender's keys, of every msgpack type and deeply nested, are
 * skipped; nesting is skipped without recursion. */
Test(envelope, unknown_keys_are_skipped)
{
    enum { DEPTH = 100000 };
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, NKEYS + 4);
    pack_cstr(&pk, "zz");
    msgpack_pack_map(&pk, 3);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_float(&pk, 2.5f);
    msgpack_pack_ext_with_body(&pk, "abc", 3, 5);
    msgpack_pack_nil(&pk);
    msgpack_pack_false(&pk);
    msgpack_pack_int64(&pk, INT64_MIN);
    for (size_t i = 0; i < NKEYS; i++) {
        pack_cstr(&pk, keys[i]);
        pack_good(&pk, keys[i]);
    }
    pack_cstr(&pk, "deep");
    for (int i = 0; i < DEPTH; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 0);
    pack_cstr(&pk, "a-much-longer-key-than-ours");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    pack_cstr(&pk, "");
    msgpack_pack_ext_with_body(&pk, "0123456789abcdef", 16, -1);

    envelope_t *e = NULL;
    const char *why = NULL;
    cr_expect_eq(envelope_decode(sb.data, sb.size, &e, &why), 0, "%s", why);
    if (e)
        cr_expect_str_eq(e->to, "job/1");
    envelope_destroy(&e);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- peek_to ----------------------------------------------------------------------- */

Test(envelope, peek_to)
{
    envelope_t *e = sample();
    uint8_t *buf;
    size_t len;
    cr_assert_eq(envelope_encode(e, &buf, &len), 0);
    char to[ENVELOPE_ADDR_MAX + 1];
    cr_assert_eq(envelope_peek_to(buf, len, to, sizeof to), 0);
    cr_expect_str_eq(to, "job/01HZX3");

    char small[4];
    cr_expect_eq(envelope_peek_to(buf, len, small, sizeof small), FENTA_ETOOBIG);
    char exact[sizeof "job/01HZX3"];
    cr_expect_eq(envelope_peek_to(buf, len, exact, sizeof exact), 0);
    cr_expect_eq(envelope_peek_to(buf, len, NULL, 10), FENTA_EINVAL);

    /* Every truncation either still holds all of "to" or is refused. */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        int rc = envelope_peek_to(part, cut, to, sizeof to);
        cr_expect(rc == 0 || rc == FENTA_EDECODE, "cut %zu: rc %d", cut, rc);
        if (rc == 0)
            cr_expect_str_eq(to, "job/01HZX3", "cut %zu", cut);
        free(part);
    }
    free(buf);
    envelope_destroy(&e);

    /* "to" written last, behind values peek has to skip. */
    msgpack_sbuffer sb = build("to", NULL, NULL);
    sb.data[0]++; /* one more entry in the fixmap */
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_cstr(&pk, "to");
    pack_cstr(&pk, "last/1");
    cr_expect_eq(envelope_peek_to(sb.data, sb.size, to, sizeof to), 0);
    cr_expect_str_eq(to, "last/1");
    msgpack_sbuffer_destroy(&sb);

    sb = build("to", NULL, NULL);
    cr_expect_eq(envelope_peek_to(sb.data, sb.size, to, sizeof to), FENTA_EDECODE, "no \"to\"");
    msgpack_sbuffer_destroy(&sb);

    sb = build(NULL, "to", p_int5);
    cr_expect_eq(envelope_peek_to(sb.data, sb.size, to, sizeof to), FENTA_EDECODE, "int \"to\"");
    msgpack_sbuffer_destroy(&sb);

    sb = build(NULL, "to", p_str_256);
    cr_expect_eq(envelope_peek_to(sb.data, sb.size, to, sizeof to), FENTA_EDECODE, "long \"to\"");
    msgpack_sbuffer_destroy(&sb);

    cr_expect_eq(envelope_peek_to("\x90", 1, to, sizeof to), FENTA_EDECODE);
    cr_expect_eq(envelope_peek_to("", 0, to, sizeof to), FENTA_EDECODE);
}
