/* test_script_text.c - a script turns into the exact text the voice reads and
 * the captions show: markdown, URLs and emoji gone, numbers and symbols
 * spoken, other scripts untouched; bad scripts are refused with a reason. */
#include "actors/text/script_text.h"
#include "runtime/error.h"
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void check(const char *in, const char *speech, const char *captions)
{
    script_text_t t;
    char err[128] = "";
    int rc = script_text_normalise(in, strlen(in), &t, err, sizeof err);
    cr_assert_eq(rc, 0, "'%s': rc %d (%s)", in, rc, err);
    cr_expect_str_eq(t.speech, speech, "speech of '%s'", in);
    cr_expect_str_eq(t.captions, captions, "captions of '%s'", in);
    script_text_free(&t);
    cr_assert_null(t.speech);
}

static void refused(const char *in, size_t len, const char *msg)
{
    script_text_t t;
    char err[128] = "";
    cr_assert_eq(script_text_normalise(in, len, &t, err, sizeof err), FENTA_EINVAL);
    cr_expect_str_eq(err, msg);
    cr_expect_null(t.speech);
    cr_expect_null(t.captions);
}

Test(script_text, plain_text_and_whitespace)
{
    check("  Hello,   world!\n\tHow are you?  ", "Hello, world! How are you?",
          "Hello, world! How are you?");
    check("Line one\r\nLine two\rLine three", "Line one Line two Line three",
          "Line one Line two Line three");
}

Test(script_text, words_count_caption_tokens)
{
    script_text_t t;
    cr_assert_eq(script_text_normalise("I have **42** cats & 2 dogs.", 28, &t, NULL, 0), 0);
    cr_expect_str_eq(t.captions, "I have 42 cats & 2 dogs.");
    cr_expect_eq(t.words, 7);
    script_text_free(&t);
}

Test(script_text, headings_emphasis_code)
{
    check("# Title\n## Sub title ##\nSome **bold**, *italic*, __strong__ and _em_ text.",
          "Title Sub title Some bold, italic, strong and em text.",
          "Title Sub title Some bold, italic, strong and em text.");
    check("Use `make test` now, ~~not~~ later.", "Use make test now, not later.",
          "Use make test now, not later.");
    check("keep snake_case words", "keep snake_case words", "keep snake_case words");
    check("\\*not emphasis\\*", "*not emphasis*", "*not emphasis*");
}

Test(script_text, code_fences_keep_their_text)
{
    check("Run this:\n```sh\necho *hi*\n```\nDone.", "Run this: echo *hi* Done.",
          "Run this: echo *hi* Done.");
}

Test(script_text, links_images_html)
{
    check("See [the docs](https://example.com/docs) and ![a cat](cat.png).",
          "See the docs and a cat.", "See the docs and a cat.");
    check("<p>Hello <b>there</b></p><br>friend", "Hello there friend", "Hello there friend");
    check("a < b", "a < b", "a < b");
}

Test(script_text, lists_quotes_rules)
{
    check("- first\n* second\n+ third\n1. one\n2) two\n- [ ] todo\n- [x] done",
          "first second third one two todo done", "first second third one two todo done");
    check("> quoted\n> > deeper\n\n---\n***\nafter", "quoted deeper after", "quoted deeper after");
    check("Title\n=====\nbody", "Title body", "Title body");
}

Test(script_text, urls_are_removed)
{
    check("Visit https://fenta.example/a?b=1.", "Visit.", "Visit.");
    check("Go to www.example.com now", "Go to now", "Go to now");
    check("Docs (http://x.io/y) here", "Docs here", "Docs here");
    check("HTTPS://LOUD.EXAMPLE ok", "ok", "ok");
}

Test(script_text, emoji_are_removed)
{
    check("Hi 👋!", "Hi!", "Hi!");
    check("Love it ❤️ so much 🔥🔥", "Love it so much", "Love it so much");
    /* ZWJ family, skin tone, flag, keycap. */
    check("Family 👨‍👩‍👧 wave 👋🏽 flag 🇫🇷 key 1️⃣.",
          "Family wave flag key one.", "Family wave flag key 1.");
    check("pizza🍕time", "pizza time", "pizza time");
}

Test(script_text, integers)
{
    check("42", "forty-two", "42");
    check("0 7 13 100 101 999",
          "zero seven thirteen one hundred one hundred one nine hundred ninety-nine",
          "0 7 13 100 101 999");
    check("1,200 people", "one thousand two hundred people", "1,200 people");
    check("999,999,999",
          "nine hundred ninety-nine million nine hundred ninety-nine thousand nine "
          "hundred ninety-nine",
          "999,999,999");
    check("1000000", "one million", "1000000");
    check("12345678901", "one two three four five six seven eight nine zero one", "12345678901");
    check("007", "zero zero seven", "007");
    check("-5 degrees", "minus five degrees", "-5 degrees");
    check("It costs 42.", "It costs forty-two.", "It costs 42.");
    check("5G and 3D", "five G and three D", "5G and 3D");
    check("v2 mp4", "v2 mp4", "v2 mp4");
}

Test(script_text, decimals_percent_currency)
{
    check("3.5", "three point five", "3.5");
    check("3.14159", "three point one four one five nine", "3.14159");
    check("50% off", "fifty percent off", "50% off");
    check("12.5%", "twelve point five percent", "12.5%");
    check("$5", "five dollars", "$5");
    check("$1", "one dollar", "$1");
    check("€3", "three euros", "€3");
    check("£2", "two pounds", "£2");
    check("$3.50", "three dollars and fifty cents", "$3.50");
    check("$0.99", "ninety-nine cents", "$0.99");
    check("$1,000,000", "one million dollars", "$1,000,000");
    check("$2000", "two thousand dollars", "$2000");
}

Test(script_text, ordinals)
{
    check("1st 2nd 3rd 4th 5th 8th 9th 12th",
          "first second third fourth fifth eighth ninth twelfth",
          "1st 2nd 3rd 4th 5th 8th 9th 12th");
    check("21st 40th 100th 101st", "twenty-first fortieth one hundredth one hundred first",
          "21st 40th 100th 101st");
}

Test(script_text, years)
{
    check("In 2026 we ship.", "In twenty twenty-six we ship.", "In 2026 we ship.");
    check("1984 1905 1900 2000 2007 2010 1100 2099",
          "nineteen eighty-four nineteen oh five nineteen hundred two thousand two thousand seven "
          "twenty ten eleven hundred twenty ninety-nine",
          "1984 1905 1900 2000 2007 2010 1100 2099");
    check("1099 2100", "one thousand ninety-nine two thousand one hundred", "1099 2100");
}

Test(script_text, symbols_and_hashtags)
{
    check("Q&A: 2 + 2 = 4", "Q and A: two plus two equals four", "Q&A: 2 + 2 = 4");
    check("Ping @fenta about #shorts", "Ping at fenta about hashtag shorts",
          "Ping @fenta about #shorts");
    check("We are #1", "We are number one", "We are #1");
    check("C# is fine", "C# is fine", "C# is fine");
    check("6 * 7", "six times seven", "6 * 7");
}

Test(script_text, non_latin_passes_through)
{
    check("你好，世界。", "你好，世界。", "你好，世界。");
    check("Привет, мир!", "Привет, мир!", "Привет, мир!");
    check("مرحبا بالعالم", "مرحبا بالعالم", "مرحبا بالعالم");
    check("नमस्ते दुनिया", "नमस्ते दुनिया", "नमस्ते दुनिया");
    check("第3章", "第3章", "第3章");
    check("**Привет** 👋 [мир](https://x.ru)", "Привет мир", "Привет мир");
}

Test(script_text, invalid_utf8)
{
    refused("ok \xC3(", 5, "script is not valid UTF-8 at byte 3");
    refused("\xC0\xAF", 2, "script is not valid UTF-8 at byte 0");         /* overlong */
    refused("ab\xED\xA0\x80", 5, "script is not valid UTF-8 at byte 2");   /* surrogate */
    refused("abc\xE4\xBD", 5, "script is not valid UTF-8 at byte 3");      /* cut short */
    refused("\xF4\x90\x80\x80", 4, "script is not valid UTF-8 at byte 0"); /* > U+10FFFF */
}

Test(script_text, empty_and_markup_only)
{
    refused("", 0, "script is empty");
    refused(" \n\t  \r\n", 7, "script is empty");
    refused("# \n---\n**  **\n```\n```\n", 21, "script is empty");
    refused("https://example.com 🔥🔥 ![](x.png)", strlen("https://example.com 🔥🔥 ![](x.png)"),
            "script is empty");
    refused("...", 3, "script is empty");
}

Test(script_text, errbuf_may_be_absent)
{
    script_text_t t;
    cr_expect_eq(script_text_normalise("", 0, &t, NULL, 0), FENTA_EINVAL);
    script_text_free(NULL);
    script_text_free(&t);
}

Test(script_text, long_script_is_fast)
{
    static const char para[] = "## Part\nThe **quick** fox paid $3.50 for 1,200 apples in 2026 "
                               "👋 — see [docs](https://x.io). Привет! 50% & more.\n\n";
    size_t plen = sizeof para - 1, n = 100 * 1024 / plen + 1;
    char *in = malloc(n * plen + 1);
    cr_assert_not_null(in);
    for (size_t i = 0; i < n; i++)
        memcpy(in + i * plen, para, plen);
    script_text_t t;
    /* CPU time, not wall time: the bound is on the work (linear, not
     * quadratic), and a loaded machine must not fail it by preempting us. */
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    cr_assert_eq(script_text_normalise(in, n * plen, &t, NULL, 0), 0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    cr_expect_lt(ms, 200.0, "100 KB took %.1f ms", ms);
    cr_expect_eq(t.words, n * 18);
    cr_expect_not_null(strstr(t.speech, "Part The quick fox paid three dollars and fifty cents for "
                                        "one thousand two hundred apples in twenty twenty-six — "
                                        "see docs. Привет! fifty percent and more. Part"));
    script_text_free(&t);
    free(in);
}

Test(script_text, pathological_brackets_stay_linear)
{
    size_t n = 100 * 1024;
    char *in = malloc(n);
    cr_assert_not_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = i % 2 ? '<' : '[';
    in[0] = 'x';
    script_text_t t;
    struct timespec a, b; /* CPU time, as above */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    cr_assert_eq(script_text_normalise(in, n, &t, NULL, 0), 0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    cr_expect_lt(ms, 500.0, "took %.1f ms", ms);
    script_text_free(&t);
    free(in);
}
