/* ass_script.c - caption lines to an ASS script (styles, timed events,
 * karaoke and highlight tags).
 *
 * Plain string work into one growing buffer; the first allocation failure
 * is remembered and reported once at the end, so the writers need no error
 * paths of their own. No locale: upper-casing is ASCII only, like
 * captions.c. */
#include "actors/text/ass_script.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ASS time format has one hour digit (H:MM:SS.cc); stay inside it. */
#define MAX_MS INT64_C(35999990) /* 9:59:59.99 */
#define MIN_CANVAS 16
#define MAX_CANVAS 16384

/* The pop: up to POP_SCALE % over POP_UP_MS, back to 100 % by POP_DOWN_MS
 * (ms from the word's start): quick enough to read as emphasis, short
 * enough to be over before a fast speaker's next word. */
#define POP_SCALE 120
#define POP_UP_MS 80
#define POP_DOWN_MS 200

/* U+2060 WORD JOINER: invisible, no width, breaks a backslash pair. */
#define WORD_JOINER "\xe2\x81\xa0"

ass_script_opts_t ass_script_opts_default(void)
{
    return (ass_script_opts_t){.width = 1080,
                               .height = 1920,
                               .font = "DejaVu Sans",
                               .font_size = 80,
                               .bold = true,
                               .primary = 0xffffffffu,
                               .highlight = 0xffd700ffu,
                               .outline = 0x000000ffu,
                               .back = 0x00000080u,
                               .outline_px = 6,
                               .shadow_px = 0,
                               .position = ASS_SCRIPT_POS_BOTTOM,
                               .margin_l = 90,
                               .margin_r = 90,
                               .margin_v = 400,
                               .effect = ASS_SCRIPT_FX_NONE,
                               .title = NULL,
                               .title_ms = 0,
                               .title_size = 96};
}

void ass_script_colour(uint32_t rgba, char out[ASS_SCRIPT_COLOUR_LEN])
{
    unsigned r = rgba >> 24 & 0xff, g = rgba >> 16 & 0xff, b = rgba >> 8 & 0xff;
    unsigned alpha = 0xff - (rgba & 0xff); /* ASS alpha is transparency */
    snprintf(out, ASS_SCRIPT_COLOUR_LEN, "&H%02X%02X%02X%02X", alpha, b, g, r);
}

/* ---- validation ------------------------------------------------------------------ */

/* Whether s is well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF): libass would draw garbage or drop the rest of the line. */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        unsigned c = *p;
        size_t len;
        uint32_t cp;
        if (c < 0x80)
            len = 1, cp = c;
        else if ((c & 0xe0) == 0xc0)
            len = 2, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            len = 3, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            len = 4, cp = c & 0x07;
        else
            return false;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += len;
    }
    return true;
}

static int check_opts(const ass_script_opts_t *o, char *errbuf, size_t errlen)
{
    if (o == NULL)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "options: none given");
    if (o->width < MIN_CANVAS || o->width > MAX_CANVAS || o->height < MIN_CANVAS ||
        o->height > MAX_CANVAS)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "options: canvas %dx%d is outside %dx%d..%dx%d", o->width, o->height,
                          MIN_CANVAS, MIN_CANVAS, MAX_CANVAS, MAX_CANVAS);
    if (o->font == NULL || o->font[0] == '\0')
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "options: font is required");
    /* A comma would shift every later field of the Style line. */
    for (const char *p = o->font; *p != '\0'; p++)
        if (*p == ',' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "options: font \"%s\" holds a comma or a control character", o->font);
    if (!utf8_valid(o->font))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "options: font is not valid UTF-8");
    if (o->font_size < 1 || o->font_size > o->height)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "options: font_size %d is outside 1..%d (the height)", o->font_size,
                          o->height);
    if (o->outline_px < 0 || o->outline_px > o->font_size || o->shadow_px < 0 ||
        o->shadow_px > o->font_size)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "options: outline_px and shadow_px must be 0..font_size (%d)",
                          o->font_size);
    if ((int)o->position < ASS_SCRIPT_POS_BOTTOM || (int)o->position > ASS_SCRIPT_POS_TOP)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "options: unknown position %d",
                          (int)o->position);
    if ((int)o->effect < ASS_SCRIPT_FX_NONE || (int)o->effect > ASS_SCRIPT_FX_POP)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "options: unknown effect %d",
                          (int)o->effect);
    if (o->margin_l < 0 || o->margin_r < 0 || o->margin_v < 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "options: margins must be >= 0");
    if ((long)o->margin_l + o->margin_r >= o->width)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "options: margin_l + margin_r (%d) leave no room in width %d",
                          o->margin_l + o->margin_r, o->width);
    if (o->margin_v >= o->height)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "options: margin_v %d leaves no room in height %d", o->margin_v,
                          o->height);
    if (o->title != NULL && o->title[0] != '\0') {
        if (!utf8_valid(o->title))
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "options: title is not valid UTF-8");
        if (o->title_ms <= 0 || o->title_ms > MAX_MS)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "options: title_ms %" PRId64 " is outside 1..%" PRId64, o->title_ms,
                              MAX_MS);
        if (o->title_size < 1 || o->title_size > o->height)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "options: title_size %d is outside 1..%d (the height)", o->title_size,
                              o->height);
    }
    return 0;
}

static int check_lines(const captions_line_t *l, size_t nl, const captions_word_t *w, size_t nw,
                       char *errbuf, size_t errlen)
{
    if (nl > 0 && (l == NULL || w == NULL))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%zu lines but no %s", nl,
                          l == NULL ? "lines" : "words");
    for (size_t i = 0; i < nl; i++) {
        if (l[i].count == 0)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "line %zu: no words", i);
        if (l[i].first >= nw || l[i].count > nw - l[i].first)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "line %zu: words %zu..%zu are past the %zu words", i, l[i].first,
                              l[i].first + l[i].count - 1, nw);
        if (l[i].start_ms < 0 || l[i].end_ms < l[i].start_ms || l[i].end_ms > MAX_MS)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "line %zu: times %" PRId64 "..%" PRId64
                              " ms are not within 0..%" PRId64 " and in order",
                              i, l[i].start_ms, l[i].end_ms, MAX_MS);
        for (size_t j = l[i].first; j < l[i].first + l[i].count; j++)
            if (w[j].text == NULL || !utf8_valid(w[j].text))
                return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                                  "word %zu: text is missing or not valid UTF-8", j);
    }
    return 0;
}

/* ---- text ------------------------------------------------------------------------- */

/* Nearest centisecond; ms is within 0..MAX_MS, so no overflow. */
static int64_t to_cs(int64_t ms)
{
    return (ms + 5) / 10;
}

/* ms clamped into [lo, hi], then rounded: a word time outside its line
 * (which captions.c never produces) cannot move a boundary out of the
 * event. */
static int64_t clamped_cs(int64_t ms, int64_t lo, int64_t hi)
{
    return to_cs(ms < lo ? lo : ms > hi ? hi : ms);
}

static void put_time(strbuf_t *b, int64_t cs)
{
    strbuf_appendf(b, "%d:%02d:%02d.%02d", (int)(cs / 360000), (int)(cs / 6000 % 60),
                   (int)(cs / 100 % 60), (int)(cs % 100));
}

/* Appends s as event text that cannot open a tag (see the header):
 * upper-cases ASCII letters if upper; '\n' becomes a line break (\N) if
 * breaks, else a space like every other control character. The word joiner
 * goes after a backslash followed by N, n or h; the test is on the input
 * byte, so an 'n' that upper-casing turns into 'N' is covered too. */
static void put_text(strbuf_t *b, const char *s, bool upper, bool breaks)
{
    for (; *s != '\0'; s++) {
        char c = *s;
        if (c == '{' || c == '}') {
            char esc[2] = {'\\', c};
            strbuf_append_len(b, esc, 2);
        } else if (c == '\\') {
            strbuf_append_len(b, "\\", 1);
            if (s[1] == 'N' || s[1] == 'n' || s[1] == 'h')
                strbuf_append(b, WORD_JOINER);
        } else if (c == '\n' && breaks) {
            strbuf_append(b, "\\N");
        } else if ((unsigned char)c < 0x20 || c == 0x7f) {
            strbuf_append_len(b, " ", 1);
        } else {
            if (upper && c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            strbuf_append_len(b, &c, 1);
        }
    }
}

/* An override colour: \1c takes &HBBGGRR& and the alpha goes apart in \1a. */
static void put_colour_tags(strbuf_t *b, uint32_t rgba)
{
    char c[ASS_SCRIPT_COLOUR_LEN];
    ass_script_colour(rgba, c);
    /* c is "&HAABBGGRR": alpha at 2..3, colour at 4..9. */
    strbuf_appendf(b, "\\1c&H%.6s&\\1a&H%.2s&", c + 4, c + 2);
}

/* The line's words, the word `mark` (or none if mark >= count) marked for
 * HIGHLIGHT or POP; \r after it returns to the Caption style for the rest. */
static void put_line_text(strbuf_t *b, const captions_line_t *l, const captions_word_t *w,
                          const ass_script_opts_t *o, size_t mark)
{
    for (size_t j = 0; j < l->count; j++) {
        if (j > 0)
            strbuf_append_len(b, " ", 1);
        if (j == mark) {
            strbuf_append(b, "{");
            put_colour_tags(b, o->highlight);
            if (o->effect == ASS_SCRIPT_FX_POP)
                strbuf_appendf(b, "\\t(0,%d,\\fscx%d\\fscy%d)\\t(%d,%d,\\fscx100\\fscy100)",
                               POP_UP_MS, POP_SCALE, POP_SCALE, POP_UP_MS, POP_DOWN_MS);
            strbuf_append(b, "}");
        }
        put_text(b, w[l->first + j].text, l->uppercase, false);
        if (j == mark && j + 1 < l->count)
            strbuf_append(b, "{\\r}");
    }
}

/* One karaoke syllable per word (\kf, its own start..end) and one per space
 * (\k, the pause up to the next word). All edges are rounded absolute times
 * and t only moves forward, so durations are never negative and their sum
 * ends exactly where the last word ends. */
static void put_karaoke_text(strbuf_t *b, const captions_line_t *l, const captions_word_t *w)
{
    int64_t lo = l->start_ms, hi = l->end_ms;
    int64_t t = to_cs(lo);
    for (size_t j = 0; j < l->count; j++) {
        const captions_word_t *wd = &w[l->first + j];
        int64_t ws = clamped_cs(wd->start_ms, lo, hi);
        int64_t we = clamped_cs(wd->end_ms, lo, hi);
        ws = ws < t ? t : ws;
        we = we < ws ? ws : we;
        if (j > 0)
            strbuf_appendf(b, "{\\k%" PRId64 "} ", ws - t);
        else if (ws > t)
            strbuf_appendf(b, "{\\k%" PRId64 "}", ws - t);
        strbuf_appendf(b, "{\\kf%" PRId64 "}", we - ws);
        put_text(b, wd->text, l->uppercase, false);
        t = we;
    }
}

static void put_dialogue_head(strbuf_t *b, int64_t start_cs, int64_t end_cs, const char *style)
{
    strbuf_append(b, "Dialogue: 0,");
    put_time(b, start_cs);
    strbuf_append(b, ",");
    put_time(b, end_cs);
    strbuf_appendf(b, ",%s,,0,0,0,,", style);
}

/* HIGHLIGHT and POP: word j is marked from its start to the next word's
 * start (the last to the line's end). Empty intervals (two words within
 * the same centisecond) get no event: libass would never show them. */
static void put_marked_events(strbuf_t *b, const captions_line_t *l, const captions_word_t *w,
                              const ass_script_opts_t *o)
{
    int64_t lo = l->start_ms, hi = l->end_ms;
    int64_t from = to_cs(lo), end = to_cs(hi);
    for (size_t j = 0; j < l->count; j++) {
        int64_t to = end;
        if (j + 1 < l->count) {
            to = clamped_cs(w[l->first + j + 1].start_ms, lo, hi);
            to = to < from ? from : to;
        }
        if (to > from) {
            put_dialogue_head(b, from, to, "Caption");
            put_line_text(b, l, w, o, j);
            strbuf_append(b, "\n");
        }
        from = to;
    }
}

static void put_style(strbuf_t *b, const char *name, const ass_script_opts_t *o, int size,
                      uint32_t primary, uint32_t secondary, int alignment)
{
    char c1[ASS_SCRIPT_COLOUR_LEN], c2[ASS_SCRIPT_COLOUR_LEN], c3[ASS_SCRIPT_COLOUR_LEN],
        c4[ASS_SCRIPT_COLOUR_LEN];
    ass_script_colour(primary, c1);
    ass_script_colour(secondary, c2);
    ass_script_colour(o->outline, c3);
    ass_script_colour(o->back, c4);
    /* Bold is -1 for true in ASS; BorderStyle 1 = outline + drop shadow;
     * Encoding 1 = default charset (font choice by family only). */
    strbuf_appendf(b, "Style: %s,%s,%d,%s,%s,%s,%s,%d,0,0,0,100,100,0,0,1,%d,%d,%d,%d,%d,%d,1\n",
                   name, o->font, size, c1, c2, c3, c4, o->bold ? -1 : 0, o->outline_px,
                   o->shadow_px, alignment, o->margin_l, o->margin_r, o->margin_v);
}

int ass_script_build(const captions_line_t *lines, size_t nlines, const captions_word_t *words,
                     size_t nwords, const ass_script_opts_t *o, char **out, char *errbuf,
                     size_t errlen)
{
    if (out == NULL)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "no output given");
    *out = NULL;
    int rc = check_opts(o, errbuf, errlen);
    if (rc == 0)
        rc = check_lines(lines, nlines, words, nwords, errbuf, errlen);
    if (rc != 0)
        return rc;

    strbuf_t b = STRBUF_INIT;
    strbuf_appendf(
        &b,
        "[Script Info]\n"
        "; Generated by Fenta (actors/text/ass_script.c).\n"
        "ScriptType: v4.00+\n"
        "PlayResX: %d\n"
        "PlayResY: %d\n"
        "WrapStyle: 0\n"
        "ScaledBorderAndShadow: yes\n"
        "YCbCr Matrix: None\n"
        "\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n",
        o->width, o->height);
    /* Numpad alignment: 2 bottom centre, 5 middle centre, 8 top centre. */
    static const int alignment[] = {
        [ASS_SCRIPT_POS_BOTTOM] = 2, [ASS_SCRIPT_POS_CENTER] = 5, [ASS_SCRIPT_POS_TOP] = 8};
    bool karaoke = o->effect == ASS_SCRIPT_FX_KARAOKE;
    /* Karaoke: sung = PrimaryColour, not yet sung = SecondaryColour. */
    put_style(&b, "Caption", o, o->font_size, karaoke ? o->highlight : o->primary,
              karaoke ? o->primary : o->highlight, alignment[o->position]);
    bool title = o->title != NULL && o->title[0] != '\0';
    if (title)
        put_style(&b, "Title", o, o->title_size, o->primary, o->highlight, 8);
    strbuf_append(
        &b, "\n[Events]\n"
            "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n");
    /* Same layer as the captions: if both sit at the top, libass's collision
     * handling stacks them instead of drawing one over the other. */
    if (title) {
        put_dialogue_head(&b, 0, to_cs(o->title_ms), "Title");
        put_text(&b, o->title, false, true);
        strbuf_append(&b, "\n");
    }
    for (size_t i = 0; i < nlines; i++) {
        const captions_line_t *l = &lines[i];
        if (o->effect == ASS_SCRIPT_FX_HIGHLIGHT || o->effect == ASS_SCRIPT_FX_POP) {
            put_marked_events(&b, l, words, o);
            continue;
        }
        put_dialogue_head(&b, to_cs(l->start_ms), to_cs(l->end_ms), "Caption");
        if (karaoke)
            put_karaoke_text(&b, l, words);
        else
            put_line_text(&b, l, words, o, SIZE_MAX);
        strbuf_append(&b, "\n");
    }
    char *text = strbuf_take(&b, NULL);
    if (!text)
        return FENTA_ENOMEM;
    *out = text;
    return 0;
}
