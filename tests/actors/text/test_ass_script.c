/* test_ass_script.c - the ASS script looks right to a viewer: each script is
 * rendered with libass (the library FFmpeg's `ass` filter uses) and the
 * pixels are checked: when a line shows, where it sits, which word is in
 * the highlight colour, that tag-like text stays text, that non-Latin
 * scripts get real glyphs through fontconfig fallback, and that bad options
 * are refused with a message.
 *
 * Colours: libass hands back each bitmap's colour as RGBA with the alpha
 * inverted (00 opaque), which is our 0xRRGGBBAA with AA ^ 0xff. */
#include "actors/text/ass_script.h"
#include "runtime/error.h"
#include <ass/ass.h>
#include <criterion/criterion.h>
#include <fontconfig/fontconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 1080
#define H 1920
#define WHITE 0xffffffffu
#define RED 0xff0000ffu

/* libass's colour for one of ours. */
static uint32_t lib_colour(uint32_t rgba)
{
    return rgba ^ 0xffu;
}

/* ---- scripts ------------------------------------------------------------------------ */

/* Plain glyphs (no outline or shadow bitmaps to tell apart), white text,
 * red highlight, DejaVu Sans at 80 px, bottom with 100/100/300 margins. */
static ass_script_opts_t opts(void)
{
    ass_script_opts_t o = ass_script_opts_default();
    o.width = W, o.height = H;
    o.font = "DejaVu Sans";
    o.font_size = 80;
    o.bold = false;
    o.primary = WHITE, o.highlight = RED;
    o.outline_px = 0, o.shadow_px = 0;
    o.margin_l = 100, o.margin_r = 100, o.margin_v = 300;
    return o;
}

static captions_word_t words[32];
static captions_line_t line;

/* The texts as one line: word i spoken over [1000 + 500 i, 1000 + 500 i + 400)
 * ms, the line shown from 1000 to 1000 + 500 n. */
static char *one_line(const char *const *texts, size_t n, const ass_script_opts_t *o)
{
    cr_assert_leq(n, sizeof words / sizeof words[0]);
    for (size_t i = 0; i < n; i++)
        words[i] = (captions_word_t){texts[i], 1000 + 500 * (int64_t)i, 1400 + 500 * (int64_t)i};
    line = (captions_line_t){
        .first = 0, .count = n, .start_ms = 1000, .end_ms = 1000 + 500 * (int64_t)n};
    char *s = NULL, err[256] = "";
    cr_assert_eq(ass_script_build(&line, 1, words, n, o, &s, err, sizeof err), 0, "%s", err);
    cr_assert_not_null(s);
    return s;
}

static char *one_text(const char *text, const ass_script_opts_t *o)
{
    return one_line(&text, 1, o);
}

/* ---- rendering ---------------------------------------------------------------------- */

static char msgs[1 << 16]; /* libass's messages up to INFO (fallback choices included) */
static size_t msgs_len;

static void on_message(int level, const char *fmt, va_list ap, void *data)
{
    if (level > 4 || msgs_len + 1 >= sizeof msgs)
        return;
    int n = vsnprintf(msgs + msgs_len, sizeof msgs - msgs_len - 1, fmt, ap);
    if (n > 0)
        msgs_len += (size_t)n < sizeof msgs - msgs_len - 1 ? (size_t)n : sizeof msgs - msgs_len - 2;
    msgs[msgs_len++] = '\n';
    msgs[msgs_len] = '\0';
}

typedef struct view {
    ASS_Library *lib;
    ASS_Renderer *ren;
    ASS_Track *track;
} view_t;

static view_t view_open(char *script)
{
    view_t v;
    v.lib = ass_library_init();
    cr_assert_not_null(v.lib);
    ass_set_message_cb(v.lib, on_message, NULL);
    v.ren = ass_renderer_init(v.lib);
    cr_assert_not_null(v.ren);
    ass_set_frame_size(v.ren, W, H);
    ass_set_fonts(v.ren, NULL, "sans-serif", ASS_FONTPROVIDER_AUTODETECT, NULL, 1);
    v.track = ass_read_memory(v.lib, script, strlen(script), NULL);
    cr_assert_not_null(v.track, "libass refused the script:\n%s", script);
    free(script);
    return v;
}

static void view_close(view_t *v)
{
    ass_free_track(v->track);
    ass_renderer_done(v->ren);
    ass_library_done(v->lib);
}

static ASS_Image *at(view_t *v, long long ms)
{
    int changed;
    return ass_render_frame(v->ren, v->track, ms, &changed);
}

/* Where the glyph pixels (coverage > 50 %, outline and shadow bitmaps left
 * out) of one colour are; every colour when all. */
typedef struct box {
    int x0, y0, x1, y1; /* inclusive; empty when px = 0 */
    long px;            /* how many */
} box_t;

static void add_ink(box_t *b, const ASS_Image *img)
{
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++) {
            if (img->bitmap[y * img->stride + x] <= 127)
                continue;
            int X = img->dst_x + x, Y = img->dst_y + y;
            b->x0 = X < b->x0 ? X : b->x0, b->x1 = X > b->x1 ? X : b->x1;
            b->y0 = Y < b->y0 ? Y : b->y0, b->y1 = Y > b->y1 ? Y : b->y1;
            b->px++;
        }
}

static box_t ink(const ASS_Image *img, uint32_t colour, bool all)
{
    box_t b = {INT_MAX, INT_MAX, INT_MIN, INT_MIN, 0};
    for (; img != NULL; img = img->next)
        if (img->type == IMAGE_TYPE_CHARACTER && (all || img->color == colour))
            add_ink(&b, img);
    return b;
}

static box_t ink_at(view_t *v, long long ms)
{
    return ink(at(v, ms), 0, true);
}

/* The whole frame's glyph coverage, cropped to its box: two renderings
 * that differ in glyphs differ here; a run of tofu boxes does not. */
static unsigned char *crop(const ASS_Image *img, box_t *b)
{
    *b = ink(img, 0, true);
    cr_assert_gt(b->px, 0, "nothing rendered");
    int w = b->x1 - b->x0 + 1, h = b->y1 - b->y0 + 1;
    unsigned char *c = calloc((size_t)w * (size_t)h, 1);
    cr_assert_not_null(c);
    for (; img != NULL; img = img->next)
        for (int y = 0; y < img->h; y++)
            for (int x = 0; x < img->w; x++) {
                int X = img->dst_x + x - b->x0, Y = img->dst_y + y - b->y0;
                if (X >= 0 && X < w && Y >= 0 && Y < h && img->bitmap[y * img->stride + x] > 127)
                    c[Y * w + X] = 1;
            }
    return c;
}

/* Renders a and b (one word each, so one glyph run each) and reports
 * whether they differ and whether libass could not find a glyph. */
static bool renders_differ(const char *a, const char *b, box_t *ba, box_t *bb)
{
    ass_script_opts_t o = opts();
    view_t va = view_open(one_text(a, &o)), vb = view_open(one_text(b, &o));
    unsigned char *ca = crop(at(&va, 1200), ba), *cb = crop(at(&vb, 1200), bb);
    bool differ = ba->x1 - ba->x0 != bb->x1 - bb->x0 || ba->y1 - ba->y0 != bb->y1 - bb->y0 ||
                  memcmp(ca, cb, (size_t)(ba->x1 - ba->x0 + 1) * (size_t)(ba->y1 - ba->y0 + 1));
    free(ca);
    free(cb);
    view_close(&va);
    view_close(&vb);
    return differ;
}

/* libass logs "Glyph 0x.. not found, selecting one more font" on every
 * fallback, successful or not; a glyph that really has no font shows up as
 * "failed to find any fallback" (and "not found in font for"). */
static bool glyph_missing(void)
{
    return strstr(msgs, "failed to find any fallback") != NULL ||
           strstr(msgs, "not found in font for") != NULL;
}

/* Real glyphs for a script: two different words with the same number of
 * code points render differently (tofu would not), with plausible ink (at
 * least 200 px per code point at 80 px, about a third of what these
 * scripts measure, and a glyph run at least 30 px high), and no glyph was
 * missing. font_hint, if given, must appear in the fallback log. */
static void expect_real_glyphs(const char *a, const char *b, size_t cps, const char *phrase,
                               const char *font_hint)
{
    box_t ba, bb;
    cr_expect(renders_differ(a, b, &ba, &bb), "\"%s\" and \"%s\" render alike (tofu?)", a, b);
    cr_expect_geq(ba.px, (long)(cps * 200), "\"%s\": only %ld px of ink", a, ba.px);
    cr_expect_geq(bb.px, (long)(cps * 200), "\"%s\": only %ld px of ink", b, bb.px);
    cr_expect_geq(ba.y1 - ba.y0, 30, "\"%s\": %d px high", a, ba.y1 - ba.y0);
    cr_expect_geq(bb.y1 - bb.y0, 30, "\"%s\": %d px high", b, bb.y1 - bb.y0);
    ass_script_opts_t o = opts();
    view_t v = view_open(one_text(phrase, &o));
    cr_expect_gt(ink_at(&v, 1200).px, 0);
    view_close(&v);
    cr_expect_not(glyph_missing(), "libass found no glyph:\n%s", msgs);
    if (font_hint != NULL)
        cr_expect_not_null(strstr(msgs, font_hint), "no fallback to %s:\n%s", font_hint, msgs);
}

/* ---- timing ------------------------------------------------------------------------- */

Test(ass_script, line_visible_only_between_its_start_and_end)
{
    ass_script_opts_t o = opts();
    words[0] = (captions_word_t){"hello", 1234, 2000};
    line = (captions_line_t){.first = 0, .count = 1, .start_ms = 1234, .end_ms = 2345};
    char *s = NULL;
    cr_assert_eq(ass_script_build(&line, 1, words, 1, &o, &s, NULL, 0), 0);
    /* Nearest centisecond: 1234 -> 1.23 (4 ms early), 2345 -> 2.35. */
    cr_expect_not_null(strstr(s, "Dialogue: 0,0:00:01.23,0:00:02.35,Caption,,0,0,0,,hello\n"), "%s",
                       s);
    view_t v = view_open(s);
    long long hidden[] = {0, 1000, 1225, 2355, 3000}, shown[] = {1235, 1500, 2340};
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++)
        cr_expect_null(at(&v, hidden[i]), "visible at %lld ms", hidden[i]);
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        cr_expect_gt(ink_at(&v, shown[i]).px, 0, "not visible at %lld ms", shown[i]);
    view_close(&v);
}

Test(ass_script, times_round_to_the_nearest_centisecond)
{
    ass_script_opts_t o = opts();
    words[0] = (captions_word_t){"a", 3723455, 3723460};
    line = (captions_line_t){.first = 0, .count = 1, .start_ms = 3723455, .end_ms = 3723994};
    char *s = NULL;
    cr_assert_eq(ass_script_build(&line, 1, words, 1, &o, &s, NULL, 0), 0);
    cr_expect_not_null(strstr(s, ",1:02:03.46,1:02:03.99,"), "%s", s);
    free(s);
}

/* ---- effects ------------------------------------------------------------------------ */

Test(ass_script, karaoke_fills_words_as_they_are_spoken)
{
    ass_script_opts_t o = opts();
    o.effect = ASS_SCRIPT_FX_KARAOKE;
    const char *t[] = {"one", "two", "three"};
    char *s = one_line(t, 3, &o);
    /* Each word over its own 400 ms, each pause on the space after it. */
    cr_expect_not_null(strstr(s, ",,{\\kf40}one{\\k10} {\\kf40}two{\\k10} {\\kf40}three\n"), "%s",
                       s);
    view_t v = view_open(s);
    uint32_t hl = lib_colour(RED), plain = lib_colour(WHITE);

    /* Mid-line: "one" is sung, "three" is not. */
    ASS_Image *img = at(&v, 1700);
    box_t all = ink(img, 0, true), sung = ink(img, hl, false), unsung = ink(img, plain, false);
    cr_assert_gt(sung.px, 0);
    cr_assert_gt(unsung.px, 0);
    cr_expect_eq(sung.x0, all.x0, "the first word is not in the highlight colour");
    cr_expect_eq(unsung.x1, all.x1, "the last word is already highlighted");
    cr_expect_lt(sung.x1, unsung.x1);

    /* In the pause after "one": "one" full, "two" not started. */
    box_t one_done = ink(at(&v, 1410), hl, false);
    box_t pause = ink(at(&v, 1490), hl, false);
    box_t pause_plain = ink(at(&v, 1490), plain, false);
    cr_expect_eq(pause.x1, one_done.x1, "the fill ran into the pause");
    cr_expect_lt(pause.x1, pause_plain.x0, "a word after the pause is partly filled");

    /* Just after the start nearly nothing is sung; after the last word all is. */
    cr_expect_lt(ink(at(&v, 1010), hl, false).px, all.px / 20);
    cr_expect_eq(ink(at(&v, 2450), plain, false).px, 0, "not all sung after the last word");
    cr_expect_gt(ink(at(&v, 2450), hl, false).px, 0);
    view_close(&v);
}

/* At word k's time, word k alone is in the highlight colour: unhighlighted
 * ink lies on the sides where other words are, and none inside it. */
static void expect_marked(view_t *v, long long ms, size_t k, size_t n, box_t *marked)
{
    ASS_Image *img = at(v, ms);
    box_t hl = ink(img, lib_colour(RED), false);
    cr_assert_gt(hl.px, 0, "nothing highlighted at %lld ms", ms);
    bool left = false, right = false, inside = false;
    for (const ASS_Image *i = img; i != NULL; i = i->next) {
        if (i->type != IMAGE_TYPE_CHARACTER || i->color != lib_colour(WHITE))
            continue;
        box_t b = {INT_MAX, INT_MAX, INT_MIN, INT_MIN, 0};
        add_ink(&b, i);
        if (b.px == 0)
            continue;
        left |= b.x1 < hl.x0;
        right |= b.x0 > hl.x1;
        inside |= b.x1 >= hl.x0 && b.x0 <= hl.x1;
    }
    cr_expect_eq(left, k > 0, "at %lld ms: plain words left of the marked one: %d", ms, left);
    cr_expect_eq(right, k + 1 < n, "at %lld ms: plain words right of the marked one: %d", ms,
                 right);
    cr_expect_not(inside, "at %lld ms: plain ink inside the marked word", ms);
    *marked = hl;
}

Test(ass_script, highlight_marks_exactly_the_spoken_word)
{
    ass_script_opts_t o = opts();
    o.effect = ASS_SCRIPT_FX_HIGHLIGHT;
    const char *t[] = {"one", "two", "three"};
    char *s = one_line(t, 3, &o);
    /* One event per word, back to back: 1.00-1.50, 1.50-2.00, 2.00-2.50. */
    cr_expect_not_null(strstr(s, "0:00:01.00,0:00:01.50,Caption,,0,0,0,,{\\1c&H0000FF&\\1a&H00&}"
                                 "one{\\r} two three\n"),
                       "%s", s);
    cr_expect_not_null(strstr(s, "0:00:01.50,0:00:02.00,"), "%s", s);
    cr_expect_not_null(strstr(s, "0:00:02.00,0:00:02.50,"), "%s", s);
    view_t v = view_open(s);
    box_t prev = {.x1 = INT_MIN}, b;
    for (size_t k = 0; k < 3; k++) {
        expect_marked(&v, 1200 + 500 * (long long)k, k, 3, &b);
        cr_expect_gt(b.x0, prev.x1, "word %zu is not right of word %zu", k, k - 1);
        prev = b;
    }
    /* In the pause after "one" it stays marked. */
    expect_marked(&v, 1450, 0, 3, &b);
    cr_expect_null(at(&v, 2550));
    view_close(&v);
}

Test(ass_script, pop_scales_the_spoken_word_up_briefly)
{
    ass_script_opts_t o = opts();
    o.effect = ASS_SCRIPT_FX_POP;
    const char *t[] = {"one", "HOW", "three"};
    view_t v = view_open(one_line(t, 3, &o));
    box_t peak, rest;
    expect_marked(&v, 1500 + 80, 1, 3, &peak);
    expect_marked(&v, 1500 + 350, 1, 3, &rest);
    int hp = peak.y1 - peak.y0 + 1, hr = rest.y1 - rest.y0 + 1;
    cr_expect_gt(hp * 100, hr * 112, "no pop: %d px at the peak, %d px at rest", hp, hr);
    view_close(&v);

    /* At rest it is the size of the same word merely highlighted. */
    o.effect = ASS_SCRIPT_FX_HIGHLIGHT;
    v = view_open(one_line(t, 3, &o));
    box_t plain;
    expect_marked(&v, 1500 + 350, 1, 3, &plain);
    cr_expect_eq(plain.y1 - plain.y0 + 1, hr);
    view_close(&v);
}

/* ---- layout ------------------------------------------------------------------------- */

static box_t placed(ass_script_pos_t pos)
{
    ass_script_opts_t o = opts();
    o.position = pos;
    const char *t[] = {"Where", "am", "I"};
    view_t v = view_open(one_line(t, 3, &o));
    box_t b = ink_at(&v, 1200);
    view_close(&v);
    cr_assert_gt(b.px, 0);
    cr_expect_geq(b.x0, 100, "left margin crossed");
    cr_expect_leq(b.x1, W - 100, "right margin crossed");
    return b;
}

Test(ass_script, position_puts_the_line_in_its_third_inside_the_margins)
{
    box_t b = placed(ASS_SCRIPT_POS_BOTTOM);
    cr_expect_geq(b.y0, 2 * H / 3, "bottom: starts at %d", b.y0);
    cr_expect_leq(b.y1, H - 300, "bottom: past margin_v, ends at %d", b.y1);
    cr_expect_geq(b.y1, H - 300 - 80, "bottom: far above margin_v, ends at %d", b.y1);
    b = placed(ASS_SCRIPT_POS_CENTER);
    cr_expect(b.y0 > H / 3 && b.y1 < 2 * H / 3, "center: %d..%d", b.y0, b.y1);
    int mid = (b.y0 + b.y1) / 2;
    cr_expect(mid > H / 2 - 60 && mid < H / 2 + 60, "center: middle at %d", mid);
    b = placed(ASS_SCRIPT_POS_TOP);
    cr_expect_geq(b.y0, 300, "top: above margin_v, starts at %d", b.y0);
    cr_expect_leq(b.y0, 300 + 80, "top: far below margin_v, starts at %d", b.y0);
    cr_expect_lt(b.y1, H / 3);
}

Test(ass_script, long_lines_wrap_inside_the_margins)
{
    ass_script_opts_t o = opts();
    view_t v = view_open(one_text("Short", &o));
    box_t one = ink_at(&v, 1200);
    view_close(&v);
    const char *t[] = {"wonderful", "captions", "always", "wrap",
                       "inside",    "the",      "safe",   "margins"};
    v = view_open(one_line(t, 8, &o));
    box_t b = ink_at(&v, 1200);
    view_close(&v);
    cr_expect_geq(b.x0, 100);
    cr_expect_leq(b.x1, W - 100);
    cr_expect_gt(b.y1 - b.y0, 2 * (one.y1 - one.y0), "not wrapped: %d px high", b.y1 - b.y0);
    cr_expect_leq(b.y1, H - 300);
}

Test(ass_script, title_shows_at_the_top_until_title_ms)
{
    ass_script_opts_t o = opts();
    o.title = "Five facts\nabout {owls}";
    o.title_ms = 1500;
    o.title_size = 90;
    words[0] = (captions_word_t){"caption", 2000, 2400};
    line = (captions_line_t){.first = 0, .count = 1, .start_ms = 2000, .end_ms = 2600};
    char *s = NULL;
    cr_assert_eq(ass_script_build(&line, 1, words, 1, &o, &s, NULL, 0), 0);
    cr_expect_not_null(strstr(s, "Style: Title,DejaVu Sans,90,"), "%s", s);
    cr_expect_not_null(
        strstr(s, "0:00:00.00,0:00:01.50,Title,,0,0,0,,Five facts\\Nabout \\{owls\\}\n"), "%s", s);
    view_t v = view_open(s);
    box_t title = ink_at(&v, 500);
    cr_expect_gt(title.px, 0);
    cr_expect_geq(title.y0, 300);
    cr_expect_lt(title.y1, H / 3);
    cr_expect_gt(title.y1 - title.y0, 2 * 70, "the title is not on two lines");
    cr_expect_null(at(&v, 1600), "the title outlives title_ms");
    box_t cap = ink_at(&v, 2100);
    cr_expect_geq(cap.y0, 2 * H / 3, "only the caption shows after the title");
    view_close(&v);
}

/* ---- text --------------------------------------------------------------------------- */

Test(ass_script, tag_like_text_renders_literally)
{
    ass_script_opts_t o = opts();
    const char *t[] = {"go", "{\\an8}", "now"};
    char *s = one_line(t, 3, &o);
    cr_expect_not_null(strstr(s, ",,go \\{\\an8\\} now\n"), "%s", s);
    view_t v = view_open(s);
    box_t braced = ink_at(&v, 1200);
    view_close(&v);
    cr_expect_geq(braced.y0, 2 * H / 3, "\\an8 moved the line to the top");

    const char *u[] = {"go", "\\an8", "now"};
    v = view_open(one_line(u, 3, &o));
    box_t bare = ink_at(&v, 1200);
    view_close(&v);
    cr_expect_gt(braced.x1 - braced.x0, bare.x1 - bare.x0 + 20, "the braces are not drawn");

    /* A backslash before N stays a backslash, not a line break. */
    v = view_open(one_text("a\\Nb", &o));
    box_t nb = ink_at(&v, 1200);
    view_close(&v);
    v = view_open(one_text("aNb", &o));
    box_t flat = ink_at(&v, 1200);
    view_close(&v);
    cr_expect_leq(nb.y1 - nb.y0, flat.y1 - flat.y0 + 10, "\\N broke the line");
    cr_expect_gt(nb.x1 - nb.x0, flat.x1 - flat.x0 + 10, "the backslash is not drawn");
}

Test(ass_script, uppercase_touches_ascii_letters_only)
{
    ass_script_opts_t o = opts();
    const char *t[] = {"héllo", "wörld", "ok", "\\n"};
    words[0] = (captions_word_t){t[0], 0, 100};
    words[1] = (captions_word_t){t[1], 100, 200};
    words[2] = (captions_word_t){t[2], 200, 300};
    words[3] = (captions_word_t){t[3], 300, 400};
    captions_line_t l[2] = {
        {.first = 0, .count = 2, .start_ms = 0, .end_ms = 200, .uppercase = true},
        {.first = 2, .count = 2, .start_ms = 200, .end_ms = 400}};
    char *s = NULL;
    cr_assert_eq(ass_script_build(l, 2, words, 4, &o, &s, NULL, 0), 0);
    cr_expect_not_null(strstr(s, ",,HéLLO WöRLD\n"), "%s", s);
    cr_expect_not_null(strstr(s, ",,ok \\\xe2\x81\xa0n\n"), "%s", s);
    free(s);
    l[1].uppercase = true; /* "\n" upper-cased must not become a line break */
    cr_assert_eq(ass_script_build(l, 2, words, 4, &o, &s, NULL, 0), 0);
    cr_expect_not_null(strstr(s, ",,OK \\\xe2\x81\xa0N\n"), "%s", s);
    free(s);
}

Test(ass_script, colours_convert_to_ass_with_inverted_alpha)
{
    char c[ASS_SCRIPT_COLOUR_LEN];
    ass_script_colour(0xff0000ffu, c);
    cr_expect_str_eq(c, "&H000000FF");
    ass_script_colour(0x11223380u, c);
    cr_expect_str_eq(c, "&H7F332211");
    ass_script_colour(0x00000000u, c);
    cr_expect_str_eq(c, "&HFF000000");

    ass_script_opts_t o = opts();
    o.primary = 0x00ff00ffu, o.highlight = 0x0000ffffu, o.outline = 0x000000ffu;
    o.back = 0x00000080u;
    char *s = one_text("x", &o);
    cr_expect_not_null(strstr(s, "Style: Caption,DejaVu Sans,80,&H0000FF00,&H00FF0000,&H00000000,"
                                 "&H7F000000,0,"),
                       "%s", s);
    free(s);
    o.effect = ASS_SCRIPT_FX_KARAOKE; /* sung (primary) is the highlight */
    s = one_text("x", &o);
    cr_expect_not_null(strstr(s, "Style: Caption,DejaVu Sans,80,&H00FF0000,&H0000FF00,"), "%s", s);
    free(s);

    o.effect = ASS_SCRIPT_FX_NONE;
    view_t v = view_open(one_text("green", &o));
    const ASS_Image *img = at(&v, 1200);
    cr_assert_not_null(img);
    cr_expect_eq(img->color, 0x00ff0000u, "libass drew 0x%08x", img->color);
    view_close(&v);
}

Test(ass_script, a_long_font_name_is_written_whole)
{
    char font[701];
    memset(font, 'F', 700), font[700] = '\0';
    ass_script_opts_t o = opts();
    o.font = font;
    char *s = one_text("x", &o), want[720];
    snprintf(want, sizeof want, "Style: Caption,%s,80,", font);
    cr_expect_not_null(strstr(s, want));
    free(s);
}

/* ---- scripts other than Latin ------------------------------------------------------- */

Test(ass_script, devanagari_falls_back_to_a_font_that_has_it)
{
    /* DejaVu Sans has no Devanagari; fontconfig must lead libass to Noto. */
    expect_real_glyphs("नमस्ते", "दुनिया", 6, "नमस्ते दुनिया", "Devanagari");
}

Test(ass_script, arabic_renders_real_glyphs)
{
    expect_real_glyphs("مرحبا", "كتابة", 5, "مرحبا بالعالم", NULL);
}

Test(ass_script, cyrillic_renders_real_glyphs)
{
    expect_real_glyphs("Привет", "Пока", 4, "Привет мир", NULL);
}

/* How many installed fonts fontconfig says cover lang. */
static int fonts_for(const char *lang)
{
    char spec[64];
    snprintf(spec, sizeof spec, ":lang=%s", lang);
    FcPattern *p = FcNameParse((const FcChar8 *)spec);
    FcObjectSet *os = FcObjectSetBuild(FC_FAMILY, (char *)NULL);
    FcFontSet *fs = FcFontList(NULL, p, os);
    int n = fs != NULL ? fs->nfont : 0;
    if (fs != NULL)
        FcFontSetDestroy(fs);
    FcObjectSetDestroy(os);
    FcPatternDestroy(p);
    /* FcFontList(NULL, ...) loaded fontconfig's default configuration;
     * free it (LSan reports it otherwise). libass builds its own later, so
     * nothing is pulled from under it. */
    FcFini();
    return n;
}

Test(ass_script, cjk_renders_real_glyphs_when_a_cjk_font_is_installed)
{
    if (fonts_for("zh") == 0) {
        /* Prove the detector would catch it: without a font, libass reports
         * the missing glyphs and two strings come out as the same boxes. */
        box_t ba, bb;
        cr_expect_not(renders_differ("你好", "再见", &ba, &bb), "tofu rendered as glyphs?");
        cr_expect(glyph_missing(), "no missing-glyph report:\n%s", msgs);
        cr_skip("no font covering lang=zh is installed (fc-list :lang=zh is empty); "
                "install fonts-noto-cjk to run this case");
    }
    expect_real_glyphs("你好", "再见", 2, "你好世界", NULL);
}

/* ---- refusals ----------------------------------------------------------------------- */

/* Case i of bad options: mutates o, sets what the message must say;
 * false past the last case. */
static bool bad_case(size_t i, ass_script_opts_t *o, const char **says)
{
    switch (i) {
    case 0:
        o->width = 0, *says = "canvas";
        break;
    case 1:
        o->height = 100000, *says = "canvas";
        break;
    case 2:
        o->font = NULL, *says = "font is required";
        break;
    case 3:
        o->font = "", *says = "font is required";
        break;
    case 4:
        o->font = "Bad, Font", *says = "comma";
        break;
    case 5:
        o->font_size = 0, *says = "font_size";
        break;
    case 6:
        o->outline_px = -1, *says = "outline_px";
        break;
    case 7:
        o->position = (ass_script_pos_t)7, *says = "position";
        break;
    case 8:
        o->effect = (ass_script_fx_t)-1, *says = "effect";
        break;
    case 9:
        o->margin_v = -5, *says = "margins";
        break;
    case 10:
        o->margin_l = 600, o->margin_r = 600, *says = "margin_l + margin_r";
        break;
    case 11:
        o->margin_v = H, *says = "margin_v";
        break;
    case 12:
        o->title = "T", o->title_ms = 0, *says = "title_ms";
        break;
    case 13:
        o->title = "T", o->title_ms = 1000, o->title_size = 0, *says = "title_size";
        break;
    case 14:
        o->title = "\xff", *says = "title is not valid UTF-8";
        break;
    default:
        return false;
    }
    return true;
}

Test(ass_script, bad_input_is_refused_with_a_message)
{
    words[0] = (captions_word_t){"ok", 0, 100};
    line = (captions_line_t){.first = 0, .count = 1, .start_ms = 0, .end_ms = 100};
    ass_script_opts_t o = opts();
    const char *says = NULL;
    for (size_t i = 0; bad_case(i, &o, &says); i++, o = opts()) {
        char *s = (char *)"untouched", err[256] = "";
        cr_expect_eq(ass_script_build(&line, 1, words, 1, &o, &s, err, sizeof err), FENTA_EINVAL,
                     "case %zu", i);
        cr_expect_null(s, "case %zu", i);
        cr_expect_not_null(strstr(err, says), "case %zu: \"%s\"", i, err);
    }

    o = opts();
    char *s = NULL, err[256] = "";
    cr_expect_eq(ass_script_build(&line, 1, words, 1, NULL, &s, err, sizeof err), FENTA_EINVAL);
    cr_expect_eq(ass_script_build(&line, 1, words, 1, &o, NULL, err, sizeof err), FENTA_EINVAL);
    captions_line_t past = {.first = 1, .count = 2, .start_ms = 0, .end_ms = 100};
    cr_expect_eq(ass_script_build(&past, 1, words, 2, &o, &s, err, sizeof err), FENTA_EINVAL);
    cr_expect_str_eq(err, "line 0: words 1..2 are past the 2 words");
    captions_line_t backwards = {.first = 0, .count = 1, .start_ms = 500, .end_ms = 100};
    cr_expect_eq(ass_script_build(&backwards, 1, words, 1, &o, &s, err, sizeof err), FENTA_EINVAL);
    cr_expect_not_null(strstr(err, "line 0: times"), "%s", err);
    captions_word_t bad = {"\xc0\xaf", 0, 100}; /* an overlong '/' */
    cr_expect_eq(ass_script_build(&line, 1, &bad, 1, &o, &s, err, sizeof err), FENTA_EINVAL);
    cr_expect_str_eq(err, "word 0: text is missing or not valid UTF-8");
    cr_expect_null(s);
}

Test(ass_script, no_lines_make_an_empty_but_valid_script)
{
    ass_script_opts_t o = opts();
    char *s = NULL;
    cr_assert_eq(ass_script_build(NULL, 0, NULL, 0, &o, &s, NULL, 0), 0);
    cr_expect_null(strstr(s, "Dialogue:"));
    cr_expect_not_null(strstr(s, "PlayResX: 1080\nPlayResY: 1920\n"));
    cr_expect_not_null(strstr(s, "ScaledBorderAndShadow: yes\n"));
    view_t v = view_open(s);
    cr_expect_null(at(&v, 0));
    view_close(&v);
}
