/* test_asr_align.c - asr_align on hand-made recogniser output: what a
 * caption author would check is that every script word gets the time it was
 * said, whatever the recogniser got wrong (extra words, missing words,
 * misheard words, numbers said in words, nothing heard at all), and that the
 * times can always go straight into captions (ordered, no overlap, inside
 * the audio). */
#include "actors/speech/asr_align.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Heard words from "text:start:end text:start:end ..."; times in ms. */
static asr_word_t *heard_of(const char *spec, size_t *n)
{
    asr_word_t *w = calloc(64, sizeof *w);
    char *copy = strdup(spec), *save = NULL;
    *n = 0;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char text[64];
        long long a, b;
        cr_assert_eq(sscanf(t, "%63[^:]:%lld:%lld", text, &a, &b), 3, "bad spec %s", t);
        w[*n] = (asr_word_t){.text = strdup(text), .start_ms = a, .end_ms = b};
        (*n)++;
    }
    free(copy);
    return w;
}

/* Aligns script (space-separated words as shown) to heard; asserts success
 * and that the result is usable as caption times. */
static void align(const char *script, const char *heard, int64_t audio_ms, int64_t *st, int64_t *en,
                  size_t *nout)
{
    const char *words[64];
    char *copy = strdup(script), *save = NULL;
    size_t n = 0;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
        words[n++] = t;
    size_t nh;
    asr_word_t *h = heard_of(heard, &nh);
    char err[256];
    int rc = asr_align(words, n, h, nh, audio_ms, st, en, err, sizeof err);
    cr_assert_eq(rc, 0, "%d %s", rc, err);
    for (size_t i = 0; i < n; i++) {
        cr_expect(st[i] >= 0 && en[i] > st[i] && en[i] <= audio_ms, "word %zu [%lld, %lld)", i,
                  (long long)st[i], (long long)en[i]);
        cr_expect(i == 0 || st[i] >= en[i - 1], "word %zu starts at %lld before %lld", i,
                  (long long)st[i], (long long)en[i - 1]);
    }
    asr_words_free(&h, nh);
    free(copy);
    *nout = n;
}

#define EXPECT_AT(i, s, e)                                                                         \
    cr_expect(st[i] == (s) && en[i] == (e), "word %d at [%lld, %lld), want [%d, %d)", (int)(i),    \
              (long long)st[i], (long long)en[i], (int)(s), (int)(e))

Test(asr_align, exact_words_take_the_heard_times)
{
    int64_t st[8], en[8];
    size_t n;
    align("Hello, World! Don’t PANIC.",
          "hello:100:400 world:450:900 don't:1000:1200 panic:1200:1700", 2000, st, en, &n);
    EXPECT_AT(0, 100, 400);
    EXPECT_AT(1, 450, 900);
    EXPECT_AT(2, 1000, 1200);
    EXPECT_AT(3, 1200, 1700);
}

Test(asr_align, inserted_words_are_skipped)
{
    int64_t st[8], en[8];
    size_t n;
    align("the cat sat", "um:0:200 the:300:400 uh:400:600 cat:600:900 sat:900:1200 well:1300:1500",
          2000, st, en, &n);
    EXPECT_AT(0, 300, 400);
    EXPECT_AT(1, 600, 900);
    EXPECT_AT(2, 900, 1200);
}

/* "big" was not heard: it shares the gap between its neighbours. */
Test(asr_align, deleted_word_fills_the_gap)
{
    int64_t st[8], en[8];
    size_t n;
    align("the big cat sat", "the:100:300 cat:700:1000 sat:1000:1300", 2000, st, en, &n);
    EXPECT_AT(0, 100, 300);
    EXPECT_AT(1, 300, 700);
    EXPECT_AT(2, 700, 1000);
}

/* Misheard words keep the time of the word heard in their place, paired by
 * spelling: "please call me" heard as "least calmly" (one word short). */
Test(asr_align, misheard_words_take_the_time_of_what_was_heard)
{
    int64_t st[8], en[8];
    size_t n;
    align("dog. Please call me tomorrow",
          "dog:100:400 least:1300:1660 calmly:1660:2180 tomorrow:2180:2690", 3000, st, en, &n);
    EXPECT_AT(0, 100, 400);
    cr_expect_eq(st[1], 1300, "Please starts at %lld", (long long)st[1]);
    cr_expect(en[2] > 1660 && en[3] <= 2180, "call ends %lld, me %lld", (long long)en[2],
              (long long)en[3]);
    EXPECT_AT(4, 2180, 2690);
}

/* The recogniser heard "vegetables" as "mandate the bills": the next
 * sentence's "The" belongs after the pause, at "that", not at that "the". */
Test(asr_align, sentence_start_goes_after_the_pause)
{
    int64_t st[8], en[8];
    size_t n;
    align("fresh vegetables. The weather",
          "fresh:0:300 mandate:300:700 the:700:800 bills:800:1100 that:1500:1700 "
          "weather:1700:2100",
          2500, st, en, &n);
    EXPECT_AT(2, 1500, 1700);
    EXPECT_AT(3, 1700, 2100);
    cr_expect(st[1] == 300 && en[1] <= 1500, "vegetables at [%lld, %lld)", (long long)st[1],
              (long long)en[1]);
}

Test(asr_align, all_misheard_one_to_one)
{
    int64_t st[8], en[8];
    size_t n;
    align("red green blue", "bread:100:300 queen:400:700 glue:800:1000", 1200, st, en, &n);
    EXPECT_AT(0, 100, 300);
    EXPECT_AT(1, 400, 700);
    EXPECT_AT(2, 800, 1000);
}

/* Nothing in common and fewer heard words: the script still covers the
 * speech that was heard, in order. */
Test(asr_align, all_unmatched_spans_the_heard_speech)
{
    int64_t st[8], en[8];
    size_t n;
    align("alpha beta gamma delta", "xylophone:500:900 qu:1000:1400", 3000, st, en, &n);
    cr_expect_eq(st[0], 500);
    cr_expect_eq(en[3], 1400);
}

/* No words heard: the script is spread over the whole audio in proportion
 * to the words' lengths (1 : 3 : 4 letters over 800 ms). */
Test(asr_align, nothing_heard_spreads_in_proportion)
{
    int64_t st[8], en[8];
    size_t n;
    align("a bcd efgh", "", 800, st, en, &n);
    EXPECT_AT(0, 0, 100);
    EXPECT_AT(1, 100, 400);
    EXPECT_AT(2, 400, 800);
}

Test(asr_align, numbers_match_their_spoken_words)
{
    int64_t st[16], en[16];
    size_t n;
    align("3 cats, 21st place in 1999 for $5 and 2,000 at 3.5% off",
          "three:0:100 cats:100:200 twenty:200:300 first:300:400 place:400:500 in:500:600 "
          "nineteen:600:700 ninety:700:800 nine:800:900 for:900:1000 five:1000:1100 "
          "dollars:1100:1200 and:1200:1300 two:1300:1400 thousand:1400:1500 at:1500:1600 "
          "three:1600:1700 point:1700:1800 five:1800:1900 percent:1900:2000 off:2000:2100",
          3000, st, en, &n);
    EXPECT_AT(0, 0, 100);      /* 3 */
    EXPECT_AT(2, 200, 400);    /* 21st: both words */
    EXPECT_AT(5, 600, 900);    /* 1999 as a year */
    EXPECT_AT(7, 1000, 1200);  /* $5 */
    EXPECT_AT(9, 1300, 1500);  /* 2,000 */
    EXPECT_AT(11, 1600, 2000); /* 3.5% */
    EXPECT_AT(12, 2000, 2100);
}

Test(asr_align, hyphens_accents_and_other_scripts)
{
    int64_t st[8], en[8];
    size_t n;
    align("a well-known café — 東京", "a:0:100 well:100:300 known:300:600 cafe:600:900", 1500, st,
          en, &n);
    EXPECT_AT(1, 100, 600);
    EXPECT_AT(2, 600, 900);
    cr_expect(st[3] >= 900 && en[4] <= 1500);
}

/* Heard times that overlap, run backwards or past the end still give
 * ordered captions of at least 1 ms each. */
Test(asr_align, bad_heard_times_still_give_ordered_output)
{
    int64_t st[8], en[8];
    size_t n;
    align("one two three four", "one:500:900 two:300:400 three:900:900 four:990:5000", 1000, st, en,
          &n);
    cr_expect_eq(en[3], 1000);
    align("x y z", "x:0:0 y:0:0 z:0:0", 3, st, en, &n);
    EXPECT_AT(0, 0, 1);
    EXPECT_AT(1, 1, 2);
    EXPECT_AT(2, 2, 3);
}

/* The first word was not heard: it sits between the start and the next word. */
Test(asr_align, unheard_first_word)
{
    int64_t st[8], en[8];
    size_t n;
    align("So the cat", "the:1000:1200 cat:1200:1500", 2000, st, en, &n);
    cr_expect(st[0] >= 0 && en[0] <= 1000);
    EXPECT_AT(1, 1000, 1200);
}

/* A recording's worth of words (two hours at conversational pace, past the
 * band that needs narrowing) with a misheard word every 50: every other word
 * is found at its heard time. */
Test(asr_align, long_script_is_aligned)
{
    enum { N = 20000 };
    const char **script = malloc(N * sizeof *script);
    asr_word_t *heard = malloc(N * sizeof *heard);
    int64_t *st = malloc(N * sizeof *st), *en = malloc(N * sizeof *en);
    static const char *const vocab[] = {"the", "a", "river", "stone", "light", "we", "went", "to"};
    for (int i = 0; i < N; i++) {
        script[i] = vocab[(i * 7 + i / 3) % 8];
        heard[i] = (asr_word_t){.text = (char *)(i % 50 == 49 ? "mumble" : script[i]),
                                .start_ms = i * 300,
                                .end_ms = i * 300 + 250};
    }
    char err[128];
    cr_assert_eq(asr_align(script, N, heard, N, (int64_t)N * 300, st, en, err, sizeof err), 0, "%s",
                 err);
    int off = 0;
    for (int i = 0; i < N; i++)
        off += st[i] != i * 300 || en[i] != i * 300 + 250;
    cr_expect_eq(off, 0, "%d words off their heard times", off);
    free(script);
    free(heard);
    free(st);
    free(en);
}

Test(asr_align, refuses_bad_input)
{
    const char *words[] = {"a", "b", "c"};
    const char *with_null[] = {"a", NULL};
    int64_t st[3], en[3];
    char err[128];
    cr_expect_eq(asr_align(words, 3, NULL, 0, 2, st, en, err, sizeof err), FENTA_EINVAL);
    cr_expect_not_null(strstr(err, "3 script words cannot fit in 2 ms"), "%s", err);
    cr_expect_eq(asr_align(with_null, 2, NULL, 0, 100, st, en, err, sizeof err), FENTA_EINVAL);
    cr_expect_not_null(strstr(err, "script word 1"), "%s", err);
    cr_expect_eq(asr_align(words, 3, NULL, 2, 100, st, en, err, sizeof err), FENTA_EINVAL);
    cr_expect_eq(asr_align(NULL, 0, NULL, 0, 0, NULL, NULL, NULL, 0), 0, "no words: nothing to do");
}
