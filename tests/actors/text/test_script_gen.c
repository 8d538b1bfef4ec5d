/* test_script_gen.c - the offline script generator writes a script a
 * producer would accept: sized to the video, same text for the same inputs,
 * opening on a hook that names the topic and closing on a call to action,
 * plain sentences; and the transforms trim, upper-case and reorder scripts
 * as the script.transform node promises. Bad input is refused with a reason. */
#include "actors/text/script_gen.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "tests/support/fixtures.h"
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const genres[] = {"hook", "facts", "story", "listicle"};
#define NGENRES (sizeof genres / sizeof *genres)

/* What the generator wrote before its tables moved to schemas/ (output_is_pinned). */
#define PIN_HOOK                                                                                   \
    "This one idea about black holes changes everything. At first glance, nothing "                \
    "about black holes seems complicated, and that is exactly the trap. Attention "                \
    "beats intensity, every single time. Once you see black holes this way, there "                \
    "is no going back. Share this with a friend who loves black holes."
#define PIN_FACTS                                                                                  \
    "Here are some facts about black holes that most people never learn. First, "                  \
    "experts still debate parts of black holes, which shows how deep the subject "                 \
    "goes. Here is where it gets interesting. Second, there is usually a simple "                  \
    "reason behind the strangest parts of black holes. Follow for more."
#define PIN_STORY                                                                                  \
    "Nobody expected black holes to matter that much, until it did. Picture a "                    \
    "student, a quiet evening and a to-do list that would not end. Then came the "                 \
    "moment nobody was ready for. Then it clicked. Save this story for the next "                  \
    "time you deal with black holes."
#define PIN_LISTICLE                                                                               \
    "This is the only list about black holes you need today. Here are two things "                 \
    "about black holes worth knowing. Number one: Take breaks, because fresh eyes "                \
    "catch what tired ones miss. Number two: Start with the basics of black holes "                \
    "before anything fancy. Follow for more lists like this."
#define PIN_SWEEP "fbd14f6fa2fcb559459003b6518eb8f142d55cb0cf2db1409db127949c479c9e"

/* What a viewer hears as a call to action; no body sentence may say these. */
static const char *const cta_words[] = {"follow", "subscribe", "save", "share", "comment"};

static char *gen(const char *topic, const char *genre, double duration_s)
{
    char *out = (char *)1, err[256] = "";
    int rc = script_gen_generate(topic, genre, duration_s, &out, err, sizeof err);
    cr_assert_eq(rc, 0, "'%s' %s %g s: rc %d (%s)", topic, genre, duration_s, rc, err);
    cr_assert_not_null(out);
    return out;
}

static size_t words(const char *s)
{
    size_t n = 0;
    bool in = false;
    for (; *s; s++) {
        if (isspace((unsigned char)*s))
            in = false;
        else if (!in)
            in = true, n++;
    }
    return n;
}

static void expect_in_budget(const char *text, double duration_s, const char *what)
{
    double budget = duration_s * 2.5;
    size_t n = words(text);
    cr_expect(n >= budget * 0.85 - 1e-9 && n <= budget * 1.15 + 1e-9,
              "%s, %g s: %zu words, want %.2f..%.2f: %s", what, duration_s, n, budget * 0.85,
              budget * 1.15, text);
}

/* Sentences of a generated script: each ends at . ! or ? before a space or
 * the end (the generator writes no abbreviations). Returns how many. */
static size_t sentences(const char *text, char out[][512], size_t max)
{
    size_t n = 0;
    const char *start = text;
    for (const char *s = text; *s && n < max; s++) {
        if (strchr(".!?", *s) && (s[1] == ' ' || s[1] == '\0')) {
            size_t len = (size_t)(s + 1 - start);
            cr_assert_lt(len, 512);
            memcpy(out[n], start, len);
            out[n++][len] = '\0';
            start = s[1] ? s + 2 : s + 1;
        }
    }
    cr_expect_eq(*start, '\0', "text after the last sentence: '%s'", start);
    return n;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static bool has_cta(const char *sentence)
{
    char low[512];
    snprintf(low, sizeof low, "%s", sentence);
    lower(low);
    for (size_t i = 0; i < sizeof cta_words / sizeof *cta_words; i++)
        if (strstr(low, cta_words[i]))
            return true;
    return false;
}

Test(script_gen, same_inputs_give_the_same_text)
{
    const double durations[] = {5, 30, 180};
    for (size_t g = 0; g < NGENRES; g++) {
        for (size_t d = 0; d < 3; d++) {
            char *a = gen("black holes", genres[g], durations[d]);
            char *b = gen("black holes", genres[g], durations[d]);
            cr_expect_str_eq(a, b, "%s %g s", genres[g], durations[d]);
            free(a);
            free(b);
        }
    }
    /* No hidden state between calls: an unrelated call in between changes nothing. */
    char *a = gen("coffee", "story", 45);
    free(gen("tea", "facts", 90));
    char *b = gen("coffee", "story", 45);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
}

/* The phrasing lives in schemas/script_phrasing.json: reading it from there
 * must say exactly what the tables compiled into the code said. Four scripts
 * are pinned word for word, and a digest covers a sweep of topics, genres and
 * durations (every pool, the bridges and the shortened topics), both taken
 * from the generator before its tables moved. */
Test(script_gen, output_is_pinned)
{
    static const struct {
        const char *genre, *want;
    } pinned[] = {
        {"hook", PIN_HOOK},
        {"facts", PIN_FACTS},
        {"story", PIN_STORY},
        {"listicle", PIN_LISTICLE},
    };
    for (size_t i = 0; i < sizeof pinned / sizeof *pinned; i++) {
        char *s = gen("black holes", pinned[i].genre, 20);
        cr_expect_str_eq(s, pinned[i].want, "%s", pinned[i].genre);
        free(s);
    }
    static const char *const topics[] = {"black holes", "Why cats purr?",
                                         "the long and winding history of the humble paperclip in "
                                         "offices around the world and what it tells us"};
    static const double durations[] = {5, 7.5, 13, 30, 61, 120, 180};
    uint8_t digest[CRYPTO_SHA256_LEN] = {0};
    for (size_t t = 0; t < sizeof topics / sizeof *topics; t++)
        for (size_t g = 0; g < NGENRES; g++)
            for (size_t d = 0; d < sizeof durations / sizeof *durations; d++) {
                char *s = gen(topics[t], genres[g], durations[d]);
                uint8_t next[CRYPTO_SHA256_LEN];
                cr_assert_eq(crypto_sha256_2(digest, sizeof digest, s, strlen(s), next), 0);
                memcpy(digest, next, sizeof digest);
                free(s);
            }
    char hex[2 * CRYPTO_SHA256_LEN + 1];
    crypto_hex(digest, sizeof digest, hex);
    cr_expect_str_eq(hex, PIN_SWEEP);
}

Test(script_gen, word_count_is_within_budget)
{
    const double durations[] = {5, 30, 60, 180};
    const char *const topics[] = {"black holes", "coffee", "the history of the Roman empire",
                                  "東京の夜", "sleep"};
    for (size_t g = 0; g < NGENRES; g++)
        for (size_t t = 0; t < sizeof topics / sizeof *topics; t++)
            for (size_t d = 0; d < 4; d++) {
                char *s = gen(topics[t], genres[g], durations[d]);
                char what[128];
                snprintf(what, sizeof what, "%s '%s'", genres[g], topics[t]);
                expect_in_budget(s, durations[d], what);
                free(s);
            }
}

Test(script_gen, every_duration_from_5_to_180_fits)
{
    /* A 20-word topic: every sentence naming it is long, the budget still holds. */
    const char *const topics[] = {"coffee",
                                  "how to save money as a student living in a big expensive "
                                  "city without giving up on fun weekends with friends"};
    for (size_t g = 0; g < NGENRES; g++)
        for (size_t t = 0; t < 2; t++)
            for (double d = 5; d <= 180; d += (d < 20 ? 0.5 : 1)) {
                char *s = gen(topics[t], genres[g], d);
                expect_in_budget(s, d, genres[g]);
                free(s);
            }
}

Test(script_gen, topic_appears)
{
    const char *const topics[] = {"black holes", "café crème", "東京の夜", "the Roman empire"};
    for (size_t g = 0; g < NGENRES; g++)
        for (size_t t = 0; t < 4; t++) {
            char *s = gen(topics[t], genres[g], 5);
            cr_expect(strstr(s, topics[t]), "%s: '%s' missing from: %s", genres[g], topics[t], s);
            free(s);
        }
}

Test(script_gen, hook_first_and_call_to_action_last)
{
    const double durations[] = {5, 12, 30, 60, 180};
    static char sent[256][512];
    for (size_t g = 0; g < NGENRES; g++)
        for (size_t d = 0; d < 5; d++) {
            char *s = gen("black holes", genres[g], durations[d]);
            size_t n = sentences(s, sent, 256);
            cr_assert_geq(n, 2, "%s: %s", genres[g], s);
            /* The hook names the topic and is not a body sentence. */
            cr_expect(strstr(sent[0], "black holes"), "hook '%s'", sent[0]);
            cr_expect(strncmp(sent[0], "First", 5) && strncmp(sent[0], "Number", 6), "hook '%s'",
                      sent[0]);
            cr_expect(has_cta(sent[n - 1]), "%s %g s: last sentence '%s' is no call to action",
                      genres[g], durations[d], sent[n - 1]);
            for (size_t i = 0; i + 1 < n; i++)
                cr_expect(!has_cta(sent[i]), "%s: body sentence '%s' sounds like a CTA", genres[g],
                          sent[i]);
            free(s);
        }
}

Test(script_gen, genres_have_their_shape)
{
    /* facts: numbered claims, in order, the last one "Finally". */
    char *s = gen("volcanoes", "facts", 60);
    const char *first = strstr(s, "First, "), *second = strstr(s, "Second, ");
    const char *finally = strstr(s, "Finally, ");
    cr_expect(first && second && finally && first < second && second < finally, "%s", s);
    free(s);

    /* listicle: items numbered one, two, ... and the count announced matches. */
    static const char *const nums[] = {"one",   "two",   "three", "four", "five",   "six",
                                       "seven", "eight", "nine",  "ten",  "eleven", "twelve"};
    s = gen("volcanoes", "listicle", 60);
    size_t items = 0;
    const char *prev = s;
    char item[64];
    for (; items < 12; items++) {
        snprintf(item, sizeof item, "Number %s: ", nums[items]);
        const char *at = strstr(s, item);
        if (!at)
            break;
        cr_expect_gt(at, prev, "items out of order: %s", s);
        prev = at;
    }
    cr_expect_geq(items, 3, "%s", s);
    snprintf(item, sizeof item, "Number %s: ", items < 12 ? nums[items] : "thirteen");
    cr_expect_null(strstr(s, item), "a skipped number: %s", s);
    snprintf(item, sizeof item, " %s ", nums[items - 1]);
    const char *count = strstr(s, item);
    cr_expect(count && count < strstr(s, "Number one: "), "count '%s' not announced: %s",
              nums[items - 1], s);
    free(s);

    /* story: an arc, not just a hook and a call to action. */
    s = gen("volcanoes", "story", 30);
    static char sent[64][512];
    cr_expect_geq(sentences(s, sent, 64), 5, "%s", s);
    free(s);
}

Test(script_gen, short_videos_still_get_a_body)
{
    /* From 15 s on, even with a long topic, there is room for the genre's
     * first point: the hook and call to action shrink to make it. */
    const char *const topics[] = {"tea", "why the sky is blue at noon",
                                  "how to save money as a student living in a big city"};
    for (size_t t = 0; t < 3; t++)
        for (double d = 15; d <= 180; d += 0.25) {
            char *s = gen(topics[t], "facts", d);
            cr_expect(strstr(s, "First, "), "'%s' %g s: %s", topics[t], d, s);
            free(s);
            s = gen(topics[t], "listicle", d);
            cr_expect(strstr(s, "Number one: "), "'%s' %g s: %s", topics[t], d, s);
            free(s);
        }
}

Test(script_gen, bridges_are_a_last_resort)
{
    /* The generator's two- and three-word bridges guarantee the budget, but
     * a script stitched with them sounds padded: with realistic topics the
     * choice of sentences, hook and call to action must land in range alone. */
    static const char *const bridges[] = {"Think about that.", "It adds up.",     "That matters.",
                                          "Remember that.",    "Simple as that.", "Worth knowing.",
                                          "Big difference.",   "Just like that.", "Notice that.",
                                          "Not bad."};
    const char *const topics[] = {"tea", "black holes", "why the sky is blue at noon",
                                  "how to save money as a student living in a big city"};
    for (size_t g = 0; g < NGENRES; g++)
        for (size_t t = 0; t < 4; t++)
            for (double d = 5; d <= 180; d += 0.5) {
                char *s = gen(topics[t], genres[g], d);
                for (size_t b = 0; b < sizeof bridges / sizeof *bridges; b++)
                    cr_expect_null(strstr(s, bridges[b]), "%s '%s' %g s: padded with '%s': %s",
                                   genres[g], topics[t], d, bridges[b], s);
                free(s);
            }
}

Test(script_gen, listicle_counts_only_two_or_more_items)
{
    for (double d = 5; d <= 60; d += 0.1) {
        char *s = gen("tea", "listicle", d);
        if (!strstr(s, "Number two: "))
            cr_expect(!strstr(s, " one things") && !strstr(s, " one points") &&
                          !strstr(s, " one of them") && !strstr(s, " one on this list"),
                      "%g s: %s", d, s);
        free(s);
    }
}

Test(script_gen, plain_prose_for_tts_and_captions)
{
    const double durations[] = {5, 17, 30, 60, 120, 180};
    static char sent[256][512];
    for (size_t g = 0; g < NGENRES; g++)
        for (size_t d = 0; d < 6; d++) {
            char *s = gen("coffee", genres[g], durations[d]);
            cr_expect_null(strpbrk(s, "*#_`{}[]<>|~\n\t\r0123456789"), "%s: markup in %s",
                           genres[g], s);
            cr_expect_null(strstr(s, "  "), "double space in %s", s);
            size_t n = sentences(s, sent, 256);
            for (size_t i = 0; i < n; i++)
                cr_expect(isupper((unsigned char)sent[i][0]), "'%s' starts in lower case", sent[i]);
            free(s);
        }
}

Test(script_gen, no_sentence_is_said_twice)
{
    static char sent[256][512];
    const char *const topics[] = {"coffee", "black holes", "jazz", "the Roman empire"};
    for (size_t g = 0; g < NGENRES; g++)
        for (size_t t = 0; t < 4; t++)
            for (double d = 5; d <= 180; d += 5) {
                char *s = gen(topics[t], genres[g], d);
                size_t n = sentences(s, sent, 256);
                for (size_t i = 0; i < n; i++)
                    for (size_t j = i + 1; j < n; j++)
                        cr_expect_str_neq(sent[i], sent[j], "%s %g s repeats '%s'", genres[g], d,
                                          sent[i]);
                free(s);
            }
}

Test(script_gen, different_topics_give_different_texts)
{
    const char *const topics[] = {"coffee",  "black holes", "sleep",     "the stock market",
                                  "octopus", "jazz",        "volcanoes", "chess"};
    char *texts[8];
    char hooks[8][512];
    size_t distinct = 0;
    for (size_t i = 0; i < 8; i++) {
        texts[i] = gen(topics[i], "hook", 30);
        /* The hook's phrasing with the topic taken out: the seed must vary it. */
        const char *end = strpbrk(texts[i], ".?!");
        const char *at = strstr(texts[i], topics[i]);
        cr_assert(end && at && at < end);
        snprintf(hooks[i], sizeof hooks[i], "%.*s|%.*s", (int)(at - texts[i]), texts[i],
                 (int)(end - at - strlen(topics[i])), at + strlen(topics[i]));
        bool seen = false;
        for (size_t j = 0; j < i; j++) {
            cr_expect_str_neq(texts[i], texts[j]);
            seen |= strcmp(hooks[i], hooks[j]) == 0;
        }
        distinct += !seen;
    }
    cr_expect_geq(distinct, 3, "only %zu hook phrasings over 8 topics", distinct);
    for (size_t i = 0; i < 8; i++)
        free(texts[i]);
    /* The genre changes the text too. */
    char *a = gen("coffee", "facts", 30), *b = gen("coffee", "story", 30);
    cr_expect_str_neq(a, b);
    free(a);
    free(b);
}

Test(script_gen, topic_is_cleaned)
{
    char *clean = gen("black holes", "facts", 30);
    /* Controls (C0, DEL, C1), a bidi override and a BOM vanish; tabs, newlines,
     * NEL and no-break spaces are whitespace, collapsed; trailing "?!" goes. */
    char *dirty = gen("\xEF\xBB\xBF  black\x01\x1b \t\n\xC2\x85holes\x7f\xC2\x9B\xE2\x80\xAE?! ",
                      "facts", 30);
    cr_expect_str_eq(dirty, clean);
    for (const unsigned char *p = (const unsigned char *)dirty; *p; p++)
        cr_expect(*p >= 0x20 && *p != 0x7F, "control byte 0x%02x in %s", *p, dirty);
    free(dirty);
    free(clean);
    /* A title-cased question reads naturally mid-sentence; names keep their case. */
    char *s = gen("Why cats purr?", "facts", 30);
    cr_expect(strstr(s, "why cats purr") && !strstr(s, "purr?"), "%s", s);
    free(s);
    s = gen("cats purr\xE2\x80\xA6 ", "facts", 30);
    cr_expect(strstr(s, "cats purr") && !strstr(s, "\xE2\x80\xA6"), "%s", s);
    free(s);
    s = gen("Rome", "facts", 30);
    cr_expect(strstr(s, "Rome"), "%s", s);
    free(s);
}

Test(script_gen, long_topic_in_short_video_is_shortened)
{
    const char *topic = "the long and complicated history of the bicycle in northern European "
                        "cities from the eighteen hundreds until today and what comes next";
    static char sent[256][512];
    for (size_t g = 0; g < NGENRES; g++) {
        char *s = gen(topic, genres[g], 5);
        expect_in_budget(s, 5, genres[g]);
        cr_expect(strstr(s, "the long and"), "%s", s);
        free(s);
        /* With room for it, the hook says the whole topic, and the rest
         * names it by its first words rather than repeating all twenty. */
        s = gen(topic, genres[g], 60);
        size_t n = sentences(s, sent, 256);
        cr_expect(strstr(sent[0], topic), "%s", s);
        for (size_t i = 1; i < n; i++)
            cr_expect(!strstr(sent[i], "complicated history of the bicycle"), "'%s'", sent[i]);
        cr_expect(strstr(s + strlen(sent[0]), "the long and complicated history"), "%s", s);
        free(s);
    }
}

Test(script_gen, default_genre_is_facts)
{
    char *a = gen("coffee", NULL, 30), *b = gen("coffee", "facts", 30);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
}

static void gen_refused(const char *topic, const char *genre, double duration_s, const char *msg)
{
    char *out = (char *)1, err[256] = "";
    cr_expect_eq(script_gen_generate(topic, genre, duration_s, &out, err, sizeof err),
                 FENTA_EINVAL);
    cr_expect_null(out);
    cr_expect_str_eq(err, msg);
}

Test(script_gen, bad_generate_input_is_refused)
{
    gen_refused(NULL, "facts", 30, "topic is missing");
    gen_refused("", "facts", 30, "topic is empty");
    gen_refused(" \t\x01\x7f ", "facts", 30, "topic is empty");
    gen_refused("?!", "facts", 30, "topic is empty");
    gen_refused("caf\xC3", "facts", 30, "topic is not valid UTF-8 at byte 3");
    gen_refused("coffee", "poem", 30, "genre 'poem' is not one of hook, facts, story, listicle");
    gen_refused("coffee", "", 30, "genre '' is not one of hook, facts, story, listicle");
    gen_refused("coffee", "facts", 4.9, "duration_s must be between 5 and 180 seconds, got 4.9");
    gen_refused("coffee", "facts", 181, "duration_s must be between 5 and 180 seconds, got 181");
    gen_refused("coffee", "facts", NAN, "duration_s must be between 5 and 180 seconds, got nan");
    char long_topic[1200];
    memset(long_topic, 'a', 501);
    long_topic[501] = '\0';
    gen_refused(long_topic, "facts", 30, "topic is longer than 500 characters");
    /* 500 characters of two bytes each is within the limit. */
    for (size_t i = 0; i < 500; i++)
        memcpy(long_topic + 2 * i, "\xC3\xA9", 2);
    long_topic[1000] = '\0';
    free(gen(long_topic, "facts", 30));
    /* errbuf may be left out. */
    char *out;
    cr_expect_eq(script_gen_generate("", "facts", 30, &out, NULL, 0), FENTA_EINVAL);
}

/* ---- transforms ------------------------------------------------------------ */

static char *xform(const char *text, const char *op, int max_words)
{
    char *out = (char *)1, err[256] = "";
    int rc = script_gen_transform(text, op, max_words, &out, err, sizeof err);
    cr_assert_eq(rc, 0, "%s '%s': rc %d (%s)", op, text, rc, err);
    cr_assert_not_null(out);
    return out;
}

static void expect_xform(const char *text, const char *op, int max_words, const char *want)
{
    char *got = xform(text, op, max_words);
    cr_expect_str_eq(got, want, "%s(%d) of '%s'", op, max_words, text);
    free(got);
}

/* 3 + 4 + 2 + 4 words. */
#define FOUR "One two three. Four five six seven! Eight nine? Ten eleven twelve thirteen."

Test(script_gen, trim_keeps_whole_sentences)
{
    expect_xform(FOUR, "trim", 3, "One two three.");
    expect_xform(FOUR, "trim", 6, "One two three.");
    expect_xform(FOUR, "trim", 7, "One two three. Four five six seven!");
    expect_xform(FOUR, "trim", 9, "One two three. Four five six seven! Eight nine?");
    expect_xform(FOUR, "trim", 12, "One two three. Four five six seven! Eight nine?");
    expect_xform(FOUR, "trim", 13, FOUR);
    expect_xform("  " FOUR "\n", "trim", 150, FOUR);
    /* A decimal, a file name and a quote do not end a sentence early. */
    expect_xform("Version 3.5 of Node.js is out. \"Really?\" she asked. Yes.", "trim", 6,
                 "Version 3.5 of Node.js is out.");
    expect_xform("Version 3.5 of Node.js is out. \"Really?\" she asked. Yes.", "trim", 9,
                 "Version 3.5 of Node.js is out. \"Really?\" she asked.");
    for (int max = 1; max <= 20; max++) {
        char *s = xform(FOUR, "trim", max);
        cr_expect_leq(words(s), (size_t)max, "trim(%d) gave %zu words: %s", max, words(s), s);
        if (max >= 3)
            cr_expect(strncmp(FOUR, s, strlen(s)) == 0, "trim(%d) is not whole sentences: %s", max,
                      s);
        cr_expect(strchr(".!?", s[strlen(s) - 1]), "trim(%d) ends without punctuation: %s", max, s);
        free(s);
    }
}

Test(script_gen, trim_cuts_a_long_first_sentence)
{
    const char *t = "This first sentence is far too long for the limit, really it is. Next one.";
    expect_xform(t, "trim", 5, "This first sentence is far.");
    expect_xform(t, "trim", 10, "This first sentence is far too long for the limit.");
    expect_xform(t, "trim", 1, "This.");
    expect_xform("No ending punctuation at all here", "trim", 3, "No ending punctuation.");
    expect_xform("Wait — what", "trim", 2, "Wait.");
    /* A generated script trimmed to a short video is still whole sentences. */
    char *g = gen("coffee", "facts", 60);
    char *s = xform(g, "trim", 40);
    cr_expect_leq(words(s), 40);
    cr_expect(strncmp(g, s, strlen(s)) == 0 && s[strlen(s) - 1] != ' ', "%s", s);
    free(s);
    free(g);
}

Test(script_gen, uppercase_is_utf8_aware)
{
    expect_xform("café déjà", "uppercase", 0, "CAFÉ DÉJÀ");
    expect_xform("straße", "uppercase", 0, "STRASSE");
    expect_xform("łódź żółć, ğüşiö ÿ", "uppercase", 0, "ŁÓDŹ ŻÓŁĆ, ĞÜŞIÖ Ÿ");
    expect_xform("ǆ ǎ ș", "uppercase", 0, "Ǆ Ǎ Ș");
    expect_xform("tiếng việt", "uppercase", 0, "TIẾNG VIỆT");
    expect_xform("привет, мир! ёж", "uppercase", 0, "ПРИВЕТ, МИР! ЁЖ");
    expect_xform("ελλάδα σοφός", "uppercase", 0, "ΕΛΛΆΔΑ ΣΟΦΌΣ");
    /* Non-letters and scripts without case are copied byte for byte. */
    expect_xform("3½ € 東京 🙂 1+1=2! µs ×÷ «ok»", "uppercase", 0,
                 "3½ € 東京 🙂 1+1=2! µS ×÷ «OK»");
    expect_xform("  Already UPPER.\n", "uppercase", 0, "  ALREADY UPPER.\n");
}

Test(script_gen, hook_first_moves_the_strongest_sentence)
{
    /* A question goes to the front. */
    expect_xform("Cats sleep a lot. They purr when happy. Why do cats purr?", "hook_first", 0,
                 "Why do cats purr? Cats sleep a lot. They purr when happy.");
    /* A question first stays first, and so does an exclamation. */
    expect_xform("Why do cats purr? Cats sleep a lot.", "hook_first", 0,
                 "Why do cats purr? Cats sleep a lot.");
    expect_xform("Stop scrolling! Is this real?", "hook_first", 0, "Stop scrolling! Is this real?");
    /* Without a question, an exclamation. */
    expect_xform("We tried every coffee in town. This one blew us away! Try it.", "hook_first", 0,
                 "This one blew us away! We tried every coffee in town. Try it.");
    /* Otherwise the shortest punchy sentence, but only after a long opener. */
    expect_xform("We tested every brand of coffee in the shop last week so that you do not have "
                 "to. It was bad. Really quite bad honestly.",
                 "hook_first", 0,
                 "It was bad. We tested every brand of coffee in the shop last week so that you "
                 "do not have to. Really quite bad honestly.");
    expect_xform("Cats nap. They sleep sixteen hours a day.", "hook_first", 0,
                 "Cats nap. They sleep sixteen hours a day.");
    /* A moved fragment is closed with a period. */
    expect_xform("We tested every brand of coffee in the shop last week so that you do not have "
                 "to. Never again",
                 "hook_first", 0,
                 "Never again. We tested every brand of coffee in the shop last week so that you "
                 "do not have to.");
    expect_xform("Just one sentence here.", "hook_first", 0, "Just one sentence here.");
    /* A question inside quotes counts. */
    expect_xform("Everyone asked me. \"Is it worth it?\" Here is my answer.", "hook_first", 0,
                 "\"Is it worth it?\" Everyone asked me. Here is my answer.");
}

static void xform_refused(const char *text, const char *op, int max_words, const char *msg)
{
    char *out = (char *)1, err[256] = "";
    cr_expect_eq(script_gen_transform(text, op, max_words, &out, err, sizeof err), FENTA_EINVAL,
                 "%s", msg);
    cr_expect_null(out);
    cr_expect_str_eq(err, msg);
}

Test(script_gen, bad_transform_input_is_refused)
{
    xform_refused("Hello.", "reverse", 10,
                  "op 'reverse' is not one of trim, uppercase, hook_first");
    xform_refused("Hello.", "", 10, "op '' is not one of trim, uppercase, hook_first");
    xform_refused("Hello.", NULL, 10, "op is missing");
    xform_refused(NULL, "trim", 10, "text is missing");
    xform_refused(" \n\t ", "uppercase", 10, "text is empty");
    xform_refused("", "hook_first", 10, "text is empty");
    xform_refused("ok \xC3(", "uppercase", 10, "text is not valid UTF-8 at byte 3");
    xform_refused("Hello.", "trim", 0, "max_words must be at least 1, got 0");
    xform_refused("Hello.", "trim", -5, "max_words must be at least 1, got -5");
    /* max_words is read by trim only. */
    free(xform("Hello.", "uppercase", 0));
    free(xform("Hello.", "hook_first", -1));
}

/* ---- the phrasing file ------------------------------------------------------------ */

/* Writes the shipped phrasing, changed by edit, and its schema into dir. */
static void write_phrasing(const char *dir, void (*edit)(json_t *doc))
{
    char path[4096];
    snprintf(path, sizeof path, "%s/script_phrasing.json", fsutil_schemas_dir(NULL));
    json_t *doc = json_load_file(path, 0, NULL);
    cr_assert_not_null(doc, "%s", path);
    edit(doc);
    snprintf(path, sizeof path, "%s/script_phrasing.json", dir);
    cr_assert_eq(json_dump_file(doc, path, JSON_INDENT(1)), 0);
    json_decref(doc);
    snprintf(path, sizeof path, "%s/script_phrasing.schema.json", fsutil_schemas_dir(NULL));
    json_t *schema = json_load_file(path, 0, NULL);
    snprintf(path, sizeof path, "%s/script_phrasing.schema.json", dir);
    cr_assert_eq(json_dump_file(schema, path, 0), 0);
    json_decref(schema);
}

static json_t *at(json_t *doc, const char *genre, const char *pool)
{
    return json_object_get(json_object_get(json_object_get(doc, "genres"), genre), pool);
}

static void break_rules(json_t *doc)
{
    json_array_set_new(json_object_get(doc, "fillers"), 0, json_string("Far too many words here."));
    json_array_set_new(at(doc, "facts", "claims"), 0, json_string("No ordinal about {T}."));
    json_array_set_new(at(doc, "hook", "hooks"), 0, json_string("{T} starts this one."));
}

static void too_few_numbers(json_t *doc)
{
    json_t *spelt = json_object_get(json_object_get(doc, "numbers"), "spelt");
    while (json_array_size(spelt) > 5)
        json_array_remove(spelt, json_array_size(spelt) - 1);
}

static void new_hook(json_t *doc)
{
    json_t *hooks = at(doc, "facts", "hooks");
    json_array_clear(hooks);
    json_array_append_new(hooks, json_string("Zany opener about {T}."));
}

Test(script_gen, phrasing_is_data_read_once_and_checked)
{
    char err[1024] = "";
    char *dir = fx_tmpdir("phrasing");
    cr_assert_eq(script_gen_load("/nonexistent", err, sizeof err), FENTA_EIO);
    cr_assert(strstr(err, "script_phrasing.schema.json"), "%s", err);

    write_phrasing(dir, break_rules);
    cr_assert_eq(script_gen_load(dir, err, sizeof err), FENTA_EINVAL);
    cr_assert(strstr(err, "$.fillers[0]"), "a bridge is two or three words: %s", err);
    cr_assert(strstr(err, "$.genres.facts.claims[0]"), "a claim takes its ordinal: %s", err);
    cr_assert(strstr(err, "$.genres.hook.hooks[0]"), "no template starts with the topic: %s", err);

    write_phrasing(dir, too_few_numbers);
    cr_assert_eq(script_gen_load(dir, err, sizeof err), FENTA_EINVAL);
    cr_assert(strstr(err, "listicle items"), "%s", err);

    /* what the file says is what the scripts say; the first load stays */
    write_phrasing(dir, new_hook);
    cr_assert_eq(script_gen_load(dir, err, sizeof err), 0, "%s", err);
    cr_assert_eq(script_gen_load(NULL, err, sizeof err), 0);
    char *s = gen("black holes", "facts", 20);
    cr_assert(strncmp(s, "Zany opener about black holes. ", 31) == 0, "%s", s);
    free(s);
    fx_rmdir(dir);
}
