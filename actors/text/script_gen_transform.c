/* script_gen_transform.c - the script transforms behind the
 * "script.transform" node: trim, uppercase and hook_first (the rules are in
 * script_gen.h). Part of the script_gen module: it shares the word and
 * UTF-8 helpers of script_gen.c through script_gen_internal.h. */
#include "actors/text/script_gen.h"
#include "actors/text/script_gen_internal.h"
#include "actors/text/script_text.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"
#include "runtime/vec.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void utf8_put(strbuf_t *b, uint32_t c)
{
    char e[4];
    size_t k;
    if (c < 0x80) {
        e[0] = (char)c, k = 1;
    } else if (c < 0x800) {
        e[0] = (char)(0xC0 | (c >> 6)), e[1] = (char)(0x80 | (c & 0x3F)), k = 2;
    } else if (c < 0x10000) {
        e[0] = (char)(0xE0 | (c >> 12)), e[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        e[2] = (char)(0x80 | (c & 0x3F)), k = 3;
    } else {
        e[0] = (char)(0xF0 | (c >> 18)), e[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        e[2] = (char)(0x80 | ((c >> 6) & 0x3F)), e[3] = (char)(0x80 | (c & 0x3F)), k = 4;
    }
    strbuf_append_len(b, e, k);
}

typedef struct sent {
    size_t start, end; /* byte span in the text, without surrounding whitespace */
    size_t words;      /* whitespace-separated tokens */
    char term;         /* '?' if its ending has one, else '!' if it has one, else '.'; 0 for a
                          trailing fragment without ending punctuation */
} sent_t;

/* Length of a closing quote or bracket at s (n bytes left), else 0. */
static size_t closer_len(const char *s, size_t n)
{
    if (s[0] && strchr("\"')]", s[0]))
        return 1;
    if (n >= 3 && memcmp(s, "\xE2\x80\x9D", 3) == 0) /* right double quote */
        return 3;
    if (n >= 3 && memcmp(s, "\xE2\x80\x99", 3) == 0) /* right single quote */
        return 3;
    if (n >= 2 && memcmp(s, "\xC2\xBB", 2) == 0) /* right guillemet */
        return 2;
    return 0;
}

/* Length of sentence-ending punctuation at s (. ! ? or an ellipsis), else 0. */
static size_t ender_len(const char *s, size_t n)
{
    if (s[0] == '.' || s[0] == '!' || s[0] == '?')
        return 1;
    if (n >= 3 && memcmp(s, "\xE2\x80\xA6", 3) == 0)
        return 3;
    return 0;
}

/* Splits text into sentences (see the header); returns how many, with *out
 * malloc'd (NULL when there are none), or SIZE_MAX when out of memory. */
static size_t split_sentences(const char *s, size_t n, sent_t **out)
{
    sent_t *v = NULL;
    size_t count = 0, cap = 0, i = 0;
    *out = NULL;
    for (;;) {
        while (i < n && script_gen__is_space(s[i]))
            i++;
        if (i >= n)
            break;
        sent_t cur = {i, n, 0, 0};
        while (i < n) {
            size_t k = ender_len(s + i, n - i);
            if (!k) {
                i++;
                continue;
            }
            bool q = false, ex = false;
            while (i < n && (k = ender_len(s + i, n - i))) {
                q |= s[i] == '?', ex |= s[i] == '!';
                i += k;
            }
            while (i < n && (k = closer_len(s + i, n - i)))
                i += k;
            if (i >= n || script_gen__is_space(s[i])) {
                cur.end = i;
                cur.term = q ? '?' : ex ? '!' : '.';
                break;
            }
        }
        while (cur.end > cur.start && script_gen__is_space(s[cur.end - 1]))
            cur.end--;
        cur.words = script_gen__count_words(s + cur.start, cur.end - cur.start);
        if (vec_reserve(v, cap, count + 1) != 0) {
            free(v);
            return SIZE_MAX;
        }
        v[count++] = cur;
    }
    *out = v;
    return count;
}

static void trim(strbuf_t *b, const char *s, const sent_t *v, size_t ns, size_t max)
{
    size_t keep = 0, words = 0;
    while (keep < ns && words + v[keep].words <= max)
        words += v[keep++].words;
    if (keep) {
        strbuf_append_len(b, s + v[0].start, v[keep - 1].end - v[0].start);
        return;
    }
    /* The first sentence alone is too long: its first max words, closed. */
    size_t i = v[0].start, w = 0, end = i;
    while (i < v[0].end && w < max) {
        while (script_gen__is_space(s[i]))
            i++;
        while (i < v[0].end && !script_gen__is_space(s[i]))
            i++;
        end = i, w++;
    }
    size_t cut = end;
    for (;;) {
        if (cut > v[0].start && strchr(",;:-", s[cut - 1]))
            cut--;
        else if (cut >= v[0].start + 3 && (memcmp(s + cut - 3, "\xE2\x80\x93", 3) == 0 ||
                                           memcmp(s + cut - 3, "\xE2\x80\x94", 3) == 0))
            cut -= 3; /* en or em dash */
        else if (cut > v[0].start && script_gen__is_space(s[cut - 1]))
            cut--;
        else
            break;
    }
    if (cut == v[0].start)
        cut = end; /* nothing but punctuation: keep it rather than say nothing */
    strbuf_append_len(b, s + v[0].start, cut - v[0].start);
    if (!strchr(".!?", s[cut - 1]))
        strbuf_append_len(b, ".", 1);
}

/* The sentence hook_first moves to the front, or 0 for none (see the header). */
static size_t hook_pick(const sent_t *v, size_t ns)
{
    if (ns < 2 || v[0].term == '?' || v[0].term == '!')
        return 0;
    for (size_t k = 1; k < ns; k++)
        if (v[k].term == '?')
            return k;
    for (size_t k = 1; k < ns; k++)
        if (v[k].term == '!')
            return k;
    if (v[0].words <= SCRIPT_GEN_PUNCHY_WORDS)
        return 0;
    size_t best = 0;
    for (size_t k = 1; k < ns; k++)
        if (v[k].words <= SCRIPT_GEN_PUNCHY_WORDS && (!best || v[k].words < v[best].words))
            best = k;
    return best;
}

static void hook_first(strbuf_t *b, const char *s, const sent_t *v, size_t ns)
{
    size_t pick = hook_pick(v, ns);
    if (!pick) {
        strbuf_append(b, s);
        return;
    }
    strbuf_append_len(b, s + v[pick].start, v[pick].end - v[pick].start);
    if (!v[pick].term)
        strbuf_append_len(b, ".", 1);
    for (size_t k = 0; k < ns; k++) {
        if (k == pick)
            continue;
        strbuf_append_len(b, " ", 1);
        strbuf_append_len(b, s + v[k].start, v[k].end - v[k].start);
    }
}

/* The upper case of c, or c; *two gets the second letter of a one-to-two
 * mapping (sharp s to "SS"), else 0. Ranges of alternating upper/lower pairs
 * are written as such; the irregular ones are listed. */
static uint32_t upper_cp(uint32_t c, uint32_t *two)
{
    static const uint32_t pairs[][2] = {
        {0x0FF, 0x178}, {0x131, 'I'},   {0x17F, 'S'},   {0x180, 0x243}, {0x183, 0x182},
        {0x185, 0x184}, {0x188, 0x187}, {0x18C, 0x18B}, {0x192, 0x191}, {0x195, 0x1F6},
        {0x199, 0x198}, {0x19A, 0x23D}, {0x19E, 0x220}, {0x1A1, 0x1A0}, {0x1A3, 0x1A2},
        {0x1A5, 0x1A4}, {0x1A8, 0x1A7}, {0x1AD, 0x1AC}, {0x1B0, 0x1AF}, {0x1B4, 0x1B3},
        {0x1B6, 0x1B5}, {0x1B9, 0x1B8}, {0x1BD, 0x1BC}, {0x1BF, 0x1F7}, {0x1C5, 0x1C4},
        {0x1C6, 0x1C4}, {0x1C8, 0x1C7}, {0x1C9, 0x1C7}, {0x1CB, 0x1CA}, {0x1CC, 0x1CA},
        {0x1DD, 0x18E}, {0x1F2, 0x1F1}, {0x1F3, 0x1F1}, {0x1F5, 0x1F4}, {0x23C, 0x23B},
        {0x242, 0x241}, {0x3AC, 0x386}, {0x3C2, 0x3A3}, {0x3CC, 0x38C}, {0x4CF, 0x4C0},
    };
    /* [first, last] of ranges of pairs where the lower case is the odd (or
     * even) code point and the upper case the one before it. */
    static const uint32_t odd_lower[][2] = {
        {0x100, 0x12F}, {0x132, 0x137}, {0x14A, 0x177},   {0x1DE, 0x1EF},
        {0x1F8, 0x21F}, {0x222, 0x233}, {0x246, 0x24F},   {0x460, 0x481},
        {0x48A, 0x4BF}, {0x4D0, 0x52F}, {0x1E00, 0x1E95}, {0x1EA0, 0x1EFF},
    };
    static const uint32_t even_lower[][2] = {
        {0x139, 0x148}, {0x179, 0x17E}, {0x1CD, 0x1DC}, {0x4C1, 0x4CE}};
    /* [first, last, distance to the upper case] of blocks that shift. */
    static const uint32_t shifted[][3] = {
        {'a', 'z', 0x20},     {0xE0, 0xF6, 0x20},   {0xF8, 0xFE, 0x20},     {0x3AD, 0x3AF, 0x25},
        {0x3B1, 0x3C1, 0x20}, {0x3C3, 0x3CB, 0x20}, {0x3CD, 0x3CE, 0x3F},   {0x430, 0x44F, 0x20},
        {0x450, 0x45F, 0x50}, {0x561, 0x586, 0x30}, {0xFF41, 0xFF5A, 0x20},
    };
    *two = 0;
    if (c == 0xDF) {
        *two = 'S';
        return 'S';
    }
    for (size_t i = 0; i < sizeof shifted / sizeof *shifted; i++)
        if (c >= shifted[i][0] && c <= shifted[i][1])
            return c - shifted[i][2];
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        if (c == pairs[i][0])
            return pairs[i][1];
    for (size_t i = 0; i < sizeof odd_lower / sizeof *odd_lower; i++)
        if (c >= odd_lower[i][0] && c <= odd_lower[i][1])
            return (c & 1) ? c - 1 : c;
    for (size_t i = 0; i < sizeof even_lower / sizeof *even_lower; i++)
        if (c >= even_lower[i][0] && c <= even_lower[i][1])
            return (c & 1) ? c : c - 1;
    return c;
}

static void uppercase(strbuf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t c, two;
        size_t k = script_text_utf8_decode((const unsigned char *)s + i, n - i, &c);
        uint32_t u = upper_cp(c, &two);
        if (u == c)
            strbuf_append_len(b, s + i, k); /* untouched bytes stay exactly as they were */
        else
            utf8_put(b, u);
        if (two)
            utf8_put(b, two);
        i += k;
    }
}

int script_gen_transform(const char *text, const char *op, int max_words, char **out, char *errbuf,
                         size_t errlen)
{
    if (!out)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "out is NULL");
    *out = NULL;
    if (!op)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "op is missing");
    bool is_trim = strcmp(op, "trim") == 0, is_upper = strcmp(op, "uppercase") == 0;
    if (!is_trim && !is_upper && strcmp(op, "hook_first") != 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "op '%.40s' is not one of trim, uppercase, hook_first", op);
    if (!text)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "text is missing");
    size_t n = strlen(text);
    int rc = script_gen__utf8_check("text", text, n, errbuf, errlen);
    if (rc)
        return rc;
    if (script_gen__count_words(text, n) == 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "text is empty");
    if (is_trim && max_words < 1)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "max_words must be at least 1, got %d",
                          max_words);

    strbuf_t b = STRBUF_INIT;
    if (is_upper) {
        uppercase(&b, text, n);
    } else {
        sent_t *v;
        size_t ns = split_sentences(text, n, &v);
        if (ns == SIZE_MAX)
            return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        if (is_trim)
            trim(&b, text, v, ns, (size_t)max_words);
        else
            hook_first(&b, text, v, ns);
        free(v);
    }
    *out = strbuf_take(&b, NULL);
    if (!*out)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    return 0;
}
