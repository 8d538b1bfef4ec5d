/* ass_script.h - caption lines to the ASS subtitle script that FFmpeg's `ass`
 * filter (libass) burns into the video.
 *
 * The text half of the burn-in: captions.c decides which words share a line
 * and when the line shows; this module decides how it looks (font, colours,
 * outline, safe-zone margins, position) and how the spoken word is marked
 * (karaoke fill, highlight, pop). Pure text generation: no libass include,
 * no I/O; the product renders through FFmpeg, the tests through libass.
 *
 * Timing. ASS times are centiseconds. Every boundary (line start and end,
 * karaoke syllable edges, highlight switches) is an absolute ms time rounded
 * to the nearest centisecond, and durations are differences of rounded
 * times, so rounding never accumulates along a line and a cue is never more
 * than 5 ms away from its word (a third of a frame at 60 fps). Truncating
 * would show cues up to 9 ms early; rounding up up to 9 ms late.
 *
 * Escaping. Text is written so that nothing in a word can become a tag:
 * '{' and '}' as libass's \{ and \} escapes, a backslash that would form
 * \N, \n or \h followed by U+2060 WORD JOINER (invisible, keeps the pair
 * apart), control characters as spaces. These escapes are libass's (which
 * is what FFmpeg uses), not VSFilter's. */
#ifndef FENTA_ASS_SCRIPT_H
#define FENTA_ASS_SCRIPT_H
#include "actors/text/captions.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ass_script_fx {
    ASS_SCRIPT_FX_NONE,      /* the whole line in the primary colour */
    ASS_SCRIPT_FX_KARAOKE,   /* each word fills left to right in the highlight colour as spoken */
    ASS_SCRIPT_FX_HIGHLIGHT, /* the word being spoken in the highlight colour, others primary */
    ASS_SCRIPT_FX_POP        /* as HIGHLIGHT, and the word briefly scales up when it starts */
} ass_script_fx_t;

typedef enum ass_script_pos {
    ASS_SCRIPT_POS_BOTTOM, /* bottom centre, margin_v above the bottom edge */
    ASS_SCRIPT_POS_CENTER, /* middle of the frame; margin_v unused */
    ASS_SCRIPT_POS_TOP     /* top centre, margin_v below the top edge */
} ass_script_pos_t;

typedef struct ass_script_opts {
    int width, height;         /* canvas (PlayResX/Y) in px, 16..16384, e.g. 1080x1920 */
    const char *font;          /* family, e.g. "DejaVu Sans"; no ',' or control chars; borrowed */
    int font_size;             /* px at the canvas size, 1..height */
    bool bold;                 /* bold face (synthesised by libass if the family has none) */
    uint32_t primary;          /* text colour, 0xRRGGBBAA with AA = opacity (ff opaque) */
    uint32_t highlight;        /* the spoken word's colour (karaoke fill, highlight, pop) */
    uint32_t outline;          /* outline colour */
    uint32_t back;             /* shadow colour (ASS BackColour, BorderStyle 1) */
    int outline_px;            /* outline width in canvas px, 0..font_size */
    int shadow_px;             /* shadow offset in canvas px, 0..font_size */
    ass_script_pos_t position; /* where the captions sit */
    int margin_l, margin_r;    /* px kept free left and right (safe zone); lines wrap inside */
    int margin_v;              /* px kept free below (BOTTOM) or above (TOP) */
    ass_script_fx_t effect;    /* how the spoken word is marked */
    const char *title;         /* shown top centre from 0 to title_ms; NULL or "" = none;
                                  UTF-8, '\n' breaks the line; borrowed */
    int64_t title_ms;          /* how long the title shows (> 0 when there is a title) */
    int title_size;            /* the title's font size in px (1..height when there is one) */
} ass_script_opts_t;

/* 1080x1920, "DejaVu Sans" 80 px bold, white on a 6 px black outline, gold
 * highlight, no shadow, bottom with margins 90/90/400 (clear of the
 * like/comment/share column and the description text of the short-video
 * apps), no effect, no title (title_size 96 ready for one). */
ass_script_opts_t ass_script_opts_default(void);

/* "&HAABBGGRR" and its NUL. */
#define ASS_SCRIPT_COLOUR_LEN 11

/* 0xRRGGBBAA (AA = opacity) as an ASS style colour "&HAABBGGRR", where ASS
 * alpha is transparency (00 opaque): 0xff0000ff (opaque red) -> "&H000000FF". */
void ass_script_colour(uint32_t rgba, char out[ASS_SCRIPT_COLOUR_LEN]);

/* Builds a complete script: [Script Info] (PlayResX/Y, WrapStyle 0 so long
 * lines wrap inside the margins, ScaledBorderAndShadow: yes, YCbCr Matrix:
 * None so colours are not remapped), [V4+ Styles] (Caption, and Title when
 * there is one) and [Events]:
 *  - NONE and KARAOKE: one Dialogue per line, from line.start_ms to
 *    line.end_ms. Karaoke gives each word a \kf syllable spanning its own
 *    start..end and the space after it a \k syllable spanning the pause
 *    before the next word, so a word is full when the voice finishes it and
 *    the next one starts filling when the voice starts it (neither ahead of
 *    the voice nor trailing into the pause). libass draws a karaoke syllable
 *    in SecondaryColour before it is sung and PrimaryColour after, so the
 *    Caption style carries highlight as PrimaryColour and primary as
 *    SecondaryColour in this mode.
 *  - HIGHLIGHT and POP: one Dialogue per word, consecutive and never
 *    overlapping, each showing the whole line with that word marked, from
 *    the word's start to the next word's start (the last to the line's
 *    end): the spoken word stays marked through the pause after it.
 * Words are lines[i].first .. first + count - 1 of words[0 .. nwords - 1],
 * joined by single spaces; ASCII letters upper-cased when line.uppercase
 * (other scripts untouched, as in captions.c).
 *
 * Returns 0 with *out a malloc'd NUL-terminated script (the caller frees);
 * FENTA_EINVAL with errbuf (if errlen > 0) naming the field or the line
 * ("options: font is required", "line 2: words 7..9 are past the 8 words");
 * or FENTA_ENOMEM. On failure *out is NULL. nlines may be 0 (a title-only
 * or empty script). */
int ass_script_build(const captions_line_t *lines, size_t nlines, const captions_word_t *words,
                     size_t nwords, const ass_script_opts_t *o, char **out, char *errbuf,
                     size_t errlen);

#endif
