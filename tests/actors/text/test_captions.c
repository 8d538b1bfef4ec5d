/* test_captions.c - words are grouped into the caption lines a viewer would
 * expect (word and code-point limits, sentence ends, minimum display time),
 * the SRT is exactly what a player reads, and bad word lists are refused
 * with the index of the offending word. */
#include "actors/text/captions.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Words 400 ms long, 100 ms apart: word i runs [500 i, 500 i + 400). */
static captions_word_t *evenly(const char *const *texts, size_t n)
{
    captions_word_t *w = calloc(n, sizeof *w);
    cr_assert_not_null(w);
    for (size_t i = 0; i < n; i++)
        w[i] = (captions_word_t){texts[i], (int64_t)i * 500, (int64_t)i * 500 + 400};
    return w;
}

/* Lines of the words as "a b|c d|..." for one readable assertion. */
static char *shape(const captions_line_t *l, size_t nl, const captions_word_t *w)
{
    static char buf[1024];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nl; i++)
        for (size_t j = 0; j < l[i].count; j++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s",
                                    j > 0 ? " " : (i > 0 ? "|" : ""), w[l[i].first + j].text);
    return buf;
}

static void group(const char *const *texts, size_t n, const captions_opts_t *o,
                  const char *expected)
{
    captions_word_t *w = evenly(texts, n);
    captions_line_t *l = NULL;
    size_t nl = 0;
    char err[128] = "";
    cr_assert_eq(captions_lines(w, n, o, &l, &nl, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(shape(l, nl, w), expected);
    size_t next = 0; /* every word in exactly one line, in order */
    for (size_t i = 0; i < nl; i++) {
        cr_expect_eq(l[i].first, next);
        cr_expect_geq(l[i].count, 1);
        cr_expect_eq(l[i].start_ms, w[l[i].first].start_ms);
        next += l[i].count;
    }
    cr_expect_eq(next, n);
    captions_lines_free(&l, nl);
    cr_expect_null(l);
    free(w);
}

Test(captions, max_words_default_four)
{
    const char *t[] = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
    group(t, 9, NULL, "one two three four|five six seven eight|nine");
    captions_opts_t o = captions_opts_default();
    o.max_words = 2;
    group(t, 9, &o, "one two|three four|five six|seven eight|nine");
}

Test(captions, max_chars_counts_spaces)
{
    /* "alpha beta" is 10, "alpha beta gamma" 16. */
    const char *t[] = {"alpha", "beta", "gamma", "delta"};
    captions_opts_t o = captions_opts_default();
    o.max_chars = 10;
    group(t, 4, &o, "alpha beta|gamma|delta");
    o.max_chars = 16;
    group(t, 4, &o, "alpha beta gamma|delta");
    o.max_chars = 15;
    group(t, 4, &o, "alpha beta|gamma delta");
}

Test(captions, max_chars_counts_code_points_not_bytes)
{
    /* "привет мир" is 10 code points but 19 bytes. */
    const char *cy[] = {"привет", "мир", "снова"};
    captions_opts_t o = captions_opts_default();
    o.max_chars = 10;
    group(cy, 3, &o, "привет мир|снова");
    /* Three-byte CJK: "你好 世界" is 5 code points, 13 bytes. */
    const char *cjk[] = {"你好", "世界", "朋友"};
    o.max_chars = 5;
    group(cjk, 3, &o, "你好 世界|朋友");
    o.max_chars = 4;
    group(cjk, 3, &o, "你好|世界|朋友");
}

Test(captions, overlong_word_gets_its_own_line)
{
    const char *t[] = {"a", "supercalifragilistic", "b", "c"};
    captions_opts_t o = captions_opts_default();
    o.max_chars = 8;
    group(t, 4, &o, "a|supercalifragilistic|b c");
    const char *first[] = {"internationalisation", "x"};
    group(first, 2, &o, "internationalisation|x");
}

Test(captions, never_across_a_sentence_end)
{
    const char *t[] = {"Hi.", "How",     "are",    "you?", "Great!", "Wait…",    "so...",
                       "he",  "said.\"", "Fine.”", "Ok",   "了。",   "「好。」", "end"};
    group(t, 14, NULL,
          "Hi.|How are you?|Great!|Wait…|so...|he said.\"|Fine.”|Ok 了。|「好。」|end");
    /* Commas and inner dots do not end a sentence. */
    const char *u[] = {"well,", "e.g", "this", "one"};
    group(u, 4, NULL, "well, e.g this one");
}

Test(captions, min_display_time_extends_then_clamps_at_next_line)
{
    captions_word_t w[] = {
        {"Short.", 0, 200},      /* extended to 600 (next starts at 1000) */
        {"Close.", 1000, 1100},  /* would be 1600, clamped to next start 1300 */
        {"Long", 1300, 1800},    /* already 500 + following word: 1300..2000 */
        {"enough.", 1900, 2000}, /* line ends at 2000 > 1300 + 600, unchanged */
        {"Last.", 5000, 5100},   /* the last line extends freely to 5600 */
    };
    captions_line_t *l = NULL;
    size_t nl = 0;
    char err[128] = "";
    cr_assert_eq(captions_lines(w, 5, NULL, &l, &nl, err, sizeof err), 0, "%s", err);
    cr_assert_eq(nl, 4);
    cr_expect_eq(l[0].start_ms, 0);
    cr_expect_eq(l[0].end_ms, 600);
    cr_expect_eq(l[1].start_ms, 1000);
    cr_expect_eq(l[1].end_ms, 1300);
    cr_expect_eq(l[2].start_ms, 1300);
    cr_expect_eq(l[2].end_ms, 2000);
    cr_expect_eq(l[2].first, 2);
    cr_expect_eq(l[2].count, 2);
    cr_expect_eq(l[3].start_ms, 5000);
    cr_expect_eq(l[3].end_ms, 5600);
    captions_lines_free(&l, nl);

    /* min_display_ms 0 leaves word timings untouched. */
    captions_opts_t o = captions_opts_default();
    o.min_display_ms = 0;
    cr_assert_eq(captions_lines(w, 5, &o, &l, &nl, err, sizeof err), 0, "%s", err);
    cr_expect_eq(l[0].end_ms, 200);
    cr_expect_eq(l[1].end_ms, 1100);
    captions_lines_free(&l, nl);
}

Test(captions, srt_exact_format_and_uppercase)
{
    captions_word_t w[] = {
        {"Hello", 0, 400},
        {"wörld.", 500, 999},
        {"Час", 3599999, 3600500},
        {"één", 3600500, 3601001},
        {"naïve", 36000000 + 61001, 36000000 + 62345},
    };
    captions_line_t *l = NULL;
    size_t nl = 0;
    char err[128] = "";
    captions_opts_t o = captions_opts_default();
    cr_assert_eq(captions_lines(w, 5, &o, &l, &nl, err, sizeof err), 0, "%s", err);
    char *srt = captions_srt(l, nl, w);
    cr_assert_not_null(srt);
    cr_expect_str_eq(srt, "1\n00:00:00,000 --> 00:00:00,999\nHello wörld.\n\n"
                          "2\n00:59:59,999 --> 10:01:02,345\nЧас één naïve\n\n");
    free(srt);
    captions_lines_free(&l, nl);

    o.uppercase = true;
    o.max_words = 1;
    cr_assert_eq(captions_lines(w, 5, &o, &l, &nl, err, sizeof err), 0, "%s", err);
    srt = captions_srt(l, nl, w);
    cr_assert_not_null(srt);
    /* ASCII letters only: ö, Ч, é, ï keep their bytes, so the UTF-8 stays valid. */
    cr_expect_str_eq(srt, "1\n00:00:00,000 --> 00:00:00,500\nHELLO\n\n"
                          "2\n00:00:00,500 --> 00:00:01,100\nWöRLD.\n\n"
                          "3\n00:59:59,999 --> 01:00:00,500\nЧас\n\n"
                          "4\n01:00:00,500 --> 01:00:01,100\nééN\n\n"
                          "5\n10:01:01,001 --> 10:01:02,345\nNAïVE\n\n");
    free(srt);
    captions_lines_free(&l, nl);
}

Test(captions, srt_hours_past_99_and_empty)
{
    captions_word_t w[] = {{"x", 360000000 + 1, 360000000 + 1000}};
    captions_line_t *l = NULL;
    size_t nl = 0;
    cr_assert_eq(captions_lines(w, 1, NULL, &l, &nl, NULL, 0), 0);
    char *srt = captions_srt(l, nl, w);
    cr_expect_str_eq(srt, "1\n100:00:00,001 --> 100:00:01,000\nx\n\n");
    free(srt);
    captions_lines_free(&l, nl);
    srt = captions_srt(NULL, 0, NULL);
    cr_expect_str_eq(srt, "");
    free(srt);
}

/* The issue checks each cue within 50 ms of its word; here it is exact, for
 * every line, with irregular timings. */
Test(captions, cue_start_is_first_word_start_exactly)
{
    enum { N = 200 };
    static char texts[N][16];
    captions_word_t w[N];
    int64_t t = 37;
    for (size_t i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], i % 7 == 6 ? "w%zu." : "w%zu", i);
        int64_t len = 80 + (int64_t)(i * 37 % 311);
        w[i] = (captions_word_t){texts[i], t, t + len};
        t += len + (int64_t)(i * 13 % 97);
    }
    captions_line_t *l = NULL;
    size_t nl = 0;
    char err[128] = "";
    cr_assert_eq(captions_lines(w, N, NULL, &l, &nl, err, sizeof err), 0, "%s", err);
    char *srt = captions_srt(l, nl, w);
    cr_assert_not_null(srt);
    const char *p = srt;
    for (size_t i = 0; i < nl; i++) {
        int64_t s = w[l[i].first].start_ms;
        char want[64];
        snprintf(want, sizeof want, "%zu\n%02d:%02d:%02d,%03d --> ", i + 1, (int)(s / 3600000),
                 (int)(s / 60000 % 60), (int)(s / 1000 % 60), (int)(s % 1000));
        p = strstr(p, want);
        cr_assert_not_null(p, "cue %zu should start at %lld ms", i + 1, (long long)s);
        cr_expect_eq(l[i].start_ms, s);
        cr_expect_geq(l[i].end_ms, w[l[i].first + l[i].count - 1].end_ms);
        if (i + 1 < nl)
            cr_expect_leq(l[i].end_ms, l[i + 1].start_ms);
    }
    free(srt);
    captions_lines_free(&l, nl);
}

static void rejects(const captions_word_t *w, size_t n, const captions_opts_t *o,
                    const char *needle)
{
    captions_line_t *l = (captions_line_t *)1; /* must be reset to NULL */
    size_t nl = 99;
    char err[160] = "";
    cr_expect_eq(captions_lines(w, n, o, &l, &nl, err, sizeof err), FENTA_EINVAL);
    cr_expect_null(l);
    cr_expect_eq(nl, 0);
    cr_expect_not_null(strstr(err, needle), "error '%s' should contain '%s'", err, needle);
}

Test(captions, bad_input_rejected_with_the_word_index)
{
    captions_word_t ok = {"ok", 0, 100};
    rejects(&ok, 0, NULL, "no words");
    rejects(NULL, 3, NULL, "no words");

    captions_word_t order[] = {ok, {"b", 200, 300}, {"c", 250, 400}};
    rejects(order, 3, NULL, "word 2: starts");
    captions_word_t overlap[] = {ok, {"b", 50, 300}};
    rejects(overlap, 2, NULL, "word 1: starts");
    captions_word_t backwards[] = {ok, {"b", 300, 200}};
    rejects(backwards, 2, NULL, "word 1: ends");
    captions_word_t negative[] = {{"a", -5, 100}};
    rejects(negative, 1, NULL, "word 0: negative");
    captions_word_t empty[] = {ok, {"b", 100, 200}, {"", 300, 400}};
    rejects(empty, 3, NULL, "word 2: empty");
    captions_word_t null_text[] = {ok, {NULL, 300, 400}};
    rejects(null_text, 2, NULL, "word 1: empty");
    captions_word_t newline[] = {ok, {"two\n\nlines", 300, 400}};
    rejects(newline, 2, NULL, "word 1: text");
    captions_word_t bad_utf8[] = {{"ab\xc3", 0, 10}};
    rejects(bad_utf8, 1, NULL, "word 0: text");
    captions_word_t overlong[] = {{"\xc0\xaf", 0, 10}};
    rejects(overlong, 1, NULL, "word 0: text");

    captions_opts_t o = captions_opts_default();
    o.max_words = 0;
    rejects(&ok, 1, &o, "options");
    o = captions_opts_default();
    o.min_display_ms = -1;
    rejects(&ok, 1, &o, "options");
}

Test(captions, free_accepts_null)
{
    captions_lines_free(NULL, 0);
    captions_line_t *l = NULL;
    captions_lines_free(&l, 0);
    cr_expect_null(l);
}
